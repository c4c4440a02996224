/*
 * lib/crc32.h - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the
 * checksum of zlib and of nginx's ngx_crc32_*, internal: the nginx-compatible
 * ring chains it (nginx keeps the un-finalised state of CRC32(host '\0'
 * port) and continues it with each previous point), so the state is exposed
 * as nginx exposes it: init, update, final.  Not exported.
 */
#ifndef LBKIT_CRC32_H
#define LBKIT_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The state before any byte (ngx_crc32_init). */
static inline uint32_t lbk_crc32_init(void)
{
    return 0xffffffffu;
}

/* Continue a state with len bytes (data may be NULL when len is 0). */
uint32_t lbk_crc32_update(uint32_t state, const void *data, size_t len);

/* The checksum of a state (ngx_crc32_final). */
static inline uint32_t lbk_crc32_final(uint32_t state)
{
    return state ^ 0xffffffffu;
}

/* CRC-32 of one buffer, as zlib's crc32(0, data, len). */
uint32_t lbk_crc32(const void *data, size_t len);

#endif /* LBKIT_CRC32_H */
