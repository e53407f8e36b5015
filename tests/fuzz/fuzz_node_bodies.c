/*
 * fuzz_node_bodies — the node-level readers of route bodies: what happens to
 * a JSON body after gateway/middleware.c has parsed it and the handler has
 * picked its fields (fuzz_json_body covers those two steps). The static
 * parse and validate functions of node/ are reached through tests/fuzz/shim
 * (each shim is the node/ file itself plus one exported wrapper), over a
 * node struct that holds only what they read (config, URL, keys) and a
 * registry in a temp directory with one organisation
 * (00000000-0000-4000-8000-000000000001).
 *
 * Input: a first line naming the route, then the body:
 *   assemblies          POST /api/v1/assemblies                parse_create
 *   branches            POST /api/v1/branches, register-branch  validate_input
 *   branches_patch      PATCH /api/v1/branches/{name}          apply_patch
 *   share               POST /api/v1/organizations/{id}/share  check_resource
 *   share_resource      POST /api/v1/cross-branch/share-resource  check_resource
 *   sync_organization   POST /api/v1/cross-branch/sync-organization  wire_org, wire_user
 *   licenses            POST /api/v1/licenses                  issue_payload
 *   licenses_validate   POST /api/v1/licenses/validate, validate-license  check_local
 *   uploads             POST /api/v1/uploads (the Upload-Metadata value)  parse_meta
 * The handlers' field tables are repeated as in fuzz_json_body.
 *
 * Invariants: a refusal sets an error code and a NUL-terminated message;
 * an accepted upload names a sanitised file.
 */
#include "fuzz.h"

#include <sodium.h>
#include <unistd.h>

#include "node/config.h"
#include "node/node_internal.h"
#include "proto/json.h"
#include "proto/license.h"
#include "proto/tus.h"
#include "shim/shim.h"

#define ORG_ID "00000000-0000-4000-8000-000000000001"

static struct bg_node node;
static bg_registry *reg;
static char dir[64];
static uint8_t seal_key[BG_KEY_BYTES], hash_key[BG_KEY_BYTES];
static uint8_t sign_pk[BG_ED25519_PK_BYTES], sign_sk[BG_ED25519_SK_BYTES];

static void cleanup(void)
{
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};
    bg_registry_close(reg);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void open_registry(void)
{
    char path[128];
    snprintf(dir, sizeof(dir), "/tmp/bg-fuzz-node-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(cleanup);
    snprintf(path, sizeof(path), "%s/fuzz.db", dir);
    if (bg_registry_open(path, NULL, &reg) != BG_OK ||
        bg_registry_migrate(reg, NULL, NULL) != BG_OK)
        abort();
    bg_org o;
    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "%s", ORG_ID);
    snprintf(o.name, sizeof(o.name), "fuzz");
    snprintf(o.home_branch, sizeof(o.home_branch), "main");
    o.version = 1;
    bool applied;
    if (bg_registry_org_upsert(reg, &o, &applied) != BG_OK)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bg_sig_init() != BG_OK)
        abort();
    bg_config_defaults(&node.cfg);
    bg_config_finish(&node.cfg, 2);
    snprintf(node.url, sizeof(node.url), "http://127.0.0.1:8080");
    memset(seal_key, 1, sizeof(seal_key));
    memset(hash_key, 2, sizeof(hash_key));
    node.peer_seal_key = seal_key;
    node.peer_hash_key = hash_key;
    uint8_t seed[crypto_sign_SEEDBYTES] = {0};
    crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
    node.sign_sk = sign_sk;
    memcpy(node.sign_pk, sign_pk, sizeof(sign_pk));
    open_registry();
    return 0;
}

static void check_err(bg_err e, const bg_node_err *ne)
{
    if (e != BG_OK)
        FUZZ_CHECK(memchr(ne->message, '\0', sizeof(ne->message)) != NULL);
}

/* A handler's copy_fields: false when a field is refused (400). */
typedef struct field {
    const char *key;
    bool required;
    size_t min, max;
} field;

static bool get_fields(const json_t *body, const field *f, size_t n, const char **out)
{
    for (size_t i = 0; i < n; i++) {
        bg_json_err je;
        out[i] = NULL;
        if (bg_json_get_str(body, f[i].key, f[i].required, f[i].min, f[i].max, &out[i], &je) ==
            BG_EINVAL)
            return false;
    }
    return true;
}

static void branches(json_t *body)
{
    static const field f[] = {
        {"branch_name", true, 0, 63},      {"branch_url", true, 0, 511},
        {"branch_type", true, 0, 15},      {"api_key", true, 0, BG_PEER_KEY_MAX},
        {"organization_id", false, 0, 36}, {"ssl_certificate", false, 0, 65536},
        {"spki_pin", false, 0, 127}};
    const char *v[7];
    if (!get_fields(body, f, 7, v))
        return;
    bg_branch_input in = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    bg_node_err ne = {0};
    check_err(bg_fuzz_branch_validate(&node, &in, &ne), &ne);
}

static void branches_patch(json_t *body)
{
    static const field f[] = {{"branch_url", false, 0, 511},
                              {"branch_type", false, 0, 15},
                              {"api_key", false, 0, BG_PEER_KEY_MAX},
                              {"ssl_certificate", false, 0, 65536},
                              {"spki_pin", false, 0, 127}};
    const char *v[5];
    bool active;
    bg_json_err je;
    if (!get_fields(body, f, 5, v))
        return;
    bg_err a = bg_json_get_bool(body, "is_active", false, &active, &je);
    if (a == BG_EINVAL)
        return;
    bg_branch_patch p = {v[0], v[1], v[2], v[3], v[4], a == BG_OK ? active : -1};
    bg_node_err ne = {0};
    check_err(bg_fuzz_branch_patch_check(&node, &p, &ne), &ne);
}

static void share(json_t *body)
{
    json_t *b = json_object_get(body, "branches");
    if (!json_is_array(b) || json_array_size(b) == 0 || json_array_size(b) > 100)
        return;
    json_t *resource = json_deep_copy(body);
    json_object_del(resource, "branches");
    json_object_del(resource, "organization_id");
    bg_node_err ne = {0};
    check_err(bg_fuzz_org_resource(resource, &ne), &ne);
    json_decref(resource);
}

static void licenses_validate(json_t *body)
{
    static const field f[] = {{"license_key", true, 1, 8192}, {"domain", true, 1, 255}};
    const char *v[2];
    if (!get_fields(body, f, 2, v))
        return;
    int code = bg_fuzz_license_check(&node, v[0], v[1], sign_pk);
    FUZZ_CHECK(code >= 0 && code < BG_LIC_CODE_COUNT_);
    char domain[256];
    bg_license_domain_normalize(v[1], false, domain, sizeof(domain));
}

static void uploads(const uint8_t *data, size_t size)
{
    char *md = malloc(size > 0 ? size : 1);
    memcpy(md, data, size);
    char name[256];
    bg_node_err ne = {0};
    bg_err e = bg_fuzz_upload_meta(md, size, name, &ne);
    check_err(e, &ne);
    if (e == BG_OK)
        FUZZ_CHECK(name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
                   strlen(name) <= BG_TUS_NAME_MAX);
    free(md);
}

static void json_route(const char *route, json_t *body)
{
    bg_node_err ne = {0};
    if (strcmp(route, "assemblies") == 0) {
        check_err(bg_fuzz_assembly_parse(&node, body, &ne), &ne);
    } else if (strcmp(route, "branches") == 0) {
        branches(body);
    } else if (strcmp(route, "branches_patch") == 0) {
        branches_patch(body);
    } else if (strcmp(route, "share") == 0) {
        share(body);
    } else if (strcmp(route, "share_resource") == 0) {
        check_err(bg_fuzz_org_resource(body, &ne), &ne);
    } else if (strcmp(route, "sync_organization") == 0) {
        check_err(bg_fuzz_org_snapshot(body, &ne), &ne);
    } else if (strcmp(route, "licenses") == 0) {
        check_err(bg_fuzz_license_issue(&node, reg, body, &ne), &ne);
    } else if (strcmp(route, "licenses_validate") == 0) {
        licenses_validate(body);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char route[32];
    const uint8_t *body;
    size_t len;
    if (!fuzz_split_line(data, size, route, sizeof(route), &body, &len))
        return 0;
    if (strcmp(route, "uploads") == 0) {
        uploads(body, len);
        return 0;
    }
    json_t *o = NULL;
    bg_json_err je;
    if (bg_json_parse_object((const char *)body, len, &o, &je) != BG_OK)
        return 0;
    json_route(route, o);
    json_decref(o);
    return 0;
}
