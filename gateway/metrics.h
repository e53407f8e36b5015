/*
 * gateway/metrics.h — request counters and duration histograms, rendered
 * in the Prometheus text format. Updates are relaxed atomics, so any loop
 * thread records without locks; rendering reads a slightly moving picture,
 * which Prometheus tolerates.
 */
#ifndef BG_GATEWAY_METRICS_H
#define BG_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bg_metrics bg_metrics;

/* Labels for nroutes routes (route_names[i], e.g. "GET /healthz"). The
 * names are borrowed and must outlive the metrics. */
bg_metrics *bg_metrics_create(const char *const *route_names, size_t nroutes);
void bg_metrics_destroy(bg_metrics *m);

/* Records one response. route < 0 or >= nroutes counts as "unmatched". */
void bg_metrics_observe(bg_metrics *m, int route, int status, uint64_t duration_us);

/* Gauges supplied at render time. */
typedef struct bg_metrics_gauges {
    const char *version;
    const char *branch;
    double start_time_s;
    uint64_t worker_load;
    uint64_t worker_threads;
} bg_metrics_gauges;

/* Renders everything as Prometheus text; malloc'ed, *len set. */
char *bg_metrics_render(const bg_metrics *m, const bg_metrics_gauges *g, size_t *len);

#endif
