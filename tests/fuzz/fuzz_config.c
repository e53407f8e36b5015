/*
 * fuzz_config — configuration (node/config.c): bg_config_apply_file reads
 * the JSON config file (DIR/branchgate.json), bg_config_set one dotted key
 * from text (command-line flags; the environment goes through the same
 * set_text). No product change was needed: the file is written to a temp
 * path for each input.
 *
 * The whole input is the config file. Its first line, when there is one, is
 * also split as "KEY VALUE..." and given to bg_config_set.
 *
 * Invariants: every text field stays NUL-terminated inside its buffer;
 * an error leaves a NUL-terminated message; values accepted keep the
 * documented forms (listen is HOST:PORT, branch.type one of two words).
 */
#include "fuzz.h"

#include <unistd.h>

#include "node/config.h"
#include "proto/parse.h"

static char path[64];

static void cleanup(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "/tmp/bg-fuzz-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    close(fd);
    atexit(cleanup);
    return 0;
}

#define TERMINATED(f) FUZZ_CHECK(memchr((f), '\0', sizeof(f)) != NULL)

static void check_config(const bg_config *c)
{
    TERMINATED(c->branch_name);
    TERMINATED(c->branch_type);
    TERMINATED(c->branch_url);
    TERMINATED(c->listen);
    TERMINATED(c->db_synchronous);
    TERMINATED(c->log_level);
    TERMINATED(c->admin_token);
    TERMINATED(c->templates_dir);
    TERMINATED(c->webhooks_schedule);
    TERMINATED(c->tls_listen);
    TERMINATED(c->tls_cert);
    TERMINATED(c->tls_key);
    FUZZ_CHECK(strcmp(c->branch_type, "top_branch") == 0 ||
               strcmp(c->branch_type, "master_branch") == 0);
    char host[300];
    uint16_t port;
    FUZZ_CHECK(bg_parse_hostport(c->listen, host, sizeof(host), &port) == BG_OK);
    FUZZ_CHECK(c->http_threads >= 0 && c->http_threads <= 64);
    FUZZ_CHECK(c->uploads_chunk_max_bytes >= 4096);
}

static void apply_file(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    bg_config c;
    bg_config_err e;
    bg_config_defaults(&c);
    memset(&e, 'x', sizeof(e));
    bg_err rc = bg_config_apply_file(&c, path, &e);
    FUZZ_CHECK(rc == BG_OK || rc == BG_EINVAL);
    if (rc != BG_OK)
        TERMINATED(e.message);
    check_config(&c);
    bg_config_finish(&c, 2);
    /* finish resolves only the 0s ("number of cores"); an operator may set 1. */
    FUZZ_CHECK(c.http_threads >= 1 && c.workers_threads >= 1 && c.jobs_workers >= 1);
}

static void set_flag(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    char *s = fuzz_strndup(data, line);
    char *sp = strchr(s, ' ');
    if (sp != NULL) {
        *sp = '\0';
        bg_config c;
        bg_config_err e;
        bg_config_defaults(&c);
        memset(&e, 'x', sizeof(e));
        bg_err rc = bg_config_set(&c, s, sp + 1, "--fuzz", &e);
        FUZZ_CHECK(rc == BG_OK || rc == BG_EINVAL || rc == BG_ENOTFOUND);
        if (rc != BG_OK)
            TERMINATED(e.message);
        check_config(&c);
    }
    char env[96];
    bg_config_env_name(s, env, sizeof(env));
    TERMINATED(env);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apply_file(data, size);
    set_flag(data, size);
    return 0;
}
