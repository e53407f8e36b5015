#include "json.h"

#include <stdio.h>
#include <string.h>

#include <stdarg.h>

__attribute__((format(printf, 2, 3))) static void set_err(bg_json_err *e, const char *fmt, ...)
{
    if (e == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

size_t bg_json_depth(const json_t *v)
{
    size_t deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            size_t d = bg_json_depth(child);
            if (d > deepest)
                deepest = d;
            if (deepest > BG_JSON_MAX_DEPTH)
                break;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            size_t d = bg_json_depth(child);
            if (d > deepest)
                deepest = d;
            if (deepest > BG_JSON_MAX_DEPTH)
                break;
        }
        return deepest + 1;
    }
    return 1;
}

bg_err bg_json_parse_object(const char *buf, size_t len, json_t **out, bg_json_err *e)
{
    json_error_t jerr;
    if (buf == NULL || len == 0) {
        set_err(e, "request body must be a JSON object");
        return BG_EINVAL;
    }
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        set_err(e, "malformed JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return BG_EINVAL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        set_err(e, "request body must be a JSON object");
        return BG_EINVAL;
    }
    if (bg_json_depth(v) > BG_JSON_MAX_DEPTH) {
        json_decref(v);
        set_err(e, "JSON nested deeper than %d levels", BG_JSON_MAX_DEPTH);
        return BG_EINVAL;
    }
    *out = v;
    return BG_OK;
}

static bg_err lookup(const json_t *obj, const char *key, bool required, json_t **v, bg_json_err *e)
{
    *v = json_object_get(obj, key);
    if (*v == NULL || json_is_null(*v)) {
        if (!required)
            return BG_ENOTFOUND;
        set_err(e, "missing field '%s'", key);
        return BG_EINVAL;
    }
    return BG_OK;
}

bg_err bg_json_get_str(const json_t *obj, const char *key, bool required, size_t min_len,
                       size_t max_len, const char **out, bg_json_err *e)
{
    json_t *v;
    bg_err rc = lookup(obj, key, required, &v, e);
    if (rc != BG_OK)
        return rc;
    if (!json_is_string(v)) {
        set_err(e, "field '%s' must be a string", key);
        return BG_EINVAL;
    }
    size_t n = json_string_length(v);
    if (n < min_len || n > max_len) {
        set_err(e, "field '%s' must be %lld to %lld bytes long", key, (long long)min_len,
                (long long)max_len);
        return BG_EINVAL;
    }
    if (memchr(json_string_value(v), '\0', n) != NULL) {
        set_err(e, "field '%s' must not contain NUL characters", key);
        return BG_EINVAL;
    }
    *out = json_string_value(v);
    return BG_OK;
}

bg_err bg_json_get_int(const json_t *obj, const char *key, bool required, int64_t min,
                       int64_t max, int64_t *out, bg_json_err *e)
{
    json_t *v;
    bg_err rc = lookup(obj, key, required, &v, e);
    if (rc != BG_OK)
        return rc;
    if (!json_is_integer(v)) {
        set_err(e, "field '%s' must be an integer", key);
        return BG_EINVAL;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        set_err(e, "field '%s' must be between %lld and %lld", key, (long long)min, (long long)max);
        return BG_EINVAL;
    }
    *out = (int64_t)x;
    return BG_OK;
}

bg_err bg_json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
                        bg_json_err *e)
{
    json_t *v;
    bg_err rc = lookup(obj, key, required, &v, e);
    if (rc != BG_OK)
        return rc;
    if (!json_is_boolean(v)) {
        set_err(e, "field '%s' must be true or false", key);
        return BG_EINVAL;
    }
    *out = json_is_true(v);
    return BG_OK;
}

char *bg_json_dump(const json_t *v, size_t *len)
{
    if (v == NULL)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    if (s == NULL)
        return NULL;
    if (len != NULL)
        *len = strlen(s);
    return s;
}
