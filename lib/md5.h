/*
 * lib/md5.h - MD5 (RFC 1321), internal: the hash the ketama rings place
 * their points with and hash their keys with (libketama, libmemcached and
 * twemproxy all use MD5 this way).  Not exported; not for security.
 */
#ifndef LBKIT_MD5_H
#define LBKIT_MD5_H

#include <stddef.h>
#include <stdint.h>

/* A running MD5 computation. */
typedef struct lbk_md5_ctx {
    uint32_t state[4];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
} lbk_md5_ctx;

/* Start a computation. */
void lbk_md5_init(lbk_md5_ctx *ctx);
/* Hash len more bytes (data may be NULL when len is 0). */
void lbk_md5_update(lbk_md5_ctx *ctx, const void *data, size_t len);
/* Finish: the 16-byte digest.  ctx must be re-initialised to be reused. */
void lbk_md5_final(lbk_md5_ctx *ctx, uint8_t digest[16]);
/* MD5 of one buffer. */
void lbk_md5(const void *data, size_t len, uint8_t digest[16]);

#endif /* LBKIT_MD5_H */
