/* Security checks against the real eventsourcing_grpc_server program (issue
 * 9, item 5), beside tests/grpc/test_tls.c (which covers mutual TLS refusing
 * no certificate, another CA, an expired certificate and plaintext):
 *  - local credentials refuse a peer whose address is not loopback, on the
 *    server side and on the client side; a loopback server is not reachable
 *    on the machine's other addresses at all;
 *  - with gRPC's most verbose logging, the server's output holds no private
 *    key material or event data (the runner's and the client program's are
 *    checked by tests/cli/test_runner_cli.sh);
 *  - the SQLite files the server creates are readable by their owner only.
 * A non-local peer is made by relaying a connection through a small proxy in
 * this process whose outgoing socket is bound to a non-loopback address of
 * this machine (Linux lets a local non-loopback address talk to 127.0.0.1). */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raw_call.h"
#include "subprocess.h"

#define PATH_PING "/eventsourcing_grpc.Application/Ping"
#define PATH_CALL "/eventsourcing_grpc.Application/CallApplicationMethod"
#define PATH_NOTIFICATIONS "/eventsourcing_grpc.Application/GetNotifications"

/* ---- A TCP relay with a chosen source address ---- */

#define MAX_RELAYED 16

typedef struct proxy {
    int listen_fd;
    int port;                       /* where it listens */
    struct sockaddr_storage source; /* its outgoing connections come from here (port 0) */
    struct sockaddr_storage dest;   /* and go there */
    socklen_t source_len, dest_len;
    pthread_t thread;
    atomic_bool is_stopping;
    int n_accepted;
} proxy;

static void relay(int a, int b, const atomic_bool *is_stopping)
{
    char buffer[16384];
    while (!atomic_load(is_stopping)) {
        struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        if (poll(fds, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].revents == 0)
                continue;
            ssize_t n = recv(fds[i].fd, buffer, sizeof buffer, 0);
            if (n <= 0)
                return;
            if (send(fds[1 - i].fd, buffer, (size_t)n, MSG_NOSIGNAL) != n)
                return;
        }
    }
}

/* Serves one connection at a time: enough for one gRPC channel. */
static void *proxy_main(void *arg)
{
    proxy *p = arg;
    while (!atomic_load(&p->is_stopping)) {
        struct pollfd listening = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&listening, 1, 100) <= 0)
            continue;
        int in = accept(p->listen_fd, NULL, NULL);
        if (in < 0)
            continue;
        p->n_accepted++;
        int out = socket(p->dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (out >= 0 && bind(out, (struct sockaddr *)&p->source, p->source_len) == 0 &&
            connect(out, (struct sockaddr *)&p->dest, p->dest_len) == 0)
            relay(in, out, &p->is_stopping);
        if (out >= 0)
            close(out);
        close(in);
    }
    return NULL;
}

static void set_address(struct sockaddr_storage *ss, socklen_t *len, int family,
                        const void *address, int port)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        memcpy(&in->sin_addr, address, sizeof in->sin_addr);
        *len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        memcpy(&in6->sin6_addr, address, sizeof in6->sin6_addr);
        *len = sizeof *in6;
    }
}

/* Starts a proxy listening on listen_address (port chosen by the system),
 * relaying to dest_address:dest_port from source_address. All addresses are
 * in_addr or in6_addr of the given family. */
static void proxy_start(proxy *p, int family, const void *listen_address,
                        const void *source_address, const void *dest_address, int dest_port)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->is_stopping, false);
    struct sockaddr_storage listen_ss;
    socklen_t listen_len;
    set_address(&listen_ss, &listen_len, family, listen_address, 0);
    p->listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->listen_fd >= 0);
    if (bind(p->listen_fd, (struct sockaddr *)&listen_ss, listen_len) != 0 ||
        listen(p->listen_fd, 8) != 0)
        fail_msg("proxy: cannot listen: %s", strerror(errno));
    getsockname(p->listen_fd, (struct sockaddr *)&listen_ss, &listen_len);
    p->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&listen_ss)->sin_port
                                      : ((struct sockaddr_in6 *)&listen_ss)->sin6_port);
    set_address(&p->source, &p->source_len, family, source_address, 0);
    set_address(&p->dest, &p->dest_len, family, dest_address, dest_port);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void proxy_stop(proxy *p)
{
    atomic_store(&p->is_stopping, true);
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

/* ---- Helpers ---- */

/* A non-loopback, non-link-local address of this machine, or false. */
static bool find_other_address(int family, void *out, char *text, size_t text_size)
{
    struct ifaddrs *all = NULL;
    bool found = false;
    if (getifaddrs(&all) != 0)
        return false;
    for (struct ifaddrs *i = all; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_flags & IFF_LOOPBACK))
            continue;
        if (family == AF_INET) {
            struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
            if ((ntohl(a.s_addr) >> 24) == 127)
                continue;
            memcpy(out, &a, sizeof a);
        } else {
            struct in6_addr a = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
            if (IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_LINKLOCAL(&a))
                continue;
            memcpy(out, &a, sizeof a);
        }
        inet_ntop(family, out, text, (socklen_t)text_size);
        found = true;
    }
    freeifaddrs(all);
    return found;
}

static grpc_status_code ping(grpc_channel *channel, int deadline_ms, char *details,
                             size_t details_size)
{
    raw_reply reply;
    raw_call(channel, PATH_PING, NULL, 0, deadline_ms, &reply);
    grpc_status_code status = reply.status;
    snprintf(details, details_size, "%s", reply.details);
    raw_reply_clear(&reply);
    return status;
}

/* A refused connection never becomes ready: the call (which waits for
 * readiness) ends UNAVAILABLE, UNAUTHENTICATED or at its deadline. */
static void assert_refused(grpc_status_code status, const char *details, const char *what)
{
    if (status != GRPC_STATUS_UNAVAILABLE && status != GRPC_STATUS_UNAUTHENTICATED &&
        status != GRPC_STATUS_DEADLINE_EXCEEDED)
        fail_msg("%s: expected a refusal, got status %d '%s'", what, status, details);
}

typedef struct fixture {
    char *dir;
    server_process server; /* on a loopback address */
    server_process other;  /* a test's own, stopped by the teardown if the test fails */
} fixture;

/* Orders on a loopback address (local credentials). */
static int setup_local(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = testutil_make_temp_dir();
    char log[1100];
    snprintf(log, sizeof log, "%s/server.log", f->dir);
    const char *settings[] = {"APPLICATION_TOPIC=eventsourcing_grpc.example:Orders",
                              "ORDERS_GRPC_SERVER_ADDRESS=localhost:0"};
    server_start(&f->server, log, settings, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->other.pid > 0)
        server_stop(&f->other);
    if (f->server.pid > 0) {
        int status = server_stop(&f->server);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    testutil_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- Local credentials ---- */

static void local_credentials_refuse(fixture *f, int family)
{
    uint8_t other[16], loopback[16];
    char other_text[INET6_ADDRSTRLEN];
    if (!find_other_address(family, other, other_text, sizeof other_text)) {
        print_message("no non-loopback %s address on this machine\n",
                      family == AF_INET ? "IPv4" : "IPv6");
        skip();
    }
    inet_pton(family, family == AF_INET ? "127.0.0.1" : "::1", loopback);
    const char *loopback_text = family == AF_INET ? "127.0.0.1" : "[::1]";
    char target[128], details[512], what[200];

    /* The server listens on loopback only: the other address finds nobody. */
    struct sockaddr_storage ss;
    socklen_t len;
    set_address(&ss, &len, family, other, f->server.port);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    int connect_errno = errno;
    close(fd);
    if (rc == 0 || connect_errno != ECONNREFUSED)
        fail_msg("connecting to %s port %d: expected 'connection refused', got %s", other_text,
                 f->server.port, rc == 0 ? "a connection" : strerror(connect_errno));

    /* Server side: a peer at the other address is refused, one at loopback is not. */
    for (int from_other = 1; from_other >= 0; from_other--) {
        proxy p;
        proxy_start(&p, family, loopback, from_other ? other : loopback, loopback, f->server.port);
        snprintf(target, sizeof target, "%s:%d", loopback_text, p.port);
        grpc_channel *channel = raw_channel(target, NULL);
        grpc_status_code status = ping(channel, 3000, details, sizeof details);
        grpc_channel_destroy(channel);
        proxy_stop(&p);
        assert_true(p.n_accepted > 0); /* the call did go through the proxy */
        snprintf(what, sizeof what, "server, peer at %s", from_other ? other_text : "loopback");
        if (from_other &&
            (status != GRPC_STATUS_UNAUTHENTICATED || strstr(details, "not on loopback") == NULL))
            fail_msg("%s: expected UNAUTHENTICATED, got status %d '%s'", what, status, details);
        else if (!from_other && status != GRPC_STATUS_OK)
            fail_msg("%s: status %d '%s'", what, status, details);
    }

    /* Client side: local channel credentials refuse a server at the other
     * address (the same server, relayed from loopback, so that only the
     * address the client sees differs). */
    for (int at_other = 1; at_other >= 0; at_other--) {
        proxy p;
        proxy_start(&p, family, at_other ? other : loopback, loopback, loopback, f->server.port);
        if (at_other)
            snprintf(target, sizeof target, family == AF_INET ? "%s:%d" : "[%s]:%d", other_text,
                     p.port);
        else
            snprintf(target, sizeof target, "%s:%d", loopback_text, p.port);
        grpc_channel_credentials *local = grpc_local_credentials_create(LOCAL_TCP);
        grpc_channel *channel = raw_channel(target, local);
        grpc_channel_credentials_release(local);
        grpc_status_code status = ping(channel, 3000, details, sizeof details);
        grpc_channel_destroy(channel);
        proxy_stop(&p);
        snprintf(what, sizeof what, "client, server at %s", target);
        if (at_other) {
            assert_true(p.n_accepted > 0);
            assert_refused(status, details, what);
        } else if (status != GRPC_STATUS_OK) {
            fail_msg("%s: status %d '%s'", what, status, details);
        }
    }
    /* And the server serves loopback clients as before, and said why it refused. */
    snprintf(target, sizeof target, "%s:%d", loopback_text, f->server.port);
    assert_ping_ok(target);
    char *log = read_text_file(f->server.log);
    assert_non_null(strstr(log, "refused a call from a peer that is not on loopback"));
    free(log);
}

static void test_local_credentials_refuse_other_peers_ipv4(void **state)
{
    local_credentials_refuse(*state, AF_INET);
}

static void test_local_credentials_refuse_other_peers_ipv6(void **state)
{
    local_credentials_refuse(*state, AF_INET6);
}

/* ---- Logs ---- */

static char *pki_file(const fixture *f, const char *path)
{
    char full[1200];
    snprintf(full, sizeof full, "%s/%s", f->dir, path);
    char *text = read_text_file(full);
    assert_true(strlen(text) > 0);
    return text;
}

/* A unary call over TLS as a client with the given files (NULL key: none). */
static raw_reply tls_call(const fixture *f, int port, const char *root, const char *key,
                          const char *cert, const char *path, const uint8_t *request, size_t len,
                          int deadline_ms)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel *channel = raw_tls_channel_from_files(target, f->dir, root, key, cert, "orders");
    raw_reply reply;
    raw_call(channel, path, request, len, deadline_ms, &reply);
    grpc_channel_destroy(channel);
    return reply;
}

/* A MethodRequest with the three strings as fields 1 to 3 (each < 128 bytes). */
static size_t method_request(uint8_t *out, const char *name, const char *args, const char *kwargs)
{
    size_t n = 0;
    const char *fields[3] = {name, args, kwargs};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(fields[i]);
        assert_true(len < 128);
        out[n++] = (uint8_t)((i + 1) << 3 | 2);
        out[n++] = (uint8_t)len;
        memcpy(out + n, fields[i], len);
        n += len;
    }
    return n;
}

/* Whether text appears in data[0..len) (which may hold NULs). */
/* Every base64 line of a PEM private key must be absent from log. */
static void assert_no_key_material(const char *log, const fixture *f, const char *key_path)
{
    char *key = pki_file(f, key_path);
    int n_lines = 0;
    for (char *line = strtok(key, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "-----", 5) == 0 || strlen(line) < 16)
            continue;
        n_lines++;
        if (strstr(log, line) != NULL)
            fail_msg("the log holds a line of the private key %s", key_path);
    }
    assert_true(n_lines > 0);
    free(key);
}

/* Secrets that requests carry: none may appear in a log. */
#define SECRET_NAME "esg-secret-event-data-5d1c7a"
#define SECRET_ARGS "esg-secret-bad-args-91fe"
#define SECRET_METHOD "esg-secret-method-name-03ab"
#define SECRET_NUMBER "918273645"

/* Runs a server on mutual TLS (a user application on SQLite that stores
 * what the client sends) with GRPC_VERBOSITY=debug, LOG_LEVEL=debug (our
 * request log) and GRPC_TRACE=trace (unset if NULL): calls that succeed and fail, refused
 * handshakes. Returns its output (malloc'ed) and the id of the counter it made. */
static char *logged_scenario(fixture *f, const char *trace, char counter_id[33])
{
    char log[1100], key[1200], cert[1200], root[1200], plugins[1200], db[1200], tracers[200];
    static int n_runs = 0;
    n_runs++;
    snprintf(log, sizeof log, "%s/tls-server-%d.log", f->dir, n_runs);
    snprintf(tracers, sizeof tracers, "GRPC_TRACE=%s", trace ? trace : "");
    snprintf(key, sizeof key, "GRPC_SSL_PRIVATE_KEY_PATH=%s/pki/orders/orders.key", f->dir);
    snprintf(cert, sizeof cert, "GRPC_SSL_CERTIFICATE_PATH=%s/pki/orders/orders.crt", f->dir);
    snprintf(root, sizeof root, "GRPC_SSL_ROOT_CERTIFICATE_PATH=%s/pki/root/root.crt", f->dir);
    snprintf(plugins, sizeof plugins, "ESG_TOPIC_PATH=%s", ESG_TEST_PLUGIN_DIR);
    snprintf(db, sizeof db, "COUNTERS_SQLITE_DBNAME=%s/counters-%d.db", f->dir, n_runs);
    const char *settings[] = {"APPLICATION_TOPIC=user_counters:Counters",
                              "COUNTERS_GRPC_SERVER_ADDRESS=0.0.0.0:0",
                              "PERSISTENCE_MODULE=eventsourcing.sqlite",
                              "GRPC_VERBOSITY=debug",
                              "LOG_LEVEL=debug",
                              tracers,
                              key,
                              cert,
                              root,
                              plugins,
                              db};
    server_process *tls_server = &f->other;
    server_start(tls_server, log, settings, sizeof settings / sizeof settings[0]);

    const char *client_key = "pki/payments/payments.key",
               *client_cert = "pki/payments/payments.crt";
    uint8_t request[400];
    size_t len = method_request(request, "create_counter", "[\"" SECRET_NAME "\"]", "{}");
    raw_reply reply = tls_call(f, tls_server->port, "pki/root/root.crt", client_key, client_cert,
                               PATH_CALL, request, len, 10000);
    if (reply.status != GRPC_STATUS_OK)
        fail_msg("create_counter: status %d '%s'", reply.status, reply.details);
    /* The reply is {"_type_":"uuid_hex","_data_":"<32 hex>"}: the counter's id. */
    char *id_at = strstr((char *)reply.data, "\"_data_\":\"");
    assert_non_null(id_at);
    snprintf(counter_id, 33, "%s", id_at + strlen("\"_data_\":\""));
    raw_reply_clear(&reply);
    char args[200];
    snprintf(args, sizeof args, "[{\"_type_\":\"uuid_hex\",\"_data_\":\"%s\"}," SECRET_NUMBER "]",
             counter_id);
    len = method_request(request, "increment", args, "{}");
    reply = tls_call(f, tls_server->port, "pki/root/root.crt", client_key, client_cert, PATH_CALL,
                     request, len, 10000);
    assert_int_equal(reply.status, GRPC_STATUS_OK);
    raw_reply_clear(&reply);
    /* The notifications carry the secret back: it did cross the wire. */
    static const uint8_t page[] = {0x0a, 1, '1', 0x12, 2, '1', '0'};
    reply = tls_call(f, tls_server->port, "pki/root/root.crt", client_key, client_cert,
                     PATH_NOTIFICATIONS, page, sizeof page, 10000);
    assert_int_equal(reply.status, GRPC_STATUS_OK);
    assert_true(testutil_has_bytes(reply.data, reply.len, SECRET_NAME));
    raw_reply_clear(&reply);
    /* Failing calls that carry other secrets. */
    len = method_request(request, "create_counter", "[\"" SECRET_ARGS "\",\"" SECRET_ARGS "\"]",
                         "{}");
    reply = tls_call(f, tls_server->port, "pki/root/root.crt", client_key, client_cert, PATH_CALL,
                     request, len, 10000);
    assert_int_equal(reply.status, GRPC_STATUS_INVALID_ARGUMENT);
    raw_reply_clear(&reply);
    len = method_request(request, SECRET_METHOD, "[]", "{}");
    reply = tls_call(f, tls_server->port, "pki/root/root.crt", client_key, client_cert, PATH_CALL,
                     request, len, 10000);
    assert_int_equal(reply.status, GRPC_STATUS_UNIMPLEMENTED);
    raw_reply_clear(&reply);
    /* Refused handshakes: no certificate, another CA, an expired one. */
    const char *refused[][2] = {{NULL, NULL},
                                {"other/payments/payments.key", "other/payments/payments.crt"},
                                {"pki/expired/expired.key", "pki/expired/expired.crt"}};
    for (size_t i = 0; i < 3; i++) {
        reply = tls_call(f, tls_server->port, "pki/root/root.crt", refused[i][0], refused[i][1],
                         PATH_PING, NULL, 0, 1500);
        assert_refused(reply.status, reply.details, "refused handshake");
        raw_reply_clear(&reply);
    }
    int status = server_stop(tls_server);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    return read_text_file(log);
}

static void assert_no_keys(const fixture *f, const char *text)
{
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_no_key_material(text, f, "pki/orders/orders.key");
    assert_no_key_material(text, f, "pki/payments/payments.key");
    assert_no_key_material(text, f, "other/payments/payments.key");
    assert_no_key_material(text, f, "pki/expired/expired.key");
    assert_no_key_material(text, f, "pki/root/root.key");
}

/* With gRPC's debug verbosity and our request log, the server's output says
 * why handshakes were refused, has a line per request, and holds neither key material nor event
 * data nor requests' contents. With every tracer on (GRPC_TRACE=all, a debugging aid that dumps the
 * decrypted traffic, and so the data: never in production), still no key material. */
static void test_logs_hold_no_keys_or_event_data(void **state)
{
    fixture *f = *state;
    raw_make_pki(f->dir, "pki", "");
    raw_make_pki(f->dir, "pki", "--expired expired");
    raw_make_pki(f->dir, "other", "");
    char counter_id[33];
    char *text = logged_scenario(f, NULL, counter_id);
    print_message("server log with GRPC_VERBOSITY=debug: %zu bytes\n", strlen(text));
    assert_non_null(strstr(text, "listening on"));
    assert_non_null(strstr(text, "peer did not return a certificate"));
    assert_non_null(strstr(text, "certificate verify failed"));
    assert_non_null(strstr(text, "/eventsourcing_grpc.Application/CallApplicationMethod OK in"));
    const char *data[] = {SECRET_NAME, SECRET_ARGS, SECRET_METHOD, SECRET_NUMBER, counter_id};
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++)
        if (strstr(text, data[i]) != NULL)
            fail_msg("the server's log holds event data or a request's content: '%s'", data[i]);
    assert_no_keys(f, text);
    free(text);

    text = logged_scenario(f, "all", counter_id);
    print_message("server log with GRPC_TRACE=all: %zu bytes\n", strlen(text));
    assert_true(strlen(text) > 100000); /* the tracers were on */
    assert_no_keys(f, text);
    free(text);
}

/* ---- Files ---- */

/* Asserts path, if it exists, gives no access to group or others; whether it exists. */
static bool assert_private(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    if ((st.st_mode & 077) != 0)
        fail_msg("%s has mode %03o: group or others may access it", path,
                 (unsigned)(st.st_mode & 0777));
    return true;
}

/* The SQLite database a server creates, and its -wal and -shm files, are
 * its owner's only, whatever the umask it was started with. */
static void test_database_files_are_private(void **state)
{
    fixture *f = *state;
    char log[1100], db[1200], path[1200];
    snprintf(log, sizeof log, "%s/sqlite-server.log", f->dir);
    snprintf(db, sizeof db, "ORDERS_SQLITE_DBNAME=%s/orders.db", f->dir);
    const char *settings[] = {"APPLICATION_TOPIC=eventsourcing_grpc.example:Orders",
                              "ORDERS_GRPC_SERVER_ADDRESS=localhost:0",
                              "PERSISTENCE_MODULE=eventsourcing.sqlite", db};
    mode_t old_umask = umask(022); /* the usual default: files 0644 unless the server says */
    server_process *server = &f->other;
    server_start(server, log, settings, sizeof settings / sizeof settings[0]);
    umask(old_umask);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", server->port);
    grpc_channel *channel = raw_channel(target, NULL);
    uint8_t request[64];
    size_t len = method_request(request, "create_new_order", "[]", "{}");
    for (int i = 0; i < 3; i++) {
        raw_reply reply;
        raw_call(channel, PATH_CALL, request, len, 10000, &reply);
        assert_int_equal(reply.status, GRPC_STATUS_OK);
        raw_reply_clear(&reply);
    }
    grpc_channel_destroy(channel);
    /* While it runs: the database and whichever journal files exist. */
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    int n_files = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s/orders.db%s", f->dir, suffixes[i]);
        n_files += assert_private(path);
    }
    print_message("%d SQLite files checked while the server runs\n", n_files);
    assert_true(n_files >= 1);
    int status = server_stop(server);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof path, "%s/orders.db", f->dir);
    assert_true(assert_private(path));
}

/* Every test gets its own folder and loopback server. */
#define SECURITY_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_local, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SECURITY_TEST(test_local_credentials_refuse_other_peers_ipv4),
        SECURITY_TEST(test_local_credentials_refuse_other_peers_ipv6),
        SECURITY_TEST(test_logs_hold_no_keys_or_event_data),
        SECURITY_TEST(test_database_files_are_private),
    };
    return raw_run_grpc_tests("security", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
