/* gateway/handlers/branches.c — the peer-branch admin API. */
#include <stdio.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

/* Optional ?organization_id= scope for name lookups. Sends 400 itself. */
static bool org_scope(bg_reqctx *rc, const char **org)
{
    size_t len;
    *org = bg_gw_query(rc, "organization_id", &len);
    if (*org != NULL && !bg_uuid_valid(*org, len)) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "organization_id must be a UUID");
        return false;
    }
    return true;
}

/* The {name} path parameter, validated. Sends 404 itself. */
static const char *branch_name(bg_reqctx *rc)
{
    const char *name = bg_gw_param(rc, "name");
    if (name == NULL || !bg_str_is_ident(name, strlen(name), 63, "-_.")) {
        bg_gw_error(rc, 404, "BRANCH_NOT_FOUND", "no such branch");
        return NULL;
    }
    return name;
}

/* Job input {"name","org"?,...} for name-addressed routes. */
static json_t *name_input(const char *name, const char *org)
{
    json_t *in = json_pack("{s:s}", "name", name);
    if (org != NULL)
        json_object_set_new(in, "org", json_string(org));
    return in;
}

static const char *in_str(const bg_gw_job *job, const char *key)
{
    return json_string_value(json_object_get(job->in, key));
}

/* Worker: loads the named branch or fails the job with the right code. */
static bool load_branch(bg_gw_job *job, bg_registry *reg, bg_branch *b)
{
    bg_err e = bg_registry_branch_get(reg, in_str(job, "org"), in_str(job, "name"), b);
    if (e == BG_OK)
        return true;
    if (e == BG_ENOTFOUND)
        bg_gw_job_fail(job, e, "BRANCH_NOT_FOUND", "no branch named '%s'", in_str(job, "name"));
    else if (e == BG_ECONFLICT)
        bg_gw_job_fail(job, e, "BRANCH_AMBIGUOUS",
                       "several organisations have a branch with that name; pass organization_id");
    else
        bg_gw_job_fail(job, e, NULL, "cannot read branches: %s", bg_registry_errmsg(reg));
    return false;
}

/* ---- list ---- */

static void list_work(bg_gw_job *job, bg_registry *reg)
{
    int64_t after = json_integer_value(json_object_get(job->in, "after"));
    int64_t limit = json_integer_value(json_object_get(job->in, "limit"));
    const char *org = in_str(job, "org");
    bg_branch *list = NULL;
    size_t n = 0;
    bg_err e = bg_registry_branch_list(reg, org, true, after, (size_t)limit + 1, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot list branches: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, bg_node_branch_json(&list[i]));
    json_t *out = json_pack("{s:o}", "branches", arr);
    if (n > (size_t)limit) {
        char cursor[24];
        snprintf(cursor, sizeof(cursor), "%lld", (long long)list[shown - 1].id);
        json_object_set_new(out, "next_cursor", json_string(cursor));
    }
    bg_registry_branch_free(list, n);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_branches_list(bg_reqctx *rc)
{
    int64_t limit, after = 0;
    const char *cursor, *org;
    if (!bg_gw_page_params(rc, &limit, &cursor) || !org_scope(rc, &org))
        return;
    if (cursor != NULL && bg_parse_i64(cursor, strlen(cursor), 1, INT64_MAX, &after) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not one this server issued");
        return;
    }
    json_t *in = json_pack("{s:I,s:I}", "after", (json_int_t)after, "limit", (json_int_t)limit);
    if (org != NULL)
        json_object_set_new(in, "org", json_string(org));
    bg_gw_job_submit(rc, bg_gw_job_new(rc, list_work, in));
}

/* ---- register ---- */

static void register_work(bg_gw_job *job, bg_registry *reg)
{
    bg_branch_input in = {
        .name = in_str(job, "branch_name"),
        .url = in_str(job, "branch_url"),
        .type = in_str(job, "branch_type"),
        .api_key = in_str(job, "api_key"),
        .organization_id = in_str(job, "organization_id"),
        .ssl_certificate = in_str(job, "ssl_certificate"),
        .spki_pin = in_str(job, "spki_pin"),
    };
    bg_branch b;
    bg_node_err ne = {0};
    bg_err e = bg_node_branch_register(job->node, reg, &in, job->actor, job->request_id, &b, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 201, bg_node_branch_json(&b));
    bg_registry_branch_clear(&b);
}

void bg_h_branches_create(bg_reqctx *rc)
{
    static const struct {
        const char *key;
        bool required;
        size_t max;
    } fields[] = {{"branch_name", true, 63},          {"branch_url", true, 511},
                  {"branch_type", true, 15},          {"api_key", true, BG_PEER_KEY_MAX},
                  {"organization_id", false, 36},     {"ssl_certificate", false, 65536},
                  {"spki_pin", false, 127}};
    json_t *in = json_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v;
        bg_json_err je;
        bg_err e = bg_json_get_str(rc->body, fields[i].key, fields[i].required, 0, fields[i].max,
                                   &v, &je);
        if (e == BG_EINVAL) {
            json_decref(in);
            bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
            return;
        }
        if (e == BG_OK)
            json_object_set_new(in, fields[i].key, json_string(v));
    }
    bg_gw_job_submit(rc, bg_gw_job_new(rc, register_work, in));
}

/* ---- read, update, deactivate ---- */

static void get_work(bg_gw_job *job, bg_registry *reg)
{
    bg_branch b;
    if (!load_branch(job, reg, &b))
        return;
    bg_gw_job_ok(job, 200, bg_node_branch_json(&b));
    bg_registry_branch_clear(&b);
}

void bg_h_branches_get(bg_reqctx *rc)
{
    const char *org, *name = branch_name(rc);
    if (name == NULL || !org_scope(rc, &org))
        return;
    bg_gw_job_submit(rc, bg_gw_job_new(rc, get_work, name_input(name, org)));
}

static void update_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *active = json_object_get(job->in, "is_active");
    bg_branch_patch p = {
        .url = in_str(job, "branch_url"),
        .type = in_str(job, "branch_type"),
        .api_key = in_str(job, "api_key"),
        .ssl_certificate = in_str(job, "ssl_certificate"),
        .spki_pin = in_str(job, "spki_pin"),
        .is_active = active ? json_is_true(active) : -1,
    };
    bg_branch b;
    bg_node_err ne = {0};
    bg_err e = bg_node_branch_update(job->node, reg, in_str(job, "org"), in_str(job, "name"), &p,
                                     job->actor, job->request_id, &b, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 200, bg_node_branch_json(&b));
    bg_registry_branch_clear(&b);
}

void bg_h_branches_patch(bg_reqctx *rc)
{
    static const struct {
        const char *key;
        size_t max;
    } fields[] = {{"branch_url", 511},        {"branch_type", 15}, {"api_key", BG_PEER_KEY_MAX},
                  {"ssl_certificate", 65536}, {"spki_pin", 127}};
    const char *org, *name = branch_name(rc);
    if (name == NULL || !org_scope(rc, &org))
        return;
    json_t *in = name_input(name, org);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v;
        bg_json_err je;
        bg_err e = bg_json_get_str(rc->body, fields[i].key, false, 0, fields[i].max, &v, &je);
        if (e == BG_EINVAL) {
            json_decref(in);
            bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
            return;
        }
        if (e == BG_OK)
            json_object_set_new(in, fields[i].key, json_string(v));
    }
    bool active;
    bg_json_err je;
    bg_err e = bg_json_get_bool(rc->body, "is_active", false, &active, &je);
    if (e == BG_EINVAL) {
        json_decref(in);
        bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
        return;
    }
    if (e == BG_OK)
        json_object_set_new(in, "is_active", json_boolean(active));
    bg_gw_job_submit(rc, bg_gw_job_new(rc, update_work, in));
}

void bg_h_branches_delete(bg_reqctx *rc)
{
    const char *org, *name = branch_name(rc);
    if (name == NULL || !org_scope(rc, &org))
        return;
    json_t *in = name_input(name, org);
    json_object_set_new(in, "is_active", json_false());
    bg_gw_job_submit(rc, bg_gw_job_new(rc, update_work, in));
}

/* ---- ping and test-communication ----
 * Three stages, none of which blocks a thread on the network: a worker
 * loads the branches and decrypts their keys, the loop fans the health
 * calls out through the peer thread, and a worker records the answers. */

typedef struct ping_flow {
    bg_branch *list;
    size_t n;
    bool single; /* answer one result object, not {"results":[...]} */
    bg_peer_request *reqs;
    bg_peer_result *res; /* the fan-out's, valid while the job lives */
} ping_flow;

static void ping_flow_free(void *p)
{
    ping_flow *f = p;
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n && f->reqs != NULL; i++)
        bg_peer_target_clear(&f->reqs[i].target);
    free(f->reqs);
    bg_registry_branch_free(f->list, f->n);
    free(f);
}

static void ping_record_work(bg_gw_job *job, bg_registry *reg)
{
    ping_flow *f = job->state;
    json_t *arr = json_array();
    for (size_t i = 0; i < f->n; i++)
        json_array_append_new(arr, bg_node_ping_record(job->node, reg, &f->list[i], BG_OK, &f->res[i]));
    if (f->single) {
        bg_gw_job_ok(job, 200, json_incref(json_array_get(arr, 0)));
        json_decref(arr);
    } else {
        bg_gw_job_ok(job, 200, json_pack("{s:o}", "results", arr));
    }
}

static void ping_answers(bg_reqctx *rc, bg_gw_job *job, bg_peer_result *res, size_t n)
{
    (void)n;
    ((ping_flow *)job->state)->res = res;
    bg_gw_job_next(rc, job, ping_record_work, NULL);
}

static void ping_send(bg_reqctx *rc, bg_gw_job *job)
{
    if (job->err != BG_OK) {
        bg_gw_fail(rc, job->err, job->err_code, "%s", job->err_msg);
        return;
    }
    ping_flow *f = job->state;
    bg_gw_job_peers(rc, job, f->reqs, f->n, ping_answers);
}

/* Worker: builds one request per branch in the flow. */
static void ping_prepare(bg_gw_job *job, ping_flow *f)
{
    f->reqs = bg_xcalloc(f->n ? f->n : 1, sizeof(bg_peer_request));
    for (size_t i = 0; i < f->n; i++)
        if (bg_node_ping_request(job->node, &f->list[i], job->request_id, &f->reqs[i]) != BG_OK) {
            bg_gw_job_fail(job, BG_EIO, NULL, "cannot open the stored key of '%s'", f->list[i].name);
            return;
        }
}

static void ping_load_one(bg_gw_job *job, bg_registry *reg)
{
    ping_flow *f = bg_xcalloc(1, sizeof(*f));
    job->state = f;
    job->state_free = ping_flow_free;
    f->single = true;
    f->list = bg_xcalloc(1, sizeof(bg_branch));
    if (!load_branch(job, reg, f->list))
        return;
    f->n = 1;
    ping_prepare(job, f);
}

void bg_h_branches_ping(bg_reqctx *rc)
{
    const char *org, *name = branch_name(rc);
    if (name == NULL || !org_scope(rc, &org))
        return;
    bg_gw_job *job = bg_gw_job_new(rc, ping_load_one, name_input(name, org));
    job->reply = ping_send;
    bg_gw_job_submit(rc, job);
}

static void ping_load_all(bg_gw_job *job, bg_registry *reg)
{
    ping_flow *f = bg_xcalloc(1, sizeof(*f));
    job->state = f;
    job->state_free = ping_flow_free;
    bg_err e = bg_registry_branch_list(reg, NULL, false, 0, 0, &f->list, &f->n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot read branches: %s", bg_registry_errmsg(reg));
        return;
    }
    ping_prepare(job, f);
}

void bg_h_cross_test_communication(bg_reqctx *rc)
{
    bg_gw_job *job = bg_gw_job_new(rc, ping_load_all, NULL);
    job->reply = ping_send;
    bg_gw_job_submit(rc, job);
}

static const char *breaker_name(bg_breaker_state s)
{
    return s == BG_BREAKER_OPEN ? "open" : s == BG_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

static json_t *outbox_json(bg_registry *reg, int64_t branch_id)
{
    bg_outbox_stats *st = NULL;
    size_t n = 0;
    json_t *o = json_pack("{s:i,s:i,s:n,s:n,s:i,s:n}", "depth", 0, "dead", 0,
                          "oldest_pending_age_s", "next_attempt_at", "attempts", 0, "last_error");
    if (bg_registry_outbox_stats(reg, branch_id, &st, &n) == BG_OK && n == 1) {
        char next[32];
        long long now = bg_now_ms();
        bg_format_rfc3339(st->next_attempt_ms / 1000, next);
        json_object_set_new(o, "depth", json_integer(st->depth));
        json_object_set_new(o, "dead", json_integer(st->dead));
        if (st->depth > 0) {
            json_object_set_new(o, "oldest_pending_age_s",
                                json_real((double)(now - st->oldest_created_ms) / 1000.0));
            json_object_set_new(o, "next_attempt_at", json_string(next));
            json_object_set_new(o, "attempts", json_integer(st->attempts));
            if (st->last_error[0])
                json_object_set_new(o, "last_error", json_string(st->last_error));
        }
    }
    free(st);
    return o;
}

static void status_work(bg_gw_job *job, bg_registry *reg)
{
    bg_branch b;
    if (!load_branch(job, reg, &b))
        return;
    char ping[32];
    bg_format_rfc3339(b.last_ping_ms / 1000, ping);
    bg_breaker_state bs = bg_peer_breaker(bg_node_peer_client(job->node), b.id);
    json_t *out = json_pack(
        "{s:s,s:s,s:b,s:b,s:o,s:f,s:I,s:o,s:s,s:o}", "branch_name", b.name, "state", b.state,
        "is_active", b.is_active, "verified", b.verified, "last_ping_at",
        b.last_ping_ms ? json_string(ping) : json_null(), "rtt_ms", (double)b.rtt_us / 1000.0,
        "clock_skew_ms", (json_int_t)b.clock_skew_ms, "last_error",
        b.last_error[0] ? json_string(b.last_error) : json_null(), "breaker", breaker_name(bs),
        "outbox", outbox_json(reg, b.id));
    bg_registry_branch_clear(&b);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_branches_status(bg_reqctx *rc)
{
    const char *org, *name = branch_name(rc);
    if (name == NULL || !org_scope(rc, &org))
        return;
    bg_gw_job_submit(rc, bg_gw_job_new(rc, status_work, name_input(name, org)));
}
