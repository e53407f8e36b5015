#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long bg_th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bg_th_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *bin(void)
{
    const char *b = getenv("BRANCHGATE_BIN");
    if (b == NULL) {
        fprintf(stderr, "BRANCHGATE_BIN is not set (run through ctest)\n");
        exit(1);
    }
    return b;
}

void bg_th_tmpdir(char *out)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, 256, "%s/bgtest-XXXXXX", t && t[0] ? t : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- the secret scan (tests/integration/secret_scan.sh) ----
 * With $BG_TH_SECRETS_FILE set, every secret a test sends or receives
 * (bearer tokens, and JSON fields named like secrets in request and
 * response bodies) is appended to that file, one per line. With
 * $BG_TH_LOG_DIR set, bg_th_rmtree first copies every *.log under the tree
 * (the branches' stdout and stderr) into that directory. The scan, run by
 * ctest after the integration tests, searches those logs for every secret. */

void bg_th_note_secret(const char *s)
{
    const char *path = getenv("BG_TH_SECRETS_FILE");
    size_t n = s != NULL ? strlen(s) : 0;
    if (path == NULL || path[0] == '\0' || n < 8 || n > 4096 || strchr(s, '\n') != NULL)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        return;
    char *line = malloc(n + 1);
    memcpy(line, s, n);
    line[n] = '\n';
    ssize_t w = write(fd, line, n + 1); /* one write: lines stay whole across threads */
    (void)w;
    free(line);
    close(fd);
}

static bool secret_field(const char *key)
{
    static const char *const names[] = {"password", "api_key", "key", "parent_key", "secret",
                                        "webhook_secret", "token", "new_api_key", "shared_key",
                                        "access_token", "refresh_token"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

static void note_json_secrets(const json_t *j, int depth)
{
    if (depth > 32)
        return;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            if (json_is_string(v) && secret_field(k))
                bg_th_note_secret(json_string_value(v));
            else
                note_json_secrets(v, depth + 1);
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            note_json_secrets(json_array_get(j, i), depth + 1);
    }
}

static void note_body_secrets(const char *body, size_t len)
{
    if (getenv("BG_TH_SECRETS_FILE") == NULL || body == NULL || len == 0 || len > (1u << 20))
        return;
    json_t *j = json_loadb(body, len, 0, NULL);
    note_json_secrets(j, 0);
    json_decref(j);
}

static int keep_log(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    const char *dir = getenv("BG_TH_LOG_DIR");
    size_t n = strlen(path);
    if (type != FTW_F || n < 4 || strcmp(path + n - 4, ".log") != 0)
        return 0;
    static unsigned seq;
    char dst[600];
    snprintf(dst, sizeof(dst), "%s/%ld-%u-%s", dir, (long)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), strrchr(path, '/') + 1);
    size_t len = 0;
    char *data = bg_th_read_file(path, &len);
    FILE *out = data != NULL ? fopen(dst, "wb") : NULL;
    if (out != NULL) {
        fwrite(data, 1, len, out);
        fclose(out);
    }
    free(data);
    return 0;
}

void bg_th_rmtree(const char *dir)
{
    const char *logs = getenv("BG_TH_LOG_DIR");
    if (logs != NULL && logs[0] != '\0')
        nftw(dir, keep_log, 16, FTW_PHYS);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *bg_th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* fork + exec with stdout/stderr to log_path (appending). */
static pid_t spawn(const char *const *argv, const char *const *env, const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    for (const char *const *e = env; e && *e; e++)
        putenv((char *)*e);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int bg_th_start(bg_th_proc *p, const char *dir, const char *const *extra, const char *const *env)
{
    const char *argv[32] = {bin(), "serve", "--data", dir, "--listen", "127.0.0.1:0"};
    int n = 6;
    for (const char *const *a = extra; a && *a && n < 30; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    snprintf(p->log, sizeof(p->log), "%s.log", dir);
    char urlfile[320];
    snprintf(urlfile, sizeof(urlfile), "%s/listen.url", dir);
    unlink(urlfile); /* a stale one from a killed run must not be read */
    p->pid = spawn(argv, env, p->log);
    long long deadline = bg_th_now_ms() + 10000;
    while (bg_th_now_ms() < deadline) {
        char *u = bg_th_read_file(urlfile, NULL);
        if (u != NULL && strchr(u, '\n') != NULL) {
            trim(u);
            snprintf(p->url, sizeof(p->url), "%s", u);
            free(u);
            char tokfile[320];
            snprintf(tokfile, sizeof(tokfile), "%s/admin.token", dir);
            char *t = bg_th_read_file(tokfile, NULL);
            if (t != NULL) {
                trim(t);
                snprintf(p->token, sizeof(p->token), "%s", t);
                bg_th_note_secret(p->token);
                free(t);
            }
            return 0;
        }
        free(u);
        if (!bg_th_alive(p))
            return -1;
        bg_th_nap_ms(20);
    }
    bg_th_stop(p, SIGKILL, 2000);
    return -1;
}

bool bg_th_alive(const bg_th_proc *p)
{
    if (p->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        ((bg_th_proc *)p)->pid = -st - 1; /* remember the status, negative */
        return false;
    }
    return r == 0;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int bg_th_stop(bg_th_proc *p, int sig, int timeout_ms)
{
    if (p->pid < 0)
        return decode_status(-p->pid - 1);
    if (p->pid == 0)
        return -1;
    kill(p->pid, sig);
    long long deadline = bg_th_now_ms() + timeout_ms;
    int st;
    while (bg_th_now_ms() < deadline) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return decode_status(st);
        }
        bg_th_nap_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return -1;
}

int bg_th_run(const char *const *args, const char *const *env, char **out)
{
    char tmpl[] = "/tmp/bgrun-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -1;
    close(fd);
    const char *argv[32] = {bin()};
    int n = 1;
    for (const char *const *a = args; a && *a && n < 31; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    pid_t pid = spawn(argv, env, tmpl);
    int st;
    waitpid(pid, &st, 0);
    if (out != NULL)
        *out = bg_th_read_file(tmpl, NULL);
    unlink(tmpl);
    return decode_status(st);
}

typedef struct growbuf {
    char *p;
    size_t len;
} growbuf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    growbuf *b = ud;
    size_t n = size * nmemb;
    b->p = realloc(b->p, b->len + n + 1);
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

int bg_th_http(const char *method, const char *url, const char *token, const char *body,
               size_t len, const char *const *extra_headers, bool http2, bg_th_resp *r)
{
    memset(r, 0, sizeof(*r));
    bg_th_note_secret(token);
    note_body_secrets(body, len);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[8300];
    growbuf b = {calloc(1, 1), 0}, hb = {calloc(1, 1), 0};
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    for (const char *const *e = extra_headers; e && *e; e++)
        h = curl_slist_append(h, *e);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L); /* a HEAD answer's Content-Length has no body */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    if (http2)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->body = b.p;
    r->len = b.len;
    r->headers = hb.p;
    note_body_secrets(r->body, r->len);
    if (rc != CURLE_OK)
        fprintf(stderr, "http %s %s: %s\n", method, url, curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

int bg_th_get(const bg_th_proc *p, const char *path, const char *token, bg_th_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    return bg_th_http("GET", url, token, NULL, 0, NULL, false, r);
}

int bg_th_post_json(const bg_th_proc *p, const char *path, const char *token, const char *json,
                    bg_th_resp *r)
{
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    char url[512];
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    return bg_th_http("POST", url, token, json, strlen(json), ct, false, r);
}

int bg_th_send_json(const bg_th_proc *p, const char *method, const char *path, const char *token,
                    const char *json, bg_th_resp *r)
{
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    char url[512];
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    return bg_th_http(method, url, token, json, json ? strlen(json) : 0, json ? ct : NULL, false,
                      r);
}

long long bg_th_wait_field(const bg_th_proc *p, const char *path, const char *key,
                           const char *want, int deadline_ms)
{
    long long start = bg_th_now_ms();
    while (bg_th_now_ms() - start < deadline_ms) {
        bg_th_resp r;
        if (bg_th_get(p, path, p->token, &r) == 0) {
            json_t *j = bg_th_json(&r);
            const char *v = json_string_value(json_object_get(j, key));
            bool hit = v != NULL && strcmp(v, want) == 0;
            json_decref(j);
            bg_th_resp_free(&r);
            if (hit)
                return bg_th_now_ms() - start;
        }
        bg_th_nap_ms(20);
    }
    return -1;
}

json_t *bg_th_json(const bg_th_resp *r)
{
    if (r->body == NULL)
        return NULL;
    return json_loadb(r->body, r->len, 0, NULL);
}

bool bg_th_header(const bg_th_resp *r, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = (size_t)(line + llen - v);
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return true;
        }
        line = eol ? eol + 2 : line + llen;
    }
    return false;
}

void bg_th_resp_free(bg_th_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

bool bg_th_is_error(const bg_th_resp *r, long status, const char *code)
{
    if (r->status != status) {
        fprintf(stderr, "expected status %ld, got %ld: %s\n", status, r->status,
                r->body ? r->body : "");
        return false;
    }
    json_t *j = bg_th_json(r);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    const char *rid = json_string_value(json_object_get(json_object_get(j, "error"), "request_id"));
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    bool ok = c != NULL && strcmp(c, code) == 0 && rid != NULL && rid[0] && msg != NULL;
    if (!ok)
        fprintf(stderr, "expected error %s, got: %s\n", code, r->body ? r->body : "");
    json_decref(j);
    return ok;
}

bool bg_th_register(const bg_th_proc *at, const char *name, const char *url, const char *type,
                    const char *key)
{
    json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "branch_name", name, "branch_url", url,
                          "branch_type", type, "api_key", key);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    bg_th_resp r;
    bool ok = bg_th_post_json(at, "/api/v1/branches", at->token, body, &r) == 0 && r.status == 201;
    if (!ok)
        fprintf(stderr, "register %s: %ld %s\n", name, r.status, r.body ? r.body : "");
    bg_th_resp_free(&r);
    free(body);
    return ok;
}

/* ---- media pipeline helpers ---- */

void bg_th_b64(const void *data, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
}

long bg_th_b64_decode(const char *text, unsigned char *out, size_t cap)
{
    size_t len = strlen(text);
    if (len % 4 != 0 || len / 4 * 3 > cap)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    for (size_t i = len; i > 0 && text[i - 1] == '='; i--)
        n--;
    return n;
}

void bg_th_md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_Digest(data, len, d, &dl, EVP_md5(), NULL);
    for (unsigned i = 0; i < dl; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int bg_th_login(const bg_th_proc *p, const char *email, const char *password, const char *org,
                char *token, size_t cap)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "email", email, "password", password,
                          "organization_id", org);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    bg_th_resp r;
    int rc = bg_th_post_json(p, "/api/v1/auth/login", NULL, body, &r);
    free(body);
    json_t *j = rc == 0 && r.status == 200 ? bg_th_json(&r) : NULL;
    const char *t = json_string_value(json_object_get(j, "token"));
    int out = -1;
    if (t != NULL && strlen(t) < cap) {
        snprintf(token, cap, "%s", t);
        out = 0;
    } else {
        fprintf(stderr, "login %s: %ld %s\n", email, r.status, r.body ? r.body : "");
    }
    json_decref(j);
    bg_th_resp_free(&r);
    return out;
}

int bg_th_tus_create(const char *tus_url, const char *token, const char *assembly_id,
                     const char *filename, size_t length, char *loc, size_t cap)
{
    char b64a[200], b64f[400], md[700], len[64];
    if (strlen(assembly_id) > 140 || strlen(filename) > 280)
        return -1;
    bg_th_b64(assembly_id, strlen(assembly_id), b64a);
    bg_th_b64(filename, strlen(filename), b64f);
    snprintf(md, sizeof(md), "Upload-Metadata: assembly_id %s,filename %s", b64a, b64f);
    snprintf(len, sizeof(len), "Upload-Length: %zu", length);
    const char *h[] = {"Tus-Resumable: 1.0.0", len, md, NULL};
    bg_th_resp r;
    if (bg_th_http("POST", tus_url, token, NULL, 0, h, false, &r) != 0)
        return -1;
    int out = -1;
    if (r.status == 201 && bg_th_header(&r, "location", loc, cap))
        out = 0;
    else
        fprintf(stderr, "tus create at %s: %ld %s\n", tus_url, r.status, r.body ? r.body : "");
    bg_th_resp_free(&r);
    return out;
}

int bg_th_tus_send(const char *loc, const char *token, const void *data, size_t from, size_t to,
                   size_t chunk, int *patches)
{
    const char *bytes = data;
    for (size_t off = from; off < to;) {
        size_t n = to - off < chunk ? to - off : chunk;
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int dl = 0;
        char b64[64], sum[100], offh[64], want[32], got[32];
        EVP_Digest(bytes + off, n, d, &dl, EVP_md5(), NULL);
        bg_th_b64(d, dl, b64);
        snprintf(sum, sizeof(sum), "Upload-Checksum: md5 %s", b64);
        snprintf(offh, sizeof(offh), "Upload-Offset: %zu", off);
        const char *h[] = {"Tus-Resumable: 1.0.0", "Content-Type: application/offset+octet-stream",
                           offh, sum, NULL};
        bg_th_resp r;
        if (bg_th_http("PATCH", loc, token, bytes + off, n, h, false, &r) != 0)
            return -1;
        if (patches != NULL)
            (*patches)++;
        snprintf(want, sizeof(want), "%zu", off + n);
        bool ok = r.status == 204 && bg_th_header(&r, "upload-offset", got, sizeof(got)) &&
                  strcmp(got, want) == 0;
        if (!ok)
            fprintf(stderr, "tus PATCH %s at %zu (+%zu): %ld %s\n", loc, off, n, r.status,
                    r.body ? r.body : "");
        bg_th_resp_free(&r);
        if (!ok)
            return -1;
        off += n;
    }
    return 0;
}

int bg_th_tus_upload(const char *tus_url, const char *token, const char *assembly_id,
                     const char *filename, const void *data, size_t len, size_t chunk,
                     char *loc, size_t cap, int *patches)
{
    if (bg_th_tus_create(tus_url, token, assembly_id, filename, len, loc, cap) != 0)
        return -1;
    return bg_th_tus_send(loc, token, data, 0, len, chunk, patches);
}

/* ---- SSE client ---- */

#define SSE_RAW_MAX (1u << 20)

static void sse_dispatch(bg_th_sse *s)
{
    if (!s->have_cur)
        return;
    pthread_mutex_lock(&s->mu);
    s->ev = realloc(s->ev, (s->n + 1) * sizeof(*s->ev));
    s->ev[s->n++] = s->cur;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    memset(&s->cur, 0, sizeof(s->cur));
    s->cur.id = -1;
    s->have_cur = false;
}

/* One line of the stream (without its end of line), per the SSE spec. */
static void sse_line(bg_th_sse *s, const char *line, size_t len)
{
    if (len == 0) {
        sse_dispatch(s);
        return;
    }
    if (line[0] == ':') {
        pthread_mutex_lock(&s->mu);
        s->comments++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (!s->have_cur) {
        memset(&s->cur, 0, sizeof(s->cur));
        s->cur.id = -1;
    }
    if (flen == 2 && strncmp(line, "id", 2) == 0) {
        char num[32];
        snprintf(num, sizeof(num), "%.*s", (int)(vlen < 31 ? vlen : 31), v);
        s->cur.id = strtoll(num, NULL, 10);
        s->have_cur = true;
    } else if (flen == 5 && strncmp(line, "event", 5) == 0) {
        snprintf(s->cur.name, sizeof(s->cur.name), "%.*s", (int)vlen, v);
        s->have_cur = true;
    } else if (flen == 4 && strncmp(line, "data", 4) == 0) {
        size_t old = s->cur.data ? strlen(s->cur.data) : 0;
        s->cur.data = realloc(s->cur.data, old + vlen + 2);
        if (old > 0)
            s->cur.data[old++] = '\n';
        memcpy(s->cur.data + old, v, vlen);
        s->cur.data[old + vlen] = '\0';
        s->have_cur = true;
    }
}

static size_t sse_on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    bg_th_sse *s = ud;
    size_t n = size * nmemb;
    if (s->raw_len < SSE_RAW_MAX) {
        size_t k = s->raw_len + n > SSE_RAW_MAX ? SSE_RAW_MAX - s->raw_len : n;
        s->raw = realloc(s->raw, s->raw_len + k + 1);
        memcpy(s->raw + s->raw_len, ptr, k);
        s->raw_len += k;
        s->raw[s->raw_len] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        char c = ptr[i];
        if (c == '\n') {
            size_t l = s->line_len;
            if (l > 0 && s->line[l - 1] == '\r')
                l--;
            sse_line(s, s->line ? s->line : "", l);
            s->line_len = 0;
            if (s->max_events > 0 && s->n >= s->max_events) {
                s->hit_max = true;
                return 0; /* stops the transfer */
            }
            continue;
        }
        s->line = realloc(s->line, s->line_len + 2);
        s->line[s->line_len++] = c;
        s->line[s->line_len] = '\0';
    }
    return n;
}

static size_t sse_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    bg_th_sse *s = ud;
    size_t n = size * nmemb;
    if (n >= 13 && strncasecmp(ptr, "content-type:", 13) == 0) {
        size_t k = n - 13;
        const char *v = ptr + 13;
        while (k > 0 && *v == ' ')
            v++, k--;
        while (k > 0 && (v[k - 1] == '\r' || v[k - 1] == '\n'))
            k--;
        snprintf(s->content_type, sizeof(s->content_type), "%.*s", (int)k, v);
    }
    if (n > 9 && strncmp(ptr, "HTTP/", 5) == 0) {
        const char *sp = memchr(ptr, ' ', n);
        if (sp != NULL) {
            pthread_mutex_lock(&s->mu);
            s->status = strtol(sp + 1, NULL, 10);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n')) {
        /* The end of the headers of the answer. */
        pthread_mutex_lock(&s->mu);
        s->connected = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

/* Aborts the transfer once bg_th_sse_stop was called. */
static int sse_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    bg_th_sse *s = ud;
    return __atomic_load_n(&s->stop, __ATOMIC_SEQ_CST) ? 1 : 0;
}

static int sse_run(bg_th_sse *s)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char *auth = NULL;
    char lei[64];
    bg_th_note_secret(s->token);
    if (s->token != NULL && asprintf(&auth, "Authorization: Bearer %s", s->token) > 0)
        h = curl_slist_append(h, auth);
    if (s->last_event_id >= 0) {
        snprintf(lei, sizeof(lei), "Last-Event-ID: %lld", s->last_event_id);
        h = curl_slist_append(h, lei);
    }
    h = curl_slist_append(h, "Accept: text/event-stream");
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->deadline_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sse_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    if (s->http2)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    CURLcode rc = curl_easy_perform(c);
    long status = 0, version = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    if (s->line_len > 0) /* an unterminated last line */
        sse_line(s, s->line, s->line_len);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(auth);
    pthread_mutex_lock(&s->mu);
    s->status = status;
    s->http_version = version;
    s->ended = rc == CURLE_OK;
    s->stopped = rc == CURLE_ABORTED_BY_CALLBACK;
    s->running = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s->hit_max) &&
        rc != CURLE_OPERATION_TIMEDOUT && rc != CURLE_ABORTED_BY_CALLBACK)
        fprintf(stderr, "sse %s: %s\n", s->url, curl_easy_strerror(rc));
    return status != 0 ? 0 : -1;
}

static void sse_init(bg_th_sse *s, const char *url, const char *token, long long last_event_id,
                     size_t max_events, int deadline_ms)
{
    memset(s, 0, sizeof(*s));
    s->url = strdup(url);
    s->token = token ? strdup(token) : NULL;
    s->last_event_id = last_event_id;
    s->max_events = max_events;
    s->deadline_ms = deadline_ms;
    s->cur.id = -1;
    s->running = true;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

int bg_th_sse_collect(const char *url, const char *token, long long last_event_id,
                      size_t max_events, int deadline_ms, bg_th_sse *s)
{
    sse_init(s, url, token, last_event_id, max_events, deadline_ms);
    return sse_run(s);
}

static void *sse_thread(void *arg)
{
    sse_run(arg);
    return NULL;
}

int bg_th_sse_start(bg_th_sse *s, const char *url, const char *token, long long last_event_id,
                    size_t max_events, int deadline_ms)
{
    sse_init(s, url, token, last_event_id, max_events, deadline_ms);
    if (pthread_create(&s->thread, NULL, sse_thread, s) != 0)
        return -1;
    s->thread_started = true;
    return 0;
}

static void abs_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    long long ns = (long long)ts->tv_nsec + (long long)ms * 1000000LL;
    ts->tv_sec += (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
}

bool bg_th_sse_wait_connected(bg_th_sse *s, int deadline_ms)
{
    struct timespec ts;
    abs_deadline(&ts, deadline_ms);
    pthread_mutex_lock(&s->mu);
    while (!s->connected && s->running)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    bool ok = s->connected;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

bool bg_th_sse_wait_event(bg_th_sse *s, const char *name, int deadline_ms)
{
    struct timespec ts;
    abs_deadline(&ts, deadline_ms);
    pthread_mutex_lock(&s->mu);
    bool hit = false;
    for (;;) {
        for (size_t i = 0; i < s->n && !hit; i++)
            hit = strcmp(s->ev[i].name, name) == 0;
        if (hit || !s->running)
            break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    }
    for (size_t i = 0; i < s->n && !hit; i++)
        hit = strcmp(s->ev[i].name, name) == 0;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void bg_th_sse_join(bg_th_sse *s)
{
    if (s->thread_started) {
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
}

void bg_th_sse_free(bg_th_sse *s)
{
    if (s->url == NULL)
        return; /* never started, or freed */
    bg_th_sse_join(s);
    for (size_t i = 0; i < s->n; i++)
        free(s->ev[i].data);
    free(s->ev);
    free(s->cur.data);
    free(s->raw);
    free(s->line);
    free(s->url);
    free(s->token);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    memset(s, 0, sizeof(*s));
}

int bg_th_sse_collect_ex(const char *url, const char *token, long long last_event_id,
                         size_t max_events, int deadline_ms, bool http2, bg_th_sse *s)
{
    sse_init(s, url, token, last_event_id, max_events, deadline_ms);
    s->http2 = http2;
    return sse_run(s);
}

int bg_th_sse_start_ex(bg_th_sse *s, const char *url, const char *token, long long last_event_id,
                       size_t max_events, int deadline_ms, bool http2)
{
    sse_init(s, url, token, last_event_id, max_events, deadline_ms);
    s->http2 = http2;
    if (pthread_create(&s->thread, NULL, sse_thread, s) != 0)
        return -1;
    s->thread_started = true;
    return 0;
}

void bg_th_sse_stop(bg_th_sse *s)
{
    __atomic_store_n(&s->stop, true, __ATOMIC_SEQ_CST);
}

/* Events named name (any when NULL) so far; the caller holds s->mu. */
static size_t sse_count_locked(const bg_th_sse *s, const char *name)
{
    size_t got = 0;
    for (size_t i = 0; i < s->n; i++)
        got += name == NULL || strcmp(s->ev[i].name, name) == 0;
    return got;
}

bool bg_th_sse_wait_count(bg_th_sse *s, const char *name, size_t n, int deadline_ms)
{
    struct timespec ts;
    abs_deadline(&ts, deadline_ms);
    pthread_mutex_lock(&s->mu);
    while (sse_count_locked(s, name) < n && s->running)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    bool ok = sse_count_locked(s, name) >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

bool bg_th_sse_wait_comments(bg_th_sse *s, int n, int deadline_ms)
{
    struct timespec ts;
    abs_deadline(&ts, deadline_ms);
    pthread_mutex_lock(&s->mu);
    while (s->comments < n && s->running)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    bool ok = s->comments >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

int bg_th_sse_comments(bg_th_sse *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->comments;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- webhook receiver ---- */

bool bg_th_hook_header(const bg_th_hook_req *r, const char *name, char *buf, size_t cap)
{
    bg_th_resp tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.headers = r->headers;
    return bg_th_header(&tmp, name, buf, cap);
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one request from a connection; false on a broken one. */
static bool hook_read(int fd, bg_th_hook_req *q)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, head_end = 0;
    bool sent_continue = false;
    long long clen = -1;
    for (;;) {
        if (head_end == 0) {
            char *e = buf ? strstr(buf, "\r\n\r\n") : NULL;
            if (e != NULL) {
                head_end = (size_t)(e - buf) + 4;
                char *sp1 = strchr(buf, ' ');
                char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
                char *eol = strstr(buf, "\r\n");
                if (sp1 == NULL || sp2 == NULL || sp2 > eol) {
                    free(buf);
                    return false;
                }
                snprintf(q->method, sizeof(q->method), "%.*s", (int)(sp1 - buf), buf);
                snprintf(q->path, sizeof(q->path), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
                q->headers = strndup(eol + 2, (size_t)(e + 2 - (eol + 2)));
                char v[64];
                clen = bg_th_hook_header(q, "content-length", v, sizeof(v)) ? atoll(v) : 0;
                if (bg_th_hook_header(q, "expect", v, sizeof(v)) &&
                    strcasecmp(v, "100-continue") == 0 && !sent_continue) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    send_all(fd, cont, sizeof(cont) - 1);
                    sent_continue = true;
                }
            }
        }
        if (head_end > 0 && (long long)(len - head_end) >= clen) {
            q->body_len = (size_t)clen;
            q->body = malloc(q->body_len + 1);
            memcpy(q->body, buf + head_end, q->body_len);
            q->body[q->body_len] = '\0';
            free(buf);
            return true;
        }
        if (len + 4097 > cap) {
            cap = (len + 4097) * 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return false;
        }
        len += (size_t)r;
        buf[len] = '\0';
    }
}

static void hook_req_clear(bg_th_hook_req *q)
{
    free(q->headers);
    free(q->body);
    memset(q, 0, sizeof(*q));
}

static void *hooks_main(void *arg)
{
    bg_th_hooks *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        struct pollfd pfd = {h->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {5, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        bg_th_hook_req q;
        memset(&q, 0, sizeof(q));
        if (!hook_read(c, &q)) {
            hook_req_clear(&q);
            close(c);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        q.at_unix_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        char id[256] = "", oid[256];
        bg_th_hook_header(&q, "webhook-id", id, sizeof(id));
        pthread_mutex_lock(&h->mu);
        size_t seen = 0;
        for (size_t i = 0; i < h->n; i++) {
            if (!bg_th_hook_header(&h->reqs[i], "webhook-id", oid, sizeof(oid)))
                oid[0] = '\0';
            if (strcmp(h->reqs[i].path, q.path) == 0 && strcmp(oid, id) == 0)
                seen++;
        }
        pthread_mutex_unlock(&h->mu);
        int status = h->fn ? h->fn(&q, seen, h->ud) : 200;
        q.answered = status;
        char resp[200];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
        send_all(c, resp, (size_t)n);
        close(c);
        pthread_mutex_lock(&h->mu);
        h->reqs = realloc(h->reqs, (h->n + 1) * sizeof(*h->reqs));
        h->reqs[h->n++] = q;
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

int bg_th_hooks_start(bg_th_hooks *h, bg_th_hook_fn fn, void *ud)
{
    memset(h, 0, sizeof(*h));
    h->fn = fn;
    h->ud = ud;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(h->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(h->fd, 16) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&a, &al) != 0) {
        close(h->fd);
        return -1;
    }
    h->port = ntohs(a.sin_port);
    snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d", h->port);
    pthread_mutex_init(&h->mu, NULL);
    if (pthread_create(&h->thread, NULL, hooks_main, h) != 0) {
        close(h->fd);
        pthread_mutex_destroy(&h->mu);
        return -1;
    }
    return 0;
}

void bg_th_hooks_stop(bg_th_hooks *h)
{
    if (h->port == 0)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    close(h->fd);
    for (size_t i = 0; i < h->n; i++)
        hook_req_clear(&h->reqs[i]);
    free(h->reqs);
    pthread_mutex_destroy(&h->mu);
    memset(h, 0, sizeof(*h));
}

size_t bg_th_hooks_get(bg_th_hooks *h, const char *prefix, bg_th_hook_req **out)
{
    size_t n = 0;
    *out = NULL;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++) {
        const bg_th_hook_req *q = &h->reqs[i];
        if (strncmp(q->path, prefix, strlen(prefix)) != 0)
            continue;
        *out = realloc(*out, (n + 1) * sizeof(**out));
        bg_th_hook_req *c = &(*out)[n++];
        *c = *q;
        c->headers = strdup(q->headers);
        c->body = malloc(q->body_len + 1);
        memcpy(c->body, q->body, q->body_len + 1);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

void bg_th_hooks_free(bg_th_hook_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hook_req_clear(&reqs[i]);
    free(reqs);
}

/* ---- media fixtures and checks (tests/integration/robots_test.c) ---- */

#include <dirent.h>
#include <math.h>

int bg_th_exec(const char *const *argv, const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *paths[2] = {out_path, err_path};
        for (int k = 0; k < 2; k++) {
            if (paths[k] == NULL)
                continue;
            int fd = open(paths[k], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, k + 1);
                close(fd);
            }
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return decode_status(st);
}

bool bg_th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = len == 0 || fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

bool bg_th_copy_templates(const char *dir)
{
    const char *src = getenv("BRANCHGATE_TEMPLATES_DIR");
    if (src == NULL || mkdir(dir, 0700) != 0)
        return false;
    DIR *d = opendir(src);
    if (d == NULL)
        return false;
    struct dirent *de;
    bool ok = true;
    while (ok && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char from[1200], to[1200];
        snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
        size_t len;
        char *t = bg_th_read_file(from, &len);
        ok = t != NULL && bg_th_write_file(to, t, len);
        free(t);
    }
    closedir(d);
    return ok;
}

/* A temporary file name under $TMPDIR (or /tmp), created empty. */
static bool tmp_name(char *out, size_t cap, const char *what)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/bg%s-XXXXXX", t && t[0] ? t : "/tmp", what);
    int fd = mkstemp(out);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

json_t *bg_th_ffprobe(const char *path)
{
    char out[300];
    if (!tmp_name(out, sizeof(out), "probe"))
        return NULL;
    const char *argv[] = {"ffprobe", "-v", "error", "-show_format", "-show_streams",
                          "-of", "json", path, NULL};
    json_t *j = NULL;
    if (bg_th_exec(argv, out, "/dev/null") == 0)
        j = json_load_file(out, 0, NULL);
    unlink(out);
    return j;
}

json_t *bg_th_ffprobe_stream(const json_t *probe, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(probe, "streams"), i, s)
    {
        const char *t = json_string_value(json_object_get(s, "codec_type"));
        if (t != NULL && strcmp(t, type) == 0)
            return s;
    }
    return NULL;
}

double bg_th_ffprobe_duration(const json_t *probe)
{
    const json_t *f = json_object_get(probe, "format");
    const char *d = json_string_value(json_object_get(f, "duration"));
    return d != NULL ? strtod(d, NULL) : NAN;
}

double bg_th_ebur128_lufs(const char *path)
{
    char err[300];
    if (!tmp_name(err, sizeof(err), "ebur"))
        return NAN;
    const char *argv[] = {"ffmpeg", "-hide_banner", "-nostats", "-i", path, "-af",
                          "ebur128=peak=true", "-f", "null", "-", NULL};
    double v = NAN;
    char *log = NULL;
    if (bg_th_exec(argv, "/dev/null", err) == 0)
        log = bg_th_read_file(err, NULL);
    unlink(err);
    const char *sum = log != NULL ? strstr(log, "Summary:") : NULL;
    const char *i = sum != NULL ? strstr(sum, "I:") : NULL;
    if (i != NULL) {
        char *end = NULL;
        double x = strtod(i + 2, &end);
        if (end != i + 2)
            v = x;
    }
    free(log);
    return v;
}

void bg_th_print_log(const bg_th_proc *p)
{
    char *log = bg_th_read_file(p->log, NULL);
    size_t n = log ? strlen(log) : 0;
    fprintf(stderr, "---- %s (last 6000 bytes) ----\n%s\n", p->log,
            log ? log + (n > 6000 ? n - 6000 : 0) : "");
    free(log);
}
