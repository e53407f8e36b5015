/*
 * Unit tests for the audio robots of node/media/media.h: EBU R128 loudness
 * against the ffmpeg tool's ebur128 summary, /meta/read with loudness, the
 * three encode formats, two-pass normalisation, several outputs from one
 * decode, cancel and corrupt inputs.
 *
 * Fixtures are made once per run by the ffmpeg tool from lavfi sources in a
 * temporary directory (no media is committed). Timings are printed, never
 * asserted. With BG_AUDIO_BENCH=1, test_bench also times each robot against
 * the equivalent ffmpeg command on a 120 s input (a few runs each).
 */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "media_fixtures.h"
// clang-format on

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "node/media/media.h"

#include "../testutil.h"

static char dir[64];
static char music[128];    /* 20 s stereo 48 kHz: sine + pink noise, level swinging (LRA > 0) */
static char mono44[128];   /* 12.34 s mono 44.1 kHz s16, a loud click in its last 50 ms */
static char surround[128]; /* 8 s 5.1 48 kHz: LFE and surrounds weighted differently */
static char clip[128];     /* 6 s 320x240 h264 + aac stereo 48 kHz */
static char vonly[128];    /* 1 s video, no audio */
static char quiet[128];    /* 15 s stereo: quiet pulsing noise, 4 ms clicks 22 dB above it */
static char silence[128];  /* 3 s of digital silence */

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bg-audio-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    path_in(music, sizeof(music), "music.wav");
    path_in(mono44, sizeof(mono44), "mono44.wav");
    path_in(surround, sizeof(surround), "surround.wav");
    path_in(clip, sizeof(clip), "clip.mp4");
    path_in(vonly, sizeof(vonly), "video-only.mp4");
    path_in(quiet, sizeof(quiet), "quiet.wav");
    path_in(silence, sizeof(silence), "silence.wav");
    if (ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -f lavfi -i "
               "anoisesrc=color=pink:sample_rate=48000:amplitude=0.3:seed=7 -filter_complex "
               "\"[0][1]amix=inputs=2,volume='0.3+0.25*sin(2*PI*t/7)':eval=frame,"
               "aformat=channel_layouts=stereo\" -t 20",
               music) ||
        ffmpeg("-f lavfi -i \"aevalsrc='0.1*sin(2*PI*330*t)+if(gt(t,12.3),0.9*sin(2*PI*3000*t),0)'"
               ":s=44100:d=12.34\" -c:a pcm_s16le",
               mono44) ||
        ffmpeg("-f lavfi -i \"aevalsrc='0.2*sin(2*PI*200*t)|0.2*sin(2*PI*300*t)|"
               "0.3*sin(2*PI*400*t)|0.5*sin(2*PI*50*t)|0.1*sin(2*PI*500*t)|0.25*sin(2*PI*600*t)'"
               ":s=48000:d=8:c=5.1\"",
               surround) ||
        ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i "
               "sine=frequency=440:sample_rate=48000 -t 6 -c:v libx264 -preset ultrafast "
               "-pix_fmt yuv420p -c:a aac -ac 2 -shortest",
               clip) ||
        ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30 -t 1 -c:v libx264 -preset ultrafast "
               "-pix_fmt yuv420p",
               vonly) ||
        ffmpeg("-filter_complex \"anoisesrc=color=pink:amplitude=0.1:seed=5:sample_rate=48000,"
               "volume='0.5+0.5*abs(sin(2*PI*1.5*t))':eval=frame[n];"
               "aevalsrc='if(lt(mod(t\\,1.3)\\,0.004)\\,0.7*sin(2*PI*1000*t)\\,0)':s=48000[c];"
               "[n][c]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo\" -t 15",
               quiet) ||
        ffmpeg("-f lavfi -i anullsrc=r=48000:cl=stereo -t 3", silence))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return rm_tree(dir) == 0 ? 0 : -1;
}

static double num(const json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (v == NULL || !json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    assert_non_null(s);
    return s;
}

static void assert_no_output(const char *out)
{
    char part[300];
    snprintf(part, sizeof(part), "%s.part", out);
    assert_false(exists(out));
    assert_false(exists(part));
}

/* ---- the ffmpeg tool's figures --------------------------------------- */

typedef struct cli_r128 {
    double i, lra, sp, tp, thresh;
} cli_r128;

/* "Peak: -23.0 dBFS" or "-inf dBFS" */
static double peak_of(const char *line)
{
    double v;
    return sscanf(line, " Peak: %lf", &v) == 1 ? v : -INFINITY;
}

/* Runs ffmpeg -af ebur128=peak=sample+true and reads its summary. */
static bool cli_loudness(const char *path, cli_r128 *r, double *secs)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -hide_banner -nostats -i '%s' -af "
             "ebur128=peak=sample+true:framelog=verbose -f null - 2>&1",
             path);
    double t = now_s();
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    char line[512];
    bool summary = false;
    int peaks = 0, sections = 0;
    *r = (cli_r128){NAN, NAN, NAN, NAN, NAN};
    while (fgets(line, sizeof(line), p) != NULL) {
        if (strstr(line, "Summary:") != NULL)
            summary = true;
        if (!summary)
            continue;
        double v;
        if (strstr(line, "Integrated loudness:") != NULL)
            sections = 1;
        else if (strstr(line, "Loudness range:") != NULL)
            sections = 2;
        if (sscanf(line, " I: %lf", &v) == 1)
            r->i = v;
        else if (sscanf(line, " LRA: %lf", &v) == 1)
            r->lra = v;
        else if (sections == 1 && sscanf(line, " Threshold: %lf", &v) == 1)
            r->thresh = v;
        else if (strstr(line, "Peak:") != NULL)
            (peaks++ == 0 ? &r->sp : &r->tp)[0] = peak_of(line);
    }
    *secs = now_s() - t;
    return pclose(p) == 0 && !isnan(r->i) && peaks == 2;
}

/* ---- loudness ---------------------------------------------------------- */

static void expect_close(const char *what, double ours, double cli, double tol)
{
    if (isinf(cli) && cli < 0 && isnan(ours))
        return; /* both silent */
    if (fabs(ours - cli) > tol)
        fail_msg("%s: ours %.3f, ffmpeg %.3f", what, ours, cli);
}

static double num_or_nan(const json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void compare_with_cli(const char *path, const char *name)
{
    json_t *j = NULL;
    bg_media_err e = {.code = ""};
    double t = now_s();
    bg_err err = bg_media_loudness(path, NULL, &j, &e);
    double ours_s = now_s() - t;
    if (err != BG_OK)
        fail_msg("%s: %s %s", name, e.code, e.message);
    cli_r128 c = {0};
    double cli_s = 0;
    assert_true(cli_loudness(path, &c, &cli_s));
    printf("  %-10s ours I %.2f LRA %.2f TP %.2f SP %.2f thr %.2f (%.0f ms) | ffmpeg I %.1f "
           "LRA %.1f TP %.1f SP %.1f thr %.1f (%.0f ms)\n",
           name, num(j, "integrated_lufs"), num(j, "loudness_range_lu"),
           num_or_nan(j, "true_peak_dbtp"), num_or_nan(j, "sample_peak_dbfs"),
           num(j, "threshold_lufs"), ours_s * 1e3, c.i, c.lra, c.tp, c.sp, c.thresh, cli_s * 1e3);
    /* The summary prints one decimal: 0.05 of rounding plus 0.05 of slack. */
    expect_close("integrated", num(j, "integrated_lufs"), c.i, 0.1);
    expect_close("range", num(j, "loudness_range_lu"), c.lra, 0.1);
    expect_close("true peak", num_or_nan(j, "true_peak_dbtp"), c.tp, 0.1);
    expect_close("sample peak", num_or_nan(j, "sample_peak_dbfs"), c.sp, 0.1);
    expect_close("threshold", num(j, "threshold_lufs"), c.thresh, 0.1);
    json_decref(j);
}

static void test_loudness_vs_cli(void **state)
{
    (void)state;
    compare_with_cli(music, "music");
    compare_with_cli(mono44, "mono44");
    compare_with_cli(surround, "5.1");
    compare_with_cli(clip, "mp4 aac");
    compare_with_cli(quiet, "quiet");
}

static void test_loudness_fields(void **state)
{
    (void)state;
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_loudness(music, NULL, &j, &e), BG_OK);
    assert_true(fabs(num(j, "duration") - 20.0) < 0.01);
    assert_true(num(j, "lra_low_lufs") < num(j, "lra_high_lufs"));
    assert_true(num(j, "true_peak_dbtp") >= num(j, "sample_peak_dbfs") - 0.01);
    json_decref(j);

    /* The click in the last 50 ms of the file is its true peak (-0.9 dB
     * or so): the tail the filter's metadata would miss is measured. */
    assert_int_equal(bg_media_loudness(mono44, NULL, &j, &e), BG_OK);
    assert_true(num(j, "true_peak_dbtp") > -2.0);
    json_decref(j);

    /* Digital silence: nothing passes the gate, peaks have no dB value. */
    assert_int_equal(bg_media_loudness(silence, NULL, &j, &e), BG_OK);
    assert_true(num(j, "integrated_lufs") == -70.0);
    assert_true(json_is_null(json_object_get(j, "true_peak_dbtp")));
    assert_true(json_is_null(json_object_get(j, "sample_peak_dbfs")));
    json_decref(j);
}

static void expect_err(bg_err got, const bg_media_err *e, bg_err want, const char *code)
{
    assert_int_equal(got, want);
    assert_string_equal(e->code, code);
    assert_true(e->message[0] != '\0');
    assert_null(strstr(e->message, dir));
}

/* Random bytes, zero bytes, a text file named .mp3, a truncated mp4 (no
 * moov), video without audio, a missing file. */
static void make_corrupt(char paths[5][160])
{
    static unsigned char rnd[32 * 1024];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        rnd[i] = (unsigned char)x;
    }
    static const char text[] = "Dear diary,\nToday I uploaded a text file named like a song.\n";
    path_in(paths[0], 160, "random.bin");
    assert_true(write_file(paths[0], rnd, sizeof(rnd)));
    path_in(paths[1], 160, "empty.wav");
    assert_true(write_file(paths[1], "", 0));
    path_in(paths[2], 160, "text.mp3");
    assert_true(write_file(paths[2], text, sizeof(text) - 1));
    path_in(paths[3], 160, "truncated.mp4");
    assert_true(truncate_copy(clip, paths[3], 30));
    snprintf(paths[4], 160, "%s", vonly);
}

static void test_loudness_errors(void **state)
{
    (void)state;
    char bad[5][160];
    make_corrupt(bad);
    for (int i = 0; i < 5; i++) {
        json_t *j = NULL;
        bg_media_err e = {.code = ""};
        expect_err(bg_media_loudness(bad[i], NULL, &j, &e), &e, BG_EMEDIA, "INVALID_INPUT");
        assert_null(j);
    }
    char p[160];
    path_in(p, sizeof(p), "missing.wav");
    json_t *j = NULL;
    bg_media_err e = {.code = ""};
    expect_err(bg_media_loudness(p, NULL, &j, &e), &e, BG_EIO, "INPUT_MISSING");
}

/* ---- /meta/read --------------------------------------------------------- */

static void test_meta_read(void **state)
{
    (void)state;
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_meta_read(music, true, NULL, &j, &e), BG_OK);
    json_t *l = json_object_get(j, "loudness");
    assert_true(json_is_object(l));
    assert_true(num(l, "integrated_lufs") < -10 && num(l, "integrated_lufs") > -40);
    assert_true(fabs(num(j, "duration") - 20.0) < 0.1);
    json_decref(j);

    /* Without audio there is nothing to measure, and no decode happens. */
    assert_int_equal(bg_media_meta_read(vonly, true, NULL, &j, &e), BG_OK);
    assert_null(json_object_get(j, "loudness"));
    json_decref(j);
    assert_int_equal(bg_media_meta_read(music, false, NULL, &j, &e), BG_OK);
    assert_null(json_object_get(j, "loudness"));
    json_decref(j);

    /* The cost on a video with audio, against the probe alone. */
    double t0 = now_s();
    assert_int_equal(bg_media_probe(clip, &j, &e), BG_OK);
    double probe_s = now_s() - t0;
    json_decref(j);
    t0 = now_s();
    assert_int_equal(bg_media_meta_read(clip, true, NULL, &j, &e), BG_OK);
    double meta_s = now_s() - t0;
    assert_true(json_is_object(json_object_get(j, "loudness")));
    json_decref(j);
    printf("  6 s 320x240 clip: probe %.1f ms, probe + loudness %.1f ms\n", probe_s * 1e3,
           meta_s * 1e3);

    char bad[5][160];
    make_corrupt(bad);
    for (int i = 0; i < 4; i++) {
        bg_media_err be = {.code = ""};
        j = NULL;
        expect_err(bg_media_meta_read(bad[i], true, NULL, &j, &be), &be, BG_EMEDIA,
                   "INVALID_INPUT");
        assert_null(j);
    }
}

/* ---- encode formats ------------------------------------------------------ */

static bg_audio_encode_opts opts_of(const char *format, double start, double duration)
{
    return (bg_audio_encode_opts){.format = format, .start_s = start, .duration_s = duration};
}

/* Offsets of the top-level "moov" and "mdat" boxes of an mp4. */
static void mp4_boxes(const char *path, long *moov, long *mdat)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *moov = *mdat = -1;
    unsigned char h[16];
    long pos = 0;
    while (fseek(f, pos, SEEK_SET) == 0 && fread(h, 1, 8, f) == 8) {
        uint64_t size = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3];
        if (size == 1 && fread(h + 8, 1, 8, f) == 8) {
            size = 0;
            for (int i = 8; i < 16; i++)
                size = size << 8 | h[i];
        }
        if (memcmp(h + 4, "moov", 4) == 0)
            *moov = pos;
        if (memcmp(h + 4, "mdat", 4) == 0)
            *mdat = pos;
        if (size < 8)
            break;
        pos += (long)size;
    }
    fclose(f);
}

static void check_encode(const char *in, const char *format, int channels, int rate, double start,
                         double duration, double want_s, int want_rate)
{
    const char *ext = NULL, *mime = NULL;
    assert_true(bg_media_audio_format(format, &ext, &mime));
    char out[200];
    snprintf(out, sizeof(out), "%s/enc-%s-%d-%d.%s", dir, format, channels, rate, ext);
    bg_audio_encode_opts o = opts_of(format, start, duration);
    o.channels = channels;
    o.sample_rate = rate;
    o.bitrate = 96000;
    json_t *meta = NULL;
    bg_media_err e;
    double t = now_s();
    bg_err err = bg_media_audio_encode(in, out, &o, NULL, &meta, &e);
    if (err != BG_OK)
        fail_msg("%s: %s %s", format, e.code, e.message);
    printf("  %-4s %d ch %5d Hz: %.0f ms, meta duration %.3f\n", format, channels,
           (int)num(meta, "sample_rate"), (now_s() - t) * 1e3, num(meta, "duration"));
    static const char *const codec[][2] = {{"mp3", "mp3"}, {"aac", "aac"}, {"opus", "opus"}};
    for (size_t i = 0; i < 3; i++)
        if (strcmp(format, codec[i][0]) == 0)
            assert_string_equal(str(meta, "codec"), codec[i][1]);
    json_decref(meta);
    char part[220];
    snprintf(part, sizeof(part), "%s.part", out);
    assert_false(exists(part));

    json_t *j = NULL;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    if (fabs(num(j, "duration") - want_s) >= 0.1)
        fail_msg("%s: duration %.3f, want %.3f", format, num(j, "duration"), want_s);
    assert_int_equal((int)num(j, "channels"), channels);
    assert_int_equal((int)num(j, "sample_rate"), want_rate);
    assert_true(json_is_false(json_object_get(j, "has_video")));
    json_decref(j);
    if (strcmp(format, "aac") == 0) {
        long moov, mdat;
        mp4_boxes(out, &moov, &mdat);
        assert_true(moov > 0 && mdat > 0 && moov < mdat); /* faststart */
    }
}

static void test_encode_formats(void **state)
{
    (void)state;
    check_encode(music, "mp3", 2, 0, 0, 0, 20.0, 48000);
    check_encode(music, "aac", 2, 0, 2.5, 10, 10.0, 48000);
    check_encode(music, "opus", 2, 0, 0, 0, 20.0, 48000);
    check_encode(mono44, "mp3", 1, 22050, 1, 5, 5.0, 22050);
    check_encode(mono44, "aac", 1, 0, 0, 0, 12.34, 44100);
    check_encode(mono44, "opus", 1, 0, 0, 0, 12.34, 48000); /* opus: always 48 kHz unless asked */
    /* Ogg Opus always decodes at 48 kHz: 24000 only narrows the encoded band. */
    check_encode(clip, "opus", 2, 24000, 1, 0, 5.0, 48000);
    check_encode(surround, "aac", 2, 0, 0, 0, 8.0, 48000); /* 5.1 downmixed */
}

static void test_encode_bad_options(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "bad.opus");
    bg_audio_encode_opts bad[] = {
        opts_of("vorbis", 0, 0),
        {.format = "opus", .sample_rate = 44100},
        {.format = "aac", .sample_rate = 12345},
        {.format = "mp3", .normalize = true, .loudness_target = -3},
        {.format = "mp3", .normalize = true, .loudness_target = NAN},
        {.format = "mp3", .normalize = true, .loudness_target = -16, .true_peak_max = 1},
        {.format = "mp3", .normalize = true, .loudness_target = -16, .true_peak_max = -10},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bg_media_err e = {.code = ""};
        json_t *meta = NULL;
        expect_err(bg_media_audio_encode(music, out, &bad[i], NULL, &meta, &e), &e, BG_EINVAL,
                   "INVALID_OPTIONS");
        assert_null(meta);
        assert_no_output(out);
    }
}

static void test_encode_corrupt(void **state)
{
    (void)state;
    char bad[5][160], out[160];
    make_corrupt(bad);
    path_in(out, sizeof(out), "from-corrupt.m4a");
    for (int i = 0; i < 5; i++) {
        bg_audio_encode_opts o = opts_of("aac", 0, 0);
        o.normalize = i % 2 == 0;
        o.loudness_target = -16;
        bg_media_err e = {.code = ""};
        expect_err(bg_media_audio_encode(bad[i], out, &o, NULL, NULL, &e), &e, BG_EMEDIA,
                   "INVALID_INPUT");
        assert_no_output(out);
    }
}

/* ---- normalisation ------------------------------------------------------- */

static json_t *normalise(const char *in, const char *format, double target, double start,
                         double duration, char *out, size_t cap)
{
    const char *ext;
    assert_true(bg_media_audio_format(format, &ext, NULL));
    snprintf(out, cap, "%s/norm%.0f-%s.%s", dir, -target, format, ext);
    bg_audio_encode_opts o = opts_of(format, start, duration);
    o.normalize = true;
    o.loudness_target = target;
    json_t *meta = NULL;
    bg_media_err e;
    double t = now_s();
    bg_err err = bg_media_audio_encode(in, out, &o, NULL, &meta, &e);
    if (err != BG_OK)
        fail_msg("normalise %s: %s %s", format, e.code, e.message);
    json_t *l = json_object_get(meta, "loudness");
    printf("  %-4s to %.0f: %s, in %.2f LUFS tp %.2f, gain %.2f, out %.2f LUFS (%.0f ms)\n", format,
           target, str(l, "normalization_type"), num(l, "input_i"), num_or_nan(l, "input_tp"),
           num(l, "gain_db"), num(l, "output_i"), (now_s() - t) * 1e3);
    return meta;
}

static double measure(const char *path)
{
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_loudness(path, NULL, &j, &e), BG_OK);
    double v = num(j, "integrated_lufs");
    json_decref(j);
    return v;
}

static void expect_normalised(const char *in, const char *format, double target, const char *mode)
{
    char out[200];
    json_t *meta = normalise(in, format, target, 0, 0, out, sizeof(out));
    json_t *l = json_object_get(meta, "loudness");
    assert_string_equal(str(l, "normalization_type"), mode);
    assert_true(fabs(num(l, "output_i") - target) <= 1.0);
    assert_true(fabs(num(l, "target_i") - target) < 0.01);
    double got = measure(out);
    printf("        measured on the file: %.2f LUFS\n", got);
    if (fabs(got - target) > 1.0)
        fail_msg("%s normalised to %.1f measures %.2f", format, target, got);
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_probe(in, &j, &e), BG_OK);
    double in_dur = num(j, "duration");
    json_decref(j);
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_true(fabs(num(j, "duration") - in_dur) < 0.1);
    json_decref(j);
    json_decref(meta);
}

/* The ceiling wins over the target: loudnorm's limiter takes the peaks
 * down and the loudness with them, and the meta says by how much. */
static void expect_limited(const char *in, double target)
{
    char out[200];
    json_t *meta = normalise(in, "aac", target, 0, 0, out, sizeof(out));
    json_t *l = json_object_get(meta, "loudness");
    assert_string_equal(str(l, "normalization_type"), "dynamic");
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_loudness(out, NULL, &j, &e), BG_OK);
    printf("        measured on the file: %.2f LUFS, %.2f dBTP\n", num(j, "integrated_lufs"),
           num(j, "true_peak_dbtp"));
    assert_true(fabs(num(j, "integrated_lufs") - num(l, "output_i")) < 0.5);
    assert_true(num(l, "output_tp") <= -1.0 + 0.1);
    assert_true(num(l, "output_i") < target + 1.0);
    json_decref(j);
    json_decref(meta);
}

static void test_normalise(void **state)
{
    (void)state;
    expect_normalised(music, "mp3", -16, "linear");
    expect_normalised(music, "aac", -23, "linear");
    /* The click at 0 dBTP: any gain above -1 dB needs the limiter. */
    expect_normalised(mono44, "opus", -23, "dynamic");
    expect_normalised(mono44, "aac", -27, "linear");
    /* Clicks 25 dB over pulsing noise: +7 dB needs the limiter on them, and
     * loudnorm's dynamic mode ends about 1.5 LU under the target (as the
     * ffmpeg tool's two passes do). */
    expect_limited(quiet, -23);
}

static void test_normalise_window_and_silence(void **state)
{
    (void)state;
    char out[200];
    json_t *l;
    json_t *meta = normalise(music, "opus", -18, 5, 6, out, sizeof(out));
    assert_true(fabs(num(meta, "duration") - 6.0) < 0.1);
    json_decref(meta);
    assert_true(fabs(measure(out) - -18.0) <= 1.0);

    /* The last 1.14 s, with the click at 0 dBTP: under 3 s the gain is only
     * capped by the ceiling (-1 dB here), loudnorm's short path is not used. */
    meta = normalise(mono44, "mp3", -20, 11.2, 0, out, sizeof(out));
    assert_true(fabs(num(meta, "duration") - 1.14) < 0.1);
    l = json_object_get(meta, "loudness");
    assert_string_equal(str(l, "normalization_type"), "linear");
    assert_true(fabs(num(l, "gain_db") - -1.0) < 0.05);
    assert_true(fabs(measure(out) - num(l, "output_i")) < 0.5);
    json_decref(meta);

    /* Silence has no loudness to move: encoded as it is. */
    meta = normalise(silence, "mp3", -16, 0, 0, out, sizeof(out));
    l = json_object_get(meta, "loudness");
    assert_string_equal(str(l, "normalization_type"), "none");
    assert_true(num(l, "gain_db") == 0.0);
    assert_true(json_is_null(json_object_get(l, "input_tp")));
    assert_true(fabs(num(meta, "duration") - 3.0) < 0.1);
    json_decref(meta);
}

/* ---- several outputs from one decode ------------------------------------- */

typedef struct peaks {
    int64_t n;
    int rate;
    float max;
    int calls;
} peaks;

static void on_samples(void *ud, const float *mono, size_t n, int rate)
{
    peaks *pk = ud;
    pk->calls++;
    pk->n += (int64_t)n;
    pk->rate = rate;
    for (size_t i = 0; i < n; i++)
        pk->max = fmaxf(pk->max, fabsf(mono[i]));
}

static void test_multi_matches_separate(void **state)
{
    (void)state;
    const char *in = clip;
    static const char *const fmts[] = {"mp3", "aac", "opus"};
    bg_audio_multi_job jobs[5];
    char outs[3][200], sep[3][200];
    peaks pk = {0};
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 3; i++) {
        const char *ext;
        assert_true(bg_media_audio_format(fmts[i], &ext, NULL));
        snprintf(outs[i], sizeof(outs[i]), "%s/multi.%s", dir, ext);
        snprintf(sep[i], sizeof(sep[i]), "%s/separate.%s", dir, ext);
        jobs[i] = (bg_audio_multi_job){.kind = BG_AUDIO_JOB_ENCODE,
                                       .out = outs[i],
                                       .opts = opts_of(fmts[i], i == 0 ? 1.0 : 0, i == 0 ? 3 : 0)};
    }
    jobs[3] = (bg_audio_multi_job){.kind = BG_AUDIO_JOB_LOUDNESS};
    jobs[4] =
        (bg_audio_multi_job){.kind = BG_AUDIO_JOB_SAMPLES, .on_samples = on_samples, .ud = &pk};
    json_t *res = NULL;
    bg_media_err e;
    double t = now_s();
    bg_err err = bg_media_audio_multi(in, jobs, 5, NULL, &res, &e);
    double multi_s = now_s() - t;
    if (err != BG_OK)
        fail_msg("multi: %s %s", e.code, e.message);
    assert_int_equal(json_array_size(res), 5);

    t = now_s();
    for (int i = 0; i < 3; i++)
        assert_int_equal(bg_media_audio_encode(in, sep[i], &jobs[i].opts, NULL, NULL, &e), BG_OK);
    json_t *l = NULL;
    assert_int_equal(bg_media_loudness(in, NULL, &l, &e), BG_OK);
    double separate_s = now_s() - t;
    printf("  mp3 + aac + opus + loudness + samples: one decode %.0f ms, separately %.0f ms\n",
           multi_s * 1e3, separate_s * 1e3);

    for (int i = 0; i < 3; i++) {
        json_t *a = NULL, *b = NULL;
        assert_int_equal(bg_media_probe(outs[i], &a, &e), BG_OK);
        assert_int_equal(bg_media_probe(sep[i], &b, &e), BG_OK);
        assert_string_equal(str(a, "audio_codec"), str(b, "audio_codec"));
        assert_true(fabs(num(a, "duration") - num(b, "duration")) < 0.01);
        assert_int_equal((int)num(a, "channels"), (int)num(b, "channels"));
        assert_true(fabs(num(json_array_get(res, i), "duration") - num(a, "duration")) < 0.01);
        json_decref(a);
        json_decref(b);
    }
    assert_true(fabs(num(json_array_get(res, 0), "duration") - 3.0) < 0.1);
    json_t *ml = json_array_get(res, 3);
    assert_true(json_equal(ml, l));
    json_decref(l);
    json_t *s = json_array_get(res, 4);
    assert_int_equal((int64_t)num(s, "samples"), pk.n);
    assert_int_equal(pk.rate, 48000);
    assert_true(pk.calls > 1);
    assert_true(fabs(pk.n / 48000.0 - 6.0) < 0.1);
    assert_true(pk.max > 0.05 && pk.max <= 1.0);
    json_decref(res);
}

/* A normalised encode in a multi: its measurement joins the single decode
 * (shared with a loudness job of the same window), its encode takes a
 * second one. */
static void test_multi_normalised(void **state)
{
    (void)state;
    char out1[200], out2[200];
    path_in(out1, sizeof(out1), "mn-plain.mp3");
    path_in(out2, sizeof(out2), "mn-norm.m4a");
    bg_audio_multi_job jobs[3] = {
        {.kind = BG_AUDIO_JOB_ENCODE, .out = out1, .opts = opts_of("mp3", 0, 0)},
        {.kind = BG_AUDIO_JOB_LOUDNESS},
        {.kind = BG_AUDIO_JOB_ENCODE,
         .out = out2,
         .opts = {.format = "aac", .normalize = true, .loudness_target = -16}},
    };
    json_t *res = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_audio_multi(music, jobs, 3, NULL, &res, &e), BG_OK);
    json_t *l = json_object_get(json_array_get(res, 2), "loudness");
    assert_true(fabs(num(l, "input_i") - num(json_array_get(res, 1), "integrated_lufs")) < 0.01);
    assert_true(fabs(measure(out2) - -16.0) <= 1.0);
    assert_true(exists(out1));
    json_decref(res);
}

static void test_multi_errors(void **state)
{
    (void)state;
    char out1[200], out2[200];
    path_in(out1, sizeof(out1), "me-1.mp3");
    path_in(out2, sizeof(out2), "no-such-dir/me-2.mp3");
    bg_media_err e = {.code = ""};
    json_t *res = NULL;
    /* The second output cannot be created: the first is not left behind. */
    bg_audio_multi_job jobs[2] = {
        {.kind = BG_AUDIO_JOB_ENCODE, .out = out1, .opts = opts_of("mp3", 0, 0)},
        {.kind = BG_AUDIO_JOB_ENCODE, .out = out2, .opts = opts_of("mp3", 0, 0)},
    };
    expect_err(bg_media_audio_multi(music, jobs, 2, NULL, &res, &e), &e, BG_EIO, "OUTPUT_ERROR");
    assert_null(res);
    assert_no_output(out1);

    jobs[1].out = out1;
    expect_err(bg_media_audio_multi(music, jobs, 2, NULL, &res, &e), &e, BG_EINVAL,
               "INVALID_OPTIONS");
    expect_err(bg_media_audio_multi(music, jobs, 0, NULL, &res, &e), &e, BG_EINVAL,
               "INVALID_OPTIONS");
    bg_audio_multi_job smp = {.kind = BG_AUDIO_JOB_SAMPLES};
    expect_err(bg_media_audio_multi(music, &smp, 1, NULL, &res, &e), &e, BG_EINVAL,
               "INVALID_OPTIONS");
    /* A window starting past the end of one job fails them all. */
    jobs[1] = (bg_audio_multi_job){.kind = BG_AUDIO_JOB_LOUDNESS, .opts = opts_of(NULL, 30, 0)};
    expect_err(bg_media_audio_multi(music, jobs, 2, NULL, &res, &e), &e, BG_EINVAL,
               "INVALID_OPTIONS");
    assert_no_output(out1);
    assert_no_output(out2);
}

/* ---- cancel --------------------------------------------------------------- */

typedef struct prog {
    int calls;
    double last;
    bool monotonic;
    double cancel_above; /* cancel on the first call past this fraction */
    double canceled_at;  /* now_s() of that call */
} prog;

/* Calls come at the robot's own pace: at the start, then every 250 ms of
 * work; the input is long enough for every robot to get there. */
static bool on_progress(void *ud, double fraction)
{
    prog *p = ud;
    if (p->calls++ > 0 && fraction < p->last)
        p->monotonic = false;
    p->last = fraction;
    if (fraction > p->cancel_above && p->canceled_at == 0) {
        p->canceled_at = now_s();
        return false;
    }
    return true;
}

static void expect_canceled(bg_err err, const bg_media_err *e, const prog *p)
{
    double late = now_s() - p->canceled_at;
    assert_int_equal(err, BG_EBUSY);
    assert_string_equal(e->code, "CANCELED");
    printf("  canceled at %.2f, returned %.1f ms later\n", p->last, late * 1e3);
    assert_true(p->canceled_at > 0 && late < 1.0);
}

static void test_cancel(void **state)
{
    (void)state;
    char in[160], out[200], out2[200];
    path_in(in, sizeof(in), "long.wav");
    assert_int_equal(ffmpeg("-f lavfi -i anoisesrc=color=pink:sample_rate=48000:amplitude=0.1 "
                            "-ac 2 -t 180",
                            in),
                     0);
    path_in(out, sizeof(out), "cancel.m4a");
    path_in(out2, sizeof(out2), "cancel.mp3");
    bg_media_err e = {.code = ""};
    prog p = {.monotonic = true};
    bg_media_progress pr = {on_progress, &p};
    bg_audio_encode_opts o = opts_of("aac", 0, 0);
    expect_canceled(bg_media_audio_encode(in, out, &o, &pr, NULL, &e), &e, &p);
    assert_no_output(out);

    /* In the second pass of a normalised encode. */
    p = (prog){.monotonic = true, .cancel_above = 0.4};
    o.normalize = true;
    o.loudness_target = -16;
    expect_canceled(bg_media_audio_encode(in, out, &o, &pr, NULL, &e), &e, &p);
    assert_true(p.monotonic);
    assert_no_output(out);

    p = (prog){.monotonic = true};
    json_t *j = NULL;
    expect_canceled(bg_media_loudness(in, &pr, &j, &e), &e, &p);
    assert_null(j);
    p = (prog){.monotonic = true};
    expect_canceled(bg_media_meta_read(in, true, &pr, &j, &e), &e, &p);
    assert_null(j);

    bg_audio_multi_job jobs[2] = {
        {.kind = BG_AUDIO_JOB_ENCODE, .out = out, .opts = opts_of("aac", 0, 0)},
        {.kind = BG_AUDIO_JOB_ENCODE, .out = out2, .opts = opts_of("mp3", 0, 0)},
    };
    p = (prog){.monotonic = true, .cancel_above = 0.1};
    expect_canceled(bg_media_audio_multi(in, jobs, 2, &pr, NULL, &e), &e, &p);
    assert_no_output(out);
    assert_no_output(out2);
}

/* ---- timings against the ffmpeg tool (BG_AUDIO_BENCH=1) ---------------- */

/* The command with {in} and {dir} replaced. */
static void expand(char *buf, size_t cap, const char *tmpl, const char *in)
{
    size_t n = 0;
    for (const char *t = tmpl; *t != '\0' && n + 1 < cap; t++) {
        const char *sub = NULL;
        if (strncmp(t, "{in}", 4) == 0)
            sub = in, t += 3;
        else if (strncmp(t, "{dir}", 5) == 0)
            sub = dir, t += 4;
        if (sub == NULL) {
            buf[n++] = *t;
            continue;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s", sub);
        if (n >= cap)
            n = cap - 1;
    }
    buf[n] = '\0';
}

static double best_of(int runs, const char *cmd)
{
    double best = INFINITY;
    for (int i = 0; i < runs; i++) {
        double t = now_s();
        if (system(cmd) != 0)
            fail_msg("failed: %s", cmd);
        best = fmin(best, now_s() - t);
    }
    return best;
}

typedef struct bench_case {
    const char *name;
    const char *cli; /* {in} input, {dir} output dir */
    int kind;        /* 0 encode, 1 loudness, 2 meta, 3 multi, 4 its jobs one by one, 5 probe */
    bg_audio_encode_opts o;
    const char *ext;
} bench_case;

static double run_ours(const bench_case *c, const char *in, int runs)
{
    double best = INFINITY;
    for (int r = 0; r < runs; r++) {
        char out[200], out2[200], out3[200];
        snprintf(out, sizeof(out), "%s/bench-ours.%s", dir, c->ext ? c->ext : "x");
        snprintf(out2, sizeof(out2), "%s/bench-ours2.mp3", dir);
        snprintf(out3, sizeof(out3), "%s/bench-ours3.m4a", dir);
        bg_media_err e;
        json_t *j = NULL;
        peaks pk = {0};
        double t = now_s();
        bg_err err = BG_OK;
        if (c->kind == 0) {
            err = bg_media_audio_encode(in, out, &c->o, NULL, &j, &e);
        } else if (c->kind == 1) {
            err = bg_media_loudness(in, NULL, &j, &e);
        } else if (c->kind == 2) {
            err = bg_media_meta_read(in, true, NULL, &j, &e);
        } else if (c->kind == 5) {
            err = bg_media_probe(in, &j, &e);
        } else if (c->kind == 4) {
            bg_audio_encode_opts o = opts_of("mp3", 0, 30);
            bg_audio_multi_job smp = {
                .kind = BG_AUDIO_JOB_SAMPLES, .on_samples = on_samples, .ud = &pk};
            err = bg_media_audio_encode(in, out2, &o, NULL, NULL, &e);
            if (err == BG_OK)
                err = bg_media_loudness(in, NULL, &j, &e);
            json_decref(j);
            j = NULL;
            if (err == BG_OK)
                err = bg_media_audio_multi(in, &smp, 1, NULL, &j, &e);
        } else {
            bg_audio_multi_job jobs[3] = {
                {.kind = BG_AUDIO_JOB_ENCODE, .out = out2, .opts = opts_of("mp3", 0, 30)},
                {.kind = BG_AUDIO_JOB_LOUDNESS},
                {.kind = BG_AUDIO_JOB_SAMPLES, .on_samples = on_samples, .ud = &pk},
            };
            err = bg_media_audio_multi(in, jobs, 3, NULL, &j, &e);
        }
        best = fmin(best, now_s() - t);
        if (err != BG_OK)
            fail_msg("%s: %s %s", c->name, e.code, e.message);
        json_decref(j);
    }
    return best;
}

static void test_bench(void **state)
{
    (void)state;
    const char *on = getenv("BG_AUDIO_BENCH");
    if (on == NULL || strcmp(on, "1") != 0) {
        printf("  (set BG_AUDIO_BENCH=1 to time against the ffmpeg tool)\n");
        return;
    }
    char wav[160], mp4[160];
    path_in(wav, sizeof(wav), "bench.wav");
    path_in(mp4, sizeof(mp4), "bench.mp4");
    assert_int_equal(ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -f lavfi -i "
                            "anoisesrc=color=pink:sample_rate=48000:amplitude=0.3 -filter_complex "
                            "\"[0][1]amix=inputs=2,volume='0.3+0.25*sin(2*PI*t/7)':eval=frame,"
                            "aformat=channel_layouts=stereo\" -t 120",
                            wav),
                     0);
    assert_int_equal(ffmpeg("-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i "
                            "sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset "
                            "ultrafast -pix_fmt yuv420p -c:a aac -b:a 128k -shortest",
                            mp4),
                     0);
    json_t *m = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_loudness(wav, NULL, &m, &e), BG_OK);
    char p2[400];
    snprintf(p2, sizeof(p2),
             "loudnorm=I=-16:TP=-1:LRA=11:measured_I=%.2f:measured_LRA=%.2f:measured_TP=%.2f:"
             "measured_thresh=%.2f:linear=true",
             num(m, "integrated_lufs"), num(m, "loudness_range_lu"), num(m, "true_peak_dbtp"),
             num(m, "threshold_lufs"));
    json_decref(m);
    static char norm_cli[1200];
    snprintf(norm_cli, sizeof(norm_cli),
             "ffmpeg -nostdin -v error -y -i {in} -af "
             "loudnorm=I=-16:TP=-1:LRA=11:print_format=json -f null - 2>/dev/null && "
             "ffmpeg -nostdin -v error -y -i {in} -af %s -ar 48000 -c:a libmp3lame -b:a 128k "
             "{dir}/bench-cli.mp3",
             p2);
    static char norm_cli2[1200];
    snprintf(norm_cli2, sizeof(norm_cli2),
             "ffmpeg -nostdin -v error -i {in} -af ebur128=peak=true -f null - && "
             "ffmpeg -nostdin -v error -y -i {in} -af %s -ar 48000 -c:a libmp3lame -b:a 128k "
             "{dir}/bench-cli.mp3",
             p2);
    const bench_case cases[] = {
        {"mp3 128k",
         "ffmpeg -nostdin -v error -y -i {in} -vn -c:a libmp3lame -b:a 128k {dir}/bench-cli.mp3",
         0,
         {.format = "mp3"},
         "mp3"},
        {"aac m4a 128k",
         "ffmpeg -nostdin -v error -y -i {in} -vn -c:a aac -b:a 128k -movflags +faststart "
         "{dir}/bench-cli.m4a",
         0,
         {.format = "aac"},
         "m4a"},
        {"opus ogg 128k",
         "ffmpeg -nostdin -v error -y -i {in} -vn -c:a libopus -b:a 128k -ar 48000 "
         "{dir}/bench-cli.opus",
         0,
         {.format = "opus"},
         "opus"},
        {"probe", "ffprobe -v error -show_format -show_streams {in} >/dev/null", 5, {0}, NULL},
        {"loudness",
         "ffmpeg -nostdin -v error -i {in} -vn -af ebur128=peak=true -f null -",
         1,
         {0},
         NULL},
        {"meta+loudness",
         "ffprobe -v error -show_format -show_streams {in} >/dev/null && "
         "ffmpeg -nostdin -v error -i {in} -vn -af ebur128=peak=true -f null -",
         2,
         {0},
         NULL},
        {"mp3 -16 LUFS",
         norm_cli,
         0,
         {.format = "mp3", .normalize = true, .loudness_target = -16},
         "mp3"},
        {"  (p1 ebur128)",
         norm_cli2,
         0,
         {.format = "mp3", .normalize = true, .loudness_target = -16},
         "mp3"},
        {"preview x3",
         "ffmpeg -nostdin -v error -y -i {in} -t 30 -vn -c:a libmp3lame -b:a 128k "
         "{dir}/bench-cli.mp3 && "
         "ffmpeg -nostdin -v error -i {in} -vn -af ebur128=peak=true -f null - && "
         "ffmpeg -nostdin -v error -i {in} -vn -ac 1 -c:a pcm_f32le -f null -",
         3,
         {0},
         NULL},
        {"  (ours x3)", "true", 4, {0}, NULL},
    };
    const char *inputs[] = {wav, mp4};
    for (size_t k = 0; k < 2; k++) {
        printf("  input %s\n", k == 0 ? "120 s stereo wav" : "60 s 720p h264 + aac mp4");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            if (k == 1 && (i == 6 || i == 7))
                continue; /* the loudnorm arguments were measured on the wav */
            char cmd[2000];
            expand(cmd, sizeof(cmd), cases[i].cli, inputs[k]);
            double ours = run_ours(&cases[i], inputs[k], 3);
            if (cases[i].kind == 4) { /* ours, one job after the other */
                printf("    %-14s ours %7.0f ms\n", cases[i].name, ours * 1e3);
                continue;
            }
            double cli = best_of(3, cmd);
            printf("    %-14s ours %7.0f ms  ffmpeg %7.0f ms  ratio %.2f\n", cases[i].name,
                   ours * 1e3, cli * 1e3, ours / cli);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loudness_vs_cli),
        cmocka_unit_test(test_loudness_fields),
        cmocka_unit_test(test_loudness_errors),
        cmocka_unit_test(test_meta_read),
        cmocka_unit_test(test_encode_formats),
        cmocka_unit_test(test_encode_bad_options),
        cmocka_unit_test(test_encode_corrupt),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_normalise_window_and_silence),
        cmocka_unit_test(test_multi_matches_separate),
        cmocka_unit_test(test_multi_normalised),
        cmocka_unit_test(test_multi_errors),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
