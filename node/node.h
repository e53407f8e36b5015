/*
 * node/node.h — the branch runtime: configuration, keys, the worker pool,
 * the admin-token snapshot, and (in later modules) the background threads
 * that plug in here: peer client, scheduler, media workers.
 *
 * Thread rules: bg_node_create/destroy run on the main thread. Functions
 * marked "any thread" read in-memory state only and are safe on event-loop
 * threads; functions that take a bg_registry run on a worker thread.
 */
#ifndef BG_NODE_H
#define BG_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "node/config.h"
#include "node/pool.h"
#include "proto/err.h"
#include "proto/sig.h"
#include "registry/registry.h"

#define BG_VERSION "0.1.0"
#define BG_ADMIN_TOKEN_PREFIX "bga_"
#define BG_DB_FILE "branchgate.db"

typedef struct bg_node bg_node;

/* ---- data directory (init) ---- */

typedef struct bg_init_opts {
    const char *data_dir;
    const char *name;
    const char *type; /* "top_branch" | "master_branch" */
    const char *url;  /* may be NULL or "" */
} bg_init_opts;

/* True when dir holds an initialised branch (its database exists). */
bool bg_node_is_initialised(const char *dir);

/* Creates DIR (0700) with branchgate.json, master.key (0600, 32 random
 * bytes), the Ed25519 signing key (sealed with a key derived from
 * master.key) and its public half, the database with its schema, and one
 * admin token stored only as a keyed hash; the token is written to
 * DIR/admin.token (0600) and copied into token_out (BG_TOKEN_MAX bytes) for
 * the caller to print once. Errors: BG_ECONFLICT (already initialised),
 * BG_EINVAL (bad name/type/url; message in err), BG_EIO. Main thread. */
bg_err bg_node_init_datadir(const bg_init_opts *o, char token_out[BG_TOKEN_MAX], char *err,
                            size_t errcap);

/* ---- runtime ---- */

/* Loads keys from cfg's data dir, migrates the database, loads the admin
 * token snapshot and starts the worker pool. data_dir must be initialised.
 * Errors: BG_EIO (message logged), BG_EINVAL. Main thread. */
bg_err bg_node_create(const bg_config *cfg, const char *data_dir, bg_node **out);

/* Starts the background threads that need the branch's final URL: the
 * peer client and the health pinger. Call once, after the gateway has
 * bound its listener (bg_node_set_url). Errors: BG_EINTERNAL. Main. */
bg_err bg_node_start(bg_node *n);

/* Stops the pinger, the pool (running queued tasks first) and wipes keys. Accepts
 * NULL. Main thread, after every event loop has stopped. */
void bg_node_destroy(bg_node *n);

const bg_config *bg_node_config(const bg_node *n);
const char *bg_node_data_dir(const bg_node *n);
bg_pool *bg_node_pool(bg_node *n);

/* The branch's public URL (config branch.url, else set by the gateway from
 * the bound address). Any thread after start-up. */
const char *bg_node_url(const bg_node *n);
void bg_node_set_url(bg_node *n, const char *url);

/* Writes DIR/listen.url (the bound address, e.g. http://127.0.0.1:41234)
 * and, with a TLS listener, DIR/tls.url, atomically, so a reader never
 * sees half a URL; removes them. Main thread. */
bg_err bg_node_publish_listen_url(const bg_node *n, const char *url, const char *tls_url);
void bg_node_unpublish_listen_url(const bg_node *n);

/* Start time (unix ms). */
long long bg_node_started_ms(const bg_node *n);

/* ---- media templates ---- */

/* The bundled templates loaded at start (a JSON array, borrowed, never
 * changed after start: any thread may read it). */
const json_t *bg_node_templates(const bg_node *n);

/* ---- admin tokens ---- */

/* Checks a presented admin token against the snapshot in constant time
 * (every stored hash is compared, match or not). On success copies the
 * token's id (or "env" for BRANCHGATE_ADMIN_TOKEN) into id_out (37 bytes).
 * Errors: BG_EFORBIDDEN. Any thread. */
bg_err bg_node_admin_check(bg_node *n, const char *token, size_t len, char id_out[BG_UUID_LEN + 1]);

/* Re-reads the active admin token hashes into the snapshot. Worker thread
 * (or the main thread at start-up). */
bg_err bg_node_tokens_reload(bg_node *n, bg_registry *reg);

/* Creates an admin token: random secret, keyed hash inserted together with
 * an audit record in one transaction, snapshot reloaded. The secret goes to
 * token_out only. Errors: BG_EINVAL (label), BG_EBUSY, BG_EIO. Worker. */
bg_err bg_node_token_create(bg_node *n, bg_registry *reg, const char *label, const char *actor,
                            const char *request_id, char token_out[BG_TOKEN_MAX],
                            bg_admin_token *rec_out);

/* Revokes a token (audit record in the same transaction), reloads the
 * snapshot. Errors: BG_ENOTFOUND, BG_EBUSY, BG_EIO. Worker. */
bg_err bg_node_token_revoke(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                            const char *request_id);

/* Keyed hash of a token, as stored at rest. Any thread. */
void bg_node_token_hash(const bg_node *n, const char *token, size_t len,
                        uint8_t out[BG_HASH_BYTES]);

/* Versions of the libraries node/ owns (libcurl, libav), one line each,
 * into buf. */
void bg_node_lib_versions(char *buf, size_t cap);

#endif
