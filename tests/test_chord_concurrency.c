/*
 * tests/test_chord_concurrency.c - many threads look up keys on one ring at
 * once (lookups are read-only: no locks, no atomics needed), and each gets
 * the owner the single-threaded oracle gives.  Meant for ThreadSanitizer.
 */
#include <pthread.h>
#include <stdlib.h>

#include "testutil.h"

#include "lbkit/chord.h"

#define THREADS 4
#define LOOKUPS 5000

struct job {
    const lbk_chord *c;
    uint64_t seed;
    long wrong;
    long errors;
};

static void *lookup_thread(void *arg)
{
    struct job *j = arg;
    uint32_t n = lbk_chord_node_count(j->c);
    uint32_t path[64];
    for (int k = 0; k < LOOKUPS; k++) {
        uint64_t key = test_rand(&j->seed);
        uint32_t from = (uint32_t)(test_rand(&j->seed) % n), owner;
        lbk_chord_state st;
        if (lbk_chord_node(j->c, from, NULL, &st) < 0) {
            j->errors++;
            continue;
        }
        if (st != LBK_CHORD_LIVE)
            continue;
        lbk_chord_result res;
        if (lbk_chord_lookup(j->c, from, key, path, 64, &res) < 0 ||
            lbk_chord_owner(j->c, key, &owner) < 0)
            j->errors++;
        else if (res.owner != owner || path[0] != from)
            j->wrong++;
    }
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    (void)state;
    uint64_t seed = 1, ids[2000];
    for (int i = 0; i < 2000; i++)
        ids[i] = test_rand(&seed); /* distinct with overwhelming odds */
    lbk_chord *c;
    assert_ok(lbk_chord_create(NULL, ids, 2000, NULL, &c));
    for (uint32_t x = 0; x < 2000; x += 4) /* lookups also route around */
        assert_ok(lbk_chord_fail(c, x));   /* failed nodes */
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){c, 100 + (uint64_t)i, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, lookup_thread, &jobs[i]),
                         0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].wrong, 0);
        assert_int_equal(jobs[i].errors, 0);
    }
    lbk_chord_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
