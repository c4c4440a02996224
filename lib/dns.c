/*
 * lib/dns.c - the DNS SRV discovery adapter, on c-ares.
 *
 * One "round" resolves the service completely before anything changes:
 *
 *   SRV query --> parse (c-ares) --> one A (+ AAAA) query per distinct
 *   target --> all answers in --> instances --> lbk_reconciler_apply
 *                                   \--> any failure: lbk_reconciler_fail,
 *                                        the set keeps the last good answer
 *
 * so a half-answered round can never shrink the set.  c-ares owns the
 * sockets and the retry timers; we only expose them (lbk_dns_fds /
 * lbk_dns_timeout) and drive ares_process_fd() from lbk_dns_process(), the
 * same integration c-ares offers its own users.  Every query ends in
 * exactly one callback (success, failure, or ARES_EDESTRUCTION when the
 * channel is destroyed), so a round's memory is freed once its count of
 * outstanding queries reaches zero.
 *
 * c-ares 1.18 does not report SRV TTLs (struct ares_srv_reply has none), so
 * the TTLs are read by walking the answer section with ares_expand_name()
 * to skip names; the records themselves come from ares_parse_srv_reply().
 */
#include <arpa/inet.h>
#include <ares.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "lbkit/dns.h"

#define T_SRV_ 33
#define T_A_ 1
#define T_AAAA_ 28
#define C_IN_ 1
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

typedef struct target {
    const char *name;
    uint32_t naddrs, ttl;
    int failed; /* a transient error on this target's queries (LBK_E*) */
    char addrs[LBK_DNS_MAX_ADDRS][INET6_ADDRSTRLEN];
} target;

typedef struct qctx {
    lbk_dns *d;
    size_t target; /* index, or SIZE_MAX for the SRV query */
    int type;
} qctx;

typedef struct round {
    lbk_srv_record *recs;
    size_t nrecs;
    char *names;
    target *targets;
    qctx *ctx;            /* 2 per target */
    uint32_t *rec_target; /* record i's index in targets[] */
    size_t ntargets;
    size_t pending;         /* queries sent, callback not yet run */
    size_t next_q, total_q; /* address queries: launched / to launch */
    bool launching;
    int error; /* first failure (LBK_E*), 0 if none */
    uint32_t ttl;
} round;

struct lbk_dns {
    lbk_allocator alloc;
    lbk_reconciler *rec;
    lbk_dns_options opts;
    char *srv_name;
    char *server;
    ares_channel channel;
    bool in_round, closing, force;
    round r;
    qctx srv_ctx;
    uint64_t next_refresh_ns, backoff_ns;
    lbk_dns_info st;
};

void lbk_dns_options_init(lbk_dns_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->min_refresh_ns = 1 * NS_PER_S;
    opts->max_refresh_ns = 300 * NS_PER_S;
    opts->backoff_initial_ns = 1 * NS_PER_S;
    opts->backoff_max_ns = 60 * NS_PER_S;
    opts->query_timeout_ms = 2000;
    opts->tries = 2;
    opts->ipv6 = true;
}

/* ---- parsing --------------------------------------------------------- */

static int map_ares(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
        return LBK_ENOENT;
    case ARES_EFORMERR:
    case ARES_EBADRESP:
    case ARES_EBADNAME:
        return LBK_EPARSE;
    case ARES_ETIMEOUT:
        return LBK_ETIMEDOUT;
    case ARES_ENOMEM:
        return LBK_ENOMEM;
    default:
        return LBK_EIO;
    }
}

/* An iterator over the TTLs of the SRV RRs of the answer section, in
 * order: ares_expand_name() skips the names, the fixed fields are read
 * with bounds checks. */
typedef struct ttl_walk {
    const uint8_t *msg;
    size_t len, pos;
    unsigned left; /* answer RRs not yet visited */
} ttl_walk;

static bool skip_name(ttl_walk *w)
{
    char *name;
    long enc;
    if (w->pos >= w->len ||
        ares_expand_name(w->msg + w->pos, w->msg, (int)w->len, &name, &enc) !=
            ARES_SUCCESS)
        return false;
    ares_free_string(name);
    w->pos += (size_t)enc;
    return true;
}

static bool ttl_walk_init(ttl_walk *w, const uint8_t *msg, size_t len)
{
    w->msg = msg;
    w->len = len;
    w->pos = 12;
    unsigned qd = (unsigned)msg[4] << 8 | msg[5];
    w->left = (unsigned)msg[6] << 8 | msg[7];
    for (unsigned i = 0; i < qd; i++) {
        if (!skip_name(w) || w->pos + 4 > len)
            return false;
        w->pos += 4;
    }
    return true;
}

/* The next SRV RR's TTL; false at the end or on a malformed message. */
static bool ttl_walk_next(ttl_walk *w, uint32_t *ttl)
{
    while (w->left > 0) {
        w->left--;
        if (!skip_name(w) || w->pos + 10 > w->len)
            return false;
        const uint8_t *f = w->msg + w->pos;
        unsigned type = (unsigned)f[0] << 8 | f[1];
        size_t rdlen = (size_t)f[8] << 8 | f[9];
        w->pos += 10 + rdlen;
        if (w->pos > w->len)
            return false;
        if (type == T_SRV_) {
            *ttl = (uint32_t)f[4] << 24 | (uint32_t)f[5] << 16 |
                   (uint32_t)f[6] << 8 | f[7];
            return true;
        }
    }
    return false;
}

static bool is_root(const char *t)
{
    return t[0] == '\0' || strcmp(t, ".") == 0;
}

/* Copy a parsed list into records/names with each record's TTL, dropping
 * "." targets.  Returns the count written or an error. */
static int fill_records(struct ares_srv_reply *head, const uint8_t *msg,
                        size_t len, lbk_srv_record *records, size_t max,
                        char *names, size_t names_size)
{
    size_t count = 0, bytes = 0;
    for (struct ares_srv_reply *s = head; s != NULL; s = s->next) {
        count++;
        bytes += strlen(s->host) + 1;
    }
    RETURN_ERROR_IF(count > max, LBK_ERANGE);
    RETURN_ERROR_IF(bytes > names_size, LBK_ETOOLONG);
    ttl_walk w;
    RETURN_ERROR_IF(!ttl_walk_init(&w, msg, len), LBK_EPARSE);
    size_t i = 0, at = 0;
    for (struct ares_srv_reply *s = head; s != NULL; s = s->next) {
        uint32_t ttl;
        /* c-ares found this RR, so the walk must find it too */
        RETURN_ERROR_IF(!ttl_walk_next(&w, &ttl), LBK_EPARSE);
        if (is_root(s->host))
            continue;
        size_t hl = strlen(s->host);
        memcpy(names + at, s->host, hl + 1);
        records[i].target = names + at;
        records[i].port = s->port;
        records[i].priority = s->priority;
        records[i].weight = s->weight;
        records[i].ttl = ttl;
        at += hl + 1;
        i++;
    }
    return (int)i;
}

int lbk_dns_parse_srv(const uint8_t *msg, size_t len, lbk_srv_record *records,
                      size_t max, char *names, size_t names_size)
{
    RETURN_ERROR_IF(msg == NULL || records == NULL || names == NULL,
                    LBK_EINVAL);
    RETURN_ERROR_IF(len > INT_MAX || len < 12, LBK_EPARSE);
    struct ares_srv_reply *head = NULL;
    int rc = map_ares(ares_parse_srv_reply(msg, (int)len, &head));
    if (rc < 0)
        return rc;
    if (head == NULL)
        return LBK_ENOENT;
    rc = fill_records(head, msg, len, records, max, names, names_size);
    ares_free_data(head);
    return rc;
}

/* ---- rounds ---------------------------------------------------------- */

static void round_free(lbk_dns *d)
{
    lbk_free(&d->alloc, d->r.recs);
    lbk_free(&d->alloc, d->r.names);
    lbk_free(&d->alloc, d->r.targets);
    lbk_free(&d->alloc, d->r.ctx);
    lbk_free(&d->alloc, d->r.rec_target);
    memset(&d->r, 0, sizeof(d->r));
}

/* Record the round's first failure: "<what> <subject>: <message>". */
static void round_fail(lbk_dns *d, int err, const char *what,
                       const char *subject)
{
    if (d->r.error != 0)
        return; /* keep the first cause */
    d->r.error = err;
    snprintf(d->st.last_error, sizeof d->st.last_error, "%s %s: %s", what,
             subject, lbk_strerror(err));
}

static void address_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                       int alen);

/* Launch address queries while fewer than LBK_DNS_INFLIGHT are out: a
 * burst of hundreds of UDP queries overflows small servers' socket
 * buffers.  Re-entrant calls (a callback run from inside ares_query) just
 * return; the outer loop carries on. */
#define LBK_DNS_INFLIGHT 32
static void launch(lbk_dns *d)
{
    round *r = &d->r;
    if (r->launching)
        return;
    r->launching = true;
    size_t per = d->opts.ipv6 ? 2 : 1;
    while (r->next_q < r->total_q && r->pending < LBK_DNS_INFLIGHT &&
           !d->closing) {
        size_t t = r->next_q / per;
        qctx *q = &r->ctx[2 * t + (r->next_q % per)];
        r->next_q++;
        r->pending++; /* before: the callback may run at once */
        ares_query(d->channel, r->targets[t].name, C_IN_, q->type, address_cb,
                   q);
    }
    r->launching = false;
}

static bool round_done(const lbk_dns *d)
{
    return d->r.pending == 0 && d->r.next_q >= d->r.total_q;
}

/* The SRV answer: keep the records, then ask for every distinct target. */
static void on_srv(lbk_dns *d, int status, const uint8_t *abuf, int alen)
{
    if (status != ARES_SUCCESS) {
        int err = map_ares(status);
        if (err == LBK_ENOENT)
            return; /* no such service: an empty answer */
        round_fail(d, err, "SRV query for", d->srv_name);
        return;
    }
    struct ares_srv_reply *head = NULL;
    int rc = map_ares(ares_parse_srv_reply(abuf, alen, &head));
    if (rc == LBK_ENOENT)
        return;
    if (rc < 0) {
        round_fail(d, rc, "SRV answer for", d->srv_name);
        return;
    }
    size_t count = 0, bytes = 0;
    for (struct ares_srv_reply *s = head; s != NULL; s = s->next) {
        count++;
        bytes += strlen(s->host) + 1;
    }
    d->r.recs = lbk_calloc(&d->alloc, count, sizeof(*d->r.recs));
    d->r.names = lbk_malloc(&d->alloc, bytes);
    d->r.targets = lbk_calloc(&d->alloc, count, sizeof(*d->r.targets));
    d->r.ctx = lbk_calloc(&d->alloc, 2 * count, sizeof(*d->r.ctx));
    d->r.rec_target = lbk_calloc(&d->alloc, count, sizeof(uint32_t));
    if (d->r.recs == NULL || d->r.names == NULL || d->r.targets == NULL ||
        d->r.ctx == NULL || d->r.rec_target == NULL) {
        ares_free_data(head);
        round_fail(d, LBK_ENOMEM, "SRV answer for", d->srv_name);
        return;
    }
    rc = fill_records(head, abuf, (size_t)alen, d->r.recs, count, d->r.names,
                      bytes);
    ares_free_data(head);
    if (rc < 0) {
        round_fail(d, rc, "SRV answer for", d->srv_name);
        return;
    }
    d->r.nrecs = (size_t)rc;
    d->r.ttl = UINT32_MAX;
    for (size_t i = 0; i < d->r.nrecs; i++) {
        if (d->r.recs[i].ttl < d->r.ttl)
            d->r.ttl = d->r.recs[i].ttl;
        size_t t = 0; /* DNS names compare case-insensitively */
        while (t < d->r.ntargets &&
               strcasecmp(d->r.targets[t].name, d->r.recs[i].target) != 0)
            t++;
        if (t == d->r.ntargets) {
            d->r.targets[t].name = d->r.recs[i].target;
            d->r.targets[t].ttl = UINT32_MAX;
            d->r.ntargets++;
        }
        d->r.rec_target[i] = (uint32_t)t;
    }
    for (size_t t = 0; t < d->r.ntargets; t++) {
        qctx *a = &d->r.ctx[2 * t], *aaaa = &d->r.ctx[2 * t + 1];
        *a = (qctx){d, t, T_A_};
        *aaaa = (qctx){d, t, T_AAAA_};
    }
    d->r.total_q = d->r.ntargets * (d->opts.ipv6 ? 2 : 1);
}

static void on_address(lbk_dns *d, qctx *q, int status, const uint8_t *abuf,
                       int alen)
{
    target *t = &d->r.targets[q->target];
    if (status == ARES_SUCCESS) {
        int n = LBK_DNS_MAX_ADDRS;
        struct ares_addrttl a4[LBK_DNS_MAX_ADDRS];
        struct ares_addr6ttl a6[LBK_DNS_MAX_ADDRS];
        if (q->type == T_A_)
            status = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
        else
            status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
        for (int i = 0; status == ARES_SUCCESS && i < n; i++) {
            if (t->naddrs >= LBK_DNS_MAX_ADDRS)
                break;
            char *dst = t->addrs[t->naddrs];
            const void *src = q->type == T_A_ ? (const void *)&a4[i].ipaddr
                                              : (const void *)&a6[i].ip6addr;
            int ttl = q->type == T_A_ ? a4[i].ttl : a6[i].ttl;
            if (inet_ntop(q->type == T_A_ ? AF_INET : AF_INET6, src, dst,
                          INET6_ADDRSTRLEN) == NULL)
                continue;
            /* the same address twice in one RRset adds nothing */
            bool dup = false;
            for (uint32_t k = 0; k < t->naddrs && !dup; k++)
                dup = strcmp(t->addrs[k], dst) == 0;
            if (dup)
                continue;
            t->naddrs++;
            if (ttl >= 0 && (uint32_t)ttl < t->ttl)
                t->ttl = (uint32_t)ttl;
        }
    }
    int err = map_ares(status);
    if (err < 0 && err != LBK_ENOENT && t->failed == 0)
        t->failed = err; /* a transient error, not "no such address" */
}

static void address_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                       int alen)
{
    (void)timeouts;
    qctx *q = arg;
    lbk_dns *d = q->d;
    if (!d->closing && status != ARES_EDESTRUCTION &&
        status != ARES_ECANCELLED) {
        if (q->target == SIZE_MAX)
            on_srv(d, status, abuf, alen);
        else
            on_address(d, q, status, abuf, alen);
    }
    d->r.pending--;
    if (!d->closing)
        launch(d);
}

static uint64_t clamp_refresh(const lbk_dns *d, uint32_t ttl)
{
    uint64_t ns = (uint64_t)ttl * NS_PER_S;
    if (ns < d->opts.min_refresh_ns)
        ns = d->opts.min_refresh_ns;
    if (ns > d->opts.max_refresh_ns)
        ns = d->opts.max_refresh_ns;
    return ns;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* SRV records -> instances (dns.h states the mapping).  Names live in
 * namebuf, LBK_NAME_MAX + 1 bytes per instance; prios is scratch for
 * nrecs values. */
static int build_instances(lbk_dns *d, lbk_instance *out, char *namebuf,
                           uint16_t *prios, size_t *n_out)
{
    round *r = &d->r;
    /* distinct priorities, sorted: a record's tier is its rank here */
    size_t np = 0;
    for (size_t i = 0; i < r->nrecs; i++)
        prios[np++] = r->recs[i].priority;
    qsort(prios, np, sizeof(*prios), cmp_u16);
    size_t nd = 0;
    for (size_t i = 0; i < np; i++)
        if (nd == 0 || prios[nd - 1] != prios[i])
            prios[nd++] = prios[i];
    /* per tier: does any record have weight > 0? (bit set in a byte map) */
    uint8_t weighted[LBK_PRIORITY_MAX + 1] = {0};
    for (size_t i = 0; i < r->nrecs; i++) {
        const uint16_t *at =
            bsearch(&r->recs[i].priority, prios, nd, sizeof(*prios), cmp_u16);
        size_t k = (size_t)(at - prios);
        if (k > LBK_PRIORITY_MAX)
            k = LBK_PRIORITY_MAX;
        if (r->recs[i].weight > 0)
            weighted[k] = 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nrecs; i++) {
        const lbk_srv_record *s = &r->recs[i];
        const target *tg = &r->targets[r->rec_target[i]];
        const uint16_t *at =
            bsearch(&s->priority, prios, nd, sizeof(*prios), cmp_u16);
        size_t k = (size_t)(at - prios);
        if (k > LBK_PRIORITY_MAX)
            k = LBK_PRIORITY_MAX;
        /* weight 0 -> 1 when the whole tier is weight 0 (RFC 2782) */
        uint32_t w = s->weight != 0 ? s->weight : (weighted[k] ? 0 : 1);
        for (uint32_t a = 0; a < tg->naddrs; a++) {
            char *name = namebuf + n * (LBK_NAME_MAX + 1);
            int len =
                tg->naddrs == 1
                    ? snprintf(name, LBK_NAME_MAX + 1, "%s:%u", s->target,
                               (unsigned)s->port)
                    : snprintf(name, LBK_NAME_MAX + 1, "%s:%u/%s", s->target,
                               (unsigned)s->port, tg->addrs[a]);
            if (len < 0 || len > (int)LBK_NAME_MAX) {
                round_fail(d, LBK_ETOOLONG, "instance name for", s->target);
                return LBK_ETOOLONG;
            }
            out[n] =
                (lbk_instance){name, tg->addrs[a], s->port, w, (uint32_t)k};
            n++;
        }
    }
    *n_out = n;
    return 0;
}

/* All answers are in: apply them or report the failure. */
static void finish_round(lbk_dns *d, uint64_t now)
{
    round *r = &d->r;
    int rc = r->error;
    size_t ninst = 0;
    for (size_t t = 0; t < r->ntargets && rc == 0; t++) {
        target *tg = &r->targets[t];
        if (tg->naddrs > 0)
            continue;
        if (tg->failed != 0) {
            rc = tg->failed;
            round_fail(d, rc, "address query for", tg->name);
        } else if (!d->opts.skip_unresolved) {
            rc = LBK_ENOENT;
            round_fail(d, rc, "no address for SRV target", tg->name);
        }
    }
    uint32_t ttl = r->ttl;
    for (size_t t = 0; t < r->ntargets; t++)
        if (r->targets[t].naddrs > 0 && r->targets[t].ttl < ttl)
            ttl = r->targets[t].ttl;
    bool from_apply = false;
    if (rc == 0) {
        size_t cap = 0;
        for (size_t i = 0; i < r->nrecs; i++)
            cap += r->targets[r->rec_target[i]].naddrs;
        lbk_instance *inst = lbk_calloc(&d->alloc, cap + 1, sizeof(*inst));
        char *names = lbk_malloc(&d->alloc, (cap + 1) * (LBK_NAME_MAX + 1));
        uint16_t *prios = lbk_calloc(&d->alloc, r->nrecs + 1, sizeof(*prios));
        if (inst == NULL || names == NULL || prios == NULL) {
            rc = LBK_ENOMEM;
            round_fail(d, rc, "instances for", d->srv_name);
        } else {
            rc = build_instances(d, inst, names, prios, &ninst);
        }
        if (rc == 0) {
            rc = lbk_reconciler_apply(d->rec, inst, ninst, now, NULL);
            from_apply = true;
            if (rc < 0)
                round_fail(d, rc, "applying the answer for", d->srv_name);
        }
        lbk_free(&d->alloc, inst);
        lbk_free(&d->alloc, names);
        lbk_free(&d->alloc, prios);
    }
    d->st.rounds++;
    d->st.last_result = rc;
    if (rc == 0) {
        d->st.records = (uint32_t)r->nrecs;
        d->st.instances = (uint32_t)ninst;
        d->st.ttl = r->nrecs > 0 ? ttl : 0;
        d->st.last_error[0] = '\0';
        d->backoff_ns = 0;
        d->next_refresh_ns = now + clamp_refresh(d, r->nrecs > 0 ? ttl : 0);
    } else {
        d->st.failures++;
        if (!from_apply)
            lbk_reconciler_fail(d->rec, rc, now, NULL);
        d->backoff_ns =
            d->backoff_ns == 0 ? d->opts.backoff_initial_ns : 2 * d->backoff_ns;
        if (d->backoff_ns > d->opts.backoff_max_ns)
            d->backoff_ns = d->opts.backoff_max_ns;
        d->next_refresh_ns = now + d->backoff_ns;
    }
    round_free(d);
    d->in_round = false;
}

static void start_round(lbk_dns *d)
{
    memset(&d->r, 0, sizeof(d->r));
    d->in_round = true;
    d->force = false;
    d->srv_ctx = (qctx){d, SIZE_MAX, T_SRV_};
    d->r.pending++;
    ares_query(d->channel, d->srv_name, C_IN_, T_SRV_, address_cb, &d->srv_ctx);
}

/* ---- life and the event loop ----------------------------------------- */

int lbk_dns_create(const char *srv_name, lbk_reconciler *rec,
                   const lbk_dns_options *opts, const lbk_allocator *alloc,
                   lbk_dns **out)
{
    RETURN_ERROR_IF(srv_name == NULL || rec == NULL || out == NULL ||
                        !lbk_alloc_valid(alloc) || srv_name[0] == '\0',
                    LBK_EINVAL);
    size_t nl = strnlen(srv_name, 254);
    RETURN_ERROR_IF(nl > 253, LBK_ETOOLONG);
    lbk_dns_options o;
    lbk_dns_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(o.min_refresh_ns == 0 ||
                        o.min_refresh_ns > o.max_refresh_ns ||
                        o.backoff_initial_ns == 0 ||
                        o.backoff_initial_ns > o.backoff_max_ns ||
                        o.tries == 0 || o.query_timeout_ms == 0 ||
                        o.query_timeout_ms > INT_MAX || o.tries > INT_MAX,
                    LBK_EINVAL);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_dns *d = lbk_malloc(&a, sizeof(*d));
    RETURN_ERROR_IF(d == NULL, LBK_ENOMEM);
    memset(d, 0, sizeof(*d));
    d->alloc = a;
    d->rec = rec;
    d->opts = o;
    d->srv_name = lbk_malloc(&a, nl + 1);
    size_t sl = o.server ? strlen(o.server) : 0;
    d->server = o.server ? lbk_malloc(&a, sl + 1) : NULL;
    if (d->srv_name == NULL || (o.server != NULL && d->server == NULL)) {
        lbk_free(&a, d->srv_name);
        lbk_free(&a, d->server);
        lbk_free(&a, d);
        return LBK_ENOMEM;
    }
    memcpy(d->srv_name, srv_name, nl + 1);
    if (d->server != NULL)
        memcpy(d->server, o.server, sl + 1);
    d->opts.server = d->server;
    int rc = 0;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        rc = LBK_EIO;
    struct ares_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.timeout = (int)o.query_timeout_ms;
    ao.tries = (int)o.tries;
    int st = rc == 0 ? ares_init_options(&d->channel, &ao,
                                         ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)
                     : ARES_SUCCESS;
    if (rc == 0 && st != ARES_SUCCESS) {
        rc = st == ARES_ENOMEM ? LBK_ENOMEM : LBK_EIO;
        ares_library_cleanup();
    } else if (rc == 0 && d->server != NULL) {
        st = ares_set_servers_ports_csv(d->channel, d->server);
        if (st != ARES_SUCCESS) {
            rc = st == ARES_ENOMEM ? LBK_ENOMEM : LBK_EPARSE;
            ares_destroy(d->channel);
            ares_library_cleanup();
        }
    }
    if (rc < 0) {
        lbk_free(&a, d->srv_name);
        lbk_free(&a, d->server);
        lbk_free(&a, d);
        return rc;
    }
    *out = d;
    return 0;
}

void lbk_dns_free(lbk_dns *d)
{
    if (d == NULL)
        return;
    d->closing = true;
    ares_destroy(d->channel); /* every pending callback runs, ignored */
    ares_library_cleanup();
    round_free(d);
    lbk_allocator a = d->alloc;
    lbk_free(&a, d->srv_name);
    lbk_free(&a, d->server);
    lbk_free(&a, d);
}

int lbk_dns_fds(lbk_dns *d, lbk_dns_fd *out, size_t max)
{
    RETURN_ERROR_IF(d == NULL || (out == NULL && max > 0), LBK_EINVAL);
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(d->channel, socks, ARES_GETSOCK_MAXNUM);
    size_t n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM && n < max; i++) {
        /* ares.h's ARES_GETSOCK_WRITABLE shifts a signed 1 into bit 31 */
        bool r = ((unsigned)bits >> i) & 1u;
        bool w = ((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u;
        if (!r && !w)
            continue;
        out[n++] = (lbk_dns_fd){(int)socks[i], r, w};
    }
    return (int)n;
}

int lbk_dns_timeout(lbk_dns *d, uint64_t now_ns, uint64_t *wait_ns)
{
    RETURN_ERROR_IF(d == NULL || wait_ns == NULL, LBK_EINVAL);
    if (d->in_round) {
        if (round_done(d)) {
            *wait_ns = 0;
            return 0;
        }
        struct timeval max = {1, 0}, tv;
        struct timeval *t = ares_timeout(d->channel, &max, &tv);
        *wait_ns =
            (uint64_t)t->tv_sec * NS_PER_S + (uint64_t)t->tv_usec * 1000u;
        return 0;
    }
    *wait_ns = (d->force || now_ns >= d->next_refresh_ns)
                   ? 0
                   : d->next_refresh_ns - now_ns;
    return 0;
}

int lbk_dns_process(lbk_dns *d, int read_fd, int write_fd, uint64_t now_ns)
{
    RETURN_ERROR_IF(d == NULL, LBK_EINVAL);
    int finished = 0;
    if (d->in_round)
        ares_process_fd(
            d->channel, read_fd < 0 ? ARES_SOCKET_BAD : (ares_socket_t)read_fd,
            write_fd < 0 ? ARES_SOCKET_BAD : (ares_socket_t)write_fd);
    if (d->in_round && round_done(d)) {
        finish_round(d, now_ns);
        finished = 1;
    }
    if (!d->in_round && (d->force || now_ns >= d->next_refresh_ns)) {
        start_round(d);
        if (round_done(d)) { /* failed at once (e.g. bad name) */
            finish_round(d, now_ns);
            finished = 1;
        }
    }
    return finished;
}

int lbk_dns_refresh_now(lbk_dns *d)
{
    RETURN_ERROR_IF(d == NULL, LBK_EINVAL);
    d->force = true;
    return 0;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

int lbk_dns_resolve(lbk_dns *d, uint64_t timeout_ns)
{
    RETURN_ERROR_IF(d == NULL, LBK_EINVAL);
    uint64_t start = mono_ns(), deadline = start + timeout_ns;
    uint64_t rounds = d->st.rounds;
    if (!d->in_round)
        d->force = true;
    for (;;) {
        uint64_t now = mono_ns();
        lbk_dns_process(d, LBK_DNS_NO_FD, LBK_DNS_NO_FD, now);
        if (d->st.rounds != rounds)
            return d->st.last_result;
        if (now >= deadline)
            return LBK_ETIMEDOUT;
        lbk_dns_fd fds[LBK_DNS_MAX_FDS];
        struct pollfd pfd[LBK_DNS_MAX_FDS];
        int n = lbk_dns_fds(d, fds, LBK_DNS_MAX_FDS);
        for (int i = 0; i < n; i++)
            pfd[i] = (struct pollfd){fds[i].fd,
                                     (short)((fds[i].read ? POLLIN : 0) |
                                             (fds[i].write ? POLLOUT : 0)),
                                     0};
        uint64_t wait;
        lbk_dns_timeout(d, now, &wait);
        if (wait > deadline - now)
            wait = deadline - now;
        int ms = (int)((wait + NS_PER_MS - 1) / NS_PER_MS);
        int ready = poll(pfd, (nfds_t)n, ms);
        for (int i = 0; i < n && ready > 0; i++) {
            if (pfd[i].revents == 0)
                continue;
            int rfd = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                          ? pfd[i].fd
                          : LBK_DNS_NO_FD;
            int wfd = (pfd[i].revents & POLLOUT) ? pfd[i].fd : LBK_DNS_NO_FD;
            lbk_dns_process(d, rfd, wfd, mono_ns());
            if (d->st.rounds != rounds)
                return d->st.last_result;
        }
    }
}

int lbk_dns_status(const lbk_dns *d, lbk_dns_info *out)
{
    RETURN_ERROR_IF(d == NULL || out == NULL, LBK_EINVAL);
    *out = d->st;
    out->next_refresh_ns = d->next_refresh_ns;
    out->in_round = d->in_round;
    return 0;
}
