/* Loading libmicrohttpd at run time (see microhttpd.h): only servers with a /metrics endpoint
 * pay for it and for GnuTLS under it. */
#include <pthread.h>

/* The real functions' types come from microhttpd.h; the table holds pointers to them. */
#define ESG_MICROHTTPD_NO_REDIRECT
#include "grpc/microhttpd.h"
#include "core/dynamic_library.h"

microhttpd_api esg_microhttpd; /* filled once by esg_microhttpd_load */
static pthread_once_t microhttpd_once = PTHREAD_ONCE_INIT;
static char microhttpd_error[256]; /* why loading failed; empty when it worked */

static void load_microhttpd_once(void)
{
#define MICROHTTPD_NAME(name) #name,
    static const char *const names[] = {MICROHTTPD_FUNCTIONS(MICROHTTPD_NAME)};
#undef MICROHTTPD_NAME
    void *found[sizeof names / sizeof names[0]];
    if (!esg_dynamic_library_load(MICROHTTPD_SONAME, names, found, sizeof names / sizeof names[0],
                                  microhttpd_error, sizeof microhttpd_error))
        return;
    size_t i = 0;
#define MICROHTTPD_TAKE(name) esg_microhttpd.name = (__typeof__(esg_microhttpd.name))found[i++];
    MICROHTTPD_FUNCTIONS(MICROHTTPD_TAKE)
#undef MICROHTTPD_TAKE
}

esg_status esg_microhttpd_load(esg_error *err)
{
    pthread_once(&microhttpd_once, load_microhttpd_once);
    if (microhttpd_error[0] != '\0')
        return esg_error_set(err, ESG_ECONFIG,
                             "the /metrics endpoint needs libmicrohttpd (%s; Debian: apt-get "
                             "install libmicrohttpd12): %s",
                             MICROHTTPD_SONAME, microhttpd_error);
    return ESG_OK;
}
