/* C fixture of `oxbench prof` (tests/prof.rs), run under
 * LD_PRELOAD=liboxmalloc.so with OXMALLOC_PROF set: one dominant
 * allocation site (90% of the bytes) and one minor one, still live at exit,
 * when the profile is written. Compiled with -g -O0 -fno-omit-frame-pointer. */
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

int main(void) {
    dominant_site(2304);
    minor_site(256);
    printf("allocated %d blocks\n", kept);
    return 0; /* the blocks stay live: the exit dump holds them */
}
