/* gateway/handlers/auth.c — login (public) and the home branch's side of
 * federated login (peer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handlers/handlers.h"
#include "node/auth.h"
#include "proto/json.h"
#include "proto/mem.h"

static void login_free(void *p)
{
    bg_node_login_clear(p);
    free(p);
}

static void answer(bg_reqctx *rc, bg_login *l)
{
    if (l->status == 200) {
        bg_gw_json(rc, 200, json_incref(l->result));
        return;
    }
    if (l->status == 503)
        bg_gw_header(rc, "retry-after", "5");
    bg_gw_error(rc, l->status, l->code, "%s",
                json_string_value(json_object_get(l->result, "message")));
}

static void finish_reply(bg_reqctx *rc, bg_gw_job *job)
{
    answer(rc, job->state);
}

static void finish_work(bg_gw_job *job, bg_registry *reg)
{
    (void)reg;
    bg_node_login_finish(job->node, job->state, (bg_peer_result *)job->arg);
}

static void home_answered(bg_reqctx *rc, bg_gw_job *job, bg_peer_result *res, size_t n)
{
    (void)n;
    job->arg = res;
    /* argon2id and token signing are done; one more worker stage keeps
     * the result handling in one place. */
    bg_gw_job_next(rc, job, finish_work, finish_reply);
}

static void start_reply(bg_reqctx *rc, bg_gw_job *job)
{
    bg_login *l = job->state;
    if (l->done) {
        answer(rc, l);
        return;
    }
    bg_gw_job_peers(rc, job, &l->home_call, 1, home_answered);
}

static void start_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *in = job->in;
    bg_node_login_start(job->node, reg, json_string_value(json_object_get(in, "email")),
                        json_string_value(json_object_get(in, "password")),
                        json_string_value(json_object_get(in, "organization_id")), job->state);
    json_object_del(in, "password");
    bg_strlcpy(((bg_login *)job->state)->home_call.request_id, job->request_id,
               sizeof(((bg_login *)job->state)->home_call.request_id));
}

/* email, password, optional organization_id; answers 400 itself. */
static json_t *credentials(bg_reqctx *rc)
{
    const char *email, *password, *org = NULL;
    bg_json_err je;
    if (bg_json_get_str(rc->body, "email", true, 1, 254, &email, &je) != BG_OK ||
        bg_json_get_str(rc->body, "password", true, 1, 4096, &password, &je) != BG_OK ||
        bg_json_get_str(rc->body, "organization_id", false, 36, 36, &org, &je) == BG_EINVAL) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "%s", je.message);
        return NULL;
    }
    if (org != NULL && !bg_uuid_valid(org, strlen(org))) {
        bg_gw_error(rc, 400, "INVALID_FIELD", "organization_id must be a UUID");
        return NULL;
    }
    json_t *in = json_pack("{s:s,s:s}", "email", email, "password", password);
    if (org != NULL)
        json_object_set_new(in, "organization_id", json_string(org));
    return in;
}

/* Per user and per client address. Answers 429 itself. */
static bool login_allowed(bg_reqctx *rc, json_t *in)
{
    char key[400], addr[64];
    /* Keyed by the address alone: however the organisation is named (or
     * left out), the same person gets the same budget. */
    snprintf(key, sizeof(key), "user:%s", json_string_value(json_object_get(in, "email")));
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    bg_gw_client_addr(rc, addr, sizeof(addr));
    /* The address first: one client cycling through made-up emails is
     * stopped before it creates many user buckets. */
    char akey[80];
    snprintf(akey, sizeof(akey), "addr:%s", addr);
    unsigned retry = bg_node_login_ratelimit(rc->gw->node, akey);
    if (retry == 0)
        retry = bg_node_login_ratelimit(rc->gw->node, key);
    if (retry == 0)
        return true;
    char secs[16];
    snprintf(secs, sizeof(secs), "%u", retry);
    bg_gw_header(rc, "retry-after", secs);
    bg_gw_error(rc, 429, "RATE_LIMITED", "too many login attempts; retry after %u s", retry);
    return false;
}

void bg_h_auth_login(bg_reqctx *rc)
{
    json_t *in = credentials(rc);
    if (in == NULL)
        return;
    if (!login_allowed(rc, in)) {
        json_decref(in);
        return;
    }
    bg_gw_job *job = bg_gw_job_new(rc, start_work, in);
    job->state = bg_xcalloc(1, sizeof(bg_login));
    job->state_free = login_free;
    job->reply = start_reply;
    bg_gw_job_submit(rc, job);
}

static void peer_auth_work(bg_gw_job *job, bg_registry *reg)
{
    json_t *in = job->in;
    int status = 401;
    json_t *out = bg_node_user_authenticate(job->node, reg, json_string_value(json_object_get(in, "email")),
                                            json_string_value(json_object_get(in, "password")),
                                            json_string_value(json_object_get(in, "organization_id")),
                                            &status);
    json_object_del(in, "password");
    if (status != 200) {
        bg_gw_job_fail(job, BG_EAUTH, "INVALID_CREDENTIALS", "invalid email or password");
        return;
    }
    bg_gw_job_ok(job, 200, out);
}

void bg_h_cross_user_auth(bg_reqctx *rc)
{
    json_t *in = credentials(rc);
    if (in != NULL)
        bg_gw_job_submit(rc, bg_gw_job_new(rc, peer_auth_work, in));
}
