/* The environment configuration parsers behind esg_recorder_open
 * (PERSISTENCE_MODULE and its legacy names, SQLITE_*, POSTGRES_*, CREATE_TABLE,
 * IS_SNAPSHOTTING_ENABLED) and esg_mapper_open (CIPHER_TOPIC, CIPHER_KEY in
 * base64, COMPRESSOR_TOPIC), each with its "<APP>_" prefixed form). The input's first line is the
 * application name (empty for none), the others KEY=VALUE. Nothing is written and nothing is
 * reached over a network: a non-empty SQLITE_DBNAME becomes ":memory:", and
 * libpq is never loaded (dlopen is wrapped: -Wl,--wrap=dlopen). */
#include "fuzz_common.h"

#include <stdbool.h>

#include "esg/mapper.h"
#include "esg/recorder.h"

/* The recorder loads libpq with dlopen once its settings are parsed: the
 * wrapped dlopen refuses it, so the parsers are fuzzed and no connection is
 * ever made (the recorder answers ESG_ECONFIG "needs libpq"). Any other
 * library is loaded as usual. */
void *__wrap_dlopen(const char *file, int mode);
void *__real_dlopen(const char *file, int mode);

void *__wrap_dlopen(const char *file, int mode)
{
    if (file != NULL && strncmp(file, "libpq.so", 8) == 0)
        return NULL;
    return __real_dlopen(file, mode);
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t len = strlen(text), suffix_len = strlen(suffix);
    return len >= suffix_len && strcmp(text + len - suffix_len, suffix) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    esg_env *env = esg_env_new();
    if (env == NULL)
        abort();
    char *app_name = text, *line = strchr(text, '\n');
    if (line != NULL)
        *line++ = '\0';
    while (line != NULL) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq != NULL) {
            *eq = '\0';
            const char *value = eq + 1;
            if (ends_with(line, "SQLITE_DBNAME") && value[0] != '\0')
                value = ":memory:"; /* never a file, nor a "file:" URI */
            if (esg_env_set(env, line, value, NULL) != ESG_OK)
                abort();
        }
        line = next;
    }

    esg_error err = {0};
    esg_recorder *recorder = NULL;
    esg_status rc = esg_recorder_open(env, app_name[0] ? app_name : NULL, &recorder, &err);
    FUZZ_CHECK((rc == ESG_OK) == (recorder != NULL), "status %d with recorder %p", rc,
               (void *)recorder);
    FUZZ_CHECK(rc == ESG_OK || err.message[0] != '\0', "a failure without a message");
    if (recorder != NULL) {
        int64_t max_id = -1;
        FUZZ_CHECK(esg_recorder_max_notification_id(recorder, &max_id, &err) == ESG_OK &&
                       max_id == 0,
                   "a new recorder is not empty (%s)", err.message);
        esg_recorder_close(recorder);
    }
    /* The mapper the same settings make: what it encodes, it decodes. */
    esg_mapper *mapper = NULL;
    rc = esg_mapper_open(env, app_name[0] ? app_name : NULL, &mapper, &err);
    FUZZ_CHECK((rc == ESG_OK) == (mapper != NULL), "mapper status %d with mapper %p", rc,
               (void *)mapper);
    FUZZ_CHECK(rc == ESG_OK || rc == ESG_ECONFIG, "mapper refused with %s (%s)",
               esg_status_name(rc), err.message);
    if (mapper != NULL) {
        static const uint8_t json[] = "{\"timestamp\":1}";
        uint8_t *stored = NULL, *back = NULL;
        size_t stored_len = 0, back_len = 0;
        FUZZ_CHECK(esg_mapper_encode_state(mapper, json, sizeof json - 1, &stored, &stored_len,
                                           &err) == ESG_OK &&
                       esg_mapper_decode_state(mapper, stored, stored_len, &back, &back_len,
                                               &err) == ESG_OK &&
                       back_len == sizeof json - 1 && memcmp(back, json, back_len) == 0,
                   "the mapper does not round-trip (%s)", err.message);
        free(stored);
        free(back);
        esg_mapper_free(mapper);
    }
    esg_env_free(env);
    free(text);
    return 0;
}
