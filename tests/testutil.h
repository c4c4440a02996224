/*
 * tests/testutil.h - helpers shared by lbkit's cmocka tests.
 *
 * The failing allocator: counts live allocations (to prove nothing leaks)
 * and fails the k-th allocation on request, so a test can walk every
 * allocation site of a constructor in turn, SQLite-style:
 *
 *     for (int k = 0; ; k++) {
 *         fail_alloc_reset(&fa, k);         // fail the k-th call from now
 *         rc = build(..., &fa.hook, &obj);
 *         if (rc == 0) break;                // k passed every site
 *         assert_int_equal(rc, LBK_ENOMEM);
 *         assert_int_equal(fa.live, 0);      // nothing leaked
 *     }
 *
 * It is thread-safe (atomics), so concurrency tests may use it too.
 */
#ifndef LBKIT_TESTUTIL_H
#define LBKIT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lbkit/common.h"

typedef struct fail_alloc {
    lbk_allocator hook;
    _Atomic long live;    /* allocations not yet freed */
    _Atomic long calls;   /* allocations attempted since reset */
    _Atomic long fail_at; /* 0-based call index to fail; -1 = never */
    _Atomic long failures;
} fail_alloc;

static void *fail_alloc_fn(void *user, size_t size)
{
    fail_alloc *fa = user;
    long n = atomic_fetch_add(&fa->calls, 1);
    if (n == atomic_load(&fa->fail_at)) {
        atomic_fetch_add(&fa->failures, 1);
        return NULL;
    }
    void *p = malloc(size);
    if (p != NULL)
        atomic_fetch_add(&fa->live, 1);
    return p;
}

static void fail_free_fn(void *user, void *ptr)
{
    fail_alloc *fa = user;
    if (ptr != NULL) {
        atomic_fetch_sub(&fa->live, 1);
        free(ptr);
    }
}

static inline void fail_alloc_init(fail_alloc *fa)
{
    fa->hook.alloc = fail_alloc_fn;
    fa->hook.free = fail_free_fn;
    fa->hook.user = fa;
    atomic_init(&fa->live, 0);
    atomic_init(&fa->calls, 0);
    atomic_init(&fa->fail_at, -1);
    atomic_init(&fa->failures, 0);
}

/* Fail the k-th allocation from now (k < 0: never). */
static inline void fail_alloc_reset(fail_alloc *fa, long k)
{
    atomic_store(&fa->calls, 0);
    atomic_store(&fa->failures, 0);
    atomic_store(&fa->fail_at, k);
}

/* Deterministic test randomness (SplitMix64). */
static inline uint64_t test_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Assert an lbkit call returned the expected code, printing both names. */
#define assert_lbk(expr, expected)                                             \
    do {                                                                       \
        int assert_lbk_rc_ = (expr);                                           \
        if (assert_lbk_rc_ != (expected))                                      \
            fail_msg("%s returned %s (%d), expected %s (%d)", #expr,           \
                     lbk_errname(assert_lbk_rc_), assert_lbk_rc_,              \
                     lbk_errname(expected), (int)(expected));                  \
    } while (0)

#define assert_ok(expr) assert_lbk((expr), 0)

/*
 * The upper chi-square critical value for df degrees of freedom at a
 * one-sided false-failure rate of 1e-6 (z = 4.753), by the Wilson-Hilferty
 * approximation, accurate to well under 1% for df >= 3.
 */
#include <math.h>
static inline double chi2_critical_1e6(double df)
{
    double z = 4.753424;
    double t = 1.0 - 2.0 / (9.0 * df) + z * sqrt(2.0 / (9.0 * df));
    return df * t * t * t;
}

#endif /* LBKIT_TESTUTIL_H */
