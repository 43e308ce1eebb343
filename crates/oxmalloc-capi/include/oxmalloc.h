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
 * negative value. */
long long ox_option_get(const char *name);
int ox_option_set(const char *name, long long value);

/* "0.1.0" */
const char *ox_version(void);
/* "initial-exec" (default), "general-dynamic" or "pthread-key" */
const char *ox_tls_model(void);

#ifdef __cplusplus
}
#endif

#endif /* OXMALLOC_H */
