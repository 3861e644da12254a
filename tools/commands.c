/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * commands.c - the list of cprdump's subcommands, --help, and usage
 * errors.  A new subcommand (cmd-<name>.c) adds one line to the list.
 */
#include <string.h>

#include "commands.h"
#include "output.h"

static const Command *const commands[] = {
    &cmd_show,
    &cmd_verify,
    &cmd_diff,
    &cmd_convert,
    &cmd_check_live,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const Command *command_find(const char *name)
{
    size_t i;

    for (i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(commands[i]->name, name)) {
            return commands[i];
        }
    }
    return NULL;
}

const Command *command_default(void)
{
    return &cmd_show;
}

void commands_help(FILE *f)
{
    const char *prog = output_prog();
    const Command *c;
    size_t i;

    for (i = 0; i < N_COMMANDS; i++) {
        c = commands[i];
        fprintf(f, "%s %s %s%s%s %s\n", i ? "      " : "Usage:", prog,
                c == command_default() ? "[" : "", c->name,
                c == command_default() ? "]" : "", c->synopsis);
    }
    fprintf(f, "       %s --help | --version\n"
"\n"
"Inspect the state QEMU carries across a CPR live update: a CPR State\n"
"Arena or QEMU's legacy \"QCPR\" stream, told apart by their first bytes.\n"
"\n"
"SOURCE is a file; - for standard input; /proc/PID/fd/N of a live\n"
"process (read through a new open file description: the owner's offset\n"
"does not move); --pid PID, which finds the state a QEMU holds between\n"
"cpr-exec and migrate-incoming; or an ELF core dump (kernel or gdb\n"
"gcore) of a process that had the state mapped or in memory.\n"
"\n"
"Commands:\n", prog);
    for (i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  %-11s %s\n", commands[i]->name, commands[i]->summary);
    }
    fputs("\n"
"Options:\n"
"  -j, --json            JSON output (schema: spec/cprdump-json.rst)\n"
"  -x, --hex             annotated hex dump, every field named\n"
"  -p, --pid PID         read the state of process PID\n"
"      --core-index N    the Nth state found in a core (from 0)\n"
"  -l, --lenient         read a legacy stream as QEMU does (deviations\n"
"                        become warnings)\n"
"      --records-only    diff: ignore header fields\n"
"  -t, --to FORMAT       convert: arena or legacy\n"
"      --mode MODE       convert: exec or transfer (legacy output)\n"
"      --vfio-form FORM  convert: full, stub or none (legacy output)\n"
"  -f, --force           convert: replace OUTPUT if it exists\n"
"  -q, --quiet           no informational messages on stderr\n"
"  -h, --help            this text\n"
"  -V, --version         versions of cprdump, the library and the formats\n"
"\n"
"Exit status: show, verify, convert: 0 valid, 2 corrupt or invalid,\n"
"3 unsupported version or feature, 1 other errors (usage, I/O).\n"
"diff: 0 identical, 1 different, 2 error.  check-live: 0 consistent,\n"
"1 mismatch found, 2 could not check.\n", f);
}
