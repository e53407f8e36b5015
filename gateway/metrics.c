#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

/* Status codes get their own counter; any other is folded into "other". */
static const int statuses[] = {200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 409,
                               410, 412, 413, 415, 422, 429, 460, 500, 502, 503, 504, 508};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

typedef struct series {
    uint64_t count[NSTATUS + 1];
    uint64_t bucket[NBUCKETS]; /* not cumulative; summed when rendered */
    uint64_t total;
    uint64_t sum_us;
} series;

struct bg_metrics {
    const char *const *names;
    size_t nroutes;
    series *s; /* nroutes + 1, the last one "unmatched" */
};

bg_metrics *bg_metrics_create(const char *const *route_names, size_t nroutes)
{
    bg_metrics *m = bg_xcalloc(1, sizeof(*m));
    m->names = route_names;
    m->nroutes = nroutes;
    m->s = bg_xcalloc(nroutes + 1, sizeof(series));
    return m;
}

void bg_metrics_destroy(bg_metrics *m)
{
    if (m == NULL)
        return;
    free(m->s);
    free(m);
}

void bg_metrics_observe(bg_metrics *m, int route, int status, uint64_t duration_us)
{
    size_t r = (route < 0 || (size_t)route >= m->nroutes) ? m->nroutes : (size_t)route;
    series *s = &m->s[r];
    size_t si = NSTATUS;
    for (size_t i = 0; i < NSTATUS; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    __atomic_fetch_add(&s->count[si], 1, __ATOMIC_RELAXED);
    double secs = (double)duration_us / 1e6;
    for (size_t b = 0; b < NBUCKETS; b++)
        if (secs <= buckets[b]) {
            __atomic_fetch_add(&s->bucket[b], 1, __ATOMIC_RELAXED);
            break;
        }
    __atomic_fetch_add(&s->total, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->sum_us, duration_us, __ATOMIC_RELAXED);
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = bg_xrealloc(b->p, b->cap);
    }
}

static const char *route_name(const bg_metrics *m, size_t r)
{
    return r < m->nroutes ? m->names[r] : "unmatched";
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

char *bg_metrics_render(const bg_metrics *m, const bg_metrics_gauges *g, size_t *len)
{
    buf b = {bg_xmalloc(8192), 0, 8192};
    put(&b, "# HELP branchgate_build_info Version of the running branchgate.\n"
            "# TYPE branchgate_build_info gauge\n"
            "branchgate_build_info{version=\"%s\",branch=\"%s\"} 1\n",
        g->version, g->branch);
    put(&b, "# HELP branchgate_start_time_seconds Unix time the process started.\n"
            "# TYPE branchgate_start_time_seconds gauge\nbranchgate_start_time_seconds %.3f\n",
        g->start_time_s);
    put(&b, "# HELP branchgate_worker_threads Worker threads in the pool.\n"
            "# TYPE branchgate_worker_threads gauge\nbranchgate_worker_threads %llu\n",
        (unsigned long long)g->worker_threads);
    put(&b, "# HELP branchgate_worker_load Tasks queued or running in the worker pool.\n"
            "# TYPE branchgate_worker_load gauge\nbranchgate_worker_load %llu\n",
        (unsigned long long)g->worker_load);
    put(&b, "# HELP branchgate_http_requests_total HTTP responses by route and status.\n"
            "# TYPE branchgate_http_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        for (size_t i = 0; i <= NSTATUS; i++) {
            uint64_t c = load(&m->s[r].count[i]);
            if (c == 0)
                continue;
            if (i < NSTATUS)
                put(&b, "branchgate_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    route_name(m, r), statuses[i], (unsigned long long)c);
            else
                put(&b, "branchgate_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                    route_name(m, r), (unsigned long long)c);
        }
    }
    put(&b, "# HELP branchgate_http_request_duration_seconds Time from request to response.\n"
            "# TYPE branchgate_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        uint64_t total = load(&m->s[r].total);
        if (total == 0)
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += load(&m->s[r].bucket[k]);
            put(&b, "branchgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                route_name(m, r), buckets[k], (unsigned long long)cum);
        }
        put(&b,
            "branchgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
            "branchgate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
            "branchgate_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
            route_name(m, r), (unsigned long long)total, route_name(m, r),
            (double)load(&m->s[r].sum_us) / 1e6, route_name(m, r), (unsigned long long)total);
    }
    *len = b.len;
    return b.p;
}
