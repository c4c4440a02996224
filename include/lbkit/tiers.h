/*
 * lbkit/tiers.h - priority tiers with spill-over (Envoy's priority levels).
 *
 * Answers "which backend gets the next request when backends come in
 * preference tiers?": traffic goes to the most preferred tier (priority 0)
 * while it has enough healthy capacity and spills over to the next tiers as
 * it degrades.  Choose it when a set mixes a primary pool with fail-over
 * pools (another zone, a DR site, DNS SRV priorities); choose a plain
 * picker (rr.h, wrr.h, random.h) when every backend is equal.
 * Cost: pick O(N) relaxed atomic loads (health is re-counted per tier at
 * every pick, so a health change counts at once, with no rebuild) and no
 * allocation; build O(N log N); memory 16 bytes per backend plus 4 per
 * priority level.
 *
 * The rule, after Envoy (docs: "Priority levels"; code:
 * LoadBalancerBase::recalculatePerPriorityState and distributeLoad), in
 * integer percent, with overprovisioning factor F (percent, default 140):
 *
 *   health(p) = min(100, F * healthy(p) / total(p))      (0 if total(p) = 0)
 *   normalized_total = min(100, sum over p of health(p))
 *   load(p) = min(remaining, health(p) * 100 / normalized_total), in order
 *             of p, remaining starting at 100 and decreasing by each load
 *   the rounding remainder goes to the first level with health > 0.
 *
 * So with F = 140 a tier keeps all its traffic until fewer than ~71.4% of its
 * backends are healthy (72% healthy -> 100%, 71% -> 99%, 50% -> 70%), the
 * next tier takes the rest, and when the tiers together are short of 100
 * their scores are scaled up to fill 100 (health {20, 30} -> load {40, 60}).
 * "healthy" means eligible (UP, not ejected: lbk_backend_eligible) and
 * "total" counts the tier's backends with weight > 0 (weight 0 takes no new
 * traffic, as Envoy's excluded hosts).  Levels are the priority values
 * 0..LBK_PRIORITY_MAX; an unused value is a level with no backends.  When no
 * backend anywhere is eligible the load is 100% to level 0 (Envoy with
 * panic disabled) and picks return LBK_ENOBACKEND; the panic threshold
 * belongs to resilience modules, not here.
 *
 * Within the chosen tier the pick is weighted random over the eligible
 * backends, weight = snapshot weight x the backend's weight scale (slow
 * start); if all of those are 0 it is uniform over the eligible ones.
 * Envoy's documentation rounds one example differently from its code
 * (health {35, 35, 28} is shown as 36/36/28; the code gives 37/35/28):
 * lbkit follows the code.
 */
#ifndef LBKIT_TIERS_H
#define LBKIT_TIERS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_tiers lbk_tiers;

/* Number of priority levels (0 .. LBK_PRIORITY_MAX). */
#define LBK_TIERS_LEVELS (LBK_PRIORITY_MAX + 1u)

/* Envoy's default overprovisioning factor, 1.4, in percent. */
#define LBK_TIERS_DEFAULT_OVERPROVISIONING 140u

typedef struct lbk_tiers_options {
    /* Overprovisioning factor in percent (140 = 1.4); 100 .. 1000. */
    uint32_t overprovisioning_percent;
    /* Seed of the picker's random stream; 0 = a per-object seed. */
    uint64_t seed;
} lbk_tiers_options;

/*
 * lbk_tiers_options_init - the defaults: overprovisioning 140, seed 0.
 * opts NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_tiers_options_init(lbk_tiers_options *opts);

/*
 * lbk_tiers_compute_loads - Envoy's priority load from per-level counts,
 * without a set: the rule above applied to healthy[p] of total[p] backends
 * for p in 0..levels-1.  loads_out[p] receives the percent of traffic to
 * level p; the loads sum to 100.
 * Errors: LBK_EINVAL (an array NULL, levels 0, healthy[p] > total[p]),
 * LBK_ERANGE (levels > LBK_TIERS_LEVELS, overprovisioning_percent outside
 * 100..1000).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_tiers_compute_loads(const uint32_t *healthy,
                                    const uint32_t *total, size_t levels,
                                    uint32_t overprovisioning_percent,
                                    uint32_t *loads_out);

/*
 * lbk_tiers_build - a tiered picker over snap (grouped by the priority each
 * backend had in the snapshot).  Keeps a reference to snap.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * Errors: LBK_EINVAL (snap or out NULL, invalid allocator), LBK_ERANGE
 * (overprovisioning_percent outside 100..1000), LBK_ENOMEM.
 * Thread safety: safe from any thread (reads the immutable snapshot).
 */
LBK_API int lbk_tiers_build(const lbk_snapshot *snap,
                            const lbk_tiers_options *opts,
                            const lbk_allocator *alloc, lbk_tiers **out);

/*
 * lbk_tiers_free - drop the builder's reference; the picker (and its
 * snapshot reference) go when no reader holds it.  NULL is a no-op.
 * Thread safety: any thread, once per built object.
 */
LBK_API void lbk_tiers_free(lbk_tiers *t);

/*
 * lbk_tiers_retain - one more reference (for a reader that got t from a
 * publication cell or shares it across threads); drop with lbk_tiers_free.
 * Errors: LBK_EINVAL (t NULL).
 * Thread safety: any thread, by a caller already holding a reference.
 */
LBK_API int lbk_tiers_retain(lbk_tiers *t);

/*
 * lbk_tiers_pick - choose a tier by the current priority load (health read
 * now), then a backend in it (weighted random over its eligible backends).
 * Errors: LBK_EINVAL (t or out NULL), LBK_ENOBACKEND (no eligible backend
 * with weight > 0 in any tier).
 * Thread safety: any thread, concurrently (lock-free, allocation-free).
 */
LBK_API int lbk_tiers_pick(lbk_tiers *t, lbk_backend **out);

/*
 * lbk_tiers_load - the priority load right now: loads_out[p] = percent of
 * traffic for priority p, for p < n (levels at or above n are not written;
 * the loads of all levels sum to 100).  Returns the number of levels in use
 * (highest priority in the snapshot + 1; 1 for an empty snapshot), so a
 * caller can size loads_out.
 * Errors: LBK_EINVAL (t NULL, or loads_out NULL with n > 0).
 * Thread safety: any thread (reads live health, like a pick).
 */
LBK_API int lbk_tiers_load(lbk_tiers *t, uint32_t *loads_out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_TIERS_H */
