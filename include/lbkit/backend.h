/*
 * lbkit/backend.h - the backend set: the one abstraction every picker reads.
 *
 * A backend set answers "which backends exist, with what weight, and how are
 * they doing right now".  Every policy in lbkit (round-robin, ring, Maglev,
 * least-connections, ...) is built from a snapshot of one set and consults the
 * backends' live state at every pick.  Cost: add/remove O(1) amortized,
 * snapshot O(N), live-state updates one atomic each.
 *
 * Three kinds of access, three rules:
 *
 *   control plane    lbk_set_add / remove / set_weight / set_priority /
 *   (one writer)     snapshot / publish / find / iter.  One thread at a time
 *                    (the caller serialises; lbkit takes no lock).
 *
 *   live state       lbk_backend_set_health / begin / end / record_latency /
 *   (any thread)     set_ejected and their getters.  Plain atomics, lock-free,
 *                    honoured by every picker at its next pick, no rebuild.
 *
 *   data plane       lbk_set_acquire / lbk_snapshot_* / lbk_snapshot_release
 *   (any thread)     and the pick functions of every module.  Lock-free,
 *                    allocation-free, syscall-free.
 *
 * Snapshots and reclamation
 * -------------------------
 * A snapshot is an immutable, reference-counted array of (backend, weight,
 * priority, slot) taken by the writer.  Pickers are built from a snapshot and
 * keep a reference to it; a published snapshot or picker sits in a
 * publication cell:
 *
 *     writer:  snapshot -> build picker -> publish (swap cell) -> old ref drop
 *                                              |
 *     readers: acquire (ref++) ---------------'--> pick ... -> release (ref--)
 *
 * The cell holds the pointer and a 16-bit count of readers that are between
 * "read the pointer" and "took their own reference" in one 64-bit atomic
 * word (a split reference count).  The writer's swap moves that count into
 * the old object's own counter before dropping the cell's reference, so a
 * reader never touches freed memory and never waits: acquire is three atomic
 * operations, release one.  The last release frees the object, on whichever
 * thread makes it.
 *
 * Backends are reference-counted by the set and by every snapshot that lists
 * them.  A removed backend's memory and slot number stay reserved until no
 * snapshot lists it any more; only then may the writer reuse the slot (on a
 * later lbk_set_add()).  So a pick made from any snapshot - and the request
 * in flight on it - stays valid until that snapshot is released, even if the
 * backend was removed meanwhile.
 *
 * Pointers to lbk_backend are valid (a) for the writer while the backend is in
 * the set, and (b) for anyone holding a snapshot that lists it.
 */
#ifndef LBKIT_BACKEND_H
#define LBKIT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_set lbk_set;
typedef struct lbk_backend lbk_backend;
typedef struct lbk_snapshot lbk_snapshot;

/* Health as set by health checks or the caller.  Only UP takes new traffic;
 * DRAINING finishes what it has; DOWN is out.  */
typedef enum lbk_health {
    LBK_HEALTH_UP = 0,
    LBK_HEALTH_DRAINING = 1,
    LBK_HEALTH_DOWN = 2
} lbk_health;

/* Most backends one set can hold (slots are 0 .. LBK_SET_MAX - 1). */
#define LBK_SET_MAX (1u << 24)

/* Largest priority value (0 is the most preferred tier). */
#define LBK_PRIORITY_MAX 127u

/* ---- control plane (one writer) ------------------------------------- */

/*
 * lbk_set_create - a new, empty backend set.  An empty snapshot is published
 * at once, so lbk_set_acquire() always succeeds.
 * alloc: NULL for malloc/free, else copied into the set.
 * Errors: LBK_EINVAL (out NULL), LBK_ENOMEM.
 * Thread safety: safe from any thread (touches nothing shared).
 */
LBK_API int lbk_set_create(const lbk_allocator *alloc, lbk_set **out);

/*
 * lbk_set_free - drop the caller's reference.  Backends, the set's memory and
 * its published snapshot are freed when the last snapshot taken from it is
 * released; snapshots and pickers outstanding stay valid.  NULL is a no-op.
 * Thread safety: writer thread; no other set call may be running or follow.
 */
LBK_API void lbk_set_free(lbk_set *set);

/*
 * lbk_set_add - add a backend and return its slot number.
 * name: NUL-terminated, 1..LBK_NAME_MAX bytes, unique in the set; copied.
 * weight: 0 takes no new traffic.  The set's total weight stays <= UINT32_MAX.
 * user: opaque, returned by lbk_backend_user().  Priority starts at 0.
 * The lowest free slot whose previous owner no snapshot still lists is reused,
 * else a new slot is appended.
 * Errors: LBK_EINVAL (set, name or slot_out NULL; empty name), LBK_ETOOLONG
 * (name longer than LBK_NAME_MAX), LBK_EEXIST (name taken), LBK_EOVERFLOW
 * (total weight), LBK_ERANGE (LBK_SET_MAX backends), LBK_ENOMEM.
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_add(lbk_set *set, const char *name, uint32_t weight,
                        void *user, uint32_t *slot_out);

/*
 * lbk_set_remove - take the backend in slot out of the set.  Snapshots that
 * list it keep it alive (and its in-flight requests may finish) until
 * released; the slot is not reused before that.
 * Errors: LBK_EINVAL (set NULL), LBK_ENOENT (slot out of range or empty).
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_remove(lbk_set *set, uint32_t slot);

/*
 * lbk_set_set_weight - change a backend's weight (effective for pickers built
 * from later snapshots).
 * Errors: LBK_EINVAL (set NULL), LBK_ENOENT (bad slot), LBK_EOVERFLOW (the
 * total weight would exceed UINT32_MAX).
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_set_weight(lbk_set *set, uint32_t slot, uint32_t weight);

/*
 * lbk_set_set_priority - move a backend to priority tier `priority` (0 is the
 * most preferred, up to LBK_PRIORITY_MAX).  Tier-aware pickers read it from
 * snapshots.
 * Errors: LBK_EINVAL (set NULL), LBK_ENOENT (bad slot), LBK_ERANGE (priority
 * above LBK_PRIORITY_MAX).
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_set_priority(lbk_set *set, uint32_t slot,
                                 uint32_t priority);

/*
 * lbk_set_find - the slot of the backend called name.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOENT (no such name).
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_find(const lbk_set *set, const char *name,
                         uint32_t *slot_out);

/*
 * lbk_set_backend - the backend in slot, or NULL when the slot is empty, out
 * of range, or set is NULL.
 * Thread safety: writer thread only.
 */
LBK_API lbk_backend *lbk_set_backend(const lbk_set *set, uint32_t slot);

/*
 * lbk_set_iter - walk the backends in slot order.  Start with *cursor = 0;
 * each call stores the next backend in *out and returns 1, or returns 0 when
 * done.  Returns LBK_EINVAL for NULL arguments.
 * Thread safety: writer thread only; the set must not change during a walk.
 */
LBK_API int lbk_set_iter(const lbk_set *set, uint32_t *cursor,
                         lbk_backend **out);

/* lbk_set_count - number of backends in the set (0 for NULL).
 * Thread safety: writer thread only. */
LBK_API uint32_t lbk_set_count(const lbk_set *set);

/* lbk_set_total_weight - sum of the weights (0 for NULL).
 * Thread safety: writer thread only. */
LBK_API uint32_t lbk_set_total_weight(const lbk_set *set);

/*
 * lbk_set_generation - a number that changes with every add, remove, weight
 * or priority change (0 for NULL).  Snapshots record the generation they saw.
 * Thread safety: writer thread only.
 */
LBK_API uint64_t lbk_set_generation(const lbk_set *set);

/*
 * lbk_set_set_ewma_decay - time constant (ns) of every backend's latency
 * EWMA: a sample dt ns after the previous one gets weight 1 - exp(-dt/tau).
 * Default 10 s (Finagle's peak-EWMA default).
 * Errors: LBK_EINVAL (set NULL or tau_ns 0).
 * Thread safety: writer thread; takes effect for samples recorded after it.
 */
LBK_API int lbk_set_set_ewma_decay(lbk_set *set, uint64_t tau_ns);

/*
 * lbk_set_snapshot - take a new snapshot of the set as it is now: the
 * backends in slot order with their weights and priorities.  The caller owns
 * one reference; pickers are built from it.
 * Errors: LBK_EINVAL (NULL argument), LBK_ENOMEM.
 * Thread safety: writer thread only.
 */
LBK_API int lbk_set_snapshot(lbk_set *set, const lbk_snapshot **out);

/*
 * lbk_set_publish - take a snapshot and make it the one lbk_set_acquire()
 * returns.  Readers holding the previous one keep it until they release it.
 * Errors: LBK_EINVAL (set NULL), LBK_ENOMEM (nothing changed).
 * Thread safety: writer thread only; concurrent acquires are fine.
 */
LBK_API int lbk_set_publish(lbk_set *set);

/* ---- data plane (any thread) ---------------------------------------- */

/*
 * lbk_set_acquire - a reference to the most recently published snapshot.
 * Never blocks, never allocates.  Release it with lbk_snapshot_release().
 * Errors: LBK_EINVAL (NULL argument).
 * Thread safety: any thread, concurrently with the writer's publish.
 */
LBK_API int lbk_set_acquire(lbk_set *set, const lbk_snapshot **out);

/*
 * lbk_snapshot_retain - take one more reference to snap.
 * Errors: LBK_EINVAL (snap NULL).
 * Thread safety: any thread, by a caller that already holds a reference.
 */
LBK_API int lbk_snapshot_retain(const lbk_snapshot *snap);

/*
 * lbk_snapshot_release - drop one reference; the last one frees the snapshot
 * (and whatever removed backends only it still listed).  NULL is a no-op.
 * Thread safety: any thread.
 */
LBK_API void lbk_snapshot_release(const lbk_snapshot *snap);

/* Number of backends listed (0 for NULL).  Thread safety: any thread. */
LBK_API uint32_t lbk_snapshot_count(const lbk_snapshot *snap);

/* The i-th backend (slot order), NULL when i is out of range.
 * Thread safety: any thread. */
LBK_API lbk_backend *lbk_snapshot_backend(const lbk_snapshot *snap, uint32_t i);

/* The i-th backend's weight when the snapshot was taken (0 if out of range).
 * Thread safety: any thread. */
LBK_API uint32_t lbk_snapshot_weight(const lbk_snapshot *snap, uint32_t i);

/* The i-th backend's priority when the snapshot was taken (0 if out of
 * range).  Thread safety: any thread. */
LBK_API uint32_t lbk_snapshot_priority(const lbk_snapshot *snap, uint32_t i);

/* Sum of weights in the snapshot (0 for NULL).  Thread safety: any thread. */
LBK_API uint32_t lbk_snapshot_total_weight(const lbk_snapshot *snap);

/* The set generation the snapshot saw (0 for NULL).
 * Thread safety: any thread. */
LBK_API uint64_t lbk_snapshot_generation(const lbk_snapshot *snap);

/* ---- a backend's identity (immutable while the pointer is valid) ----- */

/* Name as added (NULL for NULL).  Thread safety: any thread. */
LBK_API const char *lbk_backend_name(const lbk_backend *b);
/* Length of the name in bytes (0 for NULL).  Thread safety: any thread. */
LBK_API size_t lbk_backend_name_len(const lbk_backend *b);
/* Slot number (UINT32_MAX for NULL).  Thread safety: any thread. */
LBK_API uint32_t lbk_backend_slot(const lbk_backend *b);
/* User pointer given to lbk_set_add (NULL for NULL).
 * Thread safety: any thread. */
LBK_API void *lbk_backend_user(const lbk_backend *b);
/* Current weight in the set (the writer's view; 0 for NULL).
 * Thread safety: any thread (relaxed read). */
LBK_API uint32_t lbk_backend_weight(const lbk_backend *b);

/* ---- live state (any thread, atomics) -------------------------------- */

/*
 * lbk_backend_set_health - set health; honoured by every picker at its next
 * pick.  Errors: LBK_EINVAL (b NULL or h not a lbk_health value).
 * Thread safety: any thread.
 */
LBK_API int lbk_backend_set_health(lbk_backend *b, lbk_health h);

/* Current health (LBK_HEALTH_DOWN for NULL).  Thread safety: any thread. */
LBK_API lbk_health lbk_backend_health(const lbk_backend *b);

/*
 * lbk_backend_set_ejected - set or clear the outlier-ejection flag, kept
 * apart from health so the two compose: a backend takes traffic only when it
 * is UP and not ejected.  Errors: LBK_EINVAL (b NULL).
 * Thread safety: any thread.
 */
LBK_API int lbk_backend_set_ejected(lbk_backend *b, bool ejected);

/* Whether the ejection flag is set (false for NULL).
 * Thread safety: any thread. */
LBK_API bool lbk_backend_ejected(const lbk_backend *b);

/* Whether the backend may take new traffic: UP and not ejected (false for
 * NULL).  Weight is the picker's business.  Thread safety: any thread. */
LBK_API bool lbk_backend_eligible(const lbk_backend *b);

/*
 * lbk_backend_begin - count one more request in flight.
 * Errors: LBK_EINVAL (b NULL), LBK_EOVERFLOW (UINT32_MAX in flight; nothing
 * changed).  Thread safety: any thread.
 */
LBK_API int lbk_backend_begin(lbk_backend *b);

/*
 * lbk_backend_end - count one request finished.
 * Errors: LBK_EINVAL (b NULL), LBK_ESTATE (nothing in flight; the count stays
 * 0).  Thread safety: any thread.
 */
LBK_API int lbk_backend_end(lbk_backend *b);

/* Requests in flight (0 for NULL).  Thread safety: any thread. */
LBK_API uint32_t lbk_backend_in_flight(const lbk_backend *b);

/*
 * lbk_backend_record_latency - fold one latency sample into the backend's
 * peak-EWMA: a sample above the current value replaces it at once (peak);
 * otherwise it is blended with weight 1 - exp(-(now - last)/tau).  The first
 * sample sets the value.  Time going backwards counts as dt = 0.
 * Concurrent samples are merged lock-free; none is lost to a torn write.
 * Errors: LBK_EINVAL (b NULL).
 * Thread safety: any thread.
 */
LBK_API int lbk_backend_record_latency(lbk_backend *b, uint64_t latency_ns,
                                       uint64_t now_ns);

/*
 * lbk_backend_latency_ewma - the EWMA in ns, or 0 when no sample was ever
 * recorded (check lbk_backend_latency_samples()).
 * Thread safety: any thread.
 */
LBK_API double lbk_backend_latency_ewma(const lbk_backend *b);

/* Number of latency samples recorded (saturates at UINT32_MAX; 0 for NULL).
 * Thread safety: any thread. */
LBK_API uint32_t lbk_backend_latency_samples(const lbk_backend *b);

/*
 * lbk_backend_set_weight_scale - scale the backend's effective weight by
 * factor in [0, 1] (1 = full weight, the default), as slow start does while
 * a new or recovering backend warms up.  Weight-aware pickers honour it at
 * their next pick without a rebuild (each picker's header says how).  The
 * factor is stored in steps of 1/65536.
 * Errors: LBK_EINVAL (b NULL, factor outside [0, 1] or NaN).
 * Thread safety: any thread.
 */
LBK_API int lbk_backend_set_weight_scale(lbk_backend *b, double factor);

/* The current weight scale in [0, 1] (0 for NULL).
 * Thread safety: any thread. */
LBK_API double lbk_backend_weight_scale(const lbk_backend *b);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_BACKEND_H */
