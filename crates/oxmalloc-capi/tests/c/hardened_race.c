/*
 * Double free racing from two threads (CHECKLIST B17).
 *
 *   hardened_race SIZE [SKEW]
 *
 * A third thread allocates the block, so neither racing thread owns its
 * page (the form the hardened mode guarantees: both frees are remote and
 * the trailer is swapped atomically; see the "Known limit" in secure.rs).
 * Two threads wait on a spin barrier and free the same block at once. The
 * hardened library must print exactly one "double free" line and abort.
 * SKEW (default 0) delays the second racer by that many spin iterations, to
 * land its free inside the first one's.
 * Prints "ptr 0x..." (the block) first; "both frees returned" if it survives.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char stdout_buffer[4096];
static void *block;
static size_t size;
static atomic_int arrived;
static atomic_int done;
static unsigned long skew;

static void *allocate(void *arg) {
    (void)arg;
    block = malloc(size);
    memset(block, 0x33, size);
    return NULL;
}

static void *racer(void *arg) {
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&arrived) < 2) {
    }
    if (arg != NULL)
        for (volatile unsigned long i = 0; i < skew; i++) {
        }
    free(block);
    atomic_fetch_add(&done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
    size = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
    skew = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;
    pthread_t owner, a, b;
    void *keep = malloc(size); /* the main thread's own traffic in the class */
    pthread_create(&owner, NULL, allocate, NULL);
    pthread_join(owner, NULL);
    printf("ptr 0x%lx\n", (unsigned long)(uintptr_t)block);
    fflush(stdout);
    pthread_create(&a, NULL, racer, NULL);
    pthread_create(&b, NULL, racer, &skew);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    free(keep);
    printf("both frees returned (%d)\n", atomic_load(&done));
    return 0;
}
