/*
 * lib/outlier.c - Envoy-style outlier ejection, reported from any thread.
 *
 * Per backend slot, one cache line of atomics (so reports about different
 * backends never share a line):
 *
 *   consecutive 5xx | consecutive gateway | [requests:32 | successes:32]
 *   ejected_until (0 = in service) | multiplier | times ejected
 *
 * A report is a fetch_add on the interval counter plus, on errors, a
 * fetch_add on the streak counters; the thread whose increment hits the
 * threshold exactly is the one that tries to eject, so a streak fires once.
 * Ejecting first reserves a place under the maximum with a compare-and-swap
 * on the detector's ejected count, then claims the backend by swapping its
 * ejected_until from 0; losing either step undoes the other.  The backend
 * set's ejection flag follows ejected_until; the control thread's tick
 * re-asserts it for every backend, which repairs the rare interleaving where
 * a report's flag write lands after a tick already un-ejected that backend.
 *
 * The success-rate pass reads and zeroes every interval counter with one
 * exchange each, so a report lands wholly in one interval.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/outlier.h"

typedef struct od_host {
    lbk_backend *b; /* NULL for a slot the snapshot does not list */
    _Atomic uint32_t c5xx;
    _Atomic uint32_t cgw;
    _Atomic uint64_t counts; /* requests << 32 | successes */
    _Atomic uint64_t ejected_until;
    _Atomic uint32_t mult;
    _Atomic uint32_t times;
    double rate; /* success-rate pass scratch, control thread only */
    bool in_pass;
} od_host;

struct lbk_outlier {
    const lbk_snapshot *snap;
    lbk_allocator alloc;
    lbk_outlier_options o;
    uint32_t nslots;
    uint32_t nbackends;
    uint32_t mult_cap;
    uint64_t last_pass_ns;
    lbk_rng rng;
    _Atomic uint32_t ejected;
    od_host *h; /* nslots entries, cache-line aligned, inside this block */
};

#define OD_HOST_SIZE                                                           \
    ((sizeof(od_host) + LBK_CACHELINE - 1) & ~(size_t)(LBK_CACHELINE - 1))

static od_host *host_at(const lbk_outlier *od, uint32_t slot)
{
    return (od_host *)((char *)od->h + (size_t)slot * OD_HOST_SIZE);
}

void lbk_outlier_options_init(lbk_outlier_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->interval_ns = UINT64_C(10000000000);
    opts->base_ejection_ns = UINT64_C(30000000000);
    opts->max_ejection_ns = UINT64_C(300000000000);
    opts->max_ejection_fraction = 0.1;
    opts->always_eject_one = false;
    opts->consecutive_5xx = 5;
    opts->consecutive_gateway = 5;
    opts->enforcing_consecutive_5xx = 1.0;
    opts->enforcing_consecutive_gateway = 0.0;
    opts->enforcing_success_rate = 1.0;
    opts->success_rate_minimum_hosts = 5;
    opts->success_rate_request_volume = 100;
    opts->success_rate_stdev_factor = 1.9;
    opts->seed = 0;
}

static bool unit_ok(double p)
{
    return p >= 0.0 && p <= 1.0; /* false for NaN */
}

static int check_options(const lbk_outlier_options *o)
{
    RETURN_ERROR_IF(o->interval_ns == 0 || o->base_ejection_ns == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(!unit_ok(o->max_ejection_fraction) ||
                        !unit_ok(o->enforcing_consecutive_5xx) ||
                        !unit_ok(o->enforcing_consecutive_gateway) ||
                        !unit_ok(o->enforcing_success_rate),
                    LBK_EINVAL);
    RETURN_ERROR_IF(!(o->success_rate_stdev_factor >= 0.0) ||
                        isinf(o->success_rate_stdev_factor),
                    LBK_EINVAL);
    RETURN_ERROR_IF(o->success_rate_minimum_hosts == 0 ||
                        o->success_rate_request_volume == 0,
                    LBK_EINVAL);
    return 0;
}

int lbk_outlier_create(const lbk_snapshot *snap,
                       const lbk_outlier_options *opts,
                       const lbk_allocator *alloc, uint64_t now_ns,
                       lbk_outlier **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    if (opts != NULL)
        o = *opts;
    FORWARD_IF_ERROR(check_options(&o));
    uint32_t nslots = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].slot + 1 > nslots)
            nslots = snap->e[i].slot + 1;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t head = (sizeof(lbk_outlier) + LBK_CACHELINE - 1) &
                  ~(size_t)(LBK_CACHELINE - 1);
    char *mem =
        lbk_malloc(&a, head + LBK_CACHELINE + (size_t)nslots * OD_HOST_SIZE);
    RETURN_ERROR_IF(mem == NULL, LBK_ENOMEM);
    lbk_outlier *od = (lbk_outlier *)mem;
    memset(od, 0, sizeof(*od));
    /* the host array starts at the first cache-line boundary after the
     * header (arithmetic on mem keeps the bounds visible) */
    uintptr_t at = (uintptr_t)(mem + head);
    size_t skip =
        (LBK_CACHELINE - (at & (LBK_CACHELINE - 1))) & (LBK_CACHELINE - 1);
    od->h = (od_host *)(void *)(mem + head + skip);
    memset(od->h, 0, (size_t)nslots * OD_HOST_SIZE);
    od->alloc = a;
    od->o = o;
    od->nslots = nslots;
    od->nbackends = snap->n;
    uint64_t cap = o.max_ejection_ns / o.base_ejection_ns;
    if (o.max_ejection_ns % o.base_ejection_ns)
        cap++;
    od->mult_cap = cap < 1 ? 1 : cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    od->last_pass_ns = now_ns;
    lbk_rng_seed(&od->rng, o.seed ? o.seed : lbk_entropy_seed(od));
    atomic_init(&od->ejected, 0);
    for (uint32_t i = 0; i < snap->n; i++) {
        od_host *h = host_at(od, snap->e[i].slot);
        h->b = snap->e[i].b;
        atomic_init(&h->c5xx, 0);
        atomic_init(&h->cgw, 0);
        atomic_init(&h->counts, 0);
        atomic_init(&h->ejected_until, 0);
        atomic_init(&h->mult, 0);
        atomic_init(&h->times, 0);
    }
    lbk_snapshot_retain(snap);
    od->snap = snap;
    *out = od;
    return 0;
}

void lbk_outlier_free(lbk_outlier *od)
{
    if (od == NULL)
        return;
    const lbk_snapshot *snap = od->snap;
    lbk_allocator a = od->alloc;
    lbk_free(&a, od);
    lbk_snapshot_release(snap);
}

static od_host *lookup(const lbk_outlier *od, const lbk_backend *b)
{
    if (b->slot >= od->nslots)
        return NULL;
    od_host *h = host_at(od, b->slot);
    return h->b == b ? h : NULL;
}

int lbk_outlier_inherit(lbk_outlier *od, const lbk_outlier *prev)
{
    RETURN_ERROR_IF(od == NULL || prev == NULL || od == prev, LBK_EINVAL);
    int carried = 0;
    uint32_t ejected = 0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        const od_host *p = lookup(prev, h->b);
        if (p != NULL) {
#define CARRY_(field)                                                          \
    atomic_store_explicit(                                                     \
        &h->field, atomic_load_explicit(&p->field, memory_order_relaxed),      \
        memory_order_relaxed)
            CARRY_(c5xx);
            CARRY_(cgw);
            CARRY_(counts);
            CARRY_(ejected_until);
            CARRY_(mult);
            CARRY_(times);
#undef CARRY_
            carried++;
        }
        ejected +=
            atomic_load_explicit(&h->ejected_until, memory_order_relaxed) != 0;
    }
    atomic_store_explicit(&od->ejected, ejected, memory_order_relaxed);
    od->last_pass_ns = prev->last_pass_ns;
    return carried;
}

static bool draw(lbk_outlier *od, double p)
{
    if (p >= 1.0)
        return true;
    if (p <= 0.0)
        return false;
    return lbk_unit_double(lbk_rng_next(&od->rng)) < p;
}

/* Eject h at now unless the maximum or a concurrent ejection forbids it. */
static bool try_eject(lbk_outlier *od, od_host *h, uint64_t now_ns)
{
    double limit = od->o.max_ejection_fraction * (double)od->nbackends;
    uint32_t cnt = atomic_load_explicit(&od->ejected, memory_order_relaxed);
    do {
        bool fits = (double)(cnt + 1) <= limit + 1e-9 ||
                    (od->o.always_eject_one && cnt == 0);
        if (!fits)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&od->ejected, &cnt, cnt + 1,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    uint32_t m = atomic_load_explicit(&h->mult, memory_order_relaxed);
    if (m < od->mult_cap)
        m++;
    uint64_t base = od->o.base_ejection_ns;
    uint64_t cap = od->o.max_ejection_ns > base ? od->o.max_ejection_ns : base;
    uint64_t dur = (m > cap / base) ? cap : base * m;
    uint64_t until = now_ns > UINT64_MAX - dur ? UINT64_MAX : now_ns + dur;
    uint64_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&h->ejected_until, &zero,
                                                 until, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        atomic_fetch_sub_explicit(&od->ejected, 1, memory_order_relaxed);
        return false; /* another thread ejected it first */
    }
    atomic_store_explicit(&h->mult, m, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->times, 1, memory_order_relaxed);
    lbk_backend_set_ejected(h->b, true);
    return true;
}

int lbk_outlier_report(lbk_outlier *od, lbk_backend *b,
                       lbk_outlier_result outcome, uint64_t now_ns)
{
    RETURN_ERROR_IF(od == NULL || b == NULL, LBK_EINVAL);
    RETURN_ERROR_IF((unsigned)outcome > LBK_OUTCOME_GATEWAY_ERROR, LBK_EINVAL);
    od_host *h = lookup(od, b);
    RETURN_ERROR_IF(h == NULL, LBK_ENOENT);
    if (atomic_load_explicit(&h->ejected_until, memory_order_relaxed) != 0)
        return 0; /* late outcome of an ejected backend */
    bool ok = outcome == LBK_OUTCOME_SUCCESS;
    atomic_fetch_add_explicit(&h->counts, (UINT64_C(1) << 32) | (ok ? 1 : 0),
                              memory_order_relaxed);
    if (ok) {
        if (atomic_load_explicit(&h->c5xx, memory_order_relaxed) != 0)
            atomic_store_explicit(&h->c5xx, 0, memory_order_relaxed);
        if (atomic_load_explicit(&h->cgw, memory_order_relaxed) != 0)
            atomic_store_explicit(&h->cgw, 0, memory_order_relaxed);
        return 0;
    }
    const lbk_outlier_options *o = &od->o;
    bool fire = false;
    double p = 0.0;
    uint32_t n5 = atomic_fetch_add_explicit(&h->c5xx, 1, memory_order_relaxed);
    if (o->consecutive_5xx != 0 && n5 + 1 == o->consecutive_5xx) {
        atomic_store_explicit(&h->c5xx, 0, memory_order_relaxed);
        fire = true;
        p = o->enforcing_consecutive_5xx;
    }
    if (outcome == LBK_OUTCOME_GATEWAY_ERROR) {
        uint32_t ng =
            atomic_fetch_add_explicit(&h->cgw, 1, memory_order_relaxed);
        if (o->consecutive_gateway != 0 && ng + 1 == o->consecutive_gateway) {
            atomic_store_explicit(&h->cgw, 0, memory_order_relaxed);
            if (!fire || o->enforcing_consecutive_gateway > p)
                p = o->enforcing_consecutive_gateway;
            fire = true;
        }
    } else if (atomic_load_explicit(&h->cgw, memory_order_relaxed) != 0) {
        atomic_store_explicit(&h->cgw, 0, memory_order_relaxed);
    }
    if (fire && draw(od, p) && try_eject(od, h, now_ns))
        return 1;
    return 0;
}

/* The success-rate pass's statistics and ejections (Envoy's
 * successRateEjectionThreshold: mean - factor * population stdev). */
static int success_rate_pass(lbk_outlier *od, uint64_t now_ns)
{
    const lbk_outlier_options *o = &od->o;
    uint32_t n = 0;
    double sum = 0.0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        uint64_t c =
            atomic_exchange_explicit(&h->counts, 0, memory_order_relaxed);
        uint64_t req = c >> 32, succ = c & UINT32_MAX;
        bool ejected =
            atomic_load_explicit(&h->ejected_until, memory_order_relaxed) != 0;
        h->in_pass = !ejected && req >= o->success_rate_request_volume;
        if (h->in_pass) {
            h->rate = 100.0 * (double)succ / (double)req;
            sum += h->rate;
            n++;
        }
    }
    if (n < o->success_rate_minimum_hosts)
        return 0;
    double mean = sum / n, var = 0.0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        if (h->in_pass)
            var += (h->rate - mean) * (h->rate - mean);
    }
    double threshold = mean - o->success_rate_stdev_factor * sqrt(var / n);
    int changed = 0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        if (h->in_pass && h->rate < threshold &&
            draw(od, o->enforcing_success_rate) && try_eject(od, h, now_ns))
            changed++;
    }
    return changed;
}

int lbk_outlier_tick(lbk_outlier *od, uint64_t now_ns)
{
    RETURN_ERROR_IF(od == NULL, LBK_EINVAL);
    bool pass = now_ns >= od->last_pass_ns &&
                now_ns - od->last_pass_ns >= od->o.interval_ns;
    int changed = 0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        uint64_t until =
            atomic_load_explicit(&h->ejected_until, memory_order_acquire);
        if (until == 0) {
            uint32_t m = atomic_load_explicit(&h->mult, memory_order_relaxed);
            if (pass && m > 0) /* an interval spent in service */
                atomic_store_explicit(&h->mult, m - 1, memory_order_relaxed);
        } else if (now_ns >= until &&
                   atomic_compare_exchange_strong_explicit(
                       &h->ejected_until, &until, 0, memory_order_acq_rel,
                       memory_order_relaxed)) {
            atomic_fetch_sub_explicit(&od->ejected, 1, memory_order_relaxed);
            atomic_store_explicit(&h->c5xx, 0, memory_order_relaxed);
            atomic_store_explicit(&h->cgw, 0, memory_order_relaxed);
            changed++;
        }
    }
    if (pass) {
        changed += success_rate_pass(od, now_ns);
        od->last_pass_ns = now_ns;
    }
    /* The set's flag follows ejected_until (repairs a racing report). */
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        bool want =
            atomic_load_explicit(&h->ejected_until, memory_order_acquire) != 0;
        if (lbk_backend_ejected(h->b) != want)
            lbk_backend_set_ejected(h->b, want);
    }
    return changed;
}

int lbk_outlier_uneject_all(lbk_outlier *od)
{
    RETURN_ERROR_IF(od == NULL, LBK_EINVAL);
    int n = 0;
    for (uint32_t i = 0; i < od->snap->n; i++) {
        od_host *h = host_at(od, od->snap->e[i].slot);
        uint64_t until = atomic_exchange_explicit(&h->ejected_until, 0,
                                                  memory_order_acq_rel);
        if (until != 0) {
            atomic_fetch_sub_explicit(&od->ejected, 1, memory_order_relaxed);
            lbk_backend_set_ejected(h->b, false);
            n++;
        }
    }
    return n;
}

uint32_t lbk_outlier_ejected_count(const lbk_outlier *od)
{
    return od ? atomic_load_explicit(&od->ejected, memory_order_relaxed) : 0;
}

int lbk_outlier_get_info(const lbk_outlier *od, const lbk_backend *b,
                         lbk_outlier_info *out)
{
    RETURN_ERROR_IF(od == NULL || b == NULL || out == NULL, LBK_EINVAL);
    od_host *h = lookup(od, b);
    RETURN_ERROR_IF(h == NULL, LBK_ENOENT);
    lbk_outlier_info info;
    info.ejected_until_ns =
        atomic_load_explicit(&h->ejected_until, memory_order_acquire);
    info.ejected = info.ejected_until_ns != 0;
    info.multiplier = atomic_load_explicit(&h->mult, memory_order_relaxed);
    info.times_ejected = atomic_load_explicit(&h->times, memory_order_relaxed);
    info.consecutive_5xx = atomic_load_explicit(&h->c5xx, memory_order_relaxed);
    info.consecutive_gateway =
        atomic_load_explicit(&h->cgw, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&h->counts, memory_order_relaxed);
    info.interval_requests = (uint32_t)(c >> 32);
    info.interval_successes = (uint32_t)(c & UINT32_MAX);
    *out = info;
    return 0;
}
