/*
 * tests/fuzz/fuzz.h - a tiny byte reader for the harnesses: each call takes
 * the next bytes of the input (zero when it runs out), so any input is a
 * valid program of operations.
 */
#ifndef LBKIT_FUZZ_H
#define LBKIT_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fz_u8(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fz_u32(fuzz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | fz_u8(in);
    return v;
}

static inline uint64_t fz_u64(fuzz_in *in)
{
    return ((uint64_t)fz_u32(in) << 32) | fz_u32(in);
}

static inline double fz_double(fuzz_in *in)
{
    uint64_t u = fz_u64(in);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Copy up to max-1 bytes (length from the input) into buf, NUL-terminated;
 * embedded NULs end the string early, as they would for a C caller. */
static inline size_t fz_str(fuzz_in *in, char *buf, size_t max)
{
    size_t len = fz_u8(in);
    if (max > 256 && (len & 0x80))
        len = (len << 1) | fz_u8(in); /* sometimes longer than 255 */
    if (len > max - 1)
        len = max - 1;
    if (len > in->n)
        len = in->n;
    memcpy(buf, in->p, len);
    buf[len] = '\0';
    in->p += len;
    in->n -= len;
    return strlen(buf);
}

/* A broken invariant: say which and abort (libFuzzer and replay both stop). */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif /* LBKIT_FUZZ_H */
