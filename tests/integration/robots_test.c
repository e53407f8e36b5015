/* The media robots through the pipeline on a real branch (docs/media.md,
 * DESIGN.md section 7): every assembly is created with POST
 * /api/v1/assemblies, its file sent over tus, the job run by the branch's
 * media worker, and the results downloaded from /api/v1/files/... and
 * checked with ffprobe and ffmpeg's ebur128 meter, independently of the
 * libav code in node/media.
 *
 * Fixtures are generated at the start with the ffmpeg CLI from lavfi
 * sources in the temp dir: a 12 s 640x480 h264+aac mp4, 8 s of stereo
 * music-like audio (tones with a tremolo over pink noise) as wav and flac,
 * a 1200x800 png, and four corrupt files (the first 30% of the mp4, random
 * bytes named .mp4, an empty file, text named .mp3). The cancel test encodes
 * a 60 s clip to 720p with preset slow so the job is busy when it is
 * canceled.
 *
 * The branch has ONE media worker: a worker left hung by a corrupt input or
 * a cancel would stop the next assembly from completing, which the tests
 * check. Its templates are a copy of the bundled ones plus the test's own
 * (loudness-normalised encodes and the slow encode). Last, the branch stops
 * cleanly (and, in a -DBG_SANITIZE=ON build, without a sanitizer report in
 * its log). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define CHUNK 1048576           /* uploads.chunk_max_bytes of the branch */
#define DONE_DEADLINE_MS 180000 /* one assembly, with room for an ASan build on a loaded box */
#define LOUD_TARGET (-16.0)
/* The robot stops within 1 s of a cancel (the unit tests assert that);
 * this bound leaves slack for ASan builds and a loaded machine. */
#define CANCEL_BOUND_MS 3000

/* Both normalised encodes of one input: a group with one decode. */
static const char loud_tpl[] =
    "{\"id\":\"loud16\",\"description\":\"AAC and Opus normalised to -16 LUFS.\",\"steps\":{"
    "\"aac\":{\"robot\":\"/audio/encode\",\"use\":\":original\",\"format\":\"aac\","
    "\"bitrate\":128000,\"loudness_target\":-16},"
    "\"opus\":{\"robot\":\"/audio/encode\",\"use\":\":original\",\"format\":\"opus\","
    "\"bitrate\":96000,\"loudness_target\":-16}},\"max_attempts\":1}\n";
/* One normalised encode alone: the single-step robot call. */
static const char loud_solo_tpl[] =
    "{\"id\":\"loud16-solo\",\"description\":\"Opus normalised to -16 LUFS.\",\"steps\":{"
    "\"opus\":{\"robot\":\"/audio/encode\",\"use\":\":original\",\"format\":\"opus\","
    "\"bitrate\":96000,\"loudness_target\":-16}},\"max_attempts\":1}\n";
/* /meta/read without the loudness measurement: alone (the one-step robot
 * call) and next to an encode of the same input (the shared decode). */
static const char quick_tpl[] =
    "{\"id\":\"probe-quick\",\"description\":\"Metadata without loudness.\",\"steps\":{"
    "\"meta\":{\"robot\":\"/meta/read\",\"use\":\":original\",\"loudness\":false}}}\n";
static const char quick_mp3_tpl[] =
    "{\"id\":\"meta-mp3\",\"description\":\"Metadata without loudness, and an mp3.\",\"steps\":{"
    "\"meta\":{\"robot\":\"/meta/read\",\"use\":\":original\",\"loudness\":false},"
    "\"mp3\":{\"robot\":\"/audio/encode\",\"use\":\":original\",\"format\":\"mp3\"}}}\n";
/* A slow video encode (60 s to 720p, preset slow: tens of seconds). */
static const char slow_tpl[] =
    "{\"id\":\"slow-encode\",\"description\":\"720p h264, preset slow.\",\"steps\":{"
    "\"encode\":{\"robot\":\"/video/encode\",\"use\":\":original\",\"height\":720,\"crf\":23,"
    "\"preset\":\"slow\"}},\"max_attempts\":1}\n";

typedef struct media {
    char name[64];
    char path[320];
    char *data;
    size_t len;
    char md5[33];
} media;

static struct {
    char root[256];
    char tpl_dir[320];
    char tpl_env[400];
    bg_th_proc s;
    media video, audio, flac, image, trunc, rnd, empty, text, lng, after, next;
    bg_th_sse live; /* static: a failed test leaves no dangling stack frame */
} M;

/* ---- fixtures ---- */

static const char *const *env_s(void)
{
    static const char *e[12];
    size_t n = 0;
    e[n++] = "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=1048576";
    e[n++] = "BRANCHGATE_JOBS_WORKERS=1";
    e[n++] = "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10";
    e[n++] = "BRANCHGATE_SSE_HEARTBEAT_S=1";
    e[n++] = M.tpl_env;
    e[n] = NULL;
    return e;
}

/* Reads root/name into m (data, length, md5). */
static bool load(media *m, const char *name)
{
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->path, sizeof(m->path), "%s/%s", M.root, name);
    free(m->data);
    m->data = bg_th_read_file(m->path, &m->len);
    if (m->data == NULL) {
        fprintf(stderr, "cannot read %s\n", m->path);
        return false;
    }
    bg_th_md5_hex(m->data, m->len, m->md5);
    return true;
}

/* ffmpeg -hide_banner -loglevel error -y ARGS... root/name, then load. */
static bool ffmpeg(media *m, const char *name, const char *const *args)
{
    const char *argv[48] = {"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
    size_t n = 6;
    char out[320];
    for (const char *const *a = args; *a != NULL && n < 46; a++)
        argv[n++] = *a;
    snprintf(out, sizeof(out), "%s/%s", M.root, name);
    argv[n++] = out;
    argv[n] = NULL;
    if (bg_th_exec(argv, NULL, NULL) != 0) {
        fprintf(stderr, "ffmpeg failed for %s\n", name);
        return false;
    }
    return load(m, name);
}

/* A file of given bytes in the root. */
static bool make_raw(media *m, const char *name, const void *data, size_t len)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/%s", M.root, name);
    return bg_th_write_file(path, data, len) && load(m, name);
}

static bool make_fixtures(void)
{
    static const char music[] =
        "aevalsrc=exprs=0.25*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*2*t))+0.12*sin(2*PI*330*t)"
        "|0.25*sin(2*PI*277*t)*(0.6+0.4*sin(2*PI*3*t))+0.12*sin(2*PI*415*t):s=44100:d=8";
    const char *video[] = {"-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-f", "lavfi",
                           "-i", "sine=frequency=440:sample_rate=44100", "-t", "12", "-c:v",
                           "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
                           "-c:a", "aac", "-b:a", "96k", "-shortest", NULL};
    const char *audio[] = {"-f", "lavfi", "-i", music, "-f", "lavfi", "-i",
                           "anoisesrc=color=pink:amplitude=0.15:sample_rate=44100:seed=7:"
                           "duration=8",
                           "-filter_complex",
                           "[1]aformat=channel_layouts=stereo[n];[0][n]amix=inputs=2:normalize=0,"
                           "volume=0.3",
                           "-c:a", "pcm_s16le", NULL};
    char wav[320];
    snprintf(wav, sizeof(wav), "%s/music.wav", M.root);
    const char *flac[] = {"-i", wav, "-c:a", "flac", NULL};
    const char *image[] = {"-f", "lavfi", "-i", "testsrc2=size=1200x800", "-frames:v", "1", NULL};
    const char *lng[] = {"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi",
                         "-i", "sine=frequency=300:sample_rate=44100", "-t", "60", "-c:v",
                         "libx264", "-preset", "ultrafast", "-crf", "35", "-pix_fmt", "yuv420p",
                         "-c:a", "aac", "-b:a", "32k", "-shortest", NULL};
    const char *after[] = {"-f", "lavfi", "-i", "sine=frequency=523:sample_rate=22050", "-t", "1",
                           "-c:a", "pcm_s16le", NULL};
    const char *next[] = {"-f", "lavfi", "-i", "sine=frequency=659:sample_rate=22050", "-t", "1",
                          "-c:a", "pcm_s16le", NULL};
    if (!ffmpeg(&M.video, "clip.mp4", video) || !ffmpeg(&M.audio, "music.wav", audio) ||
        !ffmpeg(&M.flac, "music.flac", flac) || !ffmpeg(&M.image, "picture.png", image) ||
        !ffmpeg(&M.lng, "long.mp4", lng) || !ffmpeg(&M.after, "after.wav", after) ||
        !ffmpeg(&M.next, "next.wav", next))
        return false;
    /* Corrupt inputs. The mp4 was written without faststart: its index is
     * at the end, so its first 30% has none. */
    unsigned char rnd[65536];
    uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64: the same bytes every run */
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rnd[i] = (unsigned char)(x >> 24);
    }
    static const char text[] = "This is not audio.\nJust a few lines of text in a file whose "
                               "name says mp3.\n";
    return make_raw(&M.trunc, "truncated.mp4", M.video.data, M.video.len * 3 / 10) &&
           make_raw(&M.rnd, "random.mp4", rnd, sizeof(rnd)) &&
           make_raw(&M.empty, "empty.mp4", "", 0) &&
           make_raw(&M.text, "notes.mp3", text, sizeof(text) - 1);
}

static bool add_template(const char *id, const char *body)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s.json", M.tpl_dir, id);
    return bg_th_write_file(path, body, strlen(body));
}

/* ---- HTTP helpers ---- */

static const char *str(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static bool str_is(const json_t *j, const char *key, const char *want)
{
    const char *v = str(j, key);
    return v != NULL && strcmp(v, want) == 0;
}

static char *dumps(const json_t *j)
{
    return j != NULL ? json_dumps(j, JSON_COMPACT) : strdup("(null)");
}

static void print_json(const char *what, const json_t *j)
{
    char *s = dumps(j);
    fprintf(stderr, "%s: %.6000s\n", what, s);
    free(s);
}

/* A request with the admin token and an optional JSON body; asserts the
 * status and returns the parsed body (NULL when none). */
static json_t *req(const char *method, const char *path, const char *json, long want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(&M.s, method, path, M.s.token, json, &r), 0);
    if (r.status != want)
        fprintf(stderr, "%s %s: want %ld, got %ld: %s\n", method, path, want, r.status,
                r.body ? r.body : "");
    assert_int_equal(r.status, want);
    json_t *j = r.len > 0 ? bg_th_json(&r) : NULL;
    bg_th_resp_free(&r);
    return j;
}

static json_t *status_of(const char *id)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    return req("GET", path, NULL, 200);
}

/* Creates the assembly of one file with its md5 announced (201) and
 * copies its id; the status JSON. */
static json_t *create(const char *tpl, const media *m, char id[65])
{
    json_t *b = json_pack("{s:s,s:[{s:s,s:I,s:s}]}", "template_id", tpl, "files", "name", m->name,
                          "size", (json_int_t)m->len, "md5", m->md5);
    char *body = dumps(b);
    json_decref(b);
    json_t *st = req("POST", "/api/v1/assemblies", body, 201);
    free(body);
    assert_true(str_is(st, "ok", "ASSEMBLY_UPLOADING"));
    snprintf(id, 65, "%s", str(st, "assembly_id"));
    assert_int_equal(strlen(id), 64);
    return st;
}

static void upload(const json_t *st, const media *m)
{
    char loc[600];
    assert_int_equal(bg_th_tus_upload(str(st, "tus_url"), M.s.token, str(st, "assembly_id"),
                                      m->name, m->data, m->len, CHUNK, loc, sizeof(loc), NULL),
                     0);
}

/* Polls until the assembly is finished: completed, canceled or failed (has
 * an error). The last status, or NULL after the deadline (printed). */
static json_t *wait_finished(const char *id, int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    json_t *st = NULL;
    while (bg_th_now_ms() < end) {
        json_decref(st);
        st = status_of(id);
        if (str_is(st, "ok", "ASSEMBLY_COMPLETED") || str_is(st, "ok", "ASSEMBLY_CANCELED") ||
            json_object_get(st, "error") != NULL)
            return st;
        bg_th_nap_ms(50);
    }
    fprintf(stderr, "assembly %s did not finish in %d ms\n", id, deadline_ms);
    print_json("last status", st);
    json_decref(st);
    bg_th_print_log(&M.s);
    return NULL;
}

/* create + upload + wait; asserts completion and returns the status. */
static json_t *run_ok(const char *tpl, const media *m, char id[65])
{
    json_t *st = create(tpl, m, id);
    long long t0 = bg_th_now_ms();
    upload(st, m);
    json_decref(st);
    st = wait_finished(id, DONE_DEADLINE_MS);
    assert_non_null(st);
    if (!str_is(st, "ok", "ASSEMBLY_COMPLETED")) {
        print_json("not completed", st);
        bg_th_print_log(&M.s);
    }
    assert_true(str_is(st, "ok", "ASSEMBLY_COMPLETED"));
    assert_null(json_object_get(st, "error"));
    fprintf(stderr, "%s on %s: completed %lld ms after the upload began\n", tpl, m->name,
            bg_th_now_ms() - t0);
    return st;
}

/* The results of one step (borrowed); asserts there are n of them. */
static json_t *results_of(const json_t *st, const char *step, size_t n)
{
    json_t *r = json_object_get(json_object_get(st, "results"), step);
    if (json_array_size(r) != n)
        print_json(step, r);
    assert_int_equal(json_array_size(r), n);
    return r;
}

/* Downloads a result (its ssl_url, admin token) to root/local; asserts 200
 * with the recorded size. */
static void download(const json_t *res, const char *local, char *path, size_t cap)
{
    const char *url = str(res, "ssl_url");
    assert_non_null(url);
    snprintf(path, cap, "%s/%s", M.root, local);
    bg_th_resp r;
    assert_int_equal(bg_th_http("GET", url, M.s.token, NULL, 0, NULL, false, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "GET %s: %ld %s\n", url, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, (size_t)json_integer_value(json_object_get(res, "size")));
    assert_true(bg_th_write_file(path, r.body, r.len));
    bg_th_resp_free(&r);
}

/* Downloads and probes a result; the probe (new reference). */
static json_t *download_probe(const json_t *res, const char *local)
{
    char path[400];
    download(res, local, path, sizeof(path));
    json_t *p = bg_th_ffprobe(path);
    if (p == NULL)
        fprintf(stderr, "ffprobe cannot read %s\n", path);
    assert_non_null(p);
    return p;
}

static long long int_of(const json_t *j, const char *key)
{
    return (long long)json_integer_value(json_object_get(j, key));
}

/* True when x is a number within tol of want (printed otherwise). */
static bool near(const char *what, const json_t *x, double want, double tol)
{
    bool ok = json_is_number(x) && fabs(json_number_value(x) - want) <= tol;
    if (!ok)
        fprintf(stderr, "%s: %g, want %g +- %g\n", what,
                json_is_number(x) ? json_number_value(x) : NAN, want, tol);
    return ok;
}

static bool near_d(const char *what, double x, double want, double tol)
{
    bool ok = isfinite(x) && fabs(x - want) <= tol;
    if (!ok)
        fprintf(stderr, "%s: %g, want %g +- %g\n", what, x, want, tol);
    return ok;
}

/* Regular files under dir (recursively) whose name ends with suffix (NULL:
 * any); 0 when dir does not exist. Their names go to stderr. */
static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[1200];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            n += count_files(p, suffix);
            continue;
        }
        size_t l = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix == NULL || (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0))
            n++;
    }
    closedir(d);
    return n;
}

static void outputs_dir(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/outputs/main/%s", M.s.dir, id);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    bg_th_tmpdir(M.root);
    snprintf(M.tpl_dir, sizeof(M.tpl_dir), "%s/templates", M.root);
    snprintf(M.tpl_env, sizeof(M.tpl_env), "BRANCHGATE_TEMPLATES_DIR=%s", M.tpl_dir);
    if (!bg_th_copy_templates(M.tpl_dir) || !add_template("loud16", loud_tpl) ||
        !add_template("loud16-solo", loud_solo_tpl) || !add_template("slow-encode", slow_tpl) ||
        !add_template("probe-quick", quick_tpl) || !add_template("meta-mp3", quick_mp3_tpl)) {
        fprintf(stderr, "cannot prepare the templates\n");
        return -1;
    }
    long long t0 = bg_th_now_ms();
    if (!make_fixtures())
        return -1;
    fprintf(stderr, "fixtures generated in %lld ms\n", bg_th_now_ms() - t0);
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/s", M.root);
    if (bg_th_start(&M.s, dir, NULL, env_s()) != 0) {
        bg_th_print_log(&M.s);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bg_th_stop(&M.s, SIGKILL, 5000);
    bg_th_sse_free(&M.live);
    media *all[] = {&M.video, &M.audio, &M.flac, &M.image, &M.trunc, &M.rnd,
                    &M.empty, &M.text,  &M.lng,  &M.after, &M.next};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->data);
    bg_th_rmtree(M.root);
    return 0;
}

/* ---- 1. video-preview: meta, a 360p mp4, three 320-wide jpegs ---- */

static void test_video_preview(void **state)
{
    (void)state;
    json_t *in = bg_th_ffprobe(M.video.path);
    double in_dur = bg_th_ffprobe_duration(in);
    json_decref(in);
    assert_true(isfinite(in_dur) && in_dur > 11.5 && in_dur < 12.5);

    char id[65], local[128];
    json_t *st = run_ok("video-preview", &M.video, id);

    /* meta: the input's duration, size and codec. */
    json_t *meta = json_object_get(json_array_get(results_of(st, "meta", 1), 0), "meta");
    assert_true(near("meta duration", json_object_get(meta, "duration"), in_dur, 0.1));
    assert_int_equal(int_of(meta, "width"), 640);
    assert_int_equal(int_of(meta, "height"), 480);
    assert_true(str_is(meta, "video_codec", "h264"));

    /* preview: h264 + aac, 360 high, the aspect kept (480 wide, even), the
     * input's duration. */
    json_t *res = json_array_get(results_of(st, "preview", 1), 0);
    assert_true(str_is(res, "mime", "video/mp4"));
    json_t *p = download_probe(res, "vp-preview.mp4");
    json_t *v = bg_th_ffprobe_stream(p, "video"), *a = bg_th_ffprobe_stream(p, "audio");
    assert_non_null(v);
    assert_non_null(a);
    fprintf(stderr, "preview: %s %lldx%lld + %s, %.3f s (input %.3f s)\n", str(v, "codec_name"),
            int_of(v, "width"), int_of(v, "height"), str(a, "codec_name"),
            bg_th_ffprobe_duration(p), in_dur);
    assert_true(str_is(v, "codec_name", "h264"));
    assert_true(str_is(a, "codec_name", "aac"));
    assert_int_equal(int_of(v, "height"), 360);
    assert_int_equal(int_of(v, "width"), 480);
    assert_int_equal(int_of(v, "width") % 2, 0);
    assert_true(near_d("preview duration", bg_th_ffprobe_duration(p), in_dur, 0.1));
    json_decref(p);

    /* thumbs: three jpegs, 320 wide (240 high: the aspect kept). */
    json_t *thumbs = results_of(st, "thumbs", 3);
    for (size_t i = 0; i < 3; i++) {
        res = json_array_get(thumbs, i);
        assert_true(str_is(res, "mime", "image/jpeg"));
        snprintf(local, sizeof(local), "vp-thumb%zu.jpg", i);
        p = download_probe(res, local);
        v = bg_th_ffprobe_stream(p, "video");
        assert_non_null(v);
        assert_true(str_is(v, "codec_name", "mjpeg"));
        assert_int_equal(int_of(v, "width"), 320);
        assert_int_equal(int_of(v, "height"), 240);
        json_decref(p);
    }
    json_decref(st);
}

/* ---- 2. image-thumbnail: a 320x320 jpeg and a webp at most 1280 wide ---- */

static void test_image_thumbnail(void **state)
{
    (void)state;
    char id[65];
    json_t *st = run_ok("image-thumbnail", &M.image, id);
    json_t *res = json_array_get(results_of(st, "thumb", 1), 0);
    assert_true(str_is(res, "mime", "image/jpeg"));
    json_t *p = download_probe(res, "it-thumb.jpg");
    json_t *v = bg_th_ffprobe_stream(p, "video");
    assert_non_null(v);
    assert_true(str_is(v, "codec_name", "mjpeg"));
    assert_int_equal(int_of(v, "width"), 320);
    assert_int_equal(int_of(v, "height"), 320);
    json_decref(p);

    res = json_array_get(results_of(st, "large", 1), 0);
    assert_true(str_is(res, "mime", "image/webp"));
    p = download_probe(res, "it-large.webp");
    v = bg_th_ffprobe_stream(p, "video");
    assert_non_null(v);
    long long w = int_of(v, "width"), h = int_of(v, "height");
    fprintf(stderr, "large: %s %lldx%lld\n", str(v, "codec_name"), w, h);
    assert_true(str_is(v, "codec_name", "webp"));
    assert_true(w >= 320 && w <= 1280 && h > 0);
    /* 3:2 like the input, to a pixel of rounding. */
    assert_true(llabs(w * 2 - h * 3) <= 3);
    json_decref(p);
    json_decref(st);
}

/* ---- 3. probe: metadata only, no file; loudness for audio ---- */

static void test_probe_audio(void **state)
{
    (void)state;
    char id[65], dir[400];
    json_t *st = run_ok("probe", &M.flac, id);
    assert_int_equal(json_object_size(json_object_get(st, "results")), 1);
    json_t *res = json_array_get(results_of(st, "meta", 1), 0);
    assert_true(json_is_null(json_object_get(res, "ssl_url")));
    outputs_dir(id, dir, sizeof(dir));
    assert_int_equal(count_files(dir, NULL), 0);
    json_t *meta = json_object_get(res, "meta");
    assert_true(json_is_true(json_object_get(meta, "has_audio")));
    assert_true(near("probe duration", json_object_get(meta, "duration"), 8.0, 0.05));
    assert_int_equal(int_of(meta, "channels"), 2);
    assert_int_equal(int_of(meta, "sample_rate"), 44100);
    assert_true(str_is(meta, "audio_codec", "flac"));
    json_t *loud = json_object_get(meta, "loudness");
    if (!json_is_object(loud))
        print_json("probe meta", meta);
    assert_true(json_is_object(loud));
    double ref = bg_th_ebur128_lufs(M.flac.path);
    fprintf(stderr, "probe loudness %g LUFS, ffmpeg ebur128 %g LUFS\n",
            json_number_value(json_object_get(loud, "integrated_lufs")), ref);
    assert_true(near("probe integrated_lufs", json_object_get(loud, "integrated_lufs"), ref, 0.5));
    assert_true(json_is_number(json_object_get(loud, "loudness_range_lu")));
    json_decref(st);
}

/* "loudness": false leaves the measurement out, alone and in a shared decode. */
static void test_meta_without_loudness(void **state)
{
    (void)state;
    char id[65];
    json_t *st = run_ok("probe-quick", &M.flac, id);
    json_t *meta = json_object_get(json_array_get(results_of(st, "meta", 1), 0), "meta");
    assert_true(json_is_true(json_object_get(meta, "has_audio")));
    assert_null(json_object_get(meta, "loudness"));
    json_decref(st);
    st = run_ok("meta-mp3", &M.flac, id);
    meta = json_object_get(json_array_get(results_of(st, "meta", 1), 0), "meta");
    assert_true(near("meta duration", json_object_get(meta, "duration"), 8.0, 0.05));
    assert_null(json_object_get(meta, "loudness"));
    assert_true(str_is(json_array_get(results_of(st, "mp3", 1), 0), "mime", "audio/mpeg"));
    json_decref(st);
}

/* ---- 4. audio-preview: meta, a 30 s mp3, a waveform and the loudness ---- */

/* The waveform step's width and height in the template as the branch has it. */
static void waveform_size(long long *w, long long *h)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audio-preview.json", M.tpl_dir);
    json_t *t = json_load_file(path, 0, NULL);
    json_t *wf = json_object_get(json_object_get(t, "steps"), "waveform");
    assert_non_null(wf);
    *w = json_object_get(wf, "width") ? int_of(wf, "width") : 1800;
    *h = json_object_get(wf, "height") ? int_of(wf, "height") : 280;
    json_decref(t);
}

static void test_audio_preview(void **state)
{
    (void)state;
    long long ww, wh;
    waveform_size(&ww, &wh);
    assert_int_equal(ww, 1800);
    char id[65], path[400];
    json_t *st = run_ok("audio-preview", &M.audio, id);
    assert_int_equal(json_object_size(json_object_get(st, "results")), 4);

    /* meta */
    json_t *meta = json_object_get(json_array_get(results_of(st, "meta", 1), 0), "meta");
    assert_true(near("meta duration", json_object_get(meta, "duration"), 8.0, 0.05));

    /* preview: min(8, 30) s of 44.1 kHz stereo mp3 */
    json_t *res = json_array_get(results_of(st, "preview", 1), 0);
    assert_true(str_is(res, "mime", "audio/mpeg"));
    json_t *p = download_probe(res, "ap-preview.mp3");
    json_t *a = bg_th_ffprobe_stream(p, "audio");
    assert_non_null(a);
    fprintf(stderr, "preview: %s %s Hz %lld ch %.3f s\n", str(a, "codec_name"),
            str(a, "sample_rate"), int_of(a, "channels"), bg_th_ffprobe_duration(p));
    assert_true(str_is(a, "codec_name", "mp3"));
    assert_int_equal(int_of(a, "channels"), 2);
    assert_true(str_is(a, "sample_rate", "44100"));
    assert_true(near_d("mp3 duration", bg_th_ffprobe_duration(p), fmin(8.0, 30.0), 0.1));
    json_decref(p);

    /* waveform: a PNG of the template's size, and v2 JSON peaks (min and
     * max per pixel column). */
    json_t *wf = results_of(st, "waveform", 2);
    json_t *png = NULL, *js = NULL;
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get(wf, i);
        if (str_is(r, "mime", "image/png"))
            png = r;
        else if (str_is(r, "mime", "application/json"))
            js = r;
    }
    assert_non_null(png);
    assert_non_null(js);
    p = download_probe(png, "ap-waveform.png");
    json_t *v = bg_th_ffprobe_stream(p, "video");
    assert_non_null(v);
    assert_true(str_is(v, "codec_name", "png"));
    assert_int_equal(int_of(v, "width"), ww);
    assert_int_equal(int_of(v, "height"), wh);
    json_decref(p);
    download(js, "ap-waveform.json", path, sizeof(path));
    json_t *peaks = json_load_file(path, 0, NULL);
    assert_non_null(peaks);
    assert_int_equal(int_of(peaks, "version"), 2);
    assert_int_equal(int_of(peaks, "length"), ww);
    json_t *data = json_object_get(peaks, "data");
    assert_true(json_is_array(data));
    assert_int_equal(json_array_size(data), (size_t)(2 * ww));
    json_decref(peaks);

    /* loudness: the same integrated loudness as ffmpeg's meter */
    json_t *loud = json_object_get(json_array_get(results_of(st, "loudness", 1), 0), "meta");
    double ref = bg_th_ebur128_lufs(M.audio.path);
    fprintf(stderr, "loudness %g LUFS, ffmpeg ebur128 %g LUFS\n",
            json_number_value(json_object_get(loud, "integrated_lufs")), ref);
    assert_true(near("integrated_lufs", json_object_get(loud, "integrated_lufs"), ref, 0.5));
    json_decref(st);
}

/* ---- 5. /audio/encode with loudness_target -16 (aac, opus) ---- */

/* One normalised result: its codec, its loudness as ffmpeg measures it,
 * and the normaliser's figures in its meta. */
static void check_normalised(const json_t *st, const char *step, const char *codec,
                             const char *local)
{
    json_t *res = json_array_get(results_of(st, step, 1), 0);
    char path[400];
    download(res, local, path, sizeof(path));
    json_t *p = bg_th_ffprobe(path);
    json_t *a = bg_th_ffprobe_stream(p, "audio");
    assert_non_null(a);
    assert_true(str_is(a, "codec_name", codec));
    assert_true(near_d("normalised duration", bg_th_ffprobe_duration(p), 8.0, 0.1));
    json_decref(p);
    double lufs = bg_th_ebur128_lufs(path);
    json_t *loud = json_object_get(json_object_get(res, "meta"), "loudness");
    char *s = dumps(loud);
    fprintf(stderr, "%s (%s): ffmpeg ebur128 %g LUFS; meta.loudness %s\n", step, codec, lufs, s);
    free(s);
    assert_true(near_d("normalised loudness", lufs, LOUD_TARGET, 1.0));
    assert_true(json_is_object(loud));
    assert_true(near("target_i", json_object_get(loud, "target_i"), LOUD_TARGET, 0.01));
    static const char *const nums[] = {"input_i", "input_tp", "input_lra", "output_i",
                                       "gain_db"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (!json_is_number(json_object_get(loud, nums[i])))
            fprintf(stderr, "meta.loudness.%s is missing\n", nums[i]);
        assert_true(json_is_number(json_object_get(loud, nums[i])));
    }
    assert_non_null(str(loud, "normalization_type"));
    /* The input measured about 9 LU under the target: the gain says so. */
    assert_true(json_number_value(json_object_get(loud, "input_i")) < LOUD_TARGET - 5);
}

static void test_loudness_target(void **state)
{
    (void)state;
    char id[65];
    json_t *st = run_ok("loud16", &M.audio, id);
    check_normalised(st, "aac", "aac", "loud16-aac.m4a");
    check_normalised(st, "opus", "opus", "loud16-opus.opus");
    json_decref(st);
    st = run_ok("loud16-solo", &M.audio, id);
    check_normalised(st, "opus", "opus", "loud16-solo.opus");
    json_decref(st);
}

/* ---- 6. corrupt inputs fail with INVALID_INPUT, nothing left, branch fine ---- */

static bool healthy(void)
{
    bg_th_resp r;
    bool ok = bg_th_get(&M.s, "/healthz", NULL, &r) == 0 && r.status == 200;
    bg_th_resp_free(&r);
    return ok && bg_th_alive(&M.s);
}

static void test_corrupt_inputs(void **state)
{
    (void)state;
    const media *bad[] = {&M.trunc, &M.rnd, &M.empty, &M.text};
    const char *tpls[] = {"probe", "video-preview"};
    char ids[8][65];
    size_t n = 0;
    /* All eight queued at once: the one worker takes them in turn. */
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < 4; i++) {
            json_t *st = create(tpls[t], bad[i], ids[n++]);
            upload(st, bad[i]);
            json_decref(st);
        }
    int failures = 0;
    n = 0;
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < 4; i++) {
            const char *id = ids[n++];
            json_t *st = wait_finished(id, DONE_DEADLINE_MS);
            assert_non_null(st);
            char dir[400];
            outputs_dir(id, dir, sizeof(dir));
            size_t left = count_files(dir, NULL);
            const char *msg = str(st, "message");
            bool ok = str_is(st, "error", "INVALID_INPUT") && json_object_get(st, "ok") == NULL &&
                      json_is_false(json_object_get(st, "retryable")) && msg != NULL &&
                      msg[0] != '\0' && left == 0 &&
                      json_object_size(json_object_get(st, "results")) == 0;
            fprintf(stderr, "%s on %s (%zu bytes): error %s, step %s, retryable %s, \"%s\"%s\n",
                    tpls[t], bad[i]->name, bad[i]->len, str(st, "error"), str(st, "step"),
                    json_is_false(json_object_get(st, "retryable")) ? "false" : "not false",
                    msg ? msg : "(no message)", ok ? "" : "  <-- WRONG");
            if (!ok) {
                print_json("  status", st);
                fprintf(stderr, "  %zu files left under %s\n", left, dir);
                failures++;
            }
            json_decref(st);
            if (!healthy()) {
                fprintf(stderr, "the branch stopped answering /healthz after %s\n", id);
                bg_th_print_log(&M.s);
                fail();
            }
        }
    if (failures > 0)
        bg_th_print_log(&M.s);
    assert_int_equal(failures, 0);
    /* The worker is not hung: a valid file right after completes. */
    char id[65];
    json_t *st = run_ok("probe", &M.after, id);
    json_decref(st);
    assert_true(healthy());
}

/* ---- 7. DELETE during a slow encode stops the robot promptly ---- */

/* branchgate_jobs{state="running"} from /metrics, or -1. */
static long long metric_running(void)
{
    bg_th_resp r;
    long long v = -1;
    if (bg_th_get(&M.s, "/metrics", M.s.token, &r) == 0 && r.status == 200 && r.body != NULL) {
        static const char key[] = "\nbranchgate_jobs{state=\"running\"} ";
        const char *at = strstr(r.body, key);
        if (at != NULL)
            v = strtoll(at + sizeof(key) - 1, NULL, 10);
    }
    bg_th_resp_free(&r);
    return v;
}

/* Jobs of the assembly in state (admin list). */
static size_t jobs_in(const char *id, const char *state)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/jobs?limit=500&state=%s", state);
    json_t *j = req("GET", path, NULL, 200);
    size_t i, n = 0;
    json_t *job;
    json_array_foreach(json_object_get(j, "jobs"), i, job) n += str_is(job, "assembly_id", id);
    json_decref(j);
    return n;
}

static bool completed(const char *id)
{
    json_t *st = status_of(id);
    bool ok = str_is(st, "ok", "ASSEMBLY_COMPLETED");
    json_decref(st);
    return ok;
}

static void test_cancel_mid_encode(void **state)
{
    (void)state;
    char id[65], next_id[65], dir[400], url[600], path[200];
    json_t *st = create("slow-encode", &M.lng, id);
    snprintf(url, sizeof(url), "%s/api/stream?channel=upload:main:%s", M.s.url, id);
    bg_th_sse_free(&M.live);
    assert_int_equal(bg_th_sse_start(&M.live, url, M.s.token, -1, 0, DONE_DEADLINE_MS), 0);
    assert_true(bg_th_sse_wait_connected(&M.live, 10000));
    assert_int_equal(M.live.status, 200);
    upload(st, &M.lng);
    json_decref(st);

    /* The encode is under way: progress reported and its .part written. */
    bool progressed = bg_th_sse_wait_event(&M.live, "step:progress", 120000);
    outputs_dir(id, dir, sizeof(dir));
    long long end = bg_th_now_ms() + 60000;
    while (count_files(dir, ".part") == 0 && bg_th_now_ms() < end)
        bg_th_nap_ms(10);
    size_t parts = count_files(dir, ".part");
    if (!progressed || parts == 0) {
        json_t *now = status_of(id);
        print_json("status", now);
        json_decref(now);
        bg_th_print_log(&M.s);
    }
    assert_true(progressed);
    assert_int_equal(parts, 1);
    assert_int_equal(jobs_in(id, "running"), 1);
    /* A small assembly waits behind it for the only worker. */
    st = create("probe", &M.next, next_id);
    upload(st, &M.next);
    json_decref(st);
    assert_int_equal(jobs_in(next_id, "queued"), 1);
    assert_int_equal(jobs_in(id, "running"), 1); /* the encode is still busy */

    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    long long t0 = bg_th_now_ms();
    st = req("DELETE", path, NULL, 200);
    assert_true(str_is(st, "ok", "ASSEMBLY_CANCELED"));
    json_decref(st);
    /* Until the partial output is gone, no job of the assembly runs, and
     * the worker has taken and finished the waiting assembly. */
    long long t_files = -1, t_next = -1, t_all = -1;
    end = t0 + 30000;
    while (bg_th_now_ms() < end) {
        long long now = bg_th_now_ms();
        if (t_files < 0 && count_files(dir, NULL) == 0)
            t_files = now - t0;
        if (t_next < 0 && completed(next_id))
            t_next = bg_th_now_ms() - t0;
        if (t_files >= 0 && t_next >= 0 && jobs_in(id, "running") == 0 &&
            metric_running() == 0) {
            t_all = bg_th_now_ms() - t0;
            break;
        }
        bg_th_nap_ms(10);
    }
    fprintf(stderr,
            "cancel: the .part was removed %lld ms after the DELETE; the worker finished the "
            "next assembly %lld ms after it; all settled in %lld ms (bound %d ms)\n",
            t_files, t_next, t_all, CANCEL_BOUND_MS);
    if (t_all < 0 || t_all > CANCEL_BOUND_MS) {
        fprintf(stderr, "files left: %zu (.part %zu), running jobs %zu, metric %lld\n",
                count_files(dir, NULL), count_files(dir, ".part"), jobs_in(id, "running"),
                metric_running());
        bg_th_print_log(&M.s);
    }
    assert_true(t_all >= 0);
    assert_true(t_all <= CANCEL_BOUND_MS);

    st = status_of(id);
    assert_true(str_is(st, "ok", "ASSEMBLY_CANCELED"));
    assert_null(json_object_get(st, "error"));
    assert_null(json_object_get(json_object_get(st, "results"), "encode"));
    json_decref(st);
    assert_int_equal(jobs_in(id, "canceled"), 1);
    /* The channel ended with the cancel, and the step never finished. */
    bg_th_sse_join(&M.live);
    assert_true(M.live.ended);
    assert_true(M.live.n > 0);
    assert_string_equal(M.live.ev[M.live.n - 1].name, "assembly:canceled");
    for (size_t i = 0; i < M.live.n; i++)
        assert_string_not_equal(M.live.ev[i].name, "step:done");
    bg_th_sse_free(&M.live);
    /* Nothing came back: no file appeared after the robot stopped. */
    assert_int_equal(count_files(dir, NULL), 0);
    assert_true(healthy());
}

/* ---- last: the branch stops cleanly, no sanitizer report ---- */

static void test_clean_shutdown(void **state)
{
    (void)state;
    int rc = bg_th_stop(&M.s, SIGTERM, 30000);
    if (rc != 0)
        fprintf(stderr, "%s exited with %d\n", M.s.log, rc);
    char *log = bg_th_read_file(M.s.log, NULL);
    const char *hit = NULL;
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "WARNING: ThreadSanitizer"};
    for (size_t m = 0; log != NULL && hit == NULL && m < 4; m++)
        hit = strstr(log, marks[m]);
    if (hit != NULL)
        fprintf(stderr, "%s:\n%.4000s\n", M.s.log, hit);
    free(log);
    assert_int_equal(rc, 0);
    assert_null(hit);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_preview),    cmocka_unit_test(test_image_thumbnail),
        cmocka_unit_test(test_probe_audio),
        cmocka_unit_test(test_meta_without_loudness),      cmocka_unit_test(test_audio_preview),
        cmocka_unit_test(test_loudness_target),  cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_cancel_mid_encode), cmocka_unit_test(test_clean_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
