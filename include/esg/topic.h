/* Topics: "module:Name" strings that name an application type or a system.
 * Registered ones (the console programs register the example,
 * "eventsourcing_grpc.example:...") are found in a registry; others are loaded
 * from a shared library a user built outside
 * this project: "<module>.so" or "lib<module>.so" in the folders of
 * ESG_TOPIC_PATH (colon-separated), then by the dynamic loader's own search,
 * and the symbol Name in it (an esg_application_type or an esg_system_def). */
#ifndef ESG_TOPIC_H
#define ESG_TOPIC_H

#include "esg/application.h"
#include "esg/env.h"
#include "esg/system.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Resolves an application topic. env (borrowed, may be NULL for the process
 * environment) gives ESG_TOPIC_PATH. A malformed topic is ESG_EINVAL; one that
 * names nothing, or something that is not an application type, is
 * ESG_ENOTFOUND, with what was tried in the message. *out is borrowed and
 * stays valid until the process exits (libraries are never unloaded). */
esg_status esg_topic_resolve_application(const char *topic, const esg_env *env,
                                         const esg_application_type **out, esg_error *err);

/* The same for a system topic. */
esg_status esg_topic_resolve_system(const char *topic, const esg_env *env,
                                    const esg_system_def **out, esg_error *err);

/* Registers an application type or a system (borrowed; must live as long as the process) under
 * its own topic, so that resolving it finds it without loading a library; the other names of a
 * registered module then do not exist. Registering the same object again does nothing; another
 * object under a registered topic is ESG_EINVAL. Thread-safe. */
esg_status esg_topic_register_application(const esg_application_type *type, esg_error *err);
esg_status esg_topic_register_system(const esg_system_def *def, esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
