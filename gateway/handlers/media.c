/* gateway/handlers/media.c — assemblies (create, read, list, cancel,
 * replay), result downloads and the dead-letter queue of media jobs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/handlers/handlers.h"
#include "node/pipeline.h"
#include "proto/assembly.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/tus.h"

/* The caller as the pipeline sees it: a user is confined to the
 * organisation of their token; an admin token sees every organisation. */
bg_actor *bg_h_actor(bg_reqctx *rc)
{
    bg_actor *a = bg_xcalloc(1, sizeof(*a));
    if (rc->is_user) {
        bg_strlcpy(a->org, rc->user.org, sizeof(a->org));
        bg_strlcpy(a->user_id, rc->user.sub, sizeof(a->user_id));
    } else {
        bg_strlcpy(a->user_id, "anonymous", sizeof(a->user_id));
        a->all_orgs = true;
    }
    return a;
}

static bg_gw_job *media_job(bg_reqctx *rc, bg_gw_work_fn work, json_t *in)
{
    bg_gw_job *job = bg_gw_job_new(rc, work, in);
    job->state = bg_h_actor(rc);
    job->state_free = free;
    return job;
}

static const char *in_str(const bg_gw_job *job, const char *key)
{
    return json_string_value(json_object_get(job->in, key));
}

/* The {id} path parameter as an assembly id; answers 404 itself otherwise. */
static const char *assembly_param(bg_reqctx *rc, const char *name)
{
    const char *id = bg_gw_param(rc, name);
    if (id == NULL || !bg_assembly_id_valid(id)) {
        bg_gw_error(rc, 404, "ASSEMBLY_NOT_FOUND", "no such assembly");
        return NULL;
    }
    return id;
}

/* ---- create ---- */

static void create_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *status = NULL;
    bool created = false;
    bg_err e = bg_pipeline_assembly_create(job->node, reg, job->state, job->in, &status, &created,
                                           &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, created ? 201 : 200, status);
}

void bg_h_assemblies_create(bg_reqctx *rc)
{
    if (rc->is_user && json_object_get(rc->body, "organization_id") != NULL) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "organization_id comes from the user token");
        return;
    }
    bg_gw_job_submit(rc, media_job(rc, create_work, json_incref(rc->body)));
}

/* ---- read, list ---- */

static void status_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *status = NULL;
    bg_err e = bg_pipeline_assembly_status(job->node, reg, job->state, in_str(job, "id"), &status, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, status);
}

static void status_of(bg_reqctx *rc, const char *id)
{
    bg_gw_job_submit(rc, media_job(rc, status_work, json_pack("{s:s}", "id", id)));
}

void bg_h_assemblies_get(bg_reqctx *rc)
{
    const char *id = assembly_param(rc, "id");
    if (id != NULL)
        status_of(rc, id);
}

void bg_h_status_compat(bg_reqctx *rc)
{
    size_t len;
    const char *id = bg_gw_query(rc, "assembly_id", &len);
    if (id == NULL || !bg_assembly_id_valid(id)) {
        bg_gw_error(rc, 404, "ASSEMBLY_NOT_FOUND", "no such assembly");
        return;
    }
    status_of(rc, id);
}

static void list_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *out = NULL;
    bg_err e = bg_pipeline_assembly_list(
        job->node, reg, job->state, json_integer_value(json_object_get(job->in, "before")),
        (size_t)json_integer_value(json_object_get(job->in, "limit")), &out, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, out);
}

void bg_h_assemblies_list(bg_reqctx *rc)
{
    int64_t limit, before = 0;
    const char *cursor;
    size_t len;
    if (!bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && bg_parse_i64(cursor, strlen(cursor), 1, INT64_MAX, &before) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not valid");
        return;
    }
    const char *org = rc->is_user ? NULL : bg_gw_query(rc, "organization_id", &len);
    if (org != NULL && !bg_uuid_valid(org, len)) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "organization_id must be a UUID");
        return;
    }
    bg_gw_job *job = media_job(rc, list_work, json_pack("{s:I,s:I}", "limit", (json_int_t)limit,
                                                        "before", (json_int_t)before));
    if (org != NULL)
        bg_strlcpy(((bg_actor *)job->state)->org, org, BG_UUID_LEN + 1);
    bg_gw_job_submit(rc, job);
}

/* ---- cancel, replay ---- */

static void cancel_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *status = NULL;
    bg_err e = bg_pipeline_assembly_cancel(job->node, reg, job->state, in_str(job, "id"), &status, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, status);
}

void bg_h_assemblies_cancel(bg_reqctx *rc)
{
    const char *id = assembly_param(rc, "id");
    if (id != NULL)
        bg_gw_job_submit(rc, media_job(rc, cancel_work, json_pack("{s:s}", "id", id)));
}

static void replay_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *status = NULL;
    bg_err e = bg_pipeline_assembly_replay(job->node, reg, job->state, in_str(job, "id"), &status, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 202, status);
}

void bg_h_assemblies_replay(bg_reqctx *rc)
{
    const char *id = assembly_param(rc, "id");
    if (id != NULL)
        bg_gw_job_submit(rc, media_job(rc, replay_work, json_pack("{s:s}", "id", id)));
}

/* ---- downloads ---- */

static void file_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    char path[4200], mime[64];
    bg_err e = bg_pipeline_result_file(job->node, reg, job->state, in_str(job, "id"),
                                       in_str(job, "step"), in_str(job, "name"), path,
                                       sizeof(path), mime, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, json_pack("{s:s,s:s}", "path", path, "mime", mime));
}

/* The result file, streamed from the loop thread in 64 KiB reads (the way
 * h2o's own file handler serves files: page-cache reads, one h2o_send per
 * proceed), with a single byte Range honoured. */
#define FILE_CHUNK (64u << 10)

typedef struct file_gen {
    h2o_generator_t super;
    int fd;
    uint64_t off, left;
    char *buf;
} file_gen;

static void file_gen_dispose(void *p)
{
    file_gen *g = p;
    if (g->fd >= 0)
        close(g->fd);
    free(g->buf);
}

static void file_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    file_gen *g = (file_gen *)self;
    size_t want = g->left < FILE_CHUNK ? (size_t)g->left : FILE_CHUNK;
    ssize_t r = pread(g->fd, g->buf, want, (off_t)g->off);
    if (r <= 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    g->off += (uint64_t)r;
    g->left -= (uint64_t)r;
    h2o_iovec_t v = h2o_iovec_init(g->buf, (size_t)r);
    h2o_send(req, &v, 1, g->left == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void file_stop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)self;
    (void)req;
}

static void send_file(bg_reqctx *rc, const char *path, const char *mime)
{
    h2o_req_t *req = rc->req;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        bg_gw_error(rc, 404, "FILE_NOT_FOUND", "no such result file");
        return;
    }
    uint64_t size = (uint64_t)st.st_size, start = 0, count = size;
    int status = 200;
    char hdr[96];
    ssize_t ri = h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1);
    if (ri >= 0) {
        h2o_iovec_t v = req->headers.entries[ri].value;
        bg_err e = bg_parse_range(v.base, v.len, size, &start, &count);
        if (e == BG_EINVAL) {
            close(fd);
            snprintf(hdr, sizeof(hdr), "bytes */%llu", (unsigned long long)size);
            bg_gw_header(rc, "content-range", hdr);
            bg_gw_error(rc, 416, "RANGE_NOT_SATISFIABLE", "the range is outside the file");
            return;
        }
        if (e == BG_OK) {
            status = 206;
            snprintf(hdr, sizeof(hdr), "bytes %llu-%llu/%llu", (unsigned long long)start,
                     (unsigned long long)(start + count - 1), (unsigned long long)size);
            bg_gw_header(rc, "content-range", hdr);
        } else {
            start = 0;
            count = size;
        }
    }
    file_gen *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), file_gen_dispose);
    memset(g, 0, sizeof(*g));
    g->fd = fd;
    g->off = start;
    g->left = count;
    g->buf = bg_xmalloc(FILE_CHUNK);
    g->super.proceed = file_proceed;
    g->super.stop = file_stop;
    bg_gw_header(rc, "accept-ranges", "bytes");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mime, strlen(mime));
    bg_gw_mark_response(rc, status);
    req->res.status = status;
    req->res.reason = bg_gw_reason(status);
    req->res.content_length = (size_t)count;
    h2o_start_response(req, &g->super);
    if (count == 0 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    file_proceed(&g->super, req);
}

static void file_reply(bg_reqctx *rc, bg_gw_job *job)
{
    if (job->err != BG_OK) {
        bg_gw_fail(rc, job->err, job->err_code, "%s", job->err_msg);
        return;
    }
    const char *mime = json_string_value(json_object_get(job->out, "mime"));
    h2o_iovec_t p = h2o_strdup(&rc->req->pool, json_string_value(json_object_get(job->out, "path")), SIZE_MAX);
    h2o_iovec_t m = h2o_strdup(&rc->req->pool, mime && mime[0] ? mime : "application/octet-stream", SIZE_MAX);
    send_file(rc, p.base, m.base);
}

void bg_h_files_get(bg_reqctx *rc)
{
    const char *branch = bg_gw_param(rc, "branch");
    const char *id = bg_gw_param(rc, "assembly_id");
    const char *step = bg_gw_param(rc, "step");
    const char *name = bg_gw_param(rc, "name");
    char sane[256];
    if (branch == NULL || strcmp(branch, rc->gw->cfg->branch_name) != 0 || id == NULL ||
        !bg_assembly_id_valid(id) || step == NULL || !bg_str_is_ident(step, strlen(step), 64, "-_") ||
        name == NULL || bg_tus_sanitize_name(name, strlen(name), sane, sizeof(sane)) != BG_OK ||
        strcmp(sane, name) != 0) {
        bg_gw_error(rc, 404, "FILE_NOT_FOUND", "no such result file");
        return;
    }
    bg_gw_job *job = media_job(rc, file_work, json_pack("{s:s,s:s,s:s}", "id", id, "step", step,
                                                        "name", name));
    job->reply = file_reply;
    bg_gw_job_submit(rc, job);
}

/* ---- dead letters ---- */

static void jobs_list_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *out = NULL;
    const char *state = in_str(job, "state");
    bg_err e = bg_pipeline_jobs_list(job->node, reg, state, json_integer_value(json_object_get(job->in, "after")),
                                     (size_t)json_integer_value(json_object_get(job->in, "limit")), &out, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, out);
}

void bg_h_jobs_list(bg_reqctx *rc)
{
    static const char *const states[] = {"queued", "running", "done", "failed", "dead", "canceled"};
    int64_t limit, after = 0;
    const char *cursor;
    size_t len;
    if (!bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && bg_parse_i64(cursor, strlen(cursor), 0, INT64_MAX, &after) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not valid");
        return;
    }
    const char *state = bg_gw_query(rc, "state", &len);
    bool known = state == NULL;
    for (size_t i = 0; !known && i < sizeof(states) / sizeof(states[0]); i++)
        known = strcmp(state, states[i]) == 0;
    if (!known) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER",
                    "state must be queued, running, done, failed, dead or canceled");
        return;
    }
    json_t *in = json_pack("{s:I,s:I}", "limit", (json_int_t)limit, "after", (json_int_t)after);
    if (state != NULL)
        json_object_set_new(in, "state", json_string(state));
    bg_gw_job_submit(rc, media_job(rc, jobs_list_work, in));
}

static void requeue_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    json_t *out = NULL;
    bg_err e = bg_pipeline_job_requeue(job->node, reg,
                                       json_integer_value(json_object_get(job->in, "id")),
                                       job->actor, job->request_id, &out, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    else
        bg_gw_job_ok(job, 200, out);
}

void bg_h_jobs_requeue(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    int64_t v;
    if (id == NULL || bg_parse_i64(id, strlen(id), 1, INT64_MAX, &v) != BG_OK) {
        bg_gw_error(rc, 404, "JOB_NOT_FOUND", "no such job");
        return;
    }
    bg_gw_job_submit(rc, media_job(rc, requeue_work, json_pack("{s:I}", "id", (json_int_t)v)));
}
