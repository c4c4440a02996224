/*
 * lbkit/bandit.h - bandit pickers: learn which backends are best, keep
 * exploring.
 *
 * Answers "which backend should take the next request, given what past
 * requests taught us about each one's success and latency?".  Choose it when
 * backends differ in ways weights do not capture (heterogeneous or drifting
 * hardware, a noisy neighbour) and outcomes are reported back; choose p2c.h
 * or leastconn.h when load (in-flight count) is the signal, wrr.h when
 * capacities are known.
 * Cost: pick O(N) (UCB1: a square root per backend; Thompson: two Gamma
 * draws per backend), no allocation, no lock, one shared atomic draw; report
 * one compare-and-swap; build O(N); memory 8 bytes per backend plus 4 per
 * slot.
 *
 * Reward of one request, in [0, 1]:
 *     r = 0                                            on failure
 *     r = (1 - w) + w * target / (target + latency)    on success
 * with w = latency_weight and target = latency_target_ns: a success at the
 * target latency is worth 1 - w/2, a very slow success tends to 1 - w.
 * Per backend the picker keeps n (requests) and s (summed reward), both
 * multiplied by `decay` at each report to that backend (1 = never forget;
 * 0.99 = remember about the last 100 reports of each backend), so a drifting
 * backend is re-learnt.  n and s are float32 in one 64-bit atomic word.
 *
 * UCB1 (Auer, Cesa-Bianchi, Fischer 2002): a backend never reported is
 * picked first; otherwise the one maximising
 *     s/n + c * sqrt(2 ln N / n),    N = sum of n over eligible backends,
 * c = exploration (1 = classic UCB1).
 * Thompson sampling (Thompson 1933; Agrawal & Goyal 2012 for fractional
 * rewards): draw theta ~ Beta(s + 1, n - s + 1) for each backend and pick
 * the largest; with latency_weight 0 this is exactly Beta(successes + 1,
 * failures + 1).  Beta draws are X / (X + Y) with X, Y Gamma draws by
 * Marsaglia and Tsang's method (2000).
 * Both consider only eligible backends (UP, not ejected) with weight > 0
 * (weights are otherwise ignored: the bandit learns its own preference) and
 * break ties by a random rotation, so equal backends share load.
 * Determinism: one thread picking with a fixed seed gets a reproducible
 * sequence.
 */
#ifndef LBKIT_BANDIT_H
#define LBKIT_BANDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_bandit lbk_bandit;

typedef enum lbk_bandit_algo {
    LBK_BANDIT_UCB1 = 0,
    LBK_BANDIT_THOMPSON = 1
} lbk_bandit_algo;

typedef struct lbk_bandit_options {
    lbk_bandit_algo algo;       /* default LBK_BANDIT_UCB1 */
    uint64_t seed;              /* 0 = a per-object seed */
    uint64_t latency_target_ns; /* > 0; default 100 ms */
    double latency_weight;      /* [0, 1]; default 0.5 */
    double decay;               /* (0, 1]; default 1.0 (no forgetting) */
    double exploration;         /* UCB1's c, >= 0 and finite; default 1.0 */
} lbk_bandit_options;

/* Learnt statistics of one backend. */
typedef struct lbk_bandit_stats {
    double pulls;       /* n: decayed count of reports */
    double mean_reward; /* s / n, 0 when n is 0 */
} lbk_bandit_stats;

/* lbk_bandit_options_init - the defaults above.  NULL is a no-op.
 * Thread safety: safe from any thread. */
LBK_API void lbk_bandit_options_init(lbk_bandit_options *opts);

/*
 * lbk_bandit_build - a bandit picker over snap (kept referenced), every
 * backend unexplored.  opts NULL means the defaults.
 * Errors: LBK_EINVAL (snap or out NULL, invalid allocator, algo unknown,
 * latency_target_ns 0, latency_weight or decay NaN or out of range,
 * exploration negative, NaN or infinite), LBK_ENOMEM.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_bandit_build(const lbk_snapshot *snap,
                             const lbk_bandit_options *opts,
                             const lbk_allocator *alloc, lbk_bandit **out);

/* lbk_bandit_free - drop the builder's reference; NULL is a no-op.
 * Thread safety: any thread, once this handle is no longer used. */
LBK_API void lbk_bandit_free(lbk_bandit *bd);

/*
 * lbk_bandit_pick - choose a backend (see the rules above).
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (no eligible backend
 * with weight > 0).
 * Thread safety: any thread, concurrently with picks and reports; lock-free.
 */
LBK_API int lbk_bandit_pick(lbk_bandit *bd, lbk_backend **out);

/*
 * lbk_bandit_report - the outcome of a request sent to b: success and its
 * latency (ignored on failure).
 * Errors: LBK_EINVAL (bd or b NULL), LBK_ENOENT (b not in the snapshot).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_bandit_report(lbk_bandit *bd, lbk_backend *b, bool success,
                              uint64_t latency_ns);

/*
 * lbk_bandit_get_stats - what the bandit has learnt about b.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (b not in the snapshot).
 * Thread safety: any thread.
 */
LBK_API int lbk_bandit_get_stats(const lbk_bandit *bd, const lbk_backend *b,
                                 lbk_bandit_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_BANDIT_H */
