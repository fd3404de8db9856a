/* libmicrohttpd, loaded with dlopen when the first /metrics endpoint starts (metrics_server.c is
 * its only user). Including this header makes every MHD function used below it a call through
 * the loaded table, as persistence/libpq.h does for libpq. Internal: not part of the public API. */
#ifndef ESG_MICROHTTPD_H
#define ESG_MICROHTTPD_H

#include <microhttpd.h>

#include "esg/error.h"

/* libmicrohttpd brings GnuTLS and its libraries (p11-kit, nettle, gmp, libunistring, ...): 2.5 MB
 * of resident memory in every server, most of which serve no /metrics endpoint. Only the header
 * is used at build time. */
#define MICROHTTPD_SONAME "libmicrohttpd.so.12"
#define MICROHTTPD_FUNCTIONS(X)                                                                    \
    X(MHD_add_response_header)                                                                     \
    X(MHD_create_response_from_buffer)                                                             \
    X(MHD_create_response_from_buffer_with_free_callback)                                          \
    X(MHD_destroy_response)                                                                        \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_queue_response)                                                                          \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)

#define MICROHTTPD_MEMBER(name) __typeof__(&name) name;
typedef struct microhttpd_api {
    MICROHTTPD_FUNCTIONS(MICROHTTPD_MEMBER)
} microhttpd_api;
#undef MICROHTTPD_MEMBER

/* The loaded functions, valid once esg_microhttpd_load has returned ESG_OK. */
extern microhttpd_api esg_microhttpd;

/* Loads libmicrohttpd on first use (once per process, thread-safe); ESG_ECONFIG when it cannot
 * be. */
esg_status esg_microhttpd_load(esg_error *err);

#ifndef ESG_MICROHTTPD_NO_REDIRECT /* microhttpd.c fills the table: it needs the real names */
#define MHD_add_response_header esg_microhttpd.MHD_add_response_header
#define MHD_create_response_from_buffer esg_microhttpd.MHD_create_response_from_buffer
#define MHD_create_response_from_buffer_with_free_callback                                         \
    esg_microhttpd.MHD_create_response_from_buffer_with_free_callback
#define MHD_destroy_response esg_microhttpd.MHD_destroy_response
#define MHD_get_daemon_info esg_microhttpd.MHD_get_daemon_info
#define MHD_queue_response esg_microhttpd.MHD_queue_response
#define MHD_start_daemon esg_microhttpd.MHD_start_daemon
#define MHD_stop_daemon esg_microhttpd.MHD_stop_daemon
#endif

#endif
