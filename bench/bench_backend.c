/*
 * bench/bench_backend.c - the backend set: build, health flip, begin/end.
 *
 * Baselines: a plain array of {strdup'd name, weight} for the build; a
 * plain (non-atomic) store for a health flip; a plain ++/-- pair for
 * begin/end.  The ratios show what the set's guarantees (unique-name index,
 * cache-line-separated atomics) cost over the bare minimum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/backend.h"

struct build_ctx {
    uint32_t n;
    char (*names)[32];
};

static void build_set(void *p, uint64_t iters)
{
    struct build_ctx *c = p;
    for (uint64_t it = 0; it < iters; it++) {
        lbk_set *set;
        if (lbk_set_create(NULL, &set) < 0)
            abort();
        for (uint32_t i = 0; i < c->n; i++) {
            uint32_t slot;
            if (lbk_set_add(set, c->names[i], 1 + i % 7, NULL, &slot) < 0)
                abort();
        }
        if (lbk_set_publish(set) < 0)
            abort();
        lbk_set_free(set);
    }
}

struct plain_backend {
    char *name;
    uint32_t weight;
    uint32_t health;
    uint32_t in_flight;
};

static void build_plain(void *p, uint64_t iters)
{
    struct build_ctx *c = p;
    for (uint64_t it = 0; it < iters; it++) {
        struct plain_backend *a = malloc(c->n * sizeof(*a));
        for (uint32_t i = 0; i < c->n; i++) {
            a[i].name = strdup(c->names[i]);
            a[i].weight = 1 + i % 7;
        }
        bench_sink((uint64_t)(uintptr_t)a[c->n - 1].name);
        for (uint32_t i = 0; i < c->n; i++)
            free(a[i].name);
        free(a);
    }
}

struct live_ctx {
    lbk_backend *b;
    struct plain_backend *plain;
};

static void health_flip(void *p, uint64_t iters)
{
    struct live_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        lbk_backend_set_health(c->b, (i & 1) ? LBK_HEALTH_DOWN : LBK_HEALTH_UP);
}

static void health_flip_plain(void *p, uint64_t iters)
{
    struct live_ctx *c = p;
    volatile uint32_t *h = &c->plain->health;
    for (uint64_t i = 0; i < iters; i++)
        *h = (i & 1) ? 2 : 0;
}

static void begin_end(void *p, uint64_t iters)
{
    struct live_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend_begin(c->b);
        lbk_backend_end(c->b);
    }
}

static void begin_end_plain(void *p, uint64_t iters)
{
    struct live_ctx *c = p;
    volatile uint32_t *f = &c->plain->in_flight;
    for (uint64_t i = 0; i < iters; i++) {
        *f = *f + 1;
        *f = *f - 1;
    }
}

void bench_backend(lbk_bench *h);
void bench_backend(lbk_bench *h)
{
    if (bench_wants(h, "backend/build")) {
        for (int s = 0; s < 4; s++) {
            struct build_ctx c = {bench_sizes[s], NULL};
            c.names = malloc(c.n * sizeof(*c.names));
            for (uint32_t i = 0; i < c.n; i++)
                snprintf(c.names[i], sizeof c.names[i], "10.%u.%u.%u:8080",
                         (i >> 16) & 255, (i >> 8) & 255, i & 255);
            double ns = bench_measure(h, build_set, &c);
            double base = bench_measure(h, build_plain, &c);
            /* bytes per backend: backend struct on its own lines + index */
            double bytes = (double)((sizeof(lbk_backend) + 24 + 63) / 64 * 64 +
                                    64 + 3 * sizeof(void *));
            bench_report(h, "backend/build", c.n, ns / c.n, base / c.n, bytes,
                         NULL);
            free(c.names);
        }
    }
    lbk_set *set;
    uint32_t slot;
    if (lbk_set_create(NULL, &set) < 0 ||
        lbk_set_add(set, "a:1", 1, NULL, &slot) < 0)
        abort();
    struct plain_backend plain = {0};
    struct live_ctx c = {lbk_set_backend(set, slot), &plain};
    if (bench_wants(h, "backend/health_flip"))
        bench_report(h, "backend/health_flip", 1,
                     bench_measure(h, health_flip, &c),
                     bench_measure(h, health_flip_plain, &c), NAN, NULL);
    if (bench_wants(h, "backend/begin_end")) {
        bench_report(h, "backend/begin_end", 1, bench_measure(h, begin_end, &c),
                     bench_measure(h, begin_end_plain, &c), NAN, NULL);
        bench_report(h, "backend/begin_end_2threads", 1,
                     bench_measure_threads(h, 2, begin_end, &c), NAN, NAN,
                     NULL);
    }
    lbk_set_free(set);
}
