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
    &cmd_list,
    &cmd_target,
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
"SOURCE is a file; - for standard input (the only pipe cprdump reads);\n"
"/proc/PID/fd/N of a live process (read through a new open file\n"
"description: the owner's offset does not move); or an ELF core dump\n"
"(kernel or gdb gcore) of a process that had the state mapped or in\n"
"memory.  With --pid, every SOURCE is a process id instead, as in\n"
"cprdump --pid $(pidof qemu-system-x86_64), and the state a QEMU holds\n"
"between cpr-exec and migrate-incoming is found in /proc.\n"
"\n"
"Commands:\n", prog);
    for (i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  %-11s %s\n", commands[i]->name, commands[i]->summary);
    }
    fputs("\n"
"Options (each subcommand refuses those it does not take):\n"
"  -j, --json            JSON output (schema: spec/cprdump-json.rst)\n"
"  -x, --hex             show: annotated hex dump, every field named\n"
"      --header          show: the header (a stream's properties)\n"
"      --sections        show: the section directory\n"
"      --fds             show: the fd records\n"
"      --ram             show: the RAM blocks and their GPA ranges\n"
"      --devices         show: vfio devices and device state\n"
"                        (none of these: all of them)\n"
"  -p, --pid PID[,PID]   the SOURCEs are process ids (repeatable; every\n"
"                        operand is then a process id too)\n"
"      --core-index N    the Nth state found in a core (from 0)\n"
"  -l, --lenient         read a legacy stream as QEMU does (deviations\n"
"                        become warnings)\n"
"      --max-size SIZE   read no SOURCE larger (K, M, G, T; default and\n"
"                        most: 16G, the format's limit)\n"
"      --records-only    diff: ignore header fields\n"
"  -t, --to FORMAT       convert: arena or legacy\n"
"      --mode MODE       convert --to legacy, target: exec or transfer\n"
"      --vfio-form FORM  convert --to legacy: full, stub or none\n"
"  -f, --force           convert: replace OUTPUT if it exists\n"
"      --policy P        target: auto, arena, legacy, dual or strict\n"
"  -q, --quiet           no informational messages on stderr\n"
"  -h, --help            this text\n"
"  -V, --version         versions of cprdump, the library and the formats\n"
"\n"
"Text output escapes every byte of a name or path outside printable\n"
"ASCII as \\xNN (and the backslash as \\\\).  A state that cannot be\n"
"read or does not open puts nothing on stdout; one that opens but fails\n"
"verification is shown, ending in \"Verification: FAILED\".\n"
"\n"
"Exit status, one meaning per family:\n"
"  show, verify, convert, list: 0 valid, 1 error (usage, I/O,\n"
"  permission, no state), 2 invalid or corrupt, 3 unsupported version\n"
"  or feature; with several SOURCEs the worst (1 > 2 > 3 > 0).\n"
"  diff, check-live: 0 identical or consistent, 1 different or a\n"
"  mismatch, 2 error (usage, I/O, a state that cannot be compared).\n"
"  target: 0 loadable, 3 refused, 4 uncertain, 2 STATE corrupt,\n"
"  1 other errors.\n",
          f);
}
