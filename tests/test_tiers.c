/*
 * tests/test_tiers.c - priority tiers: Envoy's documented priority-load
 * tables, normalisation, spill-over as health changes (no rebuild), the
 * weighted pick within a tier, errors, allocation failure, and picks racing
 * health flips on several threads.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/tiers.h"

static void loads2(uint32_t h0, uint32_t t0, uint32_t h1, uint32_t t1,
                   uint32_t e0, uint32_t e1)
{
    uint32_t h[2] = {h0, h1}, t[2] = {t0, t1}, l[2];
    assert_ok(lbk_tiers_compute_loads(h, t, 2, 140, l));
    if (l[0] != e0 || l[1] != e1)
        fail_msg("healthy %u/%u %u/%u: got %u/%u, want %u/%u", h0, t0, h1, t1,
                 l[0], l[1], e0, e1);
}

static void loads3(uint32_t h0, uint32_t h1, uint32_t h2, uint32_t e0,
                   uint32_t e1, uint32_t e2)
{
    uint32_t h[3] = {h0, h1, h2}, t[3] = {100, 100, 100}, l[3];
    assert_ok(lbk_tiers_compute_loads(h, t, 3, 140, l));
    if (l[0] != e0 || l[1] != e1 || l[2] != e2)
        fail_msg("healthy %u %u %u%%: got %u/%u/%u, want %u/%u/%u", h0, h1, h2,
                 l[0], l[1], l[2], e0, e1, e2);
}

/* Envoy docs, "Priority levels", the three tables (percent healthy of 100
 * backends per level, overprovisioning 1.4). */
static void test_envoy_tables(void **state)
{
    (void)state;
    /* P=1 100% healthy */
    loads2(100, 100, 100, 100, 100, 0);
    loads2(72, 100, 100, 100, 100, 0);
    loads2(71, 100, 100, 100, 99, 1);
    loads2(50, 100, 100, 100, 70, 30);
    loads2(25, 100, 100, 100, 35, 65);
    loads2(0, 100, 100, 100, 0, 100);
    /* both levels degrade */
    loads2(72, 100, 72, 100, 100, 0);
    loads2(71, 100, 71, 100, 99, 1);
    loads2(50, 100, 50, 100, 70, 30);
    loads2(25, 100, 25, 100, 50, 50);
    /* three levels */
    loads3(100, 100, 100, 100, 0, 0);
    loads3(72, 72, 100, 100, 0, 0);
    loads3(71, 71, 100, 99, 1, 0);
    loads3(50, 50, 100, 70, 30, 0);
    loads3(25, 100, 100, 35, 65, 0);
    loads3(25, 25, 100, 35, 35, 30);
    /* health {35, 35, 28}, normalised total 98: the page prints 36/36/28,
     * Envoy's code (distributeLoad, remainder to the first healthy level)
     * gives 37/35/28; lbkit follows the code. */
    loads3(25, 25, 20, 37, 35, 28);
}

/* Normalisation: health scores {20, 30} (total 50) become loads {40, 60}.
 * 1 of 7 healthy -> 140/7 = 20; 3 of 14 -> 420/14 = 30. */
static void test_normalisation(void **state)
{
    (void)state;
    loads2(1, 7, 3, 14, 40, 60);
    /* Envoy's aggregate-cluster example {20,20,10}% healthy -> health
     * {28,28,14}, total 70 -> loads 40/40/20. */
    uint32_t h[3] = {20, 20, 10}, t[3] = {100, 100, 100}, l[3];
    assert_ok(lbk_tiers_compute_loads(h, t, 3, 140, l));
    assert_int_equal(l[0], 40);
    assert_int_equal(l[1], 40);
    assert_int_equal(l[2], 20);
    /* Nothing healthy: 100 to level 0 (Envoy with panic disabled). */
    uint32_t z[3] = {0, 0, 0};
    assert_ok(lbk_tiers_compute_loads(z, t, 3, 140, l));
    assert_int_equal(l[0], 100);
    assert_int_equal(l[1] + l[2], 0);
    /* Empty levels have health 0: an empty P=0 sends all to P=1. */
    uint32_t h2[2] = {0, 3}, t2[2] = {0, 3};
    assert_ok(lbk_tiers_compute_loads(h2, t2, 2, 140, l));
    assert_int_equal(l[0], 0);
    assert_int_equal(l[1], 100);
    /* Overprovisioning 1.0: load = healthy share exactly. */
    uint32_t h3[2] = {80, 100}, t3[2] = {100, 100};
    assert_ok(lbk_tiers_compute_loads(h3, t3, 2, 100, l));
    assert_int_equal(l[0], 80);
    assert_int_equal(l[1], 20);
}

static void test_loads_sum_to_100(void **state)
{
    (void)state;
    uint64_t s = 5;
    for (int it = 0; it < 20000; it++) {
        uint32_t levels = 1 + test_rand(&s) % 6, h[6], t[6], l[6], sum = 0;
        for (uint32_t p = 0; p < levels; p++) {
            t[p] = test_rand(&s) % 30;
            h[p] = t[p] ? test_rand(&s) % (t[p] + 1) : 0;
        }
        uint32_t ov = 100 + test_rand(&s) % 300;
        assert_ok(lbk_tiers_compute_loads(h, t, levels, ov, l));
        for (uint32_t p = 0; p < levels; p++)
            sum += l[p];
        assert_int_equal(sum, 100);
    }
}

static void test_compute_errors(void **state)
{
    (void)state;
    uint32_t h[2] = {1, 1}, t[2] = {1, 1}, l[2] = {7, 7};
    assert_lbk(lbk_tiers_compute_loads(NULL, t, 2, 140, l), LBK_EINVAL);
    assert_lbk(lbk_tiers_compute_loads(h, NULL, 2, 140, l), LBK_EINVAL);
    assert_lbk(lbk_tiers_compute_loads(h, t, 2, 140, NULL), LBK_EINVAL);
    assert_lbk(lbk_tiers_compute_loads(h, t, 0, 140, l), LBK_EINVAL);
    assert_lbk(lbk_tiers_compute_loads(h, t, LBK_TIERS_LEVELS + 1, 140, l),
               LBK_ERANGE);
    assert_lbk(lbk_tiers_compute_loads(h, t, 2, 99, l), LBK_ERANGE);
    assert_lbk(lbk_tiers_compute_loads(h, t, 2, 1001, l), LBK_ERANGE);
    uint32_t bad[2] = {2, 1};
    assert_lbk(lbk_tiers_compute_loads(bad, t, 2, 140, l), LBK_EINVAL);
    assert_int_equal(l[0], 7);
}

/* A set of n0 backends at priority 0 and n1 at priority 1 (weights w). */
static lbk_set *make_set(uint32_t n0, uint32_t n1, uint32_t prio1)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n0 + n1; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "b%u", i);
        assert_ok(lbk_set_add(set, name, 1, NULL, &slot));
        if (i >= n0)
            assert_ok(lbk_set_set_priority(set, slot, prio1));
    }
    assert_ok(lbk_set_publish(set));
    return set;
}

static lbk_tiers *make_tiers(lbk_set *set, uint64_t seed)
{
    const lbk_snapshot *snap;
    assert_ok(lbk_set_acquire(set, &snap));
    lbk_tiers_options o;
    lbk_tiers_options_init(&o);
    o.seed = seed;
    lbk_tiers *t;
    assert_ok(lbk_tiers_build(snap, &o, NULL, &t));
    lbk_snapshot_release(snap);
    return t;
}

static uint32_t tier_of(lbk_backend *b)
{
    return lbk_backend_slot(b) < 10 ? 0 : 1;
}

static void test_spill_over_without_rebuild(void **state)
{
    (void)state;
    lbk_set *set = make_set(10, 10, 1);
    lbk_tiers *t = make_tiers(set, 11);
    uint32_t l[4];
    assert_int_equal(lbk_tiers_load(t, l, 4), 2);
    assert_int_equal(l[0], 100);
    assert_int_equal(l[1], 0);
    assert_int_equal(l[2], 0);
    lbk_backend *b;
    for (int i = 0; i < 2000; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        assert_int_equal(tier_of(b), 0);
    }
    /* 5 of 10 down at P=0: health 70 -> 70% / 30%. */
    for (uint32_t s = 0; s < 5; s++)
        assert_ok(lbk_backend_set_health(lbk_set_backend(set, s),
                                         s % 2 ? LBK_HEALTH_DOWN
                                               : LBK_HEALTH_DRAINING));
    assert_int_equal(lbk_tiers_load(t, l, 2), 2);
    assert_int_equal(l[0], 70);
    assert_int_equal(l[1], 30);
    long obs[2] = {0};
    const long n = 100000;
    for (long i = 0; i < n; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        assert_true(lbk_backend_eligible(b));
        obs[tier_of(b)]++;
    }
    double e0 = 0.7 * n, e1 = 0.3 * n;
    double chi =
        (obs[0] - e0) * (obs[0] - e0) / e0 + (obs[1] - e1) * (obs[1] - e1) / e1;
    assert_true(chi < 24.0); /* df 1, p ~ 1e-6 */
    /* Ejection counts like health. */
    for (uint32_t s = 5; s < 10; s++)
        assert_ok(lbk_backend_set_ejected(lbk_set_backend(set, s), true));
    assert_int_equal(lbk_tiers_load(t, l, 2), 2);
    assert_int_equal(l[0], 0);
    assert_int_equal(l[1], 100);
    for (int i = 0; i < 2000; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        assert_int_equal(tier_of(b), 1);
    }
    /* Everything down: no backend, load reported on level 0. */
    for (uint32_t s = 10; s < 20; s++)
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, s), LBK_HEALTH_DOWN));
    b = NULL;
    assert_lbk(lbk_tiers_pick(t, &b), LBK_ENOBACKEND);
    assert_null(b);
    assert_int_equal(lbk_tiers_load(t, l, 2), 2);
    assert_int_equal(l[0], 100);
    /* Recovery is seen at the next pick. */
    assert_ok(lbk_backend_set_health(lbk_set_backend(set, 3), LBK_HEALTH_UP));
    assert_ok(lbk_tiers_pick(t, &b));
    assert_int_equal(lbk_backend_slot(b), 3);
    lbk_tiers_free(t);
    lbk_set_free(set);
}

static void test_sparse_priorities(void **state)
{
    (void)state;
    lbk_set *set = make_set(10, 10, 5); /* priorities 0 and 5 */
    lbk_tiers *t = make_tiers(set, 3);
    uint32_t l[8];
    assert_int_equal(lbk_tiers_load(t, l, 8), 6);
    assert_int_equal(l[0], 100);
    for (uint32_t s = 0; s < 10; s++)
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, s), LBK_HEALTH_DOWN));
    assert_int_equal(lbk_tiers_load(t, l, 8), 6);
    assert_int_equal(l[0], 0);
    assert_int_equal(l[5], 100);
    lbk_backend *b;
    for (int i = 0; i < 500; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        assert_true(lbk_backend_slot(b) >= 10);
    }
    lbk_tiers_free(t);
    lbk_set_free(set);
}

static void test_weighted_within_tier(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    const uint32_t w[5] = {1, 2, 3, 0, 4};
    for (uint32_t i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "w%u", i);
        assert_ok(lbk_set_add(set, name, w[i], NULL, &slot));
    }
    assert_ok(lbk_set_publish(set));
    lbk_tiers *t = make_tiers(set, 99);
    long obs[5] = {0};
    const long n = 100000;
    lbk_backend *b;
    for (long i = 0; i < n; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        obs[lbk_backend_slot(b)]++;
    }
    assert_int_equal(obs[3], 0); /* weight 0 takes no traffic */
    double chi = 0;
    for (int i = 0; i < 5; i++) {
        if (w[i] == 0)
            continue;
        double e = n * w[i] / 10.0;
        chi += (obs[i] - e) * (obs[i] - e) / e;
    }
    assert_true(chi < chi2_critical_1e6(3));
    /* Weight scale 0 (slow start just began) removes one from the draw. */
    assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, 4), 0.0));
    for (int i = 0; i < 3000; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        assert_int_not_equal(lbk_backend_slot(b), 4);
    }
    /* The picker keeps its snapshot: it outlives the set's owner. */
    lbk_set_free(set);
    assert_ok(lbk_tiers_pick(t, &b));
    assert_non_null(lbk_backend_name(b));
    lbk_tiers_free(t);
}

static void test_errors_and_defaults(void **state)
{
    (void)state;
    lbk_tiers_options o;
    lbk_tiers_options_init(&o);
    assert_int_equal(o.overprovisioning_percent, 140);
    lbk_tiers_options_init(NULL);
    lbk_set *set = make_set(2, 0, 0);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_acquire(set, &snap));
    lbk_tiers *t = (lbk_tiers *)0x1;
    assert_lbk(lbk_tiers_build(NULL, NULL, NULL, &t), LBK_EINVAL);
    assert_lbk(lbk_tiers_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_tiers_build(snap, NULL, &half, &t), LBK_EINVAL);
    o.overprovisioning_percent = 50;
    assert_lbk(lbk_tiers_build(snap, &o, NULL, &t), LBK_ERANGE);
    assert_ptr_equal(t, (lbk_tiers *)0x1);
    assert_ok(lbk_tiers_build(snap, NULL, NULL, &t));
    lbk_backend *b;
    assert_lbk(lbk_tiers_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_tiers_pick(t, NULL), LBK_EINVAL);
    assert_lbk(lbk_tiers_load(NULL, NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_tiers_load(t, NULL, 1), LBK_EINVAL);
    assert_int_equal(lbk_tiers_load(t, NULL, 0), 1);
    assert_lbk(lbk_tiers_retain(NULL), LBK_EINVAL);
    assert_ok(lbk_tiers_retain(t));
    lbk_tiers_free(t);
    assert_ok(lbk_tiers_pick(t, &b)); /* still one reference */
    lbk_tiers_free(t);
    lbk_tiers_free(NULL);
    lbk_snapshot_release(snap);
    /* An empty snapshot: no backend. */
    lbk_set *empty;
    assert_ok(lbk_set_create(NULL, &empty));
    assert_ok(lbk_set_acquire(empty, &snap));
    assert_ok(lbk_tiers_build(snap, NULL, NULL, &t));
    assert_lbk(lbk_tiers_pick(t, &b), LBK_ENOBACKEND);
    uint32_t l[1];
    assert_int_equal(lbk_tiers_load(t, l, 1), 1);
    assert_int_equal(l[0], 100);
    lbk_tiers_free(t);
    lbk_snapshot_release(snap);
    lbk_set_free(empty);
    lbk_set_free(set);
}

static void test_oom(void **state)
{
    (void)state;
    lbk_set *set = make_set(5, 5, 1);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_acquire(set, &snap));
    fail_alloc fa;
    fail_alloc_init(&fa);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        lbk_tiers *t = NULL;
        int rc = lbk_tiers_build(snap, NULL, &fa.hook, &t);
        if (rc == 0) {
            assert_true(k >= 1);
            lbk_backend *b;
            assert_ok(lbk_tiers_pick(t, &b));
            lbk_tiers_free(t);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(t);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(fa.live, 0);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

struct race {
    lbk_tiers *t;
    lbk_set *set;
    _Atomic int stop;
    _Atomic long picks, bad;
};

static void *picker_thread(void *p)
{
    struct race *r = p;
    while (!atomic_load(&r->stop)) {
        lbk_backend *b;
        int rc = lbk_tiers_pick(r->t, &b);
        if (rc == 0)
            atomic_fetch_add(&r->picks, 1);
        else if (rc != LBK_ENOBACKEND)
            atomic_fetch_add(&r->bad, 1);
    }
    return NULL;
}

/* Picks on three threads while the main thread flips health: no crash, no
 * error other than "no backend", and (under TSan) no data race. */
static void test_concurrent_picks(void **state)
{
    (void)state;
    lbk_set *set = make_set(8, 8, 1);
    struct race r = {make_tiers(set, 1), set, 0, 0, 0};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, picker_thread, &r), 0);
    uint64_t s = 1;
    /* at least 20000 flips, and go on until the pickers have run a while
     * (on a loaded machine they may start late) */
    for (long i = 0; i < 20000 || atomic_load(&r.picks) < 5000; i++) {
        uint32_t slot = test_rand(&s) % 16;
        lbk_backend_set_health(lbk_set_backend(set, slot),
                               (lbk_health)(test_rand(&s) % 3));
        if (i % 64 == 0) /* keep some backends up */
            lbk_backend_set_health(lbk_set_backend(set, slot), LBK_HEALTH_UP);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(r.bad, 0);
    assert_true(r.picks > 0);
    lbk_tiers_free(r.t);
    lbk_set_free(set);
}

/* Every backend of the tier at weight scale 0 (all in slow start, just
 * begun): the tier still serves, uniformly over its eligible backends,
 * whatever their weights. */
static void test_all_scales_zero_is_uniform(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    const uint32_t w[3] = {1, 5, 20};
    for (uint32_t i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "z%u", i);
        assert_ok(lbk_set_add(set, name, w[i], NULL, &slot));
    }
    assert_ok(lbk_set_publish(set));
    for (uint32_t i = 0; i < 3; i++)
        assert_ok(lbk_backend_set_weight_scale(lbk_set_backend(set, i), 0.0));
    lbk_tiers *t = make_tiers(set, 7);
    long obs[3] = {0};
    const long n = 30000;
    lbk_backend *b;
    for (long i = 0; i < n; i++) {
        assert_ok(lbk_tiers_pick(t, &b));
        obs[lbk_backend_slot(b)]++;
    }
    double chi = 0, e = n / 3.0;
    for (int i = 0; i < 3; i++)
        chi += (obs[i] - e) * (obs[i] - e) / e;
    /* df = 2 is below the approximation's range: use df = 3's bound,
     * which is larger, so the test only gets more lenient */
    assert_true(chi < chi2_critical_1e6(3));
    lbk_tiers_free(t);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_scales_zero_is_uniform),
        cmocka_unit_test(test_envoy_tables),
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_loads_sum_to_100),
        cmocka_unit_test(test_compute_errors),
        cmocka_unit_test(test_spill_over_without_rebuild),
        cmocka_unit_test(test_sparse_priorities),
        cmocka_unit_test(test_weighted_within_tier),
        cmocka_unit_test(test_errors_and_defaults),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_concurrent_picks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
