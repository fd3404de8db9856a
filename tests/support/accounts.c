/* The versioned accounts of accounts.h. */
#include "accounts.h"

#include <string.h>

ESG_MUTATOR(on_opened, account, account_opened)
{
    if (esg_set_string(&self->owner, event->owner, err) == ESG_OK)
        esg_set_string(&self->currency, "EUR", err);
}

ESG_MUTATOR(on_deposited, account, account_deposited)
{
    if (strcmp(event->currency, "XXX") == 0) /* a mutator that fails says so in err */
        esg_error_set(err, ESG_EINVAL, "no such currency: XXX");
    self->balance += event->amount;
    esg_set_string(&self->currency, event->currency, err);
}

ESG_MUTATOR(on_closed, account, void)
{
    self->is_closed = true;
}

int accounts_n_upcasts;

static esg_status set_in(esg_value *state, const char *key, esg_value *value, esg_error *err)
{
    accounts_n_upcasts++;
    if (esg_object_set(state, key, value) != ESG_OK)
        return esg_error_set(err, ESG_ENOMEM, "out of memory upcasting");
    return ESG_OK;
}

/* Version 1 had no currency: every deposit was in euros. */
static esg_status deposited_v1_v2(esg_value *state, esg_error *err)
{
    return set_in(state, "currency", esg_value_string("EUR"), err);
}

/* Version 1 accounts were in euros, and could not be closed. */
static esg_status account_v1_v2(esg_value *state, esg_error *err)
{
    esg_status rc = set_in(state, "currency", esg_value_string("EUR"), err);
    return rc == ESG_OK ? set_in(state, "is_closed", esg_value_bool(false), err) : rc;
}

const esg_event_def accounts_opened =
    ESG_EVENT("versioned_accounts:Account.Opened", account_opened, on_opened,
              ESG_FIELD(account_opened, owner, ESG_STRING));
const esg_event_def accounts_deposited = {
    .topic = "versioned_accounts:Account.Deposited",
    .data = ESG_STRUCT(account_deposited, ESG_FIELD(account_deposited, amount, ESG_INT),
                       ESG_FIELD(account_deposited, currency, ESG_STRING)),
    .mutate = on_deposited,
    .class_version = 2,
    .upcasts = ESG_UPCASTS(deposited_v1_v2),
};
const esg_event_def accounts_closed = {.topic = "versioned_accounts:Account.Closed",
                                       .mutate = on_closed};

const esg_aggregate_type accounts_account = {
    .topic = "versioned_accounts:Account",
    .state = ESG_STRUCT(
        account, ESG_FIELD(account, owner, ESG_STRING), ESG_FIELD(account, balance, ESG_INT),
        ESG_NULLABLE_FIELD(account, currency, ESG_STRING), ESG_FIELD(account, is_closed, ESG_BOOL)),
    .events = ESG_EVENTS(&accounts_opened, &accounts_deposited, &accounts_closed),
    .class_version = 2,
    .upcasts = ESG_UPCASTS(account_v1_v2),
};

esg_status accounts_open_account(esg_work *work)
{
    const account *a = esg_work_create(work, &accounts_account, NULL, &accounts_opened,
                                       &(account_opened){esg_arg_string(work, 0)});
    return esg_return_uuid(work, esg_work_id(work, a));
}

esg_status accounts_deposit(esg_work *work)
{
    const account *a = esg_work_get(work, &accounts_account, esg_arg_uuid(work, 0));
    esg_work_trigger(work, a, &accounts_deposited,
                     &(account_deposited){esg_arg_int(work, 1), esg_arg_string(work, 2)});
    return esg_return_int(work, a->balance);
}

esg_status accounts_get_account(esg_work *work)
{
    return esg_return_aggregate(work, esg_work_get(work, &accounts_account, esg_arg_uuid(work, 0)));
}
