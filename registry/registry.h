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

/* Reads one branch by name. org NULL matches any organisation; when that
 * finds several, BG_ECONFLICT. Errors: BG_ENOTFOUND. Free with
 * bg_registry_branch_clear. */
bg_err bg_registry_branch_get(bg_registry *r, const char *org, const char *name, bg_branch *out);

/* Branches with id > after_id in id order, at most limit (0 = all);
 * inactive ones only when include_inactive. Free with
 * bg_registry_branch_free. */
bg_err bg_registry_branch_list(bg_registry *r, bool include_inactive, int64_t after_id,
                               size_t limit, bg_branch **out, size_t *n);

/* Rewrites the mutable columns of the row with b->id (url, type, keys,
 * certificate, pin, is_active, verified). Errors: BG_ENOTFOUND. */
bg_err bg_registry_branch_update(bg_registry *r, const bg_branch *b);

/* Records a health observation on the row with id. */
bg_err bg_registry_branch_record_ping(bg_registry *r, int64_t id, long long at_ms, bool up,
                                      int64_t rtt_us, int64_t skew_ms, const char *error,
                                      bool verified);

void bg_registry_branch_clear(bg_branch *b);
void bg_registry_branch_free(bg_branch *arr, size_t n);

#endif
