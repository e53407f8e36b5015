/* node/jobs.c — the media workers: claim a job under a lease, run the
 * template's steps in order (skipping steps whose results a previous
 * attempt stored), extend the lease from progress callbacks, and settle the
 * job: done, failed with backoff, or dead. A worker killed mid-job leaves a
 * lease that runs out; the job is then claimed again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/media/media.h"
#include "pipeline_internal.h"
#include "proto/assembly.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/template.h"

typedef struct worker_arg {
    bg_node *n;
    size_t slot;
} worker_arg;

/* One claimed job being run. */
typedef struct run_ctx {
    bg_node *n;
    bg_registry *reg;
    size_t slot;
    bg_job_row job;
    bg_assembly_row a;
    const char *step;
    const char *const *group; /* steps sharing one decode (progress goes to each) */
    size_t ngroup;
    long long last_tick_ms;
    bool lost;       /* lease lost or job canceled: stop, settle nothing */
    /* failure */
    char code[32];
    char message[256];
    char failed_step[65];
    bool retryable;
} run_ctx;

typedef enum { RUN_OK, RUN_FAILED, RUN_LOST } run_result;

/* A log line with the job's assembly_id, org and job id (DESIGN section
 * 9); fields (stolen, may be NULL) adds more. */
static void job_log(bg_log_level level, const run_ctx *x, const char *msg, json_t *fields)
{
    if (fields == NULL)
        fields = json_object();
    json_object_set_new(fields, "assembly_id", json_string(x->job.assembly_id));
    json_object_set_new(fields, "org", json_string(x->job.organization_id));
    json_object_set_new(fields, "job_id", json_integer(x->job.id));
    bg_log_fields(level, msg, fields);
}

/* ---- wake-ups and cancel flags ---- */

void bg_pl_jobs_wake(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->mu);
    p->wake_seq++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void bg_pl_cancel_running(bg_node *n, const char *assembly_id)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->running[i].job_id != 0 && strcmp(p->running[i].assembly_id, assembly_id) == 0)
            __atomic_store_n(&p->running[i].cancel, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
}

static void set_running(run_ctx *x, bool on)
{
    struct pipeline_state *p = x->n->pipe;
    pthread_mutex_lock(&p->mu);
    bg_running_job *r = &p->running[x->slot];
    r->job_id = on ? x->job.id : 0;
    bg_strlcpy(r->assembly_id, on ? x->a.id : "", sizeof(r->assembly_id));
    __atomic_store_n(&r->cancel, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
}

static bool canceled(run_ctx *x)
{
    return __atomic_load_n(&x->n->pipe->running[x->slot].cancel, __ATOMIC_ACQUIRE) != 0;
}

/* ---- lease and progress ---- */

static void housekeeping(bg_node *n, bg_registry *reg);

/* Extends the lease and, with step set, stores a step:progress event; at
 * most once a second. False when the job is no longer ours. */
static bool tick(run_ctx *x, double fraction, bool force)
{
    long long now = bg_now_ms();
    if (x->lost || canceled(x)) {
        x->lost = true;
        return false;
    }
    if (!force && now - x->last_tick_ms < 1000)
        return true;
    x->last_tick_ms = now;
    bg_node *n = x->n;
    if (bg_pl_tx_begin(n, x->reg) != BG_OK)
        return true; /* busy database: try again at the next callback */
    bg_err e = bg_registry_job_extend(x->reg, x->job.id, x->job.receive_count,
                                      now + n->cfg.jobs_lease_s * 1000);
    size_t nsteps = x->ngroup ? x->ngroup : x->step != NULL;
    for (size_t i = 0; e == BG_OK && fraction >= 0 && i < nsteps; i++)
        e = bg_pl_event(n, x->reg, x->a.id, x->a.organization_id, "step:progress",
                        json_pack("{s:s,s:i}", "step", x->ngroup ? x->group[i] : x->step,
                                  "percent", (int)(fraction * 100.0 + 0.5)));
    if (e == BG_ENOTFOUND) {
        bg_pl_tx_rollback(n, x->reg);
        x->lost = true;
        return false;
    }
    if (e != BG_OK)
        bg_pl_tx_rollback(n, x->reg);
    else
        bg_pl_tx_commit(n, x->reg);
    housekeeping(n, x->reg);
    return true;
}

static bool on_progress(void *ud, double fraction)
{
    return tick(ud, fraction, false);
}

/* ---- steps ---- */

/* The inputs of a step: the uploads for ":original", else the files of the
 * steps it uses. */
typedef struct input_set {
    bg_robot_input *in;
    char (*paths)[4200];
    size_t n;
} input_set;

static void add_input(input_set *s, const bg_node *n, const char *rel, const char *name,
                      const char *id, const char *mime, int64_t size)
{
    s->in = bg_xrealloc(s->in, (s->n + 1) * sizeof(*s->in));
    s->paths = bg_xrealloc(s->paths, (s->n + 1) * sizeof(*s->paths));
    if (!bg_pl_abspath(n, rel, s->paths[s->n], sizeof(s->paths[0])))
        s->paths[s->n][0] = '\0';
    s->in[s->n] = (bg_robot_input){s->paths[s->n], name, id, mime, size};
    s->n++;
}

static void gather_use(const char *use, const bg_node *n, const bg_upload_row *up, size_t nup,
                       const bg_result_row *res, size_t nres, input_set *s)
{
    if (strcmp(use, BG_TEMPLATE_ORIGINAL) == 0) {
        for (size_t i = 0; i < nup; i++)
            if (up[i].complete)
                add_input(s, n, up[i].path, up[i].filename, up[i].id, up[i].mime, up[i].length);
        return;
    }
    for (size_t i = 0; i < nres; i++)
        if (strcmp(res[i].step, use) == 0 && res[i].path[0])
            add_input(s, n, res[i].path, res[i].name, res[i].id, res[i].mime, res[i].size);
}

static void gather(const json_t *step, const bg_node *n, const bg_upload_row *up, size_t nup,
                   const bg_result_row *res, size_t nres, input_set *s)
{
    const json_t *use = json_object_get(step, "use");
    if (json_is_string(use)) {
        gather_use(json_string_value(use), n, up, nup, res, nres, s);
        return;
    }
    size_t i;
    const json_t *u;
    json_array_foreach(use, i, u) if (json_is_string(u))
        gather_use(json_string_value(u), n, up, nup, res, nres, s);
}

static bool step_done(const char *step, const bg_result_row *res, size_t nres)
{
    for (size_t i = 0; i < nres; i++)
        if (strcmp(res[i].step, step) == 0)
            return true;
    return false;
}

static void set_failure(run_ctx *x, const char *code, const char *msg, bool retryable)
{
    bg_strlcpy(x->code, code, sizeof(x->code));
    bg_strlcpy(x->message, msg, sizeof(x->message));
    bg_strlcpy(x->failed_step, x->step ? x->step : "", sizeof(x->failed_step));
    x->retryable = retryable;
}

/* Stores a step's results with its step:done event, in one transaction. */
static bg_err store_step(run_ctx *x, const bg_robot_outputs *outs)
{
    bg_node *n = x->n;
    bg_err e = bg_pl_tx_begin(n, x->reg);
    if (e != BG_OK)
        return e;
    for (size_t i = 0; e == BG_OK && i < outs->n; i++) {
        const bg_robot_output *o = &outs->v[i];
        bg_result_row r;
        memset(&r, 0, sizeof(r));
        bg_strlcpy(r.assembly_id, x->a.id, sizeof(r.assembly_id));
        bg_strlcpy(r.step, x->step, sizeof(r.step));
        r.idx = (int)i;
        bg_upload_id_new(r.id);
        bg_strlcpy(r.name, o->name, sizeof(r.name));
        bg_strlcpy(r.path, o->path, sizeof(r.path));
        r.size = o->size;
        bg_strlcpy(r.mime, o->mime, sizeof(r.mime));
        bg_strlcpy(r.original_id, o->original_id, sizeof(r.original_id));
        r.meta_json = o->meta ? json_dumps(o->meta, JSON_COMPACT) : NULL;
        e = bg_registry_result_insert(x->reg, &r);
        free(r.meta_json);
    }
    if (e == BG_OK)
        e = bg_pl_event(n, x->reg, x->a.id, x->a.organization_id, "step:done",
                        json_pack("{s:s,s:i}", "step", x->step, "results", (int)outs->n));
    if (e == BG_OK)
        return bg_pl_tx_commit(n, x->reg);
    bg_pl_tx_rollback(n, x->reg);
    return e;
}

static void step_event(run_ctx *x, const char *name, json_t *data)
{
    if (bg_pl_tx_begin(x->n, x->reg) != BG_OK) {
        json_decref(data);
        return;
    }
    if (bg_pl_event(x->n, x->reg, x->a.id, x->a.organization_id, name, data) == BG_OK)
        bg_pl_tx_commit(x->n, x->reg);
    else
        bg_pl_tx_rollback(x->n, x->reg);
}

static void step_dir(const run_ctx *x, const char *step, char *dir, size_t cap)
{
    snprintf(dir, cap, "outputs/%s/%s/%s", x->n->cfg.branch_name, x->a.id, step);
}

static void step_start(run_ctx *x, const char *name, const json_t *step, size_t ninputs)
{
    step_event(x, "step:start",
               json_pack("{s:s,s:s,s:i}", "step", name, "robot",
                         json_string_value(json_object_get(step, "robot")), "inputs", (int)ninputs));
}

/* Runs one step over its inputs (announced by step:start unless a group
 * already did). */
static run_result run_step(run_ctx *x, const json_t *step, input_set *s, bool announce)
{
    bg_node *n = x->n;
    char dir[512];
    step_dir(x, x->step, dir, sizeof(dir));
    if (announce)
        step_start(x, x->step, step, s->n);
    bg_robot_outputs outs;
    memset(&outs, 0, sizeof(outs));
    bg_media_progress prog = {on_progress, x};
    run_result rr = RUN_OK;
    for (size_t i = 0; i < s->n && rr == RUN_OK; i++) {
        size_t first = outs.n;
        bg_err e = bg_pl_robot_run(n, step, &s->in[i], dir, &prog, &outs);
        for (size_t k = first; k < outs.n; k++)
            bg_strlcpy(outs.v[k].original_id, s->in[i].id, sizeof(outs.v[k].original_id));
        if (e == BG_OK && !tick(x, -1, true))
            e = BG_EBUSY;
        if (e == BG_EBUSY || x->lost) {
            rr = RUN_LOST;
        } else if (e != BG_OK) {
            bool retry = e == BG_EIO || (e == BG_EMEDIA && strcmp(outs.code, "PROCESSING_ERROR") == 0);
            set_failure(x, outs.code[0] ? outs.code : "PROCESSING_ERROR", outs.message, retry);
            rr = RUN_FAILED;
        }
    }
    if (rr == RUN_OK && store_step(x, &outs) != BG_OK) {
        set_failure(x, "STORAGE_ERROR", "cannot store the step's results", true);
        rr = RUN_FAILED;
    }
    bg_pl_robot_outputs_clear(&outs);
    return rr;
}

/* Runs the steps names[0..n) that share their input with one decode per
 * input (bg_pl_robot_run_audio_group), storing each step's results. When
 * the shared run fails for any input, what it wrote is gone and the steps
 * run one by one, which reports the failing step exactly. */
static run_result run_group(run_ctx *x, const json_t *const *steps, const char *const *names,
                            size_t n, input_set *s)
{
    char dirs[BG_ROBOT_GROUP_MAX][512];
    const char *dirp[BG_ROBOT_GROUP_MAX];
    bg_robot_outputs outs[BG_ROBOT_GROUP_MAX];
    memset(outs, 0, sizeof(outs));
    for (size_t k = 0; k < n; k++) {
        step_dir(x, names[k], dirs[k], sizeof(dirs[k]));
        dirp[k] = dirs[k];
        step_start(x, names[k], steps[k], s->n);
    }
    bg_media_progress prog = {on_progress, x};
    x->group = names;
    x->ngroup = n;
    x->step = names[0];
    bg_err e = BG_OK;
    for (size_t i = 0; e == BG_OK && i < s->n; i++) {
        size_t first[BG_ROBOT_GROUP_MAX];
        for (size_t k = 0; k < n; k++)
            first[k] = outs[k].n;
        e = bg_pl_robot_run_audio_group(x->n, steps, dirp, n, &s->in[i], &prog, outs);
        for (size_t k = 0; e == BG_OK && k < n; k++)
            for (size_t j = first[k]; j < outs[k].n; j++)
                bg_strlcpy(outs[k].v[j].original_id, s->in[i].id, sizeof(outs[k].v[j].original_id));
        if (e == BG_OK && !tick(x, -1, true))
            e = BG_EBUSY;
    }
    x->group = NULL;
    x->ngroup = 0;
    run_result rr = RUN_OK;
    if (e == BG_EBUSY || x->lost) {
        rr = RUN_LOST;
    } else if (e != BG_OK) {
        job_log(BG_LOG_INFO, x, "shared decode not possible; running the steps one by one",
                json_pack("{s:s}", "step", names[0]));
        for (size_t k = 0; k < n; k++) /* what earlier inputs of the group wrote */
            bg_pl_robot_outputs_remove(x->n, &outs[k]);
        for (size_t k = 0; k < n && rr == RUN_OK; k++) {
            x->step = names[k];
            rr = run_step(x, steps[k], s, false);
        }
    } else {
        for (size_t k = 0; k < n && rr == RUN_OK; k++) {
            x->step = names[k];
            if (store_step(x, &outs[k]) != BG_OK) {
                set_failure(x, "STORAGE_ERROR", "cannot store the step's results", true);
                rr = RUN_FAILED;
            }
        }
    }
    for (size_t k = 0; k < n; k++)
        bg_pl_robot_outputs_clear(&outs[k]);
    return rr;
}

/* The steps after order[k] that can share its decode: groupable, the same
 * `use`, not done and not taken by an earlier group. Fills steps/names
 * (order[k] first) and marks them taken. */
static size_t group_of(const json_t *tpl_steps, const char *const *order, size_t nsteps, size_t k,
                       const bg_result_row *res, size_t nres, bool *taken, const json_t **steps,
                       const char **names)
{
    const json_t *first = json_object_get(tpl_steps, order[k]);
    size_t n = 0;
    steps[n] = first;
    names[n++] = order[k];
    if (!bg_pl_robot_audio_groupable(first))
        return n;
    for (size_t j = k + 1; j < nsteps && n < BG_ROBOT_GROUP_MAX; j++) {
        const json_t *st = json_object_get(tpl_steps, order[j]);
        if (taken[j] || step_done(order[j], res, nres) || !bg_pl_robot_audio_groupable(st) ||
            !json_equal(json_object_get(st, "use"), json_object_get(first, "use")))
            continue;
        taken[j] = true;
        steps[n] = st;
        names[n++] = order[j];
    }
    return n;
}

static run_result run_steps(run_ctx *x)
{
    json_t *tpl = json_loads(x->a.template_json, 0, NULL);
    const char *order[BG_TEMPLATE_MAX_STEPS];
    size_t nsteps = 0;
    char err[256];
    if (tpl == NULL || bg_template_check(tpl, order, &nsteps, err, sizeof(err)) != BG_OK) {
        set_failure(x, "INVALID_TEMPLATE", "the assembly's template is invalid", false);
        json_decref(tpl);
        return RUN_FAILED;
    }
    bg_upload_row *up = NULL;
    size_t nup = 0;
    bg_result_row *res = NULL;
    size_t nres = 0;
    run_result rr = RUN_OK;
    bool taken[BG_TEMPLATE_MAX_STEPS] = {false};
    if (bg_registry_upload_list(x->reg, x->a.id, &up, &nup) != BG_OK) {
        set_failure(x, "STORAGE_ERROR", "cannot read the uploads", true);
        rr = RUN_FAILED;
    }
    for (size_t k = 0; k < nsteps && rr == RUN_OK; k++) {
        bg_registry_result_free(res, nres);
        res = NULL;
        nres = 0;
        if (bg_registry_result_list(x->reg, x->a.id, &res, &nres) != BG_OK) {
            set_failure(x, "STORAGE_ERROR", "cannot read the results", true);
            rr = RUN_FAILED;
            break;
        }
        if (taken[k] || step_done(order[k], res, nres))
            continue; /* run with an earlier step, or stored by an earlier attempt */
        const json_t *steps[BG_ROBOT_GROUP_MAX];
        const char *names[BG_ROBOT_GROUP_MAX];
        size_t ng = group_of(json_object_get(tpl, "steps"), order, nsteps, k, res, nres, taken,
                             steps, names);
        input_set s = {NULL, NULL, 0};
        gather(steps[0], x->n, up, nup, res, nres, &s);
        x->step = order[k];
        rr = ng > 1 ? run_group(x, steps, names, ng, &s) : run_step(x, steps[0], &s, true);
        free(s.in);
        free(s.paths);
    }
    x->step = NULL;
    bg_registry_result_free(res, nres);
    free(up);
    json_decref(tpl);
    return rr;
}

/* ---- claim and settle ---- */

/* Settles a finished run in one transaction. */
static void settle(run_ctx *x, run_result rr)
{
    bg_node *n = x->n;
    long long now = bg_now_ms();
    if (bg_pl_tx_begin(n, x->reg) != BG_OK)
        return; /* the lease runs out and the job is claimed again */
    bg_job_row j;
    bg_assembly_row a;
    bg_err e = bg_registry_job_get(x->reg, x->job.id, &j);
    if (e != BG_OK || strcmp(j.state, "running") != 0 || j.receive_count != x->job.receive_count ||
        bg_registry_assembly_get(x->reg, x->a.id, NULL, &a) != BG_OK) {
        bg_pl_tx_rollback(n, x->reg); /* canceled or taken over: not ours */
        return;
    }
    if (rr == RUN_OK) {
        bg_strlcpy(a.state, "completed", sizeof(a.state));
        a.execution_end_ms = now;
        a.updated_ms = now;
        e = bg_registry_job_set(x->reg, j.id, "done", now, "", now);
        if (e == BG_OK)
            e = bg_registry_assembly_update(x->reg, &a);
        if (e == BG_OK)
            e = bg_pl_event(n, x->reg, a.id, a.organization_id, "assembly:completed", NULL);
        if (e == BG_OK)
            e = bg_pl_notify(n, x->reg, &a);
    } else if (!x->retryable || j.receive_count >= j.max_receive) {
        e = bg_registry_job_set(x->reg, j.id, "dead", now, x->message, now);
        if (e == BG_OK)
            e = bg_pl_fail(n, x->reg, &a, x->code, x->failed_step, x->retryable, x->message);
    } else {
        long long at = now + bg_job_backoff_ms(j.receive_count, n->cfg.jobs_backoff_unit_ms);
        e = bg_registry_job_set(x->reg, j.id, "failed", at, x->message, now);
    }
    if (e == BG_OK)
        e = bg_pl_tx_commit(n, x->reg);
    else
        bg_pl_tx_rollback(n, x->reg);
    if (e != BG_OK)
        job_log(BG_LOG_ERROR, x, "cannot settle the job",
                json_pack("{s:s}", "error", bg_registry_errmsg(x->reg)));
    else if (rr == RUN_FAILED)
        job_log(BG_LOG_WARN, x, "job attempt failed",
                json_pack("{s:i,s:s,s:s,s:s}", "attempt", j.receive_count, "step", x->failed_step,
                          "code", x->code, "error", x->message));
    bg_registry_assembly_clear(&a);
}

/* Another worker still runs a job of the same assembly. */
static bool busy_elsewhere(run_ctx *x)
{
    struct pipeline_state *p = x->n->pipe;
    bool busy = false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nworkers; i++)
        if (i != x->slot && p->running[i].job_id != 0 &&
            strcmp(p->running[i].assembly_id, x->a.id) == 0)
            busy = true;
    pthread_mutex_unlock(&p->mu);
    return busy;
}

/* Claims a job inside a transaction. Returns false when none is due; a
 * claimed job that cannot run (canceled, superseded, out of claims) is
 * settled here and *runnable stays false. */
static bool claim(run_ctx *x, bool *runnable)
{
    bg_node *n = x->n;
    long long now = bg_now_ms();
    *runnable = false;
    if (bg_pl_tx_begin(n, x->reg) != BG_OK)
        return false;
    bg_err e = bg_registry_job_claim(x->reg, now, n->cfg.jobs_lease_s * 1000,
                                     (int)n->cfg.jobs_org_concurrency, &x->job);
    if (e == BG_OK)
        e = bg_registry_assembly_get(x->reg, x->job.assembly_id, NULL, &x->a);
    if (e != BG_OK) {
        bg_pl_tx_rollback(n, x->reg);
        return false;
    }
    if (busy_elsewhere(x)) {
        /* A canceled run of this assembly is still winding down in another
         * worker (robots notice a cancel at their next progress call): its
         * cleanup must not meet this run's files. Try again shortly. */
        e = bg_registry_job_release(x->reg, x->job.id, x->job.receive_count, now + 250);
    } else if (strcmp(x->a.state, "executing") != 0 || x->a.run != x->job.run) {
        e = bg_registry_job_set(x->reg, x->job.id, "canceled", now, "superseded", now);
    } else if (x->job.receive_count > x->job.max_receive) {
        /* Its worker died holding the lease on every claim. */
        char msg[160];
        snprintf(msg, sizeof(msg), "the job's lease expired %d times", x->job.max_receive);
        e = bg_registry_job_set(x->reg, x->job.id, "dead", now, msg, now);
        if (e == BG_OK)
            e = bg_pl_fail(n, x->reg, &x->a, "PROCESSING_ERROR", NULL, true, msg);
    } else {
        x->a.attempts = x->job.receive_count;
        if (x->a.execution_start_ms == 0)
            x->a.execution_start_ms = now;
        x->a.updated_ms = now;
        e = bg_registry_assembly_update(x->reg, &x->a);
        *runnable = e == BG_OK;
    }
    if (e == BG_OK)
        e = bg_pl_tx_commit(n, x->reg);
    else
        bg_pl_tx_rollback(n, x->reg);
    if (e != BG_OK) {
        *runnable = false;
        bg_registry_assembly_clear(&x->a);
        return false;
    }
    if (!*runnable)
        bg_registry_assembly_clear(&x->a);
    return true;
}

static bool stopping(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->mu);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

/* Shutdown interrupted the job: hand it back at once (results stored so
 * far are kept), instead of leaving it to its lease. */
static void release(run_ctx *x)
{
    if (bg_registry_job_release(x->reg, x->job.id, x->job.receive_count, bg_now_ms()) == BG_OK)
        job_log(BG_LOG_INFO, x, "job handed back for the next start", NULL);
}

static bool run_one(bg_node *n, bg_registry *reg, size_t slot)
{
    run_ctx x;
    memset(&x, 0, sizeof(x));
    x.n = n;
    x.reg = reg;
    x.slot = slot;
    bool runnable;
    if (!claim(&x, &runnable))
        return false;
    if (!runnable)
        return true;
    set_running(&x, true);
    x.last_tick_ms = bg_now_ms();
    job_log(BG_LOG_INFO, &x, "job claimed",
            json_pack("{s:i,s:i}", "attempt", x.job.receive_count, "max_receive", x.job.max_receive));
    run_result rr = run_steps(&x);
    if (rr != RUN_LOST)
        settle(&x, rr);
    else if (stopping(n))
        release(&x);
    set_running(&x, false);
    bg_registry_assembly_clear(&x.a);
    return true;
}

/* ---- housekeeping (worker 0) ---- */

static void refresh_metrics(bg_node *n, bg_registry *reg)
{
    struct pipeline_state *p = n->pipe;
    int64_t jobs[6], asm_[5], wh[4];
    if (bg_registry_job_counts(reg, jobs) != BG_OK || bg_registry_assembly_counts(reg, asm_) != BG_OK ||
        bg_registry_webhook_counts(reg, wh) != BG_OK)
        return;
    pthread_mutex_lock(&p->mu);
    memcpy(p->job_counts, jobs, sizeof(jobs));
    memcpy(p->assembly_counts, asm_, sizeof(asm_));
    memcpy(p->webhook_counts, wh, sizeof(wh));
    pthread_mutex_unlock(&p->mu);
}

/* The gauges of /metrics and upload expiry, at most once a second across
 * the workers: whichever worker gets here first, between jobs or from a
 * running job's progress callback, does it (so a long job on every worker
 * does not leave the gauges stale). */
static void housekeeping(bg_node *n, bg_registry *reg)
{
    struct pipeline_state *p = n->pipe;
    long long now = bg_now_ms();
    long long last = __atomic_load_n(&p->house_ms, __ATOMIC_RELAXED);
    if (now - last < 1000 ||
        !__atomic_compare_exchange_n(&p->house_ms, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    refresh_metrics(n, reg);
    bg_pl_uploads_expire(n, reg);
}

static void wait_for_work(bg_node *n, bg_registry *reg, unsigned seen)
{
    struct pipeline_state *p = n->pipe;
    long long due = 0, now = bg_now_ms();
    bg_registry_job_next_due(reg, &due);
    long long wait = due > now ? due - now : 1000;
    if (wait > 1000 || due == 0)
        wait = 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_nsec + wait * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->wake_seq == seen)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    bg_node *n = wa->n;
    size_t slot = wa->slot;
    free(wa);
    struct pipeline_state *p = n->pipe;
    char dbpath[4200];
    bg_registry *reg = NULL;
    bg_registry_opts ro = {.busy_timeout_ms = (int)n->cfg.db_busy_timeout_ms};
    if (!bg_path_join(dbpath, sizeof(dbpath), n->data_dir, BG_DB_FILE) ||
        bg_registry_open(dbpath, &ro, &reg) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "media worker %zu: cannot open the registry", slot);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        unsigned seen = p->wake_seq;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        housekeeping(n, reg);
        if (!run_one(n, reg, slot))
            wait_for_work(n, reg, seen);
    }
    bg_registry_close(reg);
    return NULL;
}

bg_err bg_pl_jobs_start(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    p->nworkers = (size_t)n->cfg.jobs_workers;
    p->workers = bg_xcalloc(p->nworkers, sizeof(pthread_t));
    p->running = bg_xcalloc(p->nworkers, sizeof(bg_running_job));
    for (size_t i = 0; i < p->nworkers; i++) {
        worker_arg *wa = bg_xmalloc(sizeof(*wa));
        wa->n = n;
        wa->slot = i;
        if (pthread_create(&p->workers[i], NULL, worker_main, wa) != 0) {
            free(wa);
            bg_log(BG_LOG_ERROR, NULL, "cannot start media worker %zu", i);
            return BG_EINTERNAL;
        }
        p->nstarted++;
    }
    return BG_OK;
}

void bg_pl_jobs_stop(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->running[i].job_id != 0)
            __atomic_store_n(&p->running[i].cancel, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->nstarted; i++)
        pthread_join(p->workers[i], NULL);
    p->nstarted = 0;
}

/* ---- admin API ---- */

static json_t *job_json(const bg_job_row *j)
{
    char vis[32], cr[32], up[32];
    bg_format_rfc3339(j->visible_at / 1000, vis);
    bg_format_rfc3339(j->created_ms / 1000, cr);
    bg_format_rfc3339(j->updated_ms / 1000, up);
    return json_pack("{s:I,s:s,s:s,s:i,s:s,s:i,s:i,s:s,s:s,s:s,s:s}", "id", (json_int_t)j->id,
                     "assembly_id", j->assembly_id, "organization_id", j->organization_id, "run",
                     j->run, "state", j->state, "receive_count", j->receive_count, "max_receive",
                     j->max_receive, "visible_at", vis, "last_error", j->last_error, "created_at",
                     cr, "updated_at", up);
}

bg_err bg_pipeline_jobs_list(bg_node *n, bg_registry *reg, const char *state, int64_t after,
                             size_t limit, json_t **out, bg_node_err *ne)
{
    (void)n;
    bg_job_row *list = NULL;
    size_t cnt = 0;
    bg_err e = bg_registry_job_list(reg, state, after, limit + 1, &list, &cnt);
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    json_t *arr = json_array();
    size_t shown = cnt > limit ? limit : cnt;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, job_json(&list[i]));
    *out = json_pack("{s:o}", "jobs", arr);
    if (cnt > limit) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%lld", (long long)list[shown - 1].id);
        json_object_set_new(*out, "next_cursor", json_string(cur));
    }
    free(list);
    return BG_OK;
}

bg_err bg_pipeline_job_requeue(bg_node *n, bg_registry *reg, int64_t id, const char *actor,
                               const char *request_id, json_t **out, bg_node_err *ne)
{
    char target[32];
    snprintf(target, sizeof(target), "job:%lld", (long long)id);
    long long now = bg_now_ms();
    bg_job_row j;
    bg_assembly_row a;
    bg_err e = bg_pl_tx_begin(n, reg);
    if (e != BG_OK)
        goto db;
    e = bg_registry_job_get(reg, id, &j);
    if (e == BG_OK && strcmp(j.state, "dead") != 0)
        e = BG_ENOTFOUND;
    if (e == BG_OK)
        e = bg_registry_assembly_get(reg, j.assembly_id, NULL, &a);
    if (e == BG_ENOTFOUND) {
        bg_pl_tx_rollback(n, reg);
        ne->code = "JOB_NOT_FOUND";
        snprintf(ne->message, sizeof(ne->message), "no dead job with id %lld", (long long)id);
        return e;
    }
    if (e == BG_OK && a.run != j.run) {
        bg_pl_tx_rollback(n, reg);
        bg_registry_assembly_clear(&a);
        ne->code = "JOB_SUPERSEDED";
        snprintf(ne->message, sizeof(ne->message), "the assembly was replayed since");
        return BG_ECONFLICT;
    }
    if (e == BG_OK)
        e = bg_registry_job_set(reg, id, "queued", now, "", now);
    if (e == BG_OK) {
        bg_strlcpy(a.state, "executing", sizeof(a.state));
        a.error[0] = a.message[0] = a.failed_step[0] = '\0';
        a.retryable = false;
        a.attempts = 0;
        a.queued_ms = now;
        a.execution_end_ms = 0;
        a.updated_ms = now;
        e = bg_registry_assembly_update(reg, &a);
        if (e == BG_OK)
            e = bg_pl_event(n, reg, a.id, a.organization_id, "assembly:executing",
                            json_pack("{s:i,s:b}", "run", a.run, "requeued", 1));
        bg_registry_assembly_clear(&a);
    }
    if (e == BG_OK)
        e = bg_registry_job_get(reg, id, &j);
    if (e == BG_OK)
        e = bg_node_audit(reg, actor, "job.requeue", target, request_id);
    if (e == BG_OK)
        e = bg_pl_tx_commit(n, reg);
    else
        bg_pl_tx_rollback(n, reg);
    if (e != BG_OK)
        goto db;
    *out = job_json(&j);
    bg_pl_jobs_wake(n);
    return BG_OK;
db:
    return bg_pl_db_err(ne, reg, e);
}

/* ---- metrics ---- */

void bg_pipeline_metrics(bg_node *n, char **buf, size_t *len)
{
    struct pipeline_state *p = n->pipe;
    static const char *const jstates[] = {"queued", "running", "done", "failed", "dead", "canceled"};
    static const char *const astates[] = {"uploading", "executing", "completed", "failed", "canceled"};
    static const char *const wres[] = {"delivered", "retry", "failed", "gone"};
    bg_textbuf b = {NULL, 0, 0};
    bg_textbuf_printf(&b, "# HELP branchgate_jobs Media jobs by state.\n# TYPE branchgate_jobs gauge\n");
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < 6; i++)
        bg_textbuf_printf(&b, "branchgate_jobs{state=\"%s\"} %lld\n", jstates[i],
                          (long long)p->job_counts[i]);
    bg_textbuf_printf(&b, "# HELP branchgate_jobs_dead Dead-lettered media jobs.\n"
                          "# TYPE branchgate_jobs_dead gauge\nbranchgate_jobs_dead %lld\n",
                      (long long)p->job_counts[4]);
    bg_textbuf_printf(&b, "# HELP branchgate_assemblies_total Assemblies by result.\n"
                          "# TYPE branchgate_assemblies_total gauge\n");
    for (int i = 0; i < 5; i++)
        bg_textbuf_printf(&b, "branchgate_assemblies_total{result=\"%s\"} %lld\n", astates[i],
                          (long long)p->assembly_counts[i]);
    pthread_mutex_unlock(&p->mu);
    bg_textbuf_printf(&b, "# HELP branchgate_webhook_deliveries_total Webhook attempts by result.\n"
                          "# TYPE branchgate_webhook_deliveries_total counter\n");
    for (int i = 0; i < 4; i++)
        bg_textbuf_printf(&b, "branchgate_webhook_deliveries_total{result=\"%s\"} %llu\n", wres[i],
                          (unsigned long long)__atomic_load_n(&p->webhook_results[i],
                                                              __ATOMIC_RELAXED));
    *buf = b.p;
    *len = b.len;
}
