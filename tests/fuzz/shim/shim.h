/*
 * tests/fuzz/shim/shim.h — the static node/ parsers exported to
 * fuzz_node_bodies (shim/README.md). Each wrapper runs the function as its
 * only caller does and frees what it allocated.
 */
#ifndef BG_FUZZ_SHIM_H
#define BG_FUZZ_SHIM_H

#include <jansson.h>
#include <stddef.h>

#include "node/branches.h"
#include "node/node.h"
#include "node/pipeline.h"
#include "registry/registry.h"

/* node/assemblies.c parse_create: the body of POST /api/v1/assemblies. */
bg_err bg_fuzz_assembly_parse(bg_node *n, const json_t *body, bg_node_err *ne);

/* node/uploads.c parse_meta: Upload-Metadata of POST /api/v1/uploads. */
bg_err bg_fuzz_upload_meta(const char *md, size_t len, char filename[256], bg_node_err *ne);

/* node/branches.c validate_input (POST /api/v1/branches, register-branch),
 * and the checks bg_node_branch_update applies to a PATCH. */
bg_err bg_fuzz_branch_validate(bg_node *n, const bg_branch_input *in, bg_node_err *ne);
bg_err bg_fuzz_branch_patch_check(bg_node *n, const bg_branch_patch *p, bg_node_err *ne);

/* node/orgs.c check_resource (share, share-resource) and the snapshot
 * readers of sync-organization (wire_org, wire_user, license_status). */
bg_err bg_fuzz_org_resource(json_t *r, bg_node_err *ne);
bg_err bg_fuzz_org_snapshot(json_t *body, bg_node_err *ne);

/* node/licenses.c issue_payload (POST /api/v1/licenses) and check_local
 * (validate, validate-license). */
bg_err bg_fuzz_license_issue(bg_node *n, bg_registry *reg, json_t *body, bg_node_err *ne);
int bg_fuzz_license_check(bg_node *n, const char *key, const char *domain,
                          const uint8_t pk[BG_ED25519_PK_BYTES]);

#endif
