/* gateway/cli_args.c — the command line's shared plumbing: option
 * parsing, secrets read from a file or the environment (never from
 * argv), running a subcommand with its help, and text output of JSON
 * answers (docs/cli.md). */
#include "gateway/cli_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/sig.h"

/* ---- options ---- */

bg_cli_opt *bg_cli_opt_get(const bg_cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            return &a->opts[i];
    return NULL;
}

const char *bg_cli_val(const bg_cli_args *a, const char *name)
{
    bg_cli_opt *o = bg_cli_opt_get(a, name);
    return o != NULL && o->set ? o->value : NULL;
}

bool bg_cli_flag(const bg_cli_args *a, const char *name)
{
    bg_cli_opt *o = bg_cli_opt_get(a, name);
    return o != NULL && o->set;
}

int bg_cli_usage(const bg_cli_args *a, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "branchgate %s: ", a->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'branchgate %s --help')\n", a->cmd);
    return BG_CLI_USAGE;
}

static bool add_list_value(bg_cli_opt *o, const char *v, const char *cmd)
{
    if (o->n >= BG_CLI_LIST_MAX) {
        fprintf(stderr, "branchgate %s: at most %d values for %s\n", cmd, BG_CLI_LIST_MAX, o->name);
        return false;
    }
    o->list[o->n++] = v;
    return true;
}

static bool set_opt(bg_cli_opt *o, const char *v, const char *cmd)
{
    o->set = true;
    if (o->kind == BG_OPT_LIST)
        return add_list_value(o, v, cmd);
    o->value = v;
    return true;
}

static bg_cli_opt *find_opt(bg_cli_opt *opts, size_t n, const char *a, size_t len)
{
    for (size_t k = 0; k < n; k++)
        if (strlen(opts[k].name) == len && strncmp(opts[k].name, a, len) == 0)
            return &opts[k];
    return NULL;
}

/* One "--name[=value]" at argv[*i]; consumes the value argument when it
 * is separate. */
static bool parse_one(int argc, char **argv, int *i, bg_cli_args *out)
{
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    bg_cli_opt *o = find_opt(out->opts, out->nopts, a, nlen);
    if (o == NULL && strcmp(a, "-h") == 0)
        o = find_opt(out->opts, out->nopts, "--help", 6);
    if (o == NULL) {
        fprintf(stderr, "branchgate %s: unknown option '%s' (see 'branchgate %s --help')\n",
                out->cmd, a, out->cmd);
        return false;
    }
    if (o->kind == BG_OPT_FLAG) {
        if (eq != NULL) {
            fprintf(stderr, "branchgate %s: option %s takes no value\n", out->cmd, o->name);
            return false;
        }
        o->set = true;
        return true;
    }
    if (eq != NULL)
        return set_opt(o, eq + 1, out->cmd);
    if (*i + 1 >= argc) {
        fprintf(stderr, "branchgate %s: option %s needs a value\n", out->cmd, o->name);
        return false;
    }
    return set_opt(o, argv[++*i], out->cmd);
}

bool bg_cli_parse(int argc, char **argv, bg_cli_opt *opts, size_t nopts, const char *cmd,
                  bg_cli_args *out)
{
    memset(out, 0, sizeof(*out));
    out->opts = opts;
    out->nopts = nopts;
    out->cmd = cmd;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
        } else if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (!parse_one(argc, argv, &i, out))
                return false;
        } else if (out->npos >= BG_CLI_POS_MAX) {
            fprintf(stderr, "branchgate %s: too many arguments (at most %d)\n", cmd,
                    BG_CLI_POS_MAX);
            return false;
        } else {
            out->pos[out->npos++] = a;
        }
    }
    return true;
}

bool bg_cli_int(const bg_cli_args *a, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const char *v = bg_cli_val(a, name);
    if (v != NULL && bg_parse_i64(v, strlen(v), min, max, out) == BG_OK)
        return true;
    fprintf(stderr, "branchgate %s: %s takes an integer from %lld to %lld\n", a->cmd, name,
            (long long)min, (long long)max);
    return false;
}

/* ---- secrets ---- */

void bg_cli_secret_free(char *s)
{
    bg_secret_free(s); /* wipes */
}

/* Reads at most max_len bytes of fd into secret memory, dropping one
 * trailing newline (and a CR before it). read(2), so the secret passes
 * through no stdio buffer. */
static int read_secret_fd(int fd, const char *what, size_t max_len, char **out)
{
    char *s = bg_secret_alloc(max_len + 2);
    size_t n = 0;
    ssize_t got = 0;
    while (n <= max_len && (got = read(fd, s + n, max_len + 1 - n)) > 0)
        n += (size_t)got;
    if (got < 0 || n > max_len) {
        bg_secret_free(s);
        fprintf(stderr, "branchgate: %s: %s\n", what,
                n > max_len ? "longer than allowed" : "cannot be read");
        return BG_CLI_FAIL;
    }
    if (n > 0 && s[n - 1] == '\n')
        n--;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    *out = s;
    return BG_CLI_OK;
}

static int read_secret_file(const char *path, size_t max_len, char **out)
{
    if (strcmp(path, "-") == 0)
        return read_secret_fd(STDIN_FILENO, "standard input", max_len, out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "branchgate: cannot open %s: %s\n", path, strerror(errno));
        return BG_CLI_FAIL;
    }
    int rc = read_secret_fd(fd, path, max_len, out);
    close(fd);
    return rc;
}

static char *secret_dup(const char *v)
{
    size_t n = strlen(v);
    char *s = bg_secret_alloc(n + 1);
    memcpy(s, v, n + 1);
    return s;
}

int bg_cli_read_secret(const bg_cli_args *a, const char *file_opt, const char *env_opt,
                       size_t max_len, char **out)
{
    const char *file = bg_cli_val(a, file_opt);
    const char *env = bg_cli_val(a, env_opt);
    if ((file == NULL) == (env == NULL))
        return bg_cli_usage(a, "give exactly one of %s FILE and %s NAME", file_opt, env_opt);
    char *s = NULL;
    if (file != NULL) {
        int rc = read_secret_file(file, max_len, &s);
        if (rc != BG_CLI_OK)
            return rc;
    } else {
        const char *v = getenv(env);
        if (v == NULL || strlen(v) > max_len) {
            fprintf(stderr, "branchgate %s: the environment variable %s is %s\n", a->cmd, env,
                    v == NULL ? "not set" : "too long");
            return BG_CLI_FAIL;
        }
        s = secret_dup(v);
    }
    if (s[0] == '\0') {
        bg_secret_free(s);
        fprintf(stderr, "branchgate %s: the secret given with %s is empty\n", a->cmd,
                file ? file_opt : env_opt);
        return BG_CLI_FAIL;
    }
    *out = s;
    return BG_CLI_OK;
}

/* Text listings follow next_cursor; a runaway server cannot keep us here. */
#define MAX_PAGES 10000

/* ---- paths and requests ---- */

bool bg_cli_path(char *buf, const char *prefix, const char *id, const char *suffix)
{
    if (bg_strlcpy(buf, prefix, BG_CLI_PATH_MAX) >= BG_CLI_PATH_MAX)
        return false;
    if (id != NULL && !bg_cli_escape(buf, BG_CLI_PATH_MAX, id))
        return false;
    size_t n = strlen(buf);
    return suffix == NULL ||
           (size_t)snprintf(buf + n, BG_CLI_PATH_MAX - n, "%s", suffix) < BG_CLI_PATH_MAX - n;
}

bool bg_cli_query(char *buf, const char *key, const char *value)
{
    if (value == NULL)
        return true;
    size_t n = strlen(buf);
    if ((size_t)snprintf(buf + n, BG_CLI_PATH_MAX - n, "%c%s=", strchr(buf, '?') ? '&' : '?',
                         key) >= BG_CLI_PATH_MAX - n)
        return false;
    return bg_cli_escape(buf, BG_CLI_PATH_MAX, value);
}

int bg_cli_too_long(const bg_cli_args *a)
{
    return bg_cli_usage(a, "an argument is too long");
}

int bg_cli_request(bg_cli *c, const char *method, const char *path, const json_t *body,
                   json_t **out)
{
    bg_cli_resp r;
    json_t *j = NULL;
    int rc = bg_cli_json(c, method, path, body, &r, &j);
    if (rc == BG_CLI_OK && c->json)
        bg_cli_print_raw(&r);
    bg_cli_resp_free(&r);
    if (rc == BG_CLI_OK && !c->json && out != NULL) {
        *out = j;
        return rc;
    }
    json_decref(j);
    return rc;
}

/* ---- paged lists ---- */

int bg_cli_list(bg_cli *c, const bg_cli_args *a, const char *path, const char *key,
                const char *header, bg_cli_row_fn row)
{
    int64_t limit = 500;
    const char *lim = bg_cli_val(a, "--limit");
    if (lim != NULL && !bg_cli_int(a, "--limit", 1, 500, &limit))
        return BG_CLI_USAGE;
    bool one_page = c->json || lim != NULL || bg_cli_val(a, "--cursor") != NULL;
    char *cursor = bg_cli_val(a, "--cursor") ? bg_xstrdup(bg_cli_val(a, "--cursor")) : NULL;
    int rc = BG_CLI_OK;
    if (!c->json)
        fputs(header, stdout);
    for (int page = 0; page < MAX_PAGES && rc == BG_CLI_OK; page++) {
        char p[BG_CLI_PATH_MAX], num[24];
        snprintf(num, sizeof(num), "%lld", (long long)limit);
        if (!bg_cli_path(p, path, NULL, NULL) || !bg_cli_query(p, "limit", num) ||
            !bg_cli_query(p, "cursor", cursor)) {
            rc = bg_cli_too_long(a);
            break;
        }
        json_t *j = NULL;
        rc = bg_cli_request(c, "GET", p, NULL, &j);
        const json_t *items = json_object_get(j, key);
        for (size_t i = 0; i < json_array_size(items); i++)
            row(json_array_get(items, i));
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        free(cursor);
        cursor = next != NULL ? bg_xstrdup(next) : NULL;
        json_decref(j);
        if (cursor == NULL || one_page)
            break;
    }
    if (rc == BG_CLI_OK && !c->json && one_page && cursor != NULL)
        fprintf(stderr, "more: --cursor %s\n", cursor);
    free(cursor);
    return rc;
}

json_t *bg_cli_split_list(const bg_cli_opt *o)
{
    json_t *arr = json_array();
    for (size_t i = 0; o != NULL && i < o->n; i++) {
        const char *s = o->list[i];
        while (*s) {
            size_t len = strcspn(s, ",");
            if (len > 0)
                json_array_append_new(arr, json_stringn(s, len));
            s += len + (s[len] == ',');
        }
    }
    return arr;
}

/* ---- text output ---- */

const char *bg_cli_s(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v != NULL ? v : "-";
}

const char *bg_cli_str(const json_t *obj, const char *key, char *buf, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, cap, "-");
    return buf;
}

static void print_value(const char *key, const json_t *v)
{
    if (json_is_string(v)) {
        printf("%s: %s\n", key, json_string_value(v));
    } else if (json_is_null(v)) {
        printf("%s: -\n", key);
    } else if (json_is_object(v)) {
        bg_cli_print_object(v, key);
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%s: %s\n", key, t ? t : "?");
        free(t);
    }
}

void bg_cli_print_object(const json_t *obj, const char *prefix)
{
    for (void *it = json_object_iter((json_t *)obj); it != NULL;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *k = json_object_iter_key(it);
        char key[256];
        if (prefix != NULL && prefix[0])
            snprintf(key, sizeof(key), "%s.%s", prefix, k);
        else
            snprintf(key, sizeof(key), "%s", k);
        print_value(key, json_object_iter_value(it));
    }
}

/* ---- running subcommands ---- */

const char bg_cli_common_help[] =
    "\n"
    "options of every client command:\n"
    "  --url URL      the branch to talk to (default: $BRANCHGATE_URL, else the first line\n"
    "                 of DIR/listen.url, which a running branch writes)\n"
    "  --data DIR     data directory holding listen.url and admin.token\n"
    "                 (default: $BRANCHGATE_DATA, else ./branchgate-data)\n"
    "  --token TOKEN  bearer token; better $BRANCHGATE_ADMIN_TOKEN or DIR/admin.token, since\n"
    "                 a token on the command line is visible to other local users\n"
    "  --cacert FILE  trust this CA certificate (PEM) for an https:// URL\n"
    "  --timeout D    give up on one request after D (30s, 5m; default 60s; 0: never)\n"
    "  --json         print the server's JSON answer as it is (one document on stdout)\n"
    "  --help, -h     this text\n"
    "exit codes: 0 ok, 1 failure (HTTP error: the server's code and message on stderr),\n"
    "2 usage error. See docs/cli.md.\n";

void bg_cli_print_help(FILE *out, const char *help)
{
    fputs(help, out);
    fputs(bg_cli_common_help, out);
}

int bg_cli_run(int argc, char **argv, bg_cli_opt *opts, size_t nopts, const char *cmd,
               const char *help, size_t min_pos, size_t max_pos, bool connect, bg_cli_fn fn)
{
    bg_cli_args a;
    if (!bg_cli_parse(argc, argv, opts, nopts, cmd, &a))
        return BG_CLI_USAGE;
    if (bg_cli_flag(&a, "--help")) {
        if (connect)
            bg_cli_print_help(stdout, help);
        else
            fputs(help, stdout);
        return BG_CLI_OK;
    }
    if (a.npos < min_pos)
        return bg_cli_usage(&a, "missing argument%s", min_pos - a.npos > 1 ? "s" : "");
    if (a.npos > max_pos)
        return bg_cli_usage(&a, "unexpected argument '%s'", a.pos[max_pos]);
    if (!connect)
        return fn(NULL, &a);
    bg_cli c;
    int rc = bg_cli_open(&c, &a);
    if (rc == BG_CLI_OK)
        rc = fn(&c, &a);
    bg_cli_close(&c);
    fflush(stdout);
    return rc;
}

int bg_cli_group(int argc, char **argv, const char *group, const bg_cli_sub *subs, size_t n,
                 const char *help)
{
    const char *sub = argc > 0 ? argv[0] : NULL;
    if (sub != NULL &&
        (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        bg_cli_print_help(stdout, help);
        return BG_CLI_OK;
    }
    for (size_t i = 0; sub != NULL && i < n; i++)
        if (strcmp(subs[i].name, sub) == 0)
            return subs[i].run(argc - 1, argv + 1);
    if (sub == NULL)
        fprintf(stderr, "branchgate %s: which subcommand?\n\n", group);
    else
        fprintf(stderr, "branchgate %s: unknown subcommand '%s'\n\n", group, sub);
    bg_cli_print_help(stderr, help);
    return BG_CLI_USAGE;
}
