/*
 * registry/registry.h — the branch's SQLite registry: all SQL of the
 * program lives behind this header.
 *
 * A bg_registry is one database connection. It is not thread-safe: each
 * worker thread opens its own (WAL mode lets them read concurrently while
 * one writes). Functions never block an event-loop thread because they are
 * only called from worker threads, the main thread at start-up, and CLI
 * commands. The API speaks in plain structs so that a second backend can
 * slot in behind it later.
 *
 * Errors: every function returns bg_err (BG_EBUSY when the database stayed
 * locked past the busy timeout, BG_EIO for disk/corruption errors,
 * BG_ENOTFOUND / BG_ECONFLICT where stated); the SQLite message of the last
 * failure is kept on the handle for logging (bg_registry_errmsg).
 */
#ifndef BG_REGISTRY_H
#define BG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/sig.h"

typedef struct bg_registry bg_registry;

/* Test hook (registry/fault.c): from now on a write statement, BEGIN or
 * COMMIT of any connection in the process fails, on average once in
 * busy_every with BG_EBUSY and once in ioerr_every with BG_EIO, without
 * running (pseudo-random, 0 = never; both 0 = off). Only for fault-injection tests: a branch turns it on when
 * started with BRANCHGATE_TEST_FAULTS. */
void bg_registry_faults_set(unsigned busy_every, unsigned ioerr_every);
/* Parses "busy_every=N,ioerr_every=M" (either may be left out; N, M in
 * 2..1000000). False for anything else or when both are 0. */
bool bg_registry_faults_parse(const char *spec, unsigned *busy_every, unsigned *ioerr_every);

typedef struct bg_registry_opts {
    int busy_timeout_ms;    /* how long a writer waits for the lock */
    bool synchronous_full;  /* PRAGMA synchronous=FULL instead of NORMAL */
} bg_registry_opts;

/* Opens (creating if absent) the database file at path, in WAL mode with
 * foreign keys on. Does not migrate. opts may be NULL for defaults.
 * Errors: BG_EIO, BG_ENOMEM. */
bg_err bg_registry_open(const char *path, const bg_registry_opts *opts, bg_registry **out);

/* Closes the connection; accepts NULL. */
void bg_registry_close(bg_registry *r);

/* Runs the numbered migrations that are not yet applied, each in its own
 * transaction. *from and *to (may be NULL) receive the schema versions
 * before and after. Errors: BG_EIO, BG_EINVAL (database is newer than this
 * program). */
bg_err bg_registry_migrate(bg_registry *r, int *from, int *to);

/* Highest schema version this program knows. */
int bg_registry_schema_latest(void);

/* A trivial read, to prove the connection works (readiness). */
bg_err bg_registry_ping(bg_registry *r);

/* Explicit transactions, for changes that must land together (a change and
 * its audit record). BEGIN IMMEDIATE, so a writer takes the lock up front. */
bg_err bg_registry_begin(bg_registry *r);
bg_err bg_registry_commit(bg_registry *r);
void bg_registry_rollback(bg_registry *r);

/* Message of the last failure on this handle (never NULL). */
const char *bg_registry_errmsg(const bg_registry *r);

/* SQLite library version. */
const char *bg_registry_version(void);

/* ---- admin tokens (stored only as keyed hashes) ---- */

typedef struct bg_admin_token {
    char id[BG_UUID_LEN + 1];
    char label[65];
    uint8_t hash[BG_HASH_BYTES];
    long long created_ms;
    long long revoked_ms; /* 0 when active */
} bg_admin_token;

/* Inserts a token. Errors: BG_ECONFLICT (same id or hash exists). */
bg_err bg_registry_token_insert(bg_registry *r, const bg_admin_token *t);

/* All tokens (active only unless include_revoked), oldest first. *out is
 * a malloc'ed array the caller frees; *n its length. */
bg_err bg_registry_token_list(bg_registry *r, bool include_revoked, bg_admin_token **out,
                              size_t *n);

/* Marks a token revoked. Errors: BG_ENOTFOUND (no such active token). */
bg_err bg_registry_token_revoke(bg_registry *r, const char *id, long long now_ms);

/* ---- audit log ---- */

typedef struct bg_audit_entry {
    int64_t id;          /* assigned on append */
    long long ts_ms;
    char actor[80];      /* "admin:<token id>", "cli", "system" */
    char action[64];     /* "token.create", "branch.register", ... */
    char target[256];
    char request_id[80];
    char *detail;        /* JSON object text, malloc'ed; never secrets */
} bg_audit_entry;

/* Appends one record; e->id and e->detail (NULL = "{}") are read as given.
 * Errors: BG_EIO, BG_EBUSY. */
bg_err bg_registry_audit_append(bg_registry *r, const bg_audit_entry *e);

/* Newest first, ids strictly below before_id (0 = from the newest), at most
 * limit rows. *out is malloc'ed; free with bg_registry_audit_free. */
bg_err bg_registry_audit_list(bg_registry *r, int64_t before_id, size_t limit,
                              bg_audit_entry **out, size_t *n);
void bg_registry_audit_free(bg_audit_entry *entries, size_t n);

/* ---- peer branches ---- */

#define BG_PEER_KEY_MAX 256 /* longest api key accepted */
#define BG_SEALED_KEY_MAX (BG_PEER_KEY_MAX + BG_SEAL_OVERHEAD)

typedef struct bg_branch {
    int64_t id;
    char organization_id[BG_UUID_LEN + 1]; /* "" when not tied to one */
    char name[64];
    char url[512];                         /* normalised */
    char type[16];                         /* top_branch | master_branch */
    uint8_t key_sealed[BG_SEALED_KEY_MAX]; /* secretbox of the api key */
    size_t key_sealed_len;
    uint8_t key_hash[BG_HASH_BYTES];       /* keyed hash of the api key */
    char *ssl_certificate;                 /* PEM or NULL; malloc'ed */
    char spki_pin[128];                    /* "sha256//<base64>" or "" */
    bool is_active;
    bool verified;                         /* answered an authenticated call */
    long long last_ping_ms;
    char state[8];                         /* up | down | unknown */
    int64_t rtt_us;
    int64_t clock_skew_ms;
    char last_error[256];
    long long created_ms, updated_ms;
} bg_branch;

/* Inserts b (b->id is assigned on success). Errors: BG_ECONFLICT when
 * (organization_id, name) exists. */
bg_err bg_registry_branch_insert(bg_registry *r, bg_branch *b);

/* Reads one branch by name. org NULL matches any organisation, preferring
 * the branch tied to none; when several are tied to organisations,
 * BG_ECONFLICT. Errors: BG_ENOTFOUND. Free with bg_registry_branch_clear. */
bg_err bg_registry_branch_get(bg_registry *r, const char *org, const char *name, bg_branch *out);

/* Branches with id > after_id in id order, at most limit (0 = all), of
 * organisation org (NULL = all); inactive ones only when include_inactive.
 * Free with bg_registry_branch_free. */
bg_err bg_registry_branch_list(bg_registry *r, const char *org, bool include_inactive,
                               int64_t after_id, size_t limit, bg_branch **out, size_t *n);

/* Reads one branch by row id. Errors: BG_ENOTFOUND. */
bg_err bg_registry_branch_get_id(bg_registry *r, int64_t id, bg_branch *out);

/* Rewrites the mutable columns of the row with b->id (url, type, keys,
 * certificate, pin, is_active, verified). Errors: BG_ENOTFOUND. */
bg_err bg_registry_branch_update(bg_registry *r, const bg_branch *b);

/* Records a health observation on the row with id. */
bg_err bg_registry_branch_record_ping(bg_registry *r, int64_t id, long long at_ms, bool up,
                                      int64_t rtt_us, int64_t skew_ms, const char *error,
                                      bool verified);

void bg_registry_branch_clear(bg_branch *b);
void bg_registry_branch_free(bg_branch *arr, size_t n);

/* ---- organisations and users (every user query is scoped by org) ---- */

#define BG_WEBHOOK_SECRET_MAX 96

typedef struct bg_org {
    char id[BG_UUID_LEN + 1];
    char name[201];
    char parent_id[BG_UUID_LEN + 1]; /* "" = none */
    char home_branch[64];
    int64_t version;
    uint8_t webhook_sealed[BG_WEBHOOK_SECRET_MAX + BG_SEAL_OVERHEAD];
    size_t webhook_sealed_len;
    long long created_ms, updated_ms;
} bg_org;

/* Inserts or, when o->id exists and o->version is newer, replaces the
 * organisation's synced fields (the webhook secret is never replaced by
 * an upsert). *applied tells whether the row changed. */
bg_err bg_registry_org_upsert(bg_registry *r, const bg_org *o, bool *applied);

/* Errors: BG_ENOTFOUND. */
bg_err bg_registry_org_get(bg_registry *r, const char *id, bg_org *out);
bg_err bg_registry_org_get_by_name(bg_registry *r, const char *name, bg_org *out);

/* Organisations with id > after (text order), at most limit. malloc'ed. */
bg_err bg_registry_org_list(bg_registry *r, const char *after, size_t limit, bg_org **out,
                            size_t *n);

/* Updates name/parent/home/version/webhook secret of an existing row.
 * Errors: BG_ENOTFOUND. */
bg_err bg_registry_org_update(bg_registry *r, const bg_org *o);

typedef struct bg_user {
    char id[BG_UUID_LEN + 1];
    char organization_id[BG_UUID_LEN + 1];
    char email[255];
    char name[201];
    char role[8];
    char home_branch[64];
    char password_hash[160]; /* argon2id string; "" on branches that are not home */
    int64_t version;
    bool deleted;
    long long created_ms, updated_ms;
} bg_user;

/* Inserts a user. Errors: BG_ECONFLICT (same id, or same email in the
 * organisation). */
bg_err bg_registry_user_insert(bg_registry *r, const bg_user *u);

/* Inserts or replaces a synced user when u->version is newer than the
 * stored one; the stored password hash is kept. *applied as above.
 * Errors: BG_ECONFLICT (the email belongs to another user). */
bg_err bg_registry_user_upsert(bg_registry *r, const bg_user *u, bool *applied);

/* One user of organisation org (tombstones included only if asked).
 * Errors: BG_ENOTFOUND. */
bg_err bg_registry_user_get(bg_registry *r, const char *org, const char *id, bool with_deleted,
                            bg_user *out);
bg_err bg_registry_user_get_by_email(bg_registry *r, const char *org, const char *email,
                                     bg_user *out);

/* Users of org with id > after, at most limit (0 = all), tombstones only if
 * with_deleted. malloc'ed. */
bg_err bg_registry_user_list(bg_registry *r, const char *org, const char *after, size_t limit,
                             bool with_deleted, bg_user **out, size_t *n);

/* Marks a user deleted with a new version. Errors: BG_ENOTFOUND. */
bg_err bg_registry_user_tombstone(bg_registry *r, const char *org, const char *id,
                                  int64_t version, long long now_ms);

/* Branches an organisation is shared with. */
bg_err bg_registry_org_share_add(bg_registry *r, const char *org, int64_t branch_id);
bg_err bg_registry_org_shares(bg_registry *r, const char *org, int64_t **ids, size_t *n);
bg_err bg_registry_orgs_shared_with(bg_registry *r, int64_t branch_id, char (**ids)[BG_UUID_LEN + 1],
                                    size_t *n);

/* ---- the outbox ---- */

typedef struct bg_outbox_msg {
    int64_t id;
    int64_t branch_id;
    char kind[24];          /* "org_sync" | "share_resource" */
    char organization_id[BG_UUID_LEN + 1];
    char path[128];
    char *payload;          /* JSON text, malloc'ed */
    char idempotency_key[80];
    char state[8];
    int attempts;
    long long next_attempt_ms, created_ms;
    int last_status;
    char last_error[256];
} bg_outbox_msg;

/* Appends a message (call inside the transaction of the change). */
bg_err bg_registry_outbox_add(bg_registry *r, bg_outbox_msg *m);

/* The oldest pending message of every destination (one per branch, so a
 * destination is served in order). malloc'ed; free with
 * bg_registry_outbox_free. */
bg_err bg_registry_outbox_heads(bg_registry *r, bg_outbox_msg **out, size_t *n);

/* Delivered: the row goes away. */
bg_err bg_registry_outbox_done(bg_registry *r, int64_t id);

/* A failed attempt: attempts+1, next attempt, last status/error; dead
 * moves it to the dead-letter state. */
bg_err bg_registry_outbox_retry(bg_registry *r, int64_t id, long long next_ms, int status,
                                const char *error, bool dead);

/* Every pending message of a branch that failed for want of a reachable,
 * authenticating peer (transport error, 5xx, 401, 403, 408, 429) becomes
 * due now: the backoff reset after the peer answered again. */
bg_err bg_registry_outbox_reset(bg_registry *r, int64_t branch_id, long long now_ms);

typedef struct bg_outbox_stats {
    int64_t branch_id;
    int64_t depth, dead;
    long long oldest_created_ms; /* 0 when empty */
    long long next_attempt_ms;   /* 0 when empty */
    int attempts;                /* of the head message */
    char last_error[256];
} bg_outbox_stats;

/* Per-destination statistics of pending messages (branch_id 0 = all). */
bg_err bg_registry_outbox_stats(bg_registry *r, int64_t branch_id, bg_outbox_stats **out,
                                size_t *n);

/* Messages in a state ("pending" or "dead") with id > after, oldest first,
 * at most limit. malloc'ed. */
bg_err bg_registry_outbox_list(bg_registry *r, const char *state, int64_t after, size_t limit,
                               bg_outbox_msg **out, size_t *n);

/* A dead message becomes pending and due now, attempts reset.
 * Errors: BG_ENOTFOUND (no dead message with that id). */
bg_err bg_registry_outbox_requeue(bg_registry *r, int64_t id, long long now_ms);

void bg_registry_outbox_free(bg_outbox_msg *m, size_t n);

/* ---- idempotency keys of inbound peer calls ---- */

/* The stored answer of (peer, key): status and malloc'ed body. Errors:
 * BG_ENOTFOUND. */
bg_err bg_registry_idem_get(bg_registry *r, int64_t peer_id, const char *key, int *status,
                            char **body);
bg_err bg_registry_idem_put(bg_registry *r, int64_t peer_id, const char *key, int status,
                            const char *body, long long now_ms);
/* Forgets keys stored before cutoff_ms. */
bg_err bg_registry_idem_expire(bg_registry *r, long long cutoff_ms);

/* ---- resources shared by other branches ---- */

typedef struct bg_shared {
    char organization_id[BG_UUID_LEN + 1];
    char resource_type[16];
    char resource_id[129];
    char from_branch[64];
    char permissions[128]; /* JSON array text */
    long long expires_ms;  /* 0 = never */
    char *payload;         /* JSON text, malloc'ed */
    long long updated_ms;
} bg_shared;

bg_err bg_registry_shared_put(bg_registry *r, const bg_shared *s);
/* Errors: BG_ENOTFOUND (absent or expired at now_ms). */
bg_err bg_registry_shared_get(bg_registry *r, const char *org, const char *type, const char *id,
                              long long now_ms, bg_shared *out);
bg_err bg_registry_shared_list(bg_registry *r, const char *org, const char *type,
                               long long now_ms, bg_shared **out, size_t *n);
void bg_registry_shared_free(bg_shared *s, size_t n);

/* ---- licenses ---- */

typedef struct bg_license_rec {
    char id[BG_UUID_LEN + 1];
    char organization_id[BG_UUID_LEN + 1];
    char *token;        /* malloc'ed */
    char status[8];     /* active | revoked */
    int64_t not_before, expires_at; /* unix seconds */
    long long created_ms, updated_ms;
} bg_license_rec;

/* Inserts, or (same id) replaces token/status/times. */
bg_err bg_registry_license_put(bg_registry *r, const bg_license_rec *l);
/* Errors: BG_ENOTFOUND. Free with bg_registry_license_clear. */
bg_err bg_registry_license_get(bg_registry *r, const char *id, bg_license_rec *out);
/* The newest license of an organisation, any status. Errors: BG_ENOTFOUND. */
bg_err bg_registry_license_latest(bg_registry *r, const char *org, bg_license_rec *out);

/* The newest active license of an organisation. Errors: BG_ENOTFOUND. */
bg_err bg_registry_license_active(bg_registry *r, const char *org, bg_license_rec *out);
/* Sets the status of a stored license ("active" | "revoked"); *changed
 * tells whether it differed. Errors: BG_ENOTFOUND. */
bg_err bg_registry_license_set_status(bg_registry *r, const char *id, const char *status,
                                      long long now_ms, bool *changed);

/* Marks revoked. Errors: BG_ENOTFOUND (no such active license). */
bg_err bg_registry_license_revoke(bg_registry *r, const char *id, long long now_ms);
void bg_registry_license_clear(bg_license_rec *l);

/* Cached validation receipts, keyed by a keyed hash of the license key and
 * the normalised domain. */
bg_err bg_registry_receipt_put(bg_registry *r, const uint8_t key_hash[BG_HASH_BYTES],
                               const char *domain, const char *receipt, long long checked_ms);
/* *receipt malloc'ed. Errors: BG_ENOTFOUND. */
bg_err bg_registry_receipt_get(bg_registry *r, const uint8_t key_hash[BG_HASH_BYTES],
                               const char *domain, char **receipt, long long *checked_ms);

/* A peer's Ed25519 public key, learnt from its authenticated health answer. */
bg_err bg_registry_branch_set_public_key(bg_registry *r, int64_t id,
                                         const uint8_t pk[BG_ED25519_PK_BYTES]);
/* Errors: BG_ENOTFOUND (no branch of that type with a known key). */
bg_err bg_registry_top_public_key(bg_registry *r, uint8_t pk[BG_ED25519_PK_BYTES], int64_t *branch_id);

/* Active registered branches (for license branch limits). */
bg_err bg_registry_branch_count(bg_registry *r, int64_t *n);

/* ---- the media pipeline (media.c) ----
 * Assemblies, tus uploads, jobs, results, stored progress events and
 * webhook deliveries (DESIGN section 7, docs/media.md). Every query that a
 * user can reach takes the organisation id. */

#define BG_ASSEMBLY_ID_MAX 65
#define BG_MD5_STATE_MAX 128

typedef struct bg_assembly_row {
    int64_t seq;                 /* rowid: list cursor */
    char id[BG_ASSEMBLY_ID_MAX];
    char organization_id[BG_UUID_LEN + 1];
    char user_id[64];            /* user uuid or "anonymous" */
    char template_id[129];
    char *template_json;         /* malloc'ed snapshot of the template */
    char state[16];              /* uploading|executing|completed|failed|canceled */
    char error[40];
    char message[256];
    char failed_step[65];
    bool retryable;
    char *files_json;            /* malloc'ed: [{"name","size","md5"}] */
    char *fields_json;           /* malloc'ed object text */
    char notify_url[1024];
    int64_t bytes_expected;
    int run;                     /* runs started (replays add one) */
    int attempts;                /* claims of the current run's job */
    long long queued_ms, execution_start_ms, execution_end_ms, created_ms, updated_ms;
} bg_assembly_row;

/* Errors: BG_ECONFLICT (the id exists). */
bg_err bg_registry_assembly_insert(bg_registry *r, const bg_assembly_row *a);
/* org NULL = any organisation (admin, workers). Errors: BG_ENOTFOUND. */
bg_err bg_registry_assembly_get(bg_registry *r, const char *id, const char *org,
                                bg_assembly_row *out);
/* Newest first, seq < before (0 = from the newest), at most limit; org
 * NULL = all. malloc'ed; free with bg_registry_assembly_free. */
bg_err bg_registry_assembly_list(bg_registry *r, const char *org, int64_t before, size_t limit,
                                 bg_assembly_row **out, size_t *n);
/* Writes the mutable fields (state, error, message, failed_step,
 * retryable, run, attempts, the times). Errors: BG_ENOTFOUND. */
bg_err bg_registry_assembly_update(bg_registry *r, const bg_assembly_row *a);
/* Sum of received bytes over the assembly's uploads. */
bg_err bg_registry_assembly_bytes(bg_registry *r, const char *id, int64_t *received);
/* Counts of assemblies per state (for /metrics): keys as in state[]. */
bg_err bg_registry_assembly_counts(bg_registry *r, int64_t counts[5]);
void bg_registry_assembly_clear(bg_assembly_row *a);
void bg_registry_assembly_free(bg_assembly_row *a, size_t n);

typedef struct bg_upload_row {
    char id[33];
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char organization_id[BG_UUID_LEN + 1];
    char user_id[64];
    int file_index;
    char filename[256];          /* sanitised */
    char mime[128];
    char metadata[4096];         /* Upload-Metadata as received, for HEAD */
    char path[1024];             /* relative to the data dir */
    int64_t length, offset;
    uint8_t md5_state[BG_MD5_STATE_MAX];
    size_t md5_state_len;
    char md5[33];                /* lowercase hex once complete */
    bool complete;
    long long expires_ms, created_ms, updated_ms;
} bg_upload_row;

/* Errors: BG_ECONFLICT (id, or the assembly's file_index, taken). */
bg_err bg_registry_upload_insert(bg_registry *r, const bg_upload_row *u);
/* org NULL = any. Errors: BG_ENOTFOUND. */
bg_err bg_registry_upload_get(bg_registry *r, const char *id, const char *org, bg_upload_row *out);
/* The assembly's uploads by file_index. malloc'ed (free()). */
bg_err bg_registry_upload_list(bg_registry *r, const char *assembly_id, bg_upload_row **out,
                               size_t *n);
/* Stores offset, md5 state, completion and the final md5. */
bg_err bg_registry_upload_progress(bg_registry *r, const bg_upload_row *u);
/* Errors: BG_ENOTFOUND. */
bg_err bg_registry_upload_delete(bg_registry *r, const char *id);
/* Incomplete uploads whose expiry passed, at most limit. malloc'ed. */
bg_err bg_registry_upload_expired(bg_registry *r, long long now_ms, size_t limit,
                                  bg_upload_row **out, size_t *n);

typedef struct bg_job_row {
    int64_t id;
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char organization_id[BG_UUID_LEN + 1];
    int run;
    char state[12];              /* queued|running|done|failed|dead|canceled */
    int receive_count, max_receive;
    long long visible_at, created_ms, updated_ms;
    char last_error[256];
} bg_job_row;

/* Sets j->id. Errors: BG_ECONFLICT (the run exists). */
bg_err bg_registry_job_insert(bg_registry *r, bg_job_row *j);
bg_err bg_registry_job_get(bg_registry *r, int64_t id, bg_job_row *out);
/* Claims the oldest due job: queued or failed with visible_at <= now, or
 * running with an expired lease; no older unfinished job of the same
 * assembly (FIFO per upload); its organisation below org_limit live
 * leases. The row becomes running, receive_count+1, visible_at = now +
 * lease_ms, and *out receives it. Call inside a transaction. Errors:
 * BG_ENOTFOUND (nothing due). */
bg_err bg_registry_job_claim(bg_registry *r, long long now_ms, long long lease_ms, int org_limit,
                             bg_job_row *out);
/* Earliest visible_at of a waiting job (0 when none). */
bg_err bg_registry_job_next_due(bg_registry *r, long long *at_ms);
/* Moves the lease of a running job that is still the claim numbered
 * receive_count. Errors: BG_ENOTFOUND (no longer running: canceled, or
 * claimed again after the lease ran out). */
bg_err bg_registry_job_extend(bg_registry *r, int64_t id, int receive_count, long long visible_at);
/* Gives a claim back unused (graceful shutdown): a running job that is
 * still the claim numbered receive_count becomes queued and due at now,
 * and the claim is not counted. Errors: BG_ENOTFOUND. */
bg_err bg_registry_job_release(bg_registry *r, int64_t id, int receive_count, long long now_ms);
/* Sets state, visible_at and last_error. */
bg_err bg_registry_job_set(bg_registry *r, int64_t id, const char *state, long long visible_at,
                           const char *last_error, long long now_ms);
/* The assembly's unfinished job (queued, running or failed). Errors:
 * BG_ENOTFOUND. */
bg_err bg_registry_job_active(bg_registry *r, const char *assembly_id, bg_job_row *out);
/* Jobs in a state with id > after, oldest first. malloc'ed (free()). */
bg_err bg_registry_job_list(bg_registry *r, const char *state, int64_t after, size_t limit,
                            bg_job_row **out, size_t *n);
/* Per-state counts: queued, running, done, failed, dead, canceled. */
bg_err bg_registry_job_counts(bg_registry *r, int64_t counts[6]);

typedef struct bg_result_row {
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char step[65];
    int idx;
    char id[33];
    char name[256];
    char path[1024];             /* relative to the data dir, "" = no file */
    int64_t size;
    char mime[64];
    char original_id[33];
    char *meta_json;             /* malloc'ed */
} bg_result_row;

bg_err bg_registry_result_insert(bg_registry *r, const bg_result_row *res);
/* By step then idx. malloc'ed; free with bg_registry_result_free. */
bg_err bg_registry_result_list(bg_registry *r, const char *assembly_id, bg_result_row **out,
                               size_t *n);
bg_err bg_registry_result_delete(bg_registry *r, const char *assembly_id);
void bg_registry_result_free(bg_result_row *res, size_t n);

typedef struct bg_event_row {
    int64_t id;                  /* assigned on insert: monotonic */
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char organization_id[BG_UUID_LEN + 1];
    char name[32];
    char *data;                  /* JSON text, malloc'ed */
    long long created_ms;
} bg_event_row;

/* Sets e->id. */
bg_err bg_registry_event_add(bg_registry *r, bg_event_row *e);
/* Events with id > after, oldest first, at most limit; assembly_id and
 * org may be NULL (any). malloc'ed; free with bg_registry_event_free. */
bg_err bg_registry_event_list(bg_registry *r, const char *assembly_id, const char *org,
                              int64_t after, size_t limit, bg_event_row **out, size_t *n);
void bg_registry_event_free(bg_event_row *e, size_t n);

typedef struct bg_webhook_row {
    int64_t id;
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char organization_id[BG_UUID_LEN + 1];
    char msg_id[100];
    char url[1024];
    char *payload;               /* malloc'ed */
    char state[12];              /* pending|delivered|failed|gone */
    int attempts;
    long long next_attempt_ms, created_ms;
    int last_status;
    char last_error[256];
} bg_webhook_row;

typedef struct bg_webhook_attempt {
    long long at_ms;
    int status;
    char error[256];
} bg_webhook_attempt;

/* Sets w->id. Errors: BG_ECONFLICT (msg_id exists). */
bg_err bg_registry_webhook_add(bg_registry *r, bg_webhook_row *w);
/* Pending deliveries due at now, oldest first. malloc'ed; free with
 * bg_registry_webhook_free. */
bg_err bg_registry_webhook_due(bg_registry *r, long long now_ms, size_t limit,
                               bg_webhook_row **out, size_t *n);
/* Earliest next_attempt_ms of a pending delivery (0 = none). */
bg_err bg_registry_webhook_next_due(bg_registry *r, long long *at_ms);
/* Records one attempt and the delivery's new state; call inside a
 * transaction so both land together. Errors: BG_ENOTFOUND (no such
 * delivery), BG_ECONFLICT (a state the schema refuses). */
bg_err bg_registry_webhook_attempt(bg_registry *r, int64_t id, const bg_webhook_attempt *a,
                                   const char *state, long long next_attempt_ms);
/* The newest delivery of an assembly, and its attempts (malloc'ed, may be
 * NULL). Errors: BG_ENOTFOUND. */
bg_err bg_registry_webhook_latest(bg_registry *r, const char *assembly_id, bg_webhook_row *out,
                                  bg_webhook_attempt **attempts, size_t *nattempts);
/* Counts by state: pending, delivered, failed, gone. */
bg_err bg_registry_webhook_counts(bg_registry *r, int64_t counts[4]);
void bg_registry_webhook_free(bg_webhook_row *w, size_t n);

/* ---- backup (registry/backup.c) ---- */

/* Copies the database at db_path (which a running branch may be using) to
 * dest_path with SQLite's online backup API: one consistent snapshot,
 * written to "<dest_path>.part" (mode 0600), switched to rollback
 * journalling so it is one self-contained file, checked with PRAGMA
 * integrity_check, synced, then renamed over dest_path. Nothing is left
 * behind on failure. err (errcap bytes) receives a message on failure.
 * Errors: BG_ENOTFOUND (no database at db_path), BG_EINVAL (not a
 * database; dest_path is the database itself or too long), BG_EBUSY
 * (locked past 10 s), BG_EIO (write, sync, rename or integrity failure),
 * BG_ENOMEM. Any thread; it opens its own connections. */
bg_err bg_registry_backup(const char *db_path, const char *dest_path, char *err, size_t errcap);

#endif
