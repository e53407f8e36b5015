/*
 * node/media/image.c — still pictures: bg_media_thumbs (frames of a video at
 * given times), bg_media_image_resize (the first picture of a file, scaled,
 * cropped or stretched) and bg_media_image_write (raw pixels to a file).
 *
 * All three end in the same place: libswscale converts the picture to the
 * encoder's pixel format at the wanted size, one libavcodec image encoder
 * (mjpeg, png, libwebp) makes one packet, and the packet is written to
 * <out>.part, renamed when the robot's work is complete. The input side
 * (opening by content, decoding, seeking) is image_input.c.
 */
#include "image_internal.h"
typedef struct fmt_info {
    const char *name, *ext, *mime, *encoder;
    int default_q;
} fmt_info;

static const fmt_info fmts[] = {
    [BG_IMAGE_JPEG] = {"jpeg", "jpg", "image/jpeg", "mjpeg", 85},
    [BG_IMAGE_PNG] = {"png", "png", "image/png", "png", 0},
    [BG_IMAGE_WEBP] = {"webp", "webp", "image/webp", "libwebp", 80},
};

static const fmt_info *fmt_of(bg_image_format f)
{
    return (unsigned)f < sizeof(fmts) / sizeof(fmts[0]) ? &fmts[f] : NULL;
}

bool bg_image_format_parse(const char *name, bg_image_format *out)
{
    if (name == NULL)
        return false;
    if (strcmp(name, "jpg") == 0)
        name = "jpeg";
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
        if (strcmp(name, fmts[i].name) == 0) {
            *out = (bg_image_format)i;
            return true;
        }
    return false;
}

const char *bg_image_format_ext(bg_image_format f)
{
    return fmt_of(f) ? fmt_of(f)->ext : "bin";
}

const char *bg_image_format_mime(bg_image_format f)
{
    return fmt_of(f) ? fmt_of(f)->mime : "application/octet-stream";
}

bool bg_image_fit_parse(const char *name, bg_image_fit *out)
{
    static const char *const names[] = {"contain", "cover", "fill"};
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (bg_image_fit)i;
            return true;
        }
    return false;
}

/* ---- errors ---------------------------------------------------------- */

bg_err bg_img_canceled(bg_media_err *e)
{
    media_err(e, "CANCELED", "bg_img_canceled");
    return BG_EBUSY;
}

static bg_err bad_opts(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_OPTIONS", "%s", msg);
    return BG_EINVAL;
}

bg_err bg_img_bad_input(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_INPUT", "%s", msg);
    return BG_EMEDIA;
}

bg_err bg_img_proc_err(bg_media_err *e, int ret, const char *what)
{
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, e);
    media_err_av(e, "PROCESSING_ERROR", what, ret);
    return BG_EMEDIA;
}

static bool quality_ok(int q)
{
    return q >= 0 && q <= 100;
}

/* ---- encoding one picture to a file ---------------------------------- */

static bool has_alpha(int pix_fmt)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(pix_fmt);
    return d != NULL && (d->flags & AV_PIX_FMT_FLAG_ALPHA);
}

static enum AVPixelFormat out_pix_fmt(bg_image_format f, bool alpha)
{
    if (f == BG_IMAGE_JPEG)
        return AV_PIX_FMT_YUVJ420P;
    if (f == BG_IMAGE_PNG)
        return alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
    return alpha ? AV_PIX_FMT_YUVA420P : AV_PIX_FMT_YUV420P;
}

/* Writes every packet the encoder gives to path; *made once the file exists. */
static bg_err write_packets(AVCodecContext *c, AVPacket *pkt, const char *path, bool *made,
                            int64_t *size, bg_media_err *e)
{
    FILE *fp = fopen(path, "wb");
    if (fp == NULL) {
        media_err(e, "OUTPUT_ERROR", "output cannot be created: %s", strerror(errno));
        return BG_EIO;
    }
    *made = true;
    int64_t total = 0;
    bool ok = true;
    int ret;
    while ((ret = avcodec_receive_packet(c, pkt)) >= 0) {
        ok = ok && fwrite(pkt->data, 1, (size_t)pkt->size, fp) == (size_t)pkt->size;
        total += pkt->size;
        av_packet_unref(pkt);
    }
    int saved = errno;
    if (fclose(fp) != 0 || !ok) {
        media_err(e, "OUTPUT_ERROR", "output cannot be written: %s", strerror(ok ? errno : saved));
        return BG_EIO;
    }
    if (ret != AVERROR_EOF)
        return bg_img_proc_err(e, ret, "encoding the picture");
    if (total == 0)
        return bg_img_proc_err(e, AVERROR_BUG, "the encoder gave no picture");
    *size = total;
    return BG_OK;
}

/* Encodes f (already in the encoder's pixel format) to path. Quality maps
 * 1..100 to mjpeg's qscale 31..2 or to libwebp's quality directly. */
static bg_err encode_write(AVFrame *f, bg_image_format fmt, int quality, const char *path,
                           bool *made, int64_t *size, bg_media_err *e)
{
    const fmt_info *fi = fmt_of(fmt);
    const AVCodec *codec = avcodec_find_encoder_by_name(fi->encoder);
    if (codec == NULL) {
        media_err(e, "PROCESSING_ERROR", "encoder %s is not available", fi->encoder);
        return BG_EMEDIA;
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    bg_err err = BG_OK;
    if (c == NULL || pkt == NULL) {
        err = bg_img_proc_err(e, AVERROR(ENOMEM), "encoder");
        goto done;
    }
    int q = quality > 0 ? quality : fi->default_q;
    c->width = f->width;
    c->height = f->height;
    c->pix_fmt = f->format;
    c->time_base = (AVRational){1, 25};
    c->thread_count = 1;
    if (fmt == BG_IMAGE_JPEG) {
        c->color_range = AVCOL_RANGE_JPEG;
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * (2 + (int)lround((100 - q) * 29.0 / 99.0));
    } else if (fmt == BG_IMAGE_WEBP) {
        c->global_quality = FF_QP2LAMBDA * q;
    }
    f->quality = c->global_quality;
    f->pts = 0;
    int ret = avcodec_open2(c, codec, NULL);
    if (ret >= 0)
        ret = avcodec_send_frame(c, f);
    if (ret >= 0)
        ret = avcodec_send_frame(c, NULL);
    if (ret < 0)
        err = bg_img_proc_err(e, ret, "encoding the picture");
    else
        err = write_packets(c, pkt, path, made, size, e);
done:
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    return err;
}

static int sws_space(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709:
        return SWS_CS_ITU709;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return SWS_CS_BT2020;
    case AVCOL_SPC_SMPTE240M:
        return SWS_CS_SMPTE240M;
    case AVCOL_SPC_FCC:
        return SWS_CS_FCC;
    default:
        return SWS_CS_DEFAULT;
    }
}

/* swscale guesses range and matrix from the pixel formats alone; a YUV
 * source tells its own (full-range h264, BT.709 HD), as the ffmpeg tool's
 * scale filter reads them from the frame. */
static void set_colorspace(struct SwsContext *s, const AVFrame *src)
{
    int *inv, *tab, srcr, dstr, bri, con, sat;
    if (sws_getColorspaceDetails(s, &inv, &srcr, &tab, &dstr, &bri, &con, &sat) < 0)
        return;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src->format);
    if (d == NULL || (d->flags & AV_PIX_FMT_FLAG_RGB) || d->nb_components < 3)
        return;
    if (src->color_range == AVCOL_RANGE_JPEG)
        srcr = 1;
    inv = (int *)sws_getCoefficients(sws_space(src->colorspace));
    sws_setColorspaceDetails(s, inv, srcr, tab, dstr, bri, con, sat);
}

/* *out = src scaled (bicubic, as the ffmpeg tool's default) to w × h in fmt. */
static bg_err scale(struct SwsContext **sws, const AVFrame *src, int w, int h,
                    enum AVPixelFormat fmt, AVFrame **out, bg_media_err *e)
{
    AVFrame *d = av_frame_alloc();
    if (d == NULL)
        return bg_img_proc_err(e, AVERROR(ENOMEM), "scaling");
    d->width = w;
    d->height = h;
    d->format = fmt;
    int ret = av_frame_get_buffer(d, 0);
    if (ret < 0) {
        av_frame_free(&d);
        return bg_img_proc_err(e, ret, "scaling");
    }
    *sws = sws_getCachedContext(*sws, src->width, src->height, src->format, w, h, fmt,
                                SWS_BICUBIC, NULL, NULL, NULL);
    if (*sws == NULL) {
        av_frame_free(&d);
        media_err(e, "PROCESSING_ERROR", "cannot convert pixel format %s",
                  av_get_pix_fmt_name(src->format) ? av_get_pix_fmt_name(src->format) : "?");
        return BG_EMEDIA;
    }
    set_colorspace(*sws, src);
    ret = sws_scale(*sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
                    d->data, d->linesize);
    if (ret < 0) {
        av_frame_free(&d);
        return bg_img_proc_err(e, ret, "scaling");
    }
    *out = d;
    return BG_OK;
}

/* JPEG has no alpha: composite onto white rather than let the hidden
 * colour of transparent pixels show. */
static void flatten_white(AVFrame *rgba)
{
    for (int y = 0; y < rgba->height; y++) {
        uint8_t *p = rgba->data[0] + (ptrdiff_t)y * rgba->linesize[0];
        for (int x = 0; x < rgba->width; x++, p += 4) {
            unsigned a = p[3], na = 255 - a;
            for (int c = 0; c < 3; c++)
                p[c] = (uint8_t)((p[c] * a + 255 * na + 127) / 255);
            p[3] = 255;
        }
    }
}

static void picture_fini(picture *p)
{
    sws_freeContext(p->sws);
    sws_freeContext(p->sws2);
}

/* Scales src to w × h, encodes it and writes path. */
static bg_err picture_write(picture *p, const AVFrame *src, int w, int h, bg_image_format fmt,
                            int quality, const char *path, bool *made, int64_t *size,
                            bg_media_err *e)
{
    bool alpha = has_alpha(src->format);
    AVFrame *a = NULL, *b = NULL;
    bg_err err;
    if (fmt == BG_IMAGE_JPEG && alpha) {
        err = scale(&p->sws, src, w, h, AV_PIX_FMT_RGBA, &a, e);
        if (err == BG_OK) {
            flatten_white(a);
            err = scale(&p->sws2, a, w, h, AV_PIX_FMT_YUVJ420P, &b, e);
        }
    } else {
        err = scale(&p->sws, src, w, h, out_pix_fmt(fmt, alpha), &b, e);
    }
    if (err == BG_OK)
        err = encode_write(b, fmt, quality, path, made, size, e);
    av_frame_free(&a);
    av_frame_free(&b);
    return err;
}

/* ---- thumbnails ------------------------------------------------------ */

typedef struct target {
    double t;
    size_t idx; /* in the caller's order */
} target;

typedef struct thumbs_run {
    vin v;
    const bg_thumbs_opts *o;
    picture pic;
    bg_media_thumb *outs;
    size_t n;
    target *tg;        /* sorted by time */
    AVFrame *cur;      /* the frame being looked at */
    AVFrame *last;     /* the newest frame decoded before cur, or the last one taken */
    double last_t;     /* its time; -INFINITY when none since the start or a seek */
    bool last_taken;   /* last is the frame taken for the previous target */
    bool *made;        /* per output: its .part exists */
} thumbs_run;

static int cmp_target(const void *a, const void *b)
{
    const target *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static bg_err check_thumbs_opts(const char *in, const char *dir, const char *stem,
                                const bg_thumbs_opts *o, bg_media_err *e)
{
    if (in == NULL || dir == NULL || stem == NULL || o == NULL)
        return bad_opts(e, "input, output directory, stem and options are required");
    if (stem[0] == '\0' || strchr(stem, '/') != NULL || strlen(stem) > MAX_STEM)
        return bad_opts(e, "the output stem must be 1-200 bytes without '/'");
    if (fmt_of(o->format) == NULL)
        return bad_opts(e, "format must be jpeg, png or webp");
    if (o->n_offsets > BG_THUMBS_MAX || (o->n_offsets > 0 && o->offsets == NULL))
        return bad_opts(e, "at most 100 offsets");
    if (o->n_offsets == 0 && (o->count < 1 || o->count > BG_THUMBS_MAX))
        return bad_opts(e, "count must be 1..100");
    for (size_t i = 0; i < o->n_offsets; i++)
        if (!isfinite(o->offsets[i]) || o->offsets[i] < 0 || o->offsets[i] > MAX_OFFSET_S)
            return bad_opts(e, "offsets must be seconds >= 0");
    if (o->width != 0 && (o->width < 16 || o->width > BG_IMAGE_MAX_DIM))
        return bad_opts(e, "width must be 0 or 16..8192");
    if (!quality_ok(o->quality))
        return bad_opts(e, "quality must be 0..100");
    return BG_OK;
}

/* Names, paths and times of every output, in the caller's order. */
static bg_err plan_thumbs(thumbs_run *r, const char *dir, const char *stem, bg_media_err *e)
{
    const bg_thumbs_opts *o = r->o;
    double dur = r->v.duration;
    r->n = o->n_offsets > 0 ? o->n_offsets : (size_t)o->count;
    if (o->n_offsets == 0 && dur <= 0 && r->n > 1)
        return bg_img_bad_input(e, "the video's duration is unknown: give offsets");
    r->outs = bg_xcalloc(r->n, sizeof(*r->outs));
    r->tg = bg_xcalloc(r->n, sizeof(*r->tg));
    r->made = bg_xcalloc(r->n, sizeof(*r->made));
    for (size_t i = 0; i < r->n; i++) {
        double t = o->n_offsets > 0 ? o->offsets[i] : (i + 0.5) * dur / (double)r->n;
        if (o->n_offsets > 0 && dur > 0 && t >= dur)
            return bad_opts(e, "an offset is at or past the end of the video");
        bg_media_thumb *th = &r->outs[i];
        snprintf(th->name, sizeof(th->name), "%s-%zu.%s", stem, i + 1, fmt_of(o->format)->ext);
        int w = snprintf(th->path, sizeof(th->path), "%s/%s", dir, th->name);
        if (w < 0 || (size_t)w + 5 >= sizeof(th->path))
            return bad_opts(e, "output path too long");
        th->offset = t;
        r->tg[i] = (target){t, i};
    }
    qsort(r->tg, r->n, sizeof(*r->tg), cmp_target);
    return BG_OK;
}

/* Whether reaching t needs a seek: it does when a keyframe lies between the
 * newest decoded frame and t, since decoding on would only get there later. */
static bool should_seek(const thumbs_run *r, double t)
{
    double here = r->last_t == -INFINITY ? 0.0 : r->last_t;
    if (r->last_t > t)
        return true;
    const AVIndexEntry *ie = avformat_index_get_entry_from_timestamp(
        r->v.st, bg_img_stream_ts(&r->v, t), AVSEEK_FLAG_BACKWARD);
    if (ie == NULL)
        return t - here > NO_INDEX_GAP_S;
    double kf = ie->timestamp * av_q2d(r->v.st->time_base) - r->v.origin;
    return kf > here + TIME_EPS_S;
}

static void keep_as_last(thumbs_run *r, double t, bool taken)
{
    av_frame_unref(r->last);
    av_frame_move_ref(r->last, r->cur);
    r->last_t = isnan(t) ? r->last_t : t;
    r->last_taken = taken;
}

/* Seeks for t from seek_t; the frames held belong to the old position. */
static bg_err seek_to(thumbs_run *r, double seek_t, bool *seeked)
{
    bg_err err = bg_img_vin_seek(&r->v, seek_t, seeked);
    if (err == BG_OK && *seeked) {
        av_frame_unref(r->last);
        r->last_t = -INFINITY;
        r->last_taken = false;
    }
    return err;
}

/* After a seek, the first frame should be at or before t. Containers
 * without a keyframe index (mpeg-ts) seek by timestamp to any packet, and
 * the decoder then waits for the next keyframe, which may lie past t; the
 * seek is then retried from further back (1 s, 2 s, 4 s...) until it lands
 * early enough or at the start. */
static bool overshot(const thumbs_run *r, bool seeked, double seek_t, double t, bg_err err)
{
    if (!seeked || seek_t <= 0 || r->last_t != -INFINITY)
        return false;
    if (err == BG_ENOTFOUND)
        return true;
    double ft = bg_img_frame_time(&r->v, r->cur);
    return err == BG_OK && !isnan(ft) && ft > t + TIME_EPS_S;
}

/* Leaves in r->last the first frame at or after t (the video's last frame
 * when t falls inside it). k: how many thumbnails are done, for progress. */
static bg_err reach(thumbs_run *r, double t, size_t k)
{
    if (r->last_taken && r->last_t >= t - TIME_EPS_S)
        return BG_OK; /* two offsets inside one frame */
    bool seeked = false;
    double seek_t = t, back = 1.0;
    r->v.skip_before = t - SKIP_MARGIN_S;
    bg_err err = should_seek(r, t) ? seek_to(r, seek_t, &seeked) : BG_OK;
    while (err == BG_OK) {
        err = bg_img_vin_read(&r->v, r->cur);
        if (overshot(r, seeked, seek_t, t, err)) {
            av_frame_unref(r->cur);
            seek_t = fmax(0.0, t - back);
            back *= 2;
            err = seek_to(r, seek_t, &seeked);
            continue;
        }
        if (err == BG_ENOTFOUND) {
            if (r->last->buf[0] == NULL)
                return bg_img_bad_input(r->v.e, "no frame could be decoded");
            r->last_taken = true;
            return BG_OK;
        }
        if (err != BG_OK)
            return err;
        double ft = bg_img_frame_time(&r->v, r->cur);
        bool hit = isnan(ft) || ft >= t - TIME_EPS_S;
        keep_as_last(r, ft, hit);
        double within = t > 0 && !isnan(ft) ? ft / t : 1.0;
        r->v.frac = (k + fmin(fmax(within, 0.0), 1.0)) / (double)r->n;
        if (hit)
            return BG_OK;
    }
    return err;
}

/* Display size for the wanted width: sample aspect applied, height even. */
static void thumb_size(const bg_thumbs_opts *o, const AVFrame *f, int *w, int *h)
{
    double sar = f->sample_aspect_ratio.num > 0 && f->sample_aspect_ratio.den > 0
                     ? av_q2d(f->sample_aspect_ratio)
                     : 1.0;
    *w = o->width > 0 ? o->width : f->width;
    long long hh = 2 * llround((double)*w * f->height / (f->width * sar * 2.0));
    *h = (int)(hh < 2 ? 2 : hh > BG_IMAGE_MAX_DIM ? BG_IMAGE_MAX_DIM : hh);
}

static bg_err write_thumb(thumbs_run *r, size_t idx)
{
    bg_media_thumb *th = &r->outs[idx];
    char part[sizeof(th->path) + 8];
    snprintf(part, sizeof(part), "%s.part", th->path);
    thumb_size(r->o, r->last, &th->width, &th->height);
    th->time = r->last_t == -INFINITY ? 0.0 : r->last_t;
    return picture_write(&r->pic, r->last, th->width, th->height, r->o->format, r->o->quality,
                         part, &r->made[idx], &th->size, r->v.e);
}

static bg_err take_all(thumbs_run *r)
{
    for (size_t k = 0; k < r->n; k++) {
        bg_err err = reach(r, r->tg[k].t, k);
        if (err == BG_OK)
            err = write_thumb(r, r->tg[k].idx);
        if (err == BG_OK && !media_ctl_tick(&r->v.ctl, (k + 1.0) / r->n))
            err = bg_img_canceled(r->v.e);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

/* Renames every .part, or removes every file of this call. */
static bg_err publish_thumbs(thumbs_run *r, bg_err err)
{
    size_t renamed = 0;
    char part[sizeof(r->outs[0].path) + 8];
    for (; err == BG_OK && renamed < r->n; renamed++) {
        snprintf(part, sizeof(part), "%s.part", r->outs[renamed].path);
        if (rename(part, r->outs[renamed].path) != 0) {
            media_err(r->v.e, "OUTPUT_ERROR", "output cannot be renamed into place: %s",
                      strerror(errno));
            err = BG_EIO;
            break;
        }
    }
    if (err == BG_OK)
        return BG_OK;
    for (size_t i = 0; r->made != NULL && i < r->n; i++) {
        snprintf(part, sizeof(part), "%s.part", r->outs[i].path);
        if (r->made[i])
            unlink(i < renamed ? r->outs[i].path : part);
    }
    return err;
}

bg_err bg_media_thumbs(const char *in, const char *out_dir, const char *stem,
                       const bg_thumbs_opts *o, const bg_media_progress *p, bg_media_thumb **outs,
                       size_t *n, bg_media_err *e)
{
    media_init();
    thumbs_run r = {.o = o, .last_t = -INFINITY};
    r.v.e = e;
    media_ctl_init(&r.v.ctl, p);
    bg_err err = check_thumbs_opts(in, out_dir, stem, o, e);
    if (err == BG_OK && !media_ctl_tick(&r.v.ctl, 0.0))
        err = bg_img_canceled(e);
    if (err == BG_OK)
        err = bg_img_vin_open(&r.v, in, true);
    if (err == BG_OK)
        err = plan_thumbs(&r, out_dir, stem, e);
    if (err == BG_OK) {
        r.cur = av_frame_alloc();
        r.last = av_frame_alloc();
        err = r.cur && r.last ? take_all(&r) : bg_img_proc_err(e, AVERROR(ENOMEM), "frames");
    }
    av_frame_free(&r.cur);
    av_frame_free(&r.last);
    picture_fini(&r.pic);
    bg_img_vin_close(&r.v);
    err = publish_thumbs(&r, err);
    free(r.tg);
    free(r.made);
    if (err != BG_OK) {
        free(r.outs);
        return err;
    }
    *outs = r.outs;
    *n = r.n;
    return BG_OK;
}

/* ---- resize ---------------------------------------------------------- */

static int rounded(double x)
{
    long long v = llround(x);
    return (int)(v < 1 ? 1 : v > BG_IMAGE_MAX_DIM ? BG_IMAGE_MAX_DIM : v);
}

typedef struct geometry {
    int w, h;               /* output */
    int cx, cy, cw, ch;     /* source rectangle used (cover crops it) */
} geometry;

static geometry fit_geometry(const bg_resize_opts *o, int sw, int sh)
{
    geometry g = {sw, sh, 0, 0, sw, sh};
    int W = o->width, H = o->height;
    if (W == 0 && H == 0)
        return g;
    if (W == 0 || H == 0) {
        g.w = W ? W : rounded((double)sw * H / sh);
        g.h = H ? H : rounded((double)sh * W / sw);
        return g;
    }
    g.w = W;
    g.h = H;
    bool wider = (int64_t)sw * H >= (int64_t)sh * W; /* the source is wider than the box */
    if (o->fit == BG_FIT_CONTAIN) {
        if (wider)
            g.h = rounded((double)sh * W / sw);
        else
            g.w = rounded((double)sw * H / sh);
    } else if (o->fit == BG_FIT_COVER) {
        if (wider) {
            g.cw = (int)fmax(1.0, fmin(sw, llround((double)sh * W / H)));
            g.cx = (sw - g.cw) / 2;
        } else {
            g.ch = (int)fmax(1.0, fmin(sh, llround((double)sw * H / W)));
            g.cy = (sh - g.ch) / 2;
        }
    }
    return g;
}

static bg_err check_resize_opts(const char *in, const char *out, const bg_resize_opts *o,
                                char *part, size_t cap, bg_media_err *e)
{
    if (in == NULL || out == NULL || o == NULL)
        return bad_opts(e, "input, output and options are required");
    if (fmt_of(o->format) == NULL)
        return bad_opts(e, "format must be jpeg, png or webp");
    if ((unsigned)o->fit > BG_FIT_FILL)
        return bad_opts(e, "fit must be contain, cover or fill");
    if (o->width < 0 || o->width > BG_IMAGE_MAX_DIM || o->height < 0 ||
        o->height > BG_IMAGE_MAX_DIM)
        return bad_opts(e, "width and height must be 0..8192");
    if (!quality_ok(o->quality))
        return bad_opts(e, "quality must be 0..100");
    if (snprintf(part, cap, "%s.part", out) >= (int)cap)
        return bad_opts(e, "output path too long");
    return BG_OK;
}

/* A view of f cut to g's source rectangle (no copy). 1-bit formats cannot
 * be cut in place, so they are made 8-bit grey first. */
static bg_err crop_view(picture *pic, const AVFrame *f, const geometry *g, AVFrame **out,
                        bg_media_err *e)
{
    AVFrame *v = NULL;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    bg_err err = BG_OK;
    if (d != NULL && (d->flags & AV_PIX_FMT_FLAG_BITSTREAM))
        err = scale(&pic->sws2, f, f->width, f->height, AV_PIX_FMT_GRAY8, &v, e);
    else if ((v = av_frame_clone(f)) == NULL)
        err = bg_img_proc_err(e, AVERROR(ENOMEM), "cropping");
    if (err != BG_OK)
        return err;
    v->crop_left = (size_t)g->cx;
    v->crop_top = (size_t)g->cy;
    v->crop_right = (size_t)(f->width - g->cx - g->cw);
    v->crop_bottom = (size_t)(f->height - g->cy - g->ch);
    int ret = av_frame_apply_cropping(v, AV_FRAME_CROP_UNALIGNED);
    if (ret < 0) {
        av_frame_free(&v);
        return bg_img_proc_err(e, ret, "cropping");
    }
    *out = v;
    return BG_OK;
}

static json_t *resize_meta(const bg_resize_opts *o, const geometry *g, const AVFrame *src,
                           int64_t size)
{
    return json_pack("{s:i, s:i, s:s, s:I, s:i, s:i}", "width", g->w, "height", g->h, "format",
                     fmt_of(o->format)->name, "size", (json_int_t)size, "source_width",
                     src->width, "source_height", src->height);
}

static bg_err resize_run(vin *v, const char *in, const char *part, const bg_resize_opts *o,
                         bool *made, json_t **meta)
{
    AVFrame *f = av_frame_alloc(), *view = NULL;
    picture pic = {0};
    bg_err err = f ? bg_img_vin_open(v, in, false) : bg_img_proc_err(v->e, AVERROR(ENOMEM), "frames");
    if (err == BG_OK)
        err = bg_img_vin_read(v, f);
    if (err == BG_ENOTFOUND)
        err = bg_img_bad_input(v->e, "no picture could be decoded");
    geometry g = {0};
    if (err == BG_OK) {
        g = fit_geometry(o, f->width, f->height);
        err = crop_view(&pic, f, &g, &view, v->e);
    }
    if (err == BG_OK && !media_ctl_tick(&v->ctl, 0.5))
        err = bg_img_canceled(v->e);
    int64_t size = 0;
    if (err == BG_OK)
        err = picture_write(&pic, view, g.w, g.h, o->format, o->quality, part, made, &size, v->e);
    if (err == BG_OK)
        *meta = resize_meta(o, &g, f, size);
    av_frame_free(&view);
    av_frame_free(&f);
    picture_fini(&pic);
    bg_img_vin_close(v);
    return err;
}

bg_err bg_media_image_resize(const char *in, const char *out, const bg_resize_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e)
{
    media_init();
    char part[PATH_MAX + 8];
    vin v = {.e = e};
    media_ctl_init(&v.ctl, p);
    json_t *meta = NULL;
    bool made = false;
    bg_err err = check_resize_opts(in, out, o, part, sizeof(part), e);
    if (err == BG_OK && !media_ctl_tick(&v.ctl, 0.0))
        err = bg_img_canceled(e);
    if (err == BG_OK)
        err = resize_run(&v, in, part, o, &made, &meta);
    if (err == BG_OK && !media_ctl_tick(&v.ctl, 1.0))
        err = bg_img_canceled(e);
    if (err == BG_OK && rename(part, out) != 0) {
        media_err(e, "OUTPUT_ERROR", "output cannot be renamed into place: %s", strerror(errno));
        err = BG_EIO;
    }
    if (err != BG_OK) {
        if (made)
            unlink(part);
        json_decref(meta);
        return err;
    }
    if (meta_out != NULL)
        *meta_out = meta;
    else
        json_decref(meta);
    return BG_OK;
}

/* ---- raw pixels ------------------------------------------------------ */

bg_err bg_media_image_write(const uint8_t *pixels, int width, int height, int stride, bool alpha,
                            bg_image_format f, int quality, const char *out, int64_t *size_out,
                            bg_media_err *e)
{
    media_init();
    char part[PATH_MAX + 8];
    if (pixels == NULL || out == NULL || fmt_of(f) == NULL || !quality_ok(quality))
        return bad_opts(e, "pixels, output, format and quality are required");
    if (width < 1 || height < 1 || width > BG_IMAGE_MAX_DIM || height > BG_IMAGE_MAX_DIM ||
        stride < width * (alpha ? 4 : 3))
        return bad_opts(e, "width and height must be 1..8192, stride at least a row");
    if (snprintf(part, sizeof(part), "%s.part", out) >= (int)sizeof(part))
        return bad_opts(e, "output path too long");
    AVFrame *src = av_frame_alloc();
    if (src == NULL)
        return bg_img_proc_err(e, AVERROR(ENOMEM), "frames");
    src->data[0] = (uint8_t *)pixels; /* read only: scaled into a new frame */
    src->linesize[0] = stride;
    src->width = width;
    src->height = height;
    src->format = alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
    picture pic = {0};
    bool made = false;
    int64_t size = 0;
    bg_err err = picture_write(&pic, src, width, height, f, quality, part, &made, &size, e);
    picture_fini(&pic);
    av_frame_free(&src);
    if (err == BG_OK && rename(part, out) != 0) {
        media_err(e, "OUTPUT_ERROR", "output cannot be renamed into place: %s", strerror(errno));
        err = BG_EIO;
    }
    if (err != BG_OK) {
        if (made)
            unlink(part);
        return err;
    }
    if (size_out != NULL)
        *size_out = size;
    return BG_OK;
}
