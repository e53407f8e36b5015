/*
 * proto/webhook.h — Standard Webhooks signatures (https://www.standardwebhooks.com,
 * spec/standard-webhooks.md of standard-webhooks/standard-webhooks), the
 * symmetric "v1" scheme:
 *
 *   secret    "whsec_" + base64(key bytes); the HMAC key is the decoded part
 *   content   id "." timestamp "." body      (timestamp: decimal unix seconds)
 *   signature "v1," + base64(HMAC-SHA256(key, content))   (padded base64)
 *
 * The key is decoded into local memory and wiped before return. Pure
 * functions, no allocation; any thread.
 */
#ifndef BG_PROTO_WEBHOOK_H
#define BG_PROTO_WEBHOOK_H

#include <stddef.h>

#include "err.h"

#define BG_WEBHOOK_SIG_MAX 128      /* signature header value, NUL included */
#define BG_WEBHOOK_SECRET_PREFIX "whsec_"
#define BG_WEBHOOK_KEY_MAX 128      /* longest accepted decoded key, bytes */

/* Signs one delivery attempt: out receives "v1,<base64 HMAC-SHA256>",
 * NUL-terminated (47 characters). id is the webhook-id (the spec asks that it
 * contain no '.'; the caller builds it), ts the webhook-timestamp of this
 * attempt, body[0..len) the exact bytes sent (body may be NULL when len is 0).
 * Errors: BG_EINVAL (secret NULL or without the "whsec_" prefix, its rest not
 * standard base64 (padding optional), an empty key or one longer than
 * BG_WEBHOOK_KEY_MAX bytes). out is written only on success. */
bg_err bg_webhook_sign(const char *secret, const char *id, long long ts, const void *body,
                       size_t len, char out[BG_WEBHOOK_SIG_MAX]);

/* Verifies a webhook-signature header, which may hold several
 * space-separated "<version>,<signature>" entries (key rotation): succeeds
 * when one "v1" entry equals the expected signature (constant-time compare;
 * entries of other versions, e.g. "v1a", are skipped). When tolerance_s > 0,
 * also requires |now_s - ts| <= tolerance_s (replay protection); 0 skips the
 * time check.
 * Errors: BG_EINVAL (bad secret as for bg_webhook_sign, sig_header NULL, or
 * tolerance_s < 0), BG_EAUTH (no matching signature, or ts outside the
 * tolerance). */
bg_err bg_webhook_verify(const char *secret, const char *id, long long ts, const void *body,
                         size_t len, const char *sig_header, long long now_s,
                         long long tolerance_s);

#endif
