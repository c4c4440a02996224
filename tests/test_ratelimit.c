/*
 * tests/test_ratelimit.c - token buckets: exact refill boundaries, burst
 * caps, time going backwards, hierarchy limits, bad input, allocation
 * failure.
 */
#include <math.h>

#include "testutil.h"

#include "lbkit/ratelimit.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(5) * SEC) /* an arbitrary creation time */

static lbk_tokenbucket *bucket(double rate, uint32_t burst,
                               lbk_tokenbucket *parent)
{
    lbk_tokenbucket *tb = NULL;
    assert_ok(lbk_tokenbucket_create(rate, burst, parent, T0, NULL, &tb));
    return tb;
}

static void test_burst_then_exact_refill(void **state)
{
    (void)state;
    lbk_tokenbucket *tb = bucket(10.0, 5, NULL); /* one token per 100 ms */
    double avail;
    assert_ok(lbk_tokenbucket_available(tb, T0, &avail));
    assert_true(avail == 5.0); /* a new bucket is full */
    for (int i = 0; i < 5; i++)
        assert_ok(lbk_tokenbucket_take(tb, 1, T0));
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0), LBK_EAGAIN);
    uint64_t wait;
    assert_ok(lbk_tokenbucket_wait_ns(tb, 1, T0, &wait));
    assert_int_equal(wait, 100 * MS);
    assert_ok(lbk_tokenbucket_wait_ns(tb, 3, T0, &wait));
    assert_int_equal(wait, 300 * MS);
    /* one nanosecond before the token: refused; exactly at it: taken */
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0 + 100 * MS - 1), LBK_EAGAIN);
    assert_ok(lbk_tokenbucket_take(tb, 1, T0 + 100 * MS));
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0 + 100 * MS), LBK_EAGAIN);
    assert_ok(lbk_tokenbucket_available(tb, T0 + 150 * MS, &avail));
    assert_true(fabs(avail - 0.5) < 1e-9);
    /* a long idle spell refills to the burst and no further */
    assert_ok(lbk_tokenbucket_available(tb, T0 + 3600 * SEC, &avail));
    assert_true(avail == 5.0);
    assert_ok(lbk_tokenbucket_take(tb, 5, T0 + 3600 * SEC));
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0 + 3600 * SEC), LBK_EAGAIN);
    assert_ok(
        lbk_tokenbucket_wait_ns(tb, 1, T0 + 3600 * SEC + 100 * MS, &wait));
    assert_int_equal(wait, 0);
    lbk_tokenbucket_free(tb);
}

static void test_long_run_rate(void **state)
{
    (void)state;
    /* 1000/s with burst 1, greedy taker every 0.1 ms for 10 s: exactly
     * 1 (initial) + 10000 tokens. */
    lbk_tokenbucket *tb = bucket(1000.0, 1, NULL);
    uint64_t taken = 0;
    for (uint64_t t = 0; t <= 10 * SEC; t += 100000)
        taken += lbk_tokenbucket_take(tb, 1, T0 + t) == 0;
    assert_int_equal(taken, 10001);
    lbk_tokenbucket_free(tb);
    /* A rate whose token cost is fractional in ns: 3 per second, sampled
     * every ms for 30 s.  Expected counts from an exact rational-arithmetic
     * simulation of the same rule: 90 with burst 1 (a late taker loses the
     * fraction), 92 with burst 2 (the tolerance absorbs the lateness). */
    static const uint32_t bursts[2] = {1, 2}, expect[2] = {90, 92};
    for (int k = 0; k < 2; k++) {
        tb = bucket(3.0, bursts[k], NULL);
        taken = 0;
        for (uint64_t t = 0; t <= 30 * SEC; t += MS)
            taken += lbk_tokenbucket_take(tb, 1, T0 + t) == 0;
        assert_int_equal(taken, expect[k]);
        lbk_tokenbucket_free(tb);
    }
}

static void test_time_backwards(void **state)
{
    (void)state;
    lbk_tokenbucket *tb = bucket(10.0, 2, NULL);
    assert_ok(lbk_tokenbucket_take(tb, 2, T0 + SEC));
    /* an older clock reading creates no tokens */
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0 + SEC / 2), LBK_EAGAIN);
    assert_lbk(lbk_tokenbucket_take(tb, 1, 0), LBK_EAGAIN);
    double avail;
    assert_ok(lbk_tokenbucket_available(tb, 0, &avail));
    assert_true(avail == 0.0);
    assert_ok(lbk_tokenbucket_take(tb, 1, T0 + SEC + 100 * MS));
    lbk_tokenbucket_free(tb);
    /* before creation counts as creation time */
    tb = bucket(10.0, 2, NULL);
    assert_ok(lbk_tokenbucket_take(tb, 2, 0));
    assert_lbk(lbk_tokenbucket_take(tb, 1, T0), LBK_EAGAIN);
    lbk_tokenbucket_free(tb);
}

static void test_hierarchy_parent_never_exceeded(void **state)
{
    (void)state;
    lbk_tokenbucket *parent = bucket(10.0, 10, NULL);
    lbk_tokenbucket *a = bucket(100.0, 8, parent);
    lbk_tokenbucket *b = bucket(100.0, 8, parent);
    assert_ok(lbk_tokenbucket_take(a, 8, T0));
    assert_lbk(lbk_tokenbucket_take(a, 1, T0), LBK_EAGAIN); /* a's own limit */
    assert_ok(lbk_tokenbucket_take(b, 2, T0));
    assert_lbk(lbk_tokenbucket_take(b, 1, T0), LBK_EAGAIN); /* the parent's */
    double avail;
    assert_ok(lbk_tokenbucket_available(b, T0, &avail));
    assert_true(avail == 6.0); /* the refused take was given back */
    uint64_t wait;
    assert_ok(lbk_tokenbucket_wait_ns(b, 1, T0, &wait));
    assert_int_equal(wait, 100 * MS); /* the parent's refill */
    assert_lbk(lbk_tokenbucket_take(b, 9, T0), LBK_ERANGE); /* b's burst 8 */
    assert_lbk(lbk_tokenbucket_wait_ns(b, 9, T0, &wait), LBK_ERANGE);

    /* Random takes over 20 s: the children together never beat the
     * parent's rate + burst, and each child never beats its own. */
    uint64_t seed = 42, got_a = 0, got_b = 0;
    for (uint64_t t = MS; t <= 20 * SEC; t += MS) {
        uint64_t r = test_rand(&seed);
        lbk_tokenbucket *c = (r & 1) ? a : b;
        uint32_t n = 1 + (uint32_t)((r >> 8) % 3);
        if (lbk_tokenbucket_take(c, n, T0 + t) == 0)
            *(c == a ? &got_a : &got_b) += n;
    }
    assert_true(got_a + got_b <= 10 + 10 * 20);
    assert_true(got_a + got_b >= 10 * 20 - 3); /* and the parent is used */
    lbk_tokenbucket_free(parent);              /* children keep it alive */
    assert_ok(lbk_tokenbucket_take(a, 1, T0 + 30 * SEC));
    lbk_tokenbucket_free(a);
    lbk_tokenbucket_free(b);
}

static void test_depth_limit(void **state)
{
    (void)state;
    lbk_tokenbucket *chain[17];
    chain[0] = bucket(1000.0, 10, NULL);
    for (int i = 1; i < 16; i++)
        chain[i] = bucket(1000.0, 10, chain[i - 1]);
    lbk_tokenbucket *tb = NULL;
    assert_lbk(lbk_tokenbucket_create(1000.0, 10, chain[15], T0, NULL, &tb),
               LBK_ERANGE);
    assert_null(tb);
    assert_ok(lbk_tokenbucket_take(chain[15], 10, T0));
    assert_lbk(lbk_tokenbucket_take(chain[0], 1, T0), LBK_EAGAIN);
    for (int i = 15; i >= 0; i--)
        lbk_tokenbucket_free(chain[i]);
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_tokenbucket *tb = NULL;
    assert_lbk(lbk_tokenbucket_create(1.0, 1, NULL, 0, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(0.0, 1, NULL, 0, NULL, &tb), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(-1.0, 1, NULL, 0, NULL, &tb), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(NAN, 1, NULL, 0, NULL, &tb), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(INFINITY, 1, NULL, 0, NULL, &tb),
               LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(1.0, 0, NULL, 0, NULL, &tb), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_create(1e11, 1, NULL, 0, NULL, &tb), LBK_ERANGE);
    assert_lbk(lbk_tokenbucket_create(1e-9, 1, NULL, 0, NULL, &tb), LBK_ERANGE);
    lbk_allocator half = {NULL, fail_free_fn, NULL};
    assert_lbk(lbk_tokenbucket_create(1.0, 1, NULL, 0, &half, &tb), LBK_EINVAL);
    assert_null(tb);
    tb = bucket(1.0, 3, NULL);
    assert_lbk(lbk_tokenbucket_take(NULL, 1, 0), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_take(tb, 0, 0), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_take(tb, 4, T0), LBK_ERANGE);
    double d = -1.0;
    uint64_t w = 7;
    assert_lbk(lbk_tokenbucket_available(NULL, 0, &d), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_available(tb, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_wait_ns(tb, 0, 0, &w), LBK_EINVAL);
    assert_lbk(lbk_tokenbucket_wait_ns(tb, 1, 0, NULL), LBK_EINVAL);
    assert_true(d == -1.0 && w == 7); /* not written on failure */
    assert_ok(lbk_tokenbucket_available(tb, T0, &d));
    assert_true(d == 3.0); /* failed calls took nothing */
    lbk_tokenbucket_free(tb);
    lbk_tokenbucket_free(NULL);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_tokenbucket *parent = NULL, *child = NULL;
    assert_ok(lbk_tokenbucket_create(5.0, 5, NULL, T0, &fa.hook, &parent));
    assert_int_equal(fa.live, 1);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_tokenbucket_create(5.0, 5, parent, T0, &fa.hook, &child);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(child);
        assert_int_equal(fa.live, 1); /* nothing leaked */
        assert_ok(lbk_tokenbucket_take(parent, 5, T0 + 10 * SEC * (k + 1)));
    }
    assert_int_equal(fa.live, 2);
    lbk_tokenbucket_free(parent); /* the child holds it */
    assert_int_equal(fa.live, 2);
    lbk_tokenbucket_free(child);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_exact_refill),
        cmocka_unit_test(test_long_run_rate),
        cmocka_unit_test(test_time_backwards),
        cmocka_unit_test(test_hierarchy_parent_never_exceeded),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
