/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump.c - inspect the state QEMU carries across a CPR live update.
 *
 * The dispatcher, and only that: parse the command line (options.c),
 * recognise the subcommand (commands.c; show when none is named), refuse
 * the options it does not take, and run it (cmd-<name>.c).  What the
 * subcommands print, and how, is theirs.
 */
#include <string.h>

#include "commands.h"
#include "options.h"
#include "output.h"

static int print_version(void)
{
    printf("cprdump %s (libcprstate %s), CPR State Arena format %d.%d, "
           "QEMU QCPR stream version 1, JSON output %s\n", cprs_version(),
           cprs_version(), CPRS_FORMAT_VERSION_MAJOR,
           CPRS_FORMAT_VERSION_MINOR, CPRDUMP_JSON_VERSION);
    return CPRDUMP_EXIT_OK;
}

int main(int argc, char **argv)
{
    const Command *cmd = NULL;
    static Options o;
    int bad;

    output_init("cprdump", false);
    bad = options_parse(argc, argv, &o);
    output_init("cprdump", o.quiet);
    if (o.nargs) {
        cmd = command_find(o.args[0]);
    }
    if (cmd) {
        o.args++;
        o.nargs--;
    } else {
        cmd = command_default();
    }
    if (bad) {
        return usage_error(cmd->usage_exit, NULL);
    }
    if (o.help) {
        commands_help(stdout);
        return CPRDUMP_EXIT_OK;
    }
    if (o.version) {
        return print_version();
    }
    if (options_check(&o, cmd->name, cmd->options)) {
        return usage_error(cmd->usage_exit, NULL);
    }
    return cmd->run(&o);
}
