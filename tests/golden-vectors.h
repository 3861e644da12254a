/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * golden-vectors.h - the golden arenas of format/vectors/, built with the
 * writer from QEMU-like states modelled on the QEMU 10.2 captures.
 */
#ifndef CPRS_GOLDEN_VECTORS_H
#define CPRS_GOLDEN_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct GoldenVector {
    const char *name;       /* file stem in format/vectors/ */
    int (*build)(void **ret_buf, size_t *ret_size);
} GoldenVector;

extern const GoldenVector golden_vectors[];
extern const size_t golden_vector_count;

#endif
