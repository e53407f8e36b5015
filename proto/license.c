#include "license.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mem.h"

static const char *const names[BG_LIC_CODE_COUNT_] = {
    "VALID",       "NOT_FOUND",         "INVALID_SIGNATURE", "EXPIRED",
    "NOT_YET_VALID", "SUSPENDED",       "DOMAIN_MISMATCH",   "TOO_MANY_BRANCHES",
    "GRACE",       "VALID_CACHED",      "UNAVAILABLE"};

const char *bg_license_code_name(bg_license_code c)
{
    return (unsigned)c < BG_LIC_CODE_COUNT_ ? names[c] : "UNAVAILABLE";
}

int bg_license_code_parse(const char *s)
{
    for (int i = 0; s != NULL && i < BG_LIC_CODE_COUNT_; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

bool bg_license_code_ok(bg_license_code c)
{
    return c == BG_LIC_VALID || c == BG_LIC_GRACE || c == BG_LIC_VALID_CACHED;
}

char *bg_license_sign(const char *prefix, const json_t *payload,
                      const uint8_t sk[BG_ED25519_SK_BYTES])
{
    size_t jlen;
    char *json = bg_json_dump(payload, &jlen);
    size_t plen = strlen(prefix), b64 = bg_b64url_len(jlen);
    size_t slen = bg_b64url_len(BG_ED25519_SIG_BYTES);
    char *out = bg_xmalloc(plen + b64 + 1 + slen + 1);
    memcpy(out, prefix, plen);
    bg_b64url_encode(json, jlen, out + plen);
    free(json);
    uint8_t sig[BG_ED25519_SIG_BYTES];
    /* The signing input is the prefix and the payload, so a license can
     * never be passed off as a receipt or the other way round. */
    bg_sig_ed25519_sign(sk, out, plen + b64, sig);
    out[plen + b64] = '.';
    bg_b64url_encode(sig, sizeof(sig), out + plen + b64 + 1);
    return out;
}

/* Splits "<prefix><body>.<sig>"; body and signature must be non-empty. */
static bg_err split(const char *prefix, const char *token, size_t len, const char **body,
                    size_t *blen, const char **sig, size_t *slen)
{
    size_t plen = strlen(prefix);
    if (token == NULL || len <= plen || len > BG_LICENSE_TOKEN_MAX ||
        memcmp(token, prefix, plen) != 0)
        return BG_EINVAL;
    const char *b = token + plen, *end = token + len;
    const char *dot = memchr(b, '.', (size_t)(end - b));
    if (dot == NULL || dot == b || dot + 1 == end || memchr(dot + 1, '.', (size_t)(end - dot - 1)))
        return BG_EINVAL;
    *body = b;
    *blen = (size_t)(dot - b);
    *sig = dot + 1;
    *slen = (size_t)(end - dot - 1);
    return BG_OK;
}

/* Base64url-decodes the payload part into *buf (malloc'ed, *n bytes). */
static bg_err payload_bytes(const char *body, size_t blen, uint8_t **buf, size_t *n)
{
    *buf = bg_xmalloc(blen);
    if (bg_b64url_decode(body, blen, *buf, blen, n) != BG_OK) {
        free(*buf);
        *buf = NULL;
        return BG_EINVAL;
    }
    return BG_OK;
}

static bg_err payload_object(const uint8_t *buf, size_t n, json_t **out)
{
    bg_json_err je;
    return bg_json_parse_object((const char *)buf, n, out, &je) == BG_OK ? BG_OK : BG_EINVAL;
}

bg_err bg_license_peek(const char *prefix, const char *token, size_t len, json_t **out)
{
    const char *body, *sig;
    size_t blen, slen, n;
    uint8_t *buf;
    if (split(prefix, token, len, &body, &blen, &sig, &slen) != BG_OK ||
        payload_bytes(body, blen, &buf, &n) != BG_OK)
        return BG_EINVAL;
    bg_err e = payload_object(buf, n, out);
    free(buf);
    return e;
}

/* Syntax first (BG_EINVAL), then the signature over the payload text
 * (BG_EAUTH), and only then is the payload parsed as JSON: a tampered
 * token is BG_EAUTH whatever its payload now decodes to. */
bg_err bg_license_open(const char *prefix, const char *token, size_t len,
                       const uint8_t pk[BG_ED25519_PK_BYTES], json_t **out)
{
    const char *body, *sig;
    size_t blen, slen, n, plen;
    uint8_t raw[BG_ED25519_SIG_BYTES + 4], *buf;
    if (split(prefix, token, len, &body, &blen, &sig, &slen) != BG_OK ||
        bg_b64url_decode(sig, slen, raw, sizeof(raw), &n) != BG_OK || n != BG_ED25519_SIG_BYTES ||
        payload_bytes(body, blen, &buf, &plen) != BG_OK)
        return BG_EINVAL;
    bg_err e = bg_sig_ed25519_verify(pk, token, (size_t)(body - token) + blen, raw) != BG_OK
                   ? BG_EAUTH
                                                                   : payload_object(buf, plen, out);
    free(buf);
    return e;
}

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool bg_license_domain_normalize(const char *in, bool pattern, char *out, size_t cap)
{
    size_t len = in ? strlen(in) : 0;
    if (len > 0 && in[len - 1] == '.')
        len--;
    size_t start = 0;
    if (pattern && len > 2 && in[0] == '*' && in[1] == '.')
        start = 2;
    if (len == start || len > 253 || len + 1 > cap)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (i < start) {
            out[i] = c;
            continue;
        }
        if (c == '.') {
            if (label == 0 || out[i - 1] == '-')
                return false;
            label = 0;
        } else if (!label_char(c) || ++label > 63 || (label == 1 && c == '-')) {
            return false;
        }
        out[i] = c;
    }
    if (label == 0 || out[len - 1] == '-')
        return false;
    out[len] = '\0';
    return true;
}

bool bg_license_domain_match(const char *pattern, const char *domain)
{
    char p[256], d[256];
    if (!bg_license_domain_normalize(pattern, true, p, sizeof(p)) ||
        !bg_license_domain_normalize(domain, false, d, sizeof(d)))
        return false;
    if (p[0] != '*')
        return strcmp(p, d) == 0;
    /* "*.example.org": the domain must end in ".example.org" with at least
     * one label before it. */
    size_t plen = strlen(p) - 1, dlen = strlen(d); /* p + 1 is ".example.org" */
    return dlen > plen && strcmp(d + dlen - plen, p + 1) == 0;
}

bg_license_code bg_license_check_time(int64_t nbf, int64_t exp, int64_t now, int64_t grace_s)
{
    if (now < nbf)
        return BG_LIC_NOT_YET_VALID;
    if (now < exp)
        return BG_LIC_VALID;
    if (now < exp + grace_s)
        return BG_LIC_GRACE;
    return BG_LIC_EXPIRED;
}

static bool string_array(const json_t *a, size_t min, size_t max, size_t item_max)
{
    if (!json_is_array(a) || json_array_size(a) < min || json_array_size(a) > max)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v) || json_string_length(v) == 0 ||
                                     json_string_length(v) > item_max ||
                                     strlen(json_string_value(v)) != json_string_length(v)) return false;
    return true;
}

/* A string field without an embedded NUL, or NULL. */
static const char *str_field(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

bg_err bg_license_payload_check(const json_t *p)
{
    const char *lid = str_field(p, "lid");
    const char *org = str_field(p, "org");
    const char *tier = str_field(p, "tier");
    json_t *limits = json_object_get(p, "limits");
    json_t *domains = json_object_get(p, "domains");
    if (lid == NULL || !bg_uuid_valid(lid, strlen(lid)) || org == NULL ||
        !bg_uuid_valid(org, strlen(org)) || tier == NULL || strlen(tier) == 0 || strlen(tier) > 32 ||
        !string_array(domains, 1, 64, 253) || !string_array(json_object_get(p, "features"), 0, 64, 64) ||
        !json_is_object(limits) || !json_is_integer(json_object_get(limits, "branches")) ||
        !json_is_integer(json_object_get(limits, "users")) ||
        !json_is_integer(json_object_get(p, "nbf")) || !json_is_integer(json_object_get(p, "exp")) ||
        json_integer_value(json_object_get(p, "exp")) <= json_integer_value(json_object_get(p, "nbf")) ||
        json_integer_value(json_object_get(limits, "branches")) < 0 ||
        json_integer_value(json_object_get(limits, "users")) < 0)
        return BG_EINVAL;
    size_t i;
    json_t *d;
    char buf[256];
    json_array_foreach(domains, i, d) if (!bg_license_domain_normalize(json_string_value(d), true,
                                                                       buf, sizeof(buf))) return BG_EINVAL;
    return BG_OK;
}
