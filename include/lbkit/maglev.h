/*
 * lbkit/maglev.h - Maglev hashing (Eisenbud et al., NSDI 2016): which backend
 * owns this key, by one lookup in a fixed-size table.
 *
 * Each backend walks its own permutation of a prime-sized table and, turn by
 * turn, claims its next preferred empty entry until the table is full; a key
 * is hashed to one entry.  Choose it over the ring when lookups must be O(1)
 * with near-perfect balance (equal weights: every backend owns floor(M/N) or
 * ceil(M/N) entries) and a somewhat larger disruption than the optimum 1/N on
 * membership changes is acceptable; over jump when backends are named (not
 * numbered) and weighted; over HRW when N is large (HRW's lookup is O(N)).
 * Cost: lookup O(1) (one hash, one table read); build O(M log M) expected
 * (plus O(M * N * w_max / W) turns with skewed weights); memory M x 2 bytes
 * while the snapshot lists fewer than 65536 backends (M x 4 above), plus a
 * fixed header.
 *
 * Weights.  A backend with weight w_i takes turns in proportion to w_i: every
 * round each weighted backend earns w_i credits and claims one entry per
 * w_max credits it holds (w_max = the largest weight), so the heaviest takes
 * one entry per round.  Equal weights give the paper's plain round robin.
 * Backends of weight 0 own no entry.  The entries backend i owns, c_i,
 * satisfy |c_i - M * w_i / W| < 2 + 2 * N * w_i / W (W = total weight, N =
 * backends of non-zero weight).  The backends' weight scale (slow start) is
 * not honoured: a fixed table cannot re-weight without a rebuild.
 *
 * Health.  The table is never rebuilt for health.  A lookup reads the key's
 * home entry; if that backend is not eligible (lbk_backend_eligible() false),
 * it re-probes the entries at lbk_bounded64(mix(hash + r * phi), M) for
 * r = 1 .. LBK_MAGLEV_PROBES (mix = SplitMix64's finaliser, phi the 64-bit
 * golden ratio), and if all of those are down too, scans the snapshot from
 * the home entry's backend onward for the first eligible backend of non-zero
 * weight.  The rule depends only on the key and the set of eligible backends,
 * so it is deterministic, spreads a down backend's keys over the others in
 * proportion to their table share, and sends every key home as soon as its
 * backend is eligible again.
 *
 * Lifetime.  A table keeps a reference to the snapshot it was built from
 * (released by lbk_maglev_free()), so the backends it returns stay valid
 * while it exists.  The table itself is immutable after build: any number of
 * threads may look up in it at once.
 */
#ifndef LBKIT_MAGLEV_H
#define LBKIT_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_maglev lbk_maglev;

/* The paper's table size, a prime. */
#define LBK_MAGLEV_DEFAULT_TABLE_SIZE 65537u

/* Largest table size accepted (a prime: 2^31 - 1). */
#define LBK_MAGLEV_MAX_TABLE_SIZE 2147483647u

/* Extra table probes for a key whose home backend is not eligible, before
 * the linear scan of the snapshot. */
#define LBK_MAGLEV_PROBES 16u

typedef struct lbk_maglev_options {
    /* Entries in the table: a prime, >= the number of backends of non-zero
     * weight, <= LBK_MAGLEV_MAX_TABLE_SIZE.  M > 100 * N keeps the ownership
     * difference between equal-weight backends under 1%. */
    uint32_t table_size;
    /* XXH3 seed for backend names and keys.  Every client that must agree on
     * a key's backend must use the same seed; a secret random seed per
     * deployment defeats hash flooding. */
    uint64_t seed;
} lbk_maglev_options;

/*
 * lbk_maglev_options_init - fill opts with the defaults: table_size
 * LBK_MAGLEV_DEFAULT_TABLE_SIZE, seed 0.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_maglev_options_init(lbk_maglev_options *opts);

/*
 * lbk_maglev_table_size_bytes - the buffer size lbk_maglev_init() needs for
 * a snapshot of n backends (all of them, whatever their weight) and a table
 * of table_size entries: a header, the table, and the build's scratch.
 * Errors: LBK_EINVAL (bytes NULL), LBK_ERANGE (table_size 0 or above
 * LBK_MAGLEV_MAX_TABLE_SIZE, n above LBK_SET_MAX, or the size does not fit in
 * size_t).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_maglev_table_size_bytes(uint32_t n, uint32_t table_size,
                                        size_t *bytes);

/*
 * lbk_maglev_init - build a table inside a caller buffer; never allocates.
 * buf: at least lbk_maglev_table_size_bytes(lbk_snapshot_count(snap),
 *      table_size) bytes, aligned to 8 bytes.  It must stay valid until the
 *      table's last reference is dropped (lbk_maglev_free()); lbkit never
 *      frees it.
 * snap: the backends; the table takes its own reference.
 * opts: NULL for the defaults.
 * out: the table (it lives at the start of buf).
 * A snapshot with no backend of non-zero weight gives a table whose lookups
 * all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (buf, snap or out NULL, buf misaligned),
 * LBK_ENOTPRIME (table_size not prime), LBK_ERANGE (table_size above
 * LBK_MAGLEV_MAX_TABLE_SIZE or below the number of backends of non-zero
 * weight; bytes too small).
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_maglev_init(void *buf, size_t bytes, const lbk_snapshot *snap,
                            const lbk_maglev_options *opts, lbk_maglev **out);

/*
 * lbk_maglev_build - allocate and build a table for snap.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * A snapshot with no backend of non-zero weight gives a table whose lookups
 * all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (snap or out NULL, alloc half set), LBK_ENOTPRIME
 * (table_size not prime), LBK_ERANGE (table_size above
 * LBK_MAGLEV_MAX_TABLE_SIZE or below the number of backends of non-zero
 * weight), LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_maglev_build(const lbk_snapshot *snap,
                             const lbk_maglev_options *opts,
                             const lbk_allocator *alloc, lbk_maglev **out);

/*
 * lbk_maglev_free - drop the builder's reference: the snapshot reference is
 * released and (for lbk_maglev_build() tables) the memory freed.  NULL is a
 * no-op.
 * Thread safety: any thread, once no lookup on m is running or will start.
 */
LBK_API void lbk_maglev_free(lbk_maglev *m);

/*
 * lbk_maglev_lookup - the backend that owns key (after the health rule in
 * the header comment).  The key is hashed with lbk_hash(key, len, seed).
 * key: may be NULL only when len is 0.
 * out: the backend, valid while m exists.
 * Errors: LBK_EINVAL (m or out NULL, key NULL with len > 0),
 * LBK_ENOBACKEND (no eligible backend of non-zero weight).
 * Thread safety: any thread, concurrently with other lookups and with
 * health changes; lock-free, allocation-free.
 */
LBK_API int lbk_maglev_lookup(const lbk_maglev *m, const void *key, size_t len,
                              lbk_backend **out);

/*
 * lbk_maglev_lookup_hash - lbk_maglev_lookup() for a key already hashed.
 * hash: a uniformly distributed 64-bit hash, normally lbk_hash(key, len,
 * seed) with the table's seed (the home entry is lbk_bounded64(hash, M), so
 * a hash with poor high bits balances poorly).
 * Errors: LBK_EINVAL (m or out NULL), LBK_ENOBACKEND (no eligible backend of
 * non-zero weight).
 * Thread safety: as lbk_maglev_lookup().
 */
LBK_API int lbk_maglev_lookup_hash(const lbk_maglev *m, uint64_t hash,
                                   lbk_backend **out);

/*
 * lbk_maglev_ownership - how many table entries each backend owns (its
 * share of keys when all are up): counts[i] for the snapshot's i-th backend.
 * O(M + N).
 * counts: ncounts entries, ncounts >= lbk_snapshot_count() of the snapshot.
 * Errors: LBK_EINVAL (m or counts NULL), LBK_ERANGE (ncounts too small).
 * Thread safety: any thread.
 */
LBK_API int lbk_maglev_ownership(const lbk_maglev *m, uint32_t *counts,
                                 uint32_t ncounts);

/*
 * lbk_maglev_table_size - the table's number of entries M (0 for NULL).
 * Thread safety: any thread.
 */
LBK_API uint32_t lbk_maglev_table_size(const lbk_maglev *m);

/*
 * lbk_maglev_memory_bytes - bytes the table holds after build: header and
 * entries (not the snapshot, not the build's scratch; 0 for NULL).
 * Thread safety: any thread.
 */
LBK_API size_t lbk_maglev_memory_bytes(const lbk_maglev *m);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_MAGLEV_H */
