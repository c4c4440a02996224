/*
 * tests/test_hashing_concurrency.c - the ring and bounded loads from many
 * threads (run under ThreadSanitizer in CI).
 *
 *  - ring lookups while another thread flips backends' health: never a
 *    failure while one backend stays up, never a backend of another ring;
 *  - rings rebuilt and published through a publication cell while readers
 *    acquire, look up and release them (lifetimes, no use after free);
 *  - bounded acquire/release from 4 threads: every load stays within
 *    ceil(c * M / n) for M the most requests that can be in flight at
 *    once, and an acquire-only phase ends within ceil(c * total / n), with
 *    the loads summing to the total.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/bounded.h"
#include "lbkit/ring.h"

#define THREADS 4

static lbk_set *make_set(uint32_t n)
{
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.2.0.%u:6379", i + 1);
        assert_ok(lbk_set_add(set, name, 1, NULL, &slot));
    }
    return set;
}

/* ---- lookups racing health flips ------------------------------------- */

struct flip_ctx {
    const lbk_ring *ring;
    const lbk_snapshot *snap;
    _Atomic int stop;
    _Atomic long failures;
    _Atomic long lookups;
};

static void *lookup_worker(void *p)
{
    struct flip_ctx *c = p;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    long bad = 0, n = 0;
    while (!atomic_load(&c->stop) || n < 5000) {
        char key[24];
        int len = snprintf(key, sizeof key, "k%llu",
                           (unsigned long long)(test_rand(&s) % 100000));
        lbk_backend *b = NULL;
        lbk_backend *top[3];
        uint32_t cnt;
        if (lbk_ring_lookup(c->ring, key, (size_t)len, &b) != 0)
            bad++;
        else if (lbk_backend_slot(b) >= lbk_snapshot_count(c->snap) ||
                 lbk_snapshot_backend(c->snap, lbk_backend_slot(b)) != b)
            bad++;
        if (lbk_ring_lookup_top(c->ring, key, (size_t)len, 3, top, &cnt) != 0)
            bad++;
        n++;
    }
    atomic_fetch_add(&c->failures, bad);
    atomic_fetch_add(&c->lookups, n);
    return NULL;
}

static void test_ring_lookups_during_health_flips(void **state)
{
    (void)state;
    lbk_set *set = make_set(16);
    struct flip_ctx c = {0};
    assert_ok(lbk_set_snapshot(set, &c.snap));
    lbk_ring_options o;
    lbk_ring_options_init(&o);
    o.mode = LBK_RING_NGINX;
    lbk_ring *r;
    assert_ok(lbk_ring_build(c.snap, &o, NULL, &r));
    c.ring = r;
    pthread_t t[THREADS - 1];
    for (int i = 0; i < THREADS - 1; i++)
        assert_int_equal(pthread_create(&t[i], NULL, lookup_worker, &c), 0);
    uint64_t s = 1;
    for (int i = 0; i < 5000; i++) {
        /* backend 0 stays up, so a lookup always finds someone */
        uint32_t j = 1 + (uint32_t)(test_rand(&s) % 15);
        lbk_backend *b = lbk_snapshot_backend(c.snap, j);
        assert_ok(lbk_backend_set_health(b, test_rand(&s) % 2 ? LBK_HEALTH_DOWN
                                                              : LBK_HEALTH_UP));
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < THREADS - 1; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    assert_true(atomic_load(&c.lookups) >= 5000 * (THREADS - 1));
    lbk_ring_free(r);
    lbk_snapshot_release(c.snap);
    lbk_set_free(set);
}

/* ---- rings published while read --------------------------------------- */

struct pub_ctx {
    lbk_cell cell;
    _Atomic int stop;
    _Atomic long failures;
};

static void *reader_worker(void *p)
{
    struct pub_ctx *c = p;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    long bad = 0, n = 0;
    while (!atomic_load(&c->stop) || n < 2000) {
        lbk_ref *ref = lbk_cell_acquire(&c->cell);
        if (ref == NULL) {
            bad++;
            break;
        }
        const lbk_ring *r = (const lbk_ring *)ref;
        uint64_t h = test_rand(&s);
        lbk_backend *b;
        if (lbk_ring_lookup_hash(r, h, &b) != 0 || lbk_backend_name(b) == NULL)
            bad++;
        lbk_ref_release(ref);
        n++;
    }
    atomic_fetch_add(&c->failures, bad);
    return NULL;
}

static void test_ring_published_while_read(void **state)
{
    (void)state;
    lbk_set *set = make_set(8);
    struct pub_ctx c;
    lbk_cell_init(&c.cell);
    atomic_init(&c.stop, 0);
    atomic_init(&c.failures, 0);
    const lbk_snapshot *snap;
    lbk_ring *r;
    assert_ok(lbk_set_snapshot(set, &snap));
    assert_ok(lbk_ring_build(snap, NULL, NULL, &r));
    lbk_snapshot_release(snap);
    /* the ring's first member is its lbk_ref: the cell takes our ref */
    assert_ok(lbk_cell_publish(&c.cell, (lbk_ref *)r));
    pthread_t t[THREADS - 1];
    for (int i = 0; i < THREADS - 1; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_worker, &c), 0);
    for (uint32_t gen = 0; gen < 60; gen++) {
        /* the writer changes the set, rebuilds, publishes */
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.3.%u.%u:6379", gen / 200,
                 gen % 200 + 1);
        assert_ok(lbk_set_add(set, name, 1 + gen % 3, NULL, &slot));
        if (gen % 2 == 1) {
            uint32_t victim = (uint32_t)((gen * 7) % lbk_set_count(set));
            lbk_backend *vb = NULL;
            uint32_t cursor = 0;
            for (uint32_t k = 0; k <= victim; k++)
                assert_int_equal(lbk_set_iter(set, &cursor, &vb), 1);
            assert_ok(lbk_set_remove(set, lbk_backend_slot(vb)));
        }
        assert_ok(lbk_set_snapshot(set, &snap));
        assert_ok(lbk_ring_build(snap, NULL, NULL, &r));
        lbk_snapshot_release(snap);
        assert_ok(lbk_cell_publish(&c.cell, (lbk_ref *)r));
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < THREADS - 1; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    lbk_cell_clear(&c.cell);
    lbk_set_free(set);
}

/* ---- bounded loads from several threads -------------------------------- */

#define HELD 8
#define BACKENDS 5
#define FACTOR 125

struct bd_ctx {
    lbk_bounded *bd;
    uint32_t bound; /* ceil(c * THREADS * HELD / n) */
    int ops;
    _Atomic long violations;
    _Atomic long again;
};

static void *bounded_worker(void *p)
{
    struct bd_ctx *c = p;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    lbk_backend *held[HELD];
    int nheld = 0;
    long bad = 0, again = 0;
    for (int i = 0; i < c->ops; i++) {
        if (nheld < HELD && (nheld == 0 || test_rand(&s) % 2)) {
            char key[16];
            /* a few hot keys: the home backends fill up */
            int len = snprintf(key, sizeof key, "hot%u",
                               (unsigned)(test_rand(&s) % 4));
            lbk_backend *b;
            int rc = lbk_bounded_acquire(c->bd, key, (size_t)len, &b);
            if (rc == LBK_EAGAIN) {
                again++;
                continue;
            }
            if (rc != 0) {
                bad++;
                continue;
            }
            uint32_t l;
            if (lbk_bounded_load(c->bd, b, &l) != 0 || l > c->bound)
                bad++;
            held[nheld++] = b;
        } else {
            uint32_t j = (uint32_t)(test_rand(&s) % (uint32_t)nheld);
            if (lbk_bounded_release(c->bd, held[j]) != 0)
                bad++;
            held[j] = held[--nheld];
        }
    }
    while (nheld > 0)
        if (lbk_bounded_release(c->bd, held[--nheld]) != 0)
            bad++;
    atomic_fetch_add(&c->violations, bad);
    atomic_fetch_add(&c->again, again);
    return NULL;
}

static void *acquire_only_worker(void *p)
{
    struct bd_ctx *c = p;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    long bad = 0, again = 0;
    for (int i = 0; i < c->ops; i++) {
        char key[16];
        int len =
            snprintf(key, sizeof key, "hot%u", (unsigned)(test_rand(&s) % 4));
        lbk_backend *b;
        int rc = lbk_bounded_acquire(c->bd, key, (size_t)len, &b);
        if (rc == LBK_EAGAIN)
            again++;
        else if (rc != 0)
            bad++;
    }
    atomic_fetch_add(&c->violations, bad);
    atomic_fetch_add(&c->again, again);
    return NULL;
}

static void test_bounded_from_threads(void **state)
{
    (void)state;
    lbk_set *set = make_set(BACKENDS);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_bounded_options o;
    lbk_bounded_options_init(&o);
    o.balance_factor = FACTOR;
    lbk_bounded *bd;
    assert_ok(lbk_bounded_build(snap, &o, NULL, &bd));

    struct bd_ctx c = {bd, 0, 8000, 0, 0};
    c.bound = lbk_bounded_capacity(bd, THREADS * HELD);
    assert_int_equal(c.bound, (FACTOR * THREADS * HELD + 100 * BACKENDS - 1) /
                                  (100 * BACKENDS));
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bounded_worker, &c), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.violations), 0);
    assert_int_equal(lbk_bounded_total(bd), 0);
    print_message("mixed phase: %ld acquires refused with LBK_EAGAIN\n",
                  (long)atomic_load(&c.again));

    /* acquires only: the end state is within the bound of its total */
    c.ops = 1500;
    atomic_store(&c.again, 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, acquire_only_worker, &c),
                         0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.violations), 0);
    uint32_t total = lbk_bounded_total(bd);
    assert_int_equal(total, THREADS * 1500 - atomic_load(&c.again));
    uint32_t cap = lbk_bounded_capacity(bd, total), sum = 0;
    for (uint32_t i = 0; i < BACKENDS; i++) {
        uint32_t l;
        assert_ok(lbk_bounded_load(bd, lbk_snapshot_backend(snap, i), &l));
        assert_true(l <= cap);
        sum += l;
        for (uint32_t k = 0; k < l; k++)
            assert_ok(lbk_bounded_release(bd, lbk_snapshot_backend(snap, i)));
    }
    assert_int_equal(sum, total);
    assert_int_equal(lbk_bounded_total(bd), 0);
    lbk_bounded_free(bd);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_lookups_during_health_flips),
        cmocka_unit_test(test_ring_published_while_read),
        cmocka_unit_test(test_bounded_from_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
