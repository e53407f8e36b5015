/*
 * Unit tests for gateway/metrics.h: request counters by route and status,
 * the duration histogram (cumulative buckets, +Inf equal to the count, the
 * sum), the "other" status and "unmatched" route, the gauges, and exact
 * counts under concurrent observation.
 *
 * The rendered text is read back line by line: a value is looked up by its
 * full series name (metric name plus labels), so a test fails when a line is
 * missing, duplicated or has another value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/metrics.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const names[] = {"GET /healthz", "POST /api/v1/tokens", "GET /metrics"};

static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                  "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                  "1",      "2.5",   "5",      "10",    "+Inf"};

static const bg_metrics_gauges gauges = {.version = "9.8.7",
                                         .branch = "east",
                                         .start_time_s = 1700000000.5,
                                         .worker_load = 3,
                                         .worker_threads = 4};

typedef struct rendered {
    char *text;
    size_t len;
} rendered;

static rendered render(const bg_metrics *m)
{
    rendered r;
    r.text = bg_metrics_render(m, &gauges, &r.len);
    assert_non_null(r.text);
    /* len is the text's length, and the text is whole lines */
    assert_int_equal(strlen(r.text), r.len);
    assert_true(r.len > 0);
    assert_int_equal(r.text[r.len - 1], '\n');
    return r;
}

/* Number of lines whose series part (before the last space) is `series`;
 * the value of the last one goes to *value. */
static int find_series(const rendered *r, const char *series, char *value, size_t cap)
{
    int found = 0;
    size_t slen = strlen(series);
    for (const char *line = r->text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl ? (size_t)(nl - line) : strlen(line);
        if (llen > slen && memcmp(line, series, slen) == 0 && line[slen] == ' ') {
            found++;
            snprintf(value, cap, "%.*s", (int)(llen - slen - 1), line + slen + 1);
        }
        line += llen + (nl ? 1 : 0);
    }
    return found;
}

/* The value of a series that must appear exactly once. */
static double value_of(const rendered *r, const char *series)
{
    char v[64] = "";
    int n = find_series(r, series, v, sizeof(v));
    if (n != 1) {
        print_error("series %s appears %d times, want once\n", series, n);
        fail();
    }
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end != '\0') {
        print_error("series %s has value '%s'\n", series, v);
        fail();
    }
    return d;
}

static void assert_absent(const rendered *r, const char *series)
{
    char v[64];
    if (find_series(r, series, v, sizeof(v)) != 0) {
        print_error("series %s should be absent, has value %s\n", series, v);
        fail();
    }
}

static double counter(const rendered *r, const char *route, const char *status)
{
    char s[256];
    snprintf(s, sizeof(s), "branchgate_http_requests_total{route=\"%s\",status=\"%s\"}", route,
             status);
    return value_of(r, s);
}

static void assert_no_counter(const rendered *r, const char *route, const char *status)
{
    char s[256];
    snprintf(s, sizeof(s), "branchgate_http_requests_total{route=\"%s\",status=\"%s\"}", route,
             status);
    assert_absent(r, s);
}

static double bucket(const rendered *r, const char *route, const char *le)
{
    char s[256];
    snprintf(s, sizeof(s),
             "branchgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"}", route, le);
    return value_of(r, s);
}

static double hist_value(const rendered *r, const char *suffix, const char *route)
{
    char s[256];
    snprintf(s, sizeof(s), "branchgate_http_request_duration_seconds_%s{route=\"%s\"}", suffix,
             route);
    return value_of(r, s);
}

/* ---- counters ----------------------------------------------------------- */

static void test_counter_lines(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    bg_metrics_observe(m, 0, 200, 1000);
    bg_metrics_observe(m, 0, 200, 1000);
    bg_metrics_observe(m, 0, 503, 1000);
    bg_metrics_observe(m, 1, 201, 3000);
    bg_metrics_observe(m, 1, 400, 3000);
    bg_metrics_observe(m, 1, 400, 3000);
    bg_metrics_observe(m, 1, 400, 3000);
    rendered r = render(m);
    assert_true(counter(&r, "GET /healthz", "200") == 2);
    assert_true(counter(&r, "GET /healthz", "503") == 1);
    assert_true(counter(&r, "POST /api/v1/tokens", "201") == 1);
    assert_true(counter(&r, "POST /api/v1/tokens", "400") == 3);
    /* only what was observed is rendered */
    assert_no_counter(&r, "GET /healthz", "201");
    assert_no_counter(&r, "GET /healthz", "other");
    assert_no_counter(&r, "POST /api/v1/tokens", "200");
    assert_no_counter(&r, "GET /metrics", "200");
    assert_no_counter(&r, "unmatched", "404");
    assert_non_null(strstr(r.text, "# TYPE branchgate_http_requests_total counter\n"));
    free(r.text);
    bg_metrics_destroy(m);
}

static void test_known_statuses_are_their_own(void **state)
{
    (void)state;
    /* Every status the gateway answers with gets its own series. */
    const int known[] = {200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405,
                         409, 410, 412, 413, 415, 422, 429, 500, 502, 503, 504};
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    for (size_t i = 0; i < N_ELEMS(known); i++)
        for (size_t k = 0; k <= i; k++)
            bg_metrics_observe(m, 2, known[i], 10);
    rendered r = render(m);
    for (size_t i = 0; i < N_ELEMS(known); i++) {
        char st[8];
        snprintf(st, sizeof(st), "%d", known[i]);
        assert_true(counter(&r, "GET /metrics", st) == (double)(i + 1));
    }
    assert_no_counter(&r, "GET /metrics", "other");
    free(r.text);
    bg_metrics_destroy(m);
}

static void test_unknown_status_is_other(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    const int odd[] = {299, 999, 0, -1, 100, 418, 501, INT_MAX, INT_MIN};
    for (size_t i = 0; i < N_ELEMS(odd); i++)
        bg_metrics_observe(m, 0, odd[i], 10);
    bg_metrics_observe(m, 0, 200, 10);
    rendered r = render(m);
    assert_true(counter(&r, "GET /healthz", "other") == N_ELEMS(odd));
    assert_true(counter(&r, "GET /healthz", "200") == 1);
    for (size_t i = 0; i < N_ELEMS(odd); i++) {
        char st[16];
        snprintf(st, sizeof(st), "%d", odd[i]);
        assert_no_counter(&r, "GET /healthz", st);
    }
    /* the histogram still counts every response */
    assert_true(hist_value(&r, "count", "GET /healthz") == N_ELEMS(odd) + 1);
    free(r.text);
    bg_metrics_destroy(m);
}

static void test_out_of_range_route_is_unmatched(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    const int bad[] = {-1, (int)N_ELEMS(names), (int)N_ELEMS(names) + 1, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        bg_metrics_observe(m, bad[i], 404, 100);
    bg_metrics_observe(m, -1, 299, 100);
    bg_metrics_observe(m, 2, 404, 100); /* the last real route stays itself */
    rendered r = render(m);
    assert_true(counter(&r, "unmatched", "404") == N_ELEMS(bad));
    assert_true(counter(&r, "unmatched", "other") == 1);
    assert_true(counter(&r, "GET /metrics", "404") == 1);
    assert_no_counter(&r, "GET /healthz", "404");
    assert_true(hist_value(&r, "count", "unmatched") == N_ELEMS(bad) + 1);
    free(r.text);
    bg_metrics_destroy(m);
}

/* With no routes at all, everything is unmatched. */
static void test_no_routes(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(NULL, 0);
    bg_metrics_observe(m, 0, 200, 5);
    rendered r = render(m);
    assert_true(counter(&r, "unmatched", "200") == 1);
    free(r.text);
    bg_metrics_destroy(m);
    bg_metrics_destroy(NULL);
}

/* ---- histogram ------------------------------------------------------------ */

static void test_histogram(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    /* durations in µs and the first bucket (index into les) each falls in */
    const struct {
        uint64_t us;
        size_t first;
    } obs[] = {
        {0, 0},
        {100, 0},
        {500, 0}, /* bounds are inclusive */
        {501, 1},
        {1000, 1},
        {2000, 2},
        {7000, 4},
        {100000, 7},
        {100001, 8},
        {1000000, 10},
        {3000000, 12},
        {10000000, 13},
        {10000001, 14},
        {3600000000ULL, 14}, /* only +Inf */
    };
    uint64_t sum_us = 0;
    for (size_t i = 0; i < N_ELEMS(obs); i++) {
        bg_metrics_observe(m, 1, 200, obs[i].us);
        sum_us += obs[i].us;
    }
    rendered r = render(m);
    const char *route = "POST /api/v1/tokens";
    double prev = 0;
    for (size_t b = 0; b < N_ELEMS(les); b++) {
        double want = 0;
        for (size_t i = 0; i < N_ELEMS(obs); i++)
            want += obs[i].first <= b;
        double got = bucket(&r, route, les[b]);
        if (got != want) {
            print_error("le=%s: %g, want %g\n", les[b], got, want);
            fail();
        }
        assert_true(got >= prev); /* cumulative */
        prev = got;
    }
    assert_true(bucket(&r, route, "+Inf") == N_ELEMS(obs));
    assert_true(hist_value(&r, "count", route) == N_ELEMS(obs));
    double sum = hist_value(&r, "sum", route);
    assert_true(fabs(sum - (double)sum_us / 1e6) < 1e-6);
    /* routes without traffic have no histogram */
    char s[128];
    snprintf(s, sizeof(s), "branchgate_http_request_duration_seconds_count{route=\"%s\"}",
             "GET /healthz");
    assert_absent(&r, s);
    free(r.text);
    bg_metrics_destroy(m);
}

/* The bucket lines of a route come in ascending order of le, ending in
 * +Inf, followed by _sum and _count. */
static void test_histogram_line_order(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    bg_metrics_observe(m, 0, 200, 1234);
    rendered r = render(m);
    const char *p = r.text;
    for (size_t b = 0; b < N_ELEMS(les); b++) {
        char s[160];
        snprintf(
            s, sizeof(s),
            "branchgate_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"%s\"} ",
            les[b]);
        const char *at = strstr(p, s);
        if (at == NULL) {
            print_error("bucket le=%s missing or out of order\n", les[b]);
            fail();
        }
        p = at + strlen(s);
    }
    const char *sum =
        strstr(p, "branchgate_http_request_duration_seconds_sum{route=\"GET /healthz\"} ");
    assert_non_null(sum);
    assert_non_null(
        strstr(sum, "branchgate_http_request_duration_seconds_count{route=\"GET /healthz\"} 1\n"));
    assert_non_null(strstr(r.text, "# TYPE branchgate_http_request_duration_seconds histogram\n"));
    free(r.text);
    bg_metrics_destroy(m);
}

/* ---- gauges and the empty page -------------------------------------------- */

static void test_gauges_and_empty(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    rendered r = render(m);
    assert_true(value_of(&r, "branchgate_build_info{version=\"9.8.7\",branch=\"east\"}") == 1);
    assert_true(value_of(&r, "branchgate_start_time_seconds") == 1700000000.5);
    assert_true(value_of(&r, "branchgate_worker_threads") == 4);
    assert_true(value_of(&r, "branchgate_worker_load") == 3);
    /* no traffic: headers only, no series */
    assert_non_null(strstr(r.text, "# TYPE branchgate_http_requests_total counter\n"));
    assert_null(strstr(r.text, "branchgate_http_requests_total{"));
    assert_null(strstr(r.text, "branchgate_http_request_duration_seconds_bucket{"));
    /* every sample line belongs to a declared metric family */
    for (const char *line = r.text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#') {
            size_t nlen = strcspn(line, "{ ");
            char decl[128];
            snprintf(decl, sizeof(decl), "# TYPE %.*s ", (int)nlen, line);
            assert_non_null(strstr(r.text, decl));
        }
        line = nl + 1;
    }
    free(r.text);
    bg_metrics_destroy(m);
}

/* A page larger than the first buffer grows instead of being cut. */
static void test_large_page(void **state)
{
    (void)state;
    enum { NR = 200 };
    static char bufs[NR][48];
    static const char *many[NR];
    for (int i = 0; i < NR; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "GET /api/v1/route/number/%03d", i);
        many[i] = bufs[i];
    }
    bg_metrics *m = bg_metrics_create(many, NR);
    for (int i = 0; i < NR; i++)
        bg_metrics_observe(m, i, 200, (uint64_t)i * 1000);
    rendered r = render(m);
    assert_true(r.len > 8192);
    for (int i = 0; i < NR; i++) {
        assert_true(counter(&r, many[i], "200") == 1);
        assert_true(hist_value(&r, "count", many[i]) == 1);
    }
    free(r.text);
    bg_metrics_destroy(m);
}

/* ---- concurrency ------------------------------------------------------------ */

enum { NTHREADS = 4, PER_THREAD = 20000 };

typedef struct worker_arg {
    bg_metrics *m;
    int id;
} worker_arg;

static void *observer(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++)
        bg_metrics_observe(a->m, i % 2, i % 3 == 0 ? 200 : 404, (uint64_t)(a->id * 1000 + i % 7));
    return NULL;
}

static void test_concurrent_observe_is_exact(void **state)
{
    (void)state;
    bg_metrics *m = bg_metrics_create(names, N_ELEMS(names));
    pthread_t th[NTHREADS];
    worker_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (worker_arg){m, i};
        assert_int_equal(pthread_create(&th[i], NULL, observer, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    rendered r = render(m);
    /* per thread: i%2 picks the route, i%3==0 the 200s */
    double r0_200 = 0, r0_404 = 0, r1_200 = 0, r1_404 = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        bool ok = i % 3 == 0;
        double *slot = i % 2 == 0 ? (ok ? &r0_200 : &r0_404) : (ok ? &r1_200 : &r1_404);
        *slot += 1;
    }
    assert_true(counter(&r, "GET /healthz", "200") == NTHREADS * r0_200);
    assert_true(counter(&r, "GET /healthz", "404") == NTHREADS * r0_404);
    assert_true(counter(&r, "POST /api/v1/tokens", "200") == NTHREADS * r1_200);
    assert_true(counter(&r, "POST /api/v1/tokens", "404") == NTHREADS * r1_404);
    assert_true(hist_value(&r, "count", "GET /healthz") == NTHREADS * (r0_200 + r0_404));
    assert_true(bucket(&r, "GET /healthz", "+Inf") == NTHREADS * (r0_200 + r0_404));
    free(r.text);
    bg_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_lines),
        cmocka_unit_test(test_known_statuses_are_their_own),
        cmocka_unit_test(test_unknown_status_is_other),
        cmocka_unit_test(test_out_of_range_route_is_unmatched),
        cmocka_unit_test(test_no_routes),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_line_order),
        cmocka_unit_test(test_gauges_and_empty),
        cmocka_unit_test(test_large_page),
        cmocka_unit_test(test_concurrent_observe_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
