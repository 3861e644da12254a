/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proc.c - live processes seen through /proc: the state fd a QEMU holds
 * between cpr-exec and migrate-incoming (the fd whose link is
 * memfd:QEMU_CPR_EXEC_STATE, or the number in QEMU_CPR_EXEC_STATE in its
 * environment), /proc paths, and advice on errors opening them.
 *
 * Nothing here disturbs a process: links are read with readlink(), the
 * environment as text; no fd of the process is opened.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "proc.h"

/* Parse "/proc/PID/fd/N"; false if @path is not of that form. */
bool parse_proc_fd(const char *path, int *ret_pid, int *ret_fd)
{
    char tail;
    int pid, fd;

    if (sscanf(path, "/proc/%d/fd/%d%c", &pid, &fd, &tail) != 2 ||
        pid <= 0 || fd < 0) {
        return false;
    }
    *ret_pid = pid;
    *ret_fd = fd;
    return true;
}

int open_regular(const char *path, int *ret_fd, struct stat *ret_st)
{
    char self[64];
    struct stat st;
    int pfd, fd, ret;

    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        return -errno;
    }
    if (fstat(pfd, ret_st) < 0) {
        ret = -errno;
        close(pfd);
        return ret;
    }
    if (!S_ISREG(ret_st->st_mode) && !S_ISBLK(ret_st->st_mode)) {
        close(pfd);
        return 1;
    }
    snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
    fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    ret = fd < 0 ? -errno : 0;
    close(pfd);
    if (ret) {
        return ret;
    }
    if (fstat(fd, &st) < 0 || st.st_dev != ret_st->st_dev ||
        st.st_ino != ret_st->st_ino ||
        (st.st_mode & S_IFMT) != (ret_st->st_mode & S_IFMT)) {
        close(fd);
        return -ESTALE;     /* not the file we looked at */
    }
    *ret_st = st;
    *ret_fd = fd;
    return 0;
}

const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
        return "pipe";
    case S_IFSOCK:
        return "socket";
    case S_IFCHR:
        return "character device";
    case S_IFDIR:
        return "directory";
    case S_IFLNK:
        return "symbolic link";
    case S_IFBLK:
        return "block device";
    case S_IFREG:
        return "regular file";
    default:
        return "special file (an eventfd, timerfd, epoll or the like)";
    }
}

void report_io_error(const char *raw, int err)
{
    const char *path = tx(raw);
    char dir[64];
    int pid = 0, fd = -1;

    if (parse_proc_fd(raw, &pid, &fd) ||
        sscanf(raw, "/proc/%d/", &pid) == 1) {
        if (err == -EACCES || err == -EPERM) {
            cprdump_err("cannot open %s: permission denied — you need "
                        "ptrace access to %d: run as the same user, or "
                        "with CAP_SYS_PTRACE (e.g. sudo)", path, pid);
            return;
        }
        snprintf(dir, sizeof(dir), "/proc/%d", pid);
        if (err == -ENOENT && access(dir, F_OK)) {
            cprdump_err("cannot open %s: there is no process %d (has it "
                        "exited?)", path, pid);
            return;
        }
        if (err == -ENOENT) {
            cprdump_err("cannot open %s: process %d has no fd %d (QEMU "
                        "closes its state fd once migrate-incoming "
                        "starts; try --pid %d)", path, pid, fd, pid);
            return;
        }
    }
    switch (err) {
    case -EACCES:
    case -EPERM:
        cprdump_err("cannot open %s: permission denied — you need read "
                    "permission on it", path);
        break;
    case -ENOENT:
        cprdump_err("cannot open %s: no such file or directory", path);
        break;
    case -ENXIO:
        cprdump_err("cannot open %s: no device or address behind it (a "
                    "socket, or a device that is gone)", path);
        break;
    case -ESTALE:
        cprdump_err("cannot open %s: it changed while it was opened", path);
        break;
    case -EISDIR:
        cprdump_err("%s is a directory: give the state file itself", path);
        break;
    case -E2BIG:
        cprdump_err("%s: larger than any CPR state (%" PRIu64 " bytes at "
                    "most)", path, (uint64_t)CPRS_MAX_ARENA_SIZE);
        break;
    default:
        cprdump_err("%s: %s", path, strerror(-err));
        break;
    }
}
/* Bytes of /proc/PID/environ we read; the kernel allows far less. */
#define ENVIRON_MAX (16u << 20)

bool is_state_link(const char *link)
{
    size_t n = strlen(STATE_LINK);

    return !strncmp(link, STATE_LINK, n) &&
           (!link[n] || !strcmp(link + n, " (deleted)"));
}

/* readlink() into @buf, NUL-terminated; -errno on failure. */
int read_link(const char *path, char *buf, size_t size)
{
    ssize_t n = readlink(path, buf, size - 1);

    if (n < 0) {
        return -errno;
    }
    buf[n] = '\0';
    return 0;
}

/* A strict decimal fd number, as QEMU should have parsed it. */
int parse_fd_number(const char *s, int *ret)
{
    unsigned long v = 0;
    const char *p;

    if (!*s) {
        return -EINVAL;
    }
    for (p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > INT_MAX) {
            return -ERANGE;
        }
    }
    *ret = (int)v;
    return 0;
}

/*
 * QEMU_CPR_EXEC_STATE from /proc/PID/environ: the environment the process
 * was exec()ed with, which is what a new QEMU got from the old one (it
 * unsets the variable later, but /proc keeps the original block).
 * Returns 1 found, 0 absent, <0 error; *@ret_text gets the raw value.
 */
static int env_state_fd(int pid, int *ret_fd, char *ret_text, size_t size)
{
    char path[64], *buf, *p, *end;
    size_t len = 0;
    ssize_t n;
    int fd, ret = 0;

    snprintf(path, sizeof(path), "/proc/%d/environ", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    buf = malloc(ENVIRON_MAX + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (len < ENVIRON_MAX) {
        n = read(fd, buf + len, ENVIRON_MAX - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ret = -errno;
            break;
        }
        if (!n) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    for (p = buf; !ret && p < buf + len; p = end + 1) {
        end = p + strlen(p);
        if (!strncmp(p, ENV_PREFIX, strlen(ENV_PREFIX))) {
            p += strlen(ENV_PREFIX);
            snprintf(ret_text, size, "%s", p);
            ret = parse_fd_number(p, ret_fd) ? -EINVAL : 1;
            break;
        }
    }
    free(buf);
    return ret;
}

int proc_find_state(int pid, ProcState *ps)
{
    char path[64], link[PATH_MAX];
    struct dirent *de;
    DIR *dir;
    int fd, ret;

    memset(ps, 0, sizeof(*ps));
    ps->pid = pid;
    ps->fd = -1;
    ps->env_fd = -1;
    snprintf(path, sizeof(path), "/proc/%d", pid);
    if (pid <= 0 || access(path, F_OK)) {
        return -ESRCH;
    }
    ps->env_ret = env_state_fd(pid, &ps->env_fd, ps->env_text,
                               sizeof(ps->env_text));
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    dir = opendir(path);
    if (!dir) {
        return -errno;
    }
    /* Links only: no fd of the process is opened here. */
    while ((de = readdir(dir)) != NULL) {
        if (parse_fd_number(de->d_name, &fd)) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        if (read_link(path, link, sizeof(link)) || !is_state_link(link)) {
            continue;
        }
        ps->n_links++;
        if (fd == ps->env_fd) {
            ps->env_is_state = true;
        }
        if (ps->fd < 0 || fd < ps->fd) {
            ps->fd = fd;
        }
    }
    closedir(dir);
    if (ps->fd < 0) {
        return -ENOENT;
    }
    /* The fd QEMU would use: the one its environment names. */
    if (ps->env_is_state) {
        ps->fd = ps->env_fd;
    }
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, ps->fd);
    ret = read_link(path, ps->link, sizeof(ps->link));
    if (ret) {
        snprintf(ps->link, sizeof(ps->link), "%s", STATE_LINK);
    }
    return 0;
}

/* What the environment of @ps says, when it does not name the state. */
static void note_env(const ProcState *ps)
{
    char path[64], link[PATH_MAX];

    if (ps->env_ret == -EINVAL) {
        cprdump_note("pid %d: %s%s in its environment is not a valid fd "
                     "number (QEMU would abort on it)", ps->pid, ENV_PREFIX,
                     tx(ps->env_text));
    } else if (ps->env_ret < 0) {
        cprdump_note("pid %d: cannot read its environment: %s", ps->pid,
                     strerror(-ps->env_ret));
    } else if (ps->env_ret == 1 && !ps->env_is_state) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", ps->pid, ps->env_fd);
        if (read_link(path, link, sizeof(link))) {
            cprdump_note("pid %d: %s%d in its environment, but fd %d is "
                         "not open (a new QEMU closes it once "
                         "migrate-incoming starts)", ps->pid, ENV_PREFIX,
                         ps->env_fd, ps->env_fd);
        } else {
            cprdump_note("pid %d: %s%d in its environment, but fd %d is "
                         "%s, not the state memfd", ps->pid, ENV_PREFIX,
                         ps->env_fd, ps->env_fd, tx(link));
        }
    }
}

int pid_find_state(int pid, int *ret_fd)
{
    char path[64], others[64] = "";
    ProcState ps;
    int ret;

    ret = proc_find_state(pid, &ps);
    if (ret == -ESRCH) {
        cprdump_err("there is no process %d", pid);
        return ret;
    }
    if (ret && ret != -ENOENT) {
        snprintf(path, sizeof(path), "/proc/%d/fd", pid);
        report_io_error(path, ret);
        return ret;
    }
    note_env(&ps);
    if (ret) {
        cprdump_err("pid %d holds no CPR state: no fd links to %s and %s "
                    "names no open state fd (a QEMU holds it only between "
                    "cpr-exec and migrate-incoming; cpr-transfer carries "
                    "the state over a socket)", pid, STATE_LINK,
                    CPRS_EXEC_STATE_NAME);
        return ret;
    }
    if (ps.n_links > 1) {
        snprintf(others, sizeof(others), "; %d fds link to it", ps.n_links);
    }
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, ps.fd);
    if (ps.env_is_state) {
        cprdump_note("pid %d: state in fd %d -> %s, named by %s%d in "
                     "its environment%s; reading %s", pid, ps.fd,
                     tx(ps.link), ENV_PREFIX, ps.fd, others, path);
    } else {
        cprdump_note("pid %d: state in fd %d -> %s, found by its link "
                     "name%s; reading %s", pid, ps.fd, tx(ps.link), others,
                     path);
    }
    *ret_fd = ps.fd;
    return 0;
}
