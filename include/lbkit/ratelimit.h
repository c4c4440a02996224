/*
 * lbkit/ratelimit.h - token-bucket rate limiting, flat or hierarchical.
 *
 * Answers "may this request (or these n units) go now, at rate r with bursts
 * up to b?".  Choose it to cap what one client, tenant or route sends; a
 * hierarchical bucket (a child with a parent) caps a group as well as each
 * member.  Choose retry.h's budget instead to cap retries relative to
 * traffic, and breaker.h to stop calling a backend that fails.
 * Cost: take O(depth) compare-and-swaps on one word per bucket, no
 * allocation, no lock, no division; create O(1); memory under 100 bytes.
 *
 * The bucket is kept as a single 64-bit "theoretical arrival time" (the
 * GCRA form of a token bucket, ITU-T I.371): the time at which the bucket
 * would be full again.  Taking n tokens at time t moves it to
 * max(tat, t) + n/rate, and is allowed when that is no later than
 * t + burst/rate.  One word means one compare-and-swap, so any number of
 * threads may take from one bucket at once without a lock, each passing its
 * own reading of the caller's monotonic clock.  Time is kept in 1/16 ns
 * relative to the creation time, so it covers 18 years and the cost of one
 * token is exact to 1/16 ns (0.06% at a million tokens per second).
 * A new bucket is full.
 *
 * Hierarchy: a child bucket created with a parent takes from itself and then
 * from its parent (and so on up); when an ancestor refuses, the tokens
 * already taken below it are given back.  Every bucket's own compare-and-swap
 * is the only thing that can admit against it, so no bucket in the tree, and
 * in particular the shared parent, ever admits more than its rate and burst
 * allow.  The price: while one thread's refused take is being given back,
 * another thread may be refused where it would have passed a moment later
 * (conservative, never over-admitting).  A child keeps a reference on its
 * parent, so the parent may be freed first.
 *
 * Time going backwards (a caller's clock reading older than another's) is
 * treated as no time passing: it never creates tokens.
 */
#ifndef LBKIT_RATELIMIT_H
#define LBKIT_RATELIMIT_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_tokenbucket lbk_tokenbucket;

/*
 * lbk_tokenbucket_create - a full bucket refilling at rate_per_sec tokens per
 * second up to burst tokens.
 * rate_per_sec: finite, > 0; with burst it must give a token cost of at least
 * 1/16 ns and burst x cost under 2^60 / 16 ns (about 2.3 years): rates from
 * about 1e-8 to 1.6e10 per second.
 * burst: >= 1 tokens.
 * parent: NULL for a flat bucket, else the bucket this one also takes from
 * (the child keeps a reference to it).  Depth is limited to 16.
 * now_ns: the caller's monotonic time; later calls measure from it.
 * alloc: NULL for malloc/free, else copied.
 * Errors: LBK_EINVAL (out NULL, rate not > 0 or NaN or infinite, burst 0,
 * invalid allocator), LBK_ERANGE (rate and burst outside the range above,
 * or hierarchy deeper than 16), LBK_ENOMEM.
 * Thread safety: safe from any thread; a parent may be used by other
 * threads meanwhile.
 */
LBK_API int lbk_tokenbucket_create(double rate_per_sec, uint32_t burst,
                                   lbk_tokenbucket *parent, uint64_t now_ns,
                                   const lbk_allocator *alloc,
                                   lbk_tokenbucket **out);

/*
 * lbk_tokenbucket_free - drop the caller's reference.  The bucket lives on
 * while a child still references it.  NULL is a no-op.
 * Thread safety: any thread, once no other thread uses this handle.
 */
LBK_API void lbk_tokenbucket_free(lbk_tokenbucket *tb);

/*
 * lbk_tokenbucket_take - take n tokens at now_ns from the bucket and all its
 * ancestors, or none at all.
 * Returns 0 when taken, LBK_EAGAIN when this bucket or an ancestor has too
 * few tokens (nothing taken; lbk_tokenbucket_wait_ns says for how long).
 * Errors: LBK_EINVAL (tb NULL or n 0), LBK_ERANGE (n above the burst of
 * this bucket or an ancestor: it could never pass).
 * Thread safety: any thread, concurrently; lock-free.
 */
LBK_API int lbk_tokenbucket_take(lbk_tokenbucket *tb, uint32_t n,
                                 uint64_t now_ns);

/*
 * lbk_tokenbucket_available - tokens this bucket (not its ancestors) holds
 * at now_ns, in [0, burst], fractional.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: any thread.
 */
LBK_API int lbk_tokenbucket_available(const lbk_tokenbucket *tb,
                                      uint64_t now_ns, double *out);

/*
 * lbk_tokenbucket_wait_ns - how long from now_ns until n tokens would be
 * available in this bucket and every ancestor (0 when a take would pass now),
 * assuming nobody else takes meanwhile.
 * Errors: LBK_EINVAL (NULL argument or n 0), LBK_ERANGE (n above a burst).
 * Thread safety: any thread.
 */
LBK_API int lbk_tokenbucket_wait_ns(const lbk_tokenbucket *tb, uint32_t n,
                                    uint64_t now_ns, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RATELIMIT_H */
