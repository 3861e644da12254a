/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * options.h - cprdump's command line: one parser for every subcommand,
 * which records each option it saw, so that a subcommand can refuse the
 * options that do not apply to it instead of ignoring them.
 */
#ifndef CPRDUMP_OPTIONS_H
#define CPRDUMP_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

/* One bit per option, in Options.seen and Command.options. */
enum {
    OPT_JSON = 1u << 0,
    OPT_HEX = 1u << 1,
    OPT_PID = 1u << 2,
    OPT_CORE_INDEX = 1u << 3,
    OPT_LENIENT = 1u << 4,
    OPT_QUIET = 1u << 5,
    OPT_FORCE = 1u << 6,
    OPT_TO = 1u << 7,
    OPT_MODE = 1u << 8,
    OPT_VFIO_FORM = 1u << 9,
    OPT_RECORDS_ONLY = 1u << 10,
    OPT_HEADER = 1u << 11,
    OPT_SECTIONS = 1u << 12,
    OPT_FDS = 1u << 13,
    OPT_RAM = 1u << 14,
    OPT_DEVICES = 1u << 15,
    OPT_MAX_SIZE = 1u << 16,
    OPT_POLICY = 1u << 17,
    OPT__COUNT = 18,
};

/* The selectors of show: which parts of a state to print. */
#define OPT_SELECTORS (OPT_HEADER | OPT_SECTIONS | OPT_FDS | OPT_RAM | \
                       OPT_DEVICES)

/* Process ids given with --pid, at most this many per call. */
#define OPTIONS_MAX_PIDS 4096

typedef struct Options {
    uint32_t seen;          /* OPT_* given on the command line */
    bool help;
    bool version;
    bool json;
    bool hex;
    bool lenient;           /* legacy streams: accept what QEMU accepts */
    bool quiet;             /* no informational lines on stderr */
    bool force;             /* convert: overwrite OUTPUT */
    bool records_only;      /* diff: ignore header fields */
    uint32_t select;        /* show: OPT_SELECTORS given, 0 for all */
    int pids[OPTIONS_MAX_PIDS];     /* --pid, in the order given */
    int npids;
    uint32_t core_index;    /* --core-index: which state in a core */
    const char *to;         /* convert --to */
    uint32_t mode;          /* convert --mode, or 0 */
    uint32_t vfio_form;     /* convert --vfio-form, or 0 */
    uint64_t max_size;      /* --max-size: bytes a source may have */
    uint32_t policy;        /* target --policy: CPRS_POLICY_* */
    int nargs;              /* operands, the subcommand name excluded */
    char **args;
} Options;

/*
 * Parse @argv into @o.  The first operand is left in @o->args for the
 * dispatcher to recognise as a subcommand.  Returns 0, or -1 after a
 * message on stderr (a usage error).
 */
int options_parse(int argc, char **argv, Options *o);

/*
 * Refuse what @cmd does not take: options outside @allowed, --json with
 * --hex, selectors with --hex.  Returns 0 or -1 after a message.
 */
int options_check(const Options *o, const char *cmd, uint32_t allowed);

/*
 * Add the process ids of @arg (separated by commas or white space) to
 * @o->pids.  Returns 0 or -1 after a message.
 */
int options_add_pids(Options *o, const char *arg);

/* Parse a strictly decimal int in [@min, @max]. */
bool parse_int(const char *s, long min, long max, long *ret);

#endif
