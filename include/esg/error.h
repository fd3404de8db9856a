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

typedef enum esg_status {
    ESG_OK = 0,
    ESG_EINVAL = -1,         /* bad input: malformed JSON, wrong type, value out of range */
    ESG_ENOTFOUND = -2,      /* no such aggregate, method, topic or key */
    ESG_ECONFLICT = -3,      /* integrity error: version or tracking record already recorded */
    ESG_ENOMEM = -4,         /* an allocation failed */
    ESG_EIO = -5,            /* the database failed (disk full, I/O error, corrupt file) */
    ESG_ECONFIG = -6,        /* the environment configuration is missing or invalid */
    ESG_EUNAVAILABLE = -7,   /* a resource is busy or unreachable; retrying may work */
    ESG_EINTERNAL = -8,      /* a bug or an unexpected state */
    ESG_EUNIMPLEMENTED = -9, /* no such method or operation */
    ESG_ETIMEDOUT = -10,     /* a deadline passed */
    ESG_ECLOSED = -11,       /* the object was closed */
    ESG_EREMOTE = -12,       /* a remote server failed with a status of its own */
    ESG_EDATA = -13          /* stored data cannot be decoded (another key or format, damage) */
} esg_status;

#define ESG_ERROR_MESSAGE_SIZE 512

typedef struct esg_error {
    esg_status status;                    /* the code last set, ESG_OK when none */
    char message[ESG_ERROR_MESSAGE_SIZE]; /* NUL-terminated, truncated if longer */
} esg_error;

/* Sets err (which may be NULL) to status and a printf-style message, and
 * returns status so that callers can write `return esg_error_set(...)`. */
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
