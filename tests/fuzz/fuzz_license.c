/*
 * fuzz_license — license tokens and receipts (proto/license.c), as
 * POST /api/v1/licenses/validate, the cross-branch validate-license call
 * and organisation snapshots carry them, and the domain rules applied to
 * the "domain" those calls name.
 *
 * The input is read three ways: as a token (bg_license_peek, and
 * bg_license_open, which can never accept a forgery of the fuzz key); as a
 * payload (a JSON object, or what peek found), which is signed with the
 * fuzz key and opened again, so the checks behind the signature
 * (bg_license_payload_check, bg_license_check_time, domain matching, the
 * steps of node/licenses.c check_local) see fuzzed payloads; and as a
 * domain or pattern (bg_license_domain_normalize / _match) and a result
 * code name.
 */
#include "fuzz.h"

#include <sodium.h>

#include "proto/json.h"
#include "proto/license.h"
#include "proto/sig.h"

static uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bg_sig_init() != BG_OK)
        abort();
    /* A fixed key, so seed tokens signed with it (docs/testing.md) verify. */
    uint8_t seed[crypto_sign_SEEDBYTES] = {0};
    crypto_sign_seed_keypair(pk, sk, seed);
    return 0;
}

static void check_domain_text(const char *s)
{
    for (int pattern = 0; pattern < 2; pattern++) {
        char *out = malloc(254);
        if (bg_license_domain_normalize(s, pattern, out, 254)) {
            size_t n = strlen(out);
            FUZZ_CHECK(n > 0 && n <= 253);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(!(out[i] >= 'A' && out[i] <= 'Z'));
            char again[256];
            FUZZ_CHECK(bg_license_domain_normalize(out, pattern, again, sizeof(again)));
            FUZZ_CHECK(strcmp(again, out) == 0);
            if (!pattern)
                FUZZ_CHECK(bg_license_domain_match(s, s));
            if (pattern && out[0] == '*')
                FUZZ_CHECK(!bg_license_domain_match(s, out + 2));
        }
        free(out);
    }
    bg_license_domain_match(s, "a.example.org");
    bg_license_domain_match("*.example.org", s);
    int code = bg_license_code_parse(s);
    if (code >= 0)
        FUZZ_CHECK(strcmp(bg_license_code_name((bg_license_code)code), s) == 0);
}

/* What node/licenses.c check_local does once the signature holds. */
static void check_payload(const json_t *p, const char *domain)
{
    if (bg_license_payload_check(p) != BG_OK)
        return;
    int64_t nbf = json_integer_value(json_object_get(p, "nbf"));
    int64_t exp = json_integer_value(json_object_get(p, "exp"));
    static const int64_t graces[] = {0, 7 * 86400, 365 * 86400};
    static const int64_t nows[] = {0, 1800000000, INT64_MAX / 2};
    for (size_t g = 0; g < sizeof(graces) / sizeof(graces[0]); g++)
        for (size_t t = 0; t < sizeof(nows) / sizeof(nows[0]); t++) {
            bg_license_code c = bg_license_check_time(nbf, exp, nows[t], graces[g]);
            FUZZ_CHECK(c == BG_LIC_VALID || c == BG_LIC_GRACE || c == BG_LIC_EXPIRED ||
                       c == BG_LIC_NOT_YET_VALID);
        }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(p, "domains"), i, d)
    {
        bg_license_domain_match(json_string_value(d), domain);
        bg_license_domain_match(json_string_value(d), "a.example.org");
    }
}

static void resign(const json_t *payload, const char *domain)
{
    char *tok = bg_license_sign(BG_LICENSE_PREFIX, payload, sk);
    size_t n = strlen(tok);
    json_t *back = NULL;
    bg_err e = bg_license_open(BG_LICENSE_PREFIX, tok, n, pk, &back);
    if (n <= BG_LICENSE_TOKEN_MAX) {
        FUZZ_CHECK(e == BG_OK);
        /* Equal to the payload as signed: reals keep 9 digits. */
        char *d1 = bg_json_dump(back, NULL), *d2 = bg_json_dump(payload, NULL);
        FUZZ_CHECK(strcmp(d1, d2) == 0);
        free(d1);
        free(d2);
        check_payload(back, domain);
        json_decref(back);
        /* The same payload is no receipt. */
        FUZZ_CHECK(bg_license_open(BG_RECEIPT_PREFIX, tok, n, pk, &back) == BG_EINVAL);
    } else {
        FUZZ_CHECK(e == BG_EINVAL);
    }
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    json_t *peeked = NULL, *opened = NULL, *obj = NULL;
    bg_json_err je;
    bg_err pe = bg_license_peek(BG_LICENSE_PREFIX, s, size, &peeked);
    bg_err oe = bg_license_open(BG_LICENSE_PREFIX, s, size, pk, &opened);
    FUZZ_CHECK(pe == BG_OK || pe == BG_EINVAL);
    FUZZ_CHECK(oe == BG_OK || oe == BG_EINVAL || oe == BG_EAUTH);
    if (oe == BG_OK) {
        FUZZ_CHECK(pe == BG_OK && json_equal(opened, peeked));
        check_payload(opened, "a.example.org");
    }
    json_t *r = NULL;
    if (bg_license_peek(BG_RECEIPT_PREFIX, s, size, &r) == BG_OK)
        json_decref(r);
    if (bg_license_open(BG_RECEIPT_PREFIX, s, size, pk, &r) == BG_OK)
        json_decref(r);

    if (bg_json_parse_object(s, size, &obj, &je) == BG_OK) {
        resign(obj, "a.example.org");
        json_decref(obj);
    } else if (pe == BG_OK) {
        resign(peeked, "a.example.org");
    }
    check_domain_text(s);
    json_decref(peeked);
    json_decref(opened);
    free(s);
    return 0;
}
