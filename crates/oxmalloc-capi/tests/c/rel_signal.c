/*
 * The fatal-error path from a signal handler and with memory exhausted
 * (CHECKLIST E39): it must neither allocate nor take a lock.
 *
 *   rel_signal handler   4 threads churn (taking and releasing the
 *                        allocator's locks all the time: large blocks, new
 *                        pages) while SIGALRM fires every millisecond on the
 *                        main thread, itself churning; after 200 signals the
 *                        handler frees an already freed block. The process
 *                        must die of SIGABRT with "double free of <ptr>".
 *   rel_signal exhausted RLIMIT_AS is lowered until nothing can be mapped
 *                        and every allocation fails; then a double free
 *                        must still print its line and abort.
 * Prints "ptr 0x..." first.
 */
#include "rel_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/time.h>

static void *victim;
static atomic_int signals;

static void on_alarm(int sig) {
    (void)sig;
    if (atomic_fetch_add(&signals, 1) == 200) free(victim);
}

static void *churn(void *arg) {
    unsigned long seed = 99 + (uintptr_t)arg;
    for (;;) {
        size_t r = rel_rng(&seed) % 100;
        size_t n = r < 90 ? rel_rng(&seed) % 4000 + 1 : rel_rng(&seed) % 600000 + 70000;
        void *p = malloc(n);
        if (p) ((volatile char *)p)[0] = 1;
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "handler";
    victim = malloc(48);
    free(victim);
    printf("ptr 0x%lx\n", (unsigned long)(uintptr_t)victim);
    fflush(stdout);
    if (!strcmp(mode, "exhausted")) {
        struct rlimit rl = {64u << 20, 64u << 20};
        setrlimit(RLIMIT_AS, &rl);
        /* Use up what is left: every size class's pages, then nothing. */
        int nulls = 0;
        for (int i = 0; nulls < 1000 && i < 10000000; i++) {
            if (malloc((size_t)(i % 16) * 4096 + 16) == NULL) nulls++;
        }
        free(victim);
        printf("survived\n");
        return 0;
    }
    pthread_t t;
    for (int i = 0; i < 4; i++) pthread_create(&t, NULL, churn, (void *)(intptr_t)i);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* the workers inherit nothing: they started before */
    pthread_sigmask(SIG_UNBLOCK, &block, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    churn(NULL);
    return 0;
}
