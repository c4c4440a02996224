/*
 * bench/baseline_nginx_wrr.h - the textbook smooth weighted round-robin, as
 * nginx's ngx_http_upstream_get_peer() does it: every pick adds each
 * peer's weight to its current value, takes the largest (first on ties) and
 * subtracts the total from the winner.  O(N) per pick, single-threaded,
 * plain (non-atomic) arrays; peers that are down are skipped and their
 * weight left out of that pick's total, as nginx does.
 */
#ifndef LBKIT_BASELINE_NGINX_WRR_H
#define LBKIT_BASELINE_NGINX_WRR_H

#include <stdint.h>
#include <stdlib.h>

typedef struct nginx_wrr {
    uint32_t n;
    int64_t *weight;
    int64_t *current;
    uint8_t *down;
} nginx_wrr;

static inline int nginx_wrr_init(nginx_wrr *s, const uint32_t *w, uint32_t n)
{
    s->n = n;
    s->weight = calloc(n, sizeof(*s->weight));
    s->current = calloc(n, sizeof(*s->current));
    s->down = calloc(n, sizeof(*s->down));
    if (s->weight == NULL || s->current == NULL || s->down == NULL)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        s->weight[i] = w[i];
    return 0;
}

static inline void nginx_wrr_free(nginx_wrr *s)
{
    free(s->weight);
    free(s->current);
    free(s->down);
}

/* The index of the next peer, or -1 when none is up. */
static inline int64_t nginx_wrr_pick(nginx_wrr *s)
{
    int64_t best = -1, total = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->down[i] || s->weight[i] == 0)
            continue;
        s->current[i] += s->weight[i];
        total += s->weight[i];
        if (best < 0 || s->current[i] > s->current[best])
            best = i;
    }
    if (best >= 0)
        s->current[best] -= total;
    return best;
}

#endif /* LBKIT_BASELINE_NGINX_WRR_H */
