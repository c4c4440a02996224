/*
 * tests/test_maglev.c - Maglev: exact ownership, weighted shares, lookups
 * agree with the table, measured disruption, the health rule, the
 * caller-buffer variant, bad input and allocation failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/maglev.h"

/* ---- helpers ---------------------------------------------------------- */

static lbk_set *make_set(uint32_t n, const uint32_t *weights)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "backend-%u", i);
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

static lbk_maglev *build(const lbk_snapshot *snap, uint32_t m, uint64_t seed)
{
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    o.table_size = m;
    o.seed = seed;
    lbk_maglev *mg;
    assert_ok(lbk_maglev_build(snap, &o, NULL, &mg));
    assert_int_equal(lbk_maglev_table_size(mg), m);
    return mg;
}

static uint32_t *ownership(const lbk_maglev *mg, uint32_t n)
{
    uint32_t *c = calloc(n ? n : 1, sizeof(*c));
    assert_non_null(c);
    assert_ok(lbk_maglev_ownership(mg, c, n));
    return c;
}

static void key_of(uint64_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "key-%llu", (unsigned long long)i);
}

/* ---- ownership -------------------------------------------------------- */

static void check_equal_split(uint32_t n, uint32_t m)
{
    lbk_set *set = make_set(n, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, m, 7);
    uint32_t *c = ownership(mg, n);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i] != m / n && c[i] != (m + n - 1) / n)
            fail_msg("N=%u M=%u: backend %u owns %u, not floor/ceil of %u/%u",
                     n, m, i, c[i], m, n);
        total += c[i];
    }
    assert_int_equal(total, m);
    free(c);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_equal_weights_floor_ceil(void **state)
{
    (void)state;
    check_equal_split(1, 2);
    check_equal_split(1, 65537);
    check_equal_split(2, 2);
    check_equal_split(3, 7);
    check_equal_split(13, 13);
    check_equal_split(7, 65537);
    check_equal_split(100, 65537);
    check_equal_split(1000, 65537);
    check_equal_split(1024, 10007);
}

/* A snapshot of >= 65536 backends switches to 4-byte entries. */
static void test_wide_table(void **state)
{
    (void)state;
    size_t narrow, wide;
    assert_ok(lbk_maglev_table_size_bytes(65535, 65537, &narrow));
    assert_ok(lbk_maglev_table_size_bytes(65536, 65537, &wide));
    assert_true(narrow < wide);
    size_t small;
    assert_ok(lbk_maglev_table_size_bytes(1, 65537, &small));
    /* <= 2 bytes per entry plus header and scratch while N < 65536 */
    assert_true(small <= 2 * 65537 + 256);
    check_equal_split(65536, 65537);
    check_equal_split(70000, 131071);
}

/* The hash whose home entry is e: lbk_bounded64(h, M) == e. */
static uint64_t hash_for_entry(uint32_t e, uint32_t m)
{
    __extension__ typedef unsigned __int128 u128;
    u128 h = (((u128)e << 64) + m - 1) / m;
    return (uint64_t)h;
}

/* A wide (4-byte entry) weighted table: the lookup of every entry agrees
 * exactly with lbk_maglev_ownership(), the caller-buffer variant builds the
 * same table, and the health rule (re-probe, then scan) works on it. */
static void test_wide_lookups_and_health(void **state)
{
    (void)state;
    const uint32_t n = 65536, m = 131071; /* 2^17 - 1, prime */
    uint32_t *w = malloc(n * sizeof(*w));
    assert_non_null(w);
    for (uint32_t i = 0; i < n; i++)
        w[i] = i % 3 + 1;
    lbk_set *set = make_set(n, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, m, 5);
    uint32_t *c = ownership(mg, n);
    uint64_t total = 0, by_weight[4] = {0};
    for (uint32_t i = 0; i < n; i++) {
        total += c[i];
        by_weight[w[i]] += c[i];
    }
    assert_int_equal(total, m);
    assert_true(by_weight[1] < by_weight[2] && by_weight[2] < by_weight[3]);

    /* every entry, through the lookup */
    uint32_t *seen = calloc(n, sizeof(*seen));
    assert_non_null(seen);
    lbk_backend **owner = malloc(m * sizeof(*owner));
    assert_non_null(owner);
    for (uint32_t e = 0; e < m; e++) {
        assert_ok(lbk_maglev_lookup_hash(mg, hash_for_entry(e, m), &owner[e]));
        seen[lbk_backend_slot(owner[e])]++;
    }
    assert_memory_equal(seen, c, n * sizeof(*c));

    /* the same table in a caller buffer */
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    o.table_size = m;
    o.seed = 5;
    size_t bytes;
    assert_ok(lbk_maglev_table_size_bytes(n, m, &bytes));
    void *buf = malloc(bytes);
    assert_non_null(buf);
    lbk_maglev *in_buf;
    assert_ok(lbk_maglev_init(buf, bytes, snap, &o, &in_buf));
    for (uint32_t e = 0; e < m; e += 7) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(in_buf, hash_for_entry(e, m), &b));
        assert_ptr_equal(b, owner[e]);
    }
    lbk_maglev_free(in_buf);
    free(buf);

    /* memory: 4-byte entries plus a header, no scratch */
    assert_true(lbk_maglev_memory_bytes(mg) >= (size_t)4 * m);
    assert_true(lbk_maglev_memory_bytes(mg) < (size_t)4 * m + 256);
    assert_true(lbk_maglev_memory_bytes(mg) < bytes);

    /* one backend in ten down: only its entries move, to eligible ones */
    for (uint32_t i = 0; i < n; i += 10)
        assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                         LBK_HEALTH_DOWN));
    for (uint32_t e = 0; e < m; e += 3) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, hash_for_entry(e, m), &b));
        assert_true(lbk_backend_eligible(b));
        if (lbk_backend_eligible(owner[e]))
            assert_ptr_equal(b, owner[e]);
    }
    /* all but one down: the probes miss and the scan finds it */
    for (uint32_t i = 0; i < n; i++)
        if (i != 4321)
            assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                             LBK_HEALTH_DOWN));
    for (uint64_t k = 0; k < 20; k++) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(k), &b));
        assert_int_equal(lbk_backend_slot(b), 4321);
    }
    free(owner);
    free(seen);
    free(c);
    free(w);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* lbk_maglev_memory_bytes for a narrow table, for both constructors. */
static void test_memory_bytes(void **state)
{
    (void)state;
    assert_int_equal(lbk_maglev_memory_bytes(NULL), 0);
    lbk_set *set = make_set(100, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, 10007, 0);
    size_t mem = lbk_maglev_memory_bytes(mg), need;
    assert_true(mem >= 2 * 10007 && mem < 2 * 10007 + 256);
    assert_ok(lbk_maglev_table_size_bytes(100, 10007, &need));
    assert_true(mem < need); /* the caller buffer also holds the scratch */
    void *buf = malloc(need);
    assert_non_null(buf);
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    o.table_size = 10007;
    lbk_maglev *in_buf;
    assert_ok(lbk_maglev_init(buf, need, snap, &o, &in_buf));
    assert_int_equal(lbk_maglev_memory_bytes(in_buf), mem);
    lbk_maglev_free(in_buf);
    free(buf);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Weighted shares: |c_i - M w_i / W| < 2 + 2 N w_i / W (maglev.h). */
static void test_weighted_shares(void **state)
{
    (void)state;
    uint64_t rs = 11;
    static const uint32_t ns[] = {2, 5, 50, 300};
    static const uint32_t ms[] = {65537, 65537, 65537, 10007};
    for (int t = 0; t < 4; t++) {
        uint32_t n = ns[t], m = ms[t];
        uint32_t *w = malloc(n * sizeof(*w));
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            w[i] = 1 + (uint32_t)(test_rand(&rs) % (t == 1 ? 1000 : 10));
            total += w[i];
        }
        lbk_set *set = make_set(n, w);
        const lbk_snapshot *snap = snap_of(set);
        lbk_maglev *mg = build(snap, m, 3);
        uint32_t *c = ownership(mg, n);
        double worst = 0;
        for (uint32_t i = 0; i < n; i++) {
            double ideal = (double)m * w[i] / (double)total;
            double bound = 2.0 + 2.0 * n * w[i] / (double)total;
            double err = fabs(c[i] - ideal);
            if (err >= bound)
                fail_msg("N=%u backend %u (w=%u) owns %u, ideal %.1f, bound "
                         "%.1f",
                         n, i, w[i], c[i], ideal, bound);
            if (err / ideal > worst)
                worst = err / ideal;
        }
        print_message("weighted maglev N=%u M=%u: worst relative share error "
                      "%.4f\n",
                      n, m, worst);
        free(c);
        free(w);
        lbk_maglev_free(mg);
        lbk_snapshot_release(snap);
        lbk_set_free(set);
    }
}

/* Weight 0 owns nothing and does not count against M >= N. */
static void test_zero_weight_owns_nothing(void **state)
{
    (void)state;
    uint32_t w[6] = {0, 1, 0, 2, 0, 1};
    lbk_set *set = make_set(6, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, 5, 0); /* 3 weighted backends <= 5 */
    uint32_t *c = ownership(mg, 6);
    assert_int_equal(c[0] + c[2] + c[4], 0);
    assert_int_equal(c[1] + c[3] + c[5], 5);
    free(c);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- lookups ---------------------------------------------------------- */

/* Keys land in proportion to the table ownership (chi-square), and the
 * string and hash lookups agree. */
static void test_lookup_matches_table(void **state)
{
    (void)state;
    uint32_t w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    lbk_set *set = make_set(8, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, 65537, 99);
    uint32_t *c = ownership(mg, 8);
    uint64_t hits[8] = {0};
    const uint32_t keys = 200000;
    for (uint32_t i = 0; i < keys; i++) {
        char k[32];
        key_of(i, k, sizeof k);
        lbk_backend *b, *b2;
        assert_ok(lbk_maglev_lookup(mg, k, strlen(k), &b));
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_hash(k, strlen(k), 99), &b2));
        assert_ptr_equal(b, b2);
        hits[lbk_backend_slot(b)]++;
    }
    double chi2 = 0;
    for (int i = 0; i < 8; i++) {
        double exp = (double)keys * c[i] / 65537.0;
        chi2 += (hits[i] - exp) * (hits[i] - exp) / exp;
    }
    assert_true(chi2 < chi2_critical_1e6(7));
    /* A NULL key of length 0 is the empty key. */
    lbk_backend *b1, *b2;
    assert_ok(lbk_maglev_lookup(mg, NULL, 0, &b1));
    assert_ok(lbk_maglev_lookup(mg, "", 0, &b2));
    assert_ptr_equal(b1, b2);
    free(c);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* The seed changes the permutations: a different seed, a different table;
 * the same seed, the same table. */
static void test_seed(void **state)
{
    (void)state;
    lbk_set *set = make_set(16, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *a = build(snap, 251, 1), *b = build(snap, 251, 1),
               *c = build(snap, 251, 2);
    uint32_t same = 0, differ = 0;
    uint64_t rs = 1;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = test_rand(&rs);
        lbk_backend *ba, *bb, *bc;
        assert_ok(lbk_maglev_lookup_hash(a, x, &ba));
        assert_ok(lbk_maglev_lookup_hash(b, x, &bb));
        assert_ok(lbk_maglev_lookup_hash(c, x, &bc));
        assert_ptr_equal(ba, bb);
        same += ba == bc;
        differ += ba != bc;
    }
    assert_true(differ > 500); /* ~15/16 expected */
    (void)same;
    lbk_maglev_free(a);
    lbk_maglev_free(b);
    lbk_maglev_free(c);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Removing one backend: its keys must move; others may (Maglev is not
 * minimally disruptive).  Measured and printed, with a loose sanity bound. */
static void test_disruption_on_removal(void **state)
{
    (void)state;
    const uint32_t n = 100, keys = 200000;
    lbk_set *set = make_set(n, NULL);
    const lbk_snapshot *before = snap_of(set);
    lbk_maglev *m1 = build(before, 65537, 5);
    assert_ok(lbk_set_remove(set, 37));
    const lbk_snapshot *after = snap_of(set);
    lbk_maglev *m2 = build(after, 65537, 5);
    uint32_t moved = 0, owned = 0;
    for (uint32_t i = 0; i < keys; i++) {
        char k[32];
        key_of(i, k, sizeof k);
        lbk_backend *b1, *b2;
        assert_ok(lbk_maglev_lookup(m1, k, strlen(k), &b1));
        assert_ok(lbk_maglev_lookup(m2, k, strlen(k), &b2));
        assert_int_not_equal(lbk_backend_slot(b2), 37);
        if (lbk_backend_slot(b1) == 37)
            owned++;
        else if (b1 != b2)
            moved++;
    }
    double extra = (double)moved / keys, minimum = (double)owned / keys;
    print_message("maglev N=%u M=65537 remove one: %.4f of keys moved "
                  "(minimum %.4f = its own keys; %.4f moved between "
                  "survivors)\n",
                  n, extra + minimum, minimum, extra);
    assert_true(owned > 0);
    assert_true(extra < 0.10); /* the paper reports a few percent */
    lbk_maglev_free(m1);
    lbk_maglev_free(m2);
    lbk_snapshot_release(before);
    lbk_snapshot_release(after);
    lbk_set_free(set);
}

/* ---- health ----------------------------------------------------------- */

static void test_health_fallback_and_return(void **state)
{
    (void)state;
    const uint32_t n = 10, keys = 20000;
    lbk_set *set = make_set(n, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, 1009, 3), *twin = build(snap, 1009, 3);
    lbk_backend **home = malloc(keys * sizeof(*home));
    lbk_backend **away = malloc(keys * sizeof(*away));
    for (uint32_t i = 0; i < keys; i++)
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(i), &home[i]));
    lbk_backend *down = lbk_snapshot_backend(snap, 4);
    assert_ok(lbk_backend_set_health(down, LBK_HEALTH_DOWN));
    uint32_t spread[10] = {0};
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b, *t;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(i), &b));
        assert_ok(lbk_maglev_lookup_hash(twin, lbk_mix64(i), &t));
        assert_ptr_equal(b, t); /* deterministic */
        assert_ptr_not_equal(b, down);
        if (home[i] != down)
            assert_ptr_equal(b, home[i]); /* others stay home */
        else
            spread[lbk_backend_slot(b)]++;
        away[i] = b;
    }
    uint32_t receivers = 0;
    for (int s = 0; s < 10; s++)
        receivers += spread[s] > 0;
    assert_true(receivers >= 8); /* spread, not dumped on one neighbour */
    /* Draining and ejected are not eligible either. */
    assert_ok(lbk_backend_set_health(down, LBK_HEALTH_DRAINING));
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(i), &b));
        assert_ptr_equal(b, away[i]);
    }
    assert_ok(lbk_backend_set_health(down, LBK_HEALTH_UP));
    assert_ok(lbk_backend_set_ejected(down, true));
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(i), &b));
        assert_ptr_equal(b, away[i]);
    }
    /* Recovery: every key is home again. */
    assert_ok(lbk_backend_set_ejected(down, false));
    for (uint32_t i = 0; i < keys; i++) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(i), &b));
        assert_ptr_equal(b, home[i]);
    }
    free(home);
    free(away);
    lbk_maglev_free(mg);
    lbk_maglev_free(twin);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* With all but one down, probes mostly miss and the scan must find it; with
 * all down, LBK_ENOBACKEND and out untouched. */
static void test_health_scan_and_none(void **state)
{
    (void)state;
    const uint32_t n = 50;
    uint32_t w[50];
    for (uint32_t i = 0; i < n; i++)
        w[i] = i == 20 ? 0 : 1; /* weight 0 is never a fallback either */
    lbk_set *set = make_set(n, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev *mg = build(snap, 211, 0);
    for (uint32_t i = 0; i < n; i++)
        if (i != 33)
            assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                             LBK_HEALTH_DOWN));
    for (uint64_t k = 0; k < 5000; k++) {
        lbk_backend *b;
        assert_ok(lbk_maglev_lookup_hash(mg, lbk_mix64(k), &b));
        assert_int_equal(lbk_backend_slot(b), 33);
    }
    /* Only the weight-0 backend is up: still nothing eligible. */
    assert_ok(lbk_backend_set_health(lbk_snapshot_backend(snap, 33),
                                     LBK_HEALTH_DOWN));
    assert_ok(
        lbk_backend_set_health(lbk_snapshot_backend(snap, 20), LBK_HEALTH_UP));
    lbk_backend *sentinel = (lbk_backend *)&sentinel, *b = sentinel;
    assert_lbk(lbk_maglev_lookup(mg, "k", 1, &b), LBK_ENOBACKEND);
    assert_ptr_equal(b, sentinel);
    lbk_maglev_free(mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- the caller-buffer variant ---------------------------------------- */

static void test_init_in_buffer(void **state)
{
    (void)state;
    uint32_t w[5] = {3, 1, 4, 1, 5};
    lbk_set *set = make_set(5, w);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    o.table_size = 1031;
    o.seed = 42;
    size_t bytes;
    assert_ok(lbk_maglev_table_size_bytes(5, 1031, &bytes));
    uint64_t *buf = malloc(bytes + 16);
    lbk_maglev *in_buf = NULL, *heap = NULL;
    lbk_maglev *sentinel = (lbk_maglev *)&sentinel, *out = sentinel;
    assert_lbk(lbk_maglev_init(buf, bytes - 1, snap, &o, &out), LBK_ERANGE);
    assert_lbk(lbk_maglev_init((char *)buf + 1, bytes, snap, &o, &out),
               LBK_EINVAL);
    assert_lbk(lbk_maglev_init(NULL, bytes, snap, &o, &out), LBK_EINVAL);
    assert_lbk(lbk_maglev_init(buf, bytes, NULL, &o, &out), LBK_EINVAL);
    assert_lbk(lbk_maglev_init(buf, bytes, snap, &o, NULL), LBK_EINVAL);
    o.table_size = 1030;
    assert_lbk(lbk_maglev_init(buf, bytes, snap, &o, &out), LBK_ENOTPRIME);
    o.table_size = 3;
    assert_lbk(lbk_maglev_init(buf, bytes, snap, &o, &out), LBK_ERANGE);
    assert_ptr_equal(out, sentinel);
    o.table_size = 1031;
    assert_ok(lbk_maglev_init(buf, bytes, snap, &o, &in_buf));
    assert_ptr_equal(in_buf, buf);
    assert_ok(lbk_maglev_build(snap, &o, NULL, &heap));
    uint32_t *c1 = ownership(in_buf, 5), *c2 = ownership(heap, 5);
    assert_memory_equal(c1, c2, 5 * sizeof(*c1));
    for (uint64_t k = 0; k < 5000; k++) {
        lbk_backend *b1, *b2;
        assert_ok(lbk_maglev_lookup_hash(in_buf, lbk_mix64(k), &b1));
        assert_ok(lbk_maglev_lookup_hash(heap, lbk_mix64(k), &b2));
        assert_ptr_equal(b1, b2);
    }
    /* The table holds its own snapshot reference. */
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    lbk_backend *b;
    assert_ok(lbk_maglev_lookup(in_buf, "still valid", 11, &b));
    free(c1);
    free(c2);
    lbk_maglev_free(in_buf);
    lbk_maglev_free(heap);
    free(buf);
}

/* ---- bad input -------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = make_set(10, NULL);
    const lbk_snapshot *snap = snap_of(set);
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    assert_int_equal(o.table_size, 65537);
    assert_int_equal(o.seed, 0);
    lbk_maglev_options_init(NULL);
    lbk_maglev *sentinel = (lbk_maglev *)&sentinel, *mg = sentinel;
    static const uint32_t not_prime[] = {0,  1,     4,     9,
                                         15, 65536, 65535, 4294967295u - 1};
    for (size_t i = 0; i < sizeof not_prime / sizeof not_prime[0]; i++) {
        o.table_size = not_prime[i];
        int want = not_prime[i] > LBK_MAGLEV_MAX_TABLE_SIZE ? LBK_ERANGE
                                                            : LBK_ENOTPRIME;
        assert_lbk(lbk_maglev_build(snap, &o, NULL, &mg), want);
    }
    o.table_size = 7; /* prime, but fewer entries than 10 backends */
    assert_lbk(lbk_maglev_build(snap, &o, NULL, &mg), LBK_ERANGE);
    o.table_size = 4294967291u; /* prime, above the maximum */
    assert_lbk(lbk_maglev_build(snap, &o, NULL, &mg), LBK_ERANGE);
    o.table_size = 11;
    assert_lbk(lbk_maglev_build(NULL, &o, NULL, &mg), LBK_EINVAL);
    assert_lbk(lbk_maglev_build(snap, &o, NULL, NULL), LBK_EINVAL);
    fail_alloc fh;
    fail_alloc_init(&fh);
    lbk_allocator half = {NULL, fh.hook.free, NULL};
    assert_lbk(lbk_maglev_build(snap, &o, &half, &mg), LBK_EINVAL);
    assert_ptr_equal(mg, sentinel);
    size_t bytes = 12345, keep = 12345;
    assert_lbk(lbk_maglev_table_size_bytes(1, 0, &bytes), LBK_ERANGE);
    assert_lbk(lbk_maglev_table_size_bytes(1, 4294967291u, &bytes), LBK_ERANGE);
    assert_lbk(lbk_maglev_table_size_bytes(LBK_SET_MAX + 1, 11, &bytes),
               LBK_ERANGE);
    assert_lbk(lbk_maglev_table_size_bytes(1, 11, NULL), LBK_EINVAL);
    assert_int_equal(bytes, keep);

    assert_ok(lbk_maglev_build(snap, NULL, NULL, &mg)); /* defaults */
    assert_int_equal(lbk_maglev_table_size(mg), 65537);
    assert_int_equal(lbk_maglev_table_size(NULL), 0);
    lbk_backend *bs = (lbk_backend *)&bs, *b = bs;
    assert_lbk(lbk_maglev_lookup(mg, NULL, 3, &b), LBK_EINVAL);
    assert_lbk(lbk_maglev_lookup(NULL, "k", 1, &b), LBK_EINVAL);
    assert_lbk(lbk_maglev_lookup(mg, "k", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_maglev_lookup_hash(NULL, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_maglev_lookup_hash(mg, 1, NULL), LBK_EINVAL);
    assert_ptr_equal(b, bs);
    uint32_t counts[10];
    assert_lbk(lbk_maglev_ownership(mg, counts, 9), LBK_ERANGE);
    assert_lbk(lbk_maglev_ownership(mg, NULL, 10), LBK_EINVAL);
    assert_lbk(lbk_maglev_ownership(NULL, counts, 10), LBK_EINVAL);
    lbk_maglev_free(mg);
    lbk_maglev_free(NULL);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* Empty set and all-zero weights: the build succeeds, lookups say
 * LBK_ENOBACKEND. */
static void test_empty_and_zero_weights(void **state)
{
    (void)state;
    lbk_set *empty = make_set(0, NULL);
    uint32_t w[3] = {0, 0, 0};
    lbk_set *zero = make_set(3, w);
    lbk_set *sets[2] = {empty, zero};
    for (int s = 0; s < 2; s++) {
        const lbk_snapshot *snap = snap_of(sets[s]);
        lbk_maglev *mg = build(snap, 2, 0);
        lbk_backend *bs = (lbk_backend *)&bs, *b = bs;
        assert_lbk(lbk_maglev_lookup(mg, "k", 1, &b), LBK_ENOBACKEND);
        assert_lbk(lbk_maglev_lookup_hash(mg, 5, &b), LBK_ENOBACKEND);
        assert_ptr_equal(b, bs);
        uint32_t c[3] = {9, 9, 9};
        assert_ok(lbk_maglev_ownership(mg, c, 3));
        if (s == 1) /* the empty snapshot has no counts to write */
            assert_int_equal(c[0] + c[1] + c[2], 0);
        lbk_maglev_free(mg);
        lbk_snapshot_release(snap);
        lbk_set_free(sets[s]);
    }
}

/* ---- allocation failure ----------------------------------------------- */

static void test_alloc_failure(void **state)
{
    (void)state;
    lbk_set *set = make_set(20, NULL);
    const lbk_snapshot *snap = snap_of(set);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_maglev_options o;
    lbk_maglev_options_init(&o);
    o.table_size = 101;
    lbk_maglev *sentinel = (lbk_maglev *)&sentinel;
    int sites = 0;
    for (long k = 0;; k++) {
        lbk_maglev *mg = sentinel;
        fail_alloc_reset(&fa, k);
        int rc = lbk_maglev_build(snap, &o, &fa.hook, &mg);
        if (rc == 0) {
            assert_true(fa.live > 0);
            lbk_backend *b;
            assert_ok(lbk_maglev_lookup(mg, "k", 1, &b));
            lbk_maglev_free(mg);
            assert_int_equal(fa.live, 0);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(fa.live, 0);
        assert_ptr_equal(mg, sentinel);
        sites++;
    }
    assert_int_equal(sites, 2); /* the table and the build's scratch */
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- threads ---------------------------------------------------------- */

struct reader_arg {
    lbk_maglev *mg;
    _Atomic int stop;
    _Atomic int errors;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    uint64_t k = 0;
    while (!atomic_load(&a->stop) || k < 1000) {
        lbk_backend *b;
        int rc = lbk_maglev_lookup_hash(a->mg, lbk_mix64(k++), &b);
        if (rc != 0 || lbk_backend_name(b) == NULL)
            atomic_fetch_add(&a->errors, 1); /* cmocka is not thread-safe */
    }
    return NULL;
}

/* Lookups from threads while another thread flips health. */
static void test_threads_with_health_flips(void **state)
{
    (void)state;
    lbk_set *set = make_set(8, NULL);
    const lbk_snapshot *snap = snap_of(set);
    struct reader_arg a = {.mg = build(snap, 251, 1)};
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
    lbk_maglev_free(a.mg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_weights_floor_ceil),
        cmocka_unit_test(test_wide_table),
        cmocka_unit_test(test_wide_lookups_and_health),
        cmocka_unit_test(test_memory_bytes),
        cmocka_unit_test(test_weighted_shares),
        cmocka_unit_test(test_zero_weight_owns_nothing),
        cmocka_unit_test(test_lookup_matches_table),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_disruption_on_removal),
        cmocka_unit_test(test_health_fallback_and_return),
        cmocka_unit_test(test_health_scan_and_none),
        cmocka_unit_test(test_init_in_buffer),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_empty_and_zero_weights),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_threads_with_health_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
