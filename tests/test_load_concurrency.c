/*
 * tests/test_load_concurrency.c - least-connections and P2C pickers used
 * from several threads while a writer flips health, changes weights and
 * weight scales, rebuilds and publishes new pickers in an lbk_cell.  Run
 * under ThreadSanitizer by .ci/run (suite 'concurrency').
 *
 * Proves: no data race or use after free (TSan / ASan would report); every
 * pick succeeds while one backend stays eligible; every request begun is
 * ended, so all in-flight counts return to exactly 0; and after the threads
 * stop, the least-connections tree has settled: single-threaded picks
 * return exact minima again without a refresh.
 * Reader threads: $LBK_TEST_THREADS (default 3).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/leastconn.h"
#include "lbkit/p2c.h"

__extension__ typedef unsigned __int128 u128;

enum { N = 40, ITERS = 50000, RING = 8, MAX_THREADS = 16 };

struct shared {
    lbk_set *set;
    lbk_backend *b[N];
    lbk_cell cell;
    bool p2c; /* which picker the cell holds */
    bool churn;
    _Atomic int stop;
    _Atomic long errors;
    _Atomic long picks;
};

static int nthreads(void)
{
    const char *s = getenv("LBK_TEST_THREADS");
    int t = s ? atoi(s) : 3;
    return t < 1 ? 1 : t > MAX_THREADS ? MAX_THREADS : t;
}

static void note_error(struct shared *sh, int rc, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, lbk_errname(rc));
    atomic_fetch_add(&sh->errors, 1);
}

/* Build a picker over a fresh snapshot and publish it (writer only). */
static void publish(struct shared *sh, uint64_t seed)
{
    const lbk_snapshot *snap;
    if (lbk_set_snapshot(sh->set, &snap) < 0)
        fail_msg("snapshot");
    lbk_ref *obj;
    if (sh->p2c) {
        lbk_p2c_options o;
        lbk_p2c_options_init(&o);
        o.seed = seed;
        o.mode = (seed & 1) ? LBK_P2C_PEAK_EWMA : LBK_P2C_LEAST_REQUEST;
        lbk_p2c *p;
        assert_ok(lbk_p2c_build(snap, &o, NULL, &p));
        obj = (lbk_ref *)p; /* an lbk_ref comes first */
    } else {
        lbk_leastconn_options o;
        lbk_leastconn_options_init(&o);
        o.seed = seed;
        lbk_leastconn *lc;
        assert_ok(lbk_leastconn_build(snap, &o, NULL, &lc));
        obj = (lbk_ref *)lc;
    }
    lbk_snapshot_release(snap); /* the picker holds its own */
    assert_ok(lbk_cell_publish(&sh->cell, obj));
}

static int do_pick(struct shared *sh, lbk_ref *obj, uint64_t now,
                   lbk_backend **out)
{
    if (sh->p2c) {
        int rc = lbk_p2c_pick((lbk_p2c *)obj, now, out);
        if (rc == 0)
            rc = lbk_backend_begin(*out);
        return rc;
    }
    return lbk_leastconn_pick((lbk_leastconn *)obj, out);
}

static int do_release(struct shared *sh, lbk_ref *obj, lbk_backend *b,
                      uint64_t now, uint64_t *rs)
{
    if (sh->p2c) {
        lbk_backend_record_latency(b, 1000 + test_rand(rs) % 100000, now);
        return lbk_backend_end(b);
    }
    return lbk_leastconn_release((lbk_leastconn *)obj, b);
}

static void *reader(void *arg)
{
    struct shared *sh = arg;
    uint64_t rs = (uint64_t)(uintptr_t)&rs, now = 0;
    lbk_backend *ring[RING] = {0};
    unsigned head = 0;
    for (int it = 0; it < ITERS; it++) {
        now += 1000;
        lbk_ref *obj = lbk_cell_acquire(&sh->cell);
        if (obj == NULL) {
            note_error(sh, 0, "empty cell");
            break;
        }
        /* Finish the oldest request (through whatever picker is current),
         * then start a new one. */
        if (ring[head] != NULL) {
            int rc = do_release(sh, obj, ring[head], now, &rs);
            if (rc < 0)
                note_error(sh, rc, "release");
            ring[head] = NULL;
        }
        lbk_backend *b;
        int rc = do_pick(sh, obj, now, &b);
        if (rc < 0)
            note_error(sh, rc, "pick");
        else
            ring[head] = b;
        head = (head + 1) % RING;
        lbk_ref_release(obj);
        atomic_fetch_add(&sh->picks, 1);
    }
    /* Leave up to RING/2 requests in flight for the settle check; end the
     * rest. */
    lbk_ref *obj = lbk_cell_acquire(&sh->cell);
    for (unsigned k = 0; k < RING; k++) {
        if (ring[k] == NULL || (!sh->churn && k < RING / 2 && !sh->p2c))
            continue;
        int rc = do_release(sh, obj, ring[k], now, &rs);
        if (rc < 0)
            note_error(sh, rc, "drain");
    }
    lbk_ref_release(obj);
    return NULL;
}

static void *writer(void *arg)
{
    struct shared *sh = arg;
    uint64_t rs = 99;
    for (uint64_t step = 1; !atomic_load(&sh->stop); step++) {
        uint32_t i = 1 + (uint32_t)(test_rand(&rs) % (N - 1)); /* 0 stays */
        switch (test_rand(&rs) % 4) {
        case 0:
            lbk_backend_set_health(sh->b[i], (test_rand(&rs) & 1)
                                                 ? LBK_HEALTH_DOWN
                                                 : LBK_HEALTH_UP);
            break;
        case 1:
            lbk_backend_set_weight_scale(sh->b[i],
                                         (double)(test_rand(&rs) % 5) / 4);
            break;
        case 2:
            lbk_backend_set_ejected(sh->b[i], test_rand(&rs) & 1);
            break;
        default:
            assert_ok(lbk_set_set_weight(sh->set, lbk_backend_slot(sh->b[i]),
                                         (uint32_t)(test_rand(&rs) % 4)));
            publish(sh, step);
            break;
        }
        sched_yield();
    }
    return NULL;
}

static void run(bool p2c, bool churn)
{
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    sh.p2c = p2c;
    sh.churn = churn;
    assert_ok(lbk_set_create(NULL, &sh.set));
    for (uint32_t i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(sh.set, name, 1 + i % 3, NULL, &slot));
        sh.b[i] = lbk_set_backend(sh.set, slot);
    }
    lbk_cell_init(&sh.cell);
    publish(&sh, 1);

    int t = nthreads();
    pthread_t rd[MAX_THREADS], wr;
    for (int k = 0; k < t; k++)
        assert_int_equal(pthread_create(&rd[k], NULL, reader, &sh), 0);
    if (churn)
        assert_int_equal(pthread_create(&wr, NULL, writer, &sh), 0);
    for (int k = 0; k < t; k++)
        pthread_join(rd[k], NULL);
    atomic_store(&sh.stop, 1);
    if (churn)
        pthread_join(wr, NULL);
    assert_int_equal(atomic_load(&sh.errors), 0);
    assert_int_equal(atomic_load(&sh.picks), (long)t * ITERS);

    if (!churn && !p2c) {
        /* Settled: each of these picks returns an exact minimum. */
        lbk_ref *obj = lbk_cell_acquire(&sh.cell);
        lbk_leastconn *lc = (lbk_leastconn *)obj;
        lbk_backend **held = calloc(2 * N, sizeof(*held));
        for (int k = 0; k < 2 * N; k++) {
            assert_ok(lbk_leastconn_pick(lc, &held[k]));
            uint64_t cnf = lbk_backend_in_flight(held[k]) - 1;
            uint64_t cws = 0;
            for (uint32_t i = 0; i < N; i++)
                if (sh.b[i] == held[k])
                    cws = lbk_backend_weight(sh.b[i]);
            for (uint32_t i = 0; i < N; i++) {
                uint64_t nf = lbk_backend_in_flight(sh.b[i]);
                uint64_t ws = lbk_backend_weight(sh.b[i]);
                assert_false((u128)cnf * ws > (u128)nf * cws);
            }
        }
        for (int k = 0; k < 2 * N; k++)
            assert_ok(lbk_leastconn_release(lc, held[k]));
        free(held);
        /* The requests the readers left in flight. */
        for (uint32_t i = 0; i < N; i++)
            while (lbk_backend_in_flight(sh.b[i]) > 0)
                assert_ok(lbk_leastconn_release(lc, sh.b[i]));
        lbk_ref_release(obj);
    }
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(lbk_backend_in_flight(sh.b[i]), 0);
    lbk_cell_clear(&sh.cell);
    lbk_set_free(sh.set);
}

static void test_leastconn_threads(void **state)
{
    (void)state;
    run(false, false);
}

static void test_leastconn_threads_churn(void **state)
{
    (void)state;
    run(false, true);
}

static void test_p2c_threads_churn(void **state)
{
    (void)state;
    run(true, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leastconn_threads),
        cmocka_unit_test(test_leastconn_threads_churn),
        cmocka_unit_test(test_p2c_threads_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
