/*
 * fuzz_json_body — the body of every JSON route (DESIGN section 5), as the
 * gateway reads it: gateway/middleware.c parse_body() hands the raw body
 * to bg_json_parse_object for every route flagged BG_ROUTE_JSON, then each
 * handler reads its fields with the proto/json.c getters. The handlers'
 * field tables are inline in the gateway/handlers/ files and not callable alone, so
 * the tables below repeat them (key, required, bounds) and run the same
 * getters on the parsed body; keep them in step with the handlers.
 *
 * Invariants: a refused body leaves a NUL-terminated message; an accepted
 * one is an object no deeper than BG_JSON_MAX_DEPTH whose compact dump
 * parses back to the same dump; a getter that succeeds returns a value
 * inside its bounds (strings without NUL).
 */
#include "fuzz.h"

#include <jansson.h>

#include "proto/json.h"

typedef enum { F_STR, F_INT, F_BOOL } fkind;

typedef struct field {
    const char *route; /* for the reader only */
    const char *key;
    fkind kind;
    bool required;
    int64_t min, max; /* string length or integer bounds */
} field;

/* From gateway/handlers/{tokens,branches,orgs,licenses,auth}.c. */
static const field fields[] = {
    {"POST /api/v1/tokens", "label", F_STR, false, 1, 64},
    {"POST /api/v1/branches", "branch_name", F_STR, true, 0, 63},
    {"POST /api/v1/branches", "branch_url", F_STR, true, 0, 511},
    {"POST /api/v1/branches", "branch_type", F_STR, true, 0, 15},
    {"POST /api/v1/branches", "api_key", F_STR, true, 0, 256},
    {"POST /api/v1/branches", "organization_id", F_STR, false, 0, 36},
    {"POST /api/v1/branches", "ssl_certificate", F_STR, false, 0, 65536},
    {"POST /api/v1/branches", "spki_pin", F_STR, false, 0, 127},
    {"PATCH /api/v1/branches/{name}", "is_active", F_BOOL, false, 0, 0},
    {"POST /api/v1/organizations", "name", F_STR, true, 0, 200},
    {"POST /api/v1/organizations", "parent_id", F_STR, false, 0, 36},
    {"POST /api/v1/organizations", "home_branch", F_STR, false, 0, 63},
    {"POST /api/v1/organizations/{id}/users", "email", F_STR, true, 0, 1024},
    {"POST /api/v1/organizations/{id}/users", "name", F_STR, true, 0, 1024},
    {"POST /api/v1/organizations/{id}/users", "password", F_STR, true, 0, 4096},
    {"POST /api/v1/organizations/{id}/users", "role", F_STR, false, 0, 64},
    {"POST /api/v1/organizations/{id}/users", "home_branch", F_STR, false, 0, 256},
    {"POST /api/v1/licenses/validate", "license_key", F_STR, true, 1, 8192},
    {"POST /api/v1/licenses/validate", "domain", F_STR, true, 1, 255},
    {"POST /api/v1/auth/login", "email", F_STR, true, 1, 254},
    {"POST /api/v1/auth/login", "password", F_STR, true, 1, 4096},
    {"POST /api/v1/auth/login", "organization_id", F_STR, false, 36, 36},
    {"POST /api/v1/assemblies", "template_id", F_STR, true, 1, 128},
    {"POST /api/v1/assemblies", "notify_url", F_STR, false, 1, 1000},
};

static void check_msg(const bg_json_err *e)
{
    FUZZ_CHECK(memchr(e->message, '\0', sizeof(e->message)) != NULL);
}

static void get_field(const json_t *o, const field *f)
{
    bg_json_err e;
    memset(&e, 0x41, sizeof(e));
    bg_err rc;
    if (f->kind == F_STR) {
        const char *v = NULL;
        rc = bg_json_get_str(o, f->key, f->required, (size_t)f->min, (size_t)f->max, &v, &e);
        if (rc == BG_OK) {
            size_t n = strlen(v);
            FUZZ_CHECK(n >= (size_t)f->min && n <= (size_t)f->max);
            FUZZ_CHECK(n == json_string_length(json_object_get(o, f->key)));
        }
    } else if (f->kind == F_INT) {
        int64_t v = 0;
        rc = bg_json_get_int(o, f->key, f->required, f->min, f->max, &v, &e);
        if (rc == BG_OK)
            FUZZ_CHECK(v >= f->min && v <= f->max);
    } else {
        bool v;
        rc = bg_json_get_bool(o, f->key, f->required, &v, &e);
    }
    FUZZ_CHECK(rc == BG_OK || rc == BG_EINVAL || (rc == BG_ENOTFOUND && !f->required));
    if (rc == BG_EINVAL)
        check_msg(&e);
}

/* Every member once more with the widest bounds and each kind, and with
 * bounds taken from its own value so both edges are reached. */
static void get_members(const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        int64_t x = json_is_integer(v) ? json_integer_value(v) : 0;
        field wide[] = {
            {"", k, F_STR, true, 0, INT64_MAX},
            {"", k, F_STR, true, (int64_t)n, (int64_t)n},
            {"", k, F_STR, true, (int64_t)n + 1, INT64_MAX},
            {"", k, F_INT, true, INT64_MIN, INT64_MAX},
            {"", k, F_INT, true, x, x},
            {"", k, F_INT, false, x == INT64_MIN ? x : x - 1, x == INT64_MIN ? x : x - 1},
            {"", k, F_BOOL, true, 0, 0},
        };
        for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
            get_field(o, &wide[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *o = NULL;
    bg_json_err e;
    memset(&e, 0x41, sizeof(e));
    if (bg_json_parse_object((const char *)data, size, &o, &e) != BG_OK) {
        check_msg(&e);
        return 0;
    }
    FUZZ_CHECK(json_is_object(o));
    FUZZ_CHECK(bg_json_depth(o) <= BG_JSON_MAX_DEPTH);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        get_field(o, &fields[i]);
    get_members(o);

    /* What the branch stores and forwards must read back the same. */
    size_t len;
    char *dump = bg_json_dump(o, &len);
    FUZZ_CHECK(dump != NULL && len == strlen(dump));
    json_t *again = NULL;
    FUZZ_CHECK(bg_json_parse_object(dump, len, &again, &e) == BG_OK);
    char *dump2 = bg_json_dump(again, NULL);
    FUZZ_CHECK(strcmp(dump, dump2) == 0);
    free(dump2);
    free(dump);
    json_decref(again);
    json_decref(o);
    return 0;
}
