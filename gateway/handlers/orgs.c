/* gateway/handlers/orgs.c — organisations, their users, sync and shares
 * (admin), and the receiving cross-branch routes (peer). */
#include <stdio.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/orgs.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

static const char *in_str(const bg_gw_job *job, const char *key)
{
    return json_string_value(json_object_get(job->in, key));
}

/* The {id} path parameter as a UUID; answers 404 itself otherwise. */
static const char *org_param(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    if (id == NULL || !bg_uuid_valid(id, strlen(id))) {
        bg_gw_error(rc, 404, "ORGANIZATION_NOT_FOUND", "no such organization");
        return NULL;
    }
    return id;
}

/* Copies optional/required string fields of the body into the job input;
 * answers 400 itself on a bad one. */
typedef struct field {
    const char *key;
    bool required;
    size_t max;
} field;

static bool copy_fields(bg_reqctx *rc, json_t *in, const field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v;
        bg_json_err je;
        bg_err e = bg_json_get_str(rc->body, f[i].key, f[i].required, 0, f[i].max, &v, &je);
        if (e == BG_EINVAL) {
            bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
            return false;
        }
        if (e == BG_OK)
            json_object_set_new(in, f[i].key, json_string(v));
    }
    return true;
}

static void submit(bg_reqctx *rc, bg_gw_work_fn work, json_t *in)
{
    bg_gw_job_submit(rc, bg_gw_job_new(rc, work, in));
}

/* ---- organisations ---- */

static void org_list_work(bg_gw_job *job, bg_registry *reg)
{
    int64_t limit = json_integer_value(json_object_get(job->in, "limit"));
    bg_org *list = NULL;
    size_t n = 0;
    bg_err e = bg_registry_org_list(reg, in_str(job, "after"), (size_t)limit + 1, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot list organizations: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, bg_node_org_json(&list[i], NULL));
    json_t *out = json_pack("{s:o}", "organizations", arr);
    if (n > (size_t)limit)
        json_object_set_new(out, "next_cursor", json_string(list[shown - 1].id));
    free(list);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_orgs_list(bg_reqctx *rc)
{
    int64_t limit;
    const char *cursor;
    if (!bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && !bg_uuid_valid(cursor, strlen(cursor))) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not one this server issued");
        return;
    }
    json_t *in = json_pack("{s:I}", "limit", (json_int_t)limit);
    if (cursor != NULL)
        json_object_set_new(in, "after", json_string(cursor));
    submit(rc, org_list_work, in);
}

static void org_create_work(bg_gw_job *job, bg_registry *reg)
{
    bg_org_input in = {in_str(job, "name"), in_str(job, "parent_id"), in_str(job, "home_branch")};
    bg_org o;
    char secret[BG_WEBHOOK_SECRET_MAX + 1];
    bg_node_err ne = {0};
    bg_err e = bg_node_org_create(job->node, reg, &in, job->actor, job->request_id, &o, secret, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 201, bg_node_org_json(&o, secret));
    bg_sig_wipe(secret, sizeof(secret));
}

void bg_h_orgs_create(bg_reqctx *rc)
{
    static const field f[] = {{"name", true, 200}, {"parent_id", false, 36}, {"home_branch", false, 63}};
    json_t *in = json_object();
    if (!copy_fields(rc, in, f, 3)) {
        json_decref(in);
        return;
    }
    submit(rc, org_create_work, in);
}

static void org_get_work(bg_gw_job *job, bg_registry *reg)
{
    bg_org o;
    bg_node_err ne = {0};
    bg_err e = bg_node_org_resolve(reg, in_str(job, "id"), &o, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    char secret[BG_WEBHOOK_SECRET_MAX + 1];
    bg_node_org_secret(job->node, &o, secret);
    bg_gw_job_ok(job, 200, bg_node_org_json(&o, secret));
    bg_sig_wipe(secret, sizeof(secret));
}

void bg_h_orgs_get(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    if (id != NULL)
        submit(rc, org_get_work, json_pack("{s:s}", "id", id));
}

static void org_patch_work(bg_gw_job *job, bg_registry *reg)
{
    bg_org o;
    bg_node_err ne = {0};
    json_t *parent = json_object_get(job->in, "parent_id");
    bg_err e = bg_node_org_update(job->node, reg, in_str(job, "id"), in_str(job, "name"),
                                  parent ? (json_is_null(parent) ? "" : json_string_value(parent)) : NULL,
                                  job->actor, job->request_id, &o, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 200, bg_node_org_json(&o, NULL));
}

void bg_h_orgs_patch(bg_reqctx *rc)
{
    static const field f[] = {{"name", false, 200}};
    const char *id = org_param(rc);
    if (id == NULL)
        return;
    json_t *in = json_pack("{s:s}", "id", id);
    if (!copy_fields(rc, in, f, 1)) {
        json_decref(in);
        return;
    }
    json_t *parent = json_object_get(rc->body, "parent_id");
    if (parent != NULL && !json_is_null(parent) && !json_is_string(parent)) {
        json_decref(in);
        bg_gw_error(rc, 400, "INVALID_FIELD", "parent_id must be a UUID or null");
        return;
    }
    if (parent != NULL)
        json_object_set(in, "parent_id", parent);
    submit(rc, org_patch_work, in);
}

static void org_secret_work(bg_gw_job *job, bg_registry *reg)
{
    char secret[BG_WEBHOOK_SECRET_MAX + 1];
    bg_node_err ne = {0};
    bg_err e = bg_node_org_rotate_secret(job->node, reg, in_str(job, "id"), job->actor,
                                         job->request_id, secret, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 200, json_pack("{s:s}", "webhook_secret", secret));
    bg_sig_wipe(secret, sizeof(secret));
}

void bg_h_orgs_rotate_secret(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    if (id != NULL)
        submit(rc, org_secret_work, json_pack("{s:s}", "id", id));
}

/* ---- users ---- */

static void user_list_work(bg_gw_job *job, bg_registry *reg)
{
    int64_t limit = json_integer_value(json_object_get(job->in, "limit"));
    bg_org o;
    bg_node_err ne = {0};
    bg_err e = bg_node_org_resolve(reg, in_str(job, "id"), &o, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_user *list = NULL;
    size_t n = 0;
    e = bg_registry_user_list(reg, o.id, in_str(job, "after"), (size_t)limit + 1, false, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot list users: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, bg_node_user_json(&list[i]));
    json_t *out = json_pack("{s:o}", "users", arr);
    if (n > (size_t)limit)
        json_object_set_new(out, "next_cursor", json_string(list[shown - 1].id));
    free(list);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_users_list(bg_reqctx *rc)
{
    int64_t limit;
    const char *cursor, *id = org_param(rc);
    if (id == NULL || !bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && !bg_uuid_valid(cursor, strlen(cursor))) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not one this server issued");
        return;
    }
    json_t *in = json_pack("{s:s,s:I}", "id", id, "limit", (json_int_t)limit);
    if (cursor != NULL)
        json_object_set_new(in, "after", json_string(cursor));
    submit(rc, user_list_work, in);
}

static void user_create_work(bg_gw_job *job, bg_registry *reg)
{
    bg_user_input in = {in_str(job, "email"), in_str(job, "name"), in_str(job, "password"),
                        in_str(job, "role"), in_str(job, "home_branch")};
    bg_user u;
    bg_node_err ne = {0};
    bg_err e = bg_node_user_create(job->node, reg, in_str(job, "id"), &in, job->actor,
                                   job->request_id, &u, &ne);
    /* The password is not needed any more, whatever happened. */
    json_object_del(job->in, "password");
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 201, bg_node_user_json(&u));
}

void bg_h_users_create(bg_reqctx *rc)
{
    /* Generous caps here: the node's checks give the specific codes. */
    static const field f[] = {{"email", true, 1024},  {"name", true, 1024},
                              {"password", true, 4096}, {"role", false, 64},
                              {"home_branch", false, 256}};
    const char *id = org_param(rc);
    if (id == NULL)
        return;
    json_t *in = json_pack("{s:s,s:s}", "id", id, "role", "member");
    if (!copy_fields(rc, in, f, 5)) {
        json_decref(in);
        return;
    }
    submit(rc, user_create_work, in);
}

static void user_get_work(bg_gw_job *job, bg_registry *reg)
{
    bg_user u;
    /* Scoped by the organisation of the path: a user of another
     * organisation is simply not found. */
    bg_err e = bg_registry_user_get(reg, in_str(job, "id"), in_str(job, "user_id"), false, &u);
    if (e == BG_ENOTFOUND) {
        bg_gw_job_fail(job, e, "USER_NOT_FOUND", "no such user in the organization");
        return;
    }
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot read the user: %s", bg_registry_errmsg(reg));
        return;
    }
    bg_gw_job_ok(job, 200, bg_node_user_json(&u));
}

static const char *user_param(bg_reqctx *rc)
{
    const char *uid = bg_gw_param(rc, "user_id");
    if (uid == NULL || !bg_uuid_valid(uid, strlen(uid))) {
        bg_gw_error(rc, 404, "USER_NOT_FOUND", "no such user in the organization");
        return NULL;
    }
    return uid;
}

void bg_h_users_get(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    const char *uid = id ? user_param(rc) : NULL;
    if (uid != NULL)
        submit(rc, user_get_work, json_pack("{s:s,s:s}", "id", id, "user_id", uid));
}

static void user_delete_work(bg_gw_job *job, bg_registry *reg)
{
    bg_node_err ne = {0};
    bg_err e = bg_node_user_delete(job->node, reg, in_str(job, "id"), in_str(job, "user_id"),
                                   job->actor, job->request_id, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 204, NULL);
}

void bg_h_users_delete(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    const char *uid = id ? user_param(rc) : NULL;
    if (uid != NULL)
        submit(rc, user_delete_work, json_pack("{s:s,s:s}", "id", id, "user_id", uid));
}

/* ---- sync, resync, share ---- */

static bool branch_list(bg_reqctx *rc, json_t *in)
{
    json_t *b = json_object_get(rc->body, "branches");
    if (!json_is_array(b) || json_array_size(b) == 0 || json_array_size(b) > 100) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "branches must be a list of 1-100 branch names");
        return false;
    }
    json_object_set(in, "branches", b);
    return true;
}

static void sync_work(bg_gw_job *job, bg_registry *reg)
{
    size_t queued = 0;
    bg_node_err ne = {0};
    bg_err e = bg_node_org_sync(job->node, reg, in_str(job, "id"), json_object_get(job->in, "branches"),
                                job->actor, job->request_id, &queued, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 202, json_pack("{s:I}", "queued", (json_int_t)queued));
}

void bg_h_orgs_sync(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    if (id == NULL)
        return;
    json_t *in = json_pack("{s:s}", "id", id);
    if (!branch_list(rc, in)) {
        json_decref(in);
        return;
    }
    submit(rc, sync_work, in);
}

static void share_work(bg_gw_job *job, bg_registry *reg)
{
    size_t queued = 0;
    bg_node_err ne = {0};
    json_t *resource = json_object_get(job->in, "resource");
    bg_err e = bg_node_org_share(job->node, reg, in_str(job, "id"), json_object_get(job->in, "branches"),
                                 resource, job->actor, job->request_id, &queued, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 202, json_pack("{s:I}", "queued", (json_int_t)queued));
}

void bg_h_orgs_share(bg_reqctx *rc)
{
    const char *id = org_param(rc);
    if (id == NULL)
        return;
    json_t *in = json_pack("{s:s}", "id", id);
    if (!branch_list(rc, in)) {
        json_decref(in);
        return;
    }
    json_t *resource = json_deep_copy(rc->body);
    json_object_del(resource, "branches");
    json_object_del(resource, "organization_id");
    json_object_set_new(in, "resource", resource);
    submit(rc, share_work, in);
}

static void resync_work(bg_gw_job *job, bg_registry *reg)
{
    bg_branch b;
    bg_err e = bg_registry_branch_get(reg, NULL, in_str(job, "name"), &b);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, e == BG_ENOTFOUND ? "BRANCH_NOT_FOUND" : NULL, "no such branch");
        return;
    }
    size_t queued = 0;
    bg_node_err ne = {0};
    e = bg_node_branch_resync(job->node, reg, &b, job->actor, job->request_id, &queued, &ne);
    bg_registry_branch_clear(&b);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 202, json_pack("{s:I}", "queued", (json_int_t)queued));
}

void bg_h_branches_resync(bg_reqctx *rc)
{
    const char *name = bg_gw_param(rc, "name");
    if (name == NULL || !bg_str_is_ident(name, strlen(name), 63, "-_.")) {
        bg_gw_error(rc, 404, "BRANCH_NOT_FOUND", "no such branch");
        return;
    }
    submit(rc, resync_work, json_pack("{s:s}", "name", name));
}

/* ---- receiving (peer) ---- */

typedef bg_err (*receive_fn)(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                             const char *idem_key, json_t *body, int *status, json_t **resp,
                             bg_node_err *e);

typedef struct recv_input {
    bg_peer_identity peer;
    receive_fn fn;
} recv_input;

static void receive_work(bg_gw_job *job, bg_registry *reg)
{
    recv_input *ri = job->state;
    int status = 200;
    json_t *resp = NULL;
    bg_node_err ne = {0};
    bg_err e = ri->fn(job->node, reg, &ri->peer, in_str(job, "key"), json_object_get(job->in, "body"),
                      &status, &resp, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, status, resp);
}

static void receive(bg_reqctx *rc, receive_fn fn)
{
    h2o_req_t *req = rc->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    json_t *in = json_pack("{s:O}", "body", rc->body);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (!bg_str_is_ident(v.base, v.len, 128, "-_.:")) {
            json_decref(in);
            bg_gw_error(rc, 400, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be 1-128 of "
                                                            "[A-Za-z0-9._:-]");
            return;
        }
        json_object_set_new(in, "key", json_stringn(v.base, v.len));
    }
    bg_gw_job *job = bg_gw_job_new(rc, receive_work, in);
    recv_input *ri = bg_xcalloc(1, sizeof(*ri));
    ri->peer = rc->peer;
    ri->fn = fn;
    job->state = ri;
    job->state_free = free;
    bg_gw_job_submit(rc, job);
}

void bg_h_cross_sync_org(bg_reqctx *rc)
{
    receive(rc, bg_node_sync_receive);
}

void bg_h_cross_share(bg_reqctx *rc)
{
    receive(rc, bg_node_share_receive);
}

/* ---- templates shared with an organisation ---- */

static json_t *template_json(const bg_shared *s)
{
    json_t *payload = json_loads(s->payload, 0, NULL);
    json_t *o = json_is_object(payload) ? payload : json_object();
    json_object_set_new(o, "id", json_string(s->resource_id));
    json_object_set_new(o, "organization_id", json_string(s->organization_id));
    json_object_set_new(o, "shared_by", json_string(s->from_branch));
    return o;
}

static void templates_work(bg_gw_job *job, bg_registry *reg)
{
    bg_org o;
    bg_node_err ne = {0};
    bg_err e = bg_node_org_resolve(reg, in_str(job, "org"), &o, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    const char *id = in_str(job, "template");
    long long now = bg_now_ms();
    const json_t *bundled = bg_node_templates(job->node);
    size_t bi;
    json_t *bt;
    if (id != NULL) {
        json_array_foreach(bundled, bi, bt) if (strcmp(json_string_value(json_object_get(bt, "id")), id) == 0)
        {
            json_t *copy = json_deep_copy(bt);
            json_object_set_new(copy, "bundled", json_true());
            bg_gw_job_ok(job, 200, copy);
            return;
        }
        bg_shared s;
        e = bg_registry_shared_get(reg, o.id, "template", id, now, &s);
        if (e != BG_OK) {
            bg_gw_job_fail(job, e, e == BG_ENOTFOUND ? "TEMPLATE_NOT_FOUND" : NULL, "no such template");
            return;
        }
        bg_gw_job_ok(job, 200, template_json(&s));
        free(s.payload);
        return;
    }
    bg_shared *list = NULL;
    size_t n = 0;
    e = bg_registry_shared_list(reg, o.id, "template", now, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot list templates: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    json_array_foreach(bundled, bi, bt) {
        json_t *copy = json_deep_copy(bt);
        json_object_set_new(copy, "bundled", json_true());
        json_array_append_new(arr, copy);
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, template_json(&list[i]));
    bg_registry_shared_free(list, n);
    bg_gw_job_ok(job, 200, json_pack("{s:o}", "templates", arr));
}

static void templates(bg_reqctx *rc, const char *template_id)
{
    size_t len;
    /* A user sees the templates of the organisation in their token; an
     * admin names one (default: the default organisation). */
    const char *org = rc->is_user ? rc->user.org : bg_gw_query(rc, "organization_id", &len);
    if (org != NULL && !rc->is_user && !bg_uuid_valid(org, len)) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "organization_id must be a UUID");
        return;
    }
    json_t *in = json_object();
    if (org != NULL)
        json_object_set_new(in, "org", json_string(org));
    if (template_id != NULL)
        json_object_set_new(in, "template", json_string(template_id));
    submit(rc, templates_work, in);
}

void bg_h_templates_list(bg_reqctx *rc)
{
    templates(rc, NULL);
}

void bg_h_templates_get(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    if (id == NULL || !bg_str_is_ident(id, strlen(id), 128, "-_.")) {
        bg_gw_error(rc, 404, "TEMPLATE_NOT_FOUND", "no such template");
        return;
    }
    templates(rc, id);
}
