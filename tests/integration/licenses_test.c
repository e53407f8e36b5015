/* Licenses and federated login: a top branch and a master as real
 * processes. Licenses are issued on the top only and validate on the
 * master: the master checks signature, times and domain itself, asks the
 * top for the rest (revocation, branch limit) and keeps the top's signed
 * receipt, so with the top killed it still answers VALID_CACHED for what it
 * saw before and UNAVAILABLE for what it never saw. Licenses travel with
 * organisation sync. A user homed at the top logs in at the master, which
 * issues its own token; wrong credentials look the same whether the user
 * exists or not, and logins are rate limited per user and per address.
 * Last, both processes stop cleanly (and, in a -DBG_SANITIZE=ON build,
 * without a sanitizer report in their logs). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KEY "lic-pair-key-top-master1-0123456789"
#define DAY (24LL * 3600)
#define NO_NBF LLONG_MIN /* issue without "not_before" */
#define FED_EMAIL "Fed.User@Licensed.Example"
#define FED_PASSWORD "fed-user-password-0001"

static const char *const env[] = {
    "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",       "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8",
    "BRANCHGATE_PEERS_PING_INTERVAL_MS=200",   "BRANCHGATE_LICENSES_CACHE_TTL_S=1",
    "BRANCHGATE_PEERS_BREAKER_OPEN_MS=300",    "BRANCHGATE_PEERS_CONNECT_TIMEOUT_MS=300",
    NULL};

static const char *const limited_env[] = {
    "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",       "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8",
    "BRANCHGATE_PEERS_PING_INTERVAL_MS=200",   "BRANCHGATE_LICENSES_CACHE_TTL_S=1",
    "BRANCHGATE_PEERS_BREAKER_OPEN_MS=300",    "BRANCHGATE_PEERS_CONNECT_TIMEOUT_MS=300",
    "BRANCHGATE_AUTH_LOGIN_PER_MIN=3",         NULL};

typedef struct lic {
    char id[64];
    char key[4096];
} lic;

typedef struct topo {
    char root[256];
    bg_th_proc top, m1;
    char top_default_org[64]; /* the top's "default" organisation */
    char m1_default_org[64];  /* master-1's own "default" organisation */
    char synced_org[64];      /* created on the top, synced to master-1 */
    lic main;                 /* example.com, *.example.org; validated before the outage */
    lic revoked;              /* revoked on the top */
    lic synced;               /* of synced_org, travels with the sync */
    char tampered[4096];      /* main with one payload character changed */
    bg_th_proc limited;       /* a top with auth.login_per_min = 3 */
    char limited_org[64];     /* its "default" organisation */
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
static int start_branch(bg_th_proc *p, const char *name, const char *type, const char *listen,
                        const char *const *e)
{
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/%s", T.root, name);
    if (access(dir, F_OK) != 0 && !init_branch(dir, name, type))
        return -1;
    const char *extra[] = {"--listen", listen, NULL};
    return bg_th_start(p, dir, listen ? extra : NULL, e);
}

static void listen_of(const bg_th_proc *p, char *out, size_t cap)
{
    snprintf(out, cap, "127.0.0.1:%s", strrchr(p->url, ':') + 1);
}

/* ---- HTTP helpers ---- */

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* A request with any bearer token (NULL: none) and an optional JSON body.
 * The harness's own Authorization header holds at most 277 characters of
 * token, and user tokens (JWTs) are longer, so the header is built here. */
static int send_as(const bg_th_proc *p, const char *method, const char *path, const char *token,
                   const char *json, bg_th_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    char *auth = NULL;
    if (token != NULL && asprintf(&auth, "Authorization: Bearer %s", token) < 0)
        auth = NULL;
    const char *h[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (auth != NULL)
        h[n++] = auth;
    if (json != NULL)
        h[n++] = "Content-Type: application/json";
    int rc = bg_th_http(method, url, NULL, json, json ? strlen(json) : 0, h, false, r);
    free(auth);
    return rc;
}

/* An admin request; asserts the status; returns the parsed body. */
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

/* An admin request that must fail with the error shape; only reports, so a
 * test can check every case and fail once with all mismatches printed. */
static bool check_fail(const bg_th_proc *p, const char *method, const char *path, const char *body,
                       long status, const char *code)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, p->token, body, &r), 0);
    bool ok = bg_th_is_error(&r, status, code);
    if (!ok)
        fprintf(stderr, "  (%s %s %s)\n", method, path, body ? body : "");
    bg_th_resp_free(&r);
    return ok;
}

static void org_id_by_name(const bg_th_proc *p, const char *name, char out[64])
{
    json_t *j = must(p, "GET", "/api/v1/organizations", NULL, 200);
    size_t i;
    json_t *o;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "organizations"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            snprintf(out, 64, "%s", json_string_value(json_object_get(o, "id")));
    }
    json_decref(j);
    assert_int_equal(strlen(out), 36);
}

/* Whether an RFC 3339 time is now + offset_s, give or take 5 s. */
static bool near_now(const char *rfc, long long offset_s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = rfc ? strptime(rfc, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    long long d =
        rest != NULL && *rest == '\0' ? (long long)timegm(&tm) - (time(NULL) + offset_s) : 1000;
    if (d < -5 || d > 5)
        fprintf(stderr, "%s is not now%+llds\n", rfc ? rfc : "(null)", offset_s);
    return d >= -5 && d <= 5;
}

static void rfc3339_at(long long offset_s, char out[32])
{
    time_t t = time(NULL) + (time_t)offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* An issue body; domains is stolen. nbf_off NO_NBF leaves not_before out. */
static char *issue_body(const char *org, const char *tier, json_t *domains, int branches,
                        long long nbf_off, long long exp_off)
{
    char exp[32], nbf[32];
    rfc3339_at(exp_off, exp);
    json_t *b = json_pack("{s:s,s:s,s:o,s:[s,s],s:{s:i,s:i},s:s}", "organization_id", org, "tier",
                          tier, "domains", domains, "features", "sso", "audit", "limits",
                          "branches", branches, "users", 100, "expires_at", exp);
    if (nbf_off != NO_NBF) {
        rfc3339_at(nbf_off, nbf);
        json_object_set_new(b, "not_before", json_string(nbf));
    }
    return dump(b);
}

/* Issues on the top; asserts 201 and fills l. Returns the answer. */
static json_t *issue(const char *org, const char *tier, json_t *domains, int branches,
                     long long nbf_off, long long exp_off, lic *l)
{
    char *body = issue_body(org, tier, domains, branches, nbf_off, exp_off);
    json_t *j = must(&T.top, "POST", "/api/v1/licenses", body, 201);
    free(body);
    snprintf(l->id, sizeof(l->id), "%s", json_string_value(json_object_get(j, "id")));
    snprintf(l->key, sizeof(l->key), "%s", json_string_value(json_object_get(j, "license_key")));
    assert_int_equal(strlen(l->id), 36);
    assert_true(strncmp(l->key, "BG1.", 4) == 0);
    return j;
}

/* POST /api/v1/licenses/validate with token; asserts 200; the answer. */
static json_t *validate(const bg_th_proc *p, const char *token, const char *key, const char *domain)
{
    char *body = dump(json_pack("{s:s,s:s}", "license_key", key, "domain", domain));
    bg_th_resp r;
    assert_int_equal(send_as(p, "POST", "/api/v1/licenses/validate", token, body, &r), 0);
    free(body);
    if (r.status != 200)
        fprintf(stderr, "validate %s at %s: %ld %s\n", domain, p->url, r.status, r.body);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    assert_non_null(j);
    return j;
}

/* Checks an answer's code and valid flag, and checked_by when given. */
static bool answer_is(json_t *a, const char *code, bool valid, const char *checked_by)
{
    const char *c = json_string_value(json_object_get(a, "code"));
    const char *by = json_string_value(json_object_get(a, "checked_by"));
    bool ok = c != NULL && strcmp(c, code) == 0 && json_is_boolean(json_object_get(a, "valid")) &&
              json_is_true(json_object_get(a, "valid")) == valid &&
              json_is_string(json_object_get(a, "detail")) && by != NULL &&
              (checked_by == NULL || strcmp(by, checked_by) == 0) &&
              json_object_get(a, "license") != NULL && json_object_get(a, "receipt") != NULL;
    if (!ok) {
        char *s = json_dumps(a, JSON_COMPACT);
        fprintf(stderr, "want code %s valid %d checked_by %s, got %s\n", code, valid,
                checked_by ? checked_by : "(any)", s);
        free(s);
    }
    return ok;
}

/* Validates with the admin token of p and checks the answer. */
static bool validates_as(const bg_th_proc *p, const char *key, const char *domain,
                         const char *code, bool valid, const char *checked_by)
{
    json_t *a = validate(p, p->token, key, domain);
    bool ok = answer_is(a, code, valid, checked_by);
    if (!ok)
        fprintf(stderr, "  (domain %s at %s)\n", domain, p == &T.top ? "top" : "master-1");
    json_decref(a);
    return ok;
}

/* Polls a validation until it answers code; the last answer (new
 * reference) or NULL after the deadline. */
static json_t *wait_code(const bg_th_proc *p, const char *key, const char *domain, const char *code,
                         int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    json_t *a = NULL;
    while (bg_th_now_ms() < end) {
        json_decref(a);
        a = validate(p, p->token, key, domain);
        const char *c = json_string_value(json_object_get(a, "code"));
        if (c != NULL && strcmp(c, code) == 0)
            return a;
        bg_th_nap_ms(50);
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s: %s never answered %s; last: %s\n", p->url, domain, code, s ? s : "");
    free(s);
    json_decref(a);
    return NULL;
}

/* The value of one Prometheus sample ("name{labels}") or -1. */
static long long metric(const bg_th_proc *p, const char *sample)
{
    bg_th_resp r;
    assert_int_equal(bg_th_get(p, "/metrics", p->token, &r), 0);
    assert_int_equal(r.status, 200);
    long long v = -1;
    size_t n = strlen(sample);
    for (const char *s = r.body; s != NULL && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
        if (strncmp(s, sample, n) == 0 && s[n] == ' ') {
            v = strtoll(s + n + 1, NULL, 10);
            break;
        }
    bg_th_resp_free(&r);
    return v;
}

/* POST /api/v1/auth/login (public). source: local address to connect
 * from (NULL: default); request_id may be NULL. */
static void login(const bg_th_proc *p, const char *email, const char *password, const char *org,
                  const char *request_id, const char *source, bg_th_resp *r)
{
    json_t *b = json_pack("{s:s,s:s}", "email", email, "password", password);
    if (org != NULL)
        json_object_set_new(b, "organization_id", json_string(org));
    char *body = dump(b);
    char url[300], rid[200];
    snprintf(url, sizeof(url), "%s/api/v1/auth/login", p->url);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "");
    const char *h[] = {"Content-Type: application/json", request_id ? rid : NULL, NULL};
    if (source == NULL) {
        assert_int_equal(bg_th_http("POST", url, NULL, body, strlen(body), h, false, r), 0);
        free(body);
        return;
    }
    /* The harness always connects from 127.0.0.1; another loopback source
     * address is another client for the per-address limit. */
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    struct curl_slist *sl = NULL;
    for (size_t i = 0; h[i] != NULL; i++)
        sl = curl_slist_append(sl, h[i]);
    FILE *bf = open_memstream(&r->body, &r->len);
    size_t hlen = 0;
    FILE *hf = open_memstream(&r->headers, &hlen);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_INTERFACE, source);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, bf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, fwrite);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hf);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        fprintf(stderr, "login from %s: %s\n", source, curl_easy_strerror(rc));
    fclose(bf);
    fclose(hf);
    curl_slist_free_all(sl);
    curl_easy_cleanup(c);
    free(body);
    assert_int_equal(rc, CURLE_OK);
}

/* ---- base64url, to tamper with a key ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(b64, in[i]);
        assert_non_null(p);
        acc = (acc << 6) | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void b64url_encode(const unsigned char *in, size_t len, char *out)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = b64[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[n++] = b64[(acc << (6 - bits)) & 63];
    out[n] = '\0';
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    if (start_branch(&T.top, "top", "top_branch", NULL, env) != 0 ||
        start_branch(&T.m1, "master-1", "master_branch", NULL, env) != 0)
        return -1;
    if (!bg_th_register(&T.top, "master-1", T.m1.url, "master_branch", KEY) ||
        !bg_th_register(&T.m1, "top", T.top.url, "top_branch", KEY))
        return -1;
    /* The master learns the top's signing key from the top's health answer. */
    if (bg_th_wait_field(&T.m1, "/api/v1/branches/top/status", "state", "up", 10000) < 0 ||
        bg_th_wait_field(&T.top, "/api/v1/branches/master-1/status", "state", "up", 10000) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&T.top, SIGKILL, 5000);
    bg_th_stop(&T.m1, SIGKILL, 5000);
    bg_th_stop(&T.limited, SIGKILL, 5000);
    bg_th_rmtree(T.root);
    return 0;
}

/* ---- 1. issued on the top, valid on the master; domains ---- */

static void test_issue_and_validate_on_master(void **state)
{
    (void)state;
    org_id_by_name(&T.top, "default", T.top_default_org);
    org_id_by_name(&T.m1, "default", T.m1_default_org);
    json_t *l = issue(T.top_default_org, "pro", json_pack("[s,s]", "example.com", "*.example.org"),
                      5, NO_NBF, 365 * DAY, &T.main);
    /* The answer's shape. */
    assert_string_equal(json_string_value(json_object_get(l, "organization_id")),
                        T.top_default_org);
    assert_string_equal(json_string_value(json_object_get(l, "tier")), "pro");
    assert_string_equal(json_string_value(json_object_get(l, "status")), "active");
    char exp[32];
    snprintf(exp, sizeof(exp), "%s", json_string_value(json_object_get(l, "expires_at")));
    assert_true(near_now(exp, 365 * DAY));
    assert_true(near_now(json_string_value(json_object_get(l, "not_before")), 0));
    json_t *d = json_object_get(l, "domains");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(json_string_value(json_array_get(d, 0)), "example.com");
    assert_string_equal(json_string_value(json_array_get(d, 1)), "*.example.org");
    assert_int_equal(json_array_size(json_object_get(l, "features")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(l, "limits"), "branches")),
                     5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(l, "limits"), "users")),
                     100);
    /* BG1.<payload>.<signature> */
    const char *dot = strchr(T.main.key + 4, '.');
    assert_non_null(dot);
    assert_null(strchr(dot + 1, '.'));
    json_decref(l);

    /* Read back on the top. */
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/licenses/%s", T.main.id);
    l = must(&T.top, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(l, "id")), T.main.id);
    assert_string_equal(json_string_value(json_object_get(l, "license_key")), T.main.key);
    assert_string_equal(json_string_value(json_object_get(l, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(l, "expires_at")), exp);
    json_decref(l);

    /* On the top and on the master. The master asked the top: the top
     * checked it and signed a receipt. */
    const bg_th_proc *where[] = {&T.top, &T.m1};
    for (size_t w = 0; w < 2; w++) {
        json_t *a = validate(where[w], where[w]->token, T.main.key, "example.com");
        assert_true(answer_is(a, "VALID", true, "top"));
        const char *receipt = json_string_value(json_object_get(a, "receipt"));
        assert_non_null(receipt);
        assert_true(strlen(receipt) > 10);
        json_t *al = json_object_get(a, "license");
        assert_string_equal(json_string_value(json_object_get(al, "id")), T.main.id);
        assert_string_equal(json_string_value(json_object_get(al, "organization_id")),
                            T.top_default_org);
        json_decref(a);
    }

    /* Domains on the master: the wildcard covers any depth below
     * example.org, never example.org itself nor a look-alike; names compare
     * case-insensitively and without a trailing dot. */
    int bad = 0;
    bad += !validates_as(&T.m1, T.main.key, "a.example.org", "VALID", true, "top");
    bad += !validates_as(&T.m1, T.main.key, "b.a.example.org", "VALID", true, "top");
    bad += !validates_as(&T.m1, T.main.key, "Example.COM.", "VALID", true, "top");
    bad += !validates_as(&T.m1, T.main.key, "evil.com", "DOMAIN_MISMATCH", false, NULL);
    bad += !validates_as(&T.m1, T.main.key, "example.org", "DOMAIN_MISMATCH", false, NULL);
    bad += !validates_as(&T.m1, T.main.key, "badexample.org", "DOMAIN_MISMATCH", false, NULL);
    bad += !validates_as(&T.m1, T.main.key, "www.example.com", "DOMAIN_MISMATCH", false, NULL);
    bad += !validates_as(&T.top, T.main.key, "evil.com", "DOMAIN_MISMATCH", false, "top");
    assert_int_equal(bad, 0);
    /* A mismatch is not a valid answer of any kind. */
    json_t *a = validate(&T.m1, T.m1.token, T.main.key, "evil.com");
    assert_false(json_is_true(json_object_get(a, "valid")));
    json_decref(a);
}

/* ---- 2. a tampered key is refused by the master itself ---- */

static void test_tampered_key(void **state)
{
    (void)state;
    long long top_before =
        metric(&T.top, "branchgate_license_validations_total{code=\"INVALID_SIGNATURE\"}");
    assert_true(top_before >= 0);

    /* One character of the payload part changed. */
    snprintf(T.tampered, sizeof(T.tampered), "%s", T.main.key);
    const char *dot = strchr(T.tampered + 4, '.');
    size_t mid = 4 + (size_t)(dot - (T.tampered + 4)) / 2;
    T.tampered[mid] = T.tampered[mid] == 'A' ? 'B' : 'A';
    assert_string_not_equal(T.tampered, T.main.key);

    /* A payload that still parses (tier raised), with the old signature. */
    size_t plen = (size_t)(dot - (T.tampered + 4));
    unsigned char *raw = calloc(1, plen + 1);
    size_t n = b64url_decode(T.main.key + 4, plen, raw);
    json_t *p = json_loadb((const char *)raw, n, 0, NULL);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "tier")), "pro");
    json_object_set_new(p, "tier", json_string("enterprise"));
    char *pj = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    char *forged = calloc(1, 8192);
    memcpy(forged, "BG1.", 4);
    b64url_encode((const unsigned char *)pj, strlen(pj), forged + 4);
    strcat(forged, strchr(T.main.key + 4, '.'));
    free(pj);
    free(raw);

    /* The main key's payload with a signature of another license. */
    lic other;
    json_decref(issue(T.top_default_org, "basic", json_pack("[s]", "example.com"), 5, NO_NBF,
                      30 * DAY, &other));
    char *swapped = calloc(1, 8192);
    snprintf(swapped, 8192, "%.*s%s", (int)(dot - T.tampered), T.main.key,
             strchr(other.key + 4, '.'));

    const char *keys[] = {T.tampered, forged, swapped};
    int bad = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *a = validate(&T.m1, T.m1.token, keys[i], "example.com");
        bad += !answer_is(a, "INVALID_SIGNATURE", false, "master-1");
        if (!json_is_null(json_object_get(a, "receipt"))) {
            fprintf(stderr, "a refused key got a receipt (key %zu)\n", i);
            bad++;
        }
        json_decref(a);
    }
    /* The top, asked directly, says the same. */
    bad += !validates_as(&T.top, forged, "example.com", "INVALID_SIGNATURE", false, "top");
    assert_int_equal(bad, 0);
    free(forged);
    free(swapped);
    /* The master never asked the top: the top counted only the direct
     * question. */
    assert_int_equal(
        metric(&T.top, "branchgate_license_validations_total{code=\"INVALID_SIGNATURE\"}"),
        top_before + 1);
    assert_true(metric(&T.m1, "branchgate_license_validations_total{code=\"INVALID_SIGNATURE\"}") >=
                3);
}

/* ---- 3. time: grace, expired, not yet valid ---- */

static void test_time_codes(void **state)
{
    (void)state;
    lic grace, late, expired, early;
    json_t *domains = json_pack("[s]", "time.example");
    json_decref(
        issue(T.top_default_org, "pro", json_incref(domains), 5, -60 * DAY, -3 * DAY, &grace));
    json_decref(
        issue(T.top_default_org, "pro", json_incref(domains), 5, -60 * DAY, -8 * DAY, &late));
    json_decref(
        issue(T.top_default_org, "pro", json_incref(domains), 5, -90 * DAY, -30 * DAY, &expired));
    json_t *e =
        issue(T.top_default_org, "pro", json_incref(domains), 5, 10 * DAY, 40 * DAY, &early);
    json_decref(domains);
    /* The not_before asked for is the one issued. */
    assert_true(near_now(json_string_value(json_object_get(e, "not_before")), 10 * DAY));
    assert_true(near_now(json_string_value(json_object_get(e, "expires_at")), 40 * DAY));
    json_decref(e);

    int bad = 0;
    /* Expired less than grace_days (7) ago: still valid, confirmed by the top. */
    bad += !validates_as(&T.m1, grace.key, "time.example", "GRACE", true, "top");
    bad += !validates_as(&T.top, grace.key, "time.example", "GRACE", true, "top");
    /* Beyond the grace period and not yet valid: the master decides alone. */
    bad += !validates_as(&T.m1, late.key, "time.example", "EXPIRED", false, "master-1");
    bad += !validates_as(&T.m1, expired.key, "time.example", "EXPIRED", false, "master-1");
    bad += !validates_as(&T.top, expired.key, "time.example", "EXPIRED", false, "top");
    bad += !validates_as(&T.m1, early.key, "time.example", "NOT_YET_VALID", false, "master-1");
    bad += !validates_as(&T.top, early.key, "time.example", "NOT_YET_VALID", false, "top");
    assert_int_equal(bad, 0);
}

/* ---- 4. the branch limit ---- */

static void test_too_many_branches(void **state)
{
    (void)state;
    /* The top plus master-1 are two branches. */
    lic one, two;
    json_decref(issue(T.top_default_org, "starter", json_pack("[s]", "limit.example"), 1, NO_NBF,
                      30 * DAY, &one));
    json_decref(issue(T.top_default_org, "starter", json_pack("[s]", "limit.example"), 2, NO_NBF,
                      30 * DAY, &two));
    int bad = 0;
    bad += !validates_as(&T.m1, one.key, "limit.example", "TOO_MANY_BRANCHES", false, "top");
    bad += !validates_as(&T.top, one.key, "limit.example", "TOO_MANY_BRANCHES", false, "top");
    bad += !validates_as(&T.m1, two.key, "limit.example", "VALID", true, "top");
    assert_int_equal(bad, 0);
}

/* ---- 5. who may issue, and bad bodies ---- */

static void test_issue_errors(void **state)
{
    (void)state;
    int bad = 0;
    /* Only the top issues, even a well-formed license. */
    char *body = issue_body(T.m1_default_org, "pro", json_pack("[s]", "example.com"), 5, NO_NBF,
                            30 * DAY);
    bad += !check_fail(&T.m1, "POST", "/api/v1/licenses", body, 403, "NOT_TOP_BRANCH");
    free(body);

    char ghost[64];
    char *u = bg_th_read_file("/proc/sys/kernel/random/uuid", NULL);
    assert_non_null(u);
    snprintf(ghost, sizeof(ghost), "%.36s", u);
    free(u);
    char exp[32], past[32];
    rfc3339_at(30 * DAY, exp);
    rfc3339_at(-DAY, past);
    const char *org = T.top_default_org;
    struct {
        json_t *body;
        long status;
        const char *code;
    } cases[] = {
        /* no domains, empty domains, a bad domain */
        {json_pack("{s:s,s:s,s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "features", "limits", "branches", 5, "users", 10, "expires_at", exp),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "domains", "features", "limits", "branches", 5, "users", 10, "expires_at", exp),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "domains", "exa mple.com", "features", "limits", "branches", 5, "users", 10,
                   "expires_at", exp),
         400, "INVALID_FIELD"},
        /* bad, missing, and before-not_before expires_at */
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "domains", "example.com", "features", "limits", "branches", 5, "users", 10,
                   "expires_at", "next tuesday"),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "domains", "example.com", "features", "limits", "branches", 5, "users", 10,
                   "expires_at", "2030-01-01"),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i}}", "organization_id", org, "tier", "pro",
                   "domains", "example.com", "features", "limits", "branches", 5, "users", 10),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s,s:s}", "organization_id", org, "tier",
                   "pro", "domains", "example.com", "features", "limits", "branches", 5, "users",
                   10, "expires_at", past, "not_before", exp),
         400, "INVALID_FIELD"},
        /* limits, organisation id, tier */
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "pro",
                   "domains", "example.com", "features", "limits", "branches", 0, "users", 10,
                   "expires_at", exp),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "tier", "pro", "domains", "example.com",
                   "features", "limits", "branches", 5, "users", 10, "expires_at", exp),
         400, "INVALID_FIELD"},
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", org, "tier", "",
                   "domains", "example.com", "features", "limits", "branches", 5, "users", 10,
                   "expires_at", exp),
         400, "INVALID_FIELD"},
        /* an organisation the top does not hold */
        {json_pack("{s:s,s:s,s:[s],s:[],s:{s:i,s:i},s:s}", "organization_id", ghost, "tier", "pro",
                   "domains", "example.com", "features", "limits", "branches", 5, "users", 10,
                   "expires_at", exp),
         404, "ORGANIZATION_NOT_FOUND"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_non_null(cases[i].body);
        char *b = dump(cases[i].body);
        bad += !check_fail(&T.top, "POST", "/api/v1/licenses", b, cases[i].status, cases[i].code);
        free(b);
    }
    bad += !check_fail(&T.top, "POST", "/api/v1/licenses", "{\"organization_id\":", 400,
                       "INVALID_JSON");

    /* Reading and revoking what does not exist. */
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/licenses/%s", ghost);
    bad += !check_fail(&T.top, "GET", path, NULL, 404, "LICENSE_NOT_FOUND");
    bad +=
        !check_fail(&T.top, "GET", "/api/v1/licenses/not-a-uuid", NULL, 404, "LICENSE_NOT_FOUND");
    snprintf(path, sizeof(path), "/api/v1/licenses/%s/revoke", ghost);
    bad += !check_fail(&T.top, "POST", path, NULL, 404, "LICENSE_NOT_FOUND");

    /* Validation input. */
    const bg_th_proc *where[] = {&T.top, &T.m1};
    for (size_t w = 0; w < 2; w++) {
        char *vb = dump(json_pack("{s:s}", "license_key", T.main.key));
        bad += !check_fail(where[w], "POST", "/api/v1/licenses/validate", vb, 400, "INVALID_FIELD");
        free(vb);
        vb = dump(json_pack("{s:s}", "domain", "example.com"));
        bad += !check_fail(where[w], "POST", "/api/v1/licenses/validate", vb, 400, "INVALID_FIELD");
        free(vb);
        vb = dump(json_pack("{s:s,s:s}", "license_key", T.main.key, "domain", "not a host"));
        bad +=
            !check_fail(where[w], "POST", "/api/v1/licenses/validate", vb, 400, "INVALID_DOMAIN");
        free(vb);
        /* Without credentials. */
        vb = dump(json_pack("{s:s,s:s}", "license_key", T.main.key, "domain", "example.com"));
        bg_th_resp r;
        assert_int_equal(bg_th_post_json(where[w], "/api/v1/licenses/validate", NULL, vb, &r), 0);
        if (r.status != 401) {
            fprintf(stderr, "validate without a token: %ld %s\n", r.status, r.body);
            bad++;
        }
        bg_th_resp_free(&r);
        free(vb);
    }
    assert_int_equal(bad, 0);
}

/* ---- 6. revoked on the top, SUSPENDED on the master ---- */

static void test_revoked_suspended_on_master(void **state)
{
    (void)state;
    json_decref(issue(T.top_default_org, "pro", json_pack("[s]", "rev.example"), 5, NO_NBF,
                      30 * DAY, &T.revoked));
    assert_true(validates_as(&T.m1, T.revoked.key, "rev.example", "VALID", true, "top"));
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/licenses/%s/revoke", T.revoked.id);
    json_t *j = must(&T.top, "POST", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "id")), T.revoked.id);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "revoked");
    json_decref(j);
    long long t0 = bg_th_now_ms();
    snprintf(path, sizeof(path), "/api/v1/licenses/%s", T.revoked.id);
    j = must(&T.top, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "revoked");
    json_decref(j);

    /* The top knows at once ... */
    json_t *a = validate(&T.top, T.top.token, T.revoked.key, "rev.example");
    assert_true(answer_is(a, "SUSPENDED", false, "top"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "license"), "status")),
                        "revoked");
    json_decref(a);
    /* ... the master once its cached receipt (1 s) has expired. */
    a = wait_code(&T.m1, T.revoked.key, "rev.example", "SUSPENDED", 5000);
    assert_non_null(a);
    long long took = bg_th_now_ms() - t0;
    assert_true(answer_is(a, "SUSPENDED", false, "top"));
    json_decref(a);
    assert_true(took < 3000);
    /* And it stays so. */
    assert_true(validates_as(&T.m1, T.revoked.key, "rev.example", "SUSPENDED", false, NULL));

    /* A second revoke is refused and changes nothing. */
    snprintf(path, sizeof(path), "/api/v1/licenses/%s/revoke", T.revoked.id);
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(&T.top, "POST", path, T.top.token, NULL, &r), 0);
    if (r.status < 400 || r.status >= 500)
        fprintf(stderr, "second revoke: %ld %s\n", r.status, r.body);
    assert_true(r.status >= 400 && r.status < 500);
    bg_th_resp_free(&r);
}

/* ---- 7. a license travels with its organisation ---- */

/* Only the top decides a license's state: a master cannot issue, revoke
 * or, through a snapshot of an organisation it is home to, reactivate. */
static void test_master_cannot_change_licenses(void **state)
{
    (void)state;
    char path[200], origin[300], body[6000];
    snprintf(path, sizeof(path), "/api/v1/licenses/%s/revoke", T.revoked.id);
    assert_true(check_fail(&T.m1, "POST", path, NULL, 403, "NOT_TOP_BRANCH"));
    snprintf(origin, sizeof(origin), "X-Branch-Origin: %s", T.m1.url);
    snprintf(body, sizeof(body),
             "{\"organization\":{\"id\":\"00000000-0000-4000-8000-00000000abcd\",\"name\":\"m1 org\","
             "\"parent_id\":null,\"home_branch\":\"master-1\",\"version\":1,\"updated_at\":"
             "\"2026-01-01T00:00:00Z\"},\"users\":[],\"license\":\"%s\",\"license_status\":\"active\"}",
             T.revoked.key);
    const char *h[] = {origin, "Authorization: Bearer " KEY, "Content-Type: application/json", NULL};
    char url[300];
    snprintf(url, sizeof(url), "%s/api/v1/cross-branch/sync-organization", T.top.url);
    bg_th_resp r;
    assert_int_equal(bg_th_http("POST", url, NULL, body, strlen(body), h, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"license\":0"));
    bg_th_resp_free(&r);
    json_t *a = validate(&T.top, T.top.token, T.revoked.key, "rev.example");
    assert_true(answer_is(a, "SUSPENDED", false, "top"));
    json_decref(a);
}

static void test_license_travels_with_sync(void **state)
{
    (void)state;
    json_t *o = must(&T.top, "POST", "/api/v1/organizations", "{\"name\":\"licensed-org\"}", 201);
    snprintf(T.synced_org, sizeof(T.synced_org), "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    char path[300];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.synced_org);
    char *ub = dump(json_pack("{s:s,s:s,s:s,s:s}", "email", FED_EMAIL, "name", "Fed User",
                              "password", FED_PASSWORD, "role", "member"));
    json_decref(must(&T.top, "POST", path, ub, 201));
    free(ub);
    json_t *issued = issue(T.synced_org, "enterprise", json_pack("[s]", "sync.example"), 5, NO_NBF,
                           90 * DAY, &T.synced);

    /* Not on the master before the sync. */
    char lpath[200];
    snprintf(lpath, sizeof(lpath), "/api/v1/licenses/%s", T.synced.id);
    assert_true(check_fail(&T.m1, "GET", lpath, NULL, 404, "LICENSE_NOT_FOUND"));

    snprintf(path, sizeof(path), "/api/v1/organizations/%s/sync", T.synced_org);
    json_decref(must(&T.top, "POST", path, "{\"branches\":[\"master-1\"]}", 202));

    long long end = bg_th_now_ms() + 10000;
    long last = -1;
    json_t *got = NULL;
    while (got == NULL && bg_th_now_ms() < end) {
        bg_th_resp r;
        assert_int_equal(bg_th_get(&T.m1, lpath, T.m1.token, &r), 0);
        last = r.status;
        if (r.status == 200)
            got = bg_th_json(&r);
        bg_th_resp_free(&r);
        if (got == NULL)
            bg_th_nap_ms(50);
    }
    if (got == NULL)
        fprintf(stderr, "license %s never reached master-1 (last status %ld)\n", T.synced.id, last);
    assert_non_null(got);
    static const char *const same[] = {"id", "organization_id", "tier", "license_key",
                                       "not_before", "expires_at", "status"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        assert_string_equal(json_string_value(json_object_get(got, same[i])),
                            json_string_value(json_object_get(issued, same[i])));
    assert_true(json_equal(json_object_get(got, "domains"), json_object_get(issued, "domains")));
    assert_true(json_equal(json_object_get(got, "limits"), json_object_get(issued, "limits")));
    json_decref(got);
    json_decref(issued);

    /* The user came along (for the login tests). */
    end = bg_th_now_ms() + 10000;
    bool present = false;
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.synced_org);
    while (!present && bg_th_now_ms() < end) {
        bg_th_resp r;
        assert_int_equal(bg_th_get(&T.m1, path, T.m1.token, &r), 0);
        present = r.status == 200 && strcasestr(r.body, FED_EMAIL) != NULL;
        bg_th_resp_free(&r);
        if (!present)
            bg_th_nap_ms(50);
    }
    assert_true(present);
    assert_true(validates_as(&T.m1, T.synced.key, "sync.example", "VALID", true, "top"));
}

/* ---- 8. a revocation reaches the master's copy with the next sync ---- */

/* The outbox depth towards branch on p, or -1. */
static long long outbox_depth(const bg_th_proc *p, const char *branch)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/branches/%s/status", branch);
    bg_th_resp r;
    long long v = -1;
    if (bg_th_get(p, path, p->token, &r) == 0 && r.status == 200) {
        json_t *j = bg_th_json(&r);
        json_t *d = json_object_get(json_object_get(j, "outbox"), "depth");
        v = json_is_integer(d) ? (long long)json_integer_value(d) : -1;
        json_decref(j);
    }
    bg_th_resp_free(&r);
    return v;
}

static void test_revocation_reaches_synced_copy(void **state)
{
    (void)state;
    /* The organisation is shared with master-1, so the revocation is
     * queued to it like any other change of the organisation ... */
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/licenses/%s/revoke", T.synced.id);
    json_decref(must(&T.top, "POST", path, NULL, 200));
    long long end = bg_th_now_ms() + 10000, depth = -1;
    while (bg_th_now_ms() < end && (depth = outbox_depth(&T.top, "master-1")) != 0)
        bg_th_nap_ms(50);
    assert_int_equal(depth, 0);
    /* ... and, once delivered, the master's copy says so. */
    snprintf(path, sizeof(path), "/api/v1/licenses/%s", T.synced.id);
    bool seen = bg_th_wait_field(&T.m1, path, "status", "revoked", 2000) >= 0;
    if (!seen) {
        json_t *j = must(&T.m1, "GET", path, NULL, 200);
        fprintf(stderr, "master-1 still shows license %s as %s after the top revoked it and "
                        "delivered the organisation's sync\n",
                T.synced.id, json_string_value(json_object_get(j, "status")));
        json_decref(j);
    }
    assert_true(seen);
}

/* ---- 9. federated login ---- */

static void test_federated_login(void **state)
{
    (void)state;
    /* At the master: it asks the top, then signs its own token. */
    bg_th_resp r;
    login(&T.m1, FED_EMAIL, FED_PASSWORD, T.synced_org, NULL, NULL, &r);
    if (r.status != 200)
        fprintf(stderr, "login at master-1: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, FED_PASSWORD));
    assert_null(strstr(r.body, "$argon2id$"));
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    char m1_token[2048];
    snprintf(m1_token, sizeof(m1_token), "%s", json_string_value(json_object_get(j, "token")));
    json_t *user = json_object_get(j, "user");
    assert_string_equal(json_string_value(json_object_get(user, "email")),
                        "fed.user@licensed.example");
    assert_string_equal(json_string_value(json_object_get(user, "home_branch")), "top");
    assert_string_equal(json_string_value(json_object_get(user, "organization_id")), T.synced_org);
    assert_null(json_object_get(user, "password_hash"));
    json_decref(j);
    assert_true(strlen(m1_token) > 20);

    /* Valid where it was issued, nowhere else. */
    assert_int_equal(send_as(&T.m1, "GET", "/api/v1/templates", m1_token, NULL, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "master-1's own token at master-1: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(send_as(&T.top, "GET", "/api/v1/templates", m1_token, NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "INVALID_TOKEN"));
    bg_th_resp_free(&r);
    /* A user token may validate licenses. */
    json_t *a = validate(&T.m1, m1_token, T.main.key, "example.com");
    assert_true(answer_is(a, "VALID", true, "top"));
    json_decref(a);

    /* At the top, its home: the top's token, not the master's. */
    login(&T.top, FED_EMAIL, FED_PASSWORD, T.synced_org, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    j = bg_th_json(&r);
    bg_th_resp_free(&r);
    char top_token[2048];
    snprintf(top_token, sizeof(top_token), "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    assert_string_not_equal(top_token, m1_token);
    assert_int_equal(send_as(&T.top, "GET", "/api/v1/templates", top_token, NULL, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "the top's own token at the top: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(send_as(&T.m1, "GET", "/api/v1/templates", top_token, NULL, &r), 0);
    assert_true(bg_th_is_error(&r, 401, "INVALID_TOKEN"));
    bg_th_resp_free(&r);

    /* Wrong password and unknown user: the same answer, byte for byte. At
     * the master the wrong password is judged by the top, the unknown
     * user locally. */
    const bg_th_proc *where[] = {&T.m1, &T.top};
    for (size_t w = 0; w < 2; w++) {
        bg_th_resp wrong, unknown;
        login(where[w], FED_EMAIL, "not-the-password-000", T.synced_org, "same-login-id", NULL,
              &wrong);
        login(where[w], "nobody@licensed.example", "not-the-password-000", T.synced_org,
              "same-login-id", NULL, &unknown);
        assert_true(bg_th_is_error(&wrong, 401, "INVALID_CREDENTIALS"));
        assert_true(bg_th_is_error(&unknown, 401, "INVALID_CREDENTIALS"));
        if (wrong.len != unknown.len || memcmp(wrong.body, unknown.body, wrong.len) != 0)
            fprintf(stderr, "wrong password: %s\nunknown user:   %s\n", wrong.body, unknown.body);
        assert_int_equal(wrong.len, unknown.len);
        assert_memory_equal(wrong.body, unknown.body, wrong.len);
        bg_th_resp_free(&wrong);
        bg_th_resp_free(&unknown);
    }
}

/* ---- 10. login rate limits, per user and per address ---- */

static void create_limited_user(const char *email, const char *password)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.limited_org);
    char *ub = dump(json_pack("{s:s,s:s,s:s,s:s}", "email", email, "name", "Limited", "password",
                              password, "role", "member"));
    json_decref(must(&T.limited, "POST", path, ub, 201));
    free(ub);
}

static void test_login_rate_limit(void **state)
{
    (void)state;
    assert_int_equal(start_branch(&T.limited, "limited", "top_branch", NULL, limited_env), 0);
    const bg_th_proc *p = &T.limited;
    org_id_by_name(p, "default", T.limited_org);
    const char *org = T.limited_org;
    create_limited_user("ann@limited.example", "ann-password-0001");

    /* Three attempts a minute for ann, from 127.0.0.1. */
    bg_th_resp r;
    for (int i = 0; i < 3; i++) {
        login(p, "ann@limited.example", "wrong-password-0001", org, NULL, NULL, &r);
        assert_true(bg_th_is_error(&r, 401, "INVALID_CREDENTIALS"));
        bg_th_resp_free(&r);
    }
    /* Per user: the fourth, from another address and with the right
     * password, is refused. */
    login(p, "ann@limited.example", "ann-password-0001", org, NULL, "127.0.0.2", &r);
    assert_true(bg_th_is_error(&r, 429, "RATE_LIMITED"));
    char retry[16];
    assert_true(bg_th_header(&r, "retry-after", retry, sizeof(retry)));
    assert_true(atoi(retry) >= 1 && atoi(retry) <= 60);
    bg_th_resp_free(&r);
    /* Per address: 127.0.0.1 has used its three, whoever it names. */
    login(p, "bob@limited.example", "bob-password-0001", org, NULL, NULL, &r);
    assert_true(bg_th_is_error(&r, 429, "RATE_LIMITED"));
    assert_true(bg_th_header(&r, "retry-after", retry, sizeof(retry)));
    assert_true(atoi(retry) >= 1 && atoi(retry) <= 60);
    bg_th_resp_free(&r);
    /* Another user from another address is not limited. */
    login(p, "bob@limited.example", "bob-password-0001", org, NULL, "127.0.0.3", &r);
    assert_true(bg_th_is_error(&r, 401, "INVALID_CREDENTIALS"));
    bg_th_resp_free(&r);
}

/* The per-user limit holds however the request names the user: the
 * address's case, and the organisation by id or left to the default. */
static void test_login_rate_limit_per_user_not_per_spelling(void **state)
{
    (void)state;
    const bg_th_proc *p = &T.limited;
    assert_true(bg_th_alive(p));
    create_limited_user("cat@limited.example", "cat-password-0001");
    /* A fresh source address for every attempt: only the per-user
     * limit is in play. */
    bg_th_resp r;
    const char *src[] = {"127.0.0.4", "127.0.0.5", "127.0.0.6"};
    for (int i = 0; i < 3; i++) {
        login(p, "cat@limited.example", "wrong-password-0001", T.limited_org, NULL, src[i], &r);
        assert_true(bg_th_is_error(&r, 401, "INVALID_CREDENTIALS"));
        bg_th_resp_free(&r);
    }
    login(p, "CAT@Limited.Example", "wrong-password-0001", T.limited_org, NULL, "127.0.0.7", &r);
    assert_true(bg_th_is_error(&r, 429, "RATE_LIMITED"));
    bg_th_resp_free(&r);
    /* The same user of the same (default) organisation, named by leaving
     * organization_id out. */
    login(p, "cat@limited.example", "wrong-password-0001", NULL, NULL, "127.0.0.8", &r);
    bool limited = bg_th_is_error(&r, 429, "RATE_LIMITED");
    if (!limited)
        fprintf(stderr, "a fourth attempt for cat@limited.example within the minute, without "
                        "organization_id, was not rate limited\n");
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_stop(&T.limited, SIGTERM, 10000), 0);
    assert_true(limited);
}

/* ---- 11. the top counts its answers ---- */

static void test_metrics(void **state)
{
    (void)state;
    static const char *const codes[] = {"VALID", "SUSPENDED", "TOO_MANY_BRANCHES", "GRACE",
                                        "EXPIRED", "NOT_YET_VALID", "DOMAIN_MISMATCH",
                                        "INVALID_SIGNATURE"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        char sample[128];
        snprintf(sample, sizeof(sample), "branchgate_license_validations_total{code=\"%s\"}",
                 codes[i]);
        long long v = metric(&T.top, sample);
        if (v <= 0)
            fprintf(stderr, "top: %s = %lld\n", sample, v);
        assert_true(v > 0);
    }
    /* Nothing made the top unavailable yet. */
    assert_int_equal(metric(&T.top, "branchgate_license_validations_total{code=\"UNAVAILABLE\"}"),
                     0);
}

/* ---- 12. the top is killed, then comes back ---- */

static void test_top_down_and_back(void **state)
{
    (void)state;
    char top_listen[64];
    listen_of(&T.top, top_listen, sizeof(top_listen));
    assert_int_equal(bg_th_stop(&T.top, SIGKILL, 5000), 128 + SIGKILL);

    /* Seen before: answered from the top's receipt once the cache expires. */
    json_t *a = wait_code(&T.m1, T.main.key, "example.com", "VALID_CACHED", 5000);
    assert_non_null(a);
    assert_true(answer_is(a, "VALID_CACHED", true, NULL));
    assert_true(json_is_string(json_object_get(a, "receipt")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "license"), "id")),
                        T.main.id);
    json_decref(a);
    int bad = 0;
    bad += !validates_as(&T.m1, T.main.key, "a.example.org", "VALID_CACHED", true, NULL);
    /* Never seen: no receipt, no answer. */
    a = validate(&T.m1, T.m1.token, T.main.key, "never.example.org");
    bad += !answer_is(a, "UNAVAILABLE", false, NULL);
    if (!json_is_null(json_object_get(a, "receipt"))) {
        fprintf(stderr, "UNAVAILABLE with a receipt\n");
        bad++;
    }
    json_decref(a);
    /* A revoked license stays refused, a tampered key too. */
    bad += !validates_as(&T.m1, T.revoked.key, "rev.example", "SUSPENDED", false, NULL);
    bad += !validates_as(&T.m1, T.tampered, "example.com", "INVALID_SIGNATURE", false, "master-1");
    assert_int_equal(bad, 0);

    /* A top-homed user cannot log in at the master now. */
    bg_th_resp r;
    login(&T.m1, FED_EMAIL, FED_PASSWORD, T.synced_org, NULL, NULL, &r);
    assert_true(bg_th_is_error(&r, 503, "HOME_BRANCH_UNAVAILABLE"));
    char retry[16];
    assert_true(bg_th_header(&r, "retry-after", retry, sizeof(retry)));
    bg_th_resp_free(&r);

    /* Back on the same address, with the same data: the top answers again. */
    assert_int_equal(start_branch(&T.top, "top", "top_branch", top_listen, env), 0);
    assert_true(bg_th_wait_field(&T.m1, "/api/v1/branches/top/status", "state", "up", 10000) >= 0);
    a = wait_code(&T.m1, T.main.key, "never.example.org", "VALID", 5000);
    assert_non_null(a);
    assert_true(answer_is(a, "VALID", true, "top"));
    json_decref(a);
    login(&T.m1, FED_EMAIL, FED_PASSWORD, T.synced_org, NULL, NULL, &r);
    if (r.status != 200)
        fprintf(stderr, "login after the restart: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
}

/* ---- last: both processes shut down cleanly, no sanitizer report ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    bg_th_proc *all[] = {&T.top, &T.m1};
    int bad = 0;
    for (size_t i = 0; i < 2; i++) {
        int rc = bg_th_stop(all[i], SIGTERM, 15000);
        if (rc != 0) {
            fprintf(stderr, "%s exited with %d\n", all[i]->log, rc);
            bad++;
        }
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
    /* The rate-limited branch of test 10 as well. */
    char path[320];
    snprintf(path, sizeof(path), "%s/limited.log", T.root);
    char *log = bg_th_read_file(path, NULL);
    if (log != NULL && (strstr(log, "ERROR: AddressSanitizer") ||
                        strstr(log, "ERROR: LeakSanitizer") || strstr(log, "runtime error:"))) {
        fprintf(stderr, "%s has a sanitizer report\n", path);
        bad++;
    }
    free(log);
    assert_int_equal(bad, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_and_validate_on_master),
        cmocka_unit_test(test_tampered_key),
        cmocka_unit_test(test_time_codes),
        cmocka_unit_test(test_too_many_branches),
        cmocka_unit_test(test_issue_errors),
        cmocka_unit_test(test_revoked_suspended_on_master),
        cmocka_unit_test(test_master_cannot_change_licenses),
        cmocka_unit_test(test_license_travels_with_sync),
        cmocka_unit_test(test_revocation_reaches_synced_copy),
        cmocka_unit_test(test_federated_login),
        cmocka_unit_test(test_login_rate_limit),
        cmocka_unit_test(test_login_rate_limit_per_user_not_per_spelling),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_top_down_and_back),
        cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
