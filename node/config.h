/*
 * node/config.h — the branch's configuration.
 *
 * Sources, later ones winning: embedded defaults, the JSON config file
 * (default DIR/branchgate.json), environment variables, command-line flags.
 * Every dotted key has an environment name: upper-case the path, dots to
 * underscores, prefix BRANCHGATE_ (http.threads → BRANCHGATE_HTTP_THREADS).
 * An unknown key, a wrong type or a value out of bounds is an error whose
 * message names the key and where it came from.
 *
 * A bg_config is plain caller-owned storage, filled once at start-up by the
 * main thread and read-only afterwards (any thread may read it).
 */
#ifndef BG_NODE_CONFIG_H
#define BG_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define BG_DEFAULT_DATA_DIR "./branchgate-data"
#define BG_CONFIG_FILE "branchgate.json"

typedef struct bg_config {
    char branch_name[64];
    char branch_type[16];   /* "top_branch" | "master_branch" */
    char branch_url[512];   /* public URL; empty = http://<listen address> */
    char listen[300];       /* HOST:PORT, port 0 picks a free one */
    int64_t http_threads;   /* event loops; 0 = number of cores */
    int64_t http_max_body_bytes;
    int64_t http_req_timeout_ms;
    int64_t workers_threads; /* 0 = number of cores (at least 2) */
    int64_t workers_queue_max;
    int64_t db_busy_timeout_ms;
    char db_synchronous[8]; /* "normal" | "full" */
    char log_level[8];
    bool log_access;
    bool metrics_public;
    int64_t shutdown_drain_ms;
    int64_t shutdown_idle_grace_ms;
    char admin_token[128];  /* extra admin token from the environment; secret */
    int64_t peers_ping_interval_ms;
    int64_t peers_connect_timeout_ms;
    int64_t peers_timeout_ms;
    int64_t peers_rate_limit_rps; /* inbound calls per second per peer */
    int64_t peers_rate_burst;
    int64_t peers_breaker_failures;
    int64_t peers_breaker_open_ms;
    int64_t auth_pwhash_opslimit;
    int64_t auth_pwhash_memlimit_kib;
    int64_t outbox_give_up_after_s;
    int64_t outbox_backoff_max_s;
    int64_t outbox_idempotency_ttl_s;
    int64_t sync_batch_users;
    int64_t licenses_cache_ttl_s;
    int64_t licenses_grace_days;
    int64_t auth_token_ttl_s;
    int64_t auth_login_per_min;
    char templates_dir[1024]; /* bundled media templates (*.json) */
    int64_t uploads_max_size;        /* Tus-Max-Size */
    int64_t uploads_chunk_max_bytes; /* largest PATCH body */
    int64_t uploads_expire_after_s;
    int64_t jobs_workers;            /* media workers; 0 = cores */
    int64_t jobs_lease_s;
    int64_t jobs_max_receive;
    int64_t jobs_backoff_unit_ms;
    int64_t jobs_org_concurrency;
    char webhooks_schedule[128];     /* "5s,5m,30m,2h,5h,10h" */
    int64_t webhooks_timeout_ms;
    int64_t sse_heartbeat_s;
    int64_t sse_max_age_s;
    char tls_listen[300];   /* HOST:PORT of the TLS listener; "" = none */
    char tls_cert[1024];    /* PEM certificate chain file */
    char tls_key[1024];     /* PEM private key file */
} bg_config;

typedef struct bg_config_err {
    char message[320];
} bg_config_err;

/* Fills c with the embedded defaults. Never fails. */
void bg_config_defaults(bg_config *c);

/* Applies the JSON object in the file at path. Errors: BG_ENOTFOUND (no
 * such file; message set), BG_EINVAL (unreadable, malformed, unknown key,
 * wrong type, out of bounds; message names the key). */
bg_err bg_config_apply_file(bg_config *c, const char *path, bg_config_err *e);

/* Applies every BRANCHGATE_* variable that names a key. Errors: BG_EINVAL
 * with the key and the variable in the message. */
bg_err bg_config_apply_env(bg_config *c, bg_config_err *e);

/* Sets one dotted key from text (command-line flags). `source` is named in
 * error messages ("--listen"). Errors: BG_EINVAL, or BG_ENOTFOUND for a
 * key that does not exist. */
bg_err bg_config_set(bg_config *c, const char *key, const char *value, const char *source,
                     bg_config_err *e);

/* Resolves derived values (cores for threads = 0). Call after all sources
 * are applied. ncores is the number of online CPUs. */
void bg_config_finish(bg_config *c, int ncores);

/* Writes the branch identity keys into the config file at path, keeping
 * any other keys already there; mode 0644, atomically (temp file, fsync,
 * rename). Errors: BG_EIO. */
bg_err bg_config_write_identity(const bg_config *c, const char *path);

/* Environment variable name of a dotted key into buf. */
void bg_config_env_name(const char *key, char *buf, size_t cap);

#endif
