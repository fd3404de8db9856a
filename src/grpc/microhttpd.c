/* Loading libmicrohttpd at run time (see microhttpd.h): only servers with a /metrics endpoint
 * pay for it and for GnuTLS under it. */

/* The real functions' types come from microhttpd.h; the table holds pointers to them. */
#define ESG_MICROHTTPD_NO_REDIRECT
#include "grpc/microhttpd.h"
#include "core/dynamic_library.h"

microhttpd_api esg_microhttpd; /* filled once by esg_microhttpd_load */

ESG_DYNAMIC_LIBRARY(esg_microhttpd_load, MICROHTTPD_SONAME, MICROHTTPD_FUNCTIONS, esg_microhttpd,
                    "the /metrics endpoint", "libmicrohttpd12")
