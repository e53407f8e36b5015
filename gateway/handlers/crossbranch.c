/* gateway/handlers/crossbranch.c — /api/v1/cross-branch/ routes that are
 * not resource-specific: health (peer), test-communication (admin). */
#include "gateway/handlers/handlers.h"
#include "proto/log.h"

void bg_h_cross_health(bg_reqctx *rc)
{
    char now[32];
    bg_log_format_time(bg_now_ms(), now);
    const bg_config *c = rc->gw->cfg;
    bg_gw_json(rc, 200,
               json_pack("{s:s,s:s,s:s,s:s,s:s}", "branch_name", c->branch_name, "branch_type",
                         c->branch_type, "branch_url", bg_node_url(rc->gw->node), "version",
                         BG_VERSION, "time", now));
}

static void test_comm_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *out = bg_node_branch_ping_all(job->node, reg, job->request_id);
    if (out == NULL) {
        bg_gw_job_fail(job, BG_EIO, NULL, "cannot read branches: %s", bg_registry_errmsg(reg));
        return;
    }
    bg_gw_job_ok(job, 200, out);
}

void bg_h_cross_test_communication(bg_reqctx *rc)
{
    bg_gw_job_submit(rc, bg_gw_job_new(rc, test_comm_work, NULL));
}
