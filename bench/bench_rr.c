/*
 * bench/bench_rr.c - round-robin: pick (1 and 2 threads), pick with half
 * and with most backends down, build, bytes per backend.
 *
 * Baseline (textbook, written here): a plain array of "up" flags and a
 * plain (non-atomic) cursor; a pick advances the cursor and walks past
 * backends that are down, one by one.  Single-threaded, so it is the
 * cheapest rotation there is while everything is up, and O(gap) when many
 * are down - the case rr.h's bound is about.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/rr.h"

struct rr_ctx {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_rr *rr;
    uint32_t n;
    uint32_t cursor; /* baseline */
    uint8_t *up;
};

static void rr_ctx_init(struct rr_ctx *c, uint32_t n)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    if (lbk_set_create(NULL, &c->set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.%u.%u.%u:80", i >> 16, (i >> 8) & 255,
                 i & 255);
        if (lbk_set_add(c->set, name, 1, NULL, &slot) < 0)
            abort();
    }
    lbk_rr_options o;
    lbk_rr_options_init(&o);
    o.seed = 1;
    if (lbk_set_snapshot(c->set, &c->snap) < 0 ||
        lbk_rr_build(c->snap, &o, NULL, &c->rr) < 0)
        abort();
    c->up = malloc(n);
    memset(c->up, 1, n);
}

static void rr_ctx_free(struct rr_ctx *c)
{
    lbk_rr_free(c->rr);
    lbk_snapshot_release(c->snap);
    lbk_set_free(c->set);
    free(c->up);
}

/* All but one backend in `every` down (at least one up). */
static void set_down(struct rr_ctx *c, uint32_t every)
{
    for (uint32_t i = 0; i < c->n; i++) {
        bool up = i % every == 5 % c->n % every;
        c->up[i] = up;
        if (lbk_backend_set_health(lbk_snapshot_backend(c->snap, i),
                                   up ? LBK_HEALTH_UP : LBK_HEALTH_DOWN) < 0)
            abort();
    }
}

static void rr_pick_loop(void *p, uint64_t iters)
{
    struct rr_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_rr_pick(c->rr, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void textbook_rr(void *p, uint64_t iters)
{
    struct rr_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t k;
        for (k = 0; k < c->n; k++) {
            uint32_t x = c->cursor;
            c->cursor = x + 1 == c->n ? 0 : x + 1;
            if (c->up[x]) {
                bench_sink(x);
                break;
            }
        }
        if (k == c->n)
            abort();
    }
}

struct build_ctx {
    const lbk_snapshot *snap;
};

static void rr_build_loop(void *p, uint64_t iters)
{
    struct build_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_rr *rr;
        if (lbk_rr_build(c->snap, NULL, NULL, &rr) < 0)
            abort();
        lbk_rr_free(rr);
    }
}

void bench_rr(lbk_bench *h);
void bench_rr(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        struct rr_ctx c;
        rr_ctx_init(&c, bench_sizes[s]);
        double bytes = (double)lbk_rr_footprint(c.rr) / c.n;
        if (bench_wants(h, "rr/pick")) {
            double base = bench_measure(h, textbook_rr, &c);
            bench_report(h, "rr/pick", c.n, bench_measure(h, rr_pick_loop, &c),
                         base, bytes, NULL);
            bench_report(h, "rr/pick_2threads", c.n,
                         bench_measure_threads(h, 2, rr_pick_loop, &c), NAN,
                         bytes, NULL);
        }
        if (bench_wants(h, "rr/build")) {
            struct build_ctx b = {c.snap};
            bench_report(h, "rr/build", c.n,
                         bench_measure(h, rr_build_loop, &b), NAN, bytes, NULL);
        }
        if (bench_wants(h, "rr/pick_half_down")) {
            set_down(&c, 2);
            double base = bench_measure(h, textbook_rr, &c);
            bench_report(h, "rr/pick_half_down", c.n,
                         bench_measure(h, rr_pick_loop, &c), base, bytes,
                         "\"up\": \"1 in 2\"");
        }
        if (bench_wants(h, "rr/pick_most_down")) {
            set_down(&c, 64);
            double base = bench_measure(h, textbook_rr, &c);
            bench_report(h, "rr/pick_most_down", c.n,
                         bench_measure(h, rr_pick_loop, &c), base, bytes,
                         "\"up\": \"1 in 64\"");
        }
        rr_ctx_free(&c);
    }
}
