/*
 * Heap-corruption actions for the death tests of CHECKLIST B (tests/hardened.rs).
 *
 *   hardened_bad ACTION SIZE
 *
 * Allocates blocks of SIZE bytes, prints "ptr 0x..." (the address the
 * allocator must name) on stdout, flushes, then performs ACTION. In the
 * hardened library the process must die there (SIGABRT, one error line on
 * stderr). If it survives (the default library ignores what it can detect),
 * it checks that the heap still works: thousands of blocks of many sizes,
 * distinct, with their contents intact; then prints "survived" and exits 0.
 * A failed self-check prints "BROKEN: ..." and exits 3.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* C23; exported by liboxmalloc (weak: the test is not linked against it). */
void free_sized(void *ptr, size_t size) __attribute__((weak));

static char static_buffer[256];
/* stdout's buffer: static, so that printing never allocates (a buffer
 * malloc'ed by the first printf would reuse the block just freed). */
static char stdout_buffer[4096];
static volatile unsigned char sink;

static void announce(const void *p) {
    printf("ptr 0x%lx\n", (unsigned long)(uintptr_t)p);
    fflush(stdout);
}

static void broken(const char *what) {
    printf("BROKEN: %s\n", what);
    fflush(stdout);
    exit(3);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) broken("malloc returned NULL");
    memset(p, 0x11, n);
    return p;
}

/* The heap must still work: many live blocks of many sizes, distinct and intact. */
static void carry_on(void) {
    enum { N = 3000 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    unsigned long seed = 12345;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 6364136223846793005ul + 1442695040888963407ul;
            size_t size = (i % 97 == 0) ? (seed >> 40) % 300000 + 1 : (seed >> 40) % 2048 + 1;
            sizes[i] = size;
            blocks[i] = malloc(size);
            if (blocks[i] == NULL) broken("malloc failed after the bad call");
            memset(blocks[i], (unsigned char)i, size);
        }
        for (int i = 0; i < N; i++) {
            for (size_t j = 0; j < sizes[i]; j += 7)
                if (blocks[i][j] != (unsigned char)i) broken("a live block was overwritten (overlap?)");
            if (blocks[i][sizes[i] - 1] != (unsigned char)i) broken("a live block was overwritten (overlap?)");
        }
        for (int i = 0; i < N; i++) free(blocks[i]);
    }
}

/* 1,024 operations on size classes far from `n`, so that nothing reuses the freed block. */
static void other_operations(size_t n) {
    void *live[64] = {0};
    unsigned long seed = 99;
    for (int i = 0; i < 1024; i++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        size_t size = n <= 1024 ? 2048 + (seed >> 40) % 2048 : 16 + (seed >> 40) % 500;
        int slot = (int)((seed >> 20) % 64);
        if (live[slot] != NULL) {
            free(live[slot]);
            live[slot] = NULL;
        } else {
            live[slot] = xmalloc(size);
        }
    }
    for (int i = 0; i < 64; i++) free(live[i]);
}

struct remote_free {
    void *p;
};

static void *free_in_thread(void *arg) {
    free(((struct remote_free *)arg)->p);
    return NULL;
}

/* Frees p from another thread (a remote free onto the page's thread_free list). */
static void remote_free(void *p) {
    struct remote_free rf = {p};
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, &rf) != 0 || pthread_join(t, NULL) != 0) broken("thread");
}

/* Allocates blocks of n bytes until the process dies or 200,000 were handed out. */
static void churn(size_t n) {
    for (int i = 0; i < 200000; i++) {
        unsigned char *q = malloc(n);
        if (q == NULL) broken("malloc failed during churn");
        q[0] = 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ACTION SIZE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
    const char *a = argv[1];
    size_t n = strtoul(argv[2], NULL, 0);
    void *before = xmalloc(n); /* a neighbour that stays live, so the page never empties */

    if (!strcmp(a, "none")) {
        void *p = xmalloc(n);
        announce(p);
        free(p);
    } else if (!strcmp(a, "double_free")) {
        void *p = xmalloc(n);
        free(p);
        announce(p);
        free(p);
    } else if (!strcmp(a, "double_free_interleaved")) {
        void *p = xmalloc(n), *q = xmalloc(n);
        free(p);
        free(q);
        announce(p);
        free(p);
    } else if (!strcmp(a, "double_free_delayed")) {
        void *p = xmalloc(n), *q = xmalloc(n);
        free(p);
        other_operations(n);
        free(q);
        other_operations(n);
        announce(p);
        free(p);
    } else if (!strcmp(a, "double_free_remote")) {
        void *p = xmalloc(n);
        remote_free(p);
        announce(p);
        remote_free(p);
    } else if (!strcmp(a, "free_one")) {
        announce((void *)1);
        free((void *)1);
    } else if (!strcmp(a, "free_wild")) {
        announce((void *)0x5a5a5a5a5000ul);
        free((void *)0x5a5a5a5a5000ul);
    } else if (!strcmp(a, "free_kernel")) {
        announce((void *)0xffff888000001000ul);
        free((void *)0xffff888000001000ul);
    } else if (!strcmp(a, "free_stack")) {
        char local[64];
        sink = (unsigned char)local[0];
        announce(local);
        free(local);
    } else if (!strcmp(a, "free_static")) {
        announce(static_buffer);
        free(static_buffer);
    } else if (!strcmp(a, "free_mmap") || !strcmp(a, "free_mmap_none")) {
        int prot = strcmp(a, "free_mmap") ? PROT_NONE : PROT_READ | PROT_WRITE;
        void *m = mmap(NULL, 1 << 16, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) broken("mmap");
        announce((char *)m + 64);
        free((char *)m + 64);
    } else if (!strncmp(a, "free_plus_", 10)) {
        /* interior (+16, +4096), unaligned (+1, +8) and far (+1 GiB) pointers */
        size_t offset = strtoul(a + 10, NULL, 0);
        char *p = xmalloc(n);
        announce(p + offset);
        free(p + offset);
    } else if (!strcmp(a, "realloc_freed")) {
        void *p = xmalloc(n);
        free(p);
        announce(p);
        sink = realloc(p, n + 100) == NULL;
    } else if (!strcmp(a, "realloc_wild")) {
        announce((void *)0x5a5a5a5a5000ul);
        void *r = realloc((void *)0x5a5a5a5a5000ul, 100);
        if (r != NULL) broken("realloc of a wild pointer returned a block");
    } else if (!strcmp(a, "realloc_unaligned")) {
        char *p = xmalloc(n);
        announce(p + 8);
        void *r = realloc(p + 8, n + 100);
        if (r != NULL) broken("realloc of an unaligned pointer returned a block");
        free(p);
    } else if (!strcmp(a, "usable_freed")) {
        void *p = xmalloc(n);
        free(p);
        announce(p);
        sink = (unsigned char)malloc_usable_size(p);
    } else if (!strcmp(a, "usable_wild")) {
        announce((void *)0x5a5a5a5a5000ul);
        if (malloc_usable_size((void *)0x5a5a5a5a5000ul) != 0) broken("usable size of a wild pointer");
    } else if (!strcmp(a, "usable_unaligned")) {
        char *p = xmalloc(n);
        announce(p + 8);
        if (malloc_usable_size(p + 8) != 0) broken("usable size of an unaligned pointer");
        free(p);
    } else if (!strcmp(a, "free_sized_wrong")) {
        void *p = xmalloc(n);
        announce(p);
        free_sized(p, n + 8);
    } else if (!strcmp(a, "free_sized_freed")) {
        void *p = xmalloc(n);
        free(p);
        announce(p);
        free_sized(p, n);
    } else if (!strcmp(a, "free_sized_wild")) {
        announce((void *)0x5a5a5a5a5000ul);
        free_sized((void *)0x5a5a5a5a5000ul, n);
    } else if (!strcmp(a, "overflow1") || !strcmp(a, "overflow8")) {
        unsigned char *p = xmalloc(n);
        size_t len = strcmp(a, "overflow1") ? 8 : 1;
        announce(p);
        memset(p + n, 0x5a, len);
        free(p);
    } else if (!strncmp(a, "link_", 5)) {
        /* link_zero, link_random, link_self; _remote: the block is on thread_free */
        int remote = strstr(a, "_remote") != NULL;
        unsigned char *p = xmalloc(n);
        void *keep = xmalloc(n);
        if (remote)
            remote_free(p);
        else
            free(p);
        uintptr_t value = 0;
        if (!strncmp(a, "link_random", 11)) value = 0x4141414141414141ul;
        if (!strncmp(a, "link_self", 9)) value = (uintptr_t)p;
        memcpy(p, &value, sizeof value);
        announce(p);
        churn(n);
        free(keep);
    } else if (!strcmp(a, "write_after_free")) {
        /* Offset 8 (the first byte after the link word) where the block has
         * one; an 8-byte block has only its link word to write to. */
        unsigned char *p = xmalloc(n);
        void *keep = xmalloc(n);
        free(p);
        p[n > 8 ? 8 : 0] ^= 0xff;
        announce(p);
        churn(n);
        free(keep);
    } else if (!strcmp(a, "read_freed") || !strcmp(a, "write_freed")) {
        volatile unsigned char *p = xmalloc(n);
        free((void *)p);
        announce((void *)p);
        if (!strcmp(a, "read_freed"))
            sink = p[n / 2];
        else
            p[n / 2] = 7;
        printf("accessed a freed block of %zu bytes\n", n);
    } else {
        fprintf(stderr, "unknown action %s\n", a);
        return 2;
    }
    free(before);
    carry_on();
    printf("survived\n");
    return 0;
}
