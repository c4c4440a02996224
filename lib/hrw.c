/*
 * lib/hrw.c - weighted rendezvous hashing and its top-k.
 *
 * For a key hash k and backend i (name hash n_i, weight w_i):
 *
 *     x_i = mix64(k ^ n_i)                 SplitMix64's bijective finaliser
 *     u_i = ((x_i >> 12) + 1/2) / 2^52     uniform in (0, 1), exact in a
 *                                          double, never 0 or 1
 *     s_i = w_i / -ln(u_i)                 the winner is argmax s_i
 *
 * -ln(u_i) is exponential with rate 1, so -ln(u_i) / w_i is exponential with
 * rate w_i and the smallest of independent exponentials is the i-th with
 * probability w_i / W (Schindelhauer & Schomaker's weighted distributed hash
 * tables).  Each score depends only on the key and that backend, which is
 * why removing a backend moves only its keys.
 *
 * When every weight is equal and no backend is scaled (slow start), the
 * argmax of s_i is the argmax of x_i >> 12 (s is increasing in u), so that
 * path compares integers and calls no log(); it picks what the weighted path
 * picks except where two scores round to the same double.  Which path runs
 * depends only on the weights and scales, so lookups stay deterministic.
 * Either path scans every backend: the price of exact minimal disruption.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/hrw.h"

struct hrw_entry {
    uint64_t name_hash;
    double weight;
    lbk_backend *b;
};

struct lbk_hrw {
    lbk_ref ref;
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    uint64_t seed;
    uint32_t n;   /* backends of non-zero weight, snapshot order */
    bool uniform; /* all weights equal */
    struct hrw_entry e[];
};

void lbk_hrw_options_init(lbk_hrw_options *opts)
{
    if (opts != NULL)
        opts->seed = 0;
}

static void hrw_destroy(lbk_ref *r)
{
    lbk_hrw *h = (lbk_hrw *)r;
    const lbk_snapshot *snap = h->snap;
    lbk_allocator a = h->alloc;
    lbk_free(&a, h);
    lbk_snapshot_release(snap);
}

int lbk_hrw_build(const lbk_snapshot *snap, const lbk_hrw_options *opts,
                  const lbk_allocator *alloc, lbk_hrw **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    uint32_t n = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        n += snap->e[i].weight != 0;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_hrw *h = lbk_malloc(&a, sizeof(*h) + (size_t)n * sizeof(h->e[0]));
    RETURN_ERROR_IF(h == NULL, LBK_ENOMEM);
    lbk_ref_init(&h->ref, hrw_destroy);
    h->alloc = a;
    h->snap = snap;
    h->seed = opts != NULL ? opts->seed : 0;
    h->n = 0;
    h->uniform = true;
    for (uint32_t i = 0; i < snap->n; i++) {
        uint32_t w = snap->e[i].weight;
        if (w == 0)
            continue;
        const lbk_backend *b = snap->e[i].b;
        struct hrw_entry *e = &h->e[h->n++];
        e->name_hash = lbk_hash(b->name, b->name_len, h->seed);
        e->weight = (double)w;
        e->b = snap->e[i].b;
        if (e->weight != h->e[0].weight)
            h->uniform = false;
    }
    lbk_snapshot_retain(snap);
    *out = h;
    return 0;
}

void lbk_hrw_free(lbk_hrw *h)
{
    if (h != NULL)
        lbk_ref_release(&h->ref);
}

/*
 * The k best eligible entries for hash, best first, in idx[] (score[] is
 * scratch of k doubles).  Returns how many were found.  Starts on the
 * integer path when weights are uniform and restarts on the weighted one at
 * the first scaled backend.
 */
static uint32_t best_k(const lbk_hrw *h, uint64_t hash, uint32_t k,
                       uint32_t *idx, double *score)
{
    bool fast = h->uniform;
    uint32_t found;
restart:
    found = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct hrw_entry *e = &h->e[i];
        uint32_t state =
            atomic_load_explicit(&e->b->state, memory_order_relaxed);
        if (!lbk_backend_state_eligible(state))
            continue;
        uint32_t scale =
            atomic_load_explicit(&e->b->weight_scale, memory_order_relaxed);
        if (scale == 0)
            continue;
        uint64_t x = lbk_mix64(hash ^ e->name_hash) >> 12;
        double s;
        if (fast) {
            if (scale != LBK_SCALE_ONE) {
                fast = false;
                goto restart;
            }
            s = (double)x;
        } else {
            double u = ((double)x + 0.5) * 0x1.0p-52; /* exact, in (0, 1) */
            double w = e->weight * (double)scale;
            /* -ln(u) >= 1 - u, so s <= w / (1 - u): skip the log() when
             * even that bound (with a margin for rounding) cannot beat the
             * k-th best.  Most backends are skipped once a good one is
             * found, without changing the result. */
            if (found == k && w < score[k - 1] * (1.0 - u) * (1.0 - 0x1p-40))
                continue;
            s = w / -log(u);
        }
        uint32_t pos;
        if (found < k)
            pos = found++;
        else if (s > score[k - 1])
            pos = k - 1;
        else
            continue;
        while (pos > 0 && s > score[pos - 1]) {
            score[pos] = score[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
        score[pos] = s;
        idx[pos] = i;
    }
    return found;
}

int lbk_hrw_lookup_hash(const lbk_hrw *h, uint64_t hash, lbk_backend **out)
{
    RETURN_ERROR_IF(h == NULL || out == NULL, LBK_EINVAL);
    uint32_t idx;
    double score;
    RETURN_ERROR_IF(best_k(h, hash, 1, &idx, &score) == 0, LBK_ENOBACKEND);
    *out = h->e[idx].b;
    return 0;
}

int lbk_hrw_lookup(const lbk_hrw *h, const void *key, size_t len,
                   lbk_backend **out)
{
    RETURN_ERROR_IF(h == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    return lbk_hrw_lookup_hash(h, lbk_hash(key, len, h->seed), out);
}

int lbk_hrw_lookup_top_hash(const lbk_hrw *h, uint64_t hash, uint32_t k,
                            lbk_backend **out, uint32_t *count)
{
    RETURN_ERROR_IF(h == NULL || out == NULL || count == NULL || k == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(k > LBK_HRW_TOP_MAX, LBK_ERANGE);
    uint32_t idx[LBK_HRW_TOP_MAX];
    double score[LBK_HRW_TOP_MAX];
    uint32_t found = best_k(h, hash, k, idx, score);
    RETURN_ERROR_IF(found == 0, LBK_ENOBACKEND);
    for (uint32_t i = 0; i < found; i++)
        out[i] = h->e[idx[i]].b;
    *count = found;
    return 0;
}

int lbk_hrw_lookup_top(const lbk_hrw *h, const void *key, size_t len,
                       uint32_t k, lbk_backend **out, uint32_t *count)
{
    RETURN_ERROR_IF(h == NULL || out == NULL || count == NULL || k == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    return lbk_hrw_lookup_top_hash(h, lbk_hash(key, len, h->seed), k, out,
                                   count);
}
