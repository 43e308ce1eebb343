/* The cost of a free whose allocator metadata is cold: allocates argv[1]
 * blocks of argv[2] bytes, then frees them in a random order, reading the
 * first and last byte of each block just before its free (as a program
 * that has just used the block, and as the latency workload's check does)
 * and, every argv[3] frees (0: never), first sweeping a 64 MiB buffer, which
 * evicts the caches and much of the TLB. Each free is timed with the TSC
 * (fenced); prints the p50, p90 and p99 in TSC cycles.
 *
 *   cc -O2 -o /tmp/cold_free scripts/capi/cold_free.c
 *   LD_PRELOAD=target/release/liboxmalloc.so /tmp/cold_free 20000 2000 1
 *
 * docs/PERFORMANCE.md E47. x86-64 only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t fenced_tsc(void) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BLOCKS SIZE SWEEP_EVERY\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)atol(argv[1]), size = (size_t)atol(argv[2]);
    long sweep_every = atol(argv[3]);
    if (n == 0 || size == 0) {
        fprintf(stderr, "BLOCKS and SIZE must be positive\n");
        return 2;
    }
    void **blocks = malloc(n * sizeof *blocks);
    uint64_t *cycles = malloc(n * sizeof *cycles);
    size_t sweep_bytes = (size_t)64 << 20;
    volatile char *sweep = malloc(sweep_bytes);
    if (!blocks || !cycles || !sweep) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset((char *)sweep, 0, sweep_bytes);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        if (!blocks[i]) {
            fprintf(stderr, "out of memory after %zu blocks\n", i);
            return 1;
        }
        memset(blocks[i], 1, size);
    }
    srand(1);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        void *t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
    uint64_t sink = 0;
    for (size_t i = 0; i < n; i++) {
        if (sweep_every > 0 && i % (size_t)sweep_every == 0)
            for (size_t k = 0; k < sweep_bytes; k += 64) sink += sweep[k];
        sink += ((volatile char *)blocks[i])[0] + ((volatile char *)blocks[i])[size - 1];
        uint64_t start = fenced_tsc();
        free(blocks[i]);
        cycles[i] = fenced_tsc() - start;
    }
    qsort(cycles, n, sizeof *cycles, by_value);
    printf("size %zu, %zu frees: p50 %lu p90 %lu p99 %lu cycles (sink %lu)\n", size, n,
           (unsigned long)cycles[n / 2], (unsigned long)cycles[n * 9 / 10],
           (unsigned long)cycles[n * 99 / 100], (unsigned long)(sink & 1));
    return 0;
}
