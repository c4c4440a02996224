/*
 * lib/picker.c - the generic entry point: one pick and one release for
 * every request policy, over a publication cell.
 *
 * The picker owns one lbk_cell holding the current policy object (every
 * policy object starts with an lbk_ref, so any of them can sit in the cell).
 * A pick acquires a reference from the cell and keeps it in the caller's
 * lbk_pick until release; that reference pins the object, its snapshot and
 * so the picked backend's memory, whatever the writer does meanwhile:
 *
 *     pick:     ref = acquire(cell) -> policy pick -> begin -> pick{b, ref}
 *     release:  end(b) -> latency sample -> release(ref)
 *     rebuild:  snapshot -> build -> publish(cell)   (old object lives on
 *                                                     until its last pick)
 *
 * The policy is dispatched with a switch on an enum, not a table of
 * function pointers, so the pick path stays visible to the compiler and to
 * a reader; adding a policy is one enum value, one name and one case in
 * each switch.  Least-connections counts in flight itself (its tree must
 * see begin and end), every other policy is counted here with
 * lbk_backend_begin/end.
 */
#include <math.h>

#include "lbkit/picker.h"
#include "lbkit/random.h"
#include "lbkit/rr.h"
#include "lbkit/wrr.h"

#include "internal.h"

/* lib/meson.build defines LBK_HAVE_<MODULE> for every module it builds,
 * so -Dskip_modules=leastconn leaves that policy unavailable, not unlinked. */
#if defined(LBK_HAVE_LEASTCONN)
#include "lbkit/leastconn.h"
#define PICKER_HAVE_LEASTCONN 1
#endif
#if defined(LBK_HAVE_P2C)
#include "lbkit/p2c.h"
#define PICKER_HAVE_P2C 1
#endif
#if defined(LBK_HAVE_BANDIT)
#include "lbkit/bandit.h"
#define PICKER_HAVE_BANDIT 1
#endif

static const char *const policy_names[] = {
    [LBK_POLICY_ROUND_ROBIN] = "round_robin",
    [LBK_POLICY_WEIGHTED_ROUND_ROBIN] = "weighted_round_robin",
    [LBK_POLICY_RANDOM] = "random",
    [LBK_POLICY_LEAST_CONN] = "least_conn",
    [LBK_POLICY_P2C] = "p2c",
    [LBK_POLICY_P2C_PEAK_EWMA] = "p2c_peak_ewma",
    [LBK_POLICY_UCB1] = "ucb1",
    [LBK_POLICY_THOMPSON] = "thompson",
};
#define POLICY_COUNT (sizeof(policy_names) / sizeof(policy_names[0]))

struct lbk_picker {
    lbk_cell cell; /* the current policy object; written by every acquire */
    char pad_[LBK_CACHELINE];
    lbk_ref *current; /* the writer's own reference to the cell's object */
    lbk_allocator alloc;
    lbk_set *set;
    lbk_policy policy;
    uint64_t seed;   /* the caller's; 0 = fresh per build */
    uint64_t builds; /* rebuilds so far, for derived seeds */
    lbk_picker_options opts;
    /* Panic mode (opts.panic_threshold > 0): the snapshot of the current
     * build, for the health-blind draw, and the verdict. */
    lbk_cell panic_cell;
    _Atomic int panic;
    lbk_rng panic_rng;
};

int lbk_policy_from_name(const char *name, lbk_policy *out)
{
    RETURN_ERROR_IF(name == NULL || out == NULL, LBK_EINVAL);
    for (uint32_t i = 0; i < POLICY_COUNT; i++)
        if (strcmp(name, policy_names[i]) == 0) {
            *out = (lbk_policy)i;
            return 0;
        }
    return LBK_ENOENT;
}

const char *lbk_policy_name(lbk_policy p)
{
    return (unsigned)p < POLICY_COUNT ? policy_names[p] : NULL;
}

uint32_t lbk_policy_count(void)
{
    return (uint32_t)POLICY_COUNT;
}

bool lbk_policy_available(lbk_policy p)
{
    switch (p) {
    case LBK_POLICY_ROUND_ROBIN:
    case LBK_POLICY_WEIGHTED_ROUND_ROBIN:
    case LBK_POLICY_RANDOM:
        return true;
    case LBK_POLICY_LEAST_CONN:
#ifdef PICKER_HAVE_LEASTCONN
        return true;
#else
        return false;
#endif
    case LBK_POLICY_P2C:
    case LBK_POLICY_P2C_PEAK_EWMA:
#ifdef PICKER_HAVE_P2C
        return true;
#else
        return false;
#endif
    case LBK_POLICY_UCB1:
    case LBK_POLICY_THOMPSON:
#ifdef PICKER_HAVE_BANDIT
        return true;
#else
        return false;
#endif
    }
    return false;
}

void lbk_picker_options_init(lbk_picker_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->policy = NULL;
    opts->bias = 1.0;
    opts->random_phase = true;
    opts->table_max = LBK_WRR_TABLE_DEFAULT;
}

/* The options every policy checks at build, checked once at create so a
 * later rebuild fails only for lack of memory. */
static int check_options(lbk_policy p, const lbk_picker_options *o)
{
    RETURN_ERROR_IF(!(o->panic_threshold >= 0.0 && o->panic_threshold <= 1.0),
                    LBK_ERANGE);
    switch (p) {
    case LBK_POLICY_WEIGHTED_ROUND_ROBIN:
        RETURN_ERROR_IF(o->table_max > LBK_WRR_TABLE_LIMIT, LBK_ERANGE);
        return 0;
    case LBK_POLICY_P2C:
    case LBK_POLICY_P2C_PEAK_EWMA:
#ifdef PICKER_HAVE_P2C
        RETURN_ERROR_IF(o->choices > LBK_P2C_MAX_CHOICES, LBK_ERANGE);
#endif
        RETURN_ERROR_IF(!(o->bias >= 0.0) || isinf(o->bias), LBK_ERANGE);
        return 0;
    default:
        return 0;
    }
}

/* Build the policy object for snap; *out is its lbk_ref. */
static int build_object(lbk_picker *p, const lbk_snapshot *snap, lbk_ref **out)
{
    const lbk_picker_options *o = &p->opts;
    uint64_t seed = 0;
    if (p->seed != 0)
        seed = lbk_mix64(p->seed + p->builds * LBK_GOLDEN_GAMMA) | 1;
    switch (p->policy) {
    case LBK_POLICY_ROUND_ROBIN: {
        lbk_rr_options ro;
        lbk_rr_options_init(&ro);
        ro.seed = seed;
        ro.exact_turns = o->exact_turns;
        lbk_rr *rr;
        FORWARD_IF_ERROR(lbk_rr_build(snap, &ro, &p->alloc, &rr));
        *out = (lbk_ref *)(void *)rr;
        return 0;
    }
    case LBK_POLICY_WEIGHTED_ROUND_ROBIN: {
        lbk_wrr_options wo;
        lbk_wrr_options_init(&wo);
        wo.seed = seed;
        wo.random_phase = o->random_phase;
        wo.table_max = o->table_max;
        wo.exact_turns = o->exact_turns;
        lbk_wrr *w;
        FORWARD_IF_ERROR(lbk_wrr_build(snap, &wo, &p->alloc, &w));
        *out = (lbk_ref *)(void *)w;
        return 0;
    }
    case LBK_POLICY_RANDOM: {
        lbk_random_options ro;
        lbk_random_options_init(&ro);
        ro.seed = seed;
        lbk_random *r;
        FORWARD_IF_ERROR(lbk_random_build(snap, &ro, &p->alloc, &r));
        *out = (lbk_ref *)(void *)r;
        return 0;
    }
    case LBK_POLICY_LEAST_CONN: {
#ifdef PICKER_HAVE_LEASTCONN
        lbk_leastconn_options lo;
        lbk_leastconn_options_init(&lo);
        lo.seed = seed;
        lbk_leastconn *lc;
        FORWARD_IF_ERROR(lbk_leastconn_build(snap, &lo, &p->alloc, &lc));
        *out = (lbk_ref *)(void *)lc;
        return 0;
#else
        return LBK_ENOTSUP;
#endif
    }
    case LBK_POLICY_P2C:
    case LBK_POLICY_P2C_PEAK_EWMA: {
#ifdef PICKER_HAVE_P2C
        lbk_p2c_options po;
        lbk_p2c_options_init(&po);
        if (o->choices != 0)
            po.choices = o->choices;
        po.bias = o->bias;
        po.with_replacement = o->with_replacement;
        po.seed = seed;
        po.decay_ns = o->decay_ns;
        po.mode = p->policy == LBK_POLICY_P2C ? LBK_P2C_LEAST_REQUEST
                                              : LBK_P2C_PEAK_EWMA;
        lbk_p2c *pc;
        FORWARD_IF_ERROR(lbk_p2c_build(snap, &po, &p->alloc, &pc));
        *out = (lbk_ref *)(void *)pc;
        return 0;
#else
        return LBK_ENOTSUP;
#endif
    }
    case LBK_POLICY_UCB1:
    case LBK_POLICY_THOMPSON: {
#ifdef PICKER_HAVE_BANDIT
        lbk_bandit_options bo;
        lbk_bandit_options_init(&bo);
        bo.algo = p->policy == LBK_POLICY_UCB1 ? LBK_BANDIT_UCB1
                                               : LBK_BANDIT_THOMPSON;
        bo.seed = seed;
        lbk_bandit *bd;
        FORWARD_IF_ERROR(lbk_bandit_build(snap, &bo, &p->alloc, &bd));
        *out = (lbk_ref *)(void *)bd;
        return 0;
#else
        return LBK_ENOTSUP;
#endif
    }
    }
    return LBK_EINVAL;
}

/*
 * Snapshot, build, publish; on failure nothing changed.
 *
 * The writer keeps its own reference to the published object (current)
 * and drops it only after the publish that replaces the object has
 * returned.  lbk_cell_publish moves the count of readers caught inside
 * acquire into the old object's counter after the swap, while those
 * readers may already have given back their extra increment and even
 * released their pick: without a reference that outlives the publish, the
 * counter could touch 0 - and the object be freed - in that window.
 */
/* ---- panic mode ---------------------------------------------------------
 *
 * Envoy's rule: when too few backends are healthy, spreading the load over
 * all of them (the unhealthy ones may be fine, or merely overloaded) beats
 * concentrating it on the few.  The verdict is a flag; the draw ignores
 * health and picks among backends of non-zero weight in proportion to
 * weight, holding the snapshot it drew from until release. */

static bool panic_verdict(const lbk_snapshot *snap, double threshold)
{
    uint32_t total = 0, healthy = 0;
    for (uint32_t i = 0; i < snap->n; i++) {
        if (snap->e[i].weight == 0)
            continue;
        total++;
        healthy += lbk_backend_state_eligible(
            atomic_load_explicit(&snap->e[i].b->state, memory_order_relaxed));
    }
    return total > 0 && (double)healthy < threshold * (double)total;
}

static int panic_draw(lbk_picker *p, lbk_backend **b, const lbk_snapshot **s)
{
    const lbk_snapshot *snap =
        (const lbk_snapshot *)(void *)lbk_cell_acquire(&p->panic_cell);
    RETURN_ERROR_IF(snap == NULL, LBK_ENOBACKEND);
    uint64_t total = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        total += snap->e[i].weight;
    if (total == 0) {
        lbk_snapshot_release(snap);
        return LBK_ENOBACKEND;
    }
    uint64_t r = lbk_bounded64(lbk_rng_next_relaxed(&p->panic_rng), total);
    uint32_t i = 0;
    while (r >= snap->e[i].weight)
        r -= snap->e[i++].weight;
    *b = snap->e[i].b;
    *s = snap;
    return 0;
}

int lbk_picker_refresh_panic(lbk_picker *picker, bool *active_out)
{
    RETURN_ERROR_IF(picker == NULL, LBK_EINVAL);
    bool active = false;
    if (picker->opts.panic_threshold > 0.0) {
        const lbk_snapshot *snap =
            (const lbk_snapshot *)(void *)lbk_cell_acquire(&picker->panic_cell);
        if (snap != NULL) {
            active = panic_verdict(snap, picker->opts.panic_threshold);
            lbk_snapshot_release(snap);
        }
    }
    atomic_store_explicit(&picker->panic, active, memory_order_relaxed);
    if (active_out != NULL)
        *active_out = active;
    return 0;
}

bool lbk_picker_panic_active(const lbk_picker *picker)
{
    return picker != NULL &&
           atomic_load_explicit(&picker->panic, memory_order_relaxed) != 0;
}

static int picker_refresh(lbk_picker *p)
{
    const lbk_snapshot *snap;
    FORWARD_IF_ERROR(lbk_set_snapshot(p->set, &snap));
    lbk_ref *obj = NULL;
    int rc = build_object(p, snap, &obj);
    if (rc < 0) {
        lbk_snapshot_release(snap);
        return rc;
    }
    if (p->opts.panic_threshold > 0.0) {
        /* the panic draw's snapshot is the build's (the cell takes this
         * reference); published before the object so no pick sees the new
         * object with an older panic snapshot for long */
        lbk_cell_publish(&p->panic_cell,
                         (lbk_ref *)&((lbk_snapshot *)snap)->ref);
        atomic_store_explicit(&p->panic,
                              panic_verdict(snap, p->opts.panic_threshold),
                              memory_order_relaxed);
    } else {
        lbk_snapshot_release(snap); /* the object holds its own reference */
    }
    lbk_ref_retain(obj); /* the writer's, besides the cell's */
    rc = lbk_cell_publish(&p->cell, obj);
    if (rc < 0) {
        lbk_ref_release(obj);
        lbk_ref_release(obj);
        return rc;
    }
    lbk_ref_release(p->current); /* NULL on the first build */
    p->current = obj;
    p->builds++;
    return 0;
}

int lbk_picker_create(lbk_set *set, const lbk_picker_options *opts,
                      const lbk_allocator *alloc, lbk_picker **out)
{
    RETURN_ERROR_IF(set == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    if (opts != NULL)
        o = *opts;
    lbk_policy policy = LBK_POLICY_ROUND_ROBIN;
    if (o.policy != NULL)
        FORWARD_IF_ERROR(lbk_policy_from_name(o.policy, &policy));
    RETURN_ERROR_IF(!lbk_policy_available(policy), LBK_ENOTSUP);
    FORWARD_IF_ERROR(check_options(policy, &o));
    o.policy = NULL; /* the caller's string is not kept */

    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_picker *p = lbk_malloc(&a, sizeof(*p));
    RETURN_ERROR_IF(p == NULL, LBK_ENOMEM);
    memset(p, 0, sizeof(*p));
    lbk_cell_init(&p->cell);
    p->alloc = a;
    p->set = set;
    p->policy = policy;
    p->seed = o.seed;
    p->opts = o;
    lbk_cell_init(&p->panic_cell);
    lbk_rng_seed(&p->panic_rng,
                 o.seed ? lbk_mix64(o.seed) : lbk_entropy_seed(p));
    int rc = picker_refresh(p);
    if (rc < 0) {
        lbk_free(&a, p);
        return rc;
    }
    *out = p;
    return 0;
}

int lbk_picker_rebuild(lbk_picker *picker)
{
    RETURN_ERROR_IF(picker == NULL, LBK_EINVAL);
    return picker_refresh(picker);
}

void lbk_picker_free(lbk_picker *picker)
{
    if (picker == NULL)
        return;
    lbk_allocator a = picker->alloc;
    lbk_cell_clear(&picker->cell);
    lbk_cell_clear(&picker->panic_cell);
    lbk_ref_release(picker->current);
    lbk_free(&a, picker);
}

lbk_policy lbk_picker_policy(const lbk_picker *picker)
{
    return picker ? picker->policy : LBK_POLICY_ROUND_ROBIN;
}

lbk_backend *lbk_pick_backend(const lbk_pick *pick)
{
    return pick && pick->held_ ? pick->backend : NULL;
}

/* The policy's own pick on object r (no accounting except least_conn's). */
static inline int policy_pick(lbk_policy policy, lbk_ref *r, uint64_t now_ns,
                              lbk_backend **b)
{
    switch (policy) {
    case LBK_POLICY_ROUND_ROBIN:
        return lbk_rr_pick((lbk_rr *)(void *)r, b);
    case LBK_POLICY_WEIGHTED_ROUND_ROBIN:
        return lbk_wrr_pick((lbk_wrr *)(void *)r, b);
    case LBK_POLICY_RANDOM:
        return lbk_random_pick((lbk_random *)(void *)r, b);
    case LBK_POLICY_LEAST_CONN:
#ifdef PICKER_HAVE_LEASTCONN
        return lbk_leastconn_pick((lbk_leastconn *)(void *)r, b);
#else
        break;
#endif
    case LBK_POLICY_P2C:
    case LBK_POLICY_P2C_PEAK_EWMA:
#ifdef PICKER_HAVE_P2C
        return lbk_p2c_pick((lbk_p2c *)(void *)r, now_ns, b);
#else
        break;
#endif
    case LBK_POLICY_UCB1:
    case LBK_POLICY_THOMPSON:
#ifdef PICKER_HAVE_BANDIT
        return lbk_bandit_pick((lbk_bandit *)(void *)r, b);
#else
        break;
#endif
    }
    (void)now_ns;
    return LBK_ENOTSUP;
}

int lbk_picker_pick(lbk_picker *picker, uint64_t now_ns, lbk_pick *pick)
{
    RETURN_ERROR_IF(picker == NULL || pick == NULL, LBK_EINVAL);
    lbk_ref *r = lbk_cell_acquire(&picker->cell);
    RETURN_ERROR_IF(r == NULL, LBK_ESTATE); /* only during lbk_picker_free */
    lbk_backend *b;
    const lbk_snapshot *panic_snap = NULL;
    bool panic = picker->opts.panic_threshold > 0.0 &&
                 atomic_load_explicit(&picker->panic, memory_order_relaxed);
    int rc =
        panic ? LBK_ENOBACKEND : policy_pick(picker->policy, r, now_ns, &b);
    if (rc >= 0 && picker->policy != LBK_POLICY_LEAST_CONN)
        rc = lbk_backend_begin(b);
    if (rc == LBK_ENOBACKEND && picker->opts.panic_threshold > 0.0) {
        /* panic, or nothing eligible at all: the health-blind draw */
        rc = panic_draw(picker, &b, &panic_snap);
        if (rc == 0 && (rc = lbk_backend_begin(b)) < 0)
            lbk_snapshot_release(panic_snap);
    }
    if (LBK_UNLIKELY(rc < 0)) {
        lbk_ref_release(r);
        return rc;
    }
    pick->backend = b;
    pick->start_ns = now_ns;
    pick->held_ = r;
    pick->owner_ = picker;
    pick->panic_held_ = panic_snap;
    return 0;
}

int lbk_picker_release(lbk_picker *picker, lbk_pick *pick,
                       const lbk_outcome *outcome)
{
    RETURN_ERROR_IF(picker == NULL || pick == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(pick->held_ == NULL || pick->backend == NULL, LBK_ESTATE);
    RETURN_ERROR_IF(pick->owner_ != picker, LBK_EINVAL);
    lbk_ref *r = pick->held_;
    lbk_backend *b = pick->backend;
    int rc;
    const lbk_snapshot *panic_snap = pick->panic_held_;
#ifdef PICKER_HAVE_LEASTCONN
    if (picker->policy == LBK_POLICY_LEAST_CONN && panic_snap == NULL)
        rc = lbk_leastconn_release((lbk_leastconn *)(void *)r, b);
    else
#endif
        rc = lbk_backend_end(b);
    if (outcome != NULL) {
        uint64_t lat = outcome->latency_ns;
        if (lat == 0 && outcome->now_ns > pick->start_ns)
            lat = outcome->now_ns - pick->start_ns;
        if (lat != 0) {
            uint64_t now =
                outcome->now_ns ? outcome->now_ns : pick->start_ns + lat;
            (void)lbk_backend_record_latency(b, lat, now);
        }
#ifdef PICKER_HAVE_BANDIT
        /* the bandits learn from every outcome reported to them */
        if (picker->policy == LBK_POLICY_UCB1 ||
            picker->policy == LBK_POLICY_THOMPSON)
            (void)lbk_bandit_report((lbk_bandit *)(void *)r, b,
                                    outcome->success, lat);
#endif
    }
    pick->backend = NULL;
    pick->held_ = NULL;
    pick->panic_held_ = NULL;
    lbk_snapshot_release(panic_snap);
    lbk_ref_release(r);
    return rc < 0 ? rc : 0;
}
