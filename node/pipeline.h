/*
 * node/pipeline.h — the media pipeline's runtime (DESIGN section 7,
 * docs/media.md): assemblies, tus uploads, the durable job queue and its
 * media workers, stored progress events with a live sink for SSE, and the
 * webhook sender.
 *
 * Threads: functions taking a bg_registry run on a worker thread (the
 * gateway's pool) and return an API code in bg_node_err on failure. The
 * media workers and the webhook sender are threads of their own, started by
 * bg_node_start and stopped by bg_node_destroy. The event sink runs on the
 * thread that committed the events and must not block.
 */
#ifndef BG_NODE_PIPELINE_H
#define BG_NODE_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "node/branches.h"
#include "node/node.h"
#include "proto/tus.h"
#include "registry/registry.h"

/* Who is asking. org "" lets the call resolve the default organisation
 * (admin tokens); all_orgs lets an admin read any organisation's data. */
typedef struct bg_actor {
    char org[BG_UUID_LEN + 1];
    char user_id[64]; /* user uuid, or "anonymous" for admin tokens */
    bool all_orgs;
} bg_actor;

/* ---- assemblies (assemblies.c) ---- */

/* Creates an assembly from a request body {"template_id","files",
 * "fields"?,"notify_url"?,"organization_id"? (admin only)}; *status is its
 * status JSON and *created false when it existed already (same id, same
 * organisation). Errors: BG_EINVAL (INVALID_FIELD, TEMPLATE_NOT_FOUND is
 * BG_ENOTFOUND), BG_ECONFLICT (ASSEMBLY_EXISTS in another organisation). */
bg_err bg_pipeline_assembly_create(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const json_t *body, json_t **status, bool *created,
                                   bg_node_err *ne);

/* Status JSON of an assembly the actor may see. Errors: BG_ENOTFOUND. */
bg_err bg_pipeline_assembly_status(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne);

/* {"assemblies":[status…],"next_cursor"?} newest first. */
bg_err bg_pipeline_assembly_list(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 int64_t before, size_t limit, json_t **out, bg_node_err *ne);

/* Cancels an uploading or executing assembly (its job too; a running
 * robot stops at its next progress callback). Canceling a finished one is
 * a no-op that returns its status. Errors: BG_ENOTFOUND. */
bg_err bg_pipeline_assembly_cancel(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne);

/* Runs a finished, failed or canceled assembly again (results removed, a
 * new job queued). Errors: BG_ENOTFOUND, BG_ECONFLICT (ASSEMBLY_BUSY while
 * uploading or executing). */
bg_err bg_pipeline_assembly_replay(bg_node *n, bg_registry *reg, const bg_actor *who,
                                   const char *id, json_t **status, bg_node_err *ne);

/* The file of a result, for download: absolute path and mime type.
 * Errors: BG_ENOTFOUND (no such assembly for this actor, result or file). */
bg_err bg_pipeline_result_file(bg_node *n, bg_registry *reg, const bg_actor *who,
                               const char *assembly_id, const char *step, const char *name,
                               char *path, size_t cap, char mime[64], bg_node_err *ne);

/* ---- tus uploads (uploads.c) ---- */

/* A chunk of bytes with an optional Upload-Checksum (algo 0 = none). The
 * data is borrowed for the call. */
typedef struct bg_tus_chunk {
    int64_t offset;
    const void *data;
    size_t len;
    bg_tus_algo algo;
    uint8_t digest[64];
    size_t dlen;
} bg_tus_chunk;

/* Creates an upload for an assembly that is uploading (metadata names the
 * assembly and file); with first != NULL (creation-with-upload) also
 * stores those bytes. Errors: BG_EINVAL (INVALID_METADATA,
 * INVALID_FILENAME, CHECKSUM_MISMATCH), BG_ENOTFOUND (ASSEMBLY_NOT_FOUND),
 * BG_ECONFLICT (ASSEMBLY_NOT_UPLOADING, UPLOAD_NOT_EXPECTED), BG_ETOOBIG,
 * BG_EIO. */
bg_err bg_pipeline_upload_create(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 int64_t length, const char *metadata, size_t metadata_len,
                                 const bg_tus_chunk *first, bg_upload_row *out, bg_node_err *ne);

/* The upload (expired ones are not found). Errors: BG_ENOTFOUND. */
bg_err bg_pipeline_upload_get(bg_node *n, bg_registry *reg, const bg_actor *who, const char *id,
                              bg_upload_row *out, bg_node_err *ne);

/* Appends a chunk at its offset: the bytes are on disk (fsync) and the
 * offset committed before this returns BG_OK. Completing the last expected
 * file queues the assembly's job. Errors: BG_ENOTFOUND, BG_ECONFLICT
 * (UPLOAD_OFFSET_MISMATCH, UPLOAD_COMPLETE), BG_EINVAL
 * (CHECKSUM_MISMATCH: nothing stored), BG_ETOOBIG (past Upload-Length),
 * BG_EIO. */
bg_err bg_pipeline_upload_patch(bg_node *n, bg_registry *reg, const bg_actor *who, const char *id,
                                const bg_tus_chunk *c, bg_upload_row *out, bg_node_err *ne);

/* Removes an unfinished upload and its file. Errors: BG_ENOTFOUND,
 * BG_ECONFLICT (UPLOAD_COMPLETE: the assembly already uses it). */
bg_err bg_pipeline_upload_delete(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 const char *id, bg_node_err *ne);

/* ---- jobs (jobs.c) ---- */

/* {"jobs":[…],"next_cursor"?} in a state (NULL = all), id > after. */
bg_err bg_pipeline_jobs_list(bg_node *n, bg_registry *reg, const char *state, int64_t after,
                             size_t limit, json_t **out, bg_node_err *ne);

/* A dead job runs again (receive_count 0, assembly executing), with an
 * audit record "job.requeue". Errors:
 * BG_ENOTFOUND (JOB_NOT_FOUND: no dead job with that id). */
bg_err bg_pipeline_job_requeue(bg_node *n, bg_registry *reg, int64_t id, const char *actor,
                               const char *request_id, json_t **out, bg_node_err *ne);

/* ---- events (events.c) ---- */

/* Receives every event right after its transaction committed, in id
 * order. Set (and cleared with NULL) by the gateway once its loops run. */
typedef void (*bg_event_sink_fn)(void *ud, const bg_event_row *ev);
void bg_pipeline_set_sink(bg_node *n, bg_event_sink_fn fn, void *ud);

/* Stored events of one assembly the actor may see (assembly_id) or of
 * every assembly it may see (NULL), id > after, at most limit. */
bg_err bg_pipeline_events(bg_node *n, bg_registry *reg, const bg_actor *who,
                          const char *assembly_id, int64_t after, size_t limit,
                          bg_event_row **out, size_t *count, bg_node_err *ne);

/* True for the names that end a channel stream. */
bool bg_pipeline_event_terminal(const char *name);

/* ---- cleanup (cleanup.c) ---- */

/* Removes DATA/uploads/{branch}/users/{user}/{upload} and
 * DATA/outputs/{branch}/{assembly} directories last changed more than
 * older_than_s ago (0 = all); *removed counts them. Registry rows stay:
 * use it for finished work. Errors: BG_EINVAL (bad branch name). Any
 * thread; blocking (CLI). */
bg_err bg_pipeline_cleanup(const char *data_dir, const char *branch, long long older_than_s,
                           size_t *removed);

/* ---- metrics ---- */

/* branchgate_jobs, branchgate_jobs_dead, branchgate_assemblies_total,
 * branchgate_webhook_deliveries_total (values refreshed by the workers
 * about once a second). Any thread; *buf malloc'ed. */
void bg_pipeline_metrics(bg_node *n, char **buf, size_t *len);

#endif
