/* Status codes and the error object that every fallible esg_ function fills in.
 *
 * Functions return an esg_status (ESG_OK or a negative code) and, when the
 * caller passes a non-NULL esg_error, a message a person can act on. The codes
 * are mapped once to gRPC status codes at the server edge and to exit codes at
 * the console edge. */
#ifndef ESG_ERROR_H
#define ESG_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Every status once, as libuv's UV_ERRNO_MAP: its name, value and meaning, and the gRPC status
 * code it is answered with at the server edge (ESG_STATUS_MAP(X) calls X(name, value, grpc,
 * meaning) for each; grpc names a GRPC_STATUS_ code without its prefix). The enum, the names
 * and the gRPC mapping are all made from this one list. */
#define ESG_STATUS_MAP(X)                                                                          \
    X(OK, 0, OK, "success")                                                                        \
    X(EINVAL, -1, INVALID_ARGUMENT, "bad input: malformed JSON, wrong type, value out of range")   \
    X(ENOTFOUND, -2, NOT_FOUND, "no such aggregate, method, topic or key")                         \
    X(ECONFLICT, -3, ABORTED, "integrity error: version or tracking record already recorded")      \
    X(ENOMEM, -4, RESOURCE_EXHAUSTED, "an allocation failed")                                      \
    X(EIO, -5, INTERNAL, "the database failed (disk full, I/O error, corrupt file)")               \
    X(ECONFIG, -6, INTERNAL, "the environment configuration is missing or invalid")                \
    X(EUNAVAILABLE, -7, UNAVAILABLE, "a resource is busy or unreachable; retrying may work")       \
    X(EINTERNAL, -8, INTERNAL, "a bug or an unexpected state")                                     \
    X(EUNIMPLEMENTED, -9, UNIMPLEMENTED, "no such method or operation")                            \
    X(ETIMEDOUT, -10, DEADLINE_EXCEEDED, "a deadline passed")                                      \
    X(ECLOSED, -11, INTERNAL, "the object was closed")                                             \
    X(EREMOTE, -12, INTERNAL, "a remote server failed with a status of its own")                   \
    X(EDATA, -13, INTERNAL, "stored data cannot be decoded (another key or format, damage)")

typedef enum esg_status {
#define ESG_STATUS_ENUM(name, value, grpc, meaning) ESG_##name = value,
    ESG_STATUS_MAP(ESG_STATUS_ENUM)
#undef ESG_STATUS_ENUM
} esg_status;

#define ESG_ERROR_MESSAGE_SIZE 512

typedef struct esg_error {
    esg_status status; /* the code last set, ESG_OK when none */
    /* NUL-terminated; a longer message keeps its start and its end (where a message that wraps
     * another puts the cause), cut in the middle with " ... " */
    char message[ESG_ERROR_MESSAGE_SIZE];
} esg_error;

/* Sets err (which may be NULL) to status and a printf-style message, and
 * returns status so that callers can write `return esg_error_set(...)`. The arguments may
 * include err's own message (it is formatted apart first). */
esg_status esg_error_set(esg_error *err, esg_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (may be NULL) to ESG_OK with an empty message. */
void esg_error_clear(esg_error *err);

/* A static name for a status, e.g. "ESG_ENOTFOUND". Never NULL. */
const char *esg_status_name(esg_status status);

#ifdef __cplusplus
}
#endif
#endif
