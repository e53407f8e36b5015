/*
 * proto/json.h — jansson helpers: bounded parsing of request bodies and
 * typed field access that explains what is wrong in a message fit for a
 * 400 reply. Pure functions, any thread (jansson values are not shared
 * between threads except through reference counts, which are atomic).
 */
#ifndef BG_PROTO_JSON_H
#define BG_PROTO_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Deepest nesting accepted from the network. */
#define BG_JSON_MAX_DEPTH 32

/* A human-readable reason, filled when a helper fails. */
typedef struct bg_json_err {
    char message[200];
} bg_json_err;

/* Parses buf[0..len) as one JSON object. Rejects invalid UTF-8, duplicate
 * keys, a top level that is not an object, nesting deeper than
 * BG_JSON_MAX_DEPTH and trailing data. On success *out holds a new
 * reference owned by the caller. Errors: BG_EINVAL. */
bg_err bg_json_parse_object(const char *buf, size_t len, json_t **out, bg_json_err *e);

/* Depth of a value: scalars are 1, [] and {} are 1, [[1]] is 3. */
size_t bg_json_depth(const json_t *v);

/* Typed getters on an object. When the key is absent: BG_ENOTFOUND if
 * !required (out untouched), else BG_EINVAL. A wrong type or a value out of
 * bounds is BG_EINVAL with a message naming the field. The string returned
 * is borrowed from obj. */
bg_err bg_json_get_str(const json_t *obj, const char *key, bool required, size_t min_len,
                       size_t max_len, const char **out, bg_json_err *e);
bg_err bg_json_get_int(const json_t *obj, const char *key, bool required, int64_t min,
                       int64_t max, int64_t *out, bg_json_err *e);
bg_err bg_json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
                        bg_json_err *e);

/* Serialises compactly in insertion order. Returns malloc'ed text (caller
 * frees) and its length; NULL only if v is NULL. */
char *bg_json_dump(const json_t *v, size_t *len);

#endif
