/*
 * The prefixed API of include/oxmalloc.h that the other tests do not
 * reach, with return values and errno: ox_expand, ox_calloc, ox_realloc,
 * ox_reallocarray, ox_aligned_alloc, ox_realloc_aligned, ox_posix_memalign, ox_stats_get,
 * ox_version, ox_stats_print, and glibc's malloc_stats, which must print
 * oxmalloc's table.
 *
 * Built by tests/prefixed.rs with -fno-builtin, linked with -loxmalloc
 * and with liboxmalloc.a. argv[1] is the expected version (the crate's).
 * Prints one line per failed check, "FOREIGN <address>" for the one
 * deliberate invalid free, and "prefixed: N checks, M failed"; exits 1 on
 * failure. On stderr, "== malloc_stats ==" and "== ox_stats_print =="
 * precede the two tables and "== end ==" follows them, with 100 blocks of
 * 48 bytes live.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oxmalloc.h"

#include "check.h"

/* Sizes the compiler cannot see (no folding, no -Walloc-size warnings). */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;
static volatile size_t v_two_pow_33 = (size_t)1 << 33;

static void test_version(const char *expected) {
    const char *v = ox_version();
    CHECK(v != NULL && strcmp(v, expected) == 0, "ox_version() = %s, crate version %s", v ? v : "(null)",
          expected);
    char macros[64];
    snprintf(macros, sizeof macros, "%d.%d.%d", OXMALLOC_VERSION_MAJOR, OXMALLOC_VERSION_MINOR,
             OXMALLOC_VERSION_PATCH);
    CHECK(v != NULL && strcmp(v, macros) == 0, "ox_version() = %s, header macros %s", v ? v : "(null)", macros);
    CHECK(ox_version() == v, "ox_version returns the same static string");
}

static void test_good_size(void) {
    for (size_t size = 0; size < (3u << 20); size = size * 2 + 3) {
        size_t good = ox_good_size(size);
        CHECK(good >= size && good > 0, "ox_good_size(%zu) = %zu", size, good);
        void *p = ox_malloc(good);
        CHECK(p && ox_usable_size(p) == good, "a block of ox_good_size(%zu) = %zu has usable %zu", size, good,
              p ? ox_usable_size(p) : 0);
        ox_free(p);
        void *q = ox_malloc(size);
        CHECK(q && ox_usable_size(q) >= size && ox_usable_size(q) <= good, "ox_malloc(%zu): usable %zu, good %zu",
              size, q ? ox_usable_size(q) : 0, good);
        ox_free(q);
        size_t aligned = ox_good_size_aligned(4096, size);
        void *a = ox_aligned_alloc(4096, size ? size : 1);
        CHECK(a && ox_usable_size(a) == aligned, "ox_aligned_alloc(4096, %zu): usable %zu, good %zu", size,
              a ? ox_usable_size(a) : 0, aligned);
        ox_free(a);
    }
    CHECK(ox_good_size(SIZE_MAX) == 0, "no good size for SIZE_MAX");
    CHECK(ox_good_size_aligned(48, 100) == 0, "no good size at a non-power-of-two alignment");
}

/* ox_expand never moves: small blocks fit up to their usable size; a block
 * above 64 KiB gives its tail back and grows into it again. */
static void test_expand(void) {
    unsigned char *s = ox_malloc(100);
    size_t usable = s ? ox_usable_size(s) : 0;
    CHECK(s && ox_expand(s, usable) == s, "ox_expand of a small block to its usable size %zu", usable);
    CHECK(s && ox_expand(s, 1) == s && ox_usable_size(s) == usable, "ox_expand to 1 keeps a small block's size");
    CHECK(s && ox_expand(s, usable + 1) == NULL && ox_usable_size(s) == usable,
          "ox_expand past a small block's usable size fails and keeps the block");
    ox_free(s);
    CHECK(ox_expand(NULL, 10) == NULL, "ox_expand(NULL) is NULL");

    const size_t big = (size_t)1 << 20, small = 300 << 10;
    unsigned char *p = ox_malloc(big);
    CHECK(p != NULL, "ox_malloc(1 MiB)");
    if (!p)
        return;
    fill(p, small, 21);
    CHECK(ox_expand(p, small) == p, "ox_expand shrinks a 1 MiB block in place");
    size_t shrunk = ox_usable_size(p);
    CHECK(shrunk >= small && shrunk < big, "after the shrink: usable %zu", shrunk);
    /* Nothing took the tail since (one thread, no allocation between). */
    CHECK(ox_expand(p, big) == p, "ox_expand grows the block back into its tail");
    CHECK(ox_usable_size(p) >= big && filled(p, small, 21), "the grown block: usable %zu, bytes kept",
          ox_usable_size(p));
    memset(p, 7, big); /* writable to the end */
    CHECK(ox_expand(p, v_two_pow_33) == NULL && ox_usable_size(p) >= big,
          "ox_expand to 8 GiB fails and keeps the block");
    ox_free(p);
}

static void test_calloc(void) {
    unsigned char *p = ox_calloc(1000, 8);
    CHECK(p != NULL && ox_is_ours(p), "ox_calloc(1000, 8)");
    if (p) {
        CHECK(ox_usable_size(p) >= 8000, "usable %zu", ox_usable_size(p));
        CHECK(all_zero(p, 8000), "ox_calloc memory is zero");
        ox_free(p);
    }
    /* Reused memory is zeroed too: dirty blocks of the size, freed, then calloc. */
    for (int round = 0; round < 20; round++) {
        void *dirty[64];
        for (int i = 0; i < 64; i++) {
            dirty[i] = ox_malloc(256);
            if (dirty[i]) memset(dirty[i], 0xAB, 256);
        }
        for (int i = 0; i < 64; i++) ox_free(dirty[i]);
        for (int i = 0; i < 64; i++) {
            dirty[i] = ox_calloc(16, 16);
            CHECK(dirty[i] != NULL && all_zero(dirty[i], 256), "reused ox_calloc(16, 16) not zero (round %d)", round);
        }
        for (int i = 0; i < 64; i++) ox_free(dirty[i]);
    }
    size_t big = (size_t)24 << 20; /* a huge block: its own mapping */
    p = ox_calloc(big / 4096, 4096);
    CHECK(p != NULL && all_zero(p, big), "ox_calloc of 24 MiB is zero");
    ox_free(p);

    void *z = ox_calloc(0, 8);
    CHECK(z != NULL, "ox_calloc(0, 8) is non-NULL");
    ox_free(z);
    z = ox_calloc(8, 0);
    CHECK(z != NULL, "ox_calloc(8, 0) is non-NULL");
    ox_free(z);

    errno = 0;
    CHECK(ox_calloc(v_size_max, 2) == NULL && errno == ENOMEM, "overflowing product: NULL, ENOMEM (errno %d)",
          errno);
    errno = 0;
    CHECK(ox_calloc(v_two_pow_33, v_two_pow_33) == NULL && errno == ENOMEM, "2^66 bytes: ENOMEM");
    errno = 0;
    CHECK(ox_calloc(1, v_ptrdiff_max + 1) == NULL && errno == ENOMEM, "above PTRDIFF_MAX: ENOMEM (errno %d)", errno);
}

static void test_realloc(void) {
    unsigned char *p = ox_realloc(NULL, 100);
    CHECK(p != NULL && ox_is_ours(p), "ox_realloc(NULL, 100) is ox_malloc");
    if (!p) return;
    fill(p, 100, 1);
    unsigned char *q = ox_realloc(p, 100000);
    CHECK(q != NULL && filled(q, 100, 1), "grow to 100000 keeps the contents");
    if (!q) return;
    fill(q, 100000, 2);
    p = ox_realloc(q, (size_t)40 << 20);
    CHECK(p != NULL && filled(p, 100000, 2), "grow to 40 MiB keeps the contents");
    if (!p) return;
    q = ox_realloc(p, 10);
    CHECK(q != NULL && filled(q, 10, 2), "shrink to 10 keeps the contents");
    if (!q) return;

    size_t usable = ox_usable_size(q);
    errno = 0;
    p = ox_realloc(q, v_ptrdiff_max + 1);
    CHECK(p == NULL && errno == ENOMEM, "ox_realloc above PTRDIFF_MAX: NULL, ENOMEM (errno %d)", errno);
    CHECK(filled(q, 10, 2) && ox_usable_size(q) == usable && ox_is_ours(q), "failed ox_realloc leaves p intact");

    errno = 1234;
    p = ox_realloc(q, 0);
    CHECK(p == NULL, "ox_realloc(p, 0) frees p and returns NULL");
    CHECK(errno == 1234, "ox_realloc(p, 0) leaves errno (now %d)", errno);

    p = ox_realloc(NULL, 0);
    CHECK(p != NULL, "ox_realloc(NULL, 0) is non-NULL");
    ox_free(p);
}

static void test_reallocarray(void) {
    unsigned char *p = ox_reallocarray(NULL, 10, 10);
    CHECK(p != NULL && ox_usable_size(p) >= 100, "ox_reallocarray(NULL, 10, 10)");
    if (!p) return;
    fill(p, 100, 3);
    errno = 0;
    unsigned char *q = ox_reallocarray(p, v_size_max, 2);
    CHECK(q == NULL && errno == ENOMEM, "overflowing product: NULL, ENOMEM (errno %d)", errno);
    CHECK(filled(p, 100, 3) && ox_is_ours(p), "p intact after the overflow");
    q = ox_reallocarray(p, 1000, 4);
    CHECK(q != NULL && filled(q, 100, 3) && ox_usable_size(q) >= 4000, "grow to 1000 x 4 keeps the contents");
    if (!q) return;
    errno = 1234;
    p = ox_reallocarray(q, 0, 4);
    CHECK(p == NULL && errno == 1234, "ox_reallocarray(p, 0, 4) frees p, NULL, errno untouched (%d)", errno);
}

static void test_aligned_alloc(void) {
    for (size_t align = 1; align <= ((size_t)1 << 22); align <<= 1) {
        size_t size = align * 3;
        unsigned char *p = ox_aligned_alloc(align, size);
        CHECK(p != NULL && ((uintptr_t)p & (align - 1)) == 0 && ox_is_ours(p), "ox_aligned_alloc(%zu, %zu) = %p",
              align, size, (void *)p);
        if (p) {
            CHECK(ox_usable_size(p) >= size, "usable size %zu of %zu", ox_usable_size(p), size);
            fill(p, size, 4);
            CHECK(filled(p, size, 4), "aligned block holds its contents");
            ox_free(p);
        }
    }
    errno = 0;
    CHECK(ox_aligned_alloc(0, 64) == NULL && errno == EINVAL, "alignment 0: NULL, EINVAL (errno %d)", errno);
    errno = 0;
    CHECK(ox_aligned_alloc(24, 64) == NULL && errno == EINVAL, "alignment 24: NULL, EINVAL (errno %d)", errno);
    errno = 0;
    CHECK(ox_aligned_alloc(64, v_ptrdiff_max + 1) == NULL && errno == ENOMEM,
          "size above PTRDIFF_MAX: NULL, ENOMEM (errno %d)", errno);
}

#define ALIGNED(p, a) (((uintptr_t)(p) & ((a) - 1)) == 0)

/* ox_realloc_aligned: a block already at the alignment is resized where
 * the block allows (a class block that still fits stays), one that is not
 * moves to one that is, contents kept; huge blocks keep their alignment
 * when their mapping moves; errors leave the block. */
static void test_realloc_aligned(void) {
    unsigned char *a = ox_aligned_alloc(4096, 8000);
    CHECK(a != NULL && ALIGNED(a, 4096), "ox_aligned_alloc(4096, 8000) = %p", (void *)a);
    if (!a) return;
    size_t usable = ox_usable_size(a);
    fill(a, 8000, 31);
    unsigned char *r = ox_realloc_aligned(a, usable - 16, 4096);
    CHECK(r == a && filled(r, 8000, 31), "an aligned block that still fits stays: %p -> %p", (void *)a, (void *)r);
    if (!r) return;

    /* A 16-aligned block of 100 bytes at an odd multiple of 16 is not at 4 KiB. */
    unsigned char *s = ox_malloc(100);
    if (s && ALIGNED(s, 4096)) {
        unsigned char *t = ox_malloc(100);
        ox_free(s);
        s = t;
    }
    CHECK(s != NULL && !ALIGNED(s, 4096), "a block of 100 bytes off 4 KiB: %p", (void *)s);
    if (!s) return;
    fill(s, 100, 32);
    unsigned char *m = ox_realloc_aligned(s, 100, 4096);
    CHECK(m != NULL && m != s && ALIGNED(m, 4096) && filled(m, 100, 32) && ox_usable_size(m) >= 100,
          "a block off the alignment moves to it: %p -> %p", (void *)s, (void *)m);
    if (!m) return;
    m = ox_realloc_aligned(m, 200000, 65536);
    CHECK(m != NULL && ALIGNED(m, 65536) && filled(m, 100, 32), "grown to a large block at 64 KiB: %p", (void *)m);
    if (!m) return;

    /* Huge blocks: 64 KiB from a chunk-aligned header; a 1 MiB-aligned one
     * keeps 1 MiB when its mapping moves, and moves to reach 2 MiB. */
    m = ox_realloc_aligned(m, (size_t)10 << 20, 65536);
    CHECK(m != NULL && ALIGNED(m, 65536) && filled(m, 100, 32), "grown to a huge block at 64 KiB: %p", (void *)m);
    unsigned char *h = ox_aligned_alloc((size_t)1 << 20, (size_t)6 << 20);
    CHECK(h != NULL && ALIGNED(h, (size_t)1 << 20), "ox_aligned_alloc(1 MiB, 6 MiB) = %p", (void *)h);
    if (h) {
        fill(h, (size_t)6 << 20, 33);
        h = ox_realloc_aligned(h, (size_t)12 << 20, (size_t)1 << 20);
        CHECK(h != NULL && ALIGNED(h, (size_t)1 << 20) && filled(h, (size_t)6 << 20, 33),
              "a 1 MiB-aligned huge block grown to 12 MiB: %p", (void *)h);
    }
    if (h) {
        h = ox_realloc_aligned(h, (size_t)12 << 20, (size_t)2 << 20);
        CHECK(h != NULL && ALIGNED(h, (size_t)2 << 20) && filled(h, (size_t)6 << 20, 33),
              "the same block at 2 MiB: %p", (void *)h);
    }
    ox_free(h);

    errno = 0;
    CHECK(ox_realloc_aligned(r, 64, 24) == NULL && errno == EINVAL, "alignment 24: NULL, EINVAL (errno %d)", errno);
    errno = 0;
    CHECK(ox_realloc_aligned(r, v_ptrdiff_max, 4096) == NULL && errno == ENOMEM,
          "size near PTRDIFF_MAX: NULL, ENOMEM (errno %d)", errno);
    CHECK(filled(r, 8000, 31) && ox_usable_size(r) == usable, "failed calls leave the block intact");
    unsigned char *n = ox_realloc_aligned(NULL, 50, 256);
    CHECK(n != NULL && ALIGNED(n, 256) && ox_is_ours(n), "ox_realloc_aligned(NULL, 50, 256) = %p", (void *)n);
    ox_free(n);
    errno = 1234;
    CHECK(ox_realloc_aligned(r, 0, 4096) == NULL && errno == 1234, "size 0 frees the block, NULL, errno untouched");
    ox_free(m);
}

static void test_posix_memalign(void) {
    void *const sentinel = (void *)(uintptr_t)0x5eed;
    void *out = sentinel;
    int rc = ox_posix_memalign(&out, 4096, 100);
    CHECK(rc == 0 && out != sentinel && out != NULL && ((uintptr_t)out & 4095) == 0 && ox_is_ours(out),
          "ox_posix_memalign(4096, 100): rc %d, %p", rc, out);
    if (rc == 0) ox_free(out);
    out = sentinel;
    rc = ox_posix_memalign(&out, 1 << 20, 3 << 20);
    CHECK(rc == 0 && ((uintptr_t)out & ((1 << 20) - 1)) == 0, "1 MiB alignment: rc %d, %p", rc, out);
    if (rc == 0) ox_free(out);

    size_t bad[] = {0, 1, 2, 4, 3, 24, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = sentinel;
        rc = ox_posix_memalign(&out, bad[i], 64);
        CHECK(rc == EINVAL && out == sentinel, "alignment %zu: rc %d (EINVAL %d), out %p untouched", bad[i], rc,
              EINVAL, out);
    }
    out = sentinel;
    rc = ox_posix_memalign(&out, 64, v_ptrdiff_max + 1);
    CHECK(rc == ENOMEM && out == sentinel, "size above PTRDIFF_MAX: rc %d (ENOMEM %d), out untouched", rc, ENOMEM);
    out = sentinel;
    rc = ox_posix_memalign(&out, 64, 0);
    CHECK(rc == 0 && out != sentinel, "size 0 succeeds: rc %d", rc);
    if (rc == 0) ox_free(out);
}

static pthread_barrier_t started, done;
static void *thread_main(void *arg) {
    (void)arg;
    void *p = ox_malloc(100); /* gives the thread a heap */
    pthread_barrier_wait(&started);
    pthread_barrier_wait(&done);
    ox_free(p);
    return NULL;
}

static char foreign_block[64];

static void test_stats_get(void) {
    ox_stats_t s0, s1, s2, s3;
    memset(&s0, 0xff, sizeof s0);
    ox_stats_get(&s0);
    CHECK(s0.threads >= 1 && s0.threads <= s0.threads_peak, "threads %llu, peak %llu",
          (unsigned long long)s0.threads, (unsigned long long)s0.threads_peak);
    CHECK(s0.chunks >= 1 && s0.mmap_calls >= 1, "chunks %llu, mmap calls %llu", (unsigned long long)s0.chunks,
          (unsigned long long)s0.mmap_calls);
    CHECK(s0.in_spans > 0 && s0.in_spans <= s0.in_spans_peak, "in_spans %llu, peak %llu",
          (unsigned long long)s0.in_spans, (unsigned long long)s0.in_spans_peak);
    CHECK(s0.rss > 0 && s0.rss < ((uint64_t)1 << 40), "rss %llu", (unsigned long long)s0.rss);
    CHECK(s0.errors == 0, "no heap error yet: %llu", (unsigned long long)s0.errors);

    /* A huge block: its own mapping, counted in huge, resident once touched. */
    size_t big = (size_t)64 << 20;
    unsigned char *p = ox_malloc(big);
    CHECK(p != NULL, "ox_malloc(64 MiB)");
    if (p) memset(p, 1, big);
    ox_stats_get(&s1);
    CHECK(s1.huge >= s0.huge + big, "huge %llu -> %llu after 64 MiB", (unsigned long long)s0.huge,
          (unsigned long long)s1.huge);
    CHECK(s1.huge_peak >= s1.huge, "huge_peak %llu >= huge %llu", (unsigned long long)s1.huge_peak,
          (unsigned long long)s1.huge);
    CHECK(s1.mmap_calls > s0.mmap_calls, "a mapping for the huge block: mmap calls %llu -> %llu",
          (unsigned long long)s0.mmap_calls, (unsigned long long)s1.mmap_calls);
    CHECK(s1.rss >= s0.rss + big / 2, "rss %llu -> %llu after touching 64 MiB", (unsigned long long)s0.rss,
          (unsigned long long)s1.rss);
    ox_free(p);
    ox_stats_get(&s2);
    CHECK(s2.huge + big <= s1.huge, "huge %llu -> %llu after the free", (unsigned long long)s1.huge,
          (unsigned long long)s2.huge);
    CHECK(s2.huge_peak >= s0.huge + big, "huge_peak keeps the peak: %llu", (unsigned long long)s2.huge_peak);

    /* Small blocks: pages handed out, in_spans grows. */
    void *small[2000];
    for (int i = 0; i < 2000; i++) small[i] = ox_malloc(1024);
    ox_stats_get(&s3);
    CHECK(s3.in_spans >= s2.in_spans + 1024 * 1024, "in_spans %llu -> %llu after 2000 x 1 KiB",
          (unsigned long long)s2.in_spans, (unsigned long long)s3.in_spans);
    for (int i = 0; i < 2000; i++) ox_free(small[i]);

    /* A second thread with a heap. */
    pthread_t th;
    pthread_barrier_init(&started, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_create(&th, NULL, thread_main, NULL);
    pthread_barrier_wait(&started);
    ox_stats_get(&s3);
    CHECK(s3.threads >= 2 && s3.threads_peak >= s3.threads, "two threads with a heap: %llu (peak %llu)",
          (unsigned long long)s3.threads, (unsigned long long)s3.threads_peak);
    pthread_barrier_wait(&done);
    pthread_join(th, NULL);

    /* One deliberate invalid free: counted, reported on stderr. */
    ox_stats_get(&s2);
    printf("FOREIGN %p\n", (void *)foreign_block);
    fflush(stdout);
    ox_free(foreign_block);
    ox_stats_get(&s3);
    CHECK(s3.errors == s2.errors + 1, "the invalid free is counted: errors %llu -> %llu",
          (unsigned long long)s2.errors, (unsigned long long)s3.errors);

    ox_stats_get(NULL); /* ignored */
}

static void print_tables(void) {
    void *live[100];
    for (int i = 0; i < 100; i++) live[i] = ox_malloc(48);
    fflush(stdout);
    fputs("== malloc_stats ==\n", stderr);
    malloc_stats();
    fputs("== ox_stats_print ==\n", stderr);
    ox_stats_print();
    fputs("== end ==\n", stderr);
    for (int i = 0; i < 100; i++) ox_free(live[i]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s EXPECTED_VERSION\n", argv[0]);
        return 2;
    }
    test_version(argv[1]);
    test_good_size();
    test_expand();
    test_calloc();
    test_realloc();
    test_reallocarray();
    test_aligned_alloc();
    test_realloc_aligned();
    test_posix_memalign();
    test_stats_get();
    print_tables();
    printf("prefixed: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
