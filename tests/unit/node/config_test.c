/*
 * Unit tests for node/config.h: embedded defaults, the JSON file with its
 * nested keys, environment overrides, command-line style sets, the derived
 * values and the identity file written by init.
 *
 * Tests that set BRANCHGATE_* variables unset them again in teardown, so a
 * failing assertion cannot leak them into the next test.
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

#include "node/config.h"

#include "../testutil.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Every variable a test here may set. */
static const char *const test_env[] = {
    "BRANCHGATE_HTTP_THREADS", "BRANCHGATE_LOG_ACCESS",  "BRANCHGATE_LISTEN",
    "BRANCHGATE_BRANCH_TYPE",  "BRANCHGATE_ADMIN_TOKEN",
};

typedef struct fixture {
    char dir[64];
    char file[128];
} fixture;

static void clear_env(void)
{
    for (size_t i = 0; i < N_ELEMS(test_env); i++)
        unsetenv(test_env[i]);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bg-config-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->file, sizeof(f->file), "%s/branchgate.json", f->dir);
    clear_env();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    clear_env();
    int rc = rm_tree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* Applies text as a config file on top of defaults. */
static bg_err apply_text(const fixture *f, const char *text, bg_config *c, bg_config_err *e)
{
    write_file(f->file, text);
    bg_config_defaults(c);
    memset(e, 0, sizeof(*e));
    return bg_config_apply_file(c, f->file, e);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        print_error("\"%s\" does not contain \"%s\"\n", haystack, needle);
        fail();
    }
}

/* ---- defaults ----------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    bg_config c;
    memset(&c, 0xa5, sizeof(c)); /* defaults must overwrite everything */
    bg_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.branch_name, "main");
    assert_string_equal(c.branch_type, "top_branch");
    assert_string_equal(c.branch_url, "");
    assert_int_equal(c.http_threads, 0);
    assert_int_equal(c.http_max_body_bytes, 1048576);
    assert_int_equal(c.http_req_timeout_ms, 10000);
    assert_int_equal(c.workers_threads, 0);
    assert_int_equal(c.workers_queue_max, 10000);
    assert_int_equal(c.db_busy_timeout_ms, 5000);
    assert_string_equal(c.db_synchronous, "normal");
    assert_string_equal(c.log_level, "info");
    assert_true(c.log_access);
    assert_false(c.metrics_public);
    assert_int_equal(c.shutdown_drain_ms, 5000);
    assert_string_equal(c.admin_token, "");
    assert_int_equal(c.peers_ping_interval_ms, 30000);
    assert_string_equal(c.tls_listen, "");
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
}

/* ---- the config file ---------------------------------------------------- */

static void test_file_nested_keys(void **state)
{
    fixture *f = *state;
    bg_config c;
    bg_config_err e;
    const char *text = "{\n"
                       "  \"branch\": {\"name\": \"east-1\", \"type\": \"master_branch\",\n"
                       "             \"url\": \"https://east.example:8443\"},\n"
                       "  \"listen\": \"0.0.0.0:9000\",\n"
                       "  \"http\": {\"threads\": 4, \"max_body_bytes\": 2048},\n"
                       "  \"workers\": {\"queue_max\": 7},\n"
                       "  \"db\": {\"synchronous\": \"full\"},\n"
                       "  \"log\": {\"level\": \"debug\", \"access\": false},\n"
                       "  \"metrics\": {\"public\": true},\n"
                       "  \"peers\": {\"rate_limit_rps\": 5},\n"
                       "  \"tls\": {\"listen\": \"[::1]:8443\"}\n"
                       "}\n";
    assert_int_equal(apply_text(f, text, &c, &e), BG_OK);
    assert_string_equal(c.branch_name, "east-1");
    assert_string_equal(c.branch_type, "master_branch");
    assert_string_equal(c.branch_url, "https://east.example:8443");
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_int_equal(c.http_threads, 4);
    assert_int_equal(c.http_max_body_bytes, 2048);
    assert_int_equal(c.workers_queue_max, 7);
    assert_string_equal(c.db_synchronous, "full");
    assert_string_equal(c.log_level, "debug");
    assert_false(c.log_access);
    assert_true(c.metrics_public);
    assert_int_equal(c.peers_rate_limit_rps, 5);
    assert_string_equal(c.tls_listen, "[::1]:8443");
    /* keys the file does not name keep their defaults */
    assert_int_equal(c.http_req_timeout_ms, 10000);
    assert_int_equal(c.workers_threads, 0);
    assert_int_equal(c.db_busy_timeout_ms, 5000);

    assert_int_equal(apply_text(f, "{}", &c, &e), BG_OK);
    assert_string_equal(c.listen, "127.0.0.1:8080");
}

static void test_file_unknown_key(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text, *key;
    } cases[] = {
        {"{\"http\": {\"thread\": 2}}", "'http.thread'"},
        {"{\"bogus\": 1}", "'bogus'"},
        {"{\"branch\": {\"name\": \"a\", \"nmae\": \"b\"}}", "'branch.nmae'"},
        {"{\"http\": {\"threads\": 2, \"deep\": {\"er\": 1}}}", "'http.deep.er'"},
        {"{\"branch\": \"main\"}", "'branch'"}, /* a section given as a leaf */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_config c;
        bg_config_err e;
        bg_err rc = apply_text(f, cases[i].text, &c, &e);
        if (rc != BG_EINVAL) {
            print_error("%s: got %d, want BG_EINVAL\n", cases[i].text, rc);
            fail();
        }
        assert_contains(e.message, cases[i].key);
        assert_contains(e.message, "unknown");
        assert_contains(e.message, f->file); /* where it came from */
    }
}

static void test_file_wrong_type(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text, *key;
    } cases[] = {
        {"{\"http\": {\"threads\": \"4\"}}", "'http.threads'"},
        {"{\"http\": {\"threads\": 4.0}}", "'http.threads'"},
        {"{\"http\": {\"threads\": true}}", "'http.threads'"},
        {"{\"http\": {\"threads\": null}}", "'http.threads'"},
        {"{\"listen\": 8080}", "'listen'"},
        {"{\"listen\": {\"port\": 8080}}", "'listen'"},
        {"{\"log\": {\"access\": \"yes\"}}", "'log.access'"},
        {"{\"log\": {\"access\": 1}}", "'log.access'"},
        {"{\"branch\": {\"type\": [\"top_branch\"]}}", "'branch.type'"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_config c;
        bg_config_err e;
        bg_err rc = apply_text(f, cases[i].text, &c, &e);
        if (rc != BG_EINVAL) {
            print_error("%s: got %d, want BG_EINVAL\n", cases[i].text, rc);
            fail();
        }
        assert_contains(e.message, cases[i].key);
    }
}

static void test_file_out_of_range(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text, *key;
        bg_err want;
    } cases[] = {
        {"{\"http\": {\"threads\": 65}}", "'http.threads'", BG_EINVAL},
        {"{\"http\": {\"threads\": -1}}", "'http.threads'", BG_EINVAL},
        {"{\"http\": {\"threads\": 64}}", NULL, BG_OK},
        {"{\"http\": {\"threads\": 0}}", NULL, BG_OK},
        {"{\"http\": {\"max_body_bytes\": 1023}}", "'http.max_body_bytes'", BG_EINVAL},
        {"{\"http\": {\"max_body_bytes\": 1024}}", NULL, BG_OK},
        {"{\"http\": {\"max_body_bytes\": 67108865}}", "'http.max_body_bytes'", BG_EINVAL},
        {"{\"workers\": {\"queue_max\": 0}}", "'workers.queue_max'", BG_EINVAL},
        {"{\"db\": {\"busy_timeout_ms\": 9223372036854775807}}", "'db.busy_timeout_ms'", BG_EINVAL},
        {"{\"branch\": {\"type\": \"middle_branch\"}}", "'branch.type'", BG_EINVAL},
        {"{\"branch\": {\"name\": \"\"}}", "'branch.name'", BG_EINVAL},
        {"{\"branch\": {\"name\": \"has space\"}}", "'branch.name'", BG_EINVAL},
        {"{\"branch\": {\"url\": \"ftp://x\"}}", "'branch.url'", BG_EINVAL},
        {"{\"branch\": {\"url\": \"https://x.example/?q=1\"}}", "'branch.url'", BG_EINVAL},
        {"{\"branch\": {\"url\": \"https://user@x.example\"}}", "'branch.url'", BG_EINVAL},
        {"{\"branch\": {\"url\": \"https://x.example:8443/gw\"}}", NULL, BG_OK},
        {"{\"admin_token\": \"0123456789abcde\"}", "'admin_token'", BG_EINVAL},
        {"{\"admin_token\": \"0123456789abcdef\"}", NULL, BG_OK},
        {"{\"listen\": \"no-port\"}", "'listen'", BG_EINVAL},
        {"{\"log\": {\"level\": \"verbose\"}}", "'log.level'", BG_EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_config c;
        bg_config_err e;
        bg_err rc = apply_text(f, cases[i].text, &c, &e);
        if (rc != cases[i].want) {
            print_error("%s: got %d, want %d (%s)\n", cases[i].text, rc, cases[i].want, e.message);
            fail();
        }
        if (cases[i].key != NULL)
            assert_contains(e.message, cases[i].key);
    }

    /* The message states the bounds of an integer. */
    bg_config c;
    bg_config_err e;
    assert_int_equal(apply_text(f, "{\"http\": {\"threads\": 65}}", &c, &e), BG_EINVAL);
    assert_contains(e.message, "0 to 64");
    assert_int_equal(c.http_threads, 0); /* the bad value was not stored */
    /* An enum's message lists the choices. */
    assert_int_equal(apply_text(f, "{\"branch\": {\"type\": \"x\"}}", &c, &e), BG_EINVAL);
    assert_contains(e.message, "top_branch|master_branch");
    assert_string_equal(c.branch_type, "top_branch");
}

static void test_file_unreadable_or_malformed(void **state)
{
    fixture *f = *state;
    bg_config c;
    bg_config_err e;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/nope.json", f->dir);
    bg_config_defaults(&c);
    assert_int_equal(bg_config_apply_file(&c, missing, &e), BG_ENOTFOUND);
    assert_contains(e.message, missing);

    static const char *const bad[] = {"",
                                      "{",
                                      "[1,2]",
                                      "\"text\"",
                                      "{\"listen\": }",
                                      "{\"http\": {\"threads\": 1, \"threads\": 2}}"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        bg_err rc = apply_text(f, bad[i], &c, &e);
        if (rc != BG_EINVAL) {
            print_error("'%s': got %d, want BG_EINVAL\n", bad[i], rc);
            fail();
        }
        assert_contains(e.message, f->file);
    }
}

/* ---- environment -------------------------------------------------------- */

static void test_env_name(void **state)
{
    (void)state;
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"http.threads", "BRANCHGATE_HTTP_THREADS"},
        {"listen", "BRANCHGATE_LISTEN"},
        {"admin_token", "BRANCHGATE_ADMIN_TOKEN"},
        {"peers.rate_limit_rps", "BRANCHGATE_PEERS_RATE_LIMIT_RPS"},
        {"tls.cert", "BRANCHGATE_TLS_CERT"},
        {"", "BRANCHGATE_"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char buf[96];
        bg_config_env_name(cases[i].key, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
}

static void test_env_name_truncates(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, 'X', sizeof(buf));
    bg_config_env_name("http.threads", buf, 5);
    assert_string_equal(buf, "BRAN");
    assert_int_equal(buf[5], 'X'); /* nothing written past cap */

    memset(buf, 'X', sizeof(buf));
    bg_config_env_name("http.threads", buf, 15);
    assert_string_equal(buf, "BRANCHGATE_HTT");
    assert_int_equal(buf[15], 'X');

    memset(buf, 'X', sizeof(buf));
    bg_config_env_name("http.threads", buf, 1);
    assert_string_equal(buf, "");

    /* cap 0: not even a terminator fits, so nothing may be written */
    memset(buf, 'X', sizeof(buf));
    bg_config_env_name("http.threads", buf, 0);
    assert_int_equal(buf[0], 'X');
}

static void test_env_override(void **state)
{
    fixture *f = *state;
    bg_config c;
    bg_config_err e;
    /* Environment beats the file, whatever it names. */
    assert_int_equal(
        apply_text(f, "{\"http\": {\"threads\": 4}, \"listen\": \"0.0.0.0:1\"}", &c, &e), BG_OK);
    assert_int_equal(c.http_threads, 4);
    assert_int_equal(setenv("BRANCHGATE_HTTP_THREADS", "3", 1), 0);
    assert_int_equal(setenv("BRANCHGATE_LOG_ACCESS", "false", 1), 0);
    assert_int_equal(setenv("BRANCHGATE_ADMIN_TOKEN", "operator-secret-0123456789", 1), 0);
    assert_int_equal(bg_config_apply_env(&c, &e), BG_OK);
    assert_int_equal(c.http_threads, 3);
    assert_false(c.log_access);
    assert_string_equal(c.admin_token, "operator-secret-0123456789");
    assert_string_equal(c.listen, "0.0.0.0:1"); /* not in the environment */
    unsetenv("BRANCHGATE_HTTP_THREADS");
    unsetenv("BRANCHGATE_LOG_ACCESS");
    unsetenv("BRANCHGATE_ADMIN_TOKEN");

    /* With nothing set, nothing changes. */
    bg_config d;
    bg_config_defaults(&d);
    assert_int_equal(bg_config_apply_env(&d, &e), BG_OK);
    assert_int_equal(d.http_threads, 0);
    assert_true(d.log_access);
}

static void test_env_bad_value(void **state)
{
    (void)state;
    static const struct {
        const char *var, *value, *key;
    } cases[] = {
        {"BRANCHGATE_HTTP_THREADS", "three", "http.threads"},
        {"BRANCHGATE_HTTP_THREADS", "65", "http.threads"},
        {"BRANCHGATE_HTTP_THREADS", "", "http.threads"},
        {"BRANCHGATE_HTTP_THREADS", " 3", "http.threads"},
        {"BRANCHGATE_LOG_ACCESS", "maybe", "log.access"},
        {"BRANCHGATE_LISTEN", "nowhere", "listen"},
        {"BRANCHGATE_BRANCH_TYPE", "leaf", "branch.type"},
        {"BRANCHGATE_ADMIN_TOKEN", "short", "admin_token"}, /* weaker than a generated one */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_config c;
        bg_config_err e;
        bg_config_defaults(&c);
        memset(&e, 0, sizeof(e));
        assert_int_equal(setenv(cases[i].var, cases[i].value, 1), 0);
        bg_err rc = bg_config_apply_env(&c, &e);
        unsetenv(cases[i].var);
        if (rc != BG_EINVAL) {
            print_error("%s=%s: got %d, want BG_EINVAL\n", cases[i].var, cases[i].value, rc);
            fail();
        }
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "'%s'", cases[i].key);
        assert_contains(e.message, quoted);
        assert_contains(e.message, cases[i].var);
    }
}

/* ---- bg_config_set (command-line flags) --------------------------------- */

static void test_set(void **state)
{
    (void)state;
    bg_config c;
    bg_config_err e;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_set(&c, "listen", "127.0.0.1:0", "--listen", &e), BG_OK);
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_int_equal(bg_config_set(&c, "workers.threads", "2", "--workers", &e), BG_OK);
    assert_int_equal(c.workers_threads, 2);
    assert_int_equal(bg_config_set(&c, "metrics.public", "yes", "--metrics-public", &e), BG_OK);
    assert_true(c.metrics_public);

    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_config_set(&c, "http.nope", "1", "--flag", &e), BG_ENOTFOUND);
    assert_contains(e.message, "'http.nope'");
    assert_contains(e.message, "--flag");
    assert_int_equal(bg_config_set(&c, "http", "1", "--flag", &e), BG_ENOTFOUND);

    memset(&e, 0, sizeof(e));
    assert_int_equal(bg_config_set(&c, "listen", "nope", "--listen", &e), BG_EINVAL);
    assert_contains(e.message, "'listen'");
    assert_contains(e.message, "--listen");
    assert_string_equal(c.listen, "127.0.0.1:0"); /* unchanged */

    /* Lengths at and past a string's bound (branch.name holds 63). */
    char name[80];
    memset(name, 'n', 63);
    name[63] = '\0';
    assert_int_equal(bg_config_set(&c, "branch.name", name, "--name", &e), BG_OK);
    assert_string_equal(c.branch_name, name);
    name[63] = 'n';
    name[64] = '\0';
    assert_int_equal(bg_config_set(&c, "branch.name", name, "--name", &e), BG_EINVAL);
    assert_int_equal(strlen(c.branch_name), 63);

    /* A NULL error holder is allowed. */
    assert_int_equal(bg_config_set(&c, "http.threads", "x", "--threads", NULL), BG_EINVAL);
}

/* ---- derived values ------------------------------------------------------ */

static void test_finish(void **state)
{
    (void)state;
    static const struct {
        int64_t http, workers;
        int ncores;
        int64_t want_http, want_workers;
    } cases[] = {
        {0, 0, 8, 8, 8}, {0, 0, 1, 1, 2}, {0, 0, 0, 1, 2},   {0, 0, -3, 1, 2},
        {3, 5, 8, 3, 5}, {0, 1, 4, 4, 1}, {2, 0, 16, 2, 16},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_config c;
        bg_config_defaults(&c);
        c.http_threads = cases[i].http;
        c.workers_threads = cases[i].workers;
        bg_config_finish(&c, cases[i].ncores);
        if (c.http_threads != cases[i].want_http || c.workers_threads != cases[i].want_workers) {
            print_error("case %zu: got http %lld workers %lld, want %lld %lld\n", i,
                        (long long)c.http_threads, (long long)c.workers_threads,
                        (long long)cases[i].want_http, (long long)cases[i].want_workers);
            fail();
        }
    }
}

/* ---- identity file -------------------------------------------------------- */

static void test_identity_round_trip(void **state)
{
    fixture *f = *state;
    bg_config c, d;
    bg_config_err e;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_set(&c, "branch.name", "west_2", "--name", &e), BG_OK);
    assert_int_equal(bg_config_set(&c, "branch.type", "master_branch", "--type", &e), BG_OK);
    assert_int_equal(bg_config_set(&c, "branch.url", "https://west.example:8443/gw", "--url", &e),
                     BG_OK);
    c.http_threads = 9; /* not part of the identity */
    assert_int_equal(bg_config_write_identity(&c, f->file), BG_OK);

    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->file);
    assert_int_equal(access(tmp, F_OK), -1); /* the temp file was renamed */

    bg_config_defaults(&d);
    assert_int_equal(bg_config_apply_file(&d, f->file, &e), BG_OK);
    assert_string_equal(d.branch_name, "west_2");
    assert_string_equal(d.branch_type, "master_branch");
    assert_string_equal(d.branch_url, "https://west.example:8443/gw");
    assert_int_equal(d.http_threads, 0);

    /* Rewriting replaces the file whole. */
    assert_int_equal(bg_config_set(&c, "branch.url", "", "--url", &e), BG_OK);
    assert_int_equal(bg_config_write_identity(&c, f->file), BG_OK);
    assert_int_equal(bg_config_apply_file(&d, f->file, &e), BG_OK);
    assert_string_equal(d.branch_url, "");
}

static void test_identity_mode_ignores_umask(void **state)
{
    fixture *f = *state;
    bg_config c;
    bg_config_defaults(&c);
    mode_t old = umask(077);
    bg_err rc = bg_config_write_identity(&c, f->file);
    umask(old);
    assert_int_equal(rc, BG_OK);
    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
}

/* Re-init keeps what an operator put in the file beside the identity. */
static void test_identity_keeps_other_keys(void **state)
{
    fixture *f = *state;
    write_file(f->file, "{\"listen\": \"0.0.0.0:9000\",\n"
                        " \"http\": {\"threads\": 3},\n"
                        " \"branch\": {\"name\": \"old\", \"type\": \"top_branch\","
                        " \"url\": \"https://old.example\"}}\n");
    bg_config c, d;
    bg_config_err e;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_set(&c, "branch.name", "new", "--name", &e), BG_OK);
    assert_int_equal(bg_config_set(&c, "branch.type", "master_branch", "--type", &e), BG_OK);
    assert_int_equal(bg_config_write_identity(&c, f->file), BG_OK);

    bg_config_defaults(&d);
    assert_int_equal(bg_config_apply_file(&d, f->file, &e), BG_OK);
    assert_string_equal(d.branch_name, "new");
    assert_string_equal(d.branch_type, "master_branch");
    assert_string_equal(d.branch_url, ""); /* the identity is written whole */
    assert_string_equal(d.listen, "0.0.0.0:9000");
    assert_int_equal(d.http_threads, 3);
}

/* A file that is there but is not a JSON object is left alone. */
static void test_identity_refuses_unreadable_file(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"{not json", "[1, 2]", "\"text\""};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        write_file(f->file, bad[i]);
        bg_config c;
        bg_config_defaults(&c);
        assert_int_equal(bg_config_write_identity(&c, f->file), BG_EIO);
        FILE *fp = fopen(f->file, "rb");
        assert_non_null(fp);
        char buf[64] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        assert_string_equal(buf, bad[i]);
    }
}

static void test_identity_write_error(void **state)
{
    fixture *f = *state;
    bg_config c;
    bg_config_defaults(&c);
    char path[160];
    snprintf(path, sizeof(path), "%s/missing-dir/branchgate.json", f->dir);
    assert_int_equal(bg_config_write_identity(&c, path), BG_EIO);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_file_nested_keys),
        T(test_file_unknown_key),
        T(test_file_wrong_type),
        T(test_file_out_of_range),
        T(test_file_unreadable_or_malformed),
        T(test_env_name),
        T(test_env_name_truncates),
        T(test_env_override),
        T(test_env_bad_value),
        T(test_set),
        T(test_finish),
        T(test_identity_round_trip),
        T(test_identity_mode_ignores_umask),
        T(test_identity_keeps_other_keys),
        T(test_identity_refuses_unreadable_file),
        T(test_identity_write_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
