/* Organisation sync: a top branch and two masters as real processes. An
 * organisation with 1000 users reaches both masters without any password
 * hash, snapshots are applied by version and once per Idempotency-Key,
 * deliveries survive a killed master and a killed top, tenants stay apart,
 * shared templates stay with their organisation, and refused input leaves
 * nothing behind (no rows, no outbox messages). A fake peer (a thread in
 * this process) records what the top puts on the wire. A share sent before
 * its organisation must not wedge the destination's queue. Last, every
 * process stops cleanly (and, in a -DBG_SANITIZE=ON build, without a
 * sanitizer report in its log). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KEY_M1 "sync-pair-key-top-master1-0123456789"
#define KEY_M2 "sync-pair-key-top-master2-0123456789"
#define KEY_CAP "sync-pair-key-top-capture-0123456789"
#define BIG_USERS 1000

static const char *const env[] = {
    "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",     "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8",
    "BRANCHGATE_PEERS_PING_INTERVAL_MS=300", "BRANCHGATE_OUTBOX_BACKOFF_MAX_S=1",
    "BRANCHGATE_PEERS_BREAKER_FAILURES=3",   "BRANCHGATE_PEERS_BREAKER_OPEN_MS=500",
    "BRANCHGATE_PEERS_CONNECT_TIMEOUT_MS=300", NULL};

typedef struct topo {
    char root[256];
    bg_th_proc top, m1, m2;
    char big_org[64];  /* the 1000-user organisation (test 1) */
    char org_a[64], org_b[64]; /* two tenants (test 4) */
    char user_a[64], user_b[64];
} topo;

static topo T;

/* ---- processes ---- */

static bool init_branch(const char *dir, const char *name, const char *type)
{
    const char *args[] = {"init", "--data", dir, "--name", name, "--type", type, NULL};
    char *out = NULL;
    int rc = bg_th_run(args, NULL, &out);
    if (rc != 0)
        fprintf(stderr, "init %s failed: %s\n", name, out ? out : "");
    free(out);
    return rc == 0;
}

/* Starts (initialising on first use) the branch NAME; listen NULL picks a
 * free port, else "127.0.0.1:PORT" (a restart on the same address). */
static int start_branch(bg_th_proc *p, const char *name, const char *type, const char *listen)
{
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/%s", T.root, name);
    if (access(dir, F_OK) != 0 && !init_branch(dir, name, type))
        return -1;
    const char *extra[] = {"--listen", listen, NULL};
    return bg_th_start(p, dir, listen ? extra : NULL, env);
}

/* "127.0.0.1:PORT" of a running process. */
static void listen_of(const bg_th_proc *p, char *out, size_t cap)
{
    snprintf(out, cap, "127.0.0.1:%s", strrchr(p->url, ':') + 1);
}

/* ---- HTTP helpers ---- */

/* Sends an admin request and asserts the status; returns the parsed body
 * (NULL for an empty one). */
static json_t *must(const bg_th_proc *p, const char *method, const char *path, const char *body,
                    long want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, p->token, body, &r), 0);
    if (r.status != want)
        fprintf(stderr, "%s %s: want %ld, got %ld: %s\n", method, path, want, r.status,
                r.body ? r.body : "");
    assert_int_equal(r.status, want);
    json_t *j = r.len > 0 ? bg_th_json(&r) : NULL;
    bg_th_resp_free(&r);
    return j;
}

/* Sends an admin request and asserts the error shape. */
static void must_fail(const bg_th_proc *p, const char *method, const char *path, const char *body,
                      long status, const char *code)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, p->token, body, &r), 0);
    bool ok = bg_th_is_error(&r, status, code);
    if (!ok)
        fprintf(stderr, "  (%s %s)\n", method, path);
    bg_th_resp_free(&r);
    assert_true(ok);
}

/* Like must_fail, but only reports: a test can check every case, then
 * fail once with all mismatches printed. */
static bool check_fail(const bg_th_proc *p, const char *method, const char *path, const char *body,
                       long status, const char *code)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, p->token, body, &r), 0);
    bool ok = bg_th_is_error(&r, status, code);
    if (!ok)
        fprintf(stderr, "  (%s %s)\n", method, path);
    bg_th_resp_free(&r);
    return ok;
}

static long status_of(const bg_th_proc *p, const char *method, const char *path)
{
    bg_th_resp r;
    if (bg_th_send_json(p, method, path, p->token, NULL, &r) != 0)
        return -1;
    long s = r.status;
    bg_th_resp_free(&r);
    return s;
}

static void create_org(const bg_th_proc *p, const char *name, char id[64])
{
    json_t *b = json_pack("{s:s}", "name", name);
    char *body = json_dumps(b, JSON_COMPACT);
    json_t *o = must(p, "POST", "/api/v1/organizations", body, 201);
    assert_string_equal(json_string_value(json_object_get(o, "name")), name);
    assert_string_equal(json_string_value(json_object_get(o, "home_branch")), "top");
    assert_int_equal(json_integer_value(json_object_get(o, "version")), 1);
    snprintf(id, 64, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    json_decref(b);
    free(body);
}

static char *user_body(const char *email, const char *name, const char *password, const char *role)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "email", email, "name", name, "password", password);
    if (role != NULL)
        json_object_set_new(b, "role", json_string(role));
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* Creates a user and returns its id in uid (may be NULL). */
static void create_user(const bg_th_proc *p, const char *org, const char *email, char *uid)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", org);
    char *body = user_body(email, "Test User", "a-long-enough-password", "member");
    json_t *u = must(p, "POST", path, body, 201);
    free(body);
    assert_string_equal(json_string_value(json_object_get(u, "email")), email);
    assert_string_equal(json_string_value(json_object_get(u, "organization_id")), org);
    assert_null(json_object_get(u, "password"));
    assert_null(json_object_get(u, "password_hash"));
    if (uid != NULL)
        snprintf(uid, 64, "%s", json_string_value(json_object_get(u, "id")));
    json_decref(u);
}

static char *sync_body(const char *b1, const char *b2)
{
    json_t *names = json_pack("[s]", b1);
    if (b2 != NULL)
        json_array_append_new(names, json_string(b2));
    json_t *b = json_pack("{s:o}", "branches", names);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* POST /organizations/{org}/sync; returns "queued". */
static json_int_t sync_org(const bg_th_proc *p, const char *org, const char *b1, const char *b2)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/sync", org);
    char *body = sync_body(b1, b2);
    json_t *j = must(p, "POST", path, body, 202);
    free(body);
    json_int_t q = json_integer_value(json_object_get(j, "queued"));
    json_decref(j);
    return q;
}

/* Every (non-deleted) user of org, paging with limit=500; NULL when the
 * organisation is not there (or any page fails). Asserts that pages never
 * overlap. New reference. */
static json_t *list_users(const bg_th_proc *p, const char *org)
{
    json_t *all = json_array();
    char cursor[80] = "";
    for (int page = 0; page < 100; page++) {
        char path[300];
        snprintf(path, sizeof(path), "/api/v1/organizations/%s/users?limit=500%s%s", org,
                 cursor[0] ? "&cursor=" : "", cursor);
        bg_th_resp r;
        if (bg_th_get(p, path, p->token, &r) != 0 || r.status != 200) {
            bg_th_resp_free(&r);
            json_decref(all);
            return NULL;
        }
        json_t *j = bg_th_json(&r);
        bg_th_resp_free(&r);
        json_t *users = json_object_get(j, "users");
        assert_true(json_is_array(users));
        assert_true(json_array_size(users) <= 500);
        json_array_extend(all, users);
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (next == NULL) {
            json_decref(j);
            return all;
        }
        assert_true(strcmp(next, cursor) != 0);
        snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(j);
    }
    fail_msg("listing never ended");
    return NULL;
}

static size_t count_field(json_t *users, const char *key, const char *value)
{
    size_t i, n = 0;
    json_t *u;
    json_array_foreach(users, i, u) {
        const char *v = json_string_value(json_object_get(u, key));
        if (v != NULL && strcmp(v, value) == 0)
            n++;
    }
    return n;
}

/* Polls until the organisation lists exactly n users on p. */
static bool wait_user_count(const bg_th_proc *p, const char *org, size_t n, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    size_t last = (size_t)-1;
    while (bg_th_now_ms() < end) {
        json_t *all = list_users(p, org);
        last = all ? json_array_size(all) : (size_t)-1;
        json_decref(all);
        if (last == n)
            return true;
        bg_th_nap_ms(50);
    }
    fprintf(stderr, "%s: organization %s lists %zd users, want %zu\n", p->url, org, (ssize_t)last, n);
    return false;
}

/* Polls until GET path answers want. */
static bool wait_status(const bg_th_proc *p, const char *path, long want, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    long last = -1;
    while (bg_th_now_ms() < end) {
        last = status_of(p, "GET", path);
        if (last == want)
            return true;
        bg_th_nap_ms(50);
    }
    fprintf(stderr, "%s%s: status %ld, want %ld\n", p->url, path, last, want);
    return false;
}

/* The "outbox" object of a branch's status on p (new reference) or NULL. */
static json_t *outbox_of(const bg_th_proc *p, const char *branch)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/branches/%s/status", branch);
    bg_th_resp r;
    if (bg_th_get(p, path, p->token, &r) != 0 || r.status != 200) {
        bg_th_resp_free(&r);
        return NULL;
    }
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    json_t *o = json_incref(json_object_get(j, "outbox"));
    json_decref(j);
    return o;
}

static long long outbox_depth(const bg_th_proc *p, const char *branch)
{
    json_t *o = outbox_of(p, branch);
    json_t *d = json_object_get(o, "depth");
    long long v = json_is_integer(d) ? (long long)json_integer_value(d) : -1;
    json_decref(o);
    return v;
}

static bool wait_depth(const bg_th_proc *p, const char *branch, long long want, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms, last = -1;
    while (bg_th_now_ms() < end) {
        last = outbox_depth(p, branch);
        if (last == want)
            return true;
        bg_th_nap_ms(50);
    }
    json_t *o = outbox_of(p, branch);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s: outbox to %s has depth %lld, want %lld: %s\n", p->url, branch, last, want,
            s ? s : "");
    free(s);
    json_decref(o);
    return false;
}

/* A peer call to `to` posing as `origin` with the shared key. idem may be
 * NULL (no Idempotency-Key). */
static void peer_post(const bg_th_proc *to, const char *origin, const char *key, const char *path,
                      const char *idem, const char *body, bg_th_resp *r)
{
    char url[300], o[300], k[200];
    snprintf(url, sizeof(url), "%s%s", to->url, path);
    snprintf(o, sizeof(o), "X-Branch-Origin: %s", origin);
    snprintf(k, sizeof(k), "Idempotency-Key: %s", idem ? idem : "");
    const char *h[] = {o, "Content-Type: application/json", idem ? k : NULL, NULL};
    assert_int_equal(bg_th_http("POST", url, key, body, strlen(body), h, false, r), 0);
}

static void new_uuid(char out[64])
{
    char *u = bg_th_read_file("/proc/sys/kernel/random/uuid", NULL);
    assert_non_null(u);
    u[strcspn(u, "\n")] = '\0';
    snprintf(out, 64, "%s", u);
    free(u);
}

/* A sync-organization body as the top would send it. users: a JSON array
 * (stolen) or NULL for []. */
static char *snapshot_body(const char *org, const char *name, json_int_t version, json_t *users)
{
    json_t *b = json_pack("{s:{s:s,s:s,s:n,s:s,s:I,s:s},s:o,s:n}", "organization", "id", org,
                          "name", name, "parent_id", "home_branch", "top", "version", version,
                          "updated_at", "2030-01-01T00:00:00Z", "users",
                          users ? users : json_array(), "license");
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static json_t *wire_user(const char *id, const char *email, json_int_t version, bool deleted)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "id", id, "email", email, "name", "Wire User",
                     "role", "viewer", "home_branch", "top", "version", version, "deleted", deleted);
}

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

/* ---- a fake peer that records what the top sends ---- */

/* A minimal HTTP/1.1 server on a thread: one request per connection
 * (Connection: close), answers pings with a health body and records every
 * POST (parsed body + raw headers). */
typedef struct capture {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    json_t *bodies;   /* array of the POSTed JSON bodies */
    char *headers;    /* raw headers of the last POST */
} capture;

static capture C = {.lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void capture_conn(int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    char *eoh = NULL;
    while (eoh == NULL) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) {
            free(buf);
            return;
        }
        len += (size_t)r;
        buf[len] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    size_t hlen = (size_t)(eoh - buf) + 4, clen = 0;
    for (char *l = strstr(buf, "\r\n"); l != NULL && l < eoh; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "content-length:", 15) == 0)
            clen = strtoul(l + 17, NULL, 10);
        if (strncasecmp(l + 2, "expect: 100-continue", 20) == 0)
            send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    while (len < hlen + clen) {
        if (hlen + clen + 1 > cap)
            buf = realloc(buf, cap = hlen + clen + 1);
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    char body[512];
    if (strncmp(buf, "POST ", 5) == 0) {
        json_t *j = json_loadb(buf + hlen, len - hlen, 0, NULL);
        pthread_mutex_lock(&C.mu);
        json_array_append_new(C.bodies, j ? j : json_string("<not JSON>"));
        free(C.headers);
        C.headers = strndup(buf, hlen);
        pthread_mutex_unlock(&C.mu);
        snprintf(body, sizeof(body),
                 "{\"applied\":{\"organization\":1,\"users\":0,\"license\":0},\"version\":1}");
    } else {
        char now[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(body, sizeof(body),
                 "{\"branch_name\":\"capture\",\"branch_type\":\"master_branch\","
                 "\"branch_url\":\"http://127.0.0.1:%d\",\"version\":\"test\",\"time\":\"%s\"}",
                 C.port, now);
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     strlen(body));
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
    free(buf);
}

static void *capture_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(C.lfd, NULL, NULL);
        if (fd < 0) {
            if (__atomic_load_n(&C.stop, __ATOMIC_ACQUIRE))
                return NULL;
            continue;
        }
        capture_conn(fd);
        close(fd);
    }
}

static void capture_start(void)
{
    C.bodies = json_array();
    C.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(C.lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(C.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(C.lfd, 64), 0);
    socklen_t alen = sizeof(a);
    getsockname(C.lfd, (struct sockaddr *)&a, &alen);
    C.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&C.thread, NULL, capture_main, NULL), 0);
}

static void capture_stop(void)
{
    if (C.lfd < 0)
        return;
    __atomic_store_n(&C.stop, true, __ATOMIC_RELEASE);
    shutdown(C.lfd, SHUT_RDWR);
    pthread_join(C.thread, NULL);
    close(C.lfd);
    C.lfd = -1;
    json_decref(C.bodies);
    C.bodies = NULL;
    free(C.headers);
    C.headers = NULL;
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    if (start_branch(&T.top, "top", "top_branch", NULL) != 0 ||
        start_branch(&T.m1, "master-1", "master_branch", NULL) != 0 ||
        start_branch(&T.m2, "master-2", "master_branch", NULL) != 0)
        return -1;
    if (!bg_th_register(&T.top, "master-1", T.m1.url, "master_branch", KEY_M1) ||
        !bg_th_register(&T.top, "master-2", T.m2.url, "master_branch", KEY_M2) ||
        !bg_th_register(&T.m1, "top", T.top.url, "top_branch", KEY_M1) ||
        !bg_th_register(&T.m2, "top", T.top.url, "top_branch", KEY_M2))
        return -1;
    /* Both masters are seen up before anything is queued to them. */
    if (bg_th_wait_field(&T.top, "/api/v1/branches/master-1/status", "state", "up", 10000) < 0 ||
        bg_th_wait_field(&T.top, "/api/v1/branches/master-2/status", "state", "up", 10000) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&T.top, SIGKILL, 5000);
    bg_th_stop(&T.m1, SIGKILL, 5000);
    bg_th_stop(&T.m2, SIGKILL, 5000);
    capture_stop();
    bg_th_rmtree(T.root);
    return 0;
}

/* ---- 1. 1000 users reach both masters, no password hash leaves the top ---- */

static void test_thousand_users_no_hashes(void **state)
{
    (void)state;
    static const char *const roles[] = {"owner", "admin", "member", "viewer"};
    create_org(&T.top, "big-org", T.big_org);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.big_org);
    for (int i = 0; i < BIG_USERS; i++) {
        char email[64], name[64], pw[64];
        snprintf(email, sizeof(email), "User%04d@Big.Example", i);
        snprintf(name, sizeof(name), "User %d", i);
        snprintf(pw, sizeof(pw), "password-%04d-long", i);
        char *body = user_body(email, name, pw, roles[i % 4]);
        bg_th_resp r;
        assert_int_equal(bg_th_post_json(&T.top, path, T.top.token, body, &r), 0);
        free(body);
        if (r.status != 201)
            fprintf(stderr, "user %d: %ld %s\n", i, r.status, r.body);
        assert_int_equal(r.status, 201);
        /* The answer carries no password material. */
        assert_null(strstr(r.body, "password"));
        assert_null(strstr(r.body, "$argon2id$"));
        assert_null(strstr(r.body, pw));
        bg_th_resp_free(&r);
    }
    json_t *top_users = list_users(&T.top, T.big_org);
    assert_non_null(top_users);
    assert_int_equal(json_array_size(top_users), BIG_USERS);
    /* Emails are stored lower-cased. */
    assert_int_equal(count_field(top_users, "email", "user0007@big.example"), 1);

    assert_true(sync_org(&T.top, T.big_org, "master-1", "master-2") >= 2);
    assert_true(wait_depth(&T.top, "master-1", 0, 30000));
    assert_true(wait_depth(&T.top, "master-2", 0, 30000));

    const bg_th_proc *masters[] = {&T.m1, &T.m2};
    for (size_t m = 0; m < 2; m++) {
        json_t *got = list_users(masters[m], T.big_org);
        assert_non_null(got);
        assert_int_equal(json_array_size(got), BIG_USERS);
        /* The same users, field by field, in the same (id) order. */
        static const char *const keys[] = {"id", "organization_id", "email", "name", "role",
                                           "home_branch"};
        for (size_t i = 0; i < BIG_USERS; i++) {
            json_t *a = json_array_get(top_users, i), *b = json_array_get(got, i);
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                assert_string_equal(json_string_value(json_object_get(a, keys[k])),
                                    json_string_value(json_object_get(b, keys[k])));
            assert_int_equal(json_integer_value(json_object_get(b, "version")), 1);
            assert_null(json_object_get(b, "password"));
            assert_null(json_object_get(b, "password_hash"));
        }
        json_decref(got);
        /* The organisation itself, homed at the top. */
        char opath[200];
        snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", T.big_org);
        json_t *o = must(masters[m], "GET", opath, NULL, 200);
        assert_string_equal(json_string_value(json_object_get(o, "name")), "big-org");
        assert_string_equal(json_string_value(json_object_get(o, "home_branch")), "top");
        assert_int_equal(json_integer_value(json_object_get(o, "version")), 1);
        json_decref(o);
    }
    json_decref(top_users);

    /* On the wire: a peer that records what it is sent gets the 1000
     * users with exactly the snapshot fields, and no password material. */
    capture_start();
    char cap_url[64];
    snprintf(cap_url, sizeof(cap_url), "http://127.0.0.1:%d", C.port);
    assert_true(bg_th_register(&T.top, "capture", cap_url, "master_branch", KEY_CAP));
    assert_true(sync_org(&T.top, T.big_org, "capture", NULL) >= 1);
    assert_true(wait_depth(&T.top, "capture", 0, 30000));
    pthread_mutex_lock(&C.mu);
    size_t wire_users = 0, bi;
    json_t *snap;
    json_array_foreach(C.bodies, bi, snap) {
        assert_true(json_is_object(snap));
        char *text = json_dumps(snap, JSON_COMPACT);
        assert_null(strstr(text, "$argon2id$"));
        assert_null(strstr(text, "password"));
        free(text);
        json_t *org = json_object_get(snap, "organization");
        assert_string_equal(json_string_value(json_object_get(org, "id")), T.big_org);
        assert_string_equal(json_string_value(json_object_get(org, "home_branch")), "top");
        assert_true(json_is_null(json_object_get(snap, "license")));
        json_t *us = json_object_get(snap, "users"), *u;
        size_t ui;
        json_array_foreach(us, ui, u) {
            static const char *const wire_keys[] = {"id", "email", "name", "role",
                                                    "home_branch", "version", "deleted"};
            for (size_t k = 0; k < 7; k++)
                assert_non_null(json_object_get(u, wire_keys[k]));
            if (json_object_size(u) != 7) {
                char *bad = json_dumps(u, JSON_COMPACT);
                fprintf(stderr, "unexpected user fields: %s\n", bad);
                free(bad);
            }
            assert_int_equal(json_object_size(u), 7);
            wire_users++;
        }
    }
    assert_int_equal(wire_users, BIG_USERS);
    /* The calls were authenticated peer calls from the top. */
    char want[300];
    snprintf(want, sizeof(want), "X-Branch-Origin: %s\r\n", T.top.url);
    assert_non_null(strcasestr(C.headers, want));
    assert_non_null(strcasestr(C.headers, "Authorization: Bearer " KEY_CAP "\r\n"));
    assert_non_null(strcasestr(C.headers, "Idempotency-Key: "));
    assert_non_null(strcasestr(C.headers, "POST /api/v1/cross-branch/sync-organization "));
    pthread_mutex_unlock(&C.mu);
    json_decref(must(&T.top, "DELETE", "/api/v1/branches/capture", NULL, 200));
    capture_stop();

    /* No password hash at rest on a master; the top holds them. */
    const char *files[] = {"branchgate.db", "branchgate.db-wal"};
    bool top_has = false;
    for (size_t f = 0; f < 2; f++) {
        char p[400];
        snprintf(p, sizeof(p), "%s/top/%s", T.root, files[f]);
        top_has = top_has || file_contains(p, "$argon2id$");
        for (size_t m = 0; m < 2; m++) {
            snprintf(p, sizeof(p), "%s/master-%zu/%s", T.root, m + 1, files[f]);
            assert_false(file_contains(p, "$argon2id$"));
        }
    }
    assert_true(top_has);
    for (size_t m = 0; m < 2; m++) {
        char p[400];
        snprintf(p, sizeof(p), "%s/master-%zu.log", T.root, m + 1);
        assert_false(file_contains(p, "$argon2id$"));
        assert_false(file_contains(p, "password-0001-long"));
    }
}

/* ---- 2. versions, idempotency, tombstones ---- */

static void test_versions_idempotency_tombstones(void **state)
{
    (void)state;
    const char *sync_path = "/api/v1/cross-branch/sync-organization";
    char org[64], opath[200];
    bg_th_resp r, r2;

    /* Version 5, then version 3: the older one is ignored. */
    new_uuid(org);
    snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", org);
    char *v5 = snapshot_body(org, "name-at-v5", 5, NULL);
    char *v3 = snapshot_body(org, "name-at-v3", 3, NULL);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, NULL, v5, &r);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "organization")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 5);
    json_decref(j);
    bg_th_resp_free(&r);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, NULL, v3, &r);
    assert_int_equal(r.status, 200);
    j = bg_th_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "organization")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "users")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 5);
    json_decref(j);
    bg_th_resp_free(&r);
    j = must(&T.m1, "GET", opath, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "name-at-v5");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 5);
    json_decref(j);
    free(v5);
    free(v3);

    /* The same snapshot twice under one key: the first answer again, and
     * nothing applied twice (not even a body that would apply). */
    char org2[64], u1[64], u2[64], key1[64], key2[64];
    new_uuid(org2);
    new_uuid(u1);
    new_uuid(u2);
    new_uuid(key1);
    new_uuid(key2);
    json_t *users = json_pack("[o,o]", wire_user(u1, "one@idem.example", 1, false),
                              wire_user(u2, "two@idem.example", 1, false));
    char *snap = snapshot_body(org2, "idem-org", 1, users);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, key1, snap, &r);
    assert_int_equal(r.status, 200);
    j = bg_th_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "organization")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "users")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "license")), 0);
    json_decref(j);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, key1, snap, &r2);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r2.len, r.len);
    assert_memory_equal(r2.body, r.body, r.len);
    bg_th_resp_free(&r2);
    users = json_pack("[o]", wire_user(u1, "changed@idem.example", 7, false));
    char *newer = snapshot_body(org2, "idem-org-renamed", 7, users);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, key1, newer, &r2);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r2.len, r.len);
    assert_memory_equal(r2.body, r.body, r.len);
    bg_th_resp_free(&r2);
    free(newer);
    /* A different key: applied again, but versions make it a no-op. */
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, key2, snap, &r2);
    assert_int_equal(r2.status, 200);
    j = bg_th_json(&r2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "organization")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "users")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "license")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);
    bg_th_resp_free(&r2);
    bg_th_resp_free(&r);
    free(snap);
    snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", org2);
    j = must(&T.m1, "GET", opath, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "idem-org");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);
    json_t *all = list_users(&T.m1, org2);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 2);
    assert_int_equal(count_field(all, "email", "one@idem.example"), 1);
    assert_int_equal(count_field(all, "email", "two@idem.example"), 1);
    assert_int_equal(count_field(all, "email", "changed@idem.example"), 0);
    json_decref(all);

    /* Password material is refused, and the refused snapshot leaves nothing. */
    char org3[64], u3[64];
    new_uuid(org3);
    new_uuid(u3);
    const char *fields[] = {"password", "password_hash"};
    for (size_t f = 0; f < 2; f++) {
        json_t *wu = wire_user(u3, "secret@idem.example", 1, false);
        json_object_set_new(wu, fields[f], json_string("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"));
        snap = snapshot_body(org3, "with-secrets", 1, json_pack("[o]", wu));
        peer_post(&T.m1, T.top.url, KEY_M1, sync_path, NULL, snap, &r);
        assert_true(bg_th_is_error(&r, 400, "PASSWORD_NOT_ACCEPTED"));
        bg_th_resp_free(&r);
        free(snap);
    }
    snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", org3);
    must_fail(&T.m1, "GET", opath, NULL, 404, "ORGANIZATION_NOT_FOUND");
    /* Only the home branch may push an organisation. */
    json_t *b = json_pack("{s:{s:s,s:s,s:n,s:s,s:i,s:s},s:[],s:n}", "organization", "id", org3,
                          "name", "not-mine", "parent_id", "home_branch", "master-2", "version", 1,
                          "updated_at", "2030-01-01T00:00:00Z", "users", "license");
    snap = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    peer_post(&T.m1, T.top.url, KEY_M1, sync_path, NULL, snap, &r);
    assert_true(bg_th_is_error(&r, 403, "NOT_HOME_BRANCH"));
    bg_th_resp_free(&r);
    free(snap);
    must_fail(&T.m1, "GET", opath, NULL, 404, "ORGANIZATION_NOT_FOUND");

    /* A user deleted on the top disappears from both masters. */
    json_t *big = list_users(&T.top, T.big_org);
    assert_non_null(big);
    char victim[64];
    snprintf(victim, sizeof(victim), "%s",
             json_string_value(json_object_get(json_array_get(big, 17), "id")));
    json_decref(big);
    char upath[300];
    snprintf(upath, sizeof(upath), "/api/v1/organizations/%s/users/%s", T.big_org, victim);
    json_t *none = must(&T.top, "DELETE", upath, NULL, 204);
    assert_null(none);
    must_fail(&T.top, "GET", upath, NULL, 404, "USER_NOT_FOUND");
    must_fail(&T.top, "DELETE", upath, NULL, 404, "USER_NOT_FOUND");
    assert_true(wait_status(&T.m1, upath, 404, 15000));
    assert_true(wait_status(&T.m2, upath, 404, 15000));
    must_fail(&T.m1, "GET", upath, NULL, 404, "USER_NOT_FOUND");
    const bg_th_proc *all3[] = {&T.top, &T.m1, &T.m2};
    for (size_t i = 0; i < 3; i++) {
        all = list_users(all3[i], T.big_org);
        assert_non_null(all);
        assert_int_equal(json_array_size(all), BIG_USERS - 1);
        assert_int_equal(count_field(all, "id", victim), 0);
        json_decref(all);
    }
}

/* ---- 4. tenants stay apart ---- */

static void test_tenant_guard(void **state)
{
    (void)state;
    create_org(&T.top, "tenant-a", T.org_a);
    create_org(&T.top, "tenant-b", T.org_b);
    create_user(&T.top, T.org_a, "alice@tenant.example", T.user_a);
    /* The same address is a different user in another organisation. */
    create_user(&T.top, T.org_b, "alice@tenant.example", T.user_b);
    assert_string_not_equal(T.user_a, T.user_b);
    assert_int_equal(sync_org(&T.top, T.org_a, "master-1", NULL), 1);
    assert_int_equal(sync_org(&T.top, T.org_b, "master-1", NULL), 1);
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));

    const bg_th_proc *where[] = {&T.top, &T.m1};
    for (size_t w = 0; w < 2; w++) {
        const bg_th_proc *p = where[w];
        char path[300];
        /* A's user through B's path: not found, not deletable. */
        snprintf(path, sizeof(path), "/api/v1/organizations/%s/users/%s", T.org_b, T.user_a);
        must_fail(p, "GET", path, NULL, 404, "USER_NOT_FOUND");
        if (p == &T.top)
            must_fail(p, "DELETE", path, NULL, 404, "USER_NOT_FOUND");
        snprintf(path, sizeof(path), "/api/v1/organizations/%s/users/%s", T.org_a, T.user_a);
        json_t *u = must(p, "GET", path, NULL, 200);
        assert_string_equal(json_string_value(json_object_get(u, "organization_id")), T.org_a);
        json_decref(u);
        json_t *b = list_users(p, T.org_b);
        assert_non_null(b);
        assert_int_equal(json_array_size(b), 1);
        assert_int_equal(count_field(b, "id", T.user_a), 0);
        assert_int_equal(count_field(b, "organization_id", T.org_a), 0);
        json_decref(b);
    }

    /* A snapshot of B naming A's user cannot move it into B. */
    json_t *users = json_pack("[o]", wire_user(T.user_a, "moved@tenant.example", 50, false));
    char *snap = snapshot_body(T.org_b, "tenant-b", 1, users);
    bg_th_resp r;
    peer_post(&T.m1, T.top.url, KEY_M1, "/api/v1/cross-branch/sync-organization", NULL, snap, &r);
    free(snap);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "users")), 0);
    json_decref(j);
    bg_th_resp_free(&r);
    json_t *b = list_users(&T.m1, T.org_b);
    assert_int_equal(json_array_size(b), 1);
    assert_int_equal(count_field(b, "id", T.user_a), 0);
    json_decref(b);
    json_t *a = list_users(&T.m1, T.org_a);
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(count_field(a, "email", "alice@tenant.example"), 1);
    json_decref(a);
}

/* ---- 5. a shared template belongs to its organisation ---- */

static void test_shared_template(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/share", T.org_a);
    json_t *q = must(&T.top, "POST", path,
                     "{\"branches\":[\"master-1\"],\"resource_type\":\"template\","
                     "\"resource_id\":\"thumbs\",\"payload\":{\"steps\":{\"thumb\":"
                     "{\"robot\":\"/image/resize\",\"width\":120}}}}",
                     202);
    assert_int_equal(json_integer_value(json_object_get(q, "queued")), 1);
    json_decref(q);
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));

    snprintf(path, sizeof(path), "/api/v1/templates?organization_id=%s", T.org_a);
    json_t *l = must(&T.m1, "GET", path, NULL, 200);
    json_t *list = json_object_get(l, "templates");
    assert_int_equal(count_field(list, "id", "thumbs"), 1);
    json_t *t = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) if (strcmp(json_string_value(json_object_get(x, "id")), "thumbs") == 0) t = x;
    assert_string_equal(json_string_value(json_object_get(t, "organization_id")), T.org_a);
    assert_string_equal(json_string_value(json_object_get(t, "shared_by")), "top");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(t, "steps"),
                                                                        "thumb"), "width")), 120);
    json_decref(l);
    snprintf(path, sizeof(path), "/api/v1/templates/thumbs?organization_id=%s", T.org_a);
    json_t *one = must(&T.m1, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(one, "id")), "thumbs");
    json_decref(one);

    /* Organisation B (held by master-1 too) does not see it. */
    snprintf(path, sizeof(path), "/api/v1/templates?organization_id=%s", T.org_b);
    l = must(&T.m1, "GET", path, NULL, 200);
    assert_int_equal(count_field(json_object_get(l, "templates"), "id", "thumbs"), 0);
    json_decref(l);
    snprintf(path, sizeof(path), "/api/v1/templates/thumbs?organization_id=%s", T.org_b);
    must_fail(&T.m1, "GET", path, NULL, 404, "TEMPLATE_NOT_FOUND");
    /* Nor does master-2, which never got it. */
    snprintf(path, sizeof(path), "/api/v1/templates/thumbs?organization_id=%s", T.org_a);
    long s = status_of(&T.m2, "GET", path);
    assert_int_equal(s, 404);

    /* A peer that does not hold the organisation refuses the share. */
    char ghost[64];
    new_uuid(ghost);
    json_t *body = json_pack("{s:s,s:s,s:s,s:[s],s:{s:{}}}", "resource_type", "template",
                             "resource_id", "thumbs", "organization_id", ghost, "permissions",
                             "read", "payload", "steps");
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    bg_th_resp r;
    peer_post(&T.m1, T.top.url, KEY_M1, "/api/v1/cross-branch/share-resource", NULL, text, &r);
    free(text);
    assert_true(bg_th_is_error(&r, 404, "ORGANIZATION_NOT_FOUND"));
    bg_th_resp_free(&r);
}

/* ---- 6. refused input leaves nothing behind ---- */

static void test_bad_input_leaves_nothing(void **state)
{
    (void)state;
    char org[64], path[300];
    create_org(&T.top, "strict-org", org);
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", org);
    char long_pw[1100];
    memset(long_pw, 'p', 1025);
    long_pw[1025] = '\0';
    const struct {
        const char *email, *role, *password, *code;
    } bad[] = {
        {"not-an-email", "member", "long-enough-pw", "INVALID_EMAIL"},
        {"two@@example.com", "member", "long-enough-pw", "INVALID_EMAIL"},
        {"ok@example.com", "root", "long-enough-pw", "INVALID_ROLE"},
        {"ok@example.com", "member", "short", "INVALID_PASSWORD"},
        {"ok@example.com", "member", "", "INVALID_PASSWORD"},
        /* Longer than any valid value: still the field's own code. */
        {"ok@example.com", "administrator", "long-enough-pw", "INVALID_ROLE"},
        {"ok@example.com", "member", long_pw, "INVALID_PASSWORD"},
    };
    int mismatches = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = user_body(bad[i].email, "Bad", bad[i].password, bad[i].role);
        mismatches += !check_fail(&T.top, "POST", path, body, 400, bad[i].code);
        free(body);
    }
    json_t *all = list_users(&T.top, org);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    create_user(&T.top, org, "dup@example.com", NULL);
    char *dup = user_body("DUP@Example.com", "Again", "another-long-pw", "viewer");
    mismatches += !check_fail(&T.top, "POST", path, dup, 409, "USER_EXISTS");
    free(dup);
    all = list_users(&T.top, org);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);

    /* An organisation that does not exist. */
    char ghost[64], gpath[300];
    new_uuid(ghost);
    snprintf(gpath, sizeof(gpath), "/api/v1/organizations/%s/users", ghost);
    char *body = user_body("x@example.com", "X", "long-enough-pw", "member");
    mismatches += !check_fail(&T.top, "POST", gpath, body, 404, "ORGANIZATION_NOT_FOUND");
    free(body);
    snprintf(gpath, sizeof(gpath), "/api/v1/organizations/%s/share", ghost);
    mismatches += !check_fail(&T.top, "POST", gpath,
                              "{\"branches\":[\"master-1\"],\"resource_type\":\"template\","
                              "\"resource_id\":\"t\",\"payload\":{\"steps\":{}}}",
                              404, "ORGANIZATION_NOT_FOUND");
    snprintf(gpath, sizeof(gpath), "/api/v1/organizations/%s/sync", ghost);
    body = sync_body("master-1", NULL);
    mismatches += !check_fail(&T.top, "POST", gpath, body, 404, "ORGANIZATION_NOT_FOUND");
    free(body);

    /* A sync naming an unknown branch queues nothing, even for the known
     * one in the same list, and the share is not remembered. */
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/sync", org);
    body = sync_body("master-1", "no-such-branch");
    bg_th_resp r;
    assert_int_equal(bg_th_post_json(&T.top, path, T.top.token, body, &r), 0);
    free(body);
    assert_int_equal(outbox_depth(&T.top, "master-1"), 0);
    create_user(&T.top, org, "after@example.com", NULL);
    /* Had the share been remembered, that change would now be queued to
     * master-1 ahead of this marker (one destination delivers in order). */
    char marker[64], opath[200];
    create_org(&T.top, "marker-org", marker);
    assert_int_equal(sync_org(&T.top, marker, "master-1", NULL), 1);
    snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", marker);
    assert_true(wait_status(&T.m1, opath, 200, 15000));
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));
    snprintf(opath, sizeof(opath), "/api/v1/organizations/%s", org);
    must_fail(&T.m1, "GET", opath, NULL, 404, "ORGANIZATION_NOT_FOUND");
    /* The answer itself: the branch is what was not found. */
    mismatches += !bg_th_is_error(&r, 404, "BRANCH_NOT_FOUND");
    bg_th_resp_free(&r);
    assert_int_equal(mismatches, 0);
}

/* ---- 3. a killed master, then a killed top ---- */

static void test_outage_master_then_top(void **state)
{
    (void)state;
    char org[64];
    create_org(&T.top, "outage-org", org);
    create_user(&T.top, org, "first@outage.example", NULL);
    assert_int_equal(sync_org(&T.top, org, "master-1", "master-2"), 2);
    assert_true(wait_user_count(&T.m1, org, 1, 15000));
    assert_true(wait_user_count(&T.m2, org, 1, 15000));
    assert_true(wait_depth(&T.top, "master-2", 0, 15000));

    /* master-2 goes away; three changes are made meanwhile. */
    char m2_listen[64];
    listen_of(&T.m2, m2_listen, sizeof(m2_listen));
    assert_int_equal(bg_th_stop(&T.m2, SIGKILL, 5000), 128 + SIGKILL);
    const char *emails[] = {"a@outage.example", "b@outage.example", "c@outage.example"};
    for (size_t i = 0; i < 3; i++)
        create_user(&T.top, org, emails[i], NULL);
    long long d = outbox_depth(&T.top, "master-2");
    assert_true(d >= 1);
    assert_true(d <= 3);
    json_t *ob = outbox_of(&T.top, "master-2");
    assert_non_null(json_object_get(ob, "oldest_pending_age_s"));
    json_decref(ob);
    /* master-1 got them as usual. */
    assert_true(wait_user_count(&T.m1, org, 4, 15000));
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));

    /* Back on the same address: all three arrive, each once. */
    assert_int_equal(start_branch(&T.m2, "master-2", "master_branch", m2_listen), 0);
    assert_true(wait_user_count(&T.m2, org, 4, 20000));
    assert_true(wait_depth(&T.top, "master-2", 0, 15000));
    json_t *all = list_users(&T.m2, org);
    assert_non_null(all);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(count_field(all, "email", emails[i]), 1);
    assert_int_equal(count_field(all, "email", "first@outage.example"), 1);
    json_decref(all);
    assert_int_equal(outbox_depth(&T.top, "master-2"), 0);
    json_t *st = outbox_of(&T.top, "master-2");
    assert_int_equal(json_integer_value(json_object_get(st, "dead")), 0);
    json_decref(st);

    /* Now the top dies with deliveries pending for master-1. */
    char m1_listen[64], top_listen[64];
    listen_of(&T.m1, m1_listen, sizeof(m1_listen));
    listen_of(&T.top, top_listen, sizeof(top_listen));
    assert_int_equal(bg_th_stop(&T.m1, SIGKILL, 5000), 128 + SIGKILL);
    const char *late[] = {"d@outage.example", "e@outage.example"};
    for (size_t i = 0; i < 2; i++)
        create_user(&T.top, org, late[i], NULL);
    assert_int_equal(outbox_depth(&T.top, "master-1"), 2);
    assert_int_equal(bg_th_stop(&T.top, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(start_branch(&T.m1, "master-1", "master_branch", m1_listen), 0);
    assert_int_equal(start_branch(&T.top, "top", "top_branch", top_listen), 0);

    assert_true(wait_user_count(&T.m1, org, 6, 20000));
    assert_true(wait_depth(&T.top, "master-1", 0, 15000));
    all = list_users(&T.m1, org);
    assert_non_null(all);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(count_field(all, "email", late[i]), 1);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(count_field(all, "email", emails[i]), 1);
    json_decref(all);
    /* master-2 got them before the top died (or after its restart). */
    assert_true(wait_user_count(&T.m2, org, 6, 15000));
    assert_true(wait_depth(&T.top, "master-2", 0, 15000));
    assert_int_equal(outbox_depth(&T.top, "master-1"), 0);
}

/* ---- 7. a share sent before the organisation must not wedge the peer ---- */

static void test_share_before_sync_does_not_wedge(void **state)
{
    (void)state;
    char org[64], path[300];
    create_org(&T.top, "late-org", org);
    create_user(&T.top, org, "late@example.com", NULL);
    assert_true(wait_depth(&T.top, "master-2", 0, 15000));
    /* Shared before master-2 holds the organisation: master-2 answers 404
     * until the organisation arrives ... */
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/share", org);
    json_t *q = must(&T.top, "POST", path,
                     "{\"branches\":[\"master-2\"],\"resource_type\":\"template\","
                     "\"resource_id\":\"late-thumbs\",\"payload\":{\"steps\":{}}}",
                     202);
    json_decref(q);
    /* ... which the operator then syncs. Both must arrive. */
    assert_int_equal(sync_org(&T.top, org, "master-2", NULL), 1);
    assert_true(wait_depth(&T.top, "master-2", 0, 10000));
    assert_true(wait_user_count(&T.m2, org, 1, 5000));
    snprintf(path, sizeof(path), "/api/v1/templates/late-thumbs?organization_id=%s", org);
    assert_true(wait_status(&T.m2, path, 200, 5000));
}

/* ---- last: every process shuts down cleanly, no sanitizer report ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    bg_th_proc *all[] = {&T.top, &T.m1, &T.m2};
    int bad = 0;
    for (size_t i = 0; i < 3; i++) {
        int rc = bg_th_stop(all[i], SIGTERM, 15000);
        if (rc != 0) {
            fprintf(stderr, "%s exited with %d\n", all[i]->log, rc);
            bad++;
        }
        /* Under -DBG_SANITIZE=ON the reports land in the process logs. */
        char *log = bg_th_read_file(all[i]->log, NULL);
        const char *hit = NULL;
        static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                            "runtime error:", "WARNING: ThreadSanitizer"};
        for (size_t m = 0; log != NULL && hit == NULL && m < 4; m++)
            hit = strstr(log, marks[m]);
        if (hit != NULL) {
            fprintf(stderr, "%s:\n%.4000s\n", all[i]->log, hit);
            bad++;
        }
        free(log);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_users_no_hashes),
        cmocka_unit_test(test_versions_idempotency_tombstones),
        cmocka_unit_test(test_tenant_guard),
        cmocka_unit_test(test_shared_template),
        cmocka_unit_test(test_bad_input_leaves_nothing),
        cmocka_unit_test(test_outage_master_then_top),
        cmocka_unit_test(test_share_before_sync_does_not_wedge),
        cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
