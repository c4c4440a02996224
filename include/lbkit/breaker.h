/*
 * lbkit/breaker.h - a circuit breaker: stop calling what keeps failing.
 *
 * Answers "should this call go out at all, or fail fast?" for one
 * dependency (a backend, a route, a whole service).  Choose it in front of a
 * dependency whose failures are expensive to wait for; choose outlier.h to
 * take one backend of many out of rotation, ratelimit.h to cap a rate, and
 * retry.h's budget to cap retries.
 * Cost: allow one atomic load when closed (a compare-and-swap when half-open
 * or when the open timeout expires); record one compare-and-swap, plus a
 * scan of the bucket words on failures; no allocation, no lock; memory
 * 8 bytes per bucket plus one cache line.
 *
 * The three states (Nygard, "Release It!"; Hystrix and Resilience4j):
 *
 *            failure ratio >= threshold        open timeout elapsed
 *            over >= min_requests in window    (at the next allow)
 *   CLOSED ------------------------------> OPEN ------------------> HALF_OPEN
 *     ^                                     ^                          |
 *     |    trial outcomes decide: ratio     |  trial outcomes decide:  |
 *     +---- below threshold ----------------+--- ratio >= threshold ---+
 *
 * CLOSED: every call is allowed; outcomes go into a sliding window of
 * `buckets` time buckets covering window_ns.  When a failure is recorded and
 * the window holds at least min_requests outcomes of which the failing share
 * is >= failure_ratio, the breaker opens.
 * OPEN: calls are refused (LBK_EAGAIN) until open_ns has passed since it
 * opened; outcomes of calls admitted earlier are ignored.
 * HALF_OPEN: up to half_open_trials calls are admitted.  Their outcomes are
 * counted; as soon as the failures among the trials reach
 * failure_ratio x half_open_trials the breaker opens again (for another
 * open_ns), and as soon as they can no longer reach it, it closes with an
 * empty window.  An outcome reported in HALF_OPEN counts as a trial outcome.
 *
 * Defaults are Hystrix's: 10 s window in 10 buckets, 20 requests minimum,
 * 50% failures, 5 s open, 1 trial (Resilience4j's count-based window and 10
 * trials are the same machine with other numbers).
 *
 * Concurrency: the state, the trial counters and a generation live in one
 * 64-bit word changed by compare-and-swap; each bucket is one word
 * [tag | successes | failures].  A transition to OPEN or CLOSED first claims
 * the state word (a transient state in which allow refuses), writes the open
 * deadline or clears the window, then publishes the new state: one thread
 * wins each transition, the others never wait.  Counters saturate at 2^20
 * per bucket and 1023 trials.  Time going backwards is treated as no time
 * passing (an older clock reading counts in the newest bucket).
 */
#ifndef LBKIT_BREAKER_H
#define LBKIT_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_breaker lbk_breaker;

typedef enum lbk_breaker_state {
    LBK_BREAKER_CLOSED = 0,
    LBK_BREAKER_OPEN = 1,
    LBK_BREAKER_HALF_OPEN = 2
} lbk_breaker_state;

typedef struct lbk_breaker_options {
    /* Failing share that opens the breaker, in (0, 1].  Default 0.5. */
    double failure_ratio;
    /* Outcomes the window must hold before it can open, >= 1.  Default 20. */
    uint32_t min_requests;
    /* Sliding window length (> 0) and its number of buckets (1 .. 1024);
     * window_ns / buckets must be >= 1 ns.  Default 10 s, 10 buckets. */
    uint64_t window_ns;
    uint32_t buckets;
    /* How long the breaker stays open before trials, > 0.  Default 5 s. */
    uint64_t open_ns;
    /* Calls admitted while half-open, 1 .. 1023.  Default 1. */
    uint32_t half_open_trials;
} lbk_breaker_options;

/*
 * lbk_breaker_options_init - Hystrix's defaults (see above).  NULL is a
 * no-op.  Thread safety: safe from any thread.
 */
LBK_API void lbk_breaker_options_init(lbk_breaker_options *opts);

/*
 * lbk_breaker_create - a closed breaker with an empty window.
 * opts NULL means the defaults; alloc NULL means malloc/free.
 * Errors: LBK_EINVAL (out NULL, invalid allocator, failure_ratio NaN or
 * outside (0, 1], min_requests 0, window_ns 0, open_ns 0, buckets 0 or
 * half_open_trials 0), LBK_ERANGE (buckets above 1024, window_ns shorter
 * than buckets ns, half_open_trials above 1023), LBK_ENOMEM.
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_breaker_create(const lbk_breaker_options *opts,
                               const lbk_allocator *alloc, lbk_breaker **out);

/* lbk_breaker_free - NULL is a no-op.
 * Thread safety: once no other thread uses br. */
LBK_API void lbk_breaker_free(lbk_breaker *br);

/*
 * lbk_breaker_allow - may a call go out at now_ns?  Returns 0 (go; when
 * half-open this uses one trial) or LBK_EAGAIN (refused: open, or half-open
 * with every trial already admitted).  Report the call's outcome with
 * lbk_breaker_record.
 * Errors: LBK_EINVAL (br NULL).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_breaker_allow(lbk_breaker *br, uint64_t now_ns);

/*
 * lbk_breaker_record - the outcome of one call at now_ns.  May open or close
 * the breaker (see above).
 * Errors: LBK_EINVAL (br NULL).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_breaker_record(lbk_breaker *br, bool success, uint64_t now_ns);

/*
 * lbk_breaker_get_state - the current state.  An OPEN breaker whose timeout
 * has passed reports OPEN until the next allow moves it to HALF_OPEN; a
 * transition in progress reports OPEN.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: any thread.
 */
LBK_API int lbk_breaker_get_state(const lbk_breaker *br,
                                  lbk_breaker_state *out);

/*
 * lbk_breaker_window - outcomes and failures in the sliding window at now_ns
 * (what the CLOSED rule looks at).
 * Errors: LBK_EINVAL (br NULL, or both out pointers NULL).
 * Thread safety: any thread.
 */
LBK_API int lbk_breaker_window(const lbk_breaker *br, uint64_t now_ns,
                               uint64_t *total, uint64_t *failures);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_BREAKER_H */
