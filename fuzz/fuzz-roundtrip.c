/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-roundtrip.c - differential: decode -> write -> decode gives the
 * same records (STYLE 8 "write, read back, compare").
 *
 * An input (as given, and with its CRCs repaired) whose every record
 * reads is rewritten with the writer, reproducing its header fields, its
 * compressed sections and payloads and its indexes.  Then:
 *   - a verified v1.0 arena's records are all acceptable to the writer
 *     (the reader is never laxer than the writer on v1.0 arenas);
 *   - the writer's output opens and verifies;
 *   - it decodes to the same records;
 *   - writing those again gives the same bytes (determinism, idempotence);
 *   - the arena converts to a legacy stream whose encoding decodes, in
 *     strict mode, to the same fd and vfio records.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"

static bool slots_are_positions(const FuzzModel *m)
{
    uint32_t i;

    for (i = 0; i < m->n_fds; i++) {
        if (m->fds[i].slot != i) {
            return false;
        }
    }
    return true;
}

/* The arena's fd and vfio records survive arena -> legacy -> decode. */
static void to_legacy(CprsReader *r, const FuzzModel *m, bool verified)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL, *back = NULL;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    size_t size;
    void *buf;
    uint32_t i;
    int ret;

    ret = cprs_legacy_from_reader(r, NULL, &diag, &lg);
    if (ret) {
        /* Refused: an fd of -1 in cpr-exec, or (unverified) duplicates. */
        FUZZ_ASSERT(ret == -EINVAL || (!verified && ret == -EBADMSG) ||
                    ret == -E2BIG);
        return;
    }
    ret = cprs_legacy_encode(lg, NULL, &buf, &size);
    FUZZ_ASSERT_MSG(ret == 0, "legacy encode of an arena failed: %d", ret);
    lo.mode = m->info.mode;
    ret = cprs_legacy_decode(buf, size, &lo, &diag, &back);
    FUZZ_ASSERT_MSG(ret == 0, "strict decode of the encoder's output failed "
                    "(%d) at %llu: %s", ret,
                    (unsigned long long)diag.offset, diag.reason);
    FUZZ_ASSERT(cprs_legacy_fd_count(back) == m->n_fds);
    FUZZ_ASSERT(cprs_legacy_vfio_count(back) == m->n_vfio);
    for (i = 0; i < m->n_fds; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(cprs_legacy_fd_get(back, i, &fi) == 0);
        FUZZ_ASSERT(!strcmp(fi.name, m->fds[i].name));
        FUZZ_ASSERT(fi.id == m->fds[i].id);
        FUZZ_ASSERT(fi.fd == (m->info.mode == CPRS_MODE_EXEC ?
                              m->fds[i].fd : -1));
    }
    for (i = 0; i < m->n_vfio; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        FUZZ_ASSERT(cprs_legacy_vfio_get(back, i, &vi) == 0);
        FUZZ_ASSERT(!strcmp(vi.name, m->vfio[i].name));
        FUZZ_ASSERT(vi.devid == m->vfio[i].devid &&
                    vi.ioas_id == m->vfio[i].ioas_id &&
                    vi.hwpt_id == m->vfio[i].hwpt_id);
    }
    cprs_legacy_free(back);
    cprs_legacy_free(lg);
    free(buf);
}

static void check(const uint8_t *data, size_t size)
{
    CprsReaderOpts o = fuzz_reader_opts(0);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r, *r2;
    FuzzModel a, b;
    void *out, *again;
    size_t osize, asize;
    bool verified;
    int ret;

    if (cprs_reader_open_buffer(data, size, &o, &diag, &r)) {
        return;
    }
    if (fuzz_model_from_reader(r, &a)) {
        cprs_reader_close(r);
        return;
    }
    verified = cprs_reader_verify(r, NULL) == 0;

    ret = fuzz_model_write(&a, 0, &out, &osize);
    if (ret) {
        /* Only a newer minor may hold what a v1.0 writer cannot write. */
        FUZZ_ASSERT_MSG(!verified || a.info.version_minor >
                        CPRS_FORMAT_VERSION_MINOR, "the writer refused (%d) "
                        "the records of a verified arena", ret);
        FUZZ_ASSERT(ret == -EINVAL || ret == -EEXIST || ret == -E2BIG);
        goto done;
    }
    ret = cprs_reader_open_buffer(out, osize, &o, &diag, &r2);
    FUZZ_ASSERT_MSG(ret == 0, "the writer's output does not open (%d): %s",
                    ret, diag.reason);
    ret = cprs_reader_verify(r2, &diag);
    FUZZ_ASSERT_MSG(ret == 0, "the writer's output does not verify (%d) at "
                    "%llu: %s", ret, (unsigned long long)diag.offset,
                    diag.reason);
    FUZZ_ASSERT(fuzz_model_from_reader(r2, &b) == 0);
    /* The writer numbers slots in record order (spec 6.2.3). */
    if (!slots_are_positions(&a)) {
        uint32_t i;

        for (i = 0; i < a.n_fds; i++) {
            a.fds[i].slot = i;
        }
    }
    fuzz_model_assert_equal(&a, &b, false);

    /* Written again: the very same bytes. */
    FUZZ_ASSERT(fuzz_model_write(&b, 0, &again, &asize) == 0);
    FUZZ_ASSERT_MSG(asize == osize && !memcmp(again, out, osize),
                    "rewriting the writer's own output changed its bytes");
    free(again);

    to_legacy(r2, &b, true);
    if (verified) {
        to_legacy(r, &a, true);
    }
    fuzz_model_free(&b);
    cprs_reader_close(r2);
    free(out);
done:
    fuzz_model_free(&a);
    cprs_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    if (fuzz_outside_size_range(size, CPRS_HEADER_V1_SIZE,
                                FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    check(data, size);
    copy = malloc(size);
    FUZZ_ASSERT(copy);
    memcpy(copy, data, size);
    fuzz_repair_crcs(copy, size);
    if (memcmp(copy, data, size)) {
        check(copy, size);
    }
    free(copy);
    return 0;
}
