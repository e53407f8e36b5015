/* Webhook delivery outcomes (docs/media.md "Webhooks", docs/api.md
 * "Webhooks", node/webhooks.c) against one real branchgate process whose
 * retry schedule is "1s,1s" (so at most 1 + 2 = 3 attempts per delivery).
 *
 * Every assembly runs the bundled `probe` template on a one-second wav
 * generated with the ffmpeg CLI (a different tone per test, so the
 * assembly ids differ), in an organisation created here by the admin
 * token (whose answer carries the webhook secret). The receiver is the
 * harness's tiny HTTP server in this process; it answers by path prefix:
 * /gone/ 410, /bad/ 400, /down/ 503, anything else 200. A socket that is
 * bound but never listens stands for a receiver that is down.
 *
 * Covered: 410 stops for good, another 4xx fails at once, 5xx is retried
 * exactly len(schedule) times with the same webhook-id (and counted in
 * /metrics), transport errors are retried and recorded with status 0, a
 * failed assembly (MD5_MISMATCH) notifies too and is signed correctly
 * (checked with OpenSSL's HMAC, independent of proto/webhook.c), a rotated
 * secret signs the next delivery, and a bad notify_url creates nothing.
 * Last, the process stops cleanly (and, in a -DBG_SANITIZE=ON build,
 * without a sanitizer report in its log). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SCHEDULE "1s,1s"
#define ATTEMPTS 3 /* 1 + the schedule's two delays */
#define NOTIFY_DEADLINE_MS 15000
#define QUIET_MS 1300 /* longer than one schedule delay: a retry would show */

typedef struct wav {
    char name[32];
    char *data;
    size_t len;
    char md5[33];
} wav;

static struct {
    char root[256];
    bg_th_proc s;
    bg_th_hooks hooks;
    char org[64];
    char secret[128]; /* the organisation's current webhook secret */
    int dead_fd;      /* bound, never listening: connections are refused */
    int dead_port;
    wav t1, t2, t3, t4, t5, t6;
} W = {.dead_fd = -1};

/* ---- process, files ---- */

static const char *const *env_s(void)
{
    static const char *const e[] = {
        "BRANCHGATE_WEBHOOKS_SCHEDULE=" SCHEDULE,
        "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
        "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
        NULL,
    };
    return e;
}

static void print_log(void)
{
    char *log = bg_th_read_file(W.s.log, NULL);
    size_t n = log ? strlen(log) : 0;
    fprintf(stderr, "---- %s (last 4000 bytes) ----\n%s\n", W.s.log,
            log ? log + (n > 4000 ? n - 4000 : 0) : "");
    free(log);
}

/* One second of a mono 8 kHz sine of tone freq, written to the root and
 * read back with its md5. */
static bool make_wav(wav *w, const char *name, int freq)
{
    char path[320], src[96];
    snprintf(w->name, sizeof(w->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", W.root, name);
    snprintf(src, sizeof(src), "sine=frequency=%d:sample_rate=8000", freq);
    const char *argv[] = {"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                          src,      "-t",           "1",         path,    NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "ffmpeg could not make %s\n", name);
        return false;
    }
    w->data = bg_th_read_file(path, &w->len);
    if (w->data == NULL || w->len == 0)
        return false;
    bg_th_md5_hex(w->data, w->len, w->md5);
    return true;
}

/* ---- HTTP ---- */

static const char *str(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static bool str_is(const json_t *j, const char *key, const char *want)
{
    const char *v = str(j, key);
    return v != NULL && strcmp(v, want) == 0;
}

static void print_json(const char *what, const json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s: %.3000s\n", what, s ? s : "(none)");
    free(s);
}

/* An admin request with an optional JSON body; asserts the status and
 * returns the parsed body (NULL when there is none). */
static json_t *admin(const char *method, const char *path, const char *json, long want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(&W.s, method, path, W.s.token, json, &r), 0);
    if (r.status != want)
        fprintf(stderr, "%s %s: want %ld, got %ld: %s\n", method, path, want, r.status,
                r.body ? r.body : "");
    assert_int_equal(r.status, want);
    json_t *j = r.len > 0 ? bg_th_json(&r) : NULL;
    bg_th_resp_free(&r);
    return j;
}

/* The POST /api/v1/assemblies body for one file in our organisation. */
static char *create_body(const char *name, size_t size, const char *md5, const char *notify_url)
{
    json_t *b = json_pack("{s:s,s:s,s:[{s:s,s:I,s:s}]}", "template_id", "probe", "organization_id",
                          W.org, "files", "name", name, "size", (json_int_t)size, "md5", md5);
    if (notify_url != NULL)
        json_object_set_new(b, "notify_url", json_string(notify_url));
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static json_t *status_of(const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    return admin("GET", path, NULL, 200);
}

/* Polls the status until notify_status equals want; the status JSON, or
 * NULL after the deadline (printed with the log). */
static json_t *wait_notify(const char *id, const char *want, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    json_t *st = NULL;
    while (bg_th_now_ms() < end) {
        json_decref(st);
        st = status_of(id);
        if (str_is(st, "notify_status", want))
            return st;
        bg_th_nap_ms(40);
    }
    fprintf(stderr, "assembly %s: notify_status never became %s\n", id, want);
    print_json("last status", st);
    json_decref(st);
    print_log();
    return NULL;
}

/* Creates the assembly of w (announced md5: md5, else the file's) with
 * notify_url, uploads the file in two PATCHes, and waits until its
 * delivery is in notify_status want. Copies the assembly id into id and
 * returns the status JSON. */
static json_t *deliver(const wav *w, const char *md5, const char *notify_url, const char *want,
                       char id[65])
{
    char *body = create_body(w->name, w->len, md5 ? md5 : w->md5, notify_url);
    json_t *st = admin("POST", "/api/v1/assemblies", body, 201);
    free(body);
    assert_true(str_is(st, "ok", "ASSEMBLY_UPLOADING"));
    assert_true(str_is(st, "notify_url", notify_url));
    assert_true(json_is_null(json_object_get(st, "notify_status")));
    assert_true(str_is(st, "organization_id", W.org));
    snprintf(id, 65, "%s", str(st, "assembly_id"));
    assert_int_equal(strlen(id), 64);
    char loc[600];
    assert_int_equal(bg_th_tus_upload(str(st, "tus_url"), W.s.token, id, w->name, w->data, w->len,
                                      w->len / 2 + 1, loc, sizeof(loc), NULL),
                     0);
    json_decref(st);
    st = wait_notify(id, want, NOTIFY_DEADLINE_MS);
    assert_non_null(st);
    return st;
}

/* The number of requests received under prefix, polled until it reaches
 * n or the deadline passes (the receiver records a request after it
 * answered, so the sender may record the attempt first). */
static size_t hooks_wait(const char *prefix, size_t n, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    for (;;) {
        bg_th_hook_req *q = NULL;
        size_t got = bg_th_hooks_get(&W.hooks, prefix, &q);
        bg_th_hooks_free(q, got);
        if (got >= n || bg_th_now_ms() >= end)
            return got;
        bg_th_nap_ms(20);
    }
}

/* The attempts of the status JSON: count, each one's status and error,
 * and notify_response_code (the last one's status). */
static void check_attempts(const json_t *st, size_t n, long status)
{
    json_t *att = json_object_get(st, "notify_attempts");
    if (json_array_size(att) != n)
        print_json("notify_attempts", att);
    assert_int_equal(json_array_size(att), n);
    char want_err[32];
    snprintf(want_err, sizeof(want_err), "HTTP %ld", status);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(att, i);
        assert_int_equal(json_integer_value(json_object_get(a, "status")), status);
        assert_non_null(str(a, "at"));
        const char *err = str(a, "error");
        assert_non_null(err);
        if (status >= 200 && status <= 299)
            assert_string_equal(err, ""); /* docs/api.md: "" on success */
        else if (status != 0)
            assert_string_equal(err, want_err);
        else
            assert_true(strlen(err) > 0); /* the transport error */
    }
    assert_true(json_is_integer(json_object_get(st, "notify_response_code")));
    assert_int_equal(json_integer_value(json_object_get(st, "notify_response_code")), status);
}

/* The value of one sample line of /metrics (e.g.
 * `branchgate_webhook_deliveries_total{result="failed"}`), or -1. */
static long long metric(const char *sample)
{
    bg_th_resp r;
    assert_int_equal(bg_th_get(&W.s, "/metrics", W.s.token, &r), 0);
    assert_int_equal(r.status, 200);
    long long v = -1;
    size_t sl = strlen(sample);
    for (const char *line = r.body; line != NULL && *line != '\0';) {
        if (strncmp(line, sample, sl) == 0 && line[sl] == ' ')
            v = strtoll(line + sl + 1, NULL, 10);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    bg_th_resp_free(&r);
    return v;
}

#define WH_METRIC(result) "branchgate_webhook_deliveries_total{result=\"" result "\"}"

/* ---- signatures ---- */

/* Standard Webhooks, checked with OpenSSL's HMAC: one of the space-separated
 * signatures must be "v1," base64(HMAC-SHA256(key, id "." ts "." body)),
 * key being the base64-decoded text after "whsec_". */
static bool signed_with(const bg_th_hook_req *q, const char *secret)
{
    char id[256], ts[64], sigs[1024];
    unsigned char key[128];
    if (strncmp(secret, "whsec_", 6) != 0 || !bg_th_hook_header(q, "webhook-id", id, sizeof(id)) ||
        !bg_th_hook_header(q, "webhook-timestamp", ts, sizeof(ts)) ||
        !bg_th_hook_header(q, "webhook-signature", sigs, sizeof(sigs)))
        return false;
    long klen = bg_th_b64_decode(secret + 6, key, sizeof(key));
    if (klen <= 0)
        return false;
    char head[400];
    int hl = snprintf(head, sizeof(head), "%s.%s.", id, ts);
    unsigned char *msg = malloc((size_t)hl + q->body_len);
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, q->body, q->body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    bool ok =
        HMAC(EVP_sha256(), key, (int)klen, msg, (size_t)hl + q->body_len, mac, &maclen) != NULL;
    free(msg);
    if (!ok)
        return false;
    char want[100] = "v1,";
    bg_th_b64(mac, maclen, want + 3);
    char *save = NULL;
    for (char *t = strtok_r(sigs, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
        if (strcmp(t, want) == 0)
            return true;
    return false;
}

/* The common checks of one received delivery: a POST of the assembly's
 * status JSON, webhook-id msg_<assembly_id>_<run> with the body's run
 * (docs/api.md), a current timestamp, the documented Content-Type and
 * User-Agent. */
static void check_request(const bg_th_hook_req *q, const char *id)
{
    char wid[256], want_wid[128], ts[64], ct[128], ua[128];
    assert_string_equal(q->method, "POST");
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    assert_non_null(body);
    assert_true(str_is(body, "assembly_id", id));
    assert_true(json_is_integer(json_object_get(body, "run")));
    snprintf(want_wid, sizeof(want_wid), "msg_%s_%lld", id,
             (long long)json_integer_value(json_object_get(body, "run")));
    json_decref(body);
    assert_true(bg_th_hook_header(q, "webhook-id", wid, sizeof(wid)));
    assert_string_equal(wid, want_wid);
    assert_true(bg_th_hook_header(q, "webhook-timestamp", ts, sizeof(ts)));
    assert_true(llabs(strtoll(ts, NULL, 10) - q->at_unix_ms / 1000) <= 5);
    assert_true(bg_th_hook_header(q, "content-type", ct, sizeof(ct)));
    assert_int_equal(strncmp(ct, "application/json", 16), 0);
    assert_true(bg_th_hook_header(q, "user-agent", ua, sizeof(ua)));
    assert_string_equal(ua, "branchgate-webhook");
}

/* A completed assembly's delivery is the one of run 1. */
static void check_run1(const bg_th_hook_req *q, const char *id)
{
    char wid[256], want_wid[128];
    snprintf(want_wid, sizeof(want_wid), "msg_%s_1", id);
    assert_true(bg_th_hook_header(q, "webhook-id", wid, sizeof(wid)));
    assert_string_equal(wid, want_wid);
    check_request(q, id);
}

/* ---- setup ---- */

/* A loopback port with a bound socket that never listens: connecting to
 * it is refused at once. */
static int dead_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    return ntohs(a.sin_port);
}

static int policy(const bg_th_hook_req *q, size_t seen, void *ud)
{
    (void)seen;
    (void)ud;
    if (strncmp(q->path, "/gone/", 6) == 0)
        return 410;
    if (strncmp(q->path, "/bad/", 5) == 0)
        return 400;
    if (strncmp(q->path, "/down/", 6) == 0)
        return 503;
    return 200;
}

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(W.root);
    if (!make_wav(&W.t1, "t1.wav", 310) || !make_wav(&W.t2, "t2.wav", 420) ||
        !make_wav(&W.t3, "t3.wav", 530) || !make_wav(&W.t4, "t4.wav", 640) ||
        !make_wav(&W.t5, "t5.wav", 750) || !make_wav(&W.t6, "t6.wav", 860))
        return -1;
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/s", W.root);
    if (bg_th_start(&W.s, dir, NULL, env_s()) != 0) {
        print_log();
        return -1;
    }
    if (bg_th_hooks_start(&W.hooks, policy, NULL) != 0)
        return -1;
    W.dead_port = dead_port(&W.dead_fd);
    if (W.dead_port <= 0)
        return -1;
    /* Our organisation; its creation answer carries the secret. */
    bg_th_resp r;
    if (bg_th_post_json(&W.s, "/api/v1/organizations", W.s.token, "{\"name\":\"webhooks\"}", &r) !=
        0)
        return -1;
    json_t *o = r.status == 201 ? bg_th_json(&r) : NULL;
    if (str(o, "id") != NULL && str(o, "webhook_secret") != NULL) {
        snprintf(W.org, sizeof(W.org), "%s", str(o, "id"));
        snprintf(W.secret, sizeof(W.secret), "%s", str(o, "webhook_secret"));
    } else {
        fprintf(stderr, "organisation: %ld %s\n", r.status, r.body ? r.body : "");
    }
    json_decref(o);
    bg_th_resp_free(&r);
    return W.org[0] != '\0' && strncmp(W.secret, "whsec_", 6) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&W.s, SIGKILL, 5000);
    bg_th_hooks_stop(&W.hooks);
    if (W.dead_fd >= 0)
        close(W.dead_fd);
    wav *all[] = {&W.t1, &W.t2, &W.t3, &W.t4, &W.t5, &W.t6};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->data);
    bg_th_rmtree(W.root);
    return 0;
}

/* ---- 1. 410: one attempt, then gone for good ---- */

static void test_gone_is_final(void **state)
{
    (void)state;
    char url[128], id[65];
    snprintf(url, sizeof(url), "%s/gone/t1", W.hooks.url);
    json_t *st = deliver(&W.t1, NULL, url, "gone", id);
    assert_true(str_is(st, "ok", "ASSEMBLY_COMPLETED"));
    check_attempts(st, 1, 410);
    json_decref(st);

    /* One POST, and none more for longer than two schedule delays. */
    assert_int_equal(hooks_wait("/gone/t1", 1, 5000), 1);
    bg_th_nap_ms(2500);
    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&W.hooks, "/gone/t1", &q);
    assert_int_equal(n, 1);
    assert_int_equal(q[0].answered, 410);
    check_run1(&q[0], id);
    assert_true(signed_with(&q[0], W.secret));
    bg_th_hooks_free(q, n);
    st = status_of(id);
    assert_true(str_is(st, "notify_status", "gone"));
    check_attempts(st, 1, 410);
    json_decref(st);
}

/* ---- 2. another 4xx: failed at once, no retry ---- */

static void test_client_error_not_retried(void **state)
{
    (void)state;
    char url[128], id[65];
    snprintf(url, sizeof(url), "%s/bad/t2", W.hooks.url);
    json_t *st = deliver(&W.t2, NULL, url, "failed", id);
    assert_true(str_is(st, "ok", "ASSEMBLY_COMPLETED"));
    check_attempts(st, 1, 400);
    json_decref(st);
    assert_int_equal(hooks_wait("/bad/t2", 1, 5000), 1);
    bg_th_nap_ms(QUIET_MS);
    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&W.hooks, "/bad/t2", &q);
    assert_int_equal(n, 1);
    assert_int_equal(q[0].answered, 400);
    check_run1(&q[0], id);
    bg_th_hooks_free(q, n);
    st = status_of(id);
    check_attempts(st, 1, 400);
    json_decref(st);
}

/* ---- 3. 503 every time: 1 + len(schedule) attempts, then failed ---- */

static void test_server_error_retried_then_failed(void **state)
{
    (void)state;
    long long d0 = metric(WH_METRIC("delivered")), r0 = metric(WH_METRIC("retry")),
              f0 = metric(WH_METRIC("failed")), g0 = metric(WH_METRIC("gone"));
    assert_true(d0 >= 0 && r0 >= 0 && f0 >= 0 && g0 >= 0);
    char url[128], id[65];
    snprintf(url, sizeof(url), "%s/down/t3", W.hooks.url);
    /* Between attempts the delivery shows as retrying. */
    json_t *st = deliver(&W.t3, NULL, url, "retrying", id);
    assert_true(json_array_size(json_object_get(st, "notify_attempts")) < ATTEMPTS);
    json_decref(st);
    st = wait_notify(id, "failed", NOTIFY_DEADLINE_MS);
    assert_non_null(st);
    check_attempts(st, ATTEMPTS, 503);
    json_decref(st);

    assert_int_equal(hooks_wait("/down/t3", ATTEMPTS, 5000), ATTEMPTS);
    bg_th_nap_ms(QUIET_MS);
    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&W.hooks, "/down/t3", &q);
    assert_int_equal(n, ATTEMPTS);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(q[i].answered, 503);
        check_run1(&q[i], id); /* the same webhook-id every time */
        assert_true(signed_with(&q[i], W.secret));
        assert_int_equal(q[i].body_len, q[0].body_len);
        assert_memory_equal(q[i].body, q[0].body, q[0].body_len);
        if (i > 0) /* each retry waits the schedule's 1 s */
            assert_true(q[i].at_unix_ms - q[i - 1].at_unix_ms >= 900);
    }
    bg_th_hooks_free(q, n);

    /* Two attempts counted as retry, the last one as failed. The counters
     * move after the attempt is stored, so poll a little. */
    long long end = bg_th_now_ms() + 3000, r1, f1;
    do {
        r1 = metric(WH_METRIC("retry"));
        f1 = metric(WH_METRIC("failed"));
        if (r1 - r0 >= 2 && f1 - f0 >= 1)
            break;
        bg_th_nap_ms(20);
    } while (bg_th_now_ms() < end);
    if (r1 - r0 != 2 || f1 - f0 != 1)
        fprintf(stderr, "metrics: retry %lld -> %lld, failed %lld -> %lld\n", r0, r1, f0, f1);
    assert_true(r1 >= 2 && f1 >= 1);
    assert_int_equal(r1 - r0, 2);
    assert_int_equal(f1 - f0, 1);
    assert_int_equal(metric(WH_METRIC("delivered")), d0);
    assert_int_equal(metric(WH_METRIC("gone")), g0);
}

/* ---- 4. nobody listening: transport errors are retried too ---- */

static void test_transport_error_retried(void **state)
{
    (void)state;
    char url[128], id[65];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nobody/t4", W.dead_port);
    json_t *st = deliver(&W.t4, NULL, url, "failed", id);
    assert_true(str_is(st, "ok", "ASSEMBLY_COMPLETED"));
    check_attempts(st, ATTEMPTS, 0);
    json_t *att = json_object_get(st, "notify_attempts");
    for (size_t i = 0; i < ATTEMPTS; i++)
        assert_null(strstr(str(json_array_get(att, i), "error"), "HTTP "));
    json_decref(st);
    /* Nothing reached the receiver. */
    assert_int_equal(hooks_wait("/nobody/", 1, 0), 0);
}

/* ---- 5. a failed assembly notifies as well, signed ---- */

static void test_failed_assembly_notifies(void **state)
{
    (void)state;
    char url[128], id[65], wrong[33];
    snprintf(url, sizeof(url), "%s/ok/t5", W.hooks.url);
    bg_th_md5_hex("not the bytes of t5.wav", 23, wrong);
    assert_string_not_equal(wrong, W.t5.md5);
    json_t *st = deliver(&W.t5, wrong, url, "delivered", id);
    assert_null(json_object_get(st, "ok"));
    assert_true(str_is(st, "error", "MD5_MISMATCH"));
    check_attempts(st, 1, 200);
    json_decref(st);

    assert_int_equal(hooks_wait("/ok/t5", 1, 5000), 1);
    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&W.hooks, "/ok/t5", &q);
    assert_int_equal(n, 1);
    /* The assembly never started a run: its status (and so the
     * webhook-id) carries run 0, not the "1 once the files are complete"
     * of docs/api.md. check_request takes the run from the body. */
    check_request(&q[0], id);
    json_t *body = json_loadb(q[0].body, q[0].body_len, 0, NULL);
    assert_true(str_is(body, "error", "MD5_MISMATCH"));
    assert_null(json_object_get(body, "ok"));
    assert_true(json_is_false(json_object_get(body, "retryable")));
    json_decref(body);
    char sig[256];
    assert_true(bg_th_hook_header(&q[0], "webhook-signature", sig, sizeof(sig)));
    assert_int_equal(strncmp(sig, "v1,", 3), 0);
    assert_true(signed_with(&q[0], W.secret));
    /* Another key, or one flipped bit of the body, does not verify. */
    assert_false(signed_with(&q[0], "whsec_fnd4zN+fXiek1/12SdgxRmZpTWIr2VQjMunaPfzFAkY="));
    q[0].body[q[0].body_len / 2] ^= 1;
    assert_false(signed_with(&q[0], W.secret));
    bg_th_hooks_free(q, n);
}

/* ---- 6. a rotated secret signs the next delivery ---- */

static void test_secret_rotation(void **state)
{
    (void)state;
    char path[128], old[128], url[128], id[65];
    snprintf(old, sizeof(old), "%s", W.secret);
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/webhook-secret", W.org);
    json_t *j = admin("POST", path, NULL, 200);
    assert_non_null(str(j, "webhook_secret"));
    snprintf(W.secret, sizeof(W.secret), "%s", str(j, "webhook_secret"));
    json_decref(j);
    assert_int_equal(strncmp(W.secret, "whsec_", 6), 0);
    assert_string_not_equal(W.secret, old);

    snprintf(url, sizeof(url), "%s/ok/t6", W.hooks.url);
    json_t *st = deliver(&W.t6, NULL, url, "delivered", id);
    assert_true(str_is(st, "ok", "ASSEMBLY_COMPLETED"));
    check_attempts(st, 1, 200);
    json_decref(st);
    assert_int_equal(hooks_wait("/ok/t6", 1, 5000), 1);
    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&W.hooks, "/ok/t6", &q);
    assert_int_equal(n, 1);
    check_run1(&q[0], id);
    assert_true(signed_with(&q[0], W.secret));
    assert_false(signed_with(&q[0], old));
    bg_th_hooks_free(q, n);
}

/* ---- 7. a bad notify_url is refused and creates nothing ---- */

static size_t assembly_count(void)
{
    json_t *j = admin("GET", "/api/v1/assemblies?limit=500", NULL, 200);
    assert_true(json_is_null(json_object_get(j, "next_cursor")) ||
                json_object_get(j, "next_cursor") == NULL);
    size_t n = json_array_size(json_object_get(j, "assemblies"));
    json_decref(j);
    return n;
}

static void test_notify_url_validation(void **state)
{
    (void)state;
    static const char *const bad[] = {"ftp://x", "not a url", "http://127.0.0.1:1/x?q=1"};
    char md5[33];
    bg_th_md5_hex("t7", 2, md5);
    size_t before = assembly_count();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = create_body("t7.wav", 1234, md5, bad[i]);
        bg_th_resp r;
        assert_int_equal(bg_th_post_json(&W.s, "/api/v1/assemblies", W.s.token, body, &r), 0);
        free(body);
        bool ok = bg_th_is_error(&r, 400, "INVALID_FIELD");
        if (!ok)
            fprintf(stderr, "  (notify_url %s)\n", bad[i]);
        bg_th_resp_free(&r);
        assert_true(ok);
        assert_int_equal(assembly_count(), before);
    }
    /* The same request with a valid URL is a new assembly (201, not 200):
     * the refused ones left nothing behind. */
    char *body = create_body("t7.wav", 1234, md5, "http://127.0.0.1:1/x");
    json_t *st = admin("POST", "/api/v1/assemblies", body, 201);
    free(body);
    assert_true(str_is(st, "notify_url", "http://127.0.0.1:1/x"));
    json_decref(st);
    assert_int_equal(assembly_count(), before + 1);
}

/* ---- last: a clean stop, no sanitizer report ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    int rc = bg_th_stop(&W.s, SIGTERM, 15000);
    if (rc != 0)
        print_log();
    assert_int_equal(rc, 0);
    char *log = bg_th_read_file(W.s.log, NULL);
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "WARNING: ThreadSanitizer"};
    const char *hit = NULL;
    for (size_t m = 0; log != NULL && hit == NULL && m < 4; m++)
        hit = strstr(log, marks[m]);
    if (hit != NULL)
        fprintf(stderr, "%s:\n%.4000s\n", W.s.log, hit);
    free(log);
    assert_null(hit);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gone_is_final),
        cmocka_unit_test(test_client_error_not_retried),
        cmocka_unit_test(test_server_error_retried_then_failed),
        cmocka_unit_test(test_transport_error_retried),
        cmocka_unit_test(test_failed_assembly_notifies),
        cmocka_unit_test(test_secret_rotation),
        cmocka_unit_test(test_notify_url_validation),
        cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
