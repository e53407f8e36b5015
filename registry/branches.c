#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"
#include "registry_internal.h"

#define COLS                                                                                      \
    "id, organization_id, branch_name, branch_url, branch_type, key_sealed, key_hash,"           \
    " ssl_certificate, spki_pin, is_active, verified, last_ping_ms, state, rtt_us,"               \
    " clock_skew_ms, last_error, created_ms, updated_ms"

static void read_row(sqlite3_stmt *st, void *elem)
{
    bg_branch *b = elem;
    memset(b, 0, sizeof(*b));
    b->id = sqlite3_column_int64(st, 0);
    bg_reg_col_text(st, 1, b->organization_id, sizeof(b->organization_id));
    bg_reg_col_text(st, 2, b->name, sizeof(b->name));
    bg_reg_col_text(st, 3, b->url, sizeof(b->url));
    bg_reg_col_text(st, 4, b->type, sizeof(b->type));
    int n = sqlite3_column_bytes(st, 5);
    if (n > 0 && (size_t)n <= sizeof(b->key_sealed)) {
        memcpy(b->key_sealed, sqlite3_column_blob(st, 5), (size_t)n);
        b->key_sealed_len = (size_t)n;
    }
    if (sqlite3_column_bytes(st, 6) == BG_HASH_BYTES)
        memcpy(b->key_hash, sqlite3_column_blob(st, 6), BG_HASH_BYTES);
    const unsigned char *cert = sqlite3_column_text(st, 7);
    b->ssl_certificate = cert ? bg_xstrdup((const char *)cert) : NULL;
    bg_reg_col_text(st, 8, b->spki_pin, sizeof(b->spki_pin));
    b->is_active = sqlite3_column_int(st, 9) != 0;
    b->verified = sqlite3_column_int(st, 10) != 0;
    b->last_ping_ms = sqlite3_column_int64(st, 11);
    bg_reg_col_text(st, 12, b->state, sizeof(b->state));
    b->rtt_us = sqlite3_column_int64(st, 13);
    b->clock_skew_ms = sqlite3_column_int64(st, 14);
    bg_reg_col_text(st, 15, b->last_error, sizeof(b->last_error));
    b->created_ms = sqlite3_column_int64(st, 16);
    b->updated_ms = sqlite3_column_int64(st, 17);
}

static void clear_row(void *elem)
{
    bg_registry_branch_clear(elem);
}

bg_err bg_registry_branch_insert(bg_registry *r, bg_branch *b)
{
    static const char sql[] =
        "INSERT INTO branches(organization_id, branch_name, branch_url, branch_type, key_sealed,"
        " key_hash, ssl_certificate, spki_pin, is_active, verified, created_ms, updated_ms)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, b->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, b->type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, b->key_sealed, (int)b->key_sealed_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, b->key_hash, BG_HASH_BYTES, SQLITE_STATIC);
    if (b->ssl_certificate != NULL)
        sqlite3_bind_text(st, 7, b->ssl_certificate, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_text(st, 8, b->spki_pin, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, b->is_active);
    sqlite3_bind_int(st, 10, b->verified);
    sqlite3_bind_int64(st, 11, b->created_ms);
    sqlite3_bind_int64(st, 12, b->updated_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        b->id = sqlite3_last_insert_rowid(r->db);
    return e;
}

bg_err bg_registry_branch_get(bg_registry *r, const char *org, const char *name, bg_branch *out)
{
    static const char sql[] = "SELECT " COLS " FROM branches WHERE branch_name = ?1"
                              " AND (?2 IS NULL OR organization_id = ?2)"
                              " ORDER BY organization_id <> '', id LIMIT 2";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (org != NULL)
        sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        bg_err e = bg_reg_err(r, rc);
        sqlite3_reset(st);
        return e == BG_OK ? BG_ENOTFOUND : e;
    }
    bg_branch b;
    read_row(st, &b);
    rc = b.organization_id[0] == '\0' ? SQLITE_DONE : sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        bg_registry_branch_clear(&b);
        return BG_ECONFLICT;
    }
    *out = b;
    return BG_OK;
}

bg_err bg_registry_branch_get_id(bg_registry *r, int64_t id, bg_branch *out)
{
    static const char sql[] = "SELECT " COLS " FROM branches WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, id);
    return bg_reg_one(r, st, read_row, out);
}

bg_err bg_registry_branch_list(bg_registry *r, const char *org, bool include_inactive,
                               int64_t after_id, size_t limit, bg_branch **out, size_t *n)
{
    static const char sql[] = "SELECT " COLS " FROM branches WHERE id > ?1"
                              " AND (?2 OR is_active = 1) AND (?4 IS NULL OR organization_id = ?4)"
                              " ORDER BY id LIMIT ?3";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, include_inactive);
    sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    if (org != NULL)
        sqlite3_bind_text(st, 4, org, -1, SQLITE_STATIC);
    return bg_reg_collect(r, st, sizeof(bg_branch), read_row, clear_row,
                          (void **)out, n);
}

bg_err bg_registry_branch_update(bg_registry *r, const bg_branch *b)
{
    static const char sql[] =
        "UPDATE branches SET branch_url = ?, branch_type = ?, key_sealed = ?, key_hash = ?,"
        " ssl_certificate = ?, spki_pin = ?, is_active = ?, verified = ?, updated_ms = ?"
        " WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, b->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->key_sealed, (int)b->key_sealed_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, b->key_hash, BG_HASH_BYTES, SQLITE_STATIC);
    if (b->ssl_certificate != NULL)
        sqlite3_bind_text(st, 5, b->ssl_certificate, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_text(st, 6, b->spki_pin, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, b->is_active);
    sqlite3_bind_int(st, 8, b->verified);
    sqlite3_bind_int64(st, 9, b->updated_ms);
    sqlite3_bind_int64(st, 10, b->id);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_branch_record_ping(bg_registry *r, int64_t id, long long at_ms, bool up,
                                      int64_t rtt_us, int64_t skew_ms, const char *error,
                                      bool verified)
{
    static const char sql[] =
        "UPDATE branches SET last_ping_ms = ?, state = ?, rtt_us = ?, clock_skew_ms = ?,"
        " last_error = ?, verified = (verified OR ?) WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, at_ms);
    sqlite3_bind_text(st, 2, up ? "up" : "down", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rtt_us);
    sqlite3_bind_int64(st, 4, skew_ms);
    sqlite3_bind_text(st, 5, error ? error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, verified);
    sqlite3_bind_int64(st, 7, id);
    return bg_reg_exec_stmt(r, st);
}

void bg_registry_branch_clear(bg_branch *b)
{
    if (b == NULL)
        return;
    free(b->ssl_certificate);
    b->ssl_certificate = NULL;
}

void bg_registry_branch_free(bg_branch *arr, size_t n)
{
    if (arr == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        bg_registry_branch_clear(&arr[i]);
    free(arr);
}
