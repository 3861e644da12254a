/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rollback-record.c - the rollback record (spec/fail-safe.rst F5.2 to
 * F5.5): the ROLLBACK section's encoder and decoder, the arena surgery
 * that adds the section, and what the state's load path and cprdump read
 * of it.  The hand-over itself (arm, find, trigger) is rollback.c; this
 * file calls nothing of the state, so that the state's loader can call
 * it.
 *
 * A ROLLBACK section is hostile until validated: it is decoded from one
 * copy of its bytes, every size and offset checked against the section
 * before use, every string bounded and checked byte by byte.
 */
#include <stdlib.h>

#include "cprs-failsafe.h"

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

/* Text for a fixed field: printable ASCII kept, the rest '?' (F5.4). */
void cprs_text_set(char *dst, size_t size, const char *src)
{
    size_t i;

    memset(dst, 0, size);
    for (i = 0; src && src[i] && i < size - 1; i++) {
        dst[i] = cprs_name_char_ok((uint8_t)src[i]) ? src[i] : '?';
    }
}

/* Strict decimal fd number from the environment, as spec 11.1 step 1. */
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
int cprs_rollback_encode(const CprsRollbackRec *r, uint8_t **ret_buf,
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
    cprs_text_set(w.failure_message, sizeof(w.failure_message),
             r->failure_message);
    cprs_text_set(w.failed_exe, sizeof(w.failed_exe), r->failed_exe);
    memcpy(buf, &w, sizeof(w));
    cprs_text_set((char *)buf + CPRS_ROLLBACK_V1_SIZE, psize, r->exe_path);
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
void cprs_arena_fix_crcs(uint8_t *buf)
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
    cprs_arena_fix_crcs(buf);
    *ret_buf = buf;
    *ret_size = (size_t)total;
    return 0;
}

/* ---- Reading a record (cprdump, the state) ---------------------------- */

void cprs_rollback_rec_info(const CprsRollbackRec *r, CprsRollbackInfo *ri)
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
        .argv = r->argv,
    };
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
    cprs_rollback_rec_info(&r, &ri);
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
