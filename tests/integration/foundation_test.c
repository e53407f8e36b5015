#define _GNU_SOURCE
/* Foundation: a real branchgate process on loopback — routing, errors,
 * admin auth, persistence across restarts and kills, graceful drain,
 * configuration errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

typedef struct fixture {
    char dir[256];
    bg_th_proc p;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    bg_th_tmpdir(f->dir);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    if (bg_th_start(&f->p, data, NULL, NULL) != 0) {
        char *log = bg_th_read_file(f->p.log, NULL);
        fprintf(stderr, "server did not start:\n%s\n", log ? log : "");
        free(log);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bg_th_stop(&f->p, SIGKILL, 5000);
    bg_th_rmtree(f->dir);
    free(f);
    return 0;
}

static void test_healthz(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "branch")), "main");
    json_decref(j);
    char rid[200];
    assert_true(bg_th_header(&r, "x-request-id", rid, sizeof(rid)));
    assert_true(strlen(rid) >= 16);
    bg_th_resp_free(&r);

    /* A sane X-Request-Id is echoed; an insane one is replaced. */
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", f->p.url);
    const char *const mine[] = {"X-Request-Id: trace-abc.123", NULL};
    assert_int_equal(bg_th_http("GET", url, NULL, NULL, 0, mine, false, &r), 0);
    assert_true(bg_th_header(&r, "x-request-id", rid, sizeof(rid)));
    assert_string_equal(rid, "trace-abc.123");
    bg_th_resp_free(&r);
    const char *const bad[] = {"X-Request-Id: has space<script>", NULL};
    assert_int_equal(bg_th_http("GET", url, NULL, NULL, 0, bad, false, &r), 0);
    assert_true(bg_th_header(&r, "x-request-id", rid, sizeof(rid)));
    assert_null(strchr(rid, '<'));
    bg_th_resp_free(&r);

    /* HTTP/2 (cleartext, prior knowledge) serves the same route. */
    assert_int_equal(bg_th_http("GET", url, NULL, NULL, 0, NULL, true, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
}

static void test_readyz_and_metrics(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* /metrics needs the admin token unless metrics.public. */
    assert_int_equal(bg_th_get(&f->p, "/metrics", NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "AUTH_REQUIRED"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/metrics", f->p.token, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "branchgate_http_requests_total{route=\"GET /readyz\",status=\"200\"} 1"));
    assert_non_null(strstr(r.body, "branchgate_http_request_duration_seconds_bucket{route=\"GET /readyz\",le=\"+Inf\"} 1"));
    bg_th_resp_free(&r);
}

static void test_not_found_and_method(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/nope", NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 404, "NOT_FOUND"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens/extra/segments", f->p.token, &r), 0);
    assert_true(bg_th_is_error(&r, 404, "NOT_FOUND"));
    bg_th_resp_free(&r);

    char url[256], allow[64];
    snprintf(url, sizeof(url), "%s/healthz", f->p.url);
    assert_int_equal(bg_th_http("DELETE", url, NULL, NULL, 0, NULL, false, &r), 0);
    assert_true(bg_th_is_error(&r, 405, "METHOD_NOT_ALLOWED"));
    assert_true(bg_th_header(&r, "allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET");
    bg_th_resp_free(&r);
    snprintf(url, sizeof(url), "%s/api/v1/tokens", f->p.url);
    assert_int_equal(bg_th_http("PUT", url, f->p.token, NULL, 0, NULL, false, &r), 0);
    assert_true(bg_th_is_error(&r, 405, "METHOD_NOT_ALLOWED"));
    assert_true(bg_th_header(&r, "allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, POST");
    bg_th_resp_free(&r);
}

static void test_body_limits_and_json(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    /* 1.5 MiB against the default 1 MiB cap. */
    size_t n = 3u << 19;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(bg_th_post_json(&f->p, "/api/v1/tokens", f->p.token, big, &r), 0);
    assert_true(bg_th_is_error(&r, 413, "PAYLOAD_TOO_LARGE"));
    bg_th_resp_free(&r);
    free(big);

    const char *bad[] = {"{\"label\":", "[1,2]", "", "{\"a\":1,\"a\":2}", "\"str\"", "{\"label\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bg_th_post_json(&f->p, "/api/v1/tokens", f->p.token, bad[i], &r), 0);
        assert_true(bg_th_is_error(&r, 400, "INVALID_JSON"));
        bg_th_resp_free(&r);
    }
    /* Valid JSON, wrong field type: a 400 naming the field. */
    assert_int_equal(bg_th_post_json(&f->p, "/api/v1/tokens", f->p.token, "{\"label\":7}", &r), 0);
    assert_true(bg_th_is_error(&r, 400, "INVALID_FIELD"));
    assert_non_null(strstr(r.body, "label"));
    bg_th_resp_free(&r);
    /* Nothing was created by any of the bad requests. */
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", f->p.token, &r), 0);
    json_t *j = bg_th_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "tokens")), 1);
    json_decref(j);
    bg_th_resp_free(&r);
}

static void test_admin_auth(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "AUTH_REQUIRED"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", "bga_wrong", &r), 0);
    assert_true(bg_th_is_error(&r, 403, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
    /* A prefix of the real token, and the token with one character changed. */
    char tok[128];
    snprintf(tok, sizeof(tok), "%s", f->p.token);
    tok[strlen(tok) - 1] = '\0';
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", tok, &r), 0);
    assert_true(bg_th_is_error(&r, 403, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
    snprintf(tok, sizeof(tok), "%s", f->p.token);
    tok[5] = tok[5] == 'A' ? 'B' : 'A';
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", tok, &r), 0);
    assert_true(bg_th_is_error(&r, 403, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", f->p.token, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
}

/* Creates a token through the API; returns the secret (static buffer). */
static const char *create_token(const bg_th_proc *p, const char *label)
{
    static char secret[128];
    char body[128];
    bg_th_resp r;
    snprintf(body, sizeof(body), "{\"label\":\"%s\"}", label);
    assert_int_equal(bg_th_post_json(p, "/api/v1/tokens", p->token, body, &r), 0);
    assert_int_equal(r.status, 201);
    json_t *j = bg_th_json(&r);
    snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    bg_th_resp_free(&r);
    return secret;
}

static void test_restart_and_kill_keep_data(void **state)
{
    fixture *f = *state;
    char secret[128];
    snprintf(secret, sizeof(secret), "%s", create_token(&f->p, "restart"));
    /* Graceful restart. */
    assert_int_equal(bg_th_stop(&f->p, SIGTERM, 10000), 0);
    char data[300];
    snprintf(data, sizeof(data), "%s", f->p.dir);
    assert_int_equal(bg_th_start(&f->p, data, NULL, NULL), 0);
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", secret, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"restart\""));
    bg_th_resp_free(&r);
    /* Acknowledged just before a SIGKILL: still there afterwards. */
    char second[128];
    snprintf(second, sizeof(second), "%s", create_token(&f->p, "killed"));
    assert_int_equal(bg_th_stop(&f->p, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(bg_th_start(&f->p, data, NULL, NULL), 0);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/audit?limit=%zz", second, &r), 0);
    assert_true(bg_th_is_error(&r, 400, "INVALID_PARAMETER"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/audit?limit=500", second, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    json_t *events = json_object_get(j, "audit_events");
    assert_true(json_array_size(events) >= 3); /* init + two token.create */
    assert_string_equal(json_string_value(json_object_get(json_array_get(events, 0), "action")),
                        "token.create");
    json_decref(j);
    bg_th_resp_free(&r);
    /* The secrets are not stored in the database file. */
    char dbpath[320];
    snprintf(dbpath, sizeof(dbpath), "%s/branchgate.db", data);
    size_t len;
    char *db = bg_th_read_file(dbpath, &len);
    assert_non_null(db);
    assert_null(memmem(db, len, second, strlen(second)));
    assert_null(memmem(db, len, f->p.token, strlen(f->p.token)));
    free(db);
}

static void test_revoke(void **state)
{
    fixture *f = *state;
    char secret[128];
    snprintf(secret, sizeof(secret), "%s", create_token(&f->p, "short-lived"));
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", secret, &r), 0);
    json_t *j = bg_th_json(&r);
    json_t *list = json_object_get(j, "tokens");
    const char *id = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t) if (strcmp(json_string_value(json_object_get(t, "label")),
                                              "short-lived") == 0) id =
        json_string_value(json_object_get(t, "id"));
    assert_non_null(id);
    char url[300];
    snprintf(url, sizeof(url), "%s/api/v1/tokens/%s", f->p.url, id);
    json_decref(j);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_http("DELETE", url, f->p.token, NULL, 0, NULL, false, &r), 0);
    assert_int_equal(r.status, 204);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", secret, &r), 0);
    assert_true(bg_th_is_error(&r, 403, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_http("DELETE", url, f->p.token, NULL, 0, NULL, false, &r), 0);
    assert_true(bg_th_is_error(&r, 404, "TOKEN_NOT_FOUND"));
    bg_th_resp_free(&r);
}

static int connect_to(const char *url)
{
    unsigned port = 0;
    if (sscanf(url, "http://127.0.0.1:%u", &port) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A request whose body is still arriving when SIGTERM lands completes,
 * and the process then exits 0. */
static void test_sigterm_drains_inflight(void **state)
{
    fixture *f = *state;
    char data[300];
    snprintf(data, sizeof(data), "%s", f->p.dir);
    assert_int_equal(bg_th_stop(&f->p, SIGTERM, 10000), 0);
    const char *const env[] = {"BRANCHGATE_SHUTDOWN_DRAIN_MS=15000", NULL};
    assert_int_equal(bg_th_start(&f->p, data, NULL, env), 0);

    int fd = connect_to(f->p.url);
    assert_true(fd >= 0);
    const char *body = "{\"label\":\"drained\"}";
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "POST /api/v1/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      f->p.token, strlen(body));
    assert_int_equal(write(fd, head, (size_t)hl), hl);
    assert_int_equal(write(fd, body, 5), 5);
    /* Let the server read the partial request before the signal. */
    long long until = bg_th_now_ms() + 300;
    while (bg_th_now_ms() < until)
        usleep(10000);
    kill(f->p.pid, SIGTERM);
    usleep(50000);
    kill(f->p.pid, SIGTERM); /* a second signal must not cut the drain short */
    until = bg_th_now_ms() + 500;
    while (bg_th_now_ms() < until)
        usleep(10000);
    assert_true(bg_th_alive(&f->p)); /* still draining */
    ssize_t rest = (ssize_t)strlen(body) - 5;
    assert_int_equal(write(fd, body + 5, (size_t)rest), rest);
    char resp[2048] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    assert_true(strncmp(resp, "HTTP/1.1 201", 12) == 0);
    assert_non_null(strstr(resp, "\"drained\""));
    assert_int_equal(bg_th_stop(&f->p, 0, 10000), 0);
    /* Restart for the teardown and check the drained request was kept. */
    assert_int_equal(bg_th_start(&f->p, data, NULL, NULL), 0);
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/api/v1/tokens", f->p.token, &r), 0);
    assert_non_null(strstr(r.body, "\"drained\""));
    bg_th_resp_free(&r);
}

static void test_config_errors_name_the_key(void **state)
{
    (void)state;
    char dir[256], data[300], cfg[320];
    bg_th_tmpdir(dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    const char *args[] = {"serve", "--data", data, "--listen", "127.0.0.1:0", NULL, NULL, NULL};
    char *out = NULL;

    const char *const env1[] = {"BRANCHGATE_HTTP_THREADS=lots", NULL};
    assert_int_equal(bg_th_run(args, env1, &out), 1);
    assert_non_null(strstr(out, "http.threads"));
    assert_non_null(strstr(out, "BRANCHGATE_HTTP_THREADS"));
    free(out);

    const char *const env2[] = {"BRANCHGATE_LOG_LEVEL=loud", NULL};
    assert_int_equal(bg_th_run(args, env2, &out), 1);
    assert_non_null(strstr(out, "log.level"));
    free(out);

    const char *const env3[] = {"BRANCHGATE_ADMIN_TOKEN=short", NULL};
    assert_int_equal(bg_th_run(args, env3, &out), 1);
    assert_non_null(strstr(out, "admin_token"));
    free(out);

    snprintf(cfg, sizeof(cfg), "%s/bad.json", dir);
    FILE *fp = fopen(cfg, "w");
    fputs("{\"http\":{\"thraeds\":2}}", fp);
    fclose(fp);
    args[5] = "--config";
    args[6] = cfg;
    assert_int_equal(bg_th_run(args, NULL, &out), 1);
    assert_non_null(strstr(out, "http.thraeds"));
    free(out);

    fp = fopen(cfg, "w");
    fputs("{\"http\":{\"max_body_bytes\":\"big\"}}", fp);
    fclose(fp);
    assert_int_equal(bg_th_run(args, NULL, &out), 1);
    assert_non_null(strstr(out, "http.max_body_bytes"));
    free(out);

    const char *args2[] = {"serve", "--data", data, "--listen", "127.0.0.1:99999", NULL};
    assert_int_equal(bg_th_run(args2, NULL, &out), 1);
    assert_non_null(strstr(out, "listen"));
    free(out);
    bg_th_rmtree(dir);
}

static void test_init_cli(void **state)
{
    (void)state;
    char dir[256], data[300], path[400];
    bg_th_tmpdir(dir);
    snprintf(data, sizeof(data), "%s/top", dir);
    const char *args[] = {"init", "--data", data, "--name", "hq", "--type", "top_branch",
                          "--url", "https://hq.example.com", NULL};
    char *out = NULL;
    assert_int_equal(bg_th_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "bga_"));
    free(out);
    struct stat st;
    const char *secret_files[] = {"master.key", "admin.token", "signing.key"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", data, secret_files[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    snprintf(path, sizeof(path), "%s/master.key", data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 32);
    /* A second init refuses and changes nothing. */
    assert_int_equal(bg_th_run(args, NULL, &out), 1);
    assert_non_null(strstr(out, "already initialised"));
    free(out);
    /* Bad type and missing flags. */
    const char *bad[] = {"init", "--data", data, "--name", "x", "--type", "middle_branch", NULL};
    assert_int_equal(bg_th_run(bad, NULL, &out), 1);
    assert_non_null(strstr(out, "branch.type"));
    free(out);
    const char *usage[] = {"init", "--data", data, NULL};
    assert_int_equal(bg_th_run(usage, NULL, &out), 2);
    free(out);
    /* The initialised branch serves with its identity. */
    bg_th_proc p;
    assert_int_equal(bg_th_start(&p, data, NULL, NULL), 0);
    bg_th_resp r;
    assert_int_equal(bg_th_get(&p, "/", NULL, &r), 0);
    json_t *j = bg_th_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "branch")), "hq");
    assert_string_equal(json_string_value(json_object_get(j, "branch_url")), "https://hq.example.com");
    json_decref(j);
    bg_th_resp_free(&r);
    /* --config FILE is applied on top of the identity in DIR. */
    assert_int_equal(bg_th_stop(&p, SIGHUP, 10000), 0);
    char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/extra.json", dir);
    FILE *fp = fopen(cfg, "w");
    fputs("{\"metrics\":{\"public\":true}}", fp);
    fclose(fp);
    const char *with_cfg[] = {"--config", cfg, NULL};
    assert_int_equal(bg_th_start(&p, data, with_cfg, NULL), 0);
    assert_int_equal(bg_th_get(&p, "/", NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"branch\":\"hq\""));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&p, "/metrics", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* The environment admin token is accepted too. */
    assert_int_equal(bg_th_stop(&p, SIGTERM, 10000), 0);
    const char *const env[] = {"BRANCHGATE_ADMIN_TOKEN=operator-secret-0123456789", NULL};
    assert_int_equal(bg_th_start(&p, data, NULL, env), 0);
    assert_int_equal(bg_th_get(&p, "/api/v1/tokens", "operator-secret-0123456789", &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_stop(&p, SIGINT, 10000), 0);
    bg_th_rmtree(dir);
}

/* The bundled templates are served; a broken template stops start-up with
 * a message naming the template and the step. */
static void test_templates(void **state)
{
    fixture *f = *state;
    bg_th_resp r;
    assert_int_equal(bg_th_get(&f->p, "/api/v1/templates", f->p.token, &r), 0);
    assert_int_equal(r.status, 200);
    const char *ids[] = {"\"audio-preview\"", "\"video-preview\"", "\"image-thumbnail\"", "\"probe\""};
    for (size_t i = 0; i < 4; i++)
        assert_non_null(strstr(r.body, ids[i]));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/templates/probe", f->p.token, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"/meta/read\""));
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&f->p, "/api/v1/templates/nope", f->p.token, &r), 0);
    assert_true(bg_th_is_error(&r, 404, "TEMPLATE_NOT_FOUND"));
    bg_th_resp_free(&r);

    char dir[256], tdir[300], path[400], env[420], data[300];
    bg_th_tmpdir(dir);
    snprintf(tdir, sizeof(tdir), "%s/templates", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    mkdir(tdir, 0700);
    snprintf(path, sizeof(path), "%s/loop.json", tdir);
    FILE *fp = fopen(path, "w");
    fputs("{\"id\":\"loop\",\"steps\":{\"a\":{\"robot\":\"/meta/read\",\"use\":\"b\"},"
          "\"b\":{\"robot\":\"/audio/encode\",\"use\":\"a\"}}}", fp);
    fclose(fp);
    snprintf(env, sizeof(env), "BRANCHGATE_TEMPLATES_DIR=%s", tdir);
    const char *const envs[] = {env, NULL};
    const char *args[] = {"serve", "--data", data, "--listen", "127.0.0.1:0", NULL};
    char *out = NULL;
    assert_int_equal(bg_th_run(args, envs, &out), 1);
    assert_non_null(strstr(out, "template 'loop', step '"));
    assert_non_null(strstr(out, "cycle"));
    free(out);
    fp = fopen(path, "w");
    fputs("{\"id\":\"loop\",\"steps\":{\"a\":{\"robot\":\"/video/explode\",\"use\":\":original\"}}}", fp);
    fclose(fp);
    assert_int_equal(bg_th_run(args, envs, &out), 1);
    assert_non_null(strstr(out, "template 'loop', step 'a': unknown robot"));
    free(out);
    bg_th_rmtree(dir);
}

static void test_version(void **state)
{
    (void)state;
    const char *args[] = {"version", NULL};
    char *out = NULL;
    assert_int_equal(bg_th_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "branchgate 0."));
    assert_non_null(strstr(out, "h2o 2.2.5"));
    assert_non_null(strstr(out, "SQLite"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limits_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_and_kill_keep_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains_inflight, setup, teardown),
        cmocka_unit_test(test_config_errors_name_the_key),
        cmocka_unit_test(test_init_cli),
        cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
