/*
 * node/media/probe.c — bg_media_probe: what a file holds, as JSON; and
 * bg_media_meta_read: that plus the loudness of its audio.
 */
#include "media_internal.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include <libavcodec/avcodec.h>

/* Seconds and frame rates are given to the millisecond (and the
 * thousandth of a frame): more digits would only be noise from time bases. */
static json_t *real3(double x)
{
    if (!isfinite(x))
        x = 0.0;
    return json_real(round(x * 1000.0) / 1000.0);
}

static bool usable_audio(const AVCodecParameters *par)
{
    return par->codec_type == AVMEDIA_TYPE_AUDIO && par->codec_id != AV_CODEC_ID_NONE &&
           par->sample_rate > 0 && par->ch_layout.nb_channels > 0;
}

static bool usable_video(const AVCodecParameters *par)
{
    return par->codec_type == AVMEDIA_TYPE_VIDEO && par->codec_id != AV_CODEC_ID_NONE &&
           par->width > 0 && par->height > 0;
}

static double frame_rate(const AVStream *st)
{
    AVRational r = st->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0)
        r = st->r_frame_rate;
    return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0;
}

/* Container duration, else the longest stream's, else 0. */
static double duration_s(const AVFormatContext *ic)
{
    if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
        return (double)ic->duration / AV_TIME_BASE;
    double best = 0.0;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        const AVStream *st = ic->streams[i];
        if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
            double d = (double)st->duration * av_q2d(st->time_base);
            if (d > best)
                best = d;
        }
    }
    return best;
}

static void add_audio(json_t *s, const AVCodecParameters *par)
{
    /* A layout that gives only the count (a plain wav) is named by the usual
     * layout for that count, as the ffmpeg tool guesses it. */
    AVChannelLayout guess = {0};
    const AVChannelLayout *l = &par->ch_layout;
    if (l->order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(&guess, l->nb_channels);
        l = &guess;
    }
    char layout[128];
    if (av_channel_layout_describe(l, layout, sizeof(layout)) < 0)
        layout[0] = '\0';
    av_channel_layout_uninit(&guess);
    json_object_set_new(s, "sample_rate", json_integer(par->sample_rate));
    json_object_set_new(s, "channels", json_integer(par->ch_layout.nb_channels));
    json_object_set_new(s, "channel_layout", json_string(layout));
}

static void add_video(json_t *s, const AVStream *st)
{
    json_object_set_new(s, "width", json_integer(st->codecpar->width));
    json_object_set_new(s, "height", json_integer(st->codecpar->height));
    json_object_set_new(s, "frame_rate", real3(frame_rate(st)));
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
        json_object_set_new(s, "attached_pic", json_true());
}

static json_t *describe_stream(const AVStream *st)
{
    const AVCodecParameters *par = st->codecpar;
    const char *type = "other";
    if (par->codec_type == AVMEDIA_TYPE_AUDIO)
        type = "audio";
    else if (par->codec_type == AVMEDIA_TYPE_VIDEO)
        type = "video";
    json_t *s = json_object();
    json_object_set_new(s, "index", json_integer(st->index));
    json_object_set_new(s, "type", json_string(type));
    json_object_set_new(s, "codec", json_string(avcodec_get_name(par->codec_id)));
    json_object_set_new(s, "bit_rate", json_integer(par->bit_rate));
    if (par->codec_type == AVMEDIA_TYPE_AUDIO)
        add_audio(s, par);
    else if (par->codec_type == AVMEDIA_TYPE_VIDEO)
        add_video(s, st);
    return s;
}

/* Top-level copies of the first audio stream's and the first real video
 * stream's fields. Cover art is a picture, not video. */
static void add_summary(json_t *j, const AVFormatContext *ic)
{
    const AVStream *a = NULL, *v = NULL;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        const AVStream *st = ic->streams[i];
        if (a == NULL && usable_audio(st->codecpar))
            a = st;
        if (v == NULL && usable_video(st->codecpar) &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            v = st;
    }
    json_object_set_new(j, "has_audio", json_boolean(a != NULL));
    json_object_set_new(j, "has_video", json_boolean(v != NULL));
    if (a != NULL) {
        json_object_set_new(j, "sample_rate", json_integer(a->codecpar->sample_rate));
        json_object_set_new(j, "channels", json_integer(a->codecpar->ch_layout.nb_channels));
        json_object_set_new(j, "audio_codec", json_string(avcodec_get_name(a->codecpar->codec_id)));
    }
    if (v != NULL) {
        json_object_set_new(j, "width", json_integer(v->codecpar->width));
        json_object_set_new(j, "height", json_integer(v->codecpar->height));
        json_object_set_new(j, "frame_rate", real3(frame_rate(v)));
        json_object_set_new(j, "video_codec", json_string(avcodec_get_name(v->codecpar->codec_id)));
    }
}

static json_t *describe(const AVFormatContext *ic, int64_t size)
{
    json_t *j = json_object();
    json_object_set_new(j, "duration", real3(duration_s(ic)));
    json_object_set_new(j, "format", json_string(ic->iformat->name));
    json_object_set_new(j, "format_long",
                        json_string(ic->iformat->long_name ? ic->iformat->long_name : ""));
    json_object_set_new(j, "bit_rate", json_integer(ic->bit_rate > 0 ? ic->bit_rate : 0));
    json_object_set_new(j, "size", json_integer(size));
    json_t *streams = json_array();
    for (unsigned i = 0; i < ic->nb_streams; i++)
        json_array_append_new(streams, describe_stream(ic->streams[i]));
    json_object_set_new(j, "streams", streams);
    add_summary(j, ic);
    return j;
}

static bool has_usable_stream(const AVFormatContext *ic)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        if (usable_audio(ic->streams[i]->codecpar) || usable_video(ic->streams[i]->codecpar))
            return true;
    return false;
}

bg_err bg_media_probe(const char *path, json_t **out, bg_media_err *e)
{
    assert(path != NULL && out != NULL);
    media_init();
    media_input in;
    bg_err err = media_input_open(&in, path, NULL, e);
    if (err != BG_OK)
        return err;
    /* Stream info reads (and decodes) the first packets to fill what headers
     * leave out. Its failure is not fatal: what the header gave is checked below. */
    int ret = avformat_find_stream_info(in.ic, NULL);
    if (ret == AVERROR(ENOMEM)) {
        err = media_input_averr(ret, "stream info", e);
        goto done;
    }
    if (!has_usable_stream(in.ic)) {
        media_err(e, "INVALID_INPUT", "no audio or video stream found");
        err = BG_EMEDIA;
        goto done;
    }
    *out = describe(in.ic, in.size);
done:
    media_input_close(&in);
    return err;
}

bg_err bg_media_meta_read(const char *path, bool loudness, const bg_media_progress *p, json_t **out,
                          bg_media_err *e)
{
    assert(path != NULL && out != NULL);
    json_t *j = NULL;
    bg_err err = bg_media_probe(path, &j, e);
    if (err != BG_OK)
        return err;
    if (!loudness || !json_is_true(json_object_get(j, "has_audio"))) {
        *out = j;
        return BG_OK;
    }
    json_t *l = NULL;
    bg_media_err le = {.code = ""};
    err = bg_media_loudness(path, p, &l, &le);
    /* The probe read the file: audio that cannot be decoded or measured
     * (INVALID_INPUT, PROCESSING_ERROR) leaves the rest of the metadata
     * worth giving. */
    if (err == BG_EMEDIA) {
        l = json_null();
        err = BG_OK;
    }
    if (err != BG_OK) {
        if (e != NULL)
            *e = le;
        json_decref(j);
        return err;
    }
    json_object_set_new(j, "loudness", l);
    *out = j;
    return BG_OK;
}
