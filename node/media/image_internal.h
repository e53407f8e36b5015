/*
 * node/media/image_internal.h — what node/media/image.c and image_input.c
 * share: the decoded input (vin) and the scaler state (picture).
 */
#ifndef BG_IMAGE_INTERNAL_H
#define BG_IMAGE_INTERNAL_H

#include "image.h"
#include "media_internal.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avstring.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include "proto/mem.h"

#define MAX_OFFSET_S 1e7
#define TIME_EPS_S 0.0005     /* timestamps are compared to half a millisecond */
#define NO_INDEX_GAP_S 2.0    /* without a seek index, decode on over gaps up to this */
#define SKIP_MARGIN_S 0.5     /* non-reference frames are decoded this close to a target */
#define MAX_STEM 200
#define MAX_DECODE_ERRORS 64 /* receive errors in a row before giving up */

/* Scaler state of one robot run (sws2: the second pass of jpeg with alpha). */
typedef struct picture {
    struct SwsContext *sws, *sws2;
} picture;

/* A video (or picture) input, decoded frame by frame. */
typedef struct vin {
    media_ctl ctl;
    media_input in;
    bg_media_err *e;
    AVStream *st;
    AVCodecContext *dec;
    AVPacket *pkt;
    double origin;   /* stream start, seconds */
    double duration; /* seconds; 0 = unknown */
    double frac;     /* progress reported while reading */
    double skip_before; /* packets earlier than this (seconds) skip non-reference frames */
    bool draining;   /* the demuxer ended: the decoder was told */
    bool decoded;    /* some frame came out */
} vin;

/* image.c: errors (each fills e and returns the bg_err) */
bg_err bg_img_canceled(bg_media_err *e);
bg_err bg_img_bad_input(bg_media_err *e, const char *msg);
bg_err bg_img_proc_err(bg_media_err *e, int ret, const char *what);
/* image_input.c: the input */
bg_err bg_img_vin_open(vin *v, const char *path, bool thumbs);
void bg_img_vin_close(vin *v);
bg_err bg_img_vin_read(vin *v, AVFrame *f);
double bg_img_frame_time(const vin *v, const AVFrame *f);
int64_t bg_img_stream_ts(const vin *v, double t);
bg_err bg_img_vin_seek(vin *v, double t, bool *seeked);

#endif
