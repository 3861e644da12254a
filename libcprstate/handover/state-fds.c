/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-fds.c - what a CprsState does to the fds it records: clear
 * close-on-exec before exec() and set it again after (spec 11.1), check
 * that each is still the open file that was saved (spec 11.4), close them.
 *
 * The flags are changed as QEMU changes them, one fd at a time with
 * F_GETFD then F_SETFD, and no more: a hop costs per fd what QEMU's own
 * cpr_exec_preserve_fds() costs.  The F_GETFD is also what makes a
 * failure undoable: it tells which flags this call changed.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-state.h"

int cprs_state_set_cloexec(const CprsState *s, bool on, int64_t *ret_bad)
{
    const Registry *reg = &s->fds;
    uint32_t *changed, n = 0, i, k;
    int64_t bad = -1, stream = 0;
    int flags, want, ret = 0;

    changed = malloc((reg->live ? reg->live : 1) * sizeof(*changed));
    if (!changed) {
        return -ENOMEM;
    }
    /* Newest first, like every walk of the fds. */
    for (i = reg->n; i-- > 0 && !ret;) {
        int fd = reg->rec[i].u.f.fd;

        if (!reg->rec[i].live) {
            continue;
        }
        flags = fcntl(fd, F_GETFD);
        want = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (flags < 0 || (want != flags && fcntl(fd, F_SETFD, want) < 0)) {
            ret = -errno;
            bad = stream;
        } else if (want != flags) {
            changed[n++] = i;
        }
        stream++;
    }
    /* Undo: every flag changed here goes back to what it was. */
    for (k = 0; ret && k < n; k++) {
        int fd = reg->rec[changed[k]].u.f.fd;

        flags = fcntl(fd, F_GETFD);
        if (flags >= 0) {
            fcntl(fd, F_SETFD, on ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC);
        }
    }
    free(changed);
    if (ret_bad) {
        *ret_bad = bad;
    }
    return ret;
}

int cprs_state_preserve_fds(const CprsState *s)
{
    return s ? cprs_state_set_cloexec(s, false, NULL) : -EINVAL;
}

int cprs_state_unpreserve_fds(const CprsState *s)
{
    return s ? cprs_state_set_cloexec(s, true, NULL) : -EINVAL;
}

/* spec 11.4: is the fd of @e the open file that was saved? */
static const char *fd_mismatch(const StateRec *e)
{
    struct stat st;

    /* One fstat() tells both whether the fd is open and what it is. */
    if (fstat(e->u.f.fd, &st) < 0) {
        return errno == EBADF ? "recorded fd is not open" :
               "recorded fd cannot be examined";
    }
    if (!(e->u.f.flags & CPRS_FD_F_IDENTITY)) {
        return NULL;
    }
    if ((uint64_t)st.st_dev != e->u.f.dev ||
        (uint64_t)st.st_ino != e->u.f.ino) {
        return "recorded fd is another file (device or inode differs)";
    }
    return NULL;
}

int cprs_state_check_fds(const CprsState *s, CprsDiag *diag,
                         uint32_t *ret_mismatches)
{
    uint32_t i, bad = 0, stream = 0;
    const char *why;

    if (!s) {
        return -EINVAL;
    }
    /* Walk newest first, so record numbers match the saved order. */
    for (i = s->fds.n; i-- > 0;) {
        const StateRec *e = &s->fds.rec[i];

        if (!e->live) {
            continue;
        }
        why = fd_mismatch(e);
        if (why && !bad++) {
            cprs_diag_set(diag, -ESTALE, 0, -1, stream, "11.4", why);
        }
        stream++;
    }
    if (ret_mismatches) {
        *ret_mismatches = bad;
    }
    return bad ? -ESTALE : 0;
}

void cprs_state_close_fds(CprsState *s)
{
    uint32_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->fds.n; i++) {
        if (s->fds.rec[i].live) {
            close(s->fds.rec[i].u.f.fd);
        }
    }
    cprs_reg_free(&s->fds);
}
