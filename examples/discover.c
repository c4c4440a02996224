/*
 * examples/discover.c - lbkit-discover: follow a discovery source and show
 * the backend set it produces, change by change.
 *
 *   lbkit-discover --dns _http._tcp.example.test [--server 127.0.0.1:5353]
 *   lbkit-discover --etcd http://127.0.0.1:2379 --prefix /services/web/
 *     [--pick N] [--policy NAME] [--seed S] [--once] [--timeout SECONDS]
 *     [--stale SECONDS] [--allow-empty]
 *
 * It wires a source to a set the way a proxy would (doc/DISCOVERY.md):
 *
 *   source (lbk_dns / lbk_etcd) -> lbk_reconciler -> lbk_set -> picker
 *
 * prints the set after the first good answer, then each change as it is
 * applied ("+ name addr:port w=.. p=..", "- name", "~ name ..."), and with
 * --pick N shows N picks after each change: --policy is any lbk_picker
 * policy (picker.h) or "tiers" (tiers.h, priority levels with spill-over).
 * --once exits after the first round (0 when applied, 1 when it failed);
 * --timeout stops after that many seconds (exit 0 if an answer was ever
 * applied, else 1).  Source failures are printed as "! ..." lines; the set
 * keeps its last good answer (until --stale seconds, if given).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lbkit/backend.h"
#include "lbkit/picker.h"
#include "lbkit/reconcile.h"
#include "lbkit/tiers.h"
#include "parse.h"
#ifdef LBK_HAVE_DNS
#include "lbkit/dns.h"
#endif
#ifdef LBK_HAVE_ETCD
#include "lbkit/etcd.h"
#endif

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

struct app {
    const char *dns, *server, *etcd, *prefix, *policy;
    uint64_t picks, seed, timeout_ns, stale_ns;
    bool once, allow_empty;
    lbk_set *set;
    lbk_reconciler *rec;
    uint32_t changes; /* printed since the last summary */
    bool printed_set;
    uint64_t applies_seen;
};

static void on_change(void *user, const lbk_change *c)
{
    struct app *a = user;
    bool v6 = strchr(c->address, ':') != NULL;
    char ep[300];
    snprintf(ep, sizeof ep, v6 ? "[%s]:%u" : "%s:%u", c->address, c->port);
    if (!a->printed_set && c->kind == LBK_CHANGE_ADD)
        return; /* the first answer is printed as a whole */
    switch (c->kind) {
    case LBK_CHANGE_ADD:
        printf("+ %s %s w=%u p=%u\n", c->name, ep, c->weight, c->priority);
        break;
    case LBK_CHANGE_REMOVE:
        printf("- %s\n", c->name);
        break;
    case LBK_CHANGE_WEIGHT:
    case LBK_CHANGE_PRIORITY:
        printf("~ %s %s w=%u->%u p=%u->%u\n", c->name, ep, c->old_weight,
               c->weight, c->old_priority, c->priority);
        break;
    }
    a->changes++;
}

static void print_set(struct app *a)
{
    const lbk_snapshot *s;
    if (lbk_set_acquire(a->set, &s) < 0)
        return;
    printf("set: %u backends\n", lbk_snapshot_count(s));
    for (uint32_t i = 0; i < lbk_snapshot_count(s); i++) {
        lbk_backend *b = lbk_snapshot_backend(s, i);
        const lbk_endpoint *ep = lbk_backend_user(b);
        bool v6 = strchr(ep->address, ':') != NULL;
        printf(v6 ? "  %s [%s]:%u w=%u p=%u\n" : "  %s %s:%u w=%u p=%u\n",
               lbk_backend_name(b), ep->address, ep->port,
               lbk_snapshot_weight(s, i), lbk_snapshot_priority(s, i));
    }
    lbk_snapshot_release(s);
}

static void print_picks(struct app *a)
{
    if (a->picks == 0)
        return;
    printf("picks (%s):", a->policy);
    if (strcmp(a->policy, "tiers") == 0) {
        const lbk_snapshot *s;
        lbk_tiers *t;
        lbk_tiers_options o;
        lbk_tiers_options_init(&o);
        o.seed = a->seed;
        if (lbk_set_acquire(a->set, &s) < 0)
            return;
        int rc = lbk_tiers_build(s, &o, NULL, &t);
        lbk_snapshot_release(s);
        for (uint64_t i = 0; rc == 0 && i < a->picks; i++) {
            lbk_backend *b;
            if (lbk_tiers_pick(t, &b) == 0)
                printf(" %s", lbk_backend_name(b));
            else
                printf(" -");
        }
        if (rc == 0)
            lbk_tiers_free(t);
        else
            printf(" (%s)", lbk_strerror(rc));
    } else {
        lbk_picker_options o;
        lbk_picker_options_init(&o);
        o.policy = a->policy;
        o.seed = a->seed;
        lbk_picker *p;
        int rc = lbk_picker_create(a->set, &o, NULL, &p);
        for (uint64_t i = 0; rc == 0 && i < a->picks; i++) {
            lbk_pick pk;
            if (lbk_picker_pick(p, now_ns(), &pk) == 0) {
                printf(" %s", lbk_backend_name(lbk_pick_backend(&pk)));
                lbk_picker_release(p, &pk, NULL);
            } else {
                printf(" -");
            }
        }
        if (rc == 0)
            lbk_picker_free(p);
        else
            printf(" (%s)", lbk_strerror(rc));
    }
    printf("\n");
}

/* After the source moved: print what is new.  Returns whether a good
 * answer was applied in this step. */
static bool after_step(struct app *a)
{
    lbk_reconcile_status st;
    lbk_reconciler_status(a->rec, &st);
    if (st.applies == a->applies_seen)
        return false;
    a->applies_seen = st.applies;
    if (!a->printed_set) {
        a->printed_set = true;
        print_set(a);
        print_picks(a);
    } else if (a->changes > 0) {
        print_picks(a);
    }
    a->changes = 0;
    fflush(stdout);
    return true;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lbkit-discover --dns _service._proto.name "
            "[--server IP:PORT]\n"
            "       lbkit-discover --etcd URL --prefix PREFIX\n"
            "  [--pick N] [--policy NAME|tiers] [--seed S] [--once]\n"
            "  [--timeout SECONDS] [--stale SECONDS] [--allow-empty]\n");
}

static int parse_args(struct app *a, int argc, char **argv)
{
    a->policy = "round_robin";
    a->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        int bad = 0;
        if (strcmp(o, "--dns") == 0 && v)
            a->dns = v;
        else if (strcmp(o, "--server") == 0 && v)
            a->server = v;
        else if (strcmp(o, "--etcd") == 0 && v)
            a->etcd = v;
        else if (strcmp(o, "--prefix") == 0 && v)
            a->prefix = v;
        else if (strcmp(o, "--policy") == 0 && v)
            a->policy = v;
        else if (strcmp(o, "--pick") == 0 && v)
            bad = ex_parse_u64(v, 0, 100000, &a->picks);
        else if (strcmp(o, "--seed") == 0 && v)
            bad = ex_parse_u64(v, 0, UINT64_MAX, &a->seed);
        else if (strcmp(o, "--timeout") == 0 && v) {
            uint64_t s;
            bad = ex_parse_u64(v, 1, 86400 * 365, &s);
            a->timeout_ns = s * NS_PER_S;
        } else if (strcmp(o, "--stale") == 0 && v) {
            uint64_t s;
            bad = ex_parse_u64(v, 1, 86400 * 365, &s);
            a->stale_ns = s * NS_PER_S;
        } else {
            takes = false;
            if (strcmp(o, "--once") == 0)
                a->once = true;
            else if (strcmp(o, "--allow-empty") == 0)
                a->allow_empty = true;
            else {
                fprintf(stderr, "lbkit-discover: bad option %s\n", o);
                return -1;
            }
        }
        if (bad < 0) {
            fprintf(stderr, "lbkit-discover: bad value for %s: %s\n", o, v);
            return -1;
        }
        if (takes)
            i++;
    }
    if ((a->dns == NULL) == (a->etcd == NULL) ||
        (a->etcd != NULL && a->prefix == NULL)) {
        usage();
        return -1;
    }
    if (strcmp(a->policy, "tiers") != 0) {
        lbk_policy p;
        if (lbk_policy_from_name(a->policy, &p) < 0) {
            fprintf(stderr, "lbkit-discover: unknown policy %s\n", a->policy);
            return -1;
        }
    }
    return 0;
}

#ifdef LBK_HAVE_DNS
static int run_dns(struct app *a, uint64_t deadline)
{
    lbk_dns_options o;
    lbk_dns_options_init(&o);
    o.server = a->server;
    lbk_dns *d;
    int rc = lbk_dns_create(a->dns, a->rec, &o, NULL, &d);
    if (rc < 0) {
        fprintf(stderr, "lbkit-discover: %s: %s\n", a->dns, lbk_strerror(rc));
        return 1;
    }
    printf("# %s via DNS %s\n", a->dns, a->server ? a->server : "(system)");
    uint64_t failures = 0, rounds = 0;
    int status = 1;
    while (!stop_flag) {
        uint64_t now = now_ns();
        lbk_dns_process(d, LBK_DNS_NO_FD, LBK_DNS_NO_FD, now);
        lbk_dns_info info;
        lbk_dns_status(d, &info);
        if (info.rounds != rounds) { /* a round finished */
            rounds = info.rounds;
            if (info.failures > failures) {
                failures = info.failures;
                printf("! %s (keeping the last good set)\n", info.last_error);
                fflush(stdout);
            }
            if (after_step(a))
                status = 0;
            if (a->once)
                break;
        }
        if (deadline != 0 && now >= deadline)
            break;
        lbk_dns_fd fds[LBK_DNS_MAX_FDS];
        struct pollfd p[LBK_DNS_MAX_FDS];
        int n = lbk_dns_fds(d, fds, LBK_DNS_MAX_FDS);
        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){fds[i].fd,
                                   (short)((fds[i].read ? POLLIN : 0) |
                                           (fds[i].write ? POLLOUT : 0)),
                                   0};
        uint64_t wait;
        lbk_dns_timeout(d, now, &wait);
        if (deadline != 0 && wait > deadline - now)
            wait = deadline - now;
        if (wait > 500 * NS_PER_MS)
            wait = 500 * NS_PER_MS; /* notice signals */
        int ready = poll(p, (nfds_t)n, (int)(wait / NS_PER_MS));
        for (int i = 0; i < n && ready > 0; i++) {
            if (p[i].revents == 0)
                continue;
            lbk_dns_process(
                d,
                p[i].revents & (POLLIN | POLLERR | POLLHUP) ? p[i].fd
                                                            : LBK_DNS_NO_FD,
                p[i].revents & POLLOUT ? p[i].fd : LBK_DNS_NO_FD, now_ns());
        }
    }
    lbk_dns_free(d);
    return status;
}
#endif

#ifdef LBK_HAVE_ETCD
static int run_etcd(struct app *a, uint64_t deadline)
{
    lbk_etcd *w;
    int rc = lbk_etcd_create(a->etcd, a->prefix, a->rec, NULL, NULL, &w);
    if (rc < 0) {
        fprintf(stderr, "lbkit-discover: %s: %s\n", a->etcd, lbk_strerror(rc));
        return 1;
    }
    printf("# %s under %s via etcd\n", a->etcd, a->prefix);
    uint64_t failures = 0;
    uint32_t bad = 0;
    int status = 1;
    while (!stop_flag) {
        lbk_etcd_run(w, 200 * NS_PER_MS, NULL, NULL);
        lbk_etcd_info info;
        lbk_etcd_status(w, &info);
        if (info.failures > failures || info.bad_values > bad) {
            failures = info.failures;
            bad = info.bad_values;
            printf("! %s (keeping the last good set)\n", info.last_error);
            fflush(stdout);
            if (a->once && !a->printed_set)
                return 1;
        }
        if (after_step(a)) {
            status = 0;
            if (a->once)
                break;
        }
        if (deadline != 0 && now_ns() >= deadline)
            break;
    }
    lbk_etcd_free(w);
    return status;
}
#endif

int main(int argc, char **argv)
{
    struct app a;
    memset(&a, 0, sizeof a);
    if (parse_args(&a, argc, argv) < 0)
        return 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lbk_reconcile_options ro;
    lbk_reconcile_options_init(&ro);
    ro.on_change = on_change;
    ro.user = &a;
    ro.stale_limit_ns = a.stale_ns;
    ro.empty_is_failure = !a.allow_empty;
    if (lbk_set_create(NULL, &a.set) < 0 ||
        lbk_reconciler_create(a.set, &ro, NULL, &a.rec) < 0) {
        fprintf(stderr, "lbkit-discover: out of memory\n");
        return 1;
    }
    uint64_t deadline = a.timeout_ns ? now_ns() + a.timeout_ns : 0;
    int status = 2;
    (void)deadline; /* unused when built without either adapter */
    (void)after_step;
    if (a.dns != NULL) {
#ifdef LBK_HAVE_DNS
        status = run_dns(&a, deadline);
#else
        fprintf(stderr, "lbkit-discover: built without c-ares (--dns)\n");
#endif
    } else {
#ifdef LBK_HAVE_ETCD
        status = run_etcd(&a, deadline);
#else
        fprintf(stderr, "lbkit-discover: built without libcurl/json-c "
                        "(--etcd)\n");
#endif
    }
    lbk_reconciler_free(a.rec);
    lbk_set_free(a.set);
    return status;
}
