/* Libraries loaded at run time (dlopen) by the features that need them, so that a process that
 * does not use a feature does not load, initialise and keep the libraries it brings: libpq for
 * the PostgreSQL backend (persistence/libpq.h), libmicrohttpd for the /metrics endpoint
 * (grpc/microhttpd.h). Internal: not part of the public API. */
#ifndef ESG_DYNAMIC_LIBRARY_H
#define ESG_DYNAMIC_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>

/* Loads soname (never unloaded: what it made may outlive any one user) and looks up the n
 * functions named in names, into found[0..n). False when the library or a function is missing,
 * with the reason in why. Callers load once (pthread_once). */
bool esg_dynamic_library_load(const char *soname, const char *const *names, void **found, size_t n,
                              char *why, size_t why_size);

#endif
