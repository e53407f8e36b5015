/*
 * node/media/waveform.h — /audio/waveform: per-pixel min/max peaks of an
 * audio stream, drawn as a PNG and written as audiowaveform JSON (format
 * version 2).
 *
 * Two ways in: bg_media_waveform decodes a file itself; a decode shared with
 * other outputs (the audio robot's multi-output pass) instead feeds a
 * bg_waveform_acc through bg_waveform_acc_on_samples, which has the shape of
 * its on_samples callback, and calls bg_waveform_acc_finish at the end.
 *
 * Peaks: the mono mixdown (mean of the channels) as floats, nominally
 * -1..1. The whole stream is cut into `width` equal spans of samples
 * (pixel i covers samples [i·N/width, (i+1)·N/width) of N), each giving a
 * (min, max) pair. The accumulator keeps min/max per block of samples and
 * halves its resolution when full, so memory is bounded (at most
 * 32·width blocks) whatever the length, and the total need not be known in
 * advance; a pixel's span is resolved to 1/16 of a pixel or better.
 *
 * JSON (audiowaveform's version 2 layout, one channel):
 *   {"version":2,"channels":1,"sample_rate":SR,"samples_per_pixel":round(N/width),
 *    "bits":8|16,"length":width,"data":[min0,max0,min1,max1,...]}
 * with values scaled to the bits: round(v·128) in -128..127, or
 * round(v·32768) in -32768..32767 (samples beyond ±1 are clipped).
 *
 * PNG: width × height, background colour, and for each column a
 * foreground line from the max to the min (at least one pixel), the centre
 * line being silence. RGBA when either colour has alpha, else RGB.
 */
#ifndef BG_NODE_MEDIA_WAVEFORM_H
#define BG_NODE_MEDIA_WAVEFORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"
#include "proto/err.h"

#define BG_WAVEFORM_MAX_WIDTH 8192
#define BG_WAVEFORM_MAX_HEIGHT 2048

typedef struct bg_waveform_opts {
    int width;              /* pixels = min/max pairs: 0 = 1800, else 1..8192 */
    int height;             /* PNG height: 0 = 280, else 1..2048 */
    const char *foreground; /* "#rrggbb" or "#rrggbbaa" (hex, either case); NULL = "#000000" */
    const char *background; /* same; NULL = "#ffffff" */
    int bits;               /* JSON value range: 0 = 16, 8 or 16 */
} bg_waveform_opts;

/* Parses "#rrggbb" or "#rrggbbaa" exactly (no spaces, no short forms, no
 * names) into rgba (alpha 255 when absent). false leaves rgba untouched.
 * Pure; any thread. */
bool bg_waveform_color_parse(const char *s, uint8_t rgba[4]);

typedef struct bg_waveform_acc bg_waveform_acc;

/* Checks o and creates an accumulator (*out; destroy it). total_samples
 * is the expected number of samples per channel (duration × rate; 0 when
 * unknown): it only sizes the first blocks. sample_rate (0 = take it from
 * the first bg_waveform_acc_on_samples call) is what the JSON reports.
 * Errors: BG_EINVAL INVALID_OPTIONS (width, height, bits, a colour).
 * One accumulator belongs to one thread at a time. */
bg_err bg_waveform_acc_create(const bg_waveform_opts *o, int64_t total_samples, int sample_rate,
                              bg_waveform_acc **out, bg_media_err *e);

/* Adds n mono samples (the caller keeps mono). NaN samples are ignored. */
void bg_waveform_acc_feed(bg_waveform_acc *a, const float *mono, size_t n);

/* bg_waveform_acc_feed in the shape of a decode's on_samples callback:
 * ud is the accumulator. A sample rate is recorded if none was given. */
void bg_waveform_acc_on_samples(void *ud, const float *mono, size_t n, int sample_rate);

/* Computes the peaks and writes the PNG to png_out and the JSON to json_out
 * (either may be NULL, not both), each through <path>.part renamed at the
 * end; on failure neither file is left. *meta_out (may be NULL) = new
 * object {"width", "height", "bits", "length", "sample_rate",
 * "samples_per_pixel", "duration" (seconds, N / sample_rate), "png_size",
 * "json_size" (bytes; those written only)}. Call it once, then destroy.
 * Errors: BG_EINVAL INVALID_OPTIONS (no output), BG_EMEDIA INVALID_INPUT
 * (no sample was fed) / PROCESSING_ERROR, BG_EIO OUTPUT_ERROR, BG_ENOMEM. */
bg_err bg_waveform_acc_finish(bg_waveform_acc *a, const char *png_out, const char *json_out,
                              json_t **meta_out, bg_media_err *e);

/* Frees a; accepts NULL. */
void bg_waveform_acc_destroy(bg_waveform_acc *a);

/* Decodes the first audio stream of in (other streams are never decoded),
 * mixes it to mono float with libswresample and writes png_out and/or
 * json_out as bg_waveform_acc_finish does. Corrupt packets are skipped; a
 * truncated input draws what decodes. Progress is decoded samples over the
 * expected total (or bytes read when the duration is unknown).
 * Errors: BG_EINVAL INVALID_OPTIONS, BG_EIO INPUT_MISSING / OUTPUT_ERROR,
 * BG_EMEDIA INVALID_INPUT (not media, no audio stream, nothing decodes) /
 * PROCESSING_ERROR, BG_EBUSY CANCELED (no file left), BG_ENOMEM. Any thread;
 * blocks for the length of the decode. */
bg_err bg_media_waveform(const char *in, const char *png_out, const char *json_out,
                         const bg_waveform_opts *o, const bg_media_progress *p,
                         json_t **meta_out, bg_media_err *e);

#endif
