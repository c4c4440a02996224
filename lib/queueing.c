/*
 * lib/queueing.c - Erlang B/C, the M/M/N waiting-time distribution, sizing,
 * and the M/G/1, G/G/1 and G/G/N mean-wait approximations.
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
 * mpmath's incomplete gamma at 40 digits.)
 *
 * Sizing starts from the square-root staffing rule N = a + beta sqrt(a),
 * beta from the Halfin-Whitt limit of the target, then brackets the exact
 * answer by doubling steps and bisects: a few exact evaluations per call.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "lbkit/queueing.h"

#define TWO_PI 6.283185307179586476925286766559
#define SQRT_PI 1.772453850905516027298167483341
#define SMALL_N 200u

/* R = 1/B - 1 = m * exp(e), m > 0 (may be +inf), e >= 0. */
typedef struct scaled {
    double m;
    double e;
} scaled;

/* Results below DBL_MIN are returned as exactly 0 (documented). */
static double flush(double x)
{
    return x < DBL_MIN ? 0.0 : x;
}

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

static scaled r_recursion(double a, uint32_t servers)
{
    double r = 1.0; /* 1/B(0) */
    for (uint32_t k = 1; k < servers; k++)
        r = fma(k / a, r, 1.0);
    return (scaled){(servers / a) * r, 0};
}

static scaled r_direct(double a, double n)
{
    double t = n / a, sum = t;
    for (double j = 1; j < n; j++) {
        t *= (n - j) / a;
        sum += t;
        if (t < 0x1p-60 * sum)
            break;
    }
    return (scaled){sum, 0};
}

static scaled r_series(double a, double n)
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
    return (scaled){m, eh};
}

static scaled r_temme(double a, double n)
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
        return (scaled){es * (0.5 * sq * erfcx_pos(z) + cs), 0};
    /* erfc(-z) = 2 - erfc(z): R = es e^(z^2) [sq - e^(-z^2)(sq erfcx/2 -
     * cs)], the bracket positive and at least half its first term. */
    double ez = exp(-zh) * (1 - zl);
    double m = es * (sq - ez * (0.5 * sq * erfcx_pos(z) - cs)) * (1 + zl);
    return (scaled){m, zh};
}

static scaled erlang_r(double a, uint32_t servers)
{
    if (a == 0)
        return (scaled){INFINITY, 0};
    if (servers <= SMALL_N)
        return r_recursion(a, servers);
    double n = servers;
    double lam = a / n;
    scaled r;
    if (lam > 1.7)
        r = r_direct(a, n);
    else if (lam < 0.55)
        r = r_series(a, n);
    else
        r = r_temme(a, n);
    if (r.e > 0 && r.e < 1) { /* keep the scaled form for large E only */
        r.m *= exp(r.e);
        r.e = 0;
    }
    return r;
}

/* 1 / (1 + g e^e), g >= 0 (may be +inf). */
static double inv1p(double g, double e)
{
    if (e == 0)
        return flush(1 / (1 + g));
    if (!(g > 0))
        return 1;
    double ie = exp(-e);
    if (e < 700)
        return flush(ie / (ie + g));
    return flush(exp(-(e + log(g + ie))));
}

/* 1 - 1/(1 + g e^e) = 1 / (1 + e^-e / g). */
static double inv1p_complement(double g, double e)
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
static double log_inv1p(double g, double e)
{
    if (e == 0)
        return -log1p(g);
    return -(e + log(g + exp(-e)));
}

/* ---- M/M/N ----------------------------------------------------------- */

typedef struct mmn {
    double lambda, mu, n, a;
    double delta; /* N mu - lambda > 0 */
    double omr;   /* 1 - rho = (N - a) / N */
    scaled r;     /* 1/B - 1 */
} mmn;

static bool bad_double(double x)
{
    return !isfinite(x);
}

static int mmn_setup(double lambda, double mu, uint32_t servers, mmn *q)
{
    RETURN_ERROR_IF(bad_double(lambda) || bad_double(mu) || lambda < 0 ||
                        mu <= 0 || servers == 0,
                    LBK_EINVAL);
    double n = servers;
    double a = lambda / mu;
    RETURN_ERROR_IF(!(a < n), LBK_EUNSTABLE);
    double delta = fma(n, mu, -lambda);
    RETURN_ERROR_IF(!isfinite(delta), LBK_ERANGE);
    RETURN_ERROR_IF(!(delta > 0), LBK_EUNSTABLE);
    RETURN_ERROR_IF(!isfinite(1 / mu), LBK_ERANGE);
    q->lambda = lambda;
    q->mu = mu;
    q->n = n;
    q->a = a;
    q->delta = delta;
    q->omr = (n - a) / n;
    q->r = erlang_r(a, servers);
    return 0;
}

static double mmn_c(const mmn *q)
{
    return inv1p(q->omr * q->r.m, q->r.e);
}

static double mmn_one_minus_c(const mmn *q)
{
    return inv1p_complement(q->omr * q->r.m, q->r.e);
}

static double mmn_log_c(const mmn *q)
{
    return log_inv1p(q->omr * q->r.m, q->r.e);
}

static double mmn_wait_exceeds(const mmn *q, double t)
{
    double c = mmn_c(q);
    return t == 0 ? c : flush(c * exp(-q->delta * t));
}

static double mmn_service_level(const mmn *q, double t)
{
    double c = mmn_c(q);
    double p = t == 0 ? c : c * exp(-q->delta * t);
    if (p <= 0.5)
        return 1 - p;
    /* 1 - C e^-x = (1 - C) + C (1 - e^-x): both terms >= 0. */
    return mmn_one_minus_c(q) + c * -expm1(-q->delta * t);
}

/*
 * P(W > t) = e^(-mu t) + C mu (e^(-mu t) - e^(-delta t)) / (delta - mu):
 * the divided difference is e^(-min t) (1 - e^(-|d| t)) / |d| with
 * d = delta - mu = (N-1) mu - lambda, or t e^(-mu t) when d = 0.
 */
static double mmn_response_exceeds(const mmn *q, double t)
{
    if (t == 0)
        return 1;
    double d = fma(q->n - 1, q->mu, -q->lambda);
    double ad = fabs(d);
    double lo = d >= 0 ? q->mu : q->delta;
    double h = ad == 0 ? t : -expm1(-ad * t) / ad;
    double c = mmn_c(q);
    double x = lo * t;
    double mh = q->mu * h, term;
    if (c == 0)
        term = 0;
    else if (isfinite(mh) && x < 700)
        term = c * mh * exp(-x);
    else
        term = exp(log(c) + log(q->mu) + log(h) - x);
    return flush(exp(-q->mu * t) + term);
}

static double mmn_wait_quantile(const mmn *q, double qq)
{
    double p = 1 - qq; /* exact for qq in [0.5, 1) */
    double lp = qq < 0.5 ? log1p(-qq) : log(p);
    double lc = mmn_log_c(q);
    if (lc <= lp)
        return 0;
    return (lc - lp) / q->delta;
}

/* Solve ln P(W > t) = ln p on [lo, hi] by Illinois regula falsi. */
static double mmn_response_quantile(const mmn *q, double qq)
{
    double lp = log1p(-qq);
    double p = 1 - qq;
    double ts = -lp / q->mu; /* service alone: P(S > ts) = p */
    double tw = mmn_wait_quantile(q, qq);
    double lo = fmax(ts, tw);
    /* Union bound: P(Wq > x) <= p/2 and P(S > y) <= p/2 => P(W > x+y) <= p */
    double lc = mmn_log_c(q);
    double lh = log(p / 2);
    double hi = fmax(lc - lh, 0) / q->delta + -lh / q->mu;
    if (!(hi > lo))
        return lo;
    double flo = log(mmn_response_exceeds(q, lo)) - lp;
    double fhi = log(mmn_response_exceeds(q, hi)) - lp;
    if (!(flo > 0))
        return lo;
    if (!(fhi < 0))
        return hi;
    int side = 0;
    for (int it = 0; it < 300; it++) {
        double t = (lo * fhi - hi * flo) / (fhi - flo);
        if (!(t > lo && t < hi))
            t = lo + (hi - lo) / 2;
        if (t <= lo || t >= hi)
            break; /* lo and hi adjacent doubles */
        double ft = log(mmn_response_exceeds(q, t)) - lp;
        if (ft == 0)
            return t;
        if (ft > 0) {
            lo = t;
            flo = ft;
            if (side == 1)
                fhi /= 2;
            side = 1;
        } else {
            hi = t;
            fhi = ft;
            if (side == -1)
                flo /= 2;
            side = -1;
        }
        if (hi - lo <= 2 * DBL_EPSILON * hi)
            break;
    }
    return lo + (hi - lo) / 2;
}

static void mmn_fill(const mmn *q, lbk_mmn_metrics *m)
{
    double c = mmn_c(q);
    double wq = flush(c / q->delta);
    double w = flush(wq + 1 / q->mu);
    m->servers = (uint32_t)q->n;
    m->offered_load = q->a;
    m->utilization = flush(q->a / q->n);
    m->p_wait = c;
    m->mean_wait = wq;
    m->mean_response = w;
    m->mean_queue_length = flush(q->lambda * wq);
    m->mean_in_system = flush(q->lambda * w);
    m->erlang_b = inv1p(q->r.m, q->r.e);
}

static int metrics_finite(const lbk_mmn_metrics *m)
{
    return isfinite(m->mean_wait) && isfinite(m->mean_response) &&
           isfinite(m->mean_queue_length) && isfinite(m->mean_in_system);
}

int lbk_mmn_evaluate(double lambda, double mu, uint32_t servers,
                     lbk_mmn_metrics *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    mmn q;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &q));
    lbk_mmn_metrics m;
    mmn_fill(&q, &m);
    RETURN_ERROR_IF(!metrics_finite(&m), LBK_ERANGE);
    *out = m;
    return 0;
}

int lbk_mm1_evaluate(double lambda, double mu, lbk_mmn_metrics *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(lambda) || bad_double(mu) ||
                        lambda < 0 || mu <= 0,
                    LBK_EINVAL);
    double rho = lambda / mu;
    RETURN_ERROR_IF(!(rho < 1) || !(mu - lambda > 0), LBK_EUNSTABLE);
    double gap = mu - lambda;
    lbk_mmn_metrics m = {
        .servers = 1,
        .offered_load = rho,
        .utilization = rho,
        .p_wait = flush(rho),
        .mean_wait = flush(rho / gap),
        .mean_response = flush(1 / gap),
        .mean_queue_length = flush(rho * rho / (1 - rho)),
        .mean_in_system = flush(rho / (1 - rho)),
        .erlang_b = flush(rho / (1 + rho)),
    };
    RETURN_ERROR_IF(!metrics_finite(&m), LBK_ERANGE);
    *out = m;
    return 0;
}

/* One metric through the full evaluation, for the single-value getters. */
static int mmn_metric(double lambda, double mu, uint32_t servers, double *out,
                      size_t offset)
{
    lbk_mmn_metrics m;
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(lbk_mmn_evaluate(lambda, mu, servers, &m));
    *out = *(const double *)(const void *)((const char *)&m + offset);
    return 0;
}

int lbk_mmn_utilization(double lambda, double mu, uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(lambda) || bad_double(mu) ||
                        lambda < 0 || mu <= 0 || servers == 0,
                    LBK_EINVAL);
    double rho = lambda / mu / servers;
    RETURN_ERROR_IF(!(rho < 1), LBK_EUNSTABLE);
    *out = flush(rho);
    return 0;
}

int lbk_mmn_p_wait(double lambda, double mu, uint32_t servers, double *out)
{
    return mmn_metric(lambda, mu, servers, out,
                      offsetof(lbk_mmn_metrics, p_wait));
}

int lbk_mmn_mean_wait(double lambda, double mu, uint32_t servers, double *out)
{
    return mmn_metric(lambda, mu, servers, out,
                      offsetof(lbk_mmn_metrics, mean_wait));
}

int lbk_mmn_mean_response(double lambda, double mu, uint32_t servers,
                          double *out)
{
    return mmn_metric(lambda, mu, servers, out,
                      offsetof(lbk_mmn_metrics, mean_response));
}

int lbk_mmn_mean_queue_length(double lambda, double mu, uint32_t servers,
                              double *out)
{
    return mmn_metric(lambda, mu, servers, out,
                      offsetof(lbk_mmn_metrics, mean_queue_length));
}

int lbk_mmn_mean_in_system(double lambda, double mu, uint32_t servers,
                           double *out)
{
    return mmn_metric(lambda, mu, servers, out,
                      offsetof(lbk_mmn_metrics, mean_in_system));
}

static int check_time(double t)
{
    return bad_double(t) || t < 0 ? LBK_EINVAL : 0;
}

static int check_prob(double p)
{
    return bad_double(p) || !(p > 0 && p < 1) ? LBK_EINVAL : 0;
}

int lbk_mmn_wait_exceeds(double lambda, double mu, uint32_t servers, double t,
                         double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(check_time(t));
    mmn q;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &q));
    *out = mmn_wait_exceeds(&q, t);
    return 0;
}

int lbk_mmn_service_level(double lambda, double mu, uint32_t servers, double t,
                          double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(check_time(t));
    mmn q;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &q));
    *out = mmn_service_level(&q, t);
    return 0;
}

int lbk_mmn_response_exceeds(double lambda, double mu, uint32_t servers,
                             double t, double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(check_time(t));
    mmn q;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &q));
    *out = mmn_response_exceeds(&q, t);
    return 0;
}

int lbk_mmn_wait_quantile(double lambda, double mu, uint32_t servers, double q,
                          double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(check_prob(q));
    mmn s;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &s));
    double t = mmn_wait_quantile(&s, q);
    RETURN_ERROR_IF(!isfinite(t), LBK_ERANGE);
    *out = t;
    return 0;
}

int lbk_mmn_response_quantile(double lambda, double mu, uint32_t servers,
                              double q, double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(check_prob(q));
    mmn s;
    FORWARD_IF_ERROR(mmn_setup(lambda, mu, servers, &s));
    double t = mmn_response_quantile(&s, q);
    RETURN_ERROR_IF(!isfinite(t), LBK_ERANGE);
    *out = t;
    return 0;
}

/* ---- Erlang B and C --------------------------------------------------- */

int lbk_erlang_b(double offered_load, uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(offered_load) ||
                        offered_load < 0 || servers == 0,
                    LBK_EINVAL);
    scaled r = erlang_r(offered_load, servers);
    *out = inv1p(r.m, r.e);
    return 0;
}

int lbk_erlang_c(double offered_load, uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(offered_load) ||
                        offered_load < 0 || servers == 0,
                    LBK_EINVAL);
    double n = servers;
    RETURN_ERROR_IF(!(offered_load < n), LBK_EUNSTABLE);
    scaled r = erlang_r(offered_load, servers);
    *out = inv1p((n - offered_load) / n * r.m, r.e);
    return 0;
}

/* ---- sizing ----------------------------------------------------------- */

enum target_kind {
    TARGET_P_WAIT,
    TARGET_MEAN_WAIT,
    TARGET_SERVICE_LEVEL,
    TARGET_ERLANG_B
};

typedef struct sizing {
    enum target_kind kind;
    double lambda, mu, a;
    double x; /* the bound; for the service level, the level */
    double t; /* service-level threshold */
} sizing;

/* 1 when N meets the target, 0 when not (or unstable), < 0 on error. */
static int meets(const sizing *s, uint64_t n)
{
    if (n == 0)
        return 0;
    if (s->kind == TARGET_ERLANG_B) {
        scaled r = erlang_r(s->a, (uint32_t)n);
        return inv1p(r.m, r.e) <= s->x;
    }
    mmn q;
    int rc = mmn_setup(s->lambda, s->mu, (uint32_t)n, &q);
    if (rc == LBK_EUNSTABLE)
        return 0;
    FORWARD_IF_ERROR(rc);
    switch (s->kind) {
    case TARGET_P_WAIT:
        return mmn_c(&q) <= s->x;
    case TARGET_MEAN_WAIT:
        return flush(mmn_c(&q) / q.delta) <= s->x;
    default:
        return mmn_service_level(&q, s->t) >= s->x;
    }
}

/* Halfin-Whitt: with N = a + beta sqrt(a), C -> 1/(1 + beta Phi/phi) and
 * B -> phi / (sqrt(a) Phi).  Returns log(metric) - log(target) for the
 * approximate metric: positive means beta is too small. */
static double hw_excess(const sizing *s, double beta)
{
    double sa = sqrt(s->a);
    double lphi = -0.5 * beta * beta - 0.5 * log(TWO_PI);
    double lPhi = log(0.5 * erfc(-beta * 0.70710678118654752440));
    if (s->kind == TARGET_ERLANG_B)
        return lphi - lPhi - log(sa) - log(s->x);
    double lc = -log1p(beta * exp(lPhi - lphi));
    switch (s->kind) {
    case TARGET_P_WAIT:
        return lc - log(s->x);
    case TARGET_MEAN_WAIT:
        return lc - log(beta * sa * s->mu) - log(s->x);
    default:
        return lc - beta * sa * s->mu * s->t - log1p(-s->x);
    }
}

/* The root of hw_excess in beta, to ~1e-6, by Illinois regula falsi (the
 * function is smooth and monotone: a handful of steps). */
static double hw_guess(const sizing *s)
{
    double lo = s->kind == TARGET_ERLANG_B ? fmax(-sqrt(s->a), -30) : 1e-9;
    double hi = 40;
    double flo = hw_excess(s, lo), fhi = hw_excess(s, hi);
    if (!(fhi < 0))
        return hi;
    if (!(flo > 0))
        return lo;
    int side = 0;
    for (int i = 0; i < 60 && hi - lo > 1e-6; i++) {
        double t = (lo * fhi - hi * flo) / (fhi - flo);
        if (!(t > lo && t < hi))
            t = lo + (hi - lo) / 2;
        double ft = hw_excess(s, t);
        if (ft > 0) {
            lo = t;
            flo = ft;
            if (side == 1)
                fhi /= 2;
            side = 1;
        } else {
            hi = t;
            fhi = ft;
            if (side == -1)
                flo /= 2;
            side = -1;
        }
    }
    return hi;
}

/*
 * The smallest n in [nmin, UINT32_MAX] that meets the target, given that
 * nmin - 1 does not: double the step away from the guess until the answer
 * is bracketed, then bisect.
 */
static int size_search(const sizing *s, uint64_t nmin, uint64_t guess,
                       uint32_t *out)
{
    uint64_t lo, hi; /* lo fails (or is nmin - 1), hi meets */
    uint64_t g = guess < nmin ? nmin : guess > UINT32_MAX ? UINT32_MAX : guess;
    int rc = meets(s, g);
    FORWARD_IF_ERROR(rc);
    if (rc) {
        hi = g;
        for (uint64_t step = 1;; step *= 2) {
            if (hi - nmin < step) {
                lo = nmin - 1;
                break;
            }
            uint64_t c = hi - step;
            rc = meets(s, c);
            FORWARD_IF_ERROR(rc);
            if (!rc) {
                lo = c;
                break;
            }
            hi = c;
        }
    } else {
        lo = g;
        for (uint64_t step = 1;; step *= 2) {
            RETURN_ERROR_IF(lo == UINT32_MAX, LBK_ERANGE);
            uint64_t c = UINT32_MAX - lo < step ? UINT32_MAX : lo + step;
            rc = meets(s, c);
            FORWARD_IF_ERROR(rc);
            if (rc) {
                hi = c;
                break;
            }
            lo = c;
        }
    }
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        rc = meets(s, mid);
        FORWARD_IF_ERROR(rc);
        if (rc)
            hi = mid;
        else
            lo = mid;
    }
    *out = (uint32_t)hi;
    return 0;
}

static int size_mmn(sizing *s, uint32_t *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(s->lambda) || bad_double(s->mu) ||
                        s->lambda < 0 || s->mu <= 0,
                    LBK_EINVAL);
    s->a = s->lambda / s->mu;
    RETURN_ERROR_IF(!(s->a < UINT32_MAX), LBK_ERANGE);
    uint64_t nmin = (uint64_t)floor(s->a) + 1;
    if (s->a == 0) {
        *out = 1;
        return 0;
    }
    double beta = hw_guess(s);
    double g = ceil(s->a + beta * sqrt(s->a));
    uint64_t guess = g > (double)UINT32_MAX ? UINT32_MAX : (uint64_t)g;
    return size_search(s, nmin, guess, out);
}

int lbk_mmn_servers_for_p_wait(double lambda, double mu, double max_p_wait,
                               uint32_t *out)
{
    FORWARD_IF_ERROR(check_prob(max_p_wait));
    sizing s = {TARGET_P_WAIT, lambda, mu, 0, max_p_wait, 0};
    return size_mmn(&s, out);
}

int lbk_mmn_servers_for_mean_wait(double lambda, double mu,
                                  double max_mean_wait, uint32_t *out)
{
    RETURN_ERROR_IF(bad_double(max_mean_wait) || !(max_mean_wait > 0),
                    LBK_EINVAL);
    sizing s = {TARGET_MEAN_WAIT, lambda, mu, 0, max_mean_wait, 0};
    return size_mmn(&s, out);
}

int lbk_mmn_servers_for_service_level(double lambda, double mu, double t,
                                      double level, uint32_t *out)
{
    FORWARD_IF_ERROR(check_time(t));
    FORWARD_IF_ERROR(check_prob(level));
    sizing s = {TARGET_SERVICE_LEVEL, lambda, mu, 0, level, t};
    return size_mmn(&s, out);
}

int lbk_mmn_servers_for_utilization(double lambda, double mu,
                                    double max_utilization, uint32_t *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(lambda) || bad_double(mu) ||
                        lambda < 0 || mu <= 0,
                    LBK_EINVAL);
    FORWARD_IF_ERROR(check_prob(max_utilization));
    double a = lambda / mu;
    double g = ceil(a / max_utilization);
    RETURN_ERROR_IF(!(g <= UINT32_MAX), LBK_ERANGE);
    uint64_t n = g < 1 ? 1 : (uint64_t)g;
    /* Judge by lbk_mmn_utilization itself, so the two always agree. */
    double rho;
    while (n > 1 &&
           lbk_mmn_utilization(lambda, mu, (uint32_t)(n - 1), &rho) == 0 &&
           rho <= max_utilization)
        n--;
    for (;;) {
        RETURN_ERROR_IF(n > UINT32_MAX, LBK_ERANGE);
        if (lbk_mmn_utilization(lambda, mu, (uint32_t)n, &rho) == 0 &&
            rho <= max_utilization)
            break;
        n++;
    }
    *out = (uint32_t)n;
    return 0;
}

int lbk_erlang_b_servers(double offered_load, double max_blocking,
                         uint32_t *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(offered_load) || offered_load < 0,
                    LBK_EINVAL);
    FORWARD_IF_ERROR(check_prob(max_blocking));
    RETURN_ERROR_IF(!(offered_load < UINT32_MAX), LBK_ERANGE);
    if (offered_load == 0) {
        *out = 1;
        return 0;
    }
    sizing s = {TARGET_ERLANG_B, 0, 1, offered_load, max_blocking, 0};
    double beta = hw_guess(&s);
    double g = ceil(offered_load + beta * sqrt(offered_load));
    uint64_t guess = g < 1                    ? 1
                     : g > (double)UINT32_MAX ? UINT32_MAX
                                              : (uint64_t)g;
    return size_search(&s, 1, guess, out);
}

/* ---- general distributions and Little's law -------------------------- */

static bool bad_scv(double c2)
{
    return bad_double(c2) || c2 < 0;
}

static bool bad_mean(double m)
{
    return bad_double(m) || !(m > 0);
}

int lbk_mg1_mean_wait(double lambda, double mean_service, double scv_service,
                      double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(lambda) || lambda < 0 ||
                        bad_mean(mean_service) || bad_scv(scv_service),
                    LBK_EINVAL);
    double rho = lambda * mean_service;
    RETURN_ERROR_IF(!(rho < 1), LBK_EUNSTABLE);
    double wq = rho * (1 + scv_service) / (2 * (1 - rho)) * mean_service;
    RETURN_ERROR_IF(!isfinite(wq), LBK_ERANGE);
    *out = flush(wq);
    return 0;
}

int lbk_gg1_kingman_wait(double mean_interarrival, double scv_arrival,
                         double mean_service, double scv_service, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_mean(mean_interarrival) ||
                        bad_scv(scv_arrival) || bad_mean(mean_service) ||
                        bad_scv(scv_service),
                    LBK_EINVAL);
    double rho = mean_service / mean_interarrival;
    RETURN_ERROR_IF(!(rho < 1), LBK_EUNSTABLE);
    double wq =
        rho / (1 - rho) * ((scv_arrival + scv_service) / 2) * mean_service;
    RETURN_ERROR_IF(!isfinite(wq), LBK_ERANGE);
    *out = flush(wq);
    return 0;
}

int lbk_ggn_allen_cunneen_wait(double mean_interarrival, double scv_arrival,
                               double mean_service, double scv_service,
                               uint32_t servers, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_mean(mean_interarrival) ||
                        bad_scv(scv_arrival) || bad_mean(mean_service) ||
                        bad_scv(scv_service) || servers == 0,
                    LBK_EINVAL);
    mmn q;
    FORWARD_IF_ERROR(
        mmn_setup(1 / mean_interarrival, 1 / mean_service, servers, &q));
    double wq = mmn_c(&q) / q.delta * ((scv_arrival + scv_service) / 2);
    RETURN_ERROR_IF(!isfinite(wq), LBK_ERANGE);
    *out = flush(wq);
    return 0;
}

int lbk_little_items(double rate, double time, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(rate) || bad_double(time) ||
                        rate < 0 || time < 0,
                    LBK_EINVAL);
    double l = rate * time;
    RETURN_ERROR_IF(!isfinite(l), LBK_ERANGE);
    *out = l;
    return 0;
}

int lbk_little_time(double items, double rate, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(items) || items < 0 ||
                        bad_mean(rate),
                    LBK_EINVAL);
    double w = items / rate;
    RETURN_ERROR_IF(!isfinite(w), LBK_ERANGE);
    *out = w;
    return 0;
}

int lbk_little_rate(double items, double time, double *out)
{
    RETURN_ERROR_IF(out == NULL || bad_double(items) || items < 0 ||
                        bad_mean(time),
                    LBK_EINVAL);
    double r = items / time;
    RETURN_ERROR_IF(!isfinite(r), LBK_ERANGE);
    *out = r;
    return 0;
}
