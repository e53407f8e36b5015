#include "template.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static const char *const robots[] = {"/meta/read",   "/audio/encode",   "/video/encode",
                                     "/video/thumbs", "/audio/waveform", "/image/resize",
                                     "/audio/loudness"};

bool bg_template_robot_known(const char *robot)
{
    for (size_t i = 0; robot != NULL && i < sizeof(robots) / sizeof(robots[0]); i++)
        if (strcmp(robot, robots[i]) == 0)
            return true;
    return false;
}

__attribute__((format(printf, 3, 4))) static bg_err fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return BG_EINVAL;
}

/* The names a step's "use" refers to, as a JSON array (new reference), or
 * NULL when "use" is neither a string nor a list of 1..8 strings. */
static json_t *uses_of(const json_t *step)
{
    json_t *use = json_object_get(step, "use");
    if (json_is_string(use))
        return json_pack("[O]", use);
    if (!json_is_array(use) || json_array_size(use) == 0 || json_array_size(use) > 8)
        return NULL;
    size_t i;
    json_t *v;
    json_array_foreach(use, i, v) if (!json_is_string(v)) return NULL;
    return json_incref(use);
}

/* Depth-first visit: 0 unvisited, 1 on the current path, 2 done. */
typedef struct walk {
    const json_t *steps;
    const char *names[BG_TEMPLATE_MAX_STEPS];
    int state[BG_TEMPLATE_MAX_STEPS];
    size_t nnames;
    const char **order;
    size_t norder;
    const char *cycle_at;
} walk;

static size_t index_of(const walk *w, const char *name)
{
    for (size_t i = 0; i < w->nnames; i++)
        if (strcmp(w->names[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static bool visit(walk *w, size_t i)
{
    if (w->state[i] == 2)
        return true;
    if (w->state[i] == 1) {
        w->cycle_at = w->names[i];
        return false;
    }
    w->state[i] = 1;
    json_t *uses = uses_of(json_object_get(w->steps, w->names[i]));
    size_t k;
    json_t *u;
    bool ok = true;
    json_array_foreach(uses, k, u) {
        const char *ref = json_string_value(u);
        if (strcmp(ref, BG_TEMPLATE_ORIGINAL) != 0 && !(ok = visit(w, index_of(w, ref))))
            break;
    }
    json_decref(uses);
    if (!ok)
        return false;
    w->state[i] = 2;
    if (w->order != NULL)
        w->order[w->norder] = w->names[i];
    w->norder++;
    return true;
}

/* Shape of one step: a known robot and references that exist. */
static bg_err check_step(const char *tid, const char *name, const json_t *step, const json_t *steps,
                         char *err, size_t cap)
{
    if (!bg_str_is_ident(name, strlen(name), 64, "-_"))
        return fail(err, cap, "template '%s', step '%.64s': step names are 1-64 of [A-Za-z0-9_-]",
                    tid, name);
    if (!json_is_object(step))
        return fail(err, cap, "template '%s', step '%s': a step is an object", tid, name);
    const char *robot = json_string_value(json_object_get(step, "robot"));
    if (!bg_template_robot_known(robot))
        return fail(err, cap, "template '%s', step '%s': unknown robot '%.64s'", tid, name,
                    robot ? robot : "(none)");
    json_t *uses = uses_of(step);
    if (uses == NULL)
        return fail(err, cap, "template '%s', step '%s': use must name a step or \":original\"",
                    tid, name);
    size_t i;
    json_t *u;
    json_array_foreach(uses, i, u) {
        const char *ref = json_string_value(u);
        if (strcmp(ref, BG_TEMPLATE_ORIGINAL) != 0 && json_object_get(steps, ref) == NULL) {
            fail(err, cap, "template '%s', step '%s': use names no step ('%.64s')", tid, name, ref);
            json_decref(uses);
            return BG_EINVAL;
        }
    }
    json_decref(uses);
    return BG_OK;
}

bg_err bg_template_check(const json_t *t, const char **order, size_t *n, char *err, size_t cap)
{
    const char *tid = json_string_value(json_object_get(t, "id"));
    if (!json_is_object(t) || tid == NULL || !bg_str_is_ident(tid, strlen(tid), 64, "-_"))
        return fail(err, cap, "a template needs an id of 1-64 [A-Za-z0-9_-]");
    json_t *steps = json_object_get(t, "steps");
    if (!json_is_object(steps) || json_object_size(steps) == 0 ||
        json_object_size(steps) > BG_TEMPLATE_MAX_STEPS)
        return fail(err, cap, "template '%s': steps must be an object of 1-%d steps", tid,
                    BG_TEMPLATE_MAX_STEPS);
    json_t *ma = json_object_get(t, "max_attempts");
    if (ma != NULL && (!json_is_integer(ma) || json_integer_value(ma) < 1 || json_integer_value(ma) > 10))
        return fail(err, cap, "template '%s': max_attempts must be 1-10", tid);
    json_t *nu = json_object_get(t, "notify_url");
    if (nu != NULL && !json_is_null(nu) && !json_is_string(nu))
        return fail(err, cap, "template '%s': notify_url must be a URL", tid);
    walk w;
    memset(&w, 0, sizeof(w));
    w.steps = steps;
    w.order = order;
    const char *name;
    json_t *step;
    json_object_foreach((json_t *)steps, name, step) {
        if (check_step(tid, name, step, steps, err, cap) != BG_OK)
            return BG_EINVAL;
        w.names[w.nnames++] = name;
    }
    for (size_t i = 0; i < w.nnames; i++)
        if (!visit(&w, i))
            return fail(err, cap, "template '%s', step '%s': its uses form a cycle", tid, w.cycle_at);
    if (n != NULL)
        *n = w.norder;
    return BG_OK;
}
