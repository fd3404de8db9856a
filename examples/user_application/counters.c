/* A user's own application, built outside the core as a shared library and
 * loaded at run time by topic: "user_counters:Counters" (named counters that
 * are created and incremented) and "user_counters:system", which runs it on
 * its own. See README.md in this folder for how to build and run it. */
#include <stdint.h>

#include "esg/system.h"

/* ---- The Counter aggregate: its state and its events, as C structs ------- */

typedef struct counter {
    char *name;    /* owned by the state (its field table frees it) */
    int64_t value; /* the sum of every Incremented's "by" */
} counter;

typedef struct counter_created {
    const char *name;
} counter_created;

typedef struct counter_incremented {
    int64_t by;
} counter_incremented;

ESG_MUTATOR(on_created, counter, counter_created)
{
    esg_set_string(&self->name, event->name, err); /* a copy: the event is borrowed */
}

ESG_MUTATOR(on_incremented, counter, counter_incremented)
{
    self->value += event->by;
}

static const esg_event_def created =
    ESG_EVENT("user_counters:Counter.Created", counter_created, on_created,
              ESG_FIELD(counter_created, name, ESG_STRING));

static const esg_event_def incremented =
    ESG_EVENT("user_counters:Counter.Incremented", counter_incremented, on_incremented,
              ESG_FIELD(counter_incremented, by, ESG_INT));

static const esg_aggregate_type counter_type = {
    .topic = "user_counters:Counter",
    .state = ESG_STRUCT(counter, ESG_FIELD(counter, name, ESG_STRING),
                        ESG_FIELD(counter, value, ESG_INT)),
    .events = ESG_EVENTS(&created, &incremented),
};

/* ---- Methods: arguments checked by their signatures before they run; after a failure the
 * work's calls do nothing and return it, so each reads straight down ---------------------- */

static esg_status create_counter(esg_work *work)
{
    const counter *c = esg_work_create(work, &counter_type, NULL, &created,
                                       &(counter_created){esg_arg_string(work, 0)});
    return esg_return_uuid(work, esg_work_id(work, c));
}

static esg_status increment(esg_work *work)
{
    int64_t by = esg_arg_int(work, 1);
    const counter *c = esg_work_get(work, &counter_type, esg_arg_uuid(work, 0));
    /* Refused before it is recorded: a stored sum that overflows could never be replayed. */
    if ((by > 0 && c->value > INT64_MAX - by) || (by < 0 && c->value < INT64_MIN - by))
        return esg_work_fail(work, ESG_EINVAL, "increment(): the value would overflow");
    esg_work_trigger(work, c, &incremented, &(counter_incremented){by});
    return esg_return_int(work, c->value);
}

static esg_status get_value(esg_work *work)
{
    const counter *c = esg_work_get(work, &counter_type, esg_arg_uuid(work, 0));
    return esg_return_int(work, c->value);
}

/* ---- What the topics name ------------------------------------------------- */

/* "user_counters:Counters": the symbol's name is the part after the ':'. */
const esg_application_type Counters = ESG_APPLICATION(
    "Counters", "user_counters:Counters", .aggregate_types = ESG_AGGREGATES(&counter_type),
    .method_defs =
        ESG_METHODS(ESG_METHOD("create_counter(name: str) -> UUID", create_counter),
                    ESG_METHOD("increment(counter_id: UUID, by: int = 1) -> int", increment),
                    ESG_METHOD("get_value(counter_id: UUID) -> int", get_value)));

/* "user_counters:system": exported as "system", which in C is also the name
 * of stdlib.h's system(), so the C name differs and an asm label gives the
 * symbol its exported name. */
const esg_system_def counters_system __asm__("system") = ESG_SYSTEM("user_counters:system",
                                                                    ESG_PIPE(&Counters));
