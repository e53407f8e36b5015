#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    const char *code;
} table[BG_ERR_COUNT_] = {
    [BG_OK] = {"ok", "OK"},
    [BG_ENOMEM] = {"enomem", "OUT_OF_MEMORY"},
    [BG_EINVAL] = {"einval", "INVALID_REQUEST"},
    [BG_ETOOBIG] = {"etoobig", "PAYLOAD_TOO_LARGE"},
    [BG_ENOTFOUND] = {"enotfound", "NOT_FOUND"},
    [BG_ECONFLICT] = {"econflict", "CONFLICT"},
    [BG_EAUTH] = {"eauth", "AUTH_REQUIRED"},
    [BG_EFORBIDDEN] = {"eforbidden", "FORBIDDEN"},
    [BG_EBUSY] = {"ebusy", "SERVICE_BUSY"},
    [BG_ETIMEOUT] = {"etimeout", "TIMEOUT"},
    [BG_EPEER] = {"epeer", "PEER_ERROR"},
    [BG_EMEDIA] = {"emedia", "PROCESSING_ERROR"},
    [BG_EIO] = {"eio", "IO_ERROR"},
    [BG_EINTERNAL] = {"einternal", "INTERNAL_ERROR"},
};

const char *bg_err_name(bg_err e)
{
    if ((unsigned)e >= BG_ERR_COUNT_)
        return "unknown";
    return table[e].name;
}

const char *bg_err_code(bg_err e)
{
    if ((unsigned)e >= BG_ERR_COUNT_)
        return "INTERNAL_ERROR";
    return table[e].code;
}

bg_err bg_errf(char *err, size_t cap, bg_err e, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return e;
}
