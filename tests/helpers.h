/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * helpers.h - shared test helpers: files, a reference arena built with the
 * writer, and mutators that edit a field and then repair the CRCs so a
 * test reaches exactly the check it targets.
 */
#ifndef CPRS_TEST_HELPERS_H
#define CPRS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <cmocka.h>

#include "cprs-internal.h"

/* Number of open fds of this process (to prove nothing leaked). */
unsigned th_count_fds(void);

/* Read a whole file; fails the test on error.  free() the result. */
uint8_t *th_read_file(const char *path, size_t *ret_size);

/* Write a whole file; fails the test on error. */
void th_write_file(const char *path, const void *buf, size_t size);

/* $CPRS_TEST_DATA, $CPRS_FORMAT_VECTORS, $CPRS_BUILD_ROOT. */
const char *th_data_dir(void);
const char *th_vectors_dir(void);
const char *th_build_root(void);

/*
 * The reference arena: 3 fds, 2 RAM blocks (3 GPA ranges), 2 vfio devices,
 * 3 device-state payloads (one zstd, one raw, one empty), every section
 * type, written reproducibly.  @extra_flags are added to the writer opts;
 * @compress is the compress_sections mask.
 */
void th_build_rich(uint32_t extra_flags, uint32_t compress, uint8_t **ret_buf,
                   size_t *ret_size);

/* The writer behind th_build_rich(), not finished. */
CprsWriter *th_rich_writer(uint32_t extra_flags, uint32_t compress);

/* Recompute every section CRC, then the directory and header CRCs. */
void th_fix_crcs(uint8_t *buf, size_t size);

CprsWireHeader *th_hdr(uint8_t *buf);
CprsWireSection *th_dir(uint8_t *buf, uint32_t i);
/* Directory index of the section of @type (first one), or -1. */
int th_sec(uint8_t *buf, uint32_t type);
/* Directory index of the INDEX section whose link is the @type section. */
int th_index_sec(uint8_t *buf, uint32_t type);
/* Arena offset of record @i of the section of @type. */
uint64_t th_rec_off(uint8_t *buf, uint32_t type, uint32_t i);
/* Arena offset of section @type's data. */
uint64_t th_sec_off(uint8_t *buf, uint32_t type);

/*
 * Open @buf and, if that succeeds, verify it.  Returns the first error (0
 * if valid) and fills @diag.  @stage is set to 1 for open, 2 for verify.
 */
int th_open_verify(const void *buf, size_t size, CprsDiag *diag, int *stage);

/* Assert that open+verify fails with exactly @err at @offset, @clause. */
void th_expect_reject(const void *buf, size_t size, int err, uint64_t offset,
                      const char *clause);



/* ---- Assembling arenas of other geometries (future minors, unknowns) -- */

typedef struct ThSection {
    uint32_t type;
    uint32_t flags;
    uint32_t link;
    uint32_t record_count;
    uint32_t record_size;
    const void *data;
    size_t size;
    uint64_t raw_size;      /* 0: same as size */
} ThSection;

typedef struct ThArena {
    uint16_t major;         /* 0: 1 */
    uint16_t minor;
    uint32_t header_size;   /* 0: 192; bytes past 192 are filled with 0xa5 */
    uint32_t entry_size;    /* 0: 48; bytes past 48 are filled with 0xa5 */
    uint64_t incompat;
    uint64_t compat;
    uint32_t mode;          /* 0: exec */
    const ThSection *secs;
    uint32_t nsec;
} ThArena;

/* Lay out and checksum an arena from raw parts.  free() the result. */
uint8_t *th_assemble(const ThArena *a, size_t *ret_size);

/* A stream built byte by byte (legacy streams); free() p. */
typedef struct ThBuf {
    uint8_t *p;
    size_t len;
    size_t cap;
} ThBuf;

/* Append @n bytes, a byte, a big-endian 32-bit word (QEMU's order). */
void th_put(ThBuf *b, const void *p, size_t n);
void th_put_u8(ThBuf *b, uint8_t v);
void th_put_be32(ThBuf *b, uint32_t v);
#endif
