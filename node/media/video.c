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
 *
 * This file holds the options, the input side and the pipeline; the output
 * side (muxer, encoders, filter graphs) is video_out.c.
 */
#include "video_internal.h"

static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster",  "fast",
                                      "medium",    "slow",      "slower",   "veryslow"};

void bg_video_encode_opts_init(bg_video_encode_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->crf = -1;
}

/* ---- errors ---------------------------------------------------------- */

bg_err bg_vid_canceled(run *r)
{
    media_err(r->e, "CANCELED", "bg_vid_canceled");
    return BG_EBUSY;
}

static bg_err bad_opts(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_OPTIONS", "%s", msg);
    return BG_EINVAL;
}

bg_err bg_vid_in_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return bg_vid_canceled(r);
    return media_input_averr(ret, what, r->e);
}

bg_err bg_vid_proc_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return bg_vid_canceled(r);
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, r->e);
    media_err_av(r->e, "PROCESSING_ERROR", what, ret);
    return BG_EMEDIA;
}

bg_err bg_vid_out_err(run *r, int ret, const char *what)
{
    if (r->ctl.canceled || ret == AVERROR_EXIT)
        return bg_vid_canceled(r);
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
        return bg_vid_in_err(r, ret, "stream info");
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
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(l->dec, par);
    if (ret < 0)
        return bg_vid_proc_err(r, ret, "decoder");
    l->dec->pkt_timebase = l->ist->time_base;
    l->dec->max_pixels = MAX_IN_PIXELS; /* frames that grow past it later fail to decode */
    /* Video decoding is half the work: frame threads on every core, as the
     * ffmpeg tool sets them ("threads auto"). */
    l->dec->thread_count = l == &r->v ? r->o->threads : 1;
    ret = avcodec_open2(l->dec, codec, NULL);
    return ret < 0 ? bg_vid_in_err(r, ret, "decoder") : BG_OK;
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
            return bg_vid_in_err(r, ret, "seek");
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
            return bg_vid_in_err(r, ret, "seek");
        if (ret < 0 || i == SEEK_TRIES)
            return BG_OK;
        int64_t key;
        bg_err err = first_key(r, &key);
        if (err != BG_OK)
            return err;
        if (key == AV_NOPTS_VALUE || key <= r->t0) { /* back to that spot */
            ret = avformat_seek_file(r->in.ic, -1, INT64_MIN, target, target, 0);
            return ret == AVERROR_EXIT || r->ctl.canceled ? bg_vid_in_err(r, ret, "seek") : BG_OK;
        }
        target -= (int64_t)AV_TIME_BASE << i;
    }
}

/* ---- the pipeline ---------------------------------------------------- */

double bg_vid_fraction(const run *r)
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
        if (!media_ctl_tick(&r->ctl, bg_vid_fraction(r)))
            return bg_vid_canceled(r);
        int ret = av_read_frame(r->in.ic, r->ipkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            if (r->ctl.canceled || ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || !r->decoded)
                return bg_vid_in_err(r, ret, "reading the input");
            break; /* a corrupt or truncated tail: keep what decoded */
        }
        lane *l = lane_of(r, r->ipkt->stream_index);
        bg_err err = BG_OK;
        if (l != NULL && !l->done)
            err = bg_vid_decode(r, l, r->ipkt);
        av_packet_unref(r->ipkt);
        if (err != BG_OK)
            return err;
    }
    return r->ctl.canceled ? bg_vid_canceled(r) : BG_OK;
}

/* Drains one lane: decoder, graph, then encoder (B-frames and lookahead). */
static bg_err flush_lane(run *r, lane *l)
{
    if (l->ist == NULL)
        return BG_OK;
    bg_err err = l->done ? BG_OK : bg_vid_decode(r, l, NULL);
    if (err == BG_OK)
        err = bg_vid_close_graph(r, l);
    if (err != BG_OK)
        return err;
    int ret = avcodec_send_frame(l->enc, NULL);
    if (ret < 0 && ret != AVERROR_EOF)
        return bg_vid_proc_err(r, ret, "encoding");
    return bg_vid_write_packets(r, l);
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
    if (!media_ctl_tick(&r->ctl, bg_vid_fraction(r)))
        return bg_vid_canceled(r);
    int ret = av_write_trailer(r->oc); /* with faststart, rewrites the file: interruptible */
    if (ret < 0)
        return bg_vid_out_err(r, ret, "writing the output");
    ret = avio_closep(&r->oc->pb);
    return ret < 0 ? bg_vid_out_err(r, ret, "writing the output") : BG_OK;
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
        err = bg_vid_plan_size(r);
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
        return bg_vid_proc_err(r, AVERROR(ENOMEM), "buffers");
    return BG_OK;
}

static bg_err transcode(run *r, const char *in)
{
    bg_err err = media_input_open(&r->in, in, &r->ctl, r->e);
    if (err == BG_OK)
        err = prepare(r);
    if (err == BG_OK)
        err = bg_vid_open_output(r);
    if (err == BG_OK)
        err = bg_vid_open_video_encoder(r);
    if (err == BG_OK && r->a.ist != NULL)
        err = bg_vid_open_audio_encoder(r);
    if (err == BG_OK)
        err = seek_start(r);
    if (err == BG_OK)
        err = bg_vid_start_output(r);
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
        err = bg_vid_canceled(&r);
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
