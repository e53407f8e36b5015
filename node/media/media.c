/*
 * node/media/media.c — what the robots share: libav's one-time set-up and
 * log routing, error recording and AVERROR translation, progress and cancel,
 * and opening an input without letting the file choose what else is read.
 */
#include "media_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavutil/avstring.h>
#include <libavutil/time.h>
#include <libswresample/swresample.h>

#include "proto/log.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char versions[256];

/* Demuxers that open resources named inside the file (playlists, concat
 * lists, manifests, image sequences, network sessions), and those that turn
 * any text into a picture. An upload must never make a robot read another
 * user's file, so these are refused before their header is read. */
static const char *const refused_demuxers[] = {
    "hls", "dash", "concat", "imf", "image2", "sdp", "rtp", "rtsp", "webm_dash_manifest",
    "tty", "bin", "xbin", "adf", "idf",
};

/* libav logs go to bg_log at debug level, and only what av_log's level
 * (AV_LOG_ERROR) lets through: decoders complain about every corrupt packet
 * of a bad upload, which is the robot's error to report, not the log's. */
static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > av_log_get_level() || bg_log_get_level() > BG_LOG_DEBUG)
        return;
    char line[512];
    int print_prefix = 1; /* per call: a shared one would race between workers */
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n > 0)
        bg_log(BG_LOG_DEBUG, NULL, "libav: %s", line);
}

static void version_part(char *buf, size_t cap, const char *name, unsigned v, bool last)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s %u.%u.%u%s", name, AV_VERSION_MAJOR(v), AV_VERSION_MINOR(v),
             AV_VERSION_MICRO(v), last ? "" : ", ");
}

static void init_once_fn(void)
{
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_cb);
    versions[0] = '\0';
    version_part(versions, sizeof(versions), "libavformat", avformat_version(), false);
    version_part(versions, sizeof(versions), "libavcodec", avcodec_version(), false);
    version_part(versions, sizeof(versions), "libavfilter", avfilter_version(), false);
    version_part(versions, sizeof(versions), "libswresample", swresample_version(), false);
    version_part(versions, sizeof(versions), "libavutil", avutil_version(), true);
}

void media_init(void)
{
    pthread_once(&init_once, init_once_fn);
}

const char *bg_media_versions(void)
{
    media_init();
    return versions;
}

void media_err(bg_media_err *e, const char *code, const char *fmt, ...)
{
    if (e == NULL)
        return;
    snprintf(e->code, sizeof(e->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

void media_err_av(bg_media_err *e, const char *code, const char *what, int averr)
{
    char text[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, text, sizeof(text));
    media_err(e, code, "%s: %s", what, text);
}

bg_err media_input_averr(int averr, const char *what, bg_media_err *e)
{
    if (averr == AVERROR_EXIT) {
        media_err(e, "CANCELED", "canceled");
        return BG_EBUSY;
    }
    if (averr == AVERROR(ENOMEM)) {
        media_err(e, "PROCESSING_ERROR", "out of memory");
        return BG_ENOMEM;
    }
    media_err_av(e, "INVALID_INPUT", what, averr);
    return BG_EMEDIA;
}

void media_ctl_init(media_ctl *c, const bg_media_progress *p)
{
    memset(c, 0, sizeof(*c));
    c->p = p;
}

bool media_ctl_tick(media_ctl *c, double fraction)
{
    if (c->canceled)
        return false;
    if (fraction > c->fraction)
        c->fraction = fraction > 1.0 ? 1.0 : fraction;
    if (c->p == NULL || c->p->fn == NULL)
        return true;
    int64_t now = av_gettime_relative();
    if (c->last_us != 0 && now - c->last_us < MEDIA_PROGRESS_INTERVAL_US)
        return true;
    c->last_us = now;
    if (!c->p->fn(c->p->ud, c->fraction))
        c->canceled = true;
    return !c->canceled;
}

int media_interrupt_cb(void *opaque)
{
    media_ctl *c = opaque;
    return media_ctl_tick(c, c->fraction) ? 0 : 1;
}

static bool refused(const AVInputFormat *fmt)
{
    for (size_t i = 0; i < sizeof(refused_demuxers) / sizeof(refused_demuxers[0]); i++)
        if (strcmp(fmt->name, refused_demuxers[i]) == 0)
            return true;
    return false;
}

/* stat() before libav sees the path: a missing or unreadable file is the
 * caller's I/O problem, and a FIFO or device could block a worker forever. */
static bg_err check_regular(const char *path, int64_t *size, bg_media_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        media_err(e, "INPUT_MISSING", "input cannot be read: %s", strerror(errno));
        return BG_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        media_err(e, "INPUT_MISSING", "input is not a regular file");
        return BG_EIO;
    }
    *size = (int64_t)st.st_size;
    return BG_OK;
}

/* Opens the byte stream and picks its demuxer. The "file:" prefix keeps a
 * name like "x:y" from being read as a protocol. */
static bg_err open_probe(media_input *in, const char *url, AVIOInterruptCB *icb,
                         const AVInputFormat **fmt, bg_media_err *e)
{
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret = avio_open2(&in->pb, url, AVIO_FLAG_READ, icb, &opts);
    av_dict_free(&opts);
    if (ret == AVERROR_EXIT || ret == AVERROR(ENOMEM))
        return media_input_averr(ret, "open", e);
    if (ret < 0) {
        media_err_av(e, "INPUT_MISSING", "input cannot be opened", ret);
        return BG_EIO;
    }
    ret = av_probe_input_buffer2(in->pb, fmt, url, NULL, 0, 0);
    if (ret >= 0 && strcmp((*fmt)->name, "image2") == 0) {
        /* A name like x.jpg scores image2 by its extension alone (a demuxer
         * that may open other files): judge the bytes without the name, so
         * a real JPEG or PNG gets its *_pipe demuxer. */
        *fmt = NULL; /* av_probe_input_buffer2 probes only while *fmt is unset */
        ret = av_probe_input_buffer2(in->pb, fmt, "", NULL, 0, 0);
    }
    if (ret < 0)
        return media_input_averr(ret, "not a media file", e);
    if (refused(*fmt)) {
        media_err(e, "INVALID_INPUT", "container %s is not accepted", (*fmt)->name);
        return BG_EMEDIA;
    }
    return BG_OK;
}

bg_err media_input_open(media_input *in, const char *path, media_ctl *ctl, bg_media_err *e)
{
    memset(in, 0, sizeof(*in));
    bg_err err = check_regular(path, &in->size, e);
    if (err != BG_OK)
        return err;
    char *url = av_asprintf("file:%s", path);
    if (url == NULL) {
        media_err(e, "PROCESSING_ERROR", "out of memory");
        return BG_ENOMEM;
    }
    AVIOInterruptCB icb = {.callback = ctl ? media_interrupt_cb : NULL, .opaque = ctl};
    const AVInputFormat *fmt = NULL;
    AVDictionary *opts = NULL;
    err = open_probe(in, url, &icb, &fmt, e);
    if (err != BG_OK)
        goto done;
    in->ic = avformat_alloc_context();
    if (in->ic == NULL) {
        err = media_input_averr(AVERROR(ENOMEM), "open", e);
        goto done;
    }
    in->ic->pb = in->pb;
    in->ic->interrupt_callback = icb;
    /* Nested opens (none of the accepted demuxers should make any) inherit this. */
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret = avformat_open_input(&in->ic, url, fmt, &opts);
    if (ret < 0) /* in->ic was freed and set to NULL */
        err = media_input_averr(ret, "not a media file", e);
done:
    av_dict_free(&opts);
    av_free(url);
    if (err != BG_OK && ctl != NULL && ctl->canceled && err != BG_EBUSY) {
        /* An interrupted read can surface as any demuxer error. */
        media_err(e, "CANCELED", "canceled");
        err = BG_EBUSY;
    }
    if (err != BG_OK)
        media_input_close(in);
    return err;
}

void media_input_close(media_input *in)
{
    /* Custom I/O: avformat_close_input leaves the AVIOContext to us. */
    avformat_close_input(&in->ic);
    avio_closep(&in->pb);
}
