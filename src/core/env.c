/* An environment of string settings, with the Python library's prefixed lookup. */
#include "esg/env.h"
#include "core/grow.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

extern char **environ;

typedef struct env_entry {
    char *key;   /* owned */
    char *value; /* owned */
} env_entry;

struct esg_env {
    env_entry *entries; /* unordered; environments are small, so a linear scan is enough */
    size_t n_entries;
    size_t capacity;
};

esg_env *esg_env_new(void)
{
    return esg_calloc(1, sizeof(esg_env));
}

static env_entry *find(const esg_env *env, const char *key)
{
    for (size_t i = 0; i < env->n_entries; i++)
        if (strcmp(env->entries[i].key, key) == 0)
            return &env->entries[i];
    return NULL;
}

esg_status esg_env_set(esg_env *env, const char *key, const char *value, esg_error *err)
{
    char *value_copy = esg_strdup(value);
    if (value_copy == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory setting %s", key);
    env_entry *entry = find(env, key);
    if (entry != NULL) {
        esg_free(entry->value);
        entry->value = value_copy;
        return ESG_OK;
    }
    char *key_copy = esg_strdup(key);
    if (key_copy == NULL)
        goto nomem;
    if (!esg_grow((void **)&env->entries, &env->capacity, env->n_entries + 1, sizeof *env->entries))
        goto nomem;
    env->entries[env->n_entries++] = (env_entry){key_copy, value_copy};
    return ESG_OK;
nomem:
    esg_free(key_copy);
    esg_free(value_copy);
    return esg_error_set(err, ESG_ENOMEM, "out of memory setting %s", key);
}

esg_env *esg_env_from_process(void)
{
    esg_env *env = esg_env_new();
    if (env == NULL)
        return NULL;
    for (char **p = environ; p != NULL && *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq == NULL)
            continue;
        size_t key_len = (size_t)(eq - *p);
        char *key = esg_strndup(*p, key_len);
        if (key == NULL || esg_env_set(env, key, eq + 1, NULL) != ESG_OK) {
            esg_free(key);
            esg_env_free(env);
            return NULL;
        }
        esg_free(key);
    }
    return env;
}

esg_env *esg_env_copy(const esg_env *env)
{
    esg_env *copy = esg_env_new();
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < env->n_entries; i++) {
        if (esg_env_set(copy, env->entries[i].key, env->entries[i].value, NULL) != ESG_OK) {
            esg_env_free(copy);
            return NULL;
        }
    }
    return copy;
}

void esg_env_unset(esg_env *env, const char *key)
{
    env_entry *entry = find(env, key);
    if (entry == NULL)
        return;
    esg_free(entry->key);
    esg_free(entry->value);
    *entry = env->entries[--env->n_entries];
}

const char *esg_env_get(const esg_env *env, const char *key)
{
    const env_entry *entry = find(env, key);
    return entry ? entry->value : NULL;
}

/* Whether entry_key is "<NAME>_<KEY>" with NAME upper-cased, compared in
 * place so that a lookup never allocates (and so never fails). */
static bool is_prefixed_key(const char *entry_key, const char *name, const char *key)
{
    const char *p = entry_key;
    for (const char *q = name; *q != '\0'; q++, p++)
        if (*p != (char)toupper((unsigned char)*q))
            return false;
    return *p == '_' && strcmp(p + 1, key) == 0;
}

const char *esg_env_lookup(const esg_env *env, const char *name, const char *key)
{
    if (name != NULL && name[0] != '\0') {
        for (size_t i = 0; i < env->n_entries; i++)
            if (is_prefixed_key(env->entries[i].key, name, key))
                return env->entries[i].value;
    }
    return esg_env_get(env, key);
}

char *esg_env_prefixed_key(const char *name, const char *key)
{
    size_t name_len = strlen(name), key_len = strlen(key);
    char *prefixed = esg_malloc(name_len + 1 + key_len + 1);
    if (prefixed == NULL)
        return NULL;
    for (size_t i = 0; i < name_len; i++)
        prefixed[i] = (char)toupper((unsigned char)name[i]);
    prefixed[name_len] = '_';
    memcpy(prefixed + name_len + 1, key, key_len + 1);
    return prefixed;
}

size_t esg_env_len(const esg_env *env)
{
    return env->n_entries;
}

const char *esg_env_key_at(const esg_env *env, size_t i)
{
    return i < env->n_entries ? env->entries[i].key : NULL;
}

const char *esg_env_value_at(const esg_env *env, size_t i)
{
    return i < env->n_entries ? env->entries[i].value : NULL;
}

void esg_env_free(esg_env *env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; i < env->n_entries; i++) {
        esg_free(env->entries[i].key);
        esg_free(env->entries[i].value);
    }
    esg_free(env->entries);
    esg_free(env);
}
