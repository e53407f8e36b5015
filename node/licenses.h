/*
 * node/licenses.h — licenses: issuing and revoking on the top branch,
 * validation (the top decides; a master checks signature, times and domain
 * itself, asks the top for the rest and caches the top's signed receipt),
 * and the organisation's license in sync snapshots.
 *
 * Worker threads (they take a bg_registry), except where stated.
 */
#ifndef BG_NODE_LICENSES_H
#define BG_NODE_LICENSES_H

#include <jansson.h>
#include <stdbool.h>

#include "node/branches.h"
#include "node/node.h"
#include "proto/license.h"
#include "registry/registry.h"

/* Issues a license (top branch only: BG_EFORBIDDEN NOT_TOP_BRANCH
 * elsewhere) from the API body; *out is the license object (new
 * reference). The change is queued to every branch the organisation is
 * shared with. */
bg_err bg_node_license_issue(bg_node *n, bg_registry *reg, json_t *body, const char *actor,
                             const char *request_id, json_t **out, bg_node_err *e);

/* The license object of a stored record (new reference). Errors:
 * BG_ENOTFOUND (LICENSE_NOT_FOUND). */
bg_err bg_node_license_get(bg_node *n, bg_registry *reg, const char *id, json_t **out,
                           bg_node_err *e);

/* Revokes; queued like an issue. Errors: BG_ENOTFOUND. */
bg_err bg_node_license_revoke(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                              const char *request_id, json_t **out, bg_node_err *e);

/* One validation in progress. */
typedef struct bg_license_check {
    char *key;                 /* the license key, malloc'ed */
    char domain[256];          /* normalised */
    bool done;                 /* result is final (answer it) */
    json_t *result;            /* the validation answer, when done */
    bg_peer_request top_call;  /* when !done: the question for the top */
} bg_license_check;

/* Stage 1. On the top, or when a master can answer alone (bad signature,
 * not yet valid, expired beyond grace, domain mismatch, or a receipt
 * younger than licenses.cache_ttl_s), c->done is set. Otherwise
 * c->top_call is ready to be sent. Errors: BG_EINVAL (request shape). */
bg_err bg_node_license_check_start(bg_node *n, bg_registry *reg, const char *key,
                                   const char *domain, bg_license_check *c, bg_node_err *e);

/* Stage 3 on a master: takes the top's answer (res may be a transport
 * failure), caches a valid receipt, or falls back to a cached receipt
 * within licenses.grace_days (VALID_CACHED) or UNAVAILABLE. Sets
 * c->result. */
void bg_node_license_check_finish(bg_node *n, bg_registry *reg, bg_license_check *c,
                                  bg_peer_result *res);

void bg_node_license_check_clear(bg_license_check *c);

/* The top's full evaluation for a peer (cross-branch/validate-license):
 * the answer with a signed receipt. New reference. */
json_t *bg_node_license_validate_top(bg_node *n, bg_registry *reg, const char *key,
                                     const char *domain);

/* The newest license token of an organisation (malloc'ed, or NULL) and
 * its status ("active" | "revoked") into status (8 bytes). */
char *bg_node_license_token_of(bg_registry *reg, const char *org, char status[8]);

/* Applies the license of a received snapshot (verified with the top's key
 * when known) with its status; *applied tells whether anything changed. */
bg_err bg_node_license_receive(bg_node *n, bg_registry *reg, const char *org, const char *token,
                               const char *status, bool *applied);

/* Counts a validation answer for /metrics (any thread). */
void bg_node_license_count(bg_node *n, const char *code);

/* This branch's public signing key as hex (65 bytes). Any thread. */
void bg_node_public_key_hex(const bg_node *n, char out[2 * BG_ED25519_PK_BYTES + 1]);

#endif
