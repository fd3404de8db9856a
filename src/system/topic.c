/* Topics to application types and systems: those registered by the program (the example, by
 * the console programs) from a registry, anything else from a shared library a user built, found
 * by its module name along ESG_TOPIC_PATH and then by the dynamic loader's search. */
#include "esg/topic.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/alloc.h"

/* Long enough for any module name and folder we accept; longer ones are refused. */
#define TOPIC_PATH_MAX 4096

/* The kinds of thing a topic can name. */
typedef enum topic_kind {
    TOPIC_APPLICATION, /* an esg_application_type */
    TOPIC_SYSTEM       /* an esg_system_def */
} topic_kind;

typedef struct registered_topic {
    const char *topic;  /* "module:Name", borrowed from the object */
    topic_kind kind;    /* what object points to */
    const void *object; /* the esg_application_type or esg_system_def, borrowed */
} registered_topic;

/* dlerror() text belongs to the thread and the last dl call; one lock keeps
 * each resolution's open, lookup and error reading together. It guards the
 * registry too. */
static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static registered_topic *registry; /* grows, never shrinks: the process's registrations */
static size_t n_registered, registry_capacity;

static const char *kind_name(topic_kind kind)
{
    return kind == TOPIC_APPLICATION ? "an application type" : "a system";
}

static bool is_module_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* Splits "module:Name" into its parts (copied into the buffers); anything
 * else is ESG_EINVAL. Module characters are limited so that a topic can
 * never name a path outside the folders searched. */
static esg_status split_topic(const char *topic, char *module, size_t module_size, char *name,
                              size_t name_size, esg_error *err)
{
    if (topic == NULL)
        return esg_error_set(err, ESG_EINVAL, "the topic is missing");
    const char *colon = strchr(topic, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
        return esg_error_set(err, ESG_EINVAL,
                             "topic '%s' is malformed: expected 'module:Name' with one ':'", topic);
    size_t module_len = (size_t)(colon - topic), name_len = strlen(colon + 1);
    if (module_len == 0 || name_len == 0)
        return esg_error_set(err, ESG_EINVAL,
                             "topic '%s' is malformed: the module and the name must not be empty",
                             topic);
    if (module_len >= module_size || name_len >= name_size)
        return esg_error_set(err, ESG_EINVAL, "topic '%.64s...' is too long", topic);
    for (size_t i = 0; i < module_len; i++)
        if (!is_module_char(topic[i]))
            return esg_error_set(err, ESG_EINVAL,
                                 "topic '%s' is malformed: the module may only hold letters, "
                                 "digits, '_', '.' and '-'",
                                 topic);
    const char *name_start = colon + 1;
    if (isdigit((unsigned char)name_start[0]))
        return esg_error_set(err, ESG_EINVAL,
                             "topic '%s' is malformed: the name must be a C identifier", topic);
    for (size_t i = 0; i < name_len; i++)
        if (!isalnum((unsigned char)name_start[i]) && name_start[i] != '_')
            return esg_error_set(err, ESG_EINVAL,
                                 "topic '%s' is malformed: the name must be a C identifier", topic);
    memcpy(module, topic, module_len);
    module[module_len] = '\0';
    memcpy(name, name_start, name_len + 1);
    return ESG_OK;
}

/* Whether a loaded symbol carries the magic of the wanted kind: both structs
 * start with it, so a symbol of the other kind (or any other data) is told
 * apart before anything else of it is read. */
static bool has_magic(const void *object, topic_kind kind)
{
    uint32_t magic;
    memcpy(&magic, object, sizeof magic);
    return magic == (kind == TOPIC_APPLICATION ? ESG_APPLICATION_TYPE_MAGIC : ESG_SYSTEM_DEF_MAGIC);
}

/* What the search learnt, for the message when nothing matched. */
typedef struct search_state {
    void *handle;              /* the first library that loaded, or NULL */
    char path[TOPIC_PATH_MAX]; /* the file or name it loaded from */
    bool has_file_error;       /* load_error is that of a file that exists */
    char load_error[512];      /* dlerror() of the most telling failed load, or "" */
} search_state;

/* Tries one candidate; keeps the first that loads. A file that exists but
 * does not load (a bad ELF, a missing dependency) is the error worth
 * reporting, over the "no such file" of the other candidates. */
static void try_load(search_state *search, const char *path, bool is_file)
{
    if (search->handle != NULL)
        return;
    if (is_file && access(path, F_OK) != 0)
        return;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle != NULL) {
        search->handle = handle;
        snprintf(search->path, sizeof search->path, "%s", path);
        return;
    }
    const char *text = dlerror();
    if (search->has_file_error || (!is_file && search->load_error[0] != '\0'))
        return;
    snprintf(search->load_error, sizeof search->load_error, "%s",
             text ? text : "unknown loader error");
    search->has_file_error = is_file;
}

/* Tries "<dir>/<module>.so" and "<dir>/lib<module>.so" for each folder of
 * path_list (colon-separated; empty entries are skipped rather than read as
 * the current folder, so that a stray ':' never loads code from there). */
static void search_topic_path(search_state *search, const char *path_list, const char *module)
{
    const char *entry = path_list;
    while (entry != NULL && *entry != '\0' && search->handle == NULL) {
        const char *end = strchr(entry, ':');
        size_t dir_len = end ? (size_t)(end - entry) : strlen(entry);
        char path[TOPIC_PATH_MAX];
        if (dir_len > 0 && dir_len + strlen(module) + 8 < sizeof path) {
            snprintf(path, sizeof path, "%.*s/%s.so", (int)dir_len, entry, module);
            try_load(search, path, true);
            snprintf(path, sizeof path, "%.*s/lib%s.so", (int)dir_len, entry, module);
            try_load(search, path, true);
        }
        entry = end ? end + 1 : NULL;
    }
}

static esg_status resolve(const char *topic, const esg_env *env, topic_kind kind, const void **out,
                          esg_error *err)
{
    char module[256], name[256];
    *out = NULL;
    esg_status rc = split_topic(topic, module, sizeof module, name, sizeof name, err);
    if (rc != ESG_OK)
        return rc;

    bool is_registered_module = false;
    const registered_topic *found = NULL;
    pthread_mutex_lock(&loader_lock);
    for (size_t i = 0; i < n_registered && found == NULL; i++) {
        if (strcmp(registry[i].topic, topic) == 0)
            found = &registry[i];
        else if (strncmp(registry[i].topic, module, strlen(module)) == 0 &&
                 registry[i].topic[strlen(module)] == ':')
            is_registered_module = true;
    }
    registered_topic entry = found != NULL ? *found : (registered_topic){0};
    pthread_mutex_unlock(&loader_lock);
    if (found != NULL && entry.kind != kind)
        return esg_error_set(err, ESG_ENOTFOUND, "topic %s names %s, not %s", topic,
                             kind_name(entry.kind), kind_name(kind));
    if (found != NULL) {
        *out = entry.object;
        return ESG_OK;
    }
    /* A registered module is not a file: its other names do not exist. */
    if (is_registered_module)
        return esg_error_set(err, ESG_ENOTFOUND, "the registered module %s has no %s", module,
                             name);

    const char *path_list = env ? esg_env_get(env, "ESG_TOPIC_PATH") : getenv("ESG_TOPIC_PATH");
    search_state *search = esg_calloc(1, sizeof *search);
    if (search == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory resolving %s", topic);

    pthread_mutex_lock(&loader_lock);
    search_topic_path(search, path_list, module);
    char lib_name[sizeof module + 8];
    snprintf(lib_name, sizeof lib_name, "lib%s.so", module);
    try_load(search, lib_name, false);
    snprintf(lib_name, sizeof lib_name, "%s.so", module);
    try_load(search, lib_name, false);

    if (search->handle == NULL) {
        rc = esg_error_set(err, ESG_ENOTFOUND,
                           "topic %s: no library %s.so or lib%s.so loads from ESG_TOPIC_PATH "
                           "(%s) or the loader's search path: %s",
                           topic, module, module, path_list ? path_list : "unset",
                           search->load_error);
        goto out;
    }
    dlerror(); /* a NULL symbol is told apart from a failed lookup by dlerror() */
    void *symbol = dlsym(search->handle, name);
    const char *text = dlerror();
    if (symbol == NULL) {
        rc = esg_error_set(err, ESG_ENOTFOUND, "topic %s: %s has no symbol %s: %s", topic,
                           search->path, name, text ? text : "its value is NULL");
    } else if (!has_magic(symbol, kind)) {
        rc = esg_error_set(err, ESG_ENOTFOUND,
                           "topic %s: %s in %s is not %s (its magic number does not match)", topic,
                           name, search->path, kind_name(kind));
    } else {
        *out = symbol;
        goto out; /* in use from now on: the library stays loaded */
    }
    /* Nothing of it is used, so the reference this call took can go. */
    dlclose(search->handle);
out:
    pthread_mutex_unlock(&loader_lock);
    esg_free(search);
    return rc;
}

esg_status esg_topic_resolve_application(const char *topic, const esg_env *env,
                                         const esg_application_type **out, esg_error *err)
{
    const void *object = NULL;
    esg_status rc = resolve(topic, env, TOPIC_APPLICATION, &object, err);
    *out = object;
    return rc;
}

esg_status esg_topic_resolve_system(const char *topic, const esg_env *env,
                                    const esg_system_def **out, esg_error *err)
{
    const void *object = NULL;
    esg_status rc = resolve(topic, env, TOPIC_SYSTEM, &object, err);
    *out = object;
    return rc;
}

/* Adds object under topic to the registry: again the same object is a no-op, another object
 * under a registered topic ESG_EINVAL. */
static esg_status register_topic(const char *topic, topic_kind kind, const void *object,
                                 esg_error *err)
{
    char module[256], name[256];
    esg_status rc = split_topic(topic, module, sizeof module, name, sizeof name, err);
    if (rc != ESG_OK)
        return rc;
    pthread_mutex_lock(&loader_lock);
    for (size_t i = 0; rc == ESG_OK && i < n_registered; i++)
        if (strcmp(registry[i].topic, topic) == 0) {
            if (registry[i].object != object)
                rc = esg_error_set(err, ESG_EINVAL, "topic %s is registered already", topic);
            pthread_mutex_unlock(&loader_lock);
            return rc;
        }
    if (!esg_grow((void **)&registry, &registry_capacity, n_registered + 1, sizeof *registry))
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory registering %s", topic);
    else
        registry[n_registered++] = (registered_topic){topic, kind, object};
    pthread_mutex_unlock(&loader_lock);
    return rc;
}

esg_status esg_topic_register_application(const esg_application_type *type, esg_error *err)
{
    if (type == NULL || type->magic != ESG_APPLICATION_TYPE_MAGIC || type->topic == NULL)
        return esg_error_set(err, ESG_EINVAL, "not an application type with a topic");
    return register_topic(type->topic, TOPIC_APPLICATION, type, err);
}

esg_status esg_topic_register_system(const esg_system_def *def, esg_error *err)
{
    if (def == NULL || def->magic != ESG_SYSTEM_DEF_MAGIC || def->topic == NULL)
        return esg_error_set(err, ESG_EINVAL, "not a system definition with a topic");
    return register_topic(def->topic, TOPIC_SYSTEM, def, err);
}
