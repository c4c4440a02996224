/*
 * lib/retry.c - back-off with jitter, and a Finagle-style retry budget.
 *
 * Back-off follows the AWS Architecture Blog definitions literally; the only
 * state is the caller's SplitMix64 word, so a request's retry loop needs no
 * object and the sequence is reproducible from a seed.
 *
 * The budget is Finagle's TokenRetryBudget over a LeakyBucket over a
 * WindowedAdder, flattened into 10 slice words of one atomic each:
 *
 *     word = [ tag: 24 bits | value: signed 40 bits ]
 *     tag  = index of the ttl/10 time slice the value belongs to (mod 2^24)
 *
 *     slices  |k-9|k-8| ... |k-1| k |      balance = reserve + sum(values of
 *             +---+---+     +---+---+                the slices tagged k-9..k)
 *
 * A slice whose tag is older than the window is dead and is overwritten
 * (tag k, value 0 + delta) by the first writer of slice k, with the same
 * compare-and-swap that adds.  No sweeping thread, no lock.  A withdrawal
 * checks the balance and subtracts from slice k in one compare-and-swap on
 * slice k, so concurrent withdrawers in the same slice cannot both spend the
 * last retry.  One more word remembers the newest slice any caller has used;
 * a clock reading older than that (time going backwards) is moved forward to
 * it, so no time passes and no slice is written out of order.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/retry.h"

/* ---- back-off ------------------------------------------------------- */

static int backoff_check(uint64_t base_ns, uint64_t cap_ns)
{
    RETURN_ERROR_IF(base_ns == 0 || cap_ns < base_ns, LBK_EINVAL);
    return 0;
}

/* min(cap, base * 2^attempt) without overflow. */
static uint64_t backoff_ceiling(uint64_t base, uint64_t cap, uint32_t attempt)
{
    if (attempt >= 64 || base > (cap >> attempt))
        return cap;
    return base << attempt;
}

/* Uniform in [lo, hi] from 64 random bits. */
static uint64_t uniform_between(uint64_t lo, uint64_t hi, uint64_t r)
{
    uint64_t span = hi - lo;
    if (span == UINT64_MAX)
        return r;
    return lo + lbk_bounded64(r, span + 1);
}

int lbk_backoff_exponential(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt,
                            uint64_t *out_ns)
{
    RETURN_ERROR_IF(out_ns == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(backoff_check(base_ns, cap_ns));
    *out_ns = backoff_ceiling(base_ns, cap_ns, attempt);
    return 0;
}

int lbk_backoff_full_jitter(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt,
                            uint64_t *rng_state, uint64_t *out_ns)
{
    RETURN_ERROR_IF(out_ns == NULL || rng_state == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(backoff_check(base_ns, cap_ns));
    uint64_t top = backoff_ceiling(base_ns, cap_ns, attempt);
    *out_ns = uniform_between(0, top, lbk_rng_local_next(rng_state));
    return 0;
}

int lbk_backoff_decorrelated_jitter(uint64_t base_ns, uint64_t cap_ns,
                                    uint64_t prev_ns, uint64_t *rng_state,
                                    uint64_t *out_ns)
{
    RETURN_ERROR_IF(out_ns == NULL || rng_state == NULL, LBK_EINVAL);
    FORWARD_IF_ERROR(backoff_check(base_ns, cap_ns));
    uint64_t prev = prev_ns < base_ns ? base_ns : prev_ns;
    uint64_t hi = prev > UINT64_MAX / 3 ? UINT64_MAX : prev * 3;
    uint64_t v = uniform_between(base_ns, hi, lbk_rng_local_next(rng_state));
    *out_ns = v < cap_ns ? v : cap_ns;
    return 0;
}

/* ---- the budget ----------------------------------------------------- */

#define RB_SLICES 10u
#define RB_TAG_BITS 24u
#define RB_TAG_MASK ((UINT64_C(1) << RB_TAG_BITS) - 1)
#define RB_VAL_BITS 40u
#define RB_VAL_MASK ((UINT64_C(1) << RB_VAL_BITS) - 1)
#define RB_VAL_MAX ((INT64_C(1) << (RB_VAL_BITS - 1)) - 1)
#define RB_SCALE 1000.0 /* Finagle's ScaleFactor */
#define RB_NS_PER_SEC 1000000000ull
#define RB_EMPTY UINT64_MAX /* a slice never written */

struct lbk_retry_budget {
    _Atomic uint64_t slice[RB_SLICES];
    _Atomic uint64_t latest; /* newest slice index any caller has used */
    uint64_t base_ns;
    uint64_t slice_ns;
    int64_t deposit;  /* per request */
    int64_t withdraw; /* per retry */
    int64_t reserve;  /* always available */
    lbk_allocator alloc;
};

void lbk_retry_budget_options_init(lbk_retry_budget_options *opts)
{
    if (opts == NULL)
        return;
    opts->ttl_ns = 10 * RB_NS_PER_SEC;
    opts->min_retries_per_sec = 10;
    opts->percent_can_retry = 0.2;
}

int lbk_retry_budget_create(const lbk_retry_budget_options *opts,
                            const lbk_allocator *alloc, uint64_t now_ns,
                            lbk_retry_budget **out)
{
    RETURN_ERROR_IF(out == NULL || !lbk_alloc_valid(alloc), LBK_EINVAL);
    lbk_retry_budget_options o;
    lbk_retry_budget_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(!(o.percent_can_retry >= 0.0), LBK_EINVAL);
    RETURN_ERROR_IF(o.percent_can_retry > 1000.0, LBK_ERANGE);
    RETURN_ERROR_IF(o.ttl_ns < RB_NS_PER_SEC || o.ttl_ns > 60 * RB_NS_PER_SEC,
                    LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_retry_budget *rb = lbk_malloc(&a, sizeof(*rb));
    RETURN_ERROR_IF(rb == NULL, LBK_ENOMEM);
    for (unsigned i = 0; i < RB_SLICES; i++)
        atomic_init(&rb->slice[i], RB_EMPTY);
    atomic_init(&rb->latest, 0);
    rb->base_ns = now_ns;
    rb->slice_ns = o.ttl_ns / RB_SLICES;
    double pct = o.percent_can_retry;
    rb->deposit = pct == 0.0 ? 0 : (int64_t)RB_SCALE;
    /* Finagle truncates ScaleFactor / percent to an integer. */
    double w = pct == 0.0 ? 1.0 : floor(RB_SCALE / pct);
    if (w > (double)(RB_VAL_MAX / 4))
        w = (double)(RB_VAL_MAX / 4);
    rb->withdraw = w < 1.0 ? 1 : (int64_t)w;
    double reserve = (double)o.min_retries_per_sec *
                     ((double)o.ttl_ns / (double)RB_NS_PER_SEC) *
                     (double)rb->withdraw;
    rb->reserve = reserve > 0x1p60 ? (INT64_C(1) << 60) : (int64_t)reserve;
    rb->alloc = a;
    *out = rb;
    return 0;
}

void lbk_retry_budget_free(lbk_retry_budget *rb)
{
    if (rb == NULL)
        return;
    lbk_allocator a = rb->alloc;
    lbk_free(&a, rb);
}

/* The current slice: the caller's, or the latest any caller has seen when
 * that is newer (time going backwards counts as none passing). */
static uint64_t rb_peek_slice(const lbk_retry_budget *rb, uint64_t now_ns)
{
    uint64_t k =
        now_ns <= rb->base_ns ? 0 : (now_ns - rb->base_ns) / rb->slice_ns;
    uint64_t l = atomic_load_explicit(&rb->latest, memory_order_relaxed);
    return k > l ? k : l;
}

/* The same, recording k as the latest when it is newer. */
static uint64_t rb_slice_index(lbk_retry_budget *rb, uint64_t now_ns)
{
    uint64_t k =
        now_ns <= rb->base_ns ? 0 : (now_ns - rb->base_ns) / rb->slice_ns;
    uint64_t l = atomic_load_explicit(&rb->latest, memory_order_relaxed);
    while (k > l &&
           !atomic_compare_exchange_weak_explicit(
               &rb->latest, &l, k, memory_order_relaxed, memory_order_relaxed))
        ;
    return k > l ? k : l;
}

static uint64_t w_tag(uint64_t w)
{
    return w >> RB_VAL_BITS;
}

static int64_t w_val(uint64_t w)
{
    /* sign-extend the low 40 bits */
    return (int64_t)(w << RB_TAG_BITS) >> RB_TAG_BITS;
}

static uint64_t w_make(uint64_t k, int64_t v)
{
    if (v > RB_VAL_MAX)
        v = RB_VAL_MAX;
    if (v < -RB_VAL_MAX)
        v = -RB_VAL_MAX;
    uint64_t w =
        ((k & RB_TAG_MASK) << RB_VAL_BITS) | ((uint64_t)v & RB_VAL_MASK);
    /* The one real word equal to the sentinel (value -1 in the last tag)
     * is nudged to value 0: an error of 1/1000 of a deposit. */
    return w == RB_EMPTY ? w & ~RB_VAL_MASK : w;
}

/* The sum of the live slices other than slice k's position; w[] receives
 * the words read. */
static int64_t rb_scan(const lbk_retry_budget *rb, uint64_t k,
                       uint64_t w[RB_SLICES])
{
    int64_t sum = 0;
    unsigned cur = (unsigned)(k % RB_SLICES);
    for (unsigned i = 0; i < RB_SLICES; i++) {
        w[i] = atomic_load_explicit(&rb->slice[i], memory_order_relaxed);
        if (i == cur || w[i] == RB_EMPTY)
            continue;
        if (((k - w_tag(w[i])) & RB_TAG_MASK) < RB_SLICES)
            sum += w_val(w[i]);
    }
    return sum;
}

/* Value of slot word w as seen from slice k (0 when it is stale). */
static int64_t rb_live(uint64_t w, uint64_t k)
{
    return w != RB_EMPTY && w_tag(w) == (k & RB_TAG_MASK) ? w_val(w) : 0;
}

int lbk_retry_budget_deposit(lbk_retry_budget *rb, uint64_t now_ns)
{
    RETURN_ERROR_IF(rb == NULL, LBK_EINVAL);
    if (rb->deposit == 0)
        return 0;
    uint64_t k = rb_slice_index(rb, now_ns);
    _Atomic uint64_t *slot = &rb->slice[k % RB_SLICES];
    uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);
    for (;;) {
        uint64_t nw = w_make(k, rb_live(w, k) + rb->deposit);
        if (atomic_compare_exchange_weak_explicit(
                slot, &w, nw, memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
}

int lbk_retry_budget_withdraw(lbk_retry_budget *rb, uint64_t now_ns)
{
    RETURN_ERROR_IF(rb == NULL, LBK_EINVAL);
    uint64_t k = rb_slice_index(rb, now_ns);
    for (;;) {
        uint64_t w[RB_SLICES];
        int64_t others = rb_scan(rb, k, w);
        unsigned cur = (unsigned)(k % RB_SLICES);
        int64_t mine = rb_live(w[cur], k);
        if (rb->reserve + others + mine < rb->withdraw)
            return LBK_EAGAIN;
        uint64_t nw = w_make(k, mine - rb->withdraw);
        uint64_t expect = w[cur];
        if (atomic_compare_exchange_weak_explicit(&rb->slice[cur], &expect, nw,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

int lbk_retry_budget_balance(const lbk_retry_budget *rb, uint64_t now_ns,
                             uint64_t *out)
{
    RETURN_ERROR_IF(rb == NULL || out == NULL, LBK_EINVAL);
    uint64_t w[RB_SLICES];
    uint64_t k = rb_peek_slice(rb, now_ns);
    int64_t others = rb_scan(rb, k, w);
    int64_t bal = rb->reserve + others + rb_live(w[k % RB_SLICES], k);
    *out = bal > 0 ? (uint64_t)(bal / rb->withdraw) : 0;
    return 0;
}
