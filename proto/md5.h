/*
 * proto/md5.h — MD5 (RFC 1321) with a running state that can be saved and
 * restored, so the digest of an upload is computed as its chunks arrive,
 * across requests and restarts, without re-reading the file.
 *
 * MD5 is used here as a content fingerprint that clients announce, never as
 * a security primitive. Pure functions on caller-owned storage; any thread
 * (one bg_md5 must not be used by two threads at once).
 */
#ifndef BG_PROTO_MD5_H
#define BG_PROTO_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BG_MD5_BYTES 16

/* Running state. h: chaining value; len: bytes absorbed so far; buf: the
 * first len % 64 bytes of the block being filled (the rest is scratch). */
typedef struct bg_md5 {
    uint32_t h[4];
    uint64_t len;
    uint8_t buf[64];
} bg_md5;

/* Serialised state, all integers little-endian:
 *   [0..4)    magic "BM5" followed by the format version byte 0x01
 *   [4..20)   h[0..3], 4 bytes each
 *   [20..28)  len
 *   [28..92)  buf; bytes at len % 64 and beyond are written as zero
 * The format is stored at rest (upload rows): change it only with a new
 * version byte and a loader for the old one. */
#define BG_MD5_STATE_BYTES 92

/* Starts a new digest in caller storage m. */
void bg_md5_init(bg_md5 *m);

/* Absorbs len bytes of data (data may be NULL when len is 0). */
void bg_md5_update(bg_md5 *m, const void *data, size_t len);

/* Writes the digest of everything absorbed so far into out. Does not change
 * m (it works on a copy), so more data may follow. */
void bg_md5_final(const bg_md5 *m, uint8_t out[BG_MD5_BYTES]);

/* Lowercase hex of a digest, NUL-terminated, into out. */
void bg_md5_hex(const uint8_t d[BG_MD5_BYTES], char out[33]);

/* Serialises m into out (layout above). The output is a function of the
 * absorbed bytes only, so equal streams save equal states. */
void bg_md5_save(const bg_md5 *m, uint8_t out[BG_MD5_STATE_BYTES]);

/* Restores a state saved by bg_md5_save from in[0..len). Errors: BG_EINVAL
 * when len is not BG_MD5_STATE_BYTES, the magic or version differs, or the
 * fields are inconsistent (non-zero bytes past len % 64, or a chaining value
 * other than the initial one while len < 64). *m is written only on
 * success. */
bg_err bg_md5_load(bg_md5 *m, const uint8_t *in, size_t len);

#endif
