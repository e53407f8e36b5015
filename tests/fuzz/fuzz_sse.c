/*
 * fuzz_sse — the parameters of GET /api/stream (gateway/handlers/stream.c):
 * the query string as the gateway splits and percent-decodes it
 * (gateway/respond.c bg_gw_query, run here on a request that holds only a
 * path and a memory pool), then, as target() and last_event_id() in
 * stream.c do, bg_channel_parse on ?channel= and bg_parse_i64 (0..INT64_MAX)
 * on Last-Event-ID, from the header or from ?last_event_id=; and the paging
 * parameters every list route reads (?limit=, ?cursor=).
 *
 * Input: an optional first line "Last-Event-ID: VALUE", then the request
 * path with its query ("/api/stream?channel=upload:main:ID").
 *
 * Invariants: a value bg_gw_query returns is NUL-terminated, *len is its
 * length, and it is never longer than the raw value; accepted ids are >= 0.
 */
#include "fuzz.h"

#include "gateway/gateway.h"
#include "proto/assembly.h"
#include "proto/parse.h"

static const char *query(bg_reqctx *rc, const char *key, size_t *len)
{
    *len = SIZE_MAX;
    const char *v = bg_gw_query(rc, key, len);
    if (v != NULL)
        FUZZ_CHECK(*len == strlen(v) && *len <= rc->req->path.len);
    return v;
}

static void stream_params(bg_reqctx *rc, const char *hdr, size_t hlen)
{
    size_t clen, blen, qlen;
    const char *channel = query(rc, "channel", &clen);
    query(rc, "branch", &blen);
    char name[BG_BRANCH_NAME_MAX + 1], id[BG_ASSEMBLY_ID_LEN + 1];
    if (channel != NULL && bg_channel_parse(channel, clen, name, id) == BG_OK)
        FUZZ_CHECK(strlen(name) <= BG_BRANCH_NAME_MAX && bg_assembly_id_valid(id));
    const char *q = query(rc, "last_event_id", &qlen);
    if (hdr != NULL) {
        q = hdr;
        qlen = hlen;
    }
    int64_t after = -1;
    if (q != NULL && bg_parse_i64(q, qlen, 0, INT64_MAX, &after) == BG_OK)
        FUZZ_CHECK(after >= 0);
}

static void page_params(bg_reqctx *rc)
{
    size_t len;
    int64_t limit;
    const char *l = query(rc, "limit", &len);
    if (l != NULL && bg_parse_i64(l, len, 1, 500, &limit) == BG_OK)
        FUZZ_CHECK(limit >= 1 && limit <= 500);
    query(rc, "cursor", &len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = "Last-Event-ID: ";
    const char *hdr = NULL;
    size_t hlen = 0;
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl != NULL && size >= sizeof(prefix) - 1 && memcmp(data, prefix, sizeof(prefix) - 1) == 0) {
        hdr = (const char *)data + sizeof(prefix) - 1;
        hlen = (size_t)((const char *)nl - hdr);
        size -= (size_t)(nl - data) + 1;
        data = nl + 1;
    }
    char *path = malloc(size > 0 ? size : 1);
    memcpy(path, data, size);
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req.path = h2o_iovec_init(path, size);
    const char *qm = memchr(path, '?', size);
    req.query_at = qm != NULL ? (size_t)(qm - path) : SIZE_MAX;
    bg_reqctx rc;
    memset(&rc, 0, sizeof(rc));
    rc.req = &req;
    stream_params(&rc, hdr, hlen);
    page_params(&rc);
    h2o_mem_clear_pool(&req.pool);
    free(path);
    return 0;
}
