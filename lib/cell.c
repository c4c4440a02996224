/*
 * lib/cell.c - reference counts and the publication cell.
 *
 * The problem: readers on any thread must get a reference to "the current
 * picker" while one writer replaces it, without locks, and the old picker
 * must be freed exactly when its last reader lets go.  A plain
 * "load pointer, then refs++" races with the free between the two steps.
 *
 * The cell packs the pointer (48 bits) and a count of readers caught between
 * those two steps (16 bits) into one atomic word - a split reference count:
 *
 *     word = [ pending:16 | pointer:48 ]
 *
 *   acquire:  v = fetch_add(word, 1<<48)     pending++, and we hold ptr(v)
 *             ptr->refs++                    our own reference
 *             CAS word: pending--            if ptr is still current;
 *             (else ptr->refs-- : the writer already moved our pending
 *              count into ptr->refs when it swapped)
 *   publish:  cur->refs += BIAS              hold the old object up
 *             old = exchange(word, new)
 *             old->refs += pending(old) - BIAS - 1
 *                                            hand the in-between readers
 *                                            their references, drop the
 *                                            bias and the cell's own; free
 *                                            if that reaches zero
 *
 * Why the bias: a reader that finds the pointer already swapped undoes its
 * increment at once, counting on the writer to add its pending unit - which
 * the writer may not have done yet.  If that reader then released, the
 * count could touch zero early.  The bias (2^40, far above any count) keeps
 * the old object alive across the window, and the writer removes it in the
 * same atomic add that transfers the pending readers.
 *
 * The pending field only ever counts threads inside acquire at that
 * instant, so 16 bits suffice.  User-space pointers on x86-64 and AArch64
 * Linux fit 48 bits; publish refuses (LBK_ENOTSUP) any that do not.
 */
#include "internal.h"

#define CELL_PTR_BITS 48
#define CELL_PTR_MASK ((UINT64_C(1) << CELL_PTR_BITS) - 1)
#define CELL_ONE (UINT64_C(1) << CELL_PTR_BITS)

void lbk_ref_init(lbk_ref *r, void (*destroy)(lbk_ref *self))
{
    atomic_init(&r->refs, 1);
    r->destroy = destroy;
}

void lbk_ref_retain(lbk_ref *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void lbk_ref_release(lbk_ref *r)
{
    if (r == NULL)
        return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        r->destroy(r);
}

static lbk_ref *cell_ptr(uint64_t word)
{
    return (lbk_ref *)(uintptr_t)(word & CELL_PTR_MASK);
}

void lbk_cell_init(lbk_cell *c)
{
    atomic_init(&c->word, 0);
}

/* Readers that lost the race with a swap drop their own increment as soon
 * as they see the new pointer, possibly before the writer has added their
 * pending count; the writer therefore holds CELL_BIAS extra references on
 * the old object across the exchange, so no early drop can reach zero. */
#define CELL_BIAS (INT64_C(1) << 40)

static void ref_add_release(lbk_ref *r, int64_t delta)
{
    if (atomic_fetch_add_explicit(&r->refs, delta, memory_order_acq_rel) +
            delta ==
        0)
        r->destroy(r);
}

static uint64_t cell_swap(lbk_cell *c, uint64_t w)
{
    /* One writer: the current pointer cannot change under us. */
    lbk_ref *cur =
        cell_ptr(atomic_load_explicit(&c->word, memory_order_acquire));
    if (cur != NULL)
        atomic_fetch_add_explicit(&cur->refs, CELL_BIAS, memory_order_relaxed);
    uint64_t old = atomic_exchange_explicit(&c->word, w, memory_order_acq_rel);
    lbk_ref *r = cell_ptr(old);
    if (r != NULL) /* + pending readers - bias - the cell's own */
        ref_add_release(r, (int64_t)(old >> CELL_PTR_BITS) - CELL_BIAS - 1);
    return old;
}

int lbk_cell_publish(lbk_cell *c, lbk_ref *obj)
{
    uint64_t w = (uint64_t)(uintptr_t)obj;
    RETURN_ERROR_IF((w & ~CELL_PTR_MASK) != 0, LBK_ENOTSUP);
    cell_swap(c, w);
    return 0;
}

lbk_ref *lbk_cell_acquire(lbk_cell *c)
{
    uint64_t v =
        atomic_fetch_add_explicit(&c->word, CELL_ONE, memory_order_acquire);
    lbk_ref *r = cell_ptr(v);
    if (r != NULL)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    /* Give back the pending count we added, if it is still in this word. */
    uint64_t cur = v + CELL_ONE;
    for (;;) {
        if (cell_ptr(cur) != r) {
            /* Swapped: the writer moved our pending count into r->refs. */
            if (r != NULL)
                atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed);
            break;
        }
        if (atomic_compare_exchange_weak_explicit(
                &c->word, &cur, cur - CELL_ONE, memory_order_acq_rel,
                memory_order_relaxed))
            break;
    }
    return r;
}

void lbk_cell_clear(lbk_cell *c)
{
    cell_swap(c, 0);
}
