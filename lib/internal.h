/*
 * lib/internal.h - mechanics shared by every lbkit module (not installed).
 *
 * One place for: the error-return macros, allocation through the caller's
 * hook, the reference-counted object header and the publication cell that
 * lets readers acquire the current picker lock-free while one writer swaps
 * it, the counter-based random numbers pickers draw from, bounded ranges by
 * multiply-shift, and the layout of backends and snapshots that pickers read
 * directly on their hot paths.
 */
#ifndef LBKIT_INTERNAL_H
#define LBKIT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lbkit/backend.h"
#include "lbkit/common.h"

/* ---- error paths, one line each (after zstd) ----------------------- */

#define RETURN_ERROR_IF(cond, err)                                             \
    do {                                                                       \
        if (cond)                                                              \
            return (err);                                                      \
    } while (0)

#define FORWARD_IF_ERROR(expr)                                                 \
    do {                                                                       \
        int forward_rc_ = (expr);                                              \
        if (forward_rc_ < 0)                                                   \
            return forward_rc_;                                                \
    } while (0)

/* Defensive branches that tests cannot reach (after SQLite's ALWAYS/NEVER). */
#define LBK_LIKELY(x) __builtin_expect(!!(x), 1)
#define LBK_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define LBK_CACHELINE 64

/* ---- allocation through the hook ------------------------------------ */

/* Resolve a caller's allocator pointer to a concrete one (NULL = libc). */
void lbk_alloc_init(lbk_allocator *dst, const lbk_allocator *src);
/* Validate a caller's allocator: NULL or both functions set. */
bool lbk_alloc_valid(const lbk_allocator *src);
void *lbk_malloc(const lbk_allocator *a, size_t size);
void *lbk_calloc(const lbk_allocator *a, size_t n, size_t size);
void lbk_free(const lbk_allocator *a, void *ptr);

/* ---- reference-counted objects and the publication cell ------------- */

/*
 * Every object that can be published (snapshots, pickers, rings, tables)
 * starts with an lbk_ref.  refs starts at 1; destroy runs on whichever
 * thread drops the last reference.
 */
typedef struct lbk_ref {
    _Atomic int64_t refs;
    void (*destroy)(struct lbk_ref *self);
} lbk_ref;

void lbk_ref_init(lbk_ref *r, void (*destroy)(lbk_ref *self));
void lbk_ref_retain(lbk_ref *r);
void lbk_ref_release(lbk_ref *r);

/*
 * A publication cell: one 64-bit word, low 48 bits the pointer to the
 * current object, high 16 bits the number of readers between "loaded the
 * pointer" and "took their own reference" (see backend.h for the picture).
 */
typedef struct lbk_cell {
    _Atomic uint64_t word;
} lbk_cell;

/* Empty cell. */
void lbk_cell_init(lbk_cell *c);
/* Replace the current object with obj (the cell takes over the caller's one
 * reference to obj; obj may be NULL).  Drops the cell's reference to the
 * previous object.  Returns LBK_ENOTSUP if obj's address does not fit 48
 * bits (then nothing changed).  Writer only. */
int lbk_cell_publish(lbk_cell *c, lbk_ref *obj);
/* A new reference to the current object, or NULL if the cell is empty.
 * Any thread; lock-free; never touches freed memory. */
lbk_ref *lbk_cell_acquire(lbk_cell *c);
/* Empty the cell and drop its reference (at destruction). */
void lbk_cell_clear(lbk_cell *c);

/* ---- random numbers ------------------------------------------------- */

/* SplitMix64's finaliser: a bijective 64-bit mixer. */
static inline uint64_t lbk_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

#define LBK_GOLDEN_GAMMA UINT64_C(0x9e3779b97f4a7c15)

/*
 * A shared, lock-free generator: SplitMix64 over an atomic counter.  Each
 * draw is one relaxed fetch_add, so any number of threads may draw from one
 * picker; a single thread with a fixed seed gets a reproducible stream.
 */
typedef struct lbk_rng {
    _Atomic uint64_t state;
} lbk_rng;

static inline void lbk_rng_seed(lbk_rng *r, uint64_t seed)
{
    atomic_store_explicit(&r->state, seed, memory_order_relaxed);
}

static inline uint64_t lbk_rng_next(lbk_rng *r)
{
    uint64_t s = atomic_fetch_add_explicit(&r->state, LBK_GOLDEN_GAMMA,
                                           memory_order_relaxed);
    return lbk_mix64(s + LBK_GOLDEN_GAMMA);
}

/*
 * lbk_rng_next() with a relaxed load and store instead of the atomic add
 * (an add costs ~14 ns on the reference VM, a load and store under 1 ns):
 * the same stream for one thread; two draws that overlap in time may return
 * the same number.  Pickers whose draws only need the right distribution
 * per draw (weighted random) use it.
 */
static inline uint64_t lbk_rng_next_relaxed(lbk_rng *r)
{
    uint64_t s = atomic_load_explicit(&r->state, memory_order_relaxed) +
                 LBK_GOLDEN_GAMMA;
    atomic_store_explicit(&r->state, s, memory_order_relaxed);
    return lbk_mix64(s);
}

/*
 * The next turn of a shared counter: with exact, an atomic add (every
 * caller gets its own turn); otherwise a relaxed load and store, so callers
 * that overlap in time may share a turn but none is skipped.  Round-robin
 * and smooth WRR take it per pick (see their exact_turns option).
 */
static inline uint64_t lbk_turn_next(_Atomic uint64_t *c, bool exact)
{
    if (exact)
        return atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, t + 1, memory_order_relaxed);
    return t;
}

/*
 * floor(x / d) and x mod d for any 64-bit x without a division, given the
 * precomputed m = UINT64_MAX / d: the estimate floor(x * m / 2^64) is the
 * quotient or one less, so one correction suffices.
 */
static inline uint64_t lbk_divmod64(uint64_t x, uint64_t d, uint64_t m,
                                    uint64_t *rem)
{
    __extension__ typedef unsigned __int128 u128;
    uint64_t q = (uint64_t)(((u128)x * m) >> 64);
    uint64_t r = x - q * d;
    if (r >= d) {
        r -= d;
        q++;
    }
    *rem = r;
    return q;
}

/* The same generator for one thread (simulators, builders): no atomics. */
static inline uint64_t lbk_rng_local_next(uint64_t *state)
{
    *state += LBK_GOLDEN_GAMMA;
    return lbk_mix64(*state);
}

/* Map 32 random bits onto [0, n) by multiply-shift (Lemire); no division. */
static inline uint32_t lbk_bounded32(uint32_t x, uint32_t n)
{
    return (uint32_t)(((uint64_t)x * n) >> 32);
}

/* Map 64 random bits onto [0, n) by multiply-shift; no division. */
static inline uint64_t lbk_bounded64(uint64_t x, uint64_t n)
{
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)x * n) >> 64);
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double lbk_unit_double(uint64_t x)
{
    return (double)(x >> 11) * 0x1.0p-53;
}

/* A seed for objects whose caller did not give one: mixes the object's
 * address and a per-call counter, so two pickers built back to back start at
 * different positions.  Not a secret; callers wanting flood resistance pass
 * their own random seed. */
uint64_t lbk_entropy_seed(const void *obj);

/* ---- backends and snapshots ----------------------------------------- */

/* lbk_backend.weight_scale at full weight (the default). */
#define LBK_SCALE_ONE 65536u

/* Bits of lbk_backend.state: health in the low byte, ejection above. */
#define LBK_STATE_HEALTH_MASK 0xffu
#define LBK_STATE_EJECTED 0x100u

struct lbk_backend {
    /* live state, written by any thread: first, on its own cache line */
    _Atomic uint32_t state;      /* health | LBK_STATE_EJECTED */
    _Atomic uint32_t in_flight;  /* begin/end */
    _Atomic uint64_t ewma_bits;  /* double, ns */
    _Atomic uint64_t ewma_stamp; /* ns of the last sample */
    _Atomic uint32_t samples;
    _Atomic uint32_t weight_scale; /* slow start: 0..LBK_SCALE_ONE */
    /* identity and writer-owned fields */
    _Atomic int64_t refs; /* the set's (while listed or retired) + snapshots */
    struct lbk_set *set;
    void *user;
    _Atomic uint32_t weight; /* writer's view, relaxed reads elsewhere */
    uint32_t priority;
    uint32_t slot;
    uint32_t name_len;
    uint64_t name_hash; /* lbk_hash(name, 0): the set's name index */
    char name[];        /* name_len + 1 bytes */
};

static inline bool lbk_backend_state_eligible(uint32_t state)
{
    return state == LBK_HEALTH_UP; /* UP and not ejected */
}

/* One entry of a snapshot: what pickers need, contiguous. */
typedef struct lbk_snap_entry {
    lbk_backend *b;
    uint32_t weight;
    uint32_t priority;
    uint32_t slot;
    uint32_t pad_;
} lbk_snap_entry;

struct lbk_snapshot {
    lbk_ref ref;
    struct lbk_set *set; /* holds a reference on the set's core */
    uint64_t generation;
    uint32_t total_weight;
    uint32_t n;
    lbk_snap_entry e[];
};

/* The set's latency EWMA time constant in ns (lbk_set_set_ewma_decay). */
uint64_t lbk_set_ewma_tau_ns(const struct lbk_set *set);

/* The set's allocator, for modules that allocate per snapshot. */
const lbk_allocator *lbk_set_allocator(const struct lbk_set *set);

#endif /* LBKIT_INTERNAL_H */
