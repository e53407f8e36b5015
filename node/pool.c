#include "pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "proto/log.h"
#include "proto/mem.h"

typedef struct worker {
    bg_pool *pool;
    pthread_t thread;
    bg_registry *reg;
} worker;

struct bg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bg_task *head, *tail;
    size_t queued, running, queue_max;
    bool stopping;
    int nthreads;
    worker *workers;
};

static void *worker_main(void *arg)
{
    worker *w = arg;
    bg_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->head == NULL)
            break; /* stopping and drained */
        bg_task *t = p->head;
        p->head = t->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t->next = NULL;
        t->run(t, w->reg);
        /* done() may free the task: do not touch t afterwards. */
        t->done(t);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bg_err bg_pool_create(int nthreads, size_t queue_max, const char *db_path,
                      const bg_registry_opts *opts, bg_pool **out)
{
    /* A NULL path would make SQLite give every worker its own private
     * temporary database, silently losing what the tasks write. */
    if (nthreads < 1 || queue_max < 1 || db_path == NULL)
        return BG_EINVAL;
    bg_pool *p = bg_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->queue_max = queue_max;
    p->workers = bg_xcalloc((size_t)nthreads, sizeof(worker));
    /* Open every connection before starting any thread, so a failure leaves
     * nothing running. */
    for (int i = 0; i < nthreads; i++) {
        p->workers[i].pool = p;
        bg_err e = bg_registry_open(db_path, opts, &p->workers[i].reg);
        if (e != BG_OK) {
            for (int j = 0; j < i; j++)
                bg_registry_close(p->workers[j].reg);
            free(p->workers);
            free(p);
            return BG_EIO;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            bg_log(BG_LOG_ERROR, NULL, "pool: cannot start worker thread");
            abort();
        }
        p->nthreads++;
    }
    *out = p;
    return BG_OK;
}

bg_err bg_pool_submit(bg_pool *p, bg_task *t)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->queued >= p->queue_max) {
        pthread_mutex_unlock(&p->mu);
        return BG_EBUSY;
    }
    t->next = NULL;
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return BG_OK;
}

size_t bg_pool_load(bg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int bg_pool_size(const bg_pool *p)
{
    return p->nthreads;
}

void bg_pool_destroy(bg_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->nthreads; i++)
        bg_registry_close(p->workers[i].reg);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p);
}
