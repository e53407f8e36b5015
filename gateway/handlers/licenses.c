/* gateway/handlers/licenses.c — issuing, reading, revoking and validating
 * licenses. A master's validation that needs the top runs in three stages
 * (worker, peer fan-out, worker) and blocks no thread. */
#include <stdlib.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/licenses.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"

static const char *license_param(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    if (id == NULL || !bg_uuid_valid(id, strlen(id))) {
        bg_gw_error(rc, 404, "LICENSE_NOT_FOUND", "no such license");
        return NULL;
    }
    return id;
}

static void issue_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *out = NULL;
    bg_node_err ne = {0};
    bg_err e = bg_node_license_issue(job->node, reg, job->in, job->actor, job->request_id, &out, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 201, out);
}

void bg_h_licenses_issue(bg_reqctx *rc)
{
    bg_gw_job_submit(rc, bg_gw_job_new(rc, issue_work, json_incref(rc->body)));
}

static void get_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *out = NULL;
    bg_node_err ne = {0};
    const char *id = json_string_value(json_object_get(job->in, "id"));
    bg_err e = json_is_true(json_object_get(job->in, "revoke"))
                   ? bg_node_license_revoke(job->node, reg, id, job->actor, job->request_id, &out, &ne)
                   : bg_node_license_get(job->node, reg, id, &out, &ne);
    if (e != BG_OK) {
        bg_gw_job_fail_node(job, e, &ne);
        return;
    }
    bg_gw_job_ok(job, 200, out);
}

void bg_h_licenses_get(bg_reqctx *rc)
{
    const char *id = license_param(rc);
    if (id != NULL)
        bg_gw_job_submit(rc, bg_gw_job_new(rc, get_work, json_pack("{s:s}", "id", id)));
}

void bg_h_licenses_revoke(bg_reqctx *rc)
{
    const char *id = license_param(rc);
    if (id != NULL)
        bg_gw_job_submit(rc, bg_gw_job_new(rc, get_work, json_pack("{s:s,s:b}", "id", id, "revoke", 1)));
}

/* ---- validation ---- */

static void check_free(void *p)
{
    bg_node_license_check_clear(p);
    free(p);
}

static void finish_work(bg_gw_job *job, bg_registry *reg)
{
    bg_license_check *c = job->state;
    bg_node_license_check_finish(job->node, reg, c, (bg_peer_result *)job->arg);
    bg_gw_job_ok(job, 200, json_incref(c->result));
}

static void top_answered(bg_reqctx *rc, bg_gw_job *job, bg_peer_result *res, size_t n)
{
    (void)n;
    job->arg = res;
    bg_gw_job_next(rc, job, finish_work, NULL);
}

static void start_reply(bg_reqctx *rc, bg_gw_job *job)
{
    bg_license_check *c = job->state;
    if (job->err != BG_OK) {
        bg_gw_fail(rc, job->err, job->err_code, "%s", job->err_msg);
        return;
    }
    if (c->done) {
        bg_gw_json(rc, 200, json_incref(c->result));
        return;
    }
    bg_gw_job_peers(rc, job, &c->top_call, 1, top_answered);
}

static void start_work(bg_gw_job *job, bg_registry *reg)
{
    bg_license_check *c = job->state;
    bg_node_err ne = {0};
    bg_err e = bg_node_license_check_start(job->node, reg, json_string_value(json_object_get(job->in, "license_key")),
                                           json_string_value(json_object_get(job->in, "domain")), c, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
    bg_strlcpy(c->top_call.request_id, job->request_id, sizeof(c->top_call.request_id));
}

/* Copies license_key and domain; answers 400 itself. */
static json_t *validation_input(bg_reqctx *rc)
{
    const char *key, *domain;
    bg_json_err je;
    if (bg_json_get_str(rc->body, "license_key", true, 1, 8192, &key, &je) != BG_OK ||
        bg_json_get_str(rc->body, "domain", true, 1, 255, &domain, &je) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
        return NULL;
    }
    return json_pack("{s:s,s:s}", "license_key", key, "domain", domain);
}

void bg_h_licenses_validate(bg_reqctx *rc)
{
    json_t *in = validation_input(rc);
    if (in == NULL)
        return;
    bg_gw_job *job = bg_gw_job_new(rc, start_work, in);
    job->state = bg_xcalloc(1, sizeof(bg_license_check));
    job->state_free = check_free;
    job->reply = start_reply;
    bg_gw_job_submit(rc, job);
}

static void top_work(bg_gw_job *job, bg_registry *reg)
{
    if (strcmp(bg_node_config(job->node)->branch_type, "top_branch") != 0) {
        bg_gw_job_fail(job, BG_EFORBIDDEN, "NOT_TOP_BRANCH", "only a top branch answers this");
        return;
    }
    char domain[256];
    const char *key = json_string_value(json_object_get(job->in, "license_key"));
    if (!bg_license_domain_normalize(json_string_value(json_object_get(job->in, "domain")), false,
                                     domain, sizeof(domain))) {
        bg_gw_job_fail(job, BG_EINVAL, "INVALID_DOMAIN", "domain must be a host name");
        return;
    }
    bg_gw_job_ok(job, 200, bg_node_license_validate_top(job->node, reg, key, domain));
}

void bg_h_cross_validate_license(bg_reqctx *rc)
{
    json_t *in = validation_input(rc);
    if (in != NULL)
        bg_gw_job_submit(rc, bg_gw_job_new(rc, top_work, in));
}
