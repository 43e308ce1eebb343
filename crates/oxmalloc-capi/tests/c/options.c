/*
 * Options through the C API: ox_option_get, ox_option_set,
 * ox_option_set_text and ox_option_get_text (run by tests/options.rs,
 * linked with liboxmalloc).
 *
 * Usage: options DIR api   numeric and text options set from here (the
 *                          parent clears every OXMALLOC_* variable);
 *        options DIR env   OXMALLOC_PROF=DIR/env.%p.heap from the parent:
 *                          read back, then the environment string is
 *                          overwritten in place; the parent checks that the
 *                          profile still went to DIR/env.<pid>.heap at exit.
 *
 * Prints "ok NAME" per check, "FAIL NAME: ..." for a failed one, "PID n",
 * and last "options: N checks, F failed".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oxmalloc.h"

static int checks, failures;

#define CHECK(name, cond, ...)                                                 \
    do {                                                                       \
        checks++;                                                              \
        if (cond) {                                                            \
            printf("ok %s\n", name);                                           \
        } else {                                                               \
            failures++;                                                        \
            printf("FAIL %s: ", name);                                         \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
        fflush(stdout);                                                        \
    } while (0)

static const char *dir;

/* The PROF value as text ("" when unset), in a static buffer. */
static const char *prof_text(long long *len) {
    static char buf[512];
    memset(buf, '#', sizeof buf);
    *len = ox_option_get_text("PROF", buf, sizeof buf);
    return buf;
}

/* Sets PROF from a buffer on this frame's stack, then wipes the buffer:
 * the option must have kept a copy. */
__attribute__((noinline)) static int set_prof_from_stack(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = ox_option_set_text("PROF", path);
    memset(path, 'Z', sizeof path - 1);
    path[sizeof path - 1] = 0;
    /* Keep the wipe: the compiler may not drop stores to a buffer it
     * believes dead. */
    __asm__ volatile("" : : "r"(path) : "memory");
    return rc;
}

/* Reuses the stack where set_prof_from_stack's buffer was. */
__attribute__((noinline)) static void scribble_stack(void) {
    volatile char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = 'Y';
    }
}

__attribute__((noinline)) static void *profiled_site(size_t size) {
    void *p = malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static int file_starts_with(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    char line[256] = "";
    if (!f) {
        return 0;
    }
    if (!fgets(line, sizeof line, f)) {
        line[0] = 0;
    }
    fclose(f);
    return strncmp(line, prefix, strlen(prefix)) == 0;
}

/* Two writers switch PROF between two values while readers check that
 * every read is one of them, whole. */
static const char *race_values[2] = {"/race/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "/race/bb"};
static volatile int race_torn;

static void *race_writer(void *arg) {
    int which = (int)(intptr_t)arg;
    for (int i = 0; i < 20000; i++) {
        if (ox_option_set_text("PROF", race_values[(i + which) & 1]) != 0) {
            race_torn = 1;
        }
    }
    return NULL;
}

static void *race_reader(void *arg) {
    (void)arg;
    char buf[128];
    for (int i = 0; i < 20000; i++) {
        long long n = ox_option_get_text("PROF", buf, sizeof buf);
        if (!((n == (long long)strlen(race_values[0]) && strcmp(buf, race_values[0]) == 0) ||
              (n == (long long)strlen(race_values[1]) && strcmp(buf, race_values[1]) == 0))) {
            race_torn = 1;
        }
    }
    return NULL;
}

static void numeric_options(void) {
    CHECK("get default", ox_option_get("PURGE_DELAY") == 10, "%lld", ox_option_get("PURGE_DELAY"));
    CHECK("set", ox_option_set("purge_delay", 25) == 0, "-1");
    CHECK("get after set", ox_option_get("OXMALLOC_PURGE_DELAY") == 25, "%lld", ox_option_get("PURGE_DELAY"));
    CHECK("set with prefix", ox_option_set("oxmalloc_Purge_Delay", 30) == 0, "-1");
    CHECK("get after prefixed set", ox_option_get("purge_delay") == 30, "%lld", ox_option_get("PURGE_DELAY"));
    CHECK("set negative", ox_option_set("PURGE_DELAY", -5) == -1, "accepted");
    CHECK("negative kept nothing", ox_option_get("PURGE_DELAY") == 30, "%lld", ox_option_get("PURGE_DELAY"));
    CHECK("set unknown", ox_option_set("NO_SUCH_OPTION", 1) == -1, "accepted");
    CHECK("get unknown", ox_option_get("NO_SUCH_OPTION") == -1, "%lld", ox_option_get("NO_SUCH_OPTION"));
    CHECK("get prefix only", ox_option_get("OXMALLOC_") == -1, "%lld", ox_option_get("OXMALLOC_"));
    CHECK("set NULL name", ox_option_set(NULL, 1) == -1, "accepted");
    CHECK("get NULL name", ox_option_get(NULL) == -1, "%lld", ox_option_get(NULL));
    CHECK("bool set 7", ox_option_set("SHOW_ERRORS", 7) == 0 && ox_option_get("SHOW_ERRORS") == 1, "%lld",
          ox_option_get("SHOW_ERRORS"));
    CHECK("bool set 0", ox_option_set("SHOW_ERRORS", 0) == 0 && ox_option_get("SHOW_ERRORS") == 0, "%lld",
          ox_option_get("SHOW_ERRORS"));
    CHECK("size set", ox_option_set("PROF_SAMPLE", 65536) == 0 && ox_option_get("PROF_SAMPLE") == 65536, "%lld",
          ox_option_get("PROF_SAMPLE"));
    ox_option_set("SHOW_ERRORS", 1);
    ox_option_set("PURGE_DELAY", 10);
    /* Allocation still works with the options changed. */
    void *p = malloc(100);
    CHECK("malloc after set", p != NULL, "NULL");
    free(p);
}

static void text_options(void) {
    long long n;
    const char *text;
    char expected[512];

    /* Unset, and the numeric setter refuses it. */
    CHECK("prof unset", ox_option_get("PROF") == 0, "%lld", ox_option_get("PROF"));
    text = prof_text(&n);
    CHECK("prof text unset", n == 0 && text[0] == 0, "%lld '%s'", n, text);
    CHECK("prof numeric set refused", ox_option_set("PROF", 1) == -1, "accepted");
    CHECK("prof numeric set refused (prefixed)", ox_option_set("OXMALLOC_PROF", 12345) == -1, "accepted");
    CHECK("prof still unset", ox_option_get("PROF") == 0, "%lld", ox_option_get("PROF"));
    CHECK("prof dump(NULL) unset", !ox_prof_dump(NULL), "true");

    /* Text calls on options that are not text, or no option. */
    CHECK("set_text numeric option", ox_option_set_text("PURGE_DELAY", "5") == -1, "accepted");
    CHECK("numeric option unchanged", ox_option_get("PURGE_DELAY") == 10, "%lld", ox_option_get("PURGE_DELAY"));
    CHECK("get_text numeric option", ox_option_get_text("PURGE_DELAY", NULL, 0) == -1, "not -1");
    CHECK("set_text unknown", ox_option_set_text("NO_SUCH_OPTION", "x") == -1, "accepted");
    CHECK("get_text unknown", ox_option_get_text("NO_SUCH_OPTION", NULL, 0) == -1, "not -1");
    CHECK("set_text NULL name", ox_option_set_text(NULL, "x") == -1, "accepted");

    /* From a stack buffer that is then wiped and reused. */
    CHECK("prof set_text from stack", set_prof_from_stack("opt.%p.heap") == 0, "-1");
    scribble_stack();
    snprintf(expected, sizeof expected, "%s/opt.%%p.heap", dir);
    CHECK("prof set", ox_option_get("PROF") == 1, "%lld", ox_option_get("PROF"));
    text = prof_text(&n);
    CHECK("prof text intact", n == (long long)strlen(expected) && strcmp(text, expected) == 0,
          "%lld '%s', expected '%s'", n, text, expected);
    char small[5];
    memset(small, '#', sizeof small);
    n = ox_option_get_text("prof", small, sizeof small);
    CHECK("get_text truncates", n == (long long)strlen(expected) && strlen(small) == 4 &&
                                    strncmp(small, expected, 4) == 0, "%lld '%.5s'", n, small);
    char one[1] = {'#'};
    ox_option_get_text("PROF", one, 1);
    CHECK("get_text 1-byte buffer", one[0] == 0, "%d", one[0]);
    CHECK("get_text length only", ox_option_get_text("OXMALLOC_PROF", NULL, 0) == (long long)strlen(expected),
          "%lld", ox_option_get_text("PROF", NULL, 0));

    /* ox_prof_dump(NULL) writes where the option says. */
    CHECK("prof start", ox_prof_start(4096), "false");
    enum { N = 100 };
    void *kept[N];
    for (int i = 0; i < N; i++) {
        kept[i] = profiled_site(10000);
    }
    CHECK("prof dump(NULL)", ox_prof_dump(NULL), "false");
    char expanded[600];
    snprintf(expanded, sizeof expanded, "%s/opt.%d.heap", dir, (int)getpid());
    CHECK("prof dump(NULL) file", file_starts_with(expanded, "heap profile: "), "%s", expanded);
    for (int i = 0; i < N; i++) {
        free(kept[i]);
    }

    /* Too long: refused with a warning, the value kept; 255 bytes fit. */
    char longest[400];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = 0;
    CHECK("prof too long refused", ox_option_set_text("PROF", longest) == -1, "accepted");
    text = prof_text(&n);
    CHECK("prof kept after too long", strcmp(text, expected) == 0, "'%s'", text);
    longest[255] = 0;
    CHECK("prof 255 bytes", ox_option_set_text("PROF", longest) == 0, "-1");
    text = prof_text(&n);
    CHECK("prof 255 bytes read back", n == 255 && strcmp(text, longest) == 0, "%lld", n);

    /* NULL and "" unset it. */
    CHECK("prof set NULL", ox_option_set_text("PROF", NULL) == 0, "-1");
    text = prof_text(&n);
    CHECK("prof unset by NULL", ox_option_get("PROF") == 0 && n == 0 && text[0] == 0, "%lld '%s'", n, text);
    CHECK("prof dump(NULL) after unset", !ox_prof_dump(NULL), "true");
    ox_option_set_text("PROF", "/x");
    CHECK("prof set empty", ox_option_set_text("PROF", "") == 0 && ox_option_get("PROF") == 0, "%lld",
          ox_option_get("PROF"));

    /* Concurrent writers and readers: every read is whole. */
    ox_option_set_text("PROF", race_values[0]);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, i < 2 ? race_writer : race_reader, (void *)(intptr_t)i);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }
    CHECK("prof concurrent reads whole", !race_torn, "a torn or failed read/write");
    ox_option_set_text("PROF", NULL);
}

static void from_environment(void) {
    char *env = getenv("OXMALLOC_PROF");
    CHECK("env has OXMALLOC_PROF", env != NULL, "unset");
    if (!env) {
        return;
    }
    char expected[512];
    snprintf(expected, sizeof expected, "%s", env);
    long long n;
    const char *text = prof_text(&n);
    CHECK("env prof set", ox_option_get("PROF") == 1, "%lld", ox_option_get("PROF"));
    CHECK("env prof text", strcmp(text, expected) == 0, "'%s', expected '%s'", text, expected);
    /* Overwrite the environment's own string (it is writable): the option
     * and the path of the profile at exit must not change. */
    memset(env, 'Z', strlen(env));
    text = prof_text(&n);
    CHECK("env prof text after the environment changed", strcmp(text, expected) == 0, "'%s'", text);
    /* Setting PROF now changes ox_prof_dump(NULL)'s path, not the exit's. */
    char later[600];
    snprintf(later, sizeof later, "%s/later.heap", dir);
    CHECK("env prof set later", ox_option_set_text("PROF", later) == 0, "-1");
    CHECK("env prof dump(NULL) later", ox_prof_dump(NULL) && file_starts_with(later, "heap profile: "), "%s", later);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: options DIR api|env\n");
        return 2;
    }
    dir = argv[1];
    printf("PID %d\n", (int)getpid());
    if (strcmp(argv[2], "env") == 0) {
        from_environment();
    } else {
        numeric_options();
        text_options();
    }
    printf("options: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
