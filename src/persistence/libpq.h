/* libpq, loaded with dlopen when the first PostgreSQL recorder opens (postgres_recorder.c is its
 * only user). Including this header makes every PQ function used below it a call through the
 * loaded table. Internal: not part of the public API. */
#ifndef ESG_LIBPQ_H
#define ESG_LIBPQ_H

#include <libpq-fe.h>

#include "esg/error.h"

/* libpq is loaded when the first PostgreSQL recorder opens, not linked: it brings some twenty
 * libraries (Kerberos, LDAP, GnuTLS, ...) whose loading and initialisers doubled the start-up
 * of a server on the other backends and added 4 MB to its resident memory. Only the header is
 * used at build time; each PQ function below is called through this table. */
#define LIBPQ_SONAME "libpq.so.5"
#define LIBPQ_FUNCTIONS(X)                                                                         \
    X(PQclear)                                                                                     \
    X(PQcmdTuples)                                                                                 \
    X(PQconnectdbParams)                                                                           \
    X(PQconsumeInput)                                                                              \
    X(PQenterPipelineMode)                                                                         \
    X(PQerrorMessage)                                                                              \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQexecPrepared)                                                                              \
    X(PQexitPipelineMode)                                                                          \
    X(PQfinish)                                                                                    \
    X(PQflush)                                                                                     \
    X(PQfreemem)                                                                                   \
    X(PQgetResult)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQnotifies)                                                                                  \
    X(PQntuples)                                                                                   \
    X(PQpipelineSync)                                                                              \
    X(PQprepare)                                                                                   \
    X(PQresultErrorField)                                                                          \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsendPrepare)                                                                               \
    X(PQsendQueryParams)                                                                           \
    X(PQsendQueryPrepared)                                                                         \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQsetnonblocking)                                                                            \
    X(PQsocket)                                                                                    \
    X(PQstatus)                                                                                    \
    X(PQtransactionStatus)

#define LIBPQ_MEMBER(name) __typeof__(&name) name;
typedef struct libpq_api {
    LIBPQ_FUNCTIONS(LIBPQ_MEMBER)
} libpq_api;
#undef LIBPQ_MEMBER

/* The loaded functions, valid once esg_libpq_load has returned ESG_OK. */
extern libpq_api esg_libpq;

/* Loads libpq on first use (once per process, thread-safe); ESG_ECONFIG when it cannot be. */
esg_status esg_libpq_load(esg_error *err);

#ifndef ESG_LIBPQ_NO_REDIRECT /* libpq.c fills the table: it needs the real names */
/* From here on every PQ function is libpq's, through the table. */
#define LIBPQ_REDIRECT(name) esg_libpq.name
#define PQclear LIBPQ_REDIRECT(PQclear)
#define PQcmdTuples LIBPQ_REDIRECT(PQcmdTuples)
#define PQconnectdbParams LIBPQ_REDIRECT(PQconnectdbParams)
#define PQconsumeInput LIBPQ_REDIRECT(PQconsumeInput)
#define PQenterPipelineMode LIBPQ_REDIRECT(PQenterPipelineMode)
#define PQerrorMessage LIBPQ_REDIRECT(PQerrorMessage)
#define PQexec LIBPQ_REDIRECT(PQexec)
#define PQexecParams LIBPQ_REDIRECT(PQexecParams)
#define PQexecPrepared LIBPQ_REDIRECT(PQexecPrepared)
#define PQexitPipelineMode LIBPQ_REDIRECT(PQexitPipelineMode)
#define PQfinish LIBPQ_REDIRECT(PQfinish)
#define PQflush LIBPQ_REDIRECT(PQflush)
#define PQfreemem LIBPQ_REDIRECT(PQfreemem)
#define PQgetResult LIBPQ_REDIRECT(PQgetResult)
#define PQgetisnull LIBPQ_REDIRECT(PQgetisnull)
#define PQgetlength LIBPQ_REDIRECT(PQgetlength)
#define PQgetvalue LIBPQ_REDIRECT(PQgetvalue)
#define PQnotifies LIBPQ_REDIRECT(PQnotifies)
#define PQntuples LIBPQ_REDIRECT(PQntuples)
#define PQpipelineSync LIBPQ_REDIRECT(PQpipelineSync)
#define PQprepare LIBPQ_REDIRECT(PQprepare)
#define PQresultErrorField LIBPQ_REDIRECT(PQresultErrorField)
#define PQresultErrorMessage LIBPQ_REDIRECT(PQresultErrorMessage)
#define PQresultStatus LIBPQ_REDIRECT(PQresultStatus)
#define PQsendPrepare LIBPQ_REDIRECT(PQsendPrepare)
#define PQsendQueryParams LIBPQ_REDIRECT(PQsendQueryParams)
#define PQsendQueryPrepared LIBPQ_REDIRECT(PQsendQueryPrepared)
#define PQsetNoticeProcessor LIBPQ_REDIRECT(PQsetNoticeProcessor)
#define PQsetnonblocking LIBPQ_REDIRECT(PQsetnonblocking)
#define PQsocket LIBPQ_REDIRECT(PQsocket)
#define PQstatus LIBPQ_REDIRECT(PQstatus)
#define PQtransactionStatus LIBPQ_REDIRECT(PQtransactionStatus)
#endif

#endif
