/* An application with versioned events and snapshots (tests/support/accounts.c), for
 * test_versions.py to run against the same SQLite database as the Python reference's classes:
 * "versioned_accounts:Accounts" at class version 2 (a Deposited event gained a currency, the
 * Account's state a currency and is_closed, upcast from version 1 as the Python classes do).
 *
 *   reference_versions METHOD ARGS_JSON   calls the method, prints its result as JSON
 *   reference_versions snapshot ID_JSON   records a snapshot of the account
 * Settings from the environment (PERSISTENCE_MODULE, SQLITE_DBNAME, IS_SNAPSHOTTING_ENABLED).
 * Exits 0, or 1 with the error on stderr. */
#include <stdio.h>
#include <string.h>

#include "accounts.h"

static const esg_application_type accounts = ESG_APPLICATION(
    "Accounts", "versioned_accounts:Accounts", .aggregate_types = ESG_AGGREGATES(&accounts_account),
    .method_defs = ESG_METHODS(ESG_METHOD(ACCOUNTS_OPEN_ACCOUNT, accounts_open_account),
                               ESG_METHOD(ACCOUNTS_DEPOSIT, accounts_deposit),
                               ESG_METHOD(ACCOUNTS_GET_ACCOUNT, accounts_get_account)));

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
