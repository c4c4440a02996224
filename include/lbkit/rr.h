/*
 * lbkit/rr.h - round-robin: every eligible backend in turn.
 *
 * Answers "which backend gets the next request" when all backends are alike
 * and the only goal is to spread requests evenly by count.  Choose it over
 * wrr.h when weights do not matter (backends with weight 0 are still left
 * out), over random.h when an exact even spread matters more than
 * statelessness, and over leastconn.h/p2c.h when requests cost about the
 * same everywhere.  Cost: pick O(1) (one counter update, one backend state
 * load; see the bound below when backends are down), build O(N), memory 8 bytes
 * plus 1 bit per backend.
 *
 * Order.  The picker lists the snapshot's backends of weight > 0 in slot
 * order and hands out turns from a shared atomic counter, starting at a
 * random position (seedable), so a fleet of clients built at the same moment
 * does not all send its first request to the same backend.
 *
 * Backends that are down.  A backend whose turn it is but that is not
 * eligible (lbk_backend_eligible() false: down, draining or ejected) passes
 * its turn on, at that very pick, with no rebuild.  The turn goes to a
 * backend drawn uniformly from those the picker believes eligible, by a
 * bitmap of hints it keeps (1 bit per backend, set when a backend is seen
 * eligible, cleared when it is seen not to be): first by up to 32 random
 * probes of the bitmap (rejection sampling), then, if all miss, by counting
 * the hints and taking the k-th for a random k.  So a down backend's turns
 * are spread evenly over the others.  Bound on work per pick:
 *
 *   - turn-owner eligible:      1 backend state load (the common case);
 *   - turn-owner not eligible:  at most 32 + 3 * ceil(n/64) reads of the
 *     hint bitmap, and the state loads of the owner, of the substitute and
 *     of every stale hint met (each backend going down costs each picker
 *     at most one such load per thread that races to discover it; a
 *     backend up at weight scale 0 keeps its hint and costs one each
 *     time).  With a fraction f of backends up, the probes succeed with
 *     probability 1 - (1 - f)^32 (over 96% for f >= 10%), so the O(n/64)
 *     count is only for sparse survivors;
 *   - bitmap empty: one pass over all n states, which also refills the
 *     bitmap.  This happens only when every hinted backend has gone down,
 *     so it is the price of never answering LBK_ENOBACKEND while some backend
 *     is up; with all n down, every pick costs n state loads.
 *
 * A backend coming back up takes its own turns again at once; it is used
 * for other backends' turns once its hint is set again, i.e. after its next
 * own turn (within n picks).
 *
 * Slow start.  A backend whose weight scale s (lbk_backend_set_weight_scale)
 * is below 1 takes its turn with probability s and otherwise passes it on as
 * above, where the fallback takes any eligible backend with s > 0.  So a
 * warming backend gets about s of a full share; s = 0 takes nothing.  At
 * full scale this costs one relaxed load on the backend's state cache line.
 *
 * Concurrency.  Picks from any number of threads share one turn counter.
 * By default it is advanced with a relaxed atomic load and store, not an
 * atomic add: on the reference machine (2-core x86-64 VM) a locked add
 * costs about 14 ns, the load and store under 1 ns.  Two picks that overlap
 * in time may then take the same turn, giving that backend one extra pick;
 * no turn is skipped, so the rotation stays even, and picks that do not
 * overlap (one thread, or a lightly loaded picker) are exact: over any n
 * consecutive turns each eligible backend is picked exactly once.  Set
 * options.exact_turns for a locked add: every pick then gets a distinct
 * turn whatever the concurrency.
 */
#ifndef LBKIT_RR_H
#define LBKIT_RR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_rr lbk_rr;

typedef struct lbk_rr_options {
    /* Seed of the starting position and the probes; 0 draws a different
     * one for every picker. */
    uint64_t seed;
    /* Give every pick a distinct turn even when picks overlap (an atomic
     * add per pick) instead of a relaxed load and store (default false;
     * see "Concurrency" above). */
    bool exact_turns;
} lbk_rr_options;

/*
 * lbk_rr_options_init - fill opts with the defaults (seed 0 = random,
 * exact_turns false).
 * opts NULL is a no-op.
 * Thread safety: safe from any thread on distinct opts.
 */
LBK_API void lbk_rr_options_init(lbk_rr_options *opts);

/*
 * lbk_rr_build - a round-robin picker over snap's backends of weight > 0.
 * snap: the snapshot to pick from; the picker keeps a reference to it.
 * opts: NULL for the defaults.
 * alloc: NULL for malloc/free, else copied into the picker.
 * out: receives the picker, which the caller owns (lbk_rr_free).
 * Errors: LBK_EINVAL (snap or out NULL, allocator half set), LBK_ENOMEM.
 * A snapshot with no backend of weight > 0 builds a picker whose picks
 * return LBK_ENOBACKEND.
 * Thread safety: safe from any thread; snap is only read.
 */
LBK_API int lbk_rr_build(const lbk_snapshot *snap, const lbk_rr_options *opts,
                         const lbk_allocator *alloc, lbk_rr **out);

/*
 * lbk_rr_free - drop the builder's reference; the picker (and its snapshot
 * reference) goes when the last reference does.  NULL is a no-op.
 * Thread safety: any thread, once per reference.
 */
LBK_API void lbk_rr_free(lbk_rr *rr);

/*
 * lbk_rr_pick - the backend whose turn it is (see the header comment for
 * skipping and the bound on work).  Chooses only: no begin/end accounting.
 * out: receives the backend, valid while the caller holds the picker.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no eligible backend
 * of weight > 0 and weight scale > 0).
 * Thread safety: any number of threads at once; lock-free, no allocation.
 */
LBK_API int lbk_rr_pick(lbk_rr *rr, lbk_backend **out);

/*
 * lbk_rr_count - number of backends in the rotation (weight > 0), 0 for
 * NULL.  Thread safety: any thread.
 */
LBK_API uint32_t lbk_rr_count(const lbk_rr *rr);

/*
 * lbk_rr_footprint - bytes of memory the picker holds, not counting the
 * snapshot it shares (0 for NULL).  Thread safety: any thread.
 */
LBK_API size_t lbk_rr_footprint(const lbk_rr *rr);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RR_H */
