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

#endif
