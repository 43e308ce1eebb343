/*
 * malloc/free from pthread-key destructors and atexit handlers (CHECKLIST C30),
 * before and after the thread's heap is torn down.
 *
 *   rel_dtors THREADS [ROUNDS]
 *
 * Keys created before the program's first thread (so after liboxmalloc's own
 * key, whose destructor tears the heap down: these run after it) allocate and
 * free in their destructors, re-arm themselves for a second round (glibc
 * runs up to PTHREAD_DESTRUCTOR_ITERATIONS = 4 rounds, and oxmalloc's key is
 * re-armed by the allocation of a torn-down thread; ROUNDS, default 2, is how
 * many rounds each key asks for), and free blocks the
 * thread made earlier. Blocks allocated in a destructor are handed to the
 * main thread, which checks and frees them. At exit, atexit handlers and a
 * destructor function allocate and free too. A leaked thread heap shows in
 * the OXMALLOC_SHOW_STATS summary (threads now must be 1, the main thread),
 * which the test reads. Prints "dtors ok" and exits 0.
 */
#include "rel_common.h"

#include <pthread.h>
#include <malloc.h>
#include <stdatomic.h>

#define KEYS 3

static pthread_key_t keys[KEYS];
static atomic_int rounds[KEYS];
static __thread int rearmed[KEYS];
static int wanted_rounds = 2;
static _Atomic(unsigned char *) orphans[4096];
static atomic_int orphan_count;

static void keep_orphan(size_t n) {
    unsigned char *p = malloc(n);
    if (p == NULL) rel_fail("malloc in a destructor returned NULL");
    rel_fill(p, n);
    int i = atomic_fetch_add(&orphan_count, 1);
    if (i < 4096)
        atomic_store(&orphans[i], p);
    else
        free(p);
}

static void destructor(void *value) {
    int k = -1;
    for (int i = 0; i < KEYS; i++)
        if (((uintptr_t)value & 0xf) == (uintptr_t)i) k = i;
    unsigned char *block = (unsigned char *)((uintptr_t)value & ~(uintptr_t)0xf);
    if (rel_check(block, 100) != 0) rel_fail("a thread's block was corrupted before its destructor");
    free(block);
    /* Churn and leave one block to the main thread. */
    for (int i = 0; i < 200; i++) free(malloc((size_t)(i * 13 % 3000) + 1));
    keep_orphan(24 + (size_t)k * 1000);
    /* Re-arm once: a second destructor round, after oxmalloc tore the heap down. */
    atomic_fetch_add(&rounds[k], 1);
    if (++rearmed[k] < wanted_rounds) {
        unsigned char *again = malloc(100);
        if (again == NULL) rel_fail("malloc in a destructor returned NULL");
        rel_fill(again, 100);
        pthread_setspecific(keys[k], (void *)((uintptr_t)again | (uintptr_t)k));
    }
}

static void *worker(void *arg) {
    (void)arg;
    for (int k = 0; k < KEYS; k++) {
        unsigned char *p = malloc(100); /* 16-aligned: the low bits carry k */
        rel_fill(p, 100);
        pthread_setspecific(keys[k], (void *)((uintptr_t)p | (uintptr_t)k));
    }
    for (int i = 0; i < 100; i++) free(malloc((size_t)i * 40 + 1));
    return NULL;
}

static void at_exit_handler(void) {
    void *p = malloc(5000);
    void *q = calloc(10, 100);
    void *r = realloc(p, 70000);
    if (q == NULL || r == NULL) {
        write(1, "FAIL: allocation in an atexit handler\n", 38);
        _exit(1);
    }
    free(q);
    free(r);
}

__attribute__((destructor)) static void at_unload(void) {
    for (int i = 0; i < 100; i++) free(malloc((size_t)i * 100 + 1));
    write(1, "destructor function ok\n", 23);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 100;
    wanted_rounds = argc > 2 ? atoi(argv[2]) : 2;
    for (int k = 0; k < KEYS; k++)
        if (pthread_key_create(&keys[k], destructor) != 0) rel_fail("pthread_key_create");
    atexit(at_exit_handler);
    for (int done = 0; done < threads; done += 10) {
        pthread_t t[10];
        for (int i = 0; i < 10; i++) pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < 10; i++) pthread_join(t[i], NULL);
    }
    int n = atomic_load(&orphan_count);
    for (int i = 0; i < n && i < 4096; i++) {
        unsigned char *p = atomic_exchange(&orphans[i], NULL);
        if (p == NULL) continue;
        size_t size = malloc_usable_size(p) >= 1024 ? (malloc_usable_size(p) >= 2024 ? 2024 : 1024) : 24;
        if (rel_check(p, size) != 0) rel_fail("a block made in a destructor was corrupted");
        free(p);
    }
    for (int k = 0; k < KEYS; k++)
        if (atomic_load(&rounds[k]) != wanted_rounds * threads) {
            printf("FAIL: key %d destructor ran %d times, expected %d\n", k, atomic_load(&rounds[k]),
                   wanted_rounds * threads);
            return 1;
        }
    printf("dtors ok\n");
    fflush(stdout);
    return 0;
}
