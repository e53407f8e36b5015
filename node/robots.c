/* node/robots.c — runs one robot of a template step on one input: reads
 * the step's options with bounds, picks the output names and paths, and
 * calls the libav module (node/media). A robot may produce several files
 * (thumbnails, a waveform's PNG and JSON) or none (measurements). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static bg_err run_meta(const bg_robot_input *in, const bg_media_progress *p, bool full,
                       bg_robot_outputs *out)
{
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bg_err e = full ? bg_media_meta_read(in->path, true, p, &meta, &me)
                    : bg_media_loudness(in->path, p, &meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    bg_robot_output *o = add(out);
    bg_strlcpy(o->name, in->name, sizeof(o->name));
    bg_strlcpy(o->mime, in->mime[0] ? in->mime : "application/octet-stream", sizeof(o->mime));
    o->size = in->size;
    o->meta = meta;
    return BG_OK;
}

static bg_err run_audio_encode(const bg_node *n, const json_t *step, const bg_robot_input *in,
                               const char *dir_rel, const bg_media_progress *p,
                               bg_robot_outputs *out)
{
    bg_audio_encode_opts o;
    memset(&o, 0, sizeof(o));
    o.format = "mp3";
    int64_t bitrate, rate, channels;
    double target = 0;
    if (!opt_str(step, "format", &o.format, out) ||
        !opt_int(step, "bitrate", 8000, 320000, 128000, &bitrate, out) ||
        !opt_int(step, "sample_rate", 0, 192000, 0, &rate, out) ||
        !opt_int(step, "channels", 0, 2, 0, &channels, out) ||
        !opt_num(step, "start", 0, 1e7, &o.start_s, out) ||
        !opt_num(step, "duration", 0, 1e7, &o.duration_s, out) ||
        !opt_num(step, "loudness_target", -70, -5, &target, out))
        return BG_EINVAL;
    o.bitrate = bitrate;
    o.sample_rate = (int)rate;
    o.channels = (int)channels;
    o.normalize = json_object_get(step, "loudness_target") != NULL;
    o.loudness_target = target;
    const char *ext = NULL, *mime = NULL;
    if (!bg_media_audio_format(o.format, &ext, &mime))
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "format must be mp3, aac or opus");
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

static bg_err run_waveform(const bg_node *n, const json_t *step, const bg_robot_input *in,
                           const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    bg_waveform_opts o;
    memset(&o, 0, sizeof(o));
    int64_t w, h, bits;
    bool peaks = json_object_get(step, "peaks") == NULL || json_is_true(json_object_get(step, "peaks"));
    if (!opt_int(step, "width", 0, BG_WAVEFORM_MAX_WIDTH, 0, &w, out) ||
        !opt_int(step, "height", 0, BG_WAVEFORM_MAX_HEIGHT, 0, &h, out) ||
        !opt_int(step, "bits", 0, 16, 0, &bits, out) ||
        !opt_str(step, "foreground", &o.foreground, out) ||
        !opt_str(step, "background", &o.background, out))
        return BG_EINVAL;
    o.width = (int)w;
    o.height = (int)h;
    o.bits = (int)bits;
    bg_robot_output *png = add(out);
    char png_abs[4200], json_abs[4200];
    if (!name_output(n, dir_rel, in->name, "", "png", png, png_abs, sizeof(png_abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_robot_output *js = NULL;
    if (peaks) {
        js = add(out);
        png = &out->v[out->n - 2];
        if (!name_output(n, dir_rel, in->name, "", "json", js, json_abs, sizeof(json_abs)))
            return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    }
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bg_err e = bg_media_waveform(in->path, png_abs, peaks ? json_abs : NULL, &o, p, &meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    png->size = file_size(png_abs);
    bg_strlcpy(png->mime, "image/png", sizeof(png->mime));
    png->meta = meta;
    if (js != NULL) {
        js->size = file_size(json_abs);
        bg_strlcpy(js->mime, "application/json", sizeof(js->mime));
        js->meta = json_incref(meta);
    }
    return BG_OK;
}

bg_err bg_pl_robot_run(bg_node *n, const json_t *step, const bg_robot_input *in,
                       const char *dir_rel, const bg_media_progress *p, bg_robot_outputs *out)
{
    const char *robot = json_string_value(json_object_get(step, "robot"));
    if (robot == NULL)
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "the step has no robot");
    if (strcmp(robot, "/meta/read") == 0)
        return run_meta(in, p, true, out);
    if (strcmp(robot, "/audio/loudness") == 0)
        return run_meta(in, p, false, out);
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
