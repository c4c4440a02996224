/*
 * bench/bench_p2c.c - power of d choices: pick (least request, a general
 * bias, peak-EWMA), pick + begin/end, 1 and 2 threads, build, bytes.
 *
 * Workload: N backends of weights 1..4 with 0..3 requests in flight each
 * (fixed while timing) and a latency history for peak-EWMA; the clock
 * advances 1 us per pick so the EWMA decay is computed every time.
 *
 * Baseline (textbook, written here): two rand() draws modulo N over a plain
 * in-flight array, keep the one with fewer in flight - the classic P2C
 * snippet, with glibc's rand() (locked) and a division per draw.
 *
 * Two-thread cases: lbk_p2c_pick shares the picker's atomic generator (one
 * contended cache line); lbk_p2c_pick_bits (also used by
 * p2c/peak_ewma_2threads) takes bits from a per-thread SplitMix64 and shares
 * nothing written.  p2c/pick_begin_end adds the caller's
 * lbk_backend_begin/end pair (two atomic operations) to each pick.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/p2c.h"

struct p2c_ctx {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_p2c *p;
    uint32_t n;
    uint32_t *plain_in_flight;
    _Atomic uint64_t clock; /* per-thread copies advance it in bulk */
};

static void p2c_pick_loop(void *arg, uint64_t iters)
{
    struct p2c_ctx *c = arg;
    uint64_t now = atomic_fetch_add(&c->clock, iters * 1000);
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_p2c_pick(c->p, now += 1000, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void p2c_pick_bits_loop(void *arg, uint64_t iters)
{
    struct p2c_ctx *c = arg;
    uint64_t now = atomic_fetch_add(&c->clock, iters * 1000);
    uint64_t rs = now ^ (uint64_t)(uintptr_t)&rs; /* per thread */
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_p2c_pick_bits(c->p, now += 1000, lbk_rng_local_next(&rs), &b) <
            0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void p2c_pick_begin_end(void *arg, uint64_t iters)
{
    struct p2c_ctx *c = arg;
    uint64_t now = atomic_fetch_add(&c->clock, iters * 1000);
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_p2c_pick(c->p, now += 1000, &b) < 0 ||
            lbk_backend_begin(b) < 0 || lbk_backend_end(b) < 0)
            abort();
    }
}

/* The textbook snippet. */
static void textbook_p2c(void *arg, uint64_t iters)
{
    struct p2c_ctx *c = arg;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t a = (uint32_t)rand() % c->n, b = (uint32_t)rand() % c->n;
        uint32_t win = c->plain_in_flight[a] <= c->plain_in_flight[b] ? a : b;
        bench_sink(win);
    }
}

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

static void p2c_build_loop(void *arg, uint64_t iters)
{
    struct p2c_ctx *c = arg;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_p2c *p;
        if (lbk_p2c_build(c->snap, NULL, NULL, &p) < 0)
            abort();
        lbk_p2c_free(p);
    }
}

static void rebuild(struct p2c_ctx *c, lbk_p2c_mode mode, double bias)
{
    lbk_p2c_free(c->p);
    lbk_p2c_options o;
    lbk_p2c_options_init(&o);
    o.mode = mode;
    o.bias = bias;
    o.seed = 12345;
    if (lbk_p2c_build(c->snap, &o, NULL, &c->p) < 0)
        abort();
}

void bench_p2c(lbk_bench *h);
void bench_p2c(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        struct p2c_ctx c = {0};
        c.n = bench_sizes[s];
        if (lbk_set_create(NULL, &c.set) < 0)
            abort();
        c.plain_in_flight = calloc(c.n, sizeof(uint32_t));
        for (uint32_t i = 0; i < c.n; i++) {
            char name[32];
            uint32_t slot;
            snprintf(name, sizeof name, "10.%u.%u.%u:80", (i >> 16) & 255,
                     (i >> 8) & 255, i & 255);
            if (lbk_set_add(c.set, name, 1 + i % 4, NULL, &slot) < 0)
                abort();
            lbk_backend *b = lbk_set_backend(c.set, slot);
            for (uint32_t k = 0; k < (i * 7) % 4; k++)
                lbk_backend_begin(b);
            c.plain_in_flight[i] = (i * 7) % 4;
            lbk_backend_record_latency(b, 1000000 + (i * 7919) % 500000, 0);
        }
        if (lbk_set_snapshot(c.set, &c.snap) < 0)
            abort();
        lbk_allocator counting = {count_alloc, count_free, NULL};
        atomic_store(&counted_bytes, 0);
        if (lbk_p2c_build(c.snap, NULL, &counting, &c.p) < 0)
            abort();
        double bytes = (double)atomic_load(&counted_bytes) / c.n;
        char extra[64];
        snprintf(extra, sizeof extra, "\"object_bytes\": %zu",
                 (size_t)atomic_load(&counted_bytes));
        srand(1);

        rebuild(&c, LBK_P2C_LEAST_REQUEST, 1.0);
        double base = NAN;
        if (bench_wants(h, "p2c/least_request")) {
            base = bench_measure(h, textbook_p2c, &c);
            bench_report(h, "p2c/least_request", c.n,
                         bench_measure(h, p2c_pick_loop, &c), base, bytes,
                         extra);
        }
        if (bench_wants(h, "p2c/least_request_2threads"))
            bench_report(h, "p2c/least_request_2threads", c.n,
                         bench_measure_threads(h, 2, p2c_pick_loop, &c), NAN,
                         bytes, NULL);
        if (bench_wants(h, "p2c/pick_bits"))
            bench_report(h, "p2c/pick_bits", c.n,
                         bench_measure(h, p2c_pick_bits_loop, &c), base, bytes,
                         NULL);
        if (bench_wants(h, "p2c/pick_bits_2threads"))
            bench_report(h, "p2c/pick_bits_2threads", c.n,
                         bench_measure_threads(h, 2, p2c_pick_bits_loop, &c),
                         NAN, bytes, NULL);
        if (bench_wants(h, "p2c/pick_begin_end"))
            bench_report(h, "p2c/pick_begin_end", c.n,
                         bench_measure(h, p2c_pick_begin_end, &c), NAN, bytes,
                         NULL);
        if (bench_wants(h, "p2c/bias_1.5")) {
            rebuild(&c, LBK_P2C_LEAST_REQUEST, 1.5);
            bench_report(h, "p2c/bias_1.5", c.n,
                         bench_measure(h, p2c_pick_loop, &c), base, bytes,
                         NULL);
        }
        if (bench_wants(h, "p2c/peak_ewma")) {
            rebuild(&c, LBK_P2C_PEAK_EWMA, 1.0);
            bench_report(h, "p2c/peak_ewma", c.n,
                         bench_measure(h, p2c_pick_loop, &c), base, bytes,
                         NULL);
        }
        if (bench_wants(h, "p2c/peak_ewma_2threads")) {
            rebuild(&c, LBK_P2C_PEAK_EWMA, 1.0);
            bench_report(h, "p2c/peak_ewma_2threads", c.n,
                         bench_measure_threads(h, 2, p2c_pick_bits_loop, &c),
                         NAN, bytes, NULL);
        }
        if (bench_wants(h, "p2c/build"))
            bench_report(h, "p2c/build", c.n,
                         bench_measure(h, p2c_build_loop, &c), NAN, bytes,
                         NULL);
        lbk_p2c_free(c.p);
        lbk_snapshot_release(c.snap);
        lbk_set_free(c.set);
        free(c.plain_in_flight);
    }
}
