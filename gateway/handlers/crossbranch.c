/* gateway/handlers/crossbranch.c — /api/v1/cross-branch/ routes that are
 * not resource-specific: health (peer). test-communication shares the
 * ping stages of branches.c. */
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

