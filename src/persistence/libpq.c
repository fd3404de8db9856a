/* Loading libpq at run time: it brings some twenty libraries (Kerberos, LDAP, GnuTLS, ...)
 * whose loading and initialisers doubled the start-up of a server on the other backends and added
 * 4 MB to its resident memory, so only servers on PostgreSQL pay for it. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* The real functions' types come from libpq-fe.h; the table holds pointers to them. */
#define ESG_LIBPQ_NO_REDIRECT
#include "persistence/libpq.h"

libpq_api esg_libpq; /* filled once by esg_libpq_load */
static pthread_once_t libpq_once = PTHREAD_ONCE_INIT;
static char libpq_error[256]; /* why loading failed; empty when it worked */

static void load_libpq_once(void)
{
    void *handle = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(libpq_error, sizeof libpq_error, "%s", dlerror());
        return;
    }
    /* Never closed: connections may outlive any one recorder. */
#define LIBPQ_LOAD(name)                                                                           \
    if (libpq_error[0] == '\0' &&                                                                  \
        (esg_libpq.name = (__typeof__(esg_libpq.name))dlsym(handle, #name)) == NULL)               \
        snprintf(libpq_error, sizeof libpq_error, "%s has no %s", LIBPQ_SONAME, #name);
    LIBPQ_FUNCTIONS(LIBPQ_LOAD)
#undef LIBPQ_LOAD
}

/* Loads libpq on first use; ESG_ECONFIG when it cannot be. */
esg_status esg_libpq_load(esg_error *err)
{
    pthread_once(&libpq_once, load_libpq_once);
    if (libpq_error[0] != '\0')
        return esg_error_set(err, ESG_ECONFIG,
                             "the PostgreSQL backend needs libpq (%s; Debian: apt-get install "
                             "libpq5): %s",
                             LIBPQ_SONAME, libpq_error);
    return ESG_OK;
}
