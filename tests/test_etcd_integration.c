/*
 * tests/test_etcd_integration.c - the etcd adapter: value parsing and
 * formatting, then a real single-node etcd on loopback (free client and
 * peer ports, data in a temporary directory, started and stopped here;
 * skipped when etcd is absent).
 *
 * Proves: three instances register with leases; one lease lapses and that
 * instance leaves the set; a new instance appears through the watch; etcd
 * stopped -> the set stays and the failure is reported; etcd restarted ->
 * the watch resumes from the last revision (no second listing) and picks
 * up what changed meanwhile, with nothing lost or doubled; values that are
 * not JSON or miss fields are refused and change nothing.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "lbkit/etcd.h"
#include "lbkit/reconcile.h"

#define MS UINT64_C(1000000)
#define PREFIX "/services/web/"

/* ---- values ----------------------------------------------------------- */

static void test_parse_values(void **state)
{
    (void)state;
    lbk_etcd_instance v;
    const char *good = "{\"name\": \"web-1\", \"address\": \"10.0.0.1\", "
                       "\"port\": 8080, \"weight\": 10, \"priority\": 2}";
    assert_ok(lbk_etcd_parse_instance(good, strlen(good), "dflt", &v));
    assert_string_equal(v.inst.name, "web-1");
    assert_string_equal(v.inst.address, "10.0.0.1");
    assert_int_equal(v.inst.port, 8080);
    assert_int_equal(v.inst.weight, 10);
    assert_int_equal(v.inst.priority, 2);
    const char *noname = "{\"address\": \"::1\", \"port\": 1, \"weight\": "
                         "4294967295, \"priority\": 0}";
    assert_ok(lbk_etcd_parse_instance(noname, strlen(noname), "b", &v));
    assert_string_equal(v.inst.name, "b");
    assert_int_equal(v.inst.weight, UINT32_MAX);
    assert_lbk(lbk_etcd_parse_instance(noname, strlen(noname), NULL, &v),
               LBK_EPARSE);
    struct {
        const char *json;
        int rc;
    } bad[] = {
        {"", LBK_EPARSE},
        {"not json", LBK_EPARSE},
        {"[1, 2]", LBK_EPARSE},
        {"\"a string\"", LBK_EPARSE},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": 1", LBK_EPARSE},
        {"{\"port\": 1, \"weight\": 1, \"priority\": 0}", LBK_EPARSE},
        {"{\"address\": \"h\", \"weight\": 1, \"priority\": 0}", LBK_EPARSE},
        {"{\"address\": \"h\", \"port\": 1, \"priority\": 0}", LBK_EPARSE},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": 1}", LBK_EPARSE},
        {"{\"address\": 7, \"port\": 1, \"weight\": 1, \"priority\": 0}",
         LBK_EPARSE},
        {"{\"address\": \"h\", \"port\": \"80\", \"weight\": 1, "
         "\"priority\": 0}",
         LBK_EPARSE},
        {"{\"name\": 5, \"address\": \"h\", \"port\": 1, \"weight\": 1, "
         "\"priority\": 0}",
         LBK_EPARSE},
        {"{\"address\": \"h\", \"port\": 0, \"weight\": 1, \"priority\": 0}",
         LBK_ERANGE},
        {"{\"address\": \"h\", \"port\": 65536, \"weight\": 1, "
         "\"priority\": 0}",
         LBK_ERANGE},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": -1, \"priority\": 0}",
         LBK_ERANGE},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": 4294967296, "
         "\"priority\": 0}",
         LBK_ERANGE},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": 1, \"priority\": 128}",
         LBK_ERANGE},
        {"{\"address\": \"\", \"port\": 1, \"weight\": 1, \"priority\": 0}",
         LBK_ETOOLONG},
        {"{\"address\": \"h\", \"port\": 1, \"weight\": 1, \"priority\": 0} "
         "trailing",
         LBK_EPARSE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&v, 0x5a, sizeof v);
        int rc =
            lbk_etcd_parse_instance(bad[i].json, strlen(bad[i].json), "x", &v);
        if (rc != bad[i].rc)
            fail_msg("%s: got %s, want %s", bad[i].json, lbk_errname(rc),
                     lbk_errname(bad[i].rc));
        assert_int_equal(((unsigned char *)&v)[0], 0x5a); /* untouched */
    }
    char longaddr[400] = "{\"address\": \"";
    memset(longaddr + strlen(longaddr), 'a', 300);
    strcpy(longaddr + 13 + 300,
           "\", \"port\": 1, \"weight\": 1, \"priority\": 0}");
    assert_lbk(lbk_etcd_parse_instance(longaddr, strlen(longaddr), "x", &v),
               LBK_ETOOLONG);
    assert_lbk(lbk_etcd_parse_instance(NULL, 0, "x", &v), LBK_EINVAL);
    assert_lbk(lbk_etcd_parse_instance(good, strlen(good), "x", NULL),
               LBK_EINVAL);
    /* format and parse back */
    lbk_instance in = {"n1", "10.1.2.3", 443, 7, 3};
    char buf[512];
    int len = lbk_etcd_format_instance(&in, buf, sizeof buf);
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(buf));
    assert_ok(lbk_etcd_parse_instance(buf, (size_t)len, NULL, &v));
    assert_string_equal(v.inst.name, "n1");
    assert_int_equal(v.inst.port, 443);
    assert_int_equal(v.inst.weight, 7);
    assert_int_equal(v.inst.priority, 3);
    assert_lbk(lbk_etcd_format_instance(&in, buf, 10), LBK_ETOOLONG);
    assert_lbk(lbk_etcd_format_instance(NULL, buf, 10), LBK_EINVAL);
}

static void test_create_errors(void **state)
{
    (void)state;
    lbk_set *set;
    lbk_reconciler *rec;
    assert_ok(lbk_set_create(NULL, &set));
    assert_ok(lbk_reconciler_create(set, NULL, NULL, &rec));
    lbk_etcd *w = NULL;
    const char *ep = "http://127.0.0.1:9";
    assert_lbk(lbk_etcd_create(NULL, PREFIX, rec, NULL, NULL, &w), LBK_EINVAL);
    assert_lbk(lbk_etcd_create(ep, "", rec, NULL, NULL, &w), LBK_EINVAL);
    assert_lbk(lbk_etcd_create(ep, PREFIX, NULL, NULL, NULL, &w), LBK_EINVAL);
    assert_lbk(lbk_etcd_create(ep, PREFIX, rec, NULL, NULL, NULL), LBK_EINVAL);
    lbk_etcd_options o;
    lbk_etcd_options_init(&o);
    o.request_timeout_ms = 0;
    assert_lbk(lbk_etcd_create(ep, PREFIX, rec, &o, NULL, &w), LBK_EINVAL);
    char big[2000];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_lbk(lbk_etcd_create(ep, big, rec, NULL, NULL, &w), LBK_ETOOLONG);
    assert_null(w);
    fail_alloc fa;
    fail_alloc_init(&fa);
    for (long k = 0;; k++) {
        fail_alloc_reset(&fa, k);
        int rc = lbk_etcd_create(ep, PREFIX, rec, NULL, &fa.hook, &w);
        if (rc == 0)
            break;
        assert_lbk(rc, LBK_ENOMEM);
        assert_int_equal(fa.live, 0);
    }
    fail_alloc_reset(&fa, -1);
    /* nothing listens on port 9: the first round fails, set untouched */
    uint64_t t = 1;
    for (int i = 0; i < 100; i++) {
        lbk_etcd_process(w, t);
        lbk_etcd_info info;
        assert_ok(lbk_etcd_status(w, &info));
        if (info.failures > 0)
            break;
        usleep(20000);
    }
    lbk_etcd_info info;
    assert_ok(lbk_etcd_status(w, &info));
    assert_true(info.failures > 0);
    assert_true(strlen(info.last_error) > 0);
    uint64_t wait;
    assert_ok(lbk_etcd_timeout(w, t, &wait));
    assert_true(wait > 0); /* backing off */
    assert_lbk(lbk_etcd_status(NULL, &info), LBK_EINVAL);
    assert_lbk(lbk_etcd_process(NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_etcd_fds(NULL, NULL, 0), LBK_EINVAL);
    assert_lbk(lbk_etcd_timeout(w, 0, NULL), LBK_EINVAL);
    lbk_etcd_free(w);
    assert_int_equal(fa.live, 0);
    lbk_etcd_free(NULL);
    lbk_etcd_lease *l;
    lbk_instance in = {"a", "10.0.0.1", 80, 1, 0};
    assert_lbk(lbk_etcd_register(ep, "/k", &in, 0, NULL, NULL, &l), LBK_EINVAL);
    lbk_instance badin = {"a", "10.0.0.1", 0, 1, 0};
    assert_lbk(lbk_etcd_register(ep, "/k", &badin, 5, NULL, NULL, &l),
               LBK_EINVAL);
    lbk_etcd_options_init(&o);
    o.request_timeout_ms = 500;
    int rc = lbk_etcd_register(ep, "/k", &in, 5, &o, NULL, &l);
    assert_true(rc == LBK_EIO || rc == LBK_ETIMEDOUT);
    assert_lbk(lbk_etcd_keepalive(NULL), LBK_EINVAL);
    assert_lbk(lbk_etcd_revoke(NULL), LBK_EINVAL);
    assert_int_equal(lbk_etcd_lease_id(NULL), 0);
    lbk_etcd_lease_free(NULL);
    lbk_reconciler_free(rec);
    lbk_set_free(set);
}

/* ---- a real etcd ------------------------------------------------------- */

struct etcd {
    char dir[64], data[96], log[96], client[64], peer[64];
    pid_t pid;
};

/* The server of the running test, outside the test's stack, so the
 * teardown can stop it even when an assertion jumped out of the test. */
static pid_t g_pid;
static char g_dir[64];

static const char *etcd_path(void)
{
    static const char *c[] = {"/usr/bin/etcd", "/usr/local/bin/etcd",
                              "/usr/sbin/etcd"};
    for (size_t i = 0; i < 3; i++)
        if (access(c[i], X_OK) == 0)
            return c[i];
    return NULL;
}

static int free_tcp_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static void etcd_start(struct etcd *e)
{
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char a[8][200];
        snprintf(a[0], 200, "--data-dir=%s", e->data);
        snprintf(a[1], 200, "--listen-client-urls=%s", e->client);
        snprintf(a[2], 200, "--advertise-client-urls=%s", e->client);
        snprintf(a[3], 200, "--listen-peer-urls=%s", e->peer);
        snprintf(a[4], 200, "--initial-advertise-peer-urls=%s", e->peer);
        snprintf(a[5], 200, "--initial-cluster=t=%s", e->peer);
        execl(etcd_path(), "etcd", "--name=t", a[0], a[1], a[2], a[3], a[4],
              a[5], "--heartbeat-interval=50", "--election-timeout=500",
              "--logger=zap", "--log-outputs=stderr", "--log-level=error",
              (char *)NULL);
        _exit(127);
    }
    g_pid = e->pid;
}

static void etcd_stop(struct etcd *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        waitpid(e->pid, NULL, 0);
        e->pid = 0;
        g_pid = 0;
    }
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void etcd_cleanup(struct etcd *e)
{
    etcd_stop(e);
    nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    g_dir[0] = '\0';
}

static int teardown(void **state)
{
    (void)state;
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        waitpid(g_pid, NULL, 0);
        g_pid = 0;
    }
    if (g_dir[0] != '\0') {
        nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        g_dir[0] = '\0';
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A raw put (for values lbk_etcd_register would refuse to write). */
static void b64(const char *in, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    (void)u;
    return s * n;
}

static void raw_put(const struct etcd *e, const char *key, const char *value)
{
    char k[512], v[2048], body[3000], url[128];
    b64(key, k);
    b64(value, v);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    snprintf(url, sizeof url, "%s/v3/kv/put", e->client);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
}

/* The published set as sorted "name=address:port w p;" */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digest(lbk_set *set, char *buf, size_t size)
{
    const lbk_snapshot *s;
    assert_ok(lbk_set_acquire(set, &s));
    uint32_t n = lbk_snapshot_count(s);
    char **l = calloc(n + 1, sizeof(*l));
    for (uint32_t i = 0; i < n; i++) {
        lbk_backend *b = lbk_snapshot_backend(s, i);
        const lbk_endpoint *ep = lbk_backend_user(b);
        l[i] = malloc(400);
        snprintf(l[i], 400, "%s=%s:%u w%u p%u;", lbk_backend_name(b),
                 ep->address, ep->port, lbk_snapshot_weight(s, i),
                 lbk_snapshot_priority(s, i));
    }
    qsort(l, n, sizeof(*l), cmp_str);
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        at += (size_t)snprintf(buf + at, size - at, "%s", l[i]);
        free(l[i]);
    }
    free(l);
    lbk_snapshot_release(s);
}

struct live {
    struct etcd etcd;
    lbk_set *set;
    lbk_reconciler *rec;
    lbk_etcd *w;
    lbk_etcd_lease *keep[8]; /* kept alive by drive() */
    int nkeep;
    uint64_t last_keepalive;
};

/* Drive the watcher (and the keep-alives) until the set equals want or
 * max_ms passes. */
static bool drive(struct live *L, const char *want, uint64_t max_ms)
{
    uint64_t end = now_ns() + max_ms * MS;
    char got[4096];
    for (;;) {
        digest(L->set, got, sizeof got);
        if (want != NULL && strcmp(got, want) == 0)
            return true;
        if (now_ns() >= end) {
            if (want != NULL)
                fprintf(stderr, "got  %s\nwant %s\n", got, want);
            return want == NULL;
        }
        if (now_ns() - L->last_keepalive > 250 * MS) {
            for (int i = 0; i < L->nkeep; i++)
                lbk_etcd_keepalive(L->keep[i]); /* may fail while down */
            L->last_keepalive = now_ns();
        }
        lbk_etcd_run(L->w, 50 * MS, NULL, NULL);
    }
}

static lbk_etcd_lease *reg(struct live *L, const char *name, const char *addr,
                           uint32_t weight, uint32_t ttl)
{
    char key[128];
    snprintf(key, sizeof key, PREFIX "%s", name);
    lbk_instance in = {NULL, addr, 8080, weight, 0};
    lbk_etcd_lease *l = NULL;
    int rc = LBK_EIO;
    for (int i = 0; i < 40 && rc != 0; i++) { /* etcd may be starting */
        rc = lbk_etcd_register(L->etcd.client, key, &in, ttl, NULL, NULL, &l);
        if (rc != 0)
            usleep(100000);
    }
    assert_ok(rc);
    assert_true(lbk_etcd_lease_id(l) != 0);
    return l;
}

#define A "a=10.0.0.1:8080 w1 p0;"
#define B "b=10.0.0.2:8080 w2 p0;"
#define C "c=10.0.0.3:8080 w3 p0;"
#define D "d=10.0.0.4:8080 w4 p0;"
#define E "e=10.0.0.5:8080 w5 p0;"

static void test_live_registry(void **state)
{
    (void)state;
    if (etcd_path() == NULL)
        skip();
    struct live L;
    memset(&L, 0, sizeof L);
    struct etcd *e = &L.etcd;
    snprintf(e->dir, sizeof e->dir, "/tmp/lbk-etcd-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(g_dir, sizeof g_dir, "%s", e->dir);
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    snprintf(e->log, sizeof e->log, "%s/etcd.log", e->dir);
    int cp = free_tcp_port(), pp = free_tcp_port();
    while (pp == cp)
        pp = free_tcp_port();
    snprintf(e->client, sizeof e->client, "http://127.0.0.1:%d", cp);
    snprintf(e->peer, sizeof e->peer, "http://127.0.0.1:%d", pp);
    etcd_start(e);

    lbk_reconcile_options ro;
    lbk_reconcile_options_init(&ro);
    assert_ok(lbk_set_create(NULL, &L.set));
    assert_ok(lbk_reconciler_create(L.set, &ro, NULL, &L.rec));
    lbk_etcd_options o;
    lbk_etcd_options_init(&o);
    o.backoff_initial_ns = 50 * MS;
    o.backoff_max_ns = 300 * MS;
    o.request_timeout_ms = 2000;
    assert_ok(lbk_etcd_create(e->client, PREFIX, L.rec, &o, NULL, &L.w));

    /* three instances; "c" is never kept alive */
    L.keep[L.nkeep++] = reg(&L, "a", "10.0.0.1", 1, 2);
    L.keep[L.nkeep++] = reg(&L, "b", "10.0.0.2", 2, 2);
    lbk_etcd_lease *lc = reg(&L, "c", "10.0.0.3", 3, 1);
    /* something outside the prefix is not ours */
    raw_put(e, "/services/webX", "{}");
    raw_put(e, "/other/x", "garbage");
    assert_true(drive(&L, A B C, 8000));
    lbk_etcd_info info;
    assert_ok(lbk_etcd_status(L.w, &info));
    assert_int_equal(info.lists, 1);
    assert_true(info.watching || info.watches >= 1);

    /* c's lease lapses (TTL 1 s): c leaves the set */
    lbk_etcd_lease_free(lc);
    assert_true(drive(&L, A B, 10000));

    /* a new instance appears through the watch */
    L.keep[L.nkeep++] = reg(&L, "d", "10.0.0.4", 4, 2);
    assert_true(drive(&L, A B D, 8000));
    assert_ok(lbk_etcd_status(L.w, &info));
    assert_int_equal(info.lists, 1); /* by the watch, not a re-listing */
    assert_true(info.events >= 2);   /* c deleted, d put */

    /* bad values: refused, nothing changes */
    uint32_t bad0 = info.bad_values;
    raw_put(e, PREFIX "junk", "this is not json");
    raw_put(e, PREFIX "a", "{\"address\": \"10.9.9.9\"}"); /* no port... */
    drive(&L, NULL, 600);
    assert_ok(lbk_etcd_status(L.w, &info));
    assert_int_equal(info.bad_values, bad0 + 2);
    assert_non_null(strstr(info.last_error, PREFIX));
    char got[4096];
    digest(L.set, got, sizeof got);
    assert_string_equal(got, A B D);
    /* a good value for "a" again (same as before: no change) */
    raw_put(e, PREFIX "a",
            "{\"address\": \"10.0.0.1\", \"port\": 8080, \"weight\": 1, "
            "\"priority\": 0}");
    raw_put(e, PREFIX "junk",
            "{\"address\": \"10.0.0.9\", \"port\": 8080, \"weight\": 9, "
            "\"priority\": 1}");
    assert_true(drive(&L, A B D "junk=10.0.0.9:8080 w9 p1;", 8000));
    uint64_t rev_before = info.revision;

    /* etcd stops: the set stays, the failure is reported */
    etcd_stop(e);
    drive(&L, NULL, 800);
    digest(L.set, got, sizeof got);
    assert_string_equal(got, A B D "junk=10.0.0.9:8080 w9 p1;");
    assert_ok(lbk_etcd_status(L.w, &info));
    assert_true(info.failures >= 1);
    assert_false(info.watching);
    lbk_reconcile_status rs;
    assert_ok(lbk_reconciler_status(L.rec, &rs));
    assert_true(rs.failures >= 1);

    /* etcd restarts; before the watcher reconnects, e registers and junk
     * goes: the watch resumes from the last revision and sees both */
    etcd_start(e);
    L.keep[L.nkeep++] = reg(&L, "e", "10.0.0.5", 5, 2);
    {
        char k[256], body[400], url[128];
        b64(PREFIX "junk", k);
        snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
        snprintf(url, sizeof url, "%s/v3/kv/deleterange", e->client);
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_cleanup(c);
    }
    assert_true(drive(&L, A B D E, 10000));
    assert_ok(lbk_etcd_status(L.w, &info));
    assert_int_equal(info.lists, 1); /* resumed, not re-listed */
    assert_true(info.watches >= 2);
    assert_true(info.revision > rev_before);
    assert_int_equal(lbk_set_count(L.set), 4); /* nothing doubled */

    /* revoking a lease removes its instance at once */
    assert_ok(lbk_etcd_revoke(L.keep[--L.nkeep]));
    lbk_etcd_lease_free(L.keep[L.nkeep]);
    assert_true(drive(&L, A B D, 8000));
    /* keep-alive of a lapsed lease says so */
    for (int i = 0; i < L.nkeep; i++)
        lbk_etcd_lease_free(L.keep[i]);
    L.nkeep = 0;

    lbk_etcd_free(L.w);
    lbk_reconciler_free(L.rec);
    lbk_set_free(L.set);
    etcd_cleanup(e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test_teardown(test_live_registry, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
