/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source.h - the states cprdump reads: from a file, standard input,
 * /proc/PID/fd/N, --pid or an ELF core, told apart by content, decoded
 * as an arena or a legacy "QCPR" stream, with uniform record access.
 */
#ifndef CPRDUMP_SOURCE_H
#define CPRDUMP_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "cprstate.h"
#include "inspect.h"
#include "options.h"
#include "output.h"

enum {
    SRC_FILE = 1,
    SRC_STDIN,
    SRC_PROC_FD,        /* /proc/PID/fd/N */
    SRC_PID,            /* --pid PID */
    SRC_CORE,           /* state found in an ELF core */
};

/* A state read from somewhere, decoded. */
typedef struct Source {
    char label[4200];       /* the argument as given, for messages */
    char path[4200];        /* what was opened ("" for stdin) */
    int origin;             /* SRC_* */
    int pid;                /* SRC_PROC_FD, SRC_PID: the process */
    int fd_num;             /* its fd number */
    int format;             /* CPRS_DETECT_ARENA or CPRS_DETECT_LEGACY */
    uint8_t *bytes;         /* the state's bytes (owned) */
    size_t size;
    CprsReader *reader;     /* arena, when it opened */
    CprsLegacy *legacy;     /* legacy, when it decoded (maybe leniently) */
    int err;                /* open/strict-decode error, 0 if none */
    CprsDiag diag;          /* ... and where */
    bool lenient_fallback;  /* strict decode failed; legacy is lenient */
    bool from_core;
    CoreState core;         /* SRC_CORE: where it was */
    char core_path[4200];
    bool dual;              /* a dual stream: bytes hold its arena part */
    uint64_t dual_legacy_size;
    /*
     * An arena read no further than its directory, which did not check
     * out (source.c read_arena_at()): the fault, reported instead of
     * the reader's "truncated".
     */
    int stop_err;
    CprsDiag stop_diag;
} Source;

/* One SOURCE of the command line: a path (or "-"), or a process id. */
typedef struct SourceArg {
    const char *path;       /* NULL for a process */
    int pid;
} SourceArg;

/*
 * The SOURCEs among @o's operands [@first, @first + @count): paths or,
 * with --pid, process ids (every operand is then a process id too, as in
 * "cprdump --pid $(pidof qemu-system-x86_64)"), after those of --pid.
 * *@ret_list is allocated (free it).  Returns how many, or -1 after a
 * message (a usage error).
 */
int source_args(const Options *o, int first, int count,
                SourceArg **ret_list);

/*
 * Load @arg (a path, "-", /proc/PID/fd/N or an ELF core) or, when @arg
 * is NULL, the state that process @pid holds.  Prints a message on
 * failure.  A state that is present but does not open or decode is
 * loaded with @src->err set (the caller decides).
 * Returns 0 or a negative errno.
 */
int source_load(const char *arg, int pid, const Options *o, Source *src);
void source_free(Source *src);

/* Print why @src did not open, decode or verify (@err, @diag), with
 * advice; stderr. */
void source_report(const Source *src, int err, const CprsDiag *diag);

/* Verify a loaded source fully: 0 valid, else a negative errno + diag. */
int source_verify(Source *s, CprsDiag *diag);

/*
 * Fail-safe live update (source-failsafe.c): a QCPR stream that is the
 * first part of a dual stream becomes its arena (1: handled); the
 * rollback record of an arena is checked by source_verify().
 */
int source_decode_dual(Source *src, const Options *o);
int source_verify_rollback(Source *s, CprsDiag *diag);
/*
 * The rollback record of @s (spec/fail-safe.rst F5) into @ri and @diag,
 * both reset first: 0, -ENOENT when there is none (or @s is a stream), or
 * the error of a record that does not decode (@diag says where).
 */
int source_rollback(const Source *s, CprsRollbackInfo *ri, CprsDiag *diag);

/* Uniform record access over both formats. */
uint32_t src_fd_count(const Source *s);
int src_fd_get(const Source *s, uint32_t i, CprsFdInfo *fi);
uint32_t src_vfio_count(const Source *s);
int src_vfio_get(const Source *s, uint32_t i, CprsVfioDeviceInfo *vi);
uint32_t src_mode(const Source *s);

#endif
