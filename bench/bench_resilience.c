/*
 * bench/bench_resilience.c - ns per decision of the resilience modules,
 * single-threaded and with 2 threads sharing one object.
 *
 * Cases: outlier/report (record one outcome), outlier/check (is this backend
 * ejected: the flag read pickers do), breaker/allow + record, ratelimit/take
 * (flat and under a parent), retry/budget (deposit + withdraw), retry/backoff,
 * bandit/pick (UCB1 and Thompson, at the bench sizes), slowstart/update and
 * panic/update (control-plane passes, per backend).
 *
 * Baselines, written here: a token bucket of (tokens, last time) doubles
 * under a pthread mutex - the textbook concurrent limiter; a breaker as a
 * mutex-protected counter pair; a retry budget as a mutex-protected pair of
 * counters; for the bandit, a plain array scan of the same N doing an argmax
 * of precomputed means (what any O(N) picker costs at least).  Outlier
 * reporting is compared with a bare relaxed fetch_add on a counter.
 * Time is simulated: each operation advances a per-thread clock by 1 us.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "lbkit/backend.h"
#include "lbkit/bandit.h"
#include "lbkit/breaker.h"
#include "lbkit/outlier.h"
#include "lbkit/panic.h"
#include "lbkit/ratelimit.h"
#include "lbkit/retry.h"
#include "lbkit/slowstart.h"

#define US UINT64_C(1000)

static _Atomic uint64_t clock_ns = UINT64_C(1000000000000);

/* A per-call time: a shared counter would serialise the threads, so each
 * call batch takes one block of simulated time. */
static uint64_t time_block(uint64_t iters)
{
    return atomic_fetch_add_explicit(&clock_ns, iters * US,
                                     memory_order_relaxed);
}

/* ---- fixtures --------------------------------------------------------- */

typedef struct set_fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    uint32_t n;
} set_fixture;

static void set_fixture_init(set_fixture *f, uint32_t n)
{
    if (lbk_set_create(NULL, &f->set) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "10.%u.%u.%u:80", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
        uint32_t slot;
        if (lbk_set_add(f->set, name, 1, NULL, &slot) < 0)
            abort();
    }
    if (lbk_set_snapshot(f->set, &f->snap) < 0)
        abort();
    f->n = n;
}

static void set_fixture_done(set_fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
}

/* ---- outlier ---------------------------------------------------------- */

typedef struct outlier_ctx {
    set_fixture f;
    lbk_outlier *od;
    _Atomic uint64_t plain;
} outlier_ctx;

static void outlier_report(void *p, uint64_t iters)
{
    outlier_ctx *c = p;
    uint64_t t = time_block(iters);
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b = lbk_snapshot_backend(c->f.snap, (uint32_t)(i & 7));
        lbk_outlier_report(c->od, b,
                           (i & 15) ? LBK_OUTCOME_SUCCESS : LBK_OUTCOME_ERROR,
                           t + i * US);
    }
}

static void outlier_report_plain(void *p, uint64_t iters)
{
    outlier_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        atomic_fetch_add_explicit(&c->plain, (i & 15) ? 1 : 0x100000000ull,
                                  memory_order_relaxed);
}

static void outlier_check(void *p, uint64_t iters)
{
    outlier_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += lbk_backend_eligible(
            lbk_snapshot_backend(c->f.snap, (uint32_t)(i & 7)));
    bench_sink(acc);
}

/* ---- breaker ---------------------------------------------------------- */

typedef struct breaker_ctx {
    lbk_breaker *br;
    pthread_mutex_t mu;
    uint64_t ok, bad;
} breaker_ctx;

static void breaker_allow_record(void *p, uint64_t iters)
{
    breaker_ctx *c = p;
    uint64_t t = time_block(iters);
    for (uint64_t i = 0; i < iters; i++)
        if (lbk_breaker_allow(c->br, t + i * US) == 0)
            lbk_breaker_record(c->br, (i % 10) != 0, t + i * US);
}

static void breaker_plain(void *p, uint64_t iters)
{
    breaker_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        pthread_mutex_lock(&c->mu);
        bool open = c->bad * 2 > c->ok + c->bad && c->ok + c->bad > 20;
        if (!open) {
            if (i % 10)
                c->ok++;
            else
                c->bad++;
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* ---- token bucket ----------------------------------------------------- */

typedef struct bucket_ctx {
    lbk_tokenbucket *tb;
    pthread_mutex_t mu;
    double tokens, rate_per_ns, burst;
    uint64_t last;
} bucket_ctx;

static void bucket_take(void *p, uint64_t iters)
{
    bucket_ctx *c = p;
    uint64_t t = time_block(iters), got = 0;
    for (uint64_t i = 0; i < iters; i++)
        got += lbk_tokenbucket_take(c->tb, 1, t + i * US) == 0;
    bench_sink(got);
}

static void bucket_mutex(void *p, uint64_t iters)
{
    bucket_ctx *c = p;
    uint64_t t = time_block(iters), got = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t now = t + i * US;
        pthread_mutex_lock(&c->mu);
        if (now > c->last) {
            c->tokens += (double)(now - c->last) * c->rate_per_ns;
            if (c->tokens > c->burst)
                c->tokens = c->burst;
            c->last = now;
        }
        if (c->tokens >= 1.0) {
            c->tokens -= 1.0;
            got++;
        }
        pthread_mutex_unlock(&c->mu);
    }
    bench_sink(got);
}

/* ---- retry ------------------------------------------------------------ */

typedef struct retry_ctx {
    lbk_retry_budget *rb;
    pthread_mutex_t mu;
    int64_t balance;
    uint64_t seed;
} retry_ctx;

static void retry_budget(void *p, uint64_t iters)
{
    retry_ctx *c = p;
    uint64_t t = time_block(iters), got = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_retry_budget_deposit(c->rb, t + i * US);
        if ((i & 3) == 0)
            got += lbk_retry_budget_withdraw(c->rb, t + i * US) == 0;
    }
    bench_sink(got);
}

static void retry_budget_plain(void *p, uint64_t iters)
{
    retry_ctx *c = p;
    uint64_t got = 0;
    for (uint64_t i = 0; i < iters; i++) {
        pthread_mutex_lock(&c->mu);
        c->balance += 1000;
        if ((i & 3) == 0 && c->balance >= 5000) {
            c->balance -= 5000;
            got++;
        }
        pthread_mutex_unlock(&c->mu);
    }
    bench_sink(got);
}

static void backoff(void *p, uint64_t iters)
{
    retry_ctx *c = p;
    uint64_t st = c->seed, v = 0, acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backoff_decorrelated_jitter(1000000, 10000000000ull, v, &st, &v);
        acc += v;
    }
    bench_sink(acc);
}

static void backoff_plain(void *p, uint64_t iters)
{
    retry_ctx *c = p;
    uint64_t st = c->seed, v = 1000000, acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t hi = v * 3;
        v = 1000000 + (st >> 11) % (hi - 1000000 + 1);
        if (v > 10000000000ull)
            v = 10000000000ull;
        acc += v;
    }
    bench_sink(acc);
}

/* ---- bandit ----------------------------------------------------------- */

typedef struct bandit_ctx {
    set_fixture f;
    lbk_bandit *bd;
    double *means;
} bandit_ctx;

static void bandit_pick(void *p, uint64_t iters)
{
    bandit_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        lbk_backend *b;
        if (lbk_bandit_pick(c->bd, &b) == 0)
            acc += (uintptr_t)b;
    }
    bench_sink(acc);
}

static void bandit_plain(void *p, uint64_t iters)
{
    bandit_ctx *c = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t best = 0;
        for (uint32_t k = 1; k < c->f.n; k++)
            if (c->means[k] > c->means[best])
                best = k;
        acc += best;
        c->means[i % c->f.n] *= 0.999999; /* keep the loop honest */
    }
    bench_sink(acc);
}

static void bandit_case(lbk_bench *h, lbk_bandit_algo algo, const char *name)
{
    if (!bench_wants(h, name))
        return;
    for (int s = 0; s < 4; s++) {
        uint32_t n = bench_sizes[s];
        if (bench_quick(h) && n > 1024)
            continue;
        bandit_ctx c;
        set_fixture_init(&c.f, n);
        lbk_bandit_options o;
        lbk_bandit_options_init(&o);
        o.algo = algo;
        o.seed = 1;
        if (lbk_bandit_build(c.f.snap, &o, NULL, &c.bd) < 0)
            abort();
        c.means = malloc(n * sizeof(double));
        uint64_t rs = 3;
        for (uint32_t i = 0; i < n; i++) {
            lbk_backend *b = lbk_snapshot_backend(c.f.snap, i);
            for (int k = 0; k < 4; k++) { /* every arm explored */
                rs = rs * 6364136223846793005ull + 1;
                lbk_bandit_report(c.bd, b, (rs >> 40) % 10 < 7,
                                  (rs >> 20) % 200000000);
            }
            c.means[i] = (double)(rs >> 11) * 0x1.0p-53;
        }
        double ns = bench_measure(h, bandit_pick, &c);
        double base = bench_measure(h, bandit_plain, &c);
        bench_report(h, name, n, ns, base, 8.0 * n + 4.0 * n, NULL);
        if (n == 8 || n == 64) {
            char tname[64];
            snprintf(tname, sizeof tname, "%s_2threads", name);
            bench_report(h, tname, n,
                         bench_measure_threads(h, 2, bandit_pick, &c), NAN, NAN,
                         NULL);
        }
        lbk_bandit_free(c.bd);
        free(c.means);
        set_fixture_done(&c.f);
    }
}

/* ---- control-plane passes --------------------------------------------- */

typedef struct pass_ctx {
    set_fixture f;
    lbk_slowstart *ss;
    lbk_panic *panic;
    lbk_outlier *od;
} pass_ctx;

static void slowstart_update(void *p, uint64_t iters)
{
    pass_ctx *c = p;
    uint64_t t = time_block(iters * 1000);
    for (uint64_t i = 0; i < iters; i++)
        lbk_slowstart_update(c->ss, t + i * 1000 * US);
}

static void panic_update(void *p, uint64_t iters)
{
    pass_ctx *c = p;
    for (uint64_t i = 0; i < iters; i++)
        lbk_panic_update(c->panic, c->f.snap);
}

static void outlier_tick(void *p, uint64_t iters)
{
    pass_ctx *c = p;
    uint64_t t = time_block(iters * 10000000);
    for (uint64_t i = 0; i < iters; i++)
        lbk_outlier_tick(c->od, t + i * 10000000 * US); /* a pass each */
}

static void passes(lbk_bench *h)
{
    for (int s = 0; s < 4; s++) {
        uint32_t n = bench_sizes[s];
        pass_ctx c;
        set_fixture_init(&c.f, n);
        lbk_slowstart_options so;
        lbk_slowstart_options_init(&so);
        so.window_ns = UINT64_C(1) << 62; /* ramping throughout */
        so.ramp_initial = true;
        if (lbk_slowstart_create(c.f.snap, &so, NULL, atomic_load(&clock_ns),
                                 NULL, &c.ss) < 0 ||
            lbk_panic_create(0.5, NULL, &c.panic) < 0 ||
            lbk_outlier_create(c.f.snap, NULL, NULL, atomic_load(&clock_ns),
                               &c.od) < 0)
            abort();
        if (bench_wants(h, "slowstart/update"))
            bench_report(h, "slowstart/update", n,
                         bench_measure(h, slowstart_update, &c) / n, NAN, 24.0,
                         NULL);
        if (bench_wants(h, "panic/update"))
            bench_report(h, "panic/update", n,
                         bench_measure(h, panic_update, &c) / n, NAN, NAN,
                         NULL);
        if (bench_wants(h, "outlier/tick"))
            bench_report(h, "outlier/tick", n,
                         bench_measure(h, outlier_tick, &c) / n, NAN, 64.0,
                         NULL);
        lbk_outlier_free(c.od);
        lbk_panic_free(c.panic);
        lbk_slowstart_free(c.ss);
        set_fixture_done(&c.f);
    }
}

void bench_resilience(lbk_bench *h);
void bench_resilience(lbk_bench *h)
{
    if (bench_wants(h, "outlier/")) {
        outlier_ctx c;
        set_fixture_init(&c.f, 8);
        atomic_init(&c.plain, 0);
        lbk_outlier_options o;
        lbk_outlier_options_init(&o);
        o.consecutive_5xx = 0; /* measure the counting, not ejections */
        if (lbk_outlier_create(c.f.snap, &o, NULL, atomic_load(&clock_ns),
                               &c.od) < 0)
            abort();
        double plain = bench_measure(h, outlier_report_plain, &c);
        bench_report(h, "outlier/report", 8,
                     bench_measure(h, outlier_report, &c), plain, 64.0, NULL);
        bench_report(h, "outlier/report_2threads", 8,
                     bench_measure_threads(h, 2, outlier_report, &c),
                     bench_measure_threads(h, 2, outlier_report_plain, &c), NAN,
                     NULL);
        bench_report(h, "outlier/check", 8, bench_measure(h, outlier_check, &c),
                     NAN, NAN, NULL);
        bench_report(h, "outlier/check_2threads", 8,
                     bench_measure_threads(h, 2, outlier_check, &c), NAN, NAN,
                     NULL);
        lbk_outlier_free(c.od);
        set_fixture_done(&c.f);
    }
    if (bench_wants(h, "breaker/")) {
        breaker_ctx c = {0};
        pthread_mutex_init(&c.mu, NULL);
        if (lbk_breaker_create(NULL, NULL, &c.br) < 0)
            abort();
        bench_report(h, "breaker/allow_record", 1,
                     bench_measure(h, breaker_allow_record, &c),
                     bench_measure(h, breaker_plain, &c), 64.0 + 80.0, NULL);
        bench_report(h, "breaker/allow_record_2threads", 1,
                     bench_measure_threads(h, 2, breaker_allow_record, &c),
                     bench_measure_threads(h, 2, breaker_plain, &c), NAN, NULL);
        lbk_breaker_free(c.br);
        pthread_mutex_destroy(&c.mu);
    }
    if (bench_wants(h, "ratelimit/")) {
        bucket_ctx c = {0};
        pthread_mutex_init(&c.mu, NULL);
        c.rate_per_ns = 1e6 / 1e9; /* 1e6/s: about every take passes */
        c.burst = 100;
        c.tokens = 100;
        lbk_tokenbucket *parent;
        if (lbk_tokenbucket_create(1e6, 100, NULL, 0, NULL, &c.tb) < 0 ||
            lbk_tokenbucket_create(1e6, 100, NULL, 0, NULL, &parent) < 0)
            abort();
        bench_report(h, "ratelimit/take", 1, bench_measure(h, bucket_take, &c),
                     bench_measure(h, bucket_mutex, &c), 96.0, NULL);
        bench_report(h, "ratelimit/take_2threads", 1,
                     bench_measure_threads(h, 2, bucket_take, &c),
                     bench_measure_threads(h, 2, bucket_mutex, &c), NAN, NULL);
        lbk_tokenbucket *child;
        if (lbk_tokenbucket_create(1e6, 100, parent, 0, NULL, &child) < 0)
            abort();
        lbk_tokenbucket_free(c.tb);
        c.tb = child;
        bench_report(h, "ratelimit/take_hierarchical", 2,
                     bench_measure(h, bucket_take, &c),
                     bench_measure(h, bucket_mutex, &c), 192.0, NULL);
        bench_report(h, "ratelimit/take_hierarchical_2threads", 2,
                     bench_measure_threads(h, 2, bucket_take, &c), NAN, NAN,
                     NULL);
        lbk_tokenbucket_free(child);
        lbk_tokenbucket_free(parent);
        pthread_mutex_destroy(&c.mu);
    }
    if (bench_wants(h, "retry/")) {
        retry_ctx c = {0};
        c.seed = 42;
        pthread_mutex_init(&c.mu, NULL);
        if (lbk_retry_budget_create(NULL, NULL, atomic_load(&clock_ns), &c.rb) <
            0)
            abort();
        bench_report(h, "retry/budget", 1, bench_measure(h, retry_budget, &c),
                     bench_measure(h, retry_budget_plain, &c), 128.0, NULL);
        bench_report(h, "retry/budget_2threads", 1,
                     bench_measure_threads(h, 2, retry_budget, &c),
                     bench_measure_threads(h, 2, retry_budget_plain, &c), NAN,
                     NULL);
        bench_report(h, "retry/backoff_decorrelated", 1,
                     bench_measure(h, backoff, &c),
                     bench_measure(h, backoff_plain, &c), NAN, NULL);
        lbk_retry_budget_free(c.rb);
        pthread_mutex_destroy(&c.mu);
    }
    bandit_case(h, LBK_BANDIT_UCB1, "bandit/ucb1");
    bandit_case(h, LBK_BANDIT_THOMPSON, "bandit/thompson");
    passes(h);
}
