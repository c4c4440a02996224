/*
 * lbkit/ring.h - the consistent-hash ring with virtual nodes (Karger et al.,
 * 1997; libketama): which backend owns this key, so that adding or removing
 * one backend moves only the keys it gains or loses.
 *
 * Every backend puts points on a circle of hashes, as many as its weight
 * asks; a key belongs to the first point at or after its own hash, wrapping
 * past the top.  Choose the ring over Maglev when disruption must be the
 * minimum (only the changed backend's keys move) or when you must agree key
 * for key with an existing libketama, libmemcached, twemproxy or nginx
 * client; over jump when backends are named and weighted; over HRW when N is
 * large.  Its balance is the weakest of the four: with P points per backend
 * the ownership spread sigma/mu is about 1/sqrt(P) (160 points: ~8%).
 * Cost: lookup O(1) expected (a table over the top bits of the hash; for
 * most keys one entry names the owner, otherwise a scan of 1 or 2 points);
 * build O(P) expected for P points (hashing and a bucket sort); memory 16
 * bytes per point plus 8 to 16 per point for the bucket table (~4.6 KB per
 * backend at 160 points), plus 8 bytes per backend.
 *
 * Modes.  LBK_RING_XXH3 (the default) places point j of a backend at
 * XXH3-64(name || LE32(j), seed) and hashes keys with lbk_hash(key, len,
 * seed); points_per_weight points per unit of weight.  The compatibility
 * modes reproduce a peer bit for bit, so an lbkit client and an existing one
 * send every key to the same server (backend names are "host:port"):
 *
 *   LBK_RING_LIBKETAMA      libketama: MD5("host:port-k"), 4 points per
 *                           digest, floorf(pct * 40.0 * N) digests per server
 *                           (pct = w / W in float, the product in double).
 *   LBK_RING_LIBMEMCACHED   libmemcached MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
 *                           and twemproxy's ketama with md5: as libketama but
 *                           the point string leaves the port out when it is
 *                           11211 ("host-k"), and the digest count is
 *                           floor(pct * 160 / 4 * N) computed in float.
 *   LBK_RING_NGINX          nginx "hash $key consistent": base =
 *                           CRC32(host '\0' port), then 160 * weight points
 *                           p_j = CRC32(base-state || LE32(p_{j-1})),
 *                           p_{-1} = 0; duplicate values dropped.  Key hash
 *                           CRC32(key).
 *
 * The compatibility modes have no seed: their peers have none, and a seed
 * would make every key land somewhere else than in the peer.  Their hashes
 * are public and weak (MD5, CRC32), so an attacker who controls keys can aim
 * them at one server; use LBK_RING_XXH3 with a secret seed when keys come
 * from untrusted clients and no peer must agree.  In those modes points and
 * key hashes are 32-bit; N and W count only backends of non-zero weight (a
 * backend of weight 0 is left off the ring, as if it were not in the peer's
 * server list).  Equal points go to the backend that comes first in the
 * snapshot (slot order), as libmemcached orders them by server index; list
 * servers in the same order as the peer does.
 *
 * Health.  The ring is never rebuilt for health.  A lookup whose owner is not
 * eligible (lbk_backend_eligible() false) walks on clockwise to the first
 * point of another backend that is eligible: the key's next distinct
 * backend, deterministically, and it returns home as soon as its owner is
 * eligible again.  (nginx does the same: it tries the next point.)  A walk
 * costs one step per run of points of one backend; after 64 runs it checks
 * the snapshot once (O(N)) and stops with LBK_ENOBACKEND when nothing is
 * eligible, else walks on (at most one turn, O(P)).  The backends'
 * weight scale (slow start) is not honoured: moving points without a rebuild
 * would move keys.
 *
 * Lifetime.  A ring keeps a reference to the snapshot it was built from
 * (released by lbk_ring_free()), so the backends it returns stay valid while
 * it exists.  The ring is immutable after build: any number of threads may
 * look up in it at once.
 */
#ifndef LBKIT_RING_H
#define LBKIT_RING_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_ring lbk_ring;

/* Where the points go and how keys are hashed (see the header comment). */
typedef enum lbk_ring_mode {
    LBK_RING_XXH3 = 0,
    LBK_RING_LIBKETAMA = 1,
    LBK_RING_LIBMEMCACHED = 2,
    LBK_RING_NGINX = 3
} lbk_ring_mode;

/* Points per unit of weight in LBK_RING_XXH3 mode, by default. */
#define LBK_RING_DEFAULT_POINTS 160u

/* Largest points_per_weight accepted. */
#define LBK_RING_MAX_POINTS_PER_WEIGHT 65536u

/* Most points one ring may hold (before nginx drops duplicates). */
#define LBK_RING_MAX_POINTS (1u << 24)

/* Longest name libketama can hold: its server address field is 22 bytes
 * ("255.255.255.255:65535" and its NUL). */
#define LBK_RING_KETAMA_NAME_MAX 21u

/* Most backends lbk_ring_lookup_top() returns in one call. */
#define LBK_RING_TOP_MAX 64u

typedef struct lbk_ring_options {
    /* The point placement and key hash. */
    lbk_ring_mode mode;
    /* LBK_RING_XXH3 only: points per unit of weight, 1 ..
     * LBK_RING_MAX_POINTS_PER_WEIGHT.  The compatibility modes fix their own
     * counts and ignore it.  sigma/mu of ownership is about
     * 1/sqrt(points). */
    uint32_t points_per_weight;
    /* LBK_RING_XXH3 only: XXH3 seed for points and keys.  Every client that
     * must agree on a key's backend must use the same seed; a secret random
     * seed per deployment defeats hash flooding.  The compatibility modes
     * ignore it (see the header comment for why they cannot have one). */
    uint64_t seed;
} lbk_ring_options;

/*
 * lbk_ring_options_init - fill opts with the defaults: mode LBK_RING_XXH3,
 * points_per_weight LBK_RING_DEFAULT_POINTS, seed 0.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_ring_options_init(lbk_ring_options *opts);

/*
 * lbk_ring_build - allocate and build a ring over snap's backends.
 * snap: the backends; the ring takes its own reference.  Backends of weight
 *       0 get no point.  In the compatibility modes every backend of
 *       non-zero weight must be named "host:port": a non-empty host, the
 *       last ':' and a decimal port 1..65535 without leading zeros.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * out:  the ring.
 * A snapshot with no backend of non-zero weight gives an empty ring whose
 * lookups all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (snap or out NULL, alloc half set, mode unknown),
 * LBK_EPARSE (compatibility mode and a name that is not host:port),
 * LBK_ETOOLONG (LBK_RING_LIBKETAMA and a name longer than
 * LBK_RING_KETAMA_NAME_MAX), LBK_ERANGE (points_per_weight 0 or above
 * LBK_RING_MAX_POINTS_PER_WEIGHT; more than LBK_RING_MAX_POINTS points),
 * LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_ring_build(const lbk_snapshot *snap,
                           const lbk_ring_options *opts,
                           const lbk_allocator *alloc, lbk_ring **out);

/*
 * lbk_ring_free - release the snapshot reference and the memory.  NULL is a
 * no-op.
 * Thread safety: any thread, once no lookup on ring is running or will
 * start.
 */
LBK_API void lbk_ring_free(lbk_ring *ring);

/*
 * lbk_ring_hash_key - the mode's hash of a key, as lbk_ring_lookup_hash()
 * takes it: lbk_hash(key, len, seed) in LBK_RING_XXH3 mode; the
 * little-endian first 4 bytes of MD5(key) in the ketama modes; CRC32(key) in
 * LBK_RING_NGINX mode (the 32-bit hashes are returned in the low bits).
 * key: may be NULL only when len is 0.
 * Errors: LBK_EINVAL (ring or hash_out NULL, key NULL with len > 0).
 * Thread safety: any thread.
 */
LBK_API int lbk_ring_hash_key(const lbk_ring *ring, const void *key, size_t len,
                              uint64_t *hash_out);

/*
 * lbk_ring_lookup - the backend that owns key: the owner of the first point
 * at or after the key's hash, wrapping, or if that backend is not eligible
 * the next distinct eligible backend clockwise.
 * key: may be NULL only when len is 0.  out: valid while ring exists.
 * Errors: LBK_EINVAL (ring or out NULL, key NULL with len > 0),
 * LBK_ENOBACKEND (no eligible backend on the ring).
 * Thread safety: any thread, concurrently with other lookups and with health
 * changes; lock-free, allocation-free.
 */
LBK_API int lbk_ring_lookup(const lbk_ring *ring, const void *key, size_t len,
                            lbk_backend **out);

/*
 * lbk_ring_lookup_hash - lbk_ring_lookup() for a key already hashed with
 * lbk_ring_hash_key().
 * Errors: LBK_EINVAL (ring or out NULL), LBK_ERANGE (a compatibility mode and
 * hash above UINT32_MAX), LBK_ENOBACKEND.
 * Thread safety: as lbk_ring_lookup().
 */
LBK_API int lbk_ring_lookup_hash(const lbk_ring *ring, uint64_t hash,
                                 lbk_backend **out);

/*
 * lbk_ring_lookup_top - the first k distinct eligible backends clockwise
 * from key (out[0] is what lbk_ring_lookup() returns): the replica set.
 * When a backend goes down, the ones after it shift up and the next one
 * joins; when it comes back, the set is as before.
 * key: may be NULL only when len is 0.
 * out: room for k backends; *count: how many were written (min(k, eligible
 * backends on the ring)).
 * Cost: one walk around the ring at most, O(k) per step.
 * Errors: LBK_EINVAL (ring, out or count NULL, key NULL with len > 0, k 0),
 * LBK_ERANGE (k above LBK_RING_TOP_MAX), LBK_ENOBACKEND (no eligible
 * backend; nothing written).
 * Thread safety: as lbk_ring_lookup().
 */
LBK_API int lbk_ring_lookup_top(const lbk_ring *ring, const void *key,
                                size_t len, uint32_t k, lbk_backend **out,
                                uint32_t *count);

/*
 * lbk_ring_lookup_top_hash - lbk_ring_lookup_top() for a key already hashed
 * with lbk_ring_hash_key().
 * Errors: LBK_EINVAL (ring, out or count NULL, k 0), LBK_ERANGE (k above
 * LBK_RING_TOP_MAX; a compatibility mode and hash above UINT32_MAX),
 * LBK_ENOBACKEND.
 * Thread safety: as lbk_ring_lookup().
 */
LBK_API int lbk_ring_lookup_top_hash(const lbk_ring *ring, uint64_t hash,
                                     uint32_t k, lbk_backend **out,
                                     uint32_t *count);

/* ---- inspection (tests, benchmarks, tools) ------------------------------ */

/*
 * lbk_ring_hash_bits - the width of the ring's hash space: 64 in
 * LBK_RING_XXH3 mode, 32 in the compatibility modes (0 for NULL).
 * Thread safety: any thread.
 */
LBK_API unsigned lbk_ring_hash_bits(const lbk_ring *ring);

/*
 * lbk_ring_point_count - the number of points on the ring, after nginx mode
 * dropped duplicates (0 for NULL).
 * Thread safety: any thread.
 */
LBK_API uint32_t lbk_ring_point_count(const lbk_ring *ring);

/*
 * lbk_ring_snapshot - the snapshot the ring was built from (borrowed: valid
 * while ring exists; NULL for NULL).  Backend indexes below are indexes into
 * it (lbk_snapshot_backend()).
 * Thread safety: any thread.
 */
LBK_API const lbk_snapshot *lbk_ring_snapshot(const lbk_ring *ring);

/*
 * lbk_ring_find_point - the index of the first point at or after hash,
 * wrapping to point 0, whatever the owner's health (the key's home point).
 * Errors: LBK_EINVAL (ring or index_out NULL), LBK_ERANGE (a compatibility
 * mode and hash above UINT32_MAX), LBK_ENOBACKEND (the ring is empty).
 * Thread safety: any thread.
 */
LBK_API int lbk_ring_find_point(const lbk_ring *ring, uint64_t hash,
                                uint32_t *index_out);

/*
 * lbk_ring_point - point number index, in ascending order of hash: its hash
 * value (in the mode's hash space) and the snapshot index of its backend.
 * Either out-parameter may be NULL.
 * Errors: LBK_EINVAL (ring NULL), LBK_ERANGE (index >= point count).
 * Thread safety: any thread.
 */
LBK_API int lbk_ring_point(const lbk_ring *ring, uint32_t index,
                           uint64_t *hash_out, uint32_t *backend_out);

/*
 * lbk_ring_next_distinct - the first point clockwise after point index
 * (wrapping) whose backend differs from point index's backend.
 * Errors: LBK_EINVAL (ring or next_out NULL), LBK_ERANGE (index >= point
 * count), LBK_ENOENT (every point belongs to one backend).
 * Thread safety: any thread.
 */
LBK_API int lbk_ring_next_distinct(const lbk_ring *ring, uint32_t index,
                                   uint32_t *next_out);

/*
 * lbk_ring_ownership - the exact share of the hash space each backend owns
 * (its share of keys when all are up): arcs[i] for the snapshot's i-th
 * backend is the summed length of the arcs (previous point, point] of its
 * points, in units of the mode's hash space.  The arcs sum to 2^32 in the
 * compatibility modes and to 2^64 in LBK_RING_XXH3 mode, where a uint64_t
 * holds them modulo 2^64: their sum reads 0, and a backend that owns the
 * whole ring (the only one with points) reads 0 too, the function returning
 * 1 in that one case (0 otherwise).  O(P + N).
 * arcs: narcs entries, narcs >= lbk_snapshot_count() of the snapshot.
 * Errors: LBK_EINVAL (ring or arcs NULL), LBK_ERANGE (narcs too small),
 * LBK_ENOBACKEND (the ring is empty; nothing written).
 * Thread safety: any thread.
 */
LBK_API int lbk_ring_ownership(const lbk_ring *ring, uint64_t *arcs,
                               uint32_t narcs);

/*
 * lbk_ring_memory_bytes - bytes the ring holds (points, bucket index,
 * backend table and header; not the snapshot).  0 for NULL.
 * Thread safety: any thread.
 */
LBK_API size_t lbk_ring_memory_bytes(const lbk_ring *ring);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RING_H */
