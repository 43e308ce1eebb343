/*
 * 2 GiB of 120-byte blocks (CHECKLIST D36): a thread allocates them, frees
 * them all, and goes idle (no allocator call); so does the main thread,
 * which only watches the resident set size. It must come back near the
 * baseline after the purge delay, without anyone calling the allocator.
 *
 *   rel_purge_big MIB SECONDS
 *
 * Prints "baseline B peak P after A (bytes)" and "purge ok" when the RSS
 * fell to at most baseline + 10% of the peak growth within SECONDS; else
 * "FAIL: ...".
 */
#include "rel_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

static size_t total;
static atomic_int freed, watched;
static size_t peak;

static void *worker(void *arg) {
    (void)arg;
    size_t count = total / 120;
    /* The pointer array is mapped directly: it is not the allocator's to purge. */
    void **ptrs = mmap(NULL, count * sizeof *ptrs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptrs == MAP_FAILED) rel_fail("mmap");
    for (size_t i = 0; i < count; i++) {
        ptrs[i] = malloc(120);
        if (ptrs[i] == NULL) rel_fail("malloc returned NULL");
        memset(ptrs[i], (int)i, 120);
    }
    peak = rel_rss();
    for (size_t i = 0; i < count; i++) free(ptrs[i]);
    munmap(ptrs, count * sizeof *ptrs);
    atomic_store(&freed, 1);
    while (!atomic_load(&watched)) usleep(10000); /* idle */
    return NULL;
}

int main(int argc, char **argv) {
    total = (size_t)(argc > 1 ? atol(argv[1]) : 2048) << 20;
    int seconds = argc > 2 ? atoi(argv[2]) : 20;
    free(malloc(1));
    size_t baseline = rel_rss();
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!atomic_load(&freed)) usleep(10000);
    size_t after = rel_rss();
    size_t limit = baseline + (peak - baseline) / 10;
    for (int i = 0; i < seconds * 20 && after > limit; i++) {
        usleep(50000);
        after = rel_rss();
    }
    atomic_store(&watched, 1);
    pthread_join(t, NULL);
    printf("baseline %zu peak %zu after %zu (bytes)\n", baseline, peak, after);
    if (peak < baseline + total / 2) rel_fail("the blocks did not take the memory they should");
    if (after > limit) rel_fail("memory did not go back to the OS while every thread was idle");
    printf("purge ok\n");
    return 0;
}
