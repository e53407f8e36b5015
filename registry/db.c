#include "registry_internal.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "proto/log.h"
#include "proto/mem.h"

/* Numbered migrations: index i holds the step from version i to i+1.
 * Never edit a released step; append a new one. */
static const char *const migrations[] = {
    /* 1: the foundation — admin tokens, audit log, key/value metadata */
    "CREATE TABLE admin_tokens ("
    "  id TEXT PRIMARY KEY,"
    "  label TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE audit_log ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '{}'"
    ");"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ");",
    /* 2: peer branches — keys only sealed and as keyed hashes */
    "CREATE TABLE branches ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  organization_id TEXT NOT NULL DEFAULT '',"
    "  branch_name TEXT NOT NULL,"
    "  branch_url TEXT NOT NULL,"
    "  branch_type TEXT NOT NULL CHECK (branch_type IN ('top_branch','master_branch')),"
    "  key_sealed BLOB NOT NULL,"
    "  key_hash BLOB NOT NULL,"
    "  ssl_certificate TEXT,"
    "  spki_pin TEXT NOT NULL DEFAULT '',"
    "  is_active INTEGER NOT NULL DEFAULT 1,"
    "  verified INTEGER NOT NULL DEFAULT 0,"
    "  last_ping_ms INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT 'unknown',"
    "  rtt_us INTEGER NOT NULL DEFAULT 0,"
    "  clock_skew_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (organization_id, branch_name)"
    ");"
    "CREATE INDEX branches_url ON branches(branch_url);",
    /* 3: organisations, users, the outbox, idempotency keys, shares */
    "CREATE TABLE organizations ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  parent_id TEXT,"
    "  home_branch TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  webhook_secret BLOB,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL REFERENCES organizations(id),"
    "  email TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('owner','admin','member','viewer')),"
    "  home_branch TEXT NOT NULL,"
    "  password_hash TEXT,"
    "  version INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (organization_id, email)"
    ");"
    "CREATE TABLE org_shares ("
    "  organization_id TEXT NOT NULL REFERENCES organizations(id),"
    "  branch_id INTEGER NOT NULL REFERENCES branches(id),"
    "  PRIMARY KEY (organization_id, branch_id)"
    ");"
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  branch_id INTEGER NOT NULL REFERENCES branches(id),"
    "  kind TEXT NOT NULL,"
    "  organization_id TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  idempotency_key TEXT NOT NULL UNIQUE,"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE INDEX outbox_due ON outbox(state, branch_id, id);"
    "CREATE TABLE idempotency ("
    "  peer_id INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  body TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (peer_id, key)"
    ");"
    "CREATE INDEX idempotency_age ON idempotency(created_ms);"
    "CREATE TABLE shared_resources ("
    "  organization_id TEXT NOT NULL REFERENCES organizations(id),"
    "  resource_type TEXT NOT NULL,"
    "  resource_id TEXT NOT NULL,"
    "  from_branch TEXT NOT NULL,"
    "  permissions TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  payload TEXT NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (organization_id, resource_type, resource_id)"
    ");",
    /* 4: licenses, validation receipts, peers' public signing keys */
    "CREATE TABLE licenses ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL,"
    "  token TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','revoked')),"
    "  not_before INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX licenses_org ON licenses(organization_id, status);"
    "CREATE TABLE license_receipts ("
    "  key_hash BLOB NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  receipt TEXT NOT NULL,"
    "  checked_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (key_hash, domain)"
    ");"
    "ALTER TABLE branches ADD COLUMN public_key BLOB;",
    /* 5: the media pipeline — assemblies, tus uploads, jobs, results,
     * stored progress events, webhook deliveries and their attempts */
    "CREATE TABLE assemblies ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  template_id TEXT NOT NULL,"
    "  template TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('uploading','executing','completed','failed','canceled')),"
    "  error TEXT NOT NULL DEFAULT '',"
    "  message TEXT NOT NULL DEFAULT '',"
    "  failed_step TEXT NOT NULL DEFAULT '',"
    "  retryable INTEGER NOT NULL DEFAULT 0,"
    "  files TEXT NOT NULL,"
    "  fields TEXT NOT NULL DEFAULT '{}',"
    "  notify_url TEXT NOT NULL DEFAULT '',"
    "  bytes_expected INTEGER NOT NULL,"
    "  run INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  queued_ms INTEGER NOT NULL DEFAULT 0,"
    "  execution_start_ms INTEGER NOT NULL DEFAULT 0,"
    "  execution_end_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX assemblies_org ON assemblies(organization_id);"
    "CREATE TABLE uploads ("
    "  id TEXT PRIMARY KEY,"
    "  assembly_id TEXT NOT NULL REFERENCES assemblies(id),"
    "  organization_id TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  file_index INTEGER NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  mime TEXT NOT NULL DEFAULT '',"
    "  metadata TEXT NOT NULL DEFAULT '',"
    "  path TEXT NOT NULL,"
    "  length INTEGER NOT NULL,"
    "  offset INTEGER NOT NULL DEFAULT 0,"
    "  md5_state BLOB NOT NULL,"
    "  md5 TEXT NOT NULL DEFAULT '',"
    "  complete INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (assembly_id, file_index)"
    ");"
    "CREATE INDEX uploads_expiry ON uploads(complete, expires_ms);"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  assembly_id TEXT NOT NULL REFERENCES assemblies(id),"
    "  organization_id TEXT NOT NULL,"
    "  run INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('queued','running','done','failed','dead','canceled')),"
    "  receive_count INTEGER NOT NULL DEFAULT 0,"
    "  max_receive INTEGER NOT NULL,"
    "  visible_at INTEGER NOT NULL,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (assembly_id, run)"
    ");"
    "CREATE INDEX jobs_due ON jobs(state, visible_at);"
    "CREATE INDEX jobs_assembly ON jobs(assembly_id, id);"
    "CREATE INDEX jobs_unfinished ON jobs(assembly_id, id)"
    "  WHERE state IN ('queued','failed','running');"
    "CREATE INDEX jobs_waiting ON jobs(visible_at, id)"
    "  WHERE state IN ('queued','failed','running');"
    "CREATE INDEX jobs_org ON jobs(organization_id, state, visible_at);"
    "CREATE TABLE results ("
    "  assembly_id TEXT NOT NULL REFERENCES assemblies(id),"
    "  step TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  path TEXT NOT NULL DEFAULT '',"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  mime TEXT NOT NULL DEFAULT '',"
    "  original_id TEXT NOT NULL DEFAULT '',"
    "  meta TEXT NOT NULL DEFAULT '{}',"
    "  PRIMARY KEY (assembly_id, step, idx)"
    ");"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  assembly_id TEXT NOT NULL,"
    "  organization_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX events_assembly ON events(assembly_id, id);"
    "CREATE TABLE webhooks ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  assembly_id TEXT NOT NULL,"
    "  organization_id TEXT NOT NULL,"
    "  msg_id TEXT NOT NULL UNIQUE,"
    "  url TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
    "    ('pending','delivered','failed','gone')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX webhooks_due ON webhooks(state, next_attempt_ms);"
    "CREATE INDEX webhooks_assembly ON webhooks(assembly_id, id);"
    "CREATE TABLE webhook_attempts ("
    "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id),"
    "  at_ms INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  error TEXT NOT NULL"
    ");"
    "CREATE INDEX webhook_attempts_of ON webhook_attempts(webhook_id);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int bg_registry_schema_latest(void)
{
    return NMIGRATIONS;
}

const char *bg_registry_version(void)
{
    return sqlite3_libversion();
}

static bg_err map_rc(int rc);

bg_err bg_reg_err(bg_registry *r, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return BG_OK;
    default:
        break;
    }
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
    return map_rc(rc);
}

static bg_err map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return BG_EBUSY;
    case SQLITE_CONSTRAINT:
        return BG_ECONFLICT;
    case SQLITE_NOMEM:
        return BG_ENOMEM;
    case SQLITE_TOOBIG:
        return BG_ETOOBIG;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_ERROR:
        return BG_EINTERNAL;
    default:
        return BG_EIO;
    }
}

sqlite3_stmt *bg_reg_stmt(bg_registry *r, const char *sql)
{
    for (int i = 0; i < r->ncache; i++) {
        if (r->cache[i].sql == sql) {
            sqlite3_reset(r->cache[i].stmt);
            sqlite3_clear_bindings(r->cache[i].stmt);
            return r->cache[i].stmt;
        }
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        bg_reg_err(r, rc);
        bg_log(BG_LOG_ERROR, NULL, "registry: cannot prepare statement: %s", r->errmsg);
        return NULL;
    }
    if (r->ncache < BG_STMT_CACHE) {
        r->cache[r->ncache].sql = sql;
        r->cache[r->ncache].stmt = st;
        r->ncache++;
    } else {
        /* The cache is sized for every static query; running out is a
         * programming error, but the statement still works uncached. */
        bg_log(BG_LOG_WARN, NULL, "registry: statement cache full");
    }
    return st;
}

bg_err bg_reg_exec_stmt(bg_registry *r, sqlite3_stmt *st)
{
    int rc = bg_reg_fault(r);
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        return map_rc(rc);
    }
    rc = sqlite3_step(st);
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e;
}

bg_err bg_reg_one(bg_registry *r, sqlite3_stmt *st, void (*read)(sqlite3_stmt *st, void *elem),
                  void *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read(st, out);
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    return e == BG_OK && rc != SQLITE_ROW ? BG_ENOTFOUND : e;
}

bg_err bg_reg_collect(bg_registry *r, sqlite3_stmt *st, size_t size,
                      void (*read)(sqlite3_stmt *st, void *elem), void (*clear)(void *elem),
                      void **out, size_t *n)
{
    char *arr = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            arr = bg_xrealloc(arr, cap * size);
        }
        read(st, arr + len * size);
        len++;
    }
    bg_err e = bg_reg_err(r, rc);
    sqlite3_reset(st);
    if (e != BG_OK) {
        for (size_t i = 0; clear != NULL && i < len; i++)
            clear(arr + i * size);
        free(arr);
        return e;
    }
    *out = arr;
    *n = len;
    return BG_OK;
}

void bg_reg_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    bg_strlcpy(dst, t ? (const char *)t : "", cap);
}

static bg_err exec(bg_registry *r, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        bg_err e = bg_reg_err(r, rc);
        if (msg != NULL)
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg);
        sqlite3_free(msg);
        return e;
    }
    return BG_OK;
}

bg_err bg_registry_open(const char *path, const bg_registry_opts *opts, bg_registry **out)
{
    bg_registry_opts def = {.busy_timeout_ms = 5000, .synchronous_full = false};
    if (opts == NULL)
        opts = &def;
    bg_registry *r = bg_xcalloc(1, sizeof(*r));
    int rc = sqlite3_open_v2(path, &r->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    bg_err e = bg_reg_err(r, rc);
    if (e != BG_OK)
        goto fail;
    sqlite3_busy_timeout(r->db, opts->busy_timeout_ms);
    sqlite3_extended_result_codes(r->db, 1);
    e = exec(r, "PRAGMA journal_mode=WAL");
    if (e == BG_OK)
        e = exec(r, opts->synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    if (e == BG_OK)
        e = exec(r, "PRAGMA foreign_keys=ON");
    if (e != BG_OK)
        goto fail;
    *out = r;
    return BG_OK;
fail:
    bg_log(BG_LOG_ERROR, NULL, "registry: cannot open database: %s", r->errmsg);
    bg_registry_close(r);
    return e == BG_EINTERNAL ? BG_EIO : e;
}

void bg_registry_close(bg_registry *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->ncache; i++)
        sqlite3_finalize(r->cache[i].stmt);
    sqlite3_close_v2(r->db);
    free(r);
}

static bg_err user_version(bg_registry *r, int *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    bg_err e = bg_reg_err(r, rc);
    sqlite3_finalize(st);
    return e;
}

bg_err bg_registry_migrate(bg_registry *r, int *from, int *to)
{
    int v = 0;
    bg_err e = user_version(r, &v);
    if (e != BG_OK)
        return e;
    if (from != NULL)
        *from = v;
    if (v > NMIGRATIONS) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "database schema %d is newer than this program's %d", v, NMIGRATIONS);
        return BG_EINVAL;
    }
    for (; v < NMIGRATIONS; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version=%d", v + 1);
        e = bg_registry_begin(r);
        if (e == BG_OK)
            e = exec(r, migrations[v]);
        if (e == BG_OK)
            e = exec(r, bump);
        if (e == BG_OK)
            e = bg_registry_commit(r);
        if (e != BG_OK) {
            bg_registry_rollback(r);
            return e;
        }
        bg_log(BG_LOG_INFO, NULL, "registry: migrated schema to version %d", v + 1);
    }
    if (to != NULL)
        *to = v;
    return BG_OK;
}

bg_err bg_registry_ping(bg_registry *r)
{
    static const char sql[] = "SELECT count(*) FROM meta";
    sqlite3_stmt *st = bg_reg_stmt(r, sql);
    if (st == NULL)
        return BG_EIO;
    return bg_reg_exec_stmt(r, st);
}

bg_err bg_registry_begin(bg_registry *r)
{
    int rc = bg_reg_fault(r);
    return rc != SQLITE_OK ? map_rc(rc) : exec(r, "BEGIN IMMEDIATE");
}

bg_err bg_registry_commit(bg_registry *r)
{
    /* An injected failure leaves the transaction open, as a real failed
     * COMMIT does: the caller rolls back. */
    int rc = bg_reg_fault(r);
    return rc != SQLITE_OK ? map_rc(rc) : exec(r, "COMMIT");
}

void bg_registry_rollback(bg_registry *r)
{
    if (!sqlite3_get_autocommit(r->db))
        exec(r, "ROLLBACK");
}

const char *bg_registry_errmsg(const bg_registry *r)
{
    return r->errmsg[0] ? r->errmsg : "no error";
}
