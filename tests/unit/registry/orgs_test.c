/*
 * Unit tests for the organisation part of registry/registry.h
 * (registry/orgs.c): organisations (upsert by version, get, get by name,
 * paging, update), users (insert, upsert by version, per-organisation
 * scoping, listing, tombstones) and the branches an organisation is
 * shared with.
 *
 * Each test works in its own mkdtemp directory, removed in teardown. What
 * the API does not return (a NULL column, the number of rows) is read on
 * the registry's own connection, which this folder's internal header
 * exposes.
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

#include <sqlite3.h>

#include "proto/sig.h"
#include "registry/registry.h"
#include "registry/registry_internal.h"

#include "registry_fixture.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Fixed ids, so that their text order is known. */
#define ORG_A "00000000-0000-4000-8000-00000000000a"
#define ORG_B "00000000-0000-4000-8000-00000000000b"
#define ORG_C "00000000-0000-4000-8000-00000000000c"
#define ORG_MISSING "00000000-0000-4000-8000-0000000000ff"
#define USER_1 "10000000-0000-4000-8000-000000000001"
#define USER_2 "10000000-0000-4000-8000-000000000002"
#define USER_3 "10000000-0000-4000-8000-000000000003"
#define USER_4 "10000000-0000-4000-8000-000000000004"
#define USER_5 "10000000-0000-4000-8000-000000000005"

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

/* Opens and migrates f->db; fails the test on any error. */
static bg_registry *open_migrated(const fixture *f)
{
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    assert_non_null(r);
    assert_int_equal(bg_registry_migrate(r, NULL, NULL), BG_OK);
    return r;
}

/* A peer branch row (the shares reference branches). */
static int64_t add_branch(bg_registry *r, const char *name, bool active)
{
    bg_branch b;
    memset(&b, 0, sizeof(b));
    snprintf(b.name, sizeof(b.name), "%s", name);
    snprintf(b.url, sizeof(b.url), "https://%s.example.org", name);
    snprintf(b.type, sizeof(b.type), "top_branch");
    b.key_sealed_len = BG_SEAL_OVERHEAD + 16;
    memset(b.key_sealed, 0x5e, b.key_sealed_len);
    memset(b.key_hash, name[0], sizeof(b.key_hash));
    b.is_active = active;
    b.created_ms = b.updated_ms = 1000;
    assert_int_equal(bg_registry_branch_insert(r, &b), BG_OK);
    assert_true(b.id > 0);
    return b.id;
}

static bg_org make_org(const char *id, const char *name, int64_t version, long long ms)
{
    bg_org o;
    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "%s", id);
    snprintf(o.name, sizeof(o.name), "%s", name);
    snprintf(o.home_branch, sizeof(o.home_branch), "home-%s", name);
    o.version = version;
    o.created_ms = o.updated_ms = ms;
    return o;
}

static void set_webhook(bg_org *o, uint8_t fill, size_t len)
{
    memset(o->webhook_sealed, fill, len);
    o->webhook_sealed_len = len;
}

static void insert_org(bg_registry *r, const bg_org *o)
{
    bool applied = false;
    assert_int_equal(bg_registry_org_upsert(r, o, &applied), BG_OK);
    assert_true(applied);
}

static void assert_org_equal(const bg_org *got, const bg_org *want)
{
    assert_string_equal(got->id, want->id);
    assert_string_equal(got->name, want->name);
    assert_string_equal(got->parent_id, want->parent_id);
    assert_string_equal(got->home_branch, want->home_branch);
    assert_int_equal(got->version, want->version);
    assert_int_equal(got->webhook_sealed_len, want->webhook_sealed_len);
    if (want->webhook_sealed_len > 0)
        assert_memory_equal(got->webhook_sealed, want->webhook_sealed, want->webhook_sealed_len);
    assert_int_equal(got->created_ms, want->created_ms);
    assert_int_equal(got->updated_ms, want->updated_ms);
}

static bg_user make_user(const char *id, const char *org, const char *email, int64_t version)
{
    bg_user u;
    memset(&u, 0, sizeof(u));
    snprintf(u.id, sizeof(u.id), "%s", id);
    snprintf(u.organization_id, sizeof(u.organization_id), "%s", org);
    snprintf(u.email, sizeof(u.email), "%s", email);
    snprintf(u.name, sizeof(u.name), "Name of %s", email);
    snprintf(u.role, sizeof(u.role), "member");
    snprintf(u.home_branch, sizeof(u.home_branch), "home");
    snprintf(u.password_hash, sizeof(u.password_hash), "$argon2id$v=19$hash-of-%s", email);
    u.version = version;
    u.created_ms = 1000 + version;
    u.updated_ms = 2000 + version;
    return u;
}

static void assert_user_equal(const bg_user *got, const bg_user *want)
{
    assert_string_equal(got->id, want->id);
    assert_string_equal(got->organization_id, want->organization_id);
    assert_string_equal(got->email, want->email);
    assert_string_equal(got->name, want->name);
    assert_string_equal(got->role, want->role);
    assert_string_equal(got->home_branch, want->home_branch);
    assert_string_equal(got->password_hash, want->password_hash);
    assert_int_equal(got->version, want->version);
    assert_int_equal(got->deleted, want->deleted);
    assert_int_equal(got->created_ms, want->created_ms);
    assert_int_equal(got->updated_ms, want->updated_ms);
}

/* Inserts organisations A and B. */
static void two_orgs(bg_registry *r)
{
    bg_org a = make_org(ORG_A, "alpha", 1, 100);
    bg_org b = make_org(ORG_B, "beta", 1, 200);
    insert_org(r, &a);
    insert_org(r, &b);
}

/* ---- organisations ------------------------------------------------------ */

static void test_org_upsert_inserts(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org got;
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_ENOTFOUND);

    bg_org a = make_org(ORG_A, "alpha", 3, 1234);
    snprintf(a.parent_id, sizeof(a.parent_id), "%s", ORG_C);
    set_webhook(&a, 0xa1, BG_SEAL_OVERHEAD + 32);
    a.updated_ms = 5678;
    bool applied = false;
    assert_int_equal(bg_registry_org_upsert(r, &a, &applied), BG_OK);
    assert_true(applied);
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
    assert_org_equal(&got, &a);

    /* No parent and no webhook secret are stored as NULL and read back
     * empty; applied may be NULL. */
    bg_org b = make_org(ORG_B, "beta", 1, 10);
    assert_int_equal(bg_registry_org_upsert(r, &b, NULL), BG_OK);
    assert_int_equal(bg_registry_org_get(r, ORG_B, &got), BG_OK);
    assert_org_equal(&got, &b);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM organizations WHERE id = '" ORG_B "'"
                                      " AND parent_id IS NULL AND webhook_secret IS NULL"),
                     1);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM organizations"), 2);
    bg_registry_close(r);
}

static void test_org_upsert_newer_replaces(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org a = make_org(ORG_A, "alpha", 1, 1000);
    snprintf(a.parent_id, sizeof(a.parent_id), "%s", ORG_C);
    set_webhook(&a, 0x11, BG_SEAL_OVERHEAD + 24);
    insert_org(r, &a);

    /* A newer version: name, parent (to none), home, version and
     * updated_ms change; created_ms and the webhook secret do not, even
     * though the incoming row carries another secret. */
    bg_org n = make_org(ORG_A, "alpha renamed", 2, 9999);
    snprintf(n.home_branch, sizeof(n.home_branch), "moved-home");
    n.updated_ms = 2000;
    set_webhook(&n, 0x22, BG_SEAL_OVERHEAD + 8);
    bool applied = false;
    assert_int_equal(bg_registry_org_upsert(r, &n, &applied), BG_OK);
    assert_true(applied);

    bg_org want = n;
    want.created_ms = 1000;
    memcpy(want.webhook_sealed, a.webhook_sealed, sizeof(want.webhook_sealed));
    want.webhook_sealed_len = a.webhook_sealed_len;
    bg_org got;
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
    assert_org_equal(&got, &want);

    /* A still newer version without a secret does not clear the stored
     * one, and sets a parent again. */
    bg_org n3 = make_org(ORG_A, "alpha 3", 7, 1);
    snprintf(n3.parent_id, sizeof(n3.parent_id), "%s", ORG_B);
    n3.updated_ms = 3000;
    assert_int_equal(bg_registry_org_upsert(r, &n3, &applied), BG_OK);
    assert_true(applied);
    want = n3;
    want.created_ms = 1000;
    memcpy(want.webhook_sealed, a.webhook_sealed, sizeof(want.webhook_sealed));
    want.webhook_sealed_len = a.webhook_sealed_len;
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
    assert_org_equal(&got, &want);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM organizations"), 1);
    bg_registry_close(r);
}

static void test_org_upsert_equal_or_older_ignored(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org a = make_org(ORG_A, "alpha", 5, 1000);
    set_webhook(&a, 0x33, BG_SEAL_OVERHEAD + 16);
    insert_org(r, &a);

    const int64_t versions[] = {5, 4, 0, -1};
    for (size_t i = 0; i < N_ELEMS(versions); i++) {
        bg_org o = make_org(ORG_A, "stale", versions[i], 50);
        snprintf(o.parent_id, sizeof(o.parent_id), "%s", ORG_B);
        snprintf(o.home_branch, sizeof(o.home_branch), "elsewhere");
        o.updated_ms = 99999;
        set_webhook(&o, 0x44, BG_SEAL_OVERHEAD + 4);
        bool applied = true;
        assert_int_equal(bg_registry_org_upsert(r, &o, &applied), BG_OK);
        assert_false(applied);
        bg_org got;
        assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
        assert_org_equal(&got, &a);
    }
    bg_registry_close(r);
}

static void test_org_get_by_name(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org got;
    assert_int_equal(bg_registry_org_get_by_name(r, "alpha", &got), BG_ENOTFOUND);

    bg_org b = make_org(ORG_B, "beta", 1, 200);
    bg_org a = make_org(ORG_A, "alpha", 1, 100);
    insert_org(r, &b);
    insert_org(r, &a);
    assert_int_equal(bg_registry_org_get_by_name(r, "alpha", &got), BG_OK);
    assert_org_equal(&got, &a);
    assert_int_equal(bg_registry_org_get_by_name(r, "beta", &got), BG_OK);
    assert_org_equal(&got, &b);
    assert_int_equal(bg_registry_org_get_by_name(r, "gamma", &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_org_get_by_name(r, "ALPHA", &got), BG_ENOTFOUND);
    /* By id, the name is not a key. */
    assert_int_equal(bg_registry_org_get(r, "alpha", &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_org_get(r, ORG_MISSING, &got), BG_ENOTFOUND);

    /* Names are not unique: the oldest organisation of that name wins. */
    bg_org c = make_org(ORG_C, "beta", 1, 150);
    insert_org(r, &c);
    assert_int_equal(bg_registry_org_get_by_name(r, "beta", &got), BG_OK);
    assert_org_equal(&got, &c);
    bg_registry_close(r);
}

static void test_org_list_paging(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_org_list(r, NULL, 10, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);

    /* Inserted out of order, listed in id order. */
    static const char *const ids[] = {
        "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
    };
    const size_t order[] = {3, 0, 4, 2, 1};
    for (size_t i = 0; i < N_ELEMS(order); i++) {
        char name[32];
        snprintf(name, sizeof(name), "org%zu", order[i]);
        bg_org o = make_org(ids[order[i]], name, 1, 100 + (long long)i);
        insert_org(r, &o);
    }

    assert_int_equal(bg_registry_org_list(r, NULL, 100, &list, &n), BG_OK);
    assert_int_equal(n, N_ELEMS(ids));
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "org%zu", i);
        assert_string_equal(list[i].id, ids[i]);
        assert_string_equal(list[i].name, name);
        assert_int_equal(list[i].version, 1);
    }
    free(list);

    /* Pages of 2, each after the last id seen: 2 + 2 + 1, then empty. */
    const size_t want_sizes[] = {2, 2, 1, 0};
    char after[BG_UUID_LEN + 1] = "";
    size_t seen = 0;
    for (size_t p = 0; p < N_ELEMS(want_sizes); p++) {
        assert_int_equal(bg_registry_org_list(r, after, 2, &list, &n), BG_OK);
        assert_int_equal(n, want_sizes[p]);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(list[i].id, ids[seen++]);
        if (n > 0)
            snprintf(after, sizeof(after), "%s", list[n - 1].id);
        free(list);
    }
    assert_int_equal(seen, N_ELEMS(ids));

    /* after is exclusive; "" is the start. */
    assert_int_equal(bg_registry_org_list(r, ids[1], 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, ids[2]);
    free(list);
    assert_int_equal(bg_registry_org_list(r, "", 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, ids[0]);
    free(list);
    /* A limit exactly the number of organisations. */
    assert_int_equal(bg_registry_org_list(r, NULL, N_ELEMS(ids), &list, &n), BG_OK);
    assert_int_equal(n, N_ELEMS(ids));
    free(list);
    bg_registry_close(r);
}

static void test_org_update(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_org a = make_org(ORG_A, "alpha", 1, 1000);
    insert_org(r, &a);

    /* Unlike an upsert, an update replaces the webhook secret, and does not
     * look at the version. */
    bg_org u = a;
    snprintf(u.name, sizeof(u.name), "alpha two");
    snprintf(u.parent_id, sizeof(u.parent_id), "%s", ORG_B);
    snprintf(u.home_branch, sizeof(u.home_branch), "new-home");
    u.version = 2;
    set_webhook(&u, 0x77, BG_SEAL_OVERHEAD + 32);
    u.updated_ms = 2000;
    assert_int_equal(bg_registry_org_update(r, &u), BG_OK);
    bg_org got;
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
    assert_org_equal(&got, &u);

    /* Clearing the secret and the parent. */
    u.webhook_sealed_len = 0;
    u.parent_id[0] = '\0';
    u.updated_ms = 3000;
    assert_int_equal(bg_registry_org_update(r, &u), BG_OK);
    assert_int_equal(bg_registry_org_get(r, ORG_A, &got), BG_OK);
    assert_org_equal(&got, &u);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM organizations WHERE"
                                      " webhook_secret IS NULL AND parent_id IS NULL"),
                     1);

    /* A missing id: not found, and no row is created. */
    bg_org m = make_org(ORG_MISSING, "ghost", 1, 1);
    assert_int_equal(bg_registry_org_update(r, &m), BG_ENOTFOUND);
    assert_int_equal(bg_registry_org_get(r, ORG_MISSING, &got), BG_ENOTFOUND);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM organizations"), 1);
    bg_registry_close(r);
}

/* ---- users ---------------------------------------------------------------- */

static void test_user_insert_get(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 1);
    snprintf(u.role, sizeof(u.role), "owner");
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &u);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, true, &got), BG_OK);
    assert_user_equal(&got, &u);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got), BG_OK);
    assert_user_equal(&got, &u);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, true, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "bob@example.org", &got),
                     BG_ENOTFOUND);

    /* A user without a password hash (not home here) reads back "". */
    bg_user v = make_user(USER_2, ORG_A, "bob@example.org", 1);
    v.password_hash[0] = '\0';
    assert_int_equal(bg_registry_user_insert(r, &v), BG_OK);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, false, &got), BG_OK);
    assert_user_equal(&got, &v);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users WHERE id = '" USER_2 "'"
                                      " AND password_hash IS NULL"),
                     1);
    bg_registry_close(r);
}

static void test_user_insert_conflicts(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    /* The same email in the same organisation, under another id. */
    bg_user dup_email = make_user(USER_2, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &dup_email), BG_ECONFLICT);
    /* The same id with another email. */
    bg_user dup_id = make_user(USER_1, ORG_A, "other@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &dup_id), BG_ECONFLICT);
    /* An organisation that does not exist (foreign key). */
    bg_user orphan = make_user(USER_3, ORG_MISSING, "x@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &orphan), BG_ECONFLICT);
    /* A role outside the allowed set. */
    bg_user bad_role = make_user(USER_4, ORG_A, "y@example.org", 1);
    snprintf(bad_role.role, sizeof(bad_role.role), "god");
    assert_int_equal(bg_registry_user_insert(r, &bad_role), BG_ECONFLICT);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users"), 1);

    /* The same email in another organisation is a different user. */
    bg_user other_org = make_user(USER_2, ORG_B, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &other_org), BG_OK);
    bg_user got;
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got), BG_OK);
    assert_string_equal(got.id, USER_1);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_B, "ann@example.org", &got), BG_OK);
    assert_string_equal(got.id, USER_2);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users"), 2);
    bg_registry_close(r);
}

static void test_user_upsert_by_version(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);

    /* A new user is inserted, hash included. */
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 2);
    bool applied = false;
    assert_int_equal(bg_registry_user_upsert(r, &u, &applied), BG_OK);
    assert_true(applied);
    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &u);

    /* A newer version replaces the synced fields but keeps the stored
     * password hash (and created_ms). */
    bg_user n = make_user(USER_1, ORG_A, "ann.new@example.org", 3);
    snprintf(n.name, sizeof(n.name), "Ann New");
    snprintf(n.role, sizeof(n.role), "admin");
    snprintf(n.home_branch, sizeof(n.home_branch), "elsewhere");
    snprintf(n.password_hash, sizeof(n.password_hash), "$argon2id$v=19$other");
    assert_int_equal(bg_registry_user_upsert(r, &n, &applied), BG_OK);
    assert_true(applied);
    bg_user want = n;
    snprintf(want.password_hash, sizeof(want.password_hash), "%s", u.password_hash);
    want.created_ms = u.created_ms;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &want);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got),
                     BG_ENOTFOUND);

    /* An empty hash in a newer version does not clear it either. */
    bg_user e = n;
    e.version = 4;
    e.password_hash[0] = '\0';
    e.updated_ms = 7777;
    assert_int_equal(bg_registry_user_upsert(r, &e, &applied), BG_OK);
    assert_true(applied);
    want.version = 4;
    want.updated_ms = 7777;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &want);

    /* Equal and older versions change nothing. */
    const int64_t stale[] = {4, 3, 1};
    for (size_t i = 0; i < N_ELEMS(stale); i++) {
        bg_user s = make_user(USER_1, ORG_A, "stale@example.org", stale[i]);
        snprintf(s.role, sizeof(s.role), "viewer");
        s.deleted = true;
        applied = true;
        assert_int_equal(bg_registry_user_upsert(r, &s, &applied), BG_OK);
        assert_false(applied);
        assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
        assert_user_equal(&got, &want);
    }
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users"), 1);
    bg_registry_close(r);
}

static void test_user_upsert_never_moves_org(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    /* The same user id, claimed by organisation B with a much newer
     * version: not applied, the row stays in A unchanged. */
    bg_user m = make_user(USER_1, ORG_B, "mallory@example.org", 100);
    snprintf(m.role, sizeof(m.role), "owner");
    bool applied = true;
    assert_int_equal(bg_registry_user_upsert(r, &m, &applied), BG_OK);
    assert_false(applied);

    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &u);
    assert_int_equal(bg_registry_user_get(r, ORG_B, USER_1, true, &got), BG_ENOTFOUND);
    bg_user *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_user_list(r, ORG_B, NULL, 0, true, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users"), 1);
    bg_registry_close(r);
}

static void test_user_upsert_email_conflict(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    /* Another user with that email in the same organisation. */
    bg_user v = make_user(USER_2, ORG_A, "ann@example.org", 1);
    bool applied = true;
    assert_int_equal(bg_registry_user_upsert(r, &v, &applied), BG_ECONFLICT);
    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, true, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got), BG_OK);
    assert_user_equal(&got, &u);

    /* Nor may an existing user take it with a newer version. */
    bg_user w = make_user(USER_3, ORG_A, "walt@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &w), BG_OK);
    bg_user w2 = make_user(USER_3, ORG_A, "ann@example.org", 2);
    assert_int_equal(bg_registry_user_upsert(r, &w2, &applied), BG_ECONFLICT);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_3, false, &got), BG_OK);
    assert_user_equal(&got, &w);
    bg_registry_close(r);
}

static void test_user_upsert_tombstone(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    /* A synced tombstone (as the home branch sends it: the address
     * released) with a newer version deletes the user here too. */
    bg_user t = make_user(USER_1, ORG_A, "deleted+" USER_1, 2);
    t.deleted = true;
    t.password_hash[0] = '\0';
    bool applied = false;
    assert_int_equal(bg_registry_user_upsert(r, &t, &applied), BG_OK);
    assert_true(applied);
    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, true, &got), BG_OK);
    assert_true(got.deleted);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.email, "deleted+" USER_1);
    bg_user *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_user_list(r, ORG_A, NULL, 0, false, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);

    /* An older live copy arriving late does not bring it back. */
    applied = true;
    assert_int_equal(bg_registry_user_upsert(r, &u, &applied), BG_OK);
    assert_false(applied);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_ENOTFOUND);

    /* A synced user may be created already deleted. */
    bg_user d = make_user(USER_2, ORG_A, "deleted+" USER_2, 5);
    d.deleted = true;
    assert_int_equal(bg_registry_user_upsert(r, &d, &applied), BG_OK);
    assert_true(applied);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, false, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, true, &got), BG_OK);
    assert_user_equal(&got, &d);

    /* The address is free for a new user. */
    bg_user v = make_user(USER_3, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &v), BG_OK);
    bg_registry_close(r);
}

static void test_user_get_scoped_by_org(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user a = make_user(USER_1, ORG_A, "ann@example.org", 1);
    bg_user b = make_user(USER_2, ORG_B, "bob@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &a), BG_OK);
    assert_int_equal(bg_registry_user_insert(r, &b), BG_OK);

    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_B, USER_1, false, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_B, USER_1, true, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, true, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_MISSING, USER_1, true, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_B, "ann@example.org", &got),
                     BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "bob@example.org", &got),
                     BG_ENOTFOUND);
    /* A tombstone in another organisation is not reachable either. */
    assert_int_equal(bg_registry_user_tombstone(r, ORG_B, USER_1, 2, 5000), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_OK);
    assert_user_equal(&got, &a);
    assert_int_equal(bg_registry_user_get(r, ORG_B, USER_2, false, &got), BG_OK);
    assert_user_equal(&got, &b);
    bg_registry_close(r);
}

static void test_user_list(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    /* A: users 1, 2 (tombstoned), 3, 5; B: user 4. Inserted out of order. */
    const char *a_ids[] = {USER_5, USER_1, USER_3, USER_2};
    for (size_t i = 0; i < N_ELEMS(a_ids); i++) {
        char email[64];
        snprintf(email, sizeof(email), "a%zu@example.org", i);
        bg_user u = make_user(a_ids[i], ORG_A, email, 1);
        assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);
    }
    bg_user b = make_user(USER_4, ORG_B, "b@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &b), BG_OK);
    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, USER_2, 2, 5000), BG_OK);

    bg_user *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_user_list(r, ORG_A, NULL, 0, false, &list, &n), BG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].id, USER_1);
    assert_string_equal(list[1].id, USER_3);
    assert_string_equal(list[2].id, USER_5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].organization_id, ORG_A);
        assert_false(list[i].deleted);
    }
    free(list);

    assert_int_equal(bg_registry_user_list(r, ORG_A, NULL, 0, true, &list, &n), BG_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].id, USER_1);
    assert_string_equal(list[1].id, USER_2);
    assert_true(list[1].deleted);
    assert_string_equal(list[2].id, USER_3);
    assert_string_equal(list[3].id, USER_5);
    free(list);

    /* Paging: after is exclusive, limit bounds the page. */
    assert_int_equal(bg_registry_user_list(r, ORG_A, USER_1, 1, false, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, USER_3);
    free(list);
    assert_int_equal(bg_registry_user_list(r, ORG_A, USER_1, 2, true, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, USER_2);
    assert_string_equal(list[1].id, USER_3);
    free(list);
    assert_int_equal(bg_registry_user_list(r, ORG_A, USER_3, 0, false, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, USER_5);
    free(list);
    assert_int_equal(bg_registry_user_list(r, ORG_A, USER_5, 0, true, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);

    assert_int_equal(bg_registry_user_list(r, ORG_B, "", 10, true, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, USER_4);
    free(list);
    assert_int_equal(bg_registry_user_list(r, ORG_C, NULL, 0, true, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);
    bg_registry_close(r);
}

static void test_user_tombstone(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_user u = make_user(USER_1, ORG_A, "ann@example.org", 3);
    assert_int_equal(bg_registry_user_insert(r, &u), BG_OK);

    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, USER_1, 4, 9000), BG_OK);
    bg_user got;
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, false, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got),
                     BG_ENOTFOUND);
    /* Nor under the address it now holds: lookups by email see live users. */
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "deleted+" USER_1, &got),
                     BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, true, &got), BG_OK);
    bg_user want = u;
    want.deleted = true;
    want.version = 4;
    want.updated_ms = 9000;
    want.password_hash[0] = '\0';
    snprintf(want.email, sizeof(want.email), "deleted+%s", USER_1);
    assert_user_equal(&got, &want);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users WHERE id = '" USER_1 "'"
                                      " AND password_hash IS NULL AND deleted = 1"),
                     1);

    /* The address is free again. */
    bg_user v = make_user(USER_2, ORG_A, "ann@example.org", 1);
    assert_int_equal(bg_registry_user_insert(r, &v), BG_OK);
    assert_int_equal(bg_registry_user_get_by_email(r, ORG_A, "ann@example.org", &got), BG_OK);
    assert_user_equal(&got, &v);

    /* Twice: no such live user; the tombstone is left as it was. */
    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, USER_1, 5, 9500), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_1, true, &got), BG_OK);
    assert_user_equal(&got, &want);
    /* Unknown ids. */
    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, USER_5, 1, 1), BG_ENOTFOUND);
    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, "", 1, 1), BG_ENOTFOUND);

    /* The new holder of the address can be tombstoned too: two tombstones
     * of one organisation do not collide. */
    assert_int_equal(bg_registry_user_tombstone(r, ORG_A, USER_2, 2, 9900), BG_OK);
    assert_int_equal(bg_registry_user_get(r, ORG_A, USER_2, true, &got), BG_OK);
    assert_true(got.deleted);
    char deleted_email[64];
    snprintf(deleted_email, sizeof(deleted_email), "deleted+%s", USER_2);
    assert_string_equal(got.email, deleted_email);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM users WHERE deleted = 1"), 2);
    bg_registry_close(r);
}

/* ---- shares ----------------------------------------------------------------- */

static void test_shares(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    two_orgs(r);
    bg_org c = make_org(ORG_C, "gamma", 1, 300);
    insert_org(r, &c);
    int64_t b1 = add_branch(r, "one", true);
    int64_t b2 = add_branch(r, "two", true);
    int64_t b3 = add_branch(r, "three", false);
    int64_t b4 = add_branch(r, "four", true);

    int64_t *ids = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_org_shares(r, ORG_A, &ids, &n), BG_OK);
    assert_int_equal(n, 0);
    free(ids);

    /* Added out of order, one of them twice: idempotent. */
    assert_int_equal(bg_registry_org_share_add(r, ORG_A, b2), BG_OK);
    assert_int_equal(bg_registry_org_share_add(r, ORG_A, b3), BG_OK);
    assert_int_equal(bg_registry_org_share_add(r, ORG_A, b1), BG_OK);
    assert_int_equal(bg_registry_org_share_add(r, ORG_A, b2), BG_OK);
    assert_int_equal(bg_registry_org_share_add(r, ORG_B, b1), BG_OK);
    assert_int_equal(bg_registry_org_share_add(r, ORG_C, b3), BG_OK);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM org_shares"), 5);

    /* Only active branches, in id order. */
    ids = NULL;
    assert_int_equal(bg_registry_org_shares(r, ORG_A, &ids, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], b1);
    assert_int_equal(ids[1], b2);
    free(ids);
    ids = NULL;
    assert_int_equal(bg_registry_org_shares(r, ORG_B, &ids, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], b1);
    free(ids);
    ids = NULL;
    assert_int_equal(bg_registry_org_shares(r, ORG_C, &ids, &n), BG_OK);
    assert_int_equal(n, 0);
    free(ids);

    /* The other way round: organisations shared with a branch. */
    char(*orgs)[BG_UUID_LEN + 1] = NULL;
    assert_int_equal(bg_registry_orgs_shared_with(r, b1, &orgs, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(orgs[0], ORG_A);
    assert_string_equal(orgs[1], ORG_B);
    free(orgs);
    orgs = NULL;
    assert_int_equal(bg_registry_orgs_shared_with(r, b2, &orgs, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(orgs[0], ORG_A);
    free(orgs);
    orgs = NULL;
    n = 99;
    assert_int_equal(bg_registry_orgs_shared_with(r, b4, &orgs, &n), BG_OK);
    assert_int_equal(n, 0);
    free(orgs);
    orgs = NULL;
    n = 99;
    assert_int_equal(bg_registry_orgs_shared_with(r, 9999, &orgs, &n), BG_OK);
    assert_int_equal(n, 0);
    free(orgs);

    /* Foreign keys: an unknown branch or organisation. */
    assert_int_equal(bg_registry_org_share_add(r, ORG_A, 9999), BG_ECONFLICT);
    assert_int_equal(bg_registry_org_share_add(r, ORG_MISSING, b1), BG_ECONFLICT);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM org_shares"), 5);
    bg_registry_close(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_org_upsert_inserts),
        T(test_org_upsert_newer_replaces),
        T(test_org_upsert_equal_or_older_ignored),
        T(test_org_get_by_name),
        T(test_org_list_paging),
        T(test_org_update),
        T(test_user_insert_get),
        T(test_user_insert_conflicts),
        T(test_user_upsert_by_version),
        T(test_user_upsert_never_moves_org),
        T(test_user_upsert_email_conflict),
        T(test_user_upsert_tombstone),
        T(test_user_get_scoped_by_org),
        T(test_user_list),
        T(test_user_tombstone),
        T(test_shares),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
