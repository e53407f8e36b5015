/* registry/media.c — assemblies, tus uploads, jobs, results, progress
 * events and webhook deliveries of the media pipeline. */
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"
#include "registry_internal.h"

static char *col_dup(sqlite3_stmt *st, int col, const char *dflt)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    return bg_xstrdup(p ? (const char *)p : dflt);
}

/* ---- assemblies ---- */

#define ASSEMBLY_COLS                                                                              \
    "rowid, id, organization_id, user_id, template_id, template, state, error, message,"           \
    " failed_step, retryable, files, fields, notify_url, bytes_expected, run, attempts,"           \
    " queued_ms, execution_start_ms, execution_end_ms, created_ms, updated_ms"

static void read_assembly(sqlite3_stmt *st, void *elem)
{
    bg_assembly_row *a = elem;
    memset(a, 0, sizeof(*a));
    a->seq = sqlite3_column_int64(st, 0);
    bg_reg_col_text(st, 1, a->id, sizeof(a->id));
    bg_reg_col_text(st, 2, a->organization_id, sizeof(a->organization_id));
    bg_reg_col_text(st, 3, a->user_id, sizeof(a->user_id));
    bg_reg_col_text(st, 4, a->template_id, sizeof(a->template_id));
    a->template_json = col_dup(st, 5, "{}");
    bg_reg_col_text(st, 6, a->state, sizeof(a->state));
    bg_reg_col_text(st, 7, a->error, sizeof(a->error));
    bg_reg_col_text(st, 8, a->message, sizeof(a->message));
    bg_reg_col_text(st, 9, a->failed_step, sizeof(a->failed_step));
    a->retryable = sqlite3_column_int(st, 10) != 0;
    a->files_json = col_dup(st, 11, "[]");
    a->fields_json = col_dup(st, 12, "{}");
    bg_reg_col_text(st, 13, a->notify_url, sizeof(a->notify_url));
    a->bytes_expected = sqlite3_column_int64(st, 14);
    a->run = sqlite3_column_int(st, 15);
    a->attempts = sqlite3_column_int(st, 16);
    a->queued_ms = sqlite3_column_int64(st, 17);
    a->execution_start_ms = sqlite3_column_int64(st, 18);
    a->execution_end_ms = sqlite3_column_int64(st, 19);
    a->created_ms = sqlite3_column_int64(st, 20);
    a->updated_ms = sqlite3_column_int64(st, 21);
}

void bg_registry_assembly_clear(bg_assembly_row *a)
{
    if (a == NULL)
        return;
    free(a->template_json);
    free(a->files_json);
    free(a->fields_json);
    a->template_json = a->files_json = a->fields_json = NULL;
}

static void clear_assembly(void *elem)
{
    bg_registry_assembly_clear(elem);
}

void bg_registry_assembly_free(bg_assembly_row *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bg_registry_assembly_clear(&a[i]);
    free(a);
}

bg_err bg_registry_assembly_insert(bg_registry *r, const bg_assembly_row *a)
{
    static const char sql[] =
        "INSERT INTO assemblies(id, organization_id, user_id, template_id, template, state, files,"
        " fields, notify_url, bytes_expected, created_ms, updated_ms)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->template_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->template_json ? a->template_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->files_json ? a->files_json : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, a->fields_json ? a->fields_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, a->notify_url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, a->bytes_expected);
    sqlite3_bind_int64(st, 11, a->created_ms);
    sqlite3_bind_int64(st, 12, a->updated_ms);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_assembly_get(bg_registry *r, const char *id, const char *org,
                                bg_assembly_row *out)
{
    static const char sql[] = "SELECT " ASSEMBLY_COLS " FROM assemblies WHERE id = ?"
                              " AND (?2 IS NULL OR organization_id = ?2)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (org != NULL)
        sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_assembly, out);
}

bg_err bg_registry_assembly_list(bg_registry *r, const char *org, int64_t before, size_t limit,
                                 bg_assembly_row **out, size_t *n)
{
    static const char sql[] = "SELECT " ASSEMBLY_COLS " FROM assemblies"
                              " WHERE (?1 IS NULL OR organization_id = ?1)"
                              " AND (?2 = 0 OR rowid < ?2) ORDER BY rowid DESC LIMIT ?3";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    if (org != NULL)
        sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    return bg_reg_collect(r, st, sizeof(bg_assembly_row), read_assembly, clear_assembly,
                          (void **)out, n);
}

bg_err bg_registry_assembly_update(bg_registry *r, const bg_assembly_row *a)
{
    static const char sql[] =
        "UPDATE assemblies SET state = ?, error = ?, message = ?, failed_step = ?, retryable = ?,"
        " run = ?, attempts = ?, queued_ms = ?, execution_start_ms = ?, execution_end_ms = ?,"
        " updated_ms = ? WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, a->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->message, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->failed_step, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, a->retryable ? 1 : 0);
    sqlite3_bind_int(st, 6, a->run);
    sqlite3_bind_int(st, 7, a->attempts);
    sqlite3_bind_int64(st, 8, a->queued_ms);
    sqlite3_bind_int64(st, 9, a->execution_start_ms);
    sqlite3_bind_int64(st, 10, a->execution_end_ms);
    sqlite3_bind_int64(st, 11, a->updated_ms);
    sqlite3_bind_text(st, 12, a->id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

static void read_int64(sqlite3_stmt *st, void *elem)
{
    *(int64_t *)elem = sqlite3_column_int64(st, 0);
}

bg_err bg_registry_assembly_bytes(bg_registry *r, const char *id, int64_t *received)
{
    static const char sql[] = "SELECT coalesce(sum(offset), 0) FROM uploads WHERE assembly_id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_int64, received);
}

typedef struct state_count {
    char state[16];
    int64_t n;
} state_count;

static void read_state_count(sqlite3_stmt *st, void *elem)
{
    state_count *c = elem;
    bg_reg_col_text(st, 0, c->state, sizeof(c->state));
    c->n = sqlite3_column_int64(st, 1);
}

/* Runs a "SELECT state, count(*) … GROUP BY state" and spreads the counts
 * over the names given, in order. */
static bg_err count_states(bg_registry *r, const char *sql, const char *const *names,
                           size_t nnames, int64_t *counts)
{
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    state_count *rows = NULL;
    size_t n = 0;
    bg_err e = bg_reg_collect(r, st, sizeof(state_count), read_state_count, NULL, (void **)&rows, &n);
    if (e != BG_OK)
        return e;
    memset(counts, 0, nnames * sizeof(int64_t));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nnames; k++)
            if (strcmp(rows[i].state, names[k]) == 0)
                counts[k] = rows[i].n;
    free(rows);
    return BG_OK;
}

bg_err bg_registry_assembly_counts(bg_registry *r, int64_t counts[5])
{
    static const char sql[] = "SELECT state, count(*) FROM assemblies GROUP BY state";
    static const char *const names[] = {"uploading", "executing", "completed", "failed", "canceled"};
    return count_states(r, sql, names, 5, counts);
}

/* ---- uploads ---- */

#define UPLOAD_COLS                                                                                \
    "id, assembly_id, organization_id, user_id, file_index, filename, mime, metadata, path,"       \
    " length, offset, md5_state, md5, complete, expires_ms, created_ms, updated_ms"

static void read_upload(sqlite3_stmt *st, void *elem)
{
    bg_upload_row *u = elem;
    memset(u, 0, sizeof(*u));
    bg_reg_col_text(st, 0, u->id, sizeof(u->id));
    bg_reg_col_text(st, 1, u->assembly_id, sizeof(u->assembly_id));
    bg_reg_col_text(st, 2, u->organization_id, sizeof(u->organization_id));
    bg_reg_col_text(st, 3, u->user_id, sizeof(u->user_id));
    u->file_index = sqlite3_column_int(st, 4);
    bg_reg_col_text(st, 5, u->filename, sizeof(u->filename));
    bg_reg_col_text(st, 6, u->mime, sizeof(u->mime));
    bg_reg_col_text(st, 7, u->metadata, sizeof(u->metadata));
    bg_reg_col_text(st, 8, u->path, sizeof(u->path));
    u->length = sqlite3_column_int64(st, 9);
    u->offset = sqlite3_column_int64(st, 10);
    int len = sqlite3_column_bytes(st, 11);
    const void *blob = sqlite3_column_blob(st, 11);
    if (blob != NULL && len > 0 && (size_t)len <= sizeof(u->md5_state)) {
        memcpy(u->md5_state, blob, (size_t)len);
        u->md5_state_len = (size_t)len;
    }
    bg_reg_col_text(st, 12, u->md5, sizeof(u->md5));
    u->complete = sqlite3_column_int(st, 13) != 0;
    u->expires_ms = sqlite3_column_int64(st, 14);
    u->created_ms = sqlite3_column_int64(st, 15);
    u->updated_ms = sqlite3_column_int64(st, 16);
}

bg_err bg_registry_upload_insert(bg_registry *r, const bg_upload_row *u)
{
    static const char sql[] = "INSERT INTO uploads(" UPLOAD_COLS
                              ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->assembly_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, u->file_index);
    sqlite3_bind_text(st, 6, u->filename, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, u->mime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, u->metadata, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, u->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, u->length);
    sqlite3_bind_int64(st, 11, u->offset);
    sqlite3_bind_blob(st, 12, u->md5_state, (int)u->md5_state_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, u->md5, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, u->complete ? 1 : 0);
    sqlite3_bind_int64(st, 15, u->expires_ms);
    sqlite3_bind_int64(st, 16, u->created_ms);
    sqlite3_bind_int64(st, 17, u->updated_ms);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_upload_get(bg_registry *r, const char *id, const char *org, bg_upload_row *out)
{
    static const char sql[] = "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?1"
                              " AND (?2 IS NULL OR organization_id = ?2)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (org != NULL)
        sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_upload, out);
}

bg_err bg_registry_upload_list(bg_registry *r, const char *assembly_id, bg_upload_row **out,
                               size_t *n)
{
    static const char sql[] = "SELECT " UPLOAD_COLS " FROM uploads WHERE assembly_id = ?"
                              " ORDER BY file_index";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    return bg_reg_collect(r, st, sizeof(bg_upload_row), read_upload, NULL, (void **)out, n);
}

bg_err bg_registry_upload_progress(bg_registry *r, const bg_upload_row *u)
{
    static const char sql[] = "UPDATE uploads SET offset = ?, md5_state = ?, md5 = ?, complete = ?,"
                              " updated_ms = ? WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, u->offset);
    sqlite3_bind_blob(st, 2, u->md5_state, (int)u->md5_state_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->md5, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, u->complete ? 1 : 0);
    sqlite3_bind_int64(st, 5, u->updated_ms);
    sqlite3_bind_text(st, 6, u->id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_upload_delete(bg_registry *r, const char *id)
{
    static const char sql[] = "DELETE FROM uploads WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_upload_expired(bg_registry *r, long long now_ms, size_t limit,
                                  bg_upload_row **out, size_t *n)
{
    static const char sql[] = "SELECT " UPLOAD_COLS " FROM uploads WHERE complete = 0"
                              " AND expires_ms <= ? ORDER BY expires_ms LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    return bg_reg_collect(r, st, sizeof(bg_upload_row), read_upload, NULL, (void **)out, n);
}

/* ---- jobs ---- */

#define JOB_COLS                                                                                   \
    "id, assembly_id, organization_id, run, state, receive_count, max_receive, visible_at,"       \
    " created_ms, updated_ms, last_error"

static void read_job(sqlite3_stmt *st, void *elem)
{
    bg_job_row *j = elem;
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(st, 0);
    bg_reg_col_text(st, 1, j->assembly_id, sizeof(j->assembly_id));
    bg_reg_col_text(st, 2, j->organization_id, sizeof(j->organization_id));
    j->run = sqlite3_column_int(st, 3);
    bg_reg_col_text(st, 4, j->state, sizeof(j->state));
    j->receive_count = sqlite3_column_int(st, 5);
    j->max_receive = sqlite3_column_int(st, 6);
    j->visible_at = sqlite3_column_int64(st, 7);
    j->created_ms = sqlite3_column_int64(st, 8);
    j->updated_ms = sqlite3_column_int64(st, 9);
    bg_reg_col_text(st, 10, j->last_error, sizeof(j->last_error));
}

bg_err bg_registry_job_insert(bg_registry *r, bg_job_row *j)
{
    static const char sql[] =
        "INSERT INTO jobs(assembly_id, organization_id, run, state, receive_count, max_receive,"
        " visible_at, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, j->assembly_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, j->run);
    sqlite3_bind_text(st, 4, j->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, j->receive_count);
    sqlite3_bind_int(st, 6, j->max_receive);
    sqlite3_bind_int64(st, 7, j->visible_at);
    sqlite3_bind_int64(st, 8, j->created_ms);
    sqlite3_bind_int64(st, 9, j->updated_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        j->id = sqlite3_last_insert_rowid(r->db);
    return e;
}

bg_err bg_registry_job_get(bg_registry *r, int64_t id, bg_job_row *out)
{
    static const char sql[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, id);
    return bg_reg_one(r, st, read_job, out);
}

bg_err bg_registry_job_claim(bg_registry *r, long long now_ms, long long lease_ms, int org_limit,
                             bg_job_row *out)
{
    /* The candidate scan uses jobs_due; the FIFO and concurrency checks
     * are correlated sub-queries on indexed columns. */
    static const char pick[] =
        "SELECT " JOB_COLS " FROM jobs j INDEXED BY jobs_waiting"
        " WHERE j.state IN ('queued','failed','running')"
        " AND j.visible_at <= ?1"
        " AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.assembly_id = j.assembly_id AND p.id < j.id"
        "   AND p.state IN ('queued','failed','running'))"
        " AND (SELECT count(*) FROM jobs l WHERE l.organization_id = j.organization_id"
        "   AND l.state = 'running' AND l.visible_at > ?1) < ?2"
        " ORDER BY j.visible_at, j.id LIMIT 1";
    static const char take[] =
        "UPDATE jobs SET state = 'running', receive_count = receive_count + 1, visible_at = ?,"
        " updated_ms = ? WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, pick);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, org_limit);
    bg_job_row j;
    bg_err e = bg_reg_one(r, st, read_job, &j);
    if (e != BG_OK)
        return e;
    st = bg_reg_stmt(r, take);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms + lease_ms);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, j.id);
    e = bg_reg_exec_stmt(r, st);
    if (e != BG_OK)
        return e;
    j.receive_count++;
    j.visible_at = now_ms + lease_ms;
    j.updated_ms = now_ms;
    bg_strlcpy(j.state, "running", sizeof(j.state));
    *out = j;
    return BG_OK;
}

bg_err bg_registry_job_next_due(bg_registry *r, long long *at_ms)
{
    static const char sql[] = "SELECT coalesce(min(visible_at), 0) FROM jobs"
                              " WHERE state IN ('queued','failed','running')";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    int64_t v = 0;
    bg_err e = bg_reg_one(r, st, read_int64, &v);
    if (e == BG_OK)
        *at_ms = v;
    return e;
}

bg_err bg_registry_job_extend(bg_registry *r, int64_t id, int receive_count, long long visible_at)
{
    static const char sql[] = "UPDATE jobs SET visible_at = ? WHERE id = ? AND state = 'running'"
                              " AND receive_count = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, visible_at);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int(st, 3, receive_count);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_job_release(bg_registry *r, int64_t id, int receive_count, long long now_ms)
{
    static const char sql[] =
        "UPDATE jobs SET state = 'queued', visible_at = ?1, updated_ms = ?1,"
        " receive_count = receive_count - 1 WHERE id = ?2 AND state = 'running'"
        " AND receive_count = ?3";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int(st, 3, receive_count);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_job_set(bg_registry *r, int64_t id, const char *state, long long visible_at,
                           const char *last_error, long long now_ms)
{
    static const char sql[] = "UPDATE jobs SET state = ?, visible_at = ?, last_error = ?,"
                              " updated_ms = ?, receive_count = CASE WHEN ?1 = 'queued'"
                              " AND state = 'dead' THEN 0 ELSE receive_count END WHERE id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, visible_at);
    sqlite3_bind_text(st, 3, last_error ? last_error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, id);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK && sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    return e;
}

bg_err bg_registry_job_active(bg_registry *r, const char *assembly_id, bg_job_row *out)
{
    static const char sql[] = "SELECT " JOB_COLS " FROM jobs WHERE assembly_id = ?"
                              " AND state IN ('queued','failed','running') ORDER BY id LIMIT 1";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    return bg_reg_one(r, st, read_job, out);
}

bg_err bg_registry_job_list(bg_registry *r, const char *state, int64_t after, size_t limit,
                            bg_job_row **out, size_t *n)
{
    static const char sql[] = "SELECT " JOB_COLS " FROM jobs WHERE (?1 IS NULL OR state = ?1)"
                              " AND id > ?2 ORDER BY id LIMIT ?3";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    if (state != NULL)
        sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    return bg_reg_collect(r, st, sizeof(bg_job_row), read_job, NULL, (void **)out, n);
}

bg_err bg_registry_job_counts(bg_registry *r, int64_t counts[6])
{
    static const char sql[] = "SELECT state, count(*) FROM jobs GROUP BY state";
    static const char *const names[] = {"queued", "running", "done", "failed", "dead", "canceled"};
    return count_states(r, sql, names, 6, counts);
}

/* ---- results ---- */

static void read_result(sqlite3_stmt *st, void *elem)
{
    bg_result_row *x = elem;
    memset(x, 0, sizeof(*x));
    bg_reg_col_text(st, 0, x->assembly_id, sizeof(x->assembly_id));
    bg_reg_col_text(st, 1, x->step, sizeof(x->step));
    x->idx = sqlite3_column_int(st, 2);
    bg_reg_col_text(st, 3, x->id, sizeof(x->id));
    bg_reg_col_text(st, 4, x->name, sizeof(x->name));
    bg_reg_col_text(st, 5, x->path, sizeof(x->path));
    x->size = sqlite3_column_int64(st, 6);
    bg_reg_col_text(st, 7, x->mime, sizeof(x->mime));
    bg_reg_col_text(st, 8, x->original_id, sizeof(x->original_id));
    x->meta_json = col_dup(st, 9, "{}");
}

static void clear_result(void *elem)
{
    free(((bg_result_row *)elem)->meta_json);
}

void bg_registry_result_free(bg_result_row *res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(res[i].meta_json);
    free(res);
}

bg_err bg_registry_result_insert(bg_registry *r, const bg_result_row *x)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO results(assembly_id, step, idx, id, name, path, size, mime,"
        " original_id, meta) VALUES(?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, x->assembly_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, x->step, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, x->idx);
    sqlite3_bind_text(st, 4, x->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, x->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, x->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, x->size);
    sqlite3_bind_text(st, 8, x->mime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, x->original_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, x->meta_json ? x->meta_json : "{}", -1, SQLITE_STATIC);
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_result_list(bg_registry *r, const char *assembly_id, bg_result_row **out,
                               size_t *n)
{
    static const char sql[] =
        "SELECT assembly_id, step, idx, id, name, path, size, mime, original_id, meta"
        " FROM results WHERE assembly_id = ? ORDER BY step, idx";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    return bg_reg_collect(r, st, sizeof(bg_result_row), read_result, clear_result, (void **)out,
                          n);
}

bg_err bg_registry_result_delete(bg_registry *r, const char *assembly_id)
{
    static const char sql[] = "DELETE FROM results WHERE assembly_id = ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    return bg_reg_exec_stmt(r, st);
}

/* ---- events ---- */

static void read_event(sqlite3_stmt *st, void *elem)
{
    bg_event_row *e = elem;
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    bg_reg_col_text(st, 1, e->assembly_id, sizeof(e->assembly_id));
    bg_reg_col_text(st, 2, e->organization_id, sizeof(e->organization_id));
    bg_reg_col_text(st, 3, e->name, sizeof(e->name));
    e->data = col_dup(st, 4, "{}");
    e->created_ms = sqlite3_column_int64(st, 5);
}

static void clear_event(void *elem)
{
    free(((bg_event_row *)elem)->data);
}

void bg_registry_event_free(bg_event_row *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

bg_err bg_registry_event_add(bg_registry *r, bg_event_row *ev)
{
    static const char sql[] = "INSERT INTO events(assembly_id, organization_id, name, data,"
                              " created_ms) VALUES(?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, ev->assembly_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ev->data ? ev->data : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ev->created_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        ev->id = sqlite3_last_insert_rowid(r->db);
    return e;
}

bg_err bg_registry_event_list(bg_registry *r, const char *assembly_id, const char *org,
                              int64_t after, size_t limit, bg_event_row **out, size_t *n)
{
    static const char by_assembly[] =
        "SELECT id, assembly_id, organization_id, name, data, created_ms FROM events"
        " WHERE assembly_id = ?1 AND (?2 IS NULL OR organization_id = ?2) AND id > ?3"
        " ORDER BY id LIMIT ?4";
    static const char by_org[] =
        "SELECT id, assembly_id, organization_id, name, data, created_ms FROM events"
        " WHERE (?2 IS NULL OR organization_id = ?2) AND id > ?3 ORDER BY id LIMIT ?4";
    sqlite3_stmt *st = bg_reg_stmt(r, assembly_id != NULL ? by_assembly : by_org);
    if (st == NULL)
        return BG_EIO;
    if (assembly_id != NULL)
        sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    if (org != NULL)
        sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, after);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    return bg_reg_collect(r, st, sizeof(bg_event_row), read_event, clear_event, (void **)out, n);
}

/* ---- webhooks ---- */

#define WEBHOOK_COLS                                                                               \
    "id, assembly_id, organization_id, msg_id, url, payload, state, attempts, next_attempt_ms,"   \
    " created_ms, last_status, last_error"

static void read_webhook(sqlite3_stmt *st, void *elem)
{
    bg_webhook_row *w = elem;
    memset(w, 0, sizeof(*w));
    w->id = sqlite3_column_int64(st, 0);
    bg_reg_col_text(st, 1, w->assembly_id, sizeof(w->assembly_id));
    bg_reg_col_text(st, 2, w->organization_id, sizeof(w->organization_id));
    bg_reg_col_text(st, 3, w->msg_id, sizeof(w->msg_id));
    bg_reg_col_text(st, 4, w->url, sizeof(w->url));
    w->payload = col_dup(st, 5, "{}");
    bg_reg_col_text(st, 6, w->state, sizeof(w->state));
    w->attempts = sqlite3_column_int(st, 7);
    w->next_attempt_ms = sqlite3_column_int64(st, 8);
    w->created_ms = sqlite3_column_int64(st, 9);
    w->last_status = sqlite3_column_int(st, 10);
    bg_reg_col_text(st, 11, w->last_error, sizeof(w->last_error));
}

static void clear_webhook(void *elem)
{
    free(((bg_webhook_row *)elem)->payload);
}

void bg_registry_webhook_free(bg_webhook_row *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i].payload);
    free(w);
}

bg_err bg_registry_webhook_add(bg_registry *r, bg_webhook_row *w)
{
    static const char sql[] = "INSERT INTO webhooks(assembly_id, organization_id, msg_id, url,"
                              " payload, next_attempt_ms, created_ms) VALUES(?,?,?,?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, w->assembly_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->organization_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, w->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, w->payload ? w->payload : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, w->next_attempt_ms);
    sqlite3_bind_int64(st, 7, w->created_ms);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e == BG_OK)
        w->id = sqlite3_last_insert_rowid(r->db);
    return e;
}

bg_err bg_registry_webhook_due(bg_registry *r, long long now_ms, size_t limit,
                               bg_webhook_row **out, size_t *n)
{
    static const char sql[] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE state = 'pending'"
                              " AND next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT ?";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    return bg_reg_collect(r, st, sizeof(bg_webhook_row), read_webhook, clear_webhook,
                          (void **)out, n);
}

bg_err bg_registry_webhook_next_due(bg_registry *r, long long *at_ms)
{
    static const char sql[] =
        "SELECT coalesce(min(next_attempt_ms), 0) FROM webhooks WHERE state = 'pending'";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    int64_t v = 0;
    bg_err e = bg_reg_one(r, st, read_int64, &v);
    if (e == BG_OK)
        *at_ms = v;
    return e;
}

bg_err bg_registry_webhook_attempt(bg_registry *r, int64_t id, const bg_webhook_attempt *a,
                                   const char *state, long long next_attempt_ms)
{
    static const char upd[] =
        "UPDATE webhooks SET state = ?, attempts = attempts + 1, next_attempt_ms = ?,"
        " last_status = ?, last_error = ? WHERE id = ?";
    static const char ins[] =
        "INSERT INTO webhook_attempts(webhook_id, at_ms, status, error) VALUES(?,?,?,?)";
    sqlite3_stmt *st = bg_reg_stmt(r, upd);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next_attempt_ms);
    sqlite3_bind_int(st, 3, a->status);
    sqlite3_bind_text(st, 4, a->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, id);
    bg_err e = bg_reg_exec_stmt(r, st);
    if (e != BG_OK)
        return e;
    if (sqlite3_changes(r->db) == 0)
        return BG_ENOTFOUND;
    st = bg_reg_stmt(r, ins);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, a->at_ms);
    sqlite3_bind_int(st, 3, a->status);
    sqlite3_bind_text(st, 4, a->error, -1, SQLITE_STATIC);
    return bg_reg_exec_stmt(r, st);
}

static void read_attempt(sqlite3_stmt *st, void *elem)
{
    bg_webhook_attempt *a = elem;
    memset(a, 0, sizeof(*a));
    a->at_ms = sqlite3_column_int64(st, 0);
    a->status = sqlite3_column_int(st, 1);
    bg_reg_col_text(st, 2, a->error, sizeof(a->error));
}

bg_err bg_registry_webhook_latest(bg_registry *r, const char *assembly_id, bg_webhook_row *out,
                                  bg_webhook_attempt **attempts, size_t *nattempts)
{
    static const char sql[] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE assembly_id = ?"
                              " ORDER BY id DESC LIMIT 1";
    static const char list[] = "SELECT at_ms, status, error FROM webhook_attempts"
                               " WHERE webhook_id = ? ORDER BY rowid";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    sqlite3_bind_text(st, 1, assembly_id, -1, SQLITE_STATIC);
    bg_webhook_row w;
    bg_err e = bg_reg_one(r, st, read_webhook, &w);
    if (e != BG_OK)
        return e;
    st = bg_reg_stmt(r, list);
    if (st == NULL) {
        free(w.payload);
        return BG_EIO;
    }
    sqlite3_bind_int64(st, 1, w.id);
    e = bg_reg_collect(r, st, sizeof(bg_webhook_attempt), read_attempt, NULL, (void **)attempts,
                       nattempts);
    if (e != BG_OK) {
        free(w.payload);
        return e;
    }
    *out = w;
    return BG_OK;
}

bg_err bg_registry_webhook_counts(bg_registry *r, int64_t counts[4])
{
    static const char sql[] = "SELECT state, count(*) FROM webhooks GROUP BY state";
    static const char *const names[] = {"pending", "delivered", "failed", "gone"};
    return count_states(r, sql, names, 4, counts);
}
