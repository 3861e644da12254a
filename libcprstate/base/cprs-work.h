/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-work.h - counting the work a parser does, for complexity tests.
 *
 * Time is a poor witness on a shared machine; work is not.  Each parser
 * adds what it did to a counter: hash probes, bytes checksummed, bytes
 * copied, bytes decompressed, bytes read from a source, bytes scanned,
 * allocations and allocated bytes, calls on recorded fds, zstd contexts
 * created.  A test runs the worst input it can build at 1x and 8x and
 * asserts that the counts grow linearly and stay within the declared
 * memory budget (tests/test-bounded.c).
 *
 * The counters exist only in the "counted" build of the library
 * (-DCPRS_COUNT_WORK, tests only): there, one thread-local array holds
 * them.  In every other build CPRS_WORK_ADD() compiles to nothing, so the
 * library keeps no mutable global state and pays nothing.
 */
#ifndef CPRS_WORK_H
#define CPRS_WORK_H

#include <stddef.h>
#include <stdint.h>

enum {
    CPRS_WORK_PROBES,           /* hash-table slots looked at */
    CPRS_WORK_CRC_BYTES,        /* bytes fed to CRC32C */
    CPRS_WORK_COPY_BYTES,       /* bytes copied (memcpy of input) */
    CPRS_WORK_ZSTD_BYTES,       /* bytes produced by decompression */
    CPRS_WORK_READ_BYTES,       /* bytes read from an fd or a socket */
    CPRS_WORK_SCAN_BYTES,       /* bytes looked at by a search */
    CPRS_WORK_ALLOCS,           /* allocations */
    CPRS_WORK_ALLOC_BYTES,      /* bytes allocated */
    CPRS_WORK_FD_CALLS,         /* calls examining a recorded fd (fstat,
                                 * fstatfs, F_GET_SEALS, its /proc link,
                                 * poll) */
    CPRS_WORK_ZSTD_CONTEXTS,    /* zstd decoders and compressors created */
    CPRS_WORK__MAX,
};

#ifdef CPRS_COUNT_WORK
extern _Thread_local uint64_t cprs_work[CPRS_WORK__MAX];
#define CPRS_WORK_ADD(kind, n) (cprs_work[(kind)] += (uint64_t)(n))
/*
 * The largest object this host can address.  The counted build lets a
 * test lower it (cprs_work_size_max, 0: SIZE_MAX) to play a 32-bit host
 * on a 64-bit one, where no arena size could otherwise overflow size_t.
 */
extern _Thread_local uint64_t cprs_work_size_max;
#define CPRS_SIZE_MAX \
    (cprs_work_size_max ? cprs_work_size_max : (uint64_t)SIZE_MAX)
/*
 * The address range a CprsRoom reserves (common.c), if not 0: a test
 * lowers it so that rooms outgrow their range, and move, at sizes it can
 * afford.
 */
extern _Thread_local size_t cprs_work_room_reserve;
#else
#define CPRS_WORK_ADD(kind, n) ((void)0)
#define CPRS_SIZE_MAX ((uint64_t)SIZE_MAX)
#endif

/* An allocation of @n bytes: both counters. */
#define CPRS_WORK_ALLOC(n) \
    (CPRS_WORK_ADD(CPRS_WORK_ALLOCS, 1), \
     CPRS_WORK_ADD(CPRS_WORK_ALLOC_BYTES, (n)))

#endif /* CPRS_WORK_H */
