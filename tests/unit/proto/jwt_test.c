/*
 * Unit tests for proto/jwt.h: HS256 JSON Web Tokens (RFC 7519).
 *
 * Tokens for the negative cases are built by hand here (libsodium's
 * one-shot HMAC-SHA256 and base64url), not with bg_jwt_sign, so that a
 * header other than HS256 can be signed with the right key.
 *
 * Independent checks:
 *  - the jwt.io example token (header {"alg":"HS256","typ":"JWT"}, claims
 *    {"sub":"1234567890","name":"John Doe","iat":1516239022}, secret
 *    "your-256-bit-secret"), which appears verbatim in many public sources.
 *    HMAC pads short keys with zeros to the block size (RFC 2104 section
 *    2), so the 19-byte secret is the same key as itself followed by 13
 *    zero bytes. Its signature part was checked with
 *    `openssl dgst -sha256 -hmac your-256-bit-secret -binary`.
 *  - a fresh token, whose signature is recomputed at run time with
 *    `openssl dgst -sha256 -mac HMAC -macopt hexkey:...` (skipped when the
 *    openssl command is not installed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jwt.h"
#include "proto/sig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define NOW INT64_C(1700000000)
#define SKEW 60

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char hs256_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        fail_msg("test literal does not parse: %s (%s)", text, jerr.text);
    return v;
}

static void test_key(uint8_t key[32], uint8_t seed)
{
    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)(seed + i);
}

/* Unpadded base64url, with libsodium directly. malloc'ed. */
static char *b64(const void *in, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    assert_non_null(out);
    sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* "<h>.<p>.<b64url(HMAC-SHA256(key, "<h>.<p>"))>" for any two part texts. */
static char *sign_parts(const char *h, const char *p, const uint8_t key[32])
{
    size_t hl = strlen(h), pl = strlen(p);
    char *out = malloc(hl + pl + 64);
    assert_non_null(out);
    memcpy(out, h, hl);
    out[hl] = '.';
    memcpy(out + hl + 1, p, pl + 1);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)out, hl + 1 + pl, key);
    char *s = b64(mac, sizeof(mac));
    out[hl + 1 + pl] = '.';
    strcpy(out + hl + 2 + pl, s);
    free(s);
    return out;
}

/* A token for a header and claims given as JSON text, signed with key. */
static char *craft(const char *header, const char *claims, const uint8_t key[32])
{
    char *h = b64(header, strlen(header)), *p = b64(claims, strlen(claims));
    char *t = sign_parts(h, p, key);
    free(h);
    free(p);
    return t;
}

static bg_err verify(const char *tok, const uint8_t key[32], json_t **out)
{
    return bg_jwt_verify(tok, strlen(tok), key, NOW, SKEW, out);
}

/* Asserts rc and that *out is set exactly on success. */
static void expect(const char *what, const char *tok, const uint8_t key[32], bg_err want)
{
    json_t *out = NULL;
    bg_err rc = verify(tok, key, &out);
    if (rc != want || (rc == BG_OK) != (out != NULL)) {
        print_error("%s: rc=%d, want %d (%s)\n", what, rc, want, tok);
        fail();
    }
    json_decref(out);
}

/* The two dots of a three-part token. */
static void dots(const char *tok, size_t *d1, size_t *d2)
{
    const char *a = strchr(tok, '.');
    assert_non_null(a);
    const char *b = strchr(a + 1, '.');
    assert_non_null(b);
    assert_null(strchr(b + 1, '.'));
    *d1 = (size_t)(a - tok);
    *d2 = (size_t)(b - tok);
}

static char flip(char c)
{
    return c == 'A' ? 'B' : 'A';
}

/* ---- sign / verify ----------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t key[32];
    bg_sig_random(key, sizeof(key));
    json_t *claims = load("{\"sub\":\"123e4567-e89b-42d3-a456-426614174000\","
                          "\"org\":\"9b2f4c1e-7d3a-4e5f-8a6b-0c1d2e3f4a5b\",\"role\":\"admin\","
                          "\"name\":\"Zo\\u00eb \\\"Z\\\"\",\"iat\":1700000000,\"exp\":1700003600}");
    char *tok = bg_jwt_sign(claims, key);
    assert_non_null(tok);
    size_t len = strlen(tok), d1, d2;
    assert_true(len <= BG_JWT_MAX);
    dots(tok, &d1, &d2);
    assert_int_equal(strspn(tok, b64url_alphabet), d1);
    assert_int_equal(strspn(tok + d1 + 1, b64url_alphabet), d2 - d1 - 1);
    assert_int_equal(strspn(tok + d2 + 1, b64url_alphabet), len - d2 - 1);
    assert_int_equal(len - d2 - 1, 43); /* 32 bytes */

    /* the header is exactly {"alg":"HS256","typ":"JWT"} */
    char *h = b64(hs256_header, strlen(hs256_header));
    assert_int_equal(strlen(h), d1);
    assert_memory_equal(tok, h, d1);
    free(h);

    /* the signature is HMAC-SHA256 over "header.payload" */
    uint8_t mac[32];
    crypto_auth_hmacsha256(mac, (const unsigned char *)tok, d2, key);
    char *s = b64(mac, sizeof(mac));
    assert_string_equal(tok + d2 + 1, s);
    free(s);

    json_t *out = NULL;
    assert_int_equal(bg_jwt_verify(tok, len, key, NOW, SKEW, &out), BG_OK);
    assert_non_null(out);
    assert_true(json_equal(out, claims));
    json_decref(out);

    /* deterministic */
    char *again = bg_jwt_sign(claims, key);
    assert_string_equal(tok, again);
    free(again);

    /* len, not the terminator, bounds the token */
    char *longer = malloc(len + 8);
    memcpy(longer, tok, len);
    memcpy(longer + len, ".extra", 7);
    out = NULL;
    assert_int_equal(bg_jwt_verify(longer, len, key, NOW, SKEW, &out), BG_OK);
    json_decref(out);
    out = NULL;
    assert_int_equal(bg_jwt_verify(longer, len + 6, key, NOW, SKEW, &out), BG_EINVAL);
    assert_null(out);
    free(longer);

    free(tok);
    json_decref(claims);
}

/* A header with only "alg", as other implementations may write it. */
static void test_verify_foreign_token(void **state)
{
    (void)state;
    uint8_t key[32];
    test_key(key, 0x40);
    char *t = craft("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"exp\":1700000001}", key);
    json_t *out = NULL;
    assert_int_equal(verify(t, key, &out), BG_OK);
    assert_string_equal(json_string_value(json_object_get(out, "sub")), "u");
    json_decref(out);
    free(t);
    t = craft("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"k1\"}", "{\"exp\":1700000001}", key);
    expect("typ first, kid", t, key, BG_OK);
    free(t);
}

/* jwt.io's HS256 example; see the comment at the top. */
static const char jwtio_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

static void test_jwtio_vector(void **state)
{
    (void)state;
    uint8_t key[32];
    memset(key, 0, sizeof(key));
    memcpy(key, "your-256-bit-secret", 19);
    json_t *claims = load("{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}");
    char *tok = bg_jwt_sign(claims, key);
    assert_string_equal(tok, jwtio_token);
    free(tok);

    /* the signature verifies, but the token has no exp: refused */
    json_t *out = NULL;
    assert_int_equal(bg_jwt_verify(jwtio_token, strlen(jwtio_token), key, 1516239022, SKEW, &out),
                     BG_EAUTH);
    assert_null(out);

    /* the same claims with an exp, signed by hand, are accepted */
    char *t = craft(hs256_header,
                    "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022,"
                    "\"exp\":1516242622}",
                    key);
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1516239022, SKEW, &out), BG_OK);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "John Doe");
    json_decref(out);
    free(t);
    json_decref(claims);
}

/* HMAC-SHA256 of data by the openssl command line tool. Returns false when
 * the tool cannot be run. data must be base64url text and dots. */
static bool openssl_hmac(const uint8_t key[32], const char *data, size_t n, uint8_t out[32])
{
    char hex[65], cmd[8192];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    /* safe inside single quotes */
    for (size_t i = 0; i < n; i++)
        assert_true(data[i] == '.' || strchr(b64url_alphabet, data[i]) != NULL);
    assert_true(n < sizeof(cmd) - 200);
    snprintf(cmd, sizeof(cmd),
             "printf '%%s' '%.*s' | openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -binary "
             "2>/dev/null",
             (int)n, data, hex);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return false;
    uint8_t buf[33];
    size_t got = fread(buf, 1, sizeof(buf), f);
    int status = pclose(f);
    if (status != 0 || got != 32)
        return false;
    memcpy(out, buf, 32);
    return true;
}

static void test_openssl_cross_check(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        print_message("openssl not installed: cross-check skipped\n");
        skip();
    }
    uint8_t key[32];
    bg_sig_random(key, sizeof(key));
    json_t *claims = load("{\"sub\":\"u-1\",\"org\":\"o-1\",\"iat\":1700000000,\"exp\":1700000900}");
    char *tok = bg_jwt_sign(claims, key);
    size_t d1, d2;
    dots(tok, &d1, &d2);

    uint8_t want[32];
    if (!openssl_hmac(key, tok, d2, want))
        fail_msg("openssl dgst failed");
    char *s = b64(want, sizeof(want));
    assert_string_equal(tok + d2 + 1, s);
    free(s);

    /* and a token signed by openssl alone verifies */
    const char *hj = "{\"alg\":\"HS256\"}", *pj = "{\"sub\":\"x\",\"exp\":1700000100}";
    char *h = b64(hj, strlen(hj));
    char *p = b64(pj, strlen(pj));
    char *unsigned_part = malloc(strlen(h) + strlen(p) + 2);
    sprintf(unsigned_part, "%s.%s", h, p);
    if (!openssl_hmac(key, unsigned_part, strlen(unsigned_part), want))
        fail_msg("openssl dgst failed");
    s = b64(want, sizeof(want));
    char *t = malloc(strlen(unsigned_part) + strlen(s) + 2);
    sprintf(t, "%s.%s", unsigned_part, s);
    expect("signed by openssl", t, key, BG_OK);

    free(t);
    free(s);
    free(unsigned_part);
    free(p);
    free(h);
    free(tok);
    json_decref(claims);
}

/* ---- tampering --------------------------------------------------------- */

static void test_tampered(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    bg_sig_random(key, sizeof(key));
    memcpy(other, key, sizeof(other));
    other[31] ^= 0x01;
    json_t *claims = load("{\"sub\":\"u\",\"role\":\"member\",\"exp\":1700003600}");
    char *tok = bg_jwt_sign(claims, key);
    size_t len = strlen(tok), d1, d2;
    dots(tok, &d1, &d2);

    /* every character of header, payload and signature but the last of
     * each part (whose low bits may have to be zero) */
    for (size_t i = 0; i + 1 < len; i++) {
        if (i + 1 == d1 || i == d1 || i + 1 == d2 || i == d2)
            continue;
        char saved = tok[i];
        tok[i] = flip(saved);
        json_t *out = NULL;
        bg_err rc = bg_jwt_verify(tok, len, key, NOW, SKEW, &out);
        /* a changed header may no longer be JSON (BG_EINVAL) or name
         * another algorithm; payload and signature changes are BG_EAUTH */
        bool ok = i < d1 ? rc == BG_EAUTH || rc == BG_EINVAL : rc == BG_EAUTH;
        if (!ok || out != NULL) {
            print_error("char %zu ('%c'->'%c'): rc=%d\n", i, saved, tok[i], rc);
            fail();
        }
        tok[i] = saved;
    }

    /* another user's payload under this signature */
    char *h = b64(hs256_header, strlen(hs256_header));
    const char *admin = "{\"sub\":\"u\",\"role\":\"admin\",\"exp\":1700003600}";
    char *p = b64(admin, strlen(admin));
    char *t = malloc(strlen(h) + strlen(p) + (len - d2) + 2);
    sprintf(t, "%s.%s%s", h, p, tok + d2);
    expect("payload swapped", t, key, BG_EAUTH);
    free(t);
    free(p);
    free(h);

    /* the MAC is checked before the payload is decoded: an empty or
     * undecodable payload under someone else's signature is a forgery */
    static const char *const forged_payloads[] = {"", "+AAA", "AAAAA", "eyJ!"};
    for (size_t i = 0; i < N_ELEMS(forged_payloads); i++) {
        t = malloc(d1 + strlen(forged_payloads[i]) + (len - d2) + 2);
        sprintf(t, "%.*s.%s%s", (int)d1, tok, forged_payloads[i], tok + d2);
        expect(t, t, key, BG_EAUTH);
        free(t);
    }

    expect("wrong key", tok, other, BG_EAUTH);
    uint8_t zero[32];
    memset(zero, 0, sizeof(zero));
    expect("zero key", tok, zero, BG_EAUTH);
    expect("right key", tok, key, BG_OK);

    free(tok);
    json_decref(claims);
}

static void test_algorithms(void **state)
{
    (void)state;
    uint8_t key[32];
    test_key(key, 1);
    const char *claims = "{\"sub\":\"u\",\"exp\":1700003600}";
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS384\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"ES256\"}",
        "{\"alg\":\"EdDSA\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"\"}",
        "{\"alg\":null}",
        "{\"alg\":256}",
        "{\"alg\":[\"HS256\"]}",
        "{\"typ\":\"JWT\"}",
        "{}",
        "{\"ALG\":\"HS256\"}",
    };
    /* each header is signed with the right key over its own text: only the
     * algorithm is wrong */
    for (size_t i = 0; i < N_ELEMS(headers); i++) {
        char *t = craft(headers[i], claims, key);
        expect(headers[i], t, key, BG_EAUTH);
        free(t);
    }

    /* the classic "alg":"none" token: no signature at all */
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    char *h = b64(none, strlen(none));
    char *p = b64(claims, strlen(claims));
    char *t = malloc(strlen(h) + strlen(p) + 3);
    sprintf(t, "%s.%s.", h, p);
    json_t *out = NULL;
    bg_err rc = verify(t, key, &out);
    assert_true(rc == BG_EAUTH || rc == BG_EINVAL);
    assert_null(out);
    free(t);
    free(p);
    free(h);

    /* HS256 with the very same claims and key is fine */
    t = craft(hs256_header, claims, key);
    expect("HS256 control", t, key, BG_OK);
    free(t);
}

/* ---- times ------------------------------------------------------------- */

static void test_times(void **state)
{
    (void)state;
    uint8_t key[32];
    test_key(key, 7);
    static const struct {
        const char *claims;
        bg_err want;
    } cases[] = {
        /* exp must be after now */
        {"{\"exp\":1700000001}", BG_OK},
        {"{\"exp\":1700000000}", BG_EAUTH}, /* == now */
        {"{\"exp\":1699999999}", BG_EAUTH},
        {"{\"exp\":0}", BG_EAUTH},
        {"{\"exp\":-1}", BG_EAUTH},
        {"{\"exp\":9223372036854775807}", BG_OK},
        /* exp is required and an integer */
        {"{}", BG_EAUTH},
        {"{\"sub\":\"u\",\"iat\":1700000000}", BG_EAUTH},
        {"{\"exp\":\"1700003600\"}", BG_EAUTH},
        {"{\"exp\":1700003600.0}", BG_EAUTH},
        {"{\"exp\":null}", BG_EAUTH},
        {"{\"exp\":true}", BG_EAUTH},
        {"{\"EXP\":1700003600}", BG_EAUTH},
        /* iat, when present, at most SKEW seconds ahead */
        {"{\"iat\":1700000000,\"exp\":1700003600}", BG_OK},
        {"{\"iat\":1600000000,\"exp\":1700003600}", BG_OK},
        {"{\"iat\":1700000059,\"exp\":1700003600}", BG_OK},
        {"{\"iat\":1700000060,\"exp\":1700003600}", BG_OK},
        {"{\"iat\":1700000061,\"exp\":1700003600}", BG_EAUTH},
        {"{\"iat\":1700086400,\"exp\":1700090000}", BG_EAUTH},
        {"{\"iat\":\"1700000000\",\"exp\":1700003600}", BG_EAUTH},
        {"{\"iat\":1700000000.5,\"exp\":1700003600}", BG_EAUTH},
        {"{\"iat\":null,\"exp\":1700003600}", BG_EAUTH},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *t = craft(hs256_header, cases[i].claims, key);
        expect(cases[i].claims, t, key, cases[i].want);
        free(t);
    }

    /* the same token over time, and with no skew allowed */
    char *t = craft(hs256_header, "{\"iat\":1700000010,\"exp\":1700000100}", key);
    json_t *out = NULL;
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000010, 0, &out), BG_OK);
    json_decref(out);
    out = NULL;
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000009, 0, &out), BG_EAUTH);
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000009, 1, &out), BG_OK);
    json_decref(out);
    out = NULL;
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000099, 0, &out), BG_OK);
    json_decref(out);
    out = NULL;
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000100, 0, &out), BG_EAUTH);
    assert_int_equal(bg_jwt_verify(t, strlen(t), key, 1700000100, SKEW, &out), BG_EAUTH);
    assert_null(out);
    free(t);
}

/* ---- malformed --------------------------------------------------------- */

/* Replaces {H}, {P} and {S} in tpl with h, p and s. */
static void expand(char *out, size_t cap, const char *tpl, const char *h, const char *p,
                   const char *s)
{
    size_t o = 0;
    for (const char *t = tpl; *t != '\0';) {
        const char *part = strncmp(t, "{H}", 3) == 0   ? h
                           : strncmp(t, "{P}", 3) == 0 ? p
                           : strncmp(t, "{S}", 3) == 0 ? s
                                                       : NULL;
        size_t n = part ? strlen(part) : 1;
        assert_true(o + n < cap);
        memcpy(out + o, part ? part : t, n);
        o += n;
        t += part ? 3 : 1;
    }
    out[o] = '\0';
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t key[32];
    test_key(key, 9);
    json_t *claims = load("{\"sub\":\"u\",\"exp\":1700003600}");
    char *tok = bg_jwt_sign(claims, key);
    size_t d1, d2;
    dots(tok, &d1, &d2);
    char *h = strndup(tok, d1), *p = strndup(tok + d1 + 1, d2 - d1 - 1), *s = strdup(tok + d2 + 1);

    /* structure: never three parts ({H}, {P}, {S}: the token's parts) */
    static const char *const shapes[] = {
        "", ".", "..", "...", "{H}", "{H}.{P}", "{H}{P}{S}", "{H}.{P}{S}", "{H}.{P}.{S}.",
        "{H}.{P}.{S}.{S}", "{H}..{P}.{S}", ".{H}.{P}.{S}", "{H}.{P}..{S}",
        /* empty header or signature (an empty payload is below) */
        ".{P}.{S}", "{H}.{P}.",
        /* bad base64url in header or signature */
        "+{H}.{P}.{S}", "{H}=.{P}.{S}", "{H} .{P}.{S}", "{H}/.{P}.{S}", "{H}.{P}.+{S}",
        "{H}.{P}.{S}=", "{H}.{P}.{S}\n", "{H}.{P}.{S}/", "{H}.{P}.{S} ",
        /* signature of the wrong size */
        "{H}.{P}.AAAA", "{H}.{P}.{S}AAAA", "{H}.{P}.{S}{S}",
    };
    char buf[1024];
    for (size_t i = 0; i < N_ELEMS(shapes); i++) {
        expand(buf, sizeof(buf), shapes[i], h, p, s);
        expect(shapes[i], buf, key, BG_EINVAL);
    }
    /* 42 characters of signature: 31 bytes */
    snprintf(buf, sizeof(buf), "%s.%s.%.42s", h, p, s);
    expect("31-byte signature", buf, key, BG_EINVAL);

    /* header not JSON, not an object, duplicate keys (signed correctly) */
    static const char *const bad_headers[] = {
        "not json", "[\"HS256\"]", "\"HS256\"", "{\"alg\":\"HS256\"", "{\"alg\":\"HS256\"} x",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":\"\xff\"}",
    };
    for (size_t i = 0; i < N_ELEMS(bad_headers); i++) {
        char *t = craft(bad_headers[i], "{\"exp\":1700003600}", key);
        expect(bad_headers[i], t, key, BG_EINVAL);
        free(t);
    }

    /* payload not base64url, not JSON, not an object: with a valid MAC,
     * these are malformed rather than forged */
    char *hh = b64(hs256_header, strlen(hs256_header));
    static const char *const bad_payload_parts[] = {"", "+AAA", "AA=A", "A", "eyJ!", "AAAAA"};
    for (size_t i = 0; i < N_ELEMS(bad_payload_parts); i++) {
        char *t = sign_parts(hh, bad_payload_parts[i], key);
        expect(bad_payload_parts[i], t, key, BG_EINVAL);
        free(t);
    }
    static const char *const bad_claims[] = {
        "not json", "[]", "[{\"exp\":1700003600}]", "1700003600", "null", "\"exp\"",
        "{\"exp\":1700003600", "{\"exp\":1700003600} {}", "{\"exp\":1,\"exp\":1700003600}",
        "{\"sub\":\"\xc3\x28\",\"exp\":1700003600}",
    };
    for (size_t i = 0; i < N_ELEMS(bad_claims); i++) {
        char *t = craft(hs256_header, bad_claims[i], key);
        expect(bad_claims[i], t, key, BG_EINVAL);
        free(t);
    }
    free(hh);

    json_t *out = NULL;
    assert_int_equal(bg_jwt_verify(NULL, 0, key, NOW, SKEW, &out), BG_EINVAL);
    assert_int_equal(bg_jwt_verify(tok, 0, key, NOW, SKEW, &out), BG_EINVAL);
    assert_null(out);
    expect("control", tok, key, BG_OK);

    free(s);
    free(p);
    free(h);
    free(tok);
    json_decref(claims);
}

static void test_length_limit(void **state)
{
    (void)state;
    uint8_t key[32];
    test_key(key, 3);
    /* header (36) + "." + payload + "." + signature (43) = BG_JWT_MAX when
     * the payload part is 4015 characters, i.e. 3011 bytes of claims */
    json_t *claims = load("{\"exp\":1700003600,\"pad\":\"\"}");
    size_t base = strlen("{\"exp\":1700003600,\"pad\":\"\"}");
    size_t k = 3011 - base;
    char *pad = malloc(k + 2);
    memset(pad, 'x', k + 1);
    pad[k] = '\0';
    json_object_set_new(claims, "pad", json_string(pad));
    char *tok = bg_jwt_sign(claims, key);
    assert_int_equal(strlen(tok), BG_JWT_MAX);
    expect("BG_JWT_MAX characters", tok, key, BG_OK);
    free(tok);

    pad[k] = 'x';
    pad[k + 1] = '\0';
    json_object_set_new(claims, "pad", json_string(pad));
    tok = bg_jwt_sign(claims, key);
    assert_int_equal(strlen(tok), BG_JWT_MAX + 1);
    expect("BG_JWT_MAX + 1 characters", tok, key, BG_EINVAL);
    free(tok);

    free(pad);
    json_decref(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_verify_foreign_token),
        cmocka_unit_test(test_jwtio_vector),
        cmocka_unit_test(test_openssl_cross_check),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_length_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
