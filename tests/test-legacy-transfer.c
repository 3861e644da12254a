/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-legacy-transfer.c - cpr-transfer for real: legacy streams sent and
 * received over a unix socketpair with real memfds, each received fd
 * checked by fstat (st_dev, st_ino) against the file that was sent.
 *
 * A raw sender and a raw receiver written here (plain sendmsg/recvmsg)
 * check what goes on the wire against QEMU's capture g1 and craft the
 * hostile cases: fds missing, early, late, extra, or dropped by the kernel
 * (MSG_CTRUNC).  Every case checks that no fd leaks.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define NFD 6

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
}

static int memfd_sized(const char *name, off_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    return fd;
}

static void assert_same_file(int a, int b)
{
    struct stat sa, sb;

    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    assert_int_equal(sa.st_dev, sb.st_dev);
    assert_int_equal(sa.st_ino, sb.st_ino);
    assert_int_equal(sa.st_size, sb.st_size);
}

/* Send @len bytes; @fds (if @n) go with the first byte. */
static void raw_sendmsg(int sock, const uint8_t *p, size_t len,
                        const int *fds, size_t n)
{
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(64 * sizeof(int))];
    } ctl;
    struct iovec iov = { (void *)p, len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cm;
    ssize_t got;

    assert_true(n <= 64);
    if (n) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
    }
    got = sendmsg(sock, &msg, MSG_NOSIGNAL);
    assert_int_equal(got, (ssize_t)len);
}

typedef struct Attach {
    size_t off;         /* byte the fds travel with */
    const int *fds;
    size_t n;
} Attach;

/* Send @buf with fds attached to chosen bytes, then shut down. */
static void raw_send(int sock, const uint8_t *buf, size_t len,
                     const Attach *att, size_t natt)
{
    size_t pos = 0, k;

    for (k = 0; k < natt; k++) {
        assert_true(att[k].off >= pos && att[k].off < len);
        if (att[k].off > pos) {
            raw_sendmsg(sock, buf + pos, att[k].off - pos, NULL, 0);
        }
        raw_sendmsg(sock, buf + att[k].off, 1, att[k].fds, att[k].n);
        pos = att[k].off + 1;
    }
    if (len > pos) {
        raw_sendmsg(sock, buf + pos, len - pos, NULL, 0);
    }
    assert_int_equal(shutdown(sock, SHUT_WR), 0);
}

/*
 * Receive to EOF one byte per recvmsg, as the capture proxy did; record
 * the offset each fd came with.
 */
static size_t raw_recv(int sock, uint8_t *buf, size_t cap, int *fds,
                       size_t *fd_at, size_t *ret_nfds)
{
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(16 * sizeof(int))];
    } ctl;
    struct msghdr msg;
    struct iovec iov;
    struct cmsghdr *cm;
    size_t len = 0, nf = 0, k, n;
    ssize_t got;

    for (;;) {
        assert_true(len < cap);
        iov.iov_base = buf + len;
        iov.iov_len = 1;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        assert_true(got >= 0);
        assert_false(msg.msg_flags & MSG_CTRUNC);
        for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
            n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (k = 0; k < n; k++) {
                assert_true(nf < NFD * 2);
                memcpy(&fds[nf], CMSG_DATA(cm) + k * sizeof(int),
                       sizeof(int));
                fd_at[nf++] = len;
            }
        }
        if (!got) {
            break;
        }
        len++;
    }
    *ret_nfds = nf;
    return len;
}

/* ---- The g1 capture: QEMU's own cpr-transfer stream -------------------- */

static uint8_t *g1;
static size_t g1_size;
static CprsLegacy *g1_lg;
static size_t svc[NFD];     /* offsets of the 0x20 service bytes */

static int setup(void **state)
{
    char path[1024];
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsFdInfo fi;
    uint64_t off;
    uint32_t i;

    (void)state;
    snprintf(path, sizeof(path), "%s/qemu-10.2/g1-transfer-q35-memfd/"
             "capture.bin", th_data_dir());
    g1 = th_read_file(path, &g1_size);
    assert_int_equal(cprs_legacy_decode(g1, g1_size, NULL, &d, &g1_lg), 0);
    assert_int_equal(cprs_legacy_fd_count(g1_lg), NFD);
    /* marker, namelen, name + NUL, id: then the service byte. */
    for (i = 0; i < NFD; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(g1_lg, i, &fi), 0);
        assert_int_equal(cprs_legacy_fd_offset(g1_lg, i, &off), 0);
        svc[i] = off + 1 + 4 + fi.name_len + 1 + 4;
        assert_int_equal(g1[svc[i]], 0x20);
    }
    /* The capture proxy saw the fds at these bytes (fd-offsets.txt). */
    assert_int_equal(svc[0], 0x24);
    assert_int_equal(svc[5], 0x95);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cprs_legacy_free(g1_lg);
    free(g1);
    return 0;
}

static const off_t sizes[NFD] = {
    4096, 65536, 2097152, 131072, 262144, 1048576,
};

static void make_memfds(int *fds)
{
    CprsFdInfo fi;
    uint32_t i;

    for (i = 0; i < NFD; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(g1_lg, i, &fi), 0);
        fds[i] = memfd_sized(fi.name, sizes[i]);
    }
}

static void close_all(int *fds, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}

/* A cpr-transfer legacy with g1's records and @fds, plus @vfio devices. */
static CprsLegacy *g1_with(const int *fds, bool vfio)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo,
                                      .name = "0000:00:02.0", .devid = 3,
                                      .ioas_id = 4, .hwpt_id = 5);
    CprsLegacy *lg;
    CprsFdInfo fi;
    uint32_t i;

    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    for (i = 0; i < NFD; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(g1_lg, i, &fi), 0);
        fi.fd = fds[i];
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    }
    if (vfio) {
        assert_int_equal(cprs_legacy_add_vfio(lg, &vi, NULL), 0);
    }
    return lg;
}

static void check_received(const CprsLegacy *lg, const int *sent)
{
    CprsFdInfo a, b;
    uint32_t i;
    int fl;

    assert_int_equal(cprs_legacy_fd_count(lg), NFD);
    for (i = 0; i < NFD; i++) {
        a = CPRS_OPTS(CprsFdInfo);
        b = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(lg, i, &a), 0);
        assert_int_equal(cprs_legacy_fd_get(g1_lg, i, &b), 0);
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.id, b.id);
        assert_true(a.fd >= 0);
        assert_same_file(a.fd, sent[i]);
        /* spec L8.1: received with MSG_CMSG_CLOEXEC. */
        fl = fcntl(a.fd, F_GETFD);
        assert_true(fl >= 0 && (fl & FD_CLOEXEC));
    }
}

/* ---- Tests ------------------------------------------------------------- */

static void test_send_recv(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    CprsLegacy *lg, *got;
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    int fds[NFD], sv[2], taken;
    void *a, *b;
    size_t asz, bsz;

    (void)state;
    make_memfds(fds);
    lg = g1_with(fds, true);
    pair(sv);
    assert_int_equal(cprs_legacy_send(lg, sv[0], CPRS_LEGACY_SEND_F_SHUTDOWN),
                     0);
    assert_int_equal(cprs_legacy_recv(sv[1], NULL, &d, &got), 0);
    check_received(got, fds);
    assert_int_equal(cprs_legacy_get_info(got, &li), 0);
    assert_int_equal(li.mode, CPRS_MODE_TRANSFER);
    assert_int_equal(li.warning_count, 0);
    assert_int_equal(cprs_legacy_vfio_count(got), 1);
    assert_int_equal(cprs_legacy_vfio_get(got, 0, &vi), 0);
    assert_string_equal(vi.name, "0000:00:02.0");
    assert_int_equal(vi.hwpt_id, 5);
    /* The same stream on both sides. */
    assert_int_equal(cprs_legacy_encode(lg, NULL, &a, &asz), 0);
    assert_int_equal(cprs_legacy_encode(got, NULL, &b, &bsz), 0);
    assert_int_equal(asz, bsz);
    assert_memory_equal(a, b, asz);
    assert_int_equal(li.size, asz);
    free(a);
    free(b);

    /* Take one fd: it outlives the handle; the others are closed. */
    assert_int_equal(cprs_legacy_fd_take(got, 2, &taken), 0);
    assert_int_equal(cprs_legacy_fd_take(got, 2, &taken), -ENOENT);
    assert_same_file(taken, fds[2]);
    assert_int_equal(cprs_legacy_fd_take(lg, 0, &taken), -ENOENT);
    cprs_legacy_free(got);
    assert_true(fcntl(taken, F_GETFD) >= 0);
    close(taken);
    cprs_legacy_free(lg);
    close(sv[0]);
    close(sv[1]);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

/* What cprs_legacy_send() puts on the wire is what QEMU put there. */
static void test_wire_matches_qemu(void **state)
{
    uint8_t buf[1024];
    int fds[NFD], rfds[NFD * 2], sv[2];
    size_t at[NFD * 2], nf, len, i;
    unsigned before = th_count_fds();
    CprsLegacy *lg;

    (void)state;
    make_memfds(fds);
    lg = g1_with(fds, false);
    pair(sv);
    assert_int_equal(cprs_legacy_send(lg, sv[0], CPRS_LEGACY_SEND_F_SHUTDOWN),
                     0);
    len = raw_recv(sv[1], buf, sizeof(buf), rfds, at, &nf);
    assert_int_equal(len, g1_size);
    assert_memory_equal(buf, g1, g1_size);
    /* Each fd came with exactly its own 0x20 byte. */
    assert_int_equal(nf, NFD);
    for (i = 0; i < NFD; i++) {
        assert_int_equal(at[i], svc[i]);
        assert_same_file(rfds[i], fds[i]);
    }
    close_all(rfds, nf);
    cprs_legacy_free(lg);
    close(sv[0]);
    close(sv[1]);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

/* QEMU's own bytes, fds sent by a raw sender, received by the library. */
static void test_recv_qemu_bytes(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    Attach att[NFD];
    CprsLegacy *got;
    int fds[NFD], sv[2];
    void *out;
    size_t size, i;

    (void)state;
    make_memfds(fds);
    for (i = 0; i < NFD; i++) {
        att[i] = (Attach) { svc[i], &fds[i], 1 };
    }
    pair(sv);
    raw_send(sv[0], g1, g1_size, att, NFD);
    assert_int_equal(cprs_legacy_recv(sv[1], NULL, &d, &got), 0);
    check_received(got, fds);
    assert_int_equal(cprs_legacy_encode(got, NULL, &out, &size), 0);
    assert_int_equal(size, g1_size);
    assert_memory_equal(out, g1, size);
    free(out);
    cprs_legacy_free(got);
    close(sv[0]);
    close(sv[1]);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

/* QEMU queues fds: all of them ahead of their bytes is fine, in order. */
static void test_recv_early_fds(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    Attach att;
    CprsLegacy *got;
    int fds[NFD], sv[2];

    (void)state;
    make_memfds(fds);
    att = (Attach) { 0, fds, NFD };
    pair(sv);
    raw_send(sv[0], g1, g1_size, &att, 1);
    assert_int_equal(cprs_legacy_recv(sv[1], NULL, &d, &got), 0);
    check_received(got, fds);
    cprs_legacy_free(got);
    close(sv[0]);
    close(sv[1]);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

static void expect_recv_fail(const uint8_t *buf, size_t len,
                             const Attach *att, size_t natt,
                             const CprsLegacyOpts *o, int err,
                             uint64_t offset, const char *clause)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *got = NULL;
    int sv[2], ret;

    pair(sv);
    raw_send(sv[0], buf, len, att, natt);
    ret = cprs_legacy_recv(sv[1], o, &d, &got);
    if (ret != err || d.offset != offset || strcmp(d.clause, clause)) {
        fail_msg("got %d at 0x%llx [%s] (%s), want %d at 0x%llx [%s]", ret,
                 (unsigned long long)d.offset, d.clause, d.reason, err,
                 (unsigned long long)offset, clause);
    }
    assert_null(got);
    close(sv[0]);
    close(sv[1]);
}

static void test_recv_missing_fds(void **state)
{
    CprsLegacyOpts lenient = CPRS_OPTS(CprsLegacyOpts,
                                       .flags = CPRS_LEGACY_F_LENIENT);
    unsigned before = th_count_fds();
    Attach att[NFD];
    int fds[NFD];
    size_t i;

    (void)state;
    make_memfds(fds);
    /* No fd at all: the first service byte finds the queue empty. */
    expect_recv_fail(g1, g1_size, NULL, 0, NULL, -EBADMSG, svc[0], "L8.3");
    expect_recv_fail(g1, g1_size, NULL, 0, &lenient, -EBADMSG, svc[0],
                     "L8.3");
    /* The last fd missing: the five others are closed again. */
    for (i = 0; i < NFD - 1; i++) {
        att[i] = (Attach) { svc[i], &fds[i], 1 };
    }
    expect_recv_fail(g1, g1_size, att, NFD - 1, NULL, -EBADMSG, svc[5],
                     "L8.3");
    /* A stream cut short after some fds came: all closed. */
    expect_recv_fail(g1, svc[3] + 3, att, 4, NULL, -EBADMSG, svc[3] + 3,
                     "L7");
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

/*
 * An fd that comes only after its byte was read: QEMU has no fd for the
 * byte then.  The stream is made larger than any first read (64 KiB of
 * names), with every fd on its last byte.
 */
static void test_recv_late_fds(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    unsigned before = th_count_fds();
    CprsFdInfo fi;
    CprsLegacy *lg;
    char name[1100];
    int fds[64], sv[2];
    Attach att;
    uint64_t off;
    void *buf;
    size_t size;
    uint32_t i;

    (void)state;
    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    for (i = 0; i < 64; i++) {
        memset(name, 'a' + i % 26, 1050);
        snprintf(name + 1050, 50, "-%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .fd = -1);
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
        fds[i] = memfd_sized("late", 4096);
    }
    assert_int_equal(cprs_legacy_encode(lg, NULL, &buf, &size), 0);
    assert_true(size > 65536);
    att = (Attach) { size - 1, fds, 64 };
    /* The first service byte: after marker, namelen, name, id. */
    off = 8 + 1 + 4 + 1050 + 3 + 4;
    expect_recv_fail(buf, size, &att, 1, NULL, -EBADMSG, off, "L8.3");
    (void)sv;
    free(buf);
    cprs_legacy_free(lg);
    close_all(fds, 64);
    assert_int_equal(th_count_fds(), before);
}

static void test_recv_extra_fd(void **state)
{
    CprsLegacyOpts lenient = CPRS_OPTS(CprsLegacyOpts,
                                       .flags = CPRS_LEGACY_F_LENIENT);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsDiag w = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    Attach att[NFD + 1];
    CprsLegacy *got;
    int fds[NFD + 1], sv[2];
    size_t i;

    (void)state;
    make_memfds(fds);
    fds[NFD] = memfd_sized("extra", 1);
    for (i = 0; i < NFD; i++) {
        att[i] = (Attach) { svc[i], &fds[i], 1 };
    }
    att[NFD] = (Attach) { g1_size - 1, &fds[NFD], 1 };
    /*
     * The extra fd came with the read that started right after the last
     * service byte (a read stops after the bytes an fd came with).
     */
    expect_recv_fail(g1, g1_size, att, NFD + 1, NULL, -EBADMSG, svc[5] + 1,
                     "L8.4");
    assert_int_equal(th_count_fds(), before + NFD + 1);

    pair(sv);
    raw_send(sv[0], g1, g1_size, att, NFD + 1);
    assert_int_equal(cprs_legacy_recv(sv[1], &lenient, &d, &got), 0);
    check_received(got, fds);
    assert_int_equal(cprs_legacy_warning_count(got), 1);
    assert_int_equal(cprs_legacy_warning_get(got, 0, &w), 0);
    assert_string_equal(w.clause, "L8.4");
    assert_int_equal(w.offset, svc[5] + 1);
    cprs_legacy_free(got);
    close(sv[0]);
    close(sv[1]);
    close_all(fds, NFD + 1);
    assert_int_equal(th_count_fds(), before);
}

/* Malformed bytes with fds: strict refuses (closing all), lenient warns. */
static void test_recv_lenient_marker(void **state)
{
    CprsLegacyOpts lenient = CPRS_OPTS(CprsLegacyOpts,
                                       .flags = CPRS_LEGACY_F_LENIENT);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    Attach att[NFD];
    CprsLegacy *got;
    uint8_t *bad;
    uint64_t off;
    int fds[NFD], sv[2];
    size_t i;

    (void)state;
    make_memfds(fds);
    for (i = 0; i < NFD; i++) {
        att[i] = (Attach) { svc[i], &fds[i], 1 };
    }
    assert_int_equal(cprs_legacy_fd_offset(g1_lg, 3, &off), 0);
    bad = malloc(g1_size);
    assert_non_null(bad);
    memcpy(bad, g1, g1_size);
    bad[off] = 0x02;
    expect_recv_fail(bad, g1_size, att, NFD, NULL, -EBADMSG, off, "L4.1");
    pair(sv);
    raw_send(sv[0], bad, g1_size, att, NFD);
    assert_int_equal(cprs_legacy_recv(sv[1], &lenient, &d, &got), 0);
    check_received(got, fds);
    assert_int_equal(cprs_legacy_warning_count(got), 1);
    cprs_legacy_free(got);
    close(sv[0]);
    close(sv[1]);
    free(bad);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

static void test_recv_limits(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .max_records = 2);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    Attach att[NFD];
    CprsLegacy *got;
    int fds[NFD], sv[2];
    size_t i;

    (void)state;
    make_memfds(fds);
    for (i = 0; i < NFD; i++) {
        att[i] = (Attach) { svc[i], &fds[i], 1 };
    }
    /* More fds than records allowed. */
    pair(sv);
    raw_send(sv[0], g1, g1_size, att, NFD);
    assert_int_equal(cprs_legacy_recv(sv[1], &o, &d, &got), -E2BIG);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(th_count_fds(), before + NFD);
    /* More bytes than max_size. */
    o = CPRS_OPTS(CprsLegacyOpts, .max_size = g1_size - 1);
    pair(sv);
    raw_send(sv[0], g1, g1_size, att, NFD);
    assert_int_equal(cprs_legacy_recv(sv[1], &o, &d, &got), -E2BIG);
    assert_string_equal(d.clause, "L8.1");
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(th_count_fds(), before + NFD);
    /* Exactly max_size is fine. */
    o.max_size = g1_size;
    pair(sv);
    raw_send(sv[0], g1, g1_size, att, NFD);
    assert_int_equal(cprs_legacy_recv(sv[1], &o, &d, &got), 0);
    cprs_legacy_free(got);
    close(sv[0]);
    close(sv[1]);
    /* cpr-exec cannot come over a socket. */
    o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC);
    assert_int_equal(cprs_legacy_recv(0, &o, &d, &got), -EINVAL);
    assert_int_equal(cprs_legacy_recv(-1, NULL, &d, &got), -EINVAL);
    close_all(fds, NFD);
    assert_int_equal(th_count_fds(), before);
}

/*
 * The kernel cannot install the fds (RLIMIT_NOFILE): it drops them and
 * sets MSG_CTRUNC.  Run in a child so the limit stays there.
 */
static void test_recv_ctrunc(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        CprsDiag d = CPRS_OPTS(CprsDiag);
        struct rlimit rl;
        CprsLegacy *got = NULL;
        Attach att;
        int fds[NFD], sv[2], fd, maxfd = 0, ret;
        unsigned before;

        make_memfds(fds);
        att = (Attach) { 0, fds, NFD };
        pair(sv);
        raw_send(sv[0], g1, g1_size, &att, 1);
        close_all(fds, NFD);
        /* Fill every hole below the highest fd: fds 0..maxfd all open. */
        for (fd = 0; fd < 1024; fd++) {
            if (fcntl(fd, F_GETFD) >= 0) {
                maxfd = fd;
            }
        }
        do {
            fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        } while (fd >= 0 && fd < maxfd);
        if (fd < 0) {
            _exit(4);
        }
        /* Exactly two numbers stay free for the six fds sent. */
        rl.rlim_cur = (rlim_t)th_count_fds() + 2;
        rl.rlim_max = 4096;
        if (setrlimit(RLIMIT_NOFILE, &rl)) {
            _exit(3);
        }
        before = th_count_fds();
        ret = cprs_legacy_recv(sv[1], NULL, &d, &got);
        if (ret != -EBADMSG || !strstr(d.reason, "MSG_CTRUNC") || got) {
            _exit(1);
        }
        _exit(th_count_fds() == before ? 0 : 2);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_send_errors(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0");
    CprsLegacy *lg;
    int fds[NFD], sv[2];

    (void)state;
    make_memfds(fds);
    /* A closed peer gives EPIPE, not SIGPIPE. */
    lg = g1_with(fds, false);
    pair(sv);
    close(sv[1]);
    assert_int_equal(cprs_legacy_send(lg, sv[0], 0), -EPIPE);
    close(sv[0]);
    assert_int_equal(cprs_legacy_send(lg, 0, 0x2), -EINVAL);
    assert_int_equal(cprs_legacy_send(lg, -1, 0), -EINVAL);
    cprs_legacy_free(lg);
    /* cpr-exec streams are not sent. */
    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    fi.fd = fds[0];
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    assert_int_equal(cprs_legacy_send(lg, 0, 0), -EINVAL);
    cprs_legacy_free(lg);
    close_all(fds, NFD);
}

/* Many records, sender in a child: reads and claims across chunks. */
static void test_many_records(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    unsigned before = th_count_fds();
    enum { N = 300 };
    CprsFdInfo fi;
    CprsLegacy *lg, *got;
    char name[300];
    int fds[N], sv[2], status;
    uint32_t i;
    pid_t pid;

    (void)state;
    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    for (i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "%0250u", i);
        fds[i] = memfd_sized("many", 4096);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)i,
                       .fd = fds[i]);
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    }
    pair(sv);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        _exit(cprs_legacy_send(lg, sv[0], CPRS_LEGACY_SEND_F_SHUTDOWN) ? 1 :
              0);
    }
    close(sv[0]);
    assert_int_equal(cprs_legacy_recv(sv[1], NULL, &d, &got), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(cprs_legacy_fd_count(got), N);
    for (i = 0; i < N; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(got, i, &fi), 0);
        assert_int_equal(fi.id, (int32_t)i);
        assert_same_file(fi.fd, fds[i]);
    }
    cprs_legacy_free(got);
    cprs_legacy_free(lg);
    close(sv[1]);
    close_all(fds, N);
    assert_int_equal(th_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_wire_matches_qemu),
        cmocka_unit_test(test_recv_qemu_bytes),
        cmocka_unit_test(test_recv_early_fds),
        cmocka_unit_test(test_recv_missing_fds),
        cmocka_unit_test(test_recv_late_fds),
        cmocka_unit_test(test_recv_extra_fd),
        cmocka_unit_test(test_recv_lenient_marker),
        cmocka_unit_test(test_recv_limits),
        cmocka_unit_test(test_recv_ctrunc),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_many_records),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
