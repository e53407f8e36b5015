/*
 * Unit tests for node/media/image.h and waveform.h: thumbnails (evenly
 * spaced and explicit offsets, the exact frame against the ffmpeg tool's
 * input-side seek, width and even height, jpeg/png/webp, a still picture),
 * resize (contain/cover/fill sizes, what cover keeps, alpha into png and
 * jpeg, webp), waveform (JSON layout and values, the mono mixdown, the PNG,
 * colours, the accumulator's folding with an unknown length), corrupt and
 * wrong-type inputs, bad options, and cancel at the start and midway with
 * no file left behind.
 *
 * Fixtures are made once per run by the ffmpeg tool (lavfi sources) in a
 * temporary directory; nothing is committed. Outputs are checked by probing
 * them and by decoding them here with libav.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "media_fixtures.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "node/media/image.h"
#include "node/media/waveform.h"

#include "../testutil.h"

static char dir[64];
static char clip[128];   /* 10 s 1280x720 30 fps h264 with B-frames (keyframes at 0 and 8.33 s) + aac */
static char still[128];  /* 1280x720 png, one testsrc2 frame */
static char stillj[128]; /* the same as jpeg */
static char bands[128];  /* 1200x300 png: red | green | blue thirds */
static char alpha[128];  /* 64x48 png, red at alpha 50 % */
static char wav[128];    /* 10 s mono 48 kHz sine, amplitude 1/8 */
static char lwav[128];   /* 4 s stereo: the sine on the left, silence on the right */

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bg-image-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    path_in(clip, sizeof(clip), "clip.mp4");
    path_in(still, sizeof(still), "still.png");
    path_in(stillj, sizeof(stillj), "still.jpg");
    path_in(bands, sizeof(bands), "bands.png");
    path_in(alpha, sizeof(alpha), "alpha.png");
    path_in(wav, sizeof(wav), "sine.wav");
    path_in(lwav, sizeof(lwav), "left.wav");
    if (ffmpeg("-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i "
               "sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 -preset superfast "
               "-pix_fmt yuv420p -c:a aac -shortest",
               clip) ||
        ffmpeg("-f lavfi -i testsrc2=size=1280x720 -frames:v 1", still) ||
        ffmpeg("-f lavfi -i testsrc2=size=1280x720 -frames:v 1", stillj) ||
        ffmpeg("-f lavfi -i color=red:s=400x300 -f lavfi -i color=lime:s=400x300 -f lavfi -i "
               "color=blue:s=400x300 -filter_complex hstack=3 -frames:v 1",
               bands) ||
        ffmpeg("-f lavfi -i color=c=red@0.5:s=64x48,format=rgba -frames:v 1", alpha) ||
        ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -t 10", wav) ||
        ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -t 4 -af 'pan=stereo|c0=c0|c1=0*c0'",
               lwav))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return rm_tree(dir) == 0 ? 0 : -1;
}

/* A new empty directory for one test's outputs. */
static void out_dir(char *buf, size_t cap, const char *name)
{
    path_in(buf, cap, name);
    assert_int_equal(mkdir(buf, 0700), 0);
}

static int count_files(const char *d)
{
    DIR *dh = opendir(d);
    assert_non_null(dh);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dh);
    return n;
}

/* ---- decoding outputs here, independently of the robots --------------- */

typedef struct pixels {
    int w, h, stride;
    enum AVCodecID codec;
    uint8_t *rgba; /* stride*h, padded: swscale's SIMD writes past a row's end */
} pixels;

static void decode_rgba(const char *path, pixels *px)
{
    AVFormatContext *ic = NULL;
    assert_int_equal(avformat_open_input(&ic, path, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(ic, NULL) >= 0);
    int si = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    assert_true(si >= 0);
    AVCodecParameters *par = ic->streams[si]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(dec, par);
    assert_int_equal(avcodec_open2(dec, codec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int got = -1;
    while (got < 0 && av_read_frame(ic, pkt) >= 0) {
        if (pkt->stream_index == si && avcodec_send_packet(dec, pkt) >= 0)
            got = avcodec_receive_frame(dec, f);
        av_packet_unref(pkt);
    }
    if (got < 0) {
        avcodec_send_packet(dec, NULL);
        got = avcodec_receive_frame(dec, f);
    }
    assert_int_equal(got, 0);
    px->w = f->width;
    px->h = f->height;
    px->codec = par->codec_id;
    px->stride = (px->w * 4 + 63) & ~63;
    px->rgba = calloc(1, (size_t)px->stride * (px->h + 1) + 256);
    struct SwsContext *sws = sws_getContext(f->width, f->height, f->format, f->width, f->height,
                                            AV_PIX_FMT_RGBA, SWS_POINT, NULL, NULL, NULL);
    uint8_t *dst[4] = {px->rgba};
    int ls[4] = {px->stride};
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, ls);
    sws_freeContext(sws);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&ic);
}


static const uint8_t *at(const pixels *px, int x, int y)
{
    return px->rgba + (size_t)y * px->stride + (size_t)x * 4;
}

/* Mean absolute difference of the RGB channels of two same-size pictures. */
static double mad(const pixels *a, const pixels *b)
{
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->h, b->h);
    double sum = 0;
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w; x++)
            for (int c = 0; c < 3; c++)
                sum += abs((int)at(a, x, y)[c] - (int)at(b, x, y)[c]);
    return sum / ((double)a->w * a->h * 3);
}

static bool near(const uint8_t *p, int r, int g, int b, int tol)
{
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

/* ---- progress and cancel -------------------------------------------- */

typedef struct prog {
    int calls;
    int cancel_at;      /* return false on this call (1-based); 0: never */
    double cancel_from; /* or on the first call with at least this fraction; 0: never */
    unsigned sleep_ms;  /* sleep in every other call: the next tick then calls at once */
    double canceled_at; /* CLOCK_MONOTONIC seconds of the canceling call */
    double max;
} prog;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool on_progress(void *ud, double fraction)
{
    prog *p = ud;
    p->calls++;
    p->max = fraction > p->max ? fraction : p->max;
    if (p->calls == p->cancel_at || (p->cancel_from > 0 && fraction >= p->cancel_from)) {
        p->canceled_at = now_s();
        return false;
    }
    if (p->sleep_ms > 0) {
        struct timespec ts = {0, (long)p->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void assert_canceled(bg_err err, const bg_media_err *e, const prog *pr)
{
    assert_int_equal(err, BG_EBUSY);
    assert_string_equal(e->code, "CANCELED");
    assert_true(now_s() - pr->canceled_at < 1.0);
}

/* ---- thumbnails ------------------------------------------------------ */

/* The first frame at or after t on the clip's 30 fps grid. */
static double frame_at(double t)
{
    return ceil(t * 30.0 - 1e-6) / 30.0;
}

static void test_thumbs_count(void **state)
{
    (void)state;
    char d[160];
    out_dir(d, sizeof(d), "thumbs-count");
    bg_thumbs_opts o = {.count = 3, .format = BG_IMAGE_JPEG, .width = 320};
    prog pr = {0};
    bg_media_progress p = {on_progress, &pr};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e;
    assert_int_equal(bg_media_thumbs(clip, d, "clip", &o, &p, &t, &n, &e), BG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(count_files(d), 3);
    for (size_t i = 0; i < n; i++) {
        double want = (i + 0.5) * 10.0 / 3.0;
        char name[32];
        snprintf(name, sizeof(name), "clip-%zu.jpg", i + 1);
        assert_string_equal(t[i].name, name);
        assert_true(fabs(t[i].offset - want) < 1e-9);
        assert_true(fabs(t[i].time - frame_at(want)) < 1e-3);
        assert_int_equal(t[i].width, 320);
        assert_int_equal(t[i].height, 180);
        struct stat st;
        assert_int_equal(stat(t[i].path, &st), 0);
        assert_int_equal(st.st_size, t[i].size);
        pixels px;
        decode_rgba(t[i].path, &px);
        assert_int_equal(px.codec, AV_CODEC_ID_MJPEG);
        assert_int_equal(px.w, 320);
        assert_int_equal(px.h, 180);
        free(px.rgba);
    }
    assert_true(pr.calls >= 1);
    free(t);
}

/* The frame taken is the one the ffmpeg tool gives for -ss T before -i
 * (before and after the keyframe at 8.33 s, B-frames skipped on the way),
 * and a frame one tenth of a second later is measurably different. */
static void ffmpeg_frame(double t, const char *out)
{
    char args[300];
    snprintf(args, sizeof(args), "-ss %.3f -i '%s' -frames:v 1", t, clip);
    assert_int_equal(ffmpeg(args, out), 0);
}

static void test_thumbs_exact_frame(void **state)
{
    (void)state;
    char d[160], ref[200];
    out_dir(d, sizeof(d), "thumbs-exact");
    double offs[] = {5.0, 8.4};
    bg_thumbs_opts o = {.offsets = offs, .n_offsets = 2, .format = BG_IMAGE_PNG};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e;
    assert_int_equal(bg_media_thumbs(clip, d, "x", &o, NULL, &t, &n, &e), BG_OK);
    path_in(ref, sizeof(ref), "ref.png");
    double same[2];
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(t[i].width, 1280);
        assert_int_equal(t[i].height, 720);
        assert_true(fabs(t[i].time - offs[i]) < 1e-3);
        ffmpeg_frame(offs[i], ref);
        pixels ours, r;
        decode_rgba(t[i].path, &ours);
        decode_rgba(ref, &r);
        assert_int_equal(ours.codec, AV_CODEC_ID_PNG);
        same[i] = mad(&ours, &r);
        assert_true(same[i] < 0.5);
        free(r.rgba);
        if (i == 0) {
            ffmpeg_frame(5.1, ref);
            decode_rgba(ref, &r);
            double other = mad(&ours, &r);
            assert_true(other > 4 * same[0] && other > 0.5);
            free(r.rgba);
        }
        free(ours.rgba);
    }
    free(t);
}

/* Offsets keep the caller's order and names; two inside one frame, one
 * behind the previous, one past the keyframe at 8.33 s, one inside the
 * last frame (between its start and the duration). */
static void test_thumbs_offsets(void **state)
{
    (void)state;
    char d[160];
    out_dir(d, sizeof(d), "thumbs-offsets");
    double offs[] = {9.0, 1.0, 1.01, 0.0, 9.99, 2.5};
    size_t k = sizeof(offs) / sizeof(offs[0]);
    bg_thumbs_opts o = {.offsets = offs, .n_offsets = k, .format = BG_IMAGE_WEBP, .width = 200};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e;
    assert_int_equal(bg_media_thumbs(clip, d, "v", &o, NULL, &t, &n, &e), BG_OK);
    assert_int_equal(n, k);
    assert_int_equal(count_files(d), (int)k);
    for (size_t i = 0; i < n; i++) {
        double want = offs[i] >= 9.9667 ? 9.9667 : frame_at(offs[i]);
        assert_true(fabs(t[i].time - want) < 1e-3);
        assert_int_equal(t[i].height, 112); /* 2 * round(200 * 720 / 1280 / 2) */
        pixels px;
        decode_rgba(t[i].path, &px);
        assert_int_equal(px.codec, AV_CODEC_ID_WEBP);
        assert_int_equal(px.w, 200);
        assert_int_equal(px.h, 112);
        free(px.rgba);
    }
    assert_string_equal(t[3].name, "v-4.webp");
    free(t);
}

/* A still picture has no duration: one thumbnail works, several do not. */
static void test_thumbs_still(void **state)
{
    (void)state;
    char d[160];
    out_dir(d, sizeof(d), "thumbs-still");
    bg_thumbs_opts o = {.count = 1, .format = BG_IMAGE_PNG, .width = 100};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e;
    assert_int_equal(bg_media_thumbs(still, d, "s", &o, NULL, &t, &n, &e), BG_OK);
    assert_int_equal(t[0].height, 56);
    free(t);
    o.count = 2;
    assert_int_equal(bg_media_thumbs(still, d, "s2", &o, NULL, &t, &n, &e), BG_EMEDIA);
    assert_string_equal(e.code, "INVALID_INPUT");
    assert_int_equal(count_files(d), 1);
}

static void expect_thumbs_opts_err(const char *stem, bg_thumbs_opts o)
{
    char d[160];
    path_in(d, sizeof(d), "thumbs-bad");
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_thumbs(clip, d, stem, &o, NULL, &t, &n, &e), BG_EINVAL);
    assert_string_equal(e.code, "INVALID_OPTIONS");
    assert_null(t);
}

static void test_thumbs_bad_options(void **state)
{
    (void)state;
    char d[160];
    out_dir(d, sizeof(d), "thumbs-bad");
    double past[] = {1.0, 10.0}, neg[] = {-1.0}, nan_[] = {NAN};
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.count = 0});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.count = 101});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.offsets = past, .n_offsets = 2});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.offsets = neg, .n_offsets = 1});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.offsets = nan_, .n_offsets = 1});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.count = 1, .width = 8});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.count = 1, .quality = 101});
    expect_thumbs_opts_err("a", (bg_thumbs_opts){.count = 1, .format = (bg_image_format)7});
    expect_thumbs_opts_err("../a", (bg_thumbs_opts){.count = 1});
    expect_thumbs_opts_err("", (bg_thumbs_opts){.count = 1});
    assert_int_equal(count_files(d), 0);
}

/* ---- resize ---------------------------------------------------------- */

static json_t *resize_ok(const char *in, const char *name, bg_resize_opts o, pixels *px)
{
    char out[200];
    path_in(out, sizeof(out), name);
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_image_resize(in, out, &o, NULL, &meta, &e), BG_OK);
    char part[220];
    snprintf(part, sizeof(part), "%s.part", out);
    assert_false(exists(part));
    decode_rgba(out, px);
    assert_int_equal((int)json_integer_value(json_object_get(meta, "width")), px->w);
    assert_int_equal((int)json_integer_value(json_object_get(meta, "height")), px->h);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(json_integer_value(json_object_get(meta, "size")), st.st_size);
    return meta;
}

static void expect_size(const char *in, bg_image_format f, bg_image_fit fit, int w, int h,
                        int want_w, int want_h)
{
    char name[64];
    static int k;
    snprintf(name, sizeof(name), "size-%d.%s", k++, bg_image_format_ext(f));
    pixels px;
    bg_resize_opts o = {.format = f, .fit = fit, .width = w, .height = h};
    json_decref(resize_ok(in, name, o, &px));
    assert_int_equal(px.w, want_w);
    assert_int_equal(px.h, want_h);
    free(px.rgba);
}

static void test_resize_sizes(void **state)
{
    (void)state;
    expect_size(still, BG_IMAGE_JPEG, BG_FIT_CONTAIN, 300, 300, 300, 169);
    expect_size(still, BG_IMAGE_PNG, BG_FIT_COVER, 300, 300, 300, 300);
    expect_size(still, BG_IMAGE_WEBP, BG_FIT_FILL, 300, 300, 300, 300);
    expect_size(stillj, BG_IMAGE_PNG, BG_FIT_CONTAIN, 300, 300, 300, 169);
    expect_size(still, BG_IMAGE_JPEG, BG_FIT_CONTAIN, 300, 0, 300, 169);
    expect_size(still, BG_IMAGE_JPEG, BG_FIT_COVER, 0, 300, 533, 300);
    expect_size(still, BG_IMAGE_JPEG, BG_FIT_CONTAIN, 0, 0, 1280, 720);
    expect_size(still, BG_IMAGE_PNG, BG_FIT_CONTAIN, 100, 400, 100, 56);   /* tall box */
    expect_size(bands, BG_IMAGE_PNG, BG_FIT_COVER, 50, 300, 50, 300);     /* narrow crop */
    expect_size(alpha, BG_IMAGE_PNG, BG_FIT_CONTAIN, 640, 640, 640, 480); /* up-scaling */
    expect_size(clip, BG_IMAGE_WEBP, BG_FIT_CONTAIN, 320, 320, 320, 180); /* a video's frame */
}

/* cover keeps the centre (all green), contain keeps all three bands. */
static void test_resize_cover_crops_centre(void **state)
{
    (void)state;
    pixels px;
    json_t *m = resize_ok(bands, "cover.png",
                          (bg_resize_opts){BG_IMAGE_PNG, BG_FIT_COVER, 100, 100, 0}, &px);
    assert_int_equal((int)json_integer_value(json_object_get(m, "source_width")), 1200);
    assert_string_equal(json_string_value(json_object_get(m, "format")), "png");
    json_decref(m);
    assert_true(near(at(&px, 0, 0), 0, 255, 0, 2));
    assert_true(near(at(&px, 99, 99), 0, 255, 0, 2));
    assert_true(near(at(&px, 50, 50), 0, 255, 0, 2));
    free(px.rgba);
    json_decref(resize_ok(bands, "contain.png",
                          (bg_resize_opts){BG_IMAGE_PNG, BG_FIT_CONTAIN, 120, 120, 0}, &px));
    assert_int_equal(px.h, 30);
    assert_true(near(at(&px, 5, 15), 255, 0, 0, 2));
    assert_true(near(at(&px, 60, 15), 0, 255, 0, 2));
    assert_true(near(at(&px, 115, 15), 0, 0, 255, 2));
    free(px.rgba);
}

/* png keeps alpha; jpeg puts the picture on white. */
static void test_resize_alpha(void **state)
{
    (void)state;
    pixels px;
    json_decref(resize_ok(alpha, "alpha.png",
                          (bg_resize_opts){BG_IMAGE_PNG, BG_FIT_CONTAIN, 32, 0, 0}, &px));
    assert_int_equal(px.h, 24);
    assert_true(abs(at(&px, 10, 10)[3] - 128) <= 2);
    free(px.rgba);
    json_decref(resize_ok(alpha, "alpha.jpg",
                          (bg_resize_opts){BG_IMAGE_JPEG, BG_FIT_CONTAIN, 32, 0, 0}, &px));
    assert_true(near(at(&px, 10, 10), 255, 127, 127, 8));
    free(px.rgba);
    json_decref(resize_ok(alpha, "alpha.webp",
                          (bg_resize_opts){BG_IMAGE_WEBP, BG_FIT_CONTAIN, 32, 0, 90}, &px));
    assert_int_equal(px.codec, AV_CODEC_ID_WEBP);
    assert_true(abs(at(&px, 10, 10)[3] - 128) <= 8);
    free(px.rgba);
}

/* Higher quality makes a bigger jpeg. */
static void test_resize_quality(void **state)
{
    (void)state;
    pixels px;
    json_t *lo = resize_ok(still, "q10.jpg", (bg_resize_opts){.width = 640, .quality = 10}, &px);
    free(px.rgba);
    json_t *hi = resize_ok(still, "q95.jpg", (bg_resize_opts){.width = 640, .quality = 95}, &px);
    free(px.rgba);
    assert_true(json_integer_value(json_object_get(hi, "size")) >
                2 * json_integer_value(json_object_get(lo, "size")));
    json_decref(lo);
    json_decref(hi);
}

static void test_resize_bad_options(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "bad.jpg");
    bg_resize_opts bad[] = {
        {.width = -1},
        {.height = 8193},
        {.quality = 101},
        {.format = (bg_image_format)9},
        {.fit = (bg_image_fit)5, .width = 10, .height = 10},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bg_media_err e = {.code = ""};
        assert_int_equal(bg_media_image_resize(still, out, &bad[i], NULL, NULL, &e), BG_EINVAL);
        assert_string_equal(e.code, "INVALID_OPTIONS");
    }
    assert_false(exists(out));
}

static void test_parsers(void **state)
{
    (void)state;
    bg_image_format f = BG_IMAGE_PNG;
    assert_true(bg_image_format_parse("jpg", &f) && f == BG_IMAGE_JPEG);
    assert_true(bg_image_format_parse("webp", &f) && f == BG_IMAGE_WEBP);
    assert_false(bg_image_format_parse("JPEG", &f));
    assert_false(bg_image_format_parse("gif", &f));
    assert_false(bg_image_format_parse(NULL, &f));
    assert_string_equal(bg_image_format_mime(BG_IMAGE_WEBP), "image/webp");
    bg_image_fit fit = BG_FIT_FILL;
    assert_true(bg_image_fit_parse("cover", &fit) && fit == BG_FIT_COVER);
    assert_false(bg_image_fit_parse("crop", &fit));

    uint8_t c[4] = {1, 2, 3, 4};
    assert_true(bg_waveform_color_parse("#0a0B0c", c));
    assert_true(c[0] == 10 && c[1] == 11 && c[2] == 12 && c[3] == 255);
    assert_true(bg_waveform_color_parse("#ff000080", c));
    assert_true(c[0] == 255 && c[3] == 128);
    static const char *const bad[] = {"", "#", "#fff", "#12345", "#1234567", "#123456789",
                                      "123456", "#gggggg", "# 12345", "#12345g", "red",
                                      "#ff0000 ", "0x123456"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t d[4] = {9, 9, 9, 9};
        assert_false(bg_waveform_color_parse(bad[i], d));
        assert_int_equal(d[0], 9);
    }
    assert_false(bg_waveform_color_parse(NULL, c));
}

/* ---- waveform -------------------------------------------------------- */

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    return j;
}

static int64_t jint(const json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* A sine of amplitude 1/8: every pixel's peaks are near ±1/8 of full scale. */
static void check_peaks(const json_t *j, int width, int bits, double amp)
{
    assert_int_equal(jint(j, "version"), 2);
    assert_int_equal(jint(j, "channels"), 1);
    assert_int_equal(jint(j, "sample_rate"), 48000);
    assert_int_equal(jint(j, "bits"), bits);
    assert_int_equal(jint(j, "length"), width);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2 * (size_t)width);
    double full = bits == 8 ? 128 : 32768;
    for (int i = 0; i < width; i++) {
        int64_t lo = json_integer_value(json_array_get(data, 2 * i));
        int64_t hi = json_integer_value(json_array_get(data, 2 * i + 1));
        assert_true(lo >= -full && hi <= full - 1 && lo <= hi);
        assert_true(fabs(hi - amp * full) <= 0.02 * full);
        assert_true(fabs(lo + amp * full) <= 0.02 * full);
    }
}

static void test_waveform_file(void **state)
{
    (void)state;
    char png[160], js[160];
    path_in(png, sizeof(png), "wave.png");
    path_in(js, sizeof(js), "wave.json");
    bg_waveform_opts o = {.width = 1800, .height = 280, .foreground = "#3366ff"};
    prog pr = {0};
    bg_media_progress p = {on_progress, &pr};
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_waveform(wav, png, js, &o, &p, &meta, &e), BG_OK);
    json_t *j = load_json(js);
    check_peaks(j, 1800, 16, 0.125);
    assert_int_equal(jint(j, "samples_per_pixel"), 480000 / 1800 + 1); /* 266.67 rounded */
    json_decref(j);
    assert_int_equal(jint(meta, "length"), 1800);
    assert_true(fabs(json_number_value(json_object_get(meta, "duration")) - 10.0) < 0.01);
    struct stat st;
    assert_int_equal(stat(png, &st), 0);
    assert_int_equal(jint(meta, "png_size"), st.st_size);
    json_decref(meta);

    pixels px;
    decode_rgba(png, &px);
    assert_int_equal(px.codec, AV_CODEC_ID_PNG);
    assert_int_equal(px.w, 1800);
    assert_int_equal(px.h, 280);
    assert_true(near(at(&px, 900, 139), 0x33, 0x66, 0xff, 0)); /* the centre line */
    assert_true(near(at(&px, 900, 2), 255, 255, 255, 0));     /* above the peaks */
    assert_true(near(at(&px, 900, 277), 255, 255, 255, 0));   /* below them */
    /* The line ends near 1/8 of the half height from the centre (17.4 px). */
    assert_true(near(at(&px, 900, 139 - 16), 0x33, 0x66, 0xff, 0));
    assert_true(near(at(&px, 900, 139 - 19), 255, 255, 255, 0));
    free(px.rgba);
}

/* Stereo is averaged: the left-only sine comes out at half amplitude;
 * 8 bits; a transparent background gives an RGBA png. */
static void test_waveform_mixdown_8bit(void **state)
{
    (void)state;
    char png[160], js[160];
    path_in(png, sizeof(png), "left.png");
    path_in(js, sizeof(js), "left.json");
    bg_waveform_opts o = {.width = 200, .height = 50, .bits = 8, .background = "#00000000",
                          .foreground = "#ff0000"};
    bg_media_err e;
    assert_int_equal(bg_media_waveform(lwav, png, js, &o, NULL, NULL, &e), BG_OK);
    json_t *j = load_json(js);
    check_peaks(j, 200, 8, 0.0625);
    json_decref(j);
    pixels px;
    decode_rgba(png, &px);
    assert_int_equal(px.w, 200);
    assert_int_equal(px.h, 50);
    assert_int_equal(at(&px, 100, 1)[3], 0);
    assert_int_equal(at(&px, 100, 24)[3], 255);
    free(px.rgba);
}

/* JSON only, and the PNG only; audio from a video container. */
static void test_waveform_single_outputs(void **state)
{
    (void)state;
    char png[160], js[160];
    path_in(png, sizeof(png), "only.png");
    path_in(js, sizeof(js), "only.json");
    bg_waveform_opts o = {.width = 64};
    bg_media_err e;
    assert_int_equal(bg_media_waveform(clip, NULL, js, &o, NULL, NULL, &e), BG_OK);
    assert_false(exists(png));
    json_t *j = load_json(js);
    assert_int_equal(jint(j, "length"), 64);
    json_decref(j);
    assert_int_equal(bg_media_waveform(wav, png, NULL, &o, NULL, NULL, &e), BG_OK);
    assert_true(exists(png));
    assert_int_equal(bg_media_waveform(wav, NULL, NULL, &o, NULL, NULL, &e), BG_EINVAL);
}

/* Fed directly with an unknown length, long enough to fold many times.
 * With x = the position in pixels (continuous), odd samples are x / width
 * and even ones -(1 - x / width): pixel p's max is reached at its very end
 * and its min at its very start, so a block lost or misplaced at either
 * edge shows, while the ramps stay continuous across edges. */
static void test_waveform_acc_fold(void **state)
{
    (void)state;
    const int width = 100;
    const size_t total = 10 * 1000 * 1000 + 37;
    bg_waveform_acc *a = NULL;
    bg_media_err e;
    bg_waveform_opts o = {.width = width, .height = 10};
    assert_int_equal(bg_waveform_acc_create(&o, 0, 0, &a, &e), BG_OK);
    float chunk[4096];
    size_t done = 0;
    while (done < total) {
        size_t k = total - done < 4096 ? total - done : 4096;
        for (size_t i = 0; i < k; i++) {
            size_t s = done + i;
            double x = (double)s * width / (double)total;
            chunk[i] = (float)((s % 2) ? x / width : -(1.0 - x / width));
        }
        bg_waveform_acc_on_samples(a, chunk, k, 44100);
        done += k;
    }
    char js[160];
    path_in(js, sizeof(js), "fold.json");
    json_t *meta = NULL;
    assert_int_equal(bg_waveform_acc_finish(a, NULL, js, &meta, &e), BG_OK);
    bg_waveform_acc_destroy(a);
    assert_int_equal(jint(meta, "sample_rate"), 44100);
    assert_null(json_object_get(meta, "png_size"));
    json_decref(meta);
    json_t *j = load_json(js);
    json_t *data = json_object_get(j, "data");
    for (int i = 0; i < width; i++) {
        int64_t hi = json_integer_value(json_array_get(data, 2 * i + 1));
        int64_t lo = json_integer_value(json_array_get(data, 2 * i));
        /* a block straddling an edge may bring 1/16 pixel of the neighbour */
        double bleed = 32768.0 / width / 16;
        double want_hi = fmin(32767, 32768.0 * (i + 1) / width);
        double want_lo = 32768.0 * (1.0 - (double)i / width);
        assert_true(hi >= want_hi - 2 && hi <= want_hi + bleed + 2);
        assert_true(-lo >= want_lo - 2 && -lo <= want_lo + bleed + 2);
    }
    json_decref(j);

    /* Silence with two single-sample spikes in the middle of pixels 37 and
     * 80: only those pixels show them, exactly, after all the folding. */
    assert_int_equal(bg_waveform_acc_create(&o, 0, 8000, &a, &e), BG_OK);
    size_t up = total / width * 37 + total / width / 2 + 1, down = total / width * 80 + 12345;
    done = 0;
    while (done < total) {
        size_t k = total - done < 4096 ? total - done : 4096;
        for (size_t i = 0; i < k; i++)
            chunk[i] = done + i == up ? 0.9f : done + i == down ? -0.7f : 0.0f;
        bg_waveform_acc_feed(a, chunk, k);
        done += k;
    }
    assert_int_equal(bg_waveform_acc_finish(a, NULL, js, NULL, &e), BG_OK);
    bg_waveform_acc_destroy(a);
    j = load_json(js);
    data = json_object_get(j, "data");
    for (int i = 0; i < width; i++) {
        int64_t lo = json_integer_value(json_array_get(data, 2 * i));
        int64_t hi = json_integer_value(json_array_get(data, 2 * i + 1));
        assert_int_equal(hi, i == 37 ? 29491 : 0);
        assert_int_equal(lo, i == 80 ? -22938 : 0);
    }
    json_decref(j);

    /* Fewer samples than pixels: every pixel still has a value. */
    assert_int_equal(bg_waveform_acc_create(&o, 10, 8000, &a, &e), BG_OK);
    float few[10] = {0.5f, -0.5f, 0.5f, -0.5f, 0.5f, -0.5f, 0.5f, -0.5f, 0.5f, -0.5f};
    bg_waveform_acc_feed(a, few, 10);
    assert_int_equal(bg_waveform_acc_finish(a, NULL, js, NULL, &e), BG_OK);
    bg_waveform_acc_destroy(a);
    j = load_json(js);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 200);
    assert_int_equal(jint(j, "samples_per_pixel"), 1);
    json_decref(j);

    /* Nothing fed. */
    assert_int_equal(bg_waveform_acc_create(&o, 0, 8000, &a, &e), BG_OK);
    assert_int_equal(bg_waveform_acc_finish(a, NULL, js, NULL, &e), BG_EMEDIA);
    assert_string_equal(e.code, "INVALID_INPUT");
    bg_waveform_acc_destroy(a);
    bg_waveform_acc_destroy(NULL);
}

static void test_waveform_bad_options(void **state)
{
    (void)state;
    bg_waveform_opts bad[] = {
        {.width = -1}, {.width = 8193}, {.height = 2049}, {.bits = 12},
        {.foreground = "blue"}, {.background = "#fff"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bg_waveform_acc *a = NULL;
        bg_media_err e = {.code = ""};
        assert_int_equal(bg_waveform_acc_create(&bad[i], 0, 0, &a, &e), BG_EINVAL);
        assert_null(a);
        assert_string_equal(e.code, "INVALID_OPTIONS");
        char js[160];
        path_in(js, sizeof(js), "bad-opts.json");
        assert_int_equal(bg_media_waveform(wav, NULL, js, &bad[i], NULL, NULL, &e), BG_EINVAL);
        assert_false(exists(js));
    }
}

/* ---- corrupt and wrong-type inputs ----------------------------------- */

static void expect_invalid_everywhere(const char *in, bool image_ok, bool audio_ok)
{
    char d[160], out[200], js[200];
    static int k;
    snprintf(d, sizeof(d), "%s/bad-%d", dir, k++);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(out, sizeof(out), "%s/r.jpg", d);
    snprintf(js, sizeof(js), "%s/w.json", d);
    bg_media_err e = {.code = ""};
    bg_thumbs_opts to = {.count = 2};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    if (!image_ok) {
        assert_int_equal(bg_media_thumbs(in, d, "t", &to, NULL, &t, &n, &e), BG_EMEDIA);
        assert_string_equal(e.code, "INVALID_INPUT");
        assert_null(strstr(e.message, dir));
        bg_resize_opts ro = {.width = 10};
        assert_int_equal(bg_media_image_resize(in, out, &ro, NULL, NULL, &e), BG_EMEDIA);
        assert_string_equal(e.code, "INVALID_INPUT");
    }
    if (!audio_ok) {
        bg_waveform_opts wo = {0};
        assert_int_equal(bg_media_waveform(in, NULL, js, &wo, NULL, NULL, &e), BG_EMEDIA);
        assert_string_equal(e.code, "INVALID_INPUT");
        assert_null(strstr(e.message, dir));
    }
    assert_null(t);
    assert_int_equal(count_files(d), 0);
}

static void test_invalid_inputs(void **state)
{
    (void)state;
    char p[160];
    static unsigned char rnd[64 * 1024];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        rnd[i] = (unsigned char)x;
    }
    static const char *const names[] = {"random.jpg", "random.mp4", "random.wav"};
    for (size_t i = 0; i < 3; i++) {
        path_in(p, sizeof(p), names[i]);
        assert_true(write_file(p, rnd, sizeof(rnd)));
        expect_invalid_everywhere(p, false, false);
    }
    path_in(p, sizeof(p), "empty.jpg");
    assert_true(write_file(p, "", 0));
    expect_invalid_everywhere(p, false, false);
    static const char text[] = "Dear diary,\nToday I uploaded a text file named like a photo.\n";
    path_in(p, sizeof(p), "text.jpg");
    assert_true(write_file(p, text, sizeof(text) - 1));
    expect_invalid_everywhere(p, false, false);
    path_in(p, sizeof(p), "text.png");
    assert_true(write_file(p, text, sizeof(text) - 1));
    expect_invalid_everywhere(p, false, false);

    /* A png cut in half, a jpeg with its tail replaced by zeros: not crashes. */
    FILE *f = fopen(still, "rb");
    static unsigned char buf[4 << 20];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    path_in(p, sizeof(p), "half.png");
    assert_true(write_file(p, buf, len / 2));
    char out[200];
    path_in(out, sizeof(out), "half-out.jpg");
    bg_resize_opts ro = {.width = 10};
    bg_media_err e;
    bg_err err = bg_media_image_resize(p, out, &ro, NULL, NULL, &e);
    assert_true(err == BG_OK || (err == BG_EMEDIA && strcmp(e.code, "INVALID_INPUT") == 0));

    /* Wrong types: audio into the picture robots, pictures into the waveform. */
    expect_invalid_everywhere(wav, false, true);
    expect_invalid_everywhere(still, true, false);

    path_in(p, sizeof(p), "missing.mp4");
    bg_thumbs_opts to = {.count = 1};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    assert_int_equal(bg_media_thumbs(p, dir, "m", &to, NULL, &t, &n, &e), BG_EIO);
    assert_string_equal(e.code, "INPUT_MISSING");
}

/* ---- cancel ---------------------------------------------------------- */

static void test_cancel_at_start(void **state)
{
    (void)state;
    char d[160], out[200];
    out_dir(d, sizeof(d), "cancel-start");
    bg_media_err e;
    prog pr = {.cancel_at = 1};
    bg_media_progress p = {on_progress, &pr};
    bg_thumbs_opts to = {.count = 3};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    assert_canceled(bg_media_thumbs(clip, d, "c", &to, &p, &t, &n, &e), &e, &pr);
    pr = (prog){.cancel_at = 1};
    snprintf(out, sizeof(out), "%s/r.png", d);
    bg_resize_opts ro = {.format = BG_IMAGE_PNG, .width = 100};
    assert_canceled(bg_media_image_resize(still, out, &ro, &p, NULL, &e), &e, &pr);
    pr = (prog){.cancel_at = 1};
    snprintf(out, sizeof(out), "%s/w.png", d);
    bg_waveform_opts wo = {0};
    assert_canceled(bg_media_waveform(wav, out, NULL, &wo, &p, NULL, &e), &e, &pr);
    assert_int_equal(count_files(d), 0);
}

/* Every call sleeps past the progress interval, so the next tick calls at
 * once: thumbnails are canceled after the first of two is written (its
 * .part must go), resize while decoding, the waveform after a few
 * packets. */
static void test_cancel_midway(void **state)
{
    (void)state;
    char d[160], out[200], js[200];
    out_dir(d, sizeof(d), "cancel-mid");
    bg_media_err e;
    prog pr = {.cancel_from = 0.5, .sleep_ms = 260};
    bg_media_progress p = {on_progress, &pr};
    double offs[] = {0.0, 9.0};
    bg_thumbs_opts to = {.offsets = offs, .n_offsets = 2, .format = BG_IMAGE_PNG};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    assert_canceled(bg_media_thumbs(clip, d, "c", &to, &p, &t, &n, &e), &e, &pr);
    assert_true(pr.max >= 0.5);
    assert_null(t);
    assert_int_equal(count_files(d), 0);

    pr = (prog){.cancel_at = 2, .sleep_ms = 260};
    snprintf(out, sizeof(out), "%s/r.webp", d);
    bg_resize_opts ro = {.format = BG_IMAGE_WEBP, .width = 100};
    assert_canceled(bg_media_image_resize(clip, out, &ro, &p, NULL, &e), &e, &pr);

    pr = (prog){.cancel_from = 0.005, .sleep_ms = 260};
    snprintf(out, sizeof(out), "%s/w.png", d);
    snprintf(js, sizeof(js), "%s/w.json", d);
    bg_waveform_opts wo = {0};
    assert_canceled(bg_media_waveform(clip, out, js, &wo, &p, NULL, &e), &e, &pr);
    assert_true(pr.max > 0.0);
    assert_int_equal(count_files(d), 0);
}

/* An unwritable directory: OUTPUT_ERROR and nothing left. */
static void test_output_error(void **state)
{
    (void)state;
    char d[160];
    path_in(d, sizeof(d), "no-such-dir");
    bg_thumbs_opts to = {.count = 2};
    bg_media_thumb *t = NULL;
    size_t n = 0;
    bg_media_err e;
    assert_int_equal(bg_media_thumbs(clip, d, "c", &to, NULL, &t, &n, &e), BG_EIO);
    assert_string_equal(e.code, "OUTPUT_ERROR");
    char out[200];
    snprintf(out, sizeof(out), "%s/w.json", d);
    bg_waveform_opts wo = {0};
    assert_int_equal(bg_media_waveform(wav, NULL, out, &wo, NULL, NULL, &e), BG_EIO);
    assert_string_equal(e.code, "OUTPUT_ERROR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_thumbs_count),
        cmocka_unit_test(test_thumbs_exact_frame),
        cmocka_unit_test(test_thumbs_offsets),
        cmocka_unit_test(test_thumbs_still),
        cmocka_unit_test(test_thumbs_bad_options),
        cmocka_unit_test(test_resize_sizes),
        cmocka_unit_test(test_resize_cover_crops_centre),
        cmocka_unit_test(test_resize_alpha),
        cmocka_unit_test(test_resize_quality),
        cmocka_unit_test(test_resize_bad_options),
        cmocka_unit_test(test_waveform_file),
        cmocka_unit_test(test_waveform_mixdown_8bit),
        cmocka_unit_test(test_waveform_single_outputs),
        cmocka_unit_test(test_waveform_acc_fold),
        cmocka_unit_test(test_waveform_bad_options),
        cmocka_unit_test(test_invalid_inputs),
        cmocka_unit_test(test_cancel_at_start),
        cmocka_unit_test(test_cancel_midway),
        cmocka_unit_test(test_output_error),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
