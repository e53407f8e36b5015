/* gateway/handlers/tokens.c — admin tokens: list, create (the secret is
 * shown once, in the 201), revoke. */
#include <stdlib.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "proto/json.h"
#include "proto/log.h"

static json_t *token_json(const bg_admin_token *t)
{
    char created[32], revoked[32];
    bg_format_rfc3339(t->created_ms / 1000, created);
    json_t *o = json_pack("{s:s,s:s,s:s}", "id", t->id, "label", t->label, "created_at", created);
    if (t->revoked_ms != 0) {
        bg_format_rfc3339(t->revoked_ms / 1000, revoked);
        json_object_set_new(o, "revoked_at", json_string(revoked));
    }
    return o;
}

static void list_work(bg_gw_job *job, bg_registry *reg)
{
    bg_admin_token *list = NULL;
    size_t n = 0;
    bg_err e = bg_registry_token_list(reg, false, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot list tokens: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, token_json(&list[i]));
    free(list);
    bg_gw_job_ok(job, 200, json_pack("{s:o}", "tokens", arr));
}

void bg_h_tokens_list(bg_reqctx *rc)
{
    bg_gw_job_submit(rc, bg_gw_job_new(rc, list_work, NULL));
}

static void create_work(bg_gw_job *job, bg_registry *reg)
{
    char token[BG_TOKEN_MAX];
    bg_admin_token rec;
    const char *label = json_string_value(json_object_get(job->in, "label"));
    bg_err e = bg_node_token_create(job->node, reg, label, job->actor, job->request_id, token, &rec);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot create token: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *o = token_json(&rec);
    json_object_set_new(o, "token", json_string(token));
    bg_sig_wipe(token, sizeof(token));
    bg_gw_job_ok(job, 201, o);
}

void bg_h_tokens_create(bg_reqctx *rc)
{
    const char *label = "api";
    bg_json_err je;
    bg_err e = bg_json_get_str(rc->body, "label", false, 1, 64, &label, &je);
    if (e == BG_EINVAL) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
        return;
    }
    bg_gw_job_submit(rc, bg_gw_job_new(rc, create_work, json_pack("{s:s}", "label", label)));
}

static void revoke_work(bg_gw_job *job, bg_registry *reg)
{
    const char *id = json_string_value(json_object_get(job->in, "id"));
    bg_err e = bg_node_token_revoke(job->node, reg, id, job->actor, job->request_id);
    if (e == BG_ENOTFOUND) {
        bg_gw_job_fail(job, e, "TOKEN_NOT_FOUND", "no active token with that id");
        return;
    }
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot revoke token: %s", bg_registry_errmsg(reg));
        return;
    }
    bg_gw_job_ok(job, 204, NULL);
}

void bg_h_tokens_revoke(bg_reqctx *rc)
{
    const char *id = bg_gw_param(rc, "id");
    if (id == NULL || !bg_uuid_valid(id, strlen(id))) {
        bg_gw_error(rc, 404, "TOKEN_NOT_FOUND", "no active token with that id");
        return;
    }
    bg_gw_job_submit(rc, bg_gw_job_new(rc, revoke_work, json_pack("{s:s}", "id", id)));
}
