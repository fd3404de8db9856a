/* JSON text to values in one pass: yajl's event parser reads the text (RFC 8259) and calls back
 * for each token, and the values are built as the tokens come, with no tree in between. On top
 * of yajl, what Python's json (and the vectors) need: strict UTF-8 and paired UTF-16 surrogate
 * escapes, integers in 64 bits and reals in a double, the last value of a repeated key in the
 * first one's place, and {"_type_","_data_"} pairs turned into UUIDs, datetimes, decimals and
 * custom values as eventsourcing's JSONTranscoder does. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "core/alloc.h"
#include "transcoding/decimal.h"
#include "transcoding/json_text.h"
#include "transcoding/value_internal.h"

/* yajl's first blocks (handle, lexer, buffers, state stack: ~2.5 KB with the decoding buffer's
 * first 2 KB) come from the decoder itself, which saves five mallocs and frees per text; what
 * grows past it comes from the heap, each block tracked. */
#define ARENA_BYTES 4096
#define MAX_HEAP_BLOCKS 8
/* Objects up to this many members have repeated keys looked for pairwise; bigger ones through a
 * sorted index, so that a hostile object with many keys is not quadratic. */
#define PAIRWISE_MEMBERS 32

typedef struct decoder {
    const char *text; /* borrowed: the whole input */
    size_t text_len;
    esg_value *root;                         /* owned; containers join it as they open */
    esg_value *open[ESG_JSON_MAX_DEPTH + 1]; /* the open containers, outermost first */
    size_t depth;                            /* how many are open */
    char *key;                               /* owned: the pending member's key */
    size_t key_len, key_capacity;            /* (copied: yajl's may not outlive the value) */
    esg_status rc;                           /* why a callback stopped the parse */
    yajl_handle handle;                      /* the parse's */
    bool is_finishing;                       /* in yajl_complete_parse */
    size_t root_end;                         /* where the top value ended (0: not yet, */
                                             /* or at the text's end) */
    esg_error *err;                          /* borrowed: set with rc */
    /* yajl does not check its allocations: one that fails jumps back to parse_guarded, which
     * frees every heap block yajl holds (tracked here) and reports ENOMEM. */
    jmp_buf no_memory;
    void *heap_blocks[MAX_HEAP_BLOCKS];
    size_t arena_used;
    _Alignas(max_align_t) unsigned char arena[ARENA_BYTES];
} decoder;

/* ---- yajl's memory ---- */

/* Each arena block is preceded by its size, in a header that keeps the blocks aligned. */
#define ARENA_HEADER sizeof(max_align_t)

static bool is_in_arena(const decoder *d, const void *block)
{
    uintptr_t at = (uintptr_t)block, start = (uintptr_t)d->arena;
    return at >= start && at < start + ARENA_BYTES;
}

/* A block of the arena, or NULL when it has no room left. */
static void *arena_take(decoder *d, size_t size)
{
    size_t rounded = (size + ARENA_HEADER - 1) / ARENA_HEADER * ARENA_HEADER;
    if (size > ARENA_BYTES || ARENA_HEADER + rounded > ARENA_BYTES - d->arena_used)
        return NULL;
    unsigned char *block = d->arena + d->arena_used + ARENA_HEADER;
    memcpy(block - ARENA_HEADER, &size, sizeof size);
    d->arena_used += ARENA_HEADER + rounded;
    return block;
}

static void **find_heap_block(decoder *d, void *block)
{
    for (size_t i = 0; i < MAX_HEAP_BLOCKS; i++)
        if (d->heap_blocks[i] == block)
            return &d->heap_blocks[i];
    return NULL;
}

/* yajl's realloc, and its malloc (previous NULL): an arena block moves (to the arena while it
 * has room, else to the heap), a heap block is reallocated. Never returns NULL: jumps. */
static void *yajl_realloc_tracked(void *ctx, void *previous, size_t size)
{
    decoder *d = ctx;
    if (previous == NULL || is_in_arena(d, previous)) {
        void *block = arena_take(d, size);
        void **slot = block == NULL ? find_heap_block(d, NULL) : NULL;
        if (slot != NULL && (block = *slot = esg_malloc(size == 0 ? 1 : size)) == NULL)
            longjmp(d->no_memory, 1);
        if (block == NULL) /* no free slot: yajl holds more than it ever does */
            longjmp(d->no_memory, 1);
        if (previous != NULL) {
            size_t previous_size;
            memcpy(&previous_size, (unsigned char *)previous - ARENA_HEADER, sizeof previous_size);
            memcpy(block, previous, previous_size < size ? previous_size : size);
        }
        return block;
    }
    void **slot = find_heap_block(d, previous);
    void *block = slot == NULL ? NULL : esg_realloc(previous, size == 0 ? 1 : size);
    if (block == NULL)
        longjmp(d->no_memory, 1);
    *slot = block;
    return block;
}

static void *yajl_malloc_tracked(void *ctx, size_t size)
{
    return yajl_realloc_tracked(ctx, NULL, size);
}

static void yajl_free_tracked(void *ctx, void *block)
{
    decoder *d = ctx;
    if (block == NULL || is_in_arena(d, block))
        return; /* (the arena goes with the decoder) */
    void **slot = find_heap_block(d, block);
    if (slot != NULL)
        *slot = NULL;
    esg_free(block);
}

static void free_heap_blocks(decoder *d)
{
    for (size_t i = 0; i < MAX_HEAP_BLOCKS; i++) {
        esg_free(d->heap_blocks[i]);
        d->heap_blocks[i] = NULL;
    }
}

/* ---- Building values ---- */

static int stop(decoder *d, esg_status rc, const char *message)
{
    d->rc = esg_error_set(d->err, rc, "%s", message);
    return 0;
}

static int stop_no_memory(decoder *d)
{
    return stop(d, ESG_ENOMEM, "out of memory decoding JSON");
}

/* Checks a string or key yajl decoded: its raw bytes were only checked loosely. */
static int is_valid_text(decoder *d, const unsigned char *s, size_t len)
{
    size_t at = esg_utf8_invalid_at(s, len);
    if (at == len)
        return 1;
    d->rc = esg_error_set(d->err, ESG_EINVAL,
                          "invalid JSON: a string is not valid UTF-8 at its byte %zu", at);
    return 0;
}

/* yajl takes a token cut off by the end of the text after the top value (`[1] "`, `1 tru`) as
 * a token to come and reports success: what follows the top value is checked at the end. */
static void note_root_end(decoder *d)
{
    if (!d->is_finishing) /* (then the value ended the text: a number's end is seen there) */
        d->root_end = yajl_get_bytes_consumed(d->handle);
}

static bool only_whitespace_after_root(const decoder *d)
{
    for (size_t i = d->root_end; i > 0 && i < d->text_len; i++)
        if (!strchr(" \t\n\r", d->text[i]) || d->text[i] == '\0')
            return false;
    return true;
}

/* Adds value (taken) where the text puts it: the root, an array's next item, or the pending
 * member of an object. */
static int add(decoder *d, esg_value *value)
{
    if (value == NULL)
        return stop_no_memory(d);
    if (d->depth > ESG_JSON_MAX_DEPTH) {
        esg_value_free(value);
        d->rc = esg_error_set(d->err, ESG_EINVAL, "JSON nested deeper than %d levels",
                              ESG_JSON_MAX_DEPTH);
        return 0;
    }
    if (d->depth == 0) {
        d->root = value;
        if (value->type != ESG_TYPE_ARRAY && value->type != ESG_TYPE_OBJECT)
            note_root_end(d);
        return 1;
    }
    esg_value *container = d->open[d->depth - 1];
    esg_status rc = container->type == ESG_TYPE_ARRAY
                        ? esg_array_append(container, value)
                        : esg_object_append_new_n(container, d->key, d->key_len, value);
    return rc == ESG_OK ? 1 : stop_no_memory(d);
}

static int on_null(void *ctx)
{
    return add(ctx, esg_value_null());
}

static int on_boolean(void *ctx, int b)
{
    return add(ctx, esg_value_bool(b != 0));
}

/* A number as yajl found it (the JSON grammar's): integers must fit in 64 bits, and reals in a
 * double, as jansson and the vectors have it (Python's int has no bound: such texts are refused
 * here rather than rounded). */
static int on_number(void *ctx, const char *number, size_t len)
{
    decoder *d = ctx;
    char small[64], *text = len < sizeof small ? small : esg_malloc(len + 1);
    if (text == NULL)
        return stop_no_memory(d);
    memcpy(text, number, len);
    text[len] = '\0';
    bool is_integer = strpbrk(text, ".eE") == NULL;
    esg_value *value = NULL;
    bool is_in_range = true;
    if (is_integer) {
        errno = 0;
        long long i = strtoll(text, NULL, 10);
        is_in_range = errno != ERANGE;
        value = is_in_range ? esg_value_int((int64_t)i) : NULL;
    } else {
        locale_t c_locale = esg_c_numeric_locale();
        if (c_locale == (locale_t)0) {
            if (text != small)
                esg_free(text);
            return stop_no_memory(d);
        }
        locale_t previous = uselocale(c_locale);
        errno = 0;
        double real = strtod(text, NULL);
        uselocale(previous);
        is_in_range = !(errno == ERANGE && isinf(real));
        value = is_in_range ? esg_value_float(real) : NULL;
    }
    if (!is_in_range)
        d->rc = esg_error_set(d->err, ESG_EINVAL,
                              "JSON number out of range: integers must fit in 64 bits, and reals "
                              "in a double (%.40s%s)",
                              text, len > 40 ? "..." : "");
    if (text != small)
        esg_free(text);
    return is_in_range ? add(d, value) : 0;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    decoder *d = ctx;
    return is_valid_text(d, s, len) && add(d, esg_value_string_n((const char *)s, len));
}

static int on_key(void *ctx, const unsigned char *key, size_t len)
{
    decoder *d = ctx;
    if (!is_valid_text(d, key, len))
        return 0;
    if (len + 1 > d->key_capacity) {
        char *bigger = esg_realloc(d->key, len + 1);
        if (bigger == NULL)
            return stop_no_memory(d);
        d->key = bigger;
        d->key_capacity = len + 1;
    }
    memcpy(d->key, key, len);
    d->key[len] = '\0';
    d->key_len = len;
    return 1;
}

/* A container joins its parent as it opens, so that whatever fails later frees it with root. */
static int open_container(decoder *d, esg_value *container)
{
    if (!add(d, container))
        return 0;
    d->open[d->depth++] = container;
    return 1;
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, esg_value_array());
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, esg_value_object());
}

static int on_end_array(void *ctx)
{
    decoder *d = ctx;
    if (--d->depth == 0)
        note_root_end(d);
    return 1;
}

static bool same_key(const struct esg_member *a, const struct esg_member *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

typedef struct {
    const char *key;
    size_t key_len;
    size_t place;
} sort_entry;

static int compare_entries(const void *a, const void *b)
{
    const sort_entry *x = a, *y = b;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    int order = memcmp(x->key, y->key, x->key_len);
    if (order != 0)
        return order;
    return x->place < y->place ? -1 : x->place > y->place; /* the first place first */
}

/* first[i]: the place of the first member with member i's key. */
static esg_status find_first_places(const struct esg_object *o, size_t *first)
{
    size_t n = o->n_members;
    if (n <= PAIRWISE_MEMBERS) {
        for (size_t i = 0; i < n; i++) {
            first[i] = i;
            for (size_t j = 0; j < i && first[i] == i; j++)
                if (same_key(&o->members[j], &o->members[i]))
                    first[i] = j;
        }
        return ESG_OK;
    }
    sort_entry *sorted = esg_malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return ESG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        sorted[i] = (sort_entry){o->members[i].key, o->members[i].key_len, i};
    qsort(sorted, n, sizeof *sorted, compare_entries);
    for (size_t k = 0; k < n; k++) {
        bool is_repeat = k > 0 && sorted[k - 1].key_len == sorted[k].key_len &&
                         memcmp(sorted[k - 1].key, sorted[k].key, sorted[k].key_len) == 0;
        first[sorted[k].place] = is_repeat ? first[sorted[k - 1].place] : sorted[k].place;
    }
    esg_free(sorted);
    return ESG_OK;
}

/* Python's json keeps the last value of a repeated key, in the place of the first. */
static esg_status merge_repeated_keys(struct esg_object *o)
{
    size_t n = o->n_members;
    if (n < 2)
        return ESG_OK;
    size_t few[PAIRWISE_MEMBERS];
    size_t *first = n <= PAIRWISE_MEMBERS ? few : esg_malloc(n * sizeof *first);
    if (first == NULL || find_first_places(o, first) != ESG_OK) {
        if (first != few)
            esg_free(first);
        return ESG_ENOMEM;
    }
    /* Members move down as repeats leave: first[p] becomes p's new place once p is kept (p is
     * always before the repeats that refer to it). */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct esg_member member = o->members[i];
        if (first[i] == i) {
            first[i] = kept;
            o->members[kept++] = member;
            continue;
        }
        struct esg_member *place = &o->members[first[first[i]]];
        esg_value_free(place->value);
        place->value = member.value;
        esg_free(member.key);
    }
    o->n_members = kept;
    if (first != few)
        esg_free(first);
    return ESG_OK;
}

/* Decodes the value of a {"_type_","_data_"} object: *data is taken when the result holds it.
 * Errors read like Python's, which is what a reference client would see. */
static esg_status decode_custom(const char *type, esg_value **data, esg_value **out, esg_error *err)
{
    bool is_string = (*data)->type == ESG_TYPE_STRING;
    const char *text = is_string ? (*data)->as.string.data : NULL;
    size_t text_len = is_string ? (*data)->as.string.len : 0;
    if (strcmp(type, "uuid_hex") == 0) {
        esg_uuid uuid;
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "uuid_hex data must be a string");
        esg_status rc = esg_uuid_parse(text, text_len, &uuid, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_value_uuid(&uuid);
    } else if (strcmp(type, "datetime_iso") == 0) {
        esg_datetime dt;
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "datetime_iso data must be a string");
        esg_status rc = esg_datetime_parse(text, text_len, &dt, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_value_datetime(&dt);
    } else if (strcmp(type, "decimal_str") == 0) {
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "decimal_str data must be a string");
        char *canonical = NULL;
        esg_status rc = esg_decimal_canonical(text, text_len, &canonical, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_calloc(1, sizeof **out);
        if (*out == NULL) {
            esg_free(canonical);
        } else {
            (*out)->type = ESG_TYPE_DECIMAL;
            (*out)->as.string.data = canonical;
            (*out)->as.string.len = strlen(canonical);
        }
    } else if (esg_transcoding_find(type) != NULL) {
        *out = esg_value_custom(type, *data); /* takes it, also when it fails */
        *data = NULL;
    } else {
        return esg_error_set(err, ESG_EINVAL,
                             "Data serialized with name '%.64s' is not deserializable. Please "
                             "register a custom transcoding for this type.",
                             type);
    }
    if (*out == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
    return ESG_OK;
}

static struct esg_member *member_named(struct esg_object *o, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < o->n_members; i++)
        if (o->members[i].key_len == len && memcmp(o->members[i].key, key, len) == 0)
            return &o->members[i];
    return NULL;
}

/* An object is complete: its repeated keys are merged, and a transcoded value replaces it in
 * place (its parent holds the same esg_value). */
static int on_end_map(void *ctx)
{
    decoder *d = ctx;
    esg_value *object = d->open[--d->depth];
    if (d->depth == 0)
        note_root_end(d);
    struct esg_object *o = &object->as.object;
    if (merge_repeated_keys(o) != ESG_OK)
        return stop_no_memory(d);
    struct esg_member *type = o->n_members == 2 ? member_named(o, "_type_") : NULL;
    struct esg_member *data = type != NULL ? member_named(o, "_data_") : NULL;
    if (data == NULL)
        return 1;
    if (type->value->type != ESG_TYPE_STRING)
        return stop(d, ESG_EINVAL, "a transcoded value's _type_ must be a string");
    esg_value *decoded = NULL;
    d->rc = decode_custom(type->value->as.string.data, &data->value, &decoded, d->err);
    if (d->rc != ESG_OK)
        return 0;
    esg_value replaced = *object;
    *object = *decoded;
    *decoded = replaced;
    esg_value_free(decoded); /* the object's members, under the shell decode_custom made */
    return 1;
}

/* ---- Text yajl must not see ---- */

/* The UTF-16 unit of the escape \uXXXX at p (a backslash), or -1 when there is none. */
static long escaped_unit(const char *p, const char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    long unit = 0;
    for (int i = 2; i < 6; i++) {
        char c = p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return -1;
        unit = unit * 16 + digit;
    }
    return unit;
}

/* yajl pairs a high surrogate escape with whichever \u escape follows it and turns a lone one
 * into '?'; Python's json keeps it, as a string no UTF-8 text can hold. Such text is refused
 * before yajl reads it: the offset of the first unpaired surrogate escape, or len. (Backslashes
 * are in strings only, in JSON that yajl then takes.) */
static size_t unpaired_surrogate_at(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (end - p >= 2 && (p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        long unit = escaped_unit(p, end);
        if (unit < 0xd800 || unit > 0xdfff) {
            p += 2; /* any escape is at least two characters: "\\" is not a backslash's start */
            continue;
        }
        long next = unit < 0xdc00 ? escaped_unit(p + 6, end) : -1;
        if (next < 0xdc00 || next > 0xdfff)
            return (size_t)(p - text);
        p += 12;
    }
    return len;
}

/* ---- The parse ---- */

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number, /* (instead of yajl_integer and yajl_double: the checks above) */
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

static void set_parse_error(decoder *d, yajl_handle handle, size_t at)
{
    unsigned char *message = yajl_get_error(handle, 0, NULL, 0);
    size_t len = strlen((const char *)message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
        len--;
    d->rc = esg_error_set(d->err, ESG_EINVAL, "invalid JSON at position %zu: %.*s", at, (int)len,
                          (const char *)message);
    yajl_free_error(handle, message);
}

/* Runs yajl over the text. After a longjmp only *d is read, which this function never changes
 * itself (what setjmp requires of the caller's objects). */
static yajl_status parse_guarded(decoder *d)
{
    if (setjmp(d->no_memory) != 0) {
        free_heap_blocks(d);
        d->rc = esg_error_set(d->err, ESG_ENOMEM, "out of memory decoding JSON");
        return yajl_status_error;
    }
    yajl_alloc_funcs funcs = {yajl_malloc_tracked, yajl_realloc_tracked, yajl_free_tracked, d};
    yajl_handle handle = d->handle = yajl_alloc(&callbacks, &funcs, d); /* (copies funcs) */
    yajl_status status = yajl_parse(handle, (const unsigned char *)d->text, d->text_len);
    if (status == yajl_status_error)
        set_parse_error(d, handle, yajl_get_bytes_consumed(handle));
    d->is_finishing = true;
    if (status == yajl_status_ok && (status = yajl_complete_parse(handle)) == yajl_status_error)
        set_parse_error(d, handle, d->text_len);
    if (status == yajl_status_ok && !only_whitespace_after_root(d)) {
        d->rc = esg_error_set(d->err, ESG_EINVAL, "invalid JSON at position %zu: trailing garbage",
                              d->root_end);
        status = yajl_status_error;
    }
    yajl_free(handle);
    return status;
}

esg_status esg_json_decode(const char *text, size_t text_len, esg_value **out, esg_error *err)
{
    *out = NULL;
    if (text == NULL)
        return esg_error_set(err, ESG_EINVAL, "no JSON text");
    /* yajl takes vertical tabs and form feeds for whitespace; JSON has them nowhere unescaped. */
    for (const char *c = "\v\f"; *c != '\0'; c++) {
        const char *found = memchr(text, *c, text_len);
        if (found != NULL)
            return esg_error_set(err, ESG_EINVAL, "invalid JSON at position %zu: invalid character",
                                 (size_t)(found - text));
    }
    size_t surrogate_at = unpaired_surrogate_at(text, text_len);
    if (surrogate_at < text_len)
        return esg_error_set(err, ESG_EINVAL,
                             "invalid JSON at position %zu: a UTF-16 surrogate escape without "
                             "its pair",
                             surrogate_at);
    decoder d; /* (not zeroed whole: the open containers and the arena are written before read) */
    d.text = text;
    d.text_len = text_len;
    d.root = NULL;
    d.depth = 0;
    d.key = NULL;
    d.key_len = d.key_capacity = 0;
    d.rc = ESG_OK;
    d.err = err;
    d.handle = NULL;
    d.is_finishing = false;
    d.root_end = 0;
    memset(d.heap_blocks, 0, sizeof d.heap_blocks);
    d.arena_used = 0;
    yajl_status status = parse_guarded(&d);
    esg_free(d.key);
    if (status != yajl_status_ok) {
        esg_value_free(d.root);
        return d.rc != ESG_OK ? d.rc : esg_error_set(err, ESG_EINVAL, "invalid JSON");
    }
    *out = d.root;
    return ESG_OK;
}
