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

/* Removes a directory tree (best effort). */
void bg_th_rmtree(const char *dir);

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

#endif
