/* The unit of work of declared methods and policies: arguments bound, defaulted and checked by
 * the method's signature; the aggregates it gets and creates, owned and kept once per id; their
 * new events recorded in one write (a method) or handed to processing (a policy) when it ends
 * well; the first failure kept, so that a method can read straight down. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "application/application_internal.h"
#include "core/alloc.h"
#include "core/grow.h"

/* An event's data decoded for a policy, kept until the work ends. */
typedef struct work_data {
    const esg_event_def *type; /* whose data it is */
    void *data;                /* esg_malloc'ed struct of type->data */
    esg_value *upcast;         /* owned attributes when the event was upcast, else NULL */
} work_data;

struct esg_work {
    esg_application *app;     /* borrowed */
    esg_value *const *params; /* a method's arguments, borrowed; NULL for a policy */
    size_t n_params;
    esg_aggregate **aggregates; /* owned: got or created, once per id */
    size_t n_aggregates;
    size_t aggregates_capacity;
    work_data *datas; /* owned */
    size_t n_datas;
    size_t datas_capacity;
    void **zero_states; /* owned: what get and create give after a failure, when large */
    size_t n_zero_states;
    size_t zero_states_capacity;
    esg_value *result; /* owned until handed over; NULL means None */
    esg_status status; /* the first failure, or ESG_OK */
    esg_error error;   /* its message */
};

/* ---- Failure ---- */

esg_status esg_work_fail(esg_work *work, esg_status status, const char *format, ...)
{
    if (work->status != ESG_OK || status == ESG_OK)
        return work->status != ESG_OK ? work->status : status;
    work->status = status;
    work->error.status = status;
    va_list args;
    va_start(args, format);
    vsnprintf(work->error.message, sizeof work->error.message, format, args);
    va_end(args);
    return status;
}

/* Keeps the status of a call that filled work->error itself. */
static esg_status failed(esg_work *work, esg_status status)
{
    if (status != ESG_OK && work->status == ESG_OK)
        work->status = status;
    return work->status;
}

esg_status esg_work_status(const esg_work *work)
{
    return work->status;
}

esg_application *esg_work_application(esg_work *work)
{
    return work->app;
}

/* ---- Arguments ---- */

const esg_value *esg_arg(const esg_work *work, size_t i)
{
    return i < work->n_params ? work->params[i] : NULL;
}

const esg_uuid *esg_arg_uuid(const esg_work *work, size_t i)
{
    return esg_value_as_uuid(esg_arg(work, i));
}

int64_t esg_arg_int(const esg_work *work, size_t i)
{
    return esg_value_as_int(esg_arg(work, i));
}

double esg_arg_float(const esg_work *work, size_t i)
{
    const esg_value *value = esg_arg(work, i);
    return value != NULL && esg_value_type(value) == ESG_TYPE_INT ? (double)esg_value_as_int(value)
                                                                  : esg_value_as_float(value);
}

bool esg_arg_bool(const esg_work *work, size_t i)
{
    return esg_value_as_bool(esg_arg(work, i));
}

const char *esg_arg_string(const esg_work *work, size_t i)
{
    const esg_value *value = esg_arg(work, i);
    const char *decimal = esg_value_as_decimal(value);
    return decimal != NULL ? decimal : esg_value_as_string(value, NULL);
}

const esg_datetime *esg_arg_datetime(const esg_work *work, size_t i)
{
    return esg_value_as_datetime(esg_arg(work, i));
}

/* ---- Aggregates ---- */

/* A state of zeroes of type, for get and create to give after a failure: static when small. */
static const void *zero_state(esg_work *work, const esg_aggregate_type *type)
{
    static const _Alignas(max_align_t) unsigned char zeroes[4096];
    size_t size = type->state.fields != NULL ? type->state.size : type->state_size;
    if (size <= sizeof zeroes)
        return zeroes;
    void *state = esg_calloc(1, size);
    if (state == NULL || !esg_grow((void **)&work->zero_states, &work->zero_states_capacity,
                                   work->n_zero_states + 1, sizeof *work->zero_states)) {
        esg_free(state);
        return zeroes; /* out of memory: the first 4 KiB are readable still */
    }
    work->zero_states[work->n_zero_states++] = state;
    return state;
}

static esg_aggregate *find_by_state(const esg_work *work, const void *state)
{
    for (size_t i = 0; state != NULL && i < work->n_aggregates; i++)
        if (esg_aggregate_state_const(work->aggregates[i]) == state)
            return work->aggregates[i];
    return NULL;
}

/* Takes aggregate into the work; its state (zeroes when out of memory: it is freed). */
static const void *keep(esg_work *work, esg_aggregate *aggregate)
{
    if (!esg_grow((void **)&work->aggregates, &work->aggregates_capacity, work->n_aggregates + 1,
                  sizeof *work->aggregates)) {
        const esg_aggregate_type *type = esg_aggregate_get_type(aggregate);
        esg_aggregate_free(aggregate);
        esg_work_fail(work, ESG_ENOMEM, "out of memory keeping an aggregate");
        return zero_state(work, type);
    }
    work->aggregates[work->n_aggregates++] = aggregate;
    return esg_aggregate_state(aggregate);
}

const void *esg_work_get(esg_work *work, const esg_aggregate_type *type, const esg_uuid *id)
{
    if (work->status == ESG_OK && id == NULL)
        esg_work_fail(work, ESG_EINVAL, "no id to get a %s by", type->topic);
    if (work->status != ESG_OK)
        return zero_state(work, type);
    esg_aggregate *aggregate = NULL;
    for (size_t i = 0; i < work->n_aggregates && aggregate == NULL; i++)
        if (esg_uuid_equal(esg_aggregate_id(work->aggregates[i]), id))
            aggregate = work->aggregates[i];
    bool is_new = aggregate == NULL;
    if (is_new &&
        failed(work, esg_application_get(work->app, id, 0, &aggregate, &work->error)) != ESG_OK)
        return zero_state(work, type);
    if (esg_aggregate_get_type(aggregate) != type) {
        char text[ESG_UUID_STR_SIZE];
        esg_uuid_str(id, text);
        if (is_new)
            esg_aggregate_free(aggregate);
        esg_work_fail(work, ESG_ENOTFOUND, "%s is not a %s", text, type->topic);
        return zero_state(work, type);
    }
    return is_new ? keep(work, aggregate) : esg_aggregate_state(aggregate);
}

/* The attributes of an event's data (NULL for none), or a failure of the work. */
static esg_status attributes_of(esg_work *work, const esg_event_def *event, const void *data,
                                esg_value **out)
{
    *out = NULL;
    if (data == NULL || event->data.fields == NULL)
        return ESG_OK;
    return failed(work, esg_struct_to_value(&event->data, data, event->topic, out, &work->error));
}

const void *esg_work_create(esg_work *work, const esg_aggregate_type *type, const esg_uuid *id,
                            const esg_event_def *created, const void *data)
{
    esg_value *attributes = NULL;
    esg_aggregate *aggregate = NULL;
    if (work->status != ESG_OK || attributes_of(work, created, data, &attributes) != ESG_OK ||
        failed(work, esg_aggregate_create(type, created->topic, id, attributes, &aggregate,
                                          &work->error)) != ESG_OK)
        return zero_state(work, type);
    return keep(work, aggregate);
}

esg_status esg_work_trigger(esg_work *work, const void *state, const esg_event_def *event,
                            const void *data)
{
    if (work->status != ESG_OK)
        return work->status;
    esg_aggregate *aggregate = find_by_state(work, state);
    if (aggregate == NULL)
        return esg_work_fail(work, ESG_EINVAL, "%s: not the state of an aggregate of this work",
                             event->topic);
    esg_value *attributes = NULL;
    if (attributes_of(work, event, data, &attributes) != ESG_OK)
        return work->status;
    return failed(work, esg_aggregate_trigger(aggregate, event->topic, attributes, &work->error));
}

const esg_uuid *esg_work_id(const esg_work *work, const void *state)
{
    const esg_aggregate *aggregate = find_by_state(work, state);
    return aggregate != NULL ? esg_aggregate_id(aggregate) : NULL;
}

const void *esg_work_event(esg_work *work, const esg_event *event, const esg_event_def *event_type)
{
    if (work->status != ESG_OK || strcmp(event->topic, event_type->topic) != 0)
        return NULL;
    if (!esg_grow((void **)&work->datas, &work->datas_capacity, work->n_datas + 1,
                  sizeof *work->datas)) {
        esg_work_fail(work, ESG_ENOMEM, "out of memory reading %s", event->topic);
        return NULL;
    }
    work_data *kept = &work->datas[work->n_datas];
    *kept = (work_data){event_type,
                        esg_calloc(1, event_type->data.size ? event_type->data.size : 1), NULL};
    if (kept->data == NULL) {
        esg_work_fail(work, ESG_ENOMEM, "out of memory reading %s", event->topic);
        return NULL;
    }
    work->n_datas++;
    const esg_value *attributes = event->attributes;
    bool is_versioned =
        event_type->class_version > 1 || esg_object_get(attributes, "class_version") != NULL;
    if (is_versioned) { /* upcast a copy: the event is borrowed */
        esg_event copy = *event;
        copy.attributes = kept->upcast = esg_value_copy(attributes);
        if (kept->upcast == NULL) {
            esg_work_fail(work, ESG_ENOMEM, "out of memory upcasting %s", event->topic);
            return NULL;
        }
        if (failed(work, esg_event_upcast(event_type, &copy, &work->error)) != ESG_OK)
            return NULL;
        attributes = kept->upcast;
    }
    if (failed(work, esg_struct_from_value(&event_type->data, attributes, false, event->topic,
                                           kept->data, &work->error)) != ESG_OK)
        return NULL;
    return kept->data;
}

/* ---- Results ---- */

esg_status esg_return(esg_work *work, esg_value *value)
{
    if (work->status != ESG_OK) {
        esg_value_free(value);
        return work->status;
    }
    if (value == NULL)
        return esg_work_fail(work, ESG_ENOMEM, "out of memory returning a value");
    esg_value_free(work->result);
    work->result = value;
    return ESG_OK;
}

esg_status esg_return_none(esg_work *work)
{
    return esg_return(work, esg_value_null());
}

esg_status esg_return_bool(esg_work *work, bool b)
{
    return esg_return(work, esg_value_bool(b));
}

esg_status esg_return_int(esg_work *work, int64_t i)
{
    return esg_return(work, esg_value_int(i));
}

esg_status esg_return_float(esg_work *work, double d)
{
    return esg_return(work, esg_value_float(d));
}

esg_status esg_return_string(esg_work *work, const char *s)
{
    return esg_return(work, s != NULL ? esg_value_string(s) : esg_value_null());
}

esg_status esg_return_uuid(esg_work *work, const esg_uuid *id)
{
    return esg_return(work, id != NULL ? esg_value_uuid(id) : esg_value_null());
}

esg_status esg_return_struct(esg_work *work, const esg_struct_type *type, const void *data)
{
    esg_value *value = NULL;
    if (work->status != ESG_OK ||
        failed(work, esg_struct_to_value(type, data, "a result", &value, &work->error)) != ESG_OK)
        return work->status;
    return esg_return(work, value);
}

esg_status esg_return_aggregate(esg_work *work, const void *state)
{
    if (work->status != ESG_OK)
        return work->status;
    const esg_aggregate *aggregate = find_by_state(work, state);
    if (aggregate == NULL)
        return esg_work_fail(work, ESG_EINVAL,
                             "esg_return_aggregate: not the state of an aggregate of this work");
    esg_value *dict = esg_value_object();
    if (dict == NULL ||
        esg_object_set(dict, "id", esg_value_uuid(esg_aggregate_id(aggregate))) != ESG_OK) {
        esg_value_free(dict);
        return esg_work_fail(work, ESG_ENOMEM, "out of memory returning an aggregate");
    }
    if (failed(work, esg_aggregate_write_state(aggregate, dict, &work->error)) != ESG_OK) {
        esg_value_free(dict);
        return work->status;
    }
    if (esg_object_set(dict, "created_on",
                       esg_value_datetime(esg_aggregate_created_on(aggregate))) != ESG_OK ||
        esg_object_set(dict, "modified_on",
                       esg_value_datetime(esg_aggregate_modified_on(aggregate))) != ESG_OK) {
        esg_value_free(dict);
        return esg_work_fail(work, ESG_ENOMEM, "out of memory returning an aggregate");
    }
    return esg_return(work, dict);
}

/* ---- Running a method or a policy ---- */

static void work_clear(esg_work *work)
{
    for (size_t i = 0; i < work->n_aggregates; i++)
        esg_aggregate_free(work->aggregates[i]);
    esg_free(work->aggregates);
    for (size_t i = 0; i < work->n_datas; i++) {
        esg_struct_clear(&work->datas[i].type->data, work->datas[i].data, false);
        esg_free(work->datas[i].data);
        esg_value_free(work->datas[i].upcast);
    }
    esg_free(work->datas);
    for (size_t i = 0; i < work->n_zero_states; i++)
        esg_free(work->zero_states[i]);
    esg_free(work->zero_states);
    esg_value_free(work->result);
}

/* The aggregates that have new events, in the order the work took them. */
static size_t changed_aggregates(esg_work *work)
{
    size_t n = 0;
    for (size_t i = 0; i < work->n_aggregates; i++)
        if (esg_aggregate_n_pending(work->aggregates[i]) > 0)
            work->aggregates[n++] = work->aggregates[i];
    for (size_t i = n; i < work->n_aggregates; i++) /* unchanged ones are done with */
        esg_aggregate_free(work->aggregates[i]);
    work->n_aggregates = n;
    return n;
}

/* What a method's or policy's function returned, kept in the work; what it is (for a message
 * when it failed without saying why) is what1 followed by what2. */
static esg_status ended(esg_work *work, esg_status rc, const char *what1, const char *what2)
{
    if (rc != ESG_OK && work->status == ESG_OK)
        return esg_work_fail(work, rc, "%s%s failed (%s) without saying why", what1, what2,
                             esg_status_name(rc));
    return work->status;
}

esg_status app_run_method(esg_application *app, const app_method *method, esg_value **params,
                          app_command *command, esg_value **result, esg_error *err)
{
    const esg_signature *signature = &method->signature;
    esg_work work = {.app = app, .params = params, .n_params = signature->n_params};
    char phrase[96];
    for (size_t i = 0; i < signature->n_params && work.status == ESG_OK; i++) {
        if (params[i] == NULL)
            params[i] = signature->defaults[i]; /* borrowed from the signature */
        if (params[i] != NULL && !esg_sig_type_accepts(&signature->types[i], params[i]))
            esg_work_fail(&work, ESG_EINVAL, "%s(): %s must be %s, not %s", signature->name,
                          signature->params[i],
                          esg_sig_type_phrase(&signature->types[i], phrase, sizeof phrase),
                          esg_value_type(params[i]) == ESG_TYPE_NULL
                              ? "None"
                              : esg_type_name(esg_value_type(params[i])));
        size_t len = 0; /* esg_arg_string gives C text: a NUL inside would cut it short */
        const char *text = esg_value_as_string(params[i], &len);
        if (work.status == ESG_OK && text != NULL && strlen(text) != len)
            esg_work_fail(&work, ESG_EINVAL, "%s(): %s holds a NUL character", signature->name,
                          signature->params[i]);
    }
    if (work.status == ESG_OK)
        ended(&work, method->def->run(&work), signature->name, "()");
    if (work.status == ESG_OK && work.result == NULL)
        work.result = esg_value_null(); /* a method that returns nothing returns None */
    if (work.status == ESG_OK && work.result == NULL)
        esg_work_fail(&work, ESG_ENOMEM, "out of memory returning from %s()", signature->name);
    if (work.status == ESG_OK && signature->has_return_type &&
        !esg_sig_type_accepts(&signature->return_type, work.result))
        esg_work_fail(&work, ESG_EINTERNAL, "%s() returned %s, not %s", signature->name,
                      esg_type_name(esg_value_type(work.result)),
                      esg_sig_type_phrase(&signature->return_type, phrase, sizeof phrase));
    size_t n_changed = work.status == ESG_OK ? changed_aggregates(&work) : 0;
    /* A command that changed nothing needs no record: running it again changes nothing. */
    if (n_changed > 0 && command != NULL)
        failed(&work, app_command_set_reply(command, work.result, &work.error));
    /* (Without a key, through esg_application_save: a call of an undeclared method with a key
     * that calls this one defers the save to its own write.) */
    if (n_changed > 0 && work.status == ESG_OK)
        failed(&work, command != NULL
                          ? app_save(app, work.aggregates, n_changed, command, &work.error)
                          : esg_application_save(app, work.aggregates, n_changed, &work.error));
    if (work.status == ESG_OK) {
        *result = work.result;
        work.result = NULL;
    } else if (err != NULL) {
        *err = work.error;
    }
    work_clear(&work);
    return work.status;
}

esg_status esg_application_type_run_policy(const esg_application_type *type, esg_application *app,
                                           const esg_event *event, esg_processing_event *processing,
                                           esg_error *err)
{
    if (type->policy != NULL)
        return type->policy(app, event, processing, err);
    if (type->process == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s has no policy", type->name);
    esg_work work = {.app = app};
    ended(&work, type->process(&work, event), "the policy of ", type->name);
    size_t n_changed = work.status == ESG_OK ? changed_aggregates(&work) : 0;
    for (size_t i = 0; i < n_changed && work.status == ESG_OK; i++)
        failed(&work, esg_processing_event_collect(processing, work.aggregates[i], &work.error));
    if (work.status != ESG_OK && err != NULL)
        *err = work.error;
    work_clear(&work);
    return work.status;
}
