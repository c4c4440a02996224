/*
 * lbkit/dns.h - DNS SRV discovery through c-ares (optional adapter).
 *
 * Answers "where are the instances of _service._proto.name right now?"
 * from DNS: resolves the SRV records, then every target's A and AAAA
 * records, and hands the result to a reconciler (reconcile.h), which
 * updates the backend set with the minimal change.  Refreshes when the
 * answer's TTL runs out (clamped to [min, max]) and backs off exponentially
 * on errors; a failed round never empties the set (the reconciler keeps the
 * last good answer).  Use it for CoreDNS / Kubernetes headless services,
 * Consul's DNS interface, or any zone with SRV records; use etcd.h for an
 * etcd registry.  Built only when c-ares is found (meson feature "cares").
 * Cost: one SRV query plus one or two address queries per distinct target
 * per refresh; memory O(records) during a round, nothing between rounds.
 *
 * How an answer becomes instances:
 *   - one instance per (SRV record, address of its target);
 *   - name "target:port" when the target has one address, else
 *     "target:port/address" for each (names are the set's identity);
 *   - weight = the SRV weight, except that a priority whose records all
 *     have weight 0 gets weight 1 each (RFC 2782: weight 0 means "no
 *     selection to do"); a weight-0 record among weighted ones keeps 0;
 *   - priority = the rank of the SRV priority among the distinct values in
 *     the answer (lowest = tier 0), capped at LBK_PRIORITY_MAX;
 *   - a sole target "." (service decidedly not available) or NXDOMAIN /
 *     no SRV data is an empty answer (the reconciler's empty_is_failure
 *     decides what that does);
 *   - a target that does not resolve fails the whole round (LBK_ENOENT,
 *     the set unchanged) unless skip_unresolved is set;
 *   - duplicate records (two records giving one name) fail the round
 *     (LBK_EEXIST from the reconciler).
 *
 * Event loop integration, after c-ares: ask lbk_dns_fds() for the sockets
 * to watch and lbk_dns_timeout() for the longest wait, then call
 * lbk_dns_process() with the ready socket (or LBK_DNS_NO_FD when only time
 * passed).  Time is the caller's monotonic clock in ns, except in the
 * blocking convenience lbk_dns_resolve(), which polls and reads
 * CLOCK_MONOTONIC itself.
 */
#ifndef LBKIT_DNS_H
#define LBKIT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reconcile.h"
#include "srv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_dns lbk_dns;

/* "No socket" for lbk_dns_process(). */
#define LBK_DNS_NO_FD (-1)

/* Most sockets lbk_dns_fds() reports (c-ares' ARES_GETSOCK_MAXNUM). */
#define LBK_DNS_MAX_FDS 16

/* Most addresses kept per target (A and AAAA together). */
#define LBK_DNS_MAX_ADDRS 32

typedef struct lbk_dns_options {
    /* DNS server "ip:port" or "[ipv6]:port" (comma-separated list allowed);
     * NULL = the system's resolv.conf.  Copied. */
    const char *server;
    /* Refresh delay = the answer's smallest TTL clamped to [min, max].
     * Defaults 1 s and 300 s. */
    uint64_t min_refresh_ns, max_refresh_ns;
    /* Retry delay after a failed round: starts at backoff_initial_ns and
     * doubles per consecutive failure up to backoff_max_ns.  Defaults 1 s
     * and 60 s. */
    uint64_t backoff_initial_ns, backoff_max_ns;
    /* Per-try query timeout (ms) and tries per server.  Defaults 2000, 2. */
    uint32_t query_timeout_ms, tries;
    /* Also query AAAA (default true). */
    bool ipv6;
    /* Leave unresolvable targets out instead of failing the round. */
    bool skip_unresolved;
} lbk_dns_options;

/* A socket to watch. */
typedef struct lbk_dns_fd {
    int fd;
    bool read, write;
} lbk_dns_fd;

/* The adapter's view of its source. */
typedef struct lbk_dns_info {
    uint64_t rounds, failures; /* rounds finished; failed ones among them */
    int last_result;           /* of the last finished round (0 = applied) */
    char last_error[160];      /* human-readable detail of the last failure */
    uint32_t records;          /* SRV records in the last good answer */
    uint32_t instances;        /* instances applied from it */
    uint32_t ttl;              /* smallest TTL (s) of the last answer */
    uint64_t next_refresh_ns;  /* when the next round starts */
    bool in_round;             /* queries in flight */
} lbk_dns_info;

/*
 * lbk_dns_options_init - the defaults above (server NULL).  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_dns_options_init(lbk_dns_options *opts);

/*
 * lbk_dns_create - a resolver for the SRV name (e.g. "_http._tcp.example")
 * feeding rec.  The first round starts at the first lbk_dns_process() or
 * lbk_dns_resolve().
 * srv_name: 1..253 bytes, copied.  rec: must outlive the adapter.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free.
 * Errors: LBK_EINVAL (NULL srv_name, rec or out; invalid allocator; min >
 * max or a zero delay; tries 0), LBK_ETOOLONG (srv_name over 253 bytes),
 * LBK_EPARSE (server list not understood), LBK_EIO (c-ares could not set
 * up a channel), LBK_ENOMEM.
 * Thread safety: any thread; the adapter then belongs to one thread (the
 * one that drives rec's set).
 */
LBK_API int lbk_dns_create(const char *srv_name, lbk_reconciler *rec,
                           const lbk_dns_options *opts,
                           const lbk_allocator *alloc, lbk_dns **out);

/*
 * lbk_dns_free - cancel queries in flight and free the adapter (the set and
 * reconciler are untouched).  NULL is a no-op.
 * Thread safety: the adapter's thread.
 */
LBK_API void lbk_dns_free(lbk_dns *d);

/*
 * lbk_dns_fds - the sockets c-ares wants watched now.
 * out: room for max entries.  Returns the number written (0 when no query
 * is in flight).
 * Errors: LBK_EINVAL (d NULL, or out NULL with max > 0).
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_fds(lbk_dns *d, lbk_dns_fd *out, size_t max);

/*
 * lbk_dns_timeout - how long the caller may wait before calling
 * lbk_dns_process() again: the sooner of c-ares' own timeout and the next
 * refresh (0 when something is due now).
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_timeout(lbk_dns *d, uint64_t now_ns, uint64_t *wait_ns);

/*
 * lbk_dns_process - do what is due: handle the ready socket(s) (read_fd /
 * write_fd, or LBK_DNS_NO_FD), c-ares timeouts, finish a round whose
 * answers are all in (applying it through the reconciler, or reporting a
 * failure to it), and start the next round when its time has come.
 * Returns 1 when a round finished in this call, else 0.  A round's own
 * result is in lbk_dns_status().last_result, not here.
 * Errors: LBK_EINVAL (d NULL), LBK_ENOMEM (a round could not start; retried
 * at the next call).
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_process(lbk_dns *d, int read_fd, int write_fd,
                            uint64_t now_ns);

/*
 * lbk_dns_refresh_now - make the next lbk_dns_process() start a round at
 * once (no effect while one is in flight).
 * Errors: LBK_EINVAL (d NULL).
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_refresh_now(lbk_dns *d);

/*
 * lbk_dns_resolve - blocking convenience: start a round now (or join the
 * one in flight), poll its sockets until it finishes or timeout_ns passes
 * (CLOCK_MONOTONIC), and return its result: 0 when the answer was applied,
 * else the round's error (the set then unchanged).
 * Errors: LBK_EINVAL (d NULL), LBK_ETIMEDOUT (the round did not finish in
 * time; it goes on at the next process call), LBK_ENOENT (no such service
 * or a target without address), LBK_EIO (server failure, refused),
 * LBK_EPARSE (malformed answer), any error of lbk_reconciler_apply.
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_resolve(lbk_dns *d, uint64_t timeout_ns);

/*
 * lbk_dns_status - counters and the last round's outcome.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: the adapter's thread.
 */
LBK_API int lbk_dns_status(const lbk_dns *d, lbk_dns_info *out);

/*
 * lbk_dns_parse_srv - parse a raw DNS response (as received, header
 * first) into SRV records, with the c-ares parser.  Targets are copied into
 * names (NUL-separated) and records[i].target points there; records[i].ttl
 * is the record's TTL from the answer section.
 * Returns the number of records (0 for a sole "." target: service not
 * available).
 * Errors: LBK_EINVAL (NULL argument), LBK_EPARSE (malformed or truncated
 * message), LBK_ENOENT (no SRV record in the answer), LBK_ERANGE (more than
 * max records), LBK_ETOOLONG (names_size too small), LBK_ENOMEM (c-ares).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_dns_parse_srv(const uint8_t *msg, size_t len,
                              lbk_srv_record *records, size_t max, char *names,
                              size_t names_size);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_DNS_H */
