#include <stdlib.h>
/* gateway/handlers/system.c — index, liveness, readiness, metrics. */
#include "gateway/handlers/handlers.h"
#include "proto/log.h"

void bg_h_index(bg_reqctx *rc)
{
    const bg_config *c = rc->gw->cfg;
    bg_gw_json(rc, 200,
               json_pack("{s:s,s:s,s:s,s:s,s:s}", "service", "branchgate", "branch", c->branch_name,
                         "branch_type", c->branch_type, "branch_url", bg_node_url(rc->gw->node),
                         "version", BG_VERSION));
}

void bg_h_healthz(bg_reqctx *rc)
{
    bg_gw_json(rc, 200, json_pack("{s:s,s:s}", "status", "ok", "branch", rc->gw->cfg->branch_name));
}

static void readyz_work(bg_gw_job *job, bg_registry *reg)
{
    bg_err e = bg_registry_ping(reg);
    if (e != BG_OK) {
        bg_gw_job_fail(job, BG_EBUSY, "NOT_READY", "database not ready: %s", bg_registry_errmsg(reg));
        return;
    }
    bg_gw_job_ok(job, 200, json_pack("{s:s}", "status", "ready"));
}

void bg_h_readyz(bg_reqctx *rc)
{
    if (rc->gw->stopping) {
        bg_gw_error(rc, 503, "NOT_READY", "the branch is shutting down");
        return;
    }
    /* A round trip through a worker proves both the pool and the database. */
    bg_gw_job_submit(rc, bg_gw_job_new(rc, readyz_work, NULL));
}

void bg_h_metrics(bg_reqctx *rc)
{
    bg_node *n = rc->gw->node;
    bg_metrics_gauges g = {
        .version = BG_VERSION,
        .branch = rc->gw->cfg->branch_name,
        .start_time_s = (double)bg_node_started_ms(n) / 1000.0,
        .worker_load = bg_pool_load(bg_node_pool(n)),
        .worker_threads = (uint64_t)bg_pool_size(bg_node_pool(n)),
    };
    size_t len, plen;
    char *text = bg_metrics_render(rc->gw->metrics, &g, &len);
    char *peers = NULL;
    bg_node_peer_metrics(n, &peers, &plen);
    h2o_iovec_t copy = h2o_concat(&rc->req->pool, h2o_iovec_init(text, len), h2o_iovec_init(peers, plen));
    free(text);
    free(peers);
    bg_gw_send(rc, 200, "text/plain; version=0.0.4", copy.base, copy.len);
}
