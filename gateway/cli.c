/* gateway/cli.c — `branchgate init | serve | version | help`. */
#include "gateway/cli.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int bg_cli_init(int argc, char **argv)
{
    flag flags[] = {{"--data", NULL}, {"--name", NULL},   {"--type", NULL},
                    {"--url", NULL},  {"--parent", NULL}, {"--parent-key", NULL}};
    if (!parse_flags(argc, argv, flags, 6, "init"))
        return 2;
    if (flags[1].value == NULL || flags[2].value == NULL) {
        fprintf(stderr, "branchgate init: --name and --type are required\n");
        return 2;
    }
    if (flags[4].value != NULL || flags[5].value != NULL) {
        fprintf(stderr, "branchgate init: --parent is not available in this version; "
                        "register the parent with POST /api/v1/branches after init\n");
        return 2;
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
    return 0;
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
    "commands:\n"
    "  init     create a branch's data directory\n"
    "           --name NAME --type top_branch|master_branch [--data DIR] [--url PUBLIC_URL]\n"
    "  serve    run the branch (initialises DIR on first run as 'main', top_branch)\n"
    "           [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
    "  cleanup  remove a branch's uploads and outputs from the data directory\n"
    "           --branch NAME [--older-than DURATION (e.g. 7d)] [--data DIR]\n"
    "  version  print the version and library versions\n"
    "  help     this text\n"
    "\n"
    "defaults: --data ./branchgate-data (or $BRANCHGATE_DATA), --listen 127.0.0.1:8080.\n"
    "Every config key can be set in DIR/branchgate.json or the environment:\n"
    "http.threads -> BRANCHGATE_HTTP_THREADS (see docs/operations.md).\n";

int bg_cli_help(const char *topic)
{
    (void)topic;
    fputs(usage, stdout);
    return 0;
}
