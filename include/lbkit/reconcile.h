/*
 * lbkit/reconcile.h - keep a backend set in sync with a discovery source.
 *
 * Answers "the registry now says these instances exist: what must change in
 * my backend set?".  A reconciler owns the membership of the backends it
 * added to one lbk_set: each time a source (DNS, etcd, a file, your own
 * control plane) reports its full list of instances, lbk_reconciler_apply()
 * validates the list, computes the minimal add / remove / re-weight /
 * re-prioritise against the set, applies it and publishes once, then reports
 * each change.  When the source fails or sends garbage, the last good answer
 * stays (a set is never emptied by a fault) until an optional stale limit
 * passes on the caller's clock.  Use it for every source; use lbk_set_add()
 * directly only for static configurations.
 * Cost: apply O(n + m) for n reported and m managed instances (hash lookups)
 * plus the set's own publish O(N); memory about 64 bytes + the strings per
 * managed instance.
 *
 * Identity and endpoints.  An instance's name is its identity in the set
 * (the backend name pickers hash); without a name it is "address:port"
 * ("[address]:port" for an IPv6 literal).  Every backend the reconciler adds
 * carries as user pointer (lbk_backend_user) a const lbk_endpoint * with the
 * name, address and port, valid as long as the backend pointer is, provided
 * the reconciler is still alive.  A change of address or port is a remove
 * plus an add (a new backend); a change of weight or priority keeps the
 * backend and its live state.
 *
 * In-flight requests.  Removing a backend never invalidates it for readers:
 * a snapshot that lists it (and a request in flight on it) keeps it and its
 * endpoint alive until released (backend.h's rule; the reconciler holds its
 * endpoint record until no snapshot lists the backend).
 *
 * Ownership rules: the reconciler is the set's control-plane writer while it
 * lives (other writers may add backends under other names; those are left
 * alone, and a reported name equal to one of them is LBK_EEXIST).  Free the
 * reconciler before the set, after readers have released the snapshots.
 */
#ifndef LBKIT_RECONCILE_H
#define LBKIT_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_reconciler lbk_reconciler;

/* Longest address (host name or IP literal), bytes without the NUL. */
#define LBK_ADDRESS_MAX 253u

/* Most instances one report may list. */
#define LBK_RECONCILE_MAX_INSTANCES (1u << 20)

/* One instance as a source reports it.  Strings are copied. */
typedef struct lbk_instance {
    const char *name;    /* identity; NULL or "" = "address:port" */
    const char *address; /* IP literal or host name, 1..LBK_ADDRESS_MAX */
    uint16_t port;       /* 1..65535 */
    uint32_t weight;     /* 0 = takes no new traffic */
    uint32_t priority;   /* tier, 0..LBK_PRIORITY_MAX */
} lbk_instance;

/* The user pointer of every backend the reconciler added. */
typedef struct lbk_endpoint {
    const char *name;
    const char *address;
    uint16_t port;
} lbk_endpoint;

typedef enum lbk_change_kind {
    LBK_CHANGE_ADD = 1,
    LBK_CHANGE_REMOVE = 2,
    LBK_CHANGE_WEIGHT = 3,  /* weight changed (priority may also have) */
    LBK_CHANGE_PRIORITY = 4 /* only the priority changed */
} lbk_change_kind;

/* One change, reported after the set was published. */
typedef struct lbk_change {
    lbk_change_kind kind;
    const char *name;    /* valid during the callback only */
    const char *address; /* valid during the callback only */
    uint16_t port;
    uint32_t weight, priority;         /* new values (old for REMOVE) */
    uint32_t old_weight, old_priority; /* before (= new for ADD) */
} lbk_change;

typedef void (*lbk_change_fn)(void *user, const lbk_change *change);

/* What one apply (or an expiry) changed. */
typedef struct lbk_reconcile_stats {
    uint32_t added, removed, reweighted, reprioritised, unchanged;
} lbk_reconcile_stats;

typedef struct lbk_reconcile_options {
    /* How long (caller's clock, ns) the last good answer survives a failing
     * source; once passed, lbk_reconciler_fail() removes every managed
     * backend.  0 (default) keeps it forever. */
    uint64_t stale_limit_ns;
    /* Treat a report with no instances as a source failure (default true):
     * registries answer "nothing" far more often by fault than by truth. */
    bool empty_is_failure;
    /* Called once per change after each successful publish (may be NULL). */
    lbk_change_fn on_change;
    void *user;
} lbk_reconcile_options;

/* The reconciler's view of its source. */
typedef struct lbk_reconcile_status {
    uint32_t managed;      /* backends the reconciler owns in the set */
    uint32_t failures;     /* consecutive failures since the last good */
    int last_error;        /* of the last failure (0 if none yet) */
    bool have_good;        /* a good answer was applied at least once */
    bool stale;            /* the stale limit passed and was applied */
    uint64_t last_good_ns; /* caller's clock at the last good answer */
    uint64_t applies, publishes;
} lbk_reconcile_status;

/*
 * lbk_reconcile_options_init - defaults: no stale limit, empty answers are
 * failures, no callback.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_reconcile_options_init(lbk_reconcile_options *opts);

/*
 * lbk_reconcile_validate - check a report without touching anything:
 * instances NULL with n > 0, a NULL or empty address, port 0, an address
 * longer than LBK_ADDRESS_MAX, a name (given or derived) longer than
 * LBK_NAME_MAX, priority above LBK_PRIORITY_MAX, two instances with one
 * name, or a total weight above UINT32_MAX.
 * alloc: for the duplicate check's scratch table (NULL for malloc/free).
 * Returns 0 or the error of the first bad instance; when bad_index is not
 * NULL it receives that index (untouched on success).
 * Errors: LBK_EINVAL (NULL array, invalid allocator, NULL/empty address,
 * port 0), LBK_ETOOLONG
 * (name or address too long), LBK_ERANGE (priority, n above
 * LBK_RECONCILE_MAX_INSTANCES), LBK_EEXIST (duplicate name), LBK_EOVERFLOW
 * (total weight), LBK_ENOMEM (the duplicate check's scratch table).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_reconcile_validate(const lbk_instance *instances, size_t n,
                                   const lbk_allocator *alloc,
                                   size_t *bad_index);

/*
 * lbk_reconciler_create - a reconciler managing backends of set.
 * opts: NULL for the defaults (copied).  alloc: NULL for malloc/free.
 * Errors: LBK_EINVAL (set or out NULL, invalid allocator), LBK_ENOMEM.
 * Thread safety: the set's writer thread.
 */
LBK_API int lbk_reconciler_create(lbk_set *set,
                                  const lbk_reconcile_options *opts,
                                  const lbk_allocator *alloc,
                                  lbk_reconciler **out);

/*
 * lbk_reconciler_free - free the reconciler and every endpoint record.  The
 * backends it added stay in the set, but their user pointers dangle from now
 * on: free the set next, or remove them first by applying an empty report
 * with empty_is_failure false.  Call it after readers released the
 * snapshots that list its backends.  NULL is a no-op.
 * Thread safety: the set's writer thread.
 */
LBK_API void lbk_reconciler_free(lbk_reconciler *r);

/*
 * lbk_reconciler_apply - make the managed backends equal to instances[0..n)
 * and publish the set once (only if something changed), then call on_change
 * for each change (removes, then re-weights, then adds).  A report that fails
 * validation, or is empty while empty_is_failure, counts as a source failure
 * (as lbk_reconciler_fail with that error) and changes nothing.
 * now_ns: the caller's monotonic clock, for the stale limit.
 * stats_out: may be NULL; receives the counts on success.
 * Errors: those of lbk_reconcile_validate; LBK_ENOENT (empty report while
 * empty_is_failure); LBK_EINVAL (r NULL); LBK_EEXIST (a reported name
 * belongs to a backend this reconciler did not add); LBK_ERANGE (the set is
 * full); LBK_ENOMEM.  On LBK_ENOMEM from the set's own allocator midway the
 * steps done are rolled back before returning (if the rollback itself runs
 * out of memory the set may hold part of the change, unpublished; the next
 * apply converges it, since the diff is always taken against the set).
 * Thread safety: the set's writer thread only.
 */
LBK_API int lbk_reconciler_apply(lbk_reconciler *r,
                                 const lbk_instance *instances, size_t n,
                                 uint64_t now_ns,
                                 lbk_reconcile_stats *stats_out);

/*
 * lbk_reconciler_fail - tell the reconciler its source failed (error is the
 * source's LBK_E* code, kept for status).  The managed backends stay, unless
 * a stale limit is set, a good answer was applied before, and now_ns -
 * last_good_ns >= stale_limit_ns: then every managed backend is removed and
 * the set published once (reported through on_change), and 1 is returned.
 * Returns 0 when nothing changed.
 * stats_out: may be NULL; receives what the expiry removed.
 * Errors: LBK_EINVAL (r NULL, error >= 0), LBK_ENOMEM (the expiry could not
 * be applied; nothing changed, retried at the next call).
 * Thread safety: the set's writer thread only.
 */
LBK_API int lbk_reconciler_fail(lbk_reconciler *r, int error, uint64_t now_ns,
                                lbk_reconcile_stats *stats_out);

/*
 * lbk_reconciler_status - the reconciler's counters and source state.
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: the set's writer thread.
 */
LBK_API int lbk_reconciler_status(const lbk_reconciler *r,
                                  lbk_reconcile_status *out);

/*
 * lbk_reconciler_set - the set the reconciler manages (NULL for NULL).
 * Thread safety: any thread.
 */
LBK_API lbk_set *lbk_reconciler_set(const lbk_reconciler *r);

/*
 * lbk_instance_format_name - the default name of an instance without one:
 * "address:port", or "[address]:port" when address contains ':'.
 * buf, size: output buffer (NUL-terminated on success).
 * Errors: LBK_EINVAL (inst, its address or buf NULL), LBK_ETOOLONG (does
 * not fit in size bytes or exceeds LBK_NAME_MAX).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_instance_format_name(const lbk_instance *inst, char *buf,
                                     size_t size);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_RECONCILE_H */
