/*
 * gateway/router.h — the route table and its matcher.
 *
 * A route declares its method, a path pattern whose "{name}" segments
 * capture one non-empty path segment, the handler, the authentication kind
 * and the body limit. Matching is pure (no h2o, no allocation) so it is
 * unit-tested directly. Any thread.
 */
#ifndef BG_GATEWAY_ROUTER_H
#define BG_GATEWAY_ROUTER_H

#include <stddef.h>

#define BG_ROUTE_MAX_PARAMS 4

typedef enum bg_auth_kind {
    BG_AUTH_PUBLIC = 0,
    BG_AUTH_ADMIN,
    BG_AUTH_PEER,
    BG_AUTH_USER,
} bg_auth_kind;

/* Route flags. */
#define BG_ROUTE_JSON 0x1u        /* the body must be a JSON object */
#define BG_ROUTE_METRICS_AUTH 0x2u /* admin unless metrics.public */
#define BG_ROUTE_UPLOAD 0x4u      /* body cap is uploads.chunk_max_bytes */

struct bg_reqctx;
typedef void (*bg_handler_fn)(struct bg_reqctx *rc);
/* Rate-limit hook: 0 lets the request through, otherwise the number of
 * seconds after which the client may retry (answered as 429). */
typedef unsigned (*bg_ratelimit_fn)(struct bg_reqctx *rc);

typedef struct bg_route {
    const char *method;
    const char *pattern;
    bg_handler_fn handler;
    bg_auth_kind auth;
    size_t body_limit;   /* 0 = http.max_body_bytes */
    unsigned flags;
    bg_ratelimit_fn ratelimit; /* NULL = none */
} bg_route;

typedef struct bg_route_param {
    const char *name; /* points into the pattern, not NUL-terminated */
    size_t name_len;
    const char *value; /* points into the request path */
    size_t value_len;
} bg_route_param;

typedef struct bg_route_match {
    const bg_route *route;
    int index; /* position in the table */
    int nparams;
    bg_route_param params[BG_ROUTE_MAX_PARAMS];
} bg_route_match;

typedef enum bg_route_result {
    BG_ROUTE_FOUND = 0,
    BG_ROUTE_NO_PATH,   /* 404 */
    BG_ROUTE_NO_METHOD, /* 405: allow lists the methods that exist */
} bg_route_result;

/* True when path (no query) matches pattern; fills params when non-NULL. */
int bg_route_path_match(const char *pattern, const char *path, size_t plen, bg_route_match *m);

/* Finds the route for method + path. On BG_ROUTE_NO_METHOD, allow receives
 * a comma-separated list of methods for that path ("GET, POST"). */
bg_route_result bg_router_match(const bg_route *routes, size_t n, const char *method, size_t mlen,
                                const char *path, size_t plen, bg_route_match *m, char *allow,
                                size_t allow_cap);

/* Value of the named parameter, or NULL (len 0) when absent. */
const char *bg_route_param_get(const bg_route_match *m, const char *name, size_t *len);

#endif
