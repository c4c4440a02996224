/*
 * lbkit/healthcheck.h - active health-check scheduling and thresholds.
 *
 * Answers "which backend should I probe next, when, and what does its result
 * mean for its health?".  The caller performs the probes (HTTP, TCP, gRPC,
 * anything) and reports each result; this module keeps per-backend
 * next-probe times with seeded jitter, applies healthy/unhealthy thresholds
 * of consecutive results, sets the backend's health in the set
 * (lbk_backend_set_health), and adapts each backend's probe interval.
 * Choose it when you can probe; outlier.h learns from real traffic instead,
 * and the two compose (a backend serves only when UP and not ejected).
 * Cost: next O(log N), report O(log N) (a binary heap of due times); create
 * O(N); memory 48 bytes per backend slot plus 4 per backend.
 *
 * Thresholds (Envoy's health checking, docs: "Health checking"): a backend
 * goes DOWN after unhealthy_threshold consecutive failed probes and UP after
 * healthy_threshold consecutive successful ones.  As in Envoy, a backend that
 * was never probed needs a single success to go UP.  Backends start with
 * whatever health they have in the set.  A backend the caller set DRAINING
 * is probed and counted, but its health is left alone.
 *
 * Scheduling: the first probe of each backend is at create time plus a
 * uniform draw in [0, initial_jitter_ns) (spreading a fleet's probes, Envoy's
 * initial_jitter); after a result the next probe is due at
 * now + I + a uniform draw in [0, jitter_fraction x I], I being the
 * backend's current interval.  A backend returned by lbk_healthcheck_next is
 * "in flight" and is not returned again until its result is reported (report
 * a failure on timeout).
 *
 * Adaptive interval (lbkit's rule; Envoy has fixed unhealthy_interval and
 * edge intervals instead): I starts at interval_ns.
 *  - A result that disagrees with the backend's current health (a failure
 *    while UP, a success while DOWN) sets I = min_interval_ns: a possible
 *    flap is confirmed or refuted quickly, and a health change is reached
 *    within threshold x min_interval.
 *  - Each run of stable_probes consecutive results that agree with the
 *    current health doubles I, up to max_interval_ns: a stable backend is
 *    probed less and less.
 * So a flapping backend is probed at min_interval and a backend stable for a
 * long time at max_interval.
 *
 * Time going backwards is treated as no time passing (a probe is never
 * scheduled before the time passed).
 */
#ifndef LBKIT_HEALTHCHECK_H
#define LBKIT_HEALTHCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_healthcheck lbk_healthcheck;

typedef struct lbk_healthcheck_options {
    uint64_t interval_ns;         /* starting interval, > 0; default 10 s */
    uint64_t min_interval_ns;     /* > 0, <= interval; default 1 s */
    uint64_t max_interval_ns;     /* >= interval; default 60 s */
    uint64_t initial_jitter_ns;   /* first probes spread; default interval */
    double jitter_fraction;       /* [0, 1]; default 0.1 */
    uint32_t healthy_threshold;   /* >= 1; default 2 */
    uint32_t unhealthy_threshold; /* >= 1; default 3 */
    uint32_t stable_probes;       /* >= 1; default 5 */
    uint64_t seed;                /* jitter draws; 0 = a per-object seed */
} lbk_healthcheck_options;

/* Per-backend view, for tests and metrics. */
typedef struct lbk_healthcheck_info {
    uint64_t next_due_ns; /* UINT64_MAX while a probe is in flight */
    uint64_t interval_ns; /* current adaptive interval */
    uint32_t successes;   /* consecutive */
    uint32_t failures;    /* consecutive */
    bool probed;          /* at least one result reported */
    bool in_flight;
} lbk_healthcheck_info;

/* lbk_healthcheck_options_init - the defaults above.  NULL is a no-op.
 * Thread safety: safe from any thread. */
LBK_API void lbk_healthcheck_options_init(lbk_healthcheck_options *opts);

/*
 * lbk_healthcheck_create - a schedule for the backends of snap (kept
 * referenced), first probes from now_ns.
 * Errors: LBK_EINVAL (snap or out NULL, invalid allocator, an interval 0,
 * min > interval, max < interval, a threshold or stable_probes 0,
 * jitter_fraction NaN or outside [0, 1]), LBK_ENOMEM.
 * Thread safety: control thread.
 */
LBK_API int lbk_healthcheck_create(const lbk_snapshot *snap,
                                   const lbk_healthcheck_options *opts,
                                   const lbk_allocator *alloc, uint64_t now_ns,
                                   lbk_healthcheck **out);

/* lbk_healthcheck_free - NULL is a no-op.  Thread safety: control thread. */
LBK_API void lbk_healthcheck_free(lbk_healthcheck *hc);

/*
 * lbk_healthcheck_next - the backend whose probe is due at now_ns (the
 * earliest due), now marked in flight.  Returns 1 with *out set, or 0 when
 * nothing is due (*out untouched).
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: control thread.
 */
LBK_API int lbk_healthcheck_next(lbk_healthcheck *hc, uint64_t now_ns,
                                 lbk_backend **out);

/*
 * lbk_healthcheck_next_due - the earliest due time among backends not in
 * flight (to sleep until).
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (every probe is in flight,
 * or there are no backends).
 * Thread safety: control thread.
 */
LBK_API int lbk_healthcheck_next_due(const lbk_healthcheck *hc,
                                     uint64_t *due_ns);

/*
 * lbk_healthcheck_report - the result of a probe of b finished at now_ns
 * (in flight or not: an unsolicited result counts too and reschedules b).
 * Applies the thresholds, may set b's health, adapts and reschedules.
 * Returns 1 when b's health changed, else 0.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (b not in the snapshot).
 * Thread safety: control thread.
 */
LBK_API int lbk_healthcheck_report(lbk_healthcheck *hc, lbk_backend *b,
                                   bool success, uint64_t now_ns);

/*
 * lbk_healthcheck_get_info - b's schedule and counters.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (b not in the snapshot).
 * Thread safety: control thread.
 */
LBK_API int lbk_healthcheck_get_info(const lbk_healthcheck *hc,
                                     const lbk_backend *b,
                                     lbk_healthcheck_info *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_HEALTHCHECK_H */
