/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump.h - shared declarations of the cprdump tool.  cprdump uses only
 * the public libcprstate API (cprstate.h, cprs-format.h): where it needs
 * more, the API grows.
 */
#ifndef CPRDUMP_H
#define CPRDUMP_H

#include <stdbool.h>
#include <stdio.h>

#include "cprstate.h"
#include "inspect.h"

/*
 * Exit codes.  show, verify, convert: 0 valid, 2 corrupt or invalid,
 * 3 unsupported version or feature, 1 anything else (usage, I/O).
 * diff: 0 identical, 1 different, 2 error.  check-live: 0 consistent,
 * 1 mismatch, 2 could not check.
 */
enum {
    CPRDUMP_EXIT_OK = 0,
    CPRDUMP_EXIT_OTHER = 1,
    CPRDUMP_EXIT_CORRUPT = 2,
    CPRDUMP_EXIT_UNSUPPORTED = 3,
};
enum {
    CPRDUMP_DIFF_SAME = 0,
    CPRDUMP_DIFF_DIFFERENT = 1,
    CPRDUMP_DIFF_ERROR = 2,
};

/* Version of the --json output (spec/cprdump-json.rst). */
#define CPRDUMP_JSON_VERSION "1.0"

/* Where output goes: a memory stream, written out only on success. */
typedef struct Dump {
    FILE *out;
    int errors;         /* records that failed to decode */
} Dump;

/* Global options. */
typedef struct Options {
    bool json;
    bool hex;
    bool lenient;       /* legacy streams: accept what QEMU accepts */
    bool quiet;         /* no informational lines on stderr */
    bool force;         /* convert: overwrite OUTPUT */
    bool records_only;  /* diff: ignore header fields */
    int pid;            /* --pid, or -1 */
    uint32_t core_index;    /* --core-index: which state in a core */
    const char *to;     /* convert --to */
    uint32_t mode;      /* convert --mode, or 0 */
    uint32_t vfio_form; /* convert --vfio-form, or 0 */
} Options;

extern const char *cprdump_prog;

/* Map a libcprstate error to a show/verify/convert exit code. */
int cprdump_exit_code(int err);

/* Print "cprdump: " and a message on stderr. */
void cprdump_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, unless --quiet. */
void cprdump_note(const Options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Open a memory stream into @d; false (and a message) on failure. */
bool dump_begin(Dump *d, char **text, size_t *len);
/* Close it and copy it to stdout; false (and a message) on failure. */
bool dump_end(Dump *d, char **text, size_t *len);

/* ---- Sources (source.c) ------------------------------------------------ */

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
    CoreState core;     /* SRC_CORE: where it was */
    char core_path[4200];
} Source;

/*
 * Load @arg (a path, "-", /proc/PID/fd/N or an ELF core) or, when
 * @o->pid >= 0 and @arg is NULL, the state of that process.  Prints a
 * message on failure.  A state that is present but does not open or
 * decode is loaded with @src->err set (the caller decides).
 * Returns 0 or a negative errno.
 */
int source_load(const char *arg, const Options *o, Source *src);
void source_free(Source *src);

/* Print why @src did not open/decode, with advice; stderr. */
void source_report(const Source *src);

/* Find the state fd of a live process (--pid); prints what it found. */
int pid_find_state(int pid, const Options *o, int *ret_fd);

/* Report an open()/read() failure of @path with advice. */
void report_io_error(const char *path, int err);

/* Uniform record access over both formats. */
uint32_t src_fd_count(const Source *s);
int src_fd_get(const Source *s, uint32_t i, CprsFdInfo *fi);
uint32_t src_vfio_count(const Source *s);
int src_vfio_get(const Source *s, uint32_t i, CprsVfioDeviceInfo *vi);
uint32_t src_mode(const Source *s);

/* ---- Text (dump-*.c) --------------------------------------------------- */

void dump_header(Dump *d, CprsReader *r);
void dump_sections(Dump *d, CprsReader *r);
void dump_fds(Dump *d, CprsReader *r);
void dump_ramblocks(Dump *d, CprsReader *r);
void dump_devices(Dump *d, CprsReader *r);
void dump_legacy(Dump *d, const Source *s);

/* Print a record that failed to decode, with the reader's diagnostic. */
void dump_record_error(Dump *d, CprsReader *r, const char *what,
                       uint32_t index, int err);

/* Flag letters and names. */
void fd_flags_str(char *buf, size_t size, uint32_t flags);
void ram_flags_str(char *buf, size_t size, uint32_t flags);
const char *legacy_form_name(uint32_t form);
/* ISO 8601 UTC time of @ns, or "unknown" for 0. */
void time_str(char *buf, size_t size, uint64_t ns);

/* ---- JSON (json.c) ----------------------------------------------------- */

typedef struct Json {
    FILE *out;
    int depth;
    bool first;         /* no member yet at this depth */
} Json;

void json_begin(Json *j, FILE *out);
void json_end(Json *j);
void json_obj(Json *j, const char *key);        /* key NULL in arrays */
void json_obj_end(Json *j);
void json_arr(Json *j, const char *key);
void json_arr_end(Json *j);
void json_str(Json *j, const char *key, const char *v);
void json_strn(Json *j, const char *key, const char *v, size_t len);
void json_u64(Json *j, const char *key, uint64_t v);
void json_i64(Json *j, const char *key, int64_t v);
void json_bool(Json *j, const char *key, bool v);
void json_null(Json *j, const char *key);
/* Lowercase hex string of @len bytes. */
void json_hex(Json *j, const char *key, const uint8_t *v, size_t len);

/* Pieces shared by show, verify, diff and check-live. */
void json_preamble(Json *j, const char *command);
void json_source(Json *j, const char *key, const Source *s);
void json_diag(Json *j, const char *key, int err, const CprsDiag *diag);
void json_fd(Json *j, const Source *s, uint32_t index, const CprsFdInfo *fi);
void json_ramblock(Json *j, CprsReader *r, uint32_t index,
                   const CprsRamBlockInfo *bi);
void json_vfio(Json *j, const Source *s, uint32_t index,
               const CprsVfioDeviceInfo *vi);
void json_devstate(Json *j, const CprsDevStateInfo *di);

/* "cprdump show --json". */
void json_show(Dump *d, Source *s, int verify_err, const CprsDiag *diag);

/* ---- Annotated hex dump (hexdump.c) ------------------------------------ */

void hex_dump(Dump *d, const Source *s);

/* ---- Commands ---------------------------------------------------------- */

int cmd_diff(const Options *o, const char *a, const char *b);
int cmd_convert(const Options *o, const char *in, const char *out);
int cmd_check_live(const Options *o, int pid);

/* Verify a loaded source fully: 0 valid, else a negative errno + diag. */
int source_verify(Source *s, CprsDiag *diag);

#endif
