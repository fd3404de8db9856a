/* Helpers shared by the test programs (see testutil.h). */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

json_t *testutil_load_vector(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ESG_TEST_VECTORS_DIR, name);
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    if (root == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, error.text, error.line);
    return root;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *testutil_unhex(const char *hex, size_t *len)
{
    size_t hex_len = strlen(hex);
    if (hex_len % 2 != 0)
        fail_msg("odd hex length %zu", hex_len);
    uint8_t *bytes = malloc(hex_len / 2 + 1);
    assert_non_null(bytes);
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("bad hex at %zu", 2 * i);
        bytes[i] = (uint8_t)(hi * 16 + lo);
    }
    bytes[hex_len / 2] = 0;
    *len = hex_len / 2;
    return bytes;
}

char *testutil_make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char template[1024];
    snprintf(template, sizeof template, "%s/esg-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(template);
    if (dir == NULL)
        fail_msg("mkdtemp failed");
    return strdup(dir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testutil_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether entry ("KEY=value") has the key of one of the n entries or names. */
static bool has_key_of(const char *entry, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t key_len = strcspn(keys[i], "=");
        if (strncmp(entry, keys[i], key_len) == 0 && entry[key_len] == '=')
            return true;
    }
    return false;
}

char **testutil_environment_with(const char *const *settings, size_t n, const char *const *unset,
                                 size_t n_unset)
{
    size_t n_environ = 0;
    while (environ[n_environ] != NULL)
        n_environ++;
    char **envp = calloc(n_environ + n + 1, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n_environ; i++)
        if (!has_key_of(environ[i], settings, n) && !has_key_of(environ[i], unset, n_unset))
            envp[k++] = environ[i];
    for (size_t j = 0; j < n; j++)
        envp[k++] = (char *)settings[j];
    return envp;
}
