/* Outbox dead letters: a share-resource delivery that keeps failing moves
 * to the dead-letter state after outbox.give_up_after_s, is listed, and is
 * delivered once replayed; an organisation sync under the same failure
 * never gives up. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define KEY "outbox-pair-key-0123456789"
#define WRONG "outbox-wrong-key-0123456789"

static const char *const env[] = {
    "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",  "BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8",
    "BRANCHGATE_OUTBOX_GIVE_UP_AFTER_S=1", "BRANCHGATE_OUTBOX_BACKOFF_MAX_S=1",
    "BRANCHGATE_PEERS_PING_INTERVAL_MS=200", NULL};

static char root[256];
static bg_th_proc top, m1;

static json_t *call(const bg_th_proc *p, const char *method, const char *path, const char *json,
                    long want)
{
    bg_th_resp r;
    assert_int_equal(bg_th_send_json(p, method, path, p->token, json, &r), 0);
    if (r.status != want)
        fprintf(stderr, "%s %s: %ld %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, want);
    json_t *j = bg_th_json(&r);
    bg_th_resp_free(&r);
    return j;
}

static void reg(const bg_th_proc *at, const char *name, const char *url, const char *type)
{
    assert_true(bg_th_register(at, name, url, type, KEY));
}

static int setup(void **state)
{
    (void)state;
    bg_th_tmpdir(root);
    char dir[320];
    const char *names[] = {"top", "master-1"};
    const char *types[] = {"top_branch", "master_branch"};
    bg_th_proc *procs[] = {&top, &m1};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
        const char *args[] = {"init", "--data", dir, "--name", names[i], "--type", types[i], NULL};
        if (bg_th_run(args, NULL, NULL) != 0 || bg_th_start(procs[i], dir, NULL, env) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bg_th_stop(&top, SIGKILL, 5000);
    bg_th_stop(&m1, SIGKILL, 5000);
    bg_th_rmtree(root);
    return 0;
}

/* Polls GET path until its JSON body contains needle (or not, when
 * present is false). */
static bool wait_body(const bg_th_proc *p, const char *path, const char *needle, bool present,
                      int deadline_ms)
{
    long long end = bg_th_now_ms() + deadline_ms;
    while (bg_th_now_ms() < end) {
        bg_th_resp r;
        if (bg_th_get(p, path, p->token, &r) == 0) {
            bool hit = r.body != NULL && strstr(r.body, needle) != NULL;
            bg_th_resp_free(&r);
            if (hit == present)
                return true;
        }
        usleep(20000);
    }
    return false;
}

static void test_dead_letter_and_replay(void **state)
{
    (void)state;
    reg(&top, "master-1", m1.url, "master_branch");
    reg(&m1, "top", top.url, "top_branch");
    json_t *org = call(&top, "POST", "/api/v1/organizations", "{\"name\":\"dlq\"}", 201);
    char id[64], path[256];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(org, "id")));
    json_decref(org);
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/sync", id);
    json_decref(call(&top, "POST", path, "{\"branches\":[\"master-1\"]}", 202));
    assert_true(wait_body(&top, "/api/v1/branches/master-1/status", "\"depth\":0", true, 10000));

    /* master-1 stops accepting the top's key: every delivery now fails
     * authentication. */
    char rotate[128];
    snprintf(rotate, sizeof(rotate), "{\"api_key\":\"%s\"}", WRONG);
    json_decref(call(&m1, "PATCH", "/api/v1/branches/top", rotate, 200));
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/share", id);
    json_decref(call(&top, "POST", path,
                     "{\"branches\":[\"master-1\"],\"resource_type\":\"template\","
                     "\"resource_id\":\"dlq-thumbs\",\"payload\":{\"steps\":{}}}",
                     202));
    /* The share gives up after outbox.give_up_after_s (1 s) ... */
    assert_true(wait_body(&top, "/api/v1/outbox?state=dead", "\"kind\":\"share_resource\"", true, 10000));
    json_t *dead = call(&top, "GET", "/api/v1/outbox?state=dead", NULL, 200);
    json_t *msg = json_array_get(json_object_get(dead, "messages"), 0);
    assert_int_equal(json_integer_value(json_object_get(msg, "last_status")), 403);
    assert_non_null(strstr(json_string_value(json_object_get(msg, "last_error")),
                           "INVALID_BRANCH_CREDENTIALS"));
    json_int_t dead_id = json_integer_value(json_object_get(msg, "id"));
    json_decref(dead);
    /* ... while an organisation change under the same failure stays pending. */
    snprintf(path, sizeof(path), "/api/v1/organizations/%s", id);
    json_decref(call(&top, "PATCH", path, "{\"name\":\"dlq renamed\"}", 200));
    usleep(1500 * 1000);
    assert_true(wait_body(&top, "/api/v1/outbox?state=pending", "\"kind\":\"org_sync\"", true, 2000));

    /* The key is fixed, the pending sync flows, the dead share is replayed. */
    snprintf(rotate, sizeof(rotate), "{\"api_key\":\"%s\"}", KEY);
    json_decref(call(&m1, "PATCH", "/api/v1/branches/top", rotate, 200));
    snprintf(path, sizeof(path), "/api/v1/organizations/%s", id);
    assert_true(wait_body(&m1, path, "dlq renamed", true, 10000));
    snprintf(path, sizeof(path), "/api/v1/outbox/%lld/requeue", (long long)dead_id);
    json_decref(call(&top, "POST", path, NULL, 202));
    json_decref(call(&top, "POST", path, NULL, 404)); /* no longer dead */
    snprintf(path, sizeof(path), "/api/v1/templates/dlq-thumbs?organization_id=%s", id);
    assert_true(wait_body(&m1, path, "\"shared_by\":\"top\"", true, 10000));
    assert_true(wait_body(&top, "/api/v1/outbox?state=dead", "\"messages\":[]", true, 5000));
    assert_true(wait_body(&top, "/api/v1/branches/master-1/status", "\"depth\":0", true, 5000));
    json_t *audit = call(&top, "GET", "/api/v1/audit", NULL, 200);
    char *text = json_dumps(audit, 0);
    assert_non_null(strstr(text, "outbox.requeue"));
    free(text);
    json_decref(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letter_and_replay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
