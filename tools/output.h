/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output.h - what every part of cprdump prints with: messages on stderr,
 * the buffered report on stdout, exit codes, and the names and escapes of
 * the text output.  The bottom of the tool: output.c calls nothing else
 * of cprdump, and every other file may call it.
 */
#ifndef CPRDUMP_OUTPUT_H
#define CPRDUMP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cprstate.h"

/*
 * Exit codes, one meaning per family of subcommands (cprdump(1), EXIT
 * STATUS).  A verdict code is never used for a usage or I/O error.
 *
 * Inspection (show, verify, convert, list): 0 valid, 1 error (usage,
 * I/O, permission, no state), 2 invalid or corrupt, 3 unsupported
 * version or feature.
 */
enum {
    CPRDUMP_EXIT_OK = 0,
    CPRDUMP_EXIT_ERROR = 1,
    CPRDUMP_EXIT_INVALID = 2,
    CPRDUMP_EXIT_UNSUPPORTED = 3,
};

/* Comparison (diff, check-live): 0 same, 1 different, 2 error. */
enum {
    CPRDUMP_CMP_SAME = 0,
    CPRDUMP_CMP_DIFFERENT = 1,
    CPRDUMP_CMP_ERROR = 2,
};

/* Version of the --json output (spec/cprdump-json.rst). */
#define CPRDUMP_JSON_VERSION "1.2"

/* Set once by main(): the program name and --quiet. */
void output_init(const char *prog, bool quiet);
const char *output_prog(void);

/* Print "cprdump: " and a message on stderr. */
void cprdump_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, unless --quiet. */
void cprdump_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A usage error: the message (when @fmt is not NULL) and a hint on
 * stderr.  Returns @exit_code, the usage code of the subcommand's family.
 */
int usage_error(int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Map a libcprstate error to an inspection exit code. */
int cprdump_exit_code(int err);
/*
 * Several sources: the exit code of the run from those of its sources.
 * An error outranks an invalid state, which outranks an unsupported one.
 */
int cprdump_exit_merge(int a, int b);

/* Write all @len bytes of @buf to @fd; 0 or -errno (errno set too). */
int cprdump_write_all(int fd, const void *buf, size_t len);

/*
 * The report on stdout is assembled apart and written only when complete:
 * a failure never leaves half a report.  It is held in memory up to
 * CPRDUMP_SPOOL_MEMORY bytes, then in an unlinked temporary file in
 * $TMPDIR (else /tmp), so that cprdump's memory does not grow with its
 * output: the hex dump of an arena is 15 to 25 times its size.
 */
#define CPRDUMP_SPOOL_MEMORY ((size_t)8 << 20)

typedef struct Spool Spool;

typedef struct Dump {
    FILE *out;
    int errors;         /* records that failed to decode */
    Spool *spool;       /* what out writes into */
} Dump;

/* Open the report's stream in @d; false (and a message) on failure. */
bool dump_begin(Dump *d);
/* Close it and copy it to stdout; false (and a message) on failure. */
bool dump_end(Dump *d);
/* Close it and drop what it holds. */
void dump_discard(Dump *d);

/*
 * Untrusted text (names, paths, link targets) for a terminal: every byte
 * outside printable ASCII is written \xNN and the backslash \\, so no
 * escape sequence, carriage return or line feed reaches the terminal and
 * no name can forge a line.  The result lives in one of
 * TX_SLOTS rotating static buffers: at most that many tx() results may be
 * used in one printf().
 */
#define TX_SLOTS 6
const char *tx(const char *s);
const char *txn(const char *s, size_t len);

/* Names of flags, forms and errors, shared by the text and JSON output. */
void fd_flags_str(char *buf, size_t size, uint32_t flags);
void ram_flags_str(char *buf, size_t size, uint32_t flags);
const char *legacy_form_name(uint32_t form);
const char *mode_name(uint32_t mode);
const char *errno_name(int err);
/* ISO 8601 UTC time of @ns, or "unknown" for 0. */
void time_str(char *buf, size_t size, uint64_t ns);

#endif
