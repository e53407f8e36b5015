/* registry/fault.c — the fault-injection test hook: a write statement,
 * BEGIN or COMMIT fails, on average once in N, as if SQLite had answered
 * SQLITE_BUSY or SQLITE_IOERR, without running. Off unless a test turns it on
 * (BRANCHGATE_TEST_FAULTS, read by node/node.c); the fault tests use it to
 * prove that a failed write leaves no partial state and that nothing
 * acknowledged is lost (docs/testing.md). */
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/parse.h"

static unsigned busy_every, ioerr_every;
static unsigned long long points;

void bg_registry_faults_set(unsigned busy, unsigned ioerr)
{
    __atomic_store_n(&busy_every, busy, __ATOMIC_RELAXED);
    __atomic_store_n(&ioerr_every, ioerr, __ATOMIC_RELAXED);
}

bool bg_registry_faults_parse(const char *spec, unsigned *busy, unsigned *ioerr)
{
    *busy = *ioerr = 0;
    char buf[128];
    if (spec == NULL || strlen(spec) >= sizeof(buf))
        return false;
    strcpy(buf, spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int64_t v = 0;
        if (eq == NULL || bg_parse_i64(eq + 1, strlen(eq + 1), 2, 1000000, &v) != BG_OK)
            return false;
        *eq = '\0';
        if (strcmp(tok, "busy_every") == 0)
            *busy = (unsigned)v;
        else if (strcmp(tok, "ioerr_every") == 0)
            *ioerr = (unsigned)v;
        else
            return false;
    }
    return *busy != 0 || *ioerr != 0;
}

/* xorshift64 on one shared state: the sequence is fixed for a fixed order
 * of calls, and any order is a fair draw. */
static unsigned long long draw(void)
{
    unsigned long long x = __atomic_load_n(&points, __ATOMIC_RELAXED), y;
    do {
        y = x ? x : 0x9E3779B97F4A7C15ull;
        y ^= y << 13;
        y ^= y >> 7;
        y ^= y << 17;
    } while (!__atomic_compare_exchange_n(&points, &x, y, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return y;
}

int bg_reg_fault(bg_registry *r)
{
    unsigned busy = __atomic_load_n(&busy_every, __ATOMIC_RELAXED);
    unsigned ioerr = __atomic_load_n(&ioerr_every, __ATOMIC_RELAXED);
    if (busy == 0 && ioerr == 0)
        return SQLITE_OK;
    unsigned long long d = draw();
    int rc = SQLITE_OK;
    if (ioerr != 0 && (d >> 8) % ioerr == 0)
        rc = SQLITE_IOERR;
    else if (busy != 0 && (d >> 32) % busy == 0)
        rc = SQLITE_BUSY;
    if (rc != SQLITE_OK)
        snprintf(r->errmsg, sizeof(r->errmsg), "injected fault: %s", sqlite3_errstr(rc));
    return rc;
}
