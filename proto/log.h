/*
 * proto/log.h — JSON log lines on stderr.
 *
 * Each call writes one line {"ts","level","msg",...} with a single write(2),
 * so lines from different threads never interleave. Never pass a secret,
 * token, signature or request body to these functions. Any thread.
 */
#ifndef BG_PROTO_LOG_H
#define BG_PROTO_LOG_H

#include <jansson.h>

typedef enum bg_log_level {
    BG_LOG_DEBUG = 0,
    BG_LOG_INFO,
    BG_LOG_WARN,
    BG_LOG_ERROR,
} bg_log_level;

/* Lines below this level are dropped. Set once at start-up. */
void bg_log_set_level(bg_log_level level);
bg_log_level bg_log_get_level(void);

/* Parses "debug", "info", "warn", "error". Returns -1 when unknown. */
int bg_log_level_parse(const char *s);

/* printf-style message; request_id may be NULL. */
void bg_log(bg_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Message plus structured fields. Takes ownership of fields (may be NULL);
 * its keys are merged into the line after ts, level and msg. */
void bg_log_fields(bg_log_level level, const char *msg, json_t *fields);

/* RFC 3339 UTC timestamp with milliseconds ("2026-11-23T08:34:41.123Z")
 * for the given wall-clock time in ms. buf must hold 32 bytes. */
void bg_log_format_time(long long unix_ms, char buf[32]);

/* RFC 3339 UTC timestamp with second precision ("2026-11-23T08:34:41Z"),
 * the form used in API responses. buf must hold 32 bytes. */
void bg_format_rfc3339(long long unix_s, char buf[32]);

/* Wall-clock time in milliseconds. */
long long bg_now_ms(void);

#endif
