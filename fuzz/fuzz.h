/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h - what every libcprstate fuzz target shares (STYLE 8).
 *
 * Each fuzz-<entry>.c defines LLVMFuzzerTestOneInput() and nothing else
 * that is visible outside it.  It is linked either with libFuzzer
 * (-Dfuzzing=true, clang) or with driver.c, which replays files without
 * libFuzzer, so that every corpus file is also a plain meson test.
 *
 * The helpers declared here live in helpers.c: the input size caps, a
 * checksum repair that lets mutated arenas get past the CRCs, an
 * accessor walk that exercises every public reader entry point, and a
 * record "model" to compare a decoded arena with another one.
 */
#ifndef CPRS_FUZZ_H
#define CPRS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cprs-internal.h"   /* fuzz targets may reach internals */

/* The libFuzzer entry point; the only symbol a target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A broken invariant: the library contradicted itself or its
 * documentation.  abort() so that libFuzzer (or the replay driver under
 * meson) reports the input as a crash.
 */
#define FUZZ_ASSERT_MSG(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed: ", __FILE__, \
                    __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            abort(); \
        } \
    } while (0)
#define FUZZ_ASSERT(cond) FUZZ_ASSERT_MSG(cond, "%s", "invariant")

/*
 * Input size caps, like systemd's outside_size_range(): bigger inputs
 * only make runs slower without reaching new code.  The CI runs pass a
 * smaller -max_len still (fuzz/README.md).
 */
#define FUZZ_ARENA_MAX_INPUT   (1u << 20)
#define FUZZ_LEGACY_MAX_INPUT  (256u << 10)
#define FUZZ_PROGRAM_MAX_INPUT (64u << 10)

/* Largest payload a fuzz reader may decompress (opts may only lower). */
#define FUZZ_MAX_PAYLOAD       (UINT64_C(1) << 20)
/*
 * The fuzz readers' memory budget (CprsReaderOpts.max_memory, spec 7.1):
 * a zstd frame of 1 GiB of zeros fits in 32 KiB of input, and without a
 * budget below libFuzzer's -malloc_limit_mb (fuzz/ci.sh) every such input
 * would be an out-of-memory finding, or a slow unit under ASan.
 */
#define FUZZ_MAX_MEMORY        (UINT64_C(16) << 20)

static inline bool fuzz_outside_size_range(size_t size, size_t lo,
                                           size_t hi)
{
    return size < lo || size > hi;
}

/* Reader options every target uses: the fuzz payload cap, @flags. */
CprsReaderOpts fuzz_reader_opts(uint32_t flags);

/* ---- Byte consumer for structured inputs ------------------------------ */

/* Reads little-endian values off the input; zeros once it runs out. */
typedef struct FuzzInput {
    const uint8_t *p;
    size_t left;
} FuzzInput;

uint8_t fuzz_u8(FuzzInput *in);
uint16_t fuzz_u16(FuzzInput *in);
uint32_t fuzz_u32(FuzzInput *in);
uint64_t fuzz_u64(FuzzInput *in);
/* Up to @max bytes; returns how many were taken and points *@ret at them. */
size_t fuzz_bytes(FuzzInput *in, size_t max, const uint8_t **ret);

/* ---- Arena byte surgery ----------------------------------------------- */

uint32_t fuzz_rd32(const uint8_t *p);
uint64_t fuzz_rd64(const uint8_t *p);
void fuzz_wr32(uint8_t *p, uint32_t v);
void fuzz_wr64(uint8_t *p, uint64_t v);

/*
 * Recompute, where the fields that locate them are in bounds, every
 * section CRC, then the directory CRC, then the header CRC of the arena
 * at @buf.  Never reads or writes outside @buf[0..size).
 */
void fuzz_repair_crcs(uint8_t *buf, size_t size);

/*
 * Arena offset of directory entry @i, or 0 if the directory does not
 * hold it within @size bytes.
 */
uint64_t fuzz_dir_entry(const uint8_t *buf, size_t size, uint32_t i);

/* Directory entry of the first section of @type, or 0. */
uint64_t fuzz_find_section(const uint8_t *buf, size_t size, uint32_t type);

/*
 * A zstd frame of @raw zero bytes in RLE blocks of 128 KiB (a 128 KiB
 * window), declaring @fcs bytes of content: zstd's largest ratio, 1 GiB
 * in 32 KiB.  malloc()ed; *@ret_len receives its size.
 */
uint8_t *fuzz_rle_frame(uint64_t raw, uint64_t fcs, size_t *ret_len);

/* write() all of @p to @fd; false on any error or short write. */
bool fuzz_write_all(int fd, const uint8_t *p, size_t n);

/* ---- Exercising a reader ---------------------------------------------- */

/*
 * Call every accessor on every index (and one past the end), every
 * lookup with the keys of the records and with @keys and @ids (keys
 * taken from the input; NULL when @n_keys is 0), the payload accessors,
 * diagnostics and name helpers.  With @must_succeed (after a successful
 * verify), FUZZ_ASSERT that each accessor succeeds and that each record
 * is found under its own key, as cprs_reader_verify() promises.
 * Returns the number of accessor calls that failed.
 */
uint32_t fuzz_walk_reader(CprsReader *r, const char *const *keys,
                          const int32_t *ids, size_t n_keys,
                          bool must_succeed);

/* Errors a reader function may return on input (documented set). */
bool fuzz_reader_errno_ok(int ret);

/* Most fds fuzz_send_msg() attaches to one message. */
#define FUZZ_MAX_SEND_FDS 8

/*
 * One sendmsg() of @len bytes with @nfds (<= FUZZ_MAX_SEND_FDS) fds by
 * SCM_RIGHTS, never blocking; true if all of it was queued.
 */
bool fuzz_send_msg(int sock, const uint8_t *p, size_t len, const int *fds,
                   uint32_t nfds);

/* FUZZ_ASSERT that a failed call left a coherent diagnostic. */
void fuzz_check_diag(const CprsDiag *diag, int ret, uint64_t size);

/*
 * Up to @max keys cut from @data: NUL-terminated copies of short runs at
 * spread offsets, each with an id taken from the 4 bytes before it.
 * Fills @keys (each FUZZ_KEY_MAX bytes) and @ids; returns the count.
 */
#define FUZZ_KEY_MAX 48
size_t fuzz_keys_from_input(const uint8_t *data, size_t size,
                            char keys[][FUZZ_KEY_MAX], int32_t *ids,
                            size_t max);

/* ---- A decoded arena, to compare two of them ---------------------------- */

typedef struct FuzzBlock {
    CprsRamBlockInfo info;
    char *idstr;
    CprsGpaRange *ranges;
} FuzzBlock;

typedef struct FuzzPayload {
    CprsDevStateInfo info;
    char *name;
    uint8_t *data;          /* raw_size bytes, uncompressed */
} FuzzPayload;

typedef struct FuzzModel {
    CprsArenaInfo info;
    uint32_t n_fds, n_blocks, n_vfio, n_ds;
    CprsFdInfo *fds;        /* names owned (fd_names) */
    char **fd_names;
    FuzzBlock *blocks;
    CprsVfioDeviceInfo *vfio;
    char **vfio_names;
    FuzzPayload *ds;
    uint32_t compressed;    /* bit (1u << type): that section is zstd */
    uint32_t n_index;       /* INDEX sections */
} FuzzModel;

/*
 * Copy every record of @r into @m.  Returns 0 when every accessor
 * succeeded, else the first error (@m is then freed and zeroed).
 */
int fuzz_model_from_reader(CprsReader *r, FuzzModel *m);

/*
 * Write @m with the writer, in type order (fds, RAM blocks, vfio
 * devices, payloads), reproducing its header fields, its compressed
 * sections and payloads and whether it had indexes.  @zstd_level as in
 * CprsWriterOpts.  Returns the writer's error when it refuses a record
 * (a reader is more lenient than the writer for newer minors).
 */
int fuzz_model_write(const FuzzModel *m, int32_t zstd_level,
                     void **ret_buf, size_t *ret_size);

/*
 * FUZZ_ASSERT that @a and @b hold the same records.  Payload flags are
 * compared only when @same_flags (a rewrite may store a payload raw when
 * zstd would not make it smaller).
 */
void fuzz_model_assert_equal(const FuzzModel *a, const FuzzModel *b,
                             bool same_flags);

void fuzz_model_free(FuzzModel *m);

#endif /* CPRS_FUZZ_H */
