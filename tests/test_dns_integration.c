/*
 * tests/test_dns_integration.c - the DNS SRV adapter against crafted bytes
 * and against a real dnsmasq on 127.0.0.1 (started and stopped here, on a
 * free port, with a generated config; skipped when dnsmasq is absent).
 *
 * Proves: the adapter builds the right set (names, weights, tiers, IPv6);
 * after the records change and the server restarts, the set follows within
 * the TTL; with the server stopped the last good set stays and errors are
 * reported; bad answers (truncated, malformed, unresolvable targets,
 * duplicates, over-long names, absurd TTLs, hundreds of records needing
 * TCP) give a clear error and leave the set as it was.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "lbkit/dns.h"
#include "lbkit/reconcile.h"

#define MS UINT64_C(1000000)
#define SRV_NAME "_http._tcp.example.test"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- crafted DNS messages --------------------------------------------- */

struct msg {
    uint8_t b[70000];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)v;
}
static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 255);
}
static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}
static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)len);
        memcpy(m->b + m->n, name, len);
        m->n += len;
        name += len + (dot ? 1 : 0);
    }
    put8(m, 0);
}

/* A response with count SRV answers: target "t<i>.example.test" (or
 * target when not NULL), priority i % 3, weight i, port 1000 + i. */
static void build_srv(struct msg *m, unsigned count, uint32_t ttl,
                      const char *target)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, 0x8180);
    put16(m, 1);
    put16(m, count);
    put16(m, 0);
    put16(m, 0);
    put_name(m, SRV_NAME);
    put16(m, 33);
    put16(m, 1);
    for (unsigned i = 0; i < count; i++) {
        char t[64];
        snprintf(t, sizeof t, "t%u.example.test", i);
        put16(m, 0xc00c);
        put16(m, 33);
        put16(m, 1);
        put32(m, ttl + i);
        size_t len_at = m->n;
        put16(m, 0);
        size_t start = m->n;
        put16(m, i % 3);
        put16(m, i);
        put16(m, 1000 + i);
        put_name(m, target ? target : t);
        size_t rdlen = m->n - start;
        m->b[len_at] = (uint8_t)(rdlen >> 8);
        m->b[len_at + 1] = (uint8_t)rdlen;
    }
}

static void test_parse_crafted(void **state)
{
    (void)state;
    static struct msg m;
    static lbk_srv_record rec[4000];
    static char names[4000 * 64];
    build_srv(&m, 3, 60, NULL);
    assert_int_equal(lbk_dns_parse_srv(m.b, m.n, rec, 10, names, sizeof names),
                     3);
    assert_string_equal(rec[1].target, "t1.example.test");
    assert_int_equal(rec[1].port, 1001);
    assert_int_equal(rec[2].priority, 2);
    assert_int_equal(rec[2].weight, 2);
    assert_int_equal(rec[0].ttl, 60);
    assert_int_equal(rec[2].ttl, 62);
    /* every truncation is an error, never a crash or a partial answer */
    for (size_t len = 0; len < m.n; len++) {
        int rc = lbk_dns_parse_srv(m.b, len, rec, 10, names, sizeof names);
        if (rc != LBK_EPARSE && rc != LBK_ENOENT)
            fail_msg("truncated at %zu: %s", len, lbk_errname(rc));
    }
    /* a compression pointer to itself, an answer count past the data */
    build_srv(&m, 1, 60, NULL);
    struct msg bad = m;
    bad.b[12 + 29] = 0xc0; /* first answer's name -> points at itself */
    bad.b[12 + 29 + 1] = (uint8_t)(12 + 29);
    assert_true(lbk_dns_parse_srv(bad.b, bad.n, rec, 10, names, sizeof names) <
                0);
    bad = m;
    bad.b[7] = 5; /* ancount 5, one present */
    assert_lbk(lbk_dns_parse_srv(bad.b, bad.n, rec, 10, names, sizeof names),
               LBK_EPARSE);
    bad = m;
    bad.b[12 + 29 + 10] = 0xff; /* rdlength past the end */
    assert_true(lbk_dns_parse_srv(bad.b, bad.n, rec, 10, names, sizeof names) <
                0);
    /* random corruption of every byte: errors or a sane answer */
    uint64_t s = 1;
    build_srv(&m, 4, 60, NULL);
    for (int it = 0; it < 5000; it++) {
        bad = m;
        bad.b[test_rand(&s) % bad.n] = (uint8_t)test_rand(&s);
        int rc = lbk_dns_parse_srv(bad.b, bad.n, rec, 10, names, sizeof names);
        assert_true(rc <= 4);
        for (int i = 0; i < rc; i++)
            assert_non_null(rec[i].target);
    }
    /* "." only: service decidedly not available -> 0 records */
    build_srv(&m, 1, 60, ".");
    assert_int_equal(lbk_dns_parse_srv(m.b, m.n, rec, 10, names, sizeof names),
                     0);
    /* no answer at all */
    build_srv(&m, 0, 60, NULL);
    assert_lbk(lbk_dns_parse_srv(m.b, m.n, rec, 10, names, sizeof names),
               LBK_ENOENT);
    /* thousands of records; limits on records and on the name buffer */
    build_srv(&m, 1700, 5, NULL); /* ~64 KiB, near the DNS limit */
    assert_int_equal(
        lbk_dns_parse_srv(m.b, m.n, rec, 4000, names, sizeof names), 1700);
    assert_string_equal(rec[1699].target, "t1699.example.test");
    assert_int_equal(rec[1699].ttl, 1704);
    assert_lbk(lbk_dns_parse_srv(m.b, m.n, rec, 1699, names, sizeof names),
               LBK_ERANGE);
    assert_lbk(lbk_dns_parse_srv(m.b, m.n, rec, 4000, names, 100),
               LBK_ETOOLONG);
    /* absurd TTL survives parsing (the adapter clamps it) */
    build_srv(&m, 1, 0xffffffffu, NULL);
    assert_int_equal(lbk_dns_parse_srv(m.b, m.n, rec, 1, names, sizeof names),
                     1);
    assert_int_equal(rec[0].ttl, 0xffffffffu);
    assert_lbk(lbk_dns_parse_srv(NULL, 10, rec, 1, names, 1), LBK_EINVAL);
    assert_lbk(lbk_dns_parse_srv(m.b, m.n, NULL, 1, names, 1), LBK_EINVAL);
    assert_lbk(lbk_dns_parse_srv(m.b, m.n, rec, 1, NULL, 1), LBK_EINVAL);
    assert_lbk(lbk_dns_parse_srv(m.b, 5, rec, 1, names, 1), LBK_EPARSE);
}

static void test_create_errors(void **state)
{
    (void)state;
    lbk_set *set;
    lbk_reconciler *rec;
    assert_ok(lbk_set_create(NULL, &set));
    assert_ok(lbk_reconciler_create(set, NULL, NULL, &rec));
    lbk_dns *d = NULL;
    assert_lbk(lbk_dns_create(NULL, rec, NULL, NULL, &d), LBK_EINVAL);
    assert_lbk(lbk_dns_create("", rec, NULL, NULL, &d), LBK_EINVAL);
    assert_lbk(lbk_dns_create(SRV_NAME, NULL, NULL, NULL, &d), LBK_EINVAL);
    assert_lbk(lbk_dns_create(SRV_NAME, rec, NULL, NULL, NULL), LBK_EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_lbk(lbk_dns_create(longname, rec, NULL, NULL, &d), LBK_ETOOLONG);
    lbk_dns_options o;
    lbk_dns_options_init(&o);
    o.min_refresh_ns = 10;
    o.max_refresh_ns = 5;
    assert_lbk(lbk_dns_create(SRV_NAME, rec, &o, NULL, &d), LBK_EINVAL);
    lbk_dns_options_init(&o);
    o.tries = 0;
    assert_lbk(lbk_dns_create(SRV_NAME, rec, &o, NULL, &d), LBK_EINVAL);
    lbk_dns_options_init(&o);
    o.server = "not an address";
    assert_lbk(lbk_dns_create(SRV_NAME, rec, &o, NULL, &d), LBK_EPARSE);
    assert_null(d);
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_dns_options_init(&o);
    o.server = "127.0.0.1:9";
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_dns_create(SRV_NAME, rec, &o, &fa.hook, &d);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(fa.live, 0);
    }
    fail_alloc_reset(&fa, -1);
    uint64_t w;
    assert_ok(lbk_dns_timeout(d, 0, &w));
    assert_int_equal(w, 0); /* the first round is due at once */
    assert_int_equal(lbk_dns_fds(d, NULL, 0), 0);
    assert_lbk(lbk_dns_fds(NULL, NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_dns_timeout(d, 0, NULL), LBK_EINVAL);
    assert_lbk(lbk_dns_process(NULL, -1, -1, 0), LBK_EINVAL);
    assert_lbk(lbk_dns_refresh_now(NULL), LBK_EINVAL);
    assert_lbk(lbk_dns_resolve(NULL, 1), LBK_EINVAL);
    lbk_dns_info info;
    assert_lbk(lbk_dns_status(NULL, &info), LBK_EINVAL);
    assert_lbk(lbk_dns_status(d, NULL), LBK_EINVAL);
    lbk_dns_free(d);
    assert_int_equal(fa.live, 0);
    lbk_dns_free(NULL);
    lbk_reconciler_free(rec);
    lbk_set_free(set);
}

/* ---- dnsmasq ---------------------------------------------------------- */

struct server {
    char dir[64], conf[128], log[128];
    int port;
    pid_t pid;
};

/* The server of the running test, kept outside the test's stack so the
 * teardown can stop it even when an assertion jumped out of the test. */
static pid_t g_pid;
static char g_dir[64];

static const char *dnsmasq_path(void)
{
    static const char *cands[] = {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq",
                                  "/sbin/dnsmasq"};
    for (size_t i = 0; i < 3; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

static int free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t al = sizeof a;
        if (bind(u, (struct sockaddr *)&a, sizeof a) < 0 ||
            getsockname(u, (struct sockaddr *)&a, &al) < 0) {
            close(u);
            continue;
        }
        int t = socket(AF_INET, SOCK_STREAM, 0); /* TCP must be free too */
        int ok = bind(t, (struct sockaddr *)&a, sizeof a) == 0;
        close(t);
        close(u);
        if (ok)
            return ntohs(a.sin_port);
    }
    return -1;
}

static void server_write(struct server *s, const char *records)
{
    FILE *f = fopen(s->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\n"
            "no-resolv\nno-hosts\nno-negcache\nlocal=/example.test/\n"
            "user=root\ngroup=root\npid-file=\n%s",
            s->port, records);
    fclose(f);
}

static void server_start(struct server *s)
{
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char conf[160];
        snprintf(conf, sizeof conf, "--conf-file=%s", s->conf);
        execl(dnsmasq_path(), "dnsmasq", "--keep-in-foreground", conf,
              "--log-facility=-", (char *)NULL);
        _exit(127);
    }
    g_pid = s->pid;
}

static void server_stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        g_pid = 0;
    }
}

static bool server_init(struct server *s, const char *records)
{
    if (dnsmasq_path() == NULL)
        return false;
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof s->dir, "/tmp/lbk-dns-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(g_dir, sizeof g_dir, "%s", s->dir);
    snprintf(s->conf, sizeof s->conf, "%s/dnsmasq.conf", s->dir);
    snprintf(s->log, sizeof s->log, "%s/dnsmasq.log", s->dir);
    s->port = free_port();
    assert_true(s->port > 0);
    server_write(s, records);
    server_start(s);
    return true;
}

static void server_cleanup(struct server *s)
{
    server_stop(s);
    unlink(s->conf);
    unlink(s->log);
    rmdir(s->dir);
    g_dir[0] = '\0';
}

/* After every test: stop a server a failed assertion left running. */
static int teardown(void **state)
{
    (void)state;
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        waitpid(g_pid, NULL, 0);
        g_pid = 0;
    }
    if (g_dir[0] != '\0') {
        char path[160];
        snprintf(path, sizeof path, "%s/dnsmasq.conf", g_dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/dnsmasq.log", g_dir);
        unlink(path);
        rmdir(g_dir);
        g_dir[0] = '\0';
    }
    return 0;
}

struct env {
    struct server srv;
    lbk_set *set;
    lbk_reconciler *rec;
    lbk_dns *dns;
};

static void env_init(struct env *e, uint64_t min_ms, uint64_t max_ms,
                     bool skip_unresolved)
{
    assert_ok(lbk_set_create(NULL, &e->set));
    assert_ok(lbk_reconciler_create(e->set, NULL, NULL, &e->rec));
    lbk_dns_options o;
    lbk_dns_options_init(&o);
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%d", e->srv.port);
    o.server = server;
    o.min_refresh_ns = min_ms * MS;
    o.max_refresh_ns = max_ms * MS;
    o.backoff_initial_ns = 100 * MS;
    o.backoff_max_ns = 400 * MS;
    o.query_timeout_ms = 300;
    o.tries = 1;
    o.skip_unresolved = skip_unresolved;
    assert_ok(lbk_dns_create(SRV_NAME, e->rec, &o, NULL, &e->dns));
}

static void env_free(struct env *e)
{
    lbk_dns_free(e->dns);
    lbk_reconciler_free(e->rec);
    lbk_set_free(e->set);
    server_cleanup(&e->srv);
}

/* Resolve until the server answers (it may still be starting). */
static int resolve_ready(struct env *e)
{
    int rc = LBK_ETIMEDOUT;
    for (int i = 0; i < 50; i++) {
        rc = lbk_dns_resolve(e->dns, 2000 * MS);
        if (rc != LBK_EIO && rc != LBK_ETIMEDOUT)
            return rc;
        usleep(100000);
    }
    return rc;
}

/* The published set as "name w p;" sorted by name. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digest(lbk_set *set, char *buf, size_t size)
{
    const lbk_snapshot *s;
    assert_ok(lbk_set_acquire(set, &s));
    uint32_t n = lbk_snapshot_count(s);
    char **lines = calloc(n + 1, sizeof(*lines));
    for (uint32_t i = 0; i < n; i++) {
        lbk_backend *b = lbk_snapshot_backend(s, i);
        const lbk_endpoint *ep = lbk_backend_user(b);
        lines[i] = malloc(400);
        snprintf(lines[i], 400, "%s=%s:%u w%u p%u;", lbk_backend_name(b),
                 ep->address, ep->port, lbk_snapshot_weight(s, i),
                 lbk_snapshot_priority(s, i));
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        at += (size_t)snprintf(buf + at, size > at ? size - at : 0, "%s",
                               lines[i]);
        free(lines[i]);
    }
    free(lines);
    lbk_snapshot_release(s);
}

/* Drive the event-loop API (fds / timeout / process) until the published
 * set equals want or max_ms passes.  Returns whether it matched. */
static bool drive_until(struct env *e, const char *want, uint64_t max_ms)
{
    uint64_t end = now_ns() + max_ms * MS;
    char got[8192];
    for (;;) {
        digest(e->set, got, sizeof got);
        if (strcmp(got, want) == 0)
            return true;
        uint64_t now = now_ns();
        if (now >= end) {
            fprintf(stderr, "got  %s\nwant %s\n", got, want);
            return false;
        }
        lbk_dns_fd fds[LBK_DNS_MAX_FDS];
        struct pollfd p[LBK_DNS_MAX_FDS];
        int n = lbk_dns_fds(e->dns, fds, LBK_DNS_MAX_FDS);
        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){fds[i].fd,
                                   (short)((fds[i].read ? POLLIN : 0) |
                                           (fds[i].write ? POLLOUT : 0)),
                                   0};
        uint64_t wait;
        assert_ok(lbk_dns_timeout(e->dns, now, &wait));
        if (wait > 50 * MS)
            wait = 50 * MS;
        int r = poll(p, (nfds_t)n, (int)(wait / MS));
        bool any = false;
        for (int i = 0; i < n && r > 0; i++) {
            if (p[i].revents == 0)
                continue;
            any = true;
            lbk_dns_process(
                e->dns,
                p[i].revents & (POLLIN | POLLERR | POLLHUP) ? p[i].fd
                                                            : LBK_DNS_NO_FD,
                p[i].revents & POLLOUT ? p[i].fd : LBK_DNS_NO_FD, now_ns());
        }
        if (!any)
            lbk_dns_process(e->dns, LBK_DNS_NO_FD, LBK_DNS_NO_FD, now_ns());
    }
}

#define RECORDS_A                                                              \
    "local-ttl=1\n"                                                            \
    "srv-host=" SRV_NAME ",web1.example.test,8080,0,10\n"                      \
    "srv-host=" SRV_NAME ",web2.example.test,8080,0,20\n"                      \
    "srv-host=" SRV_NAME ",web3.example.test,9090,5,0\n"                       \
    "host-record=web1.example.test,127.0.0.11\n"                               \
    "host-record=web2.example.test,127.0.0.12\n"                               \
    "host-record=web3.example.test,127.0.0.13,::13\n"

#define SET_A                                                                  \
    "web1.example.test:8080=127.0.0.11:8080 w10 p0;"                           \
    "web2.example.test:8080=127.0.0.12:8080 w20 p0;"                           \
    "web3.example.test:9090/127.0.0.13=127.0.0.13:9090 w1 p1;"                 \
    "web3.example.test:9090/::13=::13:9090 w1 p1;"

#define RECORDS_B                                                              \
    "local-ttl=1\n"                                                            \
    "srv-host=" SRV_NAME ",web1.example.test,8080,0,30\n"                      \
    "srv-host=" SRV_NAME ",web3.example.test,9090,5,0\n"                       \
    "srv-host=" SRV_NAME ",web4.example.test,8080,1,5\n"                       \
    "host-record=web1.example.test,127.0.0.11\n"                               \
    "host-record=web3.example.test,127.0.0.13,::13\n"                          \
    "host-record=web4.example.test,127.0.0.14\n"

#define SET_B                                                                  \
    "web1.example.test:8080=127.0.0.11:8080 w30 p0;"                           \
    "web3.example.test:9090/127.0.0.13=127.0.0.13:9090 w1 p2;"                 \
    "web3.example.test:9090/::13=::13:9090 w1 p2;"                             \
    "web4.example.test:8080=127.0.0.14:8080 w5 p1;"

static void test_live_follow_and_outage(void **state)
{
    (void)state;
    struct env e = {0};
    if (!server_init(&e.srv, RECORDS_A))
        skip();
    env_init(&e, 200, 1500, false);
    assert_ok(resolve_ready(&e));
    char got[4096];
    digest(e.set, got, sizeof got);
    assert_string_equal(got, SET_A);
    lbk_dns_info info;
    assert_ok(lbk_dns_status(e.dns, &info));
    assert_int_equal(info.records, 3);
    assert_int_equal(info.instances, 4);
    assert_int_equal(info.ttl, 1);
    assert_int_equal(info.last_result, 0);

    /* records change, the server restarts: the set follows within the TTL
     * (1 s; the bound below only keeps the test finite) */
    server_stop(&e.srv);
    server_write(&e.srv, RECORDS_B);
    server_start(&e.srv);
    assert_true(drive_until(&e, SET_B, 10000));

    /* server gone: rounds fail, the last good set stays, errors reported */
    server_stop(&e.srv);
    assert_ok(lbk_dns_refresh_now(e.dns));
    int rc = lbk_dns_resolve(e.dns, 5000 * MS);
    assert_true(rc == LBK_EIO || rc == LBK_ETIMEDOUT);
    assert_true(drive_until(&e, SET_B, 700) || true); /* keeps retrying */
    digest(e.set, got, sizeof got);
    assert_string_equal(got, SET_B);
    assert_ok(lbk_dns_status(e.dns, &info));
    assert_true(info.failures >= 1);
    assert_true(info.last_result < 0);
    assert_true(strlen(info.last_error) > 0);
    lbk_reconcile_status rs;
    assert_ok(lbk_reconciler_status(e.rec, &rs));
    assert_true(rs.failures >= 1);
    env_free(&e);
}

/* Start from a good set, then serve a bad variant: the round fails with
 * want_rc and the set is unchanged. */
static void bad_variant(const char *records, int want_rc, bool skip_unresolved,
                        const char *want_set)
{
    struct env e = {0};
    if (!server_init(&e.srv, RECORDS_A))
        skip();
    env_init(&e, 100, 1000, skip_unresolved);
    assert_ok(resolve_ready(&e));
    server_stop(&e.srv);
    server_write(&e.srv, records);
    server_start(&e.srv);
    usleep(200000);
    int rc = resolve_ready(&e);
    if (rc != want_rc) {
        lbk_dns_info info;
        lbk_dns_status(e.dns, &info);
        fail_msg("got %s (%s), want %s", lbk_errname(rc), info.last_error,
                 lbk_errname(want_rc));
    }
    char got[4096];
    digest(e.set, got, sizeof got);
    assert_string_equal(got, want_set ? want_set : SET_A);
    env_free(&e);
}

static void test_live_unresolvable_target(void **state)
{
    (void)state;
    const char *r = "local-ttl=1\n"
                    "srv-host=" SRV_NAME ",web1.example.test,8080,0,10\n"
                    "srv-host=" SRV_NAME ",ghost.example.test,8080,0,10\n"
                    "host-record=web1.example.test,127.0.0.11\n";
    bad_variant(r, LBK_ENOENT, false, NULL);
    /* with skip_unresolved the resolvable part is applied */
    bad_variant(r, 0, true, "web1.example.test:8080=127.0.0.11:8080 w10 p0;");
}

static void test_live_duplicates(void **state)
{
    (void)state;
    const char *r = "local-ttl=1\n"
                    "srv-host=" SRV_NAME ",web1.example.test,8080,0,10\n"
                    "srv-host=" SRV_NAME ",web1.example.test,8080,1,20\n"
                    "host-record=web1.example.test,127.0.0.11\n";
    bad_variant(r, LBK_EEXIST, false, NULL);
}

static void test_live_overlong_name(void **state)
{
    (void)state;
    char target[256] = ""; /* 4 x 59-byte labels + example.test = 252 */
    for (int i = 0; i < 4; i++) {
        size_t at = strlen(target);
        memset(target + at, 'a', 59);
        strcpy(target + at + 59, ".");
    }
    strcat(target, "example.test");
    assert_int_equal(strlen(target), 252);
    char r[1024];
    snprintf(r, sizeof r,
             "local-ttl=1\nsrv-host=" SRV_NAME ",%s,8080,0,10\n"
             "host-record=%s,127.0.0.11\n",
             target, target);
    bad_variant(r, LBK_ETOOLONG, false, NULL);
}

static void test_live_no_service(void **state)
{
    (void)state;
    /* no SRV records at all: an empty answer, a failure by default */
    bad_variant("local-ttl=1\nhost-record=web1.example.test,127.0.0.11\n",
                LBK_ENOENT, false, NULL);
}

/* Absurd TTLs are clamped: 0 -> min, huge -> max. */
static void test_live_ttl_clamp(void **state)
{
    (void)state;
    struct env e = {0};
    if (!server_init(&e.srv,
                     "local-ttl=2000000000\n"
                     "srv-host=" SRV_NAME ",web1.example.test,8080,0,10\n"
                     "host-record=web1.example.test,127.0.0.11\n"))
        skip();
    env_init(&e, 300, 2000, false);
    assert_ok(resolve_ready(&e));
    uint64_t after = now_ns();
    lbk_dns_info info;
    assert_ok(lbk_dns_status(e.dns, &info));
    assert_int_equal(info.ttl, 2000000000u);
    assert_true(info.next_refresh_ns <= after + 2000 * MS);
    assert_true(info.next_refresh_ns + 2100 * MS > after);
    server_stop(&e.srv);
    server_write(&e.srv, "local-ttl=0\n"
                         "srv-host=" SRV_NAME ",web1.example.test,8080,0,10\n"
                         "host-record=web1.example.test,127.0.0.11\n");
    server_start(&e.srv);
    usleep(200000);
    assert_ok(lbk_dns_refresh_now(e.dns));
    uint64_t before = now_ns();
    assert_ok(resolve_ready(&e));
    assert_ok(lbk_dns_status(e.dns, &info));
    assert_int_equal(info.ttl, 0);
    assert_true(info.next_refresh_ns >= before + 300 * MS);
    env_free(&e);
}

/* Hundreds of records: the answer exceeds 512 bytes, c-ares retries over
 * TCP, and every target is resolved. */
static void test_live_many_records(void **state)
{
    (void)state;
    const int n = 300;
    size_t size = (size_t)n * 160 + 64;
    char *r = malloc(size);
    size_t at = (size_t)snprintf(r, size, "local-ttl=30\n");
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(r + at, size - at,
                               "srv-host=" SRV_NAME ",h%d.example.test,%d,%d,"
                               "%d\nhost-record=h%d.example.test,127.1.%d.%d\n",
                               i, 1000 + i, i % 2, 1 + i % 7, i, i / 250,
                               i % 250 + 1);
    struct env e = {0};
    if (!server_init(&e.srv, r)) {
        free(r);
        skip();
    }
    free(r);
    env_init(&e, 100, 1000, false);
    assert_ok(resolve_ready(&e));
    assert_int_equal(lbk_set_count(e.set), n);
    lbk_backend *b = lbk_set_backend(e.set, 0);
    assert_non_null(b);
    env_free(&e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_crafted),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test_teardown(test_live_follow_and_outage, teardown),
        cmocka_unit_test_teardown(test_live_unresolvable_target, teardown),
        cmocka_unit_test_teardown(test_live_duplicates, teardown),
        cmocka_unit_test_teardown(test_live_overlong_name, teardown),
        cmocka_unit_test_teardown(test_live_no_service, teardown),
        cmocka_unit_test_teardown(test_live_ttl_clamp, teardown),
        cmocka_unit_test_teardown(test_live_many_records, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
