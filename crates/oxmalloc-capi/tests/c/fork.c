/*
 * fork while threads allocate (CHECKLIST E37/E38): 4 threads churn
 * malloc/realloc/free with content checks while the main thread forks
 * FORKS times. Each child allocates every size class up to 64 KiB and some
 * large sizes, frees blocks the parent made (some of them cached by other
 * threads' heaps), checks contents, starts and joins a thread, and exits
 * with exit(0) within an alarm. The parent checks every child's status.
 * Prints "fork: N children ok" and exits 0, or explains and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define FORKS 50
#define SLOTS 512

static atomic_int stop;
static atomic_long churned;

/* Blocks shared with the children: made by the worker threads. */
static unsigned char *shared_blocks[THREADS][SLOTS];
static size_t shared_sizes[THREADS][SLOTS];
static pthread_mutex_t shared_lock[THREADS];

static unsigned long rng(unsigned long *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t random_size(unsigned long *s) {
    unsigned long r = rng(s);
    switch (r % 16) {
    case 0: return (size_t)(r >> 8) % (1u << 20) + 1; /* large */
    case 1: case 2: return (size_t)(r >> 8) % 65536 + 1;
    default: return (size_t)(r >> 8) % 512 + 1;
    }
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seed = 0x9E3779B97F4A7C15ul * (unsigned long)(id + 1);
    while (!atomic_load(&stop)) {
        int slot = (int)(rng(&seed) % SLOTS);
        pthread_mutex_lock(&shared_lock[id]);
        unsigned char *old = shared_blocks[id][slot];
        size_t old_size = shared_sizes[id][slot];
        if (old != NULL) {
            for (size_t i = 0; i < old_size; i += 61)
                if (old[i] != (unsigned char)(slot + i)) {
                    fprintf(stderr, "parent: block %p (%zu) corrupted at %zu\n", (void *)old, old_size, i);
                    abort();
                }
        }
        size_t size = random_size(&seed);
        unsigned char *p;
        if (old != NULL && rng(&seed) % 4 == 0) {
            p = realloc(old, size);
            if (p == NULL) abort();
        } else {
            free(old);
            p = malloc(size);
            if (p == NULL) abort();
        }
        for (size_t i = 0; i < size; i += 61) p[i] = (unsigned char)(slot + i);
        shared_blocks[id][slot] = p;
        shared_sizes[id][slot] = size;
        pthread_mutex_unlock(&shared_lock[id]);
        atomic_fetch_add(&churned, 1);
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) free(malloc((size_t)(i % 700) + 1));
    return malloc(77);
}

static int child_main(void) {
    alarm(20); /* a deadlock in the child ends it with SIGALRM */
    /* Every size class up to 64 KiB (steps of 8 cover every class up to 1 KiB, then 1/8 of each power of
       two, a superset of the classes there). */
    size_t sizes[400];
    int n = 0;
    for (size_t s = 8; s <= 1024; s += 8) sizes[n++] = s;
    for (size_t base = 1024; base < 65536; base *= 2)
        for (int q = 1; q <= 8; q++) sizes[n++] = base + base / 8 * q;
    size_t large[] = {100000, 300000, 1u << 20, 5u << 20, 17u << 20};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) sizes[n++] = large[i];
    unsigned char *blocks[400];
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(sizes[i]);
        if (blocks[i] == NULL) {
            fprintf(stderr, "child: malloc(%zu) failed\n", sizes[i]);
            return 1;
        }
        memset(blocks[i], i & 0xff, sizes[i]);
    }
    /* The parent's blocks: free a third of them. A worker that held its
     * lock at fork time may have left a slot half-updated: skip its blocks. */
    for (int t = 0; t < THREADS; t++) {
        if (pthread_mutex_trylock(&shared_lock[t]) != 0) continue;
        for (int s = 0; s < SLOTS; s += 3) {
            unsigned char *p = shared_blocks[t][s];
            if (p == NULL) continue;
            free(p);
            shared_blocks[t][s] = NULL;
        }
        pthread_mutex_unlock(&shared_lock[t]);
    }
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < sizes[i]; j += 97)
            if (blocks[i][j] != (unsigned char)(i & 0xff)) {
                fprintf(stderr, "child: block of %zu corrupted\n", sizes[i]);
                return 1;
            }
        free(blocks[i]);
    }
    pthread_t th;
    void *ret = NULL;
    if (pthread_create(&th, NULL, child_thread, NULL) != 0 || pthread_join(th, &ret) != 0 || ret == NULL) {
        fprintf(stderr, "child: thread failed\n");
        return 1;
    }
    free(ret);
    return 0;
}

int main(void) {
    for (int t = 0; t < THREADS; t++) pthread_mutex_init(&shared_lock[t], NULL);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t);
    int ok = 0;
    for (int f = 0; f < FORKS; f++) {
        /* Let the workers run a little between forks. */
        long before = atomic_load(&churned);
        while (atomic_load(&churned) < before + 200) sched_yield();
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) exit(child_main());
        int status = 0;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else if (WIFSIGNALED(status)) {
            printf("child %d killed by signal %d%s\n", f, WTERMSIG(status),
                   WTERMSIG(status) == SIGALRM ? " (hung: deadlock after fork?)" : "");
        } else {
            printf("child %d exited with %d\n", f, WEXITSTATUS(status));
        }
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        for (int s = 0; s < SLOTS; s++) free(shared_blocks[t][s]);
    printf("fork: %d children ok of %d, %ld operations in the parent\n", ok, FORKS, atomic_load(&churned));
    return ok == FORKS ? 0 : 1;
}
