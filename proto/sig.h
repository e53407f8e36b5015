/*
 * proto/sig.h — randomness, keyed hashes, authenticated encryption and
 * encodings (libsodium). Pure functions apart from the random generator;
 * any thread once bg_sig_init() has returned BG_OK.
 *
 * Keys and tokens should live in bg_secret_alloc() memory and be wiped with
 * bg_secret_free()/bg_sig_wipe() when no longer needed.
 */
#ifndef BG_PROTO_SIG_H
#define BG_PROTO_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BG_KEY_BYTES 32        /* master key, derived keys */
#define BG_HASH_BYTES 32       /* keyed hashes stored at rest */
#define BG_SEAL_OVERHEAD 40    /* nonce (24) + MAC (16) added by bg_sig_seal */
#define BG_TOKEN_RAW_BYTES 32  /* entropy of a generated token */
#define BG_TOKEN_MAX 64        /* longest generated token, NUL included */
#define BG_UUID_LEN 36

/* Initialises libsodium. Call once from main before any thread starts.
 * Errors: BG_EINTERNAL. */
bg_err bg_sig_init(void);

/* Fills buf with n cryptographically random bytes. */
void bg_sig_random(void *buf, size_t n);

/* Derives subkey number `id` of the 8-character context `ctx` from a
 * 32-byte master key (BLAKE2b KDF). out receives 32 bytes. */
void bg_sig_kdf(const uint8_t master[BG_KEY_BYTES], uint64_t id, const char ctx[8],
                uint8_t out[BG_KEY_BYTES]);

/* Keyed BLAKE2b of data; outlen 16..64, keylen 16..64 (0 = unkeyed).
 * Errors: BG_EINVAL on out-of-range lengths. */
bg_err bg_sig_keyed_hash(const uint8_t *key, size_t keylen, const void *data, size_t len,
                         uint8_t *out, size_t outlen);

/* Constant-time equality of two n-byte buffers. */
bool bg_sig_eq(const void *a, const void *b, size_t n);

/* XSalsa20-Poly1305 with a random nonce: out receives len +
 * BG_SEAL_OVERHEAD bytes (nonce || box). */
void bg_sig_seal(const uint8_t key[BG_KEY_BYTES], const void *plain, size_t len, uint8_t *out);

/* Opens what bg_sig_seal produced: in is inlen bytes, out receives inlen -
 * BG_SEAL_OVERHEAD bytes. Errors: BG_EINVAL (too short), BG_EAUTH
 * (tampered or wrong key); out is wiped on failure. */
bg_err bg_sig_open(const uint8_t key[BG_KEY_BYTES], const uint8_t *in, size_t inlen, void *out);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void bg_hex_encode(const void *in, size_t n, char *out);

/* Decodes exactly outlen bytes from 2*outlen hex digits. Errors: BG_EINVAL. */
bg_err bg_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outlen);

/* Unpadded base64url. Encode: out needs bg_b64url_len(n)+1 bytes. Decode:
 * *outlen receives the decoded size; errors BG_EINVAL (bad alphabet),
 * BG_ETOOBIG (does not fit in cap). */
size_t bg_b64url_len(size_t n);
void bg_b64url_encode(const void *in, size_t n, char *out);
bg_err bg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* Standard base64 with padding (RFC 4648 section 4); out needs
 * bg_b64_len(n)+1 bytes. */
size_t bg_b64_len(size_t n);
void bg_b64_encode(const void *in, size_t n, char *out);

/* A fresh random token "<prefix><base64url of 32 random bytes>"; prefix
 * is at most 8 bytes. out must hold BG_TOKEN_MAX bytes. */
void bg_sig_token_new(const char *prefix, char out[BG_TOKEN_MAX]);

/* A random (version 4) UUID in canonical lowercase form. */
void bg_uuid_v4(char out[BG_UUID_LEN + 1]);

/* True when s is a canonical lowercase UUID. */
bool bg_uuid_valid(const char *s, size_t len);

/* Guarded memory for secrets (sodium_malloc): never swapped where the OS
 * allows, wiped on free. bg_secret_alloc aborts on exhaustion;
 * bg_secret_free accepts NULL. */
void *bg_secret_alloc(size_t n);
void bg_secret_free(void *p);

/* Wipes n bytes in a way the compiler cannot elide. */
void bg_sig_wipe(void *p, size_t n);

#define BG_ED25519_PK_BYTES 32
#define BG_ED25519_SK_BYTES 64
#define BG_ED25519_SIG_BYTES 64

/* A fresh Ed25519 key pair. */
void bg_sig_ed25519_keypair(uint8_t pk[BG_ED25519_PK_BYTES], uint8_t sk[BG_ED25519_SK_BYTES]);

/* Detached Ed25519 signature of msg, and its verification (BG_EAUTH when
 * the signature does not match). */
void bg_sig_ed25519_sign(const uint8_t sk[BG_ED25519_SK_BYTES], const void *msg, size_t len,
                         uint8_t sig[BG_ED25519_SIG_BYTES]);
bg_err bg_sig_ed25519_verify(const uint8_t pk[BG_ED25519_PK_BYTES], const void *msg, size_t len,
                             const uint8_t sig[BG_ED25519_SIG_BYTES]);

#define BG_PWHASH_MAX 128 /* argon2id string, NUL included */

/* argon2id hash string of a password (libsodium crypto_pwhash_str) with
 * the given cost (opslimit >= 1, memlimit in bytes >= 8 KiB). Errors:
 * BG_ENOMEM (the memory cost could not be had), BG_EINVAL. CPU-heavy:
 * worker threads only. */
bg_err bg_sig_pwhash(const char *password, size_t len, unsigned long long opslimit,
                     size_t memlimit, char out[BG_PWHASH_MAX]);

/* Verifies a password against a hash string. Returns BG_OK or BG_EAUTH
 * (also for a malformed hash). Worker threads only. */
bg_err bg_sig_pwhash_verify(const char *hash, const char *password, size_t len);

/* libsodium's version string. */
const char *bg_sig_version(void);

#endif
