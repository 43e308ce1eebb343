/* C fixture of `oxbench prof` (tests/prof.rs), run under
 * LD_PRELOAD=liboxmalloc.so: one dominant allocation site (90% of the
 * bytes) and one minor one, still live when the profile is written.
 * Compiled with -g -O0 -fno-omit-frame-pointer -ldl.
 *
 * No argument: OXMALLOC_PROF is set and the profile is written at exit.
 * With PROFILE as argument: sampling is turned on with ox_prof_start and
 * the profile written with ox_prof_dump (looked up with dlsym: the program
 * is not linked with liboxmalloc). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096

static void *keep[4096];
static int kept;

__attribute__((noinline)) void dominant_site(int blocks) {
    for (int i = 0; i < blocks; i++) {
        void *p = malloc(BLOCK);
        memset(p, i, BLOCK);
        keep[kept++] = p;
    }
}

__attribute__((noinline)) void minor_site(int blocks) {
    for (int i = 0; i < blocks; i++) {
        void *p = malloc(BLOCK);
        memset(p, i * 3, BLOCK);
        keep[kept++] = p;
    }
}

int main(int argc, char **argv) {
    bool (*dump)(const char *) = NULL;
    if (argc > 1) {
        bool (*start)(size_t) = (bool (*)(size_t))dlsym(RTLD_DEFAULT, "ox_prof_start");
        dump = (bool (*)(const char *))dlsym(RTLD_DEFAULT, "ox_prof_dump");
        if (!start || !dump) {
            fprintf(stderr, "ox_prof_start/ox_prof_dump not found: is liboxmalloc.so preloaded?\n");
            return 2;
        }
        if (!start(16384)) {
            fprintf(stderr, "ox_prof_start failed\n");
            return 1;
        }
    }
    dominant_site(2304);
    minor_site(256);
    printf("allocated %d blocks\n", kept);
    if (dump && !dump(argv[1])) {
        fprintf(stderr, "ox_prof_dump(%s) failed\n", argv[1]);
        return 1;
    }
    return 0; /* the blocks stay live: an exit dump holds them */
}
