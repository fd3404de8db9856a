/* Topic strings ("module:Name") as a runner or a server's command line gets
 * them: esg_topic_resolve_application and _system. ESG_TOPIC_PATH is an empty
 * folder and dlopen is wrapped (-Wl,--wrap=dlopen) so that nothing is ever
 * loaded; the wrapper checks instead that every name the loader would be
 * asked for stays inside that folder or is a bare file name. */
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdlib.h>

#include "esg/example.h"
#include <unistd.h>

#include "esg/topic.h"

void *__wrap_dlopen(const char *path, int flags);

static char topic_dir[64];
static esg_env *env;

void *__wrap_dlopen(const char *path, int flags)
{
    (void)flags;
    size_t dir_len = strlen(topic_dir);
    const char *name = path;
    if (strncmp(path, topic_dir, dir_len) == 0 && path[dir_len] == '/')
        name = path + dir_len + 1;
    FUZZ_CHECK(strchr(name, '/') == NULL && strcmp(name, "..") != 0 && name[0] != '\0',
               "a topic makes the loader open %s", path);
    return NULL; /* as if nothing were found */
}

static void remove_topic_dir(void)
{
    rmdir(topic_dir);
}

static void set_up(void)
{
    snprintf(topic_dir, sizeof topic_dir, "/tmp/esg-fuzz-topic-XXXXXX");
    if (mkdtemp(topic_dir) == NULL)
        abort();
    atexit(remove_topic_dir);
    env = esg_env_new();
    if (env == NULL || esg_env_set(env, "ESG_TOPIC_PATH", topic_dir, NULL) != ESG_OK ||
        esg_example_register(NULL) != ESG_OK) /* a registered module, as the programs have */
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (env == NULL)
        set_up();
    char *topic = fuzz_strndup(data, size);
    esg_error err = {0};
    const esg_application_type *type = NULL;
    const esg_system_def *system = NULL;
    esg_status rc = esg_topic_resolve_application(topic, env, &type, &err);
    FUZZ_CHECK((rc == ESG_OK) == (type != NULL), "status %d with type %p", rc, (void *)type);
    FUZZ_CHECK(rc == ESG_OK || err.message[0] != '\0', "a failure without a message");
    if (type != NULL)
        FUZZ_CHECK(strcmp(type->topic, topic) == 0, "%s resolves to %s", topic, type->topic);
    rc = esg_topic_resolve_system(topic, env, &system, &err);
    FUZZ_CHECK((rc == ESG_OK) == (system != NULL), "status %d with system %p", rc, (void *)system);
    free(topic);
    return 0;
}
