#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/json.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/log.h"
#include "proto/url.h"
#include "proto/assembly.h"
#include "node_internal.h"

typedef enum { K_STR, K_INT, K_BOOL, K_ENUM } kind;

typedef struct key {
    const char *path;
    kind kind;
    size_t off;
    size_t cap;          /* K_STR/K_ENUM: buffer size */
    int64_t min, max;    /* K_INT bounds; K_STR length bounds */
    const char *choices; /* K_ENUM: "a|b|c" */
    const char *def;     /* embedded default, as text */
    int (*check)(const char *value); /* extra validation for K_STR */
} key;

static int check_name(const char *v)
{
    return bg_str_is_ident(v, strlen(v), 63, "-_");
}

static int check_url(const char *v)
{
    char norm[BG_URL_MAX];
    return v[0] == '\0' || bg_url_normalize(v, strlen(v), norm, sizeof(norm)) == BG_OK;
}

static int check_admin_token(const char *v)
{
    /* An operator token is as strong as a generated one or absent. */
    return v[0] == '\0' || strlen(v) >= 16;
}

static int check_listen(const char *v)
{
    char host[256];
    uint16_t port;
    return bg_parse_hostport(v, host, sizeof(host), &port) == BG_OK;
}

static int check_listen_opt(const char *v)
{
    return v[0] == '\0' || check_listen(v);
}

static int check_schedule(const char *v)
{
    long long ms[16];
    size_t n;
    return bg_webhook_schedule_parse(v, ms, &n) == BG_OK;
}

#define OFF(f) offsetof(bg_config, f)
#define CAP(f) sizeof(((bg_config *)0)->f)

static const key keys[] = {
    {"branch.name", K_STR, OFF(branch_name), CAP(branch_name), 1, 63, NULL, "main", check_name},
    {"branch.type", K_ENUM, OFF(branch_type), CAP(branch_type), 0, 0, "top_branch|master_branch",
     "top_branch", NULL},
    {"branch.url", K_STR, OFF(branch_url), CAP(branch_url), 0, 511, NULL, "", check_url},
    {"listen", K_STR, OFF(listen), CAP(listen), 3, 299, NULL, "127.0.0.1:8080", check_listen},
    {"http.threads", K_INT, OFF(http_threads), 0, 0, 64, NULL, "0", NULL},
    {"http.max_body_bytes", K_INT, OFF(http_max_body_bytes), 0, 1024, 64 << 20, NULL, "1048576",
     NULL},
    {"http.req_timeout_ms", K_INT, OFF(http_req_timeout_ms), 0, 100, 600000, NULL, "10000", NULL},
    {"workers.threads", K_INT, OFF(workers_threads), 0, 0, 64, NULL, "0", NULL},
    {"workers.queue_max", K_INT, OFF(workers_queue_max), 0, 1, 1000000, NULL, "10000", NULL},
    {"db.busy_timeout_ms", K_INT, OFF(db_busy_timeout_ms), 0, 0, 60000, NULL, "5000", NULL},
    {"db.synchronous", K_ENUM, OFF(db_synchronous), CAP(db_synchronous), 0, 0, "normal|full",
     "normal", NULL},
    {"log.level", K_ENUM, OFF(log_level), CAP(log_level), 0, 0, "debug|info|warn|error", "info",
     NULL},
    {"log.access", K_BOOL, OFF(log_access), 0, 0, 0, NULL, "true", NULL},
    {"metrics.public", K_BOOL, OFF(metrics_public), 0, 0, 0, NULL, "false", NULL},
    {"shutdown.drain_ms", K_INT, OFF(shutdown_drain_ms), 0, 0, 600000, NULL, "5000", NULL},
    {"shutdown.idle_grace_ms", K_INT, OFF(shutdown_idle_grace_ms), 0, 0, 600000, NULL, "1000",
     NULL},
    {"admin_token", K_STR, OFF(admin_token), CAP(admin_token), 0, 127, NULL, "", check_admin_token},
    {"peers.ping_interval_ms", K_INT, OFF(peers_ping_interval_ms), 0, 100, 86400000, NULL, "30000",
     NULL},
    {"peers.connect_timeout_ms", K_INT, OFF(peers_connect_timeout_ms), 0, 10, 60000, NULL, "2000",
     NULL},
    {"peers.timeout_ms", K_INT, OFF(peers_timeout_ms), 0, 10, 600000, NULL, "10000", NULL},
    {"peers.rate_limit_rps", K_INT, OFF(peers_rate_limit_rps), 0, 1, 10000000, NULL, "200", NULL},
    {"peers.rate_burst", K_INT, OFF(peers_rate_burst), 0, 1, 10000000, NULL, "400", NULL},
    {"peers.breaker_failures", K_INT, OFF(peers_breaker_failures), 0, 1, 1000, NULL, "5", NULL},
    {"peers.breaker_open_ms", K_INT, OFF(peers_breaker_open_ms), 0, 100, 3600000, NULL, "30000",
     NULL},
    {"auth.pwhash_opslimit", K_INT, OFF(auth_pwhash_opslimit), 0, 1, 20, NULL, "2", NULL},
    {"auth.pwhash_memlimit_kib", K_INT, OFF(auth_pwhash_memlimit_kib), 0, 8, 4194304, NULL,
     "65536", NULL},
    {"outbox.give_up_after_s", K_INT, OFF(outbox_give_up_after_s), 0, 1, 31536000, NULL, "86400",
     NULL},
    {"outbox.backoff_max_s", K_INT, OFF(outbox_backoff_max_s), 0, 1, 86400, NULL, "600", NULL},
    {"outbox.idempotency_ttl_s", K_INT, OFF(outbox_idempotency_ttl_s), 0, 86400, 31536000, NULL,
     "172800", NULL},
    {"sync.batch_users", K_INT, OFF(sync_batch_users), 0, 1, 5000, NULL, "500", NULL},
    {"licenses.cache_ttl_s", K_INT, OFF(licenses_cache_ttl_s), 0, 0, 86400, NULL, "300", NULL},
    {"licenses.grace_days", K_INT, OFF(licenses_grace_days), 0, 0, 365, NULL, "7", NULL},
    {"auth.token_ttl_s", K_INT, OFF(auth_token_ttl_s), 0, 60, 2592000, NULL, "3600", NULL},
    {"auth.login_per_min", K_INT, OFF(auth_login_per_min), 0, 1, 100000, NULL, "10", NULL},
    {"templates.dir", K_STR, OFF(templates_dir), CAP(templates_dir), 1, 1023, NULL, "templates",
     NULL},
    {"uploads.max_size", K_INT, OFF(uploads_max_size), 0, 1, INT64_C(1) << 44, NULL, "10737418240",
     NULL},
    {"uploads.chunk_max_bytes", K_INT, OFF(uploads_chunk_max_bytes), 0, 4096, 256 << 20, NULL,
     "8388608", NULL},
    {"uploads.expire_after_s", K_INT, OFF(uploads_expire_after_s), 0, 1, 31536000, NULL, "86400",
     NULL},
    {"jobs.workers", K_INT, OFF(jobs_workers), 0, 0, 64, NULL, "0", NULL},
    {"jobs.lease_s", K_INT, OFF(jobs_lease_s), 0, 1, 86400, NULL, "60", NULL},
    {"jobs.max_receive", K_INT, OFF(jobs_max_receive), 0, 1, 100, NULL, "3", NULL},
    {"jobs.backoff_unit_ms", K_INT, OFF(jobs_backoff_unit_ms), 0, 1, 60000, NULL, "1000", NULL},
    {"jobs.org_concurrency", K_INT, OFF(jobs_org_concurrency), 0, 1, 1024, NULL, "2", NULL},
    {"webhooks.schedule", K_STR, OFF(webhooks_schedule), CAP(webhooks_schedule), 1, 127, NULL,
     "5s,5m,30m,2h,5h,10h", check_schedule},
    {"webhooks.timeout_ms", K_INT, OFF(webhooks_timeout_ms), 0, 100, 120000, NULL, "10000", NULL},
    {"sse.heartbeat_s", K_INT, OFF(sse_heartbeat_s), 0, 1, 3600, NULL, "15", NULL},
    {"sse.max_age_s", K_INT, OFF(sse_max_age_s), 0, 1, 604800, NULL, "3600", NULL},
    {"tls.listen", K_STR, OFF(tls_listen), CAP(tls_listen), 0, 299, NULL, "", check_listen_opt},
    {"tls.cert", K_STR, OFF(tls_cert), CAP(tls_cert), 0, 1023, NULL, "", NULL},
    {"tls.key", K_STR, OFF(tls_key), CAP(tls_key), 0, 1023, NULL, "", NULL},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

__attribute__((format(printf, 2, 3))) static bg_err fail(bg_config_err *e, const char *fmt, ...)
{
    if (e != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
    }
    return BG_EINVAL;
}

static const key *find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

static bool enum_has(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

/* Sets a key from text; the one place values are validated. */
static bg_err set_text(bg_config *c, const key *k, const char *v, const char *src,
                       bg_config_err *e)
{
    char *field = (char *)c + k->off;
    size_t n = strlen(v);
    switch (k->kind) {
    case K_STR:
        if ((int64_t)n < k->min || (int64_t)n > k->max || (k->check && !k->check(v)))
            return fail(e, "config key '%s' (from %s): invalid value", k->path, src);
        memcpy(field, v, n + 1);
        return BG_OK;
    case K_ENUM:
        if (!enum_has(k->choices, v))
            return fail(e, "config key '%s' (from %s): must be one of %s", k->path, src, k->choices);
        memcpy(field, v, n + 1);
        return BG_OK;
    case K_INT: {
        int64_t x;
        if (bg_parse_i64(v, n, k->min, k->max, &x) != BG_OK)
            return fail(e, "config key '%s' (from %s): must be an integer from %lld to %lld", k->path,
                        src, (long long)k->min, (long long)k->max);
        *(int64_t *)(void *)field = x;
        return BG_OK;
    }
    case K_BOOL: {
        bool b;
        if (bg_parse_bool(v, n, &b) != BG_OK)
            return fail(e, "config key '%s' (from %s): must be true or false", k->path, src);
        *(bool *)(void *)field = b;
        return BG_OK;
    }
    }
    return BG_EINTERNAL;
}

void bg_config_defaults(bg_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        bg_err rc = set_text(c, &keys[i], keys[i].def, "defaults", NULL);
        (void)rc;
    }
}

bg_err bg_config_set(bg_config *c, const char *path, const char *value, const char *source,
                     bg_config_err *e)
{
    const key *k = find_key(path);
    if (k == NULL) {
        fail(e, "unknown config key '%s' (from %s)", path, source);
        return BG_ENOTFOUND;
    }
    return set_text(c, k, value, source, e);
}

/* Converts a JSON leaf to the text form set_text takes, insisting on the
 * JSON type that matches the key's kind. */
static bg_err apply_leaf(bg_config *c, const key *k, json_t *v, const char *src, bg_config_err *e)
{
    char num[32];
    switch (k->kind) {
    case K_STR:
    case K_ENUM:
        if (!json_is_string(v))
            return fail(e, "config key '%s' (from %s): must be a string", k->path, src);
        return set_text(c, k, json_string_value(v), src, e);
    case K_INT:
        if (!json_is_integer(v))
            return fail(e, "config key '%s' (from %s): must be an integer", k->path, src);
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return set_text(c, k, num, src, e);
    case K_BOOL:
        if (!json_is_boolean(v))
            return fail(e, "config key '%s' (from %s): must be true or false", k->path, src);
        return set_text(c, k, json_is_true(v) ? "true" : "false", src, e);
    }
    return BG_EINTERNAL;
}

static bg_err apply_object(bg_config *c, json_t *obj, const char *prefix, const char *src,
                           bg_config_err *e)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char path[128];
        int len = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (len < 0 || (size_t)len >= sizeof(path))
            return fail(e, "config key '%.60s...' (from %s): name too long", path, src);
        const key *k = find_key(path);
        if (k != NULL) {
            bg_err rc = apply_leaf(c, k, v, src, e);
            if (rc != BG_OK)
                return rc;
        } else if (json_is_object(v)) {
            bg_err rc = apply_object(c, v, path, src, e);
            if (rc != BG_OK)
                return rc;
        } else {
            return fail(e, "unknown config key '%s' (from %s)", path, src);
        }
    }
    return BG_OK;
}

bg_err bg_config_apply_file(bg_config *c, const char *path, bg_config_err *e)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int err = errno;
        fail(e, "config file %s: %s", path, strerror(err));
        return err == ENOENT ? BG_ENOTFOUND : BG_EINVAL;
    }
    char *buf = bg_xmalloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    bool too_big = n == (1 << 20);
    fclose(f);
    if (too_big) {
        free(buf);
        return fail(e, "config file %s: larger than 1 MiB", path);
    }
    json_t *root = NULL;
    bg_json_err je;
    bg_err rc = bg_json_parse_object(buf, n, &root, &je);
    free(buf);
    if (rc != BG_OK)
        return fail(e, "config file %s: %s", path, je.message);
    rc = apply_object(c, root, "", path, e);
    json_decref(root);
    return rc;
}

void bg_config_env_name(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return; /* not even the terminator fits */
    size_t j = 0;
    const char *prefix = "BRANCHGATE_";
    for (const char *p = prefix; *p && j + 1 < cap; p++)
        buf[j++] = *p;
    for (const char *p = path; *p && j + 1 < cap; p++) {
        char ch = *p == '.' ? '_' : *p;
        buf[j++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    buf[j] = '\0';
}

/* Variables that share the prefix but are not config keys. */
static bool env_known_other(const char *name, size_t len)
{
    static const char *const others[] = {"BRANCHGATE_DATA",        "BRANCHGATE_URL",
                                         "BRANCHGATE_BIN",         "BRANCHGATE_PARENT_KEY",
                                         "BRANCHGATE_TEST_FAULTS"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (strlen(others[i]) == len && strncmp(others[i], name, len) == 0)
            return true;
    return false;
}

/* A misspelt variable would otherwise be ignored without a word. */
static void warn_unknown_env(void)
{
    extern char **environ;
    for (char **ev = environ; ev != NULL && *ev != NULL; ev++) {
        if (strncmp(*ev, "BRANCHGATE_", 11) != 0)
            continue;
        size_t len = strcspn(*ev, "=");
        bool known = env_known_other(*ev, len);
        for (size_t i = 0; i < NKEYS && !known; i++) {
            char name[96];
            bg_config_env_name(keys[i].path, name, sizeof(name));
            known = strlen(name) == len && strncmp(name, *ev, len) == 0;
        }
        if (!known)
            bg_log(BG_LOG_WARN, NULL, "ignoring %.*s: it names no config key", (int)len, *ev);
    }
}

bg_err bg_config_apply_env(bg_config *c, bg_config_err *e)
{
    warn_unknown_env();
    for (size_t i = 0; i < NKEYS; i++) {
        char name[96];
        bg_config_env_name(keys[i].path, name, sizeof(name));
        const char *v = getenv(name);
        if (v == NULL)
            continue;
        bg_err rc = set_text(c, &keys[i], v, name, e);
        if (rc != BG_OK)
            return rc;
    }
    return BG_OK;
}

void bg_config_finish(bg_config *c, int ncores)
{
    if (ncores < 1)
        ncores = 1;
    if (c->http_threads == 0)
        c->http_threads = ncores;
    if (c->workers_threads == 0)
        c->workers_threads = ncores < 2 ? 2 : ncores;
    if (c->jobs_workers == 0)
        c->jobs_workers = ncores;
}

/* Sets one string member, failing (rather than dropping the key) when
 * jansson refuses the text. */
static bool set_str(json_t *obj, const char *name, const char *value)
{
    json_t *v = json_string(value);
    return v != NULL && json_object_set_new(obj, name, v) == 0;
}

bg_err bg_config_write_identity(const bg_config *c, const char *path)
{
    /* Start from what the file holds, so an operator's other keys survive
     * a re-init; a file that is there but unreadable is not ours to
     * replace. */
    json_t *root = NULL;
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        json_error_t je;
        root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
        fclose(f);
        if (!json_is_object(root)) {
            json_decref(root);
            return BG_EIO;
        }
    } else if (errno == ENOENT) {
        root = json_object();
    } else {
        return BG_EIO;
    }
    json_t *branch = json_object_get(root, "branch");
    if (!json_is_object(branch)) {
        branch = json_object();
        json_object_set_new(root, "branch", branch);
    }
    char *text = NULL;
    if (set_str(branch, "name", c->branch_name) && set_str(branch, "type", c->branch_type) &&
        set_str(branch, "url", c->branch_url))
        text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL)
        return BG_EIO;
    /* Temp file, fsync, rename, with the mode set whatever the umask. */
    bg_err e = bg_file_write_atomic(path, text, strlen(text), 0644);
    free(text);
    return e;
}
