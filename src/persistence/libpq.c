/* Loading libpq at run time: it brings some twenty libraries (Kerberos, LDAP, GnuTLS, ...)
 * whose loading and initialisers doubled the start-up of a server on the other backends and added
 * 4 MB to its resident memory, so only servers on PostgreSQL pay for it. */

/* The real functions' types come from libpq-fe.h; the table holds pointers to them. */
#define ESG_LIBPQ_NO_REDIRECT
#include "persistence/libpq.h"
#include "core/dynamic_library.h"

libpq_api esg_libpq; /* filled once by esg_libpq_load */

ESG_DYNAMIC_LIBRARY(esg_libpq_load, LIBPQ_SONAME, LIBPQ_FUNCTIONS, esg_libpq,
                    "the PostgreSQL backend", "libpq5")
