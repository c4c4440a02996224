/*
 * tests/fuzz/fuzz_parsers.c - the example programs' input parsers
 * (examples/parse.c): backend files, host:port strings, numbers.
 *
 * Invariants: no crash or leak on any bytes; a parsed backend list has
 * unique, non-empty names of at most 255 bytes without whitespace or '#',
 * and every weight fits 32 bits; host:port gives a non-empty host and a
 * port in 1..65535; numbers come back inside the range asked for, finite,
 * and a failed parse leaves the output untouched.
 */
#include <math.h>

#include "fuzz.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ex_backend_list list;
    char err[128];
    if (ex_backend_list_parse((const char *)data, size, "fuzz", &list, err,
                              sizeof err) == 0) {
        for (size_t i = 0; i < list.n; i++) {
            size_t len = strlen(list.items[i].name);
            FUZZ_CHECK(len > 0 && len <= 255);
            FUZZ_CHECK(strpbrk(list.items[i].name, " \t\r\n#") == NULL);
            for (size_t j = i + 1; j < list.n; j++)
                FUZZ_CHECK(strcmp(list.items[i].name, list.items[j].name) != 0);
        }
        ex_backend_list_free(&list);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }

    /* The same bytes as one C string for the scalar parsers. */
    char s[512];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    char host[64] = "untouched", port[8] = "same";
    if (ex_parse_hostport(s, host, sizeof host, port, sizeof port) == 0) {
        FUZZ_CHECK(host[0] != '\0');
        long p = strtol(port, NULL, 10);
        FUZZ_CHECK(p >= 1 && p <= 65535);
    } else {
        FUZZ_CHECK(strcmp(host, "untouched") == 0 && strcmp(port, "same") == 0);
    }
    uint64_t u = 12345;
    if (ex_parse_u64(s, 10, 1000000, &u) == 0)
        FUZZ_CHECK(u >= 10 && u <= 1000000);
    else
        FUZZ_CHECK(u == 12345);
    double d = -7.5;
    if (ex_parse_double(s, -1e6, 1e6, &d) == 0)
        FUZZ_CHECK(isfinite(d) && d >= -1e6 && d <= 1e6);
    else
        FUZZ_CHECK(d == -7.5);
    return 0;
}
