/*
 * proto/template.h — media templates (DESIGN section 7): shape checks,
 * known robots, "use" references and a step order without cycles. Pure
 * functions, any thread.
 *
 * A template is {"id","description"?,"steps":{NAME:{"robot","use",...}},
 * "notify_url"?,"max_attempts"?}; "use" names another step, ":original"
 * (the uploaded files), or a list of those.
 */
#ifndef BG_PROTO_TEMPLATE_H
#define BG_PROTO_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define BG_TEMPLATE_MAX_STEPS 32
#define BG_TEMPLATE_ORIGINAL ":original"

/* True for the robots the pipeline knows ("/meta/read", "/audio/encode",
 * "/video/encode", "/video/thumbs", "/audio/waveform", "/image/resize",
 * "/audio/loudness"). */
bool bg_template_robot_known(const char *robot);

/* Checks a template and computes an order in which its steps can run (every
 * step after the steps it uses). order receives up to BG_TEMPLATE_MAX_STEPS
 * step names borrowed from t; *n their count (either may be NULL).
 * Errors: BG_EINVAL, with a message naming the template and the step
 * ("template 'x', step 'y': ...") in err. */
bg_err bg_template_check(const json_t *t, const char **order, size_t *n, char *err,
                         size_t errcap);

#endif
