/* gateway/handlers/uploads.c — tus 1.0 at /api/v1/uploads/ (core,
 * creation, creation-with-upload, checksum, termination, expiration). The
 * headers are parsed here; the bytes and the registry work go to a worker
 * with a copy of the chunk, since the request may end before it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/pipeline.h"
#include "proto/assembly.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/tus.h"

#define METADATA_MAX 4000

typedef struct tus_state {
    bg_actor *who;
    char id[BG_UPLOAD_ID_LEN + 1];
    int64_t length;
    char metadata[METADATA_MAX + 1];
    size_t metadata_len;
    bool has_chunk;
    bg_tus_chunk chunk;
    char *data; /* malloc'ed copy of the body */
    bg_upload_row row; /* result */
} tus_state;

static void tus_state_free(void *p)
{
    tus_state *t = p;
    free(t->who);
    free(t->data);
    free(t);
}

static bool header(bg_reqctx *rc, const char *name, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&rc->req->headers, name, strlen(name), -1);
    if (i < 0)
        return false;
    *out = rc->req->headers.entries[i].value;
    return true;
}

static void tus_headers(bg_reqctx *rc)
{
    bg_gw_header(rc, "tus-resumable", BG_TUS_VERSION);
}

static void tus_error(bg_reqctx *rc, int status, const char *code, const char *msg)
{
    tus_headers(rc);
    bg_gw_error(rc, status, code, "%s", msg);
}

/* Every request but OPTIONS names the protocol version. */
static bool check_version(bg_reqctx *rc)
{
    h2o_iovec_t v;
    if (header(rc, "tus-resumable", &v) && h2o_memis(v.base, v.len, H2O_STRLIT(BG_TUS_VERSION)))
        return true;
    bg_gw_header(rc, "tus-version", BG_TUS_VERSION);
    tus_error(rc, 412, "TUS_VERSION_UNSUPPORTED", "send Tus-Resumable: 1.0.0");
    return false;
}

static bool parse_u64(bg_reqctx *rc, const char *name, int64_t max, bool required, int64_t *out,
                      bool *present)
{
    h2o_iovec_t v;
    *present = header(rc, name, &v);
    if (!*present) {
        if (required) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the %s header is required", name);
            tus_error(rc, 400, "INVALID_HEADER", msg);
        }
        return !required;
    }
    if (bg_parse_i64(v.base, v.len, 0, INT64_MAX, out) != BG_OK) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a non-negative integer", name);
        tus_error(rc, 400, "INVALID_HEADER", msg);
        return false;
    }
    if (*out > max) {
        tus_error(rc, 413, "UPLOAD_TOO_LARGE", "the upload is larger than Tus-Max-Size");
        return false;
    }
    return true;
}

/* The body as a chunk, with its optional Upload-Checksum. */
static bool take_chunk(bg_reqctx *rc, tus_state *t)
{
    h2o_iovec_t ct, cs;
    if (!header(rc, "content-type", &ct) ||
        !h2o_memis(ct.base, ct.len, H2O_STRLIT("application/offset+octet-stream"))) {
        tus_error(rc, 415, "UNSUPPORTED_MEDIA_TYPE",
                  "send the bytes as application/offset+octet-stream");
        return false;
    }
    if (header(rc, "upload-checksum", &cs)) {
        bg_err e = bg_tus_checksum_parse(cs.base, cs.len, &t->chunk.algo, t->chunk.digest,
                                         &t->chunk.dlen);
        if (e != BG_OK) {
            tus_error(rc, 400, e == BG_ENOTFOUND ? "CHECKSUM_ALGORITHM_UNSUPPORTED" : "INVALID_HEADER",
                      e == BG_ENOTFOUND ? "supported checksum algorithms: " BG_TUS_CHECKSUM_ALGOS
                                        : "Upload-Checksum is malformed");
            return false;
        }
    }
    size_t len = rc->req->entity.base ? rc->req->entity.len : 0;
    t->data = bg_xmalloc(len ? len : 1);
    if (len)
        memcpy(t->data, rc->req->entity.base, len);
    t->chunk.data = t->data;
    t->chunk.len = len;
    t->has_chunk = true;
    return true;
}

static tus_state *state_new(bg_reqctx *rc)
{
    tus_state *t = bg_xcalloc(1, sizeof(*t));
    t->who = bg_h_actor(rc);
    return t;
}

static bg_gw_job *tus_job(bg_reqctx *rc, tus_state *t, bg_gw_work_fn work, bg_gw_reply_fn reply)
{
    bg_gw_job *job = bg_gw_job_new(rc, work, NULL);
    job->state = t;
    job->state_free = tus_state_free;
    job->reply = reply;
    return job;
}

/* Errors of a tus worker stage: 460 for a checksum mismatch, 507 when the
 * branch's disk is full. */
static bool reply_error(bg_reqctx *rc, bg_gw_job *job)
{
    if (job->err == BG_OK)
        return false;
    int status = bg_gw_status_of(job->err);
    if (job->err_code && strcmp(job->err_code, "CHECKSUM_MISMATCH") == 0)
        status = 460;
    else if (job->err_code && strcmp(job->err_code, "STORAGE_FULL") == 0)
        status = 507;
    if (status >= 500)
        bg_log(BG_LOG_ERROR, rc->request_id, "upload failed: %s", job->err_msg);
    tus_error(rc, status, job->err_code, job->err_msg);
    return true;
}

static void expires_header(bg_reqctx *rc, const bg_upload_row *u)
{
    if (u->complete)
        return;
    char date[40];
    bg_tus_http_date(u->expires_ms, date, sizeof(date));
    bg_gw_header(rc, "upload-expires", date);
}

static void offset_header(bg_reqctx *rc, const bg_upload_row *u)
{
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)u->offset);
    bg_gw_header(rc, "upload-offset", num);
}

/* ---- OPTIONS ---- */

void bg_h_uploads_options(bg_reqctx *rc)
{
    char max[24];
    snprintf(max, sizeof(max), "%lld", (long long)rc->gw->cfg->uploads_max_size);
    tus_headers(rc);
    bg_gw_header(rc, "tus-version", BG_TUS_VERSION);
    bg_gw_header(rc, "tus-extension", BG_TUS_EXTENSIONS);
    bg_gw_header(rc, "tus-max-size", max);
    bg_gw_header(rc, "tus-checksum-algorithm", BG_TUS_CHECKSUM_ALGOS);
    bg_gw_send(rc, 204, NULL, "", 0);
}

/* ---- POST (creation, creation-with-upload) ---- */

static void create_work(bg_gw_job *job, bg_registry *reg)
{
    tus_state *t = job->state;
    bg_node_err ne = {0};
    bg_err e = bg_pipeline_upload_create(job->node, reg, t->who, t->length, t->metadata,
                                         t->metadata_len, t->has_chunk ? &t->chunk : NULL, &t->row,
                                         &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
}

static void create_reply(bg_reqctx *rc, bg_gw_job *job)
{
    if (reply_error(rc, job))
        return;
    tus_state *t = job->state;
    char loc[700];
    snprintf(loc, sizeof(loc), "%s/api/v1/uploads/%s", bg_node_url(rc->gw->node), t->row.id);
    tus_headers(rc);
    bg_gw_header(rc, "location", loc);
    expires_header(rc, &t->row);
    if (t->has_chunk)
        offset_header(rc, &t->row);
    bg_gw_send(rc, 201, NULL, "", 0);
}

void bg_h_uploads_create(bg_reqctx *rc)
{
    if (!check_version(rc))
        return;
    h2o_iovec_t md, defer;
    if (header(rc, "upload-defer-length", &defer)) {
        tus_error(rc, 400, "INVALID_HEADER", "Upload-Defer-Length is not supported: send Upload-Length");
        return;
    }
    bool present;
    tus_state *t = state_new(rc);
    if (!parse_u64(rc, "upload-length", rc->gw->cfg->uploads_max_size, true, &t->length, &present))
        goto fail;
    if (!header(rc, "upload-metadata", &md) || md.len > METADATA_MAX) {
        tus_error(rc, 400, "INVALID_METADATA",
                  "Upload-Metadata with assembly_id and filename is required (at most 4000 bytes)");
        goto fail;
    }
    memcpy(t->metadata, md.base, md.len);
    t->metadata_len = md.len;
    if (rc->req->entity.base != NULL && rc->req->entity.len > 0 && !take_chunk(rc, t))
        goto fail;
    bg_gw_job_submit(rc, tus_job(rc, t, create_work, create_reply));
    return;
fail:
    tus_state_free(t);
}

/* ---- HEAD ---- */

static const char *upload_param(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    if (id == NULL || !bg_upload_id_valid(id)) {
        tus_error(rc, 404, "UPLOAD_NOT_FOUND", "no such upload");
        return NULL;
    }
    return id;
}

static void head_work(bg_gw_job *job, bg_registry *reg)
{
    tus_state *t = job->state;
    bg_node_err ne = {0};
    bg_err e = bg_pipeline_upload_get(job->node, reg, t->who, t->id, &t->row, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
}

static void head_reply(bg_reqctx *rc, bg_gw_job *job)
{
    tus_state *t = job->state;
    if (job->err != BG_OK) {
        /* A HEAD answer has no body: status and headers only. */
        tus_headers(rc);
        bg_gw_send(rc, bg_gw_status_of(job->err), NULL, "", 0);
        return;
    }
    char len[24];
    snprintf(len, sizeof(len), "%lld", (long long)t->row.length);
    tus_headers(rc);
    offset_header(rc, &t->row);
    bg_gw_header(rc, "upload-length", len);
    if (t->row.metadata[0])
        bg_gw_header(rc, "upload-metadata", t->row.metadata);
    expires_header(rc, &t->row);
    bg_gw_header(rc, "cache-control", "no-store");
    bg_gw_send(rc, 200, NULL, "", 0);
}

/* The state of a request on one upload (version and id checked); NULL
 * after answering an error. */
static tus_state *for_upload(bg_reqctx *rc)
{
    if (!check_version(rc))
        return NULL;
    const char *id = upload_param(rc);
    if (id == NULL)
        return NULL;
    tus_state *t = state_new(rc);
    bg_strlcpy(t->id, id, sizeof(t->id));
    return t;
}

void bg_h_uploads_head(bg_reqctx *rc)
{
    tus_state *t = for_upload(rc);
    if (t != NULL)
        bg_gw_job_submit(rc, tus_job(rc, t, head_work, head_reply));
}

/* ---- PATCH ---- */

static void patch_work(bg_gw_job *job, bg_registry *reg)
{
    tus_state *t = job->state;
    bg_node_err ne = {0};
    bg_err e = bg_pipeline_upload_patch(job->node, reg, t->who, t->id, &t->chunk, &t->row, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
}

static void patch_reply(bg_reqctx *rc, bg_gw_job *job)
{
    if (reply_error(rc, job))
        return;
    tus_state *t = job->state;
    tus_headers(rc);
    offset_header(rc, &t->row);
    expires_header(rc, &t->row);
    bg_gw_send(rc, 204, NULL, "", 0);
}

void bg_h_uploads_patch(bg_reqctx *rc)
{
    bool present;
    tus_state *t = for_upload(rc);
    if (t == NULL)
        return;
    if (!parse_u64(rc, "upload-offset", INT64_MAX, true, &t->chunk.offset, &present) ||
        !take_chunk(rc, t)) {
        tus_state_free(t);
        return;
    }
    bg_gw_job_submit(rc, tus_job(rc, t, patch_work, patch_reply));
}

/* ---- DELETE (termination) ---- */

static void delete_work(bg_gw_job *job, bg_registry *reg)
{
    tus_state *t = job->state;
    bg_node_err ne = {0};
    bg_err e = bg_pipeline_upload_delete(job->node, reg, t->who, t->id, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
}

static void delete_reply(bg_reqctx *rc, bg_gw_job *job)
{
    if (reply_error(rc, job))
        return;
    tus_headers(rc);
    bg_gw_send(rc, 204, NULL, "", 0);
}

void bg_h_uploads_delete(bg_reqctx *rc)
{
    tus_state *t = for_upload(rc);
    if (t != NULL)
        bg_gw_job_submit(rc, tus_job(rc, t, delete_work, delete_reply));
}
