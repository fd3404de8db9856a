/* An application with versioned events and snapshots, declared as a user would, for
 * test_versions.py to run against the same SQLite database as the Python reference's:
 * "versioned_accounts:Accounts" at class version 2 (a Deposited event and the Account's state
 * gained a currency, upcast from version 1 as the Python classes do).
 *
 *   reference_versions METHOD ARGS_JSON   calls the method, prints its result as JSON
 *   reference_versions snapshot ID_JSON   records a snapshot of the account
 * Settings from the environment (PERSISTENCE_MODULE, SQLITE_DBNAME, IS_SNAPSHOTTING_ENABLED).
 * Exits 0, or 1 with the error on stderr. */
#include <stdio.h>
#include <string.h>

#include "esg.h"

typedef struct account {
    char *owner;
    int64_t balance;
    char *currency; /* of the last deposit; "EUR" before version 2 */
} account;

typedef struct account_opened {
    const char *owner;
} account_opened;

typedef struct account_deposited {
    int64_t amount;
    const char *currency;
} account_deposited;

ESG_MUTATOR(on_opened, account, account_opened)
{
    if (esg_set_string(&self->owner, event->owner, err) == ESG_OK)
        esg_set_string(&self->currency, "EUR", err);
}

ESG_MUTATOR(on_deposited, account, account_deposited)
{
    self->balance += event->amount;
    esg_set_string(&self->currency, event->currency, err);
}

/* Version 1 had no currency: every deposit was in euros. */
static esg_status add_euros(esg_value *state, esg_error *err)
{
    if (esg_object_set(state, "currency", esg_value_string("EUR")) != ESG_OK)
        return esg_error_set(err, ESG_ENOMEM, "out of memory upcasting");
    return ESG_OK;
}

static const esg_upcast_fn *const upcasts = ESG_UPCASTS(add_euros);

static const esg_event_def opened =
    ESG_EVENT("versioned_accounts:Account.Opened", account_opened, on_opened,
              ESG_FIELD(account_opened, owner, ESG_STRING));
static const esg_event_def deposited = {
    .topic = "versioned_accounts:Account.Deposited",
    .data = ESG_STRUCT(account_deposited, ESG_FIELD(account_deposited, amount, ESG_INT),
                       ESG_FIELD(account_deposited, currency, ESG_STRING)),
    .mutate = on_deposited,
    .class_version = 2,
    .upcasts = upcasts,
};

static const esg_aggregate_type account_type = {
    .topic = "versioned_accounts:Account",
    .state =
        ESG_STRUCT(account, ESG_FIELD(account, owner, ESG_STRING),
                   ESG_FIELD(account, balance, ESG_INT), ESG_FIELD(account, currency, ESG_STRING)),
    .events = ESG_EVENTS(&opened, &deposited),
    .class_version = 2,
    .upcasts = upcasts,
};

static esg_status open_account(esg_work *work)
{
    const account *a = esg_work_create(work, &account_type, NULL, &opened,
                                       &(account_opened){esg_arg_string(work, 0)});
    return esg_return_uuid(work, esg_work_id(work, a));
}

static esg_status deposit(esg_work *work)
{
    const account *a = esg_work_get(work, &account_type, esg_arg_uuid(work, 0));
    esg_work_trigger(work, a, &deposited,
                     &(account_deposited){esg_arg_int(work, 1), esg_arg_string(work, 2)});
    return esg_return_int(work, a->balance);
}

static esg_status get_account(esg_work *work)
{
    return esg_return_aggregate(work, esg_work_get(work, &account_type, esg_arg_uuid(work, 0)));
}

static const esg_application_type accounts = ESG_APPLICATION(
    "Accounts", "versioned_accounts:Accounts", .aggregate_types = ESG_AGGREGATES(&account_type),
    .method_defs = ESG_METHODS(
        ESG_METHOD("open_account(owner: str) -> UUID", open_account),
        ESG_METHOD("deposit(account_id: UUID, amount: int, currency: str = 'EUR') -> int", deposit),
        ESG_METHOD("get_account(account_id: UUID) -> dict", get_account)));

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: reference_versions METHOD|snapshot ARGS_JSON\n");
        return 2;
    }
    esg_error err = {0};
    esg_application *app = NULL;
    esg_value *args = NULL;
    char *result = NULL;
    size_t result_len = 0;
    esg_status rc = esg_application_new(&accounts, NULL, &app, &err);
    if (rc == ESG_OK && strcmp(argv[1], "snapshot") == 0) {
        rc = esg_json_decode(argv[2], strlen(argv[2]), &args, &err);
        const esg_uuid *id = rc == ESG_OK ? esg_value_as_uuid(args) : NULL;
        if (rc == ESG_OK && id == NULL)
            rc = esg_error_set(&err, ESG_EINVAL, "not a UUID: %s", argv[2]);
        if (rc == ESG_OK)
            rc = esg_application_take_snapshot(app, id, 0, &err);
    } else if (rc == ESG_OK) {
        rc = esg_application_call_json(app, argv[1], argv[2], strlen(argv[2]), NULL, 0, &result,
                                       &result_len, &err);
        if (rc == ESG_OK)
            printf("%s\n", result);
    }
    esg_free(result);
    esg_value_free(args);
    esg_application_free(app);
    if (rc != ESG_OK)
        fprintf(stderr, "reference_versions: %s: %s\n", esg_status_name(rc), err.message);
    return rc == ESG_OK ? 0 : 1;
}
