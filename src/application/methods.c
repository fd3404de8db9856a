/* An application's methods as it calls them by name: the type's table read once at start
 * (declared methods' signatures parsed then), then each call bound, run and checked. */
#include <string.h>

#include "application/application_internal.h"
#include "application/arguments.h"
#include "core/alloc.h"

/* Adds the method of index i: a method of the type, or with def a declared one. */
static esg_status add_method(esg_application *app, size_t i, const esg_method_def *def,
                             esg_error *err)
{
    app_method *m = &app->methods[app->n_methods++];
    esg_status rc = ESG_OK;
    if (def != NULL) {
        m->def = def;
        rc = def->run != NULL ? esg_signature_parse(def->signature, &m->signature, err)
                              : esg_error_set(err, ESG_ECONFIG, "%s: method '%s' has no function",
                                              app->type->name, def->signature);
        m->binding = (esg_method){m->signature.name, (const char *const *)m->signature.params,
                                  m->signature.n_params, m->signature.n_required, NULL};
    } else {
        m->binding = app->type->methods[i];
        if (m->binding.name == NULL || m->binding.call == NULL)
            rc = esg_error_set(err, ESG_ECONFIG, "%s: method %zu needs a name and a function",
                               app->type->name, i);
    }
    for (size_t k = 0; rc == ESG_OK && k + 1 < app->n_methods; k++)
        if (strcmp(app->methods[k].binding.name, m->binding.name) == 0)
            rc = esg_error_set(err, ESG_ECONFIG, "%s has two methods named %s", app->type->name,
                               m->binding.name);
    return rc;
}

esg_status app_methods_open(esg_application *app, esg_error *err)
{
    const esg_application_type *type = app->type;
    size_t n_defs = 0;
    while (type->method_defs != NULL && type->method_defs[n_defs].signature != NULL)
        n_defs++;
    size_t n = type->n_methods + n_defs;
    app->methods = n > 0 ? esg_calloc(n, sizeof *app->methods) : NULL;
    if (n > 0 && app->methods == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading the methods of %s",
                             type->name);
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < type->n_methods; i++)
        rc = add_method(app, i, NULL, err);
    for (size_t i = 0; rc == ESG_OK && i < n_defs; i++)
        rc = add_method(app, i, &type->method_defs[i], err);
    return rc;
}

void app_methods_free(esg_application *app)
{
    for (size_t i = 0; i < app->n_methods; i++)
        esg_signature_clear(&app->methods[i].signature);
    esg_free(app->methods);
    app->methods = NULL;
    app->n_methods = 0;
}

esg_status esg_application_call(esg_application *app, const char *method_name,
                                const esg_value *args, const esg_value *kwargs, esg_value **result,
                                esg_error *err)
{
    return app_call(app, method_name, args, kwargs, NULL, result, err);
}

esg_status app_call(esg_application *app, const char *method_name, const esg_value *args,
                    const esg_value *kwargs, app_command *command, esg_value **result,
                    esg_error *err)
{
    *result = NULL;
    const app_method *method = NULL;
    for (size_t i = 0; i < app->n_methods && method == NULL; i++)
        if (strcmp(app->methods[i].binding.name, method_name) == 0)
            method = &app->methods[i];
    if (method == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED, "%s has no method '%.100s'", app->type->name,
                             method_name);
    esg_value *stack_params[8];
    esg_value **params = stack_params;
    if (method->binding.n_params > 8) {
        params = esg_calloc(method->binding.n_params, sizeof *params);
        if (params == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory calling %s", method_name);
    }
    esg_status rc = esg_bind_arguments(&method->binding, args, kwargs, params, err);
    if (rc == ESG_OK && method->def != NULL)
        rc = app_run_method(app, method, params, command, result, err);
    else if (rc == ESG_OK && command != NULL)
        rc = app_call_deferring_saves(app, &method->binding, params, command, result, err);
    else if (rc == ESG_OK)
        rc = method->binding.call(app, params, result, err);
    if (rc == ESG_OK && *result == NULL)
        rc = esg_error_set(err, ESG_EINTERNAL, "%s() returned no value", method_name);
    if (rc != ESG_OK) {
        esg_value_free(*result);
        *result = NULL;
    }
    if (params != stack_params)
        esg_free(params);
    return rc;
}

esg_status esg_application_call_json(esg_application *app, const char *method_name,
                                     const char *args_json, size_t args_len,
                                     const char *kwargs_json, size_t kwargs_len, char **result,
                                     size_t *result_len, esg_error *err)
{
    return app_call_json(app, NULL, method_name, args_json, args_len, kwargs_json, kwargs_len,
                         result, result_len, err);
}

esg_status app_call_json(esg_application *app, app_command *command, const char *method_name,
                         const char *args_json, size_t args_len, const char *kwargs_json,
                         size_t kwargs_len, char **result, size_t *result_len, esg_error *err)
{
    esg_value *args = NULL, *kwargs = NULL, *value = NULL;
    *result = NULL;
    esg_status rc = ESG_OK;
    if (args_json != NULL && args_len > 0)
        rc = esg_json_decode(args_json, args_len, &args, err);
    if (rc == ESG_OK && kwargs_json != NULL && kwargs_len > 0)
        rc = esg_json_decode(kwargs_json, kwargs_len, &kwargs, err);
    if (rc == ESG_OK)
        rc = app_call(app, method_name, args, kwargs, command, &value, err);
    if (rc == ESG_OK && command != NULL && command->reply != NULL) {
        *result = command->reply; /* what was recorded, and what a repeat will be sent */
        *result_len = command->reply_len;
        command->reply = NULL;
    } else if (rc == ESG_OK) {
        rc = esg_json_encode(value, result, result_len, err);
    }
    esg_value_free(args);
    esg_value_free(kwargs);
    esg_value_free(value);
    return rc;
}

bool esg_application_type_has_policy(const esg_application_type *type)
{
    return type->policy != NULL || type->process != NULL;
}
