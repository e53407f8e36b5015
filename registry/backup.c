/* registry/backup.c — an online copy of a branch's database with SQLite's
 * backup API (sqlite3_backup_*), for `branchgate backup`. It is safe while
 * the branch runs: in WAL mode the copy is one read transaction, which
 * never blocks the branch's writers, and it sees one consistent state.
 * The copy is written under a temporary name, switched to rollback
 * journalling (so it is one self-contained file), checked with PRAGMA
 * integrity_check, synced and only then renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

/* How long a step waits for a lock before the backup gives up. */
#define LOCK_WAIT_MS 10000

static bg_err map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return BG_EBUSY;
    case SQLITE_NOMEM: return BG_ENOMEM;
    case SQLITE_NOTADB: return BG_EINVAL;
    case SQLITE_CANTOPEN: return BG_ENOTFOUND;
    default: return BG_EIO;
    }
}

/* Copies every page of src into dst, retrying while a lock is held. */
static int copy_pages(sqlite3 *src, sqlite3 *dst)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL)
        return sqlite3_errcode(dst);
    int rc, waited = 0;
    for (;;) {
        rc = sqlite3_backup_step(b, -1);
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waited < LOCK_WAIT_MS) {
            sqlite3_sleep(50);
            waited += 50;
        } else if (rc != SQLITE_OK) {
            break; /* SQLITE_DONE, or an error */
        }
    }
    int frc = sqlite3_backup_finish(b);
    return rc == SQLITE_DONE ? frc : rc;
}

/* journal_mode=DELETE, then integrity_check must answer the single row "ok". */
static bg_err finish_copy(sqlite3 *dst, char *err, size_t cap)
{
    int rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return bg_errf(err, cap, map_rc(rc), "cannot finish the copy: %s", sqlite3_errmsg(dst));
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL);
    bg_err e = BG_OK;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t == NULL || strcmp((const char *)t, "ok") != 0)
            e = bg_errf(err, cap, BG_EIO, "the copy fails its integrity check: %s",
                     t ? (const char *)t : "?");
    } else {
        e = bg_errf(err, cap, BG_EIO, "cannot check the copy: %s", sqlite3_errmsg(dst));
    }
    sqlite3_finalize(st);
    return e;
}

static bg_err fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return BG_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? BG_OK : BG_EIO;
}

/* The directory of path, for syncing the rename (best effort). */
static void fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
    fsync_path(dir);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Opens the live database without creating it. */
static bg_err open_source(const char *db_path, sqlite3 **src, char *err, size_t cap)
{
    int rc = sqlite3_open_v2(db_path, src, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK)
        return bg_errf(err, cap, map_rc(rc), "cannot open %s: %s", db_path,
                    *src ? sqlite3_errmsg(*src) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(*src, LOCK_WAIT_MS);
    return BG_OK;
}

/* Creates tmp (mode 0600, since the database holds sealed keys and token
 * hashes) and opens it. */
static bg_err open_dest(const char *tmp, sqlite3 **dst, char *err, size_t cap)
{
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return bg_errf(err, cap, BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    close(fd);
    int rc = sqlite3_open_v2(tmp, dst, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK)
        return bg_errf(err, cap, map_rc(rc), "cannot open %s: %s", tmp,
                    *dst ? sqlite3_errmsg(*dst) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(*dst, LOCK_WAIT_MS);
    return BG_OK;
}

bg_err bg_registry_backup(const char *db_path, const char *dest_path, char *err, size_t errcap)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.part", dest_path) >= sizeof(tmp))
        return bg_errf(err, errcap, BG_EINVAL, "the destination path is too long");
    if (same_file(db_path, dest_path))
        return bg_errf(err, errcap, BG_EINVAL, "the destination is the database itself");
    sqlite3 *src = NULL, *dst = NULL;
    bg_err e = open_source(db_path, &src, err, errcap);
    if (e == BG_OK)
        e = open_dest(tmp, &dst, err, errcap);
    if (e == BG_OK) {
        int rc = copy_pages(src, dst);
        if (rc != SQLITE_OK)
            e = bg_errf(err, errcap, map_rc(rc), "the copy failed: %s", sqlite3_errstr(rc));
    }
    if (e == BG_OK)
        e = finish_copy(dst, err, errcap);
    sqlite3_close_v2(src);
    if (sqlite3_close_v2(dst) != SQLITE_OK && e == BG_OK)
        e = bg_errf(err, errcap, BG_EIO, "cannot close %s", tmp);
    if (e == BG_OK && fsync_path(tmp) != BG_OK)
        e = bg_errf(err, errcap, BG_EIO, "cannot sync %s", tmp);
    if (e == BG_OK && rename(tmp, dest_path) != 0)
        e = bg_errf(err, errcap, BG_EIO, "cannot rename %s to %s: %s", tmp, dest_path,
                 strerror(errno));
    if (e == BG_OK) {
        fsync_dir_of(dest_path);
        return BG_OK;
    }
    static const char *const sidecars[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
        char p[4300];
        snprintf(p, sizeof(p), "%s%s", tmp, sidecars[i]);
        unlink(p);
    }
    return e;
}
