/*
 * lbkit/bounded.h - consistent hashing with bounded loads (Mirrokni, Thorup
 * and Zadimoghaddam, SODA 2018): which backend should serve this key, given
 * that no backend may carry more than its fair share of what is in flight.
 *
 * Over a consistent-hash ring (ring.h), each backend may carry at most
 * capacity = ceil(c * m / n) requests, where m is the number of requests in
 * flight (counting the one being placed), n the number of backends sharing
 * them and c >= 1 the balance factor.  A request goes to the first backend
 * clockwise from its key that is eligible and below capacity; a key keeps
 * its home backend while that backend is not overloaded, so most keys still
 * hit a warm cache.  Choose it over the plain ring when hot keys would
 * otherwise overload one backend (HAProxy's and Envoy's
 * "hash-balance-factor"); over least-connections or P2C when key affinity
 * still matters.  Cost: acquire O(1) expected (a ring lookup, one
 * compare-and-swap; a few more steps past full backends, O(P) worst case),
 * release O(log N); build as the ring, plus 4 bytes per backend.
 *
 * The balance factor is given as HAProxy and Envoy give it, in percent:
 * 125 means c = 1.25 (each backend up to 25% above the mean).  Smaller c
 * evens loads out but moves more keys off their home backend.  Capacity is
 * the same for every backend, as in the paper: weights shape the ring (who
 * is first choice for which keys), not the cap.
 *
 * What n is.  n is the number of backends of non-zero weight that were
 * eligible when last counted: at build, at every lbk_bounded_refresh(), and
 * whenever an acquire finds every eligible backend full (it then recounts
 * n, re-reads m and walks again, up to 3 times).  A backend that goes down
 * thus lowers n, which raises the capacity of the rest so their total
 * capacity stays >= c * m >= m: with n exact, an acquire always finds a
 * place.  Call lbk_bounded_refresh() after health changes to make the new
 * n immediate rather than found by a full walk.
 *
 * The guarantee.  Every successful acquire leaves its backend at a load of
 * at most ceil(c * m / n), m counting the new request, and the capacity
 * never shrinks while requests only arrive, so with no release in between
 * every backend is within the bound at every moment.  A release lowers m;
 * it cannot move requests already placed, so a backend that was full may
 * then sit above the new, lower bound (no algorithm without migration can
 * prevent that).  Such a backend takes no new request until it is below the
 * bound again.  Acquires from many threads keep the bound: the load of the
 * chosen backend is raised by a compare-and-swap against the capacity.
 *
 * Loads are lbkit's own counters, separate from lbk_backend_in_flight():
 * every successful lbk_bounded_acquire() must be matched by one
 * lbk_bounded_release() of the same backend on the same object.
 */
#ifndef LBKIT_BOUNDED_H
#define LBKIT_BOUNDED_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"
#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_bounded lbk_bounded;

/* HAProxy's and Envoy's usual hash-balance-factor: c = 1.25. */
#define LBK_BOUNDED_DEFAULT_FACTOR 125u

/* Smallest balance factor (c = 1: perfectly even loads). */
#define LBK_BOUNDED_MIN_FACTOR 100u

/* Largest balance factor accepted (c = 1000). */
#define LBK_BOUNDED_MAX_FACTOR 100000u

typedef struct lbk_bounded_options {
    /* The ring the walk follows (mode, points, seed); see ring.h. */
    lbk_ring_options ring;
    /* c in percent, LBK_BOUNDED_MIN_FACTOR .. LBK_BOUNDED_MAX_FACTOR. */
    uint32_t balance_factor;
} lbk_bounded_options;

/*
 * lbk_bounded_options_init - fill opts with the defaults: the ring's
 * defaults (lbk_ring_options_init()) and balance_factor
 * LBK_BOUNDED_DEFAULT_FACTOR.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_bounded_options_init(lbk_bounded_options *opts);

/*
 * lbk_bounded_build - a bounded-load picker over snap's backends, all loads
 * 0.
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * A snapshot with no backend of non-zero weight gives a picker whose
 * acquires all return LBK_ENOBACKEND.
 * Errors: LBK_EINVAL (snap or out NULL, alloc half set, ring mode unknown),
 * LBK_ERANGE (balance_factor outside LBK_BOUNDED_MIN_FACTOR ..
 * LBK_BOUNDED_MAX_FACTOR), every error of lbk_ring_build() (LBK_EPARSE,
 * LBK_ETOOLONG, LBK_ERANGE), LBK_ENOMEM.
 * Thread safety: safe from any thread; snap may be shared with other readers.
 */
LBK_API int lbk_bounded_build(const lbk_snapshot *snap,
                              const lbk_bounded_options *opts,
                              const lbk_allocator *alloc, lbk_bounded **out);

/*
 * lbk_bounded_free - release the ring, the snapshot reference and the
 * memory.  NULL is a no-op.
 * Thread safety: any thread, once no other call on bd is running or will
 * start.
 */
LBK_API void lbk_bounded_free(lbk_bounded *bd);

/*
 * lbk_bounded_acquire - place one request for key: the first backend
 * clockwise from the key's home point that is eligible and below capacity,
 * whose load is then raised by one.
 * key: may be NULL only when len is 0.  out: valid while bd exists.
 * Errors: LBK_EINVAL (bd or out NULL, key NULL with len > 0),
 * LBK_ENOBACKEND (no eligible backend; nothing changed), LBK_EAGAIN (every
 * eligible backend was full on every walk: acquires racing for the last
 * places, health flapping during the walks, or - in the libketama and
 * libmemcached modes only - a backend whose weight share is so small that
 * the peer's rounding gives it no point on the ring, so it counts in n but
 * can take nothing, with a balance factor close to 1; nothing changed),
 * LBK_EOVERFLOW (UINT32_MAX requests in flight; nothing changed).
 * Thread safety: any thread, concurrently with acquires, releases,
 * refreshes and health changes; lock-free, allocation-free.
 */
LBK_API int lbk_bounded_acquire(lbk_bounded *bd, const void *key, size_t len,
                                lbk_backend **out);

/*
 * lbk_bounded_release - one request placed on backend b by
 * lbk_bounded_acquire() has finished: its load and the total drop by one.
 * Errors: LBK_EINVAL (bd or b NULL), LBK_ENOENT (b is not on bd's ring),
 * LBK_ESTATE (b carries no request; nothing changed).
 * Thread safety: any thread, as lbk_bounded_acquire().
 */
LBK_API int lbk_bounded_release(lbk_bounded *bd, lbk_backend *b);

/*
 * lbk_bounded_refresh - recount n, the eligible backends of non-zero weight,
 * from their live health (O(N)).  Call it after health changes.
 * Returns the new n (>= 0) or an error.
 * Errors: LBK_EINVAL (bd NULL).
 * Thread safety: any thread, as lbk_bounded_acquire().
 */
LBK_API int lbk_bounded_refresh(lbk_bounded *bd);

/*
 * lbk_bounded_load - the requests backend b carries on bd now.
 * Errors: LBK_EINVAL (bd, b or load_out NULL), LBK_ENOENT (b is not on bd's
 * ring).
 * Thread safety: any thread (a relaxed read: a moment's value).
 */
LBK_API int lbk_bounded_load(const lbk_bounded *bd, const lbk_backend *b,
                             uint32_t *load_out);

/*
 * lbk_bounded_total - the requests in flight on bd, m (0 for NULL).
 * Thread safety: any thread (a moment's value).
 */
LBK_API uint32_t lbk_bounded_total(const lbk_bounded *bd);

/*
 * lbk_bounded_capacity - ceil(c * m / n) for the given m and the current n:
 * the most requests any backend may carry when m are in flight.  0 when n is
 * 0 or bd is NULL.
 * Thread safety: any thread.
 */
LBK_API uint32_t lbk_bounded_capacity(const lbk_bounded *bd, uint32_t m);

/*
 * lbk_bounded_ring - the ring bd walks (borrowed: valid while bd exists;
 * NULL for NULL).  Its lookups ignore loads.
 * Thread safety: any thread.
 */
LBK_API const lbk_ring *lbk_bounded_ring(const lbk_bounded *bd);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_BOUNDED_H */
