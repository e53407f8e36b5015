/*
 * Unit tests for node/pool.h: every task runs exactly once, with a working
 * registry connection, and completes on the worker thread; the queue bound
 * holds; destroy drains the queue before joining; bad arguments and an
 * unopenable database fail cleanly.
 *
 * Tasks that must stay running block on a gate (mutex + condition
 * variable) that the test opens, so the queue fills deterministically.
 * Every wait is a condition wait with a deadline, never a bare sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/pool.h"
#include "proto/sig.h"
#include "registry/registry.h"

#include "../testutil.h"

#define DEADLINE_S 10

typedef struct fixture {
    char dir[64];
    char db[128];
} fixture;

/* Shared by the tasks of one test. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int started; /* blocking tasks that reached the gate */
    int done;    /* done() calls */
} gate;

typedef struct test_task {
    bg_task base; /* first, so the pool's pointer is ours */
    gate *g;
    bool block;
    int runs, dones;
    bool reg_ok;
    pthread_t run_thread, done_thread;
    bg_registry *reg;
} test_task;

static pthread_t main_thread;

static int group_setup(void **state)
{
    (void)state;
    main_thread = pthread_self();
    return bg_sig_init() == BG_OK ? 0 : -1;
}

/* A fresh directory with a migrated database for the workers. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bg-pool-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/pool.db", f->dir);
    bg_registry *r = NULL;
    if (bg_registry_open(f->db, NULL, &r) != BG_OK || bg_registry_migrate(r, NULL, NULL) != BG_OK) {
        bg_registry_close(r);
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    bg_registry_close(r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = rm_tree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void gate_init(gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_fini(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static struct timespec deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += DEADLINE_S;
    return ts;
}

/* Waits until *counter reaches want; false on timeout. */
static bool gate_wait(gate *g, const int *counter, int want)
{
    struct timespec until = deadline();
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    while (*counter < want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    bool ok = *counter >= want;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* Appends an audit row through the worker's connection: proof that the
 * handle is open on the pool's database, not merely non-NULL. */
static bool use_registry(bg_registry *reg)
{
    if (reg == NULL || bg_registry_ping(reg) != BG_OK)
        return false;
    bg_audit_entry a = {.ts_ms = 1};
    snprintf(a.actor, sizeof(a.actor), "system");
    snprintf(a.action, sizeof(a.action), "pool.test");
    return bg_registry_audit_append(reg, &a) == BG_OK;
}

static void task_run(bg_task *t, bg_registry *reg)
{
    test_task *tt = (test_task *)t;
    gate *g = tt->g;
    pthread_mutex_lock(&g->mu);
    tt->runs++;
    tt->run_thread = pthread_self();
    tt->reg = reg;
    if (tt->block) {
        g->started++;
        pthread_cond_broadcast(&g->cv);
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    bool ok = use_registry(reg);
    pthread_mutex_lock(&g->mu);
    tt->reg_ok = ok;
    pthread_mutex_unlock(&g->mu);
}

static void task_done(bg_task *t)
{
    test_task *tt = (test_task *)t;
    gate *g = tt->g;
    pthread_mutex_lock(&g->mu);
    tt->dones++;
    tt->done_thread = pthread_self();
    g->done++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void task_init(test_task *t, gate *g, bool block)
{
    memset(t, 0, sizeof(*t));
    t->base.run = task_run;
    t->base.done = task_done;
    t->g = g;
    t->block = block;
}

/* Reads the task's fields under the gate lock (they were written by a
 * worker) and checks it ran once, completed once on that same worker
 * thread, and had a working registry connection. */
static void assert_ran_once(gate *g, test_task *t)
{
    pthread_mutex_lock(&g->mu);
    int runs = t->runs, dones = t->dones;
    bool reg_ok = t->reg_ok;
    bool same = runs > 0 && dones > 0 && pthread_equal(t->run_thread, t->done_thread);
    bool worker = runs > 0 && !pthread_equal(t->run_thread, main_thread);
    pthread_mutex_unlock(&g->mu);
    assert_int_equal(runs, 1);
    assert_int_equal(dones, 1);
    assert_true(reg_ok);
    assert_true(same);
    assert_true(worker);
}

static void assert_never_ran(gate *g, test_task *t)
{
    pthread_mutex_lock(&g->mu);
    int runs = t->runs, dones = t->dones;
    pthread_mutex_unlock(&g->mu);
    assert_int_equal(runs, 0);
    assert_int_equal(dones, 0);
}

static long long audit_rows(const fixture *f)
{
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 100000, &list, &n), BG_OK);
    bg_registry_audit_free(list, n);
    bg_registry_close(r);
    return (long long)n;
}

/* Threads of this process, from /proc. */
static int thread_count(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    assert_non_null(fp);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(fp);
    assert_true(n > 0);
    return n;
}

/* Polls bg_pool_load down to want, with a deadline. The load drops just
 * after done() returns, so the done counter alone is not enough. */
static bool load_reaches(bg_pool *p, size_t want)
{
    struct timespec start, now, nap = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (bg_pool_load(p) == want)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > DEADLINE_S)
            return false;
        nanosleep(&nap, NULL);
    }
}

/* ---- tests ------------------------------------------------------------- */

static void test_runs_each_task_once(void **state)
{
    fixture *f = *state;
    enum { NTHREADS = 4, NTASKS = 64 };
    int before = thread_count();
    bg_pool *p = NULL;
    assert_int_equal(bg_pool_create(NTHREADS, 1000, f->db, NULL, &p), BG_OK);
    assert_non_null(p);
    assert_int_equal(bg_pool_size(p), NTHREADS);
    assert_int_equal(thread_count(), before + NTHREADS);

    gate g;
    gate_init(&g);
    static test_task tasks[NTASKS];
    for (int i = 0; i < NTASKS; i++) {
        task_init(&tasks[i], &g, false);
        assert_int_equal(bg_pool_submit(p, &tasks[i].base), BG_OK);
    }
    assert_true(gate_wait(&g, &g.done, NTASKS));
    assert_true(load_reaches(p, 0));
    for (int i = 0; i < NTASKS; i++)
        assert_ran_once(&g, &tasks[i]);

    /* Each worker has its own connection: a thread always used the same
     * handle and two threads never shared one. */
    for (int i = 0; i < NTASKS; i++) {
        for (int j = i + 1; j < NTASKS; j++) {
            bool same_thread = pthread_equal(tasks[i].run_thread, tasks[j].run_thread);
            bool same_reg = tasks[i].reg == tasks[j].reg;
            assert_int_equal(same_thread, same_reg);
        }
    }
    bg_pool_destroy(p);
    /* Nothing ran again during shutdown. */
    for (int i = 0; i < NTASKS; i++)
        assert_ran_once(&g, &tasks[i]);
    assert_int_equal(audit_rows(f), NTASKS);
    gate_fini(&g);
}

static void test_queue_max(void **state)
{
    fixture *f = *state;
    bg_pool *p = NULL;
    assert_int_equal(bg_pool_create(1, 2, f->db, NULL, &p), BG_OK);
    gate g;
    gate_init(&g);
    test_task a, b, c, d, e;
    task_init(&a, &g, true);
    task_init(&b, &g, false);
    task_init(&c, &g, false);
    task_init(&d, &g, false);
    task_init(&e, &g, false);

    /* a occupies the only worker; the queue then takes exactly two more. */
    assert_int_equal(bg_pool_submit(p, &a.base), BG_OK);
    assert_true(gate_wait(&g, &g.started, 1));
    assert_int_equal(bg_pool_load(p), 1);
    assert_int_equal(bg_pool_submit(p, &b.base), BG_OK);
    assert_int_equal(bg_pool_submit(p, &c.base), BG_OK);
    assert_int_equal(bg_pool_load(p), 3);
    assert_int_equal(bg_pool_submit(p, &d.base), BG_EBUSY);
    assert_int_equal(bg_pool_submit(p, &d.base), BG_EBUSY);
    assert_int_equal(bg_pool_load(p), 3);

    gate_open(&g);
    assert_true(gate_wait(&g, &g.done, 3));
    assert_true(load_reaches(p, 0));
    assert_ran_once(&g, &a);
    assert_ran_once(&g, &b);
    assert_ran_once(&g, &c);
    assert_never_ran(&g, &d); /* a refused task is never run */

    /* Room again once the queue drained. */
    assert_int_equal(bg_pool_submit(p, &e.base), BG_OK);
    assert_true(gate_wait(&g, &g.done, 4));
    bg_pool_destroy(p);
    assert_ran_once(&g, &e);
    assert_never_ran(&g, &d);
    assert_int_equal(audit_rows(f), 4);
    gate_fini(&g);
}

typedef struct destroyer {
    bg_pool *p;
    pthread_t thread;
} destroyer;

static void *destroy_main(void *arg)
{
    destroyer *d = arg;
    bg_pool_destroy(d->p);
    return NULL;
}

static void test_destroy_runs_queued(void **state)
{
    fixture *f = *state;
    enum { NQUEUED = 6, NPROBES = 10000 };
    bg_pool *p = NULL;
    assert_int_equal(bg_pool_create(1, NPROBES + NQUEUED, f->db, NULL, &p), BG_OK);
    gate g;
    gate_init(&g);
    test_task blocker;
    static test_task queued[NQUEUED], probes[NPROBES];
    task_init(&blocker, &g, true);
    assert_int_equal(bg_pool_submit(p, &blocker.base), BG_OK);
    assert_true(gate_wait(&g, &g.started, 1));
    for (int i = 0; i < NQUEUED; i++) {
        task_init(&queued[i], &g, false);
        assert_int_equal(bg_pool_submit(p, &queued[i].base), BG_OK);
    }
    assert_int_equal(bg_pool_load(p), 1 + NQUEUED);

    /* Destroy from another thread while the worker is still held. Probe
     * until submissions are refused: from then on the pool is stopping
     * with the queued tasks not yet run. Probes accepted before that are
     * simply more queued tasks. */
    destroyer d = {.p = p};
    assert_int_equal(pthread_create(&d.thread, NULL, destroy_main, &d), 0);
    int accepted = 0;
    bool refused = false;
    struct timespec nap = {0, 1000000};
    while (accepted < NPROBES) {
        task_init(&probes[accepted], &g, false);
        if (bg_pool_submit(p, &probes[accepted].base) != BG_OK) {
            refused = true;
            break;
        }
        accepted++;
        nanosleep(&nap, NULL);
    }
    assert_true(refused);
    /* Still held: nothing queued has run yet. */
    for (int i = 0; i < NQUEUED; i++)
        assert_never_ran(&g, &queued[i]);

    gate_open(&g);
    assert_int_equal(pthread_join(d.thread, NULL), 0);
    /* destroy returned: everything queued before it ran exactly once. */
    assert_ran_once(&g, &blocker);
    for (int i = 0; i < NQUEUED; i++)
        assert_ran_once(&g, &queued[i]);
    for (int i = 0; i < accepted; i++)
        assert_ran_once(&g, &probes[i]);
    assert_never_ran(&g, &probes[accepted]);
    assert_int_equal(g.done, 1 + NQUEUED + accepted);
    assert_int_equal(audit_rows(f), 1 + NQUEUED + accepted);
    gate_fini(&g);
}

static void test_destroy_idle_and_null(void **state)
{
    fixture *f = *state;
    bg_pool *p = NULL;
    assert_int_equal(bg_pool_create(3, 1, f->db, NULL, &p), BG_OK);
    assert_int_equal(bg_pool_load(p), 0);
    bg_pool_destroy(p); /* workers waiting on an empty queue wake and exit */
    bg_pool_destroy(NULL);
}

static void test_invalid_args(void **state)
{
    fixture *f = *state;
    bg_pool *const sentinel = (bg_pool *)&sentinel;
    struct {
        int nthreads;
        size_t queue_max;
        const char *path;
    } cases[] = {
        {0, 10, f->db}, {-1, 10, f->db}, {2, 0, f->db}, {0, 0, f->db}, {2, 10, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bg_pool *p = sentinel;
        int before = thread_count();
        bg_err rc = bg_pool_create(cases[i].nthreads, cases[i].queue_max, cases[i].path, NULL, &p);
        if (rc != BG_EINVAL) {
            print_error("case %zu: got %d, want BG_EINVAL\n", i, rc);
            if (rc == BG_OK)
                bg_pool_destroy(p);
            fail();
        }
        assert_ptr_equal(p, sentinel); /* out untouched on failure */
        assert_int_equal(thread_count(), before);
    }
}

static void test_bad_db_path(void **state)
{
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/no/such/dir/pool.db", f->dir);
    bg_pool *const sentinel = (bg_pool *)&sentinel;
    bg_pool *p = sentinel;
    int before = thread_count();
    assert_int_equal(bg_pool_create(3, 10, path, NULL, &p), BG_EIO);
    assert_ptr_equal(p, sentinel);
    assert_int_equal(thread_count(), before); /* no thread left running */

    /* A file that is not a database fails the same way. */
    char junk[160];
    snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
    FILE *fp = fopen(junk, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("garbage garbage ", fp);
    fclose(fp);
    assert_int_equal(bg_pool_create(2, 10, junk, NULL, &p), BG_EIO);
    assert_ptr_equal(p, sentinel);
    assert_int_equal(thread_count(), before);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_runs_each_task_once),   T(test_queue_max),    T(test_destroy_runs_queued),
        T(test_destroy_idle_and_null), T(test_invalid_args), T(test_bad_db_path),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
