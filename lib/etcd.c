/*
 * lib/etcd.c - the etcd v3 registry adapter: leases for instances, a
 * list-then-watch follower for clients, on libcurl and json-c.
 *
 * The watcher is a three-state machine driven by lbk_etcd_process():
 *
 *      +-------+  due   +------+  200 + kvs   +-------+
 *      | IDLE  |------->| LIST |------------->| WATCH |<-- events: update
 *      +-------+        +------+  apply, rev  +-------+    map, apply
 *        ^  ^ failure:     |                     |
 *        |  '--------------'  stream ends /      |
 *        |   backoff, fail     error: backoff,   |
 *        '-------------------- fail ------------'
 *              (resume WATCH from rev + 1; LIST again only when etcd
 *               says the revision was compacted)
 *
 * The map (key -> parsed value) is the watcher's picture of the prefix;
 * after every change the whole map goes to lbk_reconciler_apply(), which
 * turns it into the minimal change of the set, so replaying an event after
 * a reconnect is harmless (idempotent) and a missed one is impossible (the
 * watch resumes at the revision after the last event applied).
 *
 * The watch stream is newline-delimited JSON objects; each complete object
 * is cut off the buffer with json-c's incremental tokener, so objects split
 * across reads are handled.  Keys and values travel base64-encoded in the
 * gateway's JSON; the small codec below is the only hand-written format
 * code here (HTTP is curl's, JSON is json-c's).
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>

#include "internal.h"
#include "lbkit/etcd.h"

#define NS_PER_MS UINT64_C(1000000)
#define RESP_MAX ((size_t)64 << 20) /* refuse answers above 64 MiB */

/* ---- small buffers through the allocator ----------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static bool buf_append(const lbk_allocator *a, buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = lbk_malloc(a, cap);
        if (p == NULL)
            return false;
        if (b->n > 0)
            memcpy(p, b->p, b->n);
        lbk_free(a, b->p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

static void buf_free(const lbk_allocator *a, buf *b)
{
    lbk_free(a, b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- base64 (RFC 4648, with padding) ---------------------------------- */

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* out: 4 * ((n + 2) / 3) + 1 bytes. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Decode n chars into out (n / 4 * 3 bytes room); returns the length or
 * -1 when malformed. */
static long b64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = in[i + k] == '=' ? 0 : b64_val(in[i + k]);
            if (v[k] < 0)
                return -1;
        }
        bool p2 = in[i + 2] == '=', p3 = in[i + 3] == '=';
        if ((p2 && !p3) || ((p2 || p3) && i + 4 != n))
            return -1;
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (!p2)
            out[o++] = (uint8_t)(x >> 8);
        if (!p3)
            out[o++] = (uint8_t)x;
    }
    return (long)o;
}

/* A json-c string holding base64 of n bytes; NULL on ENOMEM. */
static json_object *b64_json(const lbk_allocator *a, const void *d, size_t n)
{
    char *s = lbk_malloc(a, 4 * ((n + 2) / 3) + 1);
    if (s == NULL)
        return NULL;
    b64_encode(d, n, s);
    json_object *o = json_object_new_string(s);
    lbk_free(a, s);
    return o;
}

/* ---- values ------------------------------------------------------------ */

void lbk_etcd_options_init(lbk_etcd_options *opts)
{
    if (opts == NULL)
        return;
    opts->request_timeout_ms = 5000;
    opts->backoff_initial_ns = 200 * NS_PER_MS;
    opts->backoff_max_ns = 10000 * NS_PER_MS;
}

static bool get_int(json_object *obj, const char *field, int64_t lo, int64_t hi,
                    int64_t *out, int *rc)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, field, &v) ||
        !json_object_is_type(v, json_type_int)) {
        *rc = LBK_EPARSE;
        return false;
    }
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi || errno != 0) {
        *rc = LBK_ERANGE;
        return false;
    }
    *out = x;
    return true;
}

static bool copy_str(char *dst, size_t size, const char *src, int *rc)
{
    size_t len = strlen(src);
    if (len == 0 || len >= size) {
        *rc = LBK_ETOOLONG;
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

int lbk_etcd_parse_instance(const char *json, size_t len,
                            const char *default_name, lbk_etcd_instance *out)
{
    RETURN_ERROR_IF(json == NULL || out == NULL, LBK_EINVAL);
    RETURN_ERROR_IF(len > INT_MAX, LBK_EPARSE);
    json_tokener *tok = json_tokener_new();
    RETURN_ERROR_IF(tok == NULL, LBK_ENOMEM);
    json_object *obj = json_tokener_parse_ex(tok, json, (int)len);
    bool whole = obj != NULL &&
                 json_tokener_get_error(tok) == json_tokener_success &&
                 json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!whole || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return LBK_EPARSE;
    }
    lbk_etcd_instance v;
    memset(&v, 0, sizeof(v));
    int rc = 0;
    json_object *f;
    int64_t port = 0, weight = 0, prio = 0;
    const char *name = default_name;
    if (json_object_object_get_ex(obj, "name", &f)) {
        if (json_object_is_type(f, json_type_string))
            name = json_object_get_string(f);
        else
            rc = LBK_EPARSE;
    }
    if (rc == 0 && name == NULL)
        rc = LBK_EPARSE;
    if (rc == 0 && (!json_object_object_get_ex(obj, "address", &f) ||
                    !json_object_is_type(f, json_type_string)))
        rc = LBK_EPARSE;
    if (rc == 0 &&
        copy_str(v.address, sizeof v.address, json_object_get_string(f), &rc) &&
        copy_str(v.name, sizeof v.name, name, &rc) &&
        get_int(obj, "port", 1, 65535, &port, &rc) &&
        get_int(obj, "weight", 0, UINT32_MAX, &weight, &rc))
        get_int(obj, "priority", 0, LBK_PRIORITY_MAX, &prio, &rc);
    json_object_put(obj);
    if (rc < 0)
        return rc;
    *out = v;
    out->inst.name = out->name;
    out->inst.address = out->address;
    out->inst.port = (uint16_t)port;
    out->inst.weight = (uint32_t)weight;
    out->inst.priority = (uint32_t)prio;
    return 0;
}

int lbk_etcd_format_instance(const lbk_instance *inst, char *out, size_t size)
{
    RETURN_ERROR_IF(inst == NULL || inst->address == NULL || out == NULL,
                    LBK_EINVAL);
    json_object *o = json_object_new_object();
    RETURN_ERROR_IF(o == NULL, LBK_ENOMEM);
    if (inst->name != NULL && inst->name[0] != '\0')
        json_object_object_add(o, "name", json_object_new_string(inst->name));
    json_object_object_add(o, "address", json_object_new_string(inst->address));
    json_object_object_add(o, "port", json_object_new_int(inst->port));
    json_object_object_add(o, "weight", json_object_new_int64(inst->weight));
    json_object_object_add(o, "priority",
                           json_object_new_int64(inst->priority));
    size_t len;
    const char *s =
        json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    int rc = s == NULL ? LBK_ENOMEM : len + 1 > size ? LBK_ETOOLONG : 0;
    if (rc == 0)
        memcpy(out, s, len + 1);
    json_object_put(o);
    return rc < 0 ? rc : (int)len;
}

/* ---- HTTP -------------------------------------------------------------- */

typedef struct sink {
    const lbk_allocator *a;
    buf *b;
    bool overflow;
} sink;

static size_t sink_write(char *data, size_t size, size_t nmemb, void *user)
{
    sink *s = user;
    size_t n = size * nmemb;
    if (s->b->n + n > RESP_MAX || !buf_append(s->a, s->b, data, n)) {
        s->overflow = true;
        return 0;
    }
    return n;
}

static int map_curl(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return LBK_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return LBK_ENOMEM;
    default:
        return LBK_EIO;
    }
}

/* An easy handle POSTing body (JSON text) to endpoint + path. */
static CURL *easy_new(const char *endpoint, const char *path, const char *body,
                      struct curl_slist *hdrs, uint32_t timeout_ms, bool stream)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    char url[LBK_ETCD_URL_MAX + 64];
    snprintf(url, sizeof url, "%s%s", endpoint, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    if (!stream)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    return e;
}

/* Parse a whole JSON answer; an {"error": ...} answer is LBK_EIO. */
static int parse_answer(const buf *b, long http, json_object **out)
{
    json_object *o = b->p ? json_tokener_parse(b->p) : NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return http >= 400 ? LBK_EIO : LBK_EPARSE;
    }
    if (http >= 400 || json_object_object_get_ex(o, "error", NULL)) {
        json_object_put(o);
        return LBK_EIO;
    }
    *out = o;
    return 0;
}

static int64_t str_i64(json_object *o, const char *field)
{
    json_object *v;
    if (!json_object_object_get_ex(o, field, &v))
        return 0;
    if (json_object_is_type(v, json_type_string))
        return strtoll(json_object_get_string(v), NULL, 10);
    return json_object_get_int64(v);
}

/* ---- the watcher ------------------------------------------------------- */

typedef struct entry {
    char *key; /* decoded key bytes, NUL-terminated */
    lbk_etcd_instance v;
} entry;

enum { ST_IDLE, ST_LIST, ST_WATCH };

struct lbk_etcd {
    lbk_allocator alloc;
    lbk_reconciler *rec;
    lbk_etcd_options opts;
    char *endpoint, *prefix;
    size_t prefix_len;
    json_object *key_json, *end_json; /* base64 prefix and range end */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    int state;
    bool listed, need_list, broken;
    buf resp;
    sink snk;
    entry *e;
    size_t n, cap;
    uint64_t rev, next_ns, backoff_ns, now;
    int applies;
    lbk_etcd_info st;
};

static void set_error(lbk_etcd *w, int rc, const char *what, const char *key)
{
    snprintf(w->st.last_error, sizeof w->st.last_error, "%s%s%s: %s", what,
             key ? " " : "", key ? key : "", lbk_strerror(rc));
}

static entry *map_find(lbk_etcd *w, const char *key)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].key, key) == 0)
            return &w->e[i];
    return NULL;
}

static void map_clear(lbk_etcd *w)
{
    for (size_t i = 0; i < w->n; i++)
        lbk_free(&w->alloc, w->e[i].key);
    w->n = 0;
}

static void map_delete(lbk_etcd *w, const char *key)
{
    entry *x = map_find(w, key);
    if (x == NULL)
        return;
    lbk_free(&w->alloc, x->key);
    *x = w->e[--w->n];
}

/* Insert or replace; false on ENOMEM. */
static bool map_put(lbk_etcd *w, const char *key, const lbk_etcd_instance *v)
{
    entry *x = map_find(w, key);
    if (x == NULL) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 16;
            entry *e = lbk_malloc(&w->alloc, cap * sizeof(*e));
            if (e == NULL)
                return false;
            if (w->n > 0)
                memcpy(e, w->e, w->n * sizeof(*e));
            lbk_free(&w->alloc, w->e);
            w->e = e;
            w->cap = cap;
        }
        size_t kl = strlen(key);
        char *k = lbk_malloc(&w->alloc, kl + 1);
        if (k == NULL)
            return false;
        memcpy(k, key, kl + 1);
        x = &w->e[w->n++];
        x->key = k;
    }
    x->v = *v;
    x->v.inst.name = x->v.name;
    x->v.inst.address = x->v.address;
    return true;
}

/* Apply the whole map through the reconciler. */
static void apply_map(lbk_etcd *w)
{
    lbk_instance *inst = lbk_malloc(&w->alloc, (w->n + 1) * sizeof(*inst));
    int rc = LBK_ENOMEM;
    if (inst != NULL) {
        for (size_t i = 0; i < w->n; i++)
            inst[i] = w->e[i].v.inst;
        rc = lbk_reconciler_apply(w->rec, inst, w->n, w->now, NULL);
        lbk_free(&w->alloc, inst);
    }
    w->st.keys = (uint32_t)w->n;
    w->st.last_result = rc;
    w->applies++;
    if (rc < 0)
        set_error(w, rc, "applying", w->prefix);
}

/* One kv from etcd (key and value base64): decode, parse, store.  Returns
 * false only on ENOMEM. */
static bool take_kv(lbk_etcd *w, json_object *kv, bool is_delete)
{
    json_object *k, *v;
    if (!json_object_object_get_ex(kv, "key", &k))
        return true;
    const char *kb = json_object_get_string(k);
    size_t kbl = strlen(kb);
    uint8_t *key = lbk_malloc(&w->alloc, kbl / 4 * 3 + 1);
    if (key == NULL)
        return false;
    long kl = b64_decode(kb, kbl, key);
    bool ok = kl >= 0 && (size_t)kl >= w->prefix_len &&
              memchr(key, 0, (size_t)kl) == NULL;
    if (ok)
        key[kl] = '\0';
    int64_t mod = str_i64(kv, "mod_revision");
    if (mod > 0 && (uint64_t)mod > w->rev)
        w->rev = (uint64_t)mod;
    if (!ok) {
        lbk_free(&w->alloc, key);
        return true;
    }
    if (is_delete) {
        map_delete(w, (char *)key);
        lbk_free(&w->alloc, key);
        return true;
    }
    const char *vb = json_object_object_get_ex(kv, "value", &v)
                         ? json_object_get_string(v)
                         : "";
    size_t vbl = strlen(vb);
    uint8_t *val = lbk_malloc(&w->alloc, vbl / 4 * 3 + 1);
    if (val == NULL) {
        lbk_free(&w->alloc, key);
        return false;
    }
    long vl = b64_decode(vb, vbl, val);
    lbk_etcd_instance inst;
    int rc = vl < 0
                 ? LBK_EPARSE
                 : lbk_etcd_parse_instance((const char *)val, (size_t)vl,
                                           (char *)key + w->prefix_len, &inst);
    bool mem = true;
    if (rc == 0) {
        mem = map_put(w, (char *)key, &inst);
    } else {
        w->st.bad_values++;
        set_error(w, rc, "refused the value of", (char *)key);
    }
    lbk_free(&w->alloc, val);
    lbk_free(&w->alloc, key);
    return mem;
}

static void fail(lbk_etcd *w, int rc, const char *what)
{
    w->st.failures++;
    w->st.last_result = rc;
    w->st.watching = false;
    set_error(w, rc, what, w->endpoint);
    lbk_reconciler_fail(w->rec, rc, w->now, NULL);
    w->backoff_ns =
        w->backoff_ns == 0 ? w->opts.backoff_initial_ns : 2 * w->backoff_ns;
    if (w->backoff_ns > w->opts.backoff_max_ns)
        w->backoff_ns = w->opts.backoff_max_ns;
    w->next_ns = w->now + w->backoff_ns;
}

/* One watch message.  Returns false to drop the stream. */
static bool watch_message(lbk_etcd *w, json_object *msg)
{
    json_object *res, *x;
    if (!json_object_object_get_ex(msg, "result", &res)) {
        w->broken = true; /* {"error": ...} or garbage */
        return false;
    }
    if (str_i64(res, "compact_revision") > 0 ||
        (json_object_object_get_ex(res, "canceled", &x) &&
         json_object_get_boolean(x))) {
        w->need_list = true; /* history gone: list again */
        return false;
    }
    if (json_object_object_get_ex(res, "created", &x) &&
        json_object_get_boolean(x)) {
        w->st.watches++;
        w->st.watching = true;
        w->backoff_ns = 0;
        apply_map(w); /* the source is good again */
    }
    json_object *evs;
    if (json_object_object_get_ex(res, "events", &evs) &&
        json_object_is_type(evs, json_type_array)) {
        size_t n = json_object_array_length(evs);
        for (size_t i = 0; i < n; i++) {
            json_object *ev = json_object_array_get_idx(evs, i), *kv, *t;
            bool del = json_object_object_get_ex(ev, "type", &t) &&
                       strcmp(json_object_get_string(t), "DELETE") == 0;
            if (json_object_object_get_ex(ev, "kv", &kv) &&
                !take_kv(w, kv, del))
                return false;
        }
        w->st.events += n;
        if (n > 0)
            apply_map(w);
    }
    return true;
}

/* Cut every complete JSON object off the front of the stream buffer. */
static size_t watch_write(char *data, size_t size, size_t nmemb, void *user)
{
    lbk_etcd *w = user;
    size_t n = size * nmemb;
    if (w->resp.n + n > RESP_MAX || !buf_append(&w->alloc, &w->resp, data, n))
        return 0;
    size_t at = 0;
    bool keep = true;
    while (keep) {
        while (at < w->resp.n && strchr(" \t\r\n", w->resp.p[at]) != NULL)
            at++;
        if (at == w->resp.n)
            break;
        json_tokener *tok = json_tokener_new();
        if (tok == NULL)
            return 0;
        json_object *msg =
            json_tokener_parse_ex(tok, w->resp.p + at, (int)(w->resp.n - at));
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (err == json_tokener_continue)
            break; /* incomplete: wait for more */
        if (msg == NULL) {
            w->broken = true;
            return 0;
        }
        keep = watch_message(w, msg);
        json_object_put(msg);
        at += used;
    }
    memmove(w->resp.p, w->resp.p + at, w->resp.n - at);
    w->resp.n -= at;
    return keep ? n : 0;
}

static void drop_easy(lbk_etcd *w)
{
    if (w->easy != NULL) {
        curl_multi_remove_handle(w->multi, w->easy);
        curl_easy_cleanup(w->easy);
        w->easy = NULL;
    }
    w->resp.n = 0;
}

static int start(lbk_etcd *w)
{
    bool list = !w->listed || w->need_list;
    json_object *body = json_object_new_object();
    json_object *req = list ? body : json_object_new_object();
    RETURN_ERROR_IF(body == NULL || req == NULL, LBK_ENOMEM);
    json_object_object_add(req, "key", json_object_get(w->key_json));
    json_object_object_add(req, "range_end", json_object_get(w->end_json));
    if (!list) {
        json_object_object_add(req, "start_revision",
                               json_object_new_int64((int64_t)w->rev + 1));
        json_object_object_add(body, "create_request", req);
    }
    const char *text = json_object_to_json_string(body);
    w->easy = text ? easy_new(w->endpoint, list ? "/v3/kv/range" : "/v3/watch",
                              text, w->hdrs, w->opts.request_timeout_ms, !list)
                   : NULL;
    json_object_put(body);
    RETURN_ERROR_IF(w->easy == NULL, LBK_ENOMEM);
    w->snk = (sink){&w->alloc, &w->resp, false};
    curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION,
                     list ? sink_write : watch_write);
    curl_easy_setopt(w->easy, CURLOPT_WRITEDATA,
                     list ? (void *)&w->snk : (void *)w);
    if (curl_multi_add_handle(w->multi, w->easy) != CURLM_OK) {
        curl_easy_cleanup(w->easy);
        w->easy = NULL;
        return LBK_ENOMEM;
    }
    w->state = list ? ST_LIST : ST_WATCH;
    w->resp.n = 0;
    w->broken = false;
    return 0;
}

/* A finished listing: rebuild the map, apply, go on to the watch. */
static void list_done(lbk_etcd *w, CURLcode c)
{
    long http = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
    int rc = map_curl(c);
    json_object *o = NULL;
    if (rc == 0)
        rc = parse_answer(&w->resp, http, &o);
    drop_easy(w);
    w->state = ST_IDLE;
    if (rc < 0) {
        fail(w, rc, "listing the prefix at");
        return;
    }
    /* The old map stays for keys whose new value is refused. */
    entry *old = w->e;
    size_t nold = w->n;
    w->e = NULL;
    w->n = w->cap = 0;
    json_object *kvs;
    bool mem = true;
    if (json_object_object_get_ex(o, "kvs", &kvs) &&
        json_object_is_type(kvs, json_type_array)) {
        size_t n = json_object_array_length(kvs);
        for (size_t i = 0; i < n && mem; i++) {
            json_object *kv = json_object_array_get_idx(kvs, i);
            uint32_t bad = w->st.bad_values;
            mem = take_kv(w, kv, false);
            if (w->st.bad_values != bad) { /* keep the last good value */
                json_object *k;
                json_object_object_get_ex(kv, "key", &k);
                for (size_t j = 0; j < nold && mem; j++) {
                    char enc[4 * ((LBK_ETCD_KEY_MAX + 2) / 3) + 8];
                    size_t kl = strlen(old[j].key);
                    if (kl > LBK_ETCD_KEY_MAX)
                        continue;
                    b64_encode((const uint8_t *)old[j].key, kl, enc);
                    if (strcmp(enc, json_object_get_string(k)) == 0)
                        mem = map_put(w, old[j].key, &old[j].v);
                }
            }
        }
    }
    json_object *hdr;
    if (json_object_object_get_ex(o, "header", &hdr))
        w->rev = (uint64_t)str_i64(hdr, "revision");
    json_object_put(o);
    if (!mem) { /* back to the old map */
        map_clear(w);
        lbk_free(&w->alloc, w->e);
        w->e = old;
        w->n = w->cap = nold;
        fail(w, LBK_ENOMEM, "listing the prefix at");
        return;
    }
    for (size_t i = 0; i < nold; i++)
        lbk_free(&w->alloc, old[i].key);
    lbk_free(&w->alloc, old);
    w->listed = true;
    w->need_list = false;
    w->st.lists++;
    w->backoff_ns = 0;
    apply_map(w);
    w->next_ns = w->now; /* watch at once */
}

static void watch_done(lbk_etcd *w, CURLcode c)
{
    drop_easy(w);
    w->state = ST_IDLE;
    w->st.watching = false;
    if (w->need_list && !w->broken) {
        w->next_ns = w->now; /* compacted: list again at once */
        return;
    }
    int rc = map_curl(c);
    fail(w, w->broken || rc == 0 ? LBK_EIO : rc, "watch stream from");
}

int lbk_etcd_create(const char *endpoint, const char *prefix,
                    lbk_reconciler *rec, const lbk_etcd_options *opts,
                    const lbk_allocator *alloc, lbk_etcd **out)
{
    RETURN_ERROR_IF(endpoint == NULL || prefix == NULL || rec == NULL ||
                        out == NULL || prefix[0] == '\0' ||
                        !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    size_t el = strnlen(endpoint, LBK_ETCD_URL_MAX + 1);
    size_t pl = strnlen(prefix, LBK_ETCD_KEY_MAX + 1);
    RETURN_ERROR_IF(el > LBK_ETCD_URL_MAX || pl > LBK_ETCD_KEY_MAX,
                    LBK_ETOOLONG);
    lbk_etcd_options o;
    lbk_etcd_options_init(&o);
    if (opts != NULL)
        o = *opts;
    RETURN_ERROR_IF(o.request_timeout_ms == 0 || o.backoff_initial_ns == 0 ||
                        o.backoff_initial_ns > o.backoff_max_ns,
                    LBK_EINVAL);
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_etcd *w = lbk_calloc(&a, 1, sizeof(*w));
    RETURN_ERROR_IF(w == NULL, LBK_ENOMEM);
    w->alloc = a;
    w->rec = rec;
    w->opts = o;
    w->prefix_len = pl;
    w->endpoint = lbk_malloc(&a, el + 1);
    w->prefix = lbk_malloc(&a, pl + 1);
    /* range end: the prefix with its last byte below 0xff incremented */
    uint8_t end[LBK_ETCD_KEY_MAX + 1];
    memcpy(end, prefix, pl);
    size_t endl = pl;
    while (endl > 0 && end[endl - 1] == 0xff)
        endl--;
    if (endl > 0)
        end[endl - 1]++;
    else
        end[endl++] = 0; /* all 0xff: to the end of the keyspace */
    int rc = 0;
    if (w->endpoint == NULL || w->prefix == NULL)
        rc = LBK_ENOMEM;
    if (rc == 0) {
        memcpy(w->endpoint, endpoint, el + 1);
        memcpy(w->prefix, prefix, pl + 1);
        w->key_json = b64_json(&a, prefix, pl);
        w->end_json = b64_json(&a, end, endl);
        w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        if (w->key_json == NULL || w->end_json == NULL || w->hdrs == NULL)
            rc = LBK_ENOMEM;
    }
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = LBK_EIO;
    if (rc == 0 && (w->multi = curl_multi_init()) == NULL) {
        curl_global_cleanup();
        rc = LBK_EIO;
    }
    if (rc < 0) {
        json_object_put(w->key_json);
        json_object_put(w->end_json);
        curl_slist_free_all(w->hdrs);
        lbk_free(&a, w->endpoint);
        lbk_free(&a, w->prefix);
        lbk_free(&a, w);
        return rc;
    }
    *out = w;
    return 0;
}

void lbk_etcd_free(lbk_etcd *w)
{
    if (w == NULL)
        return;
    drop_easy(w);
    curl_multi_cleanup(w->multi);
    curl_global_cleanup();
    curl_slist_free_all(w->hdrs);
    json_object_put(w->key_json);
    json_object_put(w->end_json);
    map_clear(w);
    lbk_allocator a = w->alloc;
    lbk_free(&a, w->e);
    buf_free(&a, &w->resp);
    lbk_free(&a, w->endpoint);
    lbk_free(&a, w->prefix);
    lbk_free(&a, w);
}

int lbk_etcd_fds(lbk_etcd *w, lbk_etcd_fd *out, size_t max)
{
    RETURN_ERROR_IF(w == NULL || (out == NULL && max > 0), LBK_EINVAL);
    fd_set r, wr, ex;
    FD_ZERO(&r);
    FD_ZERO(&wr);
    FD_ZERO(&ex);
    int maxfd = -1;
    curl_multi_fdset(w->multi, &r, &wr, &ex, &maxfd);
    size_t n = 0;
    for (int fd = 0; fd <= maxfd && n < max; fd++) {
        bool rd = FD_ISSET(fd, &r), wt = FD_ISSET(fd, &wr);
        if (rd || wt)
            out[n++] = (lbk_etcd_fd){fd, rd, wt};
    }
    return (int)n;
}

int lbk_etcd_timeout(lbk_etcd *w, uint64_t now_ns, uint64_t *wait_ns)
{
    RETURN_ERROR_IF(w == NULL || wait_ns == NULL, LBK_EINVAL);
    if (w->state == ST_IDLE) {
        *wait_ns = now_ns >= w->next_ns ? 0 : w->next_ns - now_ns;
        return 0;
    }
    long ms = -1;
    curl_multi_timeout(w->multi, &ms);
    *wait_ns = ms < 0 ? 1000 * NS_PER_MS : (uint64_t)ms * NS_PER_MS;
    return 0;
}

int lbk_etcd_process(lbk_etcd *w, uint64_t now_ns)
{
    RETURN_ERROR_IF(w == NULL, LBK_EINVAL);
    w->now = now_ns;
    w->applies = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (w->state == ST_IDLE && now_ns >= w->next_ns) {
            int rc = start(w);
            if (rc < 0)
                return rc;
        }
        int running;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE || m->easy_handle != w->easy)
                continue;
            if (w->state == ST_LIST)
                list_done(w, m->data.result);
            else
                watch_done(w, m->data.result);
        }
    }
    return w->applies;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lbk_etcd_run(lbk_etcd *w, uint64_t timeout_ns, bool (*stop)(void *user),
                 void *user)
{
    RETURN_ERROR_IF(w == NULL, LBK_EINVAL);
    uint64_t deadline = mono_ns() + timeout_ns;
    for (;;) {
        uint64_t now = mono_ns();
        int n = lbk_etcd_process(w, now);
        if (n == LBK_ENOMEM)
            return n;
        if (n > 0 && stop != NULL && stop(user))
            return 1;
        now = mono_ns();
        if (now >= deadline)
            return 0;
        uint64_t wait;
        lbk_etcd_timeout(w, now, &wait);
        if (wait > deadline - now)
            wait = deadline - now;
        int ms = (int)((wait + NS_PER_MS - 1) / NS_PER_MS);
        if (w->state == ST_IDLE) {
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        } else {
            curl_multi_poll(w->multi, NULL, 0, ms, NULL);
        }
    }
}

int lbk_etcd_status(const lbk_etcd *w, lbk_etcd_info *out)
{
    RETURN_ERROR_IF(w == NULL || out == NULL, LBK_EINVAL);
    *out = w->st;
    out->revision = w->rev;
    out->keys = (uint32_t)w->n;
    return 0;
}

/* ---- leases ------------------------------------------------------------ */

struct lbk_etcd_lease {
    lbk_allocator alloc;
    lbk_etcd_options opts;
    char endpoint[LBK_ETCD_URL_MAX + 1];
    int64_t id;
};

/* One blocking POST of body to endpoint + path; the parsed answer. */
static int post(const lbk_allocator *a, const lbk_etcd_options *o,
                const char *endpoint, const char *path, json_object *body,
                json_object **out)
{
    const char *text = body ? json_object_to_json_string(body) : NULL;
    RETURN_ERROR_IF(text == NULL, LBK_ENOMEM);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    RETURN_ERROR_IF(h == NULL, LBK_ENOMEM);
    CURL *e = easy_new(endpoint, path, text, h, o->request_timeout_ms, false);
    if (e == NULL) {
        curl_slist_free_all(h);
        return LBK_ENOMEM;
    }
    buf b = {0};
    sink s = {a, &b, false};
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    int rc = map_curl(curl_easy_perform(e));
    if (s.overflow)
        rc = LBK_ENOMEM;
    long http = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
    if (rc == 0)
        rc = parse_answer(&b, http, out);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    buf_free(a, &b);
    return rc;
}

static json_object *id_body(int64_t id)
{
    json_object *b = json_object_new_object();
    if (b != NULL)
        json_object_object_add(b, "ID", json_object_new_int64(id));
    return b;
}

int lbk_etcd_register(const char *endpoint, const char *key,
                      const lbk_instance *inst, uint32_t ttl_s,
                      const lbk_etcd_options *opts, const lbk_allocator *alloc,
                      lbk_etcd_lease **out)
{
    RETURN_ERROR_IF(endpoint == NULL || key == NULL || inst == NULL ||
                        out == NULL || ttl_s == 0 || key[0] == '\0' ||
                        !lbk_alloc_valid(alloc),
                    LBK_EINVAL);
    size_t el = strnlen(endpoint, LBK_ETCD_URL_MAX + 1);
    size_t kl = strnlen(key, LBK_ETCD_KEY_MAX + 1);
    RETURN_ERROR_IF(el > LBK_ETCD_URL_MAX || kl > LBK_ETCD_KEY_MAX,
                    LBK_ETOOLONG);
    FORWARD_IF_ERROR(lbk_reconcile_validate(inst, 1, alloc, NULL));
    lbk_allocator a;
    lbk_alloc_init(&a, alloc);
    lbk_etcd_lease *l = lbk_calloc(&a, 1, sizeof(*l));
    RETURN_ERROR_IF(l == NULL, LBK_ENOMEM);
    l->alloc = a;
    lbk_etcd_options_init(&l->opts);
    if (opts != NULL)
        l->opts = *opts;
    memcpy(l->endpoint, endpoint, el + 1);
    char value[LBK_NAME_MAX + LBK_ADDRESS_MAX + 128];
    int rc = lbk_etcd_format_instance(inst, value, sizeof value);
    json_object *grant = json_object_new_object(), *ans = NULL;
    if (rc >= 0 && grant == NULL)
        rc = LBK_ENOMEM;
    if (rc >= 0) {
        json_object_object_add(grant, "TTL", json_object_new_int64(ttl_s));
        rc = post(&a, &l->opts, endpoint, "/v3/lease/grant", grant, &ans);
    }
    json_object_put(grant);
    if (rc >= 0) {
        l->id = str_i64(ans, "ID");
        json_object_put(ans);
        ans = NULL;
        if (l->id == 0)
            rc = LBK_EPARSE;
    }
    if (rc >= 0) {
        json_object *put = json_object_new_object();
        json_object *k = b64_json(&a, key, kl);
        json_object *v = b64_json(&a, value, strlen(value));
        if (put == NULL || k == NULL || v == NULL) {
            json_object_put(k);
            json_object_put(v);
            rc = LBK_ENOMEM;
        } else {
            json_object_object_add(put, "key", k);
            json_object_object_add(put, "value", v);
            json_object_object_add(put, "lease", json_object_new_int64(l->id));
            rc = post(&a, &l->opts, endpoint, "/v3/kv/put", put, &ans);
            json_object_put(ans);
        }
        json_object_put(put);
        if (rc < 0) { /* do not leave a lease without its key behind */
            json_object *b = id_body(l->id);
            ans = NULL;
            if (post(&a, &l->opts, endpoint, "/v3/lease/revoke", b, &ans) == 0)
                json_object_put(ans);
            json_object_put(b);
        }
    }
    if (rc < 0) {
        lbk_free(&a, l);
        return rc;
    }
    *out = l;
    return 0;
}

int lbk_etcd_keepalive(lbk_etcd_lease *l)
{
    RETURN_ERROR_IF(l == NULL, LBK_EINVAL);
    json_object *b = id_body(l->id), *ans = NULL, *res;
    int rc =
        post(&l->alloc, &l->opts, l->endpoint, "/v3/lease/keepalive", b, &ans);
    json_object_put(b);
    if (rc < 0)
        return rc;
    /* an expired lease answers without a TTL (or TTL 0) */
    if (!json_object_object_get_ex(ans, "result", &res))
        rc = LBK_EPARSE;
    else if (str_i64(res, "TTL") <= 0)
        rc = LBK_ENOENT;
    json_object_put(ans);
    return rc;
}

int lbk_etcd_revoke(lbk_etcd_lease *l)
{
    RETURN_ERROR_IF(l == NULL, LBK_EINVAL);
    json_object *b = id_body(l->id), *ans = NULL;
    int rc =
        post(&l->alloc, &l->opts, l->endpoint, "/v3/lease/revoke", b, &ans);
    json_object_put(b);
    json_object_put(ans);
    return rc;
}

int64_t lbk_etcd_lease_id(const lbk_etcd_lease *l)
{
    return l ? l->id : 0;
}

void lbk_etcd_lease_free(lbk_etcd_lease *l)
{
    if (l == NULL)
        return;
    lbk_allocator a = l->alloc;
    lbk_free(&a, l);
}
