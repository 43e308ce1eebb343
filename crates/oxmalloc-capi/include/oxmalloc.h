/*
 * oxmalloc.h - the C interface of liboxmalloc.
 *
 * liboxmalloc (liboxmalloc.so / liboxmalloc.a) exports two sets of names:
 *
 *  1. The C library's own: malloc, free, calloc, realloc, reallocarray,
 *     posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 *     malloc_usable_size, cfree, malloc_trim, malloc_stats, mallopt,
 *     mallinfo, mallinfo2, glibc's __libc_* aliases and __posix_memalign,
 *     and every C++ operator new/delete. Linking the library (or preloading
 *     it with LD_PRELOAD) replaces the C allocator; those are declared by
 *     <stdlib.h>, <malloc.h> and <new>, not here.
 *
 *  2. The prefixed API below, which never clashes with the C library: use it
 *     to call oxmalloc explicitly beside another allocator, and to control it.
 *
 * Semantics are glibc's (see crates/oxmalloc-capi/README.md): NULL with
 * errno = ENOMEM on failure, ox_realloc(p, 0) frees p and returns NULL,
 * bad alignments give EINVAL, ox_free preserves errno.
 *
 * Options are read from OXMALLOC_* environment variables at start-up
 * (OXMALLOC_SHOW_STATS=1, OXMALLOC_VERBOSE=1, ...), or set with
 * ox_option_set.
 */
#ifndef OXMALLOC_H
#define OXMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OXMALLOC_VERSION_MAJOR 0
#define OXMALLOC_VERSION_MINOR 1
#define OXMALLOC_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define OX_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#define OX_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define OX_MALLOC_ATTR
#define OX_ALLOC_SIZE(...)
#endif

/* Allocation: as malloc, calloc, realloc, reallocarray, free,
 * malloc_usable_size, aligned_alloc and posix_memalign. */
OX_MALLOC_ATTR OX_ALLOC_SIZE(1) void *ox_malloc(size_t size);
OX_MALLOC_ATTR OX_ALLOC_SIZE(1, 2) void *ox_calloc(size_t count, size_t size);
OX_ALLOC_SIZE(2) void *ox_realloc(void *ptr, size_t size);
OX_ALLOC_SIZE(2, 3) void *ox_reallocarray(void *ptr, size_t count, size_t size);
void ox_free(void *ptr);
size_t ox_usable_size(const void *ptr);
OX_MALLOC_ATTR OX_ALLOC_SIZE(2) void *ox_aligned_alloc(size_t alignment, size_t size);
int ox_posix_memalign(void **out, size_t alignment, size_t size);

/* ox_realloc to a block aligned to alignment (a power of two, else NULL
 * and EINVAL): resized in place when ptr is already at that alignment and
 * its block allows, else moved to a block at that alignment (mimalloc's
 * mi_realloc_aligned; jemalloc's rallocx with MALLOCX_ALIGN). ptr NULL is
 * ox_aligned_alloc; size 0 frees ptr and returns NULL. */
OX_ALLOC_SIZE(2) void *ox_realloc_aligned(void *ptr, size_t size, size_t alignment);

/* Resizes ptr in place, never moving it, so that at least size bytes are
 * usable: ptr when it did, NULL when it cannot (the block is unchanged:
 * ox_realloc would move it) or ptr is NULL. A block above 64 KiB grows
 * into free space right after it or gives its tail back (a block above
 * 4 MiB, for a size above 4 MiB: its mapping grows where it lies or is
 * cut); smaller blocks fit any size up to their usable size (mimalloc's
 * mi_expand, jemalloc's xallocx). */
void *ox_expand(void *ptr, size_t size);

/* The largest usable size that ox_malloc(size) or ox_aligned_alloc(alignment,
 * size) gives, without allocating (at least size; 0 when nothing that large
 * can be allocated): round a buffer up to it to waste nothing (mimalloc's
 * mi_good_size, jemalloc's nallocx). Asking for exactly that many bytes
 * gives a block of exactly that usable size; malloc(size) itself may give
 * less, never more. */
size_t ox_good_size(size_t size);
size_t ox_good_size_aligned(size_t alignment, size_t size);

/* 1 when ptr points into memory that oxmalloc manages, 0 otherwise. */
int ox_is_ours(const void *ptr);

/* Returns free memory to the OS: with force non-zero all of it at once
 * (what malloc_trim does), otherwise what has waited its purge delay. */
void ox_collect(int force);

/* Prints the statistics table on stderr (what malloc_stats does). */
void ox_stats_print(void);

/* A snapshot of the statistics (bytes unless noted). */
typedef struct ox_stats_s {
    uint64_t in_spans;      /* chunk memory handed to pages and large blocks */
    uint64_t in_spans_peak;
    uint64_t huge;          /* bytes in huge blocks (own mappings) */
    uint64_t huge_peak;
    uint64_t threads;       /* threads with a heap (count) */
    uint64_t threads_peak;
    uint64_t chunks;        /* regular chunks mapped (count) */
    uint64_t purged;        /* bytes given back to the OS so far */
    uint64_t mmap_calls;    /* count */
    uint64_t munmap_calls;  /* count */
    uint64_t errors;        /* heap errors detected (count) */
    uint64_t rss;           /* resident set size of the process */
} ox_stats_t;

void ox_stats_get(ox_stats_t *out);

/* Options by name, with or without the OXMALLOC_ prefix, any case
 * ("SHOW_STATS", "OXMALLOC_PURGE_DELAY"). ox_option_get returns -1 for an
 * unknown name; ox_option_set returns 0, or -1 for an unknown name or a
 * negative value.
 *
 * Text options (PROF, a path) hold a copy of their value, of at most 255
 * bytes: ox_option_get gives 1 when one is set and 0 when not, and
 * ox_option_set refuses them (-1). ox_option_set_text copies value (NULL
 * or "": unset), so the caller's buffer may be reused at once; it returns
 * 0, or -1 (the option keeping its value) for an unknown name, an option
 * that is not a text option, or a value over 255 bytes (with a warning).
 * ox_option_get_text copies the value into buf like snprintf (at most
 * len - 1 bytes and a NUL) and returns its whole length (0: unset), or -1
 * for an unknown name or an option that is not a text option. PROF set
 * after start-up is the path of ox_prof_dump(NULL); the profile written
 * at exit goes where PROF named at start-up. */
long long ox_option_get(const char *name);
int ox_option_set(const char *name, long long value);
int ox_option_set_text(const char *name, const char *value);
long long ox_option_get_text(const char *name, char *buf, size_t len);

/* Statistics as one JSON object (the fields of oxmalloc::Stats::json():
 * "allocated_bytes": {"current", "peak", "total"}, "allocated_blocks",
 * "reserved_bytes", "process": {"rss", ...}, "classes": [...], ...).
 * Like snprintf: writes at most len - 1 bytes and a NUL into buf, and
 * returns the length of the whole text (without the NUL); call with
 * (NULL, 0) to get the length. Does not allocate. */
size_t ox_stats_json(char *buf, size_t len);

/* First-class heaps.
 *
 * A heap groups allocations so that they can be freed all at once
 * (ox_heap_destroy) or handed back to the thread's default heap
 * (ox_heap_delete). A heap belongs to the thread that created it: only
 * that thread may allocate from it (ox_heap_malloc/calloc/realloc/
 * aligned_alloc), visit it, destroy or delete it. Its blocks are ordinary
 * blocks: any thread frees them with ox_free or free (and resizes them
 * with ox_realloc or realloc) until the heap is destroyed.
 *
 * Errors as the malloc family: NULL with errno = ENOMEM when out of
 * memory; a NULL heap gives NULL with errno = EINVAL. */
typedef struct ox_heap_s ox_heap_t;

/* A new heap for the calling thread; NULL (ENOMEM) when out of memory. */
ox_heap_t *ox_heap_new(void);
/* malloc, calloc (overflowing product: NULL, ENOMEM) and aligned_alloc
 * (alignment 0 or not a power of two: NULL, EINVAL) from a heap. */
OX_MALLOC_ATTR OX_ALLOC_SIZE(2) void *ox_heap_malloc(ox_heap_t *heap, size_t size);
OX_MALLOC_ATTR OX_ALLOC_SIZE(2, 3) void *ox_heap_calloc(ox_heap_t *heap, size_t count, size_t size);
OX_MALLOC_ATTR OX_ALLOC_SIZE(3) void *ox_heap_aligned_alloc(ox_heap_t *heap, size_t alignment, size_t size);
/* realloc whose moved block lands in heap: ptr NULL is
 * ox_heap_malloc(heap, size); size 0 frees ptr and returns NULL; failure:
 * NULL, ENOMEM, ptr intact. ptr may be a block of any heap. */
OX_ALLOC_SIZE(3) void *ox_heap_realloc(ox_heap_t *heap, void *ptr, size_t size);
/* Frees every block of the heap at once, then the heap: pointers into it
 * dangle afterwards, on every thread. NULL: nothing. */
void ox_heap_destroy(ox_heap_t *heap);
/* Frees the heap only: its live blocks stay valid (they join the thread's
 * default heap) and are freed as usual. NULL: nothing. */
void ox_heap_delete(ox_heap_t *heap);
/* Calls visit(block, usable_size, arg) for every live block of the heap
 * until it returns false; returns whether every block was visited (false
 * for a NULL heap or visitor). visit must not allocate from the heap nor
 * free its blocks. */
bool ox_heap_visit_blocks(ox_heap_t *heap, bool (*visit)(void *block, size_t size, void *arg), void *arg);

/* Heap profiling: a sample of the live allocations with their call stacks
 * (see "Heap profiling" in crates/oxmalloc-capi/README.md).
 * OXMALLOC_PROF=path turns it on at start-up and writes the profile at
 * exit; ox_prof_start turns it on later, with about one sample per
 * sample_bytes allocated (0: OXMALLOC_PROF_SAMPLE, 512 KiB by default),
 * and returns false when the unwinder (libgcc_s) is missing; it writes
 * nothing at exit. ox_prof_dump writes the live samples to path ("%p"
 * becomes the process id; NULL: the PROF option's current path, from
 * OXMALLOC_PROF or ox_option_set_text) and returns
 * whether it did; blocks freed before the dump are not in it. Read the
 * file with `oxbench prof FILE`. */
bool ox_prof_start(size_t sample_bytes);
bool ox_prof_dump(const char *path);

/* "0.1.0" */
const char *ox_version(void);
/* "initial-exec" (default), "general-dynamic" or "pthread-key" */
const char *ox_tls_model(void);

#ifdef __cplusplus
}
#endif

#endif /* OXMALLOC_H */
