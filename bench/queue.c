/*
 * bench/queue.c — bg_bench_queue: throughput of the media job queue in the
 * registry (registry/media.c), without the server and without any work.
 *
 *   bg_bench_queue [--jobs J] [--assemblies K] [--threads T] [--trivial]
 *                  [--max-seconds S] [--dir DIR]
 *
 * Opens a fresh registry database (bg_registry_open + bg_registry_migrate,
 * synchronous NORMAL and WAL like the server) in a new temporary folder
 * (under DIR, default $TMPDIR or /tmp; removed at the end), then:
 *
 *   default    inserts K assemblies, enqueues J jobs round-robin over them,
 *              one transaction per job (state queued, visible_at 0,
 *              max_receive 3), then T threads, each with its own
 *              connection, loop: BEGIN IMMEDIATE; bg_registry_job_claim;
 *              bg_registry_job_set(done); COMMIT — until no job is due.
 *   --trivial  the baseline: J transactions of BEGIN IMMEDIATE; one
 *              bg_registry_audit_append; COMMIT.
 *
 * Prints one JSON object on stdout. Exits 1 on any registry error or when
 * the final job counts are not J done (or, with one thread, when a claim
 * was out of FIFO order). --max-seconds (default 60) stops the claim phase
 * early; the output then says "capped": true, counts what was done and
 * leaves combined_per_s 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "proto/err.h"
#include "proto/log.h"
#include "registry/registry.h"

#define ORG "00000000-0000-4000-8000-00000000b00c"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(bg_registry *r, const char *what, bg_err e)
{
    fprintf(stderr, "bg_bench_queue: %s: %s (%s)\n", what, bg_err_name(e),
            r ? bg_registry_errmsg(r) : "-");
    exit(1);
}

static char db_path[4200];

static bg_registry *open_db(void)
{
    bg_registry *r = NULL;
    bg_registry_opts o = {.busy_timeout_ms = 5000, .synchronous_full = false};
    bg_err e = bg_registry_open(db_path, &o, &r);
    if (e != BG_OK)
        die(r, "open", e);
    return r;
}

static void assembly_id(size_t k, char out[BG_ASSEMBLY_ID_MAX])
{
    snprintf(out, BG_ASSEMBLY_ID_MAX, "%064zx", k + 1);
}

/* ---- claimers ---- */

typedef struct claimer {
    pthread_t th;
    long long deadline_ms;
    bool fifo_check;
    size_t claimed;
    size_t busy;      /* BEGIN or COMMIT gave up after the busy timeout */
    bool out_of_order;
    bool capped;
} claimer;

static void *claim_loop(void *arg)
{
    claimer *c = arg;
    bg_registry *r = open_db();
    int64_t last = 0;
    for (;;) {
        long long now = bg_now_ms();
        if (now >= c->deadline_ms) {
            c->capped = true;
            break;
        }
        bg_err e = bg_registry_begin(r);
        if (e == BG_EBUSY) {
            c->busy++;
            continue;
        }
        if (e != BG_OK)
            die(r, "begin", e);
        bg_job_row j;
        e = bg_registry_job_claim(r, now, 60000, 1000000, &j);
        if (e == BG_ENOTFOUND) {
            bg_registry_rollback(r);
            break;
        }
        if (e != BG_OK)
            die(r, "claim", e);
        e = bg_registry_job_set(r, j.id, "done", now, "", now);
        if (e != BG_OK)
            die(r, "job_set", e);
        e = bg_registry_commit(r);
        if (e == BG_EBUSY) {
            bg_registry_rollback(r);
            c->busy++;
            continue;
        }
        if (e != BG_OK)
            die(r, "commit", e);
        if (c->fifo_check && j.id <= last)
            c->out_of_order = true;
        last = j.id;
        c->claimed++;
    }
    bg_registry_close(r);
    return NULL;
}

/* Removes the database, its WAL and shared-memory files, and the folder. */
static void remove_db(const char *dir)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[4300];
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", db_path, suffix[i]);
        unlink(p);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "bg_bench_queue: cannot remove %s: %s\n", dir, strerror(errno));
}

static void usage(void)
{
    fprintf(stderr, "usage: bg_bench_queue [--jobs J] [--assemblies K] [--threads T] [--trivial]"
                    " [--max-seconds S] [--dir DIR]\n");
    exit(2);
}

static long arg_num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long jobs = 20000, assemblies = 1, threads = 1, max_s = 60;
    bool trivial = false;
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trivial") == 0)
            trivial = true;
        else if (i + 1 >= argc)
            usage();
        else if (strcmp(argv[i], "--jobs") == 0)
            jobs = arg_num(argv[++i], 1, 10000000);
        else if (strcmp(argv[i], "--assemblies") == 0)
            assemblies = arg_num(argv[++i], 1, 1000000);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = arg_num(argv[++i], 1, 64);
        else if (strcmp(argv[i], "--max-seconds") == 0)
            max_s = arg_num(argv[++i], 1, 86400);
        else if (strcmp(argv[i], "--dir") == 0)
            base = argv[++i];
        else
            usage();
    }

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/bg-bench-queue.XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "bg_bench_queue: mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(db_path, sizeof(db_path), "%s/branchgate.db", dir);
    bg_registry *r = open_db();
    bg_err e = bg_registry_migrate(r, NULL, NULL);
    if (e != BG_OK)
        die(r, "migrate", e);
    long long t_ms = bg_now_ms();

    if (trivial) {
        bg_audit_entry a;
        memset(&a, 0, sizeof(a));
        snprintf(a.actor, sizeof(a.actor), "system");
        snprintf(a.action, sizeof(a.action), "bench.noop");
        double c0 = cpu_s(), t0 = mono_s();
        for (long i = 0; i < jobs; i++) {
            a.ts_ms = t_ms;
            snprintf(a.target, sizeof(a.target), "%ld", i);
            if ((e = bg_registry_begin(r)) != BG_OK)
                die(r, "begin", e);
            if ((e = bg_registry_audit_append(r, &a)) != BG_OK)
                die(r, "audit_append", e);
            if ((e = bg_registry_commit(r)) != BG_OK)
                die(r, "commit", e);
        }
        double secs = mono_s() - t0, cpu = cpu_s() - c0;
        printf("{\"mode\":\"trivial\",\"transactions\":%ld,\"seconds\":%.4f,\"per_s\":%.0f,"
               "\"cpu_us_per_tx\":%.2f}\n",
               jobs, secs, (double)jobs / secs, cpu * 1e6 / (double)jobs);
        bg_registry_close(r);
        remove_db(dir);
        return 0;
    }

    /* Set-up, not measured: the assemblies the jobs belong to. */
    if ((e = bg_registry_begin(r)) != BG_OK)
        die(r, "begin", e);
    for (long k = 0; k < assemblies; k++) {
        bg_assembly_row a;
        memset(&a, 0, sizeof(a));
        assembly_id((size_t)k, a.id);
        snprintf(a.organization_id, sizeof(a.organization_id), "%s", ORG);
        snprintf(a.user_id, sizeof(a.user_id), "anonymous");
        snprintf(a.template_id, sizeof(a.template_id), "bench");
        snprintf(a.state, sizeof(a.state), "executing");
        a.created_ms = a.updated_ms = t_ms;
        if ((e = bg_registry_assembly_insert(r, &a)) != BG_OK)
            die(r, "assembly_insert", e);
    }
    if ((e = bg_registry_commit(r)) != BG_OK)
        die(r, "commit", e);

    /* Enqueue: one transaction per job, as a finished upload does. */
    double c0 = cpu_s(), t0 = mono_s();
    for (long i = 0; i < jobs; i++) {
        bg_job_row j;
        memset(&j, 0, sizeof(j));
        assembly_id((size_t)(i % assemblies), j.assembly_id);
        snprintf(j.organization_id, sizeof(j.organization_id), "%s", ORG);
        j.run = (int)(i + 1);
        snprintf(j.state, sizeof(j.state), "queued");
        j.max_receive = 3;
        j.visible_at = 0;
        j.created_ms = j.updated_ms = t_ms;
        if ((e = bg_registry_begin(r)) != BG_OK)
            die(r, "begin", e);
        if ((e = bg_registry_job_insert(r, &j)) != BG_OK)
            die(r, "job_insert", e);
        if ((e = bg_registry_commit(r)) != BG_OK)
            die(r, "commit", e);
    }
    double enq_s = mono_s() - t0, enq_cpu = cpu_s() - c0;

    /* Claim + complete. */
    claimer *cl = calloc((size_t)threads, sizeof(*cl));
    if (cl == NULL)
        die(NULL, "calloc", BG_ENOMEM);
    long long deadline = bg_now_ms() + max_s * 1000;
    c0 = cpu_s();
    t0 = mono_s();
    for (long t = 0; t < threads; t++) {
        cl[t].deadline_ms = deadline;
        cl[t].fifo_check = threads == 1;
        if (pthread_create(&cl[t].th, NULL, claim_loop, &cl[t]) != 0)
            die(NULL, "pthread_create", BG_EINTERNAL);
    }
    size_t claimed = 0, busy = 0;
    bool capped = false, out_of_order = false;
    for (long t = 0; t < threads; t++) {
        pthread_join(cl[t].th, NULL);
        claimed += cl[t].claimed;
        busy += cl[t].busy;
        capped |= cl[t].capped;
        out_of_order |= cl[t].out_of_order;
    }
    double claim_s = mono_s() - t0, claim_cpu = cpu_s() - c0;

    int64_t counts[6];
    if ((e = bg_registry_job_counts(r, counts)) != BG_OK)
        die(r, "job_counts", e);
    bg_registry_close(r);
    remove_db(dir);

    printf("{\"mode\":\"jobs\",\"jobs\":%ld,\"assemblies\":%ld,\"threads\":%ld,"
           "\"enqueue_seconds\":%.4f,\"enqueue_per_s\":%.0f,\"enqueue_cpu_us\":%.2f,"
           "\"claimed\":%zu,\"claim_seconds\":%.4f,\"claim_per_s\":%.0f,\"claim_cpu_us\":%.2f,"
           "\"combined_per_s\":%.0f,\"busy\":%zu,\"capped\":%s,\"done\":%" PRId64 "}\n",
           jobs, assemblies, threads, enq_s, (double)jobs / enq_s,
           enq_cpu * 1e6 / (double)jobs, claimed, claim_s,
           claimed ? (double)claimed / claim_s : 0.0,
           claimed ? claim_cpu * 1e6 / (double)claimed : 0.0,
           capped ? 0.0 : (double)jobs / (enq_s + claim_s),
           busy, capped ? "true" : "false", counts[2]);
    fflush(stdout);
    if (out_of_order) {
        fprintf(stderr, "bg_bench_queue: a claim was out of FIFO order\n");
        return 1;
    }
    if (!capped && (counts[2] != jobs || claimed != (size_t)jobs)) {
        fprintf(stderr, "bg_bench_queue: %zu claimed, %" PRId64 " done, expected %ld\n", claimed,
                counts[2], jobs);
        return 1;
    }
    return 0;
}
