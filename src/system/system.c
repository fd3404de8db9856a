/* The graph of a system: applications as nodes, and an edge (leader, follower)
 * for each pair of neighbours in a pipe, with the queries Python's System
 * answers (leads, follows, leaders, followers, leaders_only, singles). Every
 * list is computed once here and then only read. */
#include "esg/system.h"

#include "core/settings.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/alloc.h"

typedef struct system_edge {
    size_t leader;   /* index into nodes */
    size_t follower; /* index into nodes */
} system_edge;

typedef struct system_node {
    const esg_application_type *type; /* borrowed from the def */
    const char **leads;               /* its followers in edge order, NULL-terminated */
    size_t n_leads;                   /* names in leads */
    const char **follows;             /* its leaders in edge order, NULL-terminated */
    size_t n_follows;                 /* names in follows */
} system_node;

struct esg_system {
    const esg_system_def *def; /* borrowed: the types and names live there */
    system_node *nodes;        /* in order of first appearance */
    size_t n_nodes;            /* distinct application names */
    system_edge *edges;        /* deduplicated, in order of first appearance */
    size_t n_edges;            /* distinct (leader, follower) pairs */
    /* One block holding every list below and the nodes' leads and follows;
     * each list ends with NULL, so none is NULL itself, even when empty. */
    const char **names;
    const char **node_names;   /* every node */
    const char **leaders;      /* nodes that lead someone */
    size_t n_leaders;          /* names in leaders */
    const char **followers;    /* nodes that follow someone */
    size_t n_followers;        /* names in followers */
    const char **leaders_only; /* leaders that follow no one */
    size_t n_leaders_only;     /* names in leaders_only */
    const char **singles;      /* nodes that neither lead nor follow */
    size_t n_singles;          /* names in singles */
};

/* Returned for unknown names, so that callers can always iterate. */
static const char *const no_names[1] = {NULL};

static size_t find_node(const esg_system *system, const char *name)
{
    for (size_t i = 0; i < system->n_nodes; i++)
        if (strcmp(system->nodes[i].type->name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* The counts of a declared system's lists: given, or up to their ends (ESG_SYSTEM, ESG_PIPE). */
static size_t count_pipes(const esg_system_def *def)
{
    size_t n = def->n_pipes;
    if (n == 0)
        while (def->pipes != NULL && def->pipes[n].apps != NULL)
            n++;
    return n;
}

static size_t count_apps(const esg_pipe *pipe)
{
    size_t n = pipe->n_apps;
    if (n == 0)
        while (pipe->apps != NULL && pipe->apps[n] != NULL)
            n++;
    return n;
}

static esg_status check_def(const esg_system_def *def, size_t *n_apps, esg_error *err)
{
    if (def == NULL)
        return esg_error_set(err, ESG_EINVAL, "no system definition");
    if (def->magic != ESG_SYSTEM_DEF_MAGIC)
        return esg_error_set(err, ESG_EINVAL, "not a system definition (bad magic 0x%08x)",
                             (unsigned)def->magic);
    if (def->n_pipes > 0 && def->pipes == NULL)
        return esg_error_set(err, ESG_EINVAL, "system has %zu pipes but no pipe array",
                             def->n_pipes);
    size_t total = 0;
    for (size_t p = 0; p < count_pipes(def); p++) {
        const esg_pipe *pipe = &def->pipes[p];
        if (pipe->n_apps > 0 && pipe->apps == NULL)
            return esg_error_set(err, ESG_EINVAL, "pipe %zu has %zu applications but no array", p,
                                 pipe->n_apps);
        for (size_t a = 0; a < count_apps(pipe); a++) {
            const esg_application_type *type = pipe->apps[a];
            if (type == NULL)
                return esg_error_set(err, ESG_EINVAL, "pipe %zu: application %zu is NULL", p, a);
            if (type->magic != ESG_APPLICATION_TYPE_MAGIC)
                return esg_error_set(err, ESG_EINVAL,
                                     "pipe %zu: application %zu is not an application type", p, a);
            if (type->name == NULL || type->name[0] == '\0')
                return esg_error_set(err, ESG_EINVAL, "pipe %zu: application %zu has no name", p,
                                     a);
        }
        /* Guards the list sizes below against overflow; real systems are tiny. */
        if (count_apps(pipe) > SIZE_MAX / 16 - total)
            return esg_error_set(err, ESG_EINVAL, "system too large");
        total += count_apps(pipe);
    }
    *n_apps = total;
    return ESG_OK;
}

/* Adds the nodes and edges of every pipe, deduplicated in order of first appearance. */
static esg_status add_nodes_and_edges(esg_system *system, esg_error *err)
{
    const esg_system_def *def = system->def;
    for (size_t p = 0; p < count_pipes(def); p++) {
        const esg_pipe *pipe = &def->pipes[p];
        size_t previous = SIZE_MAX;
        for (size_t a = 0; a < count_apps(pipe); a++) {
            const esg_application_type *type = pipe->apps[a];
            size_t node = find_node(system, type->name);
            if (node == SIZE_MAX) {
                node = system->n_nodes++;
                system->nodes[node].type = type;
            } else if (system->nodes[node].type != type) {
                /* Python would silently keep the last one; two types behind one
                 * name would run the wrong code, so refuse. */
                return esg_error_set(
                    err, ESG_EINVAL,
                    "two different application types are named %s (topics %s "
                    "and %s)",
                    type->name,
                    system->nodes[node].type->topic ? system->nodes[node].type->topic : "(none)",
                    type->topic ? type->topic : "(none)");
            }
            if (previous != SIZE_MAX) {
                bool is_known = false;
                for (size_t e = 0; e < system->n_edges && !is_known; e++)
                    is_known =
                        system->edges[e].leader == previous && system->edges[e].follower == node;
                if (!is_known)
                    system->edges[system->n_edges++] = (system_edge){previous, node};
            }
            previous = node;
        }
    }
    return ESG_OK;
}

/* Lays out every name list in the one block system->names. */
static void fill_lists(esg_system *system)
{
    const char **next = system->names;

    system->node_names = next;
    for (size_t i = 0; i < system->n_nodes; i++)
        *next++ = system->nodes[i].type->name;
    *next++ = NULL;

    for (size_t i = 0; i < system->n_nodes; i++) {
        system_node *node = &system->nodes[i];
        node->leads = next;
        for (size_t e = 0; e < system->n_edges; e++)
            if (system->edges[e].leader == i)
                next[node->n_leads++] = system->nodes[system->edges[e].follower].type->name;
        next += node->n_leads;
        *next++ = NULL;
        node->follows = next;
        for (size_t e = 0; e < system->n_edges; e++)
            if (system->edges[e].follower == i)
                next[node->n_follows++] = system->nodes[system->edges[e].leader].type->name;
        next += node->n_follows;
        *next++ = NULL;
    }

    /* Roles in node order, that is in order of first appearance. */
    system->leaders = next;
    for (size_t i = 0; i < system->n_nodes; i++)
        if (system->nodes[i].n_leads > 0)
            next[system->n_leaders++] = system->nodes[i].type->name;
    next += system->n_leaders;
    *next++ = NULL;

    system->followers = next;
    for (size_t i = 0; i < system->n_nodes; i++)
        if (system->nodes[i].n_follows > 0)
            next[system->n_followers++] = system->nodes[i].type->name;
    next += system->n_followers;
    *next++ = NULL;

    system->leaders_only = next;
    for (size_t i = 0; i < system->n_nodes; i++)
        if (system->nodes[i].n_leads > 0 && system->nodes[i].n_follows == 0)
            next[system->n_leaders_only++] = system->nodes[i].type->name;
    next += system->n_leaders_only;
    *next++ = NULL;

    system->singles = next;
    for (size_t i = 0; i < system->n_nodes; i++)
        if (system->nodes[i].n_leads == 0 && system->nodes[i].n_follows == 0)
            next[system->n_singles++] = system->nodes[i].type->name;
    next += system->n_singles;
    *next = NULL;
}

esg_status esg_system_new(const esg_system_def *def, esg_system **out, esg_error *err)
{
    esg_system *system = NULL;
    size_t n_apps = 0, n_names = 0;
    esg_status rc = ESG_OK;

    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "esg_system_new needs somewhere to put the system");
    *out = NULL;
    rc = check_def(def, &n_apps, err);
    if (rc != ESG_OK)
        goto out;

    system = esg_calloc(1, sizeof *system);
    if (system == NULL)
        goto nomem;
    system->def = def;
    /* At most one node per application mentioned, and one edge fewer (+1 so
     * that an empty system still allocates). */
    system->nodes = esg_calloc(n_apps + 1, sizeof *system->nodes);
    system->edges = esg_calloc(n_apps + 1, sizeof *system->edges);
    if (system->nodes == NULL || system->edges == NULL)
        goto nomem;
    rc = add_nodes_and_edges(system, err);
    if (rc != ESG_OK)
        goto out;

    /* Nodes and the four roles (each at most n_nodes + NULL), plus each
     * node's leads and follows (one name per edge each, + NULL). */
    n_names = 5 * (system->n_nodes + 1) + 2 * system->n_edges + 2 * system->n_nodes;
    system->names = esg_calloc(n_names, sizeof *system->names);
    if (system->names == NULL)
        goto nomem;
    fill_lists(system);

    *out = system;
    system = NULL;
    goto out;
nomem:
    rc = esg_error_set(err, ESG_ENOMEM, "out of memory building a system");
out:
    esg_system_free(system);
    return rc;
}

void esg_system_free(esg_system *system)
{
    if (system == NULL)
        return;
    esg_free(system->names);
    esg_free(system->edges);
    esg_free(system->nodes);
    esg_free(system);
}

static const char *const *give(const char *const *list, size_t count, size_t *n)
{
    if (n != NULL)
        *n = count;
    return list;
}

const char *const *esg_system_nodes(const esg_system *system, size_t *n)
{
    return give(system->node_names, system->n_nodes, n);
}

const char *const *esg_system_leaders(const esg_system *system, size_t *n)
{
    return give(system->leaders, system->n_leaders, n);
}

const char *const *esg_system_followers(const esg_system *system, size_t *n)
{
    return give(system->followers, system->n_followers, n);
}

const char *const *esg_system_leaders_only(const esg_system *system, size_t *n)
{
    return give(system->leaders_only, system->n_leaders_only, n);
}

const char *const *esg_system_singles(const esg_system *system, size_t *n)
{
    return give(system->singles, system->n_singles, n);
}

const char *const *esg_system_leads(const esg_system *system, const char *name, size_t *n)
{
    size_t node = name == NULL ? SIZE_MAX : find_node(system, name);
    if (node == SIZE_MAX)
        return give(no_names, 0, n);
    return give(system->nodes[node].leads, system->nodes[node].n_leads, n);
}

const char *const *esg_system_follows(const esg_system *system, const char *name, size_t *n)
{
    size_t node = name == NULL ? SIZE_MAX : find_node(system, name);
    if (node == SIZE_MAX)
        return give(no_names, 0, n);
    return give(system->nodes[node].follows, system->nodes[node].n_follows, n);
}

size_t esg_system_n_edges(const esg_system *system)
{
    return system->n_edges;
}

void esg_system_edge(const esg_system *system, size_t i, const char **leader, const char **follower)
{
    /* Out of range gives NULLs rather than reading past the array. */
    const char *leader_name = NULL, *follower_name = NULL;
    if (i < system->n_edges) {
        leader_name = system->nodes[system->edges[i].leader].type->name;
        follower_name = system->nodes[system->edges[i].follower].type->name;
    }
    if (leader != NULL)
        *leader = leader_name;
    if (follower != NULL)
        *follower = follower_name;
}

const esg_application_type *esg_system_get_type(const esg_system *system, const char *name)
{
    size_t node = name == NULL ? SIZE_MAX : find_node(system, name);
    return node == SIZE_MAX ? NULL : system->nodes[node].type;
}

/* ---- Persistence of a whole system ---- */

/* Whether an SQLite database name gives each connection a database of its own: then no two
 * applications can share it. */
static bool is_private_memory(const char *db_name)
{
    if (strcmp(db_name, ":memory:") == 0)
        return true;
    bool is_memory = strncmp(db_name, "file:", 5) == 0 && (strstr(db_name, ":memory:") != NULL ||
                                                           strstr(db_name, "mode=memory") != NULL);
    return is_memory && strstr(db_name, "cache=shared") == NULL;
}

/* Whether two SQLite database names are one database: the same text, or the same file. */
static bool is_same_database(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Whether the other application's database name comes from a key of its own
 * (<OTHER>_SQLITE_DBNAME), so that it is meant for this machine too. */
static bool has_own_db_name(const esg_env *env, const char *app_name)
{
    esg_setting s;
    esg_setting_lookup(env, app_name, "SQLITE_DBNAME", &s);
    return s.value != NULL && strcmp(s.key, "SQLITE_DBNAME") != 0;
}

esg_status esg_system_check_persistence(const esg_system *system, const esg_env *env,
                                        const char *app_name, esg_error *err)
{
    const char **db_names = esg_calloc(system->n_nodes ? system->n_nodes : 1, sizeof *db_names);
    if (db_names == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory checking the system's persistence");
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < system->n_nodes; i++) {
        const char *backend = NULL;
        rc = esg_recorder_locate(env, system->node_names[i], &backend, &db_names[i], err);
        /* A node does not open its peers' databases: their settings are not its concern. */
        if (rc != ESG_OK && app_name != NULL && strcmp(app_name, system->node_names[i]) != 0) {
            rc = ESG_OK;
            db_names[i] = NULL;
        }
        if (rc != ESG_OK || db_names[i] == NULL || is_private_memory(db_names[i]))
            continue;
        for (size_t k = 0; rc == ESG_OK && k < i; k++) {
            const char *first = system->node_names[k], *second = system->node_names[i];
            bool is_mine = app_name == NULL ||
                           (strcmp(app_name, first) == 0 && has_own_db_name(env, second)) ||
                           (strcmp(app_name, second) == 0 && has_own_db_name(env, first));
            if (!is_mine || db_names[k] == NULL || !is_same_database(db_names[i], db_names[k]))
                continue;
            char *key = esg_env_prefixed_key(second, "SQLITE_DBNAME");
            rc = esg_error_set(err, ESG_ECONFIG,
                               "%s and %s would share one SQLite table (stored_events in "
                               "'%.200s'), mixing their events: give each a file of its own "
                               "(%s, and so on)",
                               first, second, db_names[i], key != NULL ? key : "SQLITE_DBNAME");
            esg_free(key);
        }
    }
    esg_free(db_names);
    return rc;
}
