/*
 * bench/baseline_ring.h - the textbook consistent-hash ring, the baseline
 * every key -> backend benchmark (ring, maglev, jump, hrw, bounded) is
 * measured against in the same run.
 *
 * Deliberately plain: 160 points per backend (libketama's count), point j of
 * backend i at lbk_hash of the pair (i, j), the points sorted with qsort, and
 * a lookup
 * that is a binary search for the first point >= the key's hash, wrapping.
 * No bucket index, no cache-friendly layout: what a reader would write from
 * the Karger et al. paper in an afternoon.  Header-only (static functions) so
 * each bench file can include it without a shared object file.
 */
#ifndef LBKIT_BENCH_BASELINE_RING_H
#define LBKIT_BENCH_BASELINE_RING_H

#include <stdint.h>
#include <stdlib.h>

#include "lbkit/common.h"

#define BASELINE_RING_POINTS 160u

typedef struct baseline_ring {
    uint64_t *points; /* sorted ascending */
    uint32_t *owner;  /* owner[k] = backend index of points[k] */
    uint32_t npoints;
} baseline_ring;

struct baseline_point {
    uint64_t hash;
    uint32_t owner;
};

static int baseline_point_cmp(const void *a, const void *b)
{
    const struct baseline_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->owner > y->owner) - (x->owner < y->owner);
}

/* Build a ring of n backends; returns 0, or -1 when out of memory. */
static inline int baseline_ring_build(baseline_ring *r, uint32_t n)
{
    uint32_t np = n * BASELINE_RING_POINTS;
    struct baseline_point *tmp = malloc((size_t)np * sizeof(*tmp));
    r->points = malloc((size_t)np * sizeof(*r->points));
    r->owner = malloc((size_t)np * sizeof(*r->owner));
    if (tmp == NULL || r->points == NULL || r->owner == NULL) {
        free(tmp);
        free(r->points);
        free(r->owner);
        return -1;
    }
    for (uint32_t i = 0, k = 0; i < n; i++) {
        for (uint32_t j = 0; j < BASELINE_RING_POINTS; j++, k++) {
            uint32_t label[2] = {i, j};
            tmp[k].hash = lbk_hash(label, sizeof label, 0);
            tmp[k].owner = i;
        }
    }
    qsort(tmp, np, sizeof(*tmp), baseline_point_cmp);
    for (uint32_t k = 0; k < np; k++) {
        r->points[k] = tmp[k].hash;
        r->owner[k] = tmp[k].owner;
    }
    r->npoints = np;
    free(tmp);
    return 0;
}

/* The owner of the first point >= hash, wrapping to point 0. */
static inline uint32_t baseline_ring_lookup(const baseline_ring *r,
                                            uint64_t hash)
{
    uint32_t lo = 0, hi = r->npoints;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->points[mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->owner[lo == r->npoints ? 0 : lo];
}

/* Bytes the ring holds per backend. */
static inline double baseline_ring_bytes_per_backend(void)
{
    return (double)BASELINE_RING_POINTS * (sizeof(uint64_t) + sizeof(uint32_t));
}

static inline void baseline_ring_free(baseline_ring *r)
{
    free(r->points);
    free(r->owner);
    r->points = NULL;
    r->owner = NULL;
    r->npoints = 0;
}

#endif /* LBKIT_BENCH_BASELINE_RING_H */
