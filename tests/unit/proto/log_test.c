/*
 * Unit tests for proto/log.h: level parsing, timestamp formatting and the
 * JSON lines written to stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/log.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- bg_log_level_parse ------------------------------------------------ */

static void test_level_parse(void **state)
{
    (void)state;
    struct {
        const char *s;
        int want;
    } cases[] = {
        {"debug", BG_LOG_DEBUG}, {"info", BG_LOG_INFO},   {"warn", BG_LOG_WARN},
        {"error", BG_LOG_ERROR}, {"", -1},                {"DEBUG", -1},
        {"Info", -1},            {"warning", -1},         {"err", -1},
        {"fatal", -1},           {"trace", -1},           {"info ", -1},
        {" info", -1},           {"inf", -1},             {"0", -1},
        {"1", -1},               {"debugx", -1},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int got = bg_log_level_parse(cases[i].s);
        if (got != cases[i].want) {
            print_error("\"%s\": got %d, want %d\n", cases[i].s, got, cases[i].want);
            fail();
        }
    }
}

static void test_level_set_get(void **state)
{
    (void)state;
    bg_log_level saved = bg_log_get_level();
    const bg_log_level levels[] = {BG_LOG_ERROR, BG_LOG_DEBUG, BG_LOG_WARN, BG_LOG_INFO};
    for (size_t i = 0; i < N_ELEMS(levels); i++) {
        bg_log_set_level(levels[i]);
        assert_int_equal(bg_log_get_level(), levels[i]);
    }
    bg_log_set_level(saved);
}

/* ---- timestamps -------------------------------------------------------- */

static void test_format_rfc3339(void **state)
{
    (void)state;
    struct {
        long long s;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:01Z"},
        {59, "1970-01-01T00:00:59Z"},
        {86399, "1970-01-01T23:59:59Z"},
        {86400, "1970-01-02T00:00:00Z"},
        {951782400, "2000-02-29T00:00:00Z"},   /* leap day */
        {1700000000, "2023-11-14T22:13:20Z"},
        {2147483647, "2038-01-19T03:14:07Z"},  /* INT32_MAX */
        {2147483648LL, "2038-01-19T03:14:08Z"},
        {253402300799LL, "9999-12-31T23:59:59Z"},
        {-1, "1969-12-31T23:59:59Z"},
        {-86400, "1969-12-31T00:00:00Z"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char buf[32];
        memset(buf, '#', sizeof(buf));
        bg_format_rfc3339(cases[i].s, buf);
        assert_non_null(memchr(buf, '\0', sizeof(buf)));
        if (strcmp(buf, cases[i].want) != 0) {
            print_error("%lld: got \"%s\", want \"%s\"\n", cases[i].s, buf, cases[i].want);
            fail();
        }
    }
}

static void test_format_time_ms(void **state)
{
    (void)state;
    struct {
        long long ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {5, "1970-01-01T00:00:00.005Z"},
        {42, "1970-01-01T00:00:00.042Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {1000, "1970-01-01T00:00:01.000Z"},
        {1001, "1970-01-01T00:00:01.001Z"},
        {1700000000123LL, "2023-11-14T22:13:20.123Z"},
        {951782399999LL, "2000-02-28T23:59:59.999Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        /* before the epoch the milliseconds still count up within the
         * second: -1 ms is 23:59:59.999 of the previous day */
        {-1, "1969-12-31T23:59:59.999Z"},
        {-999, "1969-12-31T23:59:59.001Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {-1001, "1969-12-31T23:59:58.999Z"},
        {-1500, "1969-12-31T23:59:58.500Z"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char buf[32];
        memset(buf, '#', sizeof(buf));
        bg_log_format_time(cases[i].ms, buf);
        assert_non_null(memchr(buf, '\0', sizeof(buf)));
        if (strcmp(buf, cases[i].want) != 0) {
            print_error("%lld ms: got \"%s\", want \"%s\"\n", cases[i].ms, buf, cases[i].want);
            fail();
        }
    }
}

/* A time gmtime cannot represent gives an empty string, not whatever
 * happens to be in an uninitialised struct tm. */
static void test_format_out_of_range(void **state)
{
    (void)state;
    const long long bad_s[] = {LLONG_MAX, LLONG_MIN, 100000000000000000LL};
    for (size_t i = 0; i < N_ELEMS(bad_s); i++) {
        char buf[32];
        memset(buf, '#', sizeof(buf));
        bg_format_rfc3339(bad_s[i], buf);
        if (buf[0] != '\0') {
            print_error("rfc3339(%lld): got \"%.31s\", want \"\"\n", bad_s[i], buf);
            fail();
        }
    }
    /* and for the millisecond form: every output stays NUL-terminated */
    const long long bad_ms[] = {LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < N_ELEMS(bad_ms); i++) {
        char buf[32];
        memset(buf, '#', sizeof(buf));
        bg_log_format_time(bad_ms[i], buf);
        assert_non_null(memchr(buf, '\0', sizeof(buf)));
    }
}

static void test_now_ms(void **state)
{
    (void)state;
    long long a = bg_now_ms();
    /* after 2020-01-01 and before 2100-01-01 */
    assert_true(a > 1577836800000LL);
    assert_true(a < 4102444800000LL);
    long long b = bg_now_ms();
    assert_true(b >= a - 1000); /* wall clock, but not wildly off between two calls */
}

/* ---- log lines --------------------------------------------------------- */

/* Runs fn with stderr redirected to a temporary file and returns what was
 * written (malloc'ed). No cmocka assertion may run while stderr is away. */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/bg_log_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(fd);
    return text;
}

/* Parses exactly one JSON line; fails on anything else. */
static json_t *one_line(const char *text)
{
    size_t n = strlen(text);
    assert_true(n > 0);
    assert_int_equal(text[n - 1], '\n');
    assert_null(memchr(text, '\n', n - 1));
    json_error_t jerr;
    json_t *v = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        print_error("not JSON: %s (%s)\n", text, jerr.text);
        fail();
    }
    assert_true(json_is_object(v));
    return v;
}

static const char *field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void emit_info_with_request(void)
{
    bg_log_set_level(BG_LOG_INFO);
    bg_log(BG_LOG_INFO, "req-42", "hello %s %d", "world", 7);
}

static void test_log_line(void **state)
{
    (void)state;
    char *text = capture_stderr(emit_info_with_request);
    json_t *o = one_line(text);
    assert_string_equal(field(o, "level"), "info");
    assert_string_equal(field(o, "msg"), "hello world 7");
    assert_string_equal(field(o, "request_id"), "req-42");
    const char *ts = field(o, "ts");
    assert_non_null(ts);
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    /* ts, level and msg come first, in that order */
    assert_non_null(strstr(text, "{\"ts\":"));
    assert_true(strstr(text, "\"level\"") < strstr(text, "\"msg\""));
    json_decref(o);
    free(text);
}

static void emit_filtered(void)
{
    bg_log_set_level(BG_LOG_WARN);
    bg_log(BG_LOG_DEBUG, NULL, "dropped debug");
    bg_log(BG_LOG_INFO, NULL, "dropped info");
    bg_log_fields(BG_LOG_INFO, "dropped fields", json_pack("{s:i}", "n", 1));
    bg_log(BG_LOG_ERROR, "", "kept");
    bg_log_set_level(BG_LOG_INFO);
}

static void test_log_level_filter(void **state)
{
    (void)state;
    char *text = capture_stderr(emit_filtered);
    assert_null(strstr(text, "dropped"));
    json_t *o = one_line(text);
    assert_string_equal(field(o, "level"), "error");
    assert_string_equal(field(o, "msg"), "kept");
    /* an empty request id is left out */
    assert_null(json_object_get(o, "request_id"));
    json_decref(o);
    free(text);
}

static void emit_fields(void)
{
    bg_log_set_level(BG_LOG_DEBUG);
    /* "msg" and "level" here must not override the line's own */
    bg_log_fields(BG_LOG_WARN, "disk low",
                  json_pack("{s:i, s:s, s:s, s:b}", "free_mb", 12, "msg", "forged", "level",
                            "debug", "degraded", 1));
    bg_log_set_level(BG_LOG_INFO);
}

static void test_log_fields(void **state)
{
    (void)state;
    char *text = capture_stderr(emit_fields);
    json_t *o = one_line(text);
    assert_string_equal(field(o, "level"), "warn");
    assert_string_equal(field(o, "msg"), "disk low");
    assert_int_equal(json_integer_value(json_object_get(o, "free_mb")), 12);
    assert_true(json_is_true(json_object_get(o, "degraded")));
    json_decref(o);
    free(text);
}

static void emit_awkward(void)
{
    bg_log_set_level(BG_LOG_INFO);
    bg_log(BG_LOG_INFO, NULL, "quote \" backslash \\ newline \n tab \t end");
    bg_log(BG_LOG_INFO, NULL, "bad utf-8 \xff\xfe");
    bg_log_fields(BG_LOG_INFO, "no fields", NULL);
}

static void test_log_escaping(void **state)
{
    (void)state;
    char *text = capture_stderr(emit_awkward);
    /* three lines, each a JSON object */
    char *second = strchr(text, '\n');
    assert_non_null(second);
    second++;
    char *third = strchr(second, '\n');
    assert_non_null(third);
    third++;
    assert_non_null(strchr(third, '\n'));
    assert_int_equal(strchr(third, '\n')[1], '\0');

    char *copy = strndup(text, (size_t)(second - text));
    json_t *o = one_line(copy);
    assert_string_equal(field(o, "msg"), "quote \" backslash \\ newline \n tab \t end");
    json_decref(o);
    free(copy);

    copy = strndup(second, (size_t)(third - second));
    o = one_line(copy);
    /* the line is still valid JSON (UTF-8), and still says something */
    assert_non_null(field(o, "msg"));
    assert_null(strstr(field(o, "msg"), "\xff"));
    json_decref(o);
    free(copy);

    o = one_line(third);
    assert_string_equal(field(o, "msg"), "no fields");
    json_decref(o);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_level_set_get),
        cmocka_unit_test(test_format_rfc3339),
        cmocka_unit_test(test_format_time_ms),
        cmocka_unit_test(test_format_out_of_range),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_log_level_filter),
        cmocka_unit_test(test_log_fields),
        cmocka_unit_test(test_log_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
