/* Shared helpers of the rel_*.c reliability programs (tests/reliability.rs). */
#ifndef REL_COMMON_H
#define REL_COMMON_H
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ox_* API, weak: the programs are preloaded, not linked. */
void ox_collect(int force) __attribute__((weak));

static inline unsigned long rel_rng(unsigned long *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Resident set size in bytes, from /proc/self/statm (no allocation). */
static inline size_t rel_rss(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strchr(buf, ' ');
    return p ? strtoul(p + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* A pattern that depends on the block's address and the offset. */
static inline unsigned char rel_pattern(const void *block, size_t i) {
    uintptr_t a = (uintptr_t)block;
    return (unsigned char)((a >> 4) * 31 + i * 7 + (a >> 12));
}

static inline void rel_fill(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += (n > 4096 ? 61 : 1)) p[i] = rel_pattern(p, i);
    if (n) p[n - 1] = rel_pattern(p, n - 1);
}

/* Returns 0 when the pattern is intact. */
static inline int rel_check(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += (n > 4096 ? 61 : 1))
        if (p[i] != rel_pattern(p, i)) return -1;
    if (n && p[n - 1] != rel_pattern(p, n - 1)) return -1;
    return 0;
}

static inline void rel_fail(const char *what) {
    printf("FAIL: %s\n", what);
    fflush(stdout);
    _exit(1);
}
#endif
