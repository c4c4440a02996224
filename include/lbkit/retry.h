/*
 * lbkit/retry.h - how long to wait before a retry, and whether to retry.
 *
 * Answers two questions about a failed request: "how long should I back off
 * before attempt k?" (exponential back-off with full or decorrelated jitter,
 * as defined in the AWS Architecture Blog post "Exponential Backoff And
 * Jitter", 2015) and "may I retry at all, or would retries multiply an
 * overload?" (a retry budget after Finagle's RetryBudget: retries may be at
 * most a fraction of recent requests plus a small reserve per second).
 * Choose the budget for every client that retries; choose ratelimit.h to cap
 * absolute rates, and breaker.h to stop calling a failing backend at all.
 * Cost: back-off O(1), no state but the caller's 64-bit random state; budget
 * deposit one compare-and-swap, withdraw a read of 10 words and one
 * compare-and-swap, no allocation, no lock; memory 2 cache lines.
 *
 * Back-off (attempt counts from 0; random_between is uniform and inclusive):
 *
 *   exponential          min(cap, base * 2^attempt)
 *   full jitter          random_between(0, min(cap, base * 2^attempt))
 *   decorrelated jitter  min(cap, random_between(base, prev * 3)), where prev
 *                        is the previous sleep (pass 0, or base, the first
 * time)
 *
 * The random state is the caller's: any 64-bit seed, advanced by each call
 * (SplitMix64), so one seed gives one reproducible sequence.
 *
 * Budget (Finagle's TokenRetryBudget, in the same integer units):
 *   deposit  = 1000 per request (0 when percent_can_retry is 0)
 *   withdraw = 1000 / percent_can_retry per retry (1 when it is 0)
 *   reserve  = min_retries_per_sec * ttl_seconds * withdraw, always present
 * Deposits and withdrawals both expire after ttl, kept in 10 time slices of
 * ttl/10 as Finagle's WindowedAdder does; a retry is allowed when
 * reserve + (sum of live slices) >= withdraw.  Defaults as Finagle: ttl 10 s,
 * 10 retries per second, 20% of requests.  Concurrent withdrawals that land
 * in the same time slice are exact (one compare-and-swap on that slice
 * decides); callers whose clocks differ by more than a slice may overdraw by
 * one retry each.  Time going backwards is treated as no time passing.
 */
#ifndef LBKIT_RETRY_H
#define LBKIT_RETRY_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * lbk_backoff_exponential - min(cap_ns, base_ns * 2^attempt), saturating.
 * Errors: LBK_EINVAL (out NULL, base_ns 0, cap_ns < base_ns).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_backoff_exponential(uint64_t base_ns, uint64_t cap_ns,
                                    uint32_t attempt, uint64_t *out_ns);

/*
 * lbk_backoff_full_jitter - uniform in [0, min(cap_ns, base_ns * 2^attempt)].
 * rng_state: the caller's random state, advanced once.
 * Errors: LBK_EINVAL (NULL pointer, base_ns 0, cap_ns < base_ns); on error
 * the random state is not advanced.
 * Thread safety: safe from any thread with its own rng_state.
 */
LBK_API int lbk_backoff_full_jitter(uint64_t base_ns, uint64_t cap_ns,
                                    uint32_t attempt, uint64_t *rng_state,
                                    uint64_t *out_ns);

/*
 * lbk_backoff_decorrelated_jitter - min(cap_ns, uniform in
 * [base_ns, 3 * max(prev_ns, base_ns)]); feed the result back as prev_ns.
 * Errors: LBK_EINVAL (NULL pointer, base_ns 0, cap_ns < base_ns).
 * Thread safety: safe from any thread with its own rng_state.
 */
LBK_API int lbk_backoff_decorrelated_jitter(uint64_t base_ns, uint64_t cap_ns,
                                            uint64_t prev_ns,
                                            uint64_t *rng_state,
                                            uint64_t *out_ns);

typedef struct lbk_retry_budget lbk_retry_budget;

typedef struct lbk_retry_budget_options {
    /* How long a deposit or withdrawal counts, 1 s .. 60 s (Finagle's
     * bounds).  Default 10 s. */
    uint64_t ttl_ns;
    /* Retries per second always allowed, whatever the traffic.  Default 10. */
    uint32_t min_retries_per_sec;
    /* Retries allowed per request, 0 .. 1000 (0.2 = 20%, 2.0 = two retries
     * per request).  Default 0.2. */
    double percent_can_retry;
} lbk_retry_budget_options;

/*
 * lbk_retry_budget_options_init - Finagle's defaults: ttl 10 s, 10 retries
 * per second, 20%.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_retry_budget_options_init(lbk_retry_budget_options *opts);

/*
 * lbk_retry_budget_create - a budget; its window starts at now_ns.
 * opts NULL means the defaults.  alloc NULL means malloc/free.
 * Errors: LBK_EINVAL (out NULL, percent NaN or negative, invalid allocator),
 * LBK_ERANGE (ttl outside 1 s .. 60 s, percent above 1000), LBK_ENOMEM.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_retry_budget_create(const lbk_retry_budget_options *opts,
                                    const lbk_allocator *alloc, uint64_t now_ns,
                                    lbk_retry_budget **out);

/* lbk_retry_budget_free - NULL is a no-op.
 * Thread safety: once no other thread uses rb. */
LBK_API void lbk_retry_budget_free(lbk_retry_budget *rb);

/*
 * lbk_retry_budget_deposit - count one request (call it for every first
 * attempt, not for retries).
 * Errors: LBK_EINVAL (rb NULL).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_retry_budget_deposit(lbk_retry_budget *rb, uint64_t now_ns);

/*
 * lbk_retry_budget_withdraw - ask to retry once.  Returns 0 and charges the
 * budget when allowed, LBK_EAGAIN (nothing charged) when the budget is spent.
 * Errors: LBK_EINVAL (rb NULL).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_retry_budget_withdraw(lbk_retry_budget *rb, uint64_t now_ns);

/*
 * lbk_retry_budget_balance - whole retries the budget would allow at now_ns
 * (reserve included), >= 0.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: any thread.
 */
LBK_API int lbk_retry_budget_balance(const lbk_retry_budget *rb,
                                     uint64_t now_ns, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RETRY_H */
