/*
 * tests/integration/harness.h — starts real branchgate processes on
 * loopback in temporary data dirs, talks HTTP to them through libcurl and
 * stops them by pid. No fixed sleeps: every wait polls with a deadline.
 *
 * The binary comes from $BRANCHGATE_BIN (set by ctest).
 */
#ifndef BG_TEST_HARNESS_H
#define BG_TEST_HARNESS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct bg_th_proc {
    pid_t pid;
    char dir[256];  /* data dir */
    char url[128];  /* from DIR/listen.url */
    char log[300];  /* stdout+stderr of the process */
    char token[128];/* DIR/admin.token */
} bg_th_proc;

typedef struct bg_th_resp {
    long status;
    char *body;
    size_t len;
    char *headers; /* raw response headers, lower-cased names as sent */
} bg_th_resp;

/* A fresh empty directory under $TMPDIR (or /tmp); out holds 256 bytes. */
void bg_th_tmpdir(char *out);

/* Removes a directory tree (best effort). With $BG_TH_LOG_DIR set, its
 * *.log files are first copied there for the secret scan. */
void bg_th_rmtree(const char *dir);

/* Records s (when 8..4096 bytes, one line) in $BG_TH_SECRETS_FILE, if set:
 * the secret scan fails when any branch log contains it. bg_th_http, the
 * SSE client and bg_th_start record tokens and secret-named JSON fields
 * themselves; call this for secrets a test sends another way. */
void bg_th_note_secret(const char *s);

/* Starts `branchgate serve --data dir --listen 127.0.0.1:0 [extra...]`
 * with extra environment entries ("KEY=VALUE"), and waits (10 s deadline)
 * for DIR/listen.url. Returns 0, or -1 if the process exited or the
 * deadline passed (the process is then killed). extra/env end with NULL
 * and may be NULL. */
int bg_th_start(bg_th_proc *p, const char *dir, const char *const *extra, const char *const *env);

/* Sends sig and waits up to timeout_ms for the exit. Returns the exit
 * status (0..255), 128+signal when killed by a signal, or -1 on timeout
 * (then SIGKILLs). */
int bg_th_stop(bg_th_proc *p, int sig, int timeout_ms);

/* Prints the last 6000 bytes of the process's log on stderr (after a
 * failed start or check). */
void bg_th_print_log(const bg_th_proc *p);

/* True while the process runs. */
bool bg_th_alive(const bg_th_proc *p);

/* Runs branchgate with args (NULL-terminated) and extra env, capturing
 * stdout and stderr together into a malloc'ed string (*out). Returns the
 * exit status, or -1. */
int bg_th_run(const char *const *args, const char *const *env, char **out);

/* One HTTP request on a fresh connection. token may be NULL (no
 * Authorization); body may be NULL. extra_headers: NULL-terminated
 * "Name: value" strings or NULL. http2 uses prior knowledge. Returns 0 on
 * a response (any status), -1 on a transport error. */
int bg_th_http(const char *method, const char *url, const char *token, const char *body,
               size_t len, const char *const *extra_headers, bool http2, bg_th_resp *r);

/* Shorthands: JSON body with application/json. */
int bg_th_get(const bg_th_proc *p, const char *path, const char *token, bg_th_resp *r);
int bg_th_post_json(const bg_th_proc *p, const char *path, const char *token, const char *json,
                    bg_th_resp *r);

/* Any method with a JSON body (NULL = no body). */
int bg_th_send_json(const bg_th_proc *p, const char *method, const char *path, const char *token,
                    const char *json, bg_th_resp *r);

/* Registers a peer branch on `at` (POST /api/v1/branches with its admin
 * token). True on 201; otherwise prints the answer and returns false. */
bool bg_th_register(const bg_th_proc *at, const char *name, const char *url, const char *type,
                    const char *key);

/* Sleeps ms milliseconds (for poll loops; never to wait for readiness). */
void bg_th_nap_ms(int ms);

/* Polls GET path (admin) until the JSON field `key` equals `want` or the
 * deadline passes. Returns the milliseconds it took, or -1. */
long long bg_th_wait_field(const bg_th_proc *p, const char *path, const char *key,
                           const char *want, int deadline_ms);

/* Parses the body as JSON (NULL when it is not). New reference. */
json_t *bg_th_json(const bg_th_resp *r);

/* Value of a response header (case-insensitive name) into buf, or false. */
bool bg_th_header(const bg_th_resp *r, const char *name, char *buf, size_t cap);

void bg_th_resp_free(bg_th_resp *r);

/* Reads a whole file (malloc'ed, NUL-terminated) or NULL. */
char *bg_th_read_file(const char *path, size_t *len);

/* Milliseconds on a monotonic clock. */
long long bg_th_now_ms(void);

/* Asserts that the body is the JSON error shape with the given code and a
 * request_id; returns false (after printing why) otherwise. */
bool bg_th_is_error(const bg_th_resp *r, long status, const char *code);


/* ---- media pipeline helpers (tests/integration/media_test.c) ---- */

/* Standard base64 (with padding) of len bytes into out (NUL-terminated);
 * out holds 4 * ((len + 2) / 3) + 1 bytes. */
void bg_th_b64(const void *data, size_t len, char *out);

/* Decodes standard base64 into out (cap bytes); returns the length, or -1
 * when the text is not base64 or does not fit. */
long bg_th_b64_decode(const char *text, unsigned char *out, size_t cap);

/* Lowercase hex md5 of len bytes (out: 33 bytes). */
void bg_th_md5_hex(const void *data, size_t len, char out[33]);

/* POST /api/v1/auth/login; copies the user token (a JWT) into token.
 * Returns 0, or -1 after printing the answer. */
int bg_th_login(const bg_th_proc *p, const char *email, const char *password, const char *org,
                char *token, size_t cap);

/* tus creation at tus_url (POST with Tus-Resumable, Upload-Length and
 * Upload-Metadata "assembly_id <b64>,filename <b64>"); expects 201 and
 * copies the absolute Location into loc. Returns 0 or -1 (printed). */
int bg_th_tus_create(const char *tus_url, const char *token, const char *assembly_id,
                     const char *filename, size_t length, char *loc, size_t cap);

/* PATCHes data[from, to) to the upload at loc in chunks of at most chunk
 * bytes, each with Upload-Checksum md5; every answer must be 204 with the
 * new Upload-Offset. *patches (may be NULL) counts the requests. Returns 0
 * or -1 (printed). */
int bg_th_tus_send(const char *loc, const char *token, const void *data, size_t from, size_t to,
                   size_t chunk, int *patches);

/* Create + send of a whole file. */
int bg_th_tus_upload(const char *tus_url, const char *token, const char *assembly_id,
                     const char *filename, const void *data, size_t len, size_t chunk,
                     char *loc, size_t cap, int *patches);

/* One server-sent event. */
typedef struct bg_th_sse_event {
    long long id; /* -1 when the record had no id line */
    char name[64];
    char *data;
} bg_th_sse_event;

/* An SSE client (libcurl) that parses records as they arrive. Use either
 * bg_th_sse_collect (blocking) or bg_th_sse_start + bg_th_sse_join (a
 * thread). Reading fields other than through the functions below is safe
 * only after the collection ended. */
typedef struct bg_th_sse {
    /* results */
    long status;         /* HTTP status, 0 before the headers */
    bool ended;          /* the server closed the stream (not our deadline or max) */
    bool hit_max;        /* stopped at max_events */
    int comments;        /* comment lines (": ...") seen */
    bg_th_sse_event *ev; /* events in arrival order */
    size_t n;
    char *raw;           /* the whole body as received (capped at 1 MiB) */
    size_t raw_len;
    char content_type[128];
    long http_version;   /* CURL_HTTP_VERSION_* the answer came over (0: unknown) */
    bool stopped;        /* ended by bg_th_sse_stop */
    /* internals */
    char *url, *token;
    long long last_event_id;
    size_t max_events;
    int deadline_ms;
    char *line;
    size_t line_len;
    bg_th_sse_event cur;
    bool have_cur;
    bool connected;
    bool running;
    bool thread_started;
    bool http2;          /* HTTP/2 with prior knowledge (the _ex functions) */
    bool stop;           /* set by bg_th_sse_stop */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
} bg_th_sse;

/* Connects to url (GET, Bearer token), sending Last-Event-ID when
 * last_event_id >= 0, and collects events until the server ends the
 * stream, max_events arrived (0 = no limit) or deadline_ms passed.
 * Returns 0 when an HTTP answer came (any status), -1 on a transport
 * error before it. Free with bg_th_sse_free. */
int bg_th_sse_collect(const char *url, const char *token, long long last_event_id,
                      size_t max_events, int deadline_ms, bg_th_sse *s);

/* The same in a thread. */
int bg_th_sse_start(bg_th_sse *s, const char *url, const char *token, long long last_event_id,
                    size_t max_events, int deadline_ms);

/* Waits until the response headers arrived; false after deadline_ms or
 * when the collection ended without an answer. */
bool bg_th_sse_wait_connected(bg_th_sse *s, int deadline_ms);

/* Waits until an event named name arrived; false after deadline_ms or when
 * the collection ended without one. */
bool bg_th_sse_wait_event(bg_th_sse *s, const char *name, int deadline_ms);

/* Waits for the thread to finish. */
void bg_th_sse_join(bg_th_sse *s);

void bg_th_sse_free(bg_th_sse *s);

/* bg_th_sse_collect / bg_th_sse_start with a choice of protocol: http2
 * uses HTTP/2 with prior knowledge (cleartext), as bg_th_http does. */
int bg_th_sse_collect_ex(const char *url, const char *token, long long last_event_id,
                         size_t max_events, int deadline_ms, bool http2, bg_th_sse *s);
int bg_th_sse_start_ex(bg_th_sse *s, const char *url, const char *token, long long last_event_id,
                       size_t max_events, int deadline_ms, bool http2);

/* Asks a running collection to end (it does within about a second: libcurl
 * calls its progress callback at least once a second); `stopped` is then
 * set and `ended` stays false. Does not wait: join or free afterwards. */
void bg_th_sse_stop(bg_th_sse *s);

/* Waits until at least n events named name (any name when NULL) arrived;
 * false after deadline_ms or when the collection ended with fewer. */
bool bg_th_sse_wait_count(bg_th_sse *s, const char *name, size_t n, int deadline_ms);

/* Waits until at least n comment lines arrived (the same conditions). */
bool bg_th_sse_wait_comments(bg_th_sse *s, int n, int deadline_ms);

/* Comment lines seen so far (safe while the collection runs). */
int bg_th_sse_comments(bg_th_sse *s);

/* A request received by bg_th_hooks. */
typedef struct bg_th_hook_req {
    char method[16];
    char path[512];
    char *headers; /* raw header lines, "\r\n"-separated */
    char *body;
    size_t body_len;
    int answered;  /* the status we answered */
    long long at_unix_ms;
} bg_th_hook_req;

/* Decides the status of an answer; seen = how many earlier requests had
 * the same path and the same webhook-id header. Called on the server
 * thread. */
typedef int (*bg_th_hook_fn)(const bg_th_hook_req *req, size_t seen, void *ud);

/* A tiny HTTP/1.1 receiver on 127.0.0.1:0 (plain sockets, one connection
 * at a time, Connection: close) that records every request. */
typedef struct bg_th_hooks {
    int fd;
    int port;
    char url[64]; /* http://127.0.0.1:PORT */
    bg_th_hook_fn fn;
    void *ud;
    bool stop;
    bg_th_hook_req *reqs;
    size_t n;
    pthread_mutex_t mu;
    pthread_t thread;
} bg_th_hooks;

int bg_th_hooks_start(bg_th_hooks *h, bg_th_hook_fn fn, void *ud);
void bg_th_hooks_stop(bg_th_hooks *h);

/* Deep copies of the requests whose path starts with prefix (in arrival
 * order); free with bg_th_hooks_free. */
size_t bg_th_hooks_get(bg_th_hooks *h, const char *prefix, bg_th_hook_req **out);
void bg_th_hooks_free(bg_th_hook_req *reqs, size_t n);

/* Value of a header of a recorded request (case-insensitive). */
bool bg_th_hook_header(const bg_th_hook_req *r, const char *name, char *buf, size_t cap);


/* ---- media fixtures and checks (tests/integration/robots_test.c) ---- */

/* Runs argv (looked up in PATH, no shell) and waits for it; stdout goes to
 * out_path and stderr to err_path when given (created or truncated),
 * otherwise they are inherited. Returns the exit status, 128+signal, or -1. */
int bg_th_exec(const char *const *argv, const char *out_path, const char *err_path);

/* Writes len bytes (len may be 0) to path, created or truncated. */
bool bg_th_write_file(const char *path, const void *data, size_t len);

/* Creates dir and copies the bundled templates ($BRANCHGATE_TEMPLATES_DIR,
 * every *.json) into it, so a test can add its own next to them. */
bool bg_th_copy_templates(const char *dir);

/* `ffprobe -show_format -show_streams -of json` of path, parsed (new
 * reference), or NULL when ffprobe fails. */
json_t *bg_th_ffprobe(const char *path);

/* The first stream whose codec_type is type ("audio", "video") in a
 * bg_th_ffprobe answer (borrowed), or NULL. */
json_t *bg_th_ffprobe_stream(const json_t *probe, const char *type);

/* The format's duration in seconds from a bg_th_ffprobe answer, or NAN. */
double bg_th_ffprobe_duration(const json_t *probe);

/* Integrated loudness (LUFS) of a file as `ffmpeg -i path -af
 * ebur128=peak=true -f null -` reports it (the "I:" line of its summary),
 * or NAN when ffmpeg fails. */
double bg_th_ebur128_lufs(const char *path);

#endif
