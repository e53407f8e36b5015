/*
 * node/media/audio_multi.c — the public audio robots on the shared engine:
 * bg_media_audio_multi (one decode, several outputs), and bg_media_audio_encode
 * and bg_media_loudness, which are one-job runs of it. Also the samples sink
 * (mono floats to a callback, for waveforms).
 *
 * A run has one or two passes. Pass 1 decodes once for every plain encode,
 * every loudness measurement, every samples callback and the measurement of
 * every normalised encode. Pass 2, only when some encode is normalised,
 * decodes again for those encodes: loudnorm's linear mode needs the whole
 * input's loudness before its first sample can go out.
 */
#include "audio_internal.h"

#include <math.h>
#include <string.h>

#define MAX_JOBS 16
#define PASS1_SHARE 0.35 /* of the progress, when a second pass follows */

/* ---- samples sink ---------------------------------------------------------- */

typedef struct samples_sink {
    asink sink; /* first: the sink's callbacks get a samples_sink */
    const bg_audio_multi_job *job;
    bg_media_err *e;
    aconv conv; /* float planar, the first frame's rate and layout */
    bool ready;
    float *mono;
    int cap;
    int64_t count;
} samples_sink;

static bg_err mono_out(void *ud, uint8_t *const *data, int n)
{
    samples_sink *s = ud;
    if (n > s->cap) {
        av_freep(&s->mono);
        s->cap = 0;
        s->mono = av_malloc_array((size_t)n, sizeof(float));
        if (s->mono == NULL)
            return audio_proc_err(s->e, AVERROR(ENOMEM), "samples");
        s->cap = n;
    }
    int ch = s->conv.layout.nb_channels;
    for (int k = 0; k < n; k++) {
        float sum = 0;
        for (int c = 0; c < ch; c++)
            sum += ((const float *)data[c])[k];
        s->mono[k] = sum / (float)ch;
    }
    s->count += n;
    s->job->on_samples(s->job->ud, s->mono, (size_t)n, s->conv.rate);
    return BG_OK;
}

static bg_err samples_feed(asink *k, const AVFrame *f, int off, int n)
{
    samples_sink *s = (samples_sink *)k;
    if (!s->ready) {
        AVChannelLayout l;
        int ret = audio_frame_layout(f, &l);
        if (ret < 0)
            return audio_proc_err(s->e, ret, "samples");
        bg_err err =
            aconv_init(&s->conv, AV_SAMPLE_FMT_FLTP, f->sample_rate, &l, mono_out, s, s->e);
        av_channel_layout_uninit(&l);
        if (err != BG_OK)
            return err;
        s->ready = true;
    }
    return aconv_feed(&s->conv, f, off, n);
}

static bg_err samples_finish(asink *k)
{
    samples_sink *s = (samples_sink *)k;
    return s->ready ? aconv_flush(&s->conv) : BG_OK;
}

static json_t *samples_json(const samples_sink *s)
{
    int rate = s->conv.rate;
    double d = rate > 0 ? (double)s->count / rate : 0.0;
    return json_pack("{sIsisf}", "samples", (json_int_t)s->count, "sample_rate", rate, "duration",
                     round(d * 1000.0) / 1000.0);
}

static void samples_destroy(samples_sink *s)
{
    if (s == NULL)
        return;
    aconv_fini(&s->conv);
    av_freep(&s->mono);
    av_free(s);
}

/* ---- the run --------------------------------------------------------------- */

typedef struct mjob {
    const bg_audio_multi_job *job;
    aenc *enc;         /* ENCODE */
    ameter *meter;     /* LOUDNESS, or pass 1 of a normalised ENCODE */
    bool shared_meter; /* meter belongs to an earlier job */
    samples_sink *smp; /* SAMPLES */
} mjob;

typedef struct multi {
    const char *in;
    media_ctl ctl;
    bg_media_err *e;
    mjob jobs[MAX_JOBS];
    size_t n;
    bool two_pass;
} multi;

static bool is_norm(const bg_audio_multi_job *j)
{
    return j->kind == BG_AUDIO_JOB_ENCODE && j->opts.normalize;
}

static bool seconds_ok(double s)
{
    return isfinite(s) && s >= 0.0 && s <= AUDIO_MAX_SECONDS;
}

static bg_err check_jobs(multi *m, const bg_audio_multi_job *jobs, size_t n)
{
    if (m->in == NULL || jobs == NULL || n == 0 || n > MAX_JOBS)
        return audio_bad_opts(m->e, "an input and 1 to 16 jobs are required");
    for (size_t i = 0; i < n; i++) {
        const bg_audio_multi_job *j = &jobs[i];
        bg_err err = BG_OK;
        if (j->kind == BG_AUDIO_JOB_ENCODE)
            err = aenc_check(&j->opts, j->out, m->e);
        else if (j->kind == BG_AUDIO_JOB_SAMPLES && j->on_samples == NULL)
            err = audio_bad_opts(m->e, "a samples job needs on_samples");
        else if (j->kind != BG_AUDIO_JOB_LOUDNESS && j->kind != BG_AUDIO_JOB_SAMPLES &&
                 j->kind != BG_AUDIO_JOB_ENCODE)
            err = audio_bad_opts(m->e, "unknown job kind");
        else if (!seconds_ok(j->opts.start_s) || !seconds_ok(j->opts.duration_s))
            err = audio_bad_opts(m->e, "start and duration must be seconds >= 0");
        for (size_t k = 0; err == BG_OK && k < i; k++)
            if (j->kind == BG_AUDIO_JOB_ENCODE && jobs[k].kind == BG_AUDIO_JOB_ENCODE &&
                strcmp(j->out, jobs[k].out) == 0)
                err = audio_bad_opts(m->e, "two encodes write the same output");
        if (err != BG_OK)
            return err;
        m->jobs[i].job = j;
        m->two_pass = m->two_pass || is_norm(j);
    }
    m->n = n;
    return BG_OK;
}

static bool same_window(const bg_audio_multi_job *a, const bg_audio_multi_job *b)
{
    return a->opts.start_s == b->opts.start_s && a->opts.duration_s == b->opts.duration_s;
}

/* A normalised encode measures its window; an earlier meter of the same
 * window (a loudness job, another normalised encode) serves it as well. */
static bg_err meter_for(multi *m, size_t i, asink **sink)
{
    mjob *mj = &m->jobs[i];
    *sink = NULL;
    for (size_t k = 0; k < i; k++) {
        if (m->jobs[k].meter != NULL && !m->jobs[k].shared_meter &&
            same_window(m->jobs[k].job, mj->job)) {
            mj->meter = m->jobs[k].meter;
            mj->shared_meter = true;
            return BG_OK;
        }
    }
    bg_err err = ameter_create(&mj->meter, true, m->e);
    if (err != BG_OK)
        return err;
    *sink = ameter_sink(mj->meter);
    (*sink)->start_s = mj->job->opts.start_s;
    (*sink)->duration_s = mj->job->opts.duration_s;
    return BG_OK;
}

static bg_err samples_create(multi *m, mjob *mj, asink **sink)
{
    samples_sink *s = av_mallocz(sizeof(*s));
    if (s == NULL)
        return audio_proc_err(m->e, AVERROR(ENOMEM), "samples");
    s->sink.feed = samples_feed;
    s->sink.finish = samples_finish;
    s->sink.start_s = mj->job->opts.start_s;
    s->sink.duration_s = mj->job->opts.duration_s;
    s->job = mj->job;
    s->e = m->e;
    mj->smp = s;
    *sink = &s->sink;
    return BG_OK;
}

/* Makes job i's sink for pass 1 (*sink NULL: nothing to do in this pass). */
static bg_err pass1_sink(multi *m, const asrc *src, size_t i, asink **sink)
{
    mjob *mj = &m->jobs[i];
    const bg_audio_multi_job *j = mj->job;
    *sink = NULL;
    if (is_norm(j) || j->kind == BG_AUDIO_JOB_LOUDNESS)
        return meter_for(m, i, sink);
    if (j->kind == BG_AUDIO_JOB_SAMPLES)
        return samples_create(m, mj, sink);
    bg_err err = aenc_create(&mj->enc, src, j->out, &j->opts, NULL, &m->ctl, m->e);
    if (err == BG_OK)
        *sink = aenc_sink(mj->enc);
    return err;
}

static bg_err pass2_sink(multi *m, const asrc *src, size_t i, asink **sink)
{
    mjob *mj = &m->jobs[i];
    *sink = NULL;
    if (!is_norm(mj->job))
        return BG_OK;
    bg_err err = aenc_create(&mj->enc, src, mj->job->out, &mj->job->opts, ameter_vals(mj->meter),
                             &m->ctl, m->e);
    if (err == BG_OK)
        *sink = aenc_sink(mj->enc);
    return err;
}

typedef bg_err (*sink_maker)(multi *m, const asrc *src, size_t i, asink **sink);

static bg_err run_pass(multi *m, sink_maker make, double base, double scale)
{
    asrc src;
    bg_err err = asrc_open(&src, m->in, &m->ctl, m->e);
    if (err != BG_OK)
        return err;
    asink *sinks[MAX_JOBS];
    size_t ns = 0;
    for (size_t i = 0; i < m->n && err == BG_OK; i++) {
        asink *k = NULL;
        err = make(m, &src, i, &k);
        if (k != NULL)
            sinks[ns++] = k;
    }
    if (err == BG_OK && ns > 0)
        err = asrc_run(&src, sinks, ns, base, scale);
    asrc_close(&src);
    return err;
}

static bg_err results(multi *m, json_t **out)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < m->n; i++) {
        mjob *mj = &m->jobs[i];
        json_t *r = NULL;
        bg_err err = BG_OK;
        if (mj->job->kind == BG_AUDIO_JOB_ENCODE)
            err = aenc_describe(mj->enc, &r);
        else if (mj->job->kind == BG_AUDIO_JOB_LOUDNESS)
            r = loudness_json(ameter_vals(mj->meter));
        else
            r = samples_json(mj->smp);
        if (err != BG_OK) {
            json_decref(arr);
            return err;
        }
        json_array_append_new(arr, r);
    }
    *out = arr;
    return BG_OK;
}

static bg_err commit_all(multi *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->jobs[i].enc == NULL)
            continue;
        bg_err err = aenc_commit(m->jobs[i].enc);
        if (err != BG_OK)
            return err;
    }
    return BG_OK;
}

static void free_jobs(multi *m, bool keep)
{
    for (size_t i = 0; i < m->n; i++) {
        mjob *mj = &m->jobs[i];
        aenc_destroy(mj->enc, keep);
        if (!mj->shared_meter)
            ameter_destroy(mj->meter);
        samples_destroy(mj->smp);
    }
}

bg_err bg_media_audio_multi(const char *in, const bg_audio_multi_job *jobs, size_t n,
                            const bg_media_progress *p, json_t **results_out, bg_media_err *e)
{
    media_init();
    multi m = {.in = in, .e = e};
    media_ctl_init(&m.ctl, p);
    json_t *res = NULL;
    bg_err err = check_jobs(&m, jobs, n);
    if (err == BG_OK && !media_ctl_tick(&m.ctl, 0.0))
        err = audio_canceled(e);
    double share = m.two_pass ? PASS1_SHARE : 1.0;
    if (err == BG_OK)
        err = run_pass(&m, pass1_sink, 0.0, share);
    if (err == BG_OK && m.two_pass)
        err = run_pass(&m, pass2_sink, share, 1.0 - share);
    if (err == BG_OK && results_out != NULL)
        err = results(&m, &res);
    if (err == BG_OK)
        err = commit_all(&m);
    free_jobs(&m, err == BG_OK);
    if (err != BG_OK) {
        json_decref(res);
        return err;
    }
    if (results_out != NULL)
        *results_out = res;
    return BG_OK;
}

bg_err bg_media_audio_encode(const char *in, const char *out, const bg_audio_encode_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e)
{
    if (o == NULL) {
        media_init();
        return audio_bad_opts(e, "input, output and options are required");
    }
    bg_audio_multi_job job = {.kind = BG_AUDIO_JOB_ENCODE, .out = out, .opts = *o};
    json_t *res = NULL;
    bg_err err = bg_media_audio_multi(in, &job, 1, p, meta_out != NULL ? &res : NULL, e);
    if (err == BG_OK && meta_out != NULL)
        *meta_out = json_incref(json_array_get(res, 0));
    json_decref(res);
    return err;
}

bg_err bg_media_loudness(const char *path, const bg_media_progress *p, json_t **out,
                         bg_media_err *e)
{
    bg_audio_multi_job job = {.kind = BG_AUDIO_JOB_LOUDNESS};
    json_t *res = NULL;
    bg_err err = bg_media_audio_multi(path, &job, 1, p, &res, e);
    if (err == BG_OK)
        *out = json_incref(json_array_get(res, 0));
    json_decref(res);
    return err;
}
