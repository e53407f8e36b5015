/* gateway/respond.c — the error module and every response the gateway
 * sends: one place sets X-Request-Id, records metrics and writes the
 * access log. */
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include <netdb.h>

uint64_t bg_gw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int bg_gw_status_of(bg_err e)
{
    switch (e) {
    case BG_OK: return 200;
    case BG_EINVAL: return 400;
    case BG_EAUTH: return 401;
    case BG_EFORBIDDEN: return 403;
    case BG_ENOTFOUND: return 404;
    case BG_ECONFLICT: return 409;
    case BG_ETOOBIG: return 413;
    case BG_EMEDIA: return 422;
    case BG_EPEER: return 502;
    case BG_EBUSY: return 503;
    case BG_ETIMEOUT: return 504;
    case BG_ENOMEM:
    case BG_EIO:
    case BG_EINTERNAL:
    default: return 500;
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 460: return "Checksum Mismatch";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    default: return "Unknown";
    }
}

static const char *default_code(int status)
{
    switch (status) {
    case 400: return "INVALID_REQUEST";
    case 401: return "AUTH_REQUIRED";
    case 403: return "FORBIDDEN";
    case 404: return "NOT_FOUND";
    case 405: return "METHOD_NOT_ALLOWED";
    case 409: return "CONFLICT";
    case 413: return "PAYLOAD_TOO_LARGE";
    case 415: return "UNSUPPORTED_MEDIA_TYPE";
    case 429: return "RATE_LIMITED";
    case 503: return "SERVICE_UNAVAILABLE";
    default: return status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST";
    }
}

void bg_gw_header(bg_reqctx *rc, const char *name, const char *value)
{
    h2o_req_t *req = rc->req;
    size_t nlen = strlen(name);
    char *n = h2o_mem_alloc_pool(&req->pool, nlen);
    memcpy(n, name, nlen);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n, nlen, 0, NULL, v.base, v.len);
}

static void access_log(bg_reqctx *rc, int status, size_t bytes, uint64_t dur_us)
{
    h2o_req_t *req = rc->req;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (plen > 512)
        plen = 512;
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(rc->request_id));
    json_object_set_new(f, "method", json_stringn(req->method.base, req->method.len));
    json_t *path = json_stringn(req->path.base, plen);
    json_object_set_new(f, "path", path ? path : json_string("(invalid utf-8)"));
    json_object_set_new(f, "status", json_integer(status));
    json_object_set_new(f, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(f, "duration_us", json_integer((json_int_t)dur_us));
    if (rc->actor[0])
        json_object_set_new(f, "actor", json_string(rc->actor));
    bg_log_fields(BG_LOG_INFO, "access", f);
}

void bg_gw_send(bg_reqctx *rc, int status, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = rc->req;
    if (rc->responded)
        return;
    rc->responded = true;
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          rc->request_id, strlen(rc->request_id));
    uint64_t dur = bg_gw_now_us() - rc->start_us;
    bg_metrics_observe(rc->gw->metrics, rc->match.route ? rc->match.index : -1, status, dur);
    if (rc->gw->cfg->log_access)
        access_log(rc, status, len, dur);
    h2o_start_response(req, &generator);
    /* A HEAD answer carries the headers (Content-Length included) only. */
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    h2o_send(req, &buf, len && !head ? 1 : 0, H2O_SEND_STATE_FINAL);
}

void bg_gw_mark_response(bg_reqctx *rc, int status)
{
    h2o_req_t *req = rc->req;
    rc->responded = true;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          rc->request_id, strlen(rc->request_id));
    uint64_t dur = bg_gw_now_us() - rc->start_us;
    bg_metrics_observe(rc->gw->metrics, rc->match.route ? rc->match.index : -1, status, dur);
    if (rc->gw->cfg->log_access)
        access_log(rc, status, 0, dur);
}

const char *bg_gw_reason(int status)
{
    return reason_of(status);
}

void bg_gw_json(bg_reqctx *rc, int status, json_t *body)
{
    if (body == NULL) {
        bg_gw_send(rc, status, NULL, "", 0);
        return;
    }
    size_t len;
    char *text = bg_json_dump(body, &len);
    json_decref(body);
    h2o_iovec_t copy = h2o_strdup(&rc->req->pool, text, len);
    free(text);
    bg_gw_send(rc, status, "application/json", copy.base, copy.len);
}

__attribute__((format(printf, 4, 0)))
static void verror(bg_reqctx *rc, int status, const char *code, const char *fmt, va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *m = json_string(msg);
    json_t *body = json_pack("{s:{s:s,s:o,s:s}}", "error", "code", code ? code : default_code(status),
                             "message", m ? m : json_string("invalid request"), "request_id",
                             rc->request_id);
    bg_gw_json(rc, status, body);
}

void bg_gw_error(bg_reqctx *rc, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(rc, status, code, fmt, ap);
    va_end(ap);
}

void bg_gw_fail(bg_reqctx *rc, bg_err e, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(rc, bg_gw_status_of(e), code ? code : bg_err_code(e), fmt, ap);
    va_end(ap);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src into dst (at least slen+1 bytes); in a query '+' is
 * a space. Returns false on a malformed escape or an encoded NUL. */
static bool pct_decode(const char *src, size_t slen, char *dst, bool query)
{
    size_t j = 0;
    for (size_t i = 0; i < slen; i++) {
        if (src[i] == '%') {
            if (i + 2 >= slen)
                return false;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            dst[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[j++] = (query && src[i] == '+') ? ' ' : src[i];
        }
    }
    dst[j] = '\0';
    return true;
}

const char *bg_gw_query(bg_reqctx *rc, const char *key, size_t *len)
{
    h2o_req_t *req = rc->req;
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    size_t klen = strlen(key);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == klen && memcmp(q, key, klen) == 0) {
            const char *v = eq ? eq + 1 : pe;
            size_t vlen = (size_t)(pe - v);
            char *out = h2o_mem_alloc_pool(&req->pool, vlen + 1);
            /* A malformed value reads as "", which every caller rejects,
             * rather than as absent, which would fall back to a default. */
            if (!pct_decode(v, vlen, out, true))
                out[0] = '\0';
            if (len != NULL)
                *len = strlen(out);
            return out;
        }
        q = pe + 1;
    }
    return NULL;
}

bool bg_gw_page_params(bg_reqctx *rc, int64_t *limit, const char **cursor)
{
    size_t len;
    const char *l = bg_gw_query(rc, "limit", &len);
    *limit = 50;
    if (l != NULL && bg_parse_i64(l, len, 1, 500, limit) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "limit must be an integer from 1 to 500");
        return false;
    }
    *cursor = bg_gw_query(rc, "cursor", &len);
    if (*cursor != NULL && len > 256) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is too long");
        return false;
    }
    return true;
}

const char *bg_gw_param(bg_reqctx *rc, const char *name)
{
    size_t len;
    const char *v = bg_route_param_get(&rc->match, name, &len);
    if (v == NULL)
        return NULL;
    char *out = h2o_mem_alloc_pool(&rc->req->pool, len + 1);
    if (!pct_decode(v, len, out, false))
        return NULL;
    return out;
}

void bg_gw_client_addr(bg_reqctx *rc, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = rc->req->conn->callbacks->get_peername(rc->req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t n = len > 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, len, host) : SIZE_MAX;
    if (n == SIZE_MAX)
        bg_strlcpy(buf, "unknown", cap);
    else
        snprintf(buf, cap, "%.*s", (int)n, host);
}
