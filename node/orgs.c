/* node/orgs.c — organisations, users, sync and shares (worker threads). */
#include "node/orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/licenses.h"
#include "node_internal.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

#define PATH_SYNC "/api/v1/cross-branch/sync-organization"
#define PATH_SHARE "/api/v1/cross-branch/share-resource"

static const char *const roles[] = {"owner", "admin", "member", "viewer"};

static bool is_role(const char *r)
{
    for (size_t i = 0; i < 4; i++)
        if (r != NULL && strcmp(r, roles[i]) == 0)
            return true;
    return false;
}

/* Printable text without control characters, 1..max bytes. */
static bool is_text(const char *s, size_t max)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool is_email(const char *s)
{
    if (!is_text(s, 254) || strlen(s) < 3)
        return false;
    const char *at = strchr(s, '@');
    return at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
           strchr(s, ' ') == NULL;
}

static bool is_branch_name(const char *s)
{
    return s != NULL && bg_str_is_ident(s, strlen(s), 63, "-_.");
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static void rfc3339(long long ms, char out[32])
{
    bg_format_rfc3339(ms / 1000, out);
}

json_t *bg_node_org_json(const bg_org *o, const char *secret)
{
    char c[32], u[32];
    rfc3339(o->created_ms, c);
    rfc3339(o->updated_ms, u);
    json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:I,s:s,s:s}", "id", o->id, "name", o->name,
                          "parent_id", o->parent_id[0] ? json_string(o->parent_id) : json_null(),
                          "home_branch", o->home_branch, "version", (json_int_t)o->version,
                          "created_at", c, "updated_at", u);
    if (secret != NULL)
        json_object_set_new(j, "webhook_secret", secret[0] ? json_string(secret) : json_null());
    return j;
}

json_t *bg_node_user_json(const bg_user *u)
{
    char c[32], up[32];
    rfc3339(u->created_ms, c);
    rfc3339(u->updated_ms, up);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "id", u->id, "organization_id",
                     u->organization_id, "email", u->email, "name", u->name, "role", u->role,
                     "home_branch", u->home_branch, "version", (json_int_t)u->version,
                     "created_at", c, "updated_at", up);
}

/* The wire form of a user in a snapshot: never any password material. */
static json_t *user_wire(const bg_user *u)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "id", u->id, "email", u->email, "name",
                     u->name, "role", u->role, "home_branch", u->home_branch, "version",
                     (json_int_t)u->version, "deleted", u->deleted);
}

static json_t *snapshot(bg_registry *reg, const bg_org *o, const bg_user *users, size_t n)
{
    char lic_status[8] = "active";
    char *license = bg_node_license_token_of(reg, o->id, lic_status);
    char up[32];
    rfc3339(o->updated_ms, up);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, user_wire(&users[i]));
    json_t *snap = json_pack("{s:{s:s,s:s,s:o,s:s,s:I,s:s},s:o,s:o}", "organization", "id", o->id,
                             "name", o->name, "parent_id",
                             o->parent_id[0] ? json_string(o->parent_id) : json_null(), "home_branch",
                             o->home_branch, "version", (json_int_t)o->version, "updated_at", up,
                             "users", arr, "license", license ? json_string(license) : json_null());
    /* Beside the token (which cannot say it was revoked), its status. */
    if (license != NULL)
        json_object_set_new(snap, "license_status", json_string(lic_status));
    free(license);
    return snap;
}

/* Appends one outbox message (inside the caller's transaction). */
static bg_err enqueue(bg_registry *reg, int64_t branch_id, const char *kind, const char *org,
                      const char *path, json_t *payload)
{
    bg_outbox_msg m;
    memset(&m, 0, sizeof(m));
    m.branch_id = branch_id;
    bg_strlcpy(m.kind, kind, sizeof(m.kind));
    bg_strlcpy(m.organization_id, org, sizeof(m.organization_id));
    bg_strlcpy(m.path, path, sizeof(m.path));
    bg_uuid_v4(m.idempotency_key);
    m.payload = bg_json_dump(payload, NULL);
    m.created_ms = m.next_attempt_ms = bg_now_ms();
    bg_err e = bg_registry_outbox_add(reg, &m);
    free(m.payload);
    return e;
}

/* Queues org (+ the given users) to every branch it is shared with. */
static bg_err queue_change(bg_registry *reg, const bg_org *o, const bg_user *users, size_t n,
                           size_t *queued)
{
    int64_t *ids = NULL;
    size_t nids = 0;
    bg_err e = bg_registry_org_shares(reg, o->id, &ids, &nids);
    json_t *snap = e == BG_OK && nids > 0 ? snapshot(reg, o, users, n) : NULL;
    for (size_t i = 0; e == BG_OK && i < nids; i++)
        e = enqueue(reg, ids[i], "org_sync", o->id, PATH_SYNC, snap);
    json_decref(snap);
    free(ids);
    if (queued != NULL && e == BG_OK)
        *queued += nids;
    return e;
}

/* Queues a full snapshot to one branch, users in batches. */
static bg_err queue_full(bg_node *n, bg_registry *reg, const bg_org *o, int64_t branch_id,
                         size_t *queued)
{
    char after[BG_UUID_LEN + 1] = "";
    size_t batch = (size_t)n->cfg.sync_batch_users;
    for (bool first = true;; first = false) {
        bg_user *users = NULL;
        size_t cnt = 0;
        bg_err e = bg_registry_user_list(reg, o->id, after, batch, true, &users, &cnt);
        if (e != BG_OK)
            return e;
        if (cnt > 0 || first) {
            json_t *snap = snapshot(reg, o, users, cnt);
            e = enqueue(reg, branch_id, "org_sync", o->id, PATH_SYNC, snap);
            json_decref(snap);
            (*queued)++;
        }
        if (cnt > 0)
            bg_strlcpy(after, users[cnt - 1].id, sizeof(after));
        free(users);
        if (e != BG_OK || cnt < batch)
            return e;
    }
}

bg_err bg_node_audit(bg_registry *reg, const char *actor, const char *action, const char *target,
                     const char *request_id)
{
    bg_audit_entry a = {.ts_ms = bg_now_ms()};
    bg_strlcpy(a.actor, actor, sizeof(a.actor));
    bg_strlcpy(a.action, action, sizeof(a.action));
    bg_strlcpy(a.target, target, sizeof(a.target));
    bg_strlcpy(a.request_id, request_id ? request_id : "", sizeof(a.request_id));
    return bg_registry_audit_append(reg, &a);
}

/* Ends a transaction: commit on success, else rollback with a message. */
static bg_err finish(bg_node *n, bg_registry *reg, bg_err e, bg_node_err *ne)
{
    if (e == BG_OK)
        e = bg_registry_commit(reg);
    if (e != BG_OK) {
        bg_registry_rollback(reg);
        if (ne->code == NULL)
            bg_node_errf(ne, NULL, "registry: %s", bg_registry_errmsg(reg));
        return e;
    }
    bg_node_outbox_wake(n);
    return BG_OK;
}

bg_err bg_node_org_queue(bg_node *n, bg_registry *reg, const char *org)
{
    (void)n;
    bg_org o;
    bg_err e = bg_registry_org_get(reg, org, &o);
    return e == BG_OK ? queue_change(reg, &o, NULL, 0, NULL) : e;
}

/* Changes happen at the organisation's home only: anywhere else they would
 * race the home's versions (and a sync from there would be refused). */
static bg_err must_be_home(const bg_node *n, const bg_org *o, bg_node_err *e)
{
    if (strcmp(o->home_branch, n->cfg.branch_name) == 0)
        return BG_OK;
    bg_node_errf(e, "ORGANIZATION_HOMED_ELSEWHERE",
                 "the organization is homed at branch '%s'; change it there", o->home_branch);
    return BG_ECONFLICT;
}

/* ---- webhook secrets ---- */

static void webhook_key(const uint8_t *master, uint8_t key[BG_KEY_BYTES])
{
    bg_sig_kdf(master, 1, BG_KDF_WEBHOOK, key);
}

static void new_secret(const uint8_t *master, bg_org *o, char out[BG_WEBHOOK_SECRET_MAX + 1])
{
    uint8_t raw[32];
    bg_sig_random(raw, sizeof(raw));
    memcpy(out, "whsec_", 6);
    bg_b64_encode(raw, sizeof(raw), out + 6);
    bg_sig_wipe(raw, sizeof(raw));
    uint8_t *key = bg_secret_alloc(BG_KEY_BYTES);
    webhook_key(master, key);
    size_t len = strlen(out);
    bg_sig_seal(key, out, len, o->webhook_sealed);
    o->webhook_sealed_len = len + BG_SEAL_OVERHEAD;
    bg_secret_free(key);
}

bg_err bg_node_org_secret(bg_node *n, const bg_org *o, char out[BG_WEBHOOK_SECRET_MAX + 1])
{
    out[0] = '\0';
    if (o->webhook_sealed_len <= BG_SEAL_OVERHEAD)
        return BG_OK;
    uint8_t *key = bg_secret_alloc(BG_KEY_BYTES);
    webhook_key(n->master, key);
    size_t len = o->webhook_sealed_len - BG_SEAL_OVERHEAD;
    bg_err e = len <= BG_WEBHOOK_SECRET_MAX
                   ? bg_sig_open(key, o->webhook_sealed, o->webhook_sealed_len, out)
                   : BG_EIO;
    bg_secret_free(key);
    out[e == BG_OK ? len : 0] = '\0';
    return e;
}

/* ---- organisations ---- */

bg_err bg_node_org_seed_default(bg_registry *reg, const uint8_t *master, const char *branch_name)
{
    bg_org o;
    char secret[BG_WEBHOOK_SECRET_MAX + 1];
    memset(&o, 0, sizeof(o));
    bg_uuid_v4(o.id);
    bg_strlcpy(o.name, BG_DEFAULT_ORG, sizeof(o.name));
    bg_strlcpy(o.home_branch, branch_name, sizeof(o.home_branch));
    o.version = 1;
    o.created_ms = o.updated_ms = bg_now_ms();
    new_secret(master, &o, secret);
    bg_sig_wipe(secret, sizeof(secret));
    return bg_registry_org_upsert(reg, &o, NULL);
}

bg_err bg_node_org_resolve(bg_registry *reg, const char *id, bg_org *out, bg_node_err *e)
{
    bg_err err = id != NULL ? bg_registry_org_get(reg, id, out)
                            : bg_registry_org_get_by_name(reg, BG_DEFAULT_ORG, out);
    if (err == BG_ENOTFOUND)
        bg_node_errf(e, "ORGANIZATION_NOT_FOUND", "no such organization");
    return err;
}

static bg_err check_parent(bg_registry *reg, const char *parent, const char *self, bg_node_err *e)
{
    if (parent == NULL || parent[0] == '\0')
        return BG_OK;
    bg_org p;
    if (!bg_uuid_valid(parent, strlen(parent)))
        return bg_node_errf(e, "INVALID_FIELD", "parent_id must be a UUID");
    if (self != NULL && strcmp(parent, self) == 0)
        return bg_node_errf(e, "INVALID_FIELD", "an organization cannot be its own parent");
    if (bg_registry_org_get(reg, parent, &p) != BG_OK)
        return bg_node_errf(e, "PARENT_NOT_FOUND", "parent_id names no organization here");
    return BG_OK;
}

bg_err bg_node_org_create(bg_node *n, bg_registry *reg, const bg_org_input *in, const char *actor,
                          const char *request_id, bg_org *out,
                          char secret_out[BG_WEBHOOK_SECRET_MAX + 1], bg_node_err *e)
{
    if (!is_text(in->name, 200))
        return bg_node_errf(e, "INVALID_FIELD", "name must be 1-200 printable characters");
    if (in->home_branch != NULL && !is_branch_name(in->home_branch))
        return bg_node_errf(e, "INVALID_FIELD", "home_branch must be a branch name");
    bg_org o;
    memset(&o, 0, sizeof(o));
    bg_uuid_v4(o.id);
    bg_strlcpy(o.name, in->name, sizeof(o.name));
    bg_strlcpy(o.parent_id, in->parent_id ? in->parent_id : "", sizeof(o.parent_id));
    bg_strlcpy(o.home_branch, in->home_branch ? in->home_branch : n->cfg.branch_name,
               sizeof(o.home_branch));
    o.version = 1;
    o.created_ms = o.updated_ms = bg_now_ms();
    new_secret(n->master, &o, secret_out);
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK && check_parent(reg, in->parent_id, NULL, e) != BG_OK)
        err = BG_EINVAL;
    if (err == BG_OK)
        err = bg_registry_org_upsert(reg, &o, NULL);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "organization.create", o.id, request_id);
    err = finish(n, reg, err, e);
    if (err == BG_OK)
        *out = o;
    else
        bg_sig_wipe(secret_out, BG_WEBHOOK_SECRET_MAX + 1);
    return err;
}

bg_err bg_node_org_update(bg_node *n, bg_registry *reg, const char *id, const char *name,
                          const char *parent_id, const char *actor, const char *request_id,
                          bg_org *out, bg_node_err *e)
{
    if (name != NULL && !is_text(name, 200))
        return bg_node_errf(e, "INVALID_FIELD", "name must be 1-200 printable characters");
    bg_org o;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, id, &o, e);
    if (err == BG_OK)
        err = must_be_home(n, &o, e);
    if (err == BG_OK && check_parent(reg, parent_id, o.id, e) != BG_OK)
        err = BG_EINVAL;
    if (err == BG_OK) {
        if (name != NULL)
            bg_strlcpy(o.name, name, sizeof(o.name));
        if (parent_id != NULL)
            bg_strlcpy(o.parent_id, parent_id, sizeof(o.parent_id));
        o.version++;
        o.updated_ms = bg_now_ms();
        err = bg_registry_org_update(reg, &o);
    }
    if (err == BG_OK)
        err = queue_change(reg, &o, NULL, 0, NULL);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "organization.update", o.id, request_id);
    err = finish(n, reg, err, e);
    if (err == BG_OK)
        *out = o;
    return err;
}

bg_err bg_node_org_rotate_secret(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                                 const char *request_id,
                                 char secret_out[BG_WEBHOOK_SECRET_MAX + 1], bg_node_err *e)
{
    bg_org o;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, id, &o, e);
    if (err == BG_OK) {
        new_secret(n->master, &o, secret_out);
        o.updated_ms = bg_now_ms();
        err = bg_registry_org_update(reg, &o);
    }
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "organization.rotate_webhook_secret", o.id, request_id);
    return finish(n, reg, err, e);
}

/* ---- users ---- */

bg_err bg_node_user_create(bg_node *n, bg_registry *reg, const char *org,
                           const bg_user_input *in, const char *actor, const char *request_id,
                           bg_user *out, bg_node_err *e)
{
    if (!is_email(in->email))
        return bg_node_errf(e, "INVALID_EMAIL", "email must be an address like name@example.com");
    if (!is_text(in->name, 200))
        return bg_node_errf(e, "INVALID_FIELD", "name must be 1-200 printable characters");
    if (!is_role(in->role))
        return bg_node_errf(e, "INVALID_ROLE", "role must be owner, admin, member or viewer");
    size_t plen = in->password ? strlen(in->password) : 0;
    if (plen < 8 || plen > 1024)
        return bg_node_errf(e, "INVALID_PASSWORD", "password must be 8-1024 bytes");
    if (in->home_branch != NULL && !is_branch_name(in->home_branch))
        return bg_node_errf(e, "INVALID_FIELD", "home_branch must be a branch name");
    bg_user u;
    memset(&u, 0, sizeof(u));
    bg_uuid_v4(u.id);
    bg_strlcpy(u.email, in->email, sizeof(u.email));
    lower(u.email);
    bg_strlcpy(u.name, in->name, sizeof(u.name));
    bg_strlcpy(u.role, in->role, sizeof(u.role));
    bg_strlcpy(u.home_branch, in->home_branch ? in->home_branch : n->cfg.branch_name,
               sizeof(u.home_branch));
    u.version = 1;
    u.created_ms = u.updated_ms = bg_now_ms();
    /* Hash before the transaction: argon2id is slow and must not hold the
     * write lock. */
    if (bg_sig_pwhash(in->password, plen, (unsigned long long)n->cfg.auth_pwhash_opslimit,
                      (size_t)n->cfg.auth_pwhash_memlimit_kib * 1024, u.password_hash) != BG_OK) {
        bg_node_errf(e, "INTERNAL_ERROR", "cannot hash the password");
        return BG_ENOMEM;
    }
    bg_org o;
    memset(&o, 0, sizeof(o));
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, org, &o, e);
    if (err == BG_OK)
        err = must_be_home(n, &o, e);
    if (err == BG_OK)
        bg_strlcpy(u.organization_id, o.id, sizeof(u.organization_id));
    if (err == BG_OK && (err = bg_registry_user_insert(reg, &u)) == BG_ECONFLICT)
        bg_node_errf(e, "USER_EXISTS", "a user with that email exists in the organization");
    if (err == BG_OK)
        err = queue_change(reg, &o, &u, 1, NULL);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "user.create", u.id, request_id);
    err = finish(n, reg, err, e);
    if (err == BG_OK)
        *out = u;
    bg_sig_wipe(u.password_hash, sizeof(u.password_hash));
    return err;
}

bg_err bg_node_user_delete(bg_node *n, bg_registry *reg, const char *org, const char *user_id,
                           const char *actor, const char *request_id, bg_node_err *e)
{
    bg_org o;
    bg_user u;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, org, &o, e);
    if (err == BG_OK)
        err = must_be_home(n, &o, e);
    if (err == BG_OK && (err = bg_registry_user_get(reg, o.id, user_id, false, &u)) == BG_ENOTFOUND)
        bg_node_errf(e, "USER_NOT_FOUND", "no such user in the organization");
    if (err == BG_OK) {
        u.version++;
        u.updated_ms = bg_now_ms();
        err = bg_registry_user_tombstone(reg, o.id, u.id, u.version, u.updated_ms);
    }
    if (err == BG_OK) {
        snprintf(u.email, sizeof(u.email), "deleted+%s", u.id);
        u.deleted = true;
        err = queue_change(reg, &o, &u, 1, NULL);
    }
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "user.delete", user_id, request_id);
    return finish(n, reg, err, e);
}

/* ---- sync, resync, share ---- */

/* Resolves branch names (a JSON array of strings) to active branches.
 * ids receives a malloc'ed array. */
static bg_err branch_ids(bg_registry *reg, json_t *names, int64_t **ids, size_t *n,
                         bg_node_err *e)
{
    size_t cnt = json_array_size(names);
    if (!json_is_array(names) || cnt == 0 || cnt > 100)
        return bg_node_errf(e, "INVALID_FIELD", "branches must be a list of 1-100 branch names");
    int64_t *arr = bg_xcalloc(cnt, sizeof(*arr));
    for (size_t i = 0; i < cnt; i++) {
        const char *name = json_string_value(json_array_get(names, i));
        bg_branch b;
        if (!is_branch_name(name) || bg_registry_branch_get(reg, NULL, name, &b) != BG_OK ||
            !b.is_active) {
            free(arr);
            bg_node_errf(e, "BRANCH_NOT_FOUND", "no active branch named '%.63s'", name ? name : "");
            return BG_ENOTFOUND;
        }
        arr[i] = b.id;
        bg_registry_branch_clear(&b);
    }
    *ids = arr;
    *n = cnt;
    return BG_OK;
}

bg_err bg_node_org_sync(bg_node *n, bg_registry *reg, const char *org, json_t *branch_names,
                        const char *actor, const char *request_id, size_t *queued,
                        bg_node_err *e)
{
    bg_org o;
    int64_t *ids = NULL;
    size_t nids = 0;
    *queued = 0;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, org, &o, e);
    if (err == BG_OK)
        err = must_be_home(n, &o, e);
    if (err == BG_OK)
        err = branch_ids(reg, branch_names, &ids, &nids, e);
    for (size_t i = 0; err == BG_OK && i < nids; i++) {
        err = bg_registry_org_share_add(reg, o.id, ids[i]);
        if (err == BG_OK)
            err = queue_full(n, reg, &o, ids[i], queued);
    }
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "organization.sync", o.id, request_id);
    free(ids);
    return finish(n, reg, err, e);
}

bg_err bg_node_branch_resync(bg_node *n, bg_registry *reg, const bg_branch *b,
                             const char *actor, const char *request_id, size_t *queued,
                             bg_node_err *e)
{
    char(*orgs)[BG_UUID_LEN + 1] = NULL;
    size_t norgs = 0;
    *queued = 0;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_registry_orgs_shared_with(reg, b->id, &orgs, &norgs);
    for (size_t i = 0; err == BG_OK && i < norgs; i++) {
        bg_org o;
        err = bg_registry_org_get(reg, orgs[i], &o);
        if (err == BG_OK && strcmp(o.home_branch, n->cfg.branch_name) == 0)
            err = queue_full(n, reg, &o, b->id, queued);
    }
    if (err == BG_OK) {
        char target[128];
        snprintf(target, sizeof(target), "branch:%s", b->name);
        err = bg_node_audit(reg, actor, "branch.resync", target, request_id);
    }
    free(orgs);
    return finish(n, reg, err, e);
}

/* Checks a share-resource body (organization_id excepted). */
static bg_err check_resource(json_t *r, bg_node_err *e)
{
    const char *type = json_string_value(json_object_get(r, "resource_type"));
    const char *id = json_string_value(json_object_get(r, "resource_id"));
    json_t *perms = json_object_get(r, "permissions");
    json_t *payload = json_object_get(r, "payload");
    json_t *exp = json_object_get(r, "expires_at");
    long long ms;
    if (type == NULL || (strcmp(type, "template") != 0 && strcmp(type, "assembly") != 0))
        return bg_node_errf(e, "INVALID_RESOURCE_TYPE", "resource_type must be template or assembly");
    if (id == NULL || !bg_str_is_ident(id, strlen(id), 128, "-_."))
        return bg_node_errf(e, "INVALID_FIELD", "resource_id must be 1-128 of [A-Za-z0-9._-]");
    if (perms != NULL && (!json_is_array(perms) || json_array_size(perms) > 8))
        return bg_node_errf(e, "INVALID_FIELD", "permissions must be a list of strings");
    size_t i;
    json_t *p;
    json_array_foreach(perms, i, p) if (!json_is_string(p) || (strcmp(json_string_value(p), "read") != 0 &&
                                                              strcmp(json_string_value(p), "use") != 0))
        return bg_node_errf(e, "INVALID_FIELD", "permissions may hold \"read\" and \"use\"");
    if (exp != NULL && !json_is_null(exp) &&
        (!json_is_string(exp) || bg_parse_rfc3339(json_string_value(exp), &ms) != BG_OK))
        return bg_node_errf(e, "INVALID_FIELD", "expires_at must be an RFC 3339 UTC time");
    if (!json_is_object(payload))
        return bg_node_errf(e, "INVALID_FIELD", "payload must be an object");
    if (strcmp(type, "template") == 0 && !json_is_object(json_object_get(payload, "steps")))
        return bg_node_errf(e, "INVALID_TEMPLATE", "a template payload needs a steps object");
    return BG_OK;
}

static bg_err org_shared_with(bg_registry *reg, const char *org, int64_t branch_id, bool *known)
{
    int64_t *ids = NULL;
    size_t n = 0;
    bg_err e = bg_registry_org_shares(reg, org, &ids, &n);
    *known = false;
    for (size_t i = 0; e == BG_OK && i < n; i++)
        *known = *known || ids[i] == branch_id;
    free(ids);
    return e;
}

bg_err bg_node_org_share(bg_node *n, bg_registry *reg, const char *org, json_t *branch_names,
                         json_t *resource, const char *actor, const char *request_id,
                         size_t *queued, bg_node_err *e)
{
    bg_org o;
    int64_t *ids = NULL;
    size_t nids = 0;
    *queued = 0;
    if (check_resource(resource, e) != BG_OK)
        return BG_EINVAL;
    bg_err err = bg_registry_begin(reg);
    if (err == BG_OK)
        err = bg_node_org_resolve(reg, org, &o, e);
    if (err == BG_OK)
        err = must_be_home(n, &o, e);
    if (err == BG_OK)
        err = branch_ids(reg, branch_names, &ids, &nids, e);
    if (err != BG_OK)
        return finish(n, reg, err, e);
    json_t *msg = json_deep_copy(resource);
    json_object_set_new(msg, "organization_id", json_string(o.id));
    if (json_object_get(msg, "permissions") == NULL)
        json_object_set_new(msg, "permissions", json_pack("[s]", "read"));
    for (size_t i = 0; err == BG_OK && i < nids; i++) {
        /* A branch that does not hold the organisation yet gets it first:
         * messages to one branch are delivered in order, so the resource
         * can never arrive before its organisation. */
        bool known = false;
        err = org_shared_with(reg, o.id, ids[i], &known);
        if (err == BG_OK && !known && (err = bg_registry_org_share_add(reg, o.id, ids[i])) == BG_OK)
            err = queue_full(n, reg, &o, ids[i], queued);
        if (err == BG_OK)
            err = enqueue(reg, ids[i], "share_resource", o.id, PATH_SHARE, msg);
        (*queued)++;
    }
    json_decref(msg);
    if (err == BG_OK)
        err = bg_node_audit(reg, actor, "organization.share", o.id, request_id);
    free(ids);
    return finish(n, reg, err, e);
}

/* ---- receiving ---- */

typedef bg_err (*apply_fn)(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                           json_t *body, int *status, json_t **resp, bg_node_err *e);

/* Runs apply in one transaction with the idempotency record: a repeated
 * key gets the stored first answer and changes nothing. Only successful
 * answers are stored, so a delivery refused for a passing reason (the
 * organisation had not arrived yet) can succeed when retried. */
static bg_err receive(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                      const char *key, json_t *body, apply_fn apply, int *status, json_t **resp,
                      bg_node_err *e)
{
    bg_err err = bg_registry_begin(reg);
    if (err != BG_OK)
        return err;
    char *stored = NULL;
    if (key != NULL && bg_registry_idem_get(reg, peer->id, key, status, &stored) == BG_OK) {
        bg_registry_commit(reg);
        *resp = json_loads(stored, 0, NULL);
        free(stored);
        return BG_OK;
    }
    err = apply(n, reg, peer, body, status, resp, e);
    if (err == BG_OK && key != NULL) {
        char *text = bg_json_dump(*resp, NULL);
        err = bg_registry_idem_put(reg, peer->id, key, *status, text, bg_now_ms());
        free(text);
    }
    if (err == BG_OK)
        err = bg_registry_commit(reg);
    if (err != BG_OK) {
        bg_registry_rollback(reg);
        json_decref(*resp);
        *resp = NULL;
        if (e->code == NULL)
            bg_node_errf(e, NULL, "registry: %s", bg_registry_errmsg(reg));
    }
    return err;
}

/* Reads and checks the organisation object of a snapshot. */
static bg_err wire_org(json_t *j, bg_org *o, bg_node_err *e)
{
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *home = json_string_value(json_object_get(j, "home_branch"));
    json_t *parent = json_object_get(j, "parent_id");
    json_t *ver = json_object_get(j, "version");
    if (id == NULL || !bg_uuid_valid(id, strlen(id)) || !is_text(name, 200) ||
        !is_branch_name(home) || !json_is_integer(ver) || json_integer_value(ver) < 1 ||
        (parent != NULL && !json_is_null(parent) &&
         (!json_is_string(parent) || !bg_uuid_valid(json_string_value(parent), json_string_length(parent)))))
        return bg_node_errf(e, "INVALID_SNAPSHOT", "organization needs id, name, home_branch, "
                                                   "version >= 1 and an optional parent_id");
    memset(o, 0, sizeof(*o));
    bg_strlcpy(o->id, id, sizeof(o->id));
    bg_strlcpy(o->name, name, sizeof(o->name));
    bg_strlcpy(o->home_branch, home, sizeof(o->home_branch));
    bg_strlcpy(o->parent_id, json_is_string(parent) ? json_string_value(parent) : "",
               sizeof(o->parent_id));
    o->version = json_integer_value(ver);
    o->created_ms = o->updated_ms = bg_now_ms();
    return BG_OK;
}

static bg_err wire_user(json_t *j, const char *org, bg_user *u, bg_node_err *e)
{
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *email = json_string_value(json_object_get(j, "email"));
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *home = json_string_value(json_object_get(j, "home_branch"));
    json_t *ver = json_object_get(j, "version");
    json_t *del = json_object_get(j, "deleted");
    if (json_object_get(j, "password") != NULL || json_object_get(j, "password_hash") != NULL)
        return bg_node_errf(e, "PASSWORD_NOT_ACCEPTED", "snapshots never carry password material");
    bool deleted = json_is_true(del);
    if (id == NULL || !bg_uuid_valid(id, strlen(id)) || (!deleted && !is_email(email)) ||
        !is_text(email, 254) || !is_text(name, 200) || !is_role(role) || !is_branch_name(home) ||
        !json_is_integer(ver) || json_integer_value(ver) < 1 || (del != NULL && !json_is_boolean(del)))
        return bg_node_errf(e, "INVALID_SNAPSHOT", "every user needs id, email, name, role, "
                                                   "home_branch, version >= 1 and deleted");
    memset(u, 0, sizeof(*u));
    bg_strlcpy(u->id, id, sizeof(u->id));
    bg_strlcpy(u->organization_id, org, sizeof(u->organization_id));
    bg_strlcpy(u->email, email, sizeof(u->email));
    lower(u->email);
    bg_strlcpy(u->name, name, sizeof(u->name));
    bg_strlcpy(u->role, role, sizeof(u->role));
    bg_strlcpy(u->home_branch, home, sizeof(u->home_branch));
    u->version = json_integer_value(ver);
    u->deleted = deleted;
    u->created_ms = u->updated_ms = bg_now_ms();
    return BG_OK;
}

static bg_err apply_sync(bg_node *n, bg_registry *reg, const bg_peer_identity *peer, json_t *body,
                         int *status, json_t **resp, bg_node_err *e)
{
    bg_org o, cur;
    json_t *users = json_object_get(body, "users");
    if (wire_org(json_object_get(body, "organization"), &o, e) != BG_OK)
        return BG_EINVAL;
    if (users != NULL && (!json_is_array(users) || json_array_size(users) > 10000))
        return bg_node_errf(e, "INVALID_SNAPSHOT", "users must be a list of at most 10000");
    /* Only the organisation's home branch may push it, and never over an
     * organisation this branch is home to. */
    if (strcmp(o.home_branch, peer->name) != 0)
    {
        bg_node_errf(e, "NOT_HOME_BRANCH", "the calling branch is not the organization's home");
        return BG_EFORBIDDEN;
    }
    bool exists = bg_registry_org_get(reg, o.id, &cur) == BG_OK;
    if (exists && strcmp(cur.home_branch, n->cfg.branch_name) == 0)
    {
        bg_node_errf(e, "ORGANIZATION_IS_LOCAL", "this branch is the organization's home");
        return BG_ECONFLICT;
    }
    bool applied = false;
    bg_err err = bg_registry_org_upsert(reg, &o, &applied);
    int napplied = 0;
    size_t i;
    json_t *ju;
    json_array_foreach(users, i, ju) {
        bg_user u;
        bool got = false;
        if (err == BG_OK && wire_user(ju, o.id, &u, e) != BG_OK)
            return BG_EINVAL;
        if (err == BG_OK)
            err = bg_registry_user_upsert(reg, &u, &got);
        if (err == BG_ECONFLICT) {
            bg_node_errf(e, "USER_CONFLICT", "user %s: the email belongs to another user", u.id);
            return BG_ECONFLICT;
        }
        napplied += got;
    }
    bool lic_applied = false;
    json_t *lic = json_object_get(body, "license");
    const char *lic_status = json_string_value(json_object_get(body, "license_status"));
    if (lic_status == NULL)
        lic_status = "active";
    if (strcmp(lic_status, "active") != 0 && strcmp(lic_status, "revoked") != 0)
        return bg_node_errf(e, "INVALID_SNAPSHOT", "license_status must be active or revoked");
    if (err == BG_OK && json_is_string(lic))
        err = bg_node_license_receive(n, reg, o.id, json_string_value(lic), lic_status, &lic_applied);
    else if (err == BG_OK && lic != NULL && !json_is_null(lic))
        return bg_node_errf(e, "INVALID_SNAPSHOT", "license must be a license key or null");
    if (err != BG_OK)
        return err;
    bg_registry_org_get(reg, o.id, &cur);
    *status = 200;
    *resp = json_pack("{s:{s:i,s:i,s:i},s:I}", "applied", "organization", applied ? 1 : 0,
                      "users", napplied, "license", lic_applied ? 1 : 0, "version",
                      (json_int_t)cur.version);
    return BG_OK;
}

bg_err bg_node_sync_receive(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                            const char *idem_key, json_t *body, int *status, json_t **resp,
                            bg_node_err *e)
{
    return receive(n, reg, peer, idem_key, body, apply_sync, status, resp, e);
}

static bg_err apply_share(bg_node *n, bg_registry *reg, const bg_peer_identity *peer, json_t *body,
                          int *status, json_t **resp, bg_node_err *e)
{
    (void)n;
    const char *org = json_string_value(json_object_get(body, "organization_id"));
    bg_org o;
    if (check_resource(body, e) != BG_OK)
        return BG_EINVAL;
    if (org == NULL || !bg_uuid_valid(org, strlen(org)) || bg_registry_org_get(reg, org, &o) != BG_OK) {
        bg_node_errf(e, "ORGANIZATION_NOT_FOUND", "this branch does not hold that organization");
        return BG_ENOTFOUND;
    }
    bg_shared sh;
    memset(&sh, 0, sizeof(sh));
    bg_strlcpy(sh.organization_id, o.id, sizeof(sh.organization_id));
    bg_strlcpy(sh.resource_type, json_string_value(json_object_get(body, "resource_type")),
               sizeof(sh.resource_type));
    bg_strlcpy(sh.resource_id, json_string_value(json_object_get(body, "resource_id")),
               sizeof(sh.resource_id));
    bg_strlcpy(sh.from_branch, peer->name, sizeof(sh.from_branch));
    char *perms = bg_json_dump(json_object_get(body, "permissions"), NULL);
    bg_strlcpy(sh.permissions, perms ? perms : "[\"read\"]", sizeof(sh.permissions));
    free(perms);
    const char *exp = json_string_value(json_object_get(body, "expires_at"));
    if (exp != NULL)
        bg_parse_rfc3339(exp, &sh.expires_ms);
    sh.payload = bg_json_dump(json_object_get(body, "payload"), NULL);
    sh.updated_ms = bg_now_ms();
    bg_err err = bg_registry_shared_put(reg, &sh);
    free(sh.payload);
    if (err != BG_OK)
        return err;
    *status = 200;
    *resp = json_pack("{s:b,s:s,s:s,s:s}", "installed", 1, "resource_type", sh.resource_type,
                      "resource_id", sh.resource_id, "organization_id", sh.organization_id);
    return BG_OK;
}

bg_err bg_node_share_receive(bg_node *n, bg_registry *reg, const bg_peer_identity *peer,
                             const char *idem_key, json_t *body, int *status, json_t **resp,
                             bg_node_err *e)
{
    return receive(n, reg, peer, idem_key, body, apply_share, status, resp, e);
}
