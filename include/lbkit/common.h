/*
 * lbkit/common.h - conventions shared by every lbkit module.
 *
 * Errors.  Every function that can fail returns an int: >= 0 is success, < 0
 * is one of the LBK_E* codes below.  A function that fails changes nothing:
 * its objects are as they were and its out-parameters are not written.
 * Out-parameters come last.  No function aborts on caller input.
 *
 * Memory.  Every constructor that allocates takes an optional lbk_allocator
 * (NULL means malloc/free).  The allocator is copied into the object, so the
 * caller's struct may go away after the call.  Pick and lookup paths never
 * allocate.
 *
 * Threads.  lbkit owns no threads and has no global mutable state.  Unless a
 * function's comment says otherwise, a function is safe to call from several
 * threads at once only on different objects.  Each prototype states its
 * "Thread safety:" explicitly.
 *
 * Hashing.  lbk_hash() is XXH3-64 with a seed, from the system xxHash.  All
 * non-compatibility hashing in lbkit goes through it so a seed chosen per
 * object defeats hash flooding.
 */
#ifndef LBKIT_COMMON_H
#define LBKIT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Symbol export.  The library is built with hidden visibility and
 * -DLBK_BUILDING; only declarations marked LBK_API are exported. */
#if defined(LBK_BUILDING) && defined(__GNUC__)
#define LBK_API __attribute__((visibility("default")))
#else
#define LBK_API
#endif

#if defined(__GNUC__)
#define LBK_NODISCARD __attribute__((warn_unused_result))
#define LBK_PURE __attribute__((pure))
#else
#define LBK_NODISCARD
#define LBK_PURE
#endif

/*
 * The error list.  One X-macro generates the enum, lbk_strerror() and
 * lbk_errname(), so the three never drift apart.  Values are fixed forever:
 * new codes are appended with new numbers, none is ever renumbered.
 */
#define LBK_ERRNO_MAP(XX)                                                      \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOMEM, -2, "out of memory")                                            \
    XX(ERANGE, -3, "value out of range")                                       \
    XX(EEXIST, -4, "already exists")                                           \
    XX(ENOENT, -5, "no such entry")                                            \
    XX(ENOBACKEND, -6, "no eligible backend")                                  \
    XX(EOVERFLOW, -7, "total weight would overflow 32 bits")                   \
    XX(ESTATE, -8, "operation not valid in the object's current state")        \
    XX(EUNSTABLE, -9, "queue is unstable (arrival rate >= capacity)")          \
    XX(ENOTSUP, -10, "not supported")                                          \
    XX(ETOOLONG, -11, "name or input too long")                                \
    XX(EPARSE, -12, "malformed input")                                         \
    XX(EIO, -13, "source or I/O failure")                                      \
    XX(ETIMEDOUT, -14, "timed out")                                            \
    XX(EAGAIN, -15, "denied for now, try again later")                         \
    XX(EBUSY, -16, "object still in use")                                      \
    XX(ENOTPRIME, -17, "table size is not prime")                              \
    XX(EUNDERFLOW, -18, "result underflows to zero")

typedef enum lbk_errno {
    LBK_OK = 0,
#define LBK_ERRNO_ENUM_(name, value, msg) LBK_##name = (value),
    LBK_ERRNO_MAP(LBK_ERRNO_ENUM_)
#undef LBK_ERRNO_ENUM_
} lbk_errno;

/* Longest backend name, in bytes, not counting the terminating NUL. */
#define LBK_NAME_MAX 255

/*
 * lbk_strerror - a short English message for an lbkit result code.
 * Returns "success" for values >= 0 and "unknown error" for values that are
 * not in the list.  Never returns NULL.
 * Thread safety: safe from any thread.
 */
LBK_API const char *lbk_strerror(int err);

/*
 * lbk_errname - the symbolic name of a result code ("LBK_EINVAL", "LBK_OK").
 * Returns "LBK_UNKNOWN" for values that are not in the list.
 * Thread safety: safe from any thread.
 */
LBK_API const char *lbk_errname(int err);

/*
 * lbk_version - LBK_VERSION_NUMBER of the library actually linked.
 * Thread safety: safe from any thread.
 */
LBK_API unsigned lbk_version(void);

/*
 * lbk_version_string - "MAJOR.MINOR.PATCH" of the library actually linked.
 * Thread safety: safe from any thread.
 */
LBK_API const char *lbk_version_string(void);

/*
 * The allocator hook.  alloc(user, size) returns memory aligned for any
 * type, or NULL; free(user, ptr) releases it (ptr may be NULL).  Both must be
 * set, or the whole pointer passed as NULL for malloc/free.  Objects copy the
 * struct, and call free from whichever thread drops the last reference.
 */
typedef struct lbk_allocator {
    void *(*alloc)(void *user, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} lbk_allocator;

/*
 * lbk_hash - XXH3-64 of len bytes at data, with the given seed.
 * data may be NULL only when len is 0.  With data NULL and len > 0 the
 * result is the hash of the empty input (no crash); validating functions in
 * other modules reject that case with LBK_EINVAL.
 * Thread safety: safe from any thread.
 */
LBK_API LBK_PURE uint64_t lbk_hash(const void *data, size_t len, uint64_t seed);

/*
 * lbk_hash_str - lbk_hash() of a NUL-terminated string (without the NUL).
 * str NULL hashes as the empty string.
 * Thread safety: safe from any thread.
 */
LBK_API LBK_PURE uint64_t lbk_hash_str(const char *str, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_COMMON_H */
