/*
 * lib/srv.c - RFC 2782 selection and ordering of SRV records.
 *
 * Implements the RFC's own procedure literally (see srv.h for the rule and
 * its quirks) rather than a "fixed" variant, so a client built on lbkit
 * behaves like every other RFC 2782 client on the same record set.
 *
 * Ordering works in the caller's output array, with no allocation:
 *
 *   order_out: [ prio 0: zeros | others ][ prio 1: zeros | others ] ...
 *                ^pos                  ^end
 *
 * A heapsort of the indices by (priority, weight != 0, index) lays every
 * group out in input order with its weight-0 records first (the index in
 * the key makes the unstable sort's result stable); then, position by
 * position, one running-sum draw over [pos, end) picks a record, which is
 * rotated to pos (the rest keep their relative order, so weight-0 records
 * stay at the front as the RFC requires).  The remaining weight sum is kept
 * incrementally.  Cost O(n log n) for the layout plus O(g^2) for a group
 * of g records.
 */
#include "internal.h"
#include "lbkit/srv.h"

/* The running-sum draw over idx[0..len): weight-0 entries come first in
 * idx (the caller arranged it); returns the position chosen. */
static size_t running_sum_draw(const lbk_srv_record *rec, const size_t *idx,
                               size_t len, uint64_t sum, uint64_t random)
{
    uint64_t r = lbk_bounded64(random, sum + 1); /* uniform in [0, sum] */
    uint64_t acc = 0;
    for (size_t k = 0; k < len; k++) {
        acc += rec[idx[k]].weight;
        if (acc >= r)
            return k;
    }
    return len - 1; /* defensive, unreachable: acc reaches sum >= r */
}

int lbk_srv_select(const lbk_srv_record *records, size_t n, uint64_t random,
                   size_t *index_out)
{
    RETURN_ERROR_IF(records == NULL || index_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(n == 0, LBK_ENOBACKEND);
    RETURN_ERROR_IF(n > LBK_SRV_MAX_RECORDS, LBK_ERANGE);
    uint16_t best = UINT16_MAX;
    for (size_t i = 0; i < n; i++)
        if (records[i].priority < best)
            best = records[i].priority;
    uint64_t sum = 0;
    size_t first_zero = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (records[i].priority != best)
            continue;
        sum += records[i].weight;
        if (records[i].weight == 0 && first_zero == SIZE_MAX)
            first_zero = i;
    }
    uint64_t r = lbk_bounded64(random, sum + 1);
    /* Weight-0 records sit at the front with running sum 0: the first of
     * them wins exactly when r == 0. */
    if (r == 0 && first_zero != SIZE_MAX) {
        *index_out = first_zero;
        return 0;
    }
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        if (records[i].priority != best || records[i].weight == 0)
            continue;
        acc += records[i].weight;
        if (acc >= r) {
            *index_out = i;
            return 0;
        }
    }
    return LBK_EINVAL; /* unreachable: acc reaches sum >= r */
}

/* Sort key of record i in the order's layout: priority, then weight-0
 * records first, then input order (so an unstable sort gives a stable
 * result). */
static inline bool layout_less(const lbk_srv_record *rec, size_t a, size_t b)
{
    if (rec[a].priority != rec[b].priority)
        return rec[a].priority < rec[b].priority;
    if ((rec[a].weight != 0) != (rec[b].weight != 0))
        return rec[a].weight == 0;
    return a < b;
}

static void sift_down(const lbk_srv_record *rec, size_t *h, size_t root,
                      size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && layout_less(rec, h[child], h[child + 1]))
            child++;
        if (!layout_less(rec, h[root], h[child]))
            return;
        size_t t = h[root];
        h[root] = h[child];
        h[child] = t;
        root = child;
    }
}

/* Heapsort of the indices 0..n-1 by layout_less: in place, O(n log n),
 * no allocation. */
static void lay_out(const lbk_srv_record *rec, size_t n, size_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = i;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(rec, out, i, n);
    for (size_t end = n; end-- > 1;) {
        size_t t = out[0];
        out[0] = out[end];
        out[end] = t;
        sift_down(rec, out, 0, end);
    }
}

int lbk_srv_order(const lbk_srv_record *records, size_t n, uint64_t seed,
                  size_t *order_out)
{
    RETURN_ERROR_IF(n > 0 && (records == NULL || order_out == NULL),
                    LBK_EINVAL);
    RETURN_ERROR_IF(n > LBK_SRV_MAX_RECORDS, LBK_ERANGE);
    uint64_t rng = seed;
    lay_out(records, n, order_out);
    for (size_t done = 0; done < n;) {
        uint16_t p = records[order_out[done]].priority;
        size_t end = done;
        uint64_t sum = 0;
        while (end < n && records[order_out[end]].priority == p)
            sum += records[order_out[end++]].weight;
        for (size_t pos = done; pos < end; pos++) {
            size_t k = running_sum_draw(records, order_out + pos, end - pos,
                                        sum, lbk_rng_local_next(&rng));
            size_t chosen = order_out[pos + k];
            for (size_t j = pos + k; j > pos; j--) /* rotate chosen to pos */
                order_out[j] = order_out[j - 1];
            order_out[pos] = chosen;
            sum -= records[chosen].weight;
        }
        done = end;
    }
    return 0;
}
