/*
 * lib/maglev.c - Maglev hashing (Eisenbud et al., NSDI 2016, section 3.4).
 *
 * The table: M entries (M prime), each the snapshot index of the backend
 * that owns it.  Backend i prefers the entries of its own permutation
 *
 *     perm_i[j] = (offset_i + j * skip_i) mod M,
 *     offset_i = h1(name) mod M,  skip_i = h2(name) mod (M - 1) + 1,
 *
 * which visits every entry once because M is prime and 0 < skip < M.  The
 * fill goes round after round; in its turn a backend claims the next entry
 * of its permutation that is still empty:
 *
 *     round 1:  b0 -> perm_0[0]   b1 -> perm_1[0]   b2 -> perm_2[0] (taken,
 *                                                         so perm_2[1]) ...
 *     round 2:  b0 -> perm_0[1]   ...               until all M are taken
 *
 * Weights change how many turns a backend gets, not its permutation: each
 * round a backend earns w_i credits and claims one entry per w_max credits
 * it has saved (credits stay below w_max between rounds, so at most one claim
 * per round).  Equal weights reduce to the paper's plain round robin, which
 * gives every backend floor(M/N) or ceil(M/N) entries.
 *
 * Why this shape: the lookup is one multiply-shift and one 2-byte read, and
 * the table is one flat array that can live in a caller buffer, so the
 * no-allocation variant is the same code with a different memory source.
 * Positions are advanced by addition and one compare, never by a modulo, so
 * the fill is cheap enough to rebuild on every membership change.
 */
#include "internal.h"
#include "lbkit/maglev.h"

#define EMPTY16 UINT16_MAX
#define EMPTY32 UINT32_MAX

struct lbk_maglev {
    lbk_ref ref;
    lbk_allocator alloc;
    bool owns_memory;  /* built by lbk_maglev_build (else a caller buffer) */
    bool wide;         /* uint32 entries (snapshot of >= 65536 backends) */
    uint32_t size;     /* M */
    uint32_t weighted; /* backends of non-zero weight */
    uint64_t seed;
    const lbk_snapshot *snap;
    void *table; /* M uint16 or uint32 snapshot indices */
};

/* Per-backend state of the fill. */
struct fill_state {
    uint64_t credit;
    uint32_t pos;  /* next position in the backend's permutation */
    uint32_t skip; /* step of the permutation */
    uint32_t idx;  /* snapshot index */
    uint32_t weight;
};

/* ---- sizes and layout ------------------------------------------------- */

static size_t align8(size_t x)
{
    return (x + 7) & ~(size_t)7;
}

static size_t header_bytes(void)
{
    return align8(sizeof(struct lbk_maglev));
}

static int table_bytes(uint32_t n, uint32_t size, size_t *bytes)
{
    uint64_t esize = n < 65536 ? 2 : 4;
    uint64_t b = (uint64_t)size * esize;
    RETURN_ERROR_IF(b > SIZE_MAX - 64, LBK_ERANGE);
    *bytes = align8((size_t)b);
    return 0;
}

int lbk_maglev_table_size_bytes(uint32_t n, uint32_t table_size, size_t *bytes)
{
    RETURN_ERROR_IF(bytes == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(table_size == 0 || table_size > LBK_MAGLEV_MAX_TABLE_SIZE,
                    LBK_ERANGE);
    RETURN_ERROR_IF(n > LBK_SET_MAX, LBK_ERANGE);
    size_t t;
    FORWARD_IF_ERROR(table_bytes(n, table_size, &t));
    uint64_t total =
        (uint64_t)header_bytes() + t + (uint64_t)n * sizeof(struct fill_state);
    RETURN_ERROR_IF(total > SIZE_MAX, LBK_ERANGE);
    *bytes = (size_t)total;
    return 0;
}

/* ---- validation ------------------------------------------------------- */

static bool is_prime(uint32_t x)
{
    if (x < 2)
        return false;
    if (x % 2 == 0)
        return x == 2;
    for (uint32_t d = 3; (uint64_t)d * d <= x; d += 2)
        if (x % d == 0)
            return false;
    return true;
}

static uint32_t count_weighted(const lbk_snapshot *snap)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < snap->n; i++)
        w += snap->e[i].weight != 0;
    return w;
}

/* Everything that can be rejected before memory is touched. */
static int check_args(const lbk_snapshot *snap, const lbk_maglev_options *opts,
                      lbk_maglev_options *o)
{
    lbk_maglev_options_init(o);
    if (opts != NULL)
        *o = *opts;
    RETURN_ERROR_IF(o->table_size > LBK_MAGLEV_MAX_TABLE_SIZE, LBK_ERANGE);
    RETURN_ERROR_IF(!is_prime(o->table_size), LBK_ENOTPRIME);
    RETURN_ERROR_IF(count_weighted(snap) > o->table_size, LBK_ERANGE);
    return 0;
}

/* ---- the fill --------------------------------------------------------- */

static void prepare(const lbk_maglev *m, struct fill_state *st, uint32_t *nst,
                    uint32_t *wmax)
{
    const lbk_snapshot *snap = m->snap;
    uint32_t k = 0, top = 0;
    for (uint32_t i = 0; i < snap->n; i++) {
        uint32_t w = snap->e[i].weight;
        if (w == 0)
            continue;
        const lbk_backend *b = snap->e[i].b;
        uint64_t h1 = lbk_hash(b->name, b->name_len, m->seed);
        uint64_t h2 = lbk_hash(b->name, b->name_len, ~m->seed);
        st[k].credit = 0;
        st[k].pos = (uint32_t)(h1 % m->size);
        st[k].skip = (uint32_t)(h2 % (m->size - 1)) + 1; /* M >= 2 */
        st[k].idx = i;
        st[k].weight = w;
        if (w > top)
            top = w;
        k++;
    }
    *nst = k;
    *wmax = top;
}

/* One fill per entry width, so the inner loop has no width branch. */
#define DEFINE_FILL(NAME, TYPE, EMPTY)                                         \
    static void NAME(TYPE *t, uint32_t size, struct fill_state *st,            \
                     uint32_t nst, uint32_t wmax)                              \
    {                                                                          \
        for (uint32_t e = 0; e < size; e++)                                    \
            t[e] = EMPTY;                                                      \
        uint32_t filled = 0;                                                   \
        for (;;) {                                                             \
            for (uint32_t k = 0; k < nst; k++) {                               \
                struct fill_state *s = &st[k];                                 \
                s->credit += s->weight;                                        \
                if (s->credit < wmax)                                          \
                    continue;                                                  \
                s->credit -= wmax;                                             \
                uint32_t p = s->pos;                                           \
                while (t[p] != EMPTY) {                                        \
                    p += s->skip;                                              \
                    if (p >= size)                                             \
                        p -= size;                                             \
                }                                                              \
                t[p] = (TYPE)s->idx;                                           \
                p += s->skip;                                                  \
                s->pos = p >= size ? p - size : p;                             \
                if (++filled == size)                                          \
                    return;                                                    \
            }                                                                  \
        }                                                                      \
    }

DEFINE_FILL(fill16, uint16_t, EMPTY16)
DEFINE_FILL(fill32, uint32_t, EMPTY32)

static void fill(lbk_maglev *m, struct fill_state *scratch)
{
    uint32_t nst, wmax;
    prepare(m, scratch, &nst, &wmax);
    if (nst == 0)
        return; /* lookups answer LBK_ENOBACKEND without reading the table */
    if (m->wide)
        fill32(m->table, m->size, scratch, nst, wmax);
    else
        fill16(m->table, m->size, scratch, nst, wmax);
}

/* ---- construction ----------------------------------------------------- */

static void maglev_destroy(lbk_ref *r)
{
    lbk_maglev *m = (lbk_maglev *)r;
    const lbk_snapshot *snap = m->snap;
    if (m->owns_memory) {
        lbk_allocator a = m->alloc;
        lbk_free(&a, m);
    }
    lbk_snapshot_release(snap);
}

static void setup(lbk_maglev *m, void *mem, const lbk_snapshot *snap,
                  const lbk_maglev_options *o)
{
    memset(m, 0, sizeof(*m));
    lbk_ref_init(&m->ref, maglev_destroy);
    m->wide = snap->n >= 65536;
    m->size = o->table_size;
    m->weighted = count_weighted(snap);
    m->seed = o->seed;
    m->snap = snap;
    m->table = (char *)mem + header_bytes();
}

void lbk_maglev_options_init(lbk_maglev_options *opts)
{
    if (opts == NULL)
        return;
    opts->table_size = LBK_MAGLEV_DEFAULT_TABLE_SIZE;
    opts->seed = 0;
}

int lbk_maglev_init(void *buf, size_t bytes, const lbk_snapshot *snap,
                    const lbk_maglev_options *opts, lbk_maglev **out)
{
    RETURN_ERROR_IF(buf == NULL || snap == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(((uintptr_t)buf & 7) != 0, LBK_EINVAL);
    lbk_maglev_options o;
    FORWARD_IF_ERROR(check_args(snap, opts, &o));
    size_t need;
    /* defensive: check_args already bounded table_size and a snapshot never
     * exceeds LBK_SET_MAX, so this cannot fail (and the table_bytes below
     * neither) */
    FORWARD_IF_ERROR(lbk_maglev_table_size_bytes(snap->n, o.table_size, &need));
    RETURN_ERROR_IF(bytes < need, LBK_ERANGE);
    lbk_maglev *m = buf;
    setup(m, buf, snap, &o);
    size_t t;
    FORWARD_IF_ERROR(table_bytes(snap->n, o.table_size, &t));
    fill(m, (struct fill_state *)((char *)buf + header_bytes() + t));
    lbk_snapshot_retain(snap);
    *out = m;
    return 0;
}

int lbk_maglev_build(const lbk_snapshot *snap, const lbk_maglev_options *opts,
                     const lbk_allocator *alloc, lbk_maglev **out)
{
    RETURN_ERROR_IF(snap == NULL || out == NULL || !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    lbk_maglev_options o;
    FORWARD_IF_ERROR(check_args(snap, opts, &o));
    size_t t;
    FORWARD_IF_ERROR(table_bytes(snap->n, o.table_size, &t));
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_maglev *m = lbk_malloc(&a, header_bytes() + t);
    RETURN_ERROR_IF(m == NULL, LBK_ENOMEM);
    struct fill_state *scratch =
        lbk_calloc(&a, snap->n ? snap->n : 1, sizeof(*scratch));
    if (scratch == NULL) {
        lbk_free(&a, m);
        return LBK_ENOMEM;
    }
    setup(m, m, snap, &o);
    m->alloc = a;
    m->owns_memory = true;
    fill(m, scratch);
    lbk_free(&a, scratch);
    lbk_snapshot_retain(snap);
    *out = m;
    return 0;
}

void lbk_maglev_free(lbk_maglev *m)
{
    if (m != NULL)
        lbk_ref_release(&m->ref);
}

uint32_t lbk_maglev_table_size(const lbk_maglev *m)
{
    return m ? m->size : 0;
}

size_t lbk_maglev_memory_bytes(const lbk_maglev *m)
{
    if (m == NULL)
        return 0;
    size_t t = 0;
    /* defensive: validated at build, cannot fail here */
    (void)table_bytes(m->snap->n, m->size, &t);
    return header_bytes() + t;
}

/* ---- lookups ---------------------------------------------------------- */

static inline uint32_t entry_at(const lbk_maglev *m, uint64_t e)
{
    return m->wide ? ((const uint32_t *)m->table)[e]
                   : ((const uint16_t *)m->table)[e];
}

static inline bool usable(const lbk_snap_entry *e)
{
    return lbk_backend_state_eligible(
        atomic_load_explicit(&e->b->state, memory_order_relaxed));
}

/* The health rule of maglev.h: re-probe, then scan.  Off the hot path. */
static int lookup_fallback(const lbk_maglev *m, uint64_t hash, uint32_t home,
                           lbk_backend **out)
{
    const lbk_snap_entry *e = m->snap->e;
    for (uint32_t r = 1; r <= LBK_MAGLEV_PROBES; r++) {
        uint64_t h = lbk_mix64(hash + r * LBK_GOLDEN_GAMMA);
        uint32_t i = entry_at(m, lbk_bounded64(h, m->size));
        if (usable(&e[i])) {
            *out = e[i].b;
            return 0;
        }
    }
    uint32_t n = m->snap->n;
    for (uint32_t s = 0, i = home; s < n; s++) {
        if (e[i].weight != 0 && usable(&e[i])) {
            *out = e[i].b;
            return 0;
        }
        if (++i == n)
            i = 0;
    }
    return LBK_ENOBACKEND;
}

int lbk_maglev_lookup_hash(const lbk_maglev *m, uint64_t hash,
                           lbk_backend **out)
{
    RETURN_ERROR_IF(m == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(m->weighted == 0, LBK_ENOBACKEND);
    uint32_t i = entry_at(m, lbk_bounded64(hash, m->size));
    const lbk_snap_entry *e = &m->snap->e[i];
    if (LBK_LIKELY(usable(e))) {
        *out = e->b;
        return 0;
    }
    return lookup_fallback(m, hash, i, out);
}

int lbk_maglev_lookup(const lbk_maglev *m, const void *key, size_t len,
                      lbk_backend **out)
{
    RETURN_ERROR_IF(m == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(key == NULL && len > 0, LBK_EINVAL);
    return lbk_maglev_lookup_hash(m, lbk_hash(key, len, m->seed), out);
}

int lbk_maglev_ownership(const lbk_maglev *m, uint32_t *counts,
                         uint32_t ncounts)
{
    RETURN_ERROR_IF(m == NULL || counts == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(ncounts < m->snap->n, LBK_ERANGE);
    memset(counts, 0, (size_t)m->snap->n * sizeof(*counts));
    if (m->weighted == 0)
        return 0;
    for (uint32_t e = 0; e < m->size; e++)
        counts[entry_at(m, e)]++;
    return 0;
}
