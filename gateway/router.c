#include "router.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Walks pattern and path segment by segment. A "{x}" pattern segment
 * captures one non-empty path segment; everything else must be equal. */
int bg_route_path_match(const char *pattern, const char *path, size_t plen, bg_route_match *m)
{
    const char *p = pattern, *s = path, *end = path + plen;
    int np = 0;
    while (*p != '\0' && s < end) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (close == NULL)
                return 0;
            if (seg_end == NULL)
                seg_end = end;
            if (seg_end == s || np >= BG_ROUTE_MAX_PARAMS)
                return 0;
            if (m != NULL) {
                m->params[np].name = p + 1;
                m->params[np].name_len = (size_t)(close - p - 1);
                m->params[np].value = s;
                m->params[np].value_len = (size_t)(seg_end - s);
            }
            np++;
            p = close + 1;
            s = seg_end;
        } else {
            if (*p != *s)
                return 0;
            p++;
            s++;
        }
    }
    if (*p != '\0' || s != end)
        return 0;
    if (m != NULL)
        m->nparams = np;
    return 1;
}

static void allow_add(char *allow, size_t cap, const char *method)
{
    size_t len = strlen(allow);
    if (strstr(allow, method) != NULL) /* methods are distinct words */
        return;
    /* Whole names only: a name cut short by the buffer would announce a
     * method that does not exist ("GET, PU"). */
    if (len + (len > 0 ? 2 : 0) + strlen(method) + 1 > cap)
        return;
    snprintf(allow + len, cap - len, "%s%s", len > 0 ? ", " : "", method);
}

bg_route_result bg_router_match(const bg_route *routes, size_t n, const char *method, size_t mlen,
                                const char *path, size_t plen, bg_route_match *m, char *allow,
                                size_t allow_cap)
{
    int path_seen = 0;
    if (allow_cap > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        bg_route_match tmp;
        if (!bg_route_path_match(routes[i].pattern, path, plen, &tmp))
            continue;
        if (strlen(routes[i].method) == mlen && memcmp(routes[i].method, method, mlen) == 0) {
            *m = tmp;
            m->route = &routes[i];
            m->index = (int)i;
            return BG_ROUTE_FOUND;
        }
        path_seen = 1;
        if (allow_cap > 0)
            allow_add(allow, allow_cap, routes[i].method);
    }
    return path_seen ? BG_ROUTE_NO_METHOD : BG_ROUTE_NO_PATH;
}

const char *bg_route_param_get(const bg_route_match *m, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (int i = 0; i < m->nparams; i++) {
        if (m->params[i].name_len == nlen && memcmp(m->params[i].name, name, nlen) == 0) {
            *len = m->params[i].value_len;
            return m->params[i].value;
        }
    }
    *len = 0;
    return NULL;
}
