/*
 * fuzz_url — branch URLs and origins (proto/url.c): bg_url_normalize reads
 * the branch_url of POST /api/v1/branches, the config key branch.url, an
 * assembly's notify_url and the X-Branch-Origin header every peer call
 * carries; bg_url_host_port splits what it produced for libcurl.
 *
 * Invariants: a normal form is a NUL-terminated http(s) URL shorter than
 * BG_URL_MAX that normalises to itself, fits a buffer of exactly its size
 * and not one byte less, and splits into a host and a port 1..65535.
 */
#include "fuzz.h"

#include "proto/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size > 0 ? size : 1);
    memcpy(in, data, size);
    char *out = malloc(BG_URL_MAX);
    bg_err e = bg_url_normalize(in, size, out, BG_URL_MAX);
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL);
    if (e == BG_OK) {
        size_t n = strlen(out);
        FUZZ_CHECK(n < BG_URL_MAX && n > 7);
        FUZZ_CHECK(strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0);
        FUZZ_CHECK(out[n - 1] != '/');
        char *exact = malloc(n + 1);
        FUZZ_CHECK(bg_url_normalize(out, n, exact, n + 1) == BG_OK && strcmp(exact, out) == 0);
        FUZZ_CHECK(bg_url_normalize(in, size, exact, n) == BG_EINVAL);
        free(exact);
        int https = -1;
        unsigned port = 0;
        char host[BG_URL_MAX];
        FUZZ_CHECK(bg_url_host_port(out, &https, host, sizeof(host), &port) == BG_OK);
        FUZZ_CHECK((https == 1) == (out[4] == 's') && port >= 1 && port <= 65535);
        FUZZ_CHECK(strlen(host) > 0 && strstr(out, host) != NULL);
    }
    /* The split of the text as given (it normalises first). */
    char *s = fuzz_strndup(data, size);
    int https;
    unsigned port;
    char small[8];
    bg_url_host_port(s, &https, small, sizeof(small), &port);
    free(s);
    free(out);
    free(in);
    return 0;
}
