/*
 * Many threads racing on first use while options are read (CHECKLIST C31).
 *
 *   rel_firstuse THREADS
 *
 * THREADS threads are created before the main thread calls any allocation
 * function itself; they wait on a spin barrier and make their first call at
 * the same instant, each through a different entry (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign, valloc, malloc_usable_size, free).
 * The test sets OXMALLOC_* options in the environment, which the library
 * reads while this happens. Then each thread checks its block (alignment,
 * zeroing, contents) and churns a little. Prints "firstuse ok".
 */
#include "rel_common.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

static atomic_int ready;
static int threads;

static void *racer(void *arg) {
    int id = (int)(intptr_t)arg;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&ready) < threads) {
    }
    unsigned char *p = NULL;
    size_t n = 100 + (size_t)id * 37;
    size_t align = 16;
    switch (id % 9) {
    case 0: p = malloc(n); break;
    case 1:
        p = calloc(n, 1);
        for (size_t i = 0; p != NULL && i < n; i++)
            if (p[i] != 0) rel_fail("calloc on first use: not zeroed");
        break;
    case 2: p = realloc(NULL, n); break;
    case 3:
        align = 256;
        if (posix_memalign((void **)&p, align, n) != 0) p = NULL;
        break;
    case 4: align = 4096; p = aligned_alloc(align, n); break;
    case 5: align = 64; p = memalign(align, n); break;
    case 6: align = 4096; p = valloc(n); break;
    case 7:
        if (malloc_usable_size(NULL) != 0) rel_fail("malloc_usable_size(NULL) != 0");
        p = malloc(n);
        break;
    default:
        free(NULL);
        p = malloc(n);
        break;
    }
    if (p == NULL) rel_fail("first allocation returned NULL");
    if ((uintptr_t)p % align != 0) rel_fail("first allocation misaligned");
    rel_fill(p, n);
    for (int i = 0; i < 2000; i++) {
        unsigned char *q = malloc((size_t)(i * 7 % 5000) + 1);
        if (q == NULL) rel_fail("malloc returned NULL");
        q[0] = 1;
        free(q);
    }
    if (rel_check(p, n) != 0) rel_fail("first block corrupted");
    free(p);
    return NULL;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 32;
    if (threads > 256) threads = 256;
    pthread_t t[256];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i) != 0) rel_fail("pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("firstuse ok\n");
    return 0;
}
