/*
 * A late dlopen of liboxmalloc.so (argv[1]) by a running, threaded
 * program: the prefixed API must work from the main thread and from
 * threads that existed before the library was loaded. With the
 * initial-exec TLS model this relies on the C library's static-TLS
 * reserve (liboxmalloc needs 8 bytes); the general-dynamic build has no
 * such limit. The process's malloc stays the C library's (symbols bound
 * before the dlopen are not rebound).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*ox_malloc)(size_t);
static void (*ox_free)(void *);
static int (*ox_is_ours)(const void *);
static pthread_barrier_t loaded;

static int churn(void) {
    void *keep[100] = {0};
    for (int i = 0; i < 50000; i++) {
        int slot = i % 100;
        ox_free(keep[slot]);
        keep[slot] = ox_malloc((size_t)(i % 5000) + 1);
        if (keep[slot] == NULL || !ox_is_ours(keep[slot])) return 0;
        memset(keep[slot], 1, (size_t)(i % 5000) + 1);
    }
    for (int i = 0; i < 100; i++) ox_free(keep[i]);
    return 1;
}

static void *early_thread(void *arg) {
    (void)arg;
    pthread_barrier_wait(&loaded); /* started before the dlopen */
    return (void *)(long)churn();
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pthread_barrier_init(&loaded, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, early_thread, NULL);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    ox_malloc = (void *(*)(size_t))dlsym(lib, "ox_malloc");
    ox_free = (void (*)(void *))dlsym(lib, "ox_free");
    ox_is_ours = (int (*)(const void *))dlsym(lib, "ox_is_ours");
    const char *(*tls_model)(void) = (const char *(*)(void))dlsym(lib, "ox_tls_model");
    if (!ox_malloc || !ox_free || !ox_is_ours || !tls_model) {
        printf("missing symbols\n");
        return 1;
    }
    pthread_barrier_wait(&loaded);
    int ok = churn();
    void *ret = NULL;
    pthread_join(th, &ret);
    if (!ok || ret == NULL) {
        printf("allocation through the dlopen'ed library failed\n");
        return 1;
    }
    printf("dlopen ok (tls %s)\n", tls_model());
    return 0;
}
