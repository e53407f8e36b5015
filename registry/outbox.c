/* registry/outbox.c — messages that must reach a peer, and the
 * idempotency keys of messages received from peers. */
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"
#include "registry_internal.h"

#define OUTBOX_COLS                                                                                \
    "id, branch_id, kind, organization_id, path, payload, idempotency_key, state, attempts,"      \
    " next_attempt_ms, created_ms, last_status, last_error"

static void read_msg(sqlite3_stmt *st, void *elem)
{
    bg_outbox_msg *m = elem;
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    m->branch_id = sqlite3_column_int64(st, 1);
    bg_reg_col_text(st, 2, m->kind, sizeof(m->kind));
    bg_reg_col_text(st, 3, m->organization_id, sizeof(m->organization_id));
    bg_reg_col_text(st, 4, m->path, sizeof(m->path));
    const unsigned char *p = sqlite3_column_text(st, 5);
    m->payload = bg_xstrdup(p ? (const char *)p : "{}");
    bg_reg_col_text(st, 6, m->idempotency_key, sizeof(m->idempotency_key));
    bg_reg_col_text(st, 7, m->state, sizeof(m->state));
    m->attempts = sqlite3_column_int(st, 8);
    m->next_attempt_ms = sqlite3_column_int64(st, 9);
    m->created_ms = sqlite3_column_int64(st, 10);
    m->last_status = sqlite3_column_int(st, 11);
    bg_reg_col_text(st, 12, m->last_error, sizeof(m->last_error));
}

static void clear_msg(void *elem)
{
    free(((bg_outbox_msg *)elem)->payload);
}

static void clear_shared(void *elem)
{
    free(((bg_shared *)elem)->payload);
}

bg_err bg_registry_outbox_add(bg_registry *r, bg_outbox_msg *m)
{
    static const char sql[] =
        "INSERT INTO outbox(branch_id, kind, organization_id, path, payload, idempotency_key,"
        " next_attempt_ms, created_ms) VALUES(?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, m->branch_id);
    sqlite3_bind_text(st, 2, m->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, m->payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->idempotency_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, m->next_attempt_ms);
    sqlite3_bind_int64(st, 8, m->created_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        m->id = sqlite3_last_insert_rowid(r->db);
    return e;
}

bg_err bg_registry_outbox_heads(bg_registry *r, bg_outbox_msg **out, size_t *n)
{
    /* One index seek per branch, not a scan of every pending row: the
     * outbox can hold many thousands of messages for a peer that is down. */
    static const char sql[] =
        "SELECT " OUTBOX_COLS " FROM outbox WHERE id IN (SELECT"
        " (SELECT i.id FROM outbox i WHERE i.state = 'pending' AND i.branch_id = b.id"
        "  ORDER BY i.id LIMIT 1) FROM branches b) ORDER BY id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    return bg_reg_collect(r, st, sizeof(bg_outbox_msg), read_msg, clear_msg,
                          (void **)out, n);
}

bg_err bg_registry_outbox_done(bg_registry *r, int64_t id)
{
    static const char sql[] = "DELETE FROM outbox WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, id);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_outbox_retry(bg_registry *r, int64_t id, long long next_ms, int status,
                                const char *error, bool dead)
{
    static const char sql[] =
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_status = ?,"
        " last_error = ?, state = CASE WHEN ? THEN 'dead' ELSE state END WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, next_ms);
    sqlite3_bind_int(st, 2, status);
    sqlite3_bind_text(st, 3, error ? error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, dead);
    sqlite3_bind_int64(st, 5, id);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_outbox_reset(bg_registry *r, int64_t branch_id, long long now_ms)
{
    /* Only messages that failed for want of a reachable, authenticating
     * peer: one the peer refused on its merits keeps its backoff. */
    static const char sql[] = "UPDATE outbox SET next_attempt_ms = ? WHERE branch_id = ?"
                              " AND state = 'pending' AND next_attempt_ms > ?"
                              " AND (last_status = 0 OR last_status >= 500"
                              "      OR last_status IN (401, 403, 408, 429))";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, branch_id);
    sqlite3_bind_int64(st, 3, now_ms);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_outbox_stats(bg_registry *r, int64_t branch_id, bg_outbox_stats **out,
                                size_t *n)
{
    static const char sql[] =
        "SELECT o.branch_id, sum(o.state = 'pending'), sum(o.state = 'dead'),"
        " min(CASE WHEN o.state = 'pending' THEN o.created_ms END),"
        " (SELECT h.next_attempt_ms FROM outbox h WHERE h.branch_id = o.branch_id"
        "   AND h.state = 'pending' ORDER BY h.id LIMIT 1),"
        " (SELECT h.attempts FROM outbox h WHERE h.branch_id = o.branch_id"
        "   AND h.state = 'pending' ORDER BY h.id LIMIT 1),"
        " (SELECT h.last_error FROM outbox h WHERE h.branch_id = o.branch_id"
        "   AND h.state = 'pending' ORDER BY h.id LIMIT 1)"
        " FROM outbox o WHERE (?1 = 0 OR o.branch_id = ?1) GROUP BY o.branch_id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, branch_id);
    bg_outbox_stats *arr = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            arr = bg_xrealloc(arr, cap * sizeof(*arr));
        }
        bg_outbox_stats *s = &arr[len++];
        memset(s, 0, sizeof(*s));
        s->branch_id = sqlite3_column_int64(st, 0);
        s->depth = sqlite3_column_int64(st, 1);
        s->dead = sqlite3_column_int64(st, 2);
        s->oldest_created_ms = sqlite3_column_int64(st, 3);
        s->next_attempt_ms = sqlite3_column_int64(st, 4);
        s->attempts = sqlite3_column_int(st, 5);
        bg_reg_col_text(st, 6, s->last_error, sizeof(s->last_error));
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    if (e != BG_OK) {
        free(arr);
        return e;
    }
    *out = arr;
    *n = len;
    return BG_OK;
}

bg_err bg_registry_outbox_list(bg_registry *r, const char *state, int64_t after, size_t limit,
                               bg_outbox_msg **out, size_t *n)
{
    static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE state = ? AND id > ?"
                              " ORDER BY id LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    return bg_reg_collect(r, st, sizeof(bg_outbox_msg), read_msg, clear_msg,
                          (void **)out, n);
}

bg_err bg_registry_outbox_requeue(bg_registry *r, int64_t id, long long now_ms)
{
    static const char sql[] = "UPDATE outbox SET state = 'pending', attempts = 0,"
                              " next_attempt_ms = ?, created_ms = ? WHERE id = ? AND state = 'dead'";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, id);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

void bg_registry_outbox_free(bg_outbox_msg *m, size_t n)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(m[i].payload);
    free(m);
}

/* ---- idempotency ---- */

bg_err bg_registry_idem_get(bg_registry *r, int64_t peer_id, const char *key, int *status,
                            char **body)
{
    static const char sql[] = "SELECT status, body FROM idempotency WHERE peer_id = ? AND key = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, peer_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *status = sqlite3_column_int(st, 0);
        const unsigned char *b = sqlite3_column_text(st, 1);
        *body = bg_xstrdup(b ? (const char *)b : "");
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e == BG_OK && rc != SQLITE_ROW ? BG_ENOTFOUND : e;
}

bg_err bg_registry_idem_put(bg_registry *r, int64_t peer_id, const char *key, int status,
                            const char *body, long long now_ms)
{
    static const char sql[] =
        "INSERT INTO idempotency(peer_id, key, status, body, created_ms) VALUES(?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, peer_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, status);
    sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_idem_expire(bg_registry *r, long long cutoff_ms)
{
    static const char sql[] = "DELETE FROM idempotency WHERE created_ms < ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, cutoff_ms);
    return bg_reg_exec_stmt(r, st);
}

/* ---- shared resources ---- */

#define SHARED_COLS                                                                                \
    "organization_id, resource_type, resource_id, from_branch, permissions, expires_ms, payload," \
    " updated_ms"

bg_err bg_registry_shared_put(bg_registry *r, const bg_shared *s)
{
    static const char sql[] = "INSERT OR REPLACE INTO shared_resources(" SHARED_COLS ")"
                              " VALUES(?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, s->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->resource_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->resource_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->from_branch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->permissions, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, s->expires_ms);
    sqlite3_bind_text(st, 7, s->payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, s->updated_ms);
    return bg_reg_exec_stmt(r, st);
}

static void read_shared(sqlite3_stmt *st, void *elem)
{
    bg_shared *s = elem;
    memset(s, 0, sizeof(*s));
    bg_reg_col_text(st, 0, s->organization_id, sizeof(s->organization_id));
    bg_reg_col_text(st, 1, s->resource_type, sizeof(s->resource_type));
    bg_reg_col_text(st, 2, s->resource_id, sizeof(s->resource_id));
    bg_reg_col_text(st, 3, s->from_branch, sizeof(s->from_branch));
    bg_reg_col_text(st, 4, s->permissions, sizeof(s->permissions));
    s->expires_ms = sqlite3_column_int64(st, 5);
    const unsigned char *p = sqlite3_column_text(st, 6);
    s->payload = bg_xstrdup(p ? (const char *)p : "{}");
    s->updated_ms = sqlite3_column_int64(st, 7);
}

bg_err bg_registry_shared_get(bg_registry *r, const char *org, const char *type, const char *id,
                              long long now_ms, bg_shared *out)
{
    static const char sql[] = "SELECT " SHARED_COLS " FROM shared_resources WHERE"
                              " organization_id = ? AND resource_type = ? AND resource_id = ?"
                              " AND (expires_ms = 0 OR expires_ms > ?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return bg_reg_one(r, st, read_shared, out);
}

bg_err bg_registry_shared_list(bg_registry *r, const char *org, const char *type,
                               long long now_ms, bg_shared **out, size_t *n)
{
    static const char sql[] = "SELECT " SHARED_COLS " FROM shared_resources WHERE"
                              " organization_id = ? AND resource_type = ?"
                              " AND (expires_ms = 0 OR expires_ms > ?) ORDER BY resource_id";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    return bg_reg_collect(r, st, sizeof(bg_shared), read_shared, clear_shared,
                          (void **)out, n);
}

void bg_registry_shared_free(bg_shared *s, size_t n)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i].payload);
    free(s);
}
