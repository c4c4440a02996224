/*
 * bench/bench_chord.c - Chord: simulated lookups, bulk builds, bytes per
 * node.
 *
 * Baselines: for a lookup, a plain binary search for the key's successor
 * over the sorted ids (the answer a central registry would give in one
 * step); for a build, sorting the ids alone.  The ratios show what routing
 * through O(log N) nodes' own tables, and building m fingers per node,
 * cost over knowing everything in one place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "lbkit/chord.h"

#define NKEYS 4096 /* power of two */

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

struct lookup_ctx {
    lbk_chord *c;
    uint64_t *sorted; /* baseline: sorted ids */
    uint32_t n;
    uint64_t keys[NKEYS];
    uint32_t from[NKEYS];
};

static void chord_lookups(void *p, uint64_t iters)
{
    struct lookup_ctx *x = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_chord_result res;
        size_t k = i & (NKEYS - 1);
        if (lbk_chord_lookup(x->c, x->from[k], x->keys[k], NULL, 0, &res) < 0)
            abort();
        acc += res.owner;
    }
    bench_sink(acc);
}

/* The textbook answer: first id >= key, wrapping to the first. */
static void registry_lookups(void *p, uint64_t iters)
{
    struct lookup_ctx *x = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t key = x->keys[i & (NKEYS - 1)];
        uint32_t lo = 0, hi = x->n;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (x->sorted[mid] < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        acc += lo == x->n ? 0 : lo;
    }
    bench_sink(acc);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t *random_ids(uint32_t n, uint64_t seed)
{
    uint64_t *ids = malloc((size_t)n * sizeof(*ids));
    if (ids == NULL)
        abort();
    for (uint32_t i = 0; i < n; i++)
        ids[i] = mix(&seed); /* distinct with overwhelming odds */
    return ids;
}

static void bench_lookup(lbk_bench *h, uint32_t n)
{
    struct lookup_ctx *x = malloc(sizeof(*x));
    if (x == NULL)
        abort();
    uint64_t *ids = random_ids(n, 1234 + n);
    if (lbk_chord_create(NULL, ids, n, NULL, &x->c) < 0)
        abort();
    x->n = n;
    x->sorted = ids;
    qsort(ids, n, sizeof(*ids), cmp_u64);
    uint64_t s = 99;
    for (int k = 0; k < NKEYS; k++) {
        x->keys[k] = mix(&s);
        x->from[k] = (uint32_t)(mix(&s) % n);
    }
    double ns = bench_measure(h, chord_lookups, x);
    double base = bench_measure(h, registry_lookups, x);
    double sum = 0; /* mean hops, for the row */
    for (int k = 0; k < NKEYS; k++) {
        lbk_chord_result res;
        if (lbk_chord_lookup(x->c, x->from[k], x->keys[k], NULL, 0, &res) < 0)
            abort();
        sum += res.hops;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "\"mean_hops\": %.3f", sum / NKEYS);
    bench_report(h, "chord/lookup", n, ns, base,
                 (double)lbk_chord_bytes(x->c) / n, extra);
    lbk_chord_free(x->c);
    free(ids);
    free(x);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of reps builds (and of reps sorts), timed one by one: the 10^6
 * build takes long enough that bench_measure's calibration would waste
 * time. */
static void bench_build(lbk_bench *h, uint32_t n)
{
    int reps = bench_quick(h) ? 1 : (n >= 1000000 ? 3 : n >= 100000 ? 5 : 9);
    uint64_t *ids = random_ids(n, 77 + n);
    uint64_t *tmp = malloc((size_t)n * sizeof(*tmp));
    double t[9], b[9], bytes = 0;
    if (tmp == NULL)
        abort();
    for (int r = 0; r < reps; r++) {
        lbk_chord *c;
        double t0 = bench_now_ns();
        if (lbk_chord_create(NULL, ids, n, NULL, &c) < 0)
            abort();
        t[r] = bench_now_ns() - t0;
        bytes = (double)lbk_chord_bytes(c) / n;
        lbk_chord_free(c);
        memcpy(tmp, ids, (size_t)n * sizeof(*tmp));
        t0 = bench_now_ns();
        qsort(tmp, n, sizeof(*tmp), cmp_u64);
        b[r] = bench_now_ns() - t0;
        bench_sink(tmp[n / 2]);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    qsort(b, (size_t)reps, sizeof(double), cmp_double);
    char extra[64];
    snprintf(extra, sizeof extra, "\"build_ms\": %.2f", t[reps / 2] / 1e6);
    /* per node built, so the rows compare across N */
    bench_report(h, "chord/build", n, t[reps / 2] / n, b[reps / 2] / n, bytes,
                 extra);
    free(tmp);
    free(ids);
}

void bench_chord(lbk_bench *h);
void bench_chord(lbk_bench *h)
{
    if (bench_wants(h, "chord/lookup"))
        for (int s = 0; s < 4; s++)
            bench_lookup(h, bench_sizes[s]);
    if (bench_wants(h, "chord/build")) {
        const uint32_t sizes[] = {10000, 100000, 1000000};
        for (int s = 0; s < 3; s++)
            bench_build(h, sizes[s]);
    }
}
