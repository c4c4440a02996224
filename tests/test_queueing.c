/*
 * tests/test_queueing.c - queueing estimators: the published worked
 * examples, points computed independently with mpmath at 50 digits,
 * M/M/1 closed forms, the identities between metrics, monotonicity, the
 * waiting-time distribution against numerical integration, quantiles
 * inverting the tails, sizing minimality, sizing never answering an N its
 * evaluation function rejects (extreme rates), clean underflow, and every
 * documented error on bad input.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/queueing.h"

/* |got - want| <= tol * |want|, printing both. */
#define assert_rel(got, want, tol)                                             \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        double e_ = fabs(g_ - w_) / fabs(w_);                                  \
        if (!(e_ <= (tol)))                                                    \
            fail_msg("%s = %.17g, want %.17g (rel err %.3g > %.3g)", #got, g_, \
                     w_, e_, (double)(tol));                                   \
    } while (0)

static void assert_clean_prob(double p)
{
    assert_false(isnan(p));
    assert_true(p == 0 || (p >= DBL_MIN && p <= 1));
}

/* pyworkforce / R ErlangC: 100 calls per 30 min, 3 min handling time,
 * 14 agents, 20 s target (REFERENCES.md).  Rates per second. */
static void test_pyworkforce_example(void **state)
{
    (void)state;
    double lambda = 100.0 / 1800.0, mu = 1.0 / 180.0;
    lbk_mmn_metrics m;
    assert_ok(lbk_mmn_evaluate(lambda, mu, 14, &m));
    assert_int_equal(m.servers, 14);
    assert_rel(m.offered_load, 10.0, 1e-15);
    assert_rel(m.p_wait, 0.1741319335950498, 1e-14);
    assert_rel(m.mean_wait, 7.83593701177724, 1e-14);
    assert_rel(m.utilization, 0.7142857142857143, 1e-15);
    double sl, p;
    assert_ok(lbk_mmn_service_level(lambda, mu, 14, 20, &sl));
    assert_rel(sl, 0.8883500191794669, 1e-14);
    assert_ok(lbk_mmn_wait_exceeds(lambda, mu, 14, 20, &p));
    assert_rel(p, 1 - 0.8883500191794669, 1e-13);
    /* With a = 10 exactly (time in units of the handling time, so the
     * target is 1/9), every published digit: within one unit of the last
     * digit given. */
    assert_ok(lbk_mmn_evaluate(10, 1, 14, &m));
    assert_true(fabs(m.p_wait - 0.1741319335950498) <= 1e-16);
    assert_true(fabs(m.mean_wait * 180 - 7.83593701177724) <= 1e-14);
    assert_true(fabs(m.utilization - 0.7142857142857143) <= 1e-16);
    assert_ok(lbk_mmn_service_level(10, 1, 14, 20.0 / 180, &sl));
    assert_true(fabs(sl - 0.8883500191794669) <= 1e-16);
    uint32_t n;
    assert_ok(lbk_mmn_servers_for_service_level(10, 1, 20.0 / 180, 0.8, &n));
    assert_int_equal(n, 14);
    assert_ok(lbk_mmn_servers_for_service_level(lambda, mu, 20, 0.8, &n));
    assert_int_equal(n, 14);
    assert_ok(lbk_mmn_service_level(lambda, mu, 13, 20, &sl));
    assert_true(sl < 0.8);
}

/* R queueing's M/M/c example: lambda = 5, mu = 10, c = 2. */
static void test_r_queueing_example(void **state)
{
    (void)state;
    lbk_mmn_metrics m;
    assert_ok(lbk_mmn_evaluate(5, 10, 2, &m));
    assert_rel(m.p_wait, 0.1, 1e-15);
    assert_rel(m.mean_queue_length, 1.0 / 30, 1e-15);
    assert_rel(m.mean_wait, 1.0 / 150, 1e-15);
    assert_rel(m.mean_in_system, 8.0 / 15, 1e-15);
    assert_rel(m.mean_response, 16.0 / 150, 1e-15);
    /* The published P0 = 0.6 agrees: C = P0 a^N / (N! (1 - rho)) with
     * a = 1/2, N = 2, rho = 1/4. */
    assert_rel(m.p_wait, 0.6 * 0.25 / (2 * 0.75), 1e-15);
}

static void test_erlang_b_published(void **state)
{
    (void)state;
    double b;
    assert_ok(lbk_erlang_b(5, 10, &b));
    assert_true(fabs(b - 0.018384570336648) <= 1e-15); /* last digit */
    assert_ok(lbk_erlang_b(12, 15, &b));
    assert_true(fabs(b - 0.0857292494953005) <= 1e-16);
}

/* B and C at 50 digits from mpmath: B = p(N; a) / Q(N + 1, a), C from B. */
static const struct {
    double a;
    uint32_t n;
    double b, c; /* c < 0: unstable, not checked */
} mp_points[] = {
    {999900.0, 1000000, 0.00073496934764654413862, 0.88031261266894030104},
    {990000.0, 1000000, 5.4995431265267091859e-26, 5.4995431265267091859e-24},
    {996000.0, 1000000, 1.3100104224075630478e-7, 0.000032749192305786250556},
    {1001000.0, 1000000, 0.0015233195758192006089, -1},
    {1200000.0, 1000000, 0.16667083308336832607, -1},
    {99000.0, 100000, 8.2257755985042223192e-6, 0.00082190823741079540165},
    {97000.0, 100000, 1.4380766613725420975e-23, 4.7935888712418069917e-22},
    {9000.0, 10000, 2.0916197944192896143e-26, 2.0916197944192896143e-25},
    {700.0, 1000, 3.0708489861268827778e-27, 1.0236163287089609259e-26},
    {150.0, 300, 1.5754418847097136651e-27, 3.1508837694194273301e-27},
    {12.0, 15, 0.085729249495300469811, 0.31919042511255973335},
    {5.0, 10, 0.018384570336648133137, 0.036105359158320185976},
};

static void test_mpmath_points(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mp_points / sizeof mp_points[0]; i++) {
        double b, c;
        assert_ok(lbk_erlang_b(mp_points[i].a, mp_points[i].n, &b));
        assert_rel(b, mp_points[i].b, 1e-12);
        if (mp_points[i].c > 0) {
            assert_ok(lbk_erlang_c(mp_points[i].a, mp_points[i].n, &c));
            assert_rel(c, mp_points[i].c, 1e-12);
        } else {
            assert_lbk(lbk_erlang_c(mp_points[i].a, mp_points[i].n, &c),
                       LBK_EUNSTABLE);
        }
    }
}

/* The Erlang B recursion and C from B, in long double: a second method
 * for small N (the slow reference test covers N up to 10^6). */
static void ld_erlang(double a, uint32_t n, long double *b, long double *c)
{
    long double x = 1;
    for (uint32_t k = 1; k <= n; k++)
        x = a * x / (k + a * x);
    *b = x;
    *c = x / (1 - (long double)a / n * (1 - x));
}

static void test_small_n_against_long_double(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 400; n += (n < 30 ? 1 : 13)) {
        for (double rho = 0.02; rho < 1; rho += 0.0625) {
            double a = rho * n, b, c;
            long double rb, rc;
            ld_erlang(a, n, &rb, &rc);
            assert_ok(lbk_erlang_b(a, n, &b));
            assert_ok(lbk_erlang_c(a, n, &c));
            if (rb >= DBL_MIN) {
                assert_rel(b, (double)rb, 1e-12);
                assert_rel(c, (double)rc, 1e-12);
            } else {
                assert_true(b == 0);
            }
        }
    }
}

static void test_mm1_closed_forms(void **state)
{
    (void)state;
    double mu = 3.0;
    for (double lambda = 0; lambda < 3; lambda += 0.37) {
        lbk_mmn_metrics c, g;
        assert_ok(lbk_mm1_evaluate(lambda, mu, &c));
        assert_ok(lbk_mmn_evaluate(lambda, mu, 1, &g));
        double rho = lambda / mu;
        assert_true(c.p_wait == rho);
        assert_rel(c.mean_response, 1 / (mu - lambda), 1e-15);
        assert_int_equal(g.servers, 1);
        assert_rel(g.p_wait + 1e-300, c.p_wait + 1e-300, 1e-14);
        assert_rel(g.mean_wait + 1e-300, c.mean_wait + 1e-300, 1e-14);
        assert_rel(g.mean_response, c.mean_response, 1e-14);
        assert_rel(g.mean_queue_length + 1e-300, c.mean_queue_length + 1e-300,
                   1e-14);
        assert_rel(g.mean_in_system + 1e-300, c.mean_in_system + 1e-300, 1e-14);
        assert_rel(g.erlang_b + 1e-300, c.erlang_b + 1e-300, 1e-14);
        /* M/M/1: P(W > t) = e^-(mu - lambda) t, P(Wq > t) = rho e^... */
        for (double t = 0; t < 5; t += 0.7) {
            double p;
            assert_ok(lbk_mmn_response_exceeds(lambda, mu, 1, t, &p));
            assert_rel(p, exp(-(mu - lambda) * t), 1e-14);
            assert_ok(lbk_mmn_wait_exceeds(lambda, mu, 1, t, &p));
            assert_rel(p + 1e-300, rho * exp(-(mu - lambda) * t) + 1e-300,
                       1e-14);
        }
    }
}

static void test_identities(void **state)
{
    (void)state;
    const double mu = 0.5;
    const uint32_t ns[] = {1, 2, 3, 7, 50, 199, 200, 201, 1000, 50000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        for (double rho = 0.05; rho < 1; rho += 0.1) {
            double lambda = rho * ns[i] * mu;
            lbk_mmn_metrics m;
            assert_ok(lbk_mmn_evaluate(lambda, mu, ns[i], &m));
            assert_rel(m.mean_response, m.mean_wait + 1 / mu, 1e-15);
            assert_rel(m.mean_in_system, lambda * m.mean_response, 1e-15);
            if (m.p_wait > 0) {
                assert_rel(m.mean_queue_length, lambda * m.mean_wait, 1e-15);
                /* C = N B / (N - a (1 - B)) */
                double a = m.offered_load, n = ns[i], b = m.erlang_b;
                assert_rel(m.p_wait, n * b / (n - a * (1 - b)), 1e-13);
                assert_true(m.erlang_b <= m.p_wait);
            }
            assert_rel(m.utilization, lambda / (ns[i] * mu), 1e-15);
            /* the single-value getters agree with the one-call form */
            double v;
            assert_ok(lbk_mmn_p_wait(lambda, mu, ns[i], &v));
            assert_true(v == m.p_wait);
            assert_ok(lbk_mmn_mean_wait(lambda, mu, ns[i], &v));
            assert_true(v == m.mean_wait);
            assert_ok(lbk_mmn_mean_response(lambda, mu, ns[i], &v));
            assert_true(v == m.mean_response);
            assert_ok(lbk_mmn_mean_queue_length(lambda, mu, ns[i], &v));
            assert_true(v == m.mean_queue_length);
            assert_ok(lbk_mmn_mean_in_system(lambda, mu, ns[i], &v));
            assert_true(v == m.mean_in_system);
            assert_ok(lbk_mmn_utilization(lambda, mu, ns[i], &v));
            assert_true(v == m.utilization);
            assert_ok(lbk_erlang_c(m.offered_load, ns[i], &v));
            assert_true(v == m.p_wait);
            assert_ok(lbk_erlang_b(m.offered_load, ns[i], &v));
            assert_true(v == m.erlang_b);
        }
    }
}

/* P(wait) strictly decreases in N and increases in rho while it is
 * representable; the branches of the evaluation meet without a step. */
static void test_monotone(void **state)
{
    (void)state;
    const double loads[] = {0.3, 5, 95.5, 180, 199.5, 640, 9000.25, 250000};
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
        double a = loads[i], prev = 2;
        uint32_t n0 = (uint32_t)floor(a) + 1;
        for (uint32_t n = n0; n < n0 + 40 + 8 * (uint32_t)sqrt(a); n++) {
            double c;
            assert_ok(lbk_erlang_c(a, n, &c));
            assert_clean_prob(c);
            if (c == 0)
                break;
            assert_true(c < prev);
            prev = c;
        }
    }
    const uint32_t ns[] = {1, 4, 100, 200, 201, 5000, 1000000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        double prev = 0;
        for (double rho = 0.001; rho < 1; rho += 0.0017) {
            double c;
            assert_ok(lbk_erlang_c(rho * ns[i], ns[i], &c));
            assert_clean_prob(c);
            if (prev > 0)
                assert_true(c > prev);
            prev = c;
        }
    }
    /* Erlang B across the lam = 0.55 and 1.7 branch edges, large N. */
    for (uint32_t n = 300; n <= 3000; n *= 10) {
        double prev = 0;
        for (double lam = 0.5; lam < 1.8; lam += 0.0005) {
            double b;
            assert_ok(lbk_erlang_b(lam * n, n, &b));
            assert_clean_prob(b);
            if (prev > 0)
                assert_true(b > prev);
            prev = b;
        }
    }
}

/* P(W > t) against W = Wq + S integrated numerically (Simpson):
 * P(W > t) = (1 - C) e^-mu t + C [e^-delta t +
 *            int_0^t delta e^-delta x e^-mu (t - x) dx]. */
static double simpson_response_tail(double c, double mu, double delta, double t)
{
    int k = 2000;
    double h = t / k, s = 0;
    for (int i = 0; i <= k; i++) {
        double x = i * h;
        double f = delta * exp(-delta * x) * exp(-mu * (t - x));
        s += f * (i == 0 || i == k ? 1 : (i % 2 ? 4 : 2));
    }
    return (1 - c) * exp(-mu * t) + c * (exp(-delta * t) + s * h / 3);
}

static void test_response_tail(void **state)
{
    (void)state;
    /* delta - mu = (N-1) mu - lambda: negative, zero, positive, tiny. */
    const struct {
        double lambda, mu;
        uint32_t n;
    } cases[] = {{0.9, 1, 1},  {1, 1, 2},        {1.5, 1, 2},
                 {0.5, 1, 2},  {1 - 1e-9, 1, 2}, {7.3, 0.8, 12},
                 {95, 1, 100}, {99.999, 1, 101}, {2, 1, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lbk_mmn_metrics m;
        assert_ok(
            lbk_mmn_evaluate(cases[i].lambda, cases[i].mu, cases[i].n, &m));
        double delta = cases[i].n * cases[i].mu - cases[i].lambda;
        for (double t = 0; t < 6; t += 0.55) {
            double p;
            assert_ok(lbk_mmn_response_exceeds(cases[i].lambda, cases[i].mu,
                                               cases[i].n, t, &p));
            assert_clean_prob(p);
            if (t == 0)
                assert_true(p == 1);
            else
                assert_rel(
                    p, simpson_response_tail(m.p_wait, cases[i].mu, delta, t),
                    1e-9);
        }
    }
    /* The d = 0 limit: N = 2, mu = 1, lambda = 1: e^-t (1 + C t). */
    double c, p;
    assert_ok(lbk_mmn_p_wait(1, 1, 2, &c));
    assert_ok(lbk_mmn_response_exceeds(1, 1, 2, 1.5, &p));
    assert_rel(p, exp(-1.5) * (1 + c * 1.5), 1e-14);
    /* Far tails underflow cleanly, never NaN. */
    assert_ok(lbk_mmn_response_exceeds(1, 1, 2, 1e6, &p));
    assert_true(p == 0);
    assert_ok(lbk_mmn_response_exceeds(1e-300, 1e300, 2, 1e300, &p));
    assert_true(p == 0);
}

static void test_quantiles_invert_tails(void **state)
{
    (void)state;
    const struct {
        double lambda, mu;
        uint32_t n;
    } cases[] = {{100.0 / 1800, 1.0 / 180, 14},
                 {0.9, 1, 1},
                 {1, 1, 2},
                 {19, 2, 10},
                 {990, 1, 1000},
                 {999000, 1, 1000000},
                 {0.001, 1, 3}};
    const double qs[] = {0.5, 0.8, 0.9, 0.99, 0.999, 0.999999};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t j = 0; j < sizeof qs / sizeof qs[0]; j++) {
            double lambda = cases[i].lambda, mu = cases[i].mu;
            uint32_t n = cases[i].n;
            double tw, tr, p, c;
            assert_ok(lbk_mmn_wait_quantile(lambda, mu, n, qs[j], &tw));
            assert_ok(lbk_mmn_p_wait(lambda, mu, n, &c));
            if (c <= 1 - qs[j]) {
                assert_true(tw == 0);
            } else {
                assert_ok(lbk_mmn_wait_exceeds(lambda, mu, n, tw, &p));
                assert_rel(p, 1 - qs[j], 1e-12);
            }
            assert_ok(lbk_mmn_response_quantile(lambda, mu, n, qs[j], &tr));
            assert_true(tr > tw);
            assert_ok(lbk_mmn_response_exceeds(lambda, mu, n, tr, &p));
            assert_rel(p, 1 - qs[j], 1e-12);
            /* full precision: one ulp either side brackets the target */
            double pl, ph;
            assert_ok(lbk_mmn_response_exceeds(
                lambda, mu, n, nextafter(tr, 0) * (1 - 4e-16), &pl));
            assert_ok(lbk_mmn_response_exceeds(
                lambda, mu, n, nextafter(tr, INFINITY) * (1 + 4e-16), &ph));
            assert_true(pl >= ph);
        }
    }
}

static void test_service_level_complement(void **state)
{
    (void)state;
    /* rho -> 1: 1 - C is tiny; compare with (1-rho) R / (1 + (1-rho) R),
     * R = 1/B - 1 by the long-double recursion (no cancellation). */
    const uint32_t ns[] = {1, 3, 20, 150};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        for (double eps = 1e-3; eps > 1e-12; eps /= 31) {
            double n = ns[i], a = n * (1 - eps);
            long double r = 1;
            for (uint32_t k = 1; k < ns[i]; k++)
                r = 1 + (long double)k / a * r;
            long double rm1 = (long double)n / a * r;
            long double g = (long double)(n - a) / n * rm1;
            double want = (double)(g / (1 + g)), sl;
            assert_ok(lbk_mmn_service_level(a, 1, ns[i], 0, &sl));
            assert_rel(sl, want, 1e-12);
        }
    }
}

static void test_clean_underflow(void **state)
{
    (void)state;
    double b, c, p, t;
    lbk_mmn_metrics m;
    assert_ok(lbk_erlang_b(5e5, 1000000, &b));
    assert_true(b == 0);
    assert_ok(lbk_mmn_evaluate(5e5, 1, 1000000, &m));
    assert_true(m.p_wait == 0 && m.erlang_b == 0 && m.mean_wait == 0);
    assert_true(m.mean_queue_length == 0);
    assert_rel(m.mean_response, 1, 0);
    assert_ok(lbk_mmn_wait_exceeds(5e5, 1, 1000000, 0, &p));
    assert_true(p == 0);
    assert_ok(lbk_mmn_service_level(5e5, 1, 1000000, 0, &p));
    assert_true(p == 1);
    assert_ok(lbk_mmn_wait_quantile(5e5, 1, 1000000, 0.99, &t));
    assert_true(t == 0);
    assert_ok(lbk_mmn_response_quantile(5e5, 1, 1000000, 0.99, &t));
    assert_rel(t, -log(0.01), 1e-14);
    /* Around the underflow edge nothing is subnormal, at every branch. */
    const uint32_t ns[] = {60, 150, 201, 300, 1000, 100000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        for (double lam = 1e-6; lam < 1; lam *= 1.01) {
            assert_ok(lbk_erlang_b(lam * ns[i], ns[i], &b));
            assert_ok(lbk_erlang_c(lam * ns[i], ns[i], &c));
            assert_clean_prob(b);
            assert_clean_prob(c);
            assert_ok(lbk_mmn_wait_exceeds(lam * ns[i], 1, ns[i], 3, &p));
            assert_clean_prob(p);
        }
    }
    /* zero load */
    assert_ok(lbk_erlang_b(0, 5, &b));
    assert_ok(lbk_erlang_c(0, 5, &c));
    assert_true(b == 0 && c == 0);
    assert_ok(lbk_mmn_evaluate(0, 2, 3, &m));
    assert_true(m.p_wait == 0 && m.mean_wait == 0 && m.mean_in_system == 0);
    assert_rel(m.mean_response, 0.5, 0);
    /* overload for Erlang B: B -> 1 - N/a */
    assert_ok(lbk_erlang_b(1e12, 3, &b));
    assert_rel(b, 1 - 3e-12, 1e-15);
}

static void test_approximations(void **state)
{
    (void)state;
    double w, ref;
    /* M/G/1 PK: deterministic service halves the M/M/1 wait. */
    assert_ok(lbk_mg1_mean_wait(0.5, 1, 0, &w));
    assert_rel(w, 0.5, 1e-15);
    assert_ok(lbk_mg1_mean_wait(0.5, 1, 1, &w));
    assert_ok(lbk_mmn_mean_wait(0.5, 1, 1, &ref));
    assert_rel(w, ref, 1e-15);
    assert_ok(lbk_mg1_mean_wait(0, 1, 3, &w));
    assert_true(w == 0);
    /* Kingman with ca2 = cs2 = 1 is exact M/M/1. */
    assert_ok(lbk_gg1_kingman_wait(2, 1, 1.5, 1, &w));
    assert_ok(lbk_mmn_mean_wait(0.5, 1 / 1.5, 1, &ref));
    assert_rel(w, ref, 1e-14);
    assert_ok(lbk_gg1_kingman_wait(2, 0.25, 1.5, 0.75, &w));
    assert_rel(w, 0.75 / 0.25 * 0.5 * 1.5, 1e-15);
    /* Allen-Cunneen with ca2 = cs2 = 1 is exact M/M/N; scales linearly. */
    assert_ok(lbk_ggn_allen_cunneen_wait(18, 1, 180, 1, 14, &w));
    assert_rel(w, 7.83593701177724, 1e-13);
    double w2;
    assert_ok(lbk_ggn_allen_cunneen_wait(18, 0.5, 180, 0.1, 14, &w2));
    assert_rel(w2, w * 0.3, 1e-14);
    /* Little's law */
    double v;
    assert_ok(lbk_little_items(4, 2.5, &v));
    assert_rel(v, 10, 0);
    assert_ok(lbk_little_time(10, 4, &v));
    assert_rel(v, 2.5, 0);
    assert_ok(lbk_little_rate(10, 2.5, &v));
    assert_rel(v, 4, 0);
}

/* The answer meets the target and N - 1 does not (or is unstable). */
static void check_p_wait_size(double lambda, double mu, double x)
{
    uint32_t n;
    double c;
    assert_ok(lbk_mmn_servers_for_p_wait(lambda, mu, x, &n));
    assert_ok(lbk_mmn_p_wait(lambda, mu, n, &c));
    assert_true(c <= x);
    if (n > 1) {
        int rc = lbk_mmn_p_wait(lambda, mu, n - 1, &c);
        assert_true(rc == LBK_EUNSTABLE || (rc == 0 && c > x));
    }
}

static void check_other_sizes(double lambda, double mu)
{
    uint32_t n;
    double v;
    int rc;
    double wq = 0.05 / mu;
    assert_ok(lbk_mmn_servers_for_mean_wait(lambda, mu, wq, &n));
    assert_ok(lbk_mmn_mean_wait(lambda, mu, n, &v));
    assert_true(v <= wq);
    rc = n > 1 ? lbk_mmn_mean_wait(lambda, mu, n - 1, &v) : LBK_EUNSTABLE;
    assert_true(rc == LBK_EUNSTABLE || (rc == 0 && v > wq));

    double t = 0.1 / mu;
    assert_ok(lbk_mmn_servers_for_service_level(lambda, mu, t, 0.95, &n));
    assert_ok(lbk_mmn_service_level(lambda, mu, n, t, &v));
    assert_true(v >= 0.95);
    rc =
        n > 1 ? lbk_mmn_service_level(lambda, mu, n - 1, t, &v) : LBK_EUNSTABLE;
    assert_true(rc == LBK_EUNSTABLE || (rc == 0 && v < 0.95));

    assert_ok(lbk_mmn_servers_for_utilization(lambda, mu, 0.85, &n));
    assert_ok(lbk_mmn_utilization(lambda, mu, n, &v));
    assert_true(v <= 0.85);
    rc = n > 1 ? lbk_mmn_utilization(lambda, mu, n - 1, &v) : LBK_EUNSTABLE;
    assert_true(rc == LBK_EUNSTABLE || (rc == 0 && v > 0.85));

    double a = lambda / mu;
    assert_ok(lbk_erlang_b_servers(a, 0.01, &n));
    assert_ok(lbk_erlang_b(a, n, &v));
    assert_true(v <= 0.01);
    if (n > 1) {
        assert_ok(lbk_erlang_b(a, n - 1, &v));
        assert_true(v > 0.01);
    }
}

static void test_sizing(void **state)
{
    (void)state;
    const double loads[] = {0.001, 0.5,   1,    3.7,     10,  42,
                            180,   199.9, 1000, 31622.7, 1e5, 1e6};
    const double targets[] = {0.9, 0.5, 0.2, 0.01, 1e-6};
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
        for (size_t j = 0; j < sizeof targets / sizeof targets[0]; j++)
            check_p_wait_size(loads[i] * 0.25, 0.25, targets[j]);
        check_other_sizes(loads[i] * 2, 2);
    }
    uint32_t n;
    assert_ok(lbk_mmn_servers_for_utilization(8, 1, 0.8, &n));
    assert_int_equal(n, 10);
    assert_ok(lbk_mmn_servers_for_p_wait(0, 1, 0.1, &n));
    assert_int_equal(n, 1);
    assert_ok(lbk_erlang_b_servers(0, 0.1, &n));
    assert_int_equal(n, 1);
    /* Erlang B sizing from the published B(15, 12) = 0.0857. */
    assert_ok(lbk_erlang_b_servers(12, 0.0858, &n));
    assert_int_equal(n, 15);
    assert_ok(lbk_erlang_b_servers(12, 0.0857, &n));
    assert_int_equal(n, 16);
    /* Answers past UINT32_MAX servers. */
    assert_lbk(lbk_mmn_servers_for_p_wait(1e10, 1, 0.2, &n), LBK_ERANGE);
    assert_lbk(lbk_erlang_b_servers(5e9, 0.2, &n), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_utilization(4e9, 1, 0.5, &n), LBK_ERANGE);
}

/*
 * Sizing never answers an N its evaluation function rejects.  One sizing
 * target, judged by the public function a caller would check it with:
 * rc and the value at N.
 */
typedef int (*judge_fn)(double lambda, double mu, uint32_t n, double target,
                        double t, double *v, bool *ok);

static int judge_p_wait(double lambda, double mu, uint32_t n, double target,
                        double t, double *v, bool *ok)
{
    (void)t;
    int rc = lbk_mmn_p_wait(lambda, mu, n, v);
    *ok = rc == 0 && *v <= target;
    return rc;
}

static int judge_mean_wait(double lambda, double mu, uint32_t n, double target,
                           double t, double *v, bool *ok)
{
    (void)t;
    int rc = lbk_mmn_mean_wait(lambda, mu, n, v);
    *ok = rc == 0 && *v <= target;
    return rc;
}

static int judge_service_level(double lambda, double mu, uint32_t n,
                               double target, double t, double *v, bool *ok)
{
    int rc = lbk_mmn_service_level(lambda, mu, n, t, v);
    *ok = rc == 0 && *v >= target;
    return rc;
}

/* rc of the sizing call; checks the answer against the judge: N accepted
 * and meeting the target, N - 1 missing it, unstable or out of range. */
static int check_size_consistent(int rc, uint32_t n, judge_fn judge,
                                 double lambda, double mu, double target,
                                 double t)
{
    if (rc < 0) {
        assert_true(rc == LBK_EINVAL || rc == LBK_ERANGE);
        assert_int_equal(n, 77); /* untouched */
        return rc;
    }
    double v;
    bool ok;
    int jrc = judge(lambda, mu, n, target, t, &v, &ok);
    if (jrc != 0 || !ok)
        fail_msg("sizing(%a, %a, %a, %a) = %u but evaluation: %s, %a", lambda,
                 mu, target, t, n, lbk_errname(jrc), v);
    if (n > 1) {
        jrc = judge(lambda, mu, n - 1, target, t, &v, &ok);
        assert_true(jrc == LBK_EUNSTABLE || jrc == LBK_ERANGE ||
                    (jrc == 0 && !ok));
    }
    return rc;
}

#define SENTINEL_V 12345.0

static void test_sizing_agrees_with_evaluation(void **state)
{
    (void)state;
    uint32_t n = 77;
    double v = SENTINEL_V;
    /* The fuzzer's case: with mu the smallest subnormal, 1/mu overflows and
     * every evaluation is LBK_ERANGE, so sizing is too (it once said 1). */
    const double tiny = 4.9e-324;
    assert_lbk(lbk_mmn_p_wait(0, tiny, 1, &v), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_p_wait(0, tiny, tiny, &n), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_mean_wait(0, tiny, 1, &n), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_service_level(0, tiny, 1, 0.5, &n),
               LBK_ERANGE);
    assert_int_equal(n, 77);
    assert_true(v == SENTINEL_V);
    /* N mu - lambda overflows from N = 4 on, and N = 2, 3 miss the target:
     * no evaluable N meets it. */
    assert_ok(lbk_mmn_p_wait(1.5e308, 1e308, 3, &v));
    assert_true(v > 0.1);
    assert_lbk(lbk_mmn_p_wait(1.5e308, 1e308, 4, &v), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_p_wait(1.5e308, 1e308, 0.1, &n), LBK_ERANGE);
    assert_lbk(lbk_mmn_servers_for_service_level(1.5e308, 1e308, 0, 0.9, &n),
               LBK_ERANGE);
    assert_int_equal(n, 77);
    /* Just above the stability limit a time overflows (W = Wq + 1/mu at
     * N = 1): that N is passed over, the next one is the answer. */
    assert_lbk(lbk_mmn_mean_wait(5e-309, 1e-308, 1, &v), LBK_ERANGE);
    assert_ok(lbk_mmn_servers_for_mean_wait(5e-309, 1e-308, 1e308, &n));
    assert_int_equal(n, 2);

    /* Every combination of extreme rates and targets. */
    const double rates[] = {0,      tiny,    1e-310, 2.2250738585072014e-308,
                            1e-300, 1e-9,    0.5,    1,
                            3.7,    1e3,     1e9,    1e300,
                            1e308,  1.5e308, DBL_MAX};
    const double targets[] = {tiny, 1e-300, 1e-6, 0.5, 0.999, 1e300};
    const double times[] = {0, tiny, 1, 1e300};
    const size_t nr = sizeof rates / sizeof rates[0];
    const size_t nt = sizeof targets / sizeof targets[0];
    int answered = 0, ranged = 0;
    for (size_t i = 0; i < nr; i++) {
        for (size_t j = 0; j < nr; j++) {
            double lambda = rates[i], mu = rates[j];
            for (size_t k = 0; k < nt; k++) {
                double x = targets[k];
                int rc;
                n = 77;
                rc = lbk_mmn_servers_for_p_wait(lambda, mu, x, &n);
                rc = check_size_consistent(rc, n, judge_p_wait, lambda, mu, x,
                                           0);
                answered += rc == 0;
                ranged += rc == LBK_ERANGE;
                n = 77;
                rc = lbk_mmn_servers_for_mean_wait(lambda, mu, x, &n);
                check_size_consistent(rc, n, judge_mean_wait, lambda, mu, x, 0);
                for (size_t m = 0; m < sizeof times / sizeof times[0]; m++) {
                    n = 77;
                    rc = lbk_mmn_servers_for_service_level(lambda, mu, times[m],
                                                           x, &n);
                    check_size_consistent(rc, n, judge_service_level, lambda,
                                          mu, x, times[m]);
                }
            }
        }
    }
    /* the grid exercises both outcomes */
    assert_true(answered > 50);
    assert_true(ranged > 10);
}

/* ---- bad input ------------------------------------------------------- */

#define SENTINEL 12345.0

static void test_bad_mmn_input(void **state)
{
    (void)state;
    const double bad_rate[] = {NAN, INFINITY, -INFINITY};
    double v = SENTINEL;
    lbk_mmn_metrics m = {.servers = 77};
    for (int i = 0; i < 3; i++) {
        assert_lbk(lbk_mmn_evaluate(bad_rate[i], 1, 2, &m), LBK_EINVAL);
        assert_lbk(lbk_mmn_evaluate(1, bad_rate[i], 2, &m), LBK_EINVAL);
        assert_lbk(lbk_mmn_p_wait(bad_rate[i], 1, 2, &v), LBK_EINVAL);
        assert_lbk(lbk_mmn_wait_exceeds(1, 1, 2, bad_rate[i], &v), LBK_EINVAL);
        assert_lbk(lbk_mmn_service_level(1, 1, 2, bad_rate[i], &v), LBK_EINVAL);
        assert_lbk(lbk_mmn_response_exceeds(1, 1, 2, bad_rate[i], &v),
                   LBK_EINVAL);
        assert_lbk(lbk_mmn_wait_quantile(1, 1, 2, bad_rate[i], &v), LBK_EINVAL);
        assert_lbk(lbk_mmn_response_quantile(1, 1, 2, bad_rate[i], &v),
                   LBK_EINVAL);
        assert_lbk(lbk_erlang_b(bad_rate[i], 2, &v), LBK_EINVAL);
        assert_lbk(lbk_erlang_c(bad_rate[i], 2, &v), LBK_EINVAL);
        assert_lbk(lbk_mm1_evaluate(bad_rate[i], 1, &m), LBK_EINVAL);
        assert_lbk(lbk_mmn_utilization(1, bad_rate[i], 2, &v), LBK_EINVAL);
    }
    /* lambda < 0, mu <= 0, N = 0 */
    assert_lbk(lbk_mmn_evaluate(-1, 1, 2, &m), LBK_EINVAL);
    assert_lbk(lbk_mmn_evaluate(-0.0, 1, 2, &m), 0);
    assert_lbk(lbk_mmn_evaluate(1, 0, 2, &m), LBK_EINVAL);
    assert_lbk(lbk_mmn_evaluate(1, -1, 2, &m), LBK_EINVAL);
    m.servers = 77;
    assert_lbk(lbk_mmn_evaluate(1, 1, 0, &m), LBK_EINVAL);
    assert_lbk(lbk_mmn_mean_wait(1, 1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_mean_response(-1, 1, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_mean_queue_length(1, 0, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_mean_in_system(1, -2, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_utilization(1, 1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_erlang_b(-1, 2, &v), LBK_EINVAL);
    assert_lbk(lbk_erlang_b(1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_erlang_c(1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_mm1_evaluate(1, 0, &m), LBK_EINVAL);
    assert_lbk(lbk_mm1_evaluate(-1, 1, &m), LBK_EINVAL);
    /* unstable: lambda >= N mu */
    assert_lbk(lbk_mmn_evaluate(4, 2, 2, &m), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_evaluate(5, 2, 2, &m), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_evaluate(1e308, 1e-308, 2, &m), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_p_wait(3, 1, 3, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_utilization(3, 1, 3, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_wait_exceeds(3, 1, 3, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_service_level(3, 1, 3, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_response_exceeds(3, 1, 3, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_wait_quantile(3, 1, 3, 0.5, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mmn_response_quantile(3, 1, 3, 0.5, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_erlang_c(3, 3, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_erlang_c(1e300, 3, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_mm1_evaluate(1, 1, &m), LBK_EUNSTABLE);
    /* N mu overflows */
    assert_lbk(lbk_mmn_evaluate(1, 1e308, 4, &m), LBK_ERANGE);
    /* t < 0, q and targets outside (0, 1) */
    assert_lbk(lbk_mmn_wait_exceeds(1, 1, 2, -1, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_service_level(1, 1, 2, -1e-300, &v), LBK_EINVAL);
    assert_lbk(lbk_mmn_response_exceeds(1, 1, 2, -5, &v), LBK_EINVAL);
    const double bad_q[] = {0, 1, -0.5, 1.5, NAN, INFINITY};
    for (int i = 0; i < 6; i++) {
        uint32_t n = 99;
        assert_lbk(lbk_mmn_wait_quantile(1, 1, 2, bad_q[i], &v), LBK_EINVAL);
        assert_lbk(lbk_mmn_response_quantile(1, 1, 2, bad_q[i], &v),
                   LBK_EINVAL);
        assert_lbk(lbk_mmn_servers_for_p_wait(1, 1, bad_q[i], &n), LBK_EINVAL);
        assert_lbk(lbk_mmn_servers_for_service_level(1, 1, 1, bad_q[i], &n),
                   LBK_EINVAL);
        assert_lbk(lbk_mmn_servers_for_utilization(1, 1, bad_q[i], &n),
                   LBK_EINVAL);
        assert_lbk(lbk_erlang_b_servers(1, bad_q[i], &n), LBK_EINVAL);
        assert_int_equal(n, 99);
    }
    uint32_t n = 99;
    assert_lbk(lbk_mmn_servers_for_mean_wait(1, 1, 0, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_mean_wait(1, 1, -1, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_mean_wait(1, 1, INFINITY, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_mean_wait(NAN, 1, 1, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_p_wait(-1, 1, 0.5, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_p_wait(1, 0, 0.5, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_service_level(1, 1, -1, 0.5, &n),
               LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_service_level(1, 1, NAN, 0.5, &n),
               LBK_EINVAL);
    assert_lbk(lbk_erlang_b_servers(-1, 0.5, &n), LBK_EINVAL);
    assert_lbk(lbk_erlang_b_servers(INFINITY, 0.5, &n), LBK_EINVAL);
    assert_int_equal(n, 99);
    /* NULL out-parameters */
    assert_lbk(lbk_mmn_evaluate(1, 1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_mm1_evaluate(0.5, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_p_wait(1, 1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_mean_wait(1, 1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_utilization(1, 1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_wait_exceeds(1, 1, 2, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_service_level(1, 1, 2, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_response_exceeds(1, 1, 2, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_wait_quantile(1, 1, 2, 0.5, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_response_quantile(1, 1, 2, 0.5, NULL), LBK_EINVAL);
    assert_lbk(lbk_erlang_b(1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_erlang_c(1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_p_wait(1, 1, 0.5, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_mean_wait(1, 1, 0.5, NULL), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_service_level(1, 1, 1, 0.5, NULL),
               LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_utilization(1, 1, 0.5, NULL), LBK_EINVAL);
    assert_lbk(lbk_erlang_b_servers(1, 0.5, NULL), LBK_EINVAL);
    /* nothing written on failure */
    assert_true(v == SENTINEL);
    assert_int_equal(m.servers, 77);
}

static void test_bad_approximation_input(void **state)
{
    (void)state;
    double v = SENTINEL;
    const double bad[] = {NAN, INFINITY, -1};
    for (int i = 0; i < 3; i++) {
        assert_lbk(lbk_mg1_mean_wait(bad[i], 1, 1, &v), LBK_EINVAL);
        assert_lbk(lbk_mg1_mean_wait(0.1, bad[i], 1, &v), LBK_EINVAL);
        assert_lbk(lbk_mg1_mean_wait(0.1, 1, bad[i], &v), LBK_EINVAL);
        assert_lbk(lbk_gg1_kingman_wait(bad[i], 1, 1, 1, &v), LBK_EINVAL);
        assert_lbk(lbk_gg1_kingman_wait(2, bad[i], 1, 1, &v), LBK_EINVAL);
        assert_lbk(lbk_gg1_kingman_wait(2, 1, bad[i], 1, &v), LBK_EINVAL);
        assert_lbk(lbk_gg1_kingman_wait(2, 1, 1, bad[i], &v), LBK_EINVAL);
        assert_lbk(lbk_ggn_allen_cunneen_wait(bad[i], 1, 1, 1, 2, &v),
                   LBK_EINVAL);
        assert_lbk(lbk_ggn_allen_cunneen_wait(2, bad[i], 1, 1, 2, &v),
                   LBK_EINVAL);
        assert_lbk(lbk_ggn_allen_cunneen_wait(2, 1, bad[i], 1, 2, &v),
                   LBK_EINVAL);
        assert_lbk(lbk_ggn_allen_cunneen_wait(2, 1, 1, bad[i], 2, &v),
                   LBK_EINVAL);
        assert_lbk(lbk_little_items(bad[i], 1, &v), LBK_EINVAL);
        assert_lbk(lbk_little_items(1, bad[i], &v), LBK_EINVAL);
        assert_lbk(lbk_little_time(bad[i], 1, &v), LBK_EINVAL);
        assert_lbk(lbk_little_time(1, bad[i], &v), LBK_EINVAL);
        assert_lbk(lbk_little_rate(bad[i], 1, &v), LBK_EINVAL);
        assert_lbk(lbk_little_rate(1, bad[i], &v), LBK_EINVAL);
    }
    assert_lbk(lbk_mg1_mean_wait(0.1, 0, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_gg1_kingman_wait(0, 1, 1, 1, &v), LBK_EINVAL);
    assert_lbk(lbk_ggn_allen_cunneen_wait(2, 1, 1, 1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_little_time(1, 0, &v), LBK_EINVAL);
    assert_lbk(lbk_little_rate(1, 0, &v), LBK_EINVAL);
    /* unstable */
    assert_lbk(lbk_mg1_mean_wait(1, 1, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_gg1_kingman_wait(1, 1, 1, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_gg1_kingman_wait(1, 1, 2, 1, &v), LBK_EUNSTABLE);
    assert_lbk(lbk_ggn_allen_cunneen_wait(1, 1, 3, 1, 3, &v), LBK_EUNSTABLE);
    /* overflow */
    assert_lbk(lbk_little_items(1e200, 1e200, &v), LBK_ERANGE);
    assert_lbk(lbk_little_time(1e200, 1e-200, &v), LBK_ERANGE);
    assert_lbk(lbk_little_rate(1e200, 1e-200, &v), LBK_ERANGE);
    /* NULL */
    assert_lbk(lbk_mg1_mean_wait(0.1, 1, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_gg1_kingman_wait(2, 1, 1, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_ggn_allen_cunneen_wait(2, 1, 1, 1, 2, NULL), LBK_EINVAL);
    assert_lbk(lbk_little_items(1, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_little_time(1, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_little_rate(1, 1, NULL), LBK_EINVAL);
    assert_true(v == SENTINEL);
}

/* Random inputs over the whole double range: every call either fails with
 * a documented code or returns finite, non-negative, non-subnormal values
 * (probabilities within [0, 1]). */
static double wild(uint64_t *s)
{
    uint64_t r = test_rand(s);
    double mant = (double)(r >> 11) * 0x1p-53;
    int e = (int)(r % 1200) - 600;
    return ldexp(mant, e / 2 * (r & 1 ? 1 : 0) + (int)(r % 17) - 8);
}

static void check_value(int rc, double v, bool prob)
{
    if (rc != 0) {
        assert_true(rc == LBK_EINVAL || rc == LBK_EUNSTABLE ||
                    rc == LBK_ERANGE);
        return;
    }
    assert_false(isnan(v));
    assert_true(v == 0 || v >= DBL_MIN);
    assert_true(isfinite(v));
    if (prob)
        assert_true(v <= 1);
}

static void test_random_inputs(void **state)
{
    (void)state;
    uint64_t s = 7;
    for (int i = 0; i < 4000; i++) {
        double lambda = wild(&s), mu = wild(&s), t = wild(&s);
        uint32_t n = (uint32_t)(test_rand(&s) % (i % 3 ? 300 : 3000000)) + 1;
        double q = (double)(test_rand(&s) >> 11) * 0x1p-53, v;
        lbk_mmn_metrics m;
        int rc = lbk_mmn_evaluate(lambda, mu, n, &m);
        if (rc == 0) {
            check_value(0, m.p_wait, true);
            check_value(0, m.erlang_b, true);
            check_value(0, m.mean_wait, false);
            check_value(0, m.mean_response, false);
            check_value(0, m.mean_queue_length, false);
            check_value(0, m.utilization, true);
            check_value(0, m.mean_in_system, false);
        }
        rc = lbk_mmn_wait_exceeds(lambda, mu, n, t, &v);
        check_value(rc, v, true);
        rc = lbk_mmn_service_level(lambda, mu, n, t, &v);
        check_value(rc, v, true);
        rc = lbk_mmn_response_exceeds(lambda, mu, n, t, &v);
        check_value(rc, v, true);
        rc = lbk_mmn_wait_quantile(lambda, mu, n, q, &v);
        check_value(rc, v, false);
        rc = lbk_mmn_response_quantile(lambda, mu, n, q, &v);
        check_value(rc, v, false);
        rc = lbk_erlang_b(lambda, n, &v);
        check_value(rc, v, true);
        rc = lbk_erlang_c(lambda, n, &v);
        check_value(rc, v, true);
        if (i % 8 == 0) {
            uint32_t k;
            double a = lambda / mu;
            if (a < 1e7) {
                rc = lbk_mmn_servers_for_p_wait(lambda, mu, q, &k);
                assert_true(rc == 0 || rc == LBK_EINVAL);
                rc = lbk_mmn_servers_for_service_level(lambda, mu, t, q, &k);
                assert_true(rc == 0 || rc == LBK_EINVAL || rc == LBK_ERANGE);
            }
        }
    }
}

/* Pure functions: two threads computing the same values agree with a
 * single-threaded pass (and TSan sees no shared state). */
static void *thread_body(void *arg)
{
    double *out = arg;
    for (int i = 0; i < 64; i++) {
        lbk_mmn_metrics m;
        if (lbk_mmn_evaluate(0.9 * (1000 + i), 1, 1000 + (uint32_t)i, &m) != 0)
            out[i] = -1;
        else
            out[i] = m.p_wait;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    double a[64], b[64], ref[64];
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, thread_body, a), 0);
    assert_int_equal(pthread_create(&t2, NULL, thread_body, b), 0);
    thread_body(ref);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    for (int i = 0; i < 64; i++) {
        assert_true(a[i] == ref[i]);
        assert_true(b[i] == ref[i]);
    }
}

/* The rate checks of lbk_mm1_evaluate and
 * lbk_mmn_servers_for_utilization, one bad argument at a time: NaN and
 * infinite rates, a negative arrival rate, a zero or negative service
 * rate; the out-parameter is left alone. */
static void test_rate_checks_one_by_one(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    lbk_mmn_metrics m;
    memset(&m, 0x5a, sizeof m);
    lbk_mmn_metrics m0 = m;
    uint32_t n = 77;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_lbk(lbk_mm1_evaluate(0.5, bad[i], &m), LBK_EINVAL);
        assert_lbk(lbk_mmn_servers_for_utilization(bad[i], 1, 0.5, &n),
                   LBK_EINVAL);
        assert_lbk(lbk_mmn_servers_for_utilization(1, bad[i], 0.5, &n),
                   LBK_EINVAL);
    }
    assert_lbk(lbk_mmn_servers_for_utilization(-1, 1, 0.5, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_utilization(1, 0, 0.5, &n), LBK_EINVAL);
    assert_lbk(lbk_mmn_servers_for_utilization(1, -2, 0.5, &n), LBK_EINVAL);
    assert_memory_equal(&m, &m0, sizeof m);
    assert_int_equal(n, 77);
    /* and the same rates, valid, give an answer */
    assert_ok(lbk_mmn_servers_for_utilization(1, 1, 0.5, &n));
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyworkforce_example),
        cmocka_unit_test(test_rate_checks_one_by_one),
        cmocka_unit_test(test_r_queueing_example),
        cmocka_unit_test(test_erlang_b_published),
        cmocka_unit_test(test_mpmath_points),
        cmocka_unit_test(test_small_n_against_long_double),
        cmocka_unit_test(test_mm1_closed_forms),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_monotone),
        cmocka_unit_test(test_response_tail),
        cmocka_unit_test(test_quantiles_invert_tails),
        cmocka_unit_test(test_service_level_complement),
        cmocka_unit_test(test_clean_underflow),
        cmocka_unit_test(test_approximations),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_sizing_agrees_with_evaluation),
        cmocka_unit_test(test_bad_mmn_input),
        cmocka_unit_test(test_bad_approximation_input),
        cmocka_unit_test(test_random_inputs),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
