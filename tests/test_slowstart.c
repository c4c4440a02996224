/*
 * tests/test_slowstart.c - Envoy's slow-start factor at its boundaries
 * (first second, min weight floor, aggression, end of window), ramps for new
 * and recovering backends through the weight scale, carry-over between
 * snapshots, time going backwards, bad input and allocation failure.
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/slowstart.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(500) * SEC)

static double factor(const lbk_slowstart_options *o, uint64_t start,
                     uint64_t now)
{
    double f = -1;
    assert_ok(lbk_slowstart_factor(o, start, now, &f));
    return f;
}

static void test_factor_formula(void **state)
{
    (void)state;
    lbk_slowstart_options o;
    lbk_slowstart_options_init(&o);
    o.window_ns = 100 * SEC;
    o.min_weight_fraction = 0.0;
    /* time_factor = max(t, 1 s) / window */
    assert_true(factor(&o, T0, T0) == 0.01);
    assert_true(factor(&o, T0, T0 + SEC / 2) == 0.01);
    assert_true(fabs(factor(&o, T0, T0 + 50 * SEC) - 0.5) < 1e-12);
    assert_true(factor(&o, T0, T0 + 100 * SEC) == 1.0);
    assert_true(factor(&o, T0, T0 + 100 * SEC - 1) < 1.0);
    /* aggression 2: sqrt; 0.5: square */
    o.aggression = 2.0;
    assert_true(fabs(factor(&o, T0, T0 + 25 * SEC) - 0.5) < 1e-12);
    o.aggression = 0.5;
    assert_true(fabs(factor(&o, T0, T0 + 50 * SEC) - 0.25) < 1e-12);
    /* the floor: Envoy's min weight percent, default 10% */
    lbk_slowstart_options_init(&o);
    o.window_ns = 100 * SEC;
    assert_true(factor(&o, T0, T0 + 5 * SEC) == 0.1);
    assert_true(fabs(factor(&o, T0, T0 + 10 * SEC) - 0.1) < 1e-12);
    assert_true(fabs(factor(&o, T0, T0 + 20 * SEC) - 0.2) < 1e-12);
    /* time before the start counts as 0 s */
    assert_true(factor(&o, T0, 0) == 0.1);
    /* defaults: 60 s window */
    assert_true(factor(NULL, T0, T0 + 60 * SEC) == 1.0);
    assert_true(fabs(factor(NULL, T0, T0 + 30 * SEC) - 0.5) < 1e-12);
}

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[8];
} fixture;

static void fixture_init(fixture *f, uint32_t n)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    for (uint32_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, 10, NULL, &slot));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
}

static void fixture_done(fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
}

static void test_new_backends_ramp(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_slowstart_options o;
    lbk_slowstart_options_init(&o);
    o.window_ns = 100 * SEC;
    lbk_slowstart *first = NULL, *second = NULL;
    assert_ok(lbk_slowstart_create(f.snap, &o, NULL, T0, NULL, &first));
    assert_int_equal(lbk_slowstart_update(first, T0), 0); /* initial: warm */
    assert_true(lbk_backend_weight_scale(f.b[0]) == 1.0);
    /* a backend added later ramps from the new snapshot's time */
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "new", 10, NULL, &slot));
    lbk_backend *nb = lbk_set_backend(f.set, slot);
    const lbk_snapshot *snap2;
    assert_ok(lbk_set_snapshot(f.set, &snap2));
    assert_ok(
        lbk_slowstart_create(snap2, &o, first, T0 + 10 * SEC, NULL, &second));
    lbk_slowstart_free(first);
    assert_true(lbk_slowstart_ramping(second, nb));
    assert_false(lbk_slowstart_ramping(second, f.b[0]));
    assert_int_equal(lbk_slowstart_update(second, T0 + 10 * SEC), 1);
    assert_true(fabs(lbk_backend_weight_scale(nb) - 0.1) < 1e-4);
    assert_int_equal(lbk_slowstart_update(second, T0 + 60 * SEC), 1);
    assert_true(fabs(lbk_backend_weight_scale(nb) - 0.5) < 1e-4);
    assert_true(lbk_backend_weight_scale(f.b[0]) == 1.0);
    assert_int_equal(lbk_slowstart_update(second, T0 + 110 * SEC), 0);
    assert_true(lbk_backend_weight_scale(nb) == 1.0);
    assert_false(lbk_slowstart_ramping(second, nb));
    lbk_slowstart_free(second);
    lbk_snapshot_release(snap2);
    /* ramp_initial: the first snapshot's backends ramp too */
    o.ramp_initial = true;
    assert_ok(lbk_slowstart_create(f.snap, &o, NULL, T0, NULL, &first));
    assert_int_equal(lbk_slowstart_update(first, T0 + 50 * SEC), 2);
    assert_true(fabs(lbk_backend_weight_scale(f.b[1]) - 0.5) < 1e-4);
    lbk_slowstart_free(first);
    fixture_done(&f);
}

static void test_recovery_restarts_ramp(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_slowstart_options o;
    lbk_slowstart_options_init(&o);
    o.window_ns = 10 * SEC;
    o.min_weight_fraction = 0.0;
    lbk_slowstart *ss = NULL;
    assert_ok(lbk_slowstart_create(f.snap, &o, NULL, T0, NULL, &ss));
    assert_int_equal(lbk_slowstart_update(ss, T0), 0);
    assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DOWN));
    assert_int_equal(lbk_slowstart_update(ss, T0 + SEC), 0);
    assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_UP));
    assert_int_equal(lbk_slowstart_update(ss, T0 + 2 * SEC), 1);
    assert_true(fabs(lbk_backend_weight_scale(f.b[0]) - 0.1) < 1e-4);
    /* un-ejection is a recovery too */
    assert_ok(lbk_backend_set_ejected(f.b[1], true));
    lbk_slowstart_update(ss, T0 + 3 * SEC);
    assert_ok(lbk_backend_set_ejected(f.b[1], false));
    assert_int_equal(lbk_slowstart_update(ss, T0 + 7 * SEC), 2);
    assert_true(fabs(lbk_backend_weight_scale(f.b[0]) - 0.5) < 1e-4);
    assert_true(fabs(lbk_backend_weight_scale(f.b[1]) - 0.1) < 1e-4);
    /* time going backwards: treated as the ramp's start, not negative */
    assert_int_equal(lbk_slowstart_update(ss, T0), 2);
    assert_true(fabs(lbk_backend_weight_scale(f.b[1]) - 0.1) < 1e-4);
    /* an explicit restart */
    assert_int_equal(lbk_slowstart_update(ss, T0 + 20 * SEC), 0);
    assert_ok(lbk_slowstart_begin(ss, f.b[1], T0 + 20 * SEC));
    assert_int_equal(lbk_slowstart_update(ss, T0 + 25 * SEC), 1);
    assert_true(fabs(lbk_backend_weight_scale(f.b[1]) - 0.5) < 1e-4);
    lbk_slowstart_free(ss);
    fixture_done(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 1);
    lbk_slowstart_options o;
    double d = 7;
    lbk_slowstart_options_init(&o);
    o.window_ns = 0;
    assert_lbk(lbk_slowstart_factor(&o, 0, 0, &d), LBK_EINVAL);
    const double bad_aggr[] = {0.0, -1.0, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        lbk_slowstart_options_init(&o);
        o.aggression = bad_aggr[i];
        assert_lbk(lbk_slowstart_factor(&o, 0, 0, &d), LBK_EINVAL);
    }
    const double bad_min[] = {-0.1, 1.01, NAN};
    for (int i = 0; i < 3; i++) {
        lbk_slowstart_options_init(&o);
        o.min_weight_fraction = bad_min[i];
        assert_lbk(lbk_slowstart_factor(&o, 0, 0, &d), LBK_EINVAL);
        lbk_slowstart *ss = NULL;
        assert_lbk(lbk_slowstart_create(f.snap, &o, NULL, 0, NULL, &ss),
                   LBK_EINVAL);
        assert_null(ss);
    }
    assert_true(d == 7);
    assert_lbk(lbk_slowstart_factor(NULL, 0, 0, NULL), LBK_EINVAL);
    lbk_slowstart *ss = NULL;
    assert_lbk(lbk_slowstart_create(NULL, NULL, NULL, 0, NULL, &ss),
               LBK_EINVAL);
    assert_lbk(lbk_slowstart_create(f.snap, NULL, NULL, 0, NULL, NULL),
               LBK_EINVAL);
    assert_ok(lbk_slowstart_create(f.snap, NULL, NULL, 0, NULL, &ss));
    assert_lbk(lbk_slowstart_update(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_slowstart_begin(ss, NULL, 0), LBK_EINVAL);
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "late", 1, NULL, &slot));
    assert_lbk(lbk_slowstart_begin(ss, lbk_set_backend(f.set, slot), 0),
               LBK_ENOENT);
    assert_false(lbk_slowstart_ramping(ss, lbk_set_backend(f.set, slot)));
    assert_false(lbk_slowstart_ramping(NULL, f.b[0]));
    lbk_slowstart_free(ss);
    lbk_slowstart_free(NULL);
    lbk_slowstart_options_init(NULL);
    fixture_done(&f);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_slowstart *ss = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_slowstart_create(f.snap, NULL, NULL, T0, &fa.hook, &ss);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(ss);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(lbk_slowstart_update(ss, T0), 0);
    lbk_slowstart_free(ss);
    assert_int_equal(fa.live, 0);
    fixture_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_formula),
        cmocka_unit_test(test_new_backends_ramp),
        cmocka_unit_test(test_recovery_restarts_ramp),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
