/*
 * lbkit/wrr.h - smooth weighted round-robin, exact per cycle.
 *
 * Answers "which backend gets the next request" when backends differ in
 * capacity and each should get exactly its weight's share, spread evenly in
 * time.  Choose it over rr.h when weights matter, over random.h when the
 * share must be exact over every cycle rather than on average, and over
 * leastconn.h/p2c.h when the load per request is predictable.  Cost: pick
 * O(1) (table) or O(log N) (tree), build O(D * W) or O(N log N), memory
 * 8 bytes per backend plus 4 bytes per unit of total weight (table) or 24
 * bytes per backend (tree); W = total weight, D = distinct weights.
 *
 * The sequence.  Over every cycle of W = sum of weights picks, backend i is
 * picked exactly w_i times (backends of weight 0 never).  Within a cycle the
 * picks follow one of two schedules, both indexed by a shared counter of
 * picks, so any number of threads pick lock-free:
 *
 *   table   when W <= options.table_max and D * W <= LBK_WRR_BUILD_BUDGET:
 *           a precomputed cycle holding exactly the sequence nginx's smooth
 *           weighted round-robin produces for these weights (ties to the
 *           lower slot, as nginx does).  Smoothness - the worst deviation
 *           |count_i(t) - t * w_i / W| over every prefix t of the cycle - is
 *           therefore nginx's, at O(1) per pick instead of nginx's O(N).
 *   tree    otherwise (total weight up to 2^32 - 1 needs no O(W) memory):
 *           a binary tree over the backends in slot order, each inner node
 *           split where its two sides' weights are closest to equal (kept
 *           within the middle half by count, so the depth is at most
 *           log_{4/3} N + 1).  A node with cycle T and left weight L sends
 *           its a-th arrival left exactly when floor((a+1)L/T + 1/2) >
 *           floor(aL/T + 1/2), so every node's share is exact per cycle and
 *           within 1/2 at every prefix.  A leaf's deviation is bounded by
 *           half its depth in theory; on 300 random weight vectors of up to
 *           48 backends it stayed below 1.5.
 *           O(depth) multiply-shift steps per pick.
 *
 * Random phase.  Each picker draws a random phase for its first cycle and a
 * random stride by which every later cycle's phase moves, so the first
 * picks after a rebuild do not all land on the heaviest backends and
 * pickers rebuilt together do not move in lockstep.  A rotated cycle is still
 * a whole cycle: the counts per cycle stay exact.  options.random_phase =
 * false pins the phase to 0 (tests, reproducible schedules).
 *
 * Backends that are down, and slow start.  A backend that is not eligible
 * (lbk_backend_eligible() false) at the very next pick, or whose weight
 * scale s < 1 loses the coin toss that accepts it with probability s,
 * passes its pick to the next entries of the schedule (up to
 * LBK_WRR_PROBES of them, which spreads its share over the others in
 * proportion to their weights), then to a pass over all N backends from a
 * random start; substitutes need only be eligible with s > 0.  With s = 1
 * the toss costs one relaxed load of the scale on the backend's state line.
 * LBK_ENOBACKEND when nothing is eligible.
 *
 * Concurrency.  As in rr.h, the pick counter is advanced with a relaxed
 * load and store by default (a locked add costs about 14 ns on the
 * reference machine): picks that overlap in time may take the same
 * position, giving that backend an extra pick, and no position is ever
 * skipped.  Counts per cycle are exact whenever picks do not overlap (one
 * thread per picker, or light load).  options.exact_turns uses an atomic
 * add so that every pick takes a distinct position and every cycle of W
 * picks is exact under any concurrency.
 */
#ifndef LBKIT_WRR_H
#define LBKIT_WRR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_wrr lbk_wrr;

/* Default and largest options.table_max (entries of 4 bytes). */
#define LBK_WRR_TABLE_DEFAULT (1u << 20)
#define LBK_WRR_TABLE_LIMIT (1u << 24)
/* Build work allowed for a table, in (distinct weights x total weight). */
#define LBK_WRR_BUILD_BUDGET (UINT64_C(1) << 26)
/* Schedule entries tried after the chosen one before the full pass. */
#define LBK_WRR_PROBES 8u

typedef struct lbk_wrr_options {
    /* Seed of the phases and coin tosses; 0 picks one at random. */
    uint64_t seed;
    /* Rotate each cycle by a random phase (default true). */
    bool random_phase;
    /* Largest total weight served from a table; 0 always uses the tree.
     * At most LBK_WRR_TABLE_LIMIT. */
    uint32_t table_max;
    /* Distinct positions for overlapping picks (atomic add); default
     * false (see "Concurrency"). */
    bool exact_turns;
} lbk_wrr_options;

/*
 * lbk_wrr_options_init - fill opts with the defaults: seed 0 (random),
 * random_phase true, table_max LBK_WRR_TABLE_DEFAULT, exact_turns false.
 * NULL is a no-op.
 * Thread safety: safe from any thread on distinct opts.
 */
LBK_API void lbk_wrr_options_init(lbk_wrr_options *opts);

/*
 * lbk_wrr_build - a smooth weighted round-robin picker over snap.
 * snap: the snapshot (weights as it recorded them); the picker keeps a
 * reference.  opts: NULL for the defaults.  alloc: NULL for malloc/free,
 * else copied.  out: receives the picker (free with lbk_wrr_free).
 * Errors: LBK_EINVAL (snap or out NULL, allocator half set), LBK_ERANGE
 * (opts->table_max above LBK_WRR_TABLE_LIMIT), LBK_ENOMEM.
 * A snapshot whose weights are all 0 builds a picker whose picks return
 * LBK_ENOBACKEND.
 * Thread safety: safe from any thread; snap is only read.
 */
LBK_API int lbk_wrr_build(const lbk_snapshot *snap, const lbk_wrr_options *opts,
                          const lbk_allocator *alloc, lbk_wrr **out);

/*
 * lbk_wrr_free - drop the builder's reference (the picker goes with the
 * last one).  NULL is a no-op.
 * Thread safety: any thread, once per reference.
 */
LBK_API void lbk_wrr_free(lbk_wrr *wrr);

/*
 * lbk_wrr_pick - the next backend of the schedule (see above for skipping).
 * Chooses only: no begin/end accounting.
 * out: receives the backend, valid while the caller holds the picker.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no eligible backend of
 * weight > 0 and weight scale > 0).
 * Thread safety: any number of threads at once; lock-free, no allocation.
 */
LBK_API int lbk_wrr_pick(lbk_wrr *wrr, lbk_backend **out);

/*
 * lbk_wrr_cycle - the cycle length W (sum of the weights), 0 for NULL.
 * Thread safety: any thread.
 */
LBK_API uint64_t lbk_wrr_cycle(const lbk_wrr *wrr);

/*
 * lbk_wrr_uses_table - whether the picker serves from a precomputed table
 * (true) or the tree (false; also for NULL).  Thread safety: any thread.
 */
LBK_API bool lbk_wrr_uses_table(const lbk_wrr *wrr);

/*
 * lbk_wrr_footprint - bytes of memory the picker holds, not counting the
 * snapshot it shares (0 for NULL).  Thread safety: any thread.
 */
LBK_API size_t lbk_wrr_footprint(const lbk_wrr *wrr);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_WRR_H */
