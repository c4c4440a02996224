/*
 * lbkit/outlier.h - outlier ejection: passive health from real outcomes.
 *
 * Answers "which backends are failing real requests and should sit out for a
 * while?".  Choose it with any picker: an ejected backend is flagged in the
 * backend set (lbk_backend_set_ejected), which every picker honours, so it
 * composes with health checks (a backend serves only when UP and not
 * ejected).  Choose healthcheck.h for active probes, breaker.h to guard a
 * single dependency, and panic.h for what to do when too many are out.
 * Cost: report O(1), a few atomics on the backend's own cache line; tick O(N)
 * (success-rate pass); memory one cache line per backend slot.
 *
 * Rules and defaults follow Envoy's outlier detection (docs:
 * api-v3 config.cluster.v3.OutlierDetection, "Outlier detection"
 * architecture overview):
 *  - consecutive errors: consecutive_5xx (5) errors of any kind in a row, or
 *    consecutive_gateway (5) gateway errors (502/503/504, connect failures)
 *    in a row, eject at once.  Envoy enforces them with probability
 *    enforcing_consecutive_5xx (1.0) and enforcing_consecutive_gateway (0.0:
 *    Envoy's default leaves gateway ejection off).  A threshold of 0
 *    disables the rule.  The counter restarts when it fires.
 *  - success rate: at each interval (10 s), over the backends with at least
 *    success_rate_request_volume (100) requests in the interval, if there are
 *    at least success_rate_minimum_hosts (5) of them, a backend whose success
 *    rate is below mean - success_rate_stdev_factor (1.9) x stdev (population
 *    standard deviation) is ejected, with probability enforcing_success_rate
 *    (1.0).
 *  - ejection time = base_ejection (30 s) x the backend's ejection
 *    multiplier, capped at max(base_ejection, max_ejection) (300 s).  The
 *    multiplier grows by one at each ejection and shrinks by one at each
 *    interval the backend spends un-ejected (Envoy's eject-time back-off).
 *  - maximum ejected: a backend is ejected only if the ejected count, with
 *    it, stays within max_ejection_fraction (0.1) of all backends - today's
 *    Envoy rule.  Envoy before 1.27 (and gRPC) always let at least one host
 *    be ejected; set always_eject_one to get that: when nothing is ejected,
 *    one backend may be whatever the fraction.  With max_ejection_fraction 1
 *    every backend may be ejected; panic.h then decides what still serves.
 *  - un-ejection: lbk_outlier_tick(now) returns every backend whose time is
 *    up.  Envoy checks only at interval ticks; here any tick un-ejects, and
 *    the success-rate pass runs when an interval has passed since the last.
 * Where lbkit differs: no failure-percentage or local-origin split rules, no
 * ejection jitter; outcomes reported while a backend is ejected are ignored.
 * A detector covers one snapshot; lbk_outlier_inherit carries its state to
 * the detector of the next one.
 *
 * Threads: lbk_outlier_report from any number of threads (atomics; an
 * ejection reserves its place under the maximum with a compare-and-swap on
 * the ejected count, so the maximum holds under races).  lbk_outlier_tick,
 * create, free and uneject_all from one control thread.  Time going
 * backwards is treated as no time passing.
 */
#ifndef LBKIT_OUTLIER_H
#define LBKIT_OUTLIER_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_outlier lbk_outlier;

/* What happened to one request. */
typedef enum lbk_outlier_result {
    LBK_OUTCOME_SUCCESS = 0,
    LBK_OUTCOME_ERROR = 1,        /* a 5xx or equivalent server error */
    LBK_OUTCOME_GATEWAY_ERROR = 2 /* 502/503/504, reset, connect failure */
} lbk_outlier_result;

typedef struct lbk_outlier_options {
    uint64_t interval_ns;             /* success-rate pass period; > 0; 10 s */
    uint64_t base_ejection_ns;        /* > 0; 30 s */
    uint64_t max_ejection_ns;         /* cap on one ejection; 300 s */
    double max_ejection_fraction;     /* [0, 1]; 0.1 */
    bool always_eject_one;            /* pre-1.27 Envoy rule; false */
    uint32_t consecutive_5xx;         /* 0 = off; 5 */
    uint32_t consecutive_gateway;     /* 0 = off; 5 */
    double enforcing_consecutive_5xx; /* [0, 1]; 1.0 */
    double enforcing_consecutive_gateway; /* [0, 1]; 0.0 */
    double enforcing_success_rate;        /* [0, 1]; 1.0 */
    uint32_t success_rate_minimum_hosts;  /* >= 1; 5 */
    uint32_t success_rate_request_volume; /* >= 1; 100 */
    double success_rate_stdev_factor;     /* finite, >= 0; 1.9 */
    uint64_t seed; /* enforcement draws; 0 = a per-object seed */
} lbk_outlier_options;

/* Per-backend view, for tests and metrics. */
typedef struct lbk_outlier_info {
    bool ejected;
    uint64_t ejected_until_ns; /* 0 when not ejected */
    uint32_t multiplier;       /* current ejection-time multiplier */
    uint32_t times_ejected;    /* total ejections */
    uint32_t consecutive_5xx;
    uint32_t consecutive_gateway;
    uint32_t interval_requests; /* since the last success-rate pass */
    uint32_t interval_successes;
} lbk_outlier_info;

/*
 * lbk_outlier_options_init - Envoy's defaults (see above).  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_outlier_options_init(lbk_outlier_options *opts);

/*
 * lbk_outlier_create - a detector for the backends of snap (it keeps a
 * reference to snap).  The first success-rate interval starts at now_ns.
 * opts NULL means the defaults; alloc NULL means malloc/free.
 * Errors: LBK_EINVAL (snap or out NULL, invalid allocator, a zero interval or
 * base ejection, a fraction or probability NaN or outside [0, 1], stdev
 * factor negative, NaN or infinite, minimum hosts or request volume 0),
 * LBK_ENOMEM.
 * Thread safety: control thread.
 */
LBK_API int lbk_outlier_create(const lbk_snapshot *snap,
                               const lbk_outlier_options *opts,
                               const lbk_allocator *alloc, uint64_t now_ns,
                               lbk_outlier **out);

/*
 * lbk_outlier_free - release the detector and its snapshot reference.
 * Ejection flags it set stay set (call lbk_outlier_uneject_all first when
 * the backends go on without a detector).  NULL is a no-op.
 * Thread safety: control thread, once no report is running.
 */
LBK_API void lbk_outlier_free(lbk_outlier *od);

/*
 * lbk_outlier_inherit - carry the state of every backend od shares with prev
 * (the detector of an earlier snapshot): streaks, interval counts,
 * ejections and their deadlines, multipliers, and the interval clock.  Call
 * it right after creating od for a new snapshot, before reports reach od,
 * then free prev: without it a new detector would treat every backend as
 * fresh, and its first tick would clear ejections prev made.  Backends only
 * in od start fresh; those only in prev are dropped (and keep whatever flag
 * they have, as they are no longer in the set).  Returns the number carried.
 * Errors: LBK_EINVAL (NULL argument, or od == prev).
 * Thread safety: control thread; no report may be running on od, and
 * reports still running on prev may be missed.
 */
LBK_API int lbk_outlier_inherit(lbk_outlier *od, const lbk_outlier *prev);

/*
 * lbk_outlier_report - one request's outcome on backend b at now_ns.
 * Returns 1 when this report ejected b, else 0.
 * Errors: LBK_EINVAL (od or b NULL, outcome not an lbk_outlier_result),
 * LBK_ENOENT (b is not in the detector's snapshot). Thread safety: any thread,
 * concurrently; lock-free.
 */
LBK_API int lbk_outlier_report(lbk_outlier *od, lbk_backend *b,
                               lbk_outlier_result outcome, uint64_t now_ns);

/*
 * lbk_outlier_tick - un-eject backends whose time is up at now_ns, and, when
 * interval_ns has passed since the last pass, run the success-rate pass
 * (which also lowers multipliers and starts a new interval).
 * Returns the number of backends ejected or un-ejected by this call.
 * Errors: LBK_EINVAL (od NULL).
 * Thread safety: control thread (one at a time); reports may run meanwhile.
 */
LBK_API int lbk_outlier_tick(lbk_outlier *od, uint64_t now_ns);

/*
 * lbk_outlier_uneject_all - clear every ejection this detector made (and
 * the backends' flags).  Returns the number un-ejected.
 * Errors: LBK_EINVAL (od NULL).
 * Thread safety: control thread.
 */
LBK_API int lbk_outlier_uneject_all(lbk_outlier *od);

/*
 * lbk_outlier_ejected_count - backends this detector holds ejected now.
 * Returns 0 for NULL.  Thread safety: any thread.
 */
LBK_API uint32_t lbk_outlier_ejected_count(const lbk_outlier *od);

/*
 * lbk_outlier_get_info - the detector's state for backend b.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (b not in the snapshot).
 * Thread safety: any thread (fields are read one by one).
 */
LBK_API int lbk_outlier_get_info(const lbk_outlier *od, const lbk_backend *b,
                                 lbk_outlier_info *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_OUTLIER_H */
