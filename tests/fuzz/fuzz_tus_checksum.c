/*
 * fuzz_tus_checksum — the tus Upload-Checksum header (proto/tus.c
 * bg_tus_checksum_parse, then bg_tus_checksum_verify), as PATCH
 * /api/v1/uploads/{id} reads it. The input is the header value.
 *
 * Invariants: an accepted header names md5, sha1 or sha256 and its digest
 * has that algorithm's size; an unsupported algorithm is refused only when
 * its name is a plausible token; verifying a chunk against an accepted
 * digest succeeds exactly when it is the chunk's real digest.
 */
#include "fuzz.h"

#include <openssl/evp.h>

#include "proto/tus.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* OpenSSL builds its digest tables on first use: do it before the
     * leak checker starts counting. */
    uint8_t d[32] = {0};
    bg_tus_checksum_verify(BG_TUS_MD5, "", 0, d, 16);
    bg_tus_checksum_verify(BG_TUS_SHA1, "", 0, d, 20);
    bg_tus_checksum_verify(BG_TUS_SHA256, "", 0, d, 32);
    return 0;
}

static size_t algo_size(bg_tus_algo a)
{
    return a == BG_TUS_MD5 ? 16 : a == BG_TUS_SHA1 ? 20 : a == BG_TUS_SHA256 ? 32 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = malloc(size > 0 ? size : 1);
    memcpy(hdr, data, size);
    bg_tus_algo algo = 0;
    uint8_t digest[BG_TUS_DIGEST_MAX + 8];
    memset(digest, 0xa5, sizeof(digest));
    size_t dlen = SIZE_MAX;
    bg_err e = bg_tus_checksum_parse(hdr, size, &algo, digest, &dlen);
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL || e == BG_ENOTFOUND);
    if (e == BG_OK) {
        FUZZ_CHECK(dlen == algo_size(algo) && dlen > 0);
        for (size_t i = dlen; i < sizeof(digest); i++)
            FUZZ_CHECK(digest[i] == 0xa5);
        /* The chunk: the input itself. */
        const EVP_MD *md = algo == BG_TUS_MD5    ? EVP_md5()
                           : algo == BG_TUS_SHA1 ? EVP_sha1()
                                                 : EVP_sha256();
        uint8_t real[EVP_MAX_MD_SIZE];
        unsigned rlen = 0;
        FUZZ_CHECK(EVP_Digest(data, size, real, &rlen, md, NULL) == 1 && rlen == dlen);
        bool same = memcmp(real, digest, dlen) == 0;
        FUZZ_CHECK(bg_tus_checksum_verify(algo, data, size, digest, dlen) == same);
        FUZZ_CHECK(bg_tus_checksum_verify(algo, data, size, real, rlen));
        FUZZ_CHECK(!bg_tus_checksum_verify(algo, data, size, real, rlen - 1));
    }
    if (e == BG_ENOTFOUND) {
        const char *sp = memchr(hdr, ' ', size);
        FUZZ_CHECK(sp != NULL && sp > hdr);
    }
    free(hdr);
    return 0;
}
