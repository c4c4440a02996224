/*
 * lib/leastconn.c - least-connections over an 8-ary tournament tree of
 * cached loads, updated lock-free on every pick and release.
 *
 * Why a tree and not a scan: a linear scan reads every backend's live state
 * (one cache line each) per pick, so it costs O(N) cache misses; HAProxy
 * keeps its leastconn servers in an ordered tree for the same reason, under
 * a lock.  Here the cache is a tournament tree whose nodes are 64-bit words
 * (a load as the bits of a non-negative double, which order like the
 * doubles), eight siblings to a cache line:
 *
 *     level 2 (root)                 [ m ]
 *                          /     /  ...   \
 *     level 1       [ m0 m1 m2 m3 m4 m5 m6 m7 ]     one line: 8 minima
 *                    /  ...  \
 *     level 0  [ l0 l1 .. l7 ] [ l8 .. l15 ] ...     one line per 8 leaves
 *
 * Pick: from the root, at each level read one line, keep the children equal
 * to its minimum and follow one of them at random (idle backends share the
 * picks instead of the first idle one taking them all), then count the
 * request on the chosen backend and fix the path up.  Release: count the
 * end, fix the path up.  Fixing a node = recompute the minimum of its eight
 * children, compare-and-swap it in, then re-read the children: if they moved
 * meanwhile, do it again.  That re-check closes the ABA window of a plain
 * CAS (another writer may have restored the old value between our read and
 * our CAS), so when writers pause every node equals the minimum of its
 * children.  A fix stops climbing as soon as a node already holds the right
 * value: whoever wrote that value climbs on from there.
 *
 * The leaves cache values whose source of truth is elsewhere (the backends'
 * atomics), so the tree is re-validated three ways: the leaf a pick lands on
 * is compared with the live value (repaired and the pick redone when it got
 * worse), every pick re-reads one more leaf in turn (so any change is seen
 * within P picks, P = the power of two >= N), and an apparently empty tree,
 * or a pick that keeps landing on stale leaves, falls back to re-reading
 * everything and scanning.
 */
#include "lbkit/leastconn.h"

#include "internal.h"

#define LC_FANOUT 8u
#define LC_MAX_LEVELS 10 /* 8^8 = LBK_SET_MAX leaves: 9 levels */
#define LC_MAX_RETRY 8
#define LC_NONE UINT32_MAX
/* Loads are non-negative doubles compared as their bit patterns. */
#define LC_INF UINT64_C(0x7ff0000000000000) /* +inf: not eligible */
#define LC_PAD UINT64_MAX                   /* no backend here at all */

struct lbk_leastconn {
    lbk_ref ref; /* first: published in an lbk_cell */
    lbk_allocator alloc;
    void *raw; /* the one allocation, unaligned */
    const lbk_snapshot *snap;
    const lbk_snap_entry *e;
    uint32_t n;
    uint32_t height;     /* level of the root; leaves are level 0 */
    uint64_t sweep_mask; /* P - 1 */
    uint32_t nslots;     /* slot_idx length: largest slot + 1 */
    uint32_t *slot_idx;  /* slot -> snapshot index, LC_NONE if absent */
    uint32_t count[LC_MAX_LEVELS]; /* meaningful nodes per level */
    _Atomic uint64_t *lv[LC_MAX_LEVELS];
    uint64_t seed; /* rng's first state: the sweep counts from it */
    /* Written by every pick: on a line of its own. */
    _Alignas(LBK_CACHELINE) lbk_rng rng;
};

/* ---- loads ------------------------------------------------------------ */

/*
 * The live load of snapshot entry i as ordered bits.  The division is the
 * one place a compare cannot replace it: a tree needs every load on one
 * scale.  A correctly rounded quotient keeps equal loads equal (2/6 and 1/3
 * give the same bits), so ties are real ties.
 */
static inline uint64_t lc_key(const lbk_leastconn *lc, uint32_t i)
{
    const lbk_snap_entry *en = &lc->e[i];
    const lbk_backend *b = en->b;
    uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);
    uint32_t scale =
        atomic_load_explicit(&b->weight_scale, memory_order_relaxed);
    if (!lbk_backend_state_eligible(st) || en->weight == 0 || scale == 0)
        return LC_INF;
    uint32_t nf = atomic_load_explicit(&b->in_flight, memory_order_relaxed);
    if (nf == 0)
        return 0;
    double load = (double)nf / ((double)en->weight * (double)scale);
    uint64_t bits;
    memcpy(&bits, &load, sizeof(bits));
    return bits;
}

static inline uint64_t group_min(const _Atomic uint64_t *g)
{
    uint64_t m = atomic_load(&g[0]);
    for (unsigned j = 1; j < LC_FANOUT; j++) {
        uint64_t v = atomic_load(&g[j]);
        m = v < m ? v : m;
    }
    return m;
}

/* ---- fixing the tree -------------------------------------------------- */

/* Bring leaf i to its live value; true if this call changed it. */
static bool settle_leaf(lbk_leastconn *lc, uint32_t i)
{
    _Atomic uint64_t *p = &lc->lv[0][i];
    uint64_t cur = atomic_load(p);
    bool changed = false;
    for (;;) {
        uint64_t k = lc_key(lc, i);
        if (cur == k)
            return changed;
        if (atomic_compare_exchange_strong(p, &cur, k)) {
            changed = true;
            cur = k; /* re-check: the backend may have moved meanwhile */
        }
    }
}

/* Bring inner node (lev, j) to the minimum of its children; true if this
 * call changed it. */
static bool settle_node(lbk_leastconn *lc, uint32_t lev, uint32_t j)
{
    _Atomic uint64_t *p = &lc->lv[lev][j];
    const _Atomic uint64_t *g = lc->lv[lev - 1] + (size_t)j * LC_FANOUT;
    uint64_t cur = atomic_load(p);
    bool changed = false;
    for (;;) {
        uint64_t m = group_min(g);
        if (cur == m)
            return changed;
        if (atomic_compare_exchange_strong(p, &cur, m)) {
            changed = true;
            cur = m; /* re-check the children (closes the ABA window) */
        }
    }
}

/* Re-read leaf i and fix its path up, stopping where nothing changes. */
static void lc_fix(lbk_leastconn *lc, uint32_t i)
{
    if (!settle_leaf(lc, i))
        return;
    for (uint32_t lev = 1; lev <= lc->height; lev++) {
        i /= LC_FANOUT;
        if (!settle_node(lc, lev, i))
            return;
    }
}

/* Re-read every leaf, then every inner node bottom-up: O(N). */
static void lc_refresh_all(lbk_leastconn *lc)
{
    for (uint32_t i = 0; i < lc->n; i++)
        settle_leaf(lc, i);
    for (uint32_t lev = 1; lev <= lc->height; lev++)
        for (uint32_t j = 0; j < lc->count[lev]; j++)
            settle_node(lc, lev, j);
}

/* ---- picking ------------------------------------------------------------ */

/* Random bits for tie-breaking, 16 at a time, refilled from a local
 * SplitMix64 stream seeded by the pick's draw. */
typedef struct lc_bits {
    uint64_t state, bits;
    unsigned avail;
} lc_bits;

static inline uint32_t take16(lc_bits *rb)
{
    if (rb->avail < 16) {
        rb->bits = lbk_rng_local_next(&rb->state);
        rb->avail = 64;
    }
    uint32_t x = (uint32_t)(rb->bits & 0xffff);
    rb->bits >>= 16;
    rb->avail -= 16;
    return x;
}

static inline unsigned popcount8(unsigned x)
{
    x = x - ((x >> 1) & 0x55u);
    x = (x & 0x33u) + ((x >> 2) & 0x33u);
    return (x + (x >> 4)) & 0x0fu;
}

/* One of the set bits of mask (8 bits), uniformly (to within 8 / 2^16). */
static inline unsigned pick_bit(unsigned mask, lc_bits *rb)
{
    if ((mask & (mask - 1)) == 0)
        return (unsigned)__builtin_ctz(mask);
    uint32_t t = (take16(rb) * popcount8(mask)) >> 16;
    while (t--)
        mask &= mask - 1;
    return (unsigned)__builtin_ctz(mask);
}

/* Walk from the root to a leaf of minimal cached load, ties at random. */
static uint32_t lc_descend(const lbk_leastconn *lc, lc_bits *rs)
{
    uint32_t node = 0;
    for (uint32_t lev = lc->height; lev-- > 0;) {
        const _Atomic uint64_t *g = lc->lv[lev] + (size_t)node * LC_FANOUT;
        uint64_t v[LC_FANOUT], m = LC_PAD;
        for (unsigned j = 0; j < LC_FANOUT; j++) {
            v[j] = atomic_load_explicit(&g[j], memory_order_relaxed);
            m = v[j] < m ? v[j] : m;
        }
        unsigned mask = 0;
        for (unsigned j = 0; j < LC_FANOUT; j++)
            mask |= (unsigned)(v[j] == m) << j;
        node = node * LC_FANOUT + pick_bit(mask, rs);
    }
    return node;
}

static int lc_take(lbk_leastconn *lc, uint32_t i, lbk_backend **out)
{
    lbk_backend *b = lc->e[i].b;
    FORWARD_IF_ERROR(lbk_backend_begin(b));
    lc_fix(lc, i);
    *out = b;
    return 0;
}

/* The slow path: re-read everything, then scan the live loads from a random
 * start (ties go to the first met, so the start rotates them). */
static int lc_pick_slow(lbk_leastconn *lc, lc_bits *rs, lbk_backend **out)
{
    lc_refresh_all(lc);
    uint32_t i = (uint32_t)lbk_bounded64(lbk_rng_local_next(&rs->state), lc->n);
    uint32_t best = LC_NONE;
    uint64_t best_key = LC_INF;
    for (uint32_t k = 0; k < lc->n; k++, i = (i + 1 == lc->n) ? 0 : i + 1) {
        uint64_t key = lc_key(lc, i);
        if (key < best_key) {
            best_key = key;
            best = i;
        }
    }
    RETURN_ERROR_IF(best == LC_NONE, LBK_ENOBACKEND);
    return lc_take(lc, best, out);
}

int lbk_leastconn_pick(lbk_leastconn *lc, lbk_backend **out)
{
    RETURN_ERROR_IF(lc == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(lc->n == 0, LBK_ENOBACKEND);
    /* lbk_rng_next, unrolled because its counter also drives the sweep:
     * the k-th pick sees state seed + k * gamma, and as gamma is odd,
     * (k * gamma) mod P visits every leaf position once per P picks. */
    uint64_t s = atomic_fetch_add_explicit(&lc->rng.state, LBK_GOLDEN_GAMMA,
                                           memory_order_relaxed);
    lc_bits rs = {lbk_mix64(s + LBK_GOLDEN_GAMMA), 0, 0};
    uint32_t sweep = (uint32_t)((s - lc->seed) & lc->sweep_mask);
    if (sweep < lc->n) /* fetch its line while we descend */
        __builtin_prefetch(lc->e[sweep].b);
    const _Atomic uint64_t *root = &lc->lv[lc->height][0];
    for (int attempt = 0; attempt < LC_MAX_RETRY; attempt++) {
        if (atomic_load_explicit(root, memory_order_relaxed) >= LC_INF)
            break; /* looks empty: make sure, the slow way */
        uint32_t i = lc_descend(lc, &rs);
        if (LBK_UNLIKELY(i >= lc->n))
            continue; /* a padding leaf, only through a racing update */
        uint64_t cached = atomic_load(&lc->lv[0][i]);
        if (lc_key(lc, i) > cached) {
            lc_fix(lc, i); /* got worse behind our back (or went down) */
            continue;
        }
        int rc = lc_take(lc, i, out);
        if (sweep < lc->n)
            lc_fix(lc, sweep);
        return rc;
    }
    return lc_pick_slow(lc, &rs, out); /* re-reads every leaf anyway */
}

int lbk_leastconn_release(lbk_leastconn *lc, lbk_backend *b)
{
    RETURN_ERROR_IF(lc == NULL || b == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(lbk_backend_end(b));
    uint32_t s = b->slot;
    if (s < lc->nslots) {
        uint32_t i = lc->slot_idx[s];
        if (i != LC_NONE && lc->e[i].b == b)
            lc_fix(lc, i);
    }
    return 0;
}

int lbk_leastconn_refresh(lbk_leastconn *lc)
{
    RETURN_ERROR_IF(lc == NULL, LBK_EINVAL);
    if (lc->n > 0)
        lc_refresh_all(lc);
    return 0;
}

const lbk_snapshot *lbk_leastconn_snapshot(const lbk_leastconn *lc)
{
    return lc ? lc->snap : NULL;
}

/* ---- life --------------------------------------------------------------- */

void lbk_leastconn_options_init(lbk_leastconn_options *opts)
{
    if (opts != NULL)
        opts->seed = 0;
}

static void lc_destroy(lbk_ref *r)
{
    lbk_leastconn *lc = (lbk_leastconn *)r;
    lbk_allocator a = lc->alloc;
    lbk_snapshot_release(lc->snap);
    lbk_free(&a, lc->raw);
}

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

int lbk_leastconn_build(const lbk_snapshot *snap,
                        const lbk_leastconn_options *opts,
                        const lbk_allocator *alloc, lbk_leastconn **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_leastconn_options defaults;
    if (opts == NULL) {
        lbk_leastconn_options_init(&defaults);
        opts = &defaults;
    }
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);

    /* Shape: level 0 has n leaves, each level above ceil(count / 8) nodes,
     * up to a single root; every level is padded to whole lines. */
    uint32_t n = snap->n, count[LC_MAX_LEVELS] = {0}, height = 0;
    size_t nodes = 0;
    if (n > 0) {
        count[0] = n;
        do {
            nodes += round_up(count[height], LC_FANOUT);
            count[height + 1] = (count[height] + LC_FANOUT - 1) / LC_FANOUT;
            height++;
        } while (count[height] > 1);
        nodes += LC_FANOUT; /* the root's line */
    }
    uint32_t nslots = n > 0 ? snap->e[n - 1].slot + 1 : 0;
    size_t head = round_up(sizeof(lbk_leastconn), LBK_CACHELINE);
    size_t size = LBK_CACHELINE + head + nodes * sizeof(uint64_t) +
                  (size_t)nslots * sizeof(uint32_t);
    void *raw = lbk_malloc(&a, size);
    RETURN_ERROR_IF(raw == NULL, LBK_ENOMEM);

    uintptr_t base =
        ((uintptr_t)raw + LBK_CACHELINE - 1) & ~(uintptr_t)(LBK_CACHELINE - 1);
    lbk_leastconn *lc = (lbk_leastconn *)base;
    memset(lc, 0, sizeof(*lc));
    lbk_ref_init(&lc->ref, lc_destroy);
    lc->alloc = a;
    lc->raw = raw;
    lc->snap = snap;
    lc->e = snap->e;
    lc->n = n;
    lc->height = height;
    memcpy(lc->count, count, sizeof(count));
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    lc->sweep_mask = p - 1;
    lc->seed = opts->seed ? opts->seed : lbk_entropy_seed(lc);
    lbk_rng_seed(&lc->rng, lc->seed);

    _Atomic uint64_t *node = (_Atomic uint64_t *)(base + head);
    for (uint32_t lev = 0; n > 0 && lev <= height; lev++) {
        size_t len =
            lev == height ? LC_FANOUT : round_up(count[lev], LC_FANOUT);
        lc->lv[lev] = node;
        for (size_t j = 0; j < len; j++)
            atomic_init(&node[j], LC_PAD);
        node += len;
    }
    lc->slot_idx = (uint32_t *)node;
    lc->nslots = nslots;
    for (uint32_t s = 0; s < nslots; s++)
        lc->slot_idx[s] = LC_NONE;
    for (uint32_t i = 0; i < n; i++)
        lc->slot_idx[snap->e[i].slot] = i;
    /* Loads from the live counters; nobody else sees the tree yet, so
     * plain initialisation, bottom-up. */
    for (uint32_t i = 0; i < n; i++)
        atomic_init(&lc->lv[0][i], lc_key(lc, i));
    for (uint32_t lev = 1; n > 0 && lev <= height; lev++)
        for (uint32_t j = 0; j < count[lev]; j++)
            atomic_init(&lc->lv[lev][j],
                        group_min(lc->lv[lev - 1] + (size_t)j * LC_FANOUT));

    lbk_ref_retain((lbk_ref *)&((lbk_snapshot *)snap)->ref);
    *out = lc;
    return 0;
}

void lbk_leastconn_free(lbk_leastconn *lc)
{
    if (lc != NULL)
        lbk_ref_release(&lc->ref);
}
