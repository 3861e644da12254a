/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * legacy-channel.c - QEMU's stream on the cpr-transfer channel: received
 * with its fds, and sent with them (spec/qemu-legacy-stream.rst L8).
 *
 * QEMU's sender writes each 0x20 service byte alone, in one sendmsg()
 * carrying its fd by SCM_RIGHTS.  QEMU's receiver does not tie an fd to
 * its byte: it queues every fd that comes with any read, and each service
 * byte takes the oldest one.  This file reads the socket to EOF the same
 * way (through the channel's one reader, socket.c), remembering how many
 * bytes had arrived before each fd, and lets the decoder hand the queued
 * fds out.
 *
 * The decoder is a pure function of bytes and fds, so the bytes are
 * decoded from the start as they come, at the points
 * cprs_legacy_parse_due() sets (the header, then each doubling), and
 * reading stops at the first verdict more bytes cannot change: an error,
 * or (strict) EOF after the stream, or (lenient) the first byte past the
 * stream, where QEMU stops reading too.  Nothing is held beyond the
 * stream and one round of bytes read with it.
 *
 * Every fd that arrives is closed on every failure path.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cprs-handover.h"

int cprs_legacy_recv_in(CprsSockIn *in, const CprsLegacyOpts *opts,
                        CprsDiag *diag, CprsLegacy **ret_legacy)
{
    CprsLegacyFdQueue *q = &in->q;
    CprsLegacyOpts o;
    CprsLegacy *lg = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, last = 0, got = 0;
    uint32_t i, flags;
    int ret;

    if (!ret_legacy) {
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
    if (in->max_fds > o.max_records) {
        in->max_fds = o.max_records;
    }
    /* Lenient: QEMU reads nothing past the stream, nor do we. */
    flags = o.flags & CPRS_LEGACY_F_LENIENT ? CPRS_LEGACY_PARSE_STOP_END : 0;

    /*
     * spec L2.2, L8.1: the sender shuts its side down after the last
     * byte.  The bytes are decoded as they come; up to max_size bytes
     * are read and held, one more fails.
     */
    for (;;) {
        if (len == cap &&
            cprs_grow(&buf, &cap, len + 1, 1, 4096, (size_t)o.max_size + 1)) {
            ret = cprs_diag_set(diag, len > o.max_size ? -E2BIG : -ENOMEM,
                                len, -1, -1, "L8.1", len > o.max_size ?
                                "stream larger than max_size" :
                                "out of memory");
            break;
        }
        ret = cprs_sock_recv(in, buf + len, cap - len, &got, diag);
        if (ret) {
            break;
        }
        len += got;
        if (got && !cprs_legacy_parse_due(len, last, cap)) {
            continue;
        }
        last = len;
        ret = cprs_legacy_parse(buf, len, &o, q, flags |
                                (got ? CPRS_LEGACY_PARSE_PARTIAL : 0), diag,
                                &lg);
        if (ret != CPRS_LEGACY_NEED_MORE) {
            break;
        }
    }
    /* spec L8.4: fds no service byte claimed are closed and reported. */
    for (i = q->head; !ret && i < q->count; i++) {
        if (!(o.flags & CPRS_LEGACY_F_LENIENT)) {
            ret = cprs_diag_set(diag, -EBADMSG, q->at[i], -1, -1, "L8.4",
                                "fd received but not claimed");
        } else if (cprs_legacy_warn(lg, q->at[i], -1, "L8.4",
                                    "fd received but not claimed; closed")) {
            ret = cprs_diag_set(diag, -ENOMEM, q->at[i], -1, -1, "",
                                "out of memory");
        }
    }
    free(buf);
    if (ret) {
        cprs_legacy_free(lg);
        return ret;
    }
    *ret_legacy = lg;
    return 0;
}

int cprs_legacy_recv(int sock, const CprsLegacyOpts *opts, CprsDiag *diag,
                     CprsLegacy **ret_legacy)
{
    CprsSockIn in;
    int ret;

    if (sock < 0) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    cprs_sock_in_init(&in, sock, CPRS_MAX_RECORDS, "L8.1");
    ret = cprs_legacy_recv_in(&in, opts, diag, ret_legacy);
    cprs_sock_in_close(&in);
    return ret;
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
    ret = cprs_legacy_encode_at(lg, CPRS_MODE_TRANSFER, lg->vfio_form, &buf,
                                &size, &svc);
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
