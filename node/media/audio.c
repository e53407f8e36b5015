/*
 * node/media/audio.c — bg_media_audio_encode: the first audio stream of a
 * file, decoded, resampled by libswresample, cut into the encoder's frame
 * size by an AVAudioFifo, encoded and muxed into out.part, which becomes out
 * only when everything went well.
 *
 * Time cuts: start_s seeks on the input side (to the nearest earlier point)
 * and then drops decoded samples before start_s, in the input's sample rate,
 * so the cut is exact whatever the container's seek granularity; duration_s
 * is counted in output samples.
 */
#include "media_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/avstring.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#define MAX_IN_CHANNELS 64     /* more is not an audio file we take */
#define MAX_OPT_SECONDS 1e7    /* bounds start_s and duration_s: sample counts fit int64 */
#define VAR_FRAME_SAMPLES 4096 /* chunk for encoders without a fixed frame size */
#define MIN_CVT_SAMPLES 4096   /* first size of the resampler's output buffer */
#define DEFAULT_BITRATE 128000
#define FALLBACK_RATE 44100

/* Output formats: the encoder and the muxer behind each name. */
typedef struct out_format {
    const char *name, *encoder, *muxer;
} out_format;

static const out_format formats[] = {
    {"mp3", "libmp3lame", "mp3"},
};

typedef struct run {
    const bg_audio_encode_opts *o;
    const out_format *fmt;
    bg_media_err *e;
    media_ctl ctl;
    media_input in;
    AVStream *ist;
    AVCodecContext *dec;
    const AVCodec *codec; /* the encoder */
    AVCodecContext *enc;
    AVFormatContext *oc;
    SwrContext *swr;
    AVChannelLayout swr_layout; /* input side the resampler was set up for */
    int swr_rate, swr_fmt;
    AVAudioFifo *fifo;
    uint8_t **cvt; /* resampler output: cvt_cap samples per channel */
    int cvt_cap;
    AVPacket *ipkt, *opkt;
    AVFrame *dframe, *eframe;
    int chunk;        /* samples per encoder frame */
    double t0;        /* first wanted instant on the input stream's timeline, seconds */
    double next_s;    /* where the next decoded frame starts when it carries no pts */
    double target_s;  /* expected output length, for progress; <= 0 when unknown */
    double avail_s;   /* input audio after start_s, from its duration; NAN when unknown */
    int64_t out_max;  /* output samples wanted */
    int64_t out_sent; /* samples given to the encoder */
    bool decoded;     /* some frame was decoded */
    bool full;        /* out_max reached: read no more */
    bool part_made;
    char part[PATH_MAX + 8];
} run;

/* ---- errors ---------------------------------------------------------- */

static bg_err canceled(run *r)
{
    media_err(r->e, "CANCELED", "canceled");
    return BG_EBUSY;
}

static bg_err bad_opts(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_OPTIONS", "%s", msg);
    return BG_EINVAL;
}

/* An error while reading or decoding the input. A cancel can surface as
 * any error from a demuxer whose read was interrupted, hence the flag. */
static bg_err in_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return canceled(r);
    return media_input_averr(ret, what, r->e);
}

static bg_err proc_err(run *r, int ret, const char *what)
{
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, r->e);
    media_err_av(r->e, "PROCESSING_ERROR", what, ret);
    return BG_EMEDIA;
}

static bg_err out_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled || ret == AVERROR_EXIT)
        return canceled(r);
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, r->e);
    media_err_av(r->e, "OUTPUT_ERROR", what, ret);
    return BG_EIO;
}

/* ---- options --------------------------------------------------------- */

static bool seconds_ok(double s)
{
    return isfinite(s) && s >= 0.0 && s <= MAX_OPT_SECONDS;
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

static bg_err check_opts(run *r, const char *in, const char *out)
{
    const bg_audio_encode_opts *o = r->o;
    if (o == NULL || in == NULL || out == NULL)
        return bad_opts(r->e, "input, output and options are required");
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (o->format != NULL && strcmp(o->format, formats[i].name) == 0)
            r->fmt = &formats[i];
    if (r->fmt == NULL)
        return bad_opts(r->e, "format must be \"mp3\"");
    if (o->bitrate != 0 && (o->bitrate < 8000 || o->bitrate > 320000))
        return bad_opts(r->e, "bitrate must be 0 or 8000..320000");
    if (o->channels < 0 || o->channels > 2)
        return bad_opts(r->e, "channels must be 0, 1 or 2");
    if (!seconds_ok(o->start_s) || !seconds_ok(o->duration_s))
        return bad_opts(r->e, "start and duration must be seconds >= 0");
    if (snprintf(r->part, sizeof(r->part), "%s.part", out) >= (int)sizeof(r->part))
        return bad_opts(r->e, "output path too long");
    r->codec = avcodec_find_encoder_by_name(r->fmt->encoder);
    if (r->codec == NULL) {
        media_err(r->e, "PROCESSING_ERROR", "encoder %s is not available", r->fmt->encoder);
        return BG_EMEDIA;
    }
    if (o->sample_rate != 0 && !rate_supported(r->codec, o->sample_rate))
        return bad_opts(r->e, "sample_rate is not supported by the encoder");
    return BG_OK;
}

/* ---- input side ------------------------------------------------------ */

static AVStream *first_audio(AVFormatContext *ic)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        if (ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            return ic->streams[i];
    return NULL;
}

static void discard_others(AVFormatContext *ic, const AVStream *keep)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        ic->streams[i]->discard = ic->streams[i] == keep ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

/* Stream info is always read, as the ffmpeg tool does: besides filling what
 * headers leave out, it completes the codec probing some demuxers ask for
 * (wav's pcm_s16le may be spdif), which a seek would otherwise restart over
 * 2500 packets (twice the encode time of a wav). Streams other than the
 * first audio one are discarded first, so no video is decoded for it. */
static bg_err select_stream(run *r)
{
    AVFormatContext *ic = r->in.ic;
    AVStream *st = first_audio(ic);
    if (st != NULL)
        discard_others(ic, st);
    int ret = avformat_find_stream_info(ic, NULL);
    if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || r->ctl.canceled)
        return in_err(r, ret, "stream info");
    st = first_audio(ic); /* headerless containers add streams while reading */
    if (st == NULL || st->codecpar->codec_id == AV_CODEC_ID_NONE) {
        media_err(r->e, "INVALID_INPUT", "no audio stream");
        return BG_EMEDIA;
    }
    discard_others(ic, st);
    r->ist = st;
    return BG_OK;
}

static bg_err open_decoder(run *r)
{
    const AVCodecParameters *par = r->ist->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL) {
        media_err(r->e, "INVALID_INPUT", "no decoder for audio codec %s",
                  avcodec_get_name(par->codec_id));
        return BG_EMEDIA;
    }
    if (par->ch_layout.nb_channels > MAX_IN_CHANNELS) {
        media_err(r->e, "INVALID_INPUT", "too many audio channels");
        return BG_EMEDIA;
    }
    r->dec = avcodec_alloc_context3(codec);
    if (r->dec == NULL)
        return proc_err(r, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(r->dec, par);
    if (ret < 0)
        return proc_err(r, ret, "decoder");
    r->dec->pkt_timebase = r->ist->time_base;
    r->dec->thread_count = 1; /* no threads of our own; audio decoders barely use them */
    ret = avcodec_open2(r->dec, codec, NULL);
    if (ret < 0)
        return in_err(r, ret, "audio decoder");
    return BG_OK;
}

/* Where the cut starts, and the expected output length for progress. With
 * start_s 0 nothing is dropped, whatever timestamps the first frames carry. */
static void plan_times(run *r)
{
    const AVStream *st = r->ist;
    const AVFormatContext *ic = r->in.ic;
    double origin = st->start_time != AV_NOPTS_VALUE ? st->start_time * av_q2d(st->time_base) : 0;
    double dur = -1.0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        dur = st->duration * av_q2d(st->time_base);
    else if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
        dur = (double)ic->duration / AV_TIME_BASE;
    r->t0 = r->o->start_s > 0 ? origin + r->o->start_s : -INFINITY;
    r->next_s = origin + r->o->start_s;
    double avail = dur > 0 ? dur - r->o->start_s : -1.0;
    r->avail_s = dur > 0 ? avail : NAN;
    r->target_s = avail;
    if (r->o->duration_s > 0 && (avail <= 0 || r->o->duration_s < avail))
        r->target_s = r->o->duration_s;
}

/* Seeks to the nearest point at or before t0. A failed seek is not fatal:
 * decoding from where we are and dropping samples still cuts exactly. */
static bg_err seek_start(run *r)
{
    if (r->o->start_s <= 0)
        return BG_OK;
    AVRational tb = r->ist->time_base;
    int64_t ts = av_rescale_q(llround(r->t0 * AV_TIME_BASE), AV_TIME_BASE_Q, tb);
    int ret = avformat_seek_file(r->in.ic, r->ist->index, INT64_MIN, ts, ts, 0);
    if (ret == AVERROR_EXIT || r->ctl.canceled)
        return in_err(r, ret, "seek");
    return BG_OK;
}

/* ---- output side ----------------------------------------------------- */

/* The planar form of the decoder's format when the encoder takes it (no
 * conversion), else float planar, else the encoder's first choice. */
static enum AVSampleFormat pick_sample_fmt(const AVCodec *c, enum AVSampleFormat in)
{
    enum AVSampleFormat want = av_get_planar_sample_fmt(in);
    if (c->sample_fmts == NULL)
        return want != AV_SAMPLE_FMT_NONE ? want : AV_SAMPLE_FMT_FLTP;
    for (const enum AVSampleFormat *p = c->sample_fmts; *p != AV_SAMPLE_FMT_NONE; p++)
        if (*p == want)
            return want;
    for (const enum AVSampleFormat *p = c->sample_fmts; *p != AV_SAMPLE_FMT_NONE; p++)
        if (*p == AV_SAMPLE_FMT_FLTP)
            return AV_SAMPLE_FMT_FLTP;
    return c->sample_fmts[0];
}

static void pick_layout(run *r)
{
    int ch = r->o->channels;
    if (ch == 0)
        ch = r->dec->ch_layout.nb_channels >= 2 ? 2 : 1;
    av_channel_layout_default(&r->enc->ch_layout, ch);
}

static bg_err open_encoder(run *r)
{
    r->enc = avcodec_alloc_context3(r->codec);
    if (r->enc == NULL)
        return proc_err(r, AVERROR(ENOMEM), "encoder");
    AVCodecContext *enc = r->enc;
    int rate = r->o->sample_rate;
    if (rate == 0)
        rate = rate_supported(r->codec, r->dec->sample_rate) ? r->dec->sample_rate : FALLBACK_RATE;
    enc->sample_rate = rate;
    enc->time_base = (AVRational){1, rate};
    enc->sample_fmt = pick_sample_fmt(r->codec, r->dec->sample_fmt);
    enc->bit_rate = r->o->bitrate != 0 ? r->o->bitrate : DEFAULT_BITRATE;
    enc->thread_count = 1;
    pick_layout(r);
    if (r->oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret = avcodec_open2(enc, r->codec, NULL);
    if (ret < 0)
        return proc_err(r, ret, "opening the encoder");
    bool variable =
        (r->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) || enc->frame_size <= 0;
    r->chunk = variable ? VAR_FRAME_SAMPLES : enc->frame_size;
    r->out_max = INT64_MAX;
    if (r->o->duration_s > 0)
        r->out_max = llround(r->o->duration_s * rate) > 0 ? llround(r->o->duration_s * rate) : 1;
    return BG_OK;
}

static bg_err alloc_buffers(run *r)
{
    AVCodecContext *enc = r->enc;
    r->fifo = av_audio_fifo_alloc(enc->sample_fmt, enc->ch_layout.nb_channels, 2 * r->chunk);
    r->ipkt = av_packet_alloc();
    r->opkt = av_packet_alloc();
    r->dframe = av_frame_alloc();
    r->eframe = av_frame_alloc();
    if (!r->fifo || !r->ipkt || !r->opkt || !r->dframe || !r->eframe)
        return proc_err(r, AVERROR(ENOMEM), "buffers");
    r->eframe->nb_samples = r->chunk;
    r->eframe->format = enc->sample_fmt;
    r->eframe->sample_rate = enc->sample_rate;
    int ret = av_channel_layout_copy(&r->eframe->ch_layout, &enc->ch_layout);
    if (ret >= 0)
        ret = av_frame_get_buffer(r->eframe, 0);
    return ret < 0 ? proc_err(r, ret, "buffers") : BG_OK;
}

static bg_err open_output(run *r)
{
    int ret = avformat_alloc_output_context2(&r->oc, NULL, r->fmt->muxer, NULL);
    if (ret < 0)
        return proc_err(r, ret, "muxer");
    r->oc->interrupt_callback = (AVIOInterruptCB){media_interrupt_cb, &r->ctl};
    return BG_OK;
}

/* Creates out.part and writes the header; the encoder must be open. */
static bg_err start_output(run *r)
{
    AVStream *ost = avformat_new_stream(r->oc, NULL);
    if (ost == NULL)
        return proc_err(r, AVERROR(ENOMEM), "muxer");
    int ret = avcodec_parameters_from_context(ost->codecpar, r->enc);
    if (ret < 0)
        return proc_err(r, ret, "muxer");
    ost->time_base = r->enc->time_base;
    char *url = av_asprintf("file:%s", r->part);
    if (url == NULL)
        return proc_err(r, AVERROR(ENOMEM), "muxer");
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    ret = avio_open2(&r->oc->pb, url, AVIO_FLAG_WRITE, &r->oc->interrupt_callback, &opts);
    av_dict_free(&opts);
    av_free(url);
    if (ret < 0)
        return out_err(r, ret, "output cannot be created");
    r->part_made = true;
    ret = avformat_write_header(r->oc, NULL);
    return ret < 0 ? out_err(r, ret, "writing the output") : BG_OK;
}

/* ---- the pipeline ---------------------------------------------------- */

static bg_err encode(run *r, const AVFrame *frame)
{
    int ret = avcodec_send_frame(r->enc, frame);
    if (ret < 0)
        return proc_err(r, ret, "encoding");
    AVRational otb = r->oc->streams[0]->time_base;
    for (;;) {
        ret = avcodec_receive_packet(r->enc, r->opkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return BG_OK;
        if (ret < 0)
            return proc_err(r, ret, "encoding");
        r->opkt->stream_index = 0;
        av_packet_rescale_ts(r->opkt, r->enc->time_base, otb);
        ret = av_write_frame(r->oc, r->opkt);
        av_packet_unref(r->opkt);
        if (ret < 0)
            return out_err(r, ret, "writing the output");
    }
}

/* Gives the encoder n samples from the fifo. A short frame is only ever the
 * last one; encoders that cannot take it get silence after the samples. */
static bg_err send_chunk(run *r, int n)
{
    AVFrame *f = r->eframe;
    f->nb_samples = r->chunk;
    int ret = av_frame_make_writable(f); /* the encoder may still hold the last one */
    if (ret < 0)
        return proc_err(r, ret, "encoder frame");
    if (av_audio_fifo_read(r->fifo, (void **)f->data, n) < n)
        return proc_err(r, AVERROR_BUG, "audio fifo");
    int caps = r->codec->capabilities;
    bool short_ok = caps & (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE);
    if (n < r->chunk && !short_ok)
        av_samples_set_silence(f->data, n, r->chunk - n, f->ch_layout.nb_channels,
                               (enum AVSampleFormat)f->format);
    else
        f->nb_samples = n;
    f->pts = r->out_sent;
    r->out_sent += n;
    return encode(r, f);
}

/* Feeds the encoder whole frames while the fifo has them; with flush, also
 * the rest. Stops for good once out_max samples went out. */
static bg_err fifo_to_encoder(run *r, bool flush)
{
    while (!r->full) {
        int avail = av_audio_fifo_size(r->fifo);
        if (avail == 0 || (avail < r->chunk && !flush))
            break;
        int n = avail < r->chunk ? avail : r->chunk;
        if ((int64_t)n > r->out_max - r->out_sent)
            n = (int)(r->out_max - r->out_sent);
        bg_err err = send_chunk(r, n);
        if (err != BG_OK)
            return err;
        if (r->out_sent >= r->out_max)
            r->full = true;
    }
    return BG_OK;
}

/* Resamples n input samples (src NULL: what the resampler still holds)
 * into the fifo; *got = samples produced. */
static bg_err convert(run *r, const uint8_t **src, int n, int *got)
{
    int need = swr_get_out_samples(r->swr, n);
    if (need < 0)
        return proc_err(r, need, "resampling");
    if (need > r->cvt_cap) {
        int cap = need > MIN_CVT_SAMPLES ? need : MIN_CVT_SAMPLES;
        if (r->cvt != NULL)
            av_freep(&r->cvt[0]);
        av_freep(&r->cvt);
        r->cvt_cap = 0;
        int ret = av_samples_alloc_array_and_samples(&r->cvt, NULL, r->enc->ch_layout.nb_channels,
                                                     cap, r->enc->sample_fmt, 0);
        if (ret < 0)
            return proc_err(r, ret, "resampling");
        r->cvt_cap = cap;
    }
    *got = swr_convert(r->swr, r->cvt, r->cvt_cap, src, n);
    if (*got < 0)
        return proc_err(r, *got, "resampling");
    if (*got > 0 && av_audio_fifo_write(r->fifo, (void **)r->cvt, *got) < *got)
        return proc_err(r, AVERROR(ENOMEM), "audio fifo");
    return fifo_to_encoder(r, false);
}

static bg_err drain_swr(run *r)
{
    int got = 1;
    while (r->swr != NULL && got > 0 && !r->full) {
        bg_err err = convert(r, NULL, 0, &got);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

/* (Re)creates the resampler when the decoded format, rate or layout is new.
 * What the old one still held goes out first. */
static bg_err setup_swr(run *r, const AVFrame *f)
{
    /* A layout of unknown order tells only the count: take the usual one. */
    AVChannelLayout in = {0};
    int ret = 0;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in, f->ch_layout.nb_channels);
    else
        ret = av_channel_layout_copy(&in, &f->ch_layout);
    if (ret < 0)
        return proc_err(r, ret, "resampling");
    if (r->swr != NULL && r->swr_rate == f->sample_rate && r->swr_fmt == f->format &&
        av_channel_layout_compare(&r->swr_layout, &in) == 0) {
        av_channel_layout_uninit(&in);
        return BG_OK;
    }
    bg_err err = drain_swr(r);
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->swr_layout);
    r->swr_layout = in; /* owned by r from here */
    if (err != BG_OK)
        return err;
    r->swr_rate = f->sample_rate;
    r->swr_fmt = f->format;
    ret = swr_alloc_set_opts2(&r->swr, &r->enc->ch_layout, r->enc->sample_fmt, r->enc->sample_rate,
                              &in, f->format, f->sample_rate, 0, NULL);
    if (ret >= 0)
        ret = swr_init(r->swr);
    return ret < 0 ? proc_err(r, ret, "resampler setup") : BG_OK;
}

/* Drops the samples before t0, then resamples the rest. */
static bg_err on_frame(run *r, const AVFrame *f)
{
    int n = f->nb_samples, rate = f->sample_rate, ch = f->ch_layout.nb_channels;
    if (n <= 0 || rate <= 0 || ch <= 0 || ch > MAX_IN_CHANNELS || f->format < 0)
        return BG_OK;
    double start = r->next_s;
    if (f->best_effort_timestamp != AV_NOPTS_VALUE)
        start = f->best_effort_timestamp * av_q2d(r->ist->time_base);
    r->next_s = start + (double)n / rate;
    int skip = 0;
    if (start < r->t0) {
        double k = (r->t0 - start) * rate;
        if (k >= n)
            return BG_OK;
        skip = (int)llround(k);
        if (skip >= n)
            return BG_OK;
    }
    bg_err err = setup_swr(r, f);
    if (err != BG_OK)
        return err;
    const uint8_t *ptrs[MAX_IN_CHANNELS];
    const uint8_t **src = (const uint8_t **)f->extended_data;
    if (skip > 0) {
        bool planar = av_sample_fmt_is_planar(f->format);
        size_t off = (size_t)skip * av_get_bytes_per_sample(f->format) * (planar ? 1 : ch);
        for (int c = 0; c < (planar ? ch : 1); c++)
            ptrs[c] = f->extended_data[c] + off;
        src = ptrs;
    }
    int got;
    return convert(r, src, n - skip, &got);
}

/* Sends one packet (NULL: drain) and handles every frame it yields. A
 * packet or frame the decoder rejects is skipped, as the ffmpeg tool does:
 * one bad packet must not lose a whole upload. */
static bg_err decode(run *r, const AVPacket *pkt)
{
    int ret = avcodec_send_packet(r->dec, pkt);
    if (ret == AVERROR(ENOMEM))
        return in_err(r, ret, "decoding");
    if (ret < 0)
        return BG_OK;
    while (!r->full) {
        ret = avcodec_receive_frame(r->dec, r->dframe);
        if (ret == AVERROR(ENOMEM))
            return in_err(r, ret, "decoding");
        if (ret < 0) /* EAGAIN, EOF, or a corrupt frame */
            return BG_OK;
        r->decoded = true;
        bg_err err = on_frame(r, r->dframe);
        av_frame_unref(r->dframe);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

static double fraction(const run *r)
{
    if (r->target_s > 0)
        return (double)r->out_sent / (r->target_s * r->enc->sample_rate);
    int64_t pos = avio_tell(r->in.pb);
    return r->in.size > 0 && pos > 0 ? (double)pos / (double)r->in.size : 0.0;
}

static bg_err pump(run *r)
{
    while (!r->full) {
        if (!media_ctl_tick(&r->ctl, fraction(r)))
            return canceled(r);
        int ret = av_read_frame(r->in.ic, r->ipkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            if (r->ctl.canceled || ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || !r->decoded)
                return in_err(r, ret, "reading the input");
            break; /* a corrupt or truncated tail: keep what decoded */
        }
        bg_err err = BG_OK;
        if (r->ipkt->stream_index == r->ist->index)
            err = decode(r, r->ipkt);
        av_packet_unref(r->ipkt);
        if (err != BG_OK)
            return err;
    }
    return r->ctl.canceled ? canceled(r) : BG_OK;
}

static bg_err no_samples(run *r)
{
    /* After a seek past the end nothing decodes: the duration tells that
     * case from a file with no decodable audio. */
    if (r->o->start_s > 0 && (r->decoded || r->avail_s <= 0))
        return bad_opts(r->e, "start is at or past the end of the audio");
    media_err(r->e, "INVALID_INPUT", "no audio could be decoded");
    return BG_EMEDIA;
}

static bg_err finish(run *r)
{
    bg_err err = BG_OK;
    if (!r->full) {
        err = decode(r, NULL);
        if (err == BG_OK)
            err = drain_swr(r);
        if (err == BG_OK)
            err = fifo_to_encoder(r, true);
        if (err != BG_OK)
            return err;
    }
    if (r->out_sent == 0)
        return no_samples(r);
    if (!media_ctl_tick(&r->ctl, fraction(r)))
        return canceled(r);
    err = encode(r, NULL);
    if (err != BG_OK)
        return err;
    int ret = av_write_trailer(r->oc);
    if (ret < 0)
        return out_err(r, ret, "writing the output");
    ret = avio_closep(&r->oc->pb);
    return ret < 0 ? out_err(r, ret, "writing the output") : BG_OK;
}

/* {"duration","bit_rate","sample_rate","channels","codec","format"} of the
 * written file, as a probe of it sees them. */
static bg_err describe_output(run *r, json_t **meta_out)
{
    json_t *p = NULL;
    bg_media_err pe;
    if (bg_media_probe(r->part, &p, &pe) != BG_OK) {
        media_err(r->e, "PROCESSING_ERROR", "the encoded output cannot be read back: %s",
                  pe.message);
        return BG_EMEDIA;
    }
    json_t *a = json_array_get(json_object_get(p, "streams"), 0);
    json_t *br = json_object_get(a, "bit_rate");
    if (json_integer_value(br) <= 0)
        br = json_object_get(p, "bit_rate");
    json_t *m = json_object();
    json_object_set(m, "duration", json_object_get(p, "duration"));
    json_object_set(m, "bit_rate", br);
    json_object_set(m, "sample_rate", json_object_get(p, "sample_rate"));
    json_object_set(m, "channels", json_object_get(p, "channels"));
    json_object_set(m, "codec", json_object_get(p, "audio_codec"));
    json_object_set(m, "format", json_object_get(p, "format"));
    json_decref(p);
    *meta_out = m;
    return BG_OK;
}

static void run_free(run *r)
{
    if (r->oc != NULL) {
        avio_closep(&r->oc->pb);
        avformat_free_context(r->oc);
    }
    avcodec_free_context(&r->enc);
    avcodec_free_context(&r->dec);
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->swr_layout);
    av_audio_fifo_free(r->fifo);
    if (r->cvt != NULL)
        av_freep(&r->cvt[0]);
    av_freep(&r->cvt);
    av_packet_free(&r->ipkt);
    av_packet_free(&r->opkt);
    av_frame_free(&r->dframe);
    av_frame_free(&r->eframe);
    media_input_close(&r->in);
}

static bg_err transcode(run *r, const char *in)
{
    bg_err err = media_input_open(&r->in, in, &r->ctl, r->e);
    if (err == BG_OK)
        err = select_stream(r);
    if (err == BG_OK)
        err = open_decoder(r);
    if (err == BG_OK)
        err = open_output(r);
    if (err == BG_OK)
        err = open_encoder(r);
    if (err == BG_OK)
        err = alloc_buffers(r);
    if (err == BG_OK) {
        plan_times(r);
        err = seek_start(r);
    }
    if (err == BG_OK)
        err = start_output(r);
    if (err == BG_OK)
        err = pump(r);
    if (err == BG_OK)
        err = finish(r);
    return err;
}

bg_err bg_media_audio_encode(const char *in, const char *out, const bg_audio_encode_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e)
{
    media_init();
    run r = {.o = o, .e = e};
    media_ctl_init(&r.ctl, p);
    json_t *meta = NULL;
    bg_err err = check_opts(&r, in, out);
    if (err == BG_OK && !media_ctl_tick(&r.ctl, 0.0))
        err = canceled(&r);
    if (err == BG_OK)
        err = transcode(&r, in);
    run_free(&r); /* closes the output before it is read back or renamed */
    if (err == BG_OK && meta_out != NULL)
        err = describe_output(&r, &meta);
    if (err == BG_OK && rename(r.part, out) != 0) {
        media_err(e, "OUTPUT_ERROR", "output cannot be renamed into place: %s", strerror(errno));
        err = BG_EIO;
    }
    if (err != BG_OK) {
        if (r.part_made)
            unlink(r.part);
        json_decref(meta);
        return err;
    }
    if (meta_out != NULL)
        *meta_out = meta;
    return BG_OK;
}
