/*
 * C-ABI contract of liboxmalloc: CHECKLIST section A, item by item, through
 * the exported C names, asserting return values and errno.
 *
 * Built by tests/contract.rs with -fno-builtin (so the compiler neither
 * folds nor removes allocator calls) and run preloaded, linked against
 * liboxmalloc.so, and linked statically with liboxmalloc.a. Prints one line
 * per failed check and "contract: N checks, M failed"; exits 1 on failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's internal aliases and old names: looked up at run time (glibc
 * 2.36 keeps cfree and __posix_memalign out of its link-time interface). */
static void *(*__libc_malloc)(size_t);
static void *(*__libc_calloc)(size_t, size_t);
static void *(*__libc_realloc)(void *, size_t);
static void (*__libc_free)(void *);
static void *(*__libc_memalign)(size_t, size_t);
static void *(*__libc_valloc)(size_t);
static void *(*__libc_pvalloc)(size_t);
static int (*__posix_memalign)(void **, size_t, size_t);
static void (*cfree)(void *);

#include "check.h"

/* Sizes the compiler cannot see (no folding, no -Walloc-size warnings). */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;

static int (*is_ours)(const void *);
static size_t page;

static int ours(const void *p) { return is_ours != NULL && is_ours(p); }

/* Request sizes hitting every size class edge up to 64 KiB (and a few more). */
static size_t class_sizes[512];
static int n_class_sizes;
static void make_class_sizes(void) {
    size_t s = 0;
    while (s <= 1024) { class_sizes[n_class_sizes++] = s; s += 8; }
    for (size_t base = 1024; base <= (256u << 10); base *= 2)
        for (int q = 1; q <= 4; q++) {
            size_t edge = base + base / 4 * q;
            class_sizes[n_class_sizes++] = edge - 1;
            class_sizes[n_class_sizes++] = edge;
            class_sizes[n_class_sizes++] = edge + 1;
        }
}

/* A1 */
static void malloc_zero(void) {
    void *seen[100];
    for (int i = 0; i < 100; i++) {
        seen[i] = malloc(0);
        CHECK(seen[i] != NULL, "malloc(0) #%d returned NULL", i);
        CHECK(ours(seen[i]), "malloc(0) %p is not an oxmalloc block", seen[i]);
        for (int j = 0; j < i; j++) CHECK(seen[i] != seen[j], "malloc(0) returned %p twice", seen[i]);
    }
    for (int i = 0; i < 100; i++) free(seen[i]);
}

/* A2 */
static void huge_sizes(void) {
    size_t sizes[80];
    int n = 0;
    sizes[n++] = v_ptrdiff_max;
    sizes[n++] = v_ptrdiff_max + 1;
    sizes[n++] = v_size_max;
    sizes[n++] = v_size_max - 7; /* (size_t)-8 */
    for (size_t k = 1; k <= 64; k++) sizes[n++] = v_size_max - k;
    for (int i = 0; i < n; i++) {
        void *small = malloc(16);
        free(small);
        errno = 0;
        void *p = malloc(sizes[i]);
        CHECK(p == NULL, "malloc(%zu) returned %p", sizes[i], p);
        CHECK(errno == ENOMEM, "malloc(%zu): errno %d, want ENOMEM", sizes[i], errno);
        CHECK(p != small || p == NULL, "malloc(%zu) recycled the small block", sizes[i]);
        errno = 0;
        p = __libc_malloc(sizes[i]);
        CHECK(p == NULL && errno == ENOMEM, "__libc_malloc(%zu): %p errno %d", sizes[i], p, errno);
    }
}

/* A3, A4 */
static void calloc_checks(void) {
    size_t half = v_size_max / 2 + 1;
    struct { size_t n, m; } bad[] = {
        {half, 2}, {2, half}, {(size_t)1 << 32, (size_t)1 << 32}, {v_size_max, v_size_max},
        {3, v_size_max / 2}, {v_size_max / 2, 3}, {1, v_size_max}, {v_size_max, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = calloc(bad[i].n, bad[i].m);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%zu, %zu): %p errno %d", bad[i].n, bad[i].m, p, errno);
    }
    void *a = calloc(0, 16), *b = calloc(16, 0), *c = calloc(0, 0);
    CHECK(a != NULL && b != NULL && c != NULL, "calloc with a zero: %p %p %p", a, b, c);
    CHECK(a != b && b != c && a != c, "calloc(0, _) not unique");
    free(a); free(b); free(c);

    /* Recycled memory comes back zeroed, every class. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < n_class_sizes; i++) {
            size_t s = class_sizes[i];
            void *blocks[8];
            for (int j = 0; j < 8; j++) {
                blocks[j] = malloc(s);
                memset(blocks[j], 0xA5, malloc_usable_size(blocks[j]));
            }
            for (int j = 0; j < 8; j++) free(blocks[j]);
            for (int j = 0; j < 8; j++) {
                unsigned char *z = calloc(1, s);
                CHECK(z != NULL, "calloc(1, %zu) NULL", s);
                if (z) CHECK(all_zero(z, s), "calloc(1, %zu) recycled block not zeroed (round %d)", s, round);
                blocks[j] = z;
            }
            for (int j = 0; j < 8; j++) free(blocks[j]);
        }
        /* After a purge and re-commit. */
        malloc_trim(0);
    }
    size_t big[] = {1u << 20, 3u << 20, 9u << 20, 65u << 20};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        unsigned char *p = malloc(big[i]);
        memset(p, 0x5A, big[i]);
        free(p);
        unsigned char *z = calloc(big[i] / 16, 16);
        CHECK(z != NULL && all_zero(z, big[i]), "calloc(%zu) after a dirty free not zeroed", big[i]);
        free(z);
    }
    void *l = __libc_calloc(3, 5);
    CHECK(l != NULL && all_zero(l, 15) && ours(l), "__libc_calloc");
    free(l);
}

/* A5, A6, A7 */
static void realloc_checks(void) {
    unsigned char *p = realloc(NULL, 40);
    CHECK(p != NULL && ours(p), "realloc(NULL, 40) = %p", (void *)p);
    free(p);
    p = realloc(NULL, 0);
    CHECK(p != NULL, "realloc(NULL, 0) returned NULL");
    free(p);

    /* realloc(p, 0): glibc's behaviour, frees p and returns NULL. */
    p = malloc(100);
    errno = 1234;
    void *r = realloc(p, 0);
    CHECK(r == NULL, "realloc(p, 0) returned %p, want NULL (p freed)", r);
    CHECK(errno == 1234, "realloc(p, 0) changed errno to %d", errno);

    /* Contents survive every transition. */
    size_t chain[] = {24, 3000, 100000, 5u << 20, 64u << 20, 40, 70000, 17, 9u << 20, 1, 2000000, 0};
    size_t prev = 0;
    p = NULL;
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        size_t s = chain[i];
        unsigned char *q = realloc(p, s);
        if (s == 0) {
            CHECK(q == NULL, "realloc(p, 0) in the chain returned %p", (void *)q);
            p = NULL;
            break;
        }
        CHECK(q != NULL, "realloc(%p, %zu) failed", (void *)p, s);
        if (!q) return;
        size_t keep = prev < s ? prev : s;
        CHECK(filled(q, keep, (unsigned)i), "realloc %zu -> %zu lost data", prev, s);
        CHECK(malloc_usable_size(q) >= s, "usable %zu < %zu", malloc_usable_size(q), s);
        fill(q, s, (unsigned)i + 1);
        p = q;
        prev = s;
    }
    free(p);

    /* Growing within the usable size does not move the block. */
    size_t grow_sizes[] = {1, 13, 100, 1000, 5000, 40000, 300000, 3u << 20};
    for (size_t i = 0; i < sizeof grow_sizes / sizeof grow_sizes[0]; i++) {
        void *a = malloc(grow_sizes[i]);
        size_t u = malloc_usable_size(a);
        CHECK(u >= grow_sizes[i], "usable size %zu < %zu", u, grow_sizes[i]);
        void *b = realloc(a, u);
        CHECK(a == b, "realloc(p, usable %zu) moved %p -> %p", u, a, b);
        free(b);
    }

    /* Failure leaves p valid and intact. */
    size_t fails[] = {v_size_max, v_ptrdiff_max + 1, v_size_max - 15, v_ptrdiff_max};
    unsigned char *k = malloc(200);
    fill(k, 200, 9);
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        errno = 0;
        void *q = realloc(k, fails[i]);
        CHECK(q == NULL && errno == ENOMEM, "realloc(p, %zu): %p errno %d", fails[i], q, errno);
        CHECK(filled(k, 200, 9) && malloc_usable_size(k) >= 200, "realloc failure damaged p");
        errno = 0;
        q = __libc_realloc(k, fails[i]);
        CHECK(q == NULL && errno == ENOMEM, "__libc_realloc(p, %zu): %p errno %d", fails[i], q, errno);
    }
    struct { size_t n, m; } overflow[] = {{v_size_max / 2, 3}, {3, v_size_max / 2}, {(size_t)1 << 33, (size_t)1 << 33}};
    for (size_t i = 0; i < sizeof overflow / sizeof overflow[0]; i++) {
        errno = 0;
        void *q = reallocarray(k, overflow[i].n, overflow[i].m);
        CHECK(q == NULL && errno == ENOMEM, "reallocarray(p, %zu, %zu): %p errno %d", overflow[i].n, overflow[i].m, q, errno);
        CHECK(filled(k, 200, 9), "reallocarray failure damaged p");
    }
    unsigned char *g = reallocarray(k, 100, 4);
    CHECK(g != NULL && filled(g, 200, 9) && malloc_usable_size(g) >= 400, "reallocarray(p, 100, 4)");
    g = reallocarray(g, 0, 4);
    CHECK(g == NULL, "reallocarray(p, 0, 4) = realloc(p, 0) must free and return NULL");
    g = reallocarray(NULL, 3, 3);
    CHECK(g != NULL && ours(g), "reallocarray(NULL, 3, 3)");
    free(g);
}

/* A8 */
static void posix_memalign_checks(void) {
    size_t bad[] = {0, 1, 2, 3, 4, 24, 0x300, 48, 4097, v_size_max, v_size_max / 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)0x1234;
        int rc = posix_memalign(&out, bad[i], 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
        CHECK(out == (void *)0x1234, "posix_memalign(align %zu) touched the out-pointer", bad[i]);
        rc = __posix_memalign(&out, bad[i], 64);
        CHECK(rc == EINVAL && out == (void *)0x1234, "__posix_memalign(align %zu) = %d", bad[i], rc);
    }
    size_t huge[] = {v_size_max, v_ptrdiff_max, v_ptrdiff_max + 1, v_size_max - 4096};
    size_t aligns[] = {8, 16, 64, 4096, 1u << 21};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            void *out = (void *)0x5678;
            int rc = posix_memalign(&out, aligns[j], huge[i]);
            CHECK(rc == ENOMEM, "posix_memalign(%zu, %zu) = %d, want ENOMEM", aligns[j], huge[i], rc);
            CHECK(out == (void *)0x5678, "posix_memalign(%zu, %zu) touched the out-pointer", aligns[j], huge[i]);
        }
    {
        void *out = (void *)0x5678;
        int rc = posix_memalign(&out, (size_t)1 << 63, 16);
        CHECK(rc == ENOMEM && out == (void *)0x5678, "posix_memalign(2^63, 16) = %d", rc);
    }
    for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
        void *out = NULL;
        int rc = posix_memalign(&out, aligns[j], 0);
        CHECK(rc == 0 && out != NULL, "posix_memalign(%zu, 0) = %d", aligns[j], rc);
        CHECK(((uintptr_t)out & (aligns[j] - 1)) == 0, "posix_memalign(%zu, 0) misaligned %p", aligns[j], out);
        CHECK(ours(out), "posix_memalign block not ours");
        free(out);
    }
}

/* A9 */
static void aligned_alloc_checks(void) {
    size_t bad[] = {0, 3, 24, 0x300, 48, 4097, v_size_max};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = aligned_alloc(bad[i], 64);
        CHECK(p == NULL && errno == EINVAL, "aligned_alloc(%zu, 64): %p errno %d, want NULL/EINVAL", bad[i], p, errno);
    }
    errno = 0;
    void *p = aligned_alloc(64, v_size_max);
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, SIZE_MAX): %p errno %d", p, errno);
    size_t good[] = {1, 2, 4, 8, 16, 32, 64, 128, 4096, 65536};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        p = aligned_alloc(good[i], 100);
        CHECK(p != NULL && ((uintptr_t)p & (good[i] - 1)) == 0 && ours(p), "aligned_alloc(%zu, 100) = %p", good[i], p);
        free(p);
    }

    /* memalign: a non-power-of-two alignment is rounded up (glibc). */
    p = memalign(24, 100);
    CHECK(p != NULL && ((uintptr_t)p & 31) == 0, "memalign(24, 100) = %p, want 32-aligned", p);
    free(p);
    p = memalign(0, 100);
    CHECK(p != NULL, "memalign(0, 100) = NULL");
    free(p);
    errno = 0;
    p = memalign(v_size_max, 100);
    CHECK(p == NULL && errno == EINVAL, "memalign(SIZE_MAX, 100): %p errno %d", p, errno);
    p = __libc_memalign(256, 10);
    CHECK(p != NULL && ((uintptr_t)p & 255) == 0 && ours(p), "__libc_memalign(256, 10) = %p", p);
    free(p);

    /* valloc / pvalloc */
    size_t vs[] = {0, 1, 100, 4096, 4097, 100000};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        void *v = valloc(vs[i]);
        CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0 && ours(v), "valloc(%zu) = %p", vs[i], v);
        free(v);
        v = __libc_valloc(vs[i]);
        CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0, "__libc_valloc(%zu) = %p", vs[i], v);
        free(v);
        unsigned char *pv = pvalloc(vs[i]);
        size_t whole = vs[i] == 0 ? page : (vs[i] + page - 1) / page * page;
        CHECK(pv != NULL && ((uintptr_t)pv & (page - 1)) == 0, "pvalloc(%zu) = %p", vs[i], (void *)pv);
        CHECK(pv != NULL && malloc_usable_size(pv) >= whole, "pvalloc(%zu) usable %zu < %zu", vs[i], malloc_usable_size(pv), whole);
        if (pv) memset(pv, 1, whole);
        free(pv);
        pv = __libc_pvalloc(vs[i]);
        CHECK(pv != NULL && ((uintptr_t)pv & (page - 1)) == 0, "__libc_pvalloc(%zu)", vs[i]);
        free(pv);
    }
    size_t pbad[] = {v_size_max, v_size_max - page + 2, v_ptrdiff_max + 1};
    for (size_t i = 0; i < sizeof pbad / sizeof pbad[0]; i++) {
        errno = 0;
        p = pvalloc(pbad[i]);
        CHECK(p == NULL && errno == ENOMEM, "pvalloc(%zu): %p errno %d", pbad[i], p, errno);
        errno = 0;
        p = valloc(pbad[i]);
        CHECK(p == NULL && errno == ENOMEM, "valloc(%zu): %p errno %d", pbad[i], p, errno);
    }
}

/* A10 */
static void alignment_matrix(void) {
    int bad = 0;
    for (int k = 0; k <= 24; k++) {
        for (int d = -1; d <= 1; d++) {
            long long s = (1ll << k) + 32 * d;
            if (s < 0) continue;
            size_t size = (size_t)s;
            for (int a = 4; a <= 27; a++) {
                size_t align = (size_t)1 << a;
                void *p = NULL;
                int how = (k + a + d) % 3;
                if (how == 0) {
                    int rc = posix_memalign(&p, align, size);
                    if (rc != 0) p = NULL;
                } else if (how == 1) {
                    p = aligned_alloc(align, size);
                } else {
                    p = memalign(align, size);
                }
                if (p == NULL || ((uintptr_t)p & (align - 1)) != 0 || malloc_usable_size(p) < size) {
                    if (bad++ < 20)
                        CHECK(0, "align %zu size %zu (way %d): %p usable %zu", align, size, how, p,
                              p ? malloc_usable_size(p) : 0);
                    free(p);
                    continue;
                }
                checks++;
                memset(p, 0xC3, malloc_usable_size(p));
                free(p);
            }
        }
    }
    /* Large alignments with sizes near and past a few MiB (where an engine
     * may switch between spans inside a chunk and blocks of their own). */
    bad = 0;
    for (int a = 16; a <= 23; a++) {
        size_t align = (size_t)1 << a;
        for (size_t mib = 1; mib <= 8; mib++) {
            for (int d = -1; d <= 1; d++) {
                size_t size = (mib << 20) + 32 * d;
                void *p = aligned_alloc(align, size);
                int ok = p != NULL && ((uintptr_t)p & (align - 1)) == 0 && malloc_usable_size(p) >= size;
                if (!ok) {
                    if (bad++ < 20)
                        CHECK(0, "aligned_alloc(%zu, %zu) = %p usable %zu", align, size, p, p ? malloc_usable_size(p) : 0);
                    free(p);
                    continue;
                }
                checks++;
                memset(p, 0x5C, malloc_usable_size(p));
                free(p);
            }
        }
    }
    /* Huge alignment with huge size. */
    size_t sizes[] = {(size_t)1 << 26, ((size_t)1 << 28) + 32, ((size_t)1 << 27) - 32};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = NULL;
        int rc = posix_memalign(&p, (size_t)1 << 27, sizes[i]);
        CHECK(rc == 0 && ((uintptr_t)p & (((size_t)1 << 27) - 1)) == 0, "posix_memalign(2^27, %zu) = %d %p", sizes[i], rc, p);
        if (rc == 0) {
            CHECK(malloc_usable_size(p) >= sizes[i], "usable size");
            memset(p, 0x3C, malloc_usable_size(p));
            free(p);
        }
    }
}

/* A11, A12 */
static void free_checks(void) {
    errno = 4321;
    free(NULL);
    cfree(NULL);
    __libc_free(NULL);
    CHECK(errno == 4321, "free(NULL) changed errno to %d", errno);
    size_t sizes[] = {8, 1000, 100000, 3u << 20, 100u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        memset(p, 1, sizes[i]);
        errno = 77;
        free(p);
        CHECK(errno == 77, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* errno survives a purge too. */
    for (int i = 0; i < 64; i++) free(malloc(1u << 16));
    errno = 78;
    malloc_trim(0);
    free(malloc(10));
    CHECK(errno == 78, "free after a trim changed errno to %d", errno);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
    void *p = malloc(1);
    cfree(p);
    p = __libc_malloc(5);
    CHECK(p != NULL && ours(p), "__libc_malloc");
    __libc_free(p);
}

/* A14: pointers oxmalloc did not allocate are recognised and left alone. */
static char static_buffer[4096] __attribute__((aligned(64)));
static void foreign_pointers(void) {
    char stack_buffer[256];
    void *mapped = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(static_buffer, 0x11, sizeof static_buffer);
    memset(mapped, 0x22, 1 << 16);
    void *foreign[] = {static_buffer, static_buffer + 64, stack_buffer, mapped, (char *)mapped + 4096};
    /* The test runner matches oxmalloc's error lines against these. */
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) printf("FOREIGN %p\n", foreign[i]);
    fflush(stdout);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        CHECK(!ours(foreign[i]), "%p claimed as ours", foreign[i]);
        free(foreign[i]);
        errno = 0;
        void *r = realloc(foreign[i], 100);
        CHECK(r == NULL, "realloc of foreign %p returned %p", foreign[i], r);
        CHECK(malloc_usable_size(foreign[i]) == 0, "malloc_usable_size(foreign %p) != 0", foreign[i]);
    }
    /* Nothing was written and the heap is intact: no block overlaps them. */
    int intact = 1;
    for (size_t i = 0; i < sizeof static_buffer; i++) intact &= static_buffer[i] == 0x11;
    for (size_t i = 0; i < (1 << 16); i++) intact &= ((unsigned char *)mapped)[i] == 0x22;
    CHECK(intact, "a foreign free wrote into foreign memory");
    void *blocks[2000];
    for (int i = 0; i < 2000; i++) {
        blocks[i] = malloc(1 + (i % 300));
        for (size_t j = 0; j < sizeof foreign / sizeof foreign[0]; j++)
            CHECK((char *)blocks[i] + 300 <= (char *)foreign[j] || (char *)blocks[i] >= (char *)foreign[j] + 64,
                  "block %p overlaps foreign %p", blocks[i], foreign[j]);
        memset(blocks[i], 0x33, 1 + (i % 300));
    }
    for (int i = 0; i < 2000; i++) free(blocks[i]);
    munmap(mapped, 1 << 16);
}

static void extras(void) {
    CHECK(malloc_trim(0) == 1, "malloc_trim returned 0");
    CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1, "mallopt(M_MMAP_THRESHOLD) failed");
    void *p = malloc(1 << 20);
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m2.arena + m2.hblkhd > 0 && m2.uordblks >= (1 << 20), "mallinfo2: arena %zu hblkhd %zu uordblks %zu",
          m2.arena, m2.hblkhd, m2.uordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    CHECK(m.uordblks >= (1 << 20), "mallinfo: uordblks %d", m.uordblks);
    free(p);
}

int main(void) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    is_ours = (int (*)(const void *))dlsym(RTLD_DEFAULT, "ox_is_ours");
    CHECK(is_ours != NULL, "ox_is_ours not found: liboxmalloc is not loaded");
#define LOOKUP(name)                                                        \
    do {                                                                    \
        *(void **)&name = dlsym(RTLD_DEFAULT, #name);                       \
        if (name == NULL) {                                                 \
            printf("FAIL: %s is not exported\n", #name);                    \
            return 1;                                                       \
        }                                                                   \
    } while (0)
    LOOKUP(__libc_malloc);
    LOOKUP(__libc_calloc);
    LOOKUP(__libc_realloc);
    LOOKUP(__libc_free);
    LOOKUP(__libc_memalign);
    LOOKUP(__libc_valloc);
    LOOKUP(__libc_pvalloc);
    LOOKUP(__posix_memalign);
    LOOKUP(cfree);
    make_class_sizes();
    malloc_zero();
    huge_sizes();
    calloc_checks();
    realloc_checks();
    posix_memalign_checks();
    aligned_alloc_checks();
    alignment_matrix();
    free_checks();
    foreign_pointers();
    extras();
    printf("contract: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
