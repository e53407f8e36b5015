/* node/webhooks.c — the webhook sender: a thread with its own registry
 * connection that delivers the rows of the webhooks table (written in the
 * transaction that finished the assembly) through the libcurl client,
 * signed per the Standard Webhooks spec with the organisation's secret.
 * Every attempt is recorded; 5xx, 408, 429 and transport errors retry on
 * webhooks.schedule, 410 stops for good. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/orgs.h"
#include "pipeline_internal.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/webhook.h"

#define INFLIGHT_MAX 32

typedef struct wh_done {
    struct wh_done *next;
    struct webhook_state *w;
    int64_t id;
    int attempts;
    long long at_ms;
    bg_err err;
    long status;
    char error[256];
} wh_done;

struct webhook_state {
    pthread_t thread;
    bool started, stop, wake;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wh_done *done;
    int64_t inflight[INFLIGHT_MAX];
    size_t ninflight;
};

void bg_pl_webhooks_wake(bg_node *n)
{
    struct webhook_state *w = n->pipe ? n->pipe->wh : NULL;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->wake = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static bool is_inflight(struct webhook_state *w, int64_t id)
{
    for (size_t i = 0; i < w->ninflight; i++)
        if (w->inflight[i] == id)
            return true;
    return false;
}

static void drop_inflight(struct webhook_state *w, int64_t id)
{
    for (size_t i = 0; i < w->ninflight; i++)
        if (w->inflight[i] == id) {
            w->inflight[i] = w->inflight[--w->ninflight];
            return;
        }
}

/* Peer thread: hand the answer to the sender thread. */
static void on_answer(bg_peer_result *res, void *ud)
{
    wh_done *d = ud;
    struct webhook_state *w = d->w;
    d->err = res->err;
    d->status = res->err == BG_OK ? res->status : 0;
    if (res->err != BG_OK)
        snprintf(d->error, sizeof(d->error), "%s", res->error);
    else if (res->status < 200 || res->status > 299)
        snprintf(d->error, sizeof(d->error), "HTTP %ld", res->status);
    pthread_mutex_lock(&w->mu);
    d->next = w->done;
    w->done = d;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The secret of the delivery's organisation ("" when it has none). */
static bg_err org_secret(bg_node *n, bg_registry *reg, const char *org,
                         char out[BG_WEBHOOK_SECRET_MAX + 1])
{
    bg_org o;
    bg_err e = bg_registry_org_get(reg, org, &o);
    if (e != BG_OK)
        return e;
    return bg_node_org_secret(n, &o, out);
}

static void settle(bg_node *n, bg_registry *reg, const wh_done *d)
{
    struct pipeline_state *p = n->pipe;
    bool ok = d->err == BG_OK && d->status >= 200 && d->status <= 299;
    bool gone = d->err == BG_OK && d->status == 410;
    bool retry = d->err != BG_OK || d->status >= 500 || d->status == 408 || d->status == 429;
    /* After attempt k (from 1) the next one waits schedule[k-1]; when the
     * schedule is used up the delivery has failed for good. */
    size_t next = (size_t)d->attempts - 1;
    const char *state = ok ? "delivered" : gone ? "gone" : "failed";
    long long at = 0;
    if (!ok && !gone && retry && next < p->nschedule) {
        state = "pending";
        at = d->at_ms + p->schedule_ms[next];
    }
    bg_webhook_attempt a = {d->at_ms, (int)d->status, {0}};
    bg_strlcpy(a.error, d->error, sizeof(a.error));
    bg_err e = bg_registry_begin(reg);
    if (e == BG_OK && (e = bg_registry_webhook_attempt(reg, d->id, &a, state, at)) == BG_OK)
        e = bg_registry_commit(reg);
    if (e != BG_OK)
        bg_registry_rollback(reg);
    if (e != BG_OK)
        bg_log(BG_LOG_ERROR, NULL, "webhook %lld: cannot record the attempt: %s",
               (long long)d->id, bg_registry_errmsg(reg));
    int k = ok ? 0 : gone ? 3 : strcmp(state, "pending") == 0 ? 1 : 2;
    __atomic_fetch_add(&p->webhook_results[k], 1, __ATOMIC_RELAXED);
}

/* Sends one delivery. A delivery that cannot even be signed is recorded as
 * a failed attempt so it cannot spin. */
static void dispatch(bg_node *n, bg_registry *reg, const bg_webhook_row *row)
{
    struct webhook_state *w = n->pipe->wh;
    wh_done *d = bg_xcalloc(1, sizeof(*d));
    d->id = row->id;
    d->attempts = row->attempts + 1;
    d->at_ms = bg_now_ms();
    char *secret = bg_secret_alloc(BG_WEBHOOK_SECRET_MAX + 1);
    char sig[BG_WEBHOOK_SIG_MAX];
    long long ts = d->at_ms / 1000;
    size_t len = strlen(row->payload);
    bg_err e = org_secret(n, reg, row->organization_id, secret);
    if (e == BG_OK)
        e = bg_webhook_sign(secret, row->msg_id, ts, row->payload, len, sig);
    bg_sig_wipe(secret, BG_WEBHOOK_SECRET_MAX + 1);
    bg_secret_free(secret);
    if (e != BG_OK) {
        d->err = BG_EINVAL;
        snprintf(d->error, sizeof(d->error), "the organization has no usable webhook secret");
        settle(n, reg, d);
        free(d);
        return;
    }
    bg_peer_request rq;
    memset(&rq, 0, sizeof(rq));
    rq.plain = true;
    rq.method = "POST";
    bg_strlcpy(rq.target.url, row->url, sizeof(rq.target.url));
    rq.body = bg_xstrdup(row->payload);
    rq.body_len = len;
    rq.timeout_ms = n->cfg.webhooks_timeout_ms;
    snprintf(rq.headers[0], sizeof(rq.headers[0]), "webhook-id: %s", row->msg_id);
    snprintf(rq.headers[1], sizeof(rq.headers[1]), "webhook-timestamp: %lld", ts);
    snprintf(rq.headers[2], sizeof(rq.headers[2]), "webhook-signature: %s", sig);
    d->w = w;
    w->inflight[w->ninflight++] = row->id;
    if (bg_peer_send(bg_node_peer_client(n), &rq, on_answer, d) != BG_OK) {
        drop_inflight(w, row->id); /* stopping: the row stays pending */
        free(d);
    }
}

static long long run_due(bg_node *n, bg_registry *reg)
{
    struct webhook_state *w = n->pipe->wh;
    long long now = bg_now_ms(), next = now + 1000;
    bg_webhook_row *due = NULL;
    size_t cnt = 0;
    if (bg_registry_webhook_due(reg, now, INFLIGHT_MAX, &due, &cnt) == BG_OK) {
        for (size_t i = 0; i < cnt; i++)
            if (!is_inflight(w, due[i].id) && w->ninflight < INFLIGHT_MAX)
                dispatch(n, reg, &due[i]);
        bg_registry_webhook_free(due, cnt);
    }
    long long at = 0;
    if (bg_registry_webhook_next_due(reg, &at) == BG_OK && at > now && at < next)
        next = at;
    return next;
}

static void wait_until(struct webhook_state *w, long long wait_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_nsec + wait_ms * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    while (!w->stop && !w->wake && w->done == NULL)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
            break;
    w->wake = false;
}

static void *webhooks_main(void *arg)
{
    bg_node *n = arg;
    struct webhook_state *w = n->pipe->wh;
    char dbpath[4200];
    bg_registry *reg = NULL;
    bg_registry_opts ro = {.busy_timeout_ms = (int)n->cfg.db_busy_timeout_ms};
    if (!bg_path_join(dbpath, sizeof(dbpath), n->data_dir, BG_DB_FILE) ||
        bg_registry_open(dbpath, &ro, &reg) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "webhooks: cannot open the registry; deliveries stopped");
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        wh_done *done = w->done;
        w->done = NULL;
        pthread_mutex_unlock(&w->mu);
        for (wh_done *d = done, *next; d != NULL; d = next) {
            next = d->next;
            settle(n, reg, d);
            drop_inflight(w, d->id);
            free(d);
        }
        long long due = run_due(n, reg);
        long long wait = due - bg_now_ms();
        pthread_mutex_lock(&w->mu);
        if (wait > 0)
            wait_until(w, wait > 1000 ? 1000 : wait);
    }
    pthread_mutex_unlock(&w->mu);
    bg_registry_close(reg);
    return NULL;
}

bg_err bg_pl_webhooks_start(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    if (bg_webhook_schedule_parse(n->cfg.webhooks_schedule, p->schedule_ms, &p->nschedule) != BG_OK)
        return BG_EINVAL;
    struct webhook_state *w = bg_xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    p->wh = w;
    if (pthread_create(&w->thread, NULL, webhooks_main, n) != 0) {
        bg_log(BG_LOG_ERROR, NULL, "cannot start the webhook thread");
        return BG_EINTERNAL;
    }
    w->started = true;
    return BG_OK;
}

/* Stops the thread. Answers still in flight arrive (the peer client is
 * destroyed later and completes them) and are freed by bg_pl_webhooks_free. */
void bg_pl_webhooks_stop(bg_node *n)
{
    struct webhook_state *w = n->pipe ? n->pipe->wh : NULL;
    if (w == NULL || !w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
}

void bg_pl_webhooks_free(bg_node *n)
{
    struct webhook_state *w = n->pipe ? n->pipe->wh : NULL;
    if (w == NULL)
        return;
    for (wh_done *d = w->done, *next; d != NULL; d = next) {
        next = d->next;
        free(d);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    n->pipe->wh = NULL;
}
