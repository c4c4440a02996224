/*
 * lib/queueing_internal.h - what the two halves of the queueing module share
 * (not installed).
 *
 * lib/queueing.c evaluates Erlang B and C through the Poisson tail ratio
 * R(N, a) = 1/B(N, a) - 1, carried in scaled form so nothing overflows;
 * lib/queueing_metrics.c builds every M/M/N metric, tail, quantile and
 * sizing answer on top of it.  This header is the seam between them: the
 * scaled value, the function that computes it, and the three ways to turn
 * it into a probability without cancellation.
 */
#ifndef LBKIT_QUEUEING_INTERNAL_H
#define LBKIT_QUEUEING_INTERNAL_H

#include <float.h>
#include <stdint.h>

/* A positive value m * e^e with e >= 0 (m may be +inf).  e is 0 unless the
 * value would overflow a double; when it is not 0 it is at least 1. */
typedef struct lbk_scaled {
    double m;
    double e;
} lbk_scaled;

/* Results below DBL_MIN are returned as exactly 0 (documented in
 * queueing.h): never subnormal. */
static inline double lbk_flush_tiny(double x)
{
    return x < DBL_MIN ? 0.0 : x;
}

/* R(N, a) = 1/B(N, a) - 1 for a >= 0 (finite) and N >= 1; +inf at a = 0.
 * The caller validates the arguments. */
lbk_scaled lbk_erlang_ratio(double a, uint32_t servers);

/* 1 / (1 + g e^e), flushed below DBL_MIN; g >= 0 (may be +inf).  With
 * g = R this is B, with g = (1 - rho) R it is C. */
double lbk_inv1p_scaled(double g, double e);

/* 1 - 1 / (1 + g e^e), without cancellation (1 - C, say). */
double lbk_inv1p_complement_scaled(double g, double e);

/* ln(1 / (1 + g e^e)), finite where the probability underflows. */
double lbk_log_inv1p_scaled(double g, double e);

#endif /* LBKIT_QUEUEING_INTERNAL_H */
