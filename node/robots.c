/* node/robots.c — runs one robot of a template step on one input: reads
 * the step's options with bounds, picks the output names and paths, and
 * calls the libav module (node/media). A robot may produce several files
 * (thumbnails, a waveform's PNG and JSON) or none (measurements). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/media/image.h"
#include "node/media/media.h"
#include "node/media/video.h"
#include "node/media/waveform.h"
#include "pipeline_internal.h"
#include "proto/json.h"
#include "proto/mem.h"
#include "proto/tus.h"

static bg_err fail(bg_robot_outputs *out, bg_err e, const char *code, const char *msg)
{
    bg_strlcpy(out->code, code, sizeof(out->code));
    bg_strlcpy(out->message, msg, sizeof(out->message));
    return e;
}

static bg_err media_fail(bg_robot_outputs *out, bg_err e, const bg_media_err *me)
{
    return fail(out, e, me->code[0] ? me->code : "PROCESSING_ERROR", me->message);
}

static bg_robot_output *add(bg_robot_outputs *out)
{
    out->v = bg_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
    bg_robot_output *o = &out->v[out->n++];
    memset(o, 0, sizeof(*o));
    return o;
}

void bg_pl_robot_outputs_clear(bg_robot_outputs *out)
{
    for (size_t i = 0; i < out->n; i++)
        json_decref(out->v[i].meta);
    free(out->v);
    out->v = NULL;
    out->n = 0;
}

/* The stem of an input name (without its last extension). */
static void stem_of(const char *input, char *stem, size_t cap)
{
    bg_strlcpy(stem, input, cap);
    char *dot = strrchr(stem, '.');
    if (dot != NULL && dot != stem)
        *dot = '\0';
}

/* "{stem}{suffix}.{ext}", sanitised, as a file of dir_rel: o->name and
 * o->path (relative), abs (absolute). */
static bool name_output(const bg_node *n, const char *dir_rel, const char *input, const char *suffix,
                        const char *ext, bg_robot_output *o, char *abs, size_t cap)
{
    char stem[256], raw[320];
    stem_of(input, stem, sizeof(stem));
    snprintf(raw, sizeof(raw), "%.200s%s.%s", stem, suffix, ext);
    if (bg_tus_sanitize_name(raw, strlen(raw), o->name, sizeof(o->name)) != BG_OK)
        snprintf(o->name, sizeof(o->name), "output%s.%s", suffix, ext);
    int w = snprintf(o->path, sizeof(o->path), "%s/%s", dir_rel, o->name);
    return w > 0 && (size_t)w < sizeof(o->path) && bg_pl_abspath(n, o->path, abs, cap);
}

static int64_t file_size(const char *abs)
{
    struct stat st;
    return stat(abs, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* ---- options ---- */

static bool opt_int(const json_t *step, const char *key, int64_t min, int64_t max, int64_t dflt,
                    int64_t *v, bg_robot_outputs *out)
{
    bg_json_err je;
    *v = dflt;
    if (bg_json_get_int(step, key, false, min, max, v, &je) == BG_EINVAL) {
        fail(out, BG_EINVAL, "INVALID_OPTIONS", je.message);
        return false;
    }
    return true;
}

static bool opt_num(const json_t *step, const char *key, double min, double max, double *v,
                    bg_robot_outputs *out)
{
    const json_t *j = json_object_get(step, key);
    if (j == NULL)
        return true;
    if (!json_is_number(j) || json_number_value(j) < min || json_number_value(j) > max) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%s must be a number from %g to %g", key, min, max);
        fail(out, BG_EINVAL, "INVALID_OPTIONS", msg);
        return false;
    }
    *v = json_number_value(j);
    return true;
}

static bool opt_str(const json_t *step, const char *key, const char **v, bg_robot_outputs *out)
{
    const json_t *j = json_object_get(step, key);
    if (j == NULL)
        return true;
    if (!json_is_string(j)) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%s must be a string", key);
        fail(out, BG_EINVAL, "INVALID_OPTIONS", msg);
        return false;
    }
    *v = json_string_value(j);
    return true;
}

static bool opt_image_format(const json_t *step, bg_image_format dflt, bg_image_format *f,
                             bg_robot_outputs *out)
{
    const char *s = NULL;
    *f = dflt;
    if (!opt_str(step, "format", &s, out))
        return false;
    if (s != NULL && !bg_image_format_parse(s, f)) {
        fail(out, BG_EINVAL, "INVALID_OPTIONS", "format must be jpeg, png or webp");
        return false;
    }
    return true;
}

/* ---- robots ---- */

/* A measurement's output: no file, the input's name, the meta (stolen). */
static void meta_output(const bg_robot_input *in, json_t *meta, bg_robot_outputs *out)
{
    bg_robot_output *o = add(out);
    bg_strlcpy(o->name, in->name, sizeof(o->name));
    bg_strlcpy(o->mime, in->mime[0] ? in->mime : "application/octet-stream", sizeof(o->mime));
    o->size = in->size;
    o->meta = meta;
}

/* /meta/read's "loudness" option: measure the audio's loudness too
 * (default true; false makes the step a probe only). */
static bool opt_meta_loudness(const json_t *step, bool *v, bg_robot_outputs *out)
{
    const json_t *j = json_object_get(step, "loudness");
    *v = j == NULL || json_is_true(j);
    if (j != NULL && !json_is_boolean(j)) {
        fail(out, BG_EINVAL, "INVALID_OPTIONS", "loudness must be true or false");
        return false;
    }
    return true;
}

static bg_err run_meta(const json_t *step, const bg_robot_input *in, const bg_media_progress *p,
                       bool full, bg_robot_outputs *out)
{
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bool loud = true;
    if (full && !opt_meta_loudness(step, &loud, out))
        return BG_EINVAL;
    bg_err e = full ? bg_media_meta_read(in->path, loud, p, &meta, &me)
                    : bg_media_loudness(in->path, p, &meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    meta_output(in, meta, out);
    return BG_OK;
}

/* The /audio/encode options of step; *ext and *mime of the format. */
static bool audio_encode_opts(const json_t *step, bg_audio_encode_opts *o, const char **ext,
                              const char **mime, bg_robot_outputs *out)
{
    memset(o, 0, sizeof(*o));
    o->format = "mp3";
    int64_t bitrate, rate, channels;
    double target = 0;
    if (!opt_str(step, "format", &o->format, out) ||
        !opt_int(step, "bitrate", 8000, 320000, 128000, &bitrate, out) ||
        !opt_int(step, "sample_rate", 0, 192000, 0, &rate, out) ||
        !opt_int(step, "channels", 0, 2, 0, &channels, out) ||
        !opt_num(step, "start", 0, 1e7, &o->start_s, out) ||
        !opt_num(step, "duration", 0, 1e7, &o->duration_s, out) ||
        !opt_num(step, "loudness_target", -70, -5, &target, out))
        return false;
    o->bitrate = bitrate;
    o->sample_rate = (int)rate;
    o->channels = (int)channels;
    o->normalize = json_object_get(step, "loudness_target") != NULL;
    o->loudness_target = target;
    if (!bg_media_audio_format(o->format, ext, mime)) {
        fail(out, BG_EINVAL, "INVALID_OPTIONS", "format must be mp3, aac or opus");
        return false;
    }
    return true;
}

static bg_err run_audio_encode(const bg_node *n, const json_t *step, const bg_robot_input *in,
                               const char *dir_rel, const bg_media_progress *p,
                               bg_robot_outputs *out)
{
    bg_audio_encode_opts o;
    const char *ext = NULL, *mime = NULL;
    if (!audio_encode_opts(step, &o, &ext, &mime, out))
        return BG_EINVAL;
    bg_robot_output *r = add(out);
    char abs[4200];
    if (!name_output(n, dir_rel, in->name, "", ext, r, abs, sizeof(abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_media_err me = {{0}, {0}};
    bg_err e = bg_media_audio_encode(in->path, abs, &o, p, &r->meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    r->size = file_size(abs);
    bg_strlcpy(r->mime, mime, sizeof(r->mime));
    return BG_OK;
}

static bg_err run_video_encode(const bg_node *n, const json_t *step, const bg_robot_input *in,
                               const char *dir_rel, const bg_media_progress *p,
                               bg_robot_outputs *out)
{
    bg_video_encode_opts o;
    bg_video_encode_opts_init(&o);
    int64_t w, h, crf, vb, ab;
    if (!opt_int(step, "width", 0, 8192, 0, &w, out) || !opt_int(step, "height", 0, 8192, 0, &h, out) ||
        !opt_int(step, "crf", -1, 51, -1, &crf, out) ||
        !opt_int(step, "bitrate", 0, 200000000, 0, &vb, out) ||
        !opt_int(step, "audio_bitrate", 0, 512000, 0, &ab, out) ||
        !opt_str(step, "preset", &o.preset, out) || !opt_num(step, "fps", 0, 240, &o.max_fps, out) ||
        !opt_num(step, "start", 0, 1e7, &o.start_s, out) ||
        !opt_num(step, "duration", 0, 1e7, &o.duration_s, out))
        return BG_EINVAL;
    o.width = (int)w;
    o.height = (int)h;
    o.crf = (int)crf;
    o.video_bitrate = vb;
    o.audio_bitrate = ab;
    bg_robot_output *r = add(out);
    char abs[4200];
    if (!name_output(n, dir_rel, in->name, "", "mp4", r, abs, sizeof(abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_media_err me = {{0}, {0}};
    bg_err e = bg_media_video_encode(in->path, abs, &o, p, &r->meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    r->size = file_size(abs);
    bg_strlcpy(r->mime, "video/mp4", sizeof(r->mime));
    return BG_OK;
}

#define THUMB_OFFSETS_MAX 64

static bg_err run_thumbs(const bg_node *n, const json_t *step, const bg_robot_input *in,
                         const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    bg_thumbs_opts o;
    memset(&o, 0, sizeof(o));
    int64_t count, width, quality;
    double offsets[THUMB_OFFSETS_MAX];
    const json_t *offs = json_object_get(step, "offsets");
    if (!opt_int(step, "count", 1, THUMB_OFFSETS_MAX, 3, &count, out) ||
        !opt_int(step, "width", 0, 8192, 0, &width, out) ||
        !opt_int(step, "quality", 0, 100, 0, &quality, out) ||
        !opt_image_format(step, BG_IMAGE_JPEG, &o.format, out))
        return BG_EINVAL;
    if (offs != NULL && (!json_is_array(offs) || json_array_size(offs) == 0 ||
                         json_array_size(offs) > THUMB_OFFSETS_MAX))
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "offsets must be a list of 1 to 64 numbers");
    for (size_t i = 0; offs != NULL && i < json_array_size(offs); i++) {
        const json_t *v = json_array_get(offs, i);
        if (!json_is_number(v) || json_number_value(v) < 0)
            return fail(out, BG_EINVAL, "INVALID_OPTIONS", "offsets must be non-negative numbers");
        offsets[o.n_offsets++] = json_number_value(v);
    }
    o.offsets = o.n_offsets ? offsets : NULL;
    o.count = (int)count;
    o.width = (int)width;
    o.quality = (int)quality;
    char stem[256], abs_dir[4200];
    stem_of(in->name, stem, sizeof(stem));
    if (!bg_pl_abspath(n, dir_rel, abs_dir, sizeof(abs_dir)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    char sane[256];
    if (bg_tus_sanitize_name(stem, strlen(stem), sane, sizeof(sane)) != BG_OK)
        bg_strlcpy(sane, "thumb", sizeof(sane));
    bg_media_thumb *th = NULL;
    size_t nth = 0;
    bg_media_err me = {{0}, {0}};
    bg_err e = bg_media_thumbs(in->path, abs_dir, sane, &o, p, &th, &nth, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    for (size_t i = 0; i < nth; i++) {
        bg_robot_output *r = add(out);
        bg_strlcpy(r->name, th[i].name, sizeof(r->name));
        snprintf(r->path, sizeof(r->path), "%s/%s", dir_rel, th[i].name);
        r->size = th[i].size;
        bg_strlcpy(r->mime, bg_image_format_mime(o.format), sizeof(r->mime));
        r->meta = json_pack("{s:f,s:f,s:i,s:i}", "offset", th[i].offset, "time", th[i].time,
                            "width", th[i].width, "height", th[i].height);
    }
    free(th);
    return BG_OK;
}

static bg_err run_resize(const bg_node *n, const json_t *step, const bg_robot_input *in,
                         const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    bg_resize_opts o;
    memset(&o, 0, sizeof(o));
    int64_t w, h, quality;
    const char *fit = NULL;
    if (!opt_int(step, "width", 0, 16384, 0, &w, out) ||
        !opt_int(step, "height", 0, 16384, 0, &h, out) ||
        !opt_int(step, "quality", 0, 100, 0, &quality, out) ||
        !opt_image_format(step, BG_IMAGE_JPEG, &o.format, out) || !opt_str(step, "fit", &fit, out))
        return BG_EINVAL;
    if (fit != NULL && !bg_image_fit_parse(fit, &o.fit))
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "fit must be contain, cover or fill");
    o.width = (int)w;
    o.height = (int)h;
    o.quality = (int)quality;
    bg_robot_output *r = add(out);
    char abs[4200];
    if (!name_output(n, dir_rel, in->name, "", bg_image_format_ext(o.format), r, abs, sizeof(abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_media_err me = {{0}, {0}};
    bg_err e = bg_media_image_resize(in->path, abs, &o, p, &r->meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    r->size = file_size(abs);
    bg_strlcpy(r->mime, bg_image_format_mime(o.format), sizeof(r->mime));
    return BG_OK;
}

/* The /audio/waveform options of step; *peaks = whether the JSON is wanted. */
static bool waveform_opts(const json_t *step, bg_waveform_opts *o, bool *peaks,
                          bg_robot_outputs *out)
{
    memset(o, 0, sizeof(*o));
    int64_t w, h, bits;
    const json_t *pk = json_object_get(step, "peaks");
    *peaks = pk == NULL || json_is_true(pk);
    if (!opt_int(step, "width", 0, BG_WAVEFORM_MAX_WIDTH, 0, &w, out) ||
        !opt_int(step, "height", 0, BG_WAVEFORM_MAX_HEIGHT, 0, &h, out) ||
        !opt_int(step, "bits", 0, 16, 0, &bits, out) ||
        !opt_str(step, "foreground", &o->foreground, out) ||
        !opt_str(step, "background", &o->background, out))
        return false;
    o->width = (int)w;
    o->height = (int)h;
    o->bits = (int)bits;
    return true;
}

/* Names the waveform's PNG (and JSON when peaks) outputs: *png and *js
 * point into out (js NULL without peaks). */
static bool waveform_outputs(const bg_node *n, const char *dir_rel, const bg_robot_input *in,
                             bool peaks, bg_robot_outputs *out, size_t *png, size_t *js,
                             char *png_abs, char *json_abs, size_t cap)
{
    *png = out->n;
    if (!name_output(n, dir_rel, in->name, "", "png", add(out), png_abs, cap))
        return false;
    *js = SIZE_MAX;
    if (!peaks)
        return true;
    *js = out->n;
    return name_output(n, dir_rel, in->name, "", "json", add(out), json_abs, cap);
}

/* Fills the waveform's outputs once its files are written. */
static void waveform_done(bg_robot_outputs *out, size_t png, size_t js, const char *png_abs,
                          const char *json_abs, json_t *meta)
{
    bg_robot_output *o = &out->v[png];
    o->size = file_size(png_abs);
    bg_strlcpy(o->mime, "image/png", sizeof(o->mime));
    o->meta = meta;
    if (js == SIZE_MAX)
        return;
    o = &out->v[js];
    o->size = file_size(json_abs);
    bg_strlcpy(o->mime, "application/json", sizeof(o->mime));
    o->meta = json_incref(meta);
}

static bg_err run_waveform(const bg_node *n, const json_t *step, const bg_robot_input *in,
                           const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    bg_waveform_opts o;
    bool peaks;
    if (!waveform_opts(step, &o, &peaks, out))
        return BG_EINVAL;
    char png_abs[4200], json_abs[4200];
    size_t png, js;
    if (!waveform_outputs(n, dir_rel, in, peaks, out, &png, &js, png_abs, json_abs, sizeof(png_abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bg_err e = bg_media_waveform(in->path, png_abs, peaks ? json_abs : NULL, &o, p, &meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    waveform_done(out, png, js, png_abs, json_abs, meta);
    return BG_OK;
}

bg_err bg_pl_robot_run(bg_node *n, const json_t *step, const bg_robot_input *in,
                       const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    const char *robot = json_string_value(json_object_get(step, "robot"));
    if (robot == NULL)
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "the step has no robot");
    if (strcmp(robot, "/meta/read") == 0)
        return run_meta(step, in, p, true, out);
    if (strcmp(robot, "/audio/loudness") == 0)
        return run_meta(step, in, p, false, out);
    char abs[4200];
    if (!bg_pl_abspath(n, dir_rel, abs, sizeof(abs)) || bg_pl_mkdirs(abs, true) != BG_OK)
        return fail(out, BG_EIO, "OUTPUT_ERROR", "cannot create the step's output directory");
    if (strcmp(robot, "/audio/encode") == 0)
        return run_audio_encode(n, step, in, dir_rel, p, out);
    if (strcmp(robot, "/video/encode") == 0)
        return run_video_encode(n, step, in, dir_rel, p, out);
    if (strcmp(robot, "/video/thumbs") == 0)
        return run_thumbs(n, step, in, dir_rel, p, out);
    if (strcmp(robot, "/image/resize") == 0)
        return run_resize(n, step, in, dir_rel, p, out);
    if (strcmp(robot, "/audio/waveform") == 0)
        return run_waveform(n, step, in, dir_rel, p, out);
    char msg[160];
    snprintf(msg, sizeof(msg), "robot %s is not available on this branch", robot);
    return fail(out, BG_EMEDIA, "ROBOT_UNAVAILABLE", msg);
}

/* ---- several audio steps from one decode ---- */

bool bg_pl_robot_audio_groupable(const json_t *step)
{
    const char *r = json_string_value(json_object_get(step, "robot"));
    return r != NULL && (strcmp(r, "/meta/read") == 0 || strcmp(r, "/audio/loudness") == 0 ||
                         strcmp(r, "/audio/encode") == 0 || strcmp(r, "/audio/waveform") == 0);
}

/* What one step of a group asked of the shared decode. */
typedef struct group_step {
    const char *robot;
    size_t job;            /* its job in the decode */
    bg_waveform_acc *acc;  /* waveform */
    bool peaks;
    const char *mime;      /* encode */
    char abs[4200];        /* encode: the file; waveform: the PNG */
    char json_abs[4200];   /* waveform: the JSON */
    size_t first;          /* its first output in outs[i] */
} group_step;

/* Removes the files of out's outputs from first on, and drops them. */
static void outputs_undo(const bg_node *n, bg_robot_outputs *out, size_t first)
{
    for (size_t k = first; k < out->n; k++) {
        char abs[4200];
        if (out->v[k].path[0] && bg_pl_abspath(n, out->v[k].path, abs, sizeof(abs)))
            unlink(abs);
        json_decref(out->v[k].meta);
    }
    if (first < out->n)
        out->n = first;
}

void bg_pl_robot_outputs_remove(const bg_node *n, bg_robot_outputs *out)
{
    outputs_undo(n, out, 0);
}

static void group_undo(const bg_node *n, bg_robot_outputs *outs, const size_t *first, size_t nsteps)
{
    for (size_t i = 0; i < nsteps; i++)
        outputs_undo(n, &outs[i], first[i]);
}

/* The full-window loudness job, added once and shared. */
static size_t loudness_job(bg_audio_multi_job *jobs, size_t *nj, size_t *shared)
{
    if (*shared == SIZE_MAX) {
        memset(&jobs[*nj], 0, sizeof(jobs[*nj]));
        jobs[*nj].kind = BG_AUDIO_JOB_LOUDNESS;
        *shared = (*nj)++;
    }
    return *shared;
}

/* Reads step i's options into its job and names its outputs. */
static bool group_plan(bg_node *n, const json_t *step, const char *dir_rel, const bg_robot_input *in,
                       group_step *g, bg_audio_multi_job *jobs, size_t *nj, size_t *loud,
                       bg_robot_outputs *out)
{
    g->robot = json_string_value(json_object_get(step, "robot"));
    g->first = out->n;
    g->job = SIZE_MAX;
    bool measure = true;
    if (strcmp(g->robot, "/meta/read") == 0 && !opt_meta_loudness(step, &measure, out))
        return false;
    if (strcmp(g->robot, "/meta/read") == 0 || strcmp(g->robot, "/audio/loudness") == 0) {
        if (measure)
            g->job = loudness_job(jobs, nj, loud);
        return true;
    }
    char abs_dir[4200];
    if (!bg_pl_abspath(n, dir_rel, abs_dir, sizeof(abs_dir)) || bg_pl_mkdirs(abs_dir, true) != BG_OK)
        return false;
    bg_audio_multi_job *j = &jobs[*nj];
    memset(j, 0, sizeof(*j));
    g->job = (*nj)++;
    if (strcmp(g->robot, "/audio/encode") == 0) {
        const char *ext = NULL;
        j->kind = BG_AUDIO_JOB_ENCODE;
        j->out = g->abs;
        return audio_encode_opts(step, &j->opts, &ext, &g->mime, out) &&
               name_output(n, dir_rel, in->name, "", ext, add(out), g->abs, sizeof(g->abs));
    }
    bg_waveform_opts wo;
    size_t png, js;
    bg_media_err me = {{0}, {0}};
    j->kind = BG_AUDIO_JOB_SAMPLES;
    j->on_samples = bg_waveform_acc_on_samples;
    if (!waveform_opts(step, &wo, &g->peaks, out) ||
        bg_waveform_acc_create(&wo, 0, 0, &g->acc, &me) != BG_OK)
        return false;
    j->ud = g->acc;
    return waveform_outputs(n, dir_rel, in, g->peaks, out, &png, &js, g->abs, g->json_abs,
                            sizeof(g->abs));
}

/* Step i's outputs once the decode succeeded. */
static bool group_finish(group_step *g, const bg_robot_input *in, const json_t *probe,
                         json_t *results, bg_robot_outputs *out)
{
    json_t *r = g->job == SIZE_MAX ? NULL : json_array_get(results, g->job);
    if (strcmp(g->robot, "/meta/read") == 0) {
        json_t *meta = json_deep_copy(probe);
        if (r != NULL)
            json_object_set_new(meta, "loudness", json_deep_copy(r));
        meta_output(in, meta, out);
    } else if (strcmp(g->robot, "/audio/loudness") == 0) {
        meta_output(in, json_deep_copy(r), out);
    } else if (strcmp(g->robot, "/audio/encode") == 0) {
        bg_robot_output *o = &out->v[g->first];
        o->size = file_size(g->abs);
        bg_strlcpy(o->mime, g->mime, sizeof(o->mime));
        o->meta = json_incref(r);
    } else {
        json_t *meta = NULL;
        bg_media_err me = {{0}, {0}};
        if (bg_waveform_acc_finish(g->acc, g->abs, g->peaks ? g->json_abs : NULL, &meta, &me) != BG_OK)
            return false;
        waveform_done(out, g->first, g->peaks ? g->first + 1 : SIZE_MAX, g->abs, g->json_abs, meta);
    }
    return true;
}

bg_err bg_pl_robot_run_audio_group(bg_node *n, const json_t *const *steps,
                                   const char *const *dirs, size_t nsteps,
                                   const bg_robot_input *in, const bg_media_progress *p,
                                   bg_robot_outputs *outs)
{
    if (nsteps < 2 || nsteps > BG_ROBOT_GROUP_MAX)
        return BG_EINVAL;
    group_step *g = bg_xcalloc(nsteps, sizeof(*g));
    size_t first[BG_ROBOT_GROUP_MAX];
    bg_audio_multi_job jobs[BG_ROBOT_GROUP_MAX];
    size_t nj = 0, loud = SIZE_MAX;
    json_t *probe = NULL, *results = NULL;
    bg_media_err me = {{0}, {0}};
    bg_err e = BG_OK;
    for (size_t i = 0; i < nsteps; i++)
        first[i] = outs[i].n;
    /* Audio that the probe does not see goes the one-step way, where each
     * robot says what is wrong with it. */
    if (bg_media_probe(in->path, &probe, &me) != BG_OK ||
        !json_is_true(json_object_get(probe, "has_audio")))
        e = BG_EMEDIA;
    for (size_t i = 0; e == BG_OK && i < nsteps; i++)
        if (!group_plan(n, steps[i], dirs[i], in, &g[i], jobs, &nj, &loud, &outs[i]))
            e = BG_EINVAL;
    if (e == BG_OK)
        e = bg_media_audio_multi(in->path, jobs, nj, p, &results, &me);
    for (size_t i = 0; e == BG_OK && i < nsteps; i++)
        if (!group_finish(&g[i], in, probe, results, &outs[i]))
            e = BG_EIO;
    if (e != BG_OK)
        group_undo(n, outs, first, nsteps);
    for (size_t i = 0; i < nsteps; i++)
        bg_waveform_acc_destroy(g[i].acc);
    free(g);
    json_decref(results);
    json_decref(probe);
    return e;
}
