/* gateway/cli_admin.c — `branchgate branch | org | token | dlq | status`:
 * clients of the branch's admin API (DESIGN.md section 4, docs/api.md).
 * Each subcommand builds one request, prints the answer as text (or as it
 * is with --json) and maps the outcome to an exit code (docs/cli.md). */
#include "gateway/cli_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define S(obj, key) bg_cli_str((obj), (key), buf, sizeof(buf))

/* ---- branch ---- */

static const char branch_help[] =
    "usage: branchgate branch <subcommand> [options]\n"
    "\n"
    "  register NAME --branch-url URL --type top_branch|master_branch\n"
    "           (--key-file FILE | --key-env VAR) [--org ID] [--spki-pin PIN] [--cert FILE]\n"
    "           register a peer branch; the api key (16-256 printable characters, the same\n"
    "           on both sides) is read from FILE ('-' = stdin) or the environment variable\n"
    "           VAR, never from the command line\n"
    "  list     [--org ID] [--limit N] [--cursor C]   every registered branch\n"
    "  show     NAME [--org ID]                       one branch\n"
    "  remove   NAME [--org ID]                       deactivate a branch (the row is kept)\n"
    "  ping     NAME | --all                          ping one peer (or every active one)\n"
    "           now; exit 1 when a ping fails\n"
    "  status   NAME [--org ID]                       state, breaker, outbox of one peer\n"
    "\n"
    "  --org ID selects the registration of that organisation when a name is registered\n"
    "  in several. list: --limit/--cursor fetch one page (default: every page).\n"
    "\n"
    "example:\n"
    "  head -c 24 /dev/urandom | base64 > pair.key   # give the same file to the peer\n"
    "  branchgate branch register eu-west --branch-url https://eu.example.com \\\n"
    "      --type master_branch --key-file pair.key --data ./hq\n"
    "  branchgate branch ping eu-west --data ./hq\n";

static void branch_row(const json_t *b)
{
    char buf[64], b2[64], b3[64];
    printf("%-20s %-14s %-8s %-7s %-9s %-21s %s\n", bg_cli_s(b, "branch_name"),
           bg_cli_str(b, "branch_type", b2, sizeof(b2)), bg_cli_str(b, "state", b3, sizeof(b3)),
           json_is_true(json_object_get(b, "is_active")) ? "yes" : "no",
           json_is_true(json_object_get(b, "verified")) ? "yes" : "no", S(b, "last_ping_at"),
           bg_cli_s(b, "branch_url"));
}

static int branch_list(bg_cli *c, const bg_cli_args *a)
{
    char p[BG_CLI_PATH_MAX] = "/api/v1/branches";
    if (!bg_cli_query(p, "organization_id", bg_cli_val(a, "--org")))
        return bg_cli_too_long(a);
    return bg_cli_list(c, a, p, "branches",
                       "NAME                 TYPE           STATE    ACTIVE  VERIFIED  LAST_PING   "
                       "          URL\n",
                       branch_row);
}

/* /api/v1/branches/NAME[suffix][?organization_id=] */
static bool branch_path(char *p, const bg_cli_args *a, const char *suffix)
{
    return bg_cli_path(p, "/api/v1/branches/", a->pos[0], suffix) &&
           bg_cli_query(p, "organization_id", bg_cli_val(a, "--org"));
}

static int branch_show_like(bg_cli *c, const bg_cli_args *a, const char *method, const char *suffix)
{
    char p[BG_CLI_PATH_MAX];
    if (!branch_path(p, a, suffix))
        return bg_cli_too_long(a);
    json_t *j = NULL;
    int rc = bg_cli_request(c, method, p, NULL, &j);
    if (j != NULL)
        bg_cli_print_object(j, NULL);
    json_decref(j);
    return rc;
}

static int branch_show(bg_cli *c, const bg_cli_args *a)
{
    return branch_show_like(c, a, "GET", NULL);
}

static int branch_status(bg_cli *c, const bg_cli_args *a)
{
    return branch_show_like(c, a, "GET", "/status");
}

static int branch_remove(bg_cli *c, const bg_cli_args *a)
{
    char p[BG_CLI_PATH_MAX];
    if (!branch_path(p, a, NULL))
        return bg_cli_too_long(a);
    json_t *j = NULL;
    int rc = bg_cli_request(c, "DELETE", p, NULL, &j);
    if (j != NULL)
        printf("branch '%s' deactivated (%s)\n", a->pos[0], bg_cli_s(j, "branch_url"));
    json_decref(j);
    return rc;
}

/* One ping result line; false when the ping failed. */
static bool ping_line(const json_t *r)
{
    char buf[64], b2[64];
    bool ok = json_is_true(json_object_get(r, "ok"));
    const char *err = json_string_value(json_object_get(r, "error"));
    printf("%-20s %-6s HTTP %-4s %8s ms%s%s\n", bg_cli_s(r, "branch_name"), ok ? "ok" : "FAILED",
           S(r, "status"), bg_cli_str(r, "latency_ms", b2, sizeof(b2)), err ? "  " : "",
           err ? err : "");
    return ok;
}

/* Exit 1 when any ping of the answer failed, also with --json. */
static int ping_outcome(const bg_cli_resp *r, bool all)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    bool ok = j != NULL;
    const json_t *res = json_object_get(j, "results");
    if (!all)
        ok = ok && json_is_true(json_object_get(j, "ok"));
    for (size_t i = 0; all && i < json_array_size(res); i++)
        ok = ok && json_is_true(json_object_get(json_array_get(res, i), "ok"));
    json_decref(j);
    return ok ? BG_CLI_OK : BG_CLI_FAIL;
}

static int branch_ping(bg_cli *c, const bg_cli_args *a)
{
    bool all = bg_cli_flag(a, "--all");
    if (all == (a->npos == 1))
        return bg_cli_usage(a, "give a branch NAME or --all");
    char p[BG_CLI_PATH_MAX] = "/api/v1/cross-branch/test-communication";
    if (!all && !branch_path(p, a, "/ping"))
        return bg_cli_too_long(a);
    bg_cli_resp r;
    json_t *j = NULL;
    int rc = bg_cli_json(c, all ? "GET" : "POST", p, NULL, &r, &j);
    if (rc == BG_CLI_OK && c->json)
        bg_cli_print_raw(&r);
    if (rc == BG_CLI_OK && !c->json && all) {
        const json_t *res = json_object_get(j, "results");
        for (size_t i = 0; i < json_array_size(res); i++)
            ping_line(json_array_get(res, i));
        if (json_array_size(res) == 0)
            printf("no active branch\n");
    } else if (rc == BG_CLI_OK && !c->json) {
        ping_line(j);
    }
    if (rc == BG_CLI_OK)
        rc = ping_outcome(&r, all);
    json_decref(j);
    bg_cli_resp_free(&r);
    return rc;
}

/* Reads a small text file (a PEM certificate) into a malloc'ed string. */
static char *read_text_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = bg_xmalloc(max + 2);
    size_t n = fread(buf, 1, max + 1, f);
    bool bad = ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int branch_register(bg_cli *c, const bg_cli_args *a)
{
    const char *url = bg_cli_val(a, "--branch-url"), *type = bg_cli_val(a, "--type");
    if (url == NULL || type == NULL)
        return bg_cli_usage(a, "--branch-url and --type are required");
    json_t *body = json_pack("{s:s, s:s, s:s}", "branch_name", a->pos[0], "branch_url", url,
                             "branch_type", type);
    if (bg_cli_val(a, "--org"))
        json_object_set_new(body, "organization_id", json_string(bg_cli_val(a, "--org")));
    if (bg_cli_val(a, "--spki-pin"))
        json_object_set_new(body, "spki_pin", json_string(bg_cli_val(a, "--spki-pin")));
    const char *cert = bg_cli_val(a, "--cert");
    char *pem = cert ? read_text_file(cert, 65536) : NULL;
    if (cert != NULL && pem == NULL) {
        json_decref(body);
        fprintf(stderr, "branchgate %s: cannot read %s (at most 64 KiB)\n", a->cmd, cert);
        return BG_CLI_FAIL;
    }
    if (pem != NULL)
        json_object_set_new(body, "ssl_certificate", json_string(pem));
    free(pem);
    char *key = NULL;
    int rc = bg_cli_read_secret(a, "--key-file", "--key-env", 256, &key);
    if (rc != BG_CLI_OK) {
        json_decref(body);
        return rc;
    }
    bg_cli_resp r;
    json_t *j = NULL;
    rc = bg_cli_json_secret(c, "POST", "/api/v1/branches", body, "api_key", key, &r, &j);
    bg_cli_secret_free(key);
    json_decref(body);
    if (rc == BG_CLI_OK && c->json)
        bg_cli_print_raw(&r);
    else if (rc == BG_CLI_OK)
        printf("registered branch '%s' (%s) at %s\n", a->pos[0], type, bg_cli_s(j, "branch_url"));
    json_decref(j);
    bg_cli_resp_free(&r);
    return rc;
}

#define BRANCH_RUN(fname, cmd, minp, maxp, fn, ...)                                                \
    static int fname(int argc, char **argv)                                                        \
    {                                                                                              \
        bg_cli_opt o[] = {__VA_ARGS__ BG_CLI_COMMON_OPTS};                                         \
        return bg_cli_run(argc, argv, o, N(o), cmd, branch_help, minp, maxp, true, fn);            \
    }

BRANCH_RUN(run_branch_register, "branch register", 1, 1, branch_register, BG_OPT_V("--branch-url"),
           BG_OPT_V("--type"), BG_OPT_V("--key-file"), BG_OPT_V("--key-env"), BG_OPT_V("--org"),
           BG_OPT_V("--spki-pin"), BG_OPT_V("--cert"), )
BRANCH_RUN(run_branch_list, "branch list", 0, 0, branch_list, BG_OPT_V("--org"),
           BG_OPT_V("--limit"), BG_OPT_V("--cursor"), )
BRANCH_RUN(run_branch_show, "branch show", 1, 1, branch_show, BG_OPT_V("--org"), )
BRANCH_RUN(run_branch_remove, "branch remove", 1, 1, branch_remove, BG_OPT_V("--org"), )
BRANCH_RUN(run_branch_ping, "branch ping", 0, 1, branch_ping, BG_OPT_V("--org"),
           BG_OPT_F("--all"), )
BRANCH_RUN(run_branch_status, "branch status", 1, 1, branch_status, BG_OPT_V("--org"), )

int bg_cli_cmd_branch(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {
        {"register", run_branch_register}, {"list", run_branch_list}, {"show", run_branch_show},
        {"remove", run_branch_remove},     {"ping", run_branch_ping}, {"status", run_branch_status},
    };
    return bg_cli_group(argc, argv, "branch", subs, N(subs), branch_help);
}

/* ---- org ---- */

static const char org_help[] =
    "usage: branchgate org <subcommand> [options]\n"
    "\n"
    "  create   NAME [--parent ID] [--home-branch NAME]     create an organisation; prints\n"
    "           its id and webhook secret\n"
    "  list     [--limit N] [--cursor C]                    every organisation held here\n"
    "  add-user ORG_ID --email EMAIL --name NAME [--role owner|admin|member|viewer]\n"
    "           [--home-branch NAME] (--password-file FILE | --password-env VAR)\n"
    "           create a user; the password (8-1024 bytes) is read from FILE ('-' = stdin)\n"
    "           or the environment variable VAR, never from the command line\n"
    "  sync     ORG_ID --branch NAME [--branch NAME ...]    share the organisation with\n"
    "           those peer branches and queue a full snapshot to each (a comma-separated\n"
    "           list works too)\n"
    "\n"
    "example:\n"
    "  ORG=$(branchgate org create Acme --json | jq -r .id)\n"
    "  printf '%s' \"$PASSWORD\" | branchgate org add-user $ORG --email ada@example.com \\\n"
    "      --name Ada --role owner --password-file -\n"
    "  branchgate org sync $ORG --branch eu-west,us-east\n";

static void org_row(const json_t *o)
{
    char buf[64], b2[64];
    printf("%-36s %-24s %-16s %-7s %s\n", bg_cli_s(o, "id"), bg_cli_s(o, "name"),
           bg_cli_str(o, "home_branch", b2, sizeof(b2)), S(o, "version"), bg_cli_s(o, "parent_id"));
}

static int org_list(bg_cli *c, const bg_cli_args *a)
{
    return bg_cli_list(
        c, a, "/api/v1/organizations", "organizations",
        "ID                                   NAME                     HOME_BRANCH      "
        "VERSION PARENT\n",
        org_row);
}

static int org_create(bg_cli *c, const bg_cli_args *a)
{
    json_t *body = json_pack("{s:s}", "name", a->pos[0]);
    if (bg_cli_val(a, "--parent"))
        json_object_set_new(body, "parent_id", json_string(bg_cli_val(a, "--parent")));
    if (bg_cli_val(a, "--home-branch"))
        json_object_set_new(body, "home_branch", json_string(bg_cli_val(a, "--home-branch")));
    json_t *j = NULL;
    int rc = bg_cli_request(c, "POST", "/api/v1/organizations", body, &j);
    if (j != NULL)
        bg_cli_print_object(j, NULL);
    json_decref(j);
    json_decref(body);
    return rc;
}

static int org_add_user(bg_cli *c, const bg_cli_args *a)
{
    const char *email = bg_cli_val(a, "--email"), *name = bg_cli_val(a, "--name");
    if (email == NULL || name == NULL)
        return bg_cli_usage(a, "--email and --name are required");
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/organizations/", a->pos[0], "/users"))
        return bg_cli_too_long(a);
    char *pw = NULL;
    int rc = bg_cli_read_secret(a, "--password-file", "--password-env", 1024, &pw);
    if (rc != BG_CLI_OK)
        return rc;
    json_t *body = json_pack("{s:s, s:s}", "email", email, "name", name);
    if (bg_cli_val(a, "--role"))
        json_object_set_new(body, "role", json_string(bg_cli_val(a, "--role")));
    if (bg_cli_val(a, "--home-branch"))
        json_object_set_new(body, "home_branch", json_string(bg_cli_val(a, "--home-branch")));
    bg_cli_resp r;
    json_t *j = NULL;
    rc = bg_cli_json_secret(c, "POST", p, body, "password", pw, &r, &j);
    bg_cli_secret_free(pw);
    json_decref(body);
    if (rc == BG_CLI_OK && c->json)
        bg_cli_print_raw(&r);
    else if (rc == BG_CLI_OK)
        printf("created user %s <%s> (%s) in organisation %s\n", bg_cli_s(j, "id"),
               bg_cli_s(j, "email"), bg_cli_s(j, "role"), a->pos[0]);
    json_decref(j);
    bg_cli_resp_free(&r);
    return rc;
}

static int org_sync(bg_cli *c, const bg_cli_args *a)
{
    json_t *branches = bg_cli_split_list(bg_cli_opt_get(a, "--branch"));
    if (json_array_size(branches) == 0) {
        json_decref(branches);
        return bg_cli_usage(a, "--branch NAME is required");
    }
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/organizations/", a->pos[0], "/sync")) {
        json_decref(branches);
        return bg_cli_too_long(a);
    }
    json_t *body = json_pack("{s:o}", "branches", branches);
    json_t *j = NULL;
    int rc = bg_cli_request(c, "POST", p, body, &j);
    if (j != NULL)
        printf("queued %lld message(s) for %zu branch(es)\n",
               (long long)json_integer_value(json_object_get(j, "queued")),
               json_array_size(json_object_get(body, "branches")));
    json_decref(j);
    json_decref(body);
    return rc;
}

#define ORG_RUN(fname, cmd, minp, maxp, fn, ...)                                                   \
    static int fname(int argc, char **argv)                                                        \
    {                                                                                              \
        bg_cli_opt o[] = {__VA_ARGS__ BG_CLI_COMMON_OPTS};                                         \
        return bg_cli_run(argc, argv, o, N(o), cmd, org_help, minp, maxp, true, fn);               \
    }

ORG_RUN(run_org_create, "org create", 1, 1, org_create, BG_OPT_V("--parent"),
        BG_OPT_V("--home-branch"), )
ORG_RUN(run_org_list, "org list", 0, 0, org_list, BG_OPT_V("--limit"), BG_OPT_V("--cursor"), )
ORG_RUN(run_org_add_user, "org add-user", 1, 1, org_add_user, BG_OPT_V("--email"),
        BG_OPT_V("--name"), BG_OPT_V("--role"), BG_OPT_V("--home-branch"),
        BG_OPT_V("--password-file"), BG_OPT_V("--password-env"), )
ORG_RUN(run_org_sync, "org sync", 1, 1, org_sync, BG_OPT_L("--branch"), )

int bg_cli_cmd_org(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {
        {"create", run_org_create},
        {"list", run_org_list},
        {"add-user", run_org_add_user},
        {"sync", run_org_sync},
    };
    return bg_cli_group(argc, argv, "org", subs, N(subs), org_help);
}

/* ---- token ---- */

static const char token_help[] =
    "usage: branchgate token <subcommand> [options]\n"
    "\n"
    "  create   [--label LABEL]   create an admin token; it is printed once\n"
    "  list                       the active admin tokens (ids and labels, never the tokens)\n"
    "  revoke   ID                revoke an admin token at once\n"
    "\n"
    "example:\n"
    "  branchgate token create --label ci --json > ci-token.json\n"
    "  branchgate token revoke 2a088321-d785-405e-aa94-c73c6e7e2a4b\n";

static int token_create(bg_cli *c, const bg_cli_args *a)
{
    json_t *body = json_object();
    if (bg_cli_val(a, "--label"))
        json_object_set_new(body, "label", json_string(bg_cli_val(a, "--label")));
    json_t *j = NULL;
    int rc = bg_cli_request(c, "POST", "/api/v1/tokens", body, &j);
    json_decref(body);
    if (j != NULL) {
        printf("id: %s\nlabel: %s\ntoken: %s\n", bg_cli_s(j, "id"), bg_cli_s(j, "label"),
               bg_cli_s(j, "token"));
        fprintf(stderr, "the token is shown only now; the branch keeps a hash of it\n");
    }
    json_decref(j);
    return rc;
}

static void token_row(const json_t *t)
{
    printf("%-36s %-24s %s\n", bg_cli_s(t, "id"), bg_cli_s(t, "label"), bg_cli_s(t, "created_at"));
}

static int token_list(bg_cli *c, const bg_cli_args *a)
{
    (void)a;
    json_t *j = NULL;
    int rc = bg_cli_request(c, "GET", "/api/v1/tokens", NULL, &j);
    if (j != NULL) {
        printf("ID                                   LABEL                    CREATED\n");
        const json_t *tokens = json_object_get(j, "tokens");
        for (size_t i = 0; i < json_array_size(tokens); i++)
            token_row(json_array_get(tokens, i));
    }
    json_decref(j);
    return rc;
}

static int token_revoke(bg_cli *c, const bg_cli_args *a)
{
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/tokens/", a->pos[0], NULL))
        return bg_cli_too_long(a);
    bg_cli_resp r;
    int rc = bg_cli_json(c, "DELETE", p, NULL, &r, NULL);
    if (rc == BG_CLI_OK && c->json)
        printf("{\"id\":\"%s\",\"revoked\":true}\n", a->pos[0]); /* the 204 has no body */
    else if (rc == BG_CLI_OK)
        printf("revoked token %s\n", a->pos[0]);
    bg_cli_resp_free(&r);
    return rc;
}

#define TOKEN_RUN(fname, cmd, minp, maxp, fn, ...)                                                 \
    static int fname(int argc, char **argv)                                                        \
    {                                                                                              \
        bg_cli_opt o[] = {__VA_ARGS__ BG_CLI_COMMON_OPTS};                                         \
        return bg_cli_run(argc, argv, o, N(o), cmd, token_help, minp, maxp, true, fn);             \
    }

TOKEN_RUN(run_token_create, "token create", 0, 0, token_create, BG_OPT_V("--label"), )
TOKEN_RUN(run_token_list, "token list", 0, 0, token_list, )
TOKEN_RUN(run_token_revoke, "token revoke", 1, 1, token_revoke, )

int bg_cli_cmd_token(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {
        {"create", run_token_create},
        {"list", run_token_list},
        {"revoke", run_token_revoke},
    };
    return bg_cli_group(argc, argv, "token", subs, N(subs), token_help);
}

/* ---- dlq ---- */

static const char dlq_help[] =
    "usage: branchgate dlq <subcommand> [options]\n"
    "\n"
    "  list     [--outbox] [--limit N] [--cursor C]   dead media jobs (with --outbox: dead\n"
    "           federation messages)\n"
    "  requeue  ID [--outbox]                         run a dead job again (only the steps\n"
    "           whose results are missing), or send a dead message again\n"
    "\n"
    "example:\n"
    "  branchgate dlq list\n"
    "  branchgate dlq requeue 5\n";

static void job_row(const json_t *j)
{
    char buf[64], b2[64];
    printf("%-8s %-64s %-4s %-8s %s\n", S(j, "id"), bg_cli_s(j, "assembly_id"),
           bg_cli_str(j, "run", b2, sizeof(b2)), bg_cli_s(j, "state"), bg_cli_s(j, "last_error"));
}

static void message_row(const json_t *m)
{
    char buf[64], b2[64];
    printf("%-8s %-16s %-8s %-8s %s\n", S(m, "id"), bg_cli_s(m, "kind"),
           bg_cli_str(m, "attempts", b2, sizeof(b2)), bg_cli_s(m, "state"),
           bg_cli_s(m, "last_error"));
}

static int dlq_list(bg_cli *c, const bg_cli_args *a)
{
    if (bg_cli_flag(a, "--outbox"))
        return bg_cli_list(c, a, "/api/v1/outbox?state=dead", "messages",
                           "ID       KIND             ATTEMPTS STATE    LAST_ERROR\n", message_row);
    return bg_cli_list(
        c, a, "/api/v1/jobs?state=dead", "jobs",
        "ID       ASSEMBLY                                                         RUN  "
        "STATE    LAST_ERROR\n",
        job_row);
}

static int dlq_requeue(bg_cli *c, const bg_cli_args *a)
{
    bool outbox = bg_cli_flag(a, "--outbox");
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, outbox ? "/api/v1/outbox/" : "/api/v1/jobs/", a->pos[0], "/requeue"))
        return bg_cli_too_long(a);
    json_t *j = NULL;
    int rc = bg_cli_request(c, "POST", p, NULL, &j);
    if (j != NULL)
        printf("%s %s is %s again\n", outbox ? "message" : "job", a->pos[0], bg_cli_s(j, "state"));
    json_decref(j);
    return rc;
}

static int run_dlq_list(int argc, char **argv)
{
    bg_cli_opt o[] = {BG_OPT_F("--outbox"), BG_OPT_V("--limit"), BG_OPT_V("--cursor"),
                      BG_CLI_COMMON_OPTS};
    return bg_cli_run(argc, argv, o, N(o), "dlq list", dlq_help, 0, 0, true, dlq_list);
}

static int run_dlq_requeue(int argc, char **argv)
{
    bg_cli_opt o[] = {BG_OPT_F("--outbox"), BG_CLI_COMMON_OPTS};
    return bg_cli_run(argc, argv, o, N(o), "dlq requeue", dlq_help, 1, 1, true, dlq_requeue);
}

int bg_cli_cmd_dlq(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {{"list", run_dlq_list}, {"requeue", run_dlq_requeue}};
    return bg_cli_group(argc, argv, "dlq", subs, N(subs), dlq_help);
}

/* ---- status ---- */

static const char status_help[] =
    "usage: branchgate status ASSEMBLY_ID [options]\n"
    "\n"
    "  prints an assembly's state, uploads and results (step, name, download URL); exit 0\n"
    "  when the status was read, whatever the assembly's state\n"
    "\n"
    "example:\n"
    "  branchgate status 8ba90f60343bac63735ae568957433f1cc801d85d20acc0665265b62265600a0\n";

static int status(bg_cli *c, const bg_cli_args *a)
{
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/assemblies/", a->pos[0], NULL))
        return bg_cli_too_long(a);
    json_t *j = NULL;
    int rc = bg_cli_request(c, "GET", p, NULL, &j);
    if (j != NULL)
        bg_cli_print_assembly(j);
    json_decref(j);
    return rc;
}

int bg_cli_cmd_status(int argc, char **argv)
{
    bg_cli_opt o[] = {BG_CLI_COMMON_OPTS};
    return bg_cli_run(argc, argv, o, N(o), "status", status_help, 1, 1, true, status);
}

const char *bg_cli_admin_help(const char *topic)
{
    static const struct {
        const char *name, *text;
    } t[] = {{"branch", branch_help},
             {"org", org_help},
             {"token", token_help},
             {"dlq", dlq_help},
             {"status", status_help}};
    for (size_t i = 0; topic != NULL && i < N(t); i++)
        if (strcmp(t[i].name, topic) == 0)
            return t[i].text;
    return NULL;
}
