/*
 * node/media/audio_source.c — one decode of a file's first audio stream,
 * shared by every sink that wants it (asrc), and the format converter the
 * sinks use (aconv).
 *
 * Windows: a sink's start is cut exactly, in the input's sample rate, after
 * an input-side seek to the nearest earlier point of the earliest start, so
 * the cut does not depend on the container's seek granularity; its duration
 * is counted in samples given. Once a sink's window has started, frame
 * timestamps no longer cut anything: jitter of a sample must not drop audio.
 */
#include "audio_internal.h"

#include <math.h>
#include <string.h>

#define MIN_CONV_SAMPLES 4096 /* first size of a resampler's output buffer */

/* ---- errors ---------------------------------------------------------- */

bg_err audio_canceled(bg_media_err *e)
{
    media_err(e, "CANCELED", "canceled");
    return BG_EBUSY;
}

bg_err audio_bad_opts(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_OPTIONS", "%s", msg);
    return BG_EINVAL;
}

bg_err audio_proc_err(bg_media_err *e, int averr, const char *what)
{
    if (averr == AVERROR(ENOMEM))
        return media_input_averr(averr, what, e);
    media_err_av(e, "PROCESSING_ERROR", what, averr);
    return BG_EMEDIA;
}

int audio_frame_layout(const AVFrame *f, AVChannelLayout *out)
{
    memset(out, 0, sizeof(*out));
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(out, f->ch_layout.nb_channels);
        return 0;
    }
    return av_channel_layout_copy(out, &f->ch_layout);
}

/* ---- aconv ------------------------------------------------------------ */

bg_err aconv_init(aconv *c, enum AVSampleFormat fmt, int rate, const AVChannelLayout *layout,
                  aconv_out_fn out, void *ud, bg_media_err *e)
{
    memset(c, 0, sizeof(*c));
    c->fmt = fmt;
    c->rate = rate;
    c->out = out;
    c->ud = ud;
    c->e = e;
    int ret = av_channel_layout_copy(&c->layout, layout);
    return ret < 0 ? audio_proc_err(e, ret, "converter") : BG_OK;
}

void aconv_fini(aconv *c)
{
    swr_free(&c->swr);
    av_channel_layout_uninit(&c->layout);
    av_channel_layout_uninit(&c->in_layout);
    if (c->buf != NULL)
        av_freep(&c->buf[0]);
    av_freep(&c->buf);
    c->cap = 0;
}

/* Resamples n samples (src NULL: what the resampler holds) and hands the
 * result on; *got = samples produced. */
static bg_err convert(aconv *c, const uint8_t **src, int n, int *got)
{
    *got = 0;
    int need = swr_get_out_samples(c->swr, n);
    if (need < 0)
        return audio_proc_err(c->e, need, "resampling");
    if (need > c->cap) {
        int cap = need > MIN_CONV_SAMPLES ? need : MIN_CONV_SAMPLES;
        if (c->buf != NULL)
            av_freep(&c->buf[0]);
        av_freep(&c->buf);
        c->cap = 0;
        int ret = av_samples_alloc_array_and_samples(&c->buf, NULL, c->layout.nb_channels, cap,
                                                     c->fmt, 0);
        if (ret < 0)
            return audio_proc_err(c->e, ret, "resampling");
        c->cap = cap;
    }
    *got = swr_convert(c->swr, c->buf, c->cap, src, n);
    if (*got < 0)
        return audio_proc_err(c->e, *got, "resampling");
    return *got > 0 ? c->out(c->ud, c->buf, *got) : BG_OK;
}

bg_err aconv_flush(aconv *c)
{
    int got = 1;
    while (c->swr != NULL && got > 0) {
        bg_err err = convert(c, NULL, 0, &got);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

/* (Re)creates the resampler when the input's format, rate or layout is new;
 * what the old one held goes out first. No resampler when the input already
 * is in the output's format. */
static bg_err setup(aconv *c, const AVFrame *f)
{
    AVChannelLayout in;
    int ret = audio_frame_layout(f, &in);
    if (ret < 0)
        return audio_proc_err(c->e, ret, "resampling");
    if (c->have_in && c->in_rate == f->sample_rate && c->in_fmt == f->format &&
        av_channel_layout_compare(&c->in_layout, &in) == 0) {
        av_channel_layout_uninit(&in);
        return BG_OK;
    }
    bg_err err = aconv_flush(c);
    swr_free(&c->swr);
    av_channel_layout_uninit(&c->in_layout);
    c->in_layout = in; /* owned by c from here */
    c->have_in = true;
    c->in_rate = f->sample_rate;
    c->in_fmt = f->format;
    if (err != BG_OK)
        return err;
    if (f->format == c->fmt && f->sample_rate == c->rate &&
        av_channel_layout_compare(&in, &c->layout) == 0)
        return BG_OK;
    ret = swr_alloc_set_opts2(&c->swr, &c->layout, c->fmt, c->rate, &in, f->format, f->sample_rate,
                              0, NULL);
    if (ret >= 0)
        ret = swr_init(c->swr);
    return ret < 0 ? audio_proc_err(c->e, ret, "resampler setup") : BG_OK;
}

bg_err aconv_feed(aconv *c, const AVFrame *f, int off, int n)
{
    bg_err err = setup(c, f);
    if (err != BG_OK || n <= 0)
        return err;
    int ch = f->ch_layout.nb_channels;
    bool planar = av_sample_fmt_is_planar(f->format);
    size_t skip = (size_t)off * av_get_bytes_per_sample(f->format) * (planar ? 1 : ch);
    uint8_t *ptrs[AUDIO_MAX_CHANNELS];
    for (int i = 0; i < (planar ? ch : 1); i++)
        ptrs[i] = f->extended_data[i] + skip;
    if (c->swr == NULL)
        return c->out(c->ud, ptrs, n);
    int got;
    return convert(c, (const uint8_t **)ptrs, n, &got);
}

/* ---- opening the input ------------------------------------------------ */

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

/* An error while reading or decoding the input. A cancel can surface as
 * any error from a demuxer whose read was interrupted, hence the flag. */
static bg_err in_err(asrc *s, int ret, const char *what)
{
    if (s->ctl->canceled)
        return audio_canceled(s->e);
    return media_input_averr(ret, what, s->e);
}

/* Stream info is always read, as the ffmpeg tool does: besides filling what
 * headers leave out, it completes the codec probing some demuxers ask for
 * (wav's pcm_s16le may be spdif), which a seek would otherwise restart over
 * 2500 packets (twice the encode time of a wav). Streams other than the
 * first audio one are discarded first, so no video is decoded for it. */
static bg_err select_stream(asrc *s)
{
    AVFormatContext *ic = s->in.ic;
    AVStream *st = first_audio(ic);
    if (st != NULL)
        discard_others(ic, st);
    int ret = avformat_find_stream_info(ic, NULL);
    if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || s->ctl->canceled)
        return in_err(s, ret, "stream info");
    st = first_audio(ic); /* headerless containers add streams while reading */
    if (st == NULL || st->codecpar->codec_id == AV_CODEC_ID_NONE) {
        media_err(s->e, "INVALID_INPUT", "no audio stream");
        return BG_EMEDIA;
    }
    discard_others(ic, st);
    s->ist = st;
    return BG_OK;
}

static bg_err open_decoder(asrc *s)
{
    const AVCodecParameters *par = s->ist->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL) {
        media_err(s->e, "INVALID_INPUT", "no decoder for audio codec %s",
                  avcodec_get_name(par->codec_id));
        return BG_EMEDIA;
    }
    if (par->ch_layout.nb_channels > AUDIO_MAX_CHANNELS) {
        media_err(s->e, "INVALID_INPUT", "too many audio channels");
        return BG_EMEDIA;
    }
    s->dec = avcodec_alloc_context3(codec);
    if (s->dec == NULL)
        return audio_proc_err(s->e, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(s->dec, par);
    if (ret < 0)
        return audio_proc_err(s->e, ret, "decoder");
    s->dec->pkt_timebase = s->ist->time_base;
    s->dec->thread_count = 1; /* no threads of our own; audio decoders barely use them */
    ret = avcodec_open2(s->dec, codec, NULL);
    if (ret < 0)
        return in_err(s, ret, "audio decoder");
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    if (s->pkt == NULL || s->frame == NULL)
        return audio_proc_err(s->e, AVERROR(ENOMEM), "decoder");
    return BG_OK;
}

static void read_times(asrc *s)
{
    const AVStream *st = s->ist;
    const AVFormatContext *ic = s->in.ic;
    s->origin = st->start_time != AV_NOPTS_VALUE ? st->start_time * av_q2d(st->time_base) : 0;
    s->dur = -1.0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        s->dur = st->duration * av_q2d(st->time_base);
    else if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
        s->dur = (double)ic->duration / AV_TIME_BASE;
}

bg_err asrc_open(asrc *s, const char *path, media_ctl *ctl, bg_media_err *e)
{
    memset(s, 0, sizeof(*s));
    s->ctl = ctl;
    s->e = e;
    bg_err err = media_input_open(&s->in, path, ctl, e);
    if (err == BG_OK)
        err = select_stream(s);
    if (err == BG_OK)
        err = open_decoder(s);
    if (err != BG_OK) {
        asrc_close(s);
        return err;
    }
    read_times(s);
    return BG_OK;
}

void asrc_close(asrc *s)
{
    avcodec_free_context(&s->dec);
    av_packet_free(&s->pkt);
    av_frame_free(&s->frame);
    media_input_close(&s->in);
}

double asrc_avail(const asrc *s, double start_s)
{
    return s->dur > 0 ? s->dur - start_s : -1.0;
}

/* ---- the run ------------------------------------------------------------ */

/* Seeks to the nearest point at or before the earliest start, and sets the
 * time range progress is measured on. A failed seek is not fatal: decoding
 * from where we are and dropping samples still cuts exactly. */
static bg_err plan(asrc *s, asink *const *sinks, size_t n)
{
    double first = INFINITY, last = 0.0;
    bool open_end = false;
    for (size_t i = 0; i < n; i++) {
        if (sinks[i]->start_s < first)
            first = sinks[i]->start_s;
        if (sinks[i]->duration_s <= 0)
            open_end = true;
        else if (sinks[i]->start_s + sinks[i]->duration_s > last)
            last = sinks[i]->start_s + sinks[i]->duration_s;
    }
    if (open_end || (s->dur > 0 && last > s->dur))
        last = s->dur;
    s->span0 = first;
    s->span = last - first;
    s->next_s = s->origin + first;
    if (first <= 0)
        return BG_OK;
    AVRational tb = s->ist->time_base;
    int64_t ts = av_rescale_q(llround((s->origin + first) * AV_TIME_BASE), AV_TIME_BASE_Q, tb);
    int ret = avformat_seek_file(s->in.ic, s->ist->index, INT64_MIN, ts, ts, 0);
    if (ret == AVERROR_EXIT || s->ctl->canceled)
        return in_err(s, ret, "seek");
    return BG_OK;
}

static double fraction(const asrc *s)
{
    double f;
    if (s->span > 0) {
        f = (s->next_s - s->origin - s->span0) / s->span;
    } else {
        int64_t pos = avio_tell(s->in.pb);
        f = s->in.size > 0 && pos > 0 ? (double)pos / (double)s->in.size : 0.0;
    }
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return s->base + s->scale * f;
}

/* Gives one sink the part of the frame in its window. */
static bg_err to_sink(asink *k, const AVFrame *f, double start)
{
    int n = f->nb_samples, rate = f->sample_rate, off = 0;
    if (!k->started && k->start_s > 0) {
        double t0 = k->start_s;
        if (start < t0) {
            double skip = (t0 - start) * rate;
            if (skip >= n || llround(skip) >= n)
                return BG_OK;
            off = (int)llround(skip);
        }
    }
    int cnt = n - off;
    if (k->duration_s > 0) {
        int64_t left = llround((k->duration_s - k->fed_s) * rate);
        if (left <= 0) {
            k->full = true;
            return BG_OK;
        }
        if (left < cnt)
            cnt = (int)left;
    }
    k->started = true;
    k->fed += cnt;
    k->fed_s += (double)cnt / rate;
    bg_err err = k->feed(k, f, off, cnt);
    if (err == BG_OK && k->duration_s > 0 && llround((k->duration_s - k->fed_s) * rate) <= 0)
        k->full = true;
    return err;
}

/* Hands a decoded frame to every sink that still wants samples; returns
 * BG_OK with *all_full when none does. start is relative to the origin. */
static bg_err dispatch(asrc *s, asink *const *sinks, size_t n, bool *all_full)
{
    const AVFrame *f = s->frame;
    int ns = f->nb_samples, rate = f->sample_rate, ch = f->ch_layout.nb_channels;
    *all_full = false;
    if (ns <= 0 || rate <= 0 || ch <= 0 || ch > AUDIO_MAX_CHANNELS || f->format < 0)
        return BG_OK;
    double start = s->next_s;
    if (f->best_effort_timestamp != AV_NOPTS_VALUE)
        start = f->best_effort_timestamp * av_q2d(s->ist->time_base);
    s->next_s = start + (double)ns / rate;
    s->decoded = true;
    bool full = true;
    for (size_t i = 0; i < n; i++) {
        if (sinks[i]->full)
            continue;
        bg_err err = to_sink(sinks[i], f, start - s->origin);
        if (err != BG_OK)
            return err;
        full = full && sinks[i]->full;
    }
    *all_full = full;
    return BG_OK;
}

/* Sends one packet (NULL: drain) and dispatches every frame it yields. A
 * packet or frame the decoder rejects is skipped, as the ffmpeg tool does:
 * one bad packet must not lose a whole upload. */
static bg_err decode(asrc *s, const AVPacket *pkt, asink *const *sinks, size_t n, bool *all_full)
{
    int ret = avcodec_send_packet(s->dec, pkt);
    if (ret == AVERROR(ENOMEM))
        return in_err(s, ret, "decoding");
    if (ret < 0)
        return BG_OK;
    while (!*all_full) {
        ret = avcodec_receive_frame(s->dec, s->frame);
        if (ret == AVERROR(ENOMEM))
            return in_err(s, ret, "decoding");
        if (ret < 0) /* EAGAIN, EOF, or a corrupt frame */
            return BG_OK;
        bg_err err = dispatch(s, sinks, n, all_full);
        av_frame_unref(s->frame);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

static bg_err pump(asrc *s, asink *const *sinks, size_t n, bool *all_full)
{
    *all_full = false;
    while (!*all_full) {
        if (!media_ctl_tick(s->ctl, fraction(s)))
            return audio_canceled(s->e);
        int ret = av_read_frame(s->in.ic, s->pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            if (s->ctl->canceled || ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || !s->decoded)
                return in_err(s, ret, "reading the input");
            break; /* a corrupt or truncated tail: keep what decoded */
        }
        bg_err err = BG_OK;
        if (s->pkt->stream_index == s->ist->index)
            err = decode(s, s->pkt, sinks, n, all_full);
        av_packet_unref(s->pkt);
        if (err != BG_OK)
            return err;
    }
    return s->ctl->canceled ? audio_canceled(s->e) : BG_OK;
}

static bg_err no_samples(asrc *s, const asink *k)
{
    /* After a seek past the end nothing decodes: the duration tells that
     * case from a file with no decodable audio. */
    if (k->start_s > 0 && (s->decoded || asrc_avail(s, k->start_s) <= 0))
        return audio_bad_opts(s->e, "start is at or past the end of the audio");
    media_err(s->e, "INVALID_INPUT", "no audio could be decoded");
    return BG_EMEDIA;
}

bg_err asrc_run(asrc *s, asink *const *sinks, size_t n, double base, double scale)
{
    s->base = base;
    s->scale = scale;
    bool all_full = false;
    bg_err err = plan(s, sinks, n);
    if (err == BG_OK)
        err = pump(s, sinks, n, &all_full);
    if (err == BG_OK && !all_full)
        err = decode(s, NULL, sinks, n, &all_full);
    for (size_t i = 0; i < n && err == BG_OK; i++)
        if (sinks[i]->fed == 0)
            err = no_samples(s, sinks[i]);
    for (size_t i = 0; i < n && err == BG_OK; i++) {
        if (!media_ctl_tick(s->ctl, fraction(s)))
            return audio_canceled(s->e);
        err = sinks[i]->finish(sinks[i]);
    }
    if (err == BG_OK && !media_ctl_tick(s->ctl, base + scale))
        err = audio_canceled(s->e);
    return err;
}
