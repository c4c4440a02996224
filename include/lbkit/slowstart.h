/*
 * lbkit/slowstart.h - slow start: ramp a new or recovering backend's weight.
 *
 * Answers "how much of its weight should a backend that just joined, or just
 * came back, carry right now?".  Choose it when backends need warm-up (JIT,
 * caches, connection pools) before taking their full share; it works with
 * every picker that honours the backend weight scale (round-robin, weighted
 * round-robin, least-connections, P2C, tiers).  Choose outlier.h or
 * healthcheck.h to decide whether a backend serves at all.
 * Cost: update O(N) per call, one atomic store per ramping backend; the
 * factor helper O(1); memory 24 bytes per backend slot.
 *
 * The rule is Envoy's slow_start_config (docs: "Slow start mode"):
 *
 *   scale = max(min_weight_fraction, time_factor ^ (1 / aggression))
 *   time_factor = max(seconds since the ramp started, 1) / window seconds
 *
 * applied while time since start < window, then 1.  Defaults: aggression 1
 * (linear), min_weight_fraction 0.1 (Envoy's min_weight_percent 10%); Envoy
 * has no default window, lbkit uses 60 s.
 *
 * When a ramp starts: a backend that appears in a snapshot and was not in
 * the previous slow-start object's (a new backend), and any backend whose
 * eligibility (UP and not ejected) goes from no to yes between two updates
 * (recovered from a failed health check, as in Envoy, and also back from
 * outlier ejection, where Envoy does not ramp: a host out for minutes is just
 * as cold).  The ramp is applied through lbk_backend_set_weight_scale() by
 * lbk_slowstart_update(), which the caller drives (e.g. once a second); use
 * lbk_slowstart_factor() to compute the factor on demand instead.
 * Time going backwards is treated as no time passing.
 */
#ifndef LBKIT_SLOWSTART_H
#define LBKIT_SLOWSTART_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_slowstart lbk_slowstart;

typedef struct lbk_slowstart_options {
    uint64_t window_ns;         /* ramp length, > 0; default 60 s */
    double aggression;          /* > 0, finite; default 1.0 */
    double min_weight_fraction; /* [0, 1]; default 0.1 */
    /* Ramp the backends of the first snapshot too (no previous object);
     * default false: a fresh deployment starts at full weight, since slow
     * start cannot help when every backend is new. */
    bool ramp_initial;
} lbk_slowstart_options;

/* lbk_slowstart_options_init - the defaults above.  NULL is a no-op.
 * Thread safety: safe from any thread. */
LBK_API void lbk_slowstart_options_init(lbk_slowstart_options *opts);

/*
 * lbk_slowstart_factor - the weight scale in [min_weight_fraction, 1] of a
 * backend whose ramp started at start_ns, at now_ns (now before start counts
 * as 0 s).  opts NULL means the defaults.
 * Errors: LBK_EINVAL (out NULL; window 0; aggression not > 0, NaN or
 * infinite; min_weight_fraction NaN or outside [0, 1]).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_slowstart_factor(const lbk_slowstart_options *opts,
                                 uint64_t start_ns, uint64_t now_ns,
                                 double *out);

/*
 * lbk_slowstart_create - ramp state for the backends of snap (kept
 * referenced).  prev: the object for the previous snapshot, or NULL;
 * backends listed there keep their ramp, backends new to snap start one at
 * now_ns (with prev NULL, only when opts->ramp_initial).  The object applies
 * nothing until lbk_slowstart_update.
 * Errors: LBK_EINVAL (snap or out NULL, invalid allocator, invalid options
 * as for lbk_slowstart_factor), LBK_ENOMEM.
 * Thread safety: control thread.
 */
LBK_API int lbk_slowstart_create(const lbk_snapshot *snap,
                                 const lbk_slowstart_options *opts,
                                 const lbk_slowstart *prev, uint64_t now_ns,
                                 const lbk_allocator *alloc,
                                 lbk_slowstart **out);

/* lbk_slowstart_free - NULL is a no-op.  Weight scales stay as last set.
 * Thread safety: control thread. */
LBK_API void lbk_slowstart_free(lbk_slowstart *ss);

/*
 * lbk_slowstart_begin - (re)start b's ramp at now_ns, e.g. after the caller
 * restarted the process behind it.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (b not in the snapshot).
 * Thread safety: control thread.
 */
LBK_API int lbk_slowstart_begin(lbk_slowstart *ss, lbk_backend *b,
                                uint64_t now_ns);

/*
 * lbk_slowstart_update - start ramps for backends that became eligible since
 * the last update, and set every ramping backend's weight scale for now_ns
 * (1.0 when its ramp ends).  Returns the number of backends still ramping.
 * Errors: LBK_EINVAL (ss NULL).
 * Thread safety: control thread; pickers read the scales from any thread.
 */
LBK_API int lbk_slowstart_update(lbk_slowstart *ss, uint64_t now_ns);

/*
 * lbk_slowstart_ramping - whether b is in its ramp (as of the last update or
 * begin), false for NULL or unknown backends.
 * Thread safety: control thread.
 */
LBK_API bool lbk_slowstart_ramping(const lbk_slowstart *ss,
                                   const lbk_backend *b);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_SLOWSTART_H */
