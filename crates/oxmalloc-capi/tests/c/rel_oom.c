/*
 * Out of memory (CHECKLIST D32, D33, D34).
 *
 *   rel_oom LIMIT_MB THREADS
 *
 * Sets RLIMIT_AS to LIMIT_MB (so every mmap beyond it fails with ENOMEM),
 * then THREADS threads each exhaust memory through every allocation
 * function in turn: malloc, calloc, realloc (growing), reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc, at small, large
 * and huge sizes. A failure must be NULL with errno ENOMEM (posix_memalign:
 * ENOMEM returned, out-pointer untouched); every success must be aligned,
 * calloc's zeroed, and writable. A failed realloc leaves the block intact.
 * Then everything is freed, and the threads do it all again (the heap must
 * carry on: the second round must succeed as often as the first, roughly).
 * New threads are started while memory is exhausted (a thread heap that
 * cannot be made must give NULL, not a crash).
 * Prints "oom ok: N failures seen" and exits 0, or "FAIL: ..." and 1.
 */
#include "rel_common.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

static atomic_long failures, successes;

struct held {
    unsigned char *p;
    size_t n;
};

static void expect_enomem(const char *call) {
    if (errno != ENOMEM) {
        printf("FAIL: %s returned NULL with errno %d, not ENOMEM\n", call, errno);
        fflush(stdout);
        _exit(1);
    }
    atomic_fetch_add(&failures, 1);
}

static size_t pick(unsigned long *s) {
    unsigned long r = rel_rng(s) % 100;
    if (r < 60) return rel_rng(s) % 4000 + 1;
    if (r < 95) return 64 * 1024 + rel_rng(s) % (1 << 20);
    return (4u << 20) + rel_rng(s) % (16u << 20);
}

/* One allocation through entry `e`; NULL on (checked) failure. */
static unsigned char *allocate(int e, size_t n, unsigned long *seed) {
    unsigned char *p = NULL;
    size_t align = 16;
    errno = 0;
    switch (e) {
    case 0: p = malloc(n); if (!p) expect_enomem("malloc"); break;
    case 1:
        p = calloc(1, n);
        if (!p) {
            expect_enomem("calloc");
            break;
        }
        for (size_t i = 0; i < n; i += 509)
            if (p[i] != 0) rel_fail("calloc memory not zeroed under memory pressure");
        if (p[n - 1] != 0) rel_fail("calloc memory not zeroed under memory pressure");
        break;
    case 2: p = reallocarray(NULL, n, 1); if (!p) expect_enomem("reallocarray"); break;
    case 3: {
        void *out = (void *)0x1234;
        align = 1u << (4 + rel_rng(seed) % 10);
        int rc = posix_memalign(&out, align, n);
        if (rc != 0) {
            if (rc != ENOMEM) rel_fail("posix_memalign failed with something else than ENOMEM");
            if (out != (void *)0x1234) rel_fail("posix_memalign touched the out-pointer on failure");
            atomic_fetch_add(&failures, 1);
        } else {
            p = out;
        }
        break;
    }
    case 4: align = 4096; p = aligned_alloc(align, n); if (!p) expect_enomem("aligned_alloc"); break;
    case 5: align = 1u << 16; p = memalign(align, n); if (!p) expect_enomem("memalign"); break;
    case 6: align = 4096; p = valloc(n); if (!p) expect_enomem("valloc"); break;
    default: align = 4096; p = pvalloc(n); if (!p) expect_enomem("pvalloc"); break;
    }
    if (p == NULL) return NULL;
    if ((uintptr_t)p % align != 0) rel_fail("misaligned block under memory pressure");
    atomic_fetch_add(&successes, 1);
    return p;
}

#define MAX_BLOCKS 50000
static struct held *held_arrays[64];
static atomic_long round_successes[2];

static void *late_thread(void *arg) {
    (void)arg;
    /* A thread whose heap may not be makeable: NULL or a block, never a crash. */
    for (size_t n = 16; n <= (8u << 20); n *= 4) {
        errno = 0;
        void *p = malloc(n);
        if (p == NULL)
            expect_enomem("malloc in a thread started out of memory");
        else
            free(p);
    }
    return NULL;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seed = 1234567 + (unsigned long)id * 7919;
    struct held *held = held_arrays[id];
    for (int round = 0; round < 2; round++) {
        int count = 0;
        long failed = 0;
        for (int i = 0; count < MAX_BLOCKS && failed < 300; i++) {
            size_t n = pick(&seed);
            unsigned char *p = allocate(i % 8, n, &seed);
            if (p == NULL) {
                failed++;
                continue;
            }
            atomic_fetch_add(&round_successes[round], 1);
            rel_fill(p, n);
            held[count].p = p;
            held[count].n = n;
            count++;
            if (i % 16 == 0) {
                /* Grow a random held block; on failure it must be intact. */
                int k = (int)(rel_rng(&seed) % (unsigned long)count);
                size_t bigger = held[k].n * 2 + 100000;
                errno = 0;
                unsigned char *q = realloc(held[k].p, bigger);
                if (q == NULL) {
                    expect_enomem("realloc");
                    if (rel_check(held[k].p, held[k].n) != 0) rel_fail("a failed realloc damaged the block");
                } else {
                    for (size_t j = 0; j < held[k].n; j += 61)
                        if (q[j] != rel_pattern(held[k].p, j)) rel_fail("realloc lost the contents");
                    held[k].p = q;
                    held[k].n = bigger;
                    rel_fill(q, bigger);
                }
            }
        }
        if (round == 0) {
            /* Memory is exhausted now: a new thread must cope. */
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setstacksize(&attr, 256 * 1024);
            pthread_t t;
            if (pthread_create(&t, &attr, late_thread, NULL) == 0) pthread_join(t, NULL);
        }
        for (int k = 0; k < count; k++) {
            if (rel_check(held[k].p, held[k].n) != 0) rel_fail("a block was corrupted under memory pressure");
            free(held[k].p);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long limit_mb = argc > 1 ? atol(argv[1]) : 200;
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    if (threads > 64) threads = 64;
    for (int t = 0; t < threads; t++) {
        held_arrays[t] = mmap(NULL, MAX_BLOCKS * sizeof(struct held), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (held_arrays[t] == MAP_FAILED) rel_fail("mmap");
    }
    struct rlimit rl = {(rlim_t)limit_mb << 20, (rlim_t)limit_mb << 20};
    if (setrlimit(RLIMIT_AS, &rl) != 0) rel_fail("setrlimit");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], &attr, worker, (void *)(intptr_t)i) != 0) rel_fail("pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    /* Carry on: with everything freed, 64 MiB in 1 MiB blocks fits again. */
    void *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc(1 << 20);
        if (blocks[i] == NULL) rel_fail("cannot allocate after freeing everything");
        memset(blocks[i], i, 1 << 20);
    }
    for (int i = 0; i < 64; i++) free(blocks[i]);
    long r0 = atomic_load(&round_successes[0]), r1 = atomic_load(&round_successes[1]);
    printf("oom ok: %ld failures seen, %ld and %ld successes in the two rounds\n", atomic_load(&failures), r0, r1);
    if (atomic_load(&failures) == 0) rel_fail("no allocation failed: the limit was not reached");
    if (r1 * 4 < r0) rel_fail("the second round got far less memory than the first (memory lost?)");
    return 0;
}
