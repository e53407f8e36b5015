/* node/branches.c with validate_input and apply_patch exported
 * (shim/README.md). */
#include "node/branches.c"

#include "shim.h"

bg_err bg_fuzz_branch_validate(bg_node *n, const bg_branch_input *in, bg_node_err *ne)
{
    bg_branch b;
    memset(&b, 0, sizeof(b));
    bg_err e = validate_input(n, in, &b, ne);
    if (e == BG_OK) /* what bg_node_branch_register does next, short of the registry */
        seal_key(n, in->api_key, &b);
    return e;
}

bg_err bg_fuzz_branch_patch_check(bg_node *n, const bg_branch_patch *p, bg_node_err *ne)
{
    bg_branch b;
    memset(&b, 0, sizeof(b));
    bg_strlcpy(b.name, "peer", sizeof(b.name));
    bg_strlcpy(b.type, "master_branch", sizeof(b.type));
    bg_err e = apply_patch(n, p, &b, ne);
    bg_registry_branch_clear(&b);
    return e;
}
