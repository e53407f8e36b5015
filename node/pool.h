/*
 * node/pool.h — the worker pool: every blocking call (SQLite now; later
 * argon2id hashing and other slow work) runs here, never on an event loop.
 *
 * Each worker thread owns one registry connection, opened when the pool is
 * created. A submitted task runs exactly once: run() and then done(), both
 * on the worker thread. done() is where the submitter hands the result back
 * (the gateway posts a message to the loop thread that asked). If
 * bg_pool_submit fails, neither callback ever runs and the caller keeps
 * ownership of the task.
 */
#ifndef BG_NODE_POOL_H
#define BG_NODE_POOL_H

#include <stddef.h>

#include "proto/err.h"
#include "registry/registry.h"

typedef struct bg_task bg_task;
struct bg_task {
    bg_task *next; /* owned by the pool while queued */
    void (*run)(bg_task *t, bg_registry *reg);
    void (*done)(bg_task *t);
};

typedef struct bg_pool bg_pool;

/* Starts nthreads workers, each with its own connection to the database at
 * db_path. queue_max bounds the tasks waiting. Errors: BG_EIO (a connection
 * could not be opened; no thread is left running), BG_EINVAL (nthreads or
 * queue_max below 1, db_path NULL). Main thread. */
bg_err bg_pool_create(int nthreads, size_t queue_max, const char *db_path,
                      const bg_registry_opts *opts, bg_pool **out);

/* Queues a task. Any thread. Errors: BG_EBUSY (queue full or the pool is
 * stopping). */
bg_err bg_pool_submit(bg_pool *p, bg_task *t);

/* Tasks queued or running. Any thread. */
size_t bg_pool_load(bg_pool *p);

/* Number of worker threads. */
int bg_pool_size(const bg_pool *p);

/* Stops accepting tasks, runs every task already queued, joins the
 * workers and closes their connections. Accepts NULL. Main thread. */
void bg_pool_destroy(bg_pool *p);

#endif
