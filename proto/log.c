#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int min_level = BG_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bg_log_set_level(bg_log_level level)
{
    min_level = (int)level;
}

bg_log_level bg_log_get_level(void)
{
    return (bg_log_level)min_level;
}

int bg_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

long long bg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bg_log_format_time(long long unix_ms, char buf[32])
{
    /* Floor division: -1 ms is 1969-12-31T23:59:59.999Z, and C's / and %
     * truncate towards zero. */
    long long secs = unix_ms / 1000, ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t s = (time_t)secs;
    struct tm tm;
    size_t n;
    /* gmtime_r fails when the year does not fit an int; tm is then unset. */
    if (gmtime_r(&s, &tm) == NULL || (n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf + n, 32 - n, ".%03dZ", (int)ms);
}

void bg_format_rfc3339(long long unix_s, char buf[32])
{
    time_t s = (time_t)unix_s;
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

static void emit(bg_log_level level, const char *msg, json_t *fields)
{
    char ts[32];
    bg_log_format_time(bg_now_ms(), ts);
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    /* json_stringn_nocheck would let invalid UTF-8 through; a message that
     * is not UTF-8 is replaced rather than dropped. */
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("(invalid utf-8)"));
    if (fields != NULL)
        json_object_update_missing(line, fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* overwrite the NUL: write(2) takes a length */
    ssize_t w = write(STDERR_FILENO, text, n + 1);
    (void)w;
    free(text);
}

void bg_log(bg_log_level level, const char *request_id, const char *fmt, ...)
{
    if ((int)level < min_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *fields = NULL;
    if (request_id != NULL && request_id[0] != '\0')
        fields = json_pack("{s:s}", "request_id", request_id);
    emit(level, msg, fields);
    json_decref(fields);
}

void bg_log_fields(bg_log_level level, const char *msg, json_t *fields)
{
    if ((int)level >= min_level)
        emit(level, msg, fields);
    json_decref(fields);
}
