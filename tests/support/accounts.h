/* A versioned aggregate declared as a user would, shared by the declarative layer's tests
 * (tests/application/test_declared.c) and the test against the Python reference's classes
 * (tests/reference/reference_versions.c, test_versions.py, which declares the same classes in
 * Python): "versioned_accounts:Account" at class version 2, whose Deposited event gained a
 * currency and whose state gained a currency and is_closed, both upcast from version 1. */
#ifndef ESG_TESTS_ACCOUNTS_H
#define ESG_TESTS_ACCOUNTS_H

#include "esg.h"

typedef struct account {
    char *owner;
    int64_t balance;
    char *currency; /* of the last deposit; "EUR" before version 2 */
    bool is_closed;
} account;

typedef struct account_opened {
    const char *owner;
} account_opened;

typedef struct account_deposited {
    int64_t amount;
    const char *currency; /* "XXX" makes the mutator fail, for the tests of failing mutators */
} account_deposited;

extern const esg_event_def accounts_opened;       /* versioned_accounts:Account.Opened */
extern const esg_event_def accounts_deposited;    /* ...Account.Deposited, class_version 2 */
extern const esg_event_def accounts_closed;       /* ...Account.Closed, no data */
extern const esg_aggregate_type accounts_account; /* versioned_accounts:Account, version 2 */

/* How many upcasts have run in this process (events and snapshot states). */
extern int accounts_n_upcasts;

/* Declared methods: open_account(owner: str) -> UUID, deposit(account_id: UUID, amount: int,
 * currency: str = 'EUR') -> int, get_account(account_id: UUID) -> dict. */
esg_status accounts_open_account(esg_work *work);
esg_status accounts_deposit(esg_work *work);
esg_status accounts_get_account(esg_work *work);

#define ACCOUNTS_OPEN_ACCOUNT "open_account(owner: str) -> UUID"
#define ACCOUNTS_DEPOSIT "deposit(account_id: UUID, amount: int, currency: str = 'EUR') -> int"
#define ACCOUNTS_GET_ACCOUNT "get_account(account_id: UUID) -> dict"

#endif
