/*
 * lib/panic.c - per-tier panic verdicts from a snapshot's live state.
 *
 * Counting is a pass over the snapshot's entries (weight from the snapshot,
 * eligibility one atomic load each).  The verdicts are published as a
 * 128-bit mask in two atomic words, so a picker asks "is tier p in panic?"
 * with one relaxed load and no lock; the per-tier counts sit beside them
 * for metrics.  The mask is computed in full before either word is stored,
 * so a reader sees each word either old or new.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/panic.h"

#define PANIC_TIERS (LBK_PRIORITY_MAX + 1u)

struct lbk_panic {
    _Atomic uint64_t mask[PANIC_TIERS / 64];
    _Atomic uint32_t total[PANIC_TIERS];
    _Atomic uint32_t healthy[PANIC_TIERS];
    double threshold;
    lbk_allocator alloc;
};

static bool threshold_ok(double t)
{
    return t >= 0.0 && t <= 1.0; /* false for NaN */
}

static bool verdict(double threshold, uint32_t total, uint32_t healthy)
{
    return total > 0 && (double)healthy < threshold * (double)total;
}

int lbk_panic_eval(const lbk_snapshot *snap, double threshold,
                   uint32_t priority, lbk_panic_tier *out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !threshold_ok(threshold),
                    LBK_EINVAL);
    RETURN_ERROR_IF(priority > LBK_PRIORITY_MAX, LBK_ERANGE);
    uint32_t total = 0, healthy = 0;
    for (uint32_t i = 0; i < snap->n; i++) {
        const lbk_snap_entry *e = &snap->e[i];
        if (e->priority != priority || e->weight == 0)
            continue;
        total++;
        healthy += lbk_backend_state_eligible(
            atomic_load_explicit(&e->b->state, memory_order_relaxed));
    }
    out->total = total;
    out->healthy = healthy;
    out->panic = verdict(threshold, total, healthy);
    return 0;
}

int lbk_panic_create(double threshold, const lbk_allocator *alloc,
                     lbk_panic **out)
{
    RETURN_ERROR_IF(out == NULL || !lbk_alloc_valid(alloc) ||
                        !threshold_ok(threshold),
                    LBK_EINVAL);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_panic *p = lbk_malloc(&a, sizeof(*p));
    RETURN_ERROR_IF(p == NULL, LBK_ENOMEM);
    for (unsigned w = 0; w < PANIC_TIERS / 64; w++)
        atomic_init(&p->mask[w], 0);
    for (unsigned t = 0; t < PANIC_TIERS; t++) {
        atomic_init(&p->total[t], 0);
        atomic_init(&p->healthy[t], 0);
    }
    p->threshold = threshold;
    p->alloc = a;
    *out = p;
    return 0;
}

void lbk_panic_free(lbk_panic *p)
{
    if (p == NULL)
        return;
    lbk_allocator a = p->alloc;
    lbk_free(&a, p);
}

int lbk_panic_update(lbk_panic *p, const lbk_snapshot *snap)
{
    RETURN_ERROR_IF(p == NULL || snap == NULL, LBK_EINVAL);
    uint32_t total[PANIC_TIERS] = {0}, healthy[PANIC_TIERS] = {0};
    for (uint32_t i = 0; i < snap->n; i++) {
        const lbk_snap_entry *e = &snap->e[i];
        if (e->weight == 0)
            continue;
        total[e->priority]++;
        healthy[e->priority] += lbk_backend_state_eligible(
            atomic_load_explicit(&e->b->state, memory_order_relaxed));
    }
    uint64_t mask[PANIC_TIERS / 64] = {0};
    int n = 0;
    for (unsigned t = 0; t < PANIC_TIERS; t++) {
        atomic_store_explicit(&p->total[t], total[t], memory_order_relaxed);
        atomic_store_explicit(&p->healthy[t], healthy[t], memory_order_relaxed);
        if (verdict(p->threshold, total[t], healthy[t])) {
            mask[t / 64] |= UINT64_C(1) << (t % 64);
            n++;
        }
    }
    for (unsigned w = 0; w < PANIC_TIERS / 64; w++)
        atomic_store_explicit(&p->mask[w], mask[w], memory_order_release);
    return n;
}

bool lbk_panic_active(const lbk_panic *p, uint32_t priority)
{
    if (p == NULL || priority > LBK_PRIORITY_MAX)
        return false;
    uint64_t m =
        atomic_load_explicit(&p->mask[priority / 64], memory_order_acquire);
    return (m >> (priority % 64)) & 1u;
}

int lbk_panic_get_tier(const lbk_panic *p, uint32_t priority,
                       lbk_panic_tier *out)
{
    RETURN_ERROR_IF(p == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(priority > LBK_PRIORITY_MAX, LBK_ERANGE);
    out->total =
        atomic_load_explicit(&p->total[priority], memory_order_relaxed);
    out->healthy =
        atomic_load_explicit(&p->healthy[priority], memory_order_relaxed);
    out->panic = lbk_panic_active(p, priority);
    return 0;
}

bool lbk_panic_admits(const lbk_panic *p, const lbk_snapshot *snap, uint32_t i)
{
    if (p == NULL || snap == NULL || i >= snap->n)
        return false;
    const lbk_snap_entry *e = &snap->e[i];
    if (e->weight == 0)
        return false;
    return lbk_backend_state_eligible(
               atomic_load_explicit(&e->b->state, memory_order_relaxed)) ||
           lbk_panic_active(p, e->priority);
}
