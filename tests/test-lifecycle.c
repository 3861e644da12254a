/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-lifecycle.c - the live-update lifecycle with real memfds, a real
 * environment and real sockets: persist and find (every way the variable
 * or the fd can be wrong), QEMU's cpr_*_fd semantics, preserve and
 * unpreserve, identity checks, save and load in both modes and both
 * formats, all-or-nothing loads, and no fd leaked on any path.
 */
/* The deprecated getters are tested here, against cprs_state_get_info(). */
#define CPRS_NO_DEPRECATION_WARNINGS
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static int state_memfd(const void *buf, size_t size, unsigned seals,
                       const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    if (seals) {
        assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
    }
    return fd;
}

static void set_env_fd(int fd)
{
    char v[16];

    snprintf(v, sizeof(v), "%d", fd);
    assert_int_equal(setenv(CPRS_EXEC_STATE_NAME, v, 1), 0);
}

static int find(int *fd, int *format)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);

    return cprs_exec_find(0, &d, fd, format);
}

static void test_persist_find_release(void **state)
{
    uint8_t *buf;
    size_t size;
    int memfd, fd, got, format, before = th_count_fds();

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    memfd = state_memfd(buf, size, F_SEAL_SHRINK | F_SEAL_GROW |
                        F_SEAL_WRITE, CPRS_EXEC_STATE_NAME);
    assert_int_equal(cprs_exec_persist(memfd, &fd), 0);
    close(memfd);
    assert_false(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* The offset is at the end, as QEMU leaves it: find uses pread. */
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)size);
    assert_int_equal(find(&got, &format), 0);
    assert_int_equal(got, fd);
    assert_int_equal(format, CPRS_DETECT_ARENA);
    cprs_exec_release(fd);
    assert_null(getenv(CPRS_EXEC_STATE_NAME));
    assert_int_equal(find(&got, &format), -ENOENT);
    assert_int_equal(th_count_fds(), before);

    /* unpersist after a failed exec: variable gone, fd closed. */
    memfd = state_memfd(buf, size, 0, CPRS_EXEC_STATE_NAME);
    assert_int_equal(cprs_exec_persist(memfd, &fd), 0);
    close(memfd);
    assert_int_equal(cprs_exec_unpersist(fd), 0);
    assert_null(getenv(CPRS_EXEC_STATE_NAME));
    assert_int_equal(th_count_fds(), before);
    free(buf);
}

static void test_find_rejects(void **state)
{
    static const char *bad[] = {
        "", "abc", "-1", "+3", " 3", "3 ", "3x", "0x3", "007",
        "99999999999", "2147483648",
    };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint8_t *buf;
    size_t size, i;
    int fd, got, format, other, file;
    char path[] = "/tmp/cprs-test-XXXXXX";

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv(CPRS_EXEC_STATE_NAME, bad[i], 1), 0);
        if (find(&got, &format) != -EINVAL) {
            fail_msg("QEMU_CPR_EXEC_STATE='%s' was accepted", bad[i]);
        }
    }
    /* A number that names no open fd. */
    set_env_fd(1000000);
    assert_int_equal(find(&got, &format), -EBADF);

    /* A memfd of another name, and a regular file. */
    other = state_memfd(buf, size, F_SEAL_SHRINK | F_SEAL_GROW |
                        F_SEAL_WRITE, "something-else");
    set_env_fd(other);
    assert_int_equal(cprs_exec_find(0, &d, &got, &format), -EBADMSG);
    assert_non_null(strstr(d.reason, "not the QEMU_CPR_EXEC_STATE memfd"));
    close(other);
    file = mkstemp(path);
    assert_true(file >= 0);
    unlink(path);
    assert_int_equal(write(file, buf, size), (ssize_t)size);
    set_env_fd(file);
    assert_int_equal(find(&got, &format), -EBADMSG);
    close(file);

    /* An unsealed arena: refused, unless the caller allows it. */
    fd = state_memfd(buf, size, 0, CPRS_EXEC_STATE_NAME);
    set_env_fd(fd);
    assert_int_equal(cprs_exec_find(0, &d, &got, &format), -EPERM);
    assert_string_equal(d.clause, "8.5");
    assert_int_equal(cprs_exec_find(CPRS_EXEC_FIND_F_ALLOW_UNSEALED, &d,
                                    &got, &format), 0);
    close(fd);
    /* Sealed against shrinking only: still refused. */
    fd = state_memfd(buf, size, F_SEAL_SHRINK, CPRS_EXEC_STATE_NAME);
    set_env_fd(fd);
    assert_int_equal(find(&got, &format), -EPERM);
    close(fd);

    /* A legacy stream as QEMU writes it: unsealed, accepted. */
    fd = state_memfd("QCPR\0\0\0\1\0\x05\x15" "CprState/vfio devices"
                     "\0\0\0\1\0", 37, 0, CPRS_EXEC_STATE_NAME);
    set_env_fd(fd);
    assert_int_equal(find(&got, &format), 0);
    assert_int_equal(format, CPRS_DETECT_LEGACY);
    close(fd);
    /* Neither format. */
    fd = state_memfd("hello, world", 12, 0, CPRS_EXEC_STATE_NAME);
    set_env_fd(fd);
    assert_int_equal(find(&got, &format), -EBADMSG);
    close(fd);
    fd = state_memfd("", 0, 0, CPRS_EXEC_STATE_NAME);
    set_env_fd(fd);
    assert_int_equal(find(&got, &format), -EBADMSG);
    close(fd);
    unsetenv(CPRS_EXEC_STATE_NAME);
    free(buf);
}

typedef struct Walk {
    char names[8][32];
    int ids[8];
    int n;
} Walk;

static int walk_cb(void *opaque, const char *name, int32_t id, int fd)
{
    Walk *w = opaque;

    (void)fd;
    snprintf(w->names[w->n], sizeof(w->names[0]), "%s", name);
    w->ids[w->n++] = id;
    return w->n == 3 ? 42 : 0;
}

/* QEMU's cpr_save/find/resave/delete/open/walk semantics. */
static void test_fd_semantics(void **state)
{
    CprsState *s;
    Walk w = { .n = 0 };
    int fd, fd2;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, 11), 0);
    assert_int_equal(cprs_state_save_fd(s, "pc.bios", 0, 15), 0);
    assert_int_equal(cprs_state_save_fd(s, "vfio", 7, 20), 0);
    assert_int_equal(cprs_state_save_fd(s, "vfio", 8, 21), 0);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, 12), -EEXIST);
    assert_int_equal(cprs_state_save_fd(s, "", 0, 12), -EINVAL);
    assert_int_equal(cprs_state_save_fd(s, "bad\n", 0, 12), -EINVAL);
    assert_int_equal(cprs_state_save_fd(s, "neg", 0, -1), -EINVAL);
    assert_int_equal(cprs_state_find_fd(s, "ram0", 0), 11);
    assert_int_equal(cprs_state_find_fd(s, "vfio", 8), 21);
    assert_int_equal(cprs_state_find_fd(s, "vfio", 9), -ENOENT);
    assert_int_equal(cprs_state_resave_fd(s, "ram0", 0, 11), 0);
    assert_int_equal(cprs_state_resave_fd(s, "ram0", 0, 13), -EEXIST);
    assert_int_equal(cprs_state_resave_fd(s, "new", 0, 30), 0);
    assert_int_equal(cprs_state_find_fd(s, "new", 0), 30);
    assert_int_equal(cprs_state_delete_fd(s, "pc.bios", 0), 0);
    assert_int_equal(cprs_state_delete_fd(s, "pc.bios", 0), -ENOENT);
    assert_int_equal(cprs_state_find_fd(s, "pc.bios", 0), -ENOENT);
    assert_int_equal(cprs_state_fd_count(s), 4);
    /* Walk: newest first; a non-zero return stops it. */
    assert_int_equal(cprs_state_walk_fds(s, walk_cb, &w), 42);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.names[0], "new");
    assert_string_equal(w.names[1], "vfio");
    assert_int_equal(w.ids[1], 8);
    assert_string_equal(w.names[2], "vfio");
    assert_int_equal(w.ids[2], 7);
    /* open: opens and saves once, then finds. */
    fd = cprs_state_open_fd(s, "/dev/null", O_RDONLY, "null", 0);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    fd2 = cprs_state_open_fd(s, "/dev/null", O_RDONLY, "null", 0);
    assert_int_equal(fd2, fd);
    assert_int_equal(cprs_state_open_fd(s, "/nonexistent", O_RDONLY, "x", 0),
                     -ENOENT);
    close(fd);
    cprs_state_free(s);
}

/* Many records, deleted and re-added: the index stays exact. */
static void test_many_fds(void **state)
{
    CprsState *s;
    char name[32];
    int i;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    for (i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "irq%d", i / 3);
        assert_int_equal(cprs_state_save_fd(s, name, i % 3, i + 3), 0);
    }
    for (i = 0; i < 20000; i += 2) {
        snprintf(name, sizeof(name), "irq%d", i / 3);
        assert_int_equal(cprs_state_delete_fd(s, name, i % 3), 0);
    }
    for (i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "irq%d", i / 3);
        assert_int_equal(cprs_state_find_fd(s, name, i % 3),
                         i % 2 ? i + 3 : -ENOENT);
    }
    for (i = 0; i < 20000; i += 2) {
        snprintf(name, sizeof(name), "irq%d", i / 3);
        assert_int_equal(cprs_state_save_fd(s, name, i % 3, i + 100000), 0);
    }
    assert_int_equal(cprs_state_fd_count(s), 20000);
    snprintf(name, sizeof(name), "irq%d", 4 / 3);
    assert_int_equal(cprs_state_find_fd(s, name, 4 % 3), 100004);
    cprs_state_free(s);
}

static void test_other_records(void **state)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo,
                                      .name = "0000:00:05.0", .devid = 3,
                                      .ioas_id = 4, .hwpt_id = 5);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0",
                                    .flags = CPRS_RAM_F_SHARED,
                                    .used_length = 0x10000,
                                    .max_length = 0x20000,
                                    .page_size = 4096);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "serial",
                                    .instance_id = 1, .version_id = 4);
    CprsGpaRange gr = { 0x100000, 0x10000, 0 }, got;
    const void *data;
    size_t size;
    uint32_t version;
    CprsState *s;
    int fd;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_vfio(s, &vi), 0);
    assert_int_equal(cprs_state_save_vfio(s, &vi), -EEXIST);
    vi = CPRS_OPTS(CprsVfioDeviceInfo);
    assert_int_equal(cprs_state_find_vfio(s, "0000:00:05.0", &vi), 0);
    assert_int_equal(vi.devid, 3);
    assert_int_equal(vi.hwpt_id, 5);
    assert_int_equal(cprs_state_delete_vfio(s, "0000:00:05.0"), 0);
    assert_int_equal(cprs_state_find_vfio(s, "0000:00:05.0", &vi), -ENOENT);

    /* A RAM block must name an fd record that exists. */
    assert_int_equal(cprs_state_save_ramblock(s, &bi, "ram0", 0, &gr, 1),
                     -EINVAL);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, 40), 0);
    assert_int_equal(cprs_state_save_ramblock(s, &bi, "ram0", 0, &gr, 1), 0);
    bi = CPRS_OPTS(CprsRamBlockInfo);
    assert_int_equal(cprs_state_find_ramblock(s, "ram0", &bi, &fd), 0);
    assert_int_equal(fd, 40);
    assert_int_equal(bi.max_length, 0x20000);
    assert_int_equal(bi.range_count, 1);
    assert_int_equal(cprs_state_gpa_range(s, "ram0", 0, &got), 0);
    assert_int_equal(got.gpa, 0x100000);
    assert_int_equal(cprs_state_gpa_range(s, "ram0", 1, &got), -EINVAL);

    assert_int_equal(cprs_state_save_devstate(s, &di, "abcdef", 6), 0);
    assert_int_equal(cprs_state_find_devstate(s, "serial", 1, &data, &size,
                                              &version), 0);
    assert_int_equal(size, 6);
    assert_memory_equal(data, "abcdef", 6);
    assert_int_equal(version, 4);
    assert_int_equal(cprs_state_find_devstate(s, "serial", 2, &data, &size,
                                              NULL), -ENOENT);
    assert_int_equal(cprs_state_save_devstate(s, &di, "xyz", 3), -EEXIST);
    assert_int_equal(cprs_state_delete_devstate(s, "serial", 1), 0);
    assert_int_equal(cprs_state_delete_devstate(s, "serial", 1), -ENOENT);
    assert_int_equal(cprs_state_save_devstate(s, &di, "xyz", 3), 0);
    cprs_state_free(s);
}

/* Close-on-exec changes only on recorded fds, also inside fd runs. */
static void test_preserve_runs(void **state)
{
    CprsState *s;
    int fds[6], i;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    for (i = 0; i < 6; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
        assert_true(i == 0 || fds[i] == fds[i - 1] + 1);
    }
    /* Record 0, 1, 2 and 4, 5: fd 3 sits inside the range, unrecorded. */
    for (i = 0; i < 6; i++) {
        if (i != 3) {
            assert_int_equal(cprs_state_save_fd(s, "v", i, fds[i]), 0);
        }
    }
    assert_int_equal(cprs_state_preserve_fds(s), 0);
    for (i = 0; i < 6; i++) {
        assert_int_equal(!!(fcntl(fds[i], F_GETFD) & FD_CLOEXEC), i == 3);
    }
    assert_int_equal(fcntl(fds[3], F_SETFD, 0), 0);
    assert_int_equal(cprs_state_unpreserve_fds(s), 0);
    for (i = 0; i < 6; i++) {
        assert_int_equal(!!(fcntl(fds[i], F_GETFD) & FD_CLOEXEC), i != 3);
        close(fds[i]);
    }
    cprs_state_free(s);
}

/* Two memfds and an eventfd, saved in a state. */
typedef struct Fixture {
    int ram0;
    int rom;
    int efd;
} Fixture;

static void fixture_make(Fixture *f, CprsState *s)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0",
                                    .flags = CPRS_RAM_F_SHARED,
                                    .used_length = 1 << 20,
                                    .max_length = 1 << 20,
                                    .page_size = 4096);
    CprsGpaRange gr = { 0, 1 << 20, 0 };
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "cpu",
                                    .version_id = 2,
                                    .flags = CPRS_DEVSTATE_F_ZSTD);
    static uint8_t regs[8192];

    f->ram0 = memfd_create("ram0", MFD_CLOEXEC);
    f->rom = memfd_create("pc.rom", MFD_CLOEXEC);
    f->efd = eventfd(5, EFD_CLOEXEC);
    assert_int_equal(ftruncate(f->ram0, 1 << 20), 0);
    assert_int_equal(ftruncate(f->rom, 1 << 17), 0);
    assert_int_equal(pwrite(f->ram0, "guest", 5, 4096), 5);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, f->ram0), 0);
    assert_int_equal(cprs_state_save_fd(s, "pc.rom", 0, f->rom), 0);
    assert_int_equal(cprs_state_save_fd(s, "irqfd", 3, f->efd), 0);
    assert_int_equal(cprs_state_save_ramblock(s, &bi, "ram0", 0, &gr, 1), 0);
    memset(regs, 0x11, sizeof(regs));
    assert_int_equal(cprs_state_save_devstate(s, &di, regs, sizeof(regs)),
                     0);
}

static void fixture_close(Fixture *f)
{
    close(f->ram0);
    close(f->rom);
    close(f->efd);
}

/* Same records, same identities. */
static void check_loaded(CprsState *ld, const Fixture *f, bool arena)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    const uint8_t *data;
    size_t size;
    int fd;

    assert_int_equal(cprs_state_fd_count(ld), 3);
    assert_int_equal(cprs_state_find_fd(ld, "ram0", 0), f->ram0);
    assert_int_equal(cprs_state_find_fd(ld, "pc.rom", 0), f->rom);
    assert_int_equal(cprs_state_find_fd(ld, "irqfd", 3), f->efd);
    if (!arena) {
        return;
    }
    assert_int_equal(cprs_state_find_ramblock(ld, "ram0", &bi, &fd), 0);
    assert_int_equal(fd, f->ram0);
    assert_int_equal(bi.used_length, 1 << 20);
    assert_int_equal(cprs_state_find_devstate(ld, "cpu", 0,
                                              (const void **)&data, &size,
                                              NULL), 0);
    assert_int_equal(size, 8192);
    assert_int_equal(data[8191], 0x11);
}

/* save_exec then load_exec in one process (the exec itself is e2e). */
static void test_exec_save_load(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsState *s, *ld;
    Fixture f;
    int fd, before = th_count_fds();
    int pass;

    (void)state;
    for (pass = 0; pass < 2; pass++) {
        assert_int_equal(cprs_state_new(&s), 0);
        fixture_make(&f, s);
        so.flags = pass ? CPRS_SAVE_F_LEGACY : 0;
        assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), 0);
        assert_int_equal(cprs_state_preserve_fds(s), 0);
        assert_false(fcntl(f.ram0, F_GETFD) & FD_CLOEXEC);
        cprs_state_free(s);

        assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
        assert_int_equal(cprs_state_format(ld),
                         pass ? CPRS_DETECT_LEGACY : CPRS_DETECT_ARENA);
        assert_int_equal(cprs_state_generation(ld), pass ? 0 : 1);
        assert_int_equal(cprs_state_get_info(ld, &si), 0);
        assert_int_equal(si.format, pass ? CPRS_FORMAT_LEGACY :
                         CPRS_FORMAT_ARENA);
        assert_int_equal(si.generation, pass ? 0 : 1);
        assert_int_equal(si.mode, CPRS_MODE_EXEC);
        assert_int_equal(si.rollback_flags, 0);
        check_loaded(ld, &f, !pass);
        /* Loaded: close-on-exec again (the state memfd too), no variable. */
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(f.ram0, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(f.efd, F_GETFD) & FD_CLOEXEC);
        assert_null(getenv(CPRS_EXEC_STATE_NAME));
        cprs_state_free(ld);
        fixture_close(&f);
        assert_int_equal(th_count_fds(), before);
    }
}

/*
 * Upgrade from a QEMU without iommufd (header-only vfio subsection) and
 * from QEMU 10.0 (no subsection): both load.
 */
static void test_exec_load_legacy_forms(void **state)
{
    static const uint8_t stub[] =
        "QCPR\0\0\0\1" "\1\0\0\0\5ram0\0" "\0\0\0\0" "FDNO" "\0"
        "\x05\x15" "CprState/vfio devices" "\0\0\0\1";
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *ld;
    uint8_t buf[sizeof(stub)];
    size_t sizes[2] = { sizeof(stub) - 1, sizeof(stub) - 1 - 27 };
    int ram0, fd, i;

    (void)state;
    for (i = 0; i < 2; i++) {
        ram0 = memfd_create("ram0", MFD_CLOEXEC);
        memcpy(buf, stub, sizeof(stub));
        /* The be32 fd follows magic, version, marker, namelen, name, id. */
        buf[22] = (uint8_t)(ram0 >> 24);
        buf[23] = (uint8_t)(ram0 >> 16);
        buf[24] = (uint8_t)(ram0 >> 8);
        buf[25] = (uint8_t)ram0;
        fd = state_memfd(buf, sizes[i], 0, CPRS_EXEC_STATE_NAME);
        set_env_fd(fd);
        if (cprs_state_load_exec(NULL, &d, &ld)) {
            fail_msg("form %d: %s at 0x%llx", i, d.reason,
                     (unsigned long long)d.offset);
        }
        assert_int_equal(cprs_state_find_fd(ld, "ram0", 0), ram0);
        cprs_state_free(ld);
        close(ram0);
    }
}

/* A bad state on the load path changes nothing. */
static void test_exec_load_all_or_nothing(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld = NULL;
    Fixture f;
    char *env;
    int fd, ram0_copy, fd_null, before;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    fixture_make(&f, s);
    assert_int_equal(cprs_state_save_exec(s, NULL, &d, &fd), 0);
    assert_int_equal(cprs_state_preserve_fds(s), 0);
    cprs_state_free(s);
    env = strdup(getenv(CPRS_EXEC_STATE_NAME));

    /* The RAM memfd was replaced by another file since save. */
    ram0_copy = dup(f.ram0);
    before = th_count_fds();
    fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(dup2(fd_null, f.ram0), f.ram0);
    close(fd_null);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), -ESTALE);
    assert_null(ld);
    assert_string_equal(d.clause, "11.4");
    assert_int_equal(d.record, 2);      /* ram0 is the oldest, listed last */
    assert_non_null(strstr(d.reason, "another file"));
    /* Untouched: variable, state fd, close-on-exec flags, fd count. */
    assert_string_equal(getenv(CPRS_EXEC_STATE_NAME), env);
    assert_true(fcntl(fd, F_GETFD) >= 0);
    assert_false(fcntl(f.efd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(th_count_fds(), before);

    /* Closed instead of replaced. */
    close(f.ram0);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), -ESTALE);
    assert_non_null(strstr(d.reason, "not open"));
    /* Back in place: the load succeeds; skipping the check also works. */
    assert_int_equal(dup2(ram0_copy, f.ram0), f.ram0);
    close(ram0_copy);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
    cprs_state_free(ld);
    fixture_close(&f);
    free(env);
}

/* Receive on one side of a socketpair while a thread sends. */
typedef struct Sender {
    CprsState *s;
    int sock;
    uint32_t flags;
    int ret;
} Sender;

static void *send_thread(void *arg)
{
    Sender *sd = arg;
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts, .flags = sd->flags);

    sd->ret = cprs_state_save_transfer(sd->s, sd->sock, &so, NULL);
    close(sd->sock);
    return NULL;
}

static void same_file(int a, int b)
{
    struct stat sa, sb;

    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    assert_int_equal(sa.st_dev, sb.st_dev);
    assert_int_equal(sa.st_ino, sb.st_ino);
}

static void test_transfer(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld;
    Sender sd;
    pthread_t th;
    Fixture f;
    int sv[2], pass, before = th_count_fds();
    char text[256];

    (void)state;
    for (pass = 0; pass < 2; pass++) {
        assert_int_equal(cprs_state_new(&s), 0);
        fixture_make(&f, s);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                    sv), 0);
        sd = (Sender) { s, sv[0], pass ? CPRS_SAVE_F_LEGACY : 0, -1 };
        assert_int_equal(pthread_create(&th, NULL, send_thread, &sd), 0);
        if (cprs_state_load_transfer(sv[1], NULL, &d, &ld)) {
            cprs_diag_format(&d, text, sizeof(text));
            fail_msg("load_transfer: %s", text);
        }
        pthread_join(th, NULL);
        assert_int_equal(sd.ret, 0);
        close(sv[1]);
        assert_int_equal(cprs_state_format(ld), pass ? CPRS_DETECT_LEGACY :
                         CPRS_DETECT_ARENA);
        /* New fd numbers, same open files. */
        same_file(cprs_state_find_fd(ld, "ram0", 0), f.ram0);
        same_file(cprs_state_find_fd(ld, "pc.rom", 0), f.rom);
        same_file(cprs_state_find_fd(ld, "irqfd", 3), f.efd);
        assert_int_not_equal(cprs_state_find_fd(ld, "ram0", 0), f.ram0);
        assert_true(fcntl(cprs_state_find_fd(ld, "ram0", 0), F_GETFD) &
                    FD_CLOEXEC);
        cprs_state_close_fds(ld);
        cprs_state_free(ld);
        cprs_state_free(s);
        fixture_close(&f);
        assert_int_equal(th_count_fds(), before);
    }
}

/* More fds than one SCM_RIGHTS message carries. */
static void test_transfer_many_fds(void **state)
{
    enum { N = 700 };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld;
    Sender sd;
    pthread_t th;
    char name[32];
    int efd[N], sv[2], i, before = th_count_fds();
    uint64_t v;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    for (i = 0; i < N; i++) {
        efd[i] = eventfd((unsigned)i + 1, EFD_CLOEXEC);
        assert_true(efd[i] >= 0);
        snprintf(name, sizeof(name), "vector%d", i);
        assert_int_equal(cprs_state_save_fd(s, name, 0, efd[i]), 0);
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    sd = (Sender) { s, sv[0], 0, -1 };
    assert_int_equal(pthread_create(&th, NULL, send_thread, &sd), 0);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld), 0);
    pthread_join(th, NULL);
    assert_int_equal(sd.ret, 0);
    close(sv[1]);
    for (i = 0; i < N; i += 37) {
        snprintf(name, sizeof(name), "vector%d", i);
        /* An eventfd reads back the counter it was created with. */
        assert_int_equal(read(cprs_state_find_fd(ld, name, 0), &v,
                              sizeof(v)), 8);
        assert_int_equal(v, (uint64_t)i + 1);
    }
    cprs_state_close_fds(ld);
    cprs_state_free(ld);
    cprs_state_free(s);
    for (i = 0; i < N; i++) {
        close(efd[i]);
    }
    assert_int_equal(th_count_fds(), before);
}

/* A peer that sends an arena with one fd too few, or stops midway. */
static void test_transfer_bad_peer(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *ld = NULL;
    CprsWriter *w = th_rich_writer(0, 0);
    void *buf;
    size_t size;
    int sv[2], fds[3], before = th_count_fds();

    (void)state;
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    cprs_writer_free(w);
    /* The rich arena is cpr-exec: refused for transfer whatever else. */
    fds[0] = memfd_create("a", MFD_CLOEXEC);
    fds[1] = memfd_create("b", MFD_CLOEXEC);
    fds[2] = memfd_create("c", MFD_CLOEXEC);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(cprs_transfer_send(sv[0], buf, size, fds, 2,
                                        CPRS_TRANSFER_F_SHUTDOWN), 0);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld),
                     -EBADMSG);
    assert_null(ld);
    close(sv[0]);
    close(sv[1]);
    /* Cut short after the header: every received fd is closed. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(cprs_transfer_send(sv[0], buf, 200, fds, 3, 0), 0);
    close(sv[0]);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld),
                     -EBADMSG);
    assert_non_null(strstr(d.reason, "ended before"));
    close(sv[1]);
    close(fds[0]);
    close(fds[1]);
    close(fds[2]);
    assert_int_equal(th_count_fds(), before);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persist_find_release),
        cmocka_unit_test(test_find_rejects),
        cmocka_unit_test(test_fd_semantics),
        cmocka_unit_test(test_many_fds),
        cmocka_unit_test(test_other_records),
        cmocka_unit_test(test_preserve_runs),
        cmocka_unit_test(test_exec_save_load),
        cmocka_unit_test(test_exec_load_all_or_nothing),
        cmocka_unit_test(test_exec_load_legacy_forms),
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_transfer_many_fds),
        cmocka_unit_test(test_transfer_bad_peer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
