/* Federation: a top branch and two masters as real processes. Branches
 * register each other, every cross-branch call is authenticated, the
 * pinger notices a killed master and its return, keys rotate, TLS pins are
 * enforced, and no key is ever stored in clear. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PING_MS 500
#define KEY_M1 "pair-key-top-master1-0123456789"
#define KEY_M2 "pair-key-top-master2-0123456789"

static const char *const peer_env[] = {
    "BRANCHGATE_PEERS_PING_INTERVAL_MS=500", "BRANCHGATE_PEERS_BREAKER_FAILURES=2",
    "BRANCHGATE_PEERS_BREAKER_OPEN_MS=600",  "BRANCHGATE_PEERS_CONNECT_TIMEOUT_MS=500",
    "BRANCHGATE_PEERS_TIMEOUT_MS=2000",      NULL};

typedef struct topo {
    char root[256];
    bg_th_proc top, m1, m2;
} topo;

static topo T;

static void must_init(const char *dir, const char *name, const char *type)
{
    const char *args[] = {"init", "--data", dir, "--name", name, "--type", type, NULL};
    char *out = NULL;
    int rc = bg_th_run(args, NULL, &out);
    if (rc != 0)
        fprintf(stderr, "init %s failed: %s\n", name, out ? out : "");
    free(out);
    assert_int_equal(rc, 0);
}

static int start_branch(bg_th_proc *p, const char *name, const char *type, const char *listen)
{
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/%s", T.root, name);
    if (access(dir, F_OK) != 0)
        must_init(dir, name, type);
    const char *extra[] = {"--listen", listen, NULL};
    return bg_th_start(p, dir, listen ? extra : NULL, peer_env);
}

static void must_register(const bg_th_proc *at, const char *name, const char *url,
                          const char *type, const char *key)
{
    assert_true(bg_th_register(at, name, url, type, key));
}

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    if (start_branch(&T.top, "top", "top_branch", NULL) != 0 ||
        start_branch(&T.m1, "master-1", "master_branch", NULL) != 0 ||
        start_branch(&T.m2, "master-2", "master_branch", NULL) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&T.top, SIGKILL, 5000);
    bg_th_stop(&T.m1, SIGKILL, 5000);
    bg_th_stop(&T.m2, SIGKILL, 5000);
    bg_th_rmtree(T.root);
    return 0;
}

static bool all_ok(const bg_th_proc *p, size_t expect)
{
    bg_th_resp r;
    assert_int_equal(bg_th_get(p, "/api/v1/cross-branch/test-communication", p->token, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    json_t *res = json_object_get(j, "results");
    bool ok = json_array_size(res) == expect;
    size_t i;
    json_t *x;
    json_array_foreach(res, i, x) ok = ok && json_is_true(json_object_get(x, "ok"));
    if (!ok)
        fprintf(stderr, "test-communication: %s\n", r.body);
    json_decref(j);
    bg_th_resp_free(&r);
    return ok;
}

static void test_register_both_ways(void **state)
{
    (void)state;
    must_register(&T.top, "master-1", T.m1.url, "master_branch", KEY_M1);
    must_register(&T.top, "master-2", T.m2.url, "master_branch", KEY_M2);
    must_register(&T.m1, "top", T.top.url, "top_branch", KEY_M1);
    /* The compatibility route does the same. */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"branch_name\":\"top\",\"branch_url\":\"%s/\",\"branch_type\":\"top_branch\","
             "\"api_key\":\"%s\"}", T.top.url, KEY_M2);
    bg_th_resp r;
    assert_int_equal(bg_th_post_json(&T.m2, "/api/v1/cross-branch/register-branch", T.m2.token,
                                     body, &r), 0);
    assert_int_equal(r.status, 201);
    json_t *j = bg_th_json(&r);
    /* Stored normalised: the trailing slash is gone; no key in the reply. */
    assert_string_equal(json_string_value(json_object_get(j, "branch_url")), T.top.url);
    assert_null(strstr(r.body, KEY_M2));
    assert_null(json_object_get(j, "api_key"));
    json_decref(j);
    bg_th_resp_free(&r);

    assert_true(all_ok(&T.top, 2));
    assert_true(all_ok(&T.m1, 1));
    assert_true(all_ok(&T.m2, 1));

    /* Duplicates and bad input. */
    assert_int_equal(bg_th_post_json(&T.m2, "/api/v1/branches", T.m2.token, body, &r), 0);
    assert_true(bg_th_is_error(&r, 409, "BRANCH_EXISTS"));
    bg_th_resp_free(&r);
    const struct {
        const char *json, *code;
    } bad[] = {
        {"{\"branch_name\":\"x\",\"branch_url\":\"ftp://a\",\"branch_type\":\"top_branch\",\"api_key\":\"0123456789abcdef\"}", "INVALID_URL"},
        {"{\"branch_name\":\"x\",\"branch_url\":\"http://u:p@a\",\"branch_type\":\"top_branch\",\"api_key\":\"0123456789abcdef\"}", "INVALID_URL"},
        {"{\"branch_name\":\"x\",\"branch_url\":\"http://a\",\"branch_type\":\"side_branch\",\"api_key\":\"0123456789abcdef\"}", "INVALID_BRANCH_TYPE"},
        {"{\"branch_name\":\"x\",\"branch_url\":\"http://a\",\"branch_type\":\"top_branch\",\"api_key\":\"short\"}", "INVALID_API_KEY"},
        {"{\"branch_name\":\"x\",\"branch_url\":\"http://a\",\"branch_type\":\"top_branch\",\"api_key\":\"\"}", "INVALID_API_KEY"},
        {"{\"branch_name\":\"../x\",\"branch_url\":\"http://a\",\"branch_type\":\"top_branch\",\"api_key\":\"0123456789abcdef\"}", "INVALID_BRANCH_NAME"},
        {"{\"branch_url\":\"http://a\",\"branch_type\":\"top_branch\",\"api_key\":\"0123456789abcdef\"}", "INVALID_FIELD"},
        {"{\"branch_name\":\"x\",\"branch_url\":\"http://a\",\"branch_type\":\"top_branch\",\"api_key\":\"0123456789abcdef\",\"spki_pin\":\"md5//x\"}", "INVALID_PIN"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bg_th_post_json(&T.top, "/api/v1/branches", T.top.token, bad[i].json, &r), 0);
        assert_true(bg_th_is_error(&r, 400, bad[i].code));
        bg_th_resp_free(&r);
    }
    /* Only the two real registrations exist; the audit log has them. */
    assert_int_equal(bg_th_get(&T.top, "/api/v1/branches", T.top.token, &r), 0);
    j = bg_th_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "branches")), 2);
    json_decref(j);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&T.top, "/api/v1/audit", T.top.token, &r), 0);
    assert_non_null(strstr(r.body, "branch.register"));
    assert_null(strstr(r.body, KEY_M1));
    bg_th_resp_free(&r);
}

static int peer_call(const bg_th_proc *to, const char *origin, const char *key,
                     const char *extra, bg_th_resp *r)
{
    char url[300], o[300], a[300];
    snprintf(url, sizeof(url), "%s/api/v1/cross-branch/health", to->url);
    snprintf(o, sizeof(o), "X-Branch-Origin: %s", origin);
    const char *h[] = {o, "X-Request-Id: fixed-id", extra, NULL};
    (void)a;
    return bg_th_http("GET", url, key, NULL, 0, origin ? h : h + 1, false, r);
}

static void test_inbound_auth(void **state)
{
    (void)state;
    bg_th_resp r;
    /* The right credentials. */
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "branch_name")), "top");
    assert_string_equal(json_string_value(json_object_get(j, "branch_type")), "top_branch");
    assert_non_null(json_object_get(j, "version"));
    assert_non_null(json_object_get(j, "time"));
    json_decref(j);
    bg_th_resp_free(&r);
    /* Missing origin, missing key. */
    assert_int_equal(peer_call(&T.top, NULL, KEY_M1, NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "CROSS_BRANCH_AUTH_REQUIRED"));
    bg_th_resp_free(&r);
    assert_int_equal(peer_call(&T.top, T.m1.url, NULL, NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "CROSS_BRANCH_AUTH_REQUIRED"));
    bg_th_resp_free(&r);

    /* Wrong key, unknown origin, deactivated branch: byte-identical 403s. */
    must_register(&T.top, "ghost", "http://127.0.0.1:9", "master_branch", "ghost-key-0123456789abc");
    bg_th_resp del;
    assert_int_equal(bg_th_send_json(&T.top, "DELETE", "/api/v1/branches/ghost", T.top.token, NULL, &del), 0);
    assert_int_equal(del.status, 200);
    assert_non_null(strstr(del.body, "\"is_active\":false"));
    bg_th_resp_free(&del);
    bg_th_resp a, b, c;
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M2, NULL, &a), 0);
    assert_int_equal(peer_call(&T.top, "http://127.0.0.1:1", KEY_M1, NULL, &b), 0);
    assert_int_equal(peer_call(&T.top, "http://127.0.0.1:9", "ghost-key-0123456789abc", NULL, &c), 0);
    assert_true(bg_th_is_error(&a, 403, "INVALID_BRANCH_CREDENTIALS"));
    assert_int_equal(b.status, 403);
    assert_int_equal(c.status, 403);
    assert_int_equal(a.len, b.len);
    assert_int_equal(a.len, c.len);
    assert_memory_equal(a.body, b.body, a.len);
    assert_memory_equal(a.body, c.body, a.len);
    bg_th_resp_free(&a);
    bg_th_resp_free(&b);
    bg_th_resp_free(&c);

    /* Destination and hop checks. */
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, "X-Branch-Destination: http://127.0.0.1:1", &r), 0);
    assert_true(bg_th_is_error(&r, 401, "INVALID_DESTINATION"));
    bg_th_resp_free(&r);
    char dest[300];
    snprintf(dest, sizeof(dest), "X-Branch-Destination: %s/", T.top.url);
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, dest, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, "X-Branch-Hops: 5", &r), 0);
    assert_true(bg_th_is_error(&r, 508, "LOOP_DETECTED"));
    bg_th_resp_free(&r);
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, "X-Branch-Hops: 4", &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* Peer routes do not accept admin tokens, admin routes no peer keys. */
    assert_int_equal(bg_th_get(&T.top, "/api/v1/cross-branch/health", T.top.token, &r), 0);
    assert_int_equal(r.status, 401);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&T.top, "/api/v1/branches", KEY_M1, &r), 0);
    assert_true(bg_th_is_error(&r, 403, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
}

static void test_rate_limit(void **state)
{
    (void)state;
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/limited", T.root);
    must_init(dir, "limited", "top_branch");
    const char *const env[] = {"BRANCHGATE_PEERS_RATE_LIMIT_RPS=1", "BRANCHGATE_PEERS_RATE_BURST=2", NULL};
    bg_th_proc p;
    assert_int_equal(bg_th_start(&p, dir, NULL, env), 0);
    must_register(&p, "caller", "http://127.0.0.1:7", "master_branch", "caller-key-0123456789");
    bg_th_resp r;
    long statuses[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(peer_call(&p, "http://127.0.0.1:7", "caller-key-0123456789", NULL, &r), 0);
        statuses[i] = r.status;
        if (r.status == 429) {
            char retry[16];
            assert_true(bg_th_header(&r, "retry-after", retry, sizeof(retry)));
            assert_true(atoi(retry) >= 1);
            assert_true(bg_th_is_error(&r, 429, "RATE_LIMITED"));
        }
        bg_th_resp_free(&r);
    }
    assert_int_equal(statuses[0], 200);
    assert_int_equal(statuses[1], 200);
    assert_int_equal(statuses[3], 429);
    assert_int_equal(bg_th_stop(&p, SIGTERM, 10000), 0);
}

static void test_master_down_and_back(void **state)
{
    (void)state;
    char port[32], listen[64];
    snprintf(port, sizeof(port), "%s", strrchr(T.m2.url, ':') + 1);
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
    assert_true(bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "state", "up", 5000) >= 0);
    assert_int_equal(bg_th_stop(&T.m2, SIGKILL, 5000), 128 + SIGKILL);
    long long took = bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "state", "down", 10000);
    assert_true(took >= 0);
    /* Within two ping intervals; the slack (under one interval) covers the
     * status polling and a loaded machine. */
    assert_true(took <= 2 * PING_MS + 300);
    assert_true(bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "breaker", "open", 5000) >= 0);
    bg_th_resp r;
    assert_int_equal(bg_th_get(&T.top, "/metrics", T.top.token, &r), 0);
    assert_non_null(strstr(r.body, "branchgate_peer_up{branch=\"master-2\"} 0"));
    assert_non_null(strstr(r.body, "branchgate_peer_up{branch=\"master-1\"} 1"));
    assert_non_null(strstr(r.body, "branchgate_peer_rtt_seconds{branch=\"master-1\"}"));
    bg_th_resp_free(&r);
    /* Back on the same address: half-open trial succeeds, breaker closes. */
    assert_int_equal(start_branch(&T.m2, "master-2", "master_branch", listen), 0);
    assert_true(bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "state", "up", 10000) >= 0);
    assert_true(bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "breaker", "closed", 5000) >= 0);
    assert_int_equal(bg_th_get(&T.top, "/metrics", T.top.token, &r), 0);
    assert_non_null(strstr(r.body, "branchgate_peer_up{branch=\"master-2\"} 1"));
    assert_non_null(strstr(r.body, "branchgate_peer_breaker_state{branch=\"master-2\"} 0"));
    bg_th_resp_free(&r);
}

static void test_key_rotation(void **state)
{
    (void)state;
    const char *fresh = "rotated-key-top-master1-987654";
    char body[256];
    snprintf(body, sizeof(body), "{\"api_key\":\"%s\"}", fresh);
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(&T.top, "PATCH", "/api/v1/branches/master-1", T.top.token, body, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* The old key is refused at once, the new one accepted. */
    assert_int_equal(peer_call(&T.top, T.m1.url, KEY_M1, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    bg_th_resp_free(&r);
    assert_int_equal(peer_call(&T.top, T.m1.url, fresh, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* master-1 still sends the old key: its ping of the top fails ... */
    assert_int_equal(bg_th_send_json(&T.m1, "POST", "/api/v1/branches/top/ping", T.m1.token, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"ok\":false"));
    assert_non_null(strstr(r.body, "INVALID_BRANCH_CREDENTIALS"));
    bg_th_resp_free(&r);
    /* ... until its side rotates too. */
    assert_int_equal(bg_th_send_json(&T.m1, "PATCH", "/api/v1/branches/top", T.m1.token, body, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_send_json(&T.m1, "POST", "/api/v1/branches/top/ping", T.m1.token, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"ok\":true"));
    bg_th_resp_free(&r);
    assert_true(all_ok(&T.top, 2));
    assert_int_equal(bg_th_get(&T.top, "/api/v1/audit", T.top.token, &r), 0);
    assert_non_null(strstr(r.body, "branch.rotate_key"));
    assert_null(strstr(r.body, fresh));
    bg_th_resp_free(&r);
}

static char *sh(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    pclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/* JSON-escapes a PEM (newlines) into out. */
static void json_escape(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *p = in; *p && j + 3 < cap; p++) {
        if (*p == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}

static void test_tls_pinning(void **state)
{
    (void)state;
    char dir[320], cmd[2048], cert[400], key[400];
    snprintf(dir, sizeof(dir), "%s/secure", T.root);
    must_init(dir, "secure", "master_branch");
    snprintf(cert, sizeof(cert), "%s/tls-cert.pem", T.root);
    snprintf(key, sizeof(key), "%s/tls-key.pem", T.root);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>&1",
             key, cert);
    free(sh(cmd));
    snprintf(cmd, sizeof(cmd),
             "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der | "
             "openssl dgst -sha256 -binary | openssl base64", cert);
    char *pin_b64 = sh(cmd);
    assert_int_equal(strlen(pin_b64), 44);
    char tls_cert_env[500], tls_key_env[500];
    snprintf(tls_cert_env, sizeof(tls_cert_env), "BRANCHGATE_TLS_CERT=%s", cert);
    snprintf(tls_key_env, sizeof(tls_key_env), "BRANCHGATE_TLS_KEY=%s", key);
    const char *const env[] = {"BRANCHGATE_TLS_LISTEN=127.0.0.1:0", tls_cert_env, tls_key_env, NULL};
    bg_th_proc s;
    assert_int_equal(bg_th_start(&s, dir, NULL, env), 0);
    char urlfile[400];
    snprintf(urlfile, sizeof(urlfile), "%s/tls.url", dir);
    char *tls_url = bg_th_read_file(urlfile, NULL);
    assert_non_null(tls_url);
    tls_url[strcspn(tls_url, "\n")] = '\0';
    assert_true(strncmp(tls_url, "https://127.0.0.1:", 18) == 0);

    /* HTTP/2 through ALPN on the TLS listener. */
    CURL *c = curl_easy_init();
    char url[300];
    snprintf(url, sizeof(url), "%s/healthz", tls_url);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long ver = 0, code = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &ver);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(ver, CURL_HTTP_VERSION_2_0);
    assert_int_equal(code, 200);
    curl_easy_cleanup(c);
    fclose(devnull);

    /* The secure branch knows the top; the top registers it three ways. */
    must_register(&s, "top", T.top.url, "top_branch", "secure-pair-key-0123456789");
    char *pem = bg_th_read_file(cert, NULL);
    char *esc = calloc(1, 16384);
    json_escape(pem, esc, 16384);
    char *body = calloc(1, 20000);
    const struct {
        const char *name, *pin;
        bool cert, ok;
        const char *error;
    } cases[] = {
        {"secure", pin_b64, true, true, NULL},
        {"secure-wrong-pin", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", true, false, "pinned public key"},
        {"secure-no-trust", NULL, false, false, "certificate"},
    };
    for (size_t i = 0; i < 3; i++) {
        int n = snprintf(body, 20000,
                         "{\"branch_name\":\"%s\",\"branch_url\":\"%s\",\"branch_type\":\"master_branch\","
                         "\"api_key\":\"secure-pair-key-0123456789\"",
                         cases[i].name, tls_url);
        if (cases[i].cert)
            n += snprintf(body + n, (size_t)(20000 - n), ",\"ssl_certificate\":\"%s\"", esc);
        if (cases[i].pin)
            n += snprintf(body + n, (size_t)(20000 - n), ",\"spki_pin\":\"sha256//%s\"", cases[i].pin);
        snprintf(body + n, (size_t)(20000 - n), "}");
        bg_th_resp r;
        assert_int_equal(bg_th_post_json(&T.top, "/api/v1/branches", T.top.token, body, &r), 0);
        assert_int_equal(r.status, 201);
        bg_th_resp_free(&r);
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/branches/%s/ping", cases[i].name);
        assert_int_equal(bg_th_send_json(&T.top, "POST", path, T.top.token, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *j = bg_th_json(&r);
        if (json_is_true(json_object_get(j, "ok")) != cases[i].ok)
            fprintf(stderr, "%s: %s\n", cases[i].name, r.body);
        assert_int_equal(json_is_true(json_object_get(j, "ok")), cases[i].ok);
        if (cases[i].error != NULL) {
            const char *err = json_string_value(json_object_get(j, "error"));
            assert_non_null(err);
            assert_non_null(strcasestr(err, cases[i].error));
        }
        json_decref(j);
        bg_th_resp_free(&r);
    }
    free(body);
    free(esc);
    free(pem);
    free(pin_b64);
    free(tls_url);
    assert_int_equal(bg_th_stop(&s, SIGTERM, 10000), 0);
}

/* Scans a file for a string. */
static bool file_contains(const char *path, const char *needle)
{
    size_t len;
    char *data = bg_th_read_file(path, &len);
    if (data == NULL)
        return false;
    bool hit = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return hit;
}

static void test_no_clear_keys_at_rest(void **state)
{
    (void)state;
    const char *keys[] = {KEY_M1, KEY_M2, "rotated-key-top-master1-987654", "ghost-key-0123456789abc"};
    const char *dirs[] = {"top", "master-1", "master-2"};
    const char *files[] = {"branchgate.db", "branchgate.db-wal"};
    int scanned = 0;
    for (size_t d = 0; d < 3; d++)
        for (size_t f = 0; f < 2; f++) {
            char path[400];
            snprintf(path, sizeof(path), "%s/%s/%s", T.root, dirs[d], files[f]);
            if (access(path, F_OK) == 0)
                scanned++;
            for (size_t k = 0; k < 4; k++)
                assert_false(file_contains(path, keys[k]));
        }
    assert_true(scanned >= 3);
    /* And the keys never appear in any log. */
    for (size_t d = 0; d < 3; d++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/%s.log", T.root, dirs[d]);
        assert_true(access(path, F_OK) == 0);
        for (size_t k = 0; k < 4; k++)
            assert_false(file_contains(path, keys[k]));
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_both_ways),
        cmocka_unit_test(test_inbound_auth),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_master_down_and_back),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_tls_pinning),
        cmocka_unit_test(test_no_clear_keys_at_rest),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
