/*
 * tests/test_outlier.c - outlier ejection at its boundaries: streak
 * thresholds, gateway streaks, the maximum ejected fraction (today's and the
 * pre-1.27 Envoy rule), ejection time growth, cap and decay, success-rate
 * statistics, all backends ejected, time going backwards, bad input and
 * allocation failure.
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/outlier.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(100) * SEC)

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[16];
    uint32_t n;
} fixture;

static void fixture_init(fixture *f, uint32_t n)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    for (uint32_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, 1, NULL, &slot));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
    f->n = n;
}

static void fixture_done(fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
}

static lbk_outlier *detector(fixture *f, const lbk_outlier_options *o)
{
    lbk_outlier *od = NULL;
    assert_ok(lbk_outlier_create(f->snap, o, NULL, T0, &od));
    return od;
}

static int errors(lbk_outlier *od, lbk_backend *b, int n,
                  lbk_outlier_result kind, uint64_t t)
{
    int ejected = 0;
    for (int i = 0; i < n; i++) {
        int rc = lbk_outlier_report(od, b, kind, t);
        assert_true(rc == 0 || rc == 1);
        ejected += rc;
    }
    return ejected;
}

static lbk_outlier_info info(lbk_outlier *od, lbk_backend *b)
{
    lbk_outlier_info i;
    assert_ok(lbk_outlier_get_info(od, b, &i));
    return i;
}

static void test_consecutive_5xx_and_max_fraction(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier *od = detector(&f, NULL); /* 5 in a row, 10% of 10 = 1 */
    assert_int_equal(errors(od, f.b[0], 4, LBK_OUTCOME_ERROR, T0), 0);
    assert_ok(lbk_outlier_report(od, f.b[0], LBK_OUTCOME_SUCCESS, T0));
    assert_int_equal(info(od, f.b[0]).consecutive_5xx, 0); /* streak broken */
    assert_int_equal(errors(od, f.b[0], 4, LBK_OUTCOME_ERROR, T0), 0);
    assert_true(lbk_backend_eligible(f.b[0]));
    assert_int_equal(lbk_outlier_report(od, f.b[0], LBK_OUTCOME_ERROR, T0), 1);
    assert_false(lbk_backend_eligible(f.b[0]));
    assert_true(lbk_backend_ejected(f.b[0]));
    assert_int_equal(lbk_backend_health(f.b[0]), LBK_HEALTH_UP);
    lbk_outlier_info i = info(od, f.b[0]);
    assert_true(i.ejected);
    assert_int_equal(i.ejected_until_ns, T0 + 30 * SEC);
    assert_int_equal(i.multiplier, 1);
    assert_int_equal(i.times_ejected, 1);
    assert_int_equal(lbk_outlier_ejected_count(od), 1);
    /* the maximum (1 of 10) is reached: b1 is an outlier but stays */
    assert_int_equal(errors(od, f.b[1], 10, LBK_OUTCOME_ERROR, T0), 0);
    assert_true(lbk_backend_eligible(f.b[1]));
    assert_int_equal(lbk_outlier_ejected_count(od), 1);
    /* reports about an ejected backend are ignored */
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 0);
    assert_int_equal(info(od, f.b[0]).times_ejected, 1);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_small_cluster_rules(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5);
    /* today's Envoy: 10% of 5 hosts is 0.5: nobody may be ejected */
    lbk_outlier *od = detector(&f, NULL);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 0);
    assert_true(lbk_backend_eligible(f.b[0]));
    lbk_outlier_free(od);
    /* pre-1.27 Envoy (always_eject_one): one, but not two */
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    o.always_eject_one = true;
    od = detector(&f, &o);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(errors(od, f.b[1], 5, LBK_OUTCOME_ERROR, T0), 0);
    assert_int_equal(lbk_outlier_ejected_count(od), 1);
    assert_int_equal(lbk_outlier_uneject_all(od), 1);
    assert_true(lbk_backend_eligible(f.b[0]));
    lbk_outlier_free(od);
    /* exactly at the fraction: 40% of 5 = 2 may be ejected, not 3 */
    o.always_eject_one = false;
    o.max_ejection_fraction = 0.4;
    od = detector(&f, &o);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(errors(od, f.b[1], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(errors(od, f.b[2], 5, LBK_OUTCOME_ERROR, T0), 0);
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_all_backends_ejected(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    o.max_ejection_fraction = 1.0;
    lbk_outlier *od = detector(&f, &o);
    for (int i = 0; i < 3; i++)
        assert_int_equal(errors(od, f.b[i], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(lbk_outlier_ejected_count(od), 3);
    for (int i = 0; i < 3; i++)
        assert_false(lbk_backend_eligible(f.b[i]));
    /* all come back when their time is up */
    assert_int_equal(lbk_outlier_tick(od, T0 + 30 * SEC), 3);
    for (int i = 0; i < 3; i++)
        assert_true(lbk_backend_eligible(f.b[i]));
    assert_int_equal(lbk_outlier_ejected_count(od), 0);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_ejection_time_growth_cap_decay(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    o.max_ejection_ns = 100 * SEC; /* cap: 100 s */
    lbk_outlier *od = detector(&f, &o);
    uint64_t t = T0;
    uint64_t expect[] = {30, 60, 90, 100, 100};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, t), 1);
        uint64_t until = info(od, f.b[0]).ejected_until_ns;
        assert_int_equal(until - t, expect[k] * SEC);
        /* one ns early: still out; exactly on time: back */
        assert_int_equal(lbk_outlier_tick(od, until - 1), 0);
        assert_false(lbk_backend_eligible(f.b[0]));
        assert_int_equal(lbk_outlier_tick(od, until), 1);
        assert_true(lbk_backend_eligible(f.b[0]));
        t = until;
    }
    assert_int_equal(info(od, f.b[0]).times_ejected, 5);
    uint32_t m = info(od, f.b[0]).multiplier;
    assert_int_equal(m, 4); /* capped where base x m reaches the cap */
    /* each interval spent in service lowers the multiplier by one */
    for (uint32_t k = 1; k <= m; k++) {
        t += 10 * SEC;
        lbk_outlier_tick(od, t);
        assert_int_equal(info(od, f.b[0]).multiplier, m - k);
    }
    t += 10 * SEC;
    lbk_outlier_tick(od, t);
    assert_int_equal(info(od, f.b[0]).multiplier, 0);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, t), 1);
    assert_int_equal(info(od, f.b[0]).ejected_until_ns - t, 30 * SEC);
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_gateway_streaks(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    /* Envoy's default enforcement for gateway streaks is 0: only the 5xx
     * rule (which counts gateway errors too) ejects. */
    lbk_outlier *od = detector(&f, &o);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_GATEWAY_ERROR, T0), 1);
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    o.consecutive_5xx = 0; /* off */
    o.enforcing_consecutive_gateway = 1.0;
    o.consecutive_gateway = 3;
    od = detector(&f, &o);
    assert_int_equal(errors(od, f.b[1], 2, LBK_OUTCOME_GATEWAY_ERROR, T0), 0);
    assert_int_equal(errors(od, f.b[1], 1, LBK_OUTCOME_ERROR, T0), 0);
    assert_int_equal(info(od, f.b[1]).consecutive_gateway, 0); /* reset */
    assert_int_equal(errors(od, f.b[1], 2, LBK_OUTCOME_GATEWAY_ERROR, T0), 0);
    assert_int_equal(errors(od, f.b[1], 1, LBK_OUTCOME_GATEWAY_ERROR, T0), 1);
    /* plain errors never eject with the 5xx rule off */
    assert_int_equal(errors(od, f.b[2], 50, LBK_OUTCOME_ERROR, T0), 0);
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    /* enforcement 0 for the 5xx rule: the streak fires but never ejects */
    lbk_outlier_options_init(&o);
    o.enforcing_consecutive_5xx = 0.0;
    od = detector(&f, &o);
    assert_int_equal(errors(od, f.b[3], 50, LBK_OUTCOME_ERROR, T0), 0);
    lbk_outlier_free(od);
    fixture_done(&f);
}

/* Give backend b `req` requests of which `ok` succeed. */
static void traffic(lbk_outlier *od, lbk_backend *b, int req, int ok,
                    uint64_t t)
{
    for (int i = 0; i < req; i++)
        assert_ok(lbk_outlier_report(
            od, b, i < ok ? LBK_OUTCOME_SUCCESS : LBK_OUTCOME_ERROR, t));
}

static void test_success_rate(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    o.consecutive_5xx = 0;
    o.max_ejection_fraction = 1.0;
    lbk_outlier *od = detector(&f, &o);
    /* rates 9 x 100%, 1 x 70%: mean 97, stdev 9, threshold 97 - 17.1 */
    for (int i = 0; i < 9; i++)
        traffic(od, f.b[i], 100, 100, T0);
    traffic(od, f.b[9], 100, 70, T0);
    assert_int_equal(lbk_outlier_tick(od, T0 + 10 * SEC - 1), 0); /* early */
    assert_int_equal(info(od, f.b[9]).interval_requests, 100);
    assert_int_equal(lbk_outlier_tick(od, T0 + 10 * SEC), 1);
    assert_true(lbk_backend_ejected(f.b[9]));
    assert_int_equal(info(od, f.b[9]).interval_requests, 0); /* new interval */
    lbk_outlier_uneject_all(od);

    /* 88%: mean 98.8, stdev 3.6, threshold 91.96: ejected; with factor 5
     * (threshold 80.8) it stays. */
    uint64_t t = T0 + 20 * SEC;
    for (int i = 0; i < 9; i++)
        traffic(od, f.b[i], 100, 100, t);
    traffic(od, f.b[9], 100, 88, t);
    assert_int_equal(lbk_outlier_tick(od, t + 10 * SEC), 1);
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    o.success_rate_stdev_factor = 5.0;
    od = detector(&f, &o);
    for (int i = 0; i < 9; i++)
        traffic(od, f.b[i], 100, 100, T0);
    traffic(od, f.b[9], 100, 88, T0);
    assert_int_equal(lbk_outlier_tick(od, T0 + 10 * SEC), 0);
    lbk_outlier_free(od);

    /* all equal: nobody is strictly below the mean, even with factor 0 */
    o.success_rate_stdev_factor = 0.0;
    od = detector(&f, &o);
    for (int i = 0; i < 10; i++)
        traffic(od, f.b[i], 100, 90, T0);
    assert_int_equal(lbk_outlier_tick(od, T0 + 10 * SEC), 0);
    lbk_outlier_free(od);

    /* request volume 99 < 100 excludes a host; 4 hosts < minimum 5 */
    o.success_rate_stdev_factor = 1.9;
    od = detector(&f, &o);
    for (int i = 0; i < 4; i++)
        traffic(od, f.b[i], 100, 100, T0);
    traffic(od, f.b[4], 99, 0, T0);
    assert_int_equal(lbk_outlier_tick(od, T0 + 10 * SEC), 0);
    /* exactly at the volume and the minimum: evaluated */
    for (int i = 0; i < 4; i++)
        traffic(od, f.b[i], 100, 100, T0 + 10 * SEC);
    traffic(od, f.b[4], 100, 0, T0 + 10 * SEC);
    assert_int_equal(lbk_outlier_tick(od, T0 + 20 * SEC), 1);
    assert_true(lbk_backend_ejected(f.b[4]));
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_time_backwards(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier *od = detector(&f, NULL);
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(lbk_outlier_tick(od, T0 + 40 * SEC), 1);
    /* an older tick runs no pass and un-ejects nothing early */
    assert_int_equal(errors(od, f.b[0], 5, LBK_OUTCOME_ERROR, T0 + 40 * SEC),
                     1);
    assert_int_equal(lbk_outlier_tick(od, T0), 0);
    assert_int_equal(lbk_outlier_tick(od, 0), 0);
    assert_true(lbk_backend_ejected(f.b[0]));
    lbk_outlier_uneject_all(od);
    lbk_outlier_free(od);
    fixture_done(&f);
}

static void test_inherit_across_snapshots(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    lbk_outlier *od1 = detector(&f, NULL);
    assert_int_equal(errors(od1, f.b[0], 5, LBK_OUTCOME_ERROR, T0), 1);
    assert_int_equal(errors(od1, f.b[1], 3, LBK_OUTCOME_ERROR, T0), 0);
    /* a backend joins: a new snapshot, a new detector that inherits */
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "new", 1, NULL, &slot));
    lbk_backend *nb = lbk_set_backend(f.set, slot);
    const lbk_snapshot *snap2;
    assert_ok(lbk_set_snapshot(f.set, &snap2));
    lbk_outlier *od2 = NULL;
    assert_ok(lbk_outlier_create(snap2, NULL, NULL, T0 + SEC, &od2));
    assert_int_equal(lbk_outlier_inherit(od2, od1), 10);
    lbk_outlier_free(od1);
    assert_int_equal(lbk_outlier_ejected_count(od2), 1);
    assert_int_equal(lbk_outlier_tick(od2, T0 + SEC), 0);
    assert_true(lbk_backend_ejected(f.b[0])); /* not cleared by the tick */
    assert_int_equal(info(od2, f.b[0]).ejected_until_ns, T0 + 30 * SEC);
    assert_int_equal(info(od2, f.b[1]).consecutive_5xx, 3);
    assert_int_equal(info(od2, nb).consecutive_5xx, 0);
    /* b1's streak continues; 10% of 11 still allows only one ejection */
    assert_int_equal(errors(od2, f.b[1], 2, LBK_OUTCOME_ERROR, T0 + SEC), 0);
    assert_int_equal(info(od2, f.b[1]).consecutive_5xx, 0); /* it fired */
    assert_int_equal(lbk_outlier_tick(od2, T0 + 30 * SEC), 1);
    assert_false(lbk_backend_ejected(f.b[0]));
    assert_lbk(lbk_outlier_inherit(od2, od2), LBK_EINVAL);
    assert_lbk(lbk_outlier_inherit(od2, NULL), LBK_EINVAL);
    lbk_outlier_free(od2);
    lbk_snapshot_release(snap2);
    fixture_done(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_outlier_options o;
    lbk_outlier *od = NULL;
    assert_lbk(lbk_outlier_create(NULL, NULL, NULL, 0, &od), LBK_EINVAL);
    assert_lbk(lbk_outlier_create(f.snap, NULL, NULL, 0, NULL), LBK_EINVAL);
    lbk_outlier_options_init(&o);
    o.interval_ns = 0;
    assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    lbk_outlier_options_init(&o);
    o.base_ejection_ns = 0;
    assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    const double bad[] = {-0.1, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        lbk_outlier_options_init(&o);
        o.max_ejection_fraction = bad[i];
        assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
        lbk_outlier_options_init(&o);
        o.enforcing_success_rate = bad[i];
        assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    }
    lbk_outlier_options_init(&o);
    o.success_rate_stdev_factor = NAN;
    assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    o.success_rate_stdev_factor = INFINITY;
    assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    lbk_outlier_options_init(&o);
    o.success_rate_minimum_hosts = 0;
    assert_lbk(lbk_outlier_create(f.snap, &o, NULL, 0, &od), LBK_EINVAL);
    assert_null(od);
    od = detector(&f, NULL);
    assert_lbk(lbk_outlier_report(NULL, f.b[0], LBK_OUTCOME_ERROR, 0),
               LBK_EINVAL);
    assert_lbk(lbk_outlier_report(od, NULL, LBK_OUTCOME_ERROR, 0), LBK_EINVAL);
    assert_lbk(lbk_outlier_report(od, f.b[0], (lbk_outlier_result)3, 0),
               LBK_EINVAL);
    /* a backend added after the snapshot is unknown to the detector */
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "late", 1, NULL, &slot));
    lbk_backend *late = lbk_set_backend(f.set, slot);
    assert_lbk(lbk_outlier_report(od, late, LBK_OUTCOME_ERROR, 0), LBK_ENOENT);
    lbk_outlier_info i;
    assert_lbk(lbk_outlier_get_info(od, late, &i), LBK_ENOENT);
    assert_lbk(lbk_outlier_get_info(od, f.b[0], NULL), LBK_EINVAL);
    assert_lbk(lbk_outlier_tick(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_outlier_uneject_all(NULL), LBK_EINVAL);
    assert_int_equal(lbk_outlier_ejected_count(NULL), 0);
    assert_int_equal(info(od, f.b[0]).interval_requests, 0); /* unchanged */
    lbk_outlier_free(od);
    lbk_outlier_free(NULL);
    lbk_outlier_options_init(NULL);
    fixture_done(&f);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 4);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_outlier *od = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_outlier_create(f.snap, NULL, &fa.hook, T0, &od);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(od);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(info(od, f.b[3]).times_ejected, 0);
    lbk_outlier_free(od);
    assert_int_equal(fa.live, 0);
    fixture_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_5xx_and_max_fraction),
        cmocka_unit_test(test_small_cluster_rules),
        cmocka_unit_test(test_all_backends_ejected),
        cmocka_unit_test(test_ejection_time_growth_cap_decay),
        cmocka_unit_test(test_gateway_streaks),
        cmocka_unit_test(test_success_rate),
        cmocka_unit_test(test_time_backwards),
        cmocka_unit_test(test_inherit_across_snapshots),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
