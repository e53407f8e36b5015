/*
 * node/media/video.c — bg_media_video_encode: the first video stream (and
 * the first audio stream, if any) of a file, decoded, filtered by
 * libavfilter, encoded by libx264 and the native aac encoder, and muxed into
 * out.part (mp4, faststart), which becomes out only when everything went
 * well.
 *
 * Each output stream is a "lane": decoder → filter graph → encoder. The
 * video graph is trim → fps (only when capping) → scale → format=yuv420p, so
 * frames a cap drops are never scaled; the audio graph is atrim → aresample
 * → aformat, with the sink cutting 1024-sample frames for aac. Timestamps
 * are shifted by one instant t0 (container start + start_s) for both lanes
 * before filtering, so the trims cut both at the same point and keep sync.
 *
 * Encoders are opened from the stream parameters before the first packet,
 * so the header can be written at once; graphs are built on each lane's
 * first decoded frame, from that frame. The scale filter follows size and
 * format changes of later video frames by itself; an audio format change
 * rebuilds the audio graph after draining it.
 */
#include "video.h"

#include "media_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/avstring.h>
#include <libavutil/channel_layout.h>

#define MAX_OPT_SECONDS 1e7 /* bounds start_s and duration_s */
#define MAX_FPS 240.0
#define MAX_THREADS 64
#define MAX_IN_CHANNELS 64
#define MAX_IN_PIXELS (7680 * 4320) /* 8K UHD: bounds the decoder's memory */
#define DEFAULT_AUDIO_BITRATE 128000
#define FALLBACK_RATE 48000
#define FALLBACK_FPS 25
#define AAC_FRAME 1024

static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster",  "fast",
                                      "medium",    "slow",      "slower",   "veryslow"};

/* One output stream: where it comes from and how it is made. */
typedef struct lane {
    AVStream *ist; /* NULL: the lane is absent (no audio) */
    AVCodecContext *dec, *enc;
    AVStream *ost;
    AVFilterGraph *graph;
    AVFilterContext *src, *sink;
    int64_t shift;     /* t0 in ist->time_base, subtracted from every timestamp */
    int64_t next_in;   /* ist->time_base: where a frame without a timestamp starts */
    int64_t last_out;  /* enc->time_base: last timestamp given to the encoder */
    int64_t frames;    /* frames given to the encoder */
    int g_fmt, g_rate; /* audio: what the current graph was built for */
    AVChannelLayout g_layout;
    bool done; /* the graph reached its end (trim end): read no more for it */
} lane;

typedef struct run {
    const bg_video_encode_opts *o;
    bg_media_err *e;
    media_ctl ctl;
    media_input in;
    lane v, a;
    const AVCodec *venc, *aenc;
    AVFormatContext *oc;
    AVPacket *ipkt, *opkt;
    AVFrame *dframe, *fframe;
    int out_w, out_h;
    AVRational in_fps; /* the input's frame rate, guessed; 0/1 when unknown */
    AVRational cap;    /* the fps filter's rate; 0/1 when not capping */
    int64_t t0;        /* AV_TIME_BASE units, on the input's timeline */
    double target_s;   /* expected output length, for progress; <= 0 when unknown */
    double avail_s;    /* input after start_s, from its duration; NAN when unknown */
    double out_s;      /* output time reached */
    bool decoded;      /* some video frame was decoded */
    bool part_made;
    char part[PATH_MAX + 8];
} run;

void bg_video_encode_opts_init(bg_video_encode_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->crf = -1;
}

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

static bg_err in_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return canceled(r);
    return media_input_averr(ret, what, r->e);
}

static bg_err proc_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return canceled(r);
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

static bool side_ok(int s)
{
    return s == 0 || (s >= 2 && s <= BG_VIDEO_MAX_SIDE);
}

static bool preset_ok(const char *p)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (strcmp(p, presets[i]) == 0)
            return true;
    return false;
}

static bg_err check_opts(run *r, const char *in, const char *out)
{
    const bg_video_encode_opts *o = r->o;
    if (o == NULL || in == NULL || out == NULL)
        return bad_opts(r->e, "input, output and options are required");
    if (!side_ok(o->width) || !side_ok(o->height))
        return bad_opts(r->e, "width and height must be 0 or 2..8192");
    if (o->crf < -1 || o->crf > 51)
        return bad_opts(r->e, "crf must be 0..51");
    if (o->video_bitrate != 0 && (o->video_bitrate < 16000 || o->video_bitrate > 200000000))
        return bad_opts(r->e, "video bitrate must be 16000..200000000");
    if (o->video_bitrate != 0 && o->crf >= 0)
        return bad_opts(r->e, "crf and video bitrate cannot both be set");
    if (o->preset != NULL && !preset_ok(o->preset))
        return bad_opts(r->e, "preset must be one of ultrafast..veryslow");
    if (!isfinite(o->max_fps) || (o->max_fps != 0 && (o->max_fps < 1 || o->max_fps > MAX_FPS)))
        return bad_opts(r->e, "max fps must be 0 or 1..240");
    if (o->audio_bitrate != 0 && (o->audio_bitrate < 16000 || o->audio_bitrate > 512000))
        return bad_opts(r->e, "audio bitrate must be 16000..512000");
    if (!seconds_ok(o->start_s) || !seconds_ok(o->duration_s))
        return bad_opts(r->e, "start and duration must be seconds >= 0");
    if (o->threads < 0 || o->threads > MAX_THREADS)
        return bad_opts(r->e, "threads must be 0..64");
    if (snprintf(r->part, sizeof(r->part), "%s.part", out) >= (int)sizeof(r->part))
        return bad_opts(r->e, "output path too long");
    r->venc = avcodec_find_encoder_by_name("libx264");
    r->aenc = avcodec_find_encoder_by_name("aac");
    if (r->venc == NULL || r->aenc == NULL) {
        media_err(r->e, "PROCESSING_ERROR", "the libx264 or aac encoder is not available");
        return BG_EMEDIA;
    }
    return BG_OK;
}

/* ---- input side ------------------------------------------------------ */

static bool usable(const AVStream *st, enum AVMediaType type)
{
    const AVCodecParameters *par = st->codecpar;
    if (par->codec_type != type || par->codec_id == AV_CODEC_ID_NONE)
        return false;
    if (type == AVMEDIA_TYPE_VIDEO)
        return !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) && par->width > 0 &&
               par->height > 0 && avcodec_find_decoder(par->codec_id) != NULL;
    return par->sample_rate > 0 && par->ch_layout.nb_channels > 0 &&
           par->ch_layout.nb_channels <= MAX_IN_CHANNELS &&
           avcodec_find_decoder(par->codec_id) != NULL;
}

static AVStream *first_of(AVFormatContext *ic, enum AVMediaType type)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        if (usable(ic->streams[i], type))
            return ic->streams[i];
    return NULL;
}

/* Stream info is read as the ffmpeg tool does, after discarding the
 * streams that are neither video nor audio. An audio stream that cannot be
 * decoded is left out (a video-only output) rather than failing the run. */
static bg_err select_streams(run *r)
{
    AVFormatContext *ic = r->in.ic;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        enum AVMediaType t = ic->streams[i]->codecpar->codec_type;
        if (t != AVMEDIA_TYPE_VIDEO && t != AVMEDIA_TYPE_AUDIO)
            ic->streams[i]->discard = AVDISCARD_ALL;
    }
    int ret = avformat_find_stream_info(ic, NULL);
    if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || r->ctl.canceled)
        return in_err(r, ret, "stream info");
    r->v.ist = first_of(ic, AVMEDIA_TYPE_VIDEO);
    r->a.ist = first_of(ic, AVMEDIA_TYPE_AUDIO);
    if (r->v.ist == NULL) {
        media_err(r->e, "INVALID_INPUT", "no video stream");
        return BG_EMEDIA;
    }
    const AVCodecParameters *par = r->v.ist->codecpar;
    if ((int64_t)par->width * par->height > MAX_IN_PIXELS) {
        media_err(r->e, "INVALID_INPUT", "the video is larger than 8K (%dx%d)", par->width,
                  par->height);
        return BG_EMEDIA;
    }
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVStream *st = ic->streams[i];
        st->discard = st == r->v.ist || st == r->a.ist ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    }
    return BG_OK;
}

static bg_err open_decoder(run *r, lane *l)
{
    const AVCodecParameters *par = l->ist->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    l->dec = avcodec_alloc_context3(codec);
    if (l->dec == NULL)
        return proc_err(r, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(l->dec, par);
    if (ret < 0)
        return proc_err(r, ret, "decoder");
    l->dec->pkt_timebase = l->ist->time_base;
    l->dec->max_pixels = MAX_IN_PIXELS; /* frames that grow past it later fail to decode */
    /* Video decoding is half the work: frame threads on every core, as the
     * ffmpeg tool sets them ("threads auto"). */
    l->dec->thread_count = l == &r->v ? r->o->threads : 1;
    ret = avcodec_open2(l->dec, codec, NULL);
    return ret < 0 ? in_err(r, ret, "decoder") : BG_OK;
}

/* t0, the expected output length, and whether the frame rate is capped. */
static bg_err plan_times(run *r)
{
    const AVFormatContext *ic = r->in.ic;
    int64_t origin = ic->start_time != AV_NOPTS_VALUE ? ic->start_time : 0;
    r->t0 = origin + llround(r->o->start_s * AV_TIME_BASE);
    r->avail_s = NAN;
    r->target_s = -1.0;
    if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0) {
        r->avail_s = (double)ic->duration / AV_TIME_BASE - r->o->start_s;
        r->target_s = r->avail_s;
        if (r->o->start_s > 0 && r->avail_s <= 0)
            return bad_opts(r->e, "start is at or past the end of the input");
    }
    if (r->o->duration_s > 0 && (r->target_s <= 0 || r->o->duration_s < r->target_s))
        r->target_s = r->o->duration_s;
    r->in_fps = av_guess_frame_rate(r->in.ic, r->v.ist, NULL);
    if (r->in_fps.num <= 0 || r->in_fps.den <= 0)
        r->in_fps = (AVRational){0, 1};
    r->cap = (AVRational){0, 1};
    if (r->o->max_fps > 0 && (r->in_fps.num == 0 || av_q2d(r->in_fps) > r->o->max_fps + 1e-3))
        r->cap = av_d2q(r->o->max_fps, 1001000);
    return BG_OK;
}

#define SEEK_TRIES 5            /* backs off 1, 2, 4, 8 s before t0 */
#define SEEK_PROBE_PACKETS 3000 /* read at most this many looking for a key frame */

/* Where the first video key frame after the current position is, on the
 * input's timeline (AV_TIME_BASE); AV_NOPTS_VALUE when none is found soon. */
static bg_err first_key(run *r, int64_t *key)
{
    *key = AV_NOPTS_VALUE;
    const AVStream *st = r->v.ist;
    for (int i = 0; i < SEEK_PROBE_PACKETS && *key == AV_NOPTS_VALUE; i++) {
        int ret = av_read_frame(r->in.ic, r->ipkt);
        if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || r->ctl.canceled)
            return in_err(r, ret, "seek");
        if (ret < 0)
            break;
        int64_t ts = r->ipkt->pts != AV_NOPTS_VALUE ? r->ipkt->pts : r->ipkt->dts;
        if (r->ipkt->stream_index == st->index && (r->ipkt->flags & AV_PKT_FLAG_KEY) &&
            ts != AV_NOPTS_VALUE)
            *key = av_rescale_q(ts, st->time_base, AV_TIME_BASE_Q);
        av_packet_unref(r->ipkt);
    }
    return BG_OK;
}

/* Seeks so that decoding starts at a video key frame at or before t0.
 * Containers with an index (mp4, mkv) land there at once; those seeked by
 * timestamps (MPEG-TS, PS) can land just past the key frame, and the video
 * would then start at the next one, up to a GOP late: reading ahead to the
 * first key frame tells, and the seek backs off further. A failed seek is
 * not fatal: decoding from where we are, the trims still cut exactly. */
static bg_err seek_start(run *r)
{
    if (r->o->start_s <= 0)
        return BG_OK;
    int64_t target = r->t0;
    for (int i = 0;; i++) {
        int ret = avformat_seek_file(r->in.ic, -1, INT64_MIN, target, target, 0);
        if (ret == AVERROR_EXIT || r->ctl.canceled)
            return in_err(r, ret, "seek");
        if (ret < 0 || i == SEEK_TRIES)
            return BG_OK;
        int64_t key;
        bg_err err = first_key(r, &key);
        if (err != BG_OK)
            return err;
        if (key == AV_NOPTS_VALUE || key <= r->t0) { /* back to that spot */
            ret = avformat_seek_file(r->in.ic, -1, INT64_MIN, target, target, 0);
            return ret == AVERROR_EXIT || r->ctl.canceled ? in_err(r, ret, "seek") : BG_OK;
        }
        target -= (int64_t)AV_TIME_BASE << i;
    }
}

/* ---- output side ----------------------------------------------------- */

/* Width and height as scale=W:-2 computes them: the missing side keeps the
 * input's pixel aspect, rounded to the nearest even number. */
static bg_err plan_size(run *r)
{
    int iw = r->v.dec->width, ih = r->v.dec->height;
    int64_t w = r->o->width & ~1, h = r->o->height & ~1;
    if (w == 0 && h == 0) {
        w = iw & ~1;
        h = ih & ~1;
    } else if (h == 0) {
        h = av_rescale(w, ih, (int64_t)iw * 2) * 2;
    } else if (w == 0) {
        w = av_rescale(h, iw, (int64_t)ih * 2) * 2;
    }
    if (w < 2 || h < 2 || w > BG_VIDEO_MAX_SIDE || h > BG_VIDEO_MAX_SIDE) {
        media_err(r->e, "INVALID_OPTIONS", "the output would be %lldx%lld pixels (2..8192 each)",
                  (long long)w, (long long)h);
        return BG_EINVAL;
    }
    r->out_w = (int)w;
    r->out_h = (int)h;
    return BG_OK;
}

static bg_err open_output(run *r)
{
    /* The faststart pass reopens the file by this url, through the whitelist. */
    char *url = av_asprintf("file:%s", r->part);
    if (url == NULL)
        return proc_err(r, AVERROR(ENOMEM), "muxer");
    int ret = avformat_alloc_output_context2(&r->oc, NULL, "mp4", url);
    av_free(url);
    if (ret < 0)
        return proc_err(r, ret, "muxer");
    r->oc->interrupt_callback = (AVIOInterruptCB){media_interrupt_cb, &r->ctl};
    r->oc->protocol_whitelist = av_strdup("file");
    if (r->oc->protocol_whitelist == NULL)
        return proc_err(r, AVERROR(ENOMEM), "muxer");
    return BG_OK;
}

/* Adds the lane's stream to the muxer; its encoder is open. */
static bg_err add_stream(run *r, lane *l)
{
    l->ost = avformat_new_stream(r->oc, NULL);
    if (l->ost == NULL)
        return proc_err(r, AVERROR(ENOMEM), "muxer");
    int ret = avcodec_parameters_from_context(l->ost->codecpar, l->enc);
    if (ret < 0)
        return proc_err(r, ret, "muxer");
    l->ost->time_base = l->enc->time_base;
    l->ost->avg_frame_rate = l->enc->framerate;
    l->ost->sample_aspect_ratio = l->enc->sample_aspect_ratio;
    return BG_OK;
}

/* The scale filter's output aspect: the display aspect is kept through
 * the sample aspect ratio when the input declares one, as vf_scale does. */
static AVRational out_sar(const run *r)
{
    AVRational sar = r->v.ist->codecpar->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0)
        return (AVRational){0, 1};
    AVRational k = {r->out_h * r->v.dec->width, r->out_w * r->v.dec->height};
    return av_mul_q(k, sar);
}

static void copy_colors(AVCodecContext *enc, const AVCodecParameters *par)
{
    /* scale converts the pixel layout, not the colour matrix: what the
     * input says about its colours stays true. */
    enc->color_primaries = par->color_primaries;
    enc->color_trc = par->color_trc;
    enc->colorspace = par->color_space;
    enc->chroma_sample_location = par->chroma_location;
}

static bg_err open_video_encoder(run *r)
{
    lane *l = &r->v;
    l->enc = avcodec_alloc_context3(r->venc);
    if (l->enc == NULL)
        return proc_err(r, AVERROR(ENOMEM), "encoder");
    AVCodecContext *enc = l->enc;
    enc->width = r->out_w;
    enc->height = r->out_h;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->sample_aspect_ratio = out_sar(r);
    enc->framerate = r->cap.num ? r->cap : r->in_fps;
    if (enc->framerate.num == 0)
        enc->framerate = (AVRational){FALLBACK_FPS, 1};
    /* The graph's output time base: the fps filter's 1/rate, else the input's. */
    enc->time_base = r->cap.num ? av_inv_q(r->cap) : l->ist->time_base;
    enc->thread_count = r->o->threads; /* 0: x264's auto (1.5 x cores + lookahead) */
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    copy_colors(enc, l->ist->codecpar);
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "preset", r->o->preset ? r->o->preset : "veryfast", 0);
    if (r->o->video_bitrate > 0)
        enc->bit_rate = r->o->video_bitrate;
    else
        av_dict_set_int(&opts, "crf", r->o->crf >= 0 ? r->o->crf : BG_VIDEO_CRF_DEFAULT, 0);
    int ret = avcodec_open2(enc, r->venc, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return proc_err(r, ret, "opening the video encoder");
    return add_stream(r, l);
}

static bool rate_supported(const AVCodec *c, int rate)
{
    for (const int *p = c->supported_samplerates; p != NULL && *p != 0; p++)
        if (*p == rate)
            return true;
    return false;
}

static bg_err open_audio_encoder(run *r)
{
    lane *l = &r->a;
    l->enc = avcodec_alloc_context3(r->aenc);
    if (l->enc == NULL)
        return proc_err(r, AVERROR(ENOMEM), "encoder");
    AVCodecContext *enc = l->enc;
    int rate = l->dec->sample_rate;
    enc->sample_rate = rate_supported(r->aenc, rate) ? rate : FALLBACK_RATE;
    enc->time_base = (AVRational){1, enc->sample_rate};
    enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    enc->bit_rate = r->o->audio_bitrate ? r->o->audio_bitrate : DEFAULT_AUDIO_BITRATE;
    enc->thread_count = 1;
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_channel_layout_default(&enc->ch_layout, l->dec->ch_layout.nb_channels >= 2 ? 2 : 1);
    int ret = avcodec_open2(enc, r->aenc, NULL);
    if (ret < 0)
        return proc_err(r, ret, "opening the audio encoder");
    return add_stream(r, l);
}

/* Creates out.part and writes the header; the encoders are open. */
static bg_err start_output(run *r)
{
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret =
        avio_open2(&r->oc->pb, r->oc->url, AVIO_FLAG_WRITE, &r->oc->interrupt_callback, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return out_err(r, ret, "output cannot be created");
    r->part_made = true;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(r->oc, &opts);
    av_dict_free(&opts);
    return ret < 0 ? out_err(r, ret, "writing the output") : BG_OK;
}

/* ---- filter graphs --------------------------------------------------- */

/* "trim=start=0:end=D," for whichever ends apply, "" for none. */
static void trim_desc(const run *r, const char *filter, char *buf, size_t cap)
{
    char start[32] = "", end[64] = "";
    if (r->o->start_s > 0)
        snprintf(start, sizeof(start), "start=0");
    if (r->o->duration_s > 0)
        snprintf(end, sizeof(end), "%send=%.6f", start[0] ? ":" : "", r->o->duration_s);
    if (start[0] || end[0])
        snprintf(buf, cap, "%s=%s%s,", filter, start, end);
    else
        buf[0] = '\0';
}

/* Links src → desc → sink inside l->graph. */
static bg_err link_graph(run *r, lane *l, const char *desc, const char *sink_name)
{
    AVFilterInOut *outs = avfilter_inout_alloc(), *ins = avfilter_inout_alloc();
    int ret = AVERROR(ENOMEM);
    if (outs == NULL || ins == NULL)
        goto done;
    ret = avfilter_graph_create_filter(&l->sink, avfilter_get_by_name(sink_name), "out", NULL, NULL,
                                       l->graph);
    if (ret < 0)
        goto done;
    outs->name = av_strdup("in");
    outs->filter_ctx = l->src;
    ins->name = av_strdup("out");
    ins->filter_ctx = l->sink;
    ret = outs->name && ins->name ? 0 : AVERROR(ENOMEM);
    if (ret == 0)
        ret = avfilter_graph_parse_ptr(l->graph, desc, &ins, &outs, NULL);
    if (ret >= 0)
        ret = avfilter_graph_config(l->graph, NULL);
done:
    avfilter_inout_free(&outs);
    avfilter_inout_free(&ins);
    return ret < 0 ? proc_err(r, ret, "filter graph") : BG_OK;
}

/* Creates the graph and its source from the parameters of frame f. */
static bg_err new_source(run *r, lane *l, const AVFrame *f, const char *name)
{
    l->graph = avfilter_graph_alloc();
    AVBufferSrcParameters *par = av_buffersrc_parameters_alloc();
    int ret = AVERROR(ENOMEM);
    if (l->graph == NULL || par == NULL)
        goto done;
    l->graph->nb_threads = r->o->threads;
    l->src = avfilter_graph_alloc_filter(l->graph, avfilter_get_by_name(name), "in");
    if (l->src == NULL)
        goto done;
    par->format = f->format;
    par->time_base = l->ist->time_base;
    par->width = f->width;
    par->height = f->height;
    par->sample_aspect_ratio = f->sample_aspect_ratio;
    par->frame_rate = r->in_fps;
    par->sample_rate = f->sample_rate;
    ret = 0;
    if (name[0] == 'a' && f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&par->ch_layout, f->ch_layout.nb_channels);
    else if (name[0] == 'a')
        ret = av_channel_layout_copy(&par->ch_layout, &f->ch_layout);
    if (ret >= 0)
        ret = av_buffersrc_parameters_set(l->src, par);
    if (ret >= 0)
        ret = avfilter_init_str(l->src, NULL);
done:
    if (par != NULL)
        av_channel_layout_uninit(&par->ch_layout);
    av_free(par);
    return ret < 0 ? proc_err(r, ret, "filter graph") : BG_OK;
}

static bg_err build_video_graph(run *r, const AVFrame *f)
{
    lane *l = &r->v;
    bg_err err = new_source(r, l, f, "buffer");
    if (err != BG_OK)
        return err;
    char trim[128], fps[64] = "", desc[384];
    trim_desc(r, "trim", trim, sizeof(trim));
    if (r->cap.num)
        snprintf(fps, sizeof(fps), "fps=fps=%d/%d,", r->cap.num, r->cap.den);
    snprintf(desc, sizeof(desc), "%s%sscale=w=%d:h=%d:flags=bicubic,format=pix_fmts=yuv420p", trim,
             fps, r->out_w, r->out_h);
    return link_graph(r, l, desc, "buffersink");
}

static bg_err build_audio_graph(run *r, const AVFrame *f)
{
    lane *l = &r->a;
    bg_err err = new_source(r, l, f, "abuffer");
    if (err != BG_OK)
        return err;
    char trim[128], layout[64], desc[384];
    trim_desc(r, "atrim", trim, sizeof(trim));
    if (av_channel_layout_describe(&l->enc->ch_layout, layout, sizeof(layout)) < 0)
        return proc_err(r, AVERROR_BUG, "filter graph");
    snprintf(desc, sizeof(desc),
             "%saresample=%d,aformat=sample_fmts=fltp:sample_rates=%d:channel_layouts=%s", trim,
             l->enc->sample_rate, l->enc->sample_rate, layout);
    err = link_graph(r, l, desc, "abuffersink");
    if (err != BG_OK)
        return err;
    av_buffersink_set_frame_size(l->sink, AAC_FRAME);
    l->g_fmt = f->format;
    l->g_rate = f->sample_rate;
    av_channel_layout_uninit(&l->g_layout);
    return av_channel_layout_copy(&l->g_layout, &f->ch_layout) < 0
               ? proc_err(r, AVERROR(ENOMEM), "filter graph")
               : BG_OK;
}

/* ---- encoding -------------------------------------------------------- */

static double fraction(const run *r);

/* Muxes what the encoder has ready. Ticks per packet: at the end x264
 * drains its lookahead here, a frame's work per packet, and a slow preset
 * must still notice a cancel. */
static bg_err write_packets(run *r, lane *l)
{
    for (;;) {
        if (!media_ctl_tick(&r->ctl, fraction(r)))
            return canceled(r);
        int ret = avcodec_receive_packet(l->enc, r->opkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return BG_OK;
        if (ret < 0)
            return proc_err(r, ret, "encoding");
        r->opkt->stream_index = l->ost->index;
        av_packet_rescale_ts(r->opkt, l->enc->time_base, l->ost->time_base);
        ret = av_interleaved_write_frame(r->oc, r->opkt); /* takes the packet */
        if (ret < 0)
            return out_err(r, ret, "writing the output");
    }
}

/* Gives the encoder one filtered frame. Video frames whose timestamp does
 * not advance are dropped (x264 and the muxer need increasing ones); audio
 * timestamps are moved forward past any overlap, never back. */
static bg_err encode_frame(run *r, lane *l, AVFrame *f)
{
    int64_t pts = f->pts;
    if (pts == AV_NOPTS_VALUE)
        pts = l->frames > 0 ? l->last_out + 1 : 0;
    else
        pts = av_rescale_q(pts, av_buffersink_get_time_base(l->sink), l->enc->time_base);
    if (l == &r->v) {
        if (l->frames > 0 && pts <= l->last_out)
            return BG_OK;
        f->pict_type = AV_PICTURE_TYPE_NONE; /* the input's I-frames would force key frames */
        l->last_out = pts;
        r->out_s = pts * av_q2d(l->enc->time_base);
    } else {
        if (l->frames > 0 && pts < l->last_out)
            pts = l->last_out;
        l->last_out = pts + f->nb_samples;
    }
    f->pts = pts;
    l->frames++;
    int ret = avcodec_send_frame(l->enc, f);
    if (ret < 0)
        return proc_err(r, ret, "encoding");
    return write_packets(r, l);
}

/* Encodes what the graph has ready; its end marks the lane done. */
static bg_err pull(run *r, lane *l)
{
    for (;;) {
        int ret = av_buffersink_get_frame(l->sink, r->fframe);
        if (ret == AVERROR(EAGAIN))
            return BG_OK;
        if (ret == AVERROR_EOF) {
            l->done = true;
            return BG_OK;
        }
        if (ret < 0)
            return proc_err(r, ret, "filtering");
        bg_err err = encode_frame(r, l, r->fframe);
        av_frame_unref(r->fframe);
        if (err != BG_OK)
            return err;
    }
}

static bg_err close_graph(run *r, lane *l)
{
    if (l->graph == NULL || l->done)
        return BG_OK;
    int ret = av_buffersrc_add_frame_flags(l->src, NULL, 0);
    if (ret < 0)
        return proc_err(r, ret, "filtering");
    return pull(r, l);
}

/* A new audio format drains the old graph into the encoder, then builds
 * another; the new one starts where the old one stopped. */
static bg_err ensure_audio_graph(run *r, const AVFrame *f)
{
    lane *l = &r->a;
    if (l->graph != NULL && l->g_fmt == f->format && l->g_rate == f->sample_rate &&
        av_channel_layout_compare(&l->g_layout, &f->ch_layout) == 0)
        return BG_OK;
    bg_err err = close_graph(r, l);
    if (err != BG_OK)
        return err;
    avfilter_graph_free(&l->graph);
    l->done = false; /* the end we just pushed, not the trim's */
    return build_audio_graph(r, f);
}

static bool frame_ok(const lane *l, const run *r, const AVFrame *f)
{
    if (l == &r->v)
        return f->width > 0 && f->height > 0 && f->format >= 0;
    return f->nb_samples > 0 && f->sample_rate > 0 && f->format >= 0 &&
           f->ch_layout.nb_channels > 0 && f->ch_layout.nb_channels <= MAX_IN_CHANNELS;
}

/* Shifts the frame onto the output's timeline and filters it. */
static bg_err on_frame(run *r, lane *l, AVFrame *f)
{
    if (!frame_ok(l, r, f))
        return BG_OK;
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE)
        pts = l->next_in;
    AVRational step = l == &r->v ? av_inv_q(r->in_fps.num ? r->in_fps : (AVRational){25, 1})
                                 : (AVRational){f->nb_samples, f->sample_rate};
    l->next_in = pts + av_rescale_q(1, step, l->ist->time_base);
    f->pts = pts - l->shift;
    bg_err err = BG_OK;
    if (l == &r->a)
        err = ensure_audio_graph(r, f);
    else if (l->graph == NULL)
        err = build_video_graph(r, f);
    if (err != BG_OK || l->done)
        return err;
    int ret = av_buffersrc_add_frame_flags(l->src, f, 0); /* takes f's references */
    if (ret < 0)
        return proc_err(r, ret, "filtering");
    return pull(r, l);
}

/* Sends one packet (NULL: drain) and filters every frame it yields. A
 * packet or frame the decoder rejects is skipped, as the ffmpeg tool does. */
static bg_err decode(run *r, lane *l, const AVPacket *pkt)
{
    int ret = avcodec_send_packet(l->dec, pkt);
    if (ret == AVERROR(ENOMEM))
        return in_err(r, ret, "decoding");
    if (ret < 0 && ret != AVERROR_EOF)
        return BG_OK;
    while (!l->done) {
        ret = avcodec_receive_frame(l->dec, r->dframe);
        if (ret == AVERROR(ENOMEM))
            return in_err(r, ret, "decoding");
        if (ret < 0) /* EAGAIN, EOF, or a corrupt frame */
            return BG_OK;
        if (l == &r->v)
            r->decoded = true;
        bg_err err = on_frame(r, l, r->dframe);
        av_frame_unref(r->dframe);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

/* ---- the pipeline ---------------------------------------------------- */

static double fraction(const run *r)
{
    if (r->target_s > 0)
        return r->out_s / r->target_s;
    int64_t pos = avio_tell(r->in.pb);
    return r->in.size > 0 && pos > 0 ? (double)pos / (double)r->in.size : 0.0;
}

static bool all_done(const run *r)
{
    return r->v.done && (r->a.ist == NULL || r->a.done);
}

static lane *lane_of(run *r, int stream_index)
{
    if (stream_index == r->v.ist->index)
        return &r->v;
    if (r->a.ist != NULL && stream_index == r->a.ist->index)
        return &r->a;
    return NULL;
}

static bg_err pump(run *r)
{
    while (!all_done(r)) {
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
        lane *l = lane_of(r, r->ipkt->stream_index);
        bg_err err = BG_OK;
        if (l != NULL && !l->done)
            err = decode(r, l, r->ipkt);
        av_packet_unref(r->ipkt);
        if (err != BG_OK)
            return err;
    }
    return r->ctl.canceled ? canceled(r) : BG_OK;
}

/* Drains one lane: decoder, graph, then encoder (B-frames and lookahead). */
static bg_err flush_lane(run *r, lane *l)
{
    if (l->ist == NULL)
        return BG_OK;
    bg_err err = l->done ? BG_OK : decode(r, l, NULL);
    if (err == BG_OK)
        err = close_graph(r, l);
    if (err != BG_OK)
        return err;
    int ret = avcodec_send_frame(l->enc, NULL);
    if (ret < 0 && ret != AVERROR_EOF)
        return proc_err(r, ret, "encoding");
    return write_packets(r, l);
}

static bg_err no_frames(run *r)
{
    /* Frames decoded but none passed the trims: the window is empty (a
     * start past the end of a file whose duration was unknown, or a
     * duration shorter than one frame). */
    if (r->decoded)
        return bad_opts(r->e, "the start and duration select no video frame");
    if (r->o->start_s > 0 && !(r->avail_s > 0))
        return bad_opts(r->e, "start is at or past the end of the input");
    media_err(r->e, "INVALID_INPUT", "no video could be decoded");
    return BG_EMEDIA;
}

static bg_err finish(run *r)
{
    bg_err err = flush_lane(r, &r->v);
    if (err == BG_OK)
        err = flush_lane(r, &r->a);
    if (err != BG_OK)
        return err;
    if (r->v.frames == 0)
        return no_frames(r);
    if (!media_ctl_tick(&r->ctl, fraction(r)))
        return canceled(r);
    int ret = av_write_trailer(r->oc); /* with faststart, rewrites the file: interruptible */
    if (ret < 0)
        return out_err(r, ret, "writing the output");
    ret = avio_closep(&r->oc->pb);
    return ret < 0 ? out_err(r, ret, "writing the output") : BG_OK;
}

static bg_err describe_output(run *r, json_t **meta_out)
{
    json_t *p = NULL;
    bg_media_err pe;
    if (bg_media_probe(r->part, &p, &pe) != BG_OK) {
        media_err(r->e, "PROCESSING_ERROR", "the encoded output cannot be read back: %s",
                  pe.message);
        return BG_EMEDIA;
    }
    static const char *const keys[] = {"duration",    "width",    "height", "frame_rate",
                                       "video_codec", "bit_rate", "size"};
    json_t *m = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(p, keys[i]);
        json_object_set(m, keys[i], v != NULL ? v : json_null());
    }
    json_t *ac = json_object_get(p, "audio_codec");
    json_object_set(m, "audio_codec", ac != NULL ? ac : json_null());
    json_decref(p);
    *meta_out = m;
    return BG_OK;
}

static void lane_free(lane *l)
{
    avfilter_graph_free(&l->graph);
    avcodec_free_context(&l->enc);
    avcodec_free_context(&l->dec);
    av_channel_layout_uninit(&l->g_layout);
}

static void run_free(run *r)
{
    if (r->oc != NULL) {
        avio_closep(&r->oc->pb);
        avformat_free_context(r->oc);
        r->oc = NULL;
    }
    lane_free(&r->v);
    lane_free(&r->a);
    av_packet_free(&r->ipkt);
    av_packet_free(&r->opkt);
    av_frame_free(&r->dframe);
    av_frame_free(&r->fframe);
    media_input_close(&r->in);
}

static bg_err prepare(run *r)
{
    bg_err err = select_streams(r);
    if (err == BG_OK)
        err = open_decoder(r, &r->v);
    if (err == BG_OK && r->a.ist != NULL)
        err = open_decoder(r, &r->a);
    if (err == BG_OK)
        err = plan_times(r);
    if (err == BG_OK)
        err = plan_size(r);
    if (err != BG_OK)
        return err;
    r->v.shift = av_rescale_q(r->t0, AV_TIME_BASE_Q, r->v.ist->time_base);
    if (r->a.ist != NULL)
        r->a.shift = av_rescale_q(r->t0, AV_TIME_BASE_Q, r->a.ist->time_base);
    r->ipkt = av_packet_alloc();
    r->opkt = av_packet_alloc();
    r->dframe = av_frame_alloc();
    r->fframe = av_frame_alloc();
    if (!r->ipkt || !r->opkt || !r->dframe || !r->fframe)
        return proc_err(r, AVERROR(ENOMEM), "buffers");
    return BG_OK;
}

static bg_err transcode(run *r, const char *in)
{
    bg_err err = media_input_open(&r->in, in, &r->ctl, r->e);
    if (err == BG_OK)
        err = prepare(r);
    if (err == BG_OK)
        err = open_output(r);
    if (err == BG_OK)
        err = open_video_encoder(r);
    if (err == BG_OK && r->a.ist != NULL)
        err = open_audio_encoder(r);
    if (err == BG_OK)
        err = seek_start(r);
    if (err == BG_OK)
        err = start_output(r);
    if (err == BG_OK)
        err = pump(r);
    if (err == BG_OK)
        err = finish(r);
    return err;
}

bg_err bg_media_video_encode(const char *in, const char *out, const bg_video_encode_opts *o,
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
