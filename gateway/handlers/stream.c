/* gateway/handlers/stream.c — progress over SSE at /api/stream.
 *
 * A stream is an h2o generator in the request's pool, linked into its
 * loop's list. Events reach it two ways: the stored ones after
 * Last-Event-ID (or from the channel's start) through a worker job, and
 * live ones through the node's event sink, which posts each committed
 * event to every loop. A stream registers before its stored events are
 * read, buffers live events until they arrive, and then sends only ids
 * above the last one sent, so nothing is lost or repeated. Every write
 * follows the one-h2o_send-per-proceed rule (STACK-NOTES 4.6): events queue
 * in `pending` and go out when the previous write has been flushed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/pipeline.h"
#include "proto/assembly.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

#define BACKLOG_MAX 10000

typedef struct sse_buf {
    char *p;
    size_t len, cap;
} sse_buf;

typedef struct sse_stream {
    h2o_generator_t super;
    h2o_req_t *req;
    bg_gw_loop *loop;
    h2o_linklist_t link;
    h2o_timeout_entry_t heartbeat;
    char assembly_id[BG_ASSEMBLY_ID_MAX]; /* "" = branch stream */
    char org[BG_UUID_LEN + 1];            /* "" = every organisation (admin) */
    int64_t last_id;                      /* highest id sent or queued */
    bool started;                         /* response started (backlog in) */
    bool sending;                         /* an h2o_send awaits its proceed */
    bool end;                             /* send FINAL with the next write */
    bool done;                            /* FINAL sent or client gone */
    uint64_t started_ms;
    sse_buf pending;                      /* to send */
    sse_buf inflight;                     /* being sent */
    sse_buf early;                        /* live events before start: ids in early_ids */
    int64_t *early_ids;
    size_t nearly;
} sse_stream;

/* Live events in transit from the sink to a loop. */
typedef struct sse_msg {
    h2o_multithread_message_t super;
    bg_event_row ev;
} sse_msg;

static int open_streams; /* all loops; read by the sink (atomic) */

static void buf_add(sse_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = bg_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_free(sse_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void render(sse_buf *b, int64_t id, const char *name, const char *data)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "id: %lld\nevent: %s\ndata: ", (long long)id, name);
    buf_add(b, head, (size_t)n);
    buf_add(b, data, strlen(data));
    buf_add(b, "\n\n", 2);
}

static bool matches(const sse_stream *s, const bg_event_row *ev)
{
    if (s->assembly_id[0])
        return strcmp(s->assembly_id, ev->assembly_id) == 0;
    return s->org[0] == '\0' || strcmp(s->org, ev->organization_id) == 0;
}

/* ---- writing ---- */

static void flush(sse_stream *s)
{
    if (s->sending || s->done || !s->started || (s->pending.len == 0 && !s->end))
        return;
    buf_free(&s->inflight);
    s->inflight = s->pending;
    memset(&s->pending, 0, sizeof(s->pending));
    s->sending = true;
    h2o_iovec_t buf = h2o_iovec_init(s->inflight.p, s->inflight.len);
    bool fin = s->end;
    if (fin) {
        s->done = true;
        h2o_timeout_unlink(&s->heartbeat);
    }
    h2o_send(s->req, &buf, buf.len ? 1 : 0, fin ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    sse_stream *s = (sse_stream *)g;
    s->sending = false;
    flush(s);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    sse_stream *s = (sse_stream *)g;
    s->done = true;
    h2o_timeout_unlink(&s->heartbeat);
}

/* Queues one event (id order is the caller's duty); a channel stream ends
 * with a terminal event unless more events follow it. */
static void queue_event(sse_stream *s, int64_t id, const char *name, const char *data)
{
    if (id <= s->last_id)
        return;
    s->last_id = id;
    render(&s->pending, id, name, data);
    if (s->assembly_id[0])
        s->end = bg_pipeline_event_terminal(name);
}

/* ---- lifetime ---- */

static void stream_dispose(void *p)
{
    sse_stream *s = p;
    h2o_timeout_unlink(&s->heartbeat);
    if (h2o_linklist_is_linked(&s->link)) {
        h2o_linklist_unlink(&s->link);
        __atomic_fetch_sub(&open_streams, 1, __ATOMIC_SEQ_CST);
    }
    buf_free(&s->pending);
    buf_free(&s->inflight);
    buf_free(&s->early);
    free(s->early_ids);
}

static void on_heartbeat(h2o_timeout_entry_t *entry)
{
    sse_stream *s = H2O_STRUCT_FROM_MEMBER(sse_stream, heartbeat, entry);
    if (s->done)
        return;
    uint64_t now = h2o_now(s->loop->ctx.loop);
    if (now - s->started_ms >= (uint64_t)s->loop->gw->cfg->sse_max_age_s * 1000)
        s->end = true;
    else
        buf_add(&s->pending, ": heartbeat\n\n", 13);
    h2o_timeout_link(s->loop->ctx.loop, &s->loop->sse_heartbeat, &s->heartbeat);
    flush(s);
}

/* ---- the sink and the loops ---- */

void bg_gw_event_sink(void *ud, const bg_event_row *ev)
{
    bg_gateway *gw = ud;
    if (__atomic_load_n(&open_streams, __ATOMIC_SEQ_CST) == 0)
        return;
    for (int i = 0; i < gw->nloops; i++) {
        sse_msg *m = bg_xcalloc(1, sizeof(*m));
        m->ev = *ev;
        m->ev.data = bg_xstrdup(ev->data);
        __atomic_fetch_add(&gw->loops[i].events_pending, 1, __ATOMIC_SEQ_CST);
        h2o_multithread_send_message(&gw->loops[i].events_recv, &m->super);
    }
}

static void deliver(bg_gw_loop *l, const bg_event_row *ev)
{
    for (h2o_linklist_t *n = l->streams.next; n != &l->streams; n = n->next) {
        sse_stream *s = H2O_STRUCT_FROM_MEMBER(sse_stream, link, n);
        if (s->done || !matches(s, ev))
            continue;
        if (!s->started) {
            s->early_ids = bg_xrealloc(s->early_ids, (s->nearly + 1) * sizeof(int64_t));
            s->early_ids[s->nearly++] = ev->id;
            char name[40];
            snprintf(name, sizeof(name), "%s", ev->name);
            buf_add(&s->early, name, strlen(name) + 1);
            buf_add(&s->early, ev->data, strlen(ev->data) + 1);
            continue;
        }
        queue_event(s, ev->id, ev->name, ev->data);
        flush(s);
    }
}

void bg_gw_on_events(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    bg_gw_loop *l = H2O_STRUCT_FROM_MEMBER(bg_gw_loop, events_recv, recv);
    while (!h2o_linklist_is_empty(messages)) {
        sse_msg *m = H2O_STRUCT_FROM_MEMBER(sse_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        deliver(l, &m->ev);
        free(m->ev.data);
        free(m);
        __atomic_fetch_sub(&l->events_pending, 1, __ATOMIC_SEQ_CST);
    }
}

void bg_gw_streams_end_all(bg_gw_loop *l)
{
    for (h2o_linklist_t *n = l->streams.next; n != &l->streams; n = n->next) {
        sse_stream *s = H2O_STRUCT_FROM_MEMBER(sse_stream, link, n);
        if (s->done || !s->started)
            continue;
        s->end = true;
        flush(s);
    }
}

/* ---- the request ---- */

typedef struct backlog {
    bg_actor *who;
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    int64_t after;
    bg_event_row *events;
    size_t n;
    bool finished; /* the channel's assembly is completed, failed or canceled */
} backlog;

static void backlog_free(void *p)
{
    backlog *b = p;
    free(b->who);
    bg_registry_event_free(b->events, b->n);
    free(b);
}

static void backlog_work(bg_gw_job *job, bg_registry *reg)
{
    backlog *b = job->state;
    bg_node_err ne = {0};
    /* The state is read before the events: the terminal event commits with
     * the state, so a finished state guarantees the list holds it. */
    bg_assembly_row a;
    if (b->assembly_id[0] &&
        bg_registry_assembly_get(reg, b->assembly_id, b->who->all_orgs ? NULL : b->who->org, &a) == BG_OK) {
        b->finished = strcmp(a.state, "completed") == 0 || strcmp(a.state, "failed") == 0 ||
                      strcmp(a.state, "canceled") == 0;
        bg_registry_assembly_clear(&a);
    }
    bg_err e = bg_pipeline_events(job->node, reg, b->who, b->assembly_id[0] ? b->assembly_id : NULL,
                                  b->after, BACKLOG_MAX, &b->events, &b->n, &ne);
    if (e != BG_OK)
        bg_gw_job_fail_node(job, e, &ne);
}

/* Starts the response with the stored events ev[0..n). A full page of
 * them ends the stream, so the client resumes from the last id it got
 * (EventSource does so by itself) instead of missing what lies beyond the
 * page; a channel whose assembly has finished and has nothing newer to
 * send ends at once. */
static void start(bg_reqctx *rc, sse_stream *s, const bg_event_row *ev, size_t n, bool finished)
{
    h2o_req_t *req = rc->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    bg_gw_mark_response(rc, 200);
    s->super.proceed = on_proceed;
    s->super.stop = on_stop;
    h2o_start_response(req, &s->super);
    s->started = true;
    s->started_ms = h2o_now(s->loop->ctx.loop);
    buf_add(&s->pending, ": branchgate\nretry: 3000\n\n", 26);
    for (size_t i = 0; i < n; i++)
        queue_event(s, ev[i].id, ev[i].name, ev[i].data);
    const char *p = s->early.p;
    size_t nearly = n == BACKLOG_MAX ? 0 : s->nearly; /* after a full page: a gap */
    for (size_t i = 0; i < nearly; i++) {
        const char *name = p;
        const char *data = name + strlen(name) + 1;
        queue_event(s, s->early_ids[i], name, data);
        p = data + strlen(data) + 1;
    }
    buf_free(&s->early);
    if (n == BACKLOG_MAX || (s->assembly_id[0] && finished && n == 0 && s->nearly == 0))
        s->end = true;
    h2o_timeout_link(s->loop->ctx.loop, &s->loop->sse_heartbeat, &s->heartbeat);
    flush(s);
}

static void backlog_reply(bg_reqctx *rc, bg_gw_job *job)
{
    sse_stream *s = job->arg;
    if (job->err != BG_OK) {
        h2o_linklist_unlink(&s->link);
        __atomic_fetch_sub(&open_streams, 1, __ATOMIC_SEQ_CST);
        bg_gw_fail(rc, job->err, job->err_code, "%s", job->err_msg);
        return;
    }
    backlog *b = job->state;
    start(rc, s, b->events, b->n, b->finished);
}

/* Last-Event-ID from the header or ?last_event_id=. -1 when absent. */
static bool last_event_id(bg_reqctx *rc, int64_t *out)
{
    size_t len;
    const char *q = bg_gw_query(rc, "last_event_id", &len);
    ssize_t i = h2o_find_header_by_str(&rc->req->headers, H2O_STRLIT("last-event-id"), -1);
    *out = -1;
    if (i >= 0) {
        q = rc->req->headers.entries[i].value.base;
        len = rc->req->headers.entries[i].value.len;
    }
    if (q == NULL)
        return true;
    if (bg_parse_i64(q, len, 0, INT64_MAX, out) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "Last-Event-ID must be an event id");
        return false;
    }
    return true;
}

/* Parses ?channel= or ?branch=; answers the error itself. */
static bool target(bg_reqctx *rc, char assembly_id[BG_ASSEMBLY_ID_MAX])
{
    size_t clen, blen;
    const char *channel = bg_gw_query(rc, "channel", &clen);
    const char *branch = bg_gw_query(rc, "branch", &blen);
    char name[BG_BRANCH_NAME_MAX + 1];
    assembly_id[0] = '\0';
    if ((channel == NULL) == (branch == NULL)) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "pass either channel=upload:BRANCH:ASSEMBLY_ID or branch=NAME");
        return false;
    }
    if (channel != NULL && bg_channel_parse(channel, clen, name, assembly_id) != BG_OK) {
        bg_gw_error(rc, 400, "INVALID_PARAMETER", "channel must be upload:BRANCH:ASSEMBLY_ID");
        return false;
    }
    const char *which = channel != NULL ? name : branch;
    if (strcmp(which, rc->gw->cfg->branch_name) != 0) {
        bg_gw_error(rc, 404, "BRANCH_NOT_FOUND", "this branch streams only its own assemblies");
        return false;
    }
    return true;
}

void bg_h_stream(bg_reqctx *rc)
{
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    int64_t after;
    if (!target(rc, assembly_id) || !last_event_id(rc, &after))
        return;
    h2o_req_t *req = rc->req;
    sse_stream *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), stream_dispose);
    memset(s, 0, sizeof(*s));
    s->req = req;
    s->loop = rc->loop;
    s->heartbeat.cb = on_heartbeat;
    bg_strlcpy(s->assembly_id, assembly_id, sizeof(s->assembly_id));
    if (rc->is_user)
        bg_strlcpy(s->org, rc->user.org, sizeof(s->org));
    s->last_id = after > 0 ? after : 0;
    /* Registered first, so events committed from here on are seen live. */
    h2o_linklist_insert(&rc->loop->streams, &s->link);
    __atomic_fetch_add(&open_streams, 1, __ATOMIC_SEQ_CST);
    if (!assembly_id[0] && after < 0) {
        start(rc, s, NULL, 0, false); /* a branch stream without an id: new events only */
        return;
    }
    backlog *b = bg_xcalloc(1, sizeof(*b));
    b->who = bg_h_actor(rc);
    bg_strlcpy(b->assembly_id, assembly_id, sizeof(b->assembly_id));
    b->after = s->last_id;
    bg_gw_job *job = bg_gw_job_new(rc, backlog_work, NULL);
    job->state = b;
    job->state_free = backlog_free;
    job->arg = s;
    job->reply = backlog_reply;
    bg_gw_job_submit(rc, job);
}
