/* malloc(SIZE)/free pairs through the C ABI, for callgrind: argv[1] = pairs
 * (0 measures start-up and exit alone), argv[2] = size (default 32),
 * argv[3] = blocks of the same size kept live during the loop (default 0).
 * With 0, every free empties the page again (a worst case for allocators
 * that retire empty pages eagerly); with a few live neighbours the page
 * stays in use, the steady state of real programs. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 32;
    int keep = argc > 3 ? atoi(argv[3]) : 0;
    void *live[64];
    void *volatile sink;
    for (int i = 0; i < keep && i < 64; i++) live[i] = malloc(size);
    /* One warm-up pair: the first allocation of a thread takes the slow path. */
    sink = malloc(size);
    free(sink);
    for (long i = 0; i < n; i++) {
        sink = malloc(size);
        free(sink);
    }
    for (int i = 0; i < keep && i < 64; i++) free(live[i]);
    return 0;
}
