/*
 * bench/sim.c - lbkit-sim: a discrete-event simulator of request dispatch,
 * driven by lbkit's real pickers.
 *
 *   lbkit-sim queue --policy P [--choices D] --servers N --load L
 *             --requests K [--service exp|det|pareto:A|bimodal:P:X]
 *             [--speeds FILE] [--warmup K0] [--replacement] --seed S [--json]
 *   lbkit-sim balls --bins N --balls M --choices D [--replacement]
 *             --seed S [--json]
 *   lbkit-sim scenario --name failing|cold|half-down|hetero|drift
 *             --policy P [--ejection] [--slow-start] [--panic]
 *             [--down-fail F] --servers N --load L --requests K
 *             --seed S [--json]
 *
 * Queue mode.  Poisson arrivals at total rate L x (sum of server speeds),
 * i.e. L per server when all speeds are 1, to N FIFO servers.  Service
 * demands have mean 1 (exp; det; pareto:A with shape A > 1 and scale
 * (A-1)/A; bimodal:P:X = X with probability P, else (1-P*X)/(1-P)); a
 * server of speed v serves a demand s in s/v.  Every arrival is dispatched
 * by an lbk_picker over an lbk_set of N backends: the pick counts the
 * request in flight (begin) and the departure releases it (end), exactly
 * as a proxy would, so least_conn is join-the-shortest-queue and p2c is
 * Mitzenmacher's supermarket model.  Policy "central" is the M/G/N lower
 * bound (one FIFO queue, earliest-free server); "ring" hashes a fresh
 * random key per request through lbk_ring.
 *
 * Because each server is FIFO, a job's departure time is known when it
 * arrives (start = max(arrival, server free), departure = start + s/v);
 * the event list is a binary heap of departures, so the cost per request
 * is one pick, one release and O(log jobs-in-system).
 *
 * d choices are drawn WITHOUT replacement by default (d distinct servers,
 * as Envoy and Finagle do); --replacement draws with replacement, as in
 * the supermarket model's analysis.  The two differ only at small N.
 *
 * Output: mean / p50 / p99 time in system, the 95% confidence half-width
 * of the mean by 20 batch means, the time-average number in system and
 * Little's-law check (L vs lambda x W).  Deterministic for a given seed.
 *
 * Scenario mode (doc/RESILIENCE.md, "Simulated effect") injects a fault at
 * 60 s of simulated time into N unit-speed servers under Poisson load L per
 * server and drives the real resilience modules as a proxy would: every
 * attempt's outcome goes to lbk_picker_release (bandits learn from success
 * and latency) and, with --ejection, to lbk_outlier_report; a one-second
 * control tick runs lbk_outlier_tick, lbk_slowstart_update (--slow-start)
 * and lbk_panic_update (--panic).  The scenarios:
 *   failing    backend 0 answers every request with a fast error (1 ms);
 *   cold       backend 0 is down until 60 s, then back at 20% speed,
 *              warming linearly to full speed over 60 s;
 *   half-down  health checks mark n/2 + 1 backends down at 60 s; an attempt
 *              on one of them (possible only in panic) fails fast with
 *              probability F (--down-fail, default 1: really dead; 0: the
 *              health checks were wrong and the backends serve normally);
 *   hetero     half the servers run at speed 1.5, half at 0.5, throughout;
 *   drift      the same, and at 60 s the fast and the slow half swap.
 * A failed attempt is retried at once on a new pick, once (Envoy's default
 * num_retries 1); the time in system of a request includes its failed
 * attempts.  The requests measured are the K arriving after the event.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "lbkit/lbkit.h"
#include "lbkit/p2c.h"
#include "lbkit/picker.h"
#include "lbkit/ring.h"

static double bench_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- arguments --------------------------------------------------------- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
                                                                ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lbkit-sim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double parse_double(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        die("bad number for %s", what);
    return v;
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    if (s[0] == '-')
        die("bad count for %s", what);
    double d = strtod(s, &end); /* accepts 1e7 */
    if (errno != 0 || end == s || *end != '\0' || !(d >= 0) || d > 1e15 ||
        d != floor(d))
        die("bad count for %s", what);
    return (uint64_t)d;
}

enum svc_kind { SVC_EXP, SVC_DET, SVC_PARETO, SVC_BIMODAL };

struct config {
    const char *mode;
    const char *policy;
    uint32_t choices;
    uint32_t servers;
    double load;
    uint64_t requests, warmup;
    enum svc_kind svc;
    double svc_a, svc_p, svc_x;
    const char *speeds_file;
    bool replacement;
    uint64_t seed;
    bool json;
    uint64_t bins, balls;
    const char *name; /* scenario mode */
    bool ejection, slow_start, panic;
    double down_fail;
};

static void parse_service(struct config *c, const char *s)
{
    if (strcmp(s, "exp") == 0) {
        c->svc = SVC_EXP;
    } else if (strcmp(s, "det") == 0) {
        c->svc = SVC_DET;
    } else if (strncmp(s, "pareto:", 7) == 0) {
        c->svc = SVC_PARETO;
        c->svc_a = parse_double(s + 7, "--service pareto:A");
        if (!(c->svc_a > 1.0))
            die("pareto shape must be > 1 (finite mean), got %s", s + 7);
    } else if (strncmp(s, "bimodal:", 8) == 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", s + 8);
        char *colon = strchr(buf, ':');
        if (colon == NULL)
            die("bimodal needs P:X, got %s", s);
        *colon = '\0';
        c->svc = SVC_BIMODAL;
        c->svc_p = parse_double(buf, "bimodal P");
        c->svc_x = parse_double(colon + 1, "bimodal X");
        if (!(c->svc_p > 0 && c->svc_p < 1 && c->svc_x > 0 &&
              c->svc_p * c->svc_x < 1))
            die("bimodal:P:X needs 0 < P < 1, X > 0 and P*X < 1, got %s", s);
    } else {
        die("unknown --service %s", s);
    }
}

/* The service demand's squared coefficient of variation, for the report. */
static double service_scv(const struct config *c)
{
    switch (c->svc) {
    case SVC_EXP:
        return 1.0;
    case SVC_DET:
        return 0.0;
    case SVC_PARETO:
        return c->svc_a > 2 ? 1.0 / (c->svc_a * (c->svc_a - 2)) : INFINITY;
    case SVC_BIMODAL: {
        double lo = (1 - c->svc_p * c->svc_x) / (1 - c->svc_p);
        double m2 = c->svc_p * c->svc_x * c->svc_x + (1 - c->svc_p) * lo * lo;
        return m2 - 1.0;
    }
    }
    return NAN;
}

/* ---- randomness -------------------------------------------------------- */

static double unit_open(uint64_t *rs) /* (0, 1] */
{
    return 1.0 - lbk_unit_double(lbk_rng_local_next(rs));
}

static double draw_service(const struct config *c, uint64_t *rs)
{
    switch (c->svc) {
    case SVC_EXP:
        return -log(unit_open(rs));
    case SVC_DET:
        return 1.0;
    case SVC_PARETO: {
        double xm = (c->svc_a - 1) / c->svc_a;
        return xm / pow(unit_open(rs), 1.0 / c->svc_a);
    }
    case SVC_BIMODAL:
        if (lbk_unit_double(lbk_rng_local_next(rs)) < c->svc_p)
            return c->svc_x;
        return (1 - c->svc_p * c->svc_x) / (1 - c->svc_p);
    }
    return 1.0;
}

/* ---- the departure heap ---------------------------------------------- */

struct dep {
    double t;
    uint32_t job;
};

struct heap {
    struct dep *a;
    size_t n, cap;
};

static void heap_push(struct heap *h, struct dep d)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->a = realloc(h->a, h->cap * sizeof(*h->a));
        if (h->a == NULL)
            die("%s", "out of memory");
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].t <= d.t)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = d;
}

static struct dep heap_pop(struct heap *h)
{
    struct dep top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n)
            break;
        size_t m = (l + 1 < h->n && h->a[l + 1].t < h->a[l].t) ? l + 1 : l;
        if (h->a[m].t >= last.t)
            break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

/* ---- statistics -------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double quantile(float *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(q * (double)n);
    if (k > 0)
        k--;
    return v[k < n ? k : n - 1];
}

struct result {
    double mean, p50, p99, ci95, in_system, lambda_total, little_rhs;
    uint64_t measured;
    double sim_seconds;
};

/* ---- queue mode -------------------------------------------------------- */

static double *read_speeds(const char *path, uint32_t n)
{
    double *v = malloc(n * sizeof(*v));
    for (uint32_t i = 0; i < n; i++)
        v[i] = 1.0;
    if (path == NULL)
        return v;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot read --speeds %s", path);
    char line[128];
    uint32_t i = 0;
    while (fgets(line, sizeof line, f) && i < n) {
        line[strcspn(line, "#\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        v[i] = parse_double(line, "--speeds line");
        if (!(v[i] > 0))
            die("speeds must be > 0 (%s)", line);
        i++;
    }
    fclose(f);
    if (i != n)
        die("--speeds %s has fewer lines than --servers", path);
    return v;
}

static void run_queue(const struct config *c, struct result *r)
{
    uint32_t n = c->servers;
    double *speed = read_speeds(c->speeds_file, n);
    double cap = 0;
    for (uint32_t i = 0; i < n; i++)
        cap += speed[i];
    double lambda = c->load * cap;
    uint64_t rs = c->seed * 2 + 1;

    bool central = strcmp(c->policy, "central") == 0;
    bool ring = strcmp(c->policy, "ring") == 0;
    lbk_set *set = NULL;
    lbk_picker *picker = NULL;
    lbk_ring *rg = NULL;
    const lbk_snapshot *snap = NULL;
    if (!central) {
        if (lbk_set_create(NULL, &set) < 0)
            die("%s", "cannot create the set");
        char name[32];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t slot;
            snprintf(name, sizeof name, "server-%u", i);
            /* weights proportional to speed (used by weighted policies) */
            uint32_t w = (uint32_t)lround(speed[i] * 100);
            if (lbk_set_add(set, name, w ? w : 1, NULL, &slot) < 0)
                die("%s", "cannot add a backend");
        }
        if (ring) {
            if (lbk_set_snapshot(set, &snap) < 0 ||
                lbk_ring_build(snap, NULL, NULL, &rg) < 0)
                die("%s", "cannot build the ring");
        } else {
            lbk_picker_options po;
            lbk_picker_options_init(&po);
            po.policy = c->policy;
            po.choices = c->choices;
            po.seed = c->seed;
            po.with_replacement = c->replacement;
            int rc = lbk_picker_create(set, &po, NULL, &picker);
            if (rc < 0)
                die("cannot create the picker: %s", lbk_strerror(rc));
        }
    }

    /* per job: its pick (for release) and its server */
    size_t jobs_cap = 1024;
    lbk_pick *picks = malloc(jobs_cap * sizeof(*picks));
    uint32_t *free_jobs = malloc(jobs_cap * sizeof(*free_jobs));
    uint32_t *job_server = malloc(jobs_cap * sizeof(*job_server));
    size_t nfree = 0, next_job = 0;
    double *free_at = calloc(n, sizeof(*free_at));
    float *resp = malloc((c->requests + 1) * sizeof(*resp));
    /* central queue: a heap of servers by free time */
    struct heap servers = {0};
    if (central)
        for (uint32_t i = 0; i < n; i++)
            heap_push(&servers, (struct dep){0.0, i});

    struct heap deps = {0};
    double t = 0, last_t = 0, area = 0, t0 = 0;
    uint64_t in_sys = 0;
    uint64_t total = c->warmup + c->requests;
    enum { BATCHES = 20 };
    double bsum[BATCHES] = {0};
    uint64_t bcount[BATCHES] = {0};
    uint64_t measured = 0;
    bool tty = isatty(2);
    double wall0 = bench_wall();

    for (uint64_t k = 0; k < total; k++) {
        double ta = t - log(unit_open(&rs)) / lambda;
        /* departures up to the next arrival */
        while (deps.n > 0 && deps.a[0].t <= ta) {
            struct dep d = heap_pop(&deps);
            if (k > c->warmup)
                area += (double)in_sys * (d.t - last_t);
            last_t = d.t;
            in_sys--;
            if (!central && !ring &&
                lbk_picker_release(picker, &picks[d.job], NULL) < 0)
                die("%s", "release failed");
            if (nfree == jobs_cap)
                die("%s", "job pool corrupt");
            free_jobs[nfree++] = d.job;
        }
        if (k > c->warmup)
            area += (double)in_sys * (ta - last_t);
        last_t = t = ta;
        if (k == c->warmup)
            t0 = t;

        uint32_t job;
        if (nfree > 0) {
            job = free_jobs[--nfree];
        } else {
            if (next_job == jobs_cap) {
                jobs_cap *= 2;
                picks = realloc(picks, jobs_cap * sizeof(*picks));
                free_jobs = realloc(free_jobs, jobs_cap * sizeof(*free_jobs));
                job_server =
                    realloc(job_server, jobs_cap * sizeof(*job_server));
                if (!picks || !free_jobs || !job_server)
                    die("%s", "out of memory");
            }
            job = (uint32_t)next_job++;
        }
        uint32_t s;
        double start;
        if (central) {
            struct dep srv = heap_pop(&servers);
            s = srv.job;
            start = srv.t > t ? srv.t : t;
        } else if (ring) {
            lbk_backend *b;
            uint64_t key = lbk_rng_local_next(&rs);
            if (lbk_ring_lookup(rg, &key, sizeof key, &b) < 0)
                die("%s", "ring lookup failed");
            s = lbk_backend_slot(b);
            memset(&picks[job], 0, sizeof(picks[job]));
            start = free_at[s] > t ? free_at[s] : t;
        } else {
            int rc = lbk_picker_pick(picker, (uint64_t)(t * 1e6), &picks[job]);
            if (rc < 0)
                die("pick failed: %s", lbk_strerror(rc));
            s = lbk_backend_slot(lbk_pick_backend(&picks[job]));
            start = free_at[s] > t ? free_at[s] : t;
        }
        double dep = start + draw_service(c, &rs) / speed[s];
        if (central)
            heap_push(&servers, (struct dep){dep, s});
        else
            free_at[s] = dep;
        job_server[job] = s;
        heap_push(&deps, (struct dep){dep, job});
        in_sys++;
        if (k >= c->warmup) {
            double w = dep - t;
            resp[measured] = (float)w;
            int b = (int)((measured * BATCHES) / c->requests);
            bsum[b] += w;
            bcount[b]++;
            measured++;
        }
        if (tty && (k & 0xfffff) == 0 && bench_wall() - wall0 > 3)
            fprintf(stderr, "\rlbkit-sim: %llu / %llu requests",
                    (unsigned long long)k, (unsigned long long)total);
    }
    if (tty && bench_wall() - wall0 > 3)
        fprintf(stderr, "\r%60s\r", "");
    /* drain (releases every pick; stats stop at the last arrival) */
    while (deps.n > 0) {
        struct dep d = heap_pop(&deps);
        if (!central && !ring)
            lbk_picker_release(picker, &picks[d.job], NULL);
    }
    double sum = 0;
    for (int b = 0; b < BATCHES; b++)
        sum += bsum[b];
    r->measured = measured;
    r->mean = sum / (double)measured;
    double var = 0;
    for (int b = 0; b < BATCHES; b++) {
        double m = bcount[b] ? bsum[b] / (double)bcount[b] : r->mean;
        var += (m - r->mean) * (m - r->mean);
    }
    var /= (BATCHES - 1);
    r->ci95 = 2.093 * sqrt(var / BATCHES); /* t(0.975, 19) */
    qsort(resp, measured, sizeof(*resp), cmp_float);
    r->p50 = quantile(resp, measured, 0.50);
    r->p99 = quantile(resp, measured, 0.99);
    r->sim_seconds = last_t - t0;
    r->in_system = area / r->sim_seconds;
    r->lambda_total = lambda;
    r->little_rhs = lambda * r->mean;

    if (picker)
        lbk_picker_free(picker);
    lbk_ring_free(rg);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    free(resp);
    free(picks);
    free(free_jobs);
    free(job_server);
    free(free_at);
    free(deps.a);
    free(servers.a);
    free(speed);
}

/* ---- scenario mode ----------------------------------------------------- */

/*
 * Scenario mode drives the resilience modules as a proxy would, on simulated
 * time.  One time unit is the mean service demand, taken to be 10 ms, so
 * the modules' Envoy-like defaults (10 s outlier interval, 30 s base
 * ejection, 60 s slow-start window) mean what they mean in production.
 * Arrivals before the event at SCEN_EVENT (60 s) are warm-up; the next
 * --requests arrivals are measured, each until its final answer (the drain
 * runs every retry to its end).  A control tick every second of simulated
 * time runs lbk_outlier_tick, lbk_slowstart_update and lbk_panic_update
 * for the modules switched on, as a proxy's timer would.
 *
 * Failures answer fast: an attempt that fails takes SCEN_FAIL_TIME (1 ms)
 * of its server's FIFO time and returns an error.  The client then retries
 * at once on a fresh pick (which may be the same backend: no previous-host
 * predicate), at most SCEN_ATTEMPTS attempts in all, Envoy's default of one
 * retry; a request whose attempts all fail is counted failed, and its time
 * in system (the sum of its attempts) is still counted.  Every attempt is
 * released to the picker with its outcome (success and latency seen by the
 * proxy: queueing plus service), so bandits learn from success and latency,
 * and reported to the outlier detector when --ejection is on.
 */
#define SCEN_UNIT_NS 10000000.0 /* one mean service time = 10 ms */
#define SCEN_EVENT 6000.0       /* the event at 60 s */
#define SCEN_TICK 100.0         /* control tick every 1 s */
#define SCEN_FAIL_TIME 0.1      /* a failed attempt takes 1 ms */
#define SCEN_ATTEMPTS 2         /* one retry */
#define SCEN_COLD_SPEED 0.2     /* a cold backend starts at 20% speed */
#define SCEN_WARMUP 6000.0      /* and reaches full speed after 60 s */

enum scen_kind {
    SCEN_FAILING,
    SCEN_COLD,
    SCEN_HALF_DOWN,
    SCEN_HETERO,
    SCEN_DRIFT
};

struct scen_job {
    lbk_pick pick;
    bool shadow; /* picked from the panic picker */
    bool fails;  /* this attempt fails */
    uint8_t attempts;
    double arrival, dispatched;
    uint64_t idx; /* measured index, UINT64_MAX when not measured */
};

struct scen {
    const struct config *c;
    enum scen_kind kind;
    uint32_t n;
    double *speed;
    uint64_t rs;
    lbk_set *set, *shadow_set;
    lbk_picker *picker, *shadow_picker;
    const lbk_snapshot *snap;
    lbk_outlier *od;
    lbk_slowstart *ss;
    lbk_panic *pn;
    lbk_backend **b, **sb;
    double *free_at;
    double next_tick;
    bool event_done;
    struct scen_job *jobs;
    uint32_t *free_jobs;
    size_t njobs, nfree, cap;
    struct heap deps;
    float *resp;
    uint64_t measured, failed, attempts, ticks_after, panic_ticks;
    double ok_sum; /* summed time in system of the requests that succeeded */
};

static uint64_t scen_ns(double t)
{
    return (uint64_t)(t * SCEN_UNIT_NS);
}

static double scen_speed(const struct scen *s, uint32_t i, double t)
{
    if (s->kind == SCEN_COLD && i == 0 && t >= SCEN_EVENT) {
        double f = (t - SCEN_EVENT) / SCEN_WARMUP;
        return f >= 1 ? 1.0 : SCEN_COLD_SPEED + (1 - SCEN_COLD_SPEED) * f;
    }
    return s->speed[i];
}

/*
 * half-down takes out n/2 + 1 backends (slots n/2 - 1 .. n - 1, all of them
 * for n < 4): with exactly half out, Envoy's strict rule (healthy < 50%)
 * keeps the tier out of panic, and the runs with and without --panic are
 * the same.
 */
static uint32_t scen_first_down(uint32_t n)
{
    return n < 4 ? 0 : n / 2 - 1;
}

static void scen_event(struct scen *s)
{
    switch (s->kind) {
    case SCEN_COLD: /* backend 0 passes its health check again, cold */
        lbk_backend_set_health(s->b[0], LBK_HEALTH_UP);
        break;
    case SCEN_HALF_DOWN: /* health checks take out just over half */
        for (uint32_t i = scen_first_down(s->n); i < s->n; i++)
            lbk_backend_set_health(s->b[i], LBK_HEALTH_DOWN);
        break;
    case SCEN_DRIFT: /* the fast half and the slow half swap speeds */
        for (uint32_t i = 0; i < s->n; i++)
            s->speed[i] = 2.0 - s->speed[i];
        break;
    case SCEN_FAILING: /* backend 0 fails from now on (see scen_dispatch) */
    case SCEN_HETERO:
        break;
    }
}

/* The proxy's timer: every control tick up to time t. */
static void scen_control(struct scen *s, double t)
{
    while (s->next_tick <= t) {
        double now = s->next_tick;
        if (!s->event_done && now >= SCEN_EVENT) {
            scen_event(s);
            s->event_done = true;
        }
        if (s->od && lbk_outlier_tick(s->od, scen_ns(now)) < 0)
            die("%s", "outlier tick failed");
        if (s->ss && lbk_slowstart_update(s->ss, scen_ns(now)) < 0)
            die("%s", "slow-start update failed");
        if (s->pn && lbk_panic_update(s->pn, s->snap) < 0)
            die("%s", "panic update failed");
        if (now >= SCEN_EVENT) {
            s->ticks_after++;
            if (s->pn && lbk_panic_active(s->pn, 0))
                s->panic_ticks++;
        }
        s->next_tick += SCEN_TICK;
    }
}

static void scen_finish(struct scen *s, struct scen_job *j, double t,
                        bool failed)
{
    if (j->idx != UINT64_MAX) {
        s->resp[j->idx] = (float)(t - j->arrival);
        s->failed += failed;
        if (!failed)
            s->ok_sum += t - j->arrival;
        s->attempts += j->attempts;
    }
    s->free_jobs[s->nfree++] = (uint32_t)(j - s->jobs);
}

/*
 * One attempt of job j at time t.  With --panic and the tier in panic, the
 * pick comes from the shadow picker, whose set holds the same backends all
 * UP: the pick ignores health across the tier, as lbk_panic_admits says.
 * Each attempt is counted in flight on both sets' backend (begin/end), so
 * load-aware policies see the same in-flight counts whichever picker
 * placed a request (least_conn keeps its own count and sees only its own).
 */
static void scen_dispatch(struct scen *s, uint32_t jid, double t)
{
    struct scen_job *j = &s->jobs[jid];
    j->shadow = s->pn != NULL && lbk_panic_active(s->pn, 0);
    lbk_picker *pk = j->shadow ? s->shadow_picker : s->picker;
    j->attempts++;
    j->dispatched = t;
    int rc = lbk_picker_pick(pk, scen_ns(t), &j->pick);
    if (rc == LBK_ENOBACKEND) { /* nothing eligible: fail at once */
        scen_finish(s, j, t, true);
        return;
    }
    if (rc < 0)
        die("pick failed: %s", lbk_strerror(rc));
    uint32_t i = lbk_backend_slot(lbk_pick_backend(&j->pick));
    lbk_backend_begin(j->shadow ? s->b[i] : s->sb[i]);
    bool down = s->kind == SCEN_HALF_DOWN && t >= SCEN_EVENT &&
                i >= scen_first_down(s->n);
    j->fails =
        (s->kind == SCEN_FAILING && i == 0 && t >= SCEN_EVENT) ||
        (down && lbk_unit_double(lbk_rng_local_next(&s->rs)) < s->c->down_fail);
    double start = s->free_at[i] > t ? s->free_at[i] : t;
    double dur = j->fails ? SCEN_FAIL_TIME
                          : -log(unit_open(&s->rs)) / scen_speed(s, i, start);
    s->free_at[i] = start + dur;
    heap_push(&s->deps, (struct dep){start + dur, jid});
}

static void scen_complete(struct scen *s, uint32_t jid, double t)
{
    struct scen_job *j = &s->jobs[jid];
    uint32_t i = lbk_backend_slot(lbk_pick_backend(&j->pick));
    lbk_outcome oc = {.success = !j->fails,
                      .latency_ns = scen_ns(t) - scen_ns(j->dispatched),
                      .now_ns = scen_ns(t)};
    if (oc.latency_ns == 0)
        oc.latency_ns = 1;
    if (lbk_picker_release(j->shadow ? s->shadow_picker : s->picker, &j->pick,
                           &oc) < 0)
        die("%s", "release failed");
    lbk_backend_end(j->shadow ? s->b[i] : s->sb[i]);
    if (s->od &&
        lbk_outlier_report(s->od, s->b[i],
                           j->fails ? LBK_OUTCOME_ERROR : LBK_OUTCOME_SUCCESS,
                           scen_ns(t)) < 0)
        die("%s", "outlier report failed");
    if (!j->fails)
        scen_finish(s, j, t, false);
    else if (j->attempts < SCEN_ATTEMPTS)
        scen_dispatch(s, jid, t);
    else
        scen_finish(s, j, t, true);
}

static uint32_t scen_new_job(struct scen *s)
{
    if (s->nfree > 0)
        return s->free_jobs[--s->nfree];
    if (s->njobs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->jobs = realloc(s->jobs, s->cap * sizeof(*s->jobs));
        s->free_jobs = realloc(s->free_jobs, s->cap * sizeof(*s->free_jobs));
        if (s->jobs == NULL || s->free_jobs == NULL)
            die("%s", "out of memory");
    }
    return (uint32_t)s->njobs++;
}

static lbk_set *scen_make_set(uint32_t n, lbk_backend **out)
{
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        die("%s", "cannot create the set");
    char name[32];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot;
        snprintf(name, sizeof name, "server-%u", i);
        if (lbk_set_add(set, name, 100, NULL, &slot) < 0)
            die("%s", "cannot add a backend");
        out[i] = lbk_set_backend(set, slot);
        if (lbk_backend_slot(out[i]) != i)
            die("%s", "unexpected slot numbering");
    }
    return set;
}

static lbk_picker *scen_make_picker(const struct config *c, lbk_set *set,
                                    uint64_t seed)
{
    lbk_picker_options po;
    lbk_picker_options_init(&po);
    po.policy = c->policy;
    po.choices = c->choices;
    po.seed = seed;
    po.with_replacement = c->replacement;
    lbk_picker *p;
    int rc = lbk_picker_create(set, &po, NULL, &p);
    if (rc < 0)
        die("cannot create the picker: %s", lbk_strerror(rc));
    return p;
}

static void scen_setup(struct scen *s)
{
    const struct config *c = s->c;
    uint32_t n = s->n;
    s->speed = malloc(n * sizeof(*s->speed));
    s->b = malloc(n * sizeof(*s->b));
    s->sb = malloc(n * sizeof(*s->sb));
    s->free_at = calloc(n, sizeof(*s->free_at));
    s->resp = malloc(c->requests * sizeof(*s->resp));
    if (!s->speed || !s->b || !s->sb || !s->free_at || !s->resp)
        die("%s", "out of memory");
    /* hetero and drift: the lower half fast (1.5), the upper half slow
     * (0.5), mean 1; odd n leaves the last server at 1 */
    for (uint32_t i = 0; i < n; i++)
        s->speed[i] = (s->kind == SCEN_HETERO || s->kind == SCEN_DRIFT) &&
                              !(n % 2 == 1 && i == n - 1)
                          ? (i < n / 2 ? 1.5 : 0.5)
                          : 1.0;
    s->set = scen_make_set(n, s->b);
    if (s->kind == SCEN_COLD) /* out until the event */
        lbk_backend_set_health(s->b[0], LBK_HEALTH_DOWN);
    s->picker = scen_make_picker(c, s->set, c->seed);
    if (lbk_set_snapshot(s->set, &s->snap) < 0)
        die("%s", "cannot snapshot");
    if (c->ejection) {
        lbk_outlier_options oo;
        lbk_outlier_options_init(&oo);
        oo.seed = c->seed;
        if (lbk_outlier_create(s->snap, &oo, NULL, 0, &s->od) < 0)
            die("%s", "cannot create the outlier detector");
    }
    if (c->slow_start &&
        lbk_slowstart_create(s->snap, NULL, NULL, 0, NULL, &s->ss) < 0)
        die("%s", "cannot create the slow-start state");
    if (c->panic) {
        if (lbk_panic_create(LBK_PANIC_DEFAULT_THRESHOLD, NULL, &s->pn) < 0)
            die("%s", "cannot create the panic state");
        s->shadow_set = scen_make_set(n, s->sb);
        s->shadow_picker = scen_make_picker(c, s->shadow_set, c->seed + 1);
    } else {
        s->shadow_set = scen_make_set(n, s->sb); /* only mirrors counts */
    }
}

static void scen_teardown(struct scen *s)
{
    lbk_picker_free(s->picker);
    lbk_picker_free(s->shadow_picker);
    lbk_outlier_free(s->od);
    lbk_slowstart_free(s->ss);
    lbk_panic_free(s->pn);
    lbk_snapshot_release(s->snap);
    lbk_set_free(s->set);
    lbk_set_free(s->shadow_set);
    free(s->speed);
    free(s->b);
    free(s->sb);
    free(s->free_at);
    free(s->resp);
    free(s->jobs);
    free(s->free_jobs);
    free(s->deps.a);
}

static void run_scenario(const struct config *c, enum scen_kind kind,
                         struct result *r, struct scen *s)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->kind = kind;
    s->n = c->servers;
    s->rs = c->seed * 2 + 1;
    scen_setup(s);
    double lambda = c->load * (double)s->n; /* capacity is n in every case */
    double t = 0;
    uint64_t next_idx = 0;
    while (next_idx < c->requests) {
        double ta = t - log(unit_open(&s->rs)) / lambda;
        while (s->deps.n > 0 && s->deps.a[0].t <= ta) {
            struct dep d = heap_pop(&s->deps);
            scen_control(s, d.t);
            scen_complete(s, d.job, d.t);
        }
        scen_control(s, ta);
        t = ta;
        uint32_t jid = scen_new_job(s);
        s->jobs[jid].attempts = 0;
        s->jobs[jid].arrival = t;
        s->jobs[jid].idx = t >= SCEN_EVENT ? next_idx++ : UINT64_MAX;
        scen_dispatch(s, jid, t);
    }
    while (s->deps.n > 0) { /* every measured request to its answer */
        struct dep d = heap_pop(&s->deps);
        scen_control(s, d.t);
        scen_complete(s, d.job, d.t);
    }
    s->measured = next_idx;
    enum { BATCHES = 20 };
    double bsum[BATCHES] = {0}, sum = 0;
    uint64_t bcount[BATCHES] = {0};
    for (uint64_t k = 0; k < s->measured; k++) {
        int b = (int)((k * BATCHES) / s->measured);
        bsum[b] += s->resp[k];
        bcount[b]++;
        sum += s->resp[k];
    }
    memset(r, 0, sizeof(*r));
    r->measured = s->measured;
    r->mean = sum / (double)s->measured;
    double var = 0;
    for (int b = 0; b < BATCHES; b++) {
        double m = bcount[b] ? bsum[b] / (double)bcount[b] : r->mean;
        var += (m - r->mean) * (m - r->mean);
    }
    r->ci95 = 2.093 * sqrt(var / (BATCHES - 1) / BATCHES);
    qsort(s->resp, s->measured, sizeof(*s->resp), cmp_float);
    r->p50 = quantile(s->resp, s->measured, 0.50);
    r->p99 = quantile(s->resp, s->measured, 0.99);
    r->lambda_total = lambda;
}

static const char *const scen_names[] = {"failing", "cold", "half-down",
                                         "hetero", "drift"};

static void scenario_main(const struct config *c)
{
    enum scen_kind kind = SCEN_FAILING;
    bool found = false;
    for (int k = 0; k < 5; k++)
        if (c->name != NULL && strcmp(c->name, scen_names[k]) == 0)
            kind = (enum scen_kind)k, found = true;
    if (!found)
        die("%s", "--name must be failing, cold, half-down, hetero or drift");
    struct result r;
    struct scen s;
    run_scenario(c, kind, &r, &s);
    uint32_t ejections = 0;
    for (uint32_t i = 0; s.od != NULL && i < s.n; i++) {
        lbk_outlier_info info;
        if (lbk_outlier_get_info(s.od, s.b[i], &info) == 0)
            ejections += info.times_ejected;
    }
    double failed = (double)s.failed / (double)s.measured;
    double att = (double)s.attempts / (double)s.measured;
    double ok_mean = s.failed < s.measured
                         ? s.ok_sum / (double)(s.measured - s.failed)
                         : NAN;
    double pfrac =
        s.ticks_after ? (double)s.panic_ticks / (double)s.ticks_after : 0;
    if (c->json) {
        printf("{\"scenario\": \"%s\", \"policy\": \"%s\", \"servers\": %u, "
               "\"load\": %.6g, \"seed\": %llu, \"requests\": %llu, "
               "\"ejection\": %s, \"slow_start\": %s, \"panic\": %s, "
               "\"down_fail\": %.6g, \"time_unit_ms\": %.6g, "
               "\"mean_response\": %.6f, \"ci95_mean_response\": %.6f, "
               "\"p50_response\": %.6f, \"p99_response\": %.6f, "
               "\"mean_success_response\": %.6f, \"failed_fraction\": %.6f, "
               "\"attempts_per_request\": %.6f, "
               "\"ejections\": %u, \"panic_fraction\": %.6f}\n",
               scen_names[kind], c->policy, c->servers, c->load,
               (unsigned long long)c->seed, (unsigned long long)r.measured,
               c->ejection ? "true" : "false", c->slow_start ? "true" : "false",
               c->panic ? "true" : "false", c->down_fail, SCEN_UNIT_NS / 1e6,
               r.mean, r.ci95, r.p50, r.p99, ok_mean, failed, att, ejections,
               pfrac);
    } else {
        printf("scenario %s, policy %s, n = %u servers, load %.4g, %llu "
               "requests after the event at 60 s, seed %llu%s%s%s\n",
               scen_names[kind], c->policy, c->servers, c->load,
               (unsigned long long)r.measured, (unsigned long long)c->seed,
               c->ejection ? ", ejection" : "",
               c->slow_start ? ", slow start" : "", c->panic ? ", panic" : "");
        printf("  time in system (units of 10 ms)  mean %.4f +- %.4f (95%%)  "
               "p50 %.4f  p99 %.4f\n",
               r.mean, r.ci95, r.p50, r.p99);
        printf("  mean of the successful %.4f\n", ok_mean);
        printf("  failed %.4f%%  attempts per request %.4f  ejections %u  "
               "in panic %.1f%% of the time\n",
               100 * failed, att, ejections, 100 * pfrac);
    }
    scen_teardown(&s);
}

/* ---- balls into bins --------------------------------------------------- */

static void run_balls(const struct config *c)
{
    if (c->bins == 0 || c->bins > LBK_SET_MAX)
        die("%s", "--bins must be 1 .. 16777216");
    uint32_t n = (uint32_t)c->bins;
    lbk_set *set;
    if (lbk_set_create(NULL, &set) < 0)
        die("%s", "cannot create the set");
    char name[32];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot;
        snprintf(name, sizeof name, "bin-%u", i);
        if (lbk_set_add(set, name, 1, NULL, &slot) < 0)
            die("%s", "cannot add a bin");
    }
    const lbk_snapshot *snap;
    lbk_p2c_options po;
    lbk_p2c_options_init(&po);
    po.choices = c->choices;
    po.with_replacement = c->replacement;
    po.seed = c->seed;
    lbk_p2c *p2c;
    if (lbk_set_snapshot(set, &snap) < 0)
        die("%s", "cannot snapshot");
    int rc = lbk_p2c_build(snap, &po, NULL, &p2c);
    if (rc < 0)
        die("cannot build the p2c sampler: %s", lbk_strerror(rc));
    uint32_t *load = calloc(n, sizeof(*load));
    uint64_t rs = c->seed * 2 + 1;
    uint32_t idx[8], k, maxl = 0;
    for (uint64_t ball = 0; ball < c->balls; ball++) {
        if (lbk_p2c_candidates(p2c, lbk_rng_local_next(&rs), idx, &k) < 0 ||
            k == 0)
            die("%s", "candidate sampling failed");
        uint32_t best = idx[0];
        for (uint32_t j = 1; j < k; j++)
            if (load[idx[j]] < load[best])
                best = idx[j];
        if (++load[best] > maxl)
            maxl = load[best];
    }
    uint64_t *hist = calloc((size_t)maxl + 1, sizeof(*hist));
    for (uint32_t i = 0; i < n; i++)
        hist[load[i]]++;
    double ln = log((double)n), lnln = log(log((double)n));
    if (c->json) {
        printf("{\"bins\": %llu, \"balls\": %llu, \"choices\": %u, "
               "\"with_replacement\": %s, \"seed\": %llu, \"max_load\": %u, "
               "\"ln_n_over_ln_ln_n\": %.4f, ",
               (unsigned long long)c->bins, (unsigned long long)c->balls,
               c->choices, c->replacement ? "true" : "false",
               (unsigned long long)c->seed, maxl, ln / lnln);
        if (c->choices > 1)
            printf("\"ln_ln_n_over_ln_d\": %.4f, ",
                   lnln / log((double)c->choices));
        printf("\"histogram\": [");
        for (uint32_t l = 0; l <= maxl; l++)
            printf("%s%llu", l ? ", " : "", (unsigned long long)hist[l]);
        printf("]}\n");
    } else {
        printf("balls into bins: n = %llu bins, m = %llu balls, d = %u (%s "
               "replacement), seed %llu\n",
               (unsigned long long)c->bins, (unsigned long long)c->balls,
               c->choices, c->replacement ? "with" : "without",
               (unsigned long long)c->seed);
        printf("max load %u   (ln n / ln ln n = %.3f", maxl, ln / lnln);
        if (c->choices > 1)
            printf(", ln ln n / ln d = %.3f", lnln / log((double)c->choices));
        printf(")\n  load  bins\n");
        for (uint32_t l = 0; l <= maxl; l++)
            printf("  %4u  %llu\n", l, (unsigned long long)hist[l]);
    }
    free(hist);
    free(load);
    lbk_p2c_free(p2c);
    lbk_snapshot_release(snap);
    lbk_set_free(set);
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f, "usage:\n"
           "  lbkit-sim queue --policy P [--choices D] --servers N --load L\n"
           "            --requests K [--service exp|det|pareto:A|bimodal:P:X]\n"
           "            [--speeds FILE] [--warmup K0] [--replacement] --seed S "
           "[--json]\n"
           "      P: random round_robin weighted_round_robin least_conn p2c\n"
           "         p2c_peak_ewma ring central (M/G/N lower bound)\n"
           "  lbkit-sim balls --bins N --balls M --choices D [--replacement]\n"
           "            --seed S [--json]\n"
           "  lbkit-sim scenario --name failing|cold|half-down|hetero|drift\n"
           "            --policy P [--ejection] [--slow-start] [--panic]\n"
           "            [--down-fail F] --servers N --load L --requests K\n"
           "            --seed S [--json]\n"
           "      P: as above, plus ucb1 thompson (not ring, central)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct config c = {.mode = argv[1],
                       .policy = "random",
                       .choices = 2,
                       .servers = 0,
                       .load = -1,
                       .svc = SVC_EXP,
                       .seed = 1,
                       .down_fail = 1.0};
    bool have_seed = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name)                                                              \
    (strcmp(a, name) == 0 &&                                                   \
     (v != NULL || (die("%s needs a value", name), 0)) && ++i)
        if (ARG("--policy"))
            c.policy = v;
        else if (ARG("--choices"))
            c.choices = (uint32_t)parse_u64(v, a);
        else if (ARG("--servers"))
            c.servers = (uint32_t)parse_u64(v, a);
        else if (ARG("--load"))
            c.load = parse_double(v, a);
        else if (ARG("--requests"))
            c.requests = parse_u64(v, a);
        else if (ARG("--warmup"))
            c.warmup = parse_u64(v, a);
        else if (ARG("--service"))
            parse_service(&c, v);
        else if (ARG("--speeds"))
            c.speeds_file = v;
        else if (ARG("--seed"))
            c.seed = parse_u64(v, a), have_seed = true;
        else if (ARG("--bins"))
            c.bins = parse_u64(v, a);
        else if (ARG("--balls"))
            c.balls = parse_u64(v, a);
        else if (ARG("--name"))
            c.name = v;
        else if (ARG("--down-fail"))
            c.down_fail = parse_double(v, a);
        else if (strcmp(a, "--ejection") == 0)
            c.ejection = true;
        else if (strcmp(a, "--slow-start") == 0)
            c.slow_start = true;
        else if (strcmp(a, "--panic") == 0)
            c.panic = true;
        else if (strcmp(a, "--json") == 0)
            c.json = true;
        else if (strcmp(a, "--replacement") == 0)
            c.replacement = true;
        else
            die("unknown argument %s (see --help)", a);
#undef ARG
    }
    if (!have_seed)
        die("%s", "--seed is required (runs are deterministic per seed)");
    if (c.choices < 1 || c.choices > 8)
        die("%s", "--choices must be 1 .. 8");
    if (strcmp(c.mode, "balls") == 0) {
        if (c.balls == 0)
            die("%s", "--balls must be > 0");
        run_balls(&c);
        return 0;
    }
    if (strcmp(c.mode, "queue") != 0 && strcmp(c.mode, "scenario") != 0)
        die("unknown mode %s (queue, balls or scenario)", c.mode);
    if (c.servers == 0 || c.servers > 1000000)
        die("%s", "--servers must be 1 .. 1000000");
    if (!(c.load > 0 && c.load < 1))
        die("%s", "--load must be in (0, 1)");
    if (c.requests < 20)
        die("%s", "--requests must be >= 20");
    if (strcmp(c.mode, "scenario") == 0) {
        if (c.servers < 2 || c.servers > LBK_SET_MAX)
            die("%s", "scenario --servers must be 2 .. 16777216");
        if (!(c.down_fail >= 0 && c.down_fail <= 1))
            die("%s", "--down-fail must be in [0, 1]");
        scenario_main(&c);
        return 0;
    }
    struct result r;
    double w0 = bench_wall();
    run_queue(&c, &r);
    double wall = bench_wall() - w0;
    double scv = service_scv(&c);
    if (c.json) {
        printf("{\"policy\": \"%s\", \"servers\": %u, \"load\": %.6g, "
               "\"choices\": %u, \"service_scv\": %.6g, \"seed\": %llu, "
               "\"requests\": %llu, \"warmup\": %llu, \"mean_response\": %.6f, "
               "\"ci95_mean_response\": %.6f, \"p50_response\": %.6f, "
               "\"p99_response\": %.6f, \"mean_in_system\": %.6f, "
               "\"little_lambda_w\": %.6f, \"requests_per_second\": %.0f}\n",
               c.policy, c.servers, c.load, c.choices, scv,
               (unsigned long long)c.seed, (unsigned long long)r.measured,
               (unsigned long long)c.warmup, r.mean, r.ci95, r.p50, r.p99,
               r.in_system, r.little_rhs,
               (double)(c.requests + c.warmup) / wall);
    } else {
        printf("policy %s, n = %u servers, load %.4g, service scv %.3g, %llu "
               "requests (+%llu warm-up), seed %llu\n",
               c.policy, c.servers, c.load, scv, (unsigned long long)r.measured,
               (unsigned long long)c.warmup, (unsigned long long)c.seed);
        printf("  time in system  mean %.4f +- %.4f (95%%)  p50 %.4f  p99 "
               "%.4f\n",
               r.mean, r.ci95, r.p50, r.p99);
        printf("  number in system (time average) %.4f   Little: lambda x W = "
               "%.4f\n",
               r.in_system, r.little_rhs);
        printf("  %.2f M simulated requests per second\n",
               (double)(c.requests + c.warmup) / wall / 1e6);
    }
    return 0;
}
