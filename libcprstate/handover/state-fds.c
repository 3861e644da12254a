/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-fds.c - what a CprsState does to the fds it records: clear
 * close-on-exec before exec() and set it again after (spec 11.1), check
 * that each is still the open file that was saved (spec 11.4), close them.
 *
 * The flags are cleared before exec() as QEMU clears them, one fd at a
 * time with F_GETFD then F_SETFD, and no more; the F_GETFD is also what
 * makes a failure undoable.  They are set again with one poll() that
 * proves every fd open and one close_range() per run of consecutive fds,
 * so a load does less per fd than QEMU's.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-state.h"

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return x < y ? -1 : x > y;
}

/*
 * Set close-on-exec on the @n fds at @fds (sorted, distinct): one
 * close_range(CLOSE_RANGE_CLOEXEC) per run of consecutive numbers (Linux
 * 5.11; it changes nothing when it fails), else F_SETFD one by one.
 * Returns the number of fds done; *@ret_err is the error that stopped it.
 */
static uint32_t set_runs(const int *fds, uint32_t n, int *ret_err)
{
    uint32_t i, run;

    for (i = 0; i < n; i += run) {
        run = 1;
        while (i + run < n && fds[i + run] == fds[i] + (int)run) {
            run++;
        }
        if (run > 1 && !close_range((unsigned)fds[i],
                                    (unsigned)fds[i + run - 1],
                                    CLOSE_RANGE_CLOEXEC)) {
            continue;
        }
        for (run = 0; i + run < n && (!run || fds[i + run] ==
                                      fds[i] + (int)run); run++) {
            if (fcntl(fds[i + run], F_SETFD, FD_CLOEXEC) < 0) {
                *ret_err = -errno;
                return i + run;
            }
        }
    }
    return n;
}

/*
 * Is every fd of @fds open?  One poll() for all of them: POLLNVAL marks a
 * number with no open file.  Returns -1 or the index of the first one.
 */
static int64_t first_closed(const int *fds, uint32_t n)
{
    struct pollfd *p;
    int64_t bad = -1;
    uint32_t i;
    int r;

    p = calloc(n ? n : 1, sizeof(*p));
    if (!p) {
        return -2;
    }
    for (i = 0; i < n; i++) {
        p[i].fd = fds[i];
    }
    while ((r = poll(p, n, 0)) < 0 && errno == EINTR) {
        continue;
    }
    /* More fds than RLIMIT_NOFILE (EINVAL): one by one instead. */
    for (i = 0; i < n && bad < 0; i++) {
        if (r < 0 ? fcntl(fds[i], F_GETFD) < 0 : !!(p[i].revents & POLLNVAL)) {
            bad = i;
        }
    }
    free(p);
    return bad;
}

int cprs_state_set_cloexec(const CprsState *s, bool on, int64_t *ret_bad)
{
    const Registry *reg = &s->fds;
    uint32_t n = 0, done = 0, i, k;
    int64_t bad = -1;
    int *fds, flags, ret = 0;

    fds = malloc((reg->live ? reg->live : 1) * sizeof(*fds));
    if (!fds) {
        return -ENOMEM;
    }
    /* Newest first, like every walk of the fds (for *@ret_bad). */
    for (i = reg->n; i-- > 0;) {
        if (reg->rec[i].live) {
            fds[n++] = reg->rec[i].u.f.fd;
        }
    }
    if (on) {
        /*
         * Setting: the flags were clear (inherited across exec(), or
         * cleared by cprs_state_preserve_fds()), so undoing is clearing.
         * All fds are proven open first, in one call: nothing is changed
         * when one is not.
         */
        bad = first_closed(fds, n);
        if (bad == -2) {
            free(fds);
            return -ENOMEM;
        }
        ret = bad >= 0 ? -EBADF : 0;
        if (!ret && n) {
            qsort(fds, n, sizeof(*fds), cmp_int);
            for (i = k = 1; i < n; i++) {
                if (fds[i] != fds[k - 1]) {
                    fds[k++] = fds[i];
                }
            }
            done = set_runs(fds, k, &ret);
        }
    } else {
        /*
         * Clearing, as QEMU does it: F_GETFD, then F_SETFD where the flag
         * is set.  The F_GETFD tells which flags this call changes, and
         * proves the fd open before anything is changed.
         */
        for (i = 0; i < n && !ret; i++) {
            flags = fcntl(fds[i], F_GETFD);
            if (flags < 0) {
                ret = -errno;
                bad = i;
            } else if (flags & FD_CLOEXEC) {
                fds[done++] = fds[i];
            }
        }
        for (k = 0; !ret && k < done; k++) {
            if (fcntl(fds[k], F_SETFD, 0) < 0) {
                ret = -errno;
            }
        }
        done = ret ? k : done;
    }
    /* Undo: the flags this call changed go back to what they were. */
    for (i = 0; ret && i < done; i++) {
        fcntl(fds[i], F_SETFD, on ? 0 : FD_CLOEXEC);
    }
    if (ret && ret_bad) {
        *ret_bad = bad;
    }
    free(fds);
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

/*
 * Does the check of @e need fstat()?  Only to compare an identity that
 * names a file (spec 11.4): an anonymous inode (no file type in st_mode)
 * is one inode shared by every eventfd, epoll or timer fd of the system,
 * so its device and inode prove nothing an open check does not; a record
 * without identity is only checked to be open.
 */
static bool needs_fstat(const StateRec *e)
{
    return (e->u.f.flags & CPRS_FD_F_IDENTITY) &&
           (e->u.f.st_mode & S_IFMT);
}

/* spec 11.4: is the fd of @e the open file that was saved? */
static const char *fd_mismatch(const StateRec *e)
{
    struct stat st;

    /* One fstat() tells both whether the fd is open and what it is. */
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, 1);
    if (fstat(e->u.f.fd, &st) < 0) {
        return errno == EBADF ? "recorded fd is not open" :
               "recorded fd cannot be examined";
    }
    if ((uint64_t)st.st_dev != e->u.f.dev ||
        (uint64_t)st.st_ino != e->u.f.ino) {
        return "recorded fd is another file (device or inode differs)";
    }
    return NULL;
}

int cprs_state_check_fds_how(const CprsState *s, bool identities,
                             CprsDiag *diag, uint32_t *ret_mismatches)
{
    uint32_t i, n = 0, k = 0, bad = 0, stream = 0;
    struct pollfd *p;
    const char *why;
    int r;

    if (!s) {
        return -EINVAL;
    }
    /* The fds without a file identity: proven open by one poll(). */
    p = calloc(s->fds.live ? s->fds.live : 1, sizeof(*p));
    if (!p) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    for (i = s->fds.n; i-- > 0;) {
        if (s->fds.rec[i].live &&
            !(identities && needs_fstat(&s->fds.rec[i]))) {
            p[n++].fd = s->fds.rec[i].u.f.fd;
        }
    }
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, n != 0);
    while ((r = n ? poll(p, n, 0) : 0) < 0 && errno == EINTR) {
        continue;
    }
    /* Walk newest first, so record numbers match the saved order. */
    for (i = s->fds.n; i-- > 0;) {
        const StateRec *e = &s->fds.rec[i];

        if (!e->live) {
            continue;
        }
        if (identities && needs_fstat(e)) {
            why = fd_mismatch(e);
        } else if (r < 0) {
            /* More fds than RLIMIT_NOFILE (EINVAL): one by one. */
            k++;
            why = fcntl(e->u.f.fd, F_GETFD) < 0 ? "recorded fd is not open" :
                  NULL;
        } else {
            why = p[k++].revents & POLLNVAL ? "recorded fd is not open" :
                  NULL;
        }
        if (why && !bad++) {
            cprs_diag_set(diag, -ESTALE, 0, -1, stream, "11.4", why);
        }
        stream++;
    }
    free(p);
    if (ret_mismatches) {
        *ret_mismatches = bad;
    }
    return bad ? -ESTALE : 0;
}

int cprs_state_check_fds(const CprsState *s, CprsDiag *diag,
                         uint32_t *ret_mismatches)
{
    return cprs_state_check_fds_how(s, true, diag, ret_mismatches);
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
