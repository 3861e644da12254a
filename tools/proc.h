/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proc.h - live processes through /proc: finding the CPR state a process
 * holds, reading links, and advice when /proc refuses.
 */
#ifndef CPRDUMP_PROC_H
#define CPRDUMP_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "cprstate.h"

#define STATE_LINK "/memfd:" CPRS_EXEC_STATE_NAME
#define ENV_PREFIX CPRS_EXEC_STATE_NAME "="

/* Parse "/proc/PID/fd/N"; false if @path is not of that form. */
bool parse_proc_fd(const char *path, int *ret_pid, int *ret_fd);

/*
 * Open @path for reading only if it is a regular file (a memfd) or a
 * block device, deciding by what it is before any open that could act on
 * it: an O_PATH open (which opens no FIFO, terminal or device), fstat(),
 * then, for those two kinds only, a new open through /proc/self/fd/N of
 * that very file (dev and inode checked again).  A FIFO's writer is not
 * released, a terminal's input not taken, /dev/ptmx makes no pair.
 * Returns 0 with *@ret_fd (O_RDONLY, O_NONBLOCK, close-on-exec) and
 * *@ret_st; 1 if it is another kind (*@ret_st says which; nothing is
 * open); or -errno of the open (nothing reported).
 */
int open_regular(const char *path, int *ret_fd, struct stat *ret_st);

/* "pipe", "socket", "character device", "directory"... for messages. */
const char *file_kind(mode_t mode);

/* Report an open()/read() failure of @path with advice. */
void report_io_error(const char *path, int err);

/* Is @link the state memfd's: "/memfd:QEMU_CPR_EXEC_STATE[ (deleted)]"? */
bool is_state_link(const char *link);

/* readlink() into @buf, NUL-terminated; -errno on failure. */
int read_link(const char *path, char *buf, size_t size);

/* A strict decimal fd number, as QEMU should have parsed it. */
int parse_fd_number(const char *s, int *ret);

/* The CPR state a process holds, as /proc shows it. */
typedef struct ProcState {
    int pid;
    int fd;                 /* the state fd QEMU would use, or -1 */
    int n_links;            /* fds that link to the state memfd */
    int env_ret;            /* QEMU_CPR_EXEC_STATE: 1 set, 0 not, < 0 */
    int env_fd;             /* ... the fd it names, or -1 */
    bool env_is_state;      /* ... and that fd is the state memfd */
    char env_text[64];      /* its value, raw */
    char link[4096];        /* the state fd's link, raw */
} ProcState;

/*
 * Find the state of process @pid without a word and without opening any
 * of its fds: the fd whose link is the state memfd's (the one that
 * QEMU_CPR_EXEC_STATE names when it is one of them).  Returns 0, -ESRCH
 * no such process, -ENOENT no state, or the errno of opening /proc/PID/fd
 * (-EACCES without ptrace access); @ps is filled as far as it got.
 */
int proc_find_state(int pid, ProcState *ps);

/* The same for --pid: says what it found, or why not, on stderr. */
int pid_find_state(int pid, int *ret_fd);

#endif
