/* HTTP/2 by hand, for the tests that play a hostile peer on a raw socket: the
 * hostile server against our client (test_hostile_server.c) and hostile
 * clients against our server (test_hostile.c, test_http2_attacks.c). Frames
 * are written as RFC 9113 lays them out and header blocks as HPACK literals
 * (RFC 7541), because the point is to send what a well-behaved library
 * never would. Functions that send return false once the peer is gone. */
#ifndef ESG_TEST_H2_WIRE_H
#define ESG_TEST_H2_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2_DATA 0
#define H2_HEADERS 1
#define H2_RST_STREAM 3
#define H2_SETTINGS 4
#define H2_PING 6
#define H2_GOAWAY 7
#define H2_WINDOW_UPDATE 8
#define H2_CONTINUATION 9
#define H2_END_STREAM 1
#define H2_ACK 1
#define H2_END_HEADERS 4
#define H2_FRAME_BYTES 16384 /* the default SETTINGS_MAX_FRAME_SIZE */

#define H2_SETTINGS_HEADER_TABLE_SIZE 1
#define H2_SETTINGS_INITIAL_WINDOW_SIZE 4

/* What a client sends first (24 bytes, no NUL). */
extern const char h2_client_preface[];
/* An empty SETTINGS frame. */
extern const uint8_t h2_empty_settings[9];

/* A TCP connection to 127.0.0.1:port; fails the test when it cannot connect. */
int h2_connect_loopback(int port);

bool h2_send_all(int fd, const void *data, size_t len);
bool h2_recv_exact(int fd, void *data, size_t len);

/* Reads and drops what the peer sends, for up to timeout_ms; true when it
 * closed the connection (EOF or a reset), false when it is still open (then
 * what was received is said on stderr, to tell a silent peer from a talking one). */
bool h2_wait_for_close(int fd, int timeout_ms);

void h2_put_be32(uint8_t *p, uint32_t value);

/* The 9 bytes that start a frame (len must fit in 24 bits). */
void h2_frame_head(uint8_t head[9], size_t len, uint8_t type, uint8_t flags, uint32_t stream);

/* Appends a whole frame to out (which must have room for 9 + len bytes); returns its size. */
size_t h2_frame_put(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                    size_t len);

bool h2_send_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                   size_t len);

/* An HPACK header block of at most one frame's payload; the hpack_put functions fail the test
 * rather than write past it. */
typedef struct hpack_block {
    uint8_t bytes[H2_FRAME_BYTES];
    size_t len;
} hpack_block;

/* An integer with an N-bit prefix (RFC 7541, 5.1), its first byte's high bits from first. */
void hpack_put_int(hpack_block *b, uint8_t first, unsigned prefix_bits, size_t value);
/* A string literal, not Huffman-coded. */
void hpack_put_string(hpack_block *b, const char *text, size_t len);
/* A header as a literal without indexing, its name a literal too: no dynamic table. */
void hpack_put(hpack_block *b, const char *name, const char *value);
/* A header as a literal with incremental indexing: it enters the peer's dynamic table. */
void hpack_put_indexed_new(hpack_block *b, const char *name, const char *value);

/* The headers of a gRPC request (POST to path, content-type application/grpc, te trailers). */
void hpack_put_grpc_request(hpack_block *b, const char *path);

#endif
