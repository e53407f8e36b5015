/*
 * Unit tests for registry/outbox.c through registry/registry.h: the outbox
 * (append, one head per destination, delivery, retries and dead letters,
 * backoff reset, statistics, listing, requeue), the idempotency keys of
 * inbound peer calls and the resources shared by other branches.
 *
 * Each test works in its own mkdtemp directory, removed in teardown. The
 * outbox references peer branches, and shared resources organisations,
 * so tests create those rows first. What the API does not return (the
 * number of rows) is read on the registry's own connection, which this
 * folder's internal header exposes.
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

#define ORG_A "00000000-0000-4000-8000-00000000000a"
#define ORG_B "00000000-0000-4000-8000-00000000000b"
#define ORG_MISSING "00000000-0000-4000-8000-0000000000ff"

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

/* A peer branch row (the outbox references branches). */
static int64_t add_branch(bg_registry *r, const char *name)
{
    bg_branch b;
    memset(&b, 0, sizeof(b));
    snprintf(b.name, sizeof(b.name), "%s", name);
    snprintf(b.url, sizeof(b.url), "https://%s.example.org", name);
    snprintf(b.type, sizeof(b.type), "top_branch");
    b.key_sealed_len = BG_SEAL_OVERHEAD + 16;
    memset(b.key_sealed, 0x5e, b.key_sealed_len);
    memset(b.key_hash, name[0], sizeof(b.key_hash));
    b.is_active = true;
    b.created_ms = b.updated_ms = 1000;
    assert_int_equal(bg_registry_branch_insert(r, &b), BG_OK);
    assert_true(b.id > 0);
    return b.id;
}

static void add_org(bg_registry *r, const char *id, const char *name)
{
    bg_org o;
    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "%s", id);
    snprintf(o.name, sizeof(o.name), "%s", name);
    snprintf(o.home_branch, sizeof(o.home_branch), "home");
    o.version = 1;
    o.created_ms = o.updated_ms = 1000;
    assert_int_equal(bg_registry_org_upsert(r, &o, NULL), BG_OK);
}

/* A message whose fields all derive from seq; payload points into buf. */
static bg_outbox_msg make_msg(int64_t branch_id, int seq, char *buf, size_t cap)
{
    bg_outbox_msg m;
    memset(&m, 0, sizeof(m));
    m.branch_id = branch_id;
    snprintf(m.kind, sizeof(m.kind), "%s", seq % 2 ? "org_sync" : "share_resource");
    snprintf(m.organization_id, sizeof(m.organization_id), "%s", ORG_A);
    snprintf(m.path, sizeof(m.path), "/api/v1/cross-branch/sync/%d", seq);
    snprintf(buf, cap, "{\"seq\":%d}", seq);
    m.payload = buf;
    snprintf(m.idempotency_key, sizeof(m.idempotency_key), "idem-%d", seq);
    m.next_attempt_ms = 10000 + seq;
    m.created_ms = 5000 + seq;
    return m;
}

/* Appends message seq for branch_id; returns its id. */
static int64_t add_msg(bg_registry *r, int64_t branch_id, int seq)
{
    char buf[64];
    bg_outbox_msg m = make_msg(branch_id, seq, buf, sizeof(buf));
    assert_int_equal(bg_registry_outbox_add(r, &m), BG_OK);
    assert_true(m.id > 0);
    return m.id;
}

/* The message with that id, in any state; fails the test when absent. */
static bg_outbox_msg get_msg(bg_registry *r, int64_t id)
{
    static const char *const states[] = {"pending", "dead"};
    for (size_t s = 0; s < N_ELEMS(states); s++) {
        bg_outbox_msg *list = NULL;
        size_t n = 0;
        assert_int_equal(bg_registry_outbox_list(r, states[s], id - 1, 1, &list, &n), BG_OK);
        if (n == 1 && list[0].id == id) {
            bg_outbox_msg m = list[0];
            free(list); /* the caller owns m.payload */
            return m;
        }
        bg_registry_outbox_free(list, n);
    }
    fail_msg("outbox message %lld not found", (long long)id);
    bg_outbox_msg none = {0};
    return none;
}

/* Ids of the current heads, in the order returned. */
static size_t heads(bg_registry *r, int64_t *ids, size_t cap)
{
    bg_outbox_msg *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_outbox_heads(r, &list, &n), BG_OK);
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].state, "pending");
        ids[i] = list[i].id;
    }
    bg_registry_outbox_free(list, n);
    return n;
}

static const bg_outbox_stats *find_stats(const bg_outbox_stats *s, size_t n, int64_t branch_id)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].branch_id == branch_id)
            return &s[i];
    return NULL;
}

/* ---- the outbox ------------------------------------------------------------ */

static void test_outbox_add_round_trip(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");

    char buf[64];
    bg_outbox_msg m = make_msg(b1, 1, buf, sizeof(buf));
    m.id = -5; /* ignored: assigned on add */
    snprintf(m.state, sizeof(m.state), "dead"); /* ignored: a new message is pending */
    m.attempts = 9;
    assert_int_equal(bg_registry_outbox_add(r, &m), BG_OK);
    assert_true(m.id > 0);
    int64_t id2 = add_msg(r, b1, 2);
    int64_t id3 = add_msg(r, b1, 3);
    assert_true(id2 > m.id);
    assert_true(id3 > id2);

    bg_outbox_msg got = get_msg(r, m.id);
    assert_int_equal(got.id, m.id);
    assert_int_equal(got.branch_id, b1);
    assert_string_equal(got.kind, "org_sync");
    assert_string_equal(got.organization_id, ORG_A);
    assert_string_equal(got.path, "/api/v1/cross-branch/sync/1");
    assert_string_equal(got.payload, "{\"seq\":1}");
    assert_string_equal(got.idempotency_key, "idem-1");
    assert_string_equal(got.state, "pending");
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.next_attempt_ms, 10001);
    assert_int_equal(got.created_ms, 5001);
    assert_int_equal(got.last_status, 0);
    assert_string_equal(got.last_error, "");
    free(got.payload);

    /* An idempotency key is unique; a branch must exist. */
    char buf2[64];
    bg_outbox_msg dup = make_msg(b1, 2, buf2, sizeof(buf2));
    assert_int_equal(bg_registry_outbox_add(r, &dup), BG_ECONFLICT);
    bg_outbox_msg orphan = make_msg(b1 + 100, 4, buf2, sizeof(buf2));
    assert_int_equal(bg_registry_outbox_add(r, &orphan), BG_ECONFLICT);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM outbox"), 3);
    /* The handle still works, and ids keep growing. */
    assert_true(add_msg(r, b1, 5) > id3);
    bg_registry_close(r);
}

static void test_outbox_heads(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t ids[16];
    assert_int_equal(heads(r, ids, N_ELEMS(ids)), 0);

    int64_t b1 = add_branch(r, "one");
    int64_t b2 = add_branch(r, "two");
    int64_t b3 = add_branch(r, "three");
    (void)add_branch(r, "idle"); /* a branch with no messages has no head */
    assert_int_equal(heads(r, ids, N_ELEMS(ids)), 0);

    /* Interleaved: b2 first, then b1, b3 last. */
    int64_t m2a = add_msg(r, b2, 1);
    int64_t m1a = add_msg(r, b1, 2);
    int64_t m2b = add_msg(r, b2, 3);
    int64_t m1b = add_msg(r, b1, 4);
    int64_t m3a = add_msg(r, b3, 5);
    int64_t m1c = add_msg(r, b1, 6);
    int64_t m2c = add_msg(r, b2, 7);

    /* Exactly the oldest message of each destination, in id order. */
    size_t n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], m2a);
    assert_int_equal(ids[1], m1a);
    assert_int_equal(ids[2], m3a);

    /* The heads carry their rows. */
    bg_outbox_msg *list = NULL;
    assert_int_equal(bg_registry_outbox_heads(r, &list, &n), BG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[1].branch_id, b1);
    assert_string_equal(list[1].payload, "{\"seq\":2}");
    assert_string_equal(list[1].idempotency_key, "idem-2");
    bg_registry_outbox_free(list, n);

    /* Delivered: the next message of that branch moves up. */
    assert_int_equal(bg_registry_outbox_done(r, m1a), BG_OK);
    n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], m2a);
    assert_int_equal(ids[1], m1b);
    assert_int_equal(ids[2], m3a);

    /* A failed attempt keeps the head in place (in order delivery), even
     * when not yet due. */
    assert_int_equal(bg_registry_outbox_retry(r, m2a, 999999, 503, "down", false), BG_OK);
    n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], m2a);

    /* A dead head is skipped: the branch's next message is the head. */
    assert_int_equal(bg_registry_outbox_retry(r, m2a, 0, 400, "rejected", true), BG_OK);
    n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], m2b);
    assert_int_equal(ids[1], m1b);
    assert_int_equal(ids[2], m3a);
    /* A dead message after the head does not matter either. */
    assert_int_equal(bg_registry_outbox_retry(r, m2c, 0, 400, "rejected", true), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, m2b, 0, 400, "rejected", true), BG_OK);
    /* b2 now has only dead messages, b3's only one goes dead too. */
    assert_int_equal(bg_registry_outbox_retry(r, m3a, 0, 410, "gone", true), BG_OK);
    n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m1b);

    assert_int_equal(bg_registry_outbox_done(r, m1b), BG_OK);
    n = heads(r, ids, N_ELEMS(ids));
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m1c);
    assert_int_equal(bg_registry_outbox_done(r, m1c), BG_OK);
    assert_int_equal(heads(r, ids, N_ELEMS(ids)), 0);
    bg_registry_close(r);
}

static void test_outbox_heads_many(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    enum { NB = 5, PER = 6 };
    int64_t br[NB];
    int64_t first[NB];
    char name[16];
    for (int b = 0; b < NB; b++) {
        snprintf(name, sizeof(name), "b%d", b);
        br[b] = add_branch(r, name);
    }
    /* Round robin, newest branch first, so ids of a branch are not
     * contiguous. */
    int seq = 0;
    for (int k = 0; k < PER; k++)
        for (int b = NB - 1; b >= 0; b--) {
            int64_t id = add_msg(r, br[b], seq++);
            if (k == 0)
                first[b] = id;
        }

    bg_outbox_msg *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_outbox_heads(r, &list, &n), BG_OK);
    assert_int_equal(n, NB);
    for (size_t i = 0; i < n; i++) {
        int b = NB - 1 - (int)i; /* id order */
        assert_int_equal(list[i].branch_id, br[b]);
        assert_int_equal(list[i].id, first[b]);
        if (i > 0)
            assert_true(list[i].id > list[i - 1].id);
    }
    bg_registry_outbox_free(list, n);

    /* Delivering every head, PER rounds, drains the outbox in per-branch
     * order. */
    for (int k = 0; k < PER; k++) {
        assert_int_equal(bg_registry_outbox_heads(r, &list, &n), BG_OK);
        assert_int_equal(n, NB);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "idem-%d", k * NB + (int)i);
            assert_string_equal(list[i].idempotency_key, want);
            assert_int_equal(bg_registry_outbox_done(r, list[i].id), BG_OK);
        }
        bg_registry_outbox_free(list, n);
    }
    assert_int_equal(bg_registry_outbox_heads(r, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_outbox_free(list, n);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM outbox"), 0);
    bg_registry_close(r);
}

static void test_outbox_done(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t a = add_msg(r, b1, 1);
    int64_t b = add_msg(r, b1, 2);
    int64_t c = add_msg(r, b1, 3);
    /* Dead messages can be discarded too. */
    assert_int_equal(bg_registry_outbox_retry(r, c, 0, 500, "x", true), BG_OK);

    assert_int_equal(bg_registry_outbox_done(r, b), BG_OK);
    assert_int_equal(bg_registry_outbox_done(r, c), BG_OK);
    bg_outbox_msg *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_outbox_list(r, "pending", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, a);
    bg_registry_outbox_free(list, n);
    assert_int_equal(bg_registry_outbox_list(r, "dead", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_outbox_free(list, n);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM outbox"), 1);
    /* The idempotency key of a delivered message can be used again. */
    char buf[64];
    bg_outbox_msg again = make_msg(b1, 2, buf, sizeof(buf));
    assert_int_equal(bg_registry_outbox_add(r, &again), BG_OK);
    bg_registry_close(r);
}

static void test_outbox_retry(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t id = add_msg(r, b1, 1);
    int64_t other = add_msg(r, b1, 2);

    assert_int_equal(bg_registry_outbox_retry(r, id, 20000, 503, "service unavailable", false),
                     BG_OK);
    bg_outbox_msg m = get_msg(r, id);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 1);
    assert_int_equal(m.next_attempt_ms, 20000);
    assert_int_equal(m.last_status, 503);
    assert_string_equal(m.last_error, "service unavailable");
    assert_int_equal(m.created_ms, 5001); /* unchanged */
    assert_string_equal(m.payload, "{\"seq\":1}");
    free(m.payload);

    /* A second failure; a NULL error is stored as "". */
    assert_int_equal(bg_registry_outbox_retry(r, id, 40000, 0, NULL, false), BG_OK);
    m = get_msg(r, id);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 2);
    assert_int_equal(m.next_attempt_ms, 40000);
    assert_int_equal(m.last_status, 0);
    assert_string_equal(m.last_error, "");
    free(m.payload);

    /* The last one: dead letter. */
    assert_int_equal(bg_registry_outbox_retry(r, id, 80000, 422, "invalid payload", true), BG_OK);
    m = get_msg(r, id);
    assert_string_equal(m.state, "dead");
    assert_int_equal(m.attempts, 3);
    assert_int_equal(m.next_attempt_ms, 80000);
    assert_int_equal(m.last_status, 422);
    assert_string_equal(m.last_error, "invalid payload");
    free(m.payload);
    bg_outbox_msg *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_outbox_list(r, "pending", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, other);
    bg_registry_outbox_free(list, n);

    /* The other message was not touched. */
    m = get_msg(r, other);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.next_attempt_ms, 10002);
    assert_int_equal(m.last_status, 0);
    assert_string_equal(m.last_error, "");
    free(m.payload);
    bg_registry_close(r);
}

static void test_outbox_reset(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t b2 = add_branch(r, "two");
    int64_t a = add_msg(r, b1, 1);
    int64_t b = add_msg(r, b1, 2);
    int64_t c = add_msg(r, b1, 3);
    int64_t d = add_msg(r, b1, 4);
    int64_t e = add_msg(r, b2, 5);
    /* a backs off far, b is already due (before now), c was never tried,
     * d is dead, e belongs to another branch. */
    assert_int_equal(bg_registry_outbox_retry(r, a, 900000, 503, "x", false), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, b, 500, 503, "x", false), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, d, 700000, 503, "x", true), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, e, 600000, 503, "x", false), BG_OK);
    /* Failures for want of a reachable, authenticating peer (transport
     * error = status 0, 5xx, 401, 403, 408, 429) are reset; a refusal on
     * the message's merits (other 4xx) keeps its backoff. */
    const int reset_status[] = {0, 401, 403, 408, 429, 500, 502, 599};
    const int kept_status[] = {400, 404, 409, 413, 422, 499};
    int64_t reset_ids[N_ELEMS(reset_status)], kept_ids[N_ELEMS(kept_status)];
    int seq = 10;
    for (size_t i = 0; i < N_ELEMS(reset_status); i++) {
        reset_ids[i] = add_msg(r, b1, seq++);
        assert_int_equal(
            bg_registry_outbox_retry(r, reset_ids[i], 800000, reset_status[i], "peer", false),
            BG_OK);
    }
    for (size_t i = 0; i < N_ELEMS(kept_status); i++) {
        kept_ids[i] = add_msg(r, b1, seq++);
        assert_int_equal(
            bg_registry_outbox_retry(r, kept_ids[i], 800000, kept_status[i], "refused", false),
            BG_OK);
    }

    assert_int_equal(bg_registry_outbox_reset(r, b1, 1000), BG_OK);
    bg_outbox_msg m = get_msg(r, a);
    assert_int_equal(m.next_attempt_ms, 1000);
    assert_int_equal(m.attempts, 1); /* only the backoff is reset */
    assert_int_equal(m.last_status, 503);
    assert_string_equal(m.last_error, "x");
    free(m.payload);
    m = get_msg(r, b);
    assert_int_equal(m.next_attempt_ms, 500); /* already due: not pushed later */
    free(m.payload);
    m = get_msg(r, c);
    assert_int_equal(m.next_attempt_ms, 1000);
    free(m.payload);
    m = get_msg(r, d);
    assert_string_equal(m.state, "dead");
    assert_int_equal(m.next_attempt_ms, 700000);
    free(m.payload);
    m = get_msg(r, e); /* another branch */
    assert_int_equal(m.next_attempt_ms, 600000);
    free(m.payload);
    for (size_t i = 0; i < N_ELEMS(reset_status); i++) {
        m = get_msg(r, reset_ids[i]);
        if (m.next_attempt_ms != 1000)
            print_error("status %d was not reset\n", reset_status[i]);
        assert_int_equal(m.next_attempt_ms, 1000);
        free(m.payload);
    }
    for (size_t i = 0; i < N_ELEMS(kept_status); i++) {
        m = get_msg(r, kept_ids[i]);
        if (m.next_attempt_ms != 800000)
            print_error("status %d was reset\n", kept_status[i]);
        assert_int_equal(m.next_attempt_ms, 800000);
        assert_string_equal(m.state, "pending");
        free(m.payload);
    }

    /* A branch with nothing pending: a no-op. */
    assert_int_equal(bg_registry_outbox_reset(r, b2 + 100, 1000), BG_OK);
    bg_registry_close(r);
}

static void test_outbox_stats(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t b2 = add_branch(r, "two");
    int64_t b3 = add_branch(r, "three");
    int64_t b4 = add_branch(r, "four");

    bg_outbox_stats *s = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_outbox_stats(r, 0, &s, &n), BG_OK);
    assert_int_equal(n, 0);
    free(s);

    /* b1: a dead message (the oldest of all), then three pending ones
     * whose creation times are not in id order. */
    char buf[64];
    bg_outbox_msg m = make_msg(b1, 1, buf, sizeof(buf));
    m.created_ms = 50;
    assert_int_equal(bg_registry_outbox_add(r, &m), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, m.id, 0, 400, "bad", true), BG_OK);
    const long long created[] = {300, 100, 200};
    int64_t head = 0;
    for (size_t i = 0; i < N_ELEMS(created); i++) {
        m = make_msg(b1, 10 + (int)i, buf, sizeof(buf));
        m.created_ms = created[i];
        assert_int_equal(bg_registry_outbox_add(r, &m), BG_OK);
        if (i == 0)
            head = m.id;
    }
    assert_int_equal(bg_registry_outbox_retry(r, head, 7000, 503, "first", false), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, head, 8000, 502, "head error", false), BG_OK);
    /* b2: one pending message. */
    int64_t b2m = add_msg(r, b2, 20);
    /* b3: only dead messages. */
    int64_t d1 = add_msg(r, b3, 30);
    int64_t d2 = add_msg(r, b3, 31);
    assert_int_equal(bg_registry_outbox_retry(r, d1, 0, 400, "x", true), BG_OK);
    assert_int_equal(bg_registry_outbox_retry(r, d2, 0, 400, "y", true), BG_OK);
    (void)b2m;

    assert_int_equal(bg_registry_outbox_stats(r, 0, &s, &n), BG_OK);
    assert_int_equal(n, 3); /* b4 has no messages */
    assert_null(find_stats(s, n, b4));

    const bg_outbox_stats *s1 = find_stats(s, n, b1);
    assert_non_null(s1);
    assert_int_equal(s1->depth, 3);
    assert_int_equal(s1->dead, 1);
    assert_int_equal(s1->oldest_created_ms, 100); /* of pending messages only */
    assert_int_equal(s1->next_attempt_ms, 8000);
    assert_int_equal(s1->attempts, 2);
    assert_string_equal(s1->last_error, "head error");

    const bg_outbox_stats *s2 = find_stats(s, n, b2);
    assert_non_null(s2);
    assert_int_equal(s2->depth, 1);
    assert_int_equal(s2->dead, 0);
    assert_int_equal(s2->oldest_created_ms, 5020);
    assert_int_equal(s2->next_attempt_ms, 10020);
    assert_int_equal(s2->attempts, 0);
    assert_string_equal(s2->last_error, "");

    const bg_outbox_stats *s3 = find_stats(s, n, b3);
    assert_non_null(s3);
    assert_int_equal(s3->depth, 0);
    assert_int_equal(s3->dead, 2);
    assert_int_equal(s3->oldest_created_ms, 0);
    assert_int_equal(s3->next_attempt_ms, 0);
    assert_int_equal(s3->attempts, 0);
    assert_string_equal(s3->last_error, "");
    free(s);

    /* One branch. */
    s = NULL;
    assert_int_equal(bg_registry_outbox_stats(r, b1, &s, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].branch_id, b1);
    assert_int_equal(s[0].depth, 3);
    assert_int_equal(s[0].dead, 1);
    assert_int_equal(s[0].oldest_created_ms, 100);
    assert_int_equal(s[0].next_attempt_ms, 8000);
    assert_int_equal(s[0].attempts, 2);
    assert_string_equal(s[0].last_error, "head error");
    free(s);
    s = NULL;
    n = 99;
    assert_int_equal(bg_registry_outbox_stats(r, b4, &s, &n), BG_OK);
    assert_int_equal(n, 0);
    free(s);

    /* When the head is delivered, the next one's values are reported. */
    assert_int_equal(bg_registry_outbox_done(r, head), BG_OK);
    s = NULL;
    assert_int_equal(bg_registry_outbox_stats(r, b1, &s, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].depth, 2);
    assert_int_equal(s[0].oldest_created_ms, 100);
    assert_int_equal(s[0].next_attempt_ms, 10011);
    assert_int_equal(s[0].attempts, 0);
    assert_string_equal(s[0].last_error, "");
    free(s);
    bg_registry_close(r);
}

static void test_outbox_list_paging(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t b2 = add_branch(r, "two");
    enum { N = 9 };
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = add_msg(r, i % 2 ? b2 : b1, i);
    /* Every third message is dead: 0, 3, 6. */
    for (int i = 0; i < N; i += 3)
        assert_int_equal(bg_registry_outbox_retry(r, ids[i], 0, 500, "x", true), BG_OK);
    const int pending[] = {1, 2, 4, 5, 7, 8};

    bg_outbox_msg *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_outbox_list(r, "pending", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, N_ELEMS(pending));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(list[i].id, ids[pending[i]]);
        assert_string_equal(list[i].state, "pending");
    }
    bg_registry_outbox_free(list, n);

    /* Pages of 4: 4 + 2, then empty. */
    const size_t want_sizes[] = {4, 2, 0};
    int64_t after = 0;
    size_t seen = 0;
    for (size_t p = 0; p < N_ELEMS(want_sizes); p++) {
        assert_int_equal(bg_registry_outbox_list(r, "pending", after, 4, &list, &n), BG_OK);
        assert_int_equal(n, want_sizes[p]);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(list[i].id, ids[pending[seen++]]);
        if (n > 0)
            after = list[n - 1].id;
        bg_registry_outbox_free(list, n);
    }
    assert_int_equal(seen, N_ELEMS(pending));

    /* Dead ones; after is exclusive. */
    assert_int_equal(bg_registry_outbox_list(r, "dead", 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, ids[0]);
    assert_int_equal(list[1].id, ids[3]);
    assert_int_equal(list[2].id, ids[6]);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].state, "dead");
        assert_int_equal(list[i].attempts, 1);
        assert_int_equal(list[i].last_status, 500);
    }
    bg_registry_outbox_free(list, n);
    assert_int_equal(bg_registry_outbox_list(r, "dead", ids[3], 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, ids[6]);
    bg_registry_outbox_free(list, n);

    /* An unknown state lists nothing. */
    n = 99;
    assert_int_equal(bg_registry_outbox_list(r, "sent", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_outbox_free(list, n);
    bg_registry_outbox_free(NULL, 0);
    bg_registry_close(r);
}

static void test_outbox_requeue(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t b1 = add_branch(r, "one");
    int64_t a = add_msg(r, b1, 1);
    int64_t b = add_msg(r, b1, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(bg_registry_outbox_retry(r, a, 90000, 500, "boom", i == 2), BG_OK);
    int64_t ids[4];
    assert_int_equal(heads(r, ids, N_ELEMS(ids)), 1);
    assert_int_equal(ids[0], b);

    /* Not dead: a pending message or an unknown id. */
    assert_int_equal(bg_registry_outbox_requeue(r, b, 1000), BG_ENOTFOUND);
    assert_int_equal(bg_registry_outbox_requeue(r, b + 100, 1000), BG_ENOTFOUND);
    bg_outbox_msg m = get_msg(r, b);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.next_attempt_ms, 10002);
    free(m.payload);

    assert_int_equal(bg_registry_outbox_requeue(r, a, 123456), BG_OK);
    m = get_msg(r, a);
    assert_string_equal(m.state, "pending");
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.next_attempt_ms, 123456);
    /* The give-up window starts again from the requeue. */
    assert_int_equal(m.created_ms, 123456);
    assert_string_equal(m.payload, "{\"seq\":1}");
    assert_string_equal(m.idempotency_key, "idem-1");
    free(m.payload);
    /* Being the older message, it is the branch's head again. */
    assert_int_equal(heads(r, ids, N_ELEMS(ids)), 1);
    assert_int_equal(ids[0], a);
    bg_outbox_msg *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_outbox_list(r, "dead", 0, 0, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_outbox_free(list, n);

    /* Requeued once, it is pending: a second requeue finds nothing. */
    assert_int_equal(bg_registry_outbox_requeue(r, a, 200000), BG_ENOTFOUND);
    m = get_msg(r, a);
    assert_int_equal(m.next_attempt_ms, 123456);
    free(m.payload);
    bg_registry_close(r);
}

/* ---- idempotency keys ---------------------------------------------------- */

static void test_idem_round_trip(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t p1 = add_branch(r, "one");
    int64_t p2 = add_branch(r, "two");

    int status = -1;
    char *body = NULL;
    assert_int_equal(bg_registry_idem_get(r, p1, "k1", &status, &body), BG_ENOTFOUND);
    assert_int_equal(status, -1);
    assert_null(body);

    assert_int_equal(bg_registry_idem_put(r, p1, "k1", 201, "{\"id\":\"x\"}", 1000), BG_OK);
    assert_int_equal(bg_registry_idem_get(r, p1, "k1", &status, &body), BG_OK);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"id\":\"x\"}");
    free(body);
    body = NULL;

    /* (peer, key) is unique: the first answer stands. */
    assert_int_equal(bg_registry_idem_put(r, p1, "k1", 500, "{}", 2000), BG_ECONFLICT);
    assert_int_equal(bg_registry_idem_get(r, p1, "k1", &status, &body), BG_OK);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"id\":\"x\"}");
    free(body);
    body = NULL;

    /* Keys are per peer. */
    status = -1;
    assert_int_equal(bg_registry_idem_get(r, p2, "k1", &status, &body), BG_ENOTFOUND);
    assert_null(body);
    assert_int_equal(bg_registry_idem_put(r, p2, "k1", 409, "{\"error\":\"dup\"}", 1500), BG_OK);
    assert_int_equal(bg_registry_idem_get(r, p2, "k1", &status, &body), BG_OK);
    assert_int_equal(status, 409);
    assert_string_equal(body, "{\"error\":\"dup\"}");
    free(body);
    body = NULL;
    assert_int_equal(bg_registry_idem_get(r, p1, "k1", &status, &body), BG_OK);
    assert_int_equal(status, 201);
    free(body);
    body = NULL;
    assert_int_equal(bg_registry_idem_get(r, p1, "k2", &status, &body), BG_ENOTFOUND);

    /* An empty body round-trips. */
    assert_int_equal(bg_registry_idem_put(r, p1, "k2", 204, "", 1000), BG_OK);
    assert_int_equal(bg_registry_idem_get(r, p1, "k2", &status, &body), BG_OK);
    assert_int_equal(status, 204);
    assert_string_equal(body, "");
    free(body);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM idempotency"), 3);
    bg_registry_close(r);
}

static void test_idem_expire(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t p1 = add_branch(r, "one");
    int64_t p2 = add_branch(r, "two");
    assert_int_equal(bg_registry_idem_put(r, p1, "old", 200, "{}", 1000), BG_OK);
    assert_int_equal(bg_registry_idem_put(r, p2, "old", 200, "{}", 1999), BG_OK);
    assert_int_equal(bg_registry_idem_put(r, p1, "edge", 200, "{}", 2000), BG_OK);
    assert_int_equal(bg_registry_idem_put(r, p2, "new", 200, "{}", 3000), BG_OK);

    assert_int_equal(bg_registry_idem_expire(r, 0), BG_OK);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM idempotency"), 4);

    /* Strictly before the cutoff goes; at and after it stays. */
    assert_int_equal(bg_registry_idem_expire(r, 2000), BG_OK);
    int status = 0;
    char *body = NULL;
    assert_int_equal(bg_registry_idem_get(r, p1, "old", &status, &body), BG_ENOTFOUND);
    assert_int_equal(bg_registry_idem_get(r, p2, "old", &status, &body), BG_ENOTFOUND);
    assert_int_equal(bg_registry_idem_get(r, p1, "edge", &status, &body), BG_OK);
    free(body);
    body = NULL;
    assert_int_equal(bg_registry_idem_get(r, p2, "new", &status, &body), BG_OK);
    free(body);
    body = NULL;
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM idempotency"), 2);

    /* An expired key can be stored again. */
    assert_int_equal(bg_registry_idem_put(r, p1, "old", 202, "{\"again\":1}", 4000), BG_OK);
    assert_int_equal(bg_registry_idem_get(r, p1, "old", &status, &body), BG_OK);
    assert_int_equal(status, 202);
    free(body);
    bg_registry_close(r);
}

/* ---- shared resources ------------------------------------------------------ */

static bg_shared make_shared(const char *org, const char *type, const char *id,
                             const char *payload, long long expires_ms)
{
    bg_shared s;
    memset(&s, 0, sizeof(s));
    snprintf(s.organization_id, sizeof(s.organization_id), "%s", org);
    snprintf(s.resource_type, sizeof(s.resource_type), "%s", type);
    snprintf(s.resource_id, sizeof(s.resource_id), "%s", id);
    snprintf(s.from_branch, sizeof(s.from_branch), "branch-%s", id);
    snprintf(s.permissions, sizeof(s.permissions), "[\"read\"]");
    s.expires_ms = expires_ms;
    s.payload = (char *)payload;
    s.updated_ms = 4242;
    return s;
}

static void assert_shared_equal(const bg_shared *got, const bg_shared *want)
{
    assert_string_equal(got->organization_id, want->organization_id);
    assert_string_equal(got->resource_type, want->resource_type);
    assert_string_equal(got->resource_id, want->resource_id);
    assert_string_equal(got->from_branch, want->from_branch);
    assert_string_equal(got->permissions, want->permissions);
    assert_int_equal(got->expires_ms, want->expires_ms);
    assert_string_equal(got->payload, want->payload);
    assert_int_equal(got->updated_ms, want->updated_ms);
}

static void test_shared_put_get_list(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    add_org(r, ORG_A, "alpha");
    bg_shared got;
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "t1", 1000, &got),
                     BG_ENOTFOUND);
    bg_shared *list = NULL;
    size_t n = 99;
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", 1000, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_shared_free(list, n);

    bg_shared t2 = make_shared(ORG_A, "template", "t2", "{\"n\":2}", 0);
    bg_shared t1 = make_shared(ORG_A, "template", "t1", "{\"n\":1}", 0);
    snprintf(t1.permissions, sizeof(t1.permissions), "[\"read\",\"use\"]");
    bg_shared p1 = make_shared(ORG_A, "preset", "t1", "{\"p\":1}", 0);
    assert_int_equal(bg_registry_shared_put(r, &t2), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &t1), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &p1), BG_OK);

    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "t1", 1000, &got), BG_OK);
    assert_shared_equal(&got, &t1);
    free(got.payload);
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "preset", "t1", 1000, &got), BG_OK);
    assert_shared_equal(&got, &p1);
    free(got.payload);
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "preset", "t2", 1000, &got), BG_ENOTFOUND);

    /* Listed by type, in resource id order. */
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", 1000, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_shared_equal(&list[0], &t1);
    assert_shared_equal(&list[1], &t2);
    bg_registry_shared_free(list, n);
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "preset", 1000, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_shared_equal(&list[0], &p1);
    bg_registry_shared_free(list, n);
    bg_registry_shared_free(NULL, 0);

    /* The organisation must exist. */
    bg_shared orphan = make_shared(ORG_MISSING, "template", "t1", "{}", 0);
    assert_int_equal(bg_registry_shared_put(r, &orphan), BG_ECONFLICT);
    bg_registry_close(r);
}

static void test_shared_replace(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    add_org(r, ORG_A, "alpha");
    bg_shared s = make_shared(ORG_A, "template", "t1", "{\"v\":1}", 0);
    assert_int_equal(bg_registry_shared_put(r, &s), BG_OK);

    bg_shared s2 = make_shared(ORG_A, "template", "t1", "{\"v\":2}", 99999);
    snprintf(s2.from_branch, sizeof(s2.from_branch), "another-branch");
    snprintf(s2.permissions, sizeof(s2.permissions), "[]");
    s2.updated_ms = 5000;
    assert_int_equal(bg_registry_shared_put(r, &s2), BG_OK);

    bg_shared got;
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "t1", 1000, &got), BG_OK);
    assert_shared_equal(&got, &s2);
    free(got.payload);
    bg_shared *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", 1000, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_shared_equal(&list[0], &s2);
    bg_registry_shared_free(list, n);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM shared_resources"), 1);
    bg_registry_close(r);
}

static void test_shared_expiry(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    add_org(r, ORG_A, "alpha");
    bg_shared forever = make_shared(ORG_A, "template", "a-forever", "{}", 0);
    bg_shared later = make_shared(ORG_A, "template", "b-later", "{}", 5000);
    bg_shared past = make_shared(ORG_A, "template", "c-past", "{}", 10);
    assert_int_equal(bg_registry_shared_put(r, &forever), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &later), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &past), BG_OK);

    bg_shared got;
    bg_shared *list = NULL;
    size_t n = 0;
    /* At 4999 only the one expired at 10 is invisible. */
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "c-past", 4999, &got),
                     BG_ENOTFOUND);
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "b-later", 4999, &got), BG_OK);
    assert_shared_equal(&got, &later);
    free(got.payload);
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", 4999, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].resource_id, "a-forever");
    assert_string_equal(list[1].resource_id, "b-later");
    bg_registry_shared_free(list, n);

    /* At its expiry time and after, gone too; 0 never expires. */
    const long long nows[] = {5000, 5001, 4102444800000LL};
    for (size_t i = 0; i < N_ELEMS(nows); i++) {
        assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "b-later", nows[i], &got),
                         BG_ENOTFOUND);
        assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "a-forever", nows[i], &got),
                         BG_OK);
        assert_shared_equal(&got, &forever);
        free(got.payload);
        assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", nows[i], &list, &n), BG_OK);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].resource_id, "a-forever");
        bg_registry_shared_free(list, n);
    }

    /* Before the past one expired it was visible: expiry is relative to
     * the now given. */
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "c-past", 9, &got), BG_OK);
    free(got.payload);
    /* Replacing an expired row with a fresh expiry makes it visible. */
    past.expires_ms = 0;
    assert_int_equal(bg_registry_shared_put(r, &past), BG_OK);
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "c-past", 9000, &got), BG_OK);
    free(got.payload);
    bg_registry_close(r);
}

static void test_shared_scoped_by_org(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    add_org(r, ORG_A, "alpha");
    add_org(r, ORG_B, "beta");
    bg_shared a = make_shared(ORG_A, "template", "t1", "{\"org\":\"a\"}", 0);
    bg_shared b = make_shared(ORG_B, "template", "t1", "{\"org\":\"b\"}", 0);
    bg_shared b2 = make_shared(ORG_B, "template", "t2", "{\"org\":\"b2\"}", 0);
    assert_int_equal(bg_registry_shared_put(r, &a), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &b), BG_OK);
    assert_int_equal(bg_registry_shared_put(r, &b2), BG_OK);

    bg_shared got;
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "t1", 1, &got), BG_OK);
    assert_shared_equal(&got, &a);
    free(got.payload);
    assert_int_equal(bg_registry_shared_get(r, ORG_B, "template", "t1", 1, &got), BG_OK);
    assert_shared_equal(&got, &b);
    free(got.payload);
    assert_int_equal(bg_registry_shared_get(r, ORG_A, "template", "t2", 1, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_shared_get(r, ORG_MISSING, "template", "t1", 1, &got),
                     BG_ENOTFOUND);

    bg_shared *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_shared_list(r, ORG_A, "template", 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_shared_equal(&list[0], &a);
    bg_registry_shared_free(list, n);
    assert_int_equal(bg_registry_shared_list(r, ORG_B, "template", 1, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_shared_equal(&list[0], &b);
    assert_shared_equal(&list[1], &b2);
    bg_registry_shared_free(list, n);
    bg_registry_close(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_outbox_add_round_trip),
        T(test_outbox_heads),
        T(test_outbox_heads_many),
        T(test_outbox_done),
        T(test_outbox_retry),
        T(test_outbox_reset),
        T(test_outbox_stats),
        T(test_outbox_list_paging),
        T(test_outbox_requeue),
        T(test_idem_round_trip),
        T(test_idem_expire),
        T(test_shared_put_get_list),
        T(test_shared_replace),
        T(test_shared_expiry),
        T(test_shared_scoped_by_org),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
