/* What replicas of one application on one PostgreSQL database share, each on a session of its
 * own: the lease that lets one replica of a follower process (a session advisory lock, with
 * nudges from the standbys), and the watch by which every replica hears of the others' writes
 * (LISTEN on the channel that each write transaction NOTIFYs, see postgres_recorder.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/int_text.h"
#include "persistence/postgres_internal.h"

/* How soon a watch connects again after failing to. */
#define WATCH_RETRY_MS 1000

/* A session that must notice a lost server within seconds, on both sides: the recorder's
 * parameters with keepalives of about 4 s (ours end a round trip to a server that went away;
 * the server's, set on the session, end the session, and a lease's lock with it, when we are cut
 * off), listening on channel (a name of letters, digits and _: nothing to quote). */
static esg_status session_connect(const postgres_recorder *rec, const char *channel,
                                  pg_connection **out, esg_error *err)
{
    const char *values[N_CONN_PARAMS + 1];
    memcpy(values, rec->conn_values, sizeof values);
    values[PARAM_KEEPALIVES_IDLE] = "2";
    values[PARAM_KEEPALIVES_INTERVAL] = "1";
    values[PARAM_KEEPALIVES_COUNT] = "2";
    values[PARAM_TCP_USER_TIMEOUT] = "4000";
    pg_connection *c = NULL;
    esg_status rc = pgr_connect_with(rec, values, &c, err);
    if (rc == ESG_OK)
        rc = pgr_exec_simple(rec, c->conn,
                             "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; "
                             "SET tcp_keepalives_count = 2",
                             "cannot set a session's keepalives", err);
    if (rc == ESG_OK) {
        char listen_sql[48];
        snprintf(listen_sql, sizeof listen_sql, "LISTEN %s", channel);
        rc = pgr_exec_simple(rec, c->conn, listen_sql, "cannot listen for notifications", err);
    }
    if (rc == ESG_OK) {
        *out = c;
        c = NULL;
    }
    pgr_connection_close(c);
    return rc;
}

/* Takes the notifications libpq has read on conn; counts those not sent with payload skip
 * (NULL: counts them all). */
static size_t take_notifications(PGconn *conn, const char *skip)
{
    size_t n = 0;
    PGnotify *notify;
    while ((notify = PQnotifies(conn)) != NULL) {
        if (skip == NULL || notify->extra == NULL || strcmp(notify->extra, skip) != 0)
            n++;
        PQfreemem(notify);
    }
    return n;
}

/* ---- Leases: a session advisory lock ----------------------------------------------------------
 * Chosen over a lease row with an expiry: the database ends the lock with the session, at once
 * when the holder's process dies (its socket closes), and after the session's TCP keepalives
 * when the holder is cut off; no clock is compared between machines, and no row is written.
 * The same session listens on the lease's channel for nudges. */

typedef struct postgres_lease {
    esg_recorder_lease base;
    char *name;       /* owned, for messages */
    char key[24];     /* the lock's bigint key as text: a hash of the tracking table and name */
    char channel[32]; /* "esg_nudge_<key, hex>": nudges, LISTENed by the session */
    pg_connection *session; /* the lease's own connection, NULL until made or after a loss */
    bool is_held;           /* the lock is held on session */
    bool is_nudged;         /* a nudge arrived since the last esg_recorder_lease_take_nudge */
} postgres_lease;

esg_status pgr_lease_new(esg_recorder *recorder, const char *name, esg_recorder_lease **out,
                         esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    postgres_lease *lease = esg_calloc(1, sizeof *lease);
    if (lease == NULL || (lease->name = esg_strdup(name)) == NULL) {
        esg_free(lease);
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a lease");
    }
    lease->base.recorder = recorder;
    uint64_t key = esg_hash_strings(
        (const char *const[]){"eventsourcing-grpc lease ", rec->tracking_table, " ", name, NULL});
    esg_int_text((int64_t)key, lease->key);
    snprintf(lease->channel, sizeof lease->channel, "esg_nudge_%016llx", (unsigned long long)key);
    *out = &lease->base;
    return ESG_OK;
}

esg_status pgr_lease_refresh(esg_recorder_lease *base, bool *is_held, esg_error *err)
{
    postgres_lease *lease = (postgres_lease *)base;
    const postgres_recorder *rec = (const postgres_recorder *)base->recorder;
    *is_held = false;
    if (lease->session == NULL) {
        lease->is_held = false;
        esg_status rc = session_connect(rec, lease->channel, &lease->session, err);
        if (rc != ESG_OK)
            return rc;
    }
    /* Held: a round trip proves the session, and with it the lock, alive. Not held: try. */
    const char *params[] = {lease->key};
    PGresult *res = lease->is_held ? PQexec(lease->session->conn, "SELECT true")
                                   : PQexecParams(lease->session->conn,
                                                  "SELECT pg_try_advisory_lock($1::bigint)", 1,
                                                  NULL, params, NULL, NULL, 0);
    esg_status rc = ESG_OK;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        lease->is_held = PQgetvalue(res, 0, 0)[0] == 't';
        /* (a replica's own nudges, sent as a standby, count too: harmless, it pulls anyway
         * when it takes the lease) */
        if (take_notifications(lease->session->conn, NULL) > 0)
            lease->is_nudged = true;
    } else {
        /* Whatever failed, the lease is not held and a new session decides: the lock, if it was
         * held, went with this one. */
        bool is_broken = false;
        esg_error why = {0};
        pgr_error(rec, lease->session->conn, res,
                  lease->is_held ? "lost the session holding the lease" : "cannot take the lease",
                  &is_broken, &why);
        rc = esg_error_set(err, ESG_EUNAVAILABLE, "%s (lease of %s)", why.message, lease->name);
        pgr_connection_close(lease->session);
        lease->session = NULL;
        lease->is_held = false;
    }
    PQclear(res);
    *is_held = lease->is_held;
    return rc;
}

esg_status pgr_lease_nudge(esg_recorder_lease *base, esg_error *err)
{
    postgres_lease *lease = (postgres_lease *)base;
    postgres_recorder *rec = (postgres_recorder *)base->recorder;
    char sql[48];
    snprintf(sql, sizeof sql, "NOTIFY %s", lease->channel);
    pg_connection *c = NULL;
    esg_status rc = pgr_pool_borrow(rec, &c, err);
    if (rc != ESG_OK)
        return rc;
    rc = pgr_exec_simple(rec, c->conn, sql, "cannot nudge the lease's holder", err);
    pgr_pool_give_back(rec, c, rc == ESG_EUNAVAILABLE);
    return rc;
}

bool pgr_lease_take_nudge(esg_recorder_lease *base)
{
    postgres_lease *lease = (postgres_lease *)base;
    bool was_nudged = lease->is_nudged;
    lease->is_nudged = false;
    return was_nudged;
}

void pgr_lease_free(esg_recorder_lease *base)
{
    postgres_lease *lease = (postgres_lease *)base;
    pgr_connection_close(lease->session); /* (the lock goes with the session) */
    esg_free(lease->name);
    esg_free(lease);
}

/* ---- Watches: LISTEN on the events table's channel ------------------------------------------- */

typedef struct postgres_watch {
    esg_recorder_watch base;
    pg_connection *session; /* NULL until connected, and after a loss */
    int wake[2];            /* a pipe: a byte written ends a wait (esg_recorder_watch_interrupt) */
    int64_t connect_at_ms;  /* the earliest time to connect again (esg_clock_now_ms) */
} postgres_watch;

esg_status pgr_watch_new(esg_recorder *recorder, esg_recorder_watch **out, esg_error *err)
{
    postgres_watch *watch = esg_calloc(1, sizeof *watch);
    if (watch == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a watch");
    if (pipe(watch->wake) != 0) {
        int e = errno;
        esg_free(watch);
        return esg_error_set(err, ESG_ENOMEM, "cannot make a watch's pipe: %s", strerror(e));
    }
    for (int i = 0; i < 2; i++) {
        fcntl(watch->wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(watch->wake[i], F_SETFL, O_NONBLOCK);
    }
    watch->base.recorder = recorder;
    *out = &watch->base;
    return ESG_OK;
}

/* Waits up to timeout_ms for the session's socket (when connected) or the wake pipe; false when
 * woken, or when poll failed other than by a signal. */
static bool wait_readable(postgres_watch *watch, int timeout_ms, bool *is_readable)
{
    struct pollfd fds[2] = {
        {.fd = watch->wake[0], .events = POLLIN},
        {.fd = watch->session != NULL ? PQsocket(watch->session->conn) : -1, .events = POLLIN},
    };
    *is_readable = false;
    int n = poll(fds, 2, timeout_ms);
    if (n < 0)
        return errno == EINTR;
    if (fds[0].revents != 0) {
        char drained[64];
        while (read(watch->wake[0], drained, sizeof drained) > 0) {
        }
        return false;
    }
    *is_readable = fds[1].revents != 0;
    return true;
}

esg_status pgr_watch_wait(esg_recorder_watch *base, int timeout_ms, bool *has_news, esg_error *err)
{
    postgres_watch *watch = (postgres_watch *)base;
    const postgres_recorder *rec = (const postgres_recorder *)base->recorder;
    bool is_readable = false;
    if (watch->session == NULL) {
        int64_t now = esg_clock_now_ms();
        if (now < watch->connect_at_ms) {
            int64_t wait_ms = watch->connect_at_ms - now;
            wait_readable(watch, wait_ms < timeout_ms ? (int)wait_ms : timeout_ms, &is_readable);
            return ESG_OK;
        }
        watch->connect_at_ms = now + WATCH_RETRY_MS;
        esg_status rc = session_connect(rec, rec->events_channel, &watch->session, err);
        /* Connected again: what was written meanwhile was not heard. */
        *has_news = rc == ESG_OK;
        return rc;
    }
    if (!wait_readable(watch, timeout_ms, &is_readable) || !is_readable)
        return ESG_OK;
    PGconn *conn = watch->session->conn;
    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
        bool is_broken = false;
        esg_status rc = pgr_error(rec, conn, NULL, "lost the session that hears of other writers",
                                  &is_broken, err);
        pgr_connection_close(watch->session);
        watch->session = NULL;
        watch->connect_at_ms = esg_clock_now_ms(); /* once at once, then once a second */
        return rc;
    }
    *has_news = take_notifications(conn, rec->instance) > 0;
    return ESG_OK;
}

void pgr_watch_interrupt(esg_recorder_watch *base)
{
    postgres_watch *watch = (postgres_watch *)base;
    ssize_t written = write(watch->wake[1], "", 1); /* a full pipe already wakes the wait */
    (void)written;
}

void pgr_watch_free(esg_recorder_watch *base)
{
    postgres_watch *watch = (postgres_watch *)base;
    pgr_connection_close(watch->session);
    close(watch->wake[0]);
    close(watch->wake[1]);
    esg_free(watch);
}
