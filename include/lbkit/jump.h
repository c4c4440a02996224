/*
 * lbkit/jump.h - jump consistent hash (Lamping & Veach, 2014): which of n
 * numbered buckets owns this 64-bit key, with no memory at all.
 *
 * lbk_jump_hash() is the paper's function, bit for bit (Guava, ClickHouse and
 * the paper's C++ give the same answers): growing n to n + 1 moves exactly
 * the keys that land in the new bucket, about 1/(n + 1) of them, and the
 * buckets are perfectly balanced in expectation.  Buckets can only be added
 * or removed at the end, so the wrapper maps bucket b to the backend in
 * set slot b: slots are stable and reused lowest first, so adding a backend
 * to a set without holes grows n by one.  Choose jump over Maglev and the
 * ring when backends are numbered shards that grow and shrink at the end
 * (storage shards, replicas by index) and memory matters; it has no weights.
 * Cost: lookup O(ln n) (fewer than ln n + 1 loop iterations, one multiply
 * and one double division each); build O(n); memory 8 bytes per slot (none
 * for lbk_jump_hash()).
 *
 * Holes, weights and health.  A slot with no backend in the snapshot (a
 * removed backend whose slot was not reused), a backend of weight 0, and a
 * backend that is not eligible (lbk_backend_eligible() false) all take no
 * keys.  Weights above 0 are otherwise ignored (every backend gets 1/n); the
 * weight scale (slow start) is not honoured.  A key whose bucket takes no
 * keys is re-hashed: bucket_r = lbk_jump_hash(mix(hash + r * phi), n) for
 * r = 1 .. LBK_JUMP_PROBES (mix = SplitMix64's finaliser, phi the 64-bit
 * golden ratio); if all of those are out too, the slots after the home bucket
 * are scanned in order (wrapping) for the first that takes keys.  This
 * depends only on the key and on which slots take keys, so it is
 * deterministic, spreads a down backend's keys evenly over the others, and
 * sends each key home as soon as its backend is back.
 */
#ifndef LBKIT_JUMP_H
#define LBKIT_JUMP_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_jump lbk_jump;

/* Most buckets lbk_jump_hash() accepts (the paper's int32 range). */
#define LBK_JUMP_MAX_BUCKETS 2147483647u

/* Re-hashes tried for a key whose bucket takes no keys, before the scan. */
#define LBK_JUMP_PROBES 16u

typedef struct lbk_jump_options {
    /* XXH3 seed for keys (lbk_jump_lookup()).  Every client that must agree
     * must use the same seed; a secret random seed defeats hash flooding. */
    uint64_t seed;
} lbk_jump_options;

/*
 * lbk_jump_hash - the bucket in [0, buckets) that owns key (Lamping & Veach's
 * function, including its double-precision step, so that it agrees with
 * every other implementation).
 * buckets: 1 .. LBK_JUMP_MAX_BUCKETS.
 * Errors: LBK_EINVAL (bucket NULL, buckets 0), LBK_ERANGE (buckets above
 * LBK_JUMP_MAX_BUCKETS).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_jump_hash(uint64_t key, uint32_t buckets, uint32_t *bucket);

/*
 * lbk_jump_options_init - fill opts with the defaults (seed 0).  NULL is a
 * no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_jump_options_init(lbk_jump_options *opts);

/*
 * lbk_jump_build - a lookup object over snap: n = the highest slot listed in
 * snap plus one buckets, bucket b being the backend in slot b.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * An empty snapshot, or one whose backends all have weight 0, gives an
 * object whose lookups all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (snap or out NULL, alloc half set), LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_jump_build(const lbk_snapshot *snap,
                           const lbk_jump_options *opts,
                           const lbk_allocator *alloc, lbk_jump **out);

/*
 * lbk_jump_free - release the snapshot reference and the memory.  NULL is a
 * no-op.
 * Thread safety: any thread, once no lookup on j is running or will start.
 */
LBK_API void lbk_jump_free(lbk_jump *j);

/*
 * lbk_jump_lookup - the backend that owns key, after the rule for holes,
 * weight 0 and health in the header comment.  The key is hashed with
 * lbk_hash(key, len, seed).
 * key: may be NULL only when len is 0.
 * out: the backend, valid while j exists.
 * Errors: LBK_EINVAL (j or out NULL, key NULL with len > 0), LBK_ENOBACKEND
 * (no eligible backend of non-zero weight).
 * Thread safety: any thread, concurrently with other lookups and with
 * health changes; lock-free, allocation-free.
 */
LBK_API int lbk_jump_lookup(const lbk_jump *j, const void *key, size_t len,
                            lbk_backend **out);

/*
 * lbk_jump_lookup_hash - lbk_jump_lookup() for a 64-bit key already hashed
 * (or a numeric key used as is: the bucket is lbk_jump_hash(hash, n)).
 * Errors: LBK_EINVAL (j or out NULL), LBK_ENOBACKEND (no eligible backend of
 * non-zero weight).
 * Thread safety: as lbk_jump_lookup().
 */
LBK_API int lbk_jump_lookup_hash(const lbk_jump *j, uint64_t hash,
                                 lbk_backend **out);

/*
 * lbk_jump_buckets - the number of buckets n (highest slot + 1; 0 for NULL
 * or an empty snapshot).
 * Thread safety: any thread.
 */
LBK_API uint32_t lbk_jump_buckets(const lbk_jump *j);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_JUMP_H */
