/* node/assemblies.c with parse_create exported (shim/README.md). */
#include "node/assemblies.c"

#include "shim.h"

bg_err bg_fuzz_assembly_parse(bg_node *n, const json_t *body, bg_node_err *ne)
{
    create_in in;
    bg_err e = parse_create(n, body, &in, ne);
    free_create(&in);
    return e;
}
