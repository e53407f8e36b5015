#include "sig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

bg_err bg_sig_init(void)
{
    return sodium_init() < 0 ? BG_EINTERNAL : BG_OK;
}

void bg_sig_random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

void bg_sig_kdf(const uint8_t master[BG_KEY_BYTES], uint64_t id, const char ctx[8],
                uint8_t out[BG_KEY_BYTES])
{
    crypto_kdf_derive_from_key(out, BG_KEY_BYTES, id, ctx, master);
}

bg_err bg_sig_keyed_hash(const uint8_t *key, size_t keylen, const void *data, size_t len,
                         uint8_t *out, size_t outlen)
{
    if (outlen < crypto_generichash_BYTES_MIN || outlen > crypto_generichash_BYTES_MAX)
        return BG_EINVAL;
    if (keylen != 0 && (keylen < crypto_generichash_KEYBYTES_MIN ||
                        keylen > crypto_generichash_KEYBYTES_MAX))
        return BG_EINVAL;
    crypto_generichash(out, outlen, data, len, keylen ? key : NULL, keylen);
    return BG_OK;
}

bool bg_sig_eq(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void bg_sig_seal(const uint8_t key[BG_KEY_BYTES], const void *plain, size_t len, uint8_t *out)
{
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, plain, len, out, key);
}

bg_err bg_sig_open(const uint8_t key[BG_KEY_BYTES], const uint8_t *in, size_t inlen, void *out)
{
    if (inlen < BG_SEAL_OVERHEAD)
        return BG_EINVAL;
    size_t boxlen = inlen - crypto_secretbox_NONCEBYTES;
    if (crypto_secretbox_open_easy(out, in + crypto_secretbox_NONCEBYTES, boxlen, in, key) != 0) {
        sodium_memzero(out, inlen - BG_SEAL_OVERHEAD);
        return BG_EAUTH;
    }
    return BG_OK;
}

void bg_hex_encode(const void *in, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, in, n);
}

bg_err bg_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outlen)
{
    size_t got;
    const char *end;
    if (hexlen != 2 * outlen)
        return BG_EINVAL;
    if (sodium_hex2bin(out, outlen, hex, hexlen, NULL, &got, &end) != 0 || got != outlen ||
        end != hex + hexlen)
        return BG_EINVAL;
    return BG_OK;
}

size_t bg_b64url_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

void bg_b64url_encode(const void *in, size_t n, char *out)
{
    sodium_bin2base64(out, bg_b64url_len(n) + 1, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bg_err bg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t got;
    const char *end;
    /* 4 characters carry 3 bytes; refuse up front what cannot fit. */
    if (len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1) > cap)
        return BG_ETOOBIG;
    if (sodium_base642bin(out, cap, in, len, NULL, &got, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return BG_EINVAL;
    if (end != in + len)
        return BG_EINVAL;
    *outlen = got;
    return BG_OK;
}

size_t bg_b64_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1;
}

void bg_b64_encode(const void *in, size_t n, char *out)
{
    sodium_bin2base64(out, bg_b64_len(n) + 1, in, n, sodium_base64_VARIANT_ORIGINAL);
}

void bg_sig_token_new(const char *prefix, char out[BG_TOKEN_MAX])
{
    uint8_t raw[BG_TOKEN_RAW_BYTES];
    size_t plen = strnlen(prefix, 8);
    memcpy(out, prefix, plen);
    randombytes_buf(raw, sizeof(raw));
    bg_b64url_encode(raw, sizeof(raw), out + plen);
    sodium_memzero(raw, sizeof(raw));
}

void bg_uuid_v4(char out[BG_UUID_LEN + 1])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, BG_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

bool bg_uuid_valid(const char *s, size_t len)
{
    if (s == NULL || len != BG_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

void *bg_secret_alloc(size_t n)
{
    void *p = sodium_malloc(n);
    if (p == NULL) {
        bg_log(BG_LOG_ERROR, NULL, "secure memory exhausted (%zu bytes)", n);
        abort();
    }
    return p;
}

void bg_secret_free(void *p)
{
    if (p != NULL)
        sodium_free(p);
}

void bg_sig_wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

void bg_sig_ed25519_keypair(uint8_t pk[BG_ED25519_PK_BYTES], uint8_t sk[BG_ED25519_SK_BYTES])
{
    crypto_sign_ed25519_keypair(pk, sk);
}

void bg_sig_ed25519_sign(const uint8_t sk[BG_ED25519_SK_BYTES], const void *msg, size_t len,
                         uint8_t sig[BG_ED25519_SIG_BYTES])
{
    crypto_sign_ed25519_detached(sig, NULL, msg, len, sk);
}

bg_err bg_sig_ed25519_verify(const uint8_t pk[BG_ED25519_PK_BYTES], const void *msg, size_t len,
                             const uint8_t sig[BG_ED25519_SIG_BYTES])
{
    return crypto_sign_ed25519_verify_detached(sig, msg, len, pk) == 0 ? BG_OK : BG_EAUTH;
}

bg_err bg_sig_pwhash(const char *password, size_t len, unsigned long long opslimit,
                     size_t memlimit, char out[BG_PWHASH_MAX])
{
    if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN)
        return BG_EINVAL;
    if (crypto_pwhash_argon2id_str(out, password, len, opslimit, memlimit) != 0)
        return BG_ENOMEM;
    return BG_OK;
}

bg_err bg_sig_pwhash_verify(const char *hash, const char *password, size_t len)
{
    if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0)
        return BG_EAUTH;
    return crypto_pwhash_argon2id_str_verify(hash, password, len) == 0 ? BG_OK : BG_EAUTH;
}

const char *bg_sig_version(void)
{
    return sodium_version_string();
}
