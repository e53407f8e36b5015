/* node/uploads.c with parse_meta exported (shim/README.md). */
#include "node/uploads.c"

#include "shim.h"

bg_err bg_fuzz_upload_meta(const char *md, size_t len, char filename[256], bg_node_err *ne)
{
    meta_in m;
    bg_err e = parse_meta(md, len, &m, ne);
    if (e == BG_OK)
        memcpy(filename, m.filename, sizeof(m.filename));
    return e;
}
