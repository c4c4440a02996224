/*
 * tests/fuzz/fuzz_backend.c - the backend set under random operations.
 *
 * The input is a program: each step reads an opcode and its arguments and
 * applies add / remove / re-weight / priority / health / ejection /
 * begin / end / latency / snapshot / publish, against a plain model of what
 * the set must contain.  After every step: the count and total weight match
 * the model, every error is one the header documents for that call, and
 * in-flight counts are at least the requests the harness holds open.  An
 * allocator that fails at an input-chosen call exercises the ENOMEM paths;
 * at the end every request ends, everything is released, and nothing leaks.
 */
#include "fuzz.h"

#include "internal.h"
#include "lbkit/backend.h"

enum { MAXB = 48, MAXOPEN = 32 };

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

struct model {
    bool present[MAXB];
    uint32_t slot[MAXB];
    uint32_t weight[MAXB];
    uint32_t count;
    uint64_t total;
};

struct open_req {
    const lbk_snapshot *snap;
    lbk_backend *b;
};

static int find_model(const struct model *m, uint32_t slot)
{
    for (int i = 0; i < MAXB; i++)
        if (m->present[i] && m->slot[i] == slot)
            return i;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    struct alloc_state as = {0, -1, 0};
    uint8_t f = fz_u8(&in);
    as.fail_at = (f & 0x80) ? (long)(f & 0x7f) : -1;
    lbk_allocator hook = {fz_alloc, fz_free, &as};
    lbk_set *set;
    int rc = lbk_set_create(&hook, &set);
    if (rc < 0) {
        FUZZ_CHECK(rc == LBK_ENOMEM && as.live == 0);
        return 0;
    }
    struct model m = {0};
    struct open_req open[MAXOPEN];
    int nopen = 0;
    char name[LBK_NAME_MAX + 8];
    uint64_t now = 0;

    for (int step = 0; step < 512 && in.n > 0; step++) {
        uint8_t op = fz_u8(&in) % 11;
        int i = fz_u8(&in) % MAXB;
        switch (op) {
        case 0: { /* add a model name */
            snprintf(name, sizeof name, "backend-%d", i);
            uint32_t w = fz_u8(&in) & 1 ? fz_u32(&in) : fz_u8(&in);
            uint32_t slot;
            rc = lbk_set_add(set, name, w, NULL, &slot);
            if (m.present[i]) {
                FUZZ_CHECK(rc == LBK_EEXIST);
            } else if (m.total + w > UINT32_MAX) {
                FUZZ_CHECK(rc == LBK_EOVERFLOW);
            } else if (rc == 0) {
                m.present[i] = true;
                m.slot[i] = slot;
                m.weight[i] = w;
                m.count++;
                m.total += w;
            } else {
                FUZZ_CHECK(rc == LBK_ENOMEM);
            }
            break;
        }
        case 1: { /* add arbitrary bytes as a name */
            size_t len = fz_str(&in, name, sizeof name);
            uint32_t slot;
            rc = lbk_set_add(set, name, 0, NULL, &slot);
            if (len == 0)
                FUZZ_CHECK(rc == LBK_EINVAL);
            else if (len > LBK_NAME_MAX)
                FUZZ_CHECK(rc == LBK_ETOOLONG);
            else if (rc == 0) {
                /* take it out again; the allocator fails one call at most */
                rc = lbk_set_remove(set, slot);
                if (rc == LBK_ENOMEM)
                    rc = lbk_set_remove(set, slot);
                FUZZ_CHECK(rc == 0);
            } else
                FUZZ_CHECK(rc == LBK_EEXIST || rc == LBK_ENOMEM);
            break;
        }
        case 2: { /* remove */
            uint32_t slot = m.present[i] ? m.slot[i] : fz_u8(&in);
            int mi = find_model(&m, slot);
            rc = lbk_set_remove(set, slot);
            if (mi < 0) {
                FUZZ_CHECK(rc == LBK_ENOENT);
            } else if (rc == 0) {
                m.present[mi] = false;
                m.count--;
                m.total -= m.weight[mi];
            } else {
                FUZZ_CHECK(rc == LBK_ENOMEM);
            }
            break;
        }
        case 3: { /* re-weight */
            uint32_t w = fz_u32(&in) >> (fz_u8(&in) % 32);
            if (!m.present[i]) {
                FUZZ_CHECK(lbk_set_set_weight(set, fz_u8(&in) + 4096, w) ==
                           LBK_ENOENT);
                break;
            }
            rc = lbk_set_set_weight(set, m.slot[i], w);
            if (m.total - m.weight[i] + w > UINT32_MAX) {
                FUZZ_CHECK(rc == LBK_EOVERFLOW);
            } else {
                FUZZ_CHECK(rc == 0);
                m.total = m.total - m.weight[i] + w;
                m.weight[i] = w;
            }
            break;
        }
        case 4: { /* priority */
            uint32_t p = fz_u8(&in);
            if (m.present[i]) {
                rc = lbk_set_set_priority(set, m.slot[i], p);
                FUZZ_CHECK(rc == (p > LBK_PRIORITY_MAX ? LBK_ERANGE : 0));
            }
            break;
        }
        case 5: { /* health / ejection on a live backend */
            uint8_t h = fz_u8(&in);
            if (m.present[i]) {
                lbk_backend *b = lbk_set_backend(set, m.slot[i]);
                rc = lbk_backend_set_health(b, (lbk_health)(h % 4));
                FUZZ_CHECK(rc == (h % 4 == 3 ? LBK_EINVAL : 0));
                FUZZ_CHECK(lbk_backend_set_ejected(b, h & 0x10) == 0);
                FUZZ_CHECK(lbk_backend_eligible(b) ==
                           (lbk_backend_health(b) == LBK_HEALTH_UP &&
                            !lbk_backend_ejected(b)));
            }
            break;
        }
        case 6: { /* begin a request from the published snapshot */
            const lbk_snapshot *snap;
            FUZZ_CHECK(lbk_set_acquire(set, &snap) == 0);
            uint32_t n = lbk_snapshot_count(snap);
            if (n == 0 || nopen == MAXOPEN) {
                lbk_snapshot_release(snap);
                break;
            }
            lbk_backend *b = lbk_snapshot_backend(snap, (uint32_t)i % n);
            FUZZ_CHECK(b != NULL && lbk_backend_name(b) != NULL);
            FUZZ_CHECK(lbk_backend_begin(b) == 0);
            open[nopen++] = (struct open_req){snap, b};
            break;
        }
        case 7: /* end one */
            if (nopen > 0) {
                int k = i % nopen;
                FUZZ_CHECK(lbk_backend_end(open[k].b) == 0);
                lbk_snapshot_release(open[k].snap);
                open[k] = open[--nopen];
            }
            break;
        case 8:
            rc = lbk_set_publish(set);
            FUZZ_CHECK(rc == 0 || rc == LBK_ENOMEM);
            break;
        case 9:
            if (m.present[i])
                FUZZ_CHECK(lbk_backend_record_latency(
                               lbk_set_backend(set, m.slot[i]), fz_u32(&in),
                               now += fz_u8(&in)) == 0);
            break;
        case 10: { /* a private snapshot agrees with the model */
            const lbk_snapshot *snap;
            rc = lbk_set_snapshot(set, &snap);
            if (rc < 0) {
                FUZZ_CHECK(rc == LBK_ENOMEM);
                break;
            }
            FUZZ_CHECK(lbk_snapshot_count(snap) == m.count);
            FUZZ_CHECK(lbk_snapshot_total_weight(snap) == m.total);
            lbk_snapshot_release(snap);
            break;
        }
        }
        FUZZ_CHECK(lbk_set_count(set) == m.count);
        FUZZ_CHECK(lbk_set_total_weight(set) == m.total);
        for (int k = 0; k < nopen; k++)
            FUZZ_CHECK(lbk_backend_in_flight(open[k].b) > 0);
    }
    for (int k = 0; k < MAXB; k++) {
        if (!m.present[k])
            continue;
        snprintf(name, sizeof name, "backend-%d", k);
        uint32_t slot;
        FUZZ_CHECK(lbk_set_find(set, name, &slot) == 0 && slot == m.slot[k]);
    }
    while (nopen > 0) {
        nopen--;
        FUZZ_CHECK(lbk_backend_end(open[nopen].b) == 0);
        lbk_snapshot_release(open[nopen].snap);
    }
    uint32_t cursor = 0;
    lbk_backend *b;
    while (lbk_set_iter(set, &cursor, &b) == 1)
        FUZZ_CHECK(lbk_backend_in_flight(b) == 0);
    lbk_set_free(set);
    FUZZ_CHECK(as.live == 0);
    return 0;
}
