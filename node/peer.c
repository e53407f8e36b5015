/* node/peer.c — libcurl multi on its own thread, with circuit breakers. */
#include "peer.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/log.h"
#include "proto/mem.h"
#include "proto/sig.h"

typedef struct call {
    struct call *next;
    struct call *prev_live, *next_live; /* in flight on the multi handle */
    bg_peer_request req;
    bg_peer_done_fn fn;
    void *ud;
    CURL *easy;
    struct curl_slist *headers;
    char *buf;
    size_t len;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t start_us;
    long long sent_ms;
} call;

typedef struct breaker {
    int64_t branch_id;
    int failures;
    bg_breaker_state state;
    long long opened_ms;
    bool trial_in_flight;
} breaker;

struct bg_peer_client {
    bg_peer_opts opts;
    char own_url[512];
    pthread_t thread;
    pthread_mutex_t mu;
    call *pending;   /* submitted, not yet added to the multi handle */
    call *live;      /* added to the multi handle (peer thread only) */
    bool stopping;
    CURLM *multi;
    breaker *breakers;
    size_t nbreakers, cap_breakers;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bg_peer_target_clear(bg_peer_target *t)
{
    if (t->key != NULL) {
        bg_secret_free(t->key);
        t->key = NULL;
    }
    free(t->ca_pem);
    t->ca_pem = NULL;
}

bool bg_peer_pin_valid(const char *pin)
{
    /* sha256// followed by the base64 of 32 bytes: 44 characters. */
    if (pin == NULL || strncmp(pin, "sha256//", 8) != 0 || strlen(pin) != 8 + 44)
        return false;
    for (const char *p = pin + 8; *p; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- breakers (mutex held) ---- */

static breaker *breaker_of(bg_peer_client *c, int64_t id)
{
    for (size_t i = 0; i < c->nbreakers; i++)
        if (c->breakers[i].branch_id == id)
            return &c->breakers[i];
    if (c->nbreakers == c->cap_breakers) {
        c->cap_breakers = c->cap_breakers ? c->cap_breakers * 2 : 16;
        c->breakers = bg_xrealloc(c->breakers, c->cap_breakers * sizeof(breaker));
    }
    breaker *b = &c->breakers[c->nbreakers++];
    memset(b, 0, sizeof(*b));
    b->branch_id = id;
    return b;
}

/* May a call go out now? Moves open → half-open once the wait is over
 * and lets exactly one trial through. */
static bool breaker_admit(bg_peer_client *c, breaker *b)
{
    if (b->state == BG_BREAKER_OPEN && bg_now_ms() - b->opened_ms >= c->opts.breaker_open_ms) {
        b->state = BG_BREAKER_HALF_OPEN;
        b->trial_in_flight = false;
    }
    if (b->state == BG_BREAKER_OPEN)
        return false;
    if (b->state == BG_BREAKER_HALF_OPEN) {
        if (b->trial_in_flight)
            return false;
        b->trial_in_flight = true;
    }
    return true;
}

static void breaker_record(bg_peer_client *c, breaker *b, bool ok)
{
    b->trial_in_flight = false;
    if (ok) {
        b->failures = 0;
        b->state = BG_BREAKER_CLOSED;
        return;
    }
    b->failures++;
    if (b->state == BG_BREAKER_HALF_OPEN || b->failures >= c->opts.breaker_failures) {
        if (b->state != BG_BREAKER_OPEN)
            bg_log(BG_LOG_WARN, NULL, "peer breaker for branch id %lld opened after %d failures",
                   (long long)b->branch_id, b->failures);
        b->state = BG_BREAKER_OPEN;
        b->opened_ms = bg_now_ms();
    }
}

bg_breaker_state bg_peer_breaker(bg_peer_client *c, int64_t branch_id)
{
    pthread_mutex_lock(&c->mu);
    bg_breaker_state s = BG_BREAKER_CLOSED;
    for (size_t i = 0; i < c->nbreakers; i++)
        if (c->breakers[i].branch_id == branch_id) {
            s = c->breakers[i].state;
            if (s == BG_BREAKER_OPEN &&
                bg_now_ms() - c->breakers[i].opened_ms >= c->opts.breaker_open_ms)
                s = BG_BREAKER_HALF_OPEN;
        }
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* ---- one call ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    call *k = ud;
    size_t n = size * nmemb;
    if (k->len + n > BG_PEER_MAX_RESPONSE) {
        k->too_big = true;
        return 0; /* aborts the transfer */
    }
    k->buf = bg_xrealloc(k->buf, k->len + n + 1);
    memcpy(k->buf + k->len, ptr, n);
    k->len += n;
    k->buf[k->len] = '\0';
    return n;
}

static void add_header(call *k, const char *name, const char *value)
{
    char line[1024];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    k->headers = curl_slist_append(k->headers, line);
    bg_sig_wipe(line, sizeof(line));
}

static void wipe_headers(struct curl_slist *h)
{
    for (; h != NULL; h = h->next)
        bg_sig_wipe(h->data, strlen(h->data));
}

/* Webhooks: only the caller's extra headers. */
static void setup_plain(call *k)
{
    for (size_t i = 0; i < sizeof(k->req.headers) / sizeof(k->req.headers[0]); i++)
        if (k->req.headers[i][0])
            k->headers = curl_slist_append(k->headers, k->req.headers[i]);
}

static void setup_branch_headers(bg_peer_client *c, call *k, const char *hops)
{
    bg_peer_request *r = &k->req;
    add_header(k, "X-Branch-Origin", c->own_url);
    add_header(k, "X-Branch-Destination", r->target.url);
    /* The bearer line is built in secret memory; curl's copy is wiped in
     * free_call. */
    size_t klen = strlen(r->target.key);
    char *auth = bg_secret_alloc(klen + 32);
    snprintf(auth, klen + 32, "Authorization: Bearer %s", r->target.key);
    k->headers = curl_slist_append(k->headers, auth);
    bg_sig_wipe(auth, klen + 32);
    bg_secret_free(auth);
    if (r->request_id[0])
        add_header(k, "X-Request-Id", r->request_id);
    add_header(k, "X-Branch-Hops", hops);
    if (r->idempotency_key[0])
        add_header(k, "Idempotency-Key", r->idempotency_key);
}

static void setup_tls_and_body(call *k)
{
    bg_peer_request *r = &k->req;
    CURL *e = k->easy;
    if (r->target.ca_pem != NULL) {
        struct curl_blob blob = {r->target.ca_pem, strlen(r->target.ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (r->target.spki_pin[0])
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, r->target.spki_pin);
    if (r->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    k->start_us = mono_us();
    k->sent_ms = bg_now_ms();
}

static void setup_easy(bg_peer_client *c, call *k)
{
    bg_peer_request *r = &k->req;
    char url[1100], hops[16];
    snprintf(url, sizeof(url), "%s%s", r->target.url, r->plain ? "" : r->path);
    snprintf(hops, sizeof(hops), "%d", r->hops);
    CURL *e = curl_easy_init();
    k->easy = e;
    if (r->plain)
        setup_plain(k);
    else
        setup_branch_headers(c, k, hops);
    if (r->body != NULL)
        add_header(k, "Content-Type", "application/json");
    add_header(k, "Accept", "application/json");
    k->headers = curl_slist_append(k->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, r->plain ? "branchgate-webhook" : "branchgate-peer");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, k);
    setup_tls_and_body(k);
}

static void free_call(call *k)
{
    if (k->easy != NULL)
        curl_easy_cleanup(k->easy);
    wipe_headers(k->headers);
    curl_slist_free_all(k->headers);
    bg_peer_target_clear(&k->req.target);
    free(k->req.body);
    free(k->buf);
    free(k);
}

/* Peer thread: a transfer ended (or the client is stopping). */
static void finish(bg_peer_client *c, call *k, CURLcode rc)
{
    bg_peer_result res = {.sent_ms = k->sent_ms};
    res.rtt_us = (int64_t)(mono_us() - k->start_us);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &res.status);
        res.body = k->buf ? k->buf : bg_xstrdup("");
        res.body_len = k->len;
        k->buf = NULL;
    } else if (k->too_big) {
        res.err = BG_ETOOBIG;
        snprintf(res.error, sizeof(res.error), "response larger than %u bytes", BG_PEER_MAX_RESPONSE);
    } else {
        res.err = rc == CURLE_OPERATION_TIMEDOUT ? BG_ETIMEOUT : BG_EPEER;
        snprintf(res.error, sizeof(res.error), "%s", k->errbuf[0] ? k->errbuf : curl_easy_strerror(rc));
    }
    bool ok = res.err == BG_OK && res.status < 500;
    if (!k->req.plain) {
        pthread_mutex_lock(&c->mu);
        breaker_record(c, breaker_of(c, k->req.target.branch_id), ok);
        pthread_mutex_unlock(&c->mu);
    }
    k->fn(&res, k->ud);
    free(res.body);
    free_call(k);
}

static void unlink_live(bg_peer_client *c, call *k)
{
    if (k->prev_live)
        k->prev_live->next_live = k->next_live;
    else
        c->live = k->next_live;
    if (k->next_live)
        k->next_live->prev_live = k->prev_live;
}

static void *peer_main(void *arg)
{
    bg_peer_client *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        call *fresh = c->pending;
        c->pending = NULL;
        bool stopping = c->stopping;
        pthread_mutex_unlock(&c->mu);
        for (call *k = fresh, *next; k != NULL; k = next) {
            next = k->next;
            setup_easy(c, k);
            curl_multi_add_handle(c->multi, k->easy);
            k->next_live = c->live;
            k->prev_live = NULL;
            if (c->live)
                c->live->prev_live = k;
            c->live = k;
        }
        if (stopping)
            break;
        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            call *k = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&k);
            CURLcode rc = m->data.result;
            curl_multi_remove_handle(c->multi, m->easy_handle);
            unlink_live(c, k);
            finish(c, k, rc);
        }
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
    }
    /* Stopping: complete whatever is still in flight as timed out. */
    while (c->live != NULL) {
        call *k = c->live;
        curl_multi_remove_handle(c->multi, k->easy);
        unlink_live(c, k);
        snprintf(k->errbuf, sizeof(k->errbuf), "shutting down");
        finish(c, k, CURLE_OPERATION_TIMEDOUT);
    }
    return NULL;
}

bg_err bg_peer_client_create(const bg_peer_opts *o, bg_peer_client **out)
{
    bg_peer_client *c = bg_xcalloc(1, sizeof(*c));
    c->opts = *o;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 2000;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = 10000;
    if (c->opts.breaker_failures <= 0)
        c->opts.breaker_failures = 5;
    if (c->opts.breaker_open_ms <= 0)
        c->opts.breaker_open_ms = 30000;
    bg_strlcpy(c->own_url, o->own_url ? o->own_url : "", sizeof(c->own_url));
    c->opts.own_url = c->own_url;
    pthread_mutex_init(&c->mu, NULL);
    c->multi = curl_multi_init();
    if (c->multi == NULL || pthread_create(&c->thread, NULL, peer_main, c) != 0) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return BG_EINTERNAL;
    }
    *out = c;
    return BG_OK;
}

void bg_peer_client_destroy(bg_peer_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    free(c->breakers);
    free(c);
}

static void drop_request(bg_peer_request *req)
{
    bg_peer_target_clear(&req->target);
    free(req->body);
    req->body = NULL;
}

bg_err bg_peer_send(bg_peer_client *c, bg_peer_request *req, bg_peer_done_fn fn, void *ud)
{
    pthread_mutex_lock(&c->mu);
    bg_err e = BG_OK;
    if (c->stopping)
        e = BG_EBUSY;
    else if (!req->plain && !breaker_admit(c, breaker_of(c, req->target.branch_id)))
        e = BG_EPEER;
    if (e != BG_OK) {
        pthread_mutex_unlock(&c->mu);
        drop_request(req);
        return e;
    }
    call *k = bg_xcalloc(1, sizeof(*k));
    k->req = *req;
    k->fn = fn;
    k->ud = ud;
    k->next = c->pending;
    c->pending = k;
    pthread_mutex_unlock(&c->mu);
    /* The request's resources now belong to the call. */
    req->target.key = NULL;
    req->target.ca_pem = NULL;
    req->body = NULL;
    curl_multi_wakeup(c->multi);
    return BG_OK;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bg_peer_result res;
} waiter;

static void sync_done(bg_peer_result *res, void *ud)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    res->body = NULL; /* taken */
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bg_err bg_peer_call_sync(bg_peer_client *c, bg_peer_request *req, bg_peer_result *out)
{
    waiter w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    bg_err e = bg_peer_send(c, req, sync_done, &w);
    if (e == BG_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        *out = w.res;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return e;
}
