/*
 * node/node_internal.h — shared by node/'s .c files only.
 */
#ifndef BG_NODE_INTERNAL_H
#define BG_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "node/node.h"

/* KDF contexts: each derived key has its own 8-byte context. */
#define BG_KDF_TOKENS "bgtoken_"
#define BG_KDF_SIGNING "bgsignky"

#define BG_MASTER_KEY_FILE "master.key"
#define BG_SIGNING_KEY_FILE "signing.key"
#define BG_SIGNING_PUB_FILE "signing.pub"
#define BG_ADMIN_TOKEN_FILE "admin.token"

/* Joins dir and name into buf. Returns false when it does not fit. */
bool bg_path_join(char *buf, size_t cap, const char *dir, const char *name);

/* Writes len bytes to path atomically (temp file, fsync, rename) with the
 * given mode. Errors: BG_EIO. */
bg_err bg_file_write_atomic(const char *path, const void *data, size_t len, int mode);

/* Reads exactly len bytes (the file must be that long). Errors:
 * BG_ENOTFOUND, BG_EIO (wrong size or read error). */
bg_err bg_file_read_exact(const char *path, void *buf, size_t len);

#endif
