/*
 * lbkit/random.h - weighted random: each pick independent, P(i) = w_i / W.
 *
 * Answers "which backend gets the next request" with no shared rotation:
 * every pick is an independent draw with probability exactly proportional
 * to weight.  Choose it over wrr.h when independent draws are preferred to
 * a deterministic schedule (many uncoordinated clients, simulations), over
 * rr.h when weights matter, and over p2c.h when load is not worth reading.
 * Cost: pick O(1) (one random draw, one table column; Vose's alias method),
 * build O(N), memory 24 bytes per backend.
 *
 * Exactness.  The alias table is built in integers: with n backends of
 * weight > 0 and W their total, column j holds a threshold in [0, W] and an
 * alias, and P(i) = (1/n) * sum over the columns i appears in of its share
 * / W, which equals w_i / W exactly.  A draw turns 64 random bits into a
 * column (32 bits, multiply-shift onto [0, n)) and a threshold test (32
 * bits onto [0, W)): each column comes up with probability within a factor
 * 1 +- n/2^32 of 1/n and each threshold test is off by at most 2^-32 - far
 * below what any traffic measurement can see.  Weight 0 is never picked.
 *
 * Backends that are down, and slow start.  A backend that is not eligible
 * (lbk_backend_eligible() false) at this pick, or whose weight scale s < 1
 * loses the toss that accepts it with probability s, is rejected and the
 * pick draws again, up to LBK_RANDOM_DRAWS draws: rejection keeps the
 * choice among the rest exactly proportional to w_i * s_i.  Only if every
 * draw is rejected does the pick fall back to a pass over all n backends
 * from a random start, taking the first eligible one with s > 0; that
 * pass is O(n), and it happens with probability (1 - f)^LBK_RANDOM_DRAWS
 * where f is the eligible share of weight.  LBK_ENOBACKEND when nothing is
 * eligible.  At s = 1 the toss costs one relaxed load.
 *
 * Randomness comes from a seedable SplitMix64 generator shared by the
 * picker's threads, advanced with a relaxed load and store rather than an
 * atomic add (about 14 ns on the reference machine): two draws that overlap
 * in time may get the same number, i.e. the same backend twice.  Each pick
 * is still distributed exactly as above; only the independence of picks
 * that overlap is lost.  A seeded picker used from one thread repeats its
 * sequence exactly.
 */
#ifndef LBKIT_RANDOM_H
#define LBKIT_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_random lbk_random;

/* Draws a pick makes before its fallback pass. */
#define LBK_RANDOM_DRAWS 16u

typedef struct lbk_random_options {
    /* Seed of the generator; 0 picks one at random. */
    uint64_t seed;
} lbk_random_options;

/*
 * lbk_random_options_init - fill opts with the defaults (seed 0 = random).
 * NULL is a no-op.
 * Thread safety: safe from any thread on distinct opts.
 */
LBK_API void lbk_random_options_init(lbk_random_options *opts);

/*
 * lbk_random_build - a weighted random picker over snap.
 * snap: the snapshot (weights as it recorded them); the picker keeps a
 * reference.  opts: NULL for the defaults.  alloc: NULL for malloc/free,
 * else copied.  out: receives the picker (free with lbk_random_free).
 * Errors: LBK_EINVAL (snap or out NULL, allocator half set), LBK_ENOMEM.
 * A snapshot whose weights are all 0 builds a picker whose picks return
 * LBK_ENOBACKEND.
 * Thread safety: safe from any thread; snap is only read.
 */
LBK_API int lbk_random_build(const lbk_snapshot *snap,
                             const lbk_random_options *opts,
                             const lbk_allocator *alloc, lbk_random **out);

/*
 * lbk_random_free - drop the builder's reference (the picker goes with the
 * last one).  NULL is a no-op.
 * Thread safety: any thread, once per reference.
 */
LBK_API void lbk_random_free(lbk_random *rnd);

/*
 * lbk_random_pick - a backend drawn with probability w_i / W among the
 * eligible ones (see above).  Chooses only: no begin/end accounting.
 * out: receives the backend, valid while the caller holds the picker.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no eligible backend of
 * weight > 0 and weight scale > 0).
 * Thread safety: any number of threads at once; lock-free, no allocation.
 */
LBK_API int lbk_random_pick(lbk_random *rnd, lbk_backend **out);

/*
 * lbk_random_footprint - bytes of memory the picker holds, not counting the
 * snapshot it shares (0 for NULL).  Thread safety: any thread.
 */
LBK_API size_t lbk_random_footprint(const lbk_random *rnd);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RANDOM_H */
