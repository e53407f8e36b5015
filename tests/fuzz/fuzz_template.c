/*
 * fuzz_template — media template files (proto/template.c
 * bg_template_check), as node/templates.c load_one reads every *.json of
 * templates.dir at start: bg_json_parse_object on the file's bytes, then
 * the check; also the template payloads that share-resource carries.
 *
 * Invariants: an accepted template yields an order holding every step once,
 * each after every step it uses; a refused one leaves a NUL-terminated
 * message within the buffer, however small.
 */
#include "fuzz.h"

#include "proto/json.h"
#include "proto/template.h"

static size_t pos(const char **order, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(order[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static void check_order(const json_t *t, const char **order, size_t n)
{
    json_t *steps = json_object_get(t, "steps");
    FUZZ_CHECK(n == json_object_size(steps) && n <= BG_TEMPLATE_MAX_STEPS);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(pos(order, n, order[i]) == i);
        json_t *use = json_object_get(json_object_get(steps, order[i]), "use");
        json_t *list = json_is_string(use) ? json_pack("[O]", use) : json_incref(use);
        size_t k;
        json_t *u;
        json_array_foreach(list, k, u)
        {
            const char *ref = json_string_value(u);
            if (strcmp(ref, BG_TEMPLATE_ORIGINAL) != 0)
                FUZZ_CHECK(pos(order, n, ref) < i);
        }
        json_decref(list);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *t = NULL;
    bg_json_err je;
    if (bg_json_parse_object((const char *)data, size, &t, &je) != BG_OK)
        return 0;
    const char *order[BG_TEMPLATE_MAX_STEPS + 1];
    size_t n = SIZE_MAX;
    char err[300];
    memset(err, 'x', sizeof(err));
    bg_err e = bg_template_check(t, order, &n, err, sizeof(err));
    FUZZ_CHECK(e == BG_OK || e == BG_EINVAL);
    if (e == BG_OK)
        check_order(t, order, n);
    else
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    /* As the loader calls it, and with buffers too small for any message. */
    char tiny[4];
    FUZZ_CHECK(bg_template_check(t, NULL, NULL, tiny, sizeof(tiny)) == e);
    FUZZ_CHECK(bg_template_check(t, NULL, NULL, NULL, 0) == e);
    bg_template_robot_known(json_string_value(json_object_get(t, "id")));
    json_decref(t);
    return 0;
}
