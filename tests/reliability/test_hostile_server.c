/* Our client (src/grpc/client.c, subscription.c) against hostile or hung servers (issue 21,
 * item 3): peers in this process, on loopback ports, that accept and never answer, answer
 * garbage or broken HTTP/2, stop answering in the middle of a call, answer one byte at a time,
 * or reply at and over the client's maximum message size. Every call must end by its deadline
 * (measured, with a slack for sanitizers and a busy machine) with a clear status; leaks show
 * under ASan at exit (CI's build-address-undefined). Each call prints a "[ call ]" row: what it
 * was, its status, how long it took against its bound, and the process's peak RSS meanwhile. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "esg/grpc.h"
#include "grpc/credentials.h"
#include "grpc/wire.h"
#include "h2_wire.h"
#include "orders_server.h"
#include "raw_call.h"

/* Sanitized builds are several times slower: longer deadlines, and more slack over them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define IS_SANITIZED 1
#endif
#endif
#ifdef IS_SANITIZED
#define DEADLINE_MS 1000
#define SLACK_MS 3000
#else
#define DEADLINE_MS 500
#define SLACK_MS 1500
#endif
/* The clients' first backoff, and the cap that client.c doubles it up to. */
#define BACKOFF_MS 50
#define CLIENT_MAX_BACKOFF_MS 1000
/* Connection attempts against peers that never answer Ping, and tries of a repeatable call. */
#define CONNECT_ATTEMPTS 2
#define CALL_TRIES 2
/* A call still running this long after its bound has hung: the watchdog ends the program. */
#define WATCHDOG_EXTRA_S 60

/* The client's largest reply: open_channel sets no GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, so
 * gRPC's default holds. */
#define MAX_REPLY_BYTES GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH
/* What a flooding peer sends at most, whatever the client's flow control says. */
#define FLOOD_BYTES (64 * 1024 * 1024)
/* What a peer claiming a 4 GiB message sends of it at most, as flow control allows. */
#define HUGE_CLAIM_SENT_BYTES ((size_t)1024 * 1024 * 1024)
/* What the client may let in of one such reply: its memory quota (wire.h; gRPC 1.51 takes a
 * message in whole before it compares it with the maximum), and some slack for what is in
 * flight when the stream is reset; well under what the peer offers. */
#define MAX_ACCEPTED_PER_CALL (ESG_WIRE_MEMORY_QUOTA_BYTES + ((size_t)32 << 20))
/* A slow relay's pace: one byte to the client this often. */
#define SLOW_BYTE_DELAY_MS 10
/* Connections one peer serves (more are closed at once): the clients reconnect a few times. */
#define MAX_CONNECTIONS 64

/* ---- Timing every call, and a watchdog for one that never returns ---------------------------- */

static const char *volatile watched_call = "";

static void on_watchdog(int signo)
{
    (void)signo;
    static const char head[] = "\nHANG: still running long after its bound: ";
    ssize_t ignored = write(STDERR_FILENO, head, sizeof head - 1);
    ignored = write(STDERR_FILENO, watched_call, strlen(watched_call));
    ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    _exit(3);
}

/* The process's peak resident memory since the last reset (VmHWM), in MiB; -1 if unknown. */
static long peak_rss_mib(void)
{
    FILE *file = fopen("/proc/self/status", "r");
    long kib = -1;
    char line[256];
    while (file != NULL && fgets(line, sizeof line, file) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (file != NULL)
        fclose(file);
    return kib < 0 ? -1 : kib / 1024;
}

/* Starts a new peak for peak_rss_mib (Linux: "5" to clear_refs resets VmHWM). */
static void reset_peak_rss(void)
{
    FILE *file = fopen("/proc/self/clear_refs", "w");
    if (file != NULL) {
        fputs("5", file);
        fclose(file);
    }
}

typedef struct timing {
    const char *what; /* static text */
    int64_t started_ms;
    int64_t bound_ms; /* the call must be over by then */
} timing;

static timing timing_start(const char *what, int64_t bound_ms)
{
    reset_peak_rss();
    watched_call = what;
    alarm((unsigned)(bound_ms / 1000 + WATCHDOG_EXTRA_S));
    return (timing){what, esg_clock_now_ms(), bound_ms};
}

/* Ends a call's timing: prints its row and returns how long it took. */
static int64_t timing_row(const timing *t, esg_status rc, const esg_error *err)
{
    int64_t elapsed_ms = esg_clock_now_ms() - t->started_ms;
    alarm(0);
    printf("[ call     ] %-46s %-17s %5lld ms (bound %5lld ms) peak RSS %4ld MiB: %.150s\n",
           t->what, esg_status_name(rc), (long long)elapsed_ms, (long long)t->bound_ms,
           peak_rss_mib(), rc == ESG_OK ? "" : err->message);
    fflush(stdout);
    return elapsed_ms;
}

/* timing_row, failing the test when the call took longer than its bound. */
static int64_t timing_end(const timing *t, esg_status rc, const esg_error *err)
{
    int64_t elapsed_ms = timing_row(t, rc, err);
    if (elapsed_ms > t->bound_ms)
        fail_msg("%s took %lld ms, over its bound of %lld ms", t->what, (long long)elapsed_ms,
                 (long long)t->bound_ms);
    return elapsed_ms;
}

/* Up to three statuses a call may end with (repeated to fill the array). */
typedef struct allowed {
    esg_status statuses[3];
} allowed;
#define ONE(status)                                                                                \
    {                                                                                              \
        {                                                                                          \
            status, status, status                                                                 \
        }                                                                                          \
    }
#define EITHER(a, b)                                                                               \
    {                                                                                              \
        {                                                                                          \
            a, b, b                                                                                \
        }                                                                                          \
    }
#define ANY_OF(a, b, c)                                                                            \
    {                                                                                              \
        {                                                                                          \
            a, b, c                                                                                \
        }                                                                                          \
    }

/* Asserts that rc is one of the statuses allowed, and that an error comes with a message. */
static void expect_status(const char *what, esg_status rc, allowed ok, const esg_error *err)
{
    const esg_status *s = ok.statuses;
    if (rc != s[0] && rc != s[1] && rc != s[2])
        fail_msg("%s: %s (%s), expected %s, %s or %s", what, esg_status_name(rc), err->message,
                 esg_status_name(s[0]), esg_status_name(s[1]), esg_status_name(s[2]));
    if (rc != ESG_OK && err->message[0] == '\0')
        fail_msg("%s: %s without a message", what, esg_status_name(rc));
}

static void expect_one(const char *what, esg_status rc, esg_status status, const esg_error *err)
{
    expect_status(what, rc, (allowed)ONE(status), err);
}

/* The longest n_tries tries of a call may take, each under deadline_ms, with the client's
 * doubling backoff between them, plus the slack. */
static int64_t tries_bound_ms(int n_tries, int64_t deadline_ms)
{
    int64_t total = n_tries * deadline_ms, wait_ms = BACKOFF_MS;
    for (int i = 1; i < n_tries; i++) {
        total += wait_ms;
        wait_ms = wait_ms * 2 > CLIENT_MAX_BACKOFF_MS ? CLIENT_MAX_BACKOFF_MS : wait_ms * 2;
    }
    return total + SLACK_MS;
}

static esg_client_options client_options(int64_t deadline_ms, int max_attempts)
{
    return (esg_client_options){.max_attempts = max_attempts,
                                .backoff_ms = BACKOFF_MS,
                                .deadline_ms = deadline_ms,
                                .max_call_attempts = CALL_TRIES};
}

/* Connects to address (a peer that answers Ping), failing the test when it cannot. */
static esg_client *connect_to(const char *address, int64_t deadline_ms)
{
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = client_options(deadline_ms, 10);
    assert_esg_ok(esg_client_connect_address(address, &options, &client, &err), &err);
    return client;
}

/* ---- Sockets --------------------------------------------------------------------------------- */

/* Reads and drops whatever comes until the other side closes or the peer stops. */
static void drain(int fd)
{
    uint8_t buffer[4096];
    while (recv(fd, buffer, sizeof buffer, 0) > 0) {
    }
}

/* ---- Peers: hostile servers and relays on a loopback port ------------------------------------ */

typedef enum peer_kind {
    PEER_SILENT,             /* accepts, reads, never sends a byte */
    PEER_CLOSES,             /* accepts and closes at once */
    PEER_RANDOM,             /* sends 64 KiB of random bytes */
    PEER_HTTP1,              /* answers as an HTTP/1.1 server */
    PEER_TRUNCATED_SETTINGS, /* the first 5 of the 9 bytes of an HTTP/2 SETTINGS frame */
    PEER_H2_SILENT,          /* an HTTP/2 handshake, then no call is ever answered */
    /* The peers below answer Ping as a server does, and other calls as their names say. */
    PEER_H2_HANGS,           /* no answer at all */
    PEER_H2_ZERO_WINDOW,     /* after the first Ping, a stream window of 0: no request gets in */
    PEER_H2_HUGE_CLAIM,      /* a message that says 4 GiB, sent as flow control allows */
    PEER_H2_FLOOD,           /* FLOOD_BYTES of one message, past every flow control window */
    PEER_H2_HEADER_FLOOD,    /* headers that never end: CONTINUATION frames up to FLOOD_BYTES */
    PEER_H2_OVERSIZED_FRAME, /* a DATA frame of 16 MiB - 1, over the client's frame size */
    PEER_H2_BAD_HPACK,       /* headers that do not decode */
    PEER_H2_BAD_STATUS,      /* a reply, then grpc-status "banana" */
    PEER_H2_NO_STATUS,       /* a reply, then the end of the stream without a status */
    PEER_H2_HTTP_503,        /* HTTP status 503, no gRPC at all */
    PEER_H2_GOAWAY,          /* GOAWAY with an error, then the connection closes */
    PEER_H2_REFUSED,         /* RST_STREAM REFUSED_STREAM, which gRPC may retry by itself */
    PEER_RELAY               /* forwards to a real server, as the test says (relay_*) */
} peer_kind;

typedef struct peer {
    peer_kind kind;
    int listen_fd;
    char address[64]; /* "localhost:PORT": what the client connects to (local credentials) */
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a relay's settings changed, or the peer is stopping */
    bool is_stopping;
    int fds[2 * MAX_CONNECTIONS]; /* every socket opened, shut down by peer_stop and closed */
    size_t n_fds;
    pthread_t threads[2 * MAX_CONNECTIONS]; /* every thread started, joined by peer_stop */
    size_t n_threads;
    size_t n_accepted;
    /* A relay's: */
    int upstream_port;
    int64_t budget_to_client; /* bytes still let through to the client; -1: all */
    bool is_upstream_held;    /* nothing goes to the server */
    int byte_delay_ms;        /* > 0: bytes to the client one at a time, this far apart */
    size_t n_bytes_to_client;
    size_t n_bytes_fed; /* of messages sent as flow control allows (PEER_H2_HUGE_CLAIM) */
} peer;

/* Remembers fd, to shut it down and close it when the peer stops (at once if it is stopping);
 * false when there is no room (the caller closes fd). Under the lock. */
static bool peer_track_fd(peer *p, int fd)
{
    if (p->n_fds == sizeof p->fds / sizeof p->fds[0])
        return false;
    p->fds[p->n_fds++] = fd;
    if (p->is_stopping)
        shutdown(fd, SHUT_RDWR);
    return true;
}

/* Starts fn(arg) on a thread that peer_stop joins; false when stopping or out of room. Under
 * the lock. */
static bool peer_spawn(peer *p, void *(*fn)(void *), void *arg)
{
    if (p->is_stopping || p->n_threads == sizeof p->threads / sizeof p->threads[0])
        return false;
    assert_int_equal(pthread_create(&p->threads[p->n_threads], NULL, fn, arg), 0);
    p->n_threads++;
    return true;
}

static bool peer_is_stopping(peer *p)
{
    pthread_mutex_lock(&p->lock);
    bool is_stopping = p->is_stopping;
    pthread_mutex_unlock(&p->lock);
    return is_stopping;
}

/* ---- Broken HTTP/2 --------------------------------------------------------------------------- */

#define H2_MAX_READ (1024 * 1024) /* a client frame larger than this ends the connection */
#define H2_STREAM_SLOTS 64

static bool send_headers(int fd, uint32_t stream, const char *http_status, uint8_t flags)
{
    hpack_block b = {.len = 0};
    hpack_put(&b, ":status", http_status);
    if (strcmp(http_status, "200") == 0)
        hpack_put(&b, "content-type", "application/grpc");
    return h2_send_frame(fd, H2_HEADERS, flags | H2_END_HEADERS, stream, b.bytes, b.len);
}

/* One gRPC message (not compressed) in one DATA frame, the stream left open. */
static bool send_message(int fd, uint32_t stream, const uint8_t *message, size_t len)
{
    uint8_t frame[64] = {0}; /* not compressed, then the length */
    assert_true(len <= sizeof frame - 5);
    h2_put_be32(frame + 1, (uint32_t)len);
    if (len > 0)
        memcpy(frame + 5, message, len);
    return h2_send_frame(fd, H2_DATA, 0, stream, frame, len + 5);
}

static bool send_trailers(int fd, uint32_t stream, const char *grpc_status)
{
    hpack_block b = {.len = 0};
    hpack_put(&b, "grpc-status", grpc_status);
    return h2_send_frame(fd, H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, stream, b.bytes, b.len);
}

/* FLOOD_BYTES of one message in DATA frames, sent without looking at any window. */
static bool send_data_flood(int fd, uint32_t stream)
{
    uint8_t *frame = calloc(1, H2_FRAME_BYTES);
    assert_non_null(frame);
    h2_put_be32(frame + 1, FLOOD_BYTES); /* the message's length, after its flags byte */
    bool is_sent = send_headers(fd, stream, "200", 0);
    for (size_t sent = 0; is_sent && sent < FLOOD_BYTES; sent += H2_FRAME_BYTES) {
        is_sent = h2_send_frame(fd, H2_DATA, 0, stream, frame, H2_FRAME_BYTES);
        memset(frame, 0, 5);
    }
    free(frame);
    return is_sent;
}

/* A header block that never ends: HEADERS, then CONTINUATION frames of 1000-byte headers. */
static bool send_header_flood(int fd, uint32_t stream)
{
    hpack_block *b = calloc(1, sizeof *b);
    assert_non_null(b);
    hpack_put(b, ":status", "200");
    bool is_sent = h2_send_frame(fd, H2_HEADERS, 0, stream, b->bytes, b->len);
    char value[1001];
    memset(value, 'a', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    b->len = 0;
    while (b->len + 1100 < sizeof b->bytes)
        hpack_put(b, "x-flood", value);
    for (size_t sent = 0; is_sent && sent < FLOOD_BYTES; sent += b->len)
        is_sent = h2_send_frame(fd, H2_CONTINUATION, 0, stream, b->bytes, b->len);
    free(b);
    return is_sent;
}

/* A message that a peer sends as the client's flow control lets it. */
typedef struct h2_flow {
    int64_t initial_window;    /* the client's SETTINGS_INITIAL_WINDOW_SIZE */
    int64_t connection_window; /* what the client lets the connection send */
    int64_t stream_window;     /* and the stream */
    uint32_t stream;           /* the stream fed; 0: none */
    size_t n_left;             /* bytes of it still to send */
    bool is_prefix_sent;       /* the message's length has been sent */
} h2_flow;

/* How a broken HTTP/2 peer answers a call (Ping answered as a server does, except by
 * PEER_H2_SILENT); false when the connection is over. */
static bool h2_answer(peer *p, int fd, uint32_t stream, bool is_ping, h2_flow *flow)
{
    static const uint8_t reply[] = {0x0a, 0x01, '1'}; /* MethodReply{data: "1"} */
    if (p->kind == PEER_H2_SILENT)
        return true;
    if (is_ping) {
        bool is_sent = send_headers(fd, stream, "200", 0) && send_message(fd, stream, NULL, 0) &&
                       send_trailers(fd, stream, "0");
        /* SETTINGS_INITIAL_WINDOW_SIZE 0: the client may send no byte of a message now. */
        static const uint8_t zero_window[6] = {0, 4, 0, 0, 0, 0};
        if (is_sent && p->kind == PEER_H2_ZERO_WINDOW)
            is_sent = h2_send_frame(fd, H2_SETTINGS, 0, 0, zero_window, sizeof zero_window);
        return is_sent;
    }
    switch (p->kind) {
    case PEER_H2_HUGE_CLAIM:
        /* Fed by h2_serve as the windows allow: the message says 4 GiB - 1. */
        flow->stream = stream;
        flow->stream_window = flow->initial_window;
        flow->n_left = HUGE_CLAIM_SENT_BYTES;
        flow->is_prefix_sent = false;
        return send_headers(fd, stream, "200", 0);
    case PEER_H2_FLOOD:
        return send_data_flood(fd, stream);
    case PEER_H2_HEADER_FLOOD:
        return send_header_flood(fd, stream);
    case PEER_H2_OVERSIZED_FRAME: {
        uint8_t *zeros = calloc(1, H2_FRAME_BYTES);
        assert_non_null(zeros);
        uint8_t head[9];
        h2_frame_head(head, 0xffffff, H2_DATA, 0, stream);
        bool is_sent = send_headers(fd, stream, "200", 0) && h2_send_all(fd, head, sizeof head) &&
                       h2_send_all(fd, zeros, H2_FRAME_BYTES);
        free(zeros);
        return is_sent;
    }
    case PEER_H2_BAD_HPACK: {
        static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f}; /* index 2^25 + 126 */
        return h2_send_frame(fd, H2_HEADERS, H2_END_HEADERS, stream, garbage, sizeof garbage);
    }
    case PEER_H2_BAD_STATUS:
        return send_headers(fd, stream, "200", 0) &&
               send_message(fd, stream, reply, sizeof reply) && send_trailers(fd, stream, "banana");
    case PEER_H2_NO_STATUS:
        return send_headers(fd, stream, "200", 0) &&
               send_message(fd, stream, reply, sizeof reply) &&
               h2_send_frame(fd, H2_DATA, H2_END_STREAM, stream, NULL, 0);
    case PEER_H2_HTTP_503:
        return send_headers(fd, stream, "503", H2_END_STREAM);
    case PEER_H2_GOAWAY: {
        uint8_t goaway[8]; /* the last stream processed, and INTERNAL_ERROR */
        h2_put_be32(goaway, stream);
        h2_put_be32(goaway + 4, 2);
        h2_send_frame(fd, H2_GOAWAY, 0, 0, goaway, sizeof goaway);
        return false; /* and the connection closes */
    }
    case PEER_H2_REFUSED: {
        static const uint8_t refused[4] = {0, 0, 0, 7};
        return h2_send_frame(fd, H2_RST_STREAM, 0, stream, refused, sizeof refused);
    }
    default: /* PEER_H2_HANGS, PEER_H2_ZERO_WINDOW */
        return true;
    }
}

/* Sends the next DATA frame of flow's message, as large as the client's windows let it. */
static bool h2_feed(peer *p, int fd, h2_flow *flow, uint8_t *frame)
{
    int64_t chunk = H2_FRAME_BYTES;
    chunk = flow->connection_window < chunk ? flow->connection_window : chunk;
    chunk = flow->stream_window < chunk ? flow->stream_window : chunk;
    chunk = (int64_t)flow->n_left < chunk ? (int64_t)flow->n_left : chunk;
    memset(frame, 0, (size_t)chunk);
    if (!flow->is_prefix_sent && chunk >= 5)
        memset(frame + 1, 0xff, 4); /* the message's length: 4 GiB - 1 */
    flow->is_prefix_sent = true;
    flow->connection_window -= chunk;
    flow->stream_window -= chunk;
    flow->n_left -= (size_t)chunk;
    pthread_mutex_lock(&p->lock);
    p->n_bytes_fed += (size_t)chunk;
    pthread_mutex_unlock(&p->lock);
    return h2_send_frame(fd, H2_DATA, 0, flow->stream, frame, (size_t)chunk);
}

/* Serves one connection as an HTTP/2 server that is broken as p->kind says: its SETTINGS,
 * SETTINGS and PING acknowledged, and each request (a Ping is the one whose message is empty)
 * answered by h2_answer once its end arrives; a message h2_answer started is fed as the
 * client's windows allow, until it is all sent or the client resets its stream. */
static void h2_serve(peer *p, int fd)
{
    uint8_t head[9], preface[24];
    uint8_t *payload = malloc(H2_MAX_READ), *frame = malloc(H2_FRAME_BYTES);
    assert_true(payload != NULL && frame != NULL);
    size_t request_bytes[H2_STREAM_SLOTS] = {0}; /* DATA received per stream, by slot */
    h2_flow flow = {.initial_window = 65535, .connection_window = 65535};
    bool is_open = h2_send_frame(fd, H2_SETTINGS, 0, 0, NULL, 0) &&
                   h2_recv_exact(fd, preface, sizeof preface) &&
                   memcmp(preface, "PRI * HTTP/2.0", 14) == 0;
    while (is_open) {
        if (flow.n_left > 0 && flow.connection_window > 0 && flow.stream_window > 0) {
            is_open = h2_feed(p, fd, &flow, frame);
            continue;
        }
        if (!h2_recv_exact(fd, head, sizeof head))
            break;
        size_t len = (size_t)head[0] << 16 | (size_t)head[1] << 8 | head[2];
        uint8_t type = head[3], flags = head[4];
        uint32_t stream = (uint32_t)(head[5] & 0x7f) << 24 | (uint32_t)head[6] << 16 |
                          (uint32_t)head[7] << 8 | head[8];
        size_t *slot = &request_bytes[(stream / 2) % H2_STREAM_SLOTS];
        if (len > H2_MAX_READ || !h2_recv_exact(fd, payload, len))
            break;
        uint32_t word = len >= 4 ? (uint32_t)payload[0] << 24 | (uint32_t)payload[1] << 16 |
                                       (uint32_t)payload[2] << 8 | payload[3]
                                 : 0;
        if (type == H2_SETTINGS && !(flags & H2_ACK)) {
            for (size_t i = 0; i + 6 <= len; i += 6) {
                int64_t value = (int64_t)payload[i + 2] << 24 | (int64_t)payload[i + 3] << 16 |
                                (int64_t)payload[i + 4] << 8 | payload[i + 5];
                if (payload[i] == 0 && payload[i + 1] == 4) { /* INITIAL_WINDOW_SIZE */
                    flow.stream_window += value - flow.initial_window;
                    flow.initial_window = value;
                }
            }
            is_open = h2_send_frame(fd, H2_SETTINGS, H2_ACK, 0, NULL, 0);
        } else if (type == H2_PING && !(flags & H2_ACK) && len == 8) {
            is_open = h2_send_frame(fd, H2_PING, H2_ACK, 0, payload, len);
        } else if (type == H2_WINDOW_UPDATE && len == 4) {
            if (stream == 0)
                flow.connection_window += word & 0x7fffffff;
            else if (stream == flow.stream)
                flow.stream_window += word & 0x7fffffff;
        } else if (type == H2_RST_STREAM && stream == flow.stream) {
            flow.n_left = 0;
        } else if (type == H2_HEADERS) {
            *slot = 0;
        } else if (type == H2_DATA) {
            *slot += len;
            if (flags & H2_END_STREAM)
                is_open = h2_answer(p, fd, stream, *slot == 5, &flow);
        } else if (type == H2_GOAWAY) {
            break;
        }
    }
    free(frame);
    free(payload);
    shutdown(fd, SHUT_RDWR);
}

/* ---- A relay to a real server ---------------------------------------------------------------- */

/* One direction of a relayed connection. */
typedef struct relay_pipe {
    peer *relay;
    int from, to;
    bool is_to_client;
} relay_pipe;

/* Whether the relay holds back what goes in pipe's direction. Under the lock. */
static bool relay_is_held(const peer *r, const relay_pipe *pipe)
{
    return pipe->is_to_client ? r->budget_to_client == 0 : r->is_upstream_held;
}

/* Forwards from pipe->from to pipe->to as the relay's settings say, until either side closes or
 * the relay stops; then passes the end on. Frees pipe. */
static void *relay_pipe_main(void *arg)
{
    relay_pipe *pipe = arg;
    peer *r = pipe->relay;
    uint8_t buffer[16384];
    bool is_open = true;
    while (is_open) {
        ssize_t n = recv(pipe->from, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (size_t done = 0; is_open && done < (size_t)n;) {
            pthread_mutex_lock(&r->lock);
            while (!r->is_stopping && relay_is_held(r, pipe))
                pthread_cond_wait(&r->changed, &r->lock);
            size_t chunk = (size_t)n - done;
            int delay_ms = 0;
            if (pipe->is_to_client) {
                if (r->byte_delay_ms > 0) {
                    chunk = 1;
                    delay_ms = r->byte_delay_ms;
                }
                if (r->budget_to_client >= 0 && (int64_t)chunk > r->budget_to_client)
                    chunk = (size_t)r->budget_to_client;
                if (r->budget_to_client >= 0)
                    r->budget_to_client -= (int64_t)chunk;
                r->n_bytes_to_client += chunk;
            }
            is_open = !r->is_stopping;
            pthread_mutex_unlock(&r->lock);
            is_open = is_open && h2_send_all(pipe->to, buffer + done, chunk);
            done += chunk;
            if (delay_ms > 0)
                esg_clock_sleep_ms(delay_ms);
        }
    }
    shutdown(pipe->to, SHUT_WR);
    free(pipe);
    return NULL;
}

/* A client's connection to the relay: one to the server, and a pipe each way. */
static void relay_serve(peer *r, int client_fd)
{
    int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)r->upstream_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (upstream < 0 || connect(upstream, (struct sockaddr *)&to, sizeof to) != 0) {
        if (upstream >= 0)
            close(upstream);
        shutdown(client_fd, SHUT_RDWR);
        return;
    }
    relay_pipe *down = malloc(sizeof *down), *up = malloc(sizeof *up);
    assert_true(down != NULL && up != NULL);
    *down = (relay_pipe){r, upstream, client_fd, true};
    *up = (relay_pipe){r, client_fd, upstream, false};
    pthread_mutex_lock(&r->lock);
    bool is_tracked = peer_track_fd(r, upstream);
    bool is_spawned = is_tracked && peer_spawn(r, relay_pipe_main, down);
    pthread_mutex_unlock(&r->lock);
    if (!is_tracked)
        close(upstream);
    if (!is_spawned) {
        free(down);
        free(up);
        shutdown(client_fd, SHUT_RDWR);
        return;
    }
    relay_pipe_main(up);
}

/* Changes a relay's settings under its lock and wakes its pipes. */
#define RELAY_SET(r, assignments)                                                                  \
    do {                                                                                           \
        pthread_mutex_lock(&(r)->lock);                                                            \
        assignments;                                                                               \
        pthread_cond_broadcast(&(r)->changed);                                                     \
        pthread_mutex_unlock(&(r)->lock);                                                          \
    } while (0)

/* ---- Serving connections --------------------------------------------------------------------- */

typedef struct connection {
    peer *peer;
    int fd;
} connection;

static void *connection_main(void *arg)
{
    connection c = *(connection *)arg;
    free(arg);
    peer *p = c.peer;
    uint8_t noise[65536];
    uint32_t state = 2463534242u; /* xorshift32: the same noise every run */
    static const char http1[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 11\r\n\r\nbad request";
    static const uint8_t truncated_settings[5] = {0, 0, 0, H2_SETTINGS, 0};
    switch (p->kind) {
    case PEER_SILENT:
        break;
    case PEER_CLOSES:
        shutdown(c.fd, SHUT_RDWR);
        return NULL;
    case PEER_RANDOM:
        for (size_t i = 0; i < sizeof noise; i++) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            noise[i] = (uint8_t)state;
        }
        h2_send_all(c.fd, noise, sizeof noise);
        break;
    case PEER_HTTP1:
        h2_send_all(c.fd, http1, sizeof http1 - 1);
        break;
    case PEER_TRUNCATED_SETTINGS:
        h2_send_all(c.fd, truncated_settings, sizeof truncated_settings);
        break;
    case PEER_RELAY:
        relay_serve(p, c.fd);
        return NULL;
    default:
        h2_serve(p, c.fd);
        return NULL;
    }
    drain(c.fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    peer *p = arg;
    while (!peer_is_stopping(p)) {
        struct pollfd ready = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&ready, 1, 20) <= 0)
            continue;
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        connection *c = malloc(sizeof *c);
        assert_non_null(c);
        *c = (connection){p, fd};
        pthread_mutex_lock(&p->lock);
        bool is_tracked = p->n_accepted < MAX_CONNECTIONS && peer_track_fd(p, fd);
        bool is_spawned = is_tracked && peer_spawn(p, connection_main, c);
        p->n_accepted++;
        pthread_mutex_unlock(&p->lock);
        if (!is_tracked)
            close(fd);
        if (!is_spawned)
            free(c);
    }
    return NULL;
}

/* Starts a peer of kind on 127.0.0.1 (an ephemeral port); relays forward to upstream_port. */
static peer *peer_start(peer_kind kind, int upstream_port)
{
    peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->kind = kind;
    p->upstream_port = upstream_port;
    p->budget_to_client = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->listen_fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof address;
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(p->listen_fd, 64), 0);
    assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&address, &len), 0);
    snprintf(p->address, sizeof p->address, "localhost:%d", ntohs(address.sin_port));
    assert_int_equal(pthread_create(&p->acceptor, NULL, accept_main, p), 0);
    return p;
}

/* Shuts every connection down, joins every thread, closes every socket and frees the peer. */
static void peer_stop(peer *p)
{
    RELAY_SET(p, p->is_stopping = true);
    assert_int_equal(pthread_join(p->acceptor, NULL), 0);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_fds; i++)
        shutdown(p->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&p->lock);
    /* Threads joined one by one: a relay's connection may still be adding its pipe. */
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&p->lock);
        bool is_more = i < p->n_threads;
        pthread_t thread = is_more ? p->threads[i] : 0;
        pthread_mutex_unlock(&p->lock);
        if (!is_more)
            break;
        assert_int_equal(pthread_join(thread, NULL), 0);
    }
    for (size_t i = 0; i < p->n_fds; i++)
        close(p->fds[i]);
    close(p->listen_fd);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- A server of replies of a chosen size, on gRPC's core ------------------------------------ */

typedef struct sized_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    char address[64];
    atomic_size_t reply_bytes; /* the packed size of every MethodReply and NotificationsReply */
    bool is_shut_down;         /* the shutdown tag arrived (server thread only) */
} sized_server;

#define TAG_REQUEST ((void *)1)
#define TAG_RECV ((void *)2)
#define TAG_SEND ((void *)3)
#define TAG_SHUTDOWN ((void *)4)

/* Waits for tag, noting the shutdown tag when it passes by. */
static bool sized_wait(sized_server *s, void *tag)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        assert_int_equal(ev.type, GRPC_OP_COMPLETE);
        if (ev.tag == TAG_SHUTDOWN)
            s->is_shut_down = true;
        if (ev.tag == tag)
            return ev.success != 0;
    }
}

/* Protobuf by hand (length-delimited fields only), into a buffer of the exact size. */
static size_t varint_len(size_t value)
{
    size_t n = 1;
    for (; value >= 128; value >>= 7)
        n++;
    return n;
}

static uint8_t *put_varint(uint8_t *p, size_t value)
{
    for (; value >= 128; value >>= 7)
        *p++ = (uint8_t)(value % 128 + 128);
    *p++ = (uint8_t)value;
    return p;
}

/* The head of field (wire type 2) of len bytes; the caller writes them after it. */
static uint8_t *put_field_head(uint8_t *p, int field, size_t len)
{
    *p++ = (uint8_t)(field << 3 | 2);
    return put_varint(p, len);
}

static size_t field_len(size_t len)
{
    return 1 + varint_len(len) + len;
}

static uint8_t *put_string_field(uint8_t *p, int field, const char *text)
{
    p = put_field_head(p, field, strlen(text));
    memcpy(p, text, strlen(text));
    return p + strlen(text);
}

/* A MethodReply of exactly size bytes: its data (field 1) a JSON string of 'x's. */
static grpc_byte_buffer *method_reply_of_size(size_t size)
{
    size_t len = size - 1;
    while (field_len(len) > size)
        len--;
    assert_int_equal(field_len(len), size);
    uint8_t *bytes = malloc(size), *p = put_field_head(bytes, 1, len);
    assert_non_null(bytes);
    memset(p, 'x', len);
    p[0] = p[len - 1] = '"';
    grpc_byte_buffer *buffer = esg_wire_buffer(bytes, size);
    free(bytes);
    assert_non_null(buffer);
    return buffer;
}

/* A NotificationsReply of exactly size bytes: one notification (field 1) of id, originator_id,
 * originator_version and topic (fields 1 to 4), and a state (field 5) of 'x's. */
static grpc_byte_buffer *notifications_reply_of_size(size_t size)
{
    static const char *const strings[4] = {"1", "0123456789abcdef0123456789abcdef", "1",
                                           "hostile:Big"};
    size_t head = 0;
    for (int i = 0; i < 4; i++)
        head += field_len(strlen(strings[i]));
    size_t state_len = size - head;
    while (field_len(head + field_len(state_len)) > size)
        state_len--;
    size_t item_len = head + field_len(state_len);
    assert_int_equal(field_len(item_len), size);
    uint8_t *bytes = malloc(size), *p = put_field_head(bytes, 1, item_len);
    assert_non_null(bytes);
    for (int i = 0; i < 4; i++)
        p = put_string_field(p, i + 1, strings[i]);
    p = put_field_head(p, 5, state_len);
    memset(p, 'x', state_len);
    assert_int_equal(p + state_len - bytes, size);
    grpc_byte_buffer *buffer = esg_wire_buffer(bytes, size);
    free(bytes);
    assert_non_null(buffer);
    return buffer;
}

/* Answers one call: Ping with Empty, CallApplicationMethod and GetNotifications with replies
 * of s->reply_bytes, anything else UNIMPLEMENTED. */
static void sized_handle(sized_server *s, grpc_call *call, const char *path)
{
    grpc_byte_buffer *request = NULL;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &request;
    assert_int_equal(grpc_call_start_batch(call, ops, 2, TAG_RECV, NULL), GRPC_CALL_OK);
    sized_wait(s, TAG_RECV);
    grpc_byte_buffer_destroy(request);

    size_t size = atomic_load(&s->reply_bytes);
    grpc_byte_buffer *reply = NULL;
    grpc_status_code status = GRPC_STATUS_OK;
    if (strcmp(path, ESG_PATH_PING) == 0)
        reply = esg_wire_buffer((const uint8_t *)"", 0);
    else if (strcmp(path, ESG_PATH_CALL) == 0)
        reply = method_reply_of_size(size);
    else if (strcmp(path, ESG_PATH_GET_NOTIFICATIONS) == 0)
        reply = notifications_reply_of_size(size);
    else
        status = GRPC_STATUS_UNIMPLEMENTED;
    int cancelled = 0;
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (reply != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = status;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &cancelled;
    assert_int_equal(grpc_call_start_batch(call, ops, n, TAG_SEND, NULL), GRPC_CALL_OK);
    sized_wait(s, TAG_SEND);
    grpc_byte_buffer_destroy(reply);
    grpc_call_unref(call);
}

static void *sized_main(void *arg)
{
    sized_server *s = arg;
    for (bool is_call = true; is_call;) {
        grpc_call *call = NULL;
        grpc_call_details details;
        grpc_metadata_array metadata;
        grpc_call_details_init(&details);
        grpc_metadata_array_init(&metadata);
        assert_int_equal(grpc_server_request_call(s->server, &call, &details, &metadata, s->cq,
                                                  s->cq, TAG_REQUEST),
                         GRPC_CALL_OK);
        is_call = sized_wait(s, TAG_REQUEST);
        if (is_call) {
            char path[128];
            snprintf(path, sizeof path, "%.*s", (int)GRPC_SLICE_LENGTH(details.method),
                     (const char *)GRPC_SLICE_START_PTR(details.method));
            sized_handle(s, call, path);
        }
        grpc_call_details_destroy(&details);
        grpc_metadata_array_destroy(&metadata);
    }
    if (!s->is_shut_down)
        sized_wait(s, TAG_SHUTDOWN);
    return NULL;
}

static sized_server *sized_start(void)
{
    sized_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    atomic_init(&s->reply_bytes, 0);
    raw_server_start(&s->server, &s->cq, &s->thread, sized_main, s, s->address, sizeof s->address);
    return s;
}

static void sized_stop(sized_server *s)
{
    raw_server_stop(s->server, s->cq, s->thread, TAG_SHUTDOWN);
    free(s);
}

/* ---- Subscribing, which has no deadline of its own ------------------------------------------- */

typedef struct subscribing {
    esg_client *client;
    esg_subscription *subscription;
    esg_status rc;
    esg_error err;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool is_done;
} subscribing;

static void *subscribe_main(void *arg)
{
    subscribing *s = arg;
    esg_status rc =
        esg_client_subscribe(s->client, "Follower", 1, NULL, 0, &s->subscription, &s->err);
    pthread_mutex_lock(&s->lock);
    s->rc = rc;
    s->is_done = true;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* esg_client_subscribe on a thread of its own, given bound_ms to return: whether it did. When
 * it did not, the client is closed (which cancels its call) so that the thread ends. Sets *out
 * (the caller frees it), *rc and *err as esg_client_subscribe did. */
static bool subscribe_within(esg_client *client, const char *what, int64_t bound_ms,
                             esg_subscription **out, esg_status *rc, esg_error *err)
{
    subscribing s = {.client = client};
    pthread_mutex_init(&s.lock, NULL);
    esg_cond_init(&s.changed);
    pthread_t thread;
    timing t = timing_start(what, bound_ms);
    assert_int_equal(pthread_create(&thread, NULL, subscribe_main, &s), 0);
    struct timespec until = esg_clock_deadline(bound_ms);
    pthread_mutex_lock(&s.lock);
    while (!s.is_done && pthread_cond_timedwait(&s.changed, &s.lock, &until) == 0) {
    }
    bool is_in_time = s.is_done;
    pthread_mutex_unlock(&s.lock);
    if (!is_in_time)
        esg_client_close(client);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.lock);
    *out = s.subscription;
    *rc = s.rc;
    *err = s.err;
    timing_row(&t, s.rc, err);
    return is_in_time;
}

/* subscribe_within for a subscription that must be made in time: returns it. */
static esg_subscription *subscribe_in_time(esg_client *client, const char *what, int64_t bound_ms)
{
    esg_subscription *subscription = NULL;
    esg_status rc = ESG_OK;
    esg_error err = {0};
    if (!subscribe_within(client, what, bound_ms, &subscription, &rc, &err)) {
        esg_subscription_free(subscription);
        fail_msg("%s: esg_client_subscribe had not returned after %lld ms", what,
                 (long long)bound_ms);
    }
    expect_one(what, rc, ESG_OK, &err);
    return subscription;
}

/* ---- 1, 2. Servers that never answer Ping: connecting gives up ------------------------------- */

/* A case of its own peer (test state). */
typedef struct peer_case {
    peer_kind kind;
    const char *what;        /* the row's label */
    allowed expected;        /* of connecting, or of a command */
    allowed expected_select; /* of a page (test_calls_end_in_time) */
} peer_case;

static void test_connect_gives_up(void **state)
{
    const peer_case *c = *state;
    peer *p = peer_start(c->kind, 0);
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = client_options(DEADLINE_MS, CONNECT_ATTEMPTS);
    timing t = timing_start(c->what, tries_bound_ms(CONNECT_ATTEMPTS, DEADLINE_MS));
    esg_status rc = esg_client_connect_address(p->address, &options, &client, &err);
    timing_end(&t, rc, &err);
    expect_status(c->what, rc, c->expected, &err);
    assert_null(client);
    peer_stop(p);
}

/* ---- 2, 5. Broken HTTP/2 after a good Ping: calls and pages end with a status in time -------- */

static void test_calls_end_in_time(void **state)
{
    const peer_case *c = *state;
    peer *p = peer_start(c->kind, 0);
    esg_client *client = connect_to(p->address, DEADLINE_MS);
    esg_error err = {0};
    char what[96];

    /* Such a server never said it keeps idempotency keys: a command gets one try. */
    esg_value *result = NULL;
    snprintf(what, sizeof what, "%s: call", c->what);
    timing t = timing_start(what, DEADLINE_MS + SLACK_MS);
    esg_status rc = esg_client_call(client, "create_new_order", NULL, NULL, &result, &err);
    timing_end(&t, rc, &err);
    expect_status(what, rc, c->expected, &err);
    assert_null(result);

    /* Pages are repeatable: CALL_TRIES tries. */
    esg_notification_list list = {0};
    snprintf(what, sizeof what, "%s: select", c->what);
    t = timing_start(what, tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err);
    timing_end(&t, rc, &err);
    expect_status(what, rc, c->expected_select, &err);
    assert_int_equal(list.n_items, 0);

    t = timing_start("closing the client", SLACK_MS);
    esg_client_free(client);
    timing_end(&t, ESG_OK, &err);
    pthread_mutex_lock(&p->lock);
    size_t n_fed = p->n_bytes_fed;
    pthread_mutex_unlock(&p->lock);
    if (n_fed > 0)
        printf("[ peer     ] %zu bytes of messages sent as the client's windows allowed\n", n_fed);
    peer_stop(p);
    /* PEER_H2_HUGE_CLAIM: gRPC 1.51 takes in a whole message before it compares it with the
     * maximum, granting windows meanwhile; the client's memory quota resets the stream ("Buffers
     * full"). Without it, each call took all it was offered (2 GiB, RSS 2 GiB, in 5 s). */
    if (n_fed > (1 + CALL_TRIES) * MAX_ACCEPTED_PER_CALL)
        fail_msg("%s: the client let in %zu bytes of replies over %d calls, where its maximum "
                 "is %d bytes a reply",
                 c->what, n_fed, 1 + CALL_TRIES, MAX_REPLY_BYTES);
}

/* A subscription to a server that accepted the stream and never sends a page. */
static void test_subscription_to_a_hung_server(void **state)
{
    (void)state;
    peer *p = peer_start(PEER_H2_HANGS, 0);
    esg_client *client = connect_to(p->address, DEADLINE_MS);
    esg_error err = {0};
    esg_subscription *subscription = subscribe_in_time(client, "h2 hangs: subscribe", SLACK_MS);
    esg_notification_list list = {0};
    int64_t up_to = 0;
    timing t = timing_start("h2 hangs: next page", DEADLINE_MS + SLACK_MS);
    esg_status rc = esg_subscription_next(subscription, DEADLINE_MS, &list, &up_to, &err);
    timing_end(&t, rc, &err);
    expect_one("h2 hangs: next page", rc, ESG_ETIMEDOUT, &err);
    assert_int_equal(list.n_items, 0);
    t = timing_start("h2 hangs: free the subscription", SLACK_MS);
    esg_subscription_free(subscription);
    timing_end(&t, ESG_OK, &err);
    esg_client_free(client);
    peer_stop(p);
}

/* A server that lets no byte of a request in (a stream window of 0): esg_client_subscribe gives
 * up at the client's deadline, ESG_ETIMEDOUT (it once waited for ever: subscription.c waited for
 * the request to be sent without a deadline, and returned ESG_OK once the client was closed). */
static void test_subscribe_to_a_zero_window(void **state)
{
    (void)state;
    const char *what = "h2 zero window: subscribe";
    int64_t bound_ms = DEADLINE_MS + SLACK_MS;
    peer *p = peer_start(PEER_H2_ZERO_WINDOW, 0);
    esg_client *client = connect_to(p->address, DEADLINE_MS);
    esg_subscription *subscription = NULL;
    esg_status rc = ESG_OK;
    esg_error err = {0};
    bool is_in_time = subscribe_within(client, what, bound_ms, &subscription, &rc, &err);
    esg_subscription_free(subscription);
    esg_client_free(client);
    peer_stop(p);
    if (!is_in_time)
        fail_msg("%s: esg_client_subscribe had not returned after %lld ms; it returned %s once "
                 "the client was closed from another thread",
                 what, (long long)bound_ms, esg_status_name(rc));
    expect_status(what, rc, (allowed)ONE(ESG_ETIMEDOUT), &err);
}

/* ---- 1, 5. A real server that stops answering in the middle of a call ------------------------ */

static void test_server_that_stops_answering(void **state)
{
    (void)state;
    esg_error err = {0};
    orders_server *orders = orders_start(0);
    peer *relay = peer_start(PEER_RELAY, esg_server_port(orders->server));
    esg_client *client = connect_to(relay->address, DEADLINE_MS);
    esg_value *result = NULL;
    timing t = timing_start("relay: call while it forwards", DEADLINE_MS + SLACK_MS);
    esg_status rc = esg_client_call(client, "create_new_order", NULL, NULL, &result, &err);
    timing_end(&t, rc, &err);
    assert_esg_ok(rc, &err);
    esg_uuid order_id = testutil_take_uuid(result);
    esg_value *args = testutil_id_args(&order_id);

    /* The reply stops after a few bytes of it; our server keeps keys: CALL_TRIES tries. */
    RELAY_SET(relay, relay->budget_to_client = 24);
    t = timing_start("relay: reply cut after 24 bytes", tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = esg_client_call(client, "get_order", args, NULL, &result, &err);
    timing_end(&t, rc, &err);
    expect_one("relay: reply cut", rc, ESG_ETIMEDOUT, &err);
    assert_null(result);

    /* Nothing either way now. */
    RELAY_SET(relay, relay->is_upstream_held = true);
    t = timing_start("relay frozen: call", tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = esg_client_call(client, "get_order", args, NULL, &result, &err);
    timing_end(&t, rc, &err);
    expect_one("relay frozen: call", rc, ESG_ETIMEDOUT, &err);
    esg_notification_list list = {0};
    t = timing_start("relay frozen: select", tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err);
    timing_end(&t, rc, &err);
    expect_one("relay frozen: select", rc, ESG_ETIMEDOUT, &err);
    assert_int_equal(list.n_items, 0);
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    t = timing_start("relay frozen: the log's select", tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = log.select(log.ctx, 1, log.page_size, NULL, 0, &list, &err);
    timing_end(&t, rc, &err);
    expect_one("relay frozen: the log's select", rc, ESG_ETIMEDOUT, &err);
    t = timing_start("relay frozen: ping", tries_bound_ms(CALL_TRIES, DEADLINE_MS));
    rc = esg_client_ping(client, &err);
    timing_end(&t, rc, &err);
    expect_one("relay frozen: ping", rc, ESG_ETIMEDOUT, &err);

    /* A subscription made on the frozen connection: sent (into the socket), never answered. */
    esg_subscription *subscription = subscribe_in_time(client, "relay frozen: subscribe", SLACK_MS);
    int64_t up_to = 0;
    t = timing_start("relay frozen: next page", DEADLINE_MS + SLACK_MS);
    rc = esg_subscription_next(subscription, DEADLINE_MS, &list, &up_to, &err);
    timing_end(&t, rc, &err);
    expect_one("relay frozen: next page", rc, ESG_ETIMEDOUT, &err);
    t = timing_start("relay frozen: free the subscription", SLACK_MS);
    esg_subscription_free(subscription);
    timing_end(&t, ESG_OK, &err);

    pthread_mutex_lock(&relay->lock);
    /* Without keepalive, the channel stays READY on the frozen connection: no new one. */
    printf("[ relay    ] %zu bytes forwarded to the client, %zu connection(s) accepted\n",
           relay->n_bytes_to_client, relay->n_accepted);
    pthread_mutex_unlock(&relay->lock);
    esg_value_free(args);
    t = timing_start("relay frozen: closing the client", SLACK_MS);
    esg_client_free(client);
    timing_end(&t, ESG_OK, &err);
    peer_stop(relay);
    orders_stop(orders);
}

/* A subscription waits for its next page on a connection that the relay then freezes both ways
 * (a peer that died without closing, a cut network). With keepalive_ms (> 0), the client's ping
 * goes unanswered and it drops the connection: the wait ends at once, not at its deadline;
 * with no pings (< 0), it lasts to the deadline. Returns how long the wait took. */
static int64_t wait_on_a_frozen_connection(int64_t keepalive_ms, int64_t wait_ms,
                                           esg_status *rc_out)
{
    orders_server *orders = orders_start(0);
    peer *relay = peer_start(PEER_RELAY, esg_server_port(orders->server));
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = client_options(DEADLINE_MS, 10);
    options.keepalive_ms = keepalive_ms;
    assert_esg_ok(esg_client_connect_address(relay->address, &options, &client, &err), &err);
    const char *what = keepalive_ms > 0 ? "keepalive: subscription, relay frozen"
                                        : "no keepalive: subscription, relay frozen";
    esg_subscription *subscription = subscribe_in_time(client, what, SLACK_MS);
    RELAY_SET(relay, relay->is_upstream_held = true; relay->budget_to_client = 0);
    esg_notification_list list = {0};
    int64_t up_to = 0;
    timing t = timing_start(what, wait_ms + SLACK_MS);
    int64_t elapsed_ms = 0;
    do { /* a first page that was on its way when the relay froze is read, and the wait goes on */
        esg_notification_list_clear(&list);
        *rc_out = esg_subscription_next(subscription, wait_ms - elapsed_ms, &list, &up_to, &err);
        elapsed_ms = esg_clock_now_ms() - t.started_ms;
    } while (*rc_out == ESG_OK && elapsed_ms < wait_ms);
    elapsed_ms = timing_end(&t, *rc_out, &err);
    esg_notification_list_clear(&list);
    esg_subscription_free(subscription);
    esg_client_free(client);
    peer_stop(relay);
    orders_stop(orders);
    return elapsed_ms;
}

static void test_keepalive_drops_a_frozen_connection(void **state)
{
    (void)state;
    enum { KEEPALIVE_MS = 300, WAIT_MS = 8000 };
    esg_status rc = ESG_OK;
    int64_t elapsed_ms = wait_on_a_frozen_connection(KEEPALIVE_MS, WAIT_MS, &rc);
    /* The ping after 300 ms of quiet, 300 ms for its answer: well before the 8 s. */
    assert_true(elapsed_ms < WAIT_MS / 2);
    assert_int_equal(rc, ESG_EUNAVAILABLE);
    elapsed_ms = wait_on_a_frozen_connection(-1, 2000, &rc);
    assert_true(elapsed_ms >= 2000);
    assert_int_equal(rc, ESG_ETIMEDOUT);
}

/* ---- 3. A server that answers one byte at a time --------------------------------------------- */

/* Connects through relay (forwarding at full speed), makes one call, then slows the relay to a
 * byte every SLOW_BYTE_DELAY_MS and calls get_order; returns how long that took. */
static int64_t slow_get_order(peer *relay, int64_t deadline_ms, const char *what,
                              esg_status expected)
{
    esg_error err = {0};
    esg_client *client = connect_to(relay->address, deadline_ms);
    esg_value *result = NULL;
    assert_esg_ok(esg_client_call(client, "create_new_order", NULL, NULL, &result, &err), &err);
    esg_uuid order_id = testutil_take_uuid(result);
    esg_value *args = testutil_id_args(&order_id);
    size_t before = 0;
    RELAY_SET(relay, relay->byte_delay_ms = SLOW_BYTE_DELAY_MS; before = relay->n_bytes_to_client);
    /* Our server keeps keys: CALL_TRIES tries, a repeat meeting the rest of the last reply. */
    int64_t bound_ms = tries_bound_ms(CALL_TRIES, deadline_ms);
    timing t = timing_start(what, bound_ms);
    esg_status rc = esg_client_call(client, "get_order", args, NULL, &result, &err);
    int64_t elapsed_ms = timing_end(&t, rc, &err);
    expect_one(what, rc, expected, &err);
    esg_value_free(result);
    esg_value_free(args);
    pthread_mutex_lock(&relay->lock);
    printf("[ relay    ] %zu bytes dripped to the client during the call\n",
           relay->n_bytes_to_client - before);
    pthread_mutex_unlock(&relay->lock);
    t = timing_start("slow relay: closing the client", SLACK_MS);
    esg_client_free(client);
    timing_end(&t, ESG_OK, &err);
    return elapsed_ms;
}

static void test_server_answering_byte_by_byte(void **state)
{
    (void)state;
    orders_server *orders = orders_start(0);
    int port = esg_server_port(orders->server);
    /* A relay each, so that no byte of one call's reply is left in the other's way. */
    peer *relay = peer_start(PEER_RELAY, port);
    slow_get_order(relay, DEADLINE_MS, "slow relay: short deadline", ESG_ETIMEDOUT);
    peer_stop(relay);
    relay = peer_start(PEER_RELAY, port);
    int64_t elapsed_ms = slow_get_order(relay, 20000, "slow relay: long deadline", ESG_OK);
    peer_stop(relay);
    /* The reply that arrived took longer than the short deadline: that one really was cut. */
    assert_true(elapsed_ms > DEADLINE_MS);
    orders_stop(orders);
}

/* ---- 4. Replies at the client's maximum size and over it ------------------------------------- */

static void test_replies_at_and_over_the_maximum(void **state)
{
    (void)state;
    sized_server *server = sized_start();
    /* The replies take a while to make and to decode under sanitizers. */
    int64_t deadline_ms = 10000;
    esg_client *client = connect_to(server->address, deadline_ms);
    esg_error err = {0};
    const size_t sizes[] = {MAX_REPLY_BYTES - 1, MAX_REPLY_BYTES, MAX_REPLY_BYTES + 1,
                            4 * MAX_REPLY_BYTES};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        bool is_over = size > MAX_REPLY_BYTES;
        atomic_store(&server->reply_bytes, size);
        char what[96];

        esg_value *result = NULL;
        snprintf(what, sizeof what, "reply of %zu bytes: call", size);
        timing t = timing_start(what, deadline_ms + SLACK_MS);
        esg_status rc = esg_client_call(client, "big", NULL, NULL, &result, &err);
        timing_end(&t, rc, &err);
        if (is_over) {
            expect_one(what, rc, ESG_EREMOTE, &err);
            assert_non_null(strstr(err.message, "larger than max"));
            assert_null(result);
        } else {
            assert_esg_ok(rc, &err);
            size_t len = 0;
            assert_int_equal(esg_value_type(result), ESG_TYPE_STRING);
            esg_value_as_string(result, &len);
            assert_true(len > size - 16 && len < size);
            esg_value_free(result);
        }

        esg_notification_list list = {0};
        snprintf(what, sizeof what, "reply of %zu bytes: select", size);
        t = timing_start(what, deadline_ms + SLACK_MS);
        rc = esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err);
        timing_end(&t, rc, &err);
        if (is_over) {
            expect_one(what, rc, ESG_EREMOTE, &err);
            assert_non_null(strstr(err.message, "larger than max"));
            assert_int_equal(list.n_items, 0);
        } else {
            assert_esg_ok(rc, &err);
            assert_int_equal(list.n_items, 1);
            assert_true(list.items[0].event.state_len > size - 100);
        }
        esg_notification_list_clear(&list);
    }
    esg_client_free(client);
    sized_stop(server);
}

/* ---- The cases ------------------------------------------------------------------------------- */

/* Peers that never answer Ping: connecting gives up with ESG_EUNAVAILABLE. */
static const peer_case never_answer[] = {
    {PEER_SILENT, "silent TCP: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
    {PEER_CLOSES, "closes at once: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
    {PEER_RANDOM, "random bytes: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
    {PEER_HTTP1, "HTTP/1.1 reply: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
    {PEER_TRUNCATED_SETTINGS, "truncated SETTINGS: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
    {PEER_H2_SILENT, "h2 silent: connect", ONE(ESG_EUNAVAILABLE), ONE(ESG_OK)},
};

/* Peers that answer Ping, then break calls: the status a command and a page end with. */
static const peer_case break_calls[] = {
    {PEER_H2_HANGS, "h2 hangs", ONE(ESG_ETIMEDOUT), ONE(ESG_ETIMEDOUT)},
    {PEER_H2_ZERO_WINDOW, "h2 zero window", ONE(ESG_ETIMEDOUT), ONE(ESG_ETIMEDOUT)},
    /* Reset at the client's memory quota (test_calls_end_in_time checks what it let in). */
    {PEER_H2_HUGE_CLAIM, "h2 4 GiB message", EITHER(ESG_EREMOTE, ESG_ETIMEDOUT),
     EITHER(ESG_EREMOTE, ESG_ETIMEDOUT)},
    /* A flow control error, or under TSan a client fast enough to keep up until its deadline. */
    {PEER_H2_FLOOD, "h2 flood past flow control",
     ANY_OF(ESG_EUNAVAILABLE, ESG_EREMOTE, ESG_ETIMEDOUT),
     ANY_OF(ESG_EUNAVAILABLE, ESG_EREMOTE, ESG_ETIMEDOUT)},
    {PEER_H2_HEADER_FLOOD, "h2 endless headers", EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE),
     EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE)},
    {PEER_H2_OVERSIZED_FRAME, "h2 16 MiB frame", EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE),
     EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE)},
    {PEER_H2_BAD_HPACK, "h2 bad HPACK", EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE),
     EITHER(ESG_EUNAVAILABLE, ESG_EREMOTE)},
    {PEER_H2_BAD_STATUS, "h2 grpc-status banana", ONE(ESG_EREMOTE), ONE(ESG_EREMOTE)},
    {PEER_H2_NO_STATUS, "h2 no grpc-status", ONE(ESG_EREMOTE), ONE(ESG_EREMOTE)},
    {PEER_H2_HTTP_503, "h2 HTTP 503", ONE(ESG_EUNAVAILABLE), ONE(ESG_EUNAVAILABLE)},
    {PEER_H2_GOAWAY, "h2 GOAWAY", ONE(ESG_EUNAVAILABLE), ONE(ESG_EUNAVAILABLE)},
    {PEER_H2_REFUSED, "h2 REFUSED_STREAM", EITHER(ESG_EUNAVAILABLE, ESG_ETIMEDOUT),
     EITHER(ESG_EUNAVAILABLE, ESG_ETIMEDOUT)},
};

#define N_NEVER_ANSWER (sizeof never_answer / sizeof never_answer[0])
#define N_BREAK_CALLS (sizeof break_calls / sizeof break_calls[0])

int main(void)
{
    static const char *const never_answer_names[N_NEVER_ANSWER] = {
        "connect_silent_tcp",  "connect_closes_at_once",     "connect_random_bytes",
        "connect_http1_reply", "connect_truncated_settings", "connect_h2_silent"};
    static const char *const break_calls_names[N_BREAK_CALLS] = {
        "calls_h2_hangs",     "calls_h2_zero_window",  "calls_h2_4_GiB_reply_reset_at_the_quota",
        "calls_h2_flood",     "calls_h2_header_flood", "calls_h2_oversized_frame",
        "calls_h2_bad_hpack", "calls_h2_bad_status",   "calls_h2_no_status",
        "calls_h2_http_503",  "calls_h2_goaway",       "calls_h2_refused_stream"};
    struct CMUnitTest tests[N_NEVER_ANSWER + N_BREAK_CALLS + 6];
    size_t n = 0;
    for (size_t i = 0; i < N_NEVER_ANSWER; i++)
        tests[n++] = (struct CMUnitTest){never_answer_names[i], test_connect_gives_up, NULL, NULL,
                                         (void *)&never_answer[i]};
    for (size_t i = 0; i < N_BREAK_CALLS; i++)
        tests[n++] = (struct CMUnitTest){break_calls_names[i], test_calls_end_in_time, NULL, NULL,
                                         (void *)&break_calls[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_subscription_to_a_hung_server);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_subscribe_to_a_zero_window);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_server_that_stops_answering);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_keepalive_drops_a_frozen_connection);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_server_answering_byte_by_byte);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_replies_at_and_over_the_maximum);
    signal(SIGALRM, on_watchdog);
    return raw_run_grpc_tests("hostile server", tests, n, NULL, NULL);
}
