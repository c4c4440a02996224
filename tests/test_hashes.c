/*
 * tests/test_hashes.c - the internal MD5 (RFC 1321) and CRC-32 (IEEE, as
 * zlib and nginx compute it) the compatibility rings depend on.
 *
 * Known answers: RFC 1321's test suite (appendix A.5) and the million-'a'
 * vector; CRC-32's published check value CRC32("123456789") = 0xCBF43926
 * and two more well-known strings.  Properties: incremental updates give the
 * one-shot result at every split point; CRC-32 agrees with a bit-at-a-time
 * reference on random buffers, which regenerates the table's definition;
 * the MD5 round constants are floor(2^32 |sin i|), checked through a digest
 * computed by an independent straight-line implementation here.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "crc32.h"
#include "md5.h"

static void hex(const uint8_t d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_md5_rfc1321_suite(void **state)
{
    (void)state;
    static const struct {
        const char *in, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234"
         "5678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[16];
        char h[33];
        lbk_md5(v[i].in, strlen(v[i].in), d);
        hex(d, h);
        assert_string_equal(h, v[i].md5);
    }
    uint8_t d[16];
    char h[33];
    lbk_md5(NULL, 0, d);
    hex(d, h);
    assert_string_equal(h, "d41d8cd98f00b204e9800998ecf8427e");
}

static void test_md5_million_a(void **state)
{
    (void)state;
    char buf[1000];
    memset(buf, 'a', sizeof buf);
    lbk_md5_ctx ctx;
    lbk_md5_init(&ctx);
    for (int i = 0; i < 1000; i++)
        lbk_md5_update(&ctx, buf, sizeof buf);
    uint8_t d[16];
    char h[33];
    lbk_md5_final(&ctx, d);
    hex(d, h);
    assert_string_equal(h, "7707d6ae4e027c70eea2a935c2296f21");
}

static void test_md5_incremental_matches_oneshot(void **state)
{
    (void)state;
    uint8_t msg[300];
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)test_rand(&s);
    /* Every length around the 55/56/64-byte padding edges, every split. */
    for (size_t len = 0; len <= 200; len++) {
        uint8_t one[16];
        lbk_md5(msg, len, one);
        for (size_t cut = 0; cut <= len; cut += (len > 70 ? 7 : 1)) {
            lbk_md5_ctx c;
            uint8_t two[16];
            lbk_md5_init(&c);
            lbk_md5_update(&c, msg, cut);
            lbk_md5_update(&c, NULL, 0);
            lbk_md5_update(&c, msg + cut, len - cut);
            lbk_md5_final(&c, two);
            assert_memory_equal(one, two, 16);
        }
    }
}

/* The round constants, independently: floor(2^32 * |sin(i)|) for i = 1..64
 * in double, which is exact enough for all 64 (a 53-bit mantissa against a
 * 32-bit result).  A one-block MD5 written straight from RFC 1321 section
 * 3.4 with these constants must agree with lib/md5.c. */
static void test_md5_constants_from_sine(void **state)
{
    (void)state;
    uint32_t t[64];
    for (int i = 0; i < 64; i++)
        t[i] = (uint32_t)floor(fabs(sin((double)(i + 1))) * 4294967296.0);
    static const unsigned sh[4][4] = {
        {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
    /* "abc" padded into one block */
    uint8_t blk[64] = {'a', 'b', 'c', 0x80};
    blk[56] = 24;
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 |
               (uint32_t)blk[4 * i + 2] << 16 | (uint32_t)blk[4 * i + 3] << 24;
    uint32_t a = 0x67452301u, b = 0xefcdab89u, c = 0x98badcfeu, d = 0x10325476u;
    uint32_t a0 = a, b0 = b, c0 = c, d0 = d;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int k;
        if (i < 16) {
            f = (b & c) | (~b & d);
            k = i;
        } else if (i < 32) {
            f = (b & d) | (c & ~d);
            k = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            k = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            k = (7 * i) % 16;
        }
        uint32_t v = a + f + t[i] + x[k];
        unsigned r = sh[i / 16][i % 4];
        uint32_t tmp = d;
        d = c;
        c = b;
        b = b + ((v << r) | (v >> (32 - r)));
        a = tmp;
    }
    uint32_t st[4] = {a0 + a, b0 + b, c0 + c, d0 + d};
    uint8_t mine[16], lib[16];
    for (int i = 0; i < 16; i++)
        mine[i] = (uint8_t)(st[i / 4] >> (8 * (i % 4)));
    lbk_md5("abc", 3, lib);
    assert_memory_equal(mine, lib, 16);
    assert_int_equal(t[0], 0xd76aa478u);
    assert_int_equal(t[63], 0xeb86d391u);
}

/* CRC-32, one bit at a time, straight from the definition. */
static uint32_t crc32_bitwise(const uint8_t *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void test_crc32_known_answers(void **state)
{
    (void)state;
    assert_int_equal(lbk_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(lbk_crc32("", 0), 0);
    assert_int_equal(lbk_crc32(NULL, 0), 0);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(lbk_crc32(fox, strlen(fox)), 0x414fa339u);
    assert_int_equal(lbk_crc32("a", 1), 0xe8b7be43u);
}

static void test_crc32_matches_bitwise_and_chains(void **state)
{
    (void)state;
    uint8_t buf[512];
    uint64_t s = 7;
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)(test_rand(&s) % sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)test_rand(&s);
        uint32_t want = crc32_bitwise(buf, len);
        assert_int_equal(lbk_crc32(buf, len), want);
        size_t cut = len ? (size_t)(test_rand(&s) % len) : 0;
        uint32_t st = lbk_crc32_update(lbk_crc32_init(), buf, cut);
        st = lbk_crc32_update(st, buf + cut, len - cut);
        assert_int_equal(lbk_crc32_final(st), want);
    }
    /* every single-byte input: exercises each table entry */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        assert_int_equal(lbk_crc32(&b, 1), crc32_bitwise(&b, 1));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5_rfc1321_suite),
        cmocka_unit_test(test_md5_million_a),
        cmocka_unit_test(test_md5_incremental_matches_oneshot),
        cmocka_unit_test(test_md5_constants_from_sine),
        cmocka_unit_test(test_crc32_known_answers),
        cmocka_unit_test(test_crc32_matches_bitwise_and_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
