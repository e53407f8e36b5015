/* gateway/async.c — handing blocking work to the worker pool and the
 * reply back to the loop thread that owns the request (STACK-NOTES 4.8).
 *
 * Lifetimes: the job is malloc'ed and owned by whoever holds it: the loop
 * until submission, the pool until done(), then the loop's receiver, which
 * always frees it. If the request dies first, the request pool's dispose
 * callback (middleware.c) clears job->rc, and the reply is dropped. Both
 * run on the loop thread, so no lock is needed. */
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "node/peer.h"
#include "proto/log.h"
#include "proto/mem.h"

static void task_run(bg_task *t, bg_registry *reg)
{
    bg_gw_job *job = (bg_gw_job *)t;
    job->work(job, reg);
}

/* Worker thread: post the finished job to its loop. */
static void task_done(bg_task *t)
{
    bg_gw_job *job = (bg_gw_job *)t;
    h2o_multithread_send_message(&job->loop->jobs_recv, &job->msg);
}

bg_gw_job *bg_gw_job_new(bg_reqctx *rc, bg_gw_work_fn work, json_t *in)
{
    bg_gw_job *job = bg_xcalloc(1, sizeof(*job)); /* msg.link must start zeroed */
    job->task.run = task_run;
    job->task.done = task_done;
    job->loop = rc->loop;
    job->node = rc->gw->node;
    job->work = work;
    job->in = in;
    job->status = 200;
    bg_strlcpy(job->request_id, rc->request_id, sizeof(job->request_id));
    bg_strlcpy(job->actor, rc->actor, sizeof(job->actor));
    return job;
}

typedef struct bg_gw_fanout {
    bg_gw_job *job;
    size_t n;
    size_t left; /* atomic */
    bg_gw_peers_fn then;
    bg_peer_result *res;
    struct slot {
        struct bg_gw_fanout *f;
        size_t i;
    } *slots;
} bg_gw_fanout;

static void fanout_free(bg_gw_fanout *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->res[i].body);
    free(f->res);
    free(f->slots);
    free(f);
}

static void job_free(bg_gw_job *job)
{
    json_decref(job->in);
    json_decref(job->out);
    if (job->state_free != NULL)
        job->state_free(job->state);
    fanout_free(job->fanout);
    free(job);
}

void bg_gw_job_submit(bg_reqctx *rc, bg_gw_job *job)
{
    job->rc = rc;
    rc->job = job;
    if (bg_pool_submit(bg_node_pool(rc->gw->node), &job->task) != BG_OK) {
        rc->job = NULL;
        job_free(job);
        bg_gw_header(rc, "retry-after", "1");
        bg_gw_error(rc, 503, "SERVICE_BUSY", "the branch is overloaded; retry shortly");
        return;
    }
    rc->loop->pending_jobs++;
}

void bg_gw_job_fail(bg_gw_job *job, bg_err e, const char *code, const char *fmt, ...)
{
    job->err = e == BG_OK ? BG_EINTERNAL : e;
    job->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->err_msg, sizeof(job->err_msg), fmt, ap);
    va_end(ap);
}

void bg_gw_job_fail_node(bg_gw_job *job, bg_err e, const bg_node_err *ne)
{
    bg_gw_job_fail(job, e, ne->code, "%s", ne->message[0] ? ne->message : bg_err_code(e));
}

void bg_gw_job_ok(bg_gw_job *job, int status, json_t *out)
{
    job->err = BG_OK;
    job->status = status;
    json_decref(job->out);
    job->out = out;
}

static void default_reply(bg_reqctx *rc, bg_gw_job *job)
{
    if (job->err != BG_OK) {
        if (bg_gw_status_of(job->err) >= 500)
            bg_log(BG_LOG_ERROR, rc->request_id, "request failed: %s", job->err_msg);
        bg_gw_fail(rc, job->err, job->err_code, "%s", job->err_msg);
        return;
    }
    json_t *out = job->out;
    job->out = NULL;
    bg_gw_json(rc, job->status, out);
}

void bg_gw_job_next(bg_reqctx *rc, bg_gw_job *job, bg_gw_work_fn work, bg_gw_reply_fn reply)
{
    job->work = work;
    job->reply = reply;
    job->err = BG_OK;
    job->err_code = NULL;
    job->err_msg[0] = '\0';
    job->status = 200;
    json_decref(job->out);
    job->out = NULL;
    job->rc = rc;
    rc->job = job;
    if (bg_pool_submit(bg_node_pool(rc->gw->node), &job->task) != BG_OK) {
        rc->job = NULL;
        bg_gw_header(rc, "retry-after", "1");
        bg_gw_error(rc, 503, "SERVICE_BUSY", "the branch is overloaded; retry shortly");
        return; /* the receiver frees the job: rearmed stays false */
    }
    job->rearmed = true;
    rc->loop->pending_jobs++;
}

/* Peer thread: one answer of a fan-out; the last one wakes the loop. */
static void fanout_done(bg_peer_result *res, void *ud)
{
    struct slot *sl = ud;
    bg_gw_fanout *f = sl->f;
    f->res[sl->i] = *res;
    res->body = NULL; /* taken */
    if (__atomic_sub_fetch(&f->left, 1, __ATOMIC_ACQ_REL) == 0)
        h2o_multithread_send_message(&f->job->loop->jobs_recv, &f->job->msg);
}

static void fanout_reply(bg_reqctx *rc, bg_gw_job *job)
{
    job->fanout->then(rc, job, job->fanout->res, job->fanout->n);
}

void bg_gw_job_peers(bg_reqctx *rc, bg_gw_job *job, bg_peer_request *reqs, size_t n,
                     bg_gw_peers_fn then)
{
    fanout_free(job->fanout);
    bg_gw_fanout *f = bg_xcalloc(1, sizeof(*f));
    f->job = job;
    f->n = n;
    f->then = then;
    f->res = bg_xcalloc(n ? n : 1, sizeof(bg_peer_result));
    f->slots = bg_xcalloc(n ? n : 1, sizeof(struct slot));
    /* One extra count held while sending, so the message cannot go out
     * before every request has been handed over. */
    f->left = n + 1;
    job->fanout = f;
    job->reply = fanout_reply;
    job->rc = rc;
    rc->job = job;
    job->rearmed = true;
    rc->loop->pending_jobs++;
    bg_peer_client *pc = bg_node_peer_client(rc->gw->node);
    for (size_t i = 0; i < n; i++) {
        f->slots[i].f = f;
        f->slots[i].i = i;
        bg_err e = bg_peer_send(pc, &reqs[i], fanout_done, &f->slots[i]);
        if (e != BG_OK) {
            f->res[i].err = e;
            snprintf(f->res[i].error, sizeof(f->res[i].error), "%s",
                     e == BG_EPEER ? "circuit breaker open" : "peer client stopping");
            __atomic_sub_fetch(&f->left, 1, __ATOMIC_ACQ_REL);
        }
    }
    if (__atomic_sub_fetch(&f->left, 1, __ATOMIC_ACQ_REL) == 0)
        h2o_multithread_send_message(&job->loop->jobs_recv, &job->msg);
}

void bg_gw_on_job_replies(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    (void)recv;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        bg_gw_job *job = H2O_STRUCT_FROM_MEMBER(bg_gw_job, msg, msg);
        job->loop->pending_jobs--;
        bg_reqctx *rc = job->rc;
        job->rearmed = false;
        if (rc != NULL) {
            rc->job = NULL;
            if (job->reply != NULL)
                job->reply(rc, job);
            else
                default_reply(rc, job);
        }
        if (!job->rearmed)
            job_free(job);
    }
}
