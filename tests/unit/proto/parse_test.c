/*
 * Unit tests for proto/parse.h: bounded number, duration, address and
 * identifier parsers. Table-driven; every failure case also checks that the
 * out-parameter is left untouched (parse.h: "writing *out only on success").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/parse.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A value no successful parse in these tables produces. */
#define U64_SENTINEL UINT64_C(0xA5A5A5A5A5A5A5A5)
#define I64_SENTINEL INT64_C(-0x5A5A5A5A5A5A5A5A)

/* ---- bg_parse_u64 ------------------------------------------------------ */

struct u64_case {
    const char *s;
    uint64_t min, max;
    bg_err want;
    uint64_t value;
};

static const struct u64_case u64_cases[] = {
    {"0", 0, UINT64_MAX, BG_OK, 0},
    {"7", 0, UINT64_MAX, BG_OK, 7},
    {"42", 0, UINT64_MAX, BG_OK, 42},
    {"007", 0, UINT64_MAX, BG_OK, 7},
    {"18446744073709551615", 0, UINT64_MAX, BG_OK, UINT64_MAX},
    {"18446744073709551614", 0, UINT64_MAX, BG_OK, UINT64_MAX - 1},
    /* UINT64_MAX + 1, and larger values of the same and greater length */
    {"18446744073709551616", 0, UINT64_MAX, BG_EINVAL, 0},
    {"18446744073709551620", 0, UINT64_MAX, BG_EINVAL, 0},
    {"99999999999999999999", 0, UINT64_MAX, BG_EINVAL, 0},
    {"184467440737095516150", 0, UINT64_MAX, BG_EINVAL, 0},
    /* empty, signs, spaces, non-digits, trailing garbage */
    {"", 0, UINT64_MAX, BG_EINVAL, 0},
    {"+1", 0, UINT64_MAX, BG_EINVAL, 0},
    {"-1", 0, UINT64_MAX, BG_EINVAL, 0},
    {"-0", 0, UINT64_MAX, BG_EINVAL, 0},
    {" 1", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1 ", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1 2", 0, UINT64_MAX, BG_EINVAL, 0},
    {"\t1", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1\n", 0, UINT64_MAX, BG_EINVAL, 0},
    {"abc", 0, UINT64_MAX, BG_EINVAL, 0},
    {"12a", 0, UINT64_MAX, BG_EINVAL, 0},
    {"0x10", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1.5", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1e3", 0, UINT64_MAX, BG_EINVAL, 0},
    {"1_000", 0, UINT64_MAX, BG_EINVAL, 0},
    {"/", 0, UINT64_MAX, BG_EINVAL, 0}, /* '0' - 1 */
    {":", 0, UINT64_MAX, BG_EINVAL, 0}, /* '9' + 1 */
    /* [min, max] is inclusive at both ends */
    {"10", 10, 20, BG_OK, 10},
    {"20", 10, 20, BG_OK, 20},
    {"15", 10, 20, BG_OK, 15},
    {"9", 10, 20, BG_EINVAL, 0},
    {"21", 10, 20, BG_EINVAL, 0},
    {"0", 1, UINT64_MAX, BG_EINVAL, 0},
    {"5", 5, 5, BG_OK, 5},
    {"4", 5, 5, BG_EINVAL, 0},
    {"6", 5, 5, BG_EINVAL, 0},
    {"18446744073709551615", 0, UINT64_MAX - 1, BG_EINVAL, 0},
    {"65535", 0, 65535, BG_OK, 65535},
    {"65536", 0, 65535, BG_EINVAL, 0},
};

static void test_parse_u64_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(u64_cases); i++) {
        const struct u64_case *c = &u64_cases[i];
        uint64_t out = U64_SENTINEL;
        bg_err rc = bg_parse_u64(c->s, strlen(c->s), c->min, c->max, &out);
        if (rc != c->want || (rc == BG_OK && out != c->value) ||
            (rc != BG_OK && out != U64_SENTINEL)) {
            print_error("case %zu \"%s\" [%llu, %llu]: rc=%d out=%llu, want rc=%d value=%llu\n", i,
                        c->s, (unsigned long long)c->min, (unsigned long long)c->max, rc,
                        (unsigned long long)out, c->want, (unsigned long long)c->value);
            fail();
        }
    }
}

/* len, not NUL-termination, delimits the input. */
static void test_parse_u64_uses_len(void **state)
{
    (void)state;
    uint64_t out = U64_SENTINEL;
    assert_int_equal(bg_parse_u64("12345xyz", 5, 0, UINT64_MAX, &out), BG_OK);
    assert_int_equal(out, 12345);
    assert_int_equal(bg_parse_u64("12345", 2, 0, UINT64_MAX, &out), BG_OK);
    assert_int_equal(out, 12);
    out = U64_SENTINEL;
    assert_int_equal(bg_parse_u64("12345", 0, 0, UINT64_MAX, &out), BG_EINVAL);
    /* an embedded NUL inside len is not a digit */
    assert_int_equal(bg_parse_u64("1\0" "2", 3, 0, UINT64_MAX, &out), BG_EINVAL);
    assert_int_equal(bg_parse_u64(NULL, 0, 0, UINT64_MAX, &out), BG_EINVAL);
    assert_true(out == U64_SENTINEL);
}

/* ---- bg_parse_i64 ------------------------------------------------------ */

struct i64_case {
    const char *s;
    int64_t min, max;
    bg_err want;
    int64_t value;
};

static const struct i64_case i64_cases[] = {
    {"0", INT64_MIN, INT64_MAX, BG_OK, 0},
    {"-0", INT64_MIN, INT64_MAX, BG_OK, 0},
    {"1", INT64_MIN, INT64_MAX, BG_OK, 1},
    {"-1", INT64_MIN, INT64_MAX, BG_OK, -1},
    {"123", INT64_MIN, INT64_MAX, BG_OK, 123},
    {"-123", INT64_MIN, INT64_MAX, BG_OK, -123},
    /* INT64_MAX / INT64_MIN and one past each */
    {"9223372036854775807", INT64_MIN, INT64_MAX, BG_OK, INT64_MAX},
    {"9223372036854775808", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-9223372036854775808", INT64_MIN, INT64_MAX, BG_OK, INT64_MIN},
    {"-9223372036854775807", INT64_MIN, INT64_MAX, BG_OK, INT64_MIN + 1},
    {"-9223372036854775809", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"18446744073709551615", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"18446744073709551616", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-18446744073709551616", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    /* malformed */
    {"", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"--1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"+1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"+-1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-+1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {" -1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"- 1", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-1 ", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"1-", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"-1x", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    {"x", INT64_MIN, INT64_MAX, BG_EINVAL, 0},
    /* bounds, inclusive */
    {"-10", -10, 10, BG_OK, -10},
    {"10", -10, 10, BG_OK, 10},
    {"-11", -10, 10, BG_EINVAL, 0},
    {"11", -10, 10, BG_EINVAL, 0},
    {"-1", 0, INT64_MAX, BG_EINVAL, 0},
    {"0", 1, 100, BG_EINVAL, 0},
    {"-9223372036854775808", INT64_MIN + 1, INT64_MAX, BG_EINVAL, 0},
    {"9223372036854775807", INT64_MIN, INT64_MAX - 1, BG_EINVAL, 0},
    {"-5", -5, -5, BG_OK, -5},
};

static void test_parse_i64_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(i64_cases); i++) {
        const struct i64_case *c = &i64_cases[i];
        int64_t out = I64_SENTINEL;
        bg_err rc = bg_parse_i64(c->s, strlen(c->s), c->min, c->max, &out);
        if (rc != c->want || (rc == BG_OK && out != c->value) ||
            (rc != BG_OK && out != I64_SENTINEL)) {
            print_error("case %zu \"%s\" [%lld, %lld]: rc=%d out=%lld, want rc=%d value=%lld\n", i,
                        c->s, (long long)c->min, (long long)c->max, rc, (long long)out, c->want,
                        (long long)c->value);
            fail();
        }
    }
}

static void test_parse_i64_null(void **state)
{
    (void)state;
    int64_t out = I64_SENTINEL;
    assert_int_equal(bg_parse_i64(NULL, 0, INT64_MIN, INT64_MAX, &out), BG_EINVAL);
    assert_int_equal(bg_parse_i64("-7", 0, INT64_MIN, INT64_MAX, &out), BG_EINVAL);
    assert_true(out == I64_SENTINEL);
    assert_int_equal(bg_parse_i64("-789", 2, INT64_MIN, INT64_MAX, &out), BG_OK);
    assert_true(out == -7);
}

/* ---- bg_parse_bool ----------------------------------------------------- */

struct bool_case {
    const char *s;
    bg_err want;
    bool value;
};

static const struct bool_case bool_cases[] = {
    {"true", BG_OK, true},   {"false", BG_OK, false}, {"1", BG_OK, true},
    {"0", BG_OK, false},     {"yes", BG_OK, true},    {"no", BG_OK, false},
    {"on", BG_OK, true},     {"off", BG_OK, false},   {"", BG_EINVAL, false},
    {"TRUE", BG_EINVAL, false}, {"True", BG_EINVAL, false}, {"YES", BG_EINVAL, false},
    {"Off", BG_EINVAL, false},  {"t", BG_EINVAL, false},    {"f", BG_EINVAL, false},
    {"y", BG_EINVAL, false},    {"n", BG_EINVAL, false},    {"tru", BG_EINVAL, false},
    {"truee", BG_EINVAL, false}, {"true ", BG_EINVAL, false}, {" true", BG_EINVAL, false},
    {"2", BG_EINVAL, false},    {"-1", BG_EINVAL, false},   {"01", BG_EINVAL, false},
    {"00", BG_EINVAL, false},   {"of", BG_EINVAL, false},   {"onn", BG_EINVAL, false},
    {"enabled", BG_EINVAL, false},
};

static void test_parse_bool_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bool_cases); i++) {
        const struct bool_case *c = &bool_cases[i];
        /* Start from the opposite of the expected value so a success that
         * does not write *out is caught too. */
        bool out = !c->value;
        bg_err rc = bg_parse_bool(c->s, strlen(c->s), &out);
        if (rc != c->want || (rc == BG_OK && out != c->value) ||
            (rc != BG_OK && out != !c->value)) {
            print_error("case %zu \"%s\": rc=%d out=%d, want rc=%d value=%d\n", i, c->s, rc, out,
                        c->want, c->value);
            fail();
        }
    }
}

static void test_parse_bool_uses_len(void **state)
{
    (void)state;
    bool out = false;
    assert_int_equal(bg_parse_bool("onward", 2, &out), BG_OK);
    assert_true(out);
    assert_int_equal(bg_parse_bool("true", 3, &out), BG_EINVAL);
    assert_int_equal(bg_parse_bool("no\0", 3, &out), BG_EINVAL);
    assert_int_equal(bg_parse_bool(NULL, 0, &out), BG_EINVAL);
    assert_true(out);
}

/* ---- bg_parse_duration ------------------------------------------------- */

struct dur_case {
    const char *s;
    uint64_t max;
    bg_err want;
    uint64_t value;
};

static const struct dur_case dur_cases[] = {
    {"0", UINT64_MAX, BG_OK, 0},
    {"90", UINT64_MAX, BG_OK, 90},
    {"90s", UINT64_MAX, BG_OK, 90},
    {"15m", UINT64_MAX, BG_OK, 15 * 60},
    {"24h", UINT64_MAX, BG_OK, 24 * 3600},
    {"7d", UINT64_MAX, BG_OK, 7 * 86400},
    {"0d", UINT64_MAX, BG_OK, 0},
    {"1s", UINT64_MAX, BG_OK, 1},
    {"1m", UINT64_MAX, BG_OK, 60},
    {"1h", UINT64_MAX, BG_OK, 3600},
    {"1d", UINT64_MAX, BG_OK, 86400},
    /* bad or missing number, bad unit */
    {"", UINT64_MAX, BG_EINVAL, 0},
    {"s", UINT64_MAX, BG_EINVAL, 0},
    {"m", UINT64_MAX, BG_EINVAL, 0},
    {"d", UINT64_MAX, BG_EINVAL, 0},
    {"5x", UINT64_MAX, BG_EINVAL, 0},
    {"5w", UINT64_MAX, BG_EINVAL, 0},
    {"5y", UINT64_MAX, BG_EINVAL, 0},
    {"5S", UINT64_MAX, BG_EINVAL, 0},
    {"5M", UINT64_MAX, BG_EINVAL, 0},
    {"5H", UINT64_MAX, BG_EINVAL, 0},
    {"5D", UINT64_MAX, BG_EINVAL, 0},
    {"5ms", UINT64_MAX, BG_EINVAL, 0},
    {"5ss", UINT64_MAX, BG_EINVAL, 0},
    {"1h30m", UINT64_MAX, BG_EINVAL, 0},
    {"5 s", UINT64_MAX, BG_EINVAL, 0},
    {" 5s", UINT64_MAX, BG_EINVAL, 0},
    {"5s ", UINT64_MAX, BG_EINVAL, 0},
    {"-5s", UINT64_MAX, BG_EINVAL, 0},
    {"+5s", UINT64_MAX, BG_EINVAL, 0},
    {"1.5h", UINT64_MAX, BG_EINVAL, 0},
    {"s5", UINT64_MAX, BG_EINVAL, 0},
    /* overflow: the number alone, and the number times the unit */
    {"18446744073709551615", UINT64_MAX, BG_OK, UINT64_MAX},
    {"18446744073709551615s", UINT64_MAX, BG_OK, UINT64_MAX},
    {"18446744073709551616", UINT64_MAX, BG_EINVAL, 0},
    {"18446744073709551616s", UINT64_MAX, BG_EINVAL, 0},
    {"307445734561825860m", UINT64_MAX, BG_OK, UINT64_C(307445734561825860) * 60},
    {"307445734561825861m", UINT64_MAX, BG_EINVAL, 0},
    {"5124095576030431h", UINT64_MAX, BG_OK, UINT64_C(5124095576030431) * 3600},
    {"5124095576030432h", UINT64_MAX, BG_EINVAL, 0},
    {"213503982334601d", UINT64_MAX, BG_OK, UINT64_C(213503982334601) * 86400},
    {"213503982334602d", UINT64_MAX, BG_EINVAL, 0},
    {"18446744073709551615d", UINT64_MAX, BG_EINVAL, 0},
    /* max_s is inclusive and applies after the unit */
    {"3600", 3600, BG_OK, 3600},
    {"3600s", 3600, BG_OK, 3600},
    {"60m", 3600, BG_OK, 3600},
    {"1h", 3600, BG_OK, 3600},
    {"3601", 3600, BG_EINVAL, 0},
    {"3601s", 3600, BG_EINVAL, 0},
    {"61m", 3600, BG_EINVAL, 0},
    {"2h", 3600, BG_EINVAL, 0},
    {"1d", 3600, BG_EINVAL, 0},
    {"1m", 59, BG_EINVAL, 0},
    {"1m", 60, BG_OK, 60},
    {"2m", 119, BG_EINVAL, 0},
    {"2m", 120, BG_OK, 120},
    {"7d", 7 * 86400 - 1, BG_EINVAL, 0},
    {"7d", 7 * 86400, BG_OK, 7 * 86400},
    {"0", 0, BG_OK, 0},
    {"0h", 0, BG_OK, 0},
    {"1", 0, BG_EINVAL, 0},
};

static void test_parse_duration_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(dur_cases); i++) {
        const struct dur_case *c = &dur_cases[i];
        uint64_t out = U64_SENTINEL;
        bg_err rc = bg_parse_duration(c->s, strlen(c->s), c->max, &out);
        if (rc != c->want || (rc == BG_OK && out != c->value) ||
            (rc != BG_OK && out != U64_SENTINEL)) {
            print_error("case %zu \"%s\" max=%llu: rc=%d out=%llu, want rc=%d value=%llu\n", i,
                        c->s, (unsigned long long)c->max, rc, (unsigned long long)out, c->want,
                        (unsigned long long)c->value);
            fail();
        }
    }
}

static void test_parse_duration_uses_len(void **state)
{
    (void)state;
    uint64_t out = U64_SENTINEL;
    /* "15m" cut to "15" is 15 seconds, not 15 minutes */
    assert_int_equal(bg_parse_duration("15m", 2, UINT64_MAX, &out), BG_OK);
    assert_int_equal(out, 15);
    out = U64_SENTINEL;
    assert_int_equal(bg_parse_duration(NULL, 0, UINT64_MAX, &out), BG_EINVAL);
    assert_int_equal(bg_parse_duration("7d", 0, UINT64_MAX, &out), BG_EINVAL);
    assert_true(out == U64_SENTINEL);
}

/* ---- bg_parse_hostport ------------------------------------------------- */

struct hp_case {
    const char *s;
    size_t cap; /* host buffer capacity passed in (<= 300) */
    bg_err want;
    const char *host;
    uint16_t port;
};

static const struct hp_case hp_cases[] = {
    {"127.0.0.1:8080", 64, BG_OK, "127.0.0.1", 8080},
    {"0.0.0.0:0", 64, BG_OK, "0.0.0.0", 0},
    {"localhost:65535", 64, BG_OK, "localhost", 65535},
    {"example.com:443", 64, BG_OK, "example.com", 443},
    {"my-host_1.example.org:1", 64, BG_OK, "my-host_1.example.org", 1},
    {"[::1]:80", 64, BG_OK, "::1", 80},
    {"[::]:0", 64, BG_OK, "::", 0},
    {"[2001:db8::7]:443", 64, BG_OK, "2001:db8::7", 443},
    /* missing or malformed port */
    {"localhost", 64, BG_EINVAL, NULL, 0},
    {"localhost:", 64, BG_EINVAL, NULL, 0},
    {"localhost:http", 64, BG_EINVAL, NULL, 0},
    {"localhost:+80", 64, BG_EINVAL, NULL, 0},
    {"localhost:-1", 64, BG_EINVAL, NULL, 0},
    {"localhost: 80", 64, BG_EINVAL, NULL, 0},
    {"localhost:80 ", 64, BG_EINVAL, NULL, 0},
    {"localhost:80/", 64, BG_EINVAL, NULL, 0},
    {"localhost:65536", 64, BG_EINVAL, NULL, 0},
    {"localhost:99999", 64, BG_EINVAL, NULL, 0},
    {"localhost:18446744073709551616", 64, BG_EINVAL, NULL, 0},
    {"[::1]", 64, BG_EINVAL, NULL, 0},
    {"[::1]:", 64, BG_EINVAL, NULL, 0},
    {"[::1]80", 64, BG_EINVAL, NULL, 0},
    {"[::1]:65536", 64, BG_EINVAL, NULL, 0},
    /* missing or malformed host */
    {"", 64, BG_EINVAL, NULL, 0},
    {":80", 64, BG_EINVAL, NULL, 0},
    {"[]:80", 64, BG_EINVAL, NULL, 0},
    {"[::1:80", 64, BG_EINVAL, NULL, 0},
    {"::1]:80", 64, BG_EINVAL, NULL, 0},
    {"ho st:80", 64, BG_EINVAL, NULL, 0},
    {"host/x:80", 64, BG_EINVAL, NULL, 0},
    {"user@host:80", 64, BG_EINVAL, NULL, 0},
    {"h\xc3\xa9:80", 64, BG_EINVAL, NULL, 0},
    /* bare IPv6 without brackets is ambiguous and rejected */
    {"::1:80", 64, BG_EINVAL, NULL, 0},
    {"::1", 64, BG_EINVAL, NULL, 0},
    {"2001:db8::7:443", 64, BG_EINVAL, NULL, 0},
    {"fe80::1", 64, BG_EINVAL, NULL, 0},
    {"host:80:81", 64, BG_EINVAL, NULL, 0},
    /* host length against the buffer: at most cap-1 bytes */
    {"abcdefg:80", 8, BG_OK, "abcdefg", 80},
    {"abcdefgh:80", 8, BG_EINVAL, NULL, 0},
    {"abcdefghijklmnop:80", 8, BG_EINVAL, NULL, 0},
    {"[::1]:80", 4, BG_OK, "::1", 80},
    {"[::1]:80", 3, BG_EINVAL, NULL, 0},
    {"[2001:db8::7]:443", 8, BG_EINVAL, NULL, 0},
    {"a:1", 2, BG_OK, "a", 1},
    {"a:1", 1, BG_EINVAL, NULL, 0},
    {"a:1", 0, BG_EINVAL, NULL, 0},
};

static void test_parse_hostport_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(hp_cases); i++) {
        const struct hp_case *c = &hp_cases[i];
        /* The buffer is larger than cap and pre-filled, so a write past cap
         * or a write on failure shows up as a changed byte. */
        char host[300];
        memset(host, '#', sizeof(host));
        uint16_t port = 0xBEEF;
        bg_err rc = bg_parse_hostport(c->s, host, c->cap, &port);
        bool ok = rc == c->want;
        if (ok && rc == BG_OK) {
            size_t n = strlen(c->host);
            ok = port == c->port && memcmp(host, c->host, n + 1) == 0;
            for (size_t j = n + 1; ok && j < sizeof(host); j++)
                ok = host[j] == '#';
        } else if (ok) {
            ok = port == 0xBEEF;
            for (size_t j = 0; ok && j < sizeof(host); j++)
                ok = host[j] == '#';
        }
        if (!ok) {
            print_error("case %zu \"%s\" cap=%zu: rc=%d port=%u host=\"%.*s\", want rc=%d\n", i,
                        c->s, c->cap, rc, port, (int)strnlen(host, 64), host, c->want);
            fail();
        }
    }
}

static void test_parse_hostport_long_names(void **state)
{
    (void)state;
    char in[600], host[600];
    uint16_t port = 0;

    /* 253 bytes, the longest DNS name, fits a 254-byte buffer */
    memset(in, 'a', 253);
    strcpy(in + 253, ":1");
    assert_int_equal(bg_parse_hostport(in, host, 254, &port), BG_OK);
    assert_int_equal(strlen(host), 253);
    assert_int_equal(port, 1);

    /* but not a 253-byte one */
    port = 0;
    assert_int_equal(bg_parse_hostport(in, host, 253, &port), BG_EINVAL);
    assert_int_equal(port, 0);

    /* a 254-byte name is no host name, whatever the buffer */
    memset(in, 'a', 254);
    strcpy(in + 254, ":1");
    assert_int_equal(bg_parse_hostport(in, host, sizeof(host), &port), BG_EINVAL);
    assert_int_equal(port, 0);

    assert_int_equal(bg_parse_hostport(NULL, host, sizeof(host), &port), BG_EINVAL);
}

/* ---- bg_str_is_ident --------------------------------------------------- */

struct ident_case {
    const char *s;
    size_t len; /* 0 = strlen(s), except when s is "" */
    size_t max;
    const char *extra;
    bool want;
};

static const struct ident_case ident_cases[] = {
    {"abc", 0, 64, NULL, true},
    {"ABCxyz0189", 0, 64, NULL, true},
    {"a", 0, 1, NULL, true},
    {"ab", 0, 1, NULL, false},
    {"abcd", 0, 4, NULL, true},
    {"abcde", 0, 4, NULL, false},
    {"", 0, 64, NULL, false},
    {"", 0, 64, "-_.", false},
    {"a", 0, 0, NULL, false},
    {"a-b", 0, 64, NULL, false},
    {"a-b", 0, 64, "-", true},
    {"a_b.c-d", 0, 64, "-_.", true},
    {"a_b.c-d", 0, 64, "-_", false},
    {"a b", 0, 64, "-_.", false},
    {"a/b", 0, 64, "-_.", false},
    {"a\tb", 0, 64, "-_.", false},
    {"caf\xc3\xa9", 0, 64, "-_.", false},
    {"\xff", 0, 64, NULL, false},
    {"@", 0, 64, NULL, false}, /* 'A' - 1 */
    {"[", 0, 64, NULL, false}, /* 'Z' + 1 */
    {"`", 0, 64, NULL, false}, /* 'a' - 1 */
    {"{", 0, 64, NULL, false}, /* 'z' + 1 */
    {"/", 0, 64, NULL, false}, /* '0' - 1 */
    {":", 0, 64, NULL, false}, /* '9' + 1 */
    /* An embedded NUL is never an identifier byte, even though strchr()
     * finds the terminator of `extra` when asked for '\0'. */
    {"a\0b", 3, 64, "-", false},
    {"a\0b", 3, 64, NULL, false},
    {"ab\0", 3, 64, "", false},
};

static void test_str_is_ident_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(ident_cases); i++) {
        const struct ident_case *c = &ident_cases[i];
        size_t len = c->len ? c->len : strlen(c->s);
        bool got = bg_str_is_ident(c->s, len, c->max, c->extra);
        if (got != c->want) {
            print_error("case %zu (len %zu, max %zu, extra \"%s\"): got %d, want %d\n", i, len,
                        c->max, c->extra ? c->extra : "(null)", got, c->want);
            fail();
        }
    }
}

static void test_str_is_ident_misc(void **state)
{
    (void)state;
    assert_false(bg_str_is_ident(NULL, 0, 64, NULL));
    assert_false(bg_str_is_ident(NULL, 3, 64, "-"));
    /* len bounds the check: the '!' after it is not looked at */
    assert_true(bg_str_is_ident("abc!", 3, 64, NULL));
    assert_false(bg_str_is_ident("abc!", 4, 64, NULL));
}

/* ---- bg_parse_range ---------------------------------------------------- */

struct range_case {
    const char *s;
    uint64_t size;
    bg_err want;
    uint64_t start, count;
};

static const struct range_case range_cases[] = {
    /* the three forms */
    {"bytes=0-99", 1000, BG_OK, 0, 100},
    {"bytes=990-", 1000, BG_OK, 990, 10},
    {"bytes=-10", 1000, BG_OK, 990, 10},
    {"bytes=0-0", 1000, BG_OK, 0, 1},
    {"bytes=999-999", 1000, BG_OK, 999, 1},
    {"bytes=999-", 1000, BG_OK, 999, 1},
    {"bytes=0-", 1000, BG_OK, 0, 1000},
    {"bytes=5-5", 6, BG_OK, 5, 1},
    /* a suffix longer than the file is the whole file; an end past it is clamped */
    {"bytes=-2000", 1000, BG_OK, 0, 1000},
    {"bytes=-1000", 1000, BG_OK, 0, 1000},
    {"bytes=0-5000", 1000, BG_OK, 0, 1000},
    {"bytes=0-999", 1000, BG_OK, 0, 1000},
    {"bytes=0-18446744073709551615", 1000, BG_OK, 0, 1000},
    {"bytes=-18446744073709551615", 1000, BG_OK, 0, 1000},
    {"bytes=10-1000", 1000, BG_OK, 10, 990},
    /* unsatisfiable (416) */
    {"bytes=1000-", 1000, BG_EINVAL, 0, 0},
    {"bytes=1000-1000", 1000, BG_EINVAL, 0, 0},
    {"bytes=5000-6000", 1000, BG_EINVAL, 0, 0},
    {"bytes=5-2", 1000, BG_EINVAL, 0, 0},
    {"bytes=-0", 1000, BG_EINVAL, 0, 0},
    {"bytes=0-", 0, BG_EINVAL, 0, 0},
    {"bytes=0-0", 0, BG_EINVAL, 0, 0},
    {"bytes=-1", 0, BG_EINVAL, 0, 0},
    /* not one byte range: the whole resource (200) */
    {"bytes=0-1,3-4", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=0-1, 3-4", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=0-1,", 1000, BG_ENOTFOUND, 0, 0},
    {"items=0-1", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=a-b", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=-", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=5", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=1-2-3", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=--5", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=+1-2", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=0x10-", 1000, BG_ENOTFOUND, 0, 0},
    {"bytes=18446744073709551616-", 1000, BG_ENOTFOUND, 0, 0},
    {"", 1000, BG_ENOTFOUND, 0, 0},
    {"0-99", 1000, BG_ENOTFOUND, 0, 0},
};

static void test_parse_range_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(range_cases); i++) {
        const struct range_case *c = &range_cases[i];
        uint64_t start = U64_SENTINEL, count = U64_SENTINEL;
        bg_err got = bg_parse_range(c->s, strlen(c->s), c->size, &start, &count);
        bool ok = got == c->want;
        if (ok && c->want == BG_OK)
            ok = start == c->start && count == c->count;
        else if (ok) /* errors leave the out-parameters alone */
            ok = start == U64_SENTINEL && count == U64_SENTINEL;
        if (!ok) {
            print_error("case %zu (\"%s\", size %llu): got %d start %llu count %llu, want %d start "
                        "%llu count %llu\n",
                        i, c->s, (unsigned long long)c->size, (int)got, (unsigned long long)start,
                        (unsigned long long)count, (int)c->want, (unsigned long long)c->start,
                        (unsigned long long)c->count);
            fail();
        }
    }
}

static void test_parse_range_uses_len(void **state)
{
    (void)state;
    uint64_t start = U64_SENTINEL, count = U64_SENTINEL;
    /* len bounds the header: what follows it is not looked at */
    assert_int_equal(bg_parse_range("bytes=0-99,5-6", 10, 1000, &start, &count), BG_OK);
    assert_int_equal(start, 0);
    assert_int_equal(count, 100);
    assert_int_equal(bg_parse_range("bytes=-10xyz", 9, 1000, &start, &count), BG_OK);
    assert_int_equal(start, 990);
    assert_int_equal(count, 10);
    /* and a shorter len can leave too little to be a range */
    start = count = U64_SENTINEL;
    assert_int_equal(bg_parse_range("bytes=0-99", 6, 1000, &start, &count), BG_ENOTFOUND);
    assert_int_equal(start, U64_SENTINEL);
    assert_int_equal(count, U64_SENTINEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64_table),
        cmocka_unit_test(test_parse_u64_uses_len),
        cmocka_unit_test(test_parse_i64_table),
        cmocka_unit_test(test_parse_i64_null),
        cmocka_unit_test(test_parse_bool_table),
        cmocka_unit_test(test_parse_bool_uses_len),
        cmocka_unit_test(test_parse_duration_table),
        cmocka_unit_test(test_parse_duration_uses_len),
        cmocka_unit_test(test_parse_hostport_table),
        cmocka_unit_test(test_parse_hostport_long_names),
        cmocka_unit_test(test_str_is_ident_table),
        cmocka_unit_test(test_str_is_ident_misc),
        cmocka_unit_test(test_parse_range_table),
        cmocka_unit_test(test_parse_range_uses_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
