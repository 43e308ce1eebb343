/*
 * jemalloc's own API as liboxmalloc defines it (src/jemalloc_api.rs):
 * mallocx/rallocx/xallocx/sallocx/dallocx/sdallocx/nallocx, mallctl and
 * its MIB forms, malloc_stats_print. The prototypes and flag macros are
 * written out here from jemalloc's manual (no jemalloc header needed).
 *
 * Run linked with -loxmalloc, with liboxmalloc.a, and (tests/jemalloc_api.rs)
 * linked against libjemalloc.so.2 with liboxmalloc.so preloaded: then every
 * call below must reach oxmalloc, which `ox_is_ours` (looked up with dlsym,
 * absent from jemalloc) and the statistics table's title tell.
 *
 * Prints "jemalloc_api: N checks, M failed"; exits 1 on a failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>

#include "check.h"

void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts);

#define MALLOCX_LG_ALIGN(la) ((int)(la))
#define MALLOCX_ZERO ((int)0x40)
#define MALLOCX_TCACHE_NONE ((int)((-1 + 2) << 8))
#define MALLOCX_ARENA(a) ((((int)(a)) + 1) << 20)

static int (*is_ours)(const void *);

static int ours(const void *p) { return is_ours ? is_ours(p) : 1; }

static size_t stat_size(const char *name) {
    size_t value = 0, len = sizeof value;
    int rc = mallctl(name, &value, &len, NULL, 0);
    CHECK(rc == 0 && len == sizeof value, "mallctl(%s) = %d", name, rc);
    return value;
}

struct collected {
    char text[8192];
    size_t len;
    int calls;
};

static void collect(void *opaque, const char *line) {
    struct collected *c = opaque;
    size_t n = strlen(line);
    if (c->len + n < sizeof c->text) {
        memcpy(c->text + c->len, line, n + 1);
        c->len += n;
    }
    c->calls++;
}

static void allocation_calls(void) {
    /* mallocx: sizes, alignments, zeroing, and the flags we ignore. */
    for (size_t size = 1; size <= (8u << 20); size = size * 3 + 5) {
        for (int lg = 0; lg <= 16; lg += 4) {
            int flags = MALLOCX_LG_ALIGN(lg);
            unsigned char *p = mallocx(size, flags | MALLOCX_ZERO);
            CHECK(p != NULL, "mallocx(%zu, lg %d)", size, lg);
            if (!p) continue;
            CHECK(ours(p), "mallocx(%zu) block %p is oxmalloc's", size, (void *)p);
            CHECK(((uintptr_t)p & ((1u << lg) - 1)) == 0, "mallocx(%zu, lg %d) = %p misaligned", size, lg, (void *)p);
            size_t real = sallocx(p, 0);
            CHECK(real == nallocx(size, flags), "sallocx %zu == nallocx %zu (size %zu, lg %d)", real,
                  nallocx(size, flags), size, lg);
            CHECK(real == malloc_usable_size(p), "sallocx %zu == malloc_usable_size", real);
            CHECK(real >= size && all_zero(p, real), "MALLOCX_ZERO block of %zu (real %zu) is zero", size, real);
            fill(p, real, 3);
            if (size % 2) sdallocx(p, size, flags);
            else dallocx(p, flags);
        }
    }
    void *t = mallocx(100, MALLOCX_TCACHE_NONE | MALLOCX_ARENA(0));
    CHECK(t != NULL && ours(t) && sallocx(t, 0) >= 100, "tcache and arena flags are accepted");
    free(t);
    CHECK(nallocx(SIZE_MAX, 0) == 0, "nallocx of an impossible size is 0");
    errno = 0;
    CHECK(mallocx(SIZE_MAX / 2, 0) == NULL && errno == ENOMEM, "mallocx of an impossible size fails with ENOMEM");

    /* Blocks cross between the two APIs: malloc'ed blocks to jemalloc's
     * calls, mallocx'ed ones to free and realloc. */
    char *m = malloc(200);
    CHECK(sallocx(m, 0) == malloc_usable_size(m), "sallocx of a malloc block");
    sdallocx(m, 200, 0);
    char *x = mallocx(300, 0);
    fill((unsigned char *)x, 300, 5);
    x = realloc(x, 5000);
    CHECK(x && filled((unsigned char *)x, 300, 5), "realloc of a mallocx block keeps its bytes");
    free(x);

    /* rallocx: growth keeps the bytes and zeroes past the old real size;
     * a new alignment moves the block when it must. */
    unsigned char *r = mallocx(40, 0);
    size_t old_real = sallocx(r, 0);
    fill(r, old_real, 9);
    r = rallocx(r, 100000, MALLOCX_ZERO);
    CHECK(r != NULL && filled(r, old_real, 9), "rallocx growth keeps the old bytes");
    if (r) {
        size_t real = sallocx(r, 0);
        CHECK(real >= 100000 && all_zero(r + old_real, real - old_real), "rallocx MALLOCX_ZERO zeroes the new bytes");
        fill(r, 64, 11);
        r = rallocx(r, 64, MALLOCX_LG_ALIGN(12));
        CHECK(r != NULL && ((uintptr_t)r & 4095) == 0 && filled(r, 64, 11), "rallocx to 4 KiB alignment: %p", (void *)r);
        CHECK(r != NULL && sallocx(r, 0) == nallocx(64, MALLOCX_LG_ALIGN(12)), "rallocx gives nallocx's size");
    }
    /* xallocx never moves and reports the real size: a small block keeps
     * its size; a large one gives its tail back and grows into it again. */
    if (r) {
        size_t real = sallocx(r, 0);
        CHECK(xallocx(r, 1, 0, 0) == real, "xallocx returns the real size");
        CHECK(xallocx(r, real * 4, 0, 0) == real, "xallocx that cannot grow returns the real size, less than asked");
        dallocx(r, 0);
    }
    const size_t big = (size_t)1 << 20, small = 256 << 10;
    unsigned char *l = mallocx(big, 0);
    CHECK(l != NULL, "mallocx(1 MiB)");
    if (l) {
        fill(l, big, 13);
        size_t shrunk = xallocx(l, small, 0, 0);
        CHECK(shrunk == sallocx(l, 0) && shrunk >= small && filled(l, small, 13), "xallocx shrink: real size %zu",
              shrunk);
        if (is_ours) {
            /* oxmalloc gives the tail back; nothing took it since. */
            CHECK(shrunk < big, "xallocx shrinks a 1 MiB block in place: real size %zu", shrunk);
            size_t grown = xallocx(l, small, big - small, MALLOCX_ZERO);
            CHECK(grown >= big && grown == sallocx(l, 0), "xallocx with extra grows back into the tail: %zu", grown);
            CHECK(filled(l, small, 13) && all_zero(l + shrunk, grown - shrunk),
                  "xallocx growth keeps the bytes and MALLOCX_ZERO zeroes the gained ones");
            CHECK(xallocx(l, big, (size_t)1 << 40, 0) >= big,
                  "an extra that cannot be had still resizes to size");
            CHECK(xallocx(NULL, 10, 0, 0) == 0, "xallocx(NULL) is 0 (undefined in jemalloc)");
        }
        dallocx(l, 0);
    }
    const size_t huge = (size_t)16 << 20, kept = (size_t)6 << 20;
    unsigned char *h = mallocx(huge, 0);
    CHECK(h != NULL, "mallocx(16 MiB)");
    if (h && is_ours) {
        /* A block above 4 MiB has a mapping of its own: cut in place, then
         * grown where it lies unless something was mapped after it since. */
        fill(h, kept, 17);
        size_t shrunk = xallocx(h, kept, 0, 0);
        CHECK(shrunk == sallocx(h, 0) && shrunk >= kept && shrunk < huge && filled(h, kept, 17),
              "xallocx shrinks a 16 MiB block in place: real size %zu", shrunk);
        size_t grown = xallocx(h, kept, huge - kept, MALLOCX_ZERO);
        CHECK(grown == sallocx(h, 0) && (grown == shrunk || grown >= huge) && filled(h, kept, 17) &&
                  all_zero(h + shrunk, grown - shrunk),
              "xallocx grows a 16 MiB block back in place or not at all: real size %zu", grown);
    }
    if (h) {
        dallocx(h, 0);
    }
    if (is_ours) {
        /* oxmalloc's extension: undefined in jemalloc (it crashes there). */
        void *fresh = rallocx(NULL, 50, 0);
        CHECK(fresh != NULL && ours(fresh), "rallocx(NULL) allocates");
        free(fresh);
    }
}

static void control_calls(void) {
    /* epoch: read, write (a refresh), read again. */
    uint64_t epoch = 0, next = 0;
    size_t len = sizeof epoch;
    CHECK(mallctl("epoch", &epoch, &len, NULL, 0) == 0 && epoch > 0, "epoch reads");
    CHECK(mallctl("epoch", &next, &len, &epoch, sizeof epoch) == 0 && next > epoch, "epoch write bumps it");

    /* The statistics follow a large block. */
    size_t before = stat_size("stats.allocated");
    void *big = malloc(8u << 20);
    memset(big, 1, 8u << 20);
    size_t during = stat_size("stats.allocated");
    CHECK(during >= before + (8u << 20), "stats.allocated %zu -> %zu with 8 MiB more", before, during);
    CHECK(stat_size("stats.active") >= during, "active >= allocated");
    CHECK(stat_size("stats.resident") >= stat_size("stats.active"), "resident >= active");
    CHECK(stat_size("stats.mapped") >= stat_size("stats.resident"), "mapped >= resident");
    free(big);
    CHECK(stat_size("stats.allocated") + (8u << 20) <= during, "stats.allocated drops after the free");
    stat_size("stats.retained");

    bool flag = false;
    len = sizeof flag;
    CHECK(mallctl("config.stats", &flag, &len, NULL, 0) == 0 && flag, "config.stats is true");
    CHECK(mallctl("background_thread", &flag, &len, NULL, 0) == 0, "background_thread reads");
    CHECK(mallctl("background_thread", NULL, NULL, &flag, sizeof flag) == EPERM, "background_thread is read-only");
    unsigned narenas = 0;
    len = sizeof narenas;
    CHECK(mallctl("arenas.narenas", &narenas, &len, NULL, 0) == 0 && narenas == 1, "one arena");

    /* Actions: purge every arena (redis's MEMORY PURGE), flush the cache. */
    CHECK(mallctl("arena.1.purge", NULL, NULL, NULL, 0) == 0, "arena.<narenas>.purge");
    CHECK(mallctl("arena.4096.purge", NULL, NULL, NULL, 0) == 0, "arena.MALLCTL_ARENAS_ALL.purge");
    CHECK(mallctl("arena.0.decay", NULL, NULL, NULL, 0) == 0, "arena.0.decay");
    CHECK(mallctl("arena.7.purge", NULL, NULL, NULL, 0) == EFAULT, "no arena 7");
    CHECK(mallctl("arena.0.purge", &flag, &len, NULL, 0) == EPERM, "a purge reads nothing");
    CHECK(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0) == 0, "thread.tcache.flush");
    CHECK(mallctl("thread.tcache.flush", &flag, &len, NULL, 0) == EPERM, "an action reads nothing");

    /* Errors. */
    size_t value = 0;
    len = sizeof value;
    CHECK(mallctl("version", &value, &len, NULL, 0) == ENOENT, "unknown name: ENOENT");
    CHECK(mallctl("opt.narenas", &value, &len, NULL, 0) == ENOENT, "opt.*: ENOENT");
    CHECK(mallctl("stats.allocated.x", &value, &len, NULL, 0) == ENOENT, "no prefix matching");
    CHECK(mallctl(NULL, &value, &len, NULL, 0) == ENOENT, "NULL name: ENOENT");
    len = 4;
    CHECK(mallctl("stats.allocated", &value, &len, NULL, 0) == EINVAL, "wrong length: EINVAL");
    len = sizeof value;
    CHECK(mallctl("stats.allocated", NULL, NULL, &value, sizeof value) == EPERM, "read-only: EPERM");
    CHECK(mallctl("epoch", NULL, NULL, &epoch, 3) == EINVAL, "epoch write of the wrong length: EINVAL");

    /* MIBs. */
    size_t mib[4], miblen = 4;
    CHECK(mallctlnametomib("stats.allocated", mib, &miblen) == 0 && miblen == 1, "nametomib");
    value = 0;
    len = sizeof value;
    void *hold = malloc(1000);
    CHECK(mallctlbymib(mib, miblen, &value, &len, NULL, 0) == 0 && value == stat_size("stats.allocated"),
          "bymib reads what the name reads");
    free(hold);
    /* arena.<i>.purge by MIB, the index set in it as jemalloc documents. */
    miblen = 4;
    CHECK(mallctlnametomib("arena.0.purge", mib, &miblen) == 0 && miblen == 3, "arena.0.purge MIB (%zu)", miblen);
    if (miblen == 3) {
        size_t touched = (size_t)2 << 20;
        unsigned char *block = malloc(touched);
        memset(block, 1, touched);
        size_t resident = stat_size("stats.resident");
        free(block);
        mib[1] = 4096; /* MALLCTL_ARENAS_ALL */
        CHECK(mallctlbymib(mib, 3, NULL, NULL, NULL, 0) == 0, "arena.MALLCTL_ARENAS_ALL.purge by MIB");
        CHECK(stat_size("stats.resident") + touched / 2 <= resident, "the MIB's purge gave the freed 2 MiB back");
        mib[1] = 7;
        CHECK(mallctlbymib(mib, 3, NULL, NULL, NULL, 0) == EFAULT, "no arena 7 by MIB");
        mib[1] = 0;
        CHECK(mallctlbymib(mib, 3, &flag, &len, NULL, 0) == EPERM, "a purge by MIB reads nothing");
        CHECK(mallctlbymib(mib, 2, NULL, NULL, NULL, 0) == ENOENT, "a cut arena MIB");
        mib[2] = 9;
        CHECK(mallctlbymib(mib, 3, NULL, NULL, NULL, 0) == ENOENT, "an arena MIB with no such action");
    }
    miblen = 4;
    CHECK(mallctlnametomib("arena.0.decay", mib, &miblen) == 0 && miblen == 3 && mib[1] == 0,
          "arena.0.decay MIB");
    miblen = 2;
    CHECK(mallctlnametomib("arena.0.purge", mib, &miblen) == EINVAL, "an arena MIB needs 3 elements");
    miblen = 4;
    CHECK(mallctlnametomib("arena.0.reset", mib, &miblen) == ENOENT, "arena.<i>.reset is not offered");
    miblen = 4;
    CHECK(mallctlnametomib("nonsense", mib, &miblen) == ENOENT, "unknown name MIB");
    mib[0] = 999;
    CHECK(mallctlbymib(mib, 1, &value, &len, NULL, 0) == ENOENT, "unknown MIB");

    /* malloc_stats_print through a callback: oxmalloc's table. */
    static struct collected c;
    malloc_stats_print(collect, &c, NULL);
    CHECK(c.calls > 3 && strstr(c.text, "oxmalloc ") && strstr(c.text, " statistics\n") &&
              strstr(c.text, "allocated"),
          "malloc_stats_print wrote oxmalloc's table through the callback (%d calls)", c.calls);
}

int main(void) {
    /* Unbuffered: the failures of a run that crashes still show. */
    setvbuf(stdout, NULL, _IONBF, 0);
    is_ours = (int (*)(const void *))dlsym(RTLD_DEFAULT, "ox_is_ours");
    CHECK(is_ours != NULL, "ox_is_ours is found: oxmalloc is in the process");
    allocation_calls();
    control_calls();
    printf("jemalloc_api: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
