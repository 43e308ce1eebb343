/*
 * Shared by the C-ABI check programs (contract.c, prefixed.c, cxx.cpp):
 * a counting CHECK that prints "FAIL file:line: condition: message" for
 * each failed check, the byte pattern that blocks are filled with, and a
 * zero test.
 * Each program prints "<name>: N checks, M failed" from `checks` and
 * `failures` at the end.
 */
#ifndef OX_TEST_CHECK_H
#define OX_TEST_CHECK_H
#include <stddef.h>
#include <stdio.h>

static int checks, failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
        }                                                                   \
    } while (0)

static inline void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

/* Whether `p` still holds the pattern `fill` wrote with `seed`. */
static inline int filled(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7)) return 0;
    return 1;
}

/* Whether the `n` bytes at `p` are all zero. */
static inline int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}
#endif
