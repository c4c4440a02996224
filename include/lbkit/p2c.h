/*
 * lbkit/p2c.h - power of d choices ("least request", peak-EWMA): sample d
 * random backends, send the request to the least loaded of them.
 *
 * Question answered: "which backend is least busy?", approximately, in O(1).
 * Choose it over lbkit/leastconn.h when picks must be cheap and lock-free at
 * any N, when many independent clients balance the same backends (random
 * samples do not herd the way an exact minimum does), or when latency is the
 * signal (peak-EWMA); choose leastconn when the exact minimum matters.  With
 * d = 2 the most loaded of n backends holds ln ln n / ln 2 + O(1) more than
 * the mean instead of ln n / ln ln n for one random choice (Azar, Broder,
 * Karlin, Upfal); Mitzenmacher's supermarket model gives the same gain for
 * queueing delay.
 *
 * Cost: pick O(d) (one shared random draw, d backends' live state, one
 * exp() per candidate in peak-EWMA mode); build O(1); memory one object of
 * 768 bytes whatever N (it reads the snapshot's own array).
 *
 * Sampling.  Candidates are drawn uniformly from the whole snapshot.  By
 * default they are d distinct backends, every ordered d-tuple of distinct
 * backends equally likely (d >= N: all N backends, in a random order); with
 * with_replacement, d independent uniform draws, so a backend may be
 * compared with itself (Mitzenmacher's analysis samples with replacement;
 * the two differ only at small N).  lbk_p2c_candidates() exposes exactly
 * this sampling for simulators.
 *
 * Eligibility.  A candidate that is not UP, is ejected, or has weight or
 * weight scale 0 is skipped.  If fewer than d candidates were eligible, the
 * pick draws fresh rounds of d candidates, up to 4 rounds (at most 4d
 * backends looked at), stopping once d eligible ones were seen (across
 * rounds a backend may be seen twice); if none of them was eligible it scans
 * all N backends from a random start and takes the least loaded eligible
 * one, O(N).  Nothing eligible: LBK_ENOBACKEND.  So a pick costs O(d) while
 * at least a fair fraction of the set is eligible, and stays correct (if
 * slower) when almost everything is down.
 *
 * Load, by mode (ws = snapshot weight x live weight scale):
 *   LBK_P2C_LEAST_REQUEST  Envoy's least_request: the candidate with the
 *       highest effective weight ws / (in_flight + 1)^bias wins.  With equal
 *       weights that is the fewest requests in flight; bias 0 ignores load;
 *       bias 1 (the default) is compared exactly in integers.  (Envoy uses
 *       this formula in an EDF schedule when weights differ; lbkit always
 *       samples d candidates and compares their effective weights.)
 *   LBK_P2C_PEAK_EWMA  Finagle's and Linkerd's peak-EWMA: the candidate with
 *       the lowest cost = rtt x (in_flight + 1) / ws wins, where rtt is the
 *       backend's latency EWMA (lbk_backend_record_latency) decayed towards
 *       0 by exp(-(now_ns - time of its last sample) / decay_ns), so a
 *       backend not heard from lately is probed again.  A backend without
 *       latency history (or whose estimate decayed to 0) costs 0 while it
 *       has nothing in flight and a penalty of 2^47 ns + in_flight once it
 *       has: it gets one request to measure it, not a flood
 *       (Finagle's PeakEwma: Penalty = Long.MaxValue >> 16).  With
 *       default_rtt_ns > 0 such a backend is instead assumed to have that
 *       rtt (Linkerd/tower's default_rtt).
 * Ties go to the first candidate drawn, which is random.
 *
 * The pick only chooses: the caller counts the request with
 * lbk_backend_begin() / lbk_backend_end() and, in peak-EWMA mode, reports
 * its latency with lbk_backend_record_latency().
 *
 * Thread safety: pick and candidates are safe from any number of threads
 * at once on one picker; build and free follow the lbk_ref rules.
 */
#ifndef LBKIT_P2C_H
#define LBKIT_P2C_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most candidates per pick. */
#define LBK_P2C_MAX_CHOICES 8u

typedef struct lbk_p2c lbk_p2c;

typedef enum lbk_p2c_mode {
    LBK_P2C_LEAST_REQUEST = 0,
    LBK_P2C_PEAK_EWMA = 1
} lbk_p2c_mode;

typedef struct lbk_p2c_options {
    uint32_t choices;      /* d, 1..LBK_P2C_MAX_CHOICES; default 2 */
    double bias;           /* least request: >= 0, finite; default 1.0 */
    lbk_p2c_mode mode;     /* default LBK_P2C_LEAST_REQUEST */
    bool with_replacement; /* default false: d distinct candidates */
    uint64_t seed;         /* 0 (default): one per object */
    /* Peak-EWMA only.  decay_ns: time constant of the decay to now_ns;
     * 0 (default) means 10 s, the backend set's default
     * (lbk_set_set_ewma_decay): pass the set's value if you changed it.
     * default_rtt_ns: rtt assumed for a backend without latency history;
     * 0 (default) means Finagle's rule described above. */
    uint64_t decay_ns;
    uint64_t default_rtt_ns;
} lbk_p2c_options;

/*
 * lbk_p2c_options_init - fill opts with the defaults: choices 2, bias 1.0,
 * LBK_P2C_LEAST_REQUEST, distinct candidates, seed 0, decay_ns 0,
 * default_rtt_ns 0.  opts NULL is a no-op.
 * Thread safety: safe from any thread (touches only opts).
 */
LBK_API void lbk_p2c_options_init(lbk_p2c_options *opts);

/*
 * lbk_p2c_build - a power-of-d-choices picker over snap (which it keeps a
 * reference to).  An empty snapshot gives a picker whose picks return
 * LBK_ENOBACKEND.
 * snap: the backends; opts: NULL for the defaults; alloc: NULL for
 * malloc/free, else copied; out: the new picker (one reference).
 * Errors: LBK_EINVAL (snap or out NULL, alloc with a NULL function, mode
 * not a lbk_p2c_mode), LBK_ERANGE (choices 0 or above
 * LBK_P2C_MAX_CHOICES; bias negative, infinite or NaN), LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be in use by other threads.
 */
LBK_API int lbk_p2c_build(const lbk_snapshot *snap, const lbk_p2c_options *opts,
                          const lbk_allocator *alloc, lbk_p2c **out);

/*
 * lbk_p2c_free - drop the builder's reference; the picker (and its snapshot
 * reference) goes with the last reference.  NULL is a no-op.
 * Thread safety: any thread, once per reference.
 */
LBK_API void lbk_p2c_free(lbk_p2c *p);

/*
 * lbk_p2c_pick - choose a backend: the best of d random candidates (see
 * the rules above).  Does not count the request: call lbk_backend_begin()
 * on the result and lbk_backend_end() when it finishes.  Draws its random
 * numbers from the picker's shared generator (one atomic add).
 * now_ns: the caller's monotonic clock, used in peak-EWMA mode only.
 * out: the chosen backend, valid while p (or its snapshot) is held.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no eligible backend).
 * Thread safety: any number of threads at once.
 */
LBK_API int lbk_p2c_pick(lbk_p2c *p, uint64_t now_ns, lbk_backend **out);

/*
 * lbk_p2c_pick_bits - lbk_p2c_pick() with the caller's random bits instead
 * of the shared generator: deterministic for given bits and live state, and
 * free of the shared atomic (threads with their own generator scale better).
 * random_bits: 64 uniformly random bits per pick (e.g. a per-thread
 * SplitMix64 or xoshiro output); the candidates are those of
 * lbk_p2c_candidates(p, random_bits, ...).
 * Errors: LBK_EINVAL (p or out NULL), LBK_ENOBACKEND.
 * Thread safety: any number of threads at once.
 */
LBK_API int lbk_p2c_pick_bits(lbk_p2c *p, uint64_t now_ns, uint64_t random_bits,
                              lbk_backend **out);

/*
 * lbk_p2c_candidates - the candidates a pick given random_bits examines
 * first: snapshot indices (0 .. lbk_snapshot_count() - 1) of
 * min(d, N) distinct backends, or of d backends drawn with replacement.
 * Health is not looked at.  Simulators use it to sample exactly as the
 * picker does.
 * idx_out: room for LBK_P2C_MAX_CHOICES entries; n_out: how many written.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (empty snapshot).
 * Thread safety: any thread (reads only the picker's configuration).
 */
LBK_API int lbk_p2c_candidates(lbk_p2c *p, uint64_t random_bits,
                               uint32_t *idx_out, uint32_t *n_out);

/*
 * lbk_p2c_snapshot - the snapshot p was built from (NULL for NULL).  The
 * reference stays p's.
 * Thread safety: any thread.
 */
LBK_API const lbk_snapshot *lbk_p2c_snapshot(const lbk_p2c *p);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_P2C_H */
