/* Datetimes as Python's datetime writes them with isoformat() and reads them
 * with fromisoformat() (3.11), for the "datetime_iso" transcoding. */
#include "esg/value.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void esg_datetime_now_utc(esg_datetime *out)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    time_t seconds = now.tv_sec;
    gmtime_r(&seconds, &tm);
    *out = (esg_datetime){
        .year = tm.tm_year + 1900,
        .month = (uint8_t)(tm.tm_mon + 1),
        .day = (uint8_t)tm.tm_mday,
        .hour = (uint8_t)tm.tm_hour,
        .minute = (uint8_t)tm.tm_min,
        .second = (uint8_t)(tm.tm_sec > 59 ? 59 : tm.tm_sec), /* no leap seconds in Python */
        .microsecond = (uint32_t)(now.tv_nsec / 1000),
        .has_offset = true,
        .utc_offset_seconds = 0,
    };
}

static bool is_leap_year(int32_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int32_t year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/* Reads exactly n decimal digits at *p (advancing it); false if fewer. */
static bool read_digits(const char **p, const char *end, int n, int *out)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        value = value * 10 + (**p - '0');
        (*p)++;
    }
    *out = value;
    return true;
}

/* Reads ".f{1,9}" if present into microseconds (digits past 6 truncated). */
static bool read_fraction(const char **p, const char *end, uint32_t *microsecond)
{
    *microsecond = 0;
    if (*p >= end || (**p != '.' && **p != ','))
        return true;
    (*p)++;
    int n_digits = 0;
    uint32_t value = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (n_digits < 6)
            value = value * 10 + (uint32_t)(**p - '0');
        n_digits++;
        (*p)++;
    }
    if (n_digits == 0 || n_digits > 9)
        return false;
    for (int i = n_digits; i < 6; i++)
        value *= 10;
    *microsecond = value;
    return true;
}

/* Reads HH[:MM[:SS[.f]]] (or the basic HHMMSS form). */
static bool read_time(const char **p, const char *end, int *hour, int *minute, int *second,
                      uint32_t *microsecond)
{
    *minute = *second = 0;
    *microsecond = 0;
    if (!read_digits(p, end, 2, hour))
        return false;
    if (*p >= end || **p == '+' || **p == '-' || **p == 'Z' || **p == 'z')
        return true;
    bool extended = **p == ':';
    if (extended)
        (*p)++;
    if (!read_digits(p, end, 2, minute))
        return false;
    if (*p >= end || **p == '+' || **p == '-' || **p == 'Z' || **p == 'z')
        return true;
    if (extended) {
        if (**p != ':')
            return false;
        (*p)++;
    }
    if (!read_digits(p, end, 2, second))
        return false;
    return read_fraction(p, end, microsecond);
}

esg_status esg_datetime_parse(const char *text, size_t text_len, esg_datetime *out, esg_error *err)
{
    const char *p = text, *end = text + text_len;
    int year, month, day, hour = 0, minute = 0, second = 0;
    uint32_t microsecond = 0;
    bool has_offset = false;
    int32_t offset = 0;

    if (!read_digits(&p, end, 4, &year) || p >= end || *p++ != '-' ||
        !read_digits(&p, end, 2, &month) || p >= end || *p++ != '-' ||
        !read_digits(&p, end, 2, &day))
        goto bad;
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            goto bad;
        p++;
        if (!read_time(&p, end, &hour, &minute, &second, &microsecond))
            goto bad;
        if (p < end) {
            if (*p == 'Z' || *p == 'z') {
                p++;
                has_offset = true;
            } else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1;
                int off_hour, off_minute, off_second;
                uint32_t off_microsecond;
                if (!read_time(&p, end, &off_hour, &off_minute, &off_second, &off_microsecond))
                    goto bad;
                if (off_hour > 23 || off_minute > 59 || off_second > 59 || off_microsecond != 0)
                    goto bad;
                has_offset = true;
                offset = sign * (off_hour * 3600 + off_minute * 60 + off_second);
            }
        }
    }
    if (p != end)
        goto bad;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        goto bad;
    *out = (esg_datetime){
        .year = year,
        .month = (uint8_t)month,
        .day = (uint8_t)day,
        .hour = (uint8_t)hour,
        .minute = (uint8_t)minute,
        .second = (uint8_t)second,
        .microsecond = microsecond,
        .has_offset = has_offset,
        .utc_offset_seconds = offset,
    };
    return ESG_OK;
bad:
    return esg_error_set(err, ESG_EINVAL, "Invalid isoformat string: '%.*s'",
                         (int)(text_len > 64 ? 64 : text_len), text);
}

/* A datetime with a field out of its range, formatted as printf's %02u would. */
static size_t format_out_of_range(const esg_datetime *dt, char out[ESG_DATETIME_ISO_SIZE])
{
    int n = snprintf(out, ESG_DATETIME_ISO_SIZE, "%04d-%02u-%02uT%02u:%02u:%02u", (int)dt->year,
                     dt->month, dt->day, dt->hour, dt->minute, dt->second);
    if (dt->microsecond != 0)
        n += snprintf(out + n, (size_t)(ESG_DATETIME_ISO_SIZE - n), ".%06u",
                      (unsigned)dt->microsecond);
    if (dt->has_offset) {
        int32_t offset = dt->utc_offset_seconds;
        char sign = offset < 0 ? '-' : '+';
        if (offset < 0)
            offset = -offset;
        n += snprintf(out + n, (size_t)(ESG_DATETIME_ISO_SIZE - n), "%c%02d:%02d", sign,
                      (int)(offset / 3600), (int)(offset / 60 % 60));
        if (offset % 60 != 0)
            n +=
                snprintf(out + n, (size_t)(ESG_DATETIME_ISO_SIZE - n), ":%02d", (int)(offset % 60));
    }
    return (size_t)n;
}

/* Writes value (>= 0, < 10^width) as width digits with leading zeros; returns the end. */
static char *put_digits(char *out, uint32_t value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return out + width;
}

/* Without snprintf: every event recorded and every aggregate read formats its timestamp, and
 * snprintf's parsing of the format was a tenth of an in-memory call's instructions. */
size_t esg_datetime_format(const esg_datetime *dt, char out[ESG_DATETIME_ISO_SIZE])
{
    if (dt->year < 0 || dt->year > 9999 || dt->month > 99 || dt->day > 99 || dt->hour > 99 ||
        dt->minute > 99 || dt->second > 99 || dt->microsecond > 999999 ||
        dt->utc_offset_seconds < -359999 || dt->utc_offset_seconds > 359999)
        return format_out_of_range(dt, out); /* parse never makes one */
    char *p = put_digits(out, (uint32_t)dt->year, 4);
    *p++ = '-';
    p = put_digits(p, dt->month, 2);
    *p++ = '-';
    p = put_digits(p, dt->day, 2);
    *p++ = 'T';
    p = put_digits(p, dt->hour, 2);
    *p++ = ':';
    p = put_digits(p, dt->minute, 2);
    *p++ = ':';
    p = put_digits(p, dt->second, 2);
    if (dt->microsecond != 0) {
        *p++ = '.';
        p = put_digits(p, (uint32_t)dt->microsecond, 6);
    }
    if (dt->has_offset) {
        int32_t offset = dt->utc_offset_seconds;
        *p++ = offset < 0 ? '-' : '+';
        uint32_t magnitude = offset < 0 ? (uint32_t) - (int64_t)offset : (uint32_t)offset;
        p = put_digits(p, magnitude / 3600, 2);
        *p++ = ':';
        p = put_digits(p, magnitude / 60 % 60, 2);
        if (magnitude % 60 != 0) {
            *p++ = ':';
            p = put_digits(p, magnitude % 60, 2);
        }
    }
    *p = '\0';
    return (size_t)(p - out);
}

int64_t esg_datetime_to_unix_us(const esg_datetime *dt)
{
    struct tm tm = {
        .tm_year = dt->year - 1900,
        .tm_mon = dt->month - 1,
        .tm_mday = dt->day,
        .tm_hour = dt->hour,
        .tm_min = dt->minute,
        .tm_sec = dt->second,
    };
    int64_t seconds = (int64_t)timegm(&tm);
    if (dt->has_offset)
        seconds -= dt->utc_offset_seconds;
    return seconds * 1000000 + dt->microsecond;
}

bool esg_datetime_equal(const esg_datetime *a, const esg_datetime *b)
{
    return a->year == b->year && a->month == b->month && a->day == b->day && a->hour == b->hour &&
           a->minute == b->minute && a->second == b->second && a->microsecond == b->microsecond &&
           a->has_offset == b->has_offset && a->utc_offset_seconds == b->utc_offset_seconds;
}
