/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * socket.c - the cpr channel's socket: the one sender of bytes with fds
 * (SCM_RIGHTS) and the one reader, shared by the arena transfer
 * (transfer.c), QEMU's stream (legacy-channel.c) and the state's load
 * (state-load.c).  Spec 11.2 and qemu-legacy-stream L8.1 describe what it
 * guarantees:
 *
 * - Reads block (recvmsg() without MSG_DONTWAIT); nothing here polls or
 *   sleeps.  A caller that wants a deadline sets SO_RCVTIMEO on the
 *   socket: a wait that reaches it fails with -EAGAIN, reported as such.
 *   A non-blocking socket fails the same way when nothing is queued.
 * - The format is told from the first bytes by reading them, not by
 *   peeking (MSG_PEEK does not wait for bytes still to come): they are
 *   kept and handed to whoever reads next.
 * - fds come by SCM_RIGHTS, received close-on-exec, and are queued in
 *   arrival order with the number of stream bytes that had arrived before
 *   them; at most max_fds are kept, the rest closed (-E2BIG).
 * - A control message of another kind (credentials, a security label:
 *   only ever there because the caller asked for it with SO_PASSCRED or
 *   SO_PASSSEC) is ignored; one that carries an fd (SCM_PIDFD) has it
 *   closed.  A truncated control message (MSG_CTRUNC) fails: fds were
 *   lost.
 * - Every fd the reader took is closed by cprs_sock_in_close() unless a
 *   caller took it from the queue.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cprs-handover.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* ---- Sending ----------------------------------------------------------- */

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

    if (nfds > CPRS_SCM_MAX_FD || (nfds && !fds) || (len && !buf)) {
        return -EINVAL;
    }
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

/* ---- Receiving --------------------------------------------------------- */

void cprs_sock_in_init(CprsSockIn *in, int sock, uint32_t max_fds,
                       const char *clause)
{
    memset(in, 0, sizeof(*in));
    in->sock = sock;
    in->max_fds = max_fds;
    in->clause = clause;
}

void cprs_sock_in_close(CprsSockIn *in)
{
    uint32_t i;

    for (i = 0; i < in->q.count; i++) {
        if (in->q.fd[i] >= 0) {
            close(in->q.fd[i]);
        }
    }
    free(in->q.fd);
    free(in->q.at);
    memset(&in->q, 0, sizeof(in->q));
}

/* Queue one received fd, or close it when it cannot be kept. */
static int queue_fd(CprsSockIn *in, int fd, uint64_t at)
{
    CprsLegacyFdQueue *q = &in->q;
    int ret = q->count >= in->max_fds ? -E2BIG : 0;

    if (!ret) {
        ret = cprs_grow(&q->fd, &in->fd_cap, (size_t)q->count + 1,
                        sizeof(*q->fd), 16, in->max_fds);
    }
    if (!ret) {
        ret = cprs_grow(&q->at, &in->at_cap, (size_t)q->count + 1,
                        sizeof(*q->at), 16, in->max_fds);
    }
    if (ret) {
        close(fd);
        return ret;
    }
    q->fd[q->count] = fd;
    q->at[q->count++] = at;
    return 0;
}

/*
 * The control messages of one recvmsg(): SCM_RIGHTS fds queued, every
 * other fd closed, whatever happens.  Returns 0 or the first error.
 */
static int take_control(CprsSockIn *in, struct msghdr *msg, uint64_t at)
{
    struct cmsghdr *c;
    size_t n, k;
    int fd, ret = 0;

    for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0) ||
            (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD)) {
            continue;       /* foreign, and no fd in it: ignored */
        }
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (k = 0; k < n; k++) {
            memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
            if (c->cmsg_type == SCM_PIDFD || ret) {
                close(fd);
            } else {
                ret = queue_fd(in, fd, at);     /* closes it on failure */
            }
        }
    }
    return ret;
}

/* One recvmsg() of at most @len bytes into @buf; EINTR retried. */
static int recv_once(CprsSockIn *in, uint8_t *buf, size_t len,
                     size_t *ret_got, CprsDiag *diag)
{
    union {
        char buf[CMSG_SPACE(CPRS_SCM_MAX_FD * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { buf, len };
    struct msghdr msg;
    ssize_t got;
    int ret;

    do {
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        got = recvmsg(in->sock, &msg, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        ret = -errno;
        return cprs_diag_set(diag, ret, in->received, -1, -1, in->clause,
                             ret == -EAGAIN ? "nothing received before the "
                             "socket's receive timeout (SO_RCVTIMEO), or "
                             "non-blocking socket with nothing queued" :
                             "recvmsg failed");
    }
    ret = take_control(in, &msg, in->received);
    if (!ret && (msg.msg_flags & MSG_CTRUNC)) {
        ret = -EBADMSG;
    }
    if (ret) {
        return cprs_diag_set(diag, ret, in->received, -1, -1, in->clause,
                             ret == -E2BIG ? "more fds than the record "
                             "limit" : ret == -ENOMEM ? "out of memory" :
                             "control message truncated (MSG_CTRUNC): fds "
                             "lost");
    }
    CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, got);
    in->received += (uint64_t)got;
    *ret_got = (size_t)got;
    return 0;
}

int cprs_sock_peek(CprsSockIn *in, size_t n, size_t *ret_avail,
                   CprsDiag *diag)
{
    size_t got = 1;
    int ret;

    if (n > sizeof(in->ahead)) {
        return -EINVAL;
    }
    while (in->ahead_len < n && got) {
        ret = recv_once(in, in->ahead + in->ahead_len, n - in->ahead_len,
                        &got, diag);
        if (ret) {
            return ret;
        }
        in->ahead_len += got;
    }
    *ret_avail = in->ahead_len;
    return 0;
}

int cprs_sock_recv(CprsSockIn *in, void *buf, size_t len, size_t *ret_got,
                   CprsDiag *diag)
{
    size_t n = in->ahead_len - in->ahead_pos;

    /* Bytes read ahead first: they came before anything still queued. */
    if (n) {
        n = n < len ? n : len;
        memcpy(buf, in->ahead + in->ahead_pos, n);
        in->ahead_pos += n;
        *ret_got = n;
        return 0;
    }
    return recv_once(in, buf, len, ret_got, diag);
}

int cprs_sock_recv_all(CprsSockIn *in, void *buf, size_t len,
                       uint64_t at, CprsDiag *diag)
{
    uint8_t *p = buf;
    size_t got;
    int ret;

    while (len) {
        ret = cprs_sock_recv(in, p, len, &got, diag);
        if (ret) {
            return ret;
        }
        if (!got) {
            return cprs_diag_set(diag, -EBADMSG, at, -1, -1, in->clause,
                                 "the stream ended early");
        }
        p += got;
        at += got;
        len -= got;
    }
    return 0;
}
