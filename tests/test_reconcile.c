/*
 * tests/test_reconcile.c - reconciliation: minimal diffs, one publish per
 * change, callbacks, endpoint records, in-flight requests on removed
 * backends, garbage and failing sources (set unchanged, stale limit),
 * foreign backends, large reports, and allocation failure at every site of
 * both the reconciler and the set (rolled back, nothing leaked).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "lbkit/reconcile.h"

struct log {
    int n;
    char lines[64][300];
};

static void on_change(void *user, const lbk_change *c)
{
    struct log *l = user;
    if (l->n >= 64)
        return;
    char *s = l->lines[l->n++];
    switch (c->kind) {
    case LBK_CHANGE_ADD:
        snprintf(s, 300, "+ %s %s:%u w=%u p=%u", c->name, c->address, c->port,
                 c->weight, c->priority);
        break;
    case LBK_CHANGE_REMOVE:
        snprintf(s, 300, "- %s", c->name);
        break;
    case LBK_CHANGE_WEIGHT:
        snprintf(s, 300, "~ %s w=%u->%u p=%u->%u", c->name, c->old_weight,
                 c->weight, c->old_priority, c->priority);
        break;
    case LBK_CHANGE_PRIORITY:
        snprintf(s, 300, "~ %s p=%u->%u", c->name, c->old_priority,
                 c->priority);
        break;
    }
}

static bool logged(const struct log *l, const char *line)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->lines[i], line) == 0)
            return true;
    return false;
}

/* A printable digest of the set: "name w p;" in slot order. */
static void set_digest(lbk_set *set, char *buf, size_t size)
{
    uint32_t cur = 0;
    lbk_backend *b;
    size_t at = 0;
    buf[0] = '\0';
    while (lbk_set_iter(set, &cur, &b) == 1) {
        const lbk_snapshot *unused = NULL;
        (void)unused;
        at += (size_t)snprintf(buf + at, size - at, "%s %u;",
                               lbk_backend_name(b), lbk_backend_weight(b));
    }
}

/* Published snapshot digest: names, weights, priorities. */
static void pub_digest(lbk_set *set, char *buf, size_t size)
{
    const lbk_snapshot *s;
    assert_ok(lbk_set_acquire(set, &s));
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < lbk_snapshot_count(s); i++)
        at += (size_t)snprintf(buf + at, size - at, "%s %u %u;",
                               lbk_backend_name(lbk_snapshot_backend(s, i)),
                               lbk_snapshot_weight(s, i),
                               lbk_snapshot_priority(s, i));
    lbk_snapshot_release(s);
}

static lbk_backend *find(lbk_set *set, const char *name)
{
    uint32_t slot;
    if (lbk_set_find(set, name, &slot) < 0)
        return NULL;
    return lbk_set_backend(set, slot);
}

static void test_format_and_validate(void **state)
{
    (void)state;
    char buf[300];
    lbk_instance i4 = {NULL, "10.0.0.1", 8080, 1, 0};
    lbk_instance i6 = {NULL, "::1", 443, 1, 0};
    assert_ok(lbk_instance_format_name(&i4, buf, sizeof buf));
    assert_string_equal(buf, "10.0.0.1:8080");
    assert_ok(lbk_instance_format_name(&i6, buf, sizeof buf));
    assert_string_equal(buf, "[::1]:443");
    assert_lbk(lbk_instance_format_name(&i4, buf, 5), LBK_ETOOLONG);
    assert_lbk(lbk_instance_format_name(NULL, buf, 5), LBK_EINVAL);
    assert_lbk(lbk_instance_format_name(&i4, NULL, 5), LBK_EINVAL);

    char longname[LBK_NAME_MAX + 2], longaddr[LBK_ADDRESS_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    /* A derived name over LBK_NAME_MAX: a 250-byte address + ":65535". */
    char addr250[251];
    memset(addr250, 'h', 250);
    addr250[250] = '\0';
    struct {
        lbk_instance in;
        int rc;
    } bad[] = {
        {{"a", NULL, 1, 1, 0}, LBK_EINVAL},
        {{"a", "", 1, 1, 0}, LBK_EINVAL},
        {{"a", "h", 0, 1, 0}, LBK_EINVAL},
        {{"a", longaddr, 1, 1, 0}, LBK_ETOOLONG},
        {{longname, "h", 1, 1, 0}, LBK_ETOOLONG},
        {{NULL, addr250, 65535, 1, 0}, LBK_ETOOLONG},
        {{"a", "h", 1, 1, LBK_PRIORITY_MAX + 1}, LBK_ERANGE},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lbk_instance two[2] = {{"ok", "10.0.0.9", 1, 1, 0}, bad[k].in};
        size_t at = 99;
        assert_lbk(lbk_reconcile_validate(two, 2, NULL, &at), bad[k].rc);
        assert_int_equal(at, 1);
    }
    /* Duplicates: explicit names, and a derived name equal to another. */
    lbk_instance dup[3] = {{"a", "h", 1, 1, 0},
                           {NULL, "10.0.0.1", 80, 1, 0},
                           {"10.0.0.1:80", "10.0.0.2", 80, 1, 0}};
    size_t at = 99;
    assert_lbk(lbk_reconcile_validate(dup, 3, NULL, &at), LBK_EEXIST);
    assert_int_equal(at, 2);
    lbk_instance heavy[2] = {{"a", "h", 1, UINT32_MAX, 0}, {"b", "h", 1, 1, 0}};
    assert_lbk(lbk_reconcile_validate(heavy, 2, NULL, NULL), LBK_EOVERFLOW);
    assert_lbk(lbk_reconcile_validate(NULL, 1, NULL, NULL), LBK_EINVAL);
    assert_ok(lbk_reconcile_validate(NULL, 0, NULL, NULL));
    assert_lbk(lbk_reconcile_validate(dup, LBK_RECONCILE_MAX_INSTANCES + 1,
                                      NULL, NULL),
               LBK_ERANGE);
    lbk_allocator half = {fail_alloc_fn, NULL, NULL};
    assert_lbk(lbk_reconcile_validate(dup, 1, &half, NULL), LBK_EINVAL);
    fail_alloc fa;
    fail_alloc_init(&fa);
    fail_alloc_reset(&fa, 0);
    assert_lbk(lbk_reconcile_validate(dup, 1, &fa.hook, NULL), LBK_ENOMEM);
    fail_alloc_reset(&fa, -1);
    assert_ok(lbk_reconcile_validate(dup, 1, &fa.hook, NULL));
    assert_int_equal(fa.live, 0);
}

struct fixture {
    lbk_set *set;
    lbk_reconciler *r;
    struct log log;
};

static void fixture_init(struct fixture *f, uint64_t stale, bool empty_fails)
{
    memset(f, 0, sizeof(*f));
    assert_ok(lbk_set_create(NULL, &f->set));
    lbk_reconcile_options o;
    lbk_reconcile_options_init(&o);
    assert_true(o.empty_is_failure);
    assert_int_equal(o.stale_limit_ns, 0);
    o.stale_limit_ns = stale;
    o.empty_is_failure = empty_fails;
    o.on_change = on_change;
    o.user = &f->log;
    assert_ok(lbk_reconciler_create(f->set, &o, NULL, &f->r));
}

static void fixture_free(struct fixture *f)
{
    lbk_reconciler_free(f->r);
    lbk_set_free(f->set);
}

static void test_apply_minimal_changes(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    lbk_instance v1[3] = {{"web-1", "10.0.0.1", 8080, 10, 0},
                          {"web-2", "10.0.0.2", 8080, 10, 0},
                          {NULL, "10.0.0.3", 9090, 5, 1}};
    lbk_reconcile_stats s;
    assert_ok(lbk_reconciler_apply(f.r, v1, 3, 100, &s));
    assert_int_equal(s.added, 3);
    assert_int_equal(s.removed + s.reweighted + s.unchanged, 0);
    assert_int_equal(f.log.n, 3);
    assert_true(logged(&f.log, "+ web-1 10.0.0.1:8080 w=10 p=0"));
    assert_true(logged(&f.log, "+ 10.0.0.3:9090 10.0.0.3:9090 w=5 p=1"));
    char d[1024];
    pub_digest(f.set, d, sizeof d);
    assert_string_equal(d, "web-1 10 0;web-2 10 0;10.0.0.3:9090 5 1;");
    lbk_backend *w1 = find(f.set, "web-1");
    const lbk_endpoint *ep = lbk_backend_user(w1);
    assert_string_equal(ep->name, "web-1");
    assert_string_equal(ep->address, "10.0.0.1");
    assert_int_equal(ep->port, 8080);

    /* The same answer again: nothing changes, nothing is published. */
    uint64_t gen = lbk_set_generation(f.set);
    const lbk_snapshot *before;
    assert_ok(lbk_set_acquire(f.set, &before));
    f.log.n = 0;
    assert_ok(lbk_reconciler_apply(f.r, v1, 3, 200, &s));
    assert_int_equal(s.unchanged, 3);
    assert_int_equal(s.added + s.removed + s.reweighted, 0);
    assert_int_equal(f.log.n, 0);
    assert_int_equal(lbk_set_generation(f.set), gen);
    const lbk_snapshot *after;
    assert_ok(lbk_set_acquire(f.set, &after));
    assert_ptr_equal(before, after);
    lbk_snapshot_release(after);

    /* Re-weight keeps the backend (and its live state); re-prioritise,
     * move (address change = remove + add), remove, add. */
    assert_ok(lbk_backend_begin(w1));
    lbk_instance v2[3] = {{"web-1", "10.0.0.1", 8080, 20, 0},
                          {"web-2", "10.0.0.22", 8080, 10, 0},
                          {"web-4", "10.0.0.4", 8080, 1, 2}};
    f.log.n = 0;
    assert_ok(lbk_reconciler_apply(f.r, v2, 3, 300, &s));
    assert_int_equal(s.added, 2);   /* web-2 moved, web-4 */
    assert_int_equal(s.removed, 2); /* web-2 old, 10.0.0.3:9090 */
    assert_int_equal(s.reweighted, 1);
    assert_true(logged(&f.log, "~ web-1 w=10->20 p=0->0"));
    assert_true(logged(&f.log, "- 10.0.0.3:9090"));
    assert_true(logged(&f.log, "- web-2"));
    assert_true(logged(&f.log, "+ web-2 10.0.0.22:8080 w=10 p=0"));
    assert_true(logged(&f.log, "+ web-4 10.0.0.4:8080 w=1 p=2"));
    assert_ptr_equal(find(f.set, "web-1"), w1);
    assert_int_equal(lbk_backend_in_flight(w1), 1);
    /* Removes are reported before adds. */
    assert_memory_equal(f.log.lines[0], "- ", 2);
    assert_memory_equal(f.log.lines[f.log.n - 1], "+ ", 2);
    pub_digest(f.set, d, sizeof d);
    assert_true(strstr(d, "web-1 20 0;") != NULL);
    assert_true(strstr(d, "web-4 1 2;") != NULL);
    assert_null(strstr(d, "9090"));
    assert_string_equal(
        ((const lbk_endpoint *)lbk_backend_user(find(f.set, "web-2")))->address,
        "10.0.0.22");

    lbk_instance v3[3] = {{"web-1", "10.0.0.1", 8080, 20, 3},
                          {"web-2", "10.0.0.22", 8080, 10, 0},
                          {"web-4", "10.0.0.4", 8080, 1, 2}};
    f.log.n = 0;
    assert_ok(lbk_reconciler_apply(f.r, v3, 3, 400, &s));
    assert_int_equal(s.reprioritised, 1);
    assert_int_equal(s.reweighted, 0);
    assert_true(logged(&f.log, "~ web-1 p=0->3"));
    assert_ok(lbk_backend_end(w1));
    lbk_reconcile_status st;
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_int_equal(st.managed, 3);
    assert_int_equal(st.publishes, 3);
    assert_int_equal(st.applies, 4);
    assert_true(st.have_good);
    assert_int_equal(st.last_good_ns, 400);
    assert_ptr_equal(lbk_reconciler_set(f.r), f.set);
    lbk_snapshot_release(before);
    fixture_free(&f);
}

/* A request in flight on a backend the source dropped finishes normally:
 * its snapshot keeps the backend and its endpoint record alive. */
static void test_in_flight_survives_removal(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    lbk_instance v1[2] = {{"a", "10.0.0.1", 80, 1, 0},
                          {"b", "10.0.0.2", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, v1, 2, 1, NULL));
    const lbk_snapshot *snap;
    assert_ok(lbk_set_acquire(f.set, &snap));
    lbk_backend *a = lbk_snapshot_backend(snap, 0);
    assert_string_equal(lbk_backend_name(a), "a");
    assert_ok(lbk_backend_begin(a));
    /* the source drops "a" and gains "c" several times over */
    for (int round = 0; round < 5; round++) {
        lbk_instance v2[2] = {{"b", "10.0.0.2", 80, 1, 0},
                              {round % 2 ? "c" : "d", "10.0.0.3", 80, 1, 0}};
        assert_ok(lbk_reconciler_apply(f.r, v2, 2, 2 + round, NULL));
    }
    assert_null(find(f.set, "a"));
    const lbk_endpoint *ep = lbk_backend_user(a);
    assert_string_equal(ep->address, "10.0.0.1"); /* record still alive */
    assert_string_equal(lbk_backend_name(a), "a");
    assert_ok(lbk_backend_end(a));
    assert_int_equal(lbk_backend_in_flight(a), 0);
    lbk_snapshot_release(snap);
    /* the next apply sweeps the record; ASan would catch a bad free */
    lbk_instance v3[1] = {{"b", "10.0.0.2", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, v3, 1, 10, NULL));
    assert_int_equal(lbk_set_count(f.set), 1);
    fixture_free(&f);
}

static void test_bad_reports_keep_the_set(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10 * 1000000000ull, true);
    lbk_instance good[2] = {{"a", "10.0.0.1", 80, 1, 0},
                            {"b", "10.0.0.2", 80, 2, 1}};
    assert_ok(lbk_reconciler_apply(f.r, good, 2, 1000, NULL));
    char d0[512], d1[512];
    pub_digest(f.set, d0, sizeof d0);
    uint64_t gen = lbk_set_generation(f.set);
    f.log.n = 0;

    lbk_instance dup[2] = {{"a", "10.0.0.1", 80, 1, 0},
                           {"a", "10.0.0.9", 80, 1, 0}};
    assert_lbk(lbk_reconciler_apply(f.r, dup, 2, 2000, NULL), LBK_EEXIST);
    lbk_instance badport[1] = {{"a", "10.0.0.1", 0, 1, 0}};
    assert_lbk(lbk_reconciler_apply(f.r, badport, 1, 3000, NULL), LBK_EINVAL);
    lbk_instance noaddr[1] = {{"a", "", 80, 1, 0}};
    assert_lbk(lbk_reconciler_apply(f.r, noaddr, 1, 3000, NULL), LBK_EINVAL);
    assert_lbk(lbk_reconciler_apply(f.r, NULL, 0, 4000, NULL), LBK_ENOENT);
    assert_lbk(lbk_reconciler_apply(f.r, NULL, 3, 4000, NULL), LBK_EINVAL);
    assert_lbk(lbk_reconciler_apply(NULL, good, 2, 4000, NULL), LBK_EINVAL);
    assert_lbk(lbk_reconciler_fail(f.r, LBK_EIO, 5000, NULL), 0);
    assert_lbk(lbk_reconciler_fail(f.r, 0, 5000, NULL), LBK_EINVAL);
    assert_lbk(lbk_reconciler_fail(NULL, LBK_EIO, 5000, NULL), LBK_EINVAL);
    pub_digest(f.set, d1, sizeof d1);
    assert_string_equal(d0, d1);
    assert_int_equal(lbk_set_generation(f.set), gen);
    assert_int_equal(f.log.n, 0);
    lbk_reconcile_status st;
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_int_equal(st.failures, 6);
    assert_int_equal(st.last_error, LBK_EIO);
    assert_false(st.stale);

    /* Before the stale limit: still kept.  At the limit: emptied once. */
    assert_int_equal(
        lbk_reconciler_fail(f.r, LBK_ETIMEDOUT, 1000 + 9999999999ull, NULL), 0);
    assert_int_equal(lbk_set_count(f.set), 2);
    lbk_reconcile_stats s;
    assert_int_equal(
        lbk_reconciler_fail(f.r, LBK_ETIMEDOUT, 1000 + 10000000000ull, &s), 1);
    assert_int_equal(s.removed, 2);
    assert_int_equal(lbk_set_count(f.set), 0);
    pub_digest(f.set, d1, sizeof d1);
    assert_string_equal(d1, "");
    assert_true(logged(&f.log, "- a") && logged(&f.log, "- b"));
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_true(st.stale);
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 99999999999ull, NULL),
                     0);
    /* A good answer brings it back. */
    assert_ok(lbk_reconciler_apply(f.r, good, 2, 100000000000ull, &s));
    assert_int_equal(s.added, 2);
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_false(st.stale);
    assert_int_equal(st.failures, 0);
    fixture_free(&f);
}

/* Garbage also counts toward the stale limit; a clock going backwards does
 * not expire anything. */
static void test_garbage_expires_too(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 100, true);
    lbk_instance good[1] = {{"a", "10.0.0.1", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, good, 1, 1000, NULL));
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 10, NULL), 0);
    assert_int_equal(lbk_set_count(f.set), 1);
    lbk_instance bad[1] = {{"a", "10.0.0.1", 0, 1, 0}};
    assert_lbk(lbk_reconciler_apply(f.r, bad, 1, 1100, NULL), LBK_EINVAL);
    assert_int_equal(lbk_set_count(f.set), 0);
    fixture_free(&f);
}

static void test_empty_allowed(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, false);
    lbk_instance good[2] = {{"a", "10.0.0.1", 80, 1, 0},
                            {"b", "10.0.0.2", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, good, 2, 1, NULL));
    lbk_reconcile_stats s;
    assert_ok(lbk_reconciler_apply(f.r, NULL, 0, 2, &s));
    assert_int_equal(s.removed, 2);
    assert_int_equal(lbk_set_count(f.set), 0);
    fixture_free(&f);
}

static void test_foreign_backends(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    uint32_t slot;
    assert_ok(lbk_set_add(f.set, "static", 3, NULL, &slot));
    lbk_instance v[2] = {{"a", "10.0.0.1", 80, 1, 0},
                         {"b", "10.0.0.2", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, v, 2, 1, NULL));
    assert_int_equal(lbk_set_count(f.set), 3);
    /* a report naming the foreign backend: refused, nothing changes */
    lbk_instance clash[2] = {{"a", "10.0.0.1", 80, 1, 0},
                             {"static", "10.0.0.2", 80, 1, 0}};
    uint64_t gen = lbk_set_generation(f.set);
    assert_lbk(lbk_reconciler_apply(f.r, clash, 2, 2, NULL), LBK_EEXIST);
    assert_int_equal(lbk_set_generation(f.set), gen);
    /* dropping everything managed leaves "static" alone */
    lbk_instance one[1] = {{"c", "10.0.0.3", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, one, 1, 3, NULL));
    assert_non_null(find(f.set, "static"));
    assert_int_equal(lbk_set_count(f.set), 2);
    /* another writer removes a managed backend: the next report restores
     * it */
    assert_ok(lbk_set_find(f.set, "c", &slot));
    assert_ok(lbk_set_remove(f.set, slot));
    lbk_reconcile_stats s;
    assert_ok(lbk_reconciler_apply(f.r, one, 1, 4, &s));
    assert_int_equal(s.added, 1);
    assert_non_null(find(f.set, "c"));
    /* total weight overflow counting foreign weight */
    lbk_instance heavy[1] = {{"c", "10.0.0.3", 80, UINT32_MAX - 1, 0}};
    assert_lbk(lbk_reconciler_apply(f.r, heavy, 1, 5, NULL), LBK_EOVERFLOW);
    assert_int_equal(lbk_backend_weight(find(f.set, "c")), 1);
    fixture_free(&f);
}

static void test_thousands(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    const size_t n = 5000;
    lbk_instance *v = calloc(n, sizeof(*v));
    char(*addr)[32] = calloc(n, sizeof(*addr));
    for (size_t i = 0; i < n; i++) {
        snprintf(addr[i], sizeof addr[i], "10.%zu.%zu.%zu", i >> 16,
                 (i >> 8) & 255, i & 255);
        v[i] = (lbk_instance){NULL, addr[i], 8080, 1 + i % 5, i % 3};
    }
    lbk_reconcile_stats s;
    assert_ok(lbk_reconciler_apply(f.r, v, n, 1, &s));
    assert_int_equal(s.added, n);
    assert_int_equal(lbk_set_count(f.set), n);
    for (size_t i = 0; i < 100; i++)
        v[i].weight += 10;
    assert_ok(lbk_reconciler_apply(f.r, v + 50, n - 50, 2, &s));
    assert_int_equal(s.removed, 50);
    assert_int_equal(s.reweighted, 50);
    assert_int_equal(s.unchanged, n - 100);
    assert_int_equal(lbk_set_count(f.set), n - 50);
    free(v);
    free(addr);
    fixture_free(&f);
}

static void test_create_errors(void **state)
{
    (void)state;
    lbk_set *set;
    assert_ok(lbk_set_create(NULL, &set));
    lbk_reconciler *r = (lbk_reconciler *)0x1;
    assert_lbk(lbk_reconciler_create(NULL, NULL, NULL, &r), LBK_EINVAL);
    assert_lbk(lbk_reconciler_create(set, NULL, NULL, NULL), LBK_EINVAL);
    lbk_allocator half = {NULL, fail_free_fn, NULL};
    assert_lbk(lbk_reconciler_create(set, NULL, &half, &r), LBK_EINVAL);
    assert_ptr_equal(r, (lbk_reconciler *)0x1);
    fail_alloc fa;
    fail_alloc_init(&fa);
    fail_alloc_reset(&fa, 0);
    assert_lbk(lbk_reconciler_create(set, NULL, &fa.hook, &r), LBK_ENOMEM);
    assert_int_equal(fa.live, 0);
    assert_ok(lbk_reconciler_create(set, NULL, NULL, &r));
    lbk_reconcile_status st;
    assert_lbk(lbk_reconciler_status(NULL, &st), LBK_EINVAL);
    assert_lbk(lbk_reconciler_status(r, NULL), LBK_EINVAL);
    assert_null(lbk_reconciler_set(NULL));
    lbk_reconciler_free(r);
    lbk_reconciler_free(NULL);
    lbk_reconcile_options_init(NULL);
    lbk_set_free(set);
}

/* Every allocation of the reconciler AND of the set, walked in turn, for an
 * apply that adds, removes, moves, re-weights and re-prioritises: each
 * failure returns LBK_ENOMEM with the set (written and published) as it
 * was; nothing leaks. */
static void test_oom_walk(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_instance v1[4] = {{"a", "10.0.0.1", 80, 5, 0},
                          {"b", "10.0.0.2", 80, 5, 0},
                          {"c", "10.0.0.3", 80, 5, 1},
                          {"d", "10.0.0.4", 80, 5, 1}};
    lbk_instance v2[5] = {{"a", "10.0.0.1", 80, 1, 0},  /* lower weight */
                          {"b", "10.0.0.2", 80, 9, 0},  /* raise weight */
                          {"c", "10.0.0.3", 80, 5, 2},  /* priority */
                          {"e", "10.0.0.5", 80, 5, 0},  /* new */
                          {"f", "10.0.0.6", 80, 5, 0}}; /* new; d removed */
    v2[2].address = "10.0.0.33";                        /* and c moves */
    bool succeeded = false;
    for (long k = 0; !succeeded; k++) {
        fail_alloc_reset(&fa, -1);
        lbk_set *set;
        lbk_reconciler *r;
        assert_ok(lbk_set_create(&fa.hook, &set));
        assert_ok(lbk_reconciler_create(set, NULL, &fa.hook, &r));
        assert_ok(lbk_reconciler_apply(r, v1, 4, 1, NULL));
        /* a snapshot held by a reader across the attempt */
        const lbk_snapshot *held;
        assert_ok(lbk_set_acquire(set, &held));
        char w0[512], p0[512], w1[512], p1[512];
        set_digest(set, w0, sizeof w0);
        pub_digest(set, p0, sizeof p0);
        fail_alloc_reset(&fa, k);
        lbk_reconcile_stats s;
        int rc = lbk_reconciler_apply(r, v2, 5, 2, &s);
        fail_alloc_reset(&fa, -1);
        if (rc == 0) {
            succeeded = true;
            assert_int_equal(s.added, 3);
            assert_int_equal(s.removed, 2);
            pub_digest(set, p1, sizeof p1);
            assert_string_equal(p1, "a 1 0;b 9 0;c 5 2;e 5 0;f 5 0;");
            assert_true(k >= 8); /* the walk went through many sites */
        } else {
            assert_lbk(rc, LBK_ENOMEM);
            set_digest(set, w1, sizeof w1);
            pub_digest(set, p1, sizeof p1);
            /* slots may differ after a rollback; compare as multisets */
            assert_int_equal(strlen(w0), strlen(w1));
            for (char *tok = strtok(w0, ";"); tok; tok = strtok(NULL, ";"))
                assert_non_null(strstr(w1, tok));
            assert_string_equal(p0, p1);
            /* and the next apply still converges */
            assert_ok(lbk_reconciler_apply(r, v2, 5, 3, NULL));
        }
        lbk_snapshot_release(held);
        lbk_reconciler_free(r);
        lbk_set_free(set);
        assert_int_equal(fa.live, 0);
    }
}

struct readers {
    lbk_set *set;
    _Atomic int stop;
    _Atomic long reads, bad;
};

static void *reader(void *p)
{
    struct readers *r = p;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    while (!atomic_load(&r->stop)) {
        const lbk_snapshot *snap;
        if (lbk_set_acquire(r->set, &snap) < 0) {
            atomic_fetch_add(&r->bad, 1);
            continue;
        }
        uint32_t n = lbk_snapshot_count(snap);
        if (n > 0) {
            lbk_backend *b = lbk_snapshot_backend(snap, test_rand(&s) % n);
            lbk_backend_begin(b);
            const lbk_endpoint *ep = lbk_backend_user(b);
            /* the record must be intact while the snapshot is held */
            if (ep == NULL || strcmp(ep->name, lbk_backend_name(b)) != 0 ||
                ep->port != 80 || strncmp(ep->address, "10.", 3) != 0)
                atomic_fetch_add(&r->bad, 1);
            lbk_backend_end(b);
            atomic_fetch_add(&r->reads, 1);
        }
        lbk_snapshot_release(snap);
    }
    return NULL;
}

/* Readers pick and use endpoints on three threads while the writer keeps
 * applying reports that remove, add and move instances: every endpoint a
 * reader sees is intact (ASan/TSan check the memory and the ordering). */
static void test_concurrent_readers(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    struct readers r = {f.set, 0, 0, 0};
    lbk_instance v[16];
    char addr[16][32], name[16][16];
    for (int i = 0; i < 16; i++) {
        snprintf(name[i], sizeof name[i], "i%d", i);
        snprintf(addr[i], sizeof addr[i], "10.0.0.%d", i);
        v[i] = (lbk_instance){name[i], addr[i], 80, 1, 0};
    }
    assert_ok(lbk_reconciler_apply(f.r, v, 16, 0, NULL));
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
    uint64_t s = 5;
    for (long round = 0; round < 3000 || atomic_load(&r.reads) < 3000;
         round++) {
        int k = 8 + (int)(test_rand(&s) % 8); /* a changing subset */
        int off = (int)(test_rand(&s) % (uint64_t)(16 - k + 1));
        for (int i = 0; i < 16; i++) /* and moving addresses */
            snprintf(addr[i], sizeof addr[i], "10.0.%ld.%d", round % 3, i);
        assert_ok(lbk_reconciler_apply(f.r, v + off, (size_t)k, (uint64_t)round,
                                       NULL));
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(r.bad, 0);
    fixture_free(&f);
}

/* Edges of the name, the report and the expiry: a NULL address, a zero-size
 * buffer, a derived name that fits the buffer but not LBK_NAME_MAX, an
 * empty explicit name (the address:port is the identity), a port-only
 * move, a report over the instance limit, failures while already stale or
 * with the clock behind the last good report. */
static void test_edges(void **state)
{
    (void)state;
    char buf[600] = "x";
    lbk_instance noaddr = {"a", NULL, 80, 1, 0};
    assert_lbk(lbk_instance_format_name(&noaddr, buf, sizeof buf), LBK_EINVAL);
    assert_string_equal(buf, "x");
    lbk_instance i4 = {NULL, "10.0.0.1", 8080, 1, 0};
    assert_lbk(lbk_instance_format_name(&i4, buf, 0), LBK_ETOOLONG);
    assert_string_equal(buf, "x"); /* size 0: not even a NUL written */
    char addr300[301];
    memset(addr300, 'h', 300);
    addr300[300] = '\0';
    lbk_instance big = {NULL, addr300, 1, 1, 0};
    assert_lbk(lbk_instance_format_name(&big, buf, sizeof buf), LBK_ETOOLONG);
    assert_string_equal(buf, "");

    struct fixture f;
    fixture_init(&f, 100, true);
    /* no good report yet: a failure never expires anything */
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 1u << 30, NULL), 0);
    lbk_instance v[2] = {{"", "10.0.0.1", 80, 1, 0},
                         {"b", "10.0.0.2", 80, 1, 0}};
    assert_ok(lbk_reconciler_apply(f.r, v, 2, 1000, NULL));
    assert_non_null(find(f.set, "10.0.0.1:80"));
    /* the same address on another port: a replacement */
    lbk_instance moved[2] = {{"", "10.0.0.1", 80, 1, 0},
                             {"b", "10.0.0.2", 81, 1, 0}};
    lbk_backend *old_b = find(f.set, "b");
    lbk_reconcile_stats s;
    assert_ok(lbk_reconciler_apply(f.r, moved, 2, 1001, &s));
    assert_int_equal(s.added, 1);
    assert_int_equal(s.removed, 1);
    assert_int_equal(s.unchanged, 1);
    lbk_backend *nb = find(f.set, "b");
    assert_non_null(nb);
    assert_ptr_not_equal(nb, old_b);
    assert_int_equal(((const lbk_endpoint *)lbk_backend_user(nb))->port, 81);
    /* over the limit: ERANGE, counted as a failure, set unchanged */
    uint64_t gen = lbk_set_generation(f.set);
    assert_lbk(lbk_reconciler_apply(f.r, v, LBK_RECONCILE_MAX_INSTANCES + 1,
                                    1002, NULL),
               LBK_ERANGE);
    lbk_reconcile_status st;
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_int_equal(st.last_error, LBK_ERANGE);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.applies, 2);
    /* the clock behind the last good report: never expires */
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 5, NULL), 0);
    assert_int_equal(lbk_set_generation(f.set), gen);
    /* past the limit: expires once; later failures change nothing */
    s.removed = 0;
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 2000, &s), 1);
    assert_int_equal(s.removed, 2);
    assert_int_equal(lbk_set_count(f.set), 0);
    gen = lbk_set_generation(f.set);
    assert_int_equal(lbk_reconciler_fail(f.r, LBK_EIO, 5000, NULL), 0);
    assert_int_equal(lbk_set_generation(f.set), gen);
    assert_ok(lbk_reconciler_status(f.r, &st));
    assert_true(st.stale);
    fixture_free(&f);
}

/* A round of 20 names, then a second of 20 more, from empty reconcilers:
 * every allocation of the growth of the table, the graveyard, the scratch
 * arrays, the duplicate check and the records fails in turn, and each
 * failure leaves the set as it was and leaks nothing. */
static void oom_growth_round(fail_alloc *fa, lbk_instance *in, size_t n,
                             size_t first)
{
    bool succeeded = false;
    long k;
    for (k = 0; !succeeded; k++) {
        fail_alloc_reset(fa, -1);
        lbk_set *set;
        lbk_reconciler *r;
        assert_ok(lbk_set_create(&fa->hook, &set));
        assert_ok(lbk_reconciler_create(set, NULL, &fa->hook, &r));
        if (first > 0)
            assert_ok(lbk_reconciler_apply(r, in, first, 1, NULL));
        char p0[4096], p1[4096];
        pub_digest(set, p0, sizeof p0);
        fail_alloc_reset(fa, k);
        int rc = lbk_reconciler_apply(r, in, n, 2, NULL);
        fail_alloc_reset(fa, -1);
        if (rc == 0) {
            succeeded = true;
            assert_int_equal(lbk_set_count(set), n);
        } else {
            assert_lbk(rc, LBK_ENOMEM);
            pub_digest(set, p1, sizeof p1);
            assert_string_equal(p0, p1);
            assert_int_equal(lbk_set_count(set), first);
            assert_ok(lbk_reconciler_apply(r, in, n, 3, NULL));
            assert_int_equal(lbk_set_count(set), n);
        }
        lbk_reconciler_free(r);
        lbk_set_free(set);
        assert_int_equal(fa->live, 0);
    }
    assert_true(k > 6);
}

static void test_oom_growth(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_instance in[40];
    char names[40][16], addrs[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        snprintf(addrs[i], sizeof addrs[i], "10.0.1.%d", i + 1);
        in[i] = (lbk_instance){names[i], addrs[i], 80, 1, (uint32_t)(i % 2)};
    }
    oom_growth_round(&fa, in, 20, 0);
    oom_growth_round(&fa, in, 40, 20);
}

/* Allocation failure in the bookkeeping of backends another writer
 * removed (the graveyard must grow) and in an expiry by the stale limit:
 * LBK_ENOMEM, the set and the status unchanged, nothing leaked. */
static void test_oom_lost_and_expiry(void **state)
{
    (void)state;
    fail_alloc fa;
    fail_alloc_init(&fa);
    lbk_instance in[20];
    char names[20][16], addrs[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        snprintf(addrs[i], sizeof addrs[i], "10.0.2.%d", i + 1);
        in[i] = (lbk_instance){names[i], addrs[i], 80, 1, 0};
    }
    for (int pass = 0; pass < 2; pass++) {
        bool succeeded = false;
        for (long k = 0; !succeeded; k++) {
            fail_alloc_reset(&fa, -1);
            lbk_set *set;
            lbk_reconciler *r;
            lbk_reconcile_options o;
            lbk_reconcile_options_init(&o);
            o.stale_limit_ns = 10;
            assert_ok(lbk_set_create(&fa.hook, &set));
            assert_ok(lbk_reconciler_create(set, &o, &fa.hook, &r));
            /* 10 then 20 names: the graveyard was sized for 10 */
            assert_ok(lbk_reconciler_apply(r, in, 10, 1, NULL));
            assert_ok(lbk_reconciler_apply(r, in, 20, 2, NULL));
            if (pass == 0) /* another writer removes all twenty */
                for (int i = 0; i < 20; i++) {
                    uint32_t slot;
                    assert_ok(lbk_set_find(set, names[i], &slot));
                    assert_ok(lbk_set_remove(set, slot));
                }
            assert_ok(lbk_set_publish(set));
            char p0[2048], p1[2048];
            pub_digest(set, p0, sizeof p0);
            lbk_reconcile_status st0, st1;
            assert_ok(lbk_reconciler_status(r, &st0));
            fail_alloc_reset(&fa, k);
            int rc = pass == 0 ? lbk_reconciler_apply(r, in, 20, 3, NULL)
                               : lbk_reconciler_fail(r, LBK_EIO, 100, NULL);
            fail_alloc_reset(&fa, -1);
            if (rc >= 0) {
                succeeded = true;
                assert_int_equal(rc, pass == 0 ? 0 : 1);
                assert_int_equal(lbk_set_count(set), pass == 0 ? 20 : 0);
            } else {
                assert_lbk(rc, LBK_ENOMEM);
                pub_digest(set, p1, sizeof p1);
                assert_string_equal(p0, p1); /* as published before */
                assert_int_equal(lbk_set_count(set), pass == 0 ? 0 : 20);
                assert_ok(lbk_reconciler_status(r, &st1));
                assert_false(st1.stale);
                if (pass == 0)
                    assert_int_equal(st1.applies, st0.applies);
            }
            lbk_reconciler_free(r);
            lbk_set_free(set);
            assert_int_equal(fa.live, 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_validate),
        cmocka_unit_test(test_apply_minimal_changes),
        cmocka_unit_test(test_in_flight_survives_removal),
        cmocka_unit_test(test_bad_reports_keep_the_set),
        cmocka_unit_test(test_garbage_expires_too),
        cmocka_unit_test(test_empty_allowed),
        cmocka_unit_test(test_foreign_backends),
        cmocka_unit_test(test_thousands),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_oom_walk),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_oom_growth),
        cmocka_unit_test(test_oom_lost_and_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
