#include "md5.h"

#include <string.h>

static const uint8_t MAGIC[4] = {'B', 'M', '5', 0x01};
static const uint32_t IV[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};

/* RFC 1321 section 3.4: T[i] = floor(2^32 * abs(sin(i + 1))) and the
 * per-round shift amounts, laid out for a single 64-step loop. */
static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const uint8_t S[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t rol(uint32_t x, unsigned n)
{
    return x << n | x >> (32 - n);
}

/* One 64-byte block, the four rounds of RFC 1321 section 3.4 folded into
 * one loop: step i uses function F/G/H/I and message word g. */
static void block(uint32_t h[4], const uint8_t *p)
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = rd32(p + 4 * i);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (unsigned i = 0; i < 64; i++) {
        uint32_t f;
        unsigned g;
        switch (i / 16) {
        case 0: f = (b & c) | (~b & d); g = i; break;
        case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
        case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
        default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol(a + f + K[i] + x[g], S[i]);
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

void bg_md5_init(bg_md5 *m)
{
    memcpy(m->h, IV, sizeof(IV));
    m->len = 0;
    memset(m->buf, 0, sizeof(m->buf));
}

void bg_md5_update(bg_md5 *m, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t used = (size_t)(m->len % 64);
    if (len == 0)
        return; /* data may be NULL, which memcpy must not see */
    m->len += len;
    if (used > 0) {
        size_t take = 64 - used < len ? 64 - used : len;
        memcpy(m->buf + used, p, take);
        p += take;
        len -= take;
        if (used + take < 64)
            return;
        block(m->h, m->buf);
    }
    for (; len >= 64; p += 64, len -= 64)
        block(m->h, p);
    if (len > 0)
        memcpy(m->buf, p, len);
}

void bg_md5_final(const bg_md5 *m, uint8_t out[BG_MD5_BYTES])
{
    bg_md5 c = *m;
    /* Padding: 0x80, zeros up to 56 mod 64, then the bit length (mod 2^64)
     * little-endian. Appending it through update keeps one code path. */
    uint8_t pad[72] = {0x80};
    size_t used = (size_t)(c.len % 64);
    size_t padlen = used < 56 ? 56 - used : 120 - used;
    uint64_t bits = m->len * 8;
    bg_md5_update(&c, pad, padlen);
    wr64(pad, bits);
    bg_md5_update(&c, pad, 8);
    for (int i = 0; i < 4; i++)
        wr32(out + 4 * i, c.h[i]);
}

void bg_md5_hex(const uint8_t d[BG_MD5_BYTES], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < BG_MD5_BYTES; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[32] = '\0';
}

void bg_md5_save(const bg_md5 *m, uint8_t out[BG_MD5_STATE_BYTES])
{
    size_t used = (size_t)(m->len % 64);
    memcpy(out, MAGIC, 4);
    for (int i = 0; i < 4; i++)
        wr32(out + 4 + 4 * i, m->h[i]);
    wr64(out + 20, m->len);
    memcpy(out + 28, m->buf, used);
    memset(out + 28 + used, 0, 64 - used);
}

bg_err bg_md5_load(bg_md5 *m, const uint8_t *in, size_t len)
{
    if (in == NULL || len != BG_MD5_STATE_BYTES || memcmp(in, MAGIC, 4) != 0)
        return BG_EINVAL;
    bg_md5 t;
    for (int i = 0; i < 4; i++)
        t.h[i] = rd32(in + 4 + 4 * i);
    t.len = rd64(in + 20);
    memcpy(t.buf, in + 28, 64);
    /* A state that bg_md5_save cannot produce was corrupted or forged:
     * refuse it rather than return a digest of something else. */
    for (size_t i = (size_t)(t.len % 64); i < 64; i++)
        if (t.buf[i] != 0)
            return BG_EINVAL;
    if (t.len < 64 && memcmp(t.h, IV, sizeof(IV)) != 0)
        return BG_EINVAL;
    *m = t;
    return BG_OK;
}
