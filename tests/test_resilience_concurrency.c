/*
 * tests/test_resilience_concurrency.c - the resilience modules from several
 * threads at once (run under ThreadSanitizer in CI): outcome reports racing
 * the control thread's ticks with the maximum ejected count holding
 * throughout; exactly `trials` half-open admissions among racing callers;
 * token buckets, hierarchical buckets and retry budgets never over-admitting
 * under contention; bandit reports never lost; panic verdicts published
 * while pickers read them.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/backend.h"
#include "lbkit/bandit.h"
#include "lbkit/breaker.h"
#include "lbkit/outlier.h"
#include "lbkit/panic.h"
#include "lbkit/ratelimit.h"
#include "lbkit/retry.h"

#define NTHREADS 4
#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * SEC)

typedef struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_backend *b[16];
    uint32_t n;
} fixture;

static void fixture_init(fixture *f, uint32_t n)
{
    assert_ok(lbk_set_create(NULL, &f->set));
    for (uint32_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(f->set, name, 1, NULL, &slot));
        f->b[i] = lbk_set_backend(f->set, slot);
    }
    assert_ok(lbk_set_snapshot(f->set, &f->snap));
    f->n = n;
}

static void fixture_done(fixture *f)
{
    lbk_snapshot_release(f->snap);
    lbk_set_free(f->set);
}

typedef struct shared {
    pthread_barrier_t start;
    fixture *f;
    lbk_outlier *od;
    lbk_breaker *br;
    lbk_tokenbucket *tb[NTHREADS + 1];
    lbk_retry_budget *rb;
    lbk_bandit *bd;
    lbk_panic *panic;
    _Atomic int stop;
    _Atomic long admitted;
    _Atomic long violations;
} shared;

typedef struct job {
    shared *s;
    int id;
    long got;
} job;

static void run_threads(shared *s, void *(*fn)(void *), job *jobs)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&s->start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i].s = s;
        jobs[i].id = i;
        jobs[i].got = 0;
        assert_int_equal(pthread_create(&t[i], NULL, fn, &jobs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&s->start);
}

/* ---- outlier: reports from every thread, ticks from this one ---------- */

static void *outlier_reporter(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    uint64_t rs = (uint64_t)j->id + 1;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 20000; k++) {
        uint64_t r = test_rand(&rs);
        lbk_backend *b = s->f->b[r % s->f->n];
        /* backends 0..5 fail often, the rest rarely */
        bool bad = (r % s->f->n) < 6 ? (r >> 32) % 4 != 0 : (r >> 32) % 50 == 0;
        uint64_t t = T0 + (uint64_t)k * 1000000; /* 1 ms steps */
        int rc = lbk_outlier_report(
            s->od, b, bad ? LBK_OUTCOME_ERROR : LBK_OUTCOME_SUCCESS, t);
        if (rc < 0)
            atomic_fetch_add(&s->violations, 1);
        if (lbk_outlier_ejected_count(s->od) > 3)
            atomic_fetch_add(&s->violations, 1);
    }
    return NULL;
}

static void test_outlier_reports_and_ticks(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10);
    shared s = {.f = &f};
    lbk_outlier_options o;
    lbk_outlier_options_init(&o);
    o.max_ejection_fraction = 0.3;
    o.base_ejection_ns = SEC;
    assert_ok(lbk_outlier_create(f.snap, &o, NULL, T0, &s.od));
    atomic_init(&s.violations, 0);
    job jobs[NTHREADS];
    /* the control thread ticks while the reporters run */
    pthread_t t[NTHREADS];
    pthread_barrier_init(&s.start, NULL, NTHREADS + 1);
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (job){&s, i, 0};
        assert_int_equal(
            pthread_create(&t[i], NULL, outlier_reporter, &jobs[i]), 0);
    }
    pthread_barrier_wait(&s.start);
    int changes = 0;
    for (int k = 0; k < 2000; k++) {
        int rc = lbk_outlier_tick(s.od, T0 + (uint64_t)k * 10000000);
        assert_true(rc >= 0);
        changes += rc;
        assert_true(lbk_outlier_ejected_count(s.od) <= 3);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&s.start);
    assert_int_equal(atomic_load(&s.violations), 0);
    /* after a final tick the set's flags agree with the detector; the
     * ticks made changes (ejections ended): counted after the reporters
     * are done, so a scheduler that runs the tick loop first cannot fail
     * the test */
    int rc = lbk_outlier_tick(s.od, T0 + 3600 * SEC); /* past any cap */
    assert_true(rc >= 0);
    changes += rc;
    assert_true(changes > 0);
    uint32_t flagged = 0;
    for (uint32_t i = 0; i < f.n; i++) {
        lbk_outlier_info in;
        assert_ok(lbk_outlier_get_info(s.od, f.b[i], &in));
        assert_int_equal(in.ejected, lbk_backend_ejected(f.b[i]));
        flagged += in.ejected;
    }
    assert_int_equal(flagged, lbk_outlier_ejected_count(s.od));
    lbk_outlier_uneject_all(s.od);
    lbk_outlier_free(s.od);
    fixture_done(&f);
}

/* ---- breaker: exactly `trials` admissions when half-open -------------- */

static void *breaker_caller(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 2000; k++) {
        if (lbk_breaker_allow(s->br, T0 + 5 * SEC) == 0)
            j->got++;
    }
    return NULL;
}

static void *breaker_recorder(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 5000; k++) {
        lbk_breaker_record(s->br, k % 3 != 0, T0);
        if (lbk_breaker_allow(s->br, T0) == 0)
            j->got++;
    }
    return NULL;
}

static void test_breaker_half_open_admissions(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    lbk_breaker_options o;
    lbk_breaker_options_init(&o);
    o.half_open_trials = 3;
    o.failure_ratio = 0.3;
    assert_ok(lbk_breaker_create(&o, NULL, &s.br));
    job jobs[NTHREADS];
    /* racing records (1/3 failures) open it exactly once */
    run_threads(&s, breaker_recorder, jobs);
    lbk_breaker_state st;
    assert_ok(lbk_breaker_get_state(s.br, &st));
    assert_int_equal(st, LBK_BREAKER_OPEN);
    assert_lbk(lbk_breaker_allow(s.br, T0 + 5 * SEC - 1), LBK_EAGAIN);
    /* racing allows after the timeout: exactly 3 trials in total */
    run_threads(&s, breaker_caller, jobs);
    long total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += jobs[i].got;
    assert_int_equal(total, 3);
    assert_int_equal(atomic_load(&s.violations), 0);
    lbk_breaker_free(s.br);
}

/* ---- token buckets and the retry budget: never over-admit ------------- */

static void *bucket_taker(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 3000; k++)
        if (lbk_tokenbucket_take(s->tb[j->id], 1, T0) == 0)
            j->got++;
    return NULL;
}

static void test_buckets_under_contention(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    job jobs[NTHREADS];
    /* one flat bucket shared by all: exactly its burst */
    lbk_tokenbucket *flat;
    assert_ok(lbk_tokenbucket_create(1.0, 1000, NULL, T0, NULL, &flat));
    for (int i = 0; i < NTHREADS; i++)
        s.tb[i] = flat;
    run_threads(&s, bucket_taker, jobs);
    long total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += jobs[i].got;
    assert_int_equal(total, 1000);
    lbk_tokenbucket_free(flat);
    /* a parent of 1000 shared by children of 400: never over-admits */
    lbk_tokenbucket *parent;
    assert_ok(lbk_tokenbucket_create(1.0, 1000, NULL, T0, NULL, &parent));
    for (int i = 0; i < NTHREADS; i++)
        assert_ok(lbk_tokenbucket_create(1.0, 400, parent, T0, NULL, &s.tb[i]));
    run_threads(&s, bucket_taker, jobs);
    total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_true(jobs[i].got <= 400);
        total += jobs[i].got;
    }
    assert_true(total <= 1000 && total >= 400);
    double left;
    assert_ok(lbk_tokenbucket_available(parent, T0, &left));
    assert_true(fabs(left - (1000.0 - (double)total)) < 1e-9);
    for (int i = 0; i < NTHREADS; i++)
        lbk_tokenbucket_free(s.tb[i]);
    lbk_tokenbucket_free(parent);
}

static void *budget_user(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 2000; k++) {
        lbk_retry_budget_deposit(s->rb, T0 + 5 * SEC);
        if (lbk_retry_budget_withdraw(s->rb, T0 + 5 * SEC) == 0)
            j->got++;
    }
    return NULL;
}

static void test_retry_budget_under_contention(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    lbk_retry_budget_options o;
    lbk_retry_budget_options_init(&o); /* reserve 100 retries, 20% */
    assert_ok(lbk_retry_budget_create(&o, NULL, T0, &s.rb));
    job jobs[NTHREADS];
    run_threads(&s, budget_user, jobs);
    long total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += jobs[i].got;
    /* 8000 deposits: 100 + 20% x 8000 = 1700 at most, and at the end the
     * budget is spent to under one retry's worth */
    assert_true(total <= 1700);
    uint64_t bal;
    assert_ok(lbk_retry_budget_balance(s.rb, T0 + 5 * SEC, &bal));
    assert_int_equal((uint64_t)total + bal, 1700);
    lbk_retry_budget_free(s.rb);
}

/* ---- bandit: concurrent picks and reports lose nothing ---------------- */

static void *bandit_user(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    for (int k = 0; k < 3000; k++) {
        lbk_backend *b;
        if (lbk_bandit_pick(s->bd, &b) != 0) {
            atomic_fetch_add(&s->violations, 1);
            continue;
        }
        bool ok = lbk_backend_slot(b) != 0;
        if (lbk_bandit_report(s->bd, b, ok, 1000000) == 0)
            j->got++;
    }
    return NULL;
}

static void test_bandit_concurrent(void **state)
{
    (void)state;
    for (int algo = 0; algo < 2; algo++) {
        fixture f;
        fixture_init(&f, 4);
        shared s;
        memset(&s, 0, sizeof s);
        s.f = &f;
        lbk_bandit_options o;
        lbk_bandit_options_init(&o);
        o.algo = (lbk_bandit_algo)algo;
        o.seed = 5;
        assert_ok(lbk_bandit_build(f.snap, &o, NULL, &s.bd));
        job jobs[NTHREADS];
        run_threads(&s, bandit_user, jobs);
        long reports = 0;
        for (int i = 0; i < NTHREADS; i++)
            reports += jobs[i].got;
        double pulls = 0;
        for (uint32_t i = 0; i < f.n; i++) {
            lbk_bandit_stats st;
            assert_ok(lbk_bandit_get_stats(s.bd, f.b[i], &st));
            pulls += st.pulls;
        }
        assert_true(pulls == (double)reports); /* no report lost */
        assert_int_equal(reports, NTHREADS * 3000);
        assert_int_equal(atomic_load(&s.violations), 0);
        lbk_bandit_free(s.bd);
        fixture_done(&f);
    }
}

/* ---- panic: verdicts republished while pickers read ------------------- */

static void *panic_reader(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    pthread_barrier_wait(&s->start);
    while (!atomic_load(&s->stop)) {
        for (uint32_t i = 0; i < s->f->n; i++)
            j->got += lbk_panic_admits(s->panic, s->f->snap, i);
        lbk_backend_set_health(s->f->b[j->id],
                               (j->got & 1) ? LBK_HEALTH_DOWN : LBK_HEALTH_UP);
    }
    return NULL;
}

static void test_panic_concurrent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 8);
    shared s;
    memset(&s, 0, sizeof s);
    s.f = &f;
    assert_ok(lbk_panic_create(0.5, NULL, &s.panic));
    job jobs[NTHREADS];
    pthread_t t[NTHREADS];
    pthread_barrier_init(&s.start, NULL, NTHREADS + 1);
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (job){&s, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, panic_reader, &jobs[i]),
                         0);
    }
    pthread_barrier_wait(&s.start);
    for (int k = 0; k < 3000; k++) {
        int n = lbk_panic_update(s.panic, f.snap);
        assert_true(n == 0 || n == 1);
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&s.start);
    /* 4 of 8 at most are down: never below 50%, never panic */
    assert_int_equal(lbk_panic_update(s.panic, f.snap), 0);
    lbk_panic_free(s.panic);
    fixture_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outlier_reports_and_ticks),
        cmocka_unit_test(test_breaker_half_open_admissions),
        cmocka_unit_test(test_buckets_under_contention),
        cmocka_unit_test(test_retry_budget_under_contention),
        cmocka_unit_test(test_bandit_concurrent),
        cmocka_unit_test(test_panic_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
