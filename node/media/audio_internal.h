/*
 * node/media/audio_internal.h — the audio engine behind the audio robots:
 * one decode of a file's first audio stream (asrc) feeding any number of
 * sinks (asink): encoders (audio.c), EBU R128 meters (loudness.c) and sample
 * callbacks (audio_multi.c). Only node/media/audio*.c and loudness.c include
 * this header.
 *
 * All of it runs on the calling robot's thread; nothing here is shared
 * between runs.
 */
#ifndef BG_NODE_MEDIA_AUDIO_INTERNAL_H
#define BG_NODE_MEDIA_AUDIO_INTERNAL_H

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include "media_internal.h"

#define AUDIO_MAX_CHANNELS 64 /* more is not an audio file we take */
#define AUDIO_MAX_SECONDS 1e7 /* bounds start and duration: sample counts fit int64 */

/* Errors every audio part reports the same way. */
bg_err audio_canceled(bg_media_err *e);
bg_err audio_bad_opts(bg_media_err *e, const char *msg);
/* PROCESSING_ERROR "<what>: <text>" (ENOMEM becomes BG_ENOMEM). */
bg_err audio_proc_err(bg_media_err *e, int averr, const char *what);

/* The layout of f, or the usual one for its channel count when the frame
 * only knows the count (a plain wav). The caller uninits *out. */
int audio_frame_layout(const AVFrame *f, AVChannelLayout *out);

/* ---- aconv: any decoded audio to one fixed format ------------------------
 * Resamples with libswresample's defaults (what the ffmpeg tool's automatic
 * aresample uses). A resampler is made for each new input format, rate or
 * layout; what the previous one held goes out first. When the input already
 * has the output's format no resampler runs and out() gets pointers into the
 * frame. out() receives planes (one per channel when the format is planar)
 * valid only during the call. */
typedef bg_err (*aconv_out_fn)(void *ud, uint8_t *const *data, int n);

typedef struct aconv {
    enum AVSampleFormat fmt; /* output */
    int rate;
    AVChannelLayout layout;
    aconv_out_fn out;
    void *ud;
    bg_media_err *e;
    SwrContext *swr; /* NULL while the input needs no conversion */
    bool have_in;
    AVChannelLayout in_layout;
    int in_rate, in_fmt;
    uint8_t **buf; /* swr output, cap samples per channel */
    int cap;
} aconv;

/* Errors: BG_ENOMEM, BG_EMEDIA PROCESSING_ERROR. */
bg_err aconv_init(aconv *c, enum AVSampleFormat fmt, int rate, const AVChannelLayout *layout,
                  aconv_out_fn out, void *ud, bg_media_err *e);
/* Converts samples [off, off + n) of f. */
bg_err aconv_feed(aconv *c, const AVFrame *f, int off, int n);
/* Gives out what the resampler still holds. */
bg_err aconv_flush(aconv *c);
/* Accepts a zeroed struct. */
void aconv_fini(aconv *c);

/* ---- asink: a consumer of decoded audio ---------------------------------
 * Embedded as the first member of each concrete sink. The source gives each
 * sink the samples of its window only: from start_s (exactly, whatever the
 * container's seek points) for duration_s seconds (0: to the end). */
typedef struct asink asink;
struct asink {
    bg_err (*feed)(asink *s, const AVFrame *f, int off, int n); /* samples [off, off+n) */
    bg_err (*finish)(asink *s); /* the window is complete: flush everything */
    double start_s, duration_s;
    bool full; /* set by the sink when it takes no more samples */
    /* the source's bookkeeping */
    bool started;
    int64_t fed;  /* samples given */
    double fed_s; /* seconds given */
};

/* ---- asrc: one decode of the first audio stream -------------------------- */
typedef struct asrc {
    media_ctl *ctl;
    bg_media_err *e;
    media_input in;
    AVStream *ist;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    double origin;      /* stream start on its timeline, seconds */
    double dur;         /* audio duration, seconds; <= 0 when unknown */
    double next_s;      /* where the next frame starts when it carries no pts */
    bool decoded;       /* some frame was decoded */
    double base, scale; /* this pass's share of the progress fraction */
    double span0, span; /* decoded time range of this pass, for progress */
} asrc;

/* Opens path, picks its first audio stream (others are discarded) and
 * opens its decoder. Errors: BG_EIO INPUT_MISSING, BG_EMEDIA INVALID_INPUT,
 * BG_EBUSY CANCELED, BG_ENOMEM. On error nothing is left open. */
bg_err asrc_open(asrc *s, const char *path, media_ctl *ctl, bg_media_err *e);

/* Seconds of audio from start_s to the end; <= 0 when unknown or none. */
double asrc_avail(const asrc *s, double start_s);

/* Decodes once, from the earliest window start to the latest end, giving
 * every sink its window; then calls each sink's finish. Progress goes from
 * base to base + scale. A sink that got no sample fails the run:
 * INVALID_OPTIONS when its start is at or past the end of the audio, else
 * INVALID_INPUT. Errors also: BG_EBUSY CANCELED, BG_ENOMEM, whatever a sink
 * returns. Call once per asrc_open. */
bg_err asrc_run(asrc *s, asink *const *sinks, size_t n, double base, double scale);

/* Accepts a zeroed struct. */
void asrc_close(asrc *s);

/* ---- EBU R128 meter (loudness.c) ----------------------------------------- */
typedef struct loudness_vals {
    double i;   /* integrated, LUFS (-70 when nothing passed the gates) */
    double lra; /* loudness range, LU */
    double lra_low, lra_high;
    double thresh;   /* relative gate of I, LUFS (-70 when none) */
    double tp;       /* true peak, linear (0 when not measured or silent) */
    double sp;       /* sample peak, linear */
    double duration; /* seconds measured */
    bool true_peak;  /* tp was measured */
} loudness_vals;

typedef struct ameter ameter;

/* A meter: the ebur128 filter (48 kHz, its frame metadata) plus peaks taken
 * the way that filter takes them. true_peak: also the 4x oversampled peak.
 * Errors: BG_ENOMEM. */
bg_err ameter_create(ameter **out, bool true_peak, bg_media_err *e);
/* Any format and rate; the meter converts. */
bg_err ameter_feed(ameter *m, const AVFrame *f, int off, int n);
/* Flushes and gives the values; call once. */
bg_err ameter_finish(ameter *m, loudness_vals *v);
/* The meter as a sink (its finish stores the values, read by ameter_vals). */
asink *ameter_sink(ameter *m);
const loudness_vals *ameter_vals(const ameter *m);
void ameter_destroy(ameter *m);

/* {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
 *  "threshold_lufs", "lra_low_lufs", "lra_high_lufs", "duration"} */
json_t *loudness_json(const loudness_vals *v);

/* ---- loudnorm second pass (loudness.c) ----------------------------------- */
typedef struct lnorm lnorm;
typedef bg_err (*lnorm_out_fn)(void *ud, const AVFrame *f);

/* A normaliser to target_i LUFS with a true-peak ceiling of target_tp dBTP,
 * from the first pass's measurement: the loudnorm filter given measured_*
 * and linear=true. Input below the absolute gate (silence) passes unchanged.
 * Errors: BG_ENOMEM. */
bg_err lnorm_create(lnorm **out, const loudness_vals *measured, double target_i, double target_tp,
                    lnorm_out_fn fn, void *ud, bg_media_err *e);
bg_err lnorm_feed(lnorm *n, const AVFrame *f, int off, int cnt);
bg_err lnorm_flush(lnorm *n);
/* {"input_i", "input_tp", "input_lra", "input_thresh", "output_i", "output_tp", "output_lra",
 *  "target_i", "target_tp", "target_lra", "normalization_type", "gain_db"} after lnorm_flush. */
json_t *lnorm_json(const lnorm *n);
void lnorm_destroy(lnorm *n);

/* ---- encoder sink (audio.c) ----------------------------------------------- */
typedef struct aenc aenc;

/* Checks o and out before any input is opened. Errors: BG_EINVAL
 * INVALID_OPTIONS, BG_EMEDIA PROCESSING_ERROR (encoder missing). */
bg_err aenc_check(const bg_audio_encode_opts *o, const char *out, bg_media_err *e);
/* Opens the encoder and creates out.part. measured: the first pass's values
 * when o->normalize (else NULL). */
bg_err aenc_create(aenc **out, const asrc *src, const char *path, const bg_audio_encode_opts *o,
                   const loudness_vals *measured, media_ctl *ctl, bg_media_err *e);
asink *aenc_sink(aenc *a);
/* After a successful run: closes the file and describes it ({"duration", ...,
 * "loudness" when normalised}). */
bg_err aenc_describe(aenc *a, json_t **meta);
/* Renames out.part to out. */
bg_err aenc_commit(aenc *a);
/* Frees a. Unless keep, removes what it wrote: out.part, or out once
 * committed (a later commit of the same run failed). Accepts NULL. */
void aenc_destroy(aenc *a, bool keep);

#endif
