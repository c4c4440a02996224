/*
 * tests/test_rr.c - round-robin: exact rotation, random start, weight 0,
 * health flips at the next pick, many backends down, slow start, bad
 * input, allocation failure.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/rr.h"

/* A set of n backends "b<i>" with the given weights (NULL: all 1). */
static lbk_set *make_set(uint32_t n, const uint32_t *w, const lbk_allocator *a)
{
    lbk_set *set;
    assert_ok(lbk_set_create(a, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(set, name, w ? w[i] : 1, NULL, &slot));
        assert_int_equal(slot, i);
    }
    return set;
}

static const lbk_snapshot *snap_of(lbk_set *set)
{
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    return snap;
}

static lbk_rr *build_seeded(const lbk_snapshot *snap, uint64_t seed)
{
    lbk_rr_options o;
    lbk_rr_options_init(&o);
    o.seed = seed;
    lbk_rr *rr;
    assert_ok(lbk_rr_build(snap, &o, NULL, &rr));
    return rr;
}

static uint32_t pick_slot(lbk_rr *rr)
{
    lbk_backend *b;
    assert_ok(lbk_rr_pick(rr, &b));
    return lbk_backend_slot(b);
}

static void test_exact_rotation(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 70; n += 23) {
        lbk_set *set = make_set(n, NULL, NULL);
        const lbk_snapshot *snap = snap_of(set);
        lbk_rr *rr = build_seeded(snap, 7 + n);
        assert_int_equal(lbk_rr_count(rr), n);
        uint32_t first = pick_slot(rr);
        /* Consecutive slots, wrapping: every window of n picks is exact. */
        for (uint32_t t = 1; t < 5 * n; t++)
            assert_int_equal(pick_slot(rr), (first + t) % n);
        lbk_rr_free(rr);
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
}

static void test_random_start(void **state)
{
    (void)state;
    enum { N = 16 };
    lbk_set *set = make_set(N, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    uint32_t seen[N] = {0};
    for (uint64_t seed = 1; seed <= 400; seed++) {
        lbk_rr *rr = build_seeded(snap, seed);
        seen[pick_slot(rr)]++;
        lbk_rr_free(rr);
    }
    /* 400 pickers over 16 starts: each start expected 25 times; a start
     * never used (probability 16 * (15/16)^400 < 1e-10) would mean the
     * start is not random.  Same seed, same start. */
    for (int i = 0; i < N; i++)
        assert_true(seen[i] > 0);
    lbk_rr *a = build_seeded(snap, 99), *b = build_seeded(snap, 99);
    assert_int_equal(pick_slot(a), pick_slot(b));
    lbk_rr_free(a);
    lbk_rr_free(b);
    /* Unseeded pickers built back to back do not all start at one place. */
    uint32_t firsts = 0, prev = UINT32_MAX;
    for (int k = 0; k < 32; k++) {
        lbk_rr *rr;
        assert_ok(lbk_rr_build(snap, NULL, NULL, &rr));
        uint32_t s = pick_slot(rr);
        firsts += prev != UINT32_MAX && s != prev;
        prev = s;
        lbk_rr_free(rr);
    }
    assert_true(firsts > 0);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_weight_zero_and_empty(void **state)
{
    (void)state;
    uint32_t w[5] = {1, 0, 3, 0, 1};
    lbk_set *set = make_set(5, w, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = build_seeded(snap, 3);
    assert_int_equal(lbk_rr_count(rr), 3);
    for (int t = 0; t < 300; t++) {
        uint32_t s = pick_slot(rr);
        assert_true(s == 0 || s == 2 || s == 4);
    }
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    uint32_t zero[3] = {0, 0, 0};
    set = make_set(3, zero, NULL);
    snap = snap_of(set);
    rr = build_seeded(snap, 3);
    lbk_backend *b = (lbk_backend *)&b;
    assert_lbk(lbk_rr_pick(rr, &b), LBK_ENOBACKEND);
    assert_ptr_equal(b, (lbk_backend *)&b); /* out not written */
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    set = make_set(0, NULL, NULL);
    snap = snap_of(set);
    rr = build_seeded(snap, 0);
    assert_int_equal(lbk_rr_count(rr), 0);
    assert_lbk(lbk_rr_pick(rr, &b), LBK_ENOBACKEND);
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_health_flips_next_pick(void **state)
{
    (void)state;
    enum { N = 10 };
    lbk_set *set = make_set(N, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = build_seeded(snap, 11);
    lbk_backend *b3 = lbk_set_backend(set, 3);
    lbk_backend *b7 = lbk_set_backend(set, 7);
    lbk_backend *b8 = lbk_set_backend(set, 8);
    assert_ok(lbk_backend_set_health(b3, LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_health(b7, LBK_HEALTH_DRAINING));
    assert_ok(lbk_backend_set_ejected(b8, true));
    uint32_t count[N] = {0};
    for (int t = 0; t < 7000; t++)
        count[pick_slot(rr)]++;
    assert_int_equal(count[3], 0);
    assert_int_equal(count[7], 0);
    assert_int_equal(count[8], 0);
    for (int i = 0; i < N; i++)
        if (i != 3 && i != 7 && i != 8)
            assert_true(count[i] >= 700); /* own turns: exactly 700 each */
    /* Back up: it takes its next turn at once (within N picks). */
    assert_ok(lbk_backend_set_health(b3, LBK_HEALTH_UP));
    int seen = 0;
    for (int t = 0; t < N && !seen; t++)
        seen = pick_slot(rr) == 3;
    assert_true(seen);

    /* All down: the documented error, out untouched; one up: next pick. */
    for (uint32_t i = 0; i < N; i++)
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, i), LBK_HEALTH_DOWN));
    lbk_backend *out = NULL;
    for (int t = 0; t < 3 * N; t++)
        assert_lbk(lbk_rr_pick(rr, &out), LBK_ENOBACKEND);
    assert_null(out);
    assert_ok(lbk_backend_set_health(lbk_set_backend(set, 5), LBK_HEALTH_UP));
    for (int t = 0; t < 3 * N; t++)
        assert_int_equal(pick_slot(rr), 5);
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_many_down(void **state)
{
    (void)state;
    enum { N = 4096 };
    lbk_set *set = make_set(N, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = build_seeded(snap, 5);
    static const uint32_t up[] = {17, 900, 901, 4095};
    for (uint32_t i = 0; i < N; i++) {
        bool keep = false;
        for (int k = 0; k < 4; k++)
            keep |= i == up[k];
        if (!keep)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, i),
                                             LBK_HEALTH_DOWN));
    }
    uint32_t count[4] = {0};
    for (int t = 0; t < 40000; t++) {
        uint32_t s = pick_slot(rr);
        int k = 0;
        while (k < 4 && up[k] != s)
            k++;
        assert_true(k < 4);
        count[k]++;
    }
    /* Down backends' turns are spread evenly, not to the next survivor in
     * slot order (which would give backend 901 almost nothing): each gets
     * a quarter, binomially; 6 sigma (~433) from 10000 fails with
     * probability below 1e-8. */
    for (int k = 0; k < 4; k++)
        assert_true(fabs(count[k] - 10000.0) < 6 * sqrt(40000 * 0.25 * 0.75));
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_slow_start(void **state)
{
    (void)state;
    enum { N = 8, CYCLES = 40000 };
    lbk_set *set = make_set(N, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = build_seeded(snap, 21);
    /* Scale 0 takes nothing, not even other backends' passed turns. */
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 2), 0.0));
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 3), 0.5));
    for (int t = 0; t < N * 1000; t++)
        assert_int_not_equal(pick_slot(rr), 2);
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 2), 1.0));
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 3), 1.0));
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 5), 0.25));
    uint32_t count[N] = {0};
    for (int t = 0; t < N * CYCLES; t++)
        count[pick_slot(rr)]++;
    /* Backend 5 keeps its turn with probability 1/4, and a passed turn's
     * random probe lands back on it with probability 1/N: per cycle it is
     * picked with p = 1/4 + 3/4 * 1/8 (the other turns never reach it, as
     * everyone else accepts their own).  Binomial, 6 sigma: a false
     * failure has probability below 1e-8. */
    double p = 0.25 + 0.75 / N;
    double mean = CYCLES * p, sd = sqrt(CYCLES * p * (1 - p));
    assert_true(fabs(count[5] - mean) < 6 * sd);
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = make_set(3, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = (lbk_rr *)&rr;
    assert_lbk(lbk_rr_build(NULL, NULL, NULL, &rr), LBK_EINVAL);
    assert_lbk(lbk_rr_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_rr_build(snap, NULL, &half, &rr), LBK_EINVAL);
    assert_ptr_equal(rr, (lbk_rr *)&rr);
    assert_ok(lbk_rr_build(snap, NULL, NULL, &rr));
    lbk_backend *b;
    assert_lbk(lbk_rr_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_rr_pick(rr, NULL), LBK_EINVAL);
    assert_int_equal(lbk_rr_count(NULL), 0);
    assert_int_equal(lbk_rr_footprint(NULL), 0);
    assert_true(lbk_rr_footprint(rr) >= 3 * sizeof(void *));
    lbk_rr_free(NULL);
    lbk_rr_options_init(NULL);
    lbk_rr_free(rr);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set = make_set(100, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_rr *rr = NULL;
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        lbk_rr *out = (lbk_rr *)&out;
        int rc = lbk_rr_build(snap, NULL, &fa.hook, &out);
        if (rc == 0) {
            assert_true(k >= 1); /* at least one site was failed */
            rr = out;
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(atomic_load(&fa.live), 0);
        assert_ptr_equal(out, (lbk_rr *)&out);
    }
    assert_int_equal(pick_slot(rr) < 100, 1);
    lbk_rr_free(rr);
    assert_int_equal(atomic_load(&fa.live), 0);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Back from all down: the hints were emptied by the failed picks, so the
 * first passed turns scan every state and refill them; a backend at weight
 * scale 0 met first in that scan is passed over for a later one at full
 * scale, and never picked. */
static void test_recovery_scan_skips_scale_zero(void **state)
{
    (void)state;
    enum { N = 6 };
    lbk_set *set = make_set(N, NULL, NULL);
    const lbk_snapshot *snap = snap_of(set);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        lbk_rr *rr = build_seeded(snap, seed);
        for (uint32_t i = 0; i < N; i++)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, i),
                                             LBK_HEALTH_DOWN));
        lbk_backend *b = NULL;
        for (int t = 0; t < 3; t++)
            assert_lbk(lbk_rr_pick(rr, &b), LBK_ENOBACKEND);
        assert_null(b);
        for (uint32_t i = 0; i < N; i++) {
            assert_ok(
                lbk_backend_set_health(lbk_set_backend(set, i), LBK_HEALTH_UP));
            assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, i),
                                                   i == N - 1 ? 1.0 : 0.0));
        }
        for (int t = 0; t < 4 * N; t++)
            assert_int_equal(pick_slot(rr), N - 1);
        for (uint32_t i = 0; i < N; i++)
            assert_ok(
                lbk_backend_set_weight_scale(lbk_set_backend(set, i), 1.0));
        lbk_rr_free(rr);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovery_scan_skips_scale_zero),
        cmocka_unit_test(test_exact_rotation),
        cmocka_unit_test(test_random_start),
        cmocka_unit_test(test_weight_zero_and_empty),
        cmocka_unit_test(test_health_flips_next_pick),
        cmocka_unit_test(test_many_down),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
