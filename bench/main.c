/*
 * bench/main.c - lbkit-bench: run the registered cases, print a table or
 * JSON.
 *
 *   lbkit-bench [--json] [--filter PATTERN] [--quick]
 *
 * Each case reports ns/op as the median of repetitions after a warm-up, and
 * its textbook baseline measured the same way in the same process, so the
 * ratio holds even when the machine's absolute speed drifts.  PATTERN is a
 * substring of "module/variant".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_registry.h"

struct lbk_bench {
    bool json;
    bool quick;
    const char *filter;
    int rows;
};

const uint32_t bench_sizes[4] = {8, 64, 1024, 16384};

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

bool bench_wants(const lbk_bench *h, const char *case_name)
{
    return h->filter == NULL || strstr(case_name, h->filter) != NULL;
}

bool bench_quick(const lbk_bench *h)
{
    return h->quick;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Iterations that take about target_ns. */
static uint64_t calibrate(void (*fn)(void *, uint64_t), void *ctx,
                          double target_ns)
{
    uint64_t iters = 1;
    for (;;) {
        double t0 = bench_now_ns();
        fn(ctx, iters);
        double dt = bench_now_ns() - t0;
        if (dt >= target_ns / 4 || iters >= (UINT64_C(1) << 40)) {
            double per = dt / (double)iters;
            uint64_t n = per > 0 ? (uint64_t)(target_ns / per) : iters;
            return n ? n : 1;
        }
        iters *= 4;
    }
}

double bench_measure(lbk_bench *h, void (*fn)(void *ctx, uint64_t iters),
                     void *ctx)
{
    int reps = h->quick ? 3 : 9;
    double target = h->quick ? 2e6 : 1e7; /* ns per repetition */
    uint64_t iters = calibrate(fn, ctx, target);
    fn(ctx, iters); /* warm-up */
    double v[16];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ns();
        fn(ctx, iters);
        v[r] = (bench_now_ns() - t0) / (double)iters;
    }
    qsort(v, (size_t)reps, sizeof(double), cmp_double);
    return v[reps / 2];
}

struct thread_job {
    void (*fn)(void *, uint64_t);
    void *ctx;
    uint64_t iters;
    pthread_barrier_t *barrier;
};

static void *thread_main(void *arg)
{
    struct thread_job *j = arg;
    pthread_barrier_wait(j->barrier);
    j->fn(j->ctx, j->iters);
    return NULL;
}

double bench_measure_threads(lbk_bench *h, int nthreads,
                             void (*fn)(void *ctx, uint64_t iters), void *ctx)
{
    if (nthreads < 1 || nthreads > 64)
        return NAN;
    int reps = h->quick ? 3 : 7;
    double target = h->quick ? 2e6 : 1e7;
    uint64_t iters = calibrate(fn, ctx, target);
    double v[16];
    pthread_t tid[64];
    struct thread_job jobs[64];
    pthread_barrier_t barrier;
    for (int r = 0; r < reps + 1; r++) { /* first round is the warm-up */
        pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
        for (int t = 0; t < nthreads; t++) {
            jobs[t] = (struct thread_job){fn, ctx, iters, &barrier};
            pthread_create(&tid[t], NULL, thread_main, &jobs[t]);
        }
        double t0 = bench_now_ns();
        pthread_barrier_wait(&barrier);
        for (int t = 0; t < nthreads; t++)
            pthread_join(tid[t], NULL);
        double dt = bench_now_ns() - t0;
        pthread_barrier_destroy(&barrier);
        if (r > 0)
            v[r - 1] = dt / (double)iters;
    }
    qsort(v, (size_t)reps, sizeof(double), cmp_double);
    return v[reps / 2];
}

void bench_report(lbk_bench *h, const char *case_name, uint64_t n,
                  double ns_per_op, double baseline_ns, double bytes,
                  const char *extra_json)
{
    if (h->json) {
        printf("%s\n  {\"case\": \"%s\", \"n\": %llu, \"ns_per_op\": %.3f",
               h->rows ? "," : "", case_name, (unsigned long long)n, ns_per_op);
        if (!isnan(baseline_ns))
            printf(", \"baseline_ns_per_op\": %.3f", baseline_ns);
        if (!isnan(bytes))
            printf(", \"bytes\": %.0f", bytes);
        if (extra_json != NULL && extra_json[0] != '\0')
            printf(", %s", extra_json);
        printf("}");
    } else {
        if (h->rows == 0)
            printf("%-36s %8s %12s %12s %8s %12s  %s\n", "case", "n", "ns/op",
                   "baseline", "ratio", "bytes", "extra");
        char base[32] = "-", ratio[32] = "-", by[32] = "-";
        if (!isnan(baseline_ns)) {
            snprintf(base, sizeof base, "%.2f", baseline_ns);
            snprintf(ratio, sizeof ratio, "%.1fx", baseline_ns / ns_per_op);
        }
        if (!isnan(bytes))
            snprintf(by, sizeof by, "%.0f", bytes);
        printf("%-36s %8llu %12.2f %12s %8s %12s  %s\n", case_name,
               (unsigned long long)n, ns_per_op, base, ratio, by,
               extra_json ? extra_json : "");
    }
    h->rows++;
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: lbkit-bench [--json] [--filter PATTERN] [--quick]\n"
               "  --json            one JSON array of {case, n, ns_per_op, "
               "baseline_ns_per_op, bytes}\n"
               "  --filter PATTERN  run cases whose name contains PATTERN\n"
               "  --quick           fewer, shorter repetitions (smoke test)\n");
}

int main(int argc, char **argv)
{
    lbk_bench h = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            h.json = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            h.quick = true;
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            h.filter = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "lbkit-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (h.json)
        printf("[");
    for (size_t i = 0; i < sizeof(bench_registry) / sizeof(bench_registry[0]);
         i++)
        if (bench_registry[i] != NULL)
            bench_registry[i](&h);
    if (h.json)
        printf("\n]\n");
    return 0;
}
