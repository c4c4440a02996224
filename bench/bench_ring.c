/*
 * bench/bench_ring.c - the consistent-hash ring: lookup with and without
 * hashing the key, build, bytes per backend, balance and disruption; and
 * lbkit's libmemcached mode against libmemcached's own
 * memcached_generate_hash() when the library is there.
 *
 * Baselines (textbook, here in bench/): the same points copied into a
 * plain sorted array of {hash, backend} searched by binary search (what
 * most ring implementations do), with the same key hash; for the build,
 * points hashed the same way and sorted by qsort().
 *
 * Extra columns: peak_to_mean and sigma_over_mu of exact arc ownership;
 * disruption = fraction of 200000 sampled keys that move when one backend
 * is removed, next to the optimum 1/N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"
#include "lbkit/ring.h"

#ifdef LBK_HAVE_LIBMEMCACHED
#include <libmemcached/memcached.h>
#endif

#define NKEYS 65536u /* a power of two */
#define KEYLEN 16

struct plain_point {
    uint64_t hash;
    lbk_backend *b;
};

struct ring_ctx {
    lbk_ring *ring;
    struct plain_point *plain;
    uint32_t nplain;
    uint64_t seed;
    uint8_t (*keys)[KEYLEN];
    uint64_t *hashes;
    const lbk_snapshot *snap;
    lbk_ring_options opts;
#ifdef LBK_HAVE_LIBMEMCACHED
    memcached_st *memc;
#endif
};

static void lookup_key(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        lbk_ring_lookup(c->ring, c->keys[i & (NKEYS - 1)], KEYLEN, &b);
        acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

static void lookup_hash(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        lbk_ring_lookup_hash(c->ring, c->hashes[i & (NKEYS - 1)], &b);
        acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

/* The textbook ring: first point >= h by binary search, wrapping. */
static lbk_backend *plain_search(const struct ring_ctx *c, uint64_t h)
{
    uint32_t lo = 0, hi = c->nplain;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->plain[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return c->plain[lo == c->nplain ? 0 : lo].b;
}

static void plain_key(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t h = lbk_hash(c->keys[i & (NKEYS - 1)], KEYLEN, c->seed);
        acc += (uintptr_t)plain_search(c, h);
    }
    bench_sink(acc);
}

static void plain_hash(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += (uintptr_t)plain_search(c, c->hashes[i & (NKEYS - 1)]);
    bench_sink(acc);
}

static void build_ring(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_ring *r;
        if (lbk_ring_build(c->snap, &c->opts, NULL, &r) < 0)
            abort();
        lbk_ring_free(r);
    }
}

static int cmp_plain(const void *a, const void *b)
{
    const struct plain_point *x = a, *y = b;
    return (x->hash > y->hash) - (x->hash < y->hash);
}

/* Textbook build: hash every point the same way, qsort. */
static void build_plain(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint32_t n = lbk_snapshot_count(c->snap);
    uint32_t per = c->opts.points_per_weight;
    for (uint64_t it = 0; it < iters; it++) {
        struct plain_point *a = malloc((size_t)n * per * sizeof(*a));
        size_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            lbk_backend *b = lbk_snapshot_backend(c->snap, i);
            uint8_t buf[LBK_NAME_MAX + 4];
            size_t len = lbk_backend_name_len(b);
            memcpy(buf, lbk_backend_name(b), len);
            for (uint32_t j = 0; j < per; j++) {
                memcpy(buf + len, &j, 4);
                a[k].hash = lbk_hash(buf, len + 4, c->seed);
                a[k++].b = b;
            }
        }
        qsort(a, k, sizeof(*a), cmp_plain);
        bench_sink(a[0].hash);
        free(a);
    }
}

static lbk_set *make_set(uint32_t n)
{
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[40];
        uint32_t slot;
        snprintf(name, sizeof name, "10.%u.%u.%u:11211", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
        if (lbk_set_add(set, name, 1, NULL, &slot) < 0)
            abort();
    }
    return set;
}

/* Peak-to-mean and sigma/mu of exact ownership. */
static void balance(const lbk_ring *r, uint32_t n, double *peak, double *cv)
{
    uint64_t *arcs = malloc(n * sizeof(*arcs));
    if (lbk_ring_ownership(r, arcs, n) < 0)
        abort();
    double mean = ldexp(1.0, (int)lbk_ring_hash_bits(r)) / n, max = 0, var = 0;
    for (uint32_t i = 0; i < n; i++) {
        double a = (double)arcs[i];
        max = a > max ? a : max;
        var += (a - mean) * (a - mean);
    }
    *peak = max / mean;
    *cv = sqrt(var / n) / mean;
    free(arcs);
}

/* Fraction of sampled keys that move when backend n/2 is removed. */
static double disruption(lbk_set *set, const lbk_ring *before,
                         const lbk_ring_options *o)
{
    uint32_t n = lbk_set_count(set);
    if (lbk_set_remove(set, n / 2) < 0)
        abort();
    const lbk_snapshot *snap;
    lbk_ring *after;
    if (lbk_set_snapshot(set, &snap) < 0 ||
        lbk_ring_build(snap, o, NULL, &after) < 0)
        abort();
    uint64_t s = 77;
    int moved = 0;
    const int samples = 200000;
    for (int i = 0; i < samples; i++) {
        uint64_t h = lbk_rng_local_next(&s);
        if (lbk_ring_hash_bits(before) == 32)
            h >>= 32;
        lbk_backend *x, *y;
        lbk_ring_lookup_hash(before, h, &x);
        lbk_ring_lookup_hash(after, h, &y);
        moved += x != y;
    }
    lbk_ring_free(after);
    lbk_snapshot_release(snap);
    return (double)moved / samples;
}

#ifdef LBK_HAVE_LIBMEMCACHED
static void memc_lookup(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += memcached_generate_hash(
            c->memc, (const char *)c->keys[i & (NKEYS - 1)], KEYLEN);
    bench_sink(acc);
}

static void lbk_slot_lookup(void *p, uint64_t iters)
{
    struct ring_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        lbk_ring_lookup(c->ring, c->keys[i & (NKEYS - 1)], KEYLEN, &b);
        acc += lbk_backend_slot(b);
    }
    bench_sink(acc);
}

/* libmemcached's Debian build aborts above 100 servers: N = 8 and 64. */
static void bench_libmemcached(lbk_bench *h, struct ring_ctx *c, uint32_t n)
{
    lbk_set *set = make_set(n);
    const lbk_snapshot *snap;
    c->opts.mode = LBK_RING_LIBMEMCACHED;
    if (lbk_set_snapshot(set, &snap) < 0 ||
        lbk_ring_build(snap, &c->opts, NULL, &c->ring) < 0)
        abort();
    c->memc = memcached_create(NULL);
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    memcached_server_st *list = NULL;
    memcached_return_t rc;
    for (uint32_t i = 0; i < n; i++) {
        char host[32];
        snprintf(host, sizeof host, "10.%u.%u.%u", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
        list =
            memcached_server_list_append_with_weight(list, host, 11211, 1, &rc);
    }
    memcached_server_push(c->memc, list);
    memcached_server_list_free(list);
    double ns = bench_measure(h, lbk_slot_lookup, c);
    double base = bench_measure(h, memc_lookup, c);
    bench_report(h, "ring/libmemcached_vs_memcached_generate_hash", n, ns, base,
                 NAN, NULL);
    memcached_free(c->memc);
    lbk_ring_free(c->ring);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    c->opts.mode = LBK_RING_XXH3;
}
#endif

void bench_ring(lbk_bench *h);
void bench_ring(lbk_bench *h)
{
    struct ring_ctx c = {0};
    c.keys = malloc(NKEYS * sizeof(*c.keys));
    c.hashes = malloc(NKEYS * sizeof(*c.hashes));
    uint64_t s = 1;
    for (uint32_t i = 0; i < NKEYS; i++)
        for (int j = 0; j < KEYLEN; j += 8) {
            uint64_t v = lbk_rng_local_next(&s);
            memcpy(c.keys[i] + j, &v, 8);
        }
    lbk_ring_options_init(&c.opts);
    c.opts.seed = c.seed = 0x1234;
    for (int si = 0; si < 4; si++) {
        uint32_t n = bench_sizes[si];
        lbk_set *set = make_set(n);
        if (lbk_set_snapshot(set, &c.snap) < 0 ||
            lbk_ring_build(c.snap, &c.opts, NULL, &c.ring) < 0)
            abort();
        c.nplain = lbk_ring_point_count(c.ring);
        c.plain = malloc(c.nplain * sizeof(*c.plain));
        for (uint32_t i = 0; i < c.nplain; i++) {
            uint32_t o;
            lbk_ring_point(c.ring, i, &c.plain[i].hash, &o);
            c.plain[i].b = lbk_snapshot_backend(c.snap, o);
        }
        for (uint32_t i = 0; i < NKEYS; i++)
            lbk_ring_hash_key(c.ring, c.keys[i], KEYLEN, &c.hashes[i]);
        double bytes = (double)lbk_ring_memory_bytes(c.ring) / n;
        char extra[256];
        if (bench_wants(h, "ring/lookup")) {
            double peak, cv;
            balance(c.ring, n, &peak, &cv);
            double moved = disruption(set, c.ring, &c.opts);
            snprintf(extra, sizeof extra,
                     "\"points\": %u, \"peak_to_mean\": %.4f, "
                     "\"sigma_over_mu\": %.4f, \"disruption\": %.5f, "
                     "\"disruption_optimum\": %.5f",
                     c.nplain, peak, cv, moved, 1.0 / n);
            bench_report(h, "ring/lookup", n, bench_measure(h, lookup_key, &c),
                         bench_measure(h, plain_key, &c), bytes, extra);
            bench_report(h, "ring/lookup_hashed", n,
                         bench_measure(h, lookup_hash, &c),
                         bench_measure(h, plain_hash, &c), bytes, NULL);
        }
        if (bench_wants(h, "ring/build"))
            bench_report(h, "ring/build", n, bench_measure(h, build_ring, &c),
                         bench_measure(h, build_plain, &c), bytes, NULL);
        free(c.plain);
        lbk_ring_free(c.ring);
        lbk_snapshot_release(c.snap);
        lbk_set_free(set);
    }
#ifdef LBK_HAVE_LIBMEMCACHED
    if (bench_wants(h, "ring/libmemcached")) {
        bench_libmemcached(h, &c, 8);
        bench_libmemcached(h, &c, 64);
    }
#endif
    free(c.keys);
    free(c.hashes);
}
