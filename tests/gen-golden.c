/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gen-golden.c - write the golden arenas into a directory:
 *   gen-golden format/vectors
 * Regenerate only on a deliberate format change; tests/test-golden.c
 * checks that the recipes still give the committed bytes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "golden-vectors.h"

int main(int argc, char **argv)
{
    char path[4096];
    size_t i, size;
    void *buf;
    FILE *f;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    for (i = 0; i < golden_vector_count; i++) {
        if (golden_vectors[i].build(&buf, &size)) {
            fprintf(stderr, "cannot build %s\n", golden_vectors[i].name);
            return 1;
        }
        snprintf(path, sizeof(path), "%s/%s.cprs", argv[1],
                 golden_vectors[i].name);
        f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, size, f) != size || fclose(f)) {
            perror(path);
            return 1;
        }
        free(buf);
        printf("%s: %zu bytes\n", path, size);
    }
    return 0;
}
