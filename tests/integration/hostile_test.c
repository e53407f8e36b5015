/* Hostile input, route by route, against a real branch (issue: proof under
 * load, faults and hostile input).
 *
 * Every route of gateway/routes.c that reads a body, a path parameter, a
 * query parameter or a header is sent input built to break it. Each refused
 * request must get a 4xx whose body is the JSON error
 * {"error":{"code","message","request_id"}} with Content-Type
 * application/json (HEAD: status only), never a 5xx nor a crash, and must
 * leave the branch's state as it was: after every case the test reads,
 * through the API, the branches, organisations, the fixture organisation and
 * its users, tokens, the fixture license, assemblies, jobs, the whole audit
 * log (a refused call is never audited), the outbox, the organisation's
 * templates, and lists the files under the data dir, and compares all of it
 * with the previous reading. Input that a route may legitimately accept (SQL
 * metacharacters in free text, a tus file name with "../") is accepted only
 * when it is stored verbatim and read back byte-identical, or stored
 * sanitised under DATA/uploads/.
 *
 * Families: bodies (nesting 10,000 deep, invalid UTF-8, escaped lone
 * surrogates, NUL, duplicate keys, wrong types in every field, empty / null
 * / trailing garbage, non-JSON Content-Type, over the cap, chunked over the
 * cap, shorter than declared), SQL metacharacters in every free-text field,
 * path traversal in every path parameter (also around a real result file),
 * query parameters, numbers, tus and SSE headers, peer headers, oversized
 * headers, unknown routes and wrong methods.
 *
 * Findings are collected per family and printed together, then the family
 * fails. A few refusals happen inside h2o before branchgate sees the
 * request and are plain text; test_known_limits prints them as KNOWN,
 * checks what can be promised (a 4xx, the branch alive, nothing changed),
 * and docs/testing.md describes them. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define BODY_CAP 65536 /* BRANCHGATE_HTTP_MAX_BODY_BYTES below */
#define PEER_URL "http://127.0.0.1:9"
#define PEER_KEY "hostile-peer-key-0123456789"
#define OWNER_EMAIL "owner@hostile.example"
#define OWNER_PW "owner-pw-0123456789"
#define UUID_NONE "00000000-0000-4000-8000-00000000dead"

static struct {
    char root[256];
    bg_th_proc p;
    int port;
    char org[64];      /* the fixture organisation */
    char owner[64];    /* its owner's user id */
    char license[64];  /* a license of it */
    char asm_wait[80]; /* an assembly waiting for uploads (probe template) */
    char tus[512];     /* its tus endpoint */
    char upload[700];  /* an upload of it, created, no bytes yet */
    char asm_done[80]; /* a completed audio-preview assembly */
    char result[600];  /* path of one of its result files */
    char *snap;        /* the last snapshot */
    int findings, cases;
} T;

/* ------------------------------------------------------------------------ */
/* Snapshot of the state, through the API and the data dir's file list.     */

/* Keys whose values may change without any request (peer state, outbox
 * retry bookkeeping); none of them is written by a refused request. */
static const char *const volatile_keys[] = {"last_ping_at", "next_attempt_at", "last_error",
                                            "last_status", NULL};

static void drop_volatile(json_t *v)
{
    if (json_is_object(v)) {
        for (const char *const *k = volatile_keys; *k; k++)
            json_object_del(v, *k);
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) drop_volatile(child);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) drop_volatile(child);
    }
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sb_add(b, tmp, n < 0 ? 0 : (size_t)n >= sizeof(tmp) ? sizeof(tmp) - 1 : (size_t)n);
}

static sbuf *walk_out; /* nftw has no user pointer */
static size_t walk_skip;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    const char *rel = path + walk_skip, *base = path + f->base;
    /* The database files change size on their own (WAL checkpoints), the
     * branch's log with every line it writes. */
    bool sized = type != FTW_D && strncmp(base, "branchgate.db", 13) != 0 &&
                 (strlen(base) < 4 || strcmp(base + strlen(base) - 4, ".log") != 0);
    sb_printf(walk_out, "%s %c %lld\n", rel, type == FTW_D ? 'd' : 'f',
              sized ? (long long)st->st_size : 0LL);
    return 0;
}

/* Every path under the test root (the data dir and anything a request
 * might have created beside it), with sizes. */
static void files_of(sbuf *b)
{
    walk_out = b;
    walk_skip = strlen(T.root);
    nftw(T.root, walk_one, 16, FTW_PHYS);
}

static char *snapshot(void)
{
    char paths[12][200];
    snprintf(paths[0], 200, "/api/v1/branches?limit=500");
    snprintf(paths[1], 200, "/api/v1/organizations?limit=500");
    snprintf(paths[2], 200, "/api/v1/organizations/%s", T.org);
    snprintf(paths[3], 200, "/api/v1/organizations/%s/users?limit=500", T.org);
    snprintf(paths[4], 200, "/api/v1/tokens");
    snprintf(paths[5], 200, "/api/v1/licenses/%s", T.license);
    snprintf(paths[6], 200, "/api/v1/assemblies?limit=500");
    snprintf(paths[7], 200, "/api/v1/jobs?limit=500");
    snprintf(paths[8], 200, "/api/v1/audit?limit=500");
    snprintf(paths[9], 200, "/api/v1/outbox?state=dead&limit=500");
    snprintf(paths[10], 200, "/api/v1/outbox?state=pending&limit=500");
    snprintf(paths[11], 200, "/api/v1/templates?organization_id=%s", T.org);
    sbuf b = {0};
    for (size_t i = 0; i < 12; i++) {
        bg_th_resp r;
        bg_th_get(&T.p, paths[i], T.p.token, &r);
        json_t *j = bg_th_json(&r);
        drop_volatile(j);
        char *text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        sb_printf(&b, "%s %ld\n", paths[i], r.status);
        sb_add(&b, text ? text : "(not JSON)", strlen(text ? text : "(not JSON)"));
        sb_add(&b, "\n", 1);
        free(text);
        json_decref(j);
        bg_th_resp_free(&r);
    }
    files_of(&b);
    return b.p;
}

/* Takes a new baseline after a change the test made on purpose. */
static void rebase(void)
{
    free(T.snap);
    T.snap = snapshot();
}

/* Prints where two snapshots start to differ. */
static void print_diff(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    size_t from = i > 120 ? i - 120 : 0;
    fprintf(stderr, "    before: ...%.300s\n    after:  ...%.300s\n", a + from, b + from);
}

/* ------------------------------------------------------------------------ */
/* One case.                                                                */

typedef struct req {
    const char *method;
    const char *path;  /* with query */
    const char *token; /* NULL: no Authorization */
    const char *const *hdrs;
    const char *body; /* NULL: no body */
    size_t len;
} req;

static void finding(const char *what, const req *q, const bg_th_resp *r)
{
    T.findings++;
    fprintf(stderr, "FINDING: %s: %s %.150s -> %ld %.300s\n", what, q->method, q->path,
            r ? r->status : 0L, r && r->body ? r->body : "");
}

/* True when r is a 4xx carrying the JSON error shape (HEAD: status only). */
static bool json_4xx(const bg_th_resp *r, bool head)
{
    if (r->status < 400 || r->status > 499)
        return false;
    if (head)
        return true;
    char ct[128], rid[128];
    if (!bg_th_header(r, "content-type", ct, sizeof(ct)) ||
        strstr(ct, "application/json") == NULL ||
        !bg_th_header(r, "x-request-id", rid, sizeof(rid)))
        return false;
    json_t *j = bg_th_json(r);
    json_t *e = json_object_get(j, "error");
    bool ok = json_object_size(j) == 1 && json_is_string(json_object_get(e, "code")) &&
              json_string_length(json_object_get(e, "code")) > 0 &&
              json_is_string(json_object_get(e, "message")) &&
              json_is_string(json_object_get(e, "request_id")) &&
              strcmp(json_string_value(json_object_get(e, "request_id")), rid) == 0;
    json_decref(j);
    return ok;
}

/* Checks that the branch lives and nothing changed since the last case;
 * takes the new snapshot as the baseline either way. */
static void check_unchanged(const req *q)
{
    if (!bg_th_alive(&T.p)) {
        fprintf(stderr, "FINDING: the branch died on %s %.150s\n", q->method, q->path);
        T.findings++;
        fail();
    }
    char *now = snapshot();
    if (strcmp(now, T.snap) != 0) {
        T.findings++;
        fprintf(stderr, "FINDING: the state changed after %s %.150s\n", q->method, q->path);
        print_diff(T.snap, now);
    }
    free(T.snap);
    T.snap = now;
}

static int send_req(const req *q, bg_th_resp *r)
{
    char url[12000];
    snprintf(url, sizeof(url), "%s%s", T.p.url, q->path);
    return bg_th_http(q->method, url, q->token, q->body, q->len, q->hdrs, false, r);
}

/* The request must be refused with a JSON 4xx and change nothing. */
static void refused(const req *q)
{
    T.cases++;
    bg_th_resp r;
    if (send_req(q, &r) != 0)
        finding("no answer", q, NULL);
    else if (!json_4xx(&r, strcmp(q->method, "HEAD") == 0))
        finding("not a JSON 4xx", q, &r);
    bg_th_resp_free(&r);
    check_unchanged(q);
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};
static const char *const peer_hdrs[] = {"Content-Type: application/json",
                                        "X-Branch-Origin: " PEER_URL, NULL};

/* Shorthand: admin token, JSON body (or none). */
static void refused_admin(const char *method, const char *path, const char *body)
{
    req q = {method, path, T.p.token, body ? json_ct : NULL, body, body ? strlen(body) : 0};
    refused(&q);
}

/* ------------------------------------------------------------------------ */
/* Raw HTTP/1.1 over a socket, for what libcurl will not send.              */

typedef struct raw_resp {
    int status; /* 0: no status line */
    char text[2048];
    size_t len;
} raw_resp;

/* Sends len bytes (stops early if the server closes), half-closes when
 * asked, then reads until the server closes or answers completely, or
 * timeout_ms passes. */
static void raw_exchange(const void *data, size_t len, bool half_close, int timeout_ms,
                         raw_resp *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)T.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server answered and closed: read what it said */
        p += w;
        left -= (size_t)w;
    }
    if (half_close)
        shutdown(fd, SHUT_WR);
    long long end = bg_th_now_ms() + timeout_ms;
    while (bg_th_now_ms() < end && out->len < sizeof(out->text) - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, out->text + out->len, sizeof(out->text) - 1 - out->len, 0);
        if (n <= 0)
            break;
        out->len += (size_t)n;
        out->text[out->len] = '\0';
        const char *hend = strstr(out->text, "\r\n\r\n");
        const char *cl = strcasestr(out->text, "\r\ncontent-length:");
        if (hend != NULL && cl != NULL && cl < hend &&
            out->len >= (size_t)(hend + 4 - out->text) + strtoul(cl + 17, NULL, 10))
            break;
    }
    close(fd);
    if (strncmp(out->text, "HTTP/1.1 ", 9) == 0)
        out->status = atoi(out->text + 9);
}

static bool raw_is_json(const raw_resp *r)
{
    const char *hend = strstr(r->text, "\r\n\r\n");
    if (hend == NULL || strcasestr(r->text, "\r\ncontent-type: application/json") == NULL)
        return false;
    json_t *j = json_loads(hend + 4, 0, NULL);
    bool ok = json_is_string(json_object_get(json_object_get(j, "error"), "code"));
    json_decref(j);
    return ok;
}

/* A request line plus headers, with the admin token. */
static char *raw_head(const char *method, const char *path, const char *extra)
{
    char *s = NULL;
    if (asprintf(&s, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n%s\r\n",
                 method, path, T.p.token, extra) < 0)
        abort();
    return s;
}

/* A known limit of h2o: the answer comes from h2o itself, as plain text.
 * What is promised: a 4xx (or no answer at all when asked), the branch
 * alive, nothing changed. */
static void known(const char *what, const raw_resp *r, bool no_answer_ok)
{
    T.cases++;
    req q = {"RAW", what, NULL, NULL, NULL, 0};
    bool ok = (r->status >= 400 && r->status <= 499) || (no_answer_ok && r->status == 0);
    fprintf(stderr, "KNOWN: %s -> %d%s\n", what, r->status, raw_is_json(r) ? " (JSON)" : "");
    if (!ok) {
        T.findings++;
        fprintf(stderr, "FINDING: %s -> %d: %.200s\n", what, r->status, r->text);
    }
    check_unchanged(&q);
}

/* ------------------------------------------------------------------------ */
/* The JSON routes and a body each would accept or nearly.                 */

typedef struct jroute {
    const char *method;
    const char *path; /* "%s" is the fixture organisation */
    const char *body; /* likewise */
    bool peer;        /* peer credentials instead of the admin token */
} jroute;

#define ORG_SNAPSHOT                                                                               \
    "{\"organization\":{\"id\":\"6b1f7c52-1111-4aaa-8bbb-0123456789ab\",\"name\":\"o\","           \
    "\"home_branch\":\"peer\",\"version\":1},\"users\":[{\"id\":"                                  \
    "\"6b1f7c52-2222-4aaa-8bbb-0123456789ab\",\"email\":\"w@hostile.example\",\"name\":\"w\","     \
    "\"role\":\"member\",\"home_branch\":\"peer\",\"version\":1,\"deleted\":false}]}"

static const jroute jroutes[] = {
    {"POST", "/api/v1/tokens", "{\"label\":\"hostile\"}", false},
    {"POST", "/api/v1/branches",
     "{\"branch_name\":\"np\",\"branch_url\":\"http://127.0.0.1:19\",\"branch_type\":"
     "\"master_branch\",\"api_key\":\"0123456789abcdefQQQ\",\"organization_id\":\"%s\","
     "\"spki_pin\":\"sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}",
     false},
    {"POST", "/api/v1/cross-branch/register-branch",
     "{\"branch_name\":\"np\",\"branch_url\":\"http://127.0.0.1:19\",\"branch_type\":"
     "\"master_branch\",\"api_key\":\"0123456789abcdefQQQ\",\"organization_id\":\"%s\"}",
     false},
    {"PATCH", "/api/v1/branches/peer",
     "{\"branch_url\":\"" PEER_URL "\",\"branch_type\":\"master_branch\",\"api_key\":\"" PEER_KEY
     "\",\"is_active\":true}",
     false},
    {"POST", "/api/v1/organizations",
     "{\"name\":\"n\",\"parent_id\":\"%s\",\"home_branch\":\"main\"}", false},
    {"PATCH", "/api/v1/organizations/%s", "{\"name\":\"hostile-target\",\"parent_id\":\"%s\"}",
     false},
    {"POST", "/api/v1/organizations/%s/users",
     "{\"email\":\"v@hostile.example\",\"name\":\"v\",\"password\":\"pw-0123456789\","
     "\"role\":\"member\",\"home_branch\":\"main\"}",
     false},
    {"POST", "/api/v1/organizations/%s/sync", "{\"branches\":[\"peer\"]}", false},
    {"POST", "/api/v1/organizations/%s/share",
     "{\"branches\":[\"peer\"],\"resource_type\":\"template\",\"resource_id\":\"tpl1\","
     "\"permissions\":[\"read\"],\"expires_at\":\"2030-01-01T00:00:00Z\",\"payload\":{}}",
     false},
    {"POST", "/api/v1/licenses",
     "{\"organization_id\":\"%s\",\"tier\":\"pro\",\"domains\":[\"a.example\"],\"features\":"
     "[\"x\"],\"limits\":{\"branches\":1,\"users\":1},\"expires_at\":\"2030-01-01T00:00:00Z\"}",
     false},
    {"POST", "/api/v1/licenses/validate",
     "{\"license_key\":\"BG1.abc.def\",\"domain\":\"a.example\"}", false},
    {"POST", "/api/v1/auth/login",
     "{\"email\":\"" OWNER_EMAIL "\",\"password\":\"wrong-password\",\"organization_id\":\"%s\"}",
     false},
    {"POST", "/api/v1/assemblies",
     "{\"template_id\":\"probe\",\"files\":[{\"name\":\"q.wav\",\"size\":4,\"md5\":"
     "\"0123456789abcdef0123456789abcdef\"}],\"notify_url\":\"http://127.0.0.1:9/hook\"}",
     false},
    {"POST", "/api/v1/cross-branch/validate-license",
     "{\"license_key\":\"BG1.abc.def\",\"domain\":\"a.example\"}", true},
    {"POST", "/api/v1/cross-branch/user-authentication",
     "{\"email\":\"" OWNER_EMAIL "\",\"password\":\"wrong-password\",\"organization_id\":\"%s\"}",
     true},
    {"POST", "/api/v1/cross-branch/sync-organization", ORG_SNAPSHOT, true},
    {"POST", "/api/v1/cross-branch/share-resource",
     "{\"resource_type\":\"template\",\"resource_id\":\"tpl1\",\"organization_id\":\"%s\","
     "\"permissions\":[\"read\"],\"expires_at\":\"2030-01-01T00:00:00Z\",\"payload\":{}}",
     true},
};
#define NJROUTES (sizeof(jroutes) / sizeof(jroutes[0]))

/* Replaces each "%s" of a route's path or body by the fixture organisation. */
static void fill(const char *tmpl, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *t = tmpl; *t && o + 1 < cap; t++) {
        if (t[0] == '%' && t[1] == 's') {
            o += (size_t)snprintf(out + o, cap - o, "%s", T.org);
            t++;
        } else {
            out[o++] = *t;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

static void jroute_req(const jroute *jr, const char *path, const char *body, size_t len,
                       const char *const *hdrs, req *q)
{
    q->method = jr->method;
    q->path = path;
    q->token = jr->peer ? PEER_KEY : T.p.token;
    q->hdrs = hdrs ? hdrs : jr->peer ? peer_hdrs : json_ct;
    q->body = body;
    q->len = len;
}

/* ------------------------------------------------------------------------ */
/* Bodies every JSON route refuses.                                         */

static char *repeat(const char *unit, size_t n, const char *tail_unit)
{
    size_t u = strlen(unit), t = strlen(tail_unit);
    char *s = malloc(n * (u + t) + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    for (size_t i = 0; i < n; i++)
        memcpy(s + n * u + i * t, tail_unit, t);
    s[n * (u + t)] = '\0';
    return s;
}

static void test_bodies(void **state)
{
    (void)state;
    int before = T.findings;
    char *deep_arr = repeat("[", 10000, "]");
    char *deep_obj = repeat("{\"a\":", 10000, "}");
    char *deep33 = repeat("{\"a\":", 33, "}"); /* one past the product's 32 */
    for (size_t i = 0; i < NJROUTES; i++) {
        char path[300], body[2000], b2[4100];
        fill(jroutes[i].path, path, sizeof(path));
        fill(jroutes[i].body, body, sizeof(body));
        size_t blen = strlen(body);
        const char *bodies[] = {deep_arr,     deep_obj,       deep33,       "null",       "",
                                "[]",         "\"a string\"", "12",         "true",       "{",
                                "{\"a\":1,}", "{'a':1}",      "{\"a\":01}", "{\"a\":NaN}"};
        for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
            req q;
            jroute_req(&jroutes[i], path, bodies[k], strlen(bodies[k]), NULL, &q);
            refused(&q);
        }
        /* No body at all. */
        req q;
        jroute_req(&jroutes[i], path, NULL, 0, NULL, &q);
        refused(&q);
        /* The accepted body with trailing garbage, cut short, after a BOM,
         * followed by a NUL byte, or followed by a second object. */
        snprintf(b2, sizeof(b2), "%s x", body);
        jroute_req(&jroutes[i], path, b2, strlen(b2), NULL, &q);
        refused(&q);
        jroute_req(&jroutes[i], path, body, blen - 1, NULL, &q);
        refused(&q);
        snprintf(b2, sizeof(b2), "\xef\xbb\xbf%s", body);
        jroute_req(&jroutes[i], path, b2, strlen(b2), NULL, &q);
        refused(&q);
        memcpy(b2, body, blen + 1);
        jroute_req(&jroutes[i], path, b2, blen + 1, NULL, &q);
        refused(&q);
        snprintf(b2, sizeof(b2), "%s%s", body, body);
        jroute_req(&jroutes[i], path, b2, strlen(b2), NULL, &q);
        refused(&q);
        /* A Content-Type that is not JSON. */
        const char *cts[] = {"Content-Type: text/plain",
                             "Content-Type: application/x-www-form-urlencoded",
                             "Content-Type: multipart/form-data; boundary=x",
                             "Content-Type: text/json", "Content-Type: application/xml"};
        for (size_t k = 0; k < sizeof(cts) / sizeof(cts[0]); k++) {
            const char *h[] = {cts[k], jroutes[i].peer ? "X-Branch-Origin: " PEER_URL : NULL, NULL};
            jroute_req(&jroutes[i], path, body, blen, h, &q);
            refused(&q);
        }
    }
    free(deep_arr);
    free(deep_obj);
    free(deep33);
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Field by field: every leaf of every route's body, replaced.              */

/* A placeholder swapped for raw bytes after dumping. */
#define MARK "@@HOSTILE@@"

typedef struct leaf_ctx {
    const jroute *jr;
    const char *path;
    json_t *root;
} leaf_ctx;

/* Dumps root, replaces MARK (with its quotes kept) by raw, sends it. */
static void send_marked(const leaf_ctx *c, const char *raw)
{
    char *text = json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *at = strstr(text, MARK);
    assert_non_null(at);
    size_t pre = (size_t)(at - text), rl = strlen(raw), post = strlen(at + strlen(MARK));
    char *body = malloc(pre + rl + post + 1);
    memcpy(body, text, pre);
    memcpy(body + pre, raw, rl);
    memcpy(body + pre + rl, at + strlen(MARK), post + 1);
    req q;
    jroute_req(c->jr, c->path, body, pre + rl + post, NULL, &q);
    refused(&q);
    free(body);
    free(text);
}

static void send_json(const leaf_ctx *c)
{
    char *text = json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    req q;
    jroute_req(c->jr, c->path, text, strlen(text), NULL, &q);
    refused(&q);
    free(text);
}

/* Inside a string: invalid UTF-8 as raw bytes (overlong '/', overlong '.',
 * an encoded surrogate, past U+10FFFF, a cut sequence, 0xff 0xfe), lone
 * surrogates and NUL as escapes. The first leaf of a route gets them all,
 * the others the first two. */
static const char *const bad_strings[] = {
    "a\\u0000b", "\xff\xfe", "\xc0\xaf",  "\xe0\x80\xae", "\xed\xa0\x80",   "\xf4\x90\x80\x80",
    "x\xe2\x82", "\\ud800",  "x\\udc00y", "\\u0000",      "\\ud800\\u0041",
};

/* The i-th value of another type than the leaf's, or NULL after the last. */
static json_t *other_types(const json_t *v, size_t i)
{
    /* s: string, i: integer, r: real, t: true, a: array, o: object */
    const char *kinds = json_is_string(v)    ? "irtao"
                        : json_is_integer(v) ? "srtao"
                        : json_is_boolean(v) ? "sia"
                        : json_is_array(v)   ? "soi"
                        : json_is_object(v)  ? "sai"
                                             : "";
    if (i >= strlen(kinds))
        return NULL;
    switch (kinds[i]) {
    case 's': return json_string(json_is_boolean(v) ? "true" : json_is_integer(v) ? "12" : "x");
    case 'i': return json_integer(json_is_boolean(v) ? 1 : 12);
    case 'r': return json_real(1.5);
    case 't': return json_true();
    case 'a': return json_array();
    default: return json_object();
    }
}

/* Sets parent[key] (an object) or parent[index] (an array) to v (stolen). */
static void set_in(json_t *parent, const char *key, size_t index, json_t *v)
{
    if (key != NULL)
        json_object_set_new(parent, key, v);
    else
        json_array_set_new(parent, index, v);
}

/* Replaces the value orig under parent in turn by each hostile value,
 * then puts it back. */
static void mutate_leaf(const leaf_ctx *c, json_t *parent, const char *key, size_t index,
                        json_t *orig, size_t *nleaf)
{
    json_incref(orig);
    for (size_t i = 0;; i++) {
        json_t *v = other_types(orig, i);
        if (v == NULL)
            break;
        set_in(parent, key, index, v);
        send_json(c);
    }
    if (json_is_string(orig)) {
        size_t n = *nleaf == 0 ? sizeof(bad_strings) / sizeof(bad_strings[0]) : 2;
        set_in(parent, key, index, json_string(MARK));
        for (size_t i = 0; i < n; i++)
            send_marked(c, bad_strings[i]);
        (*nleaf)++;
    }
    set_in(parent, key, index, orig);
}

/* Walks every value under v except the opaque "payload" and null leaves. */
static void walk(const leaf_ctx *c, json_t *v, size_t *nleaf)
{
    if (json_is_object(v)) {
        const char *key;
        void *tmp;
        json_t *child;
        json_object_foreach_safe(v, tmp, key, child)
        {
            if (strcmp(key, "payload") == 0 || json_is_null(child))
                continue;
            walk(c, child, nleaf);
            mutate_leaf(c, v, key, 0, child, nleaf);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *child = json_array_get(v, i);
            walk(c, child, nleaf);
            mutate_leaf(c, v, NULL, i, child, nleaf);
        }
    }
}

static void test_fields(void **state)
{
    (void)state;
    int before = T.findings;
    for (size_t i = 0; i < NJROUTES; i++) {
        char path[300], body[2000];
        fill(jroutes[i].path, path, sizeof(path));
        fill(jroutes[i].body, body, sizeof(body));
        json_error_t je;
        json_t *root = json_loads(body, JSON_PRESERVE_ORDER, &je);
        assert_non_null(root);
        leaf_ctx c = {&jroutes[i], path, root};
        size_t nleaf = 0;
        walk(&c, root, &nleaf);
        /* Duplicate keys: the first key again, at the end, with another
         * value of the same type, and a duplicate inside a nested object. */
        char dup[2200];
        const char *k1 = json_object_iter_key(json_object_iter(root));
        json_t *v1 = json_object_get(root, k1);
        char *v1s = json_dumps(v1, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(dup, sizeof(dup), "%.*s,\"%s\":%s}", (int)(strlen(body) - 1), body, k1, v1s);
        free(v1s);
        req q;
        jroute_req(&jroutes[i], path, dup, strlen(dup), NULL, &q);
        refused(&q);
        snprintf(dup, sizeof(dup), "{\"%s\":\"a\",\"%s\":\"b\"%s%.*s", k1, k1,
                 strlen(body) > 2 ? "," : "", (int)(strlen(body) - 1), body + 1);
        jroute_req(&jroutes[i], path, dup, strlen(dup), NULL, &q);
        refused(&q);
        json_decref(root);
    }
    /* Duplicates deeper down. */
    char b[600];
    snprintf(b, sizeof(b),
             "{\"organization_id\":\"%s\",\"tier\":\"pro\",\"domains\":[\"a.example\"],\"limits\":"
             "{\"branches\":1,\"users\":1,\"branches\":2},\"expires_at\":\"2030-01-01T00:00:00Z\"}",
             T.org);
    refused_admin("POST", "/api/v1/licenses", b);
    refused_admin("POST", "/api/v1/assemblies",
                  "{\"template_id\":\"probe\",\"files\":[{\"name\":\"a.wav\",\"name\":\"b.wav\","
                  "\"size\":4}]}");
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Numbers where an integer is expected, in bodies.                        */

static void test_numbers(void **state)
{
    (void)state;
    int before = T.findings;
    const char *nums[] = {"-1",
                          "0",
                          "9223372036854775808",
                          "-9223372036854775809",
                          "18446744073709551616",
                          "1e309",
                          "-1e309",
                          "1.5",
                          "1e3",
                          "0x10",
                          "\"0x10\"",
                          "\"12\"",
                          "010",
                          "+1",
                          ".5",
                          "Infinity"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char b[700];
        /* size: a file of zero bytes is legal for tus, so "0" is skipped */
        if (strcmp(nums[i], "0") != 0) {
            snprintf(b, sizeof(b),
                     "{\"template_id\":\"probe\",\"files\":[{\"name\":\"n.wav\",\"size\":%s}]}",
                     nums[i]);
            refused_admin("POST", "/api/v1/assemblies", b);
        }
        for (size_t k = 0; k < 2; k++) {
            char limits[100];
            if (k == 0)
                snprintf(limits, sizeof(limits), "{\"branches\":%s,\"users\":1}", nums[i]);
            else
                snprintf(limits, sizeof(limits), "{\"branches\":1,\"users\":%s}", nums[i]);
            if (k == 1 && strcmp(nums[i], "0") == 0)
                continue; /* users >= 0 */
            snprintf(b, sizeof(b),
                     "{\"organization_id\":\"%s\",\"tier\":\"pro\",\"domains\":[\"a.example\"],"
                     "\"limits\":%s,\"expires_at\":\"2030-01-01T00:00:00Z\"}",
                     T.org, limits);
            refused_admin("POST", "/api/v1/licenses", b);
        }
        snprintf(
            b, sizeof(b),
            "{\"organization\":{\"id\":\"6b1f7c52-3333-4aaa-8bbb-0123456789ab\",\"name\":\"o\","
            "\"home_branch\":\"peer\",\"version\":%s}}",
            nums[i]);
        req q = {"POST",   "/api/v1/cross-branch/sync-organization", PEER_KEY, peer_hdrs, b,
                 strlen(b)};
        refused(&q);
    }
    /* limits missing a member, or not an object */
    const char *limits[] = {"{\"branches\":1}", "{\"users\":1}", "{}", "[1,1]", "null"};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char b[600];
        snprintf(b, sizeof(b),
                 "{\"organization_id\":\"%s\",\"tier\":\"pro\",\"domains\":[\"a.example\"],"
                 "\"limits\":%s,\"expires_at\":\"2030-01-01T00:00:00Z\"}",
                 T.org, limits[i]);
        refused_admin("POST", "/api/v1/licenses", b);
    }
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Sizes and framing.                                                       */

static void test_sizes(void **state)
{
    (void)state;
    int before = T.findings;
    /* One byte over the cap on every JSON route: 413 with the JSON error
     * (a snapshot may be 8 MiB: that route's own cap, gateway/routes.c). */
    const size_t sync_cap = 8u << 20;
    char *big = malloc(sync_cap + 2);
    memset(big, ' ', sync_cap + 1);
    memcpy(big, "{\"name\":\"x\"}", 12);
    for (size_t i = 0; i < NJROUTES; i++) {
        char path[300];
        fill(jroutes[i].path, path, sizeof(path));
        bool snap = strstr(path, "sync-organization") != NULL;
        req q;
        jroute_req(&jroutes[i], path, big, (snap ? sync_cap : BODY_CAP) + 1, NULL, &q);
        T.cases++;
        bg_th_resp r;
        bool sent = send_req(&q, &r) == 0;
        if (!sent || r.status != 413 || !json_4xx(&r, false))
            finding("over the cap is not a JSON 413", &q, &r);
        bg_th_resp_free(&r);
        check_unchanged(&q);
    }
    free(big);
    /* Chunked, over the cap: 413 JSON (h2o collects the chunks first). */
    sbuf s = {0};
    char *head = raw_head("POST", "/api/v1/organizations",
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n");
    sb_add(&s, head, strlen(head));
    free(head);
    char chunk[4096];
    memset(chunk, ' ', sizeof(chunk));
    chunk[0] = '{';
    for (int i = 0; i < (BODY_CAP / 4096) + 2; i++) {
        sb_printf(&s, "%zx\r\n", sizeof(chunk));
        sb_add(&s, chunk, sizeof(chunk));
        sb_add(&s, "\r\n", 2);
    }
    sb_add(&s, "0\r\n\r\n", 5);
    raw_resp rr;
    raw_exchange(s.p, s.len, false, 10000, &rr);
    free(s.p);
    T.cases++;
    if (rr.status != 413 || !raw_is_json(&rr)) {
        T.findings++;
        fprintf(stderr, "FINDING: chunked over the cap -> %d %.300s\n", rr.status, rr.text);
    }
    req q = {"POST", "/api/v1/organizations (chunked)", NULL, NULL, NULL, 0};
    check_unchanged(&q);
    /* A body shorter than its Content-Length: the branch waits for the
     * rest and closes the connection at the request timeout, or sooner
     * when the client half-closes; never a 2xx, nothing stored. */
    head = raw_head("POST", "/api/v1/organizations",
                    "Content-Type: application/json\r\nContent-Length: 100\r\n");
    sbuf sh = {0};
    sb_add(&sh, head, strlen(head));
    sb_add(&sh, "{\"name\":\"short\"}", 16);
    free(head);
    for (int half = 0; half < 2; half++) {
        raw_exchange(sh.p, sh.len, half == 1, 8000, &rr);
        T.cases++;
        if (rr.status != 0 && (rr.status < 400 || rr.status > 499)) {
            T.findings++;
            fprintf(stderr, "FINDING: short body -> %d %.300s\n", rr.status, rr.text);
        }
        req qs = {"POST", "/api/v1/organizations (short body)", NULL, NULL, NULL, 0};
        check_unchanged(&qs);
    }
    free(sh.p);
    assert_int_equal(T.findings, before);
}

/* Limits of h2o's HTTP/1 parser and its request-size cap: answered by h2o
 * in plain text before branchgate runs (docs/testing.md). */
static void test_known_limits(void **state)
{
    (void)state;
    int before = T.findings;
    raw_resp rr;
    /* A declared body above h2o's max_request_entity_size (the largest
     * route cap + 1 MiB): refused at once. */
    char *h = raw_head("POST", "/api/v1/organizations",
                       "Content-Type: application/json\r\nContent-Length: 20000000\r\n");
    raw_exchange(h, strlen(h), false, 5000, &rr);
    free(h);
    known("Content-Length 20000000", &rr, false);
    const char *bad_cl[] = {"Content-Length: -1\r\n", "Content-Length: 99999999999999999999999\r\n",
                            "Content-Length: 1x\r\n", "Transfer-Encoding: chunked\r\n"};
    for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
        char extra[200];
        snprintf(extra, sizeof(extra), "Content-Type: application/json\r\n%sConnection: close\r\n",
                 bad_cl[i]);
        h = raw_head("POST", "/api/v1/organizations", extra);
        sbuf s = {0};
        sb_add(&s, h, strlen(h));
        sb_add(&s, "zz\r\n{}\r\n", 8); /* a broken chunk size for the chunked case */
        raw_exchange(s.p, s.len, true, 5000, &rr);
        free(h);
        free(s.p);
        known(bad_cl[i], &rr, true);
    }
    /* More than 100 header lines; a DEL byte in a header value. */
    sbuf s = {0};
    for (int i = 0; i < 200; i++)
        sb_printf(&s, "X-H%d: %d\r\n", i, i);
    sb_add(&s, "Connection: close\r\n", 19);
    h = raw_head("GET", "/api/v1/organizations", s.p);
    raw_exchange(h, strlen(h), false, 5000, &rr);
    free(h);
    free(s.p);
    known("200 header lines", &rr, false);
    h = raw_head("GET", "/api/v1/organizations", "X-Odd: a\x7f b\r\nConnection: close\r\n");
    raw_exchange(h, strlen(h), false, 5000, &rr);
    free(h);
    known("DEL in a header value", &rr, false);
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Headers.                                                                 */

static void refused_with(const char *method, const char *path, const char *const *hdrs,
                         const char *body)
{
    req q = {method, path, T.p.token, hdrs, body, body ? strlen(body) : 0};
    refused(&q);
}

static void test_headers(void **state)
{
    (void)state;
    int before = T.findings;
    char b64a[200], meta[600], len[80];
    bg_th_b64(T.asm_wait, strlen(T.asm_wait), b64a);
    /* Upload-Length: negative, huge, not decimal, empty, above Tus-Max-Size. */
    const char *lengths[] = {"-1",
                             "9223372036854775808",
                             "99999999999999999999",
                             "0x10",
                             "1.5",
                             "",
                             "1e3",
                             "+5",
                             "4,4",
                             "17592186044417",
                             "4 4",
                             "0x4"};
    snprintf(meta, sizeof(meta), "Upload-Metadata: assembly_id %s,filename eC53YXY=", b64a);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        snprintf(len, sizeof(len), "Upload-Length: %s", lengths[i]);
        const char *hh[] = {"Tus-Resumable: 1.0.0", len, meta, NULL};
        refused_with("POST", "/api/v1/uploads/", hh, NULL);
    }
    /* Upload-Metadata: missing keys, not base64, NUL / control bytes /
     * invalid UTF-8 in the file name, an unknown assembly, too long. */
    char longmeta[4400];
    snprintf(longmeta, sizeof(longmeta), "Upload-Metadata: assembly_id %s,filename %0*d", b64a,
             4000, 0);
    const char *names[] = {"YQBi" /* a\0b */,      "YQpi" /* a\nb */,
                           "//4=" /* 0xff 0xfe */, "wK8=" /* overlong / */,
                           "!!!notbase64",         "",
                           "Lg==" /* . */,         "Li4=" /* .. */};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(meta, sizeof(meta), "Upload-Metadata: assembly_id %s,filename %s", b64a, names[i]);
        const char *hh[] = {"Tus-Resumable: 1.0.0", "Upload-Length: 4", meta, NULL};
        refused_with("POST", "/api/v1/uploads/", hh, NULL);
    }
    const char *metas[] = {"Upload-Metadata: ",
                           "Upload-Metadata: assembly_id Li4vLi4v,filename eC53YXY=",
                           "Upload-Metadata: filename eC53YXY=",
                           longmeta,
                           "Upload-Metadata: assembly_id,filename",
                           "Upload-Metadata: ,,,"};
    for (size_t i = 0; i < sizeof(metas) / sizeof(metas[0]); i++) {
        const char *hh[] = {"Tus-Resumable: 1.0.0", "Upload-Length: 4", metas[i], NULL};
        refused_with("POST", "/api/v1/uploads/", hh, NULL);
    }
    /* Duplicate metadata keys, a deferred length, a wrong version, none. */
    snprintf(meta, sizeof(meta),
             "Upload-Metadata: assembly_id %s,filename eC53YXY=,filename eS53YXY=", b64a);
    const char *dupm[] = {"Tus-Resumable: 1.0.0", "Upload-Length: 4", meta, NULL};
    refused_with("POST", "/api/v1/uploads/", dupm, NULL);
    snprintf(meta, sizeof(meta), "Upload-Metadata: assembly_id %s,filename eC53YXY=", b64a);
    const char *defer[] = {"Tus-Resumable: 1.0.0", "Upload-Defer-Length: 1", meta, NULL};
    refused_with("POST", "/api/v1/uploads/", defer, NULL);
    const char *vers[] = {"Tus-Resumable: 0.2.2", "Tus-Resumable: 1.0.0x", "Tus-Resumable: "};
    for (size_t i = 0; i < 3; i++) {
        const char *hh[] = {vers[i], "Upload-Length: 4", meta, NULL};
        refused_with("POST", "/api/v1/uploads/", hh, NULL);
    }
    const char *nover[] = {"Upload-Length: 4", meta, NULL};
    refused_with("POST", "/api/v1/uploads/", nover, NULL);
    /* Creation-with-upload: more bytes than Upload-Length, wrong type. */
    const char *cwu[] = {"Tus-Resumable: 1.0.0", "Upload-Length: 2", meta,
                         "Content-Type: application/offset+octet-stream", NULL};
    refused_with("POST", "/api/v1/uploads/", cwu, "abcd");
    const char *cwu2[] = {"Tus-Resumable: 1.0.0", "Upload-Length: 4", meta,
                          "Content-Type: text/plain", NULL};
    refused_with("POST", "/api/v1/uploads/", cwu2, "abcd");
    /* PATCH of the pending upload (T.tus): Upload-Offset, checksum and
     * Content-Type variants, too many bytes. */
    char up[700];
    snprintf(up, sizeof(up), "%s", T.upload + strlen(T.p.url));
    /* (Leading and trailing blanks are not the value: HTTP strips them.) */
    const char *offs[] = {"-1", "9223372036854775808", "abc", "", "1.5", "0x10", "5", "1", "0 0"};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        char off[64];
        snprintf(off, sizeof(off), "Upload-Offset: %s", offs[i]);
        const char *hh[] = {"Tus-Resumable: 1.0.0", off,
                            "Content-Type: application/offset+octet-stream", NULL};
        refused_with("PATCH", up, hh, "abcd");
    }
    const char *sums[] = {"Upload-Checksum: md5", "Upload-Checksum: md5 !!!",
                          "Upload-Checksum: md5 eA==", "Upload-Checksum: crc32 AAAA",
                          "Upload-Checksum: md5 MDAwMDAwMDAwMDAwMDAwMA==" /* wrong digest: 460 */};
    for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
        const char *hh[] = {"Tus-Resumable: 1.0.0", "Upload-Offset: 0",
                            "Content-Type: application/offset+octet-stream", sums[i], NULL};
        refused_with("PATCH", up, hh, "abcd");
    }
    const char *cts[] = {"Content-Type: application/json", "Content-Type: text/plain",
                         "Content-Type: application/offset+octet-stream; x=y"};
    for (size_t i = 0; i < 3; i++) {
        const char *hh[] = {"Tus-Resumable: 1.0.0", "Upload-Offset: 0", cts[i], NULL};
        refused_with("PATCH", up, hh, "abcd");
    }
    const char *toomuch[] = {"Tus-Resumable: 1.0.0", "Upload-Offset: 0",
                             "Content-Type: application/offset+octet-stream", NULL};
    refused_with("PATCH", up, toomuch, "abcdefgh");
    const char *oldver[] = {"Tus-Resumable: 0.2.2", "Upload-Offset: 0",
                            "Content-Type: application/offset+octet-stream", NULL};
    refused_with("PATCH", up, oldver, "abcd");
    /* SSE: a Last-Event-ID that is not an event id, as the header or
     * as ?last_event_id= (a stream that starts would not end: the case
     * would then fail on libcurl's 30 s timeout). */
    const char *leis[] = {"-5",    "99999999999999999999999",
                          "abc",   "1.5",
                          "0x10",  "9223372036854775808",
                          "1e309", "1%201",
                          "%00",   "1;2"};
    for (size_t i = 0; i < sizeof(leis) / sizeof(leis[0]); i++) {
        char path[300], lei[80];
        snprintf(path, sizeof(path), "/api/stream?channel=upload:main:%s", T.asm_wait);
        snprintf(lei, sizeof(lei), "Last-Event-ID: %s", leis[i]);
        const char *hh[] = {lei, NULL};
        refused_with("GET", path, hh, NULL);
        snprintf(path, sizeof(path), "/api/stream?branch=main&last_event_id=%s", leis[i]);
        refused_with("GET", path, NULL, NULL);
    }
    assert_int_equal(T.findings, before);
}

/* Headers of authentication, peers and sizes. */
static void test_auth_headers(void **state)
{
    (void)state;
    int before = T.findings;
    const char *body = "{\"resource_type\":\"bogus\"}";
    char *longorigin = malloc(6000), *longkey = malloc(6000);
    snprintf(longorigin, 6000, "X-Branch-Origin: http://%0*d", 5000, 0);
    memset(longkey, 'k', 5999);
    longkey[5999] = '\0';
    const char *const peer_cases[][3] = {
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Hops: -1", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Hops: 99999999999999999999", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Hops: abc", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Hops: 1.5", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Destination: http://elsewhere.example", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Branch-Destination: %00", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "Idempotency-Key: ../../x", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "Idempotency-Key: a b", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL "/../..", "X-Empty:", PEER_KEY},
        {"X-Branch-Origin: ", "X-Empty:", PEER_KEY},
        {longorigin, "X-Empty:", PEER_KEY},
        {"X-Branch-Origin: " PEER_URL, "X-Empty:", longkey},
        {"X-Branch-Origin: " PEER_URL, "X-Empty:", PEER_KEY "x"},
        {"X-Branch-Origin: " PEER_URL, "X-Empty:", "' OR 1=1 --"},
    };
    for (size_t i = 0; i < sizeof(peer_cases) / sizeof(peer_cases[0]); i++) {
        const char *hh[] = {"Content-Type: application/json", peer_cases[i][0], peer_cases[i][1],
                            NULL};
        req q = {"POST",      "/api/v1/cross-branch/share-resource", peer_cases[i][2], hh, body,
                 strlen(body)};
        refused(&q);
        req g = {"GET", "/api/v1/cross-branch/health", peer_cases[i][2], hh + 1, NULL, 0};
        if (strstr(peer_cases[i][1], "Idempotency") == NULL)
            refused(&g);
    }
    char longidem[300] = "Idempotency-Key: ";
    memset(longidem + 17, 'k', 200);
    longidem[217] = '\0';
    const char *hi[] = {"Content-Type: application/json", "X-Branch-Origin: " PEER_URL, longidem,
                        NULL};
    req qi = {"POST", "/api/v1/cross-branch/share-resource", PEER_KEY, hi, body, strlen(body)};
    refused(&qi);
    /* Admin and user bearer tokens that are not tokens. */
    const char *toks[] = {
        "", "x", "a.b.c", "..", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", longkey, "' OR 1=1 --"};
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        const char *ob = "{\"name\":\"zz\"}";
        const char *ab = "{\"template_id\":\"probe\",\"files\":[{\"name\":\"z.wav\",\"size\":4}]}";
        req q = {"POST", "/api/v1/organizations", toks[i], json_ct, ob, strlen(ob)};
        refused(&q);
        req a = {"POST", "/api/v1/assemblies", toks[i], json_ct, ab, strlen(ab)};
        refused(&a);
    }
    const char *auths[] = {"Authorization: Basic YTpi", "Authorization: Bearer",
                           "Authorization: bearer", "Authorization: Token abc"};
    for (size_t i = 0; i < 4; i++) {
        const char *hh[] = {"Content-Type: application/json", auths[i], NULL};
        req q = {"POST", "/api/v1/organizations", NULL, hh, "{\"name\":\"zz\"}", 13};
        refused(&q);
    }
    /* A 64 KiB header value, and 32 KiB of headers in all: 431 JSON. */
    char *huge = malloc(70000);
    snprintf(huge, 70000, "X-Huge: %0*d", 65536, 0);
    const char *hh[] = {huge, "Content-Type: application/json", NULL};
    req q = {"POST", "/api/v1/organizations", T.p.token, hh, "{\"name\":\"zz\"}", 13};
    refused(&q);
    static char many[90][500];
    const char *mh[92];
    for (int i = 0; i < 90; i++) {
        snprintf(many[i], sizeof(many[i]), "X-H%d: %0*d", i, 480, i);
        mh[i] = many[i];
    }
    mh[90] = "Content-Type: application/json";
    mh[91] = NULL;
    req qm = {"POST", "/api/v1/organizations", T.p.token, mh, "{\"name\":\"zz\"}", 13};
    refused(&qm);
    free(huge);
    free(longorigin);
    free(longkey);
    /* X-Request-Id: an insane one is replaced, never echoed. */
    const char *rids[] = {"../../x", "a b", "<script>", "{\"a\":1}"};
    for (size_t i = 0; i < 4; i++) {
        char rid[80];
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", rids[i]);
        const char *rh[] = {rid, NULL};
        req qr = {"GET", "/api/v1/no-such-route", T.p.token, rh, NULL, 0};
        T.cases++;
        bg_th_resp r;
        char got[128] = "";
        if (send_req(&qr, &r) != 0 || !json_4xx(&r, false) ||
            !bg_th_header(&r, "x-request-id", got, sizeof(got)) || strcmp(got, rids[i]) == 0)
            finding("X-Request-Id echoed or no JSON 404", &qr, &r);
        bg_th_resp_free(&r);
        check_unchanged(&qr);
    }
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Path parameters.                                                         */

static void test_paths(void **state)
{
    (void)state;
    int before = T.findings;
    static char longid[5100];
    memset(longid, 'a', 5000);
    longid[5000] = '\0';
    const char *bad[] = {"..",
                         "..%2f..%2fetc",
                         "%2e%2e%2f%2e%2e",
                         "..%2F",
                         "%2e%2e",
                         "a%00b",
                         "%00",
                         "%252e%252e",
                         "%252e%252e%252fbranchgate.db",
                         "x%2f..%2f..%2fadmin.token",
                         longid,
                         "%ff%fe",
                         "%c0%ae%c0%ae",
                         "'%20OR%201=1--",
                         "%25",
                         "-1",
                         "9223372036854775808",
                         "0x10",
                         "1.5",
                         "%0d%0aX-Injected:%201",
                         "%",
                         "%zz"};
    const char *const routes[][2] = {
        {"GET", "/api/v1/branches/@"},
        {"PATCH", "/api/v1/branches/@"},
        {"DELETE", "/api/v1/branches/@"},
        {"POST", "/api/v1/branches/@/ping"},
        {"GET", "/api/v1/branches/@/status"},
        {"POST", "/api/v1/branches/@/resync"},
        {"GET", "/api/v1/organizations/@"},
        {"PATCH", "/api/v1/organizations/@"},
        {"POST", "/api/v1/organizations/@/webhook-secret"},
        {"GET", "/api/v1/organizations/@/users"},
        {"POST", "/api/v1/organizations/@/users"},
        {"GET", "/api/v1/organizations/ORG/users/@"},
        {"DELETE", "/api/v1/organizations/ORG/users/@"},
        {"GET", "/api/v1/organizations/@/users/USR"},
        {"DELETE", "/api/v1/organizations/@/users/USR"},
        {"POST", "/api/v1/organizations/@/sync"},
        {"POST", "/api/v1/organizations/@/share"},
        {"POST", "/api/v1/outbox/@/requeue"},
        {"GET", "/api/v1/licenses/@"},
        {"POST", "/api/v1/licenses/@/revoke"},
        {"GET", "/api/v1/templates/@"},
        {"GET", "/api/v1/assemblies/@"},
        {"DELETE", "/api/v1/assemblies/@"},
        {"POST", "/api/v1/assemblies/@/replay"},
        {"HEAD", "/api/v1/uploads/@"},
        {"PATCH", "/api/v1/uploads/@"},
        {"DELETE", "/api/v1/uploads/@"},
        {"GET", "/api/v1/files/@/ASM/preview/NAME"},
        {"GET", "/api/v1/files/main/@/preview/NAME"},
        {"GET", "/api/v1/files/main/ASM/@/NAME"},
        {"GET", "/api/v1/files/main/ASM/preview/@"},
        {"DELETE", "/api/v1/tokens/@"},
        {"POST", "/api/v1/jobs/@/requeue"},
        {"GET", "/api/status?assembly_id=@"},
        {"GET", "/api/stream?channel=upload:main:@"},
        {"GET", "/api/stream?channel=upload:@:ASM"},
        {"GET", "/api/stream?branch=@"},
    };
    const char *name = strrchr(T.result, '/') + 1;
    for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            char path[6000] = "";
            for (const char *t = routes[r][1]; *t;) {
                const char *sub = NULL;
                size_t skip = 1;
                if (*t == '@')
                    sub = bad[b];
                else if (strncmp(t, "ORG", 3) == 0)
                    sub = T.org, skip = 3;
                else if (strncmp(t, "USR", 3) == 0)
                    sub = T.owner, skip = 3;
                else if (strncmp(t, "ASM", 3) == 0)
                    sub = T.asm_done, skip = 3;
                else if (strncmp(t, "NAME", 4) == 0)
                    sub = name, skip = 4;
                size_t l = strlen(path);
                if (sub != NULL)
                    snprintf(path + l, sizeof(path) - l, "%s", sub);
                else
                    snprintf(path + l, sizeof(path) - l, "%c", *t);
                t += skip;
            }
            bool tus = strstr(routes[r][1], "/uploads/") != NULL;
            const char *tush[] = {"Tus-Resumable: 1.0.0", "Upload-Offset: 0",
                                  "Content-Type: application/offset+octet-stream", NULL};
            bool json =
                !tus && (strcmp(routes[r][0], "POST") == 0 || strcmp(routes[r][0], "PATCH") == 0);
            req q = {routes[r][0],
                     path,
                     T.p.token,
                     tus    ? tush
                     : json ? json_ct
                            : NULL,
                     tus    ? "abcd"
                     : json ? "{}"
                            : NULL,
                     tus    ? 4
                     : json ? 2
                            : 0};
            if (tus && strcmp(routes[r][0], "PATCH") != 0)
                q.body = NULL, q.len = 0;
            refused(&q);
        }
    }
    assert_int_equal(T.findings, before);
}

/* Around a real result file: only that file is served, nothing else of
 * the data dir, whatever the encoding of the climb. */
static void test_files(void **state)
{
    (void)state;
    int before = T.findings;
    bg_th_resp r;
    /* The control: the result itself is served. */
    assert_int_equal(bg_th_get(&T.p, T.result, T.p.token, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.len > 0);
    bg_th_resp_free(&r);
    char dir[600];
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(T.result, '/') - T.result), T.result);
    const char *climbs[] = {"..%2f..%2f..%2f..%2fbranchgate.db",
                            "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fmaster.key",
                            "..%252f..%252f..%252f..%252fadmin.token",
                            "%252e%252e%252f%252e%252e%252fbranchgate.json",
                            "..%5c..%5c..%5cbranchgate.db",
                            "....%2f%2f....%2f%2fbranchgate.db",
                            "%2fetc%2fpasswd",
                            "..",
                            "%2e",
                            ".",
                            "x%00.mp3",
                            "..%c0%af..%c0%afbranchgate.db",
                            "%2e%2e%255c"};
    for (size_t i = 0; i < sizeof(climbs) / sizeof(climbs[0]); i++) {
        char path[900];
        snprintf(path, sizeof(path), "%s/%s", dir, climbs[i]);
        refused_admin("GET", path, NULL);
    }
    /* Literal dot segments (libcurl would resolve them: raw socket). */
    const char *raw_paths[] = {"/../../../../branchgate.db", "/./../../../../master.key",
                               "/..//..//..//..//admin.token", "/../../../../../../../etc/passwd"};
    for (size_t i = 0; i < sizeof(raw_paths) / sizeof(raw_paths[0]); i++) {
        char path[900];
        snprintf(path, sizeof(path), "%s%s", dir, raw_paths[i]);
        char *h = raw_head("GET", path, "Connection: close\r\n");
        raw_resp rr;
        raw_exchange(h, strlen(h), false, 5000, &rr);
        free(h);
        T.cases++;
        if (rr.status < 400 || rr.status > 499 || !raw_is_json(&rr) ||
            memmem(rr.text, rr.len, "SQLite format", 13) != NULL) {
            T.findings++;
            fprintf(stderr, "FINDING: GET %s -> %d %.200s\n", path, rr.status, rr.text);
        }
        req q = {"GET", path, NULL, NULL, NULL, 0};
        check_unchanged(&q);
    }
    /* A Range outside the file, reversed or empty: 416 with JSON. */
    const char *ranges[] = {"Range: bytes=999999999-", "Range: bytes=5-1", "Range: bytes=-0"};
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        const char *hh[] = {ranges[i], NULL};
        req q = {"GET", T.result, T.p.token, hh, NULL, 0};
        refused(&q);
    }
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Query parameters.                                                        */

static void test_queries(void **state)
{
    (void)state;
    int before = T.findings;
    char users[200], cursor300[320];
    snprintf(users, sizeof(users), "/api/v1/organizations/%s/users", T.org);
    snprintf(cursor300, sizeof(cursor300), "cursor=%0*d", 300, 1);
    const char *lists[] = {"/api/v1/branches", "/api/v1/organizations", users,
                           "/api/v1/audit",    "/api/v1/outbox",        "/api/v1/assemblies",
                           "/api/v1/jobs"};
    const char *qs[] = {"limit=-1",
                        "limit=0",
                        "limit=501",
                        "limit=9223372036854775808",
                        "limit=1e309",
                        "limit=0x10",
                        "limit=1.5",
                        "limit=",
                        "limit=%00",
                        "limit=1%00",
                        "limit=%",
                        "limit=1%zz",
                        "limit=+1",
                        "limit=%201",
                        "cursor=-5",
                        "cursor=9223372036854775808",
                        "cursor=..%2f..%2f",
                        "cursor=%00",
                        "cursor=1.5",
                        "cursor=0x10",
                        "cursor='%20OR%201=1--",
                        "cursor=",
                        cursor300};
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
        for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
            char path[600];
            snprintf(path, sizeof(path), "%s?%s", lists[l], qs[i]);
            refused_admin("GET", path, NULL);
        }
    const char *scoped[] = {"/api/v1/branches?organization_id=",
                            "/api/v1/branches/peer?organization_id=",
                            "/api/v1/branches/peer/status?organization_id=",
                            "/api/v1/assemblies?organization_id=",
                            "/api/v1/templates?organization_id=",
                            "/api/v1/templates/probe?organization_id="};
    const char *ids[] = {"..%2f", "%25", "'%20OR%201=1--", "%00", UUID_NONE "x", ""};
    for (size_t s = 0; s < sizeof(scoped) / sizeof(scoped[0]); s++)
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            char path[300];
            snprintf(path, sizeof(path), "%s%s", scoped[s], ids[i]);
            refused_admin("GET", path, NULL);
        }
    const char *states[] = {"/api/v1/jobs?state=../../x",
                            "/api/v1/jobs?state=dead%00",
                            "/api/v1/jobs?state=%27",
                            "/api/v1/jobs?state=DEAD",
                            "/api/v1/outbox?state=all",
                            "/api/v1/outbox?state=%25",
                            "/api/v1/outbox?state=",
                            "/api/status",
                            "/api/status?assembly_id=",
                            "/api/stream",
                            "/api/stream?channel=upload:main",
                            "/api/stream?channel=upload:main:x:y",
                            "/api/stream?channel=%00",
                            "/api/stream?channel=upload:main:" UUID_NONE,
                            "/api/stream?branch=main&channel=upload:main:x",
                            "/api/stream?branch=other",
                            "/api/stream?branch=%2e%2e"};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        refused_admin("GET", states[i], NULL);
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Unknown routes, wrong methods.                                          */

static void test_methods(void **state)
{
    (void)state;
    int before = T.findings;
    const char *unknown[] = {
        "/api/v1/nothing-here",      "/api/v2/branches",
        "/api/v1/branches/peer/x/y", "/api/v1/organizations/" UUID_NONE "/users/" UUID_NONE "/x",
        "/API/V1/BRANCHES",          "/api/v1//branches",
        "/api/v1/files/main",        "/%2e%2e/%2e%2e/etc/passwd"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        refused_admin("GET", unknown[i], NULL);
    /* Each path of the table with a method it does not have: 405, and
     * Allow lists exactly the methods it has. */
    char org[200], users[200], user[300], file[700];
    snprintf(org, sizeof(org), "/api/v1/organizations/%s", T.org);
    snprintf(users, sizeof(users), "/api/v1/organizations/%s/users", T.org);
    snprintf(user, sizeof(user), "/api/v1/organizations/%s/users/%s", T.org, T.owner);
    snprintf(file, sizeof(file), "%s", T.result);
    const struct {
        const char *path, *allow, *try_[3];
    } m[] = {
        {"/api/v1/branches", "GET, POST", {"PUT", "DELETE", "PATCH"}},
        {"/api/v1/branches/peer", "GET, PATCH, DELETE", {"POST", "PUT", "HEAD"}},
        {"/api/v1/branches/peer/ping", "POST", {"GET", "DELETE", "PUT"}},
        {"/api/v1/organizations", "GET, POST", {"DELETE", "PATCH", "TRACE"}},
        {org, "GET, PATCH", {"DELETE", "POST", "PUT"}},
        {users, "GET, POST", {"DELETE", "PATCH", "PUT"}},
        {user, "GET, DELETE", {"POST", "PATCH", "PUT"}},
        {"/api/v1/tokens", "GET, POST", {"DELETE", "PUT", "PATCH"}},
        {"/api/v1/licenses", "POST", {"GET", "DELETE", "PUT"}},
        {"/api/v1/auth/login", "POST", {"GET", "PUT", "DELETE"}},
        {"/api/v1/uploads/", "OPTIONS, POST", {"GET", "DELETE", "PUT"}},
        {"/api/v1/assemblies", "POST, GET", {"DELETE", "PUT", "PATCH"}},
        {file, "GET", {"POST", "DELETE", "PUT"}},
        {"/api/stream", "GET", {"POST", "DELETE", "FOO"}},
        {"/api/v1/audit", "GET", {"POST", "DELETE", "OPTIONS"}},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        for (size_t k = 0; k < 3; k++) {
            req q = {m[i].try_[k], m[i].path, T.p.token, NULL, NULL, 0};
            T.cases++;
            bg_th_resp r;
            char allow[200] = "";
            bool head = strcmp(m[i].try_[k], "HEAD") == 0;
            if (send_req(&q, &r) != 0 || r.status != 405 || !json_4xx(&r, head) ||
                !bg_th_header(&r, "allow", allow, sizeof(allow)) || strcmp(allow, m[i].allow) != 0)
                finding("not a JSON 405 with the right Allow", &q, &r);
            if (allow[0] && strcmp(allow, m[i].allow) != 0)
                fprintf(stderr, "    Allow: %s (want %s)\n", allow, m[i].allow);
            bg_th_resp_free(&r);
            check_unchanged(&q);
        }
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* SQL metacharacters: refused, or stored verbatim and read back.          */

static const char *const sqls[] = {
    "'; DROP TABLE branches;--",
    "\" OR 1=1 --",
    "%",
    "_",
    "Robert'); DELETE FROM users;--",
    "' OR ''='",
    "%_%\\",
    "x' UNION SELECT token_hash FROM admin_tokens--",
};
#define NSQL (sizeof(sqls) / sizeof(sqls[0]))

/* Sends body; on a 2xx takes the new state as the baseline and returns the
 * answer (new ref), on a JSON 4xx returns NULL after checking nothing
 * changed; anything else is a finding. */
static json_t *accepted_or_refused(const char *method, const char *path, const char *token,
                                   const char *const *hdrs, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    req q = {method, path, token, hdrs ? hdrs : json_ct, text, strlen(text)};
    T.cases++;
    bg_th_resp r;
    json_t *out = NULL;
    if (send_req(&q, &r) != 0) {
        finding("no answer", &q, NULL);
    } else if (r.status >= 200 && r.status <= 299) {
        out = bg_th_json(&r);
        if (out == NULL)
            out = json_object();
        rebase(); /* accepted: the caller reads it back */
    } else if (!json_4xx(&r, false)) {
        finding("neither a 2xx nor a JSON 4xx", &q, &r);
    }
    bg_th_resp_free(&r);
    if (out == NULL)
        check_unchanged(&q);
    free(text);
    json_decref(body);
    return out;
}

/* GETs path and compares the string at key (in the object, or in the
 * first element of array key2 when given) with want. */
static void read_back(const char *path, const char *key, const char *key2, const char *want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_get(&T.p, path, T.p.token, &r), 0);
    json_t *j = bg_th_json(&r);
    json_t *o = key2 ? json_array_get(json_object_get(j, key2), 0) : j;
    const char *got = json_string_value(json_object_get(o, key));
    if (r.status != 200 || got == NULL || strcmp(got, want) != 0) {
        T.findings++;
        fprintf(stderr, "FINDING: %s: '%s' stored as '%s'\n", path, want, got ? got : "(none)");
    }
    json_decref(j);
    bg_th_resp_free(&r);
}

static void sql_orgs_users(const char *s, size_t i)
{
    char path[300];
    json_t *o = accepted_or_refused("POST", "/api/v1/organizations", T.p.token, NULL,
                                    json_pack("{s:s}", "name", s));
    if (o != NULL) {
        const char *id = json_string_value(json_object_get(o, "id"));
        snprintf(path, sizeof(path), "/api/v1/organizations/%s", id);
        read_back(path, "name", NULL, s);
        json_t *p =
            accepted_or_refused("PATCH", path, T.p.token, NULL, json_pack("{s:s}", "name", s + 1));
        if (p != NULL)
            read_back(path, "name", NULL, s + 1);
        json_decref(p);
        json_decref(o);
    }
    char email[80];
    snprintf(email, sizeof(email), "sql%zu@hostile.example", i);
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.org);
    json_t *u = accepted_or_refused(
        "POST", path, T.p.token, NULL,
        json_pack("{s:s,s:s,s:s}", "email", email, "name", s, "password", "pw-0123456789"));
    if (u != NULL) {
        char upath[400];
        snprintf(upath, sizeof(upath), "%s/%s", path, json_string_value(json_object_get(u, "id")));
        read_back(upath, "name", NULL, s);
        bg_th_resp r;
        bg_th_send_json(&T.p, "DELETE", upath, T.p.token, NULL, &r);
        assert_int_equal(r.status, 204);
        bg_th_resp_free(&r);
        json_decref(u);
        rebase();
    }
    /* In an email: refused (not an address), whatever it contains. */
    json_decref(accepted_or_refused(
        "POST", path, T.p.token, NULL,
        json_pack("{s:s,s:s,s:s}", "email", s, "name", "n", "password", "pw-0123456789")));
}

static void sql_tokens_licenses(const char *s)
{
    json_t *t = accepted_or_refused("POST", "/api/v1/tokens", T.p.token, NULL,
                                    json_pack("{s:s}", "label", s));
    if (t != NULL) {
        const char *id = json_string_value(json_object_get(t, "id"));
        bg_th_resp r;
        bg_th_get(&T.p, "/api/v1/tokens", T.p.token, &r);
        json_t *all = bg_th_json(&r), *e;
        size_t k;
        const char *got = NULL;
        json_array_foreach(json_object_get(all, "tokens"), k,
                           e) if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
            got = json_string_value(json_object_get(e, "label"));
        if (got == NULL || strcmp(got, s) != 0) {
            T.findings++;
            fprintf(stderr, "FINDING: token label '%s' stored as '%s'\n", s, got ? got : "(none)");
        }
        json_decref(all);
        bg_th_resp_free(&r);
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/tokens/%s", id);
        bg_th_send_json(&T.p, "DELETE", path, T.p.token, NULL, &r);
        assert_int_equal(r.status, 204);
        bg_th_resp_free(&r);
        json_decref(t);
        rebase();
    }
    json_t *l = accepted_or_refused("POST", "/api/v1/licenses", T.p.token, NULL,
                                    json_pack("{s:s,s:s,s:[s],s:[s],s:{s:i,s:i},s:s}",
                                              "organization_id", T.org, "tier", s, "domains",
                                              "a.example", "features", s, "limits", "branches", 1,
                                              "users", 1, "expires_at", "2030-01-01T00:00:00Z"));
    if (l != NULL) {
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/licenses/%s",
                 json_string_value(json_object_get(l, "id")));
        read_back(path, "tier", NULL, s);
        bg_th_resp r;
        bg_th_get(&T.p, path, T.p.token, &r);
        json_t *g = bg_th_json(&r);
        const char *f = json_string_value(json_array_get(json_object_get(g, "features"), 0));
        if (f == NULL || strcmp(f, s) != 0) {
            T.findings++;
            fprintf(stderr, "FINDING: license feature '%s' stored as '%s'\n", s, f ? f : "(none)");
        }
        json_decref(g);
        bg_th_resp_free(&r);
        json_decref(l);
    }
}

static void sql_branches(const char *s, size_t i)
{
    /* A key made of metacharacters (padded to the minimum length): stored
     * sealed, so the proof of byte-identity is that it authenticates. */
    char key[120], name[40], url[80], origin[120];
    snprintf(key, sizeof(key), "%s-0123456789abcdef", s);
    snprintf(name, sizeof(name), "sqlpeer%zu", i);
    snprintf(url, sizeof(url), "http://127.0.0.1:%zu", 2900 + i);
    json_t *b =
        accepted_or_refused("POST", "/api/v1/branches", T.p.token, NULL,
                            json_pack("{s:s,s:s,s:s,s:s}", "branch_name", name, "branch_url", url,
                                      "branch_type", "master_branch", "api_key", key));
    if (b != NULL) {
        snprintf(origin, sizeof(origin), "X-Branch-Origin: %s", url);
        const char *hh[] = {origin, NULL};
        char health[200], path[200];
        snprintf(health, sizeof(health), "%s/api/v1/cross-branch/health", T.p.url);
        bg_th_resp r;
        bg_th_http("GET", health, key, NULL, 0, hh, false, &r);
        if (r.status != 200) {
            T.findings++;
            fprintf(stderr, "FINDING: api_key '%s' does not authenticate: %ld\n", key, r.status);
        }
        bg_th_resp_free(&r);
        snprintf(path, sizeof(path), "/api/v1/branches/%s", name);
        bg_th_send_json(&T.p, "DELETE", path, T.p.token, NULL, &r);
        assert_int_equal(r.status, 200);
        bg_th_resp_free(&r);
        json_decref(b);
        rebase();
    }
    /* In a URL or a type: refused. In a name: refused unless it is a
     * plain identifier ("_"), which then reads back as sent. */
    const char *fields[] = {"branch_name", "branch_url", "branch_type"};
    for (size_t k = 0; k < 3; k++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%zu", 3900 + 10 * i + k);
        json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "branch_name", "sqlpeer-x", "branch_url", url,
                                 "branch_type", "master_branch", "api_key", "0123456789abcdefXYZ");
        json_object_set_new(body, fields[k], json_string(s));
        json_t *x = accepted_or_refused("POST", "/api/v1/branches", T.p.token, NULL, body);
        if (x != NULL &&
            (k != 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(s))) {
            T.findings++;
            fprintf(stderr, "FINDING: %s '%s' accepted\n", fields[k], s);
        } else if (x != NULL) {
            char path[200];
            snprintf(path, sizeof(path), "/api/v1/branches/%s", s);
            read_back(path, "branch_name", NULL, s);
            bg_th_resp r;
            bg_th_send_json(&T.p, "DELETE", path, T.p.token, NULL, &r);
            assert_int_equal(r.status, 200);
            bg_th_resp_free(&r);
            rebase();
        }
        json_decref(x);
    }
}

static void sql_peer_and_media(const char *s, size_t i)
{
    char oid[40], uid[40], email[64];
    snprintf(email, sizeof(email), "sqlsync%zu@hostile.example", i);
    snprintf(oid, sizeof(oid), "6b1f7c52-%04zx-4aaa-8bbb-0123456789ab", 0x5000 + i);
    snprintf(uid, sizeof(uid), "6b1f7c52-%04zx-4aaa-8bbb-0123456789ab", 0x6000 + i);
    json_t *body = json_pack("{s:{s:s,s:s,s:s,s:i},s:[{s:s,s:s,s:s,s:s,s:s,s:i,s:b}]}",
                             "organization", "id", oid, "name", s, "home_branch", "peer", "version",
                             1, "users", "id", uid, "email", email, "name", s, "role", "member",
                             "home_branch", "peer", "version", 1, "deleted", 0);
    json_t *a = accepted_or_refused("POST", "/api/v1/cross-branch/sync-organization", PEER_KEY,
                                    peer_hdrs, body);
    if (a != NULL) {
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/organizations/%s", oid);
        read_back(path, "name", NULL, s);
        snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", oid);
        read_back(path, "name", "users", s);
        json_decref(a);
    }
    /* In an assembly's fields: stored as JSON and given back as is. */
    json_t *f = accepted_or_refused("POST", "/api/v1/assemblies", T.p.token, NULL,
                                    json_pack("{s:s,s:[{s:s,s:i}],s:{s:s}}", "template_id", "probe",
                                              "files", "name", "f.wav", "size", (int)(100 + i),
                                              "fields", "k", s));
    if (f != NULL) {
        const char *got = json_string_value(json_object_get(json_object_get(f, "fields"), "k"));
        if (got == NULL || strcmp(got, s) != 0) {
            T.findings++;
            fprintf(stderr, "FINDING: assembly field '%s' given back as '%s'\n", s,
                    got ? got : "(none)");
        }
        json_decref(f);
    }
}

static void test_sql(void **state)
{
    (void)state;
    int before = T.findings;
    for (size_t i = 0; i < NSQL; i++) {
        sql_orgs_users(sqls[i], i);
        sql_tokens_licenses(sqls[i]);
        sql_branches(sqls[i], i);
        sql_peer_and_media(sqls[i], i);
    }
    /* "%" and "_" are no wildcards: lookups by name and email find only
     * the exact value (the owner exists, so does the branch "peer"). */
    const char *lookalikes[] = {"/api/v1/branches/p_er", "/api/v1/branches/%25",
                                "/api/v1/branches/pe%25", "/api/v1/branches/____",
                                "/api/v1/branches/p%25/status"};
    for (size_t i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++)
        refused_admin("GET", lookalikes[i], NULL);
    const char *emails[] = {
        "%@hostile.example", "_wner@hostile.example",    "%", "owner@hostile.exampl_",
        "' OR ''='",         "owner@hostile.example' --"};
    for (size_t i = 0; i < sizeof(emails) / sizeof(emails[0]); i++) {
        char b[300];
        snprintf(b, sizeof(b), "{\"email\":\"%s\",\"password\":\"" OWNER_PW "\"}", emails[i]);
        req q = {"POST", "/api/v1/auth/login", NULL, json_ct, b, strlen(b)};
        refused(&q);
    }
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* tus file names: sanitised, under DATA/uploads/ only.                     */

static int count_entries(const char *dir)
{
    char cmd[700], out[64] = "/tmp/bg-hostile-ls-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 | wc -l > %s", dir, out);
    assert_int_equal(system(cmd), 0);
    char *n = bg_th_read_file(out, NULL);
    unlink(out);
    int v = n ? atoi(n) : -1;
    free(n);
    return v;
}

static void test_upload_names(void **state)
{
    (void)state;
    int before = T.findings;
    /* The waiting assembly expects "../../etc/passwd": its upload is
     * created, and the file lies under DATA/uploads/ with a sanitised name. */
    char loc[700], data_dir[400];
    snprintf(data_dir, sizeof(data_dir), "%s/data", T.root);
    int outside_before = count_entries(T.root) - count_entries(data_dir);
    sbuf files_before = {0}, files_after = {0};
    files_of(&files_before);
    assert_int_equal(bg_th_tus_upload(T.tus, T.p.token, T.asm_wait, "../../etc/passwd", "root", 4,
                                      4, loc, sizeof(loc), NULL),
                     0);
    rebase();
    /* Every path that is new is under DATA/uploads/. */
    files_of(&files_after);
    int fresh = 0;
    char *before_nl = NULL;
    if (asprintf(&before_nl, "\n%s", files_before.p) < 0)
        abort();
    for (char *line = files_after.p, *nl; line != NULL && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        char key[700];
        snprintf(key, sizeof(key), "\n%.*s ", (int)(strchr(line, ' ') - line), line);
        if (strstr(before_nl, key) != NULL)
            continue;
        fresh++;
        if (strncmp(line, "/data/uploads/main/users/anonymous/", 35) != 0) {
            T.findings++;
            fprintf(stderr, "FINDING: the upload created %.*s\n", (int)(nl ? nl - line : 200),
                    line);
        }
    }
    free(before_nl);
    assert_true(fresh >= 1);
    free(files_before.p);
    free(files_after.p);
    const char *id = strrchr(loc, '/') + 1;
    char dir[700], cmd[1600], out[64] = "/tmp/bg-hostile-find-XXXXXX";
    snprintf(dir, sizeof(dir), "%s/uploads/main/users/anonymous/%s", data_dir, id);
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 > %s", dir, out);
    assert_int_equal(system(cmd), 0);
    char *found = bg_th_read_file(out, NULL);
    unlink(out);
    assert_non_null(found);
    fprintf(stderr, "stored as: %s", found);
    /* One file, directly in the upload's directory, no '/' in its name
     * and no leading dot. */
    const char *name = found + strlen(dir) + 1;
    bool ok = strncmp(found, dir, strlen(dir)) == 0 && found[strlen(dir)] == '/' &&
              strchr(name, '/') == NULL && name[0] != '.' &&
              strchr(name, '\n') == strrchr(found, '\n');
    if (!ok) {
        T.findings++;
        fprintf(stderr, "FINDING: the upload was stored as %s\n", found);
    }
    free(found);
    /* Nothing was created beside the data dir, and /etc/passwd is not the
     * file we sent. */
    assert_int_equal(count_entries(T.root) - count_entries(data_dir), outside_before);
    char *etc = bg_th_read_file("/etc/passwd", NULL);
    assert_true(etc == NULL || strcmp(etc, "root") != 0);
    free(etc);
    assert_int_equal(T.findings, before);
}

/* ------------------------------------------------------------------------ */
/* Setup: one top branch with an organisation, its owner, a peer, a        */
/* license, an assembly waiting for an upload and a completed one.        */

/* A mono 16-bit PCM wav: `seconds` of a 440 Hz tone at 8 kHz. */
static char *make_wav(int seconds, size_t *len)
{
    const uint32_t rate = 8000, n = rate * (uint32_t)seconds, bytes = n * 2;
    unsigned char *w = malloc(44 + bytes);
    uint32_t v32;
    uint16_t v16;
    memcpy(w, "RIFF", 4);
    v32 = 36 + bytes;
    memcpy(w + 4, &v32, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    v32 = 16;
    memcpy(w + 16, &v32, 4);
    v16 = 1;
    memcpy(w + 20, &v16, 2); /* PCM */
    memcpy(w + 22, &v16, 2); /* mono */
    memcpy(w + 24, &rate, 4);
    v32 = rate * 2;
    memcpy(w + 28, &v32, 4);
    v16 = 2;
    memcpy(w + 32, &v16, 2);
    v16 = 16;
    memcpy(w + 34, &v16, 2);
    memcpy(w + 36, "data", 4);
    memcpy(w + 40, &bytes, 4);
    for (uint32_t i = 0; i < n; i++) {
        /* a 440 Hz triangle wave: no libm needed */
        int32_t phase = (int32_t)((i * 440u * 4u * 8000u / rate) % 32000u);
        int16_t s = (int16_t)(phase < 16000 ? phase - 8000 : 24000 - phase);
        memcpy(w + 44 + 2 * i, &s, 2);
    }
    *len = 44 + bytes;
    return (char *)w;
}

static json_t *post(const char *path, const char *body, long want)
{
    bg_th_resp r;
    if (bg_th_post_json(&T.p, path, T.p.token, body, &r) != 0 || r.status != want) {
        fprintf(stderr, "setup: POST %s -> %ld %s\n", path, r.status, r.body ? r.body : "");
        bg_th_resp_free(&r);
        return NULL;
    }
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    return j;
}

static bool copy_str(json_t *j, const char *key, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(j);
    return out[0] != '\0';
}

/* The completed assembly: audio-preview on a generated wav. */
static bool done_assembly(void)
{
    size_t len;
    char *wav = make_wav(1, &len), body[300], loc[700], path[300];
    snprintf(body, sizeof(body),
             "{\"template_id\":\"audio-preview\",\"files\":[{\"name\":\"tone.wav\",\"size\":%zu}]}",
             len);
    json_t *a = post("/api/v1/assemblies", body, 201);
    char tus[512];
    snprintf(tus, sizeof(tus), "%s", json_string_value(json_object_get(a, "tus_url")) ?: "");
    if (!copy_str(a, "assembly_id", T.asm_done, sizeof(T.asm_done)) ||
        bg_th_tus_upload(tus, T.p.token, T.asm_done, "tone.wav", wav, len, len, loc, sizeof(loc),
                         NULL) != 0) {
        free(wav);
        return false;
    }
    free(wav);
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", T.asm_done);
    if (bg_th_wait_field(&T.p, path, "ok", "ASSEMBLY_COMPLETED", 120000) < 0)
        return false;
    bg_th_resp r;
    bg_th_get(&T.p, path, T.p.token, &r);
    json_t *st = bg_th_json(&r);
    bg_th_resp_free(&r);
    json_t *prev = json_array_get(json_object_get(json_object_get(st, "results"), "preview"), 0);
    const char *url = json_string_value(json_object_get(prev, "ssl_url"));
    const char *at = url ? strstr(url, "/api/v1/files/") : NULL;
    snprintf(T.result, sizeof(T.result), "%s", at ? at : "");
    json_decref(st);
    return T.result[0] != '\0';
}

static bool fixtures(void)
{
    char body[600];
    if (!copy_str(post("/api/v1/organizations", "{\"name\":\"hostile-target\"}", 201), "id", T.org,
                  sizeof(T.org)))
        return false;
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", T.org);
    snprintf(body, sizeof(body),
             "{\"email\":\"" OWNER_EMAIL "\",\"name\":\"Owner\",\"password\":\"" OWNER_PW
             "\",\"role\":\"owner\"}");
    if (!copy_str(post(path, body, 201), "id", T.owner, sizeof(T.owner)))
        return false;
    if (!bg_th_register(&T.p, "peer", PEER_URL, "master_branch", PEER_KEY))
        return false;
    snprintf(
        body, sizeof(body),
        "{\"organization_id\":\"%s\",\"tier\":\"pro\",\"domains\":[\"a.example\"],\"features\":[],"
        "\"limits\":{\"branches\":1,\"users\":1},\"expires_at\":\"2030-01-01T00:00:00Z\"}",
        T.org);
    if (!copy_str(post("/api/v1/licenses", body, 201), "id", T.license, sizeof(T.license)))
        return false;
    json_t *a = post("/api/v1/assemblies",
                     "{\"template_id\":\"probe\",\"files\":[{\"name\":\"x.wav\",\"size\":4},"
                     "{\"name\":\"../../etc/passwd\",\"size\":4}]}",
                     201);
    snprintf(T.tus, sizeof(T.tus), "%s", json_string_value(json_object_get(a, "tus_url")) ?: "");
    if (!copy_str(a, "assembly_id", T.asm_wait, sizeof(T.asm_wait)))
        return false;
    /* One upload of it exists, so PATCH has a real target. */
    if (bg_th_tus_create(T.tus, T.p.token, T.asm_wait, "x.wav", 4, T.upload, sizeof(T.upload)) != 0)
        return false;
    return done_assembly();
}

static int setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/data", T.root);
    const char *env[] = {
        "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",    "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
        "BRANCHGATE_AUTH_LOGIN_PER_MIN=100000", "BRANCHGATE_PEERS_PING_INTERVAL_MS=86400000",
        "BRANCHGATE_HTTP_MAX_BODY_BYTES=65536", "BRANCHGATE_HTTP_REQ_TIMEOUT_MS=2000",
        "BRANCHGATE_LOG_ACCESS=false",          NULL};
    if (bg_th_start(&T.p, dir, NULL, env) != 0)
        return -1;
    const char *colon = strrchr(T.p.url, ':');
    T.port = colon ? atoi(colon + 1) : 0;
    if (!fixtures()) {
        fprintf(stderr, "setup: fixtures failed\n");
        return -1;
    }
    /* The baseline: two equal readings in a row (the finished job's last
     * writes, if any, are behind us). */
    T.snap = snapshot();
    for (long long end = bg_th_now_ms() + 10000; bg_th_now_ms() < end;) {
        char *again = snapshot();
        bool same = strcmp(again, T.snap) == 0;
        free(T.snap);
        T.snap = again;
        if (same)
            return 0;
        bg_th_nap_ms(100);
    }
    fprintf(stderr, "setup: the state does not settle\n");
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    fprintf(stderr, "hostile input: %d cases, %d findings\n", T.cases, T.findings);
    free(T.snap);
    int rc = bg_th_stop(&T.p, SIGTERM, 15000);
    bg_th_rmtree(T.root);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),       cmocka_unit_test(test_fields),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_known_limits), cmocka_unit_test(test_headers),
        cmocka_unit_test(test_auth_headers), cmocka_unit_test(test_paths),
        cmocka_unit_test(test_files),        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_methods),      cmocka_unit_test(test_sql),
        cmocka_unit_test(test_upload_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
