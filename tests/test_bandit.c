/*
 * tests/test_bandit.c - UCB1 and Thompson sampling: exploration order, the
 * Beta sampler against an exact probability, convergence to the best
 * backend in a stationary simulation while still exploring, latency in the
 * reward, re-learning a drift with decay, eligibility, bad input and
 * allocation failure.  All randomness is seeded.
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/bandit.h"

#define MS UINT64_C(1000000)

static double unit(uint64_t x)
{
    return (double)(x >> 11) * 0x1.0p-53;
}

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[8];
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

static lbk_bandit *bandit(fixture *f, lbk_bandit_algo algo, uint64_t seed,
                          double latency_weight, double decay)
{
    lbk_bandit_options o;
    lbk_bandit_options_init(&o);
    o.algo = algo;
    o.seed = seed;
    o.latency_weight = latency_weight;
    o.decay = decay;
    lbk_bandit *bd = NULL;
    assert_ok(lbk_bandit_build(f->snap, &o, NULL, &bd));
    return bd;
}

static uint32_t index_of(const fixture *f, const lbk_backend *b)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->b[i] == b)
            return i;
    fail_msg("picked a backend outside the set");
    return UINT32_MAX;
}

static uint32_t pick(fixture *f, lbk_bandit *bd)
{
    lbk_backend *b = NULL;
    assert_ok(lbk_bandit_pick(bd, &b));
    return index_of(f, b);
}

static void test_ucb1_explores_each_first(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5);
    lbk_bandit *bd = bandit(&f, LBK_BANDIT_UCB1, 3, 0.5, 1.0);
    bool seen[5] = {false};
    for (int k = 0; k < 5; k++) {
        uint32_t i = pick(&f, bd);
        assert_false(seen[i]); /* every pick a new backend */
        seen[i] = true;
        assert_ok(lbk_bandit_report(bd, f.b[i], false, 0));
    }
    lbk_bandit_stats st;
    assert_ok(lbk_bandit_get_stats(bd, f.b[2], &st));
    assert_true(st.pulls == 1.0 && st.mean_reward == 0.0);
    lbk_bandit_free(bd);
    fixture_done(&f);
}

/* Beta(3,2) vs Beta(2,3): P(first draw is larger) = 53/70 exactly. */
static void test_thompson_beta_sampler(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_bandit *bd = bandit(&f, LBK_BANDIT_THOMPSON, 11, 0.0, 1.0);
    /* no data: Beta(1,1) each, an even split */
    int first = 0;
    for (int k = 0; k < 20000; k++)
        first += pick(&f, bd) == 0;
    assert_true(fabs(first / 20000.0 - 0.5) < 0.02);
    assert_ok(lbk_bandit_report(bd, f.b[0], true, 0));
    assert_ok(lbk_bandit_report(bd, f.b[0], true, 0));
    assert_ok(lbk_bandit_report(bd, f.b[0], false, 0));
    assert_ok(lbk_bandit_report(bd, f.b[1], true, 0));
    assert_ok(lbk_bandit_report(bd, f.b[1], false, 0));
    assert_ok(lbk_bandit_report(bd, f.b[1], false, 0));
    first = 0;
    for (int k = 0; k < 20000; k++)
        first += pick(&f, bd) == 0;
    /* standard error 0.003: a 0.015 band is five of them */
    assert_true(fabs(first / 20000.0 - 53.0 / 70.0) < 0.015);
    lbk_bandit_free(bd);
    fixture_done(&f);
}

/* Stationary simulation: success probabilities 0.95, 0.7, 0.4, 0.6. */
static void converge(lbk_bandit_algo algo, uint64_t seed)
{
    fixture f;
    fixture_init(&f, 4);
    lbk_bandit *bd = bandit(&f, algo, seed, 0.0, 1.0);
    const double p[4] = {0.95, 0.7, 0.4, 0.6};
    uint32_t count[4] = {0}, late_best = 0;
    uint64_t rs = seed * 7 + 1;
    for (int k = 0; k < 6000; k++) {
        uint32_t i = pick(&f, bd);
        count[i]++;
        if (k >= 5000)
            late_best += i == 0;
        bool ok = unit(test_rand(&rs)) < p[i];
        assert_ok(lbk_bandit_report(bd, f.b[i], ok, 10 * MS));
    }
    assert_true(late_best >= 800); /* converged: >= 80% of the last 1000 */
    /* and still explores: UCB1 keeps sampling every backend (its bonus grows
     * with ln N), Thompson samples the losers rarely but more than once */
    for (int i = 1; i < 4; i++)
        assert_true(count[i] >= (algo == LBK_BANDIT_UCB1 ? 20u : 2u));
    if (algo == LBK_BANDIT_UCB1)
        assert_true(late_best < 1000);
    lbk_bandit_free(bd);
    fixture_done(&f);
}

static void test_convergence(void **state)
{
    (void)state;
    converge(LBK_BANDIT_UCB1, 1);
    converge(LBK_BANDIT_UCB1, 2);
    converge(LBK_BANDIT_THOMPSON, 1);
    converge(LBK_BANDIT_THOMPSON, 2);
}

static void test_latency_in_reward(void **state)
{
    (void)state;
    for (int algo = 0; algo < 2; algo++) {
        fixture f;
        fixture_init(&f, 2);
        lbk_bandit *bd = bandit(&f, (lbk_bandit_algo)algo, 5, 1.0, 1.0);
        uint32_t fast = 0;
        for (int k = 0; k < 3000; k++) {
            uint32_t i = pick(&f, bd);
            fast += k >= 2000 && i == 1;
            /* both always succeed; b1 is 10 ms, b0 300 ms (target 100) */
            assert_ok(lbk_bandit_report(bd, f.b[i], true,
                                        i == 1 ? 10 * MS : 300 * MS));
        }
        assert_true(fast >= 700);
        lbk_bandit_stats st;
        assert_ok(lbk_bandit_get_stats(bd, f.b[1], &st));
        assert_true(fabs(st.mean_reward - 100.0 / 110.0) <
                    1e-3); /* float32 sums */
        lbk_bandit_free(bd);
        fixture_done(&f);
    }
}

static void test_decay_relearns_drift(void **state)
{
    (void)state;
    for (int algo = 0; algo < 2; algo++) {
        fixture f;
        fixture_init(&f, 2);
        lbk_bandit *bd = bandit(&f, (lbk_bandit_algo)algo, 9, 0.0, 0.98);
        uint64_t rs = 4;
        uint32_t late_b1 = 0;
        for (int k = 0; k < 8000; k++) {
            uint32_t i = pick(&f, bd);
            /* b0 is better for 4000 requests, then b1 */
            double p = (k < 4000) == (i == 0) ? 0.9 : 0.3;
            late_b1 += k >= 7000 && i == 1;
            bool ok = unit(test_rand(&rs)) < p;
            assert_ok(lbk_bandit_report(bd, f.b[i], ok, 0));
        }
        assert_true(late_b1 >= 700);
        lbk_bandit_stats st; /* decay bounds the memory: n <= 1/(1-0.98) */
        assert_ok(lbk_bandit_get_stats(bd, f.b[1], &st));
        assert_true(st.pulls <= 50.0 + 1e-3);
        lbk_bandit_free(bd);
        fixture_done(&f);
    }
}

static void test_eligibility(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    assert_ok(lbk_set_set_weight(f.set, 2, 0));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(f.set, &snap)); /* b2 weight 0 */
    for (int algo = 0; algo < 2; algo++) {
        lbk_bandit_options o;
        lbk_bandit_options_init(&o);
        o.algo = (lbk_bandit_algo)algo;
        o.seed = 1;
        lbk_bandit *bd = NULL;
        assert_ok(lbk_bandit_build(snap, &o, NULL, &bd));
        assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DOWN));
        for (int k = 0; k < 200; k++) {
            lbk_backend *b = NULL;
            assert_ok(lbk_bandit_pick(bd, &b));
            assert_ptr_equal(b, f.b[1]);
            assert_ok(lbk_bandit_report(bd, b, true, MS));
        }
        assert_ok(lbk_backend_set_ejected(f.b[1], true));
        lbk_backend *b = NULL;
        assert_lbk(lbk_bandit_pick(bd, &b), LBK_ENOBACKEND);
        assert_null(b);
        assert_ok(lbk_backend_set_ejected(f.b[1], false));
        assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_UP));
        lbk_bandit_free(bd);
    }
    lbk_snapshot_release(snap);
    fixture_done(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    lbk_bandit_options o;
    lbk_bandit *bd = NULL;
    lbk_bandit_options_init(&o);
    o.algo = (lbk_bandit_algo)2;
    assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    lbk_bandit_options_init(&o);
    o.latency_target_ns = 0;
    assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    const double bad_unit[] = {-0.1, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        lbk_bandit_options_init(&o);
        o.latency_weight = bad_unit[i];
        assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
        lbk_bandit_options_init(&o);
        o.decay = bad_unit[i];
        assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    }
    lbk_bandit_options_init(&o);
    o.decay = 0.0;
    assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    lbk_bandit_options_init(&o);
    o.exploration = -1.0;
    assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    o.exploration = INFINITY;
    assert_lbk(lbk_bandit_build(f.snap, &o, NULL, &bd), LBK_EINVAL);
    assert_lbk(lbk_bandit_build(NULL, NULL, NULL, &bd), LBK_EINVAL);
    assert_lbk(lbk_bandit_build(f.snap, NULL, NULL, NULL), LBK_EINVAL);
    assert_null(bd);
    assert_ok(lbk_bandit_build(f.snap, NULL, NULL, &bd));
    lbk_backend *b = NULL;
    assert_lbk(lbk_bandit_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_bandit_pick(bd, NULL), LBK_EINVAL);
    assert_lbk(lbk_bandit_report(NULL, f.b[0], true, 0), LBK_EINVAL);
    assert_lbk(lbk_bandit_report(bd, NULL, true, 0), LBK_EINVAL);
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "late", 1, NULL, &slot));
    lbk_backend *late = lbk_set_backend(f.set, slot);
    assert_lbk(lbk_bandit_report(bd, late, true, 0), LBK_ENOENT);
    lbk_bandit_stats st;
    assert_lbk(lbk_bandit_get_stats(bd, late, &st), LBK_ENOENT);
    assert_lbk(lbk_bandit_get_stats(bd, f.b[0], NULL), LBK_EINVAL);
    assert_ok(lbk_bandit_get_stats(bd, f.b[0], &st));
    assert_true(st.pulls == 0.0); /* nothing recorded by failed calls */
    lbk_bandit_free(bd);
    lbk_bandit_free(NULL);
    lbk_bandit_options_init(NULL);
    /* an empty snapshot */
    lbk_set *empty;
    const lbk_snapshot *es;
    assert_ok(lbk_set_create(NULL, &empty));
    assert_ok(lbk_set_snapshot(empty, &es));
    assert_ok(lbk_bandit_build(es, NULL, NULL, &bd));
    assert_lbk(lbk_bandit_pick(bd, &b), LBK_ENOBACKEND);
    lbk_bandit_free(bd);
    lbk_snapshot_release(es);
    lbk_set_free(empty);
    fixture_done(&f);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 4);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_bandit *bd = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_bandit_build(f.snap, NULL, &fa.hook, &bd);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(bd);
        assert_int_equal(fa.live, 0);
    }
    lbk_backend *b;
    assert_ok(lbk_bandit_pick(bd, &b));
    lbk_bandit_free(bd);
    assert_int_equal(fa.live, 0);
    fixture_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ucb1_explores_each_first),
        cmocka_unit_test(test_thompson_beta_sampler),
        cmocka_unit_test(test_convergence),
        cmocka_unit_test(test_latency_in_reward),
        cmocka_unit_test(test_decay_relearns_drift),
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
