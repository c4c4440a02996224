/*
 * tests/fuzz/fuzz_queueing.c - every queueing function on arbitrary
 * doubles and integers (NaN, infinities, subnormals, negatives, huge N).
 *
 * Invariants: a call either fails with a documented code and leaves its
 * output untouched, or succeeds with a result that is not NaN; every
 * probability is in [0, 1]; times, lengths and server counts are >= 0;
 * sizing results meet their target while one server fewer does not.
 */
#include <math.h>

#include "fuzz.h"
#include "lbkit/queueing.h"

#define SENTINEL -12345.0

static bool documented(int rc)
{
    /* the only codes queueing.h documents */
    return rc == LBK_EINVAL || rc == LBK_ERANGE || rc == LBK_EUNSTABLE;
}

/* One result: either an error with *out untouched, or a number. */
static void check_value(int rc, double out, bool probability)
{
    if (rc < 0) {
        FUZZ_CHECK(documented(rc));
        FUZZ_CHECK(out == SENTINEL);
        return;
    }
    FUZZ_CHECK(!isnan(out));
    FUZZ_CHECK(out >= 0.0);
    if (probability)
        FUZZ_CHECK(out <= 1.0);
}

/* Doubles that matter more often than uniform bits would give them. */
static double pick_double(fuzz_in *in)
{
    static const double special[] = {
        0.0,      -0.0,  1.0, -1.0,     0.5,       0.9999, 1e-300,
        4.9e-324, 1e300, 1e6, 1e-6,     10.0,      14.0,   0.2,
        20.0,     2.0,   NAN, INFINITY, -INFINITY, 1e-12};
    uint8_t k = fz_u8(in);
    if (k < 128)
        return special[k % (sizeof special / sizeof special[0])];
    if (k < 192)
        return (double)fz_u32(in) / 1000.0;
    return fz_double(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    while (in.n > 0) {
        double lambda = pick_double(&in), mu = pick_double(&in);
        double t = pick_double(&in), x = pick_double(&in);
        uint32_t n = fz_u8(&in) & 1 ? fz_u32(&in) % 2000001 : fz_u8(&in);
        double out = SENTINEL;
        int rc_;
        rc_ = lbk_erlang_b(lambda, n, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_erlang_c(lambda, n, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_mmn_p_wait(lambda, mu, n, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_mmn_utilization(lambda, mu, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_mean_wait(lambda, mu, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_mean_response(lambda, mu, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_mean_queue_length(lambda, mu, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_mean_in_system(lambda, mu, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_wait_exceeds(lambda, mu, n, t, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_mmn_service_level(lambda, mu, n, t, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_mmn_response_exceeds(lambda, mu, n, t, &out);
        check_value(rc_, out, true);
        out = SENTINEL;
        rc_ = lbk_mmn_wait_quantile(lambda, mu, n, x, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mmn_response_quantile(lambda, mu, n, x, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_mg1_mean_wait(lambda, mu, x, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_gg1_kingman_wait(lambda, x, mu, t, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_ggn_allen_cunneen_wait(lambda, x, mu, t, n, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_little_items(lambda, t, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_little_time(lambda, t, &out);
        check_value(rc_, out, false);
        out = SENTINEL;
        rc_ = lbk_little_rate(lambda, t, &out);
        check_value(rc_, out, false);

        lbk_mmn_metrics m;
        if (lbk_mmn_evaluate(lambda, mu, n, &m) == 0) {
            FUZZ_CHECK(m.p_wait >= 0 && m.p_wait <= 1);
            FUZZ_CHECK(m.erlang_b >= 0 && m.erlang_b <= 1);
            FUZZ_CHECK(m.utilization >= 0 && m.utilization < 1);
            FUZZ_CHECK(!isnan(m.mean_wait) && m.mean_wait >= 0);
            FUZZ_CHECK(!isnan(m.mean_response) && m.mean_response >= 0);
        }
        /* Sizing: the answer meets the target and one fewer does not. */
        uint32_t ns = 0;
        if (lbk_mmn_servers_for_p_wait(lambda, mu, x, &ns) == 0) {
            double p = -1;
            int prc = lbk_mmn_p_wait(lambda, mu, ns, &p);
            if (prc != 0 || p > x)
                fprintf(stderr, "servers_for_p_wait(%a, %a, %a) = %u: %s, %a\n",
                        lambda, mu, x, ns, lbk_errname(prc), p);
            FUZZ_CHECK(ns >= 1);
            FUZZ_CHECK(lbk_mmn_p_wait(lambda, mu, ns, &p) == 0 && p <= x);
            if (ns > 1 && lbk_mmn_p_wait(lambda, mu, ns - 1, &p) == 0)
                FUZZ_CHECK(p > x);
        }
        if (lbk_erlang_b_servers(lambda, x, &ns) == 0) {
            double b;
            FUZZ_CHECK(lbk_erlang_b(lambda, ns, &b) == 0 && b <= x);
            if (ns > 0 && lbk_erlang_b(lambda, ns - 1, &b) == 0)
                FUZZ_CHECK(b > x);
        }
    }
    return 0;
}
