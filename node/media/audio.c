/*
 * node/media/audio.c — the encoder sink of the audio engine: samples from
 * the source (through the loudnorm pass when normalising) are converted by
 * an aconv to the encoder's format, cut into its frame size by an
 * AVAudioFifo, encoded and muxed into out.part, which becomes out only when
 * the whole run went well.
 *
 * The length is counted in output samples, so a duration gives exactly
 * duration × rate samples whatever the resampler's rounding.
 */
#include "audio_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/audio_fifo.h>
#include <libavutil/avstring.h>

#define VAR_FRAME_SAMPLES 4096 /* chunk for encoders without a fixed frame size */
#define DEFAULT_BITRATE 128000
#define DEFAULT_TRUE_PEAK                                                                          \
    (-1.0) /* dBTP ceiling of the normaliser unless asked (EBU R128, Apple, Spotify) */

/* Output formats: the encoder and muxer behind each name. rate: the rate
 * used when the input's is not taken by the encoder, or always (fixed) when
 * the caller gives none. m4a is the ipod flavour of the mov muxer, as the
 * ffmpeg tool picks for .m4a (brand "M4A "), with the index moved to the
 * front. */
typedef struct out_format {
    const char *name, *encoder, *muxer, *ext, *mime;
    int rate;
    bool fixed_rate;
    bool faststart;
} out_format;

static const out_format formats[] = {
    {"mp3", "libmp3lame", "mp3", "mp3", "audio/mpeg", 44100, false, false},
    {"aac", "aac", "ipod", "m4a", "audio/mp4", 48000, false, true},
    {"opus", "libopus", "ogg", "opus", "audio/ogg", 48000, true, false},
};

struct aenc {
    asink sink; /* first: the sink's callbacks get an aenc */
    const bg_audio_encode_opts *o;
    const out_format *fmt;
    bg_media_err *e;
    media_ctl *ctl;
    const AVCodec *codec;
    AVCodecContext *enc;
    AVFormatContext *oc;
    aconv conv; /* to the encoder's format, rate and layout */
    lnorm *norm;
    AVAudioFifo *fifo;
    AVPacket *opkt;
    AVFrame *eframe;
    int chunk;        /* samples per encoder frame */
    int64_t out_max;  /* output samples wanted */
    int64_t out_sent; /* samples given to the encoder */
    bool part_made, committed;
    char part[PATH_MAX + 8];
    char out[PATH_MAX];
};

/* ---- errors ---------------------------------------------------------- */

static bg_err out_err(aenc *a, int ret, const char *what)
{
    if (a->ctl->canceled || ret == AVERROR_EXIT)
        return audio_canceled(a->e);
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, a->e);
    media_err_av(a->e, "OUTPUT_ERROR", what, ret);
    return BG_EIO;
}

/* ---- options --------------------------------------------------------- */

static const out_format *find_format(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(name, formats[i].name) == 0)
            return &formats[i];
    return NULL;
}

bool bg_media_audio_format(const char *format, const char **ext, const char **mime)
{
    const out_format *f = find_format(format);
    if (f == NULL)
        return false;
    if (ext != NULL)
        *ext = f->ext;
    if (mime != NULL)
        *mime = f->mime;
    return true;
}

static bool seconds_ok(double s)
{
    return isfinite(s) && s >= 0.0 && s <= AUDIO_MAX_SECONDS;
}

static bool rate_supported(const AVCodec *c, int rate)
{
    if (c->supported_samplerates == NULL)
        return rate >= 8000 && rate <= 192000;
    for (const int *p = c->supported_samplerates; *p != 0; p++)
        if (*p == rate)
            return true;
    return false;
}

static bg_err check_norm(const bg_audio_encode_opts *o, bg_media_err *e)
{
    if (!o->normalize)
        return BG_OK;
    if (!isfinite(o->loudness_target) || o->loudness_target < -70.0 || o->loudness_target > -5.0)
        return audio_bad_opts(e, "loudness_target must be -70..-5 LUFS");
    if (!isfinite(o->true_peak_max) || o->true_peak_max < -9.0 || o->true_peak_max > 0.0)
        return audio_bad_opts(e, "true_peak_max must be -9..0 dBTP (0: -1)");
    return BG_OK;
}

bg_err aenc_check(const bg_audio_encode_opts *o, const char *out, bg_media_err *e)
{
    if (o == NULL || out == NULL)
        return audio_bad_opts(e, "input, output and options are required");
    const out_format *fmt = find_format(o->format);
    if (fmt == NULL)
        return audio_bad_opts(e, "format must be \"mp3\", \"aac\" or \"opus\"");
    if (o->bitrate != 0 && (o->bitrate < 8000 || o->bitrate > 320000))
        return audio_bad_opts(e, "bitrate must be 0 or 8000..320000");
    if (o->channels < 0 || o->channels > 2)
        return audio_bad_opts(e, "channels must be 0, 1 or 2");
    if (!seconds_ok(o->start_s) || !seconds_ok(o->duration_s))
        return audio_bad_opts(e, "start and duration must be seconds >= 0");
    if (strlen(out) >= PATH_MAX)
        return audio_bad_opts(e, "output path too long");
    bg_err err = check_norm(o, e);
    if (err != BG_OK)
        return err;
    const AVCodec *codec = avcodec_find_encoder_by_name(fmt->encoder);
    if (codec == NULL) {
        media_err(e, "PROCESSING_ERROR", "encoder %s is not available", fmt->encoder);
        return BG_EMEDIA;
    }
    if (o->sample_rate != 0 && !rate_supported(codec, o->sample_rate))
        return audio_bad_opts(e, "sample_rate is not supported by the encoder");
    return BG_OK;
}

/* ---- encoder and muxer ------------------------------------------------ */

static bool takes_fmt(const AVCodec *c, enum AVSampleFormat f)
{
    if (f == AV_SAMPLE_FMT_NONE)
        return false;
    if (c->sample_fmts == NULL)
        return true;
    for (const enum AVSampleFormat *p = c->sample_fmts; *p != AV_SAMPLE_FMT_NONE; p++)
        if (*p == f)
            return true;
    return false;
}

/* The source's format when the encoder takes it (no conversion), else its
 * planar or packed twin, else float planar, float, the encoder's first. */
static enum AVSampleFormat pick_sample_fmt(const AVCodec *c, enum AVSampleFormat in)
{
    enum AVSampleFormat want[] = {in, av_get_planar_sample_fmt(in), av_get_packed_sample_fmt(in),
                                  AV_SAMPLE_FMT_FLTP, AV_SAMPLE_FMT_FLT};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (takes_fmt(c, want[i]))
            return want[i];
    return c->sample_fmts[0];
}

static int pick_rate(const aenc *a, int in_rate)
{
    if (a->o->sample_rate != 0)
        return a->o->sample_rate;
    if (!a->fmt->fixed_rate && rate_supported(a->codec, in_rate))
        return in_rate;
    return a->fmt->rate;
}

static bg_err open_encoder(aenc *a, const AVCodecContext *dec)
{
    a->enc = avcodec_alloc_context3(a->codec);
    if (a->enc == NULL)
        return audio_proc_err(a->e, AVERROR(ENOMEM), "encoder");
    AVCodecContext *enc = a->enc;
    int rate = pick_rate(a, dec->sample_rate);
    enc->sample_rate = rate;
    enc->time_base = (AVRational){1, rate};
    /* loudnorm gives doubles */
    enc->sample_fmt =
        pick_sample_fmt(a->codec, a->o->normalize ? AV_SAMPLE_FMT_DBL : dec->sample_fmt);
    enc->bit_rate = a->o->bitrate != 0 ? a->o->bitrate : DEFAULT_BITRATE;
    enc->thread_count = 1;
    int ch = a->o->channels;
    if (ch == 0)
        ch = dec->ch_layout.nb_channels >= 2 ? 2 : 1;
    av_channel_layout_default(&enc->ch_layout, ch);
    if (a->oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret = avcodec_open2(enc, a->codec, NULL);
    if (ret < 0)
        return audio_proc_err(a->e, ret, "opening the encoder");
    bool variable =
        (a->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) || enc->frame_size <= 0;
    a->chunk = variable ? VAR_FRAME_SAMPLES : enc->frame_size;
    a->out_max = INT64_MAX;
    if (a->o->duration_s > 0) {
        int64_t n = llround(a->o->duration_s * rate);
        a->out_max = n > 0 ? n : 1;
    }
    return BG_OK;
}

static bg_err alloc_buffers(aenc *a)
{
    AVCodecContext *enc = a->enc;
    a->fifo = av_audio_fifo_alloc(enc->sample_fmt, enc->ch_layout.nb_channels, 2 * a->chunk);
    a->opkt = av_packet_alloc();
    a->eframe = av_frame_alloc();
    if (!a->fifo || !a->opkt || !a->eframe)
        return audio_proc_err(a->e, AVERROR(ENOMEM), "buffers");
    a->eframe->nb_samples = a->chunk;
    a->eframe->format = enc->sample_fmt;
    a->eframe->sample_rate = enc->sample_rate;
    int ret = av_channel_layout_copy(&a->eframe->ch_layout, &enc->ch_layout);
    if (ret >= 0)
        ret = av_frame_get_buffer(a->eframe, 0);
    return ret < 0 ? audio_proc_err(a->e, ret, "buffers") : BG_OK;
}

/* The muxer knows its file by URL: mov's faststart reopens it to move the
 * index, through the same "file"-only whitelist. */
static bg_err open_output(aenc *a)
{
    int ret = avformat_alloc_output_context2(&a->oc, NULL, a->fmt->muxer, NULL);
    if (ret < 0)
        return audio_proc_err(a->e, ret, "muxer");
    a->oc->interrupt_callback = (AVIOInterruptCB){media_interrupt_cb, a->ctl};
    av_freep(&a->oc->url);
    a->oc->url = av_asprintf("file:%s", a->part);
    a->oc->protocol_whitelist = av_strdup("file");
    if (a->oc->url == NULL || a->oc->protocol_whitelist == NULL)
        return audio_proc_err(a->e, AVERROR(ENOMEM), "muxer");
    return BG_OK;
}

/* Creates out.part and writes the header; the encoder must be open. */
static bg_err start_output(aenc *a)
{
    AVStream *ost = avformat_new_stream(a->oc, NULL);
    if (ost == NULL)
        return audio_proc_err(a->e, AVERROR(ENOMEM), "muxer");
    int ret = avcodec_parameters_from_context(ost->codecpar, a->enc);
    if (ret < 0)
        return audio_proc_err(a->e, ret, "muxer");
    ost->time_base = a->enc->time_base;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    ret = avio_open2(&a->oc->pb, a->oc->url, AVIO_FLAG_WRITE, &a->oc->interrupt_callback, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return out_err(a, ret, "output cannot be created");
    a->part_made = true;
    if (a->fmt->faststart)
        av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(a->oc, &opts);
    av_dict_free(&opts);
    return ret < 0 ? out_err(a, ret, "writing the output") : BG_OK;
}

/* ---- encoding ---------------------------------------------------------- */

static bg_err encode(aenc *a, const AVFrame *frame)
{
    int ret = avcodec_send_frame(a->enc, frame);
    if (ret < 0)
        return audio_proc_err(a->e, ret, "encoding");
    AVRational otb = a->oc->streams[0]->time_base;
    for (;;) {
        ret = avcodec_receive_packet(a->enc, a->opkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return BG_OK;
        if (ret < 0)
            return audio_proc_err(a->e, ret, "encoding");
        a->opkt->stream_index = 0;
        av_packet_rescale_ts(a->opkt, a->enc->time_base, otb);
        ret = av_write_frame(a->oc, a->opkt);
        av_packet_unref(a->opkt);
        if (ret < 0)
            return out_err(a, ret, "writing the output");
    }
}

/* Gives the encoder n samples from the fifo. A short frame is only ever the
 * last one; encoders that cannot take it get silence after the samples. */
static bg_err send_chunk(aenc *a, int n)
{
    AVFrame *f = a->eframe;
    f->nb_samples = a->chunk;
    int ret = av_frame_make_writable(f); /* the encoder may still hold the last one */
    if (ret < 0)
        return audio_proc_err(a->e, ret, "encoder frame");
    if (av_audio_fifo_read(a->fifo, (void **)f->data, n) < n)
        return audio_proc_err(a->e, AVERROR_BUG, "audio fifo");
    int caps = a->codec->capabilities;
    bool short_ok = caps & (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE);
    if (n < a->chunk && !short_ok)
        av_samples_set_silence(f->data, n, a->chunk - n, f->ch_layout.nb_channels,
                               (enum AVSampleFormat)f->format);
    else
        f->nb_samples = n;
    f->pts = a->out_sent;
    a->out_sent += n;
    return encode(a, f);
}

/* Feeds the encoder whole frames while the fifo has them; with flush, also
 * the rest. Stops for good once out_max samples went out. */
static bg_err fifo_to_encoder(aenc *a, bool flush)
{
    while (!a->sink.full) {
        int avail = av_audio_fifo_size(a->fifo);
        if (avail == 0 || (avail < a->chunk && !flush))
            break;
        int n = avail < a->chunk ? avail : a->chunk;
        if ((int64_t)n > a->out_max - a->out_sent)
            n = (int)(a->out_max - a->out_sent);
        bg_err err = send_chunk(a, n);
        if (err != BG_OK)
            return err;
        if (a->out_sent >= a->out_max)
            a->sink.full = true;
    }
    return BG_OK;
}

static bg_err to_fifo(void *ud, uint8_t *const *data, int n)
{
    aenc *a = ud;
    if (a->sink.full)
        return BG_OK;
    if (av_audio_fifo_write(a->fifo, (void **)data, n) < n)
        return audio_proc_err(a->e, AVERROR(ENOMEM), "audio fifo");
    return fifo_to_encoder(a, false);
}

static bg_err from_norm(void *ud, const AVFrame *f)
{
    aenc *a = ud;
    return a->sink.full ? BG_OK : aconv_feed(&a->conv, f, 0, f->nb_samples);
}

static bg_err sink_feed(asink *s, const AVFrame *f, int off, int n)
{
    aenc *a = (aenc *)s;
    if (a->norm != NULL)
        return lnorm_feed(a->norm, f, off, n);
    return aconv_feed(&a->conv, f, off, n);
}

static bg_err sink_finish(asink *s)
{
    aenc *a = (aenc *)s;
    bg_err err = BG_OK;
    if (a->norm != NULL)
        err = lnorm_flush(a->norm);
    if (err == BG_OK && !a->sink.full)
        err = aconv_flush(&a->conv);
    if (err == BG_OK)
        err = fifo_to_encoder(a, true);
    if (err != BG_OK)
        return err;
    if (a->out_sent == 0) {
        media_err(a->e, "INVALID_INPUT", "no audio could be decoded");
        return BG_EMEDIA;
    }
    err = encode(a, NULL);
    if (err != BG_OK)
        return err;
    int ret = av_write_trailer(a->oc);
    if (ret < 0)
        return out_err(a, ret, "writing the output");
    ret = avio_closep(&a->oc->pb);
    return ret < 0 ? out_err(a, ret, "writing the output") : BG_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static bg_err setup(aenc *a, const asrc *src, const loudness_vals *measured)
{
    bg_err err = open_output(a);
    if (err == BG_OK)
        err = open_encoder(a, src->dec);
    if (err == BG_OK)
        err = alloc_buffers(a);
    if (err == BG_OK)
        err = aconv_init(&a->conv, a->enc->sample_fmt, a->enc->sample_rate, &a->enc->ch_layout,
                         to_fifo, a, a->e);
    if (err == BG_OK && a->o->normalize && measured != NULL) {
        double tp = a->o->true_peak_max != 0 ? a->o->true_peak_max : DEFAULT_TRUE_PEAK;
        err = lnorm_create(&a->norm, measured, a->o->loudness_target, tp, from_norm, a, a->e);
    }
    if (err == BG_OK)
        err = start_output(a);
    return err;
}

bg_err aenc_create(aenc **out, const asrc *src, const char *path, const bg_audio_encode_opts *o,
                   const loudness_vals *measured, media_ctl *ctl, bg_media_err *e)
{
    aenc *a = av_mallocz(sizeof(*a));
    if (a == NULL)
        return audio_proc_err(e, AVERROR(ENOMEM), "encoder");
    a->sink.feed = sink_feed;
    a->sink.finish = sink_finish;
    a->sink.start_s = o->start_s;
    a->sink.duration_s = o->duration_s;
    a->o = o;
    a->fmt = find_format(o->format);
    a->codec = avcodec_find_encoder_by_name(a->fmt->encoder);
    a->e = e;
    a->ctl = ctl;
    snprintf(a->out, sizeof(a->out), "%s", path);
    snprintf(a->part, sizeof(a->part), "%s.part", path);
    bg_err err = setup(a, src, measured);
    if (err != BG_OK) {
        aenc_destroy(a, false);
        return err;
    }
    *out = a;
    return BG_OK;
}

asink *aenc_sink(aenc *a)
{
    return &a->sink;
}

/* {"duration","bit_rate","sample_rate","channels","codec","format"} of the
 * written file, as a probe of it sees them, and the loudness pass's figures. */
bg_err aenc_describe(aenc *a, json_t **meta_out)
{
    json_t *p = NULL;
    bg_media_err pe;
    if (bg_media_probe(a->part, &p, &pe) != BG_OK) {
        media_err(a->e, "PROCESSING_ERROR", "the encoded output cannot be read back: %s",
                  pe.message);
        return BG_EMEDIA;
    }
    json_t *s0 = json_array_get(json_object_get(p, "streams"), 0);
    json_t *br = json_object_get(s0, "bit_rate");
    if (json_integer_value(br) <= 0)
        br = json_object_get(p, "bit_rate");
    json_t *m = json_object();
    json_object_set(m, "duration", json_object_get(p, "duration"));
    json_object_set(m, "bit_rate", br);
    json_object_set(m, "sample_rate", json_object_get(p, "sample_rate"));
    json_object_set(m, "channels", json_object_get(p, "channels"));
    json_object_set(m, "codec", json_object_get(p, "audio_codec"));
    json_object_set(m, "format", json_object_get(p, "format"));
    if (a->norm != NULL)
        json_object_set_new(m, "loudness", lnorm_json(a->norm));
    json_decref(p);
    *meta_out = m;
    return BG_OK;
}

bg_err aenc_commit(aenc *a)
{
    if (rename(a->part, a->out) != 0) {
        media_err(a->e, "OUTPUT_ERROR", "output cannot be renamed into place: %s", strerror(errno));
        return BG_EIO;
    }
    a->committed = true;
    return BG_OK;
}

void aenc_destroy(aenc *a, bool keep)
{
    if (a == NULL)
        return;
    if (a->oc != NULL) {
        avio_closep(&a->oc->pb);
        avformat_free_context(a->oc);
    }
    if (!keep && a->committed)
        unlink(a->out);
    else if (!keep && a->part_made)
        unlink(a->part);
    avcodec_free_context(&a->enc);
    aconv_fini(&a->conv);
    lnorm_destroy(a->norm);
    av_audio_fifo_free(a->fifo);
    av_packet_free(&a->opkt);
    av_frame_free(&a->eframe);
    av_free(a);
}
