/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * driver.c - replay fuzz inputs without libFuzzer (STYLE 8).
 *
 *   fuzz-TARGET [-runs=N] [-OTHER=...] FILE|DIR...
 *
 * Runs LLVMFuzzerTestOneInput() on every FILE and on every regular file
 * in each DIR (in name order), N times over (default 1): all inputs once,
 * then all again, so that state one input leaves behind shows up when
 * the next one runs.  Each run gets a fresh heap copy of exactly the
 * input's size, as libFuzzer gives, so that AddressSanitizer catches a
 * read one byte past the end.  Other "-flag=value" arguments are accepted
 * and ignored, so that a libFuzzer command line replays here unchanged.
 *
 * Exit status: 0 when every run returned; an input that trips a
 * FUZZ_ASSERT or a sanitizer aborts the process instead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

typedef struct Inputs {
    char **path;
    size_t count;
    size_t cap;
} Inputs;

static void add_path(Inputs *in, const char *path)
{
    char **np;

    if (in->count == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 64;
        np = realloc(in->path, in->cap * sizeof(*np));
        if (!np) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        in->path = np;
    }
    in->path[in->count] = strdup(path);
    if (!in->path[in->count]) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    in->count++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory contributes its regular files, sorted by name. */
static void add_arg(Inputs *in, const char *arg)
{
    struct stat st;
    struct dirent *de;
    size_t first = in->count;
    char path[4096];
    DIR *d;

    if (stat(arg, &st) < 0) {
        fprintf(stderr, "%s: %s\n", arg, strerror(errno));
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_path(in, arg);
        return;
    }
    d = opendir(arg);
    if (!d) {
        fprintf(stderr, "%s: %s\n", arg, strerror(errno));
        exit(1);
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", arg, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            add_path(in, path);
        }
    }
    closedir(d);
    qsort(in->path + first, in->count - first, sizeof(*in->path), cmp_str);
}

static uint8_t *read_file(const char *path, size_t *ret_size)
{
    uint8_t *buf = NULL, *nbuf;
    size_t len = 0, cap = 0, n;
    FILE *f = fopen(path, "rb");

    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            nbuf = realloc(buf, cap);
            if (!nbuf) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len, f);
        if (!n) {
            break;
        }
        len += n;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: read error\n", path);
        exit(1);
    }
    fclose(f);
    *ret_size = len;
    return buf;
}

int main(int argc, char **argv)
{
    Inputs in = { 0 };
    long runs = 1;
    uint8_t *data, *copy;
    size_t size, i;
    long r;
    int a;

    for (a = 1; a < argc; a++) {
        if (!strncmp(argv[a], "-runs=", 6)) {
            runs = strtol(argv[a] + 6, NULL, 10);
            if (runs < 1) {
                runs = 1;
            }
        } else if (argv[a][0] == '-' && argv[a][1]) {
            continue;   /* a libFuzzer flag: nothing to do here */
        } else {
            add_arg(&in, argv[a]);
        }
    }
    if (!in.count) {
        fprintf(stderr, "usage: %s [-runs=N] FILE|DIR...\n", argv[0]);
        return 1;
    }
    for (r = 0; r < runs; r++) {
        for (i = 0; i < in.count; i++) {
            if (r == 0) {
                printf("Running: %s\n", in.path[i]);
            }
            data = read_file(in.path[i], &size);
            /* Exactly @size bytes, so an over-read is caught. */
            copy = malloc(size ? size : 1);
            if (!copy) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            memcpy(copy, data, size);
            free(data);
            LLVMFuzzerTestOneInput(copy, size);
            free(copy);
        }
    }
    printf("Executed %zu inputs %ld times each\n", in.count, runs);
    for (i = 0; i < in.count; i++) {
        free(in.path[i]);
    }
    free(in.path);
    return 0;
}
