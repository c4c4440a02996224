/*
 * lib/healthcheck.c - probe scheduling on a binary min-heap of due times.
 *
 * The control thread asks "who is due?" far more often than N is large, so
 * due times live in a binary heap ordered by (due, slot); each entry records
 * its heap position, so a result for any backend (in flight or not) is an
 * O(log N) sift.  A backend handed out for probing leaves the heap until its
 * result comes back, which is how "in flight" is represented: no flag to keep
 * in sync with the heap.
 *
 *          heap[0] = earliest due
 *         /                    \
 *    heap[1]                  heap[2]          entry.pos = index in heap[],
 *    ...                                        NOT_QUEUED while in flight
 *
 * Health itself is written to the backend set (one atomic), so pickers see a
 * threshold crossing at their next pick.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/healthcheck.h"

#define NOT_QUEUED UINT32_MAX

typedef struct hc_entry {
    lbk_backend *b;
    uint64_t due;
    uint64_t interval;
    uint32_t succ, fail, stable;
    uint32_t pos; /* index in heap, NOT_QUEUED when in flight */
    bool probed;
} hc_entry;

struct lbk_healthcheck {
    const lbk_snapshot *snap;
    lbk_allocator alloc;
    lbk_healthcheck_options o;
    uint64_t rng;      /* local SplitMix64 state (control thread only) */
    uint64_t last_now; /* latest time seen: time never goes backwards */
    uint32_t nslots;
    uint32_t nheap;
    uint32_t *heap; /* slots */
    hc_entry e[];   /* by slot */
};

void lbk_healthcheck_options_init(lbk_healthcheck_options *opts)
{
    if (opts == NULL)
        return;
    opts->interval_ns = UINT64_C(10000000000);
    opts->min_interval_ns = UINT64_C(1000000000);
    opts->max_interval_ns = UINT64_C(60000000000);
    opts->initial_jitter_ns = opts->interval_ns;
    opts->jitter_fraction = 0.1;
    opts->healthy_threshold = 2;
    opts->unhealthy_threshold = 3;
    opts->stable_probes = 5;
    opts->seed = 0;
}

static int check_options(const lbk_healthcheck_options *o)
{
    RETURN_ERROR_IF(o->interval_ns == 0 || o->min_interval_ns == 0 ||
                        o->min_interval_ns > o->interval_ns ||
                        o->max_interval_ns < o->interval_ns,
                    LBK_EINVAL);
    RETURN_ERROR_IF(o->healthy_threshold == 0 || o->unhealthy_threshold == 0 ||
                        o->stable_probes == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(!(o->jitter_fraction >= 0.0 && o->jitter_fraction <= 1.0),
                    LBK_EINVAL);
    return 0;
}

/* ---- the heap --------------------------------------------------------- */

static bool before(const lbk_healthcheck *hc, uint32_t a, uint32_t b)
{
    const hc_entry *x = &hc->e[a], *y = &hc->e[b];
    return x->due < y->due || (x->due == y->due && a < b);
}

static void heap_set(lbk_healthcheck *hc, uint32_t i, uint32_t slot)
{
    hc->heap[i] = slot;
    hc->e[slot].pos = i;
}

static void sift_up(lbk_healthcheck *hc, uint32_t i)
{
    uint32_t s = hc->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(hc, s, hc->heap[parent]))
            break;
        heap_set(hc, i, hc->heap[parent]);
        i = parent;
    }
    heap_set(hc, i, s);
}

static void sift_down(lbk_healthcheck *hc, uint32_t i)
{
    uint32_t s = hc->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= hc->nheap)
            break;
        if (c + 1 < hc->nheap && before(hc, hc->heap[c + 1], hc->heap[c]))
            c++;
        if (!before(hc, hc->heap[c], s))
            break;
        heap_set(hc, i, hc->heap[c]);
        i = c;
    }
    heap_set(hc, i, s);
}

static void heap_push(lbk_healthcheck *hc, uint32_t slot)
{
    heap_set(hc, hc->nheap++, slot);
    sift_up(hc, hc->nheap - 1);
}

static void heap_remove(lbk_healthcheck *hc, uint32_t slot)
{
    uint32_t i = hc->e[slot].pos;
    hc->e[slot].pos = NOT_QUEUED;
    uint32_t last = hc->heap[--hc->nheap];
    if (i == hc->nheap)
        return;
    heap_set(hc, i, last);
    sift_up(hc, i);
    sift_down(hc, hc->e[last].pos);
}

/* ---- life ------------------------------------------------------------- */

static uint64_t draw_below(lbk_healthcheck *hc, uint64_t n)
{
    return n == 0 ? 0 : lbk_bounded64(lbk_rng_local_next(&hc->rng), n);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX - 1 : a + b;
}

int lbk_healthcheck_create(const lbk_snapshot *snap,
                           const lbk_healthcheck_options *opts,
                           const lbk_allocator *alloc, uint64_t now_ns,
                           lbk_healthcheck **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_healthcheck_options o;
    lbk_healthcheck_options_init(&o);
    if (opts != NULL)
        o = *opts;
    FORWARD_IF_ERROR(check_options(&o));
    uint32_t nslots = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].slot + 1 > nslots)
            nslots = snap->e[i].slot + 1;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t head = sizeof(lbk_healthcheck) + (size_t)nslots * sizeof(hc_entry);
    lbk_healthcheck *hc =
        lbk_malloc(&a, head + (size_t)snap->n * sizeof(uint32_t));
    RETURN_ERROR_IF(hc == NULL, LBK_ENOMEM);
    memset(hc, 0, head);
    hc->heap = (uint32_t *)((char *)hc + head);
    hc->alloc = a;
    hc->o = o;
    hc->rng = o.seed ? o.seed : lbk_entropy_seed(hc);
    hc->last_now = now_ns;
    hc->nslots = nslots;
    for (uint32_t i = 0; i < snap->n; i++) {
        uint32_t slot = snap->e[i].slot;
        hc_entry *e = &hc->e[slot];
        e->b = snap->e[i].b;
        e->interval = o.interval_ns;
        e->due = sat_add(now_ns, draw_below(hc, o.initial_jitter_ns));
        heap_push(hc, slot);
    }
    lbk_snapshot_retain(snap);
    hc->snap = snap;
    *out = hc;
    return 0;
}

void lbk_healthcheck_free(lbk_healthcheck *hc)
{
    if (hc == NULL)
        return;
    const lbk_snapshot *snap = hc->snap;
    lbk_allocator a = hc->alloc;
    lbk_free(&a, hc);
    lbk_snapshot_release(snap);
}

static hc_entry *lookup(const lbk_healthcheck *hc, const lbk_backend *b)
{
    if (b->slot >= hc->nslots)
        return NULL;
    hc_entry *e = (hc_entry *)&hc->e[b->slot];
    return e->b == b ? e : NULL;
}

int lbk_healthcheck_next(lbk_healthcheck *hc, uint64_t now_ns,
                         lbk_backend **out)
{
    RETURN_ERROR_IF(hc == NULL || out == NULL, LBK_EINVAL);
    if (hc->nheap == 0 || hc->e[hc->heap[0]].due > now_ns)
        return 0;
    uint32_t slot = hc->heap[0];
    heap_remove(hc, slot);
    hc->e[slot].due = UINT64_MAX;
    *out = hc->e[slot].b;
    return 1;
}

int lbk_healthcheck_next_due(const lbk_healthcheck *hc, uint64_t *due_ns)
{
    RETURN_ERROR_IF(hc == NULL || due_ns == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(hc->nheap == 0, LBK_ENOENT);
    *due_ns = hc->e[hc->heap[0]].due;
    return 0;
}

/* The adaptive interval rule (see the header). */
static void adapt(const lbk_healthcheck_options *o, hc_entry *e, bool agrees)
{
    if (!agrees) {
        e->interval = o->min_interval_ns;
        e->stable = 0;
        return;
    }
    if (++e->stable >= o->stable_probes) {
        e->stable = 0;
        e->interval = e->interval > o->max_interval_ns / 2 ? o->max_interval_ns
                                                           : e->interval * 2;
    }
}

int lbk_healthcheck_report(lbk_healthcheck *hc, lbk_backend *b, bool success,
                           uint64_t now_ns)
{
    RETURN_ERROR_IF(hc == NULL || b == NULL, LBK_EINVAL);
    hc_entry *e = lookup(hc, b);
    RETURN_ERROR_IF(e == NULL, LBK_ENOENT);
    if (now_ns < hc->last_now)
        now_ns = hc->last_now; /* time going backwards: none passes */
    hc->last_now = now_ns;
    const lbk_healthcheck_options *o = &hc->o;
    if (success) {
        e->succ += e->succ < UINT32_MAX;
        e->fail = 0;
    } else {
        e->fail += e->fail < UINT32_MAX;
        e->succ = 0;
    }
    lbk_health h = lbk_backend_health(b);
    int changed = 0;
    if (h == LBK_HEALTH_DOWN && success &&
        (!e->probed || e->succ >= o->healthy_threshold)) {
        lbk_backend_set_health(b, LBK_HEALTH_UP);
        changed = 1;
    } else if (h == LBK_HEALTH_UP && !success &&
               e->fail >= o->unhealthy_threshold) {
        lbk_backend_set_health(b, LBK_HEALTH_DOWN);
        changed = 1;
    }
    e->probed = true;
    adapt(o, e, success == (h != LBK_HEALTH_DOWN));
    uint64_t jitter_top = (uint64_t)(o->jitter_fraction * (double)e->interval);
    uint64_t due =
        sat_add(sat_add(now_ns, e->interval), draw_below(hc, jitter_top + 1));
    uint32_t slot = (uint32_t)(e - hc->e);
    if (e->pos != NOT_QUEUED)
        heap_remove(hc, slot);
    e->due = due;
    heap_push(hc, slot);
    return changed;
}

int lbk_healthcheck_get_info(const lbk_healthcheck *hc, const lbk_backend *b,
                             lbk_healthcheck_info *out)
{
    RETURN_ERROR_IF(hc == NULL || b == NULL || out == NULL, LBK_EINVAL);
    const hc_entry *e = lookup(hc, b);
    RETURN_ERROR_IF(e == NULL, LBK_ENOENT);
    out->next_due_ns = e->pos == NOT_QUEUED ? UINT64_MAX : e->due;
    out->interval_ns = e->interval;
    out->successes = e->succ;
    out->failures = e->fail;
    out->probed = e->probed;
    out->in_flight = e->pos == NOT_QUEUED;
    return 0;
}
