/*
 * lbkit/etcd.h - an etcd v3 registry: register instances, watch a prefix
 * (optional adapter).
 *
 * Answers "which instances are registered under /services/web/ right now?"
 * from etcd, the replicated key-value store under Kubernetes.  Instances
 * register one key each under a prefix, attached to a lease they keep alive
 * (lbk_etcd_register / lbk_etcd_keepalive); when an instance dies its lease
 * lapses and etcd deletes the key.  A watcher (lbk_etcd_create) lists the
 * prefix once, then follows it with a watch stream from the next revision,
 * and hands the full current list to a reconciler (reconcile.h) after each
 * change.  If the stream breaks (etcd restarts, network), the watcher keeps
 * the last good set, reports the failure to the reconciler, backs off, and
 * resumes the watch from the last revision it saw, so no change is lost or
 * applied twice; if that revision was compacted away it lists again.
 * Use it when the registry is etcd; use dns.h for DNS-based registries.
 * Built only when libcurl and json-c are found (meson feature "etcd").
 * Talks to etcd 3.4's JSON gateway over HTTP (/v3/kv/range, /v3/watch,
 * /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/kv/put; keys
 * and values base64 in JSON) with libcurl and json-c.
 * Cost: one HTTP request per list, one long-lived stream for the watch;
 * O(keys) memory; each change re-applies the list, O(keys).
 *
 * The value of each key is a JSON object:
 *
 *     {"name": "web-1", "address": "10.0.0.1", "port": 8080,
 *      "weight": 10, "priority": 0}
 *
 *   name      optional string: the backend name; default the key without
 *             the prefix ("/services/web/a" -> "a")
 *   address   string, IP literal or host name (1..LBK_ADDRESS_MAX bytes)
 *   port      integer 1..65535
 *   weight    integer 0..4294967295 (0 = no new traffic)
 *   priority  integer 0..LBK_PRIORITY_MAX (tier; 0 preferred)
 *
 * A value that is not JSON or misses a field is refused with a clear error
 * (lbk_etcd_info.last_error names the key) and changes nothing: a new key is
 * left out, an existing key keeps its last good value.
 */
#ifndef LBKIT_ETCD_H
#define LBKIT_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reconcile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_etcd lbk_etcd;
typedef struct lbk_etcd_lease lbk_etcd_lease;

/* Longest etcd endpoint URL and key prefix accepted, bytes. */
#define LBK_ETCD_URL_MAX 512u
#define LBK_ETCD_KEY_MAX 1024u

typedef struct lbk_etcd_options {
    /* Timeout of each plain request (list, grant, put, keepalive), ms.
     * Default 5000.  The watch stream itself has no timeout. */
    uint32_t request_timeout_ms;
    /* Retry delay after a failure: doubles from initial to max.
     * Defaults 200 ms and 10 s. */
    uint64_t backoff_initial_ns, backoff_max_ns;
} lbk_etcd_options;

/* One parsed value, with its strings. */
typedef struct lbk_etcd_instance {
    lbk_instance inst; /* name and address point into the buffers below */
    char name[LBK_NAME_MAX + 1];
    char address[LBK_ADDRESS_MAX + 1];
} lbk_etcd_instance;

/* A socket to watch (from curl). */
typedef struct lbk_etcd_fd {
    int fd;
    bool read, write;
} lbk_etcd_fd;

typedef struct lbk_etcd_info {
    uint64_t revision;    /* last etcd revision seen for the prefix */
    uint32_t keys;        /* keys with a good value */
    uint32_t bad_values;  /* values refused so far */
    uint64_t lists;       /* full listings done */
    uint64_t watches;     /* watch streams established */
    uint64_t events;      /* watch events handled */
    uint64_t failures;    /* failed requests / broken streams */
    int last_result;      /* of the last apply or failure (0 = good) */
    char last_error[200]; /* detail of the last failure or refused value */
    bool watching;        /* a watch stream is established now */
} lbk_etcd_info;

/*
 * lbk_etcd_options_init - the defaults above.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_etcd_options_init(lbk_etcd_options *opts);

/*
 * lbk_etcd_parse_instance - parse one key's value (the JSON object above).
 * json, len: the value bytes (need not be NUL-terminated).  default_name:
 * used when the object has no "name" (may be NULL: then name is required).
 * out: filled on success (out->inst points into out's buffers).
 * Errors: LBK_EINVAL (json or out NULL), LBK_EPARSE (not JSON, not an
 * object, a field missing or of the wrong type), LBK_ERANGE (port, weight
 * or priority out of range), LBK_ETOOLONG (name or address too long, or
 * empty), LBK_ENOMEM (json-c).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_etcd_parse_instance(const char *json, size_t len,
                                    const char *default_name,
                                    lbk_etcd_instance *out);

/*
 * lbk_etcd_format_instance - the JSON value for inst (name included when
 * set), NUL-terminated in out (size bytes).  Returns the length.
 * Errors: LBK_EINVAL (inst, its address or buf NULL), LBK_ETOOLONG (does
 * not fit in size bytes), LBK_ENOMEM (json-c).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_etcd_format_instance(const lbk_instance *inst, char *out,
                                     size_t size);

/*
 * lbk_etcd_create - a watcher of prefix on etcd at endpoint (e.g.
 * "http://127.0.0.1:2379"), feeding rec.  Nothing is sent before the first
 * lbk_etcd_process() or lbk_etcd_run().
 * endpoint, prefix: copied; prefix non-empty.  rec: outlives the watcher.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free.
 * Errors: LBK_EINVAL (NULL argument, empty prefix, invalid allocator or
 * options), LBK_ETOOLONG (endpoint or prefix too long), LBK_EIO (curl could
 * not be set up), LBK_ENOMEM.
 * Thread safety: any thread; the watcher then belongs to one thread (the
 * one that drives rec's set).  curl_global_init must have been called
 * first if the program has other threads (curl's rule).
 */
LBK_API int lbk_etcd_create(const char *endpoint, const char *prefix,
                            lbk_reconciler *rec, const lbk_etcd_options *opts,
                            const lbk_allocator *alloc, lbk_etcd **out);

/*
 * lbk_etcd_free - close the stream and free the watcher (the set and the
 * reconciler are untouched).  NULL is a no-op.
 * Thread safety: the watcher's thread.
 */
LBK_API void lbk_etcd_free(lbk_etcd *w);

/*
 * lbk_etcd_fds - the sockets curl wants watched now.  Returns the number
 * written to out (at most max).
 * Errors: LBK_EINVAL (w NULL, or out NULL with max > 0).
 * Thread safety: the watcher's thread.
 */
LBK_API int lbk_etcd_fds(lbk_etcd *w, lbk_etcd_fd *out, size_t max);

/*
 * lbk_etcd_timeout - the longest the caller may wait before the next
 * lbk_etcd_process() (0 when something is due).
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: the watcher's thread.
 */
LBK_API int lbk_etcd_timeout(lbk_etcd *w, uint64_t now_ns, uint64_t *wait_ns);

/*
 * lbk_etcd_process - move every transfer along (curl_multi_perform), handle
 * a finished listing or arriving watch events (applying the new list to the
 * reconciler), notice a broken stream (reporting the failure), and start
 * the next request when its time has come.  Returns the number of applies
 * made in this call (0 or more).
 * Errors: LBK_EINVAL (w NULL), LBK_ENOMEM (retried at the next call).
 * Thread safety: the watcher's thread.
 */
LBK_API int lbk_etcd_process(lbk_etcd *w, uint64_t now_ns);

/*
 * lbk_etcd_run - blocking convenience: drive the watcher for timeout_ns
 * (polling curl's sockets, CLOCK_MONOTONIC), returning early once stop(user)
 * returns true after an apply (stop may be NULL: run the whole time).
 * Returns 1 when stopped early, 0 at the timeout.
 * Errors: LBK_EINVAL (w NULL), LBK_ENOMEM.
 * Thread safety: the watcher's thread.
 */
LBK_API int lbk_etcd_run(lbk_etcd *w, uint64_t timeout_ns,
                         bool (*stop)(void *user), void *user);

/*
 * lbk_etcd_status - counters and the last outcome.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: the watcher's thread.
 */
LBK_API int lbk_etcd_status(const lbk_etcd *w, lbk_etcd_info *out);

/*
 * lbk_etcd_register - register inst at key (full key, e.g.
 * "/services/web/a"): grant a lease of ttl_s seconds and put the JSON value
 * with it.  Blocking (request_timeout_ms per request).  Keep the lease
 * alive with lbk_etcd_keepalive() well within ttl_s (e.g. every ttl_s / 3).
 * Errors: LBK_EINVAL (NULL argument, ttl_s 0, invalid allocator), LBK_ETOOLONG
 * (endpoint or key too long), those of lbk_reconcile_validate for inst,
 * LBK_EIO (etcd unreachable or refused), LBK_ETIMEDOUT, LBK_EPARSE (an
 * answer not understood), LBK_ENOMEM.
 * Thread safety: any thread; the lease then belongs to one thread.
 */
LBK_API int lbk_etcd_register(const char *endpoint, const char *key,
                              const lbk_instance *inst, uint32_t ttl_s,
                              const lbk_etcd_options *opts,
                              const lbk_allocator *alloc, lbk_etcd_lease **out);

/*
 * lbk_etcd_keepalive - refresh the lease once (blocking).
 * Errors: LBK_EINVAL (l NULL), LBK_ENOENT (the lease expired: register
 * again), LBK_EIO, LBK_ETIMEDOUT, LBK_EPARSE.
 * Thread safety: the lease's thread.
 */
LBK_API int lbk_etcd_keepalive(lbk_etcd_lease *l);

/*
 * lbk_etcd_revoke - revoke the lease now (etcd deletes the key at once).
 * Errors: LBK_EINVAL (l NULL), LBK_EIO, LBK_ETIMEDOUT, LBK_EPARSE.
 * Thread safety: the lease's thread.
 */
LBK_API int lbk_etcd_revoke(lbk_etcd_lease *l);

/*
 * lbk_etcd_lease_id - the lease's etcd ID (0 for NULL).
 * Thread safety: any thread.
 */
LBK_API int64_t lbk_etcd_lease_id(const lbk_etcd_lease *l);

/*
 * lbk_etcd_lease_free - forget the lease without revoking it (it lapses
 * after its TTL unless kept alive elsewhere).  NULL is a no-op.
 * Thread safety: the lease's thread.
 */
LBK_API void lbk_etcd_lease_free(lbk_etcd_lease *l);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_ETCD_H */
