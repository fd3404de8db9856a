#include "h2_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "testutil.h"

const char h2_client_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const uint8_t h2_empty_settings[9] = {0, 0, 0, H2_SETTINGS, 0, 0, 0, 0, 0};

int h2_connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    return fd;
}

bool h2_send_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool h2_recv_exact(int fd, void *data, size_t len)
{
    uint8_t *p = data;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool h2_wait_for_close(int fd, int timeout_ms)
{
    uint8_t buffer[4096];
    size_t n_received = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited_ms =
            (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited_ms >= timeout_ms)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return true;
        if (n > 0)
            n_received += (size_t)n;
    }
    fprintf(stderr, "still open after %d ms; received %zu bytes meanwhile\n", timeout_ms,
            n_received);
    return false;
}

void h2_put_be32(uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t)(value >> 24);
    p[1] = (uint8_t)(value >> 16);
    p[2] = (uint8_t)(value >> 8);
    p[3] = (uint8_t)value;
}

void h2_frame_head(uint8_t head[9], size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    head[0] = (uint8_t)(len >> 16);
    head[1] = (uint8_t)(len >> 8);
    head[2] = (uint8_t)len;
    head[3] = type;
    head[4] = flags;
    h2_put_be32(head + 5, stream);
}

size_t h2_frame_put(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                    size_t len)
{
    h2_frame_head(out, len, type, flags, stream);
    if (len > 0)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

bool h2_send_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                   size_t len)
{
    uint8_t head[9];
    h2_frame_head(head, len, type, flags, stream);
    return h2_send_all(fd, head, sizeof head) && (len == 0 || h2_send_all(fd, payload, len));
}

void hpack_put_int(hpack_block *b, uint8_t first, unsigned prefix_bits, size_t value)
{
    assert_true(b->len + 11 <= sizeof b->bytes); /* a size_t takes at most 11 bytes */
    size_t max_prefix = ((size_t)1 << prefix_bits) - 1;
    if (value < max_prefix) {
        b->bytes[b->len++] = (uint8_t)(first | value);
        return;
    }
    b->bytes[b->len++] = (uint8_t)(first | max_prefix);
    for (value -= max_prefix; value >= 128; value >>= 7)
        b->bytes[b->len++] = (uint8_t)(value % 128 + 128);
    b->bytes[b->len++] = (uint8_t)value;
}

void hpack_put_string(hpack_block *b, const char *text, size_t len)
{
    hpack_put_int(b, 0, 7, len);
    assert_true(b->len + len <= sizeof b->bytes);
    memcpy(b->bytes + b->len, text, len);
    b->len += len;
}

void hpack_put(hpack_block *b, const char *name, const char *value)
{
    assert_true(b->len < sizeof b->bytes);
    b->bytes[b->len++] = 0;
    hpack_put_string(b, name, strlen(name));
    hpack_put_string(b, value, strlen(value));
}

void hpack_put_indexed_new(hpack_block *b, const char *name, const char *value)
{
    assert_true(b->len < sizeof b->bytes);
    b->bytes[b->len++] = 0x40;
    hpack_put_string(b, name, strlen(name));
    hpack_put_string(b, value, strlen(value));
}

void hpack_put_grpc_request(hpack_block *b, const char *path)
{
    hpack_put(b, ":method", "POST");
    hpack_put(b, ":scheme", "http");
    hpack_put(b, ":path", path);
    hpack_put(b, ":authority", "localhost");
    hpack_put(b, "content-type", "application/grpc");
    hpack_put(b, "te", "trailers");
}
