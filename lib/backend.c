/*
 * lib/backend.c - the backend set, its snapshots and backends' live state.
 *
 * Ownership, in one picture:
 *
 *     lbk_set (core, ref-counted) <--- held by the owner and every snapshot
 *       slots[]   -> lbk_backend (ref-counted: 1 for the set + 1 per snapshot)
 *       retired[] -> removed backends still listed by some snapshot
 *       index     -> open-addressing table name -> slot (writer only)
 *       published -> lbk_cell holding the current snapshot
 *
 * Backends are freed only by the writer (when it reclaims a retired slot)
 * or by the destruction of the set core; a snapshot dropping its reference
 * only decrements a counter.  That keeps every free on a known thread except
 * the core's own, which runs when nothing else can see the set.
 *
 * Each backend is allocated on its own cache lines with its live atomics
 * first, so begin/end on one backend never invalidates another's line.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define SET_DEFAULT_TAU_NS UINT64_C(10000000000) /* 10 s */
#define INDEX_EMPTY UINT32_MAX

struct lbk_set {
    lbk_ref ref; /* the owner's reference + one per snapshot */
    lbk_allocator alloc;
    lbk_backend **slots; /* slot -> backend, NULL when empty or retired */
    uint32_t nslots;     /* slots in use or reserved (high-water mark) */
    uint32_t slots_cap;
    uint32_t count;
    uint32_t total_weight;
    uint64_t generation;
    lbk_backend **retired; /* removed, maybe still listed by snapshots */
    uint32_t nretired, retired_cap;
    uint32_t *free_slots;     /* reclaimed slot numbers, ready for reuse */
    uint32_t nfree, free_cap; /* free_cap >= nfree + nretired, always */
    uint32_t *index;    /* open addressing over name_hash, INDEX_EMPTY = hole */
    uint32_t index_cap; /* power of two, 0 when empty */
    _Atomic uint64_t ewma_tau_ns;
    lbk_cell published;
};

/* ---- backend memory --------------------------------------------------- */

static lbk_backend *backend_alloc(lbk_set *set, const char *name, size_t len)
{
    size_t size = sizeof(lbk_backend) + len + 1;
    /* Round up to whole cache lines and align, so live atomics of two
     * backends never share a line. */
    size_t padded = (size + LBK_CACHELINE - 1) & ~(size_t)(LBK_CACHELINE - 1);
    char *mem =
        lbk_malloc(&set->alloc, padded + LBK_CACHELINE + sizeof(void *));
    if (mem == NULL)
        return NULL;
    /* Skip to the first cache-line boundary that leaves room for the raw
     * pointer just below it (arithmetic on mem keeps the bounds visible). */
    uintptr_t at = (uintptr_t)(mem + sizeof(void *));
    size_t skip =
        (LBK_CACHELINE - (at & (LBK_CACHELINE - 1))) & (LBK_CACHELINE - 1);
    char *p = mem + sizeof(void *) + skip;
    memcpy(p - sizeof(void *), &mem, sizeof(mem)); /* the raw pointer */
    lbk_backend *b = (lbk_backend *)(void *)p;
    memset(b, 0, sizeof(*b));
    memcpy(b->name, name, len);
    b->name[len] = '\0';
    b->name_len = (uint32_t)len;
    return b;
}

static void backend_free(lbk_set *set, lbk_backend *b)
{
    void *mem;
    memcpy(&mem, (char *)b - sizeof(void *), sizeof(mem));
    lbk_free(&set->alloc, mem);
}

/* ---- the name index --------------------------------------------------- */

static uint32_t index_probe(const lbk_set *set, uint64_t h, const char *name,
                            size_t len, bool *found)
{
    uint32_t mask = set->index_cap - 1;
    uint32_t i = (uint32_t)h & mask;
    for (;;) {
        uint32_t s = set->index[i];
        if (s == INDEX_EMPTY) {
            *found = false;
            return i;
        }
        const lbk_backend *b = set->slots[s];
        if (b->name_hash == h && b->name_len == len &&
            memcmp(b->name, name, len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static bool index_contains(const lbk_set *set, uint64_t h, const char *name,
                           size_t len, uint32_t *slot)
{
    if (set->index_cap == 0)
        return false;
    bool found;
    uint32_t i = index_probe(set, h, name, len, &found);
    if (found)
        *slot = set->index[i];
    return found;
}

static void index_insert(lbk_set *set, uint32_t slot)
{
    const lbk_backend *b = set->slots[slot];
    bool found;
    uint32_t i = index_probe(set, b->name_hash, b->name, b->name_len, &found);
    set->index[i] = slot;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void index_delete(lbk_set *set, const lbk_backend *b)
{
    uint32_t mask = set->index_cap - 1;
    bool found;
    uint32_t i = index_probe(set, b->name_hash, b->name, b->name_len, &found);
    /* defensive: the only caller (lbk_set_remove) passes a listed backend,
     * which is always in the index */
    if (LBK_UNLIKELY(!found))
        return;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t s = set->index[j];
        if (s == INDEX_EMPTY)
            break;
        uint32_t home = (uint32_t)set->slots[s]->name_hash & mask;
        /* Move s back to i unless its home lies cyclically in (i, j]. */
        bool stays =
            (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            set->index[i] = s;
            i = j;
        }
    }
    set->index[i] = INDEX_EMPTY;
}

/* Make room for one more name; allocation happens before any change. */
static int index_reserve(lbk_set *set)
{
    if ((uint64_t)(set->count + 1) * 2 <= set->index_cap)
        return 0;
    uint32_t cap = set->index_cap ? set->index_cap * 2 : 16;
    uint32_t *t = lbk_malloc(&set->alloc, (size_t)cap * sizeof(*t));
    RETURN_ERROR_IF(t == NULL, LBK_ENOMEM);
    for (uint32_t i = 0; i < cap; i++)
        t[i] = INDEX_EMPTY;
    uint32_t *old = set->index;
    set->index = t;
    set->index_cap = cap;
    for (uint32_t s = 0; s < set->nslots; s++)
        if (set->slots[s] != NULL)
            index_insert(set, s);
    lbk_free(&set->alloc, old);
    return 0;
}

/* ---- growth helpers --------------------------------------------------- */

static int grow_array(lbk_set *set, void **arr, uint32_t *cap, uint32_t need,
                      size_t elem)
{
    if (need <= *cap)
        return 0;
    uint32_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *n = lbk_malloc(&set->alloc, (size_t)ncap * elem);
    RETURN_ERROR_IF(n == NULL, LBK_ENOMEM);
    if (*arr != NULL)
        memcpy(n, *arr, (size_t)*cap * elem);
    lbk_free(&set->alloc, *arr);
    *arr = n;
    *cap = ncap;
    return 0;
}

/* Free retired backends that no snapshot lists any more; their slots
 * become reusable.  free_slots has room for every retired entry because it
 * is grown before each retirement (lbk_set_remove). */
static void reclaim_retired(lbk_set *set)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < set->nretired; i++) {
        lbk_backend *b = set->retired[i];
        if (atomic_load_explicit(&b->refs, memory_order_acquire) == 1) {
            set->free_slots[set->nfree++] = b->slot;
            backend_free(set, b);
        } else {
            set->retired[keep++] = b;
        }
    }
    set->nretired = keep;
}

/* ---- the set's life --------------------------------------------------- */

static void set_destroy(lbk_ref *r)
{
    lbk_set *set = (lbk_set *)r;
    lbk_allocator a = set->alloc;
    for (uint32_t s = 0; s < set->nslots; s++)
        if (set->slots[s] != NULL)
            backend_free(set, set->slots[s]);
    for (uint32_t i = 0; i < set->nretired; i++)
        backend_free(set, set->retired[i]);
    lbk_free(&a, set->slots);
    lbk_free(&a, set->retired);
    lbk_free(&a, set->free_slots);
    lbk_free(&a, set->index);
    lbk_free(&a, set);
}

int lbk_set_create(const lbk_allocator *alloc, lbk_set **out)
{
    RETURN_ERROR_IF(out == NULL || !lbk_alloc_valid(alloc), LBK_EINVAL);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_set *set = lbk_malloc(&a, sizeof(*set));
    RETURN_ERROR_IF(set == NULL, LBK_ENOMEM);
    memset(set, 0, sizeof(*set));
    lbk_ref_init(&set->ref, set_destroy);
    set->alloc = a;
    atomic_init(&set->ewma_tau_ns, SET_DEFAULT_TAU_NS);
    lbk_cell_init(&set->published);
    int rc = lbk_set_publish(set);
    if (rc < 0) {
        lbk_ref_release(&set->ref);
        return rc;
    }
    *out = set;
    return 0;
}

void lbk_set_free(lbk_set *set)
{
    if (set == NULL)
        return;
    /* The published snapshot holds a reference on the set: drop it first,
     * or the set would keep itself alive. */
    lbk_cell_clear(&set->published);
    lbk_ref_release(&set->ref);
}

uint64_t lbk_set_ewma_tau_ns(const lbk_set *set)
{
    return atomic_load_explicit(&set->ewma_tau_ns, memory_order_relaxed);
}

const lbk_allocator *lbk_set_allocator(const lbk_set *set)
{
    return &set->alloc;
}

/* ---- control plane ---------------------------------------------------- */

static lbk_backend *live_backend(const lbk_set *set, uint32_t slot)
{
    if (set == NULL || slot >= set->nslots)
        return NULL;
    return set->slots[slot];
}

int lbk_set_add(lbk_set *set, const char *name, uint32_t weight, void *user,
                uint32_t *slot_out)
{
    RETURN_ERROR_IF(set == NULL || name == NULL || slot_out == NULL,
                    LBK_EINVAL);
    size_t len = strnlen(name, LBK_NAME_MAX + 1);
    RETURN_ERROR_IF(len == 0, LBK_EINVAL);
    RETURN_ERROR_IF(len > LBK_NAME_MAX, LBK_ETOOLONG);
    uint64_t h = lbk_hash(name, len, 0);
    uint32_t existing;
    RETURN_ERROR_IF(index_contains(set, h, name, len, &existing), LBK_EEXIST);
    RETURN_ERROR_IF((uint64_t)set->total_weight + weight > UINT32_MAX,
                    LBK_EOVERFLOW);

    reclaim_retired(set);
    bool append = set->nfree == 0;
    RETURN_ERROR_IF(append && set->nslots >= LBK_SET_MAX, LBK_ERANGE);

    /* Every allocation first; nothing visible changes until all succeed. */
    if (append)
        FORWARD_IF_ERROR(grow_array(set, (void **)&set->slots, &set->slots_cap,
                                    set->nslots + 1, sizeof(*set->slots)));
    FORWARD_IF_ERROR(index_reserve(set));
    lbk_backend *b = backend_alloc(set, name, len);
    RETURN_ERROR_IF(b == NULL, LBK_ENOMEM);

    uint32_t slot;
    if (append) {
        slot = set->nslots++;
    } else {
        uint32_t best = 0; /* reuse the lowest reclaimed slot */
        for (uint32_t i = 1; i < set->nfree; i++)
            if (set->free_slots[i] < set->free_slots[best])
                best = i;
        slot = set->free_slots[best];
        set->free_slots[best] = set->free_slots[--set->nfree];
    }
    atomic_init(&b->refs, 1);
    atomic_init(&b->weight_scale, LBK_SCALE_ONE);
    b->set = set;
    b->user = user;
    atomic_init(&b->weight, weight);
    b->slot = slot;
    b->name_hash = h;
    set->slots[slot] = b;
    index_insert(set, slot);
    set->count++;
    set->total_weight += weight;
    set->generation++;
    *slot_out = slot;
    return 0;
}

int lbk_set_remove(lbk_set *set, uint32_t slot)
{
    RETURN_ERROR_IF(set == NULL, LBK_EINVAL);
    lbk_backend *b = live_backend(set, slot);
    RETURN_ERROR_IF(b == NULL, LBK_ENOENT);
    /* Room to retire it (and later to free its slot) before any change. */
    FORWARD_IF_ERROR(grow_array(set, (void **)&set->retired, &set->retired_cap,
                                set->nretired + 1, sizeof(*set->retired)));
    FORWARD_IF_ERROR(grow_array(set, (void **)&set->free_slots, &set->free_cap,
                                set->nfree + set->nretired + 1,
                                sizeof(*set->free_slots)));
    index_delete(set, b);
    set->slots[slot] = NULL;
    set->retired[set->nretired++] = b;
    set->count--;
    set->total_weight -= atomic_load_explicit(&b->weight, memory_order_relaxed);
    set->generation++;
    return 0;
}

int lbk_set_set_weight(lbk_set *set, uint32_t slot, uint32_t weight)
{
    RETURN_ERROR_IF(set == NULL, LBK_EINVAL);
    lbk_backend *b = live_backend(set, slot);
    RETURN_ERROR_IF(b == NULL, LBK_ENOENT);
    uint32_t old = atomic_load_explicit(&b->weight, memory_order_relaxed);
    uint64_t total = (uint64_t)set->total_weight - old + weight;
    RETURN_ERROR_IF(total > UINT32_MAX, LBK_EOVERFLOW);
    atomic_store_explicit(&b->weight, weight, memory_order_relaxed);
    set->total_weight = (uint32_t)total;
    set->generation++;
    return 0;
}

int lbk_set_set_priority(lbk_set *set, uint32_t slot, uint32_t priority)
{
    RETURN_ERROR_IF(set == NULL, LBK_EINVAL);
    lbk_backend *b = live_backend(set, slot);
    RETURN_ERROR_IF(b == NULL, LBK_ENOENT);
    RETURN_ERROR_IF(priority > LBK_PRIORITY_MAX, LBK_ERANGE);
    b->priority = priority;
    set->generation++;
    return 0;
}

int lbk_set_find(const lbk_set *set, const char *name, uint32_t *slot_out)
{
    RETURN_ERROR_IF(set == NULL || name == NULL || slot_out == NULL,
                    LBK_EINVAL);
    size_t len = strnlen(name, LBK_NAME_MAX + 1);
    RETURN_ERROR_IF(len == 0 || len > LBK_NAME_MAX, LBK_ENOENT);
    uint32_t slot;
    RETURN_ERROR_IF(
        !index_contains(set, lbk_hash(name, len, 0), name, len, &slot),
        LBK_ENOENT);
    *slot_out = slot;
    return 0;
}

lbk_backend *lbk_set_backend(const lbk_set *set, uint32_t slot)
{
    return live_backend(set, slot);
}

int lbk_set_iter(const lbk_set *set, uint32_t *cursor, lbk_backend **out)
{
    RETURN_ERROR_IF(set == NULL || cursor == NULL || out == NULL, LBK_EINVAL);
    for (uint32_t s = *cursor; s < set->nslots; s++) {
        if (set->slots[s] != NULL) {
            *out = set->slots[s];
            *cursor = s + 1;
            return 1;
        }
    }
    *cursor = set->nslots;
    return 0;
}

uint32_t lbk_set_count(const lbk_set *set)
{
    return set ? set->count : 0;
}

uint32_t lbk_set_total_weight(const lbk_set *set)
{
    return set ? set->total_weight : 0;
}

uint64_t lbk_set_generation(const lbk_set *set)
{
    return set ? set->generation : 0;
}

int lbk_set_set_ewma_decay(lbk_set *set, uint64_t tau_ns)
{
    RETURN_ERROR_IF(set == NULL || tau_ns == 0, LBK_EINVAL);
    atomic_store_explicit(&set->ewma_tau_ns, tau_ns, memory_order_relaxed);
    return 0;
}

/* ---- snapshots -------------------------------------------------------- */

static void snapshot_destroy(lbk_ref *r)
{
    lbk_snapshot *snap = (lbk_snapshot *)r;
    lbk_set *set = snap->set;
    for (uint32_t i = 0; i < snap->n; i++)
        atomic_fetch_sub_explicit(&snap->e[i].b->refs, 1, memory_order_release);
    lbk_free(&set->alloc, snap);
    lbk_ref_release(&set->ref);
}

int lbk_set_snapshot(lbk_set *set, const lbk_snapshot **out)
{
    RETURN_ERROR_IF(set == NULL || out == NULL, LBK_EINVAL);
    size_t size =
        sizeof(lbk_snapshot) + (size_t)set->count * sizeof(lbk_snap_entry);
    lbk_snapshot *snap = lbk_malloc(&set->alloc, size);
    RETURN_ERROR_IF(snap == NULL, LBK_ENOMEM);
    lbk_ref_init(&snap->ref, snapshot_destroy);
    lbk_ref_retain(&set->ref);
    snap->set = set;
    snap->generation = set->generation;
    snap->total_weight = set->total_weight;
    uint32_t n = 0;
    for (uint32_t s = 0; s < set->nslots; s++) {
        lbk_backend *b = set->slots[s];
        if (b == NULL)
            continue;
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
        snap->e[n].b = b;
        snap->e[n].weight =
            atomic_load_explicit(&b->weight, memory_order_relaxed);
        snap->e[n].priority = b->priority;
        snap->e[n].slot = s;
        snap->e[n].pad_ = 0;
        n++;
    }
    snap->n = n;
    *out = snap;
    return 0;
}

int lbk_set_publish(lbk_set *set)
{
    RETURN_ERROR_IF(set == NULL, LBK_EINVAL);
    const lbk_snapshot *snap;
    FORWARD_IF_ERROR(lbk_set_snapshot(set, &snap));
    lbk_ref *r = (lbk_ref *)&((lbk_snapshot *)snap)->ref;
    int rc = lbk_cell_publish(&set->published, r);
    /* defensive: LBK_ENOTSUP only for an address above 48 bits, which
     * x86-64 and AArch64 Linux never hand out without an explicit hint */
    if (LBK_UNLIKELY(rc < 0)) {
        lbk_ref_release(r);
        return rc;
    }
    return 0;
}

int lbk_set_acquire(lbk_set *set, const lbk_snapshot **out)
{
    RETURN_ERROR_IF(set == NULL || out == NULL, LBK_EINVAL);
    lbk_ref *r = lbk_cell_acquire(&set->published);
    /* defensive: the cell is empty only after lbk_set_free, after which
     * backend.h forbids any call on set */
    RETURN_ERROR_IF(LBK_UNLIKELY(r == NULL), LBK_ESTATE);
    *out = (const lbk_snapshot *)r;
    return 0;
}

int lbk_snapshot_retain(const lbk_snapshot *snap)
{
    RETURN_ERROR_IF(snap == NULL, LBK_EINVAL);
    lbk_ref_retain((lbk_ref *)&((lbk_snapshot *)snap)->ref);
    return 0;
}

void lbk_snapshot_release(const lbk_snapshot *snap)
{
    if (snap != NULL)
        lbk_ref_release((lbk_ref *)&((lbk_snapshot *)snap)->ref);
}

uint32_t lbk_snapshot_count(const lbk_snapshot *snap)
{
    return snap ? snap->n : 0;
}

lbk_backend *lbk_snapshot_backend(const lbk_snapshot *snap, uint32_t i)
{
    return (snap && i < snap->n) ? snap->e[i].b : NULL;
}

uint32_t lbk_snapshot_weight(const lbk_snapshot *snap, uint32_t i)
{
    return (snap && i < snap->n) ? snap->e[i].weight : 0;
}

uint32_t lbk_snapshot_priority(const lbk_snapshot *snap, uint32_t i)
{
    return (snap && i < snap->n) ? snap->e[i].priority : 0;
}

uint32_t lbk_snapshot_total_weight(const lbk_snapshot *snap)
{
    return snap ? snap->total_weight : 0;
}

uint64_t lbk_snapshot_generation(const lbk_snapshot *snap)
{
    return snap ? snap->generation : 0;
}

/* ---- backend identity ------------------------------------------------- */

const char *lbk_backend_name(const lbk_backend *b)
{
    return b ? b->name : NULL;
}

size_t lbk_backend_name_len(const lbk_backend *b)
{
    return b ? b->name_len : 0;
}

uint32_t lbk_backend_slot(const lbk_backend *b)
{
    return b ? b->slot : UINT32_MAX;
}

void *lbk_backend_user(const lbk_backend *b)
{
    return b ? b->user : NULL;
}

uint32_t lbk_backend_weight(const lbk_backend *b)
{
    return b ? atomic_load_explicit(&b->weight, memory_order_relaxed) : 0;
}

/* ---- live state ------------------------------------------------------- */

int lbk_backend_set_health(lbk_backend *b, lbk_health h)
{
    RETURN_ERROR_IF(b == NULL, LBK_EINVAL);
    RETURN_ERROR_IF((unsigned)h > LBK_HEALTH_DOWN, LBK_EINVAL);
    uint32_t cur = atomic_load_explicit(&b->state, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &b->state, &cur, (cur & ~LBK_STATE_HEALTH_MASK) | (uint32_t)h,
        memory_order_release, memory_order_relaxed))
        ;
    return 0;
}

lbk_health lbk_backend_health(const lbk_backend *b)
{
    if (b == NULL)
        return LBK_HEALTH_DOWN;
    uint32_t s = atomic_load_explicit(&b->state, memory_order_acquire);
    return (lbk_health)(s & LBK_STATE_HEALTH_MASK);
}

int lbk_backend_set_ejected(lbk_backend *b, bool ejected)
{
    RETURN_ERROR_IF(b == NULL, LBK_EINVAL);
    if (ejected)
        atomic_fetch_or_explicit(&b->state, LBK_STATE_EJECTED,
                                 memory_order_release);
    else
        atomic_fetch_and_explicit(&b->state, ~LBK_STATE_EJECTED,
                                  memory_order_release);
    return 0;
}

bool lbk_backend_ejected(const lbk_backend *b)
{
    return b != NULL && (atomic_load_explicit(&b->state, memory_order_acquire) &
                         LBK_STATE_EJECTED) != 0;
}

bool lbk_backend_eligible(const lbk_backend *b)
{
    return b != NULL && lbk_backend_state_eligible(atomic_load_explicit(
                            &b->state, memory_order_acquire));
}

int lbk_backend_begin(lbk_backend *b)
{
    RETURN_ERROR_IF(b == NULL, LBK_EINVAL);
    uint32_t cur = atomic_load_explicit(&b->in_flight, memory_order_relaxed);
    do {
        RETURN_ERROR_IF(cur == UINT32_MAX, LBK_EOVERFLOW);
    } while (!atomic_compare_exchange_weak_explicit(
        &b->in_flight, &cur, cur + 1, memory_order_relaxed,
        memory_order_relaxed));
    return 0;
}

int lbk_backend_end(lbk_backend *b)
{
    RETURN_ERROR_IF(b == NULL, LBK_EINVAL);
    uint32_t cur = atomic_load_explicit(&b->in_flight, memory_order_relaxed);
    do {
        RETURN_ERROR_IF(cur == 0, LBK_ESTATE);
    } while (!atomic_compare_exchange_weak_explicit(
        &b->in_flight, &cur, cur - 1, memory_order_relaxed,
        memory_order_relaxed));
    return 0;
}

uint32_t lbk_backend_in_flight(const lbk_backend *b)
{
    return b ? atomic_load_explicit(&b->in_flight, memory_order_relaxed) : 0;
}

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

int lbk_backend_record_latency(lbk_backend *b, uint64_t latency_ns,
                               uint64_t now_ns)
{
    RETURN_ERROR_IF(b == NULL, LBK_EINVAL);
    double tau = (double)atomic_load_explicit(&b->set->ewma_tau_ns,
                                              memory_order_relaxed);
    double sample = (double)latency_ns;
    uint64_t stamp = atomic_load_explicit(&b->ewma_stamp, memory_order_relaxed);
    uint32_t n = atomic_load_explicit(&b->samples, memory_order_relaxed);
    uint64_t old_bits =
        atomic_load_explicit(&b->ewma_bits, memory_order_relaxed);
    uint64_t new_bits;
    do {
        double old = bits_to_double(old_bits), next;
        if (n == 0 || sample >= old) {
            next = sample; /* first sample, or a peak: take it at once */
        } else {
            double dt = now_ns > stamp ? (double)(now_ns - stamp) : 0.0;
            double w = exp(-dt / tau); /* weight kept by the old value */
            next = old * w + sample * (1.0 - w);
        }
        new_bits = double_to_bits(next);
    } while (!atomic_compare_exchange_weak_explicit(
        &b->ewma_bits, &old_bits, new_bits, memory_order_relaxed,
        memory_order_relaxed));
    /* The stamp only moves forward. */
    while (now_ns > stamp && !atomic_compare_exchange_weak_explicit(
                                 &b->ewma_stamp, &stamp, now_ns,
                                 memory_order_relaxed, memory_order_relaxed))
        ;
    while (n != UINT32_MAX && !atomic_compare_exchange_weak_explicit(
                                  &b->samples, &n, n + 1, memory_order_release,
                                  memory_order_relaxed))
        ;
    return 0;
}

double lbk_backend_latency_ewma(const lbk_backend *b)
{
    if (b == NULL ||
        atomic_load_explicit(&b->samples, memory_order_acquire) == 0)
        return 0.0;
    return bits_to_double(
        atomic_load_explicit(&b->ewma_bits, memory_order_relaxed));
}

uint32_t lbk_backend_latency_samples(const lbk_backend *b)
{
    return b ? atomic_load_explicit(&b->samples, memory_order_relaxed) : 0;
}

int lbk_backend_set_weight_scale(lbk_backend *b, double factor)
{
    RETURN_ERROR_IF(b == NULL || !(factor >= 0.0 && factor <= 1.0), LBK_EINVAL);
    uint32_t v = (uint32_t)(factor * LBK_SCALE_ONE + 0.5);
    atomic_store_explicit(&b->weight_scale, v, memory_order_relaxed);
    return 0;
}

double lbk_backend_weight_scale(const lbk_backend *b)
{
    if (b == NULL)
        return 0.0;
    return (double)atomic_load_explicit(&b->weight_scale,
                                        memory_order_relaxed) /
           LBK_SCALE_ONE;
}
