/*
 * tests/test_ring.c - the consistent-hash ring: lookup against a plain
 * reference search, health walk and replica sets, exact ownership,
 * balance against the published sigma/mu, monotonicity, every bad input,
 * allocation failure at every site.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/ring.h"

__extension__ typedef unsigned __int128 u128;

static lbk_set *make_set(uint32_t n, uint32_t weight, bool hostport)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[48];
        uint32_t slot;
        if (hostport)
            snprintf(name, sizeof name, "10.%u.%u.%u:%u", i >> 16,
                     (i >> 8) & 255, i & 255, 8000 + i % 1000);
        else
            snprintf(name, sizeof name, "backend-%u", i);
        assert_ok(lbk_set_add(set, name, weight, NULL, &slot));
    }
    return set;
}

static lbk_ring *make_ring(const lbk_snapshot *snap, lbk_ring_mode mode,
                           uint32_t ppw, uint64_t seed)
{
    lbk_ring_options o;
    lbk_ring_options_init(&o);
    o.mode = mode;
    o.points_per_weight = ppw;
    o.seed = seed;
    lbk_ring *r;
    assert_ok(lbk_ring_build(snap, &o, NULL, &r));
    return r;
}

/* The reference: first point >= h by a plain binary search over the
 * points as lbk_ring_point() lists them, wrapping to 0. */
static uint32_t ref_find(const lbk_ring *r, uint64_t h)
{
    uint32_t lo = 0, hi = lbk_ring_point_count(r);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t p;
        assert_ok(lbk_ring_point(r, mid, &p, NULL));
        if (p < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == lbk_ring_point_count(r) ? 0 : lo;
}

static uint32_t owner_of(const lbk_ring *r, uint32_t point)
{
    uint32_t o;
    assert_ok(lbk_ring_point(r, point, NULL, &o));
    return o;
}

static void test_options_defaults(void **state)
{
    (void)state;
    lbk_ring_options o;
    memset(&o, 0xff, sizeof o);
    lbk_ring_options_init(&o);
    assert_int_equal(o.mode, LBK_RING_XXH3);
    assert_int_equal(o.points_per_weight, LBK_RING_DEFAULT_POINTS);
    assert_int_equal(o.seed, 0);
    lbk_ring_options_init(NULL);
}

static void test_points_sorted_and_counted(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    assert_ok(lbk_set_add(set, "a", 1, NULL, &slot));
    assert_ok(lbk_set_add(set, "b", 3, NULL, &slot));
    assert_ok(lbk_set_add(set, "zero", 0, NULL, &slot));
    assert_ok(lbk_set_add(set, "c", 2, NULL, &slot));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 100, 7);
    assert_int_equal(lbk_ring_point_count(r), 600);
    assert_int_equal(lbk_ring_hash_bits(r), 64);
    assert_ptr_equal(lbk_ring_snapshot(r), snap);
    assert_true(lbk_ring_memory_bytes(r) >= 600 * 12);
    uint32_t per[4] = {0};
    uint64_t prev = 0;
    for (uint32_t i = 0; i < 600; i++) {
        uint64_t p;
        uint32_t o;
        assert_ok(lbk_ring_point(r, i, &p, &o));
        assert_true(p >= prev);
        prev = p;
        per[o]++;
    }
    assert_int_equal(per[0], 100);
    assert_int_equal(per[1], 300);
    assert_int_equal(per[2], 0); /* weight 0: no point */
    assert_int_equal(per[3], 200);
    /* point j of a backend is XXH3(name || LE32(j), seed) */
    uint8_t buf[5] = {'a', 0, 0, 0, 0};
    uint64_t want = lbk_hash(buf, 5, 7);
    bool found = false;
    for (uint32_t i = 0; i < 600 && !found; i++) {
        uint64_t p;
        assert_ok(lbk_ring_point(r, i, &p, NULL));
        found = p == want && owner_of(r, i) == 0;
    }
    assert_true(found);
    /* the key hash is lbk_hash with the seed */
    uint64_t h;
    assert_ok(lbk_ring_hash_key(r, "key", 3, &h));
    assert_int_equal(h, lbk_hash("key", 3, 7));
    assert_ok(lbk_ring_hash_key(r, NULL, 0, &h));
    assert_int_equal(h, lbk_hash("", 0, 7));
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* The bucket index finds exactly what a binary search finds: at every
 * point, one below and one above it, at 0 and UINT64_MAX, and at random
 * hashes; for ring sizes from 1 point up, in both hash widths. */
static void check_find_matches_reference(const lbk_ring *r, uint64_t *s)
{
    uint32_t n = lbk_ring_point_count(r);
    uint64_t top = lbk_ring_hash_bits(r) == 32 ? UINT32_MAX : UINT64_MAX;
    uint64_t probes[] = {0, 1, top - 1, top};
    for (size_t i = 0; i < 4; i++) {
        uint32_t idx;
        assert_ok(lbk_ring_find_point(r, probes[i], &idx));
        assert_int_equal(idx, ref_find(r, probes[i]));
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t p;
        assert_ok(lbk_ring_point(r, i, &p, NULL));
        for (int d = -1; d <= 1; d++) {
            uint64_t h = p + (uint64_t)(int64_t)d;
            if (h > top)
                continue;
            uint32_t idx;
            assert_ok(lbk_ring_find_point(r, h, &idx));
            assert_int_equal(idx, ref_find(r, h));
        }
    }
    for (int i = 0; i < 20000; i++) {
        uint64_t h = test_rand(s) & top;
        uint32_t idx;
        assert_ok(lbk_ring_find_point(r, h, &idx));
        assert_int_equal(idx, ref_find(r, h));
        lbk_backend *b;
        assert_ok(lbk_ring_lookup_hash(r, h, &b));
        assert_ptr_equal(
            b, lbk_snapshot_backend(lbk_ring_snapshot(r), owner_of(r, idx)));
    }
}

static void test_find_matches_binary_search(void **state)
{
    (void)state;
    uint64_t s = 1;
    uint32_t sizes[] = {1, 2, 3, 8, 100, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        lbk_set *set = make_set(sizes[i], 1, true);
        const lbk_snapshot *snap;
        assert_ok(lbk_set_snapshot(set, &snap));
        uint32_t ppws[] = {1, 3, 160};
        for (size_t k = 0; k < 3; k++) {
            lbk_ring *r = make_ring(snap, LBK_RING_XXH3, ppws[k], sizes[i]);
            check_find_matches_reference(r, &s);
            lbk_ring_free(r);
        }
        lbk_ring_mode modes[] = {LBK_RING_LIBKETAMA, LBK_RING_LIBMEMCACHED,
                                 LBK_RING_NGINX};
        for (size_t k = 0; k < 3; k++) {
            lbk_ring *r = make_ring(snap, modes[k], 0, 0);
            assert_int_equal(lbk_ring_hash_bits(r), 32);
            check_find_matches_reference(r, &s);
            lbk_ring_free(r);
        }
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
}

/* The reference health walk: from the home point, points in order, the
 * first one whose backend is eligible. */
static lbk_backend *ref_pick(const lbk_ring *r, uint64_t h)
{
    uint32_t n = lbk_ring_point_count(r), i = ref_find(r, h);
    const lbk_snapshot *snap = lbk_ring_snapshot(r);
    for (uint32_t step = 0; step < n; step++, i = (i + 1) % n) {
        lbk_backend *b = lbk_snapshot_backend(snap, owner_of(r, i));
        if (lbk_backend_eligible(b))
            return b;
    }
    return NULL;
}

/* The reference replica list: distinct eligible owners in point order. */
static uint32_t ref_top(const lbk_ring *r, uint64_t h, uint32_t k,
                        lbk_backend **out)
{
    uint32_t n = lbk_ring_point_count(r), i = ref_find(r, h), got = 0;
    const lbk_snapshot *snap = lbk_ring_snapshot(r);
    for (uint32_t step = 0; step < n && got < k; step++, i = (i + 1) % n) {
        lbk_backend *b = lbk_snapshot_backend(snap, owner_of(r, i));
        if (!lbk_backend_eligible(b))
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < got; j++)
            dup |= out[j] == b;
        if (!dup)
            out[got++] = b;
    }
    return got;
}

static void test_health_walk_and_return_home(void **state)
{
    (void)state;
    lbk_set *set = make_set(12, 1, false);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 20, 3);
    uint64_t s = 99;
    uint64_t keys[2000];
    lbk_backend *home[2000];
    for (int i = 0; i < 2000; i++) {
        keys[i] = test_rand(&s);
        assert_ok(lbk_ring_lookup_hash(r, keys[i], &home[i]));
    }
    /* take backends down one by one, each state in every flavour */
    for (uint32_t down = 0; down < 12; down++) {
        lbk_backend *b = lbk_snapshot_backend(snap, down);
        switch (down % 3) {
        case 0:
            assert_ok(lbk_backend_set_health(b, LBK_HEALTH_DOWN));
            break;
        case 1:
            assert_ok(lbk_backend_set_health(b, LBK_HEALTH_DRAINING));
            break;
        default:
            assert_ok(lbk_backend_set_ejected(b, true));
            break;
        }
        for (int i = 0; i < 2000; i++) {
            lbk_backend *got = NULL;
            int rc = lbk_ring_lookup_hash(r, keys[i], &got);
            lbk_backend *want = ref_pick(r, keys[i]);
            if (want == NULL) {
                assert_int_equal(rc, LBK_ENOBACKEND);
                continue;
            }
            assert_ok(rc);
            assert_ptr_equal(got, want);
            /* a key whose home is up stays home */
            if (lbk_backend_eligible(home[i]))
                assert_ptr_equal(got, home[i]);
            lbk_backend *top[LBK_RING_TOP_MAX], *rtop[LBK_RING_TOP_MAX];
            uint32_t cnt = 0, k = 1 + (uint32_t)(i % 5);
            assert_ok(lbk_ring_lookup_top_hash(r, keys[i], k, top, &cnt));
            assert_int_equal(cnt, ref_top(r, keys[i], k, rtop));
            assert_memory_equal(top, rtop, cnt * sizeof(top[0]));
            assert_ptr_equal(top[0], got);
        }
    }
    lbk_backend *b;
    uint32_t cnt = 77;
    lbk_backend *top[4];
    assert_lbk(lbk_ring_lookup_hash(r, 5, &b), LBK_ENOBACKEND);
    assert_lbk(lbk_ring_lookup(r, "k", 1, &b), LBK_ENOBACKEND);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, 4, top, &cnt), LBK_ENOBACKEND);
    assert_int_equal(cnt, 77); /* nothing written */
    /* everyone back: every key is home again */
    for (uint32_t i = 0; i < 12; i++) {
        assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                         LBK_HEALTH_UP));
        assert_ok(
            lbk_backend_set_ejected(lbk_snapshot_backend(snap, i), false));
    }
    for (int i = 0; i < 2000; i++) {
        assert_ok(lbk_ring_lookup_hash(r, keys[i], &b));
        assert_ptr_equal(b, home[i]);
    }
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_top_k_distinct_and_bounded(void **state)
{
    (void)state;
    lbk_set *set = make_set(5, 1, false);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 160, 0);
    lbk_backend *top[LBK_RING_TOP_MAX];
    uint32_t cnt;
    assert_ok(
        lbk_ring_lookup_top(r, "user:42", 7, LBK_RING_TOP_MAX, top, &cnt));
    assert_int_equal(cnt, 5); /* min(k, backends) */
    for (uint32_t i = 0; i < cnt; i++)
        for (uint32_t j = i + 1; j < cnt; j++)
            assert_ptr_not_equal(top[i], top[j]);
    lbk_backend *b;
    assert_ok(lbk_ring_lookup(r, "user:42", 7, &b));
    assert_ptr_equal(top[0], b);
    /* a down replica: the others shift up, the next joins */
    lbk_backend *before[3];
    assert_ok(lbk_ring_lookup_top(r, "user:42", 7, 3, before, &cnt));
    assert_ok(lbk_backend_set_health(before[1], LBK_HEALTH_DOWN));
    lbk_backend *after[3];
    assert_ok(lbk_ring_lookup_top(r, "user:42", 7, 3, after, &cnt));
    assert_int_equal(cnt, 3);
    assert_ptr_equal(after[0], before[0]);
    assert_ptr_equal(after[1], before[2]);
    assert_ptr_not_equal(after[2], before[1]);
    assert_ok(lbk_backend_set_health(before[1], LBK_HEALTH_UP));
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Arcs sum to exactly 2^64 (XXH3) or 2^32 (compat), and the sampled share
 * of keys agrees with them within 5 binomial sigmas. */
static void test_ownership_exact(void **state)
{
    (void)state;
    lbk_set *set = make_set(8, 1, true);
    uint32_t slot;
    assert_ok(lbk_set_set_weight(set, 3, 4));
    assert_ok(lbk_set_find(set, "10.0.0.5:8005", &slot));
    assert_ok(lbk_set_set_weight(set, slot, 0));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring_mode modes[] = {LBK_RING_XXH3, LBK_RING_LIBKETAMA,
                             LBK_RING_LIBMEMCACHED, LBK_RING_NGINX};
    uint64_t s = 5;
    for (size_t m = 0; m < 4; m++) {
        lbk_ring *r = make_ring(snap, modes[m], 160, 11);
        uint64_t arcs[8];
        assert_int_equal(lbk_ring_ownership(r, arcs, 8), 0);
        u128 sum = 0;
        for (int i = 0; i < 8; i++)
            sum += arcs[i];
        unsigned bits = lbk_ring_hash_bits(r);
        assert_true(sum == (u128)1 << bits);
        assert_int_equal(arcs[slot], 0);
        /* the weight-4 backend owns about 4/11 */
        double w4 = (double)arcs[3] / ldexp(1.0, (int)bits);
        assert_true(w4 > 0.25 && w4 < 0.48);
        int counts[8] = {0};
        const int keys = 100000;
        for (int k = 0; k < keys; k++) {
            uint64_t h = test_rand(&s) >> (64 - bits);
            lbk_backend *b;
            assert_ok(lbk_ring_lookup_hash(r, h, &b));
            counts[lbk_backend_slot(b)]++;
        }
        for (int i = 0; i < 8; i++) {
            double p = (double)arcs[i] / ldexp(1.0, (int)bits);
            double sd = sqrt(p * (1 - p) / keys);
            assert_true(fabs((double)counts[i] / keys - p) <= 5 * sd + 1e-9);
        }
        lbk_ring_free(r);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    /* one backend owns the whole ring: 2^32 fits, 2^64 reads 0 and says so */
    set = make_set(1, 1, true);
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 160, 0);
    uint64_t arc = 99;
    assert_int_equal(lbk_ring_ownership(r, &arc, 1), 1);
    assert_int_equal(arc, 0);
    uint32_t next;
    assert_lbk(lbk_ring_next_distinct(r, 0, &next), LBK_ENOENT);
    lbk_ring_free(r);
    r = make_ring(snap, LBK_RING_NGINX, 0, 0);
    assert_int_equal(lbk_ring_ownership(r, &arc, 1), 0);
    assert_int_equal(arc, UINT64_C(1) << 32);
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* sigma/mu of exact ownership over N = 1000 backends is near the published
 * 1/sqrt(points): ~10% at 100 points, ~3.2% at 1000 (REFERENCES.md).  The
 * estimate from 1000 backends has a relative standard error of about
 * 1/sqrt(2N) = 2.2%; the bounds allow +-20%. */
static void test_balance_sigma_over_mu(void **state)
{
    (void)state;
    lbk_set *set = make_set(1000, 1, false);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    uint32_t pts[] = {100, 1000};
    for (int t = 0; t < 2; t++) {
        lbk_ring *r = make_ring(snap, LBK_RING_XXH3, pts[t], 1234);
        uint64_t *arcs = malloc(1000 * sizeof(*arcs));
        assert_ok(lbk_ring_ownership(r, arcs, 1000));
        double mu = ldexp(1.0, 64) / 1000, var = 0;
        for (int i = 0; i < 1000; i++)
            var += ((double)arcs[i] - mu) * ((double)arcs[i] - mu);
        double cv = sqrt(var / 1000) / mu;
        double want = 1 / sqrt((double)pts[t]);
        print_message("points %u: sigma/mu %.4f (1/sqrt(P) = %.4f)\n", pts[t],
                      cv, want);
        assert_true(cv > 0.8 * want && cv < 1.2 * want);
        free(arcs);
        lbk_ring_free(r);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/*
 * Monotonicity: removing one backend moves only its own keys, and adding
 * one moves keys only to it.  The moved fraction equals the removed
 * backend's exact arc share s up to sampling: |moved/K - s| <= 5
 * sqrt(s(1-s)/K), K = 200000 keys; and s is close to 1/N: |s - 1/N| <= 5
 * (1/N)/sqrt(P) (one backend's share has sigma/mu 1/sqrt(P)).
 */
static void check_monotone(lbk_ring_mode mode, uint32_t n)
{
    lbk_set *set = make_set(n, 1, true);
    const lbk_snapshot *before, *after;
    assert_ok(lbk_set_snapshot(set, &before));
    lbk_backend *gone = lbk_snapshot_backend(before, n / 3);
    assert_ok(lbk_set_remove(set, n / 3));
    assert_ok(lbk_set_snapshot(set, &after));
    lbk_ring *a = make_ring(before, mode, 160, 9);
    lbk_ring *b = make_ring(after, mode, 160, 9);
    uint64_t *arcs = malloc(n * sizeof(*arcs));
    assert_ok(lbk_ring_ownership(a, arcs, n));
    unsigned bits = lbk_ring_hash_bits(a);
    double share = (double)arcs[n / 3] / ldexp(1.0, (int)bits);
    free(arcs);
    const int keys = 200000;
    int moved = 0;
    uint64_t s = n;
    for (int k = 0; k < keys; k++) {
        char key[24];
        int len = snprintf(key, sizeof key, "key-%llx",
                           (unsigned long long)test_rand(&s));
        lbk_backend *x, *y;
        assert_ok(lbk_ring_lookup(a, key, (size_t)len, &x));
        assert_ok(lbk_ring_lookup(b, key, (size_t)len, &y));
        if (x != y) {
            assert_ptr_equal(x, gone); /* only the removed backend's keys */
            moved++;
        } else {
            assert_ptr_not_equal(x, gone);
        }
        /* adding it back (ring b -> a) moves keys only to it: same pairs */
    }
    double f = (double)moved / keys;
    assert_true(fabs(f - share) <= 5 * sqrt(share * (1 - share) / keys));
    double ideal = 1.0 / n;
    assert_true(fabs(share - ideal) <= 5 * ideal / sqrt(160.0));
    lbk_ring_free(a);
    lbk_ring_free(b);
    lbk_snapshot_release(before);
    lbk_snapshot_release(after);
    lbk_set_free(set);
}

static void test_monotonicity(void **state)
{
    (void)state;
    check_monotone(LBK_RING_XXH3, 10);
    check_monotone(LBK_RING_XXH3, 50);
    check_monotone(LBK_RING_NGINX, 10);
    /* Not the ketama modes: their digest counts depend on N and W, so a
     * removal can change the survivors' point counts by a digest (the
     * peers behave the same way). */
}

/* Weights increase points only: raising one backend's weight moves keys
 * only to it (XXH3 points of a backend are a prefix in j). */
static void test_weight_increase_moves_only_to_it(void **state)
{
    (void)state;
    lbk_set *set = make_set(6, 1, false);
    const lbk_snapshot *before, *after;
    assert_ok(lbk_set_snapshot(set, &before));
    assert_ok(lbk_set_set_weight(set, 2, 3));
    assert_ok(lbk_set_snapshot(set, &after));
    lbk_ring *a = make_ring(before, LBK_RING_XXH3, 50, 1);
    lbk_ring *b = make_ring(after, LBK_RING_XXH3, 50, 1);
    lbk_backend *grown = lbk_snapshot_backend(after, 2);
    uint64_t s = 17;
    int moved = 0;
    for (int k = 0; k < 50000; k++) {
        uint64_t h = test_rand(&s);
        lbk_backend *x, *y;
        assert_ok(lbk_ring_lookup_hash(a, h, &x));
        assert_ok(lbk_ring_lookup_hash(b, h, &y));
        if (x != y) {
            assert_ptr_equal(y, grown);
            moved++;
        }
    }
    assert_true(moved > 0);
    lbk_ring_free(a);
    lbk_ring_free(b);
    lbk_snapshot_release(before);
    lbk_snapshot_release(after);
    lbk_set_free(set);
}

static void test_empty_and_zero_weight(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        lbk_set *set = make_set(t == 0 ? 0 : 3, 0, true);
        const lbk_snapshot *snap;
        assert_ok(lbk_set_snapshot(set, &snap));
        for (int mode = 0; mode <= LBK_RING_NGINX; mode++) {
            lbk_ring *r = make_ring(snap, (lbk_ring_mode)mode, 160, 0);
            assert_int_equal(lbk_ring_point_count(r), 0);
            lbk_backend *b = NULL;
            lbk_backend *top[2];
            uint32_t cnt, idx;
            uint64_t arcs[3];
            assert_lbk(lbk_ring_lookup(r, "k", 1, &b), LBK_ENOBACKEND);
            assert_lbk(lbk_ring_lookup_hash(r, 1, &b), LBK_ENOBACKEND);
            assert_lbk(lbk_ring_lookup_top(r, "k", 1, 2, top, &cnt),
                       LBK_ENOBACKEND);
            assert_lbk(lbk_ring_find_point(r, 1, &idx), LBK_ENOBACKEND);
            assert_lbk(lbk_ring_ownership(r, arcs, 3), LBK_ENOBACKEND);
            assert_lbk(lbk_ring_point(r, 0, NULL, NULL), LBK_ERANGE);
            assert_null(b);
            lbk_ring_free(r);
        }
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = make_set(3, 1, true);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring_options o;
    lbk_ring_options_init(&o);
    lbk_ring *r = (lbk_ring *)0x1;
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_ring_build(NULL, &o, NULL, &r), LBK_EINVAL);
    assert_lbk(lbk_ring_build(snap, &o, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_build(snap, &o, &half, &r), LBK_EINVAL);
    o.mode = (lbk_ring_mode)4;
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_EINVAL);
    o.mode = (lbk_ring_mode)-1;
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_EINVAL);
    lbk_ring_options_init(&o);
    o.points_per_weight = 0;
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_ERANGE);
    o.points_per_weight = LBK_RING_MAX_POINTS_PER_WEIGHT + 1;
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_ERANGE);
    /* too many points in total */
    o.points_per_weight = LBK_RING_MAX_POINTS_PER_WEIGHT;
    assert_ok(lbk_set_set_weight(set, 0, 300));
    lbk_snapshot_release(snap);
    assert_ok(lbk_set_snapshot(set, &snap));
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_ERANGE);
    o.mode = LBK_RING_NGINX; /* 160 * 300 is fine; ppw ignored */
    assert_ok(lbk_ring_build(snap, &o, NULL, &r));
    lbk_ring_free(r);
    r = (lbk_ring *)0x1;
    assert_ok(lbk_set_set_weight(set, 0, 200000));
    lbk_snapshot_release(snap);
    assert_ok(lbk_set_snapshot(set, &snap));
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_ERANGE);
    assert_ptr_equal(r, (lbk_ring *)0x1); /* out not written on failure */
    lbk_snapshot_release(snap);
    lbk_set_free(set);

    /* names that are not host:port, in every compatibility mode */
    static const char *bad[] = {
        "nocolon",    ":80",     "host:",   "host:0",     "host:080",
        "host:65536", "host:8a", "host:-1", "host:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_ok(lbk_set_create(NULL, &set));
        uint32_t slot;
        assert_ok(lbk_set_add(set, "good:1", 1, NULL, &slot));
        assert_ok(lbk_set_add(set, bad[i], 1, NULL, &slot));
        assert_ok(lbk_set_snapshot(set, &snap));
        for (int mode = 1; mode <= LBK_RING_NGINX; mode++) {
            lbk_ring_options_init(&o);
            o.mode = (lbk_ring_mode)mode;
            assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_EPARSE);
        }
        lbk_ring_options_init(&o); /* XXH3 takes any name */
        assert_ok(lbk_ring_build(snap, &o, NULL, &r));
        lbk_ring_free(r);
        /* a bad name of weight 0 is not on the ring: accepted */
        assert_ok(lbk_set_set_weight(set, slot, 0));
        lbk_snapshot_release(snap);
        assert_ok(lbk_set_snapshot(set, &snap));
        o.mode = LBK_RING_NGINX;
        assert_ok(lbk_ring_build(snap, &o, NULL, &r));
        lbk_ring_free(r);
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
    /* IPv6-style host: the last ':' splits */
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    assert_ok(lbk_set_add(set, "[::1]:11211", 1, NULL, &slot));
    assert_ok(lbk_set_snapshot(set, &snap));
    o.mode = LBK_RING_LIBMEMCACHED;
    assert_ok(lbk_ring_build(snap, &o, NULL, &r));
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    /* libketama holds at most 21 bytes of address; libmemcached more */
    assert_ok(lbk_set_add(set, "cache-42.example.com:11211", 1, NULL, &slot));
    assert_ok(lbk_set_snapshot(set, &snap));
    o.mode = LBK_RING_LIBKETAMA;
    assert_lbk(lbk_ring_build(snap, &o, NULL, &r), LBK_ETOOLONG);
    o.mode = LBK_RING_LIBMEMCACHED;
    assert_ok(lbk_ring_build(snap, &o, NULL, &r));

    /* calls on a built ring */
    lbk_backend *b = NULL, *top[LBK_RING_TOP_MAX + 1];
    uint32_t cnt = 0, idx;
    uint64_t h, arcs[1];
    assert_lbk(lbk_ring_lookup(NULL, "k", 1, &b), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup(r, "k", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup(r, NULL, 1, &b), LBK_EINVAL);
    assert_ok(lbk_ring_lookup(r, NULL, 0, &b));
    assert_lbk(lbk_ring_lookup_hash(NULL, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_hash(r, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_hash(r, UINT64_C(1) << 32, &b), LBK_ERANGE);
    assert_ok(lbk_ring_lookup_hash(r, UINT32_MAX, &b));
    assert_lbk(lbk_ring_hash_key(NULL, "k", 1, &h), LBK_EINVAL);
    assert_lbk(lbk_ring_hash_key(r, "k", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_hash_key(r, NULL, 2, &h), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(NULL, "k", 1, 1, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, 1, NULL, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, 1, top, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(r, NULL, 1, 1, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, 0, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, LBK_RING_TOP_MAX + 1, top, &cnt),
               LBK_ERANGE);
    assert_lbk(lbk_ring_lookup_top_hash(NULL, 1, 1, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top_hash(r, 1, 0, top, &cnt), LBK_EINVAL);
    assert_lbk(lbk_ring_lookup_top_hash(r, 1, 65, top, &cnt), LBK_ERANGE);
    assert_lbk(lbk_ring_lookup_top_hash(r, UINT64_C(1) << 33, 1, top, &cnt),
               LBK_ERANGE);
    assert_lbk(lbk_ring_find_point(NULL, 1, &idx), LBK_EINVAL);
    assert_lbk(lbk_ring_find_point(r, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_find_point(r, UINT64_C(1) << 32, &idx), LBK_ERANGE);
    assert_lbk(lbk_ring_point(NULL, 0, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_point(r, lbk_ring_point_count(r), &h, NULL),
               LBK_ERANGE);
    assert_lbk(lbk_ring_next_distinct(NULL, 0, &idx), LBK_EINVAL);
    assert_lbk(lbk_ring_next_distinct(r, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_ring_next_distinct(r, lbk_ring_point_count(r), &idx),
               LBK_ERANGE);
    assert_lbk(lbk_ring_ownership(NULL, arcs, 2), LBK_EINVAL);
    assert_lbk(lbk_ring_ownership(r, NULL, 2), LBK_EINVAL);
    assert_lbk(lbk_ring_ownership(r, arcs, 1), LBK_ERANGE);
    assert_int_equal(lbk_ring_hash_bits(NULL), 0);
    assert_int_equal(lbk_ring_point_count(NULL), 0);
    assert_null(lbk_ring_snapshot(NULL));
    assert_int_equal(lbk_ring_memory_bytes(NULL), 0);
    lbk_ring_free(NULL);
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Every allocation site fails cleanly: LBK_ENOMEM, nothing leaked, the
 * snapshot's reference count unchanged, out not written. */
static void test_allocation_failure(void **state)
{
    (void)state;
    lbk_set *set = make_set(40, 2, true);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring_mode modes[] = {LBK_RING_XXH3, LBK_RING_LIBMEMCACHED,
                             LBK_RING_NGINX};
    for (size_t m = 0; m < 3; m++) {
        fail_alloc fa;
        fail_alloc_init(&fa);
        lbk_ring_options o;
        lbk_ring_options_init(&o);
        o.mode = modes[m];
        int64_t refs = atomic_load(&snap->ref.refs);
        int k;
        for (k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            lbk_ring *r = (lbk_ring *)0x1;
            int rc = lbk_ring_build(snap, &o, &fa.hook, &r);
            if (rc == 0) {
                assert_int_equal(fa.failures, 0);
                assert_int_equal(atomic_load(&snap->ref.refs), refs + 1);
                lbk_backend *b;
                assert_ok(lbk_ring_lookup(r, "x", 1, &b));
                lbk_ring_free(r);
                break;
            }
            assert_int_equal(rc, LBK_ENOMEM);
            assert_int_equal(fa.failures, 1);
            assert_int_equal(fa.live, 0);
            assert_ptr_equal(r, (lbk_ring *)0x1);
            assert_int_equal(atomic_load(&snap->ref.refs), refs);
        }
        assert_true(k >= 4); /* header, points, sort scratch, buckets */
        assert_int_equal(fa.live, 0);
        assert_int_equal(atomic_load(&snap->ref.refs), refs);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* The ring outlives the set and keeps its backends alive. */
static void test_ring_keeps_snapshot(void **state)
{
    (void)state;
    lbk_set *set = make_set(4, 1, false);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 10, 0);
    lbk_snapshot_release(snap);
    assert_ok(lbk_set_remove(set, 1));
    lbk_set_free(set);
    lbk_backend *b;
    assert_ok(lbk_ring_lookup(r, "still here", 10, &b));
    assert_non_null(lbk_backend_name(b));
    lbk_ring_free(r);
}

/* A ring of one owner has no next distinct point: with that owner down the
 * health walk stops at once (ENOBACKEND, nothing written), and a NULL count
 * is refused before anything is read. */
static void test_one_owner_down(void **state)
{
    (void)state;
    lbk_set *set = make_set(1, 1, false);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_ring *r = make_ring(snap, LBK_RING_XXH3, 40, 3);
    lbk_backend *b = NULL, *top[2] = {NULL, NULL};
    uint32_t cnt = 9;
    assert_lbk(lbk_ring_lookup_top_hash(r, 1, 1, top, NULL), LBK_EINVAL);
    assert_ok(lbk_ring_lookup(r, "k", 1, &b));
    assert_ptr_equal(b, lbk_snapshot_backend(snap, 0));
    assert_ok(lbk_backend_set_health(b, LBK_HEALTH_DOWN));
    b = NULL;
    for (uint64_t h = 0; h < 64; h++)
        assert_lbk(lbk_ring_lookup_hash(r, h * 0x9e3779b97f4a7c15u, &b),
                   LBK_ENOBACKEND);
    assert_lbk(lbk_ring_lookup_top(r, "k", 1, 2, top, &cnt), LBK_ENOBACKEND);
    assert_null(b);
    assert_null(top[0]);
    assert_int_equal(cnt, 9);
    lbk_ring_free(r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_owner_down),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_points_sorted_and_counted),
        cmocka_unit_test(test_find_matches_binary_search),
        cmocka_unit_test(test_health_walk_and_return_home),
        cmocka_unit_test(test_top_k_distinct_and_bounded),
        cmocka_unit_test(test_ownership_exact),
        cmocka_unit_test(test_balance_sigma_over_mu),
        cmocka_unit_test(test_monotonicity),
        cmocka_unit_test(test_weight_increase_moves_only_to_it),
        cmocka_unit_test(test_empty_and_zero_weight),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_allocation_failure),
        cmocka_unit_test(test_ring_keeps_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
