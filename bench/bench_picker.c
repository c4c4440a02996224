/*
 * bench/bench_picker.c - the generic entry point: pick + release through
 * lbk_picker for every policy (1 and 2 threads), and rebuild (snapshot +
 * build + publish).
 *
 * Baseline: the policy's own pick with no accounting is reported by its
 * module's bench; here the baseline column is the cheapest thing a proxy
 * could do instead - a plain non-atomic round-robin cursor with a plain
 * in-flight counter ++/-- - so the ratio shows what the generic path
 * (acquire, policy pick, begin, end, release) costs over nothing at all.
 * Weights are 1..4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/picker.h"

struct pk_ctx {
    lbk_set *set;
    lbk_picker *picker;
    uint32_t n;
    uint32_t cursor; /* baseline */
    uint32_t *in_flight;
};

static void pick_release_loop(void *p, uint64_t iters)
{
    struct pk_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_pick pk;
        if (lbk_picker_pick(c->picker, i, &pk) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)pk.backend);
        if (lbk_picker_release(c->picker, &pk, NULL) < 0)
            abort();
    }
}

static void plain_loop(void *p, uint64_t iters)
{
    struct pk_ctx *c = p;
    volatile uint32_t *f = c->in_flight;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t x = c->cursor;
        c->cursor = x + 1 == c->n ? 0 : x + 1;
        f[x] = f[x] + 1;
        bench_sink(x);
        f[x] = f[x] - 1;
    }
}

static void rebuild_loop(void *p, uint64_t iters)
{
    struct pk_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        if (lbk_picker_rebuild(c->picker) < 0)
            abort();
}

void bench_picker(lbk_bench *h);
void bench_picker(lbk_bench *h)
{
    for (uint32_t pol = 0; pol < lbk_policy_count(); pol++) {
        const char *name = lbk_policy_name((lbk_policy)pol);
        if (!lbk_policy_available((lbk_policy)pol))
            continue;
        char pr[96], pr2[96], rb[96];
        snprintf(pr, sizeof pr, "picker/%s/pick_release", name);
        snprintf(pr2, sizeof pr2, "picker/%s/pick_release_2threads", name);
        snprintf(rb, sizeof rb, "picker/%s/rebuild", name);
        bool want_pr = bench_wants(h, pr), want_rb = bench_wants(h, rb);
        if (!want_pr && !want_rb)
            continue;
        for (int s = 0; s < 4; s++) {
            struct pk_ctx c = {0};
            c.n = bench_sizes[s];
            c.in_flight = calloc(c.n, sizeof(*c.in_flight));
            if (lbk_set_create(NULL, &c.set) < 0)
                abort();
            for (uint32_t i = 0; i < c.n; i++) {
                char bn[32];
                uint32_t slot;
                snprintf(bn, sizeof bn, "10.%u.%u.%u:80", i >> 16,
                         (i >> 8) & 255, i & 255);
                if (lbk_set_add(c.set, bn, 1 + i % 4, NULL, &slot) < 0)
                    abort();
            }
            lbk_picker_options o;
            lbk_picker_options_init(&o);
            o.policy = name;
            o.seed = 1;
            if (lbk_picker_create(c.set, &o, NULL, &c.picker) < 0)
                abort();
            if (want_pr) {
                double base = bench_measure(h, plain_loop, &c);
                bench_report(h, pr, c.n,
                             bench_measure(h, pick_release_loop, &c), base, NAN,
                             NULL);
                bench_report(h, pr2, c.n,
                             bench_measure_threads(h, 2, pick_release_loop, &c),
                             NAN, NAN, NULL);
            }
            if (want_rb)
                bench_report(h, rb, c.n, bench_measure(h, rebuild_loop, &c),
                             NAN, NAN, NULL);
            lbk_picker_free(c.picker);
            lbk_set_free(c.set);
            free(c.in_flight);
        }
    }
}
