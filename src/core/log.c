/* The log: a level and a format set once at start (esg_log_configure), then lines written whole
 * with one write each, so that lines of many threads never interleave. JSON lines are made by
 * jansson, which escapes what needs escaping. */
#include "esg/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/settings.h"

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static atomic_int log_level = ESG_LOG_INFO;
static atomic_bool is_json;

esg_status esg_log_configure(const esg_env *env, const char *app_name, esg_error *err)
{
    esg_setting level, format;
    esg_setting_lookup(env, app_name, "LOG_LEVEL", &level);
    esg_setting_lookup(env, app_name, "LOG_FORMAT", &format);
    int chosen = ESG_LOG_INFO;
    if (!esg_is_blank(level.value)) {
        chosen = -1;
        for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
            if (strcasecmp(level.value, level_names[i]) == 0)
                chosen = i;
        if (chosen < 0)
            return esg_error_set(err, ESG_ECONFIG,
                                 "%s is '%.60s': error, warning, info or debug expected", level.key,
                                 level.value);
    }
    bool json = false;
    if (!esg_is_blank(format.value)) {
        json = strcasecmp(format.value, "json") == 0;
        if (!json && strcasecmp(format.value, "text") != 0)
            return esg_error_set(err, ESG_ECONFIG, "%s is '%.60s': text or json expected",
                                 format.key, format.value);
    }
    atomic_store(&log_level, chosen);
    atomic_store(&is_json, json);
    return ESG_OK;
}

bool esg_log_is_on(esg_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

/* The time now as "2026-12-06T07:01:24.123456Z". */
static void format_now(char out[32])
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t len = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + len, 32 - len, ".%06ldZ", now.tv_nsec / 1000);
}

/* The JSON line of a log line, or NULL when out of memory. Free it with free(). */
static char *json_line(const char *time, const char *level, const char *app, const char *message)
{
    json_t *line = json_object();
    json_t *text = json_string(message);
    if (text == NULL) { /* not UTF-8: written with '?' for the bytes that are not ASCII */
        char copy[1024];
        size_t i = 0;
        for (; message[i] != '\0' && i + 1 < sizeof copy; i++)
            copy[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
        copy[i] = '\0';
        text = json_string(copy);
    }
    char *out = NULL;
    if (line != NULL && text != NULL && json_object_set_new(line, "time", json_string(time)) == 0 &&
        json_object_set_new(line, "level", json_string(level)) == 0 &&
        json_object_set_new(line, "app", app != NULL ? json_string(app) : json_null()) == 0 &&
        json_object_set(line, "message", text) == 0)
        out = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(text);
    json_decref(line);
    return out;
}

void esg_log(esg_log_level level, const char *app, const char *format, ...)
{
    if (!esg_log_is_on(level))
        return;
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    char time[32];
    format_now(time);
    char line[1400];
    int len = 0;
    if (atomic_load(&is_json)) {
        char *json = json_line(time, level_names[level], app, message);
        len = snprintf(line, sizeof line, "%s\n", json != NULL ? json : "{}");
        free(json);
    } else {
        len = snprintf(line, sizeof line, "%s %s %s%s%s\n", time, level_names[level],
                       app != NULL ? app : "", app != NULL ? ": " : "", message);
    }
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    /* One write of the whole line; stdout is flushed first so that its own output and the
     * log's keep their order. */
    FILE *stream = level <= ESG_LOG_WARNING ? stderr : stdout;
    fflush(stream);
    ssize_t n = write(fileno(stream), line, (size_t)len);
    (void)n; /* a log line that cannot be written has nowhere to be reported */
}
