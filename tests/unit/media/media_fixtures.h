/*
 * tests/unit/media/media_fixtures.h — file helpers shared by the media unit
 * tests (fixtures are generated with the ffmpeg CLI at test time).
 */
#ifndef BG_TEST_MEDIA_FIXTURES_H
#define BG_TEST_MEDIA_FIXTURES_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static inline bool write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0) && ok;
}

/* Copies the first pct percent of src's bytes to dst. */
static inline bool truncate_copy(const char *src, const char *dst, int pct)
{
    FILE *f = fopen(src, "rb");
    if (f == NULL)
        return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)size * (size_t)pct / 100;
    char *buf = malloc(n);
    bool ok = buf != NULL && fread(buf, 1, n, f) == n;
    fclose(f);
    ok = ok && write_file(dst, buf, n);
    free(buf);
    return ok;
}

/* Runs `ffmpeg ... ARGS 'OUT'` quietly; 0 on success. */
static inline int ffmpeg(const char *args, const char *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -hide_banner -loglevel error -y %s '%s'", args,
             out);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
