/* The single-threaded runner (Python's SingleThreadedRunner): every
 * application of a system in this process, and followers that pull and
 * process their leaders' new notifications before the writing call returns.
 * One thread at a time; nothing here is locked. */
#include "esg/system.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

typedef struct runner_app {
    esg_local_runner *runner; /* back-pointer: the listener's context is this struct */
    esg_application *app;     /* owned */
    esg_notification_log log; /* reads app in process, for its followers */
    const size_t *followers;  /* indices into runner->apps of those it leads, in edge order */
    size_t n_followers;       /* entries in followers */
    bool is_queued;           /* already waiting in the queue: one pull reads everything new */
} runner_app;

struct esg_local_runner {
    esg_system *system;       /* owned */
    runner_app *apps;         /* owned, one per node, in node order */
    size_t n_apps;            /* nodes of the system */
    size_t *follower_indices; /* owned block that the apps' followers point into */
    /* Leaders whose followers must pull, oldest first: a ring, and since a
     * leader is queued at most once it never holds more than n_apps. */
    size_t *queue;
    size_t queue_head; /* index of the oldest entry */
    size_t queue_len;  /* entries waiting */
    /* Set while the queue is drained: a write made by a follower during the
     * drain only queues its name, so cycles run in a loop, not by recursion. */
    bool is_draining;
    esg_error error; /* the first processing error; status ESG_OK when none */
};

static size_t find_app(const esg_local_runner *runner, const char *name)
{
    for (size_t i = 0; i < runner->n_apps; i++)
        if (strcmp(esg_application_name(runner->apps[i].app), name) == 0)
            return i;
    return SIZE_MAX;
}

/* Keeps the first failure of a follower, naming both ends; later ones are dropped. */
static void keep_error(esg_local_runner *runner, const runner_app *follower,
                       const runner_app *leader, esg_status rc, const esg_error *err)
{
    if (runner->error.status != ESG_OK)
        return;
    esg_error_set(&runner->error, rc, "%s following %s: %s", esg_application_name(follower->app),
                  esg_application_name(leader->app), err->message);
}

static void pull(esg_local_runner *runner, runner_app *follower, runner_app *leader)
{
    esg_error err;
    esg_error_clear(&err);
    esg_status rc = esg_application_pull_and_process(follower->app, &leader->log, NULL, &err);
    if (rc != ESG_OK)
        keep_error(runner, follower, leader, rc, &err);
}

static void enqueue(esg_local_runner *runner, size_t leader)
{
    if (runner->apps[leader].is_queued)
        return;
    runner->apps[leader].is_queued = true;
    runner->queue[(runner->queue_head + runner->queue_len) % runner->n_apps] = leader;
    runner->queue_len++;
}

/* Lets the followers of each queued leader pull, until nothing new was written. */
static void drain(esg_local_runner *runner)
{
    runner->is_draining = true;
    while (runner->queue_len > 0) {
        size_t leader = runner->queue[runner->queue_head];
        runner->queue_head = (runner->queue_head + 1) % runner->n_apps;
        runner->queue_len--;
        /* Cleared before pulling, so that what the followers write (in a
         * cycle, back to this leader) queues it again. */
        runner->apps[leader].is_queued = false;
        runner_app *leader_app = &runner->apps[leader];
        for (size_t f = 0; f < leader_app->n_followers; f++)
            pull(runner, &runner->apps[leader_app->followers[f]], leader_app);
    }
    runner->is_draining = false;
}

/* The recorded listener of every leader: called with the writer's call still
 * on the stack. */
static void on_recorded(void *ctx, esg_application *app, int64_t max_notification_id)
{
    (void)app;
    (void)max_notification_id;
    runner_app *leader = ctx;
    esg_local_runner *runner = leader->runner;
    enqueue(runner, (size_t)(leader - runner->apps));
    if (!runner->is_draining)
        drain(runner);
}

/* Refuses a follower without a policy before anything is opened, as Python's
 * System refuses a follower that is not a Follower class. */
static esg_status check_followers(const esg_system *system, esg_error *err)
{
    size_t n_followers = 0;
    const char *const *followers = esg_system_followers(system, &n_followers);
    for (size_t i = 0; i < n_followers; i++) {
        const esg_application_type *type = esg_system_get_type(system, followers[i]);
        if (!esg_application_type_has_policy(type)) {
            const char *leader = esg_system_follows(system, followers[i], NULL)[0];
            return esg_error_set(err, ESG_EINVAL,
                                 "%s follows %s but is not a process application (no policy)",
                                 followers[i], leader);
        }
    }
    return ESG_OK;
}

/* Points each application at the indices of its followers, in one block. */
static esg_status link_followers(esg_local_runner *runner, esg_error *err)
{
    size_t n_edges = esg_system_n_edges(runner->system);
    runner->follower_indices = esg_calloc(n_edges + 1, sizeof *runner->follower_indices);
    if (runner->follower_indices == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting a system");
    size_t *next = runner->follower_indices;
    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *leader = &runner->apps[i];
        size_t n_leads = 0;
        const char *const *leads =
            esg_system_leads(runner->system, esg_application_name(leader->app), &n_leads);
        leader->followers = next;
        leader->n_followers = n_leads;
        for (size_t f = 0; f < n_leads; f++)
            *next++ = find_app(runner, leads[f]);
    }
    return ESG_OK;
}

esg_status esg_local_runner_start(const esg_system_def *def, const esg_env *env,
                                  esg_local_runner **out, esg_error *err)
{
    esg_local_runner *runner = NULL;
    const char *const *names = NULL;
    esg_status rc = ESG_OK;

    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "esg_local_runner_start needs somewhere to put it");
    *out = NULL;
    runner = esg_calloc(1, sizeof *runner);
    if (runner == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting a system");
        goto out;
    }
    esg_error_clear(&runner->error);
    rc = esg_system_new(def, &runner->system, err);
    if (rc != ESG_OK)
        goto out;
    rc = check_followers(runner->system, err);
    if (rc == ESG_OK)
        rc = esg_system_check_persistence(runner->system, env, NULL, err);
    if (rc != ESG_OK)
        goto out;

    names = esg_system_nodes(runner->system, &runner->n_apps);
    /* +1 so that an empty system still allocates. */
    runner->apps = esg_calloc(runner->n_apps + 1, sizeof *runner->apps);
    runner->queue = esg_calloc(runner->n_apps + 1, sizeof *runner->queue);
    if (runner->apps == NULL || runner->queue == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting a system");
        goto out;
    }
    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *entry = &runner->apps[i];
        entry->runner = runner;
        rc = esg_application_new(esg_system_get_type(runner->system, names[i]), env, &entry->app,
                                 err);
        if (rc != ESG_OK)
            goto out;
        esg_application_local_log(entry->app, &entry->log);
    }
    rc = link_followers(runner, err);
    if (rc != ESG_OK)
        goto out;
    for (size_t i = 0; i < runner->n_apps; i++)
        if (runner->apps[i].n_followers > 0)
            esg_application_set_recorded_listener(runner->apps[i].app, on_recorded,
                                                  &runner->apps[i]);

    /* Catch up with what the leaders wrote while this system was not running.
     * Draining is on, so what the followers write now only queues their names
     * and the drain below carries it on. A failure is kept, as later ones. */
    runner->is_draining = true;
    for (size_t e = 0; e < esg_system_n_edges(runner->system); e++) {
        const char *leader = NULL, *follower = NULL;
        esg_system_edge(runner->system, e, &leader, &follower);
        pull(runner, &runner->apps[find_app(runner, follower)],
             &runner->apps[find_app(runner, leader)]);
    }
    drain(runner);

    *out = runner;
    runner = NULL;
out:
    esg_local_runner_stop(runner);
    return rc;
}

esg_application *esg_local_runner_get(esg_local_runner *runner, const char *name)
{
    if (runner == NULL || name == NULL)
        return NULL;
    size_t i = find_app(runner, name);
    return i == SIZE_MAX ? NULL : runner->apps[i].app;
}

const esg_error *esg_local_runner_error(const esg_local_runner *runner)
{
    return runner->error.status == ESG_OK ? NULL : &runner->error;
}

const esg_system *esg_local_runner_system(const esg_local_runner *runner)
{
    return runner->system;
}

void esg_local_runner_stop(esg_local_runner *runner)
{
    if (runner == NULL)
        return;
    for (size_t i = 0; runner->apps != NULL && i < runner->n_apps; i++)
        esg_application_free(runner->apps[i].app);
    esg_free(runner->apps);
    esg_free(runner->queue);
    esg_free(runner->follower_indices);
    esg_system_free(runner->system);
    esg_free(runner);
}
