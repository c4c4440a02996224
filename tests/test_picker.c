/*
 * tests/test_picker.c - the generic entry point: policy names, pick and
 * release with in-flight accounting and latency reports for every policy,
 * rebuild after add/remove/re-weight with picks outstanding, health flips
 * at the next pick and all-down/all-zero errors for every policy, bad
 * input, allocation failure at every site of create and rebuild.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/picker.h"
#include "lbkit/wrr.h"

#if __has_include("lbkit/p2c.h")
#include "lbkit/p2c.h"
#endif

static const char *const all_policies[] = {
    "round_robin", "weighted_round_robin", "random", "least_conn",
    "p2c",         "p2c_peak_ewma",        "ucb1",   "thompson",
};
#define NPOL 6     /* the core policies, always built: the loops below */
#define NPOL_ALL 8 /* and the bandits (bandit.h), when that module is */

static lbk_set *make_set(uint32_t n, const uint32_t *w, const lbk_allocator *a)
{
    lbk_set *set;
    assert_ok(lbk_set_create(a, &set));
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%u", i);
        uint32_t slot;
        assert_ok(lbk_set_add(set, name, w ? w[i] : 1, NULL, &slot));
    }
    return set;
}

static lbk_picker *create(lbk_set *set, const char *policy, uint64_t seed)
{
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    o.policy = policy;
    o.seed = seed;
    lbk_picker *p;
    int rc = lbk_picker_create(set, &o, NULL, &p);
    if (rc != 0)
        fail_msg("create %s: %s", policy, lbk_errname(rc));
    return p;
}

static void test_policy_names(void **state)
{
    (void)state;
    assert_int_equal(lbk_policy_count(), NPOL_ALL);
    lbk_set *set = make_set(2, NULL, NULL);
    for (uint32_t i = 0; i < lbk_policy_count(); i++) {
        const char *name = lbk_policy_name((lbk_policy)i);
        assert_non_null(name);
        assert_string_equal(name, all_policies[i]);
        lbk_policy p;
        assert_ok(lbk_policy_from_name(name, &p));
        assert_int_equal(p, i);
        if (i < NPOL)
            assert_true(lbk_policy_available(p));
        if (!lbk_policy_available(p)) { /* its module was not built */
            lbk_picker_options o;
            lbk_picker_options_init(&o);
            o.policy = name;
            lbk_picker *q = (lbk_picker *)0x1;
            assert_lbk(lbk_picker_create(set, &o, NULL, &q), LBK_ENOTSUP);
            assert_ptr_equal(q, (lbk_picker *)0x1);
        }
    }
    lbk_set_free(set);
    assert_null(lbk_policy_name((lbk_policy)NPOL_ALL));
    assert_null(lbk_policy_name((lbk_policy)-1));
    assert_false(lbk_policy_available((lbk_policy)NPOL_ALL));
    lbk_policy p = LBK_POLICY_RANDOM;
    assert_lbk(lbk_policy_from_name("roundrobin", &p), LBK_ENOENT);
    assert_lbk(lbk_policy_from_name("", &p), LBK_ENOENT);
    assert_lbk(lbk_policy_from_name(NULL, &p), LBK_EINVAL);
    assert_lbk(lbk_policy_from_name("random", NULL), LBK_EINVAL);
    assert_int_equal(p, LBK_POLICY_RANDOM); /* untouched on error */
}

/* Every policy: pick counts in flight, release uncounts it and records the
 * latency; double release and foreign picks are refused. */
static void test_pick_release_every_policy(void **state)
{
    (void)state;
    uint32_t w[4] = {1, 2, 3, 4};
    for (int k = 0; k < NPOL; k++) {
        lbk_set *set = make_set(4, w, NULL);
        lbk_picker *p = create(set, all_policies[k], 3);
        lbk_picker *other = create(set, all_policies[k], 4);
        assert_int_equal(lbk_picker_policy(p), k);
        lbk_pick picks[40];
        uint32_t in_flight[4] = {0};
        for (int i = 0; i < 40; i++) {
            assert_ok(lbk_picker_pick(p, 1000 + i, &picks[i]));
            lbk_backend *b = lbk_pick_backend(&picks[i]);
            assert_non_null(b);
            assert_ptr_equal(b, picks[i].backend);
            assert_ptr_equal(lbk_set_backend(set, lbk_backend_slot(b)), b);
            assert_memory_equal(lbk_backend_name(b), "b", 1);
            in_flight[lbk_backend_slot(b)]++;
        }
        for (uint32_t s = 0; s < 4; s++)
            assert_int_equal(lbk_backend_in_flight(lbk_set_backend(set, s)),
                             in_flight[s]);
        assert_lbk(lbk_picker_release(other, &picks[0], NULL), LBK_EINVAL);
        lbk_backend *b0 = picks[0].backend;
        uint32_t samples = lbk_backend_latency_samples(b0);
        lbk_outcome oc = {.success = true, .latency_ns = 5000, .now_ns = 0};
        assert_ok(lbk_picker_release(p, &picks[0], &oc));
        assert_int_equal(lbk_backend_latency_samples(b0), samples + 1);
        assert_true(lbk_backend_latency_ewma(b0) > 0);
        assert_null(picks[0].backend);
        assert_null(lbk_pick_backend(&picks[0]));
        assert_lbk(lbk_picker_release(p, &picks[0], NULL), LBK_ESTATE);
        /* Latency from now_ns - start_ns when latency_ns is 0. */
        lbk_backend *b1 = picks[1].backend;
        samples = lbk_backend_latency_samples(b1);
        lbk_outcome oc2 = {.success = false, .latency_ns = 0, .now_ns = 9001};
        assert_ok(lbk_picker_release(p, &picks[1], &oc2));
        assert_int_equal(lbk_backend_latency_samples(b1), samples + 1);
        lbk_outcome none = {.success = true};
        samples = lbk_backend_latency_samples(picks[2].backend);
        lbk_backend *b2 = picks[2].backend;
        assert_ok(lbk_picker_release(p, &picks[2], &none));
        assert_int_equal(lbk_backend_latency_samples(b2), samples);
        for (int i = 3; i < 40; i++)
            assert_ok(lbk_picker_release(p, &picks[i], NULL));
        for (uint32_t s = 0; s < 4; s++)
            assert_int_equal(lbk_backend_in_flight(lbk_set_backend(set, s)), 0);
        lbk_picker_free(other);
        lbk_picker_free(p);
        lbk_set_free(set);
    }
}

/* Rebuild with picks outstanding: removed backends stay valid until their
 * picks are released, new ones are picked, counts end at 0. */
static void test_rebuild(void **state)
{
    (void)state;
    for (int k = 0; k < NPOL; k++) {
        lbk_set *set = make_set(3, NULL, NULL);
        lbk_picker *p = create(set, all_policies[k], 11);
        lbk_pick held[30];
        for (int i = 0; i < 30; i++)
            assert_ok(lbk_picker_pick(p, 1, &held[i]));
        /* Remove everything, add new backends, re-weight one. */
        for (uint32_t s = 0; s < 3; s++)
            assert_ok(lbk_set_remove(set, s));
        uint32_t slot;
        assert_ok(lbk_set_add(set, "new-a", 1, NULL, &slot));
        assert_ok(lbk_set_add(set, "new-b", 1, NULL, &slot));
        assert_ok(lbk_set_set_weight(set, slot, 5));
        assert_ok(lbk_picker_rebuild(p));
        for (int i = 0; i < 50; i++) {
            lbk_pick pk;
            assert_ok(lbk_picker_pick(p, 2, &pk));
            assert_memory_equal(lbk_backend_name(pk.backend), "new-", 4);
            assert_ok(lbk_picker_release(p, &pk, NULL));
        }
        /* The old picks still name their (removed) backends. */
        for (int i = 0; i < 30; i++) {
            assert_memory_equal(lbk_backend_name(held[i].backend), "b", 1);
            assert_int_equal(lbk_backend_name_len(held[i].backend), 2);
            assert_true(lbk_backend_in_flight(held[i].backend) > 0);
        }
        for (int i = 0; i < 30; i++) {
            lbk_backend *b = held[i].backend;
            uint32_t before = lbk_backend_in_flight(b);
            assert_ok(lbk_picker_release(p, &held[i], NULL));
            assert_int_equal(lbk_backend_in_flight(b), before - 1);
        }
        lbk_picker_free(p);
        lbk_set_free(set);
    }
}

/* Health flips honoured at the very next pick by every policy; all down
 * and all weight 0 give LBK_ENOBACKEND. */
static void test_health_every_policy(void **state)
{
    (void)state;
    uint32_t w[6] = {1, 2, 3, 1, 2, 3};
    for (int k = 0; k < NPOL; k++) {
        lbk_set *set = make_set(6, w, NULL);
        lbk_picker *p = create(set, all_policies[k], 5);
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 1), LBK_HEALTH_DOWN));
        assert_ok(lbk_backend_set_health(lbk_set_backend(set, 4),
                                         LBK_HEALTH_DRAINING));
        assert_ok(lbk_backend_set_ejected(lbk_set_backend(set, 5), true));
        for (int i = 0; i < 300; i++) {
            lbk_pick pk;
            assert_ok(lbk_picker_pick(p, (uint64_t)i, &pk));
            uint32_t s = lbk_backend_slot(pk.backend);
            if (s == 1 || s == 4 || s == 5)
                fail_msg("%s picked slot %u", all_policies[k], s);
            assert_ok(lbk_picker_release(p, &pk, NULL));
        }
        for (uint32_t s = 0; s < 6; s++)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, s),
                                             LBK_HEALTH_DOWN));
        lbk_pick pk = {0};
        assert_lbk(lbk_picker_pick(p, 1, &pk), LBK_ENOBACKEND);
        assert_null(pk.backend); /* not written */
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 2), LBK_HEALTH_UP));
        for (int i = 0; i < 20; i++) {
            assert_ok(lbk_picker_pick(p, 2, &pk));
            assert_int_equal(lbk_backend_slot(pk.backend), 2);
            assert_ok(lbk_picker_release(p, &pk, NULL));
        }
        for (uint32_t s = 0; s < 6; s++)
            assert_int_equal(lbk_backend_in_flight(lbk_set_backend(set, s)), 0);
        lbk_picker_free(p);
        lbk_set_free(set);

        uint32_t zero[3] = {0, 0, 0};
        set = make_set(3, zero, NULL);
        p = create(set, all_policies[k], 5);
        assert_lbk(lbk_picker_pick(p, 1, &pk), LBK_ENOBACKEND);
        lbk_picker_free(p);
        lbk_set_free(set);

        set = make_set(0, NULL, NULL);
        p = create(set, all_policies[k], 5);
        assert_lbk(lbk_picker_pick(p, 1, &pk), LBK_ENOBACKEND);
        lbk_picker_free(p);
        lbk_set_free(set);
    }
}

/* The options reach the policy: wrr without phase follows nginx's order. */
static void test_options_reach_policy(void **state)
{
    (void)state;
    uint32_t w[3] = {5, 1, 1};
    lbk_set *set = make_set(3, w, NULL);
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    o.policy = "weighted_round_robin";
    o.random_phase = false;
    o.seed = 1;
    lbk_picker *p;
    assert_ok(lbk_picker_create(set, &o, NULL, &p));
    /* nginx smooth WRR for {5, 1, 1}: a a b a c a a */
    static const uint32_t want[7] = {0, 0, 1, 0, 2, 0, 0};
    for (int i = 0; i < 14; i++) {
        lbk_pick pk;
        assert_ok(lbk_picker_pick(p, 0, &pk));
        assert_int_equal(lbk_backend_slot(pk.backend), want[i % 7]);
        assert_ok(lbk_picker_release(p, &pk, NULL));
    }
    lbk_picker_free(p);
    /* Seeded pickers repeat themselves. */
    o.policy = "random";
    lbk_picker *a, *b;
    assert_ok(lbk_picker_create(set, &o, NULL, &a));
    assert_ok(lbk_picker_create(set, &o, NULL, &b));
    for (int i = 0; i < 50; i++) {
        lbk_pick x, y;
        assert_ok(lbk_picker_pick(a, 0, &x));
        assert_ok(lbk_picker_pick(b, 0, &y));
        assert_ptr_equal(x.backend, y.backend);
        assert_ok(lbk_picker_release(a, &x, NULL));
        assert_ok(lbk_picker_release(b, &y, NULL));
    }
    lbk_picker_free(a);
    lbk_picker_free(b);
    lbk_set_free(set);
}

static void test_bad_input(void **state)
{
    (void)state;
    lbk_set *set = make_set(2, NULL, NULL);
    lbk_picker *p = (lbk_picker *)&p;
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    assert_lbk(lbk_picker_create(NULL, &o, NULL, &p), LBK_EINVAL);
    assert_lbk(lbk_picker_create(set, &o, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_picker_create(set, &o, &half, &p), LBK_EINVAL);
    o.policy = "fastest";
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ENOENT);
    o.policy = "weighted_round_robin";
    o.table_max = LBK_WRR_TABLE_LIMIT + 1;
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ERANGE);
    lbk_picker_options_init(&o);
    o.policy = "p2c";
    o.choices = 9;
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ERANGE);
    o.choices = 2;
    o.bias = -1.0;
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ERANGE);
    o.bias = NAN;
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ERANGE);
    o.bias = INFINITY;
    assert_lbk(lbk_picker_create(set, &o, NULL, &p), LBK_ERANGE);
    assert_ptr_equal(p, (lbk_picker *)&p);

    assert_ok(lbk_picker_create(set, NULL, NULL, &p)); /* round-robin */
    assert_int_equal(lbk_picker_policy(p), LBK_POLICY_ROUND_ROBIN);
    lbk_pick pk;
    assert_lbk(lbk_picker_pick(NULL, 0, &pk), LBK_EINVAL);
    assert_lbk(lbk_picker_pick(p, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_picker_release(NULL, &pk, NULL), LBK_EINVAL);
    assert_lbk(lbk_picker_release(p, NULL, NULL), LBK_EINVAL);
    memset(&pk, 0, sizeof pk);
    assert_lbk(lbk_picker_release(p, &pk, NULL), LBK_ESTATE);
    assert_lbk(lbk_picker_rebuild(NULL), LBK_EINVAL);
    assert_int_equal(lbk_picker_policy(NULL), LBK_POLICY_ROUND_ROBIN);
    assert_null(lbk_pick_backend(NULL));
    /* A pick whose backend the caller cleared: refused, nothing released
     * (the request stays in flight until the pick is restored) */
    assert_ok(lbk_picker_pick(p, 0, &pk));
    lbk_backend *kept = pk.backend;
    pk.backend = NULL;
    assert_lbk(lbk_picker_release(p, &pk, NULL), LBK_ESTATE);
    assert_int_equal(lbk_backend_in_flight(kept), 1);
    pk.backend = kept;
    assert_ok(lbk_picker_release(p, &pk, NULL));
    assert_int_equal(lbk_backend_in_flight(kept), 0);
    /* A request ended behind the picker's back: released anyway. */
    assert_ok(lbk_picker_pick(p, 0, &pk));
    lbk_backend *b = pk.backend;
    assert_ok(lbk_backend_end(b));
    assert_lbk(lbk_picker_release(p, &pk, NULL), LBK_ESTATE);
    assert_null(pk.backend);
    assert_int_equal(lbk_backend_in_flight(b), 0);
    lbk_picker_free(NULL);
    lbk_picker_options_init(NULL);
    lbk_picker_free(p);
    lbk_set_free(set);
}

/* Every allocation site of create and rebuild, for every policy: the set
 * (its snapshot) and the picker share one failing allocator. */

/*
 * Panic mode (Envoy's rule): below the threshold every pick ignores health
 * and draws among all backends of non-zero weight by weight; at or above
 * it, only eligible backends serve.  The verdict follows
 * lbk_picker_refresh_panic() and rebuilds; a pick that finds nothing
 * eligible draws at once.  In-flight counts balance in both modes.
 */
static void test_panic_mode(void **state)
{
    (void)state;
    enum { N = 10, PICKS = 4000 };
    uint32_t w[N] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}; /* the last takes none */
    for (int p = 0; p < NPOL; p++) {
        lbk_set *set = make_set(N, w, NULL);
        lbk_picker_options o;
        lbk_picker_options_init(&o);
        o.policy = all_policies[p];
        o.seed = 7;
        o.panic_threshold = 0.5;
        lbk_picker *pk;
        assert_ok(lbk_picker_create(set, &o, NULL, &pk));
        assert_false(lbk_picker_panic_active(pk));
        /* 4 of 9 weighted backends down: 5 of 9 healthy >= 4.5: no panic */
        for (uint32_t i = 0; i < 4; i++)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, i),
                                             LBK_HEALTH_DOWN));
        bool active = true;
        assert_ok(lbk_picker_refresh_panic(pk, &active));
        assert_false(active);
        uint32_t count[N] = {0};
        for (int k = 0; k < PICKS; k++) {
            lbk_pick pick;
            assert_ok(lbk_picker_pick(pk, (uint64_t)k, &pick));
            count[lbk_backend_slot(lbk_pick_backend(&pick))]++;
            assert_ok(lbk_picker_release(pk, &pick, NULL));
        }
        for (uint32_t i = 0; i < 4; i++)
            assert_int_equal(count[i], 0);
        /* one more down (exactly 4 of 9 healthy < 4.5): panic, all serve */
        assert_ok(
            lbk_backend_set_health(lbk_set_backend(set, 4), LBK_HEALTH_DOWN));
        assert_ok(lbk_picker_refresh_panic(pk, &active));
        assert_true(active);
        assert_true(lbk_picker_panic_active(pk));
        memset(count, 0, sizeof count);
        lbk_pick held[PICKS];
        for (int k = 0; k < PICKS; k++) {
            assert_ok(lbk_picker_pick(pk, (uint64_t)k, &held[k]));
            count[lbk_backend_slot(lbk_pick_backend(&held[k]))]++;
        }
        /* every weighted backend drawn, the weight-0 one never; each
         * expects PICKS/9 = 444: a 6-sigma band of the binomial */
        for (uint32_t i = 0; i < N - 1; i++)
            assert_in_range(count[i], 444 - 120, 444 + 120);
        assert_int_equal(count[N - 1], 0);
        for (uint32_t i = 0; i < N; i++)
            assert_int_equal(lbk_backend_in_flight(lbk_set_backend(set, i)),
                             count[i]);
        for (int k = 0; k < PICKS; k++)
            assert_ok(lbk_picker_release(pk, &held[k], NULL));
        for (uint32_t i = 0; i < N; i++)
            assert_int_equal(lbk_backend_in_flight(lbk_set_backend(set, i)), 0);
        /* recovery ends panic at the next refresh (or rebuild) */
        for (uint32_t i = 0; i < 5; i++)
            assert_ok(
                lbk_backend_set_health(lbk_set_backend(set, i), LBK_HEALTH_UP));
        assert_ok(lbk_picker_rebuild(pk));
        assert_false(lbk_picker_panic_active(pk));
        /* all down: without panic LBK_ENOBACKEND, with it a draw */
        for (uint32_t i = 0; i < N; i++)
            assert_ok(lbk_backend_set_health(lbk_set_backend(set, i),
                                             LBK_HEALTH_DOWN));
        lbk_pick pick;
        assert_ok(lbk_picker_pick(pk, 1, &pick));
        assert_int_not_equal(lbk_backend_slot(lbk_pick_backend(&pick)), N - 1);
        assert_ok(lbk_picker_release(pk, &pick, NULL));
        lbk_picker_free(pk);
        lbk_picker *plain = create(set, all_policies[p], 7);
        assert_lbk(lbk_picker_pick(plain, 1, &pick), LBK_ENOBACKEND);
        assert_false(lbk_picker_panic_active(plain));
        assert_ok(lbk_picker_refresh_panic(plain, NULL));
        lbk_picker_free(plain);
        lbk_set_free(set);
    }
    /* bad thresholds, and NULL */
    lbk_set *set = make_set(2, NULL, NULL);
    lbk_picker_options o;
    lbk_picker_options_init(&o);
    lbk_picker *pk = NULL;
    o.panic_threshold = 1.5;
    assert_lbk(lbk_picker_create(set, &o, NULL, &pk), LBK_ERANGE);
    o.panic_threshold = -0.1;
    assert_lbk(lbk_picker_create(set, &o, NULL, &pk), LBK_ERANGE);
    o.panic_threshold = NAN;
    assert_lbk(lbk_picker_create(set, &o, NULL, &pk), LBK_ERANGE);
    assert_null(pk);
    assert_lbk(lbk_picker_refresh_panic(NULL, NULL), LBK_EINVAL);
    assert_false(lbk_picker_panic_active(NULL));
    lbk_set_free(set);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    uint32_t w[5] = {2, 0, 1, 3, 1};
    for (int k = 0; k < NPOL; k++) {
        lbk_set *set = make_set(5, w, &fa.hook);
        long live0 = atomic_load(&fa.live);
        lbk_picker_options o;
        lbk_picker_options_init(&o);
        o.policy = all_policies[k];
        o.seed = 9;
        lbk_picker *p = NULL;
        for (long i = 0;; i++) {
            fail_alloc_reset(&fa, i);
            lbk_picker *out = (lbk_picker *)&out;
            int rc = lbk_picker_create(set, &o, &fa.hook, &out);
            if (rc == 0) {
                assert_true(i >= 3); /* picker, snapshot, policy object */
                p = out;
                break;
            }
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(atomic_load(&fa.live), live0);
            assert_ptr_equal(out, (lbk_picker *)&out);
        }
        fail_alloc_reset(&fa, -1);
        lbk_pick held;
        assert_ok(lbk_picker_pick(p, 0, &held));
        uint32_t slot;
        assert_ok(lbk_set_add(set, "extra", 4, NULL, &slot));
        long live1 = atomic_load(&fa.live);
        for (long i = 0;; i++) {
            fail_alloc_reset(&fa, i);
            int rc = lbk_picker_rebuild(p);
            if (rc == 0)
                break;
            assert_lbk(rc, LBK_ENOMEM);
            assert_int_equal(atomic_load(&fa.live), live1);
            /* The old object still serves, without the new backend. */
            lbk_pick pk;
            fail_alloc_reset(&fa, -1);
            assert_ok(lbk_picker_pick(p, 0, &pk));
            assert_int_not_equal(lbk_backend_slot(pk.backend), slot);
            assert_ok(lbk_picker_release(p, &pk, NULL));
        }
        fail_alloc_reset(&fa, -1);
        assert_ok(lbk_picker_release(p, &held, NULL));
        lbk_picker_free(p);
        lbk_set_free(set);
        assert_int_equal(atomic_load(&fa.live), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_pick_release_every_policy),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_health_every_policy),
        cmocka_unit_test(test_options_reach_policy),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_panic_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
