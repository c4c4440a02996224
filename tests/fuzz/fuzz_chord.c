/*
 * tests/fuzz/fuzz_chord.c - Chord under random joins, leaves, failures
 * and maintenance.
 *
 * Phase 1 (anything goes): joins through random nodes, graceful leaves,
 * silent failures, maintenance rounds and lookups in any order; every call
 * returns 0 or a code chord.h documents for it, and a lookup that succeeds
 * names a live node.
 * Phase 2 (the guarantee in chord.h, "Rounds"): from a freshly built
 * correct ring, J joins and fewer than r leaves with more than 2r nodes
 * throughout and no failures, then J + 1 + max(m, r) rounds: every lookup
 * from every live node returns the true successor (lbk_chord_owner).
 */
#include <stdbool.h>

#include "fuzz.h"
#include "lbkit/chord.h"

static uint64_t id_in(fuzz_in *in, unsigned bits)
{
    uint64_t v = fz_u64(in);
    return bits == 64 ? v : v & ((UINT64_C(1) << bits) - 1);
}

static void phase1(fuzz_in *in)
{
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.bits = 1 + fz_u8(in) % 64;
    o.succ_list = 1 + fz_u8(in) % 8;
    uint64_t ids[16];
    size_t n = 1 + fz_u8(in) % 16;
    for (size_t i = 0; i < n; i++)
        ids[i] = id_in(in, o.bits);
    lbk_chord *c;
    int rc = lbk_chord_create(&o, ids, n, NULL, &c);
    if (rc < 0) {
        FUZZ_CHECK(rc == LBK_EEXIST);
        return;
    }
    for (int step = 0; step < 64 && in->n > 0; step++) {
        uint32_t nodes = lbk_chord_node_count(c);
        uint32_t node = nodes ? fz_u8(in) % nodes : 0;
        switch (fz_u8(in) % 5) {
        case 0: {
            uint32_t out;
            rc = lbk_chord_join(c, id_in(in, o.bits), node, &out);
            FUZZ_CHECK(rc == 0 || rc == LBK_ESTATE || rc == LBK_EEXIST ||
                       rc == LBK_ETIMEDOUT || rc == LBK_ERANGE ||
                       rc == LBK_ENOMEM);
            break;
        }
        case 1:
            rc = lbk_chord_leave(c, node);
            FUZZ_CHECK(rc == 0 || rc == LBK_ESTATE);
            break;
        case 2:
            rc = lbk_chord_fail(c, node);
            FUZZ_CHECK(rc == 0 || rc == LBK_ESTATE);
            break;
        case 3:
            FUZZ_CHECK(lbk_chord_maintain(c, fz_u8(in) % 4) == 0);
            break;
        case 4: {
            lbk_chord_result r;
            uint32_t path[130];
            rc = lbk_chord_lookup(c, node, id_in(in, o.bits), path, 130, &r);
            if (rc == 0) {
                lbk_chord_state st;
                FUZZ_CHECK(lbk_chord_node(c, r.owner, NULL, &st) == 0);
                FUZZ_CHECK(st == LBK_CHORD_LIVE);
                FUZZ_CHECK(r.path_len == r.hops + 1);
            } else {
                FUZZ_CHECK(rc == LBK_ESTATE || rc == LBK_ETIMEDOUT);
            }
            break;
        }
        }
    }
    lbk_chord_free(c);
}

static void phase2(fuzz_in *in)
{
    lbk_chord_options o;
    lbk_chord_options_init(&o);
    o.bits = 8 + fz_u8(in) % 57; /* room for many distinct ids */
    o.succ_list = 1 + fz_u8(in) % 4;
    unsigned r = o.succ_list;
    size_t n = 2 * r + 2 + fz_u8(in) % 24;
    uint64_t ids[64];
    uint64_t mask = o.bits == 64 ? UINT64_MAX : (UINT64_C(1) << o.bits) - 1;
    for (size_t i = 0; i < n; i++) {
        ids[i] = id_in(in, o.bits);
        bool dup;
        do { /* step to the next free id */
            dup = false;
            for (size_t j = 0; j < i; j++)
                dup |= ids[j] == ids[i];
            if (dup)
                ids[i] = (ids[i] + 1) & mask;
        } while (dup);
    }
    lbk_chord *c;
    FUZZ_CHECK(lbk_chord_create(&o, ids, n, NULL, &c) == 0);
    uint32_t joins = 0, leaves = 0, live = (uint32_t)n;
    for (int step = 0; step < 32 && in->n > 0; step++) {
        uint32_t node = fz_u8(in) % lbk_chord_node_count(c);
        lbk_chord_state st;
        FUZZ_CHECK(lbk_chord_node(c, node, NULL, &st) == 0);
        if (fz_u8(in) & 1) {
            uint32_t out;
            int rc = lbk_chord_join(c, id_in(in, o.bits), node, &out);
            if (rc == 0) {
                joins++;
                live++;
            }
        } else if (leaves + 1 < r && live > 2 * r + 1 && st == LBK_CHORD_LIVE) {
            FUZZ_CHECK(lbk_chord_leave(c, node) == 0);
            leaves++;
            live--;
        }
    }
    unsigned big = o.bits > r ? o.bits : r;
    FUZZ_CHECK(lbk_chord_maintain(c, joins + 1 + big) == 0);
    for (uint32_t node = 0; node < lbk_chord_node_count(c); node++) {
        lbk_chord_state st;
        FUZZ_CHECK(lbk_chord_node(c, node, NULL, &st) == 0);
        if (st != LBK_CHORD_LIVE)
            continue;
        for (int k = 0; k < 4; k++) {
            uint64_t key =
                id_in(in, o.bits) ^ (uint64_t)k * 0x9e3779b97f4a7c15u;
            if (o.bits < 64)
                key &= (UINT64_C(1) << o.bits) - 1;
            uint32_t truth;
            lbk_chord_result res;
            FUZZ_CHECK(lbk_chord_owner(c, key, &truth) == 0);
            FUZZ_CHECK(lbk_chord_lookup(c, node, key, NULL, 0, &res) == 0);
            FUZZ_CHECK(res.owner == truth);
        }
    }
    lbk_chord_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    if (fz_u8(&in) & 1)
        phase1(&in);
    else
        phase2(&in);
    return 0;
}
