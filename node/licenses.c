/* node/licenses.c — issuing, revoking and validating licenses. */
#include "node/licenses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/orgs.h"
#include "node_internal.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

#define PATH_VALIDATE "/api/v1/cross-branch/validate-license"

void bg_node_public_key_hex(const bg_node *n, char out[2 * BG_ED25519_PK_BYTES + 1])
{
    bg_hex_encode(n->sign_pk, BG_ED25519_PK_BYTES, out);
}

void bg_node_license_count(bg_node *n, const char *code)
{
    int c = bg_license_code_parse(code);
    if (c >= 0)
        __atomic_fetch_add(&n->lic_counts[c], 1, __ATOMIC_RELAXED);
}

static bool is_top(const bg_node *n)
{
    return strcmp(n->cfg.branch_type, "top_branch") == 0;
}

static void rfc3339(int64_t s, char out[32])
{
    bg_format_rfc3339(s, out);
}

/* The API license object of a payload (the key itself only when given). */
static json_t *license_obj(const json_t *p, const char *token, const char *status)
{
    char nbf[32], exp[32];
    rfc3339(json_integer_value(json_object_get(p, "nbf")), nbf);
    rfc3339(json_integer_value(json_object_get(p, "exp")), exp);
    json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:s,s:s,s:s}", "id", json_object_get(p, "lid"),
                          "organization_id", json_object_get(p, "org"), "tier",
                          json_object_get(p, "tier"), "domains", json_object_get(p, "domains"),
                          "features", json_object_get(p, "features"), "limits",
                          json_object_get(p, "limits"), "not_before", nbf, "expires_at", exp,
                          "status", status);
    if (token != NULL)
        json_object_set_new(o, "license_key", json_string(token));
    return o;
}

/* ---- issuing ---- */

/* Builds the signed payload from an API body; the org must exist. */
static bg_err issue_payload(bg_node *n, bg_registry *reg, json_t *b, json_t **out, bg_node_err *e)
{
    const char *org = json_string_value(json_object_get(b, "organization_id"));
    const char *tier = json_string_value(json_object_get(b, "tier"));
    const char *exp_s = json_string_value(json_object_get(b, "expires_at"));
    const char *nbf_s = json_string_value(json_object_get(b, "not_before"));
    json_t *limits = json_object_get(b, "limits");
    json_t *features = json_object_get(b, "features");
    long long exp_ms, nbf_ms = bg_now_ms();
    bg_org o;
    if (org == NULL || !bg_uuid_valid(org, strlen(org)))
        return bg_node_errf(e, "INVALID_FIELD", "organization_id must be a UUID");
    if (tier == NULL || strlen(tier) == 0 || strlen(tier) > 32)
        return bg_node_errf(e, "INVALID_FIELD", "tier must be 1-32 characters");
    if (exp_s == NULL || bg_parse_rfc3339(exp_s, &exp_ms) != BG_OK ||
        (nbf_s != NULL && bg_parse_rfc3339(nbf_s, &nbf_ms) != BG_OK) || exp_ms <= nbf_ms)
        return bg_node_errf(e, "INVALID_FIELD", "expires_at (and not_before) must be RFC 3339 UTC "
                                                "times, expires_at the later");
    /* Both limits are integers: read with json_integer_value alone, a
     * missing or non-integer one (1.5, "1", null) would become 0. */
    if (!json_is_integer(json_object_get(limits, "branches")) ||
        !json_is_integer(json_object_get(limits, "users")))
        return bg_node_errf(e, "INVALID_FIELD", "limits must be {\"branches\": integer >= 1, "
                                                "\"users\": integer >= 0}");
    json_t *limits_out = json_pack("{s:I,s:I}", "branches",
                                   (json_int_t)json_integer_value(json_object_get(limits, "branches")),
                                   "users", (json_int_t)json_integer_value(json_object_get(limits, "users")));
    /* features is optional: an empty list when absent ("o" steals the new
     * reference, "O" would leak it). */
    json_t *p = json_pack("{s:s,s:s,s:s,s:O,s:o,s:o,s:I,s:I}", "lid", "", "org", org, "tier", tier,
                          "domains", json_object_get(b, "domains"), "features",
                          features ? json_incref(features) : json_array(), "limits", limits_out,
                          "nbf", (json_int_t)(nbf_ms / 1000), "exp", (json_int_t)(exp_ms / 1000));
    char lid[BG_UUID_LEN + 1];
    bg_uuid_v4(lid);
    if (p != NULL)
        json_object_set_new(p, "lid", json_string(lid));
    if (p == NULL || !json_is_object(limits) || json_integer_value(json_object_get(limits, "branches")) < 1 ||
        json_integer_value(json_object_get(limits, "users")) < 0 || bg_license_payload_check(p) != BG_OK) {
        json_decref(p);
        return bg_node_errf(e, "INVALID_FIELD", "domains (host names or *.host patterns), features "
                                                "(strings) and limits {branches >= 1, users >= 0} "
                                                "are required");
    }
    if (bg_node_org_resolve(reg, org, &o, e) != BG_OK) {
        json_decref(p);
        return BG_ENOTFOUND;
    }
    (void)n;
    *out = p;
    return BG_OK;
}

bg_err bg_node_license_issue(bg_node *n, bg_registry *reg, json_t *body, const char *actor,
                             const char *request_id, json_t **out, bg_node_err *e)
{
    if (!is_top(n)) {
        bg_node_errf(e, "NOT_TOP_BRANCH", "only a top branch issues licenses");
        return BG_EFORBIDDEN;
    }
    json_t *p = NULL;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = issue_payload(n, reg, body, &p, e);
    bg_license_rec l;
    memset(&l, 0, sizeof(l));
    if (err == BG_OK) {
        l.token = bg_license_sign(BG_LICENSE_PREFIX, p, n->sign_sk);
        bg_strlcpy(l.id, json_string_value(json_object_get(p, "lid")), sizeof(l.id));
        bg_strlcpy(l.organization_id, json_string_value(json_object_get(p, "org")), sizeof(l.organization_id));
        bg_strlcpy(l.status, "active", sizeof(l.status));
        l.not_before = json_integer_value(json_object_get(p, "nbf"));
        l.expires_at = json_integer_value(json_object_get(p, "exp"));
        l.created_ms = l.updated_ms = bg_now_ms();
        err = bg_registry_license_put(reg, &l);
    }
    if (err == BG_OK)
        err = bg_node_org_queue(n, reg, l.organization_id);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "license.issue", l.id, request_id);
    if (err == BG_OK)
        err = bg_registry_commit(reg);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        if (e->code == NULL)
            bg_node_errf(e, NULL, "registry: %s", bg_registry_errmsg(reg));
    } else {
        *out = license_obj(p, l.token, "active");
        bg_node_outbox_wake(n);
    }
    json_decref(p);
    bg_registry_license_clear(&l);
    return err;
}

bg_err bg_node_license_get(bg_node *n, bg_registry *reg, const char *id, json_t **out,
                           bg_node_err *e)
{
    (void)n;
    bg_license_rec l;
    json_t *p = NULL;
    bg_err err = bg_registry_license_get(reg, id, &l);
    if (err == BG_ENOTFOUND)
        bg_node_errf(e, "LICENSE_NOT_FOUND", "no such license");
    if (err != BG_OK)
        return err;
    if (bg_license_peek(BG_LICENSE_PREFIX, l.token, strlen(l.token), &p) == BG_OK)
        *out = license_obj(p, l.token, l.status);
    else
        err = BG_EIO;
    json_decref(p);
    bg_registry_license_clear(&l);
    return err;
}

bg_err bg_node_license_revoke(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                              const char *request_id, json_t **out, bg_node_err *e)
{
    if (!is_top(n)) {
        bg_node_errf(e, "NOT_TOP_BRANCH", "only the top branch revokes licenses");
        return BG_EFORBIDDEN;
    }
    bg_license_rec l;
    memset(&l, 0, sizeof(l));
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK && (err = bg_registry_license_get(reg, id, &l)) == BG_ENOTFOUND)
        bg_node_errf(e, "LICENSE_NOT_FOUND", "no such license");
    if (err == BG_OK && (err = bg_registry_license_revoke(reg, id, bg_now_ms())) == BG_ENOTFOUND)
        bg_node_errf(e, "LICENSE_NOT_ACTIVE", "the license is already revoked");
    if (err == BG_OK)
        err = bg_node_org_queue(n, reg, l.organization_id);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "license.revoke", id, request_id);
    if (err == BG_OK)
        err = bg_registry_commit(reg);
    bg_registry_license_clear(&l);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        return err;
    }
    bg_node_outbox_wake(n);
    return bg_node_license_get(n, reg, id, out, e);
}

char *bg_node_license_token_of(bg_registry *reg, const char *org, char status[8])
{
    bg_license_rec l;
    if (bg_registry_license_latest(reg, org, &l) != BG_OK)
        return NULL;
    bg_strlcpy(status, l.status, 8);
    return l.token;
}

/* ---- validation ---- */

static int64_t grace_s(const bg_node *n)
{
    return n->cfg.licenses_grace_days * 86400;
}

static json_t *answer(const bg_node *n, bg_license_code code, const char *detail,
                      const json_t *payload, const char *status, const char *checked_by,
                      const char *receipt)
{
    (void)n;
    return json_pack("{s:b,s:s,s:s,s:o,s:s,s:o}", "valid", bg_license_code_ok(code), "code",
                     bg_license_code_name(code), "detail", detail, "license",
                     payload ? license_obj(payload, NULL, status ? status : "active") : json_null(),
                     "checked_by", checked_by, "receipt", receipt ? json_string(receipt) : json_null());
}

/* Signature, times and domain: what any branch can check with the top's
 * public key. Returns BG_LIC_VALID (or GRACE) when nothing is wrong yet. */
static bg_license_code check_local(const bg_node *n, const char *key, const char *domain,
                                   const uint8_t pk[BG_ED25519_PK_BYTES], json_t **payload,
                                   const char **detail)
{
    *payload = NULL;
    bg_err e = bg_license_open(BG_LICENSE_PREFIX, key, strlen(key), pk, payload);
    if (e != BG_OK || bg_license_payload_check(*payload) != BG_OK) {
        json_decref(*payload);
        *payload = NULL;
        *detail = e == BG_EAUTH ? "the signature does not verify" : "not a license key";
        return BG_LIC_INVALID_SIGNATURE;
    }
    int64_t now = bg_now_ms() / 1000;
    bg_license_code t = bg_license_check_time(json_integer_value(json_object_get(*payload, "nbf")),
                                              json_integer_value(json_object_get(*payload, "exp")),
                                              now, grace_s(n));
    if (t == BG_LIC_NOT_YET_VALID || t == BG_LIC_EXPIRED) {
        *detail = t == BG_LIC_EXPIRED ? "expired beyond the grace period" : "not valid yet";
        return t;
    }
    size_t i;
    json_t *d;
    bool match = false;
    json_array_foreach(json_object_get(*payload, "domains"), i, d) match =
        match || bg_license_domain_match(json_string_value(d), domain);
    if (!match) {
        *detail = "the domain is not covered by the license";
        return BG_LIC_DOMAIN_MISMATCH;
    }
    *detail = t == BG_LIC_GRACE ? "expired, within the grace period" : "valid";
    return t;
}

static char *sign_receipt(const bg_node *n, const json_t *payload, const char *domain,
                          bg_license_code code)
{
    json_t *r = json_pack("{s:O,s:s,s:s,s:I,s:s}", "lid", json_object_get(payload, "lid"),
                          "domain", domain, "code", bg_license_code_name(code), "checked_at",
                          (json_int_t)(bg_now_ms() / 1000), "by", n->cfg.branch_name);
    char *t = bg_license_sign(BG_RECEIPT_PREFIX, r, n->sign_sk);
    json_decref(r);
    return t;
}

json_t *bg_node_license_validate_top(bg_node *n, bg_registry *reg, const char *key,
                                     const char *domain)
{
    json_t *payload = NULL;
    const char *detail;
    bg_license_code code = check_local(n, key, domain, n->sign_pk, &payload, &detail);
    bg_license_rec rec;
    memset(&rec, 0, sizeof(rec));
    if (code == BG_LIC_INVALID_SIGNATURE) {
        json_t *a = answer(n, code, detail, NULL, NULL, n->cfg.branch_name, NULL);
        bg_node_license_count(n, bg_license_code_name(code));
        return a;
    }
    /* Precedence on the top (docs/licenses.md): signature, record,
     * revocation, then time and domain, branch count, grace. */
    bg_license_code final = code;
    const char *lid = json_string_value(json_object_get(payload, "lid"));
    if (bg_registry_license_get(reg, lid, &rec) != BG_OK) {
        final = BG_LIC_NOT_FOUND;
        detail = "no such license on the top branch";
    } else if (strcmp(rec.status, "revoked") == 0) {
        final = BG_LIC_SUSPENDED;
        detail = "the license was revoked";
    } else if (code == BG_LIC_VALID || code == BG_LIC_GRACE) {
        int64_t branches = 0;
        bg_registry_branch_count(reg, &branches);
        json_int_t max = json_integer_value(json_object_get(json_object_get(payload, "limits"), "branches"));
        if (branches + 1 > max) {
            final = BG_LIC_TOO_MANY_BRANCHES;
            detail = "more branches are registered than the license allows";
        }
    }
    char *receipt = sign_receipt(n, payload, domain, final);
    json_t *a = answer(n, final, detail, final == BG_LIC_NOT_FOUND ? NULL : payload,
                       rec.status[0] ? rec.status : "active", n->cfg.branch_name, receipt);
    free(receipt);
    bg_registry_license_clear(&rec);
    json_decref(payload);
    bg_node_license_count(n, bg_license_code_name(final));
    return a;
}

static void receipt_key(const bg_node *n, const char *key, uint8_t h[BG_HASH_BYTES])
{
    bg_node_token_hash(n, key, strlen(key), h);
}

/* A cached receipt for (key, domain) that verifies with pk, with its age. */
static json_t *cached_receipt(bg_node *n, bg_registry *reg, const char *key, const char *domain,
                              const uint8_t pk[BG_ED25519_PK_BYTES], char **text, long long *age_ms)
{
    uint8_t h[BG_HASH_BYTES];
    long long checked;
    json_t *r = NULL;
    receipt_key(n, key, h);
    if (bg_registry_receipt_get(reg, h, domain, text, &checked) != BG_OK)
        return NULL;
    if (bg_license_open(BG_RECEIPT_PREFIX, *text, strlen(*text), pk, &r) != BG_OK) {
        free(*text);
        *text = NULL;
        return NULL;
    }
    *age_ms = bg_now_ms() - checked;
    return r;
}

static void done(bg_node *n, bg_license_check *c, json_t *result)
{
    c->done = true;
    c->result = result;
    bg_node_license_count(n, json_string_value(json_object_get(result, "code")));
}

/* Prepares the question for the top (or answers UNAVAILABLE without one). */
static bg_err prepare_top_call(bg_node *n, bg_registry *reg, bg_license_check *c, bg_node_err *e)
{
    bg_branch *list = NULL;
    size_t cnt = 0;
    bg_err err = bg_registry_branch_list(reg, NULL, false, 0, 0, &list, &cnt);
    if (err != BG_OK) {
        bg_node_errf(e, NULL, "registry: %s", bg_registry_errmsg(reg));
        return err;
    }
    const bg_branch *top = NULL;
    for (size_t i = 0; i < cnt && top == NULL; i++)
        if (strcmp(list[i].type, "top_branch") == 0)
            top = &list[i];
    if (top == NULL || bg_node_branch_target(n, top, &c->top_call.target) != BG_OK) {
        done(n, c, answer(n, BG_LIC_UNAVAILABLE, "no top branch is registered here", NULL, NULL,
                          n->cfg.branch_name, NULL));
        bg_registry_branch_free(list, cnt);
        return BG_OK;
    }
    bg_registry_branch_free(list, cnt);
    c->top_call.method = "POST";
    bg_strlcpy(c->top_call.path, PATH_VALIDATE, sizeof(c->top_call.path));
    json_t *q = json_pack("{s:s,s:s}", "license_key", c->key, "domain", c->domain);
    c->top_call.body = bg_json_dump(q, &c->top_call.body_len);
    json_decref(q);
    c->top_call.hops = 1;
    bg_uuid_v4(c->top_call.idempotency_key);
    return BG_OK;
}

bg_err bg_node_license_check_start(bg_node *n, bg_registry *reg, const char *key,
                                   const char *domain, bg_license_check *c, bg_node_err *e)
{
    memset(c, 0, sizeof(*c));
    if (key == NULL || strlen(key) > BG_LICENSE_TOKEN_MAX)
        return bg_node_errf(e, "INVALID_FIELD", "license_key must be a license key");
    if (!bg_license_domain_normalize(domain, false, c->domain, sizeof(c->domain)))
        return bg_node_errf(e, "INVALID_DOMAIN", "domain must be a host name");
    c->key = bg_xstrdup(key);
    if (is_top(n)) {
        c->done = true;
        c->result = bg_node_license_validate_top(n, reg, key, c->domain);
        return BG_OK;
    }
    uint8_t pk[BG_ED25519_PK_BYTES];
    int64_t top_id = 0;
    bool have_pk = bg_registry_top_public_key(reg, pk, &top_id) == BG_OK;
    if (have_pk) {
        json_t *payload = NULL, *receipt = NULL;
        const char *detail;
        char *text = NULL;
        long long age = 0;
        bg_license_code code = check_local(n, key, c->domain, pk, &payload, &detail);
        if (code != BG_LIC_VALID && code != BG_LIC_GRACE) {
            done(n, c, answer(n, code, detail, payload, NULL, n->cfg.branch_name, NULL));
        } else if ((receipt = cached_receipt(n, reg, key, c->domain, pk, &text, &age)) != NULL &&
                   age < n->cfg.licenses_cache_ttl_s * 1000) {
            const char *rc = json_string_value(json_object_get(receipt, "code"));
            int parsed = bg_license_code_parse(rc);
            /* The receipt may predate the expiry: the local clock still
             * says when the grace period has begun. */
            if (parsed == BG_LIC_VALID && code == BG_LIC_GRACE)
                parsed = BG_LIC_GRACE;
            done(n, c, answer(n, parsed < 0 ? BG_LIC_UNAVAILABLE : (bg_license_code)parsed,
                              "answered from the top's receipt", payload, NULL,
                              json_string_value(json_object_get(receipt, "by")), text));
        }
        json_decref(receipt);
        json_decref(payload);
        free(text);
        if (c->done)
            return BG_OK;
    }
    return prepare_top_call(n, reg, c, e);
}

/* The top could not be asked: a cached receipt younger than the grace
 * period still answers (VALID_CACHED when it said yes). */
static json_t *fallback(bg_node *n, bg_registry *reg, bg_license_check *c, const char *why)
{
    uint8_t pk[BG_ED25519_PK_BYTES];
    int64_t top_id;
    char *text = NULL;
    long long age = 0;
    json_t *receipt = NULL, *payload = NULL, *out;
    if (bg_registry_top_public_key(reg, pk, &top_id) == BG_OK)
        receipt = cached_receipt(n, reg, c->key, c->domain, pk, &text, &age);
    if (receipt == NULL || age >= grace_s(n) * 1000) {
        out = answer(n, BG_LIC_UNAVAILABLE, why, NULL, NULL, n->cfg.branch_name, NULL);
    } else {
        int code = bg_license_code_parse(json_string_value(json_object_get(receipt, "code")));
        bg_license_peek(BG_LICENSE_PREFIX, c->key, strlen(c->key), &payload);
        bool ok = code >= 0 && bg_license_code_ok((bg_license_code)code);
        out = answer(n, ok ? BG_LIC_VALID_CACHED : (bg_license_code)code,
                     "the top branch is unreachable; answered from its last receipt", payload, NULL,
                     n->cfg.branch_name, text);
    }
    json_decref(receipt);
    json_decref(payload);
    free(text);
    return out;
}

void bg_node_license_check_finish(bg_node *n, bg_registry *reg, bg_license_check *c,
                                  bg_peer_result *res)
{
    json_t *top = NULL;
    if (res->err == BG_OK && res->status == 200 && res->body != NULL)
        top = json_loads(res->body, 0, NULL);
    const char *receipt = json_string_value(json_object_get(top, "receipt"));
    if (top == NULL || json_string_value(json_object_get(top, "code")) == NULL) {
        char why[300];
        snprintf(why, sizeof(why), "the top branch did not answer (%s)",
                 res->err != BG_OK ? res->error : "unexpected answer");
        json_decref(top);
        done(n, c, fallback(n, reg, c, why));
        return;
    }
    /* Keep the top's signed receipt, if it verifies, for later outages. */
    uint8_t pk[BG_ED25519_PK_BYTES];
    int64_t top_id;
    json_t *r = NULL;
    if (receipt != NULL && bg_registry_top_public_key(reg, pk, &top_id) == BG_OK &&
        bg_license_open(BG_RECEIPT_PREFIX, receipt, strlen(receipt), pk, &r) == BG_OK) {
        uint8_t h[BG_HASH_BYTES];
        receipt_key(n, c->key, h);
        bg_registry_receipt_put(reg, h, c->domain, receipt, bg_now_ms());
    }
    json_decref(r);
    done(n, c, top);
}

void bg_node_license_check_clear(bg_license_check *c)
{
    if (c == NULL)
        return;
    free(c->key);
    c->key = NULL;
    bg_peer_target_clear(&c->top_call.target);
    free(c->top_call.body);
    c->top_call.body = NULL;
    json_decref(c->result);
    c->result = NULL;
}

bg_err bg_node_license_receive(bg_node *n, bg_registry *reg, const char *org, const char *token,
                               const char *status, bool *applied)
{
    json_t *p = NULL;
    uint8_t pk[BG_ED25519_PK_BYTES];
    int64_t top_id;
    *applied = false;
    /* The top owns every license: it never takes one (or a status) from a
     * snapshot; a master keeps only licenses that verify with the top's key. */
    if (is_top(n) || bg_registry_top_public_key(reg, pk, &top_id) != BG_OK)
        return BG_OK;
    bg_err e = bg_license_open(BG_LICENSE_PREFIX, token, strlen(token), pk, &p);
    if (e != BG_OK || bg_license_payload_check(p) != BG_OK ||
        strcmp(json_string_value(json_object_get(p, "org")), org) != 0) {
        json_decref(p);
        return BG_OK; /* a license we cannot use is ignored, not fatal to the sync */
    }
    bg_license_rec l, old;
    memset(&l, 0, sizeof(l));
    bg_strlcpy(l.id, json_string_value(json_object_get(p, "lid")), sizeof(l.id));
    bg_strlcpy(l.organization_id, org, sizeof(l.organization_id));
    bg_strlcpy(l.status, status, sizeof(l.status));
    l.token = (char *)token;
    l.not_before = json_integer_value(json_object_get(p, "nbf"));
    l.expires_at = json_integer_value(json_object_get(p, "exp"));
    l.created_ms = l.updated_ms = bg_now_ms();
    json_decref(p);
    if (bg_registry_license_get(reg, l.id, &old) == BG_OK) {
        /* Known: only its status can change (a revocation). */
        bg_registry_license_clear(&old);
        return bg_registry_license_set_status(reg, l.id, status, l.updated_ms, applied);
    }
    e = bg_registry_license_put(reg, &l);
    *applied = e == BG_OK;
    return e;
}

void bg_node_license_metrics(bg_node *n, bg_textbuf *b)
{
    bg_textbuf_printf(b, "# HELP branchgate_license_validations_total License validations by answer.\n"
                         "# TYPE branchgate_license_validations_total counter\n");
    for (int i = 0; i < BG_LIC_CODE_COUNT_; i++)
        bg_textbuf_printf(b, "branchgate_license_validations_total{code=\"%s\"} %llu\n",
                          bg_license_code_name((bg_license_code)i),
                          (unsigned long long)__atomic_load_n(&n->lic_counts[i], __ATOMIC_RELAXED));
}
