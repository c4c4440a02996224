/*
 * lib/bounded.c - consistent hashing with bounded loads (Mirrokni, Thorup,
 * Zadimoghaddam, SODA 2018) over lib/ring.c's ring.
 *
 * State: one atomic load counter per backend and one for the total m.  An
 * acquire first adds itself to m (so the capacity it computes,
 * ceil(c * m / n), counts it), then walks the ring clockwise from the key's
 * home point, one run of points per backend, and at each eligible backend
 * tries to raise the load by a compare-and-swap loop that gives up as soon
 * as the load has reached the capacity:
 *
 *     home --> [A: full] --> [B: down] --> [A: full] --> [C: 3 < cap] CAS 3->4
 *
 * The CAS against the capacity is what keeps the bound with many threads:
 * two acquires racing for C's last free place cannot both win, the loser
 * moves on.  No lock, no allocation; a release is one CAS down on the
 * backend (refusing to go below 0) and one decrement of m.
 *
 * Capacity is computed as (factor * m + 100 n - 1) / (100 n) in 64-bit
 * integers: exact ceil(c * m / n) with c = factor / 100, no float rounding
 * at the boundary.
 */
#include "internal.h"
#include "lbkit/bounded.h"

/* Runs walked before checking that some backend is eligible at all. */
#define WALK_RUNS_BEFORE_SCAN 64u

/* Walks an acquire retries with n and m re-read, after finding every
 * eligible backend full. */
#define ACQUIRE_RETRIES 3

struct lbk_bounded {
    lbk_ref ref;
    lbk_allocator alloc;
    lbk_ring *ring;
    const lbk_snapshot *snap; /* the ring's, borrowed */
    uint32_t factor;          /* c in percent */
    uint32_t npoints;
    _Atomic uint32_t total; /* m: requests in flight */
    _Atomic uint32_t n;     /* eligible backends of non-zero weight */
    _Atomic uint32_t load[];
};

void lbk_bounded_options_init(lbk_bounded_options *opts)
{
    if (opts == NULL)
        return;
    lbk_ring_options_init(&opts->ring);
    opts->balance_factor = LBK_BOUNDED_DEFAULT_FACTOR;
}

static inline bool index_eligible(const lbk_snapshot *s, uint32_t i)
{
    return lbk_backend_state_eligible(
        atomic_load_explicit(&s->e[i].b->state, memory_order_relaxed));
}

static uint32_t count_eligible(const lbk_bounded *bd)
{
    const lbk_snapshot *s = bd->snap;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->e[i].weight != 0 && index_eligible(s, i))
            n++;
    return n;
}

static void bounded_destroy(lbk_ref *ref)
{
    lbk_bounded *bd = (lbk_bounded *)ref;
    lbk_allocator a = bd->alloc;
    lbk_ring_free(bd->ring);
    lbk_free(&a, bd);
}

int lbk_bounded_build(const lbk_snapshot *snap, const lbk_bounded_options *opts,
                      const lbk_allocator *alloc, lbk_bounded **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(!lbk_alloc_valid(alloc), LBK_EINVAL);
    lbk_bounded_options o;
    lbk_bounded_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF((unsigned)o.ring.mode > (unsigned)LBK_RING_NGINX,
                    LBK_EINVAL);
    RETURN_ERROR_IF(o.balance_factor < LBK_BOUNDED_MIN_FACTOR ||
                        o.balance_factor > LBK_BOUNDED_MAX_FACTOR,
                    LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t size = sizeof(lbk_bounded) + (size_t)snap->n * sizeof(uint32_t);
    lbk_bounded *bd = lbk_calloc(&a, 1, size);
    RETURN_ERROR_IF(bd == NULL, LBK_ENOMEM);
    int rc = lbk_ring_build(snap, &o.ring, &a, &bd->ring);
    if (rc < 0) {
        lbk_free(&a, bd);
        return rc;
    }
    bd->alloc = a;
    bd->snap = lbk_ring_snapshot(bd->ring);
    bd->factor = o.balance_factor;
    bd->npoints = lbk_ring_point_count(bd->ring);
    for (uint32_t i = 0; i < snap->n; i++)
        atomic_init(&bd->load[i], 0);
    atomic_init(&bd->total, 0);
    atomic_init(&bd->n, count_eligible(bd));
    lbk_ref_init(&bd->ref, bounded_destroy);
    *out = bd;
    return 0;
}

void lbk_bounded_free(lbk_bounded *bd)
{
    if (bd != NULL)
        lbk_ref_release(&bd->ref);
}

static inline uint32_t capacity(uint32_t factor, uint32_t m, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t den = (uint64_t)100 * n;
    uint64_t cap = ((uint64_t)factor * m + den - 1) / den;
    /* saturates only when factor * m > 100 n 2^32: billions in flight */
    return cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

/* Raise backend i's load by one if it is below cap. */
static bool try_take(lbk_bounded *bd, uint32_t i, uint32_t cap)
{
    uint32_t l = atomic_load_explicit(&bd->load[i], memory_order_relaxed);
    while (l < cap) {
        if (atomic_compare_exchange_weak_explicit(&bd->load[i], &l, l + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

/* One turn of the ring from point start.  Returns 0 and the backend, or
 * LBK_ENOBACKEND (nothing eligible seen) or LBK_EAGAIN (all eligible
 * full). */
static int walk(lbk_bounded *bd, uint32_t start, uint32_t cap,
                lbk_backend **out)
{
    const lbk_snapshot *s = bd->snap;
    uint32_t i = start, owner, next;
    uint64_t dist = 0;
    bool seen = false;
    for (uint32_t runs = 1;; runs++) {
        (void)lbk_ring_point(bd->ring, i, NULL, &owner);
        if (index_eligible(s, owner)) {
            seen = true;
            if (try_take(bd, owner, cap)) {
                *out = s->e[owner].b;
                return 0;
            }
        }
        if (lbk_ring_next_distinct(bd->ring, i, &next) < 0)
            break;
        dist += next > i ? next - i : bd->npoints - i + next;
        if (dist >= bd->npoints)
            break;
        if (runs == WALK_RUNS_BEFORE_SCAN && !seen && count_eligible(bd) == 0)
            break;
        i = next;
    }
    return seen ? LBK_EAGAIN : LBK_ENOBACKEND;
}

int lbk_bounded_acquire(lbk_bounded *bd, const void *key, size_t len,
                        lbk_backend **out)
{
    RETURN_ERROR_IF(bd == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    RETURN_ERROR_IF(bd->npoints == 0, LBK_ENOBACKEND);
    uint64_t h;
    uint32_t start;
    /* defensive: neither can fail, the arguments were checked above and
     * the ring has points */
    FORWARD_IF_ERROR(lbk_ring_hash_key(bd->ring, key, len, &h));
    FORWARD_IF_ERROR(lbk_ring_find_point(bd->ring, h, &start));
    uint32_t m = atomic_load_explicit(&bd->total, memory_order_relaxed);
    /* the EOVERFLOW needs 2^32 - 1 requests in flight and the CAS retry
     * another thread's acquire in between: neither is reached in tests */
    do {
        RETURN_ERROR_IF(m == UINT32_MAX, LBK_EOVERFLOW);
    } while (!atomic_compare_exchange_weak_explicit(
        &bd->total, &m, m + 1, memory_order_relaxed, memory_order_relaxed));
    m++;
    uint32_t n = atomic_load_explicit(&bd->n, memory_order_relaxed);
    if (n == 0) {
        n = count_eligible(bd);
        atomic_store_explicit(&bd->n, n, memory_order_relaxed);
    }
    int rc = walk(bd, start, capacity(bd->factor, m, n), out);
    /* Everything eligible was full.  With n exact and m read now (it counts
     * every placed request and this one), n * ceil(c m / n) >= m leaves a
     * place free, so retry with both refreshed; only acquires racing for
     * the same places, or health flapping, can use up the attempts. */
    for (int attempt = 0; rc == LBK_EAGAIN && attempt < ACQUIRE_RETRIES;
         attempt++) {
        uint32_t fresh_n = count_eligible(bd);
        uint32_t fresh_m =
            atomic_load_explicit(&bd->total, memory_order_relaxed);
        atomic_store_explicit(&bd->n, fresh_n, memory_order_relaxed);
        if (fresh_n == n && fresh_m == m)
            break; /* the same numbers would fail the same way */
        n = fresh_n;
        m = fresh_m;
        rc = walk(bd, start, capacity(bd->factor, m, n), out);
    }
    if (rc < 0)
        atomic_fetch_sub_explicit(&bd->total, 1, memory_order_relaxed);
    return rc;
}

/* The snapshot index of b (entries are in ascending slot order), or -1. */
static int64_t index_of(const lbk_bounded *bd, const lbk_backend *b)
{
    const lbk_snapshot *s = bd->snap;
    uint32_t lo = 0, hi = s->n, slot = b->slot;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->e[mid].slot < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->e[lo].b == b && s->e[lo].weight != 0)
        return lo;
    return -1;
}

int lbk_bounded_release(lbk_bounded *bd, lbk_backend *b)
{
    RETURN_ERROR_IF(bd == NULL || b == NULL, LBK_EINVAL);
    int64_t i = index_of(bd, b);
    RETURN_ERROR_IF(i < 0, LBK_ENOENT);
    uint32_t l = atomic_load_explicit(&bd->load[i], memory_order_relaxed);
    do {
        RETURN_ERROR_IF(l == 0, LBK_ESTATE);
    } while (!atomic_compare_exchange_weak_explicit(
        &bd->load[i], &l, l - 1, memory_order_acq_rel, memory_order_relaxed));
    atomic_fetch_sub_explicit(&bd->total, 1, memory_order_relaxed);
    return 0;
}

int lbk_bounded_refresh(lbk_bounded *bd)
{
    RETURN_ERROR_IF(bd == NULL, LBK_EINVAL);
    uint32_t n = count_eligible(bd);
    atomic_store_explicit(&bd->n, n, memory_order_relaxed);
    return (int)n;
}

int lbk_bounded_load(const lbk_bounded *bd, const lbk_backend *b,
                     uint32_t *load_out)
{
    RETURN_ERROR_IF(bd == NULL || b == NULL || load_out == NULL, LBK_EINVAL);
    int64_t i = index_of(bd, b);
    RETURN_ERROR_IF(i < 0, LBK_ENOENT);
    *load_out = atomic_load_explicit(&bd->load[i], memory_order_relaxed);
    return 0;
}

uint32_t lbk_bounded_total(const lbk_bounded *bd)
{
    return bd ? atomic_load_explicit(&bd->total, memory_order_relaxed) : 0;
}

uint32_t lbk_bounded_capacity(const lbk_bounded *bd, uint32_t m)
{
    if (bd == NULL)
        return 0;
    return capacity(bd->factor, m,
                    atomic_load_explicit(&bd->n, memory_order_relaxed));
}

const lbk_ring *lbk_bounded_ring(const lbk_bounded *bd)
{
    return bd ? bd->ring : NULL;
}
