/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-rollback.c - the rollback record and the dual stream
 * (spec/fail-safe.rst F4, F5): the ROLLBACK section's decoder on every
 * kind of bad record, the arena surgery that adds it, dual streams
 * composed, located, compared and loaded, a rollback armed and found,
 * every forged or inconsistent record refused before anything runs, and
 * a real hand-back: this program arms a rollback, execs itself as the
 * "next image", fails there, and is exec'd again as the previous binary,
 * same pid, with its RAM bytes, its fds and the failure checked; then a
 * loop is attempted and refused, and cprdump shows the record.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "helpers.h"

#define RAM_SIZE (4 * 4096)
#define CHILD_ARG "--rollback-child"

/* ---- A small VM: RAM in a memfd, an eventfd with a count --------------- */

typedef struct MiniVm {
    CprsState *state;
    int ram;
    int irq;
} MiniVm;

static uint8_t ram_byte(size_t i)
{
    return (uint8_t)(i * 131 + (i >> 8) * 7 + 0x5a);
}

static void vm_make(MiniVm *vm)
{
    uint8_t *p;
    uint64_t v = 42;
    size_t i;

    assert_int_equal(cprs_state_new(&vm->state), 0);
    vm->ram = memfd_create("ram0", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(vm->ram >= 0);
    assert_int_equal(ftruncate(vm->ram, RAM_SIZE), 0);
    p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vm->ram, 0);
    assert_true(p != MAP_FAILED);
    for (i = 0; i < RAM_SIZE; i++) {
        p[i] = ram_byte(i);
    }
    munmap(p, RAM_SIZE);
    vm->irq = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(write(vm->irq, &v, 8), 8);
    assert_int_equal(cprs_state_save_fd(vm->state, "ram0", 0, vm->ram), 0);
    assert_int_equal(cprs_state_save_fd(vm->state, "irq", 0, vm->irq), 0);
}

/* ---- The ROLLBACK section's decoder (F5.2 to F5.5) --------------------- */

typedef struct Sec {
    CprsWireRollback w;
    char tail[64];
} Sec;

/* A valid armed record: exe_path "/usr/bin/qemu", argv "qemu" "-S". */
static Sec good_sec(size_t *size)
{
    Sec s;

    memset(&s, 0, sizeof(s));
    cprs_le16_set(&s.w.version_major, 1);
    cprs_le32_set(&s.w.header_size, CPRS_ROLLBACK_V1_SIZE);
    cprs_le32_set(&s.w.flags, CPRS_ROLLBACK_F_ARMED);
    cprs_le32_set(&s.w.argc, 2);
    cprs_le32_set(&s.w.exe_fd, 9);
    cprs_le32_set(&s.w.argv_size, 8);
    cprs_le32_set(&s.w.exe_path_size, 14);
    memcpy(s.tail, "/usr/bin/qemu", 14);
    memcpy(s.tail + 16, "qemu\0-S", 8);
    *size = CPRS_ROLLBACK_V1_SIZE + 16 + 8;
    return s;
}

static void expect_decode(const Sec *s, size_t size, int err,
                          const char *clause)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollbackRec r;
    int ret = cprs_rollback_decode(s, size, 1000, &d, &r);

    if (ret != err || (err && strcmp(d.clause, clause))) {
        fail_msg("decode gave %d [%s] %s, want %d [%s]", ret,
                 ret ? d.clause : "", ret ? d.reason : "", err, clause);
    }
    if (err) {
        assert_true(d.offset >= 1000);
    }
}

static void test_section_decode(void **state)
{
    CprsRollbackRec r;
    size_t size;
    Sec s;

    (void)state;
    s = good_sec(&size);
    assert_int_equal(cprs_rollback_decode(&s, size, 0, NULL, &r), 0);
    assert_int_equal(r.argc, 2);
    assert_string_equal(r.exe_path, "/usr/bin/qemu");
    assert_string_equal(r.argv, "qemu");
    assert_string_equal(r.argv + 5, "-S");
    expect_decode(&s, CPRS_ROLLBACK_V1_SIZE - 8, -EBADMSG, "F5.2");
    expect_decode(&s, size + 8, -EBADMSG, "F5.2");
    s = good_sec(&size);
    cprs_le16_set(&s.w.version_major, 0);
    expect_decode(&s, size, -EBADMSG, "F5.2");
    cprs_le16_set(&s.w.version_major, 2);
    expect_decode(&s, size, -EPROTONOSUPPORT, "F5.2");
    s = good_sec(&size);
    cprs_le32_set(&s.w.header_size, 648);
    expect_decode(&s, size, -EBADMSG, "F5.2");
    /* F5.3: the flag combinations. */
    s = good_sec(&size);
    cprs_le32_set(&s.w.flags, CPRS_ROLLBACK_F_ARMED |
                  CPRS_ROLLBACK_F_ROLLED_BACK);
    expect_decode(&s, size, -EBADMSG, "F5.3");
    cprs_le32_set(&s.w.flags, 0);
    expect_decode(&s, size, -EBADMSG, "F5.3");
    cprs_le32_set(&s.w.flags, CPRS_ROLLBACK_F_ROLLED_BACK);
    expect_decode(&s, size, -EBADMSG, "F5.3");
    cprs_le32_set(&s.w.flags, CPRS_ROLLBACK_F_ARMED |
                  CPRS_ROLLBACK_F_FAILURE);
    expect_decode(&s, size, -EBADMSG, "F5.3");
    cprs_le32_set(&s.w.flags, 0x10 | CPRS_ROLLBACK_F_ARMED);
    expect_decode(&s, size, -EBADMSG, "F5.3");
    /* A newer minor: unknown flags ignored. */
    cprs_le16_set(&s.w.version_minor, 1);
    expect_decode(&s, size, 0, "");
    /* F5.4: failure fields. */
    s = good_sec(&size);
    cprs_le32_set(&s.w.failure_errno, 5);
    expect_decode(&s, size, -EBADMSG, "F5.4");
    s = good_sec(&size);
    s.w.failure_message[0] = 'x';
    expect_decode(&s, size, -EBADMSG, "F5.4");
    s = good_sec(&size);
    cprs_le32_set(&s.w.flags, CPRS_ROLLBACK_F_ROLLED_BACK |
                  CPRS_ROLLBACK_F_FAILURE);
    cprs_le32_set(&s.w.failure_stage, CPRS_FAILURE_INCOMING);
    strcpy(s.w.failure_message, "it failed");
    expect_decode(&s, size, 0, "");
    cprs_le32_set(&s.w.failure_stage, CPRS_FAILURE__MAX);
    expect_decode(&s, size, -EBADMSG, "F5.4");
    cprs_le32_set(&s.w.failure_stage, CPRS_FAILURE_DEVICE);
    cprs_le32_set(&s.w.failure_errno, 4096);
    expect_decode(&s, size, -EBADMSG, "F5.4");
    cprs_le32_set(&s.w.failure_errno, 19);
    s.w.failure_message[2] = '\x1b';
    expect_decode(&s, size, -EBADMSG, "F5.4");
    s.w.failure_message[2] = 'f';
    s.w.failure_message[200] = 'z';
    expect_decode(&s, size, -EBADMSG, "F5.4");
    /* F5.5: argv. */
    s = good_sec(&size);
    cprs_le32_set(&s.w.argc, 3);
    expect_decode(&s, size, -EBADMSG, "F5.5");
    cprs_le32_set(&s.w.argc, 0);
    expect_decode(&s, size, -EBADMSG, "F5.5");
    s = good_sec(&size);
    s.tail[16 + 7] = 'x';
    expect_decode(&s, size, -EBADMSG, "F5.5");
    s = good_sec(&size);
    s.tail[16] = '\0';
    expect_decode(&s, size, -EBADMSG, "F5.5");
    s = good_sec(&size);
    cprs_le32_set(&s.w.argv_size, CPRS_ROLLBACK_MAX_ARGV + 1);
    expect_decode(&s, size, -EBADMSG, "F5.5");
    /* F5.2: the rest. */
    s = good_sec(&size);
    cprs_le32_set(&s.w.exe_fd, (uint32_t)-1);
    expect_decode(&s, size, -EBADMSG, "F5.2");
    s = good_sec(&size);
    cprs_le32_set(&s.w.reserved0, 1);
    expect_decode(&s, size, -EBADMSG, "F5.2");
    s = good_sec(&size);
    s.tail[3] = '\x7f';
    expect_decode(&s, size, -EBADMSG, "F5.2");
    s = good_sec(&size);
    s.tail[15] = 'p';
    expect_decode(&s, size, -EBADMSG, "F5.2");
    s = good_sec(&size);
    cprs_le32_set(&s.w.exe_path_size, 0);
    expect_decode(&s, size, -EBADMSG, "F5.2");
}

/* ---- Arena surgery (F5.1) ---------------------------------------------- */

static void test_append_section(void **state)
{
    static const char data[] = "twelve bytes";
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsSectionInfo si = CPRS_OPTS(CprsSectionInfo);
    CprsReader *a, *b;
    uint8_t *buf;
    void *out;
    size_t size, osize;
    uint32_t n, i;
    int stage;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    assert_int_equal(cprs_arena_append_section(buf, size,
                                               CPRS_SECTION_ROLLBACK, 0,
                                               data, sizeof(data), &out,
                                               &osize), 0);
    assert_int_equal(th_open_verify(out, osize, &d, &stage), 0);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &a), 0);
    assert_int_equal(cprs_reader_open_buffer(out, osize, NULL, &d, &b), 0);
    n = cprs_reader_section_count(a);
    assert_int_equal(cprs_reader_section_count(b), n + 1);
    assert_int_equal(cprs_reader_section_get(b, n, &si), 0);
    assert_int_equal(si.type, CPRS_SECTION_ROLLBACK);
    assert_int_equal(si.flags, 0);
    assert_int_equal(si.stored_size, sizeof(data));
    assert_memory_equal((const uint8_t *)out + si.offset, data,
                        sizeof(data));
    /* Every old section moved by one entry, its bytes and CRC kept. */
    for (i = 0; i < n; i++) {
        CprsSectionInfo x = CPRS_OPTS(CprsSectionInfo);
        CprsSectionInfo y = CPRS_OPTS(CprsSectionInfo);

        cprs_reader_section_get(a, i, &x);
        cprs_reader_section_get(b, i, &y);
        assert_int_equal(y.offset, x.offset + CPRS_SECTION_V1_SIZE);
        assert_int_equal(y.crc32c, x.crc32c);
        assert_memory_equal((const uint8_t *)out + y.offset, buf + x.offset,
                            x.stored_size);
    }
    assert_int_equal(cprs_reader_fd_count(b), cprs_reader_fd_count(a));
    cprs_reader_close(a);
    cprs_reader_close(b);
    free(out);
    /* Only the writer's layout, and never a 65th section. */
    cprs_le64_set(&th_hdr(buf)->dir_offset, 200);
    assert_int_equal(cprs_arena_append_section(buf, size, 9, 0, data, 4,
                                               &out, &osize), -EINVAL);
    cprs_le64_set(&th_hdr(buf)->dir_offset, CPRS_HEADER_V1_SIZE);
    cprs_le32_set(&th_hdr(buf)->dir_count, CPRS_MAX_SECTIONS);
    assert_int_equal(cprs_arena_append_section(buf, size, 9, 0, data, 4,
                                               &out, &osize), -EINVAL);
    free(buf);
}

/* ---- Dual streams (F4) ------------------------------------------------- */

/* An exec arena of @vm's records, and its QCPR stream. */
static void vm_streams(MiniVm *vm, int fd_shift, void **ret_arena,
                       size_t *ret_asize, void **ret_legacy,
                       size_t *ret_lsize)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_EXEC,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi;
    CprsWriter *w;
    CprsReader *r;
    CprsLegacy *l;

    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    fi = CPRS_OPTS(CprsFdInfo, .name = "irq", .fd = vm->irq + fd_shift);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = vm->ram);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, ret_arena, ret_asize), 0);
    cprs_writer_free(w);
    assert_int_equal(cprs_reader_open_buffer(*ret_arena, *ret_asize, NULL,
                                             NULL, &r), 0);
    assert_int_equal(cprs_legacy_from_reader(r, NULL, NULL, &l), 0);
    assert_int_equal(cprs_legacy_encode(l, NULL, ret_legacy, ret_lsize), 0);
    cprs_legacy_free(l);
    cprs_reader_close(r);
}

static void test_dual_layout(void **state)
{
    CprsDualInfo di = CPRS_OPTS(CprsDualInfo);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    CprsLegacy *l;
    MiniVm vm;
    void *arena, *legacy, *other, *olegacy, *dual;
    size_t asize, lsize, osize, olsize, size;
    uint8_t *p;
    uint64_t toff;

    (void)state;
    vm_make(&vm);
    vm_streams(&vm, 0, &arena, &asize, &legacy, &lsize);
    assert_int_equal(cprs_dual_compose(legacy, lsize, arena, asize, &dual,
                                       &size), 0);
    p = dual;
    assert_int_equal(cprs_dual_locate(dual, size, &di, &d), 0);
    assert_int_equal(di.legacy_size, lsize);
    assert_int_equal(di.arena_offset, (lsize + 7) & ~(size_t)7);
    assert_int_equal(di.arena_size, asize);
    assert_int_equal(di.size, size);
    /* What QEMU reads: the QCPR stream, then it stops; the rest is
     * what a lenient decode calls trailing bytes. */
    assert_int_equal(cprs_legacy_decode(dual, size, &lo, &d, &l), 0);
    cprs_legacy_get_info(l, &li);
    assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(li.trailing, size - lsize);
    cprs_legacy_free(l);
    /* The two parts agree; against another arena they do not. */
    lo = CPRS_OPTS(CprsLegacyOpts);
    assert_int_equal(cprs_legacy_decode(dual, lsize, &lo, &d, &l), 0);
    assert_int_equal(cprs_reader_open_buffer(p + di.arena_offset, asize,
                                             NULL, &d, &r), 0);
    assert_int_equal(cprs_dual_check(r, l, &d), 0);
    cprs_reader_close(r);
    vm_streams(&vm, 1, &other, &osize, &olegacy, &olsize);
    assert_int_equal(cprs_reader_open_buffer(other, osize, NULL, &d, &r),
                     0);
    assert_int_equal(cprs_dual_check(r, l, &d), -EBADMSG);
    assert_string_equal(d.clause, "F4.3");
    assert_int_equal(d.record, 0);
    cprs_reader_close(r);
    cprs_legacy_free(l);
    /* The trailer and the layout (F4.2). */
    toff = size - sizeof(CprsWireDualTrailer);
    assert_int_equal(cprs_dual_locate(dual, size - 1, &di, &d), -ENOENT);
    p[toff + 44] ^= 1;
    assert_int_equal(cprs_dual_locate(dual, size, &di, &d), -EBADMSG);
    assert_int_equal(d.offset, toff + 44);
    p[toff + 44] ^= 1;
    p[toff] ^= 1;
    assert_int_equal(cprs_dual_locate(dual, size, &di, &d), -ENOENT);
    p[toff] ^= 1;
    if (di.arena_offset > lsize) {
        p[lsize] = 1;
        assert_int_equal(cprs_dual_locate(dual, size, &di, &d), -EBADMSG);
        assert_int_equal(d.offset, lsize);
        p[lsize] = 0;
    }
    p[0] = 'X';
    assert_int_equal(cprs_dual_locate(dual, size, &di, &d), -EBADMSG);
    p[0] = 'Q';
    {
        CprsWireDualTrailer t;

        memcpy(&t, p + toff, sizeof(t));
        cprs_le16_set(&t.version_major, 2);
        cprs_le32_set(&t.crc32c, 0);
        cprs_le32_set(&t.crc32c, cprs_crc32c(0, &t, sizeof(t)));
        memcpy(p + toff, &t, sizeof(t));
        assert_int_equal(cprs_dual_locate(dual, size, &di, &d),
                         -EPROTONOSUPPORT);
        cprs_le16_set(&t.version_major, 1);
        cprs_le64_set(&t.arena_size, asize - 8);
        cprs_le32_set(&t.crc32c, 0);
        cprs_le32_set(&t.crc32c, cprs_crc32c(0, &t, sizeof(t)));
        memcpy(p + toff, &t, sizeof(t));
        assert_int_equal(cprs_dual_locate(dual, size, &di, &d), -EBADMSG);
        assert_string_equal(d.clause, "F4.2");
    }
    free(dual);
    free(arena);
    free(legacy);
    free(other);
    free(olegacy);
    cprs_state_close_fds(vm.state);
    cprs_state_free(vm.state);
}

/* A sealed memfd @name holding @buf, named by @var. */
static int put_memfd(const char *name, const char *var, const void *buf,
                     size_t size, bool seal)
{
    char val[16];
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
    if (seal) {
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                               F_SEAL_WRITE | F_SEAL_SEAL), 0);
    }
    snprintf(val, sizeof(val), "%d", fd);
    assert_int_equal(setenv(var, val, 1), 0);
    return fd;
}

static void test_dual_load(void **state)
{
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts, .flags = CPRS_SAVE_F_DUAL);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *ld;
    MiniVm vm;
    void *arena, *legacy, *other, *olegacy, *dual;
    size_t asize, lsize, osize, olsize, size;
    int fd, before = th_count_fds();

    (void)state;
    vm_make(&vm);
    assert_int_equal(cprs_state_save_exec(vm.state, &so, &d, &fd), 0);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
    cprs_state_get_info(ld, &si);
    assert_int_equal(si.format, CPRS_FORMAT_DUAL);
    assert_int_equal(si.generation, 1);
    assert_int_equal(si.fd_count, 2);
    assert_int_equal(cprs_state_find_fd(ld, "ram0", 0), vm.ram);
    assert_null(getenv(CPRS_EXEC_STATE_NAME));
    cprs_state_free(ld);
    /* Dual streams travel by cpr-exec only. */
    assert_int_equal(cprs_state_save_transfer(vm.state, 0, &so, &d),
                     -EINVAL);
    /* Two parts that disagree: refused, nothing changed. */
    vm_streams(&vm, 0, &arena, &asize, &legacy, &lsize);
    vm_streams(&vm, 1, &other, &osize, &olegacy, &olsize);
    assert_int_equal(cprs_dual_compose(olegacy, olsize, arena, asize, &dual,
                                       &size), 0);
    fd = put_memfd(CPRS_EXEC_STATE_NAME, CPRS_EXEC_STATE_NAME, dual, size,
                   true);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), -EBADMSG);
    assert_string_equal(d.clause, "F4.3");
    assert_non_null(getenv(CPRS_EXEC_STATE_NAME));
    close(fd);
    /* Unsealed: refused before anything is read (8.5). */
    fd = put_memfd(CPRS_EXEC_STATE_NAME, CPRS_EXEC_STATE_NAME, dual, size,
                   false);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), -EPERM);
    close(fd);
    unsetenv(CPRS_EXEC_STATE_NAME);
    free(dual);
    free(arena);
    free(legacy);
    free(other);
    free(olegacy);
    cprs_state_close_fds(vm.state);
    cprs_state_free(vm.state);
    assert_int_equal(th_count_fds(), before);
}

/* ---- Arming and finding (F5.1, F5.6) ----------------------------------- */

static char self_path[4096];

static char *const child_argv_resumed[] = {
    self_path, (char *)CHILD_ARG, (char *)"resumed", NULL,
};

typedef struct Armed {
    MiniVm vm;
    int state_fd;
    CprsRollback *rb;
    uint8_t *bytes;             /* the rollback memfd's arena */
    size_t size;
    uint64_t sec;               /* its ROLLBACK section */
} Armed;

static void arm(Armed *a)
{
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts,
                                    .argv = child_argv_resumed);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    CprsRollbackRec rec;
    struct stat st;
    int fd;

    vm_make(&a->vm);
    assert_int_equal(cprs_state_save_exec(a->vm.state, NULL, &d,
                                          &a->state_fd), 0);
    if (cprs_rollback_arm(a->vm.state, a->state_fd, &ro, &d, &a->rb)) {
        fail_msg("arm: %s", d.reason);
    }
    fd = atoi(getenv(CPRS_ROLLBACK_NAME));
    assert_int_equal(fstat(fd, &st), 0);
    a->size = (size_t)st.st_size;
    a->bytes = malloc(a->size);
    assert_int_equal(pread(fd, a->bytes, a->size, 0), (ssize_t)a->size);
    assert_int_equal(cprs_reader_open_buffer(a->bytes, a->size, NULL, NULL,
                                             &r), 0);
    assert_int_equal(cprs_rollback_find_section(r, NULL, &rec), 0);
    a->sec = rec.section_offset;
    cprs_reader_close(r);
}

static void unarm(Armed *a)
{
    cprs_rollback_disarm(a->rb);
    cprs_exec_unpersist(a->state_fd);
    cprs_state_close_fds(a->vm.state);
    cprs_state_free(a->vm.state);
    free(a->bytes);
    assert_null(getenv(CPRS_ROLLBACK_NAME));
}

/* A forged copy of the armed record: edit its section, fix the CRCs. */
static int forge(const Armed *a, void (*edit)(CprsWireRollback *w),
                 bool seal, const char *name)
{
    uint8_t *copy = malloc(a->size);
    CprsWireRollback w;
    int fd;

    memcpy(copy, a->bytes, a->size);
    if (edit) {
        memcpy(&w, copy + a->sec, sizeof(w));
        edit(&w);
        memcpy(copy + a->sec, &w, sizeof(w));
        th_fix_crcs(copy, a->size);
    }
    fd = put_memfd(name, CPRS_ROLLBACK_NAME, copy, a->size, seal);
    free(copy);
    return fd;
}

static void expect_find(uint32_t flags, int err, const char *clause)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollback *rb = NULL;
    int ret = cprs_rollback_find(flags, &d, &rb);

    if (ret != err || (err && clause && strcmp(d.clause, clause))) {
        fail_msg("find gave %d [%s] %s, want %d [%s]", ret,
                 ret ? d.clause : "", ret ? d.reason : "", err,
                 clause ? clause : "");
    }
    /* Shares its fds with the armed handle: close nothing here. */
    cprs_rollback_forget(rb);
}

static uint64_t tweak;
static void edit_both(CprsWireRollback *w)
{
    cprs_le32_set(&w->flags, CPRS_ROLLBACK_F_ARMED |
                  CPRS_ROLLBACK_F_ROLLED_BACK);
}
static void edit_rolled(CprsWireRollback *w)
{
    cprs_le32_set(&w->flags, CPRS_ROLLBACK_F_ROLLED_BACK |
                  CPRS_ROLLBACK_F_FAILURE);
    cprs_le32_set(&w->failure_stage, CPRS_FAILURE_STATE_LOAD);
}
static void edit_argc(CprsWireRollback *w)
{
    cprs_le32_set(&w->argc, cprs_le32_get(&w->argc) + 1);
}
static void edit_exe_fd(CprsWireRollback *w)
{
    cprs_le32_set(&w->exe_fd, (uint32_t)tweak);
}
static void edit_exe_ino(CprsWireRollback *w)
{
    cprs_le64_set(&w->exe_ino, cprs_le64_get(&w->exe_ino) + 1);
}
static void edit_pid(CprsWireRollback *w)
{
    cprs_le32_set(&w->pid, cprs_le32_get(&w->pid) + 1);
}
static void edit_state(CprsWireRollback *w)
{
    cprs_le64_set(&w->state_ino, cprs_le64_get(&w->state_ino) + 1);
}
static void edit_generation(CprsWireRollback *w)
{
    cprs_le64_set(&w->generation, 77);
}

/* A forged record and what finding it must say (errno, clause). */
static const struct {
    void (*edit)(CprsWireRollback *w);
    int err;
    const char *clause;
} forged[] = {
    { edit_both, -EBADMSG, "F5.3" },
    { edit_rolled, -ELOOP, "F5.3" },
    { edit_argc, -EBADMSG, "F5.5" },
    { edit_generation, -EBADMSG, "F5.6" },
    { edit_pid, -ESTALE, "F5.6" },
    { edit_state, -ESTALE, "F5.6" },
    { edit_exe_ino, -ESTALE, "F5.6" },
};

static void test_find_forged(void **state)
{
    CprsRollbackInfo ri = CPRS_OPTS(CprsRollbackInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollback *rb;
    Armed a;
    char val[16];
    int fd, other, keep, before = th_count_fds();
    size_t i;

    (void)state;
    arm(&a);
    /* Armed: both fds survive exec, the variable names the memfd. */
    fd = atoi(getenv(CPRS_ROLLBACK_NAME));
    assert_false(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    cprs_rollback_get_info(a.rb, &ri);
    assert_false(fcntl(ri.exe_fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(ri.flags, CPRS_ROLLBACK_F_ARMED);
    assert_int_equal(ri.argc, 3);
    assert_int_equal(ri.pid, (uint32_t)getpid());
    assert_int_equal(ri.generation, 1);
    /* The genuine record is found (this process armed it). */
    assert_int_equal(cprs_rollback_find(0, &d, &rb), 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    cprs_rollback_forget(rb);

    /* The variable. */
    unsetenv(CPRS_ROLLBACK_NAME);
    expect_find(0, -ENOENT, "F5.6");
    setenv(CPRS_ROLLBACK_NAME, "abc", 1);
    expect_find(0, -EINVAL, "F5.6");
    setenv(CPRS_ROLLBACK_NAME, "07", 1);
    expect_find(0, -EINVAL, "F5.6");
    setenv(CPRS_ROLLBACK_NAME, "999999", 1);
    expect_find(0, -EBADF, "F5.6");
    /* Wrong memfd name, unsealed, garbage, no section. */
    snprintf(val, sizeof(val), "%d", a.state_fd);
    setenv(CPRS_ROLLBACK_NAME, val, 1);
    expect_find(0, -EBADMSG, "F5.6");
    other = forge(&a, NULL, false, CPRS_ROLLBACK_NAME);
    expect_find(0, -EPERM, "F5.6");
    close(other);
    {
        uint8_t junk[256] = { 1, 2, 3 };

        other = put_memfd(CPRS_ROLLBACK_NAME, CPRS_ROLLBACK_NAME, junk,
                          sizeof(junk), true);
        expect_find(0, -EBADMSG, "3.2");
        close(other);
    }
    {
        uint8_t *plain;
        size_t psize;

        th_build_rich(0, 0, &plain, &psize);
        other = put_memfd(CPRS_ROLLBACK_NAME, CPRS_ROLLBACK_NAME, plain,
                          psize, true);
        expect_find(0, -EBADMSG, "F5.1");
        close(other);
        free(plain);
    }
    /* The record itself. */
    for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        other = forge(&a, forged[i].edit, true, CPRS_ROLLBACK_NAME);
        expect_find(0, forged[i].err, forged[i].clause);
        if (forged[i].edit == edit_state) {
            /* Only the binding to this hop's state is wrong. */
            expect_find(CPRS_ROLLBACK_FIND_F_UNBOUND, 0, NULL);
        }
        close(other);
    }
    /* The executable's fd: not open, a device, not executable. */
    tweak = 999998;
    other = forge(&a, edit_exe_fd, true, CPRS_ROLLBACK_NAME);
    expect_find(0, -EBADF, "F5.6");
    close(other);
    keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
    tweak = (uint64_t)keep;
    other = forge(&a, edit_exe_fd, true, CPRS_ROLLBACK_NAME);
    expect_find(0, -EBADMSG, "F5.6");
    close(other);
    close(keep);
    keep = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    tweak = (uint64_t)keep;
    other = forge(&a, edit_exe_fd, true, CPRS_ROLLBACK_NAME);
    expect_find(0, -EBADMSG, "F5.6");
    close(other);
    close(keep);
    /* A recorded fd that is another file now. */
    other = forge(&a, NULL, true, CPRS_ROLLBACK_NAME);
    keep = dup(a.vm.irq);
    assert_int_equal(dup2(a.vm.ram, a.vm.irq), a.vm.irq);
    expect_find(0, -ESTALE, "F5.6");
    assert_int_equal(dup2(keep, a.vm.irq), a.vm.irq);
    close(keep);
    expect_find(0, 0, NULL);
    close(other);
    snprintf(val, sizeof(val), "%d", fd);
    setenv(CPRS_ROLLBACK_NAME, val, 1);
    unarm(&a);
    assert_int_equal(th_count_fds(), before);
}

/* A trigger that finds a changed fd does not exec; bad failures either. */
static void test_trigger_refused(void **state)
{
    CprsFailure f = CPRS_OPTS(CprsFailure, .stage = CPRS_FAILURE_INCOMING,
                              .error = -EINVAL, .message = "test");
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollback *rb;
    Armed a;
    int keep;

    (void)state;
    arm(&a);
    assert_int_equal(cprs_rollback_find(0, &d, &rb), 0);
    keep = dup(a.vm.irq);
    assert_int_equal(dup2(a.vm.ram, a.vm.irq), a.vm.irq);
    assert_int_equal(cprs_rollback_trigger(rb, &f, &d), -ESTALE);
    assert_int_equal(d.record, 0);
    assert_int_equal(dup2(keep, a.vm.irq), a.vm.irq);
    close(keep);
    f.stage = CPRS_FAILURE_NONE;
    assert_int_equal(cprs_rollback_trigger(rb, &f, &d), -EINVAL);
    f.stage = CPRS_FAILURE__MAX;
    assert_int_equal(cprs_rollback_trigger(rb, &f, &d), -EINVAL);
    f.stage = CPRS_FAILURE_OTHER;
    f.error = 5;
    assert_int_equal(cprs_rollback_trigger(rb, &f, &d), -EINVAL);
    /* The armed side's handle cannot trigger: it is not a found one. */
    f.error = 0;
    assert_int_equal(cprs_rollback_trigger(a.rb, &f, &d), -EINVAL);
    assert_int_equal(cprs_rollback_trigger(NULL, &f, &d), -EINVAL);
    cprs_rollback_forget(rb);
    unarm(&a);
}

static void test_arm_refused(void **state)
{
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char *empty[] = { (char *)"", NULL };
    CprsRollback *rb;
    MiniVm vm;
    int fd, before;

    (void)state;
    vm_make(&vm);
    before = th_count_fds();
    assert_int_equal(cprs_state_save_exec(vm.state, NULL, &d, &fd), 0);
    assert_int_equal(cprs_rollback_arm(vm.state, fd, &ro, &d, &rb), -EINVAL);
    ro.argv = empty;
    assert_int_equal(cprs_rollback_arm(vm.state, fd, &ro, &d, &rb), -EINVAL);
    ro.argv = child_argv_resumed;
    /* Not the state memfd: no binding possible. */
    assert_int_equal(cprs_rollback_arm(vm.state, vm.ram, &ro, &d, &rb),
                     -EINVAL);
    assert_string_equal(d.clause, "F5.6");
    assert_null(getenv(CPRS_ROLLBACK_NAME));
    cprs_exec_unpersist(fd);
    assert_int_equal(th_count_fds(), before);
    cprs_state_close_fds(vm.state);
    cprs_state_free(vm.state);
}

/* ---- The hand-back, with real execs (F5.7) ----------------------------- */

static int child_status(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) {
        fail_msg("child killed by signal %d", WTERMSIG(status));
    }
    return WEXITSTATUS(status);
}

static const char *dump_path(void)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/rollback-handed-back.cprs",
             th_build_root());
    return path;
}

static void test_rollback_exec(void **state)
{
    char *argv[] = { self_path, (char *)CHILD_ARG, (char *)"arm", NULL };
    char cmd[8192], out[8192];
    size_t n;
    FILE *p;
    pid_t pid;

    (void)state;
    unlink(dump_path());
    setenv("CPRS_ROLLBACK_DUMP", dump_path(), 1);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        execv(self_path, argv);
        _exit(127);
    }
    assert_int_equal(child_status(pid), 0);
    /* cprdump shows the record handed back, with its failure. */
    snprintf(cmd, sizeof(cmd), "'%s/tools/cprdump' '%s'", th_build_root(),
             dump_path());
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    if (!strstr(out, "ROLLED BACK") || !strstr(out, "stage device") ||
        !strstr(out, "injected device failure ?[31m") ||
        !strstr(out, "Verification: OK") || !strstr(out, "resumed")) {
        fail_msg("cprdump does not show the rollback:\n%s", out);
    }
    unlink(dump_path());
}

/*
 * The failure is visible from outside: cprs-vmm hops into a failing image,
 * is handed back, and waits; cprdump --pid reads the state it holds.
 */
static void test_rollback_cprdump_pid(void **state)
{
    char vmm[4096], readyfd[32], cmd[8192], out[16384], buf[32];
    char *argv[] = { vmm, (char *)"--hops=1", (char *)"--fail-at=incoming",
                     (char *)"--blocks=1", (char *)"--block-mib=1",
                     (char *)"--quiet", readyfd, NULL };
    int pfd[2], vpid;
    ssize_t n;
    size_t len;
    FILE *p;
    pid_t pid;

    (void)state;
    snprintf(vmm, sizeof(vmm), "%s/tests/cprs-vmm", th_build_root());
    assert_int_equal(pipe(pfd), 0);
    snprintf(readyfd, sizeof(readyfd), "--ready-fd=%d", pfd[1]);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        close(pfd[0]);
        execv(vmm, argv);
        _exit(127);
    }
    close(pfd[1]);
    /* The rolled-back image writes its pid once it has checked all. */
    n = read(pfd[0], buf, sizeof(buf) - 1);
    close(pfd[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    vpid = atoi(buf);
    assert_int_equal(vpid, pid);
    snprintf(cmd, sizeof(cmd), "'%s/tools/cprdump' --pid %d",
             th_build_root(), vpid);
    p = popen(cmd, "r");
    assert_non_null(p);
    len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    kill(pid, SIGUSR1);
    assert_int_equal(child_status(pid), 0);
    if (!strstr(out, "ROLLED BACK") || !strstr(out, "stage incoming") ||
        !strstr(out, "injected: migrate-incoming failed") ||
        !strstr(out, "--rolled-back=incoming")) {
        fail_msg("cprdump --pid does not show the rollback:\n%s", out);
    }
}

/* ---- Child modes: the images of the real hand-back --------------------- */

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, \
                    #cond); \
            exit(2); \
        } \
    } while (0)

static void check_vm(const CprsState *s)
{
    uint8_t *p;
    uint64_t v;
    size_t i;
    int ram = cprs_state_find_fd(s, "ram0", 0);
    int irq = cprs_state_find_fd(s, "irq", 0);

    CHECK(ram >= 0 && irq >= 0);
    p = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, ram, 0);
    CHECK(p != MAP_FAILED);
    for (i = 0; i < RAM_SIZE; i++) {
        CHECK(p[i] == ram_byte(i));
    }
    munmap(p, RAM_SIZE);
    /* The count left before the hop is still there (peek: read+write). */
    CHECK(read(irq, &v, 8) == 8 && v == 42);
    CHECK(write(irq, &v, 8) == 8);
}

/* The state memfd this image holds, read whole into @path. */
static void dump_state(const char *path)
{
    char link[64], name[128];
    struct stat st;
    ssize_t n;
    uint8_t *buf;
    int fd;

    for (fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, name, sizeof(name) - 1);
        if (n > 0) {
            name[n] = '\0';
            if (!strcmp(name, "/memfd:" CPRS_EXEC_STATE_NAME " (deleted)")) {
                break;
            }
        }
    }
    CHECK(fd < 1024 && !fstat(fd, &st));
    buf = malloc((size_t)st.st_size);
    CHECK(buf && pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
    th_write_file(path, buf, (size_t)st.st_size);
    free(buf);
}

static int child_main(const char *mode)
{
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts,
                                    .argv = child_argv_resumed);
    CprsFailure f = CPRS_OPTS(CprsFailure, .stage = CPRS_FAILURE_DEVICE,
                              .error = -ENODEV,
                              .message = "injected device failure \x1b[31m");
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char *next[] = { self_path, (char *)CHILD_ARG, (char *)"fail", NULL };
    CprsRollback *rb = NULL;
    MiniVm vm;
    int fd;

    if (!strcmp(mode, "arm")) {
        /* The source: save, arm, preserve, exec the "next image". */
        vm_make(&vm);
        CHECK(!cprs_state_save_exec(vm.state, NULL, &d, &fd));
        CHECK(!cprs_rollback_arm(vm.state, fd, &ro, &d, &rb));
        CHECK(!cprs_state_preserve_fds(vm.state));
        execv(self_path, next);
        return 3;
    }
    if (!strcmp(mode, "fail")) {
        /* The next image: loads, then fails before its VM runs. */
        CHECK(!cprs_rollback_find(0, &d, &rb));
        CHECK(!cprs_state_load_exec(NULL, &d, &vm.state));
        check_vm(vm.state);
        cprs_rollback_trigger(rb, &f, &d);
        fprintf(stderr, "trigger: %s\n", d.reason);
        return 4;
    }
    if (!strcmp(mode, "resumed")) {
        /* The previous binary again: same pid, same RAM, the failure. */
        CHECK(!cprs_state_load_exec(NULL, &d, &vm.state));
        CHECK(!cprs_state_get_info(vm.state, &si));
        CHECK(si.format == CPRS_FORMAT_ARENA);
        CHECK(si.rollback_flags == (CPRS_ROLLBACK_F_ROLLED_BACK |
                                    CPRS_ROLLBACK_F_FAILURE));
        CHECK(si.failure_stage == CPRS_FAILURE_DEVICE);
        CHECK(si.failure_error == -ENODEV);
        CHECK(!strcmp(si.failure_message, "injected device failure ?[31m"));
        CHECK(strstr(si.failed_exe, "test-rollback") != NULL);
        CHECK(si.failed_ns > 0);
        check_vm(vm.state);
        /* A rollback never rolls back again: nothing armed here... */
        CHECK(cprs_rollback_find(0, &d, &rb) == -ENOENT);
        CHECK(!getenv(CPRS_ROLLBACK_NAME));
        /* ...and its own record, offered as one, is a loop. */
        dump_state(getenv("CPRS_ROLLBACK_DUMP"));
        {
            size_t size;
            uint8_t *buf = th_read_file(getenv("CPRS_ROLLBACK_DUMP"),
                                        &size);

            fd = put_memfd(CPRS_ROLLBACK_NAME, CPRS_ROLLBACK_NAME, buf, size,
                           true);
            CHECK(cprs_rollback_find(CPRS_ROLLBACK_FIND_F_UNBOUND, &d,
                                     &rb) == -ELOOP);
            CHECK(!strcmp(d.clause, "F5.3"));
            close(fd);
            unsetenv(CPRS_ROLLBACK_NAME);
            free(buf);
        }
        cprs_state_close_fds(vm.state);
        cprs_state_free(vm.state);
        return 0;
    }
    return 5;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_decode),
        cmocka_unit_test(test_append_section),
        cmocka_unit_test(test_dual_layout),
        cmocka_unit_test(test_dual_load),
        cmocka_unit_test(test_find_forged),
        cmocka_unit_test(test_trigger_refused),
        cmocka_unit_test(test_arm_refused),
        cmocka_unit_test(test_rollback_exec),
        cmocka_unit_test(test_rollback_cprdump_pid),
    };
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);

    if (n <= 0) {
        return 1;
    }
    self_path[n] = '\0';
    if (argc == 3 && !strcmp(argv[1], CHILD_ARG)) {
        return child_main(argv[2]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
