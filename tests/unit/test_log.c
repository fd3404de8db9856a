/* Tests of the log: levels, the <APP>_ prefix, refused values, and JSON lines that stay one
 * valid object per line whatever the message holds. Output is caught by pointing stdout and
 * stderr at files for the time of a call. */
#include "testutil.h"
#include "unit_tests.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esg/log.h"

/* The output of the lines logged between catch_start and catch_end. */
typedef struct {
    FILE *files[2]; /* what stdout and stderr point at meanwhile */
    int saved[2];   /* the descriptors they had */
    char *text[2];  /* caught text of stdout and stderr (malloc'ed) */
} caught_output;

static void catch_start(caught_output *out)
{
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < 2; i++) {
        out->files[i] = tmpfile();
        assert_non_null(out->files[i]);
        out->saved[i] = dup(i + 1);
        assert_true(out->saved[i] >= 0);
        assert_true(dup2(fileno(out->files[i]), i + 1) >= 0);
    }
}

static void catch_end(caught_output *out)
{
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < 2; i++) {
        dup2(out->saved[i], i + 1);
        close(out->saved[i]);
        long len = ftell(out->files[i]);
        out->text[i] = calloc(1, (size_t)len + 1);
        assert_non_null(out->text[i]);
        rewind(out->files[i]);
        assert_int_equal(fread(out->text[i], 1, (size_t)len, out->files[i]), (size_t)len);
        fclose(out->files[i]);
    }
}

static void caught_free(caught_output *out)
{
    free(out->text[0]);
    free(out->text[1]);
}

/* Configures the log from settings "KEY=VALUE" (n of them), for app_name. */
static esg_status configure(const char *app_name, const char *const *settings, size_t n,
                            esg_error *err)
{
    esg_env *env = esg_env_new();
    assert_non_null(env);
    for (size_t i = 0; i < n; i++) {
        char key[64];
        const char *equals = strchr(settings[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(equals - settings[i]), settings[i]);
        assert_esg_ok(esg_env_set(env, key, equals + 1, err), err);
    }
    esg_status rc = esg_log_configure(env, app_name, err);
    esg_env_free(env);
    return rc;
}

static void reset_log(void)
{
    esg_error err;
    assert_esg_ok(configure(NULL, NULL, 0, &err), &err);
}

void test_levels_streams_and_prefixed_settings(void **state)
{
    (void)state;
    esg_error err;
    const char *settings[] = {"LOG_LEVEL=debug", "ORDERS_LOG_LEVEL=Warning"};
    assert_esg_ok(configure("Orders", settings, 2, &err), &err);
    assert_false(esg_log_is_on(ESG_LOG_INFO));
    caught_output out;
    catch_start(&out);
    esg_log(ESG_LOG_INFO, "Orders", "not written");
    esg_log(ESG_LOG_WARNING, "Orders", "written %d", 42);
    esg_log(ESG_LOG_ERROR, NULL, "the process's own");
    catch_end(&out);
    assert_string_equal(out.text[0], "");
    assert_non_null(strstr(out.text[1], "Z warning Orders: written 42\n"));
    assert_non_null(strstr(out.text[1], "Z error the process's own\n"));
    assert_int_equal(out.text[1][4], '-'); /* starts with the date */
    caught_free(&out);

    /* Info and debug go to stdout. */
    assert_esg_ok(configure("Payments", settings, 2, &err), &err);
    catch_start(&out);
    esg_log(ESG_LOG_DEBUG, "Payments", "a request");
    catch_end(&out);
    assert_non_null(strstr(out.text[0], " debug Payments: a request\n"));
    assert_string_equal(out.text[1], "");
    caught_free(&out);
    reset_log();
}

void test_bad_values_are_refused_naming_the_key(void **state)
{
    (void)state;
    esg_error err;
    const char *loud[] = {"ORDERS_LOG_LEVEL=loud"};
    assert_int_equal(configure("Orders", loud, 1, &err), ESG_ECONFIG);
    assert_string_equal(err.message,
                        "ORDERS_LOG_LEVEL is 'loud': error, warning, info or debug expected");
    const char *xml[] = {"LOG_FORMAT=xml"};
    assert_int_equal(configure("Orders", xml, 1, &err), ESG_ECONFIG);
    assert_string_equal(err.message, "LOG_FORMAT is 'xml': text or json expected");
    /* A refused setting changes nothing: info is still on, as by default. */
    assert_true(esg_log_is_on(ESG_LOG_INFO));
    assert_false(esg_log_is_on(ESG_LOG_DEBUG));
}

void test_json_lines_stay_one_object_per_line(void **state)
{
    (void)state;
    esg_error err;
    const char *settings[] = {"LOG_FORMAT=JSON"};
    assert_esg_ok(configure("Orders", settings, 1, &err), &err);
    char *long_message = malloc(3001);
    assert_non_null(long_message);
    memset(long_message, 'x', 3000);
    long_message[3000] = '\0';
    caught_output out;
    catch_start(&out);
    esg_log(ESG_LOG_INFO, "Orders", "quotes \" and\na newline");
    esg_log(ESG_LOG_INFO, NULL, "not UTF-8: \xff\xfe end");
    esg_log(ESG_LOG_INFO, "Orders", "%s", long_message);
    catch_end(&out);
    free(long_message);
    const char *expected[] = {"quotes \" and\na newline", "not UTF-8: ?? end", NULL};
    const char *line = out.text[0];
    for (size_t i = 0; i < 3; i++) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        json_error_t json_err;
        json_t *object = json_loadb(line, (size_t)(end - line), 0, &json_err);
        if (object == NULL)
            fail_msg("line %zu is not JSON: %s", i + 1, json_err.text);
        assert_string_equal(json_string_value(json_object_get(object, "level")), "info");
        assert_true(json_is_string(json_object_get(object, "time")));
        const char *message = json_string_value(json_object_get(object, "message"));
        assert_non_null(message);
        if (expected[i] != NULL)
            assert_string_equal(message, expected[i]);
        else /* cut to the line's bound, still whole JSON */
            assert_true(strlen(message) > 500 && strlen(message) < 3000);
        json_t *app = json_object_get(object, "app");
        assert_true(i == 1 ? json_is_null(app) : json_is_string(app));
        json_decref(object);
        line = end + 1;
    }
    assert_string_equal(line, "");
    assert_string_equal(out.text[1], "");
    caught_free(&out);
    reset_log();
}
