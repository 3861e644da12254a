/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-failsafe.c - the parsers of the fail-safe live update
 * (spec/fail-safe.rst) on hostile bytes.  The first input byte picks one:
 *
 *   0  an ELF file: cprs_elf_scan() from the buffer, and pre-flight of the
 *      same bytes as an executable file (cprs_target_open_path() of a
 *      memfd), classification and a plan for every policy;
 *   1  a capability note descriptor: cprs_caps_decode();
 *   2  a ROLLBACK section: cprs_rollback_decode();
 *   3  a dual stream: cprs_dual_locate(), then both parts decoded and
 *      compared as the cpr-exec loader does; and the loader itself,
 *      cprs_dual_load_fd() of the same bytes in a sealed memfd;
 *   4  an arena that may hold a ROLLBACK section: cprs_rollback_read()
 *      and every argument, with its CRCs repaired first half the time.
 *
 * Invariants (FUZZ_ASSERT): documented errors only; a coherent
 * diagnostic; an ELF verdict that agrees with itself (a note found has
 * been decoded, a class follows from the flags); a decoded record whose
 * strings lie inside the input, NUL-terminated, argc of them in exactly
 * argv_size bytes; dual parts that tile the input; decoding twice gives
 * the same answer; no fd leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "fuzz.h"

#define MAX_INPUT (256u << 10)

static bool inside(const uint8_t *base, size_t size, const char *p)
{
    return (const uint8_t *)p >= base && (const uint8_t *)p < base + size;
}

static void check_rec(const uint8_t *buf, size_t size,
                      const CprsRollbackRec *r)
{
    const char *a = r->argv;
    uint32_t i;

    FUZZ_ASSERT(inside(buf, size, r->exe_path));
    FUZZ_ASSERT(inside(buf, size, r->failure_message));
    FUZZ_ASSERT(inside(buf, size, r->failed_exe));
    FUZZ_ASSERT(r->argc >= 1 && r->argv_size >= r->argc);
    FUZZ_ASSERT(!(r->flags & ~CPRS_ROLLBACK_F_KNOWN));
    FUZZ_ASSERT(!(r->flags & CPRS_ROLLBACK_F_ARMED) !=
                !(r->flags & CPRS_ROLLBACK_F_ROLLED_BACK));
    for (i = 0; i < r->argc; i++) {
        FUZZ_ASSERT(inside(buf, size, a));
        FUZZ_ASSERT((size_t)(a - r->argv) < r->argv_size);
        a += strnlen(a, r->argv_size - (size_t)(a - r->argv)) + 1;
    }
    FUZZ_ASSERT((size_t)(a - r->argv) == r->argv_size);
    FUZZ_ASSERT(i == 0 || r->argv[0]);
}

/* 0: the ELF reader and pre-flight of the same bytes as a file. */
static void fuzz_elf(const uint8_t *data, size_t size)
{
    CprsElfSrc src = { .fd = -1, .buf = data, .size = size };
    CprsElfScan s1, s2;
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    CprsPlan plan = CPRS_OPTS(CprsPlan);
    CprsPlanOpts po;
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo, .vfio_count = 1);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTarget *t = NULL;
    char path[64];
    uint32_t p;
    int fd, ret, before = -1;

    FUZZ_ASSERT(!cprs_elf_scan(&src, 0, &s1));
    FUZZ_ASSERT(!cprs_elf_scan(&src, 0, &s2));
    FUZZ_ASSERT(s1.flags == s2.flags && s1.marks == s2.marks &&
                s1.n_notes == s2.n_notes);
    FUZZ_ASSERT(!(s1.flags & CPRS_ELF_F_NOTE) == !s1.n_notes);
    FUZZ_ASSERT(!(s1.marks & ~CPRS_MARK_ALL));
    FUZZ_ASSERT(memchr(s1.needed, 0, sizeof(s1.needed)));
    if (s1.flags & CPRS_ELF_F_NEEDS_LIB) {
        FUZZ_ASSERT(!strncmp(s1.needed, "libcprstate.so", 14));
    }

    /* The same bytes as an executable file (a memfd is mode 0777). */
    before = dup(0);
    if (before >= 0) {
        close(before);
    }
    fd = memfd_create("fuzz-target", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ret = cprs_target_open_path(path, NULL, &d, &t);
    if (ret) {
        FUZZ_ASSERT_MSG(ret == -EACCES || ret == -ENOENT || ret == -ENOMEM,
                        "pre-flight: %d", ret);
        close(fd);
        return;
    }
    FUZZ_ASSERT(!cprs_target_get_info(t, &ti));
    FUZZ_ASSERT(ti.klass >= CPRS_TARGET_LIBCPRSTATE &&
                ti.klass < CPRS_TARGET__MAX);
    FUZZ_ASSERT(ti.reason && ti.reason[0]);
    /* The class follows from what the buffer scan found. */
    if (ti.klass == CPRS_TARGET_LIBCPRSTATE &&
        !(ti.flags & CPRS_TARGET_F_NOTE_IN_LIB)) {
        FUZZ_ASSERT(s1.flags & CPRS_ELF_F_NOTE);
    }
    if (ti.klass == CPRS_TARGET_STOCK_QEMU) {
        /* F2.4: QEMU's own mark, and none of this library's code. */
        FUZZ_ASSERT((s1.marks & CPRS_MARK_STOCK) == CPRS_MARK_STOCK &&
                    !(s1.marks & CPRS_MARK_OURS) &&
                    !(s1.flags & CPRS_ELF_F_NOTE));
    }
    for (p = 0; p < CPRS_POLICY__MAX; p++) {
        po = CPRS_OPTS(CprsPlanOpts, .policy = p);
        ret = cprs_target_plan(t, &si, &po, &d, &plan);
        FUZZ_ASSERT(!ret || ret == -EPROTONOSUPPORT);
        if (!ret) {
            FUZZ_ASSERT(plan.format >= CPRS_FORMAT_ARENA &&
                        plan.format < CPRS_FORMAT__MAX && plan.reason);
            /* With a vfio record, an uncertain target is refused unless
             * a policy forced the format (F6.2). */
            if (ti.klass == CPRS_TARGET_UNCERTAIN &&
                !(plan.flags & CPRS_PLAN_F_FORCED)) {
                FUZZ_ASSERT(0);
            }
        }
    }
    cprs_target_free(t);
    close(fd);
    /* No fd left behind: the lowest free number is the same. */
    fd = dup(0);
    FUZZ_ASSERT(fd == before || before < 0);
    if (fd >= 0) {
        close(fd);
    }
}

/* 1: a capability note descriptor. */
static void fuzz_caps(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    CprsCaps c;
    int ret = cprs_caps_decode(data, size, &c, &why);

    FUZZ_ASSERT(!ret || ret == -EBADMSG || ret == -EPROTONOSUPPORT);
    if (ret) {
        FUZZ_ASSERT(why && why[0]);
        return;
    }
    FUZZ_ASSERT(c.version_major == CPRS_CAPS_VERSION_MAJOR);
    FUZZ_ASSERT(!(c.flags & ~CPRS_CAPS_F_KNOWN));
    FUZZ_ASSERT(!(c.legacy_forms & ~CPRS_CAPS_FORMS_KNOWN));
    FUZZ_ASSERT(memchr(c.producer, 0, sizeof(c.producer)));
}

/* 2: a ROLLBACK section. */
static void fuzz_section(const uint8_t *data, size_t size)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollbackRec r, r2;
    int ret = cprs_rollback_decode(data, size, 0, &d, &r);

    FUZZ_ASSERT(!cprs_rollback_decode(data, size, 0, NULL, &r2) == !ret);
    if (ret) {
        FUZZ_ASSERT(ret == -EBADMSG || ret == -EPROTONOSUPPORT);
        fuzz_check_diag(&d, ret, size);
        return;
    }
    check_rec(data, size, &r);
}

/*
 * 3, the loader: the bytes in a sealed memfd, as cpr-exec finds them.
 * What it loads, the buffer path above loaded too (@buffer_ok).
 */
static void fuzz_dual_fd(const uint8_t *data, size_t size, bool buffer_ok)
{
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    void *buf = NULL;
    int fd, ret;

    fd = memfd_create("fuzz-dual", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
    FUZZ_ASSERT(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                       F_SEAL_WRITE | F_SEAL_SEAL));
    ret = cprs_dual_load_fd(fd, &ro, &d, &buf, &r);
    close(fd);
    if (ret) {
        FUZZ_ASSERT(ret == -ENOENT || fuzz_reader_errno_ok(ret));
        FUZZ_ASSERT(!buf && !r);
        if (ret != -ENOENT) {
            fuzz_check_diag(&d, ret, size);
        }
        return;
    }
    FUZZ_ASSERT(buffer_ok && buf && r);
    FUZZ_ASSERT(!cprs_reader_verify(r, NULL));
    cprs_reader_close(r);
    free(buf);
}

/* 3: a dual stream, as the cpr-exec loader reads it. */
static void fuzz_dual(const uint8_t *data, size_t size)
{
    CprsDualInfo di = CPRS_OPTS(CprsDualInfo);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC,
                                  .max_records = 1u << 16);
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *l = NULL;
    CprsReader *r = NULL;
    uint8_t *copy;
    int ret = cprs_dual_locate(data, size, &di, &d);

    if (ret) {
        FUZZ_ASSERT(ret == -ENOENT || ret == -EBADMSG ||
                    ret == -EPROTONOSUPPORT);
        FUZZ_ASSERT(ret == -ENOENT || d.offset <= size);
        fuzz_dual_fd(data, size, false);
        return;
    }
    FUZZ_ASSERT(di.legacy_size <= di.arena_offset &&
                di.arena_offset - di.legacy_size < 8 &&
                di.arena_offset % 8 == 0 &&
                di.arena_offset + di.arena_size + 48 == size);
    /* The arena part in an aligned copy, as the loader holds it. */
    copy = malloc(size);
    FUZZ_ASSERT(copy);
    memcpy(copy, data, size);
    ret = cprs_legacy_decode(copy, (size_t)di.legacy_size, &lo, &d, &l);
    if (!ret) {
        ret = cprs_reader_open_buffer(copy + di.arena_offset,
                                      (size_t)di.arena_size, &ro, &d, &r);
    }
    if (!ret) {
        ret = cprs_reader_verify(r, &d);
    }
    if (!ret) {
        ret = cprs_dual_check(r, l, &d);
        FUZZ_ASSERT(!ret || ret == -EBADMSG || fuzz_reader_errno_ok(ret));
    }
    cprs_reader_close(r);
    cprs_legacy_free(l);
    free(copy);
    fuzz_dual_fd(data, size, !ret);
}

/* 4: the ROLLBACK section of an arena, through the public API. */
static void fuzz_arena(const uint8_t *data, size_t size, bool repair)
{
    CprsRollbackInfo ri = CPRS_OPTS(CprsRollbackInfo);
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollbackRec rec;
    CprsReader *r = NULL;
    const char *arg, *walk;
    const uint8_t *bytes;
    size_t bsize;
    uint8_t *copy;
    uint32_t i;
    int ret;

    copy = malloc(size ? size : 1);
    FUZZ_ASSERT(copy);
    memcpy(copy, data, size);
    if (repair) {
        fuzz_repair_crcs(copy, size);
    }
    if (cprs_reader_open_buffer(copy, size, &ro, &d, &r)) {
        free(copy);
        return;
    }
    ret = cprs_rollback_read(r, &ri, &d);
    FUZZ_ASSERT(!ret || ret == -ENOENT || ret == -EBADMSG ||
                ret == -EPROTONOSUPPORT);
    if (!ret) {
        FUZZ_ASSERT(!cprs_rollback_find_section(r, NULL, &rec));
        bytes = cprs_reader_bytes(r, &bsize);
        check_rec(bytes, bsize, &rec);
        FUZZ_ASSERT(ri.argc == rec.argc && ri.flags == rec.flags);
        /* The arguments follow each other (CprsRollbackInfo.argv); the
         * first ones are also read one by one, which must agree. */
        for (i = 0, walk = ri.argv; i < ri.argc;
             i++, walk += strlen(walk) + 1) {
            FUZZ_ASSERT(inside(bytes, bsize, walk));
            if (i < 64) {
                FUZZ_ASSERT(!cprs_rollback_read_arg(r, i, &arg));
                FUZZ_ASSERT(arg == walk);
            }
        }
        FUZZ_ASSERT(cprs_rollback_read_arg(r, ri.argc, &arg) == -EINVAL);
    }
    cprs_reader_close(r);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_outside_size_range(size, 1, MAX_INPUT)) {
        return 0;
    }
    switch (data[0] % 6) {
    case 0:
        fuzz_elf(data + 1, size - 1);
        break;
    case 1:
        fuzz_caps(data + 1, size - 1);
        break;
    case 2:
        fuzz_section(data + 1, size - 1);
        break;
    case 3:
        fuzz_dual(data + 1, size - 1);
        break;
    default:
        fuzz_arena(data + 1, size - 1, data[0] % 6 == 5);
        break;
    }
    return 0;
}
