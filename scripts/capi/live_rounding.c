/* How much the allocator's rounding adds to a program's live memory: an
 * LD_PRELOAD shim, loaded in front of the allocator under test, that
 * tracks the bytes the program has asked for and still holds, the same
 * blocks' usable sizes (`malloc_usable_size` of the allocator below), and
 * what glibc's chunks would take for them (request + 8 rounded up to 16,
 * at least 32). At exit it prints one line, for the moment the requested
 * bytes peaked:
 *
 *   ROUNDING peak requested R MiB, usable U MiB (+u%), glibc chunks G MiB (+g%)
 *
 *   cc -O2 -shared -fPIC -o /tmp/live_rounding.so scripts/capi/live_rounding.c -ldl
 *   LD_PRELOAD="/tmp/live_rounding.so target/release/liboxmalloc.so" PROGRAM
 *
 * Only malloc, calloc, realloc and free are followed (aligned allocations
 * are not counted). Each process prints its own line. Page tails, chunk
 * headers and free memory are not counted: this is rounding alone.
 * docs/PERFORMANCE.md E50. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Live blocks: an open-addressing table (linear probing, deletion by
 * backward shift), mapped on first use, never allocated with malloc. */
typedef struct {
    uintptr_t ptr;
    uint64_t requested, usable;
} Entry;
#define SLOTS (1u << 24)
static Entry *table;
static volatile int table_lock;

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static size_t (*next_usable_size)(void *);

static int64_t live_requested, live_usable, live_glibc;
static int64_t peak_requested, usable_at_peak, glibc_at_peak;

/* dlsym may allocate before the real functions are known. */
static char bootstrap[65536];
static size_t bootstrap_used;
static int resolving;

static void *from_bootstrap(size_t n) {
    void *p = bootstrap + bootstrap_used;
    bootstrap_used += (n + 15) & ~(size_t)15;
    return bootstrap_used <= sizeof bootstrap ? p : NULL;
}

static void resolve(void) {
    if (next_malloc)
        return;
    resolving = 1;
    next_malloc = dlsym(RTLD_NEXT, "malloc");
    next_calloc = dlsym(RTLD_NEXT, "calloc");
    next_realloc = dlsym(RTLD_NEXT, "realloc");
    next_free = dlsym(RTLD_NEXT, "free");
    next_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    table = mmap(NULL, (size_t)SLOTS * sizeof(Entry), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    resolving = 0;
}

static void lock(void) {
    while (__sync_lock_test_and_set(&table_lock, 1))
        ;
}
static void unlock(void) { __sync_lock_release(&table_lock); }

static uint32_t slot_of(uintptr_t p) {
    return (uint32_t)(((p >> 4) * 0x9E3779B97F4A7C15ull) >> 40) & (SLOTS - 1);
}

static uint64_t glibc_chunk(uint64_t n) {
    uint64_t chunk = (n + 8 + 15) & ~(uint64_t)15;
    return chunk < 32 ? 32 : chunk;
}

static void track(void *p, size_t n) {
    if (!p)
        return;
    uint64_t usable = next_usable_size(p);
    lock();
    uint32_t i = slot_of((uintptr_t)p);
    while (table[i].ptr)
        i = (i + 1) & (SLOTS - 1);
    table[i] = (Entry){(uintptr_t)p, n, usable};
    live_requested += n;
    live_usable += usable;
    live_glibc += glibc_chunk(n);
    if (live_requested > peak_requested) {
        peak_requested = live_requested;
        usable_at_peak = live_usable;
        glibc_at_peak = live_glibc;
    }
    unlock();
}

static void untrack(void *p) {
    if (!p)
        return;
    lock();
    uint32_t i = slot_of((uintptr_t)p);
    while (table[i].ptr && table[i].ptr != (uintptr_t)p)
        i = (i + 1) & (SLOTS - 1);
    if (!table[i].ptr) {
        unlock();
        return;
    }
    live_requested -= table[i].requested;
    live_usable -= table[i].usable;
    live_glibc -= glibc_chunk(table[i].requested);
    /* Backward-shift deletion keeps every probe chain unbroken. */
    uint32_t j = i;
    for (;;) {
        table[i].ptr = 0;
        for (;;) {
            j = (j + 1) & (SLOTS - 1);
            if (!table[j].ptr) {
                unlock();
                return;
            }
            uint32_t home = slot_of(table[j].ptr);
            int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        table[i] = table[j];
        i = j;
    }
}

void *malloc(size_t n) {
    if (resolving)
        return from_bootstrap(n);
    resolve();
    void *p = next_malloc(n);
    track(p, n);
    return p;
}

void *calloc(size_t count, size_t size) {
    if (resolving) {
        void *p = from_bootstrap(count * size);
        if (p)
            memset(p, 0, count * size);
        return p;
    }
    resolve();
    void *p = next_calloc(count, size);
    track(p, count * size);
    return p;
}

void *realloc(void *old, size_t n) {
    resolve();
    untrack(old);
    void *p = next_realloc(old, n);
    if (p)
        track(p, n);
    else if (old && n)
        track(old, next_usable_size(old)); /* failed: the old block stays */
    return p;
}

void free(void *p) {
    if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap)
        return;
    resolve();
    untrack(p);
    next_free(p);
}

__attribute__((destructor)) static void report(void) {
    if (peak_requested == 0)
        return;
    char line[256];
    double mib = 1048576.0;
    int len = snprintf(line, sizeof line,
                       "ROUNDING peak requested %.2f MiB, usable %.2f MiB (+%.1f%%), glibc chunks %.2f MiB (+%.1f%%)\n",
                       peak_requested / mib, usable_at_peak / mib,
                       100.0 * (usable_at_peak - peak_requested) / peak_requested, glibc_at_peak / mib,
                       100.0 * (glibc_at_peak - peak_requested) / peak_requested);
    if (len > 0)
        write(2, line, (size_t)len);
}
