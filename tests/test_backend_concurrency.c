/*
 * tests/test_backend_concurrency.c - readers on several threads acquire
 * snapshots, count requests in flight, flip health and record latency,
 * while one writer adds, removes, re-weights and publishes.  Run under
 * ThreadSanitizer by .ci/run.  Proves: no reader sees freed memory (ASan /
 * TSan would report), in-flight counts balance to zero, and every backend a
 * reader got from a snapshot still carries the name it was added with.
 * Also the publication cell alone (with and without empty publications) and
 * health racing ejection on one backend's shared state word.
 * Readers: $LBK_TEST_THREADS (default 3).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"

enum { NAMES = 64, WRITER_STEPS = 4000 };

struct shared {
    lbk_set *set;
    _Atomic int stop;
    _Atomic long reads;
    _Atomic long bad;
};

static void *reader(void *arg)
{
    struct shared *sh = arg;
    uint64_t rs = (uint64_t)(uintptr_t)&rs;
    uint64_t now = 0;
    while (!atomic_load(&sh->stop)) {
        const lbk_snapshot *snap;
        if (lbk_set_acquire(sh->set, &snap) < 0) {
            atomic_fetch_add(&sh->bad, 1);
            break;
        }
        uint32_t n = lbk_snapshot_count(snap);
        if (n > 0) {
            uint32_t i = (uint32_t)(test_rand(&rs) % n);
            lbk_backend *b = lbk_snapshot_backend(snap, i);
            const char *name = lbk_backend_name(b);
            /* names are "b<slot-independent id>" and never change */
            if (name == NULL || name[0] != 'b')
                atomic_fetch_add(&sh->bad, 1);
            if (lbk_backend_begin(b) < 0)
                atomic_fetch_add(&sh->bad, 1);
            lbk_backend_set_health(
                b, (test_rand(&rs) & 7) == 0 ? LBK_HEALTH_DOWN : LBK_HEALTH_UP);
            lbk_backend_record_latency(b, test_rand(&rs) % 1000, now += 100);
            (void)lbk_backend_eligible(b);
            if (lbk_backend_end(b) < 0)
                atomic_fetch_add(&sh->bad, 1);
        }
        lbk_snapshot_release(snap);
        atomic_fetch_add(&sh->reads, 1);
    }
    return NULL;
}

static void run(int nreaders, const lbk_allocator *alloc)
{
    struct shared sh = {0};
    assert_ok(lbk_set_create(alloc, &sh.set));
    pthread_t tid[16];
    for (int t = 0; t < nreaders; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, reader, &sh), 0);

    uint32_t slot_of[NAMES];
    bool present[NAMES] = {false};
    uint64_t rs = 99;
    char name[16];
    for (int step = 0; step < WRITER_STEPS; step++) {
        int i = (int)(test_rand(&rs) % NAMES);
        snprintf(name, sizeof name, "b%d", i);
        if (present[i] && (test_rand(&rs) & 1)) {
            assert_ok(lbk_set_remove(sh.set, slot_of[i]));
            present[i] = false;
        } else if (present[i]) {
            assert_ok(lbk_set_set_weight(sh.set, slot_of[i],
                                         (uint32_t)(test_rand(&rs) % 100)));
        } else {
            assert_ok(lbk_set_add(sh.set, name, 1, NULL, &slot_of[i]));
            present[i] = true;
        }
        if (step % 4 == 0)
            assert_ok(lbk_set_publish(sh.set));
        /* let the readers keep pace, so the two really interleave */
        while (atomic_load(&sh.reads) < step / 8)
            sched_yield();
    }
    atomic_store(&sh.stop, 1);
    for (int t = 0; t < nreaders; t++)
        pthread_join(tid[t], NULL);
    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_true(atomic_load(&sh.reads) > 0);
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(sh.set, &cursor, &b) == 1)
        assert_int_equal(lbk_backend_in_flight(b), 0);
    lbk_set_free(sh.set);
}

static int readers_from_env(void)
{
    const char *s = getenv("LBK_TEST_THREADS");
    int n = s ? atoi(s) : 3;
    return n < 1 ? 1 : n > 16 ? 16 : n;
}

static void test_readers_and_writer(void **state)
{
    (void)state;
    run(readers_from_env(), NULL);
}

static void test_no_leak_under_churn(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    run(2, &fa.hook);
    assert_int_equal(atomic_load(&fa.live), 0);
}

/* The publication cell alone: many acquires racing many publishes. */
struct cell_obj {
    lbk_ref ref;
    _Atomic long *frees;
    long value;
};

static void cell_obj_destroy(lbk_ref *r)
{
    struct cell_obj *o = (struct cell_obj *)r;
    atomic_fetch_add(o->frees, 1);
    o->value = -1;
    free(o);
}

struct cell_shared {
    lbk_cell cell;
    _Atomic int stop;
    _Atomic long bad;
};

static void *cell_reader(void *arg)
{
    struct cell_shared *cs = arg;
    while (!atomic_load(&cs->stop)) {
        struct cell_obj *o = (struct cell_obj *)lbk_cell_acquire(&cs->cell);
        if (o == NULL || o->value < 0)
            atomic_fetch_add(&cs->bad, 1);
        lbk_ref_release(o ? &o->ref : NULL);
    }
    return NULL;
}

static void test_cell_race(void **state)
{
    (void)state;
    _Atomic long frees = 0;
    struct cell_shared cs = {0};
    lbk_cell_init(&cs.cell);
    long made = 0;
    struct cell_obj *o = malloc(sizeof *o);
    lbk_ref_init(&o->ref, cell_obj_destroy);
    o->frees = &frees;
    o->value = made++;
    assert_ok(lbk_cell_publish(&cs.cell, &o->ref));
    int n = readers_from_env();
    pthread_t tid[16];
    for (int t = 0; t < n; t++)
        pthread_create(&tid[t], NULL, cell_reader, &cs);
    for (int i = 0; i < 20000; i++) {
        o = malloc(sizeof *o);
        lbk_ref_init(&o->ref, cell_obj_destroy);
        o->frees = &frees;
        o->value = made++;
        assert_ok(lbk_cell_publish(&cs.cell, &o->ref));
    }
    atomic_store(&cs.stop, 1);
    for (int t = 0; t < n; t++)
        pthread_join(tid[t], NULL);
    assert_int_equal(atomic_load(&cs.bad), 0);
    assert_int_equal(atomic_load(&frees), made - 1); /* all but current */
    lbk_cell_clear(&cs.cell);
    assert_int_equal(atomic_load(&frees), made);
}

/*
 * Threads of the two tests below start together (a spin on a flag after
 * they have all checked in), so their loops really overlap instead of
 * running one after another on a loaded machine.
 */
struct start_gate {
    _Atomic int ready;
    _Atomic int go;
};

static void gate_wait(struct start_gate *g)
{
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load(&g->go))
        sched_yield();
}

static void gate_open(struct start_gate *g, int threads)
{
    while (atomic_load(&g->ready) < threads)
        sched_yield();
    atomic_store(&g->go, 1);
}

/* Readers racing a writer that alternates between an object and an empty
 * cell: a reader gets either NULL or a live object, never a freed one, and
 * every object is freed exactly once. */
struct cell_shared_gated {
    struct cell_shared cs;
    struct start_gate gate;
};

static void *cell_reader_nullable(void *arg)
{
    struct cell_shared_gated *g = arg;
    gate_wait(&g->gate);
    while (!atomic_load(&g->cs.stop)) {
        struct cell_obj *o = (struct cell_obj *)lbk_cell_acquire(&g->cs.cell);
        if (o != NULL && o->value < 0)
            atomic_fetch_add(&g->cs.bad, 1);
        lbk_ref_release(o ? &o->ref : NULL);
    }
    return NULL;
}

static void test_cell_race_with_empty(void **state)
{
    (void)state;
    _Atomic long frees = 0;
    struct cell_shared_gated g = {0};
    lbk_cell_init(&g.cs.cell);
    int n = readers_from_env();
    pthread_t tid[16];
    for (int t = 0; t < n; t++)
        assert_int_equal(
            pthread_create(&tid[t], NULL, cell_reader_nullable, &g), 0);
    gate_open(&g.gate, n);
    long made = 0;
    for (int i = 0; i < 40000; i++) {
        if (i & 1) {
            assert_ok(lbk_cell_publish(&g.cs.cell, NULL));
            continue;
        }
        struct cell_obj *o = malloc(sizeof *o);
        assert_non_null(o);
        lbk_ref_init(&o->ref, cell_obj_destroy);
        o->frees = &frees;
        o->value = made++;
        assert_ok(lbk_cell_publish(&g.cs.cell, &o->ref));
    }
    atomic_store(&g.cs.stop, 1);
    for (int t = 0; t < n; t++)
        pthread_join(tid[t], NULL);
    assert_int_equal(atomic_load(&g.cs.bad), 0);
    assert_int_equal(atomic_load(&frees), made); /* the last publish was NULL */
    lbk_cell_clear(&g.cs.cell);
    assert_int_equal(atomic_load(&frees), made);
}

/* Health and ejection share one atomic word: threads setting health race a
 * thread toggling ejection, and neither may lose the other's bits. */
enum { FLIPS = 100000 };

struct flip_shared {
    lbk_backend *b;
    _Atomic int bad;
    struct start_gate gate;
};

static lbk_health health_for(int i)
{
    return i % 3 == 0   ? LBK_HEALTH_DOWN
           : i % 3 == 1 ? LBK_HEALTH_DRAINING
                        : LBK_HEALTH_UP;
}

static void *health_flipper(void *arg)
{
    struct flip_shared *fs = arg;
    gate_wait(&fs->gate);
    for (int i = 0; i < FLIPS; i++) {
        if (lbk_backend_set_health(fs->b, health_for(i)) < 0)
            atomic_fetch_add(&fs->bad, 1);
        if ((unsigned)lbk_backend_health(fs->b) > LBK_HEALTH_DOWN)
            atomic_fetch_add(&fs->bad, 1);
    }
    return NULL;
}

static void *eject_flipper(void *arg)
{
    struct flip_shared *fs = arg;
    gate_wait(&fs->gate);
    for (int i = 0; i < FLIPS; i++)
        if (lbk_backend_set_ejected(fs->b, (i & 1) == 0) < 0)
            atomic_fetch_add(&fs->bad, 1);
    if (lbk_backend_set_ejected(fs->b, true) < 0) /* end ejected */
        atomic_fetch_add(&fs->bad, 1);
    return NULL;
}

static void test_health_and_ejection_race(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    uint32_t slot;
    assert_ok(lbk_set_add(set, "b0", 1, NULL, &slot));
    struct flip_shared fs = {.b = lbk_set_backend(set, slot)};
    pthread_t th[2], te;
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, health_flipper, &fs), 0);
    assert_int_equal(pthread_create(&te, NULL, eject_flipper, &fs), 0);
    gate_open(&fs.gate, 3);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    pthread_join(te, NULL);
    assert_int_equal(atomic_load(&fs.bad), 0);
    /* both health threads wrote health_for(FLIPS - 1) last */
    assert_int_equal(lbk_backend_health(fs.b), health_for(FLIPS - 1));
    assert_true(lbk_backend_ejected(fs.b)); /* the last ejection survived */
    assert_false(lbk_backend_eligible(fs.b));
    assert_ok(lbk_backend_set_ejected(fs.b, false));
    assert_ok(lbk_backend_set_health(fs.b, LBK_HEALTH_UP));
    assert_true(lbk_backend_eligible(fs.b));
    lbk_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_and_writer),
        cmocka_unit_test(test_no_leak_under_churn),
        cmocka_unit_test(test_cell_race),
        cmocka_unit_test(test_cell_race_with_empty),
        cmocka_unit_test(test_health_and_ejection_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
