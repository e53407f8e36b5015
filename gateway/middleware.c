/* gateway/middleware.c — the fixed pipeline every request goes through:
 * request id → route → size cap → authentication → rate limit → body
 * parsing → handler. Each step that rejects a request sends the error reply
 * itself and stops. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/parse.h"
#include "proto/sig.h"

#define BEARER_MAX 512

/* Runs when the request's pool is cleared, i.e. when the request ends for
 * any reason: a worker reply still in flight must not touch it. */
static void reqctx_dispose(void *p)
{
    bg_reqctx *rc = p;
    if (rc->job != NULL)
        rc->job->rc = NULL;
    json_decref(rc->body);
    rc->loop->inflight--;
}

static bool sane_request_id(const char *s, size_t len)
{
    return bg_str_is_ident(s, len, BG_REQUEST_ID_MAX, "-_.:");
}

static void set_request_id(bg_reqctx *rc)
{
    h2o_req_t *req = rc->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (sane_request_id(v.base, v.len)) {
            memcpy(rc->request_id, v.base, v.len);
            rc->request_id[v.len] = '\0';
            return;
        }
    }
    uint8_t raw[12];
    bg_sig_random(raw, sizeof(raw));
    bg_hex_encode(raw, sizeof(raw), rc->request_id);
}

static bool route(bg_reqctx *rc)
{
    h2o_req_t *req = rc->req;
    char allow[64];
    bg_route_result r = bg_router_match(rc->gw->routes, rc->gw->nroutes, req->method.base,
                                        req->method.len, req->path_normalized.base,
                                        req->path_normalized.len, &rc->match, allow, sizeof(allow));
    if (r == BG_ROUTE_FOUND)
        return true;
    rc->match.route = NULL;
    if (r == BG_ROUTE_NO_METHOD) {
        bg_gw_header(rc, "allow", allow);
        bg_gw_error(rc, 405, "METHOD_NOT_ALLOWED", "method not allowed here; allowed: %s", allow);
    } else {
        bg_gw_error(rc, 404, "NOT_FOUND", "no such route");
    }
    return false;
}

/* Request headers are capped before anything reads them: one value at
 * 8 KiB, all names and values together at 32 KiB (h2o itself refuses more
 * than 100 header lines on HTTP/1.1, with its own 400). */
#define HEADER_VALUE_MAX 8192
#define HEADERS_TOTAL_MAX 32768

static bool headers_cap(bg_reqctx *rc)
{
    size_t total = 0;
    for (size_t i = 0; i < rc->req->headers.size; i++) {
        const h2o_header_t *h = &rc->req->headers.entries[i];
        total += h->name->len + h->value.len;
        if (h->value.len > HEADER_VALUE_MAX || total > HEADERS_TOTAL_MAX) {
            bg_gw_error(rc, 431, "HEADERS_TOO_LARGE",
                        "request headers exceed %d bytes each or %d bytes in all",
                        HEADER_VALUE_MAX, HEADERS_TOTAL_MAX);
            return false;
        }
    }
    return true;
}

static bool size_cap(bg_reqctx *rc)
{
    size_t limit = rc->match.route->body_limit;
    if (rc->match.route->flags & BG_ROUTE_UPLOAD)
        limit = (size_t)rc->gw->cfg->uploads_chunk_max_bytes;
    if (limit == 0)
        limit = (size_t)rc->gw->cfg->http_max_body_bytes;
    if (rc->req->entity.base != NULL && rc->req->entity.len > limit) {
        if (rc->match.route->flags & BG_ROUTE_UPLOAD)
            bg_gw_header(rc, "tus-resumable", "1.0.0");
        bg_gw_error(rc, 413, "PAYLOAD_TOO_LARGE", "request body exceeds %zu bytes", limit);
        return false;
    }
    return true;
}

/* Extracts the token of "Authorization: Bearer <token>". */
static bool bearer(h2o_req_t *req, h2o_iovec_t *tok)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 8 || !h2o_lcstris(v.base, 7, H2O_STRLIT("bearer ")))
        return false;
    tok->base = v.base + 7;
    tok->len = v.len - 7;
    while (tok->len > 0 && tok->base[0] == ' ') {
        tok->base++;
        tok->len--;
    }
    return tok->len > 0;
}

static bool auth_admin(bg_reqctx *rc)
{
    h2o_iovec_t tok;
    if (!bearer(rc->req, &tok)) {
        bg_gw_header(rc, "www-authenticate", "Bearer");
        bg_gw_error(rc, 401, "AUTH_REQUIRED", "this route needs a bearer token");
        return false;
    }
    char id[BG_UUID_LEN + 1];
    /* An overlong token is hashed like any other, so its rejection takes the
     * same path as a wrong one. */
    size_t len = tok.len > BEARER_MAX ? BEARER_MAX : tok.len;
    if (bg_node_admin_check(rc->gw->node, tok.base, len, id) != BG_OK || tok.len > BEARER_MAX) {
        bg_gw_error(rc, 403, "INVALID_TOKEN", "the bearer token is not valid");
        return false;
    }
    snprintf(rc->actor, sizeof(rc->actor), "admin:%s", id);
    return true;
}

/* A user token (a JWT: two dots) or, failing that, an admin token. */
static bool auth_user(bg_reqctx *rc)
{
    h2o_iovec_t tok;
    if (bearer(rc->req, &tok) && tok.len <= 4096 && memchr(tok.base, '.', tok.len) != NULL) {
        if (bg_node_token_verify(rc->gw->node, tok.base, tok.len, &rc->user) != BG_OK) {
            bg_gw_error(rc, 401, "INVALID_TOKEN", "the user token is not valid or has expired");
            return false;
        }
        rc->is_user = true;
        snprintf(rc->actor, sizeof(rc->actor), "user:%s", rc->user.sub);
        return true;
    }
    return auth_admin(rc);
}

static bool header_value(h2o_req_t *req, const char *name, size_t nlen, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, nlen, -1);
    if (i < 0)
        return false;
    *out = req->headers.entries[i].value;
    return true;
}

/* DESIGN section 5, inbound steps 1-5 (step 6, the rate limit, follows in
 * the pipeline). Unknown origin, inactive branch and wrong key all end in
 * the same 403 after the same work. */
static bool auth_peer(bg_reqctx *rc)
{
    h2o_req_t *req = rc->req;
    h2o_iovec_t origin, tok, dest, hops;
    if (!header_value(req, H2O_STRLIT("x-branch-origin"), &origin) || origin.len == 0 ||
        !bearer(req, &tok)) {
        bg_gw_error(rc, 401, "CROSS_BRANCH_AUTH_REQUIRED",
                    "cross-branch calls need X-Branch-Origin and a bearer api key");
        return false;
    }
    size_t olen = origin.len > BEARER_MAX ? BEARER_MAX : origin.len;
    size_t tlen = tok.len > BEARER_MAX ? BEARER_MAX : tok.len;
    if (bg_node_peer_authenticate(rc->gw->node, origin.base, olen, tok.base, tlen, &rc->peer) !=
            BG_OK ||
        origin.len > BEARER_MAX || tok.len > BEARER_MAX) {
        bg_gw_error(rc, 403, "INVALID_BRANCH_CREDENTIALS", "invalid branch credentials");
        return false;
    }
    if (header_value(req, H2O_STRLIT("x-branch-destination"), &dest) &&
        !bg_gw_is_own_url(rc->gw, dest.base, dest.len)) {
        bg_gw_error(rc, 401, "INVALID_DESTINATION", "X-Branch-Destination is not this branch");
        return false;
    }
    if (header_value(req, H2O_STRLIT("x-branch-hops"), &hops)) {
        uint64_t h;
        if (bg_parse_u64(hops.base, hops.len, 0, 1000000, &h) != BG_OK) {
            bg_gw_error(rc, 400, "INVALID_HOPS", "X-Branch-Hops must be a non-negative integer");
            return false;
        }
        if (h > BG_MAX_HOPS) {
            bg_gw_error(rc, 508, "LOOP_DETECTED", "the call passed more than %d branches",
                        BG_MAX_HOPS);
            return false;
        }
    }
    snprintf(rc->actor, sizeof(rc->actor), "peer:%s", rc->peer.name);
    return true;
}

static bool authenticate(bg_reqctx *rc)
{
    bg_auth_kind kind = rc->match.route->auth;
    if ((rc->match.route->flags & BG_ROUTE_METRICS_AUTH) && rc->gw->cfg->metrics_public)
        kind = BG_AUTH_PUBLIC;
    switch (kind) {
    case BG_AUTH_PUBLIC:
        return true;
    case BG_AUTH_ADMIN:
        return auth_admin(rc);
    case BG_AUTH_USER:
        return auth_user(rc);
    case BG_AUTH_PEER:
        return auth_peer(rc);
    }
    return false;
}

static bool rate_limit(bg_reqctx *rc)
{
    bg_ratelimit_fn fn = rc->match.route->ratelimit;
    unsigned retry = fn != NULL ? fn(rc) : 0;
    if (retry == 0 && rc->match.route->auth == BG_AUTH_PEER)
        retry = bg_node_peer_ratelimit(rc->gw->node, rc->peer.id);
    if (retry == 0)
        return true;
    char secs[16];
    snprintf(secs, sizeof(secs), "%u", retry);
    bg_gw_header(rc, "retry-after", secs);
    bg_gw_error(rc, 429, "RATE_LIMITED", "too many requests; retry after %u s", retry);
    return false;
}

static bool parse_body(bg_reqctx *rc)
{
    if (!(rc->match.route->flags & BG_ROUTE_JSON))
        return true;
    h2o_req_t *req = rc->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i >= 0) {
        h2o_iovec_t ct = req->headers.entries[i].value;
        if (ct.len < 16 || !h2o_lcstris(ct.base, 16, H2O_STRLIT("application/json"))) {
            bg_gw_error(rc, 415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json");
            return false;
        }
    }
    bg_json_err je;
    if (bg_json_parse_object(req->entity.base, req->entity.len, &rc->body, &je) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_JSON", "%s", je.message);
        return false;
    }
    return true;
}

int bg_gw_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    bg_reqctx *rc = h2o_mem_alloc_shared(&req->pool, sizeof(*rc), reqctx_dispose);
    memset(rc, 0, sizeof(*rc));
    rc->req = req;
    rc->start_us = bg_gw_now_us();
    rc->loop = H2O_STRUCT_FROM_MEMBER(bg_gw_loop, ctx, req->conn->ctx);
    rc->gw = rc->loop->gw;
    rc->loop->inflight++;
    set_request_id(rc);
    if (headers_cap(rc) && route(rc) && size_cap(rc) && authenticate(rc) && rate_limit(rc) &&
        parse_body(rc))
        rc->match.route->handler(rc);
    return 0;
}
