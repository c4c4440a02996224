/*
 * bench/bench_srv.c - discovery: RFC 2782 select and order, the priority
 * tiers picker, and the reconciler applying a one-instance change.
 *
 * Baselines (textbook, written here):
 *   srv/select     weighted random over the lowest priority's records with
 *                  r in [0, sum) and a linear scan (no weight-0 rule);
 *   srv/order      sort by priority (qsort), then a weighted shuffle per
 *                  priority by Efraimidis-Spirakis keys u^(1/w) (qsort);
 *   tiers/pick     weighted random over all eligible backends by a linear
 *                  scan (what a picker without tiers does);
 *   reconcile/apply  build a fresh set from the whole report and publish
 *                  it (what a client without a reconciler does).
 * Records: priorities i % 4 (select), i % 64 (order); weights 0..99.
 * Tiers: half the backends at priority 0, 30% of those down (spill-over).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/reconcile.h"
#include "lbkit/srv.h"
#include "lbkit/tiers.h"

struct srv_ctx {
    lbk_srv_record *rec;
    size_t n;
    size_t *order;
    uint64_t rs;
    struct es_key *keys;
};

struct es_key {
    uint32_t prio;
    double key;
    size_t idx;
};

static void srv_select_loop(void *p, uint64_t iters)
{
    struct srv_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        size_t idx;
        if (lbk_srv_select(c->rec, c->n, lbk_rng_local_next(&c->rs), &idx) < 0)
            abort();
        bench_sink(idx);
    }
}

static void textbook_select(void *p, uint64_t iters)
{
    struct srv_ctx *c = p;
    for (uint64_t it = 0; it < iters; it++) {
        uint16_t best = UINT16_MAX;
        for (size_t i = 0; i < c->n; i++)
            if (c->rec[i].priority < best)
                best = c->rec[i].priority;
        uint64_t sum = 0;
        for (size_t i = 0; i < c->n; i++)
            if (c->rec[i].priority == best)
                sum += c->rec[i].weight;
        uint64_t r = lbk_rng_local_next(&c->rs) % (sum ? sum : 1);
        size_t pick = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (c->rec[i].priority != best)
                continue;
            if (r < c->rec[i].weight) {
                pick = i;
                break;
            }
            r -= c->rec[i].weight;
        }
        bench_sink(pick);
    }
}

static void srv_order_loop(void *p, uint64_t iters)
{
    struct srv_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        if (lbk_srv_order(c->rec, c->n, c->rs++, c->order) < 0)
            abort();
        bench_sink(c->order[0]);
    }
}

static int cmp_es(const void *a, const void *b)
{
    const struct es_key *x = a, *y = b;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    return x->key > y->key ? -1 : x->key < y->key ? 1 : 0;
}

static void textbook_order(void *p, uint64_t iters)
{
    struct srv_ctx *c = p;
    for (uint64_t it = 0; it < iters; it++) {
        for (size_t i = 0; i < c->n; i++) {
            double u = lbk_unit_double(lbk_rng_local_next(&c->rs));
            double w = c->rec[i].weight ? c->rec[i].weight : 1e-9;
            c->keys[i] =
                (struct es_key){c->rec[i].priority, pow(u, 1.0 / w), i};
        }
        qsort(c->keys, c->n, sizeof(*c->keys), cmp_es);
        bench_sink(c->keys[0].idx);
    }
}

static void bench_srv_cases(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        struct srv_ctx c = {0};
        c.n = bench_sizes[s];
        c.rec = calloc(c.n, sizeof(*c.rec));
        c.order = calloc(c.n, sizeof(*c.order));
        c.keys = calloc(c.n, sizeof(*c.keys));
        c.rs = 42;
        for (size_t i = 0; i < c.n; i++)
            c.rec[i] = (lbk_srv_record){"t", 80, (uint16_t)(i % 4),
                                        (uint16_t)(i * 37 % 100), 60};
        if (bench_wants(h, "srv/select"))
            bench_report(h, "srv/select", c.n,
                         bench_measure(h, srv_select_loop, &c),
                         bench_measure(h, textbook_select, &c), NAN, NULL);
        for (size_t i = 0; i < c.n; i++)
            c.rec[i].priority = (uint16_t)(i % 64);
        if (bench_wants(h, "srv/order"))
            bench_report(h, "srv/order", c.n,
                         bench_measure(h, srv_order_loop, &c),
                         bench_measure(h, textbook_order, &c),
                         (double)sizeof(size_t), NULL);
        free(c.rec);
        free(c.order);
        free(c.keys);
    }
}

/* ---- tiers ---------------------------------------------------------------
 */

struct tiers_ctx {
    lbk_set *set;
    lbk_tiers *t;
    const lbk_snapshot *snap;
    uint64_t rs;
};

static void tiers_pick_loop(void *p, uint64_t iters)
{
    struct tiers_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_tiers_pick(c->t, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void textbook_weighted_scan(void *p, uint64_t iters)
{
    struct tiers_ctx *c = p;
    const lbk_snapshot *s = c->snap;
    for (uint64_t it = 0; it < iters; it++) {
        uint64_t sum = 0;
        for (uint32_t i = 0; i < s->n; i++)
            if (lbk_backend_eligible(s->e[i].b))
                sum += s->e[i].weight;
        uint64_t r = lbk_rng_local_next(&c->rs) % sum;
        lbk_backend *pick = NULL;
        for (uint32_t i = 0; i < s->n && pick == NULL; i++) {
            if (!lbk_backend_eligible(s->e[i].b))
                continue;
            if (r < s->e[i].weight)
                pick = s->e[i].b;
            else
                r -= s->e[i].weight;
        }
        bench_sink((uint64_t)(uintptr_t)pick);
    }
}

static void bench_tiers_cases(lbk_bench *h)
{
    if (!bench_wants(h, "tiers/pick"))
        return;
    for (int s = 0; s < 4; s++) {
        struct tiers_ctx c = {0};
        uint32_t n = bench_sizes[s];
        if (lbk_set_create(NULL, &c.set) < 0)
            abort();
        for (uint32_t i = 0; i < n; i++) {
            char name[32];
            uint32_t slot;
            snprintf(name, sizeof name, "10.%u.%u.%u:80", i >> 16,
                     (i >> 8) & 255, i & 255);
            if (lbk_set_add(c.set, name, 1 + i % 10, NULL, &slot) < 0 ||
                lbk_set_set_priority(c.set, slot, i < n / 2 ? 0 : 1) < 0)
                abort();
            if (i < n / 2 && i % 10 < 3)
                lbk_backend_set_health(lbk_set_backend(c.set, slot),
                                       LBK_HEALTH_DOWN);
        }
        if (lbk_set_publish(c.set) < 0 || lbk_set_acquire(c.set, &c.snap) < 0)
            abort();
        lbk_tiers_options o;
        lbk_tiers_options_init(&o);
        o.seed = 7;
        if (lbk_tiers_build(c.snap, &o, NULL, &c.t) < 0)
            abort();
        c.rs = 9;
        double bytes = (double)(sizeof(lbk_backend *) + 8);
        bench_report(h, "tiers/pick", n, bench_measure(h, tiers_pick_loop, &c),
                     bench_measure(h, textbook_weighted_scan, &c), bytes, NULL);
        lbk_tiers_free(c.t);
        lbk_snapshot_release(c.snap);
        lbk_set_free(c.set);
    }
}

/* ---- reconcile ---------------------------------------------------------- */

struct rec_ctx {
    lbk_set *set;
    lbk_reconciler *r;
    lbk_instance *a, *b; /* two reports differing in one instance */
    char (*addr)[32];
    uint32_t n;
    uint64_t flip;
};

static void reconcile_loop(void *p, uint64_t iters)
{
    struct rec_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        const lbk_instance *rep = (c->flip++ & 1) ? c->b : c->a;
        if (lbk_reconciler_apply(c->r, rep, c->n, i, NULL) < 0)
            abort();
    }
}

static void textbook_rebuild(void *p, uint64_t iters)
{
    struct rec_ctx *c = p;
    for (uint64_t it = 0; it < iters; it++) {
        const lbk_instance *rep = (c->flip++ & 1) ? c->b : c->a;
        lbk_set *set;
        if (lbk_set_create(NULL, &set) < 0)
            abort();
        char name[300];
        for (uint32_t i = 0; i < c->n; i++) {
            uint32_t slot;
            if (lbk_instance_format_name(&rep[i], name, sizeof name) < 0 ||
                lbk_set_add(set, name, rep[i].weight, NULL, &slot) < 0)
                abort();
        }
        if (lbk_set_publish(set) < 0)
            abort();
        lbk_set_free(set);
    }
}

static void bench_reconcile_cases(lbk_bench *h)
{
    if (!bench_wants(h, "reconcile/apply"))
        return;
    for (int s = 0; s < 4; s++) {
        struct rec_ctx c = {0};
        c.n = bench_sizes[s];
        c.a = calloc(c.n, sizeof(*c.a));
        c.b = calloc(c.n, sizeof(*c.b));
        c.addr = calloc(c.n + 1, sizeof(*c.addr));
        for (uint32_t i = 0; i <= c.n; i++)
            snprintf(c.addr[i], sizeof c.addr[i], "10.%u.%u.%u", i >> 16,
                     (i >> 8) & 255, i & 255);
        for (uint32_t i = 0; i < c.n; i++) {
            c.a[i] = (lbk_instance){NULL, c.addr[i], 8080, 1 + i % 5, 0};
            c.b[i] = c.a[i];
        }
        c.b[c.n / 2].address = c.addr[c.n]; /* one instance moves */
        lbk_reconcile_options o;
        lbk_reconcile_options_init(&o);
        if (lbk_set_create(NULL, &c.set) < 0 ||
            lbk_reconciler_create(c.set, &o, NULL, &c.r) < 0 ||
            lbk_reconciler_apply(c.r, c.a, c.n, 0, NULL) < 0)
            abort();
        bench_report(h, "reconcile/apply", c.n,
                     bench_measure(h, reconcile_loop, &c),
                     bench_measure(h, textbook_rebuild, &c), NAN, NULL);
        lbk_reconciler_free(c.r);
        lbk_set_free(c.set);
        free(c.a);
        free(c.b);
        free(c.addr);
    }
}

void bench_srv(lbk_bench *h);
void bench_srv(lbk_bench *h)
{
    bench_srv_cases(h);
    bench_tiers_cases(h);
    bench_reconcile_cases(h);
}
