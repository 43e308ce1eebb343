/*
 * Secrets (CHECKLIST B26), observed from outside: the raw word a free
 * block holds (its encoded free-list link).
 *
 *   hardened_secrets run    one line "links P Q W" for a fresh page
 *   hardened_secrets fork   the same line from the parent and from a fork child
 *
 * Two blocks of a size class nobody used before are allocated and freed
 * (Q then P), and W is the first word of P: the link to Q. The default
 * library stores Q itself, the hardened one an encoding under a per-page key.
 * Run twice with ASLR off, the default library prints the same line; the
 * hardened one must not (keys come from getrandom). In the fork child, a
 * page made after fork must be keyed from a reseeded secret: its line must
 * differ from the parent's, although the two heaps are identical copies.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char stdout_buffer[4096];

static void links(const char *who) {
    /* 1000 B: the default library links free blocks up to 1 KiB through
     * the blocks (above, its owner's frees go to a free index instead). */
    void *p = malloc(1000), *q = malloc(1000);
    free(q);
    free(p);
    uintptr_t word;
    memcpy(&word, p, sizeof word);
    printf("%s links %lx %lx %lx\n", who, (unsigned long)(uintptr_t)p, (unsigned long)(uintptr_t)q,
           (unsigned long)word);
    fflush(stdout);
}

int main(int argc, char **argv) {
    setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
    free(malloc(64)); /* the process is set up */
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            links("child");
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        links("parent");
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }
    links("run");
    return 0;
}
