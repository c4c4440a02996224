/*
 * lib/bandit.c - UCB1 and Thompson-sampling pickers over a snapshot.
 *
 * Each backend's statistics are one 64-bit atomic word holding two float32,
 * n (decayed count) and s (decayed reward sum):
 *
 *     word = [ bits of n : 32 | bits of s : 32 ]
 *
 * so a report is one compare-and-swap that moves both together (a reader
 * never sees s from one report and n from another), and a pick reads each
 * backend's word once.  The words are dense, in snapshot order, because a
 * pick reads all of them; reports on different backends may share a line,
 * which costs a little under heavy reporting but keeps picks to N/8 lines.
 *
 * Randomness: a pick takes one draw from the shared lock-free generator and
 * continues with a local SplitMix64 stream seeded from it, so a Thompson
 * pick does one atomic operation however many Gamma draws it needs.
 *
 * Gamma(a, 1) for a >= 1 by Marsaglia and Tsang (ACM TOMS 26(3), 2000):
 * d = a - 1/3, c = 1/sqrt(9d); repeat x ~ N(0,1), v = (1 + cx)^3 until v > 0
 * and (u < 1 - 0.0331 x^4 or ln u < x^2/2 + d(1 - v + ln v)); return d v.
 * Normal draws by Box-Muller, both of each pair used.  Both shape parameters
 * here are >= 1 (s + 1 and n - s + 1), so the a < 1 boost is never needed.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/bandit.h"

struct lbk_bandit {
    lbk_ref ref;
    const lbk_snapshot *snap;
    lbk_allocator alloc;
    lbk_bandit_options o;
    lbk_rng rng;
    uint32_t nslots;
    uint32_t *index_of_slot; /* slot -> snapshot index, UINT32_MAX if none */
    _Atomic uint64_t arm[];  /* snapshot order */
};

#define NO_INDEX UINT32_MAX

static uint64_t pack(float n, float s)
{
    uint32_t a, b;
    memcpy(&a, &n, 4);
    memcpy(&b, &s, 4);
    return ((uint64_t)a << 32) | b;
}

static void unpack(uint64_t w, float *n, float *s)
{
    uint32_t a = (uint32_t)(w >> 32), b = (uint32_t)w;
    memcpy(n, &a, 4);
    memcpy(s, &b, 4);
}

void lbk_bandit_options_init(lbk_bandit_options *opts)
{
    if (opts == NULL)
        return;
    opts->algo = LBK_BANDIT_UCB1;
    opts->seed = 0;
    opts->latency_target_ns = UINT64_C(100000000);
    opts->latency_weight = 0.5;
    opts->decay = 1.0;
    opts->exploration = 1.0;
}

static int check_options(const lbk_bandit_options *o)
{
    RETURN_ERROR_IF((unsigned)o->algo > LBK_BANDIT_THOMPSON, LBK_EINVAL);
    RETURN_ERROR_IF(o->latency_target_ns == 0, LBK_EINVAL);
    RETURN_ERROR_IF(!(o->latency_weight >= 0.0 && o->latency_weight <= 1.0),
                    LBK_EINVAL);
    RETURN_ERROR_IF(!(o->decay > 0.0 && o->decay <= 1.0), LBK_EINVAL);
    RETURN_ERROR_IF(!(o->exploration >= 0.0) || isinf(o->exploration),
                    LBK_EINVAL);
    return 0;
}

static void bandit_destroy(lbk_ref *r)
{
    lbk_bandit *bd = (lbk_bandit *)r;
    const lbk_snapshot *snap = bd->snap;
    lbk_allocator a = bd->alloc;
    lbk_free(&a, bd);
    lbk_snapshot_release(snap);
}

int lbk_bandit_build(const lbk_snapshot *snap, const lbk_bandit_options *opts,
                     const lbk_allocator *alloc, lbk_bandit **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_bandit_options o;
    lbk_bandit_options_init(&o);
    if (opts != NULL)
        o = *opts;
    FORWARD_IF_ERROR(check_options(&o));
    uint32_t nslots = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].slot + 1 > nslots)
            nslots = snap->e[i].slot + 1;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t head = sizeof(lbk_bandit) + (size_t)snap->n * sizeof(uint64_t);
    lbk_bandit *bd = lbk_malloc(&a, head + (size_t)nslots * sizeof(uint32_t));
    RETURN_ERROR_IF(bd == NULL, LBK_ENOMEM);
    lbk_ref_init(&bd->ref, bandit_destroy);
    bd->alloc = a;
    bd->o = o;
    lbk_rng_seed(&bd->rng, o.seed ? o.seed : lbk_entropy_seed(bd));
    bd->nslots = nslots;
    bd->index_of_slot = (uint32_t *)((char *)bd + head);
    for (uint32_t s = 0; s < nslots; s++)
        bd->index_of_slot[s] = NO_INDEX;
    for (uint32_t i = 0; i < snap->n; i++) {
        atomic_init(&bd->arm[i], pack(0.0f, 0.0f));
        bd->index_of_slot[snap->e[i].slot] = i;
    }
    lbk_snapshot_retain(snap);
    bd->snap = snap;
    *out = bd;
    return 0;
}

void lbk_bandit_free(lbk_bandit *bd)
{
    if (bd != NULL)
        lbk_ref_release(&bd->ref);
}

static int index_of(const lbk_bandit *bd, const lbk_backend *b, uint32_t *i)
{
    RETURN_ERROR_IF(b->slot >= bd->nslots, LBK_ENOENT);
    uint32_t k = bd->index_of_slot[b->slot];
    RETURN_ERROR_IF(k == NO_INDEX || bd->snap->e[k].b != b, LBK_ENOENT);
    *i = k;
    return 0;
}

int lbk_bandit_report(lbk_bandit *bd, lbk_backend *b, bool success,
                      uint64_t latency_ns)
{
    RETURN_ERROR_IF(bd == NULL || b == NULL, LBK_EINVAL);
    uint32_t i;
    FORWARD_IF_ERROR(index_of(bd, b, &i));
    double r = 0.0;
    if (success) {
        double t = (double)bd->o.latency_target_ns;
        double w = bd->o.latency_weight;
        r = (1.0 - w) + w * t / (t + (double)latency_ns);
    }
    float decay = (float)bd->o.decay;
    uint64_t cur = atomic_load_explicit(&bd->arm[i], memory_order_relaxed);
    uint64_t next;
    do {
        float n, s;
        unpack(cur, &n, &s);
        next = pack(n * decay + 1.0f, s * decay + (float)r);
    } while (!atomic_compare_exchange_weak_explicit(
        &bd->arm[i], &cur, next, memory_order_relaxed, memory_order_relaxed));
    return 0;
}

int lbk_bandit_get_stats(const lbk_bandit *bd, const lbk_backend *b,
                         lbk_bandit_stats *out)
{
    RETURN_ERROR_IF(bd == NULL || b == NULL || out == NULL, LBK_EINVAL);
    uint32_t i;
    FORWARD_IF_ERROR(index_of(bd, b, &i));
    float n, s;
    unpack(atomic_load_explicit(&bd->arm[i], memory_order_relaxed), &n, &s);
    out->pulls = n;
    out->mean_reward = n > 0.0f ? (double)s / (double)n : 0.0;
    return 0;
}

/* ---- picking ---------------------------------------------------------- */

static bool usable(const lbk_snap_entry *e)
{
    return e->weight != 0 && lbk_backend_state_eligible(atomic_load_explicit(
                                 &e->b->state, memory_order_relaxed));
}

/* A pick's local random stream; Box-Muller makes normals in pairs, and the
 * second one is kept for the next draw. */
typedef struct draw_state {
    uint64_t st;
    double spare;
    bool has_spare;
} draw_state;

static double unit_open(draw_state *d) /* (0, 1] */
{
    return 1.0 - lbk_unit_double(lbk_rng_local_next(&d->st));
}

static double normal(draw_state *d)
{
    if (d->has_spare) {
        d->has_spare = false;
        return d->spare;
    }
    double r = sqrt(-2.0 * log(unit_open(d)));
    double a = 6.283185307179586 * lbk_unit_double(lbk_rng_local_next(&d->st));
    d->spare = r * sin(a);
    d->has_spare = true;
    return r * cos(a);
}

/* Gamma(a, 1), a >= 1, Marsaglia-Tsang. */
static double gamma_draw(double a, draw_state *d)
{
    double dd = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (;;) {
        double x = normal(d), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = unit_open(d), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 ||
            log(u) < 0.5 * x2 + dd * (1.0 - v + log(v)))
            return dd * v;
    }
}

static double beta_draw(double a, double b, draw_state *d)
{
    double x = gamma_draw(a, d), y = gamma_draw(b, d);
    return x / (x + y);
}

int lbk_bandit_pick(lbk_bandit *bd, lbk_backend **out)
{
    RETURN_ERROR_IF(bd == NULL || out == NULL, LBK_EINVAL);
    const lbk_snapshot *snap = bd->snap;
    uint32_t n = snap->n;
    RETURN_ERROR_IF(n == 0, LBK_ENOBACKEND);
    draw_state d = {lbk_rng_next(&bd->rng), 0.0, false};
    uint32_t start = lbk_bounded32((uint32_t)(d.st >> 32), n);
    uint32_t best = NO_INDEX;
    double best_score = -INFINITY;
    if (bd->o.algo == LBK_BANDIT_THOMPSON) {
        for (uint32_t k = 0, i = start; k < n;
             k++, i = i + 1 == n ? 0 : i + 1) {
            if (!usable(&snap->e[i]))
                continue;
            float pn, ps;
            unpack(atomic_load_explicit(&bd->arm[i], memory_order_relaxed), &pn,
                   &ps);
            double fails = (double)pn - (double)ps;
            double th = beta_draw((double)ps + 1.0,
                                  (fails > 0.0 ? fails : 0.0) + 1.0, &d);
            if (th > best_score) {
                best_score = th;
                best = i;
            }
        }
    } else {
        double total = 0.0;
        for (uint32_t k = 0, i = start; k < n;
             k++, i = i + 1 == n ? 0 : i + 1) {
            if (!usable(&snap->e[i]))
                continue;
            float pn, ps;
            unpack(atomic_load_explicit(&bd->arm[i], memory_order_relaxed), &pn,
                   &ps);
            if (pn <= 0.0f) { /* never reported: explore it first */
                *out = snap->e[i].b;
                return 0;
            }
            total += pn;
            if (best == NO_INDEX)
                best = i;
        }
        RETURN_ERROR_IF(best == NO_INDEX, LBK_ENOBACKEND);
        double two_ln = 2.0 * log(total > 1.0 ? total : 1.0);
        double c = bd->o.exploration;
        best = NO_INDEX;
        for (uint32_t k = 0, i = start; k < n;
             k++, i = i + 1 == n ? 0 : i + 1) {
            if (!usable(&snap->e[i]))
                continue;
            float pn, ps;
            unpack(atomic_load_explicit(&bd->arm[i], memory_order_relaxed), &pn,
                   &ps);
            if (pn <= 0.0f) { /* reported to nobody before: appeared now */
                best = i;
                break;
            }
            double score =
                (double)ps / (double)pn + c * sqrt(two_ln / (double)pn);
            if (score > best_score) {
                best_score = score;
                best = i;
            }
        }
    }
    RETURN_ERROR_IF(best == NO_INDEX, LBK_ENOBACKEND);
    *out = snap->e[best].b;
    return 0;
}
