#include <string.h>
/* gateway/handlers/crossbranch.c — /api/v1/cross-branch/ routes that are
 * not resource-specific: health (peer). test-communication shares the
 * ping stages of branches.c. */
#include "gateway/handlers/handlers.h"
#include "node/licenses.h"
#include "proto/json.h"
#include "proto/log.h"

void bg_h_cross_health(bg_reqctx *rc)
{
    /* Everything but the time is fixed once the branch is listening, so it
     * is rendered once (bg_gw_health_prepare) and only the time per call. */
    bg_gateway *gw = rc->gw;
    char now[32];
    bg_log_format_time(bg_now_ms(), now);
    size_t tlen = strlen(now);
    char *body = h2o_mem_alloc_pool(&rc->req->pool, gw->health_prefix_len + tlen + 2);
    memcpy(body, gw->health_prefix, gw->health_prefix_len);
    memcpy(body + gw->health_prefix_len, now, tlen);
    memcpy(body + gw->health_prefix_len + tlen, "\"}", 2);
    bg_gw_send(rc, 200, "application/json", body, gw->health_prefix_len + tlen + 2);
}

void bg_gw_health_prepare(bg_gateway *gw)
{
    char pk[2 * BG_ED25519_PK_BYTES + 1];
    bg_node_public_key_hex(gw->node, pk);
    const bg_config *c = gw->cfg;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "branch_name", c->branch_name, "branch_type",
                          c->branch_type, "branch_url", bg_node_url(gw->node), "version", BG_VERSION,
                          "public_key", pk, "time", "");
    size_t len;
    char *text = bg_json_dump(o, &len);
    json_decref(o);
    /* text ends in "time":""} — keep up to and including the opening quote. */
    gw->health_prefix_len = len - 2;
    gw->health_prefix = text;
}
