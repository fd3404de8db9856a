/* The scalar parsers behind the custom JSON types: UUIDs, ISO datetimes and
 * decimals. The input is split at its first two newlines into one text for
 * each, and the whole input (newlines and all) is tried on each as well.
 * What parses must print in a form that parses back to the same thing. */
#include "fuzz_common.h"

#include "esg/value.h"

static void check_uuid(const char *text, size_t len)
{
    esg_uuid uuid, again;
    char hex[ESG_UUID_HEX_SIZE], str[ESG_UUID_STR_SIZE];
    if (esg_uuid_parse(text, len, &uuid, NULL) != ESG_OK)
        return;
    esg_uuid_hex(&uuid, hex);
    esg_uuid_str(&uuid, str);
    FUZZ_CHECK(esg_uuid_parse(hex, strlen(hex), &again, NULL) == ESG_OK &&
                   esg_uuid_equal(&uuid, &again),
               "hex %s does not parse back", hex);
    FUZZ_CHECK(esg_uuid_parse(str, strlen(str), &again, NULL) == ESG_OK &&
                   esg_uuid_equal(&uuid, &again),
               "%s does not parse back", str);
}

static void check_datetime(const char *text, size_t len)
{
    esg_datetime dt, again;
    char iso[ESG_DATETIME_ISO_SIZE], iso_again[ESG_DATETIME_ISO_SIZE];
    if (esg_datetime_parse(text, len, &dt, NULL) != ESG_OK)
        return;
    (void)esg_datetime_to_unix_us(&dt); /* for the sanitizers: no overflow at the extremes */
    size_t iso_len = esg_datetime_format(&dt, iso);
    FUZZ_CHECK(iso_len < sizeof iso && strlen(iso) == iso_len, "bad format length %zu", iso_len);
    esg_error err = {0};
    FUZZ_CHECK(esg_datetime_parse(iso, iso_len, &again, &err) == ESG_OK,
               "its isoformat %s does not parse (%s)", iso, err.message);
    FUZZ_CHECK(esg_datetime_equal(&dt, &again), "%s parses to another datetime", iso);
    esg_datetime_format(&again, iso_again);
    FUZZ_CHECK(strcmp(iso, iso_again) == 0, "isoformat not a fixed point: %s <> %s", iso,
               iso_again);
}

static void check_decimal(const char *text)
{
    esg_value *decimal = esg_value_decimal(text, NULL);
    if (decimal == NULL)
        return;
    const char *canonical = esg_value_as_decimal(decimal);
    FUZZ_CHECK(canonical != NULL, "a decimal without text");
    esg_error err = {0};
    esg_value *again = esg_value_decimal(canonical, &err);
    FUZZ_CHECK(again != NULL, "its canonical form %.100s does not parse (%s)", canonical,
               err.message);
    FUZZ_CHECK(strcmp(canonical, esg_value_as_decimal(again)) == 0,
               "canonical form not a fixed point: %.100s <> %.100s", canonical,
               esg_value_as_decimal(again));
    esg_value_free(decimal);
    esg_value_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    check_uuid(text, size);
    check_datetime(text, size);
    check_decimal(text);

    /* One part per parser; a part ends at a newline (or the end). */
    char *parts[3] = {text, NULL, NULL};
    size_t lens[3] = {size, 0, 0};
    for (int i = 0; i < 2 && parts[i] != NULL; i++) {
        char *newline = memchr(parts[i], '\n', lens[i]);
        if (newline == NULL)
            break;
        parts[i + 1] = newline + 1;
        lens[i + 1] = lens[i] - (size_t)(newline + 1 - parts[i]);
        lens[i] = (size_t)(newline - parts[i]);
        *newline = '\0';
    }
    if (parts[1] != NULL) {
        check_uuid(parts[0], lens[0]);
        check_datetime(parts[1], lens[1]);
    }
    if (parts[2] != NULL)
        check_decimal(parts[2]);
    free(text);
    return 0;
}
