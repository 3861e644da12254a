/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-verify.c - cprs_reader_verify(), the deep pass of spec 8.2, and
 * the guarantee it documents: once it succeeds, every accessor succeeds
 * for every valid index, and every record is found under its own key.
 *
 * Each input (as given, and with its CRCs repaired so that mutations get
 * past the checksums) is verified four ways that must agree: on a fresh
 * reader; with every index checked by the record-order walk alone (the
 * slot sweep of pass 1 is only a faster way to the same verdict); on a
 * reader opened with NO_CRC (verify checks CRCs regardless); and on a
 * reader whose accessors already ran (lazy state such as cached
 * sections and payloads must not change the verdict).
 */
#include <string.h>

#include "fuzz.h"

static int open_reader(const uint8_t *buf, size_t size, uint32_t flags,
                       CprsReader **ret_r)
{
    CprsReaderOpts o = fuzz_reader_opts(flags);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    int ret;

    ret = cprs_reader_open_buffer(buf, size, &o, &diag, ret_r);
    if (ret) {
        FUZZ_ASSERT(fuzz_reader_errno_ok(ret));
        fuzz_check_diag(&diag, ret, size);
    }
    return ret;
}

static int verify(CprsReader *r, CprsDiag *diag)
{
    int ret;

    *diag = CPRS_OPTS(CprsDiag);
    ret = cprs_reader_verify(r, diag);
    if (ret) {
        FUZZ_ASSERT_MSG(fuzz_reader_errno_ok(ret), "verify: error %d", ret);
        /*
         * Offsets of records inside a zstd section count raw bytes from
         * the section's start (spec 5.2): they may pass arena_size.
         */
        fuzz_check_diag(diag, ret, UINT64_MAX);
    }
    return ret;
}

static void check(const uint8_t *buf, size_t size)
{
    CprsReader *r, *r2;
    CprsDiag d1, d2;
    int ret, v1, v2;

    ret = open_reader(buf, size, 0, &r);
    if (ret) {
        return;
    }
    /* The index sweep accepts exactly what the record-order walk does. */
    d2 = CPRS_OPTS(CprsDiag);
    v2 = cprs_reader_verify_walk(r, &d2);
    cprs_reader_close(r);
    FUZZ_ASSERT(open_reader(buf, size, 0, &r) == 0);
    v1 = verify(r, &d1);
    FUZZ_ASSERT_MSG(v1 == v2 && (!v1 || (d1.offset == d2.offset &&
                                         !strcmp(d1.clause, d2.clause))),
                    "verify gave %d (%s), the walk alone %d (%s)", v1,
                    v1 ? d1.clause : "", v2, v2 ? d2.clause : "");
    if (v1 == 0) {
        /* The documented guarantee of cprs_reader_verify(). */
        fuzz_walk_reader(r, NULL, NULL, 0, true);
    }
    /* Verifying again, after the accessors ran, gives the same verdict. */
    v2 = verify(r, &d2);
    FUZZ_ASSERT_MSG(v1 == v2, "verify gave %d, then %d", v1, v2);
    FUZZ_ASSERT(v1 == 0 || d1.offset == d2.offset);
    cprs_reader_close(r);

    /* Accessors first (unverified), then verify: the same verdict. */
    FUZZ_ASSERT(open_reader(buf, size, CPRS_READER_F_NO_CRC, &r2) == 0);
    fuzz_walk_reader(r2, NULL, NULL, 0, false);
    v2 = verify(r2, &d2);
    FUZZ_ASSERT_MSG(v1 == v2, "verify gave %d on a fresh reader, %d after "
                    "the accessors ran with NO_CRC", v1, v2);
    if (v2 == 0) {
        fuzz_walk_reader(r2, NULL, NULL, 0, true);
    }
    cprs_reader_close(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    if (fuzz_outside_size_range(size, 0, FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    check(data, size);
    if (size >= CPRS_HEADER_V1_SIZE) {
        copy = malloc(size);
        FUZZ_ASSERT(copy);
        memcpy(copy, data, size);
        fuzz_repair_crcs(copy, size);
        check(copy, size);
        free(copy);
    }
    return 0;
}
