/*
 * node/media/image.h — still pictures on libav (FFmpeg 5.1): thumbnails of a
 * video (/video/thumbs), resized images (/image/resize), and raw pixels
 * written as an image file (used by the waveform robot).
 *
 * Same ground rules as media.h: pure library code, no threads of its own,
 * several workers may call these functions at once on different files; a
 * robot blocks its thread for as long as the work takes. Inputs are opened
 * by media.c's safe opener (file protocol only, playlists and image-sequence
 * patterns refused). Errors fill a bg_media_err (may be NULL) whose message
 * names no path. Progress and cancel follow bg_media_progress (media.h): a
 * canceled robot returns BG_EBUSY "CANCELED" within a few hundred ms and
 * leaves no output and no .part behind.
 *
 * Sizes: output dimensions are at most BG_IMAGE_MAX_DIM; a source whose
 * width × height exceeds BG_IMAGE_MAX_SOURCE_PIXELS is refused as
 * INVALID_INPUT before anything is decoded at that size (decompression
 * bombs).
 */
#ifndef BG_NODE_MEDIA_IMAGE_H
#define BG_NODE_MEDIA_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"
#include "proto/err.h"

#define BG_IMAGE_MAX_DIM 8192
#define BG_IMAGE_MAX_SOURCE_PIXELS 100000000LL
#define BG_THUMBS_MAX 100

typedef enum bg_image_format {
    BG_IMAGE_JPEG = 0, /* mjpeg encoder, yuvj420p (full range, BT.601) */
    BG_IMAGE_PNG,      /* png encoder, rgb24 (rgba when the source has alpha) */
    BG_IMAGE_WEBP,     /* libwebp encoder, lossy, yuv420p (yuva420p with alpha) */
} bg_image_format;

/* "jpeg" or "jpg", "png", "webp" (exactly, lower case) → *out; false for
 * anything else (*out untouched). Pure; any thread. */
bool bg_image_format_parse(const char *name, bg_image_format *out);

/* File extension without the dot ("jpg", "png", "webp") and MIME type
 * ("image/jpeg"...). Static strings; any thread. */
const char *bg_image_format_ext(bg_image_format f);
const char *bg_image_format_mime(bg_image_format f);

/* ---- /video/thumbs ---------------------------------------------------- */

typedef struct bg_thumbs_opts {
    int count;             /* used when n_offsets == 0: 1..BG_THUMBS_MAX frames at
                              (i + 0.5) × duration / count, i = 0..count-1 */
    const double *offsets; /* seconds from the start of the video, each 0 <= x < duration
                              (and <= 1e7); caller's order is kept; duplicates allowed */
    size_t n_offsets;      /* 0..BG_THUMBS_MAX */
    bg_image_format format;
    int width;   /* 0 = the video's width; else 16..BG_IMAGE_MAX_DIM. The height keeps the
                    display aspect (sample aspect ratio applied) and is rounded to an even
                    number the way ffmpeg's scale=W:-2 does: 2 × round(W × h / (w × sar × 2)) */
    int quality; /* jpeg and webp: 1..100 (100 best); 0 = 85 for jpeg, 80 for webp; png ignores it */
} bg_thumbs_opts;

typedef struct bg_media_thumb {
    char name[256];   /* "<stem>-<n>.<ext>", n = 1.. in the order of the offsets */
    char path[4096];  /* out_dir "/" name */
    double offset;    /* the requested offset, seconds */
    double time;      /* timestamp of the frame taken, seconds from the start of the video */
    int width, height;
    int64_t size;     /* bytes */
} bg_media_thumb;

/* Takes one frame per offset from the first video stream of in (cover art
 * does not count) and writes each, scaled, to out_dir/<stem>-<n>.<ext>.
 * Seeks on the input side: for each offset (handled in time order) the
 * demuxer seeks back to the keyframe at or before it (AVSEEK_FLAG_BACKWARD)
 * unless decoding on from the previous thumbnail is cheaper (no keyframe in
 * between), then decodes forward to the first frame whose timestamp is >=
 * the offset: on mp4, mkv and webm the very frame `ffmpeg -ss T -i in
 * -frames:v 1` gives (checked pixel for pixel). Containers without a
 * keyframe index (mpeg-ts) seek to any packet; when the first frame decoded
 * after such a seek is already past the offset, the seek is retried from
 * 1 s, 2 s, 4 s... earlier, so the frame is still the exact one. Offsets are
 * from the video stream's start time. An offset inside the last frame
 * (between its start and the duration) takes the last frame. Video with an
 * unknown duration supports count 1 (the first frame) and explicit offsets.
 * A video whose frames carry no timestamps gives its first frame.
 * Every file is written as <name>.part and renamed only when all of them are
 * done; on any failure or cancel every .part and every renamed file of this
 * call is removed. On success *outs = a new array of *n entries (count or
 * n_offsets; free() it), in the order of the offsets.
 * Errors: BG_EINVAL INVALID_OPTIONS (bad option, stem empty or with '/', an
 * offset at or past the end, paths too long), BG_EIO INPUT_MISSING /
 * OUTPUT_ERROR, BG_EMEDIA INVALID_INPUT (not media, no video stream, nothing
 * decodes, too large, unknown duration with count > 1) / PROCESSING_ERROR
 * (scaler or encoder), BG_EBUSY CANCELED, BG_ENOMEM. Progress is the share
 * of thumbnails done, refined by decode position. The video decoder uses
 * libav's automatic thread count (as the ffmpeg tool does). Any thread. */
bg_err bg_media_thumbs(const char *in, const char *out_dir, const char *stem,
                       const bg_thumbs_opts *o, const bg_media_progress *p, bg_media_thumb **outs,
                       size_t *n, bg_media_err *e);

/* ---- /image/resize ---------------------------------------------------- */

typedef enum bg_image_fit {
    BG_FIT_CONTAIN = 0, /* inside width × height, aspect kept: one side equals its bound */
    BG_FIT_COVER,       /* fills width × height, aspect kept, centre cropped: exactly W × H */
    BG_FIT_FILL,        /* stretched to exactly width × height */
} bg_image_fit;

/* "contain", "cover", "fill" → *out; false for anything else. Any thread. */
bool bg_image_fit_parse(const char *name, bg_image_fit *out);

typedef struct bg_resize_opts {
    bg_image_format format;
    bg_image_fit fit;
    int width, height; /* 0..BG_IMAGE_MAX_DIM each. Both set: the fit mode decides. One 0: that
                          side follows the aspect (the fit mode does not matter). Both 0: the
                          source size (a format conversion). Computed sides are rounded to the
                          nearest pixel, at least 1 (1280x720 contain 300x300 → 300x169), not to
                          even numbers. Up-scaling is allowed. */
    int quality;       /* jpeg, webp: 1..100; 0 = 85 (jpeg) or 80 (webp); png ignores it */
} bg_resize_opts;

/* Decodes the first picture of in (a jpeg, png, webp, gif, bmp, tiff... or
 * the first frame of a video, or an audio file's cover art), scales it with
 * libswscale (bicubic) and encodes it to out in o->format. Pixel aspect
 * (JFIF density) and EXIF orientation are ignored: the stored pixels are
 * resized as they are. Alpha is kept for png and webp and composited onto
 * white for jpeg. Writes out + ".part" and renames it on success only.
 * *meta_out (may be NULL) = new object {"width", "height", "format"
 * ("jpeg"|"png"|"webp"), "size", "source_width", "source_height"}.
 * Errors: BG_EINVAL INVALID_OPTIONS, BG_EIO INPUT_MISSING / OUTPUT_ERROR,
 * BG_EMEDIA INVALID_INPUT (not an image, nothing decodes, too large) /
 * PROCESSING_ERROR, BG_EBUSY CANCELED, BG_ENOMEM. Any thread. */
bg_err bg_media_image_resize(const char *in, const char *out, const bg_resize_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e);

/* ---- raw pixels ------------------------------------------------------- */

/* Encodes width × height packed pixels (RGB24, or RGBA when alpha; rows
 * stride bytes apart; the caller keeps ownership) to out in format f (png
 * keeps alpha; webp keeps it as yuva420p; jpeg composites it onto white),
 * through out + ".part" renamed on success. quality as in bg_resize_opts.
 * *size_out (may be NULL) = bytes written.
 * Errors: BG_EINVAL INVALID_OPTIONS (sizes 1..BG_IMAGE_MAX_DIM, stride),
 * BG_EIO OUTPUT_ERROR, BG_EMEDIA PROCESSING_ERROR, BG_ENOMEM. Any thread. */
bg_err bg_media_image_write(const uint8_t *pixels, int width, int height, int stride, bool alpha,
                            bg_image_format f, int quality, const char *out, int64_t *size_out,
                            bg_media_err *e);

#endif
