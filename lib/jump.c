/*
 * lib/jump.c - jump consistent hash (Lamping & Veach, "A Fast, Minimal
 * Memory, Consistent Hash Algorithm", 2014) and its wrapper over a snapshot.
 *
 * The function follows one key through the sequence of bucket counts at
 * which it would "jump" to the newest bucket.  With n buckets a key sits in
 * bucket b; it moves to bucket n when the count grows to n + 1 with
 * probability 1/(n + 1).  Instead of walking every n, a pseudo-random draw
 * r in (0, 1] gives the next n at which the key jumps, j = floor((b + 1) / r),
 * because P(no jump between b + 1 and j) = (b + 1) / j:
 *
 *     n:   1   2   3   4   5   6   7   8   9 ...
 *     b:   0 ----> 1 ------------> 4 ------------> 8   (jumps at 2, 5, 9)
 *
 * so the loop runs about ln n times.  The draw is a 64-bit LCG step on the
 * key and the division is in double, exactly as in the paper's code, so the
 * answers agree with every other implementation bit for bit.
 *
 * The wrapper is a flat slot -> backend array (NULL for slots that take no
 * keys), because set slots are what stays stable as backends come and go.
 */
#include "internal.h"
#include "lbkit/jump.h"

struct lbk_jump {
    lbk_ref ref;
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    uint64_t seed;
    uint32_t buckets; /* highest listed slot + 1 */
    uint32_t live;    /* slots holding a backend of non-zero weight */
    lbk_backend *slot[];
};

/* The paper's loop; n >= 1. */
static inline uint32_t jump_bucket(uint64_t key, uint32_t n)
{
    int64_t b = -1, next = 0;
    while (next < (int64_t)n) {
        b = next;
        key = key * UINT64_C(2862933555777941757) + 1;
        double r = (double)(INT64_C(1) << 31) / (double)((key >> 33) + 1);
        next = (int64_t)((double)(b + 1) * r);
    }
    return (uint32_t)b;
}

int lbk_jump_hash(uint64_t key, uint32_t buckets, uint32_t *bucket)
{
    RETURN_ERROR_IF(bucket == NULL || buckets == 0, LBK_EINVAL);
    RETURN_ERROR_IF(buckets > LBK_JUMP_MAX_BUCKETS, LBK_ERANGE);
    *bucket = jump_bucket(key, buckets);
    return 0;
}

void lbk_jump_options_init(lbk_jump_options *opts)
{
    if (opts != NULL)
        opts->seed = 0;
}

static void jump_destroy(lbk_ref *r)
{
    lbk_jump *j = (lbk_jump *)r;
    const lbk_snapshot *snap = j->snap;
    lbk_allocator a = j->alloc;
    lbk_free(&a, j);
    lbk_snapshot_release(snap);
}

int lbk_jump_build(const lbk_snapshot *snap, const lbk_jump_options *opts,
                   const lbk_allocator *alloc, lbk_jump **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    uint32_t buckets = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].slot + 1 > buckets)
            buckets = snap->e[i].slot + 1;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_jump *j =
        lbk_malloc(&a, sizeof(*j) + (size_t)buckets * sizeof(j->slot[0]));
    RETURN_ERROR_IF(j == NULL, LBK_ENOMEM);
    lbk_ref_init(&j->ref, jump_destroy);
    j->alloc = a;
    j->snap = snap;
    j->seed = opts != NULL ? opts->seed : 0;
    j->buckets = buckets;
    j->live = 0;
    for (uint32_t s = 0; s < buckets; s++)
        j->slot[s] = NULL;
    for (uint32_t i = 0; i < snap->n; i++) {
        if (snap->e[i].weight == 0)
            continue;
        j->slot[snap->e[i].slot] = snap->e[i].b;
        j->live++;
    }
    lbk_snapshot_retain(snap);
    *out = j;
    return 0;
}

void lbk_jump_free(lbk_jump *j)
{
    if (j != NULL)
        lbk_ref_release(&j->ref);
}

uint32_t lbk_jump_buckets(const lbk_jump *j)
{
    return j ? j->buckets : 0;
}

static inline bool takes_keys(const lbk_backend *b)
{
    return b != NULL && lbk_backend_state_eligible(atomic_load_explicit(
                            &b->state, memory_order_relaxed));
}

/* The rule of jump.h for a bucket that takes no keys: re-hash, then scan. */
static int lookup_fallback(const lbk_jump *j, uint64_t hash, uint32_t home,
                           lbk_backend **out)
{
    for (uint32_t r = 1; r <= LBK_JUMP_PROBES; r++) {
        uint64_t k = lbk_mix64(hash + r * LBK_GOLDEN_GAMMA);
        lbk_backend *b = j->slot[jump_bucket(k, j->buckets)];
        if (takes_keys(b)) {
            *out = b;
            return 0;
        }
    }
    for (uint32_t s = 0, i = home; s < j->buckets; s++) {
        if (++i == j->buckets)
            i = 0;
        if (takes_keys(j->slot[i])) {
            *out = j->slot[i];
            return 0;
        }
    }
    return LBK_ENOBACKEND;
}

int lbk_jump_lookup_hash(const lbk_jump *j, uint64_t hash, lbk_backend **out)
{
    RETURN_ERROR_IF(j == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(j->live == 0, LBK_ENOBACKEND);
    uint32_t b = jump_bucket(hash, j->buckets);
    if (LBK_LIKELY(takes_keys(j->slot[b]))) {
        *out = j->slot[b];
        return 0;
    }
    return lookup_fallback(j, hash, b, out);
}

int lbk_jump_lookup(const lbk_jump *j, const void *key, size_t len,
                    lbk_backend **out)
{
    RETURN_ERROR_IF(j == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    return lbk_jump_lookup_hash(j, lbk_hash(key, len, j->seed), out);
}
