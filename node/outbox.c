/* node/outbox.c — the outbox sender: a thread with its own registry
 * connection that delivers queued messages to peers through the peer
 * client, one in flight per destination and in order, with capped
 * exponential backoff and jitter. Organisation syncs never give up;
 * share-resource messages move to the dead-letter state after
 * outbox.give_up_after_s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/branches.h"
#include "node/orgs.h"
#include "node_internal.h"
#include "proto/log.h"
#include "proto/mem.h"

typedef struct completion {
    struct completion *next;
    struct outbox_state *st;
    int64_t msg_id, branch_id;
    int attempts;
    long long created_ms;
    bool share;
    bg_err err;
    long status;
    char error[256];
} completion;

typedef struct dest_stat {
    char name[64];
    int64_t depth, dead;
    long long oldest_ms;
} dest_stat;

struct outbox_state {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake;
    completion *done; /* answered deliveries, from the peer thread */
    int64_t *inflight; /* destinations with a delivery in flight (sender thread) */
    size_t ninflight, cap;
    dest_stat *stats; /* for /metrics, under mu */
    size_t nstats;
    uint64_t delivered, failed, dead;
};

void bg_node_outbox_wake(bg_node *n)
{
    struct outbox_state *st = n->outbox;
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->mu);
    st->wake = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static bool is_inflight(struct outbox_state *st, int64_t branch_id)
{
    for (size_t i = 0; i < st->ninflight; i++)
        if (st->inflight[i] == branch_id)
            return true;
    return false;
}

static void set_inflight(struct outbox_state *st, int64_t branch_id, bool on)
{
    if (on) {
        if (st->ninflight == st->cap) {
            st->cap = st->cap ? st->cap * 2 : 16;
            st->inflight = bg_xrealloc(st->inflight, st->cap * sizeof(int64_t));
        }
        st->inflight[st->ninflight++] = branch_id;
        return;
    }
    for (size_t i = 0; i < st->ninflight; i++)
        if (st->inflight[i] == branch_id) {
            st->inflight[i] = st->inflight[--st->ninflight];
            return;
        }
}

/* Peer thread: queue the answer for the sender thread. */
static void on_answer(bg_peer_result *res, void *ud)
{
    completion *c = ud;
    c->err = res->err;
    c->status = res->status;
    snprintf(c->error, sizeof(c->error), "%s", res->error);
    if (res->err == BG_OK && (res->status < 200 || res->status > 299)) {
        json_t *j = res->body ? json_loads(res->body, 0, NULL) : NULL;
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        snprintf(c->error, sizeof(c->error), "HTTP %ld%s%.80s", res->status, code ? " " : "",
                 code ? code : "");
        json_decref(j);
    }
    struct outbox_state *st = c->st;
    pthread_mutex_lock(&st->mu);
    c->next = st->done;
    st->done = c;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* 1 s doubling up to outbox.backoff_max_s, with half of it jittered. */
static long long backoff_ms(const bg_node *n, int attempts)
{
    long long cap = n->cfg.outbox_backoff_max_s * 1000;
    long long d = 1000;
    for (int i = 1; i < attempts && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    uint32_t r;
    bg_sig_random(&r, sizeof(r));
    return d / 2 + (long long)(r % (uint32_t)(d / 2 + 1));
}

static void settle(bg_node *n, bg_registry *reg, completion *c)
{
    struct outbox_state *st = n->outbox;
    long long now = bg_now_ms();
    if (c->err == BG_OK && c->status >= 200 && c->status <= 299) {
        bg_registry_outbox_done(reg, c->msg_id);
        __atomic_fetch_add(&st->delivered, 1, __ATOMIC_RELAXED);
        return;
    }
    /* A share the peer refused for good (malformed, or for an organisation
     * it does not hold) is dead at once, so it cannot hold up the messages
     * behind it; it can be replayed. Otherwise shares give up after the
     * configured age, and organisation syncs never do. */
    bool permanent = c->status == 400 || c->status == 404 || c->status == 409 ||
                     c->status == 413 || c->status == 422;
    bool dead = c->share && (permanent || now - c->created_ms > n->cfg.outbox_give_up_after_s * 1000);
    bg_registry_outbox_retry(reg, c->msg_id, now + backoff_ms(n, c->attempts + 1), (int)c->status,
                             c->error, dead);
    __atomic_fetch_add(dead ? &st->dead : &st->failed, 1, __ATOMIC_RELAXED);
    if (dead)
        bg_log(BG_LOG_WARN, NULL, "outbox message %lld dead-lettered: %s", (long long)c->msg_id,
               c->error);
}

/* Sends the head message of a destination. */
static void dispatch(bg_node *n, bg_registry *reg, const bg_outbox_msg *m)
{
    struct outbox_state *st = n->outbox;
    bg_branch b;
    if (bg_registry_branch_get_id(reg, m->branch_id, &b) != BG_OK)
        return;
    bool active = b.is_active;
    bg_peer_request rq;
    memset(&rq, 0, sizeof(rq));
    bg_err e = active ? bg_node_branch_target(n, &b, &rq.target) : BG_EINVAL;
    bg_registry_branch_clear(&b);
    if (e != BG_OK)
        return; /* inactive destinations keep their messages */
    rq.method = "POST";
    bg_strlcpy(rq.path, m->path, sizeof(rq.path));
    rq.body = bg_xstrdup(m->payload);
    rq.body_len = strlen(rq.body);
    snprintf(rq.request_id, sizeof(rq.request_id), "outbox-%lld", (long long)m->id);
    rq.hops = 1;
    bg_strlcpy(rq.idempotency_key, m->idempotency_key, sizeof(rq.idempotency_key));
    completion *c = bg_xcalloc(1, sizeof(*c));
    c->st = st;
    c->msg_id = m->id;
    c->branch_id = m->branch_id;
    c->attempts = m->attempts;
    c->created_ms = m->created_ms;
    c->share = strcmp(m->kind, "share_resource") == 0;
    set_inflight(st, m->branch_id, true);
    e = bg_peer_send(bg_node_peer_client(n), &rq, on_answer, c);
    if (e != BG_OK) {
        /* The breaker is open: count it as a failed attempt. */
        c->err = e;
        snprintf(c->error, sizeof(c->error), "%s", e == BG_EPEER ? "circuit breaker open" : "stopping");
        set_inflight(st, m->branch_id, false);
        settle(n, reg, c);
        free(c);
    }
}

/* Delivers what is due; returns when the next message falls due. */
static long long run_due(bg_node *n, bg_registry *reg)
{
    struct outbox_state *st = n->outbox;
    bg_outbox_msg *heads = NULL;
    size_t cnt = 0;
    long long now = bg_now_ms(), next = now + 1000;
    if (bg_registry_outbox_heads(reg, &heads, &cnt) != BG_OK)
        return next;
    for (size_t i = 0; i < cnt; i++) {
        if (is_inflight(st, heads[i].branch_id))
            continue;
        if (heads[i].next_attempt_ms > now) {
            if (heads[i].next_attempt_ms < next)
                next = heads[i].next_attempt_ms;
            continue;
        }
        dispatch(n, reg, &heads[i]);
    }
    bg_registry_outbox_free(heads, cnt);
    return next;
}

/* Every active branch gets a row, so an empty outbox reads as 0. */
static void refresh_stats(bg_node *n, bg_registry *reg)
{
    struct outbox_state *st = n->outbox;
    bg_outbox_stats *s = NULL;
    bg_branch *list = NULL;
    size_t cnt = 0, nb = 0;
    if (bg_registry_outbox_stats(reg, 0, &s, &cnt) != BG_OK)
        return;
    if (bg_registry_branch_list(reg, NULL, false, 0, 0, &list, &nb) != BG_OK) {
        free(s);
        return;
    }
    dest_stat *fresh = bg_xcalloc(nb ? nb : 1, sizeof(*fresh));
    for (size_t i = 0; i < nb; i++) {
        bg_strlcpy(fresh[i].name, list[i].name, sizeof(fresh[i].name));
        for (size_t k = 0; k < cnt; k++)
            if (s[k].branch_id == list[i].id) {
                fresh[i].depth = s[k].depth;
                fresh[i].dead = s[k].dead;
                fresh[i].oldest_ms = s[k].oldest_created_ms;
            }
    }
    free(s);
    bg_registry_branch_free(list, nb);
    pthread_mutex_lock(&st->mu);
    free(st->stats);
    st->stats = fresh;
    st->nstats = nb;
    pthread_mutex_unlock(&st->mu);
}

static void wait_until(struct outbox_state *st, long long until_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    int rc = 0;
    while (!st->stop && !st->wake && st->done == NULL && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    st->wake = false;
}

static void *outbox_main(void *arg)
{
    bg_node *n = arg;
    struct outbox_state *st = n->outbox;
    char dbpath[4200];
    bg_registry *reg = NULL;
    bg_registry_opts ro = {.busy_timeout_ms = (int)n->cfg.db_busy_timeout_ms};
    if (!bg_path_join(dbpath, sizeof(dbpath), n->data_dir, BG_DB_FILE) ||
        bg_registry_open(dbpath, &ro, &reg) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "outbox: cannot open the registry; deliveries stopped");
        return NULL;
    }
    long long last_stats = 0, last_housekeeping = 0;
    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        completion *done = st->done;
        st->done = NULL;
        pthread_mutex_unlock(&st->mu);
        for (completion *c = done, *next; c != NULL; c = next) {
            next = c->next;
            settle(n, reg, c);
            set_inflight(st, c->branch_id, false);
            free(c);
        }
        long long due = run_due(n, reg);
        long long now = bg_now_ms();
        if (now - last_stats >= 1000) {
            refresh_stats(n, reg);
            last_stats = now;
        }
        if (now - last_housekeeping >= 60000) {
            bg_registry_idem_expire(reg, now - n->cfg.outbox_idempotency_ttl_s * 1000);
            last_housekeeping = now;
        }
        pthread_mutex_lock(&st->mu);
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        long long wall_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
        long long wait = due - bg_now_ms();
        if (wait > 1000)
            wait = 1000;
        if (wait > 0)
            wait_until(st, wall_ms + wait);
    }
    pthread_mutex_unlock(&st->mu);
    bg_registry_close(reg);
    return NULL;
}

void bg_node_outbox_start(bg_node *n)
{
    struct outbox_state *st = bg_xcalloc(1, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    n->outbox = st;
    if (pthread_create(&st->thread, NULL, outbox_main, n) != 0) {
        bg_log(BG_LOG_ERROR, NULL, "cannot start the outbox thread");
        return;
    }
    st->started = true;
}

void bg_node_outbox_stop(bg_node *n)
{
    struct outbox_state *st = n->outbox;
    if (st == NULL || !st->started)
        return;
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    st->started = false;
}

/* After the peer client is gone no answer can arrive any more. */
void bg_node_outbox_free(bg_node *n)
{
    struct outbox_state *st = n->outbox;
    if (st == NULL)
        return;
    for (completion *c = st->done, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(st->inflight);
    free(st->stats);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    n->outbox = NULL;
}

void bg_node_outbox_metrics(bg_node *n, char **buf, size_t *len)
{
    struct outbox_state *st = n->outbox;
    bg_textbuf b = {NULL, 0, 0};
    bg_textbuf_printf(&b, "%s", "");
    if (st == NULL) {
        *buf = b.p;
        *len = 0;
        return;
    }
    long long now = bg_now_ms();
    pthread_mutex_lock(&st->mu);
    bg_textbuf_printf(&b, "# HELP branchgate_outbox_depth Messages waiting for a destination.\n"
                          "# TYPE branchgate_outbox_depth gauge\n");
    for (size_t i = 0; i < st->nstats; i++)
        bg_textbuf_printf(&b, "branchgate_outbox_depth{destination=\"%s\"} %lld\n",
                          st->stats[i].name, (long long)st->stats[i].depth);
    bg_textbuf_printf(&b, "# HELP branchgate_outbox_oldest_seconds Age of the oldest waiting message.\n"
                          "# TYPE branchgate_outbox_oldest_seconds gauge\n");
    for (size_t i = 0; i < st->nstats; i++)
        bg_textbuf_printf(&b, "branchgate_outbox_oldest_seconds{destination=\"%s\"} %.3f\n",
                          st->stats[i].name,
                          st->stats[i].oldest_ms ? (double)(now - st->stats[i].oldest_ms) / 1000.0 : 0.0);
    bg_textbuf_printf(&b, "# HELP branchgate_outbox_dead Dead-lettered messages per destination.\n"
                          "# TYPE branchgate_outbox_dead gauge\n");
    for (size_t i = 0; i < st->nstats; i++)
        bg_textbuf_printf(&b, "branchgate_outbox_dead{destination=\"%s\"} %lld\n", st->stats[i].name,
                          (long long)st->stats[i].dead);
    pthread_mutex_unlock(&st->mu);
    bg_textbuf_printf(&b,
                      "# HELP branchgate_outbox_attempts_total Delivery attempts by result.\n"
                      "# TYPE branchgate_outbox_attempts_total counter\n"
                      "branchgate_outbox_attempts_total{result=\"delivered\"} %llu\n"
                      "branchgate_outbox_attempts_total{result=\"failed\"} %llu\n"
                      "branchgate_outbox_attempts_total{result=\"dead\"} %llu\n",
                      (unsigned long long)__atomic_load_n(&st->delivered, __ATOMIC_RELAXED),
                      (unsigned long long)__atomic_load_n(&st->failed, __ATOMIC_RELAXED),
                      (unsigned long long)__atomic_load_n(&st->dead, __ATOMIC_RELAXED));
    *buf = b.p;
    *len = b.len;
}
