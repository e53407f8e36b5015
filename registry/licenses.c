/* registry/licenses.c — license records, cached validation receipts and
 * the peers' public signing keys. */
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"
#include "registry_internal.h"

#define LIC_COLS "id, organization_id, token, status, not_before, expires_at, created_ms, updated_ms"

static void read_lic(sqlite3_stmt *st, void *elem)
{
    bg_license_rec *l = elem;
    memset(l, 0, sizeof(*l));
    bg_reg_col_text(st, 0, l->id, sizeof(l->id));
    bg_reg_col_text(st, 1, l->organization_id, sizeof(l->organization_id));
    const unsigned char *t = sqlite3_column_text(st, 2);
    l->token = bg_xstrdup(t ? (const char *)t : "");
    bg_reg_col_text(st, 3, l->status, sizeof(l->status));
    l->not_before = sqlite3_column_int64(st, 4);
    l->expires_at = sqlite3_column_int64(st, 5);
    l->created_ms = sqlite3_column_int64(st, 6);
    l->updated_ms = sqlite3_column_int64(st, 7);
}

bg_err bg_registry_license_put(bg_registry *r, const bg_license_rec *l)
{
    static const char sql[] = "INSERT INTO licenses(" LIC_COLS ") VALUES(?,?,?,?,?,?,?,?)"
                              " ON CONFLICT(id) DO UPDATE SET token = excluded.token,"
                              " status = excluded.status, not_before = excluded.not_before,"
                              " expires_at = excluded.expires_at, updated_ms = excluded.updated_ms";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, l->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, l->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, l->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, l->not_before);
    sqlite3_bind_int64(st, 6, l->expires_at);
    sqlite3_bind_int64(st, 7, l->created_ms);
    sqlite3_bind_int64(st, 8, l->updated_ms);
    return bg_reg_exec_stmt(r, st);
}

static bg_err lic_one(bg_registry *r, const char *sql, const char *key, bg_license_rec *out)
{
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_lic, out);
}

bg_err bg_registry_license_get(bg_registry *r, const char *id, bg_license_rec *out)
{
    static const char sql[] = "SELECT " LIC_COLS " FROM licenses WHERE id = ?";
    return lic_one(r, sql, id, out);
}

bg_err bg_registry_license_active(bg_registry *r, const char *org, bg_license_rec *out)
{
    static const char sql[] = "SELECT " LIC_COLS " FROM licenses WHERE organization_id = ?"
                              " AND status = 'active' ORDER BY created_ms DESC, id LIMIT 1";
    return lic_one(r, sql, org, out);
}

bg_err bg_registry_license_latest(bg_registry *r, const char *org, bg_license_rec *out)
{
    static const char sql[] = "SELECT " LIC_COLS " FROM licenses WHERE organization_id = ?"
                              " ORDER BY created_ms DESC, id LIMIT 1";
    return lic_one(r, sql, org, out);
}

bg_err bg_registry_license_set_status(bg_registry *r, const char *id, const char *status,
                                      long long now_ms, bool *changed)
{
    static const char sql[] = "UPDATE licenses SET status = ?1, updated_ms = ?2"
                              " WHERE id = ?3 AND status <> ?1";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        *changed = sqlite3_changes(r->db) > 0;
    return e;
}

bg_err bg_registry_license_revoke(bg_registry *r, const char *id, long long now_ms)
{
    static const char sql[] = "UPDATE licenses SET status = 'revoked', updated_ms = ?"
                              " WHERE id = ? AND status = 'active'";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

void bg_registry_license_clear(bg_license_rec *l)
{
    if (l == NULL)
        return;
    free(l->token);
    l->token = NULL;
}

bg_err bg_registry_receipt_put(bg_registry *r, const uint8_t key_hash[BG_HASH_BYTES],
                               const char *domain, const char *receipt, long long checked_ms)
{
    static const char sql[] = "INSERT OR REPLACE INTO license_receipts(key_hash, domain, receipt,"
                              " checked_ms) VALUES(?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_blob(st, 1, key_hash, BG_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, checked_ms);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_receipt_get(bg_registry *r, const uint8_t key_hash[BG_HASH_BYTES],
                               const char *domain, char **receipt, long long *checked_ms)
{
    static const char sql[] = "SELECT receipt, checked_ms FROM license_receipts"
                              " WHERE key_hash = ? AND domain = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_blob(st, 1, key_hash, BG_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        *receipt = bg_xstrdup(t ? (const char *)t : "");
        *checked_ms = sqlite3_column_int64(st, 1);
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e == BG_OK && rc != SQLITE_ROW ? BG_ENOTFOUND : e;
}

bg_err bg_registry_branch_set_public_key(bg_registry *r, int64_t id,
                                         const uint8_t pk[BG_ED25519_PK_BYTES])
{
    static const char sql[] = "UPDATE branches SET public_key = ? WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_blob(st, 1, pk, BG_ED25519_PK_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_top_public_key(bg_registry *r, uint8_t pk[BG_ED25519_PK_BYTES], int64_t *branch_id)
{
    static const char sql[] = "SELECT id, public_key FROM branches WHERE branch_type = 'top_branch'"
                              " AND is_active = 1 AND length(public_key) = 32 ORDER BY id LIMIT 1";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *branch_id = sqlite3_column_int64(st, 0);
        memcpy(pk, sqlite3_column_blob(st, 1), BG_ED25519_PK_BYTES);
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e == BG_OK && rc != SQLITE_ROW ? BG_ENOTFOUND : e;
}

bg_err bg_registry_branch_count(bg_registry *r, int64_t *n)
{
    static const char sql[] = "SELECT count(*) FROM branches WHERE is_active = 1";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e;
}
