/*
 * fork with hardened checks (CHECKLIST E38): blocks made by worker threads
 * (some still cached in those threads' heaps) are freed by a fork child, and
 * the hardened checks still work in the child.
 *
 *   rel_fork free       the child frees every block the workers made, checks
 *                       contents, allocates every size class, exits 0
 *   rel_fork double     the child frees one of those blocks twice: it must
 *                       die of SIGABRT with "double free of <ptr>"
 *   rel_fork overflow   the child overflows one of those blocks by one byte
 *                       and frees it: "heap buffer overflow past the block at <ptr>"
 * The parent prints "ptr 0x..." (the block the child misuses) and
 * "child status S signal G", then exits 0.
 */
#include "rel_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define WORKERS 4
#define BLOCKS 300

static unsigned char *blocks[WORKERS][BLOCKS];
static size_t sizes[WORKERS][BLOCKS];
static atomic_int made, stop;

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seed = 42 + (unsigned long)id;
    for (int i = 0; i < BLOCKS; i++) {
        size_t n = rel_rng(&seed) % 100 == 0 ? 300000 : rel_rng(&seed) % 3000 + 1;
        blocks[id][i] = malloc(n);
        sizes[id][i] = n;
        rel_fill(blocks[id][i], n);
        free(malloc(n)); /* leaves free blocks cached in this thread's pages */
    }
    atomic_fetch_add(&made, 1);
    while (!atomic_load(&stop)) usleep(1000); /* alive at fork time, its heap busy */
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "free";
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    while (atomic_load(&made) < WORKERS) usleep(1000);
    unsigned char *victim = blocks[1][7];
    size_t victim_size = sizes[1][7];
    printf("ptr 0x%lx\n", (unsigned long)(uintptr_t)victim);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        if (!strcmp(mode, "double")) {
            free(victim);
            free(victim);
            _exit(0);
        }
        if (!strcmp(mode, "overflow")) {
            victim[victim_size] ^= 0xff;
            free(victim);
            _exit(0);
        }
        for (int w = 0; w < WORKERS; w++)
            for (int i = 0; i < BLOCKS; i++) {
                if (rel_check(blocks[w][i], sizes[w][i]) != 0) _exit(3);
                free(blocks[w][i]);
            }
        for (size_t n = 8; n <= 70000; n += n / 8 + 8) {
            unsigned char *p = malloc(n);
            if (p == NULL) _exit(4);
            rel_fill(p, n);
            if (rel_check(p, n) != 0) _exit(5);
            free(p);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child status %d signal %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < BLOCKS; i++) {
            if (rel_check(blocks[w][i], sizes[w][i]) != 0) rel_fail("parent: block corrupted");
            free(blocks[w][i]);
        }
    printf("fork ok\n");
    return 0;
}
