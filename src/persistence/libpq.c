/* Loading libpq at run time: it brings some twenty libraries (Kerberos, LDAP, GnuTLS, ...)
 * whose loading and initialisers doubled the start-up of a server on the other backends and added
 * 4 MB to its resident memory, so only servers on PostgreSQL pay for it. */
#include <pthread.h>
#include <stdio.h>

/* The real functions' types come from libpq-fe.h; the table holds pointers to them. */
#define ESG_LIBPQ_NO_REDIRECT
#include "persistence/libpq.h"
#include "core/dynamic_library.h"

libpq_api esg_libpq; /* filled once by esg_libpq_load */
static pthread_once_t libpq_once = PTHREAD_ONCE_INIT;
static char libpq_error[256]; /* why loading failed; empty when it worked */

static void load_libpq_once(void)
{
#define LIBPQ_NAME(name) #name,
    static const char *const names[] = {LIBPQ_FUNCTIONS(LIBPQ_NAME)};
#undef LIBPQ_NAME
    void *found[sizeof names / sizeof names[0]];
    if (!esg_dynamic_library_load(LIBPQ_SONAME, names, found, sizeof names / sizeof names[0],
                                  libpq_error, sizeof libpq_error))
        return;
    size_t i = 0;
#define LIBPQ_TAKE(name) esg_libpq.name = (__typeof__(esg_libpq.name))found[i++];
    LIBPQ_FUNCTIONS(LIBPQ_TAKE)
#undef LIBPQ_TAKE
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
