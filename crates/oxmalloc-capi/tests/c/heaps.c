/*
 * First-class heaps, ox_stats_json and the profiling calls through the C
 * API (run by tests/heaps.rs, linked with -loxmalloc so that free() is
 * oxmalloc's too).
 *
 * Prints "ok NAME" per check, "FAIL NAME: ..." for a failed one, and
 * "JSON LABEL {...}" lines that the Rust test parses with serde_json;
 * the last line is "heaps: N checks, F failed". argv[1] is a directory
 * for the profile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oxmalloc.h"

static int checks, failures;

#define CHECK(name, cond, ...)                                                 \
    do {                                                                       \
        checks++;                                                              \
        if (cond) {                                                            \
            printf("ok %s\n", name);                                           \
        } else {                                                               \
            failures++;                                                        \
            printf("FAIL %s: ", name);                                         \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
        fflush(stdout);                                                        \
    } while (0)

static char json[1 << 16];

/* The "current" figure of "allocated_bytes" in the statistics JSON. */
static unsigned long long allocated_now(void) {
    size_t n = ox_stats_json(json, sizeof json);
    if (n >= sizeof json) {
        return 0;
    }
    const char *key = strstr(json, "\"allocated_bytes\":{\"current\":");
    if (!key) {
        return 0;
    }
    return strtoull(key + strlen("\"allocated_bytes\":{\"current\":"), NULL, 10);
}

static void print_json(const char *label) {
    size_t n = ox_stats_json(json, sizeof json);
    if (n < sizeof json) {
        printf("JSON %s %s\n", label, json);
    } else {
        printf("JSON %s (too long: %zu)\n", label, n);
    }
    fflush(stdout);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed + i * 7);
    }
}

static int holds(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed + i * 7)) {
            return 0;
        }
    }
    return 1;
}

/* ---- visiting ---- */

#define MAX_BLOCKS 512

struct seen {
    void *blocks[MAX_BLOCKS];
    size_t sizes[MAX_BLOCKS];
    int count;
    int foreign; /* visited blocks that are not in `expect` */
    int undersized;
    int stop_after; /* 0: never stop */
    void **expect;
    size_t *expect_size;
    int expect_count;
};

static bool visitor(void *block, size_t size, void *arg) {
    struct seen *s = arg;
    int found = 0;
    for (int i = 0; i < s->expect_count; i++) {
        if (s->expect[i] == block) {
            found = 1;
            if (size < s->expect_size[i]) {
                s->undersized++;
            }
        }
    }
    if (!found) {
        s->foreign++;
    }
    if (s->count < MAX_BLOCKS) {
        s->blocks[s->count] = block;
        s->sizes[s->count] = size;
    }
    s->count++;
    return s->stop_after == 0 || s->count < s->stop_after;
}

static struct seen visit(ox_heap_t *heap, void **expect, size_t *sizes, int n, int stop_after, bool *all) {
    struct seen s;
    memset(&s, 0, sizeof s);
    s.expect = expect;
    s.expect_size = sizes;
    s.expect_count = n;
    s.stop_after = stop_after;
    *all = ox_heap_visit_blocks(heap, visitor, &s);
    return s;
}

/* ---- cross-thread frees ---- */

struct to_free {
    void **blocks;
    int n;
};

static void *free_them(void *arg) {
    struct to_free *t = arg;
    for (int i = 0; i < t->n; i++) {
        if (i % 2 == 0) {
            free(t->blocks[i]);
        } else {
            ox_free(t->blocks[i]);
        }
        t->blocks[i] = NULL;
    }
    return NULL;
}

/* Kept out of line, so that the profile names it. */
__attribute__((noinline)) static void *profiled_site(size_t size) {
    void *p = malloc(size);
    if (p) {
        memset(p, 1, size);
    }
    return p;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";

    /* ---- basic calls, C semantics ---- */
    ox_heap_t *heap = ox_heap_new();
    CHECK("new", heap != NULL, "ox_heap_new returned NULL");

    unsigned char *a = ox_heap_malloc(heap, 100);
    CHECK("malloc", a != NULL && ((uintptr_t)a % 16) == 0 && ox_usable_size(a) >= 100, "%p", (void *)a);
    fill(a, 100, 1);

    unsigned char *z = ox_heap_calloc(heap, 1000, 8);
    int zero = z != NULL;
    for (size_t i = 0; z && i < 8000; i++) {
        zero &= z[i] == 0;
    }
    CHECK("calloc zeroed", zero, "%p", (void *)z);

    errno = 0;
    void *over = ox_heap_calloc(heap, SIZE_MAX / 2, 3);
    CHECK("calloc overflow", over == NULL && errno == ENOMEM, "%p errno %d", over, errno);

    void *empty = ox_heap_calloc(heap, 0, 8);
    CHECK("calloc 0", empty != NULL, "NULL");

    void *big = ox_heap_malloc(heap, 3 * 1024 * 1024);
    CHECK("malloc large", big != NULL && ox_usable_size(big) >= 3 * 1024 * 1024, "%p", big);

    errno = 0;
    void *huge_fail = ox_heap_malloc(heap, SIZE_MAX - 4096);
    CHECK("malloc absurd", huge_fail == NULL && errno == ENOMEM, "%p errno %d", huge_fail, errno);

    void *al = ox_heap_aligned_alloc(heap, 4096, 100);
    CHECK("aligned 4096", al != NULL && ((uintptr_t)al % 4096) == 0, "%p", al);
    void *al2 = ox_heap_aligned_alloc(heap, 1 << 20, 5000);
    CHECK("aligned 1 MiB", al2 != NULL && ((uintptr_t)al2 % (1 << 20)) == 0, "%p", al2);
    errno = 0;
    void *bad = ox_heap_aligned_alloc(heap, 24, 100);
    CHECK("aligned bad", bad == NULL && errno == EINVAL, "%p errno %d", bad, errno);
    errno = 0;
    bad = ox_heap_aligned_alloc(heap, 0, 100);
    CHECK("aligned 0", bad == NULL && errno == EINVAL, "%p errno %d", bad, errno);

    errno = 0;
    void *null_heap = ox_heap_malloc(NULL, 10);
    CHECK("NULL heap", null_heap == NULL && errno == EINVAL, "%p errno %d", null_heap, errno);

    unsigned char *r = ox_heap_realloc(heap, NULL, 40);
    CHECK("realloc NULL", r != NULL, "NULL");
    fill(r, 40, 9);
    r = ox_heap_realloc(heap, r, 100000);
    CHECK("realloc grow", r != NULL && holds(r, 40, 9), "%p", (void *)r);
    fill(r, 100000, 3);
    r = ox_heap_realloc(heap, r, 50);
    CHECK("realloc shrink", r != NULL && holds(r, 50, 3), "%p", (void *)r);
    void *gone = ox_heap_realloc(heap, r, 0);
    CHECK("realloc 0 frees", gone == NULL, "%p", gone);
    /* A block of the default heap moves into this one. */
    unsigned char *d = malloc(30);
    fill(d, 30, 5);
    d = ox_heap_realloc(heap, d, 300000);
    CHECK("realloc from default heap", d != NULL && holds(d, 30, 5), "%p", (void *)d);
    errno = 0;
    void *keep = ox_heap_realloc(heap, d, SIZE_MAX - 4096);
    CHECK("realloc failure keeps the block", keep == NULL && errno == ENOMEM && holds(d, 30, 5), "%p errno %d", keep,
          errno);

    /* ---- visiting: exactly the live blocks ---- */
    {
        void *expect[] = {a, z, empty, big, al, al2, d};
        size_t sizes[] = {100, 8000, 0, 3 * 1024 * 1024, 100, 5000, 300000};
        bool all = false;
        struct seen s = visit(heap, expect, sizes, 7, 0, &all);
        CHECK("visit all", all && s.count == 7 && s.foreign == 0 && s.undersized == 0,
              "all %d count %d foreign %d undersized %d", all, s.count, s.foreign, s.undersized);
        /* Every expected block seen exactly once. */
        int once = 1;
        for (int i = 0; i < 7; i++) {
            int n = 0;
            for (int j = 0; j < s.count && j < MAX_BLOCKS; j++) {
                n += s.blocks[j] == expect[i];
            }
            once &= n == 1;
        }
        CHECK("visit each once", once, "a block seen 0 or 2+ times");
        s = visit(heap, expect, sizes, 7, 3, &all);
        CHECK("visit stops", !all && s.count == 3, "all %d count %d", all, s.count);
        CHECK("visit NULL visitor", !ox_heap_visit_blocks(heap, NULL, NULL), "true");
    }
    ox_free(a);
    free(z);
    ox_free(empty);
    free(big);
    free(al);
    ox_free(al2);
    free(d);
    {
        bool all = false;
        struct seen s = visit(heap, NULL, NULL, 0, 0, &all);
        CHECK("visit after freeing everything", all && s.count == 0, "count %d", s.count);
    }

    /* ---- frees from another thread ---- */
    {
        enum { N = 200 };
        void *blocks[N];
        size_t sizes[N];
        for (int i = 0; i < N; i++) {
            sizes[i] = (i % 3 == 0) ? 40 : (i % 3 == 1) ? 700 : 20000;
            blocks[i] = ox_heap_malloc(heap, sizes[i]);
            fill(blocks[i], sizes[i], (unsigned)i);
        }
        /* The thread frees the first half. */
        struct to_free t = {blocks, N / 2};
        pthread_t th;
        pthread_create(&th, NULL, free_them, &t);
        pthread_join(th, NULL);
        int intact = 1;
        for (int i = N / 2; i < N; i++) {
            intact &= holds(blocks[i], sizes[i], (unsigned)i);
        }
        CHECK("remote frees leave the rest intact", intact, "a live block changed");
        bool all = false;
        struct seen s = visit(heap, blocks + N / 2, sizes + N / 2, N - N / 2, 0, &all);
        CHECK("visit after remote frees", all && s.count == N - N / 2 && s.foreign == 0,
              "count %d (expected %d), foreign %d", s.count, N - N / 2, s.foreign);
        /* The heap reuses the remotely freed memory. */
        for (int i = 0; i < N / 2; i++) {
            blocks[i] = ox_heap_malloc(heap, sizes[i]);
        }
        s = visit(heap, blocks, sizes, N, 0, &all);
        CHECK("visit after reallocating", all && s.count == N && s.foreign == 0, "count %d, foreign %d", s.count,
              s.foreign);
        for (int i = 0; i < N; i++) {
            free(blocks[i]);
        }
    }
    ox_heap_destroy(heap);

    /* ---- destroy frees live blocks ---- */
    {
        ox_collect(1);
        print_json("before-destroy");
        unsigned long long before = allocated_now();
        ox_heap_t *h = ox_heap_new();
        size_t total = 0;
        for (int i = 0; i < 2000; i++) {
            size_t size = 64 + (size_t)(i % 50) * 100;
            void *p = ox_heap_malloc(h, size);
            memset(p, 0xab, size);
            total += size;
        }
        void *large = ox_heap_malloc(h, 2 << 20);
        void *huge = ox_heap_malloc(h, 8 << 20);
        memset(large, 1, 2 << 20);
        memset(huge, 1, 8 << 20);
        total += (2 << 20) + (8 << 20);
        print_json("with-live-blocks");
        unsigned long long during = allocated_now();
        CHECK("allocated grows", during >= before + total, "before %llu during %llu total %zu", before, during, total);
        ox_heap_destroy(h);
        ox_collect(1);
        print_json("after-destroy");
        unsigned long long after = allocated_now();
        CHECK("destroy returns the blocks", after <= before + 65536, "before %llu after %llu", before, after);
        printf("FIGURES before %llu during %llu after %llu\n", before, during, after);
    }

    /* ---- delete keeps blocks valid ---- */
    {
        enum { N = 300 };
        void *blocks[N];
        ox_heap_t *h = ox_heap_new();
        for (int i = 0; i < N; i++) {
            blocks[i] = ox_heap_malloc(h, 16 + (size_t)i * 13);
            fill(blocks[i], 16 + (size_t)i * 13, (unsigned)i + 77);
        }
        void *large = ox_heap_malloc(h, 1 << 20);
        fill(large, 1 << 20, 3);
        ox_heap_delete(h);
        /* Churn the default heap: reused memory would overwrite the blocks. */
        for (int round = 0; round < 4; round++) {
            void *tmp[N];
            for (int i = 0; i < N; i++) {
                tmp[i] = malloc(16 + (size_t)i * 13);
                memset(tmp[i], 0xee, 16 + (size_t)i * 13);
            }
            for (int i = 0; i < N; i++) {
                free(tmp[i]);
            }
        }
        int intact = holds(large, 1 << 20, 3);
        for (int i = 0; i < N; i++) {
            intact &= holds(blocks[i], 16 + (size_t)i * 13, (unsigned)i + 77);
            intact &= ox_usable_size(blocks[i]) >= 16 + (size_t)i * 13;
        }
        CHECK("delete keeps blocks", intact, "a block changed after ox_heap_delete");
        /* They are ordinary blocks now: resize and free them. */
        for (int i = 0; i < N; i += 2) {
            blocks[i] = realloc(blocks[i], 5000);
        }
        for (int i = 0; i < N; i++) {
            free(blocks[i]);
        }
        free(large);
        ox_heap_destroy(NULL);
        ox_heap_delete(NULL);
        CHECK("delete blocks freed", 1, "");
    }

    /* ---- ox_stats_json ---- */
    {
        size_t need = ox_stats_json(NULL, 0);
        CHECK("json length", need > 100, "%zu", need);
        char small[10];
        memset(small, 'x', sizeof small);
        size_t n = ox_stats_json(small, sizeof small);
        CHECK("json truncates", n > 100 && small[9] == 0 && strlen(small) == 9 && small[0] == '{', "n %zu small %.10s",
              n, small);
        char one[1] = {'x'};
        ox_stats_json(one, 1);
        CHECK("json 1-byte buffer", one[0] == 0, "%d", one[0]);
        n = ox_stats_json(json, sizeof json);
        CHECK("json full", n < sizeof json && strlen(json) == n && json[0] == '{' && json[n - 1] == '}', "n %zu", n);
        print_json("final");
    }

    /* ---- profiling ---- */
    {
        CHECK("prof dump without path", !ox_prof_dump(NULL), "true");
        bool started = ox_prof_start(4096);
        CHECK("prof start", started, "false");
        enum { N = 400 };
        void *kept[N];
        for (int i = 0; i < N; i++) {
            kept[i] = profiled_site(10000);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/heaps.%%p.heap", dir);
        CHECK("prof dump", ox_prof_dump(path), "false");
        char expanded[4096];
        snprintf(expanded, sizeof expanded, "%s/heaps.%d.heap", dir, (int)getpid());
        FILE *f = fopen(expanded, "r");
        char line[256] = "";
        if (f) {
            if (!fgets(line, sizeof line, f)) {
                line[0] = 0;
            }
            fclose(f);
        }
        CHECK("prof file", strncmp(line, "heap profile: ", 14) == 0, "%s: %s", expanded, line);
        printf("PROFILE %s\n", expanded);
        for (int i = 0; i < N; i++) {
            free(kept[i]);
        }
        CHECK("prof dump to a bad path", !ox_prof_dump("/nonexistent-dir/x.heap"), "true");
    }

    printf("heaps: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
