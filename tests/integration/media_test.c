/* The media pipeline end to end (docs/media.md, DESIGN.md section 7) with
 * real branchgate processes: assemblies created with a deterministic id,
 * files sent over tus in several chunks, the durable job run by the media
 * workers, progress over SSE, results downloaded and checked with ffprobe,
 * and signed webhooks received by a tiny HTTP server in this process.
 *
 * One shared branch (S) runs most tests; the SIGKILL test runs its own
 * branch (K) with a 2 s lease and restarts it on the same data dir. Media
 * is generated at run time with the ffmpeg CLI (lavfi sine tones) in the
 * temp dir; each test uses its own tone so the assembly ids differ. The
 * `long-encode` template (the whole input to 44.1 kHz stereo mp3) is added
 * to a copy of the bundled templates so a job runs for a few seconds.
 * Last, both processes stop cleanly (and, in a -DBG_SANITIZE=ON build,
 * without a sanitizer report in their logs). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHUNK 262144     /* uploads.chunk_max_bytes of S: files take several PATCHes */
#define LONG_SECONDS 600 /* the long-encode input: 10 min of 8 kHz mono */
#define PASSWORD "media-test-password-0001"
#define SSE_DEADLINE_MS 90000

static const char long_encode_tpl[] =
    "{\"id\":\"long-encode\",\"description\":\"The whole input as a 44.1 kHz stereo mp3.\","
    "\"steps\":{\"preview\":{\"robot\":\"/audio/encode\",\"use\":\":original\",\"format\":\"mp3\","
    "\"bitrate\":128000,\"sample_rate\":44100,\"channels\":2}},\"max_attempts\":3}\n";

typedef struct media {
    char name[64];
    char path[320];
    char *data;
    size_t len;
    char md5[33];
} media;

typedef struct org {
    char id[64];
    char secret[128];
    char user_id[64];
    char token[4096];
} org;

static struct {
    char root[256];
    char tpl_env[400];
    bg_th_proc s; /* shared branch */
    bg_th_proc k; /* the branch of the SIGKILL test */
    bool k_started;
    bg_th_hooks hooks;
    char default_org[64];
    org a, b;
    media t1, t2, t3, t5, t6, t7, t8, t9, t10, lng;
    /* A stream read by a thread; static, so a failed test leaves no
     * dangling stack frame behind. */
    bg_th_sse live;
    /* Test 1's completed assembly (admin token) and its preview result,
     * reused by the Range and SSE tests (10-14). */
    char t1_id[65];
    char preview_url[600];
    /* Branch streams read by threads (test 11): org A, org B, admin, A
     * resumed. */
    bg_th_sse bs[4];
} M;

/* ---- processes and files ---- */

static const char *const *env_s(void)
{
    static const char *e[12];
    size_t n = 0;
    e[n++] = "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1";
    e[n++] = "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192";
    e[n++] = "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=262144";
    e[n++] = "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10";
    e[n++] = "BRANCHGATE_WEBHOOKS_SCHEDULE=1s,1s,1s";
    e[n++] = "BRANCHGATE_SSE_HEARTBEAT_S=1";
    e[n++] = "BRANCHGATE_JOBS_WORKERS=2";
    e[n++] = M.tpl_env;
    e[n] = NULL;
    return e;
}

static const char *const *env_k(void)
{
    static const char *e[12];
    size_t n = 0;
    e[n++] = "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=4194304";
    e[n++] = "BRANCHGATE_JOBS_LEASE_S=2";
    e[n++] = "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10";
    e[n++] = "BRANCHGATE_JOBS_WORKERS=2";
    e[n++] = "BRANCHGATE_WEBHOOKS_SCHEDULE=1s,1s,1s";
    e[n++] = M.tpl_env;
    e[n] = NULL;
    return e;
}

/* Runs argv (no shell); stdout to out_path when given. Returns the exit status. */
static int run_cmd(const char *const *argv, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (out_path != NULL) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                close(fd);
            }
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A mono sine wav of `seconds` at `rate` Hz, tone `freq`, in the root. */
static bool make_wav(media *m, const char *name, int freq, int rate, int seconds)
{
    char src[128], dur[32];
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->path, sizeof(m->path), "%s/%s", M.root, name);
    snprintf(src, sizeof(src), "sine=frequency=%d:sample_rate=%d", freq, rate);
    snprintf(dur, sizeof(dur), "%d", seconds);
    const char *argv[] = {"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f",
                          "lavfi",  "-i",           src,         "-t",    dur,  "-ac",
                          "1",      "-c:a",         "pcm_s16le", m->path, NULL};
    if (run_cmd(argv, NULL) != 0) {
        fprintf(stderr, "ffmpeg failed for %s\n", name);
        return false;
    }
    m->data = bg_th_read_file(m->path, &m->len);
    if (m->data == NULL || m->len == 0)
        return false;
    bg_th_md5_hex(m->data, m->len, m->md5);
    return true;
}

typedef struct probe {
    char codec[32];
    double duration;
    long sample_rate, channels;
} probe;

/* ffprobe of a file: the first stream's codec, rate, channels and the
 * format's duration. */
static bool ffprobe(const char *path, probe *out)
{
    char json_path[400];
    snprintf(json_path, sizeof(json_path), "%s.probe.json", path);
    static const char entries[] = "format=duration:stream=codec_name,sample_rate,channels";
    const char *argv[] = {"ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", path,
                          NULL};
    memset(out, 0, sizeof(*out));
    if (run_cmd(argv, json_path) != 0)
        return false;
    json_t *j = json_load_file(json_path, 0, NULL);
    unlink(json_path);
    json_t *st = json_array_get(json_object_get(j, "streams"), 0);
    const char *codec = json_string_value(json_object_get(st, "codec_name"));
    const char *dur = json_string_value(json_object_get(json_object_get(j, "format"), "duration"));
    const char *rate = json_string_value(json_object_get(st, "sample_rate"));
    bool ok = codec != NULL && dur != NULL;
    if (ok) {
        snprintf(out->codec, sizeof(out->codec), "%s", codec);
        out->duration = strtod(dur, NULL);
        out->sample_rate = rate ? strtol(rate, NULL, 10) : 0;
        out->channels = (long)json_integer_value(json_object_get(st, "channels"));
    }
    json_decref(j);
    return ok;
}

static bool write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Copies the bundled templates ($BRANCHGATE_TEMPLATES_DIR) and adds
 * long-encode. */
static bool make_templates(const char *dir)
{
    const char *src = getenv("BRANCHGATE_TEMPLATES_DIR");
    if (src == NULL || mkdir(dir, 0700) != 0)
        return false;
    DIR *d = opendir(src);
    if (d == NULL)
        return false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char from[1200], to[1200];
        snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
        size_t len;
        char *t = bg_th_read_file(from, &len);
        bool ok = t != NULL && write_file(to, t, len);
        free(t);
        if (!ok) {
            closedir(d);
            return false;
        }
    }
    closedir(d);
    char path[1200];
    snprintf(path, sizeof(path), "%s/long-encode.json", dir);
    return write_file(path, long_encode_tpl, strlen(long_encode_tpl));
}

/* ---- HTTP helpers ---- */

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* A request with any bearer token and an optional JSON body; asserts the
 * status (want 0: any) and returns the parsed body (NULL when none). */
static json_t *req(const bg_th_proc *p, const char *method, const char *path, const char *token,
                   const char *json, long want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, token, json, &r), 0);
    if (want != 0 && r.status != want)
        fprintf(stderr, "%s %s: want %ld, got %ld: %s\n", method, path, want, r.status,
                r.body ? r.body : "");
    if (want != 0)
        assert_int_equal(r.status, want);
    json_t *j = r.len > 0 ? bg_th_json(&r) : NULL;
    bg_th_resp_free(&r);
    return j;
}

/* An error answer: status and the JSON error shape with code. */
static bool fails_with(const bg_th_proc *p, const char *method, const char *path, const char *token,
                       long status, const char *code)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, token, NULL, &r), 0);
    bool ok = bg_th_is_error(&r, status, code);
    if (!ok)
        fprintf(stderr, "  (%s %s)\n", method, path);
    bg_th_resp_free(&r);
    return ok;
}

static const char *str(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static bool str_is(const json_t *j, const char *key, const char *want)
{
    const char *v = str(j, key);
    return v != NULL && strcmp(v, want) == 0;
}

/* hex(sha256(branch ":" md5 ":" template ":" user)), computed here. */
static void expected_id(const char *md5, const char *tpl, const char *user, char out[65])
{
    char msg[512];
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    int n = snprintf(msg, sizeof(msg), "main:%s:%s:%s", md5, tpl, user);
    EVP_Digest(msg, (size_t)n, d, &dl, EVP_sha256(), NULL);
    for (unsigned i = 0; i < dl; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* POST /api/v1/assemblies for one file (md5 announced: md5, or the file's
 * when NULL); asserts want and returns the status JSON. */
static json_t *create(const bg_th_proc *p, const char *token, const char *tpl, const media *m,
                      const char *md5, const char *notify_url, const char *org_id, long want)
{
    json_t *b = json_pack("{s:s,s:[{s:s,s:I,s:s}]}", "template_id", tpl, "files", "name", m->name,
                          "size", (json_int_t)m->len, "md5", md5 ? md5 : m->md5);
    if (notify_url != NULL)
        json_object_set_new(b, "notify_url", json_string(notify_url));
    if (org_id != NULL)
        json_object_set_new(b, "organization_id", json_string(org_id));
    char *body = dump(b);
    json_t *st = req(p, "POST", "/api/v1/assemblies", token, body, want);
    free(body);
    return st;
}

static json_t *status_of(const bg_th_proc *p, const char *token, const char *id)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    return req(p, "GET", path, token, NULL, 200);
}

/* Polls the status until ok equals want (want NULL: until it has an
 * error). The last status, or NULL after the deadline (printed). */
static json_t *wait_status(const bg_th_proc *p, const char *token, const char *id, const char *want,
                           int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    json_t *st = NULL;
    while (bg_th_now_ms() < end) {
        json_decref(st);
        st = status_of(p, token, id);
        bool hit = want ? str_is(st, "ok", want) : json_object_get(st, "error") != NULL;
        if (hit)
            return st;
        bg_th_nap_ms(50);
    }
    char *s = st ? json_dumps(st, JSON_COMPACT) : NULL;
    fprintf(stderr, "assembly %s never reached %s; last: %.3000s\n", id, want ? want : "an error",
            s ? s : "");
    free(s);
    json_decref(st);
    bg_th_print_log(p);
    return NULL;
}

/* The jobs of one assembly (admin list, optionally of one state), in the
 * list's order. New reference. */
static json_t *jobs_of(const bg_th_proc *p, const char *id, const char *state)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/jobs?limit=500%s%s", state ? "&state=" : "",
             state ? state : "");
    json_t *j = req(p, "GET", path, p->token, NULL, 200);
    assert_null(json_object_get(j, "next_cursor"));
    json_t *out = json_array();
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(j, "jobs"), i, job) if (str_is(job, "assembly_id", id))
        json_array_append(out, job);
    json_decref(j);
    return out;
}

/* Polls until the assembly has a job in state; that job or NULL. */
static json_t *wait_job(const bg_th_proc *p, const char *id, const char *state, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    while (bg_th_now_ms() < end) {
        json_t *jobs = jobs_of(p, id, state);
        if (json_array_size(jobs) > 0) {
            json_t *j = json_incref(json_array_get(jobs, 0));
            json_decref(jobs);
            return j;
        }
        json_decref(jobs);
        bg_th_nap_ms(20);
    }
    fprintf(stderr, "assembly %s has no %s job after %d ms\n", id, state, deadline_ms);
    return NULL;
}

static void channel_url(const bg_th_proc *p, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/api/stream?channel=upload:main:%s", p->url, id);
}

/* The whole stored history of a finished assembly's channel: the stream
 * must end by itself. */
static void history(const bg_th_proc *p, const char *token, const char *id, bg_th_sse *s)
{
    char url[400];
    channel_url(p, id, url, sizeof(url));
    assert_int_equal(bg_th_sse_collect(url, token, -1, 0, 15000, s), 0);
    assert_int_equal(s->status, 200);
    if (!s->ended)
        fprintf(stderr, "the channel of %s did not end; got:\n%.4000s\n", id, s->raw ? s->raw : "");
    assert_true(s->ended);
}

static size_t count_events(const bg_th_sse *s, const char *name, const char *step)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->ev[i].name, name) != 0)
            continue;
        if (step != NULL) {
            json_t *d = json_loads(s->ev[i].data ? s->ev[i].data : "", 0, NULL);
            bool same = str_is(d, "step", step);
            json_decref(d);
            if (!same)
                continue;
        }
        n++;
    }
    return n;
}

/* Index of the first event name (with step when given) at or after from, or -1. */
static long find_event(const bg_th_sse *s, size_t from, const char *name, const char *step)
{
    for (size_t i = from; i < s->n; i++) {
        if (strcmp(s->ev[i].name, name) != 0)
            continue;
        json_t *d = json_loads(s->ev[i].data ? s->ev[i].data : "", 0, NULL);
        bool same = step == NULL || str_is(d, "step", step);
        json_decref(d);
        if (same)
            return (long)i;
    }
    return -1;
}

/* Ids strictly increasing, every data a JSON object naming the assembly. */
static bool events_well_formed(const bg_th_sse *s, const char *id)
{
    bool ok = true;
    for (size_t i = 0; i < s->n; i++) {
        json_t *d = json_loads(s->ev[i].data ? s->ev[i].data : "", 0, NULL);
        if (!str_is(d, "assembly_id", id) || s->ev[i].id <= 0 ||
            (i > 0 && s->ev[i].id <= s->ev[i - 1].id)) {
            fprintf(stderr, "event %zu (id %lld, %s) is not well formed: %s\n", i, s->ev[i].id,
                    s->ev[i].name, s->ev[i].data ? s->ev[i].data : "(no data)");
            ok = false;
        }
        json_decref(d);
    }
    return ok;
}

/* Starts the live stream M.live on a channel (after ending any earlier
 * one) and waits until it is connected. */
static bg_th_sse *live_start(const bg_th_proc *p, const char *token, const char *id)
{
    char url[400];
    bg_th_sse_free(&M.live);
    channel_url(p, id, url, sizeof(url));
    assert_int_equal(bg_th_sse_start(&M.live, url, token, -1, 0, SSE_DEADLINE_MS), 0);
    assert_true(bg_th_sse_wait_connected(&M.live, 10000));
    assert_int_equal(M.live.status, 200);
    return &M.live;
}

static void print_events(const bg_th_sse *s)
{
    for (size_t i = 0; i < s->n; i++)
        fprintf(stderr, "  %lld %s %s\n", s->ev[i].id, s->ev[i].name,
                s->ev[i].data ? s->ev[i].data : "");
}

/* Uploads a media file for an assembly through its tus_url. */
static int upload(const json_t *st, const char *token, const media *m, size_t chunk)
{
    char loc[600];
    int patches = 0;
    assert_int_equal(bg_th_tus_upload(str(st, "tus_url"), token, str(st, "assembly_id"), m->name,
                                      m->data, m->len, chunk, loc, sizeof(loc), &patches),
                     0);
    return patches;
}

/* Downloads url (Bearer token) into path; the HTTP status. */
static long download(const char *url, const char *token, const char *path, size_t *len)
{
    bg_th_resp r;
    assert_int_equal(bg_th_http("GET", url, token, NULL, 0, NULL, false, &r), 0);
    long status = r.status;
    if (status == 200 && path != NULL)
        assert_true(write_file(path, r.body, r.len));
    if (len != NULL)
        *len = r.len;
    bg_th_resp_free(&r);
    return status;
}

/* ---- webhooks ---- */

/* The receiver answers 500 to the first delivery of a webhook-id on a
 * /fail-once/ path, 200 otherwise. */
static int hook_policy(const bg_th_hook_req *q, size_t seen, void *ud)
{
    (void)ud;
    if (strncmp(q->path, "/fail-once/", 11) == 0 && seen == 0)
        return 500;
    return 200;
}

/* Standard Webhooks verification with OpenSSL's HMAC, independent of
 * proto/webhook.c: one of the space-separated "v1,<b64>" signatures must be
 * base64(HMAC-SHA256(b64decode(secret after "whsec_"), id "." ts "." body)). */
static bool signature_ok(const bg_th_hook_req *q, const char *secret)
{
    char id[256], ts[64], sigs[1024];
    unsigned char key[256];
    if (strncmp(secret, "whsec_", 6) != 0 || !bg_th_hook_header(q, "webhook-id", id, sizeof(id)) ||
        !bg_th_hook_header(q, "webhook-timestamp", ts, sizeof(ts)) ||
        !bg_th_hook_header(q, "webhook-signature", sigs, sizeof(sigs)))
        return false;
    long klen = bg_th_b64_decode(secret + 6, key, sizeof(key));
    if (klen <= 0)
        return false;
    size_t mlen = strlen(id) + 1 + strlen(ts) + 1 + q->body_len;
    char *msg = malloc(mlen);
    size_t o = 0;
    memcpy(msg + o, id, strlen(id));
    o += strlen(id);
    msg[o++] = '.';
    memcpy(msg + o, ts, strlen(ts));
    o += strlen(ts);
    msg[o++] = '.';
    memcpy(msg + o, q->body, q->body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    bool ok = HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)msg, mlen, mac, &maclen) != NULL;
    free(msg);
    if (!ok)
        return false;
    char want[128] = "v1,";
    bg_th_b64(mac, maclen, want + 3);
    for (char *save = NULL, *t = strtok_r(sigs, " ", &save); t != NULL;
         t = strtok_r(NULL, " ", &save))
        if (strcmp(t, want) == 0)
            return true;
    return false;
}

/* ---- organisations ---- */

static void make_org(const char *name, const char *email, org *o)
{
    char *body = dump(json_pack("{s:s}", "name", name));
    json_t *j = req(&M.s, "POST", "/api/v1/organizations", M.s.token, body, 201);
    free(body);
    snprintf(o->id, sizeof(o->id), "%s", str(j, "id"));
    snprintf(o->secret, sizeof(o->secret), "%s", str(j, "webhook_secret"));
    json_decref(j);
    assert_int_equal(strncmp(o->secret, "whsec_", 6), 0);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/users", o->id);
    body = dump(json_pack("{s:s,s:s,s:s,s:s}", "email", email, "name", name, "password", PASSWORD,
                          "role", "member"));
    j = req(&M.s, "POST", path, M.s.token, body, 201);
    free(body);
    snprintf(o->user_id, sizeof(o->user_id), "%s", str(j, "id"));
    json_decref(j);
    assert_int_equal(bg_th_login(&M.s, email, PASSWORD, o->id, o->token, sizeof(o->token)), 0);
}

static void org_id_by_name(const bg_th_proc *p, const char *name, char out[64])
{
    json_t *j = req(p, "GET", "/api/v1/organizations", p->token, NULL, 200);
    size_t i;
    json_t *o;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "organizations"), i, o) if (str_is(o, "name", name))
        snprintf(out, 64, "%s", str(o, "id"));
    json_decref(j);
    assert_int_equal(strlen(out), 36);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(M.root);
    char tpl[320], dir[320];
    snprintf(tpl, sizeof(tpl), "%s/templates", M.root);
    snprintf(M.tpl_env, sizeof(M.tpl_env), "BRANCHGATE_TEMPLATES_DIR=%s", tpl);
    if (!make_templates(tpl)) {
        fprintf(stderr, "cannot copy the templates\n");
        return -1;
    }
    if (!make_wav(&M.t1, "t1.wav", 440, 48000, 40) || !make_wav(&M.t2, "t2.wav", 550, 8000, 2) ||
        !make_wav(&M.t3, "t3.wav", 660, 8000, 2) || !make_wav(&M.t5, "t5.wav", 770, 8000, 3) ||
        !make_wav(&M.t6, "t6.wav", 880, 8000, 2) || !make_wav(&M.t7, "t7.wav", 990, 8000, 4) ||
        !make_wav(&M.t8, "t8.wav", 1100, 8000, 3) || !make_wav(&M.t9, "t9.wav", 1210, 8000, 2) ||
        !make_wav(&M.t10, "t10.wav", 1320, 8000, 2) ||
        !make_wav(&M.lng, "long.wav", 300, 8000, LONG_SECONDS))
        return -1;
    snprintf(dir, sizeof(dir), "%s/s", M.root);
    if (bg_th_start(&M.s, dir, NULL, env_s()) != 0) {
        bg_th_print_log(&M.s);
        return -1;
    }
    if (bg_th_hooks_start(&M.hooks, hook_policy, NULL) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&M.s, SIGKILL, 5000);
    bg_th_stop(&M.k, SIGKILL, 5000);
    bg_th_sse_free(&M.live); /* its server is gone: the stream ends */
    for (size_t i = 0; i < sizeof(M.bs) / sizeof(M.bs[0]); i++)
        bg_th_sse_free(&M.bs[i]);
    bg_th_hooks_stop(&M.hooks);
    media *all[] = {&M.t1, &M.t2, &M.t3, &M.t5, &M.t6, &M.t7, &M.t8, &M.t9, &M.t10, &M.lng};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->data);
    bg_th_rmtree(M.root);
    return 0;
}

/* Organisations A and B with a member each, logged in; the default
 * organisation's id. Needed by tests 2, 6 and 8. */
static void test_orgs(void **state)
{
    (void)state;
    make_org("media-a", "a@media.example", &M.a);
    make_org("media-b", "b@media.example", &M.b);
    org_id_by_name(&M.s, "default", M.default_org);
    assert_string_not_equal(M.a.secret, M.b.secret);
}

/* ---- 1. audio-preview end to end ---- */

static void test_audio_preview_end_to_end(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    json_t *st = create(&M.s, tok, "audio-preview", &M.t1, NULL, NULL, NULL, 201);
    char id[65], want_id[65];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    expected_id(M.t1.md5, "audio-preview", "anonymous", want_id);
    assert_string_equal(id, want_id);
    assert_true(str_is(st, "ok", "ASSEMBLY_UPLOADING"));
    char want_tus[300], want_stream[400];
    snprintf(want_tus, sizeof(want_tus), "%s/api/v1/uploads/", M.s.url);
    assert_true(str_is(st, "tus_url", want_tus));
    channel_url(&M.s, id, want_stream, sizeof(want_stream));
    assert_true(str_is(st, "update_stream_url", want_stream));
    json_t *ef = json_array_get(json_object_get(st, "expected_files"), 0);
    assert_true(str_is(ef, "name", "t1.wav") && str_is(ef, "md5", M.t1.md5));
    assert_int_equal(json_integer_value(json_object_get(ef, "size")), (json_int_t)M.t1.len);

    /* The SSE client is connected before the first byte is sent. */
    bg_th_sse *live = live_start(&M.s, tok, id);
    int patches = upload(st, tok, &M.t1, CHUNK);
    assert_int_equal(patches, (int)((M.t1.len + CHUNK - 1) / CHUNK));
    assert_true(patches >= 4);
    bg_th_sse_join(live);
    bg_th_sse *sse = live;
    assert_int_equal(sse->status, 200);
    assert_int_equal(strncmp(sse->content_type, "text/event-stream", 17), 0);
    if (!sse->ended || sse->n == 0 || strcmp(sse->ev[sse->n - 1].name, "assembly:completed") != 0) {
        fprintf(stderr, "stream (ended %d):\n", sse->ended);
        print_events(sse);
        bg_th_print_log(&M.s);
    }
    assert_true(sse->ended);
    assert_true(events_well_formed(sse, id));

    /* Progress for every PATCH, offsets increasing, the last one complete
     * (the creation may report offset 0 first). */
    long long last_off = -1;
    long last_progress = -1;
    size_t moved = 0;
    for (size_t i = 0; i < sse->n; i++) {
        if (strcmp(sse->ev[i].name, "upload:progress") != 0)
            continue;
        json_t *d = json_loads(sse->ev[i].data, 0, NULL);
        long long off = json_integer_value(json_object_get(d, "offset"));
        assert_true(off > last_off);
        moved += off > 0;
        assert_int_equal(json_integer_value(json_object_get(d, "length")), (json_int_t)M.t1.len);
        assert_int_equal(json_is_true(json_object_get(d, "complete")), off == (long long)M.t1.len);
        last_off = off;
        last_progress = (long)i;
        json_decref(d);
    }
    assert_int_equal(moved, (size_t)patches);
    assert_int_equal(last_off, (long long)M.t1.len);
    /* Then executing, each step started and done once, completed last. */
    assert_int_equal(count_events(sse, "assembly:executing", NULL), 1);
    long exec = find_event(sse, 0, "assembly:executing", NULL);
    assert_true(exec > last_progress);
    /* The four steps share one decode of the upload: every one starts
     * before any is done (one at a time, meta would be done before the
     * preview starts). */
    const char *steps[] = {"meta", "preview", "waveform", "loudness"};
    long first_done = find_event(sse, 0, "step:done", NULL);
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(count_events(sse, "step:start", steps[k]), 1);
        assert_int_equal(count_events(sse, "step:done", steps[k]), 1);
        long s0 = find_event(sse, 0, "step:start", steps[k]);
        long s1 = find_event(sse, 0, "step:done", steps[k]);
        assert_true(exec < s0 && s0 < s1 && s0 < first_done);
    }
    for (size_t i = 0; i < sse->n; i++) {
        if (strcmp(sse->ev[i].name, "step:progress") != 0)
            continue;
        json_t *d = json_loads(sse->ev[i].data, 0, NULL);
        json_int_t pct = json_integer_value(json_object_get(d, "percent"));
        assert_true(pct >= 0 && pct <= 100);
        json_decref(d);
    }
    assert_int_equal(count_events(sse, "assembly:completed", NULL), 1);
    assert_int_equal(count_events(sse, "assembly:failed", NULL), 0);
    assert_string_equal(sse->ev[sse->n - 1].name, "assembly:completed");
    bg_th_sse_free(sse);

    /* The status JSON. */
    json_decref(st);
    st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 10000);
    assert_non_null(st);
    assert_null(json_object_get(st, "error"));
    assert_int_equal(json_integer_value(json_object_get(st, "bytes_expected")),
                     (json_int_t)M.t1.len);
    assert_int_equal(json_integer_value(json_object_get(st, "bytes_received")),
                     (json_int_t)M.t1.len);
    json_t *up = json_array_get(json_object_get(st, "uploads"), 0);
    assert_true(str_is(up, "md5hash", M.t1.md5) && str_is(up, "name", "t1.wav"));
    json_t *results = json_object_get(st, "results");
    assert_int_equal(json_object_size(results), 4);
    /* Waveform: a PNG and its JSON peaks; loudness: the measurement, the
     * same one meta carries. */
    json_t *wf = json_object_get(results, "waveform");
    assert_int_equal(json_array_size(wf), 2);
    assert_true(str_is(json_array_get(wf, 0), "name", "t1.png") &&
                str_is(json_array_get(wf, 0), "mime", "image/png"));
    assert_true(str_is(json_array_get(wf, 1), "name", "t1.json") &&
                str_is(json_array_get(wf, 1), "mime", "application/json"));
    json_t *wmeta = json_object_get(json_array_get(wf, 0), "meta");
    assert_int_equal(json_integer_value(json_object_get(wmeta, "length")), 1800);
    json_t *loud = json_object_get(json_array_get(json_object_get(results, "loudness"), 0), "meta");
    double lufs = json_number_value(json_object_get(loud, "integrated_lufs"));
    assert_true(json_is_number(json_object_get(loud, "integrated_lufs")) && lufs < 0 && lufs > -70);
    json_t *mloud = json_object_get(
        json_object_get(json_array_get(json_object_get(results, "meta"), 0), "meta"), "loudness");
    assert_true(json_equal(loud, mloud));
    json_t *meta = json_object_get(results, "meta");
    assert_int_equal(json_array_size(meta), 1);
    double mdur = json_number_value(
        json_object_get(json_object_get(json_array_get(meta, 0), "meta"), "duration"));
    assert_true(fabs(mdur - 40.0) < 0.1);
    json_t *prev = json_object_get(results, "preview");
    assert_int_equal(json_array_size(prev), 1);
    json_t *res = json_array_get(prev, 0);
    assert_true(str_is(res, "name", "t1.mp3") && str_is(res, "mime", "audio/mpeg"));
    assert_true(str_is(res, "original_id", str(up, "id")));
    char want_url[600];
    snprintf(want_url, sizeof(want_url), "%s/api/v1/files/main/%s/preview/t1.mp3", M.s.url, id);
    assert_true(str_is(res, "ssl_url", want_url));
    snprintf(M.t1_id, sizeof(M.t1_id), "%s", id);
    snprintf(M.preview_url, sizeof(M.preview_url), "%s", want_url);

    /* The result itself: a 30 s mp3 at 44.1 kHz, stereo. */
    char out[400];
    size_t len = 0;
    snprintf(out, sizeof(out), "%s/t1-preview.mp3", M.root);
    assert_int_equal(download(want_url, tok, out, &len), 200);
    assert_int_equal(len, (size_t)json_integer_value(json_object_get(res, "size")));
    probe pr;
    assert_true(ffprobe(out, &pr));
    fprintf(stderr, "preview: %s %.3f s %ld Hz %ld ch\n", pr.codec, pr.duration, pr.sample_rate,
            pr.channels);
    assert_string_equal(pr.codec, "mp3");
    assert_true(fabs(pr.duration - 30.0) <= 0.1);
    assert_int_equal(pr.sample_rate, 44100);
    assert_int_equal(pr.channels, 2);
    /* Not without credentials. */
    assert_int_equal(download(want_url, NULL, NULL, NULL), 401);
    json_decref(st);
}

/* ---- 2. the same assembly twice is one assembly and one job ---- */

static void test_create_twice_one_job(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    json_t *a = create(&M.s, tok, "probe", &M.t2, NULL, NULL, NULL, 201);
    json_t *b = create(&M.s, tok, "probe", &M.t2, NULL, NULL, NULL, 200);
    char id[65];
    snprintf(id, sizeof(id), "%s", str(a, "assembly_id"));
    assert_true(str_is(b, "assembly_id", id));
    assert_true(str_is(b, "ok", "ASSEMBLY_UPLOADING"));
    /* The md5 in another case is the same file. */
    char upper[33];
    for (size_t i = 0; i < 33; i++)
        upper[i] =
            (char)(M.t2.md5[i] >= 'a' && M.t2.md5[i] <= 'f' ? M.t2.md5[i] - 32 : M.t2.md5[i]);
    json_t *c = create(&M.s, tok, "probe", &M.t2, upper, NULL, NULL, 200);
    assert_true(str_is(c, "assembly_id", id));
    json_decref(c);
    /* The same id for another organisation is a conflict, revealing nothing. */
    char *body = dump(json_pack("{s:s,s:[{s:s,s:I,s:s}],s:s}", "template_id", "probe", "files",
                                "name", M.t2.name, "size", (json_int_t)M.t2.len, "md5", M.t2.md5,
                                "organization_id", M.b.id));
    bg_th_resp r;
    assert_int_equal(bg_th_post_json(&M.s, "/api/v1/assemblies", tok, body, &r), 0);
    free(body);
    assert_true(bg_th_is_error(&r, 409, "ASSEMBLY_EXISTS"));
    assert_null(strstr(r.body, id));
    bg_th_resp_free(&r);
    assert_int_equal(json_array_size(json_object_get(b, "uploads")), 0);

    upload(a, tok, &M.t2, CHUNK);
    json_t *st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    json_decref(st);
    /* After completion: still the same assembly, 200, no new work. */
    json_t *d = create(&M.s, tok, "probe", &M.t2, NULL, NULL, NULL, 200);
    assert_true(str_is(d, "assembly_id", id));
    assert_true(str_is(d, "ok", "ASSEMBLY_COMPLETED"));
    assert_int_equal(json_integer_value(json_object_get(d, "run")), 1);
    json_decref(d);
    json_t *jobs = jobs_of(&M.s, id, NULL);
    assert_int_equal(json_array_size(jobs), 1);
    json_t *job = json_array_get(jobs, 0);
    assert_true(str_is(job, "state", "done"));
    assert_int_equal(json_integer_value(json_object_get(job, "run")), 1);
    assert_int_equal(json_integer_value(json_object_get(job, "receive_count")), 1);
    json_decref(jobs);
    jobs = jobs_of(&M.s, id, "done");
    assert_int_equal(json_array_size(jobs), 1);
    json_decref(jobs);
    json_decref(a);
    json_decref(b);
}

/* ---- 3. an md5 that does not match the bytes ---- */

static void test_md5_mismatch(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    char wrong[33];
    bg_th_md5_hex("not the bytes of t3.wav", 23, wrong);
    json_t *st = create(&M.s, tok, "probe", &M.t3, wrong, NULL, NULL, 201);
    char id[65], want_id[65];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    expected_id(wrong, "probe", "anonymous", want_id);
    assert_string_equal(id, want_id);
    /* The upload itself completes: its bytes were valid for tus. */
    upload(st, tok, &M.t3, 16384);
    json_decref(st);
    st = wait_status(&M.s, tok, id, NULL, 10000);
    assert_non_null(st);
    assert_null(json_object_get(st, "ok"));
    assert_true(str_is(st, "error", "MD5_MISMATCH"));
    assert_true(json_is_false(json_object_get(st, "retryable")));
    assert_non_null(strstr(str(st, "message"), M.t3.md5));
    assert_int_equal(json_object_size(json_object_get(st, "results")), 0);
    json_decref(st);
    /* No job at all, and it cannot be replayed. */
    json_t *jobs = jobs_of(&M.s, id, NULL);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s/replay", id);
    assert_true(fails_with(&M.s, "POST", path, tok, 409, "ASSEMBLY_BUSY"));
    /* The channel tells the same: failed, never executing. */
    bg_th_sse h;
    history(&M.s, tok, id, &h);
    assert_int_equal(count_events(&h, "assembly:failed", NULL), 1);
    assert_int_equal(count_events(&h, "assembly:executing", NULL), 0);
    assert_string_equal(h.ev[h.n - 1].name, "assembly:failed");
    bg_th_sse_free(&h);
}

/* ---- 4. SIGKILL while a job runs ---- */

static void test_sigkill_while_running(void **state)
{
    (void)state;
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/k", M.root);
    if (bg_th_start(&M.k, dir, NULL, env_k()) != 0) {
        bg_th_print_log(&M.k);
        fail();
    }
    M.k_started = true;
    const char *tok = M.k.token;
    /* The default organisation's secret, to verify the webhook. */
    char korg[64], path[300], secret[128];
    org_id_by_name(&M.k, "default", korg);
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/webhook-secret", korg);
    json_t *j = req(&M.k, "POST", path, tok, NULL, 200);
    snprintf(secret, sizeof(secret), "%s", str(j, "webhook_secret"));
    json_decref(j);

    char notify[200];
    snprintf(notify, sizeof(notify), "%s/ok/kill", M.hooks.url);
    json_t *st = create(&M.k, tok, "long-encode", &M.lng, NULL, notify, NULL, 201);
    char id[65];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    bg_th_sse *live = live_start(&M.k, tok, id);
    long long t0 = bg_th_now_ms();
    upload(st, tok, &M.lng, 4194304);
    json_decref(st);
    /* Kill once the job holds its lease and the encode has started. */
    json_t *running = wait_job(&M.k, id, "running", 20000);
    assert_non_null(running);
    json_decref(running);
    bool progressed = bg_th_sse_wait_event(live, "step:start", 20000);
    long long t_kill = bg_th_now_ms();
    assert_int_equal(bg_th_stop(&M.k, SIGKILL, 5000), 128 + SIGKILL);
    bg_th_sse_free(live);
    assert_true(progressed);
    fprintf(stderr, "killed %lld ms after the upload began\n", t_kill - t0);

    if (bg_th_start(&M.k, dir, NULL, env_k()) != 0) {
        bg_th_print_log(&M.k);
        fail();
    }
    st = wait_status(&M.k, tok, id, "ASSEMBLY_COMPLETED", 60000);
    assert_non_null(st);
    fprintf(stderr, "completed %lld ms after the restart began\n", bg_th_now_ms() - t_kill);
    json_t *prev = json_object_get(json_object_get(st, "results"), "preview");
    assert_int_equal(json_object_size(json_object_get(st, "results")), 1);
    assert_int_equal(json_array_size(prev), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "attempts")), 2);
    /* The output is whole: the full input, once. */
    char out[400];
    snprintf(out, sizeof(out), "%s/long-killed.mp3", M.root);
    assert_int_equal(download(str(json_array_get(prev, 0), "ssl_url"), tok, out, NULL), 200);
    probe pr;
    assert_true(ffprobe(out, &pr));
    assert_string_equal(pr.codec, "mp3");
    assert_true(fabs(pr.duration - LONG_SECONDS) < 0.2);

    /* One job, claimed twice, done. */
    json_t *jobs = jobs_of(&M.k, id, NULL);
    assert_int_equal(json_array_size(jobs), 1);
    json_t *job = json_array_get(jobs, 0);
    assert_true(str_is(job, "state", "done"));
    assert_int_equal(json_integer_value(json_object_get(job, "receive_count")), 2);
    json_decref(jobs);

    /* The history: one completion, the step done once. */
    bg_th_sse h;
    history(&M.k, tok, id, &h);
    assert_true(events_well_formed(&h, id));
    assert_int_equal(count_events(&h, "assembly:completed", NULL), 1);
    assert_int_equal(count_events(&h, "step:done", "preview"), 1);
    assert_int_equal(count_events(&h, "step:start", "preview"), 2); /* one per claim */
    assert_string_equal(h.ev[h.n - 1].name, "assembly:completed");
    bg_th_sse_free(&h);

    /* One webhook delivery, signed with the organisation's secret. */
    json_decref(st);
    long long end = bg_th_now_ms() + 15000;
    do {
        st = status_of(&M.k, tok, id);
        if (str_is(st, "notify_status", "delivered"))
            break;
        json_decref(st);
        st = NULL;
        bg_th_nap_ms(50);
    } while (bg_th_now_ms() < end);
    assert_non_null(st);
    json_decref(st);
    bg_th_hook_req *reqs = NULL;
    size_t n = bg_th_hooks_get(&M.hooks, "/ok/kill", &reqs);
    assert_int_equal(n, 1);
    char wid[256], want_wid[128];
    assert_true(bg_th_hook_header(&reqs[0], "webhook-id", wid, sizeof(wid)));
    snprintf(want_wid, sizeof(want_wid), "msg_%s_1", id);
    assert_string_equal(wid, want_wid);
    assert_true(signature_ok(&reqs[0], secret));
    bg_th_hooks_free(reqs, n);
}

/* ---- 5. a step that always fails: retried, dead, requeued ---- */

static void test_dead_letter_and_requeue(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    json_t *st = create(&M.s, tok, "audio-preview", &M.t5, NULL, NULL, NULL, 201);
    char id[65], block[700], parent[400], path[200];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    /* A regular file where the assembly's output directory would go. */
    snprintf(parent, sizeof(parent), "%s/s/outputs", M.root);
    mkdir(parent, 0700);
    snprintf(parent, sizeof(parent), "%s/s/outputs/main", M.root);
    mkdir(parent, 0700);
    snprintf(block, sizeof(block), "%s/%s", parent, id);
    assert_true(write_file(block, "in the way\n", 11));
    upload(st, tok, &M.t5, CHUNK);
    json_decref(st);

    st = wait_status(&M.s, tok, id, NULL, 20000);
    assert_non_null(st);
    assert_null(json_object_get(st, "ok"));
    assert_true(str_is(st, "error", "OUTPUT_ERROR"));
    assert_true(str_is(st, "step", "preview"));
    assert_true(json_is_true(json_object_get(st, "retryable")));
    assert_int_equal(json_integer_value(json_object_get(st, "attempts")), 3);
    /* The meta step's result, stored by the first attempt, is kept. */
    json_t *results = json_object_get(st, "results");
    assert_int_equal(json_array_size(json_object_get(results, "meta")), 1);
    assert_null(json_object_get(results, "preview"));
    json_decref(st);

    json_t *dead = jobs_of(&M.s, id, "dead");
    assert_int_equal(json_array_size(dead), 1);
    json_t *job = json_array_get(dead, 0);
    json_int_t jid = json_integer_value(json_object_get(job, "id"));
    assert_int_equal(json_integer_value(json_object_get(job, "receive_count")), 3);
    assert_int_equal(json_integer_value(json_object_get(job, "max_receive")), 3);
    assert_true(strlen(str(job, "last_error")) > 0);
    json_decref(dead);
    bg_th_sse h;
    history(&M.s, tok, id, &h);
    assert_int_equal(count_events(&h, "step:start", "meta"), 1);
    assert_int_equal(count_events(&h, "step:start", "preview"), 3);
    assert_int_equal(count_events(&h, "assembly:failed", NULL), 1);
    assert_string_equal(h.ev[h.n - 1].name, "assembly:failed");
    bg_th_sse_free(&h);

    /* Out of the way, requeued: it completes. */
    assert_int_equal(unlink(block), 0);
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld/requeue", (long long)jid);
    json_t *rq = req(&M.s, "POST", path, M.s.token, NULL, 200);
    assert_true(str_is(rq, "state", "queued"));
    assert_int_equal(json_integer_value(json_object_get(rq, "receive_count")), 0);
    json_decref(rq);
    st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    assert_null(json_object_get(st, "error"));
    results = json_object_get(st, "results");
    assert_int_equal(json_array_size(json_object_get(results, "meta")), 1);
    assert_int_equal(json_array_size(json_object_get(results, "preview")), 1);
    json_decref(st);
    json_t *jobs = jobs_of(&M.s, id, NULL);
    assert_int_equal(json_array_size(jobs), 1);
    assert_true(str_is(json_array_get(jobs, 0), "state", "done"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(jobs, 0), "receive_count")),
                     1);
    json_decref(jobs);
    /* Only a dead job can be requeued. */
    assert_true(fails_with(&M.s, "POST", path, M.s.token, 404, "JOB_NOT_FOUND"));
}

/* ---- 6. a webhook retried after a 500, verified independently ---- */

static void test_webhook_retry_and_signature(void **state)
{
    (void)state;
    const char *tok = M.a.token;
    char notify[200];
    snprintf(notify, sizeof(notify), "%s/fail-once/t6", M.hooks.url);
    json_t *st = create(&M.s, tok, "probe", &M.t6, NULL, notify, NULL, 201);
    char id[65], want_id[65];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    expected_id(M.t6.md5, "probe", M.a.user_id, want_id);
    assert_string_equal(id, want_id);
    assert_true(str_is(st, "notify_url", notify));
    upload(st, tok, &M.t6, CHUNK);
    json_decref(st);
    st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    json_decref(st);
    long long end = bg_th_now_ms() + 20000;
    st = NULL;
    while (bg_th_now_ms() < end) {
        json_decref(st);
        st = status_of(&M.s, tok, id);
        if (str_is(st, "notify_status", "delivered"))
            break;
        bg_th_nap_ms(50);
    }
    if (!str_is(st, "notify_status", "delivered")) {
        char *s = json_dumps(st, JSON_COMPACT);
        fprintf(stderr, "never delivered: %s\n", s);
        free(s);
    }
    assert_true(str_is(st, "notify_status", "delivered"));
    assert_int_equal(json_integer_value(json_object_get(st, "notify_response_code")), 200);
    json_t *att = json_object_get(st, "notify_attempts");
    assert_int_equal(json_array_size(att), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 0), "status")), 500);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 1), "status")), 200);
    assert_non_null(str(json_array_get(att, 0), "at"));
    json_decref(st);

    bg_th_hook_req *q = NULL;
    size_t n = bg_th_hooks_get(&M.hooks, "/fail-once/t6", &q);
    assert_int_equal(n, 2);
    assert_int_equal(q[0].answered, 500);
    assert_int_equal(q[1].answered, 200);
    char id0[256], id1[256], ts0[64], ts1[64], want_wid[128], ct[128];
    snprintf(want_wid, sizeof(want_wid), "msg_%s_1", id);
    assert_true(bg_th_hook_header(&q[0], "webhook-id", id0, sizeof(id0)));
    assert_true(bg_th_hook_header(&q[1], "webhook-id", id1, sizeof(id1)));
    assert_string_equal(id0, want_wid);
    assert_string_equal(id1, id0);
    assert_true(bg_th_hook_header(&q[0], "webhook-timestamp", ts0, sizeof(ts0)));
    assert_true(bg_th_hook_header(&q[1], "webhook-timestamp", ts1, sizeof(ts1)));
    for (size_t i = 0; i < 2; i++) {
        const char *ts = i == 0 ? ts0 : ts1;
        long long t = strtoll(ts, NULL, 10);
        assert_true(llabs(t - q[i].at_unix_ms / 1000) <= 5);
        assert_true(strcmp(q[i].method, "POST") == 0);
        assert_true(bg_th_hook_header(&q[i], "content-type", ct, sizeof(ct)));
        assert_int_equal(strncmp(ct, "application/json", 16), 0);
        /* Org A's secret verifies; org B's does not. */
        assert_true(signature_ok(&q[i], M.a.secret));
        assert_false(signature_ok(&q[i], M.b.secret));
        json_t *body = json_loadb(q[i].body, q[i].body_len, 0, NULL);
        assert_true(str_is(body, "assembly_id", id));
        assert_true(str_is(body, "ok", "ASSEMBLY_COMPLETED"));
        json_decref(body);
    }
    /* The retry came after the schedule's 1 s, with the same payload. */
    assert_true(strtoll(ts1, NULL, 10) >= strtoll(ts0, NULL, 10));
    assert_true(q[1].at_unix_ms - q[0].at_unix_ms >= 900);
    assert_int_equal(q[0].body_len, q[1].body_len);
    assert_memory_equal(q[0].body, q[1].body, q[0].body_len);
    /* A tampered body does not verify. */
    q[0].body[q[0].body_len / 2] ^= 1;
    assert_false(signature_ok(&q[0], M.a.secret));
    bg_th_hooks_free(q, n);
}

/* ---- 7. SSE resumes after Last-Event-ID ---- */

static void test_sse_resume(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    json_t *st = create(&M.s, tok, "probe", &M.t7, NULL, NULL, NULL, 201);
    char id[65];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    int patches = upload(st, tok, &M.t7, 16384);
    assert_true(patches >= 4);
    json_decref(st);
    st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    json_decref(st);

    bg_th_sse all;
    history(&M.s, tok, id, &all);
    assert_true(events_well_formed(&all, id));
    assert_true(all.n >= (size_t)patches + 4);
    assert_string_equal(all.ev[all.n - 1].name, "assembly:completed");
    char url[400];
    channel_url(&M.s, id, url, sizeof(url));
    /* Header and query forms of the resume point. */
    for (int form = 0; form < 2; form++) {
        bg_th_sse rest;
        char qurl[500];
        snprintf(qurl, sizeof(qurl), "%s&last_event_id=%lld", url, all.ev[2].id);
        if (form == 0)
            assert_int_equal(bg_th_sse_collect(url, tok, all.ev[2].id, 0, 15000, &rest), 0);
        else
            assert_int_equal(bg_th_sse_collect(qurl, tok, -1, 0, 15000, &rest), 0);
        assert_int_equal(rest.status, 200);
        assert_true(rest.ended);
        if (rest.n != all.n - 3) {
            fprintf(stderr, "all:\n");
            print_events(&all);
            fprintf(stderr, "after %lld:\n", all.ev[2].id);
            print_events(&rest);
        }
        assert_int_equal(rest.n, all.n - 3);
        for (size_t i = 0; i < rest.n; i++) {
            assert_int_equal(rest.ev[i].id, all.ev[i + 3].id);
            assert_string_equal(rest.ev[i].name, all.ev[i + 3].name);
            assert_string_equal(rest.ev[i].data, all.ev[i + 3].data);
        }
        bg_th_sse_free(&rest);
    }
    /* A resume point that is not an id. */
    bg_th_resp r;
    const char *h[] = {"Last-Event-ID: twelve", NULL};
    assert_int_equal(bg_th_http("GET", url, tok, NULL, 0, h, false, &r), 0);
    assert_true(bg_th_is_error(&r, 400, "INVALID_PARAMETER"));
    bg_th_resp_free(&r);
    bg_th_sse_free(&all);
}

/* ---- 8. organisations do not see each other's assemblies ---- */

static bool lists(const char *token, const char *id)
{
    json_t *j = req(&M.s, "GET", "/api/v1/assemblies?limit=500", token, NULL, 200);
    size_t i;
    json_t *a;
    bool found = false;
    json_array_foreach(json_object_get(j, "assemblies"), i, a) found |=
        str_is(a, "assembly_id", id);
    json_decref(j);
    return found;
}

static void test_org_isolation(void **state)
{
    (void)state;
    json_t *st = create(&M.s, M.a.token, "audio-preview", &M.t8, NULL, NULL, NULL, 201);
    char id[65], p_get[200], p_status[200], p_replay[200], stream[400], file[600], upl[600];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    upload(st, M.a.token, &M.t8, CHUNK);
    json_decref(st);
    st = wait_status(&M.s, M.a.token, id, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    snprintf(file, sizeof(file), "%s",
             str(json_array_get(json_object_get(json_object_get(st, "results"), "preview"), 0),
                 "ssl_url"));
    snprintf(upl, sizeof(upl), "%s%s", str(st, "tus_url"),
             str(json_array_get(json_object_get(st, "uploads"), 0), "id"));
    assert_true(str_is(st, "organization_id", M.a.id));
    json_decref(st);
    snprintf(p_get, sizeof(p_get), "/api/v1/assemblies/%s", id);
    snprintf(p_status, sizeof(p_status), "/api/status?assembly_id=%s", id);
    snprintf(p_replay, sizeof(p_replay), "/api/v1/assemblies/%s/replay", id);
    channel_url(&M.s, id, stream, sizeof(stream));

    /* B: 404 everywhere, before any stream starts; nothing listed. */
    int bad = 0;
    bad += !fails_with(&M.s, "GET", p_get, M.b.token, 404, "ASSEMBLY_NOT_FOUND");
    bad += !fails_with(&M.s, "GET", p_status, M.b.token, 404, "ASSEMBLY_NOT_FOUND");
    bg_th_resp r;
    assert_int_equal(bg_th_http("GET", stream, M.b.token, NULL, 0, NULL, false, &r), 0);
    char ct[128] = "";
    bg_th_header(&r, "content-type", ct, sizeof(ct));
    bad += !bg_th_is_error(&r, 404, "ASSEMBLY_NOT_FOUND");
    bad += strncmp(ct, "application/json", 16) != 0;
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_http("GET", file, M.b.token, NULL, 0, NULL, false, &r), 0);
    bad += r.status != 404;
    bad += r.body != NULL && strstr(r.body, "ID3") == r.body;
    bg_th_resp_free(&r);
    const char *tus[] = {"Tus-Resumable: 1.0.0", NULL};
    assert_int_equal(bg_th_http("HEAD", upl, M.b.token, NULL, 0, tus, false, &r), 0);
    bad += r.status != 404;
    bg_th_resp_free(&r);
    bad += !fails_with(&M.s, "DELETE", p_get, M.b.token, 404, "ASSEMBLY_NOT_FOUND");
    bad += !fails_with(&M.s, "POST", p_replay, M.b.token, 404, "ASSEMBLY_NOT_FOUND");
    bad += lists(M.b.token, id);
    if (bad)
        fprintf(stderr, "%d isolation checks failed\n", bad);
    assert_int_equal(bad, 0);

    /* A: every read answers, and B's attempts changed nothing. */
    json_t *a1 = req(&M.s, "GET", p_get, M.a.token, NULL, 200);
    json_t *a2 = req(&M.s, "GET", p_status, M.a.token, NULL, 200);
    assert_true(str_is(a1, "ok", "ASSEMBLY_COMPLETED"));
    assert_true(str_is(a2, "assembly_id", id) && str_is(a2, "ok", "ASSEMBLY_COMPLETED"));
    assert_int_equal(json_integer_value(json_object_get(a1, "run")), 1);
    json_decref(a1);
    json_decref(a2);
    bg_th_sse h;
    history(&M.s, M.a.token, id, &h);
    assert_int_equal(count_events(&h, "assembly:completed", NULL), 1);
    assert_int_equal(count_events(&h, "assembly:canceled", NULL), 0);
    bg_th_sse_free(&h);
    char out[400];
    snprintf(out, sizeof(out), "%s/t8-preview.mp3", M.root);
    assert_int_equal(download(file, M.a.token, out, NULL), 200);
    probe pr;
    assert_true(ffprobe(out, &pr));
    assert_string_equal(pr.codec, "mp3");
    assert_int_equal(bg_th_http("HEAD", upl, M.a.token, NULL, 0, tus, false, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_true(lists(M.a.token, id));
    /* The admin sees every organisation. */
    assert_true(lists(M.s.token, id));
}

/* ---- 9. cancel a running job, then replay ---- */

/* True when dir has no entries (or does not exist). */
static bool dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n == 0;
}

static void test_cancel_and_replay(void **state)
{
    (void)state;
    const char *tok = M.s.token;
    json_t *st = create(&M.s, tok, "long-encode", &M.lng, NULL, NULL, NULL, 201);
    char id[65], path[200], part[700];
    snprintf(id, sizeof(id), "%s", str(st, "assembly_id"));
    bg_th_sse *live = live_start(&M.s, tok, id);
    upload(st, tok, &M.lng, CHUNK);
    json_decref(st);
    /* Cancel while the encode is writing its output. */
    assert_true(bg_th_sse_wait_event(live, "step:start", 20000));
    json_t *running = wait_job(&M.s, id, "running", 10000);
    assert_non_null(running);
    json_decref(running);
    snprintf(part, sizeof(part), "%s/s/outputs/main/%s/preview", M.root, id);
    long long end = bg_th_now_ms() + 10000;
    while (dir_empty(part) && bg_th_now_ms() < end)
        bg_th_nap_ms(5);
    assert_false(dir_empty(part));

    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    long long t_cancel = bg_th_now_ms();
    st = req(&M.s, "DELETE", path, tok, NULL, 200);
    assert_true(str_is(st, "ok", "ASSEMBLY_CANCELED"));
    json_decref(st);
    /* The live stream ends with the cancel. */
    bg_th_sse_join(live);
    assert_true(live->ended);
    assert_string_equal(live->ev[live->n - 1].name, "assembly:canceled");
    assert_int_equal(count_events(live, "assembly:completed", NULL), 0);
    assert_int_equal(count_events(live, "step:done", "preview"), 0);
    /* Comment lines (the opening one, heartbeats) are not events. */
    assert_true(live->comments >= 1);
    bg_th_sse_free(live);
    json_t *job = wait_job(&M.s, id, "canceled", 2000);
    assert_non_null(job);
    assert_true(bg_th_now_ms() - t_cancel < 2000);
    assert_int_equal(json_integer_value(json_object_get(job, "run")), 1);
    json_decref(job);
    json_t *none = jobs_of(&M.s, id, "running");
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    /* The robot stops at its next progress callback (within 250 ms) and
     * removes its partial output: the step's output directory empties.
     * The replay waits for that, because a replay while the canceled robot
     * still runs shares its output path (see the report of this test). */
    end = bg_th_now_ms() + 3000;
    while (!dir_empty(part) && bg_th_now_ms() < end)
        bg_th_nap_ms(10);
    assert_true(dir_empty(part));
    fprintf(stderr, "robot stopped %lld ms after the cancel\n", bg_th_now_ms() - t_cancel);
    st = status_of(&M.s, tok, id);
    assert_true(str_is(st, "ok", "ASSEMBLY_CANCELED"));
    assert_null(json_object_get(json_object_get(st, "results"), "preview"));
    json_decref(st);

    /* Replay: a new run that completes. */
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s/replay", id);
    st = req(&M.s, "POST", path, tok, NULL, 202);
    assert_true(str_is(st, "ok", "ASSEMBLY_EXECUTING"));
    assert_int_equal(json_integer_value(json_object_get(st, "run")), 2);
    json_decref(st);
    assert_true(fails_with(&M.s, "POST", path, tok, 409, "ASSEMBLY_BUSY"));
    st = wait_status(&M.s, tok, id, "ASSEMBLY_COMPLETED", 60000);
    assert_non_null(st);
    assert_int_equal(json_array_size(json_object_get(json_object_get(st, "results"), "preview")),
                     1);
    json_decref(st);
    json_t *jobs = jobs_of(&M.s, id, NULL);
    assert_int_equal(json_array_size(jobs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *j = json_array_get(jobs, i);
        json_int_t run = json_integer_value(json_object_get(j, "run"));
        assert_true(run == 1 || run == 2);
        assert_true(str_is(j, "state", run == 1 ? "canceled" : "done"));
        if (run == 2)
            assert_int_equal(json_integer_value(json_object_get(j, "receive_count")), 1);
    }
    json_decref(jobs);
    /* The history: canceled, then nothing until the replay's executing;
     * one completion, after it. */
    bg_th_sse h;
    history(&M.s, tok, id, &h);
    assert_true(events_well_formed(&h, id));
    long canceled = find_event(&h, 0, "assembly:canceled", NULL);
    assert_true(canceled >= 0);
    assert_int_equal(count_events(&h, "assembly:canceled", NULL), 1);
    if ((size_t)canceled + 1 >= h.n || strcmp(h.ev[canceled + 1].name, "assembly:executing") != 0)
        print_events(&h);
    assert_string_equal(h.ev[canceled + 1].name, "assembly:executing");
    assert_int_equal(count_events(&h, "assembly:completed", NULL), 1);
    assert_true(find_event(&h, 0, "assembly:completed", NULL) > canceled);
    assert_int_equal(count_events(&h, "step:done", "preview"), 1);
    assert_string_equal(h.ev[h.n - 1].name, "assembly:completed");
    bg_th_sse_free(&h);
}

/* ---- 10. result downloads with Range (test 1's preview) ---- */

/* GET url with an optional Range header, over HTTP/2 (prior knowledge)
 * when h2. */
static void get_range(const char *url, const char *token, const char *range, bool h2, bg_th_resp *r)
{
    char h[200];
    const char *hs[] = {h, NULL};
    if (range != NULL)
        snprintf(h, sizeof(h), "Range: %s", range);
    assert_int_equal(bg_th_http("GET", url, token, NULL, 0, range ? hs : NULL, h2, r), 0);
}

/* The answer came over HTTP/2 (h2) or HTTP/1.1. */
static bool over(const bg_th_resp *r, bool h2)
{
    const char *want = h2 ? "HTTP/2 " : "HTTP/1.1 ";
    bool ok = r->headers != NULL && strncmp(r->headers, want, strlen(want)) == 0;
    if (!ok)
        fprintf(stderr, "not %s: %.60s\n", want, r->headers ? r->headers : "");
    return ok;
}

/* A 206 with Content-Range "bytes a-b/size", Content-Length b-a+1 and the
 * bytes full[a..b]. */
static bool partial_ok(const bg_th_resp *r, const char *full, size_t size, size_t a, size_t b)
{
    char cr[128] = "", want[128], cl[64] = "";
    snprintf(want, sizeof(want), "bytes %zu-%zu/%zu", a, b, size);
    bg_th_header(r, "content-range", cr, sizeof(cr));
    bg_th_header(r, "content-length", cl, sizeof(cl));
    bool ok = r->status == 206 && strcmp(cr, want) == 0 && cl[0] != '\0' &&
              strtoull(cl, NULL, 10) == b - a + 1 && r->len == b - a + 1 &&
              memcmp(r->body, full + a, r->len) == 0;
    if (!ok)
        fprintf(stderr,
                "want 206 \"%s\" with %zu bytes; got %ld content-range \"%s\" content-length "
                "\"%s\", %zu bytes\n",
                want, b - a + 1, r->status, cr, cl, r->len);
    return ok;
}

/* A 200 with the whole file and no Content-Range. */
static bool whole_ok(const bg_th_resp *r, const char *full, size_t size)
{
    char cr[128] = "", cl[64] = "", ar[64] = "";
    bool has_cr = bg_th_header(r, "content-range", cr, sizeof(cr));
    bg_th_header(r, "content-length", cl, sizeof(cl));
    bg_th_header(r, "accept-ranges", ar, sizeof(ar));
    bool ok = r->status == 200 && !has_cr && strtoull(cl, NULL, 10) == size &&
              strcmp(ar, "bytes") == 0 && r->len == size && memcmp(r->body, full, size) == 0;
    if (!ok)
        fprintf(stderr,
                "want 200 with %zu bytes; got %ld content-range \"%s\" content-length \"%s\" "
                "accept-ranges \"%s\", %zu bytes\n",
                size, r->status, cr, cl, ar, r->len);
    return ok;
}

/* A 416 RANGE_NOT_SATISFIABLE JSON error with Content-Range "bytes STAR/size". */
static bool unsatisfiable_ok(const bg_th_resp *r, size_t size)
{
    char cr[128] = "", want[64], ct[128] = "";
    snprintf(want, sizeof(want), "bytes */%zu", size);
    bg_th_header(r, "content-range", cr, sizeof(cr));
    bg_th_header(r, "content-type", ct, sizeof(ct));
    bool ok = bg_th_is_error(r, 416, "RANGE_NOT_SATISFIABLE") && strcmp(cr, want) == 0 &&
              strncmp(ct, "application/json", 16) == 0;
    if (!ok)
        fprintf(stderr, "want 416 \"%s\" (JSON); got content-range \"%s\", content-type \"%s\"\n",
                want, cr, ct);
    return ok;
}

static void test_download_range(void **state)
{
    (void)state;
    assert_true(M.preview_url[0] != '\0'); /* set by test 1 */
    const char *url = M.preview_url, *tok = M.s.token;
    char *ref = NULL; /* the HTTP/1.1 download */
    size_t size = 0;
    for (int h2 = 0; h2 < 2; h2++) {
        bg_th_resp full, r;
        char ct[128] = "", rng[64];
        get_range(url, tok, NULL, h2, &full);
        assert_true(over(&full, h2));
        assert_int_equal(full.status, 200);
        bg_th_header(&full, "content-type", ct, sizeof(ct));
        assert_string_equal(ct, "audio/mpeg");
        if (!h2) {
            size = full.len;
            ref = malloc(size);
            memcpy(ref, full.body, size);
        }
        assert_true(size > 1000);
        fprintf(stderr, "%s: %zu bytes\n", h2 ? "HTTP/2" : "HTTP/1.1", size);
        assert_true(whole_ok(&full, ref, size)); /* also: the same bytes over both */
        bg_th_resp_free(&full);

        get_range(url, tok, "bytes=0-99", h2, &r);
        assert_true(over(&r, h2));
        assert_true(partial_ok(&r, ref, size, 0, 99));
        bg_th_resp_free(&r);
        get_range(url, tok, "bytes=100-", h2, &r);
        assert_true(partial_ok(&r, ref, size, 100, size - 1));
        bg_th_resp_free(&r);
        get_range(url, tok, "bytes=-50", h2, &r);
        assert_true(partial_ok(&r, ref, size, size - 50, size - 1));
        bg_th_resp_free(&r);
        /* An end past the file is clamped to its last byte. */
        snprintf(rng, sizeof(rng), "bytes=%zu-%zu", size - 10, size + 1000);
        get_range(url, tok, rng, h2, &r);
        assert_true(partial_ok(&r, ref, size, size - 10, size - 1));
        bg_th_resp_free(&r);
        /* Starting at the size, or b < a: 416. */
        snprintf(rng, sizeof(rng), "bytes=%zu-", size);
        get_range(url, tok, rng, h2, &r);
        assert_true(over(&r, h2));
        assert_true(unsatisfiable_ok(&r, size));
        bg_th_resp_free(&r);
        get_range(url, tok, "bytes=5-2", h2, &r);
        assert_true(unsatisfiable_ok(&r, size));
        bg_th_resp_free(&r);
        /* Several ranges, or another unit: ignored, the whole file. */
        get_range(url, tok, "bytes=0-1,5-6", h2, &r);
        assert_true(whole_ok(&r, ref, size));
        bg_th_resp_free(&r);
        get_range(url, tok, "items=0-1", h2, &r);
        assert_true(whole_ok(&r, ref, size));
        bg_th_resp_free(&r);
    }
    /* Another organisation gets no bytes, Range or not. */
    bg_th_resp r;
    get_range(url, M.b.token, "bytes=0-99", false, &r);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, "ID3"));
    bg_th_resp_free(&r);
    free(ref);
}

/* ---- 11. branch streams carry the caller's organisation ---- */

static void branch_url(const bg_th_proc *p, char *out, size_t cap)
{
    snprintf(out, cap, "%s/api/stream?branch=main", p->url);
}

/* got's events are exactly the events of all whose data names id, in the
 * same order (ids, names, data). */
static bool same_as_filtered(const bg_th_sse *got, const bg_th_sse *all, const char *id)
{
    size_t k = 0;
    bool ok = true;
    for (size_t i = 0; i < all->n && ok; i++) {
        json_t *d = json_loads(all->ev[i].data ? all->ev[i].data : "", 0, NULL);
        bool mine = str_is(d, "assembly_id", id);
        json_decref(d);
        if (!mine)
            continue;
        ok = k < got->n && got->ev[k].id == all->ev[i].id &&
             strcmp(got->ev[k].name, all->ev[i].name) == 0 && got->ev[k].data != NULL &&
             strcmp(got->ev[k].data, all->ev[i].data) == 0;
        k++;
    }
    ok = ok && k == got->n;
    if (!ok) {
        fprintf(stderr, "the events of %s differ; got:\n", id);
        print_events(got);
        fprintf(stderr, "reference:\n");
        print_events(all);
    }
    return ok;
}

/* Waits for one more comment line (a heartbeat, every second on S) on s:
 * every event committed before the call has by then reached s's loop. */
static void one_more_heartbeat(bg_th_sse *s)
{
    int c = bg_th_sse_comments(s);
    assert_true(bg_th_sse_wait_comments(s, c + 1, 3000));
}

static void test_branch_stream_orgs(void **state)
{
    (void)state;
    char url[400], ida[65], idb[65], la[600], lb[600];
    branch_url(&M.s, url, sizeof(url));
    bg_th_sse *sa = &M.bs[0], *sb = &M.bs[1], *sadm = &M.bs[2], *sr = &M.bs[3];
    const char *toks[3] = {M.a.token, M.b.token, M.s.token};
    for (size_t i = 0; i < 3; i++) {
        bg_th_sse_free(&M.bs[i]);
        assert_int_equal(bg_th_sse_start(&M.bs[i], url, toks[i], -1, 0, 30000), 0);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_true(bg_th_sse_wait_connected(&M.bs[i], 10000));
        assert_int_equal(M.bs[i].status, 200);
    }
    /* One assembly per organisation, their chunks alternating. */
    json_t *sta = create(&M.s, M.a.token, "probe", &M.t9, NULL, NULL, NULL, 201);
    json_t *stb = create(&M.s, M.b.token, "probe", &M.t10, NULL, NULL, NULL, 201);
    snprintf(ida, sizeof(ida), "%s", str(sta, "assembly_id"));
    snprintf(idb, sizeof(idb), "%s", str(stb, "assembly_id"));
    assert_int_equal(
        bg_th_tus_create(str(sta, "tus_url"), M.a.token, ida, M.t9.name, M.t9.len, la, sizeof(la)),
        0);
    assert_int_equal(bg_th_tus_create(str(stb, "tus_url"), M.b.token, idb, M.t10.name, M.t10.len,
                                      lb, sizeof(lb)),
                     0);
    json_decref(sta);
    json_decref(stb);
    const size_t step = 8192;
    for (size_t off = 0; off < M.t9.len || off < M.t10.len; off += step) {
        if (off < M.t9.len)
            assert_int_equal(bg_th_tus_send(la, M.a.token, M.t9.data, off,
                                            off + step < M.t9.len ? off + step : M.t9.len, step,
                                            NULL),
                             0);
        if (off < M.t10.len)
            assert_int_equal(bg_th_tus_send(lb, M.b.token, M.t10.data, off,
                                            off + step < M.t10.len ? off + step : M.t10.len, step,
                                            NULL),
                             0);
    }
    json_t *st = wait_status(&M.s, M.a.token, ida, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    json_decref(st);
    st = wait_status(&M.s, M.b.token, idb, "ASSEMBLY_COMPLETED", 20000);
    assert_non_null(st);
    json_decref(st);
    assert_true(bg_th_sse_wait_count(sadm, "assembly:completed", 2, 10000));
    assert_true(bg_th_sse_wait_event(sa, "assembly:completed", 10000));
    assert_true(bg_th_sse_wait_event(sb, "assembly:completed", 10000));
    /* Had the other organisation's events been routed to a user stream,
     * they would have arrived by the next heartbeat. */
    one_more_heartbeat(sa);
    one_more_heartbeat(sb);
    for (size_t i = 0; i < 3; i++)
        bg_th_sse_stop(&M.bs[i]);
    for (size_t i = 0; i < 3; i++) {
        bg_th_sse_join(&M.bs[i]);
        /* A branch stream does not end at an assembly's terminal event. */
        assert_false(M.bs[i].ended);
        assert_true(M.bs[i].stopped);
    }
    /* Each user stream: its organisation's assembly, whole, nothing else. */
    assert_true(events_well_formed(sa, ida));
    assert_true(events_well_formed(sb, idb));
    assert_true(sa->n >= 6 && sb->n >= 6);
    assert_int_equal(count_events(sa, "assembly:completed", NULL), 1);
    assert_int_equal(count_events(sb, "assembly:completed", NULL), 1);
    assert_string_equal(sa->ev[sa->n - 1].name, "assembly:completed");
    assert_string_equal(sb->ev[sb->n - 1].name, "assembly:completed");
    /* The admin stream has both, and the same events for each. */
    assert_true(same_as_filtered(sa, sadm, ida));
    assert_true(same_as_filtered(sb, sadm, idb));
    /* The two runs overlapped on the branch: A's events interleave with
     * B's (otherwise the isolation above proves less). */
    bool interleaved = sa->ev[0].id < sb->ev[sb->n - 1].id && sb->ev[0].id < sa->ev[sa->n - 1].id;
    fprintf(stderr, "A: events %lld..%lld, B: %lld..%lld%s\n", sa->ev[0].id, sa->ev[sa->n - 1].id,
            sb->ev[0].id, sb->ev[sb->n - 1].id, interleaved ? " (interleaved)" : "");
    assert_true(interleaved);

    /* Resumed from before both runs, A's branch stream replays A's stored
     * events only. */
    long long from = (sa->ev[0].id < sb->ev[0].id ? sa->ev[0].id : sb->ev[0].id) - 1;
    bg_th_sse_free(sr);
    assert_int_equal(bg_th_sse_start(sr, url, M.a.token, from, 0, 30000), 0);
    assert_true(bg_th_sse_wait_count(sr, NULL, sa->n, 10000));
    one_more_heartbeat(sr);
    bg_th_sse_stop(sr);
    bg_th_sse_join(sr);
    assert_int_equal(sr->status, 200);
    assert_true(same_as_filtered(sr, sa, ida));
    for (size_t i = 0; i < 4; i++)
        bg_th_sse_free(&M.bs[i]);
}

/* ---- 12. heartbeats on an idle branch stream ---- */

static void test_branch_stream_heartbeat(void **state)
{
    (void)state;
    char url[400];
    branch_url(&M.s, url, sizeof(url));
    bg_th_sse h;
    long long t0 = bg_th_now_ms();
    assert_int_equal(bg_th_sse_collect(url, M.b.token, -1, 0, 3000, &h), 0);
    long long took = bg_th_now_ms() - t0;
    assert_int_equal(h.status, 200);
    assert_int_equal(strncmp(h.content_type, "text/event-stream", 17), 0);
    assert_false(h.ended); /* our deadline ended it */
    assert_int_equal(h.n, 0);
    int beats = 0;
    for (const char *p = h.raw; p != NULL && (p = strstr(p, ": heartbeat\n")) != NULL; p++)
        beats++;
    fprintf(stderr, "%d heartbeats, %d comment lines in %lld ms\n", beats, h.comments, took);
    if (beats < 2)
        fprintf(stderr, "got:\n%s\n", h.raw ? h.raw : "");
    assert_true(beats >= 2);
    assert_true(h.comments >= beats + 1); /* and the opening ": branchgate" */
    bg_th_sse_free(&h);
}

/* ---- 13. /api/stream parameters ---- */

static void test_stream_params(void **state)
{
    (void)state;
    assert_true(M.t1_id[0] != '\0'); /* set by test 1 */
    const char *tok = M.a.token;
    char path[600];
    int bad = 0;
    bg_th_resp r;
    char ct[128] = "";
    assert_int_equal(bg_th_get(&M.s, "/api/stream?branch=other", tok, &r), 0);
    bg_th_header(&r, "content-type", ct, sizeof(ct));
    bad += !bg_th_is_error(&r, 404, "BRANCH_NOT_FOUND");
    bad += strncmp(ct, "application/json", 16) != 0;
    bg_th_resp_free(&r);
    snprintf(path, sizeof(path), "/api/stream?channel=upload:other:%s", M.t1_id);
    bad += !fails_with(&M.s, "GET", path, M.s.token, 404, "BRANCH_NOT_FOUND");
    /* Neither or both of channel and branch. */
    bad += !fails_with(&M.s, "GET", "/api/stream", tok, 400, "INVALID_PARAMETER");
    bad += !fails_with(&M.s, "GET", "/api/stream?last_event_id=1", tok, 400, "INVALID_PARAMETER");
    snprintf(path, sizeof(path), "/api/stream?channel=upload:main:%s&branch=main", M.t1_id);
    bad += !fails_with(&M.s, "GET", path, M.s.token, 400, "INVALID_PARAMETER");
    /* Malformed channels. */
    char upper[65];
    for (size_t i = 0; i < 65; i++)
        upper[i] = (char)(M.t1_id[i] >= 'a' && M.t1_id[i] <= 'f' ? M.t1_id[i] - 32 : M.t1_id[i]);
    /* {before the id, how much of the id (0: none), after it} */
    static const struct {
        const char *pre;
        int idlen;
        const char *post;
    } channels[] = {{"nonsense", 0, ""},        {"upload:main", 0, ""},
                    {"upload:main:", 0, ""},    {"upload:main:abc", 0, ""},
                    {"download:main:", 64, ""}, {"upload::", 64, ""},
                    {"upload:main:", 64, "0"},  {"upload:main:", 64, ":x"},
                    {"upload:main:", 63, ""},   {"upload:ma/in:", 64, ""}};
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        snprintf(path, sizeof(path), "/api/stream?channel=%s%.*s%s", channels[i].pre,
                 channels[i].idlen, M.t1_id, channels[i].post);
        bad += !fails_with(&M.s, "GET", path, M.s.token, 400, "INVALID_PARAMETER");
    }
    snprintf(path, sizeof(path), "/api/stream?channel=upload:main:%s", upper);
    bad += !fails_with(&M.s, "GET", path, M.s.token, 400, "INVALID_PARAMETER");
    /* A resume point that is not an id, on a branch stream. */
    bad += !fails_with(&M.s, "GET", "/api/stream?branch=main&last_event_id=-1", tok, 400,
                       "INVALID_PARAMETER");
    /* Without credentials. */
    bad += !fails_with(&M.s, "GET", "/api/stream?branch=main", NULL, 401, "AUTH_REQUIRED");
    if (bad)
        fprintf(stderr, "%d parameter checks failed\n", bad);
    assert_int_equal(bad, 0);
}

/* ---- 14. a finished assembly's channel: replayed whole, resumed at its end ---- */

static void test_channel_finished(void **state)
{
    (void)state;
    assert_true(M.t1_id[0] != '\0'); /* set by test 1 */
    const char *tok = M.s.token, *id = M.t1_id;
    char url[400], qurl[500], burl[500];
    channel_url(&M.s, id, url, sizeof(url));

    /* Without Last-Event-ID: the whole history, then the end. */
    bg_th_sse all;
    history(&M.s, tok, id, &all);
    assert_true(events_well_formed(&all, id));
    assert_true(all.n >= 8);
    assert_string_equal(all.ev[0].name, "upload:progress");
    assert_int_equal(count_events(&all, "assembly:completed", NULL), 1);
    assert_string_equal(all.ev[all.n - 1].name, "assembly:completed");
    /* ... which is everything stored for it: the admin's branch stream
     * resumed just before its first event (test 1 ran alone). */
    bg_th_sse br;
    branch_url(&M.s, burl, sizeof(burl));
    assert_int_equal(bg_th_sse_collect(burl, tok, all.ev[0].id - 1, all.n, 10000, &br), 0);
    assert_int_equal(br.status, 200);
    assert_true(br.hit_max);
    assert_true(same_as_filtered(&br, &all, id));
    bg_th_sse_free(&br);

    /* Resumed at the terminal event's id (header and query), or past it:
     * the stream ends at once with no event (before any heartbeat). */
    long long last = all.ev[all.n - 1].id;
    for (int form = 0; form < 3; form++) {
        bg_th_sse rest;
        long long t0 = bg_th_now_ms();
        if (form == 0) {
            assert_int_equal(bg_th_sse_collect(url, tok, last, 0, 5000, &rest), 0);
        } else if (form == 1) {
            snprintf(qurl, sizeof(qurl), "%s&last_event_id=%lld", url, last);
            assert_int_equal(bg_th_sse_collect(qurl, tok, -1, 0, 5000, &rest), 0);
        } else {
            assert_int_equal(bg_th_sse_collect(url, tok, last + 1000000, 0, 5000, &rest), 0);
        }
        long long took = bg_th_now_ms() - t0;
        if (!rest.ended || rest.n != 0)
            fprintf(stderr, "form %d: ended %d after %lld ms; got:\n%s\n", form, rest.ended, took,
                    rest.raw ? rest.raw : "");
        assert_int_equal(rest.status, 200);
        assert_int_equal(strncmp(rest.content_type, "text/event-stream", 17), 0);
        assert_true(rest.ended);
        assert_int_equal(rest.n, 0);
        assert_null(strstr(rest.raw ? rest.raw : "", ": heartbeat"));
        bg_th_sse_free(&rest);
    }
    /* Resumed just before it: the terminal event alone, then the end. */
    bg_th_sse one;
    assert_int_equal(bg_th_sse_collect(url, tok, all.ev[all.n - 2].id, 0, 5000, &one), 0);
    assert_true(one.ended);
    assert_int_equal(one.n, 1);
    assert_int_equal(one.ev[0].id, last);
    assert_string_equal(one.ev[0].name, "assembly:completed");
    bg_th_sse_free(&one);
    /* Last-Event-ID 0 is the start: everything again. */
    bg_th_sse zero;
    assert_int_equal(bg_th_sse_collect(url, tok, 0, 0, 15000, &zero), 0);
    assert_true(zero.ended);
    assert_true(same_as_filtered(&zero, &all, id));
    bg_th_sse_free(&zero);
    bg_th_sse_free(&all);
}

/* ---- 15. SSE over HTTP/2 ---- */

static void test_sse_http2(void **state)
{
    (void)state;
    assert_true(M.t1_id[0] != '\0'); /* set by test 1 */
    const char *tok = M.s.token, *id = M.t1_id;
    char url[400];
    channel_url(&M.s, id, url, sizeof(url));
    bg_th_sse h1, h2;
    history(&M.s, tok, id, &h1);
    assert_int_equal(h1.http_version, CURL_HTTP_VERSION_1_1);
    assert_int_equal(bg_th_sse_collect_ex(url, tok, -1, 0, 15000, true, &h2), 0);
    assert_int_equal(h2.http_version, CURL_HTTP_VERSION_2_0);
    assert_int_equal(h2.status, 200);
    assert_int_equal(strncmp(h2.content_type, "text/event-stream", 17), 0);
    if (!h2.ended)
        fprintf(stderr, "the HTTP/2 channel did not end; got:\n%.4000s\n", h2.raw ? h2.raw : "");
    assert_true(h2.ended);
    assert_true(h2.comments >= 1);
    assert_true(h1.n >= 8);
    assert_true(same_as_filtered(&h2, &h1, id));
    assert_string_equal(h2.ev[h2.n - 1].name, "assembly:completed");
    bg_th_sse_free(&h2);
    /* Resumed at the end over HTTP/2: nothing, and the end. */
    assert_int_equal(bg_th_sse_collect_ex(url, tok, h1.ev[h1.n - 1].id, 0, 5000, true, &h2), 0);
    assert_int_equal(h2.http_version, CURL_HTTP_VERSION_2_0);
    assert_int_equal(h2.status, 200);
    assert_true(h2.ended);
    assert_int_equal(h2.n, 0);
    bg_th_sse_free(&h2);
    bg_th_sse_free(&h1);
}

/* ---- last: both processes shut down cleanly, no sanitizer report ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    bg_th_proc *all[] = {&M.s, &M.k};
    int bad = 0;
    for (size_t i = 0; i < 2; i++) {
        if (all[i] == &M.k && !M.k_started)
            continue;
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
    assert_int_equal(bad, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orgs),
        cmocka_unit_test(test_audio_preview_end_to_end),
        cmocka_unit_test(test_create_twice_one_job),
        cmocka_unit_test(test_md5_mismatch),
        cmocka_unit_test(test_sigkill_while_running),
        cmocka_unit_test(test_dead_letter_and_requeue),
        cmocka_unit_test(test_webhook_retry_and_signature),
        cmocka_unit_test(test_sse_resume),
        cmocka_unit_test(test_org_isolation),
        cmocka_unit_test(test_download_range),
        cmocka_unit_test(test_branch_stream_orgs),
        cmocka_unit_test(test_branch_stream_heartbeat),
        cmocka_unit_test(test_stream_params),
        cmocka_unit_test(test_channel_finished),
        cmocka_unit_test(test_sse_http2),
        cmocka_unit_test(test_cancel_and_replay),
        cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
