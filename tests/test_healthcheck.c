/*
 * tests/test_healthcheck.c - health-check scheduling: thresholds exactly at
 * their counts, the first-probe rule, draining left alone, due order, jitter
 * bounds and reproducibility, the adaptive interval, time going backwards,
 * bad input and allocation failure.
 */
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/healthcheck.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * SEC)

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[128];
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

/* No jitter at all: exact schedules. */
static void plain_options(lbk_healthcheck_options *o)
{
    lbk_healthcheck_options_init(o);
    o->initial_jitter_ns = 0;
    o->jitter_fraction = 0.0;
    o->seed = 1;
}

static lbk_healthcheck_info info(lbk_healthcheck *hc, lbk_backend *b)
{
    lbk_healthcheck_info i;
    assert_ok(lbk_healthcheck_get_info(hc, b, &i));
    return i;
}

static void test_thresholds(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    lbk_healthcheck_options o;
    plain_options(&o); /* healthy 2, unhealthy 3 */
    lbk_healthcheck *hc = NULL;
    assert_ok(lbk_healthcheck_create(f.snap, &o, NULL, T0, &hc));
    lbk_backend *b = f.b[0];
    assert_int_equal(lbk_healthcheck_report(hc, b, false, T0), 0);
    assert_int_equal(lbk_healthcheck_report(hc, b, false, T0), 0);
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_UP);
    assert_int_equal(lbk_healthcheck_report(hc, b, false, T0), 1); /* 3rd */
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_DOWN);
    assert_false(lbk_backend_eligible(b));
    assert_int_equal(lbk_healthcheck_report(hc, b, true, T0), 0);
    assert_int_equal(lbk_healthcheck_report(hc, b, false, T0), 0);
    assert_int_equal(lbk_healthcheck_report(hc, b, true, T0), 0);
    assert_int_equal(lbk_healthcheck_report(hc, b, true, T0), 1); /* 2 in row */
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_UP);
    /* a backend never probed needs one success (Envoy's startup rule) */
    assert_ok(lbk_backend_set_health(f.b[1], LBK_HEALTH_DOWN));
    assert_int_equal(lbk_healthcheck_report(hc, f.b[1], true, T0), 1);
    assert_int_equal(lbk_backend_health(f.b[1]), LBK_HEALTH_UP);
    /* draining: probed and counted, health left alone */
    assert_ok(lbk_backend_set_health(f.b[2], LBK_HEALTH_DRAINING));
    for (int i = 0; i < 5; i++)
        assert_int_equal(lbk_healthcheck_report(hc, f.b[2], false, T0), 0);
    assert_int_equal(lbk_backend_health(f.b[2]), LBK_HEALTH_DRAINING);
    assert_int_equal(info(hc, f.b[2]).failures, 5);
    lbk_healthcheck_free(hc);
    fixture_done(&f);
}

static void test_schedule_order(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 4);
    lbk_healthcheck_options o;
    plain_options(&o);
    lbk_healthcheck *hc = NULL;
    assert_ok(lbk_healthcheck_create(f.snap, &o, NULL, T0, &hc));
    uint64_t due;
    assert_ok(lbk_healthcheck_next_due(hc, &due));
    assert_int_equal(due, T0);
    lbk_backend *b = NULL;
    assert_int_equal(lbk_healthcheck_next(hc, T0 - 1, &b), 0); /* not yet */
    assert_null(b);
    for (uint32_t i = 0; i < 4; i++) { /* ties go by slot */
        assert_int_equal(lbk_healthcheck_next(hc, T0, &b), 1);
        assert_ptr_equal(b, f.b[i]);
        assert_true(info(hc, b).in_flight);
    }
    assert_int_equal(lbk_healthcheck_next(hc, T0 + 100 * SEC, &b), 0);
    assert_lbk(lbk_healthcheck_next_due(hc, &due), LBK_ENOENT);
    /* results at different times come due in that order */
    assert_ok(lbk_healthcheck_report(hc, f.b[2], true, T0 + 1));
    assert_ok(lbk_healthcheck_report(hc, f.b[0], true, T0 + 2));
    assert_ok(lbk_healthcheck_report(hc, f.b[3], true, T0 + 3));
    assert_ok(lbk_healthcheck_next_due(hc, &due));
    assert_int_equal(due, T0 + 1 + 10 * SEC);
    assert_int_equal(info(hc, f.b[0]).next_due_ns, T0 + 2 + 10 * SEC);
    assert_int_equal(lbk_healthcheck_next(hc, T0 + 10 * SEC + 2, &b), 1);
    assert_ptr_equal(b, f.b[2]);
    assert_int_equal(lbk_healthcheck_next(hc, T0 + 10 * SEC + 2, &b), 1);
    assert_ptr_equal(b, f.b[0]);
    assert_int_equal(lbk_healthcheck_next(hc, T0 + 10 * SEC + 2, &b), 0);
    /* an unsolicited result reschedules a queued backend */
    assert_ok(lbk_healthcheck_report(hc, f.b[3], true, T0 + 5 * SEC));
    assert_int_equal(info(hc, f.b[3]).next_due_ns, T0 + 15 * SEC);
    /* time going backwards: scheduled from the latest time seen */
    assert_ok(lbk_healthcheck_report(hc, f.b[1], true, T0));
    assert_int_equal(info(hc, f.b[1]).next_due_ns, T0 + 15 * SEC);
    lbk_healthcheck_free(hc);
    fixture_done(&f);
}

static void test_jitter(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 100);
    lbk_healthcheck_options o;
    lbk_healthcheck_options_init(&o); /* initial jitter = interval, 10% */
    o.seed = 77;
    lbk_healthcheck *a = NULL, *b = NULL;
    assert_ok(lbk_healthcheck_create(f.snap, &o, NULL, T0, &a));
    assert_ok(lbk_healthcheck_create(f.snap, &o, NULL, T0, &b));
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < f.n; i++) {
        uint64_t d = info(a, f.b[i]).next_due_ns;
        assert_int_equal(d, info(b, f.b[i]).next_due_ns); /* seeded */
        assert_true(d >= T0 && d < T0 + 10 * SEC);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(hi - lo > 8 * SEC); /* spread over the interval */
    for (uint32_t i = 0; i < f.n; i++) {
        assert_ok(lbk_healthcheck_report(a, f.b[i], true, T0));
        uint64_t d = info(a, f.b[i]).next_due_ns - T0;
        assert_true(d >= 10 * SEC && d <= 11 * SEC);
    }
    lbk_healthcheck_free(a);
    lbk_healthcheck_free(b);
    fixture_done(&f);
}

static void test_adaptive_interval(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_healthcheck_options o;
    plain_options(&o); /* 10 s, min 1 s, max 60 s, stable after 5 */
    lbk_healthcheck *hc = NULL;
    assert_ok(lbk_healthcheck_create(f.snap, &o, NULL, T0, &hc));
    lbk_backend *b = f.b[0];
    uint64_t t = T0;
    uint64_t expect[] = {10, 10, 10, 10, 20, 20, 20, 20, 20, 40,
                         40, 40, 40, 40, 60, 60, 60, 60, 60, 60};
    for (int i = 0; i < 20; i++) {
        assert_ok(lbk_healthcheck_report(hc, b, true, t));
        assert_int_equal(info(hc, b).interval_ns, expect[i] * SEC);
        t += expect[i] * SEC;
    }
    /* one failure while UP: a possible flap, probe at the minimum */
    assert_ok(lbk_healthcheck_report(hc, b, false, t));
    assert_int_equal(info(hc, b).interval_ns, SEC);
    assert_int_equal(info(hc, b).next_due_ns, t + SEC);
    /* a flapping backend stays at the minimum */
    for (int i = 0; i < 20; i++) {
        assert_ok(lbk_healthcheck_report(hc, b, i % 2 == 0, t));
        assert_int_equal(info(hc, b).interval_ns, SEC);
    }
    /* down and staying down is stable too: the interval grows again */
    assert_int_equal(lbk_healthcheck_report(hc, b, false, t), 0);
    assert_int_equal(lbk_healthcheck_report(hc, b, false, t), 1);
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_DOWN);
    assert_int_equal(info(hc, b).interval_ns, SEC);
    for (int i = 0; i < 5; i++)
        assert_ok(lbk_healthcheck_report(hc, b, false, t));
    assert_int_equal(info(hc, b).interval_ns, 2 * SEC);
    lbk_healthcheck_free(hc);
    fixture_done(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_healthcheck_options o;
    lbk_healthcheck *hc = NULL;
    lbk_healthcheck_options_init(&o);
    o.interval_ns = 0;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    lbk_healthcheck_options_init(&o);
    o.min_interval_ns = 0;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    lbk_healthcheck_options_init(&o);
    o.min_interval_ns = o.interval_ns + 1;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    lbk_healthcheck_options_init(&o);
    o.max_interval_ns = o.interval_ns - 1;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    lbk_healthcheck_options_init(&o);
    o.healthy_threshold = 0;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    lbk_healthcheck_options_init(&o);
    o.stable_probes = 0;
    assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc), LBK_EINVAL);
    const double bad[] = {-0.1, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        lbk_healthcheck_options_init(&o);
        o.jitter_fraction = bad[i];
        assert_lbk(lbk_healthcheck_create(f.snap, &o, NULL, 0, &hc),
                   LBK_EINVAL);
    }
    assert_lbk(lbk_healthcheck_create(NULL, NULL, NULL, 0, &hc), LBK_EINVAL);
    assert_lbk(lbk_healthcheck_create(f.snap, NULL, NULL, 0, NULL), LBK_EINVAL);
    assert_null(hc);
    assert_ok(lbk_healthcheck_create(f.snap, NULL, NULL, 0, &hc));
    lbk_backend *b;
    uint64_t due;
    assert_lbk(lbk_healthcheck_next(NULL, 0, &b), LBK_EINVAL);
    assert_lbk(lbk_healthcheck_next(hc, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_healthcheck_next_due(hc, NULL), LBK_EINVAL);
    assert_lbk(lbk_healthcheck_report(hc, NULL, true, 0), LBK_EINVAL);
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "late", 1, NULL, &slot));
    lbk_backend *late = lbk_set_backend(f.set, slot);
    assert_lbk(lbk_healthcheck_report(hc, late, false, 0), LBK_ENOENT);
    lbk_healthcheck_info i;
    assert_lbk(lbk_healthcheck_get_info(hc, late, &i), LBK_ENOENT);
    assert_lbk(lbk_healthcheck_get_info(hc, f.b[0], NULL), LBK_EINVAL);
    assert_false(info(hc, f.b[0]).probed); /* failed calls changed nothing */
    lbk_healthcheck_free(hc);
    lbk_healthcheck_free(NULL);
    lbk_healthcheck_options_init(NULL);
    /* an empty snapshot: nothing is ever due */
    lbk_set *empty;
    const lbk_snapshot *es;
    assert_ok(lbk_set_create(NULL, &empty));
    assert_ok(lbk_set_snapshot(empty, &es));
    assert_ok(lbk_healthcheck_create(es, NULL, NULL, 0, &hc));
    assert_int_equal(lbk_healthcheck_next(hc, UINT64_MAX, &b), 0);
    assert_lbk(lbk_healthcheck_next_due(hc, &due), LBK_ENOENT);
    lbk_healthcheck_free(hc);
    lbk_snapshot_release(es);
    lbk_set_free(empty);
    fixture_done(&f);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_healthcheck *hc = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_healthcheck_create(f.snap, NULL, &fa.hook, T0, &hc);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(hc);
        assert_int_equal(fa.live, 0);
    }
    uint64_t due;
    assert_ok(lbk_healthcheck_next_due(hc, &due));
    lbk_healthcheck_free(hc);
    assert_int_equal(fa.live, 0);
    fixture_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_schedule_order),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_adaptive_interval),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
