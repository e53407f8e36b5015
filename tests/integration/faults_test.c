/* Fault injection against real branchgate processes (issue: proof under
 * faults). Each case injects one kind of fault and then checks the two
 * promises of DESIGN section 8: the branch keeps serving (never a crash,
 * errors are JSON), and nothing it acknowledged is lost while nothing it
 * refused is half-stored.
 *
 *  1. SQLite BUSY and I/O errors on writes: a branch started with
 *     BRANCHGATE_TEST_FAULTS (registry/fault.c) fails one write, BEGIN or
 *     COMMIT in 20 with BUSY and one in 40 with an I/O error. Clients
 *     create organisations and upload a file over tus, retrying as real
 *     clients do. After a restart without faults, exactly the acknowledged
 *     organisations exist, the upload is byte-identical and its assembly
 *     completes.
 *  2. Disk full while an upload arrives: the data dir lives on a 6 MiB
 *     tmpfs; a 16 MiB upload runs out of space. Every PATCH answer is 204
 *     or 507 STORAGE_FULL (JSON), HEAD's offset never goes back, the bytes up to it are
 *     the ones sent, other requests keep working, and once the upload is
 *     deleted the space is back. (Skipped when tmpfs cannot be mounted,
 *     i.e. not root.)
 *  3. Peers that misbehave: one accepts and never answers, one answers
 *     garbage, one answers 500, one drips a byte every 200 ms. Pings to
 *     each end within the peer timeout with a JSON answer while the branch
 *     keeps serving health checks; a sync queued to all four stays in the
 *     outbox (retried, never dropped, kept across a SIGKILL); the breaker
 *     opens.
 *  4. Slowloris: 2000 connections that send half a request and then
 *     nothing; the branch keeps answering other clients, and is whole
 *     after they go.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define CHUNK 65536

static const char *const base_env[] = {"BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
                                       "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
                                       "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=65536",
                                       "BRANCHGATE_JOBS_WORKERS=1",
                                       "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10",
                                       NULL};

static const char *const faulty_env[] = {"BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8192",
                                         "BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1",
                                         "BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=65536",
                                         "BRANCHGATE_JOBS_WORKERS=1",
                                         "BRANCHGATE_JOBS_BACKOFF_UNIT_MS=10",
                                         "BRANCHGATE_TEST_FAULTS=busy_every=20,ioerr_every=40",
                                         NULL};

static struct {
    char root[256];
    char *wav;
    size_t wav_len;
    char mnt[320]; /* the disk-full case's tmpfs while mounted */
} T;

/* An answer a faulty branch may give: the expected 2xx, or a 5xx whose body
 * is the JSON error shape. Anything else (a crash, a 4xx blaming the
 * client, a body that is not the error shape) fails. */
static bool ok_or_json_5xx(const bg_th_resp *r, long want)
{
    if (r->status == want)
        return true;
    if (r->status >= 500 && r->status <= 599) {
        json_t *j = bg_th_json(r);
        json_t *e = json_object_get(j, "error");
        bool shaped = json_is_string(json_object_get(e, "code")) &&
                      json_is_string(json_object_get(e, "message")) &&
                      json_is_string(json_object_get(e, "request_id"));
        json_decref(j);
        if (shaped)
            return true;
    }
    fprintf(stderr, "unexpected answer %ld: %.500s\n", r->status, r->body ? r->body : "");
    return false;
}

static char *make_wav(const char *root, int seconds, size_t *len)
{
    char path[400], cmd[800];
    snprintf(path, sizeof(path), "%s/fixture.wav", root);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "
             "sine=frequency=330:sample_rate=44100 -t %d -ac 2 %s",
             seconds, path);
    if (system(cmd) != 0)
        return NULL;
    return bg_th_read_file(path, len);
}

/* The tus endpoint and id of a new assembly of template tpl for one file
 * (md5 announced), retried while the branch answers 5xx. */
static bool create_assembly(const bg_th_proc *p, const char *tpl, const char *name,
                            const void *data, size_t len, char *id, char *tus, size_t cap)
{
    char md5[33], body[512];
    bg_th_md5_hex(data, len, md5);
    snprintf(body, sizeof(body),
             "{\"template_id\":\"%s\",\"files\":[{\"name\":\"%s\",\"size\":%zu,\"md5\":\"%s\"}]}",
             tpl, name, len, md5);
    for (int attempt = 0; attempt < 50; attempt++) {
        bg_th_resp r;
        bg_th_post_json(p, "/api/v1/assemblies", p->token, body, &r);
        if (!ok_or_json_5xx(&r, r.status == 200 ? 200 : 201)) {
            bg_th_resp_free(&r);
            return false;
        }
        if (r.status == 200 || r.status == 201) {
            json_t *j = bg_th_json(&r);
            snprintf(id, 65, "%s", json_string_value(json_object_get(j, "assembly_id")));
            snprintf(tus, cap, "%s", json_string_value(json_object_get(j, "tus_url")));
            json_decref(j);
            bg_th_resp_free(&r);
            return true;
        }
        bg_th_resp_free(&r);
    }
    return false;
}

/* HEAD's Upload-Offset, retried while the branch answers 5xx; -1 when it
 * never answers 200. */
static long long head_offset(const char *loc, const char *token)
{
    static const char *const h[] = {"Tus-Resumable: 1.0.0", NULL};
    for (int attempt = 0; attempt < 50; attempt++) {
        bg_th_resp r;
        bg_th_http("HEAD", loc, token, NULL, 0, h, false, &r);
        char off[32];
        long st = r.status;
        bool have = st == 200 && bg_th_header(&r, "upload-offset", off, sizeof(off));
        bg_th_resp_free(&r);
        if (have)
            return atoll(off);
        if (st < 500)
            return -1;
    }
    return -1;
}

/* One PATCH of data[off, off + n); the answer's status, *new_off from a 204. */
static long patch(const char *loc, const char *token, const char *data, long long off, size_t n,
                  long long *new_off, bg_th_resp *out)
{
    char ofs[64];
    snprintf(ofs, sizeof(ofs), "Upload-Offset: %lld", off);
    const char *h[] = {"Tus-Resumable: 1.0.0", "Content-Type: application/offset+octet-stream",
                       ofs, NULL};
    bg_th_http("PATCH", loc, token, data + off, n, h, false, out);
    char got[32];
    if (out->status == 204 && bg_th_header(out, "upload-offset", got, sizeof(got)))
        *new_off = atoll(got);
    return out->status;
}

/* ---- 1. SQLite BUSY and I/O errors ---- */

#define ORGS 60

static void test_sqlite_faults(void **state)
{
    (void)state;
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/db", T.root);
    bg_th_proc p;
    if (bg_th_start(&p, dir, NULL, faulty_env) != 0) {
        bg_th_print_log(&p);
        fail();
    }
    /* Organisations: each answer is 201 or a JSON 5xx, never anything else. */
    bool acked[ORGS] = {false};
    int nacked = 0, nrefused = 0;
    for (int i = 0; i < ORGS; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"fault-org-%02d\"}", i);
        bg_th_resp r;
        assert_int_equal(bg_th_post_json(&p, "/api/v1/organizations", p.token, body, &r), 0);
        assert_true(ok_or_json_5xx(&r, 201));
        acked[i] = r.status == 201;
        nacked += acked[i];
        nrefused += !acked[i];
        bg_th_resp_free(&r);
    }
    fprintf(stderr, "organisations under faults: %d acknowledged, %d refused with 5xx\n", nacked,
            nrefused);
    /* The faults hit, and the branch recovers between them. */
    assert_true(nrefused > 0);
    assert_true(nacked > 0);

    /* A tus upload, as a client that resumes from HEAD after a failure. */
    char id[65], tus[512], loc[600];
    assert_true(create_assembly(&p, "probe", "fault.wav", T.wav, T.wav_len, id, tus, sizeof(tus)));
    int creates = 0;
    while (bg_th_tus_create(tus, p.token, id, "fault.wav", T.wav_len, loc, sizeof(loc)) != 0) {
        assert_true(++creates < 50);
    }
    long long off = 0;
    int failures = 0, patches = 0;
    while (off < (long long)T.wav_len) {
        size_t n = T.wav_len - (size_t)off < CHUNK ? T.wav_len - (size_t)off : CHUNK;
        bg_th_resp r;
        long long next = off;
        long st = patch(loc, p.token, T.wav, off, n, &next, &r);
        patches++;
        assert_true(ok_or_json_5xx(&r, 204));
        bg_th_resp_free(&r);
        if (st == 204) {
            assert_int_equal(next, off + (long long)n);
            off = next;
            continue;
        }
        failures++;
        long long h = head_offset(loc, p.token);
        /* The offset never goes back, never past what was sent. */
        assert_true(h >= off && h <= off + (long long)n);
        off = h;
        assert_true(failures < 200);
    }
    fprintf(stderr, "upload under faults: %d PATCHes, %d refused\n", patches, failures);
    assert_true(bg_th_alive(&p));
    assert_int_equal(bg_th_stop(&p, SIGTERM, 15000), 0);

    /* Restarted without faults: exactly what was acknowledged. */
    if (bg_th_start(&p, dir, NULL, base_env) != 0) {
        bg_th_print_log(&p);
        fail();
    }
    bg_th_resp r;
    assert_int_equal(bg_th_get(&p, "/api/v1/organizations?limit=500", p.token, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = bg_th_json(&r);
    json_t *orgs = json_object_get(j, "organizations");
    bool seen[ORGS] = {false};
    size_t k;
    json_t *o;
    json_array_foreach(orgs, k, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        int idx = -1;
        if (name != NULL && sscanf(name, "fault-org-%d", &idx) == 1 && idx >= 0 && idx < ORGS) {
            assert_false(seen[idx]); /* never twice */
            seen[idx] = true;
        }
    }
    for (int i = 0; i < ORGS; i++) {
        if (acked[i] != seen[i])
            fprintf(stderr, "fault-org-%02d: acknowledged %d, stored %d\n", i, acked[i], seen[i]);
        assert_int_equal(acked[i], seen[i]);
    }
    json_decref(j);
    bg_th_resp_free(&r);

    /* The upload is whole and the assembly completes, once. */
    char path[300];
    snprintf(path, sizeof(path), "/api/v1/assemblies/%s", id);
    json_t *st = NULL;
    long long deadline = bg_th_now_ms() + 60000;
    while (bg_th_now_ms() < deadline) {
        assert_int_equal(bg_th_get(&p, path, p.token, &r), 0);
        st = bg_th_json(&r);
        bg_th_resp_free(&r);
        const char *ok = json_string_value(json_object_get(st, "ok"));
        if (ok != NULL && strcmp(ok, "ASSEMBLY_COMPLETED") == 0)
            break;
        if (json_object_get(st, "error") != NULL)
            fprintf(stderr, "assembly failed: %s\n", json_dumps(st, JSON_COMPACT));
        json_decref(st);
        st = NULL;
        bg_th_nap_ms(100);
    }
    assert_non_null(st);
    char md5[33];
    bg_th_md5_hex(T.wav, T.wav_len, md5);
    json_t *up = json_array_get(json_object_get(st, "uploads"), 0);
    assert_string_equal(json_string_value(json_object_get(up, "md5hash")), md5);
    assert_int_equal(json_array_size(json_object_get(json_object_get(st, "results"), "meta")), 1);
    json_decref(st);
    assert_int_equal(bg_th_stop(&p, SIGTERM, 15000), 0);
}

/* ---- 2. disk full while an upload arrives ---- */

#define BIG (16u * 1024 * 1024)

static void test_disk_full(void **state)
{
    (void)state;
    char mnt[320], dir[400];
    snprintf(mnt, sizeof(mnt), "%s/small", T.root);
    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=6m,mode=0700") != 0) {
        fprintf(stderr, "cannot mount a tmpfs here (%s): the disk-full case needs root\n",
                strerror(errno));
        skip();
    }
    snprintf(T.mnt, sizeof(T.mnt), "%s", mnt); /* unmounted by teardown if a check fails */
    snprintf(dir, sizeof(dir), "%s/data", mnt);
    bg_th_proc p;
    const char *env[] = {"BRANCHGATE_UPLOADS_CHUNK_MAX_BYTES=1048576",
                         "BRANCHGATE_UPLOADS_MAX_SIZE=67108864", "BRANCHGATE_JOBS_WORKERS=1",
                         NULL};
    if (bg_th_start(&p, dir, NULL, env) != 0) {
        bg_th_print_log(&p);
        umount(mnt);
        fail();
    }
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)((i * 2654435761u) >> 13);
    char id[65], tus[512], loc[600];
    assert_true(create_assembly(&p, "probe", "big.bin", big, BIG, id, tus, sizeof(tus)));
    assert_int_equal(bg_th_tus_create(tus, p.token, id, "big.bin", BIG, loc, sizeof(loc)), 0);
    long long off = 0;
    long last = 0;
    int full_answers = 0;
    while (off < (long long)BIG && full_answers < 3) {
        size_t n = 1048576;
        bg_th_resp r;
        long long next = off;
        last = patch(loc, p.token, big, off, n, &next, &r);
        assert_true(ok_or_json_5xx(&r, 204));
        if (last != 204) {
            assert_int_equal(last, 507);
            assert_true(bg_th_is_error(&r, 507, "STORAGE_FULL"));
            fprintf(stderr, "at %lld: %ld %.300s\n", off, last, r.body ? r.body : "");
            full_answers++;
        }
        bg_th_resp_free(&r);
        long long h = head_offset(loc, p.token);
        assert_true(h >= off && h <= off + (long long)n); /* never back, never past the sent */
        if (last == 204)
            assert_int_equal(h, next);
        off = h;
    }
    assert_true(full_answers > 0); /* 16 MiB do not fit in 6 */
    fprintf(stderr, "disk full after %lld of %u bytes\n", off, BIG);
    /* Still serving: health, and a read of the database. */
    bg_th_resp r;
    assert_int_equal(bg_th_get(&p, "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_get(&p, "/api/v1/organizations", p.token, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    /* The bytes up to the acknowledged offset are the ones sent. */
    char upath[1200];
    snprintf(upath, sizeof(upath), "find %s/uploads -type f -name big.bin > %s/found.txt", dir,
             T.root);
    assert_int_equal(system(upath), 0);
    snprintf(upath, sizeof(upath), "%s/found.txt", T.root);
    char *found = bg_th_read_file(upath, NULL);
    assert_non_null(found);
    found[strcspn(found, "\n")] = '\0';
    size_t flen = 0;
    char *stored = bg_th_read_file(found, &flen);
    assert_non_null(stored);
    assert_true(flen >= (size_t)off);
    assert_memory_equal(stored, big, (size_t)off);
    free(stored);
    /* Deleting the upload gives the space back: a small upload fits. */
    static const char *const th[] = {"Tus-Resumable: 1.0.0", NULL};
    assert_int_equal(bg_th_http("DELETE", loc, p.token, NULL, 0, th, false, &r), 0);
    long del_status = r.status;
    if (r.status != 204)
        fprintf(stderr, "DELETE: %ld %.300s\n", r.status, r.body ? r.body : "");
    bg_th_resp_free(&r);
    assert_int_equal(del_status, 204);
    struct stat sb;
    assert_int_not_equal(stat(found, &sb), 0);
    free(found);
    char id2[65], tus2[512], loc2[600];
    assert_true(create_assembly(&p, "probe", "small.wav", T.wav, T.wav_len, id2, tus2, sizeof(tus2)));
    assert_int_equal(bg_th_tus_upload(tus2, p.token, id2, "small.wav", T.wav, T.wav_len, 1048576,
                                      loc2, sizeof(loc2), NULL),
                     0);
    assert_true(bg_th_alive(&p));
    assert_int_equal(bg_th_stop(&p, SIGTERM, 15000), 0);
    free(big);
    bg_th_rmtree(dir);
    umount(mnt);
    T.mnt[0] = '\0';
}

/* ---- 3. peers that misbehave ---- */

typedef enum { BAD_SILENT, BAD_GARBAGE, BAD_500, BAD_DRIP, BAD_KINDS } bad_kind;
static const char *const bad_names[BAD_KINDS] = {"silent", "garbage", "err500", "drip"};

typedef struct bad_peer {
    bad_kind kind;
    int lfd;
    int port;
    int held[256]; /* the silent peer's connections, kept open */
    int nheld;
} bad_peer;

static volatile int bad_stop;

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void *drip_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    for (size_t i = 0; !bad_stop && i < 600; i++) {
        char c = head[i % (sizeof(head) - 1)];
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
            break;
        bg_th_nap_ms(200);
    }
    close(fd);
    return NULL;
}

static void *bad_main(void *arg)
{
    bad_peer *b = arg;
    uint64_t x = 0x2545F4914F6CDD1Dull;
    while (!bad_stop) {
        struct pollfd pf = {b->lfd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int c = accept(b->lfd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096];
        struct pollfd rf = {c, POLLIN, 0};
        if (poll(&rf, 1, 1000) > 0)
            (void)!recv(c, buf, sizeof(buf), 0);
        if (b->kind == BAD_SILENT) {
            if (b->nheld < 256)
                b->held[b->nheld++] = c;
            else
                close(c);
        } else if (b->kind == BAD_GARBAGE) {
            for (size_t i = 0; i < sizeof(buf); i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = (char)x;
            }
            (void)!send(c, buf, sizeof(buf), MSG_NOSIGNAL);
            close(c);
        } else if (b->kind == BAD_500) {
            static const char r[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
                                    "application/json\r\nContent-Length: 2\r\n"
                                    "Connection: close\r\n\r\n{}";
            (void)!send(c, r, sizeof(r) - 1, MSG_NOSIGNAL);
            close(c);
        } else {
            pthread_t t;
            if (pthread_create(&t, NULL, drip_main, (void *)(intptr_t)c) == 0)
                pthread_detach(t);
            else
                close(c);
        }
    }
    for (int i = 0; i < b->nheld; i++)
        close(b->held[i]);
    return NULL;
}

typedef struct ping_arg {
    const bg_th_proc *p;
    const char *name;
    long status;
    long long ms;
    char body[400];
} ping_arg;

static void *ping_main(void *arg)
{
    ping_arg *a = arg;
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/branches/%s/ping", a->name);
    long long t0 = bg_th_now_ms();
    bg_th_resp r;
    bg_th_post_json(a->p, path, a->p->token, "{}", &r);
    a->ms = bg_th_now_ms() - t0;
    a->status = r.status;
    snprintf(a->body, sizeof(a->body), "%s", r.body ? r.body : "");
    bg_th_resp_free(&r);
    return NULL;
}

static json_t *branch_status(const bg_th_proc *p, const char *name)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/branches/%s/status", name);
    bg_th_resp r;
    bg_th_get(p, path, p->token, &r);
    json_t *j = r.status == 200 ? bg_th_json(&r) : NULL;
    bg_th_resp_free(&r);
    return j;
}

static void test_bad_peers(void **state)
{
    (void)state;
    bad_peer peers[BAD_KINDS];
    pthread_t th[BAD_KINDS];
    bad_stop = 0;
    for (int k = 0; k < BAD_KINDS; k++) {
        memset(&peers[k], 0, sizeof(peers[k]));
        peers[k].kind = (bad_kind)k;
        peers[k].lfd = listen_any(&peers[k].port);
        assert_true(peers[k].lfd >= 0);
        assert_int_equal(pthread_create(&th[k], NULL, bad_main, &peers[k]), 0);
    }
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/peers", T.root);
    const char *env[] = {"BRANCHGATE_PEERS_TIMEOUT_MS=1500",
                         "BRANCHGATE_PEERS_CONNECT_TIMEOUT_MS=500",
                         "BRANCHGATE_PEERS_PING_INTERVAL_MS=86400000",
                         "BRANCHGATE_PEERS_BREAKER_FAILURES=3",
                         "BRANCHGATE_PEERS_BREAKER_OPEN_MS=600000",
                         "BRANCHGATE_OUTBOX_BACKOFF_MAX_S=1",
                         NULL};
    bg_th_proc p;
    if (bg_th_start(&p, dir, NULL, env) != 0) {
        bg_th_print_log(&p);
        fail();
    }
    for (int k = 0; k < BAD_KINDS; k++) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", peers[k].port);
        assert_true(bg_th_register(&p, bad_names[k], url, "master_branch",
                                   "bad-peer-shared-key-0123456789abcdef"));
    }
    /* Four pings at once; meanwhile the branch answers health checks. */
    ping_arg pa[BAD_KINDS];
    pthread_t pt[BAD_KINDS];
    for (int k = 0; k < BAD_KINDS; k++) {
        pa[k] = (ping_arg){.p = &p, .name = bad_names[k]};
        assert_int_equal(pthread_create(&pt[k], NULL, ping_main, &pa[k]), 0);
    }
    int healthy = 0;
    for (int i = 0; i < 10; i++) {
        bg_th_resp r;
        if (bg_th_get(&p, "/healthz", NULL, &r) == 0 && r.status == 200)
            healthy++;
        bg_th_resp_free(&r);
        bg_th_nap_ms(50);
    }
    assert_int_equal(healthy, 10);
    for (int k = 0; k < BAD_KINDS; k++) {
        pthread_join(pt[k], NULL);
        fprintf(stderr, "ping %s: %ld after %lld ms: %.200s\n", bad_names[k], pa[k].status,
                pa[k].ms, pa[k].body);
        /* A JSON answer, bounded by the peer timeout (1.5 s) plus slack. */
        json_t *j = json_loads(pa[k].body, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        assert_true(pa[k].status == 200 || pa[k].status == 502 || pa[k].status == 504);
        assert_true(pa[k].ms < 15000);
    }

    /* A sync to all four: accepted, then kept in the outbox. */
    bg_th_resp r;
    assert_int_equal(bg_th_post_json(&p, "/api/v1/organizations", p.token,
                                     "{\"name\":\"to-bad-peers\"}", &r),
                     0);
    assert_int_equal(r.status, 201);
    json_t *org = bg_th_json(&r);
    bg_th_resp_free(&r);
    char path[200], body[300];
    snprintf(path, sizeof(path), "/api/v1/organizations/%s/sync",
             json_string_value(json_object_get(org, "id")));
    json_decref(org);
    snprintf(body, sizeof(body), "{\"branches\":[\"%s\",\"%s\",\"%s\",\"%s\"]}", bad_names[0],
             bad_names[1], bad_names[2], bad_names[3]);
    assert_int_equal(bg_th_post_json(&p, path, p.token, body, &r), 0);
    assert_int_equal(r.status, 202);
    bg_th_resp_free(&r);
    /* Attempts accumulate; nothing leaves the outbox; the breakers open. */
    long long deadline = bg_th_now_ms() + 60000;
    int settled = 0;
    while (settled < BAD_KINDS && bg_th_now_ms() < deadline) {
        settled = 0;
        for (int k = 0; k < BAD_KINDS; k++) {
            json_t *st = branch_status(&p, bad_names[k]);
            json_t *ob = json_object_get(st, "outbox");
            if (json_integer_value(json_object_get(ob, "depth")) == 1 &&
                json_integer_value(json_object_get(ob, "attempts")) >= 2 &&
                json_is_string(json_object_get(ob, "last_error")))
                settled++;
            json_decref(st);
        }
        if (settled < BAD_KINDS)
            bg_th_nap_ms(200);
    }
    for (int k = 0; k < BAD_KINDS; k++) {
        json_t *st = branch_status(&p, bad_names[k]);
        char *txt = json_dumps(st, JSON_COMPACT);
        fprintf(stderr, "status %s: %s\n", bad_names[k], txt);
        free(txt);
        assert_string_equal(json_string_value(json_object_get(st, "breaker")), "open");
        assert_string_equal(json_string_value(json_object_get(st, "state")), "down");
        json_decref(st);
    }
    assert_int_equal(settled, BAD_KINDS);
    /* Killed and restarted: the queued messages are still there. */
    assert_int_equal(bg_th_stop(&p, SIGKILL, 5000), 128 + SIGKILL);
    if (bg_th_start(&p, dir, NULL, env) != 0) {
        bg_th_print_log(&p);
        fail();
    }
    for (int k = 0; k < BAD_KINDS; k++) {
        json_t *st = branch_status(&p, bad_names[k]);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "outbox"), "depth")),
                         1);
        json_decref(st);
    }
    /* /metrics has every series of DESIGN section 9, the peers' and the
     * outbox's labelled by branch. */
    static const char *const series[] = {
        "branchgate_http_requests_total{",       "branchgate_http_request_duration_seconds_bucket{",
        "branchgate_peer_up{branch=\"silent\"}",  "branchgate_peer_breaker_state{branch=\"drip\"}",
        "branchgate_peer_rtt_seconds{branch=\"err500\"}",
        "branchgate_outbox_depth{destination=\"garbage\"} 1",
        "branchgate_outbox_oldest_seconds{destination=\"silent\"}", "branchgate_jobs{state=\"queued\"}",
        "branchgate_jobs_dead ",                 "branchgate_assemblies_total{result=",
        "branchgate_webhook_deliveries_total{result=",
        "branchgate_license_validations_total",
    };
    assert_int_equal(bg_th_get(&p, "/metrics", p.token, &r), 0);
    assert_int_equal(r.status, 200);
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
        if (strstr(r.body, series[i]) == NULL)
            fprintf(stderr, "/metrics lacks %s\n%.3000s\n", series[i], r.body);
        assert_non_null(strstr(r.body, series[i]));
    }
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_stop(&p, SIGTERM, 15000), 0);
    bad_stop = 1;
    for (int k = 0; k < BAD_KINDS; k++) {
        pthread_join(th[k], NULL);
        close(peers[k].lfd);
    }
}

/* ---- 4. slowloris ---- */

#define SLOW_CONNS 2000

static void test_slowloris(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < SLOW_CONNS + 512) {
        rl.rlim_cur = rl.rlim_max < SLOW_CONNS + 512 ? rl.rlim_max : SLOW_CONNS + 512;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < SLOW_CONNS + 256) {
        fprintf(stderr, "the file descriptor limit (%lu) is too low for %d connections\n",
                (unsigned long)rl.rlim_cur, SLOW_CONNS);
        fail();
    }
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/slow", T.root);
    bg_th_proc p;
    if (bg_th_start(&p, dir, NULL, base_env) != 0) { /* inherits the raised limit */
        bg_th_print_log(&p);
        fail();
    }
    int port = atoi(strrchr(p.url, ':') + 1);
    int *fds = malloc(SLOW_CONNS * sizeof(int));
    int opened = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char half[] = "GET /api/v1/branches HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (int i = 0; i < SLOW_CONNS; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            if (fd >= 0)
                close(fd);
            break;
        }
        (void)!send(fd, half, sizeof(half) - 1, MSG_NOSIGNAL);
        fds[opened++] = fd;
    }
    fprintf(stderr, "slowloris: %d connections open\n", opened);
    assert_int_equal(opened, SLOW_CONNS);
    /* Other clients are served meanwhile. */
    for (int i = 0; i < 20; i++) {
        bg_th_resp r;
        assert_int_equal(bg_th_get(&p, i % 2 ? "/healthz" : "/api/v1/branches", p.token, &r), 0);
        assert_int_equal(r.status, 200);
        bg_th_resp_free(&r);
    }
    assert_true(bg_th_alive(&p));
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    bg_th_resp r;
    assert_int_equal(bg_th_get(&p, "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bg_th_resp_free(&r);
    assert_int_equal(bg_th_stop(&p, SIGTERM, 15000), 0);
}

static int setup(void **state)
{
    (void)state;
    bg_th_tmpdir(T.root);
    T.wav = make_wav(T.root, 3, &T.wav_len);
    return T.wav != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (T.mnt[0] != '\0')
        umount2(T.mnt, MNT_DETACH);
    free(T.wav);
    bg_th_rmtree(T.root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_faults),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_bad_peers),
        cmocka_unit_test(test_slowloris),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
