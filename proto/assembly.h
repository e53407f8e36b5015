/*
 * proto/assembly.h — identifiers and small computations of the media
 * pipeline (docs/media.md): assembly ids, md5 and upload id formats, the SSE
 * channel name, the job retry delay and the webhook retry schedule.
 *
 * Pure functions (bg_upload_id_new also reads the random generator, which
 * needs bg_sig_init()); any thread.
 */
#ifndef BG_PROTO_ASSEMBLY_H
#define BG_PROTO_ASSEMBLY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define BG_ASSEMBLY_ID_LEN 64
#define BG_UPLOAD_ID_LEN 32
#define BG_BRANCH_NAME_MAX 63        /* same rule as node/branches.c */
#define BG_WEBHOOK_SCHEDULE_MAX 16
#define BG_WEBHOOK_DELAY_MAX_S 2592000 /* 30 days: longest schedule element */

/* hex(sha256(branch ":" md5s[0] "," ... "," md5s[n-1] ":" template_id ":"
 * user)), lowercase, NUL-terminated, into out (DESIGN section 7). The md5s
 * are the announced lowercase hex digests in the order of the request's
 * files (a random nonce in hex for a file without one); they are hashed as
 * given, so callers validate them first (bg_md5_hex_valid). n may be 0
 * (md5s may then be NULL). */
void bg_assembly_id(const char *branch, const char *const *md5s, size_t n,
                    const char *template_id, const char *user,
                    char out[BG_ASSEMBLY_ID_LEN + 1]);

/* True when s (NUL-terminated, may be NULL) is exactly 64 lowercase hex
 * characters. */
bool bg_assembly_id_valid(const char *s);

/* True when s is exactly 32 lowercase hex characters. Uppercase is refused:
 * callers that accept it from clients lowercase first with bg_hex_lower, so
 * one digest has one spelling in ids and rows. */
bool bg_md5_hex_valid(const char *s);

/* Lowercases the ASCII letters of the NUL-terminated s in place. */
void bg_hex_lower(char *s);

/* A new upload id: 16 random bytes (bg_sig_random) as 32 lowercase hex
 * characters, NUL-terminated. */
void bg_upload_id_new(char out[BG_UPLOAD_ID_LEN + 1]);

/* True when s is exactly 32 lowercase hex characters. */
bool bg_upload_id_valid(const char *s);

/* Parses the SSE channel "upload:{branch}:{assembly_id}" in s[0..len) (not
 * necessarily NUL-terminated). branch must be a valid branch name (1-63
 * bytes of [A-Za-z0-9._-], the rule of node/branches.c), assembly_id must
 * satisfy bg_assembly_id_valid. Both are written NUL-terminated, only on
 * success. Errors: BG_EINVAL. */
bg_err bg_channel_parse(const char *s, size_t len, char branch[BG_BRANCH_NAME_MAX + 1],
                        char assembly_id[BG_ASSEMBLY_ID_LEN + 1]);

/* Retry delay of a job after its attempt-th failure: (15 + attempt^4) *
 * unit_ms, so 16 s, 31 s, 96 s... for unit 1000. attempt < 1 counts as 1 and
 * unit_ms < 0 as 0; the result saturates at LLONG_MAX instead of
 * overflowing. */
long long bg_job_backoff_ms(int attempt, long long unit_ms);

/* Parses a webhook retry schedule such as "5s,5m,30m,2h,5h,10h": comma-
 * separated durations (bg_parse_duration: "90", "90s", "15m", "2h", "1d";
 * each at most BG_WEBHOOK_DELAY_MAX_S; spaces around an element allowed)
 * into out_ms[0..*n) in milliseconds. Errors: BG_EINVAL (empty string or
 * element, more than BG_WEBHOOK_SCHEDULE_MAX elements, a bad element).
 * out_ms and *n are written only on success. */
bg_err bg_webhook_schedule_parse(const char *s, long long out_ms[BG_WEBHOOK_SCHEDULE_MAX],
                                 size_t *n);

#endif
