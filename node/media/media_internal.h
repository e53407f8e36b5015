/*
 * node/media/media_internal.h — what the robots of node/media/ share: the
 * one-time libav set-up, error recording, progress and cancel state, and
 * opening an input safely. No other folder includes this header.
 */
#ifndef BG_NODE_MEDIA_INTERNAL_H
#define BG_NODE_MEDIA_INTERNAL_H

#include <libavformat/avformat.h>
#include <stdbool.h>
#include <stdint.h>

#include "media.h"

/* Minimum wall time between two progress calls. */
#define MEDIA_PROGRESS_INTERVAL_US 250000

/* Progress and cancel state of one robot run. The robot's loop and libav's
 * interrupt callback (same thread) both go through media_ctl_tick. */
typedef struct media_ctl {
    const bg_media_progress *p; /* NULL or fn NULL: no calls, never canceled */
    int64_t last_us;            /* av_gettime_relative() of the last call; 0 before the first */
    double fraction;            /* last fraction reported */
    bool canceled;
} media_ctl;

/* Sets av_log's level and callback once per process. Every public entry
 * point calls it first. */
void media_init(void);

/* Records a failure in e (which may be NULL). fmt must not print a path. */
void media_err(bg_media_err *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* media_err with "<what>: <libav's text for averr>". */
void media_err_av(bg_media_err *e, const char *code, const char *what, int averr);

void media_ctl_init(media_ctl *c, const bg_media_progress *p);

/* Records fraction (clamped to 0..1) and calls the progress function if
 * this is the first call or MEDIA_PROGRESS_INTERVAL_US have passed since the
 * last. Returns false once the run is canceled. */
bool media_ctl_tick(media_ctl *c, double fraction);

/* AVIOInterruptCB callback; opaque is a media_ctl. Reports the last fraction
 * when due, and returns 1 once the run is canceled. */
int media_interrupt_cb(void *opaque);

/* An opened input. The AVIOContext is ours (custom I/O): the demuxer is
 * picked by probing it, and refused ones are never given the file. */
typedef struct media_input {
    AVFormatContext *ic;
    AVIOContext *pb;
    int64_t size; /* bytes, from stat */
} media_input;

/* Opens path with the "file" protocol only, probes the demuxer, refuses the
 * ones that open other resources, and reads the header (no stream info).
 * ctl (may be NULL) becomes the interrupt callback of every I/O.
 * Errors: BG_EIO INPUT_MISSING, BG_EMEDIA INVALID_INPUT, BG_EBUSY CANCELED,
 * BG_ENOMEM. On error nothing is left open. */
bg_err media_input_open(media_input *in, const char *path, media_ctl *ctl, bg_media_err *e);

/* Closes what media_input_open opened. Accepts a zeroed struct. */
void media_input_close(media_input *in);

/* Translates an AVERROR met while demuxing or decoding the input:
 * AVERROR_EXIT → BG_EBUSY CANCELED, ENOMEM → BG_ENOMEM, anything else →
 * BG_EMEDIA INVALID_INPUT ("<what>: <text>"). */
bg_err media_input_averr(int averr, const char *what, bg_media_err *e);

#endif
