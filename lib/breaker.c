/*
 * lib/breaker.c - a lock-free circuit breaker over a time-bucketed window.
 *
 * Two kinds of words, both changed only by compare-and-swap:
 *
 *   state  [ generation: 32 | failed trials: 10 | good trials: 10 |
 *            admitted trials: 10 | state: 2 ]
 *   bucket [ tag: 24 | successes: 20 | failures: 20 ]      x buckets
 *
 * A bucket's tag is the index of the window_ns/buckets time slice it counts
 * (mod 2^24).  Writing to slice k at position k % buckets either adds to the
 * word (same tag) or replaces a stale one (older tag) with the same
 * compare-and-swap, so the window slides without a sweeping thread.  One
 * more word keeps the newest slice any caller used, so an older clock
 * reading writes to the newest slice instead of an expired one.
 *
 * Transitions to OPEN or CLOSED go through a fourth state, BUSY: the thread
 * whose compare-and-swap wins BUSY writes the deadline (or empties the
 * window) and then publishes the new state with a release store; a reader
 * that acquires the new state therefore sees the deadline written for it.
 * While BUSY, allow refuses and record ignores the outcome; nobody waits.
 * OPEN -> HALF_OPEN needs no deadline, so it is one compare-and-swap done by
 * the first allow after the timeout, which also takes the first trial.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/breaker.h"

#define ST_CLOSED 0u
#define ST_OPEN 1u
#define ST_HALF 2u
#define ST_BUSY 3u
#define ST_TRIAL_MAX 1023u
#define ST_ADM_SHIFT 2
#define ST_OK_SHIFT 12
#define ST_FAIL_SHIFT 22
#define ST_GEN_SHIFT 32

#define BK_TAG_BITS 24u
#define BK_TAG_MASK ((UINT64_C(1) << BK_TAG_BITS) - 1)
#define BK_CNT_MAX ((UINT64_C(1) << 20) - 1)
#define BK_EMPTY UINT64_MAX
#define BK_MAX_BUCKETS 1024u

struct lbk_breaker {
    _Atomic uint64_t state;
    _Atomic uint64_t open_until; /* written only while BUSY */
    _Atomic uint64_t latest;     /* newest slice index any caller used */
    double ratio;
    uint64_t bucket_ns;
    uint64_t open_ns;
    uint32_t min_requests;
    uint32_t trials;
    uint32_t nb;
    lbk_allocator alloc;
    _Atomic uint64_t bucket[];
};

static uint64_t st_kind(uint64_t s)
{
    return s & 3u;
}
static uint64_t st_field(uint64_t s, int shift)
{
    return (s >> shift) & ST_TRIAL_MAX;
}
static uint64_t st_gen(uint64_t s)
{
    return s >> ST_GEN_SHIFT;
}
static uint64_t st_make(uint64_t gen, uint64_t kind, uint64_t adm, uint64_t ok,
                        uint64_t fail)
{
    return (gen << ST_GEN_SHIFT) | (fail << ST_FAIL_SHIFT) |
           (ok << ST_OK_SHIFT) | (adm << ST_ADM_SHIFT) | kind;
}

static uint64_t bk_tag(uint64_t w)
{
    return w >> 40;
}
static uint64_t bk_succ(uint64_t w)
{
    return (w >> 20) & BK_CNT_MAX;
}
static uint64_t bk_fail(uint64_t w)
{
    return w & BK_CNT_MAX;
}
static uint64_t bk_make(uint64_t k, uint64_t succ, uint64_t fail)
{
    return ((k & BK_TAG_MASK) << 40) | (succ << 20) | fail;
}

void lbk_breaker_options_init(lbk_breaker_options *opts)
{
    if (opts == NULL)
        return;
    opts->failure_ratio = 0.5;
    opts->min_requests = 20;
    opts->window_ns = UINT64_C(10000000000);
    opts->buckets = 10;
    opts->open_ns = UINT64_C(5000000000);
    opts->half_open_trials = 1;
}

int lbk_breaker_create(const lbk_breaker_options *opts,
                       const lbk_allocator *alloc, lbk_breaker **out)
{
    RETURN_ERROR_IF(out == NULL || !lbk_alloc_valid(alloc), LBK_EINVAL);
    lbk_breaker_options o;
    lbk_breaker_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(!(o.failure_ratio > 0.0 && o.failure_ratio <= 1.0),
                    LBK_EINVAL);
    RETURN_ERROR_IF(o.min_requests == 0 || o.window_ns == 0 || o.open_ns == 0 ||
                        o.buckets == 0 || o.half_open_trials == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(o.buckets > BK_MAX_BUCKETS || o.window_ns < o.buckets ||
                        o.half_open_trials > ST_TRIAL_MAX,
                    LBK_ERANGE);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_breaker *br =
        lbk_malloc(&a, sizeof(*br) + o.buckets * sizeof(_Atomic uint64_t));
    RETURN_ERROR_IF(br == NULL, LBK_ENOMEM);
    atomic_init(&br->state, st_make(0, ST_CLOSED, 0, 0, 0));
    atomic_init(&br->open_until, 0);
    atomic_init(&br->latest, 0);
    br->ratio = o.failure_ratio;
    br->bucket_ns = o.window_ns / o.buckets;
    br->open_ns = o.open_ns;
    br->min_requests = o.min_requests;
    br->trials = o.half_open_trials;
    br->nb = o.buckets;
    br->alloc = a;
    for (uint32_t i = 0; i < o.buckets; i++)
        atomic_init(&br->bucket[i], BK_EMPTY);
    *out = br;
    return 0;
}

void lbk_breaker_free(lbk_breaker *br)
{
    if (br == NULL)
        return;
    lbk_allocator a = br->alloc;
    lbk_free(&a, br);
}

/* ---- the window ----------------------------------------------------- */

/* The current slice: the caller's, or the newest any caller has used when
 * that is later (time going backwards counts as none passing). */
static uint64_t bk_peek_slice(const lbk_breaker *br, uint64_t now_ns)
{
    uint64_t k = now_ns / br->bucket_ns;
    uint64_t l = atomic_load_explicit(&br->latest, memory_order_relaxed);
    return k > l ? k : l;
}

static uint64_t bk_slice(lbk_breaker *br, uint64_t now_ns)
{
    uint64_t k = now_ns / br->bucket_ns;
    uint64_t l = atomic_load_explicit(&br->latest, memory_order_relaxed);
    while (k > l &&
           !atomic_compare_exchange_weak_explicit(
               &br->latest, &l, k, memory_order_relaxed, memory_order_relaxed))
        ;
    return k > l ? k : l;
}

static bool bk_live(const lbk_breaker *br, uint64_t w, uint64_t k)
{
    return w != BK_EMPTY && ((k - bk_tag(w)) & BK_TAG_MASK) < br->nb;
}

static void window_add(lbk_breaker *br, bool success, uint64_t now_ns)
{
    uint64_t k = bk_slice(br, now_ns);
    _Atomic uint64_t *slot = &br->bucket[k % br->nb];
    uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);
    for (;;) {
        bool same = w != BK_EMPTY && bk_tag(w) == (k & BK_TAG_MASK);
        uint64_t s = same ? bk_succ(w) : 0, f = same ? bk_fail(w) : 0;
        if (success)
            s += s < BK_CNT_MAX;
        else
            f += f < BK_CNT_MAX;
        if (atomic_compare_exchange_weak_explicit(slot, &w, bk_make(k, s, f),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

static void window_sum(const lbk_breaker *br, uint64_t now_ns, uint64_t *total,
                       uint64_t *failures)
{
    uint64_t k = bk_peek_slice(br, now_ns);
    uint64_t t = 0, f = 0;
    for (uint32_t i = 0; i < br->nb; i++) {
        uint64_t w = atomic_load_explicit(&br->bucket[i], memory_order_relaxed);
        if (bk_live(br, w, k)) {
            t += bk_succ(w) + bk_fail(w);
            f += bk_fail(w);
        }
    }
    *total = t;
    *failures = f;
}

/* ---- transitions ---------------------------------------------------- */

/* From state word s to OPEN until now + open_ns; false if s changed. */
static bool to_open(lbk_breaker *br, uint64_t s, uint64_t now_ns)
{
    uint64_t gen = st_gen(s) + 1;
    if (!atomic_compare_exchange_strong_explicit(
            &br->state, &s, st_make(gen, ST_BUSY, 0, 0, 0),
            memory_order_acq_rel, memory_order_relaxed))
        return false;
    uint64_t until =
        now_ns > UINT64_MAX - br->open_ns ? UINT64_MAX : now_ns + br->open_ns;
    atomic_store_explicit(&br->open_until, until, memory_order_relaxed);
    atomic_store_explicit(&br->state, st_make(gen, ST_OPEN, 0, 0, 0),
                          memory_order_release);
    return true;
}

/* From state word s to CLOSED with an empty window; false if s changed. */
static bool to_closed(lbk_breaker *br, uint64_t s)
{
    uint64_t gen = st_gen(s) + 1;
    if (!atomic_compare_exchange_strong_explicit(
            &br->state, &s, st_make(gen, ST_BUSY, 0, 0, 0),
            memory_order_acq_rel, memory_order_relaxed))
        return false;
    for (uint32_t i = 0; i < br->nb; i++)
        atomic_store_explicit(&br->bucket[i], BK_EMPTY, memory_order_relaxed);
    atomic_store_explicit(&br->state, st_make(gen, ST_CLOSED, 0, 0, 0),
                          memory_order_release);
    return true;
}

int lbk_breaker_allow(lbk_breaker *br, uint64_t now_ns)
{
    RETURN_ERROR_IF(br == NULL, LBK_EINVAL);
    uint64_t s = atomic_load_explicit(&br->state, memory_order_acquire);
    for (;;) {
        uint64_t next;
        switch (st_kind(s)) {
        case ST_CLOSED:
            return 0;
        case ST_OPEN:
            if (now_ns <
                atomic_load_explicit(&br->open_until, memory_order_relaxed))
                return LBK_EAGAIN;
            next = st_make(st_gen(s), ST_HALF, 1, 0, 0);
            break;
        case ST_HALF: {
            uint64_t adm = st_field(s, ST_ADM_SHIFT);
            if (adm >= br->trials)
                return LBK_EAGAIN;
            next = s + (UINT64_C(1) << ST_ADM_SHIFT);
            break;
        }
        default:
            return LBK_EAGAIN; /* BUSY: a transition is being published */
        }
        if (atomic_compare_exchange_weak_explicit(&br->state, &s, next,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return 0;
    }
}

static void record_half_open(lbk_breaker *br, uint64_t s, bool success,
                             uint64_t now_ns)
{
    double limit = br->ratio * (double)br->trials;
    for (;;) {
        if (st_kind(s) != ST_HALF)
            return; /* someone else decided */
        uint64_t ok = st_field(s, ST_OK_SHIFT);
        uint64_t fail = st_field(s, ST_FAIL_SHIFT);
        if (success)
            ok += ok < ST_TRIAL_MAX;
        else
            fail += fail < ST_TRIAL_MAX;
        if ((double)fail >= limit) {
            if (to_open(br, s, now_ns))
                return;
        } else if (ok >= br->trials || (double)(br->trials - ok) < limit) {
            if (to_closed(br, s))
                return;
        } else {
            uint64_t next = st_make(st_gen(s), ST_HALF,
                                    st_field(s, ST_ADM_SHIFT), ok, fail);
            if (atomic_compare_exchange_weak_explicit(&br->state, &s, next,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                return;
            continue;
        }
        s = atomic_load_explicit(&br->state, memory_order_acquire);
    }
}

int lbk_breaker_record(lbk_breaker *br, bool success, uint64_t now_ns)
{
    RETURN_ERROR_IF(br == NULL, LBK_EINVAL);
    uint64_t s = atomic_load_explicit(&br->state, memory_order_acquire);
    switch (st_kind(s)) {
    case ST_CLOSED:
        window_add(br, success, now_ns);
        if (!success) {
            uint64_t total, failures;
            window_sum(br, now_ns, &total, &failures);
            if (total >= br->min_requests &&
                (double)failures >= br->ratio * (double)total)
                to_open(br, s, now_ns);
        }
        return 0;
    case ST_HALF:
        record_half_open(br, s, success, now_ns);
        return 0;
    default:
        return 0; /* OPEN or BUSY: late outcomes are ignored */
    }
}

int lbk_breaker_get_state(const lbk_breaker *br, lbk_breaker_state *out)
{
    RETURN_ERROR_IF(br == NULL || out == NULL, LBK_EINVAL);
    uint64_t k =
        st_kind(atomic_load_explicit(&br->state, memory_order_acquire));
    *out = k == ST_CLOSED ? LBK_BREAKER_CLOSED
           : k == ST_HALF ? LBK_BREAKER_HALF_OPEN
                          : LBK_BREAKER_OPEN;
    return 0;
}

int lbk_breaker_window(const lbk_breaker *br, uint64_t now_ns, uint64_t *total,
                       uint64_t *failures)
{
    RETURN_ERROR_IF(br == NULL || (total == NULL && failures == NULL),
                    LBK_EINVAL);
    uint64_t t, f;
    window_sum(br, now_ns, &t, &f);
    if (total != NULL)
        *total = t;
    if (failures != NULL)
        *failures = f;
    return 0;
}
