/*
 * node/media/video.h — the /video/encode robot: any video file with a
 * decodable video stream becomes an h264 (libx264) + aac (native encoder)
 * mp4 with its index at the front ("faststart"), scaled, frame-rate capped
 * and cut as asked. Runs in-process on libavformat/libavcodec/libavfilter
 * (FFmpeg 5.1); errors, progress and cancel work as in media.h.
 */
#ifndef BG_NODE_MEDIA_VIDEO_H
#define BG_NODE_MEDIA_VIDEO_H

#include <jansson.h>
#include <stdint.h>

#include "media.h"
#include "proto/err.h"

#define BG_VIDEO_CRF_DEFAULT 23
#define BG_VIDEO_MAX_SIDE 8192 /* largest output width or height */

typedef struct bg_video_encode_opts {
    int width, height;     /* output size in pixels, 0 or 2..BG_VIDEO_MAX_SIDE. Both 0: the
                              input's size; one 0: computed from the other keeping the input's
                              pixel aspect (rounded to the nearest even number, as
                              scale=W:-2 does); both set: exactly that many pixels, and, when
                              the input declares a sample aspect ratio, the output's is set so
                              players still show the input's display aspect (as vf_scale and
                              the ffmpeg tool do). An odd value is rounded down to even. */
    int crf;               /* -1 = BG_VIDEO_CRF_DEFAULT; 0..51 (0 is lossless). Exclusive
                              with video_bitrate. */
    int64_t video_bitrate; /* 0 = use crf; else average bits/s, 16000..200000000 (one pass) */
    const char *preset;    /* NULL = "veryfast"; ultrafast, superfast, veryfast, faster, fast,
                              medium, slow, slower, veryslow */
    double max_fps;        /* 0 = keep the input's frame timing; else 1..240: an input whose
                              frame rate is above it is resampled to exactly max_fps (frames
                              dropped, or duplicated across gaps); one at or below it is kept */
    int64_t audio_bitrate; /* 0 = 128000; else 16000..512000 bits/s */
    double start_s;        /* seconds from the start of the input, 0..1e7 */
    double duration_s;     /* 0 = until the end; else at most this many seconds (up to 1e7) */
    int threads;           /* 0 = libav's automatic choice (all cores) for the decoder, the
                              scaler and x264; else at most this many each, 1..64 */
} bg_video_encode_opts;

/* Fills o with the defaults above (crf -1, everything else 0/NULL). A
 * caller that zeroes the struct instead gets crf 0: lossless. Any thread. */
void bg_video_encode_opts_init(bg_video_encode_opts *o);

/* Decodes the first video stream of in (cover art is not one) and the first
 * audio stream if there is one, and writes out: h264 yuv420p by libx264 (High
 * profile; High 4:4:4 Predictive at crf 0) with the preset and the crf or
 * bitrate asked, and aac LC by the native encoder (at most 2 channels; the
 * input's sample rate when aac takes it, else 48000), in mp4 with movflags
 * +faststart. An input without audio gives a video-only mp4. Other streams,
 * metadata, chapters and rotation tags are not copied.
 *
 * Scaling is libswscale bicubic (the ffmpeg tool's default); frames are
 * converted to yuv420p. start_s seeks on the input side to the nearest
 * earlier key frame (backing off when a container seeked by timestamps,
 * like MPEG-TS, lands past it), then frames and samples before start_s are
 * dropped (audio to the sample); both streams start from that one instant,
 * so they stay in sync. Timestamps are kept (variable frame rate stays variable)
 * unless max_fps applies. B-frames and the encoders' delay are flushed at
 * the end.
 *
 * Writes to out + ".part" and renames it to out on success only; the .part
 * is removed on any failure or cancel, and out is then left untouched. The
 * output is not fsync'ed. Progress fraction = output time / expected output
 * duration (from the container's duration, start_s and duration_s). The
 * first progress call comes before anything is opened; a cancel stops
 * within one frame's work (or one I/O wait; the faststart rewrite at the
 * end is interruptible too).
 *
 * *meta_out (may be NULL) = new JSON object, measured by probing the written
 * file: {"duration": s, "width", "height", "frame_rate": fps (3 decimals),
 * "video_codec": "h264", "audio_codec": "aac" or null, "bit_rate": bits/s
 * of the whole file, "size": bytes}.
 *
 * Errors: BG_EINVAL INVALID_OPTIONS (an option out of range, crf and
 * video_bitrate both set, unknown preset, a computed size out of range,
 * start_s at or past the end, a window holding no video frame), BG_EIO INPUT_MISSING (in missing,
 * unreadable or not a regular file) or OUTPUT_ERROR (out.part cannot be written or renamed),
 * BG_EMEDIA INVALID_INPUT (not media, a refused container, no video stream — audio-only files and
 * cover art included —, a video over 7680x4320 pixels by area, nothing decodable) or
 * PROCESSING_ERROR (filter or encoder failure, libx264 missing),
 * BG_EBUSY CANCELED, BG_ENOMEM. A corrupt packet is skipped as the ffmpeg
 * tool does; a truncated input encodes what decodes.
 *
 * Any thread; several at once on different files. Blocks for the length of
 * the work and uses every core unless o->threads limits it. */
bg_err bg_media_video_encode(const char *in, const char *out, const bg_video_encode_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e);

#endif
