/*
 * tests/test_resilience_interaction.c - outlier ejection, active health
 * checks, slow start and panic together on one backend set, in simulated
 * time: each owns one part of a backend's state and the set composes them
 * (eligible = UP and not ejected; weight x scale; panic admits all).
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/healthcheck.h"
#include "lbkit/outlier.h"
#include "lbkit/panic.h"
#include "lbkit/slowstart.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(10000) * SEC)
#define N 10

typedef struct world {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[N];
    lbk_outlier *od;
    lbk_healthcheck *hc;
    lbk_slowstart *ss;
    lbk_panic *panic;
} world;

static void world_init(world *w)
{
    assert_ok(lbk_set_create(NULL, &w->set));
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "10.0.0.%d:80", i);
        uint32_t slot;
        assert_ok(lbk_set_add(w->set, name, 100, NULL, &slot));
        w->b[i] = lbk_set_backend(w->set, slot);
    }
    assert_ok(lbk_set_snapshot(w->set, &w->snap));
    lbk_outlier_options oo;
    lbk_outlier_options_init(&oo);
    oo.max_ejection_fraction = 0.5;
    oo.base_ejection_ns = 30 * SEC;
    assert_ok(lbk_outlier_create(w->snap, &oo, NULL, T0, &w->od));
    lbk_healthcheck_options ho;
    lbk_healthcheck_options_init(&ho);
    ho.initial_jitter_ns = 0;
    ho.jitter_fraction = 0;
    assert_ok(lbk_healthcheck_create(w->snap, &ho, NULL, T0, &w->hc));
    lbk_slowstart_options so;
    lbk_slowstart_options_init(&so);
    so.window_ns = 60 * SEC;
    so.min_weight_fraction = 0.1;
    assert_ok(lbk_slowstart_create(w->snap, &so, NULL, T0, NULL, &w->ss));
    assert_ok(lbk_panic_create(LBK_PANIC_DEFAULT_THRESHOLD, NULL, &w->panic));
}

static void world_done(world *w)
{
    lbk_panic_free(w->panic);
    lbk_slowstart_free(w->ss);
    lbk_healthcheck_free(w->hc);
    lbk_outlier_uneject_all(w->od);
    lbk_outlier_free(w->od);
    lbk_snapshot_release(w->snap);
    lbk_set_free(w->set);
}

/* The control loop a proxy would run each second. */
static void control(world *w, uint64_t t)
{
    assert_true(lbk_outlier_tick(w->od, t) >= 0);
    assert_true(lbk_slowstart_update(w->ss, t) >= 0);
    assert_true(lbk_panic_update(w->panic, w->snap) >= 0);
}

/* Effective weight a weight-aware picker would use now, 0 when the backend
 * may not take traffic. */
static double effective(world *w, int i)
{
    if (!lbk_panic_admits(w->panic, w->snap, (uint32_t)i))
        return 0.0;
    return lbk_snapshot_weight(w->snap, (uint32_t)i) *
           lbk_backend_weight_scale(w->b[i]);
}

static int admitted(world *w)
{
    int n = 0;
    for (int i = 0; i < N; i++)
        n += effective(w, i) > 0.0;
    return n;
}

static void fail_probe(world *w, int i, int times, uint64_t t)
{
    for (int k = 0; k < times; k++)
        assert_true(lbk_healthcheck_report(w->hc, w->b[i], false, t) >= 0);
}

static void eject(world *w, int i, uint64_t t)
{
    int ejected = 0;
    for (int k = 0; k < 5; k++)
        ejected += lbk_outlier_report(w->od, w->b[i], LBK_OUTCOME_ERROR, t);
    assert_int_equal(ejected, 1);
}

static void test_ejection_health_slowstart_panic(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    uint64_t t = T0;
    control(&w, t);
    assert_int_equal(admitted(&w), N);

    /* health checks take b0 and b1 down; outliers eject b2, b3, b4 */
    fail_probe(&w, 0, 3, t);
    fail_probe(&w, 1, 3, t);
    for (int i = 2; i <= 4; i++)
        eject(&w, i, t);
    control(&w, t);
    assert_int_equal(admitted(&w), 5); /* exactly 50%: no panic */
    assert_false(lbk_panic_active(w.panic, 0));
    assert_true(effective(&w, 0) == 0.0 && effective(&w, 2) == 0.0);

    /* b5 ejected as well: 4 of 10 healthy, below 50%: panic admits all,
     * the down and the ejected ones included */
    t += SEC;
    eject(&w, 5, t);
    control(&w, t);
    assert_true(lbk_panic_active(w.panic, 0));
    assert_int_equal(admitted(&w), N);
    /* b6 is the fifth ejection, exactly the maximum (50% of 10); b7 would
     * be the sixth and stays */
    eject(&w, 6, t);
    for (int k = 0; k < 5; k++)
        assert_int_equal(lbk_outlier_report(w.od, w.b[7], LBK_OUTCOME_ERROR, t),
                         0);
    control(&w, t);
    assert_int_equal(admitted(&w), N);

    /* b2 also fails its health checks while ejected: it needs both to
     * clear before it serves again */
    fail_probe(&w, 2, 3, t);
    assert_int_equal(lbk_backend_health(w.b[2]), LBK_HEALTH_DOWN);

    /* 30 s later b2..b4 come back from ejection (b5, b6 a second later) */
    t = T0 + 30 * SEC;
    control(&w, t);
    assert_false(lbk_panic_active(w.panic, 0)); /* 5 of 10 healthy */
    assert_true(lbk_backend_ejected(w.b[6]));
    assert_false(lbk_backend_ejected(w.b[3]));
    assert_true(lbk_backend_eligible(w.b[3]));
    assert_false(lbk_backend_eligible(w.b[2])); /* still DOWN */
    assert_true(effective(&w, 2) == 0.0);
    /* slow start ramps the returning backends from the 10% floor */
    assert_true(lbk_slowstart_ramping(w.ss, w.b[3]));
    assert_true(fabs(effective(&w, 3) - 10.0) < 0.01);
    assert_true(effective(&w, 7) == 100.0);

    /* health checks bring b0 and b2 back: two successes each */
    t += 10 * SEC;
    for (int k = 0; k < 2; k++) {
        assert_true(lbk_healthcheck_report(w.hc, w.b[0], true, t) >= 0);
        assert_true(lbk_healthcheck_report(w.hc, w.b[2], true, t) >= 0);
    }
    assert_true(lbk_backend_eligible(w.b[0]));
    assert_true(lbk_backend_eligible(w.b[2]));
    control(&w, t);
    assert_true(lbk_slowstart_ramping(w.ss, w.b[2])); /* ramp from now */
    assert_true(fabs(effective(&w, 2) - 10.0) < 0.01);
    /* b3 is 10 s into its ramp: 10/60 of its weight */
    assert_true(fabs(effective(&w, 3) - 100.0 / 6.0) < 0.01);

    /* a minute later every ramp is over and only b1 is out */
    t += 61 * SEC;
    control(&w, t);
    for (int i = 0; i < N; i++)
        assert_true(effective(&w, i) == (i == 1 ? 0.0 : 100.0));
    assert_int_equal(lbk_outlier_ejected_count(w.od), 0);
    world_done(&w);
}

static void test_all_ejected_then_panic(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    lbk_outlier_free(w.od);
    lbk_outlier_options oo;
    lbk_outlier_options_init(&oo);
    oo.max_ejection_fraction = 1.0;
    assert_ok(lbk_outlier_create(w.snap, &oo, NULL, T0, &w.od));
    for (int i = 0; i < N; i++)
        eject(&w, i, T0);
    control(&w, T0);
    /* nothing is eligible, but panic keeps the tier serving */
    for (int i = 0; i < N; i++)
        assert_false(lbk_backend_eligible(w.b[i]));
    assert_true(lbk_panic_active(w.panic, 0));
    assert_int_equal(admitted(&w), N);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ejection_health_slowstart_panic),
        cmocka_unit_test(test_all_ejected_then_panic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
