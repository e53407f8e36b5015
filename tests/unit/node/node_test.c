/*
 * Unit tests for node/node.h's runtime: creating a node over an
 * initialised data directory, the admin-token snapshot (check, create,
 * revoke, reload, the environment token), the audit records those changes
 * write, and the published listen URL.
 *
 * The peer client and pinger (bg_node_start) are not started here: they
 * belong to the peer tests. Functions that take a bg_registry get a
 * connection the test opens itself, or run in a pool task.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "node/config.h"
#include "node/node.h"
#include "node/pool.h"
#include "proto/log.h"
#include "proto/sig.h"
#include "registry/registry.h"

#include "../testutil.h"

typedef struct fixture {
    char dir[64];
    char db[128];
    char token[BG_TOKEN_MAX]; /* printed by init */
    bg_config cfg;
    bg_node *node;
    bg_registry *reg; /* the test's own connection */
} fixture;

static int group_setup(void **state)
{
    (void)state;
    bg_log_set_level(BG_LOG_WARN);
    return bg_sig_init() == BG_OK ? 0 : -1;
}

/* An initialised data directory and a config for it; no node yet. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bg-node-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/%s", f->dir, BG_DB_FILE);
    char err[256];
    bg_init_opts o = {.data_dir = f->dir, .name = "main", .type = "top_branch", .url = ""};
    if (bg_node_init_datadir(&o, f->token, err, sizeof(err)) != BG_OK) {
        fprintf(stderr, "init: %s\n", err);
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    bg_config_defaults(&f->cfg);
    bg_config_finish(&f->cfg, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bg_registry_close(f->reg);
    bg_node_destroy(f->node);
    int rc = rm_tree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Creates the node and opens the test's registry connection. */
static void start(fixture *f)
{
    assert_int_equal(bg_node_create(&f->cfg, f->dir, &f->node), BG_OK);
    assert_non_null(f->node);
    assert_int_equal(bg_registry_open(f->db, NULL, &f->reg), BG_OK);
}

static bg_err check(fixture *f, const char *token, char id[BG_UUID_LEN + 1])
{
    return bg_node_admin_check(f->node, token, strlen(token), id);
}

static size_t active_tokens(fixture *f)
{
    bg_admin_token *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_token_list(f->reg, false, &list, &n), BG_OK);
    free(list);
    return n;
}

static size_t audit_count(fixture *f)
{
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(f->reg, 0, 1000, &list, &n), BG_OK);
    bg_registry_audit_free(list, n);
    return n;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false; /* absent files hold nothing */
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    rewind(fp);
    char *buf = malloc(sz > 0 ? (size_t)sz : 1);
    assert_non_null(buf);
    size_t len = fread(buf, 1, sz > 0 ? (size_t)sz : 0, fp);
    fclose(fp);
    size_t nlen = strlen(needle);
    bool found = false;
    for (size_t i = 0; nlen > 0 && i + nlen <= len && !found; i++)
        found = memcmp(buf + i, needle, nlen) == 0;
    free(buf);
    return found;
}

/* ---- creation ----------------------------------------------------------- */

static void test_create(void **state)
{
    fixture *f = *state;
    long long before = bg_now_ms();
    start(f);
    assert_string_equal(bg_node_data_dir(f->node), f->dir);
    assert_string_equal(bg_node_config(f->node)->listen, "127.0.0.1:8080");
    assert_non_null(bg_node_pool(f->node));
    assert_int_equal(bg_pool_size(bg_node_pool(f->node)), f->cfg.workers_threads);
    assert_string_equal(bg_node_url(f->node), ""); /* until the gateway sets it */
    bg_node_set_url(f->node, "http://127.0.0.1:1234");
    assert_string_equal(bg_node_url(f->node), "http://127.0.0.1:1234");
    assert_true(bg_node_started_ms(f->node) >= before);
    assert_true(bg_node_started_ms(f->node) <= bg_now_ms());
    bg_node_destroy(NULL);
}

static void test_create_uses_config_url(void **state)
{
    fixture *f = *state;
    bg_config_err e;
    assert_int_equal(bg_config_set(&f->cfg, "branch.url", "https://gw.example", "--url", &e),
                     BG_OK);
    start(f);
    assert_string_equal(bg_node_url(f->node), "https://gw.example");
}

static void test_create_uninitialised(void **state)
{
    fixture *f = *state;
    char empty[128];
    snprintf(empty, sizeof(empty), "%s/empty", f->dir);
    assert_int_equal(mkdir(empty, 0700), 0);
    bg_node *n = NULL;
    assert_int_equal(bg_node_create(&f->cfg, empty, &n), BG_EIO);
    assert_null(n);

    /* A master key of the wrong length is refused too. */
    char path[160];
    snprintf(path, sizeof(path), "%s/master.key", empty);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("too short", fp);
    fclose(fp);
    assert_int_equal(bg_node_create(&f->cfg, empty, &n), BG_EIO);
    assert_null(n);
}

static void test_create_newer_database(void **state)
{
    fixture *f = *state;
    /* A database from a future version: the node must not start on it. */
    sqlite3 *db = NULL;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", bg_registry_schema_latest() + 1);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    bg_node *n = NULL;
    assert_int_equal(bg_node_create(&f->cfg, f->dir, &n), BG_EINVAL);
    assert_null(n);
}

/* ---- admin tokens ------------------------------------------------------- */

static void test_admin_check(void **state)
{
    fixture *f = *state;
    start(f);
    char id[BG_UUID_LEN + 1] = "";
    assert_int_equal(check(f, f->token, id), BG_OK);
    bg_admin_token *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_token_list(f->reg, false, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(id, list[0].id);
    free(list);

    /* Wrong, truncated, extended, altered and empty tokens all fail, and
     * leave id_out alone. */
    size_t len = strlen(f->token);
    char other[BG_TOKEN_MAX];
    bg_sig_token_new(BG_ADMIN_TOKEN_PREFIX, other);
    char longer[BG_TOKEN_MAX + 1];
    snprintf(longer, sizeof(longer), "%sx", f->token);
    char altered[BG_TOKEN_MAX];
    memcpy(altered, f->token, sizeof(altered));
    altered[len - 1] = altered[len - 1] == 'A' ? 'B' : 'A';
    const char *bad[] = {other, longer, altered, "", BG_ADMIN_TOKEN_PREFIX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[BG_UUID_LEN + 1] = "untouched";
        if (check(f, bad[i], out) != BG_EFORBIDDEN) {
            print_error("token '%s' was accepted\n", bad[i]);
            fail();
        }
        assert_string_equal(out, "untouched");
    }
    /* Every proper prefix, by length. */
    for (size_t k = 0; k < len; k++) {
        char out[BG_UUID_LEN + 1] = "untouched";
        if (bg_node_admin_check(f->node, f->token, k, out) != BG_EFORBIDDEN) {
            print_error("prefix of length %zu was accepted\n", k);
            fail();
        }
        assert_string_equal(out, "untouched");
    }
}

static void test_token_create(void **state)
{
    fixture *f = *state;
    start(f);
    size_t audits = audit_count(f);
    char tok[BG_TOKEN_MAX] = "", id[BG_UUID_LEN + 1];
    bg_admin_token rec;
    memset(&rec, 0, sizeof(rec));
    long long before = bg_now_ms();
    assert_int_equal(
        bg_node_token_create(f->node, f->reg, "ci", "admin:tester", "req-42", tok, &rec), BG_OK);
    assert_memory_equal(tok, BG_ADMIN_TOKEN_PREFIX, strlen(BG_ADMIN_TOKEN_PREFIX));
    assert_string_not_equal(tok, f->token);
    assert_true(bg_uuid_valid(rec.id, strlen(rec.id)));
    assert_string_equal(rec.label, "ci");
    assert_int_equal(rec.revoked_ms, 0);
    assert_true(rec.created_ms >= before);
    uint8_t h[BG_HASH_BYTES];
    bg_node_token_hash(f->node, tok, strlen(tok), h);
    assert_memory_equal(rec.hash, h, BG_HASH_BYTES);

    /* Works at once, beside the init token. */
    assert_int_equal(check(f, tok, id), BG_OK);
    assert_string_equal(id, rec.id);
    assert_int_equal(check(f, f->token, id), BG_OK);
    assert_string_not_equal(id, rec.id);
    assert_int_equal(active_tokens(f), 2);

    /* One audit record, newest, naming actor, token and request. */
    assert_int_equal(audit_count(f), audits + 1);
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(f->reg, 0, 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "token.create");
    assert_string_equal(list[0].actor, "admin:tester");
    assert_string_equal(list[0].target, rec.id);
    assert_string_equal(list[0].request_id, "req-42");
    assert_null(strstr(list[0].detail, tok + strlen(BG_ADMIN_TOKEN_PREFIX)));
    bg_registry_audit_free(list, n);

    /* Each call makes a different token. */
    char tok2[BG_TOKEN_MAX];
    bg_admin_token rec2;
    assert_int_equal(bg_node_token_create(f->node, f->reg, "ci", "cli", NULL, tok2, &rec2), BG_OK);
    assert_string_not_equal(tok, tok2);
    assert_string_not_equal(rec.id, rec2.id);
}

static void test_token_create_bad_label(void **state)
{
    fixture *f = *state;
    start(f);
    size_t audits = audit_count(f);
    char label[80];
    memset(label, 'l', 65);
    label[65] = '\0';
    char tok[BG_TOKEN_MAX] = "untouched";
    bg_admin_token rec;
    assert_int_equal(bg_node_token_create(f->node, f->reg, label, "cli", NULL, tok, &rec),
                     BG_EINVAL);
    assert_int_equal(bg_node_token_create(f->node, f->reg, NULL, "cli", NULL, tok, &rec),
                     BG_EINVAL);
    assert_string_equal(tok, "untouched");
    assert_int_equal(active_tokens(f), 1);
    assert_int_equal(audit_count(f), audits);

    label[64] = '\0'; /* 64 characters is the longest label */
    assert_int_equal(bg_node_token_create(f->node, f->reg, label, "cli", NULL, tok, &rec), BG_OK);
    assert_string_equal(rec.label, label);
}

static void test_token_revoke(void **state)
{
    fixture *f = *state;
    start(f);
    char tok[BG_TOKEN_MAX], id[BG_UUID_LEN + 1];
    bg_admin_token rec;
    assert_int_equal(bg_node_token_create(f->node, f->reg, "temp", "cli", NULL, tok, &rec), BG_OK);
    assert_int_equal(check(f, tok, id), BG_OK);
    size_t audits = audit_count(f);

    assert_int_equal(bg_node_token_revoke(f->node, f->reg, rec.id, "admin:x", "req-7"), BG_OK);
    assert_int_equal(check(f, tok, id), BG_EFORBIDDEN);
    assert_int_equal(check(f, f->token, id), BG_OK); /* the others still work */
    assert_int_equal(active_tokens(f), 1);
    assert_int_equal(audit_count(f), audits + 1);
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(f->reg, 0, 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "token.revoke");
    assert_string_equal(list[0].actor, "admin:x");
    assert_string_equal(list[0].target, rec.id);
    assert_string_equal(list[0].request_id, "req-7");
    bg_registry_audit_free(list, n);

    /* Revoking again, or an unknown id: BG_ENOTFOUND and no audit record
     * (the transaction was rolled back). */
    assert_int_equal(bg_node_token_revoke(f->node, f->reg, rec.id, "cli", NULL), BG_ENOTFOUND);
    char unknown[BG_UUID_LEN + 1];
    bg_uuid_v4(unknown);
    assert_int_equal(bg_node_token_revoke(f->node, f->reg, unknown, "cli", NULL), BG_ENOTFOUND);
    assert_int_equal(audit_count(f), audits + 1);

    /* The handle is usable afterwards (no transaction left open). */
    assert_int_equal(bg_registry_begin(f->reg), BG_OK);
    bg_registry_rollback(f->reg);
}

static void test_revoke_init_token(void **state)
{
    fixture *f = *state;
    start(f);
    char id[BG_UUID_LEN + 1];
    assert_int_equal(check(f, f->token, id), BG_OK);
    assert_int_equal(bg_node_token_revoke(f->node, f->reg, id, "cli", NULL), BG_OK);
    assert_int_equal(check(f, f->token, id), BG_EFORBIDDEN);
    /* With no tokens at all, nothing is accepted. */
    assert_int_equal(check(f, "", id), BG_EFORBIDDEN);
}

static void test_reload_sees_other_connections(void **state)
{
    fixture *f = *state;
    start(f);
    /* A token written by another process (here: another connection) is
     * unknown until the snapshot is reloaded. */
    const char secret[] = "bga_manual-token-for-reload";
    bg_admin_token t;
    memset(&t, 0, sizeof(t));
    bg_uuid_v4(t.id);
    snprintf(t.label, sizeof(t.label), "manual");
    t.created_ms = bg_now_ms();
    bg_node_token_hash(f->node, secret, strlen(secret), t.hash);
    assert_int_equal(bg_registry_token_insert(f->reg, &t), BG_OK);
    char id[BG_UUID_LEN + 1];
    assert_int_equal(check(f, secret, id), BG_EFORBIDDEN);
    assert_int_equal(bg_node_tokens_reload(f->node, f->reg), BG_OK);
    assert_int_equal(check(f, secret, id), BG_OK);
    assert_string_equal(id, t.id);

    /* And a revocation elsewhere takes effect on reload. */
    assert_int_equal(bg_registry_token_revoke(f->reg, t.id, bg_now_ms()), BG_OK);
    assert_int_equal(check(f, secret, id), BG_OK);
    assert_int_equal(bg_node_tokens_reload(f->node, f->reg), BG_OK);
    assert_int_equal(check(f, secret, id), BG_EFORBIDDEN);
}

static void test_token_hash_is_keyed(void **state)
{
    fixture *f = *state;
    start(f);
    uint8_t a[BG_HASH_BYTES], b[BG_HASH_BYTES], plain[BG_HASH_BYTES];
    bg_node_token_hash(f->node, "abc", 3, a);
    bg_node_token_hash(f->node, "abc", 3, b);
    assert_memory_equal(a, b, sizeof(a));
    bg_node_token_hash(f->node, "abd", 3, b);
    assert_memory_not_equal(a, b, sizeof(a));
    /* not the unkeyed hash */
    assert_int_equal(bg_sig_keyed_hash(NULL, 0, "abc", 3, plain, sizeof(plain)), BG_OK);
    assert_memory_not_equal(a, plain, sizeof(a));
}

static void test_env_token(void **state)
{
    fixture *f = *state;
    bg_config_err e;
    const char secret[] = "env-admin-token-0123456789";
    assert_int_equal(bg_config_set(&f->cfg, "admin_token", secret, "BRANCHGATE_ADMIN_TOKEN", &e),
                     BG_OK);
    start(f);
    char id[BG_UUID_LEN + 1] = "";
    assert_int_equal(check(f, secret, id), BG_OK);
    assert_string_equal(id, "env");
    assert_int_equal(check(f, f->token, id), BG_OK);
    assert_int_equal(bg_node_admin_check(f->node, secret, strlen(secret) - 1, id), BG_EFORBIDDEN);
    /* The node keeps no copy of the secret in its config. */
    const bg_config *c = bg_node_config(f->node);
    char zero[sizeof(c->admin_token)];
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(c->admin_token, zero, sizeof(zero));
}

static void test_no_env_token_by_default(void **state)
{
    fixture *f = *state;
    start(f);
    char id[BG_UUID_LEN + 1] = "untouched";
    /* an empty admin_token must not turn into "the empty token works" */
    assert_int_equal(check(f, "", id), BG_EFORBIDDEN);
    assert_string_equal(id, "untouched");
}

/* Tokens are hashed at rest: neither the printed token nor one created
 * later appears in the database or its WAL. */
static void test_tokens_hashed_at_rest(void **state)
{
    fixture *f = *state;
    start(f);
    char tok[BG_TOKEN_MAX];
    bg_admin_token rec;
    assert_int_equal(bg_node_token_create(f->node, f->reg, "later", "cli", NULL, tok, &rec), BG_OK);

    /* The text of admin.token, without its newline. */
    char path[160], file_token[BG_TOKEN_MAX + 2] = "";
    snprintf(path, sizeof(path), "%s/admin.token", f->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(file_token, sizeof(file_token), fp));
    fclose(fp);
    file_token[strcspn(file_token, "\n")] = '\0';
    assert_string_equal(file_token, f->token);

    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", f->db);
    const char *secrets[] = {file_token, tok, file_token + 4, tok + 4};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
            if (file_contains(f->db, secrets[i]) || file_contains(wal, secrets[i])) {
                print_error("round %d: secret %zu found in the database\n", round, i);
                fail();
            }
        }
        /* again after everything is checkpointed into the main file */
        bg_registry_close(f->reg);
        f->reg = NULL;
        bg_node_destroy(f->node);
        f->node = NULL;
    }
    /* the search itself finds what is there */
    assert_true(file_contains(path, file_token));
}

/* ---- through the pool ---------------------------------------------------- */

typedef struct create_task {
    bg_task base;
    bg_node *node;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    bg_err rc;
    char tok[BG_TOKEN_MAX];
    bg_admin_token rec;
} create_task;

static void create_run(bg_task *t, bg_registry *reg)
{
    create_task *ct = (create_task *)t;
    ct->rc = bg_node_token_create(ct->node, reg, "pool", "system", "req-pool", ct->tok, &ct->rec);
}

static void create_done(bg_task *t)
{
    create_task *ct = (create_task *)t;
    pthread_mutex_lock(&ct->mu);
    ct->finished = true;
    pthread_cond_signal(&ct->cv);
    pthread_mutex_unlock(&ct->mu);
}

static void test_token_create_on_worker(void **state)
{
    fixture *f = *state;
    start(f);
    create_task ct;
    memset(&ct, 0, sizeof(ct));
    ct.base.run = create_run;
    ct.base.done = create_done;
    ct.node = f->node;
    pthread_mutex_init(&ct.mu, NULL);
    pthread_cond_init(&ct.cv, NULL);
    assert_int_equal(bg_pool_submit(bg_node_pool(f->node), &ct.base), BG_OK);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int rc = 0;
    pthread_mutex_lock(&ct.mu);
    while (!ct.finished && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&ct.cv, &ct.mu, &until);
    bool finished = ct.finished;
    pthread_mutex_unlock(&ct.mu);
    assert_true(finished);
    assert_int_equal(ct.rc, BG_OK);
    char id[BG_UUID_LEN + 1];
    assert_int_equal(check(f, ct.tok, id), BG_OK);
    assert_string_equal(id, ct.rec.id);
    pthread_mutex_destroy(&ct.mu);
    pthread_cond_destroy(&ct.cv);
}

/* ---- listen URL files ------------------------------------------------------ */

static void test_publish_listen_url(void **state)
{
    fixture *f = *state;
    start(f);
    char listen[160], tls[160];
    snprintf(listen, sizeof(listen), "%s/listen.url", f->dir);
    snprintf(tls, sizeof(tls), "%s/tls.url", f->dir);
    assert_int_equal(bg_node_publish_listen_url(f->node, "http://127.0.0.1:4321", NULL), BG_OK);
    assert_true(file_contains(listen, "http://127.0.0.1:4321\n"));
    assert_int_equal(access(tls, F_OK), -1);

    assert_int_equal(
        bg_node_publish_listen_url(f->node, "http://127.0.0.1:1", "https://127.0.0.1:2"), BG_OK);
    assert_true(file_contains(listen, "http://127.0.0.1:1\n"));
    assert_false(file_contains(listen, "4321"));
    assert_true(file_contains(tls, "https://127.0.0.1:2\n"));

    bg_node_unpublish_listen_url(f->node);
    assert_int_equal(access(listen, F_OK), -1);
    assert_int_equal(access(tls, F_OK), -1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create),
        T(test_create_uses_config_url),
        T(test_create_uninitialised),
        T(test_create_newer_database),
        T(test_admin_check),
        T(test_token_create),
        T(test_token_create_bad_label),
        T(test_token_revoke),
        T(test_revoke_init_token),
        T(test_reload_sees_other_connections),
        T(test_token_hash_is_keyed),
        T(test_env_token),
        T(test_no_env_token_by_default),
        T(test_tokens_hashed_at_rest),
        T(test_token_create_on_worker),
        T(test_publish_listen_url),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
