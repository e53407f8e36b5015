/* gateway/handlers/audit.c — the admin audit log, newest first, paged by
 * an opaque cursor (the id below which the next page starts). */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "proto/log.h"
#include "proto/parse.h"

static json_t *entry_json(const bg_audit_entry *a)
{
    char ts[32];
    bg_format_rfc3339(a->ts_ms / 1000, ts);
    json_t *detail = json_loads(a->detail, 0, NULL);
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t)a->id, "time", ts, "actor",
                     a->actor, "action", a->action, "target", a->target, "request_id",
                     a->request_id, "detail", detail ? detail : json_object());
}

static void list_work(bg_gw_job *job, bg_registry *reg)
{
    int64_t before = json_integer_value(json_object_get(job->in, "before"));
    int64_t limit = json_integer_value(json_object_get(job->in, "limit"));
    bg_audit_entry *list = NULL;
    size_t n = 0;
    /* One extra row tells whether another page exists. */
    bg_err e = bg_registry_audit_list(reg, before, (size_t)limit + 1, &list, &n);
    if (e != BG_OK) {
        bg_gw_job_fail(job, e, NULL, "cannot read the audit log: %s", bg_registry_errmsg(reg));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, entry_json(&list[i]));
    json_t *out = json_pack("{s:o}", "audit_events", arr);
    if (n > (size_t)limit) {
        char cursor[24];
        snprintf(cursor, sizeof(cursor), "%lld", (long long)list[shown - 1].id);
        json_object_set_new(out, "next_cursor", json_string(cursor));
    }
    bg_registry_audit_free(list, n);
    bg_gw_job_ok(job, 200, out);
}

void bg_h_audit_list(bg_reqctx *rc)
{
    int64_t limit, before = 0;
    const char *cursor;
    if (!bg_gw_page_params(rc, &limit, &cursor))
        return;
    if (cursor != NULL && bg_parse_i64(cursor, strlen(cursor), 1, INT64_MAX, &before) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "cursor is not one this server issued");
        return;
    }
    json_t *in = json_pack("{s:I,s:I}", "before", (json_int_t)before, "limit", (json_int_t)limit);
    bg_gw_job_submit(rc, bg_gw_job_new(rc, list_work, in));
}
