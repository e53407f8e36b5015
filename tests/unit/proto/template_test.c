/* proto/template: shape, robots, "use" references, cycles, step order —
 * and every bundled template in templates/ passes the check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "proto/template.h"

#ifndef BG_TEMPLATES_DIR
#error "BG_TEMPLATES_DIR must name the source tree's templates/ folder"
#endif

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return j;
}

static size_t pos(const char **order, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(order[i], name) == 0)
            return i;
    fail_msg("step %s missing from the order", name);
    return SIZE_MAX;
}

static void test_valid_and_order(void **state)
{
    (void)state;
    json_t *t = load("{\"id\":\"t\",\"steps\":{"
                     "\"c\":{\"robot\":\"/audio/waveform\",\"use\":[\"b\",\"a\"]},"
                     "\"b\":{\"robot\":\"/audio/encode\",\"use\":\"a\"},"
                     "\"a\":{\"robot\":\"/meta/read\",\"use\":\":original\"},"
                     "\"d\":{\"robot\":\"/audio/loudness\",\"use\":\":original\"}}}");
    const char *order[BG_TEMPLATE_MAX_STEPS];
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(bg_template_check(t, order, &n, err, sizeof(err)), BG_OK);
    assert_int_equal(n, 4);
    assert_true(pos(order, n, "a") < pos(order, n, "b"));
    assert_true(pos(order, n, "b") < pos(order, n, "c"));
    assert_true(pos(order, n, "a") < pos(order, n, "c"));
    json_decref(t);
}

static void test_errors_name_template_and_step(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/video/explode\",\"use\":\":original\"}}}",
         "template 't', step 'x': unknown robot '/video/explode'"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"use\":\":original\"}}}", "template 't', step 'x': unknown robot"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\"nope\"}}}",
         "template 't', step 'x': use names no step ('nope')"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\"}}}", "template 't', step 'x': use must"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":[]}}}", "template 't', step 'x': use must"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":[1]}}}", "template 't', step 'x': use must"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\"y\"},"
         "\"y\":{\"robot\":\"/meta/read\",\"use\":\"z\"},\"z\":{\"robot\":\"/meta/read\",\"use\":\"x\"}}}",
         "its uses form a cycle"},
        {"{\"id\":\"t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\"x\"}}}",
         "template 't', step 'x': its uses form a cycle"},
        {"{\"id\":\"t\",\"steps\":{\"bad name\":{\"robot\":\"/meta/read\",\"use\":\":original\"}}}",
         "template 't', step 'bad name'"},
        {"{\"id\":\"t\",\"steps\":{\"x\":7}}", "template 't', step 'x': a step is an object"},
        {"{\"id\":\"t\",\"steps\":{}}", "template 't': steps must be"},
        {"{\"id\":\"t\",\"steps\":[]}", "template 't': steps must be"},
        {"{\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\":original\"}}}", "needs an id"},
        {"{\"id\":\"../t\",\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\":original\"}}}", "needs an id"},
        {"{\"id\":\"t\",\"max_attempts\":0,\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\":original\"}}}",
         "max_attempts"},
        {"{\"id\":\"t\",\"notify_url\":5,\"steps\":{\"x\":{\"robot\":\"/meta/read\",\"use\":\":original\"}}}",
         "notify_url"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *t = load(cases[i].json);
        char err[256] = "";
        if (bg_template_check(t, NULL, NULL, err, sizeof(err)) != BG_EINVAL)
            fail_msg("accepted: %s", cases[i].json);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("message '%s' lacks '%s'", err, cases[i].want);
        json_decref(t);
    }
}

static void test_too_many_steps(void **state)
{
    (void)state;
    json_t *steps = json_object();
    for (int i = 0; i <= BG_TEMPLATE_MAX_STEPS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", i);
        json_object_set_new(steps, name, json_pack("{s:s,s:s}", "robot", "/meta/read", "use", ":original"));
    }
    json_t *t = json_pack("{s:s,s:o}", "id", "big", "steps", steps);
    char err[256];
    assert_int_equal(bg_template_check(t, NULL, NULL, err, sizeof(err)), BG_EINVAL);
    json_object_del(json_object_get(t, "steps"), "s0");
    assert_int_equal(bg_template_check(t, NULL, NULL, err, sizeof(err)), BG_OK);
    json_decref(t);
}

static void test_robots(void **state)
{
    (void)state;
    const char *known[] = {"/meta/read", "/audio/encode", "/video/encode", "/video/thumbs",
                           "/audio/waveform", "/image/resize", "/audio/loudness"};
    for (size_t i = 0; i < 7; i++)
        assert_true(bg_template_robot_known(known[i]));
    assert_false(bg_template_robot_known("/meta/read/"));
    assert_false(bg_template_robot_known("/META/READ"));
    assert_false(bg_template_robot_known(""));
    assert_false(bg_template_robot_known(NULL));
}

/* The templates shipped in templates/ are the four DESIGN names, and valid. */
static void test_bundled_templates(void **state)
{
    (void)state;
    const char *want[] = {"audio-preview", "video-preview", "image-thumbnail", "probe"};
    int seen = 0;
    DIR *d = opendir(BG_TEMPLATES_DIR);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", BG_TEMPLATES_DIR, e->d_name);
        json_error_t je;
        json_t *t = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (t == NULL)
            fail_msg("%s: %s", path, je.text);
        char err[256] = "";
        if (bg_template_check(t, NULL, NULL, err, sizeof(err)) != BG_OK)
            fail_msg("%s: %s", path, err);
        const char *id = json_string_value(json_object_get(t, "id"));
        /* The file is named after its template. */
        assert_int_equal(strncmp(e->d_name, id, len - 5), 0);
        assert_int_equal(strlen(id), len - 5);
        for (size_t i = 0; i < 4; i++)
            if (strcmp(id, want[i]) == 0)
                seen |= 1 << i;
        json_decref(t);
    }
    closedir(d);
    assert_int_equal(seen, 0xf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_order),
        cmocka_unit_test(test_errors_name_template_and_step),
        cmocka_unit_test(test_too_many_steps),
        cmocka_unit_test(test_robots),
        cmocka_unit_test(test_bundled_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
