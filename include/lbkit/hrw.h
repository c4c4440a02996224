/*
 * lbkit/hrw.h - rendezvous (highest random weight) hashing, weighted
 * (Thaler & Ravishankar 1998; weights after Schindelhauer & Schomaker 2005):
 * which backend owns this key, and which k backends hold its replicas.
 *
 * Every backend scores the key; the highest score wins.  With h in (0, 1) a
 * uniform hash of (key, backend), the score -w / ln(h) makes backend i win
 * with probability exactly w_i / W.  Removing a backend moves only its own
 * keys (each to its next-best backend) and adding one takes keys only for
 * itself: the minimum disruption, exactly.  Choose HRW over the ring and
 * Maglev when N is small (tens), when you need the first k distinct backends
 * for replication, when weights change often (a weight change moves only the
 * minimum keys), or when slow start must re-weight without a rebuild; not at
 * large N, where its O(N) lookup loses to O(1) Maglev.
 * Cost: lookup O(N) (one 64-bit mix per backend; when weights differ, a
 * log() for the few backends whose score bound beats the best so far);
 * top-k O(N k) worst case; build O(N); memory 24 bytes per backend.
 *
 * Weights and health.  A backend's effective weight is its snapshot weight
 * times its current weight scale (lbk_backend_set_weight_scale(), read at
 * every lookup), so slow start re-weights without a rebuild.  Only eligible
 * backends (lbk_backend_eligible()) of non-zero effective weight score, so a
 * key whose backend is down goes to its next-best backend, deterministically,
 * and comes home as soon as the backend is eligible again.  Equal scores
 * (vanishingly rare) go to the lower snapshot index.
 */
#ifndef LBKIT_HRW_H
#define LBKIT_HRW_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_hrw lbk_hrw;

/* Most backends lbk_hrw_lookup_top() returns in one call. */
#define LBK_HRW_TOP_MAX 64u

typedef struct lbk_hrw_options {
    /* XXH3 seed for backend names and keys.  Every client that must agree
     * must use the same seed; a secret random seed defeats hash flooding. */
    uint64_t seed;
} lbk_hrw_options;

/*
 * lbk_hrw_options_init - fill opts with the defaults (seed 0).  NULL is a
 * no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_hrw_options_init(lbk_hrw_options *opts);

/*
 * lbk_hrw_build - an HRW picker over snap's backends.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * An empty snapshot, or one whose backends all have weight 0, gives a picker
 * whose lookups all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (snap or out NULL, alloc half set), LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_hrw_build(const lbk_snapshot *snap, const lbk_hrw_options *opts,
                          const lbk_allocator *alloc, lbk_hrw **out);

/*
 * lbk_hrw_free - release the snapshot reference and the memory.  NULL is a
 * no-op.
 * Thread safety: any thread, once no lookup on h is running or will start.
 */
LBK_API void lbk_hrw_free(lbk_hrw *h);

/*
 * lbk_hrw_lookup - the eligible backend with the highest score for key.
 * The key is hashed with lbk_hash(key, len, seed).
 * key: may be NULL only when len is 0.  out: valid while h exists.
 * Errors: LBK_EINVAL (h or out NULL, key NULL with len > 0), LBK_ENOBACKEND
 * (no eligible backend of non-zero effective weight).
 * Thread safety: any thread, concurrently with other lookups, health and
 * weight-scale changes; lock-free, allocation-free.
 */
LBK_API int lbk_hrw_lookup(const lbk_hrw *h, const void *key, size_t len,
                           lbk_backend **out);

/*
 * lbk_hrw_lookup_hash - lbk_hrw_lookup() for a key already hashed with
 * lbk_hash(key, len, seed) (any 64-bit value works: it is mixed with each
 * backend's hash through SplitMix64's finaliser).
 * Errors: LBK_EINVAL (h or out NULL), LBK_ENOBACKEND.
 * Thread safety: as lbk_hrw_lookup().
 */
LBK_API int lbk_hrw_lookup_hash(const lbk_hrw *h, uint64_t hash,
                                lbk_backend **out);

/*
 * lbk_hrw_lookup_top - the first k distinct eligible backends for key, best
 * score first (out[0] is what lbk_hrw_lookup() returns): the replica set.
 * When a backend goes down, the others shift up and the next one joins.
 * key: may be NULL only when len is 0.
 * out: room for k backends; *count: how many were written (min(k, eligible
 * backends of non-zero effective weight)).
 * Errors: LBK_EINVAL (h, out or count NULL, key NULL with len > 0, k 0),
 * LBK_ERANGE (k above LBK_HRW_TOP_MAX), LBK_ENOBACKEND (no eligible backend;
 * nothing written).
 * Thread safety: as lbk_hrw_lookup().
 */
LBK_API int lbk_hrw_lookup_top(const lbk_hrw *h, const void *key, size_t len,
                               uint32_t k, lbk_backend **out, uint32_t *count);

/*
 * lbk_hrw_lookup_top_hash - lbk_hrw_lookup_top() for a key already hashed.
 * Errors: LBK_EINVAL (h, out or count NULL, k 0), LBK_ERANGE (k above
 * LBK_HRW_TOP_MAX), LBK_ENOBACKEND.
 * Thread safety: as lbk_hrw_lookup().
 */
LBK_API int lbk_hrw_lookup_top_hash(const lbk_hrw *h, uint64_t hash, uint32_t k,
                                    lbk_backend **out, uint32_t *count);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_HRW_H */
