/*
 * lib/ring.c - the consistent-hash ring: virtual nodes, its three
 * compatibility modes (libketama, libmemcached/twemproxy, nginx), lookup
 * through a bucket index, and the health walk.
 *
 * Layout.  The points are one sorted array of 16-byte entries {hash, owner,
 * next}: hash is 64 bits wide in every mode (a compatibility mode's 32-bit
 * point p is stored as p << 32 and its key hash h as h << 32, which keeps
 * "first point >= h" exactly as the peer computes it), owner is the backend's
 * snapshot index, next the first point clockwise of another backend (the
 * health walk and the replica walk jump from run to run with it).  A
 * sentinel point of hash UINT64_MAX follows the last, so a scan needs no
 * bound.
 *
 * Lookup.  A plain binary search over P points costs log2(P) dependent,
 * mostly cache-missing loads (18 at 1024 x 160).  Instead the top B bits of
 * the hash index a table of 2^B 32-bit entries, B = ceil(log2 P) + 1, so
 * there are 2 to 4 buckets per point and most buckets hold no point at all.
 * Every hash in such an empty bucket has the same answer, the first point
 * after the bucket, so its entry stores that point's owner directly (top bit
 * set); a bucket that holds points stores the index of its first one:
 *
 *     hash  h = [ top B bits | rest ]
 *                      |
 *     bucket[]   ... [R|owner] [i] ...    R: resolved, the owner, done
 *                               |
 *     points[]   ... p_i p_i+1 p_j ...    else scan p_i.. while p < h; the
 *                                          points after bucket b are all
 *                                          > h, so the scan stops within b
 *                                          or at the next bucket's first
 *
 * With uniform points 61% to 78% of lookups (e^-P/2^B) resolve with one
 * table load, then the backend table and the backend's live state; the rest
 * add one points line (1 or 2 points scanned).  The point index of a
 * resolved bucket (the health walk, lbk_ring_find_point) is the entry of the
 * next bucket that holds a point, found by a short forward scan of the
 * table.  Cost: 8 to 16 bytes of table per point (1.3 to 2.6 KB per
 * backend at 160 points, next to the points' 2.5 KB), for about half the
 * lookup time of the earlier index of 2 to 4 points per bucket (2 bytes
 * per point) at 1024 x 160.  In XXH3 mode the key is hashed inline
 * (xxhash.h with XXH_INLINE_ALL, the same function lbk_hash() uses, so the
 * same value), a 16-byte key by a constant-length path.
 *
 * Build.  Points are generated in snapshot order and sorted stably (a
 * counting sort on the top B - 2 bits, then an insertion sort per bucket), so
 * equal points keep snapshot order, which is libmemcached's tie rule (equal
 * points ordered by server index) and what nginx's qsort (glibc: a stable
 * merge sort) leaves before it drops duplicates.
 *
 * Where the peers' rules come from: REFERENCES.md restates them; the exact
 * float expressions of the digest counts were checked against libmemcached's
 * libmemcached/hosts.cc (update_continuum: "floor((float)(pct *
 * MEMCACHED_POINTS_PER_SERVER_KETAMA / 4 * (float)live_servers +
 * 0.0000000001)) * 4") and libketama's ketama.c ("floorf(pct * 40.0 *
 * (float)numservers)"); nginx's chaining from
 * ngx_http_upstream_hash_module.c (ngx_http_upstream_init_chash).  MD5 and
 * CRC32 are our own small implementations (lib/md5.c, lib/crc32.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* lbk_hash() inlined into the lookup: the same system xxHash, the same
 * XXH3_64bits_withSeed, compiled here as lib/common.c compiles it. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "crc32.h"
#include "internal.h"
#include "lbkit/ring.h"
#include "md5.h"

#define NO_NEXT UINT32_MAX

/* A bucket-table entry with this bit set names the owner of every hash in
 * the bucket (no point falls inside it); without it, the index of the
 * bucket's first point. */
#define RESOLVED UINT32_C(0x80000000)
#define MEMCACHED_DEFAULT_PORT 11211u

/* Runs walked on the health path before checking that anything at all is
 * eligible, so an all-down ring costs O(N), not O(P). */
#define WALK_RUNS_BEFORE_SCAN 64u

typedef struct ring_point {
    uint64_t hash;  /* the mode's hash, shifted to the top of 64 bits */
    uint32_t owner; /* snapshot index */
    uint32_t next;  /* first point clockwise of another owner, or NO_NEXT */
} ring_point;

struct lbk_ring {
    lbk_ref ref;
    lbk_allocator alloc;
    const lbk_snapshot *snap;
    ring_point *points; /* npoints + 1: points[npoints].hash = UINT64_MAX */
    uint32_t *bucket;   /* 1 << bucket_bits entries (+1, sort scratch) */
    uint32_t npoints;
    uint32_t nbackends;
    uint32_t nbuckets;
    unsigned shift; /* 64 - bucket_bits */
    unsigned bits;  /* 32 or 64 */
    lbk_ring_mode mode;
    uint64_t seed;
    size_t bytes;
    lbk_backend *backends[]; /* snapshot order */
};

void lbk_ring_options_init(lbk_ring_options *opts)
{
    if (opts == NULL)
        return;
    opts->mode = LBK_RING_XXH3;
    opts->points_per_weight = LBK_RING_DEFAULT_POINTS;
    opts->seed = 0;
}

/* ---- names and point counts ------------------------------------------- */

/* "host:port": non-empty host, the last ':', port 1..65535 in canonical
 * decimal (no sign, no leading zero), so every peer prints it alike. */
static int parse_host_port(const char *name, size_t len, size_t *host_len,
                           uint32_t *port)
{
    size_t colon = len;
    for (size_t i = len; i-- > 0;) {
        if (name[i] == ':') {
            colon = i;
            break;
        }
    }
    RETURN_ERROR_IF(colon == len || colon == 0, LBK_EPARSE);
    size_t digits = len - colon - 1;
    RETURN_ERROR_IF(digits == 0 || digits > 5, LBK_EPARSE);
    RETURN_ERROR_IF(name[colon + 1] == '0', LBK_EPARSE);
    uint32_t v = 0;
    for (size_t i = colon + 1; i < len; i++) {
        RETURN_ERROR_IF(name[i] < '0' || name[i] > '9', LBK_EPARSE);
        v = v * 10 + (uint32_t)(name[i] - '0');
    }
    RETURN_ERROR_IF(v > 65535, LBK_EPARSE);
    *host_len = colon;
    *port = v;
    return 0;
}

/* Servers of non-zero weight (N) and their total weight (W). */
struct ring_totals {
    uint32_t n;
    uint64_t w;
};

/* Points backend weight w gets in mode m.  libketama computes
 * floorf(pct * 40.0 * (float)N): pct is float, 40.0 a double, so the
 * product is double and floorf's argument is that double rounded to float.
 * libmemcached computes pct * 160 / 4 * (float)N in float, adds 1e-10 in
 * double, rounds to float and floors.  Separate statements keep the
 * compiler from contracting the products into an FMA. */
static uint64_t points_for(lbk_ring_mode m, uint32_t ppw, uint32_t w,
                           struct ring_totals t)
{
    if (w == 0)
        return 0;
    switch (m) {
    case LBK_RING_LIBKETAMA: {
        float pct = (float)w / (float)t.w;
        double prod = (double)pct * 40.0;
        prod = prod * (double)(float)t.n;
        float ks = floorf((float)prod);
        return 4 * (uint64_t)ks;
    }
    case LBK_RING_LIBMEMCACHED: {
        float pct = (float)w / (float)t.w;
        float v = pct * 160.0f;
        v = v / 4.0f;
        v = v * (float)t.n;
        double d = (double)v + 0.0000000001;
        float ks = floorf((float)d);
        return 4 * (uint64_t)ks;
    }
    case LBK_RING_NGINX:
        return 160 * (uint64_t)w;
    default:
        return (uint64_t)ppw * w;
    }
}

static int check_names_and_count(const lbk_snapshot *snap,
                                 const lbk_ring_options *o, uint32_t *total)
{
    struct ring_totals t = {0, 0};
    for (uint32_t i = 0; i < snap->n; i++) {
        if (snap->e[i].weight == 0)
            continue;
        t.n++;
        t.w += snap->e[i].weight;
        if (o->mode == LBK_RING_XXH3)
            continue;
        const lbk_backend *b = snap->e[i].b;
        size_t host_len;
        uint32_t port;
        FORWARD_IF_ERROR(
            parse_host_port(b->name, b->name_len, &host_len, &port));
        RETURN_ERROR_IF(o->mode == LBK_RING_LIBKETAMA &&
                            b->name_len > LBK_RING_KETAMA_NAME_MAX,
                        LBK_ETOOLONG);
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < snap->n; i++) {
        sum += points_for(o->mode, o->points_per_weight, snap->e[i].weight, t);
        RETURN_ERROR_IF(sum > LBK_RING_MAX_POINTS, LBK_ERANGE);
    }
    *total = (uint32_t)sum;
    return 0;
}

/* ---- point generation --------------------------------------------------- */

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* XXH3 mode: point j = XXH3-64(name || LE32(j), seed). */
static ring_point *gen_xxh3(ring_point *p, const lbk_backend *b, uint32_t idx,
                            uint64_t count, uint64_t seed)
{
    uint8_t buf[LBK_NAME_MAX + 4];
    memcpy(buf, b->name, b->name_len);
    for (uint64_t j = 0; j < count; j++) {
        put_le32(buf + b->name_len, (uint32_t)j);
        p->hash = lbk_hash(buf, b->name_len + 4, seed);
        p->owner = idx;
        p++;
    }
    return p;
}

/* Ketama modes: MD5 of "<id>-<k>", four little-endian points per digest.
 * id is the whole name for libketama; for libmemcached the host alone when
 * the port is 11211 (libmemcached prints "%s-%u" then, else
 * "%s:%u-%u"). */
static ring_point *gen_ketama(ring_point *p, const lbk_backend *b, uint32_t idx,
                              uint64_t count, bool memcached)
{
    size_t id_len = b->name_len;
    if (memcached) {
        size_t host_len;
        uint32_t port;
        if (parse_host_port(b->name, b->name_len, &host_len, &port) == 0 &&
            port == MEMCACHED_DEFAULT_PORT)
            id_len = host_len;
    }
    char buf[LBK_NAME_MAX + 16];
    memcpy(buf, b->name, id_len);
    for (uint64_t k = 0; k < count / 4; k++) {
        int n = snprintf(buf + id_len, sizeof buf - id_len, "-%u", (unsigned)k);
        uint8_t d[16];
        lbk_md5(buf, id_len + (size_t)n, d);
        for (int h = 0; h < 4; h++) {
            p->hash = (uint64_t)le32(d + 4 * h) << 32;
            p->owner = idx;
            p++;
        }
    }
    return p;
}

/* nginx: base = CRC32 state of host '\0' port (not finalised); point j =
 * final(base continued with the 4 little-endian bytes of point j-1), point
 * -1 being 0. */
static ring_point *gen_nginx(ring_point *p, const lbk_backend *b, uint32_t idx,
                             uint64_t count)
{
    size_t host_len = 0;
    uint32_t port;
    (void)parse_host_port(b->name, b->name_len, &host_len, &port);
    uint32_t base = lbk_crc32_update(lbk_crc32_init(), b->name, host_len);
    base = lbk_crc32_update(base, "", 1);
    base = lbk_crc32_update(base, b->name + host_len + 1,
                            b->name_len - host_len - 1);
    uint32_t prev = 0;
    for (uint64_t j = 0; j < count; j++) {
        uint8_t le[4];
        put_le32(le, prev);
        uint32_t h = lbk_crc32_final(lbk_crc32_update(base, le, 4));
        p->hash = (uint64_t)h << 32;
        p->owner = idx;
        p++;
        prev = h;
    }
    return p;
}

static void generate_points(lbk_ring *r, const lbk_ring_options *o)
{
    const lbk_snapshot *snap = r->snap;
    struct ring_totals t = {0, 0};
    for (uint32_t i = 0; i < snap->n; i++) {
        if (snap->e[i].weight != 0) {
            t.n++;
            t.w += snap->e[i].weight;
        }
    }
    ring_point *p = r->points;
    for (uint32_t i = 0; i < snap->n; i++) {
        uint64_t c =
            points_for(o->mode, o->points_per_weight, snap->e[i].weight, t);
        if (c == 0)
            continue;
        const lbk_backend *b = snap->e[i].b;
        switch (o->mode) {
        case LBK_RING_LIBKETAMA:
            p = gen_ketama(p, b, i, c, false);
            break;
        case LBK_RING_LIBMEMCACHED:
            p = gen_ketama(p, b, i, c, true);
            break;
        case LBK_RING_NGINX:
            p = gen_nginx(p, b, i, c);
            break;
        default:
            p = gen_xxh3(p, b, i, c, o->seed);
            break;
        }
    }
}

/* ---- sorting and indexing ------------------------------------------------ */

static int cmp_point(const void *a, const void *b)
{
    const ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->owner > y->owner) - (x->owner < y->owner);
}

/*
 * Sort n points from src into dst by hash, equal hashes in src order (so
 * in snapshot order): a stable counting sort on the top `bits` bits of the
 * hash (a coarser cut of the lookup index's buckets), then an insertion sort of
 * each bucket, 1 to 2 points on average for uniform hashes.  A bucket that
 * is unusually full (clustered points) is sorted by qsort on (hash, owner),
 * which orders equal hashes the same way.  Two passes over the points
 * instead of a comparison sort's log P.  start is scratch of 2^bits + 1
 * entries.
 */
static void sort_points(const ring_point *src, ring_point *dst, uint32_t n,
                        unsigned bits, uint32_t *start)
{
    uint32_t nb = UINT32_C(1) << bits;
    unsigned shift = 64 - bits;
    memset(start, 0, ((size_t)nb + 1) * sizeof(*start));
    for (uint32_t i = 0; i < n; i++)
        start[(src[i].hash >> shift) + 1]++;
    for (uint32_t b = 1; b <= nb; b++)
        start[b] += start[b - 1];
    /* scatter with start[b] as the cursor: afterwards start[b] is where
     * bucket b ends, i.e. where b + 1 begins */
    for (uint32_t i = 0; i < n; i++)
        dst[start[src[i].hash >> shift]++] = src[i];
    uint32_t lo = 0;
    for (uint32_t b = 0; b < nb; b++) {
        uint32_t hi = start[b];
        if (hi - lo > 32) {
            qsort(dst + lo, hi - lo, sizeof(*dst), cmp_point);
        } else {
            for (uint32_t i = lo + 1; i < hi; i++) {
                ring_point x = dst[i];
                uint32_t j = i;
                for (; j > lo && dst[j - 1].hash > x.hash; j--)
                    dst[j] = dst[j - 1];
                dst[j] = x;
            }
        }
        lo = hi;
    }
}

/* nginx keeps one point per value: the first of each run of equals, which
 * after the stable sort is the one of the earliest server. */
static uint32_t drop_duplicates(ring_point *p, uint32_t n)
{
    if (n == 0)
        return 0;
    uint32_t k = 0;
    for (uint32_t j = 1; j < n; j++)
        if (p[j].hash != p[k].hash)
            p[++k] = p[j];
    return k + 1;
}

/* next[i] = the first point clockwise after i whose owner differs.  Walk
 * backwards from a point whose successor has another owner, so every
 * successor's next is known when it is needed. */
static void link_runs(ring_point *p, uint32_t n)
{
    uint32_t last = NO_NEXT;
    for (uint32_t i = n; i-- > 0;) {
        if (p[(i + 1) % n].owner != p[i].owner) {
            last = i;
            break;
        }
    }
    if (last == NO_NEXT) {
        for (uint32_t i = 0; i < n; i++)
            p[i].next = NO_NEXT;
        return;
    }
    p[last].next = (last + 1) % n;
    uint32_t i = last;
    for (uint32_t step = 1; step < n; step++) {
        uint32_t j = i;
        i = i == 0 ? n - 1 : i - 1;
        p[i].next = p[j].owner != p[i].owner ? j : p[j].next;
    }
}

/* ceil(log2 n) + 1: 2n to 4n buckets, 0.25 to 0.5 points per bucket, so
 * 61% to 78% of the buckets hold no point and resolve a lookup with one
 * load (e^-0.25 .. e^-0.5 for uniform points).  At most 25 bits (128 MB of
 * table at the 2^24-point limit, 8 bytes per point). */
static unsigned bucket_bits_for(uint32_t n)
{
    unsigned b = 0;
    while (b < 31 && (UINT32_C(1) << b) < n)
        b++;
    return b + 1;
}

/* Bucket b's entry: RESOLVED | owner when no point lies in b (every hash in
 * b then goes to the first point of a later bucket, or wraps to point 0),
 * else the index of the first point in b.  Owners are snapshot indexes, so
 * a snapshot of 2^31 backends or more (never in practice) keeps every
 * entry unresolved rather than lose a bit. */
static void fill_buckets(lbk_ring *r)
{
    const ring_point *p = r->points;
    bool can_resolve = r->nbackends <= (uint32_t)~RESOLVED;
    uint32_t i = 0;
    for (uint32_t b = 0; b < r->nbuckets; b++) {
        while (i < r->npoints && (p[i].hash >> r->shift) < b)
            i++;
        bool empty = i == r->npoints || (p[i].hash >> r->shift) != b;
        if (empty && can_resolve)
            r->bucket[b] = RESOLVED | p[i == r->npoints ? 0 : i].owner;
        else
            r->bucket[b] = i;
    }
}

/* ---- build and free ---------------------------------------------------- */

static void ring_destroy(lbk_ref *ref)
{
    lbk_ring *r = (lbk_ring *)ref;
    lbk_allocator a = r->alloc;
    lbk_snapshot_release(r->snap);
    lbk_free(&a, r->points);
    lbk_free(&a, r->bucket);
    lbk_free(&a, r);
}

int lbk_ring_build(const lbk_snapshot *snap, const lbk_ring_options *opts,
                   const lbk_allocator *alloc, lbk_ring **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(!lbk_alloc_valid(alloc), LBK_EINVAL);
    lbk_ring_options o;
    lbk_ring_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF((unsigned)o.mode > (unsigned)LBK_RING_NGINX, LBK_EINVAL);
    if (o.mode == LBK_RING_XXH3) {
        RETURN_ERROR_IF(o.points_per_weight == 0 ||
                            o.points_per_weight >
                                LBK_RING_MAX_POINTS_PER_WEIGHT,
                        LBK_ERANGE);
    } else {
        o.seed = 0;
    }
    uint32_t total;
    FORWARD_IF_ERROR(check_names_and_count(snap, &o, &total));

    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    size_t head = sizeof(lbk_ring) + (size_t)snap->n * sizeof(lbk_backend *);
    lbk_ring *r = lbk_calloc(&a, 1, head);
    RETURN_ERROR_IF(r == NULL, LBK_ENOMEM);
    r->alloc = a;
    r->snap = snap;
    r->nbackends = snap->n;
    r->mode = o.mode;
    r->seed = o.seed;
    r->bits = o.mode == LBK_RING_XXH3 ? 64 : 32;
    for (uint32_t i = 0; i < snap->n; i++)
        r->backends[i] = snap->e[i].b;
    r->bytes = head;
    if (total > 0) {
        ring_point *pts =
            lbk_malloc(&a, ((size_t)total + 1) * sizeof(ring_point));
        ring_point *tmp =
            pts ? lbk_malloc(&a, (size_t)total * sizeof(ring_point)) : NULL;
        unsigned bits = bucket_bits_for(total);
        uint32_t *bucket =
            tmp ? lbk_malloc(&a, (((size_t)1 << bits) + 1) * sizeof(uint32_t))
                : NULL;
        if (bucket == NULL) {
            lbk_free(&a, tmp);
            lbk_free(&a, pts);
            lbk_free(&a, r);
            return LBK_ENOMEM;
        }
        r->points = tmp;
        generate_points(r, &o);
        /* sort on two bits fewer (at least 1), 1 to 2 points per sort
         * bucket: its counters fit in the table, filled afterwards */
        sort_points(tmp, pts, total, bits > 2 ? bits - 2 : 1, bucket);
        lbk_free(&a, tmp);
        r->points = pts;
        r->npoints =
            o.mode == LBK_RING_NGINX ? drop_duplicates(pts, total) : total;
        link_runs(r->points, r->npoints);
        /* the scan's sentinel: no hash is above it, so it ends every scan
         * that passes the last point */
        pts[r->npoints] = (ring_point){UINT64_MAX, NO_NEXT, NO_NEXT};
        r->bucket = bucket;
        r->nbuckets = UINT32_C(1) << bits;
        r->shift = 64 - bits;
        fill_buckets(r);
        r->bytes += ((size_t)total + 1) * sizeof(ring_point) +
                    (((size_t)1 << bits) + 1) * sizeof(uint32_t);
    }
    lbk_ref_init(&r->ref, ring_destroy);
    (void)lbk_snapshot_retain(snap);
    *out = r;
    return 0;
}

void lbk_ring_free(lbk_ring *ring)
{
    if (ring != NULL)
        lbk_ref_release(&ring->ref);
}

/* ---- hashing and lookup ------------------------------------------------- */

/* XXH3-64 of a 16-byte key (a UUID, two 64-bit ids): the length is a
 * constant, so with everything flattened in the compiler keeps only
 * xxHash's 9-to-16-byte branch (about 20 instructions, no call).  The same
 * function lbk_hash() calls, so the same value. */
#if defined(__GNUC__)
__attribute__((flatten))
#endif
static uint64_t
xxh3_16(const void *key, uint64_t seed)
{
    return XXH3_64bits_withSeed(key, 16, seed);
}

/* The mode's key hash, in the mode's space (32 bits for the peers). */
static inline uint64_t hash_key(const lbk_ring *r, const void *key, size_t len)
{
    if (LBK_LIKELY(r->mode == LBK_RING_XXH3)) {
        if (len == 16)
            return xxh3_16(key, r->seed);
        return XXH3_64bits_withSeed(key, key == NULL ? 0 : len, r->seed);
    }
    switch (r->mode) {
    case LBK_RING_LIBKETAMA:
    case LBK_RING_LIBMEMCACHED: {
        uint8_t d[16];
        lbk_md5(key, len, d);
        return le32(d);
    }
    case LBK_RING_NGINX:
        return lbk_crc32(key, len);
    default:
        return 0; /* LBK_RING_XXH3, above; build rejects other values */
    }
}

/* A mode-space hash on the 64-bit circle. */
static inline int to_circle(const lbk_ring *r, uint64_t hash, uint64_t *h)
{
    if (r->bits == 32) {
        RETURN_ERROR_IF(hash > UINT32_MAX, LBK_ERANGE);
        *h = hash << 32;
    } else {
        *h = hash;
    }
    return 0;
}

/* The first point >= h in an unresolved bucket's run, starting at its
 * first point: the sentinel stops the scan past the last point. */
static inline uint32_t scan_from(const lbk_ring *r, uint32_t i, uint64_t h)
{
    const ring_point *p = r->points;
    while (p[i].hash < h)
        i++;
    return i == r->npoints ? 0 : i;
}

/* The first point >= h, wrapping; npoints > 0.  A resolved bucket holds no
 * point, so the answer is the first point of the next bucket that holds
 * one (its entry), or point 0 when none does. */
static uint32_t find_point(const lbk_ring *r, uint64_t h)
{
    uint32_t b = (uint32_t)(h >> r->shift);
    uint32_t e = r->bucket[b];
    if (!(e & RESOLVED))
        return scan_from(r, e, h);
    while (++b < r->nbuckets) {
        e = r->bucket[b];
        if (!(e & RESOLVED))
            return e;
    }
    return 0;
}

static inline bool owner_eligible(const lbk_ring *r, uint32_t owner)
{
    return lbk_backend_state_eligible(
        atomic_load_explicit(&r->backends[owner]->state, memory_order_relaxed));
}

/* Whether any backend on the ring (one with points) is eligible. */
static bool any_eligible(const lbk_ring *r)
{
    const lbk_snapshot *s = r->snap;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->e[i].weight != 0 && owner_eligible(r, i))
            return true;
    return false;
}

/*
 * The health walk: from point start (whose owner is not eligible), visit
 * the next run of another owner, and the next, until an eligible owner or
 * a full turn.  dist counts the points passed, so a turn ends the walk
 * whatever the runs look like.  Returns the point index or NO_NEXT.
 */
static uint32_t walk_to_eligible(const lbk_ring *r, uint32_t start)
{
    const ring_point *p = r->points;
    uint32_t n = r->npoints;
    uint32_t i = start;
    uint64_t dist = 0;
    for (uint32_t runs = 1;; runs++) {
        uint32_t j = p[i].next;
        if (j == NO_NEXT)
            return NO_NEXT;
        dist += j > i ? j - i : n - i + j;
        if (dist >= n)
            return NO_NEXT;
        if (owner_eligible(r, p[j].owner))
            return j;
        if (runs == WALK_RUNS_BEFORE_SCAN && !any_eligible(r))
            return NO_NEXT;
        i = j;
    }
}

/* The hot path: one table load names the owner in most buckets; the others
 * scan their 1 or 2 points.  The point index is only needed for the health
 * walk, so a resolved bucket finds it only then. */
static inline int pick(const lbk_ring *r, uint64_t h, lbk_backend **out)
{
    RETURN_ERROR_IF(r->npoints == 0, LBK_ENOBACKEND);
    uint32_t e = r->bucket[h >> r->shift];
    uint32_t o =
        (e & RESOLVED) ? e & ~RESOLVED : r->points[scan_from(r, e, h)].owner;
    if (LBK_LIKELY(owner_eligible(r, o))) {
        *out = r->backends[o];
        return 0;
    }
    uint32_t i = walk_to_eligible(r, find_point(r, h));
    RETURN_ERROR_IF(i == NO_NEXT, LBK_ENOBACKEND);
    *out = r->backends[r->points[i].owner];
    return 0;
}

int lbk_ring_hash_key(const lbk_ring *ring, const void *key, size_t len,
                      uint64_t *hash_out)
{
    RETURN_ERROR_IF(ring == NULL || hash_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    *hash_out = hash_key(ring, key, len);
    return 0;
}

int lbk_ring_lookup(const lbk_ring *ring, const void *key, size_t len,
                    lbk_backend **out)
{
    RETURN_ERROR_IF(ring == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    uint64_t h = hash_key(ring, key, len);
    return pick(ring, ring->bits == 32 ? h << 32 : h, out);
}

int lbk_ring_lookup_hash(const lbk_ring *ring, uint64_t hash, lbk_backend **out)
{
    RETURN_ERROR_IF(ring == NULL || out == NULL, LBK_EINVAL);
    uint64_t h;
    FORWARD_IF_ERROR(to_circle(ring, hash, &h));
    return pick(ring, h, out);
}

static bool listed(lbk_backend *const *out, uint32_t n, const lbk_backend *b)
{
    for (uint32_t i = 0; i < n; i++)
        if (out[i] == b)
            return true;
    return false;
}

/* Collect up to k distinct eligible owners clockwise from h's point. */
static int top(const lbk_ring *r, uint64_t h, uint32_t k, lbk_backend **out,
               uint32_t *count)
{
    RETURN_ERROR_IF(r->npoints == 0, LBK_ENOBACKEND);
    const ring_point *p = r->points;
    uint32_t n = r->npoints;
    uint32_t i = find_point(r, h);
    uint32_t got = 0;
    uint64_t dist = 0;
    lbk_backend *found[LBK_RING_TOP_MAX];
    for (uint32_t runs = 1;; runs++) {
        lbk_backend *b = r->backends[p[i].owner];
        if (owner_eligible(r, p[i].owner) && !listed(found, got, b)) {
            found[got++] = b;
            if (got == k)
                break;
        }
        uint32_t j = p[i].next;
        if (j == NO_NEXT)
            break;
        dist += j > i ? j - i : n - i + j;
        if (dist >= n)
            break;
        if (runs == WALK_RUNS_BEFORE_SCAN && got == 0 && !any_eligible(r))
            break;
        i = j;
    }
    RETURN_ERROR_IF(got == 0, LBK_ENOBACKEND);
    memcpy(out, found, got * sizeof(*out));
    *count = got;
    return 0;
}

int lbk_ring_lookup_top(const lbk_ring *ring, const void *key, size_t len,
                        uint32_t k, lbk_backend **out, uint32_t *count)
{
    RETURN_ERROR_IF(ring == NULL || out == NULL || count == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    RETURN_ERROR_IF(k == 0, LBK_EINVAL);
    RETURN_ERROR_IF(k > LBK_RING_TOP_MAX, LBK_ERANGE);
    uint64_t h = hash_key(ring, key, len);
    return top(ring, ring->bits == 32 ? h << 32 : h, k, out, count);
}

int lbk_ring_lookup_top_hash(const lbk_ring *ring, uint64_t hash, uint32_t k,
                             lbk_backend **out, uint32_t *count)
{
    RETURN_ERROR_IF(ring == NULL || out == NULL || count == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(k == 0, LBK_EINVAL);
    RETURN_ERROR_IF(k > LBK_RING_TOP_MAX, LBK_ERANGE);
    uint64_t h;
    FORWARD_IF_ERROR(to_circle(ring, hash, &h));
    return top(ring, h, k, out, count);
}

/* ---- inspection -----------------------------------------------------------
 */

unsigned lbk_ring_hash_bits(const lbk_ring *ring)
{
    return ring ? ring->bits : 0;
}

uint32_t lbk_ring_point_count(const lbk_ring *ring)
{
    return ring ? ring->npoints : 0;
}

const lbk_snapshot *lbk_ring_snapshot(const lbk_ring *ring)
{
    return ring ? ring->snap : NULL;
}

int lbk_ring_find_point(const lbk_ring *ring, uint64_t hash,
                        uint32_t *index_out)
{
    RETURN_ERROR_IF(ring == NULL || index_out == NULL, LBK_EINVAL);
    uint64_t h;
    FORWARD_IF_ERROR(to_circle(ring, hash, &h));
    RETURN_ERROR_IF(ring->npoints == 0, LBK_ENOBACKEND);
    *index_out = find_point(ring, h);
    return 0;
}

int lbk_ring_point(const lbk_ring *ring, uint32_t index, uint64_t *hash_out,
                   uint32_t *backend_out)
{
    RETURN_ERROR_IF(ring == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(index >= ring->npoints, LBK_ERANGE);
    const ring_point *p = &ring->points[index];
    if (hash_out != NULL)
        *hash_out = ring->bits == 32 ? p->hash >> 32 : p->hash;
    if (backend_out != NULL)
        *backend_out = p->owner;
    return 0;
}

int lbk_ring_next_distinct(const lbk_ring *ring, uint32_t index,
                           uint32_t *next_out)
{
    RETURN_ERROR_IF(ring == NULL || next_out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(index >= ring->npoints, LBK_ERANGE);
    uint32_t j = ring->points[index].next;
    RETURN_ERROR_IF(j == NO_NEXT, LBK_ENOENT);
    *next_out = j;
    return 0;
}

/* Point i owns the arc (point i-1, point i], point 0 the arc that wraps
 * from the last point.  In the 32-bit modes the lengths are computed on the
 * 32-bit values, so they sum to exactly 2^32. */
int lbk_ring_ownership(const lbk_ring *ring, uint64_t *arcs, uint32_t narcs)
{
    RETURN_ERROR_IF(ring == NULL || arcs == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(narcs < ring->nbackends, LBK_ERANGE);
    RETURN_ERROR_IF(ring->npoints == 0, LBK_ENOBACKEND);
    const ring_point *p = ring->points;
    uint32_t n = ring->npoints;
    unsigned down = ring->bits == 32 ? 32 : 0;
    for (uint32_t i = 0; i < ring->nbackends; i++)
        arcs[i] = 0;
    if (p[0].next == NO_NEXT || p[0].hash == p[n - 1].hash) {
        /* One owner, or every point at one value: point 0 takes all. */
        arcs[p[0].owner] = ring->bits == 32 ? UINT64_C(1) << 32 : 0;
        return ring->bits == 32 ? 0 : 1;
    }
    arcs[p[0].owner] += (p[0].hash - p[n - 1].hash) >> down;
    for (uint32_t i = 1; i < n; i++)
        arcs[p[i].owner] += (p[i].hash - p[i - 1].hash) >> down;
    return 0;
}

size_t lbk_ring_memory_bytes(const lbk_ring *ring)
{
    return ring ? ring->bytes : 0;
}
