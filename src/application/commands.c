/* Commands run once per idempotency key: a call with a key is looked up first and answered with
 * the reply recorded by the first call with that key; otherwise the method runs and its events
 * are recorded with the key and its reply in one write (recorder.h's command records). Methods
 * of a type's methods table save on their own: during such a call their saves are collected and
 * made at its end, so that they too are one write with the key. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "application/application_internal.h"
#include "core/alloc.h"
#include "core/grow.h"
#include "core/settings.h"
#include "esg/log.h"

#define DEFAULT_TTL_S 3600.0
#define MAX_TTL_S (366.0 * 24 * 3600)
#define MAX_SWEEP_INTERVAL_US (60 * 1000000LL) /* expired keys are deleted at most this often */

esg_status app_commands_open(esg_application *app, const esg_env *env, esg_error *err)
{
    double ttl_s = 0;
    atomic_init(&app->next_key_sweep_us, 0);
    atomic_init(&app->n_command_repeats, 0);
    esg_status rc = esg_setting_seconds(env, app->type->name, "IDEMPOTENCY_KEY_TTL", DEFAULT_TTL_S,
                                        MAX_TTL_S, &ttl_s, err);
    bool has_table = true;
    if (rc == ESG_OK && ttl_s > 0)
        rc = esg_recorder_has_command_table(app->recorder, &has_table, err);
    if (rc != ESG_OK)
        return rc;
    app->idempotency_key_ttl_us = has_table ? (int64_t)(ttl_s * 1e6) : 0;
    if (has_table)
        return ESG_OK;
    /* A database made without this library's table (CREATE_TABLE off): keys were asked for,
     * or are the default, which the operator may not know of. */
    esg_setting setting;
    esg_setting_lookup(env, app->type->name, "IDEMPOTENCY_KEY_TTL", &setting);
    if (setting.value != NULL && !esg_is_blank(setting.value))
        return esg_error_set(err, ESG_ECONFIG,
                             "%s: %s is %s, but the database has no table for idempotency keys "
                             "(CREATE_TABLE is off): let it be created (CREATE_TABLE=y, once), "
                             "create it as README.md says, or set %s=0",
                             app->type->name, setting.key, setting.value, setting.key);
    esg_log(ESG_LOG_WARNING, app->type->name,
            "idempotency keys are off: the database has no table for them and CREATE_TABLE is "
            "off (repeated commands may run twice; see IDEMPOTENCY_KEY_TTL in README.md)");
    return ESG_OK;
}

double esg_application_idempotency_key_ttl(const esg_application *app)
{
    return (double)app->idempotency_key_ttl_us / 1e6;
}

static int64_t wall_clock_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* ---- The reply ---- */

esg_status app_command_set_reply(app_command *command, const esg_value *result, esg_error *err)
{
    esg_free(command->reply);
    command->reply = NULL;
    esg_status rc = esg_json_encode(result, &command->reply, &command->reply_len, err);
    command->record.reply = command->reply;
    command->record.reply_len = rc == ESG_OK ? command->reply_len : 0;
    return rc;
}

/* ---- Deferred saves of undeclared methods ---- */

/* The saves of the call running on this thread: its events, and copies of the saved aggregates
 * for the cache (esg_application_save puts them there after its write). */
typedef struct deferred_saves {
    esg_application *app; /* borrowed: only its saves are deferred */
    esg_event **events;   /* owned */
    size_t n_events;
    size_t events_capacity;
    esg_aggregate **saved; /* owned copies, for the cache; empty without one */
    size_t n_saved;
    size_t saved_capacity;
} deferred_saves;

static _Thread_local deferred_saves *this_threads_saves;

bool app_defer_save(esg_application *app, esg_aggregate *const *aggregates, size_t n_aggregates,
                    esg_status *rc, esg_error *err)
{
    deferred_saves *saves = this_threads_saves;
    if (saves == NULL || saves->app != app)
        return false;
    *rc = ESG_OK;
    for (size_t i = 0; i < n_aggregates && *rc == ESG_OK; i++)
        *rc = app_collect_into(&saves->events, &saves->n_events, &saves->events_capacity,
                               aggregates[i], err);
    for (size_t i = 0; i < n_aggregates && *rc == ESG_OK && app->cache != NULL; i++) {
        esg_aggregate *copy = NULL;
        if (!esg_grow((void **)&saves->saved, &saves->saved_capacity, saves->n_saved + 1,
                      sizeof *saves->saved) ||
            esg_aggregate_copy(aggregates[i], &copy, NULL) != ESG_OK)
            *rc = esg_error_set(err, ESG_ENOMEM, "out of memory saving aggregates");
        else
            saves->saved[saves->n_saved++] = copy;
    }
    return true;
}

esg_status app_call_deferring_saves(esg_application *app, const esg_method *binding,
                                    esg_value *const *params, app_command *command,
                                    esg_value **result, esg_error *err)
{
    deferred_saves saves = {.app = app};
    deferred_saves *outer = this_threads_saves; /* (a method that calls another application) */
    this_threads_saves = &saves;
    esg_status rc = binding->call(app, params, result, err);
    this_threads_saves = outer;
    if (rc == ESG_OK && *result == NULL)
        rc = esg_error_set(err, ESG_EINTERNAL, "%s() returned no value", binding->name);
    if (rc == ESG_OK && saves.n_events > 0) {
        rc = app_command_set_reply(command, *result, err);
        if (rc == ESG_OK)
            rc = app_record(app, saves.events, saves.n_events, NULL, command, err);
    }
    /* As esg_application_save: without fast-forward, the cache holds what was saved. */
    for (size_t i = 0; i < saves.n_saved; i++) {
        if (rc == ESG_OK && !app->is_fast_forwarding)
            aggregate_cache_put(app->cache, saves.saved[i]);
        else
            esg_aggregate_free(saves.saved[i]);
    }
    esg_free(saves.saved);
    app_free_events(saves.events, saves.n_events);
    return rc;
}

/* ---- Calls with a key ---- */

/* The hash a key's record keeps of its request: SHA-256 of the method name and both argument
 * texts, each length first (so that no two requests run together into one), in hex. */
static esg_status hash_request(const char *method_name, const char *args, size_t args_len,
                               const char *kwargs, size_t kwargs_len,
                               char out[ESG_REQUEST_HASH_SIZE], esg_error *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    const struct {
        const void *bytes;
        uint64_t len;
    } parts[] = {{method_name, strlen(method_name)}, {args, args_len}, {kwargs, kwargs_len}};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++) {
        unsigned char len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (unsigned char)(parts[i].len >> (56 - 8 * k));
        ok = EVP_DigestUpdate(ctx, len, sizeof len) &&
             (parts[i].len == 0 || EVP_DigestUpdate(ctx, parts[i].bytes, parts[i].len));
    }
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &digest_len) && digest_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return esg_error_set(err, ESG_ENOMEM, "cannot hash a request (OpenSSL's SHA-256 failed)");
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return ESG_OK;
}

/* Deletes the expired keys when it is time (one caller at a time does): a failure is logged and
 * tried again at the next interval, the calls go on. */
static void sweep_if_due(esg_application *app, int64_t now_us)
{
    int64_t due = atomic_load(&app->next_key_sweep_us);
    int64_t interval = app->idempotency_key_ttl_us < MAX_SWEEP_INTERVAL_US
                           ? app->idempotency_key_ttl_us
                           : MAX_SWEEP_INTERVAL_US;
    if (now_us < due ||
        !atomic_compare_exchange_strong(&app->next_key_sweep_us, &due, now_us + interval))
        return;
    esg_error err = {0};
    int64_t n_deleted = 0;
    if (esg_recorder_delete_commands(app->recorder, now_us - app->idempotency_key_ttl_us,
                                     &n_deleted, &err) != ESG_OK)
        esg_log(ESG_LOG_WARNING, app->type->name, "cannot delete expired idempotency keys: %s",
                err.message);
    else if (n_deleted > 0)
        esg_log(ESG_LOG_DEBUG, app->type->name, "deleted %lld expired idempotency keys",
                (long long)n_deleted);
}

/* Looks the key up: *found, and when it is the same request the recorded reply in *result. */
static esg_status find_reply(esg_application *app, const app_command *command, char **result,
                             size_t *result_len, bool *found, esg_error *err)
{
    esg_command_reply recorded = {0};
    int64_t not_before = command->record.recorded_at - app->idempotency_key_ttl_us;
    esg_status rc = esg_recorder_select_command(app->recorder, command->record.key, not_before,
                                                &recorded, found, err);
    if (rc == ESG_OK && *found && strcmp(recorded.request_hash, command->request_hash) != 0)
        rc = esg_error_set(err, ESG_EINVAL,
                           "the idempotency key was sent before with another command (another "
                           "method or other arguments): a key is for one command and its "
                           "repeats");
    if (rc == ESG_OK && *found) {
        *result = recorded.reply;
        *result_len = recorded.reply_len;
        recorded.reply = NULL;
        atomic_fetch_add_explicit(&app->n_command_repeats, 1, memory_order_relaxed);
    }
    esg_command_reply_clear(&recorded);
    return rc;
}

esg_status esg_application_call_json_idempotent(esg_application *app, const char *idempotency_key,
                                                const char *method_name, const char *args_json,
                                                size_t args_len, const char *kwargs_json,
                                                size_t kwargs_len, char **result,
                                                size_t *result_len, bool *is_repeat, esg_error *err)
{
    bool found = false;
    *result = NULL;
    *result_len = 0;
    if (is_repeat != NULL)
        *is_repeat = false;
    if (idempotency_key == NULL || app->idempotency_key_ttl_us == 0)
        return app_call_json(app, NULL, method_name, args_json, args_len, kwargs_json, kwargs_len,
                             result, result_len, err);
    if (method_name == NULL)
        return esg_error_set(err, ESG_EINVAL, "no method name to call");
    size_t key_len = strlen(idempotency_key);
    if (key_len == 0 || key_len > ESG_IDEMPOTENCY_KEY_MAX)
        return esg_error_set(err, ESG_EINVAL, "an idempotency key must be 1 to %d bytes, not %zu",
                             ESG_IDEMPOTENCY_KEY_MAX, key_len);
    app_command command = {0};
    command.record.key = idempotency_key;
    command.record.request_hash = command.request_hash;
    command.record.recorded_at = wall_clock_us();
    /* An expired record of the key is replaced by the write (and not found by the lookup). */
    command.record.replaces_before = command.record.recorded_at - app->idempotency_key_ttl_us;
    esg_status rc =
        hash_request(method_name, args_json, args_json != NULL ? args_len : 0, kwargs_json,
                     kwargs_json != NULL ? kwargs_len : 0, command.request_hash, err);
    if (rc == ESG_OK) {
        sweep_if_due(app, command.record.recorded_at);
        rc = find_reply(app, &command, result, result_len, &found, err);
    }
    if (rc == ESG_OK && !found) {
        rc = app_call_json(app, &command, method_name, args_json, args_len, kwargs_json, kwargs_len,
                           result, result_len, err);
        /* A repeat that ran at the same time recorded the key first: its reply is the answer. */
        esg_error conflict = {0};
        if (rc == ESG_ECONFLICT &&
            find_reply(app, &command, result, result_len, &found, &conflict) == ESG_OK && found)
            rc = ESG_OK;
    }
    if (is_repeat != NULL)
        *is_repeat = rc == ESG_OK && found;
    esg_free(command.reply);
    return rc;
}
