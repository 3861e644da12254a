/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * golden-vectors.c - recipes for the golden arenas.
 *
 * The states follow what QEMU 10.2 saved in the captures of
 * tests/data/qemu-10.2: the same names, fd numbers, RAM block sizes
 * (from its qemu_ram_alloc_shared trace) and memfd seals, plus the
 * guest-physical ranges of a q35 machine.  Inodes and device numbers are
 * plausible, fixed values.  Every vector is written reproducibly, so the
 * recipes must keep producing the committed bytes (tests/test-golden.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cprs-failsafe.h"
#include "cprstate.h"
#include "golden-vectors.h"

#define GOLDEN_CREATED UINT64_C(1795624920000000000)  /* 2026-11-25 16:42 */
#define SEAL_SEAL 0x1
#define SEAL_SHRINK 0x2
#define SEAL_GROW 0x4
#define MEMFD_MODE 0100777
#define SHMEM_DEV 0x1

static const uint8_t qemu_build_id[20] = {
    0x3f, 0x8a, 0x51, 0xc2, 0x07, 0x9e, 0xd4, 0x66, 0x21, 0xb0,
    0x5c, 0xe3, 0x48, 0x1d, 0x92, 0x7a, 0x0f, 0xc6, 0x3b, 0x85,
};

typedef struct Block {
    const char *name;
    int fd;
    uint64_t used;
    uint64_t max;
    uint32_t seals;
    uint32_t nranges;
    CprsGpaRange ranges[2];
} Block;

static int new_writer(uint32_t mode, uint64_t generation, uint32_t pid,
                      uint32_t compress, CprsWriter **ret)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .mode = mode,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .generation = generation,
                                 .created_ns = GOLDEN_CREATED,
                                 .writer_pid = pid,
                                 .build_id = qemu_build_id,
                                 .build_id_size = sizeof(qemu_build_id),
                                 .producer = "qemu-system-x86_64 10.2.50",
                                 .compress_sections = compress);

    return cprs_writer_new(&o, ret);
}

/*
 * Add @blocks in QEMU's order: stream order is the reverse of
 * registration, so the first block registered comes last.
 */
static int add_blocks(CprsWriter *w, const Block *blocks, size_t n,
                      uint64_t ino_base)
{
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    uint32_t idx;
    size_t i;
    int ret;

    for (i = n; i-- > 0;) {
        const Block *b = &blocks[i];

        fi = CPRS_OPTS(CprsFdInfo,
                       .name = b->name, .id = 0, .fd = b->fd,
                       .kind = CPRS_FD_KIND_MEMFD,
                       .flags = CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS,
                       .seals = b->seals, .dev = SHMEM_DEV,
                       .ino = ino_base + i, .st_mode = MEMFD_MODE,
                       .size = b->max);
        ret = cprs_writer_add_fd(w, &fi, &idx);
        if (ret) {
            return ret;
        }
        bi = CPRS_OPTS(CprsRamBlockInfo,
                       .idstr = b->name, .fd_index = idx,
                       .flags = CPRS_RAM_F_SHARED |
                                (b->used < b->max ? CPRS_RAM_F_RESIZEABLE :
                                 0),
                       .fd_offset = 0, .used_length = b->used,
                       .max_length = b->max, .page_size = 4096,
                       .align = 0x200000);
        ret = cprs_writer_add_ramblock(w, &bi, b->ranges, b->nranges, NULL);
        if (ret) {
            return ret;
        }
    }
    return 0;
}

static int finish(CprsWriter *w, int ret, void **ret_buf, size_t *ret_size)
{
    if (!ret) {
        ret = cprs_writer_finish_buffer(w, ret_buf, ret_size);
    }
    cprs_writer_free(w);
    return ret;
}

static int build_empty(void **ret_buf, size_t *ret_size)
{
    CprsWriter *w;
    int ret = new_writer(CPRS_MODE_EXEC, 0, 1, 0, &w);

    return ret ? ret : finish(w, 0, ret_buf, ret_size);
}

/* Machine ROMs of q35 and pc, in registration order (as in the trace). */
#define BIOS(fd) { "pc.bios", fd, 0x40000, 0x40000, SEAL_SEAL, 2, \
                   { { 0xfffc0000, 0x40000, 0 }, \
                     { 0xe0000, 0x20000, 0x20000 } } }
#define PCROM(fd) { "pc.rom", fd, 0x20000, 0x20000, SEAL_SEAL, 1, \
                    { { 0xc0000, 0x20000, 0 } } }
#define ACPI(fd) { "/rom@etc/acpi/tables", fd, 0x20000, 0x200000, \
                   SEAL_SEAL, 0, { { 0 } } }
#define LOADER(fd) { "/rom@etc/table-loader", fd, 0x1000, 0x10000, \
                     SEAL_SEAL, 0, { { 0 } } }
#define RSDP(fd) { "/rom@etc/acpi/rsdp", fd, 0x1000, 0x1000, SEAL_SEAL, 0, \
                   { { 0 } } }

/* Scenario a: q35, memory-backend-memfd ram0 128M, cpr-exec. */
static int build_q35_memfd(void **ret_buf, size_t *ret_size)
{
    static const Block blocks[] = {
        { "ram0", 11, 0x8000000, 0x8000000, SEAL_SEAL | SEAL_SHRINK |
          SEAL_GROW, 1, { { 0x0, 0x8000000, 0 } } },
        BIOS(15), PCROM(16), ACPI(17), LOADER(18), RSDP(19),
    };
    CprsWriter *w;
    int ret = new_writer(CPRS_MODE_EXEC, 1, 16897, 0, &w);

    if (ret) {
        return ret;
    }
    ret = add_blocks(w, blocks, sizeof(blocks) / sizeof(blocks[0]), 4100);
    return finish(w, ret, ret_buf, ret_size);
}

/*
 * Scenario b plus passthrough: two NUMA nodes, VGA, an iommufd-backed vfio
 * device, and named device-state payloads (VGA's compressible state with
 * zstd, a small raw one).  Second hop.
 */
static int build_numa2_vga_vfio(void **ret_buf, size_t *ret_size)
{
    static const Block blocks[] = {
        { "ram-node0", 11, 0x8000000, 0x8000000, SEAL_SEAL | SEAL_SHRINK |
          SEAL_GROW, 1, { { 0x0, 0x8000000, 0 } } },
        { "ram-node1", 12, 0x8000000, 0x8000000, SEAL_SEAL | SEAL_SHRINK |
          SEAL_GROW, 1, { { 0x8000000, 0x8000000, 0 } } },
        BIOS(16), PCROM(17),
        { "0000:00:01.0/vga.vram", 18, 0x1000000, 0x1000000, SEAL_SEAL, 1,
          { { 0xfd000000, 0x1000000, 0 } } },
        { "0000:00:01.0/vga.rom", 20, 0x10000, 0x10000, SEAL_SEAL, 1,
          { { 0xfebc0000, 0x10000, 0 } } },
        ACPI(21), LOADER(22), RSDP(23),
    };
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsDevStateInfo di;
    uint8_t *vga;
    CprsWriter *w;
    size_t i;
    int ret = new_writer(CPRS_MODE_EXEC, 2, 17077, 0, &w);

    if (ret) {
        return ret;
    }
    /* iommufd object with fd=, registered before the RAM blocks: last. */
    ret = add_blocks(w, blocks, sizeof(blocks) / sizeof(blocks[0]), 5200);
    fi = CPRS_OPTS(CprsFdInfo, .name = "vfio_device", .id = 0, .fd = 27,
                   .kind = CPRS_FD_KIND_VFIO_DEVICE,
                   .flags = CPRS_FD_F_IDENTITY, .dev = 0xe,
                   .ino = 611, .st_mode = 020600);
    if (!ret) {
        ret = cprs_writer_add_fd(w, &fi, NULL);
    }
    fi = CPRS_OPTS(CprsFdInfo, .name = "iommufd0", .id = 0, .fd = 26,
                   .kind = CPRS_FD_KIND_IOMMUFD,
                   .flags = CPRS_FD_F_IDENTITY, .dev = 0x5,
                   .ino = 422, .st_mode = 020666);
    if (!ret) {
        ret = cprs_writer_add_fd(w, &fi, NULL);
    }
    vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "0000:00:05.0", .devid = 1,
                   .ioas_id = 2, .hwpt_id = 3);
    if (!ret) {
        ret = cprs_writer_add_vfio(w, &vi, NULL);
    }
    vga = calloc(1, 16384);
    if (!vga) {
        ret = ret ? ret : -ENOMEM;
    }
    for (i = 0; !ret && i < 16384; i += 64) {
        vga[i] = (uint8_t)(i >> 6);
        vga[i + 1] = 0x3c;
    }
    di = CPRS_OPTS(CprsDevStateInfo, .name = "vga", .instance_id = 0,
                   .version_id = 2, .flags = CPRS_DEVSTATE_F_ZSTD);
    if (!ret) {
        ret = cprs_writer_add_devstate(w, &di, vga, 16384, NULL);
    }
    free(vga);
    di = CPRS_OPTS(CprsDevStateInfo, .name = "vfio-pci/0000:00:05.0",
                   .instance_id = 0, .version_id = 1);
    if (!ret) {
        ret = cprs_writer_add_devstate(w, &di, "\x10\xde\x1e\xb8\x00\x01",
                                       6, NULL);
    }
    return finish(w, ret, ret_buf, ret_size);
}

/*
 * Scenario g1: the q35 memfd machine over cpr-transfer, with the record
 * sections zstd-compressed (the section-level compression path).
 */
static int build_transfer_zstd(void **ret_buf, size_t *ret_size)
{
    static const Block blocks[] = {
        { "ram0", 11, 0x8000000, 0x8000000, SEAL_SEAL | SEAL_SHRINK |
          SEAL_GROW, 1, { { 0x0, 0x8000000, 0 } } },
        BIOS(15), PCROM(16), ACPI(17), LOADER(18), RSDP(19),
    };
    CprsWriter *w;
    int ret = new_writer(CPRS_MODE_TRANSFER, 1, 17699,
                         (1u << CPRS_SECTION_STRTAB) |
                         (1u << CPRS_SECTION_FDS) |
                         (1u << CPRS_SECTION_RAMBLOCKS), &w);

    if (ret) {
        return ret;
    }
    ret = add_blocks(w, blocks, sizeof(blocks) / sizeof(blocks[0]), 7300);
    return finish(w, ret, ret_buf, ret_size);
}

/*
 * fail-safe F5.7: scenario a handed back.  QEMU 10.2.50 with libcprstate
 * armed a rollback before its cpr-exec; the next binary failed in
 * migrate-incoming, and handed this copy of the state back, its ROLLBACK
 * section (type 9) now ROLLED_BACK with the failure recorded.
 */
static int build_q35_rolled_back(void **ret_buf, size_t *ret_size)
{
    static const Block blocks[] = {
        { "ram0", 11, 0x8000000, 0x8000000, SEAL_SEAL | SEAL_SHRINK |
          SEAL_GROW, 1, { { 0x0, 0x8000000, 0 } } },
        BIOS(15), PCROM(16), ACPI(17), LOADER(18), RSDP(19),
    };
    static const char exe[] = "/usr/bin/qemu-system-x86_64 (deleted)";
    /* One literal per argument: a digit after "\0" would be octal. */
    static const char argv[] = "/usr/bin/qemu-system-x86_64\0" "-machine\0"
                               "q35\0" "-m\0" "128M\0" "-object\0"
                               "memory-backend-memfd,id=ram0,size=128M\0"
                               "-machine\0"
                               "memory-backend=ram0,aux-ram-share=on\0"
                               "-incoming\0" "file:/var/lib/qemu/vm.state";
    CprsWireRollback w;
    CprsWriter *w2;
    uint8_t sec[sizeof(w) + 40 + 184];
    void *arena;
    _Static_assert(sizeof(exe) <= 40 && sizeof(argv) <= 184, "sizes");
    size_t size;
    int ret = new_writer(CPRS_MODE_EXEC, 2, 16897, 0, &w2);

    if (ret) {
        return ret;
    }
    ret = add_blocks(w2, blocks, sizeof(blocks) / sizeof(blocks[0]), 4100);
    ret = finish(w2, ret, &arena, &size);
    if (ret) {
        return ret;
    }
    memset(&w, 0, sizeof(w));
    memset(sec, 0, sizeof(sec));
    cprs_le16_set(&w.version_major, CPRS_ROLLBACK_VERSION_MAJOR);
    cprs_le32_set(&w.header_size, CPRS_ROLLBACK_V1_SIZE);
    cprs_le32_set(&w.flags, CPRS_ROLLBACK_F_ROLLED_BACK |
                  CPRS_ROLLBACK_F_FAILURE);
    cprs_le32_set(&w.argc, 11);
    cprs_le64_set(&w.generation, 2);
    cprs_le64_set(&w.armed_ns, GOLDEN_CREATED);
    cprs_le32_set(&w.pid, 16897);
    cprs_le32_set(&w.exe_fd, 31);
    cprs_le64_set(&w.exe_dev, 0xfe01);
    cprs_le64_set(&w.exe_ino, 1311042);
    cprs_le64_set(&w.exe_size, 61439624);
    cprs_le32_set(&w.exe_mode, 0100755);
    cprs_le32_set(&w.argv_size, sizeof(argv));
    cprs_le64_set(&w.state_dev, SHMEM_DEV);
    cprs_le64_set(&w.state_ino, 4096);
    cprs_le32_set(&w.failure_stage, CPRS_FAILURE_INCOMING);
    cprs_le32_set(&w.failure_errno, 22);
    cprs_le64_set(&w.failed_ns, GOLDEN_CREATED + 1500000000u);
    cprs_le64_set(&w.failed_dev, 0xfe01);
    cprs_le64_set(&w.failed_ino, 1311077);
    cprs_le32_set(&w.exe_path_size, sizeof(exe));
    strcpy(w.failure_message, "Unknown savevm section or instance "
           "'0000:00:02.0/virtio-net' 0");
    strcpy(w.failed_exe, "/usr/bin/qemu-system-x86_64");
    memcpy(sec, &w, sizeof(w));
    memcpy(sec + sizeof(w), exe, sizeof(exe));
    memcpy(sec + sizeof(w) + 40, argv, sizeof(argv));
    ret = cprs_arena_append_section(arena, size, CPRS_SECTION_ROLLBACK, 0,
                                    sec, sizeof(w) + 40 +
                                    ((sizeof(argv) + 7) & ~(size_t)7),
                                    ret_buf, ret_size);
    free(arena);
    return ret;
}

const GoldenVector golden_vectors[] = {
    { "empty", build_empty },
    { "qemu-q35-memfd", build_q35_memfd },
    { "qemu-numa2-vga-vfio", build_numa2_vga_vfio },
    { "qemu-transfer-zstd", build_transfer_zstd },
    { "qemu-q35-rolled-back", build_q35_rolled_back },
};
const size_t golden_vector_count =
    sizeof(golden_vectors) / sizeof(golden_vectors[0]);
