/*
 * lib/ratelimit.c - token buckets as one atomic word (GCRA), with parents.
 *
 * A token bucket of rate r and burst b is the same machine as the generic
 * cell rate algorithm with emission interval T = 1/r and tolerance b*T: keep
 * the "theoretical arrival time" tat, the moment the bucket is full again.
 *
 *      tokens now = (t + b*T - max(tat, t)) / T
 *
 *      t ---------+------------------ b*T ------------------+
 *                 | tat (drained part) |   tokens left       |
 *
 * Taking n moves tat to max(tat, t) + n*T, allowed while that stays within
 * t + b*T.  The whole state is tat, one word, so a take is one
 * compare-and-swap and a refused take writes nothing.  This is why the
 * bucket is lock-free without a packed (tokens, timestamp) pair: the
 * timestamp is the state.
 *
 * Fixed point: tat and T are in 1/16 ns relative to the bucket's creation,
 * so no division happens on take and T's rounding error is at most 1/32 ns.
 *
 * A child takes from itself, then from each ancestor; if an ancestor refuses,
 * the tokens taken below are returned with an atomic subtract of exactly what
 * was added.  A refund can only lower tat by an amount some successful take
 * raised it by, so no bucket ever admits beyond its own rate and burst.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/ratelimit.h"

#define TB_MAX_DEPTH 16u
#define TB_SUB 16u                     /* fixed-point steps per ns */
#define TB_SPAN_NS (UINT64_C(1) << 59) /* relative time range, ns */
#define TB_LIMIT16 (UINT64_C(1) << 60) /* burst * cost bound, 1/16 ns */

struct lbk_tokenbucket {
    lbk_ref ref;
    _Atomic uint64_t tat; /* 1/16 ns since base_ns */
    uint64_t base_ns;
    uint64_t cost16;  /* one token, 1/16 ns */
    uint64_t burst16; /* burst * cost16 */
    uint32_t burst;
    uint32_t chain_burst; /* smallest burst of this bucket and ancestors */
    uint32_t depth;       /* 1 for a root */
    lbk_tokenbucket *parent;
    lbk_allocator alloc;
};

static void tb_destroy(lbk_ref *r)
{
    lbk_tokenbucket *tb = (lbk_tokenbucket *)r;
    lbk_tokenbucket *parent = tb->parent;
    lbk_allocator a = tb->alloc;
    lbk_free(&a, tb);
    if (parent != NULL)
        lbk_ref_release(&parent->ref);
}

int lbk_tokenbucket_create(double rate_per_sec, uint32_t burst,
                           lbk_tokenbucket *parent, uint64_t now_ns,
                           const lbk_allocator *alloc, lbk_tokenbucket **out)
{
    RETURN_ERROR_IF(out == NULL || !lbk_alloc_valid(alloc), LBK_EINVAL);
    RETURN_ERROR_IF(!(rate_per_sec > 0.0) || isinf(rate_per_sec) || burst == 0,
                    LBK_EINVAL);
    double cost = 1e9 * TB_SUB / rate_per_sec;
    RETURN_ERROR_IF(!(cost >= 1.0), LBK_ERANGE);
    RETURN_ERROR_IF(cost * (double)burst >= (double)TB_LIMIT16, LBK_ERANGE);
    RETURN_ERROR_IF(parent != NULL && parent->depth >= TB_MAX_DEPTH,
                    LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_tokenbucket *tb = lbk_malloc(&a, sizeof(*tb));
    RETURN_ERROR_IF(tb == NULL, LBK_ENOMEM);
    memset(tb, 0, sizeof(*tb));
    lbk_ref_init(&tb->ref, tb_destroy);
    atomic_init(&tb->tat, 0); /* full: tat <= now */
    tb->base_ns = now_ns;
    tb->cost16 = (uint64_t)llround(cost);
    tb->burst16 = tb->cost16 * burst;
    tb->burst = burst;
    tb->chain_burst = (parent != NULL && parent->chain_burst < burst)
                          ? parent->chain_burst
                          : burst;
    tb->depth = parent ? parent->depth + 1 : 1;
    tb->parent = parent;
    tb->alloc = a;
    if (parent != NULL)
        lbk_ref_retain(&parent->ref);
    *out = tb;
    return 0;
}

void lbk_tokenbucket_free(lbk_tokenbucket *tb)
{
    if (tb != NULL)
        lbk_ref_release(&tb->ref);
}

/* now in the bucket's fixed point; earlier than creation counts as 0. */
static uint64_t tb_now16(const lbk_tokenbucket *tb, uint64_t now_ns)
{
    if (now_ns <= tb->base_ns)
        return 0;
    uint64_t d = now_ns - tb->base_ns;
    if (d >= TB_SPAN_NS)
        d = TB_SPAN_NS - 1;
    return d * TB_SUB;
}

static bool tb_take_one(lbk_tokenbucket *tb, uint64_t cost, uint64_t now_ns)
{
    uint64_t now16 = tb_now16(tb, now_ns);
    uint64_t cur = atomic_load_explicit(&tb->tat, memory_order_relaxed);
    for (;;) {
        uint64_t next = (cur > now16 ? cur : now16) + cost;
        if (next - now16 > tb->burst16)
            return false;
        if (atomic_compare_exchange_weak_explicit(&tb->tat, &cur, next,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

int lbk_tokenbucket_take(lbk_tokenbucket *tb, uint32_t n, uint64_t now_ns)
{
    RETURN_ERROR_IF(tb == NULL || n == 0, LBK_EINVAL);
    RETURN_ERROR_IF(n > tb->chain_burst, LBK_ERANGE);
    if (LBK_LIKELY(tb->parent == NULL))
        return tb_take_one(tb, (uint64_t)n * tb->cost16, now_ns) ? 0
                                                                 : LBK_EAGAIN;
    lbk_tokenbucket *b = tb;
    for (; b != NULL; b = b->parent)
        if (!tb_take_one(b, (uint64_t)n * b->cost16, now_ns))
            break;
    if (b == NULL)
        return 0;
    /* b refused: give back what its descendants took, nearest first. */
    for (lbk_tokenbucket *c = tb; c != b; c = c->parent)
        atomic_fetch_sub_explicit(&c->tat, (uint64_t)n * c->cost16,
                                  memory_order_relaxed);
    return LBK_EAGAIN;
}

int lbk_tokenbucket_available(const lbk_tokenbucket *tb, uint64_t now_ns,
                              double *out)
{
    RETURN_ERROR_IF(tb == NULL || out == NULL, LBK_EINVAL);
    uint64_t now16 = tb_now16(tb, now_ns);
    uint64_t cur = atomic_load_explicit(&tb->tat, memory_order_relaxed);
    uint64_t start = cur > now16 ? cur : now16;
    uint64_t room =
        now16 + tb->burst16 > start ? now16 + tb->burst16 - start : 0;
    *out = (double)room / (double)tb->cost16;
    return 0;
}

int lbk_tokenbucket_wait_ns(const lbk_tokenbucket *tb, uint32_t n,
                            uint64_t now_ns, uint64_t *out)
{
    RETURN_ERROR_IF(tb == NULL || out == NULL || n == 0, LBK_EINVAL);
    RETURN_ERROR_IF(n > tb->chain_burst, LBK_ERANGE);
    uint64_t wait16 = 0; /* of the slowest level, in 1/16 ns */
    for (const lbk_tokenbucket *b = tb; b != NULL; b = b->parent) {
        uint64_t now16 = tb_now16(b, now_ns);
        uint64_t cur = atomic_load_explicit(&b->tat, memory_order_relaxed);
        uint64_t next = (cur > now16 ? cur : now16) + (uint64_t)n * b->cost16;
        uint64_t limit = now16 + b->burst16;
        if (next > limit && next - limit > wait16)
            wait16 = next - limit;
    }
    *out = (wait16 + TB_SUB - 1) / TB_SUB;
    return 0;
}
