/*
 * tests/fuzz/fuzz_hashing.c - every key -> backend algorithm on arbitrary
 * backend names (any bytes), weights, sizes and keys.
 *
 * For each algorithm and mode (XXH3 ring, libketama, libmemcached, nginx,
 * Maglev, jump, HRW, bounded loads) the harness builds twice from the same
 * snapshot, marks some backends down, and looks up keys taken from the
 * input.  Invariants: the two builds fail or succeed alike; a failed build
 * returns a known lbkit code (never ENOMEM here: the allocator never fails);
 * a lookup returns 0 or LBK_ENOBACKEND; the owner is an eligible backend of
 * the snapshot; both builds agree on every key; top-k lists are distinct.
 */
#include "fuzz.h"

#include "internal.h"
#include "lbkit/bounded.h"
#include "lbkit/hrw.h"
#include "lbkit/jump.h"
#include "lbkit/maglev.h"
#include "lbkit/ring.h"

enum {
    A_XXH3,
    A_KETAMA,
    A_MEMCACHED,
    A_NGINX,
    A_MAGLEV,
    A_JUMP,
    A_HRW,
    A_BOUNDED,
    A_N
};

struct obj {
    lbk_ring *ring;
    lbk_maglev *mg;
    lbk_jump *jp;
    lbk_hrw *hrw;
    lbk_bounded *bd;
};

static int build(int a, const lbk_snapshot *snap, uint32_t param, uint64_t seed,
                 struct obj *o)
{
    memset(o, 0, sizeof(*o));
    lbk_ring_options ro;
    lbk_ring_options_init(&ro);
    ro.seed = seed;
    switch (a) {
    case A_XXH3:
        ro.points_per_weight = 1 + param % 200;
        return lbk_ring_build(snap, &ro, NULL, &o->ring);
    case A_KETAMA:
    case A_MEMCACHED:
    case A_NGINX:
        ro.mode = a == A_KETAMA      ? LBK_RING_LIBKETAMA
                  : a == A_MEMCACHED ? LBK_RING_LIBMEMCACHED
                                     : LBK_RING_NGINX;
        ro.seed = 0;
        return lbk_ring_build(snap, &ro, NULL, &o->ring);
    case A_MAGLEV: {
        lbk_maglev_options mo;
        lbk_maglev_options_init(&mo);
        mo.table_size = param % 5000; /* primes, composites, too small */
        mo.seed = seed;
        return lbk_maglev_build(snap, &mo, NULL, &o->mg);
    }
    case A_JUMP: {
        lbk_jump_options jo;
        lbk_jump_options_init(&jo);
        jo.seed = seed;
        return lbk_jump_build(snap, &jo, NULL, &o->jp);
    }
    case A_HRW: {
        lbk_hrw_options ho;
        lbk_hrw_options_init(&ho);
        ho.seed = seed;
        return lbk_hrw_build(snap, &ho, NULL, &o->hrw);
    }
    default: {
        lbk_bounded_options bo;
        lbk_bounded_options_init(&bo);
        bo.balance_factor = param % 400;
        bo.ring.seed = seed;
        return lbk_bounded_build(snap, &bo, NULL, &o->bd);
    }
    }
}

static int lookup(int a, struct obj *o, const uint8_t *key, size_t len,
                  lbk_backend **b)
{
    switch (a) {
    case A_MAGLEV:
        return lbk_maglev_lookup(o->mg, key, len, b);
    case A_JUMP:
        return lbk_jump_lookup(o->jp, key, len, b);
    case A_HRW:
        return lbk_hrw_lookup(o->hrw, key, len, b);
    case A_BOUNDED: {
        int rc = lbk_bounded_acquire(o->bd, key, len, b);
        if (rc == 0)
            FUZZ_CHECK(lbk_bounded_release(o->bd, *b) == 0);
        return rc;
    }
    default:
        return lbk_ring_lookup(o->ring, key, len, b);
    }
}

static void drop(struct obj *o)
{
    lbk_ring_free(o->ring);
    lbk_maglev_free(o->mg);
    lbk_jump_free(o->jp);
    lbk_hrw_free(o->hrw);
    lbk_bounded_free(o->bd);
}

static bool listed(const lbk_snapshot *snap, const lbk_backend *b)
{
    for (uint32_t i = 0; i < lbk_snapshot_count(snap); i++)
        if (lbk_snapshot_backend(snap, i) == b)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    lbk_set *set;
    FUZZ_CHECK(lbk_set_create(NULL, &set) == 0);
    uint32_t nb = fz_u8(&in) % 24;
    char name[300];
    for (uint32_t i = 0; i < nb; i++) {
        uint8_t kind = fz_u8(&in);
        if (kind & 1)
            fz_str(&in, name, sizeof name); /* any bytes */
        else
            snprintf(name, sizeof name, "10.0.%u.%u:%u", kind, i,
                     (kind & 2) ? 11211u : 1000u + fz_u8(&in));
        /* weights up to 255: large enough to matter, small enough that
         * one input builds in milliseconds (nginx: 160 points per unit) */
        uint32_t w = (kind & 0x80) ? fz_u8(&in) : fz_u8(&in) % 16;
        uint32_t slot;
        (void)lbk_set_add(set, name, w, NULL, &slot); /* dups etc. refused */
    }
    const lbk_snapshot *snap;
    FUZZ_CHECK(lbk_set_snapshot(set, &snap) == 0);
    uint32_t param = fz_u32(&in);
    uint64_t seed = fz_u64(&in);
    uint32_t down = fz_u32(&in);
    for (int a = 0; a < A_N; a++) {
        struct obj o1, o2;
        int rc1 = build(a, snap, param, seed, &o1);
        int rc2 = build(a, snap, param, seed, &o2);
        FUZZ_CHECK(rc1 == rc2);
        if (rc1 < 0) {
            FUZZ_CHECK(rc1 != LBK_ENOMEM &&
                       strcmp(lbk_errname(rc1), "LBK_UNKNOWN") != 0);
            continue;
        }
        for (uint32_t i = 0; i < lbk_snapshot_count(snap); i++)
            lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                   (down >> (i % 32)) & 1 ? LBK_HEALTH_DOWN
                                                          : LBK_HEALTH_UP);
        for (int k = 0; k < 16; k++) {
            size_t len = fz_u8(&in) % 24;
            if (len > in.n)
                len = in.n;
            const uint8_t *key = in.p;
            in.p += len;
            in.n -= len;
            lbk_backend *b1 = NULL, *b2 = NULL;
            int l1 = lookup(a, &o1, key, len, &b1);
            int l2 = lookup(a, &o2, key, len, &b2);
            FUZZ_CHECK(l1 == l2);
            FUZZ_CHECK(l1 == 0 || l1 == LBK_ENOBACKEND);
            if (l1 == 0) {
                FUZZ_CHECK(b1 == b2);
                FUZZ_CHECK(listed(snap, b1) && lbk_backend_eligible(b1));
            }
            if (a == A_HRW || a == A_XXH3) {
                lbk_backend *top[8];
                uint32_t cnt = 0;
                int rc =
                    a == A_HRW
                        ? lbk_hrw_lookup_top(o1.hrw, key, len, 8, top, &cnt)
                        : lbk_ring_lookup_top(o1.ring, key, len, 8, top, &cnt);
                FUZZ_CHECK(rc == 0 || rc == LBK_ENOBACKEND);
                for (uint32_t x = 0; rc == 0 && x < cnt; x++) {
                    FUZZ_CHECK(lbk_backend_eligible(top[x]));
                    for (uint32_t y = x + 1; y < cnt; y++)
                        FUZZ_CHECK(top[x] != top[y]);
                }
                if (rc == 0 && l1 == 0)
                    FUZZ_CHECK(cnt >= 1 && top[0] == b1);
            }
        }
        for (uint32_t i = 0; i < lbk_snapshot_count(snap); i++)
            lbk_backend_set_health(lbk_snapshot_backend(snap, i),
                                   LBK_HEALTH_UP);
        drop(&o1);
        drop(&o2);
    }
    /* NULL key with a length is refused, not read */
    lbk_backend *b;
    struct obj o;
    if (build(A_HRW, snap, param, seed, &o) == 0) {
        FUZZ_CHECK(lbk_hrw_lookup(o.hrw, NULL, 3, &b) == LBK_EINVAL);
        drop(&o);
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    return 0;
}
