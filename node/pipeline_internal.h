/*
 * node/pipeline_internal.h — shared by the pipeline's .c files in node/
 * (assemblies, uploads, jobs, robots, events, webhooks) only.
 */
#ifndef BG_NODE_PIPELINE_INTERNAL_H
#define BG_NODE_PIPELINE_INTERNAL_H

#include <pthread.h>

#include "node/pipeline.h"
#include "node_internal.h"

#include "proto/assembly.h"

/* A job a media worker is running: DELETE sets cancel. */
typedef struct bg_running_job {
    int64_t job_id;
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    int cancel;
} bg_running_job;

struct pipeline_state {
    /* The event lock: held from BEGIN of a transaction that stores events
     * until its events have been handed to the sink, so the sink sees ids
     * in increasing order (events.c). */
    pthread_mutex_t ev_mu;
    bg_event_row *pending;
    size_t npending, cap_pending;
    bg_event_sink_fn sink;
    void *sink_ud;
    /* media workers (jobs.c) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    unsigned wake_seq;
    pthread_t *workers;
    size_t nworkers, nstarted;
    bg_running_job *running; /* nworkers slots, job_id 0 = free; under mu */
    char (*locked)[33]; /* uploads with a PATCH in progress; under mu */
    size_t nlocked, cap_locked;
    /* webhook sender (webhooks.c) */
    struct webhook_state *wh;
    long long schedule_ms[BG_WEBHOOK_SCHEDULE_MAX];
    size_t nschedule;
    /* metrics, refreshed by worker 0; under mu */
    int64_t job_counts[6], assembly_counts[5], webhook_counts[4];
    long long house_ms; /* last housekeeping (metrics gauges, upload expiry), atomic */
    uint64_t webhook_results[4]; /* delivered, retry, failed, gone (atomic) */
};

/* ---- events.c ---- */
/* Fills ne (code, message) and returns e. */
bg_err bg_pl_nerr(bg_node_err *ne, bg_err e, const char *code, const char *msg);
/* ne from the registry's last error (no API code: a server fault); returns e. */
bg_err bg_pl_db_err(bg_node_err *ne, bg_registry *reg, bg_err e);
void bg_pl_init(bg_node *n);
void bg_pl_free(bg_node *n);
/* BEGIN IMMEDIATE under the event lock. On error the lock is released. */
bg_err bg_pl_tx_begin(bg_node *n, bg_registry *reg);
/* COMMIT, then the pending events go to the sink; the lock is released
 * either way (a failed commit rolls back and drops them). */
bg_err bg_pl_tx_commit(bg_node *n, bg_registry *reg);
void bg_pl_tx_rollback(bg_node *n, bg_registry *reg);
/* Stores an event inside the current transaction; data is stolen (NULL =
 * {}); "assembly_id" is added to it. */
bg_err bg_pl_event(bg_node *n, bg_registry *reg, const char *assembly_id, const char *org,
                   const char *name, json_t *data);

/* ---- assemblies.c ---- */
/* The status JSON of a row (reads uploads, results, webhook state). */
json_t *bg_pl_status_json(bg_node *n, bg_registry *reg, const bg_assembly_row *a);
/* Inside a transaction: the assembly starts a new run (state executing,
 * run+1, a queued job, an assembly:executing event). */
bg_err bg_pl_start_run(bg_node *n, bg_registry *reg, bg_assembly_row *a, long long now);
/* Inside a transaction: the assembly fails (error fields, event, webhook). */
bg_err bg_pl_fail(bg_node *n, bg_registry *reg, bg_assembly_row *a, const char *code,
                  const char *step, bool retryable, const char *msg);
/* Inside a transaction: queue the webhook of a finished run, if any. */
bg_err bg_pl_notify(bg_node *n, bg_registry *reg, const bg_assembly_row *a);
/* "DATA/rel" into out. */
bool bg_pl_abspath(const bg_node *n, const char *rel, char *out, size_t cap);
/* Removes a directory tree under the data dir (best effort). */
void bg_pl_rmtree(const char *path);
/* mkdir -p of a path's parent directories (0700). Errors: BG_EIO. */
bg_err bg_pl_mkdirs(const char *path, bool include_last);

/* ---- uploads.c ---- */
/* Removes expired unfinished uploads (rows and files). Worker thread. */
void bg_pl_uploads_expire(bg_node *n, bg_registry *reg);

/* ---- robots.c ---- */
typedef struct bg_robot_input {
    const char *path; /* absolute */
    const char *name;
    const char *id;   /* upload or result id */
    const char *mime;
    int64_t size;
} bg_robot_input;

typedef struct bg_robot_output {
    char name[256];
    char path[1024]; /* relative to the data dir; "" = no file */
    int64_t size;
    char mime[64];
    json_t *meta;    /* new reference or NULL */
    char original_id[33]; /* the input it came from (set by the caller) */
} bg_robot_output;

/* What one step produced: files (several per input for thumbnails and
 * waveforms), or on failure the code and message. */
typedef struct bg_robot_outputs {
    bg_robot_output *v;
    size_t n;
    char code[32];
    char message[256];
} bg_robot_outputs;

struct bg_media_progress;
/* Runs the step's robot on one input, writing into dir_rel (relative to
 * the data dir) and appending its outputs to out. Errors: BG_EINVAL
 * (INVALID_OPTIONS), BG_EMEDIA (INVALID_INPUT, ROBOT_UNAVAILABLE,
 * PROCESSING_ERROR), BG_EIO (OUTPUT_ERROR, INPUT_MISSING), BG_EBUSY
 * (CANCELED); out->code and message say which. */
bg_err bg_pl_robot_run(bg_node *n, const json_t *step, const struct bg_robot_input *in,
                       const char *dir_rel, const struct bg_media_progress *p,
                       bg_robot_outputs *out);
void bg_pl_robot_outputs_clear(bg_robot_outputs *out);
/* Removes the files of out's outputs and drops them (a step that will not
 * be stored). */
void bg_pl_robot_outputs_remove(const bg_node *n, bg_robot_outputs *out);

/* Steps that can share one decode of their input: /meta/read,
 * /audio/loudness, /audio/encode and /audio/waveform on the same `use`. */
#define BG_ROBOT_GROUP_MAX 16
bool bg_pl_robot_audio_groupable(const json_t *step);

/* Runs steps[0..nsteps) (2..BG_ROBOT_GROUP_MAX groupable steps, dirs[i]
 * the output directory of steps[i]) on one input with one decode of its
 * audio (bg_media_audio_multi; a waveform feeds an accumulator, /meta/read
 * is a probe plus the shared loudness measurement), appending step i's
 * outputs to outs[i] as bg_pl_robot_run would. All or nothing: on any
 * error no file of the group is left and outs[i] are as they were.
 * BG_EBUSY: canceled. Any other error (input the probe finds no audio in,
 * a bad option, a failed decode or write) means: run the steps one by one,
 * which says which step failed and why. */
bg_err bg_pl_robot_run_audio_group(bg_node *n, const json_t *const *steps,
                                   const char *const *dirs, size_t nsteps,
                                   const struct bg_robot_input *in,
                                   const struct bg_media_progress *p, bg_robot_outputs *outs);

/* ---- jobs.c ---- */
void bg_pl_jobs_wake(bg_node *n);
/* Sets the cancel flag of the assembly's running job, if any. */
void bg_pl_cancel_running(bg_node *n, const char *assembly_id);
bg_err bg_pl_jobs_start(bg_node *n);
void bg_pl_jobs_stop(bg_node *n);

/* ---- webhooks.c ---- */
bg_err bg_pl_webhooks_start(bg_node *n);
void bg_pl_webhooks_stop(bg_node *n);
void bg_pl_webhooks_wake(bg_node *n);
void bg_pl_webhooks_free(bg_node *n);

#endif
