/*
 * gateway/cli_internal.h — shared by the command-line files only
 * (cli.c, cli_client.c, cli_admin.c, cli_assembly.c); no other file
 * includes it.
 *
 * The client subcommands (branch, org, license, token, dlq, status,
 * assembly) talk to a running branch over its HTTP API with libcurl; they
 * never start the node runtime. Everything here runs on the main thread of
 * a short-lived `branchgate` process. Exit codes: 0 ok, 1 failure (an HTTP
 * error, a transport error, a negative answer), 2 usage.
 */
#ifndef BG_GATEWAY_CLI_INTERNAL_H
#define BG_GATEWAY_CLI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/err.h"

/* Names of the files in a data dir that the client reads (written by
 * node/datadir.c and the gateway at start-up). */
#define BG_CLI_LISTEN_URL_FILE "listen.url"
#define BG_CLI_ADMIN_TOKEN_FILE "admin.token"

/* Largest response body read from the server; a longer one fails. */
#define BG_CLI_MAX_RESPONSE (16u << 20)
/* Largest bearer token accepted from a flag, the environment or a file. */
#define BG_CLI_TOKEN_MAX 4096

enum { BG_CLI_OK = 0, BG_CLI_FAIL = 1, BG_CLI_USAGE = 2 };

/* ---- options ---- */

typedef enum bg_cli_opt_kind {
    BG_OPT_VALUE, /* --name VALUE or --name=VALUE; the last one wins */
    BG_OPT_FLAG,  /* --name, no value */
    BG_OPT_LIST,  /* repeatable; each value may also be a comma-separated list */
} bg_cli_opt_kind;

#define BG_CLI_LIST_MAX 64
#define BG_CLI_POS_MAX 64

typedef struct bg_cli_opt {
    const char *name;
    bg_cli_opt_kind kind;
    /* results */
    bool set;
    const char *value;                 /* BG_OPT_VALUE */
    const char *list[BG_CLI_LIST_MAX]; /* BG_OPT_LIST, in order */
    size_t n;
} bg_cli_opt;

/* Option table entries. */
/* clang-format off */
#define BG_OPT_V(n) {.name = (n), .kind = BG_OPT_VALUE}
#define BG_OPT_F(n) {.name = (n), .kind = BG_OPT_FLAG}
#define BG_OPT_L(n) {.name = (n), .kind = BG_OPT_LIST}
/* clang-format on */

/* The options every client subcommand takes, to put at the end of its
 * option table. */
#define BG_CLI_COMMON_OPTS                                                                         \
    BG_OPT_V("--url"), BG_OPT_V("--token"), BG_OPT_V("--data"), BG_OPT_V("--cacert"),              \
        BG_OPT_V("--timeout"), BG_OPT_F("--json"), BG_OPT_F("--help")

typedef struct bg_cli_args {
    bg_cli_opt *opts;
    size_t nopts;
    const char *pos[BG_CLI_POS_MAX]; /* positional arguments, in order */
    size_t npos;
    const char *cmd; /* "branch register", for messages */
} bg_cli_args;

/* Parses argv (the arguments after the subcommand) against opts. "--"
 * ends the options. Returns false after printing a usage message on
 * stderr (unknown option, missing value, too many values). */
bool bg_cli_parse(int argc, char **argv, bg_cli_opt *opts, size_t nopts, const char *cmd,
                  bg_cli_args *out);

/* The option of that name (NULL when the table has none). */
bg_cli_opt *bg_cli_opt_get(const bg_cli_args *a, const char *name);
/* Its value, or NULL when not given. */
const char *bg_cli_val(const bg_cli_args *a, const char *name);
bool bg_cli_flag(const bg_cli_args *a, const char *name);

/* Prints "branchgate CMD: MESSAGE (see 'branchgate CMD --help')" on
 * stderr and returns BG_CLI_USAGE. */
int bg_cli_usage(const bg_cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bounded integer from an option value; prints a usage message and
 * returns false when it is not a decimal integer in [min, max]. */
bool bg_cli_int(const bg_cli_args *a, const char *name, int64_t min, int64_t max, int64_t *out);

/* Reads a secret (a password, an api key) given as --X-file FILE ("-" is
 * stdin) or --X-env NAME, without the trailing newline, into secret
 * memory (*out, free with bg_cli_secret_free). Exactly one of the two must
 * be given. Returns BG_CLI_OK or an exit code after a message. */
int bg_cli_read_secret(const bg_cli_args *a, const char *file_opt, const char *env_opt,
                       size_t max_len, char **out);
void bg_cli_secret_free(char *s);

/* ---- the connection to a branch ---- */

typedef struct bg_cli {
    char base[1024];   /* the branch's URL, without a trailing slash */
    char *auth;        /* "Authorization: Bearer ..." in secret memory */
    char cacert[1024]; /* --cacert, "" = the system's trust store */
    long timeout_ms;   /* per request; 0 = none */
    bool json;         /* --json: print the server's JSON as it is */
    bool curl_ready;   /* curl_global_init ran */
    const char *cmd;
} bg_cli;

/* Finds the server URL and the token (flags, then the environment
 * BRANCHGATE_URL / BRANCHGATE_ADMIN_TOKEN, then DIR/listen.url and
 * DIR/admin.token of --data DIR, $BRANCHGATE_DATA or ./branchgate-data)
 * and initialises libcurl. Returns BG_CLI_OK or an exit code after a
 * message. Close with bg_cli_close even on failure. */
int bg_cli_open(bg_cli *c, const bg_cli_args *a);
void bg_cli_close(bg_cli *c);

typedef struct bg_cli_resp {
    long status; /* 0 when no answer arrived */
    char *body;  /* NUL-terminated, malloc'ed (may be empty) */
    size_t len;
    char location[2048];    /* Location header */
    char upload_offset[32]; /* Upload-Offset header */
    char error[256];        /* transport error when status is 0 */
} bg_cli_resp;

/* One request. path is either a path on the branch ("/api/v1/...") or an
 * absolute URL given by the branch (tus_url, Location), which is sent to
 * the branch's own origin (see docs/cli.md). headers: NULL-terminated
 * "Name: value" lines or NULL. body may be NULL. Returns BG_OK when an
 * answer arrived (any status), BG_EPEER/BG_ETIMEOUT/BG_ETOOBIG otherwise
 * (r->error says why). Free r with bg_cli_resp_free either way. */
bg_err bg_cli_call(const bg_cli *c, const char *method, const char *path,
                   const char *const *headers, const void *body, size_t len, bg_cli_resp *r);
void bg_cli_resp_free(bg_cli_resp *r);

/* A JSON request: body (may be NULL) is sent as application/json. On a
 * 2xx answer *out (may be NULL) receives the parsed body (NULL when
 * empty) and BG_CLI_OK is returned; otherwise the error is printed and
 * BG_CLI_FAIL returned. r keeps the raw answer for --json. */
int bg_cli_json(const bg_cli *c, const char *method, const char *path, const json_t *body,
                bg_cli_resp *r, json_t **out);

/* The same with one secret member (a password, an api key) added to the
 * object body as "key": secret; the request text lives in secret memory
 * and is wiped after the call. */
int bg_cli_json_secret(const bg_cli *c, const char *method, const char *path, const json_t *body,
                       const char *key, const char *secret, bg_cli_resp *r, json_t **out);

/* Prints the failure of r on stderr: "HTTP 404 BRANCH_NOT_FOUND: message
 * (request id ...)" or the transport error. */
void bg_cli_print_error(const bg_cli *c, const bg_cli_resp *r);

/* --json: the answer's body on stdout as it is (one document, newline
 * added when missing). */
void bg_cli_print_raw(const bg_cli_resp *r);

/* Appends s percent-encoded (everything but A-Z a-z 0-9 - . _ ~) to buf,
 * which holds cap bytes. False when it does not fit. */
bool bg_cli_escape(char *buf, size_t cap, const char *s);

/* Server-sent events: called for each event; returning false ends the
 * stream. data is the event's data lines joined with "\n". */
typedef bool (*bg_cli_sse_fn)(void *ud, long long id, const char *event, const char *data);

/* GETs path as an event stream and calls fn for each event until fn
 * returns false (BG_OK), the server ends the stream (BG_OK, *ended true),
 * deadline_ms passes (BG_ETIMEOUT; 0 = none), or a transport error
 * (BG_EPEER, error filled). A non-2xx answer is BG_OK with *status set and
 * the body (capped) in *body. last_id >= 0 is sent as Last-Event-ID. */
typedef struct bg_cli_sse_result {
    long status;
    bool ended;
    char *body; /* an error answer's body, malloc'ed or NULL */
    char error[256];
} bg_cli_sse_result;
bg_err bg_cli_sse(const bg_cli *c, const char *path, long long last_id, long long deadline_ms,
                  bg_cli_sse_fn fn, void *ud, bg_cli_sse_result *res);

/* ---- paths and requests of the subcommands ---- */

#define BG_CLI_PATH_MAX 2048

/* buf (BG_CLI_PATH_MAX bytes) = prefix + id percent-encoded (when not
 * NULL) + suffix (when not NULL). False when it does not fit. */
bool bg_cli_path(char *buf, const char *prefix, const char *id, const char *suffix);
/* Appends "?key=value" or "&key=value" (value percent-encoded) when value
 * is not NULL. False when it does not fit. */
bool bg_cli_query(char *buf, const char *key, const char *value);
/* The usage error for an argument that makes the path too long. */
int bg_cli_too_long(const bg_cli_args *a);

/* One request whose answer is JSON. With --json the answer is printed as
 * it is and *out stays untouched; otherwise *out (may be NULL) receives
 * the parsed answer (caller decrefs). Returns an exit code. */
int bg_cli_request(bg_cli *c, const char *method, const char *path, const json_t *body,
                   json_t **out);

typedef void (*bg_cli_row_fn)(const json_t *item);

/* A paged list: GET path (which may already hold a query). With --json,
 * --limit or --cursor, one page (printed as it is with --json; a
 * remaining next_cursor is reported on stderr in text mode); otherwise
 * every page, following next_cursor. In text mode header is printed
 * first and row() for each item of the array named key. */
int bg_cli_list(bg_cli *c, const bg_cli_args *a, const char *path, const char *key,
                const char *header, bg_cli_row_fn row);

/* A JSON array of the values of a list option, each split at commas
 * (empty parts dropped). o may be NULL. New reference. */
json_t *bg_cli_split_list(const bg_cli_opt *o);

/* ---- running a subcommand ---- */

typedef int (*bg_cli_fn)(bg_cli *c, const bg_cli_args *a);

/* Parses argv against opts; on --help prints help on stdout and returns
 * 0; checks that there are min_pos..max_pos positional arguments (usage
 * error otherwise); with connect, opens the connection (bg_cli_open) and
 * passes it to fn, else fn gets NULL; returns fn's exit code. */
int bg_cli_run(int argc, char **argv, bg_cli_opt *opts, size_t nopts, const char *cmd,
               const char *help, size_t min_pos, size_t max_pos, bool connect, bg_cli_fn fn);

typedef struct bg_cli_sub {
    const char *name;
    int (*run)(int argc, char **argv);
} bg_cli_sub;

/* A command group ("branch register ..."): argv[0] names the subcommand.
 * No subcommand or an unknown one is a usage error (help on stderr);
 * "help", --help and -h print help on stdout. */
int bg_cli_group(int argc, char **argv, const char *group, const bg_cli_sub *subs, size_t n,
                 const char *help);

/* Prints a group's help text followed by the common options. */
void bg_cli_print_help(FILE *out, const char *help);

/* ---- text output helpers ---- */

/* Prints every member of obj as "prefix.key: value" lines (nested objects
 * flattened, arrays as compact JSON). */
void bg_cli_print_object(const json_t *obj, const char *prefix);

/* A readable summary of an assembly's status JSON: state, error, uploads,
 * results (step, name, ssl_url). */
void bg_cli_print_assembly(const json_t *st);

/* The string obj[key], or "-" when it is absent, null or not a string. */
const char *bg_cli_s(const json_t *obj, const char *key);

/* String value of obj[key] for display: the string itself, a number or
 * boolean as text, "-" for null or absent. Returns buf or a borrowed
 * string. */
const char *bg_cli_str(const json_t *obj, const char *key, char *buf, size_t cap);

/* ---- commands (argv: the arguments after the command word) ---- */

int bg_cli_cmd_branch(int argc, char **argv);
int bg_cli_cmd_org(int argc, char **argv);
int bg_cli_cmd_license(int argc, char **argv);
int bg_cli_cmd_token(int argc, char **argv);
int bg_cli_cmd_dlq(int argc, char **argv);
int bg_cli_cmd_status(int argc, char **argv);
int bg_cli_cmd_assembly(int argc, char **argv);
int bg_cli_cmd_backup(int argc, char **argv);

/* Help text of a command group ("branch", "org", ...), or NULL. */
const char *bg_cli_admin_help(const char *topic);
const char *bg_cli_license_help(void);
const char *bg_cli_assembly_help(const char *topic);
const char *bg_cli_backup_help(void);
/* The options every client command takes, for the help texts. */
extern const char bg_cli_common_help[];

/* ---- init --parent (cli_parent.c) ---- */

struct bg_config;
/* GET / of the parent at url (Accept: application/json): its name and
 * type. Exit code after a message on failure. */
int bg_cli_parent_probe(const char *url, char *name, size_t ncap, char *type, size_t tcap);
/* Registers the parent as a peer of the branch just initialised in dir
 * (cfg loaded from it), with the shared key. Exit code. */
int bg_cli_parent_register(const struct bg_config *cfg, const char *dir, const char *url,
                           const char *name, const char *type, const char *key);

#endif
