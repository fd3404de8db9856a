/* UUIDs: generation (v4 from the kernel's random bytes, v5 SHA-1 in NAMESPACE_URL with
 * libuuid), and the text forms Python's uuid.UUID reads and writes. */
#include "esg/value.h"

#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

/* Like Python's uuid4(), from os.urandom. getrandom() directly: libuuid's uuid_generate_random
 * also reseeds libc's random() on every call (srand), a few thousand instructions per UUID. */
void esg_uuid4(esg_uuid *out)
{
    size_t n = 0;
    while (n < sizeof out->bytes) {
        ssize_t got = getrandom(out->bytes + n, sizeof out->bytes - n, 0);
        if (got <= 0) {
            uuid_generate_random(out->bytes); /* an old kernel without getrandom */
            return;
        }
        n += (size_t)got;
    }
    out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x40); /* version 4 */
    out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void esg_uuid5_url(esg_uuid *out, const char *name)
{
    /* libuuid's "url" template is RFC 4122's NAMESPACE_URL, as in Python. */
    const uuid_t *namespace_url = uuid_get_template("url");
    uuid_generate_sha1(out->bytes, *namespace_url, name, strlen(name));
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool has_prefix(const char *text, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(text, prefix, n) == 0;
}

esg_status esg_uuid_parse(const char *text, size_t text_len, esg_uuid *out, esg_error *err)
{
    /* The same steps as Python's UUID(hex=...): drop "urn:" and "uuid:",
     * strip braces, drop dashes, then exactly 32 hex digits. */
    const char *p = text;
    size_t len = text_len;
    if (has_prefix(p, len, "urn:")) {
        p += 4;
        len -= 4;
    }
    if (has_prefix(p, len, "uuid:")) {
        p += 5;
        len -= 5;
    }
    while (len > 0 && (*p == '{' || *p == '}')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == '{' || p[len - 1] == '}'))
        len--;
    uint8_t bytes[16];
    size_t n_digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '-')
            continue;
        int digit = hex_value(p[i]);
        if (digit < 0 || n_digits >= 32)
            goto bad;
        if (n_digits % 2 == 0)
            bytes[n_digits / 2] = (uint8_t)(digit << 4);
        else
            bytes[n_digits / 2] |= (uint8_t)digit;
        n_digits++;
    }
    if (n_digits != 32)
        goto bad;
    memcpy(out->bytes, bytes, sizeof bytes);
    return ESG_OK;
bad:
    return esg_error_set(err, ESG_EINVAL,
                         "badly formed hexadecimal UUID string: '%.*s' (expected 32 hex digits)",
                         (int)(text_len > 64 ? 64 : text_len), text);
}

void esg_uuid_hex(const esg_uuid *uuid, char out[ESG_UUID_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = digits[uuid->bytes[i] >> 4];
        out[2 * i + 1] = digits[uuid->bytes[i] & 0x0f];
    }
    out[32] = '\0';
}

void esg_uuid_str(const esg_uuid *uuid, char out[ESG_UUID_STR_SIZE])
{
    uuid_unparse_lower(uuid->bytes, out);
}

bool esg_uuid_equal(const esg_uuid *a, const esg_uuid *b)
{
    return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}
