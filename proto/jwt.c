#include "jwt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mem.h"
#include "sig.h"

#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void mac(const uint8_t key[32], const char *data, size_t len, uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, out);
}

char *bg_jwt_sign(const json_t *claims, const uint8_t key[32])
{
    size_t clen;
    char *json = bg_json_dump(claims, &clen);
    size_t hlen = bg_b64url_len(strlen(HEADER)), plen = bg_b64url_len(clen);
    size_t slen = bg_b64url_len(32);
    char *out = bg_xmalloc(hlen + plen + slen + 3);
    bg_b64url_encode(HEADER, strlen(HEADER), out);
    out[hlen] = '.';
    bg_b64url_encode(json, clen, out + hlen + 1);
    free(json);
    uint8_t sig[32];
    mac(key, out, hlen + 1 + plen, sig);
    out[hlen + 1 + plen] = '.';
    bg_b64url_encode(sig, sizeof(sig), out + hlen + plen + 2);
    return out;
}

static bg_err decode_json(const char *s, size_t len, json_t **out)
{
    if (len == 0 || len > BG_JWT_MAX)
        return BG_EINVAL;
    uint8_t *buf = bg_xmalloc(len);
    size_t n;
    bg_json_err je;
    bg_err e = bg_b64url_decode(s, len, buf, len, &n);
    if (e == BG_OK)
        e = bg_json_parse_object((const char *)buf, n, out, &je);
    free(buf);
    return e == BG_OK ? BG_OK : BG_EINVAL;
}

bg_err bg_jwt_verify(const char *token, size_t len, const uint8_t key[32], int64_t now,
                     int64_t skew_s, json_t **claims)
{
    if (token == NULL || len == 0 || len > BG_JWT_MAX)
        return BG_EINVAL;
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return BG_EINVAL;
    json_t *hdr = NULL, *body = NULL;
    uint8_t sig[40], want[32];
    size_t n;
    if (decode_json(token, (size_t)(d1 - token), &hdr) != BG_OK)
        return BG_EINVAL;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    bool hs256 = alg != NULL && strcmp(alg, "HS256") == 0;
    json_decref(hdr);
    if (!hs256)
        return BG_EAUTH;
    if (bg_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), sig, sizeof(sig), &n) != BG_OK || n != 32)
        return BG_EINVAL;
    mac(key, token, (size_t)(d2 - token), want);
    if (!bg_sig_eq(sig, want, 32))
        return BG_EAUTH;
    if (decode_json(d1 + 1, (size_t)(d2 - d1 - 1), &body) != BG_OK)
        return BG_EINVAL;
    json_t *exp = json_object_get(body, "exp"), *iat = json_object_get(body, "iat");
    if (!json_is_integer(exp) || json_integer_value(exp) <= now ||
        (iat != NULL && (!json_is_integer(iat) || json_integer_value(iat) > now + skew_s))) {
        json_decref(body);
        return BG_EAUTH;
    }
    *claims = body;
    return BG_OK;
}
