/*
 * tests/test_queueing_reference.c - Erlang B, Erlang C, the mean wait and
 * the waiting-time tail against an independent high-precision reference,
 * over a grid of N from 1 to 10^6 and rho from 0.01 to 0.9999 (and overload
 * for Erlang B), held to 1e-12 relative wherever the reference is at least
 * DBL_MIN, and to an exact 0.0 below it.
 *
 * The reference is the textbook recursion B(n) = a B(n-1) / (n + a B(n-1))
 * run in IEEE binary128 (__float128: 113-bit significand; the recursion is
 * contractive, so its rounding stays near 1e-33 even after 10^6 steps),
 * falling back to long double where the compiler lacks binary128.  It is a
 * second method: the library evaluates the Poisson tail ratio through
 * Temme's expansion, a series or a direct sum above N = 200.  Each grid
 * point costs O(N) soft-float steps, so the grid thins out at large N; the
 * whole test takes a few seconds.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "testutil.h"

#include "lbkit/queueing.h"

#ifdef __SIZEOF_FLOAT128__
typedef __float128 hp;
#else
typedef long double hp;
#endif

static double worst_b, worst_c, worst_tail;

/* B(N, a) and C(N, a) (C only when a < N) in high precision. */
static void reference(double a, uint32_t n, hp *b, hp *c)
{
    hp x = 1, ha = a;
    for (uint32_t k = 1; k <= n; k++) {
        hp t = ha * x;
        x = t / ((hp)k + t);
    }
    *b = x;
    *c = a < n ? x / (1 - ha / (hp)n * (1 - x)) : -1;
}

/* got vs the reference: 1e-12 relative above DBL_MIN, exactly 0 below
 * (a reference within 1e-12 of DBL_MIN may go either way). */
static double check(const char *what, double a, uint32_t n, double got, hp ref)
{
    double r = (double)ref;
    if (r < DBL_MIN * (1 - 1e-12)) {
        if (got != 0)
            fail_msg("%s(N=%u, a=%.17g) = %g, reference %g underflows", what, n,
                     a, got, r);
        return 0;
    }
    if (r < DBL_MIN * (1 + 1e-12) && got == 0)
        return 0;
    double e = (double)(((hp)got - ref) / ref);
    e = fabs(e);
    if (!(e <= 1e-12))
        fail_msg("%s(N=%u, a=%.17g) = %.17g, reference %.17g, rel err %.3g",
                 what, n, a, got, r, e);
    return e;
}

static void check_point(double a, uint32_t n)
{
    hp rb, rc;
    reference(a, n, &rb, &rc);
    double b;
    assert_ok(lbk_erlang_b(a, n, &b));
    worst_b = fmax(worst_b, check("B", a, n, b, rb));
    if (!(a < n))
        return;
    double c;
    assert_ok(lbk_erlang_c(a, n, &c));
    worst_c = fmax(worst_c, check("C", a, n, c, rc));
    /* lambda = a, mu = 1: Wq = C / (N - a), P(Wq > t) = C e^-(N - a) t. */
    double delta = n - a, v;
    assert_ok(lbk_mmn_mean_wait(a, 1, n, &v));
    worst_tail = fmax(worst_tail, check("Wq", a, n, v, rc / (hp)delta));
    const double ts[] = {0.5, 3};
    for (int i = 0; i < 2; i++) {
        double t = ts[i] / delta;
        assert_ok(lbk_mmn_wait_exceeds(a, 1, n, t, &v));
        hp ref = rc * (hp)expl(-(long double)delta * (long double)t);
        worst_tail = fmax(worst_tail, check("P(Wq>t)", a, n, v, ref));
    }
}

/* lam with N (lam - 1 - ln lam) = target, on the side of 1 given. */
static double edge_lam(uint32_t n, double target, int above)
{
    double lo = above ? 1 : 1e-9, hi = above ? 10 : 1;
    for (int i = 0; i < 200; i++) {
        double mid = lo + (hi - lo) / 2;
        double v = n * (mid - 1 - log(mid));
        if ((v < target) == (above != 0))
            lo = mid;
        else
            hi = mid;
    }
    return lo + (hi - lo) / 2;
}

static void test_grid(void **state)
{
    (void)state;
    static const uint32_t ns[] = {
        1,    2,    3,    5,     8,     13,    20,     35,     60,     100,
        150,  199,  200,  201,   202,   230,   300,    450,    700,    1000,
        1500, 2500, 5000, 10000, 20000, 50000, 100000, 300000, 1000000};
    static const double rhos[] = {0.01, 0.05, 0.1,   0.2,   0.3,    0.33,
                                  0.34, 0.45, 0.5,   0.54,  0.55,   0.56,
                                  0.6,  0.7,  0.8,   0.9,   0.95,   0.97,
                                  0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999};
    static const double over[] = {1.0001, 1.001, 1.01, 1.1, 1.3,
                                  1.69,   1.71,  2,    3,   10};
    static const double big_rhos[] = {0.5,   0.9,    0.99,  0.995,
                                      0.999, 0.9995, 0.9999};
    static const double big_over[] = {1.0001, 1.001, 1.01, 1.1, 2};
    static const double edges[] = {30, 400, 700};
    int points = 0;
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint32_t n = ns[i];
        bool big = n >= 100000;
        const double *r = big ? big_rhos : rhos;
        size_t nr = big ? sizeof big_rhos / sizeof big_rhos[0]
                        : sizeof rhos / sizeof rhos[0];
        const double *o = big ? big_over : over;
        size_t no = big ? sizeof big_over / sizeof big_over[0]
                        : sizeof over / sizeof over[0];
        for (size_t j = 0; j < nr; j++, points++)
            check_point(r[j] * n, n);
        for (size_t j = 0; j < no; j++, points++)
            check_point(o[j] * n, n);
        if (n < 300)
            continue;
        /* where B is about e^-30, e^-400 and e^-700, both sides of a = N */
        for (size_t j = 0; j < sizeof edges / sizeof edges[0]; j++) {
            for (int above = 0; above < 2; above++, points++) {
                double lam = edge_lam(n, edges[j], above);
                if (lam * n > 0)
                    check_point(lam * n, n);
            }
        }
    }
    printf("# %d grid points; worst relative error: B %.3g, C %.3g, "
           "Wq and P(Wq>t) %.3g\n",
           points, worst_b, worst_c, worst_tail);
}

/* A fine sweep across the branch boundaries (N = 200/201 and
 * lam = 0.55, 1/3, 1.7, 3) with irregular loads. */
static void test_branch_edges(void **state)
{
    (void)state;
    uint64_t s = 42;
    const uint32_t ns[] = {199, 200, 201, 260, 800};
    const double lams[] = {1.0 / 3, 0.55, 1, 1.7, 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof lams / sizeof lams[0]; j++)
            for (int k = 0; k < 12; k++) {
                double jitter = (double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5;
                check_point(lams[j] * ns[i] * (1 + 0.02 * jitter), ns[i]);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_branch_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
