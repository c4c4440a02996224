/*
 * tests/test_retry.c - back-off formulas and the retry budget: exact caps,
 * jitter ranges and moments, budget arithmetic at window boundaries, time
 * going backwards, overload containment, bad input, allocation failure.
 */
#include <math.h>

#include "testutil.h"

#include "lbkit/retry.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static void test_exponential(void **state)
{
    (void)state;
    uint64_t v;
    assert_ok(lbk_backoff_exponential(100 * MS, 10 * SEC, 0, &v));
    assert_int_equal(v, 100 * MS);
    assert_ok(lbk_backoff_exponential(100 * MS, 10 * SEC, 3, &v));
    assert_int_equal(v, 800 * MS);
    assert_ok(lbk_backoff_exponential(100 * MS, 12800 * MS, 7, &v));
    assert_int_equal(v, 12800 * MS); /* exactly at the cap */
    assert_ok(lbk_backoff_exponential(100 * MS, 10 * SEC, 7, &v));
    assert_int_equal(v, 10 * SEC);
    assert_ok(lbk_backoff_exponential(100 * MS, 10 * SEC, 63, &v));
    assert_int_equal(v, 10 * SEC);
    assert_ok(lbk_backoff_exponential(UINT64_MAX / 2, UINT64_MAX, 5000, &v));
    assert_int_equal(v, UINT64_MAX);
}

static void test_full_jitter(void **state)
{
    (void)state;
    uint64_t s1 = 7, s2 = 7, v1, v2;
    double sum = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 20000; i++) {
        assert_ok(lbk_backoff_full_jitter(100 * MS, 10 * SEC, 3, &s1, &v1));
        assert_ok(lbk_backoff_full_jitter(100 * MS, 10 * SEC, 3, &s2, &v2));
        assert_int_equal(v1, v2); /* same seed, same sequence */
        assert_true(v1 <= 800 * MS);
        sum += (double)v1;
        lo = v1 < lo ? v1 : lo;
        hi = v1 > hi ? v1 : hi;
    }
    /* uniform on [0, 800 ms]: mean 400 ms, standard error ~1.6 ms */
    assert_true(fabs(sum / 20000 - 400e6) < 10e6);
    assert_true(lo < 10 * MS && hi > 790 * MS);
    /* capped attempts draw from [0, cap] */
    for (int i = 0; i < 1000; i++) {
        assert_ok(lbk_backoff_full_jitter(100 * MS, 1 * SEC, 40, &s1, &v1));
        assert_true(v1 <= SEC);
    }
}

static void test_decorrelated_jitter(void **state)
{
    (void)state;
    uint64_t st = 99, prev = 0, v;
    int at_cap = 0;
    double sum_first = 0;
    for (int i = 0; i < 5000; i++) {
        uint64_t p = prev < 100 * MS ? 100 * MS : prev;
        assert_ok(
            lbk_backoff_decorrelated_jitter(100 * MS, 5 * SEC, prev, &st, &v));
        assert_true(v >= 100 * MS || v == 5 * SEC);
        assert_true(v <= 5 * SEC && v <= 3 * p);
        at_cap += v == 5 * SEC;
        prev = (i % 50 == 49) ? 0 : v; /* restart a chain every 50 */
        if (i % 50 == 0)
            sum_first += (double)v;
    }
    assert_true(at_cap > 0);
    /* first sleeps are uniform on [base, 3 base]: mean 2 base */
    assert_true(fabs(sum_first / 100 - 200e6) < 25e6);
    /* base == cap pins every sleep */
    assert_ok(lbk_backoff_decorrelated_jitter(MS, MS, 77 * MS, &st, &v));
    assert_int_equal(v, MS);
}

static void test_backoff_bad_input(void **state)
{
    (void)state;
    uint64_t st = 5, v = 123;
    assert_lbk(lbk_backoff_exponential(0, SEC, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_exponential(2 * SEC, SEC, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_exponential(MS, SEC, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_backoff_full_jitter(0, SEC, 1, &st, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_full_jitter(MS, SEC, 1, NULL, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_full_jitter(MS, 0, 1, &st, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_decorrelated_jitter(0, SEC, 0, &st, &v), LBK_EINVAL);
    assert_lbk(lbk_backoff_decorrelated_jitter(MS, SEC, 0, &st, NULL),
               LBK_EINVAL);
    assert_int_equal(st, 5); /* not advanced */
    assert_int_equal(v, 123);
}

static lbk_retry_budget *budget(uint64_t ttl, uint32_t min, double pct,
                                uint64_t now)
{
    lbk_retry_budget_options o;
    lbk_retry_budget_options_init(&o);
    o.ttl_ns = ttl;
    o.min_retries_per_sec = min;
    o.percent_can_retry = pct;
    lbk_retry_budget *rb = NULL;
    assert_ok(lbk_retry_budget_create(&o, NULL, now, &rb));
    return rb;
}

static uint64_t balance(lbk_retry_budget *rb, uint64_t now)
{
    uint64_t b = 0;
    assert_ok(lbk_retry_budget_balance(rb, now, &b));
    return b;
}

static void test_budget_finagle_arithmetic(void **state)
{
    (void)state;
    /* Defaults: withdraw 1000/0.2 = 5000, reserve 10 * 10 s * 5000 = 100
     * retries. */
    lbk_retry_budget *rb = NULL;
    assert_ok(lbk_retry_budget_create(NULL, NULL, 0, &rb));
    assert_int_equal(balance(rb, 0), 100);
    for (int i = 0; i < 100; i++)
        assert_ok(lbk_retry_budget_withdraw(rb, 0));
    assert_lbk(lbk_retry_budget_withdraw(rb, 0), LBK_EAGAIN);
    for (int i = 0; i < 1000; i++)
        assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_int_equal(balance(rb, 0), 200); /* 20% of 1000 */
    for (int i = 0; i < 4; i++)
        assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_int_equal(balance(rb, 0), 200); /* 4 deposits = 0.8 retry */
    assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_int_equal(balance(rb, 0), 201);
    lbk_retry_budget_free(rb);

    /* 0%: only the reserve, withdraw 1 each: 10/s x 10 s = 100 */
    rb = budget(10 * SEC, 10, 0.0, 0);
    for (int i = 0; i < 1000; i++)
        assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_int_equal(balance(rb, 0), 100);
    lbk_retry_budget_free(rb);

    /* 200% (above 1 is allowed, as Finagle): two retries per request */
    rb = budget(10 * SEC, 0, 2.0, 0);
    assert_int_equal(balance(rb, 0), 0);
    assert_lbk(lbk_retry_budget_withdraw(rb, 0), LBK_EAGAIN);
    assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_ok(lbk_retry_budget_withdraw(rb, 0));
    assert_ok(lbk_retry_budget_withdraw(rb, 0));
    assert_lbk(lbk_retry_budget_withdraw(rb, 0), LBK_EAGAIN);
    lbk_retry_budget_free(rb);
}

static void test_budget_window_expiry(void **state)
{
    (void)state;
    uint64_t t0 = 1000 * SEC;
    lbk_retry_budget *rb = budget(10 * SEC, 0, 0.5, t0);
    /* deposit in slice 0 (ttl/10 = 1 s slices) */
    for (int i = 0; i < 10; i++)
        assert_ok(lbk_retry_budget_deposit(rb, t0 + 500 * MS));
    assert_int_equal(balance(rb, t0 + 500 * MS), 5);
    assert_ok(lbk_retry_budget_withdraw(rb, t0 + 2 * SEC)); /* slice 2 */
    assert_int_equal(balance(rb, t0 + 9 * SEC), 4);
    assert_int_equal(balance(rb, t0 + 10 * SEC - 1), 4); /* last ns of 9 */
    /* slice 10: the deposits expire, the withdrawal (slice 2) still counts */
    assert_int_equal(balance(rb, t0 + 10 * SEC), 0);
    assert_lbk(lbk_retry_budget_withdraw(rb, t0 + 10 * SEC), LBK_EAGAIN);
    /* slice 12: everything expired */
    assert_ok(lbk_retry_budget_deposit(rb, t0 + 12 * SEC));
    assert_ok(lbk_retry_budget_deposit(rb, t0 + 12 * SEC));
    assert_int_equal(balance(rb, t0 + 12 * SEC), 1);
    /* long idle: nothing left, slots reused cleanly */
    assert_int_equal(balance(rb, t0 + 100000 * SEC), 0);
    assert_ok(lbk_retry_budget_deposit(rb, t0 + 100000 * SEC));
    assert_ok(lbk_retry_budget_deposit(rb, t0 + 100000 * SEC));
    assert_ok(lbk_retry_budget_withdraw(rb, t0 + 100000 * SEC));
    assert_int_equal(balance(rb, t0 + 100000 * SEC), 0);
    lbk_retry_budget_free(rb);
}

static void test_budget_time_backwards(void **state)
{
    (void)state;
    lbk_retry_budget *rb = budget(10 * SEC, 0, 1.0, 0);
    for (int i = 0; i < 3; i++)
        assert_ok(lbk_retry_budget_deposit(rb, 5 * SEC));
    /* an older clock sees the newest slice: no time passes */
    assert_int_equal(balance(rb, 2 * SEC), 3);
    assert_ok(lbk_retry_budget_withdraw(rb, 1 * SEC));
    assert_ok(lbk_retry_budget_deposit(rb, 0));
    assert_int_equal(balance(rb, 5 * SEC), 3);
    assert_int_equal(balance(rb, 14 * SEC), 3);
    assert_int_equal(balance(rb, 15 * SEC), 0);
    lbk_retry_budget_free(rb);
}

static void test_budget_contains_overload(void **state)
{
    (void)state;
    /* 1000 requests/s for 60 s, every attempt fails and is retried while the
     * budget allows: retries stay within 20% of requests + 10/s reserve. */
    lbk_retry_budget *rb = NULL;
    assert_ok(lbk_retry_budget_create(NULL, NULL, 0, &rb));
    uint64_t requests = 0, retries = 0;
    for (uint64_t t = 0; t < 60 * SEC; t += MS) {
        assert_ok(lbk_retry_budget_deposit(rb, t));
        requests++;
        while (lbk_retry_budget_withdraw(rb, t) == 0)
            retries++;
    }
    assert_true(retries <= requests / 5 + 10 * 60 + 100);
    assert_true(retries >= requests / 5); /* and the budget is usable */
    lbk_retry_budget_free(rb);
}

static void test_budget_bad_input(void **state)
{
    (void)state;
    lbk_retry_budget_options o;
    lbk_retry_budget *rb = NULL;
    lbk_retry_budget_options_init(&o);
    o.ttl_ns = 0;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_ERANGE);
    o.ttl_ns = 61 * SEC;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_ERANGE);
    o.ttl_ns = 999 * MS;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_ERANGE);
    lbk_retry_budget_options_init(&o);
    o.percent_can_retry = NAN;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_EINVAL);
    o.percent_can_retry = -0.1;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_EINVAL);
    o.percent_can_retry = 1000.5;
    assert_lbk(lbk_retry_budget_create(&o, NULL, 0, &rb), LBK_ERANGE);
    o.percent_can_retry = 1000.0; /* the maximum is fine */
    assert_ok(lbk_retry_budget_create(&o, NULL, 0, &rb));
    lbk_retry_budget_free(rb);
    rb = NULL;
    assert_lbk(lbk_retry_budget_create(NULL, NULL, 0, NULL), LBK_EINVAL);
    assert_null(rb);
    assert_lbk(lbk_retry_budget_deposit(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_retry_budget_withdraw(NULL, 0), LBK_EINVAL);
    uint64_t b;
    assert_lbk(lbk_retry_budget_balance(NULL, 0, &b), LBK_EINVAL);
    lbk_retry_budget_options_init(NULL);
    lbk_retry_budget_free(NULL);
}

static void test_budget_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_retry_budget *rb = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_retry_budget_create(NULL, &fa.hook, 0, &rb);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(rb);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(balance(rb, 0), 100);
    lbk_retry_budget_free(rb);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_full_jitter),
        cmocka_unit_test(test_decorrelated_jitter),
        cmocka_unit_test(test_backoff_bad_input),
        cmocka_unit_test(test_budget_finagle_arithmetic),
        cmocka_unit_test(test_budget_window_expiry),
        cmocka_unit_test(test_budget_time_backwards),
        cmocka_unit_test(test_budget_contains_overload),
        cmocka_unit_test(test_budget_bad_input),
        cmocka_unit_test(test_budget_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
