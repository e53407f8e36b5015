/*
 * node/branches.h — peer branches: registration and changes (worker
 * threads), the in-memory snapshot the event loops authenticate inbound
 * peer calls against (any thread, no SQLite), per-peer rate limits, and
 * calls to peers (keys decrypted only for the call).
 */
#ifndef BG_NODE_BRANCHES_H
#define BG_NODE_BRANCHES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "node/node.h"
#include "node/peer.h"
#include "registry/registry.h"

#define BG_PEER_KEY_MIN 16
#define BG_MAX_HOPS 4

/* A validation or lookup failure with an API code ("INVALID_URL"). */
typedef struct bg_node_err {
    const char *code;
    char message[200];
} bg_node_err;

/* Registration input, as parsed from JSON (strings borrowed). */
typedef struct bg_branch_input {
    const char *name, *url, *type, *api_key, *organization_id, *ssl_certificate, *spki_pin;
} bg_branch_input;

/* PATCH input: NULL fields stay as they are; is_active < 0 unchanged. */
typedef struct bg_branch_patch {
    const char *url, *type, *api_key, *ssl_certificate, *spki_pin;
    int is_active;
} bg_branch_patch;

/* Registers a peer (validation, key sealed and hashed, audit record, one
 * transaction), then rebuilds the snapshot. Errors: BG_EINVAL (code in
 * e), BG_ECONFLICT (BRANCH_EXISTS), BG_EBUSY, BG_EIO. Worker. */
bg_err bg_node_branch_register(bg_node *n, bg_registry *reg, const bg_branch_input *in,
                               const char *actor, const char *request_id, bg_branch *out,
                               bg_node_err *e);

/* Applies a PATCH (key rotation included). Errors as above, plus
 * BG_ENOTFOUND. Worker. */
bg_err bg_node_branch_update(bg_node *n, bg_registry *reg, const char *org, const char *name,
                             const bg_branch_patch *p, const char *actor, const char *request_id,
                             bg_branch *out, bg_node_err *e);

/* Rebuilds the inbound snapshot from the registry. Worker or main. */
bg_err bg_node_branches_reload(bg_node *n, bg_registry *reg);

/* The branch object of the API (never a key). New reference. Any thread. */
json_t *bg_node_branch_json(const bg_branch *b);

/* ---- inbound (any thread, constant work) ---- */

typedef struct bg_peer_identity {
    int64_t id;
    char name[64];
    char organization_id[BG_UUID_LEN + 1];
    char type[16];
    char url[512];
} bg_peer_identity;

/* Authenticates an inbound call: the origin is normalised and looked up
 * among the registered branches, the token's keyed hash compared in
 * constant time with the stored one (or a dummy). Unknown origin,
 * inactive branch and wrong key do the same work and all return
 * BG_EFORBIDDEN. */
bg_err bg_node_peer_authenticate(bg_node *n, const char *origin, size_t olen, const char *token,
                                 size_t tlen, bg_peer_identity *out);

/* Token bucket per peer: 0 to proceed, else seconds until a retry. */
unsigned bg_node_peer_ratelimit(bg_node *n, int64_t branch_id);

/* ---- outbound ---- */

/* Fills a call to a registered branch (key decrypted into secret memory).
 * Errors: BG_ENOTFOUND, BG_EIO (key cannot be opened). Worker. */
bg_err bg_node_branch_target(bg_node *n, const bg_branch *b, bg_peer_target *out);

/* The node's peer client. */
bg_peer_client *bg_node_peer_client(bg_node *n);

/* Prepares the health call to b (key decrypted into req). Errors: BG_EIO.
 * Worker. */
bg_err bg_node_ping_request(bg_node *n, const bg_branch *b, const char *request_id,
                            bg_peer_request *req);

/* Records the outcome of a health call (send_err from bg_peer_send, or
 * BG_OK with res) in the registry and in memory; returns the result
 * object {"branch_name","ok","status","latency_ms","error"} (new
 * reference). Takes res->body. Worker or pinger thread. */
json_t *bg_node_ping_record(bg_node *n, bg_registry *reg, const bg_branch *b, bg_err send_err,
                            bg_peer_result *res);

/* Pings every active branch in parallel, records results; returns
 * {"results":[...]} (new reference). Worker or pinger thread. */
json_t *bg_node_branch_ping_all(bg_node *n, bg_registry *reg, const char *request_id);

/* Live peer status for /metrics: appends Prometheus lines. Any thread. */
void bg_node_peer_metrics(bg_node *n, char **buf, size_t *len);

#endif
