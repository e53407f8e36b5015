#define _GNU_SOURCE
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

void bg_th_rmtree(const char *dir)
{
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
