/* Libraries loaded at run time (see dynamic_library.h). */
#include "core/dynamic_library.h"

#include <dlfcn.h>
#include <stdio.h>

bool esg_dynamic_library_load(const char *soname, const char *const *names, void **found, size_t n,
                              char *why, size_t why_size)
{
    void *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(why, why_size, "%s", dlerror());
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((found[i] = dlsym(handle, names[i])) == NULL) {
            snprintf(why, why_size, "%s has no %s", soname, names[i]);
            return false;
        }
    return true;
}
