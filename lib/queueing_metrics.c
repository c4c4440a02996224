/*
 * lib/queueing_metrics.c - the M/M/N model built on Erlang C: every
 * steady-state metric, the waiting- and response-time tails and quantiles,
 * sizing (the smallest N meeting a target), and the M/G/1, G/G/1 and G/G/N
 * mean-wait approximations and Little's law.
 *
 * Erlang B and C come from lib/queueing.c as the scaled tail ratio
 * R = 1/B - 1 (lib/queueing_internal.h), so C = 1 / (1 + (1 - rho) R),
 * 1 - C and ln C are all formed without cancellation; everything here is
 * closed-form algebra on C, delta = N mu - lambda and mu, arranged so no
 * intermediate overflows or cancels (P(W > t) below is the one delicate
 * case).  Quantiles of the response time have no closed form and are found
 * by safeguarded regula falsi on ln P(W > t).
 *
 * Sizing starts from the square-root staffing rule N = a + beta sqrt(a),
 * beta from the Halfin-Whitt limit of the target, then brackets the exact
 * answer by doubling steps and bisects: a few exact evaluations per call.
 * Each candidate N is judged by the very public function the caller would
 * use to check the answer, so the two can never disagree (see meets()).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "lbkit/queueing.h"
#include "queueing_internal.h"

#define TWO_PI 6.283185307179586476925286766559

/* ---- M/M/N ----------------------------------------------------------- */

typedef struct mmn {
    double lambda, mu, n, a;
    double delta; /* N mu - lambda > 0 */
    double omr;   /* 1 - rho = (N - a) / N */
    lbk_scaled r; /* 1/B - 1 */
} mmn;

static bool bad_double(double x)
{
    return !isfinite(x);
}

/* Validate and precompute one queue.  Its two LBK_ERANGE checks (N mu -
 * lambda, 1/mu) are repeated by rates_overflow() for sizing: keep them
 * in step. */
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
    q->r = lbk_erlang_ratio(a, servers);
    return 0;
}

static double mmn_c(const mmn *q)
{
    return lbk_inv1p_scaled(q->omr * q->r.m, q->r.e);
}

static double mmn_one_minus_c(const mmn *q)
{
    return lbk_inv1p_complement_scaled(q->omr * q->r.m, q->r.e);
}

static double mmn_log_c(const mmn *q)
{
    return lbk_log_inv1p_scaled(q->omr * q->r.m, q->r.e);
}

static double mmn_wait_exceeds(const mmn *q, double t)
{
    double c = mmn_c(q);
    return t == 0 ? c : lbk_flush_tiny(c * exp(-q->delta * t));
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
    return lbk_flush_tiny(exp(-q->mu * t) + term);
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
    double wq = lbk_flush_tiny(c / q->delta);
    double w = lbk_flush_tiny(wq + 1 / q->mu);
    m->servers = (uint32_t)q->n;
    m->offered_load = q->a;
    m->utilization = lbk_flush_tiny(q->a / q->n);
    m->p_wait = c;
    m->mean_wait = wq;
    m->mean_response = w;
    m->mean_queue_length = lbk_flush_tiny(q->lambda * wq);
    m->mean_in_system = lbk_flush_tiny(q->lambda * w);
    m->erlang_b = lbk_inv1p_scaled(q->r.m, q->r.e);
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
        .p_wait = lbk_flush_tiny(rho),
        .mean_wait = lbk_flush_tiny(rho / gap),
        .mean_response = lbk_flush_tiny(1 / gap),
        .mean_queue_length = lbk_flush_tiny(rho * rho / (1 - rho)),
        .mean_in_system = lbk_flush_tiny(rho / (1 - rho)),
        .erlang_b = lbk_flush_tiny(rho / (1 + rho)),
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
    *out = lbk_flush_tiny(rho);
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

/*
 * How one candidate N fares.  A sizing answer must be an N that the
 * evaluation function accepts and that meets the target, so each candidate
 * is judged by calling that public function (lbk_mmn_p_wait, ...) itself,
 * and its LBK_ERANGE is sorted by cause:
 *
 *   - N mu or 1/mu overflows a double (mmn_setup's two range checks): every
 *     larger N overflows too, so no answer lies at or above N: OUT_OF_RANGE,
 *     which the search treats like "meets" (look lower) and reports as
 *     LBK_ERANGE if the smallest such N is all it found;
 *   - a time or length of that queue overflows (only with extreme rates,
 *     just above the stability limit): larger N only shorten the wait, so
 *     N is passed over like one that misses the target: FAILS.
 *
 *        N:  1 .. unstable .. | FAILS ... | MEETS ... | OUT_OF_RANGE ...
 *                                          ^ the answer (if this run exists)
 */
enum verdict { FAILS, MEETS, OUT_OF_RANGE };

/* mmn_setup's LBK_ERANGE causes, both monotone in N. */
static bool rates_overflow(double lambda, double mu, double n)
{
    return !isfinite(fma(n, mu, -lambda)) || !isfinite(1 / mu);
}

/* A verdict (>= 0), or a negative error other than the two above. */
static int meets(const sizing *s, uint64_t n)
{
    if (n == 0)
        return FAILS;
    uint32_t servers = (uint32_t)n;
    double v;
    int rc;
    switch (s->kind) {
    case TARGET_ERLANG_B:
        FORWARD_IF_ERROR(lbk_erlang_b(s->a, servers, &v));
        return v <= s->x ? MEETS : FAILS;
    case TARGET_P_WAIT:
        rc = lbk_mmn_p_wait(s->lambda, s->mu, servers, &v);
        break;
    case TARGET_MEAN_WAIT:
        rc = lbk_mmn_mean_wait(s->lambda, s->mu, servers, &v);
        break;
    default:
        rc = lbk_mmn_service_level(s->lambda, s->mu, servers, s->t, &v);
        if (rc == 0)
            return v >= s->x ? MEETS : FAILS;
        break;
    }
    if (rc == LBK_EUNSTABLE)
        return FAILS;
    if (rc == LBK_ERANGE)
        return rates_overflow(s->lambda, s->mu, n) ? OUT_OF_RANGE : FAILS;
    FORWARD_IF_ERROR(rc);
    return v <= s->x ? MEETS : FAILS;
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
 * is bracketed, then bisect.  The answer is an n whose verdict was MEETS
 * and n - 1's FAILS (or n = nmin); LBK_ERANGE when the first n past the
 * FAILS run is OUT_OF_RANGE or beyond UINT32_MAX.
 */
static int size_search(const sizing *s, uint64_t nmin, uint64_t guess,
                       uint32_t *out)
{
    /* lo FAILS (or is nmin - 1); hi MEETS or is OUT_OF_RANGE (hi_v). */
    uint64_t lo, hi;
    uint64_t g = guess < nmin ? nmin : guess > UINT32_MAX ? UINT32_MAX : guess;
    int v = meets(s, g), hi_v;
    FORWARD_IF_ERROR(v);
    if (v != FAILS) {
        hi = g;
        hi_v = v;
        for (uint64_t step = 1;; step *= 2) {
            if (hi - nmin < step) {
                lo = nmin - 1;
                break;
            }
            uint64_t c = hi - step;
            v = meets(s, c);
            FORWARD_IF_ERROR(v);
            if (v == FAILS) {
                lo = c;
                break;
            }
            hi = c;
            hi_v = v;
        }
    } else {
        lo = g;
        for (uint64_t step = 1;; step *= 2) {
            RETURN_ERROR_IF(lo == UINT32_MAX, LBK_ERANGE);
            uint64_t c = UINT32_MAX - lo < step ? UINT32_MAX : lo + step;
            v = meets(s, c);
            FORWARD_IF_ERROR(v);
            if (v != FAILS) {
                hi = c;
                hi_v = v;
                break;
            }
            lo = c;
        }
    }
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        v = meets(s, mid);
        FORWARD_IF_ERROR(v);
        if (v != FAILS) {
            hi = mid;
            hi_v = v;
        } else {
            lo = mid;
        }
    }
    RETURN_ERROR_IF(hi_v == OUT_OF_RANGE, LBK_ERANGE);
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
    if (s->a == 0) /* N = 1 meets any target, if it can be evaluated */
        return size_search(s, 1, 1, out);
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
    *out = lbk_flush_tiny(wq);
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
    *out = lbk_flush_tiny(wq);
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
    *out = lbk_flush_tiny(wq);
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
