/*
 * Unit tests for proto/json.h: bounded parsing of request bodies and the
 * typed getters whose messages end up in 400 replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Stands in for "untouched" in *out checks. */
static json_t sentinel_storage;
#define JSON_SENTINEL (&sentinel_storage)

static bg_err parse_str(const char *text, json_t **out, bg_json_err *e)
{
    return bg_json_parse_object(text, strlen(text), out, e);
}

/* ---- bg_json_parse_object ---------------------------------------------- */

struct parse_case {
    const char *name;
    const char *text;
    size_t len; /* 0 = strlen(text) */
    bg_err want;
};

static const struct parse_case parse_cases[] = {
    {"object", "{\"a\":1,\"b\":\"x\",\"c\":[1,2,{}],\"d\":{\"e\":null}}", 0, BG_OK},
    {"empty object", "{}", 0, BG_OK},
    {"surrounding whitespace", " \n\t{\"a\" : true}\r\n ", 0, BG_OK},
    {"valid utf-8", "{\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", 0, BG_OK},
    {"escaped non-ascii", "{\"k\":\"\\u00e9\\ud83d\\ude00\"}", 0, BG_OK},
    /* top level must be an object */
    {"array", "[1,2,3]", 0, BG_EINVAL},
    {"empty array", "[]", 0, BG_EINVAL},
    {"array of object", "[{}]", 0, BG_EINVAL},
    {"string", "\"abc\"", 0, BG_EINVAL},
    {"number", "42", 0, BG_EINVAL},
    {"true", "true", 0, BG_EINVAL},
    {"null", "null", 0, BG_EINVAL},
    /* empty or malformed */
    {"whitespace only", "   ", 0, BG_EINVAL},
    {"lone brace", "{", 0, BG_EINVAL},
    {"unterminated string", "{\"a\":\"x}", 0, BG_EINVAL},
    {"trailing comma", "{\"a\":1,}", 0, BG_EINVAL},
    {"single quotes", "{'a':1}", 0, BG_EINVAL},
    {"bare key", "{a:1}", 0, BG_EINVAL},
    {"comment", "{/*x*/}", 0, BG_EINVAL},
    {"NaN", "{\"a\":NaN}", 0, BG_EINVAL},
    {"bad escape", "{\"a\":\"\\x41\"}", 0, BG_EINVAL},
    {"raw control char", "{\"a\":\"x\ny\"}", 0, BG_EINVAL},
    {"integer out of range", "{\"a\":9223372036854775808}", 0, BG_EINVAL},
    /* trailing data */
    {"trailing garbage", "{\"a\":1} x", 0, BG_EINVAL},
    {"second object", "{\"a\":1}{}", 0, BG_EINVAL},
    {"trailing brace", "{\"a\":1}}", 0, BG_EINVAL},
    {"trailing NUL", "{\"a\":1}\0", 8, BG_EINVAL},
    /* duplicate keys, at any depth */
    {"duplicate key", "{\"a\":1,\"a\":1}", 0, BG_EINVAL},
    {"duplicate key, different values", "{\"a\":1,\"b\":2,\"a\":\"x\"}", 0, BG_EINVAL},
    {"nested duplicate key", "{\"o\":{\"k\":1,\"k\":2}}", 0, BG_EINVAL},
    {"duplicate in array member", "{\"l\":[{\"k\":1,\"k\":2}]}", 0, BG_EINVAL},
    {"same key in sibling objects", "{\"x\":{\"k\":1},\"y\":{\"k\":2}}", 0, BG_OK},
    /* invalid UTF-8, raw bytes in strings and keys */
    {"lone 0xff", "{\"a\":\"\xff\"}", 0, BG_EINVAL},
    {"lone continuation byte", "{\"a\":\"\x80\"}", 0, BG_EINVAL},
    {"truncated sequence", "{\"a\":\"\xc3\"}", 0, BG_EINVAL},
    {"overlong slash", "{\"a\":\"\xc0\xaf\"}", 0, BG_EINVAL},
    {"utf-8 encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", 0, BG_EINVAL},
    {"beyond U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}", 0, BG_EINVAL},
    {"invalid utf-8 in key", "{\"\xfe\":1}", 0, BG_EINVAL},
    {"lone escaped surrogate", "{\"a\":\"\\ud800\"}", 0, BG_EINVAL},
    /* NUL in a string cannot reach the getters: the parser refuses it */
    {"escaped NUL", "{\"a\":\"x\\u0000y\"}", 0, BG_EINVAL},
    {"escaped NUL in key", "{\"a\\u0000b\":1}", 0, BG_EINVAL},
};

static void test_parse_object_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        json_t *out = JSON_SENTINEL;
        bg_json_err e;
        memset(&e, 0, sizeof(e));
        bg_err rc = bg_json_parse_object(c->text, len, &out, &e);
        bool ok = rc == c->want;
        if (ok && rc == BG_OK)
            ok = out != JSON_SENTINEL && json_is_object(out);
        else if (ok)
            ok = out == JSON_SENTINEL && e.message[0] != '\0';
        if (!ok) {
            print_error("case %zu (%s): rc=%d, want %d; message \"%s\"\n", i, c->name, rc, c->want,
                        e.message);
            fail();
        }
        if (rc == BG_OK)
            json_decref(out);
    }
}

static void test_parse_object_content(void **state)
{
    (void)state;
    json_t *o = NULL;
    bg_json_err e;
    assert_int_equal(parse_str("{\"n\":7,\"s\":\"hi\",\"l\":[true]}", &o, &e), BG_OK);
    assert_int_equal(json_object_size(o), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 7);
    assert_string_equal(json_string_value(json_object_get(o, "s")), "hi");
    assert_true(json_is_true(json_array_get(json_object_get(o, "l"), 0)));
    json_decref(o);
}

static void test_parse_object_empty_body(void **state)
{
    (void)state;
    json_t *out = JSON_SENTINEL;
    bg_json_err e;

    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_json_parse_object("", 0, &out, &e), BG_EINVAL);
    assert_true(e.message[0] != '\0');
    /* len is what counts, not the text behind the pointer */
    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_json_parse_object("{}", 0, &out, &e), BG_EINVAL);
    assert_true(e.message[0] != '\0');
    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_json_parse_object(NULL, 0, &out, &e), BG_EINVAL);
    assert_true(e.message[0] != '\0');
    assert_ptr_equal(out, JSON_SENTINEL);
}

static void test_parse_object_respects_len(void **state)
{
    (void)state;
    json_t *out = NULL;
    bg_json_err e;
    /* the bytes after len are not part of the body */
    const char text[] = "{\"a\":1}garbage";
    assert_int_equal(bg_json_parse_object(text, 7, &out, &e), BG_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "a")), 1);
    json_decref(out);
    /* a body cut short is malformed */
    out = JSON_SENTINEL;
    assert_int_equal(bg_json_parse_object(text, 6, &out, &e), BG_EINVAL);
    assert_ptr_equal(out, JSON_SENTINEL);
}

static void test_parse_object_null_err(void **state)
{
    (void)state;
    /* the error struct is optional */
    json_t *out = JSON_SENTINEL;
    assert_int_equal(parse_str("[1]", &out, NULL), BG_EINVAL);
    assert_int_equal(parse_str("{", &out, NULL), BG_EINVAL);
    assert_int_equal(bg_json_parse_object("", 0, &out, NULL), BG_EINVAL);
    assert_ptr_equal(out, JSON_SENTINEL);
    assert_int_equal(parse_str("{}", &out, NULL), BG_OK);
    assert_true(json_is_object(out));
    json_decref(out);
}

/* ---- nesting depth ----------------------------------------------------- */

/* n nested objects {"a":{"a":...{}...}}: depth n (json.h: {} is 1). */
static char *nested_objects(size_t n)
{
    size_t cap = n * 6 + 8, pos = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (size_t i = 1; i < n; i++)
        pos += (size_t)snprintf(s + pos, cap - pos, "{\"a\":");
    pos += (size_t)snprintf(s + pos, cap - pos, "{}");
    for (size_t i = 1; i < n; i++)
        s[pos++] = '}';
    s[pos] = '\0';
    return s;
}

/* {"a":[[...[1]...]]} with `arrays` arrays: depth arrays + 2. */
static char *nested_arrays_in_object(size_t arrays)
{
    size_t cap = arrays * 2 + 16, pos = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    pos += (size_t)snprintf(s, cap, "{\"a\":");
    for (size_t i = 0; i < arrays; i++)
        s[pos++] = '[';
    s[pos++] = '1';
    for (size_t i = 0; i < arrays; i++)
        s[pos++] = ']';
    s[pos++] = '}';
    s[pos] = '\0';
    return s;
}

/* Takes ownership of text. For a refusal, the message must say why when the
 * depth is one jansson itself accepts (it stops at 2048 levels on its own). */
static void expect_depth_verdict(char *text, size_t depth, bg_err want)
{
    json_t *out = JSON_SENTINEL;
    bg_json_err e;
    memset(&e, 0, sizeof(e));
    bg_err rc = parse_str(text, &out, &e);
    free(text);
    if (rc != want) {
        print_error("depth %zu: rc=%d, want %d (%s)\n", depth, rc, want, e.message);
        if (rc == BG_OK)
            json_decref(out);
        fail();
    }
    if (rc == BG_OK) {
        assert_int_equal(bg_json_depth(out), depth);
        json_decref(out);
    } else {
        assert_ptr_equal(out, JSON_SENTINEL);
        if (depth <= 1000)
            assert_non_null(strstr(e.message, "nested"));
        else
            assert_true(e.message[0] != '\0');
    }
}

static void test_depth_40_rejected(void **state)
{
    (void)state;
    expect_depth_verdict(nested_objects(40), 40, BG_EINVAL);
    expect_depth_verdict(nested_arrays_in_object(38), 40, BG_EINVAL);
}

static void test_depth_at_limit(void **state)
{
    (void)state;
    expect_depth_verdict(nested_objects(BG_JSON_MAX_DEPTH), BG_JSON_MAX_DEPTH, BG_OK);
    expect_depth_verdict(nested_objects(BG_JSON_MAX_DEPTH + 1), BG_JSON_MAX_DEPTH + 1, BG_EINVAL);
    expect_depth_verdict(nested_arrays_in_object(BG_JSON_MAX_DEPTH - 2), BG_JSON_MAX_DEPTH,
                         BG_OK);
    expect_depth_verdict(nested_arrays_in_object(BG_JSON_MAX_DEPTH - 1), BG_JSON_MAX_DEPTH + 1,
                         BG_EINVAL);
}

static void test_depth_very_deep(void **state)
{
    (void)state;
    /* far beyond the limit: refused, not a crash */
    expect_depth_verdict(nested_objects(5000), 5000, BG_EINVAL);
    expect_depth_verdict(nested_arrays_in_object(100000), 100002, BG_EINVAL);
}

static void test_depth_values(void **state)
{
    (void)state;
    struct {
        const char *text;
        size_t depth;
    } cases[] = {
        {"1", 1},       {"\"s\"", 1},     {"null", 1},        {"[]", 1},
        {"{}", 1},      {"[1]", 2},       {"[[1]]", 3},       {"{\"a\":1}", 2},
        {"[[],[[]]]", 3}, {"{\"a\":[1],\"b\":{\"c\":{\"d\":[]}}}", 4}, {"[1,[2,[3]],4]", 4},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_error_t jerr;
        json_t *v = json_loads(cases[i].text, JSON_DECODE_ANY, &jerr);
        assert_non_null(v);
        size_t d = bg_json_depth(v);
        json_decref(v);
        if (d != cases[i].depth) {
            print_error("%s: depth %zu, want %zu\n", cases[i].text, d, cases[i].depth);
            fail();
        }
    }
}

/* ---- typed getters ----------------------------------------------------- */

static json_t *fixture(void)
{
    json_t *o = NULL;
    bg_json_err e;
    const char *text = "{"
                       "\"display_name\":\"Alice\","
                       "\"empty_str\":\"\","
                       "\"utf8_str\":\"caf\xc3\xa9\","
                       "\"count\":42,"
                       "\"negative\":-7,"
                       "\"big\":9223372036854775807,"
                       "\"small\":-9223372036854775808,"
                       "\"ratio\":1.5,"
                       "\"whole_real\":2.0,"
                       "\"enabled\":true,"
                       "\"disabled\":false,"
                       "\"nothing\":null,"
                       "\"list\":[1],"
                       "\"obj\":{},"
                       "\"numeric_str\":\"42\","
                       "\"bool_str\":\"true\""
                       "}";
    assert_int_equal(parse_str(text, &o, &e), BG_OK);
    return o;
}

static int setup_fixture(void **state)
{
    *state = fixture();
    return 0;
}

static int teardown_fixture(void **state)
{
    json_decref(*state);
    return 0;
}

#define STR_SENTINEL ((const char *)"untouched")

static void test_get_str_ok(void **state)
{
    json_t *o = *state;
    bg_json_err e;
    const char *s = STR_SENTINEL;
    assert_int_equal(bg_json_get_str(o, "display_name", true, 1, 64, &s, &e), BG_OK);
    assert_string_equal(s, "Alice");
    /* borrowed from obj */
    assert_ptr_equal(s, json_string_value(json_object_get(o, "display_name")));
    s = STR_SENTINEL;
    assert_int_equal(bg_json_get_str(o, "display_name", false, 1, 64, &s, &e), BG_OK);
    assert_string_equal(s, "Alice");
    s = STR_SENTINEL;
    assert_int_equal(bg_json_get_str(o, "empty_str", true, 0, 10, &s, &e), BG_OK);
    assert_string_equal(s, "");
}

static void test_get_str_missing(void **state)
{
    json_t *o = *state;
    bg_json_err e;
    const char *s = STR_SENTINEL;

    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_json_get_str(o, "no_such_field", true, 0, 64, &s, &e), BG_EINVAL);
    assert_non_null(strstr(e.message, "no_such_field"));
    assert_ptr_equal(s, STR_SENTINEL);

    assert_int_equal(bg_json_get_str(o, "no_such_field", false, 0, 64, &s, &e), BG_ENOTFOUND);
    assert_ptr_equal(s, STR_SENTINEL);
}

static void test_get_str_wrong_type(void **state)
{
    json_t *o = *state;
    const char *keys[] = {"count", "ratio", "enabled", "list", "obj"};
    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        for (int required = 0; required <= 1; required++) {
            bg_json_err e;
            memset(&e, 0, sizeof(e));
            const char *s = STR_SENTINEL;
            bg_err rc = bg_json_get_str(o, keys[i], required, 0, 64, &s, &e);
            if (rc != BG_EINVAL || s != STR_SENTINEL || strstr(e.message, keys[i]) == NULL) {
                print_error("%s (required=%d): rc=%d message \"%s\"\n", keys[i], required, rc,
                            e.message);
                fail();
            }
        }
    }
}

static void test_get_str_length_bounds(void **state)
{
    json_t *o = *state; /* "display_name" is 5 bytes, "utf8_str" is 5 bytes (4 chars) */
    struct {
        const char *key;
        size_t min, max;
        bg_err want;
    } cases[] = {
        {"display_name", 5, 5, BG_OK},      {"display_name", 1, 5, BG_OK},
        {"display_name", 5, 64, BG_OK},     {"display_name", 6, 64, BG_EINVAL},
        {"display_name", 0, 4, BG_EINVAL},  {"display_name", 0, 0, BG_EINVAL},
        {"empty_str", 1, 64, BG_EINVAL},    {"empty_str", 0, 0, BG_OK},
        {"utf8_str", 5, 5, BG_OK},          {"utf8_str", 0, 4, BG_EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_json_err e;
        memset(&e, 0, sizeof(e));
        const char *s = STR_SENTINEL;
        bg_err rc = bg_json_get_str(o, cases[i].key, true, cases[i].min, cases[i].max, &s, &e);
        bool ok = rc == cases[i].want;
        if (ok && rc == BG_OK)
            ok = s != STR_SENTINEL;
        else if (ok)
            ok = s == STR_SENTINEL && strstr(e.message, cases[i].key) != NULL;
        if (!ok) {
            print_error("case %zu %s [%zu, %zu]: rc=%d, want %d; \"%s\"\n", i, cases[i].key,
                        cases[i].min, cases[i].max, rc, cases[i].want, e.message);
            fail();
        }
    }
}

static void test_get_str_embedded_nul(void **state)
{
    (void)state;
    /* The parser refuses \u0000, but objects built in code can hold one:
     * the getter must not hand out a C string that silently stops early. */
    json_t *o = json_object();
    json_object_set_new(o, "user_name", json_stringn("ad\0min", 6));
    json_object_set_new(o, "tail_nul", json_stringn("abc\0", 4));
    json_object_set_new(o, "only_nul", json_stringn("\0", 1));

    const char *keys[] = {"user_name", "tail_nul", "only_nul"};
    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        bg_json_err e;
        memset(&e, 0, sizeof(e));
        const char *s = STR_SENTINEL;
        bg_err rc = bg_json_get_str(o, keys[i], true, 0, 64, &s, &e);
        if (rc != BG_EINVAL || s != STR_SENTINEL || strstr(e.message, keys[i]) == NULL) {
            print_error("%s: rc=%d message \"%s\"\n", keys[i], rc, e.message);
            json_decref(o);
            fail();
        }
    }

    /* and the body parser turns the same thing away with a message */
    json_t *out = JSON_SENTINEL;
    bg_json_err e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(parse_str("{\"user_name\":\"ad\\u0000min\"}", &out, &e), BG_EINVAL);
    assert_ptr_equal(out, JSON_SENTINEL);
    assert_true(e.message[0] != '\0');
    json_decref(o);
}

static void test_get_int(void **state)
{
    json_t *o = *state;
    struct {
        const char *key;
        bool required;
        int64_t min, max;
        bg_err want;
        int64_t value;
    } cases[] = {
        {"count", true, 0, 100, BG_OK, 42},
        {"count", false, 0, 100, BG_OK, 42},
        {"count", true, 42, 42, BG_OK, 42},
        {"count", true, 43, 100, BG_EINVAL, 0},
        {"count", true, 0, 41, BG_EINVAL, 0},
        {"negative", true, -7, 0, BG_OK, -7},
        {"negative", true, 0, 100, BG_EINVAL, 0},
        {"negative", true, -6, 0, BG_EINVAL, 0},
        {"big", true, INT64_MIN, INT64_MAX, BG_OK, INT64_MAX},
        {"big", true, INT64_MIN, INT64_MAX - 1, BG_EINVAL, 0},
        {"small", true, INT64_MIN, INT64_MAX, BG_OK, INT64_MIN},
        {"small", true, INT64_MIN + 1, INT64_MAX, BG_EINVAL, 0},
        /* wrong types */
        {"ratio", true, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        {"whole_real", true, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        {"numeric_str", true, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        {"enabled", true, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        {"list", false, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        {"obj", false, INT64_MIN, INT64_MAX, BG_EINVAL, 0},
        /* missing */
        {"missing_count", true, 0, 100, BG_EINVAL, 0},
        {"missing_count", false, 0, 100, BG_ENOTFOUND, 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_json_err e;
        memset(&e, 0, sizeof(e));
        int64_t out = 0x5A5A;
        bg_err rc = bg_json_get_int(o, cases[i].key, cases[i].required, cases[i].min,
                                    cases[i].max, &out, &e);
        bool ok = rc == cases[i].want;
        if (ok && rc == BG_OK)
            ok = out == cases[i].value;
        else if (ok)
            ok = out == 0x5A5A;
        if (ok && rc == BG_EINVAL)
            ok = strstr(e.message, cases[i].key) != NULL;
        if (!ok) {
            print_error("case %zu %s: rc=%d out=%lld, want %d/%lld; \"%s\"\n", i, cases[i].key, rc,
                        (long long)out, cases[i].want, (long long)cases[i].value, e.message);
            fail();
        }
    }
}

static void test_get_bool(void **state)
{
    json_t *o = *state;
    struct {
        const char *key;
        bool required;
        bg_err want;
        bool value;
    } cases[] = {
        {"enabled", true, BG_OK, true},
        {"enabled", false, BG_OK, true},
        {"disabled", true, BG_OK, false},
        {"count", true, BG_EINVAL, false},
        {"bool_str", true, BG_EINVAL, false},
        {"display_name", false, BG_EINVAL, false},
        {"list", true, BG_EINVAL, false},
        {"missing_flag", true, BG_EINVAL, false},
        {"missing_flag", false, BG_ENOTFOUND, false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_json_err e;
        memset(&e, 0, sizeof(e));
        /* opposite of the expected value, so an unwritten success shows */
        bool out = !cases[i].value;
        bg_err rc = bg_json_get_bool(o, cases[i].key, cases[i].required, &out, &e);
        bool ok = rc == cases[i].want;
        if (ok && rc == BG_OK)
            ok = out == cases[i].value;
        else if (ok)
            ok = out == !cases[i].value;
        if (ok && rc == BG_EINVAL)
            ok = strstr(e.message, cases[i].key) != NULL;
        if (!ok) {
            print_error("case %zu %s: rc=%d, want %d; \"%s\"\n", i, cases[i].key, rc,
                        cases[i].want, e.message);
            fail();
        }
    }
}

static void test_getters_null_err(void **state)
{
    json_t *o = *state;
    const char *s = STR_SENTINEL;
    int64_t n = 0;
    bool b = false;
    assert_int_equal(bg_json_get_str(o, "count", true, 0, 10, &s, NULL), BG_EINVAL);
    assert_int_equal(bg_json_get_str(o, "absent", true, 0, 10, &s, NULL), BG_EINVAL);
    assert_int_equal(bg_json_get_int(o, "count", true, 0, 10, &n, NULL), BG_EINVAL);
    assert_int_equal(bg_json_get_bool(o, "count", true, &b, NULL), BG_EINVAL);
    assert_ptr_equal(s, STR_SENTINEL);
    assert_int_equal(n, 0);
    assert_false(b);
}

/* ---- bg_json_dump ------------------------------------------------------ */

static void test_dump(void **state)
{
    (void)state;
    json_t *o = NULL;
    bg_json_err e;
    assert_int_equal(parse_str("{ \"z\" : 1, \"a\" : [ true , null ], \"m\" : \"x\" }", &o, &e),
                     BG_OK);
    size_t len = 0;
    char *text = bg_json_dump(o, &len);
    assert_non_null(text);
    /* compact and in insertion order */
    assert_string_equal(text, "{\"z\":1,\"a\":[true,null],\"m\":\"x\"}");
    assert_int_equal(len, strlen(text));
    free(text);

    /* scalars too, and len may be NULL */
    json_t *n = json_integer(-3);
    text = bg_json_dump(n, NULL);
    assert_non_null(text);
    assert_string_equal(text, "-3");
    free(text);
    json_decref(n);
    json_decref(o);

    len = 99;
    assert_null(bg_json_dump(NULL, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_object_table),
        cmocka_unit_test(test_parse_object_content),
        cmocka_unit_test(test_parse_object_empty_body),
        cmocka_unit_test(test_parse_object_respects_len),
        cmocka_unit_test(test_parse_object_null_err),
        cmocka_unit_test(test_depth_40_rejected),
        cmocka_unit_test(test_depth_at_limit),
        cmocka_unit_test(test_depth_very_deep),
        cmocka_unit_test(test_depth_values),
        cmocka_unit_test_setup_teardown(test_get_str_ok, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_get_str_missing, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_get_str_wrong_type, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_get_str_length_bounds, setup_fixture,
                                        teardown_fixture),
        cmocka_unit_test(test_get_str_embedded_nul),
        cmocka_unit_test_setup_teardown(test_get_int, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_get_bool, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_getters_null_err, setup_fixture, teardown_fixture),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
