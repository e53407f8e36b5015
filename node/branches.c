#define _GNU_SOURCE
/* node/branches.c — peer branches: admin changes, the inbound snapshot,
 * rate buckets, live status and pings. */
#include "node/branches.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/orgs.h"
#include "node/pipeline.h"
#include "node_internal.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/url.h"

typedef struct peer_entry {
    int64_t id;
    char url[512];
    uint8_t hash[BG_HASH_BYTES];
    bool active;
    char name[64];
    char org[BG_UUID_LEN + 1];
    char type[16];
} peer_entry;

typedef struct peer_live {
    int64_t id;
    char name[64];
    double tokens;
    long long refill_ms;
    int up; /* -1 unknown */
    int64_t rtt_us;
} peer_live;

void bg_node_peers_init(bg_node *n)
{
    pthread_rwlock_init(&n->peers_lock, NULL);
    pthread_mutex_init(&n->live_mu, NULL);
    n->peer_seal_key = bg_secret_alloc(BG_KEY_BYTES);
    n->peer_hash_key = bg_secret_alloc(BG_KEY_BYTES);
    bg_sig_kdf(n->master, 1, BG_KDF_PEER_SEAL, n->peer_seal_key);
    bg_sig_kdf(n->master, 1, BG_KDF_PEER_HASH, n->peer_hash_key);
}

void bg_node_peers_fini(bg_node *n)
{
    bg_peer_client_destroy(n->peer);
    n->peer = NULL;
    bg_secret_free(n->peer_seal_key);
    bg_secret_free(n->peer_hash_key);
    free(n->peers);
    free(n->live);
    pthread_rwlock_destroy(&n->peers_lock);
    pthread_mutex_destroy(&n->live_mu);
}

bg_peer_client *bg_node_peer_client(bg_node *n)
{
    return n->peer;
}

static void peer_key_hash(const bg_node *n, const char *key, size_t len, uint8_t out[BG_HASH_BYTES])
{
    bg_sig_keyed_hash(n->peer_hash_key, BG_KEY_BYTES, key, len, out, BG_HASH_BYTES);
}

json_t *bg_node_branch_json(const bg_branch *b)
{
    char created[32], updated[32], ping[32];
    bg_format_rfc3339(b->created_ms / 1000, created);
    bg_format_rfc3339(b->updated_ms / 1000, updated);
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:b,s:b,s:o,s:s,s:s,s:s}", "branch_name", b->name,
                          "branch_url", b->url, "branch_type", b->type, "organization_id",
                          b->organization_id[0] ? json_string(b->organization_id) : json_null(),
                          "is_active", b->is_active, "verified", b->verified, "last_ping_at",
                          json_null(), "state", b->state, "created_at", created, "updated_at",
                          updated);
    if (b->last_ping_ms > 0) {
        bg_format_rfc3339(b->last_ping_ms / 1000, ping);
        json_object_set_new(o, "last_ping_at", json_string(ping));
    }
    json_object_set_new(o, "pinned", json_boolean(b->spki_pin[0] != '\0'));
    json_object_set_new(o, "has_certificate", json_boolean(b->ssl_certificate != NULL));
    return o;
}

/* ---- validation ---- */

bg_err bg_node_errf(bg_node_err *e, const char *code, const char *fmt, ...)
{
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return BG_EINVAL;
}

static bool key_ok(const char *k)
{
    size_t len = strlen(k);
    if (len < BG_PEER_KEY_MIN || len > BG_PEER_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f)
            return false;
    return true;
}

static bg_err check_url(bg_node *n, const char *url, char *norm, bg_node_err *e)
{
    if (bg_url_normalize(url, strlen(url), norm, BG_URL_MAX) != BG_OK)
        return bg_node_errf(e, "INVALID_URL", "branch_url must be an absolute http(s) URL without "
                                         "credentials, query or fragment");
    char own[BG_URL_MAX];
    if (bg_url_normalize(n->url, strlen(n->url), own, sizeof(own)) == BG_OK && strcmp(own, norm) == 0)
        return bg_node_errf(e, "INVALID_URL", "branch_url is this branch's own URL");
    return BG_OK;
}

static bg_err check_tls(const char *cert, const char *pin, bg_node_err *e)
{
    /* "" is allowed: a PATCH uses it to remove the certificate. */
    if (cert != NULL && cert[0] != '\0' &&
        (strncmp(cert, "-----BEGIN CERTIFICATE-----", 27) != 0 || strlen(cert) > 65536))
        return bg_node_errf(e, "INVALID_CERTIFICATE", "ssl_certificate must be a PEM certificate");
    if (pin != NULL && pin[0] != '\0' && !bg_peer_pin_valid(pin))
        return bg_node_errf(e, "INVALID_PIN", "spki_pin must be sha256// followed by a base64 SHA-256");
    return BG_OK;
}

static void seal_key(bg_node *n, const char *key, bg_branch *b)
{
    size_t len = strlen(key);
    bg_sig_seal(n->peer_seal_key, key, len, b->key_sealed);
    b->key_sealed_len = len + BG_SEAL_OVERHEAD;
    peer_key_hash(n, key, len, b->key_hash);
}

static bg_err validate_input(bg_node *n, const bg_branch_input *in, bg_branch *b, bg_node_err *e)
{
    if (!bg_str_is_ident(in->name, strlen(in->name), 63, "-_."))
        return bg_node_errf(e, "INVALID_BRANCH_NAME", "branch_name must be 1-63 of [A-Za-z0-9._-]");
    if (strcmp(in->type, "top_branch") != 0 && strcmp(in->type, "master_branch") != 0)
        return bg_node_errf(e, "INVALID_BRANCH_TYPE", "branch_type must be top_branch or master_branch");
    if (!key_ok(in->api_key))
        return bg_node_errf(e, "INVALID_API_KEY", "api_key must be %d-%d printable characters",
                       BG_PEER_KEY_MIN, BG_PEER_KEY_MAX);
    if (in->organization_id != NULL &&
        !bg_uuid_valid(in->organization_id, strlen(in->organization_id)))
        return bg_node_errf(e, "INVALID_ORGANIZATION_ID", "organization_id must be a UUID");
    if (check_url(n, in->url, b->url, e) != BG_OK || check_tls(in->ssl_certificate, in->spki_pin, e))
        return BG_EINVAL;
    return BG_OK;
}

static bg_err audit(bg_registry *reg, const char *actor, const char *action, const bg_branch *b,
                    const char *request_id)
{
    json_t *d = json_pack("{s:s,s:s,s:b}", "branch_url", b->url, "branch_type", b->type,
                          "is_active", b->is_active);
    char *detail = bg_json_dump(d, NULL);
    json_decref(d);
    bg_audit_entry a = {.ts_ms = bg_now_ms(), .detail = detail};
    bg_strlcpy(a.actor, actor, sizeof(a.actor));
    bg_strlcpy(a.action, action, sizeof(a.action));
    snprintf(a.target, sizeof(a.target), "branch:%s", b->name);
    bg_strlcpy(a.request_id, request_id ? request_id : "", sizeof(a.request_id));
    bg_err err = bg_registry_audit_append(reg, &a);
    free(detail);
    return err;
}

bg_err bg_node_branch_register(bg_node *n, bg_registry *reg, const bg_branch_input *in,
                               const char *actor, const char *request_id, bg_branch *out,
                               bg_node_err *e)
{
    bg_branch b;
    memset(&b, 0, sizeof(b));
    if (validate_input(n, in, &b, e) != BG_OK)
        return BG_EINVAL;
    bg_strlcpy(b.name, in->name, sizeof(b.name));
    bg_strlcpy(b.type, in->type, sizeof(b.type));
    bg_strlcpy(b.organization_id, in->organization_id ? in->organization_id : "",
               sizeof(b.organization_id));
    bg_strlcpy(b.spki_pin, in->spki_pin ? in->spki_pin : "", sizeof(b.spki_pin));
    bg_strlcpy(b.state, "unknown", sizeof(b.state));
    b.ssl_certificate = in->ssl_certificate ? bg_xstrdup(in->ssl_certificate) : NULL;
    b.is_active = true;
    b.created_ms = b.updated_ms = bg_now_ms();
    seal_key(n, in->api_key, &b);
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_registry_branch_insert(reg, &b);
    if (err == BG_OK)
        err = audit(reg, actor, "branch.register", &b, request_id);
    if (err == BG_OK)
        err = bg_registry_commit(reg);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        bg_registry_branch_clear(&b);
        if (err == BG_ECONFLICT)
            bg_node_errf(e, "BRANCH_EXISTS", "a branch named '%s' is already registered", in->name);
        else
            bg_node_errf(e, "INTERNAL_ERROR", "cannot register: %s", bg_registry_errmsg(reg));
        return err;
    }
    bg_node_branches_reload(n, reg);
    *out = b;
    return BG_OK;
}

static bg_err apply_patch(bg_node *n, const bg_branch_patch *p, bg_branch *b, bg_node_err *e)
{
    if (p->url != NULL && check_url(n, p->url, b->url, e) != BG_OK)
        return BG_EINVAL;
    if (p->type != NULL) {
        if (strcmp(p->type, "top_branch") != 0 && strcmp(p->type, "master_branch") != 0)
            return bg_node_errf(e, "INVALID_BRANCH_TYPE", "branch_type must be top_branch or master_branch");
        bg_strlcpy(b->type, p->type, sizeof(b->type));
    }
    if (check_tls(p->ssl_certificate, p->spki_pin, e) != BG_OK)
        return BG_EINVAL;
    if (p->api_key != NULL) {
        if (!key_ok(p->api_key))
            return bg_node_errf(e, "INVALID_API_KEY", "api_key must be %d-%d printable characters",
                           BG_PEER_KEY_MIN, BG_PEER_KEY_MAX);
        seal_key(n, p->api_key, b);
        b->verified = false;
    }
    if (p->ssl_certificate != NULL) {
        free(b->ssl_certificate);
        b->ssl_certificate = p->ssl_certificate[0] ? bg_xstrdup(p->ssl_certificate) : NULL;
    }
    if (p->spki_pin != NULL)
        bg_strlcpy(b->spki_pin, p->spki_pin, sizeof(b->spki_pin));
    if (p->is_active >= 0)
        b->is_active = p->is_active != 0;
    b->updated_ms = bg_now_ms();
    return BG_OK;
}

bg_err bg_node_branch_update(bg_node *n, bg_registry *reg, const char *org, const char *name,
                             const bg_branch_patch *p, const char *actor, const char *request_id,
                             bg_branch *out, bg_node_err *e)
{
    bg_branch b;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_registry_branch_get(reg, org, name, &b);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        if (err == BG_ENOTFOUND)
            bg_node_errf(e, "BRANCH_NOT_FOUND", "no branch named '%s'", name);
        else if (err == BG_ECONFLICT)
            bg_node_errf(e, "BRANCH_AMBIGUOUS", "several organisations have a branch named '%s'; "
                                           "pass organization_id", name);
        return err;
    }
    err = apply_patch(n, p, &b, e);
    bool rotated = p->api_key != NULL;
    const char *action = rotated ? "branch.rotate_key"
                         : p->is_active == 0 ? "branch.deactivate" : "branch.update";
    if (err == BG_OK)
        err = bg_registry_branch_update(reg, &b);
    if (err == BG_OK)
        err = audit(reg, actor, action, &b, request_id);
    if (err == BG_OK)
        err = bg_registry_commit(reg);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        bg_registry_branch_clear(&b);
        if (e->code == NULL)
            bg_node_errf(e, "INTERNAL_ERROR", "cannot update: %s", bg_registry_errmsg(reg));
        return err;
    }
    bg_node_branches_reload(n, reg);
    *out = b;
    return BG_OK;
}

/* ---- inbound snapshot ---- */

static peer_live *live_of(bg_node *n, int64_t id, const char *name);

bg_err bg_node_branches_reload(bg_node *n, bg_registry *reg)
{
    bg_branch *list = NULL;
    size_t cnt = 0;
    bg_err e = bg_registry_branch_list(reg, NULL, true, 0, 0, &list, &cnt);
    if (e != BG_OK)
        return e;
    peer_entry *fresh = bg_xcalloc(cnt ? cnt : 1, sizeof(*fresh));
    for (size_t i = 0; i < cnt; i++) {
        fresh[i].id = list[i].id;
        bg_strlcpy(fresh[i].url, list[i].url, sizeof(fresh[i].url));
        memcpy(fresh[i].hash, list[i].key_hash, BG_HASH_BYTES);
        fresh[i].active = list[i].is_active;
        bg_strlcpy(fresh[i].name, list[i].name, sizeof(fresh[i].name));
        bg_strlcpy(fresh[i].org, list[i].organization_id, sizeof(fresh[i].org));
        bg_strlcpy(fresh[i].type, list[i].type, sizeof(fresh[i].type));
    }
    /* A peer not pinged since start shows its last recorded state in
     * /metrics (a restart does not make it disappear there). */
    pthread_mutex_lock(&n->live_mu);
    for (size_t i = 0; i < cnt; i++) {
        bool up = strcmp(list[i].state, "up") == 0, down = strcmp(list[i].state, "down") == 0;
        if (!list[i].is_active || (!up && !down))
            continue;
        peer_live *l = live_of(n, list[i].id, list[i].name);
        if (l->up < 0) {
            l->up = up;
            l->rtt_us = list[i].rtt_us;
        }
    }
    pthread_mutex_unlock(&n->live_mu);
    bg_registry_branch_free(list, cnt);
    pthread_rwlock_wrlock(&n->peers_lock);
    peer_entry *old = n->peers;
    n->peers = fresh;
    n->npeers = cnt;
    pthread_rwlock_unlock(&n->peers_lock);
    free(old);
    return BG_OK;
}

bg_err bg_node_peer_authenticate(bg_node *n, const char *origin, size_t olen, const char *token,
                                 size_t tlen, bg_peer_identity *out)
{
    static const uint8_t dummy[BG_HASH_BYTES];
    char norm[BG_URL_MAX];
    uint8_t h[BG_HASH_BYTES];
    peer_key_hash(n, token, tlen, h);
    /* Every entry with the origin's URL is compared (the same URL may be
     * registered for several organisations); an unknown origin compares
     * against a dummy so that the work is the same. Peers send their URL
     * in normal form, so an exact match spares the normalisation; the
     * origin is not secret, only the key is. */
    const peer_entry *match = NULL;
    bool any = false;
    pthread_rwlock_rdlock(&n->peers_lock);
    const char *want = NULL;
    for (size_t i = 0; i < n->npeers && want == NULL; i++)
        if (strlen(n->peers[i].url) == olen && memcmp(n->peers[i].url, origin, olen) == 0)
            want = n->peers[i].url;
    if (want == NULL && bg_url_normalize(origin, olen, norm, sizeof(norm)) == BG_OK)
        want = norm;
    for (size_t i = 0; want != NULL && i < n->npeers; i++) {
        const peer_entry *p = &n->peers[i];
        if (strcmp(p->url, want) != 0)
            continue;
        any = true;
        bool eq = bg_sig_eq(h, p->hash, BG_HASH_BYTES);
        if (eq && p->active && match == NULL)
            match = p;
    }
    if (!any)
        (void)bg_sig_eq(h, dummy, BG_HASH_BYTES);
    if (match != NULL) {
        out->id = match->id;
        bg_strlcpy(out->name, match->name, sizeof(out->name));
        bg_strlcpy(out->organization_id, match->org, sizeof(out->organization_id));
        bg_strlcpy(out->type, match->type, sizeof(out->type));
        bg_strlcpy(out->url, match->url, sizeof(out->url));
    }
    pthread_rwlock_unlock(&n->peers_lock);
    bg_sig_wipe(h, sizeof(h));
    return match != NULL ? BG_OK : BG_EFORBIDDEN;
}

/* live_mu held */
static peer_live *live_of(bg_node *n, int64_t id, const char *name)
{
    for (size_t i = 0; i < n->nlive; i++)
        if (n->live[i].id == id)
            return &n->live[i];
    if (n->nlive == n->cap_live) {
        n->cap_live = n->cap_live ? n->cap_live * 2 : 16;
        n->live = bg_xrealloc(n->live, n->cap_live * sizeof(peer_live));
    }
    peer_live *l = &n->live[n->nlive++];
    memset(l, 0, sizeof(*l));
    l->id = id;
    l->up = -1;
    l->tokens = (double)n->cfg.peers_rate_burst;
    l->refill_ms = bg_now_ms();
    if (name != NULL)
        bg_strlcpy(l->name, name, sizeof(l->name));
    return l;
}

unsigned bg_node_peer_ratelimit(bg_node *n, int64_t branch_id)
{
    double rate = (double)n->cfg.peers_rate_limit_rps;
    double burst = (double)n->cfg.peers_rate_burst;
    long long now = bg_now_ms();
    unsigned retry = 0;
    pthread_mutex_lock(&n->live_mu);
    peer_live *l = live_of(n, branch_id, NULL);
    l->tokens += (double)(now - l->refill_ms) * rate / 1000.0;
    if (l->tokens > burst)
        l->tokens = burst;
    l->refill_ms = now;
    if (l->tokens >= 1.0)
        l->tokens -= 1.0;
    else
        retry = (unsigned)ceil((1.0 - l->tokens) / rate);
    pthread_mutex_unlock(&n->live_mu);
    return retry;
}

/* ---- outbound ---- */

bg_err bg_node_branch_target(bg_node *n, const bg_branch *b, bg_peer_target *out)
{
    memset(out, 0, sizeof(*out));
    if (b->key_sealed_len < BG_SEAL_OVERHEAD)
        return BG_EIO;
    size_t klen = b->key_sealed_len - BG_SEAL_OVERHEAD;
    out->key = bg_secret_alloc(klen + 1);
    if (bg_sig_open(n->peer_seal_key, b->key_sealed, b->key_sealed_len, out->key) != BG_OK) {
        bg_secret_free(out->key);
        out->key = NULL;
        return BG_EIO;
    }
    out->key[klen] = '\0';
    out->branch_id = b->id;
    bg_strlcpy(out->name, b->name, sizeof(out->name));
    bg_strlcpy(out->url, b->url, sizeof(out->url));
    bg_strlcpy(out->spki_pin, b->spki_pin, sizeof(out->spki_pin));
    out->ca_pem = b->ssl_certificate ? bg_xstrdup(b->ssl_certificate) : NULL;
    return BG_OK;
}

typedef struct ping_state {
    const bg_branch *b;
    bg_err send_err;
    bg_peer_result res;
} ping_state;

typedef struct gather {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
} gather;

typedef struct gather_slot {
    gather *g;
    ping_state *ps;
} gather_slot;

static void gather_done(bg_peer_result *res, void *ud)
{
    gather_slot *slot = ud;
    slot->ps->res = *res;
    res->body = NULL;
    pthread_mutex_lock(&slot->g->mu);
    slot->g->left--;
    pthread_cond_signal(&slot->g->cv);
    pthread_mutex_unlock(&slot->g->mu);
}

static void ping_request(bg_peer_request *rq, const char *request_id)
{
    rq->method = "GET";
    bg_strlcpy(rq->path, "/api/v1/cross-branch/health", sizeof(rq->path));
    bg_strlcpy(rq->request_id, request_id ? request_id : "", sizeof(rq->request_id));
    rq->hops = 1;
}

json_t *bg_node_ping_record(bg_node *n, bg_registry *reg, const bg_branch *b, bg_err send_err,
                            bg_peer_result *r)
{
    ping_state st = {.b = b, .send_err = send_err};
    ping_state *ps = &st;
    char error[256] = "";
    bool ok = false;
    int64_t skew = 0;
    if (ps->send_err == BG_EPEER)
        snprintf(error, sizeof(error), "circuit breaker open");
    else if (ps->send_err != BG_OK)
        snprintf(error, sizeof(error), "%s", bg_err_name(ps->send_err));
    else if (r->err != BG_OK)
        snprintf(error, sizeof(error), "%s", r->error);
    else if (r->status != 200)
        snprintf(error, sizeof(error), "HTTP %ld", r->status);
    else {
        json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
        long long peer_ms;
        if (j != NULL && bg_parse_rfc3339(json_string_value(json_object_get(j, "time")), &peer_ms) == BG_OK) {
            ok = true;
            skew = peer_ms - (r->sent_ms + r->rtt_us / 2000);
            /* The peer's signing key, learnt over this authenticated call:
             * a master verifies the top's licenses and receipts with it. */
            const char *hex = json_string_value(json_object_get(j, "public_key"));
            uint8_t pk[BG_ED25519_PK_BYTES];
            if (hex != NULL && bg_hex_decode(hex, strlen(hex), pk, sizeof(pk)) == BG_OK)
                bg_registry_branch_set_public_key(reg, b->id, pk);
        } else {
            snprintf(error, sizeof(error), "malformed health response");
        }
        json_decref(j);
    }
    if (ps->send_err == BG_OK && r->err == BG_OK && r->status != 200 && r->body != NULL) {
        json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        if (code != NULL)
            snprintf(error + strlen(error), sizeof(error) - strlen(error), " %.60s", code);
        json_decref(j);
    }
    bg_registry_branch_record_ping(reg, b->id, bg_now_ms(), ok, ok ? r->rtt_us : 0, skew, error, ok);
    if (ok && bg_registry_outbox_reset(reg, b->id, bg_now_ms()) == BG_OK) {
        /* The peer answered an authenticated call: its backoff is over. */
        bg_node_outbox_wake(n);
    }
    pthread_mutex_lock(&n->live_mu);
    peer_live *l = live_of(n, b->id, b->name);
    bg_strlcpy(l->name, b->name, sizeof(l->name));
    l->up = ok;
    l->rtt_us = ok ? r->rtt_us : l->rtt_us;
    pthread_mutex_unlock(&n->live_mu);
    json_t *o = json_pack("{s:s,s:b,s:i,s:f,s:o}", "branch_name", b->name, "ok", ok, "status",
                          (int)(ps->send_err == BG_OK && r->err == BG_OK ? r->status : 0),
                          "latency_ms", (double)r->rtt_us / 1000.0, "error",
                          error[0] ? json_string(error) : json_null());
    free(r->body);
    r->body = NULL;
    return o;
}

bg_err bg_node_ping_request(bg_node *n, const bg_branch *b, const char *request_id,
                            bg_peer_request *req)
{
    memset(req, 0, sizeof(*req));
    ping_request(req, request_id);
    return bg_node_branch_target(n, b, &req->target);
}

static json_t *ping_many(bg_node *n, bg_registry *reg, const bg_branch *list, size_t cnt,
                         const char *request_id)
{
    ping_state *ps = bg_xcalloc(cnt ? cnt : 1, sizeof(*ps));
    gather_slot *slots = bg_xcalloc(cnt ? cnt : 1, sizeof(*slots));
    gather g = {.left = 0};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    for (size_t i = 0; i < cnt; i++) {
        ps[i].b = &list[i];
        slots[i].g = &g;
        slots[i].ps = &ps[i];
        bg_peer_request rq;
        if (bg_node_ping_request(n, &list[i], request_id, &rq) != BG_OK) {
            ps[i].send_err = BG_EIO;
            continue;
        }
        pthread_mutex_lock(&g.mu);
        g.left++;
        pthread_mutex_unlock(&g.mu);
        ps[i].send_err = bg_peer_send(n->peer, &rq, gather_done, &slots[i]);
        if (ps[i].send_err != BG_OK) {
            pthread_mutex_lock(&g.mu);
            g.left--;
            pthread_mutex_unlock(&g.mu);
        }
    }
    pthread_mutex_lock(&g.mu);
    while (g.left > 0)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    json_t *results = json_array();
    for (size_t i = 0; i < cnt; i++)
        json_array_append_new(results,
                              bg_node_ping_record(n, reg, ps[i].b, ps[i].send_err, &ps[i].res));
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.cv);
    free(slots);
    free(ps);
    return results;
}

json_t *bg_node_branch_ping_all(bg_node *n, bg_registry *reg, const char *request_id)
{
    bg_branch *list = NULL;
    size_t cnt = 0;
    if (bg_registry_branch_list(reg, NULL, false, 0, 0, &list, &cnt) != BG_OK)
        return NULL;
    json_t *results = ping_many(n, reg, list, cnt, request_id);
    bg_registry_branch_free(list, cnt);
    return json_pack("{s:o}", "results", results);
}

void bg_node_peer_metrics(bg_node *n, char **buf, size_t *len)
{
    static const char *const help[3] = {
        "# HELP branchgate_peer_up Whether the last ping of a peer succeeded.\n"
        "# TYPE branchgate_peer_up gauge\n",
        "# HELP branchgate_peer_rtt_seconds Round trip of the last good ping.\n"
        "# TYPE branchgate_peer_rtt_seconds gauge\n",
        "# HELP branchgate_peer_breaker_state 0 closed, 1 open, 2 half-open.\n"
        "# TYPE branchgate_peer_breaker_state gauge\n"};
    bg_textbuf b = {NULL, 0, 0};
    pthread_mutex_lock(&n->live_mu);
    for (int k = 0; k < 3; k++) {
        bg_textbuf_printf(&b, "%s", help[k]);
        for (size_t i = 0; i < n->nlive; i++) {
            const peer_live *l = &n->live[i];
            if (l->up < 0 || l->name[0] == '\0')
                continue;
            if (k == 0)
                bg_textbuf_printf(&b, "branchgate_peer_up{branch=\"%s\"} %d\n", l->name, l->up);
            else if (k == 1)
                bg_textbuf_printf(&b, "branchgate_peer_rtt_seconds{branch=\"%s\"} %.6f\n", l->name,
                                  (double)l->rtt_us / 1e6);
            else
                bg_textbuf_printf(&b, "branchgate_peer_breaker_state{branch=\"%s\"} %d\n", l->name,
                                  (int)bg_peer_breaker(n->peer, l->id));
        }
    }
    pthread_mutex_unlock(&n->live_mu);
    char *ob = NULL;
    size_t olen = 0;
    bg_node_outbox_metrics(n, &ob, &olen);
    bg_textbuf_printf(&b, "%.*s", (int)olen, ob);
    free(ob);
    bg_node_license_metrics(n, &b);
    bg_pipeline_metrics(n, &ob, &olen);
    bg_textbuf_printf(&b, "%.*s", (int)olen, ob);
    free(ob);
    *buf = b.p;
    *len = b.len;
}
