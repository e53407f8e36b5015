/*
 * gateway/gateway.h — the HTTP front: h2o event loops, middleware, the
 * error module, the worker hand-off and metrics. The only folder that uses
 * h2o. Internal to gateway/ (handlers include it; nothing else does).
 *
 * Threads: one h2o event loop per http.threads. Everything in a bg_reqctx
 * belongs to the loop thread that received the request. Blocking work goes
 * to the node's worker pool through bg_gw_job_submit, and its reply comes
 * back to the same loop thread.
 */
#ifndef BG_GATEWAY_H
#define BG_GATEWAY_H

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#if H2O_USE_LIBUV
#error "branchgate needs the evloop flavour of h2o: build with -DH2O_USE_LIBUV=0"
#endif

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/metrics.h"
#include "gateway/router.h"
#include "node/auth.h"
#include "node/branches.h"
#include "node/node.h"
#include "proto/err.h"

#define BG_REQUEST_ID_MAX 128

typedef struct bg_gateway bg_gateway;
typedef struct bg_gw_loop bg_gw_loop;
typedef struct bg_gw_job bg_gw_job;

struct bg_gw_loop {
    bg_gateway *gw;
    int index;
    pthread_t thread;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *tls_listener;
    h2o_accept_ctx_t tls_accept_ctx;
    h2o_multithread_receiver_t jobs_recv; /* worker replies */
    h2o_multithread_receiver_t wake_recv; /* shutdown wake-up */
    h2o_multithread_receiver_t events_recv; /* pipeline events for SSE streams */
    h2o_linklist_t streams;               /* open SSE streams of this loop */
    h2o_timeout_t sse_heartbeat;
    int events_pending;                   /* posted to events_recv, not yet handled (atomic) */
    size_t pending_jobs;                  /* submitted, reply not yet received */
    size_t inflight;                      /* requests between on_req and their end */
    int drain_result; /* 0 drained and disposed, 1 idle connections left, 2 work left */
};

struct bg_gateway {
    bg_node *node;
    const bg_config *cfg;
    h2o_globalconf_t h2o_conf;
    const bg_route *routes;
    size_t nroutes;
    bg_metrics *metrics;
    int listen_fd;
    char listen_url[320];
    char own_url_norm[512]; /* normalised branch URL, for X-Branch-Destination */
    int tls_fd;             /* -1 when no TLS listener */
    char tls_url[320];
    SSL_CTX *ssl_ctx;
    char *health_prefix;   /* cross-branch health body up to the time value */
    size_t health_prefix_len;
    int nloops;
    bg_gw_loop *loops;
    volatile sig_atomic_t stopping;
    pthread_barrier_t started;
};

/* Per-request state, allocated in the request's pool; freed with it. */
typedef struct bg_reqctx {
    h2o_req_t *req;
    bg_gw_loop *loop;
    bg_gateway *gw;
    bg_route_match match; /* match.route is NULL for 404/405 */
    char request_id[BG_REQUEST_ID_MAX + 1];
    char actor[80];       /* "admin:<token id>" or "peer:<name>" once authenticated */
    bg_peer_identity peer; /* the calling branch, for BG_AUTH_PEER routes */
    bool is_user;          /* authenticated with a user token (not admin) */
    bg_user_claims user;   /* its claims */
    json_t *body;         /* parsed body of a BG_ROUTE_JSON route */
    uint64_t start_us;
    bg_gw_job *job;       /* the worker job in flight, if any */
    bool responded;
} bg_reqctx;

/* ---- the error module and responses (respond.c) ---- */

/* The one mapping from bg_err to an HTTP status. */
int bg_gw_status_of(bg_err e);

/* Sends {"error":{"code","message","request_id"}} with the given status.
 * code NULL = the default code of the status. */
void bg_gw_error(bg_reqctx *rc, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, with the status mapped from e and code defaulting to
 * bg_err_code(e). */
void bg_gw_fail(bg_reqctx *rc, bg_err e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends body (reference stolen; NULL = no body) as JSON with status. */
void bg_gw_json(bg_reqctx *rc, int status, json_t *body);

/* Sends a body that the caller keeps alive until the request ends (e.g.
 * allocated from req->pool). */
void bg_gw_send(bg_reqctx *rc, int status, const char *content_type, const char *body, size_t len);

/* For responses the caller starts itself (SSE streams, h2o's file
 * sender): marks rc answered, adds X-Request-Id, records metrics and the
 * access log line. Then the caller sets status and starts the response. */
void bg_gw_mark_response(bg_reqctx *rc, int status);

/* Reason phrase of a status ("OK"). */
const char *bg_gw_reason(int status);

/* Adds a response header (name lower-case). Before bg_gw_send. */
void bg_gw_header(bg_reqctx *rc, const char *name, const char *value);

/* Query-string value of key, percent-decoded into the request pool.
 * Returns NULL when absent and "" when malformed. len may be NULL. */
const char *bg_gw_query(bg_reqctx *rc, const char *key, size_t *len);

/* Reads ?limit= (default 50, 1..500) and ?cursor= (opaque text). Sends a
 * 400 itself and returns false on bad input. */
bool bg_gw_page_params(bg_reqctx *rc, int64_t *limit, const char **cursor);

/* The client's address as text ("127.0.0.1") into buf. */
void bg_gw_client_addr(bg_reqctx *rc, char *buf, size_t cap);

/* Path parameter as a NUL-terminated copy in the request pool, or NULL. */
const char *bg_gw_param(bg_reqctx *rc, const char *name);

/* ---- worker hand-off (async.c) ---- */

typedef void (*bg_gw_work_fn)(bg_gw_job *job, bg_registry *reg);
typedef void (*bg_gw_reply_fn)(bg_reqctx *rc, bg_gw_job *job);

struct bg_gw_job {
    bg_task task;                 /* first: the pool's view of the job */
    h2o_multithread_message_t msg;
    bg_gw_loop *loop;
    bg_reqctx *rc;                /* NULL once the request has gone away */
    bg_node *node;
    bg_gw_work_fn work;           /* worker thread */
    bg_gw_reply_fn reply;         /* loop thread; NULL = default reply */
    json_t *in;                   /* inputs, owned by the job */
    char request_id[BG_REQUEST_ID_MAX + 1];
    char actor[80];
    void *state;                  /* handler state carried across stages */
    void *arg;                    /* one more pointer for a stage to pass on */
    void (*state_free)(void *state);
    bool rearmed;                 /* reply() started another stage */
    struct bg_gw_fanout *fanout;  /* peer stage in flight */
    /* results, written by work() */
    bg_err err;
    const char *err_code;
    char err_msg[200];
    int status;
    json_t *out;
};

/* A job for rc running work(job, reg) on a worker; `in` is stolen (may be
 * NULL). The default reply sends job->out with job->status, or the error. */
bg_gw_job *bg_gw_job_new(bg_reqctx *rc, bg_gw_work_fn work, json_t *in);

/* Hands the job to the pool. If the pool refuses (full, stopping) it
 * answers 503 itself and frees the job. Loop thread. */
void bg_gw_job_submit(bg_reqctx *rc, bg_gw_job *job);

/* Result setters for work(): an error (status from e) or a JSON result. */
void bg_gw_job_fail(bg_gw_job *job, bg_err e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bg_gw_job_ok(bg_gw_job *job, int status, json_t *out);

/* A node failure (status from e, code and message from ne) as the result. */
void bg_gw_job_fail_node(bg_gw_job *job, bg_err e, const bg_node_err *ne);

/* From a reply(): runs another worker stage with the same job (state and
 * inputs kept, results cleared). Loop thread. */
void bg_gw_job_next(bg_reqctx *rc, bg_gw_job *job, bg_gw_work_fn work, bg_gw_reply_fn reply);

/* From a reply(): sends n peer requests in parallel (ownership of each is
 * taken) without blocking any thread; when every one has answered, `then`
 * runs on this loop with the n results (BG_EPEER results for calls the
 * breaker refused). The job's results array stays valid until the job
 * ends. Loop thread. */
typedef void (*bg_gw_peers_fn)(bg_reqctx *rc, bg_gw_job *job, bg_peer_result *res, size_t n);
void bg_gw_job_peers(bg_reqctx *rc, bg_gw_job *job, bg_peer_request *reqs, size_t n,
                     bg_gw_peers_fn then);

/* Receiver callback registered on each loop's jobs_recv. */
void bg_gw_on_job_replies(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages);

/* ---- middleware (middleware.c) ---- */

/* The h2o on_req entry point: request id, routing, size cap,
 * authentication, rate limit, body parsing, then the route's handler. */
int bg_gw_on_req(h2o_handler_t *self, h2o_req_t *req);

/* Renders the fixed part of the cross-branch health answer (after the
 * branch URL is final). Main thread, before serving. */
void bg_gw_health_prepare(bg_gateway *gw);

/* ---- SSE streams (handlers/stream.c) ---- */

/* The node's event sink (ud = the gateway): posts each committed event to
 * every loop. Any thread; never blocks. */
struct bg_event_row;
void bg_gw_event_sink(void *ud, const struct bg_event_row *ev);
/* Receiver callback registered on each loop's events_recv. */
void bg_gw_on_events(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages);
/* Shutdown: every started stream sends FINAL with its next write. */
void bg_gw_streams_end_all(bg_gw_loop *l);

/* ---- route table (routes.c) ---- */

const bg_route *bg_gw_routes(size_t *n);

/* ---- server (server.c) ---- */

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every
 * thread it creates later) and ignores SIGPIPE. Main thread, before any
 * other thread starts. */
void bg_gateway_block_signals(void);

/* Binds, starts the loops, serves until SIGTERM, SIGINT or SIGHUP, drains
 * and returns the process exit code. Main thread. */
int bg_gateway_run(bg_node *node);

/* True when url (any form) normalises to this branch's own URL. */
bool bg_gw_is_own_url(bg_gateway *gw, const char *url, size_t len);

/* Microseconds on a monotonic clock. */
uint64_t bg_gw_now_us(void);

#endif
