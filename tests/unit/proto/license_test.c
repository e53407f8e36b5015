/*
 * Unit tests for proto/license.h: signed license tokens and receipts
 * (BG1./BGR1.<b64url(payload)>.<b64url(Ed25519 signature over the prefix
 * and the b64url payload text)>), the domain rules and time rules of DESIGN section 6,
 * the code names and the payload shape check.
 *
 * The token layout is checked independently of bg_license_open: the
 * signature part is verified with bg_sig_ed25519_verify over the payload
 * part's text, and the payload part decodes to the compact JSON that was
 * signed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/license.h"
#include "proto/sig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* DESIGN section 6 payload, with fixed UUIDs and times. */
static const char valid_payload[] =
    "{\"lid\":\"123e4567-e89b-42d3-a456-426614174000\","
    "\"org\":\"9b2f4c1e-7d3a-4e5f-8a6b-0c1d2e3f4a5b\","
    "\"tier\":\"pro\","
    "\"domains\":[\"example.com\",\"*.example.org\"],"
    "\"features\":[],"
    "\"limits\":{\"branches\":3,\"users\":100},"
    "\"nbf\":1700000000,\"exp\":1731536000}";

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        fail_msg("test literal does not parse: %s (%s)", text, jerr.text);
    return v;
}

/* Another base64url character: keeps the text valid base64url. */
static char flip(char c)
{
    return c == 'A' ? 'B' : 'A';
}

/* Where the payload part of a signed token starts and ends, checking that
 * there is exactly one dot after the prefix. */
static void parts(const char *tok, const char *prefix, size_t *body_at, size_t *dot_at)
{
    size_t plen = strlen(prefix);
    assert_memory_equal(tok, prefix, plen);
    const char *dot = strchr(tok + plen, '.');
    assert_non_null(dot);
    assert_null(strchr(dot + 1, '.'));
    *body_at = plen;
    *dot_at = (size_t)(dot - tok);
}

/* Signs raw bytes (not necessarily JSON) the way bg_license_sign lays a
 * token out, without using it. */
static char *sign_raw(const char *prefix, const void *payload, size_t n,
                      const uint8_t sk[BG_ED25519_SK_BYTES])
{
    size_t plen = strlen(prefix), blen = bg_b64url_len(n);
    char *out = malloc(plen + blen + 1 + bg_b64url_len(BG_ED25519_SIG_BYTES) + 1);
    assert_non_null(out);
    memcpy(out, prefix, plen);
    bg_b64url_encode(payload, n, out + plen);
    uint8_t sig[BG_ED25519_SIG_BYTES];
    /* The signing input is the prefix and the payload part. */
    bg_sig_ed25519_sign(sk, out, plen + blen, sig);
    out[plen + blen] = '.';
    bg_b64url_encode(sig, sizeof(sig), out + plen + blen + 1);
    return out;
}

/* ---- sign / open / peek ------------------------------------------------ */

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *p = load(valid_payload);

    char *tok = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    assert_non_null(tok);
    size_t body_at, dot_at, len = strlen(tok);
    parts(tok, BG_LICENSE_PREFIX, &body_at, &dot_at);
    assert_true(len <= BG_LICENSE_TOKEN_MAX);
    assert_int_equal(strspn(tok + body_at, b64url_alphabet), dot_at - body_at);
    assert_int_equal(strspn(tok + dot_at + 1, b64url_alphabet), len - dot_at - 1);

    /* payload part: base64url of the compact JSON */
    size_t jlen;
    char *json = bg_json_dump(p, &jlen);
    uint8_t *raw = malloc(dot_at - body_at);
    size_t n = 0;
    assert_int_equal(bg_b64url_decode(tok + body_at, dot_at - body_at, raw, dot_at - body_at, &n),
                     BG_OK);
    assert_int_equal(n, jlen);
    assert_memory_equal(raw, json, jlen);
    free(raw);
    free(json);

    /* signature part: Ed25519 over the prefix and the payload part's text */
    uint8_t sig[BG_ED25519_SIG_BYTES];
    assert_int_equal(len - dot_at - 1, bg_b64url_len(BG_ED25519_SIG_BYTES));
    assert_int_equal(bg_b64url_decode(tok + dot_at + 1, len - dot_at - 1, sig, sizeof(sig), &n),
                     BG_OK);
    assert_int_equal(n, BG_ED25519_SIG_BYTES);
    assert_int_equal(bg_sig_ed25519_verify(pk, tok, dot_at, sig), BG_OK);
    /* ... and not over the payload alone (a receipt cannot pose as a license). */
    assert_int_equal(bg_sig_ed25519_verify(pk, tok + body_at, dot_at - body_at, sig), BG_EAUTH);

    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, len, pk, &out), BG_OK);
    assert_non_null(out);
    assert_true(json_equal(out, p));
    assert_int_equal(bg_license_payload_check(out), BG_OK);
    json_decref(out);

    out = NULL;
    assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, tok, len, &out), BG_OK);
    assert_true(json_equal(out, p));
    json_decref(out);

    /* Ed25519 is deterministic: the same payload gives the same token */
    char *again = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    assert_string_equal(tok, again);
    free(again);

    /* len, not the terminator, bounds the token */
    char *longer = malloc(len + 8);
    memcpy(longer, tok, len);
    memcpy(longer + len, ".junk!", 7);
    out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, longer, len, pk, &out), BG_OK);
    json_decref(out);
    out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, longer, len - 1, pk, &out), BG_EINVAL);
    assert_null(out);
    free(longer);

    free(tok);
    json_decref(p);
}

static void test_receipt_round_trip(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *r = load("{\"lid\":\"123e4567-e89b-42d3-a456-426614174000\",\"domain\":\"a.example.org\","
                     "\"code\":\"VALID\",\"checked_at\":1700000123,\"by\":\"top\"}");
    char *tok = bg_license_sign(BG_RECEIPT_PREFIX, r, sk);
    size_t body_at, dot_at;
    parts(tok, BG_RECEIPT_PREFIX, &body_at, &dot_at);

    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_RECEIPT_PREFIX, tok, strlen(tok), pk, &out), BG_OK);
    assert_true(json_equal(out, r));
    json_decref(out);

    /* a receipt is not a license, and a license is not a receipt */
    out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, strlen(tok), pk, &out), BG_EINVAL);
    assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, tok, strlen(tok), &out), BG_EINVAL);
    assert_null(out);
    char *lic = bg_license_sign(BG_LICENSE_PREFIX, r, sk);
    assert_int_equal(bg_license_open(BG_RECEIPT_PREFIX, lic, strlen(lic), pk, &out), BG_EINVAL);
    assert_int_equal(bg_license_peek(BG_RECEIPT_PREFIX, lic, strlen(lic), &out), BG_EINVAL);
    assert_null(out);

    free(lic);
    free(tok);
    json_decref(r);
}

static void test_tampered_payload(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *p = load(valid_payload);
    char *tok = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    size_t body_at, dot_at, len = strlen(tok);
    parts(tok, BG_LICENSE_PREFIX, &body_at, &dot_at);

    /* Every character of the payload part but the last (whose low bits
     * may have to be zero) can change and stay valid base64url; whatever
     * the bytes decode to, the signature no longer matches. */
    for (size_t i = body_at; i + 1 < dot_at; i++) {
        char saved = tok[i];
        tok[i] = flip(saved);
        json_t *out = NULL;
        bg_err rc = bg_license_open(BG_LICENSE_PREFIX, tok, len, pk, &out);
        if (rc != BG_EAUTH || out != NULL) {
            print_error("payload char %zu '%c'->'%c': rc=%d, want BG_EAUTH\n", i - body_at, saved,
                        tok[i], rc);
            fail();
        }
        tok[i] = saved;
    }

    /* a different, validly signed payload spliced onto this signature */
    json_object_set_new(p, "tier", json_string("enterprise"));
    char *other = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    size_t obody, odot;
    parts(other, BG_LICENSE_PREFIX, &obody, &odot);
    size_t slen = len - dot_at; /* ".sig" */
    char *spliced = malloc(odot + slen + 1);
    memcpy(spliced, other, odot);
    memcpy(spliced + odot, tok + dot_at, slen + 1);
    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, spliced, strlen(spliced), pk, &out),
                     BG_EAUTH);
    assert_null(out);
    /* peek does not verify: it reads the spliced payload */
    assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, spliced, strlen(spliced), &out), BG_OK);
    assert_string_equal(json_string_value(json_object_get(out, "tier")), "enterprise");
    json_decref(out);

    free(spliced);
    free(other);
    free(tok);
    json_decref(p);
}

static void test_tampered_signature(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *p = load(valid_payload);
    char *tok = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    size_t body_at, dot_at, len = strlen(tok);
    parts(tok, BG_LICENSE_PREFIX, &body_at, &dot_at);

    for (size_t i = dot_at + 1; i + 1 < len; i++) {
        char saved = tok[i];
        tok[i] = flip(saved);
        json_t *out = NULL;
        bg_err rc = bg_license_open(BG_LICENSE_PREFIX, tok, len, pk, &out);
        if (rc != BG_EAUTH || out != NULL) {
            print_error("signature char %zu: rc=%d, want BG_EAUTH\n", i - dot_at - 1, rc);
            fail();
        }
        /* peek never looks at the signature */
        assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, tok, len, &out), BG_OK);
        assert_true(json_equal(out, p));
        json_decref(out);
        tok[i] = saved;
    }

    /* a signature over the right text by another key */
    uint8_t pk2[BG_ED25519_PK_BYTES], sk2[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk2, sk2);
    char *other = bg_license_sign(BG_LICENSE_PREFIX, p, sk2);
    assert_int_equal(strlen(other), len);
    assert_memory_equal(other, tok, dot_at + 1); /* same payload part */
    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, other, len, pk, &out), BG_EAUTH);
    assert_null(out);

    free(other);
    free(tok);
    json_decref(p);
}

static void test_wrong_public_key(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    uint8_t pk2[BG_ED25519_PK_BYTES], sk2[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    bg_sig_ed25519_keypair(pk2, sk2);
    json_t *p = load(valid_payload);
    char *tok = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    size_t len = strlen(tok);

    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, len, pk2, &out), BG_EAUTH);
    assert_null(out);
    uint8_t zero[BG_ED25519_PK_BYTES];
    memset(zero, 0, sizeof(zero));
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, len, zero, &out), BG_EAUTH);
    assert_null(out);
    /* the secret key's own half is the public key */
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, len, sk + 32, &out), BG_OK);
    json_decref(out);

    free(tok);
    json_decref(p);
}

/* Templates: {B} is the payload part, {S} the signature part and {s} the
 * signature part without its last two characters (63 bytes). */
static char *expand(const char *tpl, const char *body, size_t blen, const char *sig, size_t slen)
{
    size_t cap = strlen(tpl) + 2 * (blen + slen) + 1, o = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *t = tpl; *t != '\0';) {
        if (strncmp(t, "{B}", 3) == 0) {
            memcpy(out + o, body, blen);
            o += blen;
            t += 3;
        } else if (strncmp(t, "{S}", 3) == 0) {
            memcpy(out + o, sig, slen);
            o += slen;
            t += 3;
        } else if (strncmp(t, "{s}", 3) == 0) {
            memcpy(out + o, sig, slen - 2);
            o += slen - 2;
            t += 3;
        } else {
            out[o++] = *t++;
        }
    }
    out[o] = '\0';
    return out;
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *p = load(valid_payload);
    char *tok = bg_license_sign(BG_LICENSE_PREFIX, p, sk);
    size_t body_at, dot_at, len = strlen(tok);
    parts(tok, BG_LICENSE_PREFIX, &body_at, &dot_at);
    const char *body = tok + body_at, *sig = tok + dot_at + 1;
    size_t blen = dot_at - body_at, slen = len - dot_at - 1;

    /* open is BG_EINVAL for all; peek reads only prefix and payload part */
    static const struct {
        const char *name, *tpl;
        bg_err peek;
    } cases[] = {
        {"the token itself", "BG1.{B}.{S}", BG_OK}, /* control */
        {"empty", "", BG_EINVAL},
        {"prefix only", "BG1.", BG_EINVAL},
        {"prefix without dot", "BG1", BG_EINVAL},
        {"prefix and dots", "BG1...", BG_EINVAL},
        {"no prefix", "{B}.{S}", BG_EINVAL},
        {"receipt prefix", "BGR1.{B}.{S}", BG_EINVAL},
        {"lower-case prefix", "bg1.{B}.{S}", BG_EINVAL},
        {"other version", "BG2.{B}.{S}", BG_EINVAL},
        {"prefix missing its dot", "BG1{B}.{S}", BG_EINVAL},
        {"leading space", " BG1.{B}.{S}", BG_EINVAL},
        {"missing dot", "BG1.{B}{S}", BG_EINVAL},
        {"extra dot at the end", "BG1.{B}.{S}.", BG_EINVAL},
        {"extra part", "BG1.{B}.{S}.{S}", BG_EINVAL},
        {"double dot", "BG1.{B}..{S}", BG_EINVAL},
        {"dot after prefix", "BG1..{B}.{S}", BG_EINVAL},
        {"dot inside the payload", "BG1.{B}.x.{S}", BG_EINVAL},
        {"empty payload", "BG1..{S}", BG_EINVAL},
        {"empty signature", "BG1.{B}.", BG_EINVAL},
        {"both empty", "BG1..", BG_EINVAL},
        {"payload: standard alphabet", "BG1.+{B}.{S}", BG_EINVAL},
        {"payload: slash", "BG1./{B}.{S}", BG_EINVAL},
        {"payload: padding", "BG1.{B}=.{S}", BG_EINVAL},
        {"payload: space", "BG1.{B} .{S}", BG_EINVAL},
        {"payload: non-ascii", "BG1.{B}\xc3\xa9.{S}", BG_EINVAL},
        {"signature: standard alphabet", "BG1.{B}.+{S}", BG_OK},
        {"signature: padding", "BG1.{B}.{S}==", BG_OK},
        {"signature: space", "BG1.{B}.{S} ", BG_OK},
        {"signature: 63 bytes", "BG1.{B}.{s}", BG_OK},
        {"signature: 66 bytes", "BG1.{B}.{S}AA", BG_OK},
        {"signature: 3 bytes", "BG1.{B}.AAAA", BG_OK},
        {"signature: twice", "BG1.{B}.{S}{S}", BG_OK},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *t = expand(cases[i].tpl, body, blen, sig, slen);
        bg_err want_open = i == 0 ? BG_OK : BG_EINVAL;
        json_t *out = NULL;
        bg_err rc = bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out);
        if (rc != want_open || (rc != BG_OK) != (out == NULL)) {
            print_error("%s: open rc=%d, want %d\n", cases[i].name, rc, want_open);
            fail();
        }
        json_decref(out);
        out = NULL;
        rc = bg_license_peek(BG_LICENSE_PREFIX, t, strlen(t), &out);
        if (rc != cases[i].peek || (rc != BG_OK) != (out == NULL)) {
            print_error("%s: peek rc=%d, want %d\n", cases[i].name, rc, cases[i].peek);
            fail();
        }
        if (out != NULL)
            assert_true(json_equal(out, p));
        json_decref(out);
        free(t);
    }

    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, NULL, 0, pk, &out), BG_EINVAL);
    assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, NULL, 0, &out), BG_EINVAL);
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, tok, 0, pk, &out), BG_EINVAL);
    assert_null(out);

    free(tok);
    json_decref(p);
}

/* Validly signed payloads that are not JSON objects. */
static void test_payload_not_an_object(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    static const char *const raw[] = {
        "[]", "[{}]", "\"lid\"", "42", "null", "true", "not json", "{\"a\":1", "{} x",
        "{\"a\":1,\"a\":2}", "{\"a\":\"\xff\"}", " ",
    };
    for (size_t i = 0; i < N_ELEMS(raw); i++) {
        char *t = sign_raw(BG_LICENSE_PREFIX, raw[i], strlen(raw[i]), sk);
        json_t *out = NULL;
        bg_err ro = bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out);
        bg_err rp = bg_license_peek(BG_LICENSE_PREFIX, t, strlen(t), &out);
        if (ro != BG_EINVAL || rp != BG_EINVAL || out != NULL) {
            print_error("payload '%s': open rc=%d, peek rc=%d, want BG_EINVAL\n", raw[i], ro, rp);
            fail();
        }
        free(t);
    }

    /* bg_license_sign itself, handed a non-object */
    json_t *arr = json_array();
    char *t = bg_license_sign(BG_LICENSE_PREFIX, arr, sk);
    json_t *out = NULL;
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out), BG_EINVAL);
    assert_null(out);
    free(t);
    json_decref(arr);

    /* control: the same helper with an object verifies */
    t = sign_raw(BG_LICENSE_PREFIX, "{}", 2, sk);
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out), BG_OK);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    free(t);
}

/* A payload {"pad":"xx..."} whose signed token is exactly `want` bytes. */
static char *token_of_length(const char *prefix, size_t want, const uint8_t sk[BG_ED25519_SK_BYTES])
{
    size_t plen = strlen(prefix), slen = bg_b64url_len(BG_ED25519_SIG_BYTES);
    const size_t overhead = strlen("{\"pad\":\"\"}");
    for (size_t k = 0; k < want; k++) {
        if (plen + bg_b64url_len(overhead + k) + 1 + slen != want)
            continue;
        char *pad = malloc(k + 1);
        memset(pad, 'x', k);
        pad[k] = '\0';
        json_t *p = json_pack("{s:s}", "pad", pad);
        char *t = bg_license_sign(prefix, p, sk);
        json_decref(p);
        free(pad);
        assert_int_equal(strlen(t), want);
        return t;
    }
    fail_msg("no %s token is exactly %zu bytes", prefix, want);
    return NULL;
}

static void test_length_limit(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    json_t *out = NULL;

    /* BGR1. (5) + 8100 + "." + 86 = 8192: the longest accepted */
    char *t = token_of_length(BG_RECEIPT_PREFIX, BG_LICENSE_TOKEN_MAX, sk);
    assert_int_equal(bg_license_open(BG_RECEIPT_PREFIX, t, strlen(t), pk, &out), BG_OK);
    json_decref(out);
    out = NULL;
    free(t);
    /* base64url lengths skip 4k+1, so the next receipt size is 8194 */
    t = token_of_length(BG_RECEIPT_PREFIX, BG_LICENSE_TOKEN_MAX + 2, sk);
    assert_int_equal(bg_license_open(BG_RECEIPT_PREFIX, t, strlen(t), pk, &out), BG_EINVAL);
    assert_int_equal(bg_license_peek(BG_RECEIPT_PREFIX, t, strlen(t), &out), BG_EINVAL);
    assert_null(out);
    free(t);

    /* BG1.: 8191 is accepted, 8193 (validly signed) is not */
    t = token_of_length(BG_LICENSE_PREFIX, BG_LICENSE_TOKEN_MAX - 1, sk);
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out), BG_OK);
    json_decref(out);
    out = NULL;
    free(t);
    t = token_of_length(BG_LICENSE_PREFIX, BG_LICENSE_TOKEN_MAX + 1, sk);
    assert_int_equal(bg_license_open(BG_LICENSE_PREFIX, t, strlen(t), pk, &out), BG_EINVAL);
    assert_int_equal(bg_license_peek(BG_LICENSE_PREFIX, t, strlen(t), &out), BG_EINVAL);
    assert_null(out);
    free(t);
}

/* ---- domains ----------------------------------------------------------- */

static void test_domain_match_table(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *domain;
        bool want;
    } cases[] = {
        /* exact */
        {"example.com", "example.com", true},
        {"example.com", "example.org", false},
        {"example.com", "example.co", false},
        {"example.co", "example.com", false},
        {"a.example.com", "b.example.com", false},
        /* case-insensitive, both sides */
        {"Example.COM", "example.com", true},
        {"example.com", "EXAMPLE.com", true},
        {"EXAMPLE.COM", "eXaMpLe.CoM", true},
        /* one trailing dot, either side */
        {"example.com.", "example.com", true},
        {"example.com", "example.com.", true},
        {"example.com.", "Example.Com.", true},
        {"example.com..", "example.com", false},
        {"example.com", "example.com..", false},
        /* a pattern without a wildcard covers no subdomain nor parent */
        {"example.com", "www.example.com", false},
        {"example.com", "a.b.example.com", false},
        {"www.example.com", "example.com", false},
        /* wildcards */
        {"*.example.org", "a.example.org", true},
        {"*.example.org", "b.a.example.org", true},
        {"*.example.org", "x-1.y2.z.example.org", true},
        {"*.example.org", "example.org", false},
        {"*.example.org", "example.org.", false},
        {"*.example.org", "badexample.org", false},
        {"*.example.org", "aexample.org", false},
        {"*.example.org", "a.example.org.evil.com", false},
        {"*.example.org", "a.example.org.", true},
        {"*.example.org", "A.EXAMPLE.ORG.", true},
        {"*.EXAMPLE.Org.", "a.example.org", true},
        {"*.example.org", "a.example.com", false},
        {"*.example.org", "example.org.a", false},
        {"*.a.example.org", "b.a.example.org", true},
        {"*.a.example.org", "a.example.org", false},
        {"*.a.example.org", "b.example.org", false},
        /* invalid patterns */
        {"", "example.com", false},
        {"*", "example.com", false},
        {"*.", "example.com", false},
        {"*", "*", false},
        {"a..b", "a..b", false},
        {".example.com", ".example.com", false},
        {"-a.org", "-a.org", false},
        {"a-.org", "a-.org", false},
        {"a.-b.org", "a.-b.org", false},
        {"exa mple.com", "exa mple.com", false},
        {" example.com", "example.com", false},
        {"example.com ", "example.com", false},
        {"ex_ample.com", "ex_ample.com", false},
        {"a.*.org", "a.b.org", false},
        {"a.*.org", "a.*.org", false},
        {"**.example.org", "a.example.org", false},
        {"*example.org", "aexample.org", false},
        {"*.*.example.org", "a.b.example.org", false},
        {"*..example.org", "a..example.org", false},
        {"*.-a.org", "b.-a.org", false},
        /* invalid domains, including a wildcard on the domain side */
        {"example.com", "", false},
        {"", "", false},
        {"*.example.org", "*.example.org", false},
        {"*.example.org", "a.*.example.org", false},
        {"*.example.org", "*a.example.org", false},
        {"example.org", "*.example.org", false},
        {"*.example.org", "a..example.org", false},
        {"*.example.org", "-a.example.org", false},
        {"*.example.org", "a-.example.org", false},
        {"*.example.org", "a b.example.org", false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bool got = bg_license_domain_match(cases[i].pattern, cases[i].domain);
        if (got != cases[i].want) {
            print_error("match(\"%s\", \"%s\"): got %d, want %d\n", cases[i].pattern,
                        cases[i].domain, got, cases[i].want);
            fail();
        }
    }
    assert_false(bg_license_domain_match(NULL, "example.com"));
    assert_false(bg_license_domain_match("example.com", NULL));
    assert_false(bg_license_domain_match(NULL, NULL));
}

/* "<label of n chars>.org" etc., with labels of 'a'. */
static void label_of(char *out, size_t n, const char *suffix)
{
    memset(out, 'a', n);
    strcpy(out + n, suffix);
}

static void test_domain_match_lengths(void **state)
{
    (void)state;
    char d[200], p[400], sub[400];

    /* 63-character labels on both sides */
    label_of(d, 63, ".org");
    assert_true(bg_license_domain_match(d, d));
    snprintf(p, sizeof(p), "*.%s", d);
    snprintf(sub, sizeof(sub), "x.%s", d);
    assert_true(bg_license_domain_match(p, sub));
    assert_false(bg_license_domain_match(p, d));

    /* 64: neither as a name, nor inside a pattern, nor on the domain side */
    label_of(d, 64, ".org");
    assert_false(bg_license_domain_match(d, d));
    snprintf(p, sizeof(p), "*.%s", d);
    snprintf(sub, sizeof(sub), "x.%s", d);
    assert_false(bg_license_domain_match(p, sub));
    label_of(d, 64, ".example.org");
    assert_false(bg_license_domain_match("*.example.org", d));
    label_of(d, 63, ".example.org");
    assert_true(bg_license_domain_match("*.example.org", d));
}

static void test_domain_normalize_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool pattern;
        const char *out; /* NULL: rejected */
    } cases[] = {
        {"example.com", false, "example.com"},
        {"example.com", true, "example.com"},
        {"Example.COM.", false, "example.com"},
        {"EXAMPLE.COM", true, "example.com"},
        {"*.Example.Org.", true, "*.example.org"},
        {"*.example.org", true, "*.example.org"},
        {"*.a", true, "*.a"},
        {"a", false, "a"},
        {"localhost", false, "localhost"},
        {"xn--bcher-kva.example", false, "xn--bcher-kva.example"},
        {"a-b.c0.9d.x-y-z", false, "a-b.c0.9d.x-y-z"},
        {"127.0.0.1", false, "127.0.0.1"},
        {"A.B.C.D.E.F", false, "a.b.c.d.e.f"},
        /* a wildcard is a pattern, never a domain */
        {"*.example.org", false, NULL},
        {"*", true, NULL},
        {"*.", true, NULL},
        {"*..", true, NULL},
        {"*.*", true, NULL},
        {"**.org", true, NULL},
        {"*a.org", true, NULL},
        {"a.*.org", true, NULL},
        {"a.*", true, NULL},
        {"*.-a.org", true, NULL},
        {"*.a-", true, NULL},
        {"*.a..b", true, NULL},
        /* empty labels, hyphens at label edges */
        {"", false, NULL},
        {"", true, NULL},
        {".", false, NULL},
        {"..", false, NULL},
        {".example.com", false, NULL},
        {"example.com..", false, NULL},
        {"a..b", false, NULL},
        {"-a.org", false, NULL},
        {"a-.org", false, NULL},
        {"a.-b.org", false, NULL},
        {"a.b-.org", false, NULL},
        {"a.org-", false, NULL},
        {"-", false, NULL},
        /* characters outside [A-Za-z0-9-.] */
        {"ex ample.com", false, NULL},
        {" example.com", false, NULL},
        {"example.com ", false, NULL},
        {"ex_ample.com", false, NULL},
        {"ex\tample.com", false, NULL},
        {"ex\xc3\xa4mple.com", false, NULL},
        {"example.com/", false, NULL},
        {"example.com:443", false, NULL},
        {"user@example.com", false, NULL},
        {"[::1]", false, NULL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[256];
        memset(out, '#', sizeof(out));
        bool ok = bg_license_domain_normalize(cases[i].in, cases[i].pattern, out, sizeof(out));
        if (ok != (cases[i].out != NULL) || (ok && strcmp(out, cases[i].out) != 0)) {
            print_error("normalize(\"%s\", %d): ok=%d out=\"%.*s\", want %s\n", cases[i].in,
                        cases[i].pattern, ok, ok ? 255 : 0, out,
                        cases[i].out ? cases[i].out : "rejected");
            fail();
        }
    }
    char out[8];
    assert_false(bg_license_domain_normalize(NULL, false, out, sizeof(out)));
    assert_false(bg_license_domain_normalize(NULL, true, out, sizeof(out)));
}

static void test_domain_normalize_lengths(void **state)
{
    (void)state;
    char in[300], out[300];

    /* labels: 63 characters, not 64 */
    label_of(in, 63, ".org");
    assert_true(bg_license_domain_normalize(in, false, out, sizeof(out)));
    assert_string_equal(out, in);
    label_of(in, 64, ".org");
    assert_false(bg_license_domain_normalize(in, false, out, sizeof(out)));
    label_of(in, 63, "");
    assert_true(bg_license_domain_normalize(in, false, out, sizeof(out)));
    label_of(in, 64, "");
    assert_false(bg_license_domain_normalize(in, false, out, sizeof(out)));

    /* names: 253 characters without the trailing dot, not 254 */
    char name[300];
    label_of(name, 63, ".");
    label_of(name + 64, 63, ".");
    label_of(name + 128, 63, ".");
    label_of(name + 192, 61, ""); /* 253 in all */
    assert_int_equal(strlen(name), 253);
    assert_true(bg_license_domain_normalize(name, false, out, sizeof(out)));
    assert_string_equal(out, name);
    strcpy(in, name);
    strcat(in, "."); /* 254 with the dot that is ignored */
    assert_true(bg_license_domain_normalize(in, false, out, sizeof(out)));
    assert_string_equal(out, name);
    strcpy(in, name);
    strcat(in, "a"); /* 254 */
    assert_false(bg_license_domain_normalize(in, false, out, sizeof(out)));

    /* a pattern counts its "*." too */
    in[0] = '*';
    in[1] = '.';
    strcpy(in + 2, name + 2); /* 253 */
    assert_true(bg_license_domain_normalize(in, true, out, sizeof(out)));
    assert_string_equal(out, in);
    strcpy(in + 2, name + 1); /* 254 */
    assert_false(bg_license_domain_normalize(in, true, out, sizeof(out)));

    /* the output buffer needs the name and its terminator */
    assert_true(bg_license_domain_normalize("Example.COM.", false, out, 12));
    assert_string_equal(out, "example.com");
    assert_false(bg_license_domain_normalize("Example.COM.", false, out, 11));
    assert_false(bg_license_domain_normalize("a", false, out, 1));
    assert_false(bg_license_domain_normalize("a", false, out, 0));
    assert_true(bg_license_domain_normalize("a", false, out, 2));
    assert_string_equal(out, "a");
}

/* ---- time -------------------------------------------------------------- */

static void test_check_time(void **state)
{
    (void)state;
    const int64_t nbf = 1700000000, exp = nbf + 365 * 86400, week = 7 * 86400;
    static const char *const names[] = {
        "VALID", "NOT_FOUND", "INVALID_SIGNATURE", "EXPIRED", "NOT_YET_VALID", "SUSPENDED",
        "DOMAIN_MISMATCH", "TOO_MANY_BRANCHES", "GRACE", "VALID_CACHED", "UNAVAILABLE",
    };
    struct {
        int64_t now, grace;
        bg_license_code want;
    } cases[] = {
        {0, week, BG_LIC_NOT_YET_VALID},
        {nbf - 1, week, BG_LIC_NOT_YET_VALID},
        {nbf, week, BG_LIC_VALID},
        {nbf + 1, week, BG_LIC_VALID},
        {exp - 1, week, BG_LIC_VALID},
        {exp, week, BG_LIC_GRACE},
        {exp + 1, week, BG_LIC_GRACE},
        {exp + week - 1, week, BG_LIC_GRACE},
        {exp + week, week, BG_LIC_EXPIRED},
        {exp + week + 1, week, BG_LIC_EXPIRED},
        {exp + 10 * week, week, BG_LIC_EXPIRED},
        /* no grace period */
        {nbf - 1, 0, BG_LIC_NOT_YET_VALID},
        {exp - 1, 0, BG_LIC_VALID},
        {exp, 0, BG_LIC_EXPIRED},
        {exp + 1, 0, BG_LIC_EXPIRED},
        /* one second of grace */
        {exp, 1, BG_LIC_GRACE},
        {exp + 1, 1, BG_LIC_EXPIRED},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_license_code got = bg_license_check_time(nbf, exp, cases[i].now, cases[i].grace);
        if (got != cases[i].want) {
            print_error("now=nbf%+lld grace=%lld: got %s, want %s\n",
                        (long long)(cases[i].now - nbf), (long long)cases[i].grace,
                        (unsigned)got < N_ELEMS(names) ? names[got] : "?", names[cases[i].want]);
            fail();
        }
    }
    /* small numbers, and a license that never expires in practice */
    assert_int_equal(bg_license_check_time(10, 20, 9, 5), BG_LIC_NOT_YET_VALID);
    assert_int_equal(bg_license_check_time(10, 20, 10, 5), BG_LIC_VALID);
    assert_int_equal(bg_license_check_time(10, 20, 19, 5), BG_LIC_VALID);
    assert_int_equal(bg_license_check_time(10, 20, 20, 5), BG_LIC_GRACE);
    assert_int_equal(bg_license_check_time(10, 20, 24, 5), BG_LIC_GRACE);
    assert_int_equal(bg_license_check_time(10, 20, 25, 5), BG_LIC_EXPIRED);
    assert_int_equal(bg_license_check_time(0, INT64_MAX, INT64_MAX - 1, week), BG_LIC_VALID);
}

/* ---- codes ------------------------------------------------------------- */

static void test_code_names(void **state)
{
    (void)state;
    static const struct {
        bg_license_code code;
        const char *name;
        bool ok;
    } cases[] = {
        {BG_LIC_VALID, "VALID", true},
        {BG_LIC_NOT_FOUND, "NOT_FOUND", false},
        {BG_LIC_INVALID_SIGNATURE, "INVALID_SIGNATURE", false},
        {BG_LIC_EXPIRED, "EXPIRED", false},
        {BG_LIC_NOT_YET_VALID, "NOT_YET_VALID", false},
        {BG_LIC_SUSPENDED, "SUSPENDED", false},
        {BG_LIC_DOMAIN_MISMATCH, "DOMAIN_MISMATCH", false},
        {BG_LIC_TOO_MANY_BRANCHES, "TOO_MANY_BRANCHES", false},
        {BG_LIC_GRACE, "GRACE", true},
        {BG_LIC_VALID_CACHED, "VALID_CACHED", true},
        {BG_LIC_UNAVAILABLE, "UNAVAILABLE", false},
    };
    assert_int_equal(N_ELEMS(cases), BG_LIC_CODE_COUNT_);
    assert_int_equal(BG_LIC_CODE_COUNT_, 11);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *name = bg_license_code_name(cases[i].code);
        assert_non_null(name);
        if (strcmp(name, cases[i].name) != 0 || bg_license_code_parse(name) != (int)cases[i].code ||
            bg_license_code_ok(cases[i].code) != cases[i].ok) {
            print_error("code %d: name \"%s\" parse %d ok %d, want \"%s\" %d %d\n",
                        (int)cases[i].code, name, bg_license_code_parse(name),
                        bg_license_code_ok(cases[i].code), cases[i].name, (int)cases[i].code,
                        cases[i].ok);
            fail();
        }
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(name, bg_license_code_name(cases[j].code));
    }

    static const char *const unknown[] = {
        "", "valid", "Valid", " VALID", "VALID ", "VALID_", "VALI", "UNKNOWN", "OK", "0",
        "GRACE\n", "NOT-FOUND",
    };
    for (size_t i = 0; i < N_ELEMS(unknown); i++) {
        if (bg_license_code_parse(unknown[i]) != -1) {
            print_error("\"%s\" parsed as %d\n", unknown[i], bg_license_code_parse(unknown[i]));
            fail();
        }
    }
    assert_int_equal(bg_license_code_parse(NULL), -1);
}

/* ---- payload shape ----------------------------------------------------- */

/* A copy of the valid payload with one change: key is "name" or
 * "limits.name"; value is JSON text, or NULL to remove the key. */
static json_t *mutated(const char *key, const char *value)
{
    json_t *p = load(valid_payload);
    json_t *obj = p;
    const char *dot = strchr(key, '.');
    char top[32];
    if (dot != NULL) {
        snprintf(top, sizeof(top), "%.*s", (int)(dot - key), key);
        obj = json_object_get(p, top);
        assert_non_null(obj);
        key = dot + 1;
    }
    if (value == NULL)
        assert_int_equal(json_object_del(obj, key), 0);
    else
        assert_int_equal(json_object_set_new(obj, key, load(value)), 0);
    return p;
}

static void test_payload_check_table(void **state)
{
    (void)state;
    json_t *base = load(valid_payload);
    assert_int_equal(bg_license_payload_check(base), BG_OK);
    json_decref(base);

    static const struct {
        const char *key, *value; /* value NULL: removed */
        bg_err want;
    } cases[] = {
        /* every field missing */
        {"lid", NULL, BG_EINVAL},
        {"org", NULL, BG_EINVAL},
        {"tier", NULL, BG_EINVAL},
        {"domains", NULL, BG_EINVAL},
        {"features", NULL, BG_EINVAL},
        {"limits", NULL, BG_EINVAL},
        {"limits.branches", NULL, BG_EINVAL},
        {"limits.users", NULL, BG_EINVAL},
        {"nbf", NULL, BG_EINVAL},
        {"exp", NULL, BG_EINVAL},
        /* lid, org: canonical lower-case UUIDs */
        {"lid", "42", BG_EINVAL},
        {"lid", "null", BG_EINVAL},
        {"lid", "\"\"", BG_EINVAL},
        {"lid", "\"lic-1\"", BG_EINVAL},
        {"lid", "\"123E4567-E89B-42D3-A456-426614174000\"", BG_EINVAL},
        {"lid", "\"123e4567e89b42d3a456426614174000\"", BG_EINVAL},
        {"lid", "\"123e4567-e89b-42d3-a456-4266141740001\"", BG_EINVAL},
        {"lid", "[\"123e4567-e89b-42d3-a456-426614174000\"]", BG_EINVAL},
        {"org", "true", BG_EINVAL},
        {"org", "\"x\"", BG_EINVAL},
        {"org", "\"{9b2f4c1e-7d3a-4e5f-8a6b-0c1d2e3f4a5}\"", BG_EINVAL},
        {"org", "{\"id\":\"9b2f4c1e-7d3a-4e5f-8a6b-0c1d2e3f4a5b\"}", BG_EINVAL},
        {"org", "\"00000000-0000-4000-8000-000000000000\"", BG_OK},
        /* tier: a string of 1..32 */
        {"tier", "1", BG_EINVAL},
        {"tier", "null", BG_EINVAL},
        {"tier", "\"\"", BG_EINVAL},
        {"tier", "[\"pro\"]", BG_EINVAL},
        {"tier", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", BG_EINVAL}, /* 33 */
        {"tier", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", BG_OK},      /* 32 */
        {"tier", "\"enterprise\"", BG_OK},
        /* domains: 1..64 valid patterns */
        {"domains", "\"example.com\"", BG_EINVAL},
        {"domains", "null", BG_EINVAL},
        {"domains", "{\"a\":\"example.com\"}", BG_EINVAL},
        {"domains", "[]", BG_EINVAL},
        {"domains", "[1]", BG_EINVAL},
        {"domains", "[null]", BG_EINVAL},
        {"domains", "[\"\"]", BG_EINVAL},
        {"domains", "[[\"example.com\"]]", BG_EINVAL},
        {"domains", "[\"a.*.org\"]", BG_EINVAL},
        {"domains", "[\"*\"]", BG_EINVAL},
        {"domains", "[\"-a.org\"]", BG_EINVAL},
        {"domains", "[\"a..b\"]", BG_EINVAL},
        {"domains", "[\"https://example.com\"]", BG_EINVAL},
        {"domains", "[\"example.com\",\"bad domain.org\"]", BG_EINVAL},
        {"domains", "[\"example.com\",\"*.example.org\",7]", BG_EINVAL},
        {"domains", "[\"example.com\"]", BG_OK},
        {"domains", "[\"*.example.org\"]", BG_OK},
        {"domains", "[\"Example.COM.\"]", BG_OK},
        /* features: 0..64 strings of 1..64 */
        {"features", "\"sso\"", BG_EINVAL},
        {"features", "null", BG_EINVAL},
        {"features", "{}", BG_EINVAL},
        {"features", "[1]", BG_EINVAL},
        {"features", "[\"\"]", BG_EINVAL},
        {"features", "[\"sso\",false]", BG_EINVAL},
        {"features", "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
         BG_EINVAL}, /* 65 */
        {"features", "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
         BG_OK}, /* 64 */
        {"features", "[\"sso\",\"audit\"]", BG_OK},
        /* limits: an object with integer branches and users */
        {"limits", "[]", BG_EINVAL},
        {"limits", "null", BG_EINVAL},
        {"limits", "3", BG_EINVAL},
        {"limits", "{}", BG_EINVAL},
        {"limits.branches", "\"3\"", BG_EINVAL},
        {"limits.branches", "3.5", BG_EINVAL},
        {"limits.branches", "null", BG_EINVAL},
        {"limits.users", "true", BG_EINVAL},
        {"limits.users", "100.0", BG_EINVAL},
        {"limits.users", "[100]", BG_EINVAL},
        {"limits.branches", "1", BG_OK},
        /* nbf, exp: integers */
        {"nbf", "\"1700000000\"", BG_EINVAL},
        {"nbf", "1700000000.0", BG_EINVAL},
        {"nbf", "null", BG_EINVAL},
        {"exp", "\"never\"", BG_EINVAL},
        {"exp", "1.5", BG_EINVAL},
        {"exp", "false", BG_EINVAL},
        {"exp", "{}", BG_EINVAL},
        {"nbf", "0", BG_OK},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *p = mutated(cases[i].key, cases[i].value);
        bg_err rc = bg_license_payload_check(p);
        if (rc != cases[i].want) {
            print_error("%s = %s: rc=%d, want %d\n", cases[i].key,
                        cases[i].value ? cases[i].value : "(removed)", rc, cases[i].want);
            fail();
        }
        json_decref(p);
    }

    /* not an object at all */
    json_t *arr = json_array();
    assert_int_equal(bg_license_payload_check(arr), BG_EINVAL);
    json_decref(arr);
    json_t *empty = json_object();
    assert_int_equal(bg_license_payload_check(empty), BG_EINVAL);
    json_decref(empty);
    assert_int_equal(bg_license_payload_check(NULL), BG_EINVAL);
}

static void test_payload_check_array_sizes(void **state)
{
    (void)state;
    /* 64 domains and 64 features are accepted, 65 are not */
    for (int which = 0; which < 2; which++) {
        const char *key = which == 0 ? "domains" : "features";
        json_t *p = load(valid_payload);
        json_t *a = json_array();
        for (int i = 0; i < 65; i++) {
            char item[32];
            snprintf(item, sizeof(item), which == 0 ? "d%d.example.com" : "feature-%d", i);
            json_array_append_new(a, json_string(item));
            if (i == 63) {
                json_object_set(p, key, a);
                assert_int_equal(bg_license_payload_check(p), BG_OK);
            }
        }
        json_object_set(p, key, a);
        if (bg_license_payload_check(p) != BG_EINVAL)
            fail_msg("65 %s accepted", key);
        json_decref(a);
        json_decref(p);
    }

    /* a 253-character domain is accepted, a 254-character one is not */
    char name[300];
    memset(name, 'a', 253);
    for (int i = 63; i < 253; i += 64)
        name[i] = '.';
    name[253] = '\0';
    json_t *p = load(valid_payload);
    json_object_set_new(p, "domains", json_pack("[s]", name));
    assert_int_equal(bg_license_payload_check(p), BG_OK);
    name[253] = 'a';
    name[254] = '\0';
    json_object_set_new(p, "domains", json_pack("[s]", name));
    assert_int_equal(bg_license_payload_check(p), BG_EINVAL);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_receipt_round_trip),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_tampered_signature),
        cmocka_unit_test(test_wrong_public_key),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_payload_not_an_object),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_domain_match_table),
        cmocka_unit_test(test_domain_match_lengths),
        cmocka_unit_test(test_domain_normalize_table),
        cmocka_unit_test(test_domain_normalize_lengths),
        cmocka_unit_test(test_check_time),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_payload_check_table),
        cmocka_unit_test(test_payload_check_array_sizes),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
