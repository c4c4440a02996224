/*
 * examples/route.c - lbkit-route: which backend owns each key, by any of
 * lbkit's consistent-hashing algorithms.
 *
 *   lbkit-route [--algo ALGO] [--points K] [--table-size M]
 *               [--balance-factor C] [--seed S] BACKENDS_FILE < KEYS
 *
 * BACKENDS_FILE has one backend per line, "name [weight]" (weight a decimal
 * 0 .. 4294967295, default 1); '#' starts a comment, blank lines are
 * skipped; it is read with the examples' shared strict parser (parse.h).  For
 * the compatibility algorithms (libketama, libmemcached, nginx) names are
 * "host:port" and the servers must be listed in the same order as the peer
 * lists them.  Each line of standard input is one key (without its newline; a
 * trailing CR is dropped too); the program prints "key<TAB>backend-name" for
 * each.
 *
 * ALGO: ring (XXH3 ring, the default), libketama, libmemcached, nginx,
 * maglev, jump, hrw, bounded.  For bounded every key is placed as one more
 * request in flight and none is released, so the output keeps every backend
 * at or below ceil(C/100 * keys so far / n) keys.
 *
 * Options that do not apply to ALGO are errors rather than silently ignored:
 * --points (ring, bounded), --table-size (maglev), --balance-factor
 * (bounded, in percent as HAProxy's hash-balance-factor: 125 = 1.25),
 * --seed (every algorithm but the three compatibility modes, which have no
 * seed in their peers).
 *
 * Exit status: 0 when every key was routed, 1 when a key found no eligible
 * backend or an lbkit call failed, 2 for usage errors and bad input files.
 * Errors go to standard error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lbkit/lbkit.h>

#include <lbkit/bounded.h>
#include <lbkit/hrw.h>
#include <lbkit/jump.h>
#include <lbkit/maglev.h>
#include <lbkit/ring.h>

#include "parse.h"

enum algo { RING, LIBKETAMA, LIBMEMCACHED, NGINX, MAGLEV, JUMP, HRW, BOUNDED };

static const char *const algo_names[] = {
    "ring",   "libketama", "libmemcached", "nginx",
    "maglev", "jump",      "hrw",          "bounded",
};
#define N_ALGOS (sizeof(algo_names) / sizeof(algo_names[0]))

struct options {
    enum algo algo;
    const char *file;
    uint32_t points, table_size, balance_factor;
    uint64_t seed;
    bool has_points, has_table_size, has_balance_factor, has_seed;
};

/* The built picker: one of these is set. */
struct router {
    lbk_ring *ring;
    lbk_maglev *maglev;
    lbk_jump *jump;
    lbk_hrw *hrw;
    lbk_bounded *bounded;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lbkit-route [--algo ALGO] [--points K] [--table-size M]\n"
            "                   [--balance-factor C] [--seed S] BACKENDS_FILE "
            "< KEYS\n"
            "  --algo ALGO         ring (default), libketama, libmemcached, "
            "nginx,\n"
            "                      maglev, jump, hrw, bounded\n"
            "  --points K          ring points per unit of weight (ring, "
            "bounded)\n"
            "  --table-size M      Maglev table size, a prime (maglev)\n"
            "  --balance-factor C  bounded-load factor in percent, 125 = 1.25 "
            "(bounded)\n"
            "  --seed S            XXH3 seed (not the compatibility modes)\n"
            "BACKENDS_FILE: one 'name [weight]' per line, '#' comments.\n"
            "Prints 'key<TAB>backend' for each key line on standard input.\n");
}

static int bad_option(const char *opt, const char *value, const char *why)
{
    fprintf(stderr, "lbkit-route: %s '%s': %s\n", opt, value, why);
    return 2;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"algo", required_argument, NULL, 'a'},
        {"points", required_argument, NULL, 'p'},
        {"table-size", required_argument, NULL, 'm'},
        {"balance-factor", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->algo = RING;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': {
            size_t i = 0;
            while (i < N_ALGOS && strcmp(optarg, algo_names[i]) != 0)
                i++;
            if (i == N_ALGOS)
                return bad_option("--algo", optarg, "unknown algorithm");
            o->algo = (enum algo)i;
            break;
        }
        case 'p':
            if (ex_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return bad_option("--points", optarg, "not a number");
            o->points = (uint32_t)v;
            o->has_points = true;
            break;
        case 'm':
            if (ex_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return bad_option("--table-size", optarg, "not a number");
            o->table_size = (uint32_t)v;
            o->has_table_size = true;
            break;
        case 'c':
            if (ex_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return bad_option("--balance-factor", optarg,
                                  "not a whole percentage (125 = 1.25)");
            o->balance_factor = (uint32_t)v;
            o->has_balance_factor = true;
            break;
        case 's':
            if (ex_parse_u64(optarg, 0, UINT64_MAX, &v) < 0)
                return bad_option("--seed", optarg, "not a number");
            o->seed = v;
            o->has_seed = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "lbkit-route: expected one BACKENDS_FILE\n");
        usage(stderr);
        return 2;
    }
    o->file = argv[optind];
    const char *algo = algo_names[o->algo];
    bool compat =
        o->algo == LIBKETAMA || o->algo == LIBMEMCACHED || o->algo == NGINX;
    const char *misfit = NULL;
    if (o->has_points && o->algo != RING && o->algo != BOUNDED)
        misfit = "--points";
    else if (o->has_table_size && o->algo != MAGLEV)
        misfit = "--table-size";
    else if (o->has_balance_factor && o->algo != BOUNDED)
        misfit = "--balance-factor";
    else if (o->has_seed && compat)
        misfit = "--seed";
    if (misfit != NULL) {
        fprintf(stderr, "lbkit-route: %s does not apply to --algo %s\n", misfit,
                algo);
        return 2;
    }
    return 0;
}

/* ---- the backends file -------------------------------------------------- */

/* Parse the file with the examples' shared strict parser, then add each
 * backend; the set reports what the parser cannot see (total weight). */
static int read_backends(lbk_set *set, const char *file)
{
    ex_backend_list list;
    char err[512];
    if (ex_backend_list_read(file, &list, err, sizeof err) < 0) {
        fprintf(stderr, "lbkit-route: %s\n", err);
        return 2;
    }
    int status = 0;
    for (size_t i = 0; i < list.n && status == 0; i++) {
        const ex_backend_line *l = &list.items[i];
        uint32_t slot;
        int rc = lbk_set_add(set, l->name, l->weight, NULL, &slot);
        if (rc < 0) {
            fprintf(stderr, "lbkit-route: %s:%zu: %s: %s\n", file, l->line,
                    l->name,
                    rc == LBK_EOVERFLOW ? "total weight exceeds 4294967295"
                                        : lbk_strerror(rc));
            status = rc == LBK_ENOMEM ? 1 : 2;
        }
    }
    if (status == 0 && list.n == 0) {
        fprintf(stderr, "lbkit-route: %s: no backends\n", file);
        status = 2;
    }
    ex_backend_list_free(&list);
    return status;
}

/* ---- building and routing ----------------------------------------------- */

static int build_router(const struct options *o, const lbk_snapshot *snap,
                        struct router *r)
{
    lbk_ring_options ro;
    lbk_ring_options_init(&ro);
    static const lbk_ring_mode modes[] = {[RING] = LBK_RING_XXH3,
                                          [LIBKETAMA] = LBK_RING_LIBKETAMA,
                                          [LIBMEMCACHED] =
                                              LBK_RING_LIBMEMCACHED,
                                          [NGINX] = LBK_RING_NGINX,
                                          [BOUNDED] = LBK_RING_XXH3};
    if (o->algo <= NGINX || o->algo == BOUNDED) {
        ro.mode = modes[o->algo];
        if (o->has_points)
            ro.points_per_weight = o->points;
        if (o->has_seed)
            ro.seed = o->seed;
    }
    switch (o->algo) {
    case RING:
    case LIBKETAMA:
    case LIBMEMCACHED:
    case NGINX:
        return lbk_ring_build(snap, &ro, NULL, &r->ring);
    case MAGLEV: {
        lbk_maglev_options mo;
        lbk_maglev_options_init(&mo);
        if (o->has_table_size)
            mo.table_size = o->table_size;
        mo.seed = o->seed;
        return lbk_maglev_build(snap, &mo, NULL, &r->maglev);
    }
    case JUMP: {
        lbk_jump_options jo;
        lbk_jump_options_init(&jo);
        jo.seed = o->seed;
        return lbk_jump_build(snap, &jo, NULL, &r->jump);
    }
    case HRW: {
        lbk_hrw_options ho;
        lbk_hrw_options_init(&ho);
        ho.seed = o->seed;
        return lbk_hrw_build(snap, &ho, NULL, &r->hrw);
    }
    case BOUNDED: {
        lbk_bounded_options bo;
        lbk_bounded_options_init(&bo);
        bo.ring = ro;
        if (o->has_balance_factor)
            bo.balance_factor = o->balance_factor;
        return lbk_bounded_build(snap, &bo, NULL, &r->bounded);
    }
    }
    return LBK_EINVAL;
}

static int route(const struct router *r, const char *key, size_t len,
                 lbk_backend **b)
{
    if (r->ring != NULL)
        return lbk_ring_lookup(r->ring, key, len, b);
    if (r->maglev != NULL)
        return lbk_maglev_lookup(r->maglev, key, len, b);
    if (r->jump != NULL)
        return lbk_jump_lookup(r->jump, key, len, b);
    if (r->hrw != NULL)
        return lbk_hrw_lookup(r->hrw, key, len, b);
    /* Placed for good: this run models keys that all stay active. */
    return lbk_bounded_acquire(r->bounded, key, len, b);
}

static void free_router(struct router *r)
{
    lbk_ring_free(r->ring);
    lbk_maglev_free(r->maglev);
    lbk_jump_free(r->jump);
    lbk_hrw_free(r->hrw);
    lbk_bounded_free(r->bounded); /* drops the loads with it */
}

static int route_stdin(const struct router *r)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int status = 0;
    while ((got = getline(&line, &cap, stdin)) != -1) {
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        lbk_backend *b;
        int rc = route(r, line, len, &b);
        if (rc < 0) {
            fprintf(stderr, "lbkit-route: key '%s': %s\n", line,
                    lbk_strerror(rc));
            status = 1;
            break;
        }
        fwrite(line, 1, len, stdout);
        putchar('\t');
        fputs(lbk_backend_name(b), stdout);
        putchar('\n');
    }
    free(line);
    if (status == 0 && ferror(stdin)) {
        fprintf(stderr, "lbkit-route: error reading keys\n");
        status = 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "lbkit-route: error writing output\n");
        status = 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_args(argc, argv, &o);
    if (status != 0)
        return status;
    lbk_set *set;
    int rc = lbk_set_create(NULL, &set);
    if (rc < 0) {
        fprintf(stderr, "lbkit-route: %s\n", lbk_strerror(rc));
        return 1;
    }
    status = read_backends(set, o.file);
    const lbk_snapshot *snap = NULL;
    struct router r = {0};
    if (status == 0 && (rc = lbk_set_snapshot(set, &snap)) < 0) {
        fprintf(stderr, "lbkit-route: snapshot: %s\n", lbk_strerror(rc));
        status = 1;
    }
    if (status == 0 && (rc = build_router(&o, snap, &r)) < 0) {
        fprintf(stderr, "lbkit-route: building %s over %s: %s\n",
                algo_names[o.algo], o.file, lbk_strerror(rc));
        status = rc == LBK_ENOMEM ? 1 : 2;
    }
    if (status == 0)
        status = route_stdin(&r);
    free_router(&r);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    return status;
}
