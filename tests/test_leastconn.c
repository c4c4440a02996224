/*
 * tests/test_leastconn.c - least-connections: exact minima, tie spreading,
 * weights and weight scale, health at the next pick, external begin/end,
 * every bad input, allocation failure.  (Threads: test_load_concurrency.c.)
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/leastconn.h"

__extension__ typedef unsigned __int128 u128;

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend **b;
    uint32_t n;
} fixture;

/* A set of n backends with the given weights (NULL: all 1), snapshotted. */
static void fx_init(fixture *f, uint32_t n, const uint32_t *w)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    f->b = calloc(n ? n : 1, sizeof(*f->b));
    assert_non_null(f->b);
    f->n = n;
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "10.0.%u.%u:80", i / 256, i % 256);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, w ? w[i] : 1, NULL, &slot));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
}

static void fx_free(fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
    free(f->b);
}

static lbk_leastconn *build(const fixture *f, uint64_t seed)
{
    lbk_leastconn_options o;
    lbk_leastconn_options_init(&o);
    o.seed = seed;
    lbk_leastconn *lc = NULL;
    assert_ok(lbk_leastconn_build(f->snap, &o, NULL, &lc));
    return lc;
}

static uint32_t index_of(const fixture *f, const lbk_backend *b)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->b[i] == b)
            return i;
    fail_msg("backend %p not in the fixture", (const void *)b);
    return UINT32_MAX;
}

/* Load of i as a fraction nf / ws; ws 0 = not eligible. */
static void load_of(const fixture *f, uint32_t i, uint64_t *nf, uint64_t *ws)
{
    const lbk_backend *b = f->b[i];
    uint64_t scale = atomic_load(&b->weight_scale);
    *nf = lbk_backend_in_flight(b);
    *ws = lbk_backend_eligible(b)
              ? (uint64_t)lbk_snapshot_weight(f->snap, i) * scale
              : 0;
}

/* The chosen backend's load before the pick was minimal among eligible. */
static void assert_minimal(const fixture *f, uint32_t c, uint64_t c_nf)
{
    uint64_t nf, ws, c_ws;
    load_of(f, c, &nf, &c_ws);
    assert_true(c_ws > 0);
    for (uint32_t i = 0; i < f->n; i++) {
        if (i == c)
            continue;
        load_of(f, i, &nf, &ws);
        if (ws == 0)
            continue;
        /* c_nf / c_ws <= nf / ws */
        if ((u128)c_nf * ws > (u128)nf * c_ws)
            fail_msg("picked %u (%llu/%llu) but %u has %llu/%llu", c,
                     (unsigned long long)c_nf, (unsigned long long)c_ws, i,
                     (unsigned long long)nf, (unsigned long long)ws);
    }
}

/* ---- bad input ---------------------------------------------------------- */

static void *null_alloc(void *u, size_t s)
{
    (void)u;
    (void)s;
    return NULL;
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 4, NULL);
    lbk_leastconn *lc = (lbk_leastconn *)&f; /* must stay untouched */
    lbk_allocator half = {null_alloc, NULL, NULL};
    assert_lbk(lbk_leastconn_build(NULL, NULL, NULL, &lc), LBK_EINVAL);
    assert_lbk(lbk_leastconn_build(f.snap, NULL, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_leastconn_build(f.snap, NULL, &half, &lc), LBK_EINVAL);
    assert_ptr_equal(lc, (lbk_leastconn *)&f);

    lc = build(&f, 1);
    lbk_backend *b = (lbk_backend *)&f;
    assert_lbk(lbk_leastconn_pick(NULL, &b), LBK_EINVAL);
    assert_lbk(lbk_leastconn_pick(lc, NULL), LBK_EINVAL);
    assert_ptr_equal(b, (lbk_backend *)&f);
    assert_lbk(lbk_leastconn_release(NULL, f.b[0]), LBK_EINVAL);
    assert_lbk(lbk_leastconn_release(lc, NULL), LBK_EINVAL);
    /* Nothing in flight: ESTATE and the count stays 0. */
    assert_lbk(lbk_leastconn_release(lc, f.b[0]), LBK_ESTATE);
    assert_int_equal(lbk_backend_in_flight(f.b[0]), 0);
    assert_lbk(lbk_leastconn_refresh(NULL), LBK_EINVAL);
    assert_null(lbk_leastconn_snapshot(NULL));
    assert_ptr_equal(lbk_leastconn_snapshot(lc), f.snap);
    lbk_leastconn_options_init(NULL);
    lbk_leastconn_free(NULL);

    /* EOVERFLOW: the only backend is saturated; nothing changes. */
    fixture g;
    fx_init(&g, 1, NULL);
    lbk_leastconn *one = build(&g, 2);
    atomic_store(&g.b[0]->in_flight, UINT32_MAX);
    b = NULL;
    assert_lbk(lbk_leastconn_pick(one, &b), LBK_EOVERFLOW);
    assert_null(b);
    assert_int_equal(lbk_backend_in_flight(g.b[0]), UINT32_MAX);
    atomic_store(&g.b[0]->in_flight, 0);
    lbk_leastconn_free(one);
    fx_free(&g);

    lbk_leastconn_free(lc);
    fx_free(&f);
}

static void test_empty_and_nothing_eligible(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 0, NULL);
    lbk_leastconn *lc = build(&f, 3);
    lbk_backend *b = NULL;
    assert_lbk(lbk_leastconn_pick(lc, &b), LBK_ENOBACKEND);
    assert_ok(lbk_leastconn_refresh(lc));
    lbk_leastconn_free(lc);
    fx_free(&f);

    /* All weight 0. */
    uint32_t zero[5] = {0, 0, 0, 0, 0};
    fx_init(&f, 5, zero);
    lc = build(&f, 4);
    assert_lbk(lbk_leastconn_pick(lc, &b), LBK_ENOBACKEND);
    lbk_leastconn_free(lc);
    fx_free(&f);

    /* All down, drained, ejected or scaled to 0, in every combination. */
    fx_init(&f, 4, NULL);
    lc = build(&f, 5);
    assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_health(f.b[1], LBK_HEALTH_DRAINING));
    assert_ok(lbk_backend_set_ejected(f.b[2], true));
    assert_ok(lbk_backend_set_weight_scale(f.b[3], 0.0));
    assert_lbk(lbk_leastconn_pick(lc, &b), LBK_ENOBACKEND);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(lbk_backend_in_flight(f.b[i]), 0);
    /* One recovers: honoured at the very next pick. */
    assert_ok(lbk_backend_set_ejected(f.b[2], false));
    assert_ok(lbk_leastconn_pick(lc, &b));
    assert_ptr_equal(b, f.b[2]);
    assert_ok(lbk_leastconn_release(lc, b));
    lbk_leastconn_free(lc);
    fx_free(&f);
}

/* ---- exact behaviour ------------------------------------------------------
 */

/*
 * Random picks and releases (and down-flips, honoured at the next pick)
 * on trees of 1 to 3 inner levels; every pick must return a backend whose
 * load was minimal just before it.
 */
static void exact_run(uint32_t n, uint64_t seed, bool weighted)
{
    uint64_t rs = seed;
    uint32_t *w = calloc(n, sizeof(*w));
    for (uint32_t i = 0; i < n; i++)
        w[i] = weighted ? 1 + (uint32_t)(test_rand(&rs) % 10) : 1;
    fixture f;
    fx_init(&f, n, w);
    if (weighted) /* slow start on a few: scale is part of the weight */
        for (uint32_t i = 0; i < n; i += 7)
            assert_ok(lbk_backend_set_weight_scale(f.b[i], 0.25));
    lbk_leastconn *lc = build(&f, seed);
    lbk_backend **out = malloc(4 * n * sizeof(*out));
    uint32_t nout = 0;
    for (int step = 0; step < 20000; step++) {
        uint64_t r = test_rand(&rs) % 100;
        if (r < 55 && nout < 4 * n) {
            lbk_backend *b;
            int rc = lbk_leastconn_pick(lc, &b);
            if (rc == LBK_ENOBACKEND) {
                for (uint32_t i = 0; i < n; i++)
                    assert_false(lbk_backend_eligible(f.b[i]) &&
                                 lbk_snapshot_weight(f.snap, i) > 0);
                continue;
            }
            assert_ok(rc);
            uint32_t c = index_of(&f, b);
            assert_minimal(&f, c, lbk_backend_in_flight(b) - 1);
            out[nout++] = b;
        } else if (r < 98 && nout > 0) {
            uint32_t k = (uint32_t)(test_rand(&rs) % nout);
            assert_ok(lbk_leastconn_release(lc, out[k]));
            out[k] = out[--nout];
        } else {
            /* Down-flips are honoured at the next pick; up-flips after a
             * refresh (or the sweep, tested separately). */
            uint32_t i = (uint32_t)(test_rand(&rs) % n);
            bool down = lbk_backend_health(f.b[i]) == LBK_HEALTH_UP;
            assert_ok(lbk_backend_set_health(f.b[i], down ? LBK_HEALTH_DOWN
                                                          : LBK_HEALTH_UP));
            if (!down)
                assert_ok(lbk_leastconn_refresh(lc));
        }
    }
    while (nout > 0)
        assert_ok(lbk_leastconn_release(lc, out[--nout]));
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(lbk_backend_in_flight(f.b[i]), 0);
    free(out);
    lbk_leastconn_free(lc);
    fx_free(&f);
    free(w);
}

static void test_exact_minimum(void **state)
{
    (void)state;
    uint32_t sizes[] = {1, 2, 7, 8, 9, 37, 64, 65, 600};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        exact_run(sizes[s], 100 + s, false);
        exact_run(sizes[s], 200 + s, true);
    }
}

/* Without releases, weights 1:2:3 get exactly 1:2:3 of the requests. */
static void test_weights_exact(void **state)
{
    (void)state;
    uint32_t w[3] = {1, 2, 3};
    fixture f;
    fx_init(&f, 3, w);
    lbk_leastconn *lc = build(&f, 7);
    for (int k = 1; k <= 100; k++) {
        for (int j = 0; j < 6; j++) {
            lbk_backend *b;
            assert_ok(lbk_leastconn_pick(lc, &b));
        }
        assert_int_equal(lbk_backend_in_flight(f.b[0]), k);
        assert_int_equal(lbk_backend_in_flight(f.b[1]), 2 * k);
        assert_int_equal(lbk_backend_in_flight(f.b[2]), 3 * k);
    }
    for (uint32_t i = 0; i < 3; i++)
        while (lbk_backend_in_flight(f.b[i]) > 0)
            assert_ok(lbk_leastconn_release(lc, f.b[i]));
    lbk_leastconn_free(lc);
    fx_free(&f);
}

/*
 * Ties: with every backend idle and each request released at once, the
 * picks are spread uniformly (for N a power of 8 the tie-breaking descent is
 * exactly uniform): chi-square, false-failure rate 1e-6 per case.  Without
 * releases, N picks give every backend exactly one.
 */
static void test_ties_spread(void **state)
{
    (void)state;
    uint32_t sizes[] = {8, 64, 512};
    for (size_t s = 0; s < 3; s++) {
        uint32_t n = sizes[s];
        fixture f;
        fx_init(&f, n, NULL);
        lbk_leastconn *lc = build(&f, 11 + s);
        uint32_t per = 200;
        long *count = calloc(n, sizeof(*count));
        for (uint32_t k = 0; k < n * per; k++) {
            lbk_backend *b;
            assert_ok(lbk_leastconn_pick(lc, &b));
            count[index_of(&f, b)]++;
            assert_ok(lbk_leastconn_release(lc, b));
        }
        double chi2 = 0;
        for (uint32_t i = 0; i < n; i++) {
            double d = (double)count[i] - per;
            chi2 += d * d / per;
        }
        if (chi2 > chi2_critical_1e6(n - 1))
            fail_msg("n=%u chi2 %.1f > %.1f", n, chi2,
                     chi2_critical_1e6(n - 1));
        /* N picks without release: one each. */
        for (uint32_t k = 0; k < n; k++) {
            lbk_backend *b;
            assert_ok(lbk_leastconn_pick(lc, &b));
        }
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(lbk_backend_in_flight(f.b[i]), 1);
            assert_ok(lbk_leastconn_release(lc, f.b[i]));
        }
        free(count);
        lbk_leastconn_free(lc);
        fx_free(&f);
    }
}

/* Two pickers with different seeds break ties in different orders. */
static void test_seeds_differ(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 64, NULL);
    lbk_leastconn *a = build(&f, 1), *b = build(&f, 2);
    int same = 0;
    for (int k = 0; k < 32; k++) {
        lbk_backend *x, *y;
        assert_ok(lbk_leastconn_pick(a, &x));
        assert_ok(lbk_leastconn_release(a, x));
        assert_ok(lbk_leastconn_pick(b, &y));
        assert_ok(lbk_leastconn_release(b, y));
        same += x == y;
    }
    /* 32 independent uniform draws from 64 agree ~0.5 times; >= 12
     * agreements has probability < 1e-9. */
    assert_true(same < 12);
    lbk_leastconn_free(a);
    lbk_leastconn_free(b);
    fx_free(&f);
}

/* ---- live state behind the picker's back ----------------------------------
 */

static void test_health_next_pick(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 16, NULL);
    lbk_leastconn *lc = build(&f, 21);
    lbk_backend *b;
    /* Take the one idle backend down: the next pick must not return it. */
    for (int k = 0; k < 15; k++)
        assert_ok(lbk_leastconn_pick(lc, &b));
    uint32_t idle = UINT32_MAX;
    for (uint32_t i = 0; i < 16; i++)
        if (lbk_backend_in_flight(f.b[i]) == 0)
            idle = i;
    assert_int_not_equal(idle, UINT32_MAX);
    assert_ok(lbk_backend_set_health(f.b[idle], LBK_HEALTH_DOWN));
    assert_ok(lbk_leastconn_pick(lc, &b));
    assert_ptr_not_equal(b, f.b[idle]);
    assert_int_equal(lbk_backend_in_flight(b), 2);
    /* Many at once: none of them is returned by the next 1000 picks. */
    for (uint32_t i = 0; i < 16; i += 2)
        assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
    for (int k = 0; k < 1000; k++) {
        assert_ok(lbk_leastconn_pick(lc, &b));
        uint32_t i = index_of(&f, b);
        assert_true(i % 2 == 1 && i != idle);
        assert_ok(lbk_leastconn_release(lc, b));
    }
    /* Up again: seen by the sweep within P = 16 picks, at once with a
     * refresh.  f.b[idle] has 0 in flight, everyone else >= 1. */
    assert_ok(lbk_backend_set_health(f.b[idle], LBK_HEALTH_UP));
    bool seen = false;
    for (int k = 0; k < 17 && !seen; k++) {
        assert_ok(lbk_leastconn_pick(lc, &b));
        seen = b == f.b[idle];
        assert_ok(lbk_leastconn_release(lc, b));
    }
    assert_true(seen);
    lbk_leastconn_free(lc);
    for (uint32_t i = 0; i < 16; i++)
        atomic_store(&f.b[i]->in_flight, 0);
    fx_free(&f);
}

/* Counts changed through lbk_backend_begin/end: the counters are the truth. */
static void test_external_counts(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 100, NULL);
    lbk_leastconn *lc = build(&f, 31);
    lbk_backend *b;
    for (int k = 0; k < 99; k++)
        assert_ok(lbk_leastconn_pick(lc, &b));
    uint32_t idle = UINT32_MAX;
    for (uint32_t i = 0; i < 100; i++)
        if (lbk_backend_in_flight(f.b[i]) == 0)
            idle = i;
    /* Worse behind our back: the pick lands on it, notices, goes on. */
    assert_ok(lbk_backend_begin(f.b[idle]));
    assert_ok(lbk_backend_begin(f.b[idle]));
    assert_ok(lbk_leastconn_pick(lc, &b));
    assert_ptr_not_equal(b, f.b[idle]);
    assert_int_equal(lbk_backend_in_flight(b), 2);
    /* Better behind our back: seen within P = 128 picks (the sweep). */
    uint32_t busy = index_of(&f, b);
    assert_ok(lbk_backend_end(b));
    assert_ok(lbk_backend_end(b));
    int picks = 0;
    do {
        assert_ok(lbk_leastconn_pick(lc, &b));
        assert_ok(lbk_leastconn_release(lc, b));
        picks++;
    } while (b != f.b[busy] && picks < 129);
    assert_ptr_equal(b, f.b[busy]);
    /* A rebuilt picker starts from the live counts. */
    lbk_leastconn *lc2 = build(&f, 32);
    assert_ok(lbk_leastconn_pick(lc2, &b));
    assert_ptr_equal(b, f.b[busy]);
    assert_ok(lbk_leastconn_release(lc2, b));
    lbk_leastconn_free(lc2);
    /* And refresh makes everything current at once. */
    for (uint32_t i = 0; i < 100; i++)
        while (lbk_backend_in_flight(f.b[i]) > 0)
            assert_ok(lbk_backend_end(f.b[i]));
    for (uint32_t i = 1; i < 100; i++)
        assert_ok(lbk_backend_begin(f.b[i]));
    assert_ok(lbk_leastconn_refresh(lc));
    assert_ok(lbk_leastconn_pick(lc, &b));
    assert_ptr_equal(b, f.b[0]);
    for (uint32_t i = 0; i < 100; i++)
        while (lbk_backend_in_flight(f.b[i]) > 0)
            assert_ok(lbk_leastconn_release(lc, f.b[i]));
    lbk_leastconn_free(lc);
    fx_free(&f);
}

/* A request begun through an old picker ends through its replacement, even
 * when its backend is no longer listed. */
static void test_release_across_rebuild(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 3, NULL);
    lbk_leastconn *old = build(&f, 41);
    lbk_backend *b;
    assert_ok(lbk_leastconn_pick(old, &b));
    assert_ok(lbk_set_remove(f.set, lbk_backend_slot(b)));
    const lbk_snapshot *snap2;
    assert_ok(lbk_set_snapshot(f.set, &snap2));
    lbk_leastconn *lc = NULL;
    assert_ok(lbk_leastconn_build(snap2, NULL, NULL, &lc));
    lbk_snapshot_release(snap2); /* lc keeps its own reference */
    assert_int_equal(lbk_snapshot_count(lbk_leastconn_snapshot(lc)), 2);
    assert_ok(lbk_leastconn_release(lc, b));
    assert_int_equal(lbk_backend_in_flight(b), 0);
    for (int k = 0; k < 10; k++) {
        lbk_backend *c;
        assert_ok(lbk_leastconn_pick(lc, &c));
        assert_ptr_not_equal(c, b);
        assert_ok(lbk_leastconn_release(lc, c));
    }
    lbk_leastconn_free(lc);
    lbk_leastconn_free(old);
    fx_free(&f);
}

/* ---- allocation failure ---------------------------------------------------
 */

static void test_alloc_failure(void **state)
{
    (void)state;
    uint32_t sizes[] = {0, 1, 1000};
    for (size_t s = 0; s < 3; s++) {
        fixture f;
        fx_init(&f, sizes[s], NULL);
        fail_alloc fa;
        fail_alloc_init(&fa);
        for (long k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            lbk_leastconn *lc = (lbk_leastconn *)&fa;
            int rc = lbk_leastconn_build(f.snap, NULL, &fa.hook, &lc);
            if (rc == 0) {
                assert_true(k >= 1); /* there is at least one site */
                lbk_backend *b;
                if (sizes[s] > 0) {
                    assert_ok(lbk_leastconn_pick(lc, &b));
                    assert_ok(lbk_leastconn_release(lc, b));
                }
                lbk_leastconn_free(lc);
                break;
            }
            assert_lbk(rc, LBK_ENOMEM);
            assert_ptr_equal(lc, (lbk_leastconn *)&fa);
            assert_int_equal(atomic_load(&fa.live), 0);
            assert_int_equal(atomic_load(&fa.failures), 1);
        }
        assert_int_equal(atomic_load(&fa.live), 0);
        fx_free(&f);
    }
}

/* Releasing requests the picker did not hand out: on a backend added to
 * the set after the build (its slot is past every slot the picker knows),
 * on a backend of weight 0 (in the snapshot, not in the tree) and on a
 * backend of another set in a known slot, each begun directly.  The in-flight
 * count goes back down, the picker's own backends are untouched and it keeps
 * picking the least loaded. */
static void test_release_foreign_requests(void **state)
{
    (void)state;
    const uint32_t w[3] = {1, 1, 0};
    fixture f;
    fx_init(&f, 3, w);
    lbk_leastconn *lc = build(&f, 5);
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "10.9.9.9:80", 1, NULL, &slot));
    lbk_backend *late = lbk_set_backend(f.set, slot);
    lbk_backend *zero = f.b[2];
    assert_ok(lbk_backend_begin(late));
    assert_ok(lbk_backend_begin(zero));
    assert_ok(lbk_leastconn_release(lc, late));
    assert_ok(lbk_leastconn_release(lc, zero));
    assert_int_equal(lbk_backend_in_flight(late), 0);
    assert_int_equal(lbk_backend_in_flight(zero), 0);
    /* a backend of another set in a slot the picker knows */
    fixture g;
    fx_init(&g, 1, NULL);
    assert_ok(lbk_backend_begin(g.b[0]));
    assert_ok(lbk_leastconn_release(lc, g.b[0]));
    assert_int_equal(lbk_backend_in_flight(g.b[0]), 0);
    fx_free(&g);
    /* not in flight any more: refused, nothing changed */
    assert_lbk(lbk_leastconn_release(lc, late), LBK_ESTATE);
    lbk_backend *a, *b;
    assert_ok(lbk_leastconn_pick(lc, &a));
    assert_ok(lbk_leastconn_pick(lc, &b));
    assert_ptr_not_equal(a, b); /* one each: the least loaded */
    assert_true(a == f.b[0] || a == f.b[1]);
    assert_true(b == f.b[0] || b == f.b[1]);
    assert_ok(lbk_leastconn_release(lc, a));
    assert_ok(lbk_leastconn_release(lc, b));
    lbk_leastconn_free(lc);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_foreign_requests),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_empty_and_nothing_eligible),
        cmocka_unit_test(test_exact_minimum),
        cmocka_unit_test(test_weights_exact),
        cmocka_unit_test(test_ties_spread),
        cmocka_unit_test(test_seeds_differ),
        cmocka_unit_test(test_health_next_pick),
        cmocka_unit_test(test_external_counts),
        cmocka_unit_test(test_release_across_rebuild),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
