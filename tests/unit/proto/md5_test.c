/*
 * Unit tests for proto/md5.h: RFC 1321 vectors, incremental updates, saved
 * and restored state, and agreement with OpenSSL's MD5 on random input.
 *
 * Vector source: RFC 1321, Appendix A.5 "Test suite" (checked against
 * coreutils md5sum when the table was written).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "proto/md5.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void hex_of(const bg_md5 *m, char out[33])
{
    uint8_t d[BG_MD5_BYTES];
    bg_md5_final(m, d);
    bg_md5_hex(d, out);
}

static void oneshot_hex(const void *data, size_t len, char out[33])
{
    bg_md5 m;
    bg_md5_init(&m);
    bg_md5_update(&m, data, len);
    hex_of(&m, out);
}

/* Deterministic generator so a failure reproduces (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng() >> 56);
}

static const struct {
    const char *msg, *hex;
} rfc1321[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"1234567890123456789012345678901234567890123456789012345678901234567890"
     "1234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};

static void test_rfc1321_suite(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rfc1321); i++) {
        char got[33];
        oneshot_hex(rfc1321[i].msg, strlen(rfc1321[i].msg), got);
        if (strcmp(got, rfc1321[i].hex) != 0)
            print_error("MD5(\"%s\") = %s, want %s\n", rfc1321[i].msg, got, rfc1321[i].hex);
        assert_string_equal(got, rfc1321[i].hex);
    }
}

/* Byte by byte must equal one shot, and final must not disturb the state. */
static void test_final_is_repeatable(void **state)
{
    (void)state;
    const char *msg = rfc1321[6].msg;
    bg_md5 m;
    char a[33], b[33];
    bg_md5_init(&m);
    for (size_t i = 0; msg[i] != '\0'; i++) {
        bg_md5_update(&m, msg + i, 1);
        hex_of(&m, a);
        hex_of(&m, b);
        assert_string_equal(a, b);
    }
    assert_string_equal(a, rfc1321[6].hex);
    bg_md5_update(&m, NULL, 0);
    hex_of(&m, b);
    assert_string_equal(b, rfc1321[6].hex);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    uint8_t msg[200];
    char want[33];
    fill(msg, sizeof(msg));
    oneshot_hex(msg, sizeof(msg), want);
    for (size_t i = 0; i <= sizeof(msg); i++) {
        for (size_t j = i; j <= sizeof(msg); j += 7) {
            bg_md5 m;
            char got[33];
            bg_md5_init(&m);
            bg_md5_update(&m, msg, i);
            bg_md5_update(&m, msg + i, j - i);
            bg_md5_update(&m, msg + j, sizeof(msg) - j);
            hex_of(&m, got);
            if (strcmp(got, want) != 0)
                print_error("split at %zu and %zu\n", i, j);
            assert_string_equal(got, want);
        }
    }
}

/* Save after every prefix length, restore into fresh storage, continue:
 * the digest is that of the whole message. */
static void test_save_load_mid_stream(void **state)
{
    (void)state;
    uint8_t msg[200], saved[BG_MD5_STATE_BYTES], again[BG_MD5_STATE_BYTES];
    char want[33];
    fill(msg, sizeof(msg));
    oneshot_hex(msg, sizeof(msg), want);
    for (size_t i = 0; i <= sizeof(msg); i++) {
        bg_md5 a, b;
        char got[33];
        bg_md5_init(&a);
        bg_md5_update(&a, msg, i);
        bg_md5_save(&a, saved);
        memset(&b, 0xa5, sizeof(b));
        assert_int_equal(bg_md5_load(&b, saved, sizeof(saved)), BG_OK);
        bg_md5_save(&b, again);
        assert_memory_equal(saved, again, sizeof(saved));
        bg_md5_update(&b, msg + i, sizeof(msg) - i);
        hex_of(&b, got);
        assert_string_equal(got, want);
    }
}

/* The layout is stored at rest: pin it. "abc" then save. */
static void test_save_layout(void **state)
{
    (void)state;
    bg_md5 m;
    uint8_t s[BG_MD5_STATE_BYTES];
    bg_md5_init(&m);
    bg_md5_update(&m, "abc", 3);
    bg_md5_save(&m, s);
    static const uint8_t head[28] = {'B',  'M',  '5',  0x01, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                     0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
                                     3,    0,    0,    0,    0,    0,    0,    0};
    assert_memory_equal(s, head, sizeof(head));
    assert_memory_equal(s + 28, "abc", 3);
    for (size_t i = 31; i < BG_MD5_STATE_BYTES; i++)
        assert_int_equal(s[i], 0);
}

/* Scratch bytes left in buf by earlier blocks must not leak into the saved
 * state: equal streams save equal bytes however they were fed. */
static void test_save_is_canonical(void **state)
{
    (void)state;
    uint8_t msg[130], s1[BG_MD5_STATE_BYTES], s2[BG_MD5_STATE_BYTES];
    fill(msg, sizeof(msg));
    bg_md5 a, b;
    bg_md5_init(&a);
    bg_md5_update(&a, msg, sizeof(msg));
    bg_md5_init(&b);
    for (size_t i = 0; i < sizeof(msg); i++)
        bg_md5_update(&b, msg + i, 1);
    bg_md5_save(&a, s1);
    bg_md5_save(&b, s2);
    assert_memory_equal(s1, s2, sizeof(s1));
}

static void test_load_rejects(void **state)
{
    (void)state;
    uint8_t good[BG_MD5_STATE_BYTES], bad[BG_MD5_STATE_BYTES + 1], msg[100];
    bg_md5 m, untouched;
    fill(msg, sizeof(msg));
    bg_md5_init(&m);
    bg_md5_update(&m, msg, 10);
    bg_md5_save(&m, good);
    memset(&untouched, 0x5a, sizeof(untouched));

    struct {
        const char *what;
        size_t off; /* byte to change, or SIZE_MAX for none */
        uint8_t val;
        size_t len;
    } cases[] = {
        {"empty", SIZE_MAX, 0, 0},
        {"short", SIZE_MAX, 0, BG_MD5_STATE_BYTES - 1},
        {"long", SIZE_MAX, 0, BG_MD5_STATE_BYTES + 1},
        {"magic", 0, 'X', BG_MD5_STATE_BYTES},
        {"version", 3, 0x02, BG_MD5_STATE_BYTES},
        {"byte past len%64", 28 + 10, 1, BG_MD5_STATE_BYTES},
        {"last byte", BG_MD5_STATE_BYTES - 1, 1, BG_MD5_STATE_BYTES},
        {"h changed before one block", 4, 0, BG_MD5_STATE_BYTES},
        {"len shrunk below buffered bytes", 20, 5, BG_MD5_STATE_BYTES},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        memset(bad, 0, sizeof(bad));
        memcpy(bad, good, sizeof(good));
        if (cases[i].off != SIZE_MAX)
            bad[cases[i].off] = cases[i].val;
        bg_md5 t = untouched;
        bg_err e = bg_md5_load(&t, bad, cases[i].len);
        if (e != BG_EINVAL)
            print_error("case %s\n", cases[i].what);
        assert_int_equal(e, BG_EINVAL);
        assert_memory_equal(&t, &untouched, sizeof(t));
    }
    assert_int_equal(bg_md5_load(&m, NULL, BG_MD5_STATE_BYTES), BG_EINVAL);

    /* Random garbage of the right size: the magic alone stops it. */
    for (int i = 0; i < 100; i++) {
        fill(bad, BG_MD5_STATE_BYTES);
        if (memcmp(bad, "BM5\x01", 4) == 0)
            continue;
        assert_int_equal(bg_md5_load(&m, bad, BG_MD5_STATE_BYTES), BG_EINVAL);
    }
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t d[BG_MD5_BYTES];
    char out[33];
    for (int i = 0; i < BG_MD5_BYTES; i++)
        d[i] = (uint8_t)(i * 17);
    bg_md5_hex(d, out);
    assert_string_equal(out, "00112233445566778899aabbccddeeff");
}

/* Random sizes up to a few blocks past 4 KiB, fed in random chunks, against
 * OpenSSL's EVP MD5. */
static void test_against_openssl(void **state)
{
    (void)state;
    static uint8_t buf[5000];
    for (int round = 0; round < 400; round++) {
        size_t len = (size_t)(rng() % sizeof(buf));
        fill(buf, len);
        uint8_t want[EVP_MAX_MD_SIZE], got[BG_MD5_BYTES];
        unsigned wlen = 0;
        assert_int_equal(EVP_Digest(buf, len, want, &wlen, EVP_md5(), NULL), 1);
        assert_int_equal(wlen, BG_MD5_BYTES);
        bg_md5 m;
        bg_md5_init(&m);
        for (size_t off = 0; off < len;) {
            size_t chunk = (size_t)(rng() % 300);
            chunk = chunk > len - off ? len - off : chunk;
            bg_md5_update(&m, buf + off, chunk);
            off += chunk;
        }
        bg_md5_final(&m, got);
        if (memcmp(got, want, BG_MD5_BYTES) != 0)
            print_error("round %d, len %zu\n", round, len);
        assert_memory_equal(got, want, BG_MD5_BYTES);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc1321_suite),
        cmocka_unit_test(test_final_is_repeatable),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_save_load_mid_stream),
        cmocka_unit_test(test_save_layout),
        cmocka_unit_test(test_save_is_canonical),
        cmocka_unit_test(test_load_rejects),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_against_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
