/* Binding call arguments to parameter names as Python does, so that a method
 * can be called positionally or by keyword, with the same errors a Python
 * application would give (minus the `self` it counts). */
#include "application/arguments.h"

#include <string.h>

esg_status esg_bind_arguments(const esg_method *method, const esg_value *args,
                              const esg_value *kwargs, esg_value **params, esg_error *err)
{
    if (args != NULL && esg_value_type(args) != ESG_TYPE_ARRAY)
        return esg_error_set(err, ESG_EINVAL, "%s(): args must be a JSON array, not %s",
                             method->name, esg_type_name(esg_value_type(args)));
    if (kwargs != NULL && esg_value_type(kwargs) != ESG_TYPE_OBJECT)
        return esg_error_set(err, ESG_EINVAL, "%s(): kwargs must be a JSON object, not %s",
                             method->name, esg_type_name(esg_value_type(kwargs)));
    for (size_t i = 0; i < method->n_params; i++)
        params[i] = NULL;

    size_t n_args = esg_array_len(args);
    if (n_args > method->n_params) {
        if (method->n_params == method->n_required)
            return esg_error_set(err, ESG_EINVAL,
                                 "%s() takes %zu positional argument%s but %zu %s given",
                                 method->name, method->n_params, method->n_params == 1 ? "" : "s",
                                 n_args, n_args == 1 ? "was" : "were");
        return esg_error_set(err, ESG_EINVAL,
                             "%s() takes from %zu to %zu positional arguments but %zu %s given",
                             method->name, method->n_required, method->n_params, n_args,
                             n_args == 1 ? "was" : "were");
    }
    for (size_t i = 0; i < n_args; i++)
        params[i] = esg_array_get(args, i);

    for (size_t k = 0; k < esg_object_len(kwargs); k++) {
        const char *key = esg_object_key_at(kwargs, k);
        size_t i = 0;
        while (i < method->n_params && strcmp(method->params[i], key) != 0)
            i++;
        if (i == method->n_params)
            return esg_error_set(err, ESG_EINVAL, "%s() got an unexpected keyword argument '%s'",
                                 method->name, key);
        if (params[i] != NULL)
            return esg_error_set(err, ESG_EINVAL, "%s() got multiple values for argument '%s'",
                                 method->name, key);
        params[i] = esg_object_value_at(kwargs, k);
    }

    size_t n_missing = 0;
    const char *first_missing = NULL;
    for (size_t i = 0; i < method->n_required; i++) {
        if (params[i] == NULL) {
            if (n_missing++ == 0)
                first_missing = method->params[i];
        }
    }
    if (n_missing == 1)
        return esg_error_set(err, ESG_EINVAL, "%s() missing 1 required positional argument: '%s'",
                             method->name, first_missing);
    if (n_missing > 1)
        return esg_error_set(err, ESG_EINVAL,
                             "%s() missing %zu required positional arguments, the first '%s'",
                             method->name, n_missing, first_missing);
    return ESG_OK;
}
