/*
 * Unit tests for node/media/video.h: the /video/encode robot. Sizes (width
 * only, height only, both, odd), the frame-rate cap (60 → 30 fps) and no
 * cap below the input's rate, a time window, crf and bitrate modes, every
 * frame out after B-frames and the lookahead are flushed, faststart (moov
 * before mdat), a video-only input, refused inputs (audio only, random
 * bytes, empty, text, an mp3 with cover art, over 8K, a truncated mp4 with its
 * index at the end), a truncated faststart mp4 (what decodes is encoded),
 * a window in an MPEG-TS (seeked by timestamps), bad options, an
 * unwritable output, cancel at the start and mid-encode (within a second,
 * nothing left behind), and two robots at once.
 *
 * Fixtures are made once per run by the ffmpeg tool in a temporary
 * directory (no media is committed). Outputs are checked with
 * bg_media_probe, and with ffprobe for frame counts.
 */
/* cmocka.h needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "media_fixtures.h"
// clang-format on

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/media/video.h"

#include "../testutil.h"

static char dir[64];     /* mkdtemp, removed by the group teardown */
static char clip[128];   /* 4 s 1280x720 30 fps h264 (a key frame each second) + aac 48 kHz
                            mono, moov at the end */
static char clip60[128]; /* 2 s 640x360 60 fps h264 + aac */
static char fast[128];   /* clip with faststart: moov first */
static char vonly[128];  /* 1 s 320x240 25 fps h264, no audio */
static char aonly[128];  /* 2 s aac in m4a */

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static long run_count(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    long n = -1;
    if (fscanf(p, "%ld", &n) != 1)
        n = -1;
    pclose(p);
    return n;
}

/* ffprobe's count of frames of the first video stream (-1 on failure). */
static long video_frames(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -count_packets -show_entries "
             "stream=nb_read_packets -of csv=p=0 '%s'",
             path);
    return run_count(cmd);
}

/* Key frames of the first video stream (-1 on failure). */
static long key_frames(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 '%s'"
             " | grep -c K",
             path);
    return run_count(cmd);
}

#define AV_SRC                                                                                     \
    "-f lavfi -i testsrc2=size=%s:rate=%d -f lavfi -i sine=frequency=440:sample_rate=48000"
#define X264 "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bg-video-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    path_in(clip, sizeof(clip), "clip.mp4");
    path_in(clip60, sizeof(clip60), "clip60.mp4");
    path_in(fast, sizeof(fast), "fast.mp4");
    path_in(vonly, sizeof(vonly), "video-only.mp4");
    path_in(aonly, sizeof(aonly), "audio-only.m4a");
    char args[512];
    snprintf(args, sizeof(args), AV_SRC " -t 4 " X264 " -g 30 -c:a aac -shortest", "1280x720", 30);
    if (ffmpeg(args, clip))
        return -1;
    snprintf(args, sizeof(args), AV_SRC " -t 2 " X264 " -c:a aac -shortest", "640x360", 60);
    if (ffmpeg(args, clip60))
        return -1;
    snprintf(args, sizeof(args), "-i '%s' -c copy -movflags +faststart", clip);
    if (ffmpeg(args, fast))
        return -1;
    if (ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=25 -t 1 " X264, vonly))
        return -1;
    if (ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -t 2 -c:a aac", aonly))
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
    assert_non_null(v);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    assert_non_null(s);
    return s;
}

static void part_of(const char *out, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.part", out);
}

/* No output and no .part file. */
static void assert_no_output(const char *out)
{
    char part[200];
    part_of(out, part, sizeof(part));
    assert_false(exists(out));
    assert_false(exists(part));
}

static bg_video_encode_opts opts(int w, int h)
{
    bg_video_encode_opts o;
    bg_video_encode_opts_init(&o);
    o.width = w;
    o.height = h;
    return o;
}

/* Encodes in into name (under dir) and returns the meta; fails the test on error. */
static json_t *encode_ok(const char *in, const char *name, const bg_video_encode_opts *o, char *out,
                         size_t cap)
{
    path_in(out, cap, name);
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    bg_err err = bg_media_video_encode(in, out, o, NULL, &meta, &e);
    if (err != BG_OK)
        fail_msg("encode failed: %d %s %s", err, e.code, e.message);
    assert_non_null(meta);
    assert_true(exists(out));
    char part[200];
    part_of(out, part, sizeof(part));
    assert_false(exists(part));
    return meta;
}

static void assert_size(const json_t *meta, int w, int h)
{
    assert_int_equal((int)num(meta, "width"), w);
    assert_int_equal((int)num(meta, "height"), h);
}

/* ---- sizes and codecs ------------------------------------------------ */

static void test_width_only(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(640, 0);
    json_t *meta = encode_ok(clip, "w640.mp4", &o, out, sizeof(out));
    assert_size(meta, 640, 360);
    assert_string_equal(str(meta, "video_codec"), "h264");
    assert_string_equal(str(meta, "audio_codec"), "aac");
    assert_true(fabs(num(meta, "duration") - 4.0) < 0.1);
    assert_true(fabs(num(meta, "frame_rate") - 30.0) < 0.01);
    assert_true(num(meta, "bit_rate") > 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal((long long)num(meta, "size"), (long long)st.st_size);
    json_decref(meta);

    /* The file itself, probed separately: both streams, the right length. */
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_string_equal(str(j, "video_codec"), "h264");
    assert_string_equal(str(j, "audio_codec"), "aac");
    assert_true(fabs(num(j, "duration") - 4.0) < 0.1);
    assert_int_equal((int)num(j, "sample_rate"), 48000);
    json_decref(j);
    /* Every frame came out: B-frames and x264's lookahead were flushed. */
    assert_int_equal(video_frames(out), 120);
    /* x264 chose the key frames (keyint 250: just the first), not the
     * input's one per second. */
    assert_int_equal(key_frames(clip), 4);
    assert_int_equal(key_frames(out), 1);
}

static void test_height_only(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(0, 360);
    json_t *meta = encode_ok(clip, "h360.mp4", &o, out, sizeof(out));
    assert_size(meta, 640, 360);
    json_decref(meta);
    /* An odd height is rounded down (101 → 100); 16:9 of 100 lines is
     * 177.8 wide, rounded to the nearest even number: 178. */
    o = opts(0, 101);
    meta = encode_ok(clip, "h101.mp4", &o, out, sizeof(out));
    assert_size(meta, 178, 100);
    json_decref(meta);
}

static void test_both_sides(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(320, 240);
    json_t *meta = encode_ok(clip, "320x240.mp4", &o, out, sizeof(out));
    assert_size(meta, 320, 240);
    json_decref(meta);
    o = opts(321, 181); /* odd sides are rounded down to even */
    meta = encode_ok(clip, "321x181.mp4", &o, out, sizeof(out));
    assert_size(meta, 320, 180);
    json_decref(meta);
}

/* Neither side: the input's size; meta_out may be NULL. */
static void test_keep_size(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "keep.mp4");
    bg_video_encode_opts o = opts(0, 0);
    o.crf = 35;
    o.preset = "ultrafast";
    bg_media_err e;
    assert_int_equal(bg_media_video_encode(vonly, out, &o, NULL, NULL, &e), BG_OK);
    json_t *j = NULL;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_int_equal((int)num(j, "width"), 320);
    assert_int_equal((int)num(j, "height"), 240);
    json_decref(j);
}

/* ---- frame rate ------------------------------------------------------ */

static void test_fps_cap(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(320, 0);
    o.max_fps = 30;
    json_t *meta = encode_ok(clip60, "cap30.mp4", &o, out, sizeof(out));
    assert_true(num(meta, "frame_rate") <= 30.001);
    assert_true(num(meta, "frame_rate") >= 29.9);
    assert_true(fabs(num(meta, "duration") - 2.0) < 0.1);
    assert_size(meta, 320, 180);
    json_decref(meta);
    assert_int_equal(video_frames(out), 60); /* every other frame of 120 */

    /* A cap above the input's rate changes nothing. */
    o.max_fps = 50;
    meta = encode_ok(clip, "cap50.mp4", &o, out, sizeof(out));
    assert_true(fabs(num(meta, "frame_rate") - 30.0) < 0.01);
    json_decref(meta);
    assert_int_equal(video_frames(out), 120);

    /* A cap that is not a divisor: 60 → 24 fps drops unevenly, 48 frames in 2 s. */
    o.max_fps = 24;
    meta = encode_ok(clip60, "cap24.mp4", &o, out, sizeof(out));
    assert_true(fabs(num(meta, "frame_rate") - 24.0) < 0.01);
    json_decref(meta);
    assert_int_equal(video_frames(out), 48);
}

/* ---- time window, rate control --------------------------------------- */

static void test_window(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(320, 0);
    o.start_s = 1.0;
    o.duration_s = 2.0;
    json_t *meta = encode_ok(clip, "window.mp4", &o, out, sizeof(out));
    assert_true(fabs(num(meta, "duration") - 2.0) < 0.1);
    assert_string_equal(str(meta, "audio_codec"), "aac");
    json_decref(meta);
    assert_int_equal(video_frames(out), 60);

    /* A window past the end encodes what exists. */
    o.start_s = 3.0;
    o.duration_s = 5.0;
    meta = encode_ok(clip, "tail.mp4", &o, out, sizeof(out));
    assert_true(fabs(num(meta, "duration") - 1.0) < 0.1);
    json_decref(meta);

    /* A start at or past the end has nothing to encode. */
    path_in(out, sizeof(out), "nothing.mp4");
    o.start_s = 10.0;
    o.duration_s = 0;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(clip, out, &o, NULL, NULL, &e), BG_EINVAL);
    assert_string_equal(e.code, "INVALID_OPTIONS");
    assert_no_output(out);
}

/* MPEG-TS has no index: a seek by timestamps lands just past the key frame
 * before start_s, and the video would begin at the next one (here up to
 * 12 frames late) unless the seek backs off. */
static void test_window_mpegts(void **state)
{
    (void)state;
    char in[160], out[160], args[256];
    path_in(in, sizeof(in), "gop12.ts");
    snprintf(args, sizeof(args), AV_SRC " -t 6 -c:v mpeg2video -g 12 -c:a mp2 -shortest", "640x360",
             25);
    assert_int_equal(ffmpeg(args, in), 0);
    bg_video_encode_opts o = opts(320, 0);
    o.start_s = 1.5;
    o.duration_s = 2.0;
    json_t *meta = encode_ok(in, "from-ts.mp4", &o, out, sizeof(out));
    assert_true(fabs(num(meta, "duration") - 2.0) < 0.1);
    json_decref(meta);
    assert_int_equal(video_frames(out), 50);
}

static void test_bitrate_mode(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(640, 0);
    o.video_bitrate = 400000;
    o.audio_bitrate = 64000;
    o.preset = "ultrafast";
    json_t *meta = encode_ok(clip, "abr.mp4", &o, out, sizeof(out));
    /* One-pass ABR on 4 s lands near the target; the bound only catches a
     * bitrate that was ignored (crf 23 on this source gives ~1.5 Mbit/s). */
    double br = num(meta, "bit_rate");
    assert_true(br > 200000 && br < 900000);
    json_decref(meta);

    o = opts(640, 0);
    o.crf = 45;
    json_t *lo = encode_ok(clip, "crf45.mp4", &o, out, sizeof(out));
    o.crf = 18;
    json_t *hi = encode_ok(clip, "crf18.mp4", &o, out, sizeof(out));
    assert_true(num(hi, "size") > 2 * num(lo, "size"));
    json_decref(lo);
    json_decref(hi);
}

/* ---- container ------------------------------------------------------- */

/* The order of the top-level boxes: index of the first 'moov' and 'mdat'. */
static void top_boxes(const char *path, int *moov, int *mdat)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *moov = *mdat = -1;
    unsigned char h[16];
    for (int i = 0; i < 64 && fread(h, 1, 8, f) == 8; i++) {
        uint64_t size = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | h[2] << 8 | h[3];
        uint64_t hdr = 8;
        if (size == 1) { /* 64-bit size follows */
            assert_int_equal(fread(h + 8, 1, 8, f), 8);
            size = 0;
            for (int k = 8; k < 16; k++)
                size = size << 8 | h[k];
            hdr = 16;
        }
        if (memcmp(h + 4, "moov", 4) == 0 && *moov < 0)
            *moov = i;
        if (memcmp(h + 4, "mdat", 4) == 0 && *mdat < 0)
            *mdat = i;
        if (size == 0) /* to the end of the file */
            break;
        assert_true(size >= hdr);
        assert_int_equal(fseeko(f, (off_t)(size - hdr), SEEK_CUR), 0);
    }
    fclose(f);
}

static void test_faststart(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(320, 0);
    json_t *meta = encode_ok(clip, "faststart.mp4", &o, out, sizeof(out));
    json_decref(meta);
    int moov, mdat;
    top_boxes(out, &moov, &mdat);
    assert_true(moov >= 0 && mdat >= 0);
    assert_true(moov < mdat);
    /* The scan can fail: the fixture has its index at the end. */
    top_boxes(clip, &moov, &mdat);
    assert_true(moov > mdat);
}

/* ---- inputs ---------------------------------------------------------- */

static void test_video_only(void **state)
{
    (void)state;
    char out[160];
    bg_video_encode_opts o = opts(0, 0);
    json_t *meta = encode_ok(vonly, "vonly.mp4", &o, out, sizeof(out));
    assert_true(json_is_null(json_object_get(meta, "audio_codec")));
    assert_string_equal(str(meta, "video_codec"), "h264");
    assert_true(fabs(num(meta, "duration") - 1.0) < 0.1);
    json_decref(meta);
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_true(json_is_false(json_object_get(j, "has_audio")));
    assert_int_equal(json_array_size(json_object_get(j, "streams")), 1);
    json_decref(j);
}

static void expect_input_err(const char *in, bg_err want, const char *code)
{
    char out[160];
    path_in(out, sizeof(out), "from-bad.mp4");
    bg_video_encode_opts o = opts(320, 0);
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(in, out, &o, NULL, &meta, &e), want);
    assert_string_equal(e.code, code);
    assert_true(e.message[0] != '\0');
    assert_null(strstr(e.message, dir)); /* names no path */
    assert_null(meta);
    assert_no_output(out);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char p[160];
    expect_input_err(aonly, BG_EMEDIA, "INVALID_INPUT");

    /* A song with cover art: the picture is not a video. */
    path_in(p, sizeof(p), "cover.mp3");
    assert_int_equal(ffmpeg("-f lavfi -i sine=sample_rate=44100 -f lavfi -i color=c=red:size=64x64 "
                            "-map 0:a -map 1:v -frames:v 1 -c:v png -disposition:v attached_pic "
                            "-t 1 -c:a libmp3lame",
                            p),
                     0);
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    static unsigned char rnd[64 * 1024];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        rnd[i] = (unsigned char)x;
    }
    path_in(p, sizeof(p), "random.mp4");
    assert_true(write_file(p, rnd, sizeof(rnd)));
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    path_in(p, sizeof(p), "empty.mp4");
    assert_true(write_file(p, "", 0));
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    static const char text[] = "Dear diary,\nToday I uploaded a text file named like a film.\n";
    path_in(p, sizeof(p), "text.mp4");
    assert_true(write_file(p, text, sizeof(text) - 1));
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    /* Over 8K by area: refused before a decoder allocates for it. */
    path_in(p, sizeof(p), "huge.mp4");
    assert_int_equal(ffmpeg("-f lavfi -i color=size=8000x4500 -frames:v 1 " X264, p), 0);
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    /* The first 60% of an mp4 whose index is at the end: no index, not media. */
    path_in(p, sizeof(p), "truncated.mp4");
    assert_true(truncate_copy(clip, p, 60));
    expect_input_err(p, BG_EMEDIA, "INVALID_INPUT");

    path_in(p, sizeof(p), "missing.mp4");
    expect_input_err(p, BG_EIO, "INPUT_MISSING");
    expect_input_err(dir, BG_EIO, "INPUT_MISSING");
}

/* With the index first, a cut file still holds its first seconds. */
static void test_truncated_faststart(void **state)
{
    (void)state;
    char in[160], out[160];
    path_in(in, sizeof(in), "truncated-fast.mp4");
    assert_true(truncate_copy(fast, in, 50));
    bg_video_encode_opts o = opts(320, 0);
    json_t *meta = encode_ok(in, "from-truncated.mp4", &o, out, sizeof(out));
    assert_true(num(meta, "duration") > 0.5 && num(meta, "duration") < 3.9);
    json_decref(meta);
}

static void expect_bad_opts(const bg_video_encode_opts *o)
{
    char out[160];
    path_in(out, sizeof(out), "bad-opts.mp4");
    bg_media_err e = {.code = ""};
    json_t *meta = NULL;
    assert_int_equal(bg_media_video_encode(clip, out, o, NULL, &meta, &e), BG_EINVAL);
    assert_string_equal(e.code, "INVALID_OPTIONS");
    assert_null(meta);
    assert_no_output(out);
}

static void test_invalid_options(void **state)
{
    (void)state;
    bg_video_encode_opts o;
    int bad_sides[] = {1, -2, 8193};
    for (size_t i = 0; i < 3; i++) {
        o = opts(bad_sides[i], 0);
        expect_bad_opts(&o);
        o = opts(0, bad_sides[i]);
        expect_bad_opts(&o);
    }
    o = opts(0, 8192); /* 16:9 at 8192 lines is 14564 wide */
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.crf = 52;
    expect_bad_opts(&o);
    o.crf = 20;
    o.video_bitrate = 500000; /* one or the other */
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.video_bitrate = 100;
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.preset = "placebo";
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.max_fps = 0.5;
    expect_bad_opts(&o);
    o.max_fps = NAN;
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.audio_bitrate = 1000;
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.start_s = -1;
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.duration_s = INFINITY;
    expect_bad_opts(&o);
    o = opts(0, 0);
    o.threads = 65;
    expect_bad_opts(&o);
    char out[160];
    path_in(out, sizeof(out), "null-opts.mp4");
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(clip, out, NULL, NULL, NULL, &e), BG_EINVAL);
}

static void test_output_dir_missing(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "no-such-dir/out.mp4");
    bg_video_encode_opts o = opts(320, 0);
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(clip, out, &o, NULL, NULL, &e), BG_EIO);
    assert_string_equal(e.code, "OUTPUT_ERROR");
    assert_null(strstr(e.message, dir));
    assert_no_output(out);
}

/* ---- progress and cancel --------------------------------------------- */

typedef struct prog {
    int calls;
    double last, max;
    bool monotonic;
    bool cancel_first; /* return false on the first call */
    bool cancel_mid;   /* return false on the first call with 0 < fraction < 1 */
    unsigned sleep_ms; /* sleep in every call */
    struct timespec canceled_at;
} prog;

static bool on_progress(void *ud, double fraction)
{
    prog *p = ud;
    p->calls++;
    if (p->calls > 1 && fraction < p->last)
        p->monotonic = false;
    if (fraction > p->max)
        p->max = fraction;
    p->last = fraction;
    if (p->cancel_first || (p->cancel_mid && fraction > 0 && fraction < 1)) {
        clock_gettime(CLOCK_MONOTONIC, &p->canceled_at);
        return false;
    }
    if (p->sleep_ms > 0) {
        struct timespec ts = {p->sleep_ms / 1000, (long)(p->sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

static double since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

static void test_progress(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "progress.mp4");
    bg_video_encode_opts o = opts(640, 0);
    /* The interval runs from the start of a call: sleeping 200 of its 250 ms
     * leaves 50 ms of work between calls, so calls come all along. */
    prog pr = {.monotonic = true, .sleep_ms = 200};
    bg_media_progress p = {on_progress, &pr};
    bg_media_err e;
    assert_int_equal(bg_media_video_encode(clip, out, &o, &p, NULL, &e), BG_OK);
    assert_true(pr.calls >= 5); /* the start, and some on the way */
    assert_true(pr.monotonic);
    assert_true(pr.max > 0.5 && pr.max <= 1.0);
}

static void test_cancel_at_start(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "cancel-start.mp4");
    bg_video_encode_opts o = opts(640, 0);
    prog pr = {.monotonic = true, .cancel_first = true};
    bg_media_progress p = {on_progress, &pr};
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(clip, out, &o, &p, &meta, &e), BG_EBUSY);
    assert_string_equal(e.code, "CANCELED");
    assert_int_equal(pr.calls, 1);
    assert_null(meta);
    assert_no_output(out);
}

/* Every call sleeps 200 of the 250 ms interval, so calls come every 50 ms
 * of work: the first one with some output done cancels, while the .part
 * exists, and the robot must be gone within a second of that answer. */
static void test_cancel_mid_encode(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "cancel-mid.mp4");
    bg_video_encode_opts o = opts(640, 0);
    prog pr = {.monotonic = true, .cancel_mid = true, .sleep_ms = 200};
    bg_media_progress p = {on_progress, &pr};
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_video_encode(clip, out, &o, &p, &meta, &e), BG_EBUSY);
    double latency = since(&pr.canceled_at);
    assert_string_equal(e.code, "CANCELED");
    assert_true(pr.last > 0.0 && pr.last < 1.0);
    assert_true(latency < 1.0);
    assert_null(meta);
    assert_no_output(out);
}

/* ---- threads --------------------------------------------------------- */

typedef struct job {
    const char *in;
    char out[160];
    bg_err err;
    double duration;
} job;

static void *job_main(void *arg)
{
    job *jb = arg;
    bg_video_encode_opts o = opts(320, 0);
    o.threads = 1;
    json_t *meta = NULL;
    bg_media_err e;
    jb->err = bg_media_video_encode(jb->in, jb->out, &o, NULL, &meta, &e);
    if (jb->err == BG_OK)
        jb->duration = json_number_value(json_object_get(meta, "duration"));
    json_decref(meta);
    return NULL;
}

/* Two robots on two threads at once (the sanitizer build checks they share nothing). */
static void test_concurrent(void **state)
{
    (void)state;
    job jobs[2] = {{.in = clip}, {.in = clip60}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        snprintf(jobs[i].out, sizeof(jobs[i].out), "%s/concurrent-%d.mp4", dir, i);
        assert_int_equal(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].err, BG_OK);
    }
    assert_true(fabs(jobs[0].duration - 4.0) < 0.1);
    assert_true(fabs(jobs[1].duration - 2.0) < 0.1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width_only),        cmocka_unit_test(test_height_only),
        cmocka_unit_test(test_both_sides),        cmocka_unit_test(test_keep_size),
        cmocka_unit_test(test_fps_cap),           cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_mpegts),     cmocka_unit_test(test_bitrate_mode),
        cmocka_unit_test(test_faststart),         cmocka_unit_test(test_video_only),
        cmocka_unit_test(test_bad_inputs),        cmocka_unit_test(test_truncated_faststart),
        cmocka_unit_test(test_invalid_options),   cmocka_unit_test(test_output_dir_missing),
        cmocka_unit_test(test_progress),          cmocka_unit_test(test_cancel_at_start),
        cmocka_unit_test(test_cancel_mid_encode), cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
