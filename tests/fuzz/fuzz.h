/*
 * tests/fuzz/fuzz.h — what every libFuzzer target of tests/fuzz shares:
 * the entry points, a NUL-terminated copy of the input, and FUZZ_CHECK, which
 * turns a broken invariant of the parser under test into a crash libFuzzer
 * records (docs/testing.md, "Fuzzing").
 */
#ifndef BG_FUZZ_H
#define BG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with the failed condition: an input that makes a parser break its
 * documented contract is a finding like a memory error. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data[0..size) as a malloc'ed NUL-terminated string (it may hold NULs). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at its first '\n' into a NUL-terminated head (at most
 * cap-1 bytes, else false) and the rest. Targets whose input has two parts
 * (a key and a value, a route and a body) read it this way, so seed files
 * stay readable text. */
static inline bool fuzz_split_line(const uint8_t *data, size_t size, char *head, size_t cap,
                                   const uint8_t **rest, size_t *rest_len)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL || (size_t)(nl - data) >= cap)
        return false;
    memcpy(head, data, (size_t)(nl - data));
    head[nl - data] = '\0';
    *rest = nl + 1;
    *rest_len = size - (size_t)(nl - data) - 1;
    return true;
}

#endif
