/*
 * lib/reconcile.c - apply a discovery source's reports to a backend set.
 *
 * Each report is handled as a small transaction against the set:
 *
 *   validate ---- diff ---- reserve ---- execute (journaled) ---- publish
 *   (pure)     (reads only)  (our allocs)  lower weights, priorities
 *                                          removes
 *                                          adds
 *                                          raise weights
 *
 * Everything that can fail on our side (validation, our memory) happens
 * before the first change; what can still fail inside the set (its own
 * allocations, on remove / add / publish) is undone from the journal in
 * reverse.  Weights go down before anything goes up so the set's total never
 * passes the final total (which validation checked fits 32 bits).
 *
 * Endpoint records.  Every managed backend carries a record (name, address,
 * port) as its user pointer.  Readers may hold a removed backend through a
 * snapshot, so its record must outlive every snapshot that lists it: the
 * reconciler holds one extra reference on each of its backends (the same
 * counter snapshots use, internal.h), keeps removed records in a graveyard,
 * and frees a record once the backend's count shows only the set's
 * reference and ours, i.e. no snapshot lists it any more.  Holding that
 * reference also stops the set from reclaiming the slot before we are done.
 */
#include <stdio.h>

#include "internal.h"
#include "lbkit/reconcile.h"

typedef struct rec {
    lbk_endpoint ep; /* first: the backend's user pointer */
    lbk_backend *b;
    uint64_t hash;
    uint32_t slot, weight, priority;
    uint32_t stamp; /* apply round in which the report listed it */
    char str[];     /* name NUL address NUL */
} rec;

enum { ACT_ADD = 1, ACT_KEEP, ACT_MODIFY, ACT_REPLACE };
enum { OP_MOD = 1, OP_REMOVE, OP_ADD };

typedef struct action {
    uint32_t kind;
    rec *cur;   /* managed record for the name (KEEP, MODIFY, REPLACE) */
    rec *fresh; /* new record to add (ADD, REPLACE) */
} action;

typedef struct op {
    uint32_t kind;
    uint32_t old_weight, old_priority;
    rec *r;
} op;

struct lbk_reconciler {
    lbk_allocator alloc;
    lbk_set *set;
    lbk_reconcile_options opts;
    rec **table; /* open addressing by name hash; NULL = empty */
    uint32_t table_cap, managed;
    rec **grave;
    uint32_t ngrave, grave_cap;
    uint32_t *dup; /* scratch for the duplicate check */
    size_t dup_cap;
    action *act;
    size_t act_cap;
    op *journal;
    size_t journal_cap, njournal;
    rec **doomed; /* managed records to remove this round */
    size_t doomed_cap;
    uint32_t round;
    lbk_reconcile_status st;
};

/* ---- names -------------------------------------------------------------- */

int lbk_instance_format_name(const lbk_instance *inst, char *buf, size_t size)
{
    RETURN_ERROR_IF(inst == NULL || inst->address == NULL || buf == NULL,
                    LBK_EINVAL);
    bool v6 = strchr(inst->address, ':') != NULL;
    int len = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", inst->address,
                       (unsigned)inst->port);
    /* defensive: len < 0 only if snprintf fails, which "%s:%u" cannot */
    if (len < 0 || (size_t)len >= size || len > (int)LBK_NAME_MAX) {
        if (size > 0)
            buf[0] = '\0';
        return LBK_ETOOLONG;
    }
    return 0;
}

/* The instance's identity: its name, or "address:port" formatted in buf
 * (LBK_NAME_MAX + 1 bytes).  NULL when the derived name is too long. */
static const char *inst_name(const lbk_instance *in, char *buf)
{
    if (in->name != NULL && in->name[0] != '\0')
        return in->name;
    return lbk_instance_format_name(in, buf, LBK_NAME_MAX + 1) == 0 ? buf
                                                                    : NULL;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* Validation proper; dup is a zeroed scratch of cap (power of two) slots. */
static int validate(const lbk_instance *in, size_t n, uint32_t *dup, size_t cap,
                    size_t *bad)
{
    uint64_t total = 0;
    char b1[LBK_NAME_MAX + 1], b2[LBK_NAME_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        const lbk_instance *x = &in[i];
        int rc = 0;
        if (x->address == NULL || x->address[0] == '\0' || x->port == 0)
            rc = LBK_EINVAL;
        else if (strnlen(x->address, LBK_ADDRESS_MAX + 1) > LBK_ADDRESS_MAX)
            rc = LBK_ETOOLONG;
        else if (x->priority > LBK_PRIORITY_MAX)
            rc = LBK_ERANGE;
        else if (x->name != NULL &&
                 strnlen(x->name, LBK_NAME_MAX + 1) > LBK_NAME_MAX)
            rc = LBK_ETOOLONG;
        const char *name = rc == 0 ? inst_name(x, b1) : NULL;
        if (rc == 0 && name == NULL)
            rc = LBK_ETOOLONG;
        if (rc == 0) {
            total += x->weight;
            if (total > UINT32_MAX)
                rc = LBK_EOVERFLOW;
        }
        if (rc == 0) {
            size_t len = strlen(name);
            size_t h = (size_t)lbk_hash(name, len, 0) & (cap - 1);
            for (; dup[h] != 0; h = (h + 1) & (cap - 1)) {
                const char *o = inst_name(&in[dup[h] - 1], b2);
                if (strcmp(o, name) == 0) {
                    rc = LBK_EEXIST;
                    break;
                }
            }
            if (rc == 0)
                dup[h] = (uint32_t)i + 1;
        }
        if (rc < 0) {
            if (bad != NULL)
                *bad = i;
            return rc;
        }
    }
    return 0;
}

int lbk_reconcile_validate(const lbk_instance *instances, size_t n,
                           const lbk_allocator *alloc, size_t *bad_index)
{
    RETURN_ERROR_IF((instances == NULL && n > 0) || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    RETURN_ERROR_IF(n > LBK_RECONCILE_MAX_INSTANCES, LBK_ERANGE);
    if (n == 0)
        return 0;
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t cap = pow2_at_least(2 * n);
    uint32_t *dup = lbk_calloc(&a, cap, sizeof(*dup));
    RETURN_ERROR_IF(dup == NULL, LBK_ENOMEM);
    int rc = validate(instances, n, dup, cap, bad_index);
    lbk_free(&a, dup);
    return rc;
}

/* ---- the managed table -------------------------------------------------- */

static rec *table_find(const lbk_reconciler *r, const char *name, uint64_t h)
{
    if (r->table_cap == 0)
        return NULL;
    uint32_t mask = r->table_cap - 1;
    for (uint32_t i = (uint32_t)h & mask; r->table[i] != NULL;
         i = (i + 1) & mask)
        /* the strcmp differs only on a 64-bit hash collision: kept for
         * correctness, not reached by the tests */
        if (r->table[i]->hash == h && strcmp(r->table[i]->ep.name, name) == 0)
            return r->table[i];
    return NULL;
}

static void table_insert(lbk_reconciler *r, rec *x)
{
    uint32_t mask = r->table_cap - 1;
    uint32_t i = (uint32_t)x->hash & mask;
    while (r->table[i] != NULL)
        i = (i + 1) & mask;
    r->table[i] = x;
    r->managed++;
}

/* Linear probing with backward-shift deletion (no tombstones). */
static void table_delete(lbk_reconciler *r, const rec *x)
{
    uint32_t mask = r->table_cap - 1;
    uint32_t i = (uint32_t)x->hash & mask;
    while (r->table[i] != x)
        i = (i + 1) & mask;
    r->table[i] = NULL;
    for (uint32_t j = (i + 1) & mask; r->table[j] != NULL; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)r->table[j]->hash & mask;
        /* move j back to i if its home is not in (i, j] cyclically */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            r->table[i] = r->table[j];
            r->table[j] = NULL;
            i = j;
        }
    }
    r->managed--;
}

/* Room for `more` new entries at load <= 1/2. */
static int table_reserve(lbk_reconciler *r, uint32_t more)
{
    uint64_t need = 2 * ((uint64_t)r->managed + more);
    if (need <= r->table_cap)
        return 0;
    size_t cap = pow2_at_least((size_t)need);
    rec **t = lbk_calloc(&r->alloc, cap, sizeof(*t));
    RETURN_ERROR_IF(t == NULL, LBK_ENOMEM);
    rec **old = r->table;
    uint32_t old_cap = r->table_cap;
    r->table = t;
    r->table_cap = (uint32_t)cap;
    r->managed = 0;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            table_insert(r, old[i]);
    lbk_free(&r->alloc, old);
    return 0;
}

/* Grow a scratch array to hold need elements (contents not kept). */
static int scratch_reserve(lbk_reconciler *r, void **arr, size_t *cap,
                           size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = pow2_at_least(need);
    void *p = lbk_malloc(&r->alloc, c * elem);
    RETURN_ERROR_IF(p == NULL, LBK_ENOMEM);
    lbk_free(&r->alloc, *arr);
    *arr = p;
    *cap = c;
    return 0;
}

static int grave_reserve(lbk_reconciler *r, size_t more)
{
    size_t need = (size_t)r->ngrave + more;
    if (need <= r->grave_cap)
        return 0;
    size_t c = pow2_at_least(need);
    rec **g = lbk_malloc(&r->alloc, c * sizeof(*g));
    RETURN_ERROR_IF(g == NULL, LBK_ENOMEM);
    if (r->ngrave > 0)
        memcpy(g, r->grave, r->ngrave * sizeof(*g));
    lbk_free(&r->alloc, r->grave);
    r->grave = g;
    r->grave_cap = (uint32_t)c;
    return 0;
}

/* ---- records ------------------------------------------------------------ */

static rec *rec_new(lbk_reconciler *r, const lbk_instance *in, const char *name)
{
    size_t nl = strlen(name), al = strlen(in->address);
    rec *x = lbk_malloc(&r->alloc, sizeof(*x) + nl + al + 2);
    if (x == NULL)
        return NULL;
    memset(x, 0, sizeof(*x));
    memcpy(x->str, name, nl + 1);
    memcpy(x->str + nl + 1, in->address, al + 1);
    x->ep.name = x->str;
    x->ep.address = x->str + nl + 1;
    x->ep.port = in->port;
    x->hash = lbk_hash(name, nl, 0);
    x->weight = in->weight;
    x->priority = in->priority;
    return x;
}

static void backend_hold(lbk_backend *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

static void backend_drop(lbk_backend *b)
{
    atomic_fetch_sub_explicit(&b->refs, 1, memory_order_release);
}

/* Free graveyard records whose backend no snapshot lists any more: only
 * the set's reference and ours remain. */
static void grave_sweep(lbk_reconciler *r)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < r->ngrave; i++) {
        rec *x = r->grave[i];
        /* defensive: b == NULL never happens; a record enters the
         * graveyard only after its backend was added (step_remove,
         * forget_lost, rollback of an add) */
        if (x->b == NULL ||
            atomic_load_explicit(&x->b->refs, memory_order_acquire) <= 2) {
            if (x->b != NULL)
                backend_drop(x->b);
            lbk_free(&r->alloc, x);
        } else {
            r->grave[keep++] = x;
        }
    }
    r->ngrave = keep;
}

/* ---- life --------------------------------------------------------------- */

void lbk_reconcile_options_init(lbk_reconcile_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->empty_is_failure = true;
}

int lbk_reconciler_create(lbk_set *set, const lbk_reconcile_options *opts,
                          const lbk_allocator *alloc, lbk_reconciler **out)
{
    RETURN_ERROR_IF(set == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_reconciler *r = lbk_malloc(&a, sizeof(*r));
    RETURN_ERROR_IF(r == NULL, LBK_ENOMEM);
    memset(r, 0, sizeof(*r));
    r->alloc = a;
    r->set = set;
    lbk_reconcile_options_init(&r->opts);
    if (opts != NULL)
        r->opts = *opts;
    *out = r;
    return 0;
}

void lbk_reconciler_free(lbk_reconciler *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->table_cap; i++) {
        if (r->table[i] != NULL) {
            backend_drop(r->table[i]->b);
            lbk_free(&r->alloc, r->table[i]);
        }
    }
    for (uint32_t i = 0; i < r->ngrave; i++) {
        if (r->grave[i]->b != NULL) /* defensive: always set, as above */
            backend_drop(r->grave[i]->b);
        lbk_free(&r->alloc, r->grave[i]);
    }
    lbk_allocator a = r->alloc;
    lbk_free(&a, r->table);
    lbk_free(&a, r->grave);
    lbk_free(&a, r->dup);
    lbk_free(&a, r->act);
    lbk_free(&a, r->journal);
    lbk_free(&a, r->doomed);
    lbk_free(&a, r);
}

lbk_set *lbk_reconciler_set(const lbk_reconciler *r)
{
    return r ? r->set : NULL;
}

int lbk_reconciler_status(const lbk_reconciler *r, lbk_reconcile_status *out)
{
    RETURN_ERROR_IF(r == NULL || out == NULL, LBK_EINVAL);
    *out = r->st;
    out->managed = r->managed;
    return 0;
}

/* ---- the journaled steps ------------------------------------------------ */

static void journal(lbk_reconciler *r, uint32_t kind, rec *x, uint32_t ow,
                    uint32_t op_)
{
    op *o = &r->journal[r->njournal++];
    o->kind = kind;
    o->r = x;
    o->old_weight = ow;
    o->old_priority = op_;
}

static int step_modify(lbk_reconciler *r, rec *x, uint32_t w, uint32_t p)
{
    uint32_t ow = x->weight, opr = x->priority;
    /* defensive: neither call can fail here: the slot is live (forget_lost
     * ran first), the total was checked by diff() and the priority by
     * validate() */
    if (w != ow)
        FORWARD_IF_ERROR(lbk_set_set_weight(r->set, x->slot, w));
    if (p != opr) {
        int rc = lbk_set_set_priority(r->set, x->slot, p);
        if (LBK_UNLIKELY(rc < 0)) {
            if (w != ow)
                lbk_set_set_weight(r->set, x->slot, ow);
            return rc;
        }
    }
    x->weight = w;
    x->priority = p;
    journal(r, OP_MOD, x, ow, opr);
    return 0;
}

static int step_remove(lbk_reconciler *r, rec *x)
{
    FORWARD_IF_ERROR(lbk_set_remove(r->set, x->slot));
    table_delete(r, x);
    r->grave[r->ngrave++] = x; /* room reserved */
    journal(r, OP_REMOVE, x, x->weight, x->priority);
    return 0;
}

/* Add x's backend to the set (no journal): used by adds and undo. */
static int set_add_rec(lbk_reconciler *r, rec *x)
{
    uint32_t slot;
    FORWARD_IF_ERROR(
        lbk_set_add(r->set, x->ep.name, x->weight, (void *)&x->ep, &slot));
    if (LBK_UNLIKELY(x->priority != 0 &&
                     lbk_set_set_priority(r->set, slot, x->priority) < 0)) {
        /* defensive: cannot happen, the priority was validated */
        lbk_set_remove(r->set, slot);
        return LBK_ERANGE;
    }
    x->slot = slot;
    x->b = lbk_set_backend(r->set, slot);
    backend_hold(x->b);
    return 0;
}

static int step_add(lbk_reconciler *r, rec *x)
{
    FORWARD_IF_ERROR(set_add_rec(r, x));
    table_insert(r, x); /* room reserved */
    journal(r, OP_ADD, x, x->weight, x->priority);
    return 0;
}

/* defensive: the loop never runs out, x was put in the graveyard by the
 * step_remove being undone */
static void grave_take(lbk_reconciler *r, const rec *x)
{
    for (uint32_t i = r->ngrave; i-- > 0;) {
        if (r->grave[i] == x) {
            r->grave[i] = r->grave[--r->ngrave];
            return;
        }
    }
}

/* Undo the journal in reverse, best effort; our bookkeeping always
 * follows what the set really holds. */
static void rollback(lbk_reconciler *r)
{
    while (r->njournal > 0) {
        op *o = &r->journal[--r->njournal];
        rec *x = o->r;
        if (o->kind == OP_MOD) {
            lbk_set_set_weight(r->set, x->slot, o->old_weight);
            lbk_set_set_priority(r->set, x->slot, o->old_priority);
            x->weight = o->old_weight;
            x->priority = o->old_priority;
        } else if (o->kind == OP_ADD) {
            /* defensive: removing the slot this apply added cannot fail */
            if (lbk_set_remove(r->set, x->slot) == 0) {
                table_delete(r, x);
                r->grave[r->ngrave++] = x; /* reserved: removes + adds */
            }
        } else { /* OP_REMOVE: re-add; the old backend stays retired */
            lbk_backend *old = x->b;
            /* fails only if the set's allocator fails a second time in
             * the same apply (documented: the next apply converges) */
            if (set_add_rec(r, x) == 0) {
                grave_take(r, x);
                backend_drop(old);
                table_insert(r, x);
            }
        }
    }
}

/* ---- apply -------------------------------------------------------------- */

static void report_changes(lbk_reconciler *r, const action *act, size_t n,
                           lbk_reconcile_stats *s)
{
    lbk_change c;
    for (size_t i = 0; i < r->njournal; i++) { /* removes first */
        const op *o = &r->journal[i];
        if (o->kind != OP_REMOVE)
            continue;
        s->removed++;
        if (r->opts.on_change == NULL)
            continue;
        c = (lbk_change){LBK_CHANGE_REMOVE, o->r->ep.name,  o->r->ep.address,
                         o->r->ep.port,     o->old_weight,  o->old_priority,
                         o->old_weight,     o->old_priority};
        r->opts.on_change(r->opts.user, &c);
    }
    for (size_t i = 0; i < n; i++) {
        if (act[i].kind == ACT_KEEP)
            s->unchanged++;
        if (act[i].kind != ACT_MODIFY)
            continue;
        rec *x = act[i].cur;
        /* the first OP_MOD of x holds the values before this apply; the
         * loop always finds one (defensive end): every ACT_MODIFY ran
         * step_modify in execute()'s first pass */
        uint32_t ow = x->weight, opr = x->priority;
        for (size_t j = 0; j < r->njournal; j++) {
            if (r->journal[j].kind == OP_MOD && r->journal[j].r == x) {
                ow = r->journal[j].old_weight;
                opr = r->journal[j].old_priority;
                break;
            }
        }
        if (ow != x->weight)
            s->reweighted++;
        if (opr != x->priority)
            s->reprioritised++;
        if (r->opts.on_change == NULL)
            continue;
        c = (lbk_change){ow != x->weight ? LBK_CHANGE_WEIGHT
                                         : LBK_CHANGE_PRIORITY,
                         x->ep.name,
                         x->ep.address,
                         x->ep.port,
                         x->weight,
                         x->priority,
                         ow,
                         opr};
        r->opts.on_change(r->opts.user, &c);
    }
    for (size_t i = 0; i < r->njournal; i++) {
        const op *o = &r->journal[i];
        if (o->kind != OP_ADD)
            continue;
        s->added++;
        if (r->opts.on_change == NULL)
            continue;
        c = (lbk_change){LBK_CHANGE_ADD, o->r->ep.name, o->r->ep.address,
                         o->r->ep.port,  o->r->weight,  o->r->priority,
                         o->r->weight,   o->r->priority};
        r->opts.on_change(r->opts.user, &c);
    }
}

static void free_fresh(lbk_reconciler *r, action *act, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        lbk_free(&r->alloc, act[i].fresh);
        act[i].fresh = NULL;
    }
}

/* Diff instances against the managed backends (reads only).  Fills act[],
 * doomed[] and the counts; checks foreign names and the final total. */
static int diff(lbk_reconciler *r, const lbk_instance *in, action *act,
                size_t n, size_t *nadd, size_t *ndoomed)
{
    char buf[LBK_NAME_MAX + 1];
    uint64_t total = lbk_set_total_weight(r->set);
    *nadd = 0;
    *ndoomed = 0;
    r->round++;
    for (size_t i = 0; i < n; i++) {
        const char *name = inst_name(&in[i], buf);
        rec *x = table_find(r, name, lbk_hash(name, strlen(name), 0));
        uint32_t slot;
        bool in_set = lbk_set_find(r->set, name, &slot) == 0;
        act[i].cur = x;
        act[i].fresh = NULL;
        if (x == NULL) {
            RETURN_ERROR_IF(in_set, LBK_EEXIST); /* not ours */
            act[i].kind = ACT_ADD;
            total += in[i].weight;
            (*nadd)++;
            continue;
        }
        x->stamp = r->round;
        if (x->ep.port != in[i].port ||
            strcmp(x->ep.address, in[i].address) != 0) {
            act[i].kind = ACT_REPLACE;
            total += (uint64_t)in[i].weight - x->weight;
            (*nadd)++;
            r->doomed[(*ndoomed)++] = x;
        } else if (x->weight != in[i].weight || x->priority != in[i].priority) {
            act[i].kind = ACT_MODIFY;
            total += (uint64_t)in[i].weight - x->weight;
        } else {
            act[i].kind = ACT_KEEP;
        }
    }
    for (uint32_t i = 0; i < r->table_cap; i++) {
        rec *x = r->table[i];
        if (x != NULL && x->stamp != r->round) {
            r->doomed[(*ndoomed)++] = x;
            total -= x->weight;
        }
    }
    RETURN_ERROR_IF(total > UINT32_MAX, LBK_EOVERFLOW);
    return 0;
}

static int execute(lbk_reconciler *r, const lbk_instance *in, action *act,
                   size_t n, size_t ndoomed)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) /* lower weights, priorities */
        if (act[i].kind == ACT_MODIFY)
            rc = step_modify(r, act[i].cur,
                             in[i].weight < act[i].cur->weight
                                 ? in[i].weight
                                 : act[i].cur->weight,
                             in[i].priority);
    for (size_t i = 0; i < ndoomed && rc == 0; i++)
        rc = step_remove(r, r->doomed[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (act[i].kind == ACT_ADD || act[i].kind == ACT_REPLACE) {
            rc = step_add(r, act[i].fresh);
            if (rc == 0) {
                act[i].cur = act[i].fresh; /* now owned by the table */
                act[i].fresh = NULL;
            }
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) /* raise weights */
        if (act[i].kind == ACT_MODIFY && in[i].weight > act[i].cur->weight)
            rc = step_modify(r, act[i].cur, in[i].weight, act[i].cur->priority);
    if (rc == 0 && r->njournal > 0)
        rc = lbk_set_publish(r->set);
    return rc;
}

/* Records whose backend another writer removed from the set: move them to
 * the graveyard (bookkeeping only; the set already lost them). */
static int forget_lost(lbk_reconciler *r)
{
    size_t lost = 0;
    for (uint32_t i = 0; i < r->table_cap; i++) {
        rec *x = r->table[i];
        if (x != NULL && lbk_set_backend(r->set, x->slot) != x->b)
            r->doomed[lost++] = x;
    }
    if (lost == 0)
        return 0;
    FORWARD_IF_ERROR(grave_reserve(r, lost));
    for (size_t i = 0; i < lost; i++) {
        table_delete(r, r->doomed[i]);
        r->grave[r->ngrave++] = r->doomed[i];
    }
    return 0;
}

static int reconcile_to(lbk_reconciler *r, const lbk_instance *in, size_t n,
                        lbk_reconcile_stats *s)
{
    grave_sweep(r);
    size_t cap_doomed = (size_t)r->managed + n;
    FORWARD_IF_ERROR(scratch_reserve(r, (void **)&r->act, &r->act_cap,
                                     n > 0 ? n : 1, sizeof(action)));
    FORWARD_IF_ERROR(scratch_reserve(r, (void **)&r->doomed, &r->doomed_cap,
                                     cap_doomed > 0 ? cap_doomed : 1,
                                     sizeof(rec *)));
    FORWARD_IF_ERROR(forget_lost(r));
    action *act = r->act;
    size_t nadd, ndoomed;
    FORWARD_IF_ERROR(diff(r, in, act, n, &nadd, &ndoomed));
    /* Reserve every allocation of ours before the first change. */
    FORWARD_IF_ERROR(scratch_reserve(r, (void **)&r->journal, &r->journal_cap,
                                     2 * n + ndoomed + 1, sizeof(op)));
    FORWARD_IF_ERROR(grave_reserve(r, ndoomed + nadd));
    FORWARD_IF_ERROR(table_reserve(r, (uint32_t)nadd));
    char buf[LBK_NAME_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        if (act[i].kind != ACT_ADD && act[i].kind != ACT_REPLACE)
            continue;
        act[i].fresh = rec_new(r, &in[i], inst_name(&in[i], buf));
        if (act[i].fresh == NULL) {
            free_fresh(r, act, i);
            return LBK_ENOMEM;
        }
    }
    r->njournal = 0;
    int rc = execute(r, in, act, n, ndoomed);
    if (rc < 0) {
        rollback(r);
        free_fresh(r, act, n);
        return rc;
    }
    memset(s, 0, sizeof(*s));
    report_changes(r, act, n, s);
    if (r->njournal > 0)
        r->st.publishes++;
    r->njournal = 0;
    return 0;
}

static int note_failure(lbk_reconciler *r, int error, uint64_t now_ns,
                        lbk_reconcile_stats *stats_out)
{
    r->st.failures++;
    r->st.last_error = error;
    if (r->opts.stale_limit_ns == 0 || !r->st.have_good || r->st.stale ||
        now_ns - r->st.last_good_ns < r->opts.stale_limit_ns ||
        now_ns < r->st.last_good_ns)
        return 0;
    lbk_reconcile_stats s;
    FORWARD_IF_ERROR(reconcile_to(r, NULL, 0, &s));
    r->st.stale = true;
    if (stats_out != NULL)
        *stats_out = s;
    return 1;
}

int lbk_reconciler_fail(lbk_reconciler *r, int error, uint64_t now_ns,
                        lbk_reconcile_stats *stats_out)
{
    RETURN_ERROR_IF(r == NULL || error >= 0, LBK_EINVAL);
    return note_failure(r, error, now_ns, stats_out);
}

int lbk_reconciler_apply(lbk_reconciler *r, const lbk_instance *instances,
                         size_t n, uint64_t now_ns,
                         lbk_reconcile_stats *stats_out)
{
    RETURN_ERROR_IF(r == NULL, LBK_EINVAL);
    int rc = 0;
    if (instances == NULL && n > 0)
        rc = LBK_EINVAL;
    else if (n > LBK_RECONCILE_MAX_INSTANCES)
        rc = LBK_ERANGE;
    else if (n == 0 && r->opts.empty_is_failure)
        rc = LBK_ENOENT;
    if (rc == 0 && n > 0) {
        size_t cap = pow2_at_least(2 * n);
        rc = scratch_reserve(r, (void **)&r->dup, &r->dup_cap, cap,
                             sizeof(uint32_t));
        if (rc == LBK_ENOMEM)
            return rc; /* our memory, not the source's fault */
        memset(r->dup, 0, cap * sizeof(uint32_t));
        rc = validate(instances, n, r->dup, cap, NULL);
    }
    if (rc < 0) {
        note_failure(r, rc, now_ns, NULL);
        return rc;
    }
    lbk_reconcile_stats s;
    rc = reconcile_to(r, instances, n, &s);
    if (rc < 0) {
        if (rc == LBK_EEXIST || rc == LBK_EOVERFLOW)
            note_failure(r, rc, now_ns, NULL);
        return rc;
    }
    r->st.applies++;
    r->st.have_good = true;
    r->st.stale = false;
    r->st.failures = 0;
    r->st.last_good_ns = now_ns;
    if (stats_out != NULL)
        *stats_out = s;
    return 0;
}
