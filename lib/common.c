/*
 * lib/common.c - errors, version, the allocator hook and key hashing.
 *
 * The error strings come from the same X-macro as the enum (common.h), so a
 * new code needs one line.  lbk_hash() is XXH3-64 from the system xxHash,
 * inlined (XXH_INLINE_ALL) so hot paths that hash a key pay no call.
 */
#include <stdlib.h>

#include "internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

const char *lbk_strerror(int err)
{
    if (err >= 0)
        return "success";
    switch (err) {
#define LBK_STRERROR_CASE_(name, value, msg)                                   \
    case LBK_##name:                                                           \
        return msg;
        LBK_ERRNO_MAP(LBK_STRERROR_CASE_)
#undef LBK_STRERROR_CASE_
    default:
        return "unknown error";
    }
}

const char *lbk_errname(int err)
{
    if (err == 0)
        return "LBK_OK";
    switch (err) {
#define LBK_ERRNAME_CASE_(name, value, msg)                                    \
    case LBK_##name:                                                           \
        return "LBK_" #name;
        LBK_ERRNO_MAP(LBK_ERRNAME_CASE_)
#undef LBK_ERRNAME_CASE_
    default:
        return "LBK_UNKNOWN";
    }
}

unsigned lbk_version(void)
{
    return LBK_VERSION_NUMBER;
}

const char *lbk_version_string(void)
{
    return LBK_VERSION_STRING;
}

/* ---- allocator ------------------------------------------------------ */

static void *libc_alloc(void *user, size_t size)
{
    (void)user;
    return malloc(size);
}

static void libc_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

bool lbk_alloc_valid(const lbk_allocator *src)
{
    return src == NULL || (src->alloc != NULL && src->free != NULL);
}

void lbk_alloc_init(lbk_allocator *dst, const lbk_allocator *src)
{
    if (src != NULL && src->alloc != NULL && src->free != NULL) {
        *dst = *src;
    } else {
        dst->alloc = libc_alloc;
        dst->free = libc_free;
        dst->user = NULL;
    }
}

void *lbk_malloc(const lbk_allocator *a, size_t size)
{
    return a->alloc(a->user, size == 0 ? 1 : size);
}

void *lbk_calloc(const lbk_allocator *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = lbk_malloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void lbk_free(const lbk_allocator *a, void *ptr)
{
    if (ptr != NULL)
        a->free(a->user, ptr);
}

/* ---- hashing -------------------------------------------------------- */

uint64_t lbk_hash(const void *data, size_t len, uint64_t seed)
{
    if (data == NULL)
        len = 0;
    return XXH3_64bits_withSeed(data, len, seed);
}

uint64_t lbk_hash_str(const char *str, uint64_t seed)
{
    if (str == NULL)
        return XXH3_64bits_withSeed(NULL, 0, seed);
    return XXH3_64bits_withSeed(str, strlen(str), seed);
}

uint64_t lbk_entropy_seed(const void *obj)
{
    /* A per-process counter is the only static here: it holds no caller
     * state and exists so two objects built at one address differ. */
    static _Atomic uint64_t counter;
    uint64_t c = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return lbk_mix64((uint64_t)(uintptr_t)obj ^
                     lbk_mix64(c + 0x5851f42d4c957f2dULL));
}
