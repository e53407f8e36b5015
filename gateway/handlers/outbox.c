/* gateway/handlers/outbox.c — the outbox as an operator sees it: messages
 * by state (the dead letters above all) and replay of a dead one. */
#include <stdio.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/orgs.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

static json_t *msg_json(const bg_outbox_msg *m)
{
    char created[32], next[32];
    bg_format_rfc3339(m->created_ms / 1000, created);
    bg_format_rfc3339(m->next_attempt_ms / 1000, next);
    /* The payload stays out: it can be large, and a listing is for triage. */
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s}", "id", (json_int_t)m->id,
                     "branch_id", (json_int_t)m->branch_id, "kind", m->kind, "organization_id",
                     m->organization_id, "path", m->path, "state", m->state, "attempts",
                     m->attempts, "created_at", created, "next_attempt_at", next, "last_status",
                     m->last_status, "last_error", m->last_error);
}

static void list_work(bg_gw_job *job, bg_registry *reg)
{
    const char *state = json_string_value(json_object_get(job->in, "state"));
    int64_t after = json_integer_value(json_object_get(job->in, "after"));
    int64_t limit = json_integer_value(json_object_get(job->in, "limit"));
    bg_outbox_msg *list = NULL;
    size_t n = 0;
    bg_err e = bg_registry_outbox_list(reg, state, after, (size_t)limit + 1, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot read the outbox: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, msg_json(&list[i]));
    json_t *out = json_pack("{s:o}", "messages", arr);
    if (n > (size_t)limit) {
        char cursor[24];
        snprintf(cursor, sizeof(cursor), "%lld", (long long)list[shown - 1].id);
        json_object_set_new(out, "next_cursor", json_string(cursor));
    }
    bg_registry_outbox_free(list, n);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_outbox_list(bg_reqctx *rc)
{
    int64_t limit, after = 0;
    const char *cursor;
    size_t len;
    const char *state = bg_gw_query(rc, "state", &len);
    if (state == NULL)
        state = "dead";
    if (strcmp(state, "dead") != 0 && strcmp(state, "pending") != 0) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "state must be dead or pending");
        return;
    }
    if (!bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && bg_parse_i64(cursor, strlen(cursor), 1, INT64_MAX, &after) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not one this server issued");
        return;
    }
    json_t *in = json_pack("{s:s,s:I,s:I}", "state", state, "after", (json_int_t)after, "limit",
                           (json_int_t)limit);
    bg_gw_job_submit(rc, bg_gw_job_new(rc, list_work, in));
}

static void requeue_work(bg_gw_job *job, bg_registry *reg)
{
    int64_t id = json_integer_value(json_object_get(job->in, "id"));
    bg_err e = bg_registry_begin(reg);
    if (e == BG_OK)
        e = bg_registry_outbox_requeue(reg, id, bg_now_ms());
    if (e == BG_OK) {
        bg_audit_entry a = {.ts_ms = bg_now_ms()};
        bg_strlcpy(a.actor, job->actor, sizeof(a.actor));
        bg_strlcpy(a.action, "outbox.requeue", sizeof(a.action));
        snprintf(a.target, sizeof(a.target), "outbox:%lld", (long long)id);
        bg_strlcpy(a.request_id, job->request_id, sizeof(a.request_id));
        e = bg_registry_audit_append(reg, &a);
    }
    if (e == BG_OK)
        e = bg_registry_commit(reg);
    if (e != BG_OK) {
        bg_registry_rollback(reg);
        bg_gw_job_fail(job, e, e == BG_ENOTFOUND ? "MESSAGE_NOT_FOUND" : NULL,
                       "no dead message with that id");
        return;
    }
    bg_node_outbox_wake(job->node);
    bg_gw_job_ok(job, 202, json_pack("{s:I,s:s}", "id", (json_int_t)id, "state", "pending"));
}

void bg_h_outbox_requeue(bg_reqctx *rc)
{
    const char *p = bg_gw_param(rc, "id");
    int64_t id;
    if (p == NULL || bg_parse_i64(p, strlen(p), 1, INT64_MAX, &id) != BG_OK) {
        bg_gw_error(rc, 404, "MESSAGE_NOT_FOUND", "no dead message with that id");
        return;
    }
    bg_gw_job_submit(rc, bg_gw_job_new(rc, requeue_work, json_pack("{s:I}", "id", (json_int_t)id)));
}
