/*
 * bench/bench_wrr.c - smooth weighted round-robin: pick from the table and
 * from the tree (1 and 2 threads), pick at total weight near 2^32, build,
 * bytes per backend.
 *
 * Baseline: nginx-style smooth WRR (bench/baseline_nginx_wrr.h), O(N) scan
 * per pick, single-threaded, measured in the same run on the same weights.
 * Weights are 1..10 (10 distinct values, W = 5.5 N), which puts every size
 * up to 16384 in table mode; "pick_tree" forces the tree on the same
 * weights and "pick_huge" uses weights summing to nearly 2^32 - 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_nginx_wrr.h"
#include "bench.h"
#include "internal.h"
#include "lbkit/wrr.h"

struct wrr_ctx {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_wrr *wrr;
    uint32_t n;
    nginx_wrr base;
    lbk_wrr_options opts;
};

static void wrr_ctx_init(struct wrr_ctx *c, uint32_t n, bool huge,
                         uint32_t table_max)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    uint32_t *w = malloc(n * sizeof(*w));
    uint32_t unit = huge ? UINT32_MAX / (n * 11) : 1;
    for (uint32_t i = 0; i < n; i++)
        w[i] = (1 + i % 10) * unit;
    if (lbk_set_create(NULL, &c->set) < 0 || nginx_wrr_init(&c->base, w, n))
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.%u.%u.%u:80", i >> 16, (i >> 8) & 255,
                 i & 255);
        if (lbk_set_add(c->set, name, w[i], NULL, &slot) < 0)
            abort();
    }
    free(w);
    lbk_wrr_options_init(&c->opts);
    c->opts.seed = 1;
    c->opts.table_max = table_max;
    if (lbk_set_snapshot(c->set, &c->snap) < 0 ||
        lbk_wrr_build(c->snap, &c->opts, NULL, &c->wrr) < 0)
        abort();
}

static void wrr_ctx_free(struct wrr_ctx *c)
{
    lbk_wrr_free(c->wrr);
    lbk_snapshot_release(c->snap);
    lbk_set_free(c->set);
    nginx_wrr_free(&c->base);
}

static void wrr_pick_loop(void *p, uint64_t iters)
{
    struct wrr_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_wrr_pick(c->wrr, &b) < 0)
            abort();
        bench_sink((uint64_t)(uintptr_t)b);
    }
}

static void nginx_pick_loop(void *p, uint64_t iters)
{
    struct wrr_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        bench_sink((uint64_t)nginx_wrr_pick(&c->base));
}

static void wrr_build_loop(void *p, uint64_t iters)
{
    struct wrr_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_wrr *w;
        if (lbk_wrr_build(c->snap, &c->opts, NULL, &w) < 0)
            abort();
        lbk_wrr_free(w);
    }
}

static void run_case(lbk_bench *h, const char *pick_case,
                     const char *build_case, bool huge, uint32_t table_max)
{
    bool want_pick = bench_wants(h, pick_case);
    bool want_build = build_case && bench_wants(h, build_case);
    if (!want_pick && !want_build)
        return;
    for (int s = 0; s < 4; s++) {
        struct wrr_ctx c;
        wrr_ctx_init(&c, bench_sizes[s], huge, table_max);
        double bytes = (double)lbk_wrr_footprint(c.wrr) / c.n;
        char extra[96];
        snprintf(extra, sizeof extra, "\"mode\": \"%s\", \"cycle\": %llu",
                 lbk_wrr_uses_table(c.wrr) ? "table" : "tree",
                 (unsigned long long)lbk_wrr_cycle(c.wrr));
        if (want_pick) {
            double base = bench_measure(h, nginx_pick_loop, &c);
            bench_report(h, pick_case, c.n, bench_measure(h, wrr_pick_loop, &c),
                         base, bytes, extra);
            char two[64];
            snprintf(two, sizeof two, "%s_2threads", pick_case);
            bench_report(h, two, c.n,
                         bench_measure_threads(h, 2, wrr_pick_loop, &c), NAN,
                         bytes, extra);
        }
        if (want_build)
            bench_report(h, build_case, c.n,
                         bench_measure(h, wrr_build_loop, &c), NAN, bytes,
                         extra);
        wrr_ctx_free(&c);
    }
}

void bench_wrr(lbk_bench *h);
void bench_wrr(lbk_bench *h)
{
    run_case(h, "wrr/pick", "wrr/build", false, LBK_WRR_TABLE_DEFAULT);
    run_case(h, "wrr/pick_tree", "wrr/build_tree", false, 0);
    run_case(h, "wrr/pick_huge", NULL, true, LBK_WRR_TABLE_DEFAULT);
}
