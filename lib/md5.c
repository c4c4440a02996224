/*
 * lib/md5.c - MD5 as RFC 1321 specifies it: 64-byte blocks, four rounds of
 * sixteen steps over a 128-bit state, little-endian words, the message
 * padded with 0x80, zeros and its bit length.
 *
 * Written here from the RFC rather than taken from a Debian library: the
 * core library depends on xxHash alone (DESIGN.md), and the ketama rings
 * only need MD5 of short strings at build time and of keys at lookup.  It
 * is checked against the RFC's own test suite (appendix A.5) and the
 * sine-derived constants against floor(2^32 * |sin(i)|) in
 * tests/test_hashes.c.  MD5 is broken as a cryptographic hash; here it only
 * has to match the peers bit for bit.
 */
#include <string.h>

#include "md5.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), i in radians (RFC 1321, 3.4). */
static const uint32_t md5_t[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu,
    0x4787c62au, 0xa8304613u, 0xfd469501u, 0x698098d8u, 0x8b44f7afu,
    0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u, 0xa679438eu,
    0x49b40821u, 0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau,
    0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u, 0x21e1cde6u,
    0xc33707d6u, 0xf4d50d87u, 0x455a14edu, 0xa9e3e905u, 0xfcefa3f8u,
    0x676f02d9u, 0x8d2a4c8au, 0xfffa3942u, 0x8771f681u, 0x6d9d6122u,
    0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u, 0xd9d4d039u,
    0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u, 0xf4292244u, 0x432aff97u,
    0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du,
    0x85845dd1u, 0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u,
    0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

/* Left-rotation amounts, four per round (RFC 1321, 3.4). */
static const uint8_t md5_s[4][4] = {
    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static inline uint32_t rotl32(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32u - s));
}

static inline uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void md5_block(uint32_t state[4], const uint8_t block[64])
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = load_le32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (unsigned i = 0; i < 64; i++) {
        unsigned round = i >> 4;
        uint32_t f;
        unsigned k;
        switch (round) {
        case 0: /* F(b,c,d) = bc | ~b d, words in order */
            f = (b & c) | (~b & d);
            k = i;
            break;
        case 1: /* G(b,c,d) = bd | c ~d, word 5i+1 */
            f = (b & d) | (c & ~d);
            k = (5 * i + 1) & 15;
            break;
        case 2: /* H = b ^ c ^ d, word 3i+5 */
            f = b ^ c ^ d;
            k = (3 * i + 5) & 15;
            break;
        default: /* I = c ^ (b | ~d), word 7i */
            f = c ^ (b | ~d);
            k = (7 * i) & 15;
            break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl32(a + f + md5_t[i] + x[k], md5_s[round][i & 3]);
        a = t;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void lbk_md5_init(lbk_md5_ctx *ctx)
{
    ctx->state[0] = 0x67452301u;
    ctx->state[1] = 0xefcdab89u;
    ctx->state[2] = 0x98badcfeu;
    ctx->state[3] = 0x10325476u;
    ctx->length = 0;
}

void lbk_md5_update(lbk_md5_ctx *ctx, const void *data, size_t len)
{
    if (len == 0)
        return;
    const uint8_t *p = data;
    size_t used = (size_t)(ctx->length & 63u);
    ctx->length += len;
    if (used != 0) {
        size_t take = 64 - used < len ? 64 - used : len;
        memcpy(ctx->block + used, p, take);
        p += take;
        len -= take;
        if (used + take < 64)
            return;
        md5_block(ctx->state, ctx->block);
    }
    for (; len >= 64; p += 64, len -= 64)
        md5_block(ctx->state, p);
    if (len != 0)
        memcpy(ctx->block, p, len);
}

void lbk_md5_final(lbk_md5_ctx *ctx, uint8_t digest[16])
{
    uint64_t bits = ctx->length * 8u;
    size_t used = (size_t)(ctx->length & 63u);
    ctx->block[used++] = 0x80;
    if (used > 56) {
        memset(ctx->block + used, 0, 64 - used);
        md5_block(ctx->state, ctx->block);
        used = 0;
    }
    memset(ctx->block + used, 0, 56 - used);
    for (int i = 0; i < 8; i++)
        ctx->block[56 + i] = (uint8_t)(bits >> (8 * i));
    md5_block(ctx->state, ctx->block);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            digest[4 * i + j] = (uint8_t)(ctx->state[i] >> (8 * j));
}

void lbk_md5(const void *data, size_t len, uint8_t digest[16])
{
    lbk_md5_ctx ctx;
    lbk_md5_init(&ctx);
    lbk_md5_update(&ctx, data, len);
    lbk_md5_final(&ctx, digest);
}
