/*
 * node/media/image_input.c — the input of the picture robots: a video or
 * picture file opened by content, its one video stream decoded frame by
 * frame, with seeks and progress.
 */
#include "image_internal.h"

/* ---- a video (or picture) input, decoded frame by frame -------------- */


static bg_err in_err(vin *v, int ret, const char *what)
{
    if (v->ctl.canceled)
        return bg_img_canceled(v->e);
    return media_input_averr(ret, what, v->e);
}

/* The first video stream that is not cover art; with cover_ok, cover art
 * when there is nothing else. */
static AVStream *pick_video(AVFormatContext *ic, bool cover_ok)
{
    AVStream *cover = NULL;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVStream *st = ic->streams[i];
        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)
            continue;
        if (!(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return st;
        if (cover == NULL && cover_ok)
            cover = st;
    }
    return cover;
}

static double duration_of(const AVStream *st, const AVFormatContext *ic)
{
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        return (double)st->duration * av_q2d(st->time_base);
    if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
        return (double)ic->duration / AV_TIME_BASE;
    return 0.0;
}

static void discard_others(AVFormatContext *ic, const AVStream *keep)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        ic->streams[i]->discard = ic->streams[i] == keep ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

/* Stream info costs a decode of the first frames (a second decode of a
 * still picture), so it is read only when the header did not name the
 * codec or, for thumbnails, the duration (mpeg-ts, raw streams). */
static bg_err find_stream(vin *v, bool thumbs)
{
    AVFormatContext *ic = v->in.ic;
    AVStream *st = pick_video(ic, !thumbs);
    if (st == NULL || st->codecpar->codec_id == AV_CODEC_ID_NONE ||
        (thumbs && duration_of(st, ic) <= 0)) {
        if (st != NULL)
            discard_others(ic, st);
        int ret = avformat_find_stream_info(ic, NULL);
        if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || v->ctl.canceled)
            return in_err(v, ret, "stream info");
        st = pick_video(ic, !thumbs);
    }
    if (st == NULL || st->codecpar->codec_id == AV_CODEC_ID_NONE)
        return bg_img_bad_input(v->e, thumbs ? "no video stream" : "no picture");
    discard_others(ic, st);
    v->st = st;
    v->origin = st->start_time != AV_NOPTS_VALUE ? st->start_time * av_q2d(st->time_base) : 0;
    v->duration = duration_of(st, ic);
    return BG_OK;
}

static bg_err too_large(vin *v, int w, int h)
{
    if ((int64_t)w * h <= BG_IMAGE_MAX_SOURCE_PIXELS)
        return BG_OK;
    return bg_img_bad_input(v->e, "the picture is too large");
}

static bg_err open_decoder(vin *v, int threads)
{
    const AVCodecParameters *par = v->st->codecpar;
    if (too_large(v, par->width, par->height) != BG_OK)
        return BG_EMEDIA;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL) {
        media_err(v->e, "INVALID_INPUT", "no decoder for codec %s", avcodec_get_name(par->codec_id));
        return BG_EMEDIA;
    }
    v->dec = avcodec_alloc_context3(codec);
    v->pkt = av_packet_alloc();
    if (v->dec == NULL || v->pkt == NULL)
        return bg_img_proc_err(v->e, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(v->dec, par);
    if (ret < 0)
        return bg_img_proc_err(v->e, ret, "decoder");
    v->dec->pkt_timebase = v->st->time_base;
    v->dec->thread_count = threads;
    v->dec->max_pixels = BG_IMAGE_MAX_SOURCE_PIXELS; /* the decoder refuses bigger frames */
    ret = avcodec_open2(v->dec, codec, NULL);
    return ret < 0 ? in_err(v, ret, "video decoder") : BG_OK;
}

/* media.c's opener probes with the file's name, and a name ending in .jpg
 * (.bmp, .tif...) lets libav's image2 demuxer (extension score 50) outbid
 * the content-based jpeg_pipe (25 until it has seen the whole file); image2
 * is refused there because it can read numbered sequences. An input refused
 * as INVALID_INPUT is therefore tried once more here, its demuxer chosen
 * from the bytes alone and accepted only if it is one of the single-picture
 * *_pipe demuxers. On failure nothing is left open and the first error
 * stands. */
static bool picture_demuxer(const AVInputFormat *f)
{
    size_t n = strlen(f->name);
    return n > 5 && strcmp(f->name + n - 5, "_pipe") == 0;
}

static bool open_by_content(vin *v, const char *path)
{
    media_input *in = &v->in;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    char *url = av_asprintf("file:%s", path);
    if (url == NULL)
        return false;
    in->size = (int64_t)st.st_size;
    AVIOInterruptCB icb = {media_interrupt_cb, &v->ctl};
    const AVInputFormat *fmt = NULL;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret = avio_open2(&in->pb, url, AVIO_FLAG_READ, &icb, &opts);
    if (ret >= 0)
        ret = av_probe_input_buffer2(in->pb, &fmt, "", NULL, 0, 0);
    if (ret >= 0 && !picture_demuxer(fmt))
        ret = AVERROR_INVALIDDATA;
    if (ret >= 0 && (in->ic = avformat_alloc_context()) == NULL)
        ret = AVERROR(ENOMEM);
    if (ret >= 0) {
        in->ic->pb = in->pb;
        in->ic->interrupt_callback = icb;
        ret = avformat_open_input(&in->ic, url, fmt, &opts); /* frees ic on failure */
    }
    av_dict_free(&opts);
    av_free(url);
    if (ret < 0)
        media_input_close(in);
    return ret >= 0;
}

bg_err bg_img_vin_open(vin *v, const char *path, bool thumbs)
{
    v->skip_before = -INFINITY;
    bg_media_err first; /* e is written only when the call fails */
    bg_err err = media_input_open(&v->in, path, &v->ctl, &first);
    if (err == BG_EMEDIA && !v->ctl.canceled && open_by_content(v, path))
        err = BG_OK;
    if (err != BG_OK && v->e != NULL)
        *v->e = first;
    if (err == BG_OK)
        err = find_stream(v, thumbs);
    if (err == BG_OK)
        err = open_decoder(v, thumbs ? 0 : 1);
    return err;
}

void bg_img_vin_close(vin *v)
{
    avcodec_free_context(&v->dec);
    av_packet_free(&v->pkt);
    media_input_close(&v->in);
}

/* Feeds the decoder one packet of our stream, or tells it the input ended.
 * A packet the decoder rejects is skipped, as the ffmpeg tool does. */
static bg_err feed(vin *v)
{
    int ret = av_read_frame(v->in.ic, v->pkt);
    if (ret < 0) {
        if (v->ctl.canceled || ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) ||
            (ret != AVERROR_EOF && !v->decoded))
            return in_err(v, ret, "reading the input");
        v->draining = true; /* the end, or a corrupt tail after good frames */
        avcodec_send_packet(v->dec, NULL);
        return BG_OK;
    }
    if (v->pkt->stream_index == v->st->index) {
        /* Frames nothing refers to, well before the wanted time, need not be
         * decoded at all; the setting follows each packet (frame threads copy
         * it when the packet is submitted). */
        double pts = v->pkt->pts == AV_NOPTS_VALUE
                         ? INFINITY
                         : v->pkt->pts * av_q2d(v->st->time_base) - v->origin;
        v->dec->skip_frame = pts < v->skip_before ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        ret = avcodec_send_packet(v->dec, v->pkt);
    }
    av_packet_unref(v->pkt);
    return ret == AVERROR(ENOMEM) ? in_err(v, ret, "decoding") : BG_OK;
}

/* Next decoded frame into f: BG_OK, BG_ENOTFOUND at the end, or an error. */
bg_err bg_img_vin_read(vin *v, AVFrame *f)
{
    int errors = 0; /* in a row: a decoder stuck on an error must not spin */
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, f);
        if (ret >= 0) {
            if (too_large(v, f->width, f->height) != BG_OK) {
                av_frame_unref(f);
                return BG_EMEDIA;
            }
            v->decoded = true;
            return BG_OK;
        }
        if (ret == AVERROR_EOF || (v->draining && ret == AVERROR(EAGAIN)))
            return BG_ENOTFOUND;
        if (ret == AVERROR(ENOMEM))
            return in_err(v, ret, "decoding");
        if (!media_ctl_tick(&v->ctl, v->frac))
            return bg_img_canceled(v->e);
        if (ret != AVERROR(EAGAIN) && ++errors > MAX_DECODE_ERRORS)
            return bg_img_bad_input(v->e, "the video cannot be decoded");
        if (ret != AVERROR(EAGAIN))
            continue; /* a corrupt frame: the next receive moves on */
        bg_err err = feed(v);
        if (err != BG_OK)
            return err;
    }
}

/* Seconds from the start of the stream; NAN when the frame has no time. */
double bg_img_frame_time(const vin *v, const AVFrame *f)
{
    if (f->best_effort_timestamp == AV_NOPTS_VALUE)
        return NAN;
    return f->best_effort_timestamp * av_q2d(v->st->time_base) - v->origin;
}

int64_t bg_img_stream_ts(const vin *v, double t)
{
    return av_rescale_q(llround((v->origin + t) * AV_TIME_BASE), AV_TIME_BASE_Q, v->st->time_base);
}

/* Seeks back to the keyframe at or before t. A container that cannot seek
 * keeps its position: decoding on then yields the first frame after t. */
bg_err bg_img_vin_seek(vin *v, double t, bool *seeked)
{
    int ret = av_seek_frame(v->in.ic, v->st->index, bg_img_stream_ts(v, t), AVSEEK_FLAG_BACKWARD);
    if (v->ctl.canceled || ret == AVERROR_EXIT)
        return bg_img_canceled(v->e);
    *seeked = ret >= 0;
    if (ret >= 0) {
        avcodec_flush_buffers(v->dec);
        v->draining = false;
    }
    return BG_OK;
}

