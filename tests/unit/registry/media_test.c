/*
 * Unit tests for registry/media.c through registry/registry.h: the media
 * pipeline's tables (migration 5) — assemblies, tus uploads, the durable
 * job queue (claim order, FIFO per assembly, per-organisation leases,
 * lease expiry, retries, dead letters), results, stored progress events
 * and webhook deliveries with their attempts.
 *
 * Each test works in its own mkdtemp directory, removed in teardown, on a
 * freshly migrated database. Uploads, jobs and results reference their
 * assembly (foreign keys are on), so tests create the assembly first.
 * Times are plain numbers around T: the registry never reads the clock.
 * What the API does not return (row counts, the schema) is read on the
 * registry's own connection, which this folder's internal header exposes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry/registry.h"
#include "registry/registry_internal.h"

#include "registry_fixture.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define ORG_A "00000000-0000-4000-8000-00000000000a"
#define ORG_B "00000000-0000-4000-8000-00000000000b"
#define ORG_C "00000000-0000-4000-8000-00000000000c"

#define T 1000000LL            /* "now" in most tests */
#define FAR (T + 1000000000LL) /* a visible_at nobody reaches */
#define BIG_LIMIT 100          /* an org_limit that never binds */

/* Opens and migrates the database file `name` in the test's directory. */
static bg_registry *open_named(const fixture *f, const char *name)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(path, NULL, &r), BG_OK);
    assert_non_null(r);
    assert_int_equal(bg_registry_migrate(r, NULL, NULL), BG_OK);
    return r;
}

static bg_registry *open_migrated(const fixture *f)
{
    return open_named(f, "test.db");
}

/* ---- fixtures: assemblies, uploads, jobs --------------------------------- */

/* An assembly whose fields derive from id; JSON members point to literals. */
static bg_assembly_row make_assembly(const char *id, const char *org, const char *state,
                                     long long created_ms)
{
    bg_assembly_row a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.organization_id, sizeof(a.organization_id), "%s", org);
    snprintf(a.user_id, sizeof(a.user_id), "user-%s", id);
    snprintf(a.template_id, sizeof(a.template_id), "tpl-%s", id);
    a.template_json = (char *)"{\"steps\":{\"thumb\":{\"robot\":\"/image/resize\"}}}";
    snprintf(a.state, sizeof(a.state), "%s", state);
    a.files_json = (char *)"[{\"name\":\"a.jpg\",\"size\":10}]";
    a.fields_json = (char *)"{\"k\":\"v\"}";
    snprintf(a.notify_url, sizeof(a.notify_url), "https://hooks.example.org/%s", id);
    a.bytes_expected = 4096;
    a.created_ms = created_ms;
    a.updated_ms = created_ms + 1;
    return a;
}

/* Inserts an assembly; returns its seq. */
static int64_t add_assembly(bg_registry *r, const char *id, const char *org, const char *state,
                            long long created_ms)
{
    bg_assembly_row a = make_assembly(id, org, state, created_ms);
    assert_int_equal(bg_registry_assembly_insert(r, &a), BG_OK);
    bg_assembly_row got;
    assert_int_equal(bg_registry_assembly_get(r, id, NULL, &got), BG_OK);
    int64_t seq = got.seq;
    bg_registry_assembly_clear(&got);
    assert_true(seq > 0);
    return seq;
}

/* Inserts the assembly unless it exists (jobs and uploads need one). */
static void ensure_assembly(bg_registry *r, const char *id, const char *org)
{
    bg_assembly_row got;
    bg_err e = bg_registry_assembly_get(r, id, NULL, &got);
    if (e == BG_OK) {
        bg_registry_assembly_clear(&got);
        return;
    }
    assert_int_equal(e, BG_ENOTFOUND);
    (void)add_assembly(r, id, org, "executing", 1000);
}

static bg_upload_row make_upload(const char *id, const char *assembly_id, const char *org,
                                 int file_index)
{
    bg_upload_row u;
    memset(&u, 0, sizeof(u));
    snprintf(u.id, sizeof(u.id), "%s", id);
    snprintf(u.assembly_id, sizeof(u.assembly_id), "%s", assembly_id);
    snprintf(u.organization_id, sizeof(u.organization_id), "%s", org);
    snprintf(u.user_id, sizeof(u.user_id), "anonymous");
    u.file_index = file_index;
    snprintf(u.filename, sizeof(u.filename), "file-%d.mp4", file_index);
    snprintf(u.mime, sizeof(u.mime), "video/mp4");
    snprintf(u.metadata, sizeof(u.metadata), "filename ZmlsZS5tcDQ=,assembly_id YWJj");
    snprintf(u.path, sizeof(u.path), "uploads/main/users/anonymous/%s/file-%d.mp4", id, file_index);
    u.length = 1000 + file_index;
    u.md5_state_len = 4;
    memcpy(u.md5_state, "\x01\x00\x02\x00", 4);
    u.expires_ms = T + 86400000LL;
    u.created_ms = T;
    u.updated_ms = T;
    return u;
}

static void add_upload(bg_registry *r, const bg_upload_row *u)
{
    ensure_assembly(r, u->assembly_id, u->organization_id);
    assert_int_equal(bg_registry_upload_insert(r, u), BG_OK);
}

/* Inserts a job (and its assembly when missing); returns its id. */
static int64_t add_job(bg_registry *r, const char *assembly_id, const char *org, int run,
                       const char *state, long long visible_at)
{
    ensure_assembly(r, assembly_id, org);
    bg_job_row j;
    memset(&j, 0, sizeof(j));
    snprintf(j.assembly_id, sizeof(j.assembly_id), "%s", assembly_id);
    snprintf(j.organization_id, sizeof(j.organization_id), "%s", org);
    j.run = run;
    snprintf(j.state, sizeof(j.state), "%s", state);
    j.max_receive = 3;
    j.visible_at = visible_at;
    j.created_ms = j.updated_ms = 500;
    assert_int_equal(bg_registry_job_insert(r, &j), BG_OK);
    assert_true(j.id > 0);
    return j.id;
}

static bg_job_row get_job(bg_registry *r, int64_t id)
{
    bg_job_row j;
    memset(&j, 0, sizeof(j));
    assert_int_equal(bg_registry_job_get(r, id, &j), BG_OK);
    return j;
}

/* Claims inside a transaction, as the contract asks. */
static bg_err claim(bg_registry *r, long long now, long long lease, int org_limit, bg_job_row *out)
{
    assert_int_equal(bg_registry_begin(r), BG_OK);
    bg_err e = bg_registry_job_claim(r, now, lease, org_limit, out);
    if (e == BG_OK)
        assert_int_equal(bg_registry_commit(r), BG_OK);
    else
        bg_registry_rollback(r);
    return e;
}

/* The id of the job claimed at now (lease 1000 ms), 0 when none is due. */
static int64_t claim_id(bg_registry *r, long long now, int org_limit)
{
    bg_job_row j;
    memset(&j, 0, sizeof(j));
    bg_err e = claim(r, now, 1000, org_limit, &j);
    if (e == BG_ENOTFOUND)
        return 0;
    assert_int_equal(e, BG_OK);
    assert_true(j.id > 0);
    return j.id;
}

/* ---- migration ------------------------------------------------------------ */

static void test_migrate_fresh_has_media_tables(void **state)
{
    fixture *f = *state;
    bg_registry *r = NULL;
    assert_int_equal(bg_registry_open(f->db, NULL, &r), BG_OK);
    int from = -1, to = -1;
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, 0);
    assert_true(bg_registry_schema_latest() >= 5);
    assert_int_equal(to, bg_registry_schema_latest());
    assert_int_equal(query_int(r->db, "PRAGMA user_version"), bg_registry_schema_latest());

    static const char *const objects[][2] = {
        {"table", "assemblies"},        {"table", "uploads"},         {"table", "jobs"},
        {"table", "results"},           {"table", "events"},          {"table", "webhooks"},
        {"table", "webhook_attempts"},  {"index", "jobs_due"},        {"index", "jobs_assembly"},
        {"index", "uploads_expiry"},    {"index", "events_assembly"}, {"index", "webhooks_due"},
        {"index", "webhooks_assembly"},
    };
    for (size_t i = 0; i < N_ELEMS(objects); i++) {
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master WHERE type = '%s' AND name = '%s'",
                 objects[i][0], objects[i][1]);
        if (query_int(r->db, sql) != 1)
            fail_msg("%s %s missing after migration", objects[i][0], objects[i][1]);
    }
    /* Every media table starts empty. */
    static const char *const empty[] = {
        "SELECT count(*) FROM assemblies",
        "SELECT count(*) FROM uploads",
        "SELECT count(*) FROM jobs",
        "SELECT count(*) FROM results",
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM webhooks",
        "SELECT count(*) FROM webhook_attempts",
    };
    for (size_t i = 0; i < N_ELEMS(empty); i++)
        assert_int_equal(query_int(r->db, empty[i]), 0);

    /* Migrating again is a no-op. */
    assert_int_equal(bg_registry_migrate(r, &from, &to), BG_OK);
    assert_int_equal(from, bg_registry_schema_latest());
    assert_int_equal(to, bg_registry_schema_latest());
    bg_registry_close(r);
}

/* ---- assemblies ----------------------------------------------------------- */

static void assert_assembly_equal(const bg_assembly_row *got, const bg_assembly_row *want)
{
    assert_string_equal(got->id, want->id);
    assert_string_equal(got->organization_id, want->organization_id);
    assert_string_equal(got->user_id, want->user_id);
    assert_string_equal(got->template_id, want->template_id);
    assert_string_equal(got->template_json, want->template_json);
    assert_string_equal(got->state, want->state);
    assert_string_equal(got->error, want->error);
    assert_string_equal(got->message, want->message);
    assert_string_equal(got->failed_step, want->failed_step);
    assert_int_equal(got->retryable, want->retryable);
    assert_string_equal(got->files_json, want->files_json);
    assert_string_equal(got->fields_json, want->fields_json);
    assert_string_equal(got->notify_url, want->notify_url);
    assert_int_equal(got->bytes_expected, want->bytes_expected);
    assert_int_equal(got->run, want->run);
    assert_int_equal(got->attempts, want->attempts);
    assert_int_equal(got->queued_ms, want->queued_ms);
    assert_int_equal(got->execution_start_ms, want->execution_start_ms);
    assert_int_equal(got->execution_end_ms, want->execution_end_ms);
    assert_int_equal(got->created_ms, want->created_ms);
    assert_int_equal(got->updated_ms, want->updated_ms);
}

static void test_assembly_insert_get(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_assembly_row a = make_assembly("asm-1", ORG_A, "uploading", 2000);
    assert_int_equal(bg_registry_assembly_insert(r, &a), BG_OK);

    /* The owner's organisation and NULL (admin, workers) see it. */
    const char *const seers[] = {ORG_A, NULL};
    for (size_t i = 0; i < N_ELEMS(seers); i++) {
        bg_assembly_row got;
        assert_int_equal(bg_registry_assembly_get(r, "asm-1", seers[i], &got), BG_OK);
        assert_true(got.seq > 0);
        assert_assembly_equal(&got, &a);
        bg_registry_assembly_clear(&got);
        assert_null(got.template_json);
        assert_null(got.files_json);
        assert_null(got.fields_json);
    }

    /* Another organisation, an unknown id: not found, out untouched. */
    static const struct {
        const char *id, *org;
    } missing[] = {{"asm-1", ORG_B}, {"asm-2", NULL}, {"asm-2", ORG_A}, {"", NULL}};
    for (size_t i = 0; i < N_ELEMS(missing); i++) {
        bg_assembly_row got;
        memset(&got, 0x5a, sizeof(got));
        assert_int_equal(bg_registry_assembly_get(r, missing[i].id, missing[i].org, &got),
                         BG_ENOTFOUND);
        assert_int_equal(got.seq, 0x5a5a5a5a5a5a5a5aLL);
    }

    /* The id is the primary key, whatever the organisation. */
    bg_assembly_row dup = make_assembly("asm-1", ORG_A, "uploading", 3000);
    assert_int_equal(bg_registry_assembly_insert(r, &dup), BG_ECONFLICT);
    bg_assembly_row other = make_assembly("asm-1", ORG_B, "executing", 3000);
    assert_int_equal(bg_registry_assembly_insert(r, &other), BG_ECONFLICT);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM assemblies"), 1);

    /* NULL JSON members get their empty defaults. */
    bg_assembly_row bare = make_assembly("asm-bare", ORG_B, "uploading", 4000);
    bare.template_json = bare.files_json = bare.fields_json = NULL;
    assert_int_equal(bg_registry_assembly_insert(r, &bare), BG_OK);
    bg_assembly_row got;
    assert_int_equal(bg_registry_assembly_get(r, "asm-bare", ORG_B, &got), BG_OK);
    assert_string_equal(got.template_json, "{}");
    assert_string_equal(got.files_json, "[]");
    assert_string_equal(got.fields_json, "{}");
    assert_string_equal(got.state, "uploading");
    bg_registry_assembly_clear(&got);

    /* A state outside the list is refused by the schema. */
    bg_assembly_row bad = make_assembly("asm-bad", ORG_A, "running", 5000);
    assert_int_equal(bg_registry_assembly_insert(r, &bad), BG_ECONFLICT);
    bg_registry_close(r);
}

static void test_assembly_update_round_trip(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    (void)add_assembly(r, "asm-1", ORG_A, "uploading", 2000);
    (void)add_assembly(r, "asm-2", ORG_A, "uploading", 2100);

    bg_assembly_row want;
    assert_int_equal(bg_registry_assembly_get(r, "asm-1", ORG_A, &want), BG_OK);
    snprintf(want.state, sizeof(want.state), "failed");
    snprintf(want.error, sizeof(want.error), "PROCESSING_ERROR");
    snprintf(want.message, sizeof(want.message), "ffmpeg said no: \"bad frame\"");
    snprintf(want.failed_step, sizeof(want.failed_step), "encode_720p");
    want.retryable = true;
    want.run = 3;
    want.attempts = 2;
    want.queued_ms = 10001;
    want.execution_start_ms = 10002;
    want.execution_end_ms = 10003;
    want.updated_ms = 10004;
    assert_int_equal(bg_registry_assembly_update(r, &want), BG_OK);

    bg_assembly_row got;
    assert_int_equal(bg_registry_assembly_get(r, "asm-1", ORG_A, &got), BG_OK);
    assert_int_equal(got.seq, want.seq);
    assert_assembly_equal(&got, &want);
    bg_registry_assembly_clear(&got);

    /* Back to a clean run: the error fields empty again. */
    snprintf(want.state, sizeof(want.state), "executing");
    want.error[0] = want.message[0] = want.failed_step[0] = '\0';
    want.retryable = false;
    want.execution_end_ms = 0;
    want.updated_ms = 20000;
    assert_int_equal(bg_registry_assembly_update(r, &want), BG_OK);
    assert_int_equal(bg_registry_assembly_get(r, "asm-1", NULL, &got), BG_OK);
    assert_assembly_equal(&got, &want);
    bg_registry_assembly_clear(&got);

    /* Only the named row changed. */
    assert_int_equal(bg_registry_assembly_get(r, "asm-2", NULL, &got), BG_OK);
    assert_string_equal(got.state, "uploading");
    assert_int_equal(got.run, 0);
    assert_int_equal(got.updated_ms, 2101);
    bg_registry_assembly_clear(&got);

    /* The immutable fields are not written by update. */
    bg_assembly_row changed = want;
    snprintf(changed.template_id, sizeof(changed.template_id), "other");
    snprintf(changed.notify_url, sizeof(changed.notify_url), "https://elsewhere.example");
    changed.bytes_expected = 1;
    changed.created_ms = 1;
    assert_int_equal(bg_registry_assembly_update(r, &changed), BG_OK);
    assert_int_equal(bg_registry_assembly_get(r, "asm-1", NULL, &got), BG_OK);
    assert_assembly_equal(&got, &want);
    bg_registry_assembly_clear(&got);
    bg_registry_assembly_clear(&want);

    bg_assembly_row ghost = make_assembly("asm-ghost", ORG_A, "failed", 1);
    assert_int_equal(bg_registry_assembly_update(r, &ghost), BG_ENOTFOUND);
    bg_registry_close(r);
}

static void test_assembly_list_paging(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    /* Interleaved organisations: A0 B0 A1 A2 B1 A3 A4 (oldest first). */
    static const struct {
        const char *id, *org;
    } rows[] = {{"A0", ORG_A}, {"B0", ORG_B}, {"A1", ORG_A}, {"A2", ORG_A},
                {"B1", ORG_B}, {"A3", ORG_A}, {"A4", ORG_A}};
    int64_t seq[N_ELEMS(rows)];
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        seq[i] = add_assembly(r, rows[i].id, rows[i].org, "uploading", 1000 + (long long)i);
        if (i > 0)
            assert_true(seq[i] > seq[i - 1]);
    }

    /* before = -1: start from the newest; otherwise the seq of row `before`. */
    static const struct {
        const char *org;
        int before;
        size_t limit;
        const char *want; /* ids, space separated, newest first */
    } cases[] = {
        {NULL, -1, 100, "A4 A3 B1 A2 A1 B0 A0"},
        {NULL, -1, 3, "A4 A3 B1"},
        {NULL, 4, 3, "A2 A1 B0"},
        {NULL, 1, 3, "A0"},
        {NULL, 0, 3, ""},
        {ORG_A, -1, 100, "A4 A3 A2 A1 A0"},
        {ORG_A, -1, 2, "A4 A3"},
        {ORG_A, 5, 2, "A2 A1"},
        {ORG_A, 2, 2, "A0"},
        {ORG_B, -1, 100, "B1 B0"},
        {ORG_B, 4, 100, "B0"},
        {ORG_B, 1, 100, ""},
        {ORG_C, -1, 100, ""},
        {NULL, -1, 0, ""},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        int64_t before = cases[c].before < 0 ? 0 : seq[cases[c].before];
        bg_assembly_row *list = NULL;
        size_t n = 99;
        assert_int_equal(
            bg_registry_assembly_list(r, cases[c].org, before, cases[c].limit, &list, &n), BG_OK);
        char got[128] = "";
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", list[i].id);
            if (i > 0)
                assert_true(list[i].seq < list[i - 1].seq);
            if (cases[c].org != NULL)
                assert_string_equal(list[i].organization_id, cases[c].org);
            assert_string_equal(list[i].files_json, "[{\"name\":\"a.jpg\",\"size\":10}]");
        }
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", c, got, cases[c].want);
        bg_registry_assembly_free(list, n);
    }
    bg_registry_close(r);
}

static void test_assembly_counts(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t counts[5];
    memset(counts, 0x7f, sizeof(counts));
    assert_int_equal(bg_registry_assembly_counts(r, counts), BG_OK);
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(counts[k], 0);

    /* Indexes as documented: uploading, executing, completed, failed, canceled. */
    static const char *const states[] = {"uploading", "executing", "completed", "failed",
                                         "canceled"};
    static const int per_state[] = {3, 0, 4, 1, 2};
    int seq = 0;
    for (size_t s = 0; s < N_ELEMS(states); s++)
        for (int k = 0; k < per_state[s]; k++) {
            char id[32];
            snprintf(id, sizeof(id), "asm-%d", seq++);
            (void)add_assembly(r, id, seq % 2 ? ORG_A : ORG_B, states[s], 1000);
        }
    assert_int_equal(bg_registry_assembly_counts(r, counts), BG_OK);
    for (size_t s = 0; s < N_ELEMS(states); s++)
        if (counts[s] != per_state[s])
            fail_msg("%s: %lld, want %d", states[s], (long long)counts[s], per_state[s]);

    /* One moves from uploading to executing. */
    bg_assembly_row a;
    assert_int_equal(bg_registry_assembly_get(r, "asm-0", NULL, &a), BG_OK);
    snprintf(a.state, sizeof(a.state), "executing");
    assert_int_equal(bg_registry_assembly_update(r, &a), BG_OK);
    bg_registry_assembly_clear(&a);
    assert_int_equal(bg_registry_assembly_counts(r, counts), BG_OK);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 4);
    assert_int_equal(counts[3], 1);
    assert_int_equal(counts[4], 2);
    bg_registry_close(r);
}

static void test_assembly_bytes(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    (void)add_assembly(r, "asm-1", ORG_A, "uploading", 1000);
    (void)add_assembly(r, "asm-2", ORG_A, "uploading", 1000);

    int64_t got = -1;
    assert_int_equal(bg_registry_assembly_bytes(r, "asm-1", &got), BG_OK);
    assert_int_equal(got, 0);
    got = -1;
    assert_int_equal(bg_registry_assembly_bytes(r, "no-such-assembly", &got), BG_OK);
    assert_int_equal(got, 0);

    static const struct {
        const char *id, *assembly;
        int index;
        int64_t offset;
    } ups[] = {
        {"u1", "asm-1", 0, 10},   {"u2", "asm-1", 1, 250},          {"u3", "asm-1", 2, 0},
        {"u4", "asm-2", 0, 7777}, {"u5", "asm-1", 3, 5000000000LL},
    };
    for (size_t i = 0; i < N_ELEMS(ups); i++) {
        bg_upload_row u = make_upload(ups[i].id, ups[i].assembly, ORG_A, ups[i].index);
        u.length = ups[i].offset + 1;
        u.offset = ups[i].offset;
        add_upload(r, &u);
    }
    assert_int_equal(bg_registry_assembly_bytes(r, "asm-1", &got), BG_OK);
    assert_int_equal(got, 10 + 250 + 0 + 5000000000LL);
    assert_int_equal(bg_registry_assembly_bytes(r, "asm-2", &got), BG_OK);
    assert_int_equal(got, 7777);

    /* Progress moves the sum. */
    bg_upload_row u;
    assert_int_equal(bg_registry_upload_get(r, "u3", NULL, &u), BG_OK);
    u.offset = 40;
    assert_int_equal(bg_registry_upload_progress(r, &u), BG_OK);
    assert_int_equal(bg_registry_assembly_bytes(r, "asm-1", &got), BG_OK);
    assert_int_equal(got, 10 + 250 + 40 + 5000000000LL);
    bg_registry_close(r);
}

/* ---- uploads -------------------------------------------------------------- */

static void assert_upload_equal(const bg_upload_row *got, const bg_upload_row *want)
{
    assert_string_equal(got->id, want->id);
    assert_string_equal(got->assembly_id, want->assembly_id);
    assert_string_equal(got->organization_id, want->organization_id);
    assert_string_equal(got->user_id, want->user_id);
    assert_int_equal(got->file_index, want->file_index);
    assert_string_equal(got->filename, want->filename);
    assert_string_equal(got->mime, want->mime);
    assert_string_equal(got->metadata, want->metadata);
    assert_string_equal(got->path, want->path);
    assert_int_equal(got->length, want->length);
    assert_int_equal(got->offset, want->offset);
    assert_int_equal(got->md5_state_len, want->md5_state_len);
    assert_memory_equal(got->md5_state, want->md5_state, want->md5_state_len);
    assert_string_equal(got->md5, want->md5);
    assert_int_equal(got->complete, want->complete);
    assert_int_equal(got->expires_ms, want->expires_ms);
    assert_int_equal(got->created_ms, want->created_ms);
    assert_int_equal(got->updated_ms, want->updated_ms);
}

static void test_upload_insert_get(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    (void)add_assembly(r, "asm-1", ORG_A, "uploading", 1000);
    (void)add_assembly(r, "asm-2", ORG_A, "uploading", 1000);

    bg_upload_row u = make_upload("0123456789abcdef0123456789abcdef", "asm-1", ORG_A, 0);
    u.offset = 17;
    assert_int_equal(bg_registry_upload_insert(r, &u), BG_OK);

    const char *const seers[] = {ORG_A, NULL};
    for (size_t i = 0; i < N_ELEMS(seers); i++) {
        bg_upload_row got;
        assert_int_equal(bg_registry_upload_get(r, u.id, seers[i], &got), BG_OK);
        assert_upload_equal(&got, &u);
    }
    bg_upload_row got;
    memset(&got, 0x5a, sizeof(got));
    assert_int_equal(bg_registry_upload_get(r, u.id, ORG_B, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_upload_get(r, "ffffffffffffffffffffffffffffffff", NULL, &got),
                     BG_ENOTFOUND);
    assert_int_equal(got.file_index, 0x5a5a5a5a);

    /* Conflicts: the id; the assembly's file_index; an unknown assembly. */
    static const struct {
        const char *id, *assembly;
        int index;
        bg_err want;
    } cases[] = {
        {"0123456789abcdef0123456789abcdef", "asm-2", 5, BG_ECONFLICT},
        {"11111111111111111111111111111111", "asm-1", 0, BG_ECONFLICT},
        {"22222222222222222222222222222222", "asm-missing", 0, BG_ECONFLICT},
        {"33333333333333333333333333333333", "asm-1", 1, BG_OK},
        {"44444444444444444444444444444444", "asm-2", 0, BG_OK},
        {"55555555555555555555555555555555", "asm-2", 0, BG_ECONFLICT},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        bg_upload_row v = make_upload(cases[i].id, cases[i].assembly, ORG_A, cases[i].index);
        bg_err e = bg_registry_upload_insert(r, &v);
        if (e != cases[i].want)
            fail_msg("case %zu: %d, want %d", i, e, cases[i].want);
    }
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM uploads"), 3);
    /* The original row is untouched by the refused inserts. */
    assert_int_equal(bg_registry_upload_get(r, u.id, ORG_A, &got), BG_OK);
    assert_upload_equal(&got, &u);
    bg_registry_close(r);
}

static void test_upload_progress(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_upload_row u = make_upload("u1", "asm-1", ORG_A, 0);
    u.length = 1 << 20;
    add_upload(r, &u);
    bg_upload_row other = make_upload("u2", "asm-1", ORG_A, 1);
    add_upload(r, &other);

    /* md5 states of several lengths, with NUL bytes and high bytes. */
    uint8_t full[BG_MD5_STATE_MAX];
    for (size_t i = 0; i < sizeof(full); i++)
        full[i] = (uint8_t)(255 - i * 7);
    uint8_t zeros[88];
    memset(zeros, 0, sizeof(zeros));
    zeros[87] = 0x80;
    static const uint8_t one_nul[1] = {0x00};
    static const uint8_t mixed[6] = {0xde, 0x00, 0xad, 0x00, 0x00, 0xef};
    const struct {
        const uint8_t *state;
        size_t len;
        int64_t offset;
    } steps[] = {
        {one_nul, sizeof(one_nul), 1}, {mixed, sizeof(mixed), 4096}, {zeros, sizeof(zeros), 65536},
        {full, sizeof(full), 999999},  {NULL, 0, 1000000},
    };
    for (size_t i = 0; i < N_ELEMS(steps); i++) {
        u.offset = steps[i].offset;
        memset(u.md5_state, 0xcc, sizeof(u.md5_state));
        if (steps[i].len > 0)
            memcpy(u.md5_state, steps[i].state, steps[i].len);
        u.md5_state_len = steps[i].len;
        u.updated_ms = T + (long long)i;
        assert_int_equal(bg_registry_upload_progress(r, &u), BG_OK);
        bg_upload_row got;
        assert_int_equal(bg_registry_upload_get(r, "u1", ORG_A, &got), BG_OK);
        if (got.md5_state_len != steps[i].len)
            fail_msg("step %zu: md5 state %zu bytes, want %zu", i, got.md5_state_len, steps[i].len);
        if (steps[i].len > 0)
            assert_memory_equal(got.md5_state, steps[i].state, steps[i].len);
        assert_int_equal(got.offset, steps[i].offset);
        assert_false(got.complete);
        assert_string_equal(got.md5, "");
        assert_int_equal(got.updated_ms, T + (long long)i);
    }

    /* The last chunk: complete with the digest. */
    u.offset = u.length;
    snprintf(u.md5, sizeof(u.md5), "9e107d9d372bb6826bd81d3542a419d6");
    u.complete = true;
    u.updated_ms = T + 100;
    assert_int_equal(bg_registry_upload_progress(r, &u), BG_OK);
    bg_upload_row got;
    assert_int_equal(bg_registry_upload_get(r, "u1", NULL, &got), BG_OK);
    assert_upload_equal(&got, &u);

    /* The other upload kept its own state. */
    assert_int_equal(bg_registry_upload_get(r, "u2", NULL, &got), BG_OK);
    assert_upload_equal(&got, &other);

    bg_upload_row ghost = make_upload("u-ghost", "asm-1", ORG_A, 9);
    assert_int_equal(bg_registry_upload_progress(r, &ghost), BG_ENOTFOUND);
    bg_registry_close(r);
}

static void test_upload_list_order(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    (void)add_assembly(r, "asm-empty", ORG_A, "uploading", 1000);
    /* Inserted out of order, another assembly's in between, and ids that
     * sort the other way round. */
    static const struct {
        const char *id, *assembly;
        int index;
    } ups[] = {{"u-m", "asm-1", 2},
               {"u-x", "asm-2", 0},
               {"u-z", "asm-1", 0},
               {"u-a", "asm-1", 10},
               {"u-y", "asm-1", 1}};
    for (size_t i = 0; i < N_ELEMS(ups); i++) {
        bg_upload_row u = make_upload(ups[i].id, ups[i].assembly, ORG_A, ups[i].index);
        add_upload(r, &u);
    }
    bg_upload_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_upload_list(r, "asm-1", &list, &n), BG_OK);
    static const char *const want[] = {"u-z", "u-y", "u-m", "u-a"};
    static const int want_index[] = {0, 1, 2, 10};
    assert_int_equal(n, N_ELEMS(want));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].id, want[i]);
        assert_int_equal(list[i].file_index, want_index[i]);
        assert_string_equal(list[i].assembly_id, "asm-1");
        assert_int_equal(list[i].md5_state_len, 4);
        assert_memory_equal(list[i].md5_state, "\x01\x00\x02\x00", 4);
    }
    free(list);

    assert_int_equal(bg_registry_upload_list(r, "asm-2", &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "u-x");
    free(list);

    const char *const none[] = {"asm-empty", "asm-missing"};
    for (size_t i = 0; i < N_ELEMS(none); i++) {
        list = (bg_upload_row *)&n; /* must be replaced */
        n = 99;
        assert_int_equal(bg_registry_upload_list(r, none[i], &list, &n), BG_OK);
        assert_int_equal(n, 0);
        assert_null(list);
    }
    bg_registry_close(r);
}

static void test_upload_expired(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    static const struct {
        const char *id;
        long long expires_ms;
        bool complete;
    } ups[] = {
        {"u-future", T + 1, false}, {"u-old", T - 5000, false},   {"u-done-old", T - 9000, true},
        {"u-now", T, false},        {"u-older", T - 7000, false}, {"u-done-now", T, true},
    };
    for (size_t i = 0; i < N_ELEMS(ups); i++) {
        bg_upload_row u = make_upload(ups[i].id, "asm-1", ORG_A, (int)i);
        u.expires_ms = ups[i].expires_ms;
        u.complete = ups[i].complete;
        add_upload(r, &u);
    }

    static const struct {
        long long now;
        size_t limit;
        const char *want;
    } cases[] = {
        {T, 100, "u-older u-old u-now"},
        {T, 2, "u-older u-old"},
        {T, 1, "u-older"},
        {T - 1, 100, "u-older u-old"},
        {T - 7001, 100, ""},
        {T + 1, 100, "u-older u-old u-now u-future"},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        bg_upload_row *list = NULL;
        size_t n = 99;
        assert_int_equal(bg_registry_upload_expired(r, cases[c].now, cases[c].limit, &list, &n),
                         BG_OK);
        char got[128] = "";
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", list[i].id);
            assert_false(list[i].complete);
        }
        free(list);
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", c, got, cases[c].want);
    }
    bg_registry_close(r);
}

static void test_upload_delete(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_upload_row u1 = make_upload("u1", "asm-1", ORG_A, 0);
    bg_upload_row u2 = make_upload("u2", "asm-1", ORG_A, 1);
    add_upload(r, &u1);
    add_upload(r, &u2);

    assert_int_equal(bg_registry_upload_delete(r, "u1"), BG_OK);
    bg_upload_row got;
    assert_int_equal(bg_registry_upload_get(r, "u1", NULL, &got), BG_ENOTFOUND);
    assert_int_equal(bg_registry_upload_delete(r, "u1"), BG_ENOTFOUND);
    assert_int_equal(bg_registry_upload_delete(r, "never"), BG_ENOTFOUND);
    assert_int_equal(bg_registry_upload_get(r, "u2", NULL, &got), BG_OK);
    assert_upload_equal(&got, &u2);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM uploads"), 1);

    /* The file_index is free again. */
    bg_upload_row again = make_upload("u3", "asm-1", ORG_A, 0);
    assert_int_equal(bg_registry_upload_insert(r, &again), BG_OK);
    bg_registry_close(r);
}

/* ---- jobs ----------------------------------------------------------------- */

static void test_job_insert_get(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    ensure_assembly(r, "asm-1", ORG_A);
    bg_job_row j;
    memset(&j, 0, sizeof(j));
    j.id = -7; /* assigned */
    snprintf(j.assembly_id, sizeof(j.assembly_id), "asm-1");
    snprintf(j.organization_id, sizeof(j.organization_id), ORG_A);
    j.run = 1;
    snprintf(j.state, sizeof(j.state), "queued");
    j.max_receive = 5;
    j.visible_at = T;
    j.created_ms = T - 1;
    j.updated_ms = T - 2;
    assert_int_equal(bg_registry_job_insert(r, &j), BG_OK);
    assert_true(j.id > 0);

    bg_job_row got = get_job(r, j.id);
    assert_int_equal(got.id, j.id);
    assert_string_equal(got.assembly_id, "asm-1");
    assert_string_equal(got.organization_id, ORG_A);
    assert_int_equal(got.run, 1);
    assert_string_equal(got.state, "queued");
    assert_int_equal(got.receive_count, 0);
    assert_int_equal(got.max_receive, 5);
    assert_int_equal(got.visible_at, T);
    assert_int_equal(got.created_ms, T - 1);
    assert_int_equal(got.updated_ms, T - 2);
    assert_string_equal(got.last_error, "");

    /* One job per run; an unknown assembly is refused. */
    int64_t first = j.id;
    assert_int_equal(bg_registry_job_insert(r, &j), BG_ECONFLICT);
    snprintf(j.assembly_id, sizeof(j.assembly_id), "asm-missing");
    assert_int_equal(bg_registry_job_insert(r, &j), BG_ECONFLICT);
    snprintf(j.assembly_id, sizeof(j.assembly_id), "asm-1");
    j.run = 2;
    assert_int_equal(bg_registry_job_insert(r, &j), BG_OK);
    assert_true(j.id > first);

    memset(&got, 0x5a, sizeof(got));
    assert_int_equal(bg_registry_job_get(r, j.id + 100, &got), BG_ENOTFOUND);
    assert_int_equal(got.run, 0x5a5a5a5a);
    bg_registry_close(r);
}

static void test_job_claim_nothing_due(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_job_row out;
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(claim(r, T, 1000, BIG_LIMIT, &out), BG_ENOTFOUND);
    assert_int_equal(out.id, 0x5a5a5a5a5a5a5a5aLL);

    /* Finished jobs never come back; waiting ones only once visible. */
    static const struct {
        const char *state;
        long long visible_at;
    } jobs[] = {
        {"done", 0},       {"dead", 0},       {"canceled", 0},
        {"queued", T + 1}, {"failed", T + 1}, {"running", T + 1},
    };
    int64_t ids[N_ELEMS(jobs)];
    for (size_t i = 0; i < N_ELEMS(jobs); i++) {
        char asm_id[32];
        snprintf(asm_id, sizeof(asm_id), "asm-%zu", i);
        ids[i] = add_job(r, asm_id, ORG_A, 1, jobs[i].state, jobs[i].visible_at);
    }
    assert_int_equal(claim(r, T, 1000, BIG_LIMIT, &out), BG_ENOTFOUND);
    assert_int_equal(out.id, 0x5a5a5a5a5a5a5a5aLL);
    for (size_t i = 0; i < N_ELEMS(jobs); i++) {
        bg_job_row j = get_job(r, ids[i]);
        assert_string_equal(j.state, jobs[i].state);
        assert_int_equal(j.receive_count, 0);
    }

    /* At visible_at the waiting ones are due (queued, failed, running). */
    int64_t claimed[3];
    for (size_t k = 0; k < 3; k++) {
        claimed[k] = claim_id(r, T + 1, BIG_LIMIT);
        assert_int_equal(claimed[k], ids[3 + k]);
    }
    assert_int_equal(claim_id(r, T + 1, BIG_LIMIT), 0);
    bg_registry_close(r);
}

static void test_job_claim_sets_lease(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t id = add_job(r, "asm-1", ORG_A, 1, "queued", T - 10);

    bg_job_row out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(claim(r, T, 60000, BIG_LIMIT, &out), BG_OK);
    assert_int_equal(out.id, id);
    assert_string_equal(out.assembly_id, "asm-1");
    assert_string_equal(out.organization_id, ORG_A);
    assert_int_equal(out.run, 1);
    assert_string_equal(out.state, "running");
    assert_int_equal(out.receive_count, 1);
    assert_int_equal(out.max_receive, 3);
    assert_int_equal(out.visible_at, T + 60000);
    assert_int_equal(out.updated_ms, T);
    assert_int_equal(out.created_ms, 500);

    /* The row says the same as the answer. */
    bg_job_row got = get_job(r, id);
    assert_string_equal(got.state, "running");
    assert_int_equal(got.receive_count, 1);
    assert_int_equal(got.visible_at, T + 60000);
    assert_int_equal(got.updated_ms, T);

    /* A live lease is not claimable, up to its last millisecond. */
    assert_int_equal(claim_id(r, T, BIG_LIMIT), 0);
    assert_int_equal(claim_id(r, T + 59999, BIG_LIMIT), 0);
    got = get_job(r, id);
    assert_int_equal(got.receive_count, 1);
    bg_registry_close(r);
}

static void test_job_claim_order(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    /* Different assemblies: the earliest visible_at first, then the
     * lowest id. */
    int64_t j300 = add_job(r, "asm-a", ORG_A, 1, "queued", T - 300);
    int64_t j100 = add_job(r, "asm-b", ORG_B, 1, "failed", T - 100);
    int64_t j500a = add_job(r, "asm-c", ORG_A, 1, "queued", T - 500);
    int64_t j500b = add_job(r, "asm-d", ORG_C, 1, "queued", T - 500);
    int64_t j200 = add_job(r, "asm-e", ORG_B, 1, "running", T - 200); /* expired lease */
    const int64_t want[] = {j500a, j500b, j300, j200, j100};
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        int64_t got = claim_id(r, T, BIG_LIMIT);
        if (got != want[i])
            fail_msg("claim %zu: job %lld, want %lld", i, (long long)got, (long long)want[i]);
    }
    assert_int_equal(claim_id(r, T, BIG_LIMIT), 0);
    bg_registry_close(r);
}

static void test_job_claim_fifo_per_assembly(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    /* The assembly's older job in each state, never due itself: does it
     * hold back the newer, due job? */
    static const struct {
        const char *first;
        bool blocks;
    } cases[] = {
        {"queued", true}, {"running", true}, {"failed", true},
        {"done", false},  {"dead", false},   {"canceled", false},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        char asm_id[32];
        snprintf(asm_id, sizeof(asm_id), "asm-fifo-%zu", c);
        (void)add_job(r, asm_id, ORG_A, 1, cases[c].first, FAR);
        int64_t second = add_job(r, asm_id, ORG_A, 2, "queued", 0);
        int64_t got = claim_id(r, T, BIG_LIMIT);
        if (got != (cases[c].blocks ? 0 : second))
            fail_msg("first job %s: claimed %lld", cases[c].first, (long long)got);
        if (got != 0)
            assert_int_equal(bg_registry_job_set(r, got, "done", T, "", T), BG_OK);
    }

    /* Through a job's life: the second waits until the first is over. */
    int64_t first = add_job(r, "asm-life", ORG_B, 1, "queued", T);
    int64_t second = add_job(r, "asm-life", ORG_B, 2, "queued", 0);
    assert_int_equal(claim_id(r, T, BIG_LIMIT), first); /* older first */
    assert_int_equal(claim_id(r, T, BIG_LIMIT), 0);     /* first running */
    assert_int_equal(bg_registry_job_set(r, first, "failed", T + 10, "io", T), BG_OK);
    assert_int_equal(claim_id(r, T + 5, BIG_LIMIT), 0);        /* first waits to retry */
    assert_int_equal(claim_id(r, T + 10, BIG_LIMIT), first);   /* its retry */
    assert_int_equal(claim_id(r, T + 1010, BIG_LIMIT), first); /* its lease ran out */
    assert_int_equal(bg_registry_job_set(r, first, "done", T + 1500, "", T + 1500), BG_OK);
    assert_int_equal(claim_id(r, T + 1500, BIG_LIMIT), second);
    bg_registry_close(r);
}

static void test_job_claim_parallel_assemblies(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t a1 = add_job(r, "asm-a", ORG_A, 1, "queued", 0);
    int64_t a2 = add_job(r, "asm-a", ORG_A, 2, "queued", 0);
    int64_t b1 = add_job(r, "asm-b", ORG_A, 1, "queued", 0);
    int64_t c1 = add_job(r, "asm-c", ORG_A, 1, "queued", 0);
    /* Three assemblies run side by side; asm-a's second run waits. */
    assert_int_equal(claim_id(r, T, 3), a1);
    assert_int_equal(claim_id(r, T, 3), b1);
    assert_int_equal(claim_id(r, T, 3), c1);
    assert_int_equal(claim_id(r, T, 3), 0);
    assert_int_equal(bg_registry_job_set(r, a1, "done", T, "", T), BG_OK);
    assert_int_equal(claim_id(r, T, 3), a2);
    bg_registry_close(r);
}

static void test_job_claim_org_limit(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t x1 = add_job(r, "asm-x1", ORG_A, 1, "queued", 0);
    int64_t x2 = add_job(r, "asm-x2", ORG_A, 1, "queued", 0);
    int64_t y1 = add_job(r, "asm-y1", ORG_B, 1, "queued", 0);

    /* Lease of x1 runs T .. T+1000. */
    assert_int_equal(claim_id(r, T, 1), x1);
    /* x2 is older than y1 but its organisation is at its limit. */
    assert_int_equal(claim_id(r, T, 1), y1);
    assert_int_equal(claim_id(r, T + 999, 1), 0);
    /* The same queue with a higher limit lets x2 through. */
    assert_int_equal(claim_id(r, T + 999, 2), x2);
    bg_registry_close(r);

    /* An expired lease does not count: x1's lease ran out at T+1000. */
    r = open_named(f, "expired.db");
    x1 = add_job(r, "asm-x1", ORG_A, 1, "queued", 0);
    x2 = add_job(r, "asm-x2", ORG_A, 1, "queued", 10);
    assert_int_equal(claim_id(r, T, 1), x1);
    assert_int_equal(claim_id(r, T + 999, 1), 0);
    assert_int_equal(claim_id(r, T + 1000, 1), x2);
    /* Now x2 holds the organisation's only slot: x1 (due again) waits. */
    assert_int_equal(claim_id(r, T + 1000, 1), 0);
    bg_job_row j = get_job(r, x1);
    assert_int_equal(j.receive_count, 1);
    /* Finished jobs hold no lease either. */
    assert_int_equal(bg_registry_job_set(r, x2, "done", T + 1001, "", T + 1001), BG_OK);
    assert_int_equal(claim_id(r, T + 1001, 1), x1);
    bg_registry_close(r);

    /* org_limit n: exactly n of the organisation's jobs run at once, each
     * in its own database so that nothing else interferes. */
    for (int limit = 1; limit <= 4; limit++) {
        char name[32];
        snprintf(name, sizeof(name), "limit-%d.db", limit);
        r = open_named(f, name);
        for (int k = 0; k < 5; k++) {
            char asm_id[32];
            snprintf(asm_id, sizeof(asm_id), "asm-%d", k);
            (void)add_job(r, asm_id, ORG_C, 1, "queued", k);
        }
        int claimed = 0;
        while (claim_id(r, T, limit) != 0)
            claimed++;
        if (claimed != limit)
            fail_msg("org_limit %d: %d claimed", limit, claimed);
        /* A job of another organisation is still claimed. */
        int64_t other = add_job(r, "asm-other", ORG_A, 1, "queued", 0);
        assert_int_equal(claim_id(r, T, limit), other);
        bg_registry_close(r);
    }
}

static void test_job_lease_expiry_and_extend(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t id = add_job(r, "asm-1", ORG_A, 1, "queued", 0);
    bg_job_row first, second;
    assert_int_equal(claim(r, T, 1000, BIG_LIMIT, &first), BG_OK);
    assert_int_equal(first.receive_count, 1);

    /* The holder extends its lease while it works. */
    assert_int_equal(bg_registry_job_extend(r, id, 1, T + 3000), BG_OK);
    assert_int_equal(get_job(r, id).visible_at, T + 3000);
    assert_int_equal(claim_id(r, T + 2999, BIG_LIMIT), 0);
    /* A wrong claim number is refused and changes nothing. */
    assert_int_equal(bg_registry_job_extend(r, id, 2, T + 9000), BG_ENOTFOUND);
    assert_int_equal(bg_registry_job_extend(r, id, 0, T + 9000), BG_ENOTFOUND);
    assert_int_equal(get_job(r, id).visible_at, T + 3000);

    /* The worker died: another claim takes the job over. */
    assert_int_equal(claim(r, T + 3000, 1000, BIG_LIMIT, &second), BG_OK);
    assert_int_equal(second.id, id);
    assert_int_equal(second.receive_count, 2);
    assert_string_equal(second.state, "running");
    assert_int_equal(second.visible_at, T + 4000);
    bg_job_row got = get_job(r, id);
    assert_int_equal(got.receive_count, 2);
    assert_int_equal(got.visible_at, T + 4000);

    /* The old holder's extend no longer applies; the new one's does. */
    assert_int_equal(bg_registry_job_extend(r, id, first.receive_count, T + 50000), BG_ENOTFOUND);
    assert_int_equal(get_job(r, id).visible_at, T + 4000);
    assert_int_equal(bg_registry_job_extend(r, id, second.receive_count, T + 5000), BG_OK);
    assert_int_equal(get_job(r, id).visible_at, T + 5000);

    /* Only a running job can be extended. */
    static const char *const not_running[] = {"queued", "failed", "done", "dead", "canceled"};
    for (size_t i = 0; i < N_ELEMS(not_running); i++) {
        assert_int_equal(bg_registry_job_set(r, id, not_running[i], T + 6000, "", T + 6000), BG_OK);
        bg_job_row j = get_job(r, id);
        bg_err e = bg_registry_job_extend(r, id, j.receive_count, T + 7000);
        if (e != BG_ENOTFOUND)
            fail_msg("extend in state %s: %d", not_running[i], e);
        assert_int_equal(get_job(r, id).visible_at, T + 6000);
    }
    assert_int_equal(bg_registry_job_extend(r, id + 1, 1, T), BG_ENOTFOUND);
    bg_registry_close(r);
}

static void test_job_failed_retry(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t id = add_job(r, "asm-1", ORG_A, 1, "queued", 0);
    assert_int_equal(claim_id(r, T, BIG_LIMIT), id);

    assert_int_equal(bg_registry_job_set(r, id, "failed", T + 16000, "disk full", T + 50), BG_OK);
    bg_job_row j = get_job(r, id);
    assert_string_equal(j.state, "failed");
    assert_int_equal(j.visible_at, T + 16000);
    assert_string_equal(j.last_error, "disk full");
    assert_int_equal(j.updated_ms, T + 50);
    assert_int_equal(j.receive_count, 1);

    /* Not before its time, even though its lease is long gone. */
    assert_int_equal(claim_id(r, T + 15999, BIG_LIMIT), 0);
    bg_job_row out;
    assert_int_equal(claim(r, T + 16000, 1000, BIG_LIMIT, &out), BG_OK);
    assert_int_equal(out.id, id);
    assert_int_equal(out.receive_count, 2);
    assert_string_equal(out.state, "running");

    /* A NULL error is stored as "". */
    assert_int_equal(bg_registry_job_set(r, id, "done", T + 17000, NULL, T + 17000), BG_OK);
    j = get_job(r, id);
    assert_string_equal(j.state, "done");
    assert_string_equal(j.last_error, "");
    assert_int_equal(bg_registry_job_set(r, id + 1, "done", T, NULL, T), BG_ENOTFOUND);
    bg_registry_close(r);
}

static void test_job_set_receive_count(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    /* Which moves reset receive_count (only dead -> queued, the requeue). */
    static const struct {
        const char *from, *to;
        int want;
    } cases[] = {
        {"dead", "queued", 0},    {"failed", "queued", 3}, {"canceled", "queued", 3},
        {"running", "queued", 3}, {"dead", "failed", 3},   {"dead", "dead", 3},
        {"running", "dead", 3},   {"done", "queued", 3},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        char asm_id[32];
        snprintf(asm_id, sizeof(asm_id), "asm-%zu", c);
        int64_t id = add_job(r, asm_id, ORG_A, 1, "queued", 0);
        /* Three claims, as after three failed attempts. */
        for (int k = 0; k < 3; k++) {
            assert_int_equal(claim_id(r, T + k * 10, BIG_LIMIT), id);
            assert_int_equal(bg_registry_job_set(r, id, "failed", 0, "x", T), BG_OK);
        }
        assert_int_equal(bg_registry_job_set(r, id, cases[c].from, FAR, "from", T), BG_OK);
        assert_int_equal(get_job(r, id).receive_count, 3);
        assert_int_equal(bg_registry_job_set(r, id, cases[c].to, FAR, "to", T), BG_OK);
        bg_job_row j = get_job(r, id);
        assert_string_equal(j.state, cases[c].to);
        assert_string_equal(j.last_error, "to");
        if (j.receive_count != cases[c].want)
            fail_msg("%s -> %s: receive_count %d, want %d", cases[c].from, cases[c].to,
                     j.receive_count, cases[c].want);
        /* Settle it so that it does not disturb the next case. */
        assert_int_equal(bg_registry_job_set(r, id, "canceled", FAR, "", T), BG_OK);
    }

    /* A requeued dead job starts counting again from one. */
    int64_t id = add_job(r, "asm-requeue", ORG_B, 1, "queued", 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(claim_id(r, T, BIG_LIMIT), id);
        assert_int_equal(bg_registry_job_set(r, id, "failed", 0, "x", T), BG_OK);
    }
    assert_int_equal(bg_registry_job_set(r, id, "dead", T, "lease expired 3 times", T), BG_OK);
    assert_int_equal(claim_id(r, T + 1, BIG_LIMIT), 0);
    bg_job_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_job_list(r, "dead", 0, 10, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, id);
    assert_string_equal(list[0].last_error, "lease expired 3 times");
    free(list);
    assert_int_equal(bg_registry_job_set(r, id, "queued", T + 2, "", T + 2), BG_OK);
    bg_job_row out;
    assert_int_equal(claim(r, T + 2, 1000, BIG_LIMIT, &out), BG_OK);
    assert_int_equal(out.id, id);
    assert_int_equal(out.receive_count, 1);
    bg_registry_close(r);
}

static void test_job_release(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t id = add_job(r, "asm-1", ORG_A, 1, "queued", 0);
    int64_t other = add_job(r, "asm-2", ORG_A, 1, "queued", 10);
    bg_job_row first;
    assert_int_equal(claim(r, T, 60000, 1, &first), BG_OK);
    assert_int_equal(first.id, id);
    /* The organisation's only slot is taken. */
    assert_int_equal(claim_id(r, T + 1, 1), 0);

    /* Only the current claim of a running job can be given back. */
    assert_int_equal(bg_registry_job_release(r, id, 2, T + 5), BG_ENOTFOUND);
    assert_int_equal(bg_registry_job_release(r, id, 0, T + 5), BG_ENOTFOUND);
    assert_int_equal(bg_registry_job_release(r, other, 0, T + 5), BG_ENOTFOUND);
    assert_int_equal(bg_registry_job_release(r, id + 100, 1, T + 5), BG_ENOTFOUND);
    bg_job_row j = get_job(r, id);
    assert_string_equal(j.state, "running");
    assert_int_equal(j.receive_count, 1);
    assert_int_equal(j.visible_at, T + 60000);

    /* Released: queued, due now, the claim not counted, the slot free. */
    assert_int_equal(bg_registry_job_release(r, id, first.receive_count, T + 5), BG_OK);
    j = get_job(r, id);
    assert_string_equal(j.state, "queued");
    assert_int_equal(j.receive_count, 0);
    assert_int_equal(j.visible_at, T + 5);
    assert_int_equal(j.updated_ms, T + 5);
    assert_int_equal(bg_registry_job_release(r, id, first.receive_count, T + 6), BG_ENOTFOUND);
    assert_int_equal(bg_registry_job_release(r, id, 0, T + 6), BG_ENOTFOUND);
    assert_int_equal(claim_id(r, T + 4, 1), other); /* id is not due before T+5 */
    assert_int_equal(bg_registry_job_set(r, other, "done", T + 6, "", T + 6), BG_OK);
    bg_job_row again;
    assert_int_equal(claim(r, T + 6, 1000, 1, &again), BG_OK);
    assert_int_equal(again.id, id);
    assert_int_equal(again.receive_count, 1);

    /* After a take-over, the old claimer cannot release the new claim. */
    bg_job_row third;
    assert_int_equal(claim(r, T + 1006, 1000, 1, &third), BG_OK);
    assert_int_equal(third.id, id);
    assert_int_equal(third.receive_count, 2);
    assert_int_equal(bg_registry_job_release(r, id, again.receive_count, T + 1007), BG_ENOTFOUND);
    assert_string_equal(get_job(r, id).state, "running");
    bg_registry_close(r);
}

static void test_job_active(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_job_row j;
    memset(&j, 0x5a, sizeof(j));
    assert_int_equal(bg_registry_job_active(r, "asm-1", &j), BG_ENOTFOUND);
    assert_int_equal(j.id, 0x5a5a5a5a5a5a5a5aLL);

    int64_t run1 = add_job(r, "asm-1", ORG_A, 1, "done", 0);
    int64_t run2 = add_job(r, "asm-1", ORG_A, 2, "queued", 0);
    (void)add_job(r, "asm-2", ORG_A, 1, "queued", 0);
    (void)run1;
    static const struct {
        const char *state;
        bool active;
    } cases[] = {
        {"queued", true}, {"running", true},   {"failed", true},
        {"done", false},  {"canceled", false}, {"dead", false},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        assert_int_equal(bg_registry_job_set(r, run2, cases[c].state, T, "", T), BG_OK);
        memset(&j, 0, sizeof(j));
        bg_err e = bg_registry_job_active(r, "asm-1", &j);
        if (e != (cases[c].active ? BG_OK : BG_ENOTFOUND))
            fail_msg("run 2 %s: %d", cases[c].state, e);
        if (cases[c].active) {
            assert_int_equal(j.id, run2);
            assert_int_equal(j.run, 2);
            assert_string_equal(j.state, cases[c].state);
            assert_string_equal(j.assembly_id, "asm-1");
        }
    }

    /* Two unfinished jobs: the older one. */
    int64_t run3 = add_job(r, "asm-1", ORG_A, 3, "failed", FAR);
    int64_t run4 = add_job(r, "asm-1", ORG_A, 4, "queued", 0);
    assert_int_equal(bg_registry_job_active(r, "asm-1", &j), BG_OK);
    assert_int_equal(j.id, run3);
    assert_int_equal(bg_registry_job_set(r, run3, "canceled", T, "", T), BG_OK);
    assert_int_equal(bg_registry_job_active(r, "asm-1", &j), BG_OK);
    assert_int_equal(j.id, run4);
    assert_int_equal(bg_registry_job_active(r, "asm-missing", &j), BG_ENOTFOUND);
    bg_registry_close(r);
}

static void test_job_list_and_counts(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    static const char *const states[] = {"queued", "running", "done", "failed", "dead", "canceled"};
    static const int per_state[] = {3, 1, 0, 2, 4, 1};
    int64_t counts[6];
    memset(counts, 0x7f, sizeof(counts));
    assert_int_equal(bg_registry_job_counts(r, counts), BG_OK);
    for (size_t k = 0; k < 6; k++)
        assert_int_equal(counts[k], 0);

    /* Round robin over the states so that ids of a state are spread. */
    int64_t ids[6][4];
    int seq = 0;
    for (int k = 0; k < 4; k++)
        for (size_t s = 0; s < N_ELEMS(states); s++) {
            if (k >= per_state[s])
                continue;
            char asm_id[32];
            snprintf(asm_id, sizeof(asm_id), "asm-%d", seq++);
            ids[s][k] = add_job(r, asm_id, k % 2 ? ORG_A : ORG_B, 1, states[s], FAR);
        }
    assert_int_equal(bg_registry_job_counts(r, counts), BG_OK);
    for (size_t s = 0; s < N_ELEMS(states); s++)
        if (counts[s] != per_state[s])
            fail_msg("%s: %lld, want %d", states[s], (long long)counts[s], per_state[s]);

    /* Every state, paged two at a time with the id cursor. */
    for (size_t s = 0; s < N_ELEMS(states); s++) {
        int64_t after = 0;
        int seen = 0;
        for (;;) {
            bg_job_row *list = NULL;
            size_t n = 99;
            assert_int_equal(bg_registry_job_list(r, states[s], after, 2, &list, &n), BG_OK);
            assert_true(n <= 2);
            for (size_t i = 0; i < n; i++) {
                assert_string_equal(list[i].state, states[s]);
                assert_int_equal(list[i].id, ids[s][seen]);
                seen++;
                after = list[i].id;
            }
            free(list);
            if (n < 2)
                break;
        }
        if (seen != per_state[s])
            fail_msg("%s: listed %d, want %d", states[s], seen, per_state[s]);
    }

    /* A cursor in the middle; a NULL state lists every job. */
    bg_job_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_job_list(r, "dead", ids[4][1], 10, &list, &n), BG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, ids[4][2]);
    assert_int_equal(list[1].id, ids[4][3]);
    free(list);
    assert_int_equal(bg_registry_job_list(r, NULL, 0, 100, &list, &n), BG_OK);
    assert_int_equal(n, seq);
    for (size_t i = 1; i < n; i++)
        assert_true(list[i].id > list[i - 1].id);
    free(list);
    assert_int_equal(bg_registry_job_list(r, "queued", ids[0][2], 10, &list, &n), BG_OK);
    assert_int_equal(n, 0);
    free(list);

    /* A claim moves a job from queued to running. */
    assert_int_equal(bg_registry_job_set(r, ids[0][0], "queued", 0, "", T), BG_OK);
    assert_int_equal(claim_id(r, T, BIG_LIMIT), ids[0][0]);
    assert_int_equal(bg_registry_job_counts(r, counts), BG_OK);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 2);
    bg_registry_close(r);
}

static void test_job_next_due(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    long long at = -1;
    assert_int_equal(bg_registry_job_next_due(r, &at), BG_OK);
    assert_int_equal(at, 0);

    /* Finished jobs never count, however early. */
    (void)add_job(r, "asm-done", ORG_A, 1, "done", 10);
    (void)add_job(r, "asm-dead", ORG_A, 1, "dead", 20);
    (void)add_job(r, "asm-canceled", ORG_A, 1, "canceled", 30);
    assert_int_equal(bg_registry_job_next_due(r, &at), BG_OK);
    assert_int_equal(at, 0);

    /* Then the earliest of the waiting ones, running leases included. */
    static const struct {
        const char *state;
        long long visible_at, want;
    } steps[] = {
        {"queued", T + 500, T + 500},
        {"failed", T + 300, T + 300},
        {"queued", T + 400, T + 300},
        {"running", T + 200, T + 200},
    };
    for (size_t i = 0; i < N_ELEMS(steps); i++) {
        char asm_id[32];
        snprintf(asm_id, sizeof(asm_id), "asm-%zu", i);
        (void)add_job(r, asm_id, ORG_A, 1, steps[i].state, steps[i].visible_at);
        assert_int_equal(bg_registry_job_next_due(r, &at), BG_OK);
        if (at != steps[i].want)
            fail_msg("step %zu: %lld, want %lld", i, at, steps[i].want);
    }
    bg_registry_close(r);
}

/* ---- results -------------------------------------------------------------- */

static bg_result_row make_result(const char *assembly_id, const char *step, int idx,
                                 const char *name)
{
    bg_result_row x;
    memset(&x, 0, sizeof(x));
    snprintf(x.assembly_id, sizeof(x.assembly_id), "%s", assembly_id);
    snprintf(x.step, sizeof(x.step), "%s", step);
    x.idx = idx;
    snprintf(x.id, sizeof(x.id), "r-%s-%d", step, idx);
    snprintf(x.name, sizeof(x.name), "%s", name);
    snprintf(x.path, sizeof(x.path), "outputs/main/%s/%s/%s", assembly_id, step, name);
    x.size = 1000 + idx;
    snprintf(x.mime, sizeof(x.mime), "image/jpeg");
    snprintf(x.original_id, sizeof(x.original_id), "u-%d", idx);
    x.meta_json = (char *)"{\"width\":640}";
    return x;
}

static void test_result_insert_list_delete(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    ensure_assembly(r, "asm-1", ORG_A);
    ensure_assembly(r, "asm-2", ORG_A);
    static const struct {
        const char *step;
        int idx;
    } ins[] = {{"thumb", 1}, {"encode", 2}, {"thumb", 0}, {"encode", 0}, {"encode", 10}};
    for (size_t i = 0; i < N_ELEMS(ins); i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s-%d.jpg", ins[i].step, ins[i].idx);
        bg_result_row x = make_result("asm-1", ins[i].step, ins[i].idx, name);
        assert_int_equal(bg_registry_result_insert(r, &x), BG_OK);
    }
    bg_result_row o = make_result("asm-2", "thumb", 0, "other.jpg");
    assert_int_equal(bg_registry_result_insert(r, &o), BG_OK);

    /* (assembly, step, idx) is the key: the same triple replaces. */
    bg_result_row again = make_result("asm-1", "encode", 2, "encode-2-retry.jpg");
    again.size = 4242;
    again.path[0] = '\0';
    again.meta_json = NULL;
    assert_int_equal(bg_registry_result_insert(r, &again), BG_OK);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM results"), 6);

    bg_result_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_result_list(r, "asm-1", &list, &n), BG_OK);
    static const struct {
        const char *step;
        int idx;
        const char *name;
    } want[] = {{"encode", 0, "encode-0.jpg"},
                {"encode", 2, "encode-2-retry.jpg"},
                {"encode", 10, "encode-10.jpg"},
                {"thumb", 0, "thumb-0.jpg"},
                {"thumb", 1, "thumb-1.jpg"}};
    assert_int_equal(n, N_ELEMS(want));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].assembly_id, "asm-1");
        assert_string_equal(list[i].step, want[i].step);
        assert_int_equal(list[i].idx, want[i].idx);
        assert_string_equal(list[i].name, want[i].name);
    }
    /* Every field of one plain and the replaced row. */
    assert_string_equal(list[0].id, "r-encode-0");
    assert_string_equal(list[0].path, "outputs/main/asm-1/encode/encode-0.jpg");
    assert_int_equal(list[0].size, 1000);
    assert_string_equal(list[0].mime, "image/jpeg");
    assert_string_equal(list[0].original_id, "u-0");
    assert_string_equal(list[0].meta_json, "{\"width\":640}");
    assert_int_equal(list[1].size, 4242);
    assert_string_equal(list[1].path, "");
    assert_string_equal(list[1].meta_json, "{}");
    bg_registry_result_free(list, n);

    /* Delete clears one assembly only; deleting nothing is fine. */
    assert_int_equal(bg_registry_result_delete(r, "asm-1"), BG_OK);
    assert_int_equal(bg_registry_result_list(r, "asm-1", &list, &n), BG_OK);
    assert_int_equal(n, 0);
    bg_registry_result_free(list, n);
    assert_int_equal(bg_registry_result_delete(r, "asm-1"), BG_OK);
    assert_int_equal(bg_registry_result_list(r, "asm-2", &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "other.jpg");
    bg_registry_result_free(list, n);

    /* A result needs its assembly. */
    bg_result_row orphan = make_result("asm-missing", "thumb", 0, "x.jpg");
    assert_int_equal(bg_registry_result_insert(r, &orphan), BG_ECONFLICT);
    bg_registry_close(r);
}

/* ---- events --------------------------------------------------------------- */

static int64_t add_event(bg_registry *r, const char *assembly_id, const char *org, const char *name,
                         const char *data, long long at)
{
    bg_event_row e;
    memset(&e, 0, sizeof(e));
    snprintf(e.assembly_id, sizeof(e.assembly_id), "%s", assembly_id);
    snprintf(e.organization_id, sizeof(e.organization_id), "%s", org);
    snprintf(e.name, sizeof(e.name), "%s", name);
    e.data = (char *)data;
    e.created_ms = at;
    assert_int_equal(bg_registry_event_add(r, &e), BG_OK);
    return e.id;
}

/* Event list as "index index …" of the ids in ids[] (for short messages). */
static void event_names(const bg_event_row *list, size_t n, const int64_t *ids, size_t nids,
                        char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nids && ids[k] != list[i].id)
            k++;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%zu", i ? " " : "", k);
        if (i > 0)
            assert_true(list[i].id > list[i - 1].id);
    }
}

static void test_events(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    /* Events 0..9; assemblies a1 and a2 of ORG_A, b1 of ORG_B. */
    static const struct {
        const char *assembly, *org, *name;
    } evs[] = {
        {"a1", ORG_A, "assembly:uploading"}, {"b1", ORG_B, "assembly:uploading"},
        {"a1", ORG_A, "upload:progress"},    {"a2", ORG_A, "assembly:uploading"},
        {"a1", ORG_A, "assembly:executing"}, {"b1", ORG_B, "assembly:executing"},
        {"a2", ORG_A, "step:started"},       {"a1", ORG_A, "step:progress"},
        {"b1", ORG_B, "assembly:completed"}, {"a1", ORG_A, "assembly:completed"},
    };
    int64_t ids[N_ELEMS(evs)];
    for (size_t i = 0; i < N_ELEMS(evs); i++) {
        char data[96];
        snprintf(data, sizeof(data), "{\"assembly_id\":\"%s\",\"n\":%zu}", evs[i].assembly, i);
        ids[i] = add_event(r, evs[i].assembly, evs[i].org, evs[i].name, data, T + (long long)i);
        if (i > 0 && ids[i] <= ids[i - 1])
            fail_msg("event %zu: id %lld after %lld", i, (long long)ids[i], (long long)ids[i - 1]);
    }

    /* after_k: index of the event whose id is the cursor, -1 = 0. */
    static const struct {
        const char *assembly, *org;
        int after_k;
        size_t limit;
        const char *want;
    } cases[] = {
        {"a1", NULL, -1, 100, "0 2 4 7 9"},
        {"a1", ORG_A, -1, 100, "0 2 4 7 9"},
        {"a1", ORG_A, 2, 100, "4 7 9"},
        {"a1", ORG_A, 2, 2, "4 7"},
        {"a1", ORG_A, 9, 100, ""},
        {"a1", ORG_B, -1, 100, ""}, /* another organisation's assembly */
        {"b1", ORG_B, 1, 100, "5 8"},
        {"missing", NULL, -1, 100, ""},
        {NULL, ORG_A, -1, 100, "0 2 3 4 6 7 9"},
        {NULL, ORG_A, 3, 3, "4 6 7"},
        {NULL, ORG_A, 7, 3, "9"},
        {NULL, ORG_B, -1, 2, "1 5"},
        {NULL, ORG_B, 5, 2, "8"},
        {NULL, ORG_C, -1, 100, ""},
        {NULL, NULL, -1, 100, "0 1 2 3 4 5 6 7 8 9"},
        {NULL, NULL, 4, 3, "5 6 7"},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        int64_t after = cases[c].after_k < 0 ? 0 : ids[cases[c].after_k];
        bg_event_row *list = NULL;
        size_t n = 99;
        assert_int_equal(bg_registry_event_list(r, cases[c].assembly, cases[c].org, after,
                                                cases[c].limit, &list, &n),
                         BG_OK);
        char got[64];
        event_names(list, n, ids, N_ELEMS(ids), got, sizeof(got));
        for (size_t i = 0; i < n; i++) {
            if (cases[c].assembly != NULL)
                assert_string_equal(list[i].assembly_id, cases[c].assembly);
            if (cases[c].org != NULL)
                assert_string_equal(list[i].organization_id, cases[c].org);
        }
        bg_registry_event_free(list, n);
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", c, got, cases[c].want);
    }

    /* The fields of one event; NULL data is stored as "{}". */
    bg_event_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_event_list(r, "a2", ORG_A, ids[3], 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, ids[6]);
    assert_string_equal(list[0].assembly_id, "a2");
    assert_string_equal(list[0].organization_id, ORG_A);
    assert_string_equal(list[0].name, "step:started");
    assert_string_equal(list[0].data, "{\"assembly_id\":\"a2\",\"n\":6}");
    assert_int_equal(list[0].created_ms, T + 6);
    bg_registry_event_free(list, n);
    int64_t last = add_event(r, "a2", ORG_A, "assembly:failed", NULL, T + 99);
    assert_true(last > ids[N_ELEMS(ids) - 1]);
    assert_int_equal(bg_registry_event_list(r, "a2", NULL, ids[9], 10, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, last);
    assert_string_equal(list[0].data, "{}");
    bg_registry_event_free(list, n);
    bg_registry_close(r);
}

/* ---- webhooks ------------------------------------------------------------- */

static int64_t add_webhook(bg_registry *r, const char *assembly_id, const char *org,
                           const char *msg_id, long long next_attempt_ms)
{
    bg_webhook_row w;
    memset(&w, 0, sizeof(w));
    snprintf(w.assembly_id, sizeof(w.assembly_id), "%s", assembly_id);
    snprintf(w.organization_id, sizeof(w.organization_id), "%s", org);
    snprintf(w.msg_id, sizeof(w.msg_id), "%s", msg_id);
    snprintf(w.url, sizeof(w.url), "https://hooks.example.org/%s", msg_id);
    w.payload = (char *)"{\"ok\":true}";
    w.next_attempt_ms = next_attempt_ms;
    w.created_ms = T - 1;
    assert_int_equal(bg_registry_webhook_add(r, &w), BG_OK);
    assert_true(w.id > 0);
    return w.id;
}

static void test_webhook_add_due(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t w_late = add_webhook(r, "a1", ORG_A, "msg_a1_1", T + 10);
    int64_t w_early = add_webhook(r, "a2", ORG_A, "msg_a2_1", T - 10);
    int64_t w_now = add_webhook(r, "a3", ORG_B, "msg_a3_1", T);
    int64_t w_now2 = add_webhook(r, "a4", ORG_B, "msg_a4_1", T);
    int64_t w_done = add_webhook(r, "a5", ORG_A, "msg_a5_1", T - 100);
    int64_t w_failed = add_webhook(r, "a6", ORG_A, "msg_a6_1", T - 100);
    int64_t w_gone = add_webhook(r, "a7", ORG_A, "msg_a7_1", T - 100);
    bg_webhook_attempt at = {.at_ms = T - 50, .status = 200};
    assert_int_equal(bg_registry_webhook_attempt(r, w_done, &at, "delivered", T - 100), BG_OK);
    at.status = 400;
    assert_int_equal(bg_registry_webhook_attempt(r, w_failed, &at, "failed", T - 100), BG_OK);
    at.status = 410;
    assert_int_equal(bg_registry_webhook_attempt(r, w_gone, &at, "gone", T - 100), BG_OK);

    /* A msg_id is delivered once, whatever else differs. */
    bg_webhook_row dup;
    memset(&dup, 0, sizeof(dup));
    snprintf(dup.assembly_id, sizeof(dup.assembly_id), "other");
    snprintf(dup.organization_id, sizeof(dup.organization_id), ORG_B);
    snprintf(dup.msg_id, sizeof(dup.msg_id), "msg_a1_1");
    snprintf(dup.url, sizeof(dup.url), "https://x.example");
    dup.next_attempt_ms = 1;
    assert_int_equal(bg_registry_webhook_add(r, &dup), BG_ECONFLICT);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM webhooks"), 7);

    static const struct {
        long long now;
        size_t limit;
        int n; /* the first n of order[] */
    } cases[] = {
        {T - 11, 100, 0}, {T - 10, 100, 1}, {T, 100, 3}, {T, 2, 2}, {T + 10, 100, 4},
    };
    const int64_t order[] = {w_early, w_now, w_now2, w_late}; /* by next_attempt, id */
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        bg_webhook_row *list = NULL;
        size_t n = 99;
        assert_int_equal(bg_registry_webhook_due(r, cases[c].now, cases[c].limit, &list, &n),
                         BG_OK);
        if (n != (size_t)cases[c].n)
            fail_msg("case %zu: %zu due, want %d", c, n, cases[c].n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(list[i].id, order[i]);
            assert_string_equal(list[i].state, "pending");
        }
        bg_registry_webhook_free(list, n);
    }

    /* The due rows carry their fields. */
    bg_webhook_row *list = NULL;
    size_t n = 0;
    assert_int_equal(bg_registry_webhook_due(r, T - 10, 1, &list, &n), BG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, w_early);
    assert_string_equal(list[0].assembly_id, "a2");
    assert_string_equal(list[0].organization_id, ORG_A);
    assert_string_equal(list[0].msg_id, "msg_a2_1");
    assert_string_equal(list[0].url, "https://hooks.example.org/msg_a2_1");
    assert_string_equal(list[0].payload, "{\"ok\":true}");
    assert_int_equal(list[0].attempts, 0);
    assert_int_equal(list[0].next_attempt_ms, T - 10);
    assert_int_equal(list[0].created_ms, T - 1);
    assert_int_equal(list[0].last_status, 0);
    assert_string_equal(list[0].last_error, "");
    bg_registry_webhook_free(list, n);
    bg_registry_close(r);
}

static void test_webhook_attempts_latest(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    bg_webhook_row w;
    bg_webhook_attempt *atts = NULL;
    size_t natt = 0;
    memset(&w, 0x5a, sizeof(w));
    assert_int_equal(bg_registry_webhook_latest(r, "a1", &w, &atts, &natt), BG_ENOTFOUND);
    assert_int_equal(w.id, 0x5a5a5a5a5a5a5a5aLL);

    int64_t first = add_webhook(r, "a1", ORG_A, "msg_a1_1", T);
    int64_t other = add_webhook(r, "a2", ORG_A, "msg_a2_1", T);

    /* No attempt yet. */
    assert_int_equal(bg_registry_webhook_latest(r, "a1", &w, &atts, &natt), BG_OK);
    assert_int_equal(w.id, first);
    assert_string_equal(w.state, "pending");
    assert_int_equal(w.attempts, 0);
    assert_int_equal(natt, 0);
    free(atts);
    free(w.payload);

    /* 503, a transport error, then 200. */
    static const struct {
        long long at;
        int status;
        const char *error, *state;
        long long next;
    } steps[] = {
        {T + 1, 503, "service unavailable", "pending", T + 5000},
        {T + 5001, 0, "connection refused", "pending", T + 305001},
        {T + 305002, 200, "", "delivered", T + 305002},
    };
    for (size_t i = 0; i < N_ELEMS(steps); i++) {
        bg_webhook_attempt a;
        memset(&a, 0, sizeof(a));
        a.at_ms = steps[i].at;
        a.status = steps[i].status;
        snprintf(a.error, sizeof(a.error), "%s", steps[i].error);
        assert_int_equal(bg_registry_webhook_attempt(r, first, &a, steps[i].state, steps[i].next),
                         BG_OK);
        assert_int_equal(bg_registry_webhook_latest(r, "a1", &w, &atts, &natt), BG_OK);
        assert_int_equal(w.id, first);
        assert_int_equal(w.attempts, (int)i + 1);
        assert_string_equal(w.state, steps[i].state);
        assert_int_equal(w.next_attempt_ms, steps[i].next);
        assert_int_equal(w.last_status, steps[i].status);
        assert_string_equal(w.last_error, steps[i].error);
        assert_string_equal(w.msg_id, "msg_a1_1");
        assert_string_equal(w.payload, "{\"ok\":true}");
        assert_int_equal(natt, i + 1);
        for (size_t k = 0; k <= i; k++) {
            assert_int_equal(atts[k].at_ms, steps[k].at);
            assert_int_equal(atts[k].status, steps[k].status);
            assert_string_equal(atts[k].error, steps[k].error);
        }
        free(atts);
        free(w.payload);
    }

    /* The other delivery is untouched. */
    assert_int_equal(bg_registry_webhook_latest(r, "a2", &w, &atts, &natt), BG_OK);
    assert_int_equal(w.id, other);
    assert_int_equal(w.attempts, 0);
    assert_int_equal(natt, 0);
    free(atts);
    free(w.payload);

    /* A replay's delivery is the newest: it is shown, with its own attempts. */
    int64_t second = add_webhook(r, "a1", ORG_A, "msg_a1_2", T + 400000);
    assert_int_equal(bg_registry_webhook_latest(r, "a1", &w, &atts, &natt), BG_OK);
    assert_int_equal(w.id, second);
    assert_string_equal(w.msg_id, "msg_a1_2");
    assert_string_equal(w.state, "pending");
    assert_int_equal(natt, 0);
    free(atts);
    free(w.payload);
    bg_webhook_attempt a = {.at_ms = T + 400001, .status = 410, .error = "gone"};
    assert_int_equal(bg_registry_webhook_attempt(r, second, &a, "gone", T + 400001), BG_OK);
    assert_int_equal(bg_registry_webhook_latest(r, "a1", &w, &atts, &natt), BG_OK);
    assert_int_equal(w.id, second);
    assert_string_equal(w.state, "gone");
    assert_int_equal(natt, 1);
    assert_int_equal(atts[0].status, 410);
    assert_string_equal(atts[0].error, "gone");
    free(atts);
    free(w.payload);
    assert_int_equal(query_int(r->db, "SELECT count(*) FROM webhook_attempts"), 4);
    bg_registry_close(r);
}

static void test_webhook_counts_next_due(void **state)
{
    fixture *f = *state;
    bg_registry *r = open_migrated(f);
    int64_t counts[4];
    long long at = -1;
    memset(counts, 0x7f, sizeof(counts));
    assert_int_equal(bg_registry_webhook_counts(r, counts), BG_OK);
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(counts[k], 0);
    assert_int_equal(bg_registry_webhook_next_due(r, &at), BG_OK);
    assert_int_equal(at, 0);

    /* Indexes as documented: pending, delivered, failed, gone. */
    static const struct {
        const char *final; /* NULL: stays pending */
        long long next;
    } hooks[] = {
        {NULL, T + 700},      {"delivered", T + 1}, {NULL, T + 300}, {"failed", T + 2},
        {"delivered", T + 3}, {"gone", T + 4},      {NULL, T + 500}, {"delivered", T + 5},
    };
    for (size_t i = 0; i < N_ELEMS(hooks); i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "msg_%zu", i);
        int64_t id = add_webhook(r, msg, ORG_A, msg, hooks[i].next);
        if (hooks[i].final != NULL) {
            bg_webhook_attempt a = {.at_ms = T, .status = 200};
            assert_int_equal(bg_registry_webhook_attempt(r, id, &a, hooks[i].final, hooks[i].next),
                             BG_OK);
        }
    }
    assert_int_equal(bg_registry_webhook_counts(r, counts), BG_OK);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 1);
    /* Only pending deliveries are due: T+1..T+5 are settled. */
    assert_int_equal(bg_registry_webhook_next_due(r, &at), BG_OK);
    assert_int_equal(at, T + 300);
    bg_registry_close(r);
}

int main(void)
{
#define TC(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        TC(test_migrate_fresh_has_media_tables),
        TC(test_assembly_insert_get),
        TC(test_assembly_update_round_trip),
        TC(test_assembly_list_paging),
        TC(test_assembly_counts),
        TC(test_assembly_bytes),
        TC(test_upload_insert_get),
        TC(test_upload_progress),
        TC(test_upload_list_order),
        TC(test_upload_expired),
        TC(test_upload_delete),
        TC(test_job_insert_get),
        TC(test_job_claim_nothing_due),
        TC(test_job_claim_sets_lease),
        TC(test_job_claim_order),
        TC(test_job_claim_fifo_per_assembly),
        TC(test_job_claim_parallel_assemblies),
        TC(test_job_claim_org_limit),
        TC(test_job_lease_expiry_and_extend),
        TC(test_job_failed_retry),
        TC(test_job_set_receive_count),
        TC(test_job_release),
        TC(test_job_active),
        TC(test_job_list_and_counts),
        TC(test_job_next_due),
        TC(test_result_insert_list_delete),
        TC(test_events),
        TC(test_webhook_add_due),
        TC(test_webhook_attempts_latest),
        TC(test_webhook_counts_next_due),
    };
#undef TC
    return cmocka_run_group_tests(tests, NULL, NULL);
}
