/*
 * Unit tests for registry/registry.h: opening and migrating a database
 * file, the connection pragmas, admin tokens, the audit log, durability
 * across reopen and explicit transactions.
 *
 * Each test works in its own mkdtemp directory, removed in teardown. A
 * second connection opened with sqlite3 directly checks what the registry
 * promises about the file (journal mode, user_version, locking). The
 * per-connection pragmas (foreign_keys, synchronous, busy_timeout) can only
 * be read on the registry's own connection, which this folder's internal
 * header exposes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proto/sig.h"
#include "registry/registry.h"
#include "registry/registry_internal.h"

#include "registry_fixture.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

/* Opens and migrates f->db; fails the test on any error. */
static bg_registry *open_migrated(const fixture *f, const bg_registry_opts *opts)
{
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, opts, &r), BG_OK);
    assert_non_null(r);
    assert_int_equal(bg_registry_migrate(r, NULL, NULL), BG_OK);
    return r;
}

/* A plain second connection, outside the registry. */
static sqlite3 *raw_open(const fixture *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

/* First column of the first row of sql, as text, into buf. */
static void query_text(sqlite3 *db, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
}

static bg_admin_token make_token(const char *label, uint8_t fill, long long created_ms)
{
    bg_admin_token t;
    memset(&t, 0, sizeof(t));
    bg_uuid_v4(t.id);
    snprintf(t.label, sizeof(t.label), "%s", label);
    memset(t.hash, fill, sizeof(t.hash));
    t.created_ms = created_ms;
    return t;
}

static void append_audit(bg_registry *r, long long ts, const char *action, const char *detail)
{
    bg_audit_entry a;
    memset(&a, 0, sizeof(a));
    a.ts_ms = ts;
    snprintf(a.actor, sizeof(a.actor), "admin:%lld", ts);
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.target, sizeof(a.target), "target-%lld", ts);
    snprintf(a.request_id, sizeof(a.request_id), "req-%lld", ts);
    a.detail = (char *)detail;
    assert_int_equal(bg_registry_audit_append(r, &a), BG_OK);
}

/* ---- open and migrate ------------------------------------------------- */

static void test_open_migrate_fresh(void **state)
{
    fixture *f = *state;
    assert_true(bg_registry_schema_latest() >= 1);
    assert_int_equal(access(f->db, F_OK), -1);

    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    assert_int_equal(access(f->db, F_OK), 0); /* created */
    assert_string_equal(bg_registry_errmsg(r), "no error");
    int from = -1, to = -1;
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, 0);
    assert_int_equal(to, bg_registry_schema_latest());
    assert_int_equal(bg_registry_ping(r), BG_OK);

    /* The file records the version, and the foundation tables exist. */
    sqlite3 *db = raw_open(f);
    assert_int_equal(query_int(db, "PRAGMA user_version"), bg_registry_schema_latest());
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND"
                                   " name IN ('admin_tokens','audit_log','meta')"),
                     3);
    sqlite3_close(db);
    bg_registry_close(r);
}

static void test_migrate_again_is_noop(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    append_audit(r, 1, "x.y", NULL);

    int from = -1, to = -1;
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, bg_registry_schema_latest());
    assert_int_equal(to, bg_registry_schema_latest());
    bg_registry_close(r);

    /* A fresh connection to a migrated file: still nothing to do, and the
     * data written before is untouched. */
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    from = to = -1;
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, bg_registry_schema_latest());
    assert_int_equal(to, bg_registry_schema_latest());
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    bg_registry_audit_free(list, n);
    bg_registry_close(r);
}

static void test_ping_needs_schema(void **state)
{
    fixture *f = *state;
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    assert_int_not_equal(bg_registry_ping(r), BG_OK);
    assert_string_not_equal(bg_registry_errmsg(r), "no error");
    assert_int_equal(bg_registry_migrate(r, NULL, NULL), BG_OK);
    assert_int_equal(bg_registry_ping(r), BG_OK);
    bg_registry_close(r);
}

static void test_wal_mode_on_file(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    char mode[32];
    sqlite3 *db = raw_open(f);
    /* WAL is a property of the file, visible to any connection. */
    query_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");

    /* And it behaves as WAL: a reader holding a snapshot does not block the
     * registry's writes, and keeps seeing its snapshot. */
    raw_exec(db, "BEGIN");
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 0);
    append_audit(r, 10, "a.b", NULL);
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 0);
    raw_exec(db, "COMMIT");
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 1);
    sqlite3_close(db);
    bg_registry_close(r);
}

static void test_connection_pragmas(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    assert_int_equal(query_int(r->db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_int(r->db, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(query_int(r->db, "PRAGMA busy_timeout"), 5000);
    bg_registry_close(r);

    bg_registry_opts o = {.busy_timeout_ms = 1234, .synchronous_full = true};
    r = open_migrated(f, &o);
    assert_int_equal(query_int(r->db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_int(r->db, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(query_int(r->db, "PRAGMA busy_timeout"), 1234);
    bg_registry_close(r);

    /* A second, plain connection does not inherit foreign_keys: the
     * registry must be the one turning it on. */
    sqlite3 *db = raw_open(f);
    assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 0);
    sqlite3_close(db);
}

static void test_locked_database_is_busy(void **state)
{
    fixture *f = *state;
    bg_registry_opts o = {.busy_timeout_ms = 50};
    bg_registry *r = open_migrated(f, &o);
    sqlite3 *db = raw_open(f);
    raw_exec(db, "BEGIN IMMEDIATE");
    assert_int_equal(bg_registry_begin(r), BG_EBUSY);
    bg_audit_entry a = {.ts_ms = 1, .actor = "cli", .action = "x"};
    assert_int_equal(bg_registry_audit_append(r, &a), BG_EBUSY);
    raw_exec(db, "ROLLBACK");
    assert_int_equal(bg_registry_audit_append(r, &a), BG_OK);
    sqlite3_close(db);
    bg_registry_close(r);
}

static void test_newer_schema_refused(void **state)
{
    fixture *f = *state;
    int newer = bg_registry_schema_latest() + 1;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", newer);
    sqlite3 *db = raw_open(f);
    raw_exec(db, sql);
    sqlite3_close(db);

    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    assert_int_equal(bg_registry_migrate(r, NULL, NULL), BG_EINVAL);
    assert_non_null(strstr(bg_registry_errmsg(r), "newer"));
    bg_registry_close(r);

    /* Nothing was changed: the version stays and no table was created. */
    db = raw_open(f);
    assert_int_equal(query_int(db, "PRAGMA user_version"), newer);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type='table'"), 0);
    sqlite3_close(db);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    bg_registry *r = NULL;
    char path[160];
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", f->dir);
    assert_int_equal(bg_registry_open(path, NULL, &r), BG_EIO);
    assert_null(r);

    /* A file that is not a database. */
    FILE *fp = fopen(f->db, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("not a database ", fp);
    fclose(fp);
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_EIO);
    assert_null(r);

    bg_registry_close(NULL); /* accepts NULL */
}

/* ---- admin tokens ----------------------------------------------------- */

static void assert_token_equal(const bg_admin_token *got, const bg_admin_token *want)
{
    assert_string_equal(got->id, want->id);
    assert_string_equal(got->label, want->label);
    assert_memory_equal(got->hash, want->hash, BG_HASH_BYTES);
    assert_int_equal(got->created_ms, want->created_ms);
}

static void test_tokens_insert_list(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    bg_admin_token *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_token_list(r, true, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);

    /* Inserted newest first; listed oldest first. */
    bg_admin_token b = make_token("second", 0xbb, 2000);
    bg_admin_token a = make_token("first", 0xaa, 1000);
    assert_int_equal(bg_registry_token_insert(r, &b), BG_OK);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);
    assert_int_equal(bg_registry_token_list(r, false, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_token_equal(&list[0], &a);
    assert_token_equal(&list[1], &b);
    assert_int_equal(list[0].revoked_ms, 0);
    assert_int_equal(list[1].revoked_ms, 0);
    free(list);
    bg_registry_close(r);
}

static void test_tokens_conflicts(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    bg_admin_token a = make_token("a", 0x11, 1000);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);

    /* Same hash under a new id. */
    bg_admin_token dup_hash = make_token("b", 0x11, 2000);
    assert_string_not_equal(dup_hash.id, a.id);
    assert_int_equal(bg_registry_token_insert(r, &dup_hash), BG_ECONFLICT);
    /* Same id with a new hash. */
    bg_admin_token dup_id = make_token("c", 0x22, 3000);
    memcpy(dup_id.id, a.id, sizeof(a.id));
    assert_int_equal(bg_registry_token_insert(r, &dup_id), BG_ECONFLICT);

    bg_admin_token *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_token_list(r, true, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_token_equal(&list[0], &a);
    free(list);

    /* The handle still works after a constraint failure. */
    bg_admin_token c = make_token("c", 0x33, 4000);
    assert_int_equal(bg_registry_token_insert(r, &c), BG_OK);
    bg_registry_close(r);
}

static void test_tokens_revoke(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    bg_admin_token a = make_token("a", 0x01, 1000);
    bg_admin_token b = make_token("b", 0x02, 2000);
    bg_admin_token c = make_token("c", 0x03, 3000);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);
    assert_int_equal(bg_registry_token_insert(r, &b), BG_OK);
    assert_int_equal(bg_registry_token_insert(r, &c), BG_OK);

    char unknown[BG_UUID_LEN + 1];
    bg_uuid_v4(unknown);
    assert_int_equal(bg_registry_token_revoke(r, unknown, 5000), BG_ENOTFOUND);
    assert_int_equal(bg_registry_token_revoke(r, "", 5000), BG_ENOTFOUND);

    assert_int_equal(bg_registry_token_revoke(r, a.id, 5000), BG_OK);
    /* Revoking twice: no such *active* token. */
    assert_int_equal(bg_registry_token_revoke(r, a.id, 6000), BG_ENOTFOUND);
    /* A zero clock still marks the token revoked. */
    assert_int_equal(bg_registry_token_revoke(r, c.id, 0), BG_OK);

    bg_admin_token *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_token_list(r, false, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_token_equal(&list[0], &b);
    free(list);

    assert_int_equal(bg_registry_token_list(r, true, &list, &n), BG_OK);
    assert_int_equal(n, 3);
    assert_token_equal(&list[0], &a);
    assert_int_equal(list[0].revoked_ms, 5000); /* the first revocation stands */
    assert_token_equal(&list[1], &b);
    assert_int_equal(list[1].revoked_ms, 0);
    assert_token_equal(&list[2], &c);
    assert_true(list[2].revoked_ms > 0);
    free(list);
    bg_registry_close(r);
}

/* ---- audit log -------------------------------------------------------- */

static void test_audit_fields_round_trip(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    append_audit(r, 1700000000123LL, "token.create", "{\"label\":\"ci\"}");
    append_audit(r, 1700000000456LL, "token.revoke", NULL);

    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_true(list[0].id > list[1].id);
    assert_int_equal(list[0].ts_ms, 1700000000456LL);
    assert_string_equal(list[0].action, "token.revoke");
    assert_string_equal(list[0].detail, "{}"); /* NULL detail stored as {} */
    assert_int_equal(list[1].ts_ms, 1700000000123LL);
    assert_string_equal(list[1].actor, "admin:1700000000123");
    assert_string_equal(list[1].action, "token.create");
    assert_string_equal(list[1].target, "target-1700000000123");
    assert_string_equal(list[1].request_id, "req-1700000000123");
    assert_string_equal(list[1].detail, "{\"label\":\"ci\"}");
    bg_registry_audit_free(list, n);
    bg_registry_audit_free(NULL, 0);
    bg_registry_close(r);
}

static void test_audit_paging(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    enum { N = 7 };
    for (int i = 0; i < N; i++) {
        char action[16];
        snprintf(action, sizeof(action), "act.%d", i);
        append_audit(r, 1000 + i, action, NULL);
    }

    bg_audit_entry *all = NULL;
    size_t nall = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 100, &all, &nall), BG_OK);
    assert_int_equal(nall, N);
    for (size_t i = 0; i < nall; i++) {
        char want[16];
        snprintf(want, sizeof(want), "act.%d", (int)(N - 1 - i)); /* newest first */
        assert_string_equal(all[i].action, want);
        if (i > 0)
            assert_true(all[i].id < all[i - 1].id);
    }

    /* Walk the log in pages of 3, each starting below the last id seen:
     * 3 + 3 + 1, then an empty page, with the same rows as the full list. */
    const size_t want_sizes[] = {3, 3, 1, 0};
    int64_t before = 0;
    size_t seen = 0;
    for (size_t p = 0; p < N_ELEMS(want_sizes); p++) {
        bg_audit_entry *page = NULL;
        size_t n = 99;
        assert_int_equal(bg_registry_audit_list(r, before, 3, &page, &n), BG_OK);
        assert_int_equal(n, want_sizes[p]);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(page[i].id, all[seen].id);
            assert_string_equal(page[i].action, all[seen].action);
            seen++;
        }
        if (n > 0)
            before = page[n - 1].id;
        bg_registry_audit_free(page, n);
    }
    assert_int_equal(seen, N);

    /* before_id is exclusive; limit 0 returns nothing. */
    bg_audit_entry *page = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_audit_list(r, all[2].id, 1, &page, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(page[0].id, all[3].id);
    bg_registry_audit_free(page, n);
    assert_int_equal(bg_registry_audit_list(r, 0, 0, &page, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_audit_free(page, n);
    /* A limit exactly the size of the log. */
    assert_int_equal(bg_registry_audit_list(r, 0, N, &page, &n), BG_OK);
    assert_int_equal(n, N);
    bg_registry_audit_free(page, n);

    bg_registry_audit_free(all, nall);
    bg_registry_close(r);
}

/* ---- durability and transactions -------------------------------------- */

static void test_survives_reopen(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    bg_admin_token a = make_token("keep", 0x5a, 1234);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);
    append_audit(r, 77, "kept.action", "{\"k\":1}");
    bg_registry_close(r);

    r = open_migrated(f, NULL);
    bg_admin_token *tokens = NULL;
    size_t nt = 0;
    assert_int_equal(bg_registry_token_list(r, true, &tokens, &nt), BG_OK);
    assert_int_equal(nt, 1);
    assert_token_equal(&tokens[0], &a);
    free(tokens);
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "kept.action");
    assert_string_equal(list[0].detail, "{\"k\":1}");
    bg_registry_audit_free(list, n);
    bg_registry_close(r);
}

static void test_rollback_leaves_nothing(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    bg_admin_token a = make_token("gone", 0x77, 1000);
    assert_int_equal(bg_registry_begin(r), BG_OK);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);
    append_audit(r, 5, "token.create", NULL);
    /* Visible inside the transaction... */
    bg_admin_token *tokens = NULL;
    size_t nt = 0;
    assert_int_equal(bg_registry_token_list(r, true, &tokens, &nt), BG_OK);
    assert_int_equal(nt, 1);
    free(tokens);
    bg_registry_rollback(r);

    /* ...and gone after the rollback, on this and on a new connection. */
    assert_int_equal(bg_registry_token_list(r, true, &tokens, &nt), BG_OK);
    assert_int_equal(nt, 0);
    free(tokens);
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_audit_free(list, n);
    bg_registry_rollback(r); /* outside a transaction: harmless */
    bg_registry_close(r);

    sqlite3 *db = raw_open(f);
    assert_int_equal(query_int(db, "SELECT count(*) FROM admin_tokens"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 0);
    sqlite3_close(db);
}

static void test_commit_lands_together(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f, NULL);
    sqlite3 *db = raw_open(f);
    bg_admin_token a = make_token("kept", 0x78, 1000);
    assert_int_equal(bg_registry_begin(r), BG_OK);
    assert_int_equal(bg_registry_token_insert(r, &a), BG_OK);
    append_audit(r, 5, "token.create", NULL);
    /* Another connection sees nothing until the commit. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM admin_tokens"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 0);
    assert_int_equal(bg_registry_commit(r), BG_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM admin_tokens"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM audit_log"), 1);
    /* A commit with no transaction open is an error, not a crash. */
    assert_int_not_equal(bg_registry_commit(r), BG_OK);
    sqlite3_close(db);
    bg_registry_close(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_migrate_fresh),
        T(test_migrate_again_is_noop),
        T(test_ping_needs_schema),
        T(test_wal_mode_on_file),
        T(test_connection_pragmas),
        T(test_locked_database_is_busy),
        T(test_newer_schema_refused),
        T(test_open_errors),
        T(test_tokens_insert_list),
        T(test_tokens_conflicts),
        T(test_tokens_revoke),
        T(test_audit_fields_round_trip),
        T(test_audit_paging),
        T(test_survives_reopen),
        T(test_rollback_leaves_nothing),
        T(test_commit_lands_together),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
