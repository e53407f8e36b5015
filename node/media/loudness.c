/*
 * node/media/loudness.c — EBU R128 on libavfilter: the meter (ameter) that
 * bg_media_loudness, /meta/read and the first pass of a normalised encode
 * use, and the second pass (lnorm) that applies loudnorm.
 *
 * The meter runs the ebur128 filter with metadata=1 and reads its frame
 * metadata: lavfi.r128.I, LRA, LRA.low, LRA.high after each 100 ms block,
 * and M, from which the relative gate ("threshold" in the filter's summary,
 * loudnorm's measured_thresh) is rebuilt as the filter builds it: the mean
 * power of the 400 ms blocks above -70 LUFS, minus 10 LU. Peaks are not read
 * from the metadata: it prints them linear with three decimals (0.01 is
 * -40 dBFS ± 0.4 dB) and misses the last partial 100 ms. They are taken here
 * the way the filter takes them: the sample peak of the 48 kHz doubles it
 * sees, and the true peak of those upsampled to 192 kHz by libswresample
 * with its defaults, never flushed.
 */
#include "audio_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>

#define R128_RATE 48000  /* the only rate ebur128 measures at */
#define TP_RATE 192000   /* its true-peak oversampling */
#define ABS_GATE (-70.0) /* absolute gate, LUFS */
#define DEFAULT_LRA 11.0 /* loudnorm's LRA target unless the input's range is wider */
#define MAX_LRA 50.0     /* loudnorm's largest LRA target */

static double energy(double lufs)
{
    return pow(10.0, (lufs + 0.691) / 10.0);
}

static double lufs(double energy_)
{
    return -0.691 + 10.0 * log10(energy_);
}

/* ---- a filter graph: abuffer -> filters -> abuffersink ------------------ */

typedef struct agraph {
    AVFilterGraph *g;
    AVFilterContext *src, *sink;
    int64_t pts;
} agraph;

static void agraph_free(agraph *a)
{
    avfilter_graph_free(&a->g);
    a->src = a->sink = NULL;
}

/* Builds abuffer(dbl, rate, layout) -> chain -> abuffersink on one thread.
 * lavfi inserts the conversions chain's filters ask for (loudnorm's 192 kHz). */
static bg_err agraph_init(agraph *a, int rate, const AVChannelLayout *layout, const char *chain,
                          bg_media_err *e)
{
    memset(a, 0, sizeof(*a));
    AVFilterInOut *outs = NULL, *ins = NULL;
    AVBufferSrcParameters *par = av_buffersrc_parameters_alloc();
    a->g = avfilter_graph_alloc();
    int ret = AVERROR(ENOMEM);
    if (par == NULL || a->g == NULL)
        goto done;
    a->g->nb_threads = 1;
    a->src = avfilter_graph_alloc_filter(a->g, avfilter_get_by_name("abuffer"), "in");
    ret = avfilter_graph_create_filter(&a->sink, avfilter_get_by_name("abuffersink"), "out", NULL,
                                       NULL, a->g);
    if (ret < 0 || a->src == NULL)
        goto done;
    par->format = AV_SAMPLE_FMT_DBL;
    par->sample_rate = rate;
    par->time_base = (AVRational){1, rate};
    ret = av_channel_layout_copy(&par->ch_layout, layout);
    if (ret >= 0)
        ret = av_buffersrc_parameters_set(a->src, par);
    if (ret >= 0)
        ret = avfilter_init_str(a->src, NULL);
    outs = avfilter_inout_alloc();
    ins = avfilter_inout_alloc();
    if (ret < 0 || outs == NULL || ins == NULL) {
        ret = ret < 0 ? ret : AVERROR(ENOMEM);
        goto done;
    }
    *outs = (AVFilterInOut){.name = av_strdup("in"), .filter_ctx = a->src};
    *ins = (AVFilterInOut){.name = av_strdup("out"), .filter_ctx = a->sink};
    ret = avfilter_graph_parse_ptr(a->g, chain, &ins, &outs, NULL);
    if (ret >= 0)
        ret = avfilter_graph_config(a->g, NULL);
done:
    avfilter_inout_free(&outs);
    avfilter_inout_free(&ins);
    if (par != NULL)
        av_channel_layout_uninit(&par->ch_layout);
    av_free(par);
    if (ret < 0) {
        agraph_free(a);
        return audio_proc_err(e, ret, "filter graph");
    }
    return BG_OK;
}

/* Pushes n packed doubles per channel (NULL: end of stream). */
static bg_err agraph_push(agraph *a, const uint8_t *data, int n, int rate,
                          const AVChannelLayout *layout, bg_media_err *e)
{
    if (data == NULL) {
        int ret = av_buffersrc_add_frame_flags(a->src, NULL, 0);
        return ret < 0 ? audio_proc_err(e, ret, "filtering") : BG_OK;
    }
    AVFrame *f = av_frame_alloc();
    if (f == NULL)
        return audio_proc_err(e, AVERROR(ENOMEM), "filtering");
    f->format = AV_SAMPLE_FMT_DBL;
    f->sample_rate = rate;
    f->nb_samples = n;
    f->pts = a->pts;
    int ret = av_channel_layout_copy(&f->ch_layout, layout);
    if (ret >= 0)
        ret = av_frame_get_buffer(f, 0);
    if (ret >= 0) {
        memcpy(f->data[0], data, (size_t)n * layout->nb_channels * sizeof(double));
        a->pts += n;
        ret = av_buffersrc_add_frame_flags(a->src, f, AV_BUFFERSRC_FLAG_PUSH);
    }
    av_frame_free(&f);
    return ret < 0 ? audio_proc_err(e, ret, "filtering") : BG_OK;
}

/* Takes every frame the graph has ready and hands it to fn; *eof once the
 * graph has given everything. After the end was pushed, one call gives the
 * rest (an EAGAIN then ends it too, so a graph can never spin us). */
typedef bg_err (*agraph_out_fn)(void *ud, const AVFrame *f);

static bg_err agraph_pull(agraph *a, AVFrame *tmp, agraph_out_fn fn, void *ud, bool *eof,
                          bg_media_err *e)
{
    *eof = false;
    for (;;) {
        int ret = av_buffersink_get_frame(a->sink, tmp);
        if (ret == AVERROR(EAGAIN))
            return BG_OK;
        if (ret == AVERROR_EOF) {
            *eof = true;
            return BG_OK;
        }
        if (ret < 0)
            return audio_proc_err(e, ret, "filtering");
        bg_err err = fn(ud, tmp);
        av_frame_unref(tmp);
        if (err != BG_OK)
            return err;
    }
}

/* ---- the meter ------------------------------------------------------------ */

struct ameter {
    asink sink; /* first: the sink's callbacks get an ameter */
    bool true_peak;
    bg_media_err *e;
    aconv conv; /* anything -> packed doubles at 48 kHz, the first frame's layout */
    bool conv_ready;
    agraph graph;
    AVFrame *tmp;
    SwrContext *tp_swr; /* 48 -> 192 kHz for the true peak */
    uint8_t *tp_buf;
    int tp_cap;
    double sp, tp;
    double i, lra, lra_low, lra_high; /* last values the filter gave */
    double pow_sum;                   /* M blocks above the absolute gate */
    int64_t pow_n;
    int64_t samples; /* at 48 kHz */
    loudness_vals vals;
    bool finished;
};

static double meta_num(const AVFrame *f, const char *key, double dflt)
{
    const AVDictionaryEntry *t = av_dict_get(f->metadata, key, NULL, 0);
    if (t == NULL)
        return dflt;
    char *end = NULL;
    double v = strtod(t->value, &end);
    return end != t->value && *end == '\0' && isfinite(v) ? v : dflt;
}

static bg_err on_measured(void *ud, const AVFrame *f)
{
    ameter *m = ud;
    if (av_dict_get(f->metadata, "lavfi.r128.I", NULL, 0) == NULL)
        return BG_OK; /* a last partial block: nothing new */
    m->i = meta_num(f, "lavfi.r128.I", m->i);
    m->lra = meta_num(f, "lavfi.r128.LRA", m->lra);
    m->lra_low = meta_num(f, "lavfi.r128.LRA.low", m->lra_low);
    m->lra_high = meta_num(f, "lavfi.r128.LRA.high", m->lra_high);
    double mom = meta_num(f, "lavfi.r128.M", -INFINITY);
    if (mom >= ABS_GATE) {
        m->pow_sum += energy(mom);
        m->pow_n++;
    }
    return BG_OK;
}

static bg_err true_peak(ameter *m, const uint8_t *data, int n)
{
    int ch = m->conv.layout.nb_channels;
    int need = swr_get_out_samples(m->tp_swr, n);
    if (need < 0)
        return audio_proc_err(m->e, need, "true peak");
    if (need > m->tp_cap) {
        av_freep(&m->tp_buf);
        m->tp_cap = 0;
        m->tp_buf = av_malloc_array((size_t)need * ch, sizeof(double));
        if (m->tp_buf == NULL)
            return audio_proc_err(m->e, AVERROR(ENOMEM), "true peak");
        m->tp_cap = need;
    }
    int got = swr_convert(m->tp_swr, &m->tp_buf, m->tp_cap, &data, n);
    if (got < 0)
        return audio_proc_err(m->e, got, "true peak");
    const double *x = (const double *)m->tp_buf;
    double peak = m->tp;
    for (size_t k = 0; k < (size_t)got * ch; k++)
        peak = fmax(peak, fabs(x[k]));
    m->tp = peak;
    return BG_OK;
}

/* Converted samples: peaks, then the filter. */
static bg_err on_converted(void *ud, uint8_t *const *data, int n)
{
    ameter *m = ud;
    const AVChannelLayout *l = &m->conv.layout;
    const double *x = (const double *)data[0];
    double peak = m->sp;
    for (size_t k = 0; k < (size_t)n * l->nb_channels; k++)
        peak = fmax(peak, fabs(x[k]));
    m->sp = peak;
    m->samples += n;
    if (m->true_peak) {
        bg_err err = true_peak(m, data[0], n);
        if (err != BG_OK)
            return err;
    }
    bg_err err = agraph_push(&m->graph, data[0], n, R128_RATE, l, m->e);
    bool eof;
    if (err == BG_OK)
        err = agraph_pull(&m->graph, m->tmp, on_measured, m, &eof, m->e);
    return err;
}

static bg_err meter_setup(ameter *m, const AVFrame *f)
{
    AVChannelLayout l;
    int ret = audio_frame_layout(f, &l);
    if (ret < 0)
        return audio_proc_err(m->e, ret, "loudness meter");
    bg_err err = aconv_init(&m->conv, AV_SAMPLE_FMT_DBL, R128_RATE, &l, on_converted, m, m->e);
    if (err == BG_OK)
        m->conv_ready = true;
    if (err == BG_OK)
        err = agraph_init(&m->graph, R128_RATE, &l, "ebur128=metadata=1", m->e);
    if (err == BG_OK && m->true_peak) {
        ret = swr_alloc_set_opts2(&m->tp_swr, &l, AV_SAMPLE_FMT_DBL, TP_RATE, &l, AV_SAMPLE_FMT_DBL,
                                  R128_RATE, 0, NULL);
        if (ret >= 0)
            ret = swr_init(m->tp_swr);
        if (ret < 0)
            err = audio_proc_err(m->e, ret, "true peak");
    }
    av_channel_layout_uninit(&l);
    return err;
}

bg_err ameter_feed(ameter *m, const AVFrame *f, int off, int n)
{
    if (!m->conv_ready) {
        bg_err err = meter_setup(m, f);
        if (err != BG_OK)
            return err;
    }
    return aconv_feed(&m->conv, f, off, n);
}

bg_err ameter_finish(ameter *m, loudness_vals *v)
{
    if (!m->finished && m->conv_ready) {
        bool eof = false;
        bg_err err = aconv_flush(&m->conv);
        if (err == BG_OK)
            err = agraph_push(&m->graph, NULL, 0, R128_RATE, NULL, m->e);
        if (err == BG_OK) /* one pull drains: no input can come after the end */
            err = agraph_pull(&m->graph, m->tmp, on_measured, m, &eof, m->e);
        if (err != BG_OK)
            return err;
    }
    m->finished = true;
    m->vals = (loudness_vals){
        .i = m->i,
        .lra = m->lra,
        .lra_low = m->lra_low,
        .lra_high = m->lra_high,
        .thresh = m->pow_n > 0 ? lufs(m->pow_sum / (double)m->pow_n) - 10.0 : ABS_GATE,
        .tp = m->true_peak ? m->tp : 0.0,
        .sp = m->sp,
        .duration = (double)m->samples / R128_RATE,
        .true_peak = m->true_peak,
    };
    if (v != NULL)
        *v = m->vals;
    return BG_OK;
}

static bg_err sink_feed(asink *s, const AVFrame *f, int off, int n)
{
    return ameter_feed((ameter *)s, f, off, n);
}

static bg_err sink_finish(asink *s)
{
    return ameter_finish((ameter *)s, NULL);
}

bg_err ameter_create(ameter **out, bool tp, bg_media_err *e)
{
    ameter *m = av_mallocz(sizeof(*m));
    if (m == NULL || (m->tmp = av_frame_alloc()) == NULL) {
        av_free(m);
        return audio_proc_err(e, AVERROR(ENOMEM), "loudness meter");
    }
    m->sink.feed = sink_feed;
    m->sink.finish = sink_finish;
    m->true_peak = tp;
    m->e = e;
    m->i = ABS_GATE; /* what the filter reports before any block */
    *out = m;
    return BG_OK;
}

asink *ameter_sink(ameter *m)
{
    return &m->sink;
}

const loudness_vals *ameter_vals(const ameter *m)
{
    return &m->vals;
}

void ameter_destroy(ameter *m)
{
    if (m == NULL)
        return;
    aconv_fini(&m->conv);
    agraph_free(&m->graph);
    av_frame_free(&m->tmp);
    swr_free(&m->tp_swr);
    av_freep(&m->tp_buf);
    av_free(m);
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *real2(double x)
{
    return json_real(round(x * 100.0) / 100.0);
}

/* dB of a linear peak; null for silence (-inf has no JSON form). */
static json_t *peak_db(double linear)
{
    return linear > 0 ? real2(20.0 * log10(linear)) : json_null();
}

json_t *loudness_json(const loudness_vals *v)
{
    json_t *j = json_object();
    json_object_set_new(j, "integrated_lufs", real2(v->i));
    json_object_set_new(j, "loudness_range_lu", real2(v->lra));
    json_object_set_new(j, "true_peak_dbtp", v->true_peak ? peak_db(v->tp) : json_null());
    json_object_set_new(j, "sample_peak_dbfs", peak_db(v->sp));
    json_object_set_new(j, "threshold_lufs", real2(v->thresh));
    json_object_set_new(j, "lra_low_lufs", real2(v->lra_low));
    json_object_set_new(j, "lra_high_lufs", real2(v->lra_high));
    json_object_set_new(j, "duration", json_real(round(v->duration * 1000.0) / 1000.0));
    return j;
}

/* ---- loudnorm ------------------------------------------------------------ */

/* NORM_CAPPED: a window under 3 s that the dynamic mode would take. loudnorm
 * then takes its own short-input path, which in FFmpeg 5.1 can miss by 20 LU
 * (it mixes linear peaks with dB offsets); what that path means to do is done
 * instead: a plain gain, capped so the true peak stays under the ceiling. */
typedef enum norm_mode { NORM_NONE, NORM_LINEAR, NORM_DYNAMIC, NORM_CAPPED } norm_mode;

#define LOUDNORM_MIN_SECONDS 3.0 /* loudnorm's dynamic mode works in 3 s frames */

struct lnorm {
    bg_media_err *e;
    loudness_vals in;
    /* what loudnorm is given, after the same rounding it parses */
    double target_i, target_tp, target_lra, m_i, m_lra, m_tp, m_thresh;
    double gain; /* dB, for the modes that are a plain gain */
    norm_mode mode;
    lnorm_out_fn fn;
    void *ud;
    aconv conv; /* anything -> packed doubles, first rate and layout */
    bool conv_ready;
    int rate;
    agraph graph;
    AVFrame *tmp;
    ameter *meter; /* dynamic mode: measures what comes out */
    loudness_vals out;
};

/* x as printed with 3 decimals and read back: the value the filter uses. */
static double as_printed(double x)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.3f", x);
    return strtod(buf, NULL);
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* The arguments, and loudnorm's own choice between linear and dynamic
 * mode, made with the same rounded values it will parse. 0 LRA, -70 thresh,
 * 99 TP and 0 I are its "not measured" values, which would turn the linear
 * mode off for a steady tone (LRA 0): real measurements are nudged off them. */
static void plan_norm(lnorm *n)
{
    const loudness_vals *v = &n->in;
    double tp_db = v->tp > 0 ? 20.0 * log10(v->tp) : -99.0;
    n->m_i = as_printed(clamp(v->i, -99.0, -0.01));
    n->m_lra = as_printed(clamp(v->lra, 0.01, 99.0));
    n->m_tp = as_printed(clamp(tp_db, -99.0, 98.0));
    n->m_thresh = as_printed(clamp(v->thresh, -99.0, 0.0));
    if (n->m_thresh == ABS_GATE)
        n->m_thresh = ABS_GATE - 0.001;
    /* The range target follows a wider input: the aim is loudness, not
     * compressing the range, so only the peak ceiling forces the limiter. */
    n->target_lra = as_printed(clamp(ceil(n->m_lra), DEFAULT_LRA, MAX_LRA));
    n->target_i = as_printed(n->target_i);
    n->target_tp = as_printed(n->target_tp);
    double offset = n->target_i - n->m_i;
    bool linear = n->m_tp + offset <= n->target_tp && n->m_lra <= n->target_lra;
    n->mode = v->i <= ABS_GATE ? NORM_NONE : linear ? NORM_LINEAR : NORM_DYNAMIC;
    n->gain = n->mode == NORM_NONE ? 0.0 : offset;
    if (n->mode == NORM_DYNAMIC && v->duration < LOUDNORM_MIN_SECONDS) {
        n->mode = NORM_CAPPED;
        n->gain = as_printed(fmin(offset, n->target_tp - n->m_tp));
    }
}

static bg_err on_normalised(void *ud, const AVFrame *f)
{
    lnorm *n = ud;
    if (n->meter != NULL) {
        bg_err err = ameter_feed(n->meter, f, 0, f->nb_samples);
        if (err != BG_OK)
            return err;
    }
    return n->fn(n->ud, f);
}

static bg_err norm_converted(void *ud, uint8_t *const *data, int cnt)
{
    lnorm *n = ud;
    bool eof;
    bg_err err = agraph_push(&n->graph, data[0], cnt, n->rate, &n->conv.layout, n->e);
    if (err == BG_OK)
        err = agraph_pull(&n->graph, n->tmp, on_normalised, n, &eof, n->e);
    return err;
}

/* loudnorm works at 192 kHz in dynamic mode only: its output rate tells
 * which mode it really took, should its rule ever differ from plan_norm's
 * (the figures reported depend on it). Undecidable for 192 kHz input. */
static void check_mode(lnorm *n)
{
    if (n->mode != NORM_LINEAR && n->mode != NORM_DYNAMIC)
        return;
    int out_rate = av_buffersink_get_sample_rate(n->graph.sink);
    if (n->rate == TP_RATE || out_rate <= 0)
        return;
    n->mode = out_rate == TP_RATE ? NORM_DYNAMIC : NORM_LINEAR;
}

static bg_err norm_setup(lnorm *n, const AVFrame *f)
{
    char chain[512];
    if (n->mode == NORM_CAPPED)
        snprintf(chain, sizeof(chain), "volume=volume=%.3fdB:precision=double", n->gain);
    else
        snprintf(chain, sizeof(chain),
                 "loudnorm=I=%.3f:TP=%.3f:LRA=%.3f:measured_I=%.3f:measured_LRA=%.3f:"
                 "measured_TP=%.3f:measured_thresh=%.3f:offset=0:linear=true:print_format=none",
                 n->target_i, n->target_tp, n->target_lra, n->m_i, n->m_lra, n->m_tp, n->m_thresh);
    AVChannelLayout l;
    int ret = audio_frame_layout(f, &l);
    if (ret < 0)
        return audio_proc_err(n->e, ret, "normaliser");
    n->rate = f->sample_rate;
    bg_err err = aconv_init(&n->conv, AV_SAMPLE_FMT_DBL, n->rate, &l, norm_converted, n, n->e);
    if (err == BG_OK)
        n->conv_ready = true;
    if (err == BG_OK)
        err = agraph_init(&n->graph, n->rate, &l, chain, n->e);
    if (err == BG_OK)
        check_mode(n);
    if (err == BG_OK && n->mode == NORM_DYNAMIC)
        err = ameter_create(&n->meter, true, n->e);
    av_channel_layout_uninit(&l);
    return err;
}

bg_err lnorm_create(lnorm **out, const loudness_vals *measured, double target_i, double target_tp,
                    lnorm_out_fn fn, void *ud, bg_media_err *e)
{
    lnorm *n = av_mallocz(sizeof(*n));
    if (n == NULL || (n->tmp = av_frame_alloc()) == NULL) {
        av_free(n);
        return audio_proc_err(e, AVERROR(ENOMEM), "normaliser");
    }
    n->e = e;
    n->in = *measured;
    n->target_i = target_i;
    n->target_tp = target_tp;
    n->fn = fn;
    n->ud = ud;
    plan_norm(n);
    *out = n;
    return BG_OK;
}

/* NORM_NONE: the frame goes on untouched (a slice needs a frame of its own). */
static bg_err pass_through(lnorm *n, const AVFrame *f, int off, int cnt)
{
    if (off == 0 && cnt == f->nb_samples)
        return n->fn(n->ud, f);
    AVFrame *s = av_frame_alloc();
    int ret = s == NULL ? AVERROR(ENOMEM) : 0;
    if (ret == 0) {
        s->format = f->format;
        s->sample_rate = f->sample_rate;
        s->nb_samples = cnt;
        ret = av_channel_layout_copy(&s->ch_layout, &f->ch_layout);
    }
    if (ret >= 0)
        ret = av_frame_get_buffer(s, 0);
    if (ret >= 0)
        ret = av_samples_copy(s->extended_data, f->extended_data, 0, off, cnt,
                              f->ch_layout.nb_channels, f->format);
    bg_err err = ret < 0 ? audio_proc_err(n->e, ret, "normaliser") : n->fn(n->ud, s);
    av_frame_free(&s);
    return err;
}

bg_err lnorm_feed(lnorm *n, const AVFrame *f, int off, int cnt)
{
    if (n->mode == NORM_NONE)
        return pass_through(n, f, off, cnt);
    if (!n->conv_ready) {
        bg_err err = norm_setup(n, f);
        if (err != BG_OK)
            return err;
    }
    return aconv_feed(&n->conv, f, off, cnt);
}

bg_err lnorm_flush(lnorm *n)
{
    n->out = n->in;
    n->out.i = n->in.i + n->gain;
    n->out.tp = n->in.tp * pow(10.0, n->gain / 20.0);
    if (n->mode == NORM_NONE || !n->conv_ready)
        return BG_OK;
    bool eof = false;
    bg_err err = aconv_flush(&n->conv);
    if (err == BG_OK)
        err = agraph_push(&n->graph, NULL, 0, n->rate, NULL, n->e);
    if (err == BG_OK) /* one pull drains: no input can come after the end */
        err = agraph_pull(&n->graph, n->tmp, on_normalised, n, &eof, n->e);
    /* A pure gain moves I and the peaks by the gain and keeps the range:
     * only the dynamic mode's output needs measuring. */
    if (err == BG_OK && n->meter != NULL)
        err = ameter_finish(n->meter, &n->out);
    return err;
}

json_t *lnorm_json(const lnorm *n)
{
    static const char *const modes[] = {"none", "linear", "dynamic", "linear"};
    json_t *j = json_object();
    json_object_set_new(j, "input_i", real2(n->in.i));
    json_object_set_new(j, "input_tp", peak_db(n->in.tp));
    json_object_set_new(j, "input_lra", real2(n->in.lra));
    json_object_set_new(j, "input_thresh", real2(n->in.thresh));
    json_object_set_new(j, "output_i", real2(n->out.i));
    json_object_set_new(j, "output_tp", peak_db(n->out.tp));
    json_object_set_new(j, "output_lra", real2(n->out.lra));
    json_object_set_new(j, "target_i", real2(n->target_i));
    json_object_set_new(j, "target_tp", real2(n->target_tp));
    json_object_set_new(j, "target_lra", real2(n->target_lra));
    json_object_set_new(j, "normalization_type", json_string(modes[n->mode]));
    json_object_set_new(j, "gain_db", real2(n->gain));
    return j;
}

void lnorm_destroy(lnorm *n)
{
    if (n == NULL)
        return;
    aconv_fini(&n->conv);
    agraph_free(&n->graph);
    av_frame_free(&n->tmp);
    ameter_destroy(n->meter);
    av_free(n);
}
