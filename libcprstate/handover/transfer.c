/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transfer.c - an arena and its fds over a unix stream socket (spec 11.2).
 *
 * The sender writes the header alone, then attaches the fds by SCM_RIGHTS
 * in batches of at most SCM_MAX_FD to the following bytes.  The receiver
 * learns arena_size from the header, checks it against its limit before
 * allocating, reads exactly that many bytes and collects the fds in
 * arrival order: fd k belongs to slot k.  Peer data is untrusted, and every
 * fd received is closed on any error.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cprs-handover.h"

/* The kernel's limit of fds in one SCM_RIGHTS message. */
#define CPRS_SCM_MAX_FD 253u

int cprs_send_with_fds(int sock, const uint8_t *buf, size_t len,
                       const int *fds, uint32_t nfds)
{
    union {
        char buf[CMSG_SPACE(CPRS_SCM_MAX_FD * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;

    while (len) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = (void *)buf;
        iov.iov_len = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (nfds) {
            memset(&ctl, 0, sizeof(ctl));
            msg.msg_control = ctl.buf;
            msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
        }
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        /* The fds went with the first byte; the rest goes without. */
        nfds = 0;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int cprs_transfer_send(int sock, const void *arena, size_t size,
                       const int *fds, uint32_t nfds, uint32_t flags)
{
    const uint8_t *p = arena;
    uint32_t batches = (nfds + CPRS_SCM_MAX_FD - 1) / CPRS_SCM_MAX_FD;
    uint32_t batch, i;
    size_t pos, len;
    int ret;

    if (sock < 0 || !arena || size < CPRS_HEADER_V1_SIZE ||
        (nfds && !fds) || (flags & ~CPRS_TRANSFER_F_SHUTDOWN) ||
        size - CPRS_HEADER_V1_SIZE < batches) {
        return -EINVAL;
    }
    /* The header alone first, so a peeking receiver sees no fds yet. */
    ret = cprs_send_with_fds(sock, p, CPRS_HEADER_V1_SIZE, NULL, 0);
    pos = CPRS_HEADER_V1_SIZE;
    for (i = 0; !ret && i < batches; i++) {
        batch = nfds - i * CPRS_SCM_MAX_FD;
        if (batch > CPRS_SCM_MAX_FD) {
            batch = CPRS_SCM_MAX_FD;
        }
        /* One byte per batch; the last batch takes the rest. */
        len = i + 1 < batches ? 1 : size - pos;
        ret = cprs_send_with_fds(sock, p + pos, len,
                                 fds + (size_t)i * CPRS_SCM_MAX_FD, batch);
        pos += len;
    }
    if (!ret && pos < size) {
        ret = cprs_send_with_fds(sock, p + pos, size - pos, NULL, 0);
    }
    if (!ret && (flags & CPRS_TRANSFER_F_SHUTDOWN) &&
        shutdown(sock, SHUT_WR) < 0) {
        ret = -errno;
    }
    return ret;
}

typedef struct FdList {
    int *fds;
    uint32_t n;
    uint32_t cap;
} FdList;

static void fdlist_close(FdList *l)
{
    uint32_t i;

    for (i = 0; i < l->n; i++) {
        close(l->fds[i]);
    }
    free(l->fds);
    l->fds = NULL;
    l->n = l->cap = 0;
}

/*
 * Take the fds of every SCM_RIGHTS message into @l, closing them again if
 * they cannot be kept.  Any other control message is an error.
 */
static int take_fds(struct msghdr *msg, FdList *l, uint32_t max)
{
    struct cmsghdr *c;
    uint32_t k, n;
    int *nfds, ret = 0;

    for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        const uint8_t *data = CMSG_DATA(c);

        if (c->cmsg_len < CMSG_LEN(0)) {
            return -EBADMSG;
        }
        n = (uint32_t)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            ret = -EBADMSG;
            continue;
        }
        for (k = 0; k < n; k++) {
            int fd;

            memcpy(&fd, data + k * sizeof(int), sizeof(int));
            if (ret || l->n >= max) {
                close(fd);
                ret = ret ? ret : -E2BIG;
                continue;
            }
            if (l->n == l->cap) {
                uint32_t cap = l->cap ? l->cap * 2 : 64;

                nfds = realloc(l->fds, cap * sizeof(int));
                if (!nfds) {
                    close(fd);
                    ret = -ENOMEM;
                    continue;
                }
                l->fds = nfds;
                l->cap = cap;
            }
            l->fds[l->n++] = fd;
        }
    }
    return ret;
}

/* recvmsg() exactly @len bytes into @buf, collecting fds. */
static int recv_exact(int sock, uint8_t *buf, size_t len, FdList *l,
                      uint32_t max_fds, uint64_t at, CprsDiag *diag)
{
    union {
        char buf[CMSG_SPACE(CPRS_SCM_MAX_FD * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr msg;
    ssize_t n;
    int ret;

    while (len) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = buf;
        iov.iov_len = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ret = -errno;
            return cprs_diag_set(diag, ret, at, -1, -1, "11.2",
                                 "recvmsg failed");
        }
        ret = take_fds(&msg, l, max_fds);
        if (!ret && (msg.msg_flags & MSG_CTRUNC)) {
            ret = -EBADMSG;     /* fds were dropped by the kernel */
        }
        if (ret) {
            return cprs_diag_set(diag, ret, at, -1, -1, "11.2", ret == -E2BIG ?
                                 "more fds than allowed" : ret == -ENOMEM ?
                                 "out of memory" :
                                 "control message truncated or not "
                                 "SCM_RIGHTS");
        }
        if (n == 0) {
            return cprs_diag_set(diag, -EBADMSG, at, -1, -1, "11.2",
                                 "stream ended before arena_size bytes");
        }
        buf += n;
        at += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int cprs_transfer_recv(int sock, const CprsReaderOpts *opts, CprsDiag *diag,
                       void **ret_buf, size_t *ret_size, int **ret_fds,
                       uint32_t *ret_nfds)
{
    CprsReaderOpts o;
    CprsWireHeader h;
    FdList l = { 0 };
    uint64_t size;
    uint8_t *buf;
    int ret;

    if (sock < 0 || !ret_buf || !ret_size || !ret_fds || !ret_nfds ||
        cprs_opts_copy(&o, sizeof(o), opts)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (!o.max_arena_size || o.max_arena_size > CPRS_MAX_ARENA_SIZE) {
        o.max_arena_size = CPRS_MAX_ARENA_SIZE;
    }
    if (!o.max_records || o.max_records > CPRS_MAX_RECORDS) {
        o.max_records = CPRS_MAX_RECORDS;
    }
    ret = recv_exact(sock, (uint8_t *)&h, sizeof(h), &l, o.max_records, 0,
                     diag);
    if (ret) {
        fdlist_close(&l);
        return ret;
    }
    if (memcmp(h.magic, CPRS_MAGIC, CPRS_MAGIC_SIZE)) {
        fdlist_close(&l);
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "3.2",
                             "bad magic: not a CPR State Arena");
    }
    /* Size the buffer only from a checked arena_size. */
    size = cprs_le64_get(&h.arena_size);
    if (size < sizeof(h) || size > o.max_arena_size || size > SIZE_MAX) {
        fdlist_close(&l);
        return cprs_diag_set(diag, size < sizeof(h) ? -EBADMSG : -E2BIG,
                             offsetof(CprsWireHeader, arena_size), -1, -1,
                             size < sizeof(h) ? "3.6" : "7",
                             "arena_size out of range");
    }
    buf = malloc((size_t)size);
    if (!buf) {
        fdlist_close(&l);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    memcpy(buf, &h, sizeof(h));
    ret = recv_exact(sock, buf + sizeof(h), (size_t)size - sizeof(h), &l,
                     o.max_records, sizeof(h), diag);
    if (ret) {
        free(buf);
        fdlist_close(&l);
        return ret;
    }
    *ret_buf = buf;
    *ret_size = (size_t)size;
    *ret_fds = l.fds;
    *ret_nfds = l.n;
    return 0;
}
