/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprstate.h - libcprstate public API.
 *
 * libcprstate reads, verifies and writes the CPR State Arena (the state a
 * QEMU process carries across a cpr-exec or cpr-transfer live update) and
 * QEMU's legacy "QCPR" stream.  The wire format lives in cprs-format.h;
 * spec/cpr-state-arena.rst is normative.
 *
 * Conventions (see STYLE.md in the project):
 *  - Functions return 0 (or a count) on success and a negative errno on
 *    failure: -EINVAL caller misuse, -EBADMSG malformed input,
 *    -EPROTONOSUPPORT unsupported version or feature, -E2BIG a limit was
 *    exceeded, -ENOMEM, -ENOENT lookup miss; syscall errors pass through.
 *  - Output parameters are named ret_* and written only on success.
 *  - Opts, info and diag structs start with a size_t sz; initialise them
 *    with CPRS_OPTS().  Larger-than-known structs must have a zero tail.
 *  - Destructors accept NULL.  A handle is used by one thread at a time.
 *  - The library never prints, never aborts on input and keeps no mutable
 *    global state.
 */
#ifndef CPRSTATE_H
#define CPRSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cprs-format.h"

#ifdef __cplusplus
/* CPRS_OPTS() in C++: the struct value-initialised, then its size set. */
template <typename T>
static inline T cprs_opts_cxx_init(T opts)
{
    opts.sz = sizeof(T);
    return opts;
}

extern "C" {
#endif

#ifndef CPRS_API
#define CPRS_API __attribute__((visibility("default")))
#endif

/*
 * Experimental API (STYLE 6, as zstd's ZSTD_STATIC_LINKING_ONLY): declared
 * only when the includer defines CPRS_EXPERIMENTAL, never exported from
 * the shared library, so it exists only for static linking (QEMU's
 * subproject, the tests).  It may change or go away in any release.
 */
#define CPRS_EXPERIMENTAL_API __attribute__((visibility("hidden")))

/*
 * A function kept for compatibility: still exported, but the compiler
 * warns its callers.  CPRS_DEPRECATED_SINCE(0, 2, "use cprs_x()") marks
 * what version 0.2 replaced.  Define CPRS_NO_DEPRECATION_WARNINGS to
 * silence the warnings.
 */
#ifdef CPRS_NO_DEPRECATION_WARNINGS
#define CPRS_DEPRECATED_SINCE(major, minor, hint)
#else
#define CPRS_DEPRECATED_SINCE(major, minor, hint) \
    __attribute__((deprecated("since libcprstate " #major "." #minor \
                              ": " hint)))
#endif

/* ---- Versions ---------------------------------------------------------- */

/* Library version; the format version is CPRS_FORMAT_VERSION_*. */
#define CPRS_VERSION_MAJOR 0
#define CPRS_VERSION_MINOR 2
#define CPRS_VERSION_MICRO 0
#define CPRS_VERSION_NUMBER \
    (CPRS_VERSION_MAJOR * 10000 + CPRS_VERSION_MINOR * 100 + \
     CPRS_VERSION_MICRO)

/**
 * cprs_version: library version string of the running library.
 *
 * Returns: a static string such as "0.1.0".
 */
CPRS_API const char *cprs_version(void);

/**
 * cprs_version_number: library version of the running library.
 *
 * Returns: CPRS_VERSION_NUMBER of the library actually linked.
 */
CPRS_API unsigned cprs_version_number(void);

/*
 * Initialise an opts, info or diag struct: CPRS_OPTS(CprsDiag), or with
 * fields: CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_TRANSFER).  The
 * helper always receives a field list, empty or not, so that the plain
 * form is clean under -std=c11 -pedantic.  In C++, fields are C++20
 * designated initialisers (declaration order; g++ warns about the fields
 * not named under -Wmissing-field-initializers, where gcc's C does not);
 * the plain form is C++11 and warning-free.
 */
#define CPRS_OPTS(...) CPRS_OPTS_FIELDS(__VA_ARGS__, )
#ifdef __cplusplus
#define CPRS_OPTS_FIELDS(type, ...) \
    (cprs_opts_cxx_init<type>(type{ __VA_ARGS__ }))
#else
#define CPRS_OPTS_FIELDS(type, ...) \
    ((type){ .sz = sizeof(type), __VA_ARGS__ })
#endif

/* ---- Diagnostics ------------------------------------------------------- */

/*
 * Where and why an input was rejected.  Filled by every function that
 * takes one, on failure only.  @offset is a byte offset into the arena (or
 * legacy stream); for a record inside a zstd-compressed section it is the
 * section's offset plus the record's position in the decompressed bytes,
 * and may then exceed arena_size.  @section is a directory index or -1;
 * @record a record index or -1; @clause the spec clause ("6.2.1") or "";
 * @reason a static English phrase; @error the negative errno also
 * returned.
 */
typedef struct CprsDiag {
    size_t sz;
    uint64_t offset;
    int32_t section;
    int32_t error;
    int64_t record;
    const char *clause;
    const char *reason;
} CprsDiag;

/**
 * cprs_diag_format: render a diagnostic as one line of text.
 * @diag: a diagnostic filled by the library.
 * @buf: destination.
 * @size: bytes available at @buf; the result is always NUL-terminated when
 *        @size > 0.
 *
 * Produces "offset 0x2c (section 1, record 3): reason [spec 6.2.1]".
 *
 * Returns: the length the full text needs (like snprintf), or -EINVAL.
 */
CPRS_API int cprs_diag_format(const CprsDiag *diag, char *buf, size_t size);

/**
 * cprs_strerror: short English description of a libcprstate error code.
 * @error: a negative errno returned by the library.
 *
 * Returns: a static string, e.g. "malformed arena" for -EBADMSG.
 */
CPRS_API const char *cprs_strerror(int error);

/* ---- Names of enumerations -------------------------------------------- */

/**
 * cprs_section_type_name: name of a section type ("fds", "strtab", ...).
 * @type: CPRS_SECTION_*.
 *
 * Returns: a static string; NULL for an unknown type.
 */
CPRS_API const char *cprs_section_type_name(uint32_t type);

/**
 * cprs_fd_kind_name: name of an fd kind ("memfd", "vfio-device", ...).
 * @kind: CPRS_FD_KIND_*.
 *
 * Returns: a static string; NULL for an unknown kind.
 */
CPRS_API const char *cprs_fd_kind_name(uint32_t kind);

/**
 * cprs_mode_name: name of a CPR mode ("cpr-exec", "cpr-transfer").
 * @mode: CPRS_MODE_*.
 *
 * Returns: a static string; NULL for an unknown mode.
 */
CPRS_API const char *cprs_mode_name(uint32_t mode);

/* ---- Checksums --------------------------------------------------------- */

/**
 * cprs_crc32c: CRC-32C (Castagnoli), as used by every arena checksum.
 * @crc: previous value, 0 to start.
 * @buf: bytes to add.
 * @len: number of bytes.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table-driven
 * portable routine otherwise; both give identical results.
 * cprs_crc32c(0, "123456789", 9) == 0xe3069283.
 *
 * Returns: the updated CRC.
 */
CPRS_API uint32_t cprs_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- Record views (reader output, writer input) ----------------------- */

/* Arena header, decoded (spec 3). */
typedef struct CprsArenaInfo {
    size_t sz;
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t header_size;
    uint64_t incompat_features;
    uint64_t compat_features;
    uint64_t arena_size;
    uint64_t dir_offset;
    uint32_t section_count;
    uint32_t mode;                  /* CPRS_MODE_* */
    uint64_t generation;
    uint64_t created_ns;
    uint32_t writer_pid;
    uint32_t build_id_size;
    uint8_t build_id[CPRS_BUILD_ID_MAX];
    char producer[CPRS_PRODUCER_MAX];   /* NUL-terminated */
    uint32_t header_crc32c;
    uint32_t dir_crc32c;
} CprsArenaInfo;

/* Section directory entry, decoded (spec 4). */
typedef struct CprsSectionInfo {
    size_t sz;
    uint32_t type;                  /* CPRS_SECTION_* or unknown */
    uint32_t flags;                 /* CPRS_SECTION_F_* */
    uint64_t offset;
    uint64_t stored_size;
    uint64_t raw_size;
    uint32_t record_count;
    uint32_t record_size;
    uint32_t crc32c;
    uint32_t link;
    uint64_t entry_offset;          /* where the directory entry lies */
} CprsSectionInfo;

/*
 * fd record (spec 6.2).  Reader: @name points into the arena (valid until
 * the reader is closed) and is NUL-terminated.  Writer: @name is a C string
 * that is copied; @name_len and @slot are ignored (the writer computes
 * them).  @fd is -1 when the writer's fd number is not known.
 */
typedef struct CprsFdInfo {
    size_t sz;
    const char *name;
    uint32_t name_len;
    int32_t id;
    uint32_t slot;
    int32_t fd;
    uint32_t kind;                  /* CPRS_FD_KIND_* */
    uint32_t flags;                 /* CPRS_FD_F_* */
    uint32_t seals;                 /* F_SEAL_* bits */
    uint32_t st_mode;
    uint64_t dev;
    uint64_t ino;
    uint64_t size;
} CprsFdInfo;

/* Guest-physical range of a RAM block (spec 6.4). */
typedef struct CprsGpaRange {
    uint64_t gpa;
    uint64_t size;
    uint64_t block_offset;
} CprsGpaRange;

/*
 * RAM block map (spec 6.3).  Reader: @idstr points into the arena.  Writer:
 * @idstr is copied, @idstr_len and @range_count are ignored (ranges are
 * passed separately).
 */
typedef struct CprsRamBlockInfo {
    size_t sz;
    const char *idstr;
    uint32_t idstr_len;
    uint32_t fd_index;              /* fd record index or CPRS_NO_INDEX */
    uint32_t flags;                 /* CPRS_RAM_F_* */
    uint32_t range_count;
    uint64_t fd_offset;
    uint64_t used_length;
    uint64_t max_length;
    uint64_t page_size;
    uint64_t align;
} CprsRamBlockInfo;

/* vfio/iommufd device record, QEMU's CprVFIODevice (spec 6.5). */
typedef struct CprsVfioDeviceInfo {
    size_t sz;
    const char *name;
    uint32_t name_len;
    int32_t devid;
    uint32_t ioas_id;
    uint32_t hwpt_id;
} CprsVfioDeviceInfo;

/*
 * Named device-state payload (spec 6.6).  Writer: @flags may hold
 * CPRS_DEVSTATE_F_ZSTD to ask for compression; the stored flag is cleared
 * again when compression would not make the payload smaller.  They may
 * also hold CPRS_DEVSTATE_F_BORROW, a request that is never stored.
 */
typedef struct CprsDevStateInfo {
    size_t sz;
    const char *name;
    uint32_t name_len;
    uint32_t instance_id;
    uint32_t version_id;
    uint32_t flags;                 /* CPRS_DEVSTATE_F_* */
    uint64_t stored_size;
    uint64_t raw_size;
} CprsDevStateInfo;

/*
 * Borrow the payload instead of copying it (cprs_writer_add_devstate(),
 * cprs_state_save_devstate()): the caller's bytes are referenced as they
 * are and reach the output with the kernel's copy alone (a large payload
 * then costs what writing it costs, not a copy into fresh memory first).
 * The caller keeps them valid and unchanged for as long as each of those
 * functions says.  Not a wire flag: never stored, never reported by a
 * reader; bits 16 to 31 of these flags are reserved for such requests.
 * A payload compressed at add time (CPRS_DEVSTATE_F_ZSTD) is read during
 * the call only, borrowed or not.
 */
#define CPRS_DEVSTATE_F_BORROW UINT32_C(0x10000)

/* ---- Reader ------------------------------------------------------------ */

typedef struct CprsReader CprsReader;

/* Do not check a section's CRC when it is first used (cprdump on damage). */
#define CPRS_READER_F_NO_CRC   UINT32_C(0x1)
/* Read an fd into memory even when it could be mapped. */
#define CPRS_READER_F_NO_MMAP  UINT32_C(0x2)

/*
 * Reader options.  The limits may only be lowered (0: the format's limit,
 * spec 7).  @max_memory is the reader's memory budget (spec 7.1): the
 * most bytes it allocates beyond the arena's own bytes, whatever the
 * input.  It bounds separately (a) what the reader keeps for its
 * accessors: decompressed sections, payloads decompressed by
 * cprs_reader_devstate_data(), and the decoder while one runs; and (b)
 * the working set of one cprs_reader_verify() call (sections it shares
 * with (a) counted in both), so a reader never holds more than twice
 * @max_memory besides its input.  Every allocation is checked against it
 * before it is made; a need beyond it fails with -E2BIG, diag clause
 * "7.1".  Arenas without compressed sections need no budget to open or to
 * access, and at most 32 bytes per record to verify.  0 means
 * CPRS_READER_MEMORY_DEFAULT (1 GiB); any other value is used as given.
 * Spec 8.7 gives the time and memory of every reader function.
 */
typedef struct CprsReaderOpts {
    size_t sz;
    uint32_t flags;                 /* CPRS_READER_F_* */
    uint32_t max_records;           /* 0: CPRS_MAX_RECORDS; may only lower */
    uint64_t max_arena_size;        /* 0: CPRS_MAX_ARENA_SIZE */
    uint64_t max_payload_size;      /* 0: CPRS_MAX_PAYLOAD_SIZE */
    uint64_t max_memory;            /* 0: CPRS_READER_MEMORY_DEFAULT */
} CprsReaderOpts;

/* The memory budget a reader gets when its opts leave it 0 (spec 7.1). */
#define CPRS_READER_MEMORY_DEFAULT (UINT64_C(1) << 30)

/**
 * cprs_reader_open_buffer: open an arena held in memory.
 * @buf: arena bytes; borrowed, must outlive the reader and not change.
 *       Used in place when 8-byte aligned (zero-copy); copied otherwise.
 * @size: bytes at @buf; bytes past the header's arena_size are ignored.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_reader: the new reader, on success.
 *
 * Runs the cheap checks of spec 8.1 (header, header CRC, directory,
 * directory CRC, section placement) in time independent of the arena size.
 * Record contents are checked lazily by the accessors and fully by
 * cprs_reader_verify().  @buf is untrusted, but the caller vouches that
 * nobody changes it while the reader is open (spec 8.5).
 *
 * Resources: O(1) time; no memory besides the handle, except a copy of
 * arena_size bytes when @buf is not 8-byte aligned.
 *
 * Returns: 0; -EINVAL on misuse; -EBADMSG malformed; -EPROTONOSUPPORT
 * newer major version, unknown incompatible feature or unknown required
 * section; -E2BIG over a limit; -ENOMEM.
 */
CPRS_API int cprs_reader_open_buffer(const void *buf, size_t size,
                                     const CprsReaderOpts *opts,
                                     CprsDiag *diag, CprsReader **ret_reader);

/**
 * cprs_reader_open_fd: open an arena from a file descriptor.
 * @fd: any readable fd: a memfd, a regular file, a block device, a pipe,
 *      a socket.  Borrowed: not closed, and its offset is not moved when
 *      it is seekable.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_reader: the new reader, on success.
 *
 * Reads the header first (pread from offset 0, or read on a pipe), checks
 * it (spec 8.1 steps 1 to 8, CRC included), then takes exactly the
 * arena_size bytes it announces and never more: bytes after the arena
 * are not read, and a pipe is left positioned right after the arena.
 * The arena is mapped read-only (MAP_PRIVATE, zero-copy) only when
 * nobody can change it any more: a memfd sealed with F_SEAL_WRITE and
 * F_SEAL_SHRINK, or a file with the immutable attribute.  Anything else
 * is read into a private buffer before it is checked, so that another
 * process writing the file cannot change bytes after they were checked
 * (spec 8.5).  An arena that does not fit in size_t (a 32-bit host) is
 * refused with -E2BIG.
 *
 * Resources: O(1) time and memory for a sealed memfd; otherwise
 * O(arena_size) time and arena_size bytes (the input), never more than
 * the source holds.
 *
 * Returns: as cprs_reader_open_buffer(), plus syscall errors.
 */
CPRS_API int cprs_reader_open_fd(int fd, const CprsReaderOpts *opts,
                                 CprsDiag *diag, CprsReader **ret_reader);

/**
 * cprs_reader_open_path: open an arena file by path.
 * @path: file to open read-only.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_reader: the new reader, on success.
 *
 * Returns: as cprs_reader_open_fd().
 */
CPRS_API int cprs_reader_open_path(const char *path,
                                   const CprsReaderOpts *opts,
                                   CprsDiag *diag, CprsReader **ret_reader);

/**
 * cprs_reader_close: release a reader, its mapping and its buffers.
 * @reader: reader or NULL.
 */
CPRS_API void cprs_reader_close(CprsReader *reader);

/**
 * cprs_reader_verify: deep validation of the whole arena (spec 8.2).
 * @reader: an open reader.
 * @diag: filled on failure, or NULL.
 *
 * Checks every CRC, every record field, every string and cross reference,
 * index consistency, uniqueness of keys, payload framing (decompressing
 * zstd payloads), and that every byte not covered by a structure is zero.
 * On success, every accessor of @reader succeeds for every valid index,
 * barring memory exhaustion and the memory budget.
 *
 * Resources (spec 8.2): time O(a + r log r + z) for an arena of a bytes
 * with r records, z of them decompressed, whatever the input; memory
 * within max_memory (spec 7.1): compressed record sections are checked
 * through a small window as they decompress, compressed payloads too,
 * and only the sections that must be looked up at random (STRTAB, BLOB,
 * INDEX, RAMBLOCKS, GPA_RANGES) are held whole, plus about 25 bytes per
 * record.  The verdict does not depend on what the accessors did before.
 *
 * Returns: 0 valid; -EBADMSG; -E2BIG (a limit, or the memory budget);
 * -EPROTONOSUPPORT; -ENOMEM.
 */
CPRS_API int cprs_reader_verify(CprsReader *reader, CprsDiag *diag);

/**
 * cprs_reader_last_diag: diagnostic of the last failed accessor call.
 * @reader: an open reader.
 *
 * Returns: a pointer valid until the next call on @reader.
 */
CPRS_API const CprsDiag *cprs_reader_last_diag(const CprsReader *reader);

/**
 * cprs_reader_get_info: decoded header.
 * @reader: an open reader.
 * @info: filled up to min(@info->sz, sizeof(CprsArenaInfo)).
 *
 * Returns: 0 or -EINVAL.
 */
CPRS_API int cprs_reader_get_info(const CprsReader *reader,
                                  CprsArenaInfo *info);

/**
 * cprs_reader_bytes: the raw arena bytes (for hex dumps).
 * @reader: an open reader.
 * @ret_size: receives arena_size.
 *
 * Returns: pointer to the arena start, valid until the reader is closed.
 */
CPRS_API const void *cprs_reader_bytes(const CprsReader *reader,
                                       size_t *ret_size);

/**
 * cprs_reader_section_count: number of directory entries.
 * @reader: an open reader.
 *
 * Returns: the count (at most CPRS_MAX_SECTIONS).
 */
CPRS_API uint32_t cprs_reader_section_count(const CprsReader *reader);

/**
 * cprs_reader_section_get: decoded directory entry @index.
 * @reader: an open reader.
 * @index: directory index.
 * @info: filled on success.
 *
 * Returns: 0, or -EINVAL for a bad index.
 */
CPRS_API int cprs_reader_section_get(const CprsReader *reader,
                                     uint32_t index, CprsSectionInfo *info);

/**
 * cprs_reader_fd_count: number of fd records.
 * @reader: an open reader.
 *
 * Returns: the record count of the FDS section, 0 when absent.
 */
CPRS_API uint32_t cprs_reader_fd_count(const CprsReader *reader);

/**
 * cprs_reader_fd_get: fd record @index.
 * @reader: an open reader.
 * @index: record index, below cprs_reader_fd_count().
 * @info: filled on success; @info->name points into the arena.
 *
 * Zero-copy; validates the record (spec 6.2) and, on first use of the
 * section, its CRC (and decompresses it, within max_memory).  The
 * section's CRC and decompression run once per reader, failure or
 * success: a damaged section costs its CRC once, then O(1) per call
 * (spec 8.7).  The same holds for every record accessor below.
 *
 * Returns: 0; -EINVAL bad index; -EBADMSG; -E2BIG (a compressed section
 * over the memory budget, clause 7.1); -ENOMEM.
 */
CPRS_API int cprs_reader_fd_get(CprsReader *reader, uint32_t index,
                                CprsFdInfo *info);

/**
 * cprs_reader_fd_find: look up an fd record by (name, id).
 * @reader: an open reader.
 * @name: NUL-terminated name.
 * @id: QEMU's cpr id.
 * @ret_index: record index, on success.
 *
 * O(1) through the hash index (spec 6.8: at most 64 slots); a linear scan
 * if the arena has no index for this section.
 *
 * Returns: 0; -ENOENT not found; -EBADMSG; -E2BIG (7.1); -EINVAL.
 */
CPRS_API int cprs_reader_fd_find(CprsReader *reader, const char *name,
                                 int32_t id, uint32_t *ret_index);

/**
 * cprs_reader_ramblock_count: number of RAM block records.
 * @reader: an open reader.
 *
 * Returns: the count, 0 when absent.
 */
CPRS_API uint32_t cprs_reader_ramblock_count(const CprsReader *reader);

/**
 * cprs_reader_ramblock_get: RAM block record @index.
 * @reader: an open reader.
 * @index: record index.
 * @info: filled on success; @info->idstr points into the arena.
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG (7.1); -ENOMEM.
 */
CPRS_API int cprs_reader_ramblock_get(CprsReader *reader, uint32_t index,
                                      CprsRamBlockInfo *info);

/**
 * cprs_reader_ramblock_find: look up a RAM block by idstr.
 * @reader: an open reader.
 * @idstr: NUL-terminated RAMBlock idstr.
 * @ret_index: record index, on success.
 *
 * Returns: 0; -ENOENT; -EBADMSG; -EINVAL.
 */
CPRS_API int cprs_reader_ramblock_find(CprsReader *reader, const char *idstr,
                                       uint32_t *ret_index);

/**
 * cprs_reader_gpa_range_get: guest-physical range @k of RAM block @block.
 * @reader: an open reader.
 * @block: RAM block record index.
 * @k: range number, below the block's range_count.
 * @range: filled on success.
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG (7.1); -ENOMEM.
 */
CPRS_API int cprs_reader_gpa_range_get(CprsReader *reader, uint32_t block,
                                       uint32_t k, CprsGpaRange *range);

/**
 * cprs_reader_vfio_count: number of vfio device records.
 * @reader: an open reader.
 *
 * Returns: the count, 0 when absent.
 */
CPRS_API uint32_t cprs_reader_vfio_count(const CprsReader *reader);

/**
 * cprs_reader_vfio_get: vfio device record @index.
 * @reader: an open reader.
 * @index: record index.
 * @info: filled on success.
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG (7.1); -ENOMEM.
 */
CPRS_API int cprs_reader_vfio_get(CprsReader *reader, uint32_t index,
                                  CprsVfioDeviceInfo *info);

/**
 * cprs_reader_vfio_find: look up a vfio device record by name.
 * @reader: an open reader.
 * @name: NUL-terminated device name.
 * @ret_index: record index, on success.
 *
 * Returns: 0; -ENOENT; -EBADMSG; -EINVAL.
 */
CPRS_API int cprs_reader_vfio_find(CprsReader *reader, const char *name,
                                   uint32_t *ret_index);

/**
 * cprs_reader_devstate_count: number of device-state payloads.
 * @reader: an open reader.
 *
 * Returns: the count, 0 when absent.
 */
CPRS_API uint32_t cprs_reader_devstate_count(const CprsReader *reader);

/**
 * cprs_reader_devstate_get: device-state record @index.
 * @reader: an open reader.
 * @index: record index.
 * @info: filled on success.
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG (7.1); -ENOMEM.
 */
CPRS_API int cprs_reader_devstate_get(CprsReader *reader, uint32_t index,
                                      CprsDevStateInfo *info);

/**
 * cprs_reader_devstate_find: look up a payload by (name, instance_id).
 * @reader: an open reader.
 * @name: NUL-terminated name.
 * @instance_id: instance id.
 * @ret_index: record index, on success.
 *
 * Returns: 0; -ENOENT; -EBADMSG; -EINVAL.
 */
CPRS_API int cprs_reader_devstate_find(CprsReader *reader, const char *name,
                                       uint32_t instance_id,
                                       uint32_t *ret_index);

/**
 * cprs_reader_devstate_data: the uncompressed bytes of payload @index.
 * @reader: an open reader.
 * @index: record index.
 * @ret_data: pointer into the arena (uncompressed payload) or into a
 *            buffer the reader owns (zstd payload, decompressed once);
 *            valid until the reader is closed.
 * @ret_size: raw_size.
 *
 * A zstd payload must be exactly one frame of exactly stored_size bytes
 * that decompresses to exactly raw_size bytes (spec 5.3).  It is
 * decompressed at most once per reader: the bytes, or the failure, are
 * kept, and the bytes kept count against max_memory (spec 7.1).
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG over max_payload_size, or over
 * the memory budget (clause 7.1: cprs_reader_devstate_read() keeps
 * nothing and may still succeed); -ENOMEM; -EPROTONOSUPPORT when built
 * without zstd.
 */
CPRS_API int cprs_reader_devstate_data(CprsReader *reader, uint32_t index,
                                       const void **ret_data,
                                       size_t *ret_size);

/**
 * cprs_reader_devstate_read: copy or decompress payload @index into @buf.
 * @reader: an open reader.
 * @index: record index.
 * @buf: destination of at least raw_size bytes.
 * @size: bytes available at @buf.
 * @ret_size: bytes written (= raw_size), or NULL.
 *
 * Like cprs_reader_devstate_data() but keeps nothing in the reader: a
 * compressed payload is decompressed on every call (only the decoder is
 * charged to max_memory), or copied when _data() already holds it.
 *
 * Returns: 0; -EINVAL (@size too small); others as _data().
 */
CPRS_API int cprs_reader_devstate_read(CprsReader *reader, uint32_t index,
                                       void *buf, size_t size,
                                       size_t *ret_size);

/* ---- Writer ------------------------------------------------------------ */

typedef struct CprsWriter CprsWriter;

/* Leave created_ns, writer_pid and build-id zero unless given. */
#define CPRS_WRITER_F_REPRODUCIBLE UINT32_C(0x1)
/* Write no INDEX sections (readers then scan linearly). */
#define CPRS_WRITER_F_NO_INDEX     UINT32_C(0x2)

typedef struct CprsWriterOpts {
    size_t sz;
    uint32_t mode;                  /* CPRS_MODE_*; 0 means CPRS_MODE_EXEC */
    uint32_t flags;                 /* CPRS_WRITER_F_* */
    uint64_t generation;            /* the hop number of this arena */
    uint64_t created_ns;            /* 0: CLOCK_REALTIME at writer_new */
    uint32_t writer_pid;            /* 0: getpid() */
    uint32_t build_id_size;         /* bytes at build_id, <= 32 */
    const void *build_id;           /* NULL: this executable's (loaded notes) */
    const char *producer;           /* NULL: "libcprstate <version>" */
    int32_t zstd_level;             /* 0: 3 */
    uint32_t compress_sections;     /* bit (1u << type): zstd that section */
} CprsWriterOpts;

/**
 * cprs_writer_new: start building an arena.
 * @opts: options or NULL.
 * @ret_writer: the new writer, on success.
 *
 * The output depends only on the records added and on @opts: the same
 * input gives the same bytes.  Unset clock, pid and build-id default to
 * the running process unless CPRS_WRITER_F_REPRODUCIBLE is set.
 *
 * Returns: 0; -EINVAL bad opts (unknown mode or flag, producer too long,
 * build-id too long); -EPROTONOSUPPORT compression asked for but built
 * without zstd; -ENOMEM.
 */
CPRS_API int cprs_writer_new(const CprsWriterOpts *opts,
                             CprsWriter **ret_writer);

/**
 * cprs_writer_free: release a writer and everything it copied.
 * @writer: writer or NULL.
 */
CPRS_API void cprs_writer_free(CprsWriter *writer);

/**
 * cprs_writer_add_fd: append an fd record.
 * @writer: a writer.
 * @fd: the record; name and fields are copied (see CprsFdInfo).
 * @ret_index: record index (= slot), or NULL.
 *
 * Returns: 0; -EINVAL bad name (empty, longer than CPRS_MAX_NAME_LEN,
 * outside printable ASCII), fd below -1 (or -1 in a cpr-exec arena),
 * unknown kind or flag, seals or identity without their flag; -EEXIST
 * (name, id) already added; -E2BIG too many records; -ENOMEM.
 */
CPRS_API int cprs_writer_add_fd(CprsWriter *writer, const CprsFdInfo *fd,
                                uint32_t *ret_index);

/**
 * cprs_writer_add_ramblock: append a RAM block map with its GPA ranges.
 * @writer: a writer.
 * @block: the record (idstr copied).
 * @ranges: @n_ranges guest-physical ranges, copied; NULL if none.
 * @n_ranges: number of ranges.
 * @ret_index: record index, or NULL.
 *
 * Returns: 0; -EINVAL (bad idstr; fd_index not an added fd record;
 * used > max; page_size not a power of two; align neither 0 nor a power
 * of two; a range empty, wrapping or outside max_length; unknown flag);
 * -EEXIST idstr already added; -E2BIG; -ENOMEM.
 */
CPRS_API int cprs_writer_add_ramblock(CprsWriter *writer,
                                      const CprsRamBlockInfo *block,
                                      const CprsGpaRange *ranges,
                                      uint32_t n_ranges, uint32_t *ret_index);

/**
 * cprs_writer_add_vfio: append a vfio/iommufd device record.
 * @writer: a writer.
 * @dev: the record (name copied).
 * @ret_index: record index, or NULL.
 *
 * Returns: 0; -EINVAL bad name; -EEXIST name already added; -E2BIG;
 * -ENOMEM.
 */
CPRS_API int cprs_writer_add_vfio(CprsWriter *writer,
                                  const CprsVfioDeviceInfo *dev,
                                  uint32_t *ret_index);

/**
 * cprs_writer_add_devstate: append a named device-state payload.
 * @writer: a writer.
 * @ds: name, instance_id, version_id and flags (CPRS_DEVSTATE_F_ZSTD to
 *      compress); sizes are ignored.
 * @data: @size payload bytes, copied (compressed now when asked).
 * @size: bytes, at most CPRS_MAX_PAYLOAD_SIZE.
 * @ret_index: record index, or NULL.
 *
 * Returns: 0; -EINVAL; -EEXIST (name, instance_id) already added; -E2BIG;
 * -EPROTONOSUPPORT zstd asked for but not built in; -ENOMEM.
 */
CPRS_API int cprs_writer_add_devstate(CprsWriter *writer,
                                      const CprsDevStateInfo *ds,
                                      const void *data, size_t size,
                                      uint32_t *ret_index);

/**
 * cprs_writer_finish_buffer: lay out the arena into a new buffer.
 * @writer: a writer; still usable afterwards (the same bytes again).
 * @ret_buf: malloc()ed arena, 8-byte aligned; release with free().
 * @ret_size: arena_size.
 *
 * Returns: 0; -E2BIG arena over CPRS_MAX_ARENA_SIZE; -ENOMEM.
 */
CPRS_API int cprs_writer_finish_buffer(CprsWriter *writer, void **ret_buf,
                                       size_t *ret_size);

/**
 * cprs_writer_finish_fd: write the arena to @fd at offset 0.
 * @writer: a writer; still usable afterwards.
 * @fd: a writable, seekable fd; truncated to arena_size; borrowed.
 *
 * Returns: 0; -E2BIG; -ENOMEM; syscall errors.
 */
CPRS_API int cprs_writer_finish_fd(CprsWriter *writer, int fd);

/* Add F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL. */
#define CPRS_MEMFD_F_SEAL UINT32_C(0x1)

/**
 * cprs_writer_finish_memfd: write the arena into a new memfd.
 * @writer: a writer; still usable afterwards.
 * @name: memfd name (e.g. "QEMU_CPR_EXEC_STATE").
 * @flags: CPRS_MEMFD_F_*.
 * @ret_fd: the memfd (close-on-exec, sealing allowed), on success; the
 *          caller owns it.
 *
 * Returns: 0; -EINVAL; -E2BIG; -ENOMEM; syscall errors.  No fd is left
 * open on failure.
 */
CPRS_API int cprs_writer_finish_memfd(CprsWriter *writer, const char *name,
                                      uint32_t flags, int *ret_fd);

/* ---- Live-update lifecycle: cpr-exec (spec 11) ------------------------ */

/* Name of the state memfd, and of the variable that holds its number. */
#define CPRS_EXEC_STATE_NAME "QEMU_CPR_EXEC_STATE"

/**
 * cprs_exec_persist: make a state memfd survive exec(), as QEMU does.
 * @state_fd: the memfd holding the state (normally close-on-exec);
 *            borrowed, not closed.
 * @ret_fd: a duplicate of @state_fd without close-on-exec, on success; its
 *          number is now in the environment variable QEMU_CPR_EXEC_STATE.
 *
 * Not thread-safe: it changes the environment.
 *
 * Returns: 0; -EINVAL bad fd; -ENOMEM; syscall errors of dup/fcntl.
 * Nothing is left behind on failure.
 */
CPRS_API int cprs_exec_persist(int state_fd, int *ret_fd);

/**
 * cprs_exec_unpersist: undo cprs_exec_persist() after a failed exec().
 * @fd: the fd cprs_exec_persist() returned; closed.
 *
 * Unsets QEMU_CPR_EXEC_STATE if it still names @fd.
 *
 * Returns: 0, or -EINVAL for a negative @fd.
 */
CPRS_API int cprs_exec_unpersist(int fd);

/* Accept a state memfd that is not sealed (only legacy streams are). */
#define CPRS_EXEC_FIND_F_ALLOW_UNSEALED UINT32_C(0x1)

/**
 * cprs_exec_find: find the state a previous image left before exec().
 * @flags: CPRS_EXEC_FIND_F_*.
 * @diag: filled on failure with a reason (offset 0), or NULL.
 * @ret_fd: the state fd, on success; still named by the variable until
 *          cprs_exec_release().
 * @ret_format: CPRS_DETECT_ARENA or CPRS_DETECT_LEGACY, on success.
 *
 * QEMU_CPR_EXEC_STATE must be a plain decimal number (no sign, space or
 * other character; at most INT_MAX) naming an open fd that is a memfd
 * called QEMU_CPR_EXEC_STATE.  Its first bytes (read with pread, so the
 * inherited offset does not matter) tell an arena from a legacy stream.
 * An arena must be sealed against write, grow and shrink: anything else
 * could change under the reader.  A legacy stream, as a QEMU without
 * libcprstate writes it, is unsealed and accepted as such.
 *
 * Returns: 0; -ENOENT variable not set; -EINVAL malformed variable; -EBADF
 * no such open fd; -EBADMSG not a QEMU_CPR_EXEC_STATE memfd, or holding
 * neither format; -EPERM an unsealed arena.
 */
CPRS_API int cprs_exec_find(uint32_t flags, CprsDiag *diag, int *ret_fd,
                            int *ret_format);

/**
 * cprs_exec_release: done with the state found after exec().
 * @fd: the state fd; closed.  A negative value only unsets the variable.
 *
 * Unsets QEMU_CPR_EXEC_STATE, so that no later exec() inherits it.
 */
CPRS_API void cprs_exec_release(int fd);

/* ---- Live-update lifecycle: cpr-transfer (spec 11) -------------------- */

/* Shut the socket's write side down after the last byte, as QEMU does. */
#define CPRS_TRANSFER_F_SHUTDOWN UINT32_C(0x1)

/**
 * cprs_transfer_send: send an arena and its fds over a unix socket.
 * @sock: a connected unix stream socket; borrowed.
 * @arena: the arena bytes (as finished by a writer).
 * @size: bytes at @arena.
 * @fds: @nfds fds, in slot order (fd record order); borrowed.
 * @nfds: number of fds.
 * @flags: CPRS_TRANSFER_F_*.
 *
 * The header goes first without fds; then the fds follow by SCM_RIGHTS in
 * batches of at most 253 (the kernel's limit per message), each attached to
 * the next bytes of the arena.  MSG_NOSIGNAL: a closed peer gives -EPIPE.
 *
 * Returns: 0; -EINVAL (arena shorter than the header, or fewer bytes than
 * fd batches); syscall errors of sendmsg() and shutdown().
 */
CPRS_API int cprs_transfer_send(int sock, const void *arena, size_t size,
                                const int *fds, uint32_t nfds,
                                uint32_t flags);

/**
 * cprs_transfer_recv: receive an arena and its fds from a unix socket.
 * @sock: a connected unix stream socket; borrowed; blocking reads.
 * @opts: reader opts or NULL; max_arena_size caps what is accepted.
 * @diag: filled on failure, or NULL.
 * @ret_buf: the arena bytes (malloc()ed; free()), on success.
 * @ret_size: arena_size.
 * @ret_fds: malloc()ed array of the received fds (close-on-exec), in
 *           arrival order (= slot order), on success; the caller owns
 *           them.  NULL when none came.
 * @ret_nfds: number of fds.
 *
 * Reads exactly the arena_size the header announces, after checking the
 * magic, header_size, the header CRC and the size against the limit, all
 * before allocating; the buffer then grows with the bytes received (spec
 * 11.2, 11.5).  fds are received with MSG_CMSG_CLOEXEC; a truncated
 * control message (MSG_CTRUNC) fails; control messages of other kinds
 * are ignored (an fd one carries is closed).  Only the header is checked
 * here: open the bytes with a reader and compare the fd count with the
 * fd records.  Every received fd is closed on any failure.  Reads block;
 * SO_RCVTIMEO on @sock bounds each wait (-EAGAIN).
 *
 * Returns: 0; -EBADMSG (bad magic, header_size, header CRC or arena_size,
 * stream ends early, MSG_CTRUNC); -E2BIG over the size or fd limit;
 * -ENOMEM; syscall errors of recvmsg() (-EAGAIN: SO_RCVTIMEO reached).
 */
CPRS_API int cprs_transfer_recv(int sock, const CprsReaderOpts *opts,
                                CprsDiag *diag, void **ret_buf,
                                size_t *ret_size, int **ret_fds,
                                uint32_t *ret_nfds);

/* ---- QEMU-facing CPR state (spec 11) ---------------------------------- */

/*
 * CprsState is what QEMU's migration/cpr.c keeps in cpr_state: fds saved
 * by (name, id), vfio device records, RAM block maps and named device
 * payloads, with the semantics of cpr_save_fd(), cpr_find_fd(),
 * cpr_resave_fd(), cpr_delete_fd(), cpr_open_fd() and cpr_walk_fd(); and
 * the save and load entry points of both modes.  Lookups are O(1).  A
 * state never closes the fds it records; after a cpr-transfer load the
 * caller owns the received fds (cprs_state_close_fds() closes them).
 */
typedef struct CprsState CprsState;

/**
 * cprs_state_new: an empty state (generation 0).
 * @ret_state: the new state, on success.
 *
 * Returns: 0; -EINVAL; -ENOMEM.
 */
CPRS_API int cprs_state_new(CprsState **ret_state);

/**
 * cprs_state_free: release a state and its source (memfd, mapping).
 * @state: state or NULL.  Recorded fds stay open.
 */
CPRS_API void cprs_state_free(CprsState *state);

/**
 * cprs_state_release_source: let go of what a loaded state was read from.
 * @state: a state, or NULL.
 *
 * A loaded state keeps its source: the state memfd of a cpr-exec (open,
 * close-on-exec again, and mapped) or the arena bytes of a cpr-transfer,
 * because device-state payloads are read from there when they are looked
 * up.  Once the load is over (QEMU: when it closes its cpr channel) call
 * this: device-state payloads still in the source are copied into the
 * state, then the mapping is dropped, the buffer freed and the memfd
 * closed.  The records, their fds and the generation stay.  Releasing a
 * state that was not loaded, or twice, does nothing.
 *
 * All or nothing: on failure nothing is released.
 *
 * Returns: 0; -ENOMEM; -EBADMSG, -ENOMEM from inflating a payload.
 */
CPRS_API int cprs_state_release_source(CprsState *state);

/**
 * cprs_state_generation: hop number of a loaded state (0 if new).
 * @state: a state.
 *
 * Deprecated since 0.2: cprs_state_get_info() gives the generation with
 * the format and the rollback status.
 *
 * Returns: the generation; the next save writes this plus one.
 */
CPRS_API uint64_t cprs_state_generation(const CprsState *state)
    CPRS_DEPRECATED_SINCE(0, 2, "use cprs_state_get_info()");

/**
 * cprs_state_format: what a loaded state was read from.
 * @state: a state.
 *
 * Deprecated since 0.2: cprs_state_get_info() tells a dual stream apart
 * too (this function calls it an arena).
 *
 * Returns: CPRS_DETECT_ARENA (also for a dual stream), CPRS_DETECT_LEGACY,
 * or CPRS_DETECT_UNKNOWN for a state that was not loaded.
 */
CPRS_API int cprs_state_format(const CprsState *state)
    CPRS_DEPRECATED_SINCE(0, 2, "use cprs_state_get_info()");

/**
 * cprs_state_save_fd: record @fd under (@name, @id), like cpr_save_fd().
 * @state: a state.
 * @name: 1..CPRS_MAX_NAME_LEN printable ASCII bytes; copied.
 * @id: QEMU's cpr id.
 * @fd: an open fd (>= 0); borrowed.
 *
 * The newest record comes first in the saved state, as in QEMU.  The fd
 * is identified now (kind, device, inode, mode): a save looks again only
 * at regular files (memfds, files), whose size and seals may change, and
 * takes the identity of any other fd from here.  Replacing the open file
 * behind @fd therefore means saving the record again.
 *
 * Returns: 0; -EINVAL; -EEXIST (name, id) already saved (QEMU would keep
 * both and find the newest; the arena forbids duplicates); -E2BIG;
 * -ENOMEM.
 */
CPRS_API int cprs_state_save_fd(CprsState *state, const char *name,
                                int32_t id, int fd);

/**
 * cprs_state_find_fd: the fd saved under (@name, @id), like cpr_find_fd().
 * @state: a state.
 * @name: NUL-terminated name.
 * @id: QEMU's cpr id.
 *
 * Returns: the fd (>= 0); -ENOENT not saved; -EINVAL.
 */
CPRS_API int cprs_state_find_fd(const CprsState *state, const char *name,
                                int32_t id);

/**
 * cprs_state_resave_fd: like cpr_resave_fd(): save unless already saved.
 * @state: a state.
 * @name: name.
 * @id: id.
 * @fd: the fd.
 *
 * Returns: 0 (saved now, or already saved with this fd); -EEXIST saved
 * with another fd (QEMU asserts); errors of cprs_state_save_fd().
 */
CPRS_API int cprs_state_resave_fd(CprsState *state, const char *name,
                                  int32_t id, int fd);

/**
 * cprs_state_delete_fd: forget (@name, @id), like cpr_delete_fd().
 * @state: a state.
 * @name: name.
 * @id: id.
 *
 * The fd is not closed.
 *
 * Returns: 0; -ENOENT not saved; -EINVAL.
 */
CPRS_API int cprs_state_delete_fd(CprsState *state, const char *name,
                                  int32_t id);

/**
 * cprs_state_open_fd: like cpr_open_fd(): the saved fd, or open and save.
 * @state: a state.
 * @path: file to open when (@name, @id) is not saved.
 * @flags: open() flags; O_CLOEXEC is added.
 * @name: name.
 * @id: id.
 *
 * Returns: the fd (>= 0); -errno of open(); errors of save_fd (the fd is
 * closed again then).
 */
CPRS_API int cprs_state_open_fd(CprsState *state, const char *path,
                                int flags, const char *name, int32_t id);

/* Called for each fd record; a non-zero return stops the walk. */
typedef int (*CprsWalkFdFn)(void *opaque, const char *name, int32_t id,
                            int fd);

/**
 * cprs_state_walk_fds: call @fn for every fd record, newest first.
 * @state: a state.
 * @fn: the callback; it must not change @state.
 * @opaque: passed to @fn.
 *
 * Returns: 0, or the first non-zero value @fn returned.
 */
CPRS_API int cprs_state_walk_fds(const CprsState *state, CprsWalkFdFn fn,
                                 void *opaque);

/**
 * cprs_state_fd_count: number of fd records.
 * @state: a state.
 *
 * Returns: the count.
 */
CPRS_API uint32_t cprs_state_fd_count(const CprsState *state);

/**
 * cprs_state_save_vfio: record a vfio/iommufd device (CprVFIODevice).
 * @state: a state.
 * @dev: name (copied), devid, ioas_id, hwpt_id.
 *
 * Returns: 0; -EINVAL; -EEXIST name already saved; -E2BIG; -ENOMEM.
 */
CPRS_API int cprs_state_save_vfio(CprsState *state,
                                  const CprsVfioDeviceInfo *dev);

/**
 * cprs_state_find_vfio: a vfio device record by name.
 * @state: a state.
 * @name: device name.
 * @info: filled on success; @info->name is owned by @state.
 *
 * Returns: 0; -ENOENT; -EINVAL.
 */
CPRS_API int cprs_state_find_vfio(const CprsState *state, const char *name,
                                  CprsVfioDeviceInfo *info);

/**
 * cprs_state_delete_vfio: forget a vfio device record.
 * @state: a state.
 * @name: device name.
 *
 * Returns: 0; -ENOENT; -EINVAL.
 */
CPRS_API int cprs_state_delete_vfio(CprsState *state, const char *name);

/**
 * cprs_state_save_ramblock: record how a RAM block maps onto a saved fd.
 * @state: a state.
 * @block: idstr (copied), flags, fd_offset, lengths, page_size, align;
 *         fd_index is ignored.
 * @fd_name: name of the fd record backing the block, or NULL for none.
 * @fd_id: its id.
 * @ranges: @n_ranges guest-physical ranges (copied), or NULL.
 * @n_ranges: number of ranges.
 *
 * Returns: 0; -EINVAL (bad fields as cprs_writer_add_ramblock(), or no
 * fd record (@fd_name, @fd_id)); -EEXIST idstr already saved; -ENOMEM.
 */
CPRS_API int cprs_state_save_ramblock(CprsState *state,
                                      const CprsRamBlockInfo *block,
                                      const char *fd_name, int32_t fd_id,
                                      const CprsGpaRange *ranges,
                                      uint32_t n_ranges);

/**
 * cprs_state_find_ramblock: a RAM block map by idstr.
 * @state: a state.
 * @idstr: RAMBlock idstr.
 * @info: filled on success (fd_index is CPRS_NO_INDEX; the fd is in
 *        *@ret_fd).
 * @ret_fd: the backing fd, or -1 when the block has none.
 *
 * Returns: 0; -ENOENT; -EINVAL.
 */
CPRS_API int cprs_state_find_ramblock(const CprsState *state,
                                      const char *idstr,
                                      CprsRamBlockInfo *info, int *ret_fd);

/**
 * cprs_state_gpa_range: guest-physical range @k of RAM block @idstr.
 * @state: a state.
 * @idstr: RAMBlock idstr.
 * @k: below the block's range_count.
 * @range: filled on success.
 *
 * Returns: 0; -ENOENT; -EINVAL.
 */
CPRS_API int cprs_state_gpa_range(const CprsState *state, const char *idstr,
                                  uint32_t k, CprsGpaRange *range);

/**
 * cprs_state_clear_ramblocks: forget every RAM block map.
 * @state: a state, or NULL.
 *
 * RAM block maps describe the RAM blocks as they are when the state is
 * saved.  A process that records them afresh before each save (QEMU walks
 * its RAMBlocks) clears them first: maps loaded from the previous image,
 * or recorded by an earlier save that failed, would otherwise collide
 * (-EEXIST) or name fd records that have been deleted since.  fd records
 * are not touched.
 */
CPRS_API void cprs_state_clear_ramblocks(CprsState *state);

/**
 * cprs_state_save_devstate: record a named device-state payload.
 * @state: a state.
 * @ds: name (copied), instance_id, version_id, flags (CPRS_DEVSTATE_F_ZSTD
 *      asks for compression at save; CPRS_DEVSTATE_F_BORROW, see @data).
 * @data: @size bytes, copied; with CPRS_DEVSTATE_F_BORROW referenced
 *        instead, and written out by each save with the kernel's copy
 *        alone: the caller keeps them valid until the record is deleted
 *        or @state is freed, and unchanged while a save of @state runs.
 *        cprs_state_find_devstate() then returns this pointer.
 * @size: bytes, at most CPRS_MAX_PAYLOAD_SIZE.
 *
 * Returns: 0; -EINVAL; -EEXIST; -E2BIG; -ENOMEM.
 */
CPRS_API int cprs_state_save_devstate(CprsState *state,
                                      const CprsDevStateInfo *ds,
                                      const void *data, size_t size);

/**
 * cprs_state_find_devstate: a device-state payload by (name, instance).
 * @state: a state.
 * @name: name.
 * @instance_id: instance id.
 * @ret_data: the uncompressed bytes, owned by @state (for a loaded state,
 *            inside its source until cprs_state_free()).
 * @ret_size: their size.
 * @ret_version: version_id, or NULL.
 *
 * Returns: 0; -ENOENT; -EINVAL; -EBADMSG, -ENOMEM decompressing.
 */
CPRS_API int cprs_state_find_devstate(CprsState *state, const char *name,
                                      uint32_t instance_id,
                                      const void **ret_data,
                                      size_t *ret_size,
                                      uint32_t *ret_version);

/**
 * cprs_state_delete_devstate: forget a device-state payload.
 * @state: a state.
 * @name: name.
 * @instance_id: instance id.
 *
 * Returns: 0; -ENOENT; -EINVAL.
 */
CPRS_API int cprs_state_delete_devstate(CprsState *state, const char *name,
                                        uint32_t instance_id);

/**
 * cprs_state_preserve_fds: clear close-on-exec on every recorded fd.
 * @state: a state.
 *
 * QEMU does this just before exec(), not earlier, so that other fork and
 * exec calls do not leak the fds.
 *
 * One fd at a time, as QEMU does: F_GETFD, then F_SETFD where the flag
 * differs.  All or nothing: on failure every flag this call changed is
 * put back (spec 11.3).
 *
 * Returns: 0, or the first fcntl() error (-EBADF: a recorded fd is not
 * open); -ENOMEM; -EINVAL.
 */
CPRS_API int cprs_state_preserve_fds(const CprsState *state);

/**
 * cprs_state_unpreserve_fds: set close-on-exec on every recorded fd.
 * @state: a state.
 *
 * QEMU does this after a failed exec() and once the state is loaded.
 * All or nothing, as cprs_state_preserve_fds().
 *
 * Returns: 0, or the first fcntl() error; -ENOMEM; -EINVAL.
 */
CPRS_API int cprs_state_unpreserve_fds(const CprsState *state);

/**
 * cprs_state_check_fds: is every fd still the open file that was saved?
 * @state: a loaded state whose records carry identities.
 * @diag: filled for the first mismatch (record index, reason), or NULL.
 * @ret_mismatches: number of records that differ, or NULL.
 *
 * Compares fstat() of each recorded fd with the device and inode recorded
 * at save.  Records saved without identity are only checked to be open,
 * and so are anonymous inodes (eventfd, epoll, timerfd...: one inode for
 * all of them, whose device and inode tell none apart): all those with
 * one poll().
 *
 * Returns: 0 all match; -ESTALE at least one does not; -ENOMEM; -EINVAL.
 */
CPRS_API int cprs_state_check_fds(const CprsState *state, CprsDiag *diag,
                                  uint32_t *ret_mismatches);

/**
 * cprs_state_close_fds: close every recorded fd and forget the records.
 * @state: a state.
 */
CPRS_API void cprs_state_close_fds(CprsState *state);

/* Write QEMU's legacy "QCPR" stream, for a target without libcprstate. */
#define CPRS_SAVE_F_LEGACY      UINT32_C(0x1)
/* Do not record the identity (fstat, seals, kind) of each fd. */
#define CPRS_SAVE_F_NO_IDENTITY UINT32_C(0x2)
/* cpr-exec: write a dual stream (QCPR stream and arena; since 0.2). */
#define CPRS_SAVE_F_DUAL        UINT32_C(0x4)

typedef struct CprsPlan CprsPlan;

typedef struct CprsSaveOpts {
    size_t sz;
    uint32_t flags;             /* CPRS_SAVE_F_* */
    uint32_t vfio_form;         /* legacy: CPRS_LEGACY_VFIO_*, 0 = FULL */
    const char *producer;       /* NULL: "libcprstate <version>" */
    int32_t zstd_level;         /* 0: 3 */
    uint32_t compress_sections; /* as CprsWriterOpts */
    /*
     * Since 0.2: the plan of cprs_target_plan() for this hop, or NULL.
     * It decides the format, the vfio form and compression (flags
     * LEGACY and DUAL and vfio_form must then be 0), and the save
     * refuses a state that no longer fits it.
     */
    const CprsPlan *plan;
} CprsSaveOpts;

/**
 * cprs_state_save_exec: write the state for cpr-exec and persist it.
 * @state: a state; its generation + 1 is written.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_fd: the persisted state fd (see cprs_exec_persist()), on success.
 *
 * Builds the arena (or the legacy stream with CPRS_SAVE_F_LEGACY, the dual
 * stream of spec/fail-safe.rst F4 with CPRS_SAVE_F_DUAL, or what
 * @opts->plan decided) into a memfd named QEMU_CPR_EXEC_STATE, seals it
 * (QEMU's own reader does not expect seals but does not mind them
 * either), and persists it.  Then call cprs_state_preserve_fds() and
 * exec (cprs_target_exec()); if that fails, cprs_exec_unpersist() and
 * cprs_state_unpreserve_fds().
 *
 * Returns: 0; -EINVAL (bad opts; LEGACY with DUAL; a plan with a format
 * flag, or of the other mode); -EPROTONOSUPPORT the state no longer fits
 * its plan (fail-safe F6.4); -EEXIST, -E2BIG (limits, or a name the
 * legacy stream cannot carry); -ENOMEM; syscall errors.  Nothing is
 * persisted on failure.
 */
CPRS_API int cprs_state_save_exec(CprsState *state,
                                  const CprsSaveOpts *opts, CprsDiag *diag,
                                  int *ret_fd);

/**
 * cprs_state_save_transfer: send the state and its fds for cpr-transfer.
 * @state: a state.
 * @sock: the connected cpr channel (unix stream socket); borrowed; its
 *        write side is shut down after the last byte, as QEMU does.
 * @opts: options or NULL (CPRS_SAVE_F_LEGACY sends QEMU's stream, one fd
 *        per 0x20 byte; a plan of mode cpr-transfer decides it too;
 *        CPRS_SAVE_F_DUAL is refused: a dual stream is for cpr-exec).
 * @diag: filled on failure, or NULL.
 *
 * Returns: 0; errors as cprs_state_save_exec() and of sendmsg().
 */
CPRS_API int cprs_state_save_transfer(CprsState *state, int sock,
                                      const CprsSaveOpts *opts,
                                      CprsDiag *diag);

/* Load even if a recorded fd is not the file that was saved. */
#define CPRS_LOAD_F_NO_FD_CHECK   UINT32_C(0x1)
/* Decode legacy streams leniently (accept what QEMU accepts). */
#define CPRS_LOAD_F_LEGACY_LENIENT UINT32_C(0x2)

typedef struct CprsLoadOpts {
    size_t sz;
    uint32_t flags;             /* CPRS_LOAD_F_* */
    uint32_t max_records;       /* 0: CPRS_MAX_RECORDS */
    uint64_t max_arena_size;    /* 0: CPRS_MAX_ARENA_SIZE */
} CprsLoadOpts;

/**
 * cprs_state_load_exec: load the state left before exec().
 * @opts: options or NULL.
 * @diag: filled on failure (what, where, why), or NULL.
 * @ret_state: the loaded state, on success.
 *
 * Finds the state (cprs_exec_find()), maps and fully verifies an arena,
 * loads a dual stream after checking that its two parts agree
 * (spec/fail-safe.rst F4.3), or decodes a legacy stream (upgrade from a
 * QEMU without libcprstate); an arena's ROLLBACK section must be that of
 * a state handed back by a rollback (F5.7; cprs_state_get_info() then
 * reports the failure);
 * checks that every recorded fd is open and (for an arena) is the same
 * file as at save, then sets close-on-exec on the recorded fds as QEMU
 * does and unsets QEMU_CPR_EXEC_STATE.  The state memfd stays open (and
 * mapped) until cprs_state_free().
 *
 * All or nothing: on failure the environment, the state memfd and every
 * inherited fd (and its close-on-exec flag) are left exactly as they
 * were.  A record naming the state memfd itself is refused (spec 11.1).
 *
 * Returns: 0; errors of cprs_exec_find(), the reader and the legacy
 * decoder; -EBADMSG a record names the state memfd, the parts of a dual
 * stream differ, or an armed rollback record inside the state; -EPERM an
 * unsealed dual stream; -ESTALE a recorded fd is closed or another file;
 * the fcntl() error (-EBADF) of a recorded fd whose close-on-exec flag
 * cannot be set (with CPRS_LOAD_F_NO_FD_CHECK); -ENOMEM.
 */
CPRS_API int cprs_state_load_exec(const CprsLoadOpts *opts, CprsDiag *diag,
                                  CprsState **ret_state);

/**
 * cprs_state_load_transfer: receive the state and its fds (cpr-transfer).
 * @sock: the connected cpr channel; borrowed.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_state: the loaded state, on success; the caller owns the received
 *             fds, which it finds with cprs_state_find_fd().
 *
 * Tells an arena from a legacy stream by its first 8 bytes (read, not
 * peeked, and kept for the receiver of that format), then receives
 * either, verifies it, and checks the fd count against the fd records.
 * A legacy stream is decoded as it comes and read no further than its
 * verdict (with CPRS_LOAD_F_LEGACY_LENIENT, no further than the first
 * byte past the stream, as QEMU).  All or nothing: on failure every
 * received fd is closed.  Reads block; SO_RCVTIMEO on @sock bounds each
 * wait (spec 11.5).
 *
 * Returns: 0; errors of cprs_transfer_recv(), cprs_legacy_recv() and the
 * reader; -EBADMSG fd count differs from the records, or neither format;
 * -EAGAIN SO_RCVTIMEO reached; -ENOMEM.
 */
CPRS_API int cprs_state_load_transfer(int sock, const CprsLoadOpts *opts,
                                      CprsDiag *diag, CprsState **ret_state);

/* ---- QEMU's legacy "QCPR" stream -------------------------------------- */

/*
 * QEMU 10.x writes its CPR state as the "QCPR" version 1 stream described
 * (non-normatively) in spec/qemu-legacy-stream.rst, whose clauses L1..L11
 * the diagnostics cite.  A CprsLegacy holds one such stream decoded: the
 * fd records and the vfio device records, in stream order, with the byte
 * offset of each, the variant (cpr-exec or cpr-transfer) and the form of
 * the "CprState/vfio devices" subsection.  It can also be built from
 * scratch, encoded again, converted to and from an arena, and sent or
 * received over a cpr-transfer socket together with its fds.
 *
 * Decoding is strict by default: anything that crashes or misleads QEMU's
 * own reader, and anything QEMU would not write, is refused.  With
 * CPRS_LEGACY_F_LENIENT the decoder accepts what QEMU accepts and records
 * each deviation as a warning; inputs that crash QEMU stay refused.
 */

typedef struct CprsLegacy CprsLegacy;

/* Bytes a stream may have (decode_fd, recv); opts may lower it: 1 GiB. */
#define CPRS_LEGACY_MAX_SIZE      (UINT64_C(1) << 30)
/* Warnings kept per handle; the last one says when more were dropped. */
#define CPRS_LEGACY_MAX_WARNINGS  256u

/* What cprs_detect() found at the start of a buffer. */
enum {
    CPRS_DETECT_UNKNOWN = 0,        /* neither, or too short to tell */
    CPRS_DETECT_ARENA = 1,          /* CPRS_MAGIC: a CPR State Arena */
    CPRS_DETECT_LEGACY = 2,         /* "QCPR": QEMU's legacy stream */
    CPRS_DETECT__MAX,
};

/* Form of the "CprState/vfio devices" subsection (spec L5.6). */
enum {
    CPRS_LEGACY_VFIO_DEFAULT = 0,   /* opts: as recorded, or FULL */
    CPRS_LEGACY_VFIO_FULL = 1,      /* header, device list, 0x00 end */
    CPRS_LEGACY_VFIO_STUB = 2,      /* header only (QEMU without iommufd) */
    CPRS_LEGACY_VFIO_NONE = 3,      /* no subsection (QEMU 10.0) */
    CPRS_LEGACY_VFIO__MAX,
};

/* Accept what QEMU accepts; record each deviation as a warning. */
#define CPRS_LEGACY_F_LENIENT    UINT32_C(0x1)
/* Accept the STUB and NONE forms as complete, without a warning. */
#define CPRS_LEGACY_F_ALL_FORMS  UINT32_C(0x2)
/* cpr-exec: every fd number must be open in the calling process. */
#define CPRS_LEGACY_F_CHECK_FDS  UINT32_C(0x4)

typedef struct CprsLegacyOpts {
    size_t sz;
    uint32_t flags;         /* CPRS_LEGACY_F_*; decoding only */
    uint32_t mode;          /* 0: auto (decode) or as recorded; else
                             * CPRS_MODE_EXEC or CPRS_MODE_TRANSFER */
    uint32_t vfio_form;     /* CPRS_LEGACY_VFIO_*; 0: as recorded / FULL */
    uint32_t max_records;   /* per list; 0: CPRS_MAX_RECORDS; only lower */
    uint64_t max_size;      /* 0: CPRS_LEGACY_MAX_SIZE; may only lower */
} CprsLegacyOpts;

/* What a handle holds, as a whole. */
typedef struct CprsLegacyInfo {
    size_t sz;
    uint32_t mode;          /* CPRS_MODE_EXEC or CPRS_MODE_TRANSFER */
    uint32_t vfio_form;     /* CPRS_LEGACY_VFIO_FULL, _STUB or _NONE */
    uint32_t fd_count;
    uint32_t vfio_count;
    uint32_t warning_count;
    uint32_t flags;         /* CPRS_LEGACY_F_* it was decoded with */
    uint64_t size;          /* bytes decoded (0 if built) */
    uint64_t trailing;      /* bytes ignored after the stream (lenient) */
} CprsLegacyInfo;

/**
 * cprs_detect: tell an arena from a legacy stream by its first bytes.
 * @buf: the start of the input; untrusted, only compared.
 * @len: bytes at @buf; 8 are enough for an arena, 4 for a legacy stream.
 *
 * Looks at the magic only; nothing past it is checked.
 *
 * Returns: CPRS_DETECT_ARENA, CPRS_DETECT_LEGACY or CPRS_DETECT_UNKNOWN
 * (also for inputs too short to tell); -EINVAL if @buf is NULL and @len
 * is not 0.
 */
CPRS_API int cprs_detect(const void *buf, size_t len);

/**
 * cprs_legacy_decode: decode a legacy stream held in memory.
 * @buf: the stream; untrusted, read once and not kept (names are copied).
 * @size: bytes at @buf.
 * @opts: options or NULL: flags, a forced mode (0 detects it from the
 *        byte after the first record's id: 0x20 means cpr-transfer; with
 *        no record the stream reads as cpr-exec), max_records.
 * @diag: filled on failure (offset into @buf, reason, clause "Lx.y"), or
 *        NULL.
 * @ret_legacy: the new handle, on success; free with cprs_legacy_free().
 *
 * Every read is bounds-checked; truncation anywhere is reported at the
 * offset where the data ran out.  cpr-transfer records decoded from a
 * buffer have no fd (-1): use cprs_legacy_recv() to get them.
 *
 * Returns: 0; -EINVAL bad arguments or opts; -EBADMSG malformed (bad
 * magic, truncation, bad marker, bad name, negative fd, bad service byte,
 * subsection errors, trailing bytes in strict mode); -EPROTONOSUPPORT
 * stream or subsection version newer than 1, or an unknown "CprState/..."
 * subsection; -E2BIG a name longer than CPRS_MAX_NAME_LEN or more records
 * than allowed; -ENOMEM.
 */
CPRS_API int cprs_legacy_decode(const void *buf, size_t size,
                                const CprsLegacyOpts *opts, CprsDiag *diag,
                                CprsLegacy **ret_legacy);

/**
 * cprs_legacy_decode_fd: decode a legacy stream read from an fd.
 * @fd: e.g. the QEMU_CPR_EXEC_STATE memfd, or /proc/PID/fd/N opened by
 *      path.  Read with pread() from offset 0, so its file offset is not
 *      moved (QEMU leaves it at the end of the data); a non-seekable fd
 *      is read with read() instead.  Borrowed, not closed.
 * @opts: as cprs_legacy_decode(); max_size caps the bytes read.
 * @diag: filled on failure, or NULL.
 * @ret_legacy: the new handle, on success.
 *
 * Reads only as far as the decoder needs (spec/qemu-legacy-stream.rst
 * L2.3): a file in doubling rounds from 64 KiB, anything else as it
 * comes, decoded from the start once the 8-byte header is in and each
 * time the bytes have doubled, so that a verdict in the first bytes of a
 * pipe is reached without waiting for more.  A strict decode stops where
 * its verdict is known; a file longer than max_size is refused unread;
 * never more than max_size + 1 bytes are read or held; the work is
 * linear in the bytes however the reads split them.  The verdict is
 * cprs_legacy_decode()'s on the whole input.
 *
 * Returns: as cprs_legacy_decode(), plus -E2BIG for a file larger than
 * max_size or a source that would need more, and the errno of a failed
 * read.
 */
CPRS_API int cprs_legacy_decode_fd(int fd, const CprsLegacyOpts *opts,
                                   CprsDiag *diag, CprsLegacy **ret_legacy);

/**
 * cprs_legacy_free: release a handle, closing every fd it owns.
 * @legacy: handle or NULL.
 *
 * fds received by cprs_legacy_recv() and not taken with
 * cprs_legacy_fd_take() are closed; fds added by the caller are not.
 */
CPRS_API void cprs_legacy_free(CprsLegacy *legacy);

/**
 * cprs_legacy_get_info: variant, subsection form, counts and sizes.
 * @legacy: a handle.
 * @info: filled up to min(@info->sz, sizeof(CprsLegacyInfo)).
 *
 * Returns: 0 or -EINVAL.
 */
CPRS_API int cprs_legacy_get_info(const CprsLegacy *legacy,
                                  CprsLegacyInfo *info);

/**
 * cprs_legacy_fd_count: number of fd records.
 * @legacy: a handle, or NULL (0).
 *
 * Returns: the count.
 */
CPRS_API uint32_t cprs_legacy_fd_count(const CprsLegacy *legacy);

/**
 * cprs_legacy_fd_get: fd record @index, in stream order.
 * @legacy: a handle.
 * @index: below cprs_legacy_fd_count().
 * @info: filled up to its sz: @name (NUL-terminated, owned by @legacy,
 *        valid until the next add or free), @name_len (without the NUL),
 *        @id, @slot (= @index, the record's position), @fd (cpr-exec: the
 *        number in the stream; cpr-transfer: the received fd, or -1),
 *        @kind CPRS_FD_KIND_OTHER; other fields 0.
 *
 * Returns: 0, or -EINVAL for a bad index.
 */
CPRS_API int cprs_legacy_fd_get(const CprsLegacy *legacy, uint32_t index,
                                CprsFdInfo *info);

/**
 * cprs_legacy_fd_offset: stream offset of fd record @index.
 * @legacy: a handle.
 * @index: below cprs_legacy_fd_count().
 * @ret_offset: the offset of the record's 0x01 marker, on success.
 *
 * Returns: 0; -EINVAL bad index; -ENOENT a record added by the caller
 * (it has no offset).
 */
CPRS_API int cprs_legacy_fd_offset(const CprsLegacy *legacy, uint32_t index,
                                   uint64_t *ret_offset);

/**
 * cprs_legacy_fd_find: first fd record with (@name, @id), as QEMU looks up.
 * @legacy: a handle.
 * @name: NUL-terminated name.
 * @id: QEMU's cpr id.
 * @ret_index: the record index, on success.
 *
 * A linear scan in stream order; with duplicates, the first one wins.
 *
 * Returns: 0; -ENOENT none; -EINVAL.
 */
CPRS_API int cprs_legacy_fd_find(const CprsLegacy *legacy, const char *name,
                                 int32_t id, uint32_t *ret_index);

/**
 * cprs_legacy_vfio_count: number of vfio device records.
 * @legacy: a handle, or NULL (0).
 *
 * Returns: the count (0 for the STUB and NONE forms).
 */
CPRS_API uint32_t cprs_legacy_vfio_count(const CprsLegacy *legacy);

/**
 * cprs_legacy_vfio_get: vfio device record @index, in stream order.
 * @legacy: a handle.
 * @index: below cprs_legacy_vfio_count().
 * @info: filled up to its sz; @name is owned by @legacy (see _fd_get()).
 *
 * Returns: 0, or -EINVAL for a bad index.
 */
CPRS_API int cprs_legacy_vfio_get(const CprsLegacy *legacy, uint32_t index,
                                  CprsVfioDeviceInfo *info);

/**
 * cprs_legacy_vfio_offset: stream offset of vfio record @index.
 * @legacy: a handle.
 * @index: below cprs_legacy_vfio_count().
 * @ret_offset: the offset of the record's 0x01 marker, on success.
 *
 * Returns: 0; -EINVAL bad index; -ENOENT record added by the caller.
 */
CPRS_API int cprs_legacy_vfio_offset(const CprsLegacy *legacy,
                                     uint32_t index, uint64_t *ret_offset);

/**
 * cprs_legacy_warning_count: number of warnings recorded at decode.
 * @legacy: a handle, or NULL (0).
 *
 * Duplicate keys are warnings in every mode; the deviations that
 * CPRS_LEGACY_F_LENIENT lets through are warnings too.  At most
 * CPRS_LEGACY_MAX_WARNINGS are kept.
 *
 * Returns: the count.
 */
CPRS_API uint32_t cprs_legacy_warning_count(const CprsLegacy *legacy);

/**
 * cprs_legacy_warning_get: warning @index, in the order found.
 * @legacy: a handle.
 * @index: below cprs_legacy_warning_count().
 * @diag: filled up to its sz; @error is 0, @offset the stream offset,
 *        @record the record index or -1, @clause and @reason static.
 *
 * Returns: 0, or -EINVAL for a bad index.
 */
CPRS_API int cprs_legacy_warning_get(const CprsLegacy *legacy,
                                     uint32_t index, CprsDiag *diag);

#ifdef CPRS_EXPERIMENTAL
/*
 * Building a legacy stream by hand (experimental): a VMM saving through
 * CprsState gets QEMU's stream with CPRS_SAVE_F_LEGACY and needs none of
 * this; tests and seed generators do.
 */

/**
 * cprs_legacy_new: start a legacy stream from scratch (e.g. a downgrade).
 * @opts: options or NULL: mode (0: CPRS_MODE_EXEC), vfio_form (0: FULL),
 *        max_records.
 * @ret_legacy: the new, empty handle, on success.
 *
 * Returns: 0; -EINVAL bad opts; -ENOMEM.
 */
CPRS_EXPERIMENTAL_API int cprs_legacy_new(const CprsLegacyOpts *opts,
                                          CprsLegacy **ret_legacy);

/**
 * cprs_legacy_add_fd: append an fd record (it goes last in the stream).
 * @legacy: a handle.
 * @fd: @name (copied; 1..CPRS_MAX_NAME_LEN printable ASCII bytes), @id,
 *      @fd (borrowed, never closed by the library: >= 0 for cpr-exec,
 *      -1 or an fd to send for cpr-transfer); other fields are ignored.
 * @ret_index: the record index, or NULL.
 *
 * QEMU writes its newest registration first: add records in the order
 * they should appear in the stream.
 *
 * Returns: 0; -EINVAL bad name or fd; -EEXIST (name, id) already there;
 * -E2BIG too many records; -ENOMEM.  Nothing changes on failure.
 */
CPRS_EXPERIMENTAL_API int cprs_legacy_add_fd(CprsLegacy *legacy,
                                             const CprsFdInfo *fd,
                                             uint32_t *ret_index);

/**
 * cprs_legacy_add_vfio: append a vfio device record.
 * @legacy: a handle whose vfio form is FULL.
 * @dev: @name (copied, as for add_fd), @devid, @ioas_id, @hwpt_id.
 * @ret_index: the record index, or NULL.
 *
 * Returns: 0; -EINVAL bad name, or a STUB or NONE form (they cannot carry
 * records); -EEXIST name already there; -E2BIG; -ENOMEM.
 */
CPRS_EXPERIMENTAL_API int cprs_legacy_add_vfio(CprsLegacy *legacy,
                                               const CprsVfioDeviceInfo *dev,
                                               uint32_t *ret_index);
#endif /* CPRS_EXPERIMENTAL */

/**
 * cprs_legacy_encode: write the stream as QEMU would.
 * @legacy: a handle (decoded or built).
 * @opts: NULL, or overrides: mode (0: as recorded) and vfio_form (0: as
 *        recorded); flags and limits play no part.
 * @ret_buf: malloc()ed stream, on success; release with free().
 * @ret_size: its length.
 *
 * The output is canonical: markers are 0x01, nothing trails.  A stream
 * decoded in strict mode therefore encodes to the very same bytes.
 *
 * Returns: 0; -EINVAL bad opts, a cpr-exec record whose fd is unknown
 * (< 0), or vfio records with a STUB or NONE form; -E2BIG output over
 * CPRS_LEGACY_MAX_SIZE; -ENOMEM.
 */
CPRS_API int cprs_legacy_encode(const CprsLegacy *legacy,
                                const CprsLegacyOpts *opts, void **ret_buf,
                                size_t *ret_size);

/**
 * cprs_legacy_to_arena: a new writer holding a legacy stream's records.
 * @legacy: a handle.
 * @opts: writer options or NULL; mode 0 takes the legacy mode, any other
 *        mode must equal it.
 * @diag: filled on failure, or NULL.
 * @ret_writer: the writer, on success; finish and free it as usual.
 *
 * fd records keep their order, name and id; cpr-exec fds go to the fd
 * field, cpr-transfer records get fd -1 (their slot is their position);
 * kind is CPRS_FD_KIND_OTHER with no identity.  vfio records become vfio
 * device records (name, devid, ioas_id, hwpt_id).  The arena is stricter
 * than QEMU: names outside printable ASCII and duplicate keys, which a
 * lenient decode accepts, are refused (@diag names the record).  On
 * failure no writer is returned.
 *
 * Returns: 0; -EINVAL bad arguments or opts (as cprs_writer_new()), @opts
 * asking for another mode, or a name the arena refuses; -EEXIST a
 * duplicate key; -E2BIG a limit of the arena; -ENOMEM.
 */
CPRS_API int cprs_legacy_to_arena(const CprsLegacy *legacy,
                                  const CprsWriterOpts *opts, CprsDiag *diag,
                                  CprsWriter **ret_writer);

/**
 * cprs_legacy_from_reader: build a legacy stream from an arena.
 * @reader: an open reader (its records are validated as they are read).
 * @opts: options or NULL: mode (0: the arena's), vfio_form (0: FULL, what
 *        QEMU 10.2 with iommufd writes), max_records.
 * @diag: filled on failure, or NULL.
 * @ret_legacy: the new handle, on success.
 *
 * fd and vfio records are taken in arena order.  Only they exist in the
 * legacy stream: RAM block maps, device state and fd identities are left
 * out.  A cpr-exec stream needs every fd number.
 *
 * Returns: 0; -EINVAL bad opts, a cpr-exec target with an fd of -1, or
 * vfio records with a STUB or NONE form; -EBADMSG, -E2BIG, -ENOMEM from
 * the reader or the limits.
 */
CPRS_API int cprs_legacy_from_reader(CprsReader *reader,
                                     const CprsLegacyOpts *opts,
                                     CprsDiag *diag,
                                     CprsLegacy **ret_legacy);

/* ---- Fail-safe live update: the state (spec/fail-safe.rst) ------------ */

/*
 * Since 0.2.  A cpr-exec replaces the process image: once exec() has
 * succeeded, a new image that cannot use the state loses the guest.
 * libcprstate makes the hop fail-safe in two ways (spec/fail-safe.rst):
 * before the VM stops, the source inspects the binary it will exec and
 * writes only what that binary reads, or refuses while the VM still
 * runs (pre-flight, CprsTarget); and a new image that fails before the
 * VM runs hands the state back to the previous binary, same pid, RAM
 * intact (rollback, CprsRollback).
 */

/* What a state was read from, and what a plan writes. */
enum {
    CPRS_FORMAT_NONE = 0,           /* not loaded */
    CPRS_FORMAT_ARENA = 1,          /* a CPR State Arena */
    CPRS_FORMAT_LEGACY = 2,         /* QEMU's QCPR stream */
    CPRS_FORMAT_DUAL = 3,           /* QCPR stream, then an arena (F4) */
    CPRS_FORMAT__MAX,
};

/* A state, as a whole (since 0.2). */
typedef struct CprsStateInfo {
    size_t sz;
    uint32_t format;                /* CPRS_FORMAT_*: loaded from */
    uint32_t mode;                  /* CPRS_MODE_* of the load, or 0 */
    uint64_t generation;            /* hop number; the next save: + 1 */
    uint32_t fd_count;
    uint32_t vfio_count;
    uint32_t ramblock_count;
    uint32_t devstate_count;
    uint32_t devstate_zstd;         /* payloads that ask for zstd */
    uint32_t compress_sections;     /* reserved, 0 */
    /* A state handed back by a rollback (F5.7); 0 and "" otherwise. */
    uint32_t rollback_flags;        /* CPRS_ROLLBACK_F_* as loaded */
    uint32_t failure_stage;         /* CPRS_FAILURE_* */
    int32_t failure_error;          /* -errno of the failure, 0 unknown */
    uint32_t reserved0;
    uint64_t failed_ns;             /* CLOCK_REALTIME of the failure */
    const char *failure_message;    /* owned by the state */
    const char *failed_exe;         /* the image that failed, owned */
} CprsStateInfo;

/**
 * cprs_state_get_info: format, generation, counts and rollback status.
 * @state: a state.
 * @info: filled up to min(@info->sz, sizeof(CprsStateInfo)); strings are
 *        owned by @state and valid until it is freed.
 *
 * A state that was loaded says what from (arena, QCPR stream or dual
 * stream) and its generation; one that a rollback handed back
 * (rollback_flags has CPRS_ROLLBACK_F_ROLLED_BACK) says where and why the
 * next image failed.  The counts are what cprs_target_plan() needs.
 *
 * Returns: 0 or -EINVAL.
 */
CPRS_API int cprs_state_get_info(const CprsState *state, CprsStateInfo *info);

/* ---- Fail-safe live update: pre-flight (spec/fail-safe.rst F2) -------- */

typedef struct CprsTarget CprsTarget;

/* What the binary of a hop reads (F2.2). */
enum {
    CPRS_TARGET_LIBCPRSTATE = 1,    /* carries libcprstate's note (F3) */
    CPRS_TARGET_STOCK_QEMU = 2,     /* no note; QEMU 10.2's cpr marks */
    CPRS_TARGET_UNCERTAIN = 3,      /* script, wrapper, unmarked, unread */
    CPRS_TARGET__MAX,
};

/* How the target was found and what it is (CprsTargetInfo.flags). */
#define CPRS_TARGET_F_ELF          UINT32_C(0x01)  /* an ELF executable */
#define CPRS_TARGET_F_SCRIPT       UINT32_C(0x02)  /* starts with #! */
#define CPRS_TARGET_F_DYNAMIC      UINT32_C(0x04)  /* dynamically linked */
#define CPRS_TARGET_F_NOTE_IN_LIB  UINT32_C(0x08)  /* note of its .so */
#define CPRS_TARGET_F_PEER         UINT32_C(0x10)  /* a cpr-transfer peer */
#define CPRS_TARGET_F_UNREADABLE   UINT32_C(0x20)  /* executable only */
#define CPRS_TARGET_F_SEARCHED     UINT32_C(0x40)  /* found through PATH */

typedef struct CprsTargetOpts {
    size_t sz;
    uint32_t flags;                 /* none yet: 0 */
    uint32_t reserved0;
    const char *path_env;           /* NULL: getenv("PATH") */
    const char *library_path;       /* NULL: getenv("LD_LIBRARY_PATH") */
} CprsTargetOpts;

/* What pre-flight found (since 0.2). */
typedef struct CprsTargetInfo {
    size_t sz;
    uint32_t klass;                 /* CPRS_TARGET_* */
    uint32_t flags;                 /* CPRS_TARGET_F_* */
    const char *path;               /* what exec would run (resolved) */
    const char *real_path;          /* the same, canonical */
    const char *lib_path;           /* libcprstate.so whose note counts */
    const char *interp;             /* a script's #! line, or "" */
    const char *reason;             /* static: why this class */
    /* CPRS_TARGET_LIBCPRSTATE: the capability note (F3.3). */
    uint32_t lib_version;           /* its CPRS_VERSION_NUMBER */
    uint16_t arena_major;           /* newest arena version it reads */
    uint16_t arena_minor;
    uint64_t arena_incompat;        /* incompat features it implements */
    uint32_t modes;                 /* CPRS_CAPS_MODE_BIT() of its modes */
    uint32_t legacy_forms;          /* CPRS_CAPS_FORM_BIT() it decodes */
    uint32_t caps;                  /* CPRS_CAPS_F_* */
    /* CPRS_TARGET_STOCK_QEMU: its vfio subsection form (F2.4). */
    uint32_t stock_form;            /* CPRS_LEGACY_VFIO_FULL or _STUB */
    uint32_t marks;                 /* marks found (bit 0 exec state,
                                     * bit 1 vfio subsection, bit 2 vfio
                                     * device, bit 3 "cpr fd", bit 4
                                     * libcprstate's own name: F2.4),
                                     * for diagnostics */
    int32_t pid;                    /* a peer's pid, or 0 */
    uint64_t dev;                   /* the file inspected */
    uint64_t ino;
    uint64_t size;
    char producer[CPRS_CAPS_PRODUCER_MAX];  /* the note's producer */
    uint64_t lib_dev;               /* the lib_path file inspected, or 0 */
    uint64_t lib_ino;
} CprsTargetInfo;

/**
 * cprs_target_open_exec: pre-flight of a cpr-exec target (F2.1).
 * @argv: the command the source will exec (QEMU's cpr-exec-command);
 *        argv[0] is resolved as execvp() would: used as given when it
 *        holds a '/', else searched in PATH (confstr's default when
 *        unset), skipping entries that are missing or not executable.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_target: the new target, on success; free with cprs_target_free().
 *
 * Opens the file once (O_PATH, then for reading only if it is a regular
 * file, never blocking: F2.1; O_PATH only when it may be executed but
 * not read) and inspects it through that fd only: its first bytes, and
 * for an ELF file its capability note, the libcprstate.so it needs
 * (found by the subset of ld.so's rules in F2.5) or the marks of QEMU's
 * cpr code.  cprs_target_exec() later execs that same file or refuses.
 * The file is untrusted; anything not understood makes the target
 * CPRS_TARGET_UNCERTAIN, never a failure.
 *
 * Returns: 0; -EINVAL empty @argv or bad opts; -ENOENT no such file
 * (also not in PATH); -EACCES found but not an executable regular file
 * (F2.2 (iv)); -ELOOP, -ENAMETOOLONG and other errors that end
 * execvp()'s search (F2.1); -ENOMEM; errors of open() and pread().
 */
CPRS_API int cprs_target_open_exec(char *const argv[],
                                   const CprsTargetOpts *opts,
                                   CprsDiag *diag, CprsTarget **ret_target);

/**
 * cprs_target_open_path: pre-flight of one executable file, as given.
 * @path: the file (no PATH search, as execv()).
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_target: the new target, on success.
 *
 * As cprs_target_open_exec() with argv[0] = @path (cprdump target).
 *
 * Returns: as cprs_target_open_exec().
 */
CPRS_API int cprs_target_open_path(const char *path,
                                   const CprsTargetOpts *opts,
                                   CprsDiag *diag, CprsTarget **ret_target);

/**
 * cprs_target_open_peer: pre-flight of a cpr-transfer peer (F2.6).
 * @sock: the connected cpr channel (unix socket); borrowed.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_target: the new target, on success; it cannot be exec'd.
 *
 * The peer's pid comes from SO_PEERCRED, its executable from
 * /proc/PID/exe, inspected as cprs_target_open_path() does.  A peer
 * whose executable cannot be opened (another pid namespace, no ptrace
 * access) is CPRS_TARGET_UNCERTAIN.
 *
 * Returns: 0; -EINVAL; -ENOTSOCK or other errors of getsockopt();
 * -ENOMEM.
 */
CPRS_API int cprs_target_open_peer(int sock, const CprsTargetOpts *opts,
                                   CprsDiag *diag, CprsTarget **ret_target);

/**
 * cprs_target_free: close the inspected file and free a target.
 * @target: a target or NULL.
 */
CPRS_API void cprs_target_free(CprsTarget *target);

/**
 * cprs_target_get_info: what pre-flight found.
 * @target: a target.
 * @info: filled up to min(@info->sz, sizeof(CprsTargetInfo)); strings are
 *        owned by @target.
 *
 * Returns: 0 or -EINVAL.
 */
CPRS_API int cprs_target_get_info(const CprsTarget *target,
                                  CprsTargetInfo *info);

/* How to choose the format of a hop (F6.1); QEMU_CPR_STATE_FORMAT. */
enum {
    CPRS_POLICY_AUTO = 0,           /* what the target reads (F6.2) */
    CPRS_POLICY_ARENA = 1,          /* always an arena */
    CPRS_POLICY_LEGACY = 2,         /* always a QCPR stream */
    CPRS_POLICY_DUAL = 3,           /* always a dual stream (cpr-exec) */
    CPRS_POLICY_STRICT = 4,         /* as auto, but refuse when uncertain */
    CPRS_POLICY__MAX,
};

typedef struct CprsPlanOpts {
    size_t sz;
    uint32_t policy;                /* CPRS_POLICY_* */
    uint32_t mode;                  /* CPRS_MODE_*; 0: CPRS_MODE_EXEC */
    uint32_t vfio_form;             /* forced legacy: 0 = the target's */
    uint32_t flags;                 /* none yet: 0 */
} CprsPlanOpts;

/* Arm a rollback for this hop: the target can honour one (F5.1). */
#define CPRS_PLAN_F_ROLLBACK    UINT32_C(0x1)
/* Compress nothing: the target reads no zstd (F6.2). */
#define CPRS_PLAN_F_NO_ZSTD     UINT32_C(0x2)
/* The policy chose the format, not what the target reads. */
#define CPRS_PLAN_F_FORCED      UINT32_C(0x4)
/* The format drops RAM block maps and fd identities (a QCPR stream). */
#define CPRS_PLAN_F_LOSSY       UINT32_C(0x8)

/* The decision for one hop (since 0.2). */
struct CprsPlan {
    size_t sz;
    uint32_t format;                /* CPRS_FORMAT_ARENA, _LEGACY, _DUAL */
    uint32_t vfio_form;             /* legacy and dual: CPRS_LEGACY_VFIO_* */
    uint32_t flags;                 /* CPRS_PLAN_F_* */
    uint32_t mode;                  /* CPRS_MODE_* */
    uint32_t klass;                 /* the target's CPRS_TARGET_* */
    uint32_t policy;                /* the policy applied */
    const char *reason;             /* static: why this format */
};

/**
 * cprs_target_plan: decide what to write for a target, or refuse (F6).
 * @target: an inspected target.
 * @state: what the state holds (cprs_state_get_info(); only the counts
 *         are used), or NULL for an empty state.
 * @opts: policy and mode, or NULL (auto, cpr-exec).
 * @diag: filled when the hop is refused, with the reason, or NULL.
 * @ret_plan: filled up to its sz on success.
 *
 * Auto: an arena for a libcprstate target that reads this library's
 * arenas, else a QCPR stream if it reads one; a QCPR stream in the stock
 * target's vfio form, refused when the state holds vfio records that
 * form cannot carry, or device-state payloads (no QCPR stream carries
 * them); a dual stream for an uncertain target of a cpr-exec (a QCPR
 * stream over cpr-transfer), refused when the state holds vfio records
 * (a QEMU without iommufd would drop them silently).  Strict refuses an
 * uncertain target.  A forced format is planned whatever the target
 * reads (F6.3).  Call it while the VM still runs: a refusal leaves
 * everything as it was.
 *
 * Returns: 0; -EPROTONOSUPPORT the target cannot (or might not) load
 * this state: refuse the migration; -EINVAL bad opts, or a dual stream
 * asked for a cpr-transfer.
 */
CPRS_API int cprs_target_plan(const CprsTarget *target,
                              const CprsStateInfo *state,
                              const CprsPlanOpts *opts, CprsDiag *diag,
                              CprsPlan *ret_plan);

typedef struct CprsExecOpts {
    size_t sz;
    uint32_t flags;                 /* none yet: 0 */
    uint32_t reserved0;
    char *const *envp;              /* NULL: environ */
} CprsExecOpts;

/**
 * cprs_target_exec: exec the inspected file, or refuse (F2.7).
 * @target: a target from cprs_target_open_exec() or _open_path().
 * @argv: the command; argv[0] must still resolve, by the rules and PATH
 *        of the pre-flight, to the very file inspected.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 *
 * Checks that argv[0] names the same file (device and inode) and that
 * the file is unchanged since it was inspected (size, mtime, ctime);
 * then execs an ELF file through the inspected fd (execveat() with
 * AT_EMPTY_PATH: a later rename or symlink swap cannot change what
 * runs), anything else by its path, with execvp()'s /bin/sh fallback.
 * Preserve the state's fds first (cprs_state_preserve_fds()).
 *
 * Returns: only on failure: -ESTALE the path now names another file, or
 * the file changed (a race: nothing was exec'd, the VM can resume);
 * -EINVAL a peer target or bad arguments; errors of execveat()/execve().
 */
CPRS_API int cprs_target_exec(CprsTarget *target, char *const argv[],
                              const CprsExecOpts *opts, CprsDiag *diag);

/**
 * cprs_policy_parse: a policy from its name.
 * @text: "auto", "arena", "legacy", "dual" or "strict".
 * @ret_policy: CPRS_POLICY_*, on success.
 *
 * Returns: 0, or -EINVAL for any other text.
 */
CPRS_API int cprs_policy_parse(const char *text, uint32_t *ret_policy);

/**
 * cprs_format_name: "arena", "legacy", "dual" (CPRS_FORMAT_*).
 * @format: CPRS_FORMAT_*.
 *
 * Returns: a static string; NULL if unknown.
 */
CPRS_API const char *cprs_format_name(uint32_t format);

/**
 * cprs_target_class_name: "libcprstate", "stock-qemu", "uncertain".
 * @klass: CPRS_TARGET_*.
 *
 * Returns: a static string; NULL if unknown.
 */
CPRS_API const char *cprs_target_class_name(uint32_t klass);

/* ---- Fail-safe live update: dual stream (spec/fail-safe.rst F4) ------- */

/* Where the two parts of a dual stream lie (since 0.2). */
typedef struct CprsDualInfo {
    size_t sz;
    uint64_t legacy_size;           /* the QCPR stream: [0, legacy_size) */
    uint64_t arena_offset;          /* the arena: 8-aligned */
    uint64_t arena_size;
    uint64_t size;                  /* everything, trailer included */
} CprsDualInfo;

/**
 * cprs_dual_locate: is this a dual stream, and where are its parts?
 * @buf: the whole state (e.g. the QEMU_CPR_EXEC_STATE memfd's bytes);
 *       untrusted, only read.
 * @size: bytes at @buf.
 * @info: filled on success.
 * @diag: filled on failure, or NULL.
 *
 * Checks the trailer (F4.2): magic, version, size, CRC, that the parts
 * tile the input exactly, that the padding is zero and that the input
 * starts as a QCPR stream and the arena with its magic.  Neither part is
 * decoded: open the arena with a reader, decode the QCPR part with
 * cprs_legacy_decode(), and compare them with cprs_dual_check().
 *
 * Returns: 0; -ENOENT no dual trailer (a plain stream or arena);
 * -EBADMSG a malformed trailer or layout; -EPROTONOSUPPORT a trailer of a
 * newer major version; -EINVAL.
 */
CPRS_API int cprs_dual_locate(const void *buf, size_t size,
                              CprsDualInfo *info, CprsDiag *diag);

/**
 * cprs_dual_check: do the two parts of a dual stream agree (F4.3)?
 * @arena: the arena part, open (its records are read, validated).
 * @legacy: the QCPR part, decoded strictly.
 * @diag: the first difference, or NULL.
 *
 * Both must be cpr-exec, the QCPR part in the full vfio form, with the
 * same fd records (name, id, fd) and vfio records (name, devid, ioas_id,
 * hwpt_id) in the same order.
 *
 * Returns: 0; -EBADMSG they differ; errors of the reader.
 */
CPRS_API int cprs_dual_check(CprsReader *arena, const CprsLegacy *legacy,
                             CprsDiag *diag);

/* ---- Fail-safe live update: rollback (spec/fail-safe.rst F5) ---------- */

/* Name of the rollback memfd, and of the variable that holds its fd. */
#define CPRS_ROLLBACK_NAME "QEMU_CPR_ROLLBACK"

typedef struct CprsRollback CprsRollback;

typedef struct CprsRollbackOpts {
    size_t sz;
    uint32_t flags;                 /* none yet: 0 */
    uint32_t reserved0;
    /*
     * The command that resumes the VM in this binary, NULL-terminated:
     * QEMU passes its own command line with -incoming set to the
     * migration URI.  Required.
     */
    char *const *argv;
    const char *producer;           /* the copy's producer; NULL default */
} CprsRollbackOpts;

/* A rollback record, decoded (since 0.2). */
typedef struct CprsRollbackInfo {
    size_t sz;
    uint32_t flags;                 /* CPRS_ROLLBACK_F_* */
    uint32_t argc;
    uint64_t generation;            /* of the state it hands back */
    uint64_t armed_ns;
    uint32_t pid;
    int32_t exe_fd;                 /* the previous executable */
    uint64_t exe_dev;
    uint64_t exe_ino;
    uint64_t exe_size;
    uint32_t exe_mode;
    uint32_t failure_stage;         /* CPRS_FAILURE_*, with F_FAILURE */
    int32_t failure_error;          /* -errno, 0 unknown */
    uint32_t reserved0;
    uint64_t failed_ns;
    const char *exe_path;           /* the previous executable's path */
    const char *failure_message;
    const char *failed_exe;         /* the image that failed */
    const char *argv;               /* the argc arguments, in the arena,
                                     * each NUL-terminated, one after the
                                     * other */
} CprsRollbackInfo;

/**
 * cprs_rollback_arm: keep what resumes the VM in this binary (F5.1).
 * @state: the state just saved for cpr-exec; a copy of it is kept.
 * @state_fd: the fd cprs_state_save_exec() returned: the record is bound
 *            to this hop's state (F5.6).
 * @opts: options with argv (required).
 * @diag: filled on failure, or NULL.
 * @ret_rollback: the armed rollback, on success.
 *
 * Writes a copy of @state as an arena with a ROLLBACK section (the
 * previous executable opened through /proc/self/exe, so that it survives
 * a package update that replaces or deletes it, and @opts->argv) into a
 * sealed memfd named QEMU_CPR_ROLLBACK, and persists it for exec() as
 * cprs_exec_persist() does: both fds without close-on-exec, the memfd's
 * number in the variable QEMU_CPR_ROLLBACK.  Call after
 * cprs_state_save_exec() and only for a plan with CPRS_PLAN_F_ROLLBACK;
 * if the hop fails before exec, cprs_rollback_disarm().  Not
 * thread-safe: it changes the environment.
 *
 * Returns: 0; -EINVAL (no argv, an argv over the limits of F5.5,
 * @state_fd not a memfd); -ENOMEM; errors of the state's save and of
 * memfd_create(), open() and fcntl().  Nothing is left on failure.
 */
CPRS_API int cprs_rollback_arm(CprsState *state, int state_fd,
                               const CprsRollbackOpts *opts, CprsDiag *diag,
                               CprsRollback **ret_rollback);

/* Do not require the record to belong to this hop's state (tests). */
#define CPRS_ROLLBACK_FIND_F_UNBOUND UINT32_C(0x1)

/**
 * cprs_rollback_find: the rollback the previous image armed (F5.2).
 * @flags: CPRS_ROLLBACK_FIND_F_*.
 * @diag: filled on failure, or NULL.
 * @ret_rollback: the armed rollback, on success.
 *
 * Call it in the new image before it loads the state.  QEMU_CPR_ROLLBACK
 * must name a sealed memfd called QEMU_CPR_ROLLBACK holding a valid
 * arena whose one ROLLBACK section is armed (F5.3), armed by this
 * process, for the state that QEMU_CPR_EXEC_STATE names (F5.6); the
 * previous executable's fd must be an executable regular file, the one
 * recorded; every fd of the copy must be open and the same file.  Its
 * fds are then made close-on-exec again.  Everything found is
 * untrusted: a forged or inconsistent record is refused precisely, and
 * nothing is exec'd.
 *
 * Returns: 0; -ENOENT no rollback armed (QEMU_CPR_ROLLBACK unset);
 * -ELOOP the record is that of a rollback (a rollback never rolls back
 * again); -EINVAL a malformed variable; -EBADF no such open fd;
 * -EBADMSG not the QEMU_CPR_ROLLBACK memfd, a malformed arena or record,
 * or an exe fd that is not an executable regular file; -EPERM not
 * sealed; -ESTALE another process's or another hop's record, or an fd
 * that is not the file recorded; -E2BIG; -ENOMEM.
 */
CPRS_API int cprs_rollback_find(uint32_t flags, CprsDiag *diag,
                                CprsRollback **ret_rollback);

/* What went wrong in the new image (since 0.2). */
typedef struct CprsFailure {
    size_t sz;
    uint32_t stage;                 /* CPRS_FAILURE_* (not NONE) */
    int32_t error;                  /* -errno, or 0 */
    const char *message;            /* what happened; printable ASCII is
                                     * kept, other bytes become '?', at
                                     * most 255 bytes */
} CprsFailure;

/**
 * cprs_rollback_trigger: hand the state back to the previous binary.
 * @rollback: a rollback found by cprs_rollback_find(), not triggered.
 * @failure: where and why this image failed.
 * @diag: filled on failure, or NULL.
 *
 * For a failure before the VM runs (state load, migrate-incoming, device
 * state).  Checks the previous executable and every fd of the copy
 * again, records @failure into a new sealed QEMU_CPR_EXEC_STATE memfd
 * (the copy, its ROLLBACK section now ROLLED_BACK: F5.7), makes the
 * copy's fds inheritable and everything else of the hand-over not, and
 * execveat()s the previous executable with the recorded argv and an
 * environment where QEMU_CPR_EXEC_STATE names the new memfd and
 * QEMU_CPR_ROLLBACK is unset: same pid, RAM intact.  Report the failure
 * (stderr, an event) before calling: the library never prints.
 *
 * Returns: only on failure, having undone what it changed: -EINVAL
 * triggered before or bad @failure; -ESTALE an fd or the executable
 * changed; -ENOMEM; errors of memfd_create() and execveat().
 */
CPRS_API int cprs_rollback_trigger(CprsRollback *rollback,
                                   const CprsFailure *failure,
                                   CprsDiag *diag);

/**
 * cprs_rollback_disarm: drop a rollback: the hop succeeded, or failed
 * before exec.
 * @rollback: a rollback or NULL; freed.
 *
 * Closes the memfd and the executable's fd and unsets
 * QEMU_CPR_ROLLBACK if it names the memfd.  The new image calls it once
 * the VM runs; the source after a failed exec().
 */
CPRS_API void cprs_rollback_disarm(CprsRollback *rollback);

/**
 * cprs_rollback_get_info: what a rollback record holds.
 * @rollback: a rollback.
 * @info: filled up to its sz; strings owned by @rollback.
 *
 * Returns: 0 or -EINVAL.
 */
CPRS_API int cprs_rollback_get_info(const CprsRollback *rollback,
                                    CprsRollbackInfo *info);

/**
 * cprs_rollback_read: the ROLLBACK section of an arena, decoded (F5.2).
 * @reader: an open reader.
 * @info: filled on success; strings point into the arena.
 * @diag: filled on failure, or NULL.
 *
 * For inspection (cprdump): validates the section completely.
 *
 * Returns: 0; -ENOENT no ROLLBACK section; -EBADMSG a malformed one, or
 * more than one; -EPROTONOSUPPORT a newer major version; errors of the
 * reader.
 */
CPRS_API int cprs_rollback_read(CprsReader *reader, CprsRollbackInfo *info,
                                CprsDiag *diag);

/**
 * cprs_rollback_read_arg: argument @index of a ROLLBACK section's argv.
 * @reader: an open reader.
 * @index: below the record's argc.
 * @ret_arg: the NUL-terminated argument, in the arena, on success.
 *
 * Each call checks the whole section again (its CRC, its decoding): to
 * walk every argument, read them once through CprsRollbackInfo.argv.
 *
 * Returns: 0; -EINVAL bad index; errors of cprs_rollback_read().
 */
CPRS_API int cprs_rollback_read_arg(CprsReader *reader, uint32_t index,
                                    const char **ret_arg);

/**
 * cprs_failure_stage_name: "state-load", "incoming", "device", "other".
 * @stage: CPRS_FAILURE_*.
 *
 * Returns: a static string; NULL if unknown.
 */
CPRS_API const char *cprs_failure_stage_name(uint32_t stage);

#ifdef __cplusplus
}
#endif

#endif /* CPRSTATE_H */
