/*
 * tests/test_breaker.c - the circuit breaker's state machine at its
 * boundaries: minimum requests, exact failure ratio, window expiry, open
 * timeout, half-open trials, late outcomes, time going backwards, bad
 * input and allocation failure.
 */
#include <math.h>

#include "testutil.h"

#include "lbkit/breaker.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * SEC)

static lbk_breaker *breaker(const lbk_breaker_options *o)
{
    lbk_breaker *br = NULL;
    assert_ok(lbk_breaker_create(o, NULL, &br));
    return br;
}

static lbk_breaker_state state_of(const lbk_breaker *br)
{
    lbk_breaker_state s;
    assert_ok(lbk_breaker_get_state(br, &s));
    return s;
}

static void record_n(lbk_breaker *br, int n, bool ok, uint64_t t)
{
    for (int i = 0; i < n; i++)
        assert_ok(lbk_breaker_record(br, ok, t));
}

static void test_opens_at_min_requests_and_ratio(void **state)
{
    (void)state;
    lbk_breaker *br = breaker(NULL); /* 20 requests, 50% */
    record_n(br, 19, false, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED); /* 19 < 20 */
    assert_ok(lbk_breaker_allow(br, T0));
    record_n(br, 1, false, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    lbk_breaker_free(br);

    /* exactly 50%: opens; just under: stays closed */
    br = breaker(NULL);
    record_n(br, 10, true, T0);
    record_n(br, 9, false, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    record_n(br, 1, false, T0); /* 10 of 20 */
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    lbk_breaker_free(br);
    br = breaker(NULL);
    record_n(br, 11, true, T0);
    record_n(br, 9, false, T0); /* 45% of 20 */
    record_n(br, 1, false, T0); /* 10 of 21 = 47.6% */
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    uint64_t total, failures;
    assert_ok(lbk_breaker_window(br, T0, &total, &failures));
    assert_int_equal(total, 21);
    assert_int_equal(failures, 10);
    /* successes never open it, whatever the count */
    record_n(br, 1000, true, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    lbk_breaker_free(br);
}

static void test_window_expiry(void **state)
{
    (void)state;
    lbk_breaker *br = breaker(NULL);       /* 10 s in 1 s buckets */
    record_n(br, 19, false, T0);           /* bucket of T0 */
    record_n(br, 1, false, T0 + 10 * SEC); /* T0's bucket has expired */
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    uint64_t total;
    assert_ok(lbk_breaker_window(br, T0 + 10 * SEC, &total, NULL));
    assert_int_equal(total, 1);
    lbk_breaker_free(br);

    br = breaker(NULL);
    record_n(br, 19, false, T0);
    record_n(br, 1, false, T0 + 10 * SEC - 1); /* last ns of the window */
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    lbk_breaker_free(br);
}

static void test_open_timeout_and_single_trial(void **state)
{
    (void)state;
    lbk_breaker *br = breaker(NULL); /* open 5 s, 1 trial */
    record_n(br, 20, false, T0);
    assert_lbk(lbk_breaker_allow(br, T0), LBK_EAGAIN);
    assert_lbk(lbk_breaker_allow(br, T0 + 5 * SEC - 1), LBK_EAGAIN);
    record_n(br, 50, true, T0 + SEC); /* late outcomes while open: ignored */
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    assert_ok(lbk_breaker_allow(br, T0 + 5 * SEC)); /* the trial */
    assert_int_equal(state_of(br), LBK_BREAKER_HALF_OPEN);
    assert_lbk(lbk_breaker_allow(br, T0 + 5 * SEC), LBK_EAGAIN);
    /* trial fails: open again for 5 s from now */
    record_n(br, 1, false, T0 + 6 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    assert_lbk(lbk_breaker_allow(br, T0 + 11 * SEC - 1), LBK_EAGAIN);
    assert_ok(lbk_breaker_allow(br, T0 + 11 * SEC));
    /* trial succeeds: closed, with an empty window */
    record_n(br, 1, true, T0 + 11 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    uint64_t total = 9;
    assert_ok(lbk_breaker_window(br, T0 + 11 * SEC, &total, NULL));
    assert_int_equal(total, 0);
    assert_ok(lbk_breaker_allow(br, T0 + 11 * SEC));
    record_n(br, 19, false, T0 + 11 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    lbk_breaker_free(br);
}

static void test_several_trials(void **state)
{
    (void)state;
    lbk_breaker_options o;
    lbk_breaker_options_init(&o);
    o.half_open_trials = 4; /* 50%: 2 failing trials reopen */
    o.min_requests = 1;
    lbk_breaker *br = breaker(&o);
    record_n(br, 1, false, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    for (int i = 0; i < 4; i++)
        assert_ok(lbk_breaker_allow(br, T0 + 5 * SEC));
    assert_lbk(lbk_breaker_allow(br, T0 + 5 * SEC), LBK_EAGAIN);
    record_n(br, 1, false, T0 + 5 * SEC);
    record_n(br, 1, true, T0 + 5 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_HALF_OPEN);
    record_n(br, 1, false, T0 + 5 * SEC); /* 2 failures = 50% of 4 */
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    /* the next round: 3 successes make 2 failures impossible -> closed */
    for (int i = 0; i < 4; i++)
        assert_ok(lbk_breaker_allow(br, T0 + 10 * SEC));
    record_n(br, 1, true, T0 + 10 * SEC);
    record_n(br, 1, false, T0 + 10 * SEC);
    record_n(br, 1, true, T0 + 10 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_HALF_OPEN);
    record_n(br, 1, true, T0 + 10 * SEC);
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    lbk_breaker_free(br);

    /* ratio 1.0: only all-failing trials reopen */
    o.failure_ratio = 1.0;
    o.half_open_trials = 2;
    br = breaker(&o);
    record_n(br, 1, false, T0);
    assert_ok(lbk_breaker_allow(br, T0 + 5 * SEC));
    record_n(br, 1, true, T0 + 5 * SEC); /* 1 success: 2 failures impossible */
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    lbk_breaker_free(br);
}

static void test_time_backwards(void **state)
{
    (void)state;
    lbk_breaker *br = breaker(NULL);
    record_n(br, 10, false, T0 + 20 * SEC);
    /* an older clock counts in the newest bucket, not an expired one */
    record_n(br, 10, false, T0);
    assert_int_equal(state_of(br), LBK_BREAKER_OPEN);
    /* and an older clock never ends the open period early */
    assert_lbk(lbk_breaker_allow(br, 0), LBK_EAGAIN);
    lbk_breaker_free(br);
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_breaker_options o;
    lbk_breaker *br = NULL;
    const double bad_ratio[] = {0.0, -0.5, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        lbk_breaker_options_init(&o);
        o.failure_ratio = bad_ratio[i];
        assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    }
    lbk_breaker_options_init(&o);
    o.window_ns = 0;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    lbk_breaker_options_init(&o);
    o.open_ns = 0;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    lbk_breaker_options_init(&o);
    o.min_requests = 0;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    lbk_breaker_options_init(&o);
    o.buckets = 0;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    o.buckets = 1025;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_ERANGE);
    o.buckets = 10;
    o.window_ns = 9;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_ERANGE);
    lbk_breaker_options_init(&o);
    o.half_open_trials = 0;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_EINVAL);
    o.half_open_trials = 1024;
    assert_lbk(lbk_breaker_create(&o, NULL, &br), LBK_ERANGE);
    assert_lbk(lbk_breaker_create(NULL, NULL, NULL), LBK_EINVAL);
    assert_null(br);
    assert_lbk(lbk_breaker_allow(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_breaker_record(NULL, true, 0), LBK_EINVAL);
    lbk_breaker_state s;
    assert_lbk(lbk_breaker_get_state(NULL, &s), LBK_EINVAL);
    br = breaker(NULL);
    assert_lbk(lbk_breaker_get_state(br, NULL), LBK_EINVAL);
    assert_lbk(lbk_breaker_window(br, 0, NULL, NULL), LBK_EINVAL);
    lbk_breaker_free(br);
    lbk_breaker_free(NULL);
    lbk_breaker_options_init(NULL);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_breaker *br = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_breaker_create(NULL, &fa.hook, &br);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(br);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(state_of(br), LBK_BREAKER_CLOSED);
    lbk_breaker_free(br);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_at_min_requests_and_ratio),
        cmocka_unit_test(test_window_expiry),
        cmocka_unit_test(test_open_timeout_and_single_trial),
        cmocka_unit_test(test_several_trials),
        cmocka_unit_test(test_time_backwards),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
