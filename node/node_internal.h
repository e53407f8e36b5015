/*
 * node/node_internal.h — shared by node/'s .c files only.
 */
#ifndef BG_NODE_INTERNAL_H
#define BG_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "node/node.h"

#include <pthread.h>

#include "node/peer.h"

/* The snapshot the loops authenticate against: an immutable array of
 * hashes, swapped whole under a read-write lock when tokens change. */
typedef struct token_entry {
    uint8_t hash[BG_HASH_BYTES];
    char id[BG_UUID_LEN + 1];
} token_entry;

struct bg_node {
    bg_config cfg;
    char data_dir[4096];
    char url[512];
    long long started_ms;
    uint8_t *master;    /* sodium memory */
    uint8_t *token_key; /* sodium memory: keyed hash of admin tokens */
    bg_pool *pool;
    pthread_rwlock_t tokens_lock;
    token_entry *tokens;
    size_t ntokens;
    uint8_t env_token_hash[BG_HASH_BYTES];
    bool has_env_token;
    /* peers (branches.c) */
    bool peers_ready;
    uint8_t *peer_seal_key; /* sodium memory: secretbox of peer api keys */
    uint8_t *peer_hash_key; /* sodium memory: keyed hash of peer api keys */
    bg_peer_client *peer;
    pthread_rwlock_t peers_lock;
    struct peer_entry *peers; /* inbound snapshot */
    size_t npeers;
    pthread_mutex_t live_mu; /* rate buckets and live status */
    struct peer_live *live;
    size_t nlive, cap_live;
    /* signing key pair (licenses, receipts) */
    uint8_t *sign_sk; /* sodium memory */
    uint8_t sign_pk[BG_ED25519_PK_BYTES];
    uint64_t lic_counts[16];
    json_t *templates; /* bundled media templates (templates.c) */
    /* login (auth.c) */
    bool auth_ready;
    uint8_t *jwt_key; /* sodium memory */
    char dummy_hash[BG_PWHASH_MAX];
    pthread_mutex_t login_mu;
    struct login_bucket *login_buckets;
    size_t nlogin, cap_login;
    /* outbox sender (outbox.c) */
    struct outbox_state *outbox;
    /* media pipeline (events.c, jobs.c, webhooks.c) */
    struct pipeline_state *pipe;
    /* pinger (pinger.c) */
    pthread_t pinger;
    bool pinger_started;
    bool pinger_stop;
    pthread_mutex_t pinger_mu;
    pthread_cond_t pinger_cv;
};


/* KDF contexts: each derived key has its own 8-byte context. */
#define BG_KDF_TOKENS "bgtoken_"
#define BG_KDF_SIGNING "bgsignky"
#define BG_KDF_PEER_SEAL "bgpeerky"
#define BG_KDF_PEER_HASH "bgpeerhs"
#define BG_KDF_WEBHOOK "bgwhsec_"
#define BG_KDF_JWT "bgjwtkey"

#define BG_MASTER_KEY_FILE "master.key"
#define BG_SIGNING_KEY_FILE "signing.key"
#define BG_SIGNING_PUB_FILE "signing.pub"
#define BG_ADMIN_TOKEN_FILE "admin.token"

/* Joins dir and name into buf. Returns false when it does not fit. */
bool bg_path_join(char *buf, size_t cap, const char *dir, const char *name);

/* Writes len bytes to path atomically (temp file, fsync, rename) with the
 * given mode. Errors: BG_EIO. */
bg_err bg_file_write_atomic(const char *path, const void *data, size_t len, int mode);

/* Reads exactly len bytes (the file must be that long). Errors:
 * BG_ENOTFOUND, BG_EIO (wrong size or read error). */
bg_err bg_file_read_exact(const char *path, void *buf, size_t len);

/* Fills e (code and message) and returns BG_EINVAL. */
struct bg_node_err;
bg_err bg_node_errf(struct bg_node_err *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* orgs.c: the "default" organisation init creates (inside its transaction). */
bg_err bg_node_org_seed_default(bg_registry *reg, const uint8_t *master, const char *branch_name);

/* A growing text buffer for /metrics rendering (files.c). */
typedef struct bg_textbuf {
    char *p;
    size_t len, cap;
} bg_textbuf;
void bg_textbuf_printf(bg_textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* templates.c: loads and checks every .json file of cfg.templates_dir. Errors:
 * BG_EINVAL (message logged, naming the file, template and step). */
bg_err bg_node_templates_load(bg_node *n);

/* auth.c */
void bg_node_auth_init(bg_node *n);
void bg_node_auth_fini(bg_node *n);

/* licenses.c: validation counters for /metrics. */
void bg_node_license_metrics(bg_node *n, bg_textbuf *b);

/* orgs.c: queues the organisation's current state (org + license) to every
 * branch it is shared with, inside the caller's transaction. */
bg_err bg_node_org_queue(bg_node *n, bg_registry *reg, const char *org);
/* orgs.c: one audit record inside the caller's transaction. */
bg_err bg_node_audit(bg_registry *reg, const char *actor, const char *action, const char *target,
                     const char *request_id);

/* outbox.c */
void bg_node_outbox_start(bg_node *n);
void bg_node_outbox_stop(bg_node *n);
void bg_node_outbox_free(bg_node *n);
void bg_node_outbox_metrics(bg_node *n, char **buf, size_t *len);

/* branches.c: lifecycle of the peer state held in bg_node. */
void bg_node_peers_init(bg_node *n);
void bg_node_peers_fini(bg_node *n);

/* pinger.c */
void bg_node_pinger_start(bg_node *n);
void bg_node_pinger_stop(bg_node *n);

#endif
