/*
 * tests/test_ring_compat.c - the ring's compatibility modes agree bit for
 * bit with their peers.
 *
 *  - libketama: its own golden test (keys "0".."999999" over its 8-server
 *    list, md5 of the printed output 5672b131391f5aa2b280936aec1eea74).
 *  - libmemcached KETAMA_WEIGHTED: the 99-row fixture of libmemcached's own
 *    tests (key hash, chosen point, server), and a live cross-check against
 *    Debian's libmemcached on random server lists (1..100 servers, random
 *    weights and ports), skipped when the library is not available.
 *  - nginx "hash $key consistent": 1001 of 1001 requests recorded from a
 *    real nginx (pingora's sample).
 *  - the digest-count rounding quirks REFERENCES.md lists.
 *
 * Data files and their origins: tests/data/ring_vectors.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "internal.h"
#include "lbkit/ring.h"
#include "md5.h"

#ifdef LBK_HAVE_LIBMEMCACHED
#include <libmemcached/memcached.h>
#endif

#ifndef LBK_TEST_DATA
#define LBK_TEST_DATA "tests/data"
#endif

static FILE *open_data(const char *name)
{
    char path[1024];
    const char *dir = getenv("LBK_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : LBK_TEST_DATA, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    return f;
}

/* A set and a snapshot of it, built from (name, weight) pairs in order. */
struct fixture {
    lbk_set *set;
    const lbk_snapshot *snap;
    lbk_ring *ring;
};

static void fixture_ring(struct fixture *fx, lbk_ring_mode mode)
{
    lbk_ring_options o;
    lbk_ring_options_init(&o);
    o.mode = mode;
    assert_ok(lbk_set_snapshot(fx->set, &fx->snap));
    assert_ok(lbk_ring_build(fx->snap, &o, NULL, &fx->ring));
}

static void fixture_free(struct fixture *fx)
{
    lbk_ring_free(fx->ring);
    lbk_snapshot_release(fx->snap);
    lbk_set_free(fx->set);
    memset(fx, 0, sizeof *fx);
}

/* libketama's server file: "ip:port<whitespace>weight", '#' comments. */
static void load_ketama_servers(struct fixture *fx)
{
    FILE *f = open_data("ketama.servers");
    assert_ok(lbk_set_create(NULL, &fx->set));
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        char addr[64];
        unsigned long w;
        if (line[0] == '#' || sscanf(line, "%63s %lu", addr, &w) != 2)
            continue;
        uint32_t slot;
        assert_ok(lbk_set_add(fx->set, addr, (uint32_t)w, NULL, &slot));
    }
    fclose(f);
    assert_int_equal(lbk_set_count(fx->set), 8);
}

/* The owner of the key's home point (what the peer returns). */
static const char *home_owner(const struct fixture *fx, uint64_t h,
                              uint64_t *point)
{
    uint32_t idx, owner;
    assert_ok(lbk_ring_find_point(fx->ring, h, &idx));
    assert_ok(lbk_ring_point(fx->ring, idx, point, &owner));
    return lbk_backend_name(lbk_snapshot_backend(fx->snap, owner));
}

static void test_libketama_golden(void **state)
{
    (void)state;
    struct fixture fx = {0};
    load_ketama_servers(&fx);
    fixture_ring(&fx, LBK_RING_LIBKETAMA);
    assert_int_equal(lbk_ring_point_count(fx.ring), 1264);
    lbk_md5_ctx md5;
    lbk_md5_init(&md5);
    lbk_md5_update(&md5, "\n", 1);
    for (unsigned k = 0; k < 1000000; k++) {
        char key[16], line[96];
        int kl = snprintf(key, sizeof key, "%u", k);
        uint64_t h, point;
        assert_ok(lbk_ring_hash_key(fx.ring, key, (size_t)kl, &h));
        const char *owner = home_owner(&fx, h, &point);
        int n = snprintf(line, sizeof line, "%u %u %s\n", (unsigned)h,
                         (unsigned)point, owner);
        lbk_md5_update(&md5, line, (size_t)n);
        if (k % 1000 == 0) { /* all up: the lookup is the home owner */
            lbk_backend *b;
            assert_ok(lbk_ring_lookup(fx.ring, key, (size_t)kl, &b));
            assert_string_equal(lbk_backend_name(b), owner);
        }
    }
    uint8_t d[16];
    char hexd[33];
    lbk_md5_final(&md5, d);
    for (int i = 0; i < 16; i++)
        snprintf(hexd + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(hexd, "5672b131391f5aa2b280936aec1eea74");
    fixture_free(&fx);
}

static void test_libmemcached_fixture(void **state)
{
    (void)state;
    struct fixture fx = {0};
    load_ketama_servers(&fx);
    fixture_ring(&fx, LBK_RING_LIBMEMCACHED);
    FILE *f = open_data("libmemcached_ketama.tsv");
    char line[256];
    int rows = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#')
            continue;
        char *key = strtok(line, "\t");
        char *h1 = strtok(NULL, "\t");
        char *h2 = strtok(NULL, "\t");
        char *server = strtok(NULL, "\t\n");
        assert_non_null(server);
        uint64_t h, point;
        assert_ok(lbk_ring_hash_key(fx.ring, key, strlen(key), &h));
        assert_int_equal(h, strtoull(h1, NULL, 10));
        const char *owner = home_owner(&fx, h, &point);
        assert_int_equal(point, strtoull(h2, NULL, 10));
        /* the fixture names the host; our names carry ":11211" */
        char want[64];
        snprintf(want, sizeof want, "%s:11211", server);
        assert_string_equal(owner, want);
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 99);

    /* "VDEAAAAA" hashes past the last point and wraps to the first. */
    uint64_t h, last, first;
    uint32_t idx, owner0;
    assert_ok(lbk_ring_hash_key(fx.ring, "VDEAAAAA", 8, &h));
    assert_ok(lbk_ring_point(fx.ring, lbk_ring_point_count(fx.ring) - 1, &last,
                             NULL));
    assert_true(h > last);
    assert_ok(lbk_ring_find_point(fx.ring, h, &idx));
    assert_int_equal(idx, 0);
    assert_ok(lbk_ring_point(fx.ring, 0, &first, &owner0));
    lbk_backend *b;
    assert_ok(lbk_ring_lookup(fx.ring, "VDEAAAAA", 8, &b));
    assert_ptr_equal(b, lbk_snapshot_backend(fx.snap, owner0));
    fixture_free(&fx);
}

static void test_nginx_sample(void **state)
{
    (void)state;
    struct fixture fx = {0};
    assert_ok(lbk_set_create(NULL, &fx.set));
    for (int i = 1; i <= 9; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.0.0.%d:443", i);
        assert_ok(lbk_set_add(fx.set, name, 100, NULL, &slot));
    }
    fixture_ring(&fx, LBK_RING_NGINX);
    /* 9 x 100 x 160 points, less the duplicate values nginx drops */
    assert_true(lbk_ring_point_count(fx.ring) <= 144000);
    assert_true(lbk_ring_point_count(fx.ring) > 143000);
    FILE *f = open_data("nginx_sample.csv");
    char line[512];
    int lines = 0, agree = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *comma = strrchr(line, ',');
        assert_non_null(comma);
        *comma = '\0';
        char *want = comma + 1;
        want[strcspn(want, "\r\n")] = '\0';
        lbk_backend *b;
        assert_ok(lbk_ring_lookup(fx.ring, line, strlen(line), &b));
        lines++;
        if (strcmp(lbk_backend_name(b), want) == 0)
            agree++;
        else
            print_message("disagree: %s -> %s, nginx %s\n", line,
                          lbk_backend_name(b), want);
    }
    fclose(f);
    assert_int_equal(lines, 1001);
    assert_int_equal(agree, 1001);
    fixture_free(&fx);
}

/* Points per server for n servers of equal weight. */
static uint32_t equal_weight_points(lbk_ring_mode mode, int n)
{
    struct fixture fx = {0};
    assert_ok(lbk_set_create(NULL, &fx.set));
    for (int i = 0; i < n; i++) {
        char name[32];
        uint32_t slot;
        snprintf(name, sizeof name, "10.0.%d.%d:11211", i / 250, i % 250 + 1);
        assert_ok(lbk_set_add(fx.set, name, 1, NULL, &slot));
    }
    fixture_ring(&fx, mode);
    uint32_t per = lbk_ring_point_count(fx.ring) / (uint32_t)n;
    assert_int_equal(per * (uint32_t)n, lbk_ring_point_count(fx.ring));
    fixture_free(&fx);
    return per;
}

/* REFERENCES.md: libketama gives 39 digests (156 points) for some N because
 * of its float rounding; libmemcached's all-float count differs from
 * libketama's at N = 25, 47, 50, 55, 71, 94, 100 (156 points at N = 25). */
static void test_digest_count_rounding(void **state)
{
    (void)state;
    assert_int_equal(equal_weight_points(LBK_RING_LIBKETAMA, 8), 160);
    assert_int_equal(equal_weight_points(LBK_RING_LIBMEMCACHED, 8), 160);
    static const int ketama39[] = {61, 122, 237, 244};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(equal_weight_points(LBK_RING_LIBKETAMA, ketama39[i]),
                         156);
    static const int differ[] = {25, 47, 50, 55, 71, 94, 100};
    for (size_t i = 0; i < 7; i++)
        assert_int_not_equal(
            equal_weight_points(LBK_RING_LIBKETAMA, differ[i]),
            equal_weight_points(LBK_RING_LIBMEMCACHED, differ[i]));
    assert_int_equal(equal_weight_points(LBK_RING_LIBMEMCACHED, 25), 156);
    assert_int_equal(equal_weight_points(LBK_RING_LIBKETAMA, 25), 160);
}

/* The same hosts at another port: the point strings now carry the port
 * in libmemcached mode, so the rings differ; in libketama mode the name is
 * always the whole string. */
static void test_libmemcached_port_rule(void **state)
{
    (void)state;
    struct fixture a = {0}, b = {0};
    assert_ok(lbk_set_create(NULL, &a.set));
    assert_ok(lbk_set_create(NULL, &b.set));
    uint32_t slot;
    assert_ok(lbk_set_add(a.set, "cache1:11211", 1, NULL, &slot));
    assert_ok(lbk_set_add(b.set, "cache1:11212", 1, NULL, &slot));
    fixture_ring(&a, LBK_RING_LIBMEMCACHED);
    fixture_ring(&b, LBK_RING_LIBMEMCACHED);
    /* point 0 of "cache1-0" vs "cache1:11212-0": recompute both digests */
    uint8_t d[16];
    uint64_t p;
    lbk_md5("cache1-0", 8, d);
    uint32_t want_a = (uint32_t)d[0] | (uint32_t)d[1] << 8 |
                      (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    lbk_md5("cache1:11212-0", 14, d);
    uint32_t want_b = (uint32_t)d[0] | (uint32_t)d[1] << 8 |
                      (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    bool found_a = false, found_b = false;
    for (uint32_t i = 0; i < lbk_ring_point_count(a.ring); i++) {
        assert_ok(lbk_ring_point(a.ring, i, &p, NULL));
        found_a |= p == want_a;
        assert_ok(lbk_ring_point(b.ring, i, &p, NULL));
        found_b |= p == want_b;
    }
    assert_true(found_a);
    assert_true(found_b);
    fixture_free(&a);
    fixture_free(&b);
}

#ifdef LBK_HAVE_LIBMEMCACHED
static void test_libmemcached_live(void **state)
{
    (void)state;
    uint64_t s = 0x5eed;
    for (int list = 0; list < 120; list++) {
        int n = list < 100 ? list + 1 : (int)(test_rand(&s) % 100) + 1;
        memcached_st *m = memcached_create(NULL);
        assert_non_null(m);
        assert_int_equal(
            memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
            MEMCACHED_SUCCESS);
        /* one server list pushed at once: libmemcached rebuilds its
         * continuum on every memcached_server_add, once on a push */
        memcached_server_st *servers = NULL;
        memcached_return_t mrc;
        struct fixture fx = {0};
        assert_ok(lbk_set_create(NULL, &fx.set));
        bool equal = test_rand(&s) % 4 == 0;
        for (int i = 0; i < n; i++) {
            char host[32], name[48];
            snprintf(host, sizeof host, "10.%u.%u.%d",
                     (unsigned)(test_rand(&s) % 256),
                     (unsigned)(test_rand(&s) % 256), i + 1);
            unsigned port = test_rand(&s) % 2
                                ? 11211u
                                : (unsigned)(test_rand(&s) % 65535) + 1;
            uint32_t w = equal ? 1 : (uint32_t)(test_rand(&s) % 1000) + 1;
            snprintf(name, sizeof name, "%s:%u", host, port);
            uint32_t slot;
            assert_ok(lbk_set_add(fx.set, name, w, NULL, &slot));
            assert_int_equal(slot, (uint32_t)i);
            servers = memcached_server_list_append_with_weight(
                servers, host, (in_port_t)port, w, &mrc);
            assert_int_equal(mrc, MEMCACHED_SUCCESS);
        }
        assert_int_equal(memcached_server_push(m, servers), MEMCACHED_SUCCESS);
        memcached_server_list_free(servers);
        fixture_ring(&fx, LBK_RING_LIBMEMCACHED);
        for (int k = 0; k < 2000; k++) {
            char key[48];
            size_t len = (size_t)(test_rand(&s) % 40) + 1;
            for (size_t j = 0; j < len; j++)
                key[j] = (char)('!' + test_rand(&s) % 94);
            uint32_t want = memcached_generate_hash(m, key, len);
            lbk_backend *b;
            assert_ok(lbk_ring_lookup(fx.ring, key, len, &b));
            if (lbk_backend_slot(b) != want)
                fail_msg("list %d (n %d): key %.*s -> %s, libmemcached "
                         "server %u",
                         list, n, (int)len, key, lbk_backend_name(b), want);
        }
        memcached_free(m);
        fixture_free(&fx);
    }
}
#else
static void test_libmemcached_live(void **state)
{
    (void)state;
    print_message("libmemcached not available at build time: skipped\n");
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libketama_golden),
        cmocka_unit_test(test_libmemcached_fixture),
        cmocka_unit_test(test_nginx_sample),
        cmocka_unit_test(test_digest_count_rounding),
        cmocka_unit_test(test_libmemcached_port_rule),
        cmocka_unit_test(test_libmemcached_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
