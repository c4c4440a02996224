/*
 * tests/test_common.c - error list, version, allocator hook, lbk_hash.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/lbkit.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static void test_errors_unique_and_named(void **state)
{
    (void)state;
    int codes[] = {
#define X(name, value, msg) LBK_##name,
        LBK_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        assert_int_equal(codes[i], -(int)(i + 1)); /* fixed, dense values */
        assert_string_not_equal(lbk_strerror(codes[i]), "unknown error");
        assert_memory_equal(lbk_errname(codes[i]), "LBK_E", 5);
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
    assert_string_equal(lbk_strerror(0), "success");
    assert_string_equal(lbk_strerror(7), "success");
    assert_string_equal(lbk_strerror(-9999), "unknown error");
    assert_string_equal(lbk_errname(0), "LBK_OK");
    assert_string_equal(lbk_errname(-9999), "LBK_UNKNOWN");
    assert_string_equal(lbk_errname(LBK_EINVAL), "LBK_EINVAL");
    assert_string_equal(lbk_strerror(LBK_ENOMEM), "out of memory");
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(lbk_version(), LBK_VERSION_NUMBER);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", LBK_VERSION_MAJOR, LBK_VERSION_MINOR,
             LBK_VERSION_PATCH);
    assert_string_equal(lbk_version_string(), buf);
    assert_string_equal(lbk_version_string(), "0.1.0");
}

static void test_hash_is_xxh3(void **state)
{
    (void)state;
    const char *k = "hello, lbkit";
    for (uint64_t seed = 0; seed < 5; seed++) {
        assert_int_equal(lbk_hash(k, strlen(k), seed),
                         XXH3_64bits_withSeed(k, strlen(k), seed));
        assert_int_equal(lbk_hash_str(k, seed), lbk_hash(k, strlen(k), seed));
    }
    /* Published XXH3-64 answer for the empty input, seed 0. */
    assert_int_equal(lbk_hash("", 0, 0), UINT64_C(0x2D06800538D394C2));
    assert_int_equal(lbk_hash(NULL, 10, 0), lbk_hash("", 0, 0));
    assert_int_equal(lbk_hash_str(NULL, 3), lbk_hash("", 0, 3));
    assert_int_not_equal(lbk_hash(k, strlen(k), 1), lbk_hash(k, strlen(k), 2));
}

static void test_allocator_hook(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_allocator a;
    lbk_alloc_init(&a, &fa.hook);
    void *p = lbk_malloc(&a, 10);
    assert_non_null(p);
    assert_int_equal(fa.live, 1);
    lbk_free(&a, p);
    assert_int_equal(fa.live, 0);
    fail_alloc_reset(&fa, 0);
    assert_null(lbk_malloc(&a, 10));
    assert_null(lbk_calloc(&a, SIZE_MAX, 2)); /* overflow: no call made */
    lbk_free(&a, NULL);
    /* NULL means libc; a half-set hook is invalid. */
    assert_true(lbk_alloc_valid(NULL));
    lbk_allocator half = {fa.hook.alloc, NULL, NULL};
    assert_false(lbk_alloc_valid(&half));
    lbk_alloc_init(&a, NULL);
    p = lbk_calloc(&a, 4, 4);
    assert_non_null(p);
    assert_int_equal(((unsigned char *)p)[15], 0);
    lbk_free(&a, p);
}

static void test_rng_helpers(void **state)
{
    (void)state;
    lbk_rng r1, r2;
    lbk_rng_seed(&r1, 42);
    lbk_rng_seed(&r2, 42);
    for (int i = 0; i < 100; i++)
        assert_int_equal(lbk_rng_next(&r1), lbk_rng_next(&r2));
    uint64_t s = 42, t = 42;
    lbk_rng_seed(&r1, 42);
    assert_int_equal(lbk_rng_local_next(&s), lbk_rng_next(&r1));
    (void)t;
    for (uint32_t n = 1; n < 1000; n += 37) {
        assert_true(lbk_bounded32(UINT32_MAX, n) == n - 1);
        assert_true(lbk_bounded32(0, n) == 0);
        assert_true(lbk_bounded64(UINT64_MAX, n) == n - 1);
    }
    assert_true(lbk_unit_double(UINT64_MAX) < 1.0);
    assert_true(lbk_entropy_seed(&r1) != lbk_entropy_seed(&r1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_unique_and_named),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_hash_is_xxh3),
        cmocka_unit_test(test_allocator_hook),
        cmocka_unit_test(test_rng_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
