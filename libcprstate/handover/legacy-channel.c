/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * legacy-channel.c - QEMU's stream on the cpr-transfer channel: received
 * with its fds, and sent with them (spec/qemu-legacy-stream.rst L8).
 *
 * QEMU's sender writes each 0x20 service byte alone, in one sendmsg()
 * carrying its fd by SCM_RIGHTS.  QEMU's receiver does not tie an fd to
 * its byte: it queues every fd that comes with any read, and each service
 * byte takes the oldest one.  This file reads the socket to EOF the same
 * way, remembering how many bytes had arrived before each fd, and lets the
 * decoder hand the queued fds out.  Reading everything first keeps the
 * decoder a pure function of bytes and fds; the stream is small.
 *
 * Every fd that arrives is closed on every failure path.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cprs-handover.h"

/* Linux passes at most this many fds in one message (SCM_MAX_FD). */
#define RECV_MAX_FDS 253

static void queue_close(CprsLegacyFdQueue *q)
{
    uint32_t i;

    for (i = 0; i < q->count; i++) {
        if (q->fd[i] >= 0) {
            close(q->fd[i]);
        }
    }
    free(q->fd);
    free(q->at);
}

/* Queue @n fds that came after @at stream bytes; close any over @max. */
static int queue_add(CprsLegacyFdQueue *q, uint32_t *cap, const int *fds,
                     size_t n, uint64_t at, uint32_t max)
{
    uint64_t ncap;
    int *nfd;
    uint64_t *nat;
    size_t i;
    int ret = 0;

    for (i = 0; i < n; i++) {
        if (!ret && q->count >= max) {
            ret = -E2BIG;
        }
        if (!ret && q->count == *cap) {
            ncap = *cap ? 2 * (uint64_t)*cap : 16;
            if (ncap > max) {
                ncap = max;
            }
            nfd = realloc(q->fd, (size_t)ncap * sizeof(*nfd));
            if (nfd) {
                q->fd = nfd;
            }
            nat = nfd ? realloc(q->at, (size_t)ncap * sizeof(*nat)) : NULL;
            if (nat) {
                q->at = nat;
                *cap = (uint32_t)ncap;
            } else {
                ret = -ENOMEM;
            }
        }
        if (ret) {
            close(fds[i]);
            continue;
        }
        q->fd[q->count] = fds[i];
        q->at[q->count++] = at;
    }
    return ret;
}

/*
 * One recvmsg() into @buf; queues the fds that came with it.  Returns the
 * byte count (0 at EOF) or a negative errno; *@ret_reason says why.
 */
static ssize_t recv_once(int sock, uint8_t *buf, size_t len,
                         CprsLegacyFdQueue *q, uint32_t *qcap, uint64_t at,
                         uint32_t max_fds, const char **ret_reason)
{
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(RECV_MAX_FDS * sizeof(int))];
    } ctl;
    int fds[RECV_MAX_FDS];
    struct iovec iov = { buf, len };
    struct msghdr msg;
    struct cmsghdr *cm;
    size_t n;
    ssize_t got;
    int ret = 0, qret;

    do {
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        /* spec L8.1: fds must not leak into children of the caller. */
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        *ret_reason = "recvmsg failed";
        return -errno;
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
            cm->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (n > RECV_MAX_FDS) {
            n = RECV_MAX_FDS;
        }
        memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
        /* Queued or closed: no fd is left behind, even on failure. */
        qret = queue_add(q, qcap, fds, n, at, max_fds);
        if (qret && !ret) {
            ret = qret;
            *ret_reason = qret == -E2BIG ? "more fds than the record limit"
                                         : "out of memory";
        }
    }
    /* spec L8.1: the kernel drops fds that did not fit: fail. */
    if (msg.msg_flags & MSG_CTRUNC) {
        *ret_reason = "control message truncated (MSG_CTRUNC): fds lost";
        return -EBADMSG;
    }
    return ret ? ret : got;
}

int cprs_legacy_recv(int sock, const CprsLegacyOpts *opts, CprsDiag *diag,
                     CprsLegacy **ret_legacy)
{
    CprsLegacyFdQueue q = { 0 };
    CprsLegacyOpts o;
    CprsLegacy *lg = NULL;
    const char *reason = "";
    uint8_t *buf = NULL, *nbuf;
    size_t len = 0, cap = 0;
    uint32_t qcap = 0, i;
    ssize_t got;
    int ret;

    if (sock < 0 || !ret_legacy) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    ret = cprs_legacy_opts_get(&o, opts);
    if (!ret && o.mode == CPRS_MODE_EXEC) {
        ret = -EINVAL;
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    o.mode = CPRS_MODE_TRANSFER;

    /* spec L2.2: the sender shuts its side down after the last byte. */
    for (;;) {
        if (len == cap) {
            if (cap > o.max_size) {
                ret = -E2BIG;
                reason = "stream larger than max_size";
                break;
            }
            cap = cap ? 2 * cap : 4096;
            if (cap > o.max_size + 1) {
                cap = (size_t)o.max_size + 1;
            }
            nbuf = realloc(buf, cap);
            if (!nbuf) {
                ret = -ENOMEM;
                reason = "out of memory";
                break;
            }
            buf = nbuf;
        }
        got = recv_once(sock, buf + len, cap - len, &q, &qcap, len,
                        o.max_records, &reason);
        if (got <= 0) {
            ret = (int)got;
            break;
        }
        len += (size_t)got;
    }
    if (!ret && len > o.max_size) {
        ret = -E2BIG;
        reason = "stream larger than max_size";
    }
    if (ret) {
        cprs_diag_set(diag, ret, len, -1, -1, "L8.1", reason);
        goto out;
    }

    ret = cprs_legacy_parse(buf, len, &o, &q, diag, &lg);
    if (ret) {
        goto out;
    }
    /* spec L8.4: fds no service byte claimed are closed and reported. */
    for (i = q.head; i < q.count && !ret; i++) {
        if (!(o.flags & CPRS_LEGACY_F_LENIENT)) {
            ret = cprs_diag_set(diag, -EBADMSG, q.at[i], -1, -1, "L8.4",
                                "fd received but not claimed");
        } else if (cprs_legacy_warn(lg, q.at[i], -1, "L8.4",
                                    "fd received but not claimed; closed")) {
            ret = cprs_diag_set(diag, -ENOMEM, q.at[i], -1, -1, "",
                                "out of memory");
        }
    }
    if (ret) {
        cprs_legacy_free(lg);
        lg = NULL;
    }

out:
    queue_close(&q);
    free(buf);
    if (ret) {
        return ret;
    }
    *ret_legacy = lg;
    return 0;
}

/* ---- Sending over a cpr-transfer socket -------------------------------- */

int cprs_legacy_send(const CprsLegacy *lg, int sock, uint32_t flags)
{
    uint64_t *svc = NULL;
    uint8_t *buf = NULL;
    size_t size, pos = 0;
    uint32_t i;
    int ret;

    if (!lg || sock < 0 || (flags & ~CPRS_LEGACY_SEND_F_SHUTDOWN) ||
        lg->mode != CPRS_MODE_TRANSFER) {
        return -EINVAL;
    }
    for (i = 0; i < lg->fds.count; i++) {
        if (lg->fds.rec[i].fd < 0) {
            return -EINVAL;
        }
    }
    ret = cprs_legacy_encode_at(lg, CPRS_MODE_TRANSFER, lg->vfio_form, &buf, &size, &svc);
    if (ret) {
        return ret;
    }
    /*
     * spec L8.2: the bytes before a service byte first, then the service
     * byte alone with its fd, as QEMU flushes before each fd.
     */
    for (i = 0; i < lg->fds.count && !ret; i++) {
        ret = cprs_send_with_fds(sock, buf + pos, (size_t)svc[i] - pos,
                                 NULL, 0);
        if (!ret) {
            ret = cprs_send_with_fds(sock, buf + svc[i], 1,
                                     &lg->fds.rec[i].fd, 1);
        }
        pos = (size_t)svc[i] + 1;
    }
    if (!ret) {
        ret = cprs_send_with_fds(sock, buf + pos, size - pos, NULL, 0);
    }
    if (!ret && (flags & CPRS_LEGACY_SEND_F_SHUTDOWN) &&
        shutdown(sock, SHUT_WR) < 0) {
        ret = -errno;
    }
    free(buf);
    free(svc);
    return ret;
}
