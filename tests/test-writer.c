/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-writer.c - the writer refuses bad input and, when it does, leaves
 * itself exactly as it was; opts handling; sealing; the producer build-id.
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "inspect.h"

static CprsWriter *new_writer(void)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsWriter *w;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    return w;
}

static void finish(CprsWriter *w, uint8_t **buf, size_t *size)
{
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)buf, size), 0);
}

/* A failed add changes nothing: the output equals one without it. */
static void assert_unchanged(CprsWriter *w, const uint8_t *ref,
                             size_t ref_size)
{
    uint8_t *buf;
    size_t size;

    finish(w, &buf, &size);
    assert_int_equal(size, ref_size);
    assert_memory_equal(buf, ref, size);
    free(buf);
}

static void test_bad_names(void **state)
{
    char long_name[CPRS_MAX_NAME_LEN + 2];
    const char *bad[] = { "", "tab\there", "nl\n", "del\x7f", "hi\x80" };
    CprsWriter *w = th_rich_writer(0, 0);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .page_size = 4096,
                                    .fd_index = CPRS_NO_INDEX);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    uint8_t *ref;
    size_t ref_size, i;

    (void)state;
    finish(w, &ref, &ref_size);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    fi.name = long_name;
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fi.name = bad[i];
        vi.name = bad[i];
        bi.idstr = bad[i];
        di.name = bad[i];
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
        assert_int_equal(cprs_writer_add_vfio(w, &vi, NULL), -EINVAL);
        assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                         -EINVAL);
        assert_int_equal(cprs_writer_add_devstate(w, &di, "x", 1, NULL),
                         -EINVAL);
    }
    /* The longest allowed name is fine. */
    long_name[CPRS_MAX_NAME_LEN] = '\0';
    fi.name = long_name;
    assert_unchanged(w, ref, ref_size);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    free(ref);
    cprs_writer_free(w);
}

static void test_duplicates(void **state)
{
    CprsWriter *w = th_rich_writer(0, 0);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 3);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0",
                                    .page_size = 4096,
                                    .fd_index = CPRS_NO_INDEX);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo,
                                      .name = "0000:00:05.0");
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "serial",
                                    .instance_id = 1);
    uint8_t *ref;
    size_t ref_size;
    uint32_t idx;

    (void)state;
    finish(w, &ref, &ref_size);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EEXIST);
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EEXIST);
    assert_int_equal(cprs_writer_add_vfio(w, &vi, NULL), -EEXIST);
    assert_int_equal(cprs_writer_add_devstate(w, &di, "abc", 3, NULL),
                     -EEXIST);
    assert_unchanged(w, ref, ref_size);
    /* The same name with another id, or another instance, is a new key. */
    fi.id = 1;
    assert_int_equal(cprs_writer_add_fd(w, &fi, &idx), 0);
    assert_int_equal(idx, 3);
    di.instance_id = 2;
    assert_int_equal(cprs_writer_add_devstate(w, &di, "abc", 3, &idx), 0);
    assert_int_equal(idx, 3);
    free(ref);
    cprs_writer_free(w);
}

static void test_bad_fields(void **state)
{
    CprsWriter *w = th_rich_writer(0, 0);
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "d",
                                    .flags = 0x80);
    uint8_t *ref;
    size_t ref_size;

    (void)state;
    finish(w, &ref, &ref_size);
    fi = CPRS_OPTS(CprsFdInfo, .name = "x", .fd = -2);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    fi = CPRS_OPTS(CprsFdInfo, .name = "x", .kind = CPRS_FD_KIND__MAX);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    fi = CPRS_OPTS(CprsFdInfo, .name = "x", .flags = 0x4);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    fi = CPRS_OPTS(CprsFdInfo, .name = "x", .seals = 1);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    fi = CPRS_OPTS(CprsFdInfo, .name = "x", .ino = 1);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);

    /* Each case starts from a valid block and breaks one field. */
#define BLOCK_BASE CPRS_OPTS(CprsRamBlockInfo, .idstr = "blk", \
                             .fd_index = CPRS_NO_INDEX, .page_size = 4096, \
                             .used_length = 8192, .max_length = 8192)
    bi = BLOCK_BASE;
    bi.fd_index = 3;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.used_length = 8193;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.page_size = 4095;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.page_size = 0;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.align = 3;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.fd_offset = UINT64_MAX;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    bi.flags = 0x100;
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL),
                     -EINVAL);
    bi = BLOCK_BASE;
    gr = (CprsGpaRange) { 0x1000, 0, 0 };
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), -EINVAL);
    gr = (CprsGpaRange) { UINT64_MAX, 2, 0 };
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), -EINVAL);
    gr = (CprsGpaRange) { 0x1000, 4096, 4097 };
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), -EINVAL);
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 1, NULL),
                     -EINVAL);
#undef BLOCK_BASE
    assert_int_equal(cprs_writer_add_devstate(w, &di, "x", 1, NULL),
                     -EINVAL);
    di.flags = 0;
    assert_int_equal(cprs_writer_add_devstate(w, &di, NULL, 1, NULL),
                     -EINVAL);
    assert_int_equal(cprs_writer_add_devstate(w, &di, "x",
                                              CPRS_MAX_PAYLOAD_SIZE + 1,
                                              NULL), -E2BIG);
    assert_unchanged(w, ref, ref_size);
    /* A range reaching the last byte of the address space is fine. */
    bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "top", .page_size = 4096,
                   .fd_index = CPRS_NO_INDEX, .used_length = 4096,
                   .max_length = 4096);
    gr = (CprsGpaRange) { UINT64_MAX - 4095, 4096, 0 };
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), 0);
    free(ref);
    cprs_writer_free(w);
}

static void test_opts(void **state)
{
    struct {
        CprsWriterOpts o;
        uint64_t tail;
    } big;
    CprsWriterOpts o;
    CprsWriter *w;
    char producer[CPRS_PRODUCER_MAX + 1];
    uint8_t id[CPRS_BUILD_ID_MAX + 1] = { 0 };

    (void)state;
    assert_int_equal(cprs_writer_new(NULL, NULL), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .mode = 3);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .flags = 0x100);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    memset(producer, 'p', sizeof(producer) - 1);
    producer[sizeof(producer) - 1] = '\0';
    o = CPRS_OPTS(CprsWriterOpts, .producer = producer);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .producer = "bell\a");
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .build_id = id,
                  .build_id_size = CPRS_BUILD_ID_MAX + 1);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .build_id_size = 4);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .zstd_level = 1000);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts, .compress_sections = 1u << 20);
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);
    o = CPRS_OPTS(CprsWriterOpts);
    o.sz = 4;
    assert_int_equal(cprs_writer_new(&o, &w), -EINVAL);

    /* A newer caller's larger struct: zero tail accepted, else refused. */
    memset(&big, 0, sizeof(big));
    big.o.sz = sizeof(big);
    big.o.flags = CPRS_WRITER_F_REPRODUCIBLE;
    assert_int_equal(cprs_writer_new(&big.o, &w), 0);
    cprs_writer_free(w);
    big.tail = 1;
    assert_int_equal(cprs_writer_new(&big.o, &w), -EINVAL);

    /* An older caller's smaller struct gets defaults for the rest. */
    o = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_TRANSFER);
    o.sz = offsetof(CprsWriterOpts, flags);
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    cprs_writer_free(w);
    cprs_writer_free(NULL);
}

static int find_own_build_id(struct dl_phdr_info *info, size_t size,
                             void *data)
{
    uint8_t *out = data;
    int i;

    (void)size;
    if (info->dlpi_name && info->dlpi_name[0]) {
        return 0;   /* only the main executable */
    }
    for (i = 0; i < info->dlpi_phnum; i++) {
        const uint8_t *p, *end;

        if (info->dlpi_phdr[i].p_type != PT_NOTE) {
            continue;
        }
        p = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        end = p + info->dlpi_phdr[i].p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name = (nh->n_namesz + 3) & ~3u;
            size_t desc = (nh->n_descsz + 3) & ~3u;

            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                nh->n_descsz <= 32) {
                out[0] = (uint8_t)nh->n_descsz;
                memcpy(out + 1, p + sizeof(*nh) + name, nh->n_descsz);
                return 1;
            }
            p += sizeof(*nh) + name + desc;
        }
    }
    return 0;
}

/*
 * The default build-id is this executable's, from the note the loader
 * mapped; compare it with our own walk of that note and with libelf's
 * reading of the executable file.
 */
static void test_default_build_id(void **state)
{
    uint8_t mem[33] = { 0 }, file[32];
    char want[64];
    size_t file_size;
    int fd;
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsWriter *w;
    CprsReader *r;
    void *buf;
    size_t size;

    (void)state;
    if (!dl_iterate_phdr(find_own_build_id, mem)) {
        skip();     /* linked without --build-id */
    }
    assert_int_equal(cprs_writer_new(NULL, &w), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    assert_int_equal(cprs_reader_get_info(r, &ai), 0);
    assert_int_equal(ai.build_id_size, mem[0]);
    assert_memory_equal(ai.build_id, mem + 1, mem[0]);
    /* An independent reading: libelf, from the executable's file. */
    fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(elf_build_id(fd, file, sizeof(file), &file_size), 0);
    close(fd);
    assert_int_equal(ai.build_id_size, file_size);
    assert_memory_equal(ai.build_id, file, file_size);
    assert_int_equal(ai.writer_pid, (uint32_t)getpid());
    assert_true(ai.created_ns > UINT64_C(1600000000) * 1000000000u);
    snprintf(want, sizeof(want), "libcprstate %s", cprs_version());
    assert_string_equal(ai.producer, want);
    cprs_reader_close(r);
    cprs_writer_free(w);
    free(buf);
}

static void test_elf_build_id_errors(void **state)
{
    uint8_t id[32];
    size_t n;
    int fd;

    (void)state;
    fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(elf_build_id(fd, id, 4, &n), -E2BIG);
    assert_int_equal(elf_build_id(fd, id, sizeof(id), &n), 0);
    assert_true(n >= 16);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
    /* Not ELF at all: a memfd with text. */
    fd = memfd_create("notelf", MFD_CLOEXEC);
    assert_int_equal(write(fd, "hello, world", 12), 12);
    assert_int_equal(elf_build_id(fd, id, sizeof(id), &n), -EBADMSG);
    close(fd);
}

/* Kinds, seals and identity of real fds, with and without the fast path. */
static void test_fd_identify(void **state)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo), fj;
    struct stat st;
    int fds[5], p[2], sv[2], i;
    static const uint32_t kinds[5] = {
        CPRS_FD_KIND_MEMFD, CPRS_FD_KIND_EVENTFD, CPRS_FD_KIND_PIPE,
        CPRS_FD_KIND_SOCKET, CPRS_FD_KIND_OTHER,
    };

    (void)state;
    fds[0] = memfd_create("ram0", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_int_equal(ftruncate(fds[0], 8192), 0);
    assert_int_equal(fcntl(fds[0], F_ADD_SEALS, F_SEAL_GROW), 0);
    fds[1] = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fds[2] = p[0];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    fds[3] = sv[0];
    fds[4] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (i = 0; i < 5; i++) {
        assert_int_equal(cprs_fd_identify(fds[i], &fi), 0);
        assert_int_equal(fi.kind, kinds[i]);
        assert_true(fi.flags & CPRS_FD_F_IDENTITY);
        assert_int_equal(fstat(fds[i], &st), 0);
        assert_int_equal(fi.dev, st.st_dev);
        assert_int_equal(fi.ino, st.st_ino);
        assert_int_equal(fi.st_mode, st.st_mode);
        /* The fast path, knowing the memfd device, agrees. */
        fj = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_fd_identify_dev(fds[i], &fj, cprs_memfd_dev()),
                         0);
        assert_int_equal(fj.kind, fi.kind);
        assert_int_equal(fj.seals, fi.seals);
        assert_int_equal(fj.flags, fi.flags);
    }
    assert_int_equal(fi.size, 0);
    assert_int_equal(cprs_fd_identify(fds[0], &fi), 0);
    assert_int_equal(fi.size, 8192);
    assert_true(fi.flags & CPRS_FD_F_SEALS);
    assert_int_equal(fi.seals, F_SEAL_GROW);
    /* A file in /dev/shm is shm, not a memfd, even when unlinked. */
    close(fds[4]);
    fds[4] = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fds[4] >= 0) {
        assert_int_equal(cprs_fd_identify_dev(fds[4], &fi, cprs_memfd_dev()),
                         0);
        assert_int_equal(fi.kind, CPRS_FD_KIND_SHM);
    }
    for (i = 0; i < 5; i++) {
        close(fds[i]);
    }
    close(p[1]);
    close(sv[1]);
    assert_int_equal(cprs_fd_identify(-1, &fi), -EINVAL);
    assert_int_equal(cprs_fd_identify(1000000, &fi), -EBADF);
}

static void test_memfd_sealed(void **state)
{
    CprsWriter *w = new_writer();
    int fd, seals;

    (void)state;
    assert_int_equal(cprs_writer_finish_memfd(w, "QEMU_CPR_EXEC_STATE",
                                              CPRS_MEMFD_F_SEAL, &fd), 0);
    seals = fcntl(fd, F_GET_SEALS);
    assert_int_equal(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                     F_SEAL_SEAL);
    assert_int_equal(pwrite(fd, "x", 1, 0), -1);
    assert_int_equal(errno, EPERM);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    assert_int_equal(cprs_writer_finish_memfd(w, "x", 0x80, &fd), -EINVAL);
    /* Unsealed on request. */
    assert_int_equal(cprs_writer_finish_memfd(w, "x", 0, &fd), 0);
    assert_int_equal(fcntl(fd, F_GET_SEALS), 0);
    close(fd);
    cprs_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_default_build_id),
        cmocka_unit_test(test_elf_build_id_errors),
        cmocka_unit_test(test_fd_identify),
        cmocka_unit_test(test_memfd_sealed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
