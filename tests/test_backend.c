/*
 * tests/test_backend.c - the backend set: control plane, snapshots, live
 * state, every documented error, and allocation failure at every site.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"

static lbk_set *new_set(void)
{
    lbk_set *set = NULL;
    assert_ok(lbk_set_create(NULL, &set));
    return set;
}

static uint32_t add(lbk_set *set, const char *name, uint32_t w)
{
    uint32_t slot = UINT32_MAX;
    assert_ok(lbk_set_add(set, name, w, NULL, &slot));
    return slot;
}

static void test_add_find_iter(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    int user = 7;
    uint32_t s0, s1, s2;
    assert_ok(lbk_set_add(set, "a:1", 3, &user, &s0));
    assert_ok(lbk_set_add(set, "b:1", 0, NULL, &s1));
    assert_ok(lbk_set_add(set, "c:1", 5, NULL, &s2));
    assert_int_equal(s0, 0);
    assert_int_equal(s1, 1);
    assert_int_equal(s2, 2);
    assert_int_equal(lbk_set_count(set), 3);
    assert_int_equal(lbk_set_total_weight(set), 8);
    uint32_t slot;
    assert_ok(lbk_set_find(set, "c:1", &slot));
    assert_int_equal(slot, 2);
    assert_lbk(lbk_set_find(set, "zz", &slot), LBK_ENOENT);
    lbk_backend *b = lbk_set_backend(set, 0);
    assert_string_equal(lbk_backend_name(b), "a:1");
    assert_int_equal(lbk_backend_name_len(b), 3);
    assert_ptr_equal(lbk_backend_user(b), &user);
    assert_int_equal(lbk_backend_weight(b), 3);
    assert_int_equal(lbk_backend_slot(b), 0);
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_UP);
    assert_true(lbk_backend_eligible(b));

    uint32_t cursor = 0, seen = 0;
    lbk_backend *it;
    while (lbk_set_iter(set, &cursor, &it) == 1)
        assert_int_equal(lbk_backend_slot(it), seen++);
    assert_int_equal(seen, 3);
    lbk_set_free(set);
}

static void test_generation_changes(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    uint64_t g = lbk_set_generation(set);
    uint32_t s = add(set, "a", 1);
    assert_true(lbk_set_generation(set) > g);
    g = lbk_set_generation(set);
    assert_ok(lbk_set_set_weight(set, s, 9));
    assert_true(lbk_set_generation(set) > g);
    g = lbk_set_generation(set);
    assert_ok(lbk_set_set_priority(set, s, 2));
    assert_true(lbk_set_generation(set) > g);
    g = lbk_set_generation(set);
    assert_ok(lbk_set_remove(set, s));
    assert_true(lbk_set_generation(set) > g);
    g = lbk_set_generation(set);
    /* failures do not change it */
    assert_lbk(lbk_set_remove(set, s), LBK_ENOENT);
    assert_int_equal(lbk_set_generation(set), g);
    lbk_set_free(set);
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    uint32_t slot = 12345;
    char longname[LBK_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname);
    longname[LBK_NAME_MAX + 1] = '\0';

    assert_lbk(lbk_set_create(NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {NULL, NULL, NULL};
    lbk_set *other = NULL;
    assert_lbk(lbk_set_create(&half, &other), LBK_EINVAL);
    assert_null(other);

    assert_lbk(lbk_set_add(NULL, "a", 1, NULL, &slot), LBK_EINVAL);
    assert_lbk(lbk_set_add(set, NULL, 1, NULL, &slot), LBK_EINVAL);
    assert_lbk(lbk_set_add(set, "a", 1, NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_set_add(set, "", 1, NULL, &slot), LBK_EINVAL);
    assert_lbk(lbk_set_add(set, longname, 1, NULL, &slot), LBK_ETOOLONG);
    longname[LBK_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    assert_ok(lbk_set_add(set, longname, 1, NULL, &slot));
    assert_ok(lbk_set_remove(set, slot));
    assert_int_equal(lbk_set_count(set), 0);

    uint32_t a = add(set, "a", UINT32_MAX - 1);
    uint64_t g = lbk_set_generation(set);
    assert_lbk(lbk_set_add(set, "a", 1, NULL, &slot), LBK_EEXIST);
    assert_lbk(lbk_set_add(set, "b", 2, NULL, &slot), LBK_EOVERFLOW);
    uint32_t b = add(set, "b", 1); /* total exactly UINT32_MAX */
    assert_int_equal(lbk_set_total_weight(set), UINT32_MAX);
    assert_lbk(lbk_set_set_weight(set, b, 2), LBK_EOVERFLOW);
    assert_int_equal(lbk_backend_weight(lbk_set_backend(set, b)), 1);
    assert_ok(lbk_set_set_weight(set, a, 0));
    assert_ok(lbk_set_set_weight(set, b, UINT32_MAX));
    assert_int_equal(lbk_set_total_weight(set), UINT32_MAX);
    g = lbk_set_generation(set);

    assert_lbk(lbk_set_remove(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_set_remove(set, 99), LBK_ENOENT);
    assert_lbk(lbk_set_set_weight(NULL, 0, 1), LBK_EINVAL);
    assert_lbk(lbk_set_set_weight(set, 99, 1), LBK_ENOENT);
    assert_lbk(lbk_set_set_priority(NULL, 0, 1), LBK_EINVAL);
    assert_lbk(lbk_set_set_priority(set, 99, 1), LBK_ENOENT);
    assert_lbk(lbk_set_set_priority(set, a, LBK_PRIORITY_MAX + 1), LBK_ERANGE);
    assert_lbk(lbk_set_find(NULL, "a", &slot), LBK_EINVAL);
    assert_lbk(lbk_set_find(set, NULL, &slot), LBK_EINVAL);
    assert_lbk(lbk_set_find(set, "a", NULL), LBK_EINVAL);
    assert_lbk(lbk_set_find(set, "", &slot), LBK_ENOENT);
    assert_null(lbk_set_backend(set, 99));
    assert_null(lbk_set_backend(NULL, 0));
    uint32_t cursor = 0;
    lbk_backend *it;
    assert_lbk(lbk_set_iter(NULL, &cursor, &it), LBK_EINVAL);
    assert_lbk(lbk_set_iter(set, NULL, &it), LBK_EINVAL);
    assert_lbk(lbk_set_iter(set, &cursor, NULL), LBK_EINVAL);
    assert_lbk(lbk_set_set_ewma_decay(set, 0), LBK_EINVAL);
    assert_lbk(lbk_set_set_ewma_decay(NULL, 1), LBK_EINVAL);
    assert_lbk(lbk_set_snapshot(NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_set_snapshot(set, NULL), LBK_EINVAL);
    assert_lbk(lbk_set_publish(NULL), LBK_EINVAL);
    assert_lbk(lbk_set_acquire(NULL, NULL), LBK_EINVAL);
    assert_lbk(lbk_snapshot_retain(NULL), LBK_EINVAL);
    lbk_snapshot_release(NULL);
    lbk_set_free(NULL);
    assert_int_equal(lbk_set_generation(set), g);
    assert_int_equal(lbk_set_count(set), 2);

    /* removing twice */
    assert_ok(lbk_set_remove(set, a));
    assert_lbk(lbk_set_remove(set, a), LBK_ENOENT);
    assert_lbk(lbk_set_set_weight(set, a, 1), LBK_ENOENT);

    /* NULL getters are safe */
    assert_null(lbk_backend_name(NULL));
    assert_int_equal(lbk_backend_slot(NULL), UINT32_MAX);
    assert_int_equal(lbk_backend_health(NULL), LBK_HEALTH_DOWN);
    assert_false(lbk_backend_eligible(NULL));
    assert_lbk(lbk_backend_set_health(NULL, LBK_HEALTH_UP), LBK_EINVAL);
    assert_lbk(lbk_backend_begin(NULL), LBK_EINVAL);
    assert_lbk(lbk_backend_end(NULL), LBK_EINVAL);
    assert_lbk(lbk_backend_record_latency(NULL, 1, 1), LBK_EINVAL);
    assert_lbk(lbk_backend_set_ejected(NULL, true), LBK_EINVAL);
    assert_lbk(lbk_backend_set_weight_scale(NULL, 1.0), LBK_EINVAL);
    assert_int_equal(lbk_set_count(NULL), 0);
    assert_int_equal(lbk_snapshot_count(NULL), 0);
    lbk_set_free(set);
}

static void test_live_state(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    lbk_backend *b = lbk_set_backend(set, add(set, "a", 1));
    assert_lbk(lbk_backend_set_health(b, (lbk_health)3), LBK_EINVAL);
    assert_ok(lbk_backend_set_health(b, LBK_HEALTH_DRAINING));
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_DRAINING);
    assert_false(lbk_backend_eligible(b));
    assert_ok(lbk_backend_set_health(b, LBK_HEALTH_UP));
    assert_true(lbk_backend_eligible(b));
    /* ejection composes with health: both must say yes */
    assert_ok(lbk_backend_set_ejected(b, true));
    assert_true(lbk_backend_ejected(b));
    assert_false(lbk_backend_eligible(b));
    assert_int_equal(lbk_backend_health(b), LBK_HEALTH_UP);
    assert_ok(lbk_backend_set_health(b, LBK_HEALTH_DOWN));
    assert_ok(lbk_backend_set_ejected(b, false));
    assert_false(lbk_backend_eligible(b));
    assert_ok(lbk_backend_set_health(b, LBK_HEALTH_UP));
    assert_true(lbk_backend_eligible(b));

    assert_lbk(lbk_backend_end(b), LBK_ESTATE);
    assert_int_equal(lbk_backend_in_flight(b), 0);
    assert_ok(lbk_backend_begin(b));
    assert_ok(lbk_backend_begin(b));
    assert_int_equal(lbk_backend_in_flight(b), 2);
    assert_ok(lbk_backend_end(b));
    assert_ok(lbk_backend_end(b));
    assert_lbk(lbk_backend_end(b), LBK_ESTATE);
    atomic_store(&b->in_flight, UINT32_MAX);
    assert_lbk(lbk_backend_begin(b), LBK_EOVERFLOW);
    assert_int_equal(lbk_backend_in_flight(b), UINT32_MAX);
    atomic_store(&b->in_flight, 0);

    assert_ok(lbk_backend_set_weight_scale(b, 0.25));
    assert_true(fabs(lbk_backend_weight_scale(b) - 0.25) < 1e-4);
    assert_lbk(lbk_backend_set_weight_scale(b, 1.5), LBK_EINVAL);
    assert_lbk(lbk_backend_set_weight_scale(b, NAN), LBK_EINVAL);
    assert_true(fabs(lbk_backend_weight_scale(b) - 0.25) < 1e-4);
    lbk_set_free(set);
}

static void test_peak_ewma(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    lbk_backend *b = lbk_set_backend(set, add(set, "a", 1));
    const uint64_t tau = 1000000000; /* 1 s */
    assert_ok(lbk_set_set_ewma_decay(set, tau));
    assert_int_equal(lbk_backend_latency_samples(b), 0);
    assert_true(lbk_backend_latency_ewma(b) == 0.0);
    assert_ok(lbk_backend_record_latency(b, 100, 1000));
    assert_true(lbk_backend_latency_ewma(b) == 100.0);
    /* a peak replaces the value at once */
    assert_ok(lbk_backend_record_latency(b, 500, 1000));
    assert_true(lbk_backend_latency_ewma(b) == 500.0);
    /* a lower sample one tau later keeps e^-1 of the old value */
    assert_ok(lbk_backend_record_latency(b, 100, 1000 + tau));
    double want = 500.0 * exp(-1.0) + 100.0 * (1.0 - exp(-1.0));
    assert_true(fabs(lbk_backend_latency_ewma(b) - want) < 1e-9);
    /* time going backwards counts as dt = 0: value unchanged */
    double before = lbk_backend_latency_ewma(b);
    assert_ok(lbk_backend_record_latency(b, 1, 10));
    assert_true(lbk_backend_latency_ewma(b) == before);
    assert_int_equal(lbk_backend_latency_samples(b), 4);
    lbk_set_free(set);
}

static void test_snapshots(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    const lbk_snapshot *empty;
    assert_ok(lbk_set_acquire(set, &empty));
    assert_int_equal(lbk_snapshot_count(empty), 0);

    uint32_t a = add(set, "a", 1);
    add(set, "b", 2);
    assert_ok(lbk_set_set_priority(set, a, 3));
    const lbk_snapshot *s1;
    assert_ok(lbk_set_snapshot(set, &s1));
    assert_int_equal(lbk_snapshot_count(s1), 2);
    assert_int_equal(lbk_snapshot_weight(s1, 1), 2);
    assert_int_equal(lbk_snapshot_priority(s1, 0), 3);
    assert_int_equal(lbk_snapshot_total_weight(s1), 3);
    assert_int_equal(lbk_snapshot_generation(s1), lbk_set_generation(set));
    assert_null(lbk_snapshot_backend(s1, 2));
    assert_int_equal(lbk_snapshot_weight(s1, 9), 0);

    /* the published one does not change until publish */
    const lbk_snapshot *p;
    assert_ok(lbk_set_acquire(set, &p));
    assert_int_equal(lbk_snapshot_count(p), 0);
    lbk_snapshot_release(p);
    assert_ok(lbk_set_publish(set));
    assert_ok(lbk_set_acquire(set, &p));
    assert_int_equal(lbk_snapshot_count(p), 2);

    /* weight changes do not alter an existing snapshot */
    assert_ok(lbk_set_set_weight(set, a, 7));
    assert_int_equal(lbk_snapshot_weight(s1, 0), 1);
    assert_ok(lbk_snapshot_retain(s1));
    lbk_snapshot_release(s1);
    lbk_snapshot_release(s1);
    lbk_snapshot_release(p);
    lbk_snapshot_release(empty);
    lbk_set_free(set);
}

/* A removed backend stays valid while a snapshot lists it, and its slot is
 * not reused until that snapshot is gone. */
static void test_removed_slot_not_reused_while_listed(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set;
    assert_ok(lbk_set_create(&fa.hook, &set));
    uint32_t a = add(set, "a", 1);
    add(set, "b", 1);
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    lbk_backend *ba = lbk_snapshot_backend(snap, 0);
    assert_ok(lbk_backend_begin(ba)); /* a request in flight on "a" */
    assert_ok(lbk_set_remove(set, a));
    uint32_t c = add(set, "c", 1);
    assert_int_not_equal(c, a);                     /* slot a still reserved */
    assert_string_equal(lbk_backend_name(ba), "a"); /* still valid */
    assert_ok(lbk_backend_end(ba));                 /* finishes normally */
    lbk_snapshot_release(snap);
    uint32_t d = add(set, "d", 1);
    assert_int_equal(d, a); /* now reclaimed and reused */
    assert_lbk(lbk_set_find(set, "a", &c), LBK_ENOENT);
    lbk_set_free(set);
    assert_int_equal(fa.live, 0);
}

/* Snapshots outlive lbk_set_free; the set's memory goes with the last. */
static void test_snapshot_outlives_set(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set;
    assert_ok(lbk_set_create(&fa.hook, &set));
    add(set, "a", 1);
    assert_ok(lbk_set_publish(set));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_acquire(set, &snap));
    lbk_set_free(set);
    assert_true(fa.live > 0);
    assert_string_equal(lbk_backend_name(lbk_snapshot_backend(snap, 0)), "a");
    lbk_snapshot_release(snap);
    assert_int_equal(fa.live, 0);
}

/* Many adds and removes keep the name index exact (backward-shift delete). */
static void test_index_churn(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    enum { N = 2000 };
    static uint32_t slot_of[N];
    static bool present[N];
    uint64_t rs = 1;
    char name[32];
    for (int step = 0; step < 20000; step++) {
        int i = (int)(test_rand(&rs) % N);
        snprintf(name, sizeof name, "n%d", i);
        if (present[i]) {
            assert_ok(lbk_set_remove(set, slot_of[i]));
            present[i] = false;
        } else {
            assert_ok(lbk_set_add(set, name, 1, NULL, &slot_of[i]));
            present[i] = true;
        }
    }
    uint32_t count = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%d", i);
        uint32_t s;
        if (present[i]) {
            count++;
            assert_ok(lbk_set_find(set, name, &s));
            assert_int_equal(s, slot_of[i]);
        } else {
            assert_lbk(lbk_set_find(set, name, &s), LBK_ENOENT);
        }
    }
    assert_int_equal(lbk_set_count(set), count);
    assert_int_equal(lbk_set_total_weight(set), count);
    lbk_set_free(set);
}

/* Every getter answers NULL (and an index past the end) with its documented
 * neutral value instead of crashing. */
static void test_null_and_out_of_range_getters(void **state)
{
    (void)state;
    assert_int_equal(lbk_set_total_weight(NULL), 0);
    assert_int_equal(lbk_set_generation(NULL), 0);
    assert_null(lbk_snapshot_backend(NULL, 0));
    assert_int_equal(lbk_snapshot_weight(NULL, 0), 0);
    assert_int_equal(lbk_snapshot_priority(NULL, 0), 0);
    assert_int_equal(lbk_snapshot_total_weight(NULL), 0);
    assert_int_equal(lbk_snapshot_generation(NULL), 0);
    assert_int_equal(lbk_backend_name_len(NULL), 0);
    assert_null(lbk_backend_user(NULL));
    assert_int_equal(lbk_backend_weight(NULL), 0);
    assert_false(lbk_backend_ejected(NULL));
    assert_int_equal(lbk_backend_in_flight(NULL), 0);
    assert_true(lbk_backend_latency_ewma(NULL) == 0.0);
    assert_int_equal(lbk_backend_latency_samples(NULL), 0);
    assert_true(lbk_backend_weight_scale(NULL) == 0.0);

    lbk_set *set = new_set();
    uint32_t a = add(set, "a", 4);
    assert_ok(lbk_set_set_priority(set, a, 5));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_snapshot(set, &snap));
    assert_int_equal(lbk_snapshot_priority(snap, 0), 5);
    assert_int_equal(lbk_snapshot_priority(snap, 1), 0);
    assert_int_equal(lbk_snapshot_priority(snap, UINT32_MAX), 0);
    assert_null(lbk_snapshot_backend(snap, UINT32_MAX));
    assert_ptr_equal(lbk_snapshot_backend(snap, 0), lbk_set_backend(set, a));
    /* a new backend starts at full weight scale */
    assert_true(lbk_backend_weight_scale(lbk_set_backend(set, a)) == 1.0);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* A removed slot below the high-water mark answers LBK_ENOENT to every
 * control-plane call, and the failure changes nothing. */
static void test_removed_slot_is_enoent(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    uint32_t a = add(set, "a", 1);
    uint32_t b = add(set, "b", 2);
    assert_ok(lbk_set_remove(set, a));
    uint64_t g = lbk_set_generation(set);
    assert_lbk(lbk_set_set_priority(set, a, 1), LBK_ENOENT);
    assert_lbk(lbk_set_set_weight(set, a, 1), LBK_ENOENT);
    assert_lbk(lbk_set_remove(set, a), LBK_ENOENT);
    assert_null(lbk_set_backend(set, a));
    assert_int_equal(lbk_set_generation(set), g);
    assert_int_equal(lbk_set_total_weight(set), 2);
    /* iteration skips the hole */
    uint32_t cursor = 0;
    lbk_backend *it;
    assert_int_equal(lbk_set_iter(set, &cursor, &it), 1);
    assert_int_equal(lbk_backend_slot(it), b);
    assert_int_equal(lbk_set_iter(set, &cursor, &it), 0);
    lbk_set_free(set);
}

/* The internal accessors other modules use: the copied allocator and the
 * EWMA time constant. */
static void test_internal_accessors(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set;
    assert_ok(lbk_set_create(&fa.hook, &set));
    const lbk_allocator *a = lbk_set_allocator(set);
    assert_ptr_equal(a->user, &fa);
    assert_ptr_equal(a->alloc, fa.hook.alloc);
    assert_ptr_equal(a->free, fa.hook.free);
    assert_int_equal(lbk_set_ewma_tau_ns(set), UINT64_C(10000000000));
    assert_ok(lbk_set_set_ewma_decay(set, 12345));
    assert_int_equal(lbk_set_ewma_tau_ns(set), 12345);
    assert_lbk(lbk_set_set_ewma_decay(set, 0), LBK_EINVAL);
    assert_int_equal(lbk_set_ewma_tau_ns(set), 12345);
    lbk_set_free(set);
    assert_int_equal(fa.live, 0);

    lbk_set *libc;
    assert_ok(lbk_set_create(NULL, &libc));
    assert_non_null(lbk_set_allocator(libc)->alloc);
    assert_null(lbk_set_allocator(libc)->user);
    lbk_set_free(libc);
}

/* The sample counter saturates at UINT32_MAX instead of wrapping to 0 (which
 * would make the next sample count as the first). */
static void test_latency_samples_saturate(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    lbk_backend *b = lbk_set_backend(set, add(set, "a", 1));
    assert_ok(lbk_backend_record_latency(b, 1000, 1));
    atomic_store(&b->samples, UINT32_MAX);
    assert_ok(lbk_backend_record_latency(b, 10, 2));
    assert_int_equal(lbk_backend_latency_samples(b), UINT32_MAX);
    /* still an average, not a fresh first sample */
    double v = lbk_backend_latency_ewma(b);
    assert_true(v < 1000.0 && v > 10.0);
    lbk_set_free(set);
}

/*
 * Names whose 64-bit hashes collide.  XXH3-64 collisions cannot be found on
 * demand, so the test gives two backends the hash of another name (the
 * layout is visible through internal.h) and then grows the index, which
 * re-inserts every backend under its stored hash.  The probe must then tell
 * names apart by length and by bytes, not by hash alone.
 */
static void test_name_hash_collisions(void **state)
{
    (void)state;
    lbk_set *set = new_set();
    uint32_t a = add(set, "a", 1);   /* will collide with "b": same length */
    uint32_t x0 = add(set, "x0", 1); /* will collide with "zzz": longer */
    lbk_set_backend(set, a)->name_hash = lbk_hash("b", 1, 0);
    lbk_set_backend(set, x0)->name_hash = lbk_hash("zzz", 3, 0);
    char name[16];
    for (int i = 1; i < 16; i++) { /* crosses the index's first growth */
        snprintf(name, sizeof name, "x%d", i);
        add(set, name, 1);
    }
    uint32_t slot;
    assert_lbk(lbk_set_find(set, "b", &slot), LBK_ENOENT);
    assert_lbk(lbk_set_find(set, "zzz", &slot), LBK_ENOENT);
    uint32_t b = add(set, "b", 1); /* same hash as "a": not LBK_EEXIST */
    uint32_t z = add(set, "zzz", 1);
    assert_ok(lbk_set_find(set, "b", &slot));
    assert_int_equal(slot, b);
    assert_ok(lbk_set_find(set, "zzz", &slot));
    assert_int_equal(slot, z);
    assert_lbk(lbk_set_add(set, "b", 1, NULL, &slot), LBK_EEXIST);
    /* removing one of a colliding pair leaves the other findable */
    assert_ok(lbk_set_remove(set, a));
    assert_ok(lbk_set_find(set, "b", &slot));
    assert_int_equal(slot, b);
    assert_ok(lbk_set_remove(set, z));
    assert_lbk(lbk_set_find(set, "zzz", &slot), LBK_ENOENT);
    assert_ok(lbk_set_remove(set, x0));
    assert_int_equal(lbk_set_count(set), 16);
    lbk_set_free(set);
}

/* ---- allocation failure at every site ------------------------------ */

static void test_oom_create(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        lbk_set *set = NULL;
        int rc = lbk_set_create(&fa.hook, &set);
        if (rc == 0) {
            assert_true(k >= 2); /* the set and its first snapshot */
            lbk_set_free(set);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_null(set);
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(fa.live, 0);
}

/* Each control-plane call fails cleanly at each of its allocations. */
static void test_oom_every_call(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_set *set;
    assert_ok(lbk_set_create(&fa.hook, &set));
    char name[32];
    int sites_seen = 0;
    for (int i = 0; i < 40; i++) { /* crosses several growth points */
        snprintf(name, sizeof name, "backend-%d", i);
        for (long k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            uint64_t g = lbk_set_generation(set);
            uint32_t count = lbk_set_count(set);
            long live = fa.live;
            uint32_t slot = 777;
            int rc = lbk_set_add(set, name, 1, NULL, &slot);
            if (rc == 0)
                break;
            sites_seen++;
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(slot, 777);
            assert_int_equal(lbk_set_generation(set), g);
            assert_int_equal(lbk_set_count(set), count);
            /* grown capacity may be kept; it is freed with the set */
            assert_true(fa.live >= live);
            assert_lbk(lbk_set_find(set, name, &slot), LBK_ENOENT);
        }
    }
    assert_true(sites_seen >= 3); /* slots, index, backend */
    /* remove: grows the retired and free-slot lists */
    for (uint32_t s = 0; s < 20; s++) {
        for (long k = 0;; k++) {
            fail_alloc_reset(&fa, k);
            uint32_t count = lbk_set_count(set);
            int rc = lbk_set_remove(set, s);
            if (rc == 0)
                break;
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(lbk_set_count(set), count);
            assert_non_null(lbk_set_backend(set, s));
        }
    }
    /* snapshot and publish */
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        const lbk_snapshot *before;
        fail_alloc_reset(&fa, -1);
        assert_ok(lbk_set_acquire(set, &before));
        fail_alloc_reset(&fa, k);
        int rc = lbk_set_publish(set);
        fail_alloc_reset(&fa, -1);
        const lbk_snapshot *after;
        assert_ok(lbk_set_acquire(set, &after));
        if (rc == 0) {
            assert_ptr_not_equal(before, after);
            lbk_snapshot_release(before);
            lbk_snapshot_release(after);
            break;
        }
        assert_lbk(rc, LBK_ENOMEM);
        assert_ptr_equal(before, after); /* nothing published */
        lbk_snapshot_release(before);
        lbk_snapshot_release(after);
    }
    fail_alloc_reset(&fa, 0);
    const lbk_snapshot *snap = NULL;
    assert_lbk(lbk_set_snapshot(set, &snap), LBK_ENOMEM);
    assert_null(snap);
    fail_alloc_reset(&fa, -1);
    lbk_set_free(set);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_iter),
        cmocka_unit_test(test_generation_changes),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_live_state),
        cmocka_unit_test(test_peak_ewma),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_removed_slot_not_reused_while_listed),
        cmocka_unit_test(test_snapshot_outlives_set),
        cmocka_unit_test(test_index_churn),
        cmocka_unit_test(test_null_and_out_of_range_getters),
        cmocka_unit_test(test_removed_slot_is_enoent),
        cmocka_unit_test(test_internal_accessors),
        cmocka_unit_test(test_latency_samples_saturate),
        cmocka_unit_test(test_name_hash_collisions),
        cmocka_unit_test(test_oom_create),
        cmocka_unit_test(test_oom_every_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
