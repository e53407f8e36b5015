#include "registry_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

bg_err bg_registry_audit_append(bg_registry *r, const bg_audit_entry *e)
{
    static const char sql[] = "INSERT INTO audit_log(ts_ms, actor, action, target, request_id, detail)"
                              " VALUES(?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, e->ts_ms);
    sqlite3_bind_text(st, 2, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->detail ? e->detail : "{}", -1, SQLITE_STATIC);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_audit_list(bg_registry *r, int64_t before_id, size_t limit,
                              bg_audit_entry **out, size_t *n)
{
    static const char sql[] = "SELECT id, ts_ms, actor, action, target, request_id, detail"
                              " FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    bg_audit_entry *arr = bg_xcalloc(limit ? limit : 1, sizeof(*arr));
    size_t len = 0;
    int rc;
    while (len < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        bg_audit_entry *a = &arr[len++];
        a->id = sqlite3_column_int64(st, 0);
        a->ts_ms = sqlite3_column_int64(st, 1);
        bg_reg_col_text(st, 2, a->actor, sizeof(a->actor));
        bg_reg_col_text(st, 3, a->action, sizeof(a->action));
        bg_reg_col_text(st, 4, a->target, sizeof(a->target));
        bg_reg_col_text(st, 5, a->request_id, sizeof(a->request_id));
        const unsigned char *d = sqlite3_column_text(st, 6);
        a->detail = bg_xstrdup(d ? (const char *)d : "{}");
    }
    if (len == limit)
        rc = SQLITE_DONE;
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    if (e != BG_OK) {
        bg_registry_audit_free(arr, len);
        return e;
    }
    *out = arr;
    *n = len;
    return BG_OK;
}

void bg_registry_audit_free(bg_audit_entry *entries, size_t n)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i].detail);
    free(entries);
}
