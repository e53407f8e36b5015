/*
 * node/media/video_out.c — the output side of bg_media_video_encode: the mp4
 * muxer, the x264 and aac encoders, the filter graphs and the path of a
 * decoded frame through them.
 */
#include "video_internal.h"

/* ---- output side ----------------------------------------------------- */

/* Width and height as scale=W:-2 computes them: the missing side keeps the
 * input's pixel aspect, rounded to the nearest even number. */
bg_err bg_vid_plan_size(run *r)
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

bg_err bg_vid_open_output(run *r)
{
    /* The faststart pass reopens the file by this url, through the whitelist. */
    char *url = av_asprintf("file:%s", r->part);
    if (url == NULL)
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "muxer");
    int ret = avformat_alloc_output_context2(&r->oc, NULL, "mp4", url);
    av_free(url);
    if (ret < 0)
        return bg_vid_proc_err(r, ret, "muxer");
    r->oc->interrupt_callback = (AVIOInterruptCB){media_interrupt_cb, &r->ctl};
    r->oc->protocol_whitelist = av_strdup("file");
    if (r->oc->protocol_whitelist == NULL)
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "muxer");
    return BG_OK;
}

/* Adds the lane's stream to the muxer; its encoder is open. */
static bg_err add_stream(run *r, lane *l)
{
    l->ost = avformat_new_stream(r->oc, NULL);
    if (l->ost == NULL)
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "muxer");
    int ret = avcodec_parameters_from_context(l->ost->codecpar, l->enc);
    if (ret < 0)
        return bg_vid_proc_err(r, ret, "muxer");
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

bg_err bg_vid_open_video_encoder(run *r)
{
    lane *l = &r->v;
    l->enc = avcodec_alloc_context3(r->venc);
    if (l->enc == NULL)
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "encoder");
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
        return bg_vid_proc_err(r, ret, "opening the video encoder");
    return add_stream(r, l);
}

static bool rate_supported(const AVCodec *c, int rate)
{
    for (const int *p = c->supported_samplerates; p != NULL && *p != 0; p++)
        if (*p == rate)
            return true;
    return false;
}

bg_err bg_vid_open_audio_encoder(run *r)
{
    lane *l = &r->a;
    l->enc = avcodec_alloc_context3(r->aenc);
    if (l->enc == NULL)
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "encoder");
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
        return bg_vid_proc_err(r, ret, "opening the audio encoder");
    return add_stream(r, l);
}

/* Creates out.part and writes the header; the encoders are open. */
bg_err bg_vid_start_output(run *r)
{
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret =
        avio_open2(&r->oc->pb, r->oc->url, AVIO_FLAG_WRITE, &r->oc->interrupt_callback, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return bg_vid_out_err(r, ret, "output cannot be created");
    r->part_made = true;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(r->oc, &opts);
    av_dict_free(&opts);
    return ret < 0 ? bg_vid_out_err(r, ret, "writing the output") : BG_OK;
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
    return ret < 0 ? bg_vid_proc_err(r, ret, "filter graph") : BG_OK;
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
    return ret < 0 ? bg_vid_proc_err(r, ret, "filter graph") : BG_OK;
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
        return bg_vid_proc_err(r, AVERROR_BUG, "filter graph");
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
               ? bg_vid_proc_err(r, AVERROR(ENOMEM), "filter graph")
               : BG_OK;
}

/* ---- encoding -------------------------------------------------------- */

double bg_vid_fraction(const run *r);

/* Muxes what the encoder has ready. Ticks per packet: at the end x264
 * drains its lookahead here, a frame's work per packet, and a slow preset
 * must still notice a cancel. */
bg_err bg_vid_write_packets(run *r, lane *l)
{
    for (;;) {
        if (!media_ctl_tick(&r->ctl, bg_vid_fraction(r)))
            return bg_vid_canceled(r);
        int ret = avcodec_receive_packet(l->enc, r->opkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return BG_OK;
        if (ret < 0)
            return bg_vid_proc_err(r, ret, "encoding");
        r->opkt->stream_index = l->ost->index;
        av_packet_rescale_ts(r->opkt, l->enc->time_base, l->ost->time_base);
        ret = av_interleaved_write_frame(r->oc, r->opkt); /* takes the packet */
        if (ret < 0)
            return bg_vid_out_err(r, ret, "writing the output");
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
        return bg_vid_proc_err(r, ret, "encoding");
    return bg_vid_write_packets(r, l);
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
            return bg_vid_proc_err(r, ret, "filtering");
        bg_err err = encode_frame(r, l, r->fframe);
        av_frame_unref(r->fframe);
        if (err != BG_OK)
            return err;
    }
}

bg_err bg_vid_close_graph(run *r, lane *l)
{
    if (l->graph == NULL || l->done)
        return BG_OK;
    int ret = av_buffersrc_add_frame_flags(l->src, NULL, 0);
    if (ret < 0)
        return bg_vid_proc_err(r, ret, "filtering");
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
    bg_err err = bg_vid_close_graph(r, l);
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
        return bg_vid_proc_err(r, ret, "filtering");
    return pull(r, l);
}

/* Sends one packet (NULL: drain) and filters every frame it yields. A
 * packet or frame the decoder rejects is skipped, as the ffmpeg tool does. */
bg_err bg_vid_decode(run *r, lane *l, const AVPacket *pkt)
{
    int ret = avcodec_send_packet(l->dec, pkt);
    if (ret == AVERROR(ENOMEM))
        return bg_vid_in_err(r, ret, "decoding");
    if (ret < 0 && ret != AVERROR_EOF)
        return BG_OK;
    while (!l->done) {
        ret = avcodec_receive_frame(l->dec, r->dframe);
        if (ret == AVERROR(ENOMEM))
            return bg_vid_in_err(r, ret, "decoding");
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

