/* The registry of custom transcodings: the names JSON decoding accepts beside the built-in
 * uuid_hex, datetime_iso and decimal_str. A growable array under a read-write lock: registered
 * at start, read on every decode of a custom type. */
#include <pthread.h>
#include <string.h>

#include "esg/value.h"
#include "core/alloc.h"
#include "core/grow.h"

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static const esg_transcoding **registry; /* borrowed transcodings, in registration order */
static size_t n_registered;
static size_t registry_capacity;

static const esg_transcoding *find_locked(const char *name)
{
    for (size_t i = 0; i < n_registered; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const esg_transcoding *esg_transcoding_find(const char *name)
{
    pthread_rwlock_rdlock(&registry_lock);
    const esg_transcoding *t = find_locked(name);
    pthread_rwlock_unlock(&registry_lock);
    return t;
}

esg_status esg_transcoding_register(const esg_transcoding *t, esg_error *err)
{
    static const char *const built_in[] = {"uuid_hex", "datetime_iso", "decimal_str"};
    if (t == NULL || t->name == NULL || t->name[0] == '\0' || t->encode == NULL ||
        t->decode == NULL || t->size == 0)
        return esg_error_set(err, ESG_EINVAL,
                             "a transcoding needs a name, a size, encode and decode");
    for (size_t i = 0; i < sizeof built_in / sizeof built_in[0]; i++)
        if (strcmp(t->name, built_in[i]) == 0)
            return esg_error_set(err, ESG_EINVAL, "'%s' is a built-in transcoding", t->name);
    esg_status rc = ESG_OK;
    pthread_rwlock_wrlock(&registry_lock);
    const esg_transcoding *known = find_locked(t->name);
    if (known != NULL && known != t)
        rc =
            esg_error_set(err, ESG_EINVAL, "another transcoding is registered as '%.64s'", t->name);
    else if (known == NULL &&
             !esg_grow((void **)&registry, &registry_capacity, n_registered + 1, sizeof *registry))
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory registering a transcoding");
    else if (known == NULL)
        registry[n_registered++] = t;
    pthread_rwlock_unlock(&registry_lock);
    return rc;
}
