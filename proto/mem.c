#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* stdio may itself need memory; a fixed message through fputs is the
     * best that can be done here. */
    char buf[96];
    snprintf(buf, sizeof(buf), "{\"level\":\"fatal\",\"msg\":\"out of memory (%zu bytes)\"}\n", n);
    fputs(buf, stderr);
    abort();
}

void *bg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *bg_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *bg_xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

char *bg_xstrndup(const char *s, size_t n)
{
    char *p = bg_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *bg_xstrdup(const char *s)
{
    return bg_xstrndup(s, strlen(s));
}

size_t bg_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t len = strlen(src);
    if (cap > 0) {
        size_t n = len < cap - 1 ? len : cap - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}
