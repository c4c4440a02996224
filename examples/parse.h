/*
 * examples/parse.h - the input parsers the example programs share: backend
 * files, host:port strings and command-line numbers.  Strict: a number with
 * trailing junk, NaN, infinity or out of range is an error, and a backend
 * file with one bad line is rejected whole with "FILE:LINE: reason".
 * tests/fuzz/fuzz_parsers.c fuzzes all of them.
 */
#ifndef LBKIT_EXAMPLES_PARSE_H
#define LBKIT_EXAMPLES_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* One backend line: "name [weight]" (weight defaults to 1). */
typedef struct ex_backend_line {
    char *name;
    uint32_t weight;
    size_t line; /* 1-based line number in the file */
} ex_backend_line;

typedef struct ex_backend_list {
    ex_backend_line *items;
    size_t n;
} ex_backend_list;

/*
 * Parse a backend file's text: one "name [weight]" per line, blank lines
 * and '#' comments ignored, names unique, at most 255 bytes, weight a
 * decimal 0..4294967295.  On error returns -1 and writes "LINE: reason"
 * into err (prefixed with origin when not NULL).
 */
int ex_backend_list_parse(const char *text, size_t len, const char *origin,
                          ex_backend_list *out, char *err, size_t errlen);

/* ex_backend_list_parse() on the contents of a file. */
int ex_backend_list_read(const char *path, ex_backend_list *out, char *err,
                         size_t errlen);

void ex_backend_list_free(ex_backend_list *list);

/* Split "host:port" or "[v6]:port" into host and port (1..65535). */
int ex_parse_hostport(const char *s, char *host, size_t hostlen, char *port,
                      size_t portlen);

/* A whole decimal integer in [min, max] ("1e6" accepted if integral). */
int ex_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* A finite double in [min, max]. */
int ex_parse_double(const char *s, double min, double max, double *out);

#endif /* LBKIT_EXAMPLES_PARSE_H */
