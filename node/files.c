#include "node_internal.h"
#include "proto/mem.h"

#include <stdlib.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

bool bg_path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

bg_err bg_file_write_atomic(const char *path, const void *data, size_t len, int mode)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return BG_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return BG_EIO;
    bool ok = fchmod(fd, (mode_t)mode) == 0;
    const char *p = data;
    size_t left = len;
    while (ok && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        if (ok) {
            p += w;
            left -= (size_t)w;
        }
    }
    ok = ok && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return BG_EIO;
    }
    return BG_OK;
}

bg_err bg_file_read_exact(const char *path, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BG_ENOTFOUND : BG_EIO;
    struct stat st;
    bg_err e = BG_OK;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size != len) {
        e = BG_EIO;
    } else {
        size_t got = 0;
        while (got < len) {
            ssize_t r = read(fd, (char *)buf + got, len - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                e = BG_EIO;
                break;
            }
            got += (size_t)r;
        }
    }
    close(fd);
    return e;
}

void bg_textbuf_printf(bg_textbuf *b, const char *fmt, ...)
{
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p != NULL && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 256;
        b->p = bg_xrealloc(b->p, b->cap);
    }
}
