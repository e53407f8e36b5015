/* node/auth.c — login, tokens, login rate limits. */
#include "node/auth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/orgs.h"
#include "node_internal.h"
#include "proto/json.h"
#include "proto/jwt.h"
#include "proto/log.h"
#include "proto/mem.h"

#define PATH_USER_AUTH "/api/v1/cross-branch/user-authentication"

typedef struct login_bucket {
    char key[300];
    double tokens;
    long long refill_ms;
} login_bucket;

void bg_node_auth_init(bg_node *n)
{
    n->jwt_key = bg_secret_alloc(BG_KEY_BYTES);
    bg_sig_kdf(n->master, 1, BG_KDF_JWT, n->jwt_key);
    /* Verifying a password against this costs what a real one does, so an
     * unknown user cannot be told from a wrong password by timing. */
    bg_sig_pwhash("no user has this password", 25, (unsigned long long)n->cfg.auth_pwhash_opslimit,
                  (size_t)n->cfg.auth_pwhash_memlimit_kib * 1024, n->dummy_hash);
    pthread_mutex_init(&n->login_mu, NULL);
}

void bg_node_auth_fini(bg_node *n)
{
    bg_secret_free(n->jwt_key);
    free(n->login_buckets);
    pthread_mutex_destroy(&n->login_mu);
}

unsigned bg_node_login_ratelimit(bg_node *n, const char *key)
{
    double rate = (double)n->cfg.auth_login_per_min / 60000.0; /* per ms */
    double burst = (double)n->cfg.auth_login_per_min;
    long long now = bg_now_ms();
    unsigned retry = 0;
    pthread_mutex_lock(&n->login_mu);
    login_bucket *b = NULL;
    for (size_t i = 0; i < n->nlogin && b == NULL; i++)
        if (strcmp(n->login_buckets[i].key, key) == 0)
            b = &n->login_buckets[i];
    if (b == NULL && n->nlogin == 4096) {
        /* Bounded memory: only buckets that have refilled completely (idle
         * keys) make room; if none has, the attempt waits, so flooding the
         * table with made-up keys cannot reset anyone's budget. */
        size_t kept = 0;
        for (size_t i = 0; i < n->nlogin; i++) {
            login_bucket *o = &n->login_buckets[i];
            if (o->tokens + (double)(now - o->refill_ms) * rate < burst)
                n->login_buckets[kept++] = *o;
        }
        n->nlogin = kept;
        if (kept == 4096) {
            pthread_mutex_unlock(&n->login_mu);
            return 1;
        }
    }
    if (b == NULL) {
        if (n->nlogin == n->cap_login) {
            n->cap_login = n->cap_login ? n->cap_login * 2 : 64;
            n->login_buckets = bg_xrealloc(n->login_buckets, n->cap_login * sizeof(login_bucket));
        }
        b = &n->login_buckets[n->nlogin++];
        bg_strlcpy(b->key, key, sizeof(b->key));
        b->tokens = burst;
        b->refill_ms = now;
    }
    b->tokens += (double)(now - b->refill_ms) * rate;
    if (b->tokens > burst)
        b->tokens = burst;
    b->refill_ms = now;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        retry = (unsigned)ceil((1.0 - b->tokens) / rate / 1000.0);
    pthread_mutex_unlock(&n->login_mu);
    return retry;
}

static void fail(bg_login *l, int status, const char *code, const char *msg)
{
    l->done = true;
    l->status = status;
    l->code = code;
    l->result = json_pack("{s:s}", "message", msg);
}

static void issue(bg_node *n, bg_login *l, const bg_user *u)
{
    long long now = bg_now_ms() / 1000;
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "sub", u->id, "org", u->organization_id,
                               "role", u->role, "branch", n->cfg.branch_name, "iat", (json_int_t)now,
                               "exp", (json_int_t)(now + n->cfg.auth_token_ttl_s));
    char *token = bg_jwt_sign(claims, n->jwt_key);
    json_decref(claims);
    l->done = true;
    l->status = 200;
    l->result = json_pack("{s:s,s:o}", "token", token, "user", bg_node_user_json(u));
    free(token);
}

static bool verify_local(bg_node *n, const bg_user *u, const char *password)
{
    const char *hash = u != NULL && u->password_hash[0] ? u->password_hash : n->dummy_hash;
    bool ok = bg_sig_pwhash_verify(hash, password, strlen(password)) == BG_OK;
    return ok && u != NULL && u->password_hash[0];
}

void bg_node_login_start(bg_node *n, bg_registry *reg, const char *email, const char *password,
                         const char *org, bg_login *l)
{
    memset(l, 0, sizeof(*l));
    bg_org o;
    bg_node_err ne = {0};
    bool found = bg_node_org_resolve(reg, org, &o, &ne) == BG_OK;
    if (found) {
        bg_strlcpy(l->organization_id, o.id, sizeof(l->organization_id));
        bg_strlcpy(l->email, email, sizeof(l->email));
        for (char *p = l->email; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        found = bg_registry_user_get_by_email(reg, o.id, l->email, &l->user) == BG_OK;
    }
    bool home_here = found && strcmp(l->user.home_branch, n->cfg.branch_name) == 0;
    if (!found || home_here) {
        if (verify_local(n, found ? &l->user : NULL, password))
            issue(n, l, &l->user);
        else
            fail(l, 401, "INVALID_CREDENTIALS", "invalid email or password");
        return;
    }
    bg_branch home;
    memset(&home, 0, sizeof(home));
    if (bg_registry_branch_get(reg, NULL, l->user.home_branch, &home) != BG_OK || !home.is_active ||
        bg_node_branch_target(n, &home, &l->home_call.target) != BG_OK) {
        bg_registry_branch_clear(&home);
        fail(l, 503, "HOME_BRANCH_UNAVAILABLE", "the user's home branch is not registered here");
        return;
    }
    bg_registry_branch_clear(&home);
    l->home_call.method = "POST";
    bg_strlcpy(l->home_call.path, PATH_USER_AUTH, sizeof(l->home_call.path));
    json_t *q = json_pack("{s:s,s:s,s:s}", "email", l->email, "password", password,
                          "organization_id", l->organization_id);
    l->home_call.body = bg_json_dump(q, &l->home_call.body_len);
    json_decref(q);
    l->home_call.hops = 1;
}

void bg_node_login_finish(bg_node *n, bg_login *l, bg_peer_result *res)
{
    json_t *j = res->err == BG_OK && res->body ? json_loads(res->body, 0, NULL) : NULL;
    if (res->err == BG_OK && res->status == 200 && json_is_true(json_object_get(j, "authenticated")))
        issue(n, l, &l->user);
    else if (res->err == BG_OK && res->status == 401)
        fail(l, 401, "INVALID_CREDENTIALS", "invalid email or password");
    else
        fail(l, 503, "HOME_BRANCH_UNAVAILABLE", "the user's home branch did not answer; retry later");
    json_decref(j);
}

void bg_node_login_clear(bg_login *l)
{
    if (l == NULL)
        return;
    bg_peer_target_clear(&l->home_call.target);
    if (l->home_call.body != NULL) {
        bg_sig_wipe(l->home_call.body, l->home_call.body_len);
        free(l->home_call.body);
        l->home_call.body = NULL;
    }
    bg_sig_wipe(l->user.password_hash, sizeof(l->user.password_hash));
    json_decref(l->result);
    l->result = NULL;
}

json_t *bg_node_user_authenticate(bg_node *n, bg_registry *reg, const char *email,
                                  const char *password, const char *org, int *status)
{
    bg_login l;
    bg_node_login_start(n, reg, email, password, org, &l);
    json_t *out;
    /* Only users homed here are verified here; anything else is the same
     * 401 as a wrong password. */
    if (l.done && l.status == 200) {
        *status = 200;
        out = json_pack("{s:b,s:o}", "authenticated", 1, "user", bg_node_user_json(&l.user));
    } else {
        *status = 401;
        out = NULL;
    }
    bg_node_login_clear(&l);
    return out;
}

bg_err bg_node_token_verify(bg_node *n, const char *token, size_t len, bg_user_claims *out)
{
    json_t *c = NULL;
    if (bg_jwt_verify(token, len, n->jwt_key, bg_now_ms() / 1000, 60, &c) != BG_OK)
        return BG_EAUTH;
    const char *sub = json_string_value(json_object_get(c, "sub"));
    const char *org = json_string_value(json_object_get(c, "org"));
    const char *role = json_string_value(json_object_get(c, "role"));
    const char *branch = json_string_value(json_object_get(c, "branch"));
    bg_err e = BG_EAUTH;
    if (sub && org && role && branch && bg_uuid_valid(sub, strlen(sub)) && bg_uuid_valid(org, strlen(org)) &&
        strcmp(branch, n->cfg.branch_name) == 0) {
        bg_strlcpy(out->sub, sub, sizeof(out->sub));
        bg_strlcpy(out->org, org, sizeof(out->org));
        bg_strlcpy(out->role, role, sizeof(out->role));
        bg_strlcpy(out->branch, branch, sizeof(out->branch));
        e = BG_OK;
    }
    json_decref(c);
    return e;
}
