/*
 * examples/tour.c - lbkit-tour: every lbkit algorithm on one embedded
 * backend set, with what it did, what it cost and when to choose it.
 *
 *   lbkit-tour [--json] [--picks N] [--keys N]
 *
 * Sections: the backend set; request pickers (N picks each, with a window
 * of 64 requests in flight so load-aware policies have load to see);
 * key -> backend (N keys through every hashing algorithm, and the share of
 * keys that move when one backend is removed); an M/M/N sizing example; a
 * Chord lookup.  Shares are printed as percent of picks or keys beside each
 * backend's weight share; "peak/mean" is the largest ratio of a backend's
 * share to its target share (1.00 is perfect).  Timings are wall-clock on
 * this machine, one thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lbkit/lbkit.h>
#include <lbkit/bounded.h>
#include <lbkit/chord.h>
#include <lbkit/hrw.h>
#include <lbkit/jump.h>
#include <lbkit/maglev.h>
#include <lbkit/picker.h>
#include <lbkit/queueing.h>
#include <lbkit/ring.h>

#include "parse.h"

static const struct {
    const char *name;
    uint32_t weight;
} default_backends[] = {
    {"10.0.0.1:8080", 1},  {"10.0.0.2:8080", 1},  {"10.0.0.3:8080", 2},
    {"10.0.0.4:8080", 2},  {"10.0.0.5:8080", 3},  {"10.0.0.6:8080", 3},
    {"10.0.0.7:8080", 4},  {"10.0.0.8:8080", 4},  {"10.0.0.9:8080", 5},
    {"10.0.0.10:8080", 5}, {"10.0.0.11:8080", 8}, {"10.0.0.12:8080", 10},
};
#define NB (sizeof(default_backends) / sizeof(default_backends[0]))
#define WINDOW 64
#define MAXCOLS 10

static bool json;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "lbkit-tour: %s: %s\n", what, lbk_strerror(rc));
        exit(1);
    }
}

/* One column of a share table. */
struct column {
    const char *name;
    const char *when; /* one line: when to choose it */
    uint64_t count[NB];
    bool weighted; /* target share = weight share (else equal) */
    double ns;     /* per pick or lookup */
    double moved;  /* keys moved when one backend is removed (-1: n/a) */
};

static double weight_share(size_t i)
{
    uint32_t total = 0;
    for (size_t j = 0; j < NB; j++)
        total += default_backends[j].weight;
    return (double)default_backends[i].weight / total;
}

static double peak_to_mean(const struct column *c)
{
    uint64_t total = 0;
    for (size_t i = 0; i < NB; i++)
        total += c->count[i];
    double peak = 0;
    for (size_t i = 0; i < NB; i++) {
        double target = c->weighted ? weight_share(i) : 1.0 / NB;
        double r = ((double)c->count[i] / (double)total) / target;
        if (r > peak)
            peak = r;
    }
    return peak;
}

static void print_table(const char *title, const char *unit,
                        struct column *cols, int ncols, uint64_t n)
{
    if (json) {
        printf("  \"%s\": [\n", title);
        for (int c = 0; c < ncols; c++) {
            printf("    {\"algorithm\": \"%s\", \"%s\": %llu, \"counts\": [",
                   cols[c].name, unit, (unsigned long long)n);
            for (size_t i = 0; i < NB; i++)
                printf("%s%llu", i ? ", " : "",
                       (unsigned long long)cols[c].count[i]);
            printf("], \"peak_to_mean\": %.4f, \"ns_per_op\": %.1f",
                   peak_to_mean(&cols[c]), cols[c].ns);
            if (cols[c].moved >= 0)
                printf(", \"moved_on_removal\": %.4f", cols[c].moved);
            printf(", \"when\": \"%s\"}%s\n", cols[c].when,
                   c + 1 < ncols ? "," : "");
        }
        printf("  ],\n");
        return;
    }
    printf("\n== %s: %llu %s, share of each backend in %% ==\n\n", title,
           (unsigned long long)n, unit);
    printf("%-15s %4s %6s", "backend", "w", "w%");
    for (int c = 0; c < ncols; c++)
        printf(" %9.9s", cols[c].name);
    printf("\n");
    for (size_t i = 0; i < NB; i++) {
        printf("%-15s %4u %6.2f", default_backends[i].name,
               default_backends[i].weight, 100 * weight_share(i));
        for (int c = 0; c < ncols; c++) {
            uint64_t total = 0;
            for (size_t j = 0; j < NB; j++)
                total += cols[c].count[j];
            printf(" %9.2f", 100.0 * (double)cols[c].count[i] / (double)total);
        }
        printf("\n");
    }
    printf("%-27s", "peak/mean (vs target)");
    for (int c = 0; c < ncols; c++)
        printf(" %9.3f", peak_to_mean(&cols[c]));
    printf("\n%-27s", "target");
    for (int c = 0; c < ncols; c++)
        printf(" %9s", cols[c].weighted ? "weights" : "equal");
    printf("\n%-27s", "ns per op");
    for (int c = 0; c < ncols; c++)
        printf(" %9.1f", cols[c].ns);
    if (cols[0].moved >= 0) {
        printf("\n%-27s", "moved on removal (1/12=8.3)");
        for (int c = 0; c < ncols; c++)
            printf(" %8.1f%%", 100 * cols[c].moved);
    }
    printf("\n\n");
    for (int c = 0; c < ncols; c++)
        printf("  %-22s %s\n", cols[c].name, cols[c].when);
}

/* The default backends; each backend's user pointer is its index in
 * default_backends + 1. */
static lbk_set *make_set(void)
{
    const int skip = -1;
    lbk_set *set;
    check(lbk_set_create(NULL, &set), "set");
    for (size_t i = 0; i < NB; i++) {
        uint32_t slot;
        if ((int)i == skip)
            continue;
        check(lbk_set_add(set, default_backends[i].name,
                          default_backends[i].weight, (void *)(i + 1), &slot),
              default_backends[i].name);
    }
    check(lbk_set_publish(set), "publish");
    return set;
}

static size_t index_of(const lbk_backend *b)
{
    return (size_t)(uintptr_t)lbk_backend_user(b) - 1;
}

/* ---- request pickers -------------------------------------------------- */

static const char *policy_when(const char *name)
{
    static const struct {
        const char *name, *when;
    } w[] = {
        {"round_robin", "equal backends, equal requests: cheapest fair turn"},
        {"weighted_round_robin",
         "exact weight shares, evenly spread (nginx smooth WRR, O(1))"},
        {"random", "weighted shares with no shared counter (alias method)"},
        {"least_conn", "long or uneven requests: fewest in flight per weight"},
        {"p2c",
         "large fleets: near least-loaded at O(1) (Envoy least_request)"},
        {"p2c_peak_ewma",
         "latency-sensitive RPC: avoid slow backends (Linkerd/Finagle)"},
        {"ucb1", "learn the best backend from outcomes (bandit, optimistic)"},
        {"thompson", "learn the best backend from outcomes (Bayesian bandit)"},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (strcmp(w[i].name, name) == 0)
            return w[i].when;
    return "";
}

static void tour_pickers(lbk_set *set, uint64_t picks)
{
    struct column cols[MAXCOLS];
    int ncols = 0;
    static lbk_pick window[WINDOW];
    for (uint32_t p = 0; p < lbk_policy_count() && ncols < MAXCOLS; p++) {
        if (!lbk_policy_available((lbk_policy)p))
            continue;
        const char *name = lbk_policy_name((lbk_policy)p);
        lbk_picker_options po;
        lbk_picker_options_init(&po);
        po.policy = name;
        po.seed = 42;
        lbk_picker *pk;
        check(lbk_picker_create(set, &po, NULL, &pk), name);
        check(lbk_picker_rebuild(pk), name);
        struct column *c = &cols[ncols++];
        memset(c, 0, sizeof(*c));
        c->name = name;
        c->when = policy_when(name);
        c->weighted = strcmp(name, "round_robin") != 0;
        c->moved = -1;
        uint64_t sim_ns = 0;
        double t0 = now_s();
        for (uint64_t i = 0; i < picks; i++) {
            lbk_pick *slot = &window[i % WINDOW];
            if (i >= WINDOW) { /* the oldest request completes */
                size_t b = index_of(lbk_pick_backend(slot));
                /* a heavier backend answers faster: latency ~ 1/weight */
                lbk_outcome out = {true, 1000000u / default_backends[b].weight,
                                   0};
                check(lbk_picker_release(pk, slot, &out), "release");
            }
            sim_ns += 1000;
            check(lbk_picker_pick(pk, sim_ns, slot), name);
            c->count[index_of(lbk_pick_backend(slot))]++;
        }
        for (uint64_t i = 0; i < WINDOW && i < picks; i++)
            check(lbk_picker_release(pk, &window[i], NULL), "release");
        c->ns = (now_s() - t0) * 1e9 / (double)picks;
        lbk_picker_free(pk);
    }
    print_table("request pickers", "picks", cols, ncols, picks);
    if (!json)
        printf("\n  (64 requests in flight at a time; least_conn and p2c "
               "target weights through load,\n   so they approach the "
               "weight shares only as backends fill up; ns per op = pick "
               "+ release)\n");
}

/* ---- key -> backend --------------------------------------------------- */

enum algo {
    A_RING,
    A_KETAMA,
    A_MEMCACHED,
    A_NGINX,
    A_MAGLEV,
    A_JUMP,
    A_HRW,
    A_BOUNDED,
    A_COUNT
};

static const struct {
    const char *name, *when;
    bool weighted;
} algos[A_COUNT] = {
    {"ring", "caches with weights; replicas via next distinct (XXH3 ring)",
     true},
    {"libketama", "share keys with libketama clients, bit for bit", true},
    {"libmemcached", "share keys with libmemcached / twemproxy (md5)", true},
    {"nginx", "agree with nginx `hash $key consistent`", true},
    {"maglev", "L4 balancers: O(1) lookup, even shares, more churn", true},
    {"jump", "numbered shards: zero memory, grow/shrink at the end", false},
    {"hrw", "small sets, top-k replicas, minimal disruption", true},
    {"bounded", "hot keys: affinity with a hard cap on load (c = 1.25)", true},
};

struct keyer {
    enum algo a;
    lbk_ring *ring;
    lbk_maglev *mg;
    lbk_jump *jp;
    lbk_hrw *hrw;
    lbk_bounded *bd;
};

static int keyer_build(struct keyer *k, enum algo a, const lbk_snapshot *snap)
{
    memset(k, 0, sizeof(*k));
    k->a = a;
    lbk_ring_options ro;
    lbk_ring_options_init(&ro);
    switch (a) {
    case A_RING:
    case A_KETAMA:
    case A_MEMCACHED:
    case A_NGINX:
        ro.mode = a == A_RING     ? LBK_RING_XXH3
                  : a == A_KETAMA ? LBK_RING_LIBKETAMA
                  : a == A_NGINX  ? LBK_RING_NGINX
                                  : LBK_RING_LIBMEMCACHED;
        return lbk_ring_build(snap, &ro, NULL, &k->ring);
    case A_MAGLEV:
        return lbk_maglev_build(snap, NULL, NULL, &k->mg);
    case A_JUMP:
        return lbk_jump_build(snap, NULL, NULL, &k->jp);
    case A_HRW:
        return lbk_hrw_build(snap, NULL, NULL, &k->hrw);
    case A_BOUNDED:
    case A_COUNT:
        return lbk_bounded_build(snap, NULL, NULL, &k->bd);
    }
    return LBK_EINVAL;
}

static int keyer_lookup(struct keyer *k, const char *key, size_t len,
                        lbk_backend **b)
{
    switch (k->a) {
    case A_MAGLEV:
        return lbk_maglev_lookup(k->mg, key, len, b);
    case A_JUMP:
        return lbk_jump_lookup(k->jp, key, len, b);
    case A_HRW:
        return lbk_hrw_lookup(k->hrw, key, len, b);
    case A_BOUNDED:
        return lbk_bounded_acquire(k->bd, key, len, b); /* holds the load */
    default:
        return lbk_ring_lookup(k->ring, key, len, b);
    }
}

static void keyer_free(struct keyer *k)
{
    lbk_ring_free(k->ring);
    lbk_maglev_free(k->mg);
    lbk_jump_free(k->jp);
    lbk_hrw_free(k->hrw);
    lbk_bounded_free(k->bd);
}

static void tour_keys(lbk_set *set, uint64_t nkeys)
{
    const lbk_snapshot *full, *less;
    check(lbk_set_snapshot(set, &full), "snapshot");
    /* for disruption: the same set after removing backend 3 (its slot
     * becomes a hole, as in a live set; the others keep theirs) */
    uint32_t slot3;
    check(lbk_set_find(set, default_backends[3].name, &slot3), "find");
    check(lbk_set_remove(set, slot3), "remove");
    check(lbk_set_snapshot(set, &less), "snapshot");
    struct column cols[A_COUNT];
    uint16_t *owner = malloc(nkeys * sizeof(*owner));
    char key[32];
    for (int a = 0; a < A_COUNT; a++) {
        struct column *c = &cols[a];
        memset(c, 0, sizeof(*c));
        c->name = algos[a].name;
        c->when = algos[a].when;
        c->weighted = algos[a].weighted;
        struct keyer k;
        check(keyer_build(&k, (enum algo)a, full), c->name);
        double t0 = now_s();
        for (uint64_t i = 0; i < nkeys; i++) {
            int len =
                snprintf(key, sizeof key, "key-%llu", (unsigned long long)i);
            lbk_backend *b;
            check(keyer_lookup(&k, key, (size_t)len, &b), c->name);
            owner[i] = (uint16_t)index_of(b);
            c->count[owner[i]]++;
        }
        c->ns = (now_s() - t0) * 1e9 / (double)nkeys;
        keyer_free(&k);
        /* disruption: keys whose owner changes when backend 3 goes */
        check(keyer_build(&k, (enum algo)a, less), c->name);
        uint64_t moved = 0;
        for (uint64_t i = 0; i < nkeys; i++) {
            int len =
                snprintf(key, sizeof key, "key-%llu", (unsigned long long)i);
            lbk_backend *b;
            check(keyer_lookup(&k, key, (size_t)len, &b), c->name);
            moved += index_of(b) != owner[i];
        }
        c->moved = (double)moved / (double)nkeys;
        keyer_free(&k);
    }
    free(owner);
    lbk_snapshot_release(full);
    lbk_snapshot_release(less);
    print_table("key to backend", "keys", cols, A_COUNT, nkeys);
    if (!json)
        printf("\n  (jump ignores weights: its target is equal shares; "
               "bounded holds every key it placed,\n   so no backend "
               "exceeds ceil(1.25 x keys / 12); \"moved\" removes "
               "%s, weight 2 of 48)\n",
               default_backends[3].name);
}

/* ---- M/M/N sizing ----------------------------------------------------- */

static void tour_queueing(void)
{
    /* A call centre: 100 calls per 30 minutes, 3 minutes each (a = 10
     * Erlangs); answer 80% within 20 seconds.  Units: seconds. */
    double lambda = 100.0 / 1800.0, mu = 1.0 / 180.0;
    uint32_t n;
    check(lbk_mmn_servers_for_service_level(lambda, mu, 20.0, 0.8, &n),
          "sizing");
    lbk_mmn_metrics m;
    check(lbk_mmn_evaluate(lambda, mu, n, &m), "metrics");
    double sl, p99;
    check(lbk_mmn_service_level(lambda, mu, n, 20.0, &sl), "service level");
    check(lbk_mmn_response_quantile(lambda, mu, n, 0.99, &p99), "p99");
    /* and a large one: 1 million requests/s at 2 ms each, p(wait) <= 5% */
    uint32_t big;
    check(lbk_mmn_servers_for_p_wait(1e6, 500.0, 0.05, &big), "sizing");
    if (json) {
        printf("  \"queueing\": {\"servers\": %u, \"offered_load\": %.4f, "
               "\"utilization\": %.6f, \"p_wait\": %.10f, \"service_level\": "
               "%.10f, \"mean_wait\": %.6f, \"p99_response\": %.3f, "
               "\"large_servers\": %u},\n",
               n, m.offered_load, m.utilization, m.p_wait, sl, m.mean_wait, p99,
               big);
        return;
    }
    printf("\n== M/M/N sizing (lbkit/queueing.h) ==\n\n");
    printf("  100 calls per 30 min, 3 min each (a = %.1f Erlangs), target: "
           "80%% answered within 20 s\n",
           m.offered_load);
    printf("  smallest N: %u   utilization %.1f%%   P(wait) %.4f   service "
           "level %.4f\n",
           n, 100 * m.utilization, m.p_wait, sl);
    printf("  mean wait %.2f s   mean in queue %.3f   p99 time in system "
           "%.0f s\n",
           m.mean_wait, m.mean_queue_length, p99);
    printf("  1e6 req/s at 2 ms each (a = 2000), P(wait) <= 5%%: N = %u "
           "(square-root staffing: a + c*sqrt(a))\n",
           big);
    printf("  choose it to size a pool before you have one; lbkit-capacity "
           "prints every metric\n");
}

/* ---- Chord ------------------------------------------------------------ */

static void tour_chord(void)
{
    enum { N = 1024, LOOKUPS = 10000 };
    uint64_t *ids = malloc(N * sizeof(*ids));
    for (uint32_t i = 0; i < N; i++)
        ids[i] = lbk_hash(&i, sizeof i, 7);
    lbk_chord *c;
    /* a successor list of one, as in the paper's path-length experiment
     * (longer lists also shorten paths: r = 8 gives about 4.3 hops here) */
    lbk_chord_options co;
    lbk_chord_options_init(&co);
    co.succ_list = 1;
    check(lbk_chord_create(&co, ids, N, NULL, &c), "chord");
    free(ids);
    uint64_t key_id;
    check(lbk_chord_key_id(c, "user:42", 7, &key_id), "key id");
    uint32_t path[80];
    lbk_chord_result r;
    check(lbk_chord_lookup(c, 0, key_id, path, 80, &r), "lookup");
    double hops = 0;
    uint64_t rs = 1;
    for (int i = 0; i < LOOKUPS; i++) {
        lbk_chord_result x;
        /* independent start node and key (SplitMix64 steps) */
        uint64_t from = lbk_hash(&rs, sizeof rs, 1),
                 key = lbk_hash(&rs, sizeof rs, 2);
        rs++;
        check(lbk_chord_lookup(c, (uint32_t)(from % N), key, NULL, 0, &x),
              "lookup");
        hops += x.hops;
    }
    hops /= LOOKUPS;
    if (json) {
        printf(
            "  \"chord\": {\"nodes\": %d, \"key\": \"user:42\", \"owner\": "
            "%u, \"hops\": %u, \"mean_hops\": %.3f, \"half_log2_n\": %.3f}\n",
            N, r.owner, r.hops, hops, 0.5 * log2(N));
    } else {
        printf("\n== Chord lookup (lbkit/chord.h) ==\n\n");
        printf("  %d nodes, 64-bit ids; key \"user:42\" from node 0: ", N);
        for (uint32_t i = 0; i < r.path_len && i < 80; i++)
            printf("%s%u", i ? " -> " : "", path[i]);
        printf("  => owner node %u (%u hops)\n", r.owner, r.hops);
        printf("  mean over %d random lookups: %.2f hops (paper: 1/2 log2 N "
               "= %.2f)\n",
               LOOKUPS, hops, 0.5 * log2(N));
        printf("  choose it for discovery with no central registry; "
               "lbkit-chord reproduces the paper\n");
    }
    lbk_chord_free(c);
}

int main(int argc, char **argv)
{
    uint64_t picks = 1000000, keys = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--picks") == 0 && i + 1 < argc) {
            if (ex_parse_u64(argv[++i], 1, 100000000, &picks) < 0) {
                fprintf(stderr, "lbkit-tour: bad --picks\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            if (ex_parse_u64(argv[++i], 1, 10000000, &keys) < 0) {
                fprintf(stderr, "lbkit-tour: bad --keys\n");
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: lbkit-tour [--json] [--picks N] [--keys N]\n");
            return 2;
        }
    }
    lbk_set *set = make_set();
    if (json) {
        printf("{\n  \"lbkit\": \"%s\",\n  \"backends\": [",
               lbk_version_string());
        for (size_t i = 0; i < NB; i++)
            printf("%s{\"name\": \"%s\", \"weight\": %u}", i ? ", " : "",
                   default_backends[i].name, default_backends[i].weight);
        printf("],\n");
    } else {
        printf("lbkit %s tour: %zu backends, weights 1..10 (total 48)\n",
               lbk_version_string(), NB);
    }
    tour_pickers(set, picks);
    tour_keys(set, keys);
    tour_queueing();
    tour_chord();
    if (json)
        printf("}\n");
    lbk_set_free(set);
    return 0;
}
