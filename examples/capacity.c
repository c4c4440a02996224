/*
 * examples/capacity.c - lbkit-capacity: M/M/N capacity planning from the
 * command line.
 *
 *   lbkit-capacity --arrival-rate L --service-rate M --servers N
 *                  [--wait-threshold T] [--json]
 *   lbkit-capacity --arrival-rate L --service-rate M
 *                  (--target-p-wait X | --target-mean-wait X |
 *                   --target-service-level T:P | --target-utilization X)
 *                  [--wait-threshold T] [--json]
 *
 * With --servers it prints every steady-state metric of the queue; with a
 * target it finds the smallest N meeting it and prints that N's metrics.
 * --wait-threshold T adds P(Wq > T) and the service level P(Wq <= T); a
 * service-level target T:P ("a fraction P answered within T") implies that
 * threshold.  Both forms also print the p99 wait and p99 response time
 * (JSON: wait_p99, response_p99; with a threshold, wait_threshold too).
 * Rates are per unit of time, times in the same unit.  Numbers
 * are parsed strictly: trailing junk, NaN and infinities are rejected.  Bad
 * input prints one line on stderr and exits with status 2; a queue that
 * cannot be evaluated (unstable, out of range) exits with status 1.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lbkit/queueing.h>

static int bad(const char *flag, const char *what)
{
    fprintf(stderr, "lbkit-capacity: %s: %s (try --help)\n", flag, what);
    return 2;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lbkit-capacity --arrival-rate L --service-rate M\n"
            "         (--servers N | --target-p-wait X | --target-mean-wait X"
            " |\n"
            "          --target-service-level T:P | --target-utilization X)\n"
            "         [--wait-threshold T] [--json]\n"
            "  --arrival-rate L          requests per unit of time (>= 0)\n"
            "  --service-rate M          requests per unit of time per server "
            "(> 0)\n"
            "  --servers N               evaluate N servers\n"
            "  --target-p-wait X         smallest N with P(wait) <= X\n"
            "  --target-mean-wait X      smallest N with mean wait <= X\n"
            "  --target-service-level T:P  smallest N answering a fraction P "
            "within T\n"
            "  --target-utilization X    smallest N with utilization <= X\n"
            "  --wait-threshold T        also print P(wait > T) and the "
            "service level\n"
            "  --json                    print one JSON object\n");
}

/* A finite double filling the whole string. */
static bool parse_double(const char *s, double *out)
{
    /* strtod would skip leading blanks: refuse them too */
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_servers(const char *s, uint32_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v == 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

enum target { NONE, SERVERS, P_WAIT, MEAN_WAIT, SERVICE_LEVEL, UTILIZATION };

struct options {
    double lambda, mu;
    bool have_lambda, have_mu, json, have_threshold;
    double threshold;
    enum target target;
    uint32_t servers;
    double x, level; /* target value; level for the service level */
};

static int set_target(struct options *o, enum target t, const char *flag)
{
    if (o->target != NONE)
        return bad(flag, "give exactly one of --servers or a --target-*");
    o->target = t;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(f, "--arrival-rate") == 0) {
            if (!parse_double(v, &o->lambda) || o->lambda < 0)
                return bad(f, "needs a finite number >= 0");
            o->have_lambda = true;
        } else if (strcmp(f, "--service-rate") == 0) {
            if (!parse_double(v, &o->mu) || !(o->mu > 0))
                return bad(f, "needs a finite number > 0");
            o->have_mu = true;
        } else if (strcmp(f, "--servers") == 0) {
            if ((rc = set_target(o, SERVERS, f)) != 0)
                return rc;
            if (!parse_servers(v, &o->servers))
                return bad(f, "needs an integer in 1..4294967295");
        } else if (strcmp(f, "--wait-threshold") == 0) {
            if (!parse_double(v, &o->threshold) || o->threshold < 0)
                return bad(f, "needs a finite number >= 0");
            o->have_threshold = true;
        } else if (strcmp(f, "--target-p-wait") == 0 ||
                   strcmp(f, "--target-utilization") == 0) {
            bool pw = strcmp(f, "--target-p-wait") == 0;
            if ((rc = set_target(o, pw ? P_WAIT : UTILIZATION, f)) != 0)
                return rc;
            if (!parse_double(v, &o->x) || !(o->x > 0 && o->x < 1))
                return bad(f, "needs a number in (0, 1)");
        } else if (strcmp(f, "--target-mean-wait") == 0) {
            if ((rc = set_target(o, MEAN_WAIT, f)) != 0)
                return rc;
            if (!parse_double(v, &o->x) || !(o->x > 0))
                return bad(f, "needs a finite time > 0");
        } else if (strcmp(f, "--target-service-level") == 0) {
            if ((rc = set_target(o, SERVICE_LEVEL, f)) != 0)
                return rc;
            char buf[128];
            const char *colon = v ? strchr(v, ':') : NULL;
            if (colon == NULL || (size_t)(colon - v) >= sizeof buf)
                return bad(f, "needs T:P, e.g. 20:0.8");
            memcpy(buf, v, (size_t)(colon - v));
            buf[colon - v] = '\0';
            double t;
            if (!parse_double(buf, &t) || t < 0 ||
                !parse_double(colon + 1, &o->level) ||
                !(o->level > 0 && o->level < 1))
                return bad(f, "needs T:P with T >= 0 and P in (0, 1)");
            if (!o->have_threshold) {
                o->threshold = t;
                o->have_threshold = true;
            }
            o->x = t;
        } else {
            return bad(f, "unknown argument");
        }
        i++; /* the flag's value */
    }
    if (!o->have_lambda || !o->have_mu)
        return bad("usage", "--arrival-rate and --service-rate are required");
    if (o->target == NONE)
        return bad("usage", "give --servers or a --target-*");
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "lbkit-capacity: %s: %s\n", what, lbk_strerror(rc));
    return 1;
}

static int find_servers(const struct options *o, uint32_t *n)
{
    switch (o->target) {
    case SERVERS:
        *n = o->servers;
        return 0;
    case P_WAIT:
        return lbk_mmn_servers_for_p_wait(o->lambda, o->mu, o->x, n);
    case MEAN_WAIT:
        return lbk_mmn_servers_for_mean_wait(o->lambda, o->mu, o->x, n);
    case SERVICE_LEVEL:
        return lbk_mmn_servers_for_service_level(o->lambda, o->mu, o->x,
                                                 o->level, n);
    default:
        return lbk_mmn_servers_for_utilization(o->lambda, o->mu, o->x, n);
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    uint32_t n;
    if ((rc = find_servers(&o, &n)) < 0)
        return fail("sizing", rc);
    lbk_mmn_metrics m;
    if ((rc = lbk_mmn_evaluate(o.lambda, o.mu, n, &m)) < 0)
        return fail("evaluating the queue", rc);
    double exceeds = 0, level = 0, wait_p99, resp_p99;
    if (o.have_threshold &&
        ((rc = lbk_mmn_wait_exceeds(o.lambda, o.mu, n, o.threshold, &exceeds)) <
             0 ||
         (rc = lbk_mmn_service_level(o.lambda, o.mu, n, o.threshold, &level)) <
             0))
        return fail("evaluating the threshold", rc);
    if ((rc = lbk_mmn_wait_quantile(o.lambda, o.mu, n, 0.99, &wait_p99)) < 0 ||
        (rc = lbk_mmn_response_quantile(o.lambda, o.mu, n, 0.99, &resp_p99)) <
            0)
        return fail("evaluating the quantiles", rc);
    if (o.json) {
        printf("{\"servers\": %u, \"offered_load\": %.17g, "
               "\"utilization\": %.17g, \"p_wait\": %.17g, "
               "\"mean_wait\": %.17g, \"mean_response\": %.17g, "
               "\"mean_queue_length\": %.17g, \"mean_in_system\": %.17g, "
               "\"erlang_b\": %.17g",
               m.servers, m.offered_load, m.utilization, m.p_wait, m.mean_wait,
               m.mean_response, m.mean_queue_length, m.mean_in_system,
               m.erlang_b);
        if (o.have_threshold)
            printf(", \"wait_threshold\": %.17g, \"p_wait_exceeds\": %.17g, "
                   "\"service_level\": %.17g",
                   o.threshold, exceeds, level);
        printf(", \"wait_p99\": %.17g, \"response_p99\": %.17g}\n", wait_p99,
               resp_p99);
        return 0;
    }
    if (o.target != SERVERS)
        printf("smallest N meeting the target: %u\n", n);
    printf("servers                  %u\n", m.servers);
    printf("offered load (Erlangs)   %.10g\n", m.offered_load);
    printf("utilization              %.10g\n", m.utilization);
    printf("P(wait) (Erlang C)       %.10g\n", m.p_wait);
    printf("mean wait (Wq)           %.10g\n", m.mean_wait);
    printf("mean response (W)        %.10g\n", m.mean_response);
    printf("mean queue length (Lq)   %.10g\n", m.mean_queue_length);
    printf("mean in system (L)       %.10g\n", m.mean_in_system);
    printf("Erlang B (no queue)      %.10g\n", m.erlang_b);
    printf("p99 wait                 %.10g\n", wait_p99);
    printf("p99 response             %.10g\n", resp_p99);
    if (o.have_threshold) {
        printf("wait threshold           %.10g\n", o.threshold);
        printf("P(wait > threshold)      %.10g\n", exceeds);
        printf("service level            %.10g\n", level);
    }
    return 0;
}
