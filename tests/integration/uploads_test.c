/* tus 1.0 uploads (docs/media.md, DESIGN.md section 7) against real
 * branchgate processes: OPTIONS discovery without a token; an interrupted
 * upload resumed from the offset HEAD reports, byte for byte; checksums
 * (md5, sha1, sha256: 460 and nothing stored on a mismatch); the protocol
 * errors (409, 412, 415, 413 three ways); creation-with-upload of a whole
 * file that then completes; termination; expiration by the sweeper (a
 * second process with uploads.expire_after_s = 2); file names sanitised
 * inside the branch's upload directory; uploads isolated between
 * organisations; `branchgate cleanup`; and a clean shutdown (no sanitizer
 * report in the logs of a -DBG_SANITIZE=ON build).
 *
 * Media fixtures are made at test time: a sine wav from ffmpeg for the
 * uploads that must complete, deterministic pseudo-random bytes for the
 * others (the `probe` template fails those with INVALID_INPUT, after the
 * upload, which is all these tests need). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHUNK 65536      /* uploads.chunk_max_bytes of both processes */
#define MAX_SIZE 1048576 /* uploads.max_size */
#define TUS_CT "Content-Type: application/offset+octet-stream"

static const char *const env[] = {"BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
                                  "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
                                  "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=65536",
                                  "BRANCHGATE_UPLOADS_MAX_SIZE=1048576",
                                  "BRANCHGATE_JOBS_WORKERS=2",
                                  NULL};

static const char *const expiring_env[] = {
    "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=65536", "BRANCHGATE_UPLOADS_MAX_SIZE=1048576",
    "BRANCHGATE_UPLOADS_EXPIRE_AFTER_S=2", "BRANCHGATE_JOBS_WORKERS=1", NULL};

static struct {
    char root[256];
    bg_th_proc p;   /* the main process, data dir ROOT/main */
    bg_th_proc exp; /* expire_after_s = 2, data dir ROOT/exp (test 7 only) */
    char *wav2;     /* 2 s sine wav (fits in one chunk) */
    size_t wav2_len;
    char *wav10; /* 10 s sine wav (three chunks) */
    size_t wav10_len;
} T;

/* ---- bytes, digests, base64 ---- */

/* Deterministic pseudo-random bytes: every test has its own seed, so the
 * announced md5s (and so the assembly ids) of two tests never collide. */
static char *pseudo_random(size_t n, uint64_t seed)
{
    char *b = malloc(n ? n : 1);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (char)(x >> 24);
    }
    return b;
}

/* Raw digest of data with algo ("md5", "sha1", "sha256"); its size. */
static unsigned digest(const char *algo, const void *data, size_t len, unsigned char *out)
{
    unsigned n = 0;
    assert_int_equal(EVP_Digest(data, len, out, &n, EVP_get_digestbyname(algo), NULL), 1);
    return n;
}

static void md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = digest("md5", data, len, d);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Standard padded base64 into out (4 * ceil(len / 3) + 1 bytes). */
static void b64(const void *data, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
}

/* "Upload-Checksum: ALGO <base64 digest of data>". */
static void checksum_header(const char *algo, const void *data, size_t len, char *out, size_t cap)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    char enc[128];
    b64(d, digest(algo, data, len, d), enc);
    snprintf(out, cap, "Upload-Checksum: %s %s", algo, enc);
}

/* Upload-Metadata value for an assembly and a raw file name (which may
 * hold a NUL, hence the length). */
static void metadata(const char *assembly_id, const char *name, size_t name_len, char *out,
                     size_t cap)
{
    char a[200], f[1200];
    b64(assembly_id, strlen(assembly_id), a);
    b64(name, name_len, f);
    snprintf(out, cap, "assembly_id %s,filename %s", a, f);
}

/* ---- files ---- */

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Number of entries of a directory (0 when it does not exist). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/* Where an upload's bytes live: DATA/uploads/main/users/USER/ID[/NAME]. */
static void upload_path(const bg_th_proc *p, const char *user, const char *id, const char *name,
                        char *out, size_t cap)
{
    snprintf(out, cap, "%s/uploads/main/users/%s/%s%s%s", p->dir, user, id, name ? "/" : "",
             name ? name : "");
}

/* Whether the file at path holds exactly data. */
static bool file_equals(const char *path, const void *data, size_t len)
{
    size_t n = 0;
    char *got = bg_th_read_file(path, &n);
    bool ok = got != NULL && n == len && memcmp(got, data, len) == 0;
    if (!ok)
        fprintf(stderr, "%s: %zu bytes%s, want %zu bytes\n", path, n,
                got == NULL ? " (missing)"
                : n == len  ? " that differ"
                            : "",
                len);
    free(got);
    return ok;
}

/* ---- HTTP ---- */

static json_t *must(const bg_th_proc *p, const char *method, const char *path, const char *token,
                    const char *json, long want)
{
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    char url[512];
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    bg_th_resp r;
    assert_int_equal(
        bg_th_http(method, url, token, json, json ? strlen(json) : 0, json ? ct : NULL, false, &r),
        0);
    if (r.status != want)
        fprintf(stderr, "%s %s: want %ld, got %ld: %s\n", method, path, want, r.status,
                r.body ? r.body : "");
    assert_int_equal(r.status, want);
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    return j;
}

/* A tus request to an absolute URL. version: the Tus-Resumable value, or
 * NULL to leave the header out. extra: more "Name: value" headers. */
static void tus(const char *method, const char *url, const char *token, const char *version,
                const char *const *extra, const void *body, size_t len, bg_th_resp *r)
{
    const char *h[16];
    char tv[64];
    size_t n = 0;
    if (version != NULL) {
        snprintf(tv, sizeof(tv), "Tus-Resumable: %s", version);
        h[n++] = tv;
    }
    for (const char *const *e = extra; e && *e && n < 15; e++)
        h[n++] = *e;
    h[n] = NULL;
    assert_int_equal(bg_th_http(method, url, token, body, len, h, false, r), 0);
}

/* Whether a tus answer is the JSON error shape with status and code (code
 * NULL: any code) and carries Tus-Resumable. Prints why not. */
static bool tus_error(const bg_th_resp *r, long status, const char *code)
{
    bool ok;
    if (code != NULL) {
        ok = bg_th_is_error(r, status, code);
    } else {
        json_t *j = bg_th_json(r);
        json_t *e = json_object_get(j, "error");
        ok = r->status == status && json_string_value(json_object_get(e, "code")) != NULL &&
             json_string_value(json_object_get(e, "message")) != NULL &&
             json_string_value(json_object_get(e, "request_id")) != NULL;
        if (!ok)
            fprintf(stderr, "expected a %ld error, got %ld: %s\n", status, r->status,
                    r->body ? r->body : "");
        json_decref(j);
    }
    char v[32];
    if (!bg_th_header(r, "tus-resumable", v, sizeof(v)) || strcmp(v, "1.0.0") != 0) {
        fprintf(stderr, "the %ld answer has no Tus-Resumable: 1.0.0\n", r->status);
        ok = false;
    }
    return ok;
}

static void tus_url(const bg_th_proc *p, char *out, size_t cap)
{
    snprintf(out, cap, "%s/api/v1/uploads/", p->url);
}

/* POST /api/v1/assemblies (template probe) with files; the id. Checks the
 * answer's tus_url and state. */
static void new_assembly(const bg_th_proc *p, const char *token, json_t *files, char id[65])
{
    json_t *b = json_pack("{s:s,s:o}", "template_id", "probe", "files", files);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    json_t *j = must(p, "POST", "/api/v1/assemblies", token, body, 201);
    free(body);
    char want_tus[300];
    tus_url(p, want_tus, sizeof(want_tus));
    const char *aid = json_string_value(json_object_get(j, "assembly_id"));
    const char *tu = json_string_value(json_object_get(j, "tus_url"));
    const char *ok = json_string_value(json_object_get(j, "ok"));
    assert_non_null(aid);
    assert_int_equal(strlen(aid), 64);
    assert_non_null(tu);
    assert_string_equal(tu, want_tus);
    assert_non_null(ok);
    assert_string_equal(ok, "ASSEMBLY_UPLOADING");
    snprintf(id, 65, "%s", aid);
    json_decref(j);
}

/* One file entry {"name","size"[,"md5"]}. */
static json_t *file_entry(const char *name, size_t size, const char *md5)
{
    json_t *f = json_pack("{s:s,s:I}", "name", name, "size", (json_int_t)size);
    if (md5 != NULL)
        json_object_set_new(f, "md5", json_string(md5));
    return f;
}

/* POST at tus_url: Upload-Length, Upload-Metadata, the optional first
 * bytes (as application/offset+octet-stream) and extra headers. Returns
 * the status; on 201 checks Location and fills loc and id. r, when not
 * NULL, keeps the answer (free it). */
static long create_upload(const bg_th_proc *p, const char *token, const char *md, long long length,
                          const void *body, size_t blen, const char *const *extra, char loc[300],
                          char id[33], bg_th_resp *keep)
{
    char url[300], ul[64], mdh[2400];
    tus_url(p, url, sizeof(url));
    snprintf(ul, sizeof(ul), "Upload-Length: %lld", length);
    snprintf(mdh, sizeof(mdh), "Upload-Metadata: %s", md);
    const char *h[12] = {ul, mdh};
    size_t n = 2;
    if (body != NULL)
        h[n++] = TUS_CT;
    for (const char *const *e = extra; e && *e && n < 11; e++)
        h[n++] = *e;
    h[n] = NULL;
    bg_th_resp r;
    tus("POST", url, token, "1.0.0", h, body, blen, &r);
    long status = r.status;
    if (status == 201) {
        char l[300];
        assert_true(bg_th_header(&r, "location", l, sizeof(l)));
        /* Absolute, under this process's tus endpoint, a 32-hex id. */
        assert_true(strncmp(l, url, strlen(url)) == 0);
        const char *tail = l + strlen(url);
        assert_int_equal(strlen(tail), 32);
        assert_int_equal(strspn(tail, "0123456789abcdef"), 32);
        if (loc != NULL)
            snprintf(loc, 300, "%s", l);
        if (id != NULL)
            snprintf(id, 33, "%s", tail);
    } else if (keep == NULL) {
        fprintf(stderr, "create upload: %ld %s\n", status, r.body ? r.body : "");
    }
    if (keep != NULL)
        *keep = r;
    else
        bg_th_resp_free(&r);
    return status;
}

/* Same, for the file name as a C string; asserts 201. */
static void must_create(const bg_th_proc *p, const char *token, const char *assembly_id,
                        const char *name, long long length, const void *body, size_t blen,
                        char loc[300], char id[33])
{
    char md[2000];
    metadata(assembly_id, name, strlen(name), md, sizeof(md));
    assert_int_equal(create_upload(p, token, md, length, body, blen, NULL, loc, id, NULL), 201);
}

/* PATCH len bytes at offset, optionally with an Upload-Checksum header.
 * Returns the status; r keeps the answer when not NULL. */
static long patch(const char *loc, const char *token, long long offset, const void *data,
                  size_t len, const char *checksum, bg_th_resp *keep)
{
    char off[64];
    snprintf(off, sizeof(off), "Upload-Offset: %lld", offset);
    const char *h[] = {off, TUS_CT, checksum, NULL};
    bg_th_resp r;
    tus("PATCH", loc, token, "1.0.0", h, data, len, &r);
    long status = r.status;
    if (status == 204) {
        char got[32], want[32];
        snprintf(want, sizeof(want), "%lld", offset + (long long)len);
        assert_true(bg_th_header(&r, "upload-offset", got, sizeof(got)));
        assert_string_equal(got, want);
    }
    if (keep != NULL)
        *keep = r;
    else
        bg_th_resp_free(&r);
    return status;
}

/* PATCHes data[from..len) in chunks of at most CHUNK; asserts every 204. */
static void patch_rest(const char *loc, const char *token, const char *data, size_t from,
                       size_t len)
{
    while (from < len) {
        size_t n = len - from < CHUNK ? len - from : CHUNK;
        assert_int_equal(patch(loc, token, (long long)from, data + from, n, NULL, NULL), 204);
        from += n;
    }
}

/* libcurl's header callback: appends to a malloc'ed string. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    bg_th_resp *r = ud;
    size_t n = size * nmemb;
    size_t have = r->headers ? strlen(r->headers) : 0;
    r->headers = realloc(r->headers, have + n + 1);
    memcpy(r->headers + have, ptr, n);
    r->headers[have + n] = '\0';
    return n;
}

/* HEAD as a tus client sends it (libcurl with CURLOPT_NOBODY: it reads no
 * body, whatever Content-Length says). version: the Tus-Resumable value
 * (NULL: none). Returns the status, or -1 on a transport error (an
 * HTTP/2 stream reset, say); the offset is -1 without the header. keep,
 * when not NULL, gets the answer (headers only; free it). */
static long head_req(const char *url, const char *token, const char *version, bool http2,
                     long long *offset, bg_th_resp *keep)
{
    bg_th_resp r;
    memset(&r, 0, sizeof(r));
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char *auth = NULL, tv[64];
    if (token != NULL && asprintf(&auth, "Authorization: Bearer %s", token) > 0)
        h = curl_slist_append(h, auth);
    if (version != NULL) {
        snprintf(tv, sizeof(tv), "Tus-Resumable: %s", version);
        h = curl_slist_append(h, tv);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (http2)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    else
        fprintf(stderr, "HEAD %s%s: %s\n", url, http2 ? " (HTTP/2)" : "", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(auth);
    char v[32];
    if (offset != NULL)
        *offset = bg_th_header(&r, "upload-offset", v, sizeof(v)) ? strtoll(v, NULL, 10) : -1;
    long status = rc == CURLE_OK ? r.status : -1;
    if (keep != NULL)
        *keep = r;
    else
        bg_th_resp_free(&r);
    return status;
}

static long head(const char *loc, const char *token, long long *offset)
{
    return head_req(loc, token, "1.0.0", false, offset, NULL);
}

/* A TCP connection to the host and port of an http:// URL; *path points
 * into url at the path. */
static int connect_to(const char *url, const char **path, char host[64], int *port)
{
    assert_int_equal(sscanf(url, "http://%63[^:]:%d", host, port), 2);
    *path = strchr(url + strlen("http://"), '/');
    assert_non_null(*path);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads until the peer closes (deadline 5 s) into a malloc'ed string. */
static char *read_to_close(int fd, size_t *len)
{
    struct timeval tv = {0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long long end = bg_th_now_ms() + 5000;
    size_t n = 0;
    char *buf = malloc(65536 + 1);
    bool closed = false;
    while (!closed && bg_th_now_ms() < end && n < 65536) {
        ssize_t r = recv(fd, buf + n, 65536 - n, 0);
        if (r > 0)
            n += (size_t)r;
        closed = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    buf[n] = '\0';
    *len = closed ? n : (size_t)-1;
    return buf;
}

/* Whether a HEAD answer (Tus-Resumable: version, NULL: none) leaves an
 * HTTP/1.1 keep-alive connection usable: a GET /healthz sent after it on
 * the same connection must get its own answer, right after the HEAD
 * answer's headers. A body sent with a HEAD answer (RFC 9110 9.3.2
 * forbids it) is read by the client as the start of the next answer. */
static bool head_keeps_connection(const char *url, const char *token, const char *version)
{
    const char *path;
    char host[64];
    int port;
    int fd = connect_to(url, &path, host, &port);
    char *req = NULL;
    char auth[2048] = "", tv[64] = "";
    if (token != NULL)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    if (version != NULL)
        snprintf(tv, sizeof(tv), "Tus-Resumable: %s\r\n", version);
    int n = asprintf(&req,
                     "HEAD %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                     path, host, port, auth, tv, host, port);
    assert_true(n > 0);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    free(req);
    size_t len;
    char *got = read_to_close(fd, &len);
    close(fd);
    const char *eoh = strstr(got, "\r\n\r\n");
    bool ok = len != (size_t)-1 && eoh != NULL && strncmp(eoh + 4, "HTTP/1.1 200", 12) == 0 &&
              strstr(eoh + 4, "\"status\":\"ok\"") != NULL;
    if (!ok)
        fprintf(stderr, "after HEAD %s (Tus-Resumable %s) the connection read:\n%.600s\n", url,
                version ? version : "none", got);
    free(got);
    return ok;
}

static long long head_offset(const char *loc, const char *token)
{
    long long off;
    long st = head(loc, token, &off);
    if (st != 200)
        fprintf(stderr, "HEAD %s: %ld\n", loc, st);
    assert_int_equal(st, 200);
    return off;
}

/* The status JSON of an assembly. */
static json_t *assembly(const bg_th_proc *p, const char *token, const char *id)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    return must(p, "GET", path, token, NULL, 200);
}

static const char *ok_of(json_t *status)
{
    const char *ok = json_string_value(json_object_get(status, "ok"));
    return ok ? ok : "";
}

/* Polls the status JSON until `ok` is want, or (want NULL) until the
 * assembly has finished: completed, canceled or failed. NULL at the
 * deadline, after printing the last answer. */
static json_t *wait_assembly(const bg_th_proc *p, const char *token, const char *id,
                             const char *want, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    for (;;) {
        json_t *s = assembly(p, token, id);
        const char *ok = ok_of(s);
        bool done = want != NULL ? strcmp(ok, want) == 0
                                 : json_object_get(s, "error") != NULL ||
                                       strcmp(ok, "ASSEMBLY_COMPLETED") == 0 ||
                                       strcmp(ok, "ASSEMBLY_CANCELED") == 0;
        if (done)
            return s;
        if (bg_th_now_ms() > end) {
            char *d = json_dumps(s, JSON_COMPACT);
            fprintf(stderr, "assembly %s never reached %s: %s\n", id, want ? want : "its end", d);
            free(d);
            json_decref(s);
            return NULL;
        }
        json_decref(s);
        bg_th_nap_ms(50);
    }
}

/* ---- a PATCH whose connection is lost mid-body ---- */

/* Sends the headers of a PATCH of `len` bytes at offset, then only the
 * first `sent` bytes, then closes the sending side, and waits (deadline
 * 5 s) until the server has closed the connection too, so whatever it
 * makes of the broken request is done before the caller looks. */
static void lost_patch(const char *loc, const char *token, long long offset, const char *data,
                       size_t len, size_t sent)
{
    const char *path;
    char host[64];
    int port;
    int fd = connect_to(loc, &path, host, &port);
    char *req = NULL;
    int n = asprintf(&req,
                     "PATCH %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Tus-Resumable: 1.0.0\r\nUpload-Offset: %lld\r\n%s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, host, port, token, offset, TUS_CT, len);
    assert_true(n > 0);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    free(req);
    for (size_t at = 0; at < sent;) {
        ssize_t w = send(fd, data + at, sent - at, MSG_NOSIGNAL);
        assert_true(w > 0);
        at += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got_len;
    free(read_to_close(fd, &got_len));
    close(fd);
    assert_true(got_len != (size_t)-1);
}

/* ---- processes ---- */

/* A sine wav of `seconds` made by ffmpeg; NULL when that fails. */
static char *make_wav(int seconds, size_t *len)
{
    char path[320], cmd[800];
    snprintf(path, sizeof(path), "%s/sine%d.wav", T.root, seconds);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "
             "sine=frequency=440:sample_rate=8000 -t %d -y '%s'",
             seconds, path);
    if (system(cmd) != 0)
        return NULL;
    return bg_th_read_file(path, len);
}

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    T.wav2 = make_wav(2, &T.wav2_len);
    T.wav10 = make_wav(10, &T.wav10_len);
    if (T.wav2 == NULL || T.wav10 == NULL || T.wav2_len > CHUNK || T.wav10_len <= 2 * CHUNK ||
        T.wav10_len > MAX_SIZE) {
        fprintf(stderr, "cannot make the wav fixtures with ffmpeg\n");
        return -1;
    }
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/main", T.root);
    if (bg_th_start(&T.p, dir, NULL, env) != 0) {
        fprintf(stderr, "branchgate did not start; see %s\n", T.p.log);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (T.p.pid > 0)
        bg_th_stop(&T.p, SIGKILL, 5000);
    if (T.exp.pid > 0)
        bg_th_stop(&T.exp, SIGKILL, 5000);
    free(T.wav2);
    free(T.wav10);
    if (getenv("BG_TEST_KEEP") == NULL)
        bg_th_rmtree(T.root);
    else
        fprintf(stderr, "kept %s\n", T.root);
    return 0;
}

/* ---- 1. discovery ---- */

/* Whether a comma-separated header value lists every item of want. */
static bool lists_all(const char *value, const char *const *want)
{
    for (const char *const *w = want; *w; w++) {
        bool found = false;
        const char *p = value;
        while (!found && *p) {
            while (*p == ' ' || *p == ',')
                p++;
            size_t n = strcspn(p, ", ");
            found = n == strlen(*w) && strncmp(p, *w, n) == 0;
            p += n;
        }
        if (!found) {
            fprintf(stderr, "'%s' does not list %s\n", value, *w);
            return false;
        }
    }
    return true;
}

static void test_options(void **state)
{
    (void)state;
    char url[300], v[200];
    tus_url(&T.p, url, sizeof(url));
    static const char *const exts[] = {"creation",    "creation-with-upload", "checksum",
                                       "termination", "expiration",           NULL};
    static const char *const algos[] = {"md5", "sha1", "sha256", NULL};
    static const char *const versions[] = {"1.0.0", NULL};
    /* No token and no Tus-Resumable: OPTIONS is how a client discovers
     * the server before it knows either. */
    const char *paths[] = {url, NULL};
    char with_id[340];
    snprintf(with_id, sizeof(with_id), "%s0123456789abcdef0123456789abcdef", url);
    paths[1] = with_id;
    for (size_t i = 0; i < 2; i++) {
        bg_th_resp r;
        tus("OPTIONS", paths[i], NULL, NULL, NULL, NULL, 0, &r);
        if (r.status != 204)
            fprintf(stderr, "OPTIONS %s: %ld %s\n", paths[i], r.status, r.body);
        assert_int_equal(r.status, 204);
        assert_true(bg_th_header(&r, "tus-resumable", v, sizeof(v)));
        assert_string_equal(v, "1.0.0");
        assert_true(bg_th_header(&r, "tus-version", v, sizeof(v)));
        assert_true(lists_all(v, versions));
        assert_true(bg_th_header(&r, "tus-extension", v, sizeof(v)));
        assert_true(lists_all(v, exts));
        assert_true(bg_th_header(&r, "tus-max-size", v, sizeof(v)));
        assert_string_equal(v, "1048576");
        assert_true(bg_th_header(&r, "tus-checksum-algorithm", v, sizeof(v)));
        assert_true(lists_all(v, algos));
        bg_th_resp_free(&r);
    }
    /* Everything else needs a user: POST without a token is 401. */
    bg_th_resp r;
    const char *h[] = {"Upload-Length: 10", "Upload-Metadata: filename eA==", NULL};
    tus("POST", url, NULL, "1.0.0", h, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    bg_th_resp_free(&r);
}

/* ---- 2. an interrupted upload resumes ---- */

static void test_resume_after_lost_connection(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    const char *src = T.wav10;
    size_t len = T.wav10_len;
    char md5[33], aid[65], loc[300], id[33];
    md5_hex(src, len, md5);
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("tone.wav", len, md5)), aid);
    must_create(&T.p, tok, aid, "tone.wav", (long long)len, NULL, 0, loc, id);
    {
        /* HEAD tells everything a client needs to resume. */
        bg_th_resp r;
        char v[2000], md[2000], want[32];
        assert_int_equal(head_req(loc, tok, "1.0.0", false, NULL, &r), 200);
        assert_true(bg_th_header(&r, "upload-offset", v, sizeof(v)));
        assert_string_equal(v, "0");
        snprintf(want, sizeof(want), "%zu", len);
        assert_true(bg_th_header(&r, "upload-length", v, sizeof(v)));
        assert_string_equal(v, want);
        metadata(aid, "tone.wav", 8, md, sizeof(md));
        assert_true(bg_th_header(&r, "upload-metadata", v, sizeof(v)));
        assert_string_equal(v, md);
        assert_true(bg_th_header(&r, "cache-control", v, sizeof(v)));
        assert_string_equal(v, "no-store");
        assert_true(bg_th_header(&r, "tus-resumable", v, sizeof(v)));
        assert_string_equal(v, "1.0.0");
        assert_true(bg_th_header(&r, "upload-expires", v, sizeof(v)));
        bg_th_resp_free(&r);
    }

    /* The first chunk arrives. */
    assert_int_equal(patch(loc, tok, 0, src, CHUNK, NULL, NULL), 204);
    /* The second is cut off mid-body: the server never saw a whole chunk,
     * so nothing of it counts. */
    lost_patch(loc, tok, CHUNK, src + CHUNK, CHUNK, CHUNK / 2);

    /* The client comes back and asks where to go on. */
    long long off = head_offset(loc, tok);
    assert_int_equal(off, CHUNK);
    char path[600];
    upload_path(&T.p, "anonymous", id, "tone.wav", path, sizeof(path));
    assert_int_equal(file_size(path), CHUNK);
    json_t *s = assembly(&T.p, tok, aid);
    assert_string_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    assert_int_equal(json_integer_value(json_object_get(s, "bytes_received")), CHUNK);
    json_decref(s);

    /* From there, the rest. */
    patch_rest(loc, tok, src, (size_t)off, len);
    /* The last offset and the state change share a transaction: no wait. */
    s = assembly(&T.p, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    json_decref(s);
    assert_true(file_equals(path, src, len));
    assert_int_equal(head_offset(loc, tok), (long long)len);

    /* The bytes were whole: the md5 the server computed across the chunks
     * is the announced one, and the probe reads the wav. */
    s = wait_assembly(&T.p, tok, aid, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(s);
    json_t *u = json_array_get(json_object_get(s, "uploads"), 0);
    assert_int_equal(json_array_size(json_object_get(s, "uploads")), 1);
    assert_string_equal(json_string_value(json_object_get(u, "md5hash")), md5);
    assert_int_equal(json_integer_value(json_object_get(u, "size")), len);
    assert_int_equal(json_integer_value(json_object_get(s, "bytes_received")), len);
    json_decref(s);
}

/* ---- 3. checksums ---- */

static void test_checksums(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    const size_t part = 1000;
    char *src = pseudo_random(3 * part, 3);
    char aid[65], loc[300], id[33], path[600], h[200];
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("sums.bin", 3 * part, NULL)), aid);

    /* creation-with-upload with a wrong checksum: 460, no upload at all. */
    char users[400];
    snprintf(users, sizeof(users), "%s/uploads/main/users/anonymous", T.p.dir);
    int before = count_entries(users);
    char md[2000];
    metadata(aid, "sums.bin", 8, md, sizeof(md));
    checksum_header("sha256", src + 1, part, h, sizeof(h));
    const char *bad_first[] = {h, NULL};
    bg_th_resp r;
    assert_int_equal(create_upload(&T.p, tok, md, 3 * part, src, part, bad_first, NULL, NULL, &r),
                     460);
    assert_true(tus_error(&r, 460, "CHECKSUM_MISMATCH"));
    bg_th_resp_free(&r);
    assert_int_equal(count_entries(users), before);

    must_create(&T.p, tok, aid, "sums.bin", 3 * part, NULL, 0, loc, id);
    upload_path(&T.p, "anonymous", id, "sums.bin", path, sizeof(path));
    static const char *const algos[] = {"md5", "sha1", "sha256"};
    for (size_t i = 0; i < 3; i++) {
        const char *chunk = src + i * part;
        long long at = (long long)(i * part);
        /* The digest of other bytes (one byte off), in the right form. */
        char *other = malloc(part);
        memcpy(other, chunk, part);
        other[part / 2] ^= 0x01;
        checksum_header(algos[i], other, part, h, sizeof(h));
        free(other);
        assert_int_equal(patch(loc, tok, at, chunk, part, h, &r), 460);
        if (!tus_error(&r, 460, "CHECKSUM_MISMATCH"))
            fail_msg("%s mismatch", algos[i]);
        bg_th_resp_free(&r);
        assert_int_equal(head_offset(loc, tok), at);
        assert_int_equal(file_size(path), at);

        if (i == 1) {
            /* An algorithm the server does not have. */
            const char *crc = "Upload-Checksum: crc32 AAAA";
            assert_int_equal(patch(loc, tok, at, chunk, part, crc, &r), 400);
            assert_true(tus_error(&r, 400, "CHECKSUM_ALGORITHM_UNSUPPORTED"));
            bg_th_resp_free(&r);
            assert_int_equal(head_offset(loc, tok), at);
            assert_int_equal(file_size(path), at);
        }

        checksum_header(algos[i], chunk, part, h, sizeof(h));
        if (patch(loc, tok, at, chunk, part, h, &r) != 204)
            fail_msg("%s: %ld %s", algos[i], r.status, r.body);
        bg_th_resp_free(&r);
        assert_int_equal(head_offset(loc, tok), at + (long long)part);
    }
    assert_true(file_equals(path, src, 3 * part));
    free(src);
}

/* ---- 4. protocol errors ---- */

static void test_protocol_errors(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    const size_t len = 150000;
    char *src = pseudo_random(len, 4);
    char aid[65], loc[300], id[33], path[600], url[300];
    tus_url(&T.p, url, sizeof(url));
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("errors.bin", len, NULL)), aid);
    must_create(&T.p, tok, aid, "errors.bin", (long long)len, NULL, 0, loc, id);
    upload_path(&T.p, "anonymous", id, "errors.bin", path, sizeof(path));
    assert_int_equal(patch(loc, tok, 0, src, 1000, NULL, NULL), 204);
    bg_th_resp r;
    int bad = 0;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  line %d: %s\n", __LINE__, #cond);                                   \
            bad++;                                                                                 \
        }                                                                                          \
    } while (0)

    /* Upload-Offset other than the current one, behind and ahead. */
    EXPECT(patch(loc, tok, 0, src, 1000, NULL, &r) == 409);
    EXPECT(tus_error(&r, 409, "UPLOAD_OFFSET_MISMATCH"));
    bg_th_resp_free(&r);
    EXPECT(patch(loc, tok, 2000, src + 2000, 1000, NULL, &r) == 409);
    EXPECT(tus_error(&r, 409, "UPLOAD_OFFSET_MISMATCH"));
    bg_th_resp_free(&r);

    /* Tus-Resumable missing, or another version, on every method. */
    char tv[64];
    const char *versions[] = {NULL, "0.2.2"};
    for (size_t i = 0; i < 2; i++) {
        const char *ph[] = {"Upload-Offset: 1000", TUS_CT, NULL};
        tus("PATCH", loc, tok, versions[i], ph, src + 1000, 1000, &r);
        EXPECT(tus_error(&r, 412, "TUS_VERSION_UNSUPPORTED"));
        EXPECT(bg_th_header(&r, "tus-version", tv, sizeof(tv)) && strstr(tv, "1.0.0") != NULL);
        bg_th_resp_free(&r);
        char md[2000], mdh[2100];
        metadata(aid, "errors.bin", 10, md, sizeof(md));
        snprintf(mdh, sizeof(mdh), "Upload-Metadata: %s", md);
        const char *ch[] = {"Upload-Length: 150000", mdh, NULL};
        tus("POST", url, tok, versions[i], ch, NULL, 0, &r);
        EXPECT(tus_error(&r, 412, "TUS_VERSION_UNSUPPORTED"));
        bg_th_resp_free(&r);
        tus("DELETE", loc, tok, versions[i], NULL, NULL, 0, &r);
        EXPECT(tus_error(&r, 412, "TUS_VERSION_UNSUPPORTED"));
        bg_th_resp_free(&r);
        bg_th_resp hr;
        EXPECT(head_req(loc, tok, versions[i], false, NULL, &hr) == 412);
        EXPECT(bg_th_header(&hr, "tus-version", tv, sizeof(tv)) && strstr(tv, "1.0.0") != NULL);
        bg_th_resp_free(&hr);
        EXPECT(head_keeps_connection(loc, tok, versions[i]));
    }

    /* The bytes in another content type, or none named. */
    const char *types[] = {"Content-Type: application/octet-stream", NULL};
    for (size_t i = 0; i < 2; i++) {
        const char *th[] = {"Upload-Offset: 1000", types[i], NULL};
        tus("PATCH", loc, tok, "1.0.0", th, src + 1000, 1000, &r);
        EXPECT(tus_error(&r, 415, NULL));
        bg_th_resp_free(&r);
    }

    /* A body over uploads.chunk_max_bytes, though within the upload. */
    EXPECT(patch(loc, tok, 1000, src + 1000, CHUNK + 1, NULL, &r) == 413);
    EXPECT(tus_error(&r, 413, "PAYLOAD_TOO_LARGE"));
    bg_th_resp_free(&r);

    /* Up to 100000 bytes, then a chunk that goes 10000 past the length. */
    patch_rest(loc, tok, src, 1000, 100000);
    char *over = pseudo_random(60000, 44);
    EXPECT(patch(loc, tok, 100000, over, 60000, NULL, &r) == 413);
    EXPECT(tus_error(&r, 413, "UPLOAD_TOO_LARGE"));
    bg_th_resp_free(&r);
    free(over);

    /* An upload longer than uploads.max_size is refused at creation. */
    char md[2000];
    metadata(aid, "errors.bin", 10, md, sizeof(md));
    EXPECT(create_upload(&T.p, tok, md, MAX_SIZE + 1, NULL, 0, NULL, NULL, NULL, &r) == 413);
    EXPECT(tus_error(&r, 413, NULL));
    bg_th_resp_free(&r);

    /* Unknown uploads: a well-formed id nobody has, and a malformed one. */
    char unknown[340], junk[340];
    snprintf(unknown, sizeof(unknown), "%s0123456789abcdef0123456789abcdef", url);
    snprintf(junk, sizeof(junk), "%snot-an-upload", url);
    const char *missing[] = {unknown, junk};
    for (size_t i = 0; i < 2; i++) {
        long long off;
        EXPECT(head(missing[i], tok, &off) == 404);
        EXPECT(head_keeps_connection(missing[i], tok, "1.0.0"));
        EXPECT(patch(missing[i], tok, 0, src, 10, NULL, &r) == 404);
        EXPECT(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
        bg_th_resp_free(&r);
        tus("DELETE", missing[i], tok, "1.0.0", NULL, NULL, 0, &r);
        EXPECT(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
        bg_th_resp_free(&r);
    }
    /* Over HTTP/2 a HEAD error is a HEADERS frame alone: a DATA frame
     * after it would be a protocol error that resets the stream. */
    for (size_t i = 0; i < 2; i++) {
        long long off;
        EXPECT(head_req(missing[i], tok, "1.0.0", true, &off, NULL) == 404);
    }

    /* A HEAD without a token: 401, and no body either. */
    {
        long long off;
        EXPECT(head(loc, NULL, &off) == 401);
        EXPECT(head_keeps_connection(loc, NULL, "1.0.0"));
    }

    /* Headers that are no numbers, or missing. */
    const char *lengths[] = {"Upload-Length: -1", "Upload-Length: 1e3",
                             "Upload-Length: ", "Upload-Length: 99999999999999999999", NULL};
    for (size_t i = 0; lengths[i]; i++) {
        char mdh[2100];
        snprintf(mdh, sizeof(mdh), "Upload-Metadata: %s", md);
        const char *lh[] = {lengths[i], mdh, NULL};
        tus("POST", url, tok, "1.0.0", lh, NULL, 0, &r);
        if (!tus_error(&r, 400, NULL))
            fprintf(stderr, "  (%s)\n", lengths[i]), bad++;
        bg_th_resp_free(&r);
    }
    const char *no_offset[] = {TUS_CT, NULL};
    tus("PATCH", loc, tok, "1.0.0", no_offset, src, 10, &r);
    EXPECT(tus_error(&r, 400, NULL));
    bg_th_resp_free(&r);
    const char *neg_offset[] = {"Upload-Offset: -1", TUS_CT, NULL};
    tus("PATCH", loc, tok, "1.0.0", neg_offset, src, 10, &r);
    EXPECT(tus_error(&r, 400, NULL));
    bg_th_resp_free(&r);

    /* creation-with-upload: a body longer than Upload-Length, a body in
     * another content type. */
    {
        char mdh[2100];
        snprintf(mdh, sizeof(mdh), "Upload-Metadata: %s", md);
        const char *ch[] = {"Upload-Length: 10", mdh, TUS_CT, NULL};
        tus("POST", url, tok, "1.0.0", ch, src, 20, &r);
        EXPECT(tus_error(&r, 413, "UPLOAD_TOO_LARGE"));
        bg_th_resp_free(&r);
        const char *ct[] = {"Upload-Length: 150000", mdh, "Content-Type: text/plain", NULL};
        tus("POST", url, tok, "1.0.0", ct, src, 20, &r);
        EXPECT(tus_error(&r, 415, NULL));
        bg_th_resp_free(&r);
    }

    /* None of that stored a byte: the upload is where it was, and ends
     * with exactly the source bytes. */
    EXPECT(head_offset(loc, tok) == 100000);
    EXPECT(file_size(path) == 100000);
    patch_rest(loc, tok, src, 100000, len);
    EXPECT(file_equals(path, src, len));
    free(src);
#undef EXPECT
    assert_int_equal(bad, 0);
}

/* ---- 5. creation-with-upload ---- */

static void test_creation_with_upload(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    char md5[33], aid[65], loc[300], id[33], md[2000], h[200];
    md5_hex(T.wav2, T.wav2_len, md5);
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("short.wav", T.wav2_len, md5)), aid);
    metadata(aid, "short.wav", 9, md, sizeof(md));
    checksum_header("sha1", T.wav2, T.wav2_len, h, sizeof(h));
    const char *extra[] = {h, "X-Ignored: yes", NULL};
    /* Upload-Metadata with the optional filetype as well. */
    char mdt[2100], ft[64];
    b64("audio/wav", 9, ft);
    snprintf(mdt, sizeof(mdt), "%s,filetype %s,is_confidential", md, ft);
    bg_th_resp r;
    assert_int_equal(create_upload(&T.p, tok, mdt, (long long)T.wav2_len, T.wav2, T.wav2_len, extra,
                                   loc, id, &r),
                     201);
    char v[64], want[32];
    snprintf(want, sizeof(want), "%zu", T.wav2_len);
    assert_true(bg_th_header(&r, "upload-offset", v, sizeof(v)));
    assert_string_equal(v, want);
    assert_true(bg_th_header(&r, "tus-resumable", v, sizeof(v)));
    assert_string_equal(v, "1.0.0");
    bg_th_resp_free(&r);

    /* Complete at once: the assembly runs to the end. */
    json_t *s = assembly(&T.p, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    json_decref(s);
    s = wait_assembly(&T.p, tok, aid, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(s);
    json_t *u = json_array_get(json_object_get(s, "uploads"), 0);
    assert_string_equal(json_string_value(json_object_get(u, "md5hash")), md5);
    assert_string_equal(json_string_value(json_object_get(u, "name")), "short.wav");
    assert_non_null(json_object_get(json_object_get(s, "results"), "meta"));
    json_decref(s);

    char path[600];
    upload_path(&T.p, "anonymous", id, "short.wav", path, sizeof(path));
    assert_true(file_equals(path, T.wav2, T.wav2_len));
    assert_int_equal(head_offset(loc, tok), (long long)T.wav2_len);

    /* An empty file is complete as soon as it is created. */
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("empty.bin", 0, NULL)), aid);
    must_create(&T.p, tok, aid, "empty.bin", 0, NULL, 0, loc, id);
    assert_int_equal(head_offset(loc, tok), 0);
    s = assembly(&T.p, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    u = json_array_get(json_object_get(s, "uploads"), 0);
    assert_string_equal(json_string_value(json_object_get(u, "md5hash")),
                        "d41d8cd98f00b204e9800998ecf8427e");
    json_decref(s);
    upload_path(&T.p, "anonymous", id, "empty.bin", path, sizeof(path));
    assert_int_equal(file_size(path), 0);
}

/* ---- 6. termination ---- */

static void test_termination(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    const size_t len = 5000;
    char *src = pseudo_random(len, 6);
    char aid[65], loc[300], id[33], dir[600];
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("gone.bin", len, NULL)), aid);
    must_create(&T.p, tok, aid, "gone.bin", (long long)len, NULL, 0, loc, id);
    assert_int_equal(patch(loc, tok, 0, src, 2000, NULL, NULL), 204);
    upload_path(&T.p, "anonymous", id, NULL, dir, sizeof(dir));
    assert_true(exists(dir));

    bg_th_resp r;
    tus("DELETE", loc, tok, "1.0.0", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    char v[32];
    assert_true(bg_th_header(&r, "tus-resumable", v, sizeof(v)));
    bg_th_resp_free(&r);

    long long off;
    assert_int_equal(head(loc, tok, &off), 404);
    assert_int_equal(patch(loc, tok, 2000, src + 2000, 1000, NULL, &r), 404);
    assert_true(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
    bg_th_resp_free(&r);
    tus("DELETE", loc, tok, "1.0.0", NULL, NULL, 0, &r);
    assert_true(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
    bg_th_resp_free(&r);
    /* Answered 204 only after the bytes were gone. */
    assert_false(exists(dir));

    /* The file is expected again: a new upload takes it, to the end. */
    char loc2[300], id2[33];
    must_create(&T.p, tok, aid, "gone.bin", (long long)len, NULL, 0, loc2, id2);
    assert_string_not_equal(id2, id);
    patch_rest(loc2, tok, src, 0, len);
    char path[600];
    upload_path(&T.p, "anonymous", id2, "gone.bin", path, sizeof(path));
    assert_true(file_equals(path, src, len));
    json_t *s = assembly(&T.p, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    json_t *ups = json_object_get(s, "uploads");
    assert_int_equal(json_array_size(ups), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ups, 0), "id")), id2);
    json_decref(s);
    free(src);
}

/* ---- 7. expiration ---- */

/* Parses an IMF-fixdate (RFC 9110 5.6.7) strictly: it must print back the
 * same. */
static bool imf_fixdate(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (rest == NULL || *rest != '\0')
        return false;
    time_t t = timegm(&tm);
    struct tm g;
    char back[64];
    gmtime_r(&t, &g);
    strftime(back, sizeof(back), "%a, %d %b %Y %H:%M:%S GMT", &g);
    if (strcmp(back, s) != 0)
        return false;
    *out = t;
    return true;
}

static void test_expiration(void **state)
{
    (void)state;
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/exp", T.root);
    assert_int_equal(bg_th_start(&T.exp, dir, NULL, expiring_env), 0);
    const char *tok = T.exp.token;
    const size_t len = 4000;
    char *src = pseudo_random(len, 7);
    char aid[65], md[2000];
    /* Two files, so one complete upload leaves the assembly uploading. */
    new_assembly(
        &T.exp, tok,
        json_pack("[o,o]", file_entry("slow.bin", len, NULL), file_entry("done.bin", 100, NULL)),
        aid);

    char done_loc[300], done_id[33];
    must_create(&T.exp, tok, aid, "done.bin", 100, src, 100, done_loc, done_id);

    metadata(aid, "slow.bin", 8, md, sizeof(md));
    char loc[300], id[33], exp_hdr[64], exp2[64];
    bg_th_resp r;
    time_t before = time(NULL);
    assert_int_equal(create_upload(&T.exp, tok, md, (long long)len, NULL, 0, NULL, loc, id, &r),
                     201);
    long long created_ms = bg_th_now_ms();
    assert_true(bg_th_header(&r, "upload-expires", exp_hdr, sizeof(exp_hdr)));
    bg_th_resp_free(&r);
    time_t at = 0;
    if (!imf_fixdate(exp_hdr, &at))
        fail_msg("Upload-Expires '%s' is not an IMF-fixdate", exp_hdr);
    /* now + 2 s, with a second of rounding either way. */
    if (at < before + 1 || at > time(NULL) + 3)
        fail_msg("Upload-Expires %s is not about now + 2 s (now %lld)", exp_hdr,
                 (long long)time(NULL));

    /* A chunk keeps the deadline where it was (counted from creation). */
    assert_int_equal(patch(loc, tok, 0, src, 1000, NULL, &r), 204);
    assert_true(bg_th_header(&r, "upload-expires", exp2, sizeof(exp2)));
    assert_string_equal(exp2, exp_hdr);
    bg_th_resp_free(&r);
    char udir[600];
    upload_path(&T.exp, "anonymous", id, NULL, udir, sizeof(udir));
    assert_true(exists(udir));

    /* Gone for the client, then gone from the disk. */
    long long off;
    long long end = created_ms + 10000;
    while (head(loc, tok, &off) != 404 && bg_th_now_ms() < end)
        bg_th_nap_ms(50);
    assert_int_equal(head(loc, tok, &off), 404);
    long long gone_ms = bg_th_now_ms() - created_ms;
    assert_true(gone_ms >= 1500);
    while (exists(udir) && bg_th_now_ms() < end)
        bg_th_nap_ms(50);
    if (exists(udir))
        fail_msg("%s still exists %lld ms after creation", udir, bg_th_now_ms() - created_ms);
    assert_int_equal(patch(loc, tok, 1000, src + 1000, 1000, NULL, &r), 404);
    assert_true(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
    bg_th_resp_free(&r);

    /* The complete upload is the assembly's, not subject to expiry. */
    char done_path[600];
    upload_path(&T.exp, "anonymous", done_id, "done.bin", done_path, sizeof(done_path));
    assert_true(file_equals(done_path, src, 100));
    assert_int_equal(head_offset(done_loc, tok), 100);

    /* The file can be uploaded again. */
    char loc2[300], id2[33];
    must_create(&T.exp, tok, aid, "slow.bin", (long long)len, NULL, 0, loc2, id2);
    patch_rest(loc2, tok, src, 0, len);
    json_t *s = assembly(&T.exp, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    json_decref(s);
    free(src);
    /* A clean exit (under -DBG_SANITIZE=ON: no leak report either). */
    int rc = bg_th_stop(&T.exp, SIGTERM, 15000);
    if (rc != 0) {
        char *log = bg_th_read_file(T.exp.log, NULL);
        const char *hit = log ? strstr(log, "ERROR: ") : NULL;
        fprintf(stderr, "%s: exit %d\n%.3000s\n", T.exp.log, rc, hit ? hit : "");
        free(log);
    }
    assert_int_equal(rc, 0);
}

/* ---- 8. file names ---- */

static struct {
    char uploads[400]; /* DATA/uploads */
    char allowed[400]; /* DATA/uploads/main/users/ */
    int files, outside;
} walk;

static int walk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag != FTW_F && flag != FTW_SL)
        return 0;
    walk.files++;
    if (strncmp(path, walk.allowed, strlen(walk.allowed)) != 0) {
        fprintf(stderr, "a file outside %s: %s\n", walk.allowed, path);
        walk.outside++;
    }
    return 0;
}

static void test_filenames(void **state)
{
    (void)state;
    const char *tok = T.p.token;
    char long_name[260];
    memset(long_name, 'n', 246);
    snprintf(long_name + 246, sizeof(long_name) - 246, ".wav");
    static const struct {
        const char *raw, *stored;
    } names[] = {
        {"../../x", "_._.._x"},
        {"a/b.wav", "a_b.wav"},
        {"..\\..\\y.wav", "_._.._y.wav"},
        {".hidden", "_hidden"},
        {"h\xc3\xa9llo w\xc3\xb6rld (1)+2.wav", "h\xc3\xa9llo w\xc3\xb6rld (1)+2.wav"},
        {"a;b*c?.wav", "a_b_c_.wav"},
    };
    const size_t nn = sizeof(names) / sizeof(names[0]);
    json_t *files = json_array();
    for (size_t i = 0; i < nn; i++)
        json_array_append_new(files, file_entry(names[i].raw, 10 + i, NULL));
    json_array_append_new(files, file_entry(long_name, 5, NULL));
    char aid[65];
    new_assembly(&T.p, tok, files, aid);

    char users[400];
    snprintf(users, sizeof(users), "%s/uploads/main/users/anonymous", T.p.dir);
    char *src = pseudo_random(64, 8);
    for (size_t i = 0; i < nn; i++) {
        char loc[300], id[33], path[600];
        must_create(&T.p, tok, aid, names[i].raw, (long long)(10 + i), src, 10 + i, loc, id);
        upload_path(&T.p, "anonymous", id, names[i].stored, path, sizeof(path));
        if (!file_equals(path, src, 10 + i))
            fail_msg("'%s' is not stored as '%s'", names[i].raw, names[i].stored);
        /* The upload's directory holds that one file. */
        char udir[600];
        upload_path(&T.p, "anonymous", id, NULL, udir, sizeof(udir));
        assert_int_equal(count_entries(udir), 1);
    }
    /* Names are cut at 200 bytes. */
    {
        char loc[300], id[33], udir[600], want[900];
        must_create(&T.p, tok, aid, long_name, 5, src, 5, loc, id);
        upload_path(&T.p, "anonymous", id, NULL, udir, sizeof(udir));
        snprintf(want, sizeof(want), "%s/%.200s", udir, long_name);
        assert_true(file_equals(want, src, 5));
    }

    /* Nothing landed anywhere the names point at. */
    const char *const stray[] = {"/../x",
                                 "/x",
                                 "/uploads/x",
                                 "/uploads/main/x",
                                 "/uploads/main/users/x",
                                 "/uploads/main/users/anonymous/x",
                                 "/../y.wav",
                                 "/uploads/y.wav",
                                 "/uploads/main/users/y.wav"};
    for (size_t i = 0; i < sizeof(stray) / sizeof(stray[0]); i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s%s", T.p.dir, stray[i]);
        if (exists(p))
            fail_msg("%s exists", p);
    }
    snprintf(walk.uploads, sizeof(walk.uploads), "%s/uploads", T.p.dir);
    snprintf(walk.allowed, sizeof(walk.allowed), "%s/uploads/main/users/", T.p.dir);
    walk.files = walk.outside = 0;
    assert_int_equal(nftw(walk.uploads, walk_one, 16, FTW_PHYS), 0);
    assert_true(walk.files >= (int)nn);
    assert_int_equal(walk.outside, 0);

    /* The status JSON names the uploads by their stored names. */
    json_t *s = assembly(&T.p, tok, aid);
    assert_string_not_equal(ok_of(s), "ASSEMBLY_UPLOADING");
    size_t k;
    json_t *u;
    int seen = 0;
    json_array_foreach(json_object_get(s, "uploads"), k, u)
    {
        seen += strcmp(json_string_value(json_object_get(u, "name")), "_._.._x") == 0;
    }
    assert_int_equal(seen, 1);
    json_decref(s);

    /* Refused names and metadata; none leaves a directory behind. */
    char aid2[65];
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("plain.bin", 10, NULL)), aid2);
    int before = count_entries(users);
    static const struct {
        const char *name;
        size_t len;
        long status;
        const char *code;
    } bad[] = {
        {"plain\0.bin", 10, 400, "INVALID_FILENAME"},
        {"pl\x01"
         "ain.bin",
         10, 400, "INVALID_FILENAME"},
        {"plain.bin\n", 10, 400, "INVALID_FILENAME"},
        {"plain\x7f.bin", 10, 400, "INVALID_FILENAME"},
        {"plain\xc2\x85.bin", 11, 400, "INVALID_FILENAME"}, /* U+0085, a C1 control */
        {"other.bin", 9, 409, "UPLOAD_NOT_EXPECTED"},
    };
    bg_th_resp r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char md[2000];
        metadata(aid2, bad[i].name, bad[i].len, md, sizeof(md));
        long st = create_upload(&T.p, tok, md, 10, NULL, 0, NULL, NULL, NULL, &r);
        if (!tus_error(&r, bad[i].status, bad[i].code))
            fail_msg("name %zu: %ld", i, st);
        bg_th_resp_free(&r);
    }
    /* Right name, wrong size. */
    char md[2000];
    metadata(aid2, "plain.bin", 9, md, sizeof(md));
    create_upload(&T.p, tok, md, 11, NULL, 0, NULL, NULL, NULL, &r);
    assert_true(tus_error(&r, 409, "UPLOAD_NOT_EXPECTED"));
    bg_th_resp_free(&r);
    /* No assembly_id, no filename, not base64. */
    char fn[64], ai[200];
    b64("plain.bin", 9, fn);
    b64(aid2, 64, ai);
    char m1[300], m2[300];
    snprintf(m1, sizeof(m1), "filename %s", fn);
    snprintf(m2, sizeof(m2), "assembly_id %s", ai);
    const char *bad_md[] = {m1, m2, "assembly_id !!!,filename ***"};
    for (size_t i = 0; i < 3; i++) {
        create_upload(&T.p, tok, bad_md[i], 10, NULL, 0, NULL, NULL, NULL, &r);
        if (!tus_error(&r, 400, "INVALID_METADATA"))
            fail_msg("metadata '%s'", bad_md[i]);
        bg_th_resp_free(&r);
    }
    assert_int_equal(count_entries(users), before);

    /* A finished assembly takes no more uploads. */
    metadata(aid, "a/b.wav", 7, md, sizeof(md));
    create_upload(&T.p, tok, md, 11, NULL, 0, NULL, NULL, NULL, &r);
    assert_true(tus_error(&r, 409, "ASSEMBLY_NOT_UPLOADING"));
    bg_th_resp_free(&r);
    free(src);
}

/* ---- 9. isolation between organisations ---- */

/* A member of a new organisation; its token and user id. */
static void member(const char *org_name, const char *email, char **token, char user_id[64])
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", org_name);
    json_t *o = must(&T.p, "POST", "/api/v1/organizations", T.p.token, body, 201);
    const char *org = json_string_value(json_object_get(o, "id"));
    assert_non_null(org);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", org);
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"name\":\"Uploader\",\"password\":\"uploads-password-0001\","
             "\"role\":\"member\"}",
             email);
    json_t *u = must(&T.p, "POST", path, T.p.token, body, 201);
    snprintf(user_id, 64, "%s", json_string_value(json_object_get(u, "id")));
    assert_int_equal(strlen(user_id), 36);
    json_decref(u);
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"password\":\"uploads-password-0001\",\"organization_id\":\"%s\"}",
             email, org);
    json_decref(o);
    json_t *l = must(&T.p, "POST", "/api/v1/auth/login", NULL, body, 200);
    *token = strdup(json_string_value(json_object_get(l, "token")));
    json_decref(l);
}

static void test_isolation(void **state)
{
    (void)state;
    char *ta = NULL, *tb = NULL, ua[64], ub[64];
    member("uploads-org-a", "a@uploads.example", &ta, ua);
    member("uploads-org-b", "b@uploads.example", &tb, ub);
    const size_t len = 3000;
    char *src = pseudo_random(len, 9);
    char md5[33], aid[65], loc[300], id[33];
    md5_hex(src, len, md5);
    new_assembly(&T.p, ta, json_pack("[o]", file_entry("mine.bin", len, md5)), aid);
    must_create(&T.p, ta, aid, "mine.bin", (long long)len, NULL, 0, loc, id);
    assert_int_equal(patch(loc, ta, 0, src, 1000, NULL, NULL), 204);
    char path[600];
    upload_path(&T.p, ua, id, "mine.bin", path, sizeof(path));
    assert_int_equal(file_size(path), 1000);

    /* B sees nothing of A's upload and cannot change it. */
    long long off;
    bg_th_resp r;
    assert_int_equal(head(loc, tb, &off), 404);
    assert_int_equal(off, -1);
    assert_int_equal(patch(loc, tb, 1000, src + 1000, 1000, NULL, &r), 404);
    assert_true(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
    bg_th_resp_free(&r);
    tus("DELETE", loc, tb, "1.0.0", NULL, NULL, 0, &r);
    assert_true(tus_error(&r, 404, "UPLOAD_NOT_FOUND"));
    bg_th_resp_free(&r);
    /* ... nor upload into A's assembly. */
    char md[2000];
    metadata(aid, "mine.bin", 8, md, sizeof(md));
    create_upload(&T.p, tb, md, (long long)len, src, 1000, NULL, NULL, NULL, &r);
    assert_true(tus_error(&r, 404, "ASSEMBLY_NOT_FOUND"));
    bg_th_resp_free(&r);
    snprintf(path, sizeof(path), "%s/uploads/main/users/%s", T.p.dir, ub);
    assert_false(exists(path));

    /* A's upload is untouched and finishes; B's own assembly of the same
     * bytes is another assembly, in B's own directory. */
    assert_int_equal(head_offset(loc, ta), 1000);
    patch_rest(loc, ta, src, 1000, len);
    upload_path(&T.p, ua, id, "mine.bin", path, sizeof(path));
    assert_true(file_equals(path, src, len));
    char aid_b[65], loc_b[300], id_b[33];
    new_assembly(&T.p, tb, json_pack("[o]", file_entry("mine.bin", len, md5)), aid_b);
    assert_string_not_equal(aid_b, aid);
    must_create(&T.p, tb, aid_b, "mine.bin", (long long)len, src, 1000, loc_b, id_b);
    upload_path(&T.p, ub, id_b, "mine.bin", path, sizeof(path));
    assert_int_equal(file_size(path), 1000);
    assert_int_equal(head(loc_b, ta, &off), 404);
    free(src);
    free(ta);
    free(tb);
}

/* ---- 10. branchgate cleanup ---- */

static void write_file(const char *path, const char *text)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *s = strchr(dir + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(dir, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Sets the modification time of path to `days` days ago. */
static void age(const char *path, int days)
{
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= (time_t)days * 24 * 3600;
    tv[1] = tv[0];
    assert_int_equal(lutimes(path, tv), 0);
}

static int count_files(const char *dir)
{
    snprintf(walk.allowed, sizeof(walk.allowed), "%s", "/");
    walk.files = walk.outside = 0;
    if (exists(dir))
        nftw(dir, walk_one, 16, FTW_PHYS);
    return walk.files;
}

static int cleanup(const char *const *args, char **out)
{
    const char *argv[12] = {"cleanup"};
    size_t n = 1;
    for (const char *const *a = args; *a && n < 11; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return bg_th_run(argv, NULL, out);
}

static void test_cleanup(void **state)
{
    (void)state;
    const char *data = T.p.dir;
    char up_main[400], out_main[400], other[400], other_user[400], other_out[400], out_file[500];
    snprintf(up_main, sizeof(up_main), "%s/uploads/main", data);
    snprintf(out_main, sizeof(out_main), "%s/outputs/main", data);
    snprintf(other, sizeof(other), "%s/uploads/other/keep.txt", data);
    snprintf(other_user, sizeof(other_user),
             "%s/uploads/other/users/anonymous/0123456789abcdef0123456789abcdef/keep.bin", data);
    snprintf(other_out, sizeof(other_out), "%s/outputs/other/%064d/meta/keep.json", data, 7);
    snprintf(out_file, sizeof(out_file), "%s/outputs/main/%064d/meta/x.json", data, 1);
    write_file(other, "keep");
    write_file(other_user, "keep");
    write_file(other_out, "{}");
    write_file(out_file, "{}");

    /* An upload in progress of its own, made old by hand. */
    const char *tok = T.p.token;
    char aid[65], loc[300], id[33], old_dir[600], old_file[600];
    char *src = pseudo_random(100, 10);
    new_assembly(&T.p, tok, json_pack("[o]", file_entry("old.bin", 100, NULL)), aid);
    must_create(&T.p, tok, aid, "old.bin", 100, src, 50, loc, id);
    upload_path(&T.p, "anonymous", id, NULL, old_dir, sizeof(old_dir));
    upload_path(&T.p, "anonymous", id, "old.bin", old_file, sizeof(old_file));
    age(old_file, 10);
    age(old_dir, 10);
    free(src);

    int main_files = count_files(up_main);
    assert_true(main_files >= 10);
    char *out = NULL;

    /* Bad usage: exit 2, nothing touched. */
    const char *const no_branch[] = {"--data", data, NULL};
    const char *const bad_age[] = {"--branch", "main", "--older-than", "soon", "--data",
                                   data,       NULL};
    const char *const bad_age2[] = {"--branch", "main", "--older-than", "-7d", "--data",
                                    data,       NULL};
    const char *const dotdot[] = {"--branch", "..", "--data", data, NULL};
    const char *const *usage[] = {no_branch, bad_age, bad_age2};
    for (size_t i = 0; i < 3; i++) {
        int rc = cleanup(usage[i], &out);
        if (rc == 127 || (out && strstr(out, "unknown command")))
            fail_msg("branchgate has no cleanup command: %s", out ? out : "");
        if (rc != 2)
            fail_msg("usage %zu: exit %d, want 2: %s", i, rc, out ? out : "");
        free(out);
        out = NULL;
    }
    int rc = cleanup(dotdot, &out);
    if (rc == 0)
        fail_msg("--branch .. was accepted: %s", out ? out : "");
    free(out);
    out = NULL;
    assert_int_equal(count_files(up_main), main_files);
    assert_true(exists(out_file) && exists(other) && exists(other_user) && exists(other_out));

    /* --older-than 7d: only the upload aged ten days goes. */
    const char *const week[] = {"--branch", "main", "--older-than", "7d", "--data", data, NULL};
    rc = cleanup(week, &out);
    if (rc != 0)
        fail_msg("cleanup --older-than 7d: exit %d: %s", rc, out ? out : "");
    free(out);
    out = NULL;
    assert_false(exists(old_file));
    /* The upload's directory goes with its file (checked, not asserted,
     * so the rest still runs; the test fails at the end). */
    int bad = 0;
    if (exists(old_dir)) {
        fprintf(stderr, "cleanup removed %s but left its upload directory\n", old_file);
        bad++;
    }
    assert_int_equal(count_files(up_main), main_files - 1);
    assert_true(exists(out_file));

    /* Everything of main, nothing of other, with the server running. */
    const char *const all[] = {"--branch", "main", "--data", data, NULL};
    rc = cleanup(all, &out);
    if (rc != 0)
        fail_msg("cleanup: exit %d: %s", rc, out ? out : "");
    free(out);
    out = NULL;
    assert_int_equal(count_files(up_main), 0);
    assert_int_equal(count_files(out_main), 0);
    char users[400];
    snprintf(users, sizeof(users), "%s/uploads/main/users/anonymous", data);
    if (count_entries(users) != 0) {
        fprintf(stderr, "%d upload directories are left in %s\n", count_entries(users), users);
        bad++;
    }
    assert_true(exists(other));
    assert_true(exists(other_user));
    assert_true(exists(other_out));
    /* The registry and the data dir's own files are not uploads. */
    char keep[400];
    snprintf(keep, sizeof(keep), "%s/admin.token", data);
    assert_true(exists(keep));
    bg_th_resp r;
    assert_int_equal(bg_th_get(&T.p, "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(bad, 0);
}

/* ---- last: clean shutdown ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    int bad = 0;
    int rc = bg_th_stop(&T.p, SIGTERM, 15000);
    if (rc != 0) {
        fprintf(stderr, "%s exited with %d\n", T.p.log, rc);
        bad++;
    }
    const char *logs[] = {T.p.log, T.exp.log};
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:"};
    for (size_t i = 0; i < 2; i++) {
        char *log = logs[i][0] ? bg_th_read_file(logs[i], NULL) : NULL;
        const char *hit = NULL;
        for (size_t m = 0; log != NULL && hit == NULL && m < 3; m++)
            hit = strstr(log, marks[m]);
        if (hit != NULL) {
            fprintf(stderr, "%s:\n%.4000s\n", logs[i], hit);
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
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_resume_after_lost_connection),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_creation_with_upload),
        cmocka_unit_test(test_termination),
        cmocka_unit_test(test_expiration),
        cmocka_unit_test(test_filenames),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_cleanup),
        cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
