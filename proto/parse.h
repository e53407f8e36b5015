/*
 * proto/parse.h — bounded parsers for numbers, durations, addresses and
 * identifiers that come from the network, the command line or the
 * environment. Nothing here allocates; every function rejects empty input,
 * trailing garbage, overflow and values outside [min, max] with BG_EINVAL,
 * writing *out only on success. Pure functions, any thread.
 */
#ifndef BG_PROTO_PARSE_H
#define BG_PROTO_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Decimal digits only (no sign, no spaces, no leading '+'). */
bg_err bg_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/* Optional leading '-', then decimal digits. */
bg_err bg_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* "true"/"false", "1"/"0", "yes"/"no", "on"/"off" (lower case). */
bg_err bg_parse_bool(const char *s, size_t len, bool *out);

/* A duration in seconds: "90", "90s", "15m", "24h", "7d", at most max_s. */
bg_err bg_parse_duration(const char *s, size_t len, uint64_t max_s, uint64_t *out_s);

/* "HOST:PORT" where HOST is a name or IPv4 literal, or "[IPv6]:PORT".
 * host receives the host without brackets (at most host_cap-1 bytes, else
 * BG_EINVAL); port may be 0 ("pick a free port"). */
bg_err bg_parse_hostport(const char *s, char *host, size_t host_cap, uint16_t *port);

/* RFC 3339 UTC time "2026-11-23T08:48:23Z" with optional fractional
 * seconds (milliseconds kept) to unix milliseconds. Only the "Z" offset is
 * accepted. Errors: BG_EINVAL. */
bg_err bg_parse_rfc3339(const char *s, long long *out_ms);

/* True when s[0..len) is 1..max_len bytes, each in [A-Za-z0-9] or in
 * `extra` (e.g. "-_."). */
bool bg_str_is_ident(const char *s, size_t len, size_t max_len, const char *extra);

/* A single HTTP byte range ("bytes=a-b", "bytes=a-", "bytes=-n") over a
 * resource of size bytes: *start and *count. Errors: BG_ENOTFOUND (not a
 * single byte range: serve the whole resource), BG_EINVAL (unsatisfiable:
 * 416). */
bg_err bg_parse_range(const char *s, size_t len, uint64_t size, uint64_t *start, uint64_t *count);

#endif
