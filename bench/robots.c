/*
 * bench/robots.c — bg_bench_robot: runs ONE in-process media robot
 * (node/media) on the given files and exits, so bench/robots.sh can time it
 * and read its peak RSS exactly like one run of the ffmpeg CLI.
 *
 *   bg_bench_robot audio-encode IN OUT FORMAT BITRATE [DURATION [SAMPLE_RATE [CHANNELS]]]
 *   bg_bench_robot video-encode IN OUT WIDTH [CRF [PRESET]]
 *   bg_bench_robot thumbs       IN OUTDIR COUNT WIDTH [FORMAT]
 *   bg_bench_robot resize       IN OUT WIDTH HEIGHT FIT FORMAT
 *   bg_bench_robot waveform     IN PNG JSON WIDTH HEIGHT
 *   bg_bench_robot loudness     IN
 *   bg_bench_robot probe        IN
 *   bg_bench_robot audio-preview IN MP3 PNG JSON
 *
 * audio-preview is the bundled template's work as its step runner does it
 * (node/robots.c, bg_pl_robot_run_audio_group): a probe, then ONE decode
 * (bg_media_audio_multi) feeding the 30 s mp3 preview (128k, 44.1 kHz
 * stereo), the loudness measurement and the 1800x280 waveform's
 * accumulator, whose PNG and JSON are written at the end.
 *
 * FORMAT for audio-encode: mp3, aac, opus (bg_audio_encode_opts); BITRATE in
 * bits/s; DURATION in seconds from the start (0 = all). Image FORMAT: jpeg,
 * png, webp; FIT: contain, cover, fill. A "-" for JSON or PNG of waveform
 * skips that output. No progress callback, default threads (libav's choice,
 * as the CLI).
 *
 * Prints the robot's result JSON (its meta) on one line on stdout; on
 * failure prints "CODE: message" on stderr and exits 1; bad usage exits 2.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/media/image.h"
#include "node/media/media.h"
#include "node/media/video.h"
#include "node/media/waveform.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: bg_bench_robot audio-encode IN OUT FORMAT BITRATE [DURATION [RATE [CHANNELS]]]\n"
            "       bg_bench_robot video-encode IN OUT WIDTH [CRF [PRESET]]\n"
            "       bg_bench_robot thumbs IN OUTDIR COUNT WIDTH [FORMAT]\n"
            "       bg_bench_robot resize IN OUT WIDTH HEIGHT FIT FORMAT\n"
            "       bg_bench_robot waveform IN PNG JSON WIDTH HEIGHT\n"
            "       bg_bench_robot loudness IN\n"
            "       bg_bench_robot probe IN\n"
            "       bg_bench_robot audio-preview IN MP3 PNG JSON\n");
    exit(2);
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "bg_bench_robot: not an integer: %s\n", s);
        exit(2);
    }
    return v;
}

static double dbl(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "bg_bench_robot: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

static bg_image_format image_format(const char *s)
{
    bg_image_format f;
    if (!bg_image_format_parse(s, &f)) {
        fprintf(stderr, "bg_bench_robot: unknown image format: %s\n", s);
        exit(2);
    }
    return f;
}

static bg_err audio_preview(const char *in, const char *mp3, const char *png, const char *js,
                            json_t **out, bg_media_err *e)
{
    json_t *probe = NULL, *results = NULL, *wave = NULL;
    bg_err err = bg_media_probe(in, &probe, e);
    if (err != BG_OK)
        return err;
    bg_waveform_opts wo = {.width = 1800, .height = 280, .bits = 8};
    bg_waveform_acc *acc = NULL;
    err = bg_waveform_acc_create(&wo, 0, 0, &acc, e);
    bg_audio_multi_job jobs[3];
    memset(jobs, 0, sizeof(jobs));
    jobs[0].kind = BG_AUDIO_JOB_ENCODE;
    jobs[0].out = mp3;
    jobs[0].opts.format = "mp3";
    jobs[0].opts.bitrate = 128000;
    jobs[0].opts.sample_rate = 44100;
    jobs[0].opts.channels = 2;
    jobs[0].opts.duration_s = 30;
    jobs[1].kind = BG_AUDIO_JOB_LOUDNESS;
    jobs[2].kind = BG_AUDIO_JOB_SAMPLES;
    jobs[2].on_samples = bg_waveform_acc_on_samples;
    jobs[2].ud = acc;
    if (err == BG_OK)
        err = bg_media_audio_multi(in, jobs, 3, NULL, &results, e);
    if (err == BG_OK)
        err = bg_waveform_acc_finish(acc, png, js, &wave, e);
    bg_waveform_acc_destroy(acc);
    if (err == BG_OK) {
        json_object_set(probe, "loudness", json_array_get(results, 1));
        *out = json_pack("{s:o,s:O,s:o}", "meta", probe, "preview", json_array_get(results, 0),
                         "waveform", wave);
        probe = NULL;
    }
    json_decref(probe);
    json_decref(results);
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *cmd = argv[1], *in = argv[2];
    bg_media_err e = {{0}, {0}};
    json_t *out = NULL;
    bg_err err;

    if (strcmp(cmd, "audio-encode") == 0) {
        if (argc < 6 || argc > 9)
            usage();
        bg_audio_encode_opts o = {0};
        o.format = argv[4];
        o.bitrate = num(argv[5]);
        if (argc > 6)
            o.duration_s = dbl(argv[6]);
        if (argc > 7)
            o.sample_rate = (int)num(argv[7]);
        if (argc > 8)
            o.channels = (int)num(argv[8]);
        err = bg_media_audio_encode(in, argv[3], &o, NULL, &out, &e);
    } else if (strcmp(cmd, "video-encode") == 0) {
        if (argc < 5 || argc > 7)
            usage();
        bg_video_encode_opts o;
        bg_video_encode_opts_init(&o);
        o.width = (int)num(argv[4]);
        if (argc > 5)
            o.crf = (int)num(argv[5]);
        if (argc > 6)
            o.preset = argv[6];
        err = bg_media_video_encode(in, argv[3], &o, NULL, &out, &e);
    } else if (strcmp(cmd, "thumbs") == 0) {
        if (argc < 6 || argc > 7)
            usage();
        bg_thumbs_opts o = {0};
        o.count = (int)num(argv[4]);
        o.width = (int)num(argv[5]);
        o.format = argc > 6 ? image_format(argv[6]) : BG_IMAGE_JPEG;
        bg_media_thumb *t = NULL;
        size_t n = 0;
        err = bg_media_thumbs(in, argv[3], "thumb", &o, NULL, &t, &n, &e);
        if (err == BG_OK) {
            out = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(out, json_pack("{s:s, s:f, s:f, s:i, s:i, s:I}", "name",
                                                     t[i].name, "offset", t[i].offset, "time",
                                                     t[i].time, "width", t[i].width, "height",
                                                     t[i].height, "size", (json_int_t)t[i].size));
            free(t);
        }
    } else if (strcmp(cmd, "resize") == 0) {
        if (argc != 8)
            usage();
        bg_resize_opts o = {0};
        o.width = (int)num(argv[4]);
        o.height = (int)num(argv[5]);
        if (!bg_image_fit_parse(argv[6], &o.fit)) {
            fprintf(stderr, "bg_bench_robot: unknown fit: %s\n", argv[6]);
            return 2;
        }
        o.format = image_format(argv[7]);
        err = bg_media_image_resize(in, argv[3], &o, NULL, &out, &e);
    } else if (strcmp(cmd, "waveform") == 0) {
        if (argc != 7)
            usage();
        bg_waveform_opts o = {0};
        o.width = (int)num(argv[5]);
        o.height = (int)num(argv[6]);
        const char *png = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
        const char *js = strcmp(argv[4], "-") == 0 ? NULL : argv[4];
        err = bg_media_waveform(in, png, js, &o, NULL, &out, &e);
    } else if (strcmp(cmd, "loudness") == 0) {
        if (argc != 3)
            usage();
        err = bg_media_loudness(in, NULL, &out, &e);
    } else if (strcmp(cmd, "probe") == 0) {
        if (argc != 3)
            usage();
        err = bg_media_probe(in, &out, &e);
    } else if (strcmp(cmd, "audio-preview") == 0) {
        if (argc != 6)
            usage();
        err = audio_preview(in, argv[3], argv[4], argv[5], &out, &e);
    } else {
        usage();
        return 2;
    }

    if (err != BG_OK) {
        fprintf(stderr, "bg_bench_robot %s: %s: %s\n", cmd, e.code, e.message);
        json_decref(out);
        return 1;
    }
    char *s = out != NULL ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    printf("%s\n", s != NULL ? s : "null");
    free(s);
    json_decref(out);
    return 0;
}
