/*
 * operator new in a process without a C++ runtime: the throwing form cannot
 * throw std::bad_alloc, so liboxmalloc must print one line and abort (run by
 * tests/cxx.rs, which expects SIGABRT and the message). The nothrow form
 * must return NULL. Argument "ok": a successful new/delete pair only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    void *(*new_)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "_Znwm");
    void *(*new_nothrow)(size_t, const void *) = (void *(*)(size_t, const void *))dlsym(RTLD_DEFAULT, "_ZnwmRKSt9nothrow_t");
    void (*delete_)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "_ZdlPv");
    if (!new_ || !new_nothrow || !delete_) {
        printf("operator new/delete not exported\n");
        return 2;
    }
    if (dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv") != NULL) {
        printf("a C++ runtime is loaded: this test needs a process without one\n");
        return 2;
    }
    void *p = new_(100);
    memset(p, 1, 100);
    delete_(p);
    if (argc > 1 && strcmp(argv[1], "ok") == 0) {
        printf("new/delete ok\n");
        return 0;
    }
    volatile size_t huge = SIZE_MAX / 2;
    if (new_nothrow(huge, NULL) != NULL) {
        printf("nothrow new of SIZE_MAX/2 did not return NULL\n");
        return 3;
    }
    printf("calling operator new(SIZE_MAX/2)\n");
    fflush(stdout);
    p = new_(huge);
    printf("operator new returned %p instead of aborting\n", p);
    return 4;
}
