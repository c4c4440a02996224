/*
 * bench/bench.h - the lbkit-bench harness.
 *
 * A module adds its cases in bench/bench_MODULE.c, as one function
 *
 *     void bench_MODULE(lbk_bench *h);
 *
 * that, for each case and size, checks bench_wants(), measures with
 * bench_measure() (warm-up, then the median of repetitions), measures its
 * textbook baseline the same way in the same run, and calls bench_report().
 * Baselines live in bench/, never in lib/.  Register the module by adding its
 * name to bench_modules in bench/meson.build.
 */
#ifndef LBKIT_BENCH_H
#define LBKIT_BENCH_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lbk_bench lbk_bench;

/* The sizes every algorithm is measured at (DESIGN.md). */
extern const uint32_t bench_sizes[4]; /* 8, 64, 1024, 16384 */

/* Whether the case "module/variant" passes --filter. */
bool bench_wants(const lbk_bench *h, const char *case_name);

/* True under --quick (CI smoke run): fewer repetitions, shorter runs. */
bool bench_quick(const lbk_bench *h);

/*
 * Run fn(ctx, iters) - which must perform iters operations - enough times to
 * fill each repetition, after a warm-up; return the median ns per operation.
 */
double bench_measure(lbk_bench *h, void (*fn)(void *ctx, uint64_t iters),
                     void *ctx);

/*
 * The same with nthreads threads running fn at once (each with its own
 * iteration count); returns the median over repetitions of wall time per
 * operation per thread, i.e. the latency each thread sees.
 */
double bench_measure_threads(lbk_bench *h, int nthreads,
                             void (*fn)(void *ctx, uint64_t iters), void *ctx);

/* Time one call of fn(ctx) once, in ns (for builds: call it a few times and
 * take the median yourself, or use bench_measure with iters = builds). */
double bench_now_ns(void);

/*
 * Report one row.  Pass NAN for baseline_ns or bytes when they do not
 * apply; they are then left out of the JSON.  extra_json, when not NULL, is
 * appended verbatim inside the object (e.g. "\"peak_to_mean\": 1.02").
 */
void bench_report(lbk_bench *h, const char *case_name, uint64_t n,
                  double ns_per_op, double baseline_ns, double bytes,
                  const char *extra_json);

/* Keep the compiler from discarding a computed value. */
static inline void bench_sink(uint64_t v)
{
    __asm__ volatile("" : : "r"(v) : "memory");
}

#endif /* LBKIT_BENCH_H */
