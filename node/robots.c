/* node/robots.c — runs one robot of a template step on one input: reads
 * the step's options with bounds, picks the output name and path, and calls
 * the libav module (node/media). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "node/media/media.h"
#include "pipeline_internal.h"
#include "proto/json.h"
#include "proto/mem.h"
#include "proto/tus.h"

static bg_err fail(bg_robot_output *out, bg_err e, const char *code, const char *msg)
{
    bg_strlcpy(out->code, code, sizeof(out->code));
    bg_strlcpy(out->message, msg, sizeof(out->message));
    return e;
}

static bg_err media_fail(bg_robot_output *out, bg_err e, const bg_media_err *me)
{
    return fail(out, e, me->code[0] ? me->code : "PROCESSING_ERROR", me->message);
}

/* "{stem of the input name}.{ext}", sanitised. */
static void output_name(const char *input, const char *ext, char *out, size_t cap)
{
    char stem[256];
    bg_strlcpy(stem, input, sizeof(stem));
    char *dot = strrchr(stem, '.');
    if (dot != NULL && dot != stem)
        *dot = '\0';
    char raw[300];
    snprintf(raw, sizeof(raw), "%.200s.%s", stem, ext);
    if (bg_tus_sanitize_name(raw, strlen(raw), out, cap) != BG_OK)
        snprintf(out, cap, "output.%s", ext);
}

static bg_err run_meta(const bg_robot_input *in, bg_robot_output *out)
{
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bg_err e = bg_media_probe(in->path, &meta, &me);
    if (e != BG_OK)
        return media_fail(out, e, &me);
    bg_strlcpy(out->name, in->name, sizeof(out->name));
    bg_strlcpy(out->mime, in->mime[0] ? in->mime : "application/octet-stream", sizeof(out->mime));
    out->size = in->size;
    out->meta = meta;
    return BG_OK;
}

/* Reads an integer option; absent = dflt. */
static bool opt_int(const json_t *step, const char *key, int64_t min, int64_t max, int64_t dflt,
                    int64_t *v, bg_robot_output *out)
{
    bg_json_err je;
    *v = dflt;
    bg_err e = bg_json_get_int(step, key, false, min, max, v, &je);
    if (e == BG_EINVAL) {
        fail(out, BG_EINVAL, "INVALID_OPTIONS", je.message);
        return false;
    }
    return true;
}

static bool opt_num(const json_t *step, const char *key, double max, double *v, bg_robot_output *out)
{
    const json_t *j = json_object_get(step, key);
    *v = 0;
    if (j == NULL)
        return true;
    if (!json_is_number(j) || json_number_value(j) < 0 || json_number_value(j) > max) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%s must be a number from 0 to %.0f", key, max);
        fail(out, BG_EINVAL, "INVALID_OPTIONS", msg);
        return false;
    }
    *v = json_number_value(j);
    return true;
}

static bg_err run_audio_encode(const json_t *step, const bg_robot_input *in, const char *dir_rel,
                               const bg_node *n, const bg_media_progress *p, bg_robot_output *out)
{
    bg_audio_encode_opts o;
    memset(&o, 0, sizeof(o));
    const char *format = json_string_value(json_object_get(step, "format"));
    o.format = format ? format : "mp3";
    int64_t bitrate, rate, channels;
    if (!opt_int(step, "bitrate", 8000, 320000, 128000, &bitrate, out) ||
        !opt_int(step, "sample_rate", 0, 192000, 0, &rate, out) ||
        !opt_int(step, "channels", 0, 2, 0, &channels, out) ||
        !opt_num(step, "start", 86400.0 * 7, &o.start_s, out) ||
        !opt_num(step, "duration", 86400.0 * 7, &o.duration_s, out))
        return BG_EINVAL;
    o.bitrate = bitrate;
    o.sample_rate = (int)rate;
    o.channels = (int)channels;
    output_name(in->name, strcmp(o.format, "mp3") == 0 ? "mp3" : o.format, out->name,
                sizeof(out->name));
    int w = snprintf(out->path, sizeof(out->path), "%s/%s", dir_rel, out->name);
    char abs[4200];
    if (w < 0 || (size_t)w >= sizeof(out->path) || !bg_pl_abspath(n, out->path, abs, sizeof(abs)))
        return fail(out, BG_EIO, "OUTPUT_ERROR", "output path too long");
    bg_media_err me = {{0}, {0}};
    json_t *meta = NULL;
    bg_err e = bg_media_audio_encode(in->path, abs, &o, p, &meta, &me);
    if (e != BG_OK) {
        out->path[0] = '\0';
        return media_fail(out, e, &me);
    }
    struct stat st;
    out->size = stat(abs, &st) == 0 ? (int64_t)st.st_size : 0;
    bg_strlcpy(out->mime, "audio/mpeg", sizeof(out->mime));
    out->meta = meta;
    return BG_OK;
}

bg_err bg_pl_robot_run(bg_node *n, const json_t *step, const bg_robot_input *in,
                       const char *dir_rel, const bg_media_progress *p, bg_robot_output *out)
{
    memset(out, 0, sizeof(*out));
    const char *robot = json_string_value(json_object_get(step, "robot"));
    if (robot == NULL)
        return fail(out, BG_EINVAL, "INVALID_OPTIONS", "the step has no robot");
    if (strcmp(robot, "/meta/read") == 0)
        return run_meta(in, out);
    char abs[4200];
    if (!bg_pl_abspath(n, dir_rel, abs, sizeof(abs)) || bg_pl_mkdirs(abs, true) != BG_OK)
        return fail(out, BG_EIO, "OUTPUT_ERROR", "cannot create the step's output directory");
    if (strcmp(robot, "/audio/encode") == 0)
        return run_audio_encode(step, in, dir_rel, n, p, out);
    char msg[160];
    snprintf(msg, sizeof(msg), "robot %s is not available on this branch yet", robot);
    return fail(out, BG_EMEDIA, "ROBOT_UNAVAILABLE", msg);
}
