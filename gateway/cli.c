/* gateway/cli.c — `branchgate init | serve | cleanup | version | help`, and
 * the dispatcher of the client commands (branch, org, license, token, dlq,
 * status, assembly) and of backup, which live in gateway/cli_*.c. */
#include "gateway/cli.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/cli_internal.h"
#include "gateway/gateway.h"
#include "node/node.h"
#include "node/pipeline.h"
#include "proto/parse.h"
#include "proto/log.h"
#include "proto/mem.h"

typedef struct flag {
    const char *name;
    const char *value;
} flag;

/* Parses "--name value" / "--name=value" pairs into the given flags.
 * Returns false (after a message) on an unknown flag or a missing value. */
static bool parse_flags(int argc, char **argv, flag *flags, size_t nflags, const char *cmd)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        flag *f = NULL;
        for (size_t k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, a, nlen) == 0)
                f = &flags[k];
        if (f == NULL) {
            fprintf(stderr, "branchgate %s: unknown option '%s' (see 'branchgate help %s')\n", cmd,
                    a, cmd);
            return false;
        }
        if (eq != NULL) {
            f->value = eq + 1;
        } else if (i + 1 < argc) {
            f->value = argv[++i];
        } else {
            fprintf(stderr, "branchgate %s: option %s needs a value\n", cmd, f->name);
            return false;
        }
    }
    return true;
}

/* `CMD --help` or `CMD -h` as the first argument. */
static bool wants_help(int argc, char **argv)
{
    return argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
}

static const char *data_dir_of(const char *flag_value)
{
    if (flag_value != NULL)
        return flag_value;
    const char *env = getenv("BRANCHGATE_DATA");
    return env != NULL && env[0] != '\0' ? env : BG_DEFAULT_DATA_DIR;
}

static void print_init_result(const bg_init_opts *o, const char *token, bool show_token)
{
    printf("initialised branch '%s' (%s) in %s\n", o->name, o->type, o->data_dir);
    if (show_token)
        printf("admin token (shown once; also in %s/admin.token, mode 0600):\n%s\n", o->data_dir,
               token);
    else
        printf("admin token written to %s/admin.token (mode 0600)\n", o->data_dir);
    fflush(stdout);
}

static bool load_config(bg_config *c, const char *dir, const char *config_file,
                        const char *listen);

int bg_cli_init(int argc, char **argv)
{
    if (wants_help(argc, argv))
        return bg_cli_help("init");
    flag flags[] = {{"--data", NULL}, {"--name", NULL},   {"--type", NULL},
                    {"--url", NULL},  {"--parent", NULL}, {"--parent-key", NULL}};
    if (!parse_flags(argc, argv, flags, 6, "init"))
        return 2;
    if (flags[1].value == NULL || flags[2].value == NULL) {
        fprintf(stderr, "branchgate init: --name and --type are required\n");
        return 2;
    }
    /* The parent's key: --parent-key (DESIGN section 3) or, kept out of
     * the process list, $BRANCHGATE_PARENT_KEY. */
    const char *parent = flags[4].value;
    const char *pkey = flags[5].value ? flags[5].value : getenv("BRANCHGATE_PARENT_KEY");
    if ((parent != NULL) != (pkey != NULL && pkey[0] != '\0')) {
        fprintf(stderr, "branchgate init: --parent needs --parent-key (or BRANCHGATE_PARENT_KEY) "
                        "and the other way round\n");
        return 2;
    }
    char pname[128], ptype[32];
    if (parent != NULL) {
        int rc = bg_cli_parent_probe(parent, pname, sizeof(pname), ptype, sizeof(ptype));
        if (rc != 0)
            return rc;
    }
    bg_init_opts o = {.data_dir = data_dir_of(flags[0].value), .name = flags[1].value,
                      .type = flags[2].value, .url = flags[3].value};
    char token[BG_TOKEN_MAX], err[512];
    bg_err e = bg_node_init_datadir(&o, token, err, sizeof(err));
    if (e != BG_OK) {
        fprintf(stderr, "branchgate init: %s\n", err);
        return 1;
    }
    print_init_result(&o, token, true);
    bg_sig_wipe(token, sizeof(token));
    if (parent == NULL)
        return 0;
    bg_config cfg;
    if (!load_config(&cfg, o.data_dir, NULL, NULL))
        return 1;
    int rc = bg_cli_parent_register(&cfg, o.data_dir, parent, pname, ptype, pkey);
    bg_sig_wipe(cfg.admin_token, sizeof(cfg.admin_token));
    if (rc == 0)
        printf("registered the parent '%s' (%s) at %s; register this branch there with the same "
               "key\n", pname, ptype, parent);
    return rc;
}

/* Loads configuration from every source, in order. */
static bool load_config(bg_config *c, const char *dir, const char *config_file,
                        const char *listen)
{
    bg_config_err ce;
    char path[4200];
    bg_config_defaults(c);
    /* DIR/branchgate.json holds the identity init wrote; --config FILE
     * is applied on top of it. */
    snprintf(path, sizeof(path), "%s/%s", dir, BG_CONFIG_FILE);
    bg_err e = bg_config_apply_file(c, path, &ce);
    if (e == BG_ENOTFOUND)
        e = BG_OK;
    if (e == BG_OK && config_file != NULL)
        e = bg_config_apply_file(c, config_file, &ce);
    if (e == BG_OK)
        e = bg_config_apply_env(c, &ce);
    if (e == BG_OK && listen != NULL)
        e = bg_config_set(c, "listen", listen, "--listen", &ce);
    if (e != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "invalid configuration: %s", ce.message);
        return false;
    }
    bg_config_finish(c, (int)sysconf(_SC_NPROCESSORS_ONLN));
    return true;
}

/* First `serve` on an empty data dir: initialise it with the configured
 * identity (defaults: main, top_branch). The token is not printed by a
 * server; it is in DIR/admin.token. */
static bool auto_init(const bg_config *c, const char *dir)
{
    bg_init_opts o = {.data_dir = dir, .name = c->branch_name, .type = c->branch_type,
                      .url = c->branch_url};
    char token[BG_TOKEN_MAX], err[512];
    if (bg_node_init_datadir(&o, token, err, sizeof(err)) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "cannot initialise %s: %s", dir, err);
        return false;
    }
    bg_sig_wipe(token, sizeof(token));
    print_init_result(&o, NULL, false);
    bg_log(BG_LOG_INFO, NULL, "initialised data dir %s as branch '%s' (%s)", dir, o.name, o.type);
    return true;
}

int bg_cli_serve(int argc, char **argv)
{
    if (wants_help(argc, argv))
        return bg_cli_help("serve");
    flag flags[] = {{"--data", NULL}, {"--listen", NULL}, {"--config", NULL}};
    if (!parse_flags(argc, argv, flags, 3, "serve"))
        return 2;
    const char *dir = data_dir_of(flags[0].value);
    bg_config cfg;
    if (!load_config(&cfg, dir, flags[2].value, flags[1].value))
        return 1;
    bg_log_set_level((bg_log_level)bg_log_level_parse(cfg.log_level));
    if (!bg_node_is_initialised(dir) &&
        (!auto_init(&cfg, dir) || !load_config(&cfg, dir, flags[2].value, flags[1].value)))
        return 1;
    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only the main thread's sigwait sees them. */
    bg_gateway_block_signals();
    bg_node *node = NULL;
    if (bg_node_create(&cfg, dir, &node) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "cannot start the branch from %s", dir);
        return 1;
    }
    bg_sig_wipe(cfg.admin_token, sizeof(cfg.admin_token));
    int rc = bg_gateway_run(node);
    bg_node_destroy(node);
    return rc;
}

int bg_cli_cleanup(int argc, char **argv)
{
    if (wants_help(argc, argv))
        return bg_cli_help("cleanup");
    flag flags[] = {{"--data", NULL}, {"--branch", NULL}, {"--older-than", NULL}};
    if (!parse_flags(argc, argv, flags, 3, "cleanup"))
        return 2;
    if (flags[1].value == NULL) {
        fprintf(stderr, "branchgate cleanup: --branch is required\n");
        return 2;
    }
    uint64_t older = 0;
    const char *o = flags[2].value;
    if (o != NULL && bg_parse_duration(o, strlen(o), UINT64_C(3153600000), &older) != BG_OK) {
        fprintf(stderr, "branchgate cleanup: --older-than takes a duration such as 7d, 12h or 30m\n");
        return 2;
    }
    const char *dir = data_dir_of(flags[0].value);
    if (!bg_node_is_initialised(dir)) {
        fprintf(stderr, "branchgate cleanup: %s is not a branch data directory\n", dir);
        return 1;
    }
    size_t removed = 0;
    if (bg_pipeline_cleanup(dir, flags[1].value, (long long)older, &removed) != BG_OK) {
        fprintf(stderr, "branchgate cleanup: '%s' is not a valid branch name\n", flags[1].value);
        return 2;
    }
    printf("removed %zu upload and output directories of branch '%s'\n", removed, flags[1].value);
    return 0;
}

int bg_cli_version(void)
{
    char libs[512];
    bg_node_lib_versions(libs, sizeof(libs));
    printf("branchgate %s\nh2o %s\nOpenSSL %s\nSQLite %s\njansson %s\nlibsodium %s\n%s", BG_VERSION,
           H2O_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), bg_registry_version(),
           jansson_version_str(), bg_sig_version(), libs);
    return 0;
}

static const char usage[] =
    "usage: branchgate <command> [options]\n"
    "\n"
    "run a branch:\n"
    "  init      create a branch's data directory\n"
    "  serve     run the branch (initialises DIR on first run as 'main', top_branch)\n"
    "  cleanup   remove a branch's uploads and outputs from the data directory\n"
    "  backup    copy the database of a (running) branch to a file\n"
    "  version   print the version and library versions\n"
    "  help      this text; 'branchgate help COMMAND' (or 'branchgate COMMAND --help')\n"
    "            describes a command, its options and an example\n"
    "\n"
    "talk to a running branch (clients of its HTTP API):\n"
    "  branch    register | list | show | remove | ping | status   peer branches\n"
    "  org       create | list | add-user | sync                   organisations and users\n"
    "  license   issue | show | revoke | validate                  licenses\n"
    "  token     create | list | revoke                            admin tokens\n"
    "  assembly  submit FILE... --template T [--wait]              process files\n"
    "  status    ASSEMBLY_ID                                       an assembly's status\n"
    "  dlq       list | requeue ID                                 dead letters\n"
    "\n"
    "defaults: --data ./branchgate-data (or $BRANCHGATE_DATA), --listen 127.0.0.1:8080.\n"
    "The client commands find the branch in $BRANCHGATE_URL or DIR/listen.url and the\n"
    "token in $BRANCHGATE_ADMIN_TOKEN or DIR/admin.token (docs/cli.md).\n"
    "Every config key can be set in DIR/branchgate.json or the environment:\n"
    "http.threads -> BRANCHGATE_HTTP_THREADS (see docs/operations.md).\n"
    "exit codes: 0 ok, 1 failure, 2 usage error.\n";

static const char init_help[] =
    "usage: branchgate init --name NAME --type top_branch|master_branch [--data DIR]\n"
    "                       [--url PUBLIC_URL]\n"
    "\n"
    "  creates DIR (mode 0700) with branchgate.json, master.key, the signing key pair, the\n"
    "  database and an admin token, which is printed once (also in DIR/admin.token, 0600).\n"
    "  Refuses (exit 1) a directory that is already initialised.\n"
    "\n"
    "  --name NAME        1-63 characters of A-Z a-z 0-9 _ -\n"
    "  --type TYPE        top_branch or master_branch\n"
    "  --data DIR         default: $BRANCHGATE_DATA, else ./branchgate-data\n"
    "  --url PUBLIC_URL   the URL peers use to reach this branch\n"
    "\n"
    "example:\n"
    "  branchgate init --data ./hq --name hq --type top_branch --url https://hq.example.com\n";

static const char serve_help[] =
    "usage: branchgate serve [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
    "\n"
    "  runs the branch until SIGTERM or SIGINT (then drains and exits 0). An uninitialised\n"
    "  DIR is initialised first as 'main', top_branch. Once listening it writes\n"
    "  DIR/listen.url, which the client commands read.\n"
    "\n"
    "  --data DIR          default: $BRANCHGATE_DATA, else ./branchgate-data\n"
    "  --listen HOST:PORT  default 127.0.0.1:8080; port 0 picks a free port\n"
    "  --config FILE       JSON configuration applied over DIR/branchgate.json\n"
    "\n"
    "example:\n"
    "  branchgate serve --data ./hq --listen 127.0.0.1:9000\n";

static const char cleanup_help[] =
    "usage: branchgate cleanup --branch NAME [--older-than DURATION] [--data DIR]\n"
    "\n"
    "  removes the uploads and outputs of branch NAME from the data directory (a local\n"
    "  command: no server call).\n"
    "\n"
    "  --branch NAME          the branch whose files are removed\n"
    "  --older-than DURATION  only directories older than that (7d, 12h, 30m)\n"
    "  --data DIR             default: $BRANCHGATE_DATA, else ./branchgate-data\n"
    "\n"
    "example:\n"
    "  branchgate cleanup --data ./hq --branch hq --older-than 7d\n";

static const char version_help[] =
    "usage: branchgate version (also --version)\n"
    "\n"
    "  prints the version of branchgate and of the libraries it runs on.\n";

int bg_cli_help(const char *topic)
{
    static const struct {
        const char *name, *text;
    } local[] = {{"init", init_help},       {"serve", serve_help}, {"cleanup", cleanup_help},
                 {"version", version_help}, {"help", usage}};
    if (topic == NULL) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strcmp(local[i].name, topic) == 0) {
            fputs(local[i].text, stdout);
            return 0;
        }
    const char *client = bg_cli_admin_help(topic);
    if (client == NULL && strcmp(topic, "license") == 0)
        client = bg_cli_license_help();
    if (client == NULL)
        client = bg_cli_assembly_help(topic);
    if (client != NULL) {
        bg_cli_print_help(stdout, client);
        return 0;
    }
    if (strcmp(topic, "backup") == 0) {
        fputs(bg_cli_backup_help(), stdout);
        return 0;
    }
    fprintf(stderr, "branchgate help: no command '%s'\n\n", topic);
    fputs(usage, stderr);
    return 2;
}

int bg_cli_dispatch(const char *cmd, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {{"branch", bg_cli_cmd_branch}, {"org", bg_cli_cmd_org},
                {"license", bg_cli_cmd_license}, {"token", bg_cli_cmd_token},
                {"dlq", bg_cli_cmd_dlq},       {"status", bg_cli_cmd_status},
                {"assembly", bg_cli_cmd_assembly}, {"backup", bg_cli_cmd_backup}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmds[i].name, cmd) == 0)
            return cmds[i].run(argc, argv);
    fprintf(stderr, "branchgate: unknown command '%s'\n\n", cmd);
    fputs(usage, stderr);
    return 2;
}
