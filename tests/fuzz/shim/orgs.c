/* node/orgs.c with check_resource and the snapshot readers of apply_sync
 * exported (shim/README.md). */
#include "node/orgs.c"

#include "shim.h"

bg_err bg_fuzz_org_resource(json_t *r, bg_node_err *ne)
{
    return check_resource(r, ne);
}

/* apply_sync up to its first registry call, then every user as it would
 * read them, and the license fields it checks. */
bg_err bg_fuzz_org_snapshot(json_t *body, bg_node_err *ne)
{
    bg_org o;
    json_t *users = json_object_get(body, "users");
    if (wire_org(json_object_get(body, "organization"), &o, ne) != BG_OK)
        return BG_EINVAL;
    if (users != NULL && (!json_is_array(users) || json_array_size(users) > 10000))
        return bg_node_errf(ne, "INVALID_SNAPSHOT", "users must be a list of at most 10000");
    size_t i;
    json_t *ju;
    json_array_foreach(users, i, ju)
    {
        bg_user u;
        if (wire_user(ju, o.id, &u, ne) != BG_OK)
            return BG_EINVAL;
    }
    json_t *lic = json_object_get(body, "license");
    const char *lic_status = json_string_value(json_object_get(body, "license_status"));
    if (lic_status != NULL && strcmp(lic_status, "active") != 0 &&
        strcmp(lic_status, "revoked") != 0)
        return bg_node_errf(ne, "INVALID_SNAPSHOT", "license_status must be active or revoked");
    if (lic != NULL && !json_is_null(lic) && !json_is_string(lic))
        return bg_node_errf(ne, "INVALID_SNAPSHOT", "license must be a license key or null");
    return BG_OK;
}
