/* Binding of positional and keyword arguments to a method's parameter names,
 * with the checks and messages of a Python call. Internal to the application
 * layer. */
#ifndef ESG_ARGUMENTS_H
#define ESG_ARGUMENTS_H

#include "esg/application.h"

/* Fills params[0..method->n_params) with borrowed values from args (an array
 * or NULL) and kwargs (an object or NULL); optional parameters not given are
 * NULL. Misfits are ESG_EINVAL with Python's wording. */
esg_status esg_bind_arguments(const esg_method *method, const esg_value *args,
                              const esg_value *kwargs, esg_value **params, esg_error *err);

#endif
