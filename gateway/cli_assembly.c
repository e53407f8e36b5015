/* gateway/cli_assembly.c — `branchgate assembly submit`: creates an
 * assembly (POST /api/v1/assemblies with each file's name, size and md5),
 * sends each file over tus 1.0 (creation, then PATCHes with an md5
 * Upload-Checksum, resuming from HEAD after a failed chunk), and with
 * --wait follows the assembly's SSE channel to its terminal event and
 * prints the results (DESIGN.md section 7, docs/cli.md). */
#include "gateway/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/md5.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/sig.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FILES 64
/* Default PATCH size: under uploads.chunk_max_bytes' default (8 MiB) and
 * http.max_body_bytes' (1 MiB), so any branch with default limits takes
 * it. A 413 halves it, down to MIN_CHUNK. */
#define DEFAULT_CHUNK (1 << 20)
#define MIN_CHUNK 4096
#define MAX_CHUNK (256 << 20)
/* Consecutive failed PATCHes (transport errors, 5xx, offset conflicts)
 * before an upload gives up; the waits between them grow by half a second
 * (18 s in all), enough for a branch to restart. */
#define MAX_RETRIES 8
/* Reconnections of the event stream when it ends without a terminal
 * event (the stream's maximum age, a branch restart). */
#define MAX_RECONNECTS 100

typedef struct upfile {
    const char *path;
    const char *name; /* the path's last component */
    int64_t size;
    char md5[33];
    bool done; /* already complete on the branch */
} upfile;

typedef struct submit {
    bg_cli *c;
    const bg_cli_args *a;
    upfile files[MAX_FILES];
    size_t nfiles;
    size_t chunk;
    bool tty; /* progress bar on stderr */
    char id[80];
    char tus_url[1024];
    char stream[2048];
    /* --wait */
    long long wait_ms; /* --wait-timeout, 0 = none */
    long long last_event;
    char terminal[32]; /* the terminal event's name, "" before */
} submit;

/* ---- files ---- */

static bool md5_of(upfile *f)
{
    FILE *fp = fopen(f->path, "rb");
    if (fp == NULL)
        return false;
    bg_md5 m;
    bg_md5_init(&m);
    char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
        bg_md5_update(&m, buf, n);
        total += n;
    }
    bool ok = !ferror(fp) && (int64_t)total == f->size;
    fclose(fp);
    uint8_t d[BG_MD5_BYTES];
    bg_md5_final(&m, d);
    bg_md5_hex(d, f->md5);
    return ok;
}

static int load_file(const bg_cli_args *a, const char *path, upfile *f)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "branchgate %s: %s: %s\n", a->cmd, path, strerror(errno));
        return BG_CLI_FAIL;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "branchgate %s: %s: not a regular file\n", a->cmd, path);
        return BG_CLI_FAIL;
    }
    const char *slash = strrchr(path, '/');
    f->path = path;
    f->name = slash ? slash + 1 : path;
    f->size = (int64_t)st.st_size;
    if (f->name[0] == '\0' || strlen(f->name) > 255)
        return bg_cli_usage(a, "%s: the file name must be 1-255 bytes", path);
    if (!md5_of(f)) {
        fprintf(stderr, "branchgate %s: %s: cannot be read (or changed while read)\n", a->cmd,
                path);
        return BG_CLI_FAIL;
    }
    return BG_CLI_OK;
}

/* A media type for the common extensions (the upload's "mime"). */
static const char *filetype(const char *name)
{
    static const char *const types[][2] = {
        {".wav", "audio/wav"},        {".mp3", "audio/mpeg"},  {".flac", "audio/flac"},
        {".ogg", "audio/ogg"},        {".opus", "audio/ogg"},  {".m4a", "audio/mp4"},
        {".aac", "audio/aac"},        {".mp4", "video/mp4"},   {".mov", "video/quicktime"},
        {".mkv", "video/x-matroska"}, {".webm", "video/webm"}, {".png", "image/png"},
        {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"}, {".webp", "image/webp"},
        {".gif", "image/gif"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < N(types); i++)
        if (strcasecmp(dot, types[i][0]) == 0)
            return types[i][1];
    return NULL;
}

/* ---- progress ---- */

static void human(int64_t n, char *buf, size_t cap)
{
    if (n >= 1 << 20)
        snprintf(buf, cap, "%.1f MiB", (double)n / (1 << 20));
    else if (n >= 1 << 10)
        snprintf(buf, cap, "%.1f KiB", (double)n / (1 << 10));
    else
        snprintf(buf, cap, "%lld B", (long long)n);
}

/* A bar redrawn in place on a terminal; otherwise a line each time the
 * upload passes another tenth (and at the end). */
static void progress(const submit *s, const upfile *f, int64_t off, int *last_tenth)
{
    int pct = f->size > 0 ? (int)(off * 100 / f->size) : 100;
    char a[32], b[32];
    human(off, a, sizeof(a));
    human(f->size, b, sizeof(b));
    if (s->tty) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r%-24.24s [%s] %3d%% %s / %s", f->name, bar, pct, a, b);
        if (off >= f->size)
            fputc('\n', stderr);
        return;
    }
    if (pct / 10 == *last_tenth && off < f->size)
        return;
    *last_tenth = pct / 10;
    fprintf(stderr, "upload %s: %lld/%lld bytes (%d%%)\n", f->name, (long long)off,
            (long long)f->size, pct);
}

/* ---- tus ---- */

static void tus_failed(const submit *s, const upfile *f, const char *what, const bg_cli_resp *r)
{
    fprintf(stderr, "branchgate %s: %s: %s failed\n", s->a->cmd, f->name, what);
    bg_cli_print_error(s->c, r);
}

/* POST to the tus endpoint; loc receives the upload's URL. */
static bool tus_create(submit *s, const upfile *f, char *loc, size_t cap)
{
    size_t idl = strlen(s->id), nl = strlen(f->name);
    const char *type = filetype(f->name);
    char *b_id = bg_xmalloc(bg_b64_len(idl) + 1), *b_name = bg_xmalloc(bg_b64_len(nl) + 1);
    char b_type[200] = "";
    bg_b64_encode(s->id, idl, b_id);
    bg_b64_encode(f->name, nl, b_name);
    if (type != NULL)
        bg_b64_encode(type, strlen(type), b_type);
    char md[1200], len[48];
    snprintf(md, sizeof(md), "Upload-Metadata: assembly_id %s,filename %s%s%s", b_id, b_name,
             type ? ",filetype " : "", b_type);
    snprintf(len, sizeof(len), "Upload-Length: %lld", (long long)f->size);
    free(b_id);
    free(b_name);
    const char *h[] = {"Tus-Resumable: 1.0.0", len, md, "Content-Type:", NULL};
    bg_cli_resp r;
    bg_cli_call(s->c, "POST", s->tus_url, h, NULL, 0, &r);
    bool ok = r.status == 201 && r.location[0] != '\0' && strlen(r.location) < cap;
    if (ok)
        bg_strlcpy(loc, r.location, cap);
    else
        tus_failed(s, f, "tus creation", &r);
    bg_cli_resp_free(&r);
    return ok;
}

/* HEAD: the branch's offset of the upload, or -1. */
static int64_t tus_offset(submit *s, const char *loc)
{
    const char *h[] = {"Tus-Resumable: 1.0.0", NULL};
    bg_cli_resp r;
    bg_cli_call(s->c, "HEAD", loc, h, NULL, 0, &r);
    int64_t off = -1;
    if (r.status != 200 ||
        bg_parse_i64(r.upload_offset, strlen(r.upload_offset), 0, INT64_MAX, &off) != BG_OK)
        off = -1;
    bg_cli_resp_free(&r);
    return off;
}

typedef enum { SENT, RETRY, SHRINK, FATAL } patch_outcome;

/* One PATCH of data[0..n) at off. */
static patch_outcome tus_patch(submit *s, const upfile *f, const char *loc, int64_t off,
                               const char *data, size_t n)
{
    bg_md5 m;
    uint8_t d[BG_MD5_BYTES];
    char b64[32], sum[64], offh[48];
    bg_md5_init(&m);
    bg_md5_update(&m, data, n);
    bg_md5_final(&m, d);
    bg_b64_encode(d, sizeof(d), b64);
    snprintf(sum, sizeof(sum), "Upload-Checksum: md5 %s", b64);
    snprintf(offh, sizeof(offh), "Upload-Offset: %lld", (long long)off);
    const char *h[] = {"Tus-Resumable: 1.0.0", offh,
                       "Content-Type: application/offset+octet-stream", sum, NULL};
    bg_cli_resp r;
    bg_cli_call(s->c, "PATCH", loc, h, data, n, &r);
    int64_t got = -1;
    bg_parse_i64(r.upload_offset, strlen(r.upload_offset), 0, INT64_MAX, &got);
    patch_outcome out = FATAL;
    if (r.status == 204 && got == off + (int64_t)n)
        out = SENT;
    else if (r.status == 413 && n > MIN_CHUNK)
        out = SHRINK;
    else if (r.status == 0 || r.status == 409 || r.status == 460 || r.status == 204 ||
             (r.status >= 500 && r.status != 507))
        out = RETRY;
    if (out != SENT && out != SHRINK)
        tus_failed(s, f, "PATCH", &r);
    bg_cli_resp_free(&r);
    return out;
}

static bool read_at(FILE *fp, int64_t off, char *buf, size_t n)
{
    return fseeko(fp, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, n, fp) == n;
}

/* After a failed PATCH: waits a little longer each time, then asks the
 * branch where the upload stands (off when it cannot tell). */
static int64_t resume_offset(submit *s, const upfile *f, const char *loc, int retries, int64_t off)
{
    long ms = 500L * retries;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    int64_t at = tus_offset(s, loc);
    if (at >= 0)
        off = at;
    fprintf(stderr, "resuming %s at byte %lld (attempt %d of %d)\n", f->name, (long long)off,
            retries + 1, MAX_RETRIES + 1);
    return off;
}

/* Sends the whole file from offset 0, resuming from HEAD after a failed
 * chunk. */
static bool tus_send(submit *s, const upfile *f, const char *loc)
{
    FILE *fp = fopen(f->path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "branchgate %s: %s: %s\n", s->a->cmd, f->path, strerror(errno));
        return false;
    }
    char *buf = bg_xmalloc(s->chunk);
    int64_t off = 0;
    int retries = 0, tenth = -1;
    bool ok = true;
    progress(s, f, 0, &tenth);
    while (ok && off < f->size) {
        size_t n = (size_t)(f->size - off < (int64_t)s->chunk ? f->size - off : (int64_t)s->chunk);
        if (!read_at(fp, off, buf, n)) {
            fprintf(stderr, "branchgate %s: %s: read failed (did the file change?)\n", s->a->cmd,
                    f->path);
            ok = false;
            break;
        }
        patch_outcome o = tus_patch(s, f, loc, off, buf, n);
        if (o == SENT) {
            off += (int64_t)n;
            retries = 0;
            progress(s, f, off, &tenth);
        } else if (o == SHRINK) {
            s->chunk = s->chunk / 2 < MIN_CHUNK ? MIN_CHUNK : s->chunk / 2;
        } else if (o == RETRY && ++retries <= MAX_RETRIES) {
            off = resume_offset(s, f, loc, retries, off);
        } else {
            ok = false;
        }
    }
    free(buf);
    fclose(fp);
    return ok;
}

static bool upload(submit *s, const upfile *f)
{
    char loc[2048];
    if (!tus_create(s, f, loc, sizeof(loc)))
        return false;
    if (f->size == 0) {
        int tenth = -1;
        progress(s, f, 0, &tenth);
        return true;
    }
    return tus_send(s, f, loc);
}

/* ---- the assembly ---- */

/* The request body: template, files, --field k=v, --notify-url, --org. */
static json_t *assembly_body(const submit *s, int *rc)
{
    json_t *files = json_array(), *fields = json_object();
    for (size_t i = 0; i < s->nfiles; i++)
        json_array_append_new(files,
                              json_pack("{s:s, s:I, s:s}", "name", s->files[i].name, "size",
                                        (json_int_t)s->files[i].size, "md5", s->files[i].md5));
    const bg_cli_opt *fo = bg_cli_opt_get(s->a, "--field");
    for (size_t i = 0; fo != NULL && i < fo->n; i++) {
        const char *eq = strchr(fo->list[i], '=');
        if (eq == NULL || eq == fo->list[i]) {
            json_decref(files);
            json_decref(fields);
            *rc = bg_cli_usage(s->a, "--field takes KEY=VALUE");
            return NULL;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - fo->list[i]), fo->list[i]);
        json_object_set_new(fields, key, json_string(eq + 1));
    }
    json_t *body = json_pack("{s:s, s:o, s:o}", "template_id", bg_cli_val(s->a, "--template"),
                             "files", files, "fields", fields);
    if (bg_cli_val(s->a, "--notify-url"))
        json_object_set_new(body, "notify_url", json_string(bg_cli_val(s->a, "--notify-url")));
    if (bg_cli_val(s->a, "--org"))
        json_object_set_new(body, "organization_id", json_string(bg_cli_val(s->a, "--org")));
    return body;
}

/* Marks the files whose upload the branch already holds complete (same
 * md5 and size), so a submit run again after an interruption sends only
 * what is missing. */
static void mark_done(submit *s, const json_t *st)
{
    const json_t *ups = json_object_get(st, "uploads");
    bool used[MAX_FILES * 2] = {false};
    for (size_t i = 0; i < s->nfiles; i++) {
        for (size_t k = 0; k < json_array_size(ups); k++) {
            const json_t *u = json_array_get(ups, k);
            const char *md5 = json_string_value(json_object_get(u, "md5hash"));
            if (k < N(used) && !used[k] && md5 != NULL && strcmp(md5, s->files[i].md5) == 0 &&
                json_integer_value(json_object_get(u, "size")) == s->files[i].size) {
                used[k] = true;
                s->files[i].done = true;
                break;
            }
        }
    }
}

/* Reads what the next steps need from the creation answer. */
static int take_created(submit *s, const json_t *st)
{
    const char *id = json_string_value(json_object_get(st, "assembly_id"));
    const char *tus = json_string_value(json_object_get(st, "tus_url"));
    const char *stream = json_string_value(json_object_get(st, "update_stream_url"));
    if (id == NULL || tus == NULL || strlen(id) >= sizeof(s->id) ||
        strlen(tus) >= sizeof(s->tus_url)) {
        fprintf(stderr, "branchgate %s: the answer has no assembly_id or tus_url\n", s->a->cmd);
        return BG_CLI_FAIL;
    }
    bg_strlcpy(s->id, id, sizeof(s->id));
    bg_strlcpy(s->tus_url, tus, sizeof(s->tus_url));
    if (stream != NULL)
        bg_strlcpy(s->stream, stream, sizeof(s->stream));
    const char *ok = json_string_value(json_object_get(st, "ok"));
    if (ok == NULL || strcmp(ok, "ASSEMBLY_UPLOADING") != 0) {
        for (size_t i = 0; i < s->nfiles; i++)
            s->files[i].done = true; /* it exists and runs, or ran, already */
        fprintf(stderr, "assembly %s exists (%s)\n", s->id, ok ? ok : bg_cli_s(st, "error"));
    } else {
        mark_done(s, st);
    }
    return BG_CLI_OK;
}

static int create(submit *s)
{
    int rc = BG_CLI_OK;
    json_t *body = assembly_body(s, &rc);
    if (body == NULL)
        return rc;
    bg_cli_resp r;
    json_t *st = NULL;
    rc = bg_cli_json(s->c, "POST", "/api/v1/assemblies", body, &r, &st);
    json_decref(body);
    bg_cli_resp_free(&r);
    if (rc == BG_CLI_OK)
        rc = take_created(s, st);
    if (rc == BG_CLI_OK)
        fprintf(stderr, "assembly %s\n", s->id);
    json_decref(st);
    return rc;
}

/* ---- waiting ---- */

/* One event as a line: the name and its data without assembly_id. */
static void print_event(const char *event, const char *data, FILE *out)
{
    json_t *j = json_loads(data, 0, NULL);
    if (json_is_object(j))
        json_object_del(j, "assembly_id");
    char *t = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(out, "%-20s %s\n", event, t ? t : data);
    fflush(out);
    free(t);
    json_decref(j);
}

static bool on_event(void *ud, long long id, const char *event, const char *data)
{
    submit *s = ud;
    if (id >= 0)
        s->last_event = id;
    print_event(event, data, s->c->json ? stderr : stdout);
    if (strcmp(event, "assembly:completed") == 0 || strcmp(event, "assembly:failed") == 0 ||
        strcmp(event, "assembly:canceled") == 0) {
        bg_strlcpy(s->terminal, event, sizeof(s->terminal));
        return false;
    }
    return true;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Follows the assembly's channel until its terminal event. */
static int wait_terminal(submit *s, long long deadline)
{
    if (s->stream[0] == '\0') {
        fprintf(stderr, "branchgate %s: the answer has no update_stream_url\n", s->a->cmd);
        return BG_CLI_FAIL;
    }
    s->last_event = -1;
    for (int attempt = 0; attempt <= MAX_RECONNECTS && s->terminal[0] == '\0'; attempt++) {
        long long left = deadline > 0 ? deadline - mono_ms() : 0;
        if (deadline > 0 && left <= 0)
            break;
        bg_cli_sse_result res;
        bg_err e = bg_cli_sse(s->c, s->stream, s->last_event, left, on_event, s, &res);
        if (res.status != 0 && (res.status < 200 || res.status > 299)) {
            bg_cli_resp r = {
                .status = res.status, .body = res.body, .len = res.body ? strlen(res.body) : 0};
            bg_cli_print_error(s->c, &r);
            free(res.body);
            return BG_CLI_FAIL;
        }
        free(res.body);
        if (e == BG_ETIMEOUT)
            break;
        if (e != BG_OK)
            fprintf(stderr, "event stream: %s; reconnecting\n", res.error);
        if (s->terminal[0] == '\0') {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    }
    if (s->terminal[0] == '\0') {
        fprintf(stderr, "branchgate %s: gave up waiting for assembly %s\n", s->a->cmd, s->id);
        return BG_CLI_FAIL;
    }
    return BG_CLI_OK;
}

/* The final status: as it is with --json, else the summary. */
static int final_status(submit *s, json_t **st)
{
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/assemblies/", s->id, NULL))
        return bg_cli_too_long(s->a);
    bg_cli_resp r;
    int rc = bg_cli_json(s->c, "GET", p, NULL, &r, st);
    if (rc == BG_CLI_OK && s->c->json)
        bg_cli_print_raw(&r);
    else if (rc == BG_CLI_OK)
        bg_cli_print_assembly(*st);
    bg_cli_resp_free(&r);
    return rc;
}

/* ---- the command ---- */

static int options(submit *s, const bg_cli_args *a)
{
    if (bg_cli_val(a, "--template") == NULL)
        return bg_cli_usage(a, "--template is required");
    if (a->npos > MAX_FILES)
        return bg_cli_usage(a, "at most %d files", MAX_FILES);
    int64_t chunk = DEFAULT_CHUNK;
    if (bg_cli_val(a, "--chunk-size") &&
        !bg_cli_int(a, "--chunk-size", MIN_CHUNK, MAX_CHUNK, &chunk))
        return BG_CLI_USAGE;
    s->chunk = (size_t)chunk;
    const char *wt = bg_cli_val(a, "--wait-timeout");
    uint64_t secs = 0;
    if (wt != NULL && bg_parse_duration(wt, strlen(wt), 604800, &secs) != BG_OK)
        return bg_cli_usage(a, "--wait-timeout takes a duration such as 90s, 10m or 2h");
    s->wait_ms = (long long)secs * 1000;
    for (size_t i = 0; i < a->npos; i++) {
        int rc = load_file(a, a->pos[i], &s->files[s->nfiles]);
        if (rc != BG_CLI_OK)
            return rc;
        s->nfiles++;
    }
    return BG_CLI_OK;
}

static int submit_cmd(bg_cli *c, const bg_cli_args *a)
{
    submit *s = bg_xcalloc(1, sizeof(*s));
    s->c = c;
    s->a = a;
    s->tty = isatty(STDERR_FILENO) == 1;
    int rc = options(s, a);
    if (rc == BG_CLI_OK)
        rc = create(s);
    for (size_t i = 0; rc == BG_CLI_OK && i < s->nfiles; i++)
        if (!s->files[i].done && !upload(s, &s->files[i]))
            rc = BG_CLI_FAIL;
    bool wait = bg_cli_flag(a, "--wait");
    if (rc == BG_CLI_OK && wait)
        rc = wait_terminal(s, s->wait_ms > 0 ? mono_ms() + s->wait_ms : 0);
    json_t *st = NULL;
    if (rc == BG_CLI_OK)
        rc = final_status(s, &st);
    if (rc == BG_CLI_OK && wait) {
        const char *ok = json_string_value(json_object_get(st, "ok"));
        rc = ok != NULL && strcmp(ok, "ASSEMBLY_COMPLETED") == 0 ? BG_CLI_OK : BG_CLI_FAIL;
    }
    json_decref(st);
    free(s);
    return rc;
}

static const char assembly_help[] =
    "usage: branchgate assembly submit FILE... --template TEMPLATE [options]\n"
    "\n"
    "  creates an assembly of the files (up to 64) with that template, uploads each file\n"
    "  over tus (with an md5 checksum per chunk; a failed chunk is resumed from the\n"
    "  branch's offset) and prints the assembly's status. Running the same submit again\n"
    "  finds the same assembly and sends only what is missing.\n"
    "\n"
    "  --template ID        template to run (probe, audio-preview, ... or a shared one)\n"
    "  --field KEY=VALUE    a field of the assembly (repeatable)\n"
    "  --notify-url URL     webhook URL for the outcome\n"
    "  --org ID             organisation (admin tokens only; default: the default one)\n"
    "  --wait               follow the progress events until the assembly completes or\n"
    "                       fails, then print the results; exit 0 completed, 1 otherwise\n"
    "  --wait-timeout D     stop waiting after D (e.g. 10m; default: no limit)\n"
    "  --chunk-size BYTES   bytes per PATCH (4096..268435456, default 1048576; halved\n"
    "                       when the branch answers 413)\n"
    "\n"
    "  Progress goes to stderr (a bar on a terminal, lines otherwise); events go to\n"
    "  stdout, or to stderr with --json, where stdout gets the final status JSON only.\n"
    "\n"
    "example:\n"
    "  ffmpeg -f lavfi -i sine=frequency=440:duration=3 tone.wav\n"
    "  branchgate assembly submit tone.wav --template audio-preview --wait\n";

static int run_submit(int argc, char **argv)
{
    bg_cli_opt o[] = {BG_OPT_V("--template"),   BG_OPT_L("--field"), BG_OPT_V("--notify-url"),
                      BG_OPT_V("--org"),        BG_OPT_F("--wait"),  BG_OPT_V("--wait-timeout"),
                      BG_OPT_V("--chunk-size"), BG_CLI_COMMON_OPTS};
    return bg_cli_run(argc, argv, o, N(o), "assembly submit", assembly_help, 1, BG_CLI_POS_MAX,
                      true, submit_cmd);
}

int bg_cli_cmd_assembly(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {{"submit", run_submit}};
    return bg_cli_group(argc, argv, "assembly", subs, N(subs), assembly_help);
}

/* ---- the status summary ---- */

static void print_results(const json_t *results)
{
    printf("results:\n");
    for (void *it = json_object_iter((json_t *)results); it != NULL;
         it = json_object_iter_next((json_t *)results, it)) {
        const json_t *arr = json_object_iter_value(it);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *r = json_array_get(arr, i);
            printf("  %-12s %-32s %s\n", json_object_iter_key(it), bg_cli_s(r, "name"),
                   bg_cli_s(r, "ssl_url"));
        }
    }
}

void bg_cli_print_assembly(const json_t *st)
{
    char buf[64], b2[64];
    const char *ok = json_string_value(json_object_get(st, "ok"));
    printf("assembly: %s\n", bg_cli_s(st, "assembly_id"));
    if (ok != NULL)
        printf("state: %s\n", ok);
    else
        printf("state: FAILED %s (step %s, retryable %s): %s\n",
               bg_cli_str(st, "error", buf, sizeof(buf)), bg_cli_str(st, "step", b2, sizeof(b2)),
               json_is_true(json_object_get(st, "retryable")) ? "yes" : "no",
               bg_cli_s(st, "message"));
    printf("template: %s\nbranch: %s\n", bg_cli_s(st, "template_id"), bg_cli_s(st, "branch"));
    printf("bytes: %s of %s\n", bg_cli_str(st, "bytes_received", buf, sizeof(buf)),
           bg_cli_str(st, "bytes_expected", b2, sizeof(b2)));
    const json_t *ups = json_object_get(st, "uploads");
    for (size_t i = 0; i < json_array_size(ups); i++) {
        const json_t *u = json_array_get(ups, i);
        printf("upload: %s %s (%s bytes, md5 %s)\n", bg_cli_s(u, "id"), bg_cli_s(u, "name"),
               bg_cli_str(u, "size", buf, sizeof(buf)), bg_cli_s(u, "md5hash"));
    }
    if (json_object_size(json_object_get(st, "results")) > 0)
        print_results(json_object_get(st, "results"));
}

const char *bg_cli_assembly_help(const char *topic)
{
    return topic != NULL && strcmp(topic, "assembly") == 0 ? assembly_help : NULL;
}
