/*
 * examples/chord.c - lbkit-chord: reproduce the Chord papers' experiments.
 *
 *   lbkit-chord paths    --nodes N --lookups K [--succ-list R] [--seed S]
 *                        [--json]
 *   lbkit-chord keys     --nodes N --keys K [--vnodes V] [--seed S] [--json]
 *   lbkit-chord failures --nodes N --succ-list R --fail P --lookups K
 *                        [--seed S] [--json]
 *
 * paths: N nodes with random 64-bit ids (successor lists of R, default 1:
 * fingers only, as in the 2001 simulations), K lookups of random keys from
 * random nodes; path length (forwarding hops to the key's predecessor, the
 * papers' convention) mean and percentiles.  SIGCOMM 2001 Fig. 10: the mean
 * is about 1/2 log2 N.
 *
 * keys: N real nodes, each V virtual nodes named "node-i#v" in a backend
 * set, the ring built from its snapshot; K keys "key-j" hashed onto it;
 * keys per real node.  SIGCOMM Figs. 8, 9: at 10^4 nodes the 99th
 * percentile is ~4.6x the mean without virtual nodes, ~1.6x with 20.
 *
 * failures: N nodes, successor lists of R, then a fraction P of the nodes
 * (exactly round(P N), chosen at random) fails at once with no
 * stabilization; K lookups from random live nodes.  ToN 2003 Fig. 11-12:
 * every lookup still resolves, path length and timeouts rise with P.
 *
 * Percentiles are nearest-rank: pX is the smallest value with at least X%
 * of the samples at or below it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lbkit/backend.h>
#include <lbkit/chord.h>

#define PROG "lbkit-chord"

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try: " PROG " paths|keys|failures --help)\n", stderr);
    va_end(ap);
    return 2;
}

static int fail_rc(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s: %s\n", what, lbk_strerror(rc));
    return 1;
}

/* ---- arguments ------------------------------------------------------- */

struct args {
    const char *cmd;
    uint64_t nodes, lookups, keys, vnodes, succ_list, seed;
    double fail;
    bool has_nodes, has_lookups, has_keys, has_succ, has_fail, json, help;
};

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_fraction(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0 && v < 1.0))
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->vnodes = 1;
    a->seed = 1;
    if (argc < 2)
        return usage_error("missing command");
    a->cmd = argv[1];
    if (strcmp(a->cmd, "paths") != 0 && strcmp(a->cmd, "keys") != 0 &&
        strcmp(a->cmd, "failures") != 0)
        return usage_error("unknown command '%s'", a->cmd);
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp(o, "--help") == 0) {
            a->help = true;
            continue;
        }
        bool ok;
        if (strcmp(o, "--nodes") == 0)
            ok = a->has_nodes = parse_u64(v, 1, 2000000, &a->nodes);
        else if (strcmp(o, "--lookups") == 0)
            ok = a->has_lookups = parse_u64(v, 1, 100000000, &a->lookups);
        else if (strcmp(o, "--keys") == 0)
            ok = a->has_keys = parse_u64(v, 1, 1000000000, &a->keys);
        else if (strcmp(o, "--vnodes") == 0)
            ok = parse_u64(v, 1, 1000, &a->vnodes);
        else if (strcmp(o, "--succ-list") == 0)
            ok = a->has_succ =
                parse_u64(v, 1, LBK_CHORD_SUCC_MAX, &a->succ_list);
        else if (strcmp(o, "--fail") == 0)
            ok = a->has_fail = parse_fraction(v, &a->fail);
        else if (strcmp(o, "--seed") == 0)
            ok = parse_u64(v, 0, UINT64_MAX, &a->seed);
        else
            return usage_error("unknown option '%s'", o);
        if (!ok)
            return usage_error("bad value for %s: '%s'", o, v ? v : "");
        i++;
    }
    return 0;
}

static void print_help(const char *cmd)
{
    if (strcmp(cmd, "paths") == 0)
        puts("usage: " PROG
             " paths --nodes N --lookups K [--succ-list R] [--seed S] "
             "[--json]");
    else if (strcmp(cmd, "keys") == 0)
        puts("usage: " PROG " keys --nodes N --keys K [--vnodes V] [--seed S] "
             "[--json]");
    else
        puts("usage: " PROG " failures --nodes N --succ-list R --fail P "
             "--lookups K [--seed S] [--json]");
}

/* ---- statistics ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

struct summary {
    double mean;
    uint32_t p1, p50, p99, min, max;
};

/* Sorts v. */
static struct summary summarize(uint32_t *v, size_t n)
{
    struct summary s = {0};
    if (n == 0)
        return s;
    qsort(v, n, sizeof(*v), cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.mean = sum / (double)n;
    s.p1 = v[(size_t)ceil(0.01 * (double)n) - 1];
    s.p50 = v[(size_t)ceil(0.50 * (double)n) - 1];
    s.p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

/* A ring of n nodes with random distinct 64-bit ids. */
static int random_ring(uint64_t n, unsigned r, uint64_t *seed, lbk_chord **out)
{
    uint64_t *ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        return LBK_ENOMEM;
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.succ_list = r;
    int rc;
    do { /* a repeated 64-bit id is a 1-in-2^40 event even at 10^6 */
        for (uint64_t i = 0; i < n; i++)
            ids[i] = splitmix(seed);
        rc = lbk_chord_create(&o, ids, n, NULL, out);
    } while (rc == LBK_EEXIST);
    free(ids);
    return rc;
}

/* ---- paths ------------------------------------------------------------ */

static int cmd_paths(const struct args *a)
{
    if (!a->has_nodes || !a->has_lookups)
        return usage_error("paths needs --nodes and --lookups");
    uint64_t seed = a->seed;
    lbk_chord *c;
    int rc = random_ring(a->nodes, a->has_succ ? (unsigned)a->succ_list : 1,
                         &seed, &c);
    if (rc < 0)
        return fail_rc("building the ring", rc);
    uint32_t *hops = malloc(a->lookups * sizeof(*hops));
    if (hops == NULL) {
        lbk_chord_free(c);
        return fail_rc("allocating", LBK_ENOMEM);
    }
    for (uint64_t k = 0; k < a->lookups; k++) {
        uint32_t from = (uint32_t)(splitmix(&seed) % a->nodes);
        lbk_chord_result res;
        rc = lbk_chord_lookup(c, from, splitmix(&seed), NULL, 0, &res);
        if (rc < 0) {
            free(hops);
            lbk_chord_free(c);
            return fail_rc("lookup", rc);
        }
        hops[k] = res.hops;
    }
    struct summary s = summarize(hops, a->lookups);
    double half_log = 0.5 * log2((double)a->nodes);
    size_t bytes = lbk_chord_bytes(c);
    if (a->json)
        printf("{\"experiment\": \"paths\", \"nodes\": %llu, \"lookups\": "
               "%llu, \"seed\": %llu, \"mean_hops\": %.4f, \"p1_hops\": %u, "
               "\"p50_hops\": %u, \"p99_hops\": %u, \"max_hops\": %u, "
               "\"half_log2_nodes\": %.4f, \"bytes_per_node\": %.1f}\n",
               (unsigned long long)a->nodes, (unsigned long long)a->lookups,
               (unsigned long long)a->seed, s.mean, s.p1, s.p50, s.p99, s.max,
               half_log, (double)bytes / (double)a->nodes);
    else {
        printf("Chord path length: %llu nodes, %llu lookups (seed %llu)\n\n",
               (unsigned long long)a->nodes, (unsigned long long)a->lookups,
               (unsigned long long)a->seed);
        printf("  %-22s %8.3f\n", "mean hops", s.mean);
        printf("  %-22s %8.3f\n", "1/2 log2 N (paper)", half_log);
        printf("  %-22s %8u\n", "1st percentile", s.p1);
        printf("  %-22s %8u\n", "median", s.p50);
        printf("  %-22s %8u\n", "99th percentile", s.p99);
        printf("  %-22s %8u\n", "max", s.max);
        printf("  %-22s %8.1f\n", "bytes per node", (double)bytes / a->nodes);
    }
    free(hops);
    lbk_chord_free(c);
    return 0;
}

/* ---- keys ------------------------------------------------------------- */

static int cmd_keys(const struct args *a)
{
    if (!a->has_nodes || !a->has_keys)
        return usage_error("keys needs --nodes and --keys");
    uint64_t total = a->nodes * a->vnodes;
    if (total > LBK_SET_MAX)
        return usage_error("nodes x vnodes must be at most %u", LBK_SET_MAX);
    lbk_set *set;
    int rc = lbk_set_create(NULL, &set);
    if (rc < 0)
        return fail_rc("creating the set", rc);
    char name[64];
    for (uint64_t i = 0; i < a->nodes && rc >= 0; i++)
        for (uint64_t v = 0; v < a->vnodes && rc >= 0; v++) {
            uint32_t slot;
            snprintf(name, sizeof name, "node-%llu#%llu", (unsigned long long)i,
                     (unsigned long long)v);
            rc = lbk_set_add(set, name, 1, NULL, &slot);
        }
    const lbk_snapshot *snap = NULL;
    if (rc >= 0)
        rc = lbk_set_snapshot(set, &snap);
    lbk_chord *c = NULL;
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.succ_list = 1;
    o.seed = a->seed;
    if (rc >= 0)
        rc = lbk_chord_build(snap, &o, NULL, &c);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    if (rc < 0)
        return fail_rc("building the ring", rc);
    uint32_t *load = calloc(a->nodes, sizeof(*load));
    if (load == NULL) {
        lbk_chord_free(c);
        return fail_rc("allocating", LBK_ENOMEM);
    }
    for (uint64_t k = 0; k < a->keys; k++) {
        int len =
            snprintf(name, sizeof name, "key-%llu", (unsigned long long)k);
        uint64_t id;
        uint32_t owner;
        if ((rc = lbk_chord_key_id(c, name, (size_t)len, &id)) < 0 ||
            (rc = lbk_chord_owner(c, id, &owner)) < 0) {
            free(load);
            lbk_chord_free(c);
            return fail_rc("owner", rc);
        }
        load[owner / a->vnodes]++; /* node i's virtual nodes are i*V.. */
    }
    uint64_t empty = 0;
    for (uint64_t i = 0; i < a->nodes; i++)
        empty += load[i] == 0;
    struct summary s = summarize(load, a->nodes);
    if (a->json)
        printf("{\"experiment\": \"keys\", \"nodes\": %llu, \"vnodes\": %llu, "
               "\"keys\": %llu, \"seed\": %llu, \"mean_keys\": %.4f, "
               "\"p1_keys\": %u, \"p50_keys\": %u, \"p99_keys\": %u, "
               "\"max_keys\": %u, \"min_keys\": %u, \"empty_nodes\": %llu, "
               "\"p1_over_mean\": %.4f, \"p99_over_mean\": %.4f}\n",
               (unsigned long long)a->nodes, (unsigned long long)a->vnodes,
               (unsigned long long)a->keys, (unsigned long long)a->seed, s.mean,
               s.p1, s.p50, s.p99, s.max, s.min, (unsigned long long)empty,
               s.p1 / s.mean, s.p99 / s.mean);
    else {
        printf("Chord keys per node: %llu nodes x %llu virtual, %llu keys "
               "(seed %llu)\n\n",
               (unsigned long long)a->nodes, (unsigned long long)a->vnodes,
               (unsigned long long)a->keys, (unsigned long long)a->seed);
        printf("  %-22s %10.2f\n", "mean keys", s.mean);
        printf("  %-22s %10u  (%.2fx mean)\n", "1st percentile", s.p1,
               s.p1 / s.mean);
        printf("  %-22s %10u\n", "median", s.p50);
        printf("  %-22s %10u  (%.2fx mean)\n", "99th percentile", s.p99,
               s.p99 / s.mean);
        printf("  %-22s %10u\n", "max", s.max);
        printf("  %-22s %10llu\n", "nodes with no key",
               (unsigned long long)empty);
    }
    free(load);
    lbk_chord_free(c);
    return 0;
}

/* ---- failures ----------------------------------------------------------- */

static int cmd_failures(const struct args *a)
{
    if (!a->has_nodes || !a->has_succ || !a->has_fail || !a->has_lookups)
        return usage_error(
            "failures needs --nodes, --succ-list, --fail and --lookups");
    uint64_t seed = a->seed;
    lbk_chord *c;
    int rc = random_ring(a->nodes, (unsigned)a->succ_list, &seed, &c);
    if (rc < 0)
        return fail_rc("building the ring", rc);
    uint32_t n = (uint32_t)a->nodes;
    uint32_t nfail = (uint32_t)llround(a->fail * n);
    uint32_t *perm = malloc(n * sizeof(*perm));
    uint32_t *hops = malloc(a->lookups * sizeof(*hops));
    uint32_t *touts = malloc(a->lookups * sizeof(*touts));
    if (perm == NULL || hops == NULL || touts == NULL) {
        free(perm);
        free(hops);
        free(touts);
        lbk_chord_free(c);
        return fail_rc("allocating", LBK_ENOMEM);
    }
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = 0; i < nfail; i++) { /* partial Fisher-Yates */
        uint32_t j = i + (uint32_t)(splitmix(&seed) % (n - i));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        lbk_chord_fail(c, perm[i]);
    }
    /* perm[nfail..n-1] are the live nodes */
    uint64_t ok = 0, failed = 0, wrong = 0;
    for (uint64_t k = 0; k < a->lookups; k++) {
        uint32_t from = perm[nfail + splitmix(&seed) % (n - nfail)];
        uint64_t key = splitmix(&seed);
        lbk_chord_result res;
        uint32_t owner;
        rc = lbk_chord_lookup(c, from, key, NULL, 0, &res);
        if (rc == LBK_ETIMEDOUT) {
            failed++;
            continue;
        }
        if (rc < 0 || lbk_chord_owner(c, key, &owner) < 0) {
            free(perm);
            free(hops);
            free(touts);
            lbk_chord_free(c);
            return fail_rc("lookup", rc);
        }
        wrong += owner != res.owner;
        hops[ok] = res.hops;
        touts[ok] = res.timeouts;
        ok++;
    }
    struct summary h = summarize(hops, ok), t = summarize(touts, ok);
    if (a->json)
        printf("{\"experiment\": \"failures\", \"nodes\": %u, \"succ_list\": "
               "%llu, \"fail\": %.4f, \"failed_nodes\": %u, \"lookups\": %llu, "
               "\"seed\": %llu, \"mean_hops\": %.4f, \"p1_hops\": %u, "
               "\"p50_hops\": %u, \"p99_hops\": %u, \"max_hops\": %u, "
               "\"mean_timeouts\": %.4f, \"p1_timeouts\": %u, "
               "\"p50_timeouts\": %u, \"p99_timeouts\": %u, "
               "\"max_timeouts\": %u, \"failed_lookups\": %llu, "
               "\"wrong_owners\": %llu}\n",
               n, (unsigned long long)a->succ_list, a->fail, nfail,
               (unsigned long long)a->lookups, (unsigned long long)a->seed,
               h.mean, h.p1, h.p50, h.p99, h.max, t.mean, t.p1, t.p50, t.p99,
               t.max, (unsigned long long)failed, (unsigned long long)wrong);
    else {
        printf(
            "Chord under simultaneous failures: %u nodes, r = %llu, %u "
            "failed (%.1f%%), no stabilization, %llu lookups (seed %llu)\n\n",
            n, (unsigned long long)a->succ_list, nfail, 100 * a->fail,
            (unsigned long long)a->lookups, (unsigned long long)a->seed);
        printf("  %-12s %8s %6s %6s %6s %6s\n", "", "mean", "p1", "p50", "p99",
               "max");
        printf("  %-12s %8.3f %6u %6u %6u %6u\n", "hops", h.mean, h.p1, h.p50,
               h.p99, h.max);
        printf("  %-12s %8.3f %6u %6u %6u %6u\n", "timeouts", t.mean, t.p1,
               t.p50, t.p99, t.max);
        printf("\n  failed lookups %llu, wrong owners %llu\n",
               (unsigned long long)failed, (unsigned long long)wrong);
    }
    free(perm);
    free(hops);
    free(touts);
    lbk_chord_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        print_help(a.cmd);
        return 0;
    }
    if (strcmp(a.cmd, "paths") == 0)
        return cmd_paths(&a);
    if (strcmp(a.cmd, "keys") == 0)
        return cmd_keys(&a);
    if (a.has_fail && a.has_nodes &&
        llround(a.fail * (double)a.nodes) >= (long long)a.nodes)
        return usage_error("--fail leaves no live node");
    return cmd_failures(&a);
}
