/*
 * Unit tests for node/datadir.c (`branchgate init`): the files a fresh data
 * directory holds, their modes and contents, how the keys relate to each
 * other, and the refusals (already initialised, bad identity, unwritable
 * place).
 *
 * The key-derivation contexts come from node_internal.h: this folder's
 * tests check that the files on disk really are what those keys produce.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/config.h"
#include "node/node.h"
#include "node/node_internal.h"
#include "proto/sig.h"
#include "registry/registry.h"

#include "../testutil.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct fixture {
    char tmp[64];  /* the mkdtemp directory, removed in teardown */
    char dir[128]; /* the data dir, created by init inside tmp */
    char token[BG_TOKEN_MAX];
} fixture;

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/bg-datadir-test-XXXXXX");
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->tmp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = rm_tree(f->tmp);
    free(f);
    return rc == 0 ? 0 : -1;
}

static bg_err init_dir(const char *dir, const char *name, const char *type, const char *url,
                       char token[BG_TOKEN_MAX], char *err, size_t errcap)
{
    bg_init_opts o = {.data_dir = dir, .name = name, .type = type, .url = url};
    return bg_node_init_datadir(&o, token, err, errcap);
}

static void path_in(const fixture *f, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", f->dir, name);
}

/* Reads a whole file into a malloc'ed buffer (NUL-terminated). */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long sz = ftell(fp);
    assert_true(sz >= 0);
    rewind(fp);
    char *buf = malloc((size_t)sz + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    buf[sz] = '\0';
    fclose(fp);
    *len = (size_t)sz;
    return buf;
}

/* mode or size -1: not checked. */
static void assert_file(const fixture *f, const char *name, int mode, long size)
{
    char path[256];
    struct stat st;
    path_in(f, name, path, sizeof(path));
    if (stat(path, &st) != 0) {
        print_error("%s is missing\n", path);
        fail();
    }
    assert_true(S_ISREG(st.st_mode));
    if (mode >= 0 && (int)(st.st_mode & 0777) != mode) {
        print_error("%s: mode %03o, want %03o\n", name, (unsigned)(st.st_mode & 0777),
                    (unsigned)mode);
        fail();
    }
    if (size >= 0)
        assert_int_equal(st.st_size, size);
}

static bool mem_contains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0 || nlen > hlen)
        return false;
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return true;
    return false;
}

static void read_master(const fixture *f, uint8_t master[BG_KEY_BYTES])
{
    char path[256];
    size_t len;
    path_in(f, BG_MASTER_KEY_FILE, path, sizeof(path));
    char *buf = slurp(path, &len);
    assert_int_equal(len, BG_KEY_BYTES);
    memcpy(master, buf, BG_KEY_BYTES);
    free(buf);
}

/* ---- a fresh directory ------------------------------------------------- */

static void test_init_creates_files(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    assert_false(bg_node_is_initialised(f->dir));
    assert_int_equal(init_dir(f->dir, "east", "master_branch", "https://east.example", f->token,
                              err, sizeof(err)),
                     BG_OK);
    assert_true(bg_node_is_initialised(f->dir));

    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_file(f, BG_MASTER_KEY_FILE, 0600, BG_KEY_BYTES);
    assert_file(f, BG_ADMIN_TOKEN_FILE, 0600, -1);
    assert_file(f, BG_SIGNING_KEY_FILE, 0600, BG_ED25519_SK_BYTES + BG_SEAL_OVERHEAD);
    assert_file(f, BG_SIGNING_PUB_FILE, 0644, 2 * BG_ED25519_PK_BYTES + 1);
    assert_file(f, BG_CONFIG_FILE, 0644, -1);
    assert_file(f, BG_DB_FILE, -1, -1);

    /* Nothing half-written is left behind. */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (strstr(de->d_name, ".tmp") != NULL || strstr(de->d_name, ".init") != NULL ||
            strstr(de->d_name, "-wal") != NULL || strstr(de->d_name, "-journal") != NULL) {
            print_error("left behind: %s\n", de->d_name);
            fail();
        }
    }
    closedir(d);
}

static void test_init_token_file(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(init_dir(f->dir, "main", "top_branch", NULL, f->token, err, sizeof(err)),
                     BG_OK);
    /* "bga_" + unpadded base64url of 32 bytes */
    assert_int_equal(strlen(f->token), strlen(BG_ADMIN_TOKEN_PREFIX) + 43);
    assert_memory_equal(f->token, BG_ADMIN_TOKEN_PREFIX, strlen(BG_ADMIN_TOKEN_PREFIX));

    char path[256], want[BG_TOKEN_MAX + 1];
    size_t len;
    path_in(f, BG_ADMIN_TOKEN_FILE, path, sizeof(path));
    char *text = slurp(path, &len);
    snprintf(want, sizeof(want), "%s\n", f->token);
    assert_string_equal(text, want);
    free(text);
}

static void test_init_identity_file(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(init_dir(f->dir, "east_1", "master_branch", "https://east.example:8443",
                              f->token, err, sizeof(err)),
                     BG_OK);
    char path[256];
    path_in(f, BG_CONFIG_FILE, path, sizeof(path));
    bg_config c;
    bg_config_err ce;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_apply_file(&c, path, &ce), BG_OK);
    assert_string_equal(c.branch_name, "east_1");
    assert_string_equal(c.branch_type, "master_branch");
    assert_string_equal(c.branch_url, "https://east.example:8443");
}

static void test_init_keys_relate(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(init_dir(f->dir, "main", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    uint8_t master[BG_KEY_BYTES], zero[BG_KEY_BYTES] = {0};
    read_master(f, master);
    assert_memory_not_equal(master, zero, BG_KEY_BYTES);

    /* signing.key opens with the key derived from master.key, and its
     * secret half signs for the public key in signing.pub. */
    char path[256];
    size_t len;
    path_in(f, BG_SIGNING_KEY_FILE, path, sizeof(path));
    char *sealed = slurp(path, &len);
    assert_int_equal(len, BG_ED25519_SK_BYTES + BG_SEAL_OVERHEAD);
    uint8_t kek[BG_KEY_BYTES], sk[BG_ED25519_SK_BYTES];
    bg_sig_kdf(master, 1, BG_KDF_SIGNING, kek);
    assert_int_equal(bg_sig_open(kek, (const uint8_t *)sealed, len, sk), BG_OK);
    /* and not with the master key itself */
    uint8_t sk2[BG_ED25519_SK_BYTES];
    assert_int_equal(bg_sig_open(master, (const uint8_t *)sealed, len, sk2), BG_EAUTH);
    free(sealed);

    path_in(f, BG_SIGNING_PUB_FILE, path, sizeof(path));
    char *hex = slurp(path, &len);
    assert_int_equal(len, 2 * BG_ED25519_PK_BYTES + 1);
    assert_int_equal(hex[len - 1], '\n');
    uint8_t pk[BG_ED25519_PK_BYTES];
    assert_int_equal(bg_hex_decode(hex, 2 * BG_ED25519_PK_BYTES, pk, sizeof(pk)), BG_OK);
    free(hex);
    const char msg[] = "branchgate datadir test";
    uint8_t sig[BG_ED25519_SIG_BYTES];
    bg_sig_ed25519_sign(sk, msg, sizeof(msg), sig);
    assert_int_equal(bg_sig_ed25519_verify(pk, msg, sizeof(msg), sig), BG_OK);
    bg_sig_wipe(sk, sizeof(sk));
    bg_sig_wipe(kek, sizeof(kek));
}

static void test_init_database(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(init_dir(f->dir, "main", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    char path[256];
    path_in(f, BG_DB_FILE, path, sizeof(path));
    bg_registry *r = NULL;
    int from = -1, to = -1;
    assert_int_equal(bg_registry_open(path, NULL, &r), BG_OK);
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, bg_registry_schema_latest()); /* already migrated */
    assert_int_equal(to, bg_registry_schema_latest());

    /* One active token, stored as the keyed hash of the printed token. */
    bg_admin_token *tokens = NULL;
    size_t nt = 0;
    assert_int_equal(bg_registry_token_list(r, true, &tokens, &nt), BG_OK);
    assert_int_equal(nt, 1);
    assert_int_equal(tokens[0].revoked_ms, 0);
    assert_string_equal(tokens[0].label, "init");
    assert_true(bg_uuid_valid(tokens[0].id, strlen(tokens[0].id)));
    uint8_t master[BG_KEY_BYTES], key[BG_KEY_BYTES], h[BG_HASH_BYTES];
    read_master(f, master);
    bg_sig_kdf(master, 1, BG_KDF_TOKENS, key);
    assert_int_equal(bg_sig_keyed_hash(key, sizeof(key), f->token, strlen(f->token), h, sizeof(h)),
                     BG_OK);
    assert_memory_equal(tokens[0].hash, h, BG_HASH_BYTES);

    /* The init is audited, naming the token. */
    bg_audit_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_audit_list(r, 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].actor, "cli");
    assert_string_equal(list[0].action, "branch.init");
    assert_string_equal(list[0].target, tokens[0].id);
    bg_registry_audit_free(list, n);
    free(tokens);
    bg_registry_close(r);
}

/* The secret exists on disk only in admin.token: no other file of the
 * directory holds its text. */
static void test_token_only_in_token_file(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(init_dir(f->dir, "main", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    const char *others[] = {BG_DB_FILE, BG_CONFIG_FILE, BG_MASTER_KEY_FILE, BG_SIGNING_KEY_FILE,
                            BG_SIGNING_PUB_FILE};
    const char *body = f->token + strlen(BG_ADMIN_TOKEN_PREFIX); /* the random part alone */
    for (size_t i = 0; i < N_ELEMS(others); i++) {
        char path[256];
        size_t len;
        path_in(f, others[i], path, sizeof(path));
        char *bytes = slurp(path, &len);
        if (mem_contains(bytes, len, body, strlen(body))) {
            print_error("the admin token appears in %s\n", others[i]);
            fail();
        }
        free(bytes);
    }
    /* and the check itself can see it where it is */
    char path[256];
    size_t len;
    path_in(f, BG_ADMIN_TOKEN_FILE, path, sizeof(path));
    char *bytes = slurp(path, &len);
    assert_true(mem_contains(bytes, len, body, strlen(body)));
    free(bytes);
}

static void test_two_inits_differ(void **state)
{
    fixture *f = *state;
    char err[256], token2[BG_TOKEN_MAX];
    assert_int_equal(init_dir(f->dir, "a", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    fixture g = *f;
    snprintf(g.dir, sizeof(g.dir), "%s/other", f->tmp);
    assert_int_equal(init_dir(g.dir, "b", "top_branch", "", token2, err, sizeof(err)), BG_OK);
    assert_string_not_equal(f->token, token2);
    uint8_t m1[BG_KEY_BYTES], m2[BG_KEY_BYTES];
    read_master(f, m1);
    read_master(&g, m2);
    assert_memory_not_equal(m1, m2, BG_KEY_BYTES);
}

/* ---- refusals ---------------------------------------------------------- */

static void test_second_init_conflicts(void **state)
{
    fixture *f = *state;
    char err[256] = "", token2[BG_TOKEN_MAX] = "untouched";
    assert_int_equal(init_dir(f->dir, "main", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    char path[256];
    size_t len1, len2;
    path_in(f, BG_MASTER_KEY_FILE, path, sizeof(path));
    char *master1 = slurp(path, &len1);

    assert_int_equal(init_dir(f->dir, "other", "master_branch", "", token2, err, sizeof(err)),
                     BG_ECONFLICT);
    assert_non_null(strstr(err, f->dir));
    assert_string_equal(token2, "untouched");
    /* Nothing was replaced. */
    char *master2 = slurp(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(master1, master2, len1);
    free(master1);
    free(master2);
    path_in(f, BG_ADMIN_TOKEN_FILE, path, sizeof(path));
    char *text = slurp(path, &len1);
    assert_non_null(strstr(text, f->token));
    free(text);
    path_in(f, BG_CONFIG_FILE, path, sizeof(path));
    bg_config c;
    bg_config_err ce;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_apply_file(&c, path, &ce), BG_OK);
    assert_string_equal(c.branch_name, "main");
}

static void test_bad_identity(void **state)
{
    fixture *f = *state;
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    static const struct {
        const char *name, *type, *url, *key;
    } fixed[] = {
        {"has space", "top_branch", "", "branch.name"},
        {"", "top_branch", "", "branch.name"},
        {"a/b", "top_branch", "", "branch.name"},
        {"main", "leaf_branch", "", "branch.type"},
        {"main", "", "", "branch.type"},
        {"main", "TOP_BRANCH", "", "branch.type"},
        {"main", "top_branch", "ftp://example.com", "branch.url"},
        {"main", "top_branch", "example.com", "branch.url"},
    };
    for (size_t i = 0; i < N_ELEMS(fixed) + 1; i++) {
        const char *name = i < N_ELEMS(fixed) ? fixed[i].name : long_name;
        const char *type = i < N_ELEMS(fixed) ? fixed[i].type : "top_branch";
        const char *url = i < N_ELEMS(fixed) ? fixed[i].url : "";
        const char *key = i < N_ELEMS(fixed) ? fixed[i].key : "branch.name";
        char err[256] = "", token[BG_TOKEN_MAX] = "untouched";
        bg_err rc = init_dir(f->dir, name, type, url, token, err, sizeof(err));
        if (rc != BG_EINVAL) {
            print_error("name '%s' type '%s' url '%s': got %d, want BG_EINVAL\n", name, type, url,
                        rc);
            fail();
        }
        assert_non_null(strstr(err, key));
        assert_string_equal(token, "untouched");
        /* refused before anything was created */
        assert_int_equal(access(f->dir, F_OK), -1);
    }
}

static void test_unwritable_place(void **state)
{
    fixture *f = *state;
    char dir[160], err[256] = "", token[BG_TOKEN_MAX] = "untouched";
    snprintf(dir, sizeof(dir), "%s/no/such/parent", f->tmp);
    assert_int_equal(init_dir(dir, "main", "top_branch", "", token, err, sizeof(err)), BG_EIO);
    assert_non_null(strstr(err, dir));
    assert_string_equal(token, "untouched");
    assert_false(bg_node_is_initialised(dir));
}

/* Init may target an existing empty directory, and may be re-run over the
 * leftovers of an init that died before the database was in place. */
static void test_existing_dir_and_leftovers(void **state)
{
    fixture *f = *state;
    char err[256];
    assert_int_equal(mkdir(f->dir, 0700), 0);
    char path[256];
    path_in(f, BG_DB_FILE ".init", path, sizeof(path));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("half-written database from a crashed init", fp);
    fclose(fp);
    path_in(f, BG_MASTER_KEY_FILE, path, sizeof(path));
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("short", fp);
    fclose(fp);
    assert_false(bg_node_is_initialised(f->dir));

    assert_int_equal(init_dir(f->dir, "main", "top_branch", "", f->token, err, sizeof(err)), BG_OK);
    assert_true(bg_node_is_initialised(f->dir));
    assert_file(f, BG_MASTER_KEY_FILE, 0600, BG_KEY_BYTES);
    path_in(f, BG_DB_FILE ".init", path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
}

/* An operator's config file already in the directory keeps its keys;
 * init only sets the identity. */
static void test_init_keeps_config_keys(void **state)
{
    fixture *f = *state;
    char err[256], path[256];
    assert_int_equal(mkdir(f->dir, 0700), 0);
    path_in(f, BG_CONFIG_FILE, path, sizeof(path));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("{\"listen\": \"0.0.0.0:7000\", \"log\": {\"level\": \"debug\"}}", fp);
    fclose(fp);

    assert_int_equal(init_dir(f->dir, "east", "master_branch", "", f->token, err, sizeof(err)),
                     BG_OK);
    bg_config c;
    bg_config_err ce;
    bg_config_defaults(&c);
    assert_int_equal(bg_config_apply_file(&c, path, &ce), BG_OK);
    assert_string_equal(c.branch_name, "east");
    assert_string_equal(c.branch_type, "master_branch");
    assert_string_equal(c.listen, "0.0.0.0:7000");
    assert_string_equal(c.log_level, "debug");
    assert_file(f, BG_CONFIG_FILE, 0644, -1);
}

/* A config file init cannot read is not overwritten, and the directory
 * is not marked initialised. */
static void test_init_refuses_broken_config(void **state)
{
    fixture *f = *state;
    char err[256] = "", path[256], token[BG_TOKEN_MAX] = "untouched";
    assert_int_equal(mkdir(f->dir, 0700), 0);
    path_in(f, BG_CONFIG_FILE, path, sizeof(path));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("{\"listen\": ", fp);
    fclose(fp);

    assert_int_equal(init_dir(f->dir, "east", "master_branch", "", token, err, sizeof(err)),
                     BG_EIO);
    assert_string_equal(token, "untouched");
    assert_false(bg_node_is_initialised(f->dir));
    size_t len;
    char *text = slurp(path, &len);
    assert_string_equal(text, "{\"listen\": ");
    free(text);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_creates_files),
        T(test_init_token_file),
        T(test_init_identity_file),
        T(test_init_keys_relate),
        T(test_init_database),
        T(test_token_only_in_token_file),
        T(test_two_inits_differ),
        T(test_second_init_conflicts),
        T(test_bad_identity),
        T(test_unwritable_place),
        T(test_existing_dir_and_leftovers),
        T(test_init_keeps_config_keys),
        T(test_init_refuses_broken_config),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
