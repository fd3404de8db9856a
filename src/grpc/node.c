/* A node: one application of a system served over gRPC in its role. One
 * subscriber thread per application it follows subscribes to that leader's
 * notifications (eventsourcing_grpc_c.v1.Node/Subscribe) and processes each
 * page pushed; a puller thread pulls and processes the notifications of the
 * applications it follows (at start, every MAX_PULL_INTERVAL, when prompted: a
 * leader without push prompts, or one whose stream ended). One prompter
 * thread per application it leads sends it a Prompt after each write (at most
 * one in flight, one more if more was written meanwhile), unless that follower
 * is subscribed: then the server pushes instead. A follower processes only while
 * it holds its application's lease (esg_recorder_lease: on PostgreSQL one
 * replica of several at a time, on the other backends always): a lease thread
 * takes it, checks it, and stands the node by when another replica has it. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esg/log.h"
#include "esg/runner.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "grpc/client_internal.h"
#include "grpc/server_internal.h"
#include "grpc/target.h"
#include "core/settings.h"
#include "core/alloc.h"

#define DEFAULT_PULL_INTERVAL_MS 10000
#define FIRST_BACKOFF_MS 50
#define MAX_BACKOFF_MS 1000
/* Server workers when the application's recorder is a database. */
/* Pages one pull may read: leaders are pulled in turn, so that one that keeps
 * writing cannot starve the others (a follower of two leaders). */
#define PAGES_PER_TURN 4
/* How often the lease is taken or checked: a standby takes over within about this much after
 * the active replica's process dies (its database session, and so its lock, end at once). */
#define LEASE_REFRESH_MS 250
/* When notification ids became known, kept for a follower's lag in seconds. */
#define LAG_MARKS 32

/* The first moment a follower knew that its leader's log reaches id (from a Prompt that said
 * so, or from a page). */
typedef struct lag_mark {
    int64_t id;
    int64_t known_at_ms; /* monotonic */
} lag_mark;

typedef struct leader_link {
    esg_node *node;     /* back-pointer for the subscriber thread */
    char *name;         /* the leader's application name, owned */
    char *address;      /* its <NAME>_GRPC_SERVER_ADDRESS, owned */
    bool is_balanced;   /* the address names replicas: when one fails, another may answer */
    esg_client *client; /* pulls: connected on first use; owned */
    /* Subscribe: a channel of its own, also connected on first use and owned. Sharing the pulls'
     * would keep the two in step on a leader's replicas: each failed Subscribe is followed by a
     * pull that goes round robin to the next replica, until one answers, so the next Subscribe
     * always went to the replica after that one (a guard whose server is down, for ever). */
    esg_client *push_client;
    bool is_prompted;    /* a pull is wanted (Prompt, start, interval, retry) */
    int64_t retry_at_ms; /* after a failure: not before this (monotonic ms) */
    int64_t backoff_ms;  /* the next wait after a failure */
    bool is_failing;     /* the outage was logged; log again when it ends */
    bool has_answered;   /* a pull has worked: before, not answering is waiting, not failing */
    /* For the metrics (under the node's lock): */
    int64_t position;          /* the last notification processed; -1 before the first pull */
    int64_t known_max;         /* the highest notification id the leader is known to have */
    lag_mark marks[LAG_MARKS]; /* ids above position, oldest first */
    size_t n_marks;
    uint64_t n_prompts; /* Prompts received */
    uint64_t n_pulls;   /* pulls made, and those that failed */
    uint64_t n_pull_errors;
    uint64_t n_processed; /* notifications processed */
    /* Push (under the node's lock): */
    bool is_subscribed;   /* a page came on the current stream */
    bool is_push_refused; /* the leader has no Subscribe (Python's): pull only, until it is
                           * back from an outage (perhaps replaced) */
    uint64_t n_pushed;    /* pages received by push */
    pthread_t subscriber;
    bool has_subscriber; /* subscriber was started */
} leader_link;

typedef struct follower_link {
    esg_node *node;     /* back-pointer for the thread */
    char *name;         /* the follower's application name, owned */
    char *address;      /* its address, owned */
    esg_client *client; /* connected on first use; owned */
    bool has_news;      /* written since the last Prompt was sent */
    bool is_failing;    /* the failure to prompt was logged */
    bool has_answered;  /* a prompt has worked: before, not answering is waiting, not failing */
    uint64_t n_prompts; /* Prompts sent, and those that failed (under the node's lock) */
    uint64_t n_prompt_errors;
    pthread_t thread; /* its prompter */
    bool has_thread;  /* thread was started */
} follower_link;

struct esg_node {
    esg_env *env;             /* owned copy: addresses, GRPC_SSL_*, persistence */
    esg_system *system;       /* owned */
    esg_application *app;     /* owned */
    esg_server *server;       /* owned */
    int64_t pull_interval_ms; /* MAX_PULL_INTERVAL */
    leader_link *leaders;     /* owned, one per application followed */
    size_t n_leaders;
    follower_link *followers; /* owned, one per application led */
    size_t n_followers;
    pthread_t puller; /* pulls from the leaders */
    bool has_puller;
    esg_recorder_lease *lease; /* a follower's: processing needs it held; owned */
    pthread_t lease_thread;    /* takes and checks the lease */
    bool has_lease_thread;
    bool is_active;          /* the lease is held: this replica processes (under the lock) */
    bool has_lease_state;    /* is_active was set by the lease (and said in the log) */
    bool is_lease_failing;   /* the lease's database could not be reached (logged once) */
    bool has_prompt_to_pass; /* a standby was prompted: the lease thread nudges the holder */
    size_t next_leader;      /* where the puller's next scan for a prompted leader starts */
    pthread_mutex_t lock;    /* guards the flags of the links and the fields below */
    pthread_cond_t wake;     /* a prompt, news for a follower, or stop */
    bool is_stopping;
    int64_t max_recorded; /* the highest notification id written here, told in Prompts */
    esg_error error;      /* the first processing error; status ESG_OK when none */
};

/* Waits on the node's condition until woken or until the monotonic time until_ms. */
static void wait_until(esg_node *node, int64_t until_ms)
{
    int64_t wait_ms = until_ms - esg_clock_now_ms();
    if (wait_ms <= 0)
        return;
    struct timespec deadline = esg_clock_deadline(wait_ms);
    pthread_cond_timedwait(&node->wake, &node->lock, &deadline);
}

/* A copy of <APP>_GRPC_SERVER_ADDRESS (the caller frees it) in *out. */
static esg_status address_of(const esg_env *env, const char *app_name, char **out, esg_error *err)
{
    *out = NULL;
    char *key = esg_env_prefixed_key(app_name, "GRPC_SERVER_ADDRESS");
    if (key == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    const char *address = esg_env_get(env, key);
    esg_status rc = ESG_OK;
    if (address == NULL || address[0] == '\0')
        rc = esg_error_set(err, ESG_ECONFIG, "%s is not set: the address of %s", key, app_name);
    else if ((*out = esg_strdup(address)) == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    esg_free(key);
    return rc;
}

/* Publishes connected in *client unless another thread did first (the puller and the subscriber
 * of a leader share one client); returns the one not used, or NULL. */
static esg_client *publish_client(esg_node *node, esg_client **client, esg_client *connected)
{
    pthread_mutex_lock(&node->lock);
    esg_client *unused = *client != NULL ? connected : NULL;
    if (unused == NULL) {
        *client = connected;
        if (node->is_stopping)
            esg_client_close(connected); /* freed by stop */
    }
    pthread_mutex_unlock(&node->lock);
    return unused;
}

/* Opens *client on first use and keeps it through the peer's outages (gRPC reconnects), then
 * reaches the peer: until it has once answered, a Ping that fails at once while it is down. The
 * pointer is published under the lock so that stop can close it (and so cancel a call in flight)
 * from another thread; of two threads opening at once, the first to publish wins. */
static esg_status connect_to(esg_node *node, const char *address, esg_client **client,
                             esg_error *err)
{
    pthread_mutex_lock(&node->lock);
    esg_client *opened = *client;
    pthread_mutex_unlock(&node->lock);
    if (opened == NULL) {
        /* A short deadline per call, because stop waits for calls in flight. */
        esg_client_options options = {
            .env = node->env, .deadline_ms = 1000, .ssl_name = esg_application_name(node->app)};
        esg_client *connected = NULL;
        esg_status rc = cli_open_address(address, &options, &connected, err);
        if (rc != ESG_OK)
            return rc;
        esg_client_free(publish_client(node, client, connected));
        pthread_mutex_lock(&node->lock);
        opened = *client;
        pthread_mutex_unlock(&node->lock);
    }
    return cli_reach(opened, err);
}

static bool is_unreachable(esg_status rc)
{
    return rc == ESG_EUNAVAILABLE || rc == ESG_ETIMEDOUT || rc == ESG_ECLOSED;
}

/* ---- Following ---- */

/* Notes that the leader's log reaches id, known now (lock held). When the marks are full, the
 * newest one is moved up to id: a lag in seconds may then read a little long, never short. */
static void learn_leader_max(leader_link *leader, int64_t id)
{
    if (id <= leader->known_max)
        return;
    leader->known_max = id;
    if (leader->n_marks == LAG_MARKS) {
        leader->marks[LAG_MARKS - 1].id = id;
        return;
    }
    leader->marks[leader->n_marks++] = (lag_mark){id, esg_clock_now_ms()};
}

/* Notes the follower's position (lock held): marks at or below it are done with. */
static void advance_position(leader_link *leader, int64_t position)
{
    if (position <= leader->position)
        return;
    leader->position = position;
    size_t done = 0;
    while (done < leader->n_marks && leader->marks[done].id <= position)
        done++;
    memmove(leader->marks, leader->marks + done, (leader->n_marks - done) * sizeof *leader->marks);
    leader->n_marks -= done;
}

static void on_prompt(void *ctx, const char *leader_name, int64_t leader_notification_id)
{
    esg_node *node = ctx;
    pthread_mutex_lock(&node->lock);
    for (size_t i = 0; i < node->n_leaders; i++) {
        leader_link *leader = &node->leaders[i];
        if (strcmp(leader->name, leader_name) == 0) {
            leader->n_prompts++;
            learn_leader_max(leader, leader_notification_id);
            /* Subscribed: the pushes bring it, also from a replica of the leader other than the
             * one prompting (every replica pushes what the others record): no pull. */
            if (leader->is_subscribed)
                continue;
            leader->is_prompted = true;
            leader->retry_at_ms = 0; /* it is up: no need to wait out a backoff */
            leader->backoff_ms = 0;
        }
    }
    if (node->lease != NULL && !node->is_active)
        node->has_prompt_to_pass = true; /* (a Python leader prompted the shared address) */
    pthread_cond_broadcast(&node->wake);
    pthread_mutex_unlock(&node->lock);
}

/* A leader's log read for one turn: after PAGES_PER_TURN pages it answers an
 * empty page, which ends the pull, and says the turn was cut short. */
typedef struct turn_log {
    esg_notification_log whole;
    int pages_left;
    bool is_cut;
    int64_t first_start;  /* where the first page started: the position + 1; 0 before */
    int64_t highest_read; /* the highest notification id read */
    int64_t known_before; /* the leader's highest id known when the turn began */
} turn_log;

static esg_status select_in_turn(void *ctx, int64_t start, int64_t limit, const char *const *topics,
                                 size_t n_topics, esg_notification_list *out, esg_error *err)
{
    turn_log *turn = ctx;
    if (turn->pages_left == 0) {
        turn->is_cut = true;
        return ESG_OK;
    }
    turn->pages_left--;
    if (turn->first_start == 0)
        turn->first_start = start;
    size_t n_before = out->n_items;
    esg_status rc = turn->whole.select(turn->whole.ctx, start, limit, topics, n_topics, out, err);
    for (size_t i = n_before; rc == ESG_OK && i < out->n_items; i++)
        if (out->items[i].id > turn->highest_read)
            turn->highest_read = out->items[i].id;
    return rc;
}

/* Pulls and processes a leader's new notifications, a turn's worth (called
 * without the lock), reading them through *turn. */
static esg_status pull(esg_node *node, leader_link *leader, turn_log *turn, int64_t *n_processed,
                       esg_error *err)
{
    esg_status rc = connect_to(node, leader->address, &leader->client, err);
    if (rc != ESG_OK)
        return rc;
    esg_client_notification_log(leader->client, leader->name, &turn->whole);
    esg_notification_log log = turn->whole;
    log.select = select_in_turn;
    log.ctx = turn;
    return esg_application_pull_and_process(node->app, &log, n_processed, err);
}

/* What a pull tells the metrics (lock held): where the follower is, and what it now knows of
 * the leader's log. Every page a pull read was processed when it succeeded; one that read to
 * the end also passed every notification known before it began (those of topics the follower
 * does not follow were never sent). */
static void count_pull(leader_link *leader, const turn_log *turn, int64_t n_processed,
                       esg_status rc)
{
    leader->n_pulls++;
    leader->n_processed += (uint64_t)n_processed;
    if (rc != ESG_OK) {
        leader->n_pull_errors++;
        if (turn->first_start > 0)
            advance_position(leader, turn->first_start - 1);
        return;
    }
    learn_leader_max(leader, turn->highest_read);
    int64_t position =
        turn->highest_read > turn->first_start - 1 ? turn->highest_read : turn->first_start - 1;
    if (!turn->is_cut && turn->known_before > position)
        position = turn->known_before;
    advance_position(leader, position);
}

/* After a pull (under the lock): log outages once, back off, keep the first
 * processing error. */
static void after_pull(esg_node *node, leader_link *leader, esg_status rc, const esg_error *err)
{
    const char *name = esg_application_name(node->app);
    if (rc == ESG_OK) {
        if (leader->is_failing)
            esg_log(ESG_LOG_INFO, name, "pulling from %s at %s %s", leader->name, leader->address,
                    leader->has_answered ? "works again" : "works");
        if (leader->is_failing && leader->is_push_refused) {
            leader->is_push_refused = false; /* back from an outage: perhaps it pushes now */
            pthread_cond_broadcast(&node->wake);
        }
        leader->is_failing = false;
        leader->has_answered = true;
        leader->backoff_ms = 0;
        return;
    }
    if (node->is_stopping)
        return;
    if (!leader->is_failing && !leader->has_answered && is_unreachable(rc))
        esg_log(ESG_LOG_INFO, name, "waiting for %s at %s (not answering yet: it may be starting)",
                leader->name, leader->address);
    else if (!leader->is_failing)
        esg_log(ESG_LOG_WARNING, name, "cannot pull from %s at %s (%s: %s); retrying", leader->name,
                leader->address, esg_status_name(rc), err->message);
    leader->is_failing = true;
    if (!is_unreachable(rc) && node->error.status == ESG_OK)
        esg_error_set(&node->error, rc, "%s following %s: %s", name, leader->name, err->message);
    leader->is_prompted = true;
    leader->backoff_ms = leader->backoff_ms ? leader->backoff_ms * 2 : FIRST_BACKOFF_MS;
    int64_t cap = node->pull_interval_ms < MAX_BACKOFF_MS ? node->pull_interval_ms : MAX_BACKOFF_MS;
    if (leader->backoff_ms > cap)
        leader->backoff_ms = cap;
    leader->retry_at_ms = esg_clock_now_ms() + leader->backoff_ms;
}

static void *puller_main(void *arg)
{
    esg_node *node = arg;
    pthread_mutex_lock(&node->lock);
    int64_t next_interval_ms = esg_clock_now_ms() + node->pull_interval_ms;
    while (!node->is_stopping) {
        if (!node->is_active) { /* a standby: prompts wait for the lease */
            pthread_cond_wait(&node->wake, &node->lock);
            continue;
        }
        int64_t now = esg_clock_now_ms();
        if (now >= next_interval_ms) {
            /* The interval: pull from every leader, in case a Prompt was lost. */
            for (size_t i = 0; i < node->n_leaders; i++)
                node->leaders[i].is_prompted = true;
            next_interval_ms = now + node->pull_interval_ms;
        }
        /* Leaders in turn, from the one after the last pulled. */
        leader_link *due = NULL;
        int64_t wake_at = next_interval_ms;
        for (size_t k = 0; k < node->n_leaders && due == NULL; k++) {
            size_t i = (node->next_leader + k) % node->n_leaders;
            leader_link *leader = &node->leaders[i];
            if (!leader->is_prompted)
                continue;
            if (leader->retry_at_ms <= now) {
                due = leader;
                node->next_leader = (i + 1) % node->n_leaders;
            } else if (leader->retry_at_ms < wake_at) {
                wake_at = leader->retry_at_ms;
            }
        }
        if (due == NULL) {
            wait_until(node, wake_at);
            continue;
        }
        due->is_prompted = false;
        turn_log turn = {.pages_left = PAGES_PER_TURN, .known_before = due->known_max};
        pthread_mutex_unlock(&node->lock);
        esg_error err = {0};
        int64_t n_processed = 0;
        esg_status rc = pull(node, due, &turn, &n_processed, &err);
        pthread_mutex_lock(&node->lock);
        if (!node->is_stopping)
            count_pull(due, &turn, n_processed, rc);
        after_pull(node, due, rc, &err);
        if (rc == ESG_OK && turn.is_cut)
            due->is_prompted = true; /* its next turn comes after the others' */
    }
    pthread_mutex_unlock(&node->lock);
    return NULL;
}

/* ---- Push ---- */

/* A page pushed by the leader, read as a log: select hands it over whole, once. */
typedef struct pushed_page {
    esg_notification_list notifications;
} pushed_page;

static esg_status select_pushed(void *ctx, int64_t start, int64_t limit, const char *const *topics,
                                size_t n_topics, esg_notification_list *out, esg_error *err)
{
    (void)start; /* the pull skips what it tracked already */
    (void)limit;
    (void)topics; /* the leader sent only these; the pull filters again */
    (void)n_topics;
    (void)err;
    pushed_page *page = ctx;
    if (out->n_items == 0) {
        esg_notification_list_clear(out);
        *out = page->notifications;
        memset(&page->notifications, 0, sizeof page->notifications);
    }
    return ESG_OK;
}

/* Subscribes to the leader from the follower's tracked position and processes each page pushed,
 * until the stream ends (the leader stops or goes away, the node stops), processing fails
 * (*is_processing_failed then) or the lease is lost (*is_standing_by). */
static esg_status follow_pushes(esg_node *node, leader_link *leader, bool *is_processing_failed,
                                bool *is_standing_by, esg_error *err)
{
    *is_processing_failed = false;
    *is_standing_by = false;
    esg_application *app = node->app;
    const esg_application_type *type = esg_application_get_type(app);
    size_t n_topics = esg_topics_count(type->follow_topics);
    int64_t tracked = 0;
    esg_subscription *subscription = NULL;
    esg_status rc = connect_to(node, leader->address, &leader->push_client, err);
    if (rc == ESG_OK)
        rc = esg_recorder_max_tracking_id(esg_application_recorder(app), leader->name, &tracked,
                                          err);
    if (rc == ESG_OK)
        rc = esg_client_subscribe(leader->push_client, esg_application_name(app), tracked + 1,
                                  type->follow_topics, n_topics, &subscription, err);
    while (rc == ESG_OK) {
        pushed_page page = {{0}};
        int64_t up_to = 0, n_processed = 0;
        uint64_t n_pages = 0;
        rc = esg_subscription_next(subscription, -1, &page.notifications, &up_to, err);
        /* The pages already here join it, for one transaction: a follower that fell behind
         * catches up in big steps, not a page (and a commit) at a time. */
        esg_status drained = ESG_OK;
        esg_error drain_err = {0};
        for (n_pages = rc == ESG_OK; rc == ESG_OK && drained == ESG_OK &&
                                     page.notifications.n_items < ESG_GRPC_MAX_PAGE_NOTIFICATIONS;
             n_pages += drained == ESG_OK)
            drained =
                esg_subscription_next(subscription, 0, &page.notifications, &up_to, &drain_err);
        pthread_mutex_lock(&node->lock);
        if (n_pages > 0) {
            leader->is_subscribed = true;
            leader->n_pushed += n_pages;
            learn_leader_max(leader, up_to);
        }
        bool is_active = node->is_active;
        pthread_mutex_unlock(&node->lock);
        if (!is_active) { /* another replica processes now: its page, not ours */
            esg_notification_list_clear(&page.notifications);
            *is_standing_by = true;
            break;
        }
        if (n_pages == 0) {
            esg_notification_list_clear(&page.notifications);
            break;
        }
        esg_notification_log log = {.leader_name = leader->name,
                                    .page_size = (int64_t)page.notifications.n_items + 1,
                                    .select = select_pushed,
                                    .ctx = &page};
        rc = esg_application_pull_and_process(app, &log, &n_processed, err);
        *is_processing_failed = rc != ESG_OK;
        esg_notification_list_clear(&page.notifications);
        pthread_mutex_lock(&node->lock);
        leader->n_processed += (uint64_t)n_processed;
        if (rc == ESG_OK)
            advance_position(leader, up_to);
        pthread_mutex_unlock(&node->lock);
        if (rc == ESG_OK && drained != ESG_OK && drained != ESG_ETIMEDOUT) {
            rc = drained; /* the stream ended after the pages processed */
            *err = drain_err;
        }
    }
    esg_subscription_free(subscription);
    return rc;
}

/* After a stream ended (lock held): says why where it matters, keeps a processing error as the
 * node's, and waits before the next try. A leader that stopped or went away has nothing to
 * push: the next try waits for a sign of life, a Prompt (a leader prompts the followers not
 * subscribed to it), or for MAX_PULL_INTERVAL; trying meanwhile would only keep the channel in
 * reconnection backoff, and delay the reconnection once it is back. Not so for a leader's
 * replicas: the next try goes to another (round robin), which may be up, or behind a guard
 * whose own server is down (nghttpx answers 502, UNAVAILABLE). Otherwise what the stream may
 * have missed is pulled at once, and the subscription tried again after a backoff. */
static void after_push(esg_node *node, leader_link *leader, esg_status rc,
                       bool is_processing_failed, const esg_error *err, int64_t *backoff_ms)
{
    const char *name = esg_application_name(node->app);
    bool was_subscribed = leader->is_subscribed;
    leader->is_subscribed = false;
    if (rc == ESG_EUNIMPLEMENTED) {
        esg_log(ESG_LOG_INFO, name,
                "%s at %s does not push (not a server of this library): pulling when prompted",
                leader->name, leader->address);
        leader->is_push_refused = true;
    } else if (is_processing_failed && node->error.status == ESG_OK) {
        esg_error_set(&node->error, rc, "%s following %s: %s", name, leader->name, err->message);
    }
    if (was_subscribed)
        esg_log(ESG_LOG_DEBUG, name, "the push from %s ended (%s: %s)", leader->name,
                esg_status_name(rc), err->message);
    bool is_gone = !leader->is_balanced && (rc == ESG_ECLOSED || is_unreachable(rc));
    if (!is_gone) {
        leader->is_prompted = true;
        leader->retry_at_ms = 0;
        pthread_cond_broadcast(&node->wake);
    }
    *backoff_ms = was_subscribed || *backoff_ms == 0 ? FIRST_BACKOFF_MS : *backoff_ms * 2;
    if (*backoff_ms > MAX_BACKOFF_MS)
        *backoff_ms = MAX_BACKOFF_MS;
    uint64_t prompts_seen = leader->n_prompts;
    int64_t until = esg_clock_now_ms() + (is_gone ? node->pull_interval_ms : *backoff_ms);
    while (!node->is_stopping && esg_clock_now_ms() < until &&
           (!is_gone || leader->n_prompts == prompts_seen))
        wait_until(node, until);
}

static void *subscriber_main(void *arg)
{
    leader_link *leader = arg;
    int64_t backoff_ms = 0;
    pthread_mutex_lock(&leader->node->lock);
    for (;;) {
        esg_node *node = leader->node;
        while ((leader->is_push_refused || !node->is_active) && !node->is_stopping)
            pthread_cond_wait(&node->wake, &node->lock);
        if (node->is_stopping)
            break;
        pthread_mutex_unlock(&node->lock);
        esg_error err = {0};
        bool is_processing_failed = false, is_standing_by = false;
        esg_status rc = follow_pushes(node, leader, &is_processing_failed, &is_standing_by, &err);
        pthread_mutex_lock(&node->lock);
        if (node->is_stopping)
            break;
        if (is_standing_by)
            leader->is_subscribed = false; /* subscribed again once the lease is back */
        else
            after_push(node, leader, rc, is_processing_failed, &err, &backoff_ms);
    }
    pthread_mutex_unlock(&leader->node->lock);
    return NULL;
}

/* ---- The lease ---- */

/* Follows what the lease says (lock held): processing starts when it is taken, with a pull from
 * every leader (what another replica left is there), and stops when it is lost. */
static void set_active(esg_node *node, bool is_held, esg_status rc, const esg_error *err)
{
    const char *name = esg_application_name(node->app);
    if (rc != ESG_OK && !node->is_lease_failing)
        esg_log(ESG_LOG_WARNING, name, "the lease: %s: %s", esg_status_name(rc), err->message);
    node->is_lease_failing = rc != ESG_OK;
    if (is_held == node->is_active && node->has_lease_state)
        return;
    node->is_active = is_held;
    node->has_lease_state = true;
    if (is_held) {
        esg_log(ESG_LOG_INFO, name, "processing: this replica holds the lease");
        for (size_t i = 0; i < node->n_leaders; i++) {
            node->leaders[i].is_prompted = true;
            node->leaders[i].retry_at_ms = 0;
        }
    } else if (rc == ESG_OK) {
        esg_log(ESG_LOG_INFO, name, "standing by: another replica holds the lease");
    } else { /* (the warning above says why) */
        esg_log(ESG_LOG_INFO, name, "standing by until the lease can be checked again");
    }
    pthread_cond_broadcast(&node->wake);
}

/* A standby passes the Prompts it receives on to the holder (a nudge), which pulls from every
 * leader not subscribed to when it takes the nudge at its next refresh (the others push what
 * any of their replicas records). Not when the lease could not be checked
 * (is_checked false): the database is out of reach, and the holder pulls at its interval. */
static void pass_prompts_on(esg_node *node, bool is_checked, bool is_held)
{
    if (!is_checked) {
        node->has_prompt_to_pass = false;
        return;
    }
    if (is_held) {
        if (!esg_recorder_lease_take_nudge(node->lease))
            return;
        size_t n_pulled = 0;
        for (size_t i = 0; i < node->n_leaders; i++)
            if (!node->leaders[i].is_subscribed) { /* (as on_prompt) */
                node->leaders[i].is_prompted = true;
                n_pulled++;
            }
        esg_log(ESG_LOG_DEBUG, esg_application_name(node->app),
                "a Prompt passed on by a standby: pulling from the %zu leaders not pushing here",
                n_pulled);
        pthread_cond_broadcast(&node->wake);
        return;
    }
    if (!node->has_prompt_to_pass)
        return;
    node->has_prompt_to_pass = false;
    pthread_mutex_unlock(&node->lock);
    esg_error err = {0};
    esg_status rc = esg_recorder_lease_nudge(node->lease, &err);
    if (rc != ESG_OK) /* (the holder pulls at MAX_PULL_INTERVAL anyway) */
        esg_log(ESG_LOG_WARNING, esg_application_name(node->app),
                "cannot pass a prompt on to the replica holding the lease: %s: %s",
                esg_status_name(rc), err.message);
    pthread_mutex_lock(&node->lock);
}

static void *lease_main(void *arg)
{
    esg_node *node = arg;
    pthread_mutex_lock(&node->lock);
    while (!node->is_stopping) {
        /* (the node's condition wakes at every prompt and write: sleep the interval out, unless
         * a prompt is to be passed on) */
        int64_t next_ms = esg_clock_now_ms() + LEASE_REFRESH_MS;
        while (!node->is_stopping && !node->has_prompt_to_pass && esg_clock_now_ms() < next_ms)
            wait_until(node, next_ms);
        if (node->is_stopping)
            break;
        pthread_mutex_unlock(&node->lock);
        bool is_held = false;
        esg_error err = {0};
        esg_status rc = esg_recorder_lease_refresh(node->lease, &is_held, &err);
        pthread_mutex_lock(&node->lock);
        set_active(node, is_held, rc, &err);
        pass_prompts_on(node, rc == ESG_OK, is_held);
    }
    pthread_mutex_unlock(&node->lock);
    return NULL;
}

/* A follower's lease, first taken (or not) before its threads start: a single replica, or one
 * on a backend of one process, processes from the start as before. */
static esg_status start_lease(esg_node *node, esg_error *err)
{
    esg_recorder_lease *lease = NULL;
    esg_status rc = esg_recorder_lease_new(esg_application_recorder(node->app),
                                           esg_application_name(node->app), &lease, err);
    if (rc != ESG_OK)
        return rc;
    bool is_shared = esg_recorder_lease_is_shared(lease), is_held = !is_shared;
    esg_error lease_err = {0};
    esg_status refreshed =
        is_shared ? esg_recorder_lease_refresh(lease, &is_held, &lease_err) : ESG_OK;
    pthread_mutex_lock(&node->lock);
    node->lease = lease; /* (under the lock: the server's workers may be prompting already) */
    if (is_shared)
        set_active(node, is_held, refreshed, &lease_err);
    else
        node->is_active = true; /* one process's database: no replicas to tell about */
    pthread_mutex_unlock(&node->lock);
    if (!is_shared)
        return ESG_OK;
    if (pthread_create(&node->lease_thread, NULL, lease_main, node) != 0)
        return esg_error_set(err, ESG_ENOMEM, "cannot start the lease thread");
    node->has_lease_thread = true;
    return ESG_OK;
}

/* ---- Leading ---- */

static void on_recorded(void *ctx, esg_application *app, int64_t max_notification_id)
{
    (void)app;
    esg_node *node = ctx;
    pthread_mutex_lock(&node->lock);
    if (max_notification_id > node->max_recorded)
        node->max_recorded = max_notification_id; /* writers may finish out of order */
    for (size_t i = 0; i < node->n_followers; i++)
        node->followers[i].has_news = true;
    if (node->n_followers > 0)
        pthread_cond_broadcast(&node->wake);
    pthread_mutex_unlock(&node->lock);
}

static void *prompter_main(void *arg)
{
    follower_link *follower = arg;
    esg_node *node = follower->node;
    const char *name = esg_application_name(node->app);
    int64_t backoff_ms = 0;
    pthread_mutex_lock(&node->lock);
    while (!node->is_stopping) {
        if (!follower->has_news) {
            pthread_cond_wait(&node->wake, &node->lock);
            continue;
        }
        follower->has_news = false;
        int64_t max_recorded = node->max_recorded;
        pthread_mutex_unlock(&node->lock);
        if (srv_is_subscribed(node->server, follower->name)) {
            pthread_mutex_lock(&node->lock); /* pushed to it: no Prompt needed */
            continue;
        }
        esg_error err = {0};
        esg_status rc = connect_to(node, follower->address, &follower->client, &err);
        if (rc == ESG_OK)
            rc = esg_client_prompt_after(follower->client, name, max_recorded, &err);
        pthread_mutex_lock(&node->lock);
        if (!node->is_stopping) {
            follower->n_prompts++;
            follower->n_prompt_errors += rc != ESG_OK;
        }
        if (rc == ESG_OK) {
            if (follower->is_failing)
                esg_log(ESG_LOG_INFO, name, "prompting %s at %s %s", follower->name,
                        follower->address, follower->has_answered ? "works again" : "works");
            follower->is_failing = false;
            follower->has_answered = true;
            backoff_ms = 0;
            continue;
        }
        if (node->is_stopping)
            break;
        if (!follower->is_failing && !follower->has_answered && is_unreachable(rc))
            esg_log(ESG_LOG_INFO, name,
                    "waiting for %s at %s (not answering yet: it may be starting)", follower->name,
                    follower->address);
        else if (!follower->is_failing)
            esg_log(ESG_LOG_WARNING, name, "cannot prompt %s at %s (%s: %s); retrying",
                    follower->name, follower->address, esg_status_name(rc), err.message);
        follower->is_failing = true;
        /* Try again after a backoff: the follower may be starting. It also
         * pulls by itself at start and every MAX_PULL_INTERVAL. */
        follower->has_news = true;
        backoff_ms = backoff_ms ? backoff_ms * 2 : FIRST_BACKOFF_MS;
        if (backoff_ms > MAX_BACKOFF_MS)
            backoff_ms = MAX_BACKOFF_MS;
        int64_t until = esg_clock_now_ms() + backoff_ms;
        while (!node->is_stopping && esg_clock_now_ms() < until)
            wait_until(node, until);
    }
    pthread_mutex_unlock(&node->lock);
    return NULL;
}

/* ---- Metrics ---- */

/* A leader's value for a family, or a negative number for none yet (lock held). */
static double position_of(const leader_link *leader, int64_t now_ms)
{
    (void)now_ms;
    return (double)leader->position;
}

static double lag_notifications_of(const leader_link *leader, int64_t now_ms)
{
    (void)now_ms;
    if (leader->position < 0)
        return -1;
    return leader->known_max > leader->position ? (double)(leader->known_max - leader->position)
                                                : 0;
}

static double subscribed_of(const leader_link *leader, int64_t now_ms)
{
    (void)now_ms;
    return leader->is_subscribed ? 1 : 0;
}

static double lag_seconds_of(const leader_link *leader, int64_t now_ms)
{
    if (leader->position < 0)
        return -1;
    return leader->n_marks > 0 ? (double)(now_ms - leader->marks[0].known_at_ms) / 1000.0 : 0;
}

/* A family of a node's links: a gauge computed by value_of, or a counter of the link's read at
 * counter_offset (a uint64_t). */
typedef struct link_family {
    const char *name;
    const char *type;
    const char *help;
    double (*value_of)(const leader_link *leader, int64_t now_ms); /* leaders' gauges only */
    size_t counter_offset;
} link_family;

static const link_family leader_families[] = {
    {"eventsourcing_follower_position", "gauge",
     "The leader's last notification id this follower has processed.", position_of, 0},
    {"eventsourcing_follower_lag_notifications", "gauge",
     "Notifications the leader is known to have that this follower has not processed.",
     lag_notifications_of, 0},
    {"eventsourcing_follower_lag_seconds", "gauge",
     "Seconds since the follower learnt of the oldest notification it has not processed (0 when "
     "caught up).",
     lag_seconds_of, 0},
    {"eventsourcing_follower_prompts_received_total", "counter",
     "Prompts received from the leader.", NULL, offsetof(leader_link, n_prompts)},
    {"eventsourcing_follower_pulls_total", "counter",
     "Pulls of the leader's notifications (each up to a few pages).", NULL,
     offsetof(leader_link, n_pulls)},
    {"eventsourcing_follower_pull_errors_total", "counter",
     "Pulls of the leader's notifications that failed.", NULL,
     offsetof(leader_link, n_pull_errors)},
    {"eventsourcing_follower_notifications_processed_total", "counter",
     "The leader's notifications processed by this follower's policy.", NULL,
     offsetof(leader_link, n_processed)},
    {"eventsourcing_follower_subscribed", "gauge",
     "1 while the leader pushes its notifications to this follower (Subscribe), else 0.",
     subscribed_of, 0},
    {"eventsourcing_follower_pages_pushed_total", "counter",
     "Pages of the leader's notifications pushed to this follower.", NULL,
     offsetof(leader_link, n_pushed)},
};

static const link_family follower_families[] = {
    {.name = "eventsourcing_leader_prompts_sent_total",
     .type = "counter",
     .help = "Prompts sent to the follower.",
     .counter_offset = offsetof(follower_link, n_prompts)},
    {.name = "eventsourcing_leader_prompt_errors_total",
     .type = "counter",
     .help = "Prompts to the follower that failed (and are retried).",
     .counter_offset = offsetof(follower_link, n_prompt_errors)},
};

/* Writes families (n of them) with a sample per link: n_links links of link_size bytes from
 * links, each named by the string at name_offset, labelled role="name" (lock held). */
static void write_link_families(esg_buffer *out, const link_family *families, size_t n,
                                const char *app_name, const char *role, const void *links,
                                size_t n_links, size_t link_size, size_t name_offset)
{
    int64_t now_ms = esg_clock_now_ms();
    for (size_t f = 0; n_links > 0 && f < n; f++) {
        esg_metrics_family(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < n_links; i++) {
            const char *link = (const char *)links + i * link_size;
            const char *link_name;
            memcpy(&link_name, link + name_offset, sizeof link_name);
            double value;
            if (families[f].value_of != NULL) {
                value = families[f].value_of((const leader_link *)link, now_ms);
            } else {
                uint64_t count;
                memcpy(&count, link + families[f].counter_offset, sizeof count);
                value = (double)count;
            }
            const char *labels[] = {"application", app_name, role, link_name, NULL};
            if (value >= 0) /* a gauge not known yet is left out */
                esg_metrics_sample(out, families[f].name, labels, value);
        }
    }
}

/* The families of the leaders a node follows and of the followers it prompts. */
static void write_node_metrics(void *ctx, esg_buffer *out)
{
    esg_node *node = ctx;
    const char *app_name = esg_application_name(node->app);
    pthread_mutex_lock(&node->lock);
    write_link_families(out, leader_families, sizeof leader_families / sizeof *leader_families,
                        app_name, "leader", node->leaders, node->n_leaders, sizeof(leader_link),
                        offsetof(leader_link, name));
    write_link_families(out, follower_families,
                        sizeof follower_families / sizeof *follower_families, app_name, "follower",
                        node->followers, node->n_followers, sizeof(follower_link),
                        offsetof(follower_link, name));
    if (node->n_leaders > 0) {
        esg_metrics_family(out, "eventsourcing_follower_active", "gauge",
                           "1 while this replica holds the application's lease and processes, 0 "
                           "while another does (PostgreSQL); always 1 on the other backends.");
        const char *labels[] = {"application", app_name, NULL};
        esg_metrics_sample(out, "eventsourcing_follower_active", labels, node->is_active);
    }
    pthread_mutex_unlock(&node->lock);
}

/* ---- Positions ---- */

static esg_status node_leader_positions(void *ctx, esg_leader_positions *out, esg_error *err)
{
    return esg_node_leader_positions(ctx, out, err);
}

esg_status esg_node_leader_positions(esg_node *node, esg_leader_positions *out, esg_error *err)
{
    memset(out, 0, sizeof *out);
    out->application_name = esg_strdup(esg_application_name(node->app));
    out->items = esg_calloc(node->n_leaders ? node->n_leaders : 1, sizeof *out->items);
    if (out->application_name == NULL || out->items == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    int64_t now_ms = esg_clock_now_ms();
    pthread_mutex_lock(&node->lock);
    for (size_t i = 0; i < node->n_leaders; i++) {
        const leader_link *leader = &node->leaders[i];
        esg_leader_position *to = &out->items[i];
        to->leader_name = esg_strdup(leader->name);
        if (to->leader_name == NULL)
            break;
        out->n_items++;
        to->position = leader->position;
        to->leader_max = leader->known_max;
        to->lag_notifications = (int64_t)lag_notifications_of(leader, now_ms);
        to->lag_seconds = lag_seconds_of(leader, now_ms);
        to->prompts_received = leader->n_prompts;
        to->pulls = leader->n_pulls;
        to->pull_errors = leader->n_pull_errors;
        to->notifications_processed = leader->n_processed;
        to->is_subscribed = leader->is_subscribed;
        to->pages_pushed = leader->n_pushed;
    }
    pthread_mutex_unlock(&node->lock);
    return out->n_items == node->n_leaders ? ESG_OK
                                           : esg_error_set(err, ESG_ENOMEM, "out of memory");
}

/* ---- Start and stop ---- */

static esg_status parse_interval(const esg_env *env, const char *app_name, int64_t *out,
                                 esg_error *err)
{
    double seconds = 0;
    esg_status rc = esg_setting_seconds(env, app_name, "MAX_PULL_INTERVAL",
                                        DEFAULT_PULL_INTERVAL_MS / 1000.0, 86400, &seconds, err);
    if (rc == ESG_OK && !(seconds > 0))
        rc = esg_error_set(err, ESG_ECONFIG, "MAX_PULL_INTERVAL must be a number of seconds > 0");
    if (rc != ESG_OK)
        return rc;
    *out = (int64_t)(seconds * 1000);
    if (*out < 1)
        *out = 1;
    return ESG_OK;
}

static esg_status make_links(esg_node *node, const char *app_name, esg_error *err)
{
    size_t n_follows = 0, n_leads = 0;
    const char *const *follows = esg_system_follows(node->system, app_name, &n_follows);
    const char *const *leads = esg_system_leads(node->system, app_name, &n_leads);
    node->leaders = esg_calloc(n_follows ? n_follows : 1, sizeof *node->leaders);
    node->followers = esg_calloc(n_leads ? n_leads : 1, sizeof *node->followers);
    if (node->leaders == NULL || node->followers == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting node %s", app_name);
    for (size_t i = 0; i < n_follows; i++) {
        leader_link *leader = &node->leaders[node->n_leaders++];
        leader->node = node;
        leader->is_prompted = true; /* catch up at start */
        leader->position = -1;
        leader->name = esg_strdup(follows[i]);
        if (leader->name == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory starting node %s", app_name);
        esg_status rc = address_of(node->env, follows[i], &leader->address, err);
        if (rc != ESG_OK)
            return rc;
        leader->is_balanced = esg_target_is_balanced(leader->address);
    }
    for (size_t i = 0; i < n_leads; i++) {
        follower_link *follower = &node->followers[node->n_followers++];
        follower->node = node;
        follower->name = esg_strdup(leads[i]);
        if (follower->name == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory starting node %s", app_name);
        esg_status rc = address_of(node->env, leads[i], &follower->address, err);
        if (rc != ESG_OK)
            return rc;
    }
    return ESG_OK;
}

esg_status esg_node_start(const esg_system_def *def, const char *app_name, const esg_env *env,
                          esg_node **out, esg_error *err)
{
    *out = NULL;
    esg_node *node = esg_calloc(1, sizeof *node);
    if (node == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting node %s", app_name);
    pthread_mutex_init(&node->lock, NULL);
    esg_cond_init(&node->wake);
    node->env = env ? esg_env_copy(env) : esg_env_from_process();
    esg_status rc = node->env ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory");
    if (rc == ESG_OK)
        rc = esg_system_new(def, &node->system, err);
    const esg_application_type *type = NULL;
    if (rc == ESG_OK && (type = esg_system_get_type(node->system, app_name)) == NULL)
        rc = esg_error_set(err, ESG_ECONFIG, "%s is not an application of system %s", app_name,
                           def->topic ? def->topic : "(no topic)");
    if (rc == ESG_OK)
        rc = parse_interval(node->env, app_name, &node->pull_interval_ms, err);
    if (rc == ESG_OK)
        rc = make_links(node, app_name, err);
    if (rc == ESG_OK)
        rc = esg_system_check_persistence(node->system, node->env, app_name, err);
    char *address = NULL;
    /* A replica listens on GRPC_LISTEN_ADDRESS when <APP>_GRPC_SERVER_ADDRESS names them all. */
    const char *listen_address = esg_env_lookup(node->env, app_name, "GRPC_LISTEN_ADDRESS");
    if (rc == ESG_OK && listen_address != NULL && listen_address[0] != '\0')
        rc = (address = esg_strdup(listen_address)) != NULL
                 ? ESG_OK
                 : esg_error_set(err, ESG_ENOMEM, "out of memory");
    else if (rc == ESG_OK)
        rc = address_of(node->env, app_name, &address, err);
    if (rc == ESG_OK)
        rc = esg_application_new(type, node->env, &node->app, err);
    if (rc == ESG_OK && node->n_leaders > 0 && !esg_application_type_has_policy(type))
        rc = esg_error_set(err, ESG_ECONFIG, "%s follows others but has no policy", app_name);
    if (rc == ESG_OK) {
        const char **leader_names =
            esg_calloc(node->n_leaders ? node->n_leaders : 1, sizeof *leader_names);
        for (size_t i = 0; leader_names != NULL && i < node->n_leaders; i++)
            leader_names[i] = node->leaders[i].name;
        esg_server_options options = {
            .address = address,
            .env = node->env,
            .leader_names = leader_names,
            .n_leader_names = node->n_leaders,
            .on_prompt = on_prompt,
            .on_prompt_ctx = node,
            .health_address = esg_env_lookup(node->env, app_name, "GRPC_HEALTH_SERVER_ADDRESS"),
            .metrics_address = esg_env_lookup(node->env, app_name, "METRICS_SERVER_ADDRESS")};
        const srv_node_hooks hooks = {.write_metrics = write_node_metrics,
                                      .leader_positions = node_leader_positions,
                                      .on_recorded = on_recorded,
                                      .ctx = node};
        rc = leader_names ? srv_start(node->app, &options, &hooks, &node->server, err)
                          : esg_error_set(err, ESG_ENOMEM, "out of memory");
        esg_free(leader_names);
    }
    esg_free(address);
    for (size_t i = 0; rc == ESG_OK && i < node->n_followers; i++) {
        if (pthread_create(&node->followers[i].thread, NULL, prompter_main, &node->followers[i]) !=
            0)
            rc = esg_error_set(err, ESG_ENOMEM, "cannot start a prompter thread");
        else
            node->followers[i].has_thread = true;
    }
    if (rc == ESG_OK && node->n_leaders > 0)
        rc = start_lease(node, err);
    for (size_t i = 0; rc == ESG_OK && i < node->n_leaders; i++) {
        leader_link *leader = &node->leaders[i];
        if (pthread_create(&leader->subscriber, NULL, subscriber_main, leader) != 0)
            rc = esg_error_set(err, ESG_ENOMEM, "cannot start a subscriber thread");
        else
            leader->has_subscriber = true;
    }
    if (rc == ESG_OK && node->n_leaders > 0) {
        if (pthread_create(&node->puller, NULL, puller_main, node) != 0)
            rc = esg_error_set(err, ESG_ENOMEM, "cannot start the puller thread");
        else
            node->has_puller = true;
    }
    if (rc != ESG_OK) {
        esg_node_stop(node);
        return rc;
    }
    *out = node;
    return ESG_OK;
}

esg_application *esg_node_application(esg_node *node)
{
    return node->app;
}

esg_server *esg_node_server(esg_node *node)
{
    return node->server;
}

int esg_node_port(const esg_node *node)
{
    return node->server ? esg_server_port(node->server) : 0;
}

bool esg_node_has_errored(esg_node *node, esg_error *err)
{
    pthread_mutex_lock(&node->lock);
    bool has_errored = node->error.status != ESG_OK;
    if (has_errored && err != NULL)
        *err = node->error;
    pthread_mutex_unlock(&node->lock);
    return has_errored;
}

void esg_node_stop(esg_node *node)
{
    if (node == NULL)
        return;
    /* Closing the clients cancels calls in flight, so the threads return at once. */
    pthread_mutex_lock(&node->lock);
    node->is_stopping = true;
    pthread_cond_broadcast(&node->wake);
    for (size_t i = 0; i < node->n_leaders; i++) {
        if (node->leaders[i].client != NULL)
            esg_client_close(node->leaders[i].client);
        if (node->leaders[i].push_client != NULL)
            esg_client_close(node->leaders[i].push_client);
    }
    for (size_t i = 0; i < node->n_followers; i++)
        if (node->followers[i].client != NULL)
            esg_client_close(node->followers[i].client);
    pthread_mutex_unlock(&node->lock);
    if (node->has_puller)
        pthread_join(node->puller, NULL);
    if (node->has_lease_thread)
        pthread_join(node->lease_thread, NULL);
    for (size_t i = 0; i < node->n_leaders; i++)
        if (node->leaders[i].has_subscriber)
            pthread_join(node->leaders[i].subscriber, NULL);
    for (size_t i = 0; i < node->n_followers; i++)
        if (node->followers[i].has_thread)
            pthread_join(node->followers[i].thread, NULL);
    /* No more writes: the server goes (and lets go of the application's listener), then the
     * application. */
    esg_server_stop(node->server);
    esg_recorder_lease_free(node->lease); /* (gives it up: a standby takes over at once) */
    esg_application_free(node->app);
    for (size_t i = 0; i < node->n_leaders; i++) {
        esg_client_free(node->leaders[i].client);
        esg_client_free(node->leaders[i].push_client);
        esg_free(node->leaders[i].name);
        esg_free(node->leaders[i].address);
    }
    for (size_t i = 0; i < node->n_followers; i++) {
        esg_client_free(node->followers[i].client);
        esg_free(node->followers[i].name);
        esg_free(node->followers[i].address);
    }
    esg_free(node->leaders);
    esg_free(node->followers);
    esg_system_free(node->system);
    esg_env_free(node->env);
    pthread_cond_destroy(&node->wake);
    pthread_mutex_destroy(&node->lock);
    esg_free(node);
}
