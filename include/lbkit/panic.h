/*
 * lbkit/panic.h - the panic threshold: when too few are healthy, use all.
 *
 * Answers "is this tier too degraded to trust its health flags, so that
 * traffic should go to all of its backends?".  When health checks or
 * ejection take out most of a tier, sending everything to the few survivors
 * overloads them and turns a partial outage into a full one; Envoy's answer
 * (docs: "Panic threshold", healthy_panic_threshold, default 50%) is to
 * ignore health in that tier and balance across all of its backends.  Choose
 * it next to any picker; tiers.h decides which tier gets traffic, this
 * decides whether health filtering applies within one.
 * Cost: update O(N) relaxed loads; active/admits O(1), one atomic load;
 * memory 1 KB per object.
 *
 * Rule, per priority tier p (Envoy's, counted by backend, not by weight):
 *   total(p)   = backends of the tier with weight > 0 (as tiers.h counts)
 *   healthy(p) = those of them eligible (UP and not ejected)
 *   panic(p)   = total(p) > 0 and healthy(p) < threshold x total(p)
 * Strictly below: at exactly the threshold the tier is not in panic.
 * Threshold 0 disables panic.  A tier with every backend out is in panic
 * (for any threshold > 0), which is what lets an all-ejected tier still
 * serve.  In panic, lbk_panic_admits() accepts every backend of the tier
 * with weight > 0, whatever its health.
 * Where lbkit differs from Envoy: the rule is evaluated per tier only;
 * Envoy also enters panic when the normalized total health across
 * priorities is short, which tiers.h's load spreading covers.
 */
#ifndef LBKIT_PANIC_H
#define LBKIT_PANIC_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_panic lbk_panic;

/* Envoy's default healthy_panic_threshold, 50%. */
#define LBK_PANIC_DEFAULT_THRESHOLD 0.5

/* One tier's counts and verdict. */
typedef struct lbk_panic_tier {
    uint32_t total;   /* backends with weight > 0 */
    uint32_t healthy; /* of those, eligible */
    bool panic;
} lbk_panic_tier;

/*
 * lbk_panic_eval - evaluate tier `priority` of snap against threshold, from
 * the backends' live state now, without an object.
 * Errors: LBK_EINVAL (snap or out NULL, threshold NaN or outside [0, 1]),
 * LBK_ERANGE (priority above LBK_PRIORITY_MAX).
 * Thread safety: any thread (reads atomics).
 */
LBK_API int lbk_panic_eval(const lbk_snapshot *snap, double threshold,
                           uint32_t priority, lbk_panic_tier *out);

/*
 * lbk_panic_create - an object holding every tier's verdict for pickers to
 * read; all tiers start out of panic until the first lbk_panic_update.
 * Errors: LBK_EINVAL (out NULL, invalid allocator, threshold NaN or outside
 * [0, 1]), LBK_ENOMEM.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_panic_create(double threshold, const lbk_allocator *alloc,
                             lbk_panic **out);

/* lbk_panic_free - NULL is a no-op.
 * Thread safety: once no other thread uses p. */
LBK_API void lbk_panic_free(lbk_panic *p);

/*
 * lbk_panic_update - recount every tier of snap from live state and publish
 * the verdicts.  Returns the number of tiers in panic.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: one updating thread at a time; readers any thread.
 */
LBK_API int lbk_panic_update(lbk_panic *p, const lbk_snapshot *snap);

/*
 * lbk_panic_active - whether tier `priority` was in panic at the last
 * update (false for NULL or a priority above LBK_PRIORITY_MAX).
 * Thread safety: any thread.
 */
LBK_API bool lbk_panic_active(const lbk_panic *p, uint32_t priority);

/*
 * lbk_panic_get_tier - tier `priority`'s counts and verdict at the last
 * update.
 * Errors: LBK_EINVAL (NULL argument), LBK_ERANGE (priority too large).
 * Thread safety: any thread (fields read one by one).
 */
LBK_API int lbk_panic_get_tier(const lbk_panic *p, uint32_t priority,
                               lbk_panic_tier *out);

/*
 * lbk_panic_admits - whether the i-th backend of snap may take a request:
 * weight > 0 and either eligible or its tier in panic (per p's last update).
 * false for NULL arguments or i out of range.
 * Thread safety: any thread.
 */
LBK_API bool lbk_panic_admits(const lbk_panic *p, const lbk_snapshot *snap,
                              uint32_t i);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_PANIC_H */
