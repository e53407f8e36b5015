/* gateway/routes.c — the route table: method, pattern, handler, auth kind,
 * body limit (0 = http.max_body_bytes), flags. Order matters only between
 * patterns that could match the same path. */
#include "gateway/handlers/handlers.h"

static const bg_route routes[] = {
    {"GET", "/", bg_h_index, BG_AUTH_PUBLIC, 0, 0, NULL},
    {"GET", "/healthz", bg_h_healthz, BG_AUTH_PUBLIC, 0, 0, NULL},
    {"GET", "/readyz", bg_h_readyz, BG_AUTH_PUBLIC, 0, 0, NULL},
    {"GET", "/metrics", bg_h_metrics, BG_AUTH_ADMIN, 0, BG_ROUTE_METRICS_AUTH, NULL},
    {"GET", "/api/v1/tokens", bg_h_tokens_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/tokens", bg_h_tokens_create, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    {"DELETE", "/api/v1/tokens/{id}", bg_h_tokens_revoke, BG_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/audit", bg_h_audit_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/branches", bg_h_branches_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/branches", bg_h_branches_create, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    {"GET", "/api/v1/branches/{name}", bg_h_branches_get, BG_AUTH_ADMIN, 0, 0, NULL},
    {"PATCH", "/api/v1/branches/{name}", bg_h_branches_patch, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    {"DELETE", "/api/v1/branches/{name}", bg_h_branches_delete, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/branches/{name}/ping", bg_h_branches_ping, BG_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/branches/{name}/status", bg_h_branches_status, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/branches/{name}/resync", bg_h_branches_resync, BG_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/organizations", bg_h_orgs_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/organizations", bg_h_orgs_create, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    {"GET", "/api/v1/organizations/{id}", bg_h_orgs_get, BG_AUTH_ADMIN, 0, 0, NULL},
    {"PATCH", "/api/v1/organizations/{id}", bg_h_orgs_patch, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON, NULL},
    {"POST", "/api/v1/organizations/{id}/webhook-secret", bg_h_orgs_rotate_secret, BG_AUTH_ADMIN,
     0, 0, NULL},
    {"GET", "/api/v1/organizations/{id}/users", bg_h_users_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/organizations/{id}/users", bg_h_users_create, BG_AUTH_ADMIN, 0,
     BG_ROUTE_JSON, NULL},
    {"GET", "/api/v1/organizations/{id}/users/{user_id}", bg_h_users_get, BG_AUTH_ADMIN, 0, 0,
     NULL},
    {"DELETE", "/api/v1/organizations/{id}/users/{user_id}", bg_h_users_delete, BG_AUTH_ADMIN, 0,
     0, NULL},
    {"POST", "/api/v1/organizations/{id}/sync", bg_h_orgs_sync, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON,
     NULL},
    {"POST", "/api/v1/organizations/{id}/share", bg_h_orgs_share, BG_AUTH_ADMIN, 0, BG_ROUTE_JSON,
     NULL},
    {"GET", "/api/v1/outbox", bg_h_outbox_list, BG_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/outbox/{id}/requeue", bg_h_outbox_requeue, BG_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/templates", bg_h_templates_list, BG_AUTH_USER, 0, 0, NULL},
    {"GET", "/api/v1/templates/{id}", bg_h_templates_get, BG_AUTH_USER, 0, 0, NULL},
    {"GET", "/api/v1/cross-branch/health", bg_h_cross_health, BG_AUTH_PEER, 0, 0, NULL},
    {"POST", "/api/v1/cross-branch/sync-organization", bg_h_cross_sync_org, BG_AUTH_PEER,
     8u << 20, BG_ROUTE_JSON, NULL},
    {"POST", "/api/v1/cross-branch/share-resource", bg_h_cross_share, BG_AUTH_PEER, 0,
     BG_ROUTE_JSON, NULL},
    {"POST", "/api/v1/cross-branch/register-branch", bg_h_branches_create, BG_AUTH_ADMIN, 0,
     BG_ROUTE_JSON, NULL},
    {"GET", "/api/v1/cross-branch/test-communication", bg_h_cross_test_communication,
     BG_AUTH_ADMIN, 0, 0, NULL},
};

const bg_route *bg_gw_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
