/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rollback.c - a failed cpr-exec brings the previous binary back
 * (spec/fail-safe.rst F5).
 *
 * The source, before it execs, arms a rollback: a sealed memfd named
 * QEMU_CPR_ROLLBACK holding a complete arena of the state with one more
 * section, ROLLBACK (type 9), that names the previous executable (an fd
 * opened through /proc/self/exe, which outlives a package update that
 * deletes or replaces the file) and the command that resumes the VM in
 * it.  The new image finds the record before it loads anything, checks
 * every part of it, and on a failure before the VM runs, writes the copy
 * with the failure recorded into a new QEMU_CPR_EXEC_STATE memfd and
 * execveat()s the previous executable: same pid, the guest RAM memfds
 * still open and mapped by nobody else.  The record handed back is
 * ROLLED_BACK and never armed: a rollback never rolls back again.
 *
 * Everything a new image finds is untrusted: the variable, the memfd,
 * the arena, the record, the executable's fd and every recorded fd are
 * checked before anything is exec'd, and any inconsistency is refused
 * with a precise diagnostic.  The record's codec is rollback-record.c.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cprs-failsafe.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

#define SEALS_NEEDED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define SEALS_ALL (SEALS_NEEDED | F_SEAL_SEAL)

struct CprsRollback {
    int memfd;                  /* QEMU_CPR_ROLLBACK, or -1 */
    int exe_fd;                 /* the previous executable, or -1 */
    bool found;                 /* by cprs_rollback_find() (new image) */
    bool triggered;
    uint8_t *bytes;             /* the arena copy, owned */
    size_t size;
    CprsReader *reader;         /* over bytes */
    CprsRollbackRec rec;        /* points into bytes */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int env_fd(const char *name, int *ret_fd)
{
    const char *val = getenv(name);
    long v = 0;
    size_t i;

    if (!val) {
        return -ENOENT;
    }
    if (!val[0] || strlen(val) > 10 || (val[0] == '0' && val[1])) {
        return -EINVAL;
    }
    for (i = 0; val[i]; i++) {
        if (val[i] < '0' || val[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (val[i] - '0');
    }
    if (v > INT_MAX) {
        return -EINVAL;
    }
    *ret_fd = (int)v;
    return 0;
}

/* Is @fd a memfd called @name?  (Its /proc link says so.) */
static bool memfd_named(int fd, const char *name)
{
    char path[64], link[128], want[128];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
    n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0) {
        return false;
    }
    link[n] = '\0';
    return !strcmp(link, want);
}

/* A sealed memfd named @name with @buf; close-on-exec as asked. */
static int sealed_memfd(const char *name, const void *buf, size_t size,
                        bool cloexec, int *ret_fd)
{
    const uint8_t *p = buf;
    size_t done = 0;
    ssize_t n;
    int fd, ret;

    fd = memfd_create(name, MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0));
    if (fd < 0) {
        return -errno;
    }
    while (done < size) {
        n = pwrite(fd, p + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            close(fd);
            return ret;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, SEALS_ALL) < 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    *ret_fd = fd;
    return 0;
}

/* ---- Checks shared by find and trigger -------------------------------- */

/* spec F5.6: the previous executable's fd, as recorded. */
static int check_exe(const CprsRollbackRec *r, int memfd, CprsDiag *diag)
{
    struct stat st;

    if (r->exe_fd == memfd) {
        return cprs_diag_set(diag, -EBADMSG, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the executable's fd is the rollback "
                             "memfd");
    }
    if (fstat(r->exe_fd, &st) < 0) {
        return cprs_diag_set(diag, -EBADF, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "open");
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        return cprs_diag_set(diag, -EBADMSG, r->section_offset +
                             offsetof(CprsWireRollback, exe_fd), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "an executable regular file");
    }
    if ((uint64_t)st.st_dev != r->exe_dev ||
        (uint64_t)st.st_ino != r->exe_ino ||
        (uint64_t)st.st_size != r->exe_size || st.st_mode != r->exe_mode) {
        return cprs_diag_set(diag, -ESTALE, r->section_offset +
                             offsetof(CprsWireRollback, exe_dev), -1, -1,
                             "F5.6", "the previous executable's fd is not "
                             "the file recorded");
    }
    return 0;
}

/* spec F5.6 and 11.4: every fd of the copy is open and the same file. */
static int check_fds(CprsReader *rd, const CprsRollbackRec *r, int memfd,
                     CprsDiag *diag)
{
    CprsFdInfo fi;
    struct stat st;
    uint32_t i, n = cprs_reader_fd_count(rd);
    int ret;

    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(rd, i, &fi);
        if (ret) {
            return cprs_diag_set(diag, ret, 0, -1, i, "F5.6",
                                 "an fd record of the copy is bad");
        }
        if (fi.fd == r->exe_fd || fi.fd == memfd) {
            return cprs_diag_set(diag, -EBADMSG, 0, -1, i, "F5.6",
                                 "a state fd is also the executable's fd or "
                                 "the rollback memfd");
        }
        if (fstat(fi.fd, &st) < 0) {
            return cprs_diag_set(diag, -ESTALE, 0, -1, i, "F5.6",
                                 "a recorded fd is no longer open");
        }
        if ((fi.flags & CPRS_FD_F_IDENTITY) &&
            ((uint64_t)st.st_dev != fi.dev ||
             (uint64_t)st.st_ino != fi.ino)) {
            return cprs_diag_set(diag, -ESTALE, 0, -1, i, "F5.6",
                                 "a recorded fd is another file (device or "
                                 "inode differs)");
        }
    }
    return 0;
}

/* Open the copy held in rb->bytes, verify it, find its record. */
static int open_copy(CprsRollback *rb, CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    int ret;

    ret = cprs_reader_open_buffer(rb->bytes, rb->size, NULL, diag,
                                  &rb->reader);
    if (!ret) {
        ret = cprs_reader_verify(rb->reader, diag);
    }
    if (ret) {
        return ret;
    }
    cprs_reader_get_info(rb->reader, &ai);
    if (ai.mode != CPRS_MODE_EXEC) {
        return cprs_diag_set(diag, -EBADMSG, offsetof(CprsWireHeader, mode),
                             -1, -1, "F5.1", "the rollback copy is not a "
                             "cpr-exec arena");
    }
    ret = cprs_rollback_find_section(rb->reader, diag, &rb->rec);
    if (ret == -ENOENT) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "F5.1",
                             "the rollback memfd holds no ROLLBACK section");
    }
    return ret;
}

static void rollback_free(CprsRollback *rb)
{
    cprs_reader_close(rb->reader);
    free(rb->bytes);
    free(rb);
}

void cprs_rollback_forget(CprsRollback *rb)
{
    if (rb) {
        rollback_free(rb);
    }
}

/* ---- Arming (F5.1) ---------------------------------------------------- */

/* argv as one block of NUL-terminated strings, within F5.5's limits. */
static int pack_argv(char *const *argv, char **ret_block, uint32_t *ret_argc,
                     uint32_t *ret_size)
{
    uint64_t size = 0;
    uint32_t argc = 0, i;
    char *block, *q;
    size_t len;

    if (!argv || !argv[0] || !argv[0][0]) {
        return -EINVAL;
    }
    for (argc = 0; argv[argc]; argc++) {
        if (argc >= CPRS_ROLLBACK_MAX_ARGC) {
            return -EINVAL;
        }
        size += strlen(argv[argc]) + 1;
        if (size > CPRS_ROLLBACK_MAX_ARGV) {
            return -EINVAL;
        }
    }
    block = malloc((size_t)size);
    if (!block) {
        return -ENOMEM;
    }
    for (i = 0, q = block; i < argc; i++) {
        len = strlen(argv[i]) + 1;
        memcpy(q, argv[i], len);
        q += len;
    }
    *ret_block = block;
    *ret_argc = argc;
    *ret_size = (uint32_t)size;
    return 0;
}

int cprs_rollback_arm(CprsState *state, int state_fd,
                      const CprsRollbackOpts *opts, CprsDiag *diag,
                      CprsRollback **ret_rollback)
{
    CprsRollbackOpts o;
    CprsRollbackRec r = { 0 };
    CprsRollback *rb = NULL;
    CprsWireHeader h;
    struct stat st, sst;
    char exe_path[PATH_MAX], val[16], *argv_block = NULL;
    uint8_t *sec = NULL;
    void *copy = NULL;
    size_t copy_size = 0, sec_size;
    ssize_t n;
    int exe_fd = -1, memfd = -1, ret;

    if (!state || state_fd < 0 || !ret_rollback ||
        cprs_opts_copy(&o, sizeof(o), opts) || o.flags || o.reserved0) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = pack_argv(o.argv, &argv_block, &r.argc, &r.argv_size);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.5",
                             ret == -ENOMEM ? "out of memory" :
                             "the rollback argv is empty or over the "
                             "limits");
    }
    if (fstat(state_fd, &sst) < 0 || !S_ISREG(sst.st_mode) ||
        !memfd_named(state_fd, CPRS_EXEC_STATE_NAME)) {
        free(argv_block);
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F5.6",
                             "the state fd is not the QEMU_CPR_EXEC_STATE "
                             "memfd");
    }
    /* spec F5.1: the running executable, even if deleted or replaced. */
    exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe_fd < 0 || fstat(exe_fd, &st) < 0) {
        ret = -errno;
        goto fail_errno;
    }
    n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    if (n <= 0) {
        snprintf(exe_path, sizeof(exe_path), "/proc/%d/exe", (int)getpid());
    }

    /* The copy: the state as an exec arena, with identities (F5.1). */
    ret = cprs_state_rollback_copy(state, o.producer, diag, &copy,
                                   &copy_size);
    if (ret) {
        goto fail;
    }
    memcpy(&h, copy, sizeof(h));
    r.flags = CPRS_ROLLBACK_F_ARMED;
    r.generation = cprs_le64_get(&h.generation);
    r.armed_ns = now_ns();
    r.pid = (uint32_t)getpid();
    r.exe_fd = exe_fd;
    r.exe_dev = (uint64_t)st.st_dev;
    r.exe_ino = (uint64_t)st.st_ino;
    r.exe_size = (uint64_t)st.st_size;
    r.exe_mode = st.st_mode;
    r.state_dev = (uint64_t)sst.st_dev;
    r.state_ino = (uint64_t)sst.st_ino;
    r.exe_path = exe_path;
    r.argv = argv_block;
    ret = cprs_rollback_encode(&r, &sec, &sec_size);
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.2",
                      "cannot encode the rollback record");
        goto fail;
    }
    rb = calloc(1, sizeof(*rb));
    if (!rb) {
        ret = cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
        goto fail;
    }
    ret = cprs_arena_append_section(copy, copy_size, CPRS_SECTION_ROLLBACK,
                                    0, sec, sec_size, (void **)&rb->bytes,
                                    &rb->size);
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                      "cannot add the ROLLBACK section");
        goto fail;
    }
    ret = open_copy(rb, diag);
    if (!ret) {
        ret = sealed_memfd(CPRS_ROLLBACK_NAME, rb->bytes, rb->size, true,
                           &memfd);
        if (ret) {
            cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                          "cannot write the rollback memfd");
        }
    }
    if (ret) {
        goto fail;
    }
    snprintf(val, sizeof(val), "%d", memfd);
    if (setenv(CPRS_ROLLBACK_NAME, val, 1) < 0) {
        ret = cprs_diag_set(diag, -errno, 0, -1, -1, "F5.1",
                            "cannot set QEMU_CPR_ROLLBACK");
        goto fail;
    }
    /* Persisted as the state memfd is (spec 11.1): both survive exec. */
    fcntl(memfd, F_SETFD, 0);
    fcntl(exe_fd, F_SETFD, 0);
    rb->memfd = memfd;
    rb->exe_fd = exe_fd;
    free(argv_block);
    free(sec);
    free(copy);
    *ret_rollback = rb;
    return 0;

fail_errno:
    cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                  "cannot open the running executable");
fail:
    if (memfd >= 0) {
        close(memfd);
    }
    if (exe_fd >= 0) {
        close(exe_fd);
    }
    if (rb) {
        rollback_free(rb);
    }
    free(argv_block);
    free(sec);
    free(copy);
    return ret;
}

/* ---- Finding (F5.6) --------------------------------------------------- */

int cprs_rollback_find(uint32_t flags, CprsDiag *diag,
                       CprsRollback **ret_rollback)
{
    CprsRollback *rb;
    struct stat st, sst;
    size_t done = 0;
    ssize_t n;
    int fd, sfd, seals, ret;

    if (!ret_rollback || (flags & ~CPRS_ROLLBACK_FIND_F_UNBOUND)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = env_fd(CPRS_ROLLBACK_NAME, &fd);
    if (ret == -ENOENT) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.6",
                             "no rollback is armed");
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK is not a plain decimal fd "
                             "number");
    }
    if (fcntl(fd, F_GETFD) < 0) {
        return cprs_diag_set(diag, -EBADF, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK names an fd that is not "
                             "open");
    }
    if (!memfd_named(fd, CPRS_ROLLBACK_NAME)) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "F5.6",
                             "QEMU_CPR_ROLLBACK names an fd that is not the "
                             "QEMU_CPR_ROLLBACK memfd");
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & SEALS_NEEDED) != SEALS_NEEDED) {
        return cprs_diag_set(diag, -EPERM, 0, -1, -1, "F5.6",
                             "the rollback memfd is not sealed against "
                             "write, grow and shrink");
    }
    if (fstat(fd, &st) < 0) {
        return cprs_diag_set(diag, -errno, 0, -1, -1, "F5.6",
                             "cannot examine the rollback memfd");
    }
    if ((uint64_t)st.st_size > CPRS_MAX_ARENA_SIZE ||
        (uint64_t)st.st_size > SIZE_MAX) {
        return cprs_diag_set(diag, -E2BIG, 0, -1, -1, "7",
                             "the rollback memfd is over the arena limit");
    }
    rb = calloc(1, sizeof(*rb));
    if (rb) {
        rb->size = (size_t)st.st_size;
        rb->bytes = malloc(rb->size ? rb->size : 1);
    }
    if (!rb || !rb->bytes) {
        free(rb);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    rb->memfd = -1;
    rb->exe_fd = -1;
    rb->found = true;
    /* Read once into our own memory: nothing changes after the checks. */
    while (done < rb->size) {
        n = pread(fd, rb->bytes + done, rb->size - done, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -EBADMSG;
            cprs_diag_set(diag, ret, done, -1, -1, "F5.6",
                          "cannot read the rollback memfd");
            goto fail;
        }
        done += (size_t)n;
    }
    CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, rb->size);
    ret = open_copy(rb, diag);
    if (ret) {
        goto fail;
    }
    /* spec F5.3: a record handed back is never armed again. */
    if (rb->rec.flags & CPRS_ROLLBACK_F_ROLLED_BACK) {
        ret = cprs_diag_set(diag, -ELOOP, rb->rec.section_offset +
                            offsetof(CprsWireRollback, flags), -1, -1,
                            "F5.3", "the record is that of a rollback: a "
                            "rollback never rolls back again");
        goto fail;
    }
    /* spec F5.6: armed by this process, for the state of this hop. */
    if (rb->rec.pid != (uint32_t)getpid()) {
        ret = cprs_diag_set(diag, -ESTALE, rb->rec.section_offset +
                            offsetof(CprsWireRollback, pid), -1, -1, "F5.6",
                            "the rollback was armed by another process");
        goto fail;
    }
    if (!(flags & CPRS_ROLLBACK_FIND_F_UNBOUND)) {
        if (env_fd(CPRS_EXEC_STATE_NAME, &sfd) || fstat(sfd, &sst) < 0 ||
            (uint64_t)sst.st_dev != rb->rec.state_dev ||
            (uint64_t)sst.st_ino != rb->rec.state_ino) {
            ret = cprs_diag_set(diag, -ESTALE, rb->rec.section_offset +
                                offsetof(CprsWireRollback, state_dev), -1,
                                -1, "F5.6", "the rollback record belongs to "
                                "another hop's state");
            goto fail;
        }
    }
    ret = check_exe(&rb->rec, fd, diag);
    if (!ret) {
        ret = check_fds(rb->reader, &rb->rec, fd, diag);
    }
    if (ret) {
        goto fail;
    }
    /* Accepted: keep both fds, but out of every other exec from now. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(rb->rec.exe_fd, F_SETFD, FD_CLOEXEC);
    rb->memfd = fd;
    rb->exe_fd = rb->rec.exe_fd;
    *ret_rollback = rb;
    return 0;

fail:
    rollback_free(rb);
    return ret;
}

/*
 * spec 11.1 step 7, F5.6: the fds an armed rollback of this process
 * owns, as QEMU_CPR_ROLLBACK names them (-1 each when there is none):
 * the QEMU_CPR_ROLLBACK memfd, and the previous executable's fd its
 * record names.  Both are closed by cprs_rollback_disarm(), so no state
 * record may name them, whether the state is loaded before or after
 * cprs_rollback_find().  The memfd is mapped, not read (it is sealed:
 * an unsealed one is refused by cprs_rollback_find() and so never
 * closed), and only its ROLLBACK section is looked at.
 */
void cprs_rollback_env_fds(int *ret_memfd, int *ret_exe_fd)
{
    CprsReader *r = NULL;
    CprsRollbackRec rec;
    int fd, seals;

    *ret_memfd = -1;
    *ret_exe_fd = -1;
    if (env_fd(CPRS_ROLLBACK_NAME, &fd) || fcntl(fd, F_GETFD) < 0 ||
        !memfd_named(fd, CPRS_ROLLBACK_NAME)) {
        return;
    }
    *ret_memfd = fd;
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & SEALS_NEEDED) != SEALS_NEEDED ||
        cprs_reader_open_fd(fd, NULL, NULL, &r)) {
        return;
    }
    if (!cprs_rollback_find_section(r, NULL, &rec) && rec.exe_fd >= 0) {
        *ret_exe_fd = rec.exe_fd;
    }
    cprs_reader_close(r);
}

/* ---- Triggering (F5.7) ------------------------------------------------ */

/* The environment of the previous binary: F5.7 step 5. */
static char **handoff_env(int state_fd)
{
    static const char drop1[] = CPRS_EXEC_STATE_NAME "=";
    static const char drop2[] = CPRS_ROLLBACK_NAME "=";
    size_t n = 0, i, k = 0;
    char **env;

    while (environ && environ[n]) {
        n++;
    }
    env = calloc(n + 2, sizeof(*env));
    if (!env) {
        return NULL;
    }
    env[k] = malloc(sizeof(drop1) + 12);
    if (!env[k]) {
        free(env);
        return NULL;
    }
    snprintf(env[k++], sizeof(drop1) + 12, "%s%d", drop1, state_fd);
    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], drop1, sizeof(drop1) - 1) &&
            strncmp(environ[i], drop2, sizeof(drop2) - 1)) {
            env[k++] = environ[i];
        }
    }
    env[k] = NULL;
    return env;
}

/* The copy, handed back: ROLLED_BACK with @f (F5.7 steps 2 and 3). */
static int handoff_bytes(const CprsRollback *rb, const CprsFailure *f,
                         uint8_t **ret_buf)
{
    const CprsRollbackRec *r = &rb->rec;
    CprsWireRollback w;
    CprsWireSection e;
    CprsWireHeader h;
    CprsSectionInfo si;
    char exe[PATH_MAX];
    struct stat st;
    uint64_t dir;
    uint32_t i, n = cprs_reader_section_count(rb->reader);
    uint8_t *buf;
    ssize_t len;
    int idx = -1;

    for (i = 0; i < n && idx < 0; i++) {
        si = CPRS_OPTS(CprsSectionInfo);
        if (!cprs_reader_section_get(rb->reader, i, &si) &&
            si.type == CPRS_SECTION_ROLLBACK) {
            idx = (int)i;
        }
    }
    if (idx < 0) {
        return -EBADMSG;
    }
    buf = malloc(rb->size);
    if (!buf) {
        return -ENOMEM;
    }
    memcpy(buf, rb->bytes, rb->size);
    memcpy(&w, buf + r->section_offset, sizeof(w));
    cprs_le32_set(&w.flags, CPRS_ROLLBACK_F_ROLLED_BACK |
                  CPRS_ROLLBACK_F_FAILURE);
    cprs_le32_set(&w.failure_stage, f->stage);
    cprs_le32_set(&w.failure_errno, (uint32_t)-f->error);
    cprs_le64_set(&w.failed_ns, now_ns());
    if (!stat("/proc/self/exe", &st)) {
        cprs_le64_set(&w.failed_dev, (uint64_t)st.st_dev);
        cprs_le64_set(&w.failed_ino, (uint64_t)st.st_ino);
    }
    len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[len > 0 ? len : 0] = '\0';
    cprs_text_set(w.failed_exe, sizeof(w.failed_exe), exe);
    cprs_text_set(w.failure_message, sizeof(w.failure_message),
             f->message ? f->message : "");
    memcpy(buf + r->section_offset, &w, sizeof(w));
    /* The section CRC in its entry, then the directory and header CRCs. */
    memcpy(&h, buf, sizeof(h));
    dir = cprs_le64_get(&h.dir_offset) +
          (uint64_t)idx * cprs_le32_get(&h.dir_entry_size);
    memcpy(&e, buf + dir, sizeof(e));
    cprs_le32_set(&e.crc32c, cprs_crc32c(0, buf + r->section_offset,
                                         r->section_size));
    memcpy(buf + dir, &e, sizeof(e));
    cprs_arena_fix_crcs(buf);
    *ret_buf = buf;
    return 0;
}

int cprs_rollback_trigger(CprsRollback *rb, const CprsFailure *failure,
                          CprsDiag *diag)
{
    CprsFailure f;
    CprsReader *check = NULL;
    CprsRollbackRec rec;
    CprsFdInfo fi;
    uint8_t *buf = NULL;
    char **argv = NULL, **env = NULL;
    const char *a;
    int *saved = NULL, state_fd = -1, old_state = -1, old_flags = -1;
    uint32_t i, nfds = 0;
    int ret;

    if (!rb || !rb->found || rb->triggered || rb->memfd < 0 ||
        cprs_opts_copy(&f, sizeof(f), failure) ||
        !f.stage || f.stage >= CPRS_FAILURE__MAX || f.error > 0 ||
        f.error <= -4096) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    /* spec F5.7 step 1: the executable and the fds, again. */
    ret = check_exe(&rb->rec, rb->memfd, diag);
    if (!ret) {
        ret = check_fds(rb->reader, &rb->rec, rb->memfd, diag);
    }
    if (ret) {
        return ret;
    }
    ret = handoff_bytes(rb, &f, &buf);
    /* The copy handed back must itself be valid, ROLLED_BACK (F5.7). */
    if (!ret) {
        ret = cprs_reader_open_buffer(buf, rb->size, NULL, diag, &check);
    }
    if (!ret) {
        ret = cprs_reader_verify(check, diag);
    }
    if (!ret) {
        ret = cprs_rollback_find_section(check, diag, &rec);
    }
    cprs_reader_close(check);
    if (!ret) {
        ret = sealed_memfd(CPRS_EXEC_STATE_NAME, buf, rb->size, false,
                           &state_fd);
    }
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "F5.7",
                      "cannot write the state handed back");
        goto out;
    }
    argv = calloc(rb->rec.argc + 1, sizeof(*argv));
    env = handoff_env(state_fd);
    nfds = cprs_reader_fd_count(rb->reader);
    saved = calloc(nfds ? nfds : 1, sizeof(*saved));
    if (!argv || !env || !saved) {
        ret = cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
        goto out;
    }
    for (i = 0, a = rb->rec.argv; i < rb->rec.argc; i++) {
        argv[i] = (char *)a;
        a += strlen(a) + 1;
    }
    /*
     * spec F5.7 step 4: the copy's fds inheritable (the load of this
     * image made them close-on-exec), the stale state memfd not; the
     * rollback memfd and the executable's fd are close-on-exec already.
     */
    for (i = 0; i < nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        cprs_reader_fd_get(rb->reader, i, &fi);
        saved[i] = fcntl(fi.fd, F_GETFD);
        fcntl(fi.fd, F_SETFD, 0);
    }
    if (!env_fd(CPRS_EXEC_STATE_NAME, &old_state) &&
        old_state != state_fd && memfd_named(old_state,
                                             CPRS_EXEC_STATE_NAME)) {
        old_flags = fcntl(old_state, F_GETFD);
        fcntl(old_state, F_SETFD, FD_CLOEXEC);
    }
    rb->triggered = true;
    syscall(SYS_execveat, rb->exe_fd, "", argv, env, AT_EMPTY_PATH);
    ret = cprs_diag_set(diag, -errno, 0, -1, -1, "F5.7",
                        "cannot exec the previous executable");
    rb->triggered = false;
    /* Undo: every flag as it was, the new memfd gone. */
    for (i = 0; i < nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        cprs_reader_fd_get(rb->reader, i, &fi);
        if (saved[i] >= 0) {
            fcntl(fi.fd, F_SETFD, saved[i]);
        }
    }
    if (old_flags >= 0) {
        fcntl(old_state, F_SETFD, old_flags);
    }

out:
    if (state_fd >= 0) {
        close(state_fd);
    }
    if (env) {
        free(env[0]);
        free(env);
    }
    free(argv);
    free(saved);
    free(buf);
    return ret;
}

/* ---- Disarming, information ------------------------------------------- */

void cprs_rollback_disarm(CprsRollback *rb)
{
    int fd;

    if (!rb) {
        return;
    }
    if (rb->memfd >= 0) {
        if (!env_fd(CPRS_ROLLBACK_NAME, &fd) && fd == rb->memfd) {
            unsetenv(CPRS_ROLLBACK_NAME);
        }
        close(rb->memfd);
    }
    if (rb->exe_fd >= 0) {
        close(rb->exe_fd);
    }
    rollback_free(rb);
}

int cprs_rollback_get_info(const CprsRollback *rb, CprsRollbackInfo *info)
{
    CprsRollbackInfo ri;

    if (!rb || !info) {
        return -EINVAL;
    }
    cprs_rollback_rec_info(&rb->rec, &ri);
    return cprs_info_fill(info, &ri, sizeof(ri));
}

