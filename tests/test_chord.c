/*
 * tests/test_chord.c - Chord: the papers' examples, lookups against an
 * independent oracle, maintenance rounds, failures, bad input, allocation
 * failure at every site.
 *
 * The oracle here is written apart from lib/chord.c: a plain sorted array of
 * the live ids and a linear or binary search, so a bug in the library's
 * global ring cannot hide a bug in its routing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/chord.h"

/* ---- helpers ------------------------------------------------------------ */

static lbk_chord *make_ring(unsigned m, unsigned r, const uint64_t *ids,
                            size_t n)
{
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.bits = m;
    o.succ_list = r;
    lbk_chord *c = NULL;
    assert_ok(lbk_chord_create(&o, ids, n, NULL, &c));
    return c;
}

static uint32_t find(const lbk_chord *c, uint64_t id)
{
    uint32_t x;
    assert_ok(lbk_chord_find(c, id, &x));
    return x;
}

static uint64_t id_of(const lbk_chord *c, uint32_t x)
{
    uint64_t id;
    assert_ok(lbk_chord_node(c, x, &id, NULL));
    return id;
}

static lbk_chord_state state_of(const lbk_chord *c, uint32_t x)
{
    lbk_chord_state st;
    assert_ok(lbk_chord_node(c, x, NULL, &st));
    return st;
}

static uint64_t mask_of(unsigned m)
{
    return m == 64 ? UINT64_MAX : (UINT64_C(1) << m) - 1;
}

/* Distinct random ids in [0, 2^m). */
static void random_ids(uint64_t *seed, unsigned m, uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
    again:
        ids[i] = test_rand(seed) & mask_of(m);
        for (size_t j = 0; j < i; j++)
            if (ids[j] == ids[i])
                goto again;
    }
}

typedef struct live_view {
    size_t k;
    uint64_t *id; /* sorted */
    uint32_t *node;
} live_view;

static int cmp_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The live nodes sorted by id, read through the public accessors. */
static live_view live_nodes(const lbk_chord *c)
{
    uint32_t n = lbk_chord_node_count(c);
    uint64_t(*p)[2] = malloc((n + 1) * sizeof(*p));
    assert_non_null(p);
    size_t k = 0;
    for (uint32_t x = 0; x < n; x++)
        if (state_of(c, x) == LBK_CHORD_LIVE) {
            p[k][0] = id_of(c, x);
            p[k][1] = x;
            k++;
        }
    qsort(p, k, sizeof(*p), cmp_pair);
    live_view v = {k, malloc((k + 1) * 8), malloc((k + 1) * 4)};
    for (size_t i = 0; i < k; i++) {
        v.id[i] = p[i][0];
        v.node[i] = (uint32_t)p[i][1];
    }
    free(p);
    return v;
}

static void live_free(live_view *v)
{
    free(v->id);
    free(v->node);
}

/* Position in v of the first live id >= key, wrapping. */
static size_t truth_pos(const live_view *v, uint64_t key)
{
    size_t lo = 0, hi = v->k;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->id[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == v->k ? 0 : lo;
}

/* Number of wrong fingers, successor-list entries and predecessors. */
static long wrong_entries(const lbk_chord *c)
{
    live_view v = live_nodes(c);
    unsigned m = lbk_chord_bits(c), r = lbk_chord_succ_list_len(c);
    long bad = 0;
    for (size_t p = 0; p < v.k; p++) {
        uint32_t x = v.node[p], got;
        assert_ok(lbk_chord_predecessor(c, x, &got));
        bad += got != v.node[(p + v.k - 1) % v.k];
        for (unsigned j = 0; j < r; j++) {
            assert_ok(lbk_chord_successor(c, x, j, &got));
            bad += got != v.node[(p + 1 + j) % v.k];
        }
        for (unsigned i = 1; i <= m; i++) {
            uint64_t t = (v.id[p] + (UINT64_C(1) << (i - 1))) & mask_of(m);
            assert_ok(lbk_chord_finger(c, x, i, &got));
            bad += got != v.node[truth_pos(&v, t)];
        }
    }
    live_free(&v);
    return bad;
}

static uint32_t random_live(const lbk_chord *c, uint64_t *seed)
{
    uint32_t n = lbk_chord_node_count(c);
    for (;;) {
        uint32_t x = (uint32_t)(test_rand(seed) % n);
        if (state_of(c, x) == LBK_CHORD_LIVE)
            return x;
    }
}

/* ---- the papers' examples ----------------------------------------------- */

static void test_paper_m3(void **state)
{
    (void)state;
    const uint64_t ids[] = {0, 1, 3};
    lbk_chord *c = make_ring(3, 1, ids, 3);
    /* SIGCOMM Fig. 3(b): the finger tables of nodes 0, 1 and 3. */
    const uint64_t fingers[3][3] = {{1, 3, 0}, {3, 3, 0}, {0, 0, 0}};
    for (int k = 0; k < 3; k++)
        for (unsigned i = 1; i <= 3; i++) {
            uint32_t f;
            assert_ok(lbk_chord_finger(c, find(c, ids[k]), i, &f));
            assert_int_equal(id_of(c, f), fingers[k][i - 1]);
        }
    /* Key 1 -> 1, key 2 -> 3, key 6 -> 0, from every node. */
    const uint64_t keys[3] = {1, 2, 6}, owners[3] = {1, 3, 0};
    for (int k = 0; k < 3; k++)
        for (uint32_t from = 0; from < 3; from++) {
            lbk_chord_result res;
            assert_ok(lbk_chord_lookup(c, from, keys[k], NULL, 0, &res));
            assert_int_equal(id_of(c, res.owner), owners[k]);
            assert_int_equal(res.timeouts, 0);
        }
    /* Lookup of id 1 from node 3 goes 3 -> 0 and returns 1. */
    uint32_t path[8];
    lbk_chord_result res;
    assert_ok(lbk_chord_lookup(c, find(c, 3), 1, path, 8, &res));
    assert_int_equal(res.hops, 1);
    assert_int_equal(res.path_len, 2);
    assert_int_equal(id_of(c, path[0]), 3);
    assert_int_equal(id_of(c, path[1]), 0);
    assert_int_equal(id_of(c, res.owner), 1);
    lbk_chord_free(c);
}

static const uint64_t ring6[] = {1, 8, 14, 21, 32, 38, 42, 48, 51, 56};

static void test_paper_m6(void **state)
{
    (void)state;
    for (unsigned r = 1; r <= 4; r++) {
        lbk_chord *c = make_ring(6, r, ring6, 10);
        const uint64_t want[6] = {14, 14, 14, 21, 32, 42};
        uint32_t n8 = find(c, 8), f;
        for (unsigned i = 1; i <= 6; i++) {
            assert_ok(lbk_chord_finger(c, n8, i, &f));
            assert_int_equal(id_of(c, f), want[i - 1]);
        }
        /* Key 54 from node 8: 8 -> 42 -> 51, owner 56. */
        uint32_t path[8];
        lbk_chord_result res;
        assert_ok(lbk_chord_lookup(c, n8, 54, path, 8, &res));
        assert_int_equal(res.hops, 2);
        assert_int_equal(res.path_len, 3);
        assert_int_equal(res.timeouts, 0);
        assert_int_equal(id_of(c, path[0]), 8);
        assert_int_equal(id_of(c, path[1]), 42);
        assert_int_equal(id_of(c, path[2]), 51);
        assert_int_equal(id_of(c, res.owner), 56);
        /* Successor lists and predecessors of the bulk build. */
        for (unsigned j = 0; j < r; j++) {
            assert_ok(lbk_chord_successor(c, n8, j, &f));
            assert_int_equal(id_of(c, f), ring6[2 + j]);
        }
        assert_ok(lbk_chord_predecessor(c, n8, &f));
        assert_int_equal(id_of(c, f), 1);
        lbk_chord_free(c);
    }
}

/* The same ring with node 42 failed: 8 times out on 42, falls back to its
 * next finger 32, and 32 -> 48 -> 51 finish the route.  With 56 failed too
 * the key's owner is 1, reachable only through a successor list. */
static void test_paper_m6_failures(void **state)
{
    (void)state;
    lbk_chord *c = make_ring(6, 1, ring6, 10);
    assert_ok(lbk_chord_fail(c, find(c, 42)));
    uint32_t path[8];
    lbk_chord_result res;
    assert_ok(lbk_chord_lookup(c, find(c, 8), 54, path, 8, &res));
    assert_int_equal(res.timeouts, 1);
    assert_int_equal(res.hops, 3);
    const uint64_t want[4] = {8, 32, 48, 51};
    for (int i = 0; i < 4; i++)
        assert_int_equal(id_of(c, path[i]), want[i]);
    assert_int_equal(id_of(c, res.owner), 56);
    /* r = 1 and 56 failed: node 51's only successor is dead. */
    assert_ok(lbk_chord_fail(c, find(c, 56)));
    assert_lbk(lbk_chord_lookup(c, find(c, 8), 54, path, 8, &res),
               LBK_ETIMEDOUT);
    lbk_chord_free(c);

    c = make_ring(6, 2, ring6, 10);
    assert_ok(lbk_chord_fail(c, find(c, 42)));
    assert_ok(lbk_chord_fail(c, find(c, 56)));
    assert_ok(lbk_chord_lookup(c, find(c, 8), 54, NULL, 0, &res));
    assert_int_equal(id_of(c, res.owner), 1);
    assert_int_equal(res.timeouts, 2); /* 42 at node 8, 56 at node 51 */
    uint32_t o;
    assert_ok(lbk_chord_owner(c, 54, &o));
    assert_int_equal(o, res.owner);
    lbk_chord_free(c);
}

/* ---- random rings -------------------------------------------------------- */

/* Bulk-built fingers, successor lists and predecessors equal the brute-force
 * definitions; every lookup from every kind of start finds the true
 * successor; the path is a chain of forwarding hops, strictly approaching
 * the key, and no longer than m hops (each hop at least halves the
 * distance with correct fingers). */
static void test_random_rings(void **state)
{
    (void)state;
    uint64_t seed = 1;
    const unsigned bits[] = {1, 2, 5, 8, 16, 33, 64};
    const size_t sizes[] = {1, 2, 3, 7, 64, 300};
    for (size_t bi = 0; bi < sizeof bits / sizeof bits[0]; bi++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            unsigned m = bits[bi];
            size_t n = sizes[si];
            if (m < 64 && n > (UINT64_C(1) << m))
                continue;
            unsigned r = 1 + (unsigned)(test_rand(&seed) % 6);
            uint64_t *ids = malloc(n * sizeof(*ids));
            random_ids(&seed, m, ids, n);
            lbk_chord *c = make_ring(m, r, ids, n);
            assert_int_equal(wrong_entries(c), 0);
            live_view v = live_nodes(c);
            uint32_t path[80];
            for (int k = 0; k < 300; k++) {
                uint64_t key = test_rand(&seed) & mask_of(m);
                if (k % 7 == 0) /* keys equal to node ids, and their +-1 */
                    key =
                        (ids[test_rand(&seed) % n] + (k % 3) - 1) & mask_of(m);
                uint32_t from = (uint32_t)(test_rand(&seed) % n);
                lbk_chord_result res;
                assert_ok(lbk_chord_lookup(c, from, key, path, 80, &res));
                assert_int_equal(res.owner, v.node[truth_pos(&v, key)]);
                assert_int_equal(res.timeouts, 0);
                assert_int_equal(res.path_len, res.hops + 1);
                assert_true(res.hops <= m && res.hops < n + 1);
                assert_int_equal(path[0], from);
                /* each hop strictly closer to the key; the last node is
                 * the key's predecessor: key in (last, owner]. */
                uint64_t prev = UINT64_MAX;
                for (uint32_t h = 0; h <= res.hops; h++) {
                    uint64_t d = (key - id_of(c, path[h]) - 1) & mask_of(m);
                    assert_true(h == 0 || d < prev);
                    prev = d;
                }
                uint64_t last = id_of(c, path[res.hops]);
                uint64_t own = id_of(c, res.owner);
                assert_true(n == 1 || ((key - last - 1) & mask_of(m)) <=
                                          ((own - last - 1) & mask_of(m)));
                uint32_t o;
                assert_ok(lbk_chord_owner(c, key, &o));
                assert_int_equal(o, res.owner);
            }
            live_free(&v);
            lbk_chord_free(c);
            free(ids);
        }
    }
}

/* Mean path length is about 1/2 log2 N (SIGCOMM Fig. 10). */
static void test_mean_path_length(void **state)
{
    (void)state;
    uint64_t seed = 7;
    for (size_t n = 64; n <= 4096; n *= 8) {
        uint64_t *ids = malloc(n * sizeof(*ids));
        random_ids(&seed, 64, ids, n);
        lbk_chord *c = make_ring(64, 4, ids, n);
        double sum = 0;
        const int K = 4000;
        for (int k = 0; k < K; k++) {
            lbk_chord_result res;
            assert_ok(lbk_chord_lookup(c, (uint32_t)(test_rand(&seed) % n),
                                       test_rand(&seed), NULL, 0, &res));
            sum += res.hops;
        }
        double mean = sum / K, half_log = 0.5 * log2((double)n);
        assert_true(fabs(mean - half_log) < 0.75);
        lbk_chord_free(c);
        free(ids);
    }
}

static void test_path_buffer(void **state)
{
    (void)state;
    lbk_chord *c = make_ring(6, 2, ring6, 10);
    uint32_t path[3] = {99, 99, 99};
    lbk_chord_result res;
    /* Truncated: only the first path_cap nodes are written. */
    assert_ok(lbk_chord_lookup(c, find(c, 8), 54, path, 1, &res));
    assert_int_equal(res.path_len, 3);
    assert_int_equal(path[0], find(c, 8));
    assert_int_equal(path[1], 99);
    /* The start node as the key's predecessor: 0 hops. */
    assert_ok(lbk_chord_lookup(c, find(c, 8), 10, path, 3, &res));
    assert_int_equal(res.hops, 0);
    assert_int_equal(id_of(c, res.owner), 14);
    /* A key equal to the start's own id goes round the ring (the paper's
     * algorithm does not consult the predecessor). */
    assert_ok(lbk_chord_lookup(c, find(c, 8), 8, NULL, 0, &res));
    assert_int_equal(id_of(c, res.owner), 8);
    assert_true(res.hops >= 1);
    lbk_chord_free(c);
}

/* ---- membership and maintenance ----------------------------------------- */

static void test_join_leave_small(void **state)
{
    (void)state;
    lbk_chord *c = make_ring(6, 3, NULL, 0);
    uint32_t a, b, x;
    lbk_chord_result res;
    assert_lbk(lbk_chord_owner(c, 5, &x), LBK_ENOBACKEND);
    assert_lbk(lbk_chord_join(c, 10, 0, &a), LBK_ENOENT);
    assert_ok(lbk_chord_join(c, 10, LBK_CHORD_NONE, &a));
    assert_int_equal(a, 0);
    assert_lbk(lbk_chord_join(c, 20, LBK_CHORD_NONE, &b), LBK_ESTATE);
    assert_lbk(lbk_chord_join(c, 10, a, &b), LBK_EEXIST);
    assert_ok(lbk_chord_lookup(c, a, 33, NULL, 0, &res));
    assert_int_equal(res.owner, a);
    assert_ok(lbk_chord_join(c, 40, a, &b));
    /* b knows a; a does not know b yet: a still answers for everything. */
    assert_ok(lbk_chord_lookup(c, a, 33, NULL, 0, &res));
    assert_int_equal(res.owner, a);
    assert_ok(lbk_chord_maintain(c, 2 + 6));
    assert_int_equal(wrong_entries(c), 0);
    assert_ok(lbk_chord_lookup(c, a, 33, NULL, 0, &res));
    assert_int_equal(res.owner, b);
    /* Graceful leave: the survivors are correct at once. */
    assert_ok(lbk_chord_join(c, 50, b, &x));
    assert_ok(lbk_chord_maintain(c, 3 + 6));
    assert_int_equal(wrong_entries(c), 0);
    assert_ok(lbk_chord_leave(c, b));
    assert_int_equal(state_of(c, b), LBK_CHORD_LEFT);
    assert_int_equal(lbk_chord_live_count(c), 2);
    uint32_t s;
    assert_ok(lbk_chord_successor(c, a, 0, &s));
    assert_int_equal(s, x);
    assert_ok(lbk_chord_predecessor(c, x, &s));
    assert_int_equal(s, a);
    assert_lbk(lbk_chord_leave(c, b), LBK_ESTATE);
    assert_lbk(lbk_chord_fail(c, b), LBK_ESTATE);
    assert_lbk(lbk_chord_lookup(c, b, 1, NULL, 0, &res), LBK_ESTATE);
    /* A departed id is free again at once. */
    assert_ok(lbk_chord_join(c, 40, x, &b));
    assert_int_equal(b, 3);
    /* A failed id is taken until maintenance forgets it. */
    assert_ok(lbk_chord_fail(c, b));
    assert_lbk(lbk_chord_join(c, 40, x, &s), LBK_EEXIST);
    assert_ok(lbk_chord_find(c, 40, &s));
    assert_ok(lbk_chord_maintain(c, 8));
    assert_lbk(lbk_chord_find(c, 40, &s), LBK_ENOENT);
    assert_ok(lbk_chord_join(c, 40, x, &s));
    assert_ok(lbk_chord_maintain(c, 4 + 6));
    assert_int_equal(wrong_entries(c), 0);
    lbk_chord_free(c);
}

/*
 * The bound in chord.h: from a correct ring, J joins (through random live
 * nodes, possibly ones that joined a moment ago and know almost nothing)
 * and fewer than r leaves with more than 2r nodes throughout, then exactly
 * J + 1 rounds make successors and predecessors right and exactly
 * J + 1 + max(m, r) rounds make every table right.  With joins only the
 * same holds with g (most joins into one gap of the starting ring) for J.
 */
static void test_rounds_bound(void **state)
{
    (void)state;
    uint64_t seed = 42;
    const unsigned bits[] = {6, 10, 16, 64};
    for (int trial = 0; trial < 240; trial++) {
        unsigned m = bits[trial % 4];
        unsigned r = 1 + (unsigned)(test_rand(&seed) % 8);
        size_t n0 = 2 * r + 2 + test_rand(&seed) % 40;
        if (m == 6 && n0 > 30)
            n0 = 30;
        bool joins_only = trial % 3 == 0;
        uint64_t ids[64], sorted[64];
        random_ids(&seed, m, ids, n0);
        memcpy(sorted, ids, n0 * 8);
        qsort(sorted, n0, 8, cmp_pair);
        int gap[64] = {0};
        lbk_chord *c = make_ring(m, r, ids, n0);
        unsigned joins = 0, leaves = 0;
        int ops = 1 + (int)(test_rand(&seed) % 60);
        for (int k = 0; k < ops; k++) {
            uint32_t live = lbk_chord_live_count(c);
            if (!joins_only && leaves + 1 < r && live > 2 * r + 2 &&
                test_rand(&seed) % 3 == 0) {
                assert_ok(lbk_chord_leave(c, random_live(c, &seed)));
                leaves++;
                continue;
            }
            uint64_t id = test_rand(&seed) & mask_of(m);
            uint32_t x;
            int rc = lbk_chord_join(c, id, random_live(c, &seed), &x);
            if (rc == LBK_EEXIST)
                continue;
            assert_ok(rc);
            joins++;
            size_t q = 0;
            while (q < n0 && sorted[q] < id)
                q++;
            gap[(q + n0 - 1) % n0]++;
        }
        unsigned g = 0;
        for (size_t i = 0; i < n0; i++)
            if ((unsigned)gap[i] > g)
                g = (unsigned)gap[i];
        unsigned J = joins_only ? g : joins;
        assert_ok(lbk_chord_maintain(c, J + 1));
        /* successors and predecessors already exact */
        live_view v = live_nodes(c);
        for (size_t p = 0; p < v.k; p++) {
            uint32_t got;
            assert_ok(lbk_chord_successor(c, v.node[p], 0, &got));
            assert_int_equal(got, v.node[(p + 1) % v.k]);
            assert_ok(lbk_chord_predecessor(c, v.node[p], &got));
            assert_int_equal(got, v.node[(p + v.k - 1) % v.k]);
        }
        live_free(&v);
        assert_ok(lbk_chord_maintain(c, m > r ? m : r));
        if (wrong_entries(c) != 0)
            fail_msg("trial %d (m %u, r %u, n0 %zu, J %u): %ld wrong", trial, m,
                     r, n0, J, wrong_entries(c));
        /* and every lookup agrees with the oracle */
        v = live_nodes(c);
        for (int k = 0; k < 50; k++) {
            uint64_t key = test_rand(&seed) & mask_of(m);
            lbk_chord_result res;
            assert_ok(
                lbk_chord_lookup(c, random_live(c, &seed), key, NULL, 0, &res));
            assert_int_equal(res.owner, v.node[truth_pos(&v, key)]);
            assert_int_equal(res.timeouts, 0);
        }
        live_free(&v);
        lbk_chord_free(c);
    }
}

/* After failures and maintenance the ring repairs itself, and failed ids
 * may join again. */
static void test_failures_then_maintenance(void **state)
{
    (void)state;
    uint64_t seed = 5;
    uint64_t ids[200];
    random_ids(&seed, 32, ids, 200);
    lbk_chord *c = make_ring(32, 8, ids, 200);
    for (int i = 0; i < 200; i += 5) /* 20%, never 8 in a row */
        assert_ok(lbk_chord_fail(c, (uint32_t)i));
    /* 1 round clears dead successors and predecessors, then
     * max(m, r) = 32 more refresh every finger and list entry. */
    assert_ok(lbk_chord_maintain(c, 2 + 32));
    assert_int_equal(wrong_entries(c), 0);
    lbk_chord_result res;
    for (int k = 0; k < 200; k++) {
        assert_ok(lbk_chord_lookup(c, random_live(c, &seed),
                                   test_rand(&seed) & mask_of(32), NULL, 0,
                                   &res));
        assert_int_equal(res.timeouts, 0);
    }
    uint32_t x;
    assert_ok(lbk_chord_join(c, ids[0], 1, &x));
    lbk_chord_free(c);
}

/*
 * ToN's experiment in miniature: a fraction p of the nodes fails at once,
 * no stabilization; with r = 20 every lookup still finds the closest live
 * successor of its key, and timeouts grow with p.
 */
static void test_simultaneous_failures(void **state)
{
    (void)state;
    uint64_t seed = 11;
    const size_t n = 1000;
    uint64_t *ids = malloc(n * sizeof(*ids));
    random_ids(&seed, 64, ids, n);
    double prev_timeouts = -1;
    const double fractions[] = {0.0, 0.1, 0.3, 0.5};
    for (int fi = 0; fi < 4; fi++) {
        lbk_chord *c = make_ring(64, 20, ids, n);
        for (uint32_t x = 0; x < n; x++)
            if ((double)(test_rand(&seed) >> 11) * 0x1.0p-53 < fractions[fi])
                assert_ok(lbk_chord_fail(c, x));
        live_view v = live_nodes(c);
        double timeouts = 0;
        for (int k = 0; k < 2000; k++) {
            uint64_t key = test_rand(&seed);
            lbk_chord_result res;
            assert_ok(
                lbk_chord_lookup(c, random_live(c, &seed), key, NULL, 0, &res));
            assert_int_equal(res.owner, v.node[truth_pos(&v, key)]);
            timeouts += res.timeouts;
        }
        if (fi == 0)
            assert_true(timeouts == 0);
        else
            assert_true(timeouts > prev_timeouts);
        prev_timeouts = timeouts;
        live_free(&v);
        lbk_chord_free(c);
    }
    /* r = 1, half the nodes failed: lookups whose predecessor lost its only
     * successor fail with LBK_ETIMEDOUT, the others are still right. */
    lbk_chord *c = make_ring(64, 1, ids, n);
    for (uint32_t x = 0; x < n; x += 2)
        assert_ok(lbk_chord_fail(c, x));
    live_view v = live_nodes(c);
    int failed = 0;
    for (int k = 0; k < 500; k++) {
        uint64_t key = test_rand(&seed);
        lbk_chord_result res;
        int rc = lbk_chord_lookup(c, random_live(c, &seed), key, NULL, 0, &res);
        if (rc == LBK_ETIMEDOUT)
            failed++;
        else {
            assert_ok(rc);
            assert_int_equal(res.owner, v.node[truth_pos(&v, key)]);
        }
    }
    assert_true(failed > 0);
    live_free(&v);
    lbk_chord_free(c);
    free(ids);
}

/* ---- the backend set ---------------------------------------------------- */

static void test_build_from_snapshot(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    char name[32];
    for (int i = 0; i < 50; i++) {
        uint32_t slot;
        snprintf(name, sizeof name, "10.0.0.%d:80", i);
        assert_ok(lbk_set_add(set, name, (uint32_t)i % 3, NULL, &slot));
    }
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.seed = 99;
    o.bits = 40;
    lbk_chord *c;
    assert_ok(lbk_chord_build(snap, &o, NULL, &c));
    lbk_snapshot_release(snap); /* the ring keeps its own reference */
    assert_int_equal(lbk_chord_node_count(c), 50);
    for (uint32_t i = 0; i < 50; i++) {
        lbk_backend *b = lbk_chord_backend(c, i);
        assert_non_null(b);
        const char *nm = lbk_backend_name(b);
        uint64_t want = lbk_hash(nm, strlen(nm), 99) >> 24, got;
        assert_ok(lbk_chord_key_id(c, nm, strlen(nm), &got));
        assert_int_equal(got, want);
        assert_int_equal(id_of(c, i), want);
    }
    assert_int_equal(wrong_entries(c), 0);
    assert_null(lbk_chord_backend(c, 50));
    uint32_t x;
    assert_ok(lbk_chord_join(c, 12345, 0, &x));
    assert_null(lbk_chord_backend(c, x));
    lbk_chord_free(c);
    /* Too few bits for 50 names: two of them collide. */
    assert_ok(lbk_set_snapshot(set, &snap));
    o.bits = 4;
    assert_lbk(lbk_chord_build(snap, &o, NULL, &c), LBK_EEXIST);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

static void test_key_id(void **state)
{
    (void)state;
    for (unsigned m = 1; m <= 64; m += 7) {
        lbk_chord_options o;
        lbk_chord_options_init(&o);
        o.bits = m;
        o.seed = 3;
        lbk_chord *c;
        assert_ok(lbk_chord_create(&o, NULL, 0, NULL, &c));
        uint64_t id;
        assert_ok(lbk_chord_key_id(c, "key", 3, &id));
        assert_int_equal(id, lbk_hash("key", 3, 3) >> (64 - m));
        assert_ok(lbk_chord_key_id(c, NULL, 0, &id));
        assert_int_equal(id, lbk_hash("", 0, 3) >> (64 - m));
        assert_int_equal(lbk_chord_bits(c), m);
        lbk_chord_free(c);
    }
}

/*
 * Two corners of graceful leave and of routing around departed nodes, found
 * by a random search over short histories:
 *
 * - A node leaves while its successor list names only itself (it has not
 *   stabilized since the ring had one node) but its predecessor is a live
 *   other node: that predecessor must end with a list of itself, not of the
 *   departed node.
 * - A lookup at a node whose every finger names a departed node and whose
 *   successor list starts with it: it times out on that node, then forwards
 *   through the next successor-list entry (no finger qualifies).
 */
static void test_leave_corners(void **state)
{
    (void)state;
    uint64_t one[1] = {39};
    lbk_chord *c = make_ring(6, 2, one, 1);
    uint32_t x, s;
    assert_ok(lbk_chord_join(c, 42, 0, &x));
    assert_ok(lbk_chord_maintain(c, 1));
    /* 0 learned of x as predecessor but its list is still itself */
    assert_ok(lbk_chord_predecessor(c, 0, &s));
    assert_int_equal(s, x);
    for (unsigned j = 0; j < 2; j++) {
        assert_ok(lbk_chord_successor(c, 0, j, &s));
        assert_int_equal(s, 0);
    }
    assert_ok(lbk_chord_leave(c, 0));
    for (unsigned j = 0; j < 2; j++) {
        assert_ok(lbk_chord_successor(c, x, j, &s));
        assert_int_equal(s, x);
    }
    lbk_chord_result res;
    for (uint64_t k = 0; k < 64; k += 9) {
        assert_ok(lbk_chord_lookup(c, x, k, NULL, 0, &res));
        assert_int_equal(res.owner, x);
        assert_int_equal(res.timeouts, 0);
    }
    lbk_chord_free(c);

    uint64_t two[2] = {0, 26};
    c = make_ring(5, 3, two, 2);
    assert_ok(lbk_chord_join(c, 12, 1, &x)); /* every finger of x: node 1 */
    assert_int_equal(x, 2);
    for (unsigned i = 1; i <= 5; i++) {
        assert_ok(lbk_chord_finger(c, x, i, &s));
        assert_int_equal(s, 1);
    }
    assert_ok(lbk_chord_leave(c, 1));
    uint32_t want;
    assert_ok(lbk_chord_owner(c, 1, &want));
    assert_int_equal(want, x); /* 12 is the first live id at or after 1 */
    /* x times out on node 1, then forwards to node 0 through its list.
     * Node 0 took node 1's list when it left, which names only node 0, so
     * it answers for every key: the stale answer Chord gives until
     * stabilization repairs the tables. */
    uint32_t path[8];
    assert_ok(lbk_chord_lookup(c, x, 1, path, 8, &res));
    assert_int_equal(res.timeouts, 1);
    assert_int_equal(res.hops, 1);
    assert_int_equal(path[0], x);
    assert_int_equal(path[1], 0);
    assert_int_equal(res.owner, 0);
    assert_ok(lbk_chord_maintain(c, 16));
    assert_int_equal(wrong_entries(c), 0);
    for (uint64_t k = 0; k < 32; k++) {
        assert_ok(lbk_chord_lookup(c, x, k, NULL, 0, &res));
        assert_ok(lbk_chord_owner(c, k, &want));
        assert_int_equal(res.owner, want);
        assert_int_equal(res.timeouts, 0);
    }
    lbk_chord_free(c);
}

/* Options are checked by lbk_chord_build as by lbk_chord_create; an empty
 * snapshot gives an empty ring; a node count above LBK_CHORD_NODES_MAX is
 * refused before ids[] is read. */
static void test_build_options_and_limits(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_chord_options o;
    lbk_chord *sentinel = (lbk_chord *)&sentinel, *c = sentinel;
    const struct {
        unsigned bits, succ_list;
    } bad[] = {{0, 8}, {65, 8}, {64, 0}, {64, LBK_CHORD_SUCC_MAX + 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lbk_chord_options_init(&o);
        o.bits = bad[i].bits;
        o.succ_list = bad[i].succ_list;
        assert_lbk(lbk_chord_build(snap, &o, NULL, &c), LBK_ERANGE);
        assert_ptr_equal(c, sentinel);
    }
    assert_ok(lbk_chord_build(snap, NULL, NULL, &c)); /* empty snapshot */
    assert_int_equal(lbk_chord_node_count(c), 0);
    assert_int_equal(lbk_chord_live_count(c), 0);
    uint32_t x;
    assert_lbk(lbk_chord_owner(c, 5, &x), LBK_ENOBACKEND);
    assert_null(lbk_chord_backend(c, 0));
    assert_ok(lbk_chord_join(c, 5, LBK_CHORD_NONE, &x)); /* a ring can start */
    assert_ok(lbk_chord_owner(c, 1, &x));
    assert_int_equal(x, 0);
    lbk_chord_free(c);

    uint64_t ids[1] = {1};
    c = sentinel;
    assert_lbk(
        lbk_chord_create(NULL, ids, (size_t)LBK_CHORD_NODES_MAX + 1, NULL, &c),
        LBK_ERANGE);
    assert_ptr_equal(c, sentinel);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- bad input --------------------------------------------------------------
 */

static void test_bad_input(void **state)
{
    (void)state;
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    assert_int_equal(o.bits, 64);
    assert_int_equal(o.succ_list, 8);
    lbk_chord_options_init(NULL);
    lbk_chord *c = NULL;
    uint64_t ids[3] = {1, 2, 3};
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_create(&o, NULL, 3, NULL, &c), LBK_EINVAL);
    o.bits = 0;
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_ERANGE);
    o.bits = 65;
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_ERANGE);
    o.bits = 2;
    ids[2] = 4; /* >= 2^2 */
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_ERANGE);
    o.bits = 8;
    o.succ_list = 0;
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_ERANGE);
    o.succ_list = LBK_CHORD_SUCC_MAX + 1;
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_ERANGE);
    o.succ_list = 2;
    ids[2] = 1;
    assert_lbk(lbk_chord_create(&o, ids, 3, NULL, &c), LBK_EEXIST);
    assert_null(c);
    assert_lbk(lbk_chord_build(NULL, &o, NULL, &c), LBK_EINVAL);
    ids[2] = 3;
    assert_ok(lbk_chord_create(&o, ids, 3, NULL, &c));

    lbk_chord_result res;
    uint32_t x, path[4];
    uint64_t id;
    assert_lbk(lbk_chord_lookup(NULL, 0, 1, NULL, 0, &res), LBK_EINVAL);
    assert_lbk(lbk_chord_lookup(c, 0, 1, NULL, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_lookup(c, 0, 1, NULL, 2, &res), LBK_EINVAL);
    assert_lbk(lbk_chord_lookup(c, 3, 1, path, 4, &res), LBK_ENOENT);
    assert_lbk(lbk_chord_lookup(c, 0, 256, path, 4, &res), LBK_ERANGE);
    assert_lbk(lbk_chord_owner(NULL, 1, &x), LBK_EINVAL);
    assert_lbk(lbk_chord_owner(c, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_owner(c, 256, &x), LBK_ERANGE);
    assert_lbk(lbk_chord_key_id(NULL, "a", 1, &id), LBK_EINVAL);
    assert_lbk(lbk_chord_key_id(c, "a", 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_key_id(c, NULL, 1, &id), LBK_EINVAL);
    assert_lbk(lbk_chord_join(NULL, 9, 0, &x), LBK_EINVAL);
    assert_lbk(lbk_chord_join(c, 9, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_join(c, 256, 0, &x), LBK_ERANGE);
    assert_lbk(lbk_chord_join(c, 9, 7, &x), LBK_ENOENT);
    assert_lbk(lbk_chord_join(c, 2, 0, &x), LBK_EEXIST);
    assert_lbk(lbk_chord_join(c, 9, LBK_CHORD_NONE, &x), LBK_ESTATE);
    assert_lbk(lbk_chord_leave(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_chord_leave(c, 3), LBK_ENOENT);
    assert_lbk(lbk_chord_fail(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_chord_fail(c, 3), LBK_ENOENT);
    assert_lbk(lbk_chord_maintain(NULL, 1), LBK_EINVAL);
    assert_lbk(lbk_chord_node(NULL, 0, &id, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_node(c, 3, &id, NULL), LBK_ENOENT);
    assert_lbk(lbk_chord_find(NULL, 1, &x), LBK_EINVAL);
    assert_lbk(lbk_chord_find(c, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_find(c, 9, &x), LBK_ENOENT);
    assert_lbk(lbk_chord_finger(c, 0, 0, &x), LBK_ERANGE);
    assert_lbk(lbk_chord_finger(c, 0, 9, &x), LBK_ERANGE);
    assert_lbk(lbk_chord_finger(c, 3, 1, &x), LBK_ENOENT);
    assert_lbk(lbk_chord_finger(c, 0, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_finger(NULL, 0, 1, &x), LBK_EINVAL);
    assert_lbk(lbk_chord_successor(c, 0, 2, &x), LBK_ERANGE);
    assert_lbk(lbk_chord_successor(c, 3, 0, &x), LBK_ENOENT);
    assert_lbk(lbk_chord_successor(c, 0, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_successor(NULL, 0, 0, &x), LBK_EINVAL);
    assert_lbk(lbk_chord_predecessor(c, 3, &x), LBK_ENOENT);
    assert_lbk(lbk_chord_predecessor(c, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_chord_predecessor(NULL, 0, &x), LBK_EINVAL);
    /* a failed start node, and a failed via */
    assert_ok(lbk_chord_fail(c, 1));
    assert_lbk(lbk_chord_lookup(c, 1, 5, NULL, 0, &res), LBK_ESTATE);
    assert_lbk(lbk_chord_join(c, 9, 1, &x), LBK_ESTATE);
    assert_lbk(lbk_chord_fail(c, 1), LBK_ESTATE);
    assert_lbk(lbk_chord_leave(c, 1), LBK_ESTATE);
    /* getters on NULL */
    assert_int_equal(lbk_chord_node_count(NULL), 0);
    assert_int_equal(lbk_chord_live_count(NULL), 0);
    assert_int_equal(lbk_chord_bits(NULL), 0);
    assert_int_equal(lbk_chord_succ_list_len(NULL), 0);
    assert_int_equal(lbk_chord_bytes(NULL), 0);
    assert_null(lbk_chord_backend(NULL, 0));
    assert_null(lbk_chord_backend(c, 0)); /* not built from a snapshot */
    assert_int_equal(lbk_chord_node_count(c), 3);
    assert_int_equal(lbk_chord_live_count(c), 2);
    assert_int_equal(lbk_chord_succ_list_len(c), 2);
    assert_true(lbk_chord_bytes(c) >= 3 * (8 + 4 * 8 + 4 * 2));
    lbk_chord_free(c);
    lbk_chord_free(NULL);
}

/* ---- allocation failure
 * ------------------------------------------------------ */

static void test_oom_create(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    uint64_t seed = 3, ids[100];
    random_ids(&seed, 64, ids, 100);
    lbk_allocator half = {fa.hook.alloc, NULL, NULL};
    lbk_chord *c = NULL;
    assert_lbk(lbk_chord_create(NULL, ids, 100, &half, &c), LBK_EINVAL);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_chord_create(NULL, ids, 100, &fa.hook, &c);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(c);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(wrong_entries(c), 0);
    /* lookups and maintenance never allocate */
    fail_alloc_reset(&fa, 0);
    lbk_chord_result res;
    assert_ok(lbk_chord_lookup(c, 0, 12345, NULL, 0, &res));
    assert_ok(lbk_chord_maintain(c, 3));
    assert_int_equal(fa.calls, 0);
    lbk_chord_free(c);
    assert_int_equal(fa.live, 0);
}

static void test_oom_build(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    assert_ok(lbk_set_add(set, "a:1", 1, NULL, &slot));
    assert_ok(lbk_set_add(set, "b:1", 1, NULL, &slot));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_allocator half = {fa.hook.alloc, NULL, NULL};
    lbk_chord *c = NULL;
    assert_lbk(lbk_chord_build(snap, NULL, &half, &c), LBK_EINVAL);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_chord_build(snap, NULL, &fa.hook, &c);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(c);
        assert_int_equal(fa.live, 0);
    }
    lbk_snapshot_release(snap);
    assert_int_equal(wrong_entries(c), 0);
    lbk_chord_free(c);
    assert_int_equal(fa.live, 0);
    lbk_set_free(set);
}

/* A join that must grow the node arrays fails cleanly: the ring, its
 * tables and its counts are exactly as before. */
static void test_oom_join(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.bits = 16;
    o.succ_list = 3;
    lbk_chord *c;
    assert_ok(lbk_chord_create(&o, NULL, 0, &fa.hook, &c));
    uint64_t seed = 9;
    uint32_t x;
    assert_ok(lbk_chord_join(c, 100, LBK_CHORD_NONE, &x));
    for (int j = 0; j < 40; j++) {
        uint64_t id = test_rand(&seed) & 0xffff;
        uint32_t via = random_live(c, &seed);
        uint32_t n_before = lbk_chord_node_count(c);
        size_t bytes_before = lbk_chord_bytes(c);
        for (long k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            long live_before = fa.live;
            int rc = lbk_chord_join(c, id, via, &x);
            if (rc == 0 || rc == LBK_EEXIST)
                break;
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(fa.live, live_before);
            assert_int_equal(lbk_chord_node_count(c), n_before);
            assert_int_equal(lbk_chord_bytes(c), bytes_before);
            assert_lbk(lbk_chord_find(c, id, &x), LBK_ENOENT);
        }
        fail_alloc_reset(&fa, -1);
        if (j % 4 == 3)
            assert_ok(lbk_chord_maintain(c, 2));
    }
    assert_ok(lbk_chord_maintain(c, 60));
    assert_int_equal(wrong_entries(c), 0);
    lbk_chord_free(c);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_m3),
        cmocka_unit_test(test_paper_m6),
        cmocka_unit_test(test_paper_m6_failures),
        cmocka_unit_test(test_random_rings),
        cmocka_unit_test(test_mean_path_length),
        cmocka_unit_test(test_path_buffer),
        cmocka_unit_test(test_join_leave_small),
        cmocka_unit_test(test_rounds_bound),
        cmocka_unit_test(test_failures_then_maintenance),
        cmocka_unit_test(test_simultaneous_failures),
        cmocka_unit_test(test_build_from_snapshot),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_leave_corners),
        cmocka_unit_test(test_build_options_and_limits),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_oom_create),
        cmocka_unit_test(test_oom_build),
        cmocka_unit_test(test_oom_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
