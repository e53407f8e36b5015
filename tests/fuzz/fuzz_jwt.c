/*
 * fuzz_jwt — user tokens (proto/jwt.c bg_jwt_verify), as the gateway reads
 * the Bearer token of every user route (node/auth.c bg_node_token_verify).
 *
 * The input is read as a token, verified with the fuzz key (a forgery must
 * never pass), and, when it is a JSON object, as claims that are signed
 * with the fuzz key and verified again: then the result is predictable
 * from the claims (exp after now, iat at most skew ahead), and the claims
 * come back unchanged.
 */
#include "fuzz.h"

#include "proto/json.h"
#include "proto/jwt.h"
#include "proto/sig.h"

static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#define NOW INT64_C(1800000000)
#define SKEW 60

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bg_sig_init() != BG_OK)
        abort();
    return 0;
}

/* What bg_jwt_verify must answer for well-signed claims. */
static bg_err expected(const json_t *c)
{
    json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat");
    if (!json_is_integer(exp) || json_integer_value(exp) <= NOW)
        return BG_EAUTH;
    if (iat != NULL && (!json_is_integer(iat) || json_integer_value(iat) > NOW + SKEW))
        return BG_EAUTH;
    return BG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size > 0 ? size : 1);
    memcpy(s, data, size);
    json_t *claims = NULL, *obj = NULL;
    bg_err e = bg_jwt_verify(s, size, key, NOW, SKEW, &claims);
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL || e == BG_EAUTH);
    if (e == BG_OK) {
        FUZZ_CHECK(json_is_object(claims) && expected(claims) == BG_OK);
        json_decref(claims);
    }
    bg_json_err je;
    if (bg_json_parse_object(s, size, &obj, &je) == BG_OK) {
        char *tok = bg_jwt_sign(obj, key);
        size_t n = strlen(tok);
        claims = NULL;
        e = bg_jwt_verify(tok, n, key, NOW, SKEW, &claims);
        if (n > BG_JWT_MAX) {
            FUZZ_CHECK(e == BG_EINVAL);
        } else {
            FUZZ_CHECK(e == expected(obj));
            if (e == BG_OK) {
                /* Equal to the claims as signed: reals keep 9 digits. */
                char *d1 = bg_json_dump(claims, NULL), *d2 = bg_json_dump(obj, NULL);
                FUZZ_CHECK(strcmp(d1, d2) == 0);
                free(d1);
                free(d2);
                json_decref(claims);
            }
            /* One flipped signature character is a forgery. */
            tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
            FUZZ_CHECK(bg_jwt_verify(tok, n, key, NOW, SKEW, &claims) != BG_OK);
        }
        free(tok);
        json_decref(obj);
    }
    free(s);
    return 0;
}
