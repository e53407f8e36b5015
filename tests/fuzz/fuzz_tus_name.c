/*
 * fuzz_tus_name — client file names (proto/tus.c bg_tus_sanitize_name),
 * as they arrive in Upload-Metadata "filename" and in the "files" of POST
 * /api/v1/assemblies. The input is the raw name (it may hold NULs).
 *
 * Invariants (proto/tus.h): an accepted name becomes a non-empty string of
 * at most BG_TUS_NAME_MAX bytes that never starts with '.', never holds
 * '/', '\\' or a control byte, and sanitises to itself again.
 */
#include "fuzz.h"

#include "proto/tus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size > 0 ? size : 1);
    memcpy(in, data, size);
    /* Exactly the size the contract asks for, so one byte more is caught. */
    char *out = malloc(BG_TUS_NAME_MAX + 1);
    bg_err e = bg_tus_sanitize_name(in, size, out, BG_TUS_NAME_MAX + 1);
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL);
    if (e == BG_OK) {
        size_t n = strlen(out);
        FUZZ_CHECK(n > 0 && n <= BG_TUS_NAME_MAX && n <= size);
        FUZZ_CHECK(out[0] != '.');
        FUZZ_CHECK(strcmp(out, ".") != 0 && strcmp(out, "..") != 0);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            FUZZ_CHECK(c != '/' && c != '\\' && c >= 0x20 && c != 0x7f);
        }
        char *again = malloc(BG_TUS_NAME_MAX + 1);
        FUZZ_CHECK(bg_tus_sanitize_name(out, n, again, BG_TUS_NAME_MAX + 1) == BG_OK);
        FUZZ_CHECK(strcmp(again, out) == 0);
        free(again);
    }
    free(out);
    free(in);
    return 0;
}
