/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-legacy.c - QEMU's stream and the dual stream on the
 * cpr-exec and cpr-transfer load paths (issue 11, classes 5 and 7):
 * nothing read or allocated before the bytes in hand decide, no record
 * naming an fd of the hand-over itself.  Links the counted library
 * (bounded.h): work is counted at 1x and 8x, never timed.
 *
 * Each test asserts first that the work it watches was counted at all:
 * a path that counts nothing would pass any bound.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "helpers.h"
#include "bounded.h"

/* ---- Streams (tests/helpers.h: ThBuf) ----------------------------------- */

/* A cpr-exec stream "QCPR" 1, one record ("ram0", 0, @fd), 0x00. */
static ThBuf one_record(int fd)
{
    ThBuf b = { 0 };

    th_put(&b, "QCPR", 4);
    th_put_be32(&b, 1);
    th_put_u8(&b, 1);
    th_put_be32(&b, 5);
    th_put(&b, "ram0", 5);
    th_put_be32(&b, 0);
    th_put_be32(&b, (uint32_t)fd);
    th_put_u8(&b, 0);
    return b;
}

/* Set QEMU_CPR_EXEC_STATE to @fd, persisted (no close-on-exec). */
static void persist_as_state(int fd)
{
    char val[16];

    assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
    snprintf(val, sizeof(val), "%d", fd);
    setenv(CPRS_EXEC_STATE_NAME, val, 1);
}

/* A load that must fail with @err, @clause, a reason containing @part. */
static Work load_refused(int err, const char *clause, const char *part,
                         uint32_t flags)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts, .flags = flags);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    const char *before = getenv(CPRS_EXEC_STATE_NAME);
    char val[16];
    int ret;
    Work w;

    assert_non_null(before);
    snprintf(val, sizeof(val), "%s", before);
    work_reset();
    ret = cprs_state_load_exec(&lo, &d, &s);
    w = work_now();
    if (ret != err || strcmp(d.clause, clause) || !strstr(d.reason, part)) {
        fail_msg("load gave %d [%s] %s at %" PRIu64 ", want %d [%s] ...%s",
                 ret, d.clause, d.reason, d.offset, err, clause, part);
    }
    assert_null(s);
    /* Untouched: the variable still names the memfd. */
    assert_string_equal(getenv(CPRS_EXEC_STATE_NAME), val);
    return w;
}

/* ---- Class 5: a dual stream is checked before it is read whole --------- */

static void trailer_crc(CprsWireDualTrailer *t)
{
    cprs_le32_set(&t->crc32c, 0);
    cprs_le32_set(&t->crc32c, cprs_crc32c(0, t, sizeof(*t)));
}

enum {
    DUAL_MAGIC_ONLY,        /* the trailer's magic, the rest zero */
    DUAL_NO_ARENA,          /* a right trailer, zeros where the arena is */
    DUAL_BAD_HEADER_CRC,    /* an arena header whose CRC is wrong */
    DUAL_OTHER_SIZE,        /* a right header of another arena_size */
};

/*
 * A sealed QEMU_CPR_EXEC_STATE memfd of @size bytes, sparse: a 9-byte
 * QCPR stream, zeros, a trailer at the end as @kind says.
 */
static int dual_memfd(uint64_t size, int kind)
{
    ThBuf b = one_record(0);
    CprsWireDualTrailer t;
    CprsWireHeader h;
    const uint64_t aoff = 24, asize = size - aoff - sizeof(t);
    int fd;

    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b.p, 9, 0), 9);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    memset(&t, 0, sizeof(t));
    memcpy(t.magic, CPRS_DUAL_MAGIC, sizeof(t.magic));
    if (kind != DUAL_MAGIC_ONLY) {
        cprs_le16_set(&t.version_major, CPRS_DUAL_VERSION_MAJOR);
        cprs_le32_set(&t.trailer_size, sizeof(t));
        cprs_le64_set(&t.legacy_size, 24);
        cprs_le64_set(&t.arena_offset, aoff);
        cprs_le64_set(&t.arena_size, asize);
        trailer_crc(&t);
    }
    assert_int_equal(pwrite(fd, &t, sizeof(t), (off_t)(size - sizeof(t))),
                     (ssize_t)sizeof(t));
    if (kind == DUAL_BAD_HEADER_CRC || kind == DUAL_OTHER_SIZE) {
        memset(&h, 0, sizeof(h));
        memcpy(h.magic, CPRS_MAGIC, CPRS_MAGIC_SIZE);
        cprs_le16_set(&h.version_major, CPRS_FORMAT_VERSION_MAJOR);
        cprs_le32_set(&h.header_size, CPRS_HEADER_V1_SIZE);
        cprs_le64_set(&h.arena_size, kind == DUAL_OTHER_SIZE ? asize - 8 :
                      asize);
        cprs_le32_set(&h.mode, CPRS_MODE_EXEC);
        cprs_le32_set(&h.header_crc32c, cprs_crc32c(0, &h, sizeof(h)) ^
                      (kind == DUAL_BAD_HEADER_CRC));
        assert_int_equal(pwrite(fd, &h, sizeof(h), (off_t)aoff),
                         (ssize_t)sizeof(h));
    }
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                           F_SEAL_WRITE), 0);
    free(b.p);
    return fd;
}

static Work dual_refused(uint64_t size, int kind, int err,
                         const char *clause, const char *part)
{
    int fd = dual_memfd(size, kind);
    Work w;

    persist_as_state(fd);
    w = load_refused(err, clause, part, 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    return w;
}

/*
 * Class 5: a sealed, sparse dual stream of 4 MiB and 32 MiB whose
 * trailer or arena header is wrong.  The 48 bytes of the trailer, and
 * the arena header they point at, decide: nothing is allocated, and
 * the bytes read are the same at both sizes.
 */
static void test_dual_trailer_first(void **state)
{
    static const struct {
        int kind;
        int err;
        const char *clause;
        const char *part;
    } cases[] = {
        { DUAL_MAGIC_ONLY, -EBADMSG, "F4.2", "major version" },
        { DUAL_NO_ARENA, -EBADMSG, "F4.2", "no arena" },
        { DUAL_BAD_HEADER_CRC, -EBADMSG, "3.9", "CRC" },
        { DUAL_OTHER_SIZE, -EBADMSG, "F4.2", "differs" },
    };
    const uint64_t mib = 1u << 20;
    size_t i;
    Work w1, w8;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        w1 = dual_refused(4 * mib, cases[i].kind, cases[i].err,
                          cases[i].clause, cases[i].part);
        w8 = dual_refused(32 * mib, cases[i].kind, cases[i].err,
                          cases[i].clause, cases[i].part);
        work_expect_linear("dual stream", &w1, &w8, 1.0, 0);
        assert_true(w1.n[CPRS_WORK_READ_BYTES] > 0);
        /* The trailer and at most an arena header: not the file. */
        assert_true(w8.n[CPRS_WORK_READ_BYTES] <=
                    sizeof(CprsWireDualTrailer) + CPRS_MAX_HEADER_SIZE);
        assert_int_equal(w8.n[CPRS_WORK_READ_BYTES],
                         w1.n[CPRS_WORK_READ_BYTES]);
        assert_int_equal(w8.n[CPRS_WORK_ALLOC_BYTES], 0);
    }
}

/* ---- Class 7: no record may name an fd of the armed rollback ------------ */

typedef struct Armed {
    CprsState *s0;
    CprsRollback *rb;
    int state_fd;           /* QEMU_CPR_EXEC_STATE, the rollback is bound */
    int memfd;              /* QEMU_CPR_ROLLBACK */
    int exe_fd;             /* the previous executable */
} Armed;

static char *const rb_argv[] = { (char *)"/bin/true", NULL };

static void arm(Armed *a)
{
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts, .argv = rb_argv);
    CprsRollbackInfo ri = CPRS_OPTS(CprsRollbackInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    int fd;

    assert_int_equal(cprs_state_new(&a->s0), 0);
    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    if (cprs_rollback_arm(a->s0, fd, &ro, &d, &a->rb)) {
        fail_msg("arm: %s", d.reason);
    }
    a->memfd = atoi(getenv(CPRS_ROLLBACK_NAME));
    assert_int_equal(cprs_rollback_get_info(a->rb, &ri), 0);
    a->exe_fd = ri.exe_fd;
    assert_true(a->exe_fd >= 0 && a->memfd >= 0 && a->exe_fd != a->memfd);
    /* QEMU's legacy stream lives in the same memfd, as QEMU leaves it. */
    assert_int_equal(cprs_exec_persist(fd, &a->state_fd), 0);
    close(fd);
}

/* The state memfd holds one record naming @fd. */
static void state_names(const Armed *a, int fd)
{
    ThBuf b = one_record(fd);

    assert_int_equal(ftruncate(a->state_fd, 0), 0);
    assert_int_equal(pwrite(a->state_fd, b.p, b.len, 0), (ssize_t)b.len);
    free(b.p);
}

static void find_ok(void)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsRollback *rb = NULL;

    if (cprs_rollback_find(0, &d, &rb)) {
        fail_msg("find: %s [%s]", d.reason, d.clause);
    }
    /* The armed handle owns the same fds: close nothing here. */
    cprs_rollback_forget(rb);
}

/*
 * Class 7 (spec 11.1 step 7): a record naming the QEMU_CPR_ROLLBACK
 * memfd or the previous executable's fd, which cprs_rollback_disarm()
 * closes, is refused like one naming the state memfd: loaded before
 * cprs_rollback_find(), after it, with or without the fd check; in
 * QEMU's stream and in an arena.  A record naming another open fd loads.
 */
static void test_record_names_rollback_fd(void **state)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    Armed a;
    int targets[2], i, other, arena_fd;
    uint8_t *buf;
    size_t size;
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_EXEC);
    CprsWriter *w;
    CprsFdInfo fi;

    (void)state;
    arm(&a);
    targets[0] = a.memfd;
    targets[1] = a.exe_fd;
    for (i = 0; i < 2; i++) {
        state_names(&a, targets[i]);
        /* Before the rollback is found, then after. */
        load_refused(-EBADMSG, "11.1", "rollback", 0);
        load_refused(-EBADMSG, "11.1", "rollback", CPRS_LOAD_F_NO_FD_CHECK);
        find_ok();
        load_refused(-EBADMSG, "11.1", "rollback", 0);
        load_refused(-EBADMSG, "11.1", "rollback", CPRS_LOAD_F_NO_FD_CHECK);
    }

    /* An arena of its own memfd (unbound to the rollback): the same. */
    fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = a.exe_fd,
                   .kind = CPRS_FD_KIND_OTHER);
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)&buf, &size), 0);
    cprs_writer_free(w);
    arena_fd = memfd_create(CPRS_EXEC_STATE_NAME,
                            MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_int_equal(write(arena_fd, buf, size), (ssize_t)size);
    assert_int_equal(fcntl(arena_fd, F_ADD_SEALS, F_SEAL_SHRINK |
                           F_SEAL_GROW | F_SEAL_WRITE), 0);
    persist_as_state(arena_fd);
    load_refused(-EBADMSG, "11.1", "rollback", CPRS_LOAD_F_NO_FD_CHECK);
    close(arena_fd);
    free(buf);
    persist_as_state(a.state_fd);

    /* Control: a record naming another open fd is loaded. */
    other = memfd_create("ram0", MFD_CLOEXEC);
    assert_true(other >= 0);
    state_names(&a, other);
    if (cprs_state_load_exec(&lo, &d, &s)) {
        fail_msg("load: %s [%s]", d.reason, d.clause);
    }
    assert_int_equal(cprs_state_find_fd(s, "ram0", 0), other);
    assert_int_equal(cprs_state_release_source(s), 0);
    cprs_state_free(s);
    close(other);

    /* Disarmed: the numbers are closed, a record naming one is refused. */
    cprs_rollback_disarm(a.rb);
    assert_int_equal(fcntl(a.memfd, F_GETFD), -1);
    other = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    state_names(&(Armed) { .state_fd = other }, a.memfd);
    persist_as_state(other);
    load_refused(-ESTALE, "11.4", "not open", 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(other);
    cprs_state_free(a.s0);
}

/* ---- Class 5: cprs_legacy_decode_fd() reads what decides, no more ------ */

/* The shortest stream: header, empty fd list, no vfio subsection. */
static const uint8_t empty_stream[9] = "QCPR\0\0\0\1";

/* A memfd of @size bytes, sparse: the 9-byte stream, then zeros. */
static int sparse_stream(const char *name, uint64_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, empty_stream, sizeof(empty_stream), 0),
                     (ssize_t)sizeof(empty_stream));
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

static Work decode_file_refused(uint64_t size)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts,
                                 .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    int fd = sparse_stream("stream", size);
    Work w;

    work_reset();
    assert_int_equal(cprs_legacy_decode_fd(fd, &o, &d, &lg), -EBADMSG);
    w = work_now();
    assert_null(lg);
    assert_string_equal(d.clause, "L6");
    assert_int_equal(d.offset, sizeof(empty_stream));
    close(fd);
    return w;
}

static Work load_file_refused(uint64_t size)
{
    int fd = sparse_stream(CPRS_EXEC_STATE_NAME, size);
    Work w;

    persist_as_state(fd);
    w = load_refused(-EBADMSG, "L6", "trailing", 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    return w;
}

/*
 * Class 5: a memfd of 4 MiB and 32 MiB whose 10th byte decides (a byte
 * past the stream, strict).  Read in doubling rounds from 64 KiB, it is
 * decided in the first: the same bytes read and held at both sizes, by
 * cprs_legacy_decode_fd() and by the cpr-exec load.
 */
static void test_legacy_file_rounds(void **state)
{
    const uint64_t mib = 1u << 20;
    Work w1, w8;

    (void)state;
    w1 = decode_file_refused(4 * mib);
    w8 = decode_file_refused(32 * mib);
    work_expect_linear("decode_fd of a file", &w1, &w8, 1.0, 0);
    assert_true(w1.n[CPRS_WORK_READ_BYTES] > 0);
    assert_int_equal(w8.n[CPRS_WORK_READ_BYTES],
                     w1.n[CPRS_WORK_READ_BYTES]);
    assert_true(w8.n[CPRS_WORK_READ_BYTES] <= 64 * 1024);
    assert_true(w8.n[CPRS_WORK_ALLOC_BYTES] <= 128 * 1024);

    w1 = load_file_refused(4 * mib);
    w8 = load_file_refused(32 * mib);
    work_expect_linear("load_exec of a file", &w1, &w8, 1.0, 0);
    assert_int_equal(w8.n[CPRS_WORK_READ_BYTES],
                     w1.n[CPRS_WORK_READ_BYTES]);
    assert_true(w8.n[CPRS_WORK_READ_BYTES] <= 64 * 1024 + 64);
}

/*
 * Class 5: a pipe whose writer stays open after bytes that decide.  The
 * pipe is non-blocking: a decoder that reads on once the verdict is in
 * gets -EAGAIN (a blocking one would wait for ever), one that stops
 * gives the verdict of the bytes.
 */
static void test_legacy_pipe_early(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        int err;
        const char *clause;
        uint64_t offset;
    } cases[] = {
        { "XXXX", 4, -EBADMSG, "L3.1", 0 },
        { "QX", 2, -EBADMSG, "L3.1", 0 },
        { "QCPR\0\0\0\2", 8, -EPROTONOSUPPORT, "L3.2", 4 },
        { "QCPR\0\0\0\0", 8, -EBADMSG, "L3.2", 4 },
        { "QCPR\0\0\0\1\0garbage", 16, -EBADMSG, "L6", 9 },
        { "QCPR\0\0\0\1\2", 9, -EBADMSG, "L4.1", 8 },
    };
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts,
                                 .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacy *lg;
    CprsDiag d;
    size_t i;
    int p[2], ret;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(write(p[1], cases[i].bytes, cases[i].len),
                         (ssize_t)cases[i].len);
        d = CPRS_OPTS(CprsDiag);
        lg = NULL;
        work_reset();
        ret = cprs_legacy_decode_fd(p[0], &o, &d, &lg);
        if (ret != cases[i].err || strcmp(d.clause, cases[i].clause) ||
            d.offset != cases[i].offset) {
            fail_msg("case %zu: %d [%s] at %" PRIu64 " (%s)", i, ret,
                     d.clause, d.offset, d.reason);
        }
        assert_null(lg);
        assert_int_equal(cprs_work[CPRS_WORK_READ_BYTES], cases[i].len);
        close(p[0]);
        close(p[1]);
    }
}

typedef struct Drip {
    int fd;
    const uint8_t *p;
    size_t len;
} Drip;

/* One byte per message, then close: each read() gets one byte. */
static void *drip_writer(void *arg)
{
    Drip *dr = arg;
    size_t i;

    for (i = 0; i < dr->len; i++) {
        if (send(dr->fd, dr->p + i, 1, MSG_NOSIGNAL) != 1) {
            break;
        }
    }
    close(dr->fd);
    return NULL;
}

/* A cpr-exec stream of @n records of distinct keys, no vfio. */
static ThBuf many_records(uint32_t n)
{
    ThBuf b = { 0 };
    char name[32];
    uint32_t i;

    th_put(&b, "QCPR", 4);
    th_put_be32(&b, 1);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "ram%u", i);
        th_put_u8(&b, 1);
        th_put_be32(&b, (uint32_t)strlen(name) + 1);
        th_put(&b, name, strlen(name) + 1);
        th_put_be32(&b, i);
        th_put_be32(&b, 100 + (i & 7));
    }
    th_put_u8(&b, 0);
    return b;
}

static Work drip_decode(uint32_t n)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts,
                                 .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    ThBuf b = many_records(n);
    Drip dr = { -1, b.p, b.len };
    pthread_t t;
    int sv[2];
    Work w;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                                sv), 0);
    dr.fd = sv[0];
    assert_int_equal(pthread_create(&t, NULL, drip_writer, &dr), 0);
    work_reset();
    assert_int_equal(cprs_legacy_decode_fd(sv[1], &o, &d, &lg), 0);
    w = work_now();
    pthread_join(t, NULL);
    close(sv[1]);
    assert_int_equal(cprs_legacy_fd_count(lg), n);
    cprs_legacy_free(lg);
    /* Re-parsing from the start at doubling points: O(bytes). */
    assert_int_equal(w.n[CPRS_WORK_READ_BYTES], b.len);
    assert_true(w.n[CPRS_WORK_SCAN_BYTES] <= 4 * b.len + 64);
    free(b.p);
    return w;
}

/*
 * Class 5: a source giving one byte per read().  Decoding early must not
 * mean decoding after each read: the bytes parsed and the hash probes
 * grow linearly from 500 to 4,000 records.
 */
static void test_legacy_drip_linear(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = drip_decode(500);
    w8 = drip_decode(4000);
    assert_true(w1.n[CPRS_WORK_SCAN_BYTES] > 0);
    assert_true(w1.n[CPRS_WORK_PROBES] > 0);
    work_expect_linear("decode_fd of a dripping source", &w1, &w8, 1.25, 4096);
}

/* ---- Class 5: QEMU's stream over the cpr channel ------------------------ */

typedef struct Peer {
    int fd;
    const uint8_t *head;
    size_t head_len;
    uint64_t tail;          /* zero bytes after head */
} Peer;

/* @head, @tail zero bytes, then shutdown; stops when the reader goes. */
static void *peer_writer(void *arg)
{
    Peer *pe = arg;
    uint8_t zeros[16384] = { 0 };
    uint64_t left = pe->tail;
    ssize_t n;

    if (send(pe->fd, pe->head, pe->head_len, MSG_NOSIGNAL) !=
        (ssize_t)pe->head_len) {
        return NULL;
    }
    while (left) {
        n = send(pe->fd, zeros, left < sizeof(zeros) ? left : sizeof(zeros),
                 MSG_NOSIGNAL);
        if (n <= 0) {
            return NULL;
        }
        left -= (uint64_t)n;
    }
    shutdown(pe->fd, SHUT_WR);
    return NULL;
}

/* cprs_state_load_transfer() from such a peer: result, diag, work. */
static int channel_load(const void *head, size_t head_len, uint64_t tail,
                        uint32_t flags, CprsDiag *d, Work *w)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts, .flags = flags);
    CprsState *s = NULL;
    Peer pe = { -1, head, head_len, tail };
    pthread_t t;
    int sv[2], ret;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    pe.fd = sv[0];
    assert_int_equal(pthread_create(&t, NULL, peer_writer, &pe), 0);
    *d = CPRS_OPTS(CprsDiag);
    work_reset();
    ret = cprs_state_load_transfer(sv[1], &lo, d, &s);
    *w = work_now();
    /* The reader is gone: the peer's next send fails, it ends. */
    close(sv[1]);
    pthread_join(t, NULL);
    close(sv[0]);
    if (!ret) {
        assert_int_equal(cprs_state_fd_count(s), 0);
        cprs_state_free(s);
    }
    return ret;
}

/*
 * Class 5 (finding: the channel was read to EOF before decoding): a peer
 * sends a stream decided early, then 1 MiB or 8 MiB more.  The load
 * stops at the verdict, having read and held the stream and one round:
 * version 2 is -EPROTONOSUPPORT at byte 4 (not -E2BIG after all of it),
 * a strict load fails at the first byte past the stream, a lenient one
 * stops there and succeeds, as QEMU (which reads no further) does.
 */
static void test_legacy_channel_early(void **state)
{
    static const uint8_t v2[8] = "QCPR\0\0\0\2";
    const uint64_t mib = 1u << 20;
    CprsDiag d;
    Work w1, w8;
    int k;

    (void)state;
    for (k = 0; k < 3; k++) {
        const void *head = k ? empty_stream : v2;
        size_t len = k ? sizeof(empty_stream) : sizeof(v2);
        uint32_t flags = k == 2 ? CPRS_LOAD_F_LEGACY_LENIENT : 0;
        int want = k == 0 ? -EPROTONOSUPPORT : k == 1 ? -EBADMSG : 0;
        int ret;

        ret = channel_load(head, len, mib, flags, &d, &w1);
        assert_int_equal(ret, want);
        ret = channel_load(head, len, 8 * mib, flags, &d, &w8);
        assert_int_equal(ret, want);
        if (k == 0) {
            assert_string_equal(d.clause, "L3.2");
            assert_int_equal(d.offset, 4);
        } else if (k == 1) {
            assert_string_equal(d.clause, "L6");
            assert_int_equal(d.offset, sizeof(empty_stream));
        }
        work_expect_linear("legacy stream on the channel", &w1, &w8, 1.0, 0);
        assert_true(w1.n[CPRS_WORK_READ_BYTES] > 0);
        /* The stream and one round, whatever follows. */
        assert_true(w8.n[CPRS_WORK_READ_BYTES] <= 8192);
        assert_true(w8.n[CPRS_WORK_ALLOC_BYTES] <= 64 * 1024);
    }
}

/* ---- Class 7: refusals name the record and its offset in the stream -- */

/*
 * A legacy state whose record is refused by the state (a duplicate key,
 * a record naming the state memfd) is refused at that record: its index
 * and its offset in the stream, not offset 0.
 */
static void test_legacy_record_offsets(void **state)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts,
                                .flags = CPRS_LOAD_F_NO_FD_CHECK);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    ThBuf b = one_record(100), c;
    int fd, k;

    (void)state;
    /* ram0 at 8 (18 bytes), then the same key again at 26. */
    b.len--;
    th_put_u8(&b, 1);
    th_put_be32(&b, 5);
    th_put(&b, "ram0", 5);
    th_put_be32(&b, 0);
    th_put_be32(&b, 101);
    th_put_u8(&b, 0);
    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
    persist_as_state(fd);
    assert_int_equal(cprs_state_load_exec(&lo, &d, &s), -EEXIST);
    assert_int_equal(d.offset, 26);
    assert_int_equal(d.record, 1);
    assert_non_null(strstr(d.reason, "duplicate"));
    close(fd);

    /* Two vfio devices of one name, at 54 and 77: the later is named. */
    b.len = 26;
    th_put_u8(&b, 0);                           /* end of the fds */
    th_put_u8(&b, 5);                           /* the subsection */
    th_put_u8(&b, 21);
    th_put(&b, "CprState/vfio devices", 21);
    th_put_be32(&b, 1);
    for (k = 0; k < 2; k++) {
        th_put_u8(&b, 1);
        th_put_be32(&b, 6);
        th_put(&b, "vfio0", 6);
        th_put_be32(&b, 3);                     /* devid */
        th_put_be32(&b, 1);                     /* ioas_id */
        th_put_be32(&b, 2);                     /* hwpt_id */
    }
    th_put_u8(&b, 0);
    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
    persist_as_state(fd);
    d = CPRS_OPTS(CprsDiag);
    assert_int_equal(cprs_state_load_exec(&lo, &d, &s), -EEXIST);
    assert_int_equal(d.offset, 77);
    assert_int_equal(d.record, 1);
    assert_non_null(strstr(d.reason, "duplicate vfio"));
    close(fd);

    /* A record naming the state memfd: the record at 8. */
    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    c = one_record(fd);
    assert_int_equal(write(fd, c.p, c.len), (ssize_t)c.len);
    persist_as_state(fd);
    d = CPRS_OPTS(CprsDiag);
    assert_int_equal(cprs_state_load_exec(&lo, &d, &s), -EBADMSG);
    assert_string_equal(d.clause, "11.1");
    assert_int_equal(d.offset, 8);
    assert_int_equal(d.record, 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    free(b.p);
    free(c.p);
}

/* ---- The state memfd is a memfd, not a file of that name -------------- */

/* In the child: a file /memfd:QEMU_CPR_EXEC_STATE, unlinked, offered. */
static int fake_memfd_child(const char *dir)
{
    static const char want[] = "/memfd:" CPRS_EXEC_STATE_NAME " (deleted)";
    char sub[64], path[64], link[128];
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    int fd, found, format;
    ssize_t n;

    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        return 77;
    }
    snprintf(sub, sizeof(sub), "%s/proc", dir);
    if (mkdir(sub, 0700) < 0 ||
        mount("/proc", sub, NULL, MS_BIND | MS_REC, NULL) < 0 ||
        chroot(dir) < 0 || chdir("/") < 0) {
        return 77;
    }
    fd = open("/memfd:" CPRS_EXEC_STATE_NAME, O_RDWR | O_CREAT | O_EXCL,
              0600);
    if (fd < 0 || write(fd, empty_stream, sizeof(empty_stream)) !=
        (ssize_t)sizeof(empty_stream) ||
        unlink("/memfd:" CPRS_EXEC_STATE_NAME) < 0) {
        return 77;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0) {
        return 77;
    }
    link[n] = '\0';
    if (strcmp(link, want)) {
        return 77;          /* the forgery does not work here */
    }
    persist_as_state(fd);
    if (cprs_exec_find(0, &d, &found, &format) != -EBADMSG ||
        strcmp(d.clause, "11.1")) {
        return 1;
    }
    if (cprs_state_load_exec(NULL, &d, &s) != -EBADMSG || s) {
        return 2;
    }
    return 0;
}

/*
 * Class 7 (spec 11.1 step 2): the /proc link text can be forged by a
 * regular file named "/memfd:QEMU_CPR_EXEC_STATE", unlinked, in a chroot.
 * The fd must also be a regular file on the memfds' mount.  Runs in a
 * child with a mount namespace of its own; skipped where the forgery
 * cannot be built.
 */
static void test_exec_find_not_a_memfd(void **state)
{
    char dir[] = "/tmp/cprs-fake-memfd-XXXXXX", sub[64];
    int status;
    pid_t pid;

    (void)state;
    assert_non_null(mkdtemp(dir));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(fake_memfd_child(dir));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* The mounts were the child's: what is left is two empty dirs. */
    snprintf(sub, sizeof(sub), "%s/proc", dir);
    rmdir(sub);
    rmdir(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dual_trailer_first),
        cmocka_unit_test(test_record_names_rollback_fd),
        cmocka_unit_test(test_legacy_file_rounds),
        cmocka_unit_test(test_legacy_pipe_early),
        cmocka_unit_test(test_legacy_drip_linear),
        cmocka_unit_test(test_legacy_channel_early),
        cmocka_unit_test(test_exec_find_not_a_memfd),
        cmocka_unit_test(test_legacy_record_offsets),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
