/*
 * lib/chord.c - a simulated Chord ring: finger tables, successor lists,
 * joins, leaves, failures and the paper's maintenance, in rounds.
 *
 * Why this way.  The point of the module is to measure what the papers
 * measured (path length, timeouts, load), so every node keeps only what a
 * real Chord node keeps - its m fingers, its r successors, its predecessor -
 * and a lookup is routed on those tables alone.  A separate, sorted array
 * of the nodes (`ring`) is the global knowledge no node has: it answers
 * lbk_chord_owner(), builds correct tables in bulk and gives maintenance a
 * deterministic order.  Node state lives in parallel arrays in ONE block
 * (ids, fingers as uint32 node indices, successor lists, predecessors,
 * ring, state bytes), so 10^6 nodes with m = 64 take about 300 MB and a
 * join that must grow the ring has one allocation to fail.
 *
 * Identifier arithmetic.  All interval tests go through dist(a, b), the
 * clockwise distance (b - a) mod 2^m.  With d = dist(a, x):
 *
 *        x in (a, b)  <=>  d - 1 <  dist(a, b) - 1      (unsigned wrap)
 *        x in (a, b]  <=>  d - 1 <= dist(a, b) - 1
 *
 * The "- 1" maps d = 0 (x is a itself) to the largest value and dist = 0
 * (b is a, i.e. the interval is the whole ring) to the largest bound, which
 * is exactly the paper's convention that (a, a] is the whole ring.
 *
 * Bulk build.  Sort (id, index) pairs; then finger i + 1 of the node at
 * sorted position k is the first position q > k whose clockwise distance
 * from it is at least 2^i.  For a fixed i that q never moves backwards as k
 * grows, so each finger level is one forward sweep over the sorted ids, the
 * merge of "targets" with "nodes":
 *
 *     ids:      k   k+1  k+2  ...        q_i(k)      q_i(k+1) ...
 *     node k    |----------- 2^i ---------->|
 *     node k+1      |----------- 2^i ------------------->|
 *
 * O(N log N) for the sort, O(N m) for the fingers, every level reading the
 * sorted ids front to back (a binary search per finger would jump around
 * the array and miss the cache once per probe).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lbkit/chord.h"

struct lbk_chord {
    lbk_allocator alloc;
    const lbk_snapshot *snap; /* NULL unless built by lbk_chord_build */
    uint32_t snap_n;          /* nodes 0 .. snap_n - 1 are its backends */
    unsigned m, r;
    uint64_t mask; /* 2^m - 1 */
    uint64_t seed;
    uint32_t n;        /* node indices given out */
    uint32_t cap;      /* capacity of the per-node arrays */
    uint32_t live;     /* nodes in state LIVE */
    uint32_t ring_len; /* live and failed nodes, sorted by id, in ring[] */
    void *block;
    uint64_t *id;     /* [cap] */
    uint32_t *finger; /* [cap * m]: finger i + 1 of node x at x * m + i */
    uint32_t *succ;   /* [cap * r] */
    uint32_t *pred;   /* [cap] */
    uint32_t *ring;   /* [cap] */
    uint8_t *state;   /* [cap] lbk_chord_state */
    uint8_t *next;    /* [cap] fix_fingers cursor, 0 .. m - 1 */
};

struct idpair {
    uint64_t id;
    uint32_t idx;
};

static size_t node_bytes(unsigned m, unsigned r)
{
    return 8 + 4 * (size_t)m + 4 * (size_t)r + 4 + 4 + 1 + 1;
}

/* Point the arrays of c (or of a new block) into block for cap nodes. */
struct arrays {
    uint64_t *id;
    uint32_t *finger, *succ, *pred, *ring;
    uint8_t *state, *next;
};

static struct arrays layout(void *block, uint32_t cap, unsigned m, unsigned r)
{
    struct arrays a;
    char *p = block;
    a.id = (uint64_t *)(void *)p;
    p += 8 * (size_t)cap;
    a.finger = (uint32_t *)(void *)p;
    p += 4 * (size_t)cap * m;
    a.succ = (uint32_t *)(void *)p;
    p += 4 * (size_t)cap * r;
    a.pred = (uint32_t *)(void *)p;
    p += 4 * (size_t)cap;
    a.ring = (uint32_t *)(void *)p;
    p += 4 * (size_t)cap;
    a.state = (uint8_t *)p;
    p += cap;
    a.next = (uint8_t *)p;
    return a;
}

static void adopt(lbk_chord *c, void *block, uint32_t cap)
{
    struct arrays a = layout(block, cap, c->m, c->r);
    c->block = block;
    c->cap = cap;
    c->id = a.id;
    c->finger = a.finger;
    c->succ = a.succ;
    c->pred = a.pred;
    c->ring = a.ring;
    c->state = a.state;
    c->next = a.next;
}

static inline uint64_t dist(const lbk_chord *c, uint64_t a, uint64_t b)
{
    return (b - a) & c->mask;
}

/* x in (a, b), ids; (a, a) is the whole ring but a. */
static inline bool in_open(const lbk_chord *c, uint64_t a, uint64_t x,
                           uint64_t b)
{
    return dist(c, a, x) - 1 < dist(c, a, b) - 1;
}

/* x in (a, b], ids; (a, a] is the whole ring. */
static inline bool in_half(const lbk_chord *c, uint64_t a, uint64_t x,
                           uint64_t b)
{
    return dist(c, a, x) - 1 <= dist(c, a, b) - 1;
}

static inline bool is_live(const lbk_chord *c, uint32_t x)
{
    return c->state[x] == LBK_CHORD_LIVE;
}

/* ---- options and construction --------------------------------------- */

void lbk_chord_options_init(lbk_chord_options *opts)
{
    if (opts == NULL)
        return;
    opts->bits = 64;
    opts->succ_list = 8;
    opts->seed = 0;
}

static int check_options(const lbk_chord_options *o)
{
    RETURN_ERROR_IF(o->bits < 1 || o->bits > 64, LBK_ERANGE);
    RETURN_ERROR_IF(o->succ_list < 1 || o->succ_list > LBK_CHORD_SUCC_MAX,
                    LBK_ERANGE);
    return 0;
}

static uint64_t mask_of(unsigned bits)
{
    return bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
}

/* The object with no nodes.  Options already validated. */
static int chord_new(const lbk_chord_options *o, const lbk_allocator *alloc,
                     lbk_chord **out)
{
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_chord *c = lbk_calloc(&a, 1, sizeof(*c));
    RETURN_ERROR_IF(c == NULL, LBK_ENOMEM);
    c->alloc = a;
    c->m = o->bits;
    c->r = o->succ_list;
    c->mask = mask_of(o->bits);
    c->seed = o->seed;
    *out = c;
    return 0;
}

static int cmp_pair(const void *pa, const void *pb)
{
    const struct idpair *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/*
 * Correct tables for every node from sorted pairs.  pos[i] is the absolute
 * ring position (k + 1 .. k + n, unwrapped) of node k's finger i + 1; it
 * never moves backwards as k grows, so each level is one merge-like sweep.
 */
static void fill_tables(lbk_chord *c, const struct idpair *p, size_t n)
{
    size_t pos[64] = {0};
    for (size_t k = 0; k < n; k++) {
        uint32_t x = p[k].idx;
        const uint64_t xid = p[k].id;
        c->id[x] = xid;
        c->ring[k] = x;
        c->state[x] = LBK_CHORD_LIVE;
        c->next[x] = 0;
        c->pred[x] = p[k == 0 ? n - 1 : k - 1].idx;
        uint32_t *sl = c->succ + (size_t)x * c->r;
        for (size_t j = 0; j < c->r; j++)
            sl[j] = p[(k + 1 + j) % n].idx;
        uint32_t *fg = c->finger + (size_t)x * c->m;
        size_t q = k + 1;
        for (unsigned i = 0; i < c->m; i++) {
            const uint64_t d = UINT64_C(1) << i;
            if (pos[i] > q)
                q = pos[i];
            /* first position at distance >= d; k + n is x itself */
            while (q - k < n &&
                   ((p[q >= n ? q - n : q].id - xid) & c->mask) < d)
                q++;
            pos[i] = q;
            fg[i] = p[q >= n ? q - n : q].idx;
        }
    }
}

/* Sort pairs, reject duplicates, allocate the block, fill every table.
 * On error nothing was allocated. */
static int build_from_pairs(lbk_chord *c, struct idpair *p, size_t n)
{
    if (n == 0)
        return 0;
    qsort(p, n, sizeof(*p), cmp_pair);
    for (size_t k = 1; k < n; k++)
        RETURN_ERROR_IF(p[k].id == p[k - 1].id, LBK_EEXIST);
    void *block = lbk_malloc(&c->alloc, n * node_bytes(c->m, c->r));
    RETURN_ERROR_IF(block == NULL, LBK_ENOMEM);
    adopt(c, block, (uint32_t)n);
    c->n = c->live = c->ring_len = (uint32_t)n;
    fill_tables(c, p, n);
    return 0;
}

int lbk_chord_create(const lbk_chord_options *opts, const uint64_t *ids,
                     size_t n, const lbk_allocator *alloc, lbk_chord **out)
{
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(out == NULL || (ids == NULL && n > 0), LBK_EINVAL);
    RETURN_ERROR_IF(!lbk_alloc_valid(alloc), LBK_EINVAL);
    FORWARD_IF_ERROR(check_options(&o));
    RETURN_ERROR_IF(n > LBK_CHORD_NODES_MAX, LBK_ERANGE);
    uint64_t mask = mask_of(o.bits);
    for (size_t i = 0; i < n; i++)
        RETURN_ERROR_IF(ids[i] > mask, LBK_ERANGE);
    lbk_chord *c;
    FORWARD_IF_ERROR(chord_new(&o, alloc, &c));
    struct idpair *p = NULL;
    if (n > 0) {
        p = lbk_malloc(&c->alloc, n * sizeof(*p));
        if (p == NULL) {
            lbk_chord_free(c);
            return LBK_ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
            p[i] = (struct idpair){ids[i], (uint32_t)i};
    }
    int rc = build_from_pairs(c, p, n);
    lbk_free(&c->alloc, p);
    if (rc < 0) {
        lbk_chord_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static uint64_t key_id(const lbk_chord *c, const void *key, size_t len)
{
    uint64_t h = lbk_hash(key, len, c->seed);
    return h >> (64 - c->m);
}

int lbk_chord_build(const lbk_snapshot *snap, const lbk_chord_options *opts,
                    const lbk_allocator *alloc, lbk_chord **out)
{
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(snap == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(!lbk_alloc_valid(alloc), LBK_EINVAL);
    FORWARD_IF_ERROR(check_options(&o));
    size_t n = snap->n;
    lbk_chord *c;
    FORWARD_IF_ERROR(chord_new(&o, alloc, &c));
    struct idpair *p = NULL;
    if (n > 0) {
        p = lbk_malloc(&c->alloc, n * sizeof(*p));
        if (p == NULL) {
            lbk_chord_free(c);
            return LBK_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            const lbk_backend *b = snap->e[i].b;
            p[i] =
                (struct idpair){key_id(c, b->name, b->name_len), (uint32_t)i};
        }
    }
    int rc = build_from_pairs(c, p, n);
    lbk_free(&c->alloc, p);
    if (rc < 0) {
        lbk_chord_free(c);
        return rc;
    }
    lbk_snapshot_retain(snap);
    c->snap = snap;
    c->snap_n = (uint32_t)n;
    *out = c;
    return 0;
}

void lbk_chord_free(lbk_chord *c)
{
    if (c == NULL)
        return;
    lbk_snapshot_release(c->snap);
    lbk_allocator a = c->alloc;
    lbk_free(&a, c->block);
    lbk_free(&a, c);
}

int lbk_chord_key_id(const lbk_chord *c, const void *key, size_t len,
                     uint64_t *id_out)
{
    RETURN_ERROR_IF(c == NULL || id_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    *id_out = key_id(c, key, len);
    return 0;
}

/* ---- lookup ----------------------------------------------------------- */

static inline bool known_dead(const lbk_chord *c, uint32_t x,
                              const uint32_t *dead, unsigned ndead)
{
    if (LBK_LIKELY(is_live(c, x)))
        return false;
    for (unsigned t = 0; t < ndead; t++)
        if (dead[t] == x)
            return true;
    return false;
}

/*
 * The lookup proper (path may be NULL).  At node n, with the entries n has
 * found dead during this step set aside:
 *
 *   s = n's first successor-list entry not known dead (none: timed out)
 *   key in (n, s]  ->  s live: s owns the key, n is the predecessor, done;
 *                      s dead: one timeout, try the next entry
 *   otherwise      ->  c = closest preceding entry of key among the fingers
 *                      (scanned m down to 1, first hit: the paper's order)
 *                      and the successor list; c live: forward to c;
 *                      c dead: one timeout, look again without it
 *
 * s itself lies in (n, key) in the second case, so c always exists; every
 * forward strictly shortens the clockwise distance to the key, so the walk
 * ends within N hops, and at most m + r entries can time out per node.
 */
static int walk(const lbk_chord *c, uint32_t from, uint64_t key, uint32_t *path,
                size_t path_cap, lbk_chord_result *res)
{
    const unsigned m = c->m, r = c->r;
    uint32_t dead[64 + LBK_CHORD_SUCC_MAX];
    uint32_t n = from, hops = 0, timeouts = 0;
    if (path_cap > 0)
        path[0] = n;
    for (;;) {
        const uint64_t nid = c->id[n];
        const uint32_t *sl = c->succ + (size_t)n * r;
        const uint32_t *fg = c->finger + (size_t)n * m;
        const uint64_t lim = dist(c, nid, key) - 1;
        unsigned ndead = 0, j = 0;
        for (;;) {
            while (j < r && known_dead(c, sl[j], dead, ndead))
                j++;
            if (j == r)
                return LBK_ETIMEDOUT;
            uint32_t s = sl[j];
            if (in_half(c, nid, key, c->id[s])) {
                if (is_live(c, s)) {
                    res->owner = s;
                    res->hops = hops;
                    res->timeouts = timeouts;
                    res->path_len = hops + 1;
                    return 0;
                }
                timeouts++;
                dead[ndead++] = s;
                j++;
                continue;
            }
            uint32_t best = LBK_CHORD_NONE;
            uint64_t bd = 0;
            for (unsigned i = m; i-- > 0;) {
                uint32_t x = fg[i];
                uint64_t d = dist(c, nid, c->id[x]) - 1;
                if (d < lim && !known_dead(c, x, dead, ndead)) {
                    best = x;
                    bd = d;
                    break;
                }
            }
            for (unsigned t = r; t-- > 0;) {
                uint32_t x = sl[t];
                uint64_t d = dist(c, nid, c->id[x]) - 1;
                if (d < lim && !known_dead(c, x, dead, ndead)) {
                    if (best == LBK_CHORD_NONE || d > bd)
                        best = x;
                    break;
                }
            }
            /* defensive: s lies in (n, key) and is not known dead, so the
             * successor-list loop above always picks something */
            if (LBK_UNLIKELY(best == LBK_CHORD_NONE))
                return LBK_ETIMEDOUT;
            if (is_live(c, best)) {
                n = best;
                hops++;
                if (hops < path_cap)
                    path[hops] = n;
                break;
            }
            timeouts++;
            dead[ndead++] = best;
        }
    }
}

int lbk_chord_lookup(const lbk_chord *c, uint32_t from, uint64_t key_id,
                     uint32_t *path, size_t path_cap, lbk_chord_result *out)
{
    RETURN_ERROR_IF(c == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(path == NULL && path_cap > 0, LBK_EINVAL);
    RETURN_ERROR_IF(from >= c->n, LBK_ENOENT);
    RETURN_ERROR_IF(!is_live(c, from), LBK_ESTATE);
    RETURN_ERROR_IF(key_id > c->mask, LBK_ERANGE);
    lbk_chord_result res;
    FORWARD_IF_ERROR(walk(c, from, key_id, NULL, 0, &res));
    /* The walk is deterministic: record the path only once it succeeded,
     * so a failed lookup writes nothing. */
    if (path_cap > 0)
        (void)walk(c, from, key_id, path, path_cap, &res);
    *out = res;
    return 0;
}

/* Position of the first ring entry with id >= key (ring_len if none). */
static uint32_t ring_lower_bound(const lbk_chord *c, uint64_t key)
{
    uint32_t lo = 0, hi = c->ring_len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->id[c->ring[mid]] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int lbk_chord_owner(const lbk_chord *c, uint64_t key_id, uint32_t *node_out)
{
    RETURN_ERROR_IF(c == NULL || node_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key_id > c->mask, LBK_ERANGE);
    RETURN_ERROR_IF(c->live == 0, LBK_ENOBACKEND);
    uint32_t pos = ring_lower_bound(c, key_id);
    for (uint32_t t = 0; t < c->ring_len; t++) {
        uint32_t at = pos + t;
        uint32_t x = c->ring[at >= c->ring_len ? at - c->ring_len : at];
        if (is_live(c, x)) {
            *node_out = x;
            return 0;
        }
    }
    /* defensive: every live node is on the ring, so the loop returns */
    return LBK_ENOBACKEND;
}

/* ---- membership --------------------------------------------------------- */

/* Make room for one more node; on failure nothing changed. */
static int reserve_one(lbk_chord *c)
{
    if (c->n < c->cap)
        return 0;
    /* defensive: lbk_chord_join, the only caller, checked this already */
    RETURN_ERROR_IF(LBK_UNLIKELY(c->n >= LBK_CHORD_NODES_MAX), LBK_ERANGE);
    uint32_t cap = c->cap < 8 ? 8 : c->cap * 2;
    if (cap > LBK_CHORD_NODES_MAX)
        cap = LBK_CHORD_NODES_MAX;
    void *block = lbk_malloc(&c->alloc, (size_t)cap * node_bytes(c->m, c->r));
    RETURN_ERROR_IF(block == NULL, LBK_ENOMEM);
    struct arrays a = layout(block, cap, c->m, c->r);
    if (c->n > 0) {
        memcpy(a.id, c->id, (size_t)c->n * sizeof(*a.id));
        memcpy(a.finger, c->finger, (size_t)c->n * c->m * sizeof(uint32_t));
        memcpy(a.succ, c->succ, (size_t)c->n * c->r * sizeof(uint32_t));
        memcpy(a.pred, c->pred, (size_t)c->n * sizeof(uint32_t));
        memcpy(a.ring, c->ring, (size_t)c->ring_len * sizeof(uint32_t));
        memcpy(a.state, c->state, c->n);
        memcpy(a.next, c->next, c->n);
    }
    lbk_free(&c->alloc, c->block);
    adopt(c, block, cap);
    return 0;
}

int lbk_chord_join(lbk_chord *c, uint64_t id, uint32_t via, uint32_t *node_out)
{
    RETURN_ERROR_IF(c == NULL || node_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(id > c->mask, LBK_ERANGE);
    if (via == LBK_CHORD_NONE) {
        RETURN_ERROR_IF(c->live > 0, LBK_ESTATE);
    } else {
        RETURN_ERROR_IF(via >= c->n, LBK_ENOENT);
        RETURN_ERROR_IF(!is_live(c, via), LBK_ESTATE);
    }
    uint32_t pos = ring_lower_bound(c, id);
    RETURN_ERROR_IF(pos < c->ring_len && c->id[c->ring[pos]] == id, LBK_EEXIST);
    RETURN_ERROR_IF(c->n >= LBK_CHORD_NODES_MAX, LBK_ERANGE);
    lbk_chord_result res = {0};
    if (via != LBK_CHORD_NONE)
        FORWARD_IF_ERROR(walk(c, via, id, NULL, 0, &res));
    FORWARD_IF_ERROR(reserve_one(c));
    uint32_t x = c->n++;
    uint32_t s = via == LBK_CHORD_NONE ? x : res.owner;
    c->id[x] = id;
    c->state[x] = LBK_CHORD_LIVE;
    c->next[x] = 0;
    c->pred[x] = LBK_CHORD_NONE;
    uint32_t *sl = c->succ + (size_t)x * c->r;
    sl[0] = s;
    for (unsigned j = 1; j < c->r; j++)
        sl[j] = s == x ? x : c->succ[(size_t)s * c->r + j - 1];
    for (unsigned i = 0; i < c->m; i++)
        c->finger[(size_t)x * c->m + i] = s;
    memmove(c->ring + pos + 1, c->ring + pos,
            (size_t)(c->ring_len - pos) * sizeof(uint32_t));
    c->ring[pos] = x;
    c->ring_len++;
    c->live++;
    *node_out = x;
    return 0;
}

static int check_live_node(const lbk_chord *c, uint32_t node)
{
    RETURN_ERROR_IF(c == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(node >= c->n, LBK_ENOENT);
    RETURN_ERROR_IF(!is_live(c, node), LBK_ESTATE);
    return 0;
}

int lbk_chord_leave(lbk_chord *c, uint32_t x)
{
    FORWARD_IF_ERROR(check_live_node(c, x));
    const unsigned r = c->r;
    const uint32_t *xl = c->succ + (size_t)x * r;
    uint32_t p = c->pred[x];
    if (p != LBK_CHORD_NONE && p != x && is_live(c, p)) {
        /* p drops x and takes x's list (the paper's graceful leave). */
        uint32_t tmp[LBK_CHORD_SUCC_MAX];
        unsigned cnt = 0;
        for (unsigned j = 0; j < r; j++)
            if (xl[j] != x)
                tmp[cnt++] = xl[j];
        if (cnt == 0)
            tmp[cnt++] = p;
        uint32_t *pl = c->succ + (size_t)p * r;
        for (unsigned j = 0; j < r; j++)
            pl[j] = tmp[j % cnt];
        c->finger[(size_t)p * c->m] = pl[0];
    }
    for (unsigned j = 0; j < r; j++) {
        uint32_t s = xl[j];
        if (s != x && is_live(c, s)) {
            /* defensive: p == x means x believed it was alone; s then gets
             * no predecessor rather than the departed x (no test history
             * reaches this; see doc/coverage-notes.md) */
            if (c->pred[s] == x)
                c->pred[s] = p == x ? LBK_CHORD_NONE : p;
            break;
        }
    }
    /* Take x off the global ring. */
    uint32_t pos = ring_lower_bound(c, c->id[x]);
    memmove(c->ring + pos, c->ring + pos + 1,
            (size_t)(c->ring_len - pos - 1) * sizeof(uint32_t));
    c->ring_len--;
    c->state[x] = LBK_CHORD_LEFT;
    c->live--;
    return 0;
}

int lbk_chord_fail(lbk_chord *c, uint32_t x)
{
    FORWARD_IF_ERROR(check_live_node(c, x));
    c->state[x] = LBK_CHORD_FAILED;
    c->live--;
    return 0;
}

/* ---- maintenance -------------------------------------------------------- */

static void check_predecessor(lbk_chord *c, uint32_t x)
{
    uint32_t p = c->pred[x];
    if (p != LBK_CHORD_NONE && !is_live(c, p))
        c->pred[x] = LBK_CHORD_NONE;
}

/* s.notify(x): x thinks it might be s's predecessor. */
static void notify(lbk_chord *c, uint32_t s, uint32_t x)
{
    uint32_t p = c->pred[s];
    if (p == LBK_CHORD_NONE || in_open(c, c->id[p], c->id[x], c->id[s]))
        c->pred[s] = x;
}

static void stabilize(lbk_chord *c, uint32_t x)
{
    const unsigned r = c->r;
    uint32_t *xl = c->succ + (size_t)x * r;
    unsigned j = 0;
    while (j < r && !is_live(c, xl[j]))
        j++;
    if (j == r)
        return; /* every successor is dead: x is cut off */
    uint32_t s = xl[j];
    uint32_t p = c->pred[s];
    if (p != LBK_CHORD_NONE && is_live(c, p) &&
        in_open(c, c->id[x], c->id[p], c->id[s]))
        s = p;
    uint32_t tmp[LBK_CHORD_SUCC_MAX];
    tmp[0] = s;
    for (unsigned t = 1; t < r; t++)
        tmp[t] = c->succ[(size_t)s * r + t - 1];
    memcpy(xl, tmp, r * sizeof(uint32_t));
    c->finger[(size_t)x * c->m] = s;
    notify(c, s, x);
}

static void fix_fingers(lbk_chord *c, uint32_t x)
{
    unsigned i = c->next[x];
    c->next[x] = (uint8_t)(i + 1 == c->m ? 0 : i + 1);
    uint64_t target = (c->id[x] + (UINT64_C(1) << i)) & c->mask;
    lbk_chord_result res;
    if (walk(c, x, target, NULL, 0, &res) == 0)
        c->finger[(size_t)x * c->m + i] = res.owner;
}

int lbk_chord_maintain(lbk_chord *c, uint32_t rounds)
{
    RETURN_ERROR_IF(c == NULL, LBK_EINVAL);
    for (uint32_t k = 0; k < rounds; k++) {
        for (uint32_t pos = 0; pos < c->ring_len; pos++) {
            uint32_t x = c->ring[pos];
            if (!is_live(c, x))
                continue;
            check_predecessor(c, x);
            stabilize(c, x);
            fix_fingers(c, x);
        }
    }
    /* The global ring forgets failed nodes. */
    uint32_t w = 0;
    for (uint32_t pos = 0; pos < c->ring_len; pos++)
        if (is_live(c, c->ring[pos]))
            c->ring[w++] = c->ring[pos];
    c->ring_len = w;
    return 0;
}

/* ---- accessors ---------------------------------------------------------- */

uint32_t lbk_chord_node_count(const lbk_chord *c)
{
    return c == NULL ? 0 : c->n;
}

uint32_t lbk_chord_live_count(const lbk_chord *c)
{
    return c == NULL ? 0 : c->live;
}

unsigned lbk_chord_bits(const lbk_chord *c)
{
    return c == NULL ? 0 : c->m;
}

unsigned lbk_chord_succ_list_len(const lbk_chord *c)
{
    return c == NULL ? 0 : c->r;
}

size_t lbk_chord_bytes(const lbk_chord *c)
{
    if (c == NULL)
        return 0;
    return sizeof(*c) + (size_t)c->cap * node_bytes(c->m, c->r);
}

int lbk_chord_node(const lbk_chord *c, uint32_t node, uint64_t *id_out,
                   lbk_chord_state *state_out)
{
    RETURN_ERROR_IF(c == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(node >= c->n, LBK_ENOENT);
    if (id_out != NULL)
        *id_out = c->id[node];
    if (state_out != NULL)
        *state_out = (lbk_chord_state)c->state[node];
    return 0;
}

int lbk_chord_find(const lbk_chord *c, uint64_t id, uint32_t *node_out)
{
    RETURN_ERROR_IF(c == NULL || node_out == NULL, LBK_EINVAL);
    uint32_t pos = ring_lower_bound(c, id);
    RETURN_ERROR_IF(pos == c->ring_len || c->id[c->ring[pos]] != id,
                    LBK_ENOENT);
    *node_out = c->ring[pos];
    return 0;
}

int lbk_chord_finger(const lbk_chord *c, uint32_t node, unsigned i,
                     uint32_t *finger_out)
{
    RETURN_ERROR_IF(c == NULL || finger_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(node >= c->n, LBK_ENOENT);
    RETURN_ERROR_IF(i < 1 || i > c->m, LBK_ERANGE);
    *finger_out = c->finger[(size_t)node * c->m + i - 1];
    return 0;
}

int lbk_chord_successor(const lbk_chord *c, uint32_t node, unsigned j,
                        uint32_t *succ_out)
{
    RETURN_ERROR_IF(c == NULL || succ_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(node >= c->n, LBK_ENOENT);
    RETURN_ERROR_IF(j >= c->r, LBK_ERANGE);
    *succ_out = c->succ[(size_t)node * c->r + j];
    return 0;
}

int lbk_chord_predecessor(const lbk_chord *c, uint32_t node, uint32_t *pred_out)
{
    RETURN_ERROR_IF(c == NULL || pred_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(node >= c->n, LBK_ENOENT);
    *pred_out = c->pred[node];
    return 0;
}

lbk_backend *lbk_chord_backend(const lbk_chord *c, uint32_t node)
{
    if (c == NULL || c->snap == NULL || node >= c->snap_n)
        return NULL;
    return c->snap->e[node].b;
}
