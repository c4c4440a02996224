/*
 * lbkit/leastconn.h - least-connections: send the request to the backend
 * with the fewest requests in flight per unit of weight.
 *
 * Question answered: "which backend is least busy right now?", exactly, over
 * the whole set.  Choose it over lbkit/p2c.h when requests are long or of
 * very uneven cost (database sessions, streams, websockets), where the exact
 * minimum matters and N is moderate; choose P2C when picks must be as cheap
 * as possible, when many independent clients balance the same backends (the
 * exact minimum makes every client herd onto the same idle backend), or when
 * latency rather than concurrency is the signal.  Unlike the other pickers,
 * a least-connections pick also counts the request as begun, and the caller
 * must report its end with lbk_leastconn_release().
 *
 * Cost: pick O(log8 N) (a descent plus a leaf update; O(N) only on the slow
 * paths described below), release O(log8 N), build O(N), memory about
 * 13 bytes per backend (9 for the tree, 4 for a slot-number index) plus a
 * header of about 400 bytes.  Each pick and release also touches the chosen
 * backend's counter line, which dominates at large N when that line is not
 * cached.
 *
 * The load of backend i is in_flight(i) / (weight(i) * weight_scale(i)),
 * with weight the snapshot's and weight_scale the live slow-start factor
 * (lbk_backend_set_weight_scale).  A backend whose health is not UP, that is
 * ejected, or whose weight or weight scale is 0 takes no new request.
 *
 * How it works.  An 8-ary tournament tree caches every backend's load; each
 * inner node holds the minimum of its 8 children, so 8 siblings share one
 * cache line.  A pick descends from the root to a minimal leaf, choosing at
 * random among tied children (so idle backends share picks instead of all
 * picks going to the first idle one), counts the request begun on the
 * backend, and recomputes the path above the leaf; a release does the same
 * after counting the request finished.  Updates are lock-free (compare-and-
 * swap on each node, re-checked against the children after every write, so
 * the tree settles to the exact minima whenever writers pause).
 *
 * The backends' live counters are the source of truth; the tree is a cache.
 *   - In one thread, with every begin/end going through this picker, every
 *     pick returns a backend of minimal load, exactly (loads are compared as
 *     correctly rounded doubles: exact while in_flight x weight < 2^37;
 *     beyond, two loads within one part in 2^53 may compare equal).
 *   - A backend that became worse behind the picker's back (went down, was
 *     ejected, gained requests through lbk_backend_begin, lost weight scale)
 *     is caught when a pick lands on it: the pick re-reads the chosen
 *     backend's live state, repairs its leaf and descends again (at most 8
 *     times, then the slow path: re-read every backend and scan, O(N)).
 *   - A backend that became better behind the picker's back (came back UP,
 *     ended requests through lbk_backend_end, gained weight scale) is seen
 *     when this picker next picks or releases it, when lbk_leastconn_refresh()
 *     runs, or at the latest by the (P + 1)-th pick, where P is the smallest
 *     power of two >= N: every pick also re-reads one backend in turn.  When
 * the tree says nothing is eligible, the pick re-reads every backend before it
 *     answers LBK_ENOBACKEND, so a recovery is honoured at once then.
 *   - Under concurrent picks two threads may choose the same backend; counts
 *     stay exact (each begin/end is one atomic operation on the backend).
 *
 * Thread safety: pick, release and refresh are safe from any number of
 * threads at once on one picker; build and free follow the lbk_ref rules
 * (the last reference frees).  See backend.h for publication.
 */
#ifndef LBKIT_LEASTCONN_H
#define LBKIT_LEASTCONN_H

#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_leastconn lbk_leastconn;

typedef struct lbk_leastconn_options {
    /* Seed of the tie-breaking random numbers; 0 picks one per object
     * (lbk_entropy_seed), so two pickers break ties differently. */
    uint64_t seed;
} lbk_leastconn_options;

/*
 * lbk_leastconn_options_init - fill opts with the defaults (seed 0).
 * opts NULL is a no-op.
 * Thread safety: safe from any thread (touches only opts).
 */
LBK_API void lbk_leastconn_options_init(lbk_leastconn_options *opts);

/*
 * lbk_leastconn_build - a least-connections picker over snap.  The picker
 * keeps a reference to snap; the loads in its tree are read from the
 * backends' live counters at build time, so a rebuilt picker continues
 * where its predecessor was.  An empty snapshot gives a picker whose picks
 * return LBK_ENOBACKEND.
 * snap: the backends; opts: NULL for the defaults; alloc: NULL for
 * malloc/free, else copied; out: the new picker (one reference).
 * Errors: LBK_EINVAL (snap or out NULL, alloc with a NULL function),
 * LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be in use by other threads.
 */
LBK_API int lbk_leastconn_build(const lbk_snapshot *snap,
                                const lbk_leastconn_options *opts,
                                const lbk_allocator *alloc,
                                lbk_leastconn **out);

/*
 * lbk_leastconn_free - drop the builder's reference; the picker (and its
 * snapshot reference) goes when the last reference is dropped.  NULL is a
 * no-op.
 * Thread safety: any thread, once per reference.
 */
LBK_API void lbk_leastconn_free(lbk_leastconn *lc);

/*
 * lbk_leastconn_pick - choose an eligible backend of least load and count
 * one request in flight on it (as lbk_backend_begin).  Report the end with
 * lbk_leastconn_release() (or lbk_backend_end()).  Never allocates or locks.
 * lc: the picker; out: the chosen backend, valid while lc (or its snapshot)
 * is held.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no backend is UP, not
 * ejected and of non-zero weight and weight scale), LBK_EOVERFLOW (the
 * chosen backend already has UINT32_MAX requests in flight; nothing
 * changed).
 * Thread safety: any number of threads at once.
 */
LBK_API int lbk_leastconn_pick(lbk_leastconn *lc, lbk_backend **out);

/*
 * lbk_leastconn_release - count one request on b finished (as
 * lbk_backend_end) and update the picker's tree.  b need not be listed in
 * lc's snapshot (a request begun through a predecessor picker may end
 * through its replacement): its count is then decremented and no tree
 * changes.  b must still be valid (see backend.h: hold the snapshot the
 * request was picked from).
 * Errors: LBK_EINVAL (NULL argument), LBK_ESTATE (b has nothing in flight;
 * nothing changed).
 * Thread safety: any number of threads at once.
 */
LBK_API int lbk_leastconn_release(lbk_leastconn *lc, lbk_backend *b);

/*
 * lbk_leastconn_refresh - re-read every backend's live state (health,
 * ejection, weight scale, in-flight count) into the tree, O(N).  Call it
 * after changing many backends' health or counts outside this picker, when
 * waiting for the sweep described above is not good enough.
 * Errors: LBK_EINVAL (lc NULL).
 * Thread safety: any number of threads at once, alongside picks.
 */
LBK_API int lbk_leastconn_refresh(lbk_leastconn *lc);

/*
 * lbk_leastconn_snapshot - the snapshot lc was built from (NULL for NULL).
 * The reference stays lc's.
 * Thread safety: any thread.
 */
LBK_API const lbk_snapshot *lbk_leastconn_snapshot(const lbk_leastconn *lc);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_LEASTCONN_H */
