/*
 * fuzz_parse — the bounded parsers of proto/parse.c, as the gateway applies
 * them to request headers and query parameters: bg_parse_i64 for
 * Last-Event-ID (gateway/handlers/stream.c, 0..INT64_MAX), Upload-Offset and
 * Upload-Length (handlers/uploads.c), cursors and limits; bg_parse_range for
 * the Range header of GET /api/v1/files/...; bg_parse_u64 for
 * X-Branch-Hops; bg_parse_rfc3339 for expires_at and not_before;
 * bg_parse_duration, bg_parse_bool and bg_parse_hostport for config values
 * and flags; bg_str_is_ident for names and ids.
 *
 * Invariants: numbers agree with a reference parser (digits only, no
 * overflow) and stay inside their bounds; a satisfiable range lies inside
 * the resource; a host fits its buffer.
 */
#include "fuzz.h"

#include "proto/log.h"
#include "proto/parse.h"

/* Reference: plain decimal digits, no sign, value without overflow. */
static bool ref_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    unsigned __int128 v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > UINT64_MAX)
        return false;
    *out = (uint64_t)v;
    return true;
}

static void numbers(const char *s, size_t len)
{
    uint64_t u = 0, r = 0;
    bool ok = ref_u64(s, len, &r);
    FUZZ_CHECK((bg_parse_u64(s, len, 0, UINT64_MAX, &u) == BG_OK) == ok);
    if (ok) {
        FUZZ_CHECK(u == r);
        FUZZ_CHECK((bg_parse_u64(s, len, r, r, &u) == BG_OK));
        if (r > 0)
            FUZZ_CHECK(bg_parse_u64(s, len, 0, r - 1, &u) == BG_EINVAL);
    }
    /* Last-Event-ID, as stream.c parses it. */
    int64_t id = -1;
    if (bg_parse_i64(s, len, 0, INT64_MAX, &id) == BG_OK)
        FUZZ_CHECK(id >= 0);
    int64_t v;
    if (bg_parse_i64(s, len, INT64_MIN, INT64_MAX, &v) == BG_OK) {
        bool neg = len > 0 && s[0] == '-';
        FUZZ_CHECK(ref_u64(s + neg, len - neg, &r));
        FUZZ_CHECK(neg ? (r <= (uint64_t)INT64_MAX + 1 && (uint64_t)0 - (uint64_t)v == r)
                       : (r <= (uint64_t)INT64_MAX && (uint64_t)v == r));
    }
    if (bg_parse_i64(s, len, 1, 500, &v) == BG_OK) /* ?limit= */
        FUZZ_CHECK(v >= 1 && v <= 500);
    bool b;
    bg_parse_bool(s, len, &b);
    uint64_t d;
    if (bg_parse_duration(s, len, 2592000, &d) == BG_OK)
        FUZZ_CHECK(d <= 2592000);
    if (bg_parse_duration(s, len, UINT64_MAX, &d) == BG_OK)
        FUZZ_CHECK(len > 0);
}

static void ranges(const char *s, size_t len)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 1u << 20, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t start = 0, count = 0, size = sizes[i];
        bg_err e = bg_parse_range(s, len, size, &start, &count);
        FUZZ_CHECK(e == BG_OK || e == BG_EINVAL || e == BG_ENOTFOUND);
        if (e == BG_OK)
            FUZZ_CHECK(count >= 1 && start < size && count <= size - start);
    }
}

static void texts(const char *s, size_t len)
{
    char *host = malloc(16);
    uint16_t port;
    if (bg_parse_hostport(s, host, 16, &port) == BG_OK)
        FUZZ_CHECK(strlen(host) < 16);
    free(host);
    char big[300];
    bg_parse_hostport(s, big, sizeof(big), &port);
    long long ms;
    if (bg_parse_rfc3339(s, &ms) == BG_OK && ms >= 0 && ms < 253402300800000LL) {
        /* The second it names prints and reads back the same. */
        char buf[32];
        long long again;
        bg_format_rfc3339(ms / 1000, buf);
        FUZZ_CHECK(bg_parse_rfc3339(buf, &again) == BG_OK && again == ms / 1000 * 1000);
    }
    if (bg_str_is_ident(s, len, 64, "-_."))
        FUZZ_CHECK(len >= 1 && len <= 64 && strlen(s) == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy for the (pointer, length) parsers... */
    char *raw = malloc(size > 0 ? size : 1);
    memcpy(raw, data, size);
    numbers(raw, size);
    ranges(raw, size);
    free(raw);
    /* ...and a NUL-terminated one for the string parsers. */
    char *s = fuzz_strndup(data, size);
    texts(s, size);
    free(s);
    return 0;
}
