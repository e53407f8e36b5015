#include "webhook.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "sig.h"

#define SIG_B64_LEN 44 /* base64 of 32 bytes, padded */

/* Decodes the key of a "whsec_" secret into key[0..*klen). Padding is
 * optional because secrets are pasted by people; libsodium's ORIGINAL
 * variant requires it, so the variant follows the length. */
static bg_err secret_key(const char *secret, uint8_t key[BG_WEBHOOK_KEY_MAX], size_t *klen)
{
    const size_t plen = sizeof(BG_WEBHOOK_SECRET_PREFIX) - 1;
    if (secret == NULL || strncmp(secret, BG_WEBHOOK_SECRET_PREFIX, plen) != 0)
        return BG_EINVAL;
    const char *b64 = secret + plen, *end;
    size_t blen = strlen(b64), got = 0;
    int variant = blen % 4 == 0 ? sodium_base64_VARIANT_ORIGINAL
                                : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    if (blen == 0 || blen > sodium_base64_ENCODED_LEN(BG_WEBHOOK_KEY_MAX, variant) - 1)
        return BG_EINVAL;
    if (sodium_base642bin(key, BG_WEBHOOK_KEY_MAX, b64, blen, NULL, &got, &end, variant) != 0 ||
        end != b64 + blen || got == 0) {
        sodium_memzero(key, BG_WEBHOOK_KEY_MAX);
        return BG_EINVAL;
    }
    *klen = got;
    return BG_OK;
}

/* HMAC-SHA256(key, id "." ts "." body), fed in pieces so the body is never
 * copied. */
static void mac(const uint8_t *key, size_t klen, const char *id, long long ts, const void *body,
                size_t len, uint8_t out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    char tsbuf[24];
    int tslen = snprintf(tsbuf, sizeof(tsbuf), "%lld", ts);
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tsbuf, (unsigned long long)tslen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    if (len > 0)
        crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

/* The expected "v1,<base64>" of one attempt into out (at least 48 bytes). */
static bg_err expected(const char *secret, const char *id, long long ts, const void *body,
                       size_t len, char *out)
{
    uint8_t key[BG_WEBHOOK_KEY_MAX], h[crypto_auth_hmacsha256_BYTES];
    size_t klen;
    if (id == NULL || secret_key(secret, key, &klen) != BG_OK)
        return BG_EINVAL;
    mac(key, klen, id, ts, body, len, h);
    memcpy(out, "v1,", 3);
    bg_b64_encode(h, sizeof(h), out + 3);
    sodium_memzero(key, sizeof(key));
    sodium_memzero(h, sizeof(h));
    return BG_OK;
}

bg_err bg_webhook_sign(const char *secret, const char *id, long long ts, const void *body,
                       size_t len, char out[BG_WEBHOOK_SIG_MAX])
{
    char sig[3 + SIG_B64_LEN + 1];
    bg_err e = expected(secret, id, ts, body, len, sig);
    if (e == BG_OK)
        memcpy(out, sig, sizeof(sig));
    return e;
}

/* |now - ts| <= tol without overflow for any pair of long longs. */
static bool within(long long now, long long ts, long long tol)
{
    long long diff;
    if (__builtin_sub_overflow(now, ts, &diff))
        return false;
    return diff >= -tol && diff <= tol;
}

bg_err bg_webhook_verify(const char *secret, const char *id, long long ts, const void *body,
                         size_t len, const char *sig_header, long long now_s,
                         long long tolerance_s)
{
    char want[3 + SIG_B64_LEN + 1];
    if (sig_header == NULL || tolerance_s < 0)
        return BG_EINVAL;
    bg_err e = expected(secret, id, ts, body, len, want);
    if (e != BG_OK)
        return e;
    if (tolerance_s > 0 && !within(now_s, ts, tolerance_s))
        return BG_EAUTH;
    /* Every entry is compared (no early exit on a match), so the time taken
     * depends only on the entry lengths, not on which one matched. */
    bool ok = false;
    const size_t wlen = sizeof(want) - 1;
    for (const char *p = sig_header; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == wlen && memcmp(p, "v1,", 3) == 0)
            ok |= bg_sig_eq(p, want, wlen);
        p += n;
        p += strspn(p, " ");
    }
    return ok ? BG_OK : BG_EAUTH;
}
