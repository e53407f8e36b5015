/*
 * node/orgs.h — organisations and users: admin changes at the home branch
 * (each written to the outbox in the same transaction, for every branch
 * the organisation is shared with), explicit syncs and resyncs, shared
 * resources, and the receiving side of sync-organization and
 * share-resource with durable idempotency keys.
 *
 * Every function takes a bg_registry and runs on a worker thread (or the
 * outbox thread where stated). Errors come with an API code in bg_node_err.
 */
#ifndef BG_NODE_ORGS_H
#define BG_NODE_ORGS_H

#include <jansson.h>

#include "node/branches.h"
#include "node/node.h"
#include "registry/registry.h"

#define BG_DEFAULT_ORG "default"

typedef struct bg_org_input {
    const char *name, *parent_id, *home_branch;
} bg_org_input;

typedef struct bg_user_input {
    const char *email, *name, *password, *role, *home_branch;
} bg_user_input;

/* Creates an organisation homed here (or at in->home_branch) with a fresh
 * webhook secret. secret_out receives the secret text. */
bg_err bg_node_org_create(bg_node *n, bg_registry *reg, const bg_org_input *in, const char *actor,
                          const char *request_id, bg_org *out,
                          char secret_out[BG_WEBHOOK_SECRET_MAX + 1], bg_node_err *e);

/* Changes name and/or parent (NULL = unchanged, "" = no parent), bumps the
 * version, queues the change to every branch the organisation is shared
 * with. */
bg_err bg_node_org_update(bg_node *n, bg_registry *reg, const char *id, const char *name,
                          const char *parent_id, const char *actor, const char *request_id,
                          bg_org *out, bg_node_err *e);

/* Replaces the webhook secret; secret_out receives the new one. */
bg_err bg_node_org_rotate_secret(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                                 const char *request_id,
                                 char secret_out[BG_WEBHOOK_SECRET_MAX + 1], bg_node_err *e);

/* Opens an organisation's webhook secret (empty string when none). */
bg_err bg_node_org_secret(bg_node *n, const bg_org *o, char out[BG_WEBHOOK_SECRET_MAX + 1]);

/* Resolves the organisation an admin call means: the id when given, else
 * the "default" organisation. Errors: BG_ENOTFOUND (ORGANIZATION_NOT_FOUND). */
bg_err bg_node_org_resolve(bg_registry *reg, const char *id, bg_org *out, bg_node_err *e);

/* API objects. secret NULL leaves webhook_secret out. */
json_t *bg_node_org_json(const bg_org *o, const char *secret);
json_t *bg_node_user_json(const bg_user *u);

/* Creates a user (argon2id hash of the password) and queues it to every
 * branch the organisation is shared with. Errors include BG_ECONFLICT
 * (USER_EXISTS). */
bg_err bg_node_user_create(bg_node *n, bg_registry *reg, const char *org,
                           const bg_user_input *in, const char *actor, const char *request_id,
                           bg_user *out, bg_node_err *e);

/* Tombstones a user (new version) and queues the tombstone. */
bg_err bg_node_user_delete(bg_node *n, bg_registry *reg, const char *org, const char *user_id,
                           const char *actor, const char *request_id, bg_node_err *e);

/* Shares the organisation with the named branches (remembered for later
 * changes) and queues a full snapshot to each. *queued receives the
 * number of messages. */
bg_err bg_node_org_sync(bg_node *n, bg_registry *reg, const char *org, json_t *branch_names,
                        const char *actor, const char *request_id, size_t *queued,
                        bg_node_err *e);

/* Queues a full snapshot of every organisation shared with the branch. */
bg_err bg_node_branch_resync(bg_node *n, bg_registry *reg, const bg_branch *b,
                             const char *actor, const char *request_id, size_t *queued,
                             bg_node_err *e);

/* Queues a share-resource message (resource: the DESIGN section 6 body
 * without organization_id) to each named branch. */
bg_err bg_node_org_share(bg_node *n, bg_registry *reg, const char *org, json_t *branch_names,
                         json_t *resource, const char *actor, const char *request_id,
                         size_t *queued, bg_node_err *e);

/* ---- receiving side (worker) ---- */

/* Applies a sync-organization body from peer. The first answer to an
 * Idempotency-Key is stored in the same transaction and returned for
 * repeats. The answer goes to *status and *resp (a new reference). */
bg_err bg_node_sync_receive(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                            const char *idem_key, json_t *body, int *status, json_t **resp,
                            bg_node_err *e);

/* Stores a shared resource (template or assembly) for an organisation
 * this branch holds; 404 ORGANIZATION_NOT_FOUND otherwise. */
bg_err bg_node_share_receive(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                             const char *idem_key, json_t *body, int *status, json_t **resp,
                             bg_node_err *e);

/* Wakes the outbox sender (after a commit that queued messages). Any thread. */
void bg_node_outbox_wake(bg_node *n);

#endif
