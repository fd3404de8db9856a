/* The HTTP endpoint a server's Prometheus metrics are scraped from: GET /metrics answers the
 * text format that a collector writes at each scrape. libmicrohttpd does the HTTP, in one
 * thread of its own. Plaintext, as Prometheus scrapes by default: what it serves are counts,
 * durations and application names, never event data. Internal to the gRPC layer. */
#ifndef ESG_METRICS_SERVER_H
#define ESG_METRICS_SERVER_H

#include "core/buffer.h"
#include "esg/error.h"

typedef struct metrics_server metrics_server;

/* Writes every family into out at a scrape (on the endpoint's thread). */
typedef void (*metrics_collect_fn)(void *ctx, esg_buffer *out);

/* Listens on address ("host:port"; port 0 picks a free one) and answers scrapes with collect
 * (ctx is passed to it and must outlive the endpoint). app_name (may be NULL; copied) names the
 * application in the endpoint's log lines. *out is freed by metrics_server_stop. */
esg_status metrics_server_start(const char *address, metrics_collect_fn collect, void *ctx,
                                const char *app_name, metrics_server **out, esg_error *err);

/* The port listened on. */
int metrics_server_port(const metrics_server *server);

/* Stops answering (a scrape in progress finishes first) and frees the endpoint. NULL is allowed. */
void metrics_server_stop(metrics_server *server);

#endif
