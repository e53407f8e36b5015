/*
 * proto/err.h — the one error vocabulary of branchgate.
 *
 * Every function that can fail returns a bg_err and writes its results
 * through out-parameters only on success. Foreign codes (SQLite, CURLcode,
 * AVERROR, HTTP status of a peer) are translated into bg_err exactly once,
 * by the module that owns the foreign library. The gateway's error module is
 * the only place that maps bg_err to an HTTP status.
 *
 * Thread-safety: all functions are pure and may be called from any thread.
 */
#ifndef BG_PROTO_ERR_H
#define BG_PROTO_ERR_H

#include <stddef.h>

typedef enum bg_err {
    BG_OK = 0,
    BG_ENOMEM,
    BG_EINVAL,
    BG_ETOOBIG,
    BG_ENOTFOUND,
    BG_ECONFLICT,
    BG_EAUTH,
    BG_EFORBIDDEN,
    BG_EBUSY,
    BG_ETIMEOUT,
    BG_EPEER,
    BG_EMEDIA,
    BG_EIO,
    BG_EINTERNAL,
    BG_ERR_COUNT_
} bg_err;

/* Stable lower-case name of an error ("einval"), for logs. Never NULL. */
const char *bg_err_name(bg_err e);

/* Default SNAKE_CASE API code for an error ("INVALID_REQUEST"), used when a
 * caller does not pick a more specific code. Never NULL. */
const char *bg_err_code(bg_err e);

/* Formats a message into err (cap bytes; err may be NULL when cap is 0) and
 * returns e: the one-line failure of functions that report through a
 * caller's buffer. */
__attribute__((format(printf, 4, 5))) bg_err bg_errf(char *err, size_t cap, bg_err e,
                                                     const char *fmt, ...);

#endif
