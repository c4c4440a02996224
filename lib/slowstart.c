/*
 * lib/slowstart.c - Envoy's slow-start ramp, applied as backend weight scale.
 *
 * The ramp is a pure function of (start, now), so the state per backend is
 * just its start time and whether it was eligible at the last update (to see
 * a recovery as an edge).  Applying it through the backend's weight scale,
 * rather than inside each picker, keeps every weight-aware picker correct
 * without knowing about slow start: they multiply by the scale they already
 * read.  Carrying state from the previous object by backend pointer is what
 * tells "new backend" from "backend we already knew" across snapshots.
 */
#include <math.h>

#include "internal.h"
#include "lbkit/slowstart.h"

#define SS_NOT_RAMPING UINT64_MAX

typedef struct ss_entry {
    lbk_backend *b;
    uint64_t start_ns; /* SS_NOT_RAMPING when at full weight */
    bool was_eligible;
} ss_entry;

struct lbk_slowstart {
    const lbk_snapshot *snap;
    lbk_allocator alloc;
    lbk_slowstart_options o;
    uint32_t nslots;
    ss_entry e[]; /* by slot */
};

void lbk_slowstart_options_init(lbk_slowstart_options *opts)
{
    if (opts == NULL)
        return;
    opts->window_ns = UINT64_C(60000000000);
    opts->aggression = 1.0;
    opts->min_weight_fraction = 0.1;
    opts->ramp_initial = false;
}

static int check_options(const lbk_slowstart_options *o)
{
    RETURN_ERROR_IF(o->window_ns == 0, LBK_EINVAL);
    RETURN_ERROR_IF(!(o->aggression > 0.0) || isinf(o->aggression), LBK_EINVAL);
    RETURN_ERROR_IF(
        !(o->min_weight_fraction >= 0.0 && o->min_weight_fraction <= 1.0),
        LBK_EINVAL);
    return 0;
}

/* The factor, or 1.0 when the ramp is over (elapsed >= window). */
static double ramp(const lbk_slowstart_options *o, uint64_t start_ns,
                   uint64_t now_ns, bool *done)
{
    uint64_t elapsed = now_ns > start_ns ? now_ns - start_ns : 0;
    if (elapsed >= o->window_ns) {
        *done = true;
        return 1.0;
    }
    *done = false;
    double secs = (double)elapsed / 1e9;
    double tf = (secs > 1.0 ? secs : 1.0) / ((double)o->window_ns / 1e9);
    double f = o->aggression == 1.0 ? tf : pow(tf, 1.0 / o->aggression);
    if (f < o->min_weight_fraction)
        f = o->min_weight_fraction;
    return f > 1.0 ? 1.0 : f;
}

int lbk_slowstart_factor(const lbk_slowstart_options *opts, uint64_t start_ns,
                         uint64_t now_ns, double *out)
{
    RETURN_ERROR_IF(out == NULL, LBK_EINVAL);
    lbk_slowstart_options o;
    lbk_slowstart_options_init(&o);
    if (opts != NULL)
        o = *opts;
    FORWARD_IF_ERROR(check_options(&o));
    bool done;
    *out = ramp(&o, start_ns, now_ns, &done);
    return 0;
}

static ss_entry *lookup(const lbk_slowstart *ss, const lbk_backend *b)
{
    if (b->slot >= ss->nslots)
        return NULL;
    ss_entry *e = (ss_entry *)&ss->e[b->slot];
    return e->b == b ? e : NULL;
}

int lbk_slowstart_create(const lbk_snapshot *snap,
                         const lbk_slowstart_options *opts,
                         const lbk_slowstart *prev, uint64_t now_ns,
                         const lbk_allocator *alloc, lbk_slowstart **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_slowstart_options o;
    lbk_slowstart_options_init(&o);
    if (opts != NULL)
        o = *opts;
    FORWARD_IF_ERROR(check_options(&o));
    uint32_t nslots = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        if (snap->e[i].slot + 1 > nslots)
            nslots = snap->e[i].slot + 1;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_slowstart *ss =
        lbk_malloc(&a, sizeof(*ss) + (size_t)nslots * sizeof(ss_entry));
    RETURN_ERROR_IF(ss == NULL, LBK_ENOMEM);
    ss->alloc = a;
    ss->o = o;
    ss->nslots = nslots;
    memset(ss->e, 0, (size_t)nslots * sizeof(ss_entry));
    for (uint32_t i = 0; i < snap->n; i++) {
        lbk_backend *b = snap->e[i].b;
        ss_entry *e = &ss->e[snap->e[i].slot];
        const ss_entry *old = prev ? lookup(prev, b) : NULL;
        e->b = b;
        if (old != NULL) {
            e->start_ns = old->start_ns;
            e->was_eligible = old->was_eligible;
        } else {
            bool ramp_now = prev != NULL || o.ramp_initial;
            e->start_ns = ramp_now ? now_ns : SS_NOT_RAMPING;
            e->was_eligible = lbk_backend_eligible(b);
        }
    }
    lbk_snapshot_retain(snap);
    ss->snap = snap;
    *out = ss;
    return 0;
}

void lbk_slowstart_free(lbk_slowstart *ss)
{
    if (ss == NULL)
        return;
    const lbk_snapshot *snap = ss->snap;
    lbk_allocator a = ss->alloc;
    lbk_free(&a, ss);
    lbk_snapshot_release(snap);
}

int lbk_slowstart_begin(lbk_slowstart *ss, lbk_backend *b, uint64_t now_ns)
{
    RETURN_ERROR_IF(ss == NULL || b == NULL, LBK_EINVAL);
    ss_entry *e = lookup(ss, b);
    RETURN_ERROR_IF(e == NULL, LBK_ENOENT);
    e->start_ns = now_ns == SS_NOT_RAMPING ? now_ns - 1 : now_ns;
    return 0;
}

int lbk_slowstart_update(lbk_slowstart *ss, uint64_t now_ns)
{
    RETURN_ERROR_IF(ss == NULL, LBK_EINVAL);
    int ramping = 0;
    for (uint32_t i = 0; i < ss->snap->n; i++) {
        ss_entry *e = &ss->e[ss->snap->e[i].slot];
        bool eligible = lbk_backend_eligible(e->b);
        if (eligible && !e->was_eligible) /* recovered: ramp again */
            e->start_ns = now_ns == SS_NOT_RAMPING ? now_ns - 1 : now_ns;
        e->was_eligible = eligible;
        if (e->start_ns == SS_NOT_RAMPING)
            continue;
        bool done;
        double f = ramp(&ss->o, e->start_ns, now_ns, &done);
        lbk_backend_set_weight_scale(e->b, f);
        if (done)
            e->start_ns = SS_NOT_RAMPING;
        else
            ramping++;
    }
    return ramping;
}

bool lbk_slowstart_ramping(const lbk_slowstart *ss, const lbk_backend *b)
{
    if (ss == NULL || b == NULL)
        return false;
    const ss_entry *e = lookup(ss, b);
    return e != NULL && e->start_ns != SS_NOT_RAMPING;
}
