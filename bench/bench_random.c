/*
 * bench/bench_random.c - weighted random (alias method): pick (1 and 2
 * threads), build, bytes per backend.
 *
 * Baseline (textbook, written here): prefix sums of the weights and a
 * binary search for a uniform draw in [0, W), with a plain (non-atomic)
 * SplitMix64 generator: O(log N) per pick and the usual way weighted
 * random is written.  Weights are 1..10.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/random.h"

struct rnd_ctx {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_random *rnd;
    uint32_t n;
    uint64_t *prefix; /* baseline: prefix[i] = w_0 + ... + w_i */
    uint64_t rs;
};

static void rnd_pick_loop(void *p, uint64_t iters)
{
    struct rnd_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_random_pick(c->rnd, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void textbook_random(void *p, uint64_t iters)
{
    struct rnd_ctx *c = p;
    uint64_t total = c->prefix[c->n - 1];
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t u = lbk_bounded64(lbk_rng_local_next(&c->rs), total);
        uint32_t lo = 0, hi = c->n - 1; /* first prefix > u */
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (c->prefix[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        bench_sink(lo);
    }
}

static void rnd_build_loop(void *p, uint64_t iters)
{
    struct rnd_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_random *r;
        if (lbk_random_build(c->snap, NULL, NULL, &r) < 0)
            abort();
        lbk_random_free(r);
    }
}

void bench_random(lbk_bench *h);
void bench_random(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        struct rnd_ctx c = {0};
        c.n = bench_sizes[s];
        c.rs = 7;
        if (lbk_set_create(NULL, &c.set) < 0)
            abort();
        c.prefix = malloc(c.n * sizeof(*c.prefix));
        uint64_t sum = 0;
        for (uint32_t i = 0; i < c.n; i++) {
            char name[32];
            uint32_t slot, w = 1 + i % 10;
            snprintf(name, sizeof name, "10.%u.%u.%u:80", i >> 16,
                     (i >> 8) & 255, i & 255);
            if (lbk_set_add(c.set, name, w, NULL, &slot) < 0)
                abort();
            sum += w;
            c.prefix[i] = sum;
        }
        lbk_random_options o;
        lbk_random_options_init(&o);
        o.seed = 1;
        if (lbk_set_snapshot(c.set, &c.snap) < 0 ||
            lbk_random_build(c.snap, &o, NULL, &c.rnd) < 0)
            abort();
        double bytes = (double)lbk_random_footprint(c.rnd) / c.n;
        if (bench_wants(h, "random/pick")) {
            double base = bench_measure(h, textbook_random, &c);
            bench_report(h, "random/pick", c.n,
                         bench_measure(h, rnd_pick_loop, &c), base, bytes,
                         NULL);
            bench_report(h, "random/pick_2threads", c.n,
                         bench_measure_threads(h, 2, rnd_pick_loop, &c), NAN,
                         bytes, NULL);
        }
        if (bench_wants(h, "random/build"))
            bench_report(h, "random/build", c.n,
                         bench_measure(h, rnd_build_loop, &c), NAN, bytes,
                         NULL);
        lbk_random_free(c.rnd);
        lbk_snapshot_release(c.snap);
        lbk_set_free(c.set);
        free(c.prefix);
    }
}
