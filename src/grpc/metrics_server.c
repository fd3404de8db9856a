/* The /metrics endpoint on libmicrohttpd (see metrics_server.h). */
#include "grpc/metrics_server.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "esg/log.h"
#include "grpc/credentials.h"
#include "grpc/microhttpd.h"

/* Scrapers are few: Prometheus keeps one connection per target. These bound what a flood of
 * connections can hold. */
#define MAX_CONNECTIONS 32
#define MAX_CONNECTIONS_PER_PEER 8
#define IDLE_TIMEOUT_SECONDS 30

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_server {
    struct MHD_Daemon *daemon;
    metrics_collect_fn collect;
    void *ctx;
    char *app_name; /* owned; may be NULL */
    int port;
};

static enum MHD_Result answer_text(struct MHD_Connection *connection, unsigned int status,
                                   const char *text)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **request_state)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)request_state;
    metrics_server *server = cls;
    bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (!is_get && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served here\n");
    if (strcmp(url, "/metrics") != 0)
        return answer_text(connection, MHD_HTTP_NOT_FOUND,
                           "not found: the metrics are at /metrics\n");
    esg_buffer text = {0};
    server->collect(server->ctx, &text);
    size_t len = 0;
    char *data = esg_buffer_take(&text, &len);
    if (data == NULL)
        return answer_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory writing the metrics\n");
    struct MHD_Response *response =
        MHD_create_response_from_buffer_with_free_callback(len, data, esg_free);
    if (response == NULL) {
        esg_free(data);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result result = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return result;
}

/* libmicrohttpd's own messages, as warnings of the application's log. */
static void log_from_library(void *cls, const char *format, va_list args)
{
    const metrics_server *server = cls;
    char text[512];
    vsnprintf(text, sizeof text, format, args);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    esg_log(ESG_LOG_WARNING, server->app_name, "metrics endpoint: %s", text);
}

/* The address to bind: host resolved (numeric or a name), port as given. */
static esg_status resolve(const char *address, struct sockaddr_storage *out, int *port,
                          esg_error *err)
{
    char host[256];
    esg_status rc = esg_address_split(address, host, sizeof host, port, err);
    if (rc != ESG_OK)
        return rc;
    char service[16];
    snprintf(service, sizeof service, "%d", *port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    /* "localhost" is both families; Prometheus' "localhost:PORT" tries both, so take IPv4. */
    if (strcmp(host, "localhost") == 0)
        hints.ai_family = AF_INET;
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, service, &hints, &found);
    if (gai != 0 || found == NULL)
        return esg_error_set(err, ESG_ECONFIG, "metrics address '%s': cannot resolve '%s' (%s)",
                             address, host, gai_strerror(gai));
    memcpy(out, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return ESG_OK;
}

esg_status metrics_server_start(const char *address, metrics_collect_fn collect, void *ctx,
                                const char *app_name, metrics_server **out, esg_error *err)
{
    *out = NULL;
    struct sockaddr_storage bind_to;
    int port = 0;
    esg_status rc = resolve(address, &bind_to, &port, err);
    if (rc == ESG_OK)
        rc = esg_microhttpd_load(err);
    if (rc != ESG_OK)
        return rc;
    metrics_server *server = esg_calloc(1, sizeof *server);
    if (server == NULL || (app_name != NULL && (server->app_name = esg_strdup(app_name)) == NULL)) {
        esg_free(server);
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting the metrics endpoint");
    }
    server->collect = collect;
    server->ctx = ctx;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (bind_to.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The address given binds; MHD's port argument only names it in MHD's messages. */
    server->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, answer, server, MHD_OPTION_EXTERNAL_LOGGER,
        log_from_library, server, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&bind_to,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS_PER_PEER,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_SECONDS, MHD_OPTION_END);
    if (server->daemon == NULL) {
        metrics_server_stop(server);
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "cannot listen on %s for metrics: the address is in use or not "
                             "available here",
                             address);
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info != NULL ? (int)info->port : 0;
    *out = server;
    return ESG_OK;
}

int metrics_server_port(const metrics_server *server)
{
    return server->port;
}

void metrics_server_stop(metrics_server *server)
{
    if (server == NULL)
        return;
    if (server->daemon != NULL)
        MHD_stop_daemon(server->daemon);
    esg_free(server->app_name);
    esg_free(server);
}
