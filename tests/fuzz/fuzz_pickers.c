/*
 * tests/fuzz/fuzz_pickers.c - the backend set and every request policy
 * under random interleavings of add, remove, re-weight, health, ejection,
 * slow-start scale, rebuild/publish, pick and release.
 *
 * Invariants after every step: a pick returns 0 or LBK_ENOBACKEND; a picked
 * backend was eligible (UP, not ejected) when picked and belongs to the
 * picker's current snapshot; when the picker is up to date and some backend
 * is eligible with weight > 0 at full scale, the pick succeeds; every open
 * pick's backend counts at least one request in flight; at the end, after
 * every release, every backend's in-flight count is back to 0, and nothing
 * leaks (the allocator fails at an input-chosen call to cover ENOMEM).
 */
#include "fuzz.h"

#include "internal.h"
#include "lbkit/backend.h"
#include "lbkit/picker.h"

enum { MAXB = 24, MAXOPEN = 16 };

struct alloc_state {
    long calls, fail_at, live;
};

static void *fz_alloc(void *user, size_t size)
{
    struct alloc_state *a = user;
    if (a->calls++ == a->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        a->live++;
    return p;
}

static void fz_free(void *user, void *p)
{
    struct alloc_state *a = user;
    if (p) {
        a->live--;
        free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    struct alloc_state as = {0, -1, 0};
    uint8_t f = fz_u8(&in);
    lbk_policy policy = (lbk_policy)(f % lbk_policy_count());
    if (!lbk_policy_available(policy))
        return 0;
    if (f & 0x80)
        as.fail_at = fz_u8(&in);
    lbk_allocator hook = {fz_alloc, fz_free, &as};
    lbk_set *set;
    if (lbk_set_create(&hook, &set) < 0)
        return 0;
    lbk_picker_options po;
    lbk_picker_options_init(&po);
    po.policy = lbk_policy_name(policy);
    po.seed = fz_u64(&in) | 1;
    po.choices = 1 + fz_u8(&in) % 8;
    lbk_picker *pk = NULL;
    int rc = lbk_picker_create(set, &po, &hook, &pk);
    if (rc < 0) {
        FUZZ_CHECK(rc == LBK_ENOMEM);
        lbk_set_free(set);
        FUZZ_CHECK(as.live == 0);
        return 0;
    }
    uint32_t slots[MAXB];
    bool present[MAXB] = {false};
    lbk_pick open[MAXOPEN];
    int nopen = 0;
    bool fresh = false; /* picker rebuilt since the last structural change */
    bool scaled = false;
    uint64_t now = 1;
    char name[32];

    for (int step = 0; step < 400 && in.n > 0; step++) {
        uint8_t op = fz_u8(&in) % 9;
        int i = fz_u8(&in) % MAXB;
        lbk_backend *b = present[i] ? lbk_set_backend(set, slots[i]) : NULL;
        switch (op) {
        case 0:
            if (!present[i]) {
                snprintf(name, sizeof name, "10.1.0.%d:80", i);
                if (lbk_set_add(set, name, fz_u8(&in) % 8, NULL, &slots[i]) ==
                    0) {
                    present[i] = true;
                    fresh = false;
                }
            }
            break;
        case 1:
            if (present[i] && lbk_set_remove(set, slots[i]) == 0) {
                present[i] = false;
                fresh = false;
            }
            break;
        case 2:
            if (present[i]) {
                FUZZ_CHECK(lbk_set_set_weight(set, slots[i], fz_u8(&in) % 8) ==
                           0);
                fresh = false;
            }
            break;
        case 3:
            if (b != NULL) {
                uint8_t h = fz_u8(&in);
                lbk_backend_set_health(b, (lbk_health)(h % 3));
                lbk_backend_set_ejected(b, (h & 4) != 0);
            }
            break;
        case 4:
            if (b != NULL) {
                scaled = true;
                lbk_backend_set_weight_scale(b, (fz_u8(&in) % 5) / 4.0);
            }
            break;
        case 5:
            rc = lbk_picker_rebuild(pk);
            FUZZ_CHECK(rc == 0 || rc == LBK_ENOMEM);
            if (rc == 0)
                fresh = true;
            break;
        case 6:
        case 7: {
            if (nopen == MAXOPEN)
                break;
            bool want = false;
            for (int k = 0; k < MAXB; k++) {
                lbk_backend *x =
                    present[k] ? lbk_set_backend(set, slots[k]) : NULL;
                want |=
                    x && lbk_backend_eligible(x) && lbk_backend_weight(x) > 0;
            }
            lbk_pick *p = &open[nopen];
            rc = lbk_picker_pick(pk, now += fz_u8(&in), p);
            if (rc == 0) {
                lbk_backend *got = lbk_pick_backend(p);
                FUZZ_CHECK(got != NULL && lbk_backend_eligible(got));
                FUZZ_CHECK(lbk_backend_in_flight(got) >= 1);
                nopen++;
            } else {
                FUZZ_CHECK(rc == LBK_ENOBACKEND);
                if (fresh && !scaled)
                    FUZZ_CHECK(!want);
            }
            break;
        }
        case 8:
            if (nopen > 0) {
                int k = i % nopen;
                lbk_outcome out = {fz_u8(&in) & 1, fz_u32(&in), now};
                FUZZ_CHECK(lbk_picker_release(pk, &open[k], &out) == 0);
                open[k] = open[--nopen];
            }
            break;
        }
        for (int k = 0; k < nopen; k++)
            FUZZ_CHECK(lbk_backend_in_flight(lbk_pick_backend(&open[k])) >= 1);
    }
    while (nopen > 0)
        FUZZ_CHECK(lbk_picker_release(pk, &open[--nopen], NULL) == 0);
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(set, &cursor, &b) == 1)
        FUZZ_CHECK(lbk_backend_in_flight(b) == 0);
    lbk_picker_free(pk);
    lbk_set_free(set);
    FUZZ_CHECK(as.live == 0);
    return 0;
}
