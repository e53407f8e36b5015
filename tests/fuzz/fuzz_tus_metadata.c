/*
 * fuzz_tus_metadata — the tus Upload-Metadata header (proto/tus.c
 * bg_tus_metadata_check and bg_tus_metadata_get), as POST /api/v1/uploads
 * reads it. The input is the header value, not NUL-terminated.
 *
 * Invariants: check and get agree on whether the header is well formed;
 * a value found fits its buffer with a NUL after it; a value re-encoded
 * (padded base64) into a one-pair header decodes to the same bytes.
 */
#include "fuzz.h"

#include "proto/sig.h"
#include "proto/tus.h"

static const char *const keys[] = {"filename", "filetype", "assembly_id", "k", "a"};

/* The first key of the header, trimmed like the parser trims a pair. */
static size_t first_key(const char *h, size_t n, char *out, size_t cap)
{
    size_t i = 0, k = 0;
    while (i < n && (h[i] == ' ' || h[i] == '\t'))
        i++;
    while (i < n && h[i] != ' ' && h[i] != ',' && h[i] != '\t' && h[i] != '\0' && k + 1 < cap)
        out[k++] = h[i++];
    out[k] = '\0';
    return k;
}

static void roundtrip(const char *key, const char *val, size_t vlen)
{
    size_t klen = strlen(key);
    size_t hlen = klen + 1 + bg_b64_len(vlen);
    char *hdr = malloc(hlen + 1);
    char *out = malloc(vlen + 1);
    size_t outlen = 0;
    memcpy(hdr, key, klen);
    hdr[klen] = ' ';
    bg_b64_encode(val, vlen, hdr + klen + 1);
    FUZZ_CHECK(bg_tus_metadata_get(hdr, hlen, key, out, vlen + 1, &outlen) == BG_OK);
    FUZZ_CHECK(outlen == vlen && memcmp(out, val, vlen) == 0 && out[vlen] == '\0');
    free(out);
    free(hdr);
}

static void get(const char *hdr, size_t len, const char *key, size_t cap, bg_err checked)
{
    char *out = malloc(cap);
    size_t outlen = SIZE_MAX;
    bg_err e = bg_tus_metadata_get(hdr, len, key, out, cap, &outlen);
    FUZZ_CHECK((e == BG_EINVAL) == (checked == BG_EINVAL));
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL || e == BG_ENOTFOUND || e == BG_ETOOBIG);
    if (e == BG_OK) {
        FUZZ_CHECK(outlen < cap && out[outlen] == '\0');
        if (key[0] != '\0' && strlen(key) < 64)
            roundtrip(key, out, outlen);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading past the header is caught. */
    char *hdr = malloc(size > 0 ? size : 1);
    memcpy(hdr, data, size);
    bg_err checked = bg_tus_metadata_check(hdr, size);
    FUZZ_CHECK(checked == BG_OK || checked == BG_EINVAL);
    char key[128];
    first_key(hdr, size, key, sizeof(key));
    static const size_t caps[] = {1, 4, 64, 1024};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            get(hdr, size, keys[i], caps[c], checked);
        if (key[0] != '\0')
            get(hdr, size, key, caps[c], checked);
    }
    free(hdr);
    return 0;
}
