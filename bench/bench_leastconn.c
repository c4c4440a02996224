/*
 * bench/bench_leastconn.c - least-connections: pick, pick+release (1 and 2
 * threads), build, bytes per backend.
 *
 * Workload: N backends of weights 1..4; each thread keeps a window of 64
 * requests in flight (pick a new one, release the oldest), so loads are
 * mixed and ties common, as in a proxy whose concurrency is far below N.
 * "pick" alone lets counts grow (nothing released while timing).
 *
 * Baseline (textbook, written here): a linear scan over a compact plain
 * array {in_flight, weight, up}, choosing the first minimum of
 * in_flight/weight by cross-multiplication, then in_flight++ (release:
 * in_flight--).  Single-threaded and non-atomic, so it is the cheapest
 * possible O(N) scan - the ratio is against the algorithm, not against
 * atomics or cache-line padding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/leastconn.h"

#define WINDOW 64

struct lc_ctx {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_leastconn *lc;
    uint32_t n;
    /* baseline */
    struct plain {
        uint32_t in_flight;
        uint32_t weight;
        uint32_t up;
    } * plain;
};

/* ---- lbkit ------------------------------------------------------------ */

static void lc_pick_only(void *p, uint64_t iters)
{
    struct lc_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_leastconn_pick(c->lc, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void lc_pick_release(void *p, uint64_t iters)
{
    struct lc_ctx *c = p;
    lbk_backend *ring[WINDOW] = {0};
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend **slot = &ring[i % WINDOW];
        if (*slot != NULL && lbk_leastconn_release(c->lc, *slot) < 0)
            abort();
        if (lbk_leastconn_pick(c->lc, slot) < 0)
            abort();
    }
    for (unsigned k = 0; k < WINDOW; k++)
        if (ring[k] != NULL)
            lbk_leastconn_release(c->lc, ring[k]);
}

/* ---- the textbook baseline --------------------------------------------- */

static uint32_t plain_pick(struct lc_ctx *c)
{
    uint32_t best = UINT32_MAX;
    uint64_t bnf = 0, bw = 1;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct plain *s = &c->plain[i];
        if (!s->up || s->weight == 0)
            continue;
        if (best == UINT32_MAX ||
            (uint64_t)s->in_flight * bw < bnf * s->weight) {
            best = i;
            bnf = s->in_flight;
            bw = s->weight;
        }
    }
    if (best == UINT32_MAX)
        abort();
    c->plain[best].in_flight++;
    return best;
}

static void plain_pick_only(void *p, uint64_t iters)
{
    struct lc_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        bench_sink(plain_pick(c));
}

static void plain_pick_release(void *p, uint64_t iters)
{
    struct lc_ctx *c = p;
    uint32_t ring[WINDOW];
    memset(ring, 0xff, sizeof ring);
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t *slot = &ring[i % WINDOW];
        if (*slot != UINT32_MAX)
            c->plain[*slot].in_flight--;
        *slot = plain_pick(c);
    }
    for (unsigned k = 0; k < WINDOW; k++)
        if (ring[k] != UINT32_MAX)
            c->plain[ring[k]].in_flight--;
}

/* ---- build and bytes ----------------------------------------------------- */

static _Atomic size_t counted_bytes;

static void *count_alloc(void *user, size_t size)
{
    (void)user;
    atomic_fetch_add(&counted_bytes, size);
    return malloc(size);
}

static void count_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

static void lc_build(void *p, uint64_t iters)
{
    struct lc_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_leastconn *lc;
        if (lbk_leastconn_build(c->snap, NULL, NULL, &lc) < 0)
            abort();
        lbk_leastconn_free(lc);
    }
}

static void reset_counts(struct lc_ctx *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        atomic_store(&c->snap->e[i].b->in_flight, 0);
        c->plain[i].in_flight = 0;
    }
    lbk_leastconn_refresh(c->lc);
}

void bench_leastconn(lbk_bench *h);
void bench_leastconn(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        struct lc_ctx c = {0};
        c.n = bench_sizes[s];
        if (lbk_set_create(NULL, &c.set) < 0)
            abort();
        c.plain = calloc(c.n, sizeof(*c.plain));
        for (uint32_t i = 0; i < c.n; i++) {
            char name[32];
            uint32_t slot;
            snprintf(name, sizeof name, "10.%u.%u.%u:80", (i >> 16) & 255,
                     (i >> 8) & 255, i & 255);
            if (lbk_set_add(c.set, name, 1 + i % 4, NULL, &slot) < 0)
                abort();
            c.plain[i] = (struct plain){0, 1 + i % 4, 1};
        }
        if (lbk_set_snapshot(c.set, &c.snap) < 0)
            abort();
        lbk_allocator counting = {count_alloc, count_free, NULL};
        atomic_store(&counted_bytes, 0);
        if (lbk_leastconn_build(c.snap, NULL, &counting, &c.lc) < 0)
            abort();
        double bytes = (double)atomic_load(&counted_bytes) / c.n;

        if (bench_wants(h, "leastconn/pick_release")) {
            double ns = bench_measure(h, lc_pick_release, &c);
            double base = bench_measure(h, plain_pick_release, &c);
            bench_report(h, "leastconn/pick_release", c.n, ns, base, bytes,
                         NULL);
            reset_counts(&c);
        }
        if (bench_wants(h, "leastconn/pick_release_2threads")) {
            double ns = bench_measure_threads(h, 2, lc_pick_release, &c);
            bench_report(h, "leastconn/pick_release_2threads", c.n, ns, NAN,
                         bytes, NULL);
            reset_counts(&c);
        }
        if (bench_wants(h, "leastconn/pick")) {
            double ns = bench_measure(h, lc_pick_only, &c);
            reset_counts(&c);
            double base = bench_measure(h, plain_pick_only, &c);
            reset_counts(&c);
            bench_report(h, "leastconn/pick", c.n, ns, base, bytes, NULL);
        }
        if (bench_wants(h, "leastconn/pick_2threads")) {
            double ns = bench_measure_threads(h, 2, lc_pick_only, &c);
            reset_counts(&c);
            bench_report(h, "leastconn/pick_2threads", c.n, ns, NAN, bytes,
                         NULL);
        }
        if (bench_wants(h, "leastconn/build")) {
            double ns = bench_measure(h, lc_build, &c);
            char extra[64];
            snprintf(extra, sizeof extra, "\"ns_per_backend\": %.2f", ns / c.n);
            bench_report(h, "leastconn/build", c.n, ns, NAN, bytes, extra);
        }
        lbk_leastconn_free(c.lc);
        lbk_snapshot_release(c.snap);
        lbk_set_free(c.set);
        free(c.plain);
    }
}
