/*
 * lib/rr.c - round-robin over a snapshot, with a bounded skip of backends
 * that are down.
 *
 * The rotation is a shared 64-bit counter: a pick takes turn t (a relaxed
 * load and store, or a fetch-add with exact_turns - see rr.h for why the
 * default is not the locked add) and maps it onto [0, n) with a
 * multiply-based modulo (no division on the pick path).  The turn-owner's state
 * is one load on its own cache line; when it is up at full scale the pick is
 * done.
 *
 * Health is live state that changes without telling the picker, so a
 * picker cannot keep an exact list of eligible backends.  It keeps hints
 * instead - one bit per backend, "last seen eligible" - and uses them only
 * to find a substitute when the turn-owner is not eligible:
 *
 *     turn t -> i = t mod n --eligible--> done
 *                   |
 *                   `-- not: up to 32 random probes j, taken if hinted
 *                        and verified eligible (rejection sampling)
 *                              |
 *                              `-- none: count the hints (popcount per
 *                                  word), take the k-th for a random k,
 *                                  verify it (clear it if stale, go on to
 *                                  the next hint)
 *                                     |
 *                                     `-- none left: verify all n states,
 *                                         refill the hints, or ENOBACKEND
 *
 * Working on words (64 backends per load) instead of backends is what keeps
 * a pick with many backends down at O(n/64) loads rather than n; the probes
 * make the usual case (a minority down) O(1).  Drawing the substitute
 * uniformly (rejection, then the k-th hint) spreads a down
 * backend's turns evenly over the others instead of piling them onto its
 * next neighbour in slot order.  Hints are updated with relaxed atomic
 * or/and: a race can only leave a hint stale, which costs one extra state
 * load later, never a wrong answer, because every candidate's state is
 * verified before it is returned and the final pass trusts no hint.
 */
#include "lbkit/rr.h"

#include "internal.h"

struct lbk_rr {
    lbk_ref ref;
    char pad0_[LBK_CACHELINE];
    _Atomic uint64_t next; /* the shared turn counter, on its own line */
    char pad1_[LBK_CACHELINE];
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    uint64_t seed;
    uint64_t mod_m; /* UINT64_MAX / n, for the multiply-based modulo */
    uint32_t n;
    uint32_t nwords;
    bool exact;
    lbk_backend **b;        /* n backends of weight > 0, slot order */
    _Atomic uint64_t *hint; /* nwords words: bit i = b[i] seen eligible */
    size_t bytes;
};

void lbk_rr_options_init(lbk_rr_options *opts)
{
    if (opts != NULL) {
        opts->seed = 0;
        opts->exact_turns = false;
    }
}

static void rr_destroy(lbk_ref *r)
{
    lbk_rr *rr = (lbk_rr *)r;
    lbk_allocator a = rr->alloc;
    lbk_snapshot_release(rr->snap);
    lbk_free(&a, rr);
}

int lbk_rr_build(const lbk_snapshot *snap, const lbk_rr_options *opts,
                 const lbk_allocator *alloc, lbk_rr **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_rr_options o;
    lbk_rr_options_init(&o);
    if (opts != NULL)
        o = *opts;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);

    uint32_t n = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        n += snap->e[i].weight > 0;
    uint32_t nwords = (n + 63) / 64;
    /* One block: header, hint words (8-aligned), backend pointers. */
    size_t bytes = sizeof(lbk_rr) + (size_t)nwords * sizeof(uint64_t) +
                   (size_t)n * sizeof(lbk_backend *);
    lbk_rr *rr = lbk_malloc(&a, bytes);
    RETURN_ERROR_IF(rr == NULL, LBK_ENOMEM);
    memset(rr, 0, sizeof(*rr));
    lbk_ref_init(&rr->ref, rr_destroy);
    rr->alloc = a;
    rr->bytes = bytes;
    rr->n = n;
    rr->nwords = nwords;
    rr->hint = (_Atomic uint64_t *)(void *)(rr + 1);
    rr->b = (lbk_backend **)(void *)(rr->hint + nwords);
    rr->seed = o.seed != 0 ? o.seed : lbk_entropy_seed(rr);
    rr->mod_m = n ? UINT64_MAX / n : 0;
    rr->exact = o.exact_turns;
    uint32_t k = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].weight > 0)
            rr->b[k++] = snap->e[i].b;
    /* Start with every hint set: a wrong hint costs one load, once. */
    for (uint32_t w = 0; w < nwords; w++) {
        uint32_t bits = (w + 1 < nwords || n % 64 == 0) ? 64 : n % 64;
        uint64_t v = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        atomic_init(&rr->hint[w], v);
    }
    uint64_t start =
        n ? lbk_bounded32((uint32_t)(lbk_mix64(rr->seed) >> 32), n) : 0;
    atomic_init(&rr->next, start);
    lbk_snapshot_retain(snap);
    rr->snap = snap;
    *out = rr;
    return 0;
}

void lbk_rr_free(lbk_rr *rr)
{
    if (rr != NULL)
        lbk_ref_release(&rr->ref);
}

uint32_t lbk_rr_count(const lbk_rr *rr)
{
    return rr ? rr->n : 0;
}

size_t lbk_rr_footprint(const lbk_rr *rr)
{
    return rr ? rr->bytes : 0;
}

static inline void hint_set(lbk_rr *rr, uint32_t i)
{
    uint64_t bit = UINT64_C(1) << (i & 63);
    _Atomic uint64_t *w = &rr->hint[i >> 6];
    if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

/* Both hint updates read first: the locked and/or is paid only when the
 * bit actually changes. */
static inline void hint_clear(lbk_rr *rr, uint32_t i)
{
    uint64_t bit = UINT64_C(1) << (i & 63);
    _Atomic uint64_t *w = &rr->hint[i >> 6];
    if (atomic_load_explicit(w, memory_order_relaxed) & bit)
        atomic_fetch_and_explicit(w, ~bit, memory_order_relaxed);
}

/* A substitute must be eligible and have a weight scale above 0; no coin
 * is tossed for partial scales, so the fallback stays bounded.  Returns
 * 1 to take it, 0 to skip it (clearing its hint when it is not up). */
static int substitute_ok(lbk_rr *rr, uint32_t i)
{
    lbk_backend *b = rr->b[i];
    if (!lbk_backend_state_eligible(
            atomic_load_explicit(&b->state, memory_order_relaxed))) {
        hint_clear(rr, i);
        return 0;
    }
    return atomic_load_explicit(&b->weight_scale, memory_order_relaxed) > 0;
}

/* Choose uniformly among the hinted backends: count the hints (one pass
 * over the words), take the k-th for random k, and verify it; a stale hint
 * is cleared and the walk goes on to the next hints, round to the start. Stores
 * the index in *found and returns 1, or returns 0 when no hint is good. */
static int pick_hinted(lbk_rr *rr, uint64_t r, uint32_t *found)
{
    uint32_t total = 0;
    for (uint32_t w = 0; w < rr->nwords; w++)
        total += (uint32_t)__builtin_popcountll(
            atomic_load_explicit(&rr->hint[w], memory_order_relaxed));
    if (total == 0)
        return 0;
    uint32_t k = lbk_bounded32((uint32_t)r, total);
    for (uint32_t step = 0, w = 0; step < 2 * rr->nwords; step++) {
        uint64_t bits =
            atomic_load_explicit(&rr->hint[w], memory_order_relaxed);
        uint32_t c = (uint32_t)__builtin_popcountll(bits);
        if (k >= c) { /* the k-th hint lies further on */
            k -= c;
        } else {
            for (; k > 0; k--) /* drop the k hints before ours */
                bits &= bits - 1;
            while (bits != 0) {
                uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
                if (substitute_ok(rr, i)) {
                    *found = i;
                    return 1;
                }
                bits &= bits - 1;
            }
        }
        if (++w == rr->nwords)
            w = 0;
    }
    return 0;
}

/* Random probes of the hint bitmap before counting it (see rr.h). */
#define RR_PROBES 32

/* The turn-owner cannot take turn t: find a substitute (bound in rr.h). */
static int rr_pick_slow(lbk_rr *rr, uint64_t t, lbk_backend **out)
{
    uint32_t n = rr->n;
    uint64_t r = t ^ rr->seed;
    /* Rejection sampling over the hints: uniform among hinted backends,
     * one word read per probe, a state load only for a hinted one. */
    for (int k = 0; k < RR_PROBES; k++) {
        r = lbk_mix64(r + LBK_GOLDEN_GAMMA);
        uint32_t j = lbk_bounded32((uint32_t)(r >> 32), n);
        uint64_t bits =
            atomic_load_explicit(&rr->hint[j >> 6], memory_order_relaxed);
        if ((bits >> (j & 63)) & 1 && substitute_ok(rr, j)) {
            *out = rr->b[j];
            return 0;
        }
    }
    uint32_t found;
    if (pick_hinted(rr, r, &found)) {
        *out = rr->b[found];
        return 0;
    }
    uint32_t j = lbk_bounded32((uint32_t)r, n);
    /* No hint left: trust none, verify every state, refill the hints. */
    uint32_t first = UINT32_MAX;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t x = j + k < n ? j + k : j + k - n;
        lbk_backend *b = rr->b[x];
        if (!lbk_backend_state_eligible(
                atomic_load_explicit(&b->state, memory_order_relaxed)))
            continue;
        hint_set(rr, x);
        if (first == UINT32_MAX &&
            atomic_load_explicit(&b->weight_scale, memory_order_relaxed) > 0)
            first = x;
    }
    RETURN_ERROR_IF(first == UINT32_MAX, LBK_ENOBACKEND);
    *out = rr->b[first];
    return 0;
}

int lbk_rr_pick(lbk_rr *rr, lbk_backend **out)
{
    RETURN_ERROR_IF(rr == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(rr->n == 0, LBK_ENOBACKEND);
    uint64_t t = lbk_turn_next(&rr->next, rr->exact), slot;
    (void)lbk_divmod64(t, rr->n, rr->mod_m, &slot);
    uint32_t i = (uint32_t)slot;
    lbk_backend *b = rr->b[i];
    uint32_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (LBK_LIKELY(lbk_backend_state_eligible(st))) {
        uint32_t sc =
            atomic_load_explicit(&b->weight_scale, memory_order_relaxed);
        /* Slow start: take the turn with probability sc / LBK_SCALE_ONE. */
        if (LBK_LIKELY(sc >= LBK_SCALE_ONE) ||
            (uint32_t)(lbk_mix64(t ^ rr->seed) >> 48) < sc) {
            hint_set(rr, i);
            *out = b;
            return 0;
        }
    } else {
        hint_clear(rr, i);
    }
    return rr_pick_slow(rr, t, out);
}
