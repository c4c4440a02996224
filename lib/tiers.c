/*
 * lib/tiers.c - Envoy-style priority levels over a backend snapshot.
 *
 * The build groups the snapshot's backends by priority (a counting sort over
 * the 128 levels) into one array, so each tier is a contiguous run:
 *
 *     e[]:   | p0 b b b | p1 b b | p5 b |       start[p] .. start[p+1]
 *
 * A pick walks that array once to count eligible backends per tier (relaxed
 * loads of each backend's state word), turns the counts into Envoy's integer
 * priority load (tiers.h states the rule), draws a tier with one random
 * number in 1..100 against the cumulative loads (as Envoy's choosePriority),
 * then draws a backend in that tier weighted by weight x weight scale.  Re-
 * counting at every pick costs O(N) but means a health change is honoured at
 * the very next pick with no rebuild and no shared mutable counters; tiered
 * sets are usually small (a primary pool and a fail-over pool).
 *
 * Health can change between the count and the draw; if the chosen tier has
 * no eligible backend by then, the pick starts over (a few times) rather
 * than returning a backend that just went down.
 */
#include "internal.h"
#include "lbkit/tiers.h"

#define OVERPROV_MIN 100u
#define OVERPROV_MAX 1000u
#define PICK_ATTEMPTS 4

typedef struct tier_entry {
    lbk_backend *b;
    uint32_t weight;
    uint32_t pad_;
} tier_entry;

struct lbk_tiers {
    lbk_ref ref;
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    lbk_rng rng;
    uint32_t overprov;
    uint32_t levels; /* highest priority + 1, >= 1 */
    uint32_t
        start[LBK_TIERS_LEVELS + 1]; /* tier p is e[start[p]..start[p+1]) */
    tier_entry e[];
};

void lbk_tiers_options_init(lbk_tiers_options *opts)
{
    if (opts == NULL)
        return;
    opts->overprovisioning_percent = LBK_TIERS_DEFAULT_OVERPROVISIONING;
    opts->seed = 0;
}

/* Envoy's distribution.  Returns false when no level has health (then all
 * of the load is reported on level 0). */
static bool loads_from_counts(const uint32_t *healthy, const uint32_t *total,
                              size_t levels, uint32_t overprov, uint32_t *loads)
{
    uint32_t health[LBK_TIERS_LEVELS];
    uint32_t sum = 0;
    size_t first = SIZE_MAX;
    for (size_t p = 0; p < levels; p++) {
        uint64_t h = 0;
        if (total[p] > 0)
            h = (uint64_t)overprov * healthy[p] / total[p];
        health[p] = h > 100 ? 100 : (uint32_t)h;
        sum += health[p];
        if (health[p] > 0 && first == SIZE_MAX)
            first = p;
    }
    uint32_t norm = sum > 100 ? 100 : sum;
    if (norm == 0) {
        for (size_t p = 0; p < levels; p++)
            loads[p] = 0;
        loads[0] = 100;
        return false;
    }
    uint32_t remaining = 100;
    for (size_t p = 0; p < levels; p++) {
        uint32_t l = health[p] * 100 / norm;
        loads[p] = l < remaining ? l : remaining;
        remaining -= loads[p];
    }
    loads[first] += remaining; /* rounding, to the first level with health */
    return true;
}

int lbk_tiers_compute_loads(const uint32_t *healthy, const uint32_t *total,
                            size_t levels, uint32_t overprovisioning_percent,
                            uint32_t *loads_out)
{
    RETURN_ERROR_IF(healthy == NULL || total == NULL || loads_out == NULL ||
                        levels == 0,
                    LBK_EINVAL);
    RETURN_ERROR_IF(levels > LBK_TIERS_LEVELS, LBK_ERANGE);
    RETURN_ERROR_IF(overprovisioning_percent < OVERPROV_MIN ||
                        overprovisioning_percent > OVERPROV_MAX,
                    LBK_ERANGE);
    for (size_t p = 0; p < levels; p++)
        RETURN_ERROR_IF(healthy[p] > total[p], LBK_EINVAL);
    uint32_t loads[LBK_TIERS_LEVELS];
    loads_from_counts(healthy, total, levels, overprovisioning_percent, loads);
    memcpy(loads_out, loads, levels * sizeof(*loads_out));
    return 0;
}

static void tiers_destroy(lbk_ref *r)
{
    lbk_tiers *t = (lbk_tiers *)r;
    lbk_allocator a = t->alloc;
    lbk_snapshot_release(t->snap);
    lbk_free(&a, t);
}

int lbk_tiers_build(const lbk_snapshot *snap, const lbk_tiers_options *opts,
                    const lbk_allocator *alloc, lbk_tiers **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_tiers_options o;
    lbk_tiers_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(o.overprovisioning_percent < OVERPROV_MIN ||
                        o.overprovisioning_percent > OVERPROV_MAX,
                    LBK_ERANGE);
    uint32_t count[LBK_TIERS_LEVELS] = {0};
    uint32_t n = 0, levels = 1;
    for (uint32_t i = 0; i < snap->n; i++) {
        uint32_t p = snap->e[i].priority;
        if (p >= levels)
            levels = p + 1; /* a weight-0 backend still defines its level */
        if (snap->e[i].weight == 0)
            continue;
        count[p]++;
        n++;
    }
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_tiers *t = lbk_malloc(&a, sizeof(*t) + (size_t)n * sizeof(tier_entry));
    RETURN_ERROR_IF(t == NULL, LBK_ENOMEM);
    memset(t, 0, sizeof(*t));
    lbk_ref_init(&t->ref, tiers_destroy);
    t->alloc = a;
    t->overprov = o.overprovisioning_percent;
    t->levels = levels;
    uint32_t fill[LBK_TIERS_LEVELS];
    for (uint32_t p = 0; p < LBK_TIERS_LEVELS; p++) {
        t->start[p + 1] = t->start[p] + count[p];
        fill[p] = t->start[p];
    }
    for (uint32_t i = 0; i < snap->n; i++) { /* stable: slot order in tier */
        if (snap->e[i].weight == 0)
            continue;
        tier_entry *te = &t->e[fill[snap->e[i].priority]++];
        te->b = snap->e[i].b;
        te->weight = snap->e[i].weight;
        te->pad_ = 0;
    }
    lbk_rng_seed(&t->rng, o.seed != 0 ? o.seed : lbk_entropy_seed(t));
    lbk_snapshot_retain(snap);
    t->snap = snap;
    *out = t;
    return 0;
}

void lbk_tiers_free(lbk_tiers *t)
{
    if (t != NULL)
        lbk_ref_release(&t->ref);
}

int lbk_tiers_retain(lbk_tiers *t)
{
    RETURN_ERROR_IF(t == NULL, LBK_EINVAL);
    lbk_ref_retain(&t->ref);
    return 0;
}

static inline bool entry_eligible(const tier_entry *te)
{
    return lbk_backend_state_eligible(
        atomic_load_explicit(&te->b->state, memory_order_relaxed));
}

/* Current loads; false when nothing is eligible. */
static bool current_loads(const lbk_tiers *t, uint32_t *loads)
{
    uint32_t healthy[LBK_TIERS_LEVELS], total[LBK_TIERS_LEVELS];
    for (uint32_t p = 0; p < t->levels; p++) {
        uint32_t h = 0;
        for (uint32_t i = t->start[p]; i < t->start[p + 1]; i++)
            h += entry_eligible(&t->e[i]);
        healthy[p] = h;
        total[p] = t->start[p + 1] - t->start[p];
    }
    return loads_from_counts(healthy, total, t->levels, t->overprov, loads);
}

/* Weighted random over the eligible backends of tier p; NULL if none. */
static lbk_backend *pick_in_tier(lbk_tiers *t, uint32_t p)
{
    uint64_t sum = 0;
    uint32_t eligible = 0;
    for (uint32_t i = t->start[p]; i < t->start[p + 1]; i++) {
        const tier_entry *te = &t->e[i];
        if (!entry_eligible(te))
            continue;
        eligible++;
        sum += (uint64_t)te->weight *
               atomic_load_explicit(&te->b->weight_scale, memory_order_relaxed);
    }
    if (eligible == 0)
        return NULL;
    uint64_t x = lbk_rng_next(&t->rng);
    /* All scales 0: uniform over the eligible backends. */
    uint64_t r = lbk_bounded64(x, sum > 0 ? sum : eligible);
    for (uint32_t i = t->start[p]; i < t->start[p + 1]; i++) {
        const tier_entry *te = &t->e[i];
        if (!entry_eligible(te))
            continue;
        uint64_t w = sum > 0 ? (uint64_t)te->weight *
                                   atomic_load_explicit(&te->b->weight_scale,
                                                        memory_order_relaxed)
                             : 1;
        if (r < w)
            return te->b;
        r -= w;
    }
    return NULL; /* health or scale changed under us: caller retries */
}

int lbk_tiers_pick(lbk_tiers *t, lbk_backend **out)
{
    RETURN_ERROR_IF(t == NULL || out == NULL, LBK_EINVAL);
    for (int attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
        uint32_t loads[LBK_TIERS_LEVELS];
        if (!current_loads(t, loads))
            return LBK_ENOBACKEND;
        /* 1..100 against the cumulative loads, as Envoy's choosePriority. */
        uint32_t r = lbk_bounded32((uint32_t)lbk_rng_next(&t->rng), 100) + 1;
        uint32_t acc = 0, p = 0;
        for (; p + 1 < t->levels; p++) {
            acc += loads[p];
            if (r <= acc)
                break;
        }
        lbk_backend *b = pick_in_tier(t, p);
        if (b != NULL) {
            *out = b;
            return 0;
        }
    }
    return LBK_ENOBACKEND;
}

int lbk_tiers_load(lbk_tiers *t, uint32_t *loads_out, size_t n)
{
    RETURN_ERROR_IF(t == NULL || (loads_out == NULL && n > 0), LBK_EINVAL);
    uint32_t loads[LBK_TIERS_LEVELS];
    current_loads(t, loads);
    for (size_t p = 0; p < n && p < t->levels; p++)
        loads_out[p] = loads[p];
    for (size_t p = t->levels; p < n; p++)
        loads_out[p] = 0;
    return (int)t->levels;
}
