/*
 * proto/jwt.h — user tokens: JWT (RFC 7519) with HS256 only, the key
 * derived from master.key. The header must be exactly {"alg":"HS256",...};
 * "none" and every other algorithm are refused. Pure, any thread.
 */
#ifndef BG_PROTO_JWT_H
#define BG_PROTO_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BG_JWT_MAX 4096

/* header.payload.signature for the claims object. malloc'ed. */
char *bg_jwt_sign(const json_t *claims, const uint8_t key[32]);

/* Verifies signature (constant time), algorithm and times: exp must be
 * after now, iat (when present) not more than skew_s in the future. On
 * success *claims is a new reference. Errors: BG_EINVAL (malformed),
 * BG_EAUTH (bad signature, wrong algorithm, expired). */
bg_err bg_jwt_verify(const char *token, size_t len, const uint8_t key[32], int64_t now,
                     int64_t skew_s, json_t **claims);

#endif
