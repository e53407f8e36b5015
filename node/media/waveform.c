/*
 * node/media/waveform.c — the waveform accumulator (peaks per block of
 * samples, folded in half when full), its two renderings (PNG through
 * bg_media_image_write, audiowaveform JSON through jansson), and
 * bg_media_waveform, which decodes a file's first audio stream into it.
 */
#include "waveform.h"
#include "image.h"
#include "media_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include "proto/mem.h"

#define DEFAULT_WIDTH 1800
#define DEFAULT_HEIGHT 280
#define BLOCKS_PER_PIXEL 16 /* resolution kept: blocks per pixel span, at least */
#define MIN_BLOCK_CAP 1024
#define MAX_IN_CHANNELS 64

struct bg_waveform_acc {
    int width, height, bits, sample_rate;
    uint8_t fg[4], bg[4];
    int64_t block;      /* samples per block */
    float *bmin, *bmax; /* per finished block */
    size_t nb, cap;     /* blocks stored, room (even) */
    float cmin, cmax;   /* the block being filled */
    int64_t fill;       /* samples in it */
    int64_t total;      /* samples fed */
};

/* ---- options --------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool bg_waveform_color_parse(const char *s, uint8_t rgba[4])
{
    if (s == NULL || s[0] != '#')
        return false;
    size_t n = strlen(s + 1);
    if (n != 6 && n != 8)
        return false;
    uint8_t v[4] = {0, 0, 0, 255};
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[1 + i]), lo = hexval(s[2 + i]);
        if (hi < 0 || lo < 0)
            return false;
        v[i / 2] = (uint8_t)(hi * 16 + lo);
    }
    memcpy(rgba, v, sizeof(v));
    return true;
}

static bg_err bad_opts(bg_media_err *e, const char *msg)
{
    media_err(e, "INVALID_OPTIONS", "%s", msg);
    return BG_EINVAL;
}

static bg_err check_opts(const bg_waveform_opts *o, bg_waveform_acc *a, bg_media_err *e)
{
    if (o == NULL)
        return bad_opts(e, "options are required");
    a->width = o->width ? o->width : DEFAULT_WIDTH;
    a->height = o->height ? o->height : DEFAULT_HEIGHT;
    a->bits = o->bits ? o->bits : 16;
    if (a->width < 1 || a->width > BG_WAVEFORM_MAX_WIDTH)
        return bad_opts(e, "width must be 1..8192");
    if (a->height < 1 || a->height > BG_WAVEFORM_MAX_HEIGHT)
        return bad_opts(e, "height must be 1..2048");
    if (a->bits != 8 && a->bits != 16)
        return bad_opts(e, "bits must be 8 or 16");
    if (!bg_waveform_color_parse(o->foreground ? o->foreground : "#000000", a->fg))
        return bad_opts(e, "foreground must be \"#rrggbb\" or \"#rrggbbaa\"");
    if (!bg_waveform_color_parse(o->background ? o->background : "#ffffff", a->bg))
        return bad_opts(e, "background must be \"#rrggbb\" or \"#rrggbbaa\"");
    return BG_OK;
}

/* ---- accumulator ----------------------------------------------------- */

bg_err bg_waveform_acc_create(const bg_waveform_opts *o, int64_t total_samples, int sample_rate,
                              bg_waveform_acc **out, bg_media_err *e)
{
    bg_waveform_acc tmp = {0};
    bg_err err = check_opts(o, &tmp, e);
    if (err != BG_OK)
        return err;
    if (sample_rate < 0)
        return bad_opts(e, "sample rate must be >= 0");
    bg_waveform_acc *a = bg_xmalloc(sizeof(*a));
    *a = tmp;
    a->sample_rate = sample_rate;
    a->cap = (size_t)a->width * 2 * BLOCKS_PER_PIXEL;
    if (a->cap < MIN_BLOCK_CAP)
        a->cap = MIN_BLOCK_CAP;
    int64_t per = (int64_t)a->width * BLOCKS_PER_PIXEL;
    a->block = total_samples > per ? total_samples / per : 1;
    a->bmin = bg_xmalloc(a->cap * sizeof(float));
    a->bmax = bg_xmalloc(a->cap * sizeof(float));
    a->cmin = INFINITY;
    a->cmax = -INFINITY;
    *out = a;
    return BG_OK;
}

void bg_waveform_acc_destroy(bg_waveform_acc *a)
{
    if (a == NULL)
        return;
    free(a->bmin);
    free(a->bmax);
    free(a);
}

/* Full: each pair of blocks becomes one block twice as long. */
static void fold(bg_waveform_acc *a)
{
    for (size_t j = 0; j < a->nb / 2; j++) {
        a->bmin[j] = fminf(a->bmin[2 * j], a->bmin[2 * j + 1]);
        a->bmax[j] = fmaxf(a->bmax[2 * j], a->bmax[2 * j + 1]);
    }
    a->nb /= 2;
    a->block *= 2;
}

/* Folding right after the array fills keeps every stored block, but the
 * last, exactly `block` samples long, so block j starts at sample j·block. */
static void push_block(bg_waveform_acc *a)
{
    bool any = a->cmin <= a->cmax; /* false when every sample was NaN */
    a->bmin[a->nb] = any ? a->cmin : 0.0f;
    a->bmax[a->nb] = any ? a->cmax : 0.0f;
    a->nb++;
    a->cmin = INFINITY;
    a->cmax = -INFINITY;
    a->fill = 0;
    if (a->nb == a->cap)
        fold(a);
}

void bg_waveform_acc_feed(bg_waveform_acc *a, const float *x, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int64_t room = a->block - a->fill;
        size_t k = (uint64_t)room < n - i ? (size_t)room : n - i;
        float lo = a->cmin, hi = a->cmax;
        for (size_t j = 0; j < k; j++) {
            float s = x[i + j]; /* NaN fails both tests */
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
        a->cmin = lo;
        a->cmax = hi;
        a->fill += (int64_t)k;
        a->total += (int64_t)k;
        i += k;
        if (a->fill == a->block)
            push_block(a);
    }
}

void bg_waveform_acc_on_samples(void *ud, const float *mono, size_t n, int sample_rate)
{
    bg_waveform_acc *a = ud;
    if (a->sample_rate == 0 && sample_rate > 0)
        a->sample_rate = sample_rate;
    bg_waveform_acc_feed(a, mono, n);
}

/* Pixel i takes every block overlapping its span of samples. */
static void peaks(const bg_waveform_acc *a, float *pmin, float *pmax)
{
    int64_t n = a->total, w = a->width;
    for (int64_t i = 0; i < w; i++) {
        int64_t s0 = i * n / w, s1 = (i + 1) * n / w;
        int64_t ja = s0 / a->block, jb = (s1 > s0 ? s1 - 1 : s0) / a->block;
        if (jb >= (int64_t)a->nb)
            jb = (int64_t)a->nb - 1;
        if (ja > jb)
            ja = jb;
        float lo = a->bmin[ja], hi = a->bmax[ja];
        for (int64_t j = ja + 1; j <= jb; j++) {
            lo = fminf(lo, a->bmin[j]);
            hi = fmaxf(hi, a->bmax[j]);
        }
        pmin[i] = fminf(fmaxf(lo, -1.0f), 1.0f);
        pmax[i] = fminf(fmaxf(hi, -1.0f), 1.0f);
    }
}

/* ---- renderings ------------------------------------------------------ */

static long quantize(float v, int bits)
{
    double scale = bits == 8 ? 128.0 : 32768.0;
    long q = lrint(v * scale);
    return q < -(long)scale ? -(long)scale : q > (long)scale - 1 ? (long)scale - 1 : q;
}

static int64_t spp(const bg_waveform_acc *a)
{
    int64_t s = (a->total + a->width / 2) / a->width;
    return s < 1 ? 1 : s;
}

static bg_err write_json(const bg_waveform_acc *a, const float *pmin, const float *pmax,
                         const char *part, bg_media_err *e)
{
    json_t *data = json_array();
    for (int i = 0; i < a->width; i++) {
        json_array_append_new(data, json_integer(quantize(pmin[i], a->bits)));
        json_array_append_new(data, json_integer(quantize(pmax[i], a->bits)));
    }
    json_t *j = json_pack("{s:i, s:i, s:i, s:I, s:i, s:i, s:o}", "version", 2, "channels", 1,
                          "sample_rate", a->sample_rate, "samples_per_pixel", (json_int_t)spp(a),
                          "bits", a->bits, "length", a->width, "data", data);
    if (j == NULL) {
        media_err(e, "PROCESSING_ERROR", "out of memory");
        return BG_ENOMEM;
    }
    int rc = json_dump_file(j, part, JSON_COMPACT);
    json_decref(j);
    if (rc != 0) {
        media_err(e, "OUTPUT_ERROR", "peaks cannot be written");
        return BG_EIO;
    }
    return BG_OK;
}

static int row_of(float v, int height)
{
    return (int)lrintf((1.0f - v) * 0.5f * (float)(height - 1));
}

static bg_err write_png(const bg_waveform_acc *a, const float *pmin, const float *pmax,
                        const char *path, int64_t *size, bg_media_err *e)
{
    bool alpha = a->fg[3] != 255 || a->bg[3] != 255;
    int bpp = alpha ? 4 : 3, w = a->width, h = a->height;
    size_t stride = (size_t)w * bpp;
    uint8_t *px = bg_xmalloc(stride * (size_t)h);
    for (size_t i = 0; i < (size_t)w * h; i++)
        memcpy(px + i * bpp, a->bg, (size_t)bpp);
    for (int x = 0; x < w; x++) {
        int top = row_of(pmax[x], h), bottom = row_of(pmin[x], h);
        for (int y = top; y <= bottom; y++)
            memcpy(px + (size_t)y * stride + (size_t)x * bpp, a->fg, (size_t)bpp);
    }
    bg_err err = bg_media_image_write(px, w, h, (int)stride, alpha, BG_IMAGE_PNG, 0, path, size, e);
    free(px);
    return err;
}

static json_t *acc_meta(const bg_waveform_acc *a, int64_t png_size, int64_t json_size)
{
    json_t *m = json_pack("{s:i, s:i, s:i, s:i, s:i, s:I, s:f}", "width", a->width, "height",
                          a->height, "bits", a->bits, "length", a->width, "sample_rate",
                          a->sample_rate, "samples_per_pixel", (json_int_t)spp(a), "duration",
                          a->sample_rate > 0 ? round((double)a->total / a->sample_rate * 1000) / 1000
                                             : 0.0);
    if (m != NULL && png_size >= 0)
        json_object_set_new(m, "png_size", json_integer(png_size));
    if (m != NULL && json_size >= 0)
        json_object_set_new(m, "json_size", json_integer(json_size));
    return m;
}

static int64_t file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    int64_t n = fseek(f, 0, SEEK_END) == 0 ? (int64_t)ftell(f) : -1;
    fclose(f);
    return n;
}

/* The JSON goes to its .part first, then the PNG (renamed by the writer),
 * then the JSON is renamed: a failure at any point removes what exists. */
static bg_err render(const bg_waveform_acc *a, const char *png_out, const char *json_out,
                     int64_t *png_size, int64_t *json_size, bg_media_err *e)
{
    float *pmin = bg_xmalloc((size_t)a->width * sizeof(float));
    float *pmax = bg_xmalloc((size_t)a->width * sizeof(float));
    peaks(a, pmin, pmax);
    char part[PATH_MAX + 8];
    bg_err err = BG_OK;
    if (json_out != NULL && snprintf(part, sizeof(part), "%s.part", json_out) >= (int)sizeof(part))
        err = bad_opts(e, "output path too long");
    bool json_made = false, png_made = false;
    if (err == BG_OK && json_out != NULL) {
        json_made = true;
        err = write_json(a, pmin, pmax, part, e);
        *json_size = err == BG_OK ? file_size(part) : -1;
    }
    if (err == BG_OK && png_out != NULL) {
        err = write_png(a, pmin, pmax, png_out, png_size, e);
        png_made = err == BG_OK;
    }
    if (err == BG_OK && json_out != NULL && rename(part, json_out) != 0) {
        media_err(e, "OUTPUT_ERROR", "output cannot be renamed into place: %s", strerror(errno));
        err = BG_EIO;
    }
    if (err != BG_OK && json_made)
        unlink(part);
    if (err != BG_OK && png_made)
        unlink(png_out);
    free(pmin);
    free(pmax);
    return err;
}

bg_err bg_waveform_acc_finish(bg_waveform_acc *a, const char *png_out, const char *json_out,
                              json_t **meta_out, bg_media_err *e)
{
    media_init();
    if (png_out == NULL && json_out == NULL)
        return bad_opts(e, "no waveform output was asked for");
    if (a->fill > 0)
        push_block(a);
    if (a->total == 0) {
        media_err(e, "INVALID_INPUT", "no audio samples");
        return BG_EMEDIA;
    }
    int64_t png_size = -1, json_size = -1;
    bg_err err = render(a, png_out, json_out, &png_size, &json_size, e);
    if (err == BG_OK && meta_out != NULL)
        *meta_out = acc_meta(a, png_size, json_size);
    return err;
}

/* ---- decoding a file into an accumulator ----------------------------- */

typedef struct wrun {
    media_ctl ctl;
    media_input in;
    bg_media_err *e;
    AVStream *st;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frm;
    SwrContext *swr;
    AVChannelLayout swr_layout;
    int swr_rate, swr_fmt;
    float *buf;
    int buf_cap;
    bg_waveform_acc *acc;
    int64_t expect; /* samples expected; 0 = unknown */
    bool decoded;
} wrun;

static bg_err canceled(bg_media_err *e)
{
    media_err(e, "CANCELED", "canceled");
    return BG_EBUSY;
}

static bg_err in_err(wrun *r, int ret, const char *what)
{
    if (r->ctl.canceled)
        return canceled(r->e);
    return media_input_averr(ret, what, r->e);
}

static bg_err proc_err(wrun *r, int ret, const char *what)
{
    if (ret == AVERROR(ENOMEM))
        return media_input_averr(ret, what, r->e);
    media_err_av(r->e, "PROCESSING_ERROR", what, ret);
    return BG_EMEDIA;
}

static AVStream *first_audio(AVFormatContext *ic)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        if (ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO &&
            ic->streams[i]->codecpar->codec_id != AV_CODEC_ID_NONE)
            return ic->streams[i];
    return NULL;
}

static void discard_others(AVFormatContext *ic, const AVStream *keep)
{
    for (unsigned i = 0; i < ic->nb_streams; i++)
        ic->streams[i]->discard = ic->streams[i] == keep ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

/* Stream info is read only when the header names no usable audio stream
 * (a headerless container): wav, mp3, mp4 and ogg headers say enough. */
static bg_err select_stream(wrun *r)
{
    AVFormatContext *ic = r->in.ic;
    AVStream *st = first_audio(ic);
    if (st == NULL || st->codecpar->sample_rate <= 0) {
        if (st != NULL)
            discard_others(ic, st);
        int ret = avformat_find_stream_info(ic, NULL);
        if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || r->ctl.canceled)
            return in_err(r, ret, "stream info");
        st = first_audio(ic);
    }
    if (st == NULL) {
        media_err(r->e, "INVALID_INPUT", "no audio stream");
        return BG_EMEDIA;
    }
    discard_others(ic, st);
    r->st = st;
    double dur = 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        dur = st->duration * av_q2d(st->time_base);
    else if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
        dur = (double)ic->duration / AV_TIME_BASE;
    r->expect = st->codecpar->sample_rate > 0 ? llround(dur * st->codecpar->sample_rate) : 0;
    return BG_OK;
}

static bg_err open_decoder(wrun *r)
{
    const AVCodecParameters *par = r->st->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL) {
        media_err(r->e, "INVALID_INPUT", "no decoder for audio codec %s",
                  avcodec_get_name(par->codec_id));
        return BG_EMEDIA;
    }
    r->dec = avcodec_alloc_context3(codec);
    r->pkt = av_packet_alloc();
    r->frm = av_frame_alloc();
    if (r->dec == NULL || r->pkt == NULL || r->frm == NULL)
        return proc_err(r, AVERROR(ENOMEM), "decoder");
    int ret = avcodec_parameters_to_context(r->dec, par);
    if (ret < 0)
        return proc_err(r, ret, "decoder");
    r->dec->pkt_timebase = r->st->time_base;
    r->dec->thread_count = 1;
    ret = avcodec_open2(r->dec, codec, NULL);
    return ret < 0 ? in_err(r, ret, "audio decoder") : BG_OK;
}

/* A resampler that only mixes: same rate, float mono, each channel weighted
 * 1/channels (libswresample's own downmix would not average). Remade when
 * the decoded format, rate or layout changes. */
static bg_err setup_swr(wrun *r, const AVFrame *f)
{
    AVChannelLayout in = {0};
    int ret = 0;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in, f->ch_layout.nb_channels);
    else
        ret = av_channel_layout_copy(&in, &f->ch_layout);
    if (ret < 0)
        return proc_err(r, ret, "mixing");
    if (r->swr != NULL && r->swr_rate == f->sample_rate && r->swr_fmt == f->format &&
        av_channel_layout_compare(&r->swr_layout, &in) == 0) {
        av_channel_layout_uninit(&in);
        return BG_OK;
    }
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->swr_layout);
    r->swr_layout = in;
    r->swr_rate = f->sample_rate;
    r->swr_fmt = f->format;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    ret = swr_alloc_set_opts2(&r->swr, &mono, AV_SAMPLE_FMT_FLT, f->sample_rate, &in, f->format,
                              f->sample_rate, 0, NULL);
    double m[MAX_IN_CHANNELS];
    int ch = in.nb_channels;
    for (int c = 0; c < ch; c++)
        m[c] = 1.0 / ch;
    if (ret >= 0)
        ret = swr_set_matrix(r->swr, m, ch);
    if (ret >= 0)
        ret = swr_init(r->swr);
    return ret < 0 ? proc_err(r, ret, "mixer setup") : BG_OK;
}

static bg_err on_frame(wrun *r, const AVFrame *f)
{
    int n = f->nb_samples, ch = f->ch_layout.nb_channels;
    if (n <= 0 || f->sample_rate <= 0 || ch <= 0 || ch > MAX_IN_CHANNELS || f->format < 0)
        return BG_OK;
    bg_err err = setup_swr(r, f);
    if (err != BG_OK)
        return err;
    if (n > r->buf_cap) {
        free(r->buf);
        r->buf = bg_xmalloc((size_t)n * sizeof(float));
        r->buf_cap = n;
    }
    uint8_t *dst = (uint8_t *)r->buf;
    int got = swr_convert(r->swr, &dst, r->buf_cap, (const uint8_t **)f->extended_data, n);
    if (got < 0)
        return proc_err(r, got, "mixing");
    bg_waveform_acc_on_samples(r->acc, r->buf, (size_t)got, f->sample_rate);
    return BG_OK;
}

/* One packet (NULL: drain); a packet or frame the decoder rejects is
 * skipped, as the ffmpeg tool does. */
static bg_err decode(wrun *r, const AVPacket *pkt)
{
    int ret = avcodec_send_packet(r->dec, pkt);
    if (ret == AVERROR(ENOMEM))
        return in_err(r, ret, "decoding");
    if (ret < 0)
        return BG_OK;
    for (;;) {
        ret = avcodec_receive_frame(r->dec, r->frm);
        if (ret == AVERROR(ENOMEM))
            return in_err(r, ret, "decoding");
        if (ret < 0)
            return BG_OK;
        r->decoded = true;
        bg_err err = on_frame(r, r->frm);
        av_frame_unref(r->frm);
        if (err != BG_OK)
            return err;
    }
}

static double fraction(const wrun *r)
{
    if (r->expect > 0)
        return 0.95 * (double)r->acc->total / (double)r->expect;
    int64_t pos = avio_tell(r->in.pb);
    return r->in.size > 0 && pos > 0 ? 0.95 * (double)pos / (double)r->in.size : 0.0;
}

static bg_err pump(wrun *r)
{
    for (;;) {
        if (!media_ctl_tick(&r->ctl, fraction(r)))
            return canceled(r->e);
        int ret = av_read_frame(r->in.ic, r->pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            if (r->ctl.canceled || ret == AVERROR_EXIT || ret == AVERROR(ENOMEM) || !r->decoded)
                return in_err(r, ret, "reading the input");
            break; /* a corrupt or truncated tail: keep what decoded */
        }
        bg_err err = BG_OK;
        if (r->pkt->stream_index == r->st->index)
            err = decode(r, r->pkt);
        av_packet_unref(r->pkt);
        if (err != BG_OK)
            return err;
    }
    bg_err err = decode(r, NULL);
    if (err == BG_OK && r->acc->total == 0) {
        media_err(r->e, "INVALID_INPUT", "no audio could be decoded");
        err = BG_EMEDIA;
    }
    if (err == BG_OK && !media_ctl_tick(&r->ctl, 0.95))
        err = canceled(r->e);
    return err;
}

static void wrun_free(wrun *r)
{
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->swr_layout);
    free(r->buf);
    av_frame_free(&r->frm);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    media_input_close(&r->in);
    bg_waveform_acc_destroy(r->acc);
}

bg_err bg_media_waveform(const char *in, const char *png_out, const char *json_out,
                         const bg_waveform_opts *o, const bg_media_progress *p,
                         json_t **meta_out, bg_media_err *e)
{
    media_init();
    wrun r = {.e = e};
    media_ctl_init(&r.ctl, p);
    bg_waveform_acc probe = {0};
    bg_err err = check_opts(o, &probe, e);
    if (err == BG_OK && (in == NULL || (png_out == NULL && json_out == NULL)))
        err = bad_opts(e, "an input and at least one output are required");
    if (err == BG_OK && !media_ctl_tick(&r.ctl, 0.0))
        err = canceled(e);
    if (err == BG_OK)
        err = media_input_open(&r.in, in, &r.ctl, e);
    if (err == BG_OK)
        err = select_stream(&r);
    if (err == BG_OK)
        err = open_decoder(&r);
    if (err == BG_OK)
        err = bg_waveform_acc_create(o, r.expect, r.st->codecpar->sample_rate, &r.acc, e);
    if (err == BG_OK)
        err = pump(&r);
    if (err == BG_OK)
        err = bg_waveform_acc_finish(r.acc, png_out, json_out, meta_out, e);
    wrun_free(&r);
    return err;
}
