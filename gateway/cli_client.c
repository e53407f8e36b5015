/* gateway/cli_client.c — the command line's HTTP client: where the server
 * URL and the admin token come from, and a small libcurl client for JSON
 * requests, tus requests and server-sent event streams (docs/cli.md). It
 * never starts the node runtime: a CLI process is a plain HTTP client of
 * a branch, and the token only ever goes into an Authorization header
 * kept in secret memory. */
#include "gateway/cli_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "node/config.h"
#include "node/node.h"
#include "proto/json.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/sig.h"

/* ---- URL and token ---- */

static const char *data_dir(const bg_cli_args *a)
{
    const char *d = bg_cli_val(a, "--data");
    if (d != NULL)
        return d;
    d = getenv("BRANCHGATE_DATA");
    return d != NULL && d[0] != '\0' ? d : BG_DEFAULT_DATA_DIR;
}

/* The first line of DIR/name (at most cap-1 bytes), trimmed. Read with
 * read(2) straight into buf, so a token passes through no stdio buffer. */
static bool read_first_line(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    return n > 0;
}

static int find_url(bg_cli *c, const bg_cli_args *a)
{
    const char *u = bg_cli_val(a, "--url");
    if (u == NULL)
        u = getenv("BRANCHGATE_URL");
    if (u != NULL && u[0] != '\0') {
        if (bg_strlcpy(c->base, u, sizeof(c->base)) >= sizeof(c->base))
            return bg_cli_usage(a, "the URL is too long");
    } else if (!read_first_line(data_dir(a), BG_CLI_LISTEN_URL_FILE, c->base, sizeof(c->base))) {
        fprintf(stderr,
                "branchgate %s: no server URL: pass --url URL, set BRANCHGATE_URL, or point "
                "--data at a running branch's data directory (%s/%s not found)\n",
                a->cmd, data_dir(a), BG_CLI_LISTEN_URL_FILE);
        return BG_CLI_USAGE;
    }
    if (strncasecmp(c->base, "http://", 7) != 0 && strncasecmp(c->base, "https://", 8) != 0)
        return bg_cli_usage(a, "the server URL must start with http:// or https://");
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    return BG_CLI_OK;
}

static void set_auth(bg_cli *c, const char *token, size_t len)
{
    size_t cap = len + 32;
    c->auth = bg_secret_alloc(cap);
    snprintf(c->auth, cap, "Authorization: Bearer %.*s", (int)len, token);
}

static bool token_ok(const char *t, size_t len)
{
    if (len == 0 || len > BG_CLI_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
            return false;
    return true;
}

static int find_token(bg_cli *c, const bg_cli_args *a)
{
    const char *t = bg_cli_val(a, "--token");
    if (t == NULL || t[0] == '\0')
        t = getenv("BRANCHGATE_ADMIN_TOKEN");
    if (t != NULL && t[0] != '\0') {
        if (!token_ok(t, strlen(t)))
            return bg_cli_usage(a, "the token is not a printable bearer token");
        set_auth(c, t, strlen(t));
        return BG_CLI_OK;
    }
    char *buf = bg_secret_alloc(BG_CLI_TOKEN_MAX + 2);
    bool found = read_first_line(data_dir(a), BG_CLI_ADMIN_TOKEN_FILE, buf, BG_CLI_TOKEN_MAX + 2);
    bool ok = found && token_ok(buf, strlen(buf));
    if (ok)
        set_auth(c, buf, strlen(buf));
    bg_secret_free(buf);
    if (ok)
        return BG_CLI_OK;
    fprintf(stderr,
            "branchgate %s: no admin token: set BRANCHGATE_ADMIN_TOKEN, or point --data at the "
            "branch's data directory (%s/%s %s)\n",
            a->cmd, data_dir(a), BG_CLI_ADMIN_TOKEN_FILE, found ? "is malformed" : "not found");
    return BG_CLI_USAGE;
}

int bg_cli_open(bg_cli *c, const bg_cli_args *a)
{
    memset(c, 0, sizeof(*c));
    c->cmd = a->cmd;
    c->json = bg_cli_flag(a, "--json");
    c->timeout_ms = 60000;
    const char *to = bg_cli_val(a, "--timeout");
    uint64_t secs = 0;
    if (to != NULL && bg_parse_duration(to, strlen(to), 86400, &secs) != BG_OK)
        return bg_cli_usage(a, "--timeout takes a duration such as 30s, 5m or 1h");
    if (to != NULL)
        c->timeout_ms = (long)secs * 1000;
    const char *ca = bg_cli_val(a, "--cacert");
    if (ca != NULL && bg_strlcpy(c->cacert, ca, sizeof(c->cacert)) >= sizeof(c->cacert))
        return bg_cli_usage(a, "the --cacert path is too long");
    int rc = find_url(c, a);
    if (rc == BG_CLI_OK)
        rc = find_token(c, a);
    if (rc != BG_CLI_OK)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "branchgate %s: cannot initialise libcurl\n", a->cmd);
        return BG_CLI_FAIL;
    }
    c->curl_ready = true;
    return BG_CLI_OK;
}

void bg_cli_close(bg_cli *c)
{
    bg_secret_free(c->auth);
    c->auth = NULL;
    if (c->curl_ready)
        curl_global_cleanup();
    c->curl_ready = false;
}

/* ---- HTTP ---- */

bool bg_cli_escape(char *buf, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(buf);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
        if (n + (plain ? 1 : 3) >= cap) {
            buf[n] = '\0';
            return false;
        }
        if (plain) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    buf[n] = '\0';
    return true;
}

/* Length of "http[s]://authority" at the start of url (0 when url is
 * not an absolute http or https URL). */
static size_t origin_len(const char *url)
{
    size_t skip = strncasecmp(url, "http://", 7) == 0    ? 7
                  : strncasecmp(url, "https://", 8) == 0 ? 8
                                                         : 0;
    return skip == 0 ? 0 : skip + strcspn(url + skip, "/?#");
}

/* The URL to request: a path is appended to the base; an absolute URL
 * that the branch gave (tus_url, Location) keeps its path but goes to the
 * origin we were told to use, so the token never leaves for another host
 * and a branch whose branch.url is a public name stays reachable. */
static bool target_url(const bg_cli *c, const char *path, char *out, size_t cap)
{
    size_t ol = origin_len(path);
    if (ol > 0) {
        size_t bl = origin_len(c->base);
        return (size_t)snprintf(out, cap, "%.*s%s", (int)bl, c->base, path + ol) < cap;
    }
    return (size_t)snprintf(out, cap, "%s%s", c->base, path) < cap;
}

typedef struct xfer {
    bg_cli_resp *r;
    char *buf;
    size_t len;
    bool too_big;
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (x->len + n > BG_CLI_MAX_RESPONSE) {
        x->too_big = true;
        return 0; /* aborts the transfer */
    }
    x->buf = bg_xrealloc(x->buf, x->len + n + 1);
    memcpy(x->buf + x->len, ptr, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return n;
}

/* Copies the value of header line h into dst when its name is name. */
static void take_header(const char *h, size_t n, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(h, name, nl) != 0 || h[nl] != ':')
        return;
    const char *v = h + nl + 1;
    size_t vl = n - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl < cap) {
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    take_header(ptr, n, "location", x->r->location, sizeof(x->r->location));
    take_header(ptr, n, "upload-offset", x->r->upload_offset, sizeof(x->r->upload_offset));
    return n;
}

static void wipe_headers(struct curl_slist *h)
{
    for (; h != NULL; h = h->next)
        bg_sig_wipe(h->data, strlen(h->data));
}

static struct curl_slist *base_headers(const bg_cli *c, const char *const *extra)
{
    struct curl_slist *h = NULL;
    if (c->auth != NULL)
        h = curl_slist_append(h, c->auth);
    h = curl_slist_append(h, "Expect:");
    for (const char *const *e = extra; e != NULL && *e != NULL; e++)
        h = curl_slist_append(h, *e);
    return h;
}

/* Options every request of the CLI shares (see node/peer.c for the
 * branch's own peer client: TLS always verified, no redirects). */
static void common_setopt(const bg_cli *c, CURL *e, const char *url, struct curl_slist *h)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cacert[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "branchgate-cli/" BG_VERSION);
}

static void set_method(CURL *e, const char *method, const void *body, size_t len)
{
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL || strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
}

bg_err bg_cli_call(const bg_cli *c, const char *method, const char *path,
                   const char *const *headers, const void *body, size_t len, bg_cli_resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[4200];
    if (!target_url(c, path, url, sizeof(url))) {
        snprintf(r->error, sizeof(r->error), "the URL is too long");
        r->body = bg_xstrdup("");
        return BG_EINVAL;
    }
    xfer x = {.r = r};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = base_headers(c, headers);
    CURL *e = curl_easy_init();
    common_setopt(c, e, url, h);
    set_method(e, method, body, len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(e);
    bg_err out = BG_OK;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        out = x.too_big ? BG_ETOOBIG : rc == CURLE_OPERATION_TIMEDOUT ? BG_ETIMEOUT : BG_EPEER;
        if (x.too_big)
            snprintf(r->error, sizeof(r->error), "the answer is larger than %u bytes",
                     BG_CLI_MAX_RESPONSE);
        else
            snprintf(r->error, sizeof(r->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_easy_cleanup(e);
    wipe_headers(h);
    curl_slist_free_all(h);
    r->body = x.buf != NULL ? x.buf : bg_xstrdup("");
    r->len = x.len;
    return out;
}

void bg_cli_resp_free(bg_cli_resp *r)
{
    /* Answers may carry secrets (a new admin token, a webhook secret). */
    if (r->body != NULL)
        bg_sig_wipe(r->body, r->len);
    free(r->body);
    r->body = NULL;
}

void bg_cli_print_error(const bg_cli *c, const bg_cli_resp *r)
{
    if (r->status == 0) {
        fprintf(stderr, "branchgate %s: %s: %s\n", c->cmd, c->base, r->error);
        return;
    }
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    json_t *err = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *rid = json_string_value(json_object_get(err, "request_id"));
    if (code != NULL)
        fprintf(stderr, "branchgate %s: HTTP %ld %s: %s%s%s%s\n", c->cmd, r->status, code,
                msg ? msg : "", rid ? " (request id " : "", rid ? rid : "", rid ? ")" : "");
    else
        fprintf(stderr, "branchgate %s: HTTP %ld (%zu bytes, not a JSON error)\n", c->cmd,
                r->status, r->len);
    json_decref(j);
}

void bg_cli_print_raw(const bg_cli_resp *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

/* Sends text as a JSON body (NULL: none) and reads the answer. */
static int json_send(const bg_cli *c, const char *method, const char *path, const char *text,
                     size_t len, bg_cli_resp *r, json_t **out)
{
    static const char *const json_ct[] = {"Content-Type: application/json",
                                          "Accept: application/json", NULL};
    static const char *const no_ct[] = {"Content-Type:", "Accept: application/json", NULL};
    bg_cli_call(c, method, path, text ? json_ct : no_ct, text, len, r);
    if (r->status < 200 || r->status > 299) {
        bg_cli_print_error(c, r);
        return BG_CLI_FAIL;
    }
    if (out != NULL)
        *out = r->len > 0 ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    if (out != NULL && r->len > 0 && *out == NULL) {
        fprintf(stderr, "branchgate %s: the server's answer is not JSON\n", c->cmd);
        return BG_CLI_FAIL;
    }
    return BG_CLI_OK;
}

int bg_cli_json(const bg_cli *c, const char *method, const char *path, const json_t *body,
                bg_cli_resp *r, json_t **out)
{
    size_t len = 0;
    char *text = body != NULL ? bg_json_dump(body, &len) : NULL;
    int rc = json_send(c, method, path, text, len, r, out);
    free(text);
    return rc;
}

/* Appends s as JSON string content (without quotes) at dst; returns the
 * length written. dst must hold 6 * strlen(s) bytes. */
static size_t json_escape(char *dst, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(dst + n, "\\u00", 4);
            dst[n + 4] = hex[*p >> 4];
            dst[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            dst[n++] = (char)*p;
        }
    }
    return n;
}

int bg_cli_json_secret(const bg_cli *c, const char *method, const char *path, const json_t *body,
                       const char *key, const char *secret, bg_cli_resp *r, json_t **out)
{
    size_t dlen = 0;
    char *dump = bg_json_dump(body, &dlen); /* an object: "{...}" */
    size_t cap = dlen + strlen(key) + 6 * strlen(secret) + 16;
    char *text = bg_secret_alloc(cap);
    size_t n = (size_t)snprintf(text, cap, "{\"%s\":\"", key);
    n += json_escape(text + n, secret);
    text[n++] = '"';
    if (dlen > 2)
        text[n++] = ',';
    memcpy(text + n, dump + 1, dlen - 1); /* the rest, with its closing brace */
    n += dlen - 1;
    text[n] = '\0';
    free(dump);
    int rc = json_send(c, method, path, text, n, r, out);
    bg_secret_free(text); /* wipes */
    return rc;
}

/* ---- server-sent events ---- */

#define SSE_LINE_MAX (1u << 20)

typedef struct sse {
    bg_cli_sse_fn fn;
    void *ud;
    bool stopped; /* fn returned false */
    bool error_body;
    char *line;
    size_t line_len;
    char event[64];
    char *data;
    size_t data_len;
    long long id;
    CURL *easy;
    bg_cli_sse_result *res;
} sse;

static void sse_dispatch(sse *s)
{
    if (s->data != NULL || s->event[0]) {
        if (!s->fn(s->ud, s->id, s->event[0] ? s->event : "message", s->data ? s->data : ""))
            s->stopped = true;
    }
    free(s->data);
    s->data = NULL;
    s->data_len = 0;
    s->event[0] = '\0';
    s->id = -1;
}

static void sse_field(sse *s, const char *line)
{
    const char *colon = strchr(line, ':');
    size_t nlen = colon ? (size_t)(colon - line) : strlen(line);
    const char *v = colon ? colon + 1 : "";
    if (*v == ' ')
        v++;
    if (nlen == 5 && strncmp(line, "event", 5) == 0) {
        bg_strlcpy(s->event, v, sizeof(s->event));
    } else if (nlen == 4 && strncmp(line, "data", 4) == 0) {
        size_t vl = strlen(v);
        if (s->data_len + vl + 2 > SSE_LINE_MAX)
            return; /* an event this large is not ours: drop the excess */
        s->data = bg_xrealloc(s->data, s->data_len + vl + 2);
        if (s->data_len > 0)
            s->data[s->data_len++] = '\n';
        memcpy(s->data + s->data_len, v, vl + 1);
        s->data_len += vl;
    } else if (nlen == 2 && strncmp(line, "id", 2) == 0) {
        int64_t id;
        if (bg_parse_i64(v, strlen(v), 0, INT64_MAX, &id) == BG_OK)
            s->id = id;
    }
}

static void sse_line(sse *s)
{
    if (s->line_len > 0 && s->line[s->line_len - 1] == '\r')
        s->line[--s->line_len] = '\0';
    if (s->line_len == 0)
        sse_dispatch(s);
    else if (s->line[0] != ':')
        sse_field(s, s->line);
    s->line_len = 0;
}

static size_t on_sse(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sse *s = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    s->res->status = status;
    if (status < 200 || status > 299) {
        s->error_body = true; /* an error answer: keep (a capped part of) its body */
        size_t have = s->line_len, take = have + n > 65536 ? 65536 - have : n;
        memcpy(s->line + have, ptr, take);
        s->line_len += take;
        s->line[s->line_len] = '\0';
        return n;
    }
    for (size_t i = 0; i < n && !s->stopped; i++) {
        if (ptr[i] == '\n') {
            s->line[s->line_len] = '\0';
            sse_line(s);
        } else if (s->line_len < SSE_LINE_MAX) {
            s->line[s->line_len++] = ptr[i];
        }
    }
    return s->stopped ? 0 : n;
}

bg_err bg_cli_sse(const bg_cli *c, const char *path, long long last_id, long long deadline_ms,
                  bg_cli_sse_fn fn, void *ud, bg_cli_sse_result *res)
{
    memset(res, 0, sizeof(*res));
    char url[4200], idh[64];
    if (!target_url(c, path, url, sizeof(url)))
        return BG_EINVAL;
    snprintf(idh, sizeof(idh), "Last-Event-ID: %lld", last_id);
    const char *extra[] = {"Accept: text/event-stream", last_id >= 0 ? idh : NULL, NULL};
    struct curl_slist *h = base_headers(c, extra);
    sse s = {.fn = fn, .ud = ud, .id = -1, .res = res};
    s.line = bg_xmalloc(SSE_LINE_MAX + 1);
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *e = curl_easy_init();
    s.easy = e;
    common_setopt(c, e, url, h);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(deadline_ms > 0 ? deadline_ms : 0));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
    bg_err out = BG_OK;
    if (s.error_body)
        res->body = bg_xstrndup(s.line, s.line_len);
    else if (rc == CURLE_OK)
        res->ended = true;
    else if (!s.stopped)
        out = rc == CURLE_OPERATION_TIMEDOUT ? BG_ETIMEOUT : BG_EPEER;
    if (out != BG_OK)
        snprintf(res->error, sizeof(res->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    curl_easy_cleanup(e);
    wipe_headers(h);
    curl_slist_free_all(h);
    free(s.data);
    free(s.line);
    return out;
}
