/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-format.h - wire definition of the CPR State Arena, format v1.0.
 *
 * This is the single source of truth for the on-disk / in-memfd layout that
 * spec/cpr-state-arena.rst describes.  Every struct here is a fixed-layout,
 * little-endian, naturally aligned record; the _Static_assert block at the
 * end proves each size and each field offset against the spec's tables.
 *
 * Nothing in a struct named CprsWire* is trusted: such memory comes from
 * another process and must be validated before use (spec section 8).
 *
 * Includes only standard headers; usable without libcprstate.
 */
#ifndef CPRS_FORMAT_H
#define CPRS_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "cprs-le.h"

/*
 * C++ spells C11's _Static_assert static_assert: the layout proofs below
 * hold in both languages.
 */
#if defined(__cplusplus) && !defined(_Static_assert)
#define _Static_assert static_assert
#endif

/* ---- Identification (spec 3.2, 3.3) ---------------------------------- */

/*
 * 0x89 "CPRS" CR LF 0x1A: the high first byte can never start QEMU's legacy
 * stream ("QCPR"), nor any text; CR LF and ^Z catch text-mode mangling.
 */
#define CPRS_MAGIC_SIZE 8
#define CPRS_MAGIC "\x89" "CPRS\r\n\x1a"

#define CPRS_FORMAT_VERSION_MAJOR 1
#define CPRS_FORMAT_VERSION_MINOR 0

/* ---- Limits (spec 7) --------------------------------------------------- */

/* Largest arena a reader must accept: 16 GiB. */
#define CPRS_MAX_ARENA_SIZE        (UINT64_C(1) << 34)
/* Largest header_size; bounds the header CRC to constant time. */
#define CPRS_MAX_HEADER_SIZE       4096u
/* Directory entries; bounds open() to constant time. */
#define CPRS_MAX_SECTIONS          64u
/* Records of one type (fd, RAM block, range, device, device state). */
#define CPRS_MAX_RECORDS           (1u << 24)
/* Bytes of a name, excluding its NUL. */
#define CPRS_MAX_NAME_LEN          4095u
/* Uncompressed bytes of one device-state payload: 1 GiB. */
#define CPRS_MAX_PAYLOAD_SIZE      (UINT64_C(1) << 30)
/* Uncompressed bytes of one compressed section: 1 GiB. */
#define CPRS_MAX_SECTION_RAW_SIZE  (UINT64_C(1) << 30)
/* Bytes of one record or directory entry, appended fields included. */
#define CPRS_MAX_RECORD_SIZE       4096u
/* Slots of one hash index. */
#define CPRS_MAX_INDEX_SLOTS       (1u << 26)
/* Producer build-id bytes and producer string bytes (incl. NUL). */
#define CPRS_BUILD_ID_MAX          32u
#define CPRS_PRODUCER_MAX          64u

/* Alignment of every section and record (spec 2.2). */
#define CPRS_ALIGN                 8u

/* "No record" in a record reference field. */
#define CPRS_NO_INDEX              UINT32_C(0xffffffff)

/* ---- Feature words (spec 3.5) ------------------------------------------ */

/* At least one section or payload is zstd-compressed (spec 5). */
#define CPRS_INCOMPAT_ZSTD         (UINT64_C(1) << 0)
#define CPRS_INCOMPAT_KNOWN        (CPRS_INCOMPAT_ZSTD)
/* No compatible feature is defined in v1.0. */
#define CPRS_COMPAT_KNOWN          UINT64_C(0)

/* ---- CPR mode (spec 3.12) ---------------------------------------------- */

enum {
    CPRS_MODE_EXEC = 1,       /* fds inherited across exec() */
    CPRS_MODE_TRANSFER = 2,   /* fds passed by SCM_RIGHTS */
    CPRS_MODE__MAX,
};

/* ---- Section types (spec 4.2, 6) --------------------------------------- */

enum {
    CPRS_SECTION_STRTAB = 1,        /* NUL-terminated names (6.1) */
    CPRS_SECTION_FDS = 2,           /* CprsWireFd[] (6.2) */
    CPRS_SECTION_RAMBLOCKS = 3,     /* CprsWireRamBlock[] (6.3) */
    CPRS_SECTION_GPA_RANGES = 4,    /* CprsWireGpaRange[] (6.4) */
    CPRS_SECTION_VFIO_DEVICES = 5,  /* CprsWireVfioDevice[] (6.5) */
    CPRS_SECTION_DEVSTATE = 6,      /* CprsWireDevState[] (6.6) */
    CPRS_SECTION_BLOB = 7,          /* device-state payload bytes (6.7) */
    CPRS_SECTION_INDEX = 8,         /* CprsWireIndexSlot[] (6.8) */
    CPRS_SECTION__MAX,
};

/* Section flags (spec 4.3). */
#define CPRS_SECTION_F_REQUIRED    UINT32_C(0x1)  /* must be understood */
#define CPRS_SECTION_F_ZSTD        UINT32_C(0x2)  /* stored bytes are zstd */
#define CPRS_SECTION_F_KNOWN       (CPRS_SECTION_F_REQUIRED | \
                                    CPRS_SECTION_F_ZSTD)

/* ---- fd kinds and flags (spec 6.2) ------------------------------------- */

enum {
    CPRS_FD_KIND_OTHER = 0,
    CPRS_FD_KIND_MEMFD = 1,
    CPRS_FD_KIND_SHM = 2,            /* file on tmpfs/hugetlbfs, /dev/shm */
    CPRS_FD_KIND_VFIO_DEVICE = 3,
    CPRS_FD_KIND_VFIO_GROUP = 4,
    CPRS_FD_KIND_VFIO_CONTAINER = 5,
    CPRS_FD_KIND_IOMMUFD = 6,
    CPRS_FD_KIND_EVENTFD = 7,
    CPRS_FD_KIND_TAP = 8,
    CPRS_FD_KIND_PIPE = 9,
    CPRS_FD_KIND_SOCKET = 10,
    CPRS_FD_KIND_FILE = 11,          /* any other regular file */
    CPRS_FD_KIND__MAX,
};

#define CPRS_FD_F_IDENTITY         UINT32_C(0x1)  /* dev/ino/mode/size valid */
#define CPRS_FD_F_SEALS            UINT32_C(0x2)  /* seals valid */
#define CPRS_FD_F_KNOWN            (CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS)

/* ---- RAM block flags (spec 6.3) ---------------------------------------- */

#define CPRS_RAM_F_SHARED          UINT32_C(0x01)
#define CPRS_RAM_F_RESIZEABLE      UINT32_C(0x02)
#define CPRS_RAM_F_PREALLOC        UINT32_C(0x04)
#define CPRS_RAM_F_NORESERVE       UINT32_C(0x08)
#define CPRS_RAM_F_READONLY        UINT32_C(0x10)
#define CPRS_RAM_F_KNOWN           UINT32_C(0x1f)

/* ---- Device-state flags (spec 6.6) ------------------------------------- */

#define CPRS_DEVSTATE_F_ZSTD       UINT32_C(0x1)
#define CPRS_DEVSTATE_F_KNOWN      (CPRS_DEVSTATE_F_ZSTD)

/* ---- Hash index (spec 6.8) --------------------------------------------- */

#define CPRS_FNV32_OFFSET          UINT32_C(0x811c9dc5)
#define CPRS_FNV32_PRIME           UINT32_C(0x01000193)

/* ---- Wire structs ------------------------------------------------------ */

/*
 * Header, at offset 0 (spec 3).  v1.0 size 192.  Later minors only append;
 * header_size tells how much a writer wrote.
 */
typedef struct CprsWireHeader {
    uint8_t magic[CPRS_MAGIC_SIZE]; /* CPRS_MAGIC (3.2) */
    CprsLe16 version_major;         /* = 1; newer: refuse (3.3) */
    CprsLe16 version_minor;         /* any; newer: lenient rules (8.4) */
    CprsLe32 header_size;           /* bytes, >= 192, <= 4096, 8-aligned */
    CprsLe64 incompat_features;     /* unknown bit: refuse (3.5) */
    CprsLe64 compat_features;       /* unknown bit: ignore (3.5) */
    CprsLe64 arena_size;            /* bytes, whole arena (3.6) */
    CprsLe64 dir_offset;            /* bytes from arena start (3.7) */
    CprsLe32 dir_count;             /* entries, <= CPRS_MAX_SECTIONS */
    CprsLe32 dir_entry_size;        /* bytes per entry, >= 48 (3.7) */
    CprsLe64 generation;            /* hop counter, +1 per hop (3.10) */
    CprsLe64 created_ns;            /* CLOCK_REALTIME ns, 0 unknown (3.11) */
    CprsLe32 mode;                  /* CPRS_MODE_* (3.12) */
    CprsLe32 writer_pid;            /* pid of the writer, 0 unknown (3.13) */
    CprsLe32 dir_crc32c;            /* CRC32C of the directory (3.8) */
    CprsLe32 header_crc32c;         /* CRC32C of header, this as 0 (3.9) */
    CprsLe32 build_id_size;         /* bytes of build_id used, <= 32 */
    CprsLe32 reserved0;             /* zero (3.16) */
    uint8_t build_id[CPRS_BUILD_ID_MAX];   /* ELF NT_GNU_BUILD_ID (3.14) */
    char producer[CPRS_PRODUCER_MAX];      /* NUL-terminated, 0-padded */
} CprsWireHeader;

#define CPRS_HEADER_V1_SIZE 192u

/* Was @field written?  For fields appended after v1.0 (spec 3.4). */
#define CPRS_HDR_HAS(header_size, field) \
    ((header_size) >= offsetof(CprsWireHeader, field) + \
                      sizeof(((CprsWireHeader *)0)->field))

/* Section directory entry (spec 4).  v1.0 size 48. */
typedef struct CprsWireSection {
    CprsLe32 type;                  /* CPRS_SECTION_* (4.2) */
    CprsLe32 flags;                 /* CPRS_SECTION_F_* (4.3) */
    CprsLe64 offset;                /* bytes from arena start, 8-aligned */
    CprsLe64 stored_size;           /* bytes in the arena (4.5) */
    CprsLe64 raw_size;              /* bytes after decompression (4.5) */
    CprsLe32 record_count;          /* records, 0 for byte sections (4.6) */
    CprsLe32 record_size;           /* bytes per record, 8-aligned (4.6) */
    CprsLe32 crc32c;                /* CRC32C of the stored bytes (4.7) */
    CprsLe32 link;                  /* INDEX: indexed section (4.8) */
} CprsWireSection;

#define CPRS_SECTION_V1_SIZE 48u

/* A name reference into the string table (spec 6.1.1). */
typedef struct CprsWireStr {
    CprsLe32 off;                   /* byte offset in STRTAB */
    CprsLe32 len;                   /* bytes, excluding the NUL, >= 1 */
} CprsWireStr;

/* fd record (spec 6.2).  v1.0 size 64. */
typedef struct CprsWireFd {
    CprsWireStr name;               /* QEMU's cpr name (6.2.1) */
    CprsLe32 id;                    /* int32, QEMU's cpr id (6.2.2) */
    CprsLe32 slot;                  /* position in the fd vector (6.2.3) */
    CprsLe32 fd;                    /* int32, number in the writer (6.2.4) */
    CprsLe16 kind;                  /* CPRS_FD_KIND_* (6.2.5) */
    CprsLe16 reserved0;             /* zero */
    CprsLe32 flags;                 /* CPRS_FD_F_* (6.2.6) */
    CprsLe32 seals;                 /* F_GET_SEALS at save (6.2.7) */
    CprsLe64 dev;                   /* st_dev at save (6.2.8) */
    CprsLe64 ino;                   /* st_ino at save */
    CprsLe32 st_mode;               /* st_mode at save */
    CprsLe32 reserved1;             /* zero */
    CprsLe64 size;                  /* st_size at save, bytes */
} CprsWireFd;

#define CPRS_FD_V1_SIZE 64u

/* RAM block map (spec 6.3).  v1.0 size 64. */
typedef struct CprsWireRamBlock {
    CprsWireStr idstr;              /* QEMU RAMBlock idstr (6.3.1) */
    CprsLe32 fd_index;              /* backing fd record or NO_INDEX */
    CprsLe32 flags;                 /* CPRS_RAM_F_* (6.3.3) */
    CprsLe64 fd_offset;             /* bytes, offset in the fd (6.3.4) */
    CprsLe64 used_length;           /* bytes (6.3.5) */
    CprsLe64 max_length;            /* bytes, >= used_length */
    CprsLe64 page_size;             /* bytes, power of two (6.3.6) */
    CprsLe64 align;                 /* bytes, 0 or power of two */
    CprsLe32 range_first;           /* first GPA range (6.3.7) */
    CprsLe32 range_count;           /* number of GPA ranges */
} CprsWireRamBlock;

#define CPRS_RAMBLOCK_V1_SIZE 64u

/* Guest-physical range of a RAM block (spec 6.4).  v1.0 size 24. */
typedef struct CprsWireGpaRange {
    CprsLe64 gpa;                   /* guest-physical address */
    CprsLe64 size;                  /* bytes, >= 1 */
    CprsLe64 block_offset;          /* bytes into the RAM block */
} CprsWireGpaRange;

#define CPRS_GPA_RANGE_V1_SIZE 24u

/* vfio/iommufd device record, QEMU's CprVFIODevice (spec 6.5).  v1.0 24. */
typedef struct CprsWireVfioDevice {
    CprsWireStr name;               /* vbasedev->name (6.5.1) */
    CprsLe32 devid;                 /* int32, iommufd device id */
    CprsLe32 ioas_id;               /* iommufd IOAS id */
    CprsLe32 hwpt_id;               /* iommufd HW page table id */
    CprsLe32 flags;                 /* zero in v1.0 */
} CprsWireVfioDevice;

#define CPRS_VFIO_DEVICE_V1_SIZE 24u

/* Named device-state payload (spec 6.6).  v1.0 size 48. */
typedef struct CprsWireDevState {
    CprsWireStr name;               /* vmstate-like name (6.6.1) */
    CprsLe32 instance_id;           /* (6.6.2) */
    CprsLe32 version_id;            /* (6.6.3) */
    CprsLe32 flags;                 /* CPRS_DEVSTATE_F_* (6.6.4) */
    CprsLe32 reserved0;             /* zero */
    CprsLe64 data_off;              /* bytes into BLOB, 8-aligned (6.6.5) */
    CprsLe64 stored_size;           /* bytes in BLOB */
    CprsLe64 raw_size;              /* bytes after decompression */
} CprsWireDevState;

#define CPRS_DEVSTATE_V1_SIZE 48u

/* Hash index slot (spec 6.8).  v1.0 size 8. */
typedef struct CprsWireIndexSlot {
    CprsLe32 record;                /* record index + 1; 0 = empty */
    CprsLe32 hash;                  /* FNV-1a of the record's key */
} CprsWireIndexSlot;

#define CPRS_INDEX_SLOT_V1_SIZE 8u

/* ---- Layout proofs: every size and every offset (spec tables) --------- */

#define CPRS_ASSERT_AT(type, field, off) \
    _Static_assert(offsetof(type, field) == (off), \
                   #type "." #field " must be at " #off)
#define CPRS_ASSERT_SIZE(type, size) \
    _Static_assert(sizeof(type) == (size), #type " must be " #size " bytes")

CPRS_ASSERT_SIZE(CprsLe16, 2);
CPRS_ASSERT_SIZE(CprsLe32, 4);
CPRS_ASSERT_SIZE(CprsLe64, 8);

CPRS_ASSERT_SIZE(CprsWireHeader, CPRS_HEADER_V1_SIZE);
CPRS_ASSERT_AT(CprsWireHeader, magic, 0);
CPRS_ASSERT_AT(CprsWireHeader, version_major, 8);
CPRS_ASSERT_AT(CprsWireHeader, version_minor, 10);
CPRS_ASSERT_AT(CprsWireHeader, header_size, 12);
CPRS_ASSERT_AT(CprsWireHeader, incompat_features, 16);
CPRS_ASSERT_AT(CprsWireHeader, compat_features, 24);
CPRS_ASSERT_AT(CprsWireHeader, arena_size, 32);
CPRS_ASSERT_AT(CprsWireHeader, dir_offset, 40);
CPRS_ASSERT_AT(CprsWireHeader, dir_count, 48);
CPRS_ASSERT_AT(CprsWireHeader, dir_entry_size, 52);
CPRS_ASSERT_AT(CprsWireHeader, generation, 56);
CPRS_ASSERT_AT(CprsWireHeader, created_ns, 64);
CPRS_ASSERT_AT(CprsWireHeader, mode, 72);
CPRS_ASSERT_AT(CprsWireHeader, writer_pid, 76);
CPRS_ASSERT_AT(CprsWireHeader, dir_crc32c, 80);
CPRS_ASSERT_AT(CprsWireHeader, header_crc32c, 84);
CPRS_ASSERT_AT(CprsWireHeader, build_id_size, 88);
CPRS_ASSERT_AT(CprsWireHeader, reserved0, 92);
CPRS_ASSERT_AT(CprsWireHeader, build_id, 96);
CPRS_ASSERT_AT(CprsWireHeader, producer, 128);

CPRS_ASSERT_SIZE(CprsWireSection, CPRS_SECTION_V1_SIZE);
CPRS_ASSERT_AT(CprsWireSection, type, 0);
CPRS_ASSERT_AT(CprsWireSection, flags, 4);
CPRS_ASSERT_AT(CprsWireSection, offset, 8);
CPRS_ASSERT_AT(CprsWireSection, stored_size, 16);
CPRS_ASSERT_AT(CprsWireSection, raw_size, 24);
CPRS_ASSERT_AT(CprsWireSection, record_count, 32);
CPRS_ASSERT_AT(CprsWireSection, record_size, 36);
CPRS_ASSERT_AT(CprsWireSection, crc32c, 40);
CPRS_ASSERT_AT(CprsWireSection, link, 44);

CPRS_ASSERT_SIZE(CprsWireStr, 8);
CPRS_ASSERT_AT(CprsWireStr, off, 0);
CPRS_ASSERT_AT(CprsWireStr, len, 4);

CPRS_ASSERT_SIZE(CprsWireFd, CPRS_FD_V1_SIZE);
CPRS_ASSERT_AT(CprsWireFd, name, 0);
CPRS_ASSERT_AT(CprsWireFd, id, 8);
CPRS_ASSERT_AT(CprsWireFd, slot, 12);
CPRS_ASSERT_AT(CprsWireFd, fd, 16);
CPRS_ASSERT_AT(CprsWireFd, kind, 20);
CPRS_ASSERT_AT(CprsWireFd, reserved0, 22);
CPRS_ASSERT_AT(CprsWireFd, flags, 24);
CPRS_ASSERT_AT(CprsWireFd, seals, 28);
CPRS_ASSERT_AT(CprsWireFd, dev, 32);
CPRS_ASSERT_AT(CprsWireFd, ino, 40);
CPRS_ASSERT_AT(CprsWireFd, st_mode, 48);
CPRS_ASSERT_AT(CprsWireFd, reserved1, 52);
CPRS_ASSERT_AT(CprsWireFd, size, 56);

CPRS_ASSERT_SIZE(CprsWireRamBlock, CPRS_RAMBLOCK_V1_SIZE);
CPRS_ASSERT_AT(CprsWireRamBlock, idstr, 0);
CPRS_ASSERT_AT(CprsWireRamBlock, fd_index, 8);
CPRS_ASSERT_AT(CprsWireRamBlock, flags, 12);
CPRS_ASSERT_AT(CprsWireRamBlock, fd_offset, 16);
CPRS_ASSERT_AT(CprsWireRamBlock, used_length, 24);
CPRS_ASSERT_AT(CprsWireRamBlock, max_length, 32);
CPRS_ASSERT_AT(CprsWireRamBlock, page_size, 40);
CPRS_ASSERT_AT(CprsWireRamBlock, align, 48);
CPRS_ASSERT_AT(CprsWireRamBlock, range_first, 56);
CPRS_ASSERT_AT(CprsWireRamBlock, range_count, 60);

CPRS_ASSERT_SIZE(CprsWireGpaRange, CPRS_GPA_RANGE_V1_SIZE);
CPRS_ASSERT_AT(CprsWireGpaRange, gpa, 0);
CPRS_ASSERT_AT(CprsWireGpaRange, size, 8);
CPRS_ASSERT_AT(CprsWireGpaRange, block_offset, 16);

CPRS_ASSERT_SIZE(CprsWireVfioDevice, CPRS_VFIO_DEVICE_V1_SIZE);
CPRS_ASSERT_AT(CprsWireVfioDevice, name, 0);
CPRS_ASSERT_AT(CprsWireVfioDevice, devid, 8);
CPRS_ASSERT_AT(CprsWireVfioDevice, ioas_id, 12);
CPRS_ASSERT_AT(CprsWireVfioDevice, hwpt_id, 16);
CPRS_ASSERT_AT(CprsWireVfioDevice, flags, 20);

CPRS_ASSERT_SIZE(CprsWireDevState, CPRS_DEVSTATE_V1_SIZE);
CPRS_ASSERT_AT(CprsWireDevState, name, 0);
CPRS_ASSERT_AT(CprsWireDevState, instance_id, 8);
CPRS_ASSERT_AT(CprsWireDevState, version_id, 12);
CPRS_ASSERT_AT(CprsWireDevState, flags, 16);
CPRS_ASSERT_AT(CprsWireDevState, reserved0, 20);
CPRS_ASSERT_AT(CprsWireDevState, data_off, 24);
CPRS_ASSERT_AT(CprsWireDevState, stored_size, 32);
CPRS_ASSERT_AT(CprsWireDevState, raw_size, 40);

CPRS_ASSERT_SIZE(CprsWireIndexSlot, CPRS_INDEX_SLOT_V1_SIZE);
CPRS_ASSERT_AT(CprsWireIndexSlot, record, 0);
CPRS_ASSERT_AT(CprsWireIndexSlot, hash, 4);

/* Every record size is a multiple of the record alignment (spec 2.2). */
_Static_assert(CPRS_HEADER_V1_SIZE % CPRS_ALIGN == 0, "header alignment");
_Static_assert(CPRS_SECTION_V1_SIZE % CPRS_ALIGN == 0, "dir alignment");
_Static_assert(CPRS_FD_V1_SIZE % CPRS_ALIGN == 0, "fd alignment");
_Static_assert(CPRS_RAMBLOCK_V1_SIZE % CPRS_ALIGN == 0, "ram alignment");
_Static_assert(CPRS_GPA_RANGE_V1_SIZE % CPRS_ALIGN == 0, "gpa alignment");
_Static_assert(CPRS_VFIO_DEVICE_V1_SIZE % CPRS_ALIGN == 0, "vfio alignment");
_Static_assert(CPRS_DEVSTATE_V1_SIZE % CPRS_ALIGN == 0, "devstate align");
_Static_assert(CPRS_INDEX_SLOT_V1_SIZE % CPRS_ALIGN == 0, "index align");

/* ==== Fail-safe live update (spec/fail-safe.rst), added in 0.2 ========= */

/*
 * These definitions belong to spec/fail-safe.rst, which the arena spec
 * refers to for section type 9.  They are appended here, after the
 * layout proofs of format 1.0, and carry their own proofs below.
 */

/* ---- Capability note (fail-safe F3) ----------------------------------- */

/*
 * Every binary that links libcprstate's load path carries one allocated
 * ELF note (SHT_NOTE, in a PT_NOTE segment) saying what it reads: owner
 * name "libcprstate", type CPRS_NOTE_TYPE_CAPS, descriptor
 * CprsWireCapsNote.  The 12 name bytes put the descriptor 24 bytes into
 * the note: 8-aligned, like the note itself.
 */
#define CPRS_NOTE_NAME             "libcprstate"
#define CPRS_NOTE_NAME_SIZE        12u         /* with its NUL */
#define CPRS_NOTE_TYPE_CAPS        1u

/* Note version of this definition (F3.2). */
#define CPRS_CAPS_VERSION_MAJOR    1
#define CPRS_CAPS_VERSION_MINOR    0

/* Bit of a legacy subsection form (CPRS_LEGACY_VFIO_FULL = 1, _STUB = 2,
 * _NONE = 3 in cprstate.h) in CprsWireCapsNote.legacy_forms. */
#define CPRS_CAPS_FORM_BIT(form)   (UINT32_C(1) << (form))
#define CPRS_CAPS_FORMS_KNOWN      UINT32_C(0xe)  /* bits 1, 2, 3 */
/* Bit of a CPR mode (CPRS_MODE_*) in CprsWireCapsNote.modes. */
#define CPRS_CAPS_MODE_BIT(mode)   (UINT32_C(1) << (mode))
#define CPRS_CAPS_MODES_KNOWN      UINT32_C(0x6)  /* bits 1, 2 */

/* Honours an armed rollback and reads ROLLBACK sections (F3.4). */
#define CPRS_CAPS_F_ROLLBACK       UINT32_C(0x1)
/* Loads a dual stream, checking that its two parts agree (F4). */
#define CPRS_CAPS_F_DUAL           UINT32_C(0x2)
#define CPRS_CAPS_F_KNOWN          (CPRS_CAPS_F_ROLLBACK | CPRS_CAPS_F_DUAL)

#define CPRS_CAPS_PRODUCER_MAX     24u

/* Capability note descriptor (F3.3).  v1.0 size 64. */
typedef struct CprsWireCapsNote {
    CprsLe16 version_major;         /* = 1; newer: not understood (F3.2) */
    CprsLe16 version_minor;         /* any */
    CprsLe32 desc_size;             /* bytes, >= 64, = n_descsz (F3.2) */
    CprsLe32 lib_version;           /* CPRS_VERSION_NUMBER of the library */
    CprsLe16 arena_major;           /* newest arena major it reads (F3.3) */
    CprsLe16 arena_minor;           /* newest minor of that major */
    CprsLe64 arena_incompat;        /* incompat features implemented */
    CprsLe32 modes;                 /* CPRS_CAPS_MODE_BIT() of each mode */
    CprsLe32 legacy_forms;          /* CPRS_CAPS_FORM_BIT() it decodes */
    CprsLe32 flags;                 /* CPRS_CAPS_F_* */
    CprsLe32 reserved0;             /* zero */
    char producer[CPRS_CAPS_PRODUCER_MAX];  /* NUL-terminated, 0-padded */
} CprsWireCapsNote;

#define CPRS_CAPS_NOTE_V1_SIZE 64u

/* ---- Dual stream (fail-safe F4) --------------------------------------- */

/*
 * A QCPR stream (full vfio form), zero bytes up to the next multiple of
 * 8, a complete arena, then this trailer, which ends the memfd.  A stock
 * QEMU reads the QCPR stream and stops before the padding; libcprstate
 * finds the arena through the trailer.
 */
#define CPRS_DUAL_MAGIC            "\x89" "CPRD\r\n\x1a"

#define CPRS_DUAL_VERSION_MAJOR    1
#define CPRS_DUAL_VERSION_MINOR    0

/* Dual stream trailer (F4.2).  v1.0 size 48. */
typedef struct CprsWireDualTrailer {
    uint8_t magic[CPRS_MAGIC_SIZE]; /* CPRS_DUAL_MAGIC */
    CprsLe16 version_major;         /* = 1 */
    CprsLe16 version_minor;         /* any */
    CprsLe32 trailer_size;          /* bytes, = 48 in v1.0 */
    CprsLe64 legacy_size;           /* bytes of the QCPR stream at 0 */
    CprsLe64 arena_offset;          /* = legacy_size rounded up to 8 */
    CprsLe64 arena_size;            /* = the arena header's arena_size */
    CprsLe32 flags;                 /* zero in v1.0 */
    CprsLe32 crc32c;                /* CRC32C of the trailer, this as 0 */
} CprsWireDualTrailer;

#define CPRS_DUAL_TRAILER_V1_SIZE 48u

/* ---- Rollback section (fail-safe F5) ---------------------------------- */

/*
 * Section type 9, ROLLBACK: registered in the arena's type table but not
 * part of the CPRS_SECTION_* enum of format 1.0, so a core reader treats
 * it as an unknown, optional section (spec 4.9) and the hand-over layer
 * validates it.  Never CPRS_SECTION_F_REQUIRED, never compressed.
 */
#define CPRS_SECTION_ROLLBACK      9u

#define CPRS_ROLLBACK_VERSION_MAJOR 1
#define CPRS_ROLLBACK_VERSION_MINOR 0

/* Armed: a failed load may hand the state back (F5.3). */
#define CPRS_ROLLBACK_F_ARMED       UINT32_C(0x1)
/* This state was handed back by a rollback (F5.3). */
#define CPRS_ROLLBACK_F_ROLLED_BACK UINT32_C(0x2)
/* The failure fields are valid (F5.4). */
#define CPRS_ROLLBACK_F_FAILURE     UINT32_C(0x4)
#define CPRS_ROLLBACK_F_KNOWN       UINT32_C(0x7)

/* Where the new image failed (F5.4). */
enum {
    CPRS_FAILURE_NONE = 0,
    CPRS_FAILURE_STATE_LOAD = 1,    /* the CPR state did not load */
    CPRS_FAILURE_INCOMING = 2,      /* the main migration stream failed */
    CPRS_FAILURE_DEVICE = 3,        /* device creation or device state */
    CPRS_FAILURE_OTHER = 4,         /* anything else before the VM runs */
    CPRS_FAILURE__MAX,
};

/* Bytes of the fixed text fields, with their NUL. */
#define CPRS_ROLLBACK_TEXT_MAX     256u
/* argv: at most this many strings and bytes (F5.5). */
#define CPRS_ROLLBACK_MAX_ARGC     65536u
#define CPRS_ROLLBACK_MAX_ARGV     (UINT32_C(1) << 20)
/* The previous executable's path, with its NUL. */
#define CPRS_ROLLBACK_MAX_PATH     4096u

/*
 * Rollback record, the fixed start of a ROLLBACK section (F5.2).  v1.0
 * size 640; then exe_path (exe_path_size bytes, NUL included, zero
 * padded to 8), then argv (argc NUL-terminated strings, argv_size bytes,
 * zero padded to 8).
 */
typedef struct CprsWireRollback {
    CprsLe16 version_major;         /* = 1 (F5.2) */
    CprsLe16 version_minor;         /* any */
    CprsLe32 header_size;           /* bytes, >= 640, 8-aligned */
    CprsLe32 flags;                 /* CPRS_ROLLBACK_F_* (F5.3) */
    CprsLe32 argc;                  /* strings in argv, >= 1 (F5.5) */
    CprsLe64 generation;            /* = the arena header's (F5.6) */
    CprsLe64 armed_ns;              /* CLOCK_REALTIME ns at arming */
    CprsLe32 pid;                   /* the process that armed it */
    CprsLe32 exe_fd;                /* int32, the previous executable */
    CprsLe64 exe_dev;               /* its st_dev, st_ino, st_size */
    CprsLe64 exe_ino;
    CprsLe64 exe_size;              /* bytes */
    CprsLe32 exe_mode;              /* its st_mode */
    CprsLe32 argv_size;             /* bytes of argv, NULs included */
    CprsLe64 state_dev;             /* the hop's state memfd (F5.6) */
    CprsLe64 state_ino;
    CprsLe32 failure_stage;         /* CPRS_FAILURE_* (F5.4) */
    CprsLe32 failure_errno;         /* positive errno, 0 unknown */
    CprsLe64 failed_ns;             /* CLOCK_REALTIME ns of the failure */
    CprsLe64 failed_dev;            /* the image that failed */
    CprsLe64 failed_ino;
    CprsLe32 exe_path_size;         /* bytes of exe_path, NUL included */
    CprsLe32 reserved0;             /* zero */
    char failure_message[CPRS_ROLLBACK_TEXT_MAX];   /* printable ASCII */
    char failed_exe[CPRS_ROLLBACK_TEXT_MAX];        /* printable ASCII */
} CprsWireRollback;

#define CPRS_ROLLBACK_V1_SIZE 640u

/* ---- Layout proofs of the fail-safe structures ------------------------ */

CPRS_ASSERT_SIZE(CprsWireCapsNote, CPRS_CAPS_NOTE_V1_SIZE);
CPRS_ASSERT_AT(CprsWireCapsNote, version_major, 0);
CPRS_ASSERT_AT(CprsWireCapsNote, version_minor, 2);
CPRS_ASSERT_AT(CprsWireCapsNote, desc_size, 4);
CPRS_ASSERT_AT(CprsWireCapsNote, lib_version, 8);
CPRS_ASSERT_AT(CprsWireCapsNote, arena_major, 12);
CPRS_ASSERT_AT(CprsWireCapsNote, arena_minor, 14);
CPRS_ASSERT_AT(CprsWireCapsNote, arena_incompat, 16);
CPRS_ASSERT_AT(CprsWireCapsNote, modes, 24);
CPRS_ASSERT_AT(CprsWireCapsNote, legacy_forms, 28);
CPRS_ASSERT_AT(CprsWireCapsNote, flags, 32);
CPRS_ASSERT_AT(CprsWireCapsNote, reserved0, 36);
CPRS_ASSERT_AT(CprsWireCapsNote, producer, 40);

CPRS_ASSERT_SIZE(CprsWireDualTrailer, CPRS_DUAL_TRAILER_V1_SIZE);
CPRS_ASSERT_AT(CprsWireDualTrailer, magic, 0);
CPRS_ASSERT_AT(CprsWireDualTrailer, version_major, 8);
CPRS_ASSERT_AT(CprsWireDualTrailer, version_minor, 10);
CPRS_ASSERT_AT(CprsWireDualTrailer, trailer_size, 12);
CPRS_ASSERT_AT(CprsWireDualTrailer, legacy_size, 16);
CPRS_ASSERT_AT(CprsWireDualTrailer, arena_offset, 24);
CPRS_ASSERT_AT(CprsWireDualTrailer, arena_size, 32);
CPRS_ASSERT_AT(CprsWireDualTrailer, flags, 40);
CPRS_ASSERT_AT(CprsWireDualTrailer, crc32c, 44);

CPRS_ASSERT_SIZE(CprsWireRollback, CPRS_ROLLBACK_V1_SIZE);
CPRS_ASSERT_AT(CprsWireRollback, version_major, 0);
CPRS_ASSERT_AT(CprsWireRollback, version_minor, 2);
CPRS_ASSERT_AT(CprsWireRollback, header_size, 4);
CPRS_ASSERT_AT(CprsWireRollback, flags, 8);
CPRS_ASSERT_AT(CprsWireRollback, argc, 12);
CPRS_ASSERT_AT(CprsWireRollback, generation, 16);
CPRS_ASSERT_AT(CprsWireRollback, armed_ns, 24);
CPRS_ASSERT_AT(CprsWireRollback, pid, 32);
CPRS_ASSERT_AT(CprsWireRollback, exe_fd, 36);
CPRS_ASSERT_AT(CprsWireRollback, exe_dev, 40);
CPRS_ASSERT_AT(CprsWireRollback, exe_ino, 48);
CPRS_ASSERT_AT(CprsWireRollback, exe_size, 56);
CPRS_ASSERT_AT(CprsWireRollback, exe_mode, 64);
CPRS_ASSERT_AT(CprsWireRollback, argv_size, 68);
CPRS_ASSERT_AT(CprsWireRollback, state_dev, 72);
CPRS_ASSERT_AT(CprsWireRollback, state_ino, 80);
CPRS_ASSERT_AT(CprsWireRollback, failure_stage, 88);
CPRS_ASSERT_AT(CprsWireRollback, failure_errno, 92);
CPRS_ASSERT_AT(CprsWireRollback, failed_ns, 96);
CPRS_ASSERT_AT(CprsWireRollback, failed_dev, 104);
CPRS_ASSERT_AT(CprsWireRollback, failed_ino, 112);
CPRS_ASSERT_AT(CprsWireRollback, exe_path_size, 120);
CPRS_ASSERT_AT(CprsWireRollback, reserved0, 124);
CPRS_ASSERT_AT(CprsWireRollback, failure_message, 128);
CPRS_ASSERT_AT(CprsWireRollback, failed_exe, 384);

_Static_assert(CPRS_CAPS_NOTE_V1_SIZE % CPRS_ALIGN == 0, "caps alignment");
_Static_assert(CPRS_DUAL_TRAILER_V1_SIZE % CPRS_ALIGN == 0,
               "dual trailer alignment");
_Static_assert(CPRS_ROLLBACK_V1_SIZE % CPRS_ALIGN == 0,
               "rollback alignment");
_Static_assert(CPRS_SECTION_ROLLBACK >= CPRS_SECTION__MAX,
               "ROLLBACK is an extension type, unknown to the core reader");

#endif /* CPRS_FORMAT_H */
