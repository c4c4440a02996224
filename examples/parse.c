/*
 * examples/parse.c - strict parsers shared by the example programs (see
 * parse.h).  Written for hostile input: every length is bounded, every
 * number is range-checked, and failure leaves the output untouched.
 */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_ 255

static int fail(char *err, size_t errlen, const char *origin, size_t line,
                const char *why)
{
    if (err != NULL && errlen > 0) {
        if (origin != NULL)
            snprintf(err, errlen, "%s:%zu: %s", origin, line, why);
        else
            snprintf(err, errlen, "%zu: %s", line, why);
    }
    return -1;
}

void ex_backend_list_free(ex_backend_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i].name);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

int ex_backend_list_parse(const char *text, size_t len, const char *origin,
                          ex_backend_list *out, char *err, size_t errlen)
{
    ex_backend_list list = {NULL, 0};
    size_t cap = 0, lineno = 0, pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        char line[1024];
        size_t l = end - pos;
        if (l >= sizeof line) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno, "line too long");
        }
        memcpy(line, text + pos, l);
        line[l] = '\0';
        pos = end + 1;
        if (memchr(line, '\0', l) != NULL) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno, "NUL byte in line");
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *name = strtok_r(line, " \t\r", &save);
        if (name == NULL)
            continue;
        char *wtok = strtok_r(NULL, " \t\r", &save);
        if (strtok_r(NULL, " \t\r", &save) != NULL) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno,
                        "expected 'name [weight]'");
        }
        uint64_t w = 1;
        if (wtok != NULL && ex_parse_u64(wtok, 0, UINT32_MAX, &w) < 0) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno, "bad weight");
        }
        if (strlen(name) > NAME_MAX_) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno, "name too long");
        }
        for (size_t i = 0; i < list.n; i++) {
            if (strcmp(list.items[i].name, name) == 0) {
                ex_backend_list_free(&list);
                return fail(err, errlen, origin, lineno, "duplicate name");
            }
        }
        if (list.n == cap) {
            cap = cap ? cap * 2 : 16;
            ex_backend_line *n = realloc(list.items, cap * sizeof(*n));
            if (n == NULL) {
                ex_backend_list_free(&list);
                return fail(err, errlen, origin, lineno, "out of memory");
            }
            list.items = n;
        }
        char *copy = strdup(name);
        if (copy == NULL) {
            ex_backend_list_free(&list);
            return fail(err, errlen, origin, lineno, "out of memory");
        }
        list.items[list.n++] = (ex_backend_line){copy, (uint32_t)w, lineno};
    }
    *out = list;
    return 0;
}

int ex_backend_list_read(const char *path, ex_backend_list *out, char *err,
                         size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (err)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (64u << 20)) { /* 64 MiB is plenty for a list */
                free(buf);
                fclose(f);
                if (err)
                    snprintf(err, errlen, "%s: file too large", path);
                return -1;
            }
            cap = cap ? cap * 2 : 4096;
            char *n = realloc(buf, cap);
            if (n == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(buf);
        if (err)
            snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = ex_backend_list_parse(buf ? buf : "", len, path, out, err, errlen);
    free(buf);
    return rc;
}

int ex_parse_hostport(const char *s, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    if (s == NULL || hostlen == 0 || portlen < 6)
        return -1;
    const char *colon, *hstart = s, *hend;
    if (s[0] == '[') {
        hend = strchr(s, ']');
        if (hend == NULL || hend[1] != ':')
            return -1;
        hstart = s + 1;
        colon = hend + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return -1; /* bare IPv6 needs brackets */
        hend = colon;
    }
    size_t hl = (size_t)(hend - hstart);
    if (hl == 0 || hl >= hostlen)
        return -1;
    uint64_t p;
    if (ex_parse_u64(colon + 1, 1, 65535, &p) < 0)
        return -1;
    memcpy(host, hstart, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%u", (unsigned)p);
    return 0;
}

int ex_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0') { /* allow scientific notation for integral values */
        double d;
        if (ex_parse_double(s, 0, 1.8e19, &d) < 0 || d != floor(d) ||
            d > 1.8e19)
            return -1;
        v = (unsigned long long)d;
    } else if (errno != 0) {
        return -1;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ex_parse_double(const char *s, double min, double max, double *out)
{
    if (s == NULL || *s == '\0' || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) ||
        v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
