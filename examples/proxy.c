/*
 * examples/proxy.c - lbkit-proxy: a small single-process epoll TCP proxy
 * that shows how a proxy embeds lbkit.
 *
 *   lbkit-proxy --listen 127.0.0.1:PORT --backends FILE --policy NAME
 *               [--hash-by client-ip] [--max-tries N] [--quiet]
 *
 * FILE holds one "host:port [weight]" per line ('#' comments).  Each
 * accepted connection goes to the backend the policy picks; bytes are
 * copied both ways until both sides close.  How lbkit is used:
 *
 *   - one lbk_set holds the backends (user pointer = its sockaddr);
 *     lbk_picker publishes the chosen policy over it; --hash-by client-ip
 *     routes through an lbk_ring built on the same snapshots instead;
 *   - lbk_picker_pick() counts the connection in flight (begin) and
 *     lbk_picker_release() ends it when the connection closes, so
 *     least_conn and p2c see live connection counts;
 *   - a failed connect marks the backend DOWN (passive health: every
 *     picker skips it at its next pick, no rebuild) and the connection is
 *     retried on another backend; the backend is tried again after an
 *     exponential back-off (1 s, 2 s, 4 s ... capped at 30 s);
 *   - SIGHUP re-reads FILE, applies the difference to the set (add, remove,
 *     re-weight) and publishes a new picker.  Connections in flight keep
 *     the snapshot their pick came from, so they finish normally.
 *
 * SIGUSR1 prints connections per backend to stderr; SIGTERM/SIGINT exit.
 * Linux only (epoll, signalfd).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lbkit/lbkit.h>
#include <lbkit/picker.h>
#include <lbkit/ring.h>

#include "parse.h"

#define BUF_SIZE 16384
#define MAX_EVENTS 64
#define SPARE_MAX 128 /* closed conns kept for reuse (4 MiB at most) */
#define BACKOFF_MIN_NS 1000000000ULL  /* 1 s */
#define BACKOFF_MAX_NS 30000000000ULL /* 30 s */

/* Per backend, owned by the proxy (the lbk_backend's user pointer). */
struct upstream {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t retry_at; /* while DOWN: when to try again */
    uint64_t backoff;  /* next back-off */
    uint64_t conns;    /* connections forwarded, for SIGUSR1 */
    bool listed;       /* still in FILE (reload bookkeeping) */
};

enum conn_state { C_CONNECTING, C_OPEN };

struct pipe_buf {
    char *data; /* BUF_SIZE bytes, allocated with the conn */
    size_t off, len;
    bool eof; /* reader side reached EOF */
};

struct conn {
    int cfd, bfd;
    enum conn_state state;
    lbk_pick pick;             /* policy pick: holds the snapshot b came from */
    const lbk_snapshot *hsnap; /* --hash-by: the ring's snapshot, held */
    lbk_backend *b;            /* the backend in use, NULL between tries */
    struct pipe_buf up, down;  /* client->backend, backend->client */
    uint32_t cev, bev;         /* the epoll events armed on cfd and bfd */
    bool shut_up, shut_down;
    bool closed; /* waiting in the graveyard until the batch ends */
    struct conn *next_dead;
    unsigned tries;
    uint32_t client_key; /* IPv4 address, for --hash-by client-ip */
};

/* The epoll data word points at one of these: which fd of which conn. */
struct tag {
    struct conn *c;
    bool backend;
};

struct proxy {
    int lfd, efd, sfd;
    const char *file;
    const char *policy;
    bool hash_client;
    bool quiet;
    unsigned max_tries;
    lbk_set *set;
    lbk_picker *picker;
    lbk_ring *ring;                /* --hash-by client-ip */
    const lbk_snapshot *ring_snap; /* the snapshot the ring was built on */
    struct conn *dead;             /* closed this batch, freed after it */
    struct conn *spare;            /* freed conns kept for reuse */
    unsigned nspare;               /* its length, at most SPARE_MAX */
    struct upstream **ups;         /* for freeing */
    size_t nups, ups_cap;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 2, 3))) static void logf_(struct proxy *p,
                                                        const char *fmt, ...)
{
    if (p->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lbkit-proxy: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the backend file and reloads ------------------------------------- */

static int resolve(const char *hostport, struct upstream *u)
{
    char host[256], port[16];
    if (ex_parse_hostport(hostport, host, sizeof host, port, sizeof port) < 0)
        return -1;
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
    u->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Apply FILE to the set: add new names, re-weight changed ones, remove the
 * ones no longer listed; then rebuild and publish.  On any error in FILE
 * nothing changes. */
static int load_backends(struct proxy *p)
{
    ex_backend_list list;
    char err[256];
    if (ex_backend_list_read(p->file, &list, err, sizeof err) < 0) {
        fprintf(stderr, "lbkit-proxy: %s\n", err);
        return -1;
    }
    struct upstream tmp;
    for (size_t i = 0; i < list.n; i++) {
        if (resolve(list.items[i].name, &tmp) < 0) {
            fprintf(stderr, "lbkit-proxy: %s:%zu: cannot resolve %s\n", p->file,
                    list.items[i].line, list.items[i].name);
            ex_backend_list_free(&list);
            return -1;
        }
    }
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(p->set, &cursor, &b) == 1)
        ((struct upstream *)lbk_backend_user(b))->listed = false;
    for (size_t i = 0; i < list.n; i++) {
        uint32_t slot;
        if (lbk_set_find(p->set, list.items[i].name, &slot) == 0) {
            b = lbk_set_backend(p->set, slot);
            ((struct upstream *)lbk_backend_user(b))->listed = true;
            if (lbk_backend_weight(b) != list.items[i].weight)
                lbk_set_set_weight(p->set, slot, list.items[i].weight);
            continue;
        }
        struct upstream *u = calloc(1, sizeof(*u));
        if (u == NULL || resolve(list.items[i].name, u) < 0) {
            free(u);
            continue;
        }
        u->listed = true;
        u->backoff = BACKOFF_MIN_NS;
        int rc = lbk_set_add(p->set, list.items[i].name, list.items[i].weight,
                             u, &slot);
        if (rc < 0) {
            fprintf(stderr, "lbkit-proxy: %s: %s\n", list.items[i].name,
                    lbk_strerror(rc));
            free(u);
            continue;
        }
        if (p->nups == p->ups_cap) {
            p->ups_cap = p->ups_cap ? p->ups_cap * 2 : 16;
            p->ups = realloc(p->ups, p->ups_cap * sizeof(*p->ups));
        }
        p->ups[p->nups++] = u;
        logf_(p, "+ %s", list.items[i].name);
    }
    cursor = 0;
    while (lbk_set_iter(p->set, &cursor, &b) == 1) {
        if (!((struct upstream *)lbk_backend_user(b))->listed) {
            logf_(p, "- %s", lbk_backend_name(b));
            lbk_set_remove(p->set, lbk_backend_slot(b));
        }
    }
    ex_backend_list_free(&list);

    int rc = lbk_picker_rebuild(p->picker);
    if (rc < 0) {
        fprintf(stderr, "lbkit-proxy: rebuild: %s\n", lbk_strerror(rc));
        return -1;
    }
    if (p->hash_client) {
        const lbk_snapshot *snap;
        lbk_ring *ring;
        if (lbk_set_snapshot(p->set, &snap) < 0)
            return -1;
        rc = lbk_ring_build(snap, NULL, NULL, &ring);
        if (rc < 0) {
            lbk_snapshot_release(snap);
            return -1;
        }
        /* connections in flight hold their own snapshot reference */
        lbk_ring_free(p->ring);
        lbk_snapshot_release(p->ring_snap);
        p->ring = ring;
        p->ring_snap = snap;
    }
    return 0;
}

/* ---- passive health --------------------------------------------------- */

static void mark_failed(struct proxy *p, lbk_backend *b)
{
    struct upstream *u = lbk_backend_user(b);
    uint64_t t = now_ns();
    if (lbk_backend_health(b) != LBK_HEALTH_DOWN) {
        lbk_backend_set_health(b, LBK_HEALTH_DOWN);
        logf_(p, "backend %s down, retry later", lbk_backend_name(b));
    }
    u->retry_at = t + u->backoff;
    u->backoff =
        u->backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : u->backoff * 2;
}

/* Bring back DOWN backends whose back-off has passed; return the ms until
 * the next one is due (-1: none), for epoll_wait. */
static int revive_due(struct proxy *p)
{
    uint64_t t = now_ns(), next = UINT64_MAX;
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(p->set, &cursor, &b) == 1) {
        struct upstream *u = lbk_backend_user(b);
        if (lbk_backend_health(b) != LBK_HEALTH_DOWN)
            continue;
        if (u->retry_at <= t) {
            lbk_backend_set_health(b, LBK_HEALTH_UP); /* try it again */
        } else if (u->retry_at < next) {
            next = u->retry_at;
        }
    }
    if (next == UINT64_MAX)
        return -1;
    return (int)((next - t) / 1000000ULL) + 1;
}

/* ---- choosing and releasing a backend ------------------------------- */

/* Pick a backend for c: through the policy, or (--hash-by client-ip) the
 * ring's owner of the client address.  Either way the connection holds a
 * reference to the snapshot its backend came from, and counts itself in
 * flight on it, until backend_release(). */
static int backend_choose(struct proxy *p, struct conn *c)
{
    if (!p->hash_client) {
        int rc = lbk_picker_pick(p->picker, now_ns(), &c->pick);
        if (rc == 0)
            c->b = lbk_pick_backend(&c->pick);
        return rc;
    }
    lbk_backend *b;
    int rc = lbk_ring_lookup(p->ring, &c->client_key, sizeof c->client_key, &b);
    if (rc < 0)
        return rc;
    lbk_snapshot_retain(p->ring_snap);
    c->hsnap = p->ring_snap;
    lbk_backend_begin(b);
    c->b = b;
    return 0;
}

static void backend_release(struct proxy *p, struct conn *c, bool ok)
{
    if (c->b == NULL)
        return;
    if (p->hash_client) {
        lbk_backend_end(c->b);
        lbk_snapshot_release(c->hsnap);
        c->hsnap = NULL;
    } else {
        lbk_outcome out = {.success = ok};
        lbk_picker_release(p->picker, &c->pick, &out);
    }
    c->b = NULL;
}

/* ---- connections ------------------------------------------------------ */

static void conn_close(struct proxy *p, struct conn *c, bool backend_failed)
{
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->bfd >= 0)
        close(c->bfd);
    backend_release(p, c, !backend_failed);
    c->cfd = c->bfd = -1;
    c->closed = true;
    c->next_dead = p->dead;
    p->dead = c;
}

/* A conn is one allocation: the struct, its two epoll tags, then the two
 * BUF_SIZE buffers.  Only the small struct is cleared (never the 32 KiB of
 * buffers), and closed conns go to a bounded spare list instead of back to
 * malloc: with a new connection per request, calloc'ing and freeing 32 KiB
 * each time was the largest user-space cost (memset, heap trims) in a
 * profile of the proxy. */
static struct conn *conn_new(struct proxy *p)
{
    struct conn *c = p->spare;
    if (c != NULL) {
        p->spare = c->next_dead;
        p->nspare--;
    } else {
        c = malloc(sizeof(*c) + 2 * sizeof(struct tag) + 2 * (size_t)BUF_SIZE);
        if (c == NULL)
            return NULL;
    }
    char *bufs = (char *)((struct tag *)(c + 1) + 2);
    memset(c, 0, sizeof *c);
    c->cfd = c->bfd = -1;
    c->up.data = bufs;
    c->down.data = bufs + BUF_SIZE;
    return c;
}

static void conn_free(struct proxy *p, struct conn *c)
{
    if (p->nspare >= SPARE_MAX) {
        free(c);
        return;
    }
    c->next_dead = p->spare;
    p->spare = c;
    p->nspare++;
}

static int watch(struct proxy *p, int fd, struct tag *t, uint32_t events,
                 int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = t};
    return epoll_ctl(p->efd, op, fd, &ev);
}

/* Small request/response exchanges must not wait for Nagle: a response
 * that reaches us in two pieces would otherwise hold its second piece until
 * the client's delayed ACK (40 ms on Linux).  HAProxy sets the same option
 * on both sides (seen with strace on Debian's 2.6). */
static void no_delay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct tag *tag_of(struct conn *c, bool backend)
{
    /* two tags live right after the conn (allocated together) */
    return (struct tag *)(c + 1) + (backend ? 1 : 0);
}

/* Choose a backend and start a non-blocking connect; on immediate failure
 * mark it down and try another, up to max_tries. */
static int conn_dial(struct proxy *p, struct conn *c)
{
    while (c->tries < p->max_tries) {
        c->tries++;
        int rc = backend_choose(p, c);
        if (rc < 0) {
            logf_(p, "no backend: %s", lbk_strerror(rc));
            return -1;
        }
        struct upstream *u = lbk_backend_user(c->b);
        int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -1;
        no_delay(fd);
        if (connect(fd, (struct sockaddr *)&u->addr, u->addrlen) == 0 ||
            errno == EINPROGRESS) {
            c->bfd = fd;
            c->state = C_CONNECTING;
            c->bev = EPOLLOUT;
            return watch(p, fd, tag_of(c, true), EPOLLOUT, EPOLL_CTL_ADD);
        }
        close(fd);
        mark_failed(p, c->b);
        backend_release(p, c, false);
    }
    return -1;
}

static void on_accept(struct proxy *p)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(p->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct conn *c = conn_new(p);
        if (c == NULL) {
            close(fd);
            continue;
        }
        no_delay(fd);
        c->cfd = fd;
        if (ss.ss_family == AF_INET)
            c->client_key = ((struct sockaddr_in *)&ss)->sin_addr.s_addr;
        *tag_of(c, false) = (struct tag){c, false};
        *tag_of(c, true) = (struct tag){c, true};
        if (conn_dial(p, c) < 0) {
            conn_close(p, c, false);
            continue;
        }
        ((struct upstream *)lbk_backend_user(c->b))->conns++;
    }
}

/* Move bytes from src fd into buf and from buf to dst fd; returns -1 on a
 * hard error.  Sets eof when src is done and shuts dst's write side once
 * everything is flushed.  A read shorter than the buffer means the socket
 * is (almost surely) empty, so pump stops there instead of paying for a
 * recv() that would say EAGAIN: epoll is level-triggered and reports any
 * byte, or the EOF, that arrives after. */
static int pump(int src, int dst, struct pipe_buf *buf, bool *shut)
{
    bool drained = false;
    for (;;) {
        if (buf->len > 0) {
            ssize_t w = send(dst, buf->data + buf->off, buf->len, MSG_NOSIGNAL);
            if (w < 0)
                return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
            buf->off += (size_t)w;
            buf->len -= (size_t)w;
            if (buf->len > 0)
                return 0;
            buf->off = 0;
        }
        if (buf->eof) {
            if (!*shut) {
                shutdown(dst, SHUT_WR);
                *shut = true;
            }
            return 0;
        }
        if (drained)
            return 0;
        ssize_t r = recv(src, buf->data, BUF_SIZE, 0);
        if (r == 0) {
            buf->eof = true;
            continue;
        }
        if (r < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        buf->len = (size_t)r;
        drained = (size_t)r < BUF_SIZE;
    }
}

/* Arm each fd for what its two pipes wait on: a pipe with bytes buffered
 * waits for its destination to be writable, an empty one for its source to
 * be readable, a finished one for nothing.  Every unfinished pipe thus has
 * an armed event, so no work is ever left without a wake-up.  epoll_ctl is
 * called only when a set changes: in steady request/response traffic it
 * never does, and the proxy costs one recv and one send per message. */
static void rearm(struct proxy *p, struct conn *c)
{
    uint32_t ce = 0, be = 0;
    if (!c->up.eof && c->up.len == 0)
        ce |= EPOLLIN;
    if (c->down.len > 0)
        ce |= EPOLLOUT;
    if (!c->down.eof && c->down.len == 0)
        be |= EPOLLIN;
    if (c->up.len > 0)
        be |= EPOLLOUT;
    if (ce != c->cev &&
        watch(p, c->cfd, tag_of(c, false), ce, EPOLL_CTL_MOD) == 0)
        c->cev = ce;
    if (be != c->bev &&
        watch(p, c->bfd, tag_of(c, true), be, EPOLL_CTL_MOD) == 0)
        c->bev = be;
}

static void on_event(struct proxy *p, struct tag *t, uint32_t ev)
{
    struct conn *c = t->c;
    if (c->closed)
        return;
    if (c->state == C_CONNECTING) {
        if (!t->backend)
            return; /* client data waits until the backend is up */
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
            /* failed connect: passive health, then another backend */
            epoll_ctl(p->efd, EPOLL_CTL_DEL, c->bfd, NULL);
            close(c->bfd);
            c->bfd = -1;
            mark_failed(p, c->b);
            backend_release(p, c, false);
            if (conn_dial(p, c) < 0)
                conn_close(p, c, false);
            else
                ((struct upstream *)lbk_backend_user(c->b))->conns++;
            return;
        }
        struct upstream *u = lbk_backend_user(c->b);
        u->backoff = BACKOFF_MIN_NS; /* it works: reset the back-off */
        c->state = C_OPEN;
        if (watch(p, c->cfd, tag_of(c, false), EPOLLIN, EPOLL_CTL_ADD) == 0)
            c->cev = EPOLLIN;
        rearm(p, c);
        return;
    }
    /* Only the pipes this event concerns: reading from the fd that became
     * readable, flushing into the one that became writable.  The other pipe
     * has its own armed event (rearm) and would only answer EAGAIN. */
    bool in = ev & (EPOLLIN | EPOLLHUP | EPOLLERR);
    bool out = ev & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    bool run_up = t->backend ? out : in;
    bool run_down = t->backend ? in : out;
    if ((run_up && pump(c->cfd, c->bfd, &c->up, &c->shut_up) < 0) ||
        (run_down && pump(c->bfd, c->cfd, &c->down, &c->shut_down) < 0)) {
        conn_close(p, c, false);
        return;
    }
    if (c->up.eof && c->down.eof && c->up.len == 0 && c->down.len == 0) {
        conn_close(p, c, false);
        return;
    }
    rearm(p, c);
}

static void print_stats(struct proxy *p)
{
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(p->set, &cursor, &b) == 1) {
        struct upstream *u = lbk_backend_user(b);
        fprintf(stderr, "%s\tconns=%llu\tin_flight=%u\t%s\n",
                lbk_backend_name(b), (unsigned long long)u->conns,
                lbk_backend_in_flight(b),
                lbk_backend_eligible(b) ? "up" : "down");
    }
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: lbkit-proxy --listen HOST:PORT --backends FILE "
               "--policy NAME [--hash-by client-ip] [--max-tries N] "
               "[--quiet]\n"
               "policies:");
    for (uint32_t i = 0; i < lbk_policy_count(); i++)
        if (lbk_policy_available((lbk_policy)i))
            fprintf(f, " %s", lbk_policy_name((lbk_policy)i));
    fprintf(f, "\n");
}

static int listen_on(const char *hostport)
{
    char host[256], port[16];
    if (ex_parse_hostport(hostport, host, sizeof host, port, sizeof port) < 0)
        return -1;
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, 512) < 0) {
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    struct proxy p = {.lfd = -1, .policy = "round_robin", .max_tries = 0};
    const char *listen_addr = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--listen") == 0 && v)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--backends") == 0 && v)
            p.file = argv[++i];
        else if (strcmp(argv[i], "--policy") == 0 && v)
            p.policy = argv[++i];
        else if (strcmp(argv[i], "--hash-by") == 0 && v) {
            if (strcmp(argv[++i], "client-ip") != 0) {
                fprintf(stderr, "lbkit-proxy: --hash-by takes client-ip\n");
                return 2;
            }
            p.hash_client = true;
        } else if (strcmp(argv[i], "--max-tries") == 0 && v) {
            uint64_t n;
            if (ex_parse_u64(argv[++i], 1, 1000, &n) < 0) {
                fprintf(stderr, "lbkit-proxy: bad --max-tries\n");
                return 2;
            }
            p.max_tries = (unsigned)n;
        } else if (strcmp(argv[i], "--quiet") == 0)
            p.quiet = true;
        else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "lbkit-proxy: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (listen_addr == NULL || p.file == NULL) {
        usage(stderr);
        return 2;
    }
    int rc = lbk_set_create(NULL, &p.set);
    lbk_picker_options po;
    lbk_picker_options_init(&po);
    po.policy = p.policy;
    if (rc == 0)
        rc = lbk_picker_create(p.set, &po, NULL, &p.picker);
    if (rc < 0) {
        fprintf(stderr, "lbkit-proxy: policy %s: %s\n", p.policy,
                lbk_strerror(rc));
        return 2;
    }
    if (load_backends(&p) < 0)
        return 1;
    if (p.max_tries == 0)
        p.max_tries = lbk_set_count(p.set) ? lbk_set_count(p.set) : 1;
    p.lfd = listen_on(listen_addr);
    if (p.lfd < 0) {
        fprintf(stderr, "lbkit-proxy: cannot listen on %s: %s\n", listen_addr,
                strerror(errno));
        return 1;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    p.sfd = signalfd(-1, &mask, SFD_NONBLOCK);
    p.efd = epoll_create1(0);
    static struct tag listen_tag, signal_tag;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(p.efd, EPOLL_CTL_ADD, p.lfd, &ev);
    ev.data.ptr = &signal_tag;
    epoll_ctl(p.efd, EPOLL_CTL_ADD, p.sfd, &ev);
    logf_(&p, "listening on %s, policy %s", listen_addr, p.policy);

    bool running = true;
    while (running) {
        int timeout = revive_due(&p);
        struct epoll_event evs[MAX_EVENTS];
        int n = epoll_wait(p.efd, evs, MAX_EVENTS, timeout);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &listen_tag) {
                revive_due(&p);
                on_accept(&p);
            } else if (evs[i].data.ptr == &signal_tag) {
                struct signalfd_siginfo si;
                while (read(p.sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        logf_(&p, "SIGHUP: reloading %s", p.file);
                        load_backends(&p);
                    } else if (si.ssi_signo == SIGUSR1) {
                        print_stats(&p);
                    } else {
                        running = false;
                    }
                }
            } else {
                on_event(&p, evs[i].data.ptr, evs[i].events);
            }
        }
        while (p.dead != NULL) {
            struct conn *c = p.dead;
            p.dead = c->next_dead;
            conn_free(&p, c);
        }
    }
    while (p.spare != NULL) {
        struct conn *c = p.spare;
        p.spare = c->next_dead;
        free(c);
    }
    print_stats(&p);
    lbk_ring_free(p.ring);
    lbk_snapshot_release(p.ring_snap);
    lbk_picker_free(p.picker);
    lbk_set_free(p.set);
    for (size_t i = 0; i < p.nups; i++)
        free(p.ups[i]);
    free(p.ups);
    return 0;
}
