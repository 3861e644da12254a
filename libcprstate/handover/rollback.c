/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rollback.c - a failed cpr-exec brings the previous binary back
 * (spec/fail-safe.rst F5).
 *
 * The source, before it execs, arms a rollback: a sealed memfd named
 * QEMU_CPR_ROLLBACK holding a complete arena of the state with one more
 * section, ROLLBACK (type 9), that names the previous executable (an fd
 * opened through /proc/self/exe, which outlives a package update that
 * deletes or replaces the file) and the command that resumes the VM in
 * it.  The new image finds the record before it loads anything, checks
 * every part of it, and on a failure before the VM runs, writes the copy
 * with the failure recorded into a new QEMU_CPR_EXEC_STATE memfd and
 * execveat()s the previous executable: same pid, the guest RAM memfds
 * still open and mapped by nobody else.  The record handed back is
 * ROLLED_BACK and never armed: a rollback never rolls back again.
 *
 * Everything a new image finds is untrusted: the variable, the memfd,
 * the arena, the record, the executable's fd and every recorded fd are
 * checked before anything is exec'd, and any inconsistency is refused
 * with a precise diagnostic.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cprs-failsafe.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

#define SEALS_NEEDED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define SEALS_ALL (SEALS_NEEDED | F_SEAL_SEAL)

struct CprsRollback {
    int memfd;                  /* QEMU_CPR_ROLLBACK, or -1 */
    int exe_fd;                 /* the previous executable, or -1 */
    bool found;                 /* by cprs_rollback_find() (new image) */
    bool triggered;
    uint8_t *bytes;             /* the arena copy, owned */
    size_t size;
    CprsReader *reader;         /* over bytes */
    CprsRollbackRec rec;        /* points into bytes */
};

const char *cprs_failure_stage_name(uint32_t stage)
{
    static const char *const names[CPRS_FAILURE__MAX] = {
        [CPRS_FAILURE_NONE] = "none",
        [CPRS_FAILURE_STATE_LOAD] = "state-load",
        [CPRS_FAILURE_INCOMING] = "incoming",
        [CPRS_FAILURE_DEVICE] = "device",
        [CPRS_FAILURE_OTHER] = "other",
    };

    return stage < CPRS_FAILURE__MAX ? names[stage] : NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Text for a fixed field: printable ASCII kept, the rest '?' (F5.4). */
static void text_set(char *dst, size_t size, const char *src)
{
    size_t i;

    memset(dst, 0, size);
    for (i = 0; src && src[i] && i < size - 1; i++) {
        dst[i] = cprs_name_char_ok((uint8_t)src[i]) ? src[i] : '?';
    }
}

/* Strict decimal fd number from the environment, as spec 11.1 step 1. */
static int env_fd(const char *name, int *ret_fd)
{
    const char *val = getenv(name);
    long v = 0;
    size_t i;

    if (!val) {
        return -ENOENT;
    }
    if (!val[0] || strlen(val) > 10 || (val[0] == '0' && val[1])) {
        return -EINVAL;
    }
    for (i = 0; val[i]; i++) {
        if (val[i] < '0' || val[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (val[i] - '0');
    }
    if (v > INT_MAX) {
        return -EINVAL;
    }
    *ret_fd = (int)v;
    return 0;
}

/* Is @fd a memfd called @name?  (Its /proc link says so.) */
static bool memfd_named(int fd, const char *name)
{
    char path[64], link[128], want[128];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
    n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0) {
        return false;
    }
    link[n] = '\0';
    return !strcmp(link, want);
}

/* A sealed memfd named @name with @buf; close-on-exec as asked. */
static int sealed_memfd(const char *name, const void *buf, size_t size,
                        bool cloexec, int *ret_fd)
{
    const uint8_t *p = buf;
    size_t done = 0;
    ssize_t n;
    int fd, ret;

    fd = memfd_create(name, MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0));
    if (fd < 0) {
        return -errno;
    }
    while (done < size) {
        n = pwrite(fd, p + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            close(fd);
            return ret;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, SEALS_ALL) < 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    *ret_fd = fd;
    return 0;
}

/* ---- The ROLLBACK section (F5.2 to F5.5) ------------------------------ */

/* Bytes of the section holding @r. */
static bool section_size(uint32_t path_size, uint32_t argv_size,
                         uint64_t *ret)
{
    return cprs_add_ok(CPRS_ROLLBACK_V1_SIZE, cprs_align_up(path_size),
                       ret) &&
           cprs_add_ok(*ret, cprs_align_up(argv_size), ret);
}

/* Encode @r (its strings: exe_path, argv of argv_size bytes). */
static int rollback_encode(const CprsRollbackRec *r, uint8_t **ret_buf,
                           size_t *ret_size)
{
    CprsWireRollback w;
    uint32_t psize = (uint32_t)strlen(r->exe_path) + 1;
    uint64_t size;
    uint8_t *buf;

    if (!section_size(psize, r->argv_size, &size) || size > SIZE_MAX) {
        return -E2BIG;
    }
    buf = calloc(1, (size_t)size);
    if (!buf) {
        return -ENOMEM;
    }
    memset(&w, 0, sizeof(w));
    cprs_le16_set(&w.version_major, CPRS_ROLLBACK_VERSION_MAJOR);
    cprs_le16_set(&w.version_minor, CPRS_ROLLBACK_VERSION_MINOR);
    cprs_le32_set(&w.header_size, CPRS_ROLLBACK_V1_SIZE);
    cprs_le32_set(&w.flags, r->flags);
    cprs_le32_set(&w.argc, r->argc);
    cprs_le64_set(&w.generation, r->generation);
    cprs_le64_set(&w.armed_ns, r->armed_ns);
    cprs_le32_set(&w.pid, r->pid);
    cprs_le32_set(&w.exe_fd, (uint32_t)r->exe_fd);
    cprs_le64_set(&w.exe_dev, r->exe_dev);
    cprs_le64_set(&w.exe_ino, r->exe_ino);
    cprs_le64_set(&w.exe_size, r->exe_size);
    cprs_le32_set(&w.exe_mode, r->exe_mode);
    cprs_le32_set(&w.argv_size, r->argv_size);
    cprs_le64_set(&w.state_dev, r->state_dev);
    cprs_le64_set(&w.state_ino, r->state_ino);
    cprs_le32_set(&w.failure_stage, r->failure_stage);
    cprs_le32_set(&w.failure_errno, r->failure_errno);
    cprs_le64_set(&w.failed_ns, r->failed_ns);
    cprs_le64_set(&w.failed_dev, r->failed_dev);
    cprs_le64_set(&w.failed_ino, r->failed_ino);
    cprs_le32_set(&w.exe_path_size, psize);
    text_set(w.failure_message, sizeof(w.failure_message),
             r->failure_message);
    text_set(w.failed_exe, sizeof(w.failed_exe), r->failed_exe);
    memcpy(buf, &w, sizeof(w));
    text_set((char *)buf + CPRS_ROLLBACK_V1_SIZE, psize, r->exe_path);
    memcpy(buf + CPRS_ROLLBACK_V1_SIZE + cprs_align_up(psize), r->argv,
           r->argv_size);
    *ret_buf = buf;
    *ret_size = (size_t)size;
    return 0;
}

/* Printable text, one NUL, zeros to the end of the field (F5.4). */
static bool text_ok(const char *p, size_t size, bool nonempty)
{
    size_t i, nul = size;

    for (i = 0; i < size; i++) {
        if (nul == size && !p[i]) {
            nul = i;
        } else if (nul == size ? !cprs_name_char_ok((uint8_t)p[i]) : !!p[i]) {
            return false;
        }
    }
    return nul < size && (!nonempty || nul > 0);
}

static bool zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

int cprs_rollback_decode(const void *buf, size_t size, uint64_t base,
                         CprsDiag *diag, CprsRollbackRec *ret)
{
    const uint8_t *p = buf;
    CprsWireRollback w;
    CprsRollbackRec r = { 0 };
    uint32_t hsize, psize, known, i, nuls;
    uint64_t total, poff, aoff;
    bool newer;

#define FAIL(err, field, why) \
    cprs_diag_set(diag, (err), base + offsetof(CprsWireRollback, field), \
                  -1, -1, "F5.2", (why))
#define FAILC(err, field, clause, why) \
    cprs_diag_set(diag, (err), base + offsetof(CprsWireRollback, field), \
                  -1, -1, (clause), (why))

    if (size < CPRS_ROLLBACK_V1_SIZE) {
        return cprs_diag_set(diag, -EBADMSG, base + size, -1, -1, "F5.2",
                             "rollback record shorter than its header");
    }
    /* Read once; validate and use the copy (STYLE 4). */
    memcpy(&w, p, sizeof(w));
    if (cprs_le16_get(&w.version_major) != CPRS_ROLLBACK_VERSION_MAJOR) {
        return FAIL(cprs_le16_get(&w.version_major) ? -EPROTONOSUPPORT :
                    -EBADMSG, version_major,
                    "rollback record of an unknown major version");
    }
    newer = cprs_le16_get(&w.version_minor) > CPRS_ROLLBACK_VERSION_MINOR;
    hsize = cprs_le32_get(&w.header_size);
    if (hsize < CPRS_ROLLBACK_V1_SIZE || !cprs_aligned(hsize) ||
        hsize > CPRS_MAX_RECORD_SIZE || hsize > size ||
        (!newer && hsize != CPRS_ROLLBACK_V1_SIZE)) {
        return FAIL(-EBADMSG, header_size, "rollback header_size is wrong");
    }
    r.flags = cprs_le32_get(&w.flags);
    known = newer ? r.flags & CPRS_ROLLBACK_F_KNOWN : r.flags;
    if (known & ~CPRS_ROLLBACK_F_KNOWN) {
        return FAILC(-EBADMSG, flags, "F5.3", "unknown rollback flag");
    }
    r.flags = known;
    /* spec F5.3: armed, or handed back with its failure; never both. */
    if ((r.flags & CPRS_ROLLBACK_F_ARMED) &&
        (r.flags & CPRS_ROLLBACK_F_ROLLED_BACK)) {
        return FAILC(-EBADMSG, flags, "F5.3",
                     "a rollback record armed inside a rollback");
    }
    if (!(r.flags & (CPRS_ROLLBACK_F_ARMED | CPRS_ROLLBACK_F_ROLLED_BACK))) {
        return FAILC(-EBADMSG, flags, "F5.3",
                     "a rollback record neither armed nor rolled back");
    }
    if (!!(r.flags & CPRS_ROLLBACK_F_ROLLED_BACK) !=
        !!(r.flags & CPRS_ROLLBACK_F_FAILURE)) {
        return FAILC(-EBADMSG, flags, "F5.3",
                     "a rolled-back record without its failure, or a "
                     "failure in an armed one");
    }
    r.argc = cprs_le32_get(&w.argc);
    r.argv_size = cprs_le32_get(&w.argv_size);
    psize = cprs_le32_get(&w.exe_path_size);
    if (!r.argc || r.argc > CPRS_ROLLBACK_MAX_ARGC) {
        return FAILC(-EBADMSG, argc, "F5.5", "rollback argc out of range");
    }
    if (r.argv_size < r.argc || r.argv_size > CPRS_ROLLBACK_MAX_ARGV) {
        return FAILC(-EBADMSG, argv_size, "F5.5",
                     "rollback argv_size out of range");
    }
    if (!psize || psize > CPRS_ROLLBACK_MAX_PATH) {
        return FAIL(-EBADMSG, exe_path_size,
                    "rollback exe_path_size out of range");
    }
    r.exe_fd = (int32_t)cprs_le32_get(&w.exe_fd);
    if (r.exe_fd < 0) {
        return FAIL(-EBADMSG, exe_fd, "rollback exe_fd is negative");
    }
    if (!newer && cprs_le32_get(&w.reserved0)) {
        return FAIL(-EBADMSG, reserved0, "rollback reserved0 not zero");
    }
    r.generation = cprs_le64_get(&w.generation);
    r.armed_ns = cprs_le64_get(&w.armed_ns);
    r.pid = cprs_le32_get(&w.pid);
    r.exe_dev = cprs_le64_get(&w.exe_dev);
    r.exe_ino = cprs_le64_get(&w.exe_ino);
    r.exe_size = cprs_le64_get(&w.exe_size);
    r.exe_mode = cprs_le32_get(&w.exe_mode);
    r.state_dev = cprs_le64_get(&w.state_dev);
    r.state_ino = cprs_le64_get(&w.state_ino);
    r.failure_stage = cprs_le32_get(&w.failure_stage);
    r.failure_errno = cprs_le32_get(&w.failure_errno);
    r.failed_ns = cprs_le64_get(&w.failed_ns);
    r.failed_dev = cprs_le64_get(&w.failed_dev);
    r.failed_ino = cprs_le64_get(&w.failed_ino);
    /* spec F5.4: failure fields only with FAILURE, then in range. */
    if (r.flags & CPRS_ROLLBACK_F_FAILURE) {
        if (!r.failure_stage || r.failure_stage >= CPRS_FAILURE__MAX) {
            return FAILC(-EBADMSG, failure_stage, "F5.4",
                         "unknown failure stage");
        }
        if (r.failure_errno >= 4096) {
            return FAILC(-EBADMSG, failure_errno, "F5.4",
                         "failure errno out of range");
        }
    } else if (r.failure_stage || r.failure_errno || r.failed_ns ||
               r.failed_dev || r.failed_ino ||
               !zero((const uint8_t *)w.failure_message,
                     sizeof(w.failure_message)) ||
               !zero((const uint8_t *)w.failed_exe, sizeof(w.failed_exe))) {
        return FAILC(-EBADMSG, failure_stage, "F5.4",
                     "failure fields set in an armed record");
    }
    if (!text_ok(w.failure_message, sizeof(w.failure_message), false)) {
        return FAILC(-EBADMSG, failure_message, "F5.4",
                     "failure message is not printable text and zeros");
    }
    if (!text_ok(w.failed_exe, sizeof(w.failed_exe), false)) {
        return FAILC(-EBADMSG, failed_exe, "F5.4",
                     "failed_exe is not printable text and zeros");
    }
    /* spec F5.2: header, exe_path, argv, each padded; nothing else. */
    poff = hsize;
    if (!cprs_add_ok(poff, cprs_align_up(psize), &aoff) ||
        !cprs_add_ok(aoff, cprs_align_up(r.argv_size), &total) ||
        total != size) {
        return FAIL(-EBADMSG, exe_path_size,
                    "rollback record size differs from its parts");
    }
    if (!text_ok((const char *)p + poff, psize, true) ||
        !zero(p + poff + psize, aoff - poff - psize)) {
        return cprs_diag_set(diag, -EBADMSG, base + poff, -1, -1, "F5.2",
                             "rollback exe_path is not printable text");
    }
    /* spec F5.5: exactly argc strings, the first one not empty. */
    if (p[aoff + r.argv_size - 1] || !p[aoff]) {
        return cprs_diag_set(diag, -EBADMSG, base + aoff, -1, -1, "F5.5",
                             "rollback argv does not end with a NUL, or "
                             "argv[0] is empty");
    }
    for (i = 0, nuls = 0; i < r.argv_size; i++) {
        nuls += !p[aoff + i];
    }
    CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, r.argv_size);
    if (nuls != r.argc) {
        return cprs_diag_set(diag, -EBADMSG, base + aoff, -1, -1, "F5.5",
                             "rollback argv does not hold argc strings");
    }
    if (!zero(p + aoff + r.argv_size, total - aoff - r.argv_size)) {
        return cprs_diag_set(diag, -EBADMSG, base + aoff + r.argv_size, -1,
                             -1, "F5.2", "rollback padding not zero");
    }
#undef FAIL
#undef FAILC
    r.failure_message = (const char *)p +
                        offsetof(CprsWireRollback, failure_message);
    r.failed_exe = (const char *)p + offsetof(CprsWireRollback, failed_exe);
    r.exe_path = (const char *)p + poff;
    r.argv = (const char *)p + aoff;
    *ret = r;
    return 0;
}

int cprs_rollback_find_section(CprsReader *rd, CprsDiag *diag,
                               CprsRollbackRec *ret)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsSectionInfo si, found = { 0 };
    const uint8_t *bytes;
    size_t size;
    uint32_t i, n, hits = 0;
    int idx = -1, r;

    if (!rd || !ret) {
        return -EINVAL;
    }
    n = cprs_reader_section_count(rd);
    for (i = 0; i < n; i++) {
        si = CPRS_OPTS(CprsSectionInfo);
        if (cprs_reader_section_get(rd, i, &si) ||
            si.type != CPRS_SECTION_ROLLBACK) {
            continue;
        }
        if (hits++) {
            return cprs_diag_set(diag, -EBADMSG, si.entry_offset, (int32_t)i,
                                 -1, "F5.1", "more than one ROLLBACK "
                                 "section");
        }
        found = si;
        idx = (int)i;
    }
    if (idx < 0) {
        return -ENOENT;
    }
    /* spec F5.1: optional, stored raw, checked by its own CRC. */
    if (found.flags) {
        return cprs_diag_set(diag, -EBADMSG, found.entry_offset + 4, idx, -1,
                             "F5.1", "a ROLLBACK section is neither "
                             "required nor compressed");
    }
    bytes = cprs_reader_bytes(rd, &size);
    if (!bytes || !cprs_range_ok(size, found.offset, found.stored_size)) {
        return cprs_diag_set(diag, -EBADMSG, found.entry_offset, idx, -1,
                             "4.4", "ROLLBACK section outside the arena");
    }
    CPRS_WORK_ADD(CPRS_WORK_CRC_BYTES, found.stored_size);
    if (cprs_crc32c(0, bytes + found.offset, found.stored_size) !=
        found.crc32c) {
        return cprs_diag_set(diag, -EBADMSG, found.offset, idx, -1, "4.7",
                             "ROLLBACK section CRC mismatch");
    }
    r = cprs_rollback_decode(bytes + found.offset, found.stored_size,
                             found.offset, diag, ret);
    if (r) {
        if (diag) {
            diag->section = idx;
        }
        return r;
    }
    /* spec F5.6: the record belongs to the arena it is in. */
    cprs_reader_get_info(rd, &ai);
    if (ret->generation != ai.generation) {
        return cprs_diag_set(diag, -EBADMSG, found.offset +
                             offsetof(CprsWireRollback, generation), idx, -1,
                             "F5.6", "the rollback record's generation is "
                             "not its arena's");
    }
    ret->section_offset = found.offset;
    ret->section_size = found.stored_size;
    return 0;
}

/* ---- Arena surgery: one more section (F5.1) --------------------------- */

/* Recompute the directory and header CRCs of a laid-out arena. */
static void fix_head_crcs(uint8_t *buf)
{
    CprsWireHeader *h = (CprsWireHeader *)buf;
    uint64_t dir = cprs_le64_get(&h->dir_offset);
    uint32_t n = cprs_le32_get(&h->dir_count);
    uint32_t esz = cprs_le32_get(&h->dir_entry_size);
    uint32_t hsz = cprs_le32_get(&h->header_size);

    cprs_le32_set(&h->dir_crc32c,
                  cprs_crc32c(0, buf + dir, (size_t)n * esz));
    cprs_le32_set(&h->header_crc32c, 0);
    cprs_le32_set(&h->header_crc32c, cprs_crc32c(0, buf, hsz));
}

int cprs_arena_append_section(const void *arena, size_t size, uint32_t type,
                              uint32_t flags, const void *data, size_t len,
                              void **ret_buf, size_t *ret_size)
{
    CprsWireHeader h;
    CprsWireSection e;
    uint64_t dir, esz, hsz, asz, n, i, off, sec_off, total;
    uint8_t *buf;

    if (!arena || size < sizeof(h) || (!data && len) || !ret_buf ||
        !ret_size) {
        return -EINVAL;
    }
    memcpy(&h, arena, sizeof(h));
    dir = cprs_le64_get(&h.dir_offset);
    esz = cprs_le32_get(&h.dir_entry_size);
    hsz = cprs_le32_get(&h.header_size);
    asz = cprs_le64_get(&h.arena_size);
    n = cprs_le32_get(&h.dir_count);
    /* The writer's layout (9.3): directory right after the header. */
    if (dir != hsz || esz != CPRS_SECTION_V1_SIZE || asz != size ||
        n >= CPRS_MAX_SECTIONS || !cprs_aligned(asz) ||
        dir + n * esz > asz) {
        return -EINVAL;
    }
    sec_off = asz + esz;
    if (!cprs_add_ok(sec_off, len, &total) ||
        (total = cprs_align_up(total)) > CPRS_MAX_ARENA_SIZE ||
        total > SIZE_MAX) {
        return -E2BIG;
    }
    buf = calloc(1, (size_t)total);
    if (!buf) {
        return -ENOMEM;
    }
    /* Header and old entries, then everything after them one entry on. */
    memcpy(buf, arena, (size_t)(dir + n * esz));
    memcpy(buf + dir + (n + 1) * esz, (const uint8_t *)arena + dir +
           n * esz, (size_t)(asz - dir - n * esz));
    for (i = 0; i < n; i++) {
        memcpy(&e, buf + dir + i * esz, sizeof(e));
        off = cprs_le64_get(&e.offset);
        cprs_le64_set(&e.offset, off + esz);
        memcpy(buf + dir + i * esz, &e, sizeof(e));
    }
    memset(&e, 0, sizeof(e));
    cprs_le32_set(&e.type, type);
    cprs_le32_set(&e.flags, flags);
    cprs_le64_set(&e.offset, sec_off);
    cprs_le64_set(&e.stored_size, len);
    cprs_le64_set(&e.raw_size, len);
    cprs_le32_set(&e.crc32c, cprs_crc32c(0, data, len));
    memcpy(buf + dir + n * esz, &e, sizeof(e));
    if (len) {
        memcpy(buf + sec_off, data, len);
    }
    cprs_le32_set(&h.dir_count, (uint32_t)(n + 1));
    cprs_le64_set(&h.arena_size, total);
    memcpy(buf, &h, sizeof(h));
    fix_head_crcs(buf);
    *ret_buf = buf;
    *ret_size = (size_t)total;
    return 0;
}

/* ---- Checks shared by find and trigger -------------------------------- */

/* spec F5.6: the previous executable's fd, as recorded. */
static int check_exe(const CprsRollbackRec *r, int memfd, CprsDiag *diag)
{
    struct stat st;

    if (r->exe_fd == memfd) {
        return cprs_diag_set(diag, -EBADMSG, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the executable's fd is the rollback "
                             "memfd");
    }
    if (fstat(r->exe_fd, &st) < 0) {
        return cprs_diag_set(diag, -EBADF, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "open");
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        return cprs_diag_set(diag, -EBADMSG, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "an executable regular file");
    }
    if ((uint64_t)st.st_dev != r->exe_dev ||
        (uint64_t)st.st_ino != r->exe_ino ||
        (uint64_t)st.st_size != r->exe_size || st.st_mode != r->exe_mode) {
        return cprs_diag_set(diag, -ESTALE, r->section_offset +
                             offsetof(CprsWireRollback, exe_dev), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "the file recorded");
    }
    return 0;
}

/* spec F5.6 and 11.4: every fd of the copy is open and the same file. */
static int check_fds(CprsReader *rd, const CprsRollbackRec *r, int memfd,
                     CprsDiag *diag)
{
    CprsFdInfo fi;
    struct stat st;
    uint32_t i, n = cprs_reader_fd_count(rd);
    int ret;

    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(rd, i, &fi);
        if (ret) {
            return cprs_diag_set(diag, ret, 0, -1, i, "F5.6",
                                 "an fd record of the copy is bad");
        }
        if (fi.fd == r->exe_fd || fi.fd == memfd) {
            return cprs_diag_set(diag, -EBADMSG, 0, -1, i, "F5.6",
                                 "a state fd is also the executable's fd or "
                                 "the rollback memfd");
        }
        if (fstat(fi.fd, &st) < 0) {
            return cprs_diag_set(diag, -ESTALE, 0, -1, i, "F5.6",
                                 "a recorded fd is no longer open");
        }
        if ((fi.flags & CPRS_FD_F_IDENTITY) &&
            ((uint64_t)st.st_dev != fi.dev ||
             (uint64_t)st.st_ino != fi.ino)) {
            return cprs_diag_set(diag, -ESTALE, 0, -1, i, "F5.6",
                                 "a recorded fd is another file (device or "
                                 "inode differs)");
        }
    }
    return 0;
}

/* Open the copy held in rb->bytes, verify it, find its record. */
static int open_copy(CprsRollback *rb, CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    int ret;

    ret = cprs_reader_open_buffer(rb->bytes, rb->size, NULL, diag,
                                  &rb->reader);
    if (!ret) {
        ret = cprs_reader_verify(rb->reader, diag);
    }
    if (ret) {
        return ret;
    }
    cprs_reader_get_info(rb->reader, &ai);
    if (ai.mode != CPRS_MODE_EXEC) {
        return cprs_diag_set(diag, -EBADMSG, offsetof(CprsWireHeader, mode),
                             -1, -1, "F5.1", "the rollback copy is not a "
                             "cpr-exec arena");
    }
    ret = cprs_rollback_find_section(rb->reader, diag, &rb->rec);
    if (ret == -ENOENT) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "F5.1",
                             "the rollback memfd holds no ROLLBACK section");
    }
    return ret;
}

static void rollback_free(CprsRollback *rb)
{
    cprs_reader_close(rb->reader);
    free(rb->bytes);
    free(rb);
}

void cprs_rollback_forget(CprsRollback *rb)
{
    if (rb) {
        rollback_free(rb);
    }
}

/* ---- Arming (F5.1) ---------------------------------------------------- */

/* argv as one block of NUL-terminated strings, within F5.5's limits. */
static int pack_argv(char *const *argv, char **ret_block, uint32_t *ret_argc,
                     uint32_t *ret_size)
{
    uint64_t size = 0;
    uint32_t argc = 0, i;
    char *block, *q;
    size_t len;

    if (!argv || !argv[0] || !argv[0][0]) {
        return -EINVAL;
    }
    for (argc = 0; argv[argc]; argc++) {
        if (argc >= CPRS_ROLLBACK_MAX_ARGC) {
            return -EINVAL;
        }
        size += strlen(argv[argc]) + 1;
        if (size > CPRS_ROLLBACK_MAX_ARGV) {
            return -EINVAL;
        }
    }
    block = malloc((size_t)size);
    if (!block) {
        return -ENOMEM;
    }
    for (i = 0, q = block; i < argc; i++) {
        len = strlen(argv[i]) + 1;
        memcpy(q, argv[i], len);
        q += len;
    }
    *ret_block = block;
    *ret_argc = argc;
    *ret_size = (uint32_t)size;
    return 0;
}

int cprs_rollback_arm(CprsState *state, int state_fd,
                      const CprsRollbackOpts *opts, CprsDiag *diag,
                      CprsRollback **ret_rollback)
{
    CprsRollbackOpts o;
    CprsRollbackRec r = { 0 };
    CprsRollback *rb = NULL;
    CprsWireHeader h;
    struct stat st, sst;
    char exe_path[PATH_MAX], val[16], *argv_block = NULL;
    uint8_t *sec = NULL;
    void *copy = NULL;
    size_t copy_size = 0, sec_size;
    ssize_t n;
    int exe_fd = -1, memfd = -1, ret;

    if (!state || state_fd < 0 || !ret_rollback ||
        cprs_opts_copy(&o, sizeof(o), opts) || o.flags || o.reserved0) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = pack_argv(o.argv, &argv_block, &r.argc, &r.argv_size);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.5",
                             ret == -ENOMEM ? "out of memory" :
                             "the rollback argv is empty or over the "
                             "limits");
    }
    if (fstat(state_fd, &sst) < 0 || !S_ISREG(sst.st_mode) ||
        !memfd_named(state_fd, CPRS_EXEC_STATE_NAME)) {
        free(argv_block);
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F5.6",
                             "the state fd is not the QEMU_CPR_EXEC_STATE "
                             "memfd");
    }
    /* spec F5.1: the running executable, even if deleted or replaced. */
    exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe_fd < 0 || fstat(exe_fd, &st) < 0) {
        ret = -errno;
        goto fail_errno;
    }
    n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    if (n <= 0) {
        snprintf(exe_path, sizeof(exe_path), "/proc/%d/exe", (int)getpid());
    }

    /* The copy: the state as an exec arena, with identities (F5.1). */
    ret = cprs_state_rollback_copy(state, o.producer, diag, &copy,
                                   &copy_size);
    if (ret) {
        goto fail;
    }
    memcpy(&h, copy, sizeof(h));
    r.flags = CPRS_ROLLBACK_F_ARMED;
    r.generation = cprs_le64_get(&h.generation);
    r.armed_ns = now_ns();
    r.pid = (uint32_t)getpid();
    r.exe_fd = exe_fd;
    r.exe_dev = (uint64_t)st.st_dev;
    r.exe_ino = (uint64_t)st.st_ino;
    r.exe_size = (uint64_t)st.st_size;
    r.exe_mode = st.st_mode;
    r.state_dev = (uint64_t)sst.st_dev;
    r.state_ino = (uint64_t)sst.st_ino;
    r.exe_path = exe_path;
    r.argv = argv_block;
    ret = rollback_encode(&r, &sec, &sec_size);
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.2",
                      "cannot encode the rollback record");
        goto fail;
    }
    rb = calloc(1, sizeof(*rb));
    if (!rb) {
        ret = cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
        goto fail;
    }
    ret = cprs_arena_append_section(copy, copy_size, CPRS_SECTION_ROLLBACK,
                                    0, sec, sec_size, (void **)&rb->bytes,
                                    &rb->size);
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                      "cannot add the ROLLBACK section");
        goto fail;
    }
    ret = open_copy(rb, diag);
    if (!ret) {
        ret = sealed_memfd(CPRS_ROLLBACK_NAME, rb->bytes, rb->size, true,
                           &memfd);
        if (ret) {
            cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                          "cannot write the rollback memfd");
        }
    }
    if (ret) {
        goto fail;
    }
    snprintf(val, sizeof(val), "%d", memfd);
    if (setenv(CPRS_ROLLBACK_NAME, val, 1) < 0) {
        ret = cprs_diag_set(diag, -errno, 0, -1, -1, "F5.1",
                            "cannot set QEMU_CPR_ROLLBACK");
        goto fail;
    }
    /* Persisted as the state memfd is (spec 11.1): both survive exec. */
    fcntl(memfd, F_SETFD, 0);
    fcntl(exe_fd, F_SETFD, 0);
    rb->memfd = memfd;
    rb->exe_fd = exe_fd;
    free(argv_block);
    free(sec);
    free(copy);
    *ret_rollback = rb;
    return 0;

fail_errno:
    cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                  "cannot open the running executable");
fail:
    if (memfd >= 0) {
        close(memfd);
    }
    if (exe_fd >= 0) {
        close(exe_fd);
    }
    if (rb) {
        rollback_free(rb);
    }
    free(argv_block);
    free(sec);
    free(copy);
    return ret;
}

/* ---- Finding (F5.6) --------------------------------------------------- */

int cprs_rollback_find(uint32_t flags, CprsDiag *diag,
                       CprsRollback **ret_rollback)
{
    CprsRollback *rb;
    struct stat st, sst;
    size_t done = 0;
    ssize_t n;
    int fd, sfd, seals, ret;

    if (!ret_rollback || (flags & ~CPRS_ROLLBACK_FIND_F_UNBOUND)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = env_fd(CPRS_ROLLBACK_NAME, &fd);
    if (ret == -ENOENT) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.6",
                             "no rollback is armed");
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK is not a plain decimal fd "
                             "number");
    }
    if (fcntl(fd, F_GETFD) < 0) {
        return cprs_diag_set(diag, -EBADF, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK names an fd that is not "
                             "open");
    }
    if (!memfd_named(fd, CPRS_ROLLBACK_NAME)) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK names an fd that is not the "
                             "QEMU_CPR_ROLLBACK memfd");
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & SEALS_NEEDED) != SEALS_NEEDED) {
        return cprs_diag_set(diag, -EPERM, 0, -1, -1, "F5.6",
                             "the rollback memfd is not sealed against "
                             "write, grow and shrink");
    }
    if (fstat(fd, &st) < 0) {
        return cprs_diag_set(diag, -errno, 0, -1, -1, "F5.6",
                             "cannot examine the rollback memfd");
    }
    if ((uint64_t)st.st_size > CPRS_MAX_ARENA_SIZE ||
        (uint64_t)st.st_size > SIZE_MAX) {
        return cprs_diag_set(diag, -E2BIG, 0, -1, -1, "7",
                             "the rollback memfd is over the arena limit");
    }
    rb = calloc(1, sizeof(*rb));
    if (rb) {
        rb->size = (size_t)st.st_size;
        rb->bytes = malloc(rb->size ? rb->size : 1);
    }
    if (!rb || !rb->bytes) {
        free(rb);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    rb->memfd = -1;
    rb->exe_fd = -1;
    rb->found = true;
    /* Read once into our own memory: nothing changes after the checks. */
    while (done < rb->size) {
        n = pread(fd, rb->bytes + done, rb->size - done, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -EBADMSG;
            cprs_diag_set(diag, ret, done, -1, -1, "F5.6",
                          "cannot read the rollback memfd");
            goto fail;
        }
        done += (size_t)n;
    }
    CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, rb->size);
    ret = open_copy(rb, diag);
    if (ret) {
        goto fail;
    }
    /* spec F5.3: a record handed back is never armed again. */
    if (rb->rec.flags & CPRS_ROLLBACK_F_ROLLED_BACK) {
        ret = cprs_diag_set(diag, -ELOOP, rb->rec.section_offset +
                            offsetof(CprsWireRollback, flags), -1, -1,
                            "F5.3", "the record is that of a rollback: a "
                            "rollback never rolls back again");
        goto fail;
    }
    /* spec F5.6: armed by this process, for the state of this hop. */
    if (rb->rec.pid != (uint32_t)getpid()) {
        ret = cprs_diag_set(diag, -ESTALE, rb->rec.section_offset +
                            offsetof(CprsWireRollback, pid), -1, -1, "F5.6",
                            "the rollback was armed by another process");
        goto fail;
    }
    if (!(flags & CPRS_ROLLBACK_FIND_F_UNBOUND)) {
        if (env_fd(CPRS_EXEC_STATE_NAME, &sfd) || fstat(sfd, &sst) < 0 ||
            (uint64_t)sst.st_dev != rb->rec.state_dev ||
            (uint64_t)sst.st_ino != rb->rec.state_ino) {
            ret = cprs_diag_set(diag, -ESTALE, rb->rec.section_offset +
                                offsetof(CprsWireRollback, state_dev), -1,
                                -1, "F5.6", "the rollback record belongs to "
                                "another hop's state");
            goto fail;
        }
    }
    ret = check_exe(&rb->rec, fd, diag);
    if (!ret) {
        ret = check_fds(rb->reader, &rb->rec, fd, diag);
    }
    if (ret) {
        goto fail;
    }
    /* Accepted: keep both fds, but out of every other exec from now. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(rb->rec.exe_fd, F_SETFD, FD_CLOEXEC);
    rb->memfd = fd;
    rb->exe_fd = rb->rec.exe_fd;
    *ret_rollback = rb;
    return 0;

fail:
    rollback_free(rb);
    return ret;
}

/* ---- Triggering (F5.7) ------------------------------------------------ */

/* The environment of the previous binary: F5.7 step 5. */
static char **handoff_env(int state_fd)
{
    static const char drop1[] = CPRS_EXEC_STATE_NAME "=";
    static const char drop2[] = CPRS_ROLLBACK_NAME "=";
    size_t n = 0, i, k = 0;
    char **env;

    while (environ && environ[n]) {
        n++;
    }
    env = calloc(n + 2, sizeof(*env));
    if (!env) {
        return NULL;
    }
    env[k] = malloc(sizeof(drop1) + 12);
    if (!env[k]) {
        free(env);
        return NULL;
    }
    snprintf(env[k++], sizeof(drop1) + 12, "%s%d", drop1, state_fd);
    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], drop1, sizeof(drop1) - 1) &&
            strncmp(environ[i], drop2, sizeof(drop2) - 1)) {
            env[k++] = environ[i];
        }
    }
    env[k] = NULL;
    return env;
}

/* The copy, handed back: ROLLED_BACK with @f (F5.7 steps 2 and 3). */
static int handoff_bytes(const CprsRollback *rb, const CprsFailure *f,
                         uint8_t **ret_buf)
{
    const CprsRollbackRec *r = &rb->rec;
    CprsWireRollback w;
    CprsWireSection e;
    CprsWireHeader h;
    CprsSectionInfo si;
    char exe[PATH_MAX];
    struct stat st;
    uint64_t dir;
    uint32_t i, n = cprs_reader_section_count(rb->reader);
    uint8_t *buf;
    ssize_t len;
    int idx = -1;

    for (i = 0; i < n && idx < 0; i++) {
        si = CPRS_OPTS(CprsSectionInfo);
        if (!cprs_reader_section_get(rb->reader, i, &si) &&
            si.type == CPRS_SECTION_ROLLBACK) {
            idx = (int)i;
        }
    }
    if (idx < 0) {
        return -EBADMSG;
    }
    buf = malloc(rb->size);
    if (!buf) {
        return -ENOMEM;
    }
    memcpy(buf, rb->bytes, rb->size);
    memcpy(&w, buf + r->section_offset, sizeof(w));
    cprs_le32_set(&w.flags, CPRS_ROLLBACK_F_ROLLED_BACK |
                  CPRS_ROLLBACK_F_FAILURE);
    cprs_le32_set(&w.failure_stage, f->stage);
    cprs_le32_set(&w.failure_errno, (uint32_t)-f->error);
    cprs_le64_set(&w.failed_ns, now_ns());
    if (!stat("/proc/self/exe", &st)) {
        cprs_le64_set(&w.failed_dev, (uint64_t)st.st_dev);
        cprs_le64_set(&w.failed_ino, (uint64_t)st.st_ino);
    }
    len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[len > 0 ? len : 0] = '\0';
    text_set(w.failed_exe, sizeof(w.failed_exe), exe);
    text_set(w.failure_message, sizeof(w.failure_message),
             f->message ? f->message : "");
    memcpy(buf + r->section_offset, &w, sizeof(w));
    /* The section CRC in its entry, then the directory and header CRCs. */
    memcpy(&h, buf, sizeof(h));
    dir = cprs_le64_get(&h.dir_offset) +
          (uint64_t)idx * cprs_le32_get(&h.dir_entry_size);
    memcpy(&e, buf + dir, sizeof(e));
    cprs_le32_set(&e.crc32c, cprs_crc32c(0, buf + r->section_offset,
                                         r->section_size));
    memcpy(buf + dir, &e, sizeof(e));
    fix_head_crcs(buf);
    *ret_buf = buf;
    return 0;
}

int cprs_rollback_trigger(CprsRollback *rb, const CprsFailure *failure,
                          CprsDiag *diag)
{
    CprsFailure f;
    CprsReader *check = NULL;
    CprsRollbackRec rec;
    CprsFdInfo fi;
    uint8_t *buf = NULL;
    char **argv = NULL, **env = NULL;
    const char *a;
    int *saved = NULL, state_fd = -1, old_state = -1, old_flags = -1;
    uint32_t i, nfds = 0;
    int ret;

    if (!rb || !rb->found || rb->triggered || rb->memfd < 0 ||
        cprs_opts_copy(&f, sizeof(f), failure) ||
        !f.stage || f.stage >= CPRS_FAILURE__MAX || f.error > 0 ||
        f.error <= -4096) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    /* spec F5.7 step 1: the executable and the fds, again. */
    ret = check_exe(&rb->rec, rb->memfd, diag);
    if (!ret) {
        ret = check_fds(rb->reader, &rb->rec, rb->memfd, diag);
    }
    if (ret) {
        return ret;
    }
    ret = handoff_bytes(rb, &f, &buf);
    /* The copy handed back must itself be valid, ROLLED_BACK (F5.7). */
    if (!ret) {
        ret = cprs_reader_open_buffer(buf, rb->size, NULL, diag, &check);
    }
    if (!ret) {
        ret = cprs_reader_verify(check, diag);
    }
    if (!ret) {
        ret = cprs_rollback_find_section(check, diag, &rec);
    }
    cprs_reader_close(check);
    if (!ret) {
        ret = sealed_memfd(CPRS_EXEC_STATE_NAME, buf, rb->size, false,
                           &state_fd);
    }
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.7",
                      "cannot write the state handed back");
        goto out;
    }
    argv = calloc(rb->rec.argc + 1, sizeof(*argv));
    env = handoff_env(state_fd);
    nfds = cprs_reader_fd_count(rb->reader);
    saved = calloc(nfds ? nfds : 1, sizeof(*saved));
    if (!argv || !env || !saved) {
        ret = cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
        goto out;
    }
    for (i = 0, a = rb->rec.argv; i < rb->rec.argc; i++) {
        argv[i] = (char *)a;
        a += strlen(a) + 1;
    }
    /*
     * spec F5.7 step 4: the copy's fds inheritable (the load of this
     * image made them close-on-exec), the stale state memfd not; the
     * rollback memfd and the executable's fd are close-on-exec already.
     */
    for (i = 0; i < nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        cprs_reader_fd_get(rb->reader, i, &fi);
        saved[i] = fcntl(fi.fd, F_GETFD);
        fcntl(fi.fd, F_SETFD, 0);
    }
    if (!env_fd(CPRS_EXEC_STATE_NAME, &old_state) &&
        old_state != state_fd && memfd_named(old_state,
                                             CPRS_EXEC_STATE_NAME)) {
        old_flags = fcntl(old_state, F_GETFD);
        fcntl(old_state, F_SETFD, FD_CLOEXEC);
    }
    rb->triggered = true;
    syscall(SYS_execveat, rb->exe_fd, "", argv, env, AT_EMPTY_PATH);
    ret = cprs_diag_set(diag, -errno, 0, -1, -1, "F5.7",
                        "cannot exec the previous executable");
    rb->triggered = false;
    /* Undo: every flag as it was, the new memfd gone. */
    for (i = 0; i < nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        cprs_reader_fd_get(rb->reader, i, &fi);
        if (saved[i] >= 0) {
            fcntl(fi.fd, F_SETFD, saved[i]);
        }
    }
    if (old_flags >= 0) {
        fcntl(old_state, F_SETFD, old_flags);
    }

out:
    if (state_fd >= 0) {
        close(state_fd);
    }
    if (env) {
        free(env[0]);
        free(env);
    }
    free(argv);
    free(saved);
    free(buf);
    return ret;
}

/* ---- Disarming, information ------------------------------------------- */

void cprs_rollback_disarm(CprsRollback *rb)
{
    int fd;

    if (!rb) {
        return;
    }
    if (rb->memfd >= 0) {
        if (!env_fd(CPRS_ROLLBACK_NAME, &fd) && fd == rb->memfd) {
            unsetenv(CPRS_ROLLBACK_NAME);
        }
        close(rb->memfd);
    }
    if (rb->exe_fd >= 0) {
        close(rb->exe_fd);
    }
    rollback_free(rb);
}

static void rec_info(const CprsRollbackRec *r, CprsRollbackInfo *ri)
{
    *ri = (CprsRollbackInfo) {
        .sz = sizeof(*ri),
        .flags = r->flags,
        .argc = r->argc,
        .generation = r->generation,
        .armed_ns = r->armed_ns,
        .pid = r->pid,
        .exe_fd = r->exe_fd,
        .exe_dev = r->exe_dev,
        .exe_ino = r->exe_ino,
        .exe_size = r->exe_size,
        .exe_mode = r->exe_mode,
        .failure_stage = r->failure_stage,
        .failure_error = -(int32_t)r->failure_errno,
        .failed_ns = r->failed_ns,
        .exe_path = r->exe_path,
        .failure_message = r->failure_message,
        .failed_exe = r->failed_exe,
    };
}

int cprs_rollback_get_info(const CprsRollback *rb, CprsRollbackInfo *info)
{
    CprsRollbackInfo ri;

    if (!rb || !info) {
        return -EINVAL;
    }
    rec_info(&rb->rec, &ri);
    return cprs_info_fill(info, &ri, sizeof(ri));
}

int cprs_rollback_read(CprsReader *reader, CprsRollbackInfo *info,
                       CprsDiag *diag)
{
    CprsRollbackRec r;
    CprsRollbackInfo ri;
    int ret;

    if (!reader || !info) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = cprs_rollback_find_section(reader, diag, &r);
    if (ret) {
        return ret;
    }
    rec_info(&r, &ri);
    return cprs_info_fill(info, &ri, sizeof(ri));
}

int cprs_rollback_read_arg(CprsReader *reader, uint32_t index,
                           const char **ret_arg)
{
    CprsRollbackRec r;
    const char *a;
    uint32_t i;
    int ret;

    if (!reader || !ret_arg) {
        return -EINVAL;
    }
    ret = cprs_rollback_find_section(reader, NULL, &r);
    if (ret) {
        return ret;
    }
    if (index >= r.argc) {
        return -EINVAL;
    }
    for (i = 0, a = r.argv; i < index; i++) {
        a += strlen(a) + 1;
    }
    *ret_arg = a;
    return 0;
}

/* ---- The state's load path (F5.7) ------------------------------------- */

int cprs_state_rollback_load(CprsReader *r, uint32_t mode, CprsDiag *diag,
                             CprsStateRollback **ret)
{
    CprsStateRollback *sr;
    CprsRollbackRec rec;
    int res;

    *ret = NULL;
    /* The loader consults what this library reads (the note's table). */
    if (!(cprs_caps_self_flags() & CPRS_CAPS_F_ROLLBACK)) {
        return 0;
    }
    res = cprs_rollback_find_section(r, diag, &rec);
    if (res == -ENOENT) {
        return 0;
    }
    if (res) {
        return res;
    }
    if (mode != CPRS_MODE_EXEC) {
        return cprs_diag_set(diag, -EBADMSG, rec.section_offset, -1, -1,
                             "F5.1", "a rollback record in a cpr-transfer "
                             "state");
    }
    /* Armed records travel in their own memfd, never as the state. */
    if (!(rec.flags & CPRS_ROLLBACK_F_ROLLED_BACK)) {
        return cprs_diag_set(diag, -EBADMSG, rec.section_offset +
                             offsetof(CprsWireRollback, flags), -1, -1,
                             "F5.7", "an armed rollback record inside the "
                             "state");
    }
    sr = calloc(1, sizeof(*sr));
    if (!sr) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    sr->flags = rec.flags;
    sr->stage = rec.failure_stage;
    sr->error = -(int32_t)rec.failure_errno;
    sr->failed_ns = rec.failed_ns;
    memcpy(sr->message, rec.failure_message, sizeof(sr->message));
    memcpy(sr->failed_exe, rec.failed_exe, sizeof(sr->failed_exe));
    *ret = sr;
    return 0;
}
