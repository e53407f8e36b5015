#include "tus.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "parse.h"
#include "sig.h"

/* ---- base64 ------------------------------------------------------------ */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    return c == '/' ? 63 : -1;
}

/* Standard base64 with or without padding. Returns the decoded size, or
 * (size_t)-1 when in is not canonical base64. out == NULL only validates;
 * otherwise out must hold the decoded size. tus clients differ on padding
 * (the spec's examples pad, some libraries do not), so both are read. */
static size_t b64_decode(const char *in, size_t len, uint8_t *out)
{
    size_t n = len;
    if (len % 4 == 0)
        while (n > 0 && len - n < 2 && in[n - 1] == '=')
            n--;
    if (n % 4 == 1 || (n != len && n % 4 + (len - n) != 4))
        return (size_t)-1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0)
            return (size_t)-1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out != NULL)
                out[o] = (uint8_t)(acc >> bits);
            o++;
        }
    }
    /* Non-zero leftover bits mean two encodings of one value: refuse. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return (size_t)-1;
    return o;
}

/* ---- Upload-Metadata --------------------------------------------------- */

typedef struct pair {
    const char *k, *v;
    size_t klen, vlen, dlen; /* dlen: decoded size of the value */
} pair;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_ows(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*p)[*n - 1]))
        (*n)--;
}

/* One "key[ value]" element, OWS around it allowed. */
static bg_err parse_pair(const char *p, size_t n, pair *out)
{
    trim(&p, &n);
    const char *sp = memchr(p, ' ', n);
    size_t klen = sp != NULL ? (size_t)(sp - p) : n;
    if (klen == 0)
        return BG_EINVAL;
    for (size_t i = 0; i < klen; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
            return BG_EINVAL;
    out->k = p;
    out->klen = klen;
    out->v = sp != NULL ? sp + 1 : p + n;
    out->vlen = sp != NULL ? n - klen - 1 : 0;
    out->dlen = b64_decode(out->v, out->vlen, NULL);
    return out->dlen == (size_t)-1 ? BG_EINVAL : BG_OK;
}

static bg_err parse_all(const char *hdr, size_t len, pair pairs[BG_TUS_METADATA_MAX_PAIRS],
                        size_t *np)
{
    size_t n = 0;
    trim(&hdr, &len);
    const char *p = hdr, *end = hdr + len;
    bool more = len > 0;
    while (more) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma != NULL ? comma : end;
        if (n == BG_TUS_METADATA_MAX_PAIRS || parse_pair(p, (size_t)(stop - p), &pairs[n]) != BG_OK)
            return BG_EINVAL;
        for (size_t i = 0; i < n; i++)
            if (pairs[i].klen == pairs[n].klen && memcmp(pairs[i].k, pairs[n].k, pairs[n].klen) == 0)
                return BG_EINVAL;
        n++;
        more = comma != NULL;
        p = stop + 1;
    }
    *np = n;
    return BG_OK;
}

bg_err bg_tus_metadata_check(const char *hdr, size_t len)
{
    pair pairs[BG_TUS_METADATA_MAX_PAIRS];
    size_t n;
    if (hdr == NULL && len > 0)
        return BG_EINVAL;
    return parse_all(hdr, len, pairs, &n);
}

bg_err bg_tus_metadata_get(const char *hdr, size_t len, const char *key, char *out, size_t cap,
                           size_t *outlen)
{
    pair pairs[BG_TUS_METADATA_MAX_PAIRS];
    size_t n;
    if (hdr == NULL && len > 0)
        return BG_EINVAL;
    bg_err e = parse_all(hdr, len, pairs, &n);
    if (e != BG_OK)
        return e;
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].klen != klen || memcmp(pairs[i].k, key, klen) != 0)
            continue;
        if (pairs[i].dlen >= cap)
            return BG_ETOOBIG;
        b64_decode(pairs[i].v, pairs[i].vlen, (uint8_t *)out);
        out[pairs[i].dlen] = '\0';
        *outlen = pairs[i].dlen;
        return BG_OK;
    }
    return BG_ENOTFOUND;
}

/* ---- Upload-Checksum --------------------------------------------------- */

static const struct {
    const char *name;
    bg_tus_algo algo;
    size_t size;
} ALGOS[] = {
    {"md5", BG_TUS_MD5, 16},
    {"sha1", BG_TUS_SHA1, 20},
    {"sha256", BG_TUS_SHA256, 32},
};

bg_err bg_tus_checksum_parse(const char *hdr, size_t len, bg_tus_algo *algo,
                             uint8_t digest[BG_TUS_DIGEST_MAX], size_t *dlen)
{
    const char *sp = hdr != NULL ? memchr(hdr, ' ', len) : NULL;
    if (sp == NULL || sp == hdr)
        return BG_EINVAL;
    size_t alen = (size_t)(sp - hdr), i = 0;
    while (i < sizeof(ALGOS) / sizeof(ALGOS[0]) &&
           (strlen(ALGOS[i].name) != alen || memcmp(ALGOS[i].name, hdr, alen) != 0))
        i++;
    if (i == sizeof(ALGOS) / sizeof(ALGOS[0])) {
        /* Only a plausible token names an unsupported algorithm; anything
         * else is a malformed header. */
        return bg_str_is_ident(hdr, alen, 32, "-_.") ? BG_ENOTFOUND : BG_EINVAL;
    }
    const char *b = sp + 1;
    size_t blen = len - alen - 1;
    if (b64_decode(b, blen, NULL) != ALGOS[i].size)
        return BG_EINVAL;
    b64_decode(b, blen, digest);
    *algo = ALGOS[i].algo;
    *dlen = ALGOS[i].size;
    return BG_OK;
}

bool bg_tus_checksum_verify(bg_tus_algo algo, const void *data, size_t len, const uint8_t *digest,
                            size_t dlen)
{
    const EVP_MD *md;
    switch (algo) {
    case BG_TUS_MD5: md = EVP_md5(); break;
    case BG_TUS_SHA1: md = EVP_sha1(); break;
    case BG_TUS_SHA256: md = EVP_sha256(); break;
    default: return false;
    }
    uint8_t got[EVP_MAX_MD_SIZE];
    unsigned gotlen = 0;
    if (md == NULL || EVP_Digest(data != NULL ? data : "", len, got, &gotlen, md, NULL) != 1)
        return false;
    return digest != NULL && gotlen == dlen && bg_sig_eq(got, digest, dlen);
}

/* ---- file names -------------------------------------------------------- */

/* Length of the character starting at p (n bytes available): 1..4 for a
 * valid UTF-8 sequence that is not a control character, 0 otherwise.
 * Second-byte ranges follow RFC 3629 section 4 (no overlongs, no
 * surrogates, nothing above U+10FFFF); 0xC2 0x80..0x9F are the C1 controls. */
static size_t utf8_char(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return c < 0x20 || c == 0x7f ? 0 : 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        lo = c == 0xc2 ? 0xa0 : 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}

static bool name_byte_ok(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("._ +()-", c) != NULL);
}

bg_err bg_tus_sanitize_name(const char *in, size_t len, char *out, size_t cap)
{
    assert(cap >= BG_TUS_NAME_MAX + 1);
    const uint8_t *p = (const uint8_t *)in;
    if (in == NULL || len == 0 || out == NULL || cap < BG_TUS_NAME_MAX + 1)
        return BG_EINVAL;
    /* Everything is checked before anything is written, also the part that
     * truncation drops: a name is accepted or refused as a whole. */
    for (size_t i = 0, k; i < len; i += k)
        if ((k = utf8_char(p + i, len - i)) == 0)
            return BG_EINVAL;
    size_t o = 0;
    for (size_t i = 0, k; i < len; i += k) {
        k = utf8_char(p + i, len - i);
        if (o + k > BG_TUS_NAME_MAX)
            break;
        if (k > 1) {
            memcpy(out + o, p + i, k);
            o += k;
            continue;
        }
        char c = name_byte_ok(p[i]) ? (char)p[i] : '_';
        out[o] = o == 0 && c == '.' ? '_' : c;
        o++;
    }
    out[o] = '\0';
    return BG_OK;
}

/* ---- HTTP date --------------------------------------------------------- */

/* Gregorian date of a day count since 1970-01-01 (days >= 0), after Howard
 * Hinnant's civil_from_days: no time_t, no locale, no time zone. */
static void civil_from_days(long long days, long long *y, unsigned *m, unsigned *d)
{
    long long z = days + 719468;
    long long era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

void bg_tus_http_date(long long unix_ms, char *out, size_t cap)
{
    static const char *const wday[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const long long max_ms = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
    assert(cap >= BG_TUS_HTTP_DATE_LEN + 1);
    long long s = (unix_ms < 0 ? 0 : unix_ms > max_ms ? max_ms : unix_ms) / 1000;
    long long days = s / 86400, y;
    unsigned sec = (unsigned)(s % 86400), m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%s, %02u %s %04lld %02u:%02u:%02u GMT", wday[days % 7], d, mon[m - 1], y,
             sec / 3600, sec / 60 % 60, sec % 60);
}
