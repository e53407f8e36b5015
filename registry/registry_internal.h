/*
 * registry/registry_internal.h — shared by the registry's .c files only.
 */
#ifndef BG_REGISTRY_INTERNAL_H
#define BG_REGISTRY_INTERNAL_H

#include <sqlite3.h>

#include "registry.h"

#define BG_STMT_CACHE 160

struct bg_registry {
    sqlite3 *db;
    char errmsg[256];
    /* Prepared statements keyed by the address of their SQL text: every
     * query is a static string, so the pointer identifies it. */
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[BG_STMT_CACHE];
    int ncache;
};

/* Returns the cached statement for sql, reset and with bindings cleared,
 * or NULL (error recorded) when it cannot be prepared. */
sqlite3_stmt *bg_reg_stmt(bg_registry *r, const char *sql);

/* Translates an SQLite result code into bg_err once, recording the
 * message on the handle. SQLITE_OK/ROW/DONE map to BG_OK. */
bg_err bg_reg_err(bg_registry *r, int rc);

/* Steps a statement that returns no rows; maps the result. */
bg_err bg_reg_exec_stmt(bg_registry *r, sqlite3_stmt *st);
/* The fault hook (fault.c): SQLITE_OK, or the code to fail the current
 * write, BEGIN or COMMIT with (its message in r->errmsg). */
int bg_reg_fault(bg_registry *r);

/* Steps st to the end, reading each row into a growing array of elements
 * of `size` bytes with read(st, element). On success *out (malloc'ed, NULL
 * when empty) and *n are set; on failure nothing is returned and the
 * elements read so far are released with clear(element) when given. The
 * statement is reset either way. */
bg_err bg_reg_collect(bg_registry *r, sqlite3_stmt *st, size_t size,
                      void (*read)(sqlite3_stmt *st, void *elem), void (*clear)(void *elem),
                      void **out, size_t *n);

/* Steps st once: a row is read into out with read(); no row is
 * BG_ENOTFOUND. The statement is reset either way. */
bg_err bg_reg_one(bg_registry *r, sqlite3_stmt *st, void (*read)(sqlite3_stmt *st, void *elem),
                  void *out);

/* Copies a text column into a fixed buffer (truncating safely). */
void bg_reg_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap);

#endif
