/*
 * node/media/media.h — the robots that run in-process on libav (FFmpeg 5.1):
 * probing a file, and measuring and encoding its audio. This folder is the
 * only libav user and the only place where AVERROR codes become bg_err.
 *
 * The audio robots (encode, loudness, several outputs from one decode) share
 * one engine: node/media/audio_internal.h.
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
    const char *format; /* "mp3" (libmp3lame, mp3 with ID3v2 and Xing header), "aac" (native aac
                           encoder in m4a: the mov muxer's ipod flavour, index at the front),
                           "opus" (libopus in ogg); others are BG_EINVAL INVALID_OPTIONS.
                           bg_media_audio_format gives each one's extension and MIME type. */
    int64_t bitrate;    /* bits/s, 8000..320000; 0 = 128000 */
    int sample_rate;    /* 0 = mp3 and aac: keep the input's if the encoder supports it, else
                           44100 (mp3) or 48000 (aac); opus: 48000. Otherwise a rate the
                           encoder supports (opus: 8000, 12000, 16000, 24000, 48000) */
    int channels;       /* 0 = keep (capped at 2), 1 or 2 */
    double start_s;     /* seconds from the start of the audio stream, 0..1e7 */
    double duration_s;  /* 0 = until the end; else at most this many seconds (up to 1e7) */
    /* Two-pass EBU R128 loudness normalisation. Pass 1 measures the window (as
     * bg_media_loudness); pass 2 decodes again through the loudnorm filter given the measured
     * I, LRA, true peak and threshold with linear=true: a plain gain to loudness_target when the
     * gain keeps the true peak under true_peak_max, else loudnorm's dynamic mode (its limiter,
     * at 192 kHz). The ceiling wins over the target: when the limiter has much to do the output
     * ends under the target (1-2 LU is common, as with the ffmpeg tool's two passes); the meta
     * says by how much. The LRA target is 11 LU or the input's own range if wider (up to 50),
     * so only the peak ceiling forces the dynamic mode. A window under 3 s that would need the
     * dynamic mode gets a plain gain capped by the ceiling instead (loudnorm's short-input path
     * misbehaves in FFmpeg 5.1). Input below the absolute gate (silence, under 0.4 s of audio)
     * is encoded unchanged. */
    bool normalize;
    double loudness_target; /* LUFS, -70..-5 (e.g. -16 for podcasts, -23 for EBU R128) */
    double true_peak_max;   /* dBTP ceiling, -9..0; 0 = -1 (EBU R128, Apple, Spotify) */
} bg_audio_encode_opts;

/* Decodes the first audio stream of in, resamples (libswresample) and encodes to out (the
 * encoder and muxer of o->format). Other streams are discarded, never decoded. Writes to
 * out + ".part" and renames it to out on success only; the .part is removed on any failure or
 * cancel, and out is then left untouched. start_s seeks on the input side to the nearest earlier
 * point, then samples before start_s are dropped exactly. A duration past the input's end
 * encodes what exists. Progress fraction is decoded time / window (a normalised encode: the
 * first pass is 0..0.35, the second 0.35..1).
 * *meta_out (may be NULL) = new JSON object {"duration", "bit_rate", "sample_rate", "channels",
 * "codec": "mp3"|"aac"|"opus", "format": "mp3"|"mov,mp4,m4a,3gp,3g2,mj2"|"ogg"} measured by
 * probing the written file, and when o->normalize also
 * "loudness": {"input_i", "input_tp", "input_lra", "input_thresh", "output_i", "output_tp",
 *              "output_lra", "target_i", "target_tp", "target_lra",
 *              "normalization_type": "linear"|"dynamic"|"none", "gain_db"}
 * (LUFS, dBTP, LU; 2 decimals; a peak of silence is null). input_* are pass 1's measurement.
 * output_* are measured on the normalised signal before encoding in dynamic mode; in linear
 * mode they are computed (a gain moves I and the true peak by exactly gain_db, LRA not at all);
 * gain_db is the gain asked of loudnorm (target_i - input_i; nominal in dynamic mode). Lossy
 * encoding moves the file's own loudness a little more: bright material loses up to ~0.6 LU to
 * the encoder's low-pass (mp3 128k), and the file's true peak may exceed the ceiling.
 * Errors: BG_EINVAL (INVALID_OPTIONS: bad option, or start_s at or past the end of the audio),
 * BG_EIO (INPUT_MISSING: in missing or unreadable; OUTPUT_ERROR: out cannot be written or
 * renamed), BG_EMEDIA (INVALID_INPUT: not decodable, no audio stream, corrupt with nothing
 * decodable; PROCESSING_ERROR: resampler, filter or encoder failure), BG_EBUSY (CANCELED),
 * BG_ENOMEM. A corrupt packet is skipped (as the ffmpeg tool does); a truncated input encodes
 * what decodes. The output is not fsync'ed. Any thread; blocks for the length of the work. */
bg_err bg_media_audio_encode(const char *in, const char *out, const bg_audio_encode_opts *o,
                             const bg_media_progress *p, json_t **meta_out, bg_media_err *e);

/* The file extension ("mp3", "m4a", "opus") and MIME type ("audio/mpeg", "audio/mp4",
 * "audio/ogg") of an encode format; false for an unknown format (ext and mime untouched; either
 * may be NULL). Static strings; any thread. */
bool bg_media_audio_format(const char *format, const char **ext, const char **mime);

/* EBU R128 measurement of the first audio stream, by libavfilter's ebur128 filter (the figures
 * of `ffmpeg -i in -af ebur128=peak=true -f null -`'s summary): *out = new JSON object
 * {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
 *  "threshold_lufs" (the relative gate of I), "lra_low_lufs", "lra_high_lufs",
 *  "duration" (seconds measured)}, 2 decimals. Input with no 400 ms block above -70 LUFS
 * (silence, under 0.4 s) gives integrated_lufs -70 and loudness_range_lu 0, as the filter
 * does; the peaks of digital silence are null. Progress and cancel as bg_media_audio_encode.
 * Errors: BG_EMEDIA INVALID_INPUT (not media, no audio stream, nothing decodable), BG_EIO
 * INPUT_MISSING, BG_EBUSY CANCELED, BG_ENOMEM, BG_EMEDIA PROCESSING_ERROR. Any thread. */
bg_err bg_media_loudness(const char *path, const bg_media_progress *p, json_t **out,
                         bg_media_err *e);

/* bg_media_probe, plus "loudness": bg_media_loudness's object when loudness is true and the file
 * has an audio stream (has_audio). The measurement decodes the whole audio stream (video is
 * demuxed but never decoded), so it costs about a decode of the audio; a file without audio
 * costs a probe. A file whose audio cannot be decoded or measured (while the probe could read
 * it) gets "loudness": null. Progress covers the measurement; cancel as bg_media_audio_encode.
 * Errors: those of bg_media_probe, BG_EBUSY CANCELED. Any thread. */
bg_err bg_media_meta_read(const char *path, bool loudness, const bg_media_progress *p, json_t **out,
                          bg_media_err *e);

/* Several outputs from one decode of in's first audio stream. */
typedef enum bg_audio_job_kind {
    BG_AUDIO_JOB_ENCODE = 1, /* out, opts: as bg_media_audio_encode */
    BG_AUDIO_JOB_LOUDNESS,   /* bg_media_loudness's measurement of the window in opts */
    BG_AUDIO_JOB_SAMPLES,    /* on_samples gets the window in opts as mono floats */
} bg_audio_job_kind;

typedef struct bg_audio_multi_job {
    bg_audio_job_kind kind;
    const char *out;           /* ENCODE: output path (distinct per job) */
    bg_audio_encode_opts opts; /* ENCODE: everything; LOUDNESS, SAMPLES: start_s and duration_s */
    /* SAMPLES: called on the robot's thread with the next n >= 1 samples, the mean of the
     * channels as floats (nominally -1..1), at the input's first sample rate (later rate
     * changes are resampled to it). mono is valid during the call only. It must not call into
     * this module; cancel through the progress callback. */
    void (*on_samples)(void *ud, const float *mono, size_t n, int sample_rate);
    void *ud;
} bg_audio_multi_job;

/* Runs jobs[0..n) (1 <= n <= 16) decoding the input once: each job gets its own window (the
 * decode spans from the earliest start to the latest end; an input-side seek to the earliest
 * start). Encodes with normalize need the whole window measured before their first sample, so
 * they cannot share that decode: their measurement joins it, and they are encoded in a second
 * decode of their own (one decode for all of them). A normalised encode whose window equals a
 * LOUDNESS job's or another normalised encode's shares that measurement.
 * All or nothing: on any failure no output of any job is left (no .part, no out), and the
 * error is the first met, with the codes of bg_media_audio_encode. *results (may be NULL) = new
 * JSON array, element i for jobs[i]: ENCODE → bg_media_audio_encode's meta, LOUDNESS →
 * bg_media_loudness's object, SAMPLES → {"samples", "sample_rate", "duration"} (what
 * on_samples got). Progress: decoded time over the spanned window (two passes: 0..0.35 and
 * 0.35..1). Errors also BG_EINVAL INVALID_OPTIONS for n out of range, two encodes to one
 * path, a SAMPLES job without on_samples. Any thread; the jobs must stay valid during the call. */
bg_err bg_media_audio_multi(const char *in, const bg_audio_multi_job *jobs, size_t n,
                            const bg_media_progress *p, json_t **results, bg_media_err *e);

/* libav version line for logs ("libavformat 59.27.100, libavcodec 59.37.100, ..."), of the
 * libraries loaded at run time. Static storage; any thread. */
const char *bg_media_versions(void);

#endif
