/*
 * tests/test_panic.c - the panic threshold per tier: exactly at and just
 * below it, ejection and draining counted as unhealthy, weight-0 backends
 * left out, every backend out, threshold 0, admission in and out of panic,
 * bad input and allocation failure.
 */
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/panic.h"

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[16];
} fixture;

/* n backends; backend i in tier prio[i] (NULL: all tier 0), weight w[i]
 * (NULL: all 1). */
static void fixture_init(fixture *f, uint32_t n, const uint32_t *prio,
                         const uint32_t *w)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    for (uint32_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, w ? w[i] : 1, NULL, &slot));
        if (prio)
            assert_ok(lbk_set_set_priority(f->set, slot, prio[i]));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
}

static void fixture_done(fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
}

static lbk_panic_tier eval(const fixture *f, double thr, uint32_t prio)
{
    lbk_panic_tier t;
    assert_ok(lbk_panic_eval(f->snap, thr, prio, &t));
    return t;
}

static void test_threshold_boundary(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10, NULL, NULL);
    for (int i = 0; i < 5; i++)
        assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
    lbk_panic_tier t = eval(&f, 0.5, 0); /* 5 of 10 = exactly 50% */
    assert_int_equal(t.total, 10);
    assert_int_equal(t.healthy, 5);
    assert_false(t.panic);
    assert_ok(lbk_backend_set_ejected(f.b[5], true)); /* 4 of 10 */
    t = eval(&f, 0.5, 0);
    assert_int_equal(t.healthy, 4);
    assert_true(t.panic);
    assert_ok(lbk_backend_set_ejected(f.b[5], false));
    assert_ok(lbk_backend_set_health(f.b[5], LBK_HEALTH_DRAINING));
    assert_true(eval(&f, 0.5, 0).panic);  /* draining is not healthy */
    assert_false(eval(&f, 0.4, 0).panic); /* 40%: not below 0.4 */
    assert_false(eval(&f, 0.0, 0).panic); /* threshold 0 disables */
    assert_true(eval(&f, 1.0, 0).panic);
    /* every backend out: panic at any threshold above 0 */
    for (int i = 0; i < 10; i++)
        assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
    assert_true(eval(&f, 0.01, 0).panic);
    /* an empty tier is never in panic */
    t = eval(&f, 0.5, 3);
    assert_int_equal(t.total, 0);
    assert_false(t.panic);
    fixture_done(&f);
}

static void test_tiers_and_weights(void **state)
{
    (void)state;
    const uint32_t prio[6] = {0, 0, 0, 1, 1, 127};
    const uint32_t w[6] = {1, 1, 0, 1, 1, 5};
    fixture f;
    fixture_init(&f, 6, prio, w);
    assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DOWN));
    /* tier 0: b2 has weight 0 and is not counted: 1 of 2 healthy */
    lbk_panic_tier t = eval(&f, 0.5, 0);
    assert_int_equal(t.total, 2);
    assert_int_equal(t.healthy, 1);
    assert_false(t.panic);
    assert_ok(lbk_backend_set_health(f.b[4], LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_health(f.b[3], LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_health(f.b[5], LBK_HEALTH_DOWN));

    lbk_panic *p = NULL;
    assert_ok(lbk_panic_create(LBK_PANIC_DEFAULT_THRESHOLD, NULL, &p));
    assert_false(lbk_panic_active(p, 1)); /* nothing until the first update */
    assert_int_equal(lbk_panic_update(p, f.snap), 2); /* tiers 1 and 127 */
    assert_false(lbk_panic_active(p, 0));
    assert_true(lbk_panic_active(p, 1));
    assert_true(lbk_panic_active(p, 127));
    assert_false(lbk_panic_active(p, 128));
    lbk_panic_tier pt;
    assert_ok(lbk_panic_get_tier(p, 1, &pt));
    assert_int_equal(pt.total, 2);
    assert_int_equal(pt.healthy, 0);
    assert_true(pt.panic);
    /* admission: tier 0 filters by health; tier 1 (panic) admits all with
     * weight; weight 0 never */
    assert_false(lbk_panic_admits(p, f.snap, 0)); /* down, tier 0 healthy */
    assert_true(lbk_panic_admits(p, f.snap, 1));
    assert_false(lbk_panic_admits(p, f.snap, 2)); /* weight 0 */
    assert_true(lbk_panic_admits(p, f.snap, 3));  /* down, but panic */
    assert_true(lbk_panic_admits(p, f.snap, 4));
    assert_false(lbk_panic_admits(p, f.snap, 6)); /* out of range */
    /* recovery clears the verdict at the next update */
    assert_ok(lbk_backend_set_health(f.b[3], LBK_HEALTH_UP));
    assert_int_equal(lbk_panic_update(p, f.snap), 1);
    assert_false(lbk_panic_active(p, 1));
    assert_false(lbk_panic_admits(p, f.snap, 4));
    lbk_panic_free(p);
    fixture_done(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2, NULL, NULL);
    lbk_panic_tier t = {7, 7, true};
    assert_lbk(lbk_panic_eval(NULL, 0.5, 0, &t), LBK_EINVAL);
    assert_lbk(lbk_panic_eval(f.snap, 0.5, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_panic_eval(f.snap, 1.5, 0, &t), LBK_EINVAL);
    assert_lbk(lbk_panic_eval(f.snap, -0.1, 0, &t), LBK_EINVAL);
    assert_lbk(lbk_panic_eval(f.snap, NAN, 0, &t), LBK_EINVAL);
    assert_lbk(lbk_panic_eval(f.snap, 0.5, 128, &t), LBK_ERANGE);
    assert_int_equal(t.total, 7);
    lbk_panic *p = NULL;
    assert_lbk(lbk_panic_create(2.0, NULL, &p), LBK_EINVAL);
    assert_lbk(lbk_panic_create(NAN, NULL, &p), LBK_EINVAL);
    assert_lbk(lbk_panic_create(0.5, NULL, NULL), LBK_EINVAL);
    assert_null(p);
    assert_ok(lbk_panic_create(0.5, NULL, &p));
    assert_lbk(lbk_panic_update(NULL, f.snap), LBK_EINVAL);
    assert_lbk(lbk_panic_update(p, NULL), LBK_EINVAL);
    assert_lbk(lbk_panic_get_tier(p, 128, &t), LBK_ERANGE);
    assert_lbk(lbk_panic_get_tier(NULL, 0, &t), LBK_EINVAL);
    assert_false(lbk_panic_active(NULL, 0));
    assert_false(lbk_panic_admits(NULL, f.snap, 0));
    assert_false(lbk_panic_admits(p, NULL, 0));
    lbk_panic_free(p);
    lbk_panic_free(NULL);
    fixture_done(&f);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_panic *p = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_panic_create(0.5, &fa.hook, &p);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(p);
        assert_int_equal(fa.live, 0);
    }
    assert_false(lbk_panic_active(p, 0));
    lbk_panic_free(p);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_boundary),
        cmocka_unit_test(test_tiers_and_weights),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
