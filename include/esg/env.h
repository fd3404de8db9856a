/* An environment: a map of strings that configures applications and
 * persistence, looked up the way the Python eventsourcing library does. */
#ifndef ESG_ENV_H
#define ESG_ENV_H

#include <stddef.h>

#include "esg/alloc.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esg_env esg_env;

/* A new empty environment, or NULL when out of memory. Free with esg_env_free. */
esg_env *esg_env_new(void);

/* A copy of the process environment (environ), or NULL when out of memory. */
esg_env *esg_env_from_process(void);

/* A deep copy of env, or NULL when out of memory. */
esg_env *esg_env_copy(const esg_env *env);

/* Sets key to value (both copied; a later set replaces the value). */
esg_status esg_env_set(esg_env *env, const char *key, const char *value, esg_error *err);

/* Removes key if present. */
void esg_env_unset(esg_env *env, const char *key);

/* The value of key, or NULL when unset. Borrowed: valid until the key is set,
 * unset or the environment freed. */
const char *esg_env_get(const esg_env *env, const char *key);

/* Looks up "<NAME>_<KEY>" (NAME upper-cased) and then "<KEY>", as the Python
 * library's Environment does; the first that is set wins, even if empty.
 * name may be NULL or "" for an unprefixed lookup. Borrowed, or NULL. */
const char *esg_env_lookup(const esg_env *env, const char *name, const char *key);

/* "<NAME>_<KEY>" with NAME upper-cased (ASCII): the key esg_env_lookup tries
 * first, and the form of every per-application key (ORDERS_GRPC_SERVER_ADDRESS).
 * The caller frees it with esg_free; NULL when out of memory. */
char *esg_env_prefixed_key(const char *name, const char *key);

/* Listing: the number of entries, and the key and value of entry i < len
 * (borrowed, valid until the environment changes), in no particular order. */
size_t esg_env_len(const esg_env *env);
const char *esg_env_key_at(const esg_env *env, size_t i);
const char *esg_env_value_at(const esg_env *env, size_t i);

/* The keys of env that are no setting the library reads but come within two letters of one, with
 * or without the prefix of one of the applications named (app_names, n_apps of them, borrowed):
 * a misspelt PERSISTENCE_MODUL would otherwise leave the application in memory without a word.
 * Each as "PERSISTENCE_MODUL is not a setting: did you mean PERSISTENCE_MODULE?" in a new
 * NULL-terminated array (*out, NULL when there is none), which the caller frees with
 * esg_env_free_texts. ESG_ENOMEM only. */
esg_status esg_env_near_misses(const esg_env *env, const char *const *app_names, size_t n_apps,
                               char ***out, esg_error *err);

/* Frees a NULL-terminated array of texts and each text (NULL is allowed). */
void esg_env_free_texts(char **texts);

/* Frees env and its strings. NULL is allowed. */
void esg_env_free(esg_env *env);

#ifdef __cplusplus
}
#endif
#endif
