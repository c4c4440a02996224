/*
 * tests/test_picker_concurrency.c - several threads pick and release
 * through one lbk_picker while the writer adds, removes, re-weights,
 * flips health and rebuilds; for every policy.  Run under ThreadSanitizer
 * (and ASan) in CI.
 *
 * What must hold:
 *   - every pick names a backend whose memory is alive: its name matches
 *     the record its user pointer points to (a freed-and-reused backend
 *     would not, and ASan/TSan would report the access);
 *   - begin/end balance: once every pick is released, every backend ever
 *     listed - still in the set or removed - has 0 requests in flight;
 *   - the only error a pick may return is LBK_ENOBACKEND.
 * Readers keep up to HOLD picks outstanding, so picks span rebuilds.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/picker.h"

#define READERS 3
#define HOLD 4
#define MAX_RECORDS 1024
#define MAGIC UINT64_C(0x6c626b6974726563)

typedef struct record {
    uint64_t magic;
    char name[32];
} record;

typedef struct shared {
    lbk_picker *picker;
    _Atomic int stop;
    _Atomic long picks;
    _Atomic long bad;    /* a pick naming the wrong backend */
    _Atomic long bad_rc; /* an error other than LBK_ENOBACKEND */
    _Atomic long bad_release;
} shared;

static void *reader(void *arg)
{
    shared *sh = arg;
    lbk_pick held[HOLD];
    int nheld = 0;
    uint64_t now = 1000, rs = (uint64_t)(uintptr_t)&held;
    while (!atomic_load(&sh->stop)) {
        now += 1000;
        lbk_pick pk;
        int rc = lbk_picker_pick(sh->picker, now, &pk);
        if (rc == LBK_ENOBACKEND)
            continue;
        if (rc != 0) {
            atomic_fetch_add(&sh->bad_rc, 1);
            continue;
        }
        atomic_fetch_add(&sh->picks, 1);
        lbk_backend *b = lbk_pick_backend(&pk);
        const record *rec = lbk_backend_user(b);
        if (rec == NULL || rec->magic != MAGIC ||
            strcmp(rec->name, lbk_backend_name(b)) != 0 ||
            lbk_backend_in_flight(b) == 0)
            atomic_fetch_add(&sh->bad, 1);
        if (nheld == HOLD) {
            uint32_t k = (uint32_t)(test_rand(&rs) % HOLD);
            lbk_outcome oc = {.success = true,
                              .latency_ns = 1000 + test_rand(&rs) % 50000,
                              .now_ns = now};
            if (lbk_picker_release(sh->picker, &held[k], &oc) != 0)
                atomic_fetch_add(&sh->bad_release, 1);
            held[k] = pk;
        } else {
            held[nheld++] = pk;
        }
    }
    for (int i = 0; i < nheld; i++)
        if (lbk_picker_release(sh->picker, &held[i], NULL) != 0)
            atomic_fetch_add(&sh->bad_release, 1);
    return NULL;
}

static void run_policy(const char *policy)
{
    static record rec[MAX_RECORDS];
    uint32_t nrec = 0;
    uint64_t rs = 2024;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (int i = 0; i < 24; i++) {
        record *r = &rec[nrec++];
        r->magic = MAGIC;
        snprintf(r->name, sizeof r->name, "%s-%u", policy, nrec);
        uint32_t slot;
        assert_ok(lbk_set_add(set, r->name, 1 + i % 4, r, &slot));
    }
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    o.policy = policy;
    shared sh = {0};
    assert_ok(lbk_picker_create(set, &o, NULL, &sh.picker));

    pthread_t tid[READERS];
    for (int t = 0; t < READERS; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, reader, &sh), 0);

    /* Snapshots kept by the writer pin some removed backends so their
     * in-flight counts can be checked at the end; the others are freed
     * and their slots reused as soon as no picker lists them. */
    const lbk_snapshot *kept[64];
    int nkept = 0;
    while (atomic_load(&sh.picks) < 100)
        sched_yield(); /* the readers are running */
    /* At least 300 changes, and on until the readers made 30000 picks
     * (bounded, so a starved machine still ends). */
    for (int it = 0;
         it < 300 || (atomic_load(&sh.picks) < 30000 && it < 100000); it++) {
        if (it % 8 == 0)
            sched_yield();
        uint32_t count = lbk_set_count(set);
        uint32_t cursor = (uint32_t)(test_rand(&rs) % 256), slot;
        lbk_backend *b = NULL;
        /* a random live backend */
        for (uint32_t tries = 0; b == NULL && tries < 256; tries++)
            b = lbk_set_backend(set, (cursor + tries) % 256);
        switch (test_rand(&rs) % 4) {
        case 0:
            if (count > 8 && b != NULL) {
                if (nkept < 64 && it % 2 == 0)
                    assert_ok(lbk_set_snapshot(set, &kept[nkept++]));
                assert_ok(lbk_set_remove(set, lbk_backend_slot(b)));
            }
            break;
        case 1:
            if (nrec < MAX_RECORDS && count < 40) {
                record *r = &rec[nrec++];
                r->magic = MAGIC;
                snprintf(r->name, sizeof r->name, "%s-%u", policy, nrec);
                assert_ok(lbk_set_add(
                    set, r->name, (uint32_t)(test_rand(&rs) % 6), r, &slot));
            }
            break;
        case 2:
            if (b != NULL)
                assert_ok(lbk_set_set_weight(set, lbk_backend_slot(b),
                                             (uint32_t)(test_rand(&rs) % 6)));
            break;
        default:
            if (b != NULL)
                assert_ok(lbk_backend_set_health(
                    b, test_rand(&rs) % 3 ? LBK_HEALTH_UP : LBK_HEALTH_DOWN));
            break;
        }
        assert_ok(lbk_picker_rebuild(sh.picker));
    }
    atomic_store(&sh.stop, 1);
    for (int t = 0; t < READERS; t++)
        pthread_join(tid[t], NULL);

    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_int_equal(atomic_load(&sh.bad_rc), 0);
    assert_int_equal(atomic_load(&sh.bad_release), 0);
    assert_true(atomic_load(&sh.picks) > 0);
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(set, &cursor, &b) == 1)
        assert_int_equal(lbk_backend_in_flight(b), 0);
    for (int k = 0; k < nkept; k++) {
        for (uint32_t i = 0; i < lbk_snapshot_count(kept[k]); i++)
            assert_int_equal(
                lbk_backend_in_flight(lbk_snapshot_backend(kept[k], i)), 0);
        lbk_snapshot_release(kept[k]);
    }
    lbk_picker_free(sh.picker);
    lbk_set_free(set);
}

static void test_round_robin(void **state)
{
    (void)state;
    run_policy("round_robin");
}

static void test_weighted_round_robin(void **state)
{
    (void)state;
    run_policy("weighted_round_robin");
}

static void test_random(void **state)
{
    (void)state;
    run_policy("random");
}

static void test_least_conn(void **state)
{
    (void)state;
    run_policy("least_conn");
}

static void test_p2c(void **state)
{
    (void)state;
    run_policy("p2c");
}

static void test_p2c_peak_ewma(void **state)
{
    (void)state;
    run_policy("p2c_peak_ewma");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_weighted_round_robin),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_p2c),
        cmocka_unit_test(test_p2c_peak_ewma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
