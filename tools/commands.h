/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * commands.h - cprdump's subcommands.  Each lives in its own
 * cmd-<name>.c, which defines one Command; commands.c lists them.  A new
 * subcommand is one new file, one line in that list and one in
 * tools/meson.build: the dispatcher (cprdump.c) and --help pick it up.
 */
#ifndef CPRDUMP_COMMANDS_H
#define CPRDUMP_COMMANDS_H

#include <stdint.h>
#include <stdio.h>

#include "options.h"

typedef struct Command {
    const char *name;
    /* Run with the options and operands; returns the exit code. */
    int (*run)(const Options *o);
    uint32_t options;       /* the OPT_* it takes */
    int usage_exit;         /* its family's exit code for a usage error */
    const char *synopsis;   /* for --help, after the name */
    const char *summary;    /* one line for --help */
} Command;

extern const Command cmd_show;
extern const Command cmd_verify;
extern const Command cmd_diff;
extern const Command cmd_convert;
extern const Command cmd_check_live;
extern const Command cmd_list;
extern const Command cmd_target;

/* The subcommand called @name, or NULL. */
const Command *command_find(const char *name);

/* The default subcommand (show). */
const Command *command_default(void);

/* --help. */
void commands_help(FILE *f);

#endif
