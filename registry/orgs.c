/* registry/orgs.c — organisations, users and which branches an
 * organisation is shared with. Every user query takes the organisation. */
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"
#include "registry_internal.h"

#define ORG_COLS "id, name, parent_id, home_branch, version, webhook_secret, created_ms, updated_ms"

static void read_org(sqlite3_stmt *st, void *elem)
{
    bg_org *o = elem;
    memset(o, 0, sizeof(*o));
    bg_reg_col_text(st, 0, o->id, sizeof(o->id));
    bg_reg_col_text(st, 1, o->name, sizeof(o->name));
    bg_reg_col_text(st, 2, o->parent_id, sizeof(o->parent_id));
    bg_reg_col_text(st, 3, o->home_branch, sizeof(o->home_branch));
    o->version = sqlite3_column_int64(st, 4);
    int n = sqlite3_column_bytes(st, 5);
    if (n > 0 && (size_t)n <= sizeof(o->webhook_sealed)) {
        memcpy(o->webhook_sealed, sqlite3_column_blob(st, 5), (size_t)n);
        o->webhook_sealed_len = (size_t)n;
    }
    o->created_ms = sqlite3_column_int64(st, 6);
    o->updated_ms = sqlite3_column_int64(st, 7);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v != NULL && v[0] != '\0')
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

bg_err bg_registry_org_upsert(bg_registry *r, const bg_org *o, bool *applied)
{
    static const char sql[] =
        "INSERT INTO organizations(" ORG_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8)"
        " ON CONFLICT(id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,"
        " home_branch = excluded.home_branch, version = excluded.version,"
        " updated_ms = excluded.updated_ms WHERE excluded.version > organizations.version";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, o->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, o->parent_id);
    sqlite3_bind_text(st, 4, o->home_branch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, o->version);
    if (o->webhook_sealed_len > 0)
        sqlite3_bind_blob(st, 6, o->webhook_sealed, (int)o->webhook_sealed_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, o->created_ms);
    sqlite3_bind_int64(st, 8, o->updated_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && applied != NULL)
        *applied = sqlite3_changes(r->db) > 0;
    return e;
}

static bg_err org_one(bg_registry *r, const char *sql, const char *key, bg_org *out)
{
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_org, out);
}

bg_err bg_registry_org_get(bg_registry *r, const char *id, bg_org *out)
{
    static const char sql[] = "SELECT " ORG_COLS " FROM organizations WHERE id = ?";
    return org_one(r, sql, id, out);
}

bg_err bg_registry_org_get_by_name(bg_registry *r, const char *name, bg_org *out)
{
    static const char sql[] =
        "SELECT " ORG_COLS " FROM organizations WHERE name = ? ORDER BY created_ms LIMIT 1";
    return org_one(r, sql, name, out);
}

bg_err bg_registry_org_list(bg_registry *r, const char *after, size_t limit, bg_org **out,
                            size_t *n)
{
    static const char sql[] =
        "SELECT " ORG_COLS " FROM organizations WHERE id > ? ORDER BY id LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, after ? after : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    return bg_reg_collect(r, st, sizeof(bg_org), read_org, NULL,
                          (void **)out, n);
}

bg_err bg_registry_org_update(bg_registry *r, const bg_org *o)
{
    static const char sql[] =
        "UPDATE organizations SET name = ?, parent_id = ?, home_branch = ?, version = ?,"
        " webhook_secret = ?, updated_ms = ? WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, o->parent_id);
    sqlite3_bind_text(st, 3, o->home_branch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, o->version);
    if (o->webhook_sealed_len > 0)
        sqlite3_bind_blob(st, 5, o->webhook_sealed, (int)o->webhook_sealed_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, o->updated_ms);
    sqlite3_bind_text(st, 7, o->id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

/* ---- users ---- */

#define USER_COLS                                                                                  \
    "id, organization_id, email, name, role, home_branch, password_hash, version, deleted,"       \
    " created_ms, updated_ms"

static void read_user(sqlite3_stmt *st, void *elem)
{
    bg_user *u = elem;
    memset(u, 0, sizeof(*u));
    bg_reg_col_text(st, 0, u->id, sizeof(u->id));
    bg_reg_col_text(st, 1, u->organization_id, sizeof(u->organization_id));
    bg_reg_col_text(st, 2, u->email, sizeof(u->email));
    bg_reg_col_text(st, 3, u->name, sizeof(u->name));
    bg_reg_col_text(st, 4, u->role, sizeof(u->role));
    bg_reg_col_text(st, 5, u->home_branch, sizeof(u->home_branch));
    bg_reg_col_text(st, 6, u->password_hash, sizeof(u->password_hash));
    u->version = sqlite3_column_int64(st, 7);
    u->deleted = sqlite3_column_int(st, 8) != 0;
    u->created_ms = sqlite3_column_int64(st, 9);
    u->updated_ms = sqlite3_column_int64(st, 10);
}

static void bind_user(sqlite3_stmt *st, const bg_user *u)
{
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, u->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, u->home_branch, -1, SQLITE_STATIC);
    bind_text_or_null(st, 7, u->password_hash);
    sqlite3_bind_int64(st, 8, u->version);
    sqlite3_bind_int(st, 9, u->deleted);
    sqlite3_bind_int64(st, 10, u->created_ms);
    sqlite3_bind_int64(st, 11, u->updated_ms);
}

bg_err bg_registry_user_insert(bg_registry *r, const bg_user *u)
{
    static const char sql[] = "INSERT INTO users(" USER_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    bind_user(st, u);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_user_upsert(bg_registry *r, const bg_user *u, bool *applied)
{
    /* The organisation is part of the match: a synced row can never move a
     * user into another tenant. */
    static const char sql[] =
        "INSERT INTO users(" USER_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
        " ON CONFLICT(id) DO UPDATE SET email = excluded.email, name = excluded.name,"
        " role = excluded.role, home_branch = excluded.home_branch, version = excluded.version,"
        " deleted = excluded.deleted, updated_ms = excluded.updated_ms"
        " WHERE excluded.version > users.version AND users.organization_id = excluded.organization_id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    bind_user(st, u);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && applied != NULL)
        *applied = sqlite3_changes(r->db) > 0;
    return e;
}

bg_err bg_registry_user_get(bg_registry *r, const char *org, const char *id, bool with_deleted,
                            bg_user *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE organization_id = ?"
                              " AND id = ? AND (? OR deleted = 0)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, with_deleted);
    return bg_reg_one(r, st, read_user, out);
}

bg_err bg_registry_user_get_by_email(bg_registry *r, const char *org, const char *email,
                                     bg_user *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE organization_id = ?"
                              " AND email = ? AND deleted = 0";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_user, out);
}

bg_err bg_registry_user_list(bg_registry *r, const char *org, const char *after, size_t limit,
                             bool with_deleted, bg_user **out, size_t *n)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE organization_id = ?"
                              " AND id > ? AND (? OR deleted = 0) ORDER BY id LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, after ? after : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, with_deleted);
    sqlite3_bind_int64(st, 4, limit ? (sqlite3_int64)limit : -1);
    return bg_reg_collect(r, st, sizeof(bg_user), read_user, NULL,
                          (void **)out, n);
}

bg_err bg_registry_user_tombstone(bg_registry *r, const char *org, const char *id,
                                  int64_t version, long long now_ms)
{
    /* The email is released (a tombstone keeps no address), so the same
     * address can be given to a new user. */
    static const char sql[] = "UPDATE users SET deleted = 1, version = ?, updated_ms = ?,"
                              " password_hash = NULL, email = 'deleted+' || id"
                              " WHERE organization_id = ? AND id = ? AND deleted = 0";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

/* ---- shares ---- */

bg_err bg_registry_org_share_add(bg_registry *r, const char *org, int64_t branch_id)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO org_shares(organization_id, branch_id) VALUES(?, ?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, branch_id);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_org_shares(bg_registry *r, const char *org, int64_t **ids, size_t *n)
{
    static const char sql[] = "SELECT s.branch_id FROM org_shares s JOIN branches b"
                              " ON b.id = s.branch_id WHERE s.organization_id = ? AND b.is_active"
                              " ORDER BY s.branch_id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    int64_t *arr = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            arr = bg_xrealloc(arr, cap * sizeof(*arr));
        }
        arr[len++] = sqlite3_column_int64(st, 0);
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    if (e != BG_OK) {
        free(arr);
        return e;
    }
    *ids = arr;
    *n = len;
    return BG_OK;
}

bg_err bg_registry_orgs_shared_with(bg_registry *r, int64_t branch_id,
                                    char (**ids)[BG_UUID_LEN + 1], size_t *n)
{
    static const char sql[] =
        "SELECT organization_id FROM org_shares WHERE branch_id = ? ORDER BY organization_id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, branch_id);
    char(*arr)[BG_UUID_LEN + 1] = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            arr = bg_xrealloc(arr, cap * sizeof(*arr));
        }
        bg_reg_col_text(st, 0, arr[len++], BG_UUID_LEN + 1);
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    if (e != BG_OK) {
        free(arr);
        return e;
    }
    *ids = arr;
    *n = len;
    return BG_OK;
}
