/* gateway/cli_parent.c — `branchgate init --parent URL --parent-key KEY`:
 * before anything is written, the parent's public GET / (Accept:
 * application/json) gives its name and type; after init, the parent is
 * registered in the new branch's registry as a peer with the shared key,
 * exactly as POST /api/v1/branches would (sealed key, audit record). The
 * parent must register this branch with the same key on its side
 * (docs/cli.md). */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "gateway/cli_internal.h"
#include "node/branches.h"
#include "node/node.h"
#include "proto/mem.h"

int bg_cli_parent_probe(const char *url, char *name, size_t ncap, char *type, size_t tcap)
{
    bg_cli c;
    memset(&c, 0, sizeof(c));
    c.cmd = "init";
    c.timeout_ms = 10000;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof(c.base) ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        fprintf(stderr, "branchgate init: --parent must be the parent's http(s) URL\n");
        return BG_CLI_USAGE;
    }
    memcpy(c.base, url, n);
    c.base[n] = '\0';
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return BG_CLI_FAIL;
    c.curl_ready = true;
    static const char *const accept[] = {"Accept: application/json", NULL};
    bg_cli_resp r;
    bg_err e = bg_cli_call(&c, "GET", "/", accept, NULL, 0, &r);
    json_t *j = e == BG_OK && r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    const char *nm = json_string_value(json_object_get(j, "branch"));
    const char *ty = json_string_value(json_object_get(j, "branch_type"));
    int rc = BG_CLI_OK;
    if (nm == NULL || ty == NULL || strlen(nm) >= ncap || strlen(ty) >= tcap) {
        if (e != BG_OK)
            fprintf(stderr, "branchgate init: the parent at %s does not answer: %s\n", c.base,
                    r.error);
        else
            fprintf(stderr, "branchgate init: %s is not a branchgate branch (GET / answered %ld)\n",
                    c.base, r.status);
        rc = BG_CLI_FAIL;
    } else {
        bg_strlcpy(name, nm, ncap);
        bg_strlcpy(type, ty, tcap);
    }
    json_decref(j);
    bg_cli_resp_free(&r);
    bg_cli_close(&c);
    return rc;
}

int bg_cli_parent_register(const bg_config *cfg, const char *dir, const char *url,
                           const char *name, const char *type, const char *key)
{
    bg_node *node = NULL;
    bg_registry *reg = NULL;
    char db[4200];
    if (snprintf(db, sizeof(db), "%s/%s", dir, BG_DB_FILE) >= (int)sizeof(db) ||
        bg_node_create(cfg, dir, &node) != BG_OK ||
        bg_registry_open(db, NULL, &reg) != BG_OK) {
        fprintf(stderr, "branchgate init: cannot open the new branch in %s\n", dir);
        bg_registry_close(reg);
        if (node != NULL)
            bg_node_destroy(node);
        return BG_CLI_FAIL;
    }
    bg_branch_input in = {.name = name, .url = url, .type = type, .api_key = key};
    bg_branch out;
    bg_node_err ne = {0};
    bg_err e = bg_node_branch_register(node, reg, &in, "cli:init", "init", &out, &ne);
    if (e == BG_OK)
        bg_registry_branch_clear(&out);
    else
        fprintf(stderr, "branchgate init: cannot register the parent: %s %s\n",
                ne.code ? ne.code : "", ne.message);
    bg_registry_close(reg);
    bg_node_destroy(node);
    return e == BG_OK ? BG_CLI_OK : BG_CLI_FAIL;
}
