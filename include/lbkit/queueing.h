/*
 * lbkit/queueing.h - queueing estimators: how long is the wait, and how many
 * servers are needed.
 *
 * Capacity planners and adaptive balancers ask: with Poisson arrivals at
 * rate lambda, exponential service at rate mu per server and N servers, what
 * are the waiting probability, the mean and tail of the wait, and the
 * smallest N that meets a target?  This module answers with the exact M/M/N
 * (Erlang C) model, Erlang B for loss systems (M/M/N/N), and the classic
 * approximations when arrivals or service are not exponential:
 * Pollaczek-Khinchine (M/G/1, exact mean), Kingman (G/G/1) and Allen-Cunneen
 * (G/G/N).  Choose M/M/N when requests arrive independently and service times
 * are roughly exponential; choose Allen-Cunneen when you have measured the
 * squared coefficient of variation (SCV = variance / mean^2) of inter-arrival
 * and service times.  Cost: an M/M/N evaluation is O(1) (under a
 * microsecond at any N up to 10^6 and beyond), a sizing call O(log N)
 * evaluations; no memory, no state.
 *
 * Conventions.  a = lambda / mu is the offered load in Erlangs and
 * rho = a / N the utilization; the system is stable when a < N.  Rates are in
 * events per unit of time and times in that same unit (seconds, ms: the
 * caller's choice).  All functions are pure: they allocate nothing, keep no
 * state, read no clock, and are safe from any thread.  Results come through
 * out-parameters, written only on success.
 *
 * Accuracy.  Erlang B and C (and everything derived from them) are computed
 * without ever forming a^N / N!: small N (<= 200) by the stable recursion,
 * large N through the Poisson tail ratio (Temme's uniform asymptotic
 * expansion of the incomplete gamma function near a = N, a convergent series
 * away from it), scaled so nothing overflows.  The relative error against a
 * high-precision reference is below 1e-12 for every N >= 1 and rho < 1
 * wherever the value is at least DBL_MIN.  A probability (or a mean derived
 * from one) whose true value is below DBL_MIN is returned as exactly 0.0:
 * results are never subnormal, never negative, never NaN.
 *
 * Errors common to every function below:
 *   LBK_EINVAL     a NaN or infinite argument, lambda < 0, mu <= 0,
 *                  servers == 0, a NULL out-parameter, or a target outside
 *                  its documented range;
 *   LBK_EUNSTABLE  lambda >= N * mu (a >= N): no steady state exists;
 *   LBK_ERANGE     N * mu - lambda or 1 / mu overflows a double, a time or
 *                  length result would overflow (extreme rates only), or a
 *                  sizing answer would exceed UINT32_MAX servers or could
 *                  not be evaluated (see sizing below).
 */
#ifndef LBKIT_QUEUEING_H
#define LBKIT_QUEUEING_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every steady-state metric of an M/M/N queue, filled by one call.
 * Times are in the caller's time unit, lengths in requests.
 */
typedef struct lbk_mmn_metrics {
    uint32_t servers;         /* N */
    double offered_load;      /* a = lambda / mu, Erlangs */
    double utilization;       /* rho = a / N, fraction of time a server works */
    double p_wait;            /* P(wait > 0): Erlang C, C(N, a) */
    double mean_wait;         /* Wq: mean time in queue */
    double mean_response;     /* W = Wq + 1/mu: mean time in system */
    double mean_queue_length; /* Lq = lambda * Wq */
    double mean_in_system;    /* L = lambda * W */
    double erlang_b;          /* B(N, a): blocking if the queue had no room */
} lbk_mmn_metrics;

/* ---- Erlang B and C from the offered load -------------------------- */

/*
 * lbk_erlang_b - blocking probability of an M/M/N/N loss system, B(N, a).
 * @offered_load: a >= 0 Erlangs (may exceed servers).
 * @servers:      N >= 1.
 * @out:          receives B in [0, 1].
 * Returns 0, or LBK_EINVAL (a < 0, NaN or infinite, N == 0, out NULL).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_erlang_b(double offered_load, uint32_t servers, double *out);

/*
 * lbk_erlang_c - probability that an arrival waits in M/M/N, C(N, a).
 * @offered_load: 0 <= a < N Erlangs.
 * @servers:      N >= 1.
 * @out:          receives C in [0, 1].
 * Returns 0, LBK_EINVAL (bad a, N == 0, out NULL) or LBK_EUNSTABLE (a >= N).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_erlang_c(double offered_load, uint32_t servers, double *out);

/* ---- M/M/N metrics --------------------------------------------------
 *
 * Each takes the arrival rate lambda >= 0, the service rate per server
 * mu > 0 and servers N >= 1, and returns 0 or one of the common errors
 * (LBK_EINVAL, LBK_EUNSTABLE, LBK_ERANGE; see the top of this header).
 */

/*
 * lbk_mmn_evaluate - every metric of lbk_mmn_metrics in one call.
 * @out: receives the metrics.
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_evaluate(double lambda, double mu, uint32_t servers,
                             lbk_mmn_metrics *out);

/*
 * lbk_mm1_evaluate - the metrics of M/M/1 from its closed forms
 * (P(wait) = rho, Wq = rho / (mu - lambda), W = 1 / (mu - lambda),
 * Lq = rho^2 / (1 - rho), L = rho / (1 - rho), B = rho / (1 + rho)).
 * Agrees with lbk_mmn_evaluate(lambda, mu, 1, out) to rounding.
 * @out: receives the metrics (servers = 1).
 * Returns 0, LBK_EINVAL or LBK_EUNSTABLE (lambda >= mu).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mm1_evaluate(double lambda, double mu, lbk_mmn_metrics *out);

/*
 * lbk_mmn_utilization - rho = lambda / (N mu).
 * @out: receives rho in [0, 1).
 * Returns 0, LBK_EINVAL or LBK_EUNSTABLE (rho >= 1).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_utilization(double lambda, double mu, uint32_t servers,
                                double *out);

/*
 * lbk_mmn_p_wait - P(an arrival waits) = Erlang C of a = lambda / mu.
 * @out: receives the probability in [0, 1].
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_p_wait(double lambda, double mu, uint32_t servers,
                           double *out);

/*
 * lbk_mmn_mean_wait - Wq = C / (N mu - lambda), the mean time in queue
 * (the ASA, average speed of answer, of call-centre tables).
 * @out: receives Wq >= 0.
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_mean_wait(double lambda, double mu, uint32_t servers,
                              double *out);

/*
 * lbk_mmn_mean_response - W = Wq + 1/mu, the mean time in system.
 * @out: receives W (>= Wq).
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_mean_response(double lambda, double mu, uint32_t servers,
                                  double *out);

/*
 * lbk_mmn_mean_queue_length - Lq = lambda Wq (Little's law on the queue).
 * @out: receives Lq >= 0.
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_mean_queue_length(double lambda, double mu,
                                      uint32_t servers, double *out);

/*
 * lbk_mmn_mean_in_system - L = lambda W (Little's law on the system).
 * @out: receives L >= 0.
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_mean_in_system(double lambda, double mu, uint32_t servers,
                                   double *out);

/*
 * lbk_mmn_wait_exceeds - P(Wq > t) = C e^(-(N mu - lambda) t).
 * @t:   threshold >= 0 (finite).
 * @out: receives the probability in [0, 1] (0.0 below DBL_MIN).
 * Returns 0, LBK_EINVAL (also t < 0 or not finite), LBK_EUNSTABLE or
 * LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_wait_exceeds(double lambda, double mu, uint32_t servers,
                                 double t, double *out);

/*
 * lbk_mmn_service_level - P(Wq <= t) = 1 - P(Wq > t): the fraction of
 * requests answered within t (call centres' "80% within 20 s").  Computed
 * without cancellation when the level is close to 0.
 * @t:   threshold >= 0 (finite).
 * @out: receives the level in [0, 1].
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_service_level(double lambda, double mu, uint32_t servers,
                                  double t, double *out);

/*
 * lbk_mmn_response_exceeds - P(W > t), W = Wq + S the time in system:
 * e^(-mu t) [1 + C mu (1 - e^(-d t)) / d] with d = N mu - lambda - mu
 * (e^(-mu t) (1 + C mu t) when d = 0), evaluated in a form that is stable
 * for d of either sign and near 0.
 * @t:   threshold >= 0 (finite).
 * @out: receives the probability in [0, 1] (0.0 below DBL_MIN).
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_response_exceeds(double lambda, double mu, uint32_t servers,
                                     double t, double *out);

/*
 * lbk_mmn_wait_quantile - the q-quantile of the time in queue: the least
 * t >= 0 with P(Wq > t) <= 1 - q, i.e. ln(C / (1 - q)) / (N mu - lambda),
 * or 0 when C <= 1 - q (e.g. q = 0.99 for the p99 wait).
 * @q:   probability in (0, 1).
 * @out: receives t >= 0.
 * Returns 0, LBK_EINVAL (also q outside (0, 1)), LBK_EUNSTABLE or
 * LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_wait_quantile(double lambda, double mu, uint32_t servers,
                                  double q, double *out);

/*
 * lbk_mmn_response_quantile - the q-quantile of the time in system: the t
 * with P(W > t) = 1 - q.  P(W > t) has no closed-form inverse; the root is
 * bracketed between max(wait quantile, service quantile) and a union bound,
 * then found by safeguarded regula falsi to full double precision.
 * @q:   probability in (0, 1).
 * @out: receives t > 0.
 * Returns 0, LBK_EINVAL (also q outside (0, 1)), LBK_EUNSTABLE or
 * LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_response_quantile(double lambda, double mu,
                                      uint32_t servers, double q, double *out);

/* ---- sizing: the smallest N meeting a target ------------------------
 *
 * Each starts near the square-root staffing rule N = a + beta sqrt(a) (beta
 * from the Halfin-Whitt approximation of the target), brackets the answer by
 * doubling steps and bisects, so it costs O(log) exact evaluations, never a
 * scan from N = 1.  The answer N meets the target and N - 1 does not (or
 * N - 1 is unstable, or N = 1), judged by the same functions as above.
 * Offered loads up to and beyond 10^6 Erlangs are supported.
 *
 * A sizing function never returns an N that its evaluation function
 * (lbk_mmn_p_wait, lbk_mmn_mean_wait, lbk_mmn_service_level,
 * lbk_mmn_utilization, lbk_erlang_b) rejects.  At extreme rates that
 * function may fail with LBK_ERANGE for some N; then:
 *   - where 1/mu or N mu - lambda overflows (so every larger N fails too)
 *     before an N meets the target, the sizing function returns LBK_ERANGE
 *     (e.g. mu = 4.9e-324: lbk_mmn_p_wait, _mean_wait and _service_level
 *     are LBK_ERANGE at every N, and so are the three sizing functions
 *     built on them, even with lambda = 0);
 *   - where a time of the queue overflows just above the stability limit
 *     (mu near DBL_MIN), that N is passed over like one that misses the
 *     target, and the answer is the next N that evaluates and meets it:
 *     then N - 1 may be LBK_ERANGE rather than a miss.
 */

/*
 * lbk_mmn_servers_for_p_wait - smallest N with P(wait) <= max_p_wait.
 * @max_p_wait: target in (0, 1).
 * @out:        receives N.
 * Returns 0, LBK_EINVAL or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_servers_for_p_wait(double lambda, double mu,
                                       double max_p_wait, uint32_t *out);

/*
 * lbk_mmn_servers_for_mean_wait - smallest N with Wq <= max_mean_wait.
 * @max_mean_wait: target > 0 (finite), in the caller's time unit.
 * @out:           receives N.
 * Returns 0, LBK_EINVAL or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_servers_for_mean_wait(double lambda, double mu,
                                          double max_mean_wait, uint32_t *out);

/*
 * lbk_mmn_servers_for_service_level - smallest N with
 * lbk_mmn_service_level(t) >= level, i.e. P(Wq > t) <= 1 - level.
 * @t:     threshold >= 0 (finite).
 * @level: target in (0, 1), e.g. 0.8 for "80% answered within t".
 * @out:   receives N.
 * Returns 0, LBK_EINVAL or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_servers_for_service_level(double lambda, double mu,
                                              double t, double level,
                                              uint32_t *out);

/*
 * lbk_mmn_servers_for_utilization - smallest N with lambda / (N mu) <=
 * max_utilization.
 * @max_utilization: target in (0, 1).
 * @out:             receives N.
 * Returns 0, LBK_EINVAL or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mmn_servers_for_utilization(double lambda, double mu,
                                            double max_utilization,
                                            uint32_t *out);

/*
 * lbk_erlang_b_servers - smallest N >= 1 with B(N, a) <= max_blocking.
 * @offered_load: a >= 0 Erlangs (finite).
 * @max_blocking: target in (0, 1).
 * @out:          receives N.
 * Returns 0, LBK_EINVAL or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_erlang_b_servers(double offered_load, double max_blocking,
                                 uint32_t *out);

/* ---- general service and arrival distributions ---------------------- */

/*
 * lbk_mg1_mean_wait - M/G/1 mean time in queue, Pollaczek-Khinchine (exact
 * for Poisson arrivals): Wq = rho (1 + cs2) / (2 (1 - rho)) E[S],
 * rho = lambda E[S].  The mean response is Wq + E[S].
 * @lambda:       arrival rate >= 0.
 * @mean_service: E[S] > 0.
 * @scv_service:  cs2 = Var[S] / E[S]^2 >= 0 (1 for exponential, 0 for
 *                deterministic).
 * @out:          receives Wq >= 0.
 * Returns 0, LBK_EINVAL or LBK_EUNSTABLE (rho >= 1).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_mg1_mean_wait(double lambda, double mean_service,
                              double scv_service, double *out);

/*
 * lbk_gg1_kingman_wait - Kingman's G/G/1 approximation of the mean time in
 * queue: Wq ~ rho / (1 - rho) (ca2 + cs2) / 2 E[S], rho = E[S] / E[A]
 * (exact for M/M/1; accurate in heavy traffic).
 * @mean_interarrival: E[A] > 0.
 * @scv_arrival:       ca2 >= 0.
 * @mean_service:      E[S] > 0.
 * @scv_service:       cs2 >= 0.
 * @out:               receives Wq >= 0.
 * Returns 0, LBK_EINVAL or LBK_EUNSTABLE (rho >= 1).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_gg1_kingman_wait(double mean_interarrival, double scv_arrival,
                                 double mean_service, double scv_service,
                                 double *out);

/*
 * lbk_ggn_allen_cunneen_wait - Allen-Cunneen's G/G/N approximation of the
 * mean time in queue: Wq ~ C(N, a) / (N mu - lambda) (ca2 + cs2) / 2 with
 * lambda = 1 / E[A], mu = 1 / E[S], a = E[S] / E[A] (exact for M/M/N).
 * @mean_interarrival: E[A] > 0.
 * @scv_arrival:       ca2 >= 0.
 * @mean_service:      E[S] > 0.
 * @scv_service:       cs2 >= 0.
 * @servers:           N >= 1.
 * @out:               receives Wq >= 0.
 * Returns 0, LBK_EINVAL, LBK_EUNSTABLE (a >= N) or LBK_ERANGE.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_ggn_allen_cunneen_wait(double mean_interarrival,
                                       double scv_arrival, double mean_service,
                                       double scv_service, uint32_t servers,
                                       double *out);

/* ---- Little's law: L = lambda W ------------------------------------- */

/*
 * lbk_little_items - L = lambda W, the mean number in a system.
 * @rate: throughput lambda >= 0.  @time: mean time in the system W >= 0.
 * @out:  receives L.
 * Returns 0, LBK_EINVAL (negative, NaN or infinite input, out NULL) or
 * LBK_ERANGE (the product overflows).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_little_items(double rate, double time, double *out);

/*
 * lbk_little_time - W = L / lambda, the mean time in a system.
 * @items: mean number in the system L >= 0.  @rate: throughput lambda > 0.
 * @out:   receives W.
 * Returns 0, LBK_EINVAL (items < 0, rate <= 0, NaN or infinite, out NULL)
 * or LBK_ERANGE (the quotient overflows).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_little_time(double items, double rate, double *out);

/*
 * lbk_little_rate - lambda = L / W, the throughput of a system.
 * @items: mean number in the system L >= 0.  @time: mean time W > 0.
 * @out:   receives lambda.
 * Returns 0, LBK_EINVAL (items < 0, time <= 0, NaN or infinite, out NULL)
 * or LBK_ERANGE (the quotient overflows).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_little_rate(double items, double time, double *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_QUEUEING_H */
