/* node/uploads.c — tus 1.0 uploads: creation, chunks appended durably with
 * a running md5, completion that queues the assembly's job, termination
 * and expiry. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline_internal.h"
#include "proto/assembly.h"
#include "proto/log.h"
#include "proto/md5.h"
#include "proto/mem.h"
#include "proto/parse.h"

/* ---- one PATCH at a time per upload ---- */

static bool lock_upload(bg_node *n, const char *id)
{
    struct pipeline_state *p = n->pipe;
    bool ok = true;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nlocked; i++)
        if (strcmp(p->locked[i], id) == 0)
            ok = false;
    if (ok) {
        if (p->nlocked == p->cap_locked) {
            p->cap_locked = p->cap_locked ? p->cap_locked * 2 : 16;
            p->locked = bg_xrealloc(p->locked, p->cap_locked * sizeof(*p->locked));
        }
        bg_strlcpy(p->locked[p->nlocked++], id, 33);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void unlock_upload(bg_node *n, const char *id)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nlocked; i++)
        if (strcmp(p->locked[i], id) == 0) {
            memcpy(p->locked[i], p->locked[--p->nlocked], 33);
            break;
        }
    pthread_mutex_unlock(&p->mu);
}

/* ---- bytes on disk ---- */

/* Writes the chunk at offset, dropping whatever a crash left past it, and
 * makes it durable. On failure the file is cut back to offset (a partial
 * chunk would hold disk space for nothing) and *full says whether the disk
 * or the quota is full. */
static bg_err write_chunk(const bg_node *n, const bg_upload_row *u, const bg_tus_chunk *c,
                          bool *full)
{
    *full = false;
    char path[4200];
    if (!bg_pl_abspath(n, u->path, path, sizeof(path)))
        return BG_EIO;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return BG_EIO;
    bg_err e = BG_OK;
    if (ftruncate(fd, (off_t)c->offset) != 0)
        e = BG_EIO;
    const char *p = c->data;
    size_t left = c->len;
    off_t at = (off_t)c->offset;
    while (e == BG_OK && left > 0) {
        ssize_t w = pwrite(fd, p, left, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *full = w < 0 && (errno == ENOSPC || errno == EDQUOT);
            e = BG_EIO;
            break;
        }
        p += w;
        at += w;
        left -= (size_t)w;
    }
    if (e == BG_OK && fsync(fd) != 0) {
        *full = errno == ENOSPC || errno == EDQUOT;
        e = BG_EIO;
    }
    if (e != BG_OK && ftruncate(fd, (off_t)c->offset) != 0)
        bg_log(BG_LOG_WARN, NULL, "upload %s: cannot cut a failed chunk off", u->id);
    close(fd);
    return e;
}

/* Cuts the upload's file back to its recorded offset (after a chunk that
 * was written but could not be recorded). */
static void cut_back(const bg_node *n, const bg_upload_row *u, int64_t offset)
{
    char path[4200];
    if (bg_pl_abspath(n, u->path, path, sizeof(path)) && truncate(path, (off_t)offset) != 0)
        bg_log(BG_LOG_WARN, NULL, "upload %s: cannot cut an unrecorded chunk off", u->id);
}

static bool checksum_ok(const bg_tus_chunk *c)
{
    return c->algo == 0 || bg_tus_checksum_verify(c->algo, c->data, c->len, c->digest, c->dlen);
}

/* ---- completion ---- */

/* md5 announced for file i of the assembly, or NULL. */
static const char *announced_md5(const json_t *files, int i)
{
    return json_string_value(json_object_get(json_array_get(files, (size_t)i), "md5"));
}

/* Inside the transaction, after u (now complete) is stored: fails the
 * assembly on an md5 mismatch, or starts its run when every expected file
 * is complete. *started tells the caller to wake the workers. */
static bg_err on_complete(bg_node *n, bg_registry *reg, const bg_upload_row *u, bool *started)
{
    bg_assembly_row a;
    bg_err e = bg_registry_assembly_get(reg, u->assembly_id, NULL, &a);
    if (e != BG_OK)
        return e;
    if (strcmp(a.state, "uploading") != 0) {
        /* Canceled or failed since the chunk was checked: the bytes are
         * kept, the assembly is not revived. */
        bg_registry_assembly_clear(&a);
        return BG_OK;
    }
    json_t *files = json_loads(a.files_json, 0, NULL);
    const char *want = announced_md5(files, u->file_index);
    if (want != NULL && strcmp(want, u->md5) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "file %d: announced md5 %s, received bytes have md5 %s",
                 u->file_index, want, u->md5);
        e = bg_pl_fail(n, reg, &a, "MD5_MISMATCH", NULL, false, msg);
    } else {
        bg_upload_row *list = NULL;
        size_t cnt = 0, done = 0;
        e = bg_registry_upload_list(reg, a.id, &list, &cnt);
        for (size_t i = 0; e == BG_OK && i < cnt; i++)
            done += list[i].complete ? 1 : 0;
        free(list);
        if (e == BG_OK && done == json_array_size(files)) {
            e = bg_pl_start_run(n, reg, &a, bg_now_ms());
            *started = e == BG_OK;
        }
    }
    json_decref(files);
    bg_registry_assembly_clear(&a);
    return e;
}

/* Inside the transaction: stores the new offset (and completion), with an
 * upload:progress event. */
static bg_err record(bg_node *n, bg_registry *reg, bg_upload_row *u, const char *org,
                     bool *started)
{
    u->complete = u->offset == u->length;
    bg_md5 m;
    if (u->complete && bg_md5_load(&m, u->md5_state, u->md5_state_len) == BG_OK) {
        uint8_t d[BG_MD5_BYTES];
        bg_md5_final(&m, d);
        bg_md5_hex(d, u->md5);
    }
    u->updated_ms = bg_now_ms();
    bg_err e = bg_registry_upload_progress(reg, u);
    if (e == BG_OK)
        e = bg_pl_event(n, reg, u->assembly_id, org, "upload:progress",
                        json_pack("{s:s,s:s,s:I,s:I,s:b}", "upload_id", u->id, "name",
                                  u->filename, "offset", (json_int_t)u->offset, "length",
                                  (json_int_t)u->length, "complete", u->complete));
    if (e == BG_OK && u->complete)
        e = on_complete(n, reg, u, started);
    return e;
}

static void absorb(bg_upload_row *u, const void *data, size_t len)
{
    bg_md5 m;
    if (bg_md5_load(&m, u->md5_state, u->md5_state_len) != BG_OK)
        bg_md5_init(&m);
    bg_md5_update(&m, data, len);
    bg_md5_save(&m, u->md5_state);
    u->md5_state_len = BG_MD5_STATE_BYTES;
}

/* ---- creation ---- */

typedef struct meta_in {
    char assembly_id[BG_ASSEMBLY_ID_MAX];
    char filename[256];
    char mime[128];
} meta_in;

static bool mime_ok(const char *s)
{
    return bg_str_is_ident(s, strlen(s), 127, "./+-");
}

static bg_err parse_meta(const char *md, size_t len, meta_in *m, bg_node_err *ne)
{
    char raw[1024];
    size_t rlen;
    memset(m, 0, sizeof(*m));
    if (md == NULL || bg_tus_metadata_check(md, len) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_METADATA", "Upload-Metadata is missing or malformed");
    if (bg_tus_metadata_get(md, len, "assembly_id", raw, sizeof(raw), &rlen) != BG_OK ||
        rlen != BG_ASSEMBLY_ID_LEN || !bg_assembly_id_valid(raw))
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_METADATA", "Upload-Metadata needs a valid assembly_id");
    bg_strlcpy(m->assembly_id, raw, sizeof(m->assembly_id));
    bg_err e = bg_tus_metadata_get(md, len, "filename", raw, sizeof(raw), &rlen);
    if (e != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_METADATA", "Upload-Metadata needs a filename");
    if (bg_tus_sanitize_name(raw, rlen, m->filename, sizeof(m->filename)) != BG_OK)
        return bg_pl_nerr(ne, BG_EINVAL, "INVALID_FILENAME",
                    "the filename is empty, not UTF-8 or contains control bytes");
    if (bg_tus_metadata_get(md, len, "filetype", raw, sizeof(raw), &rlen) == BG_OK &&
        rlen < sizeof(m->mime) && strlen(raw) == rlen && mime_ok(raw))
        bg_strlcpy(m->mime, raw, sizeof(m->mime));
    return BG_OK;
}

/* The expected file this upload stands for: same sanitised name and size,
 * not yet complete. *replace names an unfinished upload for that slot. */
static bg_err match_file(bg_registry *reg, const bg_assembly_row *a, const meta_in *m,
                         int64_t length, int *index, char replace[33], bg_node_err *ne)
{
    json_t *files = json_loads(a->files_json, 0, NULL);
    bg_upload_row *list = NULL;
    size_t cnt = 0;
    bg_err e = bg_registry_upload_list(reg, a->id, &list, &cnt);
    if (e != BG_OK) {
        json_decref(files);
        return bg_pl_db_err(ne, reg, e);
    }
    e = bg_pl_nerr(ne, BG_ECONFLICT, "UPLOAD_NOT_EXPECTED",
             "no expected file of the assembly has this name and size, or it is uploaded");
    for (size_t i = 0; i < json_array_size(files) && e != BG_OK; i++) {
        const json_t *f = json_array_get(files, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        char sane[256];
        if (name == NULL || json_integer_value(json_object_get(f, "size")) != length ||
            bg_tus_sanitize_name(name, strlen(name), sane, sizeof(sane)) != BG_OK ||
            strcmp(sane, m->filename) != 0)
            continue;
        const bg_upload_row *taken = NULL;
        for (size_t k = 0; k < cnt; k++)
            if (list[k].file_index == (int)i)
                taken = &list[k];
        if (taken != NULL && taken->complete)
            continue;
        *index = (int)i;
        bg_strlcpy(replace, taken ? taken->id : "", 33);
        e = BG_OK;
    }
    free(list);
    json_decref(files);
    return e;
}

/* Creates the directory and the empty file of a new upload. */
static bg_err create_file(const bg_node *n, const bg_upload_row *u)
{
    char path[4200];
    if (!bg_pl_abspath(n, u->path, path, sizeof(path)) || bg_pl_mkdirs(path, false) != BG_OK)
        return BG_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return BG_EIO;
    close(fd);
    return BG_OK;
}

static void remove_upload_dir(const bg_node *n, const bg_upload_row *u)
{
    char path[4200];
    if (!bg_pl_abspath(n, u->path, path, sizeof(path)))
        return;
    char *slash = strrchr(path, '/');
    if (slash != NULL) {
        *slash = '\0';
        bg_pl_rmtree(path);
    }
}

static bg_err new_row(bg_node *n, const bg_actor *who, const bg_assembly_row *a, const meta_in *m,
                      const char *md, size_t mdlen, int64_t length, int index, bg_upload_row *u)
{
    memset(u, 0, sizeof(*u));
    bg_upload_id_new(u->id);
    bg_strlcpy(u->assembly_id, a->id, sizeof(u->assembly_id));
    bg_strlcpy(u->organization_id, a->organization_id, sizeof(u->organization_id));
    bg_strlcpy(u->user_id, who->user_id, sizeof(u->user_id));
    u->file_index = index;
    bg_strlcpy(u->filename, m->filename, sizeof(u->filename));
    bg_strlcpy(u->mime, m->mime, sizeof(u->mime));
    if (mdlen >= sizeof(u->metadata))
        return BG_ETOOBIG;
    memcpy(u->metadata, md, mdlen);
    int w = snprintf(u->path, sizeof(u->path), "uploads/%s/users/%s/%s/%s", n->cfg.branch_name,
                     who->user_id, u->id, u->filename);
    if (w < 0 || (size_t)w >= sizeof(u->path))
        return BG_ETOOBIG;
    u->length = length;
    bg_md5 md5;
    bg_md5_init(&md5);
    bg_md5_save(&md5, u->md5_state);
    u->md5_state_len = BG_MD5_STATE_BYTES;
    u->created_ms = u->updated_ms = bg_now_ms();
    u->expires_ms = u->created_ms + n->cfg.uploads_expire_after_s * 1000;
    return BG_OK;
}

/* Inside the transaction: the row, replacing an unfinished one for the
 * same file, then the first bytes' progress. */
static bg_err insert_upload(bg_node *n, bg_registry *reg, bg_upload_row *u, const char *replace,
                            bool *started)
{
    bg_err e = BG_OK;
    if (replace[0])
        e = bg_registry_upload_delete(reg, replace);
    if (e == BG_OK)
        e = bg_registry_upload_insert(reg, u);
    if (e == BG_OK)
        e = record(n, reg, u, u->organization_id, started);
    return e;
}

static bg_err check_assembly(bg_registry *reg, const bg_actor *who, const char *id,
                             bg_assembly_row *a, bg_node_err *ne)
{
    bg_err e = bg_registry_assembly_get(reg, id, who->all_orgs ? NULL : who->org, a);
    if (e == BG_ENOTFOUND)
        return bg_pl_nerr(ne, e, "ASSEMBLY_NOT_FOUND", "no such assembly");
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    if (strcmp(a->state, "uploading") != 0) {
        bg_registry_assembly_clear(a);
        return bg_pl_nerr(ne, BG_ECONFLICT, "ASSEMBLY_NOT_UPLOADING", "the assembly takes no more uploads");
    }
    return BG_OK;
}

bg_err bg_pipeline_upload_create(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 int64_t length, const char *metadata, size_t metadata_len,
                                 const bg_tus_chunk *first, bg_upload_row *out, bg_node_err *ne)
{
    meta_in m;
    bg_assembly_row a;
    bg_err e = parse_meta(metadata, metadata_len, &m, ne);
    if (e != BG_OK)
        return e;
    if (first != NULL && (int64_t)first->len > length)
        return bg_pl_nerr(ne, BG_ETOOBIG, "UPLOAD_TOO_LARGE", "the body is longer than Upload-Length");
    if (first != NULL && !checksum_ok(first))
        return bg_pl_nerr(ne, BG_EINVAL, "CHECKSUM_MISMATCH", "Upload-Checksum does not match the body");
    if ((e = check_assembly(reg, who, m.assembly_id, &a, ne)) != BG_OK)
        return e;
    int index = 0;
    char replace[33];
    bg_upload_row u;
    e = match_file(reg, &a, &m, length, &index, replace, ne);
    if (e == BG_OK && new_row(n, who, &a, &m, metadata, metadata_len, length, index, &u) != BG_OK)
        e = bg_pl_nerr(ne, BG_ETOOBIG, "INVALID_METADATA", "Upload-Metadata or the filename is too long");
    bg_registry_assembly_clear(&a);
    if (e != BG_OK)
        return e;
    if (create_file(n, &u) != BG_OK)
        return bg_pl_nerr(ne, BG_EIO, "STORAGE_ERROR", "cannot create the upload file");
    if (first != NULL && first->len > 0) {
        bg_tus_chunk c = *first;
        c.offset = 0;
        bool full = false;
        if (write_chunk(n, &u, &c, &full) != BG_OK) {
            remove_upload_dir(n, &u);
            return full ? bg_pl_nerr(ne, BG_EIO, "STORAGE_FULL", "the branch's disk is full")
                        : bg_pl_nerr(ne, BG_EIO, "STORAGE_ERROR", "cannot store the upload's bytes");
        }
        absorb(&u, c.data, c.len);
        u.offset = (int64_t)c.len;
    }
    bool started = false;
    bg_upload_row old;
    bool had_old = replace[0] && bg_registry_upload_get(reg, replace, NULL, &old) == BG_OK;
    e = bg_pl_tx_begin(n, reg);
    if (e == BG_OK) {
        e = insert_upload(n, reg, &u, replace, &started);
        e = e == BG_OK ? bg_pl_tx_commit(n, reg) : (bg_pl_tx_rollback(n, reg), e);
    }
    if (e != BG_OK) {
        remove_upload_dir(n, &u);
        return bg_pl_db_err(ne, reg, e);
    }
    if (had_old)
        remove_upload_dir(n, &old);
    if (started)
        bg_pl_jobs_wake(n);
    *out = u;
    return BG_OK;
}

/* ---- reads, chunks, termination ---- */

static bg_err load_upload(bg_registry *reg, const bg_actor *who, const char *id,
                          bg_upload_row *u, bg_node_err *ne)
{
    if (!bg_upload_id_valid(id))
        return bg_pl_nerr(ne, BG_ENOTFOUND, "UPLOAD_NOT_FOUND", "no such upload");
    bg_err e = bg_registry_upload_get(reg, id, who->all_orgs ? NULL : who->org, u);
    if (e == BG_OK && !u->complete && u->expires_ms <= bg_now_ms())
        e = BG_ENOTFOUND;
    if (e == BG_ENOTFOUND)
        return bg_pl_nerr(ne, e, "UPLOAD_NOT_FOUND", "no such upload");
    if (e != BG_OK)
        return bg_pl_db_err(ne, reg, e);
    return BG_OK;
}

bg_err bg_pipeline_upload_get(bg_node *n, bg_registry *reg, const bg_actor *who, const char *id,
                              bg_upload_row *out, bg_node_err *ne)
{
    (void)n;
    return load_upload(reg, who, id, out, ne);
}

static bg_err patch_locked(bg_node *n, bg_registry *reg, const bg_actor *who, bg_upload_row *u,
                           const bg_tus_chunk *c, bg_node_err *ne)
{
    if (c->offset != u->offset)
        return bg_pl_nerr(ne, BG_ECONFLICT, "UPLOAD_OFFSET_MISMATCH",
                    "Upload-Offset does not match the upload's offset");
    if ((int64_t)c->len > u->length - u->offset)
        return bg_pl_nerr(ne, BG_ETOOBIG, "UPLOAD_TOO_LARGE", "the chunk goes past Upload-Length");
    if (!checksum_ok(c))
        return bg_pl_nerr(ne, BG_EINVAL, "CHECKSUM_MISMATCH", "Upload-Checksum does not match the body");
    if (c->len == 0)
        return BG_OK;
    bg_assembly_row a;
    bg_err e = check_assembly(reg, who, u->assembly_id, &a, ne);
    if (e != BG_OK)
        return e;
    bg_registry_assembly_clear(&a);
    bool full = false;
    if (write_chunk(n, u, c, &full) != BG_OK)
        return full ? bg_pl_nerr(ne, BG_EIO, "STORAGE_FULL", "the branch's disk is full")
                    : bg_pl_nerr(ne, BG_EIO, "STORAGE_ERROR", "cannot store the upload's bytes");
    int64_t before = u->offset;
    absorb(u, c->data, c->len);
    u->offset += (int64_t)c->len;
    bool started = false;
    e = bg_pl_tx_begin(n, reg);
    if (e == BG_OK) {
        e = record(n, reg, u, u->organization_id, &started);
        e = e == BG_OK ? bg_pl_tx_commit(n, reg) : (bg_pl_tx_rollback(n, reg), e);
    }
    if (e != BG_OK) {
        cut_back(n, u, before);
        return bg_pl_db_err(ne, reg, e);
    }
    if (started)
        bg_pl_jobs_wake(n);
    return BG_OK;
}

bg_err bg_pipeline_upload_patch(bg_node *n, bg_registry *reg, const bg_actor *who, const char *id,
                                const bg_tus_chunk *c, bg_upload_row *out, bg_node_err *ne)
{
    bg_upload_row u;
    bg_err e = load_upload(reg, who, id, &u, ne);
    if (e != BG_OK)
        return e;
    if (!lock_upload(n, u.id))
        return bg_pl_nerr(ne, BG_ECONFLICT, "UPLOAD_BUSY", "another PATCH of this upload is in progress");
    /* Re-read under the lock: the offset may have moved since. */
    e = load_upload(reg, who, id, &u, ne);
    if (e == BG_OK)
        e = patch_locked(n, reg, who, &u, c, ne);
    unlock_upload(n, u.id);
    if (e == BG_OK)
        *out = u;
    return e;
}

bg_err bg_pipeline_upload_delete(bg_node *n, bg_registry *reg, const bg_actor *who,
                                 const char *id, bg_node_err *ne)
{
    bg_upload_row u;
    bg_err e = load_upload(reg, who, id, &u, ne);
    if (e != BG_OK)
        return e;
    if (u.complete)
        return bg_pl_nerr(ne, BG_ECONFLICT, "UPLOAD_COMPLETE", "a complete upload belongs to its assembly");
    if (!lock_upload(n, u.id))
        return bg_pl_nerr(ne, BG_ECONFLICT, "UPLOAD_BUSY", "a PATCH of this upload is in progress");
    e = bg_registry_upload_delete(reg, u.id);
    unlock_upload(n, u.id);
    if (e != BG_OK && e != BG_ENOTFOUND)
        return bg_pl_db_err(ne, reg, e);
    remove_upload_dir(n, &u);
    return BG_OK;
}

void bg_pl_uploads_expire(bg_node *n, bg_registry *reg)
{
    bg_upload_row *list = NULL;
    size_t cnt = 0;
    if (bg_registry_upload_expired(reg, bg_now_ms(), 100, &list, &cnt) != BG_OK)
        return;
    for (size_t i = 0; i < cnt; i++) {
        if (!lock_upload(n, list[i].id))
            continue;
        if (bg_registry_upload_delete(reg, list[i].id) == BG_OK) {
            remove_upload_dir(n, &list[i]);
            bg_log(BG_LOG_INFO, NULL, "upload %s of assembly %s expired and was removed",
                   list[i].id, list[i].assembly_id);
        }
        unlock_upload(n, list[i].id);
    }
    free(list);
}
