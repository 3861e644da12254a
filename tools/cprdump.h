/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump.h - shared declarations of the cprdump tool.  cprdump uses only
 * the public libcprstate API.
 */
#ifndef CPRDUMP_H
#define CPRDUMP_H

#include <stdbool.h>
#include <stdio.h>

#include "cprstate.h"

/* Exit codes (spec 8.3). */
enum {
    CPRDUMP_EXIT_OK = 0,
    CPRDUMP_EXIT_OTHER = 1,
    CPRDUMP_EXIT_CORRUPT = 2,
    CPRDUMP_EXIT_UNSUPPORTED = 3,
};

/* Where output goes: a memory stream, written out only on success. */
typedef struct Dump {
    FILE *out;
    int errors;         /* records that failed to decode */
} Dump;

/* Map a libcprstate error to a verify exit code. */
int cprdump_exit_code(int err);

/* Text sections of "cprdump show" (dump-*.c). */
void dump_header(Dump *d, CprsReader *r);
void dump_sections(Dump *d, CprsReader *r);
void dump_fds(Dump *d, CprsReader *r);
void dump_ramblocks(Dump *d, CprsReader *r);
void dump_devices(Dump *d, CprsReader *r);

/* Print a record that failed to decode, with the reader's diagnostic. */
void dump_record_error(Dump *d, CprsReader *r, const char *what,
                       uint32_t index, int err);

#endif
