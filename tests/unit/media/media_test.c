/*
 * Unit tests for node/media/media.h: probing (a wav, a 720p mp4, and the
 * inputs that are not media), and the mp3 audio robot (a time window, audio
 * from a video, downmix and resampling, a window past the end, cancel at the
 * start, inside libav's I/O and in the middle of the encode, bad options, an
 * unwritable output, truncated inputs, a video without audio, refused
 * playlists, two robots at once).
 *
 * Fixtures are made once per run by the ffmpeg tool in a temporary
 * directory (no media is committed): a 40 s stereo 48 kHz sine wav, a 6 s
 * 1280x720 h264+aac mp4, a 1 s video-only mp4, and cut or fake files derived
 * from them. Outputs are checked by probing them with bg_media_probe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "media_fixtures.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/media/media.h"

#include "../testutil.h"

static char dir[64];    /* mkdtemp, removed by the group teardown */
static char wav[128];   /* 40 s, 2 ch, 48 kHz, pcm_s16le */
static char clip[128];  /* 6 s, 1280x720 30 fps h264 + aac 2 ch 48 kHz, moov at the end */
static char vonly[128]; /* 1 s, 320x240 h264, no audio */

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bg-media-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    path_in(wav, sizeof(wav), "sine.wav");
    path_in(clip, sizeof(clip), "clip.mp4");
    path_in(vonly, sizeof(vonly), "video-only.mp4");
    if (ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000 -t 40 -ac 2 -c:a pcm_s16le", wav))
        return -1;
    if (ffmpeg("-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i "
               "sine=frequency=440:sample_rate=48000 -t 6 -c:v libx264 -preset ultrafast "
               "-pix_fmt yuv420p -c:a aac -ac 2 -shortest",
               clip))
        return -1;
    if (ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30 -t 1 -c:v libx264 -preset ultrafast "
               "-pix_fmt yuv420p",
               vonly))
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

/* The error names no path of ours. */
static void assert_no_path(const bg_media_err *e)
{
    assert_null(strstr(e->message, dir));
}

/* ---- probe ----------------------------------------------------------- */

static void test_probe_wav(void **state)
{
    (void)state;
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_probe(wav, &j, &e), BG_OK);
    assert_true(fabs(num(j, "duration") - 40.0) < 0.1);
    assert_int_equal((int)num(j, "sample_rate"), 48000);
    assert_int_equal((int)num(j, "channels"), 2);
    assert_string_equal(str(j, "format"), "wav");
    assert_string_equal(str(j, "audio_codec"), "pcm_s16le");
    assert_true(json_is_true(json_object_get(j, "has_audio")));
    assert_true(json_is_false(json_object_get(j, "has_video")));
    assert_null(json_object_get(j, "width"));
    struct stat st;
    assert_int_equal(stat(wav, &st), 0);
    assert_int_equal((long long)num(j, "size"), (long long)st.st_size);
    json_t *streams = json_object_get(j, "streams");
    assert_int_equal(json_array_size(streams), 1);
    json_t *s0 = json_array_get(streams, 0);
    assert_string_equal(str(s0, "type"), "audio");
    assert_string_equal(str(s0, "channel_layout"), "stereo");
    assert_int_equal((int)num(s0, "bit_rate"), 48000 * 2 * 16);
    json_decref(j);
}

static void test_probe_mp4(void **state)
{
    (void)state;
    json_t *j = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_probe(clip, &j, &e), BG_OK);
    assert_int_equal((int)num(j, "width"), 1280);
    assert_int_equal((int)num(j, "height"), 720);
    assert_true(fabs(num(j, "frame_rate") - 30.0) < 0.01);
    assert_true(json_is_true(json_object_get(j, "has_video")));
    assert_true(json_is_true(json_object_get(j, "has_audio")));
    assert_string_equal(str(j, "video_codec"), "h264");
    assert_string_equal(str(j, "audio_codec"), "aac");
    assert_int_equal((int)num(j, "sample_rate"), 48000);
    assert_non_null(strstr(str(j, "format"), "mp4"));
    assert_true(fabs(num(j, "duration") - 6.0) < 0.1);
    assert_true(num(j, "bit_rate") > 0);
    assert_int_equal(json_array_size(json_object_get(j, "streams")), 2);
    json_decref(j);
}

/* Regression: a file named *.jpg (or .png) scores as image2 by its name, a
 * refused demuxer; the bytes must decide, so a real picture probes. */
static void test_probe_named_pictures(void **state)
{
    (void)state;
    static const char *const names[] = {"photo.jpg", "photo.jpeg", "shot.png", "photo.bmp"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[600];
        path_in(path, sizeof(path), names[i]);
        assert_int_equal(ffmpeg("-f lavfi -i testsrc2=size=320x240 -frames:v 1 -update 1", path), 0);
        json_t *j = NULL;
        bg_media_err e = {.code = ""};
        assert_int_equal(bg_media_probe(path, &j, &e), BG_OK);
        assert_true(json_is_true(json_object_get(j, "has_video")));
        assert_int_equal((int)num(j, "width"), 320);
        assert_null(strstr(str(j, "format"), "image2"));
        json_decref(j);
    }
}

static void expect_probe_err(const char *path, bg_err want, const char *code)
{
    json_t *j = NULL;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_probe(path, &j, &e), want);
    assert_null(j);
    assert_string_equal(e.code, code);
    assert_true(e.message[0] != '\0');
    assert_no_path(&e);
}

static void test_probe_errors(void **state)
{
    (void)state;
    char p[160];

    /* Random bytes from a fixed generator, so a run is reproducible. */
    static unsigned char rnd[64 * 1024];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        rnd[i] = (unsigned char)x;
    }
    path_in(p, sizeof(p), "random.bin");
    assert_true(write_file(p, rnd, sizeof(rnd)));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");

    path_in(p, sizeof(p), "empty.mp4");
    assert_true(write_file(p, "", 0));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");

    static const char text[] = "Dear diary,\nToday I uploaded a text file named like a song.\n";
    path_in(p, sizeof(p), "text.mp3");
    assert_true(write_file(p, text, sizeof(text) - 1));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");

    path_in(p, sizeof(p), "text.txt");
    assert_true(write_file(p, text, sizeof(text) - 1));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");

    path_in(p, sizeof(p), "missing.wav");
    expect_probe_err(p, BG_EIO, "INPUT_MISSING");
    expect_probe_err(dir, BG_EIO, "INPUT_MISSING"); /* a directory */
}

/* Playlists and concat lists name other files: they are refused before
 * anything they name is opened. */
static void test_probe_refuses_playlists(void **state)
{
    (void)state;
    char p[160], body[512];
    snprintf(body, sizeof(body),
             "#EXTM3U\n#EXT-X-TARGETDURATION:40\n#EXTINF:40,\n%s\n#EXT-X-ENDLIST\n", wav);
    path_in(p, sizeof(p), "list.m3u8");
    assert_true(write_file(p, body, strlen(body)));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");

    snprintf(body, sizeof(body), "ffconcat version 1.0\nfile sine.wav\n");
    path_in(p, sizeof(p), "list.ffconcat");
    assert_true(write_file(p, body, strlen(body)));
    expect_probe_err(p, BG_EMEDIA, "INVALID_INPUT");
}

/* ---- audio encode ---------------------------------------------------- */

typedef struct prog {
    int calls;
    double last, min, max;
    bool monotonic;
    int cancel_at;     /* return false on this call (1-based); 0: never */
    bool cancel_mid;   /* return false on the first call with 0 < fraction < 1 */
    unsigned sleep_ms; /* sleep in every call: the next tick then calls again */
} prog;

static bool on_progress(void *ud, double fraction)
{
    prog *p = ud;
    p->calls++;
    if (p->calls > 1 && fraction < p->last)
        p->monotonic = false;
    if (p->calls == 1 || fraction < p->min)
        p->min = fraction;
    if (fraction > p->max)
        p->max = fraction;
    p->last = fraction;
    if (p->cancel_at == p->calls || (p->cancel_mid && fraction > 0 && fraction < 1))
        return false;
    if (p->sleep_ms > 0) {
        struct timespec ts = {p->sleep_ms / 1000, (long)(p->sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

static bg_audio_encode_opts mp3_opts(double start, double duration)
{
    return (bg_audio_encode_opts){.format = "mp3", .start_s = start, .duration_s = duration};
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

static void test_encode_window(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "window.mp3");
    bg_audio_encode_opts o = mp3_opts(5.0, 30.0);
    prog pr = {.monotonic = true};
    bg_media_progress p = {on_progress, &pr};
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_audio_encode(wav, out, &o, &p, &meta, &e), BG_OK);
    assert_true(exists(out));
    char part[200];
    part_of(out, part, sizeof(part));
    assert_false(exists(part));

    assert_non_null(meta);
    assert_string_equal(str(meta, "codec"), "mp3");
    assert_string_equal(str(meta, "format"), "mp3");
    assert_true(fabs(num(meta, "duration") - 30.0) < 0.1);
    assert_int_equal((int)num(meta, "sample_rate"), 48000);
    assert_int_equal((int)num(meta, "channels"), 2);
    assert_int_equal((int)num(meta, "bit_rate"), 128000);
    json_decref(meta);

    /* The file itself, probed separately. */
    json_t *j = NULL;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_string_equal(str(j, "audio_codec"), "mp3");
    assert_true(fabs(num(j, "duration") - 30.0) < 0.1);
    json_decref(j);

    assert_true(pr.calls >= 1); /* at least the call at the start */
    assert_true(pr.monotonic);
    assert_true(pr.min >= 0.0 && pr.max <= 1.0);
}

static void test_encode_from_video(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "clip.mp3");
    bg_audio_encode_opts o = mp3_opts(0, 0);
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_audio_encode(clip, out, &o, NULL, &meta, &e), BG_OK);
    assert_true(fabs(num(meta, "duration") - 6.0) < 0.1);
    assert_int_equal((int)num(meta, "channels"), 2);
    assert_int_equal((int)num(meta, "sample_rate"), 48000);
    json_decref(meta);
    json_t *j = NULL;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_true(json_is_false(json_object_get(j, "has_video")));
    assert_int_equal(json_array_size(json_object_get(j, "streams")), 1);
    json_decref(j);
}

static void test_encode_mono_resampled(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "mono.mp3");
    bg_audio_encode_opts o = mp3_opts(1.0, 10.0);
    o.channels = 1;
    o.sample_rate = 22050;
    o.bitrate = 64000;
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_audio_encode(wav, out, &o, NULL, &meta, &e), BG_OK);
    assert_int_equal((int)num(meta, "channels"), 1);
    assert_int_equal((int)num(meta, "sample_rate"), 22050);
    assert_int_equal((int)num(meta, "bit_rate"), 64000);
    assert_true(fabs(num(meta, "duration") - 10.0) < 0.1);
    json_decref(meta);
}

/* A window that runs past the end encodes what exists; meta_out may be NULL. */
static void test_encode_past_end(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "tail.mp3");
    bg_audio_encode_opts o = mp3_opts(30.0, 30.0);
    bg_media_err e;
    assert_int_equal(bg_media_audio_encode(wav, out, &o, NULL, NULL, &e), BG_OK);
    json_t *j = NULL;
    assert_int_equal(bg_media_probe(out, &j, &e), BG_OK);
    assert_true(fabs(num(j, "duration") - 10.0) < 0.1);
    json_decref(j);

    /* A start at or past the end has nothing to encode. */
    path_in(out, sizeof(out), "nothing.mp3");
    o = mp3_opts(50.0, 0);
    e = (bg_media_err){.code = ""};
    assert_int_equal(bg_media_audio_encode(wav, out, &o, NULL, NULL, &e), BG_EINVAL);
    assert_string_equal(e.code, "INVALID_OPTIONS");
    assert_no_output(out);
}

static void expect_canceled(const char *name, prog *pr)
{
    char out[160];
    path_in(out, sizeof(out), name);
    bg_audio_encode_opts o = mp3_opts(0, 0);
    bg_media_progress p = {on_progress, pr};
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_audio_encode(wav, out, &o, &p, &meta, &e), BG_EBUSY);
    assert_string_equal(e.code, "CANCELED");
    assert_null(meta);
    assert_no_output(out);
}

static void test_cancel_at_start(void **state)
{
    (void)state;
    prog pr = {.monotonic = true, .cancel_at = 1};
    expect_canceled("cancel-start.mp3", &pr);
    assert_int_equal(pr.calls, 1);
}

/* The first call sleeps past the interval, so the next tick — from the
 * interrupt callback, while libav opens the input — calls again. */
static void test_cancel_during_io(void **state)
{
    (void)state;
    prog pr = {.monotonic = true, .cancel_at = 2, .sleep_ms = 260};
    expect_canceled("cancel-io.mp3", &pr);
    assert_int_equal(pr.calls, 2);
    assert_true(pr.last == 0.0);
}

/* Every call sleeps past the interval, so every tick calls: the first call
 * with some output done cancels, when the .part exists. */
static void test_cancel_mid_encode(void **state)
{
    (void)state;
    prog pr = {.monotonic = true, .cancel_mid = true, .sleep_ms = 260};
    expect_canceled("cancel-mid.mp3", &pr);
    assert_true(pr.last > 0.0 && pr.last < 1.0);
}

static void expect_bad_opts(const bg_audio_encode_opts *o)
{
    char out[160];
    path_in(out, sizeof(out), "bad-opts.mp3");
    bg_media_err e = {.code = ""};
    json_t *meta = NULL;
    assert_int_equal(bg_media_audio_encode(wav, out, o, NULL, &meta, &e), BG_EINVAL);
    assert_string_equal(e.code, "INVALID_OPTIONS");
    assert_null(meta);
    assert_no_output(out);
}

static void test_invalid_options(void **state)
{
    (void)state;
    bg_audio_encode_opts o = mp3_opts(0, 0);
    o.format = "flac";
    expect_bad_opts(&o);
    o.format = NULL;
    expect_bad_opts(&o);
    o = mp3_opts(0, 0);
    o.channels = 3;
    expect_bad_opts(&o);
    o = mp3_opts(0, 0);
    o.bitrate = 1;
    expect_bad_opts(&o);
    o = mp3_opts(0, 0);
    o.sample_rate = 12345;
    expect_bad_opts(&o);
    o = mp3_opts(-1.0, 0);
    expect_bad_opts(&o);
    o = mp3_opts(0, NAN);
    expect_bad_opts(&o);
    o = mp3_opts(INFINITY, 0);
    expect_bad_opts(&o);
}

static void test_output_dir_missing(void **state)
{
    (void)state;
    char out[160];
    path_in(out, sizeof(out), "no-such-dir/out.mp3");
    bg_audio_encode_opts o = mp3_opts(0, 5.0);
    bg_media_err e = {.code = ""};
    assert_int_equal(bg_media_audio_encode(wav, out, &o, NULL, NULL, &e), BG_EIO);
    assert_string_equal(e.code, "OUTPUT_ERROR");
    assert_no_path(&e);
    assert_no_output(out);
}

static void test_input_errors(void **state)
{
    (void)state;
    char in[160], out[160];
    path_in(out, sizeof(out), "from-bad.mp3");
    bg_audio_encode_opts o = mp3_opts(0, 0);
    bg_media_err e = {.code = ""};

    path_in(in, sizeof(in), "missing.wav");
    assert_int_equal(bg_media_audio_encode(in, out, &o, NULL, NULL, &e), BG_EIO);
    assert_string_equal(e.code, "INPUT_MISSING");
    assert_no_output(out);

    static const char text[] = "not audio at all\n";
    path_in(in, sizeof(in), "text2.mp3");
    assert_true(write_file(in, text, sizeof(text) - 1));
    assert_int_equal(bg_media_audio_encode(in, out, &o, NULL, NULL, &e), BG_EMEDIA);
    assert_string_equal(e.code, "INVALID_INPUT");
    assert_no_output(out);

    assert_int_equal(bg_media_audio_encode(vonly, out, &o, NULL, NULL, &e), BG_EMEDIA);
    assert_string_equal(e.code, "INVALID_INPUT");
    assert_no_path(&e);
    assert_no_output(out);
}

/* The first 30% of the mp4 has no moov atom (ffmpeg writes it last): not
 * media. Either refusal or a shorter encode is acceptable; a crash is not. */
static void test_truncated_mp4(void **state)
{
    (void)state;
    char in[160], out[160];
    path_in(in, sizeof(in), "truncated.mp4");
    path_in(out, sizeof(out), "truncated-mp4.mp3");
    assert_true(truncate_copy(clip, in, 30));
    bg_audio_encode_opts o = mp3_opts(0, 0);
    json_t *meta = NULL;
    bg_media_err e = {.code = ""};
    bg_err err = bg_media_audio_encode(in, out, &o, NULL, &meta, &e);
    if (err == BG_OK) {
        assert_true(num(meta, "duration") < 6.0);
        json_decref(meta);
    } else {
        assert_int_equal(err, BG_EMEDIA);
        assert_string_equal(e.code, "INVALID_INPUT");
        assert_no_output(out);
    }
    json_t *j = NULL;
    err = bg_media_probe(in, &j, &e);
    assert_true(err == BG_OK || err == BG_EMEDIA);
    json_decref(j);
}

/* A wav cut at 30% still holds 12 s of valid audio: that is what comes out. */
static void test_truncated_wav(void **state)
{
    (void)state;
    char in[160], out[160];
    path_in(in, sizeof(in), "truncated.wav");
    path_in(out, sizeof(out), "truncated-wav.mp3");
    assert_true(truncate_copy(wav, in, 30));
    bg_audio_encode_opts o = mp3_opts(0, 0);
    json_t *meta = NULL;
    bg_media_err e;
    assert_int_equal(bg_media_audio_encode(in, out, &o, NULL, &meta, &e), BG_OK);
    assert_true(fabs(num(meta, "duration") - 12.0) < 0.1);
    json_decref(meta);
}

typedef struct job {
    const char *in;
    char out[160];
    bg_err err;
    double duration;
} job;

static void *job_main(void *arg)
{
    job *jb = arg;
    bg_audio_encode_opts o = mp3_opts(2.0, 8.0);
    json_t *meta = NULL;
    bg_media_err e;
    jb->err = bg_media_audio_encode(jb->in, jb->out, &o, NULL, &meta, &e);
    if (jb->err == BG_OK)
        jb->duration = json_number_value(json_object_get(meta, "duration"));
    json_decref(meta);
    return NULL;
}

/* Two robots on two threads at once (the sanitizer build checks they share nothing). */
static void test_concurrent(void **state)
{
    (void)state;
    job jobs[2] = {{.in = wav}, {.in = clip}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        snprintf(jobs[i].out, sizeof(jobs[i].out), "%s/concurrent-%d.mp3", dir, i);
        assert_int_equal(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].err, BG_OK);
    }
    assert_true(fabs(jobs[0].duration - 8.0) < 0.1);
    assert_true(fabs(jobs[1].duration - 4.0) < 0.1); /* the clip has 6 s: 2..6 */
}

static void test_versions(void **state)
{
    (void)state;
    const char *v = bg_media_versions();
    assert_non_null(v);
    assert_int_equal(strncmp(v, "libavformat ", 12), 0);
    assert_non_null(strstr(v, "libavcodec "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_wav),
        cmocka_unit_test(test_probe_mp4),
        cmocka_unit_test(test_probe_named_pictures),
        cmocka_unit_test(test_probe_errors),
        cmocka_unit_test(test_probe_refuses_playlists),
        cmocka_unit_test(test_encode_window),
        cmocka_unit_test(test_encode_from_video),
        cmocka_unit_test(test_encode_mono_resampled),
        cmocka_unit_test(test_encode_past_end),
        cmocka_unit_test(test_cancel_at_start),
        cmocka_unit_test(test_cancel_during_io),
        cmocka_unit_test(test_cancel_mid_encode),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_output_dir_missing),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_truncated_mp4),
        cmocka_unit_test(test_truncated_wav),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
