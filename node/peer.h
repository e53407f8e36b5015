/*
 * node/peer.h — the outbound peer client: libcurl's multi interface on a
 * thread of its own (h2o's evloop cannot watch libcurl's sockets, see
 * STACK-NOTES 4.8), with a per-peer circuit breaker.
 *
 * Every call sends X-Branch-Origin (this branch), X-Branch-Destination
 * (the peer), Authorization: Bearer <key>, X-Request-Id, X-Branch-Hops and,
 * on POST, Idempotency-Key. TLS is always verified; a registered
 * certificate becomes the peer's trust anchor and a registered SPKI pin is
 * enforced. Redirects are not followed; responses are capped.
 *
 * Threads: bg_peer_send may be called from any thread. Its callback runs
 * on the peer thread and must not block; the gateway posts the result to
 * the loop that asked, background threads wait for it (bg_peer_call_sync,
 * or their own wait for several calls at once).
 */
#ifndef BG_NODE_PEER_H
#define BG_NODE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define BG_PEER_MAX_RESPONSE (4u << 20)

typedef enum bg_breaker_state {
    BG_BREAKER_CLOSED = 0,
    BG_BREAKER_OPEN = 1,
    BG_BREAKER_HALF_OPEN = 2,
} bg_breaker_state;

typedef struct bg_peer_client bg_peer_client;

typedef struct bg_peer_opts {
    const char *own_url;        /* sent as X-Branch-Origin */
    long connect_timeout_ms;    /* default 2000 */
    long timeout_ms;            /* default 10000 */
    int breaker_failures;       /* consecutive failures that open it; default 5 */
    long breaker_open_ms;       /* open → half-open; default 30000 */
} bg_peer_opts;

/* Where a call goes. The key is secret: it lives in bg_secret_alloc memory
 * and belongs to the request once bg_peer_send has been called. */
typedef struct bg_peer_target {
    int64_t branch_id; /* breaker identity */
    char name[64];
    char url[512];     /* normalised base URL */
    char *key;         /* NUL-terminated, secret memory */
    char *ca_pem;      /* malloc'ed PEM or NULL */
    char spki_pin[128];
} bg_peer_target;

typedef struct bg_peer_request {
    bg_peer_target target;
    const char *method; /* static string */
    char path[512];
    char *body;         /* malloc'ed or NULL; owned by the request */
    size_t body_len;
    char request_id[129];
    int hops;
    char idempotency_key[80];
    /* A plain call (webhooks): no branch headers, no key, no breaker;
     * target.url is the whole URL and path is ignored. */
    bool plain;
    char headers[4][200]; /* extra "Name: value" lines ("" = none) */
    long timeout_ms;      /* 0 = the client's */
} bg_peer_request;

typedef struct bg_peer_result {
    bg_err err;       /* BG_OK: an HTTP response arrived (any status) */
    long status;
    char *body;       /* malloc'ed, NUL-terminated; the callback may take it */
    size_t body_len;
    int64_t rtt_us;
    long long sent_ms; /* wall clock when the request was sent */
    char error[256];  /* transport error text, or "" */
} bg_peer_result;

typedef void (*bg_peer_done_fn)(bg_peer_result *res, void *ud);

/* Starts the client thread. Errors: BG_EINTERNAL. Main thread. */
bg_err bg_peer_client_create(const bg_peer_opts *o, bg_peer_client **out);

/* Stops the thread; calls still in flight complete with BG_ETIMEOUT
 * ("shutting down"). Accepts NULL. Main thread. */
void bg_peer_client_destroy(bg_peer_client *c);

/* Queues a call. Takes ownership of req (its key, body, ca_pem) in every
 * case. On BG_OK, fn runs exactly once on the peer thread; on error
 * (BG_EPEER: breaker open; BG_EBUSY: stopping) fn never runs. */
bg_err bg_peer_send(bg_peer_client *c, bg_peer_request *req, bg_peer_done_fn fn, void *ud);

/* Blocking form for threads that may block (never an event loop).
 * Returns the send error, or BG_OK with *out filled (free out->body). */
bg_err bg_peer_call_sync(bg_peer_client *c, bg_peer_request *req, bg_peer_result *out);

/* Breaker state of a branch (closed for one never called). Any thread. */
bg_breaker_state bg_peer_breaker(bg_peer_client *c, int64_t branch_id);

/* Releases a target's secret key and certificate copy. Accepts NULL fields. */
void bg_peer_target_clear(bg_peer_target *t);

/* The SPKI pin ("sha256//<base64>") is well-formed. */
bool bg_peer_pin_valid(const char *pin);

#endif
