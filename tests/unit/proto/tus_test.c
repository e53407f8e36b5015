/*
 * Unit tests for proto/tus.h: Upload-Metadata, Upload-Checksum, file-name
 * sanitising and the HTTP date of Upload-Expires.
 *
 * Vector sources: the Upload-Metadata example of the tus 1.0 protocol text
 * (https://tus.io/protocols/resumable-upload, "Upload-Metadata"); checksum
 * digests of "hello world" from `openssl dgst -md5|-sha1|-sha256 -binary |
 * base64`; dates from RFC 7231 section 7.1.1.1 and `date -u -d @T`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proto/tus.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, sizeof(lit) - 1 /* a literal with its length, NULs included */

/* ---- Upload-Metadata --------------------------------------------------- */

static const char SPEC_META[] = "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential";

static const struct meta_case {
    const char *hdr;
    const char *key;
    size_t cap;
    bg_err err;
    const char *want; /* when err == BG_OK */
    size_t wantlen;
} meta_cases[] = {
    {SPEC_META, "filename", 64, BG_OK, "world_domination_plan.pdf", 25},
    {SPEC_META, "is_confidential", 64, BG_OK, "", 0},
    {SPEC_META, "filetype", 64, BG_ENOTFOUND, NULL, 0},
    {SPEC_META, "Filename", 64, BG_ENOTFOUND, NULL, 0},
    {SPEC_META, "file", 64, BG_ENOTFOUND, NULL, 0},
    /* padding is optional */
    {"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg", "filename", 64, BG_OK,
     "world_domination_plan.pdf", 25},
    {"k YQ", "k", 8, BG_OK, "a", 1},
    {"k YQ==", "k", 8, BG_OK, "a", 1},
    {"k YWI=", "k", 8, BG_OK, "ab", 2},
    {"k YWI", "k", 8, BG_OK, "ab", 2},
    {"k YWJj", "k", 8, BG_OK, "abc", 3},
    /* whitespace around pairs, as some clients join them */
    {"a YQ==, b Yg==", "b", 8, BG_OK, "b", 1},
    {"  a YQ==\t,\tb Yg==  ", "a", 8, BG_OK, "a", 1},
    /* assembly_id and filename as the pipeline sends them */
    {"assembly_id YWJj,filename ZS5tcDM=", "filename", 64, BG_OK, "e.mp3", 5},
    /* empty header: no pairs */
    {"", "a", 8, BG_ENOTFOUND, NULL, 0},
    {"   ", "a", 8, BG_ENOTFOUND, NULL, 0},
    /* size limits: the value plus its NUL must fit */
    {"k YWJj", "k", 3, BG_ETOOBIG, NULL, 0},
    {"k YWJj", "k", 4, BG_OK, "abc", 3},
    {"k", "k", 1, BG_OK, "", 0},
    {"k", "k", 0, BG_ETOOBIG, NULL, 0},
    /* bad base64 */
    {"k d29y!", "k", 64, BG_EINVAL, NULL, 0},
    {"k Y", "k", 64, BG_EINVAL, NULL, 0},
    {"k YQ=", "k", 64, BG_EINVAL, NULL, 0},
    {"k YQ===", "k", 64, BG_EINVAL, NULL, 0},
    {"k ====", "k", 64, BG_EINVAL, NULL, 0},
    {"k Y=Q=", "k", 64, BG_EINVAL, NULL, 0},
    {"k YR==", "k", 64, BG_EINVAL, NULL, 0}, /* non-zero unused bits */
    {"k YWJ=", "k", 64, BG_EINVAL, NULL, 0}, /* non-zero unused bits */
    {"k YW-i", "k", 64, BG_EINVAL, NULL, 0}, /* base64url alphabet */
    /* a bad pair anywhere fails the whole header */
    {"a YQ==,b !!", "a", 64, BG_EINVAL, NULL, 0},
    /* structure */
    {",a YQ==", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ==,", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ==,,b Yg==", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ==, ,b Yg==", "a", 64, BG_EINVAL, NULL, 0},
    {"a  YQ==", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ== Yg==", "a", 64, BG_EINVAL, NULL, 0},
    {"a\tYQ==", "a", 64, BG_EINVAL, NULL, 0},
    {"\xc3\xa9 YQ==", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ==,a Yg==", "a", 64, BG_EINVAL, NULL, 0},
    {"a YQ==,b,a", "b", 64, BG_EINVAL, NULL, 0},
};

static void test_metadata_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(meta_cases); i++) {
        const struct meta_case *c = &meta_cases[i];
        char out[80];
        size_t outlen = 12345;
        memset(out, '#', sizeof(out));
        bg_err e = bg_tus_metadata_get(c->hdr, strlen(c->hdr), c->key, out, c->cap, &outlen);
        if (e != c->err)
            print_error("case %zu \"%s\" key %s: got %d want %d\n", i, c->hdr, c->key, e, c->err);
        assert_int_equal(e, c->err);
        bg_err check = bg_tus_metadata_check(c->hdr, strlen(c->hdr));
        assert_int_equal(check, c->err == BG_EINVAL ? BG_EINVAL : BG_OK);
        if (e != BG_OK) {
            assert_int_equal(outlen, 12345);
            assert_int_equal(out[0], '#');
            continue;
        }
        assert_int_equal(outlen, c->wantlen);
        assert_memory_equal(out, c->want, c->wantlen + 1);
    }
}

/* A value decoding to text with a NUL inside: outlen tells the caller. */
static void test_metadata_embedded_nul(void **state)
{
    (void)state;
    char out[16];
    size_t outlen;
    assert_int_equal(bg_tus_metadata_get(S("filename YQBi"), "filename", out, sizeof(out), &outlen),
                     BG_OK);
    assert_int_equal(outlen, 3);
    assert_memory_equal(out, "a\0b", 4);
    assert_true(strlen(out) != outlen);
}

/* The header is given by length: bytes after it are not read as part of it. */
static void test_metadata_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = "k YQ==,z !!!!";
    char out[16];
    size_t outlen;
    assert_int_equal(bg_tus_metadata_get(buf, 6, "k", out, sizeof(out), &outlen), BG_OK);
    assert_string_equal(out, "a");
    assert_int_equal(bg_tus_metadata_check(buf, 6), BG_OK);
    assert_int_equal(bg_tus_metadata_check(buf, sizeof(buf) - 1), BG_EINVAL);
    assert_int_equal(bg_tus_metadata_check(buf, 5), BG_EINVAL); /* "k YQ=" */
}

static void build_pairs(char *buf, size_t cap, int n)
{
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%sk%d YQ==", i ? "," : "", i);
}

static void test_metadata_pair_limit(void **state)
{
    (void)state;
    char hdr[2048], out[8];
    size_t outlen;
    build_pairs(hdr, sizeof(hdr), BG_TUS_METADATA_MAX_PAIRS);
    assert_int_equal(bg_tus_metadata_check(hdr, strlen(hdr)), BG_OK);
    assert_int_equal(bg_tus_metadata_get(hdr, strlen(hdr), "k63", out, sizeof(out), &outlen), BG_OK);
    build_pairs(hdr, sizeof(hdr), BG_TUS_METADATA_MAX_PAIRS + 1);
    assert_int_equal(bg_tus_metadata_check(hdr, strlen(hdr)), BG_EINVAL);
    assert_int_equal(bg_tus_metadata_get(hdr, strlen(hdr), "k0", out, sizeof(out), &outlen),
                     BG_EINVAL);
}

/* ---- Upload-Checksum --------------------------------------------------- */

static const uint8_t HW_MD5[16] = {0x5e, 0xb6, 0x3b, 0xbb, 0xe0, 0x1e, 0xee, 0xd0,
                                   0x93, 0xcb, 0x22, 0xbb, 0x8f, 0x5a, 0xcd, 0xc3};

static const struct sum_case {
    const char *hdr;
    bg_err err;
    bg_tus_algo algo;
    size_t dlen;
} sum_cases[] = {
    {"md5 XrY7u+Ae7tCTyyK7j1rNww==", BG_OK, BG_TUS_MD5, 16},
    {"md5 XrY7u+Ae7tCTyyK7j1rNww", BG_OK, BG_TUS_MD5, 16},
    {"sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BG_OK, BG_TUS_SHA1, 20},
    {"sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", BG_OK, BG_TUS_SHA256, 32},
    /* unsupported algorithms */
    {"crc32 AAAA", BG_ENOTFOUND, 0, 0},
    {"sha512 AAAA", BG_ENOTFOUND, 0, 0},
    {"MD5 XrY7u+Ae7tCTyyK7j1rNww==", BG_ENOTFOUND, 0, 0},
    {"crc32 !!", BG_ENOTFOUND, 0, 0},
    /* digest of the wrong length for the algorithm */
    {"md5 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BG_EINVAL, 0, 0},
    {"sha256 XrY7u+Ae7tCTyyK7j1rNww==", BG_EINVAL, 0, 0},
    {"sha1 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", BG_EINVAL, 0, 0},
    {"md5 ", BG_EINVAL, 0, 0},
    /* malformed */
    {"", BG_EINVAL, 0, 0},
    {"md5", BG_EINVAL, 0, 0},
    {" md5 XrY7u+Ae7tCTyyK7j1rNww==", BG_EINVAL, 0, 0},
    {"md5  XrY7u+Ae7tCTyyK7j1rNww==", BG_EINVAL, 0, 0},
    {"md5 XrY7u+Ae7tCTyyK7j1rNww== ", BG_EINVAL, 0, 0},
    {"md5 XrY7u+Ae7tCTyyK7j1rN!w==", BG_EINVAL, 0, 0},
    {"md5,XrY7u+Ae7tCTyyK7j1rNww==", BG_EINVAL, 0, 0},
    {"m\xc3\xa9 AAAA", BG_EINVAL, 0, 0},
};

static void test_checksum_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(sum_cases); i++) {
        const struct sum_case *c = &sum_cases[i];
        bg_tus_algo algo = 0;
        uint8_t digest[BG_TUS_DIGEST_MAX];
        size_t dlen = 999;
        memset(digest, 0xee, sizeof(digest));
        bg_err e = bg_tus_checksum_parse(c->hdr, strlen(c->hdr), &algo, digest, &dlen);
        if (e != c->err)
            print_error("case %zu \"%s\": got %d want %d\n", i, c->hdr, e, c->err);
        assert_int_equal(e, c->err);
        if (e != BG_OK) {
            assert_int_equal(algo, 0);
            assert_int_equal(dlen, 999);
            assert_int_equal(digest[0], 0xee);
            continue;
        }
        assert_int_equal(algo, c->algo);
        assert_int_equal(dlen, c->dlen);
        assert_true(bg_tus_checksum_verify(algo, "hello world", 11, digest, dlen));
        assert_false(bg_tus_checksum_verify(algo, "hello World", 11, digest, dlen));
        assert_false(bg_tus_checksum_verify(algo, "hello world", 10, digest, dlen));
        assert_false(bg_tus_checksum_verify(algo, "hello world", 11, digest, dlen - 1));
    }
}

static void test_checksum_verify(void **state)
{
    (void)state;
    uint8_t d[16];
    memcpy(d, HW_MD5, 16);
    assert_true(bg_tus_checksum_verify(BG_TUS_MD5, "hello world", 11, d, 16));
    d[15] ^= 1;
    assert_false(bg_tus_checksum_verify(BG_TUS_MD5, "hello world", 11, d, 16));
    assert_false(bg_tus_checksum_verify(BG_TUS_SHA1, "hello world", 11, HW_MD5, 16));
    assert_false(bg_tus_checksum_verify((bg_tus_algo)99, "hello world", 11, HW_MD5, 16));
    /* Empty data: md5("") = d41d8cd98f00b204e9800998ecf8427e */
    static const uint8_t empty[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
                                      0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};
    assert_true(bg_tus_checksum_verify(BG_TUS_MD5, NULL, 0, empty, 16));
}

/* ---- file names -------------------------------------------------------- */

static const struct name_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    bg_err err;
    const char *want;
} name_cases[] = {
    {"../../x", 0, BG_OK, "_._.._x"},
    {"a/b", 0, BG_OK, "a_b"},
    {"a\\b", 0, BG_OK, "a_b"},
    {"/etc/passwd", 0, BG_OK, "_etc_passwd"},
    {".", 0, BG_OK, "_"},
    {"..", 0, BG_OK, "_."},
    {"...", 0, BG_OK, "_.."},
    {".hidden", 0, BG_OK, "_hidden"},
    {"./a", 0, BG_OK, "__a"},
    {"a.", 0, BG_OK, "a."},
    {" spaces ok.mp3", 0, BG_OK, " spaces ok.mp3"},
    {"file (1)+x-y_z.TXT", 0, BG_OK, "file (1)+x-y_z.TXT"},
    {"a:b*c?d\"e<f>g|h.txt", 0, BG_OK, "a_b_c_d_e_f_g_h.txt"},
    {"100%;$`'~!#&=[]{}@^,", 0, BG_OK, "100_________________"},
    {"\xc3\xa9.mp3", 0, BG_OK, "\xc3\xa9.mp3"},                 /* é */
    {"\xe2\x82\xac", 0, BG_OK, "\xe2\x82\xac"},                 /* € */
    {"\xf0\x9f\x98\x80.png", 0, BG_OK, "\xf0\x9f\x98\x80.png"}, /* U+1F600 */
    {"\xc2\xa0", 0, BG_OK, "\xc2\xa0"},                         /* NBSP, first non-C1 */
    {"\xef\xbf\xbd", 0, BG_OK, "\xef\xbf\xbd"},                 /* U+FFFD */
    {"\xf4\x8f\xbf\xbf", 0, BG_OK, "\xf4\x8f\xbf\xbf"},         /* U+10FFFF */
    {"\xed\x9f\xbf", 0, BG_OK, "\xed\x9f\xbf"},                 /* U+D7FF */
    /* refused */
    {"", 0, BG_EINVAL, NULL},
    {"a\0b", 3, BG_EINVAL, NULL},
    {"\0", 1, BG_EINVAL, NULL},
    {"\x01", 0, BG_EINVAL, NULL},
    {"a\tb", 0, BG_EINVAL, NULL},
    {"a\nb", 0, BG_EINVAL, NULL},
    {"a\x1f", 0, BG_EINVAL, NULL},
    {"a\x7f", 0, BG_EINVAL, NULL},
    {"\xc2\x85", 0, BG_EINVAL, NULL},         /* C1 NEL */
    {"\xc2\x9f", 0, BG_EINVAL, NULL},         /* C1 */
    {"\xff", 0, BG_EINVAL, NULL},
    {"a\xfe", 0, BG_EINVAL, NULL},
    {"\x80", 0, BG_EINVAL, NULL},             /* lone continuation */
    {"a\xc3", 0, BG_EINVAL, NULL},            /* truncated */
    {"\xe2\x82", 0, BG_EINVAL, NULL},         /* truncated */
    {"\xc3\x28", 0, BG_EINVAL, NULL},         /* bad continuation */
    {"\xc0\xaf", 0, BG_EINVAL, NULL},         /* overlong '/' */
    {"\xc1\xbf", 0, BG_EINVAL, NULL},         /* overlong */
    {"\xe0\x80\xaf", 0, BG_EINVAL, NULL},     /* overlong '/' */
    {"\xf0\x80\x80\xaf", 0, BG_EINVAL, NULL}, /* overlong '/' */
    {"\xed\xa0\x80", 0, BG_EINVAL, NULL},     /* surrogate U+D800 */
    {"\xf4\x90\x80\x80", 0, BG_EINVAL, NULL}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, BG_EINVAL, NULL},
};

static void test_sanitize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(name_cases); i++) {
        const struct name_case *c = &name_cases[i];
        char out[BG_TUS_NAME_MAX + 1];
        memset(out, '#', sizeof(out));
        size_t len = c->len ? c->len : strlen(c->in);
        bg_err e = bg_tus_sanitize_name(c->in, len, out, sizeof(out));
        if (e != c->err)
            print_error("case %zu: got %d want %d\n", i, e, c->err);
        assert_int_equal(e, c->err);
        if (e == BG_OK)
            assert_string_equal(out, c->want);
        else
            assert_int_equal(out[0], '#');
    }
}

static void test_sanitize_truncation(void **state)
{
    (void)state;
    char in[512], out[BG_TUS_NAME_MAX + 1];
    /* 300 ASCII bytes: cut at exactly 200. */
    memset(in, 'a', 300);
    assert_int_equal(bg_tus_sanitize_name(in, 300, out, sizeof(out)), BG_OK);
    assert_int_equal(strlen(out), 200);
    /* 'a' + 150 x "é" (301 bytes): 2-byte characters from offset 1 cannot end
     * at 200, so the cut is at 199. */
    in[0] = 'a';
    for (int i = 0; i < 150; i++)
        memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
    assert_int_equal(bg_tus_sanitize_name(in, 301, out, sizeof(out)), BG_OK);
    assert_int_equal(strlen(out), 199);
    assert_memory_equal(out + 197, "\xc3\xa9", 2);
    /* "ab" + 100 x "€" (302 bytes): 2 + 66 * 3 = 200 exactly. */
    memcpy(in, "ab", 2);
    for (int i = 0; i < 100; i++)
        memcpy(in + 2 + 3 * i, "\xe2\x82\xac", 3);
    assert_int_equal(bg_tus_sanitize_name(in, 302, out, sizeof(out)), BG_OK);
    assert_int_equal(strlen(out), 200);
    /* "a" + 4-byte characters: 1 + 49 * 4 = 197. */
    in[0] = 'a';
    for (int i = 0; i < 60; i++)
        memcpy(in + 1 + 4 * i, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(bg_tus_sanitize_name(in, 241, out, sizeof(out)), BG_OK);
    assert_int_equal(strlen(out), 197);
    /* A control byte past the cut still refuses the name. */
    memset(in, 'a', 300);
    in[250] = '\x01';
    assert_int_equal(bg_tus_sanitize_name(in, 300, out, sizeof(out)), BG_EINVAL);
    memset(in, 'a', 300);
    in[299] = '\xff';
    assert_int_equal(bg_tus_sanitize_name(in, 300, out, sizeof(out)), BG_EINVAL);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Names built from pieces that stress the rules: the output always keeps
 * the promised properties, and sanitising it again changes nothing. */
static void test_sanitize_properties(void **state)
{
    (void)state;
    static const char *const pieces[] = {"a", ".", "..", "/", "\\", " ", "*", ":", "-", "(",
                                         "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "~"};
    for (int round = 0; round < 2000; round++) {
        char in[400], out[BG_TUS_NAME_MAX + 1], again[BG_TUS_NAME_MAX + 1];
        size_t len = 0, count = 1 + (size_t)(rng() % 120);
        for (size_t i = 0; i < count; i++) {
            const char *p = pieces[rng() % N_ELEMS(pieces)];
            if (len + strlen(p) > sizeof(in))
                break;
            memcpy(in + len, p, strlen(p));
            len += strlen(p);
        }
        assert_int_equal(bg_tus_sanitize_name(in, len, out, sizeof(out)), BG_OK);
        size_t olen = strlen(out);
        assert_true(olen >= 1 && olen <= BG_TUS_NAME_MAX);
        assert_null(strchr(out, '/'));
        assert_null(strchr(out, '\\'));
        assert_int_not_equal(out[0], '.');
        assert_int_equal(bg_tus_sanitize_name(out, olen, again, sizeof(again)), BG_OK);
        assert_string_equal(again, out);
    }
}

/* ---- HTTP date --------------------------------------------------------- */

static void test_http_date(void **state)
{
    (void)state;
    static const struct {
        long long ms;
        const char *want;
    } cases[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {784111777000LL, "Sun, 06 Nov 1994 08:49:37 GMT"}, /* RFC 7231 7.1.1.1 */
        {784111777999LL, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {951782400000LL, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {1700000000000LL, "Tue, 14 Nov 2023 22:13:20 GMT"},
        {1709164800000LL, "Thu, 29 Feb 2024 00:00:00 GMT"},
        {4102444800000LL, "Fri, 01 Jan 2100 00:00:00 GMT"},
        {253402300799000LL, "Fri, 31 Dec 9999 23:59:59 GMT"},
        /* clamped */
        {-1, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {LLONG_MIN, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {253402300800000LL, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {LLONG_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[BG_TUS_HTTP_DATE_LEN + 1];
        bg_tus_http_date(cases[i].ms, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

static void test_constants(void **state)
{
    (void)state;
    assert_string_equal(BG_TUS_VERSION, "1.0.0");
    assert_string_equal(BG_TUS_CHECKSUM_ALGOS, "md5,sha1,sha256");
    assert_non_null(strstr(BG_TUS_EXTENSIONS, "creation-with-upload"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_table),
        cmocka_unit_test(test_metadata_embedded_nul),
        cmocka_unit_test(test_metadata_not_nul_terminated),
        cmocka_unit_test(test_metadata_pair_limit),
        cmocka_unit_test(test_checksum_parse_table),
        cmocka_unit_test(test_checksum_verify),
        cmocka_unit_test(test_sanitize_table),
        cmocka_unit_test(test_sanitize_truncation),
        cmocka_unit_test(test_sanitize_properties),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_constants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
