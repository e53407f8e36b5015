/*
 * proto/license.h — license tokens, validation receipts and domain rules.
 *
 * A license token is BG1.<base64url(payload)>.<base64url(Ed25519 signature
 * over "BG1." and the payload's base64url text)>, signed by the top branch. A receipt
 * (the top's signed answer to a validation, cached by masters) has the
 * same shape with the prefix BGR1. Pure functions, any thread.
 */
#ifndef BG_PROTO_LICENSE_H
#define BG_PROTO_LICENSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sig.h"

#define BG_LICENSE_PREFIX "BG1."
#define BG_RECEIPT_PREFIX "BGR1."
#define BG_LICENSE_TOKEN_MAX 8192

typedef enum bg_license_code {
    BG_LIC_VALID = 0,
    BG_LIC_NOT_FOUND,
    BG_LIC_INVALID_SIGNATURE,
    BG_LIC_EXPIRED,
    BG_LIC_NOT_YET_VALID,
    BG_LIC_SUSPENDED,
    BG_LIC_DOMAIN_MISMATCH,
    BG_LIC_TOO_MANY_BRANCHES,
    BG_LIC_GRACE,
    BG_LIC_VALID_CACHED,
    BG_LIC_UNAVAILABLE,
    BG_LIC_CODE_COUNT_
} bg_license_code;

/* "VALID", "NOT_FOUND", ...; and back (-1 when unknown). */
const char *bg_license_code_name(bg_license_code c);
int bg_license_code_parse(const char *s);

/* Whether a code means the license may be used (VALID, GRACE, VALID_CACHED). */
bool bg_license_code_ok(bg_license_code c);

/* Signs payload (a JSON object) into "<prefix><b64url(json)>.<b64url(sig)>".
 * Returns malloc'ed text. */
char *bg_license_sign(const char *prefix, const json_t *payload,
                      const uint8_t sk[BG_ED25519_SK_BYTES]);

/* Splits and verifies a signed token of the given prefix; on success *out
 * is the payload object (new reference). Errors: BG_EINVAL (malformed,
 * wrong prefix, too long, payload not a JSON object), BG_EAUTH (signature
 * does not verify). */
bg_err bg_license_open(const char *prefix, const char *token, size_t len,
                       const uint8_t pk[BG_ED25519_PK_BYTES], json_t **out);

/* Reads the payload of a token without verifying it (to learn the lid of a
 * token whose signature failed). Errors: BG_EINVAL. */
bg_err bg_license_peek(const char *prefix, const char *token, size_t len, json_t **out);

/* Checks a license payload's shape: lid (UUID), org (UUID), tier, domains
 * (1..64 patterns), features, limits {branches, users}, nbf, exp.
 * Errors: BG_EINVAL. */
bg_err bg_license_payload_check(const json_t *payload);

/* Normalises a domain or pattern: lower case, no trailing dot; a pattern
 * may start with "*.". Returns false for anything that is not a host name
 * (labels of [a-z0-9-], 1..63 each, 253 in all). */
bool bg_license_domain_normalize(const char *in, bool pattern, char *out, size_t cap);

/* DESIGN section 6: "*.example.org" matches a.example.org and
 * b.a.example.org, never example.org nor badexample.org; comparison is
 * case-insensitive and ignores one trailing dot. */
bool bg_license_domain_match(const char *pattern, const char *domain);

/* Time rules: NOT_YET_VALID before nbf; VALID until exp; GRACE for
 * grace_s after exp; EXPIRED after that (times in unix seconds). */
bg_license_code bg_license_check_time(int64_t nbf, int64_t exp, int64_t now, int64_t grace_s);

#endif
