/*
 * Failing system calls (CHECKLIST D33, D34), injected by interposition: this
 * program defines mmap, munmap, madvise and mprotect itself and is linked
 * with -rdynamic, so the preloaded library's calls land here; they pass
 * through with syscall(2) until the program arms a failure.
 *
 *   rel_syscalls mmap          every mmap fails: each allocation that needs
 *                              memory gives NULL + ENOMEM; a new thread (its
 *                              heap cannot be made) too; after the fault
 *                              clears, everything works again ("mmap ok")
 *   rel_syscalls mmap_random   one mmap in three fails while 8 threads churn:
 *                              NULL + ENOMEM or a good block, never a crash
 *   rel_syscalls madvise       purging fails with EINVAL: must die with
 *                              "oxmalloc: fatal: madvise failed on 0x... errno 22"
 *   rel_syscalls munmap        unmapping a huge block fails with EINVAL
 *   rel_syscalls mprotect      (hardened library) protecting a freed large
 *                              block fails with ENOMEM
 */
#include "rel_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static atomic_int fail_mmap;        /* 1: always, 3: one call in three */
static atomic_int fail_munmap, fail_madvise, fail_mprotect;
static atomic_long mmap_calls, injected;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int mode = atomic_load(&fail_mmap);
    long n = atomic_fetch_add(&mmap_calls, 1);
    if (mode == 1 || (mode == 3 && n % 3 == 0)) {
        atomic_fetch_add(&injected, 1);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r == -1 ? MAP_FAILED : (void *)r;
}

int munmap(void *addr, size_t len) {
    if (atomic_load(&fail_munmap)) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_munmap, addr, len);
}

int madvise(void *addr, size_t len, int advice) {
    if (atomic_load(&fail_madvise) && (advice == MADV_DONTNEED || advice == MADV_FREE)) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

int mprotect(void *addr, size_t len, int prot) {
    if (atomic_load(&fail_mprotect)) {
        errno = ENOMEM;
        return -1;
    }
    return (int)syscall(SYS_mprotect, addr, len, prot);
}

static void *thread_first_malloc(void *arg) {
    (void)arg;
    errno = 0;
    void *p = malloc(100);
    if (p == NULL && errno != ENOMEM) rel_fail("a new thread's malloc failed without ENOMEM");
    free(p);
    return p == NULL ? (void *)1 : NULL;
}

static void *churn(void *arg) {
    unsigned long seed = 555 + (uintptr_t)arg;
    unsigned char *held[256] = {0};
    size_t sizes[256] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)(rel_rng(&seed) % 256);
        if (held[k] != NULL) {
            if (rel_check(held[k], sizes[k]) != 0) rel_fail("a block was corrupted");
            free(held[k]);
            held[k] = NULL;
            continue;
        }
        size_t r = rel_rng(&seed) % 100;
        size_t n = r < 80 ? rel_rng(&seed) % 3000 + 1 : r < 98 ? rel_rng(&seed) % 500000 + 70000 : (5u << 20);
        errno = 0;
        unsigned char *p = (r % 2) ? malloc(n) : calloc(1, n);
        if (p == NULL) {
            if (errno != ENOMEM) rel_fail("NULL without ENOMEM");
            continue;
        }
        rel_fill(p, n);
        held[k] = p;
        sizes[k] = n;
    }
    for (int k = 0; k < 256; k++) free(held[k]);
    return NULL;
}

static void announce_and_arm(atomic_int *flag) {
    printf("armed\n");
    fflush(stdout);
    atomic_store(flag, 1);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "mmap";
    free(malloc(100)); /* the main thread's heap exists */
    if (!strcmp(mode, "mmap")) {
        atomic_store(&fail_mmap, 1);
        int nulls = 0;
        /* Huge: a mapping of its own. Large: fresh chunks, until they run out. */
        for (int i = 0; i < 200; i++) {
            size_t n = i < 100 ? (8u << 20) : 1u << 20;
            errno = 0;
            void *p = malloc(n);
            if (p == NULL) {
                if (errno != ENOMEM) rel_fail("malloc failed without ENOMEM");
                nulls++;
            }
            /* leaked on purpose: keep the chunks full */
        }
        void *p = (void *)0x1234;
        if (posix_memalign(&p, 1u << 22, 1u << 23) != ENOMEM || p != (void *)0x1234)
            rel_fail("posix_memalign did not fail cleanly with ENOMEM");
        pthread_t t;
        void *ret;
        pthread_create(&t, NULL, thread_first_malloc, NULL);
        pthread_join(t, &ret);
        atomic_store(&fail_mmap, 0);
        for (int i = 0; i < 100; i++) {
            void *q = malloc(8u << 20);
            if (q == NULL) rel_fail("malloc still fails after mmap works again");
            memset(q, 1, 4096);
            free(q);
        }
        printf("mmap ok: %d NULLs, new thread %s, %ld mmap failures injected\n", nulls,
               ret ? "got NULL" : "got a block", atomic_load(&injected));
        if (nulls < 100) rel_fail("huge allocations did not fail while mmap failed");
    } else if (!strcmp(mode, "mmap_random")) {
        atomic_store(&fail_mmap, 3);
        pthread_t t[8];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        atomic_store(&fail_mmap, 0);
        printf("mmap_random ok: %ld of %ld mmap calls failed\n", atomic_load(&injected), atomic_load(&mmap_calls));
    } else if (!strcmp(mode, "madvise")) {
        void *blocks[64];
        for (int i = 0; i < 64; i++) {
            blocks[i] = malloc(1 << 20);
            memset(blocks[i], 1, 1 << 20);
        }
        announce_and_arm(&fail_madvise);
        for (int i = 0; i < 64; i++) free(blocks[i]);
        if (ox_collect) ox_collect(1);
        for (int i = 0; i < 200; i++) {
            usleep(10000);
            free(malloc(1 << 20));
        }
        printf("survived\n");
    } else if (!strcmp(mode, "munmap")) {
        unsigned char *p = malloc(64u << 20);
        memset(p, 1, 4096);
        announce_and_arm(&fail_munmap);
        free(p);
        if (ox_collect) ox_collect(1);
        printf("survived\n");
    } else if (!strcmp(mode, "mprotect")) {
        unsigned char *p = malloc(256 * 1024);
        memset(p, 1, 4096);
        announce_and_arm(&fail_mprotect);
        free(p);
        printf("survived\n");
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
