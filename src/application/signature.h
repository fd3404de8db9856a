/* Method signatures written as Python writes them ("increment(counter_id: UUID, by: int = 1) ->
 * int"): parsed once when an application starts, then used to bind, default and check the
 * arguments of every call. Internal to the application layer. */
#ifndef ESG_SIGNATURE_H
#define ESG_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "esg/application.h"

typedef enum sig_kind {
    SIG_ANY,
    SIG_UUID,
    SIG_INT,
    SIG_FLOAT,
    SIG_STR,
    SIG_BOOL,
    SIG_DATETIME,
    SIG_DECIMAL,
    SIG_DICT,
    SIG_LIST,
    SIG_CUSTOM, /* a registered transcoding, by name */
    SIG_NONE    /* a return type of None */
} sig_kind;

typedef struct sig_type {
    sig_kind kind;
    bool is_optional; /* None is accepted too */
    char *custom;     /* SIG_CUSTOM: the transcoding's name (owned) */
} sig_type;

typedef struct esg_signature {
    char *name;    /* owned */
    char **params; /* owned names, n_params of them */
    size_t n_params;
    size_t n_required;    /* the parameters without a default come first */
    sig_type *types;      /* n_params */
    esg_value **defaults; /* n_params: owned, NULL for the required ones */
    bool has_return_type;
    sig_type return_type;
} esg_signature;

/* Parses text into *out (zeroed first; clear it with esg_signature_clear, also after a failure).
 * ESG_ECONFIG says where text is wrong. */
esg_status esg_signature_parse(const char *text, esg_signature *out, esg_error *err);

void esg_signature_clear(esg_signature *signature);

/* Whether value (not NULL) is of type. */
bool esg_sig_type_accepts(const sig_type *type, const esg_value *value);

/* What a value of type must be, for messages: "a UUID", "an int or None"... (static text, or
 * written into buffer). */
const char *esg_sig_type_phrase(const sig_type *type, char *buffer, size_t buffer_size);

#endif
