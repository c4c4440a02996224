/*
 * tests/test_srv.c - RFC 2782 selection and ordering: exact priority order,
 * the running-sum rule's exact probabilities (chi-square, fixed seeds),
 * weight-0 handling, determinism, errors, large record sets.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/srv.h"

#define REC(p, w)                                                              \
    {                                                                          \
        "t", 80, (p), (w), 60                                                  \
    }

/* Chi-square of observed counts against probabilities; asserts below the
 * 1e-6 critical value. */
static void assert_chi2(const long *obs, const double *prob, int k, long n)
{
    double chi = 0;
    int df = -1;
    for (int i = 0; i < k; i++) {
        if (prob[i] == 0) {
            assert_int_equal(obs[i], 0);
            continue;
        }
        double e = prob[i] * (double)n;
        chi += (obs[i] - e) * (obs[i] - e) / e;
        df++;
    }
    if (df < 3)
        df = 3; /* Wilson-Hilferty is conservative enough here */
    if (chi > chi2_critical_1e6(df))
        fail_msg("chi-square %.2f above %.2f", chi, chi2_critical_1e6(df));
}

static void test_errors(void **state)
{
    (void)state;
    lbk_srv_record r[2] = {REC(0, 1), REC(0, 1)};
    size_t idx = 77, order[2];
    assert_lbk(lbk_srv_select(NULL, 2, 1, &idx), LBK_EINVAL);
    assert_lbk(lbk_srv_select(r, 2, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_srv_select(r, 0, 1, &idx), LBK_ENOBACKEND);
    assert_lbk(lbk_srv_select(r, LBK_SRV_MAX_RECORDS + 1, 1, &idx), LBK_ERANGE);
    assert_int_equal(idx, 77); /* untouched on failure */
    assert_lbk(lbk_srv_order(NULL, 2, 1, order), LBK_EINVAL);
    assert_lbk(lbk_srv_order(r, 2, 1, NULL), LBK_EINVAL);
    assert_lbk(lbk_srv_order(r, LBK_SRV_MAX_RECORDS + 1, 1, order), LBK_ERANGE);
    assert_ok(lbk_srv_order(NULL, 0, 1, NULL));
}

static void test_lowest_priority_first(void **state)
{
    (void)state;
    lbk_srv_record r[5] = {REC(20, 100), REC(10, 1), REC(30, 65535), REC(10, 0),
                           REC(10, 5)};
    uint64_t s = 1;
    for (int i = 0; i < 10000; i++) {
        size_t idx;
        assert_ok(lbk_srv_select(r, 5, test_rand(&s), &idx));
        assert_int_equal(r[idx].priority, 10);
    }
}

/* Weights {1,2,3,4}: r uniform in [0,10]; running sums 1,3,6,10 give the
 * first record r in {0,1}: 2/11, then 2/11, 3/11, 4/11. */
static void test_select_running_sum_exact(void **state)
{
    (void)state;
    lbk_srv_record r[4] = {REC(0, 1), REC(0, 2), REC(0, 3), REC(0, 4)};
    long obs[4] = {0};
    const long n = 220000;
    uint64_t s = 42;
    for (long i = 0; i < n; i++) {
        size_t idx;
        assert_ok(lbk_srv_select(r, 4, test_rand(&s), &idx));
        obs[idx]++;
    }
    double p[4] = {2 / 11.0, 2 / 11.0, 3 / 11.0, 4 / 11.0};
    assert_chi2(obs, p, 4, n);
}

/* Weights {5,0,5,0} (input order): the weight-0 records go first in input
 * order, so record 1 wins only when r == 0 (1/11) and record 3 never wins
 * the first draw; records 0 and 2 share the rest 5/11 each. */
static void test_select_weight_zero(void **state)
{
    (void)state;
    lbk_srv_record r[4] = {REC(0, 5), REC(0, 0), REC(0, 5), REC(0, 0)};
    long obs[4] = {0};
    const long n = 110000;
    uint64_t s = 7;
    for (long i = 0; i < n; i++) {
        size_t idx;
        assert_ok(lbk_srv_select(r, 4, test_rand(&s), &idx));
        obs[idx]++;
    }
    double p[4] = {5 / 11.0, 1 / 11.0, 5 / 11.0, 0};
    assert_chi2(obs, p, 4, n);
    assert_int_equal(obs[3], 0);
    assert_true(obs[1] > 0);
    /* All weights 0: sum 0, r always 0: the first record, always. */
    lbk_srv_record z[3] = {REC(1, 0), REC(0, 0), REC(0, 0)};
    for (int i = 0; i < 1000; i++) {
        size_t idx;
        assert_ok(lbk_srv_select(z, 3, test_rand(&s), &idx));
        assert_int_equal(idx, 1);
    }
    /* The edge values of random hit both ends of [0, sum]. */
    size_t idx;
    assert_ok(lbk_srv_select(r, 4, 0, &idx));
    assert_int_equal(idx, 1); /* r = 0 */
    assert_ok(lbk_srv_select(r, 4, UINT64_MAX, &idx));
    assert_int_equal(idx, 2); /* r = 10 */
}

static bool is_permutation(const size_t *o, size_t n)
{
    char *seen = calloc(n, 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (o[i] >= n || seen[o[i]])
            ok = false;
        else
            seen[o[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_order_priorities_and_determinism(void **state)
{
    (void)state;
    lbk_srv_record r[7] = {REC(2, 1), REC(0, 10), REC(1, 3), REC(0, 0),
                           REC(2, 0), REC(1, 3),  REC(0, 7)};
    size_t o1[7], o2[7];
    bool differs = false;
    for (uint64_t seed = 0; seed < 200; seed++) {
        assert_ok(lbk_srv_order(r, 7, seed, o1));
        assert_true(is_permutation(o1, 7));
        for (int i = 1; i < 7; i++)
            assert_true(r[o1[i - 1]].priority <= r[o1[i]].priority);
        assert_ok(lbk_srv_order(r, 7, seed, o2));
        assert_memory_equal(o1, o2, sizeof o1);
        size_t o3[7];
        assert_ok(lbk_srv_order(r, 7, seed + 1000, o3));
        if (memcmp(o1, o3, sizeof o1) != 0)
            differs = true;
    }
    assert_true(differs);
}

/* Weights {0,1,2}: exact probabilities of the 6 orders under the RFC rule
 * (worked by hand from the running sums at each step):
 * 012: 1/8, 021: 1/8, 102: 1/12, 120: 1/6, 201: 1/4, 210: 1/4. */
static void test_order_exact_distribution(void **state)
{
    (void)state;
    lbk_srv_record r[3] = {REC(0, 0), REC(0, 1), REC(0, 2)};
    const char *perms[6] = {"012", "021", "102", "120", "201", "210"};
    double p[6] = {1 / 8.0, 1 / 8.0, 1 / 12.0, 1 / 6.0, 1 / 4.0, 1 / 4.0};
    long obs[6] = {0};
    const long n = 120000;
    for (long seed = 0; seed < n; seed++) {
        size_t o[3];
        assert_ok(lbk_srv_order(r, 3, (uint64_t)seed * 0x9e3779b9u, o));
        char key[4] = {(char)('0' + o[0]), (char)('0' + o[1]),
                       (char)('0' + o[2]), 0};
        int k = 0;
        while (strcmp(perms[k], key) != 0)
            k++;
        obs[k]++;
    }
    assert_chi2(obs, p, 6, n);
}

/* The first element of the order follows the same law as select. */
static void test_order_first_matches_select(void **state)
{
    (void)state;
    lbk_srv_record r[4] = {REC(3, 9), REC(1, 1), REC(1, 2), REC(1, 0)};
    long obs[4] = {0};
    const long n = 80000;
    for (long seed = 0; seed < n; seed++) {
        size_t o[4];
        assert_ok(lbk_srv_order(r, 4, (uint64_t)seed, o));
        obs[o[0]]++;
        assert_int_equal(o[3], 0); /* priority 3 last */
    }
    /* sum 3, r in [0,3]: zero-weight record 3 at r=0, record 1 at r=1,
     * record 2 at r=2,3. */
    double p[4] = {0, 1 / 4.0, 2 / 4.0, 1 / 4.0};
    assert_chi2(obs, p, 4, n);
}

static void test_many_records(void **state)
{
    (void)state;
    const size_t n = 5000;
    lbk_srv_record *r = calloc(n, sizeof(*r));
    size_t *o = calloc(n, sizeof(*o));
    uint64_t s = 3;
    for (size_t i = 0; i < n; i++) {
        r[i].target = "x";
        r[i].priority = (uint16_t)(test_rand(&s) % 5);
        r[i].weight = (uint16_t)(test_rand(&s) % 4 == 0 ? 0 : test_rand(&s));
    }
    assert_ok(lbk_srv_order(r, n, 9, o));
    assert_true(is_permutation(o, n));
    for (size_t i = 1; i < n; i++)
        assert_true(r[o[i - 1]].priority <= r[o[i]].priority);
    size_t idx;
    assert_ok(lbk_srv_select(r, n, 5, &idx));
    assert_int_equal(r[idx].priority, r[o[0]].priority);
    free(r);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lowest_priority_first),
        cmocka_unit_test(test_select_running_sum_exact),
        cmocka_unit_test(test_select_weight_zero),
        cmocka_unit_test(test_order_priorities_and_determinism),
        cmocka_unit_test(test_order_exact_distribution),
        cmocka_unit_test(test_order_first_matches_select),
        cmocka_unit_test(test_many_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
