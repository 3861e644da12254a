/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source-failsafe.c - what the fail-safe live update adds to a source
 * (spec/fail-safe.rst): a dual stream, which is read as its arena once
 * its two parts are known to agree (F4.3), and the ROLLBACK section of
 * an arena, part of what makes a state valid (F5.2).  Library calls
 * only: source.c calls in here.
 */
#include <string.h>

#include "source.h"

int source_decode_dual(Source *src, const Options *o)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC);
    CprsReaderOpts ro = CPRS_OPTS(CprsReaderOpts,
                                  .max_arena_size = o->max_size);
    CprsDualInfo di = CPRS_OPTS(CprsDualInfo);
    CprsLegacy *l = NULL;
    int ret;

    ret = cprs_dual_locate(src->bytes, src->size, &di, &src->diag);
    if (ret == -ENOENT) {
        src->diag = CPRS_OPTS(CprsDiag);
        return 0;
    }
    src->dual = true;
    src->format = CPRS_DETECT_ARENA;
    if (!ret) {
        ret = cprs_legacy_decode(src->bytes, (size_t)di.legacy_size, &lo,
                                 &src->diag, &l);
    }
    if (!ret) {
        /* From now on the source is the arena part, at offset 0. */
        src->dual_legacy_size = di.legacy_size;
        memmove(src->bytes, src->bytes + di.arena_offset,
                (size_t)di.arena_size);
        src->size = (size_t)di.arena_size;
        ret = cprs_reader_open_buffer(src->bytes, src->size, &ro,
                                      &src->diag, &src->reader);
    }
    if (!ret) {
        ret = cprs_reader_verify(src->reader, &src->diag);
    }
    if (!ret) {
        ret = cprs_dual_check(src->reader, l, &src->diag);
    }
    cprs_legacy_free(l);
    src->err = ret;
    return 1;
}

int source_rollback(const Source *s, CprsRollbackInfo *ri, CprsDiag *diag)
{
    *ri = CPRS_OPTS(CprsRollbackInfo);
    *diag = CPRS_OPTS(CprsDiag);
    return s->reader ? cprs_rollback_read(s->reader, ri, diag) : -ENOENT;
}

int source_verify_rollback(Source *s, CprsDiag *diag)
{
    CprsRollbackInfo ri;
    int ret = source_rollback(s, &ri, diag);

    return ret == -ENOENT ? 0 : ret;
}
