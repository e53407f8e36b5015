/*
 * Unit tests for gateway/router.h: table-driven matching of method + path
 * against a small route table — exact paths, {param} captures, trailing
 * slashes, empty segments, 404 against 405 with the Allow list — and the
 * parameter lookup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/router.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const bg_route routes[] = {
    /* 0 */ {"GET", "/healthz", NULL, BG_AUTH_PUBLIC, 0, 0, NULL},
    /* 1 */ {"GET", "/v1/tokens", NULL, BG_AUTH_ADMIN, 0, 0, NULL},
    /* 2 */ {"POST", "/v1/tokens", NULL, BG_AUTH_ADMIN, 4096, BG_ROUTE_JSON, NULL},
    /* 3 */ {"DELETE", "/v1/tokens/{id}", NULL, BG_AUTH_ADMIN, 0, 0, NULL},
    /* 4 */ {"GET", "/v1/branches/{name}", NULL, BG_AUTH_ADMIN, 0, 0, NULL},
    /* 5 */ {"PUT", "/v1/branches/{name}", NULL, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    /* 6 */ {"GET", "/v1/branches/special", NULL, BG_AUTH_ADMIN, 0, 0, NULL},
    /* 7 */ {"GET", "/v1/orgs/{org}/branches/{name}", NULL, BG_AUTH_ADMIN, 0, 0, NULL},
    /* 8 */ {"POST", "/v1/orgs/{org}/branches/{name}/ping", NULL, BG_AUTH_PEER, 0, 0, NULL},
    /* 9 */ {"GET", "/", NULL, BG_AUTH_PUBLIC, 0, 0, NULL},
};

typedef struct param_want {
    const char *name, *value;
} param_want;

typedef struct match_case {
    const char *method;
    const char *path;
    size_t plen; /* 0 = strlen(path) */
    bg_route_result want;
    int index;                                  /* when found */
    const char *allow;                          /* when BG_ROUTE_NO_METHOD */
    param_want params[BG_ROUTE_MAX_PARAMS + 1]; /* NULL-terminated */
} match_case;

static const match_case cases[] = {
    /* exact paths */
    {"GET", "/healthz", 0, BG_ROUTE_FOUND, 0, NULL, {{NULL, NULL}}},
    {"GET", "/v1/tokens", 0, BG_ROUTE_FOUND, 1, NULL, {{NULL, NULL}}},
    {"POST", "/v1/tokens", 0, BG_ROUTE_FOUND, 2, NULL, {{NULL, NULL}}},
    {"GET", "/", 0, BG_ROUTE_FOUND, 9, NULL, {{NULL, NULL}}},
    /* the query string is cut off by the caller through plen */
    {"GET", "/v1/tokens?limit=5", 10, BG_ROUTE_FOUND, 1, NULL, {{NULL, NULL}}},
    /* near misses are 404 */
    {"GET", "/healthz/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/healthzz", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/health", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "healthz", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "//healthz", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/HEALTHZ", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/v1/tokens/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/v1", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/nope", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    /* wrong method on an existing path is 405 with the methods that exist */
    {"POST", "/healthz", 0, BG_ROUTE_NO_METHOD, -1, "GET", {{NULL, NULL}}},
    {"get", "/healthz", 0, BG_ROUTE_NO_METHOD, -1, "GET", {{NULL, NULL}}},
    {"DELETE", "/v1/tokens", 0, BG_ROUTE_NO_METHOD, -1, "GET, POST", {{NULL, NULL}}},
    {"GET", "/v1/tokens/abc", 0, BG_ROUTE_NO_METHOD, -1, "DELETE", {{NULL, NULL}}},
    {"PATCH", "/v1/branches/east", 0, BG_ROUTE_NO_METHOD, -1, "GET, PUT", {{NULL, NULL}}},
    /* two GET routes match: GET is listed once */
    {"POST", "/v1/branches/special", 0, BG_ROUTE_NO_METHOD, -1, "GET, PUT", {{NULL, NULL}}},
    {"GET", "/v1/orgs/o/branches/b/ping", 0, BG_ROUTE_NO_METHOD, -1, "POST", {{NULL, NULL}}},
    /* captures */
    {"DELETE", "/v1/tokens/abc", 0, BG_ROUTE_FOUND, 3, NULL, {{"id", "abc"}, {NULL, NULL}}},
    {"DELETE", "/v1/tokens/3f0c-9a", 0, BG_ROUTE_FOUND, 3, NULL, {{"id", "3f0c-9a"}, {NULL, NULL}}},
    {"DELETE", "/v1/tokens/a%2Fb", 0, BG_ROUTE_FOUND, 3, NULL, {{"id", "a%2Fb"}, {NULL, NULL}}},
    {"DELETE", "/v1/tokens/x?force=1", 12, BG_ROUTE_FOUND, 3, NULL, {{"id", "x"}, {NULL, NULL}}},
    {"GET", "/v1/branches/east", 0, BG_ROUTE_FOUND, 4, NULL, {{"name", "east"}, {NULL, NULL}}},
    {"PUT", "/v1/branches/east", 0, BG_ROUTE_FOUND, 5, NULL, {{"name", "east"}, {NULL, NULL}}},
    /* the first route in table order wins */
    {"GET",
     "/v1/branches/special",
     0,
     BG_ROUTE_FOUND,
     4,
     NULL,
     {{"name", "special"}, {NULL, NULL}}},
    {"GET",
     "/v1/orgs/o-1/branches/b_2",
     0,
     BG_ROUTE_FOUND,
     7,
     NULL,
     {{"org", "o-1"}, {"name", "b_2"}, {NULL, NULL}}},
    {"POST",
     "/v1/orgs/acme/branches/west/ping",
     0,
     BG_ROUTE_FOUND,
     8,
     NULL,
     {{"org", "acme"}, {"name", "west"}, {NULL, NULL}}},
    /* a capture never spans or skips a segment, and is never empty */
    {"DELETE", "/v1/tokens/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"DELETE", "/v1/tokens//", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"DELETE", "/v1/tokens/a/b", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"DELETE", "/v1/tokens/abc/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/v1/orgs//branches/b", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/v1/orgs/o/branches/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"GET", "/v1/orgs/o/branches", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
    {"POST", "/v1/orgs/o/branches/b/ping/", 0, BG_ROUTE_NO_PATH, -1, NULL, {{NULL, NULL}}},
};

static const char *result_name(bg_route_result r)
{
    switch (r) {
    case BG_ROUTE_FOUND: return "found";
    case BG_ROUTE_NO_PATH: return "no path (404)";
    case BG_ROUTE_NO_METHOD: return "no method (405)";
    }
    return "?";
}

static void check_params(const match_case *c, const bg_route_match *m)
{
    int want = 0;
    while (c->params[want].name != NULL)
        want++;
    if (m->nparams != want) {
        print_error("%s %s: %d params, want %d\n", c->method, c->path, m->nparams, want);
        fail();
    }
    for (int i = 0; i < want; i++) {
        const bg_route_param *p = &m->params[i];
        /* in pattern order, names pointing into the pattern */
        if (p->name_len != strlen(c->params[i].name) ||
            memcmp(p->name, c->params[i].name, p->name_len) != 0 ||
            p->value_len != strlen(c->params[i].value) ||
            memcmp(p->value, c->params[i].value, p->value_len) != 0) {
            print_error("%s %s: param %d is %.*s=%.*s, want %s=%s\n", c->method, c->path, i,
                        (int)p->name_len, p->name, (int)p->value_len, p->value, c->params[i].name,
                        c->params[i].value);
            fail();
        }
        /* the value points into the request path itself */
        assert_true(p->value >= c->path && p->value + p->value_len <= c->path + strlen(c->path));
        /* and bg_route_param_get finds it by name */
        size_t len = 99;
        const char *v = bg_route_param_get(m, c->params[i].name, &len);
        assert_ptr_equal(v, p->value);
        assert_int_equal(len, p->value_len);
    }
}

static void test_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const match_case *c = &cases[i];
        size_t plen = c->plen ? c->plen : strlen(c->path);
        bg_route_match m;
        memset(&m, 0, sizeof(m));
        char allow[64];
        memset(allow, 'Z', sizeof(allow));
        bg_route_result r = bg_router_match(routes, N_ELEMS(routes), c->method, strlen(c->method),
                                            c->path, plen, &m, allow, sizeof(allow));
        if (r != c->want) {
            print_error("%s %.*s: %s, want %s\n", c->method, (int)plen, c->path, result_name(r),
                        result_name(c->want));
            fail();
        }
        if (r == BG_ROUTE_FOUND) {
            if (m.index != c->index || m.route != &routes[c->index]) {
                print_error("%s %s: route %d, want %d\n", c->method, c->path, m.index, c->index);
                fail();
            }
            check_params(c, &m);
        } else if (r == BG_ROUTE_NO_METHOD) {
            if (strcmp(allow, c->allow) != 0) {
                print_error("%s %s: Allow \"%s\", want \"%s\"\n", c->method, c->path, allow,
                            c->allow);
                fail();
            }
        } else {
            assert_string_equal(allow, ""); /* emptied even when unused */
        }
    }
}

/* The method is compared by length: a longer or shorter token is not it. */
static void test_method_length(void **state)
{
    (void)state;
    bg_route_match m;
    char allow[64];
    const char buf[] = "GETX";
    assert_int_equal(
        bg_router_match(routes, N_ELEMS(routes), buf, 3, "/healthz", 8, &m, allow, sizeof(allow)),
        BG_ROUTE_FOUND);
    assert_int_equal(m.index, 0);
    assert_int_equal(
        bg_router_match(routes, N_ELEMS(routes), buf, 4, "/healthz", 8, &m, allow, sizeof(allow)),
        BG_ROUTE_NO_METHOD);
    assert_int_equal(
        bg_router_match(routes, N_ELEMS(routes), buf, 2, "/healthz", 8, &m, allow, sizeof(allow)),
        BG_ROUTE_NO_METHOD);
    assert_string_equal(allow, "GET");
}

/* A small Allow buffer drops what does not fit instead of overflowing. */
static void test_allow_capacity(void **state)
{
    (void)state;
    bg_route_match m;
    struct {
        size_t cap;
        const char *want;
    } caps[] = {{64, "GET, PUT"}, {9, "GET, PUT"}, {8, "GET"}, {4, "GET"}, {3, ""}, {1, ""}};
    for (size_t i = 0; i < N_ELEMS(caps); i++) {
        char allow[80];
        memset(allow, 'Z', sizeof(allow));
        const char *path = "/v1/branches/east";
        assert_int_equal(bg_router_match(routes, N_ELEMS(routes), "POST", 4, path, strlen(path), &m,
                                         allow, caps[i].cap),
                         BG_ROUTE_NO_METHOD);
        if (strcmp(allow, caps[i].want) != 0) {
            print_error("cap %zu: \"%s\", want \"%s\"\n", caps[i].cap, allow, caps[i].want);
            fail();
        }
        assert_int_equal(allow[caps[i].cap], 'Z'); /* nothing past cap */
    }
    /* cap 0: the buffer is not touched at all */
    char allow[8];
    memset(allow, 'Z', sizeof(allow));
    assert_int_equal(
        bg_router_match(routes, N_ELEMS(routes), "POST", 4, "/healthz", 8, &m, allow, 0),
        BG_ROUTE_NO_METHOD);
    assert_int_equal(allow[0], 'Z');
}

static void test_empty_table(void **state)
{
    (void)state;
    bg_route_match m;
    char allow[16] = "junk";
    assert_int_equal(bg_router_match(routes, 0, "GET", 3, "/healthz", 8, &m, allow, sizeof(allow)),
                     BG_ROUTE_NO_PATH);
    assert_string_equal(allow, "");
}

static void test_param_get(void **state)
{
    (void)state;
    bg_route_match m;
    char allow[64];
    const char *path = "/v1/orgs/acme/branches/west/ping";
    assert_int_equal(bg_router_match(routes, N_ELEMS(routes), "POST", 4, path, strlen(path), &m,
                                     allow, sizeof(allow)),
                     BG_ROUTE_FOUND);
    size_t len = 99;
    const char *v = bg_route_param_get(&m, "org", &len);
    assert_non_null(v);
    assert_int_equal(len, 4);
    assert_memory_equal(v, "acme", 4);
    v = bg_route_param_get(&m, "name", &len);
    assert_non_null(v);
    assert_int_equal(len, 4);
    assert_memory_equal(v, "west", 4);
    /* names must match whole */
    const char *absent[] = {"nam", "names", "Name", "", "id", "org}"};
    for (size_t i = 0; i < N_ELEMS(absent); i++) {
        len = 99;
        assert_null(bg_route_param_get(&m, absent[i], &len));
        assert_int_equal(len, 0);
    }
    /* a route without parameters has none */
    assert_int_equal(
        bg_router_match(routes, N_ELEMS(routes), "GET", 3, "/healthz", 8, &m, allow, sizeof(allow)),
        BG_ROUTE_FOUND);
    len = 99;
    assert_null(bg_route_param_get(&m, "name", &len));
    assert_int_equal(len, 0);
}

static void test_path_match_direct(void **state)
{
    (void)state;
    bg_route_match m;
    struct {
        const char *pattern, *path;
        int want, nparams;
    } pm[] = {
        {"/a/{x}", "/a/1", 1, 1},
        {"/{a}/{b}/{c}/{d}", "/1/2/3/4", 1, BG_ROUTE_MAX_PARAMS},
        {"/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5", 0, 0}, /* more captures than fit */
        {"/a/{x", "/a/1", 0, 0},                      /* unclosed brace */
        {"/a/{x}", "/a/", 0, 0},
        {"", "", 1, 0},
        {"", "/", 0, 0},
        {"/", "", 0, 0},
        {"/{x}", "/", 0, 0},
        {"/{x}", "/abc", 1, 1},
    };
    for (size_t i = 0; i < N_ELEMS(pm); i++) {
        memset(&m, 0, sizeof(m));
        int got = bg_route_path_match(pm[i].pattern, pm[i].path, strlen(pm[i].path), &m);
        if (got != pm[i].want || (got && m.nparams != pm[i].nparams)) {
            print_error("'%s' vs '%s': %d (%d params), want %d (%d)\n", pm[i].pattern, pm[i].path,
                        got, m.nparams, pm[i].want, pm[i].nparams);
            fail();
        }
        /* the answer does not depend on asking for the captures */
        assert_int_equal(bg_route_path_match(pm[i].pattern, pm[i].path, strlen(pm[i].path), NULL),
                         pm[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),    cmocka_unit_test(test_method_length),
        cmocka_unit_test(test_allow_capacity), cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_param_get),      cmocka_unit_test(test_path_match_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
