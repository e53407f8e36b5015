/* node/licenses.c with issue_payload and check_local exported
 * (shim/README.md). */
#include "node/licenses.c"

#include "shim.h"

bg_err bg_fuzz_license_issue(bg_node *n, bg_registry *reg, json_t *body, bg_node_err *ne)
{
    json_t *p = NULL;
    bg_err e = issue_payload(n, reg, body, &p, ne);
    if (e == BG_OK) {
        /* What bg_node_license_issue signs and answers. */
        char *token = bg_license_sign(BG_LICENSE_PREFIX, p, n->sign_sk);
        json_decref(license_obj(p, token, "active"));
        free(token);
    }
    json_decref(p);
    return e;
}

int bg_fuzz_license_check(bg_node *n, const char *key, const char *domain,
                          const uint8_t pk[BG_ED25519_PK_BYTES])
{
    json_t *payload = NULL;
    const char *detail = NULL;
    bg_license_code c = check_local(n, key, domain, pk, &payload, &detail);
    json_decref(payload);
    return (int)c;
}
