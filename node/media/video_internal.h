/*
 * node/media/video_internal.h — what node/media/video.c and video_out.c
 * share: the run of one encode and its lanes.
 */
#ifndef BG_VIDEO_INTERNAL_H
#define BG_VIDEO_INTERNAL_H

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

/* video.c: errors (each fills r->e and returns the bg_err), progress,
 * decoding */
bg_err bg_vid_canceled(run *r);
bg_err bg_vid_in_err(run *r, int ret, const char *what);
bg_err bg_vid_proc_err(run *r, int ret, const char *what);
bg_err bg_vid_out_err(run *r, int ret, const char *what);
double bg_vid_fraction(const run *r);
/* video_out.c: the output side */
bg_err bg_vid_plan_size(run *r);
bg_err bg_vid_open_output(run *r);
bg_err bg_vid_open_video_encoder(run *r);
bg_err bg_vid_open_audio_encoder(run *r);
bg_err bg_vid_start_output(run *r);
bg_err bg_vid_write_packets(run *r, lane *l);
bg_err bg_vid_close_graph(run *r, lane *l);
bg_err bg_vid_decode(run *r, lane *l, const AVPacket *pkt);

#endif
