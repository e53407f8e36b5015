/* gateway/handlers/crossbranch.c — /api/v1/cross-branch/ routes that are
 * not resource-specific: health (peer). test-communication shares the
 * ping stages of branches.c. */
#include "gateway/handlers/handlers.h"
#include "node/licenses.h"
#include "proto/log.h"

void bg_h_cross_health(bg_reqctx *rc)
{
    char now[32], pk[2 * BG_ED25519_PK_BYTES + 1];
    bg_log_format_time(bg_now_ms(), now);
    bg_node_public_key_hex(rc->gw->node, pk);
    const bg_config *c = rc->gw->cfg;
    bg_gw_json(rc, 200,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "branch_name", c->branch_name, "branch_type",
                         c->branch_type, "branch_url", bg_node_url(rc->gw->node), "version",
                         BG_VERSION, "time", now, "public_key", pk));
}

