/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * inspect.h - what cprdump needs to look inside ELF files: the CPR state
 * in a core dump, the build-id of an executable.  A tools-private static
 * library on libelf and libcprstate's public API: nothing that QEMU links
 * depends on it or on libelf.
 */
#ifndef CPRS_INSPECT_H
#define CPRS_INSPECT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cprstate.h"

/* Does [off, off + len) lie inside [0, total)?  Nothing overflows. */
static inline bool inspect_range_ok(uint64_t total, uint64_t off,
                                    uint64_t len)
{
    return off <= total && len <= total - off;
}

/* Fill @diag (may be NULL) with an offset and a static reason. */
int inspect_fail(CprsDiag *diag, int error, uint64_t offset,
                 const char *reason);

/*
 * Read exactly @len bytes at @off of @fd with pread() (the fd's offset
 * does not move), through EINTR and short reads.  Returns 0, -errno, or
 * -EBADMSG when the file ends first (it shrank, or lied about its size).
 */
int inspect_pread(int fd, void *buf, size_t len, uint64_t off);

/* ---- ELF core dumps (core.c) ------------------------------------------- */

/*
 * Finding the CPR state in an ELF core dump: a kernel core or a gdb
 * "gcore" core of a process that had the state mapped, or held a copy of
 * it in its memory.  The NT_FILE note names the process's file mappings;
 * a mapping of the state memfd ("/memfd:QEMU_CPR_EXEC_STATE", usually
 * followed by " (deleted)") at file offset 0 is read back from the
 * PT_LOAD segment that holds its pages.  Then (unless CORE_F_NO_SCAN)
 * the PT_LOAD data is scanned for the arena magic at 8-byte aligned
 * addresses and for the 8 bytes that start a legacy stream ("QCPR", be32
 * 1).  An arena candidate must have a valid header CRC, and at version 1
 * an arena_size that a reader accepts (spec 3.6: a multiple of 8, at most
 * CPRS_MAX_ARENA_SIZE); a legacy one must decode (leniently, since
 * whatever followed it in memory is in the core too).  Nothing else is
 * validated: open what is found with a reader or the legacy decoder, as
 * any untrusted input.
 *
 * The core is untrusted: headers, notes, counts, offsets and sizes are
 * all bounds-checked; a malformed NT_FILE note is ignored (and flagged)
 * rather than fatal, so that the scan still runs.
 */

/* Default memfd name looked for in NT_FILE: QEMU's state memfd. */
#define CORE_STATE_MEMFD_NAME CPRS_EXEC_STATE_NAME

/* Do not scan PT_LOAD data; use the NT_FILE note only. */
#define CORE_F_NO_SCAN UINT32_C(0x1)

/*
 * The work of one search, for complexity tests (tools/inspect is not in
 * the library's counted build: it counts here).  Each field is added to.
 */
typedef struct CoreWork {
    uint64_t scan_bytes;        /* PT_LOAD bytes searched for a magic */
    uint64_t read_bytes;        /* bytes read from the core file */
    uint64_t crc_bytes;         /* arena header bytes checksummed */
    uint64_t decode_bytes;      /* bytes handed to the legacy decoder */
    uint64_t probes;            /* candidates looked at */
    uint64_t walk_bytes;        /* legacy bytes walked without the decoder */
    uint64_t named;             /* NT_FILE candidates told apart */
    uint64_t note_bytes;        /* PT_NOTE bytes read and walked */
} CoreWork;

typedef struct CoreOpts {
    uint32_t flags;             /* CORE_F_* */
    uint32_t skip;              /* candidates to skip, in search order */
    const char *memfd_name;     /* NULL: CORE_STATE_MEMFD_NAME */
    uint64_t max_scan;          /* PT_LOAD bytes to scan, checked per
                                 * 1 MiB chunk; 0: all */
    CoreWork *work;             /* counters to add to, or NULL */
} CoreOpts;

/* How the state was found (CoreState.found_by). */
enum {
    CORE_FOUND_NT_FILE = 1,    /* a mapping NT_FILE names */
    CORE_FOUND_SCAN = 2,       /* its magic, scanning PT_LOAD data */
    CORE_FOUND__MAX,
};

/* The arena header declares more bytes than the core holds there. */
#define CORE_STATE_F_TRUNCATED    UINT32_C(0x1)
/* The NT_FILE note is malformed; entries from the bad one on are ignored. */
#define CORE_STATE_F_BAD_NT_FILE  UINT32_C(0x2)
/* The core has no NT_FILE note (old kernels, some dumpers). */
#define CORE_STATE_F_NO_NT_FILE   UINT32_C(0x4)

/* Bytes of CoreState.map_name, including the NUL. */
#define CORE_MAP_NAME_MAX 256u

/* Where a state lies in a core file. */
typedef struct CoreState {
    uint32_t format;            /* CPRS_DETECT_ARENA or CPRS_DETECT_LEGACY */
    uint32_t found_by;          /* CORE_FOUND_* */
    uint32_t flags;             /* CORE_STATE_F_* */
    uint32_t reserved;
    uint64_t file_offset;       /* of the state's first byte in the core */
    uint64_t size;              /* bytes of state on file from there */
    uint64_t declared_size;     /* arena_size; legacy: bytes decoded */
    uint64_t vaddr;             /* its address in the dumped process */
    uint64_t map_start;         /* NT_FILE mapping holding it, or 0 */
    uint64_t map_end;
    uint64_t map_offset;        /* file offset of map_start, bytes */
    char map_name[CORE_MAP_NAME_MAX];  /* its path, or "" */
} CoreState;

/**
 * core_find_state: locate a CPR state (arena or legacy) in a core.
 * @core_fd: an ELF core file, read with pread() only (its offset does not
 *           move); borrowed, not closed.  Must be a regular file.
 * @opts: options or NULL.  @opts->skip selects a later candidate: the
 *        search order is the NT_FILE mappings (in note order), then scan
 *        hits by file offset; a scan hit already found through NT_FILE
 *        is not counted twice.
 * @diag: filled on failure (offset into the core, reason), or NULL.
 * @ret_state: filled on success: the file offset and size
 *             of the state's bytes; read them with pread() and open them
 *             with cprs_reader_open_buffer() or cprs_legacy_decode().
 *
 * Memory use is bounded: notes up to 64 MiB, 1 MiB scan chunks (and
 * 4 KiB after each), a legacy candidate decoded in at most 16 MiB.  Time
 * is linear in the size of the core: each byte on file is scanned once
 * (segments that overlap on file are not scanned twice); a legacy
 * candidate is walked (its grammar only: no table, no allocation) in a
 * window that grows only while the verdict needs it, the bytes walked
 * are not searched again, and only a stream the walk accepts is decoded,
 * once; arena candidates share one checksum pass over the bytes (each
 * header's CRC is derived from it by two multiplications), so a core full
 * of headers checksums each byte about once; each named offset is probed
 * once; lookups are binary searches, candidates met twice are found by
 * sorting.  @opts->work, when given, counts that work.
 *
 * Returns: 0; -EINVAL bad arguments, options or a non-regular file;
 * -EBADMSG not an ELF core, bad ELF or program headers, or a file that
 * shrinks while read; -E2BIG more than 2^20 program headers; -ENOENT no
 * (further) state; -ENODATA NT_FILE names the state mapping but the core
 * has none of its pages (the dumper excluded it: see coredump_filter(5))
 * and the scan found nothing; -ENOMEM; errors of fstat() and pread().
 */
int core_find_state(int core_fd, const CoreOpts *opts, CprsDiag *diag,
                    CoreState *ret_state);

/**
 * core_find_state_buffer: as core_find_state(), over memory.
 * @buf: the core file's bytes; untrusted, only read.  libelf gets a
 *       private copy (it may convert headers in place), so this needs
 *       @size more bytes of memory: meant for small cores and fuzzing.
 * @size: bytes at @buf.
 * @opts: options or NULL.
 * @diag: filled on failure, or NULL.
 * @ret_state: as core_find_state(); file_offset is into @buf.
 *
 * Returns: as core_find_state(), without the I/O errors.
 */
int core_find_state_buffer(const void *buf, size_t size,
                           const CoreOpts *opts, CprsDiag *diag,
                           CoreState *ret_state);

/**
 * core_extent: how many bytes of an ELF core to read from a pipe.
 * @buf: the first bytes of the core; untrusted.
 * @len: how many.
 * @ret_need: the bytes that the headers read so far say the file has:
 *            the ELF header, then the program header table, then the end
 *            of the last segment.  Read up to it and ask again until it
 *            no longer grows.
 *
 * Returns: 0; -EBADMSG not an ELF file, or a header that overflows;
 * -E2BIG a program header count in a section header (PN_XNUM).
 */
int core_extent(const void *buf, size_t len, uint64_t *ret_need);

/* Bytes past a legacy stream's end that can change how it decodes. */
#define INSPECT_LEGACY_TAIL 264u

/**
 * inspect_legacy_more: does a legacy decode of a prefix need more bytes?
 * @ret: what cprs_legacy_decode() of the first @len bytes returned.
 * @diag: its diagnostic.
 * @size: on success, the stream's size (CprsLegacyInfo.size).
 * @len: the bytes it was given.
 *
 * A stream has no length field: it ends where its grammar ends.  Reading
 * one from a pipe or locating one in a core, decode a prefix and read on
 * only while this says the verdict could change with more bytes: the
 * decode ran out of bytes (spec L7), or succeeded within
 * INSPECT_LEGACY_TAIL bytes of the end.  Doubling the prefix each time
 * keeps the work proportional to the stream.
 *
 * Returns: true to read more.
 */
bool inspect_legacy_more(int ret, const CprsDiag *diag, uint64_t size,
                         uint64_t len);

/* Which notes elf_notes() hands over, and to what. */
typedef struct InspectNoteWant {
    const char *name;       /* note name, with its NUL */
    uint32_t namesz;        /* its size, NUL included */
    uint32_t type;          /* n_type */
    bool segments_only;     /* PT_NOTE segments only, not SHT_NOTE sections */
    /* One matching note's descriptor (in bounds, untrusted); returns 0
     * for more, 1 to stop, <0 to fail with that error. */
    int (*fn)(const uint8_t *desc, size_t size, void *opaque);
    void *opaque;
} InspectNoteWant;

/**
 * elf_notes: hand each note of an ELF file that @want names to @want->fn.
 * @fd: an open ELF file; read with pread (offset unchanged); borrowed.
 * @want: the name and type wanted, and the callback.
 *
 * PT_NOTE segments first, then (unless @want->segments_only) SHT_NOTE
 * sections, until the callback says stop.  Uses libelf; the file is
 * untrusted: every descriptor is inside its note buffer.  Before libelf
 * sees it, the file must be a regular file with at most 1024 program
 * headers and 65536 sections, their tables inside it; a note segment or
 * section over 1 MiB is skipped, and at most 64 MiB of notes are read.
 *
 * Returns: 0; the callback's error; -EBADMSG not a valid ELF file (or,
 * with segments_only, no program headers) or a note out of bounds;
 * -E2BIG more headers or sections than those limits; -EINVAL; -ENOMEM.
 */
int elf_notes(int fd, const InspectNoteWant *want);

/**
 * elf_build_id: read the GNU build-id note of an ELF file.
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
int elf_build_id(int fd, void *buf, size_t size, size_t *ret_size);

/* ---- libcprstate capability notes (caps.c) ----------------------------- */

/* One capability note (spec/fail-safe.rst F3.3), as libelf read it. */
typedef struct InspectCaps {
    uint32_t desc_size;
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t lib_version;
    uint16_t arena_major;
    uint16_t arena_minor;
    uint64_t arena_incompat;
    uint32_t modes;
    uint32_t legacy_forms;
    uint32_t flags;
    char producer[CPRS_CAPS_PRODUCER_MAX];
} InspectCaps;

/**
 * elf_cprs_caps: the libcprstate capability notes of an ELF file.
 * @fd: an open ELF file; read with pread (offset unchanged); borrowed.
 * @out: up to @max notes, decoded field by field (not validated: the
 *       caller compares them with the library's reading).
 * @max: room at @out.
 * @ret_n: notes found (at most @max), on success; 0 when there is none.
 *
 * Uses libelf on the PT_NOTE segments; the file is untrusted.
 *
 * Returns: 0; -EBADMSG not a valid ELF file or a note out of bounds;
 * -EINVAL; -ENOMEM.
 */
int elf_cprs_caps(int fd, InspectCaps *out, size_t max, size_t *ret_n);

#endif /* CPRS_INSPECT_H */
