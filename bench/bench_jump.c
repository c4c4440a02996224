/*
 * bench/bench_jump.c - jump consistent hash: the pure function, the wrapper
 * lookup with and without hashing a 16-byte key, build time, bytes per
 * backend, balance (peak-to-mean and sigma/mu over 10^4 sampled keys per
 * backend) and disruption when a middle backend is removed (a hole, handled
 * by the re-hash rule of jump.h).
 *
 * Baseline: bench/baseline_ring.h (sorted ring, 160 points per backend,
 * binary search), measured in the same run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_ring.h"
#include "bench.h"
#include "internal.h"
#include "lbkit/jump.h"

#define NKEYS 4096u /* power of two */
#define KEYLEN 16u

struct ctx {
    lbk_jump *j;
    const lbk_snapshot *snap;
    baseline_ring ring;
    uint32_t n;
    uint8_t (*keys)[KEYLEN];
    uint64_t *hashes;
};

static void pure(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t b = 0;
        (void)lbk_jump_hash(c->hashes[i & (NKEYS - 1)], c->n, &b);
        acc += b;
    }
    bench_sink(acc);
}

static void lookup_key(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_jump_lookup(c->j, c->keys[i & (NKEYS - 1)], KEYLEN, &b) == 0)
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
        if (lbk_jump_lookup_hash(c->j, c->hashes[i & (NKEYS - 1)], &b) == 0)
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

static void build_jump(void *p, uint64_t iters)
{
    struct ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_jump *j;
        if (lbk_jump_build(c->snap, NULL, NULL, &j) < 0)
            abort();
        lbk_jump_free(j);
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

/* The baseline's build at N = 16384 takes about a second: time three and
 * keep the median. */
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

static lbk_set *make_set(uint32_t n)
{
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "shard-%u", i);
        if (lbk_set_add(set, name, 1, NULL, &slot) < 0)
            abort();
    }
    return set;
}

/* Sampled balance: 10^4 keys per bucket through the pure function. */
static void balance(uint32_t n, uint32_t per_bucket, double *ptm, double *cv)
{
    uint32_t *count = calloc(n, sizeof(*count));
    uint64_t s = 7, keys = (uint64_t)n * per_bucket;
    for (uint64_t i = 0; i < keys; i++) {
        uint32_t b = 0;
        (void)lbk_jump_hash(lbk_rng_local_next(&s), n, &b);
        count[b]++;
    }
    double mean = (double)per_bucket, peak = 0, var = 0;
    for (uint32_t i = 0; i < n; i++) {
        peak = count[i] > peak ? count[i] : peak;
        var += (count[i] - mean) * (count[i] - mean);
    }
    *ptm = peak / mean;
    *cv = sqrt(var / n) / mean;
    free(count);
}

static double disruption(lbk_set *set, const lbk_jump *before, uint32_t n,
                         uint32_t *keys_out)
{
    if (lbk_set_remove(set, n / 2) < 0)
        abort();
    const lbk_snapshot *snap;
    lbk_jump *after;
    if (lbk_set_snapshot(set, &snap) < 0 ||
        lbk_jump_build(snap, NULL, NULL, &after) < 0)
        abort();
    uint32_t keys = n * 100 > 200000 ? n * 100 : 200000, moved = 0;
    uint64_t s = 1;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t hv = lbk_rng_local_next(&s);
        lbk_backend *a, *b;
        if (lbk_jump_lookup_hash(before, hv, &a) < 0 ||
            lbk_jump_lookup_hash(after, hv, &b) < 0)
            abort();
        moved += a != b;
    }
    lbk_jump_free(after);
    lbk_snapshot_release(snap);
    *keys_out = keys;
    return (double)moved / keys;
}

void bench_jump(lbk_bench *h);
void bench_jump(lbk_bench *h)
{
    if (!bench_wants(h, "jump/lookup_key16") &&
        !bench_wants(h, "jump/lookup_hash") &&
        !bench_wants(h, "jump/hash_pure") && !bench_wants(h, "jump/build"))
        return;
    for (int si = 0; si < 4; si++) {
        struct ctx c = {.n = bench_sizes[si]};
        lbk_set *set = make_set(c.n);
        if (lbk_set_snapshot(set, &c.snap) < 0 ||
            lbk_jump_build(c.snap, NULL, NULL, &c.j) < 0 ||
            baseline_ring_build(&c.ring, c.n) < 0)
            abort();
        c.keys = malloc(NKEYS * sizeof(*c.keys));
        c.hashes = malloc(NKEYS * sizeof(*c.hashes));
        uint64_t s = 42;
        for (uint32_t i = 0; i < NKEYS; i++) {
            for (uint32_t k = 0; k < KEYLEN; k += 8) {
                uint64_t r = lbk_rng_local_next(&s);
                memcpy(&c.keys[i][k], &r, 8);
            }
            c.hashes[i] = lbk_hash(c.keys[i], KEYLEN, 0);
        }
        /* Slot table (8 bytes per slot) and header, per backend. */
        double per = (double)(c.n * sizeof(void *) + 64) / c.n;
        uint32_t per_bucket = bench_quick(h) && c.n > 1024 ? 1000 : 10000;
        double ptm, cv;
        balance(c.n, per_bucket, &ptm, &cv);
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"peak_to_mean\": %.4f, \"cv\": %.4f, "
                 "\"keys_per_backend\": %u, \"sampling_cv\": %.4f, "
                 "\"baseline_bytes\": %.0f",
                 ptm, cv, per_bucket, 1 / sqrt((double)per_bucket),
                 baseline_ring_bytes_per_backend());
        if (bench_wants(h, "jump/lookup_key16"))
            bench_report(h, "jump/lookup_key16", c.n,
                         bench_measure(h, lookup_key, &c),
                         bench_measure(h, base_key, &c), per, extra);
        double base_hash_ns = bench_measure(h, base_hash, &c);
        if (bench_wants(h, "jump/lookup_hash"))
            bench_report(h, "jump/lookup_hash", c.n,
                         bench_measure(h, lookup_hash, &c), base_hash_ns, per,
                         NULL);
        if (bench_wants(h, "jump/hash_pure"))
            bench_report(h, "jump/hash_pure", c.n, bench_measure(h, pure, &c),
                         base_hash_ns, 0, NULL);
        uint32_t keys;
        double moved = disruption(set, c.j, c.n, &keys);
        snprintf(extra, sizeof extra,
                 "\"unit\": \"ns per build\", \"disruption\": %.5f, "
                 "\"disruption_optimum\": %.5f, \"disruption_keys\": %u",
                 moved, 1.0 / c.n, keys);
        if (bench_wants(h, "jump/build"))
            bench_report(h, "jump/build", c.n,
                         time_builds(h, build_jump, &c, c.n),
                         time_builds(h, build_base, &c, c.n), NAN, extra);
        free(c.keys);
        free(c.hashes);
        baseline_ring_free(&c.ring);
        lbk_jump_free(c.j);
        lbk_snapshot_release(c.snap);
        lbk_set_free(set);
    }
}
