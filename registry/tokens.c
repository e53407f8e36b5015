#include "registry_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

bg_err bg_registry_token_insert(bg_registry *r, const bg_admin_token *t)
{
    static const char sql[] =
        "INSERT INTO admin_tokens(id, label, hash, created_ms, revoked_ms) VALUES(?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->label, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, t->hash, BG_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, t->created_ms);
    sqlite3_bind_int64(st, 5, t->revoked_ms);
    return bg_reg_exec_stmt(r, st);
}

static void read_token(sqlite3_stmt *st, void *elem)
{
    bg_admin_token *t = elem;
    memset(t, 0, sizeof(*t));
    bg_reg_col_text(st, 0, t->id, sizeof(t->id));
    bg_reg_col_text(st, 1, t->label, sizeof(t->label));
    if (sqlite3_column_bytes(st, 2) == BG_HASH_BYTES)
        memcpy(t->hash, sqlite3_column_blob(st, 2), BG_HASH_BYTES);
    t->created_ms = sqlite3_column_int64(st, 3);
    t->revoked_ms = sqlite3_column_int64(st, 4);
}

bg_err bg_registry_token_list(bg_registry *r, bool include_revoked, bg_admin_token **out,
                              size_t *n)
{
    static const char sql[] = "SELECT id, label, hash, created_ms, revoked_ms FROM admin_tokens"
                              " WHERE ?1 OR revoked_ms = 0 ORDER BY created_ms, id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int(st, 1, include_revoked ? 1 : 0);
    return bg_reg_collect(r, st, sizeof(bg_admin_token), read_token, NULL,
                          (void **)out, n);
}

bg_err bg_registry_token_revoke(bg_registry *r, const char *id, long long now_ms)
{
    static const char sql[] = "UPDATE admin_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms = 0";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms > 0 ? now_ms : 1);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}
