/* Parsing Python-style method signatures, and the type checks they give. A small recursive
 * descent over "name(param: type = default, ...) -> type". */
#include "application/signature.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buffer.h"
#include "core/grow.h"

typedef struct parser {
    const char *text; /* the whole signature, for messages */
    const char *at;   /* the next character to read */
    esg_error *err;
} parser;

static esg_status fail(parser *p, const char *what)
{
    return esg_error_set(p->err, ESG_ECONFIG, "signature '%.200s': %s at column %zu", p->text, what,
                         (size_t)(p->at - p->text) + 1);
}

static void skip_space(parser *p)
{
    while (*p->at == ' ' || *p->at == '\t' || *p->at == '\n')
        p->at++;
}

static bool accept(parser *p, const char *token)
{
    skip_space(p);
    size_t len = strlen(token);
    if (strncmp(p->at, token, len) != 0)
        return false;
    p->at += len;
    return true;
}

/* An identifier, copied into *out (owned). */
static esg_status identifier(parser *p, const char *what, char **out)
{
    skip_space(p);
    const char *start = p->at;
    if (!isalpha((unsigned char)*p->at) && *p->at != '_')
        return fail(p, what);
    while (isalnum((unsigned char)*p->at) || *p->at == '_')
        p->at++;
    *out = esg_malloc((size_t)(p->at - start) + 1);
    if (*out == NULL)
        return esg_error_set(p->err, ESG_ENOMEM, "out of memory reading a signature");
    memcpy(*out, start, (size_t)(p->at - start));
    (*out)[p->at - start] = '\0';
    return ESG_OK;
}

static const struct {
    const char *name;
    sig_kind kind;
} builtin_types[] = {
    {"Any", SIG_ANY},   {"UUID", SIG_UUID}, {"int", SIG_INT},           {"float", SIG_FLOAT},
    {"str", SIG_STR},   {"bool", SIG_BOOL}, {"datetime", SIG_DATETIME}, {"Decimal", SIG_DECIMAL},
    {"dict", SIG_DICT}, {"list", SIG_LIST},
};

/* type := name | Optional[type], then optionally "| None". */
static esg_status type_expression(parser *p, sig_type *out)
{
    char *name = NULL;
    const char *start = p->at;
    esg_status rc = identifier(p, "a type expected", &name);
    if (rc != ESG_OK)
        return rc;
    if (strcmp(name, "Optional") == 0) {
        esg_free(name);
        if (!accept(p, "["))
            return fail(p, "'[' expected after Optional");
        rc = type_expression(p, out);
        if (rc == ESG_OK && !accept(p, "]"))
            rc = fail(p, "']' expected");
        out->is_optional = true;
        return rc;
    }
    out->kind = SIG_CUSTOM;
    for (size_t i = 0; i < sizeof builtin_types / sizeof builtin_types[0]; i++)
        if (strcmp(name, builtin_types[i].name) == 0)
            out->kind = builtin_types[i].kind;
    if (out->kind != SIG_CUSTOM) {
        esg_free(name);
    } else if (esg_transcoding_find(name) == NULL) {
        esg_free(name);
        p->at = start;
        skip_space(p);
        return fail(p, "an unknown type (a custom one must be a registered transcoding)");
    } else {
        out->custom = name;
    }
    if (accept(p, "|")) {
        if (!accept(p, "None"))
            return fail(p, "only '| None' may follow a type");
        out->is_optional = true;
    }
    return ESG_OK;
}

/* default := None | True | False | a number | 'text' | "text" */
static esg_status default_value(parser *p, esg_value **out)
{
    skip_space(p);
    if (accept(p, "None"))
        *out = esg_value_null();
    else if (accept(p, "True"))
        *out = esg_value_bool(true);
    else if (accept(p, "False"))
        *out = esg_value_bool(false);
    else if (*p->at == '\'' || *p->at == '"') {
        char quote = *p->at++;
        esg_buffer text = {0};
        while (*p->at != quote && *p->at != '\0') {
            if (*p->at == '\\' && p->at[1] != '\0')
                p->at++;
            esg_buffer_put_char(&text, *p->at++);
        }
        if (*p->at != quote) {
            esg_buffer_reset(&text);
            return fail(p, "the string does not end");
        }
        p->at++;
        *out = text.failed ? NULL : esg_value_string_n(text.len ? text.data : "", text.len);
        esg_buffer_reset(&text);
    } else {
        char *end = NULL;
        errno = 0;
        long long integer = strtoll(p->at, &end, 10);
        if (end != p->at && *end != '.' && *end != 'e' && *end != 'E' && errno == 0) {
            *out = esg_value_int(integer);
        } else {
            double real = strtod(p->at, &end);
            if (end == p->at)
                return fail(p, "a default (None, True, False, a number or a string) expected");
            *out = esg_value_float(real);
        }
        p->at = end;
    }
    if (*out == NULL)
        return esg_error_set(p->err, ESG_ENOMEM, "out of memory reading a signature");
    return ESG_OK;
}

static esg_status parameter(parser *p, esg_signature *s, size_t capacity[1])
{
    size_t i = s->n_params;
    if (!esg_grow((void **)&s->params, &capacity[0], i + 1, sizeof *s->params))
        return esg_error_set(p->err, ESG_ENOMEM, "out of memory reading a signature");
    /* The three arrays grow together: types and defaults to the same capacity as params. */
    sig_type *types = esg_realloc(s->types, capacity[0] * sizeof *types);
    if (types != NULL)
        s->types = types;
    esg_value **defaults = types ? esg_realloc(s->defaults, capacity[0] * sizeof *defaults) : NULL;
    if (defaults == NULL)
        return esg_error_set(p->err, ESG_ENOMEM, "out of memory reading a signature");
    s->defaults = defaults;
    s->params[i] = NULL;
    s->types[i] = (sig_type){SIG_ANY, false, NULL};
    s->defaults[i] = NULL;
    s->n_params++;
    esg_status rc = identifier(p, "a parameter name expected", &s->params[i]);
    for (size_t k = 0; rc == ESG_OK && k < i; k++)
        if (strcmp(s->params[k], s->params[i]) == 0)
            rc = fail(p, "a parameter named twice");
    if (rc == ESG_OK && accept(p, ":"))
        rc = type_expression(p, &s->types[i]);
    if (rc == ESG_OK && accept(p, "=")) {
        rc = default_value(p, &s->defaults[i]);
        if (rc == ESG_OK && esg_value_type(s->defaults[i]) == ESG_TYPE_NULL)
            s->types[i].is_optional = true; /* "x: int = None" means Optional[int] */
        if (rc == ESG_OK && !esg_sig_type_accepts(&s->types[i], s->defaults[i]))
            rc = fail(p, "a default that is not of its parameter's type");
    } else if (rc == ESG_OK) {
        if (s->n_required != i)
            rc = fail(p, "a parameter without a default after one with a default");
        s->n_required = i + 1;
    }
    return rc;
}

esg_status esg_signature_parse(const char *text, esg_signature *out, esg_error *err)
{
    memset(out, 0, sizeof *out);
    parser p = {text, text, err};
    size_t capacity[1] = {0};
    esg_status rc = identifier(&p, "the method's name expected", &out->name);
    if (rc == ESG_OK && !accept(&p, "("))
        rc = fail(&p, "'(' expected");
    if (rc == ESG_OK && !accept(&p, ")")) {
        do
            rc = parameter(&p, out, capacity);
        while (rc == ESG_OK && accept(&p, ","));
        if (rc == ESG_OK && !accept(&p, ")"))
            rc = fail(&p, "',' or ')' expected");
    }
    if (rc == ESG_OK && accept(&p, "->")) {
        out->has_return_type = true;
        if (accept(&p, "None"))
            out->return_type.kind = SIG_NONE;
        else
            rc = type_expression(&p, &out->return_type);
    }
    skip_space(&p);
    if (rc == ESG_OK && *p.at != '\0')
        rc = fail(&p, "nothing expected");
    return rc;
}

static void clear_type(sig_type *type)
{
    esg_free(type->custom);
    type->custom = NULL;
}

void esg_signature_clear(esg_signature *s)
{
    esg_free(s->name);
    for (size_t i = 0; i < s->n_params; i++) {
        esg_free(s->params[i]);
        clear_type(&s->types[i]);
        esg_value_free(s->defaults[i]);
    }
    esg_free(s->params);
    esg_free(s->types);
    esg_free(s->defaults);
    clear_type(&s->return_type);
    memset(s, 0, sizeof *s);
}

bool esg_sig_type_accepts(const sig_type *type, const esg_value *value)
{
    esg_type t = esg_value_type(value);
    if (t == ESG_TYPE_NULL)
        return type->is_optional || type->kind == SIG_ANY || type->kind == SIG_NONE;
    switch (type->kind) {
    case SIG_NONE:
        return false;
    case SIG_ANY:
        return true;
    case SIG_UUID:
        return t == ESG_TYPE_UUID;
    case SIG_INT:
        return t == ESG_TYPE_INT;
    case SIG_FLOAT:
        return t == ESG_TYPE_FLOAT || t == ESG_TYPE_INT;
    case SIG_STR:
        return t == ESG_TYPE_STRING;
    case SIG_BOOL:
        return t == ESG_TYPE_BOOL;
    case SIG_DATETIME:
        return t == ESG_TYPE_DATETIME;
    case SIG_DECIMAL:
        return t == ESG_TYPE_DECIMAL;
    case SIG_DICT:
        return t == ESG_TYPE_OBJECT;
    case SIG_LIST:
        return t == ESG_TYPE_ARRAY;
    case SIG_CUSTOM:
        return t == ESG_TYPE_CUSTOM && strcmp(esg_value_custom_name(value), type->custom) == 0;
    }
    return false;
}

const char *esg_sig_type_phrase(const sig_type *type, char *buffer, size_t buffer_size)
{
    static const char *const phrases[] = {
        [SIG_ANY] = "a value",
        [SIG_UUID] = "a UUID",
        [SIG_INT] = "an int",
        [SIG_FLOAT] = "a float",
        [SIG_STR] = "a str",
        [SIG_BOOL] = "a bool",
        [SIG_DATETIME] = "a datetime",
        [SIG_DECIMAL] = "a Decimal",
        [SIG_DICT] = "a dict",
        [SIG_LIST] = "a list",
        [SIG_CUSTOM] = "a custom value",
        [SIG_NONE] = "None",
    };
    const char *phrase = type->kind == SIG_CUSTOM ? type->custom : phrases[type->kind];
    snprintf(buffer, buffer_size, "%s%s", phrase, type->is_optional ? " or None" : "");
    return buffer;
}
