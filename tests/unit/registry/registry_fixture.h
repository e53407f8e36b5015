/*
 * tests/unit/registry/registry_fixture.h — the per-test temp directory and
 * database path shared by the registry unit tests (include after cmocka.h).
 */
#ifndef BG_TEST_REGISTRY_FIXTURE_H
#define BG_TEST_REGISTRY_FIXTURE_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "../testutil.h"

typedef struct fixture {
    char dir[64];
    char db[128];
} fixture;

/* cmocka setup: a fresh mkdtemp directory; f->db is test.db inside it. */
static inline int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bg-registry-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/test.db", f->dir);
    *state = f;
    return 0;
}

/* cmocka teardown: removes the directory. */
static inline int teardown(void **state)
{
    fixture *f = *state;
    int rc = rm_tree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* First column of the first row of sql as an integer; fails the test
 * otherwise. */
static inline long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#endif
