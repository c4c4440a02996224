/*
 * tests/test_random.c - weighted random: chi-square goodness of fit for
 * P(i) = w_i / W (all up, some down, slow start), weight 0 never picked,
 * health flips, bad input, allocation failure.
 *
 * Each chi-square test compares counts from a fixed seed against the
 * critical value at a one-sided false-failure rate of 1e-6
 * (chi2_critical_1e6), so a correct picker fails one run in a million per
 * test, and the fixed seeds make each run reproducible.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/random.h"

static lbk_set *make_set(uint32_t n, const uint32_t *w)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(set, name, w[i], NULL, &slot));
    }
    return set;
}

static lbk_random *build(const lbk_snapshot *snap, uint64_t seed)
{
    lbk_random_options o;
    lbk_random_options_init(&o);
    o.seed = seed;
    lbk_random *r;
    assert_ok(lbk_random_build(snap, &o, NULL, &r));
    return r;
}

static uint32_t pick_slot(lbk_random *r)
{
    lbk_backend *b;
    assert_ok(lbk_random_pick(r, &b));
    return lbk_backend_slot(b);
}

/* Pearson's statistic of counts against expected shares e (summing to 1),
 * over the cells with e > 0; cells with e == 0 must be empty. */
static double chi2(const uint64_t *count, const double *e, uint32_t n,
                   uint64_t draws, uint32_t *df)
{
    double x = 0;
    uint32_t cells = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (e[i] == 0) {
            assert_int_equal(count[i], 0);
            continue;
        }
        double m = e[i] * (double)draws;
        x += ((double)count[i] - m) * ((double)count[i] - m) / m;
        cells++;
    }
    *df = cells - 1;
    return x;
}

static void run_fit(lbk_random *r, uint32_t n, const double *share,
                    uint64_t draws)
{
    uint64_t *count = calloc(n, sizeof(*count));
    assert_non_null(count);
    for (uint64_t t = 0; t < draws; t++)
        count[pick_slot(r)]++;
    uint32_t df;
    double x = chi2(count, share, n, draws, &df);
    assert_true(df >= 3);
    if (x >= chi2_critical_1e6(df))
        fail_msg("chi2 %.1f >= critical %.1f (df %u)", x, chi2_critical_1e6(df),
                 df);
    free(count);
}

static void test_distribution(void **state)
{
    (void)state;
    /* Mixed weights, zeros included, one heavy backend. */
    uint32_t w[12] = {1, 2, 3, 0, 5, 8, 13, 0, 21, 34, 55, 400};
    double share[12], total = 0;
    for (int i = 0; i < 12; i++)
        total += w[i];
    for (int i = 0; i < 12; i++)
        share[i] = w[i] / total;
    lbk_set *set = make_set(12, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    for (uint64_t seed = 1; seed <= 3; seed++) {
        lbk_random *r = build(snap, seed);
        run_fit(r, 12, share, 2000000);
        lbk_random_free(r);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Many backends of random weights: exercises every alias column. */
static void test_distribution_many(void **state)
{
    (void)state;
    enum { N = 300 };
    uint32_t w[N];
    double share[N], total = 0;
    uint64_t rs = 4242;
    for (int i = 0; i < N; i++) {
        w[i] = (uint32_t)(test_rand(&rs) % 1000);
        total += w[i];
    }
    for (int i = 0; i < N; i++)
        share[i] = w[i] / total;
    lbk_set *set = make_set(N, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random *r = build(snap, 77);
    run_fit(r, N, share, 3000000);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Total weight 2^32 - 1: the integer table must not overflow. */
static void test_huge_weights(void **state)
{
    (void)state;
    uint32_t w[4] = {UINT32_C(1) << 31, UINT32_C(1) << 30, UINT32_C(1) << 29,
                     (UINT32_C(1) << 29) - 1};
    lbk_set *set = make_set(4, w);
    assert_int_equal(lbk_set_total_weight(set), UINT32_MAX);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    double share[4];
    for (int i = 0; i < 4; i++)
        share[i] = w[i] / (double)UINT32_MAX;
    lbk_random *r = build(snap, 3);
    run_fit(r, 4, share, 1000000);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Down backends are rejected at the next pick; the rest keep exact
 * relative shares (rejection sampling). */
static void test_health_flips(void **state)
{
    (void)state;
    uint32_t w[8] = {10, 20, 30, 40, 50, 60, 70, 80};
    lbk_set *set = make_set(8, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random *r = build(snap, 9);
    assert_ok(lbk_backend_set_health(lbk_set_backend(set, 7), LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_ejected(lbk_set_backend(set, 2), true));
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 4), 0.5));
    /* Expected shares among the rest, slow start as w * s. */
    double eff[8] = {10, 20, 0, 40, 25, 60, 70, 0}, total = 0, share[8];
    for (int i = 0; i < 8; i++)
        total += eff[i];
    for (int i = 0; i < 8; i++)
        share[i] = eff[i] / total;
    run_fit(r, 8, share, 1000000);

    /* All down: the documented error; one back: the very next pick. */
    for (uint32_t i = 0; i < 8; i++)
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, i), LBK_HEALTH_DOWN));
    lbk_backend *b = NULL;
    assert_lbk(lbk_random_pick(r, &b), LBK_ENOBACKEND);
    assert_null(b);
    assert_ok(lbk_backend_set_health(lbk_set_backend(set, 0), LBK_HEALTH_UP));
    for (int t = 0; t < 100; t++)
        assert_int_equal(pick_slot(r), 0);
    /* Scale 0 counts as weight 0. */
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 0), 0.0));
    assert_lbk(lbk_random_pick(r, &b), LBK_ENOBACKEND);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_zero_and_empty(void **state)
{
    (void)state;
    uint32_t w[3] = {0, 0, 0};
    lbk_set *set = make_set(3, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random *r = build(snap, 1);
    lbk_backend *b = NULL;
    assert_lbk(lbk_random_pick(r, &b), LBK_ENOBACKEND);
    assert_null(b);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    uint32_t one[3] = {0, 7, 0};
    set = make_set(3, one);
    assert_ok(lbk_set_snapshot(set, &snap));
    r = build(snap, 0);
    for (int t = 0; t < 1000; t++)
        assert_int_equal(pick_slot(r), 1);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_seeded_reproducible(void **state)
{
    (void)state;
    uint32_t w[5] = {1, 2, 3, 4, 5};
    lbk_set *set = make_set(5, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random *a = build(snap, 31), *b = build(snap, 31), *c = build(snap, 32);
    int differ = 0;
    for (int t = 0; t < 200; t++) {
        uint32_t x = pick_slot(a);
        assert_int_equal(x, pick_slot(b));
        differ += x != pick_slot(c);
    }
    assert_true(differ > 0);
    lbk_random_free(a);
    lbk_random_free(b);
    lbk_random_free(c);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_bad_input(void **state)
{
    (void)state;
    uint32_t w[2] = {1, 2};
    lbk_set *set = make_set(2, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random *r = (lbk_random *)&r;
    assert_lbk(lbk_random_build(NULL, NULL, NULL, &r), LBK_EINVAL);
    assert_lbk(lbk_random_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_random_build(snap, NULL, &half, &r), LBK_EINVAL);
    assert_ptr_equal(r, (lbk_random *)&r);
    assert_ok(lbk_random_build(snap, NULL, NULL, &r));
    lbk_backend *b;
    assert_lbk(lbk_random_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_random_pick(r, NULL), LBK_EINVAL);
    assert_int_equal(lbk_random_footprint(NULL), 0);
    assert_true(lbk_random_footprint(r) > 0);
    lbk_random_free(NULL);
    lbk_random_options_init(NULL);
    lbk_random_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    uint32_t w[5] = {3, 0, 1, 9, 2};
    lbk_set *set = make_set(5, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_random_options o;
    lbk_random_options_init(&o);
    o.seed = 5;
    lbk_random *r = NULL;
    long k;
    for (k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        lbk_random *out = (lbk_random *)&out;
        int rc = lbk_random_build(snap, &o, &fa.hook, &out);
        if (rc == 0) {
            r = out;
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(atomic_load(&fa.live), 0);
        assert_ptr_equal(out, (lbk_random *)&out);
    }
    assert_int_equal(k, 2); /* the object and the work lists */
    for (int t = 0; t < 100; t++)
        assert_int_not_equal(pick_slot(r), 1);
    lbk_random_free(r);
    assert_int_equal(atomic_load(&fa.live), 0);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_distribution_many),
        cmocka_unit_test(test_huge_weights),
        cmocka_unit_test(test_health_flips),
        cmocka_unit_test(test_zero_and_empty),
        cmocka_unit_test(test_seeded_reproducible),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
