/*
 * tests/test_wrr.c - smooth weighted round-robin: exact counts per cycle,
 * smoothness against an nginx-style reference written here, random phase,
 * weight 0, one backend, total weight 2^32 - 1, health flips, slow start,
 * bad input, allocation failure.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/wrr.h"

static lbk_set *make_set(uint32_t n, const uint32_t *w)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(set, name, w[i], NULL, &slot));
        assert_int_equal(slot, i);
    }
    return set;
}

static lbk_wrr *build(const lbk_snapshot *snap, uint64_t seed, bool phase,
                      uint32_t table_max)
{
    lbk_wrr_options o;
    lbk_wrr_options_init(&o);
    o.seed = seed;
    o.random_phase = phase;
    o.table_max = table_max;
    lbk_wrr *w;
    assert_ok(lbk_wrr_build(snap, &o, NULL, &w));
    return w;
}

static uint32_t pick_slot(lbk_wrr *w)
{
    lbk_backend *b;
    assert_ok(lbk_wrr_pick(w, &b));
    return lbk_backend_slot(b);
}

/*
 * The reference: nginx's smooth weighted round-robin as its
 * ngx_http_upstream_get_peer() does it - every peer's current weight grows
 * by its weight, the largest (first in order on ties) wins and pays the
 * total.  O(N) per pick.  Weight-0 peers are skipped (nginx has none).
 */
static void nginx_cycle(const uint32_t *w, uint32_t n, uint64_t total,
                        uint32_t *seq)
{
    int64_t *cur = calloc(n, sizeof(*cur));
    assert_non_null(cur);
    for (uint64_t t = 0; t < total; t++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < n; i++) {
            if (w[i] == 0)
                continue;
            cur[i] += w[i];
            if (best == UINT32_MAX || cur[i] > cur[best])
                best = i;
        }
        cur[best] -= (int64_t)total;
        seq[t] = best;
    }
    free(cur);
}

/* Worst |count_i(t) - t * w_i / W| over every prefix t of seq and every i,
 * in units of 1/W (exact integers). */
static int64_t worst_deviation(const uint32_t *seq, uint64_t len,
                               const uint32_t *w, uint32_t n, uint64_t total)
{
    int64_t *c = calloc(n, sizeof(*c));
    assert_non_null(c);
    int64_t worst = 0;
    for (uint64_t t = 1; t <= len; t++) {
        c[seq[t - 1]]++;
        for (uint32_t i = 0; i < n; i++) {
            int64_t d = c[i] * (int64_t)total - (int64_t)t * w[i];
            if (d < 0)
                d = -d;
            if (d > worst)
                worst = d;
        }
    }
    free(c);
    return worst;
}

static uint32_t random_weights(uint64_t *rs, uint32_t *w, uint32_t max_n,
                               uint32_t max_w, uint64_t *total)
{
    uint32_t n = 1 + (uint32_t)(test_rand(rs) % max_n);
    do {
        *total = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = test_rand(rs);
            w[i] = (r % 5 == 0) ? 0 : 1 + (uint32_t)((r >> 8) % max_w);
            *total += w[i];
        }
    } while (*total == 0);
    return n;
}

/* Hundreds of random weight vectors: the table holds nginx's cycle exactly,
 * so its worst prefix deviation is never worse than nginx's. */
static void test_smooth_as_nginx(void **state)
{
    (void)state;
    uint64_t rs = 12345;
    uint32_t w[16];
    int vectors = 0;
    for (int trial = 0; trial < 400; trial++) {
        uint64_t total;
        uint32_t n = random_weights(&rs, w, 16, trial % 2 ? 40 : 9, &total);
        lbk_set *set = make_set(n, w);
        const lbk_snapshot *snap;
        assert_ok(lbk_set_snapshot(set, &snap));
        lbk_wrr *wrr = build(snap, 1 + trial, false, LBK_WRR_TABLE_DEFAULT);
        assert_true(lbk_wrr_uses_table(wrr));
        assert_int_equal(lbk_wrr_cycle(wrr), total);
        uint32_t *ref = malloc(total * sizeof(*ref));
        uint32_t *got = malloc(total * sizeof(*got));
        nginx_cycle(w, n, total, ref);
        for (uint64_t t = 0; t < total; t++)
            got[t] = pick_slot(wrr);
        int64_t dev_ref = worst_deviation(ref, total, w, n, total);
        int64_t dev_got = worst_deviation(got, total, w, n, total);
        assert_true(dev_got <= dev_ref);
        assert_memory_equal(got, ref, total * sizeof(*ref));
        free(ref);
        free(got);
        lbk_wrr_free(wrr);
        lbk_snapshot_release(snap);
        lbk_set_free(set);
        vectors++;
    }
    assert_int_equal(vectors, 400);
}

/* Exact counts over every cycle, for both schedules, with and without the
 * random phase; the tree's worst prefix deviation stays below the 1.5 that
 * wrr.h documents as measured. */
static void test_exact_cycles(void **state)
{
    (void)state;
    uint64_t rs = 777;
    uint32_t w[48];
    double tree_worst = 0;
    for (int trial = 0; trial < 300; trial++) {
        uint64_t total;
        uint32_t n = random_weights(&rs, w, 48, trial % 3 ? 60 : 5, &total);
        lbk_set *set = make_set(n, w);
        const lbk_snapshot *snap;
        assert_ok(lbk_set_snapshot(set, &snap));
        for (int mode = 0; mode < 4; mode++) {
            bool phase = mode & 1;
            uint32_t table_max = mode & 2 ? 0 : LBK_WRR_TABLE_DEFAULT;
            lbk_wrr *wrr = build(snap, 99 + trial, phase, table_max);
            assert_int_equal(lbk_wrr_uses_table(wrr), table_max != 0);
            uint32_t *seq = malloc(total * sizeof(*seq));
            for (int cycle = 0; cycle < 3; cycle++) {
                uint64_t count[48] = {0};
                for (uint64_t t = 0; t < total; t++) {
                    seq[t] = pick_slot(wrr);
                    count[seq[t]]++;
                }
                for (uint32_t i = 0; i < n; i++)
                    assert_int_equal(count[i], w[i]);
                if (!phase && table_max == 0) {
                    double dev =
                        (double)worst_deviation(seq, total, w, n, total) /
                        (double)total;
                    if (dev > tree_worst)
                        tree_worst = dev;
                }
            }
            free(seq);
            lbk_wrr_free(wrr);
        }
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
    assert_true(tree_worst < 1.5);
}

/* The first picks after a build start at a random phase: with weights
 * {5,1,1,1,1,1}, nginx's cycle starts with the heavy backend every time;
 * with the random phase the first pick is the heavy one with probability
 * 1/2 (it holds 5 of the 10 positions). */
static void test_random_phase(void **state)
{
    (void)state;
    uint32_t w[6] = {5, 1, 1, 1, 1, 1};
    lbk_set *set = make_set(6, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    int heavy = 0, trials = 400;
    for (int s = 1; s <= trials; s++) {
        lbk_wrr *fixed = build(snap, (uint64_t)s, false, LBK_WRR_TABLE_DEFAULT);
        assert_int_equal(pick_slot(fixed), 0);
        lbk_wrr_free(fixed);
        lbk_wrr *wrr = build(snap, (uint64_t)s, true, LBK_WRR_TABLE_DEFAULT);
        heavy += pick_slot(wrr) == 0;
        lbk_wrr_free(wrr);
    }
    /* Binomial(400, 1/2): 6 sigma = 60. */
    assert_true(heavy > 200 - 60 && heavy < 200 + 60);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_weight_zero_one_backend(void **state)
{
    (void)state;
    uint32_t w[4] = {0, 3, 0, 0};
    lbk_set *set = make_set(4, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    for (int mode = 0; mode < 2; mode++) {
        lbk_wrr *wrr = build(snap, 5, true, mode ? 0 : LBK_WRR_TABLE_DEFAULT);
        assert_int_equal(lbk_wrr_cycle(wrr), 3);
        for (int t = 0; t < 100; t++)
            assert_int_equal(pick_slot(wrr), 1);
        lbk_wrr_free(wrr);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    uint32_t z[3] = {0, 0, 0};
    set = make_set(3, z);
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_wrr *wrr = build(snap, 5, true, LBK_WRR_TABLE_DEFAULT);
    lbk_backend *b = NULL;
    assert_lbk(lbk_wrr_pick(wrr, &b), LBK_ENOBACKEND);
    assert_null(b);
    assert_int_equal(lbk_wrr_cycle(wrr), 0);
    lbk_wrr_free(wrr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Total weight 2^32 - 1: no table, no O(W) memory; the two-backend tree is
 * one Bresenham node, so after t picks backend 0 has exactly
 * floor((t * w0 + floor(W / 2)) / W) picks - exact at t = W. */
static void test_total_weight_max(void **state)
{
    (void)state;
    uint32_t w[2] = {UINT32_C(1) << 31, (UINT32_C(1) << 31) - 1};
    lbk_set *set = make_set(2, w);
    assert_int_equal(lbk_set_total_weight(set), UINT32_MAX);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_wrr *wrr = build(snap, 3, false, LBK_WRR_TABLE_DEFAULT);
    assert_false(lbk_wrr_uses_table(wrr));
    assert_int_equal(lbk_wrr_cycle(wrr), UINT32_MAX);
    assert_true(lbk_wrr_footprint(wrr) < 4096);
    __extension__ typedef unsigned __int128 u128;
    uint64_t c0 = 0;
    for (uint64_t t = 1; t <= 200000; t++) {
        c0 += pick_slot(wrr) == 0;
        uint64_t want =
            (uint64_t)(((u128)t * w[0] + UINT32_MAX / 2) / UINT32_MAX);
        assert_int_equal(c0, want);
    }
    lbk_wrr_free(wrr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    /* Five backends summing to 2^32 - 1: every prefix within the bound. */
    uint32_t v[5] = {UINT32_C(1) << 30, UINT32_C(1) << 30, UINT32_C(1) << 30,
                     (UINT32_C(1) << 30) - 2, 1};
    set = make_set(5, v);
    assert_int_equal(lbk_set_total_weight(set), UINT32_MAX);
    assert_ok(lbk_set_snapshot(set, &snap));
    wrr = build(snap, 3, false, LBK_WRR_TABLE_DEFAULT);
    uint64_t c[5] = {0};
    for (uint64_t t = 1; t <= 200000; t++) {
        c[pick_slot(wrr)]++;
        for (int i = 0; i < 5; i++) {
            double d = (double)c[i] - (double)t * v[i] / (double)UINT32_MAX;
            assert_true(fabs(d) <= 1.5); /* wrr.h: below 1.5 */
        }
    }
    lbk_wrr_free(wrr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_health_flips(void **state)
{
    (void)state;
    uint32_t w[5] = {5, 1, 3, 2, 4};
    lbk_set *set = make_set(5, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    for (int mode = 0; mode < 2; mode++) {
        lbk_wrr *wrr = build(snap, 8, true, mode ? 0 : LBK_WRR_TABLE_DEFAULT);
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 0), LBK_HEALTH_DOWN));
        assert_ok(lbk_backend_set_ejected(lbk_set_backend(set, 3), true));
        uint32_t count[5] = {0};
        for (int t = 0; t < 1500; t++)
            count[pick_slot(wrr)]++;
        assert_int_equal(count[0], 0);
        assert_int_equal(count[3], 0);
        /* Each survivor at least its own share (100 cycles of 15). */
        assert_true(count[1] >= 100 && count[2] >= 300 && count[4] >= 400);
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 0), LBK_HEALTH_UP));
        assert_ok(lbk_backend_set_ejected(lbk_set_backend(set, 3), false));
        /* All down, then one back: the very next pick takes it. */
        for (uint32_t i = 0; i < 5; i++)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, i),
                                             LBK_HEALTH_DRAINING));
        lbk_backend *b;
        assert_lbk(lbk_wrr_pick(wrr, &b), LBK_ENOBACKEND);
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 1), LBK_HEALTH_UP));
        for (int t = 0; t < 30; t++)
            assert_int_equal(pick_slot(wrr), 1);
        for (uint32_t i = 0; i < 5; i++)
            assert_ok(
                lbk_backend_set_health(lbk_set_backend(set, i), LBK_HEALTH_UP));
        /* Back to exact cycles once all are up. */
        uint32_t c2[5] = {0};
        lbk_wrr_free(wrr);
        wrr = build(snap, 8, true, mode ? 0 : LBK_WRR_TABLE_DEFAULT);
        for (int t = 0; t < 15; t++)
            c2[pick_slot(wrr)]++;
        for (int i = 0; i < 5; i++)
            assert_int_equal(c2[i], w[i]);
        lbk_wrr_free(wrr);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_slow_start(void **state)
{
    (void)state;
    uint32_t w[4] = {4, 4, 4, 4};
    lbk_set *set = make_set(4, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_wrr *wrr = build(snap, 8, true, LBK_WRR_TABLE_DEFAULT);
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 2), 0.0));
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 1), 0.5));
    uint32_t count[4] = {0};
    for (int t = 0; t < 16000; t++)
        count[pick_slot(wrr)]++;
    assert_int_equal(count[2], 0);
    /* Backend 1 keeps about half of its 4000 slots; a passed slot goes to
     * the next schedule entry, which is never 1 again for equal weights. */
    assert_true(count[1] > 2000 - 6 * sqrt(4000 * 0.25) &&
                count[1] < 2000 + 6 * sqrt(4000 * 0.25));
    lbk_wrr_free(wrr);
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
    lbk_wrr *wrr = (lbk_wrr *)&wrr;
    assert_lbk(lbk_wrr_build(NULL, NULL, NULL, &wrr), LBK_EINVAL);
    assert_lbk(lbk_wrr_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {NULL, fail_free_fn, NULL};
    assert_lbk(lbk_wrr_build(snap, NULL, &half, &wrr), LBK_EINVAL);
    lbk_wrr_options o;
    lbk_wrr_options_init(&o);
    o.table_max = LBK_WRR_TABLE_LIMIT + 1;
    assert_lbk(lbk_wrr_build(snap, &o, NULL, &wrr), LBK_ERANGE);
    assert_ptr_equal(wrr, (lbk_wrr *)&wrr);
    assert_ok(lbk_wrr_build(snap, NULL, NULL, &wrr));
    lbk_backend *b;
    assert_lbk(lbk_wrr_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_wrr_pick(wrr, NULL), LBK_EINVAL);
    assert_int_equal(lbk_wrr_cycle(NULL), 0);
    assert_false(lbk_wrr_uses_table(NULL));
    assert_int_equal(lbk_wrr_footprint(NULL), 0);
    assert_true(lbk_wrr_footprint(wrr) > 0);
    lbk_wrr_free(NULL);
    lbk_wrr_options_init(NULL);
    lbk_wrr_free(wrr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    uint32_t w[6] = {3, 1, 3, 0, 7, 1};
    lbk_set *set = make_set(6, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    for (int mode = 0; mode < 2; mode++) {
        lbk_wrr_options o;
        lbk_wrr_options_init(&o);
        o.seed = 4;
        o.table_max = mode ? 0 : LBK_WRR_TABLE_DEFAULT;
        lbk_wrr *wrr = NULL;
        long sites = 0;
        for (long k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            lbk_wrr *out = (lbk_wrr *)&out;
            int rc = lbk_wrr_build(snap, &o, &fa.hook, &out);
            if (rc == 0) {
                wrr = out;
                sites = k;
                break;
            }
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(atomic_load(&fa.live), 0);
            assert_ptr_equal(out, (lbk_wrr *)&out);
        }
        /* Table: keys, object, groups; tree: keys, object. */
        assert_int_equal(sites, mode ? 2 : 3);
        uint32_t count[6] = {0};
        for (int t = 0; t < 15; t++)
            count[pick_slot(wrr)]++;
        for (int i = 0; i < 6; i++)
            assert_int_equal(count[i], w[i]);
        lbk_wrr_free(wrr);
        assert_int_equal(atomic_load(&fa.live), 0);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* The build budget: 100 distinct weights totalling 999950 fit table_max
 * (2^20) but D * W = 99995000 exceeds LBK_WRR_BUILD_BUDGET (2^26), so the
 * picker uses the stride schedule rather than a table; it still picks
 * every backend in proportion to its weight (over a run of picks much
 * shorter than W, each backend's share is within a few picks of w / W). */
static void test_build_budget_falls_back(void **state)
{
    (void)state;
    enum { N = 100 };
    uint32_t w[N];
    uint64_t total = 0;
    for (uint32_t i = 0; i < N; i++) {
        w[i] = 9950 + i;
        total += w[i];
    }
    assert_true(total <= LBK_WRR_TABLE_DEFAULT);
    assert_true((uint64_t)N * total > LBK_WRR_BUILD_BUDGET);
    lbk_set *set = make_set(N, w);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_wrr *wrr = build(snap, 5, false, LBK_WRR_TABLE_DEFAULT);
    assert_false(lbk_wrr_uses_table(wrr));
    uint32_t count[N] = {0};
    for (int t = 0; t < 100 * N; t++)
        count[pick_slot(wrr)]++;
    for (uint32_t i = 0; i < N; i++) /* expected ~100 each */
        assert_true(count[i] >= 90 && count[i] <= 110);
    lbk_wrr_free(wrr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smooth_as_nginx),
        cmocka_unit_test(test_build_budget_falls_back),
        cmocka_unit_test(test_exact_cycles),
        cmocka_unit_test(test_random_phase),
        cmocka_unit_test(test_weight_zero_one_backend),
        cmocka_unit_test(test_total_weight_max),
        cmocka_unit_test(test_health_flips),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
