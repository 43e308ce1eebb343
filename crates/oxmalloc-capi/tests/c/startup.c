/*
 * Start-up (CHECKLIST A13, C31): the first allocator call of the process
 * can be any entry point, from any thread, before or while anything else is
 * initialised.
 *
 * STARTUP_FIRST=<call> chooses the call made from a priority-101 constructor
 * (when linked statically with liboxmalloc.a that runs before liboxmalloc's
 * own constructor); STARTUP_WHERE=thread makes it from a new thread. main()
 * then starts 16 threads that all make their first call at once, each
 * through a different entry point, and churn. Prints "startup ok" on success.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int first_call(const char *what) {
    void *p = NULL;
    if (strcmp(what, "malloc") == 0) {
        p = malloc(24);
    } else if (strcmp(what, "calloc") == 0) {
        p = calloc(3, 40);
    } else if (strcmp(what, "realloc") == 0) {
        p = realloc(NULL, 100);
        p = realloc(p, 5000);
    } else if (strcmp(what, "posix_memalign") == 0) {
        if (posix_memalign(&p, 256, 1000) != 0) p = NULL;
    } else if (strcmp(what, "aligned_alloc") == 0) {
        p = aligned_alloc(4096, 4096);
    } else if (strcmp(what, "memalign") == 0) {
        p = memalign(64, 10);
    } else if (strcmp(what, "valloc") == 0) {
        p = valloc(10);
    } else if (strcmp(what, "free") == 0) {
        free(NULL);
        p = malloc(1);
    } else if (strcmp(what, "usable_size") == 0) {
        if (malloc_usable_size(NULL) != 0) return 0;
        p = malloc(1);
    } else {
        return 0;
    }
    if (p == NULL) return 0;
    memset(p, 0x77, malloc_usable_size(p));
    free(p);
    return 1;
}

static const char *entries[] = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                                "memalign", "valloc", "free", "usable_size"};
#define N_ENTRIES (sizeof entries / sizeof entries[0])

static int early_ok = 1;

static void *early_thread(void *arg) {
    early_ok = first_call((const char *)arg);
    return NULL;
}

__attribute__((constructor(101))) static void early(void) {
    const char *what = getenv("STARTUP_FIRST"); /* getenv does not allocate */
    if (what == NULL) return;
    const char *where = getenv("STARTUP_WHERE");
    if (where != NULL && strcmp(where, "thread") == 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, early_thread, (void *)what) != 0) {
            early_ok = 0;
            return;
        }
        pthread_join(th, NULL);
    } else {
        early_ok = first_call(what);
    }
}

#define THREADS 16
static pthread_barrier_t barrier;
static int thread_ok[THREADS];

static void *racer(void *arg) {
    int id = (int)(intptr_t)arg;
    pthread_barrier_wait(&barrier);
    int ok = first_call(entries[id % N_ENTRIES]);
    void *keep[64] = {0};
    for (int i = 0; i < 20000; i++) {
        int slot = (i * 7 + id) % 64;
        free(keep[slot]);
        keep[slot] = malloc((size_t)((i * 13 + id) % 3000) + 1);
        if (keep[slot] == NULL) ok = 0;
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    thread_ok[id] = ok;
    return NULL;
}

int main(void) {
    if (!early_ok) {
        printf("first call %s failed\n", getenv("STARTUP_FIRST"));
        return 1;
    }
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, racer, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (!thread_ok[i]) {
            printf("thread %d (%s first) failed\n", i, entries[i % N_ENTRIES]);
            return 1;
        }
    printf("startup ok\n");
    return 0;
}
