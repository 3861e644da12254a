/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump-main.h - force-included when fuzz/meson.build compiles the
 * cprdump sources for fuzz-dump with -Dmain=cprdump_main: the renamed
 * main() needs a prototype (-Wmissing-prototypes).
 */
#ifndef CPRS_FUZZ_CPRDUMP_MAIN_H
#define CPRS_FUZZ_CPRDUMP_MAIN_H

int cprdump_main(int argc, char **argv);

#endif
