/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-failsafe.h - the fail-safe live update, private (spec/fail-safe.rst):
 * the capability note and the ELF reader that finds it, the dual stream,
 * the rollback record and the arena surgery it needs.  Part of the
 * handover layer.
 */
#ifndef CPRS_FAILSAFE_H
#define CPRS_FAILSAFE_H

#include "cprs-handover.h"

/* ---- Capabilities (caps.c) -------------------------------------------- */

/* The capability note of this library, as emitted (F3): a copy. */
CPRS_HIDDEN void cprs_caps_self(CprsWireCapsNote *ret);

/* Its flags (CPRS_CAPS_F_*): what the load paths accept. */
static inline uint32_t cprs_caps_self_flags(void)
{
    CprsWireCapsNote c;

    cprs_caps_self(&c);
    return cprs_le32_get(&c.flags);
}

/* Decoded capability note (F3.3). */
typedef struct CprsCaps {
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
} CprsCaps;

/*
 * Decode and validate a note descriptor of @size bytes (F3.2, F3.3).
 * Returns 0, -EBADMSG (malformed), -EPROTONOSUPPORT (a newer major).
 */
CPRS_HIDDEN int cprs_caps_decode(const void *desc, size_t size,
                                 CprsCaps *ret_caps, const char **ret_why);

/* ---- ELF files (elfscan.c) --------------------------------------------- */

/* Bytes of an ELF file: an fd read with pread(), or a buffer. */
typedef struct CprsElfSrc {
    int fd;                     /* -1: use buf */
    const uint8_t *buf;
    uint64_t size;
} CprsElfSrc;

/*
 * Read exactly @len bytes at @off of @src: 0; -EBADMSG when they are not
 * all there (past the end, or the file shrank); an errno of pread().
 */
CPRS_HIDDEN int cprs_elf_read(const CprsElfSrc *src, uint64_t off,
                              void *dst, size_t len);

/* Marks of QEMU's own cpr code (F2.4), as CprsElfScan.marks bits. */
#define CPRS_MARK_EXEC_STATE    UINT32_C(0x1)   /* "QEMU_CPR_EXEC_STATE" */
#define CPRS_MARK_VFIO_SUBSEC   UINT32_C(0x2)   /* "CprState/vfio devices" */
#define CPRS_MARK_VFIO_DEVICE   UINT32_C(0x4)   /* "cpr vfio device" */
#define CPRS_MARK_CPR_FD        UINT32_C(0x8)   /* "cpr fd" */
#define CPRS_MARK_OURS          UINT32_C(0x10)  /* "libcprstate": not QEMU */
#define CPRS_MARK_ALL           UINT32_C(0x1f)
/* What a stock QEMU 10.2 carries, at least (F2.4). */
#define CPRS_MARK_STOCK         (CPRS_MARK_EXEC_STATE | \
                                 CPRS_MARK_VFIO_SUBSEC | CPRS_MARK_CPR_FD)

/* What the scan found (CprsElfScan.flags). */
#define CPRS_ELF_F_ELF          UINT32_C(0x001)  /* a well-formed header */
#define CPRS_ELF_F_FOREIGN      UINT32_C(0x002)  /* not this host's kind */
#define CPRS_ELF_F_MALFORMED    UINT32_C(0x004)  /* headers out of bounds */
#define CPRS_ELF_F_DYNAMIC      UINT32_C(0x008)  /* has PT_DYNAMIC */
#define CPRS_ELF_F_NOTE         UINT32_C(0x010)  /* a valid caps note */
#define CPRS_ELF_F_BAD_NOTE     UINT32_C(0x020)  /* a malformed caps note */
#define CPRS_ELF_F_NEWER_NOTE   UINT32_C(0x040)  /* a note of a newer major */
#define CPRS_ELF_F_CONFLICT     UINT32_C(0x080)  /* notes of other arenas */
#define CPRS_ELF_F_NEEDS_LIB    UINT32_C(0x100)  /* DT_NEEDED libcprstate */
#define CPRS_ELF_F_SCAN_CUT     UINT32_C(0x200)  /* too big to scan whole */

/* Names of at most this many bytes are read from the dynamic section. */
#define CPRS_ELF_STR_MAX        4096u

typedef struct CprsElfScan {
    uint32_t flags;             /* CPRS_ELF_F_* */
    uint32_t marks;             /* CPRS_MARK_* */
    uint8_t ei_class;
    uint8_t ei_data;
    uint16_t machine;
    uint32_t n_notes;           /* valid caps notes, merged into caps */
    CprsCaps caps;              /* their intersection */
    char needed[256];           /* the libcprstate soname needed, or "" */
    char rpath[CPRS_ELF_STR_MAX];
    char runpath[CPRS_ELF_STR_MAX];
    const char *why;            /* static: what was wrong, or NULL */
} CprsElfScan;

/* Do not look for the marks (the caller only wants notes or headers). */
#define CPRS_ELF_SCAN_NO_MARKS  UINT32_C(0x1)

/*
 * Read what F2 needs from an ELF file: its header, its program headers,
 * the caps notes of its PT_NOTE segments, DT_NEEDED, DT_RPATH and
 * DT_RUNPATH of its PT_DYNAMIC, and (unless asked not to, or a note was
 * found) the marks in its non-executable PT_LOAD segments.  Every size
 * and offset is checked; each byte of the file is read at most once per
 * kind of segment (overlapping PT_LOAD ranges merged, overlapping
 * PT_NOTE segments malformed), and at most CPRS_TARGET_MAX_SCAN bytes
 * are scanned, a larger total refused before any is read.  Malformed input is reported
 * in @ret->flags, never as a failure.
 *
 * Returns 0 (see @ret->flags), -ENOMEM, or an I/O error of pread().
 */
CPRS_HIDDEN int cprs_elf_scan(const CprsElfSrc *src, uint32_t flags,
                              CprsElfScan *ret);

/*
 * Bytes of PT_LOAD data a scan looks at, at most (F2.4): three times a
 * whole QEMU 10.2 binary (82 MB unstripped).
 */
#define CPRS_TARGET_MAX_SCAN    (UINT64_C(256) << 20)

/* ---- Dual stream (dual.c) ---------------------------------------------- */

/*
 * Lay out a dual stream: @legacy (a full-form exec QCPR stream), zero
 * padding to 8, @arena, the trailer (F4.2).  malloc()ed, 8-aligned.
 */
CPRS_HIDDEN int cprs_dual_compose(const void *legacy, size_t legacy_size,
                                  const void *arena, size_t arena_size,
                                  void **ret_buf, size_t *ret_size);

/* Is there a dual trailer at the end of these bytes (magic only)? */
CPRS_HIDDEN bool cprs_dual_probe(const void *buf, size_t size);

/* ---- Rollback record (rollback-record.c) -------------------------------- */

/* The rollback record of an arena, decoded and validated (F5). */
typedef struct CprsRollbackRec {
    uint32_t flags;
    uint32_t argc;
    uint64_t generation;
    uint64_t armed_ns;
    uint32_t pid;
    int32_t exe_fd;
    uint64_t exe_dev;
    uint64_t exe_ino;
    uint64_t exe_size;
    uint32_t exe_mode;
    uint64_t state_dev;
    uint64_t state_ino;
    uint32_t failure_stage;
    uint32_t failure_errno;
    uint64_t failed_ns;
    uint64_t failed_dev;
    uint64_t failed_ino;
    const char *failure_message;    /* into the section bytes */
    const char *failed_exe;
    const char *exe_path;
    const char *argv;               /* argc strings, one after the other */
    uint32_t argv_size;
    uint64_t section_offset;        /* of the section in the arena */
    uint64_t section_size;
} CprsRollbackRec;

/*
 * Decode a ROLLBACK section's bytes (F5.2 to F5.5); @base_offset is added
 * to diagnostic offsets.  Pointers in @ret point into @buf.
 */
CPRS_HIDDEN int cprs_rollback_decode(const void *buf, size_t size,
                                     uint64_t base_offset, CprsDiag *diag,
                                     CprsRollbackRec *ret);

/*
 * The ROLLBACK section of an open reader, decoded; -ENOENT if none.  The
 * section must be unique, uncompressed, optional (F5.1).
 */
CPRS_HIDDEN int cprs_rollback_find_section(CprsReader *r, CprsDiag *diag,
                                           CprsRollbackRec *ret);

/* Encode @r (its strings: exe_path, argv of argv_size bytes), F5.2. */
CPRS_HIDDEN int cprs_rollback_encode(const CprsRollbackRec *r,
                                     uint8_t **ret_buf, size_t *ret_size);

/* A fixed text field: printable ASCII kept, the rest '?', NUL, zeros. */
CPRS_HIDDEN void cprs_text_set(char *dst, size_t size, const char *src);

/* Recompute the directory and header CRCs of a laid-out arena. */
CPRS_HIDDEN void cprs_arena_fix_crcs(uint8_t *buf);

/* The public view of a decoded record. */
CPRS_HIDDEN void cprs_rollback_rec_info(const CprsRollbackRec *r,
                                        CprsRollbackInfo *ri);

/*
 * Free a rollback handle without closing its fds or touching the
 * environment (tests: two handles of one record in one process).
 */
CPRS_HIDDEN void cprs_rollback_forget(CprsRollback *rb);

/*
 * Append a section of @type with @flags holding @data to the finished
 * arena @arena (as the writer lays it out: directory right after the
 * header).  Section CRCs are kept, offsets moved, the directory and
 * header CRCs recomputed.  malloc()ed result.
 */
CPRS_HIDDEN int cprs_arena_append_section(const void *arena, size_t size,
                                          uint32_t type, uint32_t flags,
                                          const void *data, size_t len,
                                          void **ret_buf, size_t *ret_size);

/* ---- Hooks of the state's save and load paths ------------------------- */

/* What a state keeps of a rollback record it was loaded with (F5.7). */
typedef struct CprsStateRollback {
    uint32_t flags;
    uint32_t stage;
    int32_t error;              /* -errno */
    uint64_t failed_ns;
    char message[CPRS_ROLLBACK_TEXT_MAX];
    char failed_exe[CPRS_ROLLBACK_TEXT_MAX];
} CprsStateRollback;

/*
 * After an arena (or the arena of a dual stream) was loaded for @mode:
 * its ROLLBACK section, if any, must be a rolled-back record of a
 * cpr-exec state (F5.7); *@ret gets a copy (NULL when there is none).
 */
CPRS_HIDDEN int cprs_state_rollback_load(CprsReader *r, uint32_t mode,
                                         CprsDiag *diag,
                                         CprsStateRollback **ret);

/*
 * The cpr-exec arena a rollback keeps of @s (state.c): what
 * cprs_state_save_exec() would write, with fd identities.
 */
CPRS_HIDDEN int cprs_state_rollback_copy(CprsState *s, const char *producer,
                                         CprsDiag *diag, void **ret_buf,
                                         size_t *ret_size);

/*
 * A dual stream in the cpr-exec memfd @fd (F4.3): -ENOENT when @fd holds
 * no dual trailer.  Otherwise the memfd must be sealed, the trailer and
 * the arena header it points at are checked, and only then is it read
 * whole into *@ret_buf (8-aligned; the caller frees it after the reader), the
 * QCPR part decoded strictly, the arena opened and verified in
 * *@ret_reader, and the two compared.
 */
CPRS_HIDDEN int cprs_dual_load_fd(int fd, const CprsReaderOpts *ro,
                                  CprsDiag *diag, void **ret_buf,
                                  CprsReader **ret_reader);

/* An internal save flag: store nothing compressed (plan F6.2). */
#define CPRS_SAVE_F__NO_ZSTD UINT32_C(0x80000000)

/*
 * spec F6.4: the format a save writes, from @o's flags or its plan, for
 * @mode and a state holding @si.  With a plan, @o gets its vfio form
 * and CPRS_SAVE_F__NO_ZSTD; a state that no longer fits it is refused.
 */
CPRS_HIDDEN int cprs_save_format(CprsSaveOpts *o, uint32_t mode,
                                 const CprsStateInfo *si, CprsDiag *diag,
                                 uint32_t *ret_format);

#endif /* CPRS_FAILSAFE_H */
