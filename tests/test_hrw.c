/*
 * tests/test_hrw.c - weighted rendezvous hashing: the documented score
 * recomputed independently, exact monotonicity, weighted shares by
 * chi-square, top-k, health and weight-scale fallbacks, bad input,
 * allocation failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/hrw.h"

/* ---- helpers ---------------------------------------------------------- */

static lbk_set *make_set(uint32_t n, const uint32_t *weights)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "cache-%u.example:11211", i);
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

static lbk_hrw *build(const lbk_snapshot *snap, uint64_t seed)
{
    lbk_hrw_options o;
    lbk_hrw_options_init(&o);
    assert_int_equal(o.seed, 0);
    o.seed = seed;
    lbk_hrw *h;
    assert_ok(lbk_hrw_build(snap, &o, NULL, &h));
    return h;
}

static uint32_t slot_for(const lbk_hrw *h, uint64_t hash)
{
    lbk_backend *b;
    assert_ok(lbk_hrw_lookup_hash(h, hash, &b));
    return lbk_backend_slot(b);
}

/* The header's definition, in long double: argmax of w / -ln(u) over the
 * eligible backends of non-zero weight, u from mix64(key hash ^ name hash). */
static uint32_t reference_pick(const lbk_snapshot *snap, uint64_t seed,
                               uint64_t hash)
{
    long double best = -1;
    uint32_t arg = UINT32_MAX;
    for (uint32_t i = 0; i < lbk_snapshot_count(snap); i++) {
        lbk_backend *b = lbk_snapshot_backend(snap, i);
        long double w = (long double)lbk_snapshot_weight(snap, i) *
                        lbk_backend_weight_scale(b);
        if (w == 0 || !lbk_backend_eligible(b))
            continue;
        uint64_t nh = lbk_hash_str(lbk_backend_name(b), seed);
        uint64_t x = lbk_mix64(hash ^ nh);
        long double u = ((long double)(x >> 12) + 0.5L) / 4503599627370496.0L;
        long double s = w / -logl(u);
        if (s > best) {
            best = s;
            arg = i;
        }
    }
    return arg;
}

/* ---- the score -------------------------------------------------------- */

static void test_matches_reference_score(void **state)
{
    (void)state;
    uint32_t w[9] = {1, 2, 3, 5, 8, 13, 21, 34, 55};
    lbk_set *weighted = make_set(9, w), *plain = make_set(9, NULL);
    lbk_set *sets[2] = {weighted, plain};
    for (int s = 0; s < 2; s++) {
        const lbk_snapshot *snap = snap_of(sets[s]);
        lbk_hrw *h = build(snap, 1234);
        for (int i = 0; i < 50000; i++) {
            char k[32];
            snprintf(k, sizeof k, "object/%d", i);
            uint64_t kh = lbk_hash(k, strlen(k), 1234);
            lbk_backend *b;
            assert_ok(lbk_hrw_lookup(h, k, strlen(k), &b));
            assert_int_equal(lbk_backend_slot(b),
                             reference_pick(snap, 1234, kh));
        }
        lbk_hrw_free(h);
        lbk_snapshot_release(snap);
        lbk_set_free(sets[s]);
    }
}

/* Weighted shares match w_i / W (chi-square at 1e-6). */
static void test_weighted_shares_chi2(void **state)
{
    (void)state;
    uint32_t w[8] = {1, 2, 3, 4, 5, 6, 7, 100};
    lbk_set *set = make_set(8, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_hrw *h = build(snap, 77);
    const uint32_t keys = 400000;
    uint64_t c[8] = {0}, rs = 5;
    for (uint32_t i = 0; i < keys; i++)
        c[slot_for(h, test_rand(&rs))]++;
    double total = 128, chi2 = 0;
    for (int i = 0; i < 8; i++) {
        double exp = keys * w[i] / total;
        chi2 += (c[i] - exp) * (c[i] - exp) / exp;
    }
    assert_true(chi2 < chi2_critical_1e6(7));
    lbk_hrw_free(h);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Removing a backend moves only its keys, each to its old second choice;
 * adding one moves keys only to it. */
static void test_monotonicity(void **state)
{
    (void)state;
    uint32_t w[12] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    const uint32_t keys = 30000;
    lbk_set *set = make_set(12, w);
    const lbk_snapshot *s0 = snap_of(set);
    lbk_hrw *h0 = build(s0, 3);
    assert_ok(lbk_set_remove(set, 5));
    const lbk_snapshot *s1 = snap_of(set);
    lbk_hrw *h1 = build(s1, 3);
    uint32_t slot;
    assert_ok(lbk_set_add(set, "newcomer", 7, NULL, &slot));
    const lbk_snapshot *s2 = snap_of(set);
    lbk_hrw *h2 = build(s2, 3);
    uint32_t moved = 0, gained = 0;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t kh = lbk_mix64(i);
        lbk_backend *top[2];
        uint32_t cnt;
        assert_ok(lbk_hrw_lookup_top_hash(h0, kh, 2, top, &cnt));
        assert_int_equal(cnt, 2);
        uint32_t a = lbk_backend_slot(top[0]), b = slot_for(h1, kh),
                 c = slot_for(h2, kh);
        if (a == 5) {
            assert_int_equal(b, lbk_backend_slot(top[1]));
            moved++;
        } else {
            assert_int_equal(b, a);
        }
        if (c != b) {
            assert_int_equal(c, slot);
            gained++;
        }
    }
    /* Binomial tolerance, 5 sigma: backend 5 has 9/52 of the weight, the
     * newcomer 7/50 after it. */
    double p = 9.0 / 52, q = 7.0 / 50;
    assert_true(fabs(moved - keys * p) < 5 * sqrt(keys * p * (1 - p)));
    assert_true(fabs(gained - keys * q) < 5 * sqrt(keys * q * (1 - q)));
    lbk_hrw_free(h0);
    lbk_hrw_free(h1);
    lbk_hrw_free(h2);
    lbk_snapshot_release(s0);
    lbk_snapshot_release(s1);
    lbk_snapshot_release(s2);
    lbk_set_free(set);
}

/* ---- top-k ------------------------------------------------------------ */

static void test_top_k(void **state)
{
    (void)state;
    lbk_set *set = make_set(10, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_hrw *h = build(snap, 0);
    for (int i = 0; i < 2000; i++) {
        char k[32];
        snprintf(k, sizeof k, "blob-%d", i);
        lbk_backend *top[12], *one;
        uint32_t cnt = 0;
        assert_ok(lbk_hrw_lookup_top(h, k, strlen(k), 3, top, &cnt));
        assert_int_equal(cnt, 3);
        assert_ok(lbk_hrw_lookup(h, k, strlen(k), &one));
        assert_ptr_equal(top[0], one);
        assert_ptr_not_equal(top[0], top[1]);
        assert_ptr_not_equal(top[0], top[2]);
        assert_ptr_not_equal(top[1], top[2]);
        /* A longer list extends the shorter one. */
        lbk_backend *all[12];
        assert_ok(lbk_hrw_lookup_top(h, k, strlen(k), 12, all, &cnt));
        assert_int_equal(cnt, 10);
        assert_memory_equal(all, top, 3 * sizeof(top[0]));
        /* Down the first replica: the rest shift up, the 4th joins. */
        assert_ok(lbk_backend_set_health(top[0], LBK_HEALTH_DOWN));
        lbk_backend *after[3];
        assert_ok(lbk_hrw_lookup_top(h, k, strlen(k), 3, after, &cnt));
        assert_int_equal(cnt, 3);
        assert_ptr_equal(after[0], all[1]);
        assert_ptr_equal(after[1], all[2]);
        assert_ptr_equal(after[2], all[3]);
        assert_ok(lbk_hrw_lookup(h, k, strlen(k), &one));
        assert_ptr_equal(one, all[1]); /* the next-best score */
        assert_ok(lbk_backend_set_health(top[0], LBK_HEALTH_UP));
        assert_ok(lbk_hrw_lookup(h, k, strlen(k), &one));
        assert_ptr_equal(one, all[0]); /* home again */
    }
    lbk_hrw_free(h);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- health and weight scale ------------------------------------------ */

static void test_health_and_scale(void **state)
{
    (void)state;
    uint32_t w[6] = {1, 1, 1, 1, 1, 1};
    const uint32_t keys = 60000;
    lbk_set *set = make_set(6, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_hrw *h = build(snap, 9);
    uint32_t *home = malloc(keys * sizeof(*home));
    for (uint32_t i = 0; i < keys; i++)
        home[i] = slot_for(h, lbk_mix64(i));
    /* Halving one backend's scale moves keys only away from it, and its
     * share becomes 0.5 / 5.5 (chi-square over all six). */
    lbk_backend *b2 = lbk_snapshot_backend(snap, 2);
    assert_ok(lbk_backend_set_weight_scale(b2, 0.5));
    uint64_t c[6] = {0};
    for (uint32_t i = 0; i < keys; i++) {
        uint32_t s = slot_for(h, lbk_mix64(i));
        assert_int_equal(s, reference_pick(snap, 9, lbk_mix64(i)));
        if (s != home[i])
            assert_int_equal(home[i], 2);
        c[s]++;
    }
    double chi2 = 0;
    for (int i = 0; i < 6; i++) {
        double exp = keys * (i == 2 ? 0.5 : 1.0) / 5.5;
        chi2 += (c[i] - exp) * (c[i] - exp) / exp;
    }
    assert_true(chi2 < chi2_critical_1e6(5));
    /* Scale 0 takes no keys; back to 1, every key is home. */
    assert_ok(lbk_backend_set_weight_scale(b2, 0.0));
    for (uint32_t i = 0; i < keys; i++)
        assert_int_not_equal(slot_for(h, lbk_mix64(i)), 2);
    assert_ok(lbk_backend_set_weight_scale(b2, 1.0));
    for (uint32_t i = 0; i < keys; i++)
        assert_int_equal(slot_for(h, lbk_mix64(i)), home[i]);
    /* Down and ejected fall back to the next-best, deterministically. */
    lbk_backend *b4 = lbk_snapshot_backend(snap, 4);
    assert_ok(lbk_backend_set_ejected(b4, true));
    lbk_hrw *twin = build(snap, 9);
    for (uint32_t i = 0; i < keys; i++) {
        uint32_t s = slot_for(h, lbk_mix64(i));
        assert_int_equal(s, slot_for(twin, lbk_mix64(i)));
        assert_int_not_equal(s, 4);
        if (home[i] != 4)
            assert_int_equal(s, home[i]);
    }
    assert_ok(lbk_backend_set_ejected(b4, false));
    for (uint32_t i = 0; i < keys; i++)
        assert_int_equal(slot_for(h, lbk_mix64(i)), home[i]);
    /* Nothing eligible. */
    for (uint32_t i = 0; i < 6; i++)
        assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                         LBK_HEALTH_DOWN));
    lbk_backend *bs = (lbk_backend *)&bs, *b = bs;
    assert_lbk(lbk_hrw_lookup(h, "k", 1, &b), LBK_ENOBACKEND);
    lbk_backend *top[2] = {bs, bs};
    uint32_t cnt = 99;
    assert_lbk(lbk_hrw_lookup_top(h, "k", 1, 2, top, &cnt), LBK_ENOBACKEND);
    assert_ptr_equal(b, bs);
    assert_ptr_equal(top[0], bs);
    assert_int_equal(cnt, 99);
    free(home);
    lbk_hrw_free(h);
    lbk_hrw_free(twin);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- bad input and allocation failure --------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = make_set(4, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_hrw *hs = (lbk_hrw *)&hs, *h = hs;
    assert_lbk(lbk_hrw_build(NULL, NULL, NULL, &h), LBK_EINVAL);
    assert_lbk(lbk_hrw_build(snap, NULL, NULL, NULL), LBK_EINVAL);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_allocator half = {NULL, fa.hook.free, NULL};
    assert_lbk(lbk_hrw_build(snap, NULL, &half, &h), LBK_EINVAL);
    assert_ptr_equal(h, hs);
    assert_ok(lbk_hrw_build(snap, NULL, NULL, &h));
    lbk_backend *bs = (lbk_backend *)&bs, *b = bs, *top[65];
    uint32_t cnt = 99;
    assert_lbk(lbk_hrw_lookup(h, NULL, 2, &b), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup(NULL, "k", 1, &b), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup(h, "k", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_hash(NULL, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_hash(h, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(h, NULL, 1, 2, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(h, "k", 1, 0, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(h, "k", 1, 2, NULL, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(h, "k", 1, 2, top, NULL), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(NULL, "k", 1, 2, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top(h, "k", 1, LBK_HRW_TOP_MAX + 1, top, &cnt),
               LBK_ERANGE);
    assert_lbk(lbk_hrw_lookup_top_hash(h, 1, 0, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top_hash(NULL, 1, 2, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top_hash(h, 1, 2, NULL, &cnt), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top_hash(h, 1, 2, top, NULL), LBK_EINVAL);
    assert_lbk(lbk_hrw_lookup_top_hash(h, 1, LBK_HRW_TOP_MAX + 1, top, &cnt),
               LBK_ERANGE);
    assert_int_equal(cnt, 99);
    assert_ptr_equal(b, bs);
    assert_ok(lbk_hrw_lookup(h, NULL, 0, &b));
    lbk_hrw_free(h);
    lbk_hrw_free(NULL);
    lbk_hrw_options_init(NULL);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    /* Empty set, all weights 0: builds, lookups say LBK_ENOBACKEND. */
    uint32_t w[2] = {0, 0};
    lbk_set *sets[2] = {make_set(0, NULL), make_set(2, w)};
    for (int s = 0; s < 2; s++) {
        snap = snap_of(sets[s]);
        assert_ok(lbk_hrw_build(snap, NULL, NULL, &h));
        assert_lbk(lbk_hrw_lookup(h, "k", 1, &b), LBK_ENOBACKEND);
        assert_lbk(lbk_hrw_lookup_top(h, "k", 1, 3, top, &cnt), LBK_ENOBACKEND);
        lbk_hrw_free(h);
        lbk_snapshot_release(snap);
        lbk_set_free(sets[s]);
    }
}

static void test_alloc_failure(void **state)
{
    (void)state;
    lbk_set *set = make_set(7, NULL);
    const lbk_snapshot *snap = snap_of(set);
    fail_alloc fa;
    fail_alloc_init(&fa);
    int sites = 0;
    lbk_hrw *hs = (lbk_hrw *)&hs;
    for (long k = 0;; k++) {
        lbk_hrw *h = hs;
        fail_alloc_reset(&fa, k);
        int rc = lbk_hrw_build(snap, NULL, &fa.hook, &h);
        if (rc == 0) {
            lbk_backend *b;
            assert_ok(lbk_hrw_lookup(h, "k", 1, &b));
            lbk_hrw_free(h);
            assert_int_equal(fa.live, 0);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(fa.live, 0);
        assert_ptr_equal(h, hs);
        sites++;
    }
    assert_int_equal(sites, 1);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- threads ---------------------------------------------------------- */

struct reader_arg {
    lbk_hrw *h;
    _Atomic int stop;
    _Atomic int errors;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    uint64_t k = 0;
    while (!atomic_load(&a->stop) || k < 1000) {
        lbk_backend *top[3];
        uint32_t cnt;
        if (lbk_hrw_lookup_top_hash(a->h, lbk_mix64(k++), 3, top, &cnt) != 0)
            atomic_fetch_add(&a->errors, 1);
    }
    return NULL;
}

/* Lookups from threads while another flips health and weight scale. */
static void test_threads(void **state)
{
    (void)state;
    lbk_set *set = make_set(8, NULL);
    const lbk_snapshot *snap = snap_of(set);
    struct reader_arg a = {.h = build(snap, 1)};
    atomic_init(&a.stop, 0);
    atomic_init(&a.errors, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &a), 0);
    for (int r = 0; r < 2000; r++) {
        lbk_backend *b = lbk_snapshot_backend(snap, r % 7);
        assert_ok(lbk_backend_set_health(b, (r & 1) ? LBK_HEALTH_UP
                                                    : LBK_HEALTH_DOWN));
        assert_ok(lbk_backend_set_weight_scale(b, (r & 2) ? 1.0 : 0.25));
    }
    atomic_store(&a.stop, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&a.errors), 0);
    lbk_hrw_free(a.h);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference_score),
        cmocka_unit_test(test_weighted_shares_chi2),
        cmocka_unit_test(test_monotonicity),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_health_and_scale),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
