/* node/node.c — the branch runtime and its admin-token snapshot. */
#include <stdlib.h>
#include <curl/curl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node/branches.h"
#include "node/orgs.h"
#include "node_internal.h"
#include "pipeline_internal.h"
#include "proto/log.h"
#include "proto/mem.h"

void bg_node_token_hash(const bg_node *n, const char *token, size_t len,
                        uint8_t out[BG_HASH_BYTES])
{
    bg_sig_keyed_hash(n->token_key, BG_KEY_BYTES, token, len, out, BG_HASH_BYTES);
}

static bg_err load_keys(bg_node *n)
{
    char path[4200];
    n->master = bg_secret_alloc(BG_KEY_BYTES);
    n->token_key = bg_secret_alloc(BG_KEY_BYTES);
    if (!bg_path_join(path, sizeof(path), n->data_dir, BG_MASTER_KEY_FILE) ||
        bg_file_read_exact(path, n->master, BG_KEY_BYTES) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "cannot read %s/%s (32 bytes expected)", n->data_dir,
               BG_MASTER_KEY_FILE);
        return BG_EIO;
    }
    bg_sig_kdf(n->master, 1, BG_KDF_TOKENS, n->token_key);
    /* The signing key is sealed at rest with a key derived from master.key. */
    uint8_t sealed[BG_ED25519_SK_BYTES + BG_SEAL_OVERHEAD];
    uint8_t *kek = bg_secret_alloc(BG_KEY_BYTES);
    n->sign_sk = bg_secret_alloc(BG_ED25519_SK_BYTES);
    bg_sig_kdf(n->master, 1, BG_KDF_SIGNING, kek);
    bool ok = bg_path_join(path, sizeof(path), n->data_dir, BG_SIGNING_KEY_FILE) &&
              bg_file_read_exact(path, sealed, sizeof(sealed)) == BG_OK &&
              bg_sig_open(kek, sealed, sizeof(sealed), n->sign_sk) == BG_OK;
    bg_secret_free(kek);
    if (!ok) {
        bg_log(BG_LOG_ERROR, NULL, "cannot open %s/%s", n->data_dir, BG_SIGNING_KEY_FILE);
        return BG_EIO;
    }
    /* libsodium's Ed25519 secret key is seed || public key. */
    memcpy(n->sign_pk, n->sign_sk + 32, BG_ED25519_PK_BYTES);
    return BG_OK;
}

bg_err bg_node_create(const bg_config *cfg, const char *data_dir, bg_node **out)
{
    bg_node *n = bg_xcalloc(1, sizeof(*n));
    n->cfg = *cfg;
    bg_strlcpy(n->data_dir, data_dir, sizeof(n->data_dir));
    bg_strlcpy(n->url, cfg->branch_url, sizeof(n->url));
    n->started_ms = bg_now_ms();
    pthread_rwlock_init(&n->tokens_lock, NULL);
    bg_pl_init(n);
    bg_registry_opts ro = {.busy_timeout_ms = (int)cfg->db_busy_timeout_ms,
                           .synchronous_full = strcmp(cfg->db_synchronous, "full") == 0};
    char dbpath[4200];
    bg_registry *reg = NULL;
    int from = 0, to = 0;
    bg_err e = load_keys(n);
    if (e == BG_OK && !bg_path_join(dbpath, sizeof(dbpath), data_dir, BG_DB_FILE))
        e = BG_EINVAL;
    if (e == BG_OK)
        e = bg_registry_open(dbpath, &ro, &reg);
    if (e == BG_OK && (e = bg_registry_migrate(reg, &from, &to)) != BG_OK)
        bg_log(BG_LOG_ERROR, NULL, "registry migration failed: %s", bg_registry_errmsg(reg));
    if (e == BG_OK)
        e = bg_node_tokens_reload(n, reg);
    if (e == BG_OK) {
        /* Data dirs made before organisations existed get theirs now. */
        bg_org def;
        if (bg_registry_org_get_by_name(reg, BG_DEFAULT_ORG, &def) == BG_ENOTFOUND)
            e = bg_node_org_seed_default(reg, n->master, cfg->branch_name);
    }
    if (e == BG_OK)
        e = bg_node_templates_load(n);
    if (e == BG_OK) {
        bg_node_auth_init(n);
        n->auth_ready = true;
        bg_node_peers_init(n);
        n->peers_ready = true;
        e = bg_node_branches_reload(n, reg);
    }
    bg_registry_close(reg);
    if (e == BG_OK && cfg->admin_token[0] != '\0') {
        bg_node_token_hash(n, cfg->admin_token, strlen(cfg->admin_token), n->env_token_hash);
        n->has_env_token = true;
    }
    /* The fault-injection test hook, off unless a test asks for it. */
    const char *faults = getenv("BRANCHGATE_TEST_FAULTS");
    unsigned busy = 0, ioerr = 0;
    if (e == BG_OK && faults != NULL && faults[0] != '\0') {
        if (!bg_registry_faults_parse(faults, &busy, &ioerr)) {
            bg_log(BG_LOG_ERROR, NULL, "BRANCHGATE_TEST_FAULTS: expected busy_every=N,ioerr_every=M");
            e = BG_EINVAL;
        } else {
            bg_log(BG_LOG_WARN, NULL, "test faults on: 1 in %u writes busy, 1 in %u an I/O error",
                   busy, ioerr);
            bg_registry_faults_set(busy, ioerr);
        }
    }
    /* The copy of the environment token is not needed any more. */
    bg_sig_wipe(n->cfg.admin_token, sizeof(n->cfg.admin_token));
    if (e == BG_OK)
        e = bg_pool_create((int)cfg->workers_threads, (size_t)cfg->workers_queue_max, dbpath, &ro,
                           &n->pool);
    if (e != BG_OK) {
        bg_node_destroy(n);
        return e;
    }
    *out = n;
    return BG_OK;
}

void bg_node_destroy(bg_node *n)
{
    if (n == NULL)
        return;
    bg_node_pinger_stop(n);
    bg_node_outbox_stop(n);
    bg_pl_webhooks_stop(n);
    bg_pl_jobs_stop(n);
    /* Queued tasks may still wait on peer calls: the pool goes before the
     * peer client, and the outbox state after it (late answers land there). */
    bg_pool_destroy(n->pool);
    if (n->peers_ready)
        bg_node_peers_fini(n);
    bg_node_outbox_free(n);
    bg_pl_webhooks_free(n);
    bg_pl_free(n);
    bg_secret_free(n->master);
    bg_secret_free(n->token_key);
    bg_secret_free(n->sign_sk);
    json_decref(n->templates);
    if (n->auth_ready)
        bg_node_auth_fini(n);
    free(n->tokens);
    pthread_rwlock_destroy(&n->tokens_lock);
    bg_sig_wipe(n, sizeof(*n));
    free(n);
}

bg_err bg_node_start(bg_node *n)
{
    bg_peer_opts po = {.own_url = n->url,
                       .connect_timeout_ms = (long)n->cfg.peers_connect_timeout_ms,
                       .timeout_ms = (long)n->cfg.peers_timeout_ms,
                       .breaker_failures = (int)n->cfg.peers_breaker_failures,
                       .breaker_open_ms = (long)n->cfg.peers_breaker_open_ms};
    bg_err e = bg_peer_client_create(&po, &n->peer);
    if (e != BG_OK)
        return e;
    bg_node_outbox_start(n);
    bg_node_pinger_start(n);
    e = bg_pl_webhooks_start(n);
    if (e == BG_OK)
        e = bg_pl_jobs_start(n);
    return e;
}

const bg_config *bg_node_config(const bg_node *n)
{
    return &n->cfg;
}

const char *bg_node_data_dir(const bg_node *n)
{
    return n->data_dir;
}

bg_pool *bg_node_pool(bg_node *n)
{
    return n->pool;
}

const char *bg_node_url(const bg_node *n)
{
    return n->url;
}

void bg_node_set_url(bg_node *n, const char *url)
{
    bg_strlcpy(n->url, url, sizeof(n->url));
}

#define LISTEN_URL_FILE "listen.url"

#define TLS_URL_FILE "tls.url"

static bg_err publish(const bg_node *n, const char *file, const char *url)
{
    char path[4200], line[600];
    if (!bg_path_join(path, sizeof(path), n->data_dir, file))
        return BG_EIO;
    if (url == NULL || url[0] == '\0') {
        unlink(path);
        return BG_OK;
    }
    snprintf(line, sizeof(line), "%s\n", url);
    return bg_file_write_atomic(path, line, strlen(line), 0644);
}

bg_err bg_node_publish_listen_url(const bg_node *n, const char *url, const char *tls_url)
{
    /* tls.url first: a reader that waits for listen.url then finds both. */
    bg_err e = publish(n, TLS_URL_FILE, tls_url);
    return e == BG_OK ? publish(n, LISTEN_URL_FILE, url) : e;
}

void bg_node_unpublish_listen_url(const bg_node *n)
{
    publish(n, LISTEN_URL_FILE, NULL);
    publish(n, TLS_URL_FILE, NULL);
}

long long bg_node_started_ms(const bg_node *n)
{
    return n->started_ms;
}

bg_err bg_node_admin_check(bg_node *n, const char *token, size_t len, char id_out[BG_UUID_LEN + 1])
{
    uint8_t h[BG_HASH_BYTES];
    bg_node_token_hash(n, token, len, h);
    /* Compare against every entry without stopping early, so the time spent
     * does not reveal which (if any) token matched. */
    const char *match = NULL;
    pthread_rwlock_rdlock(&n->tokens_lock);
    for (size_t i = 0; i < n->ntokens; i++) {
        bool eq = bg_sig_eq(h, n->tokens[i].hash, BG_HASH_BYTES);
        match = eq ? n->tokens[i].id : match;
    }
    if (n->has_env_token) {
        bool eq = bg_sig_eq(h, n->env_token_hash, BG_HASH_BYTES);
        match = eq ? "env" : match;
    }
    if (match != NULL)
        bg_strlcpy(id_out, match, BG_UUID_LEN + 1);
    pthread_rwlock_unlock(&n->tokens_lock);
    return match != NULL ? BG_OK : BG_EFORBIDDEN;
}

bg_err bg_node_tokens_reload(bg_node *n, bg_registry *reg)
{
    bg_admin_token *list = NULL;
    size_t cnt = 0;
    bg_err e = bg_registry_token_list(reg, false, &list, &cnt);
    if (e != BG_OK)
        return e;
    token_entry *fresh = bg_xcalloc(cnt ? cnt : 1, sizeof(*fresh));
    for (size_t i = 0; i < cnt; i++) {
        memcpy(fresh[i].hash, list[i].hash, BG_HASH_BYTES);
        bg_strlcpy(fresh[i].id, list[i].id, sizeof(fresh[i].id));
    }
    free(list);
    pthread_rwlock_wrlock(&n->tokens_lock);
    token_entry *old = n->tokens;
    n->tokens = fresh;
    n->ntokens = cnt;
    pthread_rwlock_unlock(&n->tokens_lock);
    free(old);
    return BG_OK;
}

static bg_err audit_in_tx(bg_registry *reg, const char *actor, const char *action,
                          const char *target, const char *request_id, const char *detail)
{
    bg_audit_entry a = {.ts_ms = bg_now_ms(), .detail = (char *)detail};
    bg_strlcpy(a.actor, actor, sizeof(a.actor));
    bg_strlcpy(a.action, action, sizeof(a.action));
    bg_strlcpy(a.target, target, sizeof(a.target));
    bg_strlcpy(a.request_id, request_id ? request_id : "", sizeof(a.request_id));
    return bg_registry_audit_append(reg, &a);
}

bg_err bg_node_token_create(bg_node *n, bg_registry *reg, const char *label, const char *actor,
                            const char *request_id, char token_out[BG_TOKEN_MAX],
                            bg_admin_token *rec_out)
{
    if (label == NULL || strlen(label) > 64)
        return BG_EINVAL;
    char token[BG_TOKEN_MAX];
    bg_admin_token t = {.created_ms = bg_now_ms()};
    bg_uuid_v4(t.id);
    bg_strlcpy(t.label, label, sizeof(t.label));
    bg_sig_token_new(BG_ADMIN_TOKEN_PREFIX, token);
    bg_node_token_hash(n, token, strlen(token), t.hash);
    bg_err e = bg_registry_begin(reg);
    if (e == BG_OK)
        e = bg_registry_token_insert(reg, &t);
    if (e == BG_OK)
        e = audit_in_tx(reg, actor, "token.create", t.id, request_id, "{}");
    if (e == BG_OK)
        e = bg_registry_commit(reg);
    if (e != BG_OK) {
        bg_registry_rollback(reg);
        bg_sig_wipe(token, sizeof(token));
        return e;
    }
    bg_node_tokens_reload(n, reg);
    memcpy(token_out, token, BG_TOKEN_MAX);
    bg_sig_wipe(token, sizeof(token));
    *rec_out = t;
    return BG_OK;
}

bg_err bg_node_token_revoke(bg_node *n, bg_registry *reg, const char *id, const char *actor,
                            const char *request_id)
{
    bg_err e = bg_registry_begin(reg);
    if (e == BG_OK)
        e = bg_registry_token_revoke(reg, id, bg_now_ms());
    if (e == BG_OK)
        e = audit_in_tx(reg, actor, "token.revoke", id, request_id, "{}");
    if (e == BG_OK)
        e = bg_registry_commit(reg);
    if (e != BG_OK) {
        bg_registry_rollback(reg);
        return e;
    }
    return bg_node_tokens_reload(n, reg);
}

void bg_node_lib_versions(char *buf, size_t cap)
{
    snprintf(buf, cap, "libcurl %s\nlibavformat %s\nlibavcodec %s\nffmpeg %s\n",
             curl_version_info(CURLVERSION_NOW)->version, AV_STRINGIFY(LIBAVFORMAT_VERSION),
             AV_STRINGIFY(LIBAVCODEC_VERSION), av_version_info());
}
