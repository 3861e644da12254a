/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-core.c - the ELF core locator, core_find_state{,_buffer}(),
 * on hostile core files (ELF and program headers, PT_NOTE framing, the
 * NT_FILE payload, PT_LOAD data scanned for either magic).
 *
 * Each input is searched with several options (default, NT_FILE only, a
 * small scan budget, another memfd name), and every candidate in turn
 * (opts.skip = 0, 1, 2, ...).  Invariants (FUZZ_ASSERT):
 *   - errors are documented ones, with a coherent diagnostic;
 *   - a candidate lies inside the core, is an arena or a legacy stream,
 *     and is what it claims: an arena candidate's header CRC is valid
 *     (the reader gets past its header check), a legacy candidate
 *     decodes leniently to exactly its size;
 *   - candidates are distinct (file offset, address), and skipping one
 *     more gives the next;
 *   - the fd entry point (a memfd) finds what the buffer one finds.
 * Every candidate is then opened and walked like any untrusted arena or
 * stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "inspect.h"

#define MAX_CANDIDATES 8

static bool core_errno_ok(int ret)
{
    return ret == -EBADMSG || ret == -E2BIG || ret == -ENOENT ||
           ret == -ENODATA || ret == -ENOMEM;
}

/* The candidate's bytes are what the locator says they are. */
static void check_candidate(const uint8_t *data, size_t size,
                            const CoreState *st)
{
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    const uint8_t *p;
    CprsReader *r;
    CprsLegacy *lg;
    int ret;

    FUZZ_ASSERT(st->found_by == CORE_FOUND_NT_FILE ||
                st->found_by == CORE_FOUND_SCAN);
    FUZZ_ASSERT(st->file_offset <= size &&
                st->size <= size - st->file_offset);
    FUZZ_ASSERT(memchr(st->map_name, 0, sizeof(st->map_name)) != NULL);
    FUZZ_ASSERT(st->map_start <= st->map_end);
    p = data + st->file_offset;
    if (st->format == CPRS_DETECT_ARENA) {
        FUZZ_ASSERT(st->size >= CPRS_HEADER_V1_SIZE);
        FUZZ_ASSERT(cprs_detect(p, st->size) == CPRS_DETECT_ARENA);
        FUZZ_ASSERT(!(st->flags & CORE_STATE_F_TRUNCATED) ==
                    (st->declared_size == st->size));
        ret = cprs_reader_open_buffer(p, (size_t)st->size, &ro, &diag, &r);
        /* The locator checked the header CRC: open gets past it. */
        FUZZ_ASSERT_MSG(ret == 0 || strcmp(diag.clause, "3.9"),
                        "core candidate with a bad header CRC");
        if (!ret) {
            fuzz_walk_reader(r, NULL, NULL, 0, false);
            cprs_reader_close(r);
        }
        return;
    }
    FUZZ_ASSERT(st->format == CPRS_DETECT_LEGACY);
    FUZZ_ASSERT(st->declared_size == st->size);
    ret = cprs_legacy_decode(p, (size_t)st->size, &lo, &diag, &lg);
    FUZZ_ASSERT_MSG(ret == 0, "legacy core candidate does not decode (%d): "
                    "%s", ret, diag.reason);
    FUZZ_ASSERT(cprs_legacy_get_info(lg, &li) == 0);
    FUZZ_ASSERT(li.size == st->size && li.trailing == 0);
    cprs_legacy_free(lg);
}

/* Every candidate for @opts; returns how many. */
static uint32_t search(const uint8_t *data, size_t size, CoreOpts *o,
                       CoreState *first)
{
    CoreState st[MAX_CANDIDATES];
    CprsDiag diag;
    uint32_t k, j;
    int ret;

    for (k = 0; k < MAX_CANDIDATES; k++) {
        o->skip = k;
        diag = CPRS_OPTS(CprsDiag);
        st[k] = (CoreState){ 0 };
        ret = core_find_state_buffer(data, size, o, &diag, &st[k]);
        if (ret) {
            FUZZ_ASSERT_MSG(core_errno_ok(ret), "core: error %d", ret);
            fuzz_check_diag(&diag, ret, size);
            /* Past the last candidate: nothing more, ever. */
            FUZZ_ASSERT(k == 0 || ret == -ENOENT);
            break;
        }
        check_candidate(data, size, &st[k]);
        /*
         * The same bytes may show through two PT_LOAD segments of a
         * hostile core, but never twice at the same address.
         */
        for (j = 0; j < k; j++) {
            FUZZ_ASSERT_MSG(st[j].file_offset != st[k].file_offset ||
                            st[j].vaddr != st[k].vaddr,
                            "candidate %u repeats candidate %u", k, j);
        }
    }
    if (k) {
        *first = st[0];
    }
    return k;
}

/* The fd entry point (pread on a memfd) finds the same first state. */
static void via_fd(const uint8_t *data, size_t size, uint32_t found,
                   const CoreState *first)
{
    CoreState st = (CoreState){ 0 };
    size_t done = 0;
    ssize_t n;
    int fd, ret;

    fd = memfd_create("fuzz-core", MFD_CLOEXEC);
    if (fd < 0) {
        return;
    }
    while (done < size && (n = write(fd, data + done, size - done)) > 0) {
        done += (size_t)n;
    }
    if (done == size) {
        ret = core_find_state(fd, NULL, NULL, &st);
        FUZZ_ASSERT_MSG((ret == 0) == (found > 0), "core from an fd: %d, "
                        "from the buffer: %u candidates", ret, found);
        if (!ret) {
            FUZZ_ASSERT(st.file_offset == first->file_offset &&
                        st.size == first->size &&
                        st.format == first->format &&
                        st.found_by == first->found_by);
        }
    }
    close(fd);
}

/* Misuse gets -EINVAL: bad options, no result, a core that is a pipe. */
static void contract(const uint8_t *data, size_t size)
{
    CoreOpts o = (CoreOpts){ .flags = 0x80 };
    CoreState st = (CoreState){ 0 };
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    int p[2];

    FUZZ_ASSERT(core_find_state_buffer(data, size, &o, &diag, &st) ==
                -EINVAL);
    FUZZ_ASSERT(core_find_state_buffer(data, size, NULL, &diag, NULL) ==
                -EINVAL);
    FUZZ_ASSERT(core_find_state_buffer(NULL, 1, NULL, &diag, &st) ==
                -EINVAL);
    FUZZ_ASSERT(core_find_state(-1, NULL, &diag, &st) == -EINVAL);
    if (pipe2(p, O_CLOEXEC) == 0) {
        FUZZ_ASSERT(core_find_state(p[0], NULL, &diag, &st) == -EINVAL);
        close(p[0]);
        close(p[1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CoreOpts o;
    CoreState first = (CoreState){ 0 };
    uint32_t found;

    if (fuzz_outside_size_range(size, 0, FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    o = (CoreOpts){ 0 };
    found = search(data, size, &o, &first);
    via_fd(data, size, found, &first);

    o = (CoreOpts){ .flags = CORE_F_NO_SCAN };
    search(data, size, &o, &first);
    o = (CoreOpts){ .max_scan = 64 };
    search(data, size, &o, &first);
    o = (CoreOpts){ .memfd_name = "memory-backend-memfd" };
    search(data, size, &o, &first);
    contract(data, size);
    return 0;
}
