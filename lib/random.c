/*
 * lib/random.c - weighted random picks by Vose's alias method, in integers.
 *
 * The alias method turns a weighted draw into one uniform column choice and
 * one biased coin: n columns of equal capacity W, each split between its own
 * backend (a share thr) and one alias (the rest).  Vose's construction fills
 * them with two work lists:
 *
 *     scaled s_i = n * w_i        (sum = n * W: n columns of W)
 *     small = { i : s_i < W },  large = { i : s_i >= W }
 *     while both non-empty:
 *         l <- small, g <- large
 *         column l = (l: s_l, g: W - s_l)      l's column is now full
 *         s_g -= W - s_l; g goes back to small or large
 *     whatever is left fills its own column entirely
 *
 * Floating-point versions drift (a column ends at 0.9999999 or a backend
 * of weight 0 gets a sliver).  Here every quantity is an integer below
 * 2^56, so the table is exact and a backend of weight 0 - which is not even
 * listed - can never be drawn.  A pick is one shared-generator draw, one
 * 24-byte column read and the chosen backend's state line.
 */
#include "lbkit/random.h"

#include "internal.h"

typedef struct alias_col {
    lbk_backend *self;
    lbk_backend *alias;
    uint32_t thr; /* u in [0, W) below thr picks self */
    uint32_t pad_;
} alias_col;

struct lbk_random {
    lbk_ref ref;
    char pad0_[LBK_CACHELINE];
    lbk_rng rng; /* shared by the picker's threads, on its own line */
    char pad1_[LBK_CACHELINE];
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    uint32_t n;
    uint32_t total;
    alias_col *col;
    size_t bytes;
};

void lbk_random_options_init(lbk_random_options *opts)
{
    if (opts != NULL)
        opts->seed = 0;
}

static void random_destroy(lbk_ref *r)
{
    lbk_random *rnd = (lbk_random *)r;
    lbk_allocator a = rnd->alloc;
    lbk_snapshot_release(rnd->snap);
    lbk_free(&a, rnd);
}

/* Vose's construction over the backends of weight > 0 (see above). */
static int alias_fill(lbk_random *rnd, const lbk_snapshot *snap,
                      const lbk_allocator *a)
{
    uint32_t n = rnd->n;
    uint64_t total = rnd->total;
    size_t bytes = (size_t)n * (sizeof(uint64_t) + 2 * sizeof(uint32_t));
    uint64_t *s = lbk_malloc(a, bytes);
    RETURN_ERROR_IF(s == NULL, LBK_ENOMEM);
    uint32_t *small = (uint32_t *)(void *)(s + n), *large = small + n;
    uint32_t ns = 0, nl = 0, k = 0;
    for (uint32_t i = 0; i < snap->n; i++) {
        if (snap->e[i].weight == 0)
            continue;
        rnd->col[k] = (alias_col){snap->e[i].b, snap->e[i].b, 0, 0};
        s[k] = (uint64_t)snap->e[i].weight * n;
        if (s[k] < total)
            small[ns++] = k;
        else
            large[nl++] = k;
        k++;
    }
    while (ns > 0 && nl > 0) {
        uint32_t l = small[--ns], g = large[--nl];
        rnd->col[l].thr = (uint32_t)s[l];
        rnd->col[l].alias = rnd->col[g].self;
        s[g] -= total - s[l];
        if (s[g] < total)
            small[ns++] = g;
        else
            large[nl++] = g;
    }
    /* In exact arithmetic small empties with large; both leftovers fill
     * their own column. */
    while (nl > 0)
        rnd->col[large[--nl]].thr = (uint32_t)total;
    while (ns > 0)
        rnd->col[small[--ns]].thr = (uint32_t)total;
    lbk_free(a, s);
    return 0;
}

int lbk_random_build(const lbk_snapshot *snap, const lbk_random_options *opts,
                     const lbk_allocator *alloc, lbk_random **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_random_options o;
    lbk_random_options_init(&o);
    if (opts != NULL)
        o = *opts;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    uint32_t n = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].weight > 0) {
            n++;
            total += snap->e[i].weight;
        }
    /* The set keeps the total within 32 bits; a snapshot is its copy. */
    RETURN_ERROR_IF(total > UINT32_MAX, LBK_EINVAL);
    size_t bytes = sizeof(lbk_random) + (size_t)n * sizeof(alias_col);
    lbk_random *rnd = lbk_malloc(&a, bytes);
    RETURN_ERROR_IF(rnd == NULL, LBK_ENOMEM);
    memset(rnd, 0, sizeof(*rnd));
    lbk_ref_init(&rnd->ref, random_destroy);
    rnd->alloc = a;
    rnd->bytes = bytes;
    rnd->n = n;
    rnd->total = (uint32_t)total;
    rnd->col = (alias_col *)(void *)(rnd + 1);
    if (n > 0) {
        int rc = alias_fill(rnd, snap, &a);
        if (rc < 0) {
            lbk_free(&a, rnd);
            return rc;
        }
    }
    lbk_rng_seed(&rnd->rng, o.seed != 0 ? o.seed : lbk_entropy_seed(rnd));
    lbk_snapshot_retain(snap);
    rnd->snap = snap;
    *out = rnd;
    return 0;
}

void lbk_random_free(lbk_random *rnd)
{
    if (rnd != NULL)
        lbk_ref_release(&rnd->ref);
}

size_t lbk_random_footprint(const lbk_random *rnd)
{
    return rnd ? rnd->bytes : 0;
}

/* Every draw rejected: the first eligible backend with scale > 0 from a
 * random column on. */
static int random_pick_slow(lbk_random *rnd, uint64_t r, lbk_backend **out)
{
    uint32_t n = rnd->n;
    uint32_t j = lbk_bounded32((uint32_t)(lbk_mix64(r) >> 32), n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t x = j + k < n ? j + k : j + k - n;
        lbk_backend *b = rnd->col[x].self;
        if (lbk_backend_state_eligible(
                atomic_load_explicit(&b->state, memory_order_relaxed)) &&
            atomic_load_explicit(&b->weight_scale, memory_order_relaxed) > 0) {
            *out = b;
            return 0;
        }
    }
    return LBK_ENOBACKEND;
}

int lbk_random_pick(lbk_random *rnd, lbk_backend **out)
{
    RETURN_ERROR_IF(rnd == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(rnd->n == 0, LBK_ENOBACKEND);
    uint64_t r = 0;
    for (uint32_t d = 0; d < LBK_RANDOM_DRAWS; d++) {
        r = lbk_rng_next_relaxed(&rnd->rng);
        const alias_col *c =
            &rnd->col[lbk_bounded32((uint32_t)(r >> 32), rnd->n)];
        lbk_backend *b = lbk_bounded32((uint32_t)r, rnd->total) < c->thr
                             ? c->self
                             : c->alias;
        uint32_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (LBK_UNLIKELY(!lbk_backend_state_eligible(st)))
            continue;
        uint32_t sc =
            atomic_load_explicit(&b->weight_scale, memory_order_relaxed);
        if (LBK_LIKELY(sc >= LBK_SCALE_ONE) ||
            (uint32_t)(lbk_mix64(r ^ LBK_GOLDEN_GAMMA) >> 48) < sc) {
            *out = b;
            return 0;
        }
    }
    return random_pick_slow(rnd, r, out);
}
