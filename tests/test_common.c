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

/* lbk_alloc_init falls back to libc for anything but a complete hook (the
 * public constructors reject half hooks first; this is the last line). */
static void test_alloc_init_fallback(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_allocator only_alloc = {fa.hook.alloc, NULL, &fa};
    lbk_allocator only_free = {NULL, fa.hook.free, &fa};
    const lbk_allocator *halves[] = {&only_alloc, &only_free, NULL};
    for (size_t i = 0; i < 3; i++) {
        lbk_allocator a;
        lbk_alloc_init(&a, halves[i]);
        assert_non_null(a.alloc);
        assert_non_null(a.free);
        assert_ptr_not_equal(a.alloc, fa.hook.alloc);
        assert_null(a.user);
        void *p = lbk_malloc(&a, 8);
        assert_non_null(p);
        lbk_free(&a, p);
    }
    assert_int_equal(fa.calls, 0); /* the half hook was never called */
    /* size 0: one byte is requested, a real pointer comes back */
    lbk_allocator a;
    lbk_alloc_init(&a, &fa.hook);
    void *z = lbk_calloc(&a, 5, 0);
    assert_non_null(z);
    assert_int_equal(fa.live, 1);
    lbk_free(&a, z);
    z = lbk_malloc(&a, 0);
    assert_non_null(z);
    lbk_free(&a, z);
    assert_int_equal(fa.live, 0);
    /* overflow is refused before the hook is called */
    fail_alloc_reset(&fa, -1);
    assert_null(lbk_calloc(&a, SIZE_MAX / 2 + 1, 2));
    assert_int_equal(fa.calls, 0);
}

/* The publication cell on one thread: empty, a pointer that does not fit
 * its 48 bits, NULL publications, and the references it hands out. */
struct counted {
    lbk_ref ref;
    int destroyed;
};

static void counted_destroy(lbk_ref *r)
{
    ((struct counted *)r)->destroyed++;
}

static void test_cell_single_thread(void **state)
{
    (void)state;
    lbk_cell c;
    lbk_cell_init(&c);
    assert_null(lbk_cell_acquire(&c)); /* empty */
    assert_null(lbk_cell_acquire(&c)); /* and the pending count came back */

    struct counted o1 = {0}, o2 = {0};
    lbk_ref_init(&o1.ref, counted_destroy);
    lbk_ref_init(&o2.ref, counted_destroy);
    assert_ok(lbk_cell_publish(&c, &o1.ref));
    lbk_ref *r = lbk_cell_acquire(&c);
    assert_ptr_equal(r, &o1.ref);
    assert_int_equal(atomic_load(&o1.ref.refs), 2);

    /* An address above 48 bits is refused and nothing changes.  It is never
     * dereferenced: publish checks it first. */
    lbk_ref *high = (lbk_ref *)(uintptr_t)(UINT64_C(1) << 56);
    assert_lbk(lbk_cell_publish(&c, high), LBK_ENOTSUP);
    lbk_ref *again = lbk_cell_acquire(&c);
    assert_ptr_equal(again, &o1.ref);
    lbk_ref_release(again);
    assert_int_equal(atomic_load(&o1.ref.refs), 2);

    /* Publishing NULL empties the cell; o1 lives on through r. */
    assert_ok(lbk_cell_publish(&c, NULL));
    assert_null(lbk_cell_acquire(&c));
    assert_int_equal(o1.destroyed, 0);
    lbk_ref_release(r);
    assert_int_equal(o1.destroyed, 1);

    assert_ok(lbk_cell_publish(&c, &o2.ref));
    lbk_cell_clear(&c);
    assert_int_equal(o2.destroyed, 1);
    assert_null(lbk_cell_acquire(&c));
    lbk_cell_clear(&c); /* clearing an empty cell is harmless */
    lbk_ref_release(NULL);
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
        cmocka_unit_test(test_alloc_init_fallback),
        cmocka_unit_test(test_cell_single_thread),
        cmocka_unit_test(test_rng_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
