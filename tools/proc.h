/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proc.h - live processes through /proc: finding the CPR state a process
 * holds, reading links, and advice when /proc refuses.
 */
#ifndef CPRDUMP_PROC_H
#define CPRDUMP_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "cprstate.h"

#define STATE_LINK "/memfd:" CPRS_EXEC_STATE_NAME
#define ENV_PREFIX CPRS_EXEC_STATE_NAME "="

/* Parse "/proc/PID/fd/N"; false if @path is not of that form. */
bool parse_proc_fd(const char *path, int *ret_pid, int *ret_fd);

/* Report an open()/read() failure of @path with advice. */
void report_io_error(const char *path, int err);

/* Is @link the state memfd's: "/memfd:QEMU_CPR_EXEC_STATE[ (deleted)]"? */
bool is_state_link(const char *link);

/* readlink() into @buf, NUL-terminated; -errno on failure. */
int read_link(const char *path, char *buf, size_t size);

/* A strict decimal fd number, as QEMU should have parsed it. */
int parse_fd_number(const char *s, int *ret);

/* Find the state fd of a live process (--pid); says what it found. */
int pid_find_state(int pid, int *ret_fd);

#endif
