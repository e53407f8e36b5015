/* gateway/handlers/system.c — index (service description or dashboard),
 * the dashboard's script and style, liveness, readiness, metrics. */
#include <stdlib.h>
#include <string.h>

#include "gateway/dashboard/dashboard.h"
#include "gateway/handlers/handlers.h"
#include "proto/log.h"

/* The dashboard loads nothing but its own script and style from this
 * branch and talks only to this branch's API: no inline code, no other
 * origin, no framing, no form posts (the token form is handled by the
 * script). */
static const char dashboard_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* True when the comma-separated list item [p, end) names media type `type`
 * (parameters such as q= after ';' are ignored). */
static bool accept_item_is(const char *p, const char *end, const char *type)
{
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (semi != NULL)
        end = semi;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return h2o_lcstris(p, (size_t)(end - p), type, strlen(type));
}

/* True when an Accept header of the request lists media type `type`. */
static bool accept_lists(const h2o_req_t *req, const char *type)
{
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, i)) != -1;) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        const char *p = v->base, *end = v->base + v->len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *item_end = comma != NULL ? comma : end;
            if (accept_item_is(p, item_end, type))
                return true;
            p = comma != NULL ? comma + 1 : end;
        }
    }
    return false;
}

/* Sends one of the dashboard's compiled-in files (static storage, so it
 * outlives the request) with the headers every one of them carries. */
static void send_dashboard_file(bg_reqctx *rc, const char *type, const unsigned char *body,
                                size_t len)
{
    bg_gw_header(rc, "content-security-policy", dashboard_csp);
    bg_gw_header(rc, "x-content-type-options", "nosniff");
    bg_gw_header(rc, "cache-control", "no-cache");
    bg_gw_header(rc, "referrer-policy", "no-referrer");
    bg_gw_header(rc, "x-frame-options", "DENY");
    bg_gw_send(rc, 200, type, (const char *)body, len);
}

void bg_h_index(bg_reqctx *rc)
{
    bg_gw_header(rc, "vary", "accept");
    /* Browsers list text/html and get the dashboard. API clients, scripts
     * and curl (no Accept header, or the any-type wildcard) keep the JSON
     * service description, and so does anyone who names application/json. */
    if (accept_lists(rc->req, "text/html") && !accept_lists(rc->req, "application/json")) {
        send_dashboard_file(rc, "text/html; charset=utf-8", bg_dashboard_index_html,
                            bg_dashboard_index_html_len);
        return;
    }
    const bg_config *c = rc->gw->cfg;
    bg_gw_json(rc, 200,
               json_pack("{s:s,s:s,s:s,s:s,s:s}", "service", "branchgate", "branch", c->branch_name,
                         "branch_type", c->branch_type, "branch_url", bg_node_url(rc->gw->node),
                         "version", BG_VERSION));
}

void bg_h_dashboard_js(bg_reqctx *rc)
{
    send_dashboard_file(rc, "text/javascript; charset=utf-8", bg_dashboard_dashboard_js,
                        bg_dashboard_dashboard_js_len);
}

void bg_h_dashboard_css(bg_reqctx *rc)
{
    send_dashboard_file(rc, "text/css; charset=utf-8", bg_dashboard_dashboard_css,
                        bg_dashboard_dashboard_css_len);
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
