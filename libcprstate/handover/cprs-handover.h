/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-handover.h - the handover layer, private: what moves a state from
 * one image to the next.  Builds on the writer and the reader; nothing in
 * the library builds on it.  One job per file:
 *
 *   fdident.c         an fd described as a record would (kind, identity)
 *   exec.c            QEMU_CPR_EXEC_STATE: persist, find, release
 *   socket.c          the cpr channel's one sender and one reader
 *   transfer.c        an arena and its fds on the channel
 *   legacy-channel.c  QEMU's stream and its fds on the channel
 *   state-*.c         CprsState (cprs-state.h): registry, fds, save, load
 *
 * Everything that touches a socket goes through socket.c; everything that
 * changes the flags of a state's fds through state-fds.c.
 */
#ifndef CPRS_HANDOVER_H
#define CPRS_HANDOVER_H

#include "cprs-writer.h"

/**
 * cprs_fd_identify: describe an open fd as a record would at save time.
 * @fd: an open fd of this process.
 * @info: kind, flags, seals, st_mode, dev, ino and size are set; other
 *        fields are left alone.
 *
 * The kind comes from fstat() and the /proc/self/fd link (memfd:, vfio,
 * iommufd, eventfd, tun, pipe, socket, tmpfs files).
 *
 * Returns: 0, or the syscall error.
 */
CPRS_HIDDEN int cprs_fd_identify(int fd, CprsFdInfo *info);

/*
 * cprs_fd_identify() that recognises memfds by @memfd_dev (from
 * cprs_memfd_dev(); 0: by their /proc link) instead of a readlink().
 */
CPRS_HIDDEN int cprs_fd_identify_dev(int fd, CprsFdInfo *info,
                                     uint64_t memfd_dev);
/*
 * Identity of @fd now (fstat, seals), keeping @known_kind when the file is
 * still (@known_dev, @known_ino); classifies afresh otherwise, or when
 * @known_kind is CPRS_FD_KIND__MAX.
 */
CPRS_HIDDEN int cprs_fd_refresh(int fd, CprsFdInfo *info,
                                uint32_t known_kind, uint64_t known_dev,
                                uint64_t known_ino, uint64_t memfd_dev);
/* st_dev of memfds in this kernel, or 0 if it cannot be learned. */
CPRS_HIDDEN uint64_t cprs_memfd_dev(void);

/*
 * The fds of the rollback QEMU_CPR_ROLLBACK names (rollback.c): its memfd
 * and the previous executable's fd its record names; -1 each when there
 * is none.  cprs_rollback_disarm() closes both, so a loaded state's
 * records may name neither (spec 11.1 step 7).
 */
CPRS_HIDDEN void cprs_rollback_env_fds(int *ret_memfd, int *ret_exe_fd);

/* ---- The cpr channel's socket (socket.c) ------------------------------ */

/* The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD). */
#define CPRS_SCM_MAX_FD 253u

/*
 * sendmsg() all @len bytes of @buf, with @nfds fds (at most
 * CPRS_SCM_MAX_FD; may be 0) attached by SCM_RIGHTS to the first byte
 * accepted; MSG_NOSIGNAL, EINTR retried.  Returns 0 or -errno.
 */
CPRS_HIDDEN int cprs_send_with_fds(int sock, const uint8_t *buf, size_t len,
                                   const int *fds, uint32_t nfds);

/*
 * The one reader of a cpr channel (socket.c says what it guarantees):
 * blocking reads, bytes read ahead to tell the format, received fds
 * queued in arrival order.
 */
typedef struct CprsSockIn {
    int sock;
    uint32_t max_fds;           /* fds kept at most; more: -E2BIG */
    const char *clause;         /* cited by its diagnostics */
    uint64_t received;          /* bytes received so far */
    CprsLegacyFdQueue q;        /* at[i]: bytes received before fd i */
    size_t fd_cap;
    size_t at_cap;
    uint8_t ahead[8];           /* bytes read ahead, not yet handed out */
    size_t ahead_len;
    size_t ahead_pos;
} CprsSockIn;

CPRS_HIDDEN void cprs_sock_in_init(CprsSockIn *in, int sock,
                                   uint32_t max_fds, const char *clause);

/* Close every fd still queued, free the queue. */
CPRS_HIDDEN void cprs_sock_in_close(CprsSockIn *in);

/*
 * Read up to @n (<= 8) first bytes ahead, without handing them out:
 * *@ret_avail is how many there are (fewer only at EOF).  Returns 0 or
 * an error of the reads.
 */
CPRS_HIDDEN int cprs_sock_peek(CprsSockIn *in, size_t n, size_t *ret_avail,
                               CprsDiag *diag);

/*
 * One read of at most @len bytes (those read ahead first); *@ret_got is
 * 0 at EOF.  Returns 0, -EBADMSG (MSG_CTRUNC), -E2BIG (over max_fds),
 * -ENOMEM, or the errno of recvmsg() (-EAGAIN: SO_RCVTIMEO reached).
 */
CPRS_HIDDEN int cprs_sock_recv(CprsSockIn *in, void *buf, size_t len,
                               size_t *ret_got, CprsDiag *diag);

/* Exactly @len bytes (stream offset @at, for the diagnostic), or -EBADMSG
 * if the stream ends first. */
CPRS_HIDDEN int cprs_sock_recv_all(CprsSockIn *in, void *buf, size_t len,
                                   uint64_t at, CprsDiag *diag);

/* ---- On the cpr channel: an arena (transfer.c), QEMU's stream ---------- */

/* cprs_transfer_recv() from a reader (that may have read ahead). */
CPRS_HIDDEN int cprs_transfer_recv_in(CprsSockIn *in,
                                      const CprsReaderOpts *opts,
                                      CprsDiag *diag, void **ret_buf,
                                      size_t *ret_size, int **ret_fds,
                                      uint32_t *ret_nfds);

/* cprs_legacy_recv() from a reader (that may have read ahead). */
CPRS_HIDDEN int cprs_legacy_recv_in(CprsSockIn *in,
                                    const CprsLegacyOpts *opts,
                                    CprsDiag *diag, CprsLegacy **ret_legacy);

/**
 * cprs_legacy_recv: receive a cpr-transfer stream and its fds.
 * @sock: a connected unix stream socket (the sender shuts its write
 *        side down after the stream).  Borrowed, not closed.  Blocking
 *        reads.
 * @opts: as cprs_legacy_decode(); mode must be 0 or CPRS_MODE_TRANSFER;
 *        max_size caps the bytes, max_records the fds.
 * @diag: filled on failure, or NULL.
 * @ret_legacy: the new handle owning every claimed fd, on success.
 *
 * fds come by SCM_RIGHTS, received with MSG_CMSG_CLOEXEC; they are queued
 * in arrival order and each 0x20 service byte claims the oldest fd that
 * had arrived by then, as QEMU does.  A truncated control message
 * (MSG_CTRUNC) fails; other control messages are ignored (socket.c).
 * fds left unclaimed are closed: an error in strict mode, a warning with
 * CPRS_LEGACY_F_LENIENT.  On any failure every received fd is closed.
 * Peer data is untrusted: the bytes are decoded as they come and reading
 * stops at the first verdict more bytes cannot change (an error; strict:
 * EOF after the stream or a byte past it; lenient: a byte past it, where
 * QEMU stops too, the rest left unread).  At most max_size bytes, and
 * never more than the stream and one round, are read and held (spec
 * qemu-legacy-stream L8.1).
 *
 * Returns: as cprs_legacy_decode(), plus -EBADMSG for MSG_CTRUNC, a
 * service byte with no fd, or unclaimed fds (strict); -E2BIG; syscall
 * errors of recvmsg().
 */
CPRS_HIDDEN int cprs_legacy_recv(int sock, const CprsLegacyOpts *opts,
                                 CprsDiag *diag, CprsLegacy **ret_legacy);

/* Shut the write side down after the last byte, as QEMU does. */
#define CPRS_LEGACY_SEND_F_SHUTDOWN UINT32_C(0x1)

/**
 * cprs_legacy_send: send a cpr-transfer stream with its fds.
 * @legacy: a handle in cpr-transfer mode whose every fd record has an fd.
 * @sock: a connected unix stream socket; borrowed.
 * @flags: CPRS_LEGACY_SEND_F_*.
 *
 * Writes the encoded stream; each 0x20 service byte goes alone in one
 * sendmsg() carrying its fd by SCM_RIGHTS, as QEMU sends it.  Uses
 * MSG_NOSIGNAL: a closed peer gives -EPIPE, never SIGPIPE.  On failure
 * part of the stream may have been sent.
 *
 * Returns: 0; -EINVAL not cpr-transfer, an fd record without an fd, or
 * unknown flags; -ENOMEM; syscall errors of sendmsg() or shutdown().
 */
CPRS_HIDDEN int cprs_legacy_send(const CprsLegacy *legacy, int sock,
                                 uint32_t flags);

#endif /* CPRS_HANDOVER_H */
