/*
 * tests/test_p2c.c - power of d choices: candidate sampling (chi-square),
 * the best candidate always wins, Envoy's weighted least request, peak-EWMA
 * (latency preference, decay, no flood of a new backend), health and
 * eligibility rules, every bad input, allocation failure.
 *
 * Distribution tests use fixed seeds and the chi-square critical value at a
 * false-failure rate of 1e-6 each (testutil.h chi2_critical_1e6).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/p2c.h"

__extension__ typedef unsigned __int128 u128;

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend **b;
    uint32_t n;
} fixture;

static void fx_init(fixture *f, uint32_t n, const uint32_t *w)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    f->b = calloc(n ? n : 1, sizeof(*f->b));
    assert_non_null(f->b);
    f->n = n;
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "10.1.%u.%u:80", i / 256, i % 256);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, w ? w[i] : 1, NULL, &slot));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
}

static void fx_free(fixture *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        atomic_store(&f->b[i]->in_flight, 0);
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
    free(f->b);
}

static lbk_p2c *build_with(const fixture *f, uint32_t d, double bias,
                           lbk_p2c_mode mode, bool repl, uint64_t seed)
{
    lbk_p2c_options o;
    lbk_p2c_options_init(&o);
    o.choices = d;
    o.bias = bias;
    o.mode = mode;
    o.with_replacement = repl;
    o.seed = seed;
    lbk_p2c *p = NULL;
    assert_ok(lbk_p2c_build(f->snap, &o, NULL, &p));
    return p;
}

static uint32_t index_of(const fixture *f, const lbk_backend *b)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->b[i] == b)
            return i;
    fail_msg("backend not in the fixture");
    return UINT32_MAX;
}

/* ---- bad input ---------------------------------------------------------- */

static void *null_alloc(void *u, size_t s)
{
    (void)u;
    (void)s;
    return NULL;
}

static void test_defaults_and_bad_input(void **state)
{
    (void)state;
    lbk_p2c_options o;
    memset(&o, 0xff, sizeof o);
    lbk_p2c_options_init(&o);
    assert_int_equal(o.choices, 2);
    assert_true(o.bias == 1.0);
    assert_int_equal(o.mode, LBK_P2C_LEAST_REQUEST);
    assert_false(o.with_replacement);
    assert_int_equal(o.seed, 0);
    assert_int_equal(o.decay_ns, 0);
    assert_int_equal(o.default_rtt_ns, 0);
    lbk_p2c_options_init(NULL);

    fixture f;
    fx_init(&f, 4, NULL);
    lbk_p2c *p = (lbk_p2c *)&f;
    lbk_allocator half = {null_alloc, NULL, NULL};
    assert_lbk(lbk_p2c_build(NULL, NULL, NULL, &p), LBK_EINVAL);
    assert_lbk(lbk_p2c_build(f.snap, NULL, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_p2c_build(f.snap, NULL, &half, &p), LBK_EINVAL);
    struct {
        uint32_t choices;
        double bias;
        int mode;
        int rc;
    } bad[] = {
        {0, 1.0, 0, LBK_ERANGE},      {9, 1.0, 0, LBK_ERANGE},
        {2, -0.5, 0, LBK_ERANGE},     {2, NAN, 0, LBK_ERANGE},
        {2, INFINITY, 0, LBK_ERANGE}, {2, 1.0, 2, LBK_EINVAL},
        {2, 1.0, -1, LBK_EINVAL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        lbk_p2c_options_init(&o);
        o.choices = bad[k].choices;
        o.bias = bad[k].bias;
        o.mode = (lbk_p2c_mode)bad[k].mode;
        assert_lbk(lbk_p2c_build(f.snap, &o, NULL, &p), bad[k].rc);
    }
    assert_ptr_equal(p, (lbk_p2c *)&f);

    assert_ok(lbk_p2c_build(f.snap, NULL, NULL, &p));
    lbk_backend *b = (lbk_backend *)&f;
    uint32_t idx[LBK_P2C_MAX_CHOICES], m = 77;
    assert_lbk(lbk_p2c_pick(NULL, 0, &b), LBK_EINVAL);
    assert_lbk(lbk_p2c_pick(p, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_p2c_pick_bits(NULL, 0, 1, &b), LBK_EINVAL);
    assert_lbk(lbk_p2c_pick_bits(p, 0, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_p2c_candidates(NULL, 1, idx, &m), LBK_EINVAL);
    assert_lbk(lbk_p2c_candidates(p, 1, NULL, &m), LBK_EINVAL);
    assert_lbk(lbk_p2c_candidates(p, 1, idx, NULL), LBK_EINVAL);
    assert_ptr_equal(b, (lbk_backend *)&f);
    assert_int_equal(m, 77);
    assert_null(lbk_p2c_snapshot(NULL));
    assert_ptr_equal(lbk_p2c_snapshot(p), f.snap);
    lbk_p2c_free(NULL);
    lbk_p2c_free(p);
    fx_free(&f);

    /* Empty snapshot. */
    fx_init(&f, 0, NULL);
    assert_ok(lbk_p2c_build(f.snap, NULL, NULL, &p));
    assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
    assert_lbk(lbk_p2c_candidates(p, 1, idx, &m), LBK_ENOBACKEND);
    lbk_p2c_free(p);
    fx_free(&f);
}

/* ---- candidate sampling ----------------------------------------------------
 */

/* Chi-square over `cells` equally likely outcomes, `per` expected each. */
static void assert_uniform(const long *count, uint32_t cells, double per,
                           const char *what)
{
    double chi2 = 0;
    for (uint32_t c = 0; c < cells; c++) {
        double d = (double)count[c] - per;
        chi2 += d * d / per;
    }
    double crit = chi2_critical_1e6(cells - 1);
    if (chi2 > crit)
        fail_msg("%s: chi2 %.1f > %.1f (df %u)", what, chi2, crit, cells - 1);
}

/* Every ordered tuple of d distinct indices (or of any d indices, with
 * replacement) from n is equally likely. */
static void tuples_uniform(uint32_t n, uint32_t d, bool repl, uint64_t seed)
{
    fixture f;
    fx_init(&f, n, NULL);
    lbk_p2c *p = build_with(&f, d, 1.0, LBK_P2C_LEAST_REQUEST, repl, 1);
    uint32_t cells = 1;
    for (uint32_t k = 0; k < d; k++)
        cells *= n; /* indexed base n; impossible cells stay 0 */
    uint32_t possible = 1;
    for (uint32_t k = 0; k < d; k++)
        possible *= repl ? n : n - k;
    long *count = calloc(cells, sizeof(*count));
    double per = 1000;
    uint64_t rs = seed;
    for (long s = 0; s < (long)(per * possible); s++) {
        uint32_t idx[LBK_P2C_MAX_CHOICES], m;
        assert_ok(lbk_p2c_candidates(p, test_rand(&rs), idx, &m));
        assert_int_equal(m, d);
        uint32_t cell = 0;
        for (uint32_t k = 0; k < d; k++) {
            assert_true(idx[k] < n);
            for (uint32_t j = 0; j < k && !repl; j++)
                assert_int_not_equal(idx[j], idx[k]);
            cell = cell * n + idx[k];
        }
        count[cell]++;
    }
    /* Compact to the possible cells and test. */
    long *c2 = calloc(possible, sizeof(*c2));
    uint32_t np = 0;
    for (uint32_t cell = 0; cell < cells; cell++) {
        bool ok = true;
        uint32_t digits[LBK_P2C_MAX_CHOICES], x = cell;
        for (uint32_t k = 0; k < d; k++, x /= n)
            digits[k] = x % n;
        for (uint32_t k = 0; k < d && !repl; k++)
            for (uint32_t j = 0; j < k; j++)
                ok = ok && digits[j] != digits[k];
        if (ok)
            c2[np++] = count[cell];
        else
            assert_int_equal(count[cell], 0);
    }
    assert_int_equal(np, possible);
    char what[64];
    snprintf(what, sizeof what, "n=%u d=%u %s", n, d,
             repl ? "with replacement" : "distinct");
    assert_uniform(c2, possible, per, what);
    free(c2);
    free(count);
    lbk_p2c_free(p);
    fx_free(&f);
}

static void test_candidates_uniform(void **state)
{
    (void)state;
    tuples_uniform(8, 2, false, 1);  /* 56 ordered pairs */
    tuples_uniform(8, 2, true, 2);   /* 64 */
    tuples_uniform(6, 3, false, 3);  /* 120 ordered triples */
    tuples_uniform(5, 3, true, 4);   /* 125 */
    tuples_uniform(5, 4, false, 5);  /* 120 */
    tuples_uniform(13, 1, false, 6); /* 13 */
}

/* Large n: every candidate position is uniform over all backends. */
static void test_candidates_marginals(void **state)
{
    (void)state;
    uint32_t n = 1000, d = 8;
    fixture f;
    fx_init(&f, n, NULL);
    lbk_p2c *p = build_with(&f, d, 1.0, LBK_P2C_LEAST_REQUEST, false, 1);
    long *count = calloc((size_t)n * d, sizeof(*count));
    double per = 200;
    uint64_t rs = 77;
    for (long s = 0; s < (long)(per * n); s++) {
        uint32_t idx[LBK_P2C_MAX_CHOICES], m;
        assert_ok(lbk_p2c_candidates(p, test_rand(&rs), idx, &m));
        for (uint32_t k = 0; k < d; k++)
            count[(size_t)k * n + idx[k]]++;
    }
    for (uint32_t k = 0; k < d; k++)
        assert_uniform(&count[(size_t)k * n], n, per, "marginal");
    free(count);
    lbk_p2c_free(p);
    fx_free(&f);

    /* d >= n, distinct: every backend once, in a random order. */
    fx_init(&f, 5, NULL);
    p = build_with(&f, 8, 1.0, LBK_P2C_LEAST_REQUEST, false, 1);
    long first[5] = {0};
    for (int s = 0; s < 5000; s++) {
        uint32_t idx[LBK_P2C_MAX_CHOICES], m, seen = 0;
        assert_ok(lbk_p2c_candidates(p, test_rand(&rs), idx, &m));
        assert_int_equal(m, 5);
        for (uint32_t k = 0; k < m; k++)
            seen |= 1u << idx[k];
        assert_int_equal(seen, 0x1f);
        first[idx[0]]++;
    }
    assert_uniform(first, 5, 1000, "first of a permutation");
    lbk_p2c_free(p);
    fx_free(&f);
}

/* ---- the best candidate wins ------------------------------------------------
 */

/* Score comparison as the header defines it, computed independently. */
static bool better(lbk_p2c_mode mode, double bias, double ca, double cb,
                   uint64_t ws_a, uint64_t ws_b, uint32_t nf_a, uint32_t nf_b)
{
    if (mode == LBK_P2C_PEAK_EWMA)
        return ca / (double)ws_a < cb / (double)ws_b;
    if (bias == 1.0)
        return (u128)ws_a * (nf_b + 1ull) > (u128)ws_b * (nf_a + 1ull);
    return (double)ws_a * pow(nf_a + 1.0, -bias) >
           (double)ws_b * pow(nf_b + 1.0, -bias);
}

static void best_wins(lbk_p2c_mode mode, double bias, uint32_t d)
{
    uint32_t n = 50;
    uint64_t rs = 1234 + d;
    uint32_t w[50];
    for (uint32_t i = 0; i < n; i++)
        w[i] = 1 + (uint32_t)(test_rand(&rs) % 5);
    fixture f;
    fx_init(&f, n, w);
    uint64_t now = UINT64_C(1000000000000);
    double rtt[50];
    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t k = test_rand(&rs) % 20; k > 0; k--)
            assert_ok(lbk_backend_begin(f.b[i]));
        if (i % 9 == 4)
            assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
        if (i % 11 == 3)
            assert_ok(lbk_backend_set_weight_scale(f.b[i], 0.5));
        rtt[i] = 1e5 + (double)(test_rand(&rs) % 1000000);
        assert_ok(lbk_backend_record_latency(f.b[i], (uint64_t)rtt[i], now));
    }
    lbk_p2c *p = build_with(&f, d, bias, mode, false, 9);
    int full = 0;
    for (int s = 0; s < 4000; s++) {
        uint64_t bits = test_rand(&rs);
        uint32_t idx[LBK_P2C_MAX_CHOICES], m;
        assert_ok(lbk_p2c_candidates(p, bits, idx, &m));
        int best = -1;
        uint64_t bws = 0;
        double bc = 0;
        uint32_t bnf = 0, elig = 0;
        for (uint32_t k = 0; k < m; k++) {
            const lbk_backend *b = f.b[idx[k]];
            if (!lbk_backend_eligible(b))
                continue;
            elig++;
            uint64_t ws = (uint64_t)w[idx[k]] * atomic_load(&b->weight_scale);
            uint32_t nf = lbk_backend_in_flight(b);
            double c = rtt[idx[k]] * (nf + 1.0);
            if (best < 0 || better(mode, bias, c, bc, ws, bws, nf, bnf)) {
                best = (int)idx[k];
                bws = ws;
                bc = c;
                bnf = nf;
            }
        }
        lbk_backend *got;
        assert_ok(lbk_p2c_pick_bits(p, now, bits, &got));
        uint32_t g = index_of(&f, got);
        assert_true(lbk_backend_eligible(got));
        if (elig == m) { /* no resampling: exactly the best, first on ties */
            assert_int_equal(g, best);
            full++;
        } else if (best >= 0) { /* resampled: never worse than round 0 */
            uint64_t ws = (uint64_t)w[g] * atomic_load(&got->weight_scale);
            uint32_t nf = lbk_backend_in_flight(got);
            assert_false(
                better(mode, bias, bc, rtt[g] * (nf + 1.0), bws, ws, bnf, nf));
        }
    }
    assert_true(full > 1000);
    lbk_p2c_free(p);
    fx_free(&f);
}

static void test_best_candidate_wins(void **state)
{
    (void)state;
    for (uint32_t d = 1; d <= 4; d++) {
        best_wins(LBK_P2C_LEAST_REQUEST, 1.0, d);
        best_wins(LBK_P2C_LEAST_REQUEST, 0.5, d);
        best_wins(LBK_P2C_LEAST_REQUEST, 2.5, d);
        best_wins(LBK_P2C_PEAK_EWMA, 1.0, d);
    }
}

/* Envoy: effective weight w / (in_flight + 1)^bias.  Two backends of weight
 * 1 and 3, both candidates every time, requests never finish. */
static void test_envoy_weighted(void **state)
{
    (void)state;
    uint32_t w[2] = {1, 3};
    struct {
        double bias;
        uint32_t expect_light; /* of 400 */
        uint32_t slack;
    } cases[] = {
        {1.0, 100, 1}, /* (n+1)/1 = (m+1)/3: 1:3 */
        {0.0, 0, 0},   /* load ignored: always the heavier */
        {2.0, 146, 2}, /* (m+1)/(n+1) = sqrt(3): n = 146.4 */
        {0.5, 39, 2},  /* (m+1)/(n+1) = 9: 400 = n + 9n + 8 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        fixture f;
        fx_init(&f, 2, w);
        lbk_p2c *p =
            build_with(&f, 2, cases[c].bias, LBK_P2C_LEAST_REQUEST, false, 5);
        for (int k = 0; k < 400; k++) {
            lbk_backend *b;
            assert_ok(lbk_p2c_pick(p, 0, &b));
            assert_ok(lbk_backend_begin(b));
        }
        long light = lbk_backend_in_flight(f.b[0]);
        if (labs(light - (long)cases[c].expect_light) > (long)cases[c].slack)
            fail_msg("bias %.1f: light backend got %ld, expected %u",
                     cases[c].bias, light, cases[c].expect_light);
        lbk_p2c_free(p);
        fx_free(&f);
    }
}

/* d = 1 is uniform random; equal loads with d = 2 too (ties go to the first
 * candidate drawn). */
static void test_pick_uniform_when_idle(void **state)
{
    (void)state;
    for (uint32_t d = 1; d <= 2; d++) {
        fixture f;
        fx_init(&f, 20, NULL);
        lbk_p2c *p =
            build_with(&f, d, 1.0, LBK_P2C_LEAST_REQUEST, false, 100 + d);
        long count[20] = {0};
        for (int s = 0; s < 20 * 1000; s++) {
            lbk_backend *b;
            assert_ok(lbk_p2c_pick(p, 0, &b));
            count[index_of(&f, b)]++;
        }
        assert_uniform(count, 20, 1000, "idle picks");
        lbk_p2c_free(p);
        fx_free(&f);
    }
}

/* Same seed, same picks; pick == pick_bits on the generator's stream. */
static void test_deterministic(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 100, NULL);
    lbk_p2c *a = build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, false, 42);
    lbk_p2c *b = build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, false, 42);
    lbk_p2c *c = build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, false, 43);
    int same_c = 0;
    for (int s = 0; s < 100; s++) {
        lbk_backend *x, *y, *z;
        assert_ok(lbk_p2c_pick(a, 0, &x));
        assert_ok(lbk_p2c_pick(b, 0, &y));
        assert_ok(lbk_p2c_pick(c, 0, &z));
        assert_ptr_equal(x, y);
        same_c += x == z;
    }
    assert_true(same_c < 15);
    lbk_p2c_free(a);
    lbk_p2c_free(b);
    lbk_p2c_free(c);
    fx_free(&f);
}

/* ---- peak-EWMA
 * ---------------------------------------------------------------- */

static const uint64_t MS = 1000000, SEC = 1000000000;

static void test_peak_ewma_prefers_fast(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 10, NULL);
    uint64_t now = 100 * SEC;
    for (uint32_t i = 0; i < 10; i++)
        assert_ok(
            lbk_backend_record_latency(f.b[i], i == 3 ? 10 * MS : MS, now));
    lbk_p2c *p = build_with(&f, 2, 1.0, LBK_P2C_PEAK_EWMA, false, 3);
    /* Idle: the slow one loses every comparison it is in. */
    for (int k = 0; k < 2000; k++) {
        lbk_backend *b;
        assert_ok(lbk_p2c_pick(p, now, &b));
        assert_ptr_not_equal(b, f.b[3]);
    }
    /* With load: picks still favour the fast ones heavily.  Requests never
     * finish; the slow one is chosen only once a fast candidate has more
     * than 9 in flight. */
    for (int k = 0; k < 900; k++) {
        lbk_backend *b;
        assert_ok(lbk_p2c_pick(p, now, &b));
        assert_ok(lbk_backend_begin(b));
    }
    assert_true(lbk_backend_in_flight(f.b[3]) < 30);
    for (uint32_t i = 0; i < 10; i++)
        if (i != 3)
            assert_true(lbk_backend_in_flight(f.b[i]) >
                        lbk_backend_in_flight(f.b[3]));
    lbk_p2c_free(p);
    fx_free(&f);

    /* Decay: slow sample at t0, fast at t0 + 30 s; tau = 10 s, so at
     * t0 + 30 s the slow estimate is 10 ms * e^-3 = 0.50 ms < 1 ms.  With
     * decay_ns 100 s it is still 7.4 ms: the fast one wins. */
    for (int v = 0; v < 2; v++) {
        fx_init(&f, 2, NULL);
        assert_ok(lbk_backend_record_latency(f.b[0], 10 * MS, 10 * SEC));
        assert_ok(lbk_backend_record_latency(f.b[1], MS, 40 * SEC));
        lbk_p2c_options o;
        lbk_p2c_options_init(&o);
        o.mode = LBK_P2C_PEAK_EWMA;
        o.seed = 8;
        o.decay_ns = v == 0 ? 0 : 100 * SEC;
        lbk_p2c *q;
        assert_ok(lbk_p2c_build(f.snap, &o, NULL, &q));
        for (int k = 0; k < 20; k++) {
            lbk_backend *b;
            assert_ok(lbk_p2c_pick(q, 40 * SEC, &b));
            assert_ptr_equal(b, f.b[v == 0 ? 0 : 1]);
        }
        lbk_p2c_free(q);
        fx_free(&f);
    }
}

/* A backend with no latency history gets one request at a time (Finagle's
 * penalty), not a flood; with default_rtt_ns it is treated like the rest. */
static void test_peak_ewma_no_flood(void **state)
{
    (void)state;
    for (int v = 0; v < 2; v++) {
        fixture f;
        fx_init(&f, 10, NULL);
        uint64_t now = 5 * SEC;
        for (uint32_t i = 1; i < 10; i++)
            assert_ok(lbk_backend_record_latency(f.b[i], 20 * MS, now));
        lbk_p2c_options o;
        lbk_p2c_options_init(&o);
        o.mode = LBK_P2C_PEAK_EWMA;
        o.seed = 12;
        o.default_rtt_ns = v == 0 ? 0 : 20 * MS;
        lbk_p2c *p;
        assert_ok(lbk_p2c_build(f.snap, &o, NULL, &p));
        uint32_t max_new = 0, picked_new = 0;
        for (int k = 0; k < 900; k++) {
            lbk_backend *b;
            assert_ok(lbk_p2c_pick(p, now, &b));
            assert_ok(lbk_backend_begin(b));
            picked_new += b == f.b[0];
            uint32_t nf = lbk_backend_in_flight(f.b[0]);
            max_new = nf > max_new ? nf : max_new;
        }
        if (v == 0) {
            assert_int_equal(max_new, 1); /* probed, never flooded */
            assert_int_equal(picked_new, 1);
        } else {
            /* Same assumed rtt as the others: its fair share, about 90. */
            assert_true(picked_new > 60 && picked_new < 120);
        }
        /* Once it answers, it competes on its latency. */
        if (v == 0) {
            assert_ok(lbk_backend_end(f.b[0]));
            assert_ok(lbk_backend_record_latency(f.b[0], MS, now));
            lbk_backend *b;
            int got = 0;
            for (int k = 0; k < 200; k++) {
                assert_ok(lbk_p2c_pick(p, now, &b));
                assert_ok(lbk_backend_begin(b));
                got += b == f.b[0];
            }
            /* A candidate in 1/5 of picks, and then always the best. */
            assert_true(got >= 20);
        }
        lbk_p2c_free(p);
        fx_free(&f);
    }
}

/* ---- health and eligibility
 * ---------------------------------------------------- */

static void test_health_and_eligibility(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        fixture f;
        fx_init(&f, 2, NULL);
        lbk_p2c *p =
            build_with(&f, 2, 1.0, (lbk_p2c_mode)mode, false, 20 + mode);
        lbk_backend *b;
        /* b[1] down: only b[0], at the very next pick, whatever its load. */
        for (int k = 0; k < 5; k++)
            assert_ok(lbk_backend_begin(f.b[0]));
        assert_ok(lbk_backend_set_health(f.b[1], LBK_HEALTH_DOWN));
        for (int k = 0; k < 50; k++) {
            assert_ok(lbk_p2c_pick(p, 0, &b));
            assert_ptr_equal(b, f.b[0]);
        }
        /* Each way of not taking traffic. */
        assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DRAINING));
        assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
        assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_UP));
        assert_ok(lbk_backend_set_ejected(f.b[0], true));
        assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
        assert_ok(lbk_backend_set_ejected(f.b[0], false));
        assert_ok(lbk_backend_set_weight_scale(f.b[0], 0.0));
        assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
        /* Back up: the next pick takes it. */
        assert_ok(lbk_backend_set_health(f.b[1], LBK_HEALTH_UP));
        assert_ok(lbk_p2c_pick(p, 0, &b));
        assert_ptr_equal(b, f.b[1]);
        lbk_p2c_free(p);
        fx_free(&f);
    }
    /* One backend, with and without replacement. */
    fixture f;
    for (int repl = 0; repl < 2; repl++) {
        fx_init(&f, 1, NULL);
        lbk_p2c *p =
            build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, repl, 30 + repl);
        lbk_backend *b;
        assert_ok(lbk_p2c_pick(p, 0, &b));
        assert_ptr_equal(b, f.b[0]);
        assert_ok(lbk_backend_set_health(f.b[0], LBK_HEALTH_DOWN));
        assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
        lbk_p2c_free(p);
        fx_free(&f);
    }
    /* All weight 0. */
    uint32_t zero[3] = {0, 0, 0};
    fx_init(&f, 3, zero);
    lbk_p2c *p = build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, true, 1);
    lbk_backend *b;
    assert_lbk(lbk_p2c_pick(p, 0, &b), LBK_ENOBACKEND);
    lbk_p2c_free(p);
    fx_free(&f);

    /* 1000 backends, a few eligible: resampling then the scan always find
     * one, and only eligible ones; the lone survivor every time. */
    fx_init(&f, 1000, NULL);
    for (uint32_t i = 0; i < 1000; i++)
        if (i % 100 != 7)
            assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
    for (int repl = 0; repl < 2; repl++) {
        p = build_with(&f, 2, 1.0, LBK_P2C_LEAST_REQUEST, repl, 2);
        for (int k = 0; k < 2000; k++) {
            assert_ok(lbk_p2c_pick(p, 0, &b));
            assert_int_equal(index_of(&f, b) % 100, 7);
        }
        for (uint32_t i = 107; i < 1000; i += 100)
            assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_DOWN));
        for (int k = 0; k < 100; k++) {
            assert_ok(lbk_p2c_pick(p, 0, &b));
            assert_ptr_equal(b, f.b[7]);
        }
        for (uint32_t i = 107; i < 1000; i += 100)
            assert_ok(lbk_backend_set_health(f.b[i], LBK_HEALTH_UP));
        lbk_p2c_free(p);
    }
    fx_free(&f);
}

/* ---- allocation failure -----------------------------------------------------
 */

static void test_alloc_failure(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f, 10, NULL);
    fail_alloc fa;
    fail_alloc_init(&fa);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        lbk_p2c *p = (lbk_p2c *)&fa;
        int rc = lbk_p2c_build(f.snap, NULL, &fa.hook, &p);
        if (rc == 0) {
            assert_true(k >= 1);
            lbk_backend *b;
            assert_ok(lbk_p2c_pick(p, 0, &b));
            lbk_p2c_free(p);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_ptr_equal(p, (lbk_p2c *)&fa);
        assert_int_equal(atomic_load(&fa.live), 0);
    }
    assert_int_equal(atomic_load(&fa.live), 0);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_bad_input),
        cmocka_unit_test(test_candidates_uniform),
        cmocka_unit_test(test_candidates_marginals),
        cmocka_unit_test(test_best_candidate_wins),
        cmocka_unit_test(test_envoy_weighted),
        cmocka_unit_test(test_pick_uniform_when_idle),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_peak_ewma_prefers_fast),
        cmocka_unit_test(test_peak_ewma_no_flood),
        cmocka_unit_test(test_health_and_eligibility),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
