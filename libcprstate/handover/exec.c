/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exec.c - the cpr-exec hand-over (spec 11.1): the state memfd survives
 * exec() as an fd without close-on-exec whose number travels in the
 * environment variable QEMU_CPR_EXEC_STATE, exactly as QEMU passes it.
 *
 * The new image treats that variable and that fd as untrusted: QEMU
 * asserts on a malformed number; here every way it can be wrong is a
 * precise error, and nothing is changed until the state is accepted.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-handover.h"

/* Seals an arena must carry before anyone maps it (spec 8.5). */
#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int cprs_exec_persist(int state_fd, int *ret_fd)
{
    char val[16];
    int fd, ret;

    if (state_fd < 0 || !ret_fd) {
        return -EINVAL;
    }
    /* dup() gives a descriptor without close-on-exec. */
    fd = dup(state_fd);
    if (fd < 0) {
        return -errno;
    }
    snprintf(val, sizeof(val), "%d", fd);
    if (setenv(CPRS_EXEC_STATE_NAME, val, 1) < 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    *ret_fd = fd;
    return 0;
}

/* Does QEMU_CPR_EXEC_STATE name @fd? */
static bool env_names(int fd)
{
    const char *val = getenv(CPRS_EXEC_STATE_NAME);
    char want[16];

    snprintf(want, sizeof(want), "%d", fd);
    return val && !strcmp(val, want);
}

int cprs_exec_unpersist(int fd)
{
    if (fd < 0) {
        return -EINVAL;
    }
    if (env_names(fd)) {
        unsetenv(CPRS_EXEC_STATE_NAME);
    }
    close(fd);
    return 0;
}

/* Strict decimal: digits only, no sign, no space, 0..INT_MAX. */
static int parse_fd(const char *val, int *ret_fd)
{
    long v = 0;
    size_t i;

    if (!val[0] || strlen(val) > 10) {
        return -EINVAL;
    }
    for (i = 0; val[i]; i++) {
        if (val[i] < '0' || val[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (val[i] - '0');
    }
    if (v > INT_MAX || (i > 1 && val[0] == '0')) {
        return -EINVAL;
    }
    *ret_fd = (int)v;
    return 0;
}

int cprs_exec_find(uint32_t flags, CprsDiag *diag, int *ret_fd,
                   int *ret_format)
{
    const char *val = getenv(CPRS_EXEC_STATE_NAME);
    static const char want[] = "/memfd:" CPRS_EXEC_STATE_NAME " (deleted)";
    char path[64], link[sizeof(want) + 8];
    uint8_t magic[CPRS_MAGIC_SIZE];
    struct stat st;
    uint64_t memfd_dev;
    ssize_t n;
    int fd, seals, format;

    if (!ret_fd || !ret_format ||
        (flags & ~CPRS_EXEC_FIND_F_ALLOW_UNSEALED)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (!val) {
        return cprs_diag_set(diag, -ENOENT, 0, -1, -1, "11.1",
                             "QEMU_CPR_EXEC_STATE is not set");
    }
    if (parse_fd(val, &fd)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "11.1",
                             "QEMU_CPR_EXEC_STATE is not a plain decimal "
                             "fd number");
    }
    if (fcntl(fd, F_GETFD) < 0) {
        return cprs_diag_set(diag, -EBADF, 0, -1, -1, "11.1",
                             "QEMU_CPR_EXEC_STATE names an fd that is not "
                             "open");
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    /*
     * The link text alone can be forged by a file of that name: the fd
     * must also be a regular file on the memfds' own mount.
     */
    memfd_dev = cprs_memfd_dev();
    if (strcmp(link, want) || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        !memfd_dev || (uint64_t)st.st_dev != memfd_dev) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.1",
                             "QEMU_CPR_EXEC_STATE names an fd that is not "
                             "the QEMU_CPR_EXEC_STATE memfd");
    }
    /* The inherited offset is at the end of the data: use pread. */
    n = pread(fd, magic, sizeof(magic), 0);
    if (n < 0) {
        return cprs_diag_set(diag, -errno, 0, -1, -1, "11.1",
                             "cannot read the state memfd");
    }
    format = cprs_detect(magic, (size_t)n);
    if (format != CPRS_DETECT_ARENA && format != CPRS_DETECT_LEGACY) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.1",
                             "the state memfd holds neither an arena nor a "
                             "legacy stream");
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (format == CPRS_DETECT_ARENA &&
        !(flags & CPRS_EXEC_FIND_F_ALLOW_UNSEALED) &&
        (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)) {
        return cprs_diag_set(diag, -EPERM, 0, -1, -1, "8.5",
                             "the arena memfd is not sealed against write, "
                             "grow and shrink");
    }
    *ret_fd = fd;
    *ret_format = format;
    return 0;
}

void cprs_exec_release(int fd)
{
    unsetenv(CPRS_EXEC_STATE_NAME);
    if (fd >= 0) {
        close(fd);
    }
}
