/*
 * tests/test_jump.c - jump consistent hash: published answers, an
 * independent re-implementation, the n -> n + 1 property, balance, and the
 * wrapper over a backend set (slots as buckets, holes, health, weight 0).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/jump.h"

/* ---- helpers ---------------------------------------------------------- */

static lbk_set *make_set(uint32_t n, const uint32_t *weights)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%u", i);
        uint32_t slot;
        assert_ok(
            lbk_set_add(set, name, weights ? weights[i] : 1, NULL, &slot));
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

static lbk_jump *build(const lbk_snapshot *snap, uint64_t seed)
{
    lbk_jump_options o;
    lbk_jump_options_init(&o);
    assert_int_equal(o.seed, 0);
    o.seed = seed;
    lbk_jump *j;
    assert_ok(lbk_jump_build(snap, &o, NULL, &j));
    return j;
}

static uint32_t jh(uint64_t key, uint32_t n)
{
    uint32_t b = UINT32_MAX;
    assert_ok(lbk_jump_hash(key, n, &b));
    assert_true(b < n);
    return b;
}

/*
 * The test's own reading of the paper's pseudo-code ("Figure 1"): the key
 * drives a 64-bit LCG; each step draws r = (top 31 bits + 1) / 2^31 and the
 * next candidate bucket is floor((b + 1) / r), computed as the paper does,
 * (b + 1) * (2^31 / (top + 1)) in double.
 */
static uint32_t reference_jump(uint64_t key, uint32_t n)
{
    double b = -1, j = 0;
    const double two31 = 2147483648.0;
    while (j < (double)n) {
        b = j;
        key = key * 2862933555777941757ull + 1;
        double top = (double)(key >> 33);
        j = floor((b + 1) * (two31 / (top + 1)));
    }
    return (uint32_t)b;
}

/* ---- the pure function ------------------------------------------------ */

/* Published answers: the paper's function as tested by ClickHouse
 * (tests/queries/0_stateless/00580_consistent_hashing_functions: .sql with
 * its .reference) and by the Go port dgryski/go-jump. */
static void test_known_answers(void **state)
{
    (void)state;
    assert_int_equal(jh(1, 1), 0);
    assert_int_equal(jh(42, 57), 43);
    assert_int_equal(jh(256, 1024), 520);
    assert_int_equal(jh(3735883980u, 1), 0);
    assert_int_equal(jh(3735883980u, 666), 361);
    assert_int_equal(jh(UINT64_C(16045690984833335023), 255), 237);
}

static void test_matches_reference(void **state)
{
    (void)state;
    uint64_t rs = 1;
    for (int i = 0; i < 200000; i++) {
        uint64_t key = test_rand(&rs);
        uint32_t n =
            1 + (uint32_t)(test_rand(&rs) % (i % 3 == 0 ? 10 : 100000));
        if (jh(key, n) != reference_jump(key, n))
            fail_msg("key %llu n %u: %u vs reference %u",
                     (unsigned long long)key, n, jh(key, n),
                     reference_jump(key, n));
    }
    assert_int_equal(jh(12345, LBK_JUMP_MAX_BUCKETS),
                     reference_jump(12345, LBK_JUMP_MAX_BUCKETS));
}

/* n -> n + 1 moves exactly the keys that land in bucket n, about 1/(n + 1)
 * of them: with K keys the count is Binomial(K, 1/(n + 1)); allow 5 sigma. */
static void test_growth_moves_only_to_new_bucket(void **state)
{
    (void)state;
    static const uint32_t ns[] = {1, 2, 7, 10, 63, 100, 1000};
    const uint32_t keys = 100000;
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        uint32_t n = ns[t], moved = 0;
        uint64_t rs = n;
        for (uint32_t i = 0; i < keys; i++) {
            uint64_t k = test_rand(&rs);
            uint32_t a = jh(k, n), b = jh(k, n + 1);
            if (a != b) {
                assert_int_equal(b, n);
                moved++;
            }
        }
        double p = 1.0 / (n + 1), mean = keys * p;
        double sigma = sqrt(keys * p * (1 - p));
        if (fabs(moved - mean) > 5 * sigma)
            fail_msg("n=%u: %u moved, expected %.0f +- %.0f", n, moved, mean,
                     5 * sigma);
    }
}

static void test_balance_chi2(void **state)
{
    (void)state;
    const uint32_t n = 37, keys = 370000;
    uint32_t c[37] = {0};
    uint64_t rs = 99;
    for (uint32_t i = 0; i < keys; i++)
        c[jh(test_rand(&rs), n)]++;
    double exp = (double)keys / n, chi2 = 0;
    for (uint32_t b = 0; b < n; b++)
        chi2 += (c[b] - exp) * (c[b] - exp) / exp;
    assert_true(chi2 < chi2_critical_1e6(n - 1));
}

static void test_hash_bad_input(void **state)
{
    (void)state;
    uint32_t b = 77;
    assert_lbk(lbk_jump_hash(1, 0, &b), LBK_EINVAL);
    assert_lbk(lbk_jump_hash(1, 10, NULL), LBK_EINVAL);
    assert_lbk(lbk_jump_hash(1, LBK_JUMP_MAX_BUCKETS + 1u, &b), LBK_ERANGE);
    assert_lbk(lbk_jump_hash(1, UINT32_MAX, &b), LBK_ERANGE);
    assert_int_equal(b, 77);
}

/* ---- the wrapper ------------------------------------------------------ */

static void test_wrapper_maps_slots(void **state)
{
    (void)state;
    lbk_set *set = make_set(10, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_jump *j = build(snap, 4);
    assert_int_equal(lbk_jump_buckets(j), 10);
    assert_int_equal(lbk_jump_buckets(NULL), 0);
    for (int i = 0; i < 10000; i++) {
        char k[32];
        snprintf(k, sizeof k, "user:%d", i);
        lbk_backend *b, *b2;
        assert_ok(lbk_jump_lookup(j, k, strlen(k), &b));
        uint64_t h = lbk_hash(k, strlen(k), 4);
        assert_int_equal(lbk_backend_slot(b), jh(h, 10));
        assert_ok(lbk_jump_lookup_hash(j, h, &b2));
        assert_ptr_equal(b, b2);
    }
    lbk_backend *b1, *b2;
    assert_ok(lbk_jump_lookup(j, NULL, 0, &b1));
    assert_ok(lbk_jump_lookup(j, "", 0, &b2));
    assert_ptr_equal(b1, b2);
    lbk_jump_free(j);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Removing the last slot shrinks n: only its keys move.  Removing a middle
 * slot leaves a hole: only its keys move, and a backend added later reuses
 * the slot and gets exactly those keys back. */
static void test_wrapper_membership(void **state)
{
    (void)state;
    const uint32_t n = 20, keys = 40000;
    lbk_set *set = make_set(n, NULL);
    const lbk_snapshot *s0 = snap_of(set);
    lbk_jump *j0 = build(s0, 0);
    uint32_t *home = malloc(keys * sizeof(*home));
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_jump_lookup_hash(j0, lbk_mix64(i), &b));
        home[i] = lbk_backend_slot(b);
    }
    assert_ok(lbk_set_remove(set, n - 1));
    assert_ok(lbk_set_remove(set, 5));
    const lbk_snapshot *s1 = snap_of(set);
    lbk_jump *j1 = build(s1, 0);
    assert_int_equal(lbk_jump_buckets(j1), n - 1);
    uint32_t moved = 0;
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_jump_lookup_hash(j1, lbk_mix64(i), &b));
        uint32_t s = lbk_backend_slot(b);
        assert_true(s != 5 && s != n - 1);
        if (home[i] != 5 && home[i] != n - 1)
            assert_int_equal(s, home[i]);
        else
            moved++;
    }
    double p = 2.0 / n;
    assert_true(fabs(moved - keys * p) < 5 * sqrt(keys * p * (1 - p)));
    /* Release every snapshot listing slot 5, then add: the slot is reused. */
    lbk_jump_free(j0);
    lbk_jump_free(j1);
    lbk_snapshot_release(s0);
    lbk_snapshot_release(s1);
    uint32_t slot;
    assert_ok(lbk_set_add(set, "replacement", 1, NULL, &slot));
    assert_int_equal(slot, 5);
    const lbk_snapshot *s2 = snap_of(set);
    lbk_jump *j2 = build(s2, 0);
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_jump_lookup_hash(j2, lbk_mix64(i), &b));
        if (home[i] != n - 1)
            assert_int_equal(lbk_backend_slot(b), home[i]);
    }
    free(home);
    lbk_jump_free(j2);
    lbk_snapshot_release(s2);
    lbk_set_free(set);
}

static void test_wrapper_health(void **state)
{
    (void)state;
    const uint32_t n = 12, keys = 24000;
    uint32_t w[12] = {1, 1, 1, 5, 1, 1, 0, 1, 1, 1, 1, 1};
    lbk_set *set = make_set(n, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_jump *j = build(snap, 8), *twin = build(snap, 8);
    lbk_backend **home = malloc(keys * sizeof(*home));
    lbk_backend **away = malloc(keys * sizeof(*away));
    uint32_t per[12] = {0};
    for (uint32_t i = 0; i < keys; i++) {
        assert_ok(lbk_jump_lookup_hash(j, lbk_mix64(i), &home[i]));
        per[lbk_backend_slot(home[i])]++;
    }
    assert_int_equal(per[6], 0); /* weight 0 takes no keys */
    /* weight 5 counts as 1: slot 3 gets about 1/12 */
    assert_true(per[3] < 2 * keys / n);
    lbk_backend *down = lbk_snapshot_backend(snap, 2);
    assert_ok(lbk_backend_set_health(down, LBK_HEALTH_DOWN));
    uint32_t spread[12] = {0};
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b, *t;
        assert_ok(lbk_jump_lookup_hash(j, lbk_mix64(i), &b));
        assert_ok(lbk_jump_lookup_hash(twin, lbk_mix64(i), &t));
        assert_ptr_equal(b, t);
        assert_ptr_not_equal(b, down);
        assert_int_not_equal(lbk_backend_slot(b), 6);
        if (home[i] != down)
            assert_ptr_equal(b, home[i]);
        else
            spread[lbk_backend_slot(b)]++;
        away[i] = b;
    }
    uint32_t receivers = 0;
    for (int s = 0; s < 12; s++)
        receivers += spread[s] > 0;
    assert_true(receivers >= 9);
    assert_ok(lbk_backend_set_health(down, LBK_HEALTH_UP));
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_jump_lookup_hash(j, lbk_mix64(i), &b));
        assert_ptr_equal(b, home[i]);
    }
    /* All but one down: the scan finds it.  All down: LBK_ENOBACKEND. */
    for (uint32_t s = 0; s < n; s++)
        if (s != 11)
            assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, s),
                                             LBK_HEALTH_DOWN));
    for (uint32_t i = 0; i < 2000; i++) {
        lbk_backend *b;
        assert_ok(lbk_jump_lookup_hash(j, lbk_mix64(i), &b));
        assert_int_equal(lbk_backend_slot(b), 11);
    }
    assert_ok(lbk_backend_set_ejected(lbk_snapshot_backend(snap, 11), true));
    assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, 6),
                                     LBK_HEALTH_UP)); /* weight 0: no help */
    lbk_backend *bs = (lbk_backend *)&bs, *b = bs;
    assert_lbk(lbk_jump_lookup(j, "k", 1, &b), LBK_ENOBACKEND);
    assert_ptr_equal(b, bs);
    free(home);
    free(away);
    lbk_jump_free(j);
    lbk_jump_free(twin);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_wrapper_bad_input(void **state)
{
    (void)state;
    lbk_set *empty = make_set(0, NULL);
    const lbk_snapshot *snap = snap_of(empty);
    lbk_jump *js = (lbk_jump *)&js, *j = js;
    assert_lbk(lbk_jump_build(NULL, NULL, NULL, &j), LBK_EINVAL);
    assert_lbk(lbk_jump_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_allocator half = {fa.hook.alloc, NULL, NULL};
    assert_lbk(lbk_jump_build(snap, NULL, &half, &j), LBK_EINVAL);
    assert_ptr_equal(j, js);
    assert_ok(lbk_jump_build(snap, NULL, NULL, &j)); /* empty: builds */
    assert_int_equal(lbk_jump_buckets(j), 0);
    lbk_backend *bs = (lbk_backend *)&bs, *b = bs;
    assert_lbk(lbk_jump_lookup(j, "k", 1, &b), LBK_ENOBACKEND);
    assert_lbk(lbk_jump_lookup(j, NULL, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_jump_lookup(NULL, "k", 1, &b), LBK_EINVAL);
    assert_lbk(lbk_jump_lookup(j, "k", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_jump_lookup_hash(NULL, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_jump_lookup_hash(j, 1, NULL), LBK_EINVAL);
    assert_ptr_equal(b, bs);
    lbk_jump_free(j);
    lbk_jump_free(NULL);
    lbk_jump_options_init(NULL);
    lbk_snapshot_release(snap);
    lbk_set_free(empty);
    /* All weights 0. */
    uint32_t w[3] = {0, 0, 0};
    lbk_set *zero = make_set(3, w);
    snap = snap_of(zero);
    assert_ok(lbk_jump_build(snap, NULL, NULL, &j));
    assert_lbk(lbk_jump_lookup(j, "k", 1, &b), LBK_ENOBACKEND);
    lbk_jump_free(j);
    lbk_snapshot_release(snap);
    lbk_set_free(zero);
}

static void test_wrapper_alloc_failure(void **state)
{
    (void)state;
    lbk_set *set = make_set(5, NULL);
    const lbk_snapshot *snap = snap_of(set);
    fail_alloc fa;
    fail_alloc_init(&fa);
    int sites = 0;
    lbk_jump *js = (lbk_jump *)&js;
    for (long k = 0;; k++) {
        lbk_jump *j = js;
        fail_alloc_reset(&fa, k);
        int rc = lbk_jump_build(snap, NULL, &fa.hook, &j);
        if (rc == 0) {
            lbk_backend *b;
            assert_ok(lbk_jump_lookup(j, "k", 1, &b));
            lbk_jump_free(j);
            assert_int_equal(fa.live, 0);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(fa.live, 0);
        assert_ptr_equal(j, js);
        sites++;
    }
    assert_int_equal(sites, 1);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

struct reader_arg {
    lbk_jump *j;
    _Atomic int stop;
    _Atomic int errors;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    uint64_t k = 0;
    while (!atomic_load(&a->stop) || k < 1000) {
        lbk_backend *b;
        if (lbk_jump_lookup_hash(a->j, lbk_mix64(k++), &b) != 0)
            atomic_fetch_add(&a->errors, 1);
    }
    return NULL;
}

static void test_threads_with_health_flips(void **state)
{
    (void)state;
    lbk_set *set = make_set(8, NULL);
    const lbk_snapshot *snap = snap_of(set);
    struct reader_arg a = {.j = build(snap, 1)};
    atomic_init(&a.stop, 0);
    atomic_init(&a.errors, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &a), 0);
    for (int r = 0; r < 2000; r++)
        assert_ok(
            lbk_backend_set_health(lbk_snapshot_backend(snap, r % 7),
                                   (r & 1) ? LBK_HEALTH_UP : LBK_HEALTH_DOWN));
    atomic_store(&a.stop, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&a.errors), 0);
    lbk_jump_free(a.j);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_growth_moves_only_to_new_bucket),
        cmocka_unit_test(test_balance_chi2),
        cmocka_unit_test(test_hash_bad_input),
        cmocka_unit_test(test_wrapper_maps_slots),
        cmocka_unit_test(test_wrapper_membership),
        cmocka_unit_test(test_wrapper_health),
        cmocka_unit_test(test_wrapper_bad_input),
        cmocka_unit_test(test_wrapper_alloc_failure),
        cmocka_unit_test(test_threads_with_health_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
