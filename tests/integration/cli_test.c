/* The command line as a client of real branches (docs/cli.md): a top
 * branch and a master as processes on loopback, and `branchgate` runs of
 * every client command against them with the server URL and the admin
 * token in the environment (never on the command line). Checked: exit
 * codes (0, 1 with the server's error code on stderr, 2 for usage), help
 * texts, --json answers that parse, branch registration in both
 * directions, organisations, users, licenses, tokens, an assembly
 * submitted over tus and followed to its end over SSE, dead letters, and a
 * backup of the running top branch that a new branch starts from. */
#define _GNU_SOURCE
/* cmocka.h needs these first. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define PAIR_KEY "cli-test-pair-key-top-m1-0123456789"
#define PASSWORD "cli-test-password-0001"
#define WAIT_MS 60000

static struct {
    char root[256];
    char tpl_env[400];
    bg_th_proc top, m1;
    /* CLI environments: URL and admin token of each branch */
    char top_url_env[200], top_tok_env[300], m1_url_env[200], m1_tok_env[300];
    char org_id[64];
} T;

/* ---- running the CLI ---- */

typedef struct run {
    int rc;
    char *out; /* stdout */
    char *err; /* stderr */
} run;

/* Starts `branchgate args...` with stdout and stderr going to the files
 * ofd and efd. The child starts without BRANCHGATE_URL,
 * BRANCHGATE_ADMIN_TOKEN and BRANCHGATE_DATA, then gets env ("K=V",
 * NULL-terminated, may be NULL); stdin comes from stdin_path (NULL:
 * /dev/null). */
static pid_t cli_spawn(const char *const *args, const char *const *env, const char *stdin_path,
                       int ofd, int efd)
{
    const char *bin = getenv("BRANCHGATE_BIN");
    assert_non_null(bin);
    const char *argv[48] = {bin};
    int n = 1;
    for (const char *const *a = args; a && *a && n < 47; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        unsetenv("BRANCHGATE_URL");
        unsetenv("BRANCHGATE_ADMIN_TOKEN");
        unsetenv("BRANCHGATE_DATA");
        for (const char *const *e = env; e && *e; e++)
            putenv((char *)*e);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs the CLI (see cli_spawn) with stdout and stderr captured apart. */
static run cli_in(const char *const *args, const char *const *env, const char *stdin_path)
{
    char outp[] = "/tmp/bgcli-out-XXXXXX", errp[] = "/tmp/bgcli-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    run r = {.rc = -1};
    pid_t pid = cli_spawn(args, env, stdin_path, ofd, efd);
    int st;
    waitpid(pid, &st, 0);
    close(ofd);
    close(efd);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = bg_th_read_file(outp, NULL);
    r.err = bg_th_read_file(errp, NULL);
    unlink(outp);
    unlink(errp);
    return r;
}

static run cli(const char *const *args, const char *const *env)
{
    return cli_in(args, env, NULL);
}

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

/* Asserts the exit code, printing what the run said when it differs. */
static void expect_rc(const run *r, int rc, const char *what)
{
    if (r->rc != rc)
        fprintf(stderr, "%s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", what, r->rc, rc,
                r->out, r->err);
    assert_int_equal(r->rc, rc);
}

static void expect_in(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fprintf(stderr, "expected '%s' in:\n%s\n", needle, hay);
    assert_non_null(strstr(hay, needle));
}

/* stdout as one JSON document (new reference). */
static json_t *out_json(const run *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    if (j == NULL)
        fprintf(stderr, "stdout is not one JSON document (%s):\n%s\n", e.text, r->out);
    assert_non_null(j);
    return j;
}

static const char *const *top_env(void)
{
    static const char *e[3];
    e[0] = T.top_url_env;
    e[1] = T.top_tok_env;
    e[2] = NULL;
    return e;
}

static const char *const *m1_env(void)
{
    static const char *e[3];
    e[0] = T.m1_url_env;
    e[1] = T.m1_tok_env;
    e[2] = NULL;
    return e;
}

/* The client's output must never carry the admin token it used. */
static void no_token(const run *r, const bg_th_proc *p)
{
    assert_null(strstr(r->out, p->token));
    assert_null(strstr(r->err, p->token));
}

/* ---- setup ---- */

static bool write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int start(bg_th_proc *p, const char *name, const char *type, const char *const *env)
{
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/%s", T.root, name);
    const char *args[] = {"init", "--data", dir, "--name", name, "--type", type, NULL};
    char *out = NULL;
    int rc = bg_th_run(args, NULL, &out);
    free(out);
    if (rc != 0)
        return -1;
    return bg_th_start(p, dir, NULL, env);
}

/* The top branch's environment (also for its restart). */
static const char *const *top_server_env(void)
{
    static const char *e[] = {"BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
                              "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
                              "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10",
                              "BRANCHGATE_PEERS_PING_INTERVAL_MS=500",
                              "BRANCHGATE_OUTBOX_BACKOFF_MAX_S=1",
                              T.tpl_env,
                              NULL};
    return e;
}

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    const char *tpl = getenv("BRANCHGATE_TEMPLATES_DIR");
    snprintf(T.tpl_env, sizeof(T.tpl_env), "BRANCHGATE_TEMPLATES_DIR=%s", tpl ? tpl : "templates");
    /* The master takes PATCHes of at most 64 KiB: a submit with the
     * default 1 MiB chunk must shrink its chunks on the 413. */
    const char *m1_env_s[] = {"BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
                              "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
                              "BRANCHGATE_PEERS_PING_INTERVAL_MS=500",
                              "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=65536",
                              T.tpl_env,
                              NULL};
    if (start(&T.top, "top", "top_branch", top_server_env()) != 0 ||
        start(&T.m1, "m1", "master_branch", m1_env_s) != 0)
        return -1;
    snprintf(T.top_url_env, sizeof(T.top_url_env), "BRANCHGATE_URL=%s", T.top.url);
    snprintf(T.top_tok_env, sizeof(T.top_tok_env), "BRANCHGATE_ADMIN_TOKEN=%s", T.top.token);
    snprintf(T.m1_url_env, sizeof(T.m1_url_env), "BRANCHGATE_URL=%s", T.m1.url);
    snprintf(T.m1_tok_env, sizeof(T.m1_tok_env), "BRANCHGATE_ADMIN_TOKEN=%s", T.m1.token);
    bg_th_note_secret(PAIR_KEY);
    bg_th_note_secret(PASSWORD);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    assert_int_equal(bg_th_stop(&T.top, SIGTERM, 10000), 0);
    assert_int_equal(bg_th_stop(&T.m1, SIGTERM, 10000), 0);
    bg_th_rmtree(T.root);
    return 0;
}

/* ---- usage and help ---- */

static void test_usage_errors(void **state)
{
    (void)state;
    static const char *const cases[][8] = {
        {"nope", NULL},
        {"help", "nope", NULL},
        {"branch", NULL},
        {"branch", "frobnicate", NULL},
        {"branch", "show", NULL},
        {"branch", "show", "a", "b", NULL},
        {"branch", "list", "--bogus", NULL},
        {"branch", "list", "--limit", NULL},
        {"branch", "list", "--limit", "0", NULL},
        {"branch", "list", "--json=yes", NULL},
        {"branch", "ping", NULL},
        {"branch", "register", "x", "--type", "master_branch", NULL},
        {"org", "add-user", "x", "--email", "a@example.com", "--name", "A", NULL},
        {"license", "issue", "--org", "x", NULL},
        {"license", "validate", "--domain", "example.com", NULL},
        {"assembly", NULL},
        {"assembly", "submit", NULL},
        {"assembly", "submit", "some.wav", NULL},
        {"status", NULL},
        {"dlq", "requeue", NULL},
        {"token", "create", "--timeout", "soon", NULL},
        {"backup", NULL},
        {"init", "--name", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run r = cli(cases[i], top_env());
        char what[200];
        snprintf(what, sizeof(what), "usage case %zu (%s %s)", i, cases[i][0],
                 cases[i][1] ? cases[i][1] : "");
        expect_rc(&r, 2, what);
        assert_true(strlen(r.err) > 0); /* the reason is on stderr */
        run_free(&r);
    }
    /* No server URL anywhere: a usage error that says where to put one. */
    const char *args[] = {"token", "list", NULL};
    const char *env[] = {"BRANCHGATE_DATA=/nonexistent-branchgate-dir", NULL};
    run r = cli(args, env);
    expect_rc(&r, 2, "no URL");
    expect_in(r.err, "BRANCHGATE_URL");
    run_free(&r);
    /* A URL but no token. */
    const char *env2[] = {T.top_url_env, "BRANCHGATE_DATA=/nonexistent-branchgate-dir", NULL};
    r = cli(args, env2);
    expect_rc(&r, 2, "no token");
    expect_in(r.err, "BRANCHGATE_ADMIN_TOKEN");
    run_free(&r);
}

static void test_help(void **state)
{
    (void)state;
    const char *h[] = {"help", NULL};
    run r = cli(h, NULL);
    expect_rc(&r, 0, "help");
    static const char *const cmds[] = {"init",    "serve",    "cleanup", "backup",
                                       "version", "branch",   "org",     "license",
                                       "token",   "assembly", "status",  "dlq"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        expect_in(r.out, cmds[i]);
    run_free(&r);
    /* `help CMD` and `CMD --help` say the same, with every option and an
     * example. */
    static const struct {
        const char *cmd, *sub, *needles[4];
    } topics[] = {
        {"branch", "register", {"--branch-url", "--key-file", "example:", "--json"}},
        {"org", "add-user", {"--password-file", "--password-env", "example:", "--url"}},
        {"license", "issue", {"--valid-for", "--max-branches", "example:", "--token"}},
        {"token", "revoke", {"create", "--label", "example:", "--data"}},
        {"assembly", "submit", {"--template", "--wait", "--field", "example:"}},
        {"dlq", "list", {"requeue", "--outbox", "example:", "--timeout"}},
        {"status", NULL, {"ASSEMBLY_ID", "example:", "--json", "--cacert"}},
        {"backup", NULL, {"--to", "--data", "example:", "integrity"}},
        {"cleanup", NULL, {"--branch", "--older-than", "example:", "--data"}},
        {"init", NULL, {"--name", "--type", "example:", "--url"}},
    };
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        const char *a1[] = {"help", topics[i].cmd, NULL};
        const char *a2[] = {topics[i].cmd, topics[i].sub ? topics[i].sub : "--help",
                            topics[i].sub ? "--help" : NULL, NULL};
        run r1 = cli(a1, NULL), r2 = cli(a2, NULL);
        expect_rc(&r1, 0, topics[i].cmd);
        expect_rc(&r2, 0, topics[i].cmd);
        for (size_t k = 0; k < 4; k++) {
            expect_in(r1.out, topics[i].needles[k]);
            expect_in(r2.out, topics[i].needles[k]);
        }
        assert_string_equal(r1.out, r2.out);
        run_free(&r1);
        run_free(&r2);
    }
}

/* ---- branches ---- */

static void register_cmd(const char *const *env, const char *name, const char *url,
                         const char *type, const char *key_file, const char *key_env, int want)
{
    const char *args[16] = {"branch", "register", name, "--branch-url", url, "--type", type};
    int n = 7;
    args[n++] = key_file ? "--key-file" : "--key-env";
    args[n++] = key_file ? key_file : key_env;
    args[n] = NULL;
    const char *e[5] = {env[0], env[1], "CLI_TEST_PAIR_KEY=" PAIR_KEY, NULL};
    run r = cli(args, e);
    expect_rc(&r, want, "branch register");
    assert_null(strstr(r.out, PAIR_KEY));
    assert_null(strstr(r.err, PAIR_KEY));
    if (want == 0)
        expect_in(r.out, "registered branch");
    run_free(&r);
}

static void test_branch_commands(void **state)
{
    (void)state;
    char keyfile[320];
    snprintf(keyfile, sizeof(keyfile), "%s/pair.key", T.root);
    assert_true(write_file(keyfile, PAIR_KEY "\n", strlen(PAIR_KEY) + 1));
    /* Both directions with the same key: from a file on the top, from an
     * environment variable on the master. */
    register_cmd(top_env(), "m1", T.m1.url, "master_branch", keyfile, NULL, 0);
    register_cmd(m1_env(), "top", T.top.url, "top_branch", NULL, "CLI_TEST_PAIR_KEY", 0);
    register_cmd(top_env(), "m1", T.m1.url, "master_branch", keyfile, NULL, 1); /* exists */

    const char *list[] = {"branch", "list", NULL};
    run r = cli(list, top_env());
    expect_rc(&r, 0, "branch list");
    expect_in(r.out, "m1");
    expect_in(r.out, T.m1.url);
    no_token(&r, &T.top);
    run_free(&r);
    const char *listj[] = {"branch", "list", "--json", NULL};
    r = cli(listj, top_env());
    expect_rc(&r, 0, "branch list --json");
    json_t *j = out_json(&r);
    json_t *b0 = json_array_get(json_object_get(j, "branches"), 0);
    assert_string_equal(json_string_value(json_object_get(b0, "branch_name")), "m1");
    json_decref(j);
    run_free(&r);

    const char *show[] = {"branch", "show", "m1", NULL};
    r = cli(show, top_env());
    expect_rc(&r, 0, "branch show");
    expect_in(r.out, "branch_type: master_branch");
    run_free(&r);

    /* Both sides hold the key, so a ping is accepted at once, both ways. */
    const char *ping[] = {"branch", "ping", "m1", NULL};
    r = cli(ping, top_env());
    expect_rc(&r, 0, "branch ping");
    expect_in(r.out, "ok");
    run_free(&r);
    const char *pingj[] = {"branch", "ping", "top", "--json", NULL};
    r = cli(pingj, m1_env());
    expect_rc(&r, 0, "branch ping --json");
    j = out_json(&r);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    run_free(&r);
    const char *all[] = {"branch", "ping", "--all", NULL};
    r = cli(all, top_env());
    expect_rc(&r, 0, "branch ping --all");
    expect_in(r.out, "m1");
    run_free(&r);

    const char *status[] = {"branch", "status", "m1", NULL};
    r = cli(status, top_env());
    expect_rc(&r, 0, "branch status");
    expect_in(r.out, "breaker: closed");
    expect_in(r.out, "outbox.depth: ");
    run_free(&r);
    const char *statusj[] = {"branch", "status", "m1", "--json", NULL};
    r = cli(statusj, top_env());
    expect_rc(&r, 0, "branch status --json");
    j = out_json(&r);
    assert_true(json_is_object(json_object_get(j, "outbox")));
    json_decref(j);
    run_free(&r);

    /* A peer that does not answer: the ping fails (exit 1); remove
     * deactivates it; an unknown name is the server's 404. */
    register_cmd(top_env(), "ghost", "http://127.0.0.1:9", "master_branch", keyfile, NULL, 0);
    const char *pg[] = {"branch", "ping", "ghost", NULL};
    r = cli(pg, top_env());
    expect_rc(&r, 1, "ping ghost");
    expect_in(r.out, "FAILED");
    run_free(&r);
    const char *rm[] = {"branch", "remove", "ghost", NULL};
    r = cli(rm, top_env());
    expect_rc(&r, 0, "branch remove");
    expect_in(r.out, "deactivated");
    run_free(&r);
    const char *showg[] = {"branch", "show", "ghost", "--json", NULL};
    r = cli(showg, top_env());
    expect_rc(&r, 0, "show ghost");
    j = out_json(&r);
    assert_true(json_is_false(json_object_get(j, "is_active")));
    json_decref(j);
    run_free(&r);
    const char *nope[] = {"branch", "status", "nope", NULL};
    r = cli(nope, top_env());
    expect_rc(&r, 1, "branch status nope");
    expect_in(r.err, "HTTP 404 BRANCH_NOT_FOUND");
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* ---- organisations ---- */

static void test_org_commands(void **state)
{
    (void)state;
    const char *create[] = {"org", "create", "Acme CLI", "--json", NULL};
    run r = cli(create, top_env());
    expect_rc(&r, 0, "org create");
    json_t *j = out_json(&r);
    snprintf(T.org_id, sizeof(T.org_id), "%s", json_string_value(json_object_get(j, "id")));
    bg_th_note_secret(json_string_value(json_object_get(j, "webhook_secret")));
    assert_int_equal(strlen(T.org_id), 36);
    json_decref(j);
    run_free(&r);
    const char *text[] = {"org", "create", "Text Org", NULL};
    r = cli(text, top_env());
    expect_rc(&r, 0, "org create (text)");
    expect_in(r.out, "name: Text Org");
    expect_in(r.out, "webhook_secret: whsec_");
    run_free(&r);

    const char *list[] = {"org", "list", NULL};
    r = cli(list, top_env());
    expect_rc(&r, 0, "org list");
    expect_in(r.out, "Acme CLI");
    expect_in(r.out, T.org_id);
    run_free(&r);
    const char *page[] = {"org", "list", "--json", "--limit", "1", NULL};
    r = cli(page, top_env());
    expect_rc(&r, 0, "org list --json --limit 1");
    j = out_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "organizations")), 1);
    assert_true(json_is_string(json_object_get(j, "next_cursor")));
    json_decref(j);
    run_free(&r);

    /* Passwords from the environment, a file and stdin; never argv. */
    const char *u1[] = {"org", "add-user", T.org_id, "--email",        "ada@example.com", "--name",
                        "Ada", "--role",   "owner",  "--password-env", "CLI_TEST_PW",     NULL};
    const char *pw_env[] = {T.top_url_env, T.top_tok_env, "CLI_TEST_PW=" PASSWORD, NULL};
    r = cli(u1, pw_env);
    expect_rc(&r, 0, "add-user (env)");
    expect_in(r.out, "ada@example.com");
    run_free(&r);
    char pwfile[320];
    snprintf(pwfile, sizeof(pwfile), "%s/pw.txt", T.root);
    assert_true(write_file(pwfile, PASSWORD "\n", strlen(PASSWORD) + 1));
    const char *u2[] = {"org",    "add-user", T.org_id,          "--email", "bob@example.com",
                        "--name", "Bob",      "--password-file", pwfile,    "--json",
                        NULL};
    r = cli(u2, top_env());
    expect_rc(&r, 0, "add-user (file)");
    j = out_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "member");
    assert_null(json_object_get(j, "password"));
    json_decref(j);
    run_free(&r);
    const char *u3[] = {"org",    "add-user", T.org_id,          "--email", "cy@example.com",
                        "--name", "Cy",       "--password-file", "-",       NULL};
    r = cli_in(u3, top_env(), pwfile);
    expect_rc(&r, 0, "add-user (stdin)");
    run_free(&r);
    r = cli(u1, pw_env);
    expect_rc(&r, 1, "add-user again");
    expect_in(r.err, "USER_EXISTS");
    run_free(&r);
    /* The user logs in with the password read from the file. */
    char tok[4096];
    assert_int_equal(bg_th_login(&T.top, "bob@example.com", PASSWORD, T.org_id, tok, sizeof(tok)),
                     0);

    /* Sync to the master (registered both ways above): the organisation
     * arrives there. */
    const char *sync[] = {"org", "sync", T.org_id, "--branch", "m1", NULL};
    r = cli(sync, top_env());
    expect_rc(&r, 0, "org sync");
    expect_in(r.out, "queued");
    run_free(&r);
    const char *bad[] = {"org", "sync", T.org_id, "--branch", "m1,nobody", NULL};
    r = cli(bad, top_env());
    expect_rc(&r, 1, "org sync to an unknown branch");
    expect_in(r.err, "BRANCH_NOT_FOUND");
    run_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s", T.org_id);
    assert_true(bg_th_wait_field(&T.m1, path, "name", "Acme CLI", WAIT_MS) >= 0);
}

/* ---- licenses ---- */

static void test_license_commands(void **state)
{
    (void)state;
    const char *issue[] = {"license",     "issue", "--org",          T.org_id,
                           "--tier",      "pro",   "--domain",       "example.com,*.example.org",
                           "--feature",   "sso",   "--max-branches", "5",
                           "--max-users", "10",    "--valid-for",    "365d",
                           "--json",      NULL};
    run r = cli(issue, top_env());
    expect_rc(&r, 0, "license issue");
    json_t *j = out_json(&r);
    char id[64], key[8192];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
    snprintf(key, sizeof(key), "%s", json_string_value(json_object_get(j, "license_key")));
    assert_int_equal(strncmp(key, "BG1.", 4), 0);
    assert_int_equal(json_array_size(json_object_get(j, "domains")), 2);
    json_decref(j);
    run_free(&r);
    /* Only a top branch issues. */
    r = cli(issue, m1_env());
    expect_rc(&r, 1, "license issue on a master");
    expect_in(r.err, "NOT_TOP_BRANCH");
    run_free(&r);

    const char *show[] = {"license", "show", id, NULL};
    r = cli(show, top_env());
    expect_rc(&r, 0, "license show");
    expect_in(r.out, "status: active");
    expect_in(r.out, "limits.branches: 5");
    run_free(&r);

    char keyfile[320];
    snprintf(keyfile, sizeof(keyfile), "%s/license.key", T.root);
    assert_true(write_file(keyfile, key, strlen(key)));
    const char *ok[] = {"license",    "validate", "--domain", "a.example.org",
                        "--key-file", keyfile,    NULL};
    r = cli(ok, top_env());
    expect_rc(&r, 0, "validate (valid)");
    expect_in(r.out, "VALID");
    run_free(&r);
    const char *mis[] = {"license", "validate", "--domain", "example.net",
                         "--key",   key,        "--json",   NULL};
    r = cli(mis, top_env());
    expect_rc(&r, 1, "validate (domain mismatch)");
    j = out_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "DOMAIN_MISMATCH");
    json_decref(j);
    run_free(&r);

    const char *revoke[] = {"license", "revoke", id, NULL};
    r = cli(revoke, top_env());
    expect_rc(&r, 0, "license revoke");
    expect_in(r.out, "revoked");
    run_free(&r);
    r = cli(revoke, top_env());
    expect_rc(&r, 1, "revoke again");
    expect_in(r.err, "LICENSE_NOT_ACTIVE");
    run_free(&r);
    r = cli(ok, top_env());
    expect_rc(&r, 1, "validate (revoked)");
    expect_in(r.out, "SUSPENDED");
    run_free(&r);
}

/* ---- tokens ---- */

static void test_token_commands(void **state)
{
    (void)state;
    const char *create[] = {"token", "create", "--label", "cli-test", "--json", NULL};
    run r = cli(create, top_env());
    expect_rc(&r, 0, "token create");
    json_t *j = out_json(&r);
    char id[64], tok[256], tok_env[300];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
    snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "token")));
    bg_th_note_secret(tok);
    json_decref(j);
    run_free(&r);

    /* The new token works from the environment. */
    snprintf(tok_env, sizeof(tok_env), "BRANCHGATE_ADMIN_TOKEN=%s", tok);
    const char *env[] = {T.top_url_env, tok_env, NULL};
    const char *list[] = {"token", "list", NULL};
    r = cli(list, env);
    expect_rc(&r, 0, "token list with the new token");
    expect_in(r.out, "cli-test");
    assert_null(strstr(r.out, tok));
    run_free(&r);
    /* URL and token from the data directory alone. */
    char data_env[320];
    snprintf(data_env, sizeof(data_env), "BRANCHGATE_DATA=%s", T.top.dir);
    const char *denv[] = {data_env, NULL};
    r = cli(list, denv);
    expect_rc(&r, 0, "token list from the data dir");
    no_token(&r, &T.top);
    run_free(&r);
    const char *dflag[] = {"token", "list", "--data", T.top.dir, "--json", NULL};
    r = cli(dflag, NULL);
    expect_rc(&r, 0, "token list --data");
    j = out_json(&r);
    assert_true(json_array_size(json_object_get(j, "tokens")) >= 2);
    json_decref(j);
    run_free(&r);

    const char *revoke[] = {"token", "revoke", id, NULL};
    r = cli(revoke, top_env());
    expect_rc(&r, 0, "token revoke");
    expect_in(r.out, id);
    run_free(&r);
    r = cli(list, env);
    expect_rc(&r, 1, "a revoked token");
    expect_in(r.err, "HTTP 403 INVALID_TOKEN");
    run_free(&r);
    r = cli(revoke, top_env());
    expect_rc(&r, 1, "revoke again");
    expect_in(r.err, "TOKEN_NOT_FOUND");
    run_free(&r);
}

/* ---- assemblies ---- */

static bool make_wav(const char *path, int freq, int seconds)
{
    char src[96];
    snprintf(src, sizeof(src), "sine=frequency=%d:duration=%d", freq, seconds);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execlp("ffmpeg", "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
               src, path, (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void assembly_id_of(const run *r, char id[80])
{
    json_t *j = out_json(r);
    snprintf(id, 80, "%s", json_string_value(json_object_get(j, "assembly_id")));
    json_decref(j);
    assert_int_equal(strlen(id), 64);
}

static void test_assembly_submit(void **state)
{
    (void)state;
    char wav[320], bogus[320], id[80];
    snprintf(wav, sizeof(wav), "%s/tone.wav", T.root);
    snprintf(bogus, sizeof(bogus), "%s/noise.wav", T.root);
    assert_true(make_wav(wav, 440, 3));

    /* probe, several PATCHes, --wait: events, then the results. */
    const char *probe[] = {"assembly",     "submit", wav,       "--template", "probe", "--wait",
                           "--chunk-size", "65536",  "--field", "title=A4",   NULL};
    run r = cli(probe, top_env());
    expect_rc(&r, 0, "submit probe --wait");
    expect_in(r.out, "assembly:completed");
    expect_in(r.out, "step:done");
    expect_in(r.out, "state: ASSEMBLY_COMPLETED");
    expect_in(r.out, "results:");
    expect_in(r.out, "meta");
    expect_in(r.err, "upload tone.wav: 65536/"); /* plain progress lines: stderr is no tty */
    expect_in(r.err, "(100%)");
    no_token(&r, &T.top);
    run_free(&r);

    /* audio-preview with --json: stdout is the final status JSON only. */
    const char *prev[] = {"assembly",      "submit", wav,      "--template",
                          "audio-preview", "--wait", "--json", NULL};
    r = cli(prev, top_env());
    expect_rc(&r, 0, "submit audio-preview --wait --json");
    json_t *j = out_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "ok")), "ASSEMBLY_COMPLETED");
    json_t *p0 = json_array_get(json_object_get(json_object_get(j, "results"), "preview"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(p0, "ssl_url")), "/preview/"));
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "assembly_id")));
    json_decref(j);
    expect_in(r.err, "assembly:completed"); /* the events went to stderr */
    run_free(&r);

    /* Submitting it again finds the same assembly and uploads nothing. */
    r = cli(prev, top_env());
    expect_rc(&r, 0, "submit again");
    expect_in(r.err, "exists (ASSEMBLY_COMPLETED)");
    assert_null(strstr(r.err, "upload tone.wav"));
    run_free(&r);

    const char *st[] = {"status", id, NULL};
    r = cli(st, top_env());
    expect_rc(&r, 0, "status");
    expect_in(r.out, "state: ASSEMBLY_COMPLETED");
    expect_in(r.out, "preview");
    expect_in(r.out, "/api/v1/files/top/");
    run_free(&r);
    const char *stj[] = {"status", id, "--json", NULL};
    r = cli(stj, top_env());
    expect_rc(&r, 0, "status --json");
    char got[80];
    assembly_id_of(&r, got);
    assert_string_equal(got, id);
    run_free(&r);
    const char *none[] = {"status", "0000", NULL};
    r = cli(none, top_env());
    expect_rc(&r, 1, "status of nothing");
    expect_in(r.err, "ASSEMBLY_NOT_FOUND");
    run_free(&r);

    /* A template the branch does not have; a file that is not there. */
    const char *tpl[] = {"assembly", "submit", wav, "--template", "no-such-template", NULL};
    r = cli(tpl, top_env());
    expect_rc(&r, 1, "submit with an unknown template");
    expect_in(r.err, "HTTP 404 TEMPLATE_NOT_FOUND");
    run_free(&r);
    const char *missing[] = {"assembly",   "submit", "/nonexistent-dir/x.wav",
                             "--template", "probe",  NULL};
    r = cli(missing, top_env());
    expect_rc(&r, 1, "submit of a missing file");
    expect_in(r.err, "x.wav");
    run_free(&r);

    /* Not media: the assembly fails, --wait exits 1. */
    assert_true(write_file(bogus, "this is not a wav file at all", 29));
    const char *bad[] = {"assembly", "submit", bogus, "--template", "probe", "--wait", NULL};
    r = cli(bad, top_env());
    expect_rc(&r, 1, "submit of a non-media file");
    expect_in(r.out, "assembly:failed");
    expect_in(r.out, "state: FAILED");
    run_free(&r);
    /* Without --wait the submit ends after the upload. */
    char wav2[320];
    snprintf(wav2, sizeof(wav2), "%s/tone2.wav", T.root);
    assert_true(make_wav(wav2, 660, 2));
    const char *nowait[] = {"assembly", "submit", wav2, "--template", "probe", "--json", NULL};
    r = cli(nowait, top_env());
    expect_rc(&r, 0, "submit without --wait");
    assembly_id_of(&r, got);
    run_free(&r);
}

/* The master refuses PATCHes over 64 KiB: the client halves its 1 MiB
 * chunk on each 413 until they fit. */
static void test_assembly_chunk_shrinks(void **state)
{
    (void)state;
    char wav[320];
    snprintf(wav, sizeof(wav), "%s/tone-m1.wav", T.root);
    assert_true(make_wav(wav, 550, 4));
    const char *args[] = {"assembly", "submit", wav, "--template", "probe", "--wait", NULL};
    run r = cli(args, m1_env());
    expect_rc(&r, 0, "submit on the master");
    expect_in(r.out, "state: ASSEMBLY_COMPLETED");
    expect_in(r.err, "upload tone-m1.wav: 65536/");
    run_free(&r);
}

/* SIGKILL of the branch in the middle of an upload: the client keeps
 * retrying, asks the restarted branch for the upload's offset and
 * finishes from there. */
static void test_assembly_resumes_after_kill(void **state)
{
    (void)state;
    char wav[320], outp[340], errp[340];
    snprintf(wav, sizeof(wav), "%s/tone-long.wav", T.root);
    snprintf(outp, sizeof(outp), "%s/resume.out", T.root);
    snprintf(errp, sizeof(errp), "%s/resume.err", T.root);
    assert_true(make_wav(wav, 880, 180)); /* 15 MiB: about 3900 PATCHes of 4 KiB */
    int ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *args[] = {"assembly", "submit",       wav,    "--template", "probe",
                          "--wait",   "--chunk-size", "4096", NULL};
    pid_t pid = cli_spawn(args, top_env(), NULL, ofd, efd);
    close(ofd);
    close(efd);
    /* Kill the branch once a tenth of the file is stored. */
    bool started = false;
    for (long long end = bg_th_now_ms() + WAIT_MS; !started && bg_th_now_ms() < end;) {
        char *err = bg_th_read_file(errp, NULL);
        started = err != NULL && strstr(err, "bytes (10%)") != NULL;
        free(err);
        if (!started)
            bg_th_nap_ms(10);
    }
    assert_true(started);
    assert_int_equal(bg_th_stop(&T.top, SIGKILL, 5000), 128 + SIGKILL);
    char listen[128];
    snprintf(listen, sizeof(listen), "%.100s", T.top.url + strlen("http://"));
    const char *extra[] = {"--listen", listen, NULL};
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", T.top.dir);
    assert_int_equal(bg_th_start(&T.top, dir, extra, top_server_env()), 0);

    int st = 0;
    pid_t got = 0;
    for (long long end = bg_th_now_ms() + 3 * WAIT_MS; got == 0 && bg_th_now_ms() < end;) {
        got = waitpid(pid, &st, WNOHANG);
        if (got == 0)
            bg_th_nap_ms(50);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    run r = {.rc = got == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
             .out = bg_th_read_file(outp, NULL),
             .err = bg_th_read_file(errp, NULL)};
    expect_rc(&r, 0, "submit across a SIGKILL of the branch");
    expect_in(r.err, "resuming tone-long.wav at byte");
    expect_in(r.out, "state: ASSEMBLY_COMPLETED");
    run_free(&r);
}

/* ---- dead letters ---- */

/* The dead job of the assembly in `dlq list --json`, or NULL. */
static json_t *dead_job(const char *assembly_id)
{
    const char *list[] = {"dlq", "list", "--json", NULL};
    run r = cli(list, top_env());
    expect_rc(&r, 0, "dlq list --json");
    json_t *j = out_json(&r), *job = NULL;
    const json_t *jobs = json_object_get(j, "jobs");
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        json_t *x = json_array_get(jobs, i);
        const char *a = json_string_value(json_object_get(x, "assembly_id"));
        if (job == NULL && a != NULL && strcmp(a, assembly_id) == 0)
            job = json_incref(x);
    }
    json_decref(j);
    run_free(&r);
    return job;
}

static void test_dlq(void **state)
{
    (void)state;
    char wav[320], id[80];
    snprintf(wav, sizeof(wav), "%s/tone-dlq.wav", T.root);
    assert_true(make_wav(wav, 770, 2));
    const char *submit[] = {"assembly", "submit", wav,      "--template",
                            "probe",    "--wait", "--json", NULL};
    run r = cli(submit, top_env());
    expect_rc(&r, 0, "submit for the dlq");
    assembly_id_of(&r, id);
    run_free(&r);
    /* Without its upload a replay fails with INPUT_MISSING on every claim
     * (probe allows 2) and the job is dead. */
    char uploads[400];
    snprintf(uploads, sizeof(uploads), "%s/uploads", T.top.dir);
    bg_th_rmtree(uploads);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s/replay", id);
    bg_th_resp hr;
    assert_int_equal(bg_th_send_json(&T.top, "POST", path, T.top.token, NULL, &hr), 0);
    assert_int_equal(hr.status, 202);
    bg_th_resp_free(&hr);

    json_t *job = NULL;
    for (long long end = bg_th_now_ms() + WAIT_MS; job == NULL && bg_th_now_ms() < end;) {
        job = dead_job(id);
        if (job == NULL)
            bg_th_nap_ms(200);
    }
    assert_non_null(job);
    char jid[32];
    snprintf(jid, sizeof(jid), "%lld", (long long)json_integer_value(json_object_get(job, "id")));
    json_decref(job);
    const char *text[] = {"dlq", "list", NULL};
    r = cli(text, top_env());
    expect_rc(&r, 0, "dlq list");
    expect_in(r.out, id);
    run_free(&r);
    const char *outbox[] = {"dlq", "list", "--outbox", "--json", NULL};
    r = cli(outbox, top_env());
    expect_rc(&r, 0, "dlq list --outbox");
    json_t *j = out_json(&r);
    assert_true(json_is_array(json_object_get(j, "messages")));
    json_decref(j);
    run_free(&r);

    const char *requeue[] = {"dlq", "requeue", jid, NULL};
    r = cli(requeue, top_env());
    expect_rc(&r, 0, "dlq requeue");
    expect_in(r.out, "queued");
    run_free(&r);
    const char *again[] = {"dlq", "requeue", "999999", NULL};
    r = cli(again, top_env());
    expect_rc(&r, 1, "dlq requeue of nothing");
    expect_in(r.err, "JOB_NOT_FOUND");
    run_free(&r);
}

/* ---- backup ---- */

/* ---- init --parent ---- */

#define PARENT_KEY "cli-test-parent-key-0123456789-xyz"

static void test_init_parent(void **state)
{
    (void)state;
    char dir[320], env_key[128];
    snprintf(dir, sizeof(dir), "%s/child", T.root);
    snprintf(env_key, sizeof(env_key), "BRANCHGATE_PARENT_KEY=%s", PARENT_KEY);
    bg_th_note_secret(PARENT_KEY);
    /* Usage: one without the other. */
    const char *half[] = {"init", "--data", dir, "--name", "child", "--type", "master_branch",
                          "--parent", T.top.url, NULL};
    run r = cli(half, NULL);
    expect_rc(&r, 2, "init --parent without a key");
    run_free(&r);
    /* A parent that does not answer: refused, nothing created. */
    const char *dead[] = {"init", "--data", dir, "--name", "child", "--type", "master_branch",
                          "--parent", "http://127.0.0.1:9", NULL};
    const char *kenv[] = {env_key, NULL};
    r = cli(dead, kenv);
    expect_rc(&r, 1, "init --parent to a dead parent");
    expect_in(r.err, "does not answer");
    run_free(&r);
    struct stat sb;
    assert_int_not_equal(stat(dir, &sb), 0);
    /* The top: its name and type are learnt, the peer is registered. */
    const char *ok[] = {"init", "--data", dir, "--name", "child", "--type", "master_branch",
                        "--parent", T.top.url, NULL};
    r = cli(ok, kenv);
    expect_rc(&r, 0, "init --parent");
    expect_in(r.out, "registered the parent 'top' (top_branch)");
    assert_null(strstr(r.out, PARENT_KEY));
    assert_null(strstr(r.err, PARENT_KEY));
    run_free(&r);
    bg_th_proc child;
    assert_int_equal(bg_th_start(&child, dir, NULL, NULL), 0);
    /* The top registers the child with the same key: the child's ping of
     * its parent authenticates. */
    assert_true(bg_th_register(&T.top, "child", child.url, "master_branch", PARENT_KEY));
    bg_th_resp resp;
    assert_int_equal(bg_th_post_json(&child, "/api/v1/branches/top/ping", child.token, "{}", &resp),
                     0);
    json_t *j = bg_th_json(&resp);
    if (!json_is_true(json_object_get(j, "ok")))
        fprintf(stderr, "ping: %ld %s\n", resp.status, resp.body);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    bg_th_resp_free(&resp);
    assert_int_equal(bg_th_stop(&child, SIGTERM, 10000), 0);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/branches/child");
    assert_int_equal(bg_th_send_json(&T.top, "DELETE", path, T.top.token, NULL, &resp), 0);
    bg_th_resp_free(&resp);
}

static bool copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char a[400], b[400];
    snprintf(a, sizeof(a), "%s/%s", from_dir, name);
    snprintf(b, sizeof(b), "%s/%s", to_dir, name);
    size_t len;
    char *data = bg_th_read_file(a, &len);
    bool ok = data != NULL && write_file(b, data, len);
    free(data);
    chmod(b, 0600);
    return ok;
}

static void test_backup(void **state)
{
    (void)state;
    char dest[320];
    snprintf(dest, sizeof(dest), "%s/top-backup.db", T.root);
    const char *args[] = {"backup", "--data", T.top.dir, "--to", dest, "--json", NULL};
    run r = cli(args, NULL);
    expect_rc(&r, 0, "backup of the running top");
    json_t *j = out_json(&r);
    assert_true(json_integer_value(json_object_get(j, "bytes")) > 4096);
    json_decref(j);
    run_free(&r);
    size_t len;
    char *db = bg_th_read_file(dest, &len);
    assert_non_null(db);
    assert_true(len > 100 && memcmp(db, "SQLite format 3", 16) == 0);
    free(db);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char part[340];
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_int_not_equal(access(part, F_OK), 0);

    /* Restore: a new data dir of the top's keys and config with the copy
     * as its database starts, and holds what the top held. */
    char dir[320], dbpath[400];
    snprintf(dir, sizeof(dir), "%s/restored", T.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    static const char *const files[] = {"branchgate.json", "master.key", "signing.key",
                                        "signing.pub"};
    for (size_t i = 0; i < 4; i++)
        assert_true(copy_file(T.top.dir, dir, files[i]));
    snprintf(dbpath, sizeof(dbpath), "%s/branchgate.db", dir);
    assert_int_equal(rename(dest, dbpath), 0);
    bg_th_proc p;
    const char *env[] = {T.tpl_env, NULL};
    assert_int_equal(bg_th_start(&p, dir, NULL, env), 0);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s", T.org_id);
    bg_th_resp hr;
    assert_int_equal(bg_th_get(&p, path, T.top.token, &hr), 0); /* the top's token works */
    assert_int_equal(hr.status, 200);
    json_t *o = bg_th_json(&hr);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "Acme CLI");
    json_decref(o);
    bg_th_resp_free(&hr);
    assert_int_equal(bg_th_stop(&p, SIGTERM, 10000), 0);

    /* Not a data directory; the database itself as destination. */
    const char *bad[] = {"backup", "--data", "/nonexistent-branchgate-dir", "--to", dest, NULL};
    r = cli(bad, NULL);
    expect_rc(&r, 1, "backup of nothing");
    run_free(&r);
    char live[400];
    snprintf(live, sizeof(live), "%s/branchgate.db", T.top.dir);
    const char *self[] = {"backup", "--data", T.top.dir, "--to", live, NULL};
    r = cli(self, NULL);
    expect_rc(&r, 1, "backup onto the database");
    expect_in(r.err, "the database itself");
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_branch_commands),
        cmocka_unit_test(test_org_commands),
        cmocka_unit_test(test_license_commands),
        cmocka_unit_test(test_token_commands),
        cmocka_unit_test(test_assembly_submit),
        cmocka_unit_test(test_assembly_chunk_shrinks),
        cmocka_unit_test(test_assembly_resumes_after_kill),
        cmocka_unit_test(test_dlq),
        cmocka_unit_test(test_backup),
        cmocka_unit_test(test_init_parent),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
