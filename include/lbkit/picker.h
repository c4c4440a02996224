/*
 * lbkit/picker.h - one entry point for every request policy.
 *
 * Answers "how does a proxy use lbkit's request pickers without knowing
 * which one is configured": a long-lived lbk_picker bound to a backend set,
 * created from a policy name and options, with one pick function and one
 * release function whatever the policy.  Choose it over the per-policy
 * headers (rr.h, wrr.h, random.h, leastconn.h, p2c.h) when the policy comes
 * from configuration, or when you want begin/end accounting, latency
 * reporting and safe replacement on rebuild done for you; use a per-policy
 * object directly when you manage snapshots yourself.  Cost: a pick is the
 * policy's pick plus an acquire of the current policy object (three atomic
 * operations) and a begin (one atomic); a release is an end, an optional
 * latency sample and one atomic decrement; rebuild is a snapshot plus the
 * policy's build; memory is the policy object's plus about 200 bytes.
 *
 *     writer:  lbk_picker_create ... lbk_set_add/remove/set_weight ...
 *              lbk_picker_rebuild (snapshot, build, publish) ...
 *     readers: lbk_picker_pick -> use pick.backend -> lbk_picker_release
 *
 * A pick holds a reference to the policy object it came from, and through
 * it to that object's snapshot, so the backend it names stays valid - even
 * if the writer removes it and rebuilds meanwhile - until the pick is
 * released.  Readers of an old object keep it until their release; the last
 * release frees it.
 *
 * Policies, by name (lbk_policy_from_name, lbk_policy_name):
 *
 *   "round_robin"            rr.h, by turn
 *   "weighted_round_robin"   wrr.h, smooth and exact per cycle
 *   "random"                 random.h, weighted random (alias method)
 *   "least_conn"             leastconn.h, fewest in flight per weight
 *   "p2c"                    p2c.h, least request of d random choices
 *   "p2c_peak_ewma"          p2c.h, least peak-EWMA latency x load of d
 *   "ucb1"                   bandit.h, UCB1 over success and latency
 *   "thompson"               bandit.h, Thompson sampling (Beta on success)
 *
 * The bandits learn only from outcomes: pass an lbk_outcome to
 * lbk_picker_release() (success, and latency or completion time).
 * Every policy counts the request in flight at pick (lbk_backend_begin, or
 * the least-connections picker's own accounting) and finished at release.
 */
#ifndef LBKIT_PICKER_H
#define LBKIT_PICKER_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_picker lbk_picker;

/* The policies.  Values are fixed; new policies are appended. */
typedef enum lbk_policy {
    LBK_POLICY_ROUND_ROBIN = 0,
    LBK_POLICY_WEIGHTED_ROUND_ROBIN = 1,
    LBK_POLICY_RANDOM = 2,
    LBK_POLICY_LEAST_CONN = 3,
    LBK_POLICY_P2C = 4,
    LBK_POLICY_P2C_PEAK_EWMA = 5,
    LBK_POLICY_UCB1 = 6,    /* bandit.h, UCB1 on success and latency */
    LBK_POLICY_THOMPSON = 7 /* bandit.h, Thompson sampling on success */
} lbk_policy;

typedef struct lbk_picker_options {
    /* Policy name (see above); NULL means "round_robin".  Only read by
     * lbk_picker_create. */
    const char *policy;
    /* Seed for every build; 0 draws a new one per build.  With a seed,
     * rebuild k uses a seed derived from (seed, k): reproducible, and not
     * the same starting point after every rebuild. */
    uint64_t seed;
    /* p2c and p2c_peak_ewma: candidates per pick (0 = the default, 2),
     * least-request bias (default 1.0), sampling with replacement (default
     * false), EWMA decay for peak-EWMA (0 = the p2c default). */
    uint32_t choices;
    double bias;
    bool with_replacement;
    uint64_t decay_ns;
    /* weighted_round_robin: rotate each cycle (default true) and the
     * largest total weight served from a table (wrr.h; default
     * LBK_WRR_TABLE_DEFAULT). */
    bool random_phase;
    uint32_t table_max;
    /* round_robin and weighted_round_robin: a distinct turn for every pick
     * even when picks overlap, at the price of an atomic add (rr.h;
     * default false). */
    bool exact_turns;
    /* Panic threshold in [0, 1]; 0 (the default) turns panic off.  Envoy's
     * default is 0.5.  While fewer than threshold x (backends of non-zero
     * weight) are eligible, every pick ignores health and ejection and
     * draws among all backends of non-zero weight in proportion to weight,
     * so the few healthy ones are not overloaded (Envoy's panic mode).  The
     * verdict is taken at every rebuild and by lbk_picker_refresh_panic();
     * a pick that finds nothing eligible uses the panic draw at once.  The
     * panic draw is O(N); the normal path costs one flag load. */
    double panic_threshold;
} lbk_picker_options;

/*
 * A pick: filled by lbk_picker_pick, handed back to lbk_picker_release.
 * Caller-owned (on the stack, in a request struct); read backend through
 * lbk_pick_backend() or the field, and lbk_backend_name/slot/user on it.
 * The fields ending in _ are private.
 */
typedef struct lbk_pick {
    lbk_backend *backend; /* the chosen backend; NULL once released */
    uint64_t start_ns;    /* now_ns given to the pick */
    void *held_;          /* the policy object this pick holds */
    const lbk_picker *owner_;
    const void *panic_held_; /* the snapshot a panic draw holds, or NULL */
} lbk_pick;

/*
 * What happened to a picked request, for lbk_picker_release.  Latency goes
 * into the backend's peak-EWMA (lbk_backend_record_latency) when known:
 * latency_ns if not 0, else now_ns - pick.start_ns if now_ns is later than
 * start_ns; with both 0 nothing is recorded.  success is for policies that
 * learn from outcomes (it is not used by the policies above).
 */
typedef struct lbk_outcome {
    bool success;
    uint64_t latency_ns;
    uint64_t now_ns; /* completion time; 0 = start_ns + latency_ns */
} lbk_outcome;

/*
 * lbk_policy_from_name - the policy called name.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (no such policy).
 * Thread safety: safe from any thread.
 */
LBK_API int lbk_policy_from_name(const char *name, lbk_policy *out);

/*
 * lbk_policy_name - the name of policy p, or NULL if p is not a policy.
 * Enumerate with p = 0 .. lbk_policy_count() - 1.
 * Thread safety: safe from any thread.
 */
LBK_API const char *lbk_policy_name(lbk_policy p);

/*
 * lbk_policy_count - number of policies (valid values are 0 .. count-1).
 * Thread safety: safe from any thread.
 */
LBK_API uint32_t lbk_policy_count(void);

/*
 * lbk_policy_available - whether policy p is compiled into this library
 * (false for values that are not policies).
 * Thread safety: safe from any thread.
 */
LBK_API bool lbk_policy_available(lbk_policy p);

/*
 * lbk_picker_options_init - the defaults: policy NULL ("round_robin"),
 * seed 0, choices 0, bias 1.0, with_replacement false, decay_ns 0,
 * random_phase true, table_max LBK_WRR_TABLE_DEFAULT, exact_turns false.
 * NULL is a no-op.
 * Thread safety: safe from any thread on distinct opts.
 */
LBK_API void lbk_picker_options_init(lbk_picker_options *opts);

/*
 * lbk_picker_create - a picker over set with the policy opts names, built
 * from a snapshot of set as it is now.
 * set: the backend set; it must outlive the picker.  opts: NULL for the
 * defaults (round-robin).  alloc: NULL for malloc/free, else copied (the
 * set's allocator is used for snapshots).  out: the new picker.
 * Errors: LBK_EINVAL (set or out NULL, allocator half set), LBK_ENOENT (unknown
 * policy name), LBK_ENOTSUP (the policy is not compiled in), LBK_ERANGE
 * (choices above LBK_P2C_MAX_CHOICES, bias negative or not finite, table_max
 * above LBK_WRR_TABLE_LIMIT), LBK_ENOMEM. Thread safety: the set's writer
 * thread.
 */
LBK_API int lbk_picker_create(lbk_set *set, const lbk_picker_options *opts,
                              const lbk_allocator *alloc, lbk_picker **out);

/*
 * lbk_picker_rebuild - take a new snapshot of the set, build the policy
 * object from it and publish it; picks from now on use it, picks in
 * progress keep the old one until released.  Call it after adding,
 * removing or re-weighting backends (health needs no rebuild).
 * Errors: LBK_EINVAL (picker NULL), LBK_ENOMEM (the old object stays).
 * Thread safety: the set's writer thread; concurrent picks and releases
 * are fine.
 */
LBK_API int lbk_picker_rebuild(lbk_picker *picker);

/*
 * lbk_picker_pick - choose a backend by the policy and count the request in
 * flight on it.  now_ns: the caller's monotonic clock (used by
 * p2c_peak_ewma, and as the start of the request's latency).  pick:
 * caller-owned, filled on success; hand it to lbk_picker_release exactly
 * once.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOBACKEND (nothing eligible),
 * LBK_EOVERFLOW (the chosen backend has UINT32_MAX requests in flight).
 * On error *pick is not written and nothing is held.
 * Thread safety: any number of threads at once, alongside the writer's
 * rebuild; lock-free, no allocation.
 */
LBK_API int lbk_picker_pick(lbk_picker *picker, uint64_t now_ns,
                            lbk_pick *pick);

/*
 * lbk_picker_release - end a picked request: count it finished, record its
 * latency if outcome gives one (see lbk_outcome), and drop the pick's
 * reference.  outcome may be NULL (nothing reported).  Afterwards
 * pick->backend is NULL.
 * Errors: LBK_EINVAL (picker or pick NULL, or pick made by another
 * picker; nothing changed), LBK_ESTATE (pick not held: never filled or
 * already released; nothing changed.  Also returned, after the pick has
 * been released normally, when the backend's in-flight count was already
 * 0 because the request was ended by other means).
 * Thread safety: any thread (not necessarily the picking one), any number
 * at once.
 */
LBK_API int lbk_picker_release(lbk_picker *picker, lbk_pick *pick,
                               const lbk_outcome *outcome);

/*
 * lbk_picker_free - free the picker.  Call it after every pick made through
 * it was released; policy objects still referenced by such picks would
 * stay alive, but releasing them needs the picker.  NULL is a no-op.
 * Thread safety: the set's writer thread, with no pick or release running.
 */
LBK_API void lbk_picker_free(lbk_picker *picker);

/*
 * lbk_picker_policy - the picker's policy (LBK_POLICY_ROUND_ROBIN for NULL).
 * Thread safety: any thread.
 */
LBK_API lbk_policy lbk_picker_policy(const lbk_picker *picker);

/*
 * lbk_pick_backend - the backend a pick holds, NULL if it holds none.
 * Thread safety: any thread.
 */
LBK_API lbk_backend *lbk_pick_backend(const lbk_pick *pick);

/*
 * lbk_picker_refresh_panic - re-take the panic verdict from the live state
 * of the picker's current backends (O(N) atomic loads): panic is active
 * when panic_threshold > 0 and fewer than panic_threshold x (backends of
 * non-zero weight) are eligible.  Call it after health checks or ejection
 * change health; rebuilds take the verdict too.  active_out may be NULL.
 * Errors: LBK_EINVAL (picker NULL).
 * Thread safety: any thread, concurrently with picks and rebuilds.
 */
LBK_API int lbk_picker_refresh_panic(lbk_picker *picker, bool *active_out);

/* Whether panic mode is active (false for NULL or when it is off).
 * Thread safety: any thread. */
LBK_API bool lbk_picker_panic_active(const lbk_picker *picker);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_PICKER_H */
