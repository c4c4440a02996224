/*
 * bench/bench_queueing.c - Erlang C evaluation and M/M/N sizing.
 *
 * Cases (not the bench_sizes: the interesting sizes here are server counts
 * and offered loads):
 *   queueing/erlang_c           N = 10, 10^3, 10^5, 10^6 at rho = 0.9
 *   queueing/erlang_c_heavy     the same at rho = 0.999 (C not tiny)
 *   queueing/size_p_wait        a = 10^3, 10^5, 10^6, P(wait) <= 0.2
 *   queueing/size_service_level a = 10^3, 10^5, 10^6, 80% within 0.05/mu
 *
 * Baselines, written here: the textbook O(N) Erlang B recursion
 * B(n) = a B / (n + a B) followed by C = N B / (N - a (1 - B)); for sizing,
 * the scan that textbooks and most calculators do, running that recursion
 * upward from n = 1 and stopping at the first N that meets the target.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "lbkit/queueing.h"

struct ec_ctx {
    uint32_t n;
    double a;
};

/* The load moves in the last bits so no call can be hoisted. */
static double jitter(double a, uint64_t i)
{
    return a * (1 + (double)(i & 7) * 1e-13);
}

static void erlang_c_lbk(void *p, uint64_t iters)
{
    struct ec_ctx *c = p;
    double s = 0;
    for (uint64_t i = 0; i < iters; i++) {
        double v;
        if (lbk_erlang_c(jitter(c->a, i), c->n, &v) != 0)
            abort();
        s += v;
    }
    bench_sink((uint64_t)(s * 1e6));
}

static double textbook_c(double a, uint32_t n)
{
    double b = 1;
    for (uint32_t k = 1; k <= n; k++)
        b = a * b / (k + a * b);
    return n * b / (n - a * (1 - b));
}

static void erlang_c_textbook(void *p, uint64_t iters)
{
    struct ec_ctx *c = p;
    double s = 0;
    for (uint64_t i = 0; i < iters; i++)
        s += textbook_c(jitter(c->a, i), c->n);
    bench_sink((uint64_t)(s * 1e6));
}

struct size_ctx {
    double a;
    int service_level; /* 0: P(wait) <= 0.2; 1: 80% within 0.05 */
};

static void size_lbk(void *p, uint64_t iters)
{
    struct size_ctx *c = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t n;
        double a = jitter(c->a, i);
        int rc = c->service_level
                     ? lbk_mmn_servers_for_service_level(a, 1, 0.05, 0.8, &n)
                     : lbk_mmn_servers_for_p_wait(a, 1, 0.2, &n);
        if (rc != 0)
            abort();
        s += n;
    }
    bench_sink(s);
}

static uint32_t textbook_size(double a, int service_level)
{
    double b = 1;
    for (uint32_t n = 1;; n++) {
        b = a * b / (n + a * b);
        if (n <= a)
            continue;
        double c = n * b / (n - a * (1 - b));
        double p = service_level ? c * exp(-(n - a) * 0.05) : c;
        if (p <= 0.2) /* P(wait) <= 0.2, or 80% within 0.05 */
            return n;
    }
}

static void size_textbook(void *p, uint64_t iters)
{
    struct size_ctx *c = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < iters; i++)
        s += textbook_size(jitter(c->a, i), c->service_level);
    bench_sink(s);
}

void bench_queueing(lbk_bench *h);
void bench_queueing(lbk_bench *h)
{
    static const uint32_t ns[] = {10, 1000, 100000, 1000000};
    static const struct {
        const char *name;
        double rho;
    } ec[] = {{"queueing/erlang_c", 0.9}, {"queueing/erlang_c_heavy", 0.999}};
    for (int k = 0; k < 2; k++) {
        if (!bench_wants(h, ec[k].name))
            continue;
        for (int i = 0; i < 4; i++) {
            struct ec_ctx c = {ns[i], ec[k].rho * ns[i]};
            double ns_op = bench_measure(h, erlang_c_lbk, &c);
            double base = bench_measure(h, erlang_c_textbook, &c);
            char extra[64];
            snprintf(extra, sizeof extra, "\"rho\": %g", ec[k].rho);
            bench_report(h, ec[k].name, ns[i], ns_op, base, NAN, extra);
        }
    }
    static const double loads[] = {1e3, 1e5, 1e6};
    static const char *sz[] = {"queueing/size_p_wait",
                               "queueing/size_service_level"};
    for (int k = 0; k < 2; k++) {
        if (!bench_wants(h, sz[k]))
            continue;
        for (int i = 0; i < 3; i++) {
            struct size_ctx c = {loads[i], k};
            double ns_op = bench_measure(h, size_lbk, &c);
            double base = bench_measure(h, size_textbook, &c);
            bench_report(h, sz[k], (uint64_t)loads[i], ns_op, base, NAN,
                         "\"n_is\": \"offered load\"");
        }
    }
}
