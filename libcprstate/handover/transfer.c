/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transfer.c - an arena and its fds over a unix stream socket (spec 11.2).
 *
 * The sender writes the header alone, then attaches the fds by SCM_RIGHTS
 * in batches of at most CPRS_SCM_MAX_FD to the following bytes.  The
 * receiver reads the header, checks what sizes the rest (magic,
 * header_size, header CRC, arena_size against its limit) before it
 * allocates anything, then reads exactly arena_size bytes into a buffer
 * that grows with what has arrived, never ahead of it: a peer announcing
 * 16 GiB and sending 200 bytes costs 200 bytes.  fds are collected in
 * arrival order: fd k belongs to slot k.  Peer data is untrusted, and
 * every fd received is closed on any error.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cprs-handover.h"

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
    /* The header alone first, so a reader sees no fds with it. */
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

/*
 * What a receiver must know before it sizes a buffer (spec 3.9, 3.6): the
 * whole header, header_size bytes of it, is in @hdr.  The reader checks
 * the rest when it opens the bytes.
 */
static int header_sizes(const uint8_t *hdr, uint32_t hsize, uint64_t max,
                        uint64_t *ret_size, CprsDiag *diag)
{
    static const uint8_t zero[4];
    const size_t at = offsetof(CprsWireHeader, header_crc32c);
    CprsWireHeader h;
    uint64_t size;
    uint32_t crc;
    int bad;

    memcpy(&h, hdr, sizeof(h));
    crc = cprs_crc32c(cprs_crc32c(cprs_crc32c(0, hdr, at), zero, 4),
                      hdr + at + 4, hsize - at - 4);
    if (crc != cprs_le32_get(&h.header_crc32c)) {
        return cprs_diag_set(diag, -EBADMSG, at, -1, -1, "3.9",
                             "header CRC32C mismatch");
    }
    /* spec 3.6, 7: at least the header, 8-aligned, within the limit. */
    size = cprs_le64_get(&h.arena_size);
    bad = size < hsize || !cprs_aligned(size) ? -EBADMSG :
          size > max || size > SIZE_MAX ? -E2BIG : 0;
    if (bad) {
        return cprs_diag_set(diag, bad, offsetof(CprsWireHeader, arena_size),
                             -1, -1, bad == -E2BIG ? "7" : "3.6",
                             bad == -E2BIG ? "arena_size over the limit" :
                             "arena_size below header_size or unaligned");
    }
    *ret_size = size;
    return 0;
}

/*
 * Receive the header, all header_size bytes of it, and size the arena.
 * The version is left to the reader, which opens the bytes next (and
 * tells a newer major version from a corrupt header, spec 3.3): a header
 * of any size the format allows is checked by its CRC here.
 */
static int recv_header(CprsSockIn *in, uint8_t *hdr, uint64_t max,
                       uint32_t *ret_hsize, uint64_t *ret_size,
                       CprsDiag *diag)
{
    CprsWireHeader h;
    uint32_t hsize;
    int ret;

    ret = cprs_sock_recv_all(in, hdr, CPRS_HEADER_V1_SIZE, 0, diag);
    if (ret) {
        return ret;
    }
    memcpy(&h, hdr, sizeof(h));
    if (memcmp(h.magic, CPRS_MAGIC, CPRS_MAGIC_SIZE)) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "3.2",
                             "bad magic: not a CPR State Arena");
    }
    hsize = cprs_le32_get(&h.header_size);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        !cprs_aligned(hsize)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, header_size), -1, -1,
                             "3.4", "header_size out of range");
    }
    ret = cprs_sock_recv_all(in, hdr + CPRS_HEADER_V1_SIZE,
                             hsize - CPRS_HEADER_V1_SIZE,
                             CPRS_HEADER_V1_SIZE, diag);
    if (!ret) {
        ret = header_sizes(hdr, hsize, max, ret_size, diag);
    }
    *ret_hsize = hsize;
    return ret;
}

int cprs_transfer_recv_in(CprsSockIn *in, const CprsReaderOpts *opts,
                          CprsDiag *diag, void **ret_buf, size_t *ret_size,
                          int **ret_fds, uint32_t *ret_nfds)
{
    uint8_t hdr[CPRS_MAX_HEADER_SIZE];
    CprsReaderOpts o;
    uint64_t size = 0;
    uint8_t *buf = NULL;
    size_t have, cap = 0, got;
    uint32_t hsize = 0;
    int ret;

    if (!ret_buf || !ret_size || !ret_fds || !ret_nfds ||
        cprs_opts_copy(&o, sizeof(o), opts)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (!o.max_arena_size || o.max_arena_size > CPRS_MAX_ARENA_SIZE) {
        o.max_arena_size = CPRS_MAX_ARENA_SIZE;
    }
    ret = recv_header(in, hdr, o.max_arena_size, &hsize, &size, diag);
    /* The buffer grows with the bytes that came, doubling: at most twice
     * what the peer really sent, and never more than arena_size. */
    have = hsize;
    while (!ret) {
        if (cprs_grow(&buf, &cap, have < size ? have + 1 : have, 1,
                      64 * 1024, (size_t)size)) {
            ret = cprs_diag_set(diag, -ENOMEM, have, -1, -1, "",
                                "out of memory");
            break;
        }
        if (have == hsize) {
            memcpy(buf, hdr, hsize);        /* the first round only */
        }
        if (have == size) {
            break;
        }
        ret = cprs_sock_recv(in, buf + have, cap - have, &got, diag);
        if (!ret && !got) {
            ret = cprs_diag_set(diag, -EBADMSG, have, -1, -1, "11.2",
                                "stream ended before arena_size bytes");
        }
        have += got;
    }
    if (ret) {
        free(buf);
        return ret;
    }
    *ret_buf = buf;
    *ret_size = (size_t)size;
    /* The caller owns the fds now. */
    *ret_fds = in->q.fd;
    *ret_nfds = in->q.count;
    free(in->q.at);
    memset(&in->q, 0, sizeof(in->q));
    in->fd_cap = in->at_cap = 0;
    return 0;
}

int cprs_transfer_recv(int sock, const CprsReaderOpts *opts, CprsDiag *diag,
                       void **ret_buf, size_t *ret_size, int **ret_fds,
                       uint32_t *ret_nfds)
{
    CprsReaderOpts o;
    CprsSockIn in;
    int ret;

    if (sock < 0 || cprs_opts_copy(&o, sizeof(o), opts)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (!o.max_records || o.max_records > CPRS_MAX_RECORDS) {
        o.max_records = CPRS_MAX_RECORDS;
    }
    cprs_sock_in_init(&in, sock, o.max_records, "11.2");
    ret = cprs_transfer_recv_in(&in, &o, diag, ret_buf, ret_size, ret_fds,
                                ret_nfds);
    cprs_sock_in_close(&in);
    return ret;
}
