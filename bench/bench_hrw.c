/*
 * bench/bench_hrw.c - weighted rendezvous hashing: lookup with and without
 * hashing a 16-byte key (equal weights: the integer path; mixed weights: one
 * log() per backend), top-3, build time, bytes per backend, balance
 * (peak-to-mean over 10^4 sampled keys per backend where that is
 * affordable: N <= 64, since each lookup is O(N)) and disruption when one
 * backend is removed.
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
#include "lbkit/hrw.h"

#define NKEYS 4096u /* power of two */
#define KEYLEN 16u

struct ctx {
    lbk_hrw *hw;
    const lbk_snapshot *snap;
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
        if (lbk_hrw_lookup(c->hw, c->keys[i & (NKEYS - 1)], KEYLEN, &b) == 0)
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
        if (lbk_hrw_lookup_hash(c->hw, c->hashes[i & (NKEYS - 1)], &b) == 0)
            acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

static void top3(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b[3];
        uint32_t cnt;
        if (lbk_hrw_lookup_top_hash(c->hw, c->hashes[i & (NKEYS - 1)], 3, b,
                                    &cnt) == 0)
            acc += (uintptr_t)b[cnt - 1];
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

static void build_hrw(void *p, uint64_t iters)
{
    struct ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_hrw *hw;
        if (lbk_hrw_build(c->snap, NULL, NULL, &hw) < 0)
            abort();
        lbk_hrw_free(hw);
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

static lbk_set *make_set(uint32_t n, bool weighted)
{
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "cache-%u:11211", i);
        if (lbk_set_add(set, name, weighted ? 1 + i % 4 : 1, NULL, &slot) < 0)
            abort();
    }
    return set;
}

/* Sampled balance against each backend's weight share. */
static double balance(const lbk_hrw *hw, const lbk_snapshot *snap, uint32_t n,
                      uint32_t per_backend)
{
    uint32_t *count = calloc(n, sizeof(*count));
    uint64_t s = 3, keys = (uint64_t)n * per_backend;
    for (uint64_t i = 0; i < keys; i++) {
        lbk_backend *b;
        if (lbk_hrw_lookup_hash(hw, lbk_rng_local_next(&s), &b) < 0)
            abort();
        count[lbk_backend_slot(b)]++;
    }
    double peak = 0, total = lbk_snapshot_total_weight(snap);
    for (uint32_t i = 0; i < n; i++) {
        double expect = (double)keys * lbk_snapshot_weight(snap, i) / total;
        peak = count[i] / expect > peak ? count[i] / expect : peak;
    }
    free(count);
    return peak;
}

/* Keys moved when backend n/2 is removed, sampled with about 4e6 score
 * evaluations; between_out: moved keys that the removed backend did not
 * own (0 for HRW). */
static double disruption(lbk_set *set, const lbk_hrw *before, uint32_t n,
                         uint32_t *keys_out, uint32_t *between_out)
{
    lbk_backend *gone = lbk_set_backend(set, n / 2);
    if (lbk_set_remove(set, n / 2) < 0)
        abort();
    const lbk_snapshot *snap;
    lbk_hrw *after;
    if (lbk_set_snapshot(set, &snap) < 0 ||
        lbk_hrw_build(snap, NULL, NULL, &after) < 0)
        abort();
    uint32_t keys = 4000000 / n, moved = 0, between = 0;
    keys = keys > 200000 ? 200000 : keys;
    uint64_t s = 1;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t hv = lbk_rng_local_next(&s);
        lbk_backend *a, *b;
        if (lbk_hrw_lookup_hash(before, hv, &a) < 0 ||
            lbk_hrw_lookup_hash(after, hv, &b) < 0)
            abort();
        moved += a != b;
        between += a != b && a != gone;
    }
    lbk_hrw_free(after);
    lbk_snapshot_release(snap);
    *keys_out = keys;
    *between_out = between;
    return (double)moved / keys;
}

static bool wants_any(const lbk_bench *h, bool weighted)
{
    static const char *const names[2][4] = {
        {"hrw/lookup_key16", "hrw/lookup_hash", "hrw/top3_hash", "hrw/build"},
        {"hrw/weighted_lookup_key16", "hrw/weighted_lookup_hash", "", ""}};
    for (int i = 0; i < 4; i++)
        if (names[weighted][i][0] != '\0' && bench_wants(h, names[weighted][i]))
            return true;
    return false;
}

static void run(lbk_bench *h, uint32_t n, bool weighted)
{
    if (!wants_any(h, weighted))
        return;
    struct ctx c = {.n = n};
    lbk_set *set = make_set(c.n, weighted);
    if (lbk_set_snapshot(set, &c.snap) < 0 ||
        lbk_hrw_build(c.snap, NULL, NULL, &c.hw) < 0 ||
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
    /* 24-byte entry per backend plus the header. */
    double per = (double)(24u * c.n + 64) / c.n;
    char extra[256] = "";
    if (c.n <= 64)
        snprintf(extra, sizeof extra,
                 "\"peak_to_mean\": %.4f, \"keys_per_backend\": 10000, "
                 "\"baseline_bytes\": %.0f",
                 balance(c.hw, c.snap, c.n, 10000),
                 baseline_ring_bytes_per_backend());
    const char *pre = weighted ? "hrw/weighted_" : "hrw/";
    char name[64];
    snprintf(name, sizeof name, "%slookup_key16", pre);
    if (bench_wants(h, name))
        bench_report(h, name, c.n, bench_measure(h, lookup_key, &c),
                     bench_measure(h, base_key, &c), per, extra);
    double base_hash_ns = bench_measure(h, base_hash, &c);
    snprintf(name, sizeof name, "%slookup_hash", pre);
    if (bench_wants(h, name))
        bench_report(h, name, c.n, bench_measure(h, lookup_hash, &c),
                     base_hash_ns, per, NULL);
    if (!weighted && bench_wants(h, "hrw/top3_hash"))
        bench_report(h, "hrw/top3_hash", c.n, bench_measure(h, top3, &c),
                     base_hash_ns, per, NULL);
    if (!weighted && bench_wants(h, "hrw/build")) {
        uint32_t keys, between;
        double moved = disruption(set, c.hw, c.n, &keys, &between);
        snprintf(extra, sizeof extra,
                 "\"unit\": \"ns per build\", \"disruption\": %.5f, "
                 "\"disruption_optimum\": %.5f, \"disruption_keys\": %u, "
                 "\"moved_between_survivors\": %u",
                 moved, 1.0 / c.n, keys, between);
        bench_report(h, "hrw/build", c.n, time_builds(h, build_hrw, &c, c.n),
                     time_builds(h, build_base, &c, c.n), NAN, extra);
    }
    free(c.keys);
    free(c.hashes);
    baseline_ring_free(&c.ring);
    lbk_hrw_free(c.hw);
    lbk_snapshot_release(c.snap);
    lbk_set_free(set);
}

void bench_hrw(lbk_bench *h);
void bench_hrw(lbk_bench *h)
{
    for (int si = 0; si < 4; si++) {
        run(h, bench_sizes[si], false);
        run(h, bench_sizes[si], true);
    }
}
