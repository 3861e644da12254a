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
extern "C" {
#endif

#ifndef CPRS_API
#define CPRS_API __attribute__((visibility("default")))
#endif

/* ---- Versions ---------------------------------------------------------- */

/* Library version; the format version is CPRS_FORMAT_VERSION_*. */
#define CPRS_VERSION_MAJOR 0
#define CPRS_VERSION_MINOR 1
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

/* Initialise an opts, info or diag struct: CPRS_OPTS(CprsDiag). */
#define CPRS_OPTS(type, ...) ((type){ .sz = sizeof(type), __VA_ARGS__ })

/* ---- Diagnostics ------------------------------------------------------- */

/*
 * Where and why an input was rejected.  Filled by every function that
 * takes one, on failure only.  @offset is a byte offset into the arena (or
 * legacy stream); @section a directory index or -1; @record a record index
 * or -1; @clause the spec clause ("6.2.1") or ""; @reason a static English
 * phrase; @error the negative errno also returned.
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
 * again when compression would not make the payload smaller.
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

/* ---- Reader ------------------------------------------------------------ */

typedef struct CprsReader CprsReader;

/* Do not check a section's CRC when it is first used (cprdump on damage). */
#define CPRS_READER_F_NO_CRC   UINT32_C(0x1)
/* Read an fd with pread() into memory instead of mapping it. */
#define CPRS_READER_F_NO_MMAP  UINT32_C(0x2)

typedef struct CprsReaderOpts {
    size_t sz;
    uint32_t flags;                 /* CPRS_READER_F_* */
    uint32_t max_records;           /* 0: CPRS_MAX_RECORDS; may only lower */
    uint64_t max_arena_size;        /* 0: CPRS_MAX_ARENA_SIZE */
    uint64_t max_payload_size;      /* 0: CPRS_MAX_PAYLOAD_SIZE */
} CprsReaderOpts;

/**
 * cprs_reader_open_buffer: open an arena held in memory.
 * @buf: arena bytes; borrowed, must outlive the reader and not change.
 * @size: bytes at @buf; bytes past the header's arena_size are ignored.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_reader: the new reader, on success.
 *
 * Runs the cheap checks of spec 8.1 (header, header CRC, directory,
 * directory CRC, section placement) in time independent of the arena size.
 * Record contents are checked lazily by the accessors and fully by
 * cprs_reader_verify().  @buf is untrusted.
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
 * @fd: a regular file or memfd (mapped read-only, MAP_PRIVATE) or any
 *      readable fd (read into memory: pread from offset 0 when seekable,
 *      read to EOF otherwise).  Borrowed: not closed, its offset is not
 *      moved when it is seekable.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_reader: the new reader, on success.
 *
 * The file size is checked with fstat() before mapping.  If another
 * process truncates an unsealed file while it is mapped, access raises
 * SIGBUS: map only sealed memfds (F_SEAL_SHRINK) from untrusted owners.
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
 * On success, every accessor of @reader succeeds for every valid index.
 *
 * Returns: 0 valid; -EBADMSG; -E2BIG; -EPROTONOSUPPORT; -ENOMEM.
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
 * section, its CRC.
 *
 * Returns: 0; -EINVAL bad index; -EBADMSG; -ENOMEM (zstd section).
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
 * O(1) through the hash index (spec 6.8); a linear scan if the arena has
 * no index for this section.
 *
 * Returns: 0; -ENOENT not found; -EBADMSG; -EINVAL.
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
 * Returns: 0; -EINVAL; -EBADMSG; -ENOMEM.
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
 * Returns: 0; -EINVAL; -EBADMSG.
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
 * Returns: 0; -EINVAL; -EBADMSG; -ENOMEM.
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
 * Returns: 0; -EINVAL; -EBADMSG; -ENOMEM.
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
 * that decompresses to exactly raw_size bytes (spec 5.3).
 *
 * Returns: 0; -EINVAL; -EBADMSG; -E2BIG over max_payload_size; -ENOMEM;
 * -EPROTONOSUPPORT when built without zstd.
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
 * Like cprs_reader_devstate_data() but keeps nothing in the reader.
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
    uint64_t created_ns;            /* 0: CLOCK_REALTIME at finish */
    uint32_t writer_pid;            /* 0: getpid() */
    uint32_t build_id_size;         /* bytes at build_id, <= 32 */
    const void *build_id;           /* NULL: this executable's, via libelf */
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
 * outside printable ASCII), fd below -1 or unknown flag; -EEXIST (name, id)
 * already added; -E2BIG too many records; -ENOMEM.
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

/* ---- Helpers on live fds and ELF files -------------------------------- */

/**
 * cprs_fd_identify: describe an open fd as a record would at save time.
 * @fd: an open fd of this process.
 * @info: kind, flags, seals, st_mode, dev, ino and size are set; other
 *        fields are left alone.
 *
 * The kind comes from fstat() and the /proc/self/fd link (memfd:, vfio,
 * iommufd, eventfd, tun, pipe, socket, tmpfs files).
 *
 * Returns: 0, or the syscall error.
 */
CPRS_API int cprs_fd_identify(int fd, CprsFdInfo *info);

/**
 * cprs_elf_build_id: read the GNU build-id note of an ELF file.
 * @fd: an open ELF file; read with pread (offset unchanged); borrowed.
 * @buf: destination.
 * @size: bytes at @buf.
 * @ret_size: bytes of the build-id, on success.
 *
 * Uses libelf; the file is untrusted.
 *
 * Returns: 0; -ENOENT no build-id note; -E2BIG build-id longer than
 * @size; -EBADMSG not a valid ELF file; -ENOMEM.
 */
CPRS_API int cprs_elf_build_id(int fd, void *buf, size_t size,
                               size_t *ret_size);

/* @@LEGACY-API@@ (QEMU's QCPR stream; see the legacy section below) */

#ifdef __cplusplus
}
#endif

#endif /* CPRSTATE_H */
