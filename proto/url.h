/*
 * proto/url.h — branch URLs: validation and the one normal form used to
 * compare an X-Branch-Origin with a registered branch_url. Pure, any thread.
 */
#ifndef BG_PROTO_URL_H
#define BG_PROTO_URL_H

#include <stddef.h>

#include "err.h"

#define BG_URL_MAX 512

/* Normalises an absolute http(s) URL: scheme and host lower-cased, the
 * default port (80 for http, 443 for https) removed, trailing slashes
 * removed. Accepts an optional path; rejects user info, query, fragment,
 * control characters and spaces, an empty host, a bad port and anything
 * longer than BG_URL_MAX-1. out receives at most cap bytes.
 * Errors: BG_EINVAL. */
bg_err bg_url_normalize(const char *in, size_t len, char *out, size_t cap);

/* Splits a normalised URL: is_https, host (without brackets, cap bytes),
 * port (default filled in). Errors: BG_EINVAL. */
bg_err bg_url_host_port(const char *url, int *is_https, char *host, size_t cap, unsigned *port);

#endif
