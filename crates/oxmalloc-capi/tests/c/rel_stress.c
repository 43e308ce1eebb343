/*
 * Multi-threaded stress in the larson, xmalloc and mstress shapes (CHECKLIST C27),
 * for the preloaded library, hardened or not. Every block carries a pattern
 * derived from its address, checked at free.
 *
 *   rel_stress THREADS MILLISECONDS
 *
 * - larson: each thread owns slots; it replaces random slots, and every so
 *   often hands its whole slot array to the next thread (so blocks die on
 *   other threads than the one that made them);
 * - xmalloc: half the threads produce blocks into a lock-free ring, the other
 *   half consume and free them;
 * - mstress: random sizes with rare large and huge outliers, realloc chains.
 * Prints "live peak L rss peak R" and "stress ok"; exits 1 with "FAIL: ..." on
 * a corrupted block or an allocation failure.
 */
#include "rel_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define SLOTS 2000
#define RING 4096

static int threads;
static long millis;
static atomic_int stop;
static atomic_long live_bytes, live_peak;
static size_t rss_peak;

struct block {
    unsigned char *p;
    size_t n;
};

static _Atomic(struct block *) handoff[64];
static _Atomic(unsigned char *) ring[RING];

static void account(long delta) {
    long now = atomic_fetch_add(&live_bytes, delta) + delta;
    long peak = atomic_load(&live_peak);
    while (now > peak && !atomic_compare_exchange_weak(&live_peak, &peak, now)) {
    }
}

static size_t random_size(unsigned long *s) {
    unsigned long r = rel_rng(s);
    switch (r % 1000) {
    case 0: return 4 * 1024 * 1024 + (r >> 20) % (4u << 20); /* huge */
    case 1 ... 9: return 65536 + (r >> 20) % 400000;       /* large */
    case 10 ... 99: return 1024 + (r >> 20) % 64000;       /* medium */
    default: return 1 + (r >> 20) % 512;                    /* small */
    }
}

static unsigned char *make(size_t n) {
    unsigned char *p = malloc(n);
    if (p == NULL) rel_fail("malloc returned NULL");
    rel_fill(p, n);
    account((long)n);
    return p;
}

static void drop(unsigned char *p, size_t n) {
    if (p == NULL) return;
    if (rel_check(p, n) != 0) rel_fail("a block was corrupted");
    account(-(long)n);
    free(p);
}

static void *larson(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seed = 0x9E3779B97F4A7C15ul * (unsigned long)(id + 1);
    struct block *mine = calloc(SLOTS, sizeof *mine);
    while (!atomic_load(&stop)) {
        for (int k = 0; k < 1000; k++) {
            int slot = (int)(rel_rng(&seed) % SLOTS);
            drop(mine[slot].p, mine[slot].n);
            size_t n = random_size(&seed);
            if (rel_rng(&seed) % 8 == 0 && mine[slot].p == NULL) {
                /* mstress: a realloc chain keeps the first bytes */
                unsigned char *p = make(16);
                unsigned char first = p[0];
                unsigned char *q = realloc(p, n);
                if (q == NULL) rel_fail("realloc returned NULL");
                if (q[0] != first) rel_fail("realloc lost the contents");
                account((long)n - 16);
                rel_fill(q, n);
                mine[slot].p = q;
            } else {
                mine[slot].p = make(n);
            }
            mine[slot].n = n;
        }
        /* Hand the whole array to the next thread, take whatever is there. */
        struct block *theirs = atomic_exchange(&handoff[(id + 1) % threads], mine);
        if (theirs != NULL) {
            mine = theirs;
        } else {
            mine = calloc(SLOTS, sizeof *mine);
            if (mine == NULL) rel_fail("calloc returned NULL");
        }
        size_t rss = rel_rss();
        if (rss > rss_peak) rss_peak = rss;
    }
    for (int s = 0; s < SLOTS; s++) drop(mine[s].p, mine[s].n);
    free(mine);
    return NULL;
}

/* xmalloc: blocks carry their size in their first word, the pattern after it. */
static void *producer(void *arg) {
    unsigned long seed = 77 + (uintptr_t)arg;
    while (!atomic_load(&stop)) {
        int i = (int)(rel_rng(&seed) % RING);
        size_t n = rel_rng(&seed) % 2048 + 16;
        unsigned char *p = make(n);
        memcpy(p, &n, sizeof n);
        unsigned char *expected = NULL;
        if (!atomic_compare_exchange_strong(&ring[i], &expected, p)) {
            rel_fill(p, n);
            drop(p, n);
        }
    }
    return NULL;
}

static void *consumer(void *arg) {
    unsigned long seed = 99 + (uintptr_t)arg;
    while (!atomic_load(&stop)) {
        int i = (int)(rel_rng(&seed) % RING);
        unsigned char *p = atomic_exchange(&ring[i], NULL);
        if (p == NULL) continue;
        size_t n;
        memcpy(&n, p, sizeof n);
        if (n < 16 || n > 2048 + 16) rel_fail("xmalloc: a block's size word was corrupted");
        rel_fill(p, sizeof n); /* restore the pattern of the size word */
        drop(p, n);
    }
    return NULL;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 4;
    millis = argc > 2 ? atol(argv[2]) : 1000;
    if (threads < 2) threads = 2;
    if (threads > 64) threads = 64;
    pthread_t t[3 * 64];
    int n = 0;
    for (int i = 0; i < threads; i++) pthread_create(&t[n++], NULL, larson, (void *)(intptr_t)i);
    for (int i = 0; i < threads / 2; i++) pthread_create(&t[n++], NULL, producer, (void *)(intptr_t)i);
    for (int i = 0; i < threads / 2; i++) pthread_create(&t[n++], NULL, consumer, (void *)(intptr_t)i);
    struct timespec ts = {millis / 1000, (millis % 1000) * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 64; i++) {
        struct block *b = atomic_exchange(&handoff[i], NULL);
        if (b == NULL) continue;
        for (int s = 0; s < SLOTS; s++) drop(b[s].p, b[s].n);
        free(b);
    }
    for (int i = 0; i < RING; i++) {
        unsigned char *p = atomic_exchange(&ring[i], NULL);
        if (p == NULL) continue;
        size_t size;
        memcpy(&size, p, sizeof size);
        rel_fill(p, sizeof size);
        drop(p, size);
    }
    printf("live peak %ld rss peak %zu live now %ld\n", atomic_load(&live_peak), rss_peak, atomic_load(&live_bytes));
    printf("stress ok\n");
    return 0;
}
