/*
 * Unit tests for proto/webhook.h: Standard Webhooks "v1" signatures.
 *
 * Vector source: the test vector shared by the standard-webhooks reference
 * libraries (secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id
 * msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body
 * '{"test": 2432232314}'); the expected value was recomputed independently
 * with `openssl dgst -sha256 -mac HMAC -macopt hexkey:... | base64`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proto/sig.h"
#include "proto/webhook.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char SECRET[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char ID[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const long long TS = 1614265330;
static const char BODY[] = "{\"test\": 2432232314}";
static const char SIG[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
/* A second key, for rotation cases: base64("secret-of-a-rotated-endpoint"). */
static const char OTHER[] = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==";

static bg_err verify(const char *secret, const char *id, long long ts, const char *body,
                     const char *hdr, long long now, long long tol)
{
    return bg_webhook_verify(secret, id, ts, body, strlen(body), hdr, now, tol);
}

static void test_reference_vector(void **state)
{
    (void)state;
    char out[BG_WEBHOOK_SIG_MAX];
    assert_int_equal(bg_webhook_sign(SECRET, ID, TS, BODY, strlen(BODY), out), BG_OK);
    assert_string_equal(out, SIG);
    assert_int_equal(verify(SECRET, ID, TS, BODY, SIG, TS, 300), BG_OK);
    assert_int_equal(verify(SECRET, ID, TS, BODY, SIG, 0, 0), BG_OK);
}

static void test_round_trip(void **state)
{
    (void)state;
    char secret[80], sig[BG_WEBHOOK_SIG_MAX];
    uint8_t key[32], body[257];
    for (size_t keylen = 1; keylen <= sizeof(key); keylen += 7) {
        bg_sig_random(key, keylen);
        bg_sig_random(body, sizeof(body));
        memcpy(secret, "whsec_", 6);
        bg_b64_encode(key, keylen, secret + 6);
        for (size_t len = 0; len <= sizeof(body); len += 64) {
            assert_int_equal(bg_webhook_sign(secret, "msg_1", 1700000000, body, len, sig), BG_OK);
            assert_int_equal(strlen(sig), 47);
            assert_int_equal(
                bg_webhook_verify(secret, "msg_1", 1700000000, body, len, sig, 1700000010, 300),
                BG_OK);
        }
    }
    /* An empty body may be NULL. */
    assert_int_equal(bg_webhook_sign(SECRET, ID, TS, NULL, 0, sig), BG_OK);
    assert_int_equal(bg_webhook_verify(SECRET, ID, TS, "", 0, sig, TS, 0), BG_OK);
}

/* Secrets as people paste them: the padding of the base64 part is optional. */
static void test_secret_padding_optional(void **state)
{
    (void)state;
    char a[BG_WEBHOOK_SIG_MAX], b[BG_WEBHOOK_SIG_MAX];
    assert_int_equal(bg_webhook_sign(OTHER, ID, TS, BODY, strlen(BODY), a), BG_OK);
    assert_int_equal(
        bg_webhook_sign("whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA", ID, TS, BODY, strlen(BODY), b),
        BG_OK);
    assert_string_equal(a, b);
    assert_string_not_equal(a, SIG);
}

static void test_tampering(void **state)
{
    (void)state;
    static const struct {
        const char *what, *secret, *id, *body, *hdr;
        long long ts;
    } cases[] = {
        {"body", SECRET, ID, "{\"test\": 2432232315}", SIG, 1614265330},
        {"body extended", SECRET, ID, "{\"test\": 2432232314} ", SIG, 1614265330},
        {"id", SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJel", BODY, SIG, 1614265330},
        {"timestamp", SECRET, ID, BODY, SIG, 1614265331},
        {"key", OTHER, ID, BODY, SIG, 1614265330},
        {"signature byte", SECRET, ID, BODY, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
         1614265330},
        {"version", SECRET, ID, BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 1614265330},
        {"asymmetric version", SECRET, ID, BODY, "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
         1614265330},
        {"no version", SECRET, ID, BODY, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 1614265330},
        {"truncated", SECRET, ID, BODY, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", 1614265330},
        {"prefix only", SECRET, ID, BODY, "v1,", 1614265330},
        {"empty header", SECRET, ID, BODY, "", 1614265330},
        {"comma-joined", SECRET, ID, BODY, "v1,x,v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
         1614265330},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_err e = verify(cases[i].secret, cases[i].id, cases[i].ts, cases[i].body, cases[i].hdr,
                          cases[i].ts, 0);
        if (e != BG_EAUTH)
            print_error("case %s: got %d\n", cases[i].what, e);
        assert_int_equal(e, BG_EAUTH);
    }
}

static void test_multiple_signatures(void **state)
{
    (void)state;
    char other[BG_WEBHOOK_SIG_MAX], hdr[512];
    assert_int_equal(bg_webhook_sign(OTHER, ID, TS, BODY, strlen(BODY), other), BG_OK);
    /* {before, first, middle, second, after}: 0 = other key's, 1 = SIG. */
    static const struct {
        const char *pre, *mid, *post;
        int first;
    } layouts[] = {
        {"", " ", "", 0},
        {"", " ", "", 1},
        {"  ", "   ", "  ", 0},
        {"v1a,AAAA ", " ", " v2,zz", 1},
    };
    for (size_t i = 0; i < N_ELEMS(layouts); i++) {
        const char *a = layouts[i].first ? SIG : other, *b = layouts[i].first ? other : SIG;
        snprintf(hdr, sizeof(hdr), "%s%s%s%s%s", layouts[i].pre, a, layouts[i].mid, b,
                 layouts[i].post);
        assert_int_equal(verify(SECRET, ID, TS, BODY, hdr, TS, 0), BG_OK);
        assert_int_equal(verify(OTHER, ID, TS, BODY, hdr, TS, 0), BG_OK);
    }
    snprintf(hdr, sizeof(hdr), "%s v1,AAAA", other);
    assert_int_equal(verify(SECRET, ID, TS, BODY, hdr, TS, 0), BG_EAUTH);
}

static void test_timestamp_tolerance(void **state)
{
    (void)state;
    static const struct {
        long long now, tol;
        bg_err err;
    } cases[] = {
        {1614265330, 300, BG_OK},        {1614265630, 300, BG_OK},
        {1614265030, 300, BG_OK},        {1614265631, 300, BG_EAUTH},
        {1614265029, 300, BG_EAUTH},     {0, 300, BG_EAUTH},
        {0, 0, BG_OK},                   {LLONG_MAX, 300, BG_EAUTH},
        {LLONG_MIN, 300, BG_EAUTH},      {LLONG_MIN, LLONG_MAX, BG_EAUTH},
        {1614265330, -1, BG_EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_err e = verify(SECRET, ID, TS, BODY, SIG, cases[i].now, cases[i].tol);
        if (e != cases[i].err)
            print_error("case %zu: got %d\n", i, e);
        assert_int_equal(e, cases[i].err);
    }
    /* No overflow with extreme timestamps either way. */
    char sig[BG_WEBHOOK_SIG_MAX];
    assert_int_equal(bg_webhook_sign(SECRET, ID, LLONG_MIN, BODY, strlen(BODY), sig), BG_OK);
    assert_int_equal(verify(SECRET, ID, LLONG_MIN, BODY, sig, LLONG_MAX, 300), BG_EAUTH);
    assert_int_equal(verify(SECRET, ID, LLONG_MIN, BODY, sig, LLONG_MIN + 5, 300), BG_OK);
}

static void test_bad_secrets(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* no prefix */
        "whsec",                                   /* prefix cut */
        "whsec_",                                  /* empty key */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  /* prefix case */
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",   /* asymmetric secret */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",  /* alphabet */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", /* bad padding */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",   /* 4n+3 with bits set: not canonical */
        "whsec_M",                                 /* 4n+1 */
        "whsec_====",
        "whsec_MfKQ 9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        "whsec_MfKQ9r8G-KYqrTwjUPD8ILPZIo2LaLaS_w", /* base64url */
    };
    char out[BG_WEBHOOK_SIG_MAX];
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        memset(out, '#', sizeof(out));
        bg_err e = bg_webhook_sign(bad[i], ID, TS, BODY, strlen(BODY), out);
        if (e != BG_EINVAL)
            print_error("secret %zu \"%s\": got %d\n", i, bad[i], e);
        assert_int_equal(e, BG_EINVAL);
        assert_int_equal(out[0], '#');
        assert_int_equal(verify(bad[i], ID, TS, BODY, SIG, TS, 0), BG_EINVAL);
    }
    assert_int_equal(bg_webhook_sign(NULL, ID, TS, BODY, strlen(BODY), out), BG_EINVAL);
    assert_int_equal(bg_webhook_verify(SECRET, ID, TS, BODY, strlen(BODY), NULL, TS, 0), BG_EINVAL);

    /* Key length limits: 128 bytes is accepted, 129 is not. */
    uint8_t key[129];
    char secret[200];
    memset(key, 0x42, sizeof(key));
    memcpy(secret, "whsec_", 6);
    bg_b64_encode(key, 128, secret + 6);
    assert_int_equal(bg_webhook_sign(secret, ID, TS, BODY, strlen(BODY), out), BG_OK);
    bg_b64_encode(key, 129, secret + 6);
    assert_int_equal(bg_webhook_sign(secret, ID, TS, BODY, strlen(BODY), out), BG_EINVAL);
}

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_secret_padding_optional),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_multiple_signatures),
        cmocka_unit_test(test_timestamp_tolerance),
        cmocka_unit_test(test_bad_secrets),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
