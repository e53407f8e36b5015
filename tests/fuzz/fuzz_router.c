/*
 * fuzz_router — request routing (gateway/router.c bg_router_match) over the
 * real route table (gateway/routes.c), as gateway/middleware.c route()
 * calls it with the method and the normalised path, and
 * bg_route_param_get, which handlers use to read {id}, {name}...
 *
 * Input: "METHOD PATH" (the first space splits them).
 *
 * Invariants: a found route has that method and its pattern matches the
 * path; its parameters are non-empty slices of the path without '/'; a
 * 405 lists the methods in a NUL-terminated Allow value within its buffer;
 * a 404 means no pattern matches the path.
 */
#include "fuzz.h"

#include "gateway/gateway.h"
#include "gateway/router.h"

static void check_found(const bg_route *routes, const bg_route_match *m, const char *method,
                        size_t mlen, const char *path, size_t plen)
{
    const bg_route *r = m->route;
    FUZZ_CHECK(r == &routes[m->index]);
    FUZZ_CHECK(strlen(r->method) == mlen && memcmp(r->method, method, mlen) == 0);
    FUZZ_CHECK(bg_route_path_match(r->pattern, path, plen, NULL));
    FUZZ_CHECK(m->nparams >= 0 && m->nparams <= BG_ROUTE_MAX_PARAMS);
    for (int i = 0; i < m->nparams; i++) {
        const bg_route_param *p = &m->params[i];
        FUZZ_CHECK(p->value >= path && p->value + p->value_len <= path + plen);
        FUZZ_CHECK(p->value_len > 0 && memchr(p->value, '/', p->value_len) == NULL);
        char name[64];
        FUZZ_CHECK(p->name_len > 0 && p->name_len < sizeof(name));
        memcpy(name, p->name, p->name_len);
        name[p->name_len] = '\0';
        size_t len;
        FUZZ_CHECK(bg_route_param_get(m, name, &len) != NULL && len > 0);
    }
    size_t len;
    FUZZ_CHECK(bg_route_param_get(m, "no-such-param", &len) == NULL && len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sp = memchr(data, ' ', size);
    if (sp == NULL)
        return 0;
    size_t mlen = (size_t)(sp - data), plen = size - mlen - 1;
    char *method = malloc(mlen > 0 ? mlen : 1), *path = malloc(plen > 0 ? plen : 1);
    memcpy(method, data, mlen);
    memcpy(path, sp + 1, plen);
    size_t n;
    const bg_route *routes = bg_gw_routes(&n);
    static const size_t caps[] = {64, 8, 0};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        bg_route_match m;
        memset(&m, 0, sizeof(m));
        char allow[64];
        memset(allow, 'x', sizeof(allow));
        bg_route_result r =
            bg_router_match(routes, n, method, mlen, path, plen, &m, allow, caps[c]);
        if (r == BG_ROUTE_FOUND) {
            check_found(routes, &m, method, mlen, path, plen);
        } else if (r == BG_ROUTE_NO_METHOD) {
            if (caps[c] > 0)
                FUZZ_CHECK(memchr(allow, '\0', caps[c]) != NULL);
        } else {
            FUZZ_CHECK(r == BG_ROUTE_NO_PATH);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(!bg_route_path_match(routes[i].pattern, path, plen, NULL));
        }
    }
    free(path);
    free(method);
    return 0;
}
