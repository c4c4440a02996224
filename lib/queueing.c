/*
 * lib/queueing.c - Erlang B and C: the one hard computation of the queueing
 * module, evaluated to near full double precision at any N without ever
 * forming a^N / N!.  (lib/queueing_metrics.c builds the M/M/N metrics, the
 * waiting-time distribution, sizing and the G/G approximations on top of
 * this, through lib/queueing_internal.h.)
 *
 * Everything hangs on one quantity, the Poisson tail ratio
 *
 *     R(N, a) = 1/B(N, a) - 1 = sum_{j=1..N} N! / ((N-j)! a^j)
 *             = Q(N, a) / p(N; a)        (Q = regularized upper incomplete
 *                                         gamma, p = Poisson pmf)
 *
 * from which B = 1 / (1 + R) and, with rho = a/N, C = 1 / (1 + (1-rho) R)
 * and 1 - C = 1 / (1 + 1 / ((1-rho) R)), all without cancellation.  R is
 * huge when a << N (B underflows), so it is carried as m * e^E with E >= 0:
 * nothing overflows, and B, C and ln C come out exactly scaled.
 *
 * How R is computed, by region (lam = a/N):
 *
 *     N <= 200          the stable recursion 1/B(k) = 1 + (k/a) / B(k-1)
 *                       in O(N) fused multiply-adds (under half a
 *                       microsecond), R = (N/a) / B(N-1);
 *     lam > 1.7         sum_j N(N-1)..(N-j+1)/a^j directly: the terms fall
 *                       at least geometrically by 1/1.7, ~80 terms;
 *     lam < 0.55        R = 1/p(N;a) - P(N,a)/p(N;a), the second a series
 *                       falling by 0.55 per term, 1/p from Stirling's series
 *                       and the exponent in the deviance form of C. Loader's
 *                       binomial algorithm (2000), below;
 *     otherwise         Temme's uniform asymptotic expansion
 *                         Q(N,a) = erfc(z)/2 + e^(-z^2)/sqrt(2 pi N)
 *                                  * sum_k C_k(eta) N^-k
 *                       with eta^2/2 = lam - 1 - ln lam, z = eta sqrt(N/2);
 *                       divided by p(N;a) the exponentials cancel into the
 *                       scaled erfcx, so R costs a handful of Horner steps.
 *
 *         Q(N,a) series    |  Temme, |eta| <= 0.6   |   direct sum
 *     ---------------------+------------------------+------------------> lam
 *                         0.55          1          1.7
 *
 * The exponent E = N (lam - 1 - ln lam) decides the size of B: an error of
 * dE in it is a relative error dE in B, and E reaches ~708 before B
 * underflows.  So E is formed in double-double from a - N and
 * v = (a - N)/(a + N) (ln lam = 2 atanh v, whose series has no cancellation)
 * and exp(E) is applied as exp(hi) (1 + lo).  The C_k(eta) tables are the
 * Taylor coefficients of Temme's C_k, generated exactly in rationals from
 * C_0 = 1/(lam-1) - 1/eta and C_k = C_{k-1}'(eta)/eta + (-1)^k g_k/(lam-1)
 * (g_k the Stirling coefficients 1, 1/12, 1/288, -139/51840, ..., which the
 * recurrence itself forces) by reverting eta(lam) as a power series; with
 * N > 200 and |eta| <= 0.6 the truncated terms are below 1e-19.  (The
 * expansion is N. M. Temme's, SIAM J. Math. Anal. 10 (1979), as used by
 * DiDonato & Morris, ACM TOMS 12 (1986), for the incomplete gamma ratio;
 * the derivation of the tables and this code are ours, checked against
 * mpmath's incomplete gamma at 40 digits.)  tools/gen_temme.py prints the
 * tables below: `python3 tools/gen_temme.py` regenerates them exactly.
 */
#include <math.h>
#include <stdint.h>

#include "internal.h"
#include "lbkit/queueing.h"
#include "queueing_internal.h"

#define TWO_PI 6.283185307179586476925286766559
#define SQRT_PI 1.772453850905516027298167483341
#define SMALL_N 200u

/* ---- double-double helpers ------------------------------------------ */

static void two_sum(double x, double y, double *hi, double *lo)
{
    double s = x + y;
    double bb = s - x;
    *hi = s;
    *lo = (x - (s - bb)) + (y - bb);
}

/*
 * N (lam - 1 - ln lam) for lam = a/N, as hi + lo.  With d = a - N and
 * v = d / (a + N): ln lam = 2 atanh v, so
 *     lam - 1 - ln lam = u v - 2 v^3 (1/3 + v^2/5 + v^4/7 + ...)
 * (u = d/N), and N times it is d v - 2 N v^3 S(v^2).  For lam in [1/3, 3]
 * (|v| <= 1/2) that series converges fast and d v, the bulk, is formed
 * exactly; outside, the direct form is well conditioned enough (at most a
 * 4-ulp loss, and there N is small wherever B is representable).
 */
static void n_phi(double a, double n, double *hi, double *lo)
{
    if (!(a >= n / 3 && a <= 3 * n)) {
        *hi = (a - n) - n * log(a / n);
        *lo = 0;
        return;
    }
    double dh, dl, sh, sl;
    two_sum(a, -n, &dh, &dl);
    two_sum(a, n, &sh, &sl);
    double vh = dh / sh;
    double res = fma(-vh, sh, dh) + dl - vh * sl;
    double vl = res / sh;
    double ph = dh * vh;
    double pl = fma(dh, vh, -ph) + dh * vl + dl * vh;
    double w = vh * vh;
    int terms = w < 0.09 ? 16 : 30;
    double s = 0;
    for (int k = terms - 1; k >= 0; k--)
        s = fma(s, w, 1.0 / (2 * k + 3));
    double t2 = 2 * n * vh * w * s;
    double h, l;
    two_sum(ph, -t2, &h, &l);
    l += pl;
    *hi = h + l;
    *lo = l - (*hi - h);
}

/* ln N! - (N ln N - N + ln sqrt(2 pi N)), N > 200 (error < 1e-20). */
static double stirlerr(double n)
{
    double r = 1 / (n * n);
    return (1.0 / 12 - r * (1.0 / 360 - r * (1.0 / 1260))) / n;
}

/* erfcx(z) = e^(z^2) erfc(z) for z >= 0, to a few ulps. */
static double erfcx_pos(double z)
{
    if (z < 0.5)
        return exp(z * z) * erfc(z);
    if (z < 26) {
        double hi = z * z;
        double lo = fma(z, z, -hi);
        return erfc(z) * exp(hi) * (1 + lo);
    }
    /* Asymptotic series: terms (2k-1)!!/(2z^2)^k, < 1e-19 after 9. */
    double y = 1 / (2 * z * z), s = 0;
    for (int k = 9; k >= 1; k--)
        s = 1 - (2 * k - 1) * y * s;
    return s / (z * SQRT_PI);
}

/* ---- Temme's C_k(eta), Taylor coefficients (see the top) ------------- */

static const double temme_c0[23] = {
    -0.33333333333333331,    0.083333333333333329,    -0.014814814814814815,
    0.0011574074074074073,   0.00035273368606701942,  -0.0001787551440329218,
    3.9192631785224377e-05,  -2.185448510679992e-06,  -1.85406221071516e-06,
    8.2967113409530865e-07,  -1.7665952736826078e-07, 6.7078535434014984e-09,
    1.0261809784240309e-08,  -4.3820360184533529e-09, 9.1476995822367902e-10,
    -2.5514193994946248e-11, -5.8307721325504256e-11, 2.4361948020667415e-11,
    -5.0276692801141755e-12, 1.1004392031956135e-13,  3.3717632624009851e-13,
    -1.3923887224181621e-13, 2.8534893807047445e-14};
static const double temme_c1[21] = {
    -0.0018518518518518519,  -0.003472222222222222,   0.0026455026455026454,
    -0.00099022633744855963, 0.00020576131687242798,  -4.018775720164609e-07,
    -1.8098550334489977e-05, 7.6491609160811098e-06,  -1.6120900894563446e-06,
    4.647127802807434e-09,   1.3786334469157209e-07,  -5.7525456035177047e-08,
    1.1951628599778148e-08,  -1.7543241719747647e-11, -1.0091543710600413e-09,
    4.1627929918425828e-10,  -8.5639070264929801e-11, 6.0672151016047582e-14,
    7.1624989648114856e-12,  -2.9331866437714371e-12, 5.9966963656836885e-13};
static const double temme_c2[18] = {
    0.0041335978835978834,   -0.0026813271604938273, 0.0007716049382716049,
    2.0093878600823047e-06,  -0.0001073665322636516, 5.2923448829120125e-05,
    -1.2760635188618728e-05, 3.4235787340961378e-08, 1.3721957309062934e-06,
    -6.2989921383800548e-07, 1.4280614206064242e-07, -2.0477098421990866e-10,
    -1.409252991086752e-08,  6.2289740849220218e-09, -1.3670488396617114e-09,
    9.428356159014678e-13,   1.2872252400089318e-10, -5.5645956134363323e-11};
static const double temme_c3[15] = {
    0.00064943415637860077,  0.00022947209362139917,  -0.0004691894943952557,
    0.00026772063206283885,  -7.5618016718839766e-05, -2.3965051138672968e-07,
    1.1082654115347302e-05,  -5.6749528269915965e-06, 1.4230900732435883e-06,
    -2.7861080291528143e-11, -1.6958404091930278e-07, 8.0994649053880827e-08,
    -1.9111168485973655e-08, 2.3928620439808118e-12,  2.0620131815488797e-09};
static const double temme_c4[11] = {
    -0.00086188829091671173, 0.00078403922172006662, -0.00029907248030319018,
    -1.4638452578843418e-06, 6.6414982154651219e-05, -3.9683650471794347e-05,
    1.1375726970678419e-05,  2.5074972262375329e-10, -1.6954149536558305e-06,
    8.9075075322053094e-07,  -2.2929348340008049e-07};
static const double temme_c5[9] = {
    -0.00033679855336635813, -6.9728137583658571e-05, 0.00027727532449593918,
    -0.00019932570516188847, 6.797780477937208e-05,   1.4190629206439671e-07,
    -1.3594048189768693e-05, 8.018470256334202e-06,   -2.2914811765080952e-06};
static const double temme_c6[5] = {
    0.00053130793646399225, -0.00059216643735369393, 0.0002708782096718045,
    7.9023532326603281e-07, -8.1539693675619691e-05};
static const double temme_c7[1] = {0.00034436760689237765};

static const double *const temme_c[8] = {temme_c0, temme_c1, temme_c2,
                                         temme_c3, temme_c4, temme_c5,
                                         temme_c6, temme_c7};
static const int temme_len[8] = {23, 21, 18, 15, 11, 9, 5, 1};

static double temme_sum(double eta, double n)
{
    double inv = 1 / n, s = 0;
    for (int k = 7; k >= 0; k--) {
        const double *c = temme_c[k];
        double ck = 0;
        for (int j = temme_len[k] - 1; j >= 0; j--)
            ck = fma(ck, eta, c[j]);
        s = fma(s, inv, ck);
    }
    return s;
}

/* ---- R(N, a) = 1/B - 1, by region ----------------------------------- */

static lbk_scaled r_recursion(double a, uint32_t servers)
{
    double r = 1.0; /* 1/B(0) */
    for (uint32_t k = 1; k < servers; k++)
        r = fma(k / a, r, 1.0);
    return (lbk_scaled){(servers / a) * r, 0};
}

static lbk_scaled r_direct(double a, double n)
{
    double t = n / a, sum = t;
    for (double j = 1; j < n; j++) {
        t *= (n - j) / a;
        sum += t;
        if (t < 0x1p-60 * sum)
            break;
    }
    return (lbk_scaled){sum, 0};
}

static lbk_scaled r_series(double a, double n)
{
    double eh, el;
    n_phi(a, n, &eh, &el);
    double t = 1, sum = 1; /* P(N,a)/p(N;a) = sum_k a^k / ((N+1)..(N+k)) */
    for (double i = 1;; i++) {
        t *= a / (n + i);
        sum += t;
        if (t < 0x1p-60 * sum)
            break;
    }
    double inv_p = sqrt(TWO_PI * n) * exp(stirlerr(n)); /* times e^E */
    double m = (inv_p - sum * exp(-eh)) * (1 + el);
    return (lbk_scaled){m, eh};
}

static lbk_scaled r_temme(double a, double n)
{
    double zh, zl;
    n_phi(a, n, &zh, &zl);
    if (zh < 0) /* only by rounding, at a == n */
        zh = zl = 0;
    double eta = copysign(sqrt(2 * zh / n), a - n);
    double z = sqrt(zh);
    double cs = temme_sum(eta, n);
    double es = exp(stirlerr(n));
    double sq = sqrt(TWO_PI * n);
    if (a >= n)
        return (lbk_scaled){es * (0.5 * sq * erfcx_pos(z) + cs), 0};
    /* erfc(-z) = 2 - erfc(z): R = es e^(z^2) [sq - e^(-z^2)(sq erfcx/2 -
     * cs)], the bracket positive and at least half its first term. */
    double ez = exp(-zh) * (1 - zl);
    double m = es * (sq - ez * (0.5 * sq * erfcx_pos(z) - cs)) * (1 + zl);
    return (lbk_scaled){m, zh};
}

lbk_scaled lbk_erlang_ratio(double a, uint32_t servers)
{
    if (a == 0)
        return (lbk_scaled){INFINITY, 0};
    if (servers <= SMALL_N)
        return r_recursion(a, servers);
    double n = servers;
    double lam = a / n;
    lbk_scaled r;
    if (lam > 1.7)
        r = r_direct(a, n);
    else if (lam < 0.55)
        r = r_series(a, n);
    else
        r = r_temme(a, n);
    if (r.e > 0 && r.e < 1) { /* keep the lbk_scaled form for large E only */
        r.m *= exp(r.e);
        r.e = 0;
    }
    return r;
}

/* 1 / (1 + g e^e), g >= 0 (may be +inf). */
double lbk_inv1p_scaled(double g, double e)
{
    if (e == 0)
        return lbk_flush_tiny(1 / (1 + g));
    if (!(g > 0))
        return 1;
    double ie = exp(-e);
    if (e < 700)
        return lbk_flush_tiny(ie / (ie + g));
    return lbk_flush_tiny(exp(-(e + log(g + ie))));
}

/* 1 - 1/(1 + g e^e) = 1 / (1 + e^-e / g). */
double lbk_inv1p_complement_scaled(double g, double e)
{
    if (!(g > 0))
        return 0;
    if (isinf(g))
        return 1;
    if (e == 0)
        return g / (1 + g);
    return 1 / (1 + exp(-e) / g);
}

/* ln(1 / (1 + g e^e)); e is 0 or >= 1, so no cancellation. */
double lbk_log_inv1p_scaled(double g, double e)
{
    if (e == 0)
        return -log1p(g);
    return -(e + log(g + exp(-e)));
}

/* ---- Erlang B and C --------------------------------------------------- */

int lbk_erlang_b(double offered_load, uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || !isfinite(offered_load) ||
                        offered_load < 0 || servers == 0,
                    LBK_EINVAL);
    lbk_scaled r = lbk_erlang_ratio(offered_load, servers);
    *out = lbk_inv1p_scaled(r.m, r.e);
    return 0;
}

int lbk_erlang_c(double offered_load, uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || !isfinite(offered_load) ||
                        offered_load < 0 || servers == 0,
                    LBK_EINVAL);
    double n = servers;
    RETURN_ERROR_IF(!(offered_load < n), LBK_EUNSTABLE);
    lbk_scaled r = lbk_erlang_ratio(offered_load, servers);
    *out = lbk_inv1p_scaled((n - offered_load) / n * r.m, r.e);
    return 0;
}
