/*
 * lib/p2c.c - power of d choices: least request (Envoy) and peak-EWMA
 * (Finagle, Linkerd).
 *
 * The picker holds no per-backend state of its own: it reads the snapshot's
 * entry array and the backends' live atomics, so build is O(1) and a pick
 * touches the shared generator's line plus d backends' first lines.  Why
 * this way: P2C's value is that it needs no global view, so keeping one
 * (sorted loads, heaps) would only add writes to the pick path.
 *
 * Sampling d distinct indices from N uniformly, with one 64-bit draw per
 * candidate: draw x uniform in [0, N - k) for the k-th candidate, then step
 * x over the already chosen indices in ascending order (each chosen index
 * <= x pushes x up by one), which maps x onto the x-th index not yet
 * chosen.  For d = 2 that is the familiar "j = rand(N - 1); if (j >= i)
 * j++".  Draw k of a pick with bits r is r itself for k = 0 and
 * SplitMix64(r + k * gamma) after, so lbk_p2c_candidates() can reproduce a
 * pick's sample from its 64 bits.  Range reduction is Lemire's
 * multiply-shift on 64 bits (bias below N / 2^64).
 *
 * Comparisons avoid division: least request with bias 1 compares
 * ws_a * (in_flight_b + 1) with ws_b * (in_flight_a + 1) in 128-bit
 * integers (exact); other biases use a table of (k + 1)^-bias for small
 * in-flight counts and pow() beyond; peak-EWMA compares cost_a * ws_b with
 * cost_b * ws_a in doubles, with one exp() per candidate for the decay.
 */
#include <math.h>

#include "lbkit/p2c.h"

#include "internal.h"

#define P2C_ROUNDS 4
#define P2C_POW_TABLE 64
#define P2C_DEFAULT_DECAY_NS 1e10 /* the set's default tau, 10 s */
/* Finagle's PeakEwma: Penalty = Long.MaxValue >> 16 (about 39 hours). */
#define P2C_PENALTY ((double)(INT64_MAX >> 16))
/* Odd constants that separate the rounds' and the scan's random streams
 * from the candidates' (any odd values unrelated to the golden gamma). */
#define P2C_ROUND_GAMMA UINT64_C(0xd1b54a32d192ed03)
#define P2C_SCAN_SALT UINT64_C(0x8cb92ba72f3d8dd7)

__extension__ typedef unsigned __int128 p2c_u128;

#if defined(__GNUC__)
#define P2C_INLINE static inline __attribute__((always_inline))
#else
#define P2C_INLINE static inline
#endif

enum { BIAS_ZERO, BIAS_ONE, BIAS_OTHER };

struct lbk_p2c {
    lbk_ref ref; /* first: published in an lbk_cell */
    lbk_allocator alloc;
    void *raw; /* the allocation, unaligned */
    const lbk_snapshot *snap;
    const lbk_snap_entry *e;
    uint32_t n;
    uint32_t d;
    bool distinct;
    bool two_of_many; /* d = 2, distinct, N >= 2: the fast path applies */
    lbk_p2c_mode mode;
    int bias_kind;
    double bias;
    double inv_tau;                     /* 1 / decay_ns */
    double default_rtt;                 /* ns; 0 = Finagle's rule */
    double pow_neg_bias[P2C_POW_TABLE]; /* (k + 1)^-bias */
    /* Written by every pick: on a line of its own. */
    _Alignas(LBK_CACHELINE) lbk_rng rng;
};

/* ---- sampling --------------------------------------------------------- */

static inline uint64_t p2c_draw(uint64_t bits, uint32_t k)
{
    return k == 0 ? bits : lbk_mix64(bits + k * LBK_GOLDEN_GAMMA);
}

/* The candidates for random bits: writes idx[0..m), returns m. */
static uint32_t p2c_sample(const lbk_p2c *p, uint64_t bits, uint32_t *idx)
{
    uint32_t n = p->n, d = p->d;
    if (!p->distinct) {
        for (uint32_t k = 0; k < d; k++)
            idx[k] = (uint32_t)lbk_bounded64(p2c_draw(bits, k), n);
        return d;
    }
    if (d == 2 && n >= 2) { /* the common case, same result as below */
        uint32_t i = (uint32_t)lbk_bounded64(bits, n);
        uint32_t j = (uint32_t)lbk_bounded64(p2c_draw(bits, 1), n - 1);
        idx[0] = i;
        idx[1] = j + (j >= i);
        return 2;
    }
    uint32_t m = d < n ? d : n, sorted[LBK_P2C_MAX_CHOICES];
    for (uint32_t k = 0; k < m; k++) {
        uint32_t x = (uint32_t)lbk_bounded64(p2c_draw(bits, k), n - k);
        uint32_t pos = 0;
        while (pos < k && sorted[pos] <= x) {
            x++;
            pos++;
        }
        memmove(&sorted[pos + 1], &sorted[pos], (k - pos) * sizeof(*sorted));
        sorted[pos] = x;
        idx[k] = x;
    }
    return m;
}

/* ---- loads ------------------------------------------------------------ */

typedef struct p2c_cand {
    uint32_t i;
    uint32_t nf;   /* in flight */
    uint64_t ws;   /* weight x weight scale */
    double metric; /* peak-EWMA cost, or ws / (nf + 1)^bias */
} p2c_cand;

P2C_INLINE double ewma_cost(const lbk_p2c *p, const lbk_backend *b, uint32_t nf,
                            uint64_t now)
{
    double rtt = p->default_rtt;
    if (atomic_load_explicit(&b->samples, memory_order_acquire) != 0) {
        uint64_t bits =
            atomic_load_explicit(&b->ewma_bits, memory_order_relaxed);
        uint64_t stamp =
            atomic_load_explicit(&b->ewma_stamp, memory_order_relaxed);
        memcpy(&rtt, &bits, sizeof(rtt));
        if (now > stamp)
            rtt *= exp(-(double)(now - stamp) * p->inv_tau);
    }
    if (rtt == 0.0) /* no history: one probe at a time (Finagle) */
        return nf == 0 ? 0.0 : P2C_PENALTY + (double)nf;
    return rtt * ((double)nf + 1.0);
}

/* Read candidate i; false if it may not take traffic. */
P2C_INLINE bool p2c_eval(const lbk_p2c *p, uint32_t i, uint64_t now,
                         p2c_cand *c)
{
    const lbk_backend *b = p->e[i].b;
    uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);
    uint32_t scale =
        atomic_load_explicit(&b->weight_scale, memory_order_relaxed);
    uint32_t w = p->e[i].weight;
    if (!lbk_backend_state_eligible(st) || w == 0 || scale == 0)
        return false;
    c->i = i;
    c->ws = (uint64_t)w * scale;
    c->nf = atomic_load_explicit(&b->in_flight, memory_order_relaxed);
    c->metric = 0.0; /* unused by bias 0 and 1 */
    if (p->mode == LBK_P2C_PEAK_EWMA) {
        c->metric = ewma_cost(p, b, c->nf, now);
    } else if (p->bias_kind == BIAS_OTHER) {
        double f = c->nf < P2C_POW_TABLE ? p->pow_neg_bias[c->nf]
                                         : pow((double)c->nf + 1.0, -p->bias);
        c->metric = (double)c->ws * f;
    }
    return true;
}

/* Whether candidate c beats best (strictly: ties keep the earlier one). */
P2C_INLINE bool p2c_better(const lbk_p2c *p, const p2c_cand *c,
                           const p2c_cand *best)
{
    if (p->mode == LBK_P2C_PEAK_EWMA)
        return c->metric * (double)best->ws < best->metric * (double)c->ws;
    switch (p->bias_kind) {
    case BIAS_ONE:
        return (p2c_u128)c->ws * ((uint64_t)best->nf + 1) >
               (p2c_u128)best->ws * ((uint64_t)c->nf + 1);
    case BIAS_ZERO:
        return c->ws > best->ws;
    default:
        return c->metric > best->metric;
    }
}

/* ---- picking ---------------------------------------------------------- */

/* Nothing eligible among the sampled rounds: look at everyone. */
static int p2c_scan(const lbk_p2c *p, uint64_t now, uint64_t bits,
                    lbk_backend **out)
{
    uint32_t i = (uint32_t)lbk_bounded64(lbk_mix64(bits ^ P2C_SCAN_SALT), p->n);
    p2c_cand best = {0}, c;
    bool found = false;
    for (uint32_t k = 0; k < p->n; k++, i = (i + 1 == p->n) ? 0 : i + 1) {
        if (!p2c_eval(p, i, now, &c))
            continue;
        if (!found || p2c_better(p, &c, &best))
            best = c;
        found = true;
    }
    RETURN_ERROR_IF(!found, LBK_ENOBACKEND);
    *out = p->e[best.i].b;
    return 0;
}

static int p2c_choose_general(const lbk_p2c *p, uint64_t now, uint64_t bits,
                              lbk_backend **out)
{
    RETURN_ERROR_IF(p->n == 0, LBK_ENOBACKEND);
    bool whole_set = p->distinct && p->d >= p->n; /* one round sees all */
    uint32_t idx[LBK_P2C_MAX_CHOICES], seen = 0;
    p2c_cand best = {0}, c;
    for (uint32_t round = 0; round < P2C_ROUNDS && seen < p->d; round++) {
        uint64_t rb =
            round == 0 ? bits : lbk_mix64(bits + round * P2C_ROUND_GAMMA);
        uint32_t m = p2c_sample(p, rb, idx);
        for (uint32_t k = 0; k < m && seen < p->d; k++) {
            if (!p2c_eval(p, idx[k], now, &c))
                continue;
            if (seen == 0 || p2c_better(p, &c, &best))
                best = c;
            seen++;
        }
        if (whole_set)
            break;
    }
    if (seen == 0) {
        RETURN_ERROR_IF(whole_set, LBK_ENOBACKEND);
        return p2c_scan(p, now, bits, out);
    }
    *out = p->e[best.i].b;
    return 0;
}

/* The common case inline: two distinct candidates, both eligible.  Same
 * sample and same answer as the general path, which handles the rest. */
static int p2c_choose(const lbk_p2c *p, uint64_t now, uint64_t bits,
                      lbk_backend **out)
{
    if (LBK_LIKELY(p->two_of_many)) {
        uint32_t i = (uint32_t)lbk_bounded64(bits, p->n);
        uint32_t j = (uint32_t)lbk_bounded64(p2c_draw(bits, 1), p->n - 1);
        j += j >= i;
        p2c_cand a, b;
        if (p2c_eval(p, i, now, &a) && p2c_eval(p, j, now, &b)) {
            *out = p->e[p2c_better(p, &b, &a) ? j : i].b;
            return 0;
        }
    }
    return p2c_choose_general(p, now, bits, out);
}

int lbk_p2c_pick(lbk_p2c *p, uint64_t now_ns, lbk_backend **out)
{
    RETURN_ERROR_IF(p == NULL || out == NULL, LBK_EINVAL);
    return p2c_choose(p, now_ns, lbk_rng_next(&p->rng), out);
}

int lbk_p2c_pick_bits(lbk_p2c *p, uint64_t now_ns, uint64_t random_bits,
                      lbk_backend **out)
{
    RETURN_ERROR_IF(p == NULL || out == NULL, LBK_EINVAL);
    return p2c_choose(p, now_ns, random_bits, out);
}

int lbk_p2c_candidates(lbk_p2c *p, uint64_t random_bits, uint32_t *idx_out,
                       uint32_t *n_out)
{
    RETURN_ERROR_IF(p == NULL || idx_out == NULL || n_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(p->n == 0, LBK_ENOBACKEND);
    *n_out = p2c_sample(p, random_bits, idx_out);
    return 0;
}

const lbk_snapshot *lbk_p2c_snapshot(const lbk_p2c *p)
{
    return p ? p->snap : NULL;
}

/* ---- life --------------------------------------------------------------- */

void lbk_p2c_options_init(lbk_p2c_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->choices = 2;
    opts->bias = 1.0;
    opts->mode = LBK_P2C_LEAST_REQUEST;
    opts->with_replacement = false;
}

static void p2c_destroy(lbk_ref *r)
{
    lbk_p2c *p = (lbk_p2c *)r;
    lbk_allocator a = p->alloc;
    lbk_snapshot_release(p->snap);
    lbk_free(&a, p->raw);
}

int lbk_p2c_build(const lbk_snapshot *snap, const lbk_p2c_options *opts,
                  const lbk_allocator *alloc, lbk_p2c **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_p2c_options defaults;
    if (opts == NULL) {
        lbk_p2c_options_init(&defaults);
        opts = &defaults;
    }
    RETURN_ERROR_IF((unsigned)opts->mode > LBK_P2C_PEAK_EWMA, LBK_EINVAL);
    RETURN_ERROR_IF(opts->choices == 0 || opts->choices > LBK_P2C_MAX_CHOICES,
                    LBK_ERANGE);
    RETURN_ERROR_IF(!(opts->bias >= 0.0 && isfinite(opts->bias)), LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    void *raw = lbk_malloc(&a, sizeof(lbk_p2c) + LBK_CACHELINE);
    RETURN_ERROR_IF(raw == NULL, LBK_ENOMEM);

    lbk_p2c *p = (lbk_p2c *)(((uintptr_t)raw + LBK_CACHELINE - 1) &
                             ~(uintptr_t)(LBK_CACHELINE - 1));
    memset(p, 0, sizeof(*p));
    lbk_ref_init(&p->ref, p2c_destroy);
    p->alloc = a;
    p->raw = raw;
    p->snap = snap;
    p->e = snap->e;
    p->n = snap->n;
    p->d = opts->choices;
    p->distinct = !opts->with_replacement;
    p->two_of_many = p->distinct && p->d == 2 && p->n >= 2;
    p->mode = opts->mode;
    p->bias = opts->bias;
    p->bias_kind = opts->bias == 0.0   ? BIAS_ZERO
                   : opts->bias == 1.0 ? BIAS_ONE
                                       : BIAS_OTHER;
    for (int k = 0; p->bias_kind == BIAS_OTHER && k < P2C_POW_TABLE; k++)
        p->pow_neg_bias[k] = pow((double)k + 1.0, -opts->bias);
    double tau = opts->decay_ns ? (double)opts->decay_ns : P2C_DEFAULT_DECAY_NS;
    p->inv_tau = 1.0 / tau;
    p->default_rtt = (double)opts->default_rtt_ns;
    lbk_rng_seed(&p->rng, opts->seed ? opts->seed : lbk_entropy_seed(p));

    lbk_ref_retain((lbk_ref *)&((lbk_snapshot *)snap)->ref);
    *out = p;
    return 0;
}

void lbk_p2c_free(lbk_p2c *p)
{
    if (p != NULL)
        lbk_ref_release(&p->ref);
}
