#define _GNU_SOURCE
#include "parse.h"

#include <string.h>
#include <time.h>

bg_err bg_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || len == 0 || len > 20)
        return BG_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return BG_EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return BG_EINVAL;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return BG_EINVAL;
    *out = v;
    return BG_OK;
}

bg_err bg_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || len == 0)
        return BG_EINVAL;
    bool neg = s[0] == '-';
    uint64_t mag;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (bg_parse_u64(s + neg, len - neg, 0, limit, &mag) != BG_OK)
        return BG_EINVAL;
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (v < min || v > max)
        return BG_EINVAL;
    *out = v;
    return BG_OK;
}

bg_err bg_parse_bool(const char *s, size_t len, bool *out)
{
    static const struct {
        const char *word;
        bool value;
    } words[] = {{"true", true}, {"false", false}, {"1", true}, {"0", false},
                 {"yes", true},  {"no", false},    {"on", true}, {"off", false}};
    if (s == NULL)
        return BG_EINVAL;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strlen(words[i].word) == len && memcmp(words[i].word, s, len) == 0) {
            *out = words[i].value;
            return BG_OK;
        }
    }
    return BG_EINVAL;
}

bg_err bg_parse_duration(const char *s, size_t len, uint64_t max_s, uint64_t *out_s)
{
    if (s == NULL || len == 0)
        return BG_EINVAL;
    uint64_t unit = 1;
    switch (s[len - 1]) {
    case 's': unit = 1; len--; break;
    case 'm': unit = 60; len--; break;
    case 'h': unit = 3600; len--; break;
    case 'd': unit = 86400; len--; break;
    default: break;
    }
    uint64_t v;
    if (bg_parse_u64(s, len, 0, max_s / unit, &v) != BG_OK)
        return BG_EINVAL;
    *out_s = v * unit;
    return BG_OK;
}

bg_err bg_parse_hostport(const char *s, char *host, size_t host_cap, uint16_t *port)
{
    if (s == NULL)
        return BG_EINVAL;
    const char *h = s, *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return BG_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return BG_EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_cap || !bg_str_is_ident(h, hlen, 253, "-._:"))
        return BG_EINVAL;
    uint64_t p;
    if (bg_parse_u64(colon + 1, strlen(colon + 1), 0, 65535, &p) != BG_OK)
        return BG_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return BG_OK;
}

bool bg_str_is_ident(const char *s, size_t len, size_t max_len, const char *extra)
{
    if (s == NULL || len == 0 || len > max_len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && extra != NULL && strchr(extra, c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

bg_err bg_parse_rfc3339(const char *s, long long *out_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (s == NULL || strlen(s) > 40)
        return BG_EINVAL;
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL || s[4] != '-' || s[10] != 'T')
        return BG_EINVAL;
    long long ms = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*rest - '0');
        if (digits == 0)
            return BG_EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (rest[0] != 'Z' || rest[1] != '\0')
        return BG_EINVAL;
    *out_ms = (long long)timegm(&tm) * 1000 + ms;
    return BG_OK;
}

bg_err bg_parse_range(const char *s, size_t len, uint64_t size, uint64_t *start, uint64_t *count)
{
    if (len < 7 || memcmp(s, "bytes=", 6) != 0 || memchr(s, ',', len) != NULL)
        return BG_ENOTFOUND;
    const char *p = s + 6, *end = s + len;
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (dash == NULL)
        return BG_ENOTFOUND;
    uint64_t a = 0, b = 0;
    bool has_a = dash > p, has_b = dash + 1 < end;
    if ((has_a && bg_parse_u64(p, (size_t)(dash - p), 0, UINT64_MAX, &a) != BG_OK) ||
        (has_b && bg_parse_u64(dash + 1, (size_t)(end - dash - 1), 0, UINT64_MAX, &b) != BG_OK) ||
        (!has_a && !has_b))
        return BG_ENOTFOUND;
    if (!has_a) { /* the last b bytes */
        if (b == 0 || size == 0)
            return BG_EINVAL;
        *count = b > size ? size : b;
        *start = size - *count;
        return BG_OK;
    }
    if (a >= size || (has_b && b < a))
        return BG_EINVAL;
    if (!has_b || b >= size)
        b = size - 1;
    *start = a;
    *count = b - a + 1;
    return BG_OK;
}
