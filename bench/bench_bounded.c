/*
 * bench/bench_bounded.c - bounded-load consistent hashing: one acquire plus
 * one release per operation, in a steady state of 4 requests in flight per
 * backend, keys drawn from 16 N ids with a strong skew towards a few hot
 * ones, so that home backends fill up and the walk past full backends is
 * part of the cost.
 *
 * Baseline (textbook, here in bench/): the plain ring lookup of the same key
 * and a non-atomic ++/-- of a per-backend counter, i.e. consistent hashing
 * without the bound.  Extra columns: the peak load against the capacity
 * ceil(c m / n) at the end of a run, and the fraction of requests that did
 * not go to their ring home.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/bounded.h"

#define NKEYS 65536u

struct bd_ctx {
    lbk_bounded *bd;
    const lbk_ring *ring;
    const lbk_snapshot *snap;
    char (*keys)[24];
    uint8_t *lens;
    lbk_backend **window; /* requests in flight, oldest first */
    uint32_t nwindow, head;
    uint32_t *plain_load;
    uint64_t off_home, placed;
};

static void acquire_release(void *p, uint64_t iters)
{
    struct bd_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t k = (uint32_t)(i & (NKEYS - 1));
        lbk_bounded_release(c->bd, c->window[c->head]);
        if (lbk_bounded_acquire(c->bd, c->keys[k], c->lens[k],
                                &c->window[c->head]) < 0)
            abort();
        c->head = c->head + 1 == c->nwindow ? 0 : c->head + 1;
    }
}

static void plain_ring(void *p, uint64_t iters)
{
    struct bd_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t k = (uint32_t)(i & (NKEYS - 1));
        c->plain_load[lbk_backend_slot(c->window[c->head])]--;
        lbk_ring_lookup(c->ring, c->keys[k], c->lens[k], &c->window[c->head]);
        c->plain_load[lbk_backend_slot(c->window[c->head])]++;
        c->head = c->head + 1 == c->nwindow ? 0 : c->head + 1;
    }
}

/* Each thread keeps its own window of requests in flight. */
static void acquire_release_thread(void *p, uint64_t iters)
{
    struct bd_ctx *c = p;
    lbk_backend *w[64];
    uint64_t s = (uint64_t)(uintptr_t)w;
    for (int i = 0; i < 64; i++)
        if (lbk_bounded_acquire(c->bd, c->keys[i], c->lens[i], &w[i]) < 0)
            abort();
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t k = (uint32_t)(lbk_rng_local_next(&s) & (NKEYS - 1));
        lbk_bounded_release(c->bd, w[i & 63]);
        while (lbk_bounded_acquire(c->bd, c->keys[k], c->lens[k], &w[i & 63]) <
               0)
            ;
    }
    for (int i = 0; i < 64; i++)
        lbk_bounded_release(c->bd, w[i]);
}

void bench_bounded(lbk_bench *h);
void bench_bounded(lbk_bench *h)
{
    if (!bench_wants(h, "bounded/acquire_release"))
        return;
    struct bd_ctx c = {0};
    c.keys = malloc(NKEYS * sizeof(*c.keys));
    c.lens = malloc(NKEYS);
    for (int si = 0; si < 4; si++) {
        uint32_t n = bench_sizes[si];
        /* hot keys over 16 N ids: id = r mod (1 + r' mod 16 N), so small
         * ids are much more frequent (a Zipf-like skew) */
        uint64_t s = 3;
        for (uint32_t i = 0; i < NKEYS; i++) {
            uint64_t r = lbk_rng_local_next(&s);
            unsigned id =
                (unsigned)((r >> 24) % (1 + (r & 0xffffff) % (16 * n)));
            c.lens[i] = (uint8_t)snprintf(c.keys[i], sizeof c.keys[i],
                                          "session-%u", id);
        }
        lbk_set *set;
        if (lbk_set_create(NULL, &set) < 0)
            abort();
        for (uint32_t i = 0; i < n; i++) {
            char name[32];
            uint32_t slot;
            snprintf(name, sizeof name, "10.%u.%u.%u:80", (i >> 16) & 255,
                     (i >> 8) & 255, i & 255);
            if (lbk_set_add(set, name, 1, NULL, &slot) < 0)
                abort();
        }
        if (lbk_set_snapshot(set, &c.snap) < 0 ||
            lbk_bounded_build(c.snap, NULL, NULL, &c.bd) < 0)
            abort();
        c.ring = lbk_bounded_ring(c.bd);
        c.nwindow = 4 * n;
        c.head = 0;
        c.window = malloc(c.nwindow * sizeof(*c.window));
        c.plain_load = calloc(n, sizeof(uint32_t));
        for (uint32_t i = 0; i < c.nwindow; i++) {
            uint32_t k = i & (NKEYS - 1);
            if (lbk_bounded_acquire(c.bd, c.keys[k], c.lens[k], &c.window[i]) <
                0)
                abort();
        }
        double ns = bench_measure(h, acquire_release, &c);
        /* peak load against the capacity, and requests off their home */
        uint32_t peak = 0, off = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l;
            lbk_bounded_load(c.bd, lbk_snapshot_backend(c.snap, i), &l);
            peak = l > peak ? l : peak;
        }
        for (uint32_t k = 0; k < 4096; k++) {
            lbk_backend *home, *got;
            lbk_ring_lookup(c.ring, c.keys[k], c.lens[k], &home);
            lbk_bounded_release(c.bd, c.window[0]);
            lbk_bounded_acquire(c.bd, c.keys[k], c.lens[k], &got);
            c.window[0] = got;
            off += got != home;
        }
        uint32_t cap = lbk_bounded_capacity(c.bd, lbk_bounded_total(c.bd));
        /* the baseline reuses the window slots for its plain ring picks */
        for (uint32_t i = 0; i < c.nwindow; i++)
            c.plain_load[lbk_backend_slot(c.window[i])]++;
        double base = bench_measure(h, plain_ring, &c);
        char extra[160];
        snprintf(extra, sizeof extra,
                 "\"in_flight\": %u, \"peak_load\": %u, \"capacity\": %u, "
                 "\"off_home\": %.4f",
                 c.nwindow, peak, cap, off / 4096.0);
        double bytes = (double)(lbk_ring_memory_bytes(c.ring) + 4 * n) / n;
        bench_report(h, "bounded/acquire_release", n, ns, base, bytes, extra);
        /* two threads on one object (the bounded loads of the window
         * above stay in flight) */
        if (n == 1024) {
            double t2 = bench_measure_threads(h, 2, acquire_release_thread, &c);
            bench_report(h, "bounded/acquire_release_2threads", n, t2, NAN, NAN,
                         NULL);
        }
        free(c.plain_load);
        free(c.window);
        lbk_bounded_free(c.bd);
        lbk_snapshot_release(c.snap);
        lbk_set_free(set);
    }
    free(c.keys);
    free(c.lens);
}
