/*
 * lib/wrr.c - smooth weighted round-robin from a schedule indexed by a
 * shared counter.
 *
 * nginx's smooth WRR keeps a "current" value per backend and scans all N of
 * them on every pick: current_i += w_i for all i, the largest wins and pays
 * W.  That state is mutated by every pick, so it cannot be shared by
 * threads without a lock, and the scan is O(N).  But the sequence it
 * produces depends only on the weights and repeats every W picks.  So this
 * picker computes the cycle once, at build time, and a pick is
 *
 *     t = counter++                     shared by threads (rr.h: relaxed
 *                                       load and store, or a locked add)
 *     q, r = t / W, t mod W            multiply-shift, no division
 *     pos = (r + phase(q)) mod W        a random rotation per cycle
 *     i = schedule(pos)                 table[pos], or a tree descent
 *
 * Building the nginx cycle naively costs O(N * W).  Backends of equal
 * weight move in lockstep in nginx's rule (the one with fewer picks, then
 * the lower slot, leads its group), so the build keeps one entry per
 * distinct weight - a group's leader and its pick count - and costs
 * O(D * W) for D distinct weights; proxies rarely have more than a handful.
 *
 * When W is too large for a table (it may be up to 2^32 - 1), the schedule
 * is a function of pos computed in O(log N): a balanced binary tree over the
 * backends where each inner node splits its own arrivals between its two
 * subtrees by a Bresenham line (the a-th arrival goes left when
 * floor((a+1)L/T + 1/2) > floor(aL/T + 1/2)).  The a-th arrival at a node
 * is the floor(aL/T + 1/2)-th arrival of its left child, or the rest-th of
 * its right child, so one descent maps pos to a backend and every node -
 * hence every leaf - gets exactly its weight per cycle:
 *
 *            [T=10, L=6]              arrivals 0..9 at the root
 *            /         \
 *     [T=6, L=2]      leaf c (4)      L goes left 6 times, c gets 4
 *      /      \
 *   leaf a(2) leaf b(4)
 *
 * Every division is by a per-node constant, done as a multiply by a
 * reciprocal computed at build time plus one correction step.
 */
#include <stdlib.h>

#include "lbkit/wrr.h"

#include "internal.h"

#define LEAF UINT32_C(0x80000000)

typedef struct wrr_node {
    uint64_t m;        /* UINT64_MAX / t */
    uint32_t t;        /* weight under this node: its cycle */
    uint32_t l;        /* weight under the left child */
    uint32_t child[2]; /* node index, or LEAF | backend index */
} wrr_node;

struct lbk_wrr {
    lbk_ref ref;
    char pad0_[LBK_CACHELINE];
    _Atomic uint64_t next; /* the shared pick counter, on its own line */
    char pad1_[LBK_CACHELINE];
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    uint64_t seed;
    uint64_t total; /* W */
    uint64_t mod_m; /* UINT64_MAX / W */
    uint64_t phase0, stride;
    uint32_t n;
    uint32_t root;
    bool exact;
    lbk_backend **b; /* n backends of weight > 0, slot order */
    uint32_t *table; /* W entries, or NULL */
    wrr_node *nodes; /* n - 1 inner nodes, or NULL */
    size_t bytes;
};

void lbk_wrr_options_init(lbk_wrr_options *opts)
{
    if (opts == NULL)
        return;
    opts->seed = 0;
    opts->random_phase = true;
    opts->table_max = LBK_WRR_TABLE_DEFAULT;
    opts->exact_turns = false;
}

/* ---- the tree --------------------------------------------------------- */

/* Inner nodes for b[lo, hi); returns the node or leaf code. */
static uint32_t tree_build(lbk_wrr *w, const uint32_t *wt, uint32_t lo,
                           uint32_t hi, uint32_t *next_node)
{
    if (hi - lo == 1)
        return LEAF | lo;
    uint64_t t = 0;
    for (uint32_t i = lo; i < hi; i++)
        t += wt[i];
    /* Split where the left half's weight comes closest to t/2, kept within
     * the middle half by count so the depth stays O(log n). */
    uint32_t len = hi - lo;
    uint32_t min_mid = lo + len / 4, max_mid = hi - len / 4;
    if (min_mid <= lo)
        min_mid = lo + 1;
    if (max_mid >= hi)
        max_mid = hi - 1;
    uint64_t l = 0, best_l = 0;
    uint32_t mid = min_mid;
    uint64_t best_gap = UINT64_MAX;
    for (uint32_t i = lo; i < max_mid; i++) {
        l += wt[i];
        if (i + 1 < min_mid)
            continue;
        uint64_t gap = 2 * l > t ? 2 * l - t : t - 2 * l;
        if (gap < best_gap) {
            best_gap = gap;
            best_l = l;
            mid = i + 1;
        }
    }
    l = best_l;
    uint32_t id = (*next_node)++;
    wrr_node *nd = &w->nodes[id];
    nd->t = (uint32_t)t;
    nd->l = (uint32_t)l;
    nd->m = UINT64_MAX / t;
    nd->child[0] = tree_build(w, wt, lo, mid, next_node);
    nd->child[1] = tree_build(w, wt, mid, hi, next_node);
    return id;
}

static inline uint32_t tree_at(const lbk_wrr *w, uint64_t a)
{
    uint32_t c = w->root;
    while (!(c & LEAF)) {
        const wrr_node *nd = &w->nodes[c];
        uint64_t r;
        uint64_t q = lbk_divmod64(a * nd->l + (nd->t >> 1), nd->t, nd->m, &r);
        if (r + nd->l >= nd->t) { /* lefts so far went from q to q + 1 */
            a = q;
            c = nd->child[0];
        } else {
            a -= q;
            c = nd->child[1];
        }
    }
    return c & ~LEAF;
}

/* ---- the table: nginx's cycle, one entry per distinct weight ---------- */

typedef struct wrr_group {
    uint64_t w;     /* the weight shared by the group */
    uint64_t base;  /* picks every member has had */
    uint32_t first; /* members: order[first .. first + m), slot order */
    uint32_t m;
    uint32_t pos; /* members [0, pos) have had base + 1 picks */
    uint32_t pad_;
} wrr_group;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Count distinct weights (wt sorted into keys by the caller). */
static uint32_t group_count(const uint64_t *keys, uint32_t n)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < n; i++)
        d += i == 0 || (keys[i] >> 32) != (keys[i - 1] >> 32);
    return d;
}

/*
 * Fill table[0 .. W) with nginx's smooth WRR sequence: at step s (1-based)
 * every current_i has grown to s * w_i - W * count_i; the largest wins, the
 * lower slot on ties.  A group's leader is its member with the fewest picks
 * and, among those, the lowest slot; members take the lead in slot order.
 */
static void table_fill(uint32_t *table, uint64_t total, wrr_group *g,
                       uint32_t d, const uint32_t *member)
{
    for (uint64_t s = 1; s <= total; s++) {
        uint32_t best = 0;
        int64_t best_lag = INT64_MIN;
        uint32_t best_slot = UINT32_MAX;
        for (uint32_t k = 0; k < d; k++) {
            int64_t lag = (int64_t)(s * g[k].w) - (int64_t)(total * g[k].base);
            uint32_t slot = member[g[k].first + g[k].pos];
            if (lag > best_lag || (lag == best_lag && slot < best_slot)) {
                best = k;
                best_lag = lag;
                best_slot = slot;
            }
        }
        table[s - 1] = best_slot;
        if (++g[best].pos == g[best].m) {
            g[best].pos = 0;
            g[best].base++;
        }
    }
}

/* The groups for the table build: one temporary block, freed here. */
static int table_build(lbk_wrr *w, const uint64_t *keys, uint32_t d,
                       const lbk_allocator *a)
{
    uint32_t n = w->n;
    size_t bytes = (size_t)d * sizeof(wrr_group) + (size_t)n * sizeof(uint32_t);
    wrr_group *g = lbk_malloc(a, bytes);
    RETURN_ERROR_IF(g == NULL, LBK_ENOMEM);
    uint32_t *member = (uint32_t *)(void *)(g + d);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        member[i] = (uint32_t)keys[i]; /* index in b[], slot order */
        if (i == 0 || (keys[i] >> 32) != (keys[i - 1] >> 32)) {
            g[k] = (wrr_group){.w = keys[i] >> 32, .first = i};
            k++;
        }
        g[k - 1].m++;
    }
    table_fill(w->table, w->total, g, d, member);
    lbk_free(a, g);
    return 0;
}

/* ---- build ------------------------------------------------------------ */

static void wrr_destroy(lbk_ref *r)
{
    lbk_wrr *w = (lbk_wrr *)r;
    lbk_allocator a = w->alloc;
    lbk_snapshot_release(w->snap);
    lbk_free(&a, w);
}

/* Temporary: (weight << 32 | index) keys sorted, then the weights in
 * index (slot) order for the tree. */
static int weight_keys(const lbk_snapshot *snap, uint32_t n,
                       const lbk_allocator *a, uint64_t **keys_out)
{
    size_t bytes = (size_t)(n ? n : 1) * (sizeof(uint64_t) + sizeof(uint32_t));
    uint64_t *keys = lbk_malloc(a, bytes);
    RETURN_ERROR_IF(keys == NULL, LBK_ENOMEM);
    uint32_t *wslot = (uint32_t *)(void *)(keys + (n ? n : 1));
    uint32_t k = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].weight > 0) {
            keys[k] = ((uint64_t)snap->e[i].weight << 32) | k;
            wslot[k] = snap->e[i].weight;
            k++;
        }
    qsort(keys, n, sizeof(uint64_t), cmp_u64);
    *keys_out = keys;
    return 0;
}

int lbk_wrr_build(const lbk_snapshot *snap, const lbk_wrr_options *opts,
                  const lbk_allocator *alloc, lbk_wrr **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_wrr_options o;
    lbk_wrr_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(o.table_max > LBK_WRR_TABLE_LIMIT, LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);

    uint32_t n = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].weight > 0) {
            n++;
            total += snap->e[i].weight;
        }
    uint64_t *keys;
    FORWARD_IF_ERROR(weight_keys(snap, n, &a, &keys));
    uint32_t d = group_count(keys, n);
    bool tabled = n > 0 && total <= o.table_max &&
                  (uint64_t)d * total <= LBK_WRR_BUILD_BUDGET;

    size_t bytes = sizeof(lbk_wrr) + (size_t)n * sizeof(lbk_backend *);
    if (tabled)
        bytes += (size_t)total * sizeof(uint32_t);
    else if (n > 1)
        bytes += (size_t)(n - 1) * sizeof(wrr_node);
    lbk_wrr *w = lbk_malloc(&a, bytes);
    if (w == NULL) {
        lbk_free(&a, keys);
        return LBK_ENOMEM;
    }
    memset(w, 0, sizeof(*w));
    lbk_ref_init(&w->ref, wrr_destroy);
    w->alloc = a;
    w->bytes = bytes;
    w->n = n;
    w->total = total;
    w->mod_m = total ? UINT64_MAX / total : 0;
    w->exact = o.exact_turns;
    w->b = (lbk_backend **)(void *)(w + 1);
    uint32_t k = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].weight > 0)
            w->b[k++] = snap->e[i].b;
    if (tabled) {
        w->table = (uint32_t *)(void *)(w->b + n);
        int rc = table_build(w, keys, d, &a);
        if (rc < 0) {
            lbk_free(&a, keys);
            lbk_free(&a, w);
            return rc;
        }
    } else if (n > 0) {
        const uint32_t *wslot = (const uint32_t *)(void *)(keys + n);
        w->nodes = (wrr_node *)(void *)(w->b + n);
        uint32_t next_node = 0;
        w->root = tree_build(w, wslot, 0, n, &next_node);
    }
    lbk_free(&a, keys);

    w->seed = o.seed != 0 ? o.seed : lbk_entropy_seed(w);
    if (o.random_phase && total > 1) {
        uint64_t r = lbk_mix64(w->seed ^ UINT64_C(0x5bd1e995));
        w->phase0 = lbk_bounded64(r, total);
        w->stride = 1 + lbk_bounded64(lbk_mix64(r), total - 1);
    }
    atomic_init(&w->next, 0);
    lbk_snapshot_retain(snap);
    w->snap = snap;
    *out = w;
    return 0;
}

void lbk_wrr_free(lbk_wrr *wrr)
{
    if (wrr != NULL)
        lbk_ref_release(&wrr->ref);
}

uint64_t lbk_wrr_cycle(const lbk_wrr *wrr)
{
    return wrr ? wrr->total : 0;
}

bool lbk_wrr_uses_table(const lbk_wrr *wrr)
{
    return wrr != NULL && wrr->table != NULL;
}

size_t lbk_wrr_footprint(const lbk_wrr *wrr)
{
    return wrr ? wrr->bytes : 0;
}

/* ---- pick ------------------------------------------------------------- */

static inline uint32_t schedule_at(const lbk_wrr *w, uint64_t pos)
{
    return w->table ? w->table[pos] : tree_at(w, pos);
}

/* Position in the cycle of pick t: cycle q = t / W is rotated by
 * phase0 + q * stride (q * stride < 2^64 since stride < W). */
static inline uint64_t schedule_pos(const lbk_wrr *w, uint64_t t)
{
    uint64_t r;
    uint64_t q = lbk_divmod64(t, w->total, w->mod_m, &r);
    if (w->stride == 0)
        return r;
    uint64_t ph;
    (void)lbk_divmod64(q * w->stride, w->total, w->mod_m, &ph);
    uint64_t pos = r + w->phase0 + ph; /* < 3W */
    if (pos >= w->total)
        pos -= w->total;
    if (pos >= w->total)
        pos -= w->total;
    return pos;
}

static inline bool substitute_ok(const lbk_backend *b)
{
    return lbk_backend_state_eligible(
               atomic_load_explicit(&b->state, memory_order_relaxed)) &&
           atomic_load_explicit(&b->weight_scale, memory_order_relaxed) > 0;
}

static int wrr_pick_slow(lbk_wrr *w, uint64_t t, uint64_t pos,
                         lbk_backend **out)
{
    for (uint32_t k = 1; k <= LBK_WRR_PROBES; k++) {
        uint64_t p = pos + k;
        while (p >= w->total)
            p -= w->total;
        lbk_backend *b = w->b[schedule_at(w, p)];
        if (substitute_ok(b)) {
            *out = b;
            return 0;
        }
    }
    uint32_t n = w->n;
    uint32_t j = lbk_bounded32(
        (uint32_t)(lbk_mix64(t ^ w->seed ^ LBK_GOLDEN_GAMMA) >> 32), n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t x = j + k < n ? j + k : j + k - n;
        if (substitute_ok(w->b[x])) {
            *out = w->b[x];
            return 0;
        }
    }
    return LBK_ENOBACKEND;
}

int lbk_wrr_pick(lbk_wrr *wrr, lbk_backend **out)
{
    RETURN_ERROR_IF(wrr == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(wrr->n == 0, LBK_ENOBACKEND);
    uint64_t t = lbk_turn_next(&wrr->next, wrr->exact);
    uint64_t pos = schedule_pos(wrr, t);
    lbk_backend *b = wrr->b[schedule_at(wrr, pos)];
    uint32_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (LBK_LIKELY(lbk_backend_state_eligible(st))) {
        uint32_t sc =
            atomic_load_explicit(&b->weight_scale, memory_order_relaxed);
        if (LBK_LIKELY(sc >= LBK_SCALE_ONE) ||
            (uint32_t)(lbk_mix64(t ^ wrr->seed) >> 48) < sc) {
            *out = b;
            return 0;
        }
    }
    return wrr_pick_slow(wrr, t, pos, out);
}
