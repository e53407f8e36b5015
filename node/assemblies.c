#define _GNU_SOURCE /* nftw */
/* node/assemblies.c — assemblies: creation with the deterministic id,
 * the Transloadit-style status JSON, cancel, replay, result files. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/orgs.h"
#include "pipeline_internal.h"
#include "proto/assembly.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/sig.h"
#include "proto/template.h"
#include "proto/url.h"

#define MAX_FILES 64
#define FIELDS_MAX (16u << 10)

bool bg_pl_abspath(const bg_node *n, const char *rel, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s/%s", n->data_dir, rel);
    return w > 0 && (size_t)w < cap;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bg_pl_rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bg_err bg_pl_mkdirs(const char *path, bool include_last)
{
    char buf[4200];
    if (bg_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
        return BG_EIO;
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && !(i == len && include_last))
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return BG_EIO;
        buf[i] = c;
    }
    return BG_OK;
}

/* ---- status JSON ---- */

static json_t *time_or_null(long long ms)
{
    if (ms <= 0)
        return json_null();
    char buf[32];
    bg_format_rfc3339(ms / 1000, buf);
    return json_string(buf);
}

static json_t *text_json(const char *text, const char *dflt)
{
    json_t *v = json_loads(text ? text : dflt, 0, NULL);
    return v != NULL ? v : json_loads(dflt, 0, NULL);
}

static const char *ok_of(const char *state)
{
    if (strcmp(state, "uploading") == 0)
        return "ASSEMBLY_UPLOADING";
    if (strcmp(state, "executing") == 0)
        return "ASSEMBLY_EXECUTING";
    if (strcmp(state, "completed") == 0)
        return "ASSEMBLY_COMPLETED";
    if (strcmp(state, "canceled") == 0)
        return "ASSEMBLY_CANCELED";
    return NULL;
}

static const char *message_of(const bg_assembly_row *a)
{
    if (a->message[0])
        return a->message;
    if (strcmp(a->state, "uploading") == 0)
        return "The assembly is waiting for its uploads.";
    if (strcmp(a->state, "executing") == 0)
        return "The assembly is executing.";
    if (strcmp(a->state, "completed") == 0)
        return "The assembly was successfully completed.";
    if (strcmp(a->state, "canceled") == 0)
        return "The assembly was canceled.";
    return "The assembly failed.";
}

static json_t *uploads_json(bg_registry *reg, const char *id)
{
    json_t *arr = json_array();
    bg_upload_row *u = NULL;
    size_t n = 0;
    if (bg_registry_upload_list(reg, id, &u, &n) != BG_OK)
        return arr;
    for (size_t i = 0; i < n; i++) {
        if (!u[i].complete)
            continue;
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:I,s:s,s:s,s:{}}", "id", u[i].id, "name", u[i].filename,
                           "size", (json_int_t)u[i].length, "mime",
                           u[i].mime[0] ? u[i].mime : "application/octet-stream", "md5hash",
                           u[i].md5, "meta"));
    }
    free(u);
    return arr;
}

static json_t *results_json(bg_node *n, bg_registry *reg, const char *id)
{
    json_t *obj = json_object();
    bg_result_row *r = NULL;
    size_t cnt = 0;
    if (bg_registry_result_list(reg, id, &r, &cnt) != BG_OK)
        return obj;
    for (size_t i = 0; i < cnt; i++) {
        json_t *arr = json_object_get(obj, r[i].step);
        if (arr == NULL) {
            arr = json_array();
            json_object_set_new(obj, r[i].step, arr);
        }
        json_t *url = json_null();
        if (r[i].path[0]) {
            char buf[1600];
            snprintf(buf, sizeof(buf), "%s/api/v1/files/%s/%s/%s/%s", bg_node_url(n),
                     n->cfg.branch_name, id, r[i].step, r[i].name);
            url = json_string(buf);
        }
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:I,s:s,s:o,s:s,s:o}", "id", r[i].id, "name", r[i].name,
                           "size", (json_int_t)r[i].size, "mime", r[i].mime, "ssl_url", url,
                           "original_id", r[i].original_id, "meta",
                           text_json(r[i].meta_json, "{}")));
    }
    bg_registry_result_free(r, cnt);
    return obj;
}

static void add_notify(bg_registry *reg, const bg_assembly_row *a, json_t *s)
{
    bg_webhook_row w;
    bg_webhook_attempt *att = NULL;
    size_t natt = 0;
    if (a->notify_url[0] == '\0' ||
        bg_registry_webhook_latest(reg, a->id, &w, &att, &natt) != BG_OK) {
        json_object_set_new(s, "notify_status", json_null());
        json_object_set_new(s, "notify_response_code", json_null());
        return;
    }
    const char *status = w.state;
    if (strcmp(status, "pending") == 0 && w.attempts > 0)
        status = "retrying";
    json_object_set_new(s, "notify_status", json_string(status));
    json_object_set_new(s, "notify_response_code",
                        w.attempts > 0 ? json_integer(w.last_status) : json_null());
    json_t *arr = json_array();
    for (size_t i = 0; i < natt; i++)
        json_array_append_new(arr, json_pack("{s:o,s:i,s:s}", "at", time_or_null(att[i].at_ms),
                                             "status", att[i].status, "error", att[i].error));
    json_object_set_new(s, "notify_attempts", arr);
    free(att);
    free(w.payload);
}

json_t *bg_pl_status_json(bg_node *n, bg_registry *reg, const bg_assembly_row *a)
{
    const char *url = bg_node_url(n);
    const char *branch = n->cfg.branch_name;
    char buf[1600];
    json_t *s = json_object();
    json_object_set_new(s, "assembly_id", json_string(a->id));
    const char *ok = ok_of(a->state);
    if (ok != NULL)
        json_object_set_new(s, "ok", json_string(ok));
    if (strcmp(a->state, "failed") == 0) {
        json_object_set_new(s, "error", json_string(a->error));
        json_object_set_new(s, "step", a->failed_step[0] ? json_string(a->failed_step) : json_null());
        json_object_set_new(s, "retryable", json_boolean(a->retryable));
    }
    json_object_set_new(s, "message", json_string(message_of(a)));
    json_object_set_new(s, "branch", json_string(branch));
    json_object_set_new(s, "organization_id", json_string(a->organization_id));
    json_object_set_new(s, "template_id", json_string(a->template_id));
    json_object_set_new(s, "user", json_pack("{s:s}", "user_id", a->user_id));
    json_object_set_new(s, "fields", text_json(a->fields_json, "{}"));
    json_object_set_new(s, "expected_files", text_json(a->files_json, "[]"));
    json_object_set_new(s, "uploads", uploads_json(reg, a->id));
    json_object_set_new(s, "results", results_json(n, reg, a->id));
    int64_t received = 0;
    bg_registry_assembly_bytes(reg, a->id, &received);
    json_object_set_new(s, "bytes_expected", json_integer(a->bytes_expected));
    json_object_set_new(s, "bytes_received", json_integer(received));
    json_object_set_new(s, "execution_start", time_or_null(a->execution_start_ms));
    double exec = 0, queue = 0;
    if (a->execution_start_ms > 0) {
        long long end = a->execution_end_ms > 0 ? a->execution_end_ms : bg_now_ms();
        exec = (double)(end - a->execution_start_ms) / 1000.0;
        if (a->queued_ms > 0 && a->execution_start_ms >= a->queued_ms)
            queue = (double)(a->execution_start_ms - a->queued_ms) / 1000.0;
    }
    json_object_set_new(s, "execution_duration", json_real(exec));
    json_object_set_new(s, "queue_duration", json_real(queue));
    json_object_set_new(s, "attempts", json_integer(a->attempts));
    json_object_set_new(s, "run", json_integer(a->run));
    json_object_set_new(s, "notify_url", a->notify_url[0] ? json_string(a->notify_url) : json_null());
    add_notify(reg, a, s);
    json_object_set_new(s, "created_at", time_or_null(a->created_ms));
    json_object_set_new(s, "updated_at", time_or_null(a->updated_ms));
    snprintf(buf, sizeof(buf), "%s/api/stream?channel=upload:%s:%s", url, branch, a->id);
    json_object_set_new(s, "update_stream_url", json_string(buf));
    snprintf(buf, sizeof(buf), "%s/api/v1/uploads/", url);
    json_object_set_new(s, "tus_url", json_string(buf));
    snprintf(buf, sizeof(buf), "%s/api/v1/assemblies/%s", url, a->id);
    json_object_set_new(s, "assembly_url", json_string(buf));
    return s;
}

/* ---- transitions (inside the caller's transaction) ---- */

bg_err bg_pl_start_run(bg_node *n, bg_registry *reg, bg_assembly_row *a, long long now)
{
    json_t *tpl = json_loads(a->template_json, 0, NULL);
    json_int_t max = json_integer_value(json_object_get(tpl, "max_attempts"));
    json_decref(tpl);
    bg_job_row j;
    memset(&j, 0, sizeof(j));
    bg_strlcpy(j.assembly_id, a->id, sizeof(j.assembly_id));
    bg_strlcpy(j.organization_id, a->organization_id, sizeof(j.organization_id));
    j.run = a->run + 1;
    bg_strlcpy(j.state, "queued", sizeof(j.state));
    j.max_receive = max > 0 && max <= 100 ? (int)max : (int)n->cfg.jobs_max_receive;
    j.visible_at = now;
    j.created_ms = j.updated_ms = now;
    bg_err e = bg_registry_job_insert(reg, &j);
    if (e != BG_OK)
        return e;
    a->run = j.run;
    a->attempts = 0;
    bg_strlcpy(a->state, "executing", sizeof(a->state));
    a->error[0] = a->message[0] = a->failed_step[0] = '\0';
    a->retryable = false;
    a->queued_ms = now;
    a->execution_start_ms = a->execution_end_ms = 0;
    a->updated_ms = now;
    e = bg_registry_assembly_update(reg, a);
    if (e != BG_OK)
        return e;
    return bg_pl_event(n, reg, a->id, a->organization_id, "assembly:executing",
                       json_pack("{s:i}", "run", a->run));
}

bg_err bg_pl_notify(bg_node *n, bg_registry *reg, const bg_assembly_row *a)
{
    if (a->notify_url[0] == '\0')
        return BG_OK;
    json_t *status = bg_pl_status_json(n, reg, a);
    bg_webhook_row w;
    memset(&w, 0, sizeof(w));
    bg_strlcpy(w.assembly_id, a->id, sizeof(w.assembly_id));
    bg_strlcpy(w.organization_id, a->organization_id, sizeof(w.organization_id));
    snprintf(w.msg_id, sizeof(w.msg_id), "msg_%.64s_%d", a->id, a->run);
    bg_strlcpy(w.url, a->notify_url, sizeof(w.url));
    w.payload = json_dumps(status, JSON_COMPACT);
    json_decref(status);
    w.created_ms = w.next_attempt_ms = bg_now_ms();
    bg_err e = bg_registry_webhook_add(reg, &w);
    free(w.payload);
    if (e == BG_ECONFLICT)
        return BG_OK; /* this run was already announced */
    if (e == BG_OK)
        bg_pl_webhooks_wake(n);
    return e;
}

bg_err bg_pl_fail(bg_node *n, bg_registry *reg, bg_assembly_row *a, const char *code,
                  const char *step, bool retryable, const char *msg)
{
    long long now = bg_now_ms();
    bg_strlcpy(a->state, "failed", sizeof(a->state));
    bg_strlcpy(a->error, code, sizeof(a->error));
    bg_strlcpy(a->message, msg, sizeof(a->message));
    bg_strlcpy(a->failed_step, step ? step : "", sizeof(a->failed_step));
    a->retryable = retryable;
    a->execution_end_ms = a->execution_start_ms > 0 ? now : 0;
    a->updated_ms = now;
    bg_err e = bg_registry_assembly_update(reg, a);
    if (e == BG_OK)
        e = bg_pl_event(n, reg, a->id, a->organization_id, "assembly:failed",
                        json_pack("{s:s,s:s,s:o,s:b}", "error", code, "message", msg, "step",
                                  step && step[0] ? json_string(step) : json_null(), "retryable",
                                  retryable));
    if (e == BG_OK)
        e = bg_pl_notify(n, reg, a);
    return e;
}

/* ---- creation ---- */

/* The template named id for org: bundled first, then shared ones. */
static bg_err find_template(bg_node *n, bg_registry *reg, const char *org, const char *id,
                            json_t **out)
{
    const json_t *bundled = bg_node_templates(n);
    size_t i;
    json_t *t;
    json_array_foreach(bundled, i, t) {
        if (strcmp(json_string_value(json_object_get(t, "id")), id) == 0) {
            *out = json_deep_copy(t);
            return BG_OK;
        }
    }
    bg_shared s;
    bg_err e = bg_registry_shared_get(reg, org, "template", id, bg_now_ms(), &s);
    if (e != BG_OK)
        return e;
    json_t *payload = json_loads(s.payload, 0, NULL);
    free(s.payload);
    char err[200];
    if (!json_is_object(payload) || bg_template_check(payload, NULL, NULL, err, sizeof(err)) != BG_OK) {
        json_decref(payload);
        return BG_EINVAL;
    }
    *out = payload;
    return BG_OK;
}

typedef struct create_in {
    const char *template_id;
    json_t *files; /* normalised [{name,size,md5}] */
    char *fields;
    const char *notify_url;
    int64_t bytes;
    char md5s[MAX_FILES][33];
    size_t nfiles;
    bool all_md5;
} create_in;

static bg_err parse_file(bg_node *n, const json_t *f, size_t i, create_in *in, bg_node_err *ne)
{
    bg_json_err je;
    const char *name, *md5 = NULL;
    int64_t size;
    if (!json_is_object(f))
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "files: every entry must be an object");
    if (bg_json_get_str(f, "name", true, 1, 255, &name, &je) != BG_OK ||
        bg_json_get_int(f, "size", true, 0, n->cfg.uploads_max_size, &size, &je) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", je.message);
    bg_err e = bg_json_get_str(f, "md5", false, 32, 32, &md5, &je);
    if (e == BG_EINVAL)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", je.message);
    char sane[256];
    if (bg_tus_sanitize_name(name, strlen(name), sane, sizeof(sane)) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FILENAME", "files: a name is empty or has control bytes");
    if (md5 != NULL) {
        for (size_t k = 0; k < 32; k++)
            in->md5s[i][k] = (char)(md5[k] >= 'A' && md5[k] <= 'F' ? md5[k] + 32 : md5[k]);
        in->md5s[i][32] = '\0';
        if (!bg_md5_hex_valid(in->md5s[i]))
            return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "files: md5 must be 32 hex digits");
    } else {
        uint8_t nonce[16];
        bg_sig_random(nonce, sizeof(nonce));
        bg_hex_encode(nonce, sizeof(nonce), in->md5s[i]);
        in->all_md5 = false;
    }
    in->bytes += size;
    json_array_append_new(in->files, json_pack("{s:s,s:I,s:o}", "name", name, "size",
                                               (json_int_t)size, "md5",
                                               md5 ? json_string(in->md5s[i]) : json_null()));
    return BG_OK;
}

static bg_err parse_create(bg_node *n, const json_t *body, create_in *in, bg_node_err *ne)
{
    bg_json_err je;
    memset(in, 0, sizeof(*in));
    in->all_md5 = true;
    if (bg_json_get_str(body, "template_id", true, 1, 128, &in->template_id, &je) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", je.message);
    if (!bg_str_is_ident(in->template_id, strlen(in->template_id), 128, "-_."))
        return bg_pl_nerr(ne, BG_ENOTFOUND, "TEMPLATE_NOT_FOUND", "no such template");
    const json_t *files = json_object_get(body, "files");
    if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > MAX_FILES)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "files must be an array of 1 to 64 files");
    in->files = json_array();
    for (size_t i = 0; i < json_array_size(files); i++) {
        bg_err e = parse_file(n, json_array_get(files, i), i, in, ne);
        if (e != BG_OK)
            return e;
        in->nfiles++;
    }
    const json_t *fields = json_object_get(body, "fields");
    if (fields != NULL && !json_is_object(fields))
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "fields must be an object");
    in->fields = fields ? json_dumps(fields, JSON_COMPACT) : bg_xstrdup("{}");
    if (strlen(in->fields) > FIELDS_MAX)
        return bg_pl_nerr(ne, BG_ETOOBIG, "INVALID_FIELD", "fields is larger than 16 KiB");
    bg_err e = bg_json_get_str(body, "notify_url", false, 1, 1000, &in->notify_url, &je);
    if (e == BG_EINVAL)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", je.message);
    char norm[BG_URL_MAX];
    if (in->notify_url != NULL &&
        bg_url_normalize(in->notify_url, strlen(in->notify_url), norm, sizeof(norm)) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "notify_url must be an http(s) URL without query");
    return BG_OK;
}

static void free_create(create_in *in)
{
    json_decref(in->files);
    free(in->fields);
}

/* The organisation of the call: the token's, or for admin tokens the body's
 * organization_id, else "default". */
static bg_err resolve_org(bg_registry *reg, const bg_actor *who, const json_t *body, char *org,
                          bg_node_err *ne)
{
    if (who->org[0]) {
        bg_strlcpy(org, who->org, BG_UUID_LEN + 1);
        return BG_OK;
    }
    const char *id = json_string_value(json_object_get(body, "organization_id"));
    if (id != NULL && !bg_uuid_valid(id, strlen(id)))
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FIELD", "organization_id must be a UUID");
    bg_org o;
    bg_err e = bg_node_org_resolve(reg, id, &o, ne);
    if (e == BG_OK)
        bg_strlcpy(org, o.id, BG_UUID_LEN + 1);
    return e;
}

static bg_err existing(bg_node *n, bg_registry *reg, const char *id, const char *org,
                       json_t **status, bool *found, bg_node_err *ne)
{
    bg_assembly_row a;
    bg_err e = bg_registry_assembly_get(reg, id, NULL, &a);
    *found = e == BG_OK;
    if (e == BG_ENOTFOUND)
        return BG_OK;
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    if (strcmp(a.organization_id, org) != 0) {
        bg_registry_assembly_clear(&a);
        return bg_pl_nerr(ne, BG_ECONFLICT, "ASSEMBLY_EXISTS", "an assembly with this id exists");
    }
    *status = bg_pl_status_json(n, reg, &a);
    bg_registry_assembly_clear(&a);
    return BG_OK;
}

bg_err bg_pipeline_assembly_create(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const json_t *body, json_t **status, bool *created,
                                   bg_node_err *ne)
{
    create_in in;
    char org[BG_UUID_LEN + 1];
    json_t *tpl = NULL;
    bg_err e = parse_create(n, body, &in, ne);
    if (e == BG_OK)
        e = resolve_org(reg, who, body, org, ne);
    if (e == BG_OK) {
        e = find_template(n, reg, org, in.template_id, &tpl);
        if (e != BG_OK)
            e = e == BG_ENOTFOUND || e == BG_EINVAL
                    ? bg_pl_nerr(ne, BG_ENOTFOUND, "TEMPLATE_NOT_FOUND", "no such template")
                    : bg_pl_db_err(ne, reg, e);
    }
    if (e != BG_OK) {
        free_create(&in);
        json_decref(tpl);
        return e;
    }
    const char *md5s[MAX_FILES];
    for (size_t i = 0; i < in.nfiles; i++)
        md5s[i] = in.md5s[i];
    bg_assembly_row a;
    memset(&a, 0, sizeof(a));
    bg_assembly_id(n->cfg.branch_name, md5s, in.nfiles, in.template_id, who->user_id, a.id);
    bool found = false;
    e = existing(n, reg, a.id, org, status, &found, ne);
    if (e == BG_OK && !found) {
        bg_strlcpy(a.organization_id, org, sizeof(a.organization_id));
        bg_strlcpy(a.user_id, who->user_id, sizeof(a.user_id));
        bg_strlcpy(a.template_id, in.template_id, sizeof(a.template_id));
        a.template_json = json_dumps(tpl, JSON_COMPACT);
        bg_strlcpy(a.state, "uploading", sizeof(a.state));
        a.files_json = json_dumps(in.files, JSON_COMPACT);
        a.fields_json = bg_xstrdup(in.fields);
        const char *notify = in.notify_url ? in.notify_url
                                           : json_string_value(json_object_get(tpl, "notify_url"));
        bg_strlcpy(a.notify_url, notify ? notify : "", sizeof(a.notify_url));
        a.bytes_expected = in.bytes;
        a.created_ms = a.updated_ms = bg_now_ms();
        e = bg_registry_assembly_insert(reg, &a);
        if (e == BG_ECONFLICT) /* created concurrently: answer that one */
            e = existing(n, reg, a.id, org, status, &found, ne);
        else if (e != BG_OK)
            e = bg_pl_db_err(ne, reg, e);
        else
            *status = bg_pl_status_json(n, reg, &a);
        bg_registry_assembly_clear(&a);
    }
    *created = !found;
    free_create(&in);
    json_decref(tpl);
    return e;
}

/* ---- reads and changes of one assembly ---- */

static bg_err load(bg_registry *reg, const bg_actor *who, const char *id, bg_assembly_row *a,
                   bg_node_err *ne)
{
    if (!bg_assembly_id_valid(id))
        return bg_pl_nerr(ne, BG_ENOTFOUND, "ASSEMBLY_NOT_FOUND", "no such assembly");
    bg_err e = bg_registry_assembly_get(reg, id, who->all_orgs ? NULL : who->org, a);
    if (e == BG_ENOTFOUND)
        return bg_pl_nerr(ne, e, "ASSEMBLY_NOT_FOUND", "no such assembly");
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    return BG_OK;
}

bg_err bg_pipeline_assembly_status(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne)
{
    bg_assembly_row a;
    bg_err e = load(reg, who, id, &a, ne);
    if (e != BG_OK)
        return e;
    *status = bg_pl_status_json(n, reg, &a);
    bg_registry_assembly_clear(&a);
    return BG_OK;
}

bg_err bg_pipeline_assembly_list(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 int64_t before, size_t limit, json_t **out, bg_node_err *ne)
{
    bg_assembly_row *list = NULL;
    size_t cnt = 0;
    bg_err e = bg_registry_assembly_list(reg, who->all_orgs && !who->org[0] ? NULL : who->org,
                                         before, limit + 1, &list, &cnt);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    json_t *arr = json_array();
    size_t shown = cnt > limit ? limit : cnt;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, bg_pl_status_json(n, reg, &list[i]));
    *out = json_pack("{s:o}", "assemblies", arr);
    if (cnt > limit) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%lld", (long long)list[shown - 1].seq);
        json_object_set_new(*out, "next_cursor", json_string(cur));
    }
    bg_registry_assembly_free(list, cnt);
    return BG_OK;
}

bg_err bg_pipeline_assembly_cancel(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne)
{
    bg_assembly_row a;
    bg_err e = bg_pl_tx_begin(n, reg);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    e = load(reg, who, id, &a, ne);
    if (e != BG_OK) {
        bg_pl_tx_rollback(n, reg);
        return e;
    }
    bool live = strcmp(a.state, "uploading") == 0 || strcmp(a.state, "executing") == 0;
    long long now = bg_now_ms();
    if (live) {
        bg_job_row j;
        if (bg_registry_job_active(reg, a.id, &j) == BG_OK)
            e = bg_registry_job_set(reg, j.id, "canceled", now, "canceled", now);
        bg_strlcpy(a.state, "canceled", sizeof(a.state));
        a.execution_end_ms = a.execution_start_ms > 0 ? now : 0;
        a.updated_ms = now;
        if (e == BG_OK)
            e = bg_registry_assembly_update(reg, &a);
        if (e == BG_OK)
            e = bg_pl_event(n, reg, a.id, a.organization_id, "assembly:canceled", NULL);
    }
    if (e == BG_OK)
        *status = bg_pl_status_json(n, reg, &a);
    if (e == BG_OK && (e = bg_pl_tx_commit(n, reg)) != BG_OK)
        json_decref(*status);
    else if (e != BG_OK)
        bg_pl_tx_rollback(n, reg);
    bg_registry_assembly_clear(&a);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    if (live)
        bg_pl_cancel_running(n, id);
    return BG_OK;
}

/* Removes the outputs of an assembly (files and rows), for a replay. */
static bg_err drop_results(bg_node *n, bg_registry *reg, const char *id)
{
    char rel[512], path[4200];
    snprintf(rel, sizeof(rel), "outputs/%s/%s", n->cfg.branch_name, id);
    if (bg_pl_abspath(n, rel, path, sizeof(path)))
        bg_pl_rmtree(path);
    return bg_registry_result_delete(reg, id);
}

/* Every expected file of the assembly is complete. */
static bool all_uploaded(bg_registry *reg, const bg_assembly_row *a)
{
    json_t *files = json_loads(a->files_json, 0, NULL);
    bg_upload_row *list = NULL;
    size_t cnt = 0, done = 0;
    bool ok = bg_registry_upload_list(reg, a->id, &list, &cnt) == BG_OK;
    for (size_t i = 0; ok && i < cnt; i++)
        done += list[i].complete ? 1 : 0;
    ok = ok && done == json_array_size(files) && done > 0;
    free(list);
    json_decref(files);
    return ok;
}

bg_err bg_pipeline_assembly_replay(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne)
{
    bg_assembly_row a;
    bg_err e = bg_pl_tx_begin(n, reg);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    e = load(reg, who, id, &a, ne);
    if (e != BG_OK) {
        bg_pl_tx_rollback(n, reg);
        return e;
    }
    if (strcmp(a.state, "uploading") == 0 || strcmp(a.state, "executing") == 0 ||
        strcmp(a.error, "MD5_MISMATCH") == 0 || !all_uploaded(reg, &a)) {
        bg_pl_tx_rollback(n, reg);
        bg_registry_assembly_clear(&a);
        return bg_pl_nerr(ne, BG_ECONFLICT, "ASSEMBLY_BUSY",
                    "only a finished, failed or canceled assembly with all its files can be replayed");
    }
    e = drop_results(n, reg, a.id);
    if (e == BG_OK)
        e = bg_pl_start_run(n, reg, &a, bg_now_ms());
    if (e == BG_OK)
        *status = bg_pl_status_json(n, reg, &a);
    if (e == BG_OK && (e = bg_pl_tx_commit(n, reg)) != BG_OK)
        json_decref(*status);
    else if (e != BG_OK)
        bg_pl_tx_rollback(n, reg);
    bg_registry_assembly_clear(&a);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    bg_pl_jobs_wake(n);
    return BG_OK;
}

bg_err bg_pipeline_result_file(bg_node *n, bg_registry *reg, const bg_actor *who,
                               const char *assembly_id, const char *step, const char *name,
                               char *path, size_t cap, char mime[64], bg_node_err *ne)
{
    bg_assembly_row a;
    bg_err e = load(reg, who, assembly_id, &a, ne);
    if (e != BG_OK)
        return e;
    bg_registry_assembly_clear(&a);
    bg_result_row *r = NULL;
    size_t cnt = 0;
    e = bg_registry_result_list(reg, assembly_id, &r, &cnt);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    /* Only a path the registry recorded is served: the request's names are
     * compared, never joined into a path. */
    e = bg_pl_nerr(ne, BG_ENOTFOUND, "FILE_NOT_FOUND", "no such result file");
    for (size_t i = 0; i < cnt; i++) {
        if (r[i].path[0] && strcmp(r[i].step, step) == 0 && strcmp(r[i].name, name) == 0 &&
            bg_pl_abspath(n, r[i].path, path, cap)) {
            bg_strlcpy(mime, r[i].mime, 64);
            e = BG_OK;
            break;
        }
    }
    bg_registry_result_free(r, cnt);
    return e;
}
