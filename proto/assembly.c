#include "assembly.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "parse.h"
#include "sig.h"

static void absorb(crypto_hash_sha256_state *st, const char *s)
{
    crypto_hash_sha256_update(st, (const unsigned char *)s, strlen(s));
}

void bg_assembly_id(const char *branch, const char *const *md5s, size_t n,
                    const char *template_id, const char *user, char out[BG_ASSEMBLY_ID_LEN + 1])
{
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    absorb(&st, branch);
    absorb(&st, ":");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            absorb(&st, ",");
        absorb(&st, md5s[i]);
    }
    absorb(&st, ":");
    absorb(&st, template_id);
    absorb(&st, ":");
    absorb(&st, user);
    crypto_hash_sha256_final(&st, h);
    bg_hex_encode(h, sizeof(h), out);
}

static bool lower_hex(const char *s, size_t want)
{
    if (s == NULL)
        return false;
    size_t i = 0;
    for (; i < want; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[i] == '\0';
}

bool bg_assembly_id_valid(const char *s)
{
    return lower_hex(s, BG_ASSEMBLY_ID_LEN);
}

bool bg_md5_hex_valid(const char *s)
{
    return lower_hex(s, 32);
}

void bg_hex_lower(char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

void bg_upload_id_new(char out[BG_UPLOAD_ID_LEN + 1])
{
    uint8_t raw[BG_UPLOAD_ID_LEN / 2];
    bg_sig_random(raw, sizeof(raw));
    bg_hex_encode(raw, sizeof(raw), out);
}

bool bg_upload_id_valid(const char *s)
{
    return lower_hex(s, BG_UPLOAD_ID_LEN);
}

bg_err bg_channel_parse(const char *s, size_t len, char branch[BG_BRANCH_NAME_MAX + 1],
                        char assembly_id[BG_ASSEMBLY_ID_LEN + 1])
{
    static const char prefix[] = "upload:";
    const size_t plen = sizeof(prefix) - 1;
    if (s == NULL || len <= plen || memcmp(s, prefix, plen) != 0)
        return BG_EINVAL;
    const char *b = s + plen;
    const char *colon = memchr(b, ':', len - plen);
    if (colon == NULL)
        return BG_EINVAL;
    size_t blen = (size_t)(colon - b), ilen = len - plen - blen - 1;
    /* Branch names cannot hold ':', so the first colon ends the branch;
     * the id must then fill the rest exactly (no further ':'). */
    if (!bg_str_is_ident(b, blen, BG_BRANCH_NAME_MAX, "-_.") || ilen != BG_ASSEMBLY_ID_LEN)
        return BG_EINVAL;
    char id[BG_ASSEMBLY_ID_LEN + 1];
    memcpy(id, colon + 1, ilen);
    id[ilen] = '\0';
    if (!bg_assembly_id_valid(id))
        return BG_EINVAL;
    memcpy(branch, b, blen);
    branch[blen] = '\0';
    memcpy(assembly_id, id, sizeof(id));
    return BG_OK;
}

long long bg_job_backoff_ms(int attempt, long long unit_ms)
{
    long long a = attempt < 1 ? 1 : attempt, p, d;
    if (unit_ms <= 0)
        return 0;
    if (__builtin_mul_overflow(a, a, &p) || __builtin_mul_overflow(p, p, &p) ||
        __builtin_add_overflow(p, 15LL, &p) || __builtin_mul_overflow(p, unit_ms, &d))
        return LLONG_MAX;
    return d;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* One element of a schedule, spaces around it allowed, into milliseconds. */
static bg_err schedule_elem(const char *p, size_t n, long long *ms)
{
    uint64_t sec;
    while (n > 0 && is_ows(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_ows(p[n - 1]))
        n--;
    if (bg_parse_duration(p, n, BG_WEBHOOK_DELAY_MAX_S, &sec) != BG_OK)
        return BG_EINVAL;
    *ms = (long long)sec * 1000;
    return BG_OK;
}

bg_err bg_webhook_schedule_parse(const char *s, long long out_ms[BG_WEBHOOK_SCHEDULE_MAX],
                                 size_t *n)
{
    long long tmp[BG_WEBHOOK_SCHEDULE_MAX];
    size_t k = 0;
    if (s == NULL || *s == '\0')
        return BG_EINVAL;
    for (const char *p = s;; p++) {
        size_t elen = strcspn(p, ",");
        if (k == BG_WEBHOOK_SCHEDULE_MAX || schedule_elem(p, elen, &tmp[k]) != BG_OK)
            return BG_EINVAL;
        k++;
        p += elen;
        if (*p == '\0')
            break;
    }
    memcpy(out_ms, tmp, k * sizeof(tmp[0]));
    *n = k;
    return BG_OK;
}
