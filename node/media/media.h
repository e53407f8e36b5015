/*
 * node/media/media.h — the robots that run in-process on libav (FFmpeg 5.1):
 * probing a file and encoding its audio. This folder is the only libav user
 * and the only place where AVERROR codes become bg_err.
 *
 * Pure library code: no threads of its own, no mutable globals beyond the
 * libav log set-up done once. Several worker threads may call these
 * functions at the same time on different files. A robot blocks its thread
 * for as long as the work takes, so it runs on a media worker, never on an
 * event loop.
 *
 * Inputs are opened through libav's "file" protocol only, and demuxers that
 * would open further resources named inside the file (hls, dash, concat,
 * imf, image2 patterns, sdp/rtp/rtsp) or that take any text for a picture
 * (tty and the other text-art demuxers) are refused as INVALID_INPUT, so an
 * uploaded playlist cannot make a robot read another file.
 *
 * Errors carry a bg_media_err: a code from the list below and a message
 * that names no path (the caller knows which files it passed). The struct is
 * written only when a function fails; it may be NULL.
 */
#ifndef BG_NODE_MEDIA_H
#define BG_NODE_MEDIA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/err.h"

/* Progress: called on the robot's thread at most every ~250 ms of wall time
 * (and never after the robot returns), with fraction 0..1 of the work done.
 * The first call comes as the robot starts (fraction 0), so a job canceled
 * before its robot ran stops at once; later calls may come from inside
 * libav's I/O (its interrupt callback), so fn must not call into this
 * module. Returning false cancels: the robot stops promptly (within a few
 * hundred ms), removes its partial output and returns BG_EBUSY with code
 * "CANCELED". fn may be NULL. */
typedef struct bg_media_progress {
    bool (*fn)(void *ud, double fraction);
    void *ud;
} bg_media_progress;

typedef struct bg_media_err {
    char code[32];     /* "INVALID_INPUT", "INPUT_MISSING", "PROCESSING_ERROR", "OUTPUT_ERROR",
                          "CANCELED", "INVALID_OPTIONS" */
    char message[256]; /* human text; never a path outside what the caller passed */
} bg_media_err;

/* Probes the file: *out = new JSON object (the caller owns it):
 * {"duration": seconds (number, 3 decimals; 0 when unknown), "format": container short name
 *  ("mp3", "mov,mp4,m4a,3gp,3g2,mj2"...), "format_long", "bit_rate": int, "size": bytes,
 *  "streams": [{"index", "type": "audio|video|other", "codec", "bit_rate",
 *               audio: "sample_rate", "channels", "channel_layout" (av_channel_layout_describe),
 *               video: "width", "height", "frame_rate" (number, 3 decimals),
 *                      "attached_pic" (true for cover art)}],
 *  "has_audio", "has_video", for the first video stream that is not cover art "width", "height",
 *  "frame_rate", "video_codec", and for the first audio stream "sample_rate", "channels",
 *  "audio_codec"}
 * Cover art (an mp3's picture) is listed as a video stream with "attached_pic" but does not make
 * "has_video" true.
 * Errors: BG_EMEDIA code INVALID_INPUT (cannot be opened as media, refused demuxer, no audio or
 * video stream with usable parameters — random bytes, an empty file, a text file), BG_EIO code
 * INPUT_MISSING (missing, unreadable or not a regular file), BG_ENOMEM. Any thread. */
bg_err bg_media_probe(const char *path, json_t **out, bg_media_err *e);

typedef struct bg_audio_encode_opts {
    const char *format; /* "mp3" (required now; "aac"/"opus" come later: others are
                           BG_EINVAL code INVALID_OPTIONS) */
    int64_t bitrate;    /* bits/s, 8000..320000; 0 = 128000 */
    int sample_rate;    /* 0 = keep the input's if the encoder supports it, else 44100;
                           otherwise a rate the encoder supports */
    int channels;       /* 0 = keep (capped at 2), 1 or 2 */
    double start_s;     /* seconds from the start of the audio stream, 0..1e7 */
    double duration_s;  /* 0 = until the end; else at most this many seconds (up to 1e7) */
} bg_audio_encode_opts;

/* Decodes the first audio stream of in, resamples (libswresample) and encodes to out (libmp3lame
 * through libavcodec, muxed by libavformat: mp3 with the ID3v2 tag and Xing/LAME header that
 * avformat writes by default). Other streams are discarded, never decoded. Writes to
 * out + ".part" and renames it to out on success only; the .part is removed on any failure or
 * cancel, and out is then left untouched. start_s seeks on the input side to the nearest earlier
 * point, then samples before start_s are dropped exactly. A duration past the input's end
 * encodes what exists. Progress fraction is output time / target duration.
 * *meta_out (may be NULL) = new JSON object {"duration", "bit_rate", "sample_rate", "channels",
 * "codec": "mp3", "format": "mp3"} measured by probing the written file.
 * Errors: BG_EINVAL (INVALID_OPTIONS: bad option, or start_s at or past the end of the audio),
 * BG_EIO (INPUT_MISSING: in missing or unreadable; OUTPUT_ERROR: out cannot be written or
 * renamed), BG_EMEDIA (INVALID_INPUT: not decodable, no audio stream, corrupt with nothing
 * decodable; PROCESSING_ERROR: resampler or encoder failure), BG_EBUSY (CANCELED), BG_ENOMEM.
 * A corrupt packet is skipped (as the ffmpeg tool does); a truncated input encodes what decodes.
 * The output is not fsync'ed. Any thread; blocks for the length of the work. */
bg_err bg_media_audio_encode(const char *in, const char *out, const bg_audio_encode_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e);

/* libav version line for logs ("libavformat 59.27.100, libavcodec 59.37.100, ..."), of the
 * libraries loaded at run time. Static storage; any thread. */
const char *bg_media_versions(void);

#endif
