/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The installed headers as a consumer compiles them: in C11 under
 * -pedantic, and as C++ (g++ and clang++, C++17 and C++20), with every
 * warning an error.  Compiled, never run; the consumers of
 * tests/consumer/check-installed.sh link and run.
 *
 * Each header first on its own (self-contained), then their macros and
 * inline functions used as the README shows them.  CPRS_TEST_FIELDS: the
 * CPRS_OPTS() form with fields in C++ (C++20 designated initialisers).
 */
#if defined(CPRS_TEST_HEADER_LE)
#include <cprs-le.h>
#elif defined(CPRS_TEST_HEADER_FORMAT)
#include <cprs-format.h>
#endif
#include <cprstate.h>

#if defined(__cplusplus) && !defined(CPRS_API)
#error "cprstate.h did not define CPRS_API"
#endif

int cprs_headers_use(const void *arena, size_t size);

int cprs_headers_use(const void *arena, size_t size)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
#if !defined(__cplusplus) || defined(CPRS_TEST_FIELDS)
    CprsWriterOpts wopts = CPRS_OPTS(CprsWriterOpts,
                                     .mode = CPRS_MODE_TRANSFER,
                                     .generation = 7);
#else
    CprsWriterOpts wopts = CPRS_OPTS(CprsWriterOpts);
    wopts.mode = CPRS_MODE_TRANSFER;
    wopts.generation = 7;
#endif
    CprsWireHeader hdr;
    CprsReader *reader = NULL;
    int ret;

    if (size < sizeof(hdr)) {
        return -1;
    }
    memcpy(&hdr, arena, sizeof(hdr));
    if (!CPRS_HDR_HAS(cprs_le32_get(&hdr.header_size), producer)) {
        return -1;
    }
    cprs_le64_set(&hdr.generation, cprs_le64_get(&hdr.generation) + 1);
    ret = cprs_reader_open_buffer(arena, size, NULL, &diag, &reader);
    cprs_reader_close(reader);
    return ret + (int)(wopts.sz == sizeof(wopts)) +
           (int)(wopts.mode + wopts.generation) +
           (int)(CPRS_VERSION_NUMBER > 0) + (int)cprs_le16_get(
               &hdr.version_major);
}
