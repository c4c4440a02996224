/*
 * bench/bench_maglev.c - Maglev: lookup with and without hashing a 16-byte
 * key, build time, bytes per backend, balance (peak-to-mean of exact table
 * ownership) and disruption when one backend is removed.
 *
 * Baseline: bench/baseline_ring.h, a sorted ring of 160 points per backend
 * searched by plain binary search, measured in the same run.  M is the
 * paper's 65537 up to N = 1024 (the build target is N = 1024,
 * M = 65537); at N = 16384 it is the smallest prime >= 100 N, as the paper
 * advises for balance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_ring.h"
#include "bench.h"
#include "internal.h"
#include "lbkit/maglev.h"

#define NKEYS 4096u /* power of two */
#define KEYLEN 16u

struct ctx {
    lbk_maglev *mg;
    const lbk_snapshot *snap;
    lbk_maglev_options opts;
    baseline_ring ring;
    uint32_t n;
    uint8_t (*keys)[KEYLEN];
    uint64_t *hashes;
};

static void lookup_key(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_maglev_lookup(c->mg, c->keys[i & (NKEYS - 1)], KEYLEN, &b) == 0)
            acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

static void lookup_hash(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_maglev_lookup_hash(c->mg, c->hashes[i & (NKEYS - 1)], &b) == 0)
            acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

static void base_key(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += baseline_ring_lookup(
            &c->ring, lbk_hash(c->keys[i & (NKEYS - 1)], KEYLEN, 0));
    bench_sink(acc);
}

static void base_hash(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += baseline_ring_lookup(&c->ring, c->hashes[i & (NKEYS - 1)]);
    bench_sink(acc);
}

static void build_maglev(void *p, uint64_t iters)
{
    struct ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_maglev *mg;
        if (lbk_maglev_build(c->snap, &c->opts, NULL, &mg) < 0)
            abort();
        lbk_maglev_free(mg);
    }
}

static void build_base(void *p, uint64_t iters)
{
    struct ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        baseline_ring r;
        if (baseline_ring_build(&r, c->n) < 0)
            abort();
        baseline_ring_free(&r);
    }
}

/* Builds at large N take 0.1 - 1 s: time three and keep the median rather
 * than bench_measure's warm-up and nine repetitions. */
static double time_builds(lbk_bench *h, void (*fn)(void *, uint64_t), void *ctx,
                          uint32_t n)
{
    if (n < 16384)
        return bench_measure(h, fn, ctx);
    double t[3];
    for (int r = 0; r < 3; r++) {
        double t0 = bench_now_ns();
        fn(ctx, 1);
        t[r] = bench_now_ns() - t0;
    }
    double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
    return t[2] < lo ? lo : t[2] > hi ? hi : t[2];
}

static bool prime(uint32_t x)
{
    for (uint32_t d = 2; (uint64_t)d * d <= x; d++)
        if (x % d == 0)
            return false;
    return x >= 2;
}

static uint32_t table_size_for(uint32_t n)
{
    if (n <= 1024)
        return LBK_MAGLEV_DEFAULT_TABLE_SIZE;
    uint32_t m = 100 * n;
    while (!prime(m))
        m++;
    return m;
}

static lbk_set *make_set(uint32_t n)
{
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.%u.%u.%u:8080", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
        if (lbk_set_add(set, name, 1, NULL, &slot) < 0)
            abort();
    }
    return set;
}

/* Fraction of sampled keys whose backend changes when backend n/2 is
 * removed. */
static double disruption(lbk_set *set, const lbk_maglev *before,
                         const lbk_maglev_options *o, uint32_t n,
                         uint32_t *keys_out)
{
    if (lbk_set_remove(set, n / 2) < 0)
        abort();
    const lbk_snapshot *snap;
    lbk_maglev *after;
    if (lbk_set_snapshot(set, &snap) < 0 ||
        lbk_maglev_build(snap, o, NULL, &after) < 0)
        abort();
    uint32_t keys = n * 100 > 200000 ? n * 100 : 200000, moved = 0;
    uint64_t s = 1;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t h = lbk_rng_local_next(&s);
        lbk_backend *a, *b;
        if (lbk_maglev_lookup_hash(before, h, &a) < 0 ||
            lbk_maglev_lookup_hash(after, h, &b) < 0)
            abort();
        moved += a != b;
    }
    lbk_maglev_free(after);
    lbk_snapshot_release(snap);
    *keys_out = keys;
    return (double)moved / keys;
}

void bench_maglev(lbk_bench *h);
void bench_maglev(lbk_bench *h)
{
    if (!bench_wants(h, "maglev/lookup_key16") &&
        !bench_wants(h, "maglev/lookup_hash") &&
        !bench_wants(h, "maglev/build"))
        return;
    for (int si = 0; si < 4; si++) {
        struct ctx c = {.n = bench_sizes[si]};
        lbk_set *set = make_set(c.n);
        if (lbk_set_snapshot(set, &c.snap) < 0)
            abort();
        lbk_maglev_options_init(&c.opts);
        c.opts.table_size = table_size_for(c.n);
        if (lbk_maglev_build(c.snap, &c.opts, NULL, &c.mg) < 0 ||
            baseline_ring_build(&c.ring, c.n) < 0)
            abort();
        c.keys = malloc(NKEYS * sizeof(*c.keys));
        c.hashes = malloc(NKEYS * sizeof(*c.hashes));
        uint64_t s = 42;
        for (uint32_t i = 0; i < NKEYS; i++) {
            for (uint32_t j = 0; j < KEYLEN; j += 8) {
                uint64_t r = lbk_rng_local_next(&s);
                memcpy(&c.keys[i][j], &r, 8);
            }
            c.hashes[i] = lbk_hash(c.keys[i], KEYLEN, 0);
        }
        uint32_t m = c.opts.table_size;
        double per = (double)lbk_maglev_memory_bytes(c.mg) / c.n;
        uint32_t *own = malloc(c.n * sizeof(*own));
        if (lbk_maglev_ownership(c.mg, own, c.n) < 0)
            abort();
        uint32_t peak = 0;
        for (uint32_t i = 0; i < c.n; i++)
            peak = own[i] > peak ? own[i] : peak;
        double ptm = peak / ((double)m / c.n);
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"table_size\": %u, \"peak_to_mean\": %.4f, "
                 "\"baseline_bytes\": %.0f",
                 m, ptm, baseline_ring_bytes_per_backend());
        if (bench_wants(h, "maglev/lookup_key16"))
            bench_report(h, "maglev/lookup_key16", c.n,
                         bench_measure(h, lookup_key, &c),
                         bench_measure(h, base_key, &c), per, extra);
        if (bench_wants(h, "maglev/lookup_hash"))
            bench_report(h, "maglev/lookup_hash", c.n,
                         bench_measure(h, lookup_hash, &c),
                         bench_measure(h, base_hash, &c), per, NULL);
        /* ns per whole build; disruption rides along in extra. */
        uint32_t keys;
        double moved = disruption(set, c.mg, &c.opts, c.n, &keys);
        snprintf(extra, sizeof extra,
                 "\"unit\": \"ns per build\", \"table_size\": %u, "
                 "\"disruption\": %.5f, \"disruption_optimum\": %.5f, "
                 "\"disruption_keys\": %u",
                 m, moved, 1.0 / c.n, keys);
        if (bench_wants(h, "maglev/build"))
            bench_report(h, "maglev/build", c.n,
                         time_builds(h, build_maglev, &c, c.n),
                         time_builds(h, build_base, &c, c.n), NAN, extra);
        free(own);
        free(c.keys);
        free(c.hashes);
        baseline_ring_free(&c.ring);
        lbk_maglev_free(c.mg);
        lbk_snapshot_release(c.snap);
        lbk_set_free(set);
    }
}
