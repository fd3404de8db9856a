/* Libraries loaded at run time (dlopen) by the features that need them, so that a process that
 * does not use a feature does not load, initialise and keep the libraries it brings: libpq for
 * the PostgreSQL backend (persistence/libpq.h), libmicrohttpd for the /metrics endpoint
 * (grpc/microhttpd.h). Internal: not part of the public API. */
#ifndef ESG_DYNAMIC_LIBRARY_H
#define ESG_DYNAMIC_LIBRARY_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>

#include "esg/error.h"

/* Loads soname (never unloaded: what it made may outlive any one user) and looks up the n
 * functions named in names, into found[0..n). False when the library or a function is missing,
 * with the reason in why. Callers load once (pthread_once). */
bool esg_dynamic_library_load(const char *soname, const char *const *names, void **found, size_t n,
                              char *why, size_t why_size);

/* Defines `esg_status load_fn(esg_error *err)`, which loads soname once per process (thread-safe)
 * and fills table, a struct with one function pointer per name of the X-macro list `functions`
 * (X(name) each); ESG_ECONFIG naming the feature that needs it and its Debian package when it
 * cannot. */
#define ESG_DYNAMIC_LIBRARY(load_fn, soname, functions, table, feature, package)                   \
    static pthread_once_t load_fn##_once = PTHREAD_ONCE_INIT;                                      \
    static char load_fn##_error[256]; /* why loading failed; empty when it worked */               \
    static void load_fn##_run(void)                                                                \
    {                                                                                              \
        static const char *const names[] = {functions(ESG_DYNAMIC_LIBRARY_NAME)};                  \
        void *found[sizeof names / sizeof names[0]];                                               \
        if (!esg_dynamic_library_load(soname, names, found, sizeof names / sizeof names[0],        \
                                      load_fn##_error, sizeof load_fn##_error))                    \
            return;                                                                                \
        __typeof__(table) *const table_ = &(table);                                                \
        size_t taken_ = 0;                                                                         \
        functions(ESG_DYNAMIC_LIBRARY_TAKE)                                                        \
    }                                                                                              \
    esg_status load_fn(esg_error *err)                                                             \
    {                                                                                              \
        pthread_once(&load_fn##_once, load_fn##_run);                                              \
        if (load_fn##_error[0] != '\0')                                                            \
            return esg_error_set(err, ESG_ECONFIG, "%s needs %s (Debian: apt-get install %s): %s", \
                                 feature, soname, package, load_fn##_error);                       \
        return ESG_OK;                                                                             \
    }
#define ESG_DYNAMIC_LIBRARY_NAME(name) #name,
#define ESG_DYNAMIC_LIBRARY_TAKE(name) table_->name = (__typeof__(table_->name))found[taken_++];

#endif
