/* node/datadir.c — `branchgate init`: lays out a branch's data directory. */
#include <stdlib.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_internal.h"
#include "proto/log.h"
#include "proto/mem.h"

bool bg_node_is_initialised(const char *dir)
{
    char path[4200];
    struct stat st;
    return bg_path_join(path, sizeof(path), dir, BG_DB_FILE) && stat(path, &st) == 0;
}

/* Writes the signing key pair: the secret half sealed with a key derived
 * from the master key, the public half as hex. */
static bg_err write_signing_keys(const char *dir, const uint8_t *master)
{
    uint8_t pk[BG_ED25519_PK_BYTES];
    uint8_t *sk = bg_secret_alloc(BG_ED25519_SK_BYTES);
    uint8_t *kek = bg_secret_alloc(BG_KEY_BYTES);
    uint8_t sealed[BG_ED25519_SK_BYTES + BG_SEAL_OVERHEAD];
    char hex[2 * BG_ED25519_PK_BYTES + 2];
    char path[4200];
    bg_sig_ed25519_keypair(pk, sk);
    bg_sig_kdf(master, 1, BG_KDF_SIGNING, kek);
    bg_sig_seal(kek, sk, BG_ED25519_SK_BYTES, sealed);
    bg_secret_free(sk);
    bg_secret_free(kek);
    bg_err e = BG_EIO;
    if (bg_path_join(path, sizeof(path), dir, BG_SIGNING_KEY_FILE))
        e = bg_file_write_atomic(path, sealed, sizeof(sealed), 0600);
    if (e == BG_OK) {
        bg_hex_encode(pk, sizeof(pk), hex);
        hex[2 * BG_ED25519_PK_BYTES] = '\n';
        hex[2 * BG_ED25519_PK_BYTES + 1] = '\0';
        e = bg_path_join(path, sizeof(path), dir, BG_SIGNING_PUB_FILE)
                ? bg_file_write_atomic(path, hex, strlen(hex), 0644)
                : BG_EIO;
    }
    return e;
}

/* Creates the database under a temporary name and renames it into place
 * last: the database's presence is what marks the directory initialised,
 * so an init that dies half-way can simply be run again. */
static bg_err create_database(const char *dir, const uint8_t *master, const char *token,
                              const char *branch_name)
{
    char tmp[4200], final[4200];
    if (!bg_path_join(tmp, sizeof(tmp), dir, BG_DB_FILE ".init") ||
        !bg_path_join(final, sizeof(final), dir, BG_DB_FILE))
        return BG_EIO;
    unlink(tmp);
    bg_registry *reg = NULL;
    bg_err e = bg_registry_open(tmp, NULL, &reg);
    if (e == BG_OK)
        e = bg_registry_migrate(reg, NULL, NULL);
    if (e == BG_OK) {
        uint8_t *key = bg_secret_alloc(BG_KEY_BYTES);
        bg_admin_token t = {.created_ms = bg_now_ms()};
        bg_uuid_v4(t.id);
        bg_strlcpy(t.label, "init", sizeof(t.label));
        bg_sig_kdf(master, 1, BG_KDF_TOKENS, key);
        bg_sig_keyed_hash(key, BG_KEY_BYTES, token, strlen(token), t.hash, BG_HASH_BYTES);
        bg_secret_free(key);
        bg_audit_entry a = {.ts_ms = t.created_ms};
        bg_strlcpy(a.actor, "cli", sizeof(a.actor));
        bg_strlcpy(a.action, "branch.init", sizeof(a.action));
        bg_strlcpy(a.target, t.id, sizeof(a.target));
        e = bg_registry_begin(reg);
        if (e == BG_OK)
            e = bg_registry_token_insert(reg, &t);
        if (e == BG_OK)
            e = bg_registry_audit_append(reg, &a);
        if (e == BG_OK)
            e = bg_node_org_seed_default(reg, master, branch_name);
        if (e == BG_OK)
            e = bg_registry_commit(reg);
        if (e != BG_OK)
            bg_registry_rollback(reg);
    }
    bg_registry_close(reg); /* checkpoints and removes the WAL */
    if (e == BG_OK && rename(tmp, final) != 0)
        e = BG_EIO;
    if (e != BG_OK)
        unlink(tmp);
    return e;
}

bg_err bg_node_init_datadir(const bg_init_opts *o, char token_out[BG_TOKEN_MAX], char *err,
                            size_t errcap)
{
    bg_config c;
    bg_config_err ce;
    bg_config_defaults(&c);
    if (bg_config_set(&c, "branch.name", o->name, "--name", &ce) != BG_OK ||
        bg_config_set(&c, "branch.type", o->type, "--type", &ce) != BG_OK ||
        bg_config_set(&c, "branch.url", o->url ? o->url : "", "--url", &ce) != BG_OK)
        return bg_errf(err, errcap, BG_EINVAL, "%s", ce.message);
    if (bg_node_is_initialised(o->data_dir))
        return bg_errf(err, errcap, BG_ECONFLICT, "%s is already initialised", o->data_dir);
    if (mkdir(o->data_dir, 0700) != 0 && errno != EEXIST)
        return bg_errf(err, errcap, BG_EIO, "cannot create %s", o->data_dir);

    char path[4200];
    uint8_t *master = bg_secret_alloc(BG_KEY_BYTES);
    char token[BG_TOKEN_MAX];
    bg_sig_random(master, BG_KEY_BYTES);
    bg_sig_token_new(BG_ADMIN_TOKEN_PREFIX, token);
    bg_err e = bg_path_join(path, sizeof(path), o->data_dir, BG_CONFIG_FILE)
                   ? bg_config_write_identity(&c, path)
                   : BG_EIO;
    if (e == BG_OK && bg_path_join(path, sizeof(path), o->data_dir, BG_MASTER_KEY_FILE))
        e = bg_file_write_atomic(path, master, BG_KEY_BYTES, 0600);
    if (e == BG_OK)
        e = write_signing_keys(o->data_dir, master);
    if (e == BG_OK && bg_path_join(path, sizeof(path), o->data_dir, BG_ADMIN_TOKEN_FILE)) {
        char line[BG_TOKEN_MAX + 1];
        snprintf(line, sizeof(line), "%s\n", token);
        e = bg_file_write_atomic(path, line, strlen(line), 0600);
        bg_sig_wipe(line, sizeof(line));
    }
    if (e == BG_OK)
        e = create_database(o->data_dir, master, token, c.branch_name);
    bg_secret_free(master);
    if (e != BG_OK) {
        bg_sig_wipe(token, sizeof(token));
        return bg_errf(err, errcap, e, "cannot initialise %s (write failed)", o->data_dir);
    }
    memcpy(token_out, token, BG_TOKEN_MAX);
    bg_sig_wipe(token, sizeof(token));
    return BG_OK;
}
