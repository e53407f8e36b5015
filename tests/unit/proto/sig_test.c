/*
 * Unit tests for proto/sig.h: keyed hashes, secretbox, KDF, encodings,
 * tokens, UUIDs and Ed25519, with published known-answer vectors.
 *
 * Vector sources (bytes copied from the text named, not typed from memory):
 *  - BLAKE2b keyed KAT: BLAKE2/BLAKE2 testvectors/blake2b-kat.txt (the first
 *    two entries; also in blake2-kat.json and blake2-kat.h).
 *  - BLAKE2b-512("abc"): RFC 7693, Appendix A.
 *  - Secretbox: libsodium test/default/secretbox.c (NaCl's firstkey, nonce,
 *    m) and secretbox.exp (c[16..163), i.e. MAC || ciphertext).
 *  - KDF: libsodium test/default/kdf.c + kdf.exp (master 00..1f, context
 *    "KDF test", subkey id 32 of length 32).
 *  - Ed25519: RFC 8032 section 7.1, TEST 1.
 *  - base64url: RFC 4648 section 10 strings, padding removed (section 3.2/5).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Independent of bg_hex_decode, so the vectors do not lean on code under
 * test. Aborts the test on a malformed literal. */
static void unhex(const char *hex, uint8_t *out, size_t outlen)
{
    assert_int_equal(strlen(hex), 2 * outlen);
    for (size_t i = 0; i < outlen; i++) {
        unsigned v;
        char pair[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        assert_int_equal(sscanf(pair, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_bytes_equal(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    if (memcmp(got, want, n) != 0) {
        for (size_t i = 0; i < n; i++) {
            if (got[i] != want[i]) {
                print_error("%s: first difference at byte %zu: got %02x, want %02x\n", what, i,
                            got[i], want[i]);
                break;
            }
        }
        fail();
    }
}

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

/* ---- BLAKE2b ----------------------------------------------------------- */

/* blake2b-kat.txt: key = 00..3f, outlen 64 */
static const char *const kat_keyed_empty =
    "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
    "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568";
static const char *const kat_keyed_00 =
    "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
    "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd";
/* RFC 7693 Appendix A: BLAKE2b-512("abc") */
static const char *const rfc7693_abc =
    "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
    "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923";

static void test_keyed_hash_kat(void **state)
{
    (void)state;
    uint8_t key[64], want[64], got[64];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;

    memset(got, 0, sizeof(got));
    unhex(kat_keyed_empty, want, sizeof(want));
    assert_int_equal(bg_sig_keyed_hash(key, sizeof(key), "", 0, got, sizeof(got)), BG_OK);
    assert_bytes_equal(got, want, sizeof(want), "keyed BLAKE2b, empty input");

    const uint8_t zero = 0x00;
    memset(got, 0, sizeof(got));
    unhex(kat_keyed_00, want, sizeof(want));
    assert_int_equal(bg_sig_keyed_hash(key, sizeof(key), &zero, 1, got, sizeof(got)), BG_OK);
    assert_bytes_equal(got, want, sizeof(want), "keyed BLAKE2b, input 00");
}

static void test_unkeyed_hash_rfc7693(void **state)
{
    (void)state;
    uint8_t want[64], got[64];
    unhex(rfc7693_abc, want, sizeof(want));
    memset(got, 0, sizeof(got));
    assert_int_equal(bg_sig_keyed_hash(NULL, 0, "abc", 3, got, sizeof(got)), BG_OK);
    assert_bytes_equal(got, want, sizeof(want), "BLAKE2b-512(\"abc\")");
}

static void test_keyed_hash_lengths(void **state)
{
    (void)state;
    uint8_t key[65], out[65];
    memset(key, 7, sizeof(key));
    struct {
        size_t keylen, outlen;
        bg_err want;
    } cases[] = {
        {32, 32, BG_OK}, {16, 16, BG_OK}, {64, 64, BG_OK}, {0, 32, BG_OK},
        {32, 15, BG_EINVAL}, {32, 65, BG_EINVAL}, {32, 0, BG_EINVAL},
        {15, 32, BG_EINVAL}, {65, 32, BG_EINVAL}, {1, 32, BG_EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_err rc = bg_sig_keyed_hash(key, cases[i].keylen, "x", 1, out, cases[i].outlen);
        if (rc != cases[i].want) {
            print_error("keylen %zu outlen %zu: rc=%d, want %d\n", cases[i].keylen,
                        cases[i].outlen, rc, cases[i].want);
            fail();
        }
    }
}

static void test_keyed_hash_depends_on_inputs(void **state)
{
    (void)state;
    uint8_t k1[32], k2[32], a[32], b[32], c[32], d[32];
    memset(k1, 1, sizeof(k1));
    memset(k2, 1, sizeof(k2));
    k2[31] = 2;
    assert_int_equal(bg_sig_keyed_hash(k1, 32, "token", 5, a, 32), BG_OK);
    assert_int_equal(bg_sig_keyed_hash(k1, 32, "token", 5, b, 32), BG_OK);
    assert_int_equal(bg_sig_keyed_hash(k2, 32, "token", 5, c, 32), BG_OK);
    assert_int_equal(bg_sig_keyed_hash(k1, 32, "tokeN", 5, d, 32), BG_OK);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_memory_not_equal(a, d, 32);
    /* a 32-byte hash is not the 64-byte one cut short (outlen is a parameter) */
    uint8_t full[64];
    assert_int_equal(bg_sig_keyed_hash(k1, 32, "token", 5, full, 64), BG_OK);
    assert_memory_not_equal(a, full, 32);
}

static void test_eq(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 0x11, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(bg_sig_eq(a, b, sizeof(a)));
    for (size_t i = 0; i < sizeof(b); i += 31) {
        b[i] ^= 0x80;
        assert_false(bg_sig_eq(a, b, sizeof(a)));
        b[i] ^= 0x80;
    }
    assert_true(bg_sig_eq(a, b, 0));
}

/* ---- secretbox --------------------------------------------------------- */

/* libsodium test/default/secretbox.c and secretbox.exp */
static const uint8_t nacl_firstkey[32] = {
    0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19,
    0x7a, 0x9a, 0x46, 0xc7, 0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2,
    0x06, 0xc4, 0xee, 0x08, 0x44, 0xf6, 0x83, 0x89,
};
static const uint8_t nacl_nonce[24] = {
    0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8,
    0x75, 0xfc, 0x73, 0xd6, 0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
};
static const uint8_t nacl_plain[131] = {
    0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5, 0xcf, 0x14, 0x13, 0x16,
    0xeb, 0xeb, 0x0c, 0x7b, 0x52, 0x28, 0xc5, 0x2a, 0x4c, 0x62, 0xcb, 0xd4,
    0x4b, 0x66, 0x84, 0x9b, 0x64, 0x24, 0x4f, 0xfc, 0xe5, 0xec, 0xba, 0xaf,
    0x33, 0xbd, 0x75, 0x1a, 0x1a, 0xc7, 0x28, 0xd4, 0x5e, 0x6c, 0x61, 0x29,
    0x6c, 0xdc, 0x3c, 0x01, 0x23, 0x35, 0x61, 0xf4, 0x1d, 0xb6, 0x6c, 0xce,
    0x31, 0x4a, 0xdb, 0x31, 0x0e, 0x3b, 0xe8, 0x25, 0x0c, 0x46, 0xf0, 0x6d,
    0xce, 0xea, 0x3a, 0x7f, 0xa1, 0x34, 0x80, 0x57, 0xe2, 0xf6, 0x55, 0x6a,
    0xd6, 0xb1, 0x31, 0x8a, 0x02, 0x4a, 0x83, 0x8f, 0x21, 0xaf, 0x1f, 0xde,
    0x04, 0x89, 0x77, 0xeb, 0x48, 0xf5, 0x9f, 0xfd, 0x49, 0x24, 0xca, 0x1c,
    0x60, 0x90, 0x2e, 0x52, 0xf0, 0xa0, 0x89, 0xbc, 0x76, 0x89, 0x70, 0x40,
    0xe0, 0x82, 0xf9, 0x37, 0x76, 0x38, 0x48, 0x64, 0x5e, 0x07, 0x05,
};
static const uint8_t nacl_box[147] = {
    0xf3, 0xff, 0xc7, 0x70, 0x3f, 0x94, 0x00, 0xe5, 0x2a, 0x7d, 0xfb, 0x4b,
    0x3d, 0x33, 0x05, 0xd9, 0x8e, 0x99, 0x3b, 0x9f, 0x48, 0x68, 0x12, 0x73,
    0xc2, 0x96, 0x50, 0xba, 0x32, 0xfc, 0x76, 0xce, 0x48, 0x33, 0x2e, 0xa7,
    0x16, 0x4d, 0x96, 0xa4, 0x47, 0x6f, 0xb8, 0xc5, 0x31, 0xa1, 0x18, 0x6a,
    0xc0, 0xdf, 0xc1, 0x7c, 0x98, 0xdc, 0xe8, 0x7b, 0x4d, 0xa7, 0xf0, 0x11,
    0xec, 0x48, 0xc9, 0x72, 0x71, 0xd2, 0xc2, 0x0f, 0x9b, 0x92, 0x8f, 0xe2,
    0x27, 0x0d, 0x6f, 0xb8, 0x63, 0xd5, 0x17, 0x38, 0xb4, 0x8e, 0xee, 0xe3,
    0x14, 0xa7, 0xcc, 0x8a, 0xb9, 0x32, 0x16, 0x45, 0x48, 0xe5, 0x26, 0xae,
    0x90, 0x22, 0x43, 0x68, 0x51, 0x7a, 0xcf, 0xea, 0xbd, 0x6b, 0xb3, 0x73,
    0x2b, 0xc0, 0xe9, 0xda, 0x99, 0x83, 0x2b, 0x61, 0xca, 0x01, 0xb6, 0xde,
    0x56, 0x24, 0x4a, 0x9e, 0x88, 0xd5, 0xf9, 0xb3, 0x79, 0x73, 0xf6, 0x22,
    0xa4, 0x3d, 0x14, 0xa6, 0x59, 0x9b, 0x1f, 0x65, 0x4c, 0xb4, 0x5a, 0x74,
    0xe3, 0x55, 0xa5,
};

static void test_open_nacl_vector(void **state)
{
    (void)state;
    uint8_t in[sizeof(nacl_nonce) + sizeof(nacl_box)];
    memcpy(in, nacl_nonce, sizeof(nacl_nonce));
    memcpy(in + sizeof(nacl_nonce), nacl_box, sizeof(nacl_box));
    assert_int_equal(sizeof(in) - BG_SEAL_OVERHEAD, sizeof(nacl_plain));

    uint8_t out[sizeof(nacl_plain)];
    memset(out, 0, sizeof(out));
    assert_int_equal(bg_sig_open(nacl_firstkey, in, sizeof(in), out), BG_OK);
    assert_bytes_equal(out, nacl_plain, sizeof(nacl_plain), "NaCl secretbox vector");

    /* the same vector with one MAC bit flipped */
    in[sizeof(nacl_nonce)] ^= 1;
    assert_int_equal(bg_sig_open(nacl_firstkey, in, sizeof(in), out), BG_EAUTH);
}

static void random_key(uint8_t key[BG_KEY_BYTES])
{
    bg_sig_random(key, BG_KEY_BYTES);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void test_seal_open_round_trip(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES];
    random_key(key);
    static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 1000};
    for (size_t i = 0; i < N_ELEMS(lens); i++) {
        size_t n = lens[i];
        uint8_t *plain = malloc(n + 1), *sealed = malloc(n + BG_SEAL_OVERHEAD),
                *opened = malloc(n + 1);
        assert_non_null(plain);
        assert_non_null(sealed);
        assert_non_null(opened);
        bg_sig_random(plain, n);
        bg_sig_seal(key, plain, n, sealed);
        memset(opened, 0xAA, n + 1);
        assert_int_equal(bg_sig_open(key, sealed, n + BG_SEAL_OVERHEAD, opened), BG_OK);
        assert_memory_equal(opened, plain, n);
        /* writes exactly inlen - BG_SEAL_OVERHEAD bytes */
        assert_int_equal(opened[n], 0xAA);
        /* the plaintext is not in the clear inside the sealed buffer */
        if (n >= 16)
            assert_memory_not_equal(sealed + 24 + 16, plain, n);
        free(plain);
        free(sealed);
        free(opened);
    }
}

static void test_seal_uses_fresh_nonce(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES], a[5 + BG_SEAL_OVERHEAD], b[5 + BG_SEAL_OVERHEAD];
    random_key(key);
    bg_sig_seal(key, "hello", 5, a);
    bg_sig_seal(key, "hello", 5, b);
    assert_memory_not_equal(a, b, 24);                    /* nonce */
    assert_memory_not_equal(a + 24, b + 24, 5 + 16);      /* box */
}

static void test_open_tampered(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES];
    random_key(key);
    const char msg[] = "the quick brown fox";
    const size_t n = sizeof(msg) - 1, total = n + BG_SEAL_OVERHEAD;
    uint8_t sealed[sizeof(msg) - 1 + BG_SEAL_OVERHEAD], out[sizeof(msg)];
    bg_sig_seal(key, msg, n, sealed);

    /* every single byte, nonce, MAC and ciphertext alike */
    for (size_t i = 0; i < total; i++) {
        sealed[i] ^= 0x01;
        memset(out, 0xAA, sizeof(out));
        bg_err rc = bg_sig_open(key, sealed, total, out);
        sealed[i] ^= 0x01;
        if (rc != BG_EAUTH || !all_zero(out, n) || out[n] != 0xAA) {
            print_error("flipped byte %zu: rc=%d (out wiped: %d)\n", i, rc, all_zero(out, n));
            fail();
        }
    }
    /* untampered still opens */
    assert_int_equal(bg_sig_open(key, sealed, total, out), BG_OK);
    assert_memory_equal(out, msg, n);
}

static void test_open_wrong_key(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES], other[BG_KEY_BYTES];
    random_key(key);
    memcpy(other, key, sizeof(other));
    other[0] ^= 0x01;
    uint8_t sealed[8 + BG_SEAL_OVERHEAD], out[8];
    bg_sig_seal(key, "secret!!", 8, sealed);
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(bg_sig_open(other, sealed, sizeof(sealed), out), BG_EAUTH);
    assert_true(all_zero(out, sizeof(out)));
}

static void test_open_truncated(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES];
    random_key(key);
    uint8_t sealed[8 + BG_SEAL_OVERHEAD], out[8];
    bg_sig_seal(key, "abcdefgh", 8, sealed);

    /* shorter than nonce + MAC: nothing to open */
    static const size_t short_lens[] = {0, 1, 23, 24, 39};
    for (size_t i = 0; i < N_ELEMS(short_lens); i++) {
        memset(out, 0xAA, sizeof(out));
        assert_int_equal(bg_sig_open(key, sealed, short_lens[i], out), BG_EINVAL);
        assert_int_equal(out[0], 0xAA); /* nothing written */
    }
    /* long enough, but cut: the MAC no longer matches */
    for (size_t len = BG_SEAL_OVERHEAD; len < sizeof(sealed); len++)
        assert_int_equal(bg_sig_open(key, sealed, len, out), BG_EAUTH);
    assert_int_equal(bg_sig_open(key, sealed, sizeof(sealed), out), BG_OK);
    assert_memory_equal(out, "abcdefgh", 8);
}

static void test_seal_empty(void **state)
{
    (void)state;
    uint8_t key[BG_KEY_BYTES], sealed[BG_SEAL_OVERHEAD], out[1] = {0xAA};
    random_key(key);
    bg_sig_seal(key, "", 0, sealed);
    assert_int_equal(bg_sig_open(key, sealed, sizeof(sealed), out), BG_OK);
    assert_int_equal(out[0], 0xAA);
    sealed[30] ^= 0x40;
    assert_int_equal(bg_sig_open(key, sealed, sizeof(sealed), out), BG_EAUTH);
}

/* ---- KDF --------------------------------------------------------------- */

/* libsodium kdf.exp: master 00..1f, context "KDF test", id 32, 32 bytes */
static const char *const kdf_kat_id32 =
    "154b291f11196737f8b7f491e4ca11764e0227d34f94295408a869f007aa8618";

static void test_kdf_kat(void **state)
{
    (void)state;
    uint8_t master[BG_KEY_BYTES], want[BG_KEY_BYTES], got[BG_KEY_BYTES];
    for (size_t i = 0; i < sizeof(master); i++)
        master[i] = (uint8_t)i;
    unhex(kdf_kat_id32, want, sizeof(want));
    bg_sig_kdf(master, 32, "KDF test", got);
    assert_bytes_equal(got, want, sizeof(want), "KDF id 32");
}

static void test_kdf_separation(void **state)
{
    (void)state;
    uint8_t master[BG_KEY_BYTES], master2[BG_KEY_BYTES];
    uint8_t a[BG_KEY_BYTES], b[BG_KEY_BYTES], c[BG_KEY_BYTES], d[BG_KEY_BYTES],
        e[BG_KEY_BYTES], f[BG_KEY_BYTES];
    random_key(master);
    memcpy(master2, master, sizeof(master2));
    master2[5] ^= 0x20;

    bg_sig_kdf(master, 1, "branchgt", a);
    bg_sig_kdf(master, 1, "branchgt", b);
    bg_sig_kdf(master, 2, "branchgt", c);
    bg_sig_kdf(master, 1, "branchgT", d);
    bg_sig_kdf(master2, 1, "branchgt", e);
    bg_sig_kdf(master, UINT64_MAX, "branchgt", f);

    assert_memory_equal(a, b, BG_KEY_BYTES);     /* deterministic */
    assert_memory_not_equal(a, c, BG_KEY_BYTES); /* id */
    assert_memory_not_equal(a, d, BG_KEY_BYTES); /* context */
    assert_memory_not_equal(a, e, BG_KEY_BYTES); /* master */
    assert_memory_not_equal(a, f, BG_KEY_BYTES);
    assert_memory_not_equal(c, f, BG_KEY_BYTES);
    assert_memory_not_equal(a, master, BG_KEY_BYTES);

    /* all 64 bits of the id count: ids equal in their low bits differ */
    static const uint64_t alias[] = {1 + (UINT64_C(1) << 8), 1 + (UINT64_C(1) << 32),
                                     1 + (UINT64_C(1) << 63)};
    for (size_t i = 0; i < N_ELEMS(alias); i++) {
        uint8_t g[BG_KEY_BYTES];
        bg_sig_kdf(master, alias[i], "branchgt", g);
        assert_memory_not_equal(a, g, BG_KEY_BYTES);
    }
}

/* ---- hex --------------------------------------------------------------- */

static void test_hex_encode(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, '#', sizeof(out));
    bg_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "00017f80abcdefff");

    char empty[1] = {'#'};
    bg_hex_encode(in, 0, empty);
    assert_int_equal(empty[0], '\0');
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 64; n++) {
        uint8_t in[64], back[64];
        char hex[129];
        bg_sig_random(in, n);
        bg_hex_encode(in, n, hex);
        assert_int_equal(strlen(hex), 2 * n);
        memset(back, 0, sizeof(back));
        assert_int_equal(bg_hex_decode(hex, 2 * n, back, n), BG_OK);
        assert_memory_equal(back, in, n);
    }
}

static void test_hex_decode_table(void **state)
{
    (void)state;
    struct {
        const char *hex;
        size_t outlen;
        bg_err want;
        const char *bytes; /* expected output when BG_OK */
    } cases[] = {
        {"00ff", 2, BG_OK, "\x00\xff"},
        {"4142", 2, BG_OK, "AB"},
        {"", 0, BG_OK, ""},
        /* wrong length either way */
        {"00ff", 1, BG_EINVAL, NULL},
        {"00ff", 3, BG_EINVAL, NULL},
        {"00f", 2, BG_EINVAL, NULL},
        {"00f", 1, BG_EINVAL, NULL},
        {"00ff00", 2, BG_EINVAL, NULL},
        /* bad digits anywhere */
        {"0g", 1, BG_EINVAL, NULL},
        {"g0", 1, BG_EINVAL, NULL},
        {"00fg", 2, BG_EINVAL, NULL},
        {"0 ", 1, BG_EINVAL, NULL},
        {" 0", 1, BG_EINVAL, NULL},
        {"0x", 1, BG_EINVAL, NULL},
        {"-1", 1, BG_EINVAL, NULL},
        {"00:f", 2, BG_EINVAL, NULL},
        {"zz", 1, BG_EINVAL, NULL},
        {"/0", 1, BG_EINVAL, NULL}, /* '0' - 1 */
        {":0", 1, BG_EINVAL, NULL}, /* '9' + 1 */
        {"`0", 1, BG_EINVAL, NULL}, /* 'a' - 1 */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t out[8];
        memset(out, 0xEE, sizeof(out));
        bg_err rc = bg_hex_decode(cases[i].hex, strlen(cases[i].hex), out, cases[i].outlen);
        bool ok = rc == cases[i].want;
        if (ok && rc == BG_OK)
            ok = memcmp(out, cases[i].bytes, cases[i].outlen) == 0;
        if (!ok) {
            print_error("case %zu \"%s\" outlen %zu: rc=%d, want %d\n", i, cases[i].hex,
                        cases[i].outlen, rc, cases[i].want);
            fail();
        }
    }
    /* an embedded NUL inside hexlen is a bad digit, not an early end */
    uint8_t out[2];
    assert_int_equal(bg_hex_decode("00\0" "0", 4, out, 2), BG_EINVAL);
}

/* ---- base64url --------------------------------------------------------- */

/* RFC 4648 section 10 test strings; their base64 has no '+' or '/', so the
 * url-safe unpadded form is the same text without '='. */
static const struct {
    const char *plain, *b64url;
} rfc4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},       {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void test_b64url_rfc4648(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rfc4648); i++) {
        size_t n = strlen(rfc4648[i].plain);
        char enc[16];
        memset(enc, '#', sizeof(enc));
        assert_int_equal(bg_b64url_len(n), strlen(rfc4648[i].b64url));
        bg_b64url_encode(rfc4648[i].plain, n, enc);
        assert_string_equal(enc, rfc4648[i].b64url);

        uint8_t dec[16];
        size_t outlen = 999;
        assert_int_equal(bg_b64url_decode(rfc4648[i].b64url, strlen(rfc4648[i].b64url), dec,
                                          sizeof(dec), &outlen),
                         BG_OK);
        assert_int_equal(outlen, n);
        assert_memory_equal(dec, rfc4648[i].plain, n);
    }
}

static void test_b64url_alphabet(void **state)
{
    (void)state;
    /* 0xfb 0xff = 111110 111111 1111(00): indexes 62, 63, 60, which are
     * '+' '/' '8' in standard base64 and '-' '_' '8' in base64url. */
    const uint8_t in[] = {0xfb, 0xff};
    char enc[8];
    bg_b64url_encode(in, sizeof(in), enc);
    assert_string_equal(enc, "-_8");
    uint8_t dec[4];
    size_t outlen = 0;
    assert_int_equal(bg_b64url_decode("-_8", 3, dec, sizeof(dec), &outlen), BG_OK);
    assert_int_equal(outlen, 2);
    assert_memory_equal(dec, in, 2);
}

static void test_b64url_round_trip(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 70; n++) {
        uint8_t in[70], back[70];
        char enc[100];
        bg_sig_random(in, n);
        memset(enc, '#', sizeof(enc));
        bg_b64url_encode(in, n, enc);
        assert_int_equal(strlen(enc), bg_b64url_len(n));
        assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_"),
                         strlen(enc));
        size_t outlen = 999;
        /* exactly n bytes of room is enough */
        assert_int_equal(bg_b64url_decode(enc, strlen(enc), back, n, &outlen), BG_OK);
        assert_int_equal(outlen, n);
        assert_memory_equal(back, in, n);
    }
}

static void test_b64url_decode_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "Zm9v+",   "Zm9v/w", "Zm+v",  "Zm/v",    /* standard alphabet */
        "Zg==",    "Zm8=",   "Zg=",   "=",       /* padding */
        "Zm9v YmFy", "Zm9v\n", " Zg", "Zm9v.",  /* whitespace, punctuation */
        "Z",       "Zm9vY",                      /* impossible length */
        "Zm9\xc3\xa9",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        uint8_t out[32];
        size_t outlen = 999;
        bg_err rc = bg_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &outlen);
        if (rc != BG_EINVAL || outlen != 999) {
            print_error("\"%s\": rc=%d outlen=%zu, want BG_EINVAL\n", bad[i], rc, outlen);
            fail();
        }
    }
}

static void test_b64url_decode_cap(void **state)
{
    (void)state;
    struct {
        const char *in;
        size_t cap;
        bg_err want;
    } cases[] = {
        {"Zm9vYmFy", 6, BG_OK},     {"Zm9vYmFy", 5, BG_ETOOBIG}, {"Zm9vYmFy", 0, BG_ETOOBIG},
        {"Zm9vYmE", 5, BG_OK},      {"Zm9vYmE", 4, BG_ETOOBIG},  {"Zm9vYg", 4, BG_OK},
        {"Zm9vYg", 3, BG_ETOOBIG},  {"Zg", 1, BG_OK},            {"Zg", 0, BG_ETOOBIG},
        {"", 0, BG_OK},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        /* the buffer is larger than cap: no byte beyond cap may change */
        uint8_t out[16];
        memset(out, 0xEE, sizeof(out));
        size_t outlen = 999;
        bg_err rc = bg_b64url_decode(cases[i].in, strlen(cases[i].in), out, cases[i].cap, &outlen);
        bool ok = rc == cases[i].want;
        for (size_t j = cases[i].cap; ok && j < sizeof(out); j++)
            ok = out[j] == 0xEE;
        if (ok && rc != BG_OK)
            ok = outlen == 999;
        if (!ok) {
            print_error("\"%s\" cap %zu: rc=%d, want %d\n", cases[i].in, cases[i].cap, rc,
                        cases[i].want);
            fail();
        }
    }
}

/* ---- tokens ------------------------------------------------------------ */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void check_token(const char *tok, const char *prefix)
{
    size_t plen = strlen(prefix), body = bg_b64url_len(BG_TOKEN_RAW_BYTES);
    assert_int_equal(body, 43);
    assert_int_equal(strlen(tok), plen + body);
    assert_true(strlen(tok) < BG_TOKEN_MAX);
    assert_memory_equal(tok, prefix, plen);
    assert_int_equal(strspn(tok + plen, b64url_alphabet), body);
    uint8_t raw[BG_TOKEN_RAW_BYTES];
    size_t n = 0;
    assert_int_equal(bg_b64url_decode(tok + plen, body, raw, sizeof(raw), &n), BG_OK);
    assert_int_equal(n, BG_TOKEN_RAW_BYTES);
}

static void test_token_new(void **state)
{
    (void)state;
    char a[BG_TOKEN_MAX], b[BG_TOKEN_MAX];
    static const char *const prefixes[] = {"", "bg_", "bgt_", "12345678"};
    for (size_t i = 0; i < N_ELEMS(prefixes); i++) {
        memset(a, '#', sizeof(a));
        memset(b, '#', sizeof(b));
        bg_sig_token_new(prefixes[i], a);
        bg_sig_token_new(prefixes[i], b);
        check_token(a, prefixes[i]);
        check_token(b, prefixes[i]);
        assert_string_not_equal(a, b);
    }
}

/* ---- UUID -------------------------------------------------------------- */

static void test_uuid_v4_format(void **state)
{
    (void)state;
    static const char variants[] = "89ab";
    char prev[BG_UUID_LEN + 1] = "";
    bool variant_seen[4] = {false, false, false, false};
    for (int i = 0; i < 256; i++) {
        char u[BG_UUID_LEN + 1];
        memset(u, '#', sizeof(u));
        bg_uuid_v4(u);
        assert_int_equal(strlen(u), BG_UUID_LEN);
        assert_true(bg_uuid_valid(u, strlen(u)));
        for (size_t j = 0; j < BG_UUID_LEN; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                assert_int_equal(u[j], '-');
            else
                assert_non_null(strchr("0123456789abcdef", u[j]));
        }
        /* version nibble 4, variant 10xx (RFC 4122 section 4.4) */
        assert_int_equal(u[14], '4');
        const char *v = strchr(variants, u[19]);
        assert_true(v != NULL && *v != '\0');
        variant_seen[v - variants] = true;
        assert_string_not_equal(u, prev);
        memcpy(prev, u, sizeof(prev));
    }
    /* the two free variant bits are random, not fixed */
    assert_true(variant_seen[0] + variant_seen[1] + variant_seen[2] + variant_seen[3] > 1);
}

static void test_uuid_valid_table(void **state)
{
    (void)state;
    struct {
        const char *s;
        bool want;
    } cases[] = {
        {"123e4567-e89b-42d3-a456-426614174000", true},
        {"00000000-0000-0000-0000-000000000000", true},
        {"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
        {"123e4567-e89b-12d3-a456-426614174000", true}, /* any version */
        {"123E4567-E89B-42D3-A456-426614174000", false}, /* upper case */
        {"123e4567-e89b-42d3-a456-42661417400A", false},
        {"123e4567e89b42d3a456426614174000", false},     /* no dashes */
        {"123e4567-e89b-42d3-a456-42661417400", false},  /* 35 */
        {"123e4567-e89b-42d3-a456-4266141740000", false}, /* 37 */
        {"123e4567-e89b-42d3-a4564-26614174000", false}, /* dash moved */
        {"123e4567-e89b-42d3-a456_426614174000", false},
        {"123e456--e89b-42d3-a456-426614174000", false},
        {"123e4567-e89b-42d3-a456-42661417400g", false},
        {"g23e4567-e89b-42d3-a456-426614174000", false},
        {"{23e4567-e89b-42d3-a456-42661417400}", false},
        {"123e4567 e89b 42d3 a456 426614174000", false},
        {"------------------------------------", false},
        {"", false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bool got = bg_uuid_valid(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].want) {
            print_error("\"%s\": got %d, want %d\n", cases[i].s, got, cases[i].want);
            fail();
        }
    }
    assert_false(bg_uuid_valid(NULL, BG_UUID_LEN));
    /* len, not the terminator, decides */
    assert_false(bg_uuid_valid("123e4567-e89b-42d3-a456-426614174000", 35));
    assert_true(bg_uuid_valid("123e4567-e89b-42d3-a456-426614174000xyz", 36));
}

/* ---- Ed25519 ----------------------------------------------------------- */

static void test_ed25519_round_trip(void **state)
{
    (void)state;
    uint8_t pk[BG_ED25519_PK_BYTES], sk[BG_ED25519_SK_BYTES], sig[BG_ED25519_SIG_BYTES];
    uint8_t pk2[BG_ED25519_PK_BYTES], sk2[BG_ED25519_SK_BYTES];
    bg_sig_ed25519_keypair(pk, sk);
    bg_sig_ed25519_keypair(pk2, sk2);
    assert_memory_not_equal(pk, pk2, sizeof(pk));

    const char msg[] = "branch license v1";
    const size_t n = sizeof(msg) - 1;
    bg_sig_ed25519_sign(sk, msg, n, sig);
    assert_int_equal(bg_sig_ed25519_verify(pk, msg, n, sig), BG_OK);

    /* deterministic signatures */
    uint8_t sig_again[BG_ED25519_SIG_BYTES];
    bg_sig_ed25519_sign(sk, msg, n, sig_again);
    assert_memory_equal(sig, sig_again, sizeof(sig));

    /* tampered message: each byte, and a shorter or longer one */
    char bad[sizeof(msg) + 1];
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, msg, sizeof(msg));
        bad[i] ^= 0x01;
        assert_int_equal(bg_sig_ed25519_verify(pk, bad, n, sig), BG_EAUTH);
    }
    assert_int_equal(bg_sig_ed25519_verify(pk, msg, n - 1, sig), BG_EAUTH);
    memcpy(bad, msg, sizeof(msg));
    bad[n] = 'x';
    assert_int_equal(bg_sig_ed25519_verify(pk, bad, n + 1, sig), BG_EAUTH);

    /* tampered signature, wrong key */
    for (size_t i = 0; i < sizeof(sig); i += 7) {
        uint8_t s2[BG_ED25519_SIG_BYTES];
        memcpy(s2, sig, sizeof(s2));
        s2[i] ^= 0x10;
        assert_int_equal(bg_sig_ed25519_verify(pk, msg, n, s2), BG_EAUTH);
    }
    assert_int_equal(bg_sig_ed25519_verify(pk2, msg, n, sig), BG_EAUTH);
}

/* RFC 8032 section 7.1, TEST 1 */
static const char *const rfc8032_t1_secret =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char *const rfc8032_t1_public =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char *const rfc8032_t1_signature =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

static void test_ed25519_rfc8032_test1(void **state)
{
    (void)state;
    uint8_t sk[BG_ED25519_SK_BYTES], pk[BG_ED25519_PK_BYTES], want[BG_ED25519_SIG_BYTES],
        sig[BG_ED25519_SIG_BYTES];
    /* libsodium's secret key is seed || public key */
    unhex(rfc8032_t1_secret, sk, 32);
    unhex(rfc8032_t1_public, pk, sizeof(pk));
    memcpy(sk + 32, pk, sizeof(pk));
    unhex(rfc8032_t1_signature, want, sizeof(want));

    memset(sig, 0, sizeof(sig));
    bg_sig_ed25519_sign(sk, "", 0, sig);
    assert_bytes_equal(sig, want, sizeof(want), "RFC 8032 TEST 1 signature");
    assert_int_equal(bg_sig_ed25519_verify(pk, "", 0, want), BG_OK);
    assert_int_equal(bg_sig_ed25519_verify(pk, "\0", 1, want), BG_EAUTH);
    want[63] ^= 0x01;
    assert_int_equal(bg_sig_ed25519_verify(pk, "", 0, want), BG_EAUTH);
}

/* ---- misc -------------------------------------------------------------- */

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    bg_sig_random(a, sizeof(a));
    bg_sig_random(b, sizeof(b));
    assert_false(all_zero(a, sizeof(a)));
    assert_memory_not_equal(a, b, sizeof(a));
    bg_sig_random(a, 0); /* no-op */
}

static void test_secret_memory_and_wipe(void **state)
{
    (void)state;
    uint8_t *p = bg_secret_alloc(BG_KEY_BYTES);
    assert_non_null(p);
    memset(p, 0x5C, BG_KEY_BYTES);
    assert_int_equal(p[BG_KEY_BYTES - 1], 0x5C);
    bg_sig_wipe(p, BG_KEY_BYTES);
    assert_true(all_zero(p, BG_KEY_BYTES));
    bg_secret_free(p);
    bg_secret_free(NULL);

    uint8_t buf[16];
    memset(buf, 0xFF, sizeof(buf));
    bg_sig_wipe(buf, 8);
    assert_true(all_zero(buf, 8));
    assert_int_equal(buf[8], 0xFF);
}

static void test_version(void **state)
{
    (void)state;
    const char *v = bg_sig_version();
    assert_non_null(v);
    assert_true(strlen(v) > 0);
    assert_non_null(strchr(v, '.'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyed_hash_kat),
        cmocka_unit_test(test_unkeyed_hash_rfc7693),
        cmocka_unit_test(test_keyed_hash_lengths),
        cmocka_unit_test(test_keyed_hash_depends_on_inputs),
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_open_nacl_vector),
        cmocka_unit_test(test_seal_open_round_trip),
        cmocka_unit_test(test_seal_uses_fresh_nonce),
        cmocka_unit_test(test_open_tampered),
        cmocka_unit_test(test_open_wrong_key),
        cmocka_unit_test(test_open_truncated),
        cmocka_unit_test(test_seal_empty),
        cmocka_unit_test(test_kdf_kat),
        cmocka_unit_test(test_kdf_separation),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_hex_decode_table),
        cmocka_unit_test(test_b64url_rfc4648),
        cmocka_unit_test(test_b64url_alphabet),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_decode_rejects),
        cmocka_unit_test(test_b64url_decode_cap),
        cmocka_unit_test(test_token_new),
        cmocka_unit_test(test_uuid_v4_format),
        cmocka_unit_test(test_uuid_valid_table),
        cmocka_unit_test(test_ed25519_round_trip),
        cmocka_unit_test(test_ed25519_rfc8032_test1),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_secret_memory_and_wipe),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
