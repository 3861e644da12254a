/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-handover.c - bounded work of the legacy decoder, the hash
 * table and the handover layer on the worst inputs we can build, and the
 * handover's other issue-11 fixes (classes 1, 5, 7 and 10).  Links the
 * counted library (bounded.h): the work is counted, never timed, at 1x
 * and 8x.
 *
 * Each test asserts first that the work it watches was counted at all:
 * a parser that counts nothing would pass any linearity check.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "bounded.h"

/* ---- Legacy streams built byte by byte --------------------------------- */

/*
 * A cpr-exec stream of @n fd records, no vfio subsection (QEMU 10.0's
 * form).  @name_of gives record i's name and id.
 */
static ThBuf exec_stream(uint32_t n,
                         void (*name_of)(uint32_t, char *, size_t,
                                         uint32_t *))
{
    ThBuf b = { 0 };
    char name[64];
    uint32_t i, id;
    uint8_t one = 1, zero = 0;

    th_put(&b, "QCPR", 4);
    th_put_be32(&b, 1);
    for (i = 0; i < n; i++) {
        name_of(i, name, sizeof(name), &id);
        th_put(&b, &one, 1);
        th_put_be32(&b, (uint32_t)strlen(name) + 1);
        th_put(&b, name, strlen(name) + 1);
        th_put_be32(&b, id);
        th_put_be32(&b, 100 + (i & 7));
    }
    th_put(&b, &zero, 1);
    return b;
}

/* Every record the same key: the worst case for an index of all keys. */
static void same_key(uint32_t i, char *name, size_t size, uint32_t *ret_id)
{
    (void)i;
    snprintf(name, size, "0000:00:02.0/vector");
    *ret_id = 7;
}

static void unique_key(uint32_t i, char *name, size_t size, uint32_t *ret_id)
{
    snprintf(name, size, "0000:%02x:02.0/vector", i & 0xff);
    *ret_id = i;
}

/* Decode @b; returns the work counted. */
static Work decode_work(const ThBuf *b, uint32_t want_records)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts,
                                 .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    Work w;

    work_reset();
    assert_int_equal(cprs_legacy_decode(b->p, b->len, &o, &d, &lg), 0);
    w = work_now();
    assert_int_equal(cprs_legacy_fd_count(lg), want_records);
    cprs_legacy_free(lg);
    return w;
}

/*
 * Class 1: 10k and 80k records of one key.  Every record is looked up
 * once; only the first of a key is indexed, so each lookup meets one
 * entry at most and the probes are O(records).
 */
static void test_legacy_duplicates(void **state)
{
    ThBuf b1 = exec_stream(10000, same_key), b8 = exec_stream(80000, same_key);
    ThBuf u8 = exec_stream(80000, unique_key);
    Work w1, w8, wu;

    (void)state;
    w1 = decode_work(&b1, 10000);
    w8 = decode_work(&b8, 80000);
    wu = decode_work(&u8, 80000);
    work_print("80k unique", &wu);
    assert_true(w1.n[CPRS_WORK_PROBES] > 0);
    work_expect_linear("legacy duplicates", &w1, &w8, 1.25, 4096);
    /* A lookup and an insert per record, a few probes each. */
    assert_true(w8.n[CPRS_WORK_PROBES] <= 4 * 80000);
    /* Duplicates cost no more than distinct keys. */
    assert_true(w8.n[CPRS_WORK_PROBES] <= 2 * wu.n[CPRS_WORK_PROBES]);
    free(b1.p);
    free(b8.p);
    free(u8.p);
}

/*
 * Load @b from a QEMU_CPR_EXEC_STATE memfd, counting the work; the load
 * must return @want.  A refused load leaves the variable as it was; a
 * state loaded is *@ret_state (the caller frees it), else NULL.
 */
static Work load_exec_work(const ThBuf *b, int want, CprsState **ret_state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    char val[16];
    Work w;
    int fd, ret;

    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->p, b->len), (ssize_t)b->len);
    snprintf(val, sizeof(val), "%d", fd);
    setenv(CPRS_EXEC_STATE_NAME, val, 1);
    work_reset();
    ret = cprs_state_load_exec(NULL, &d, &s);
    w = work_now();
    if (ret != want) {
        fail_msg("load: %d, expected %d: %s [%s]", ret, want, d.reason,
                 d.clause);
    }
    if (ret) {
        assert_null(s);
        assert_string_equal(getenv(CPRS_EXEC_STATE_NAME), val);
        unsetenv(CPRS_EXEC_STATE_NAME);
        close(fd);
    }
    *ret_state = s;
    return w;
}

/*
 * Class 1 through the load path: a QEMU_CPR_EXEC_STATE memfd holding the
 * stream of duplicates.  The state refuses the duplicate key, after a
 * decode whose work is linear.
 */
static void test_load_exec_duplicates(void **state)
{
    ThBuf b1 = exec_stream(10000, same_key), b8 = exec_stream(80000, same_key);
    CprsState *s;
    Work w1, w8;

    (void)state;
    w1 = load_exec_work(&b1, -EEXIST, &s);
    w8 = load_exec_work(&b8, -EEXIST, &s);
    assert_true(w1.n[CPRS_WORK_PROBES] > 0);
    work_expect_linear("load_exec duplicates", &w1, &w8, 1.25, 1 << 16);
    free(b1.p);
    free(b8.p);
}

/*
 * Class 10 (spec 11.5.6): a legacy load examines each descriptor once.
 * Each record is registered with one fstat() (and F_GET_SEALS: the fds
 * here are memfds), and its fd then proven open by the one poll() for
 * all; the fstat() that compared the identity just taken with itself is
 * gone (three calls a record before).  10,000 and 80,000 records over
 * eight memfds at the numbers the stream names.
 */
/* Load @b, check one of its records, free the state. */
static Work legacy_load_work(const ThBuf *b)
{
    CprsState *s;
    Work w = load_exec_work(b, 0, &s);

    assert_int_equal(cprs_state_find_fd(s, "0000:03:02.0/vector", 3), 103);
    assert_int_equal(cprs_state_release_source(s), 0);
    cprs_state_free(s);
    return w;
}

static void test_legacy_load_fd_calls(void **state)
{
    ThBuf b1 = exec_stream(10000, unique_key),
          b8 = exec_stream(80000, unique_key);
    Work w1, w8;
    int k, mfd;

    (void)state;
    mfd = memfd_create("guest-ram", MFD_CLOEXEC);
    assert_true(mfd >= 0);
    for (k = 0; k < 8; k++) {
        assert_int_equal(dup2(mfd, 100 + k), 100 + k);
    }
    w1 = legacy_load_work(&b1);
    w8 = legacy_load_work(&b8);
    assert_true(w1.n[CPRS_WORK_FD_CALLS] > 0);
    work_expect_linear("legacy load, fd calls", &w1, &w8, 1.25, 1 << 16);
    /* fstat() and F_GET_SEALS a record, one poll() for the load. */
    if (w8.n[CPRS_WORK_FD_CALLS] > 2 * 80000 + 1) {
        fail_msg("legacy load of 80000 records: %" PRIu64 " fd calls",
                 w8.n[CPRS_WORK_FD_CALLS]);
    }
    for (k = 0; k < 8; k++) {
        close(100 + k);
    }
    close(mfd);
    free(b1.p);
    free(b8.p);
}

/* ---- Class 5: the legacy decoder reads an fd only as far as it must ---- */

typedef struct Endless {
    int fd;
    const uint8_t *head;        /* written first */
    size_t head_len;
    uint8_t fill;               /* then this byte, forever */
    uint64_t written;
} Endless;

/* Write @head then @fill bytes until the reader closes its end. */
static void *endless_writer(void *arg)
{
    Endless *e = arg;
    uint8_t buf[16384];
    ssize_t n;

    memset(buf, e->fill, sizeof(buf));
    if (write(e->fd, e->head, e->head_len) != (ssize_t)e->head_len) {
        return NULL;
    }
    e->written = e->head_len;
    while ((n = write(e->fd, buf, sizeof(buf))) > 0) {
        e->written += (uint64_t)n;
    }
    return NULL;
}

/* decode_fd() of an endless pipe: its result, what was written, the work. */
static int endless_decode(const void *head, size_t head_len, uint8_t fill,
                          uint32_t flags, uint64_t max_size, uint64_t *written,
                          Work *w)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .flags = flags,
                                 .max_size = max_size);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    Endless e = { -1, head, head_len, fill, 0 };
    pthread_t t;
    int p[2], ret;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    e.fd = p[1];
    assert_int_equal(pthread_create(&t, NULL, endless_writer, &e), 0);
    work_reset();
    ret = cprs_legacy_decode_fd(p[0], &o, &d, &lg);
    *w = work_now();
    close(p[0]);
    pthread_join(t, NULL);
    close(p[1]);
    assert_null(lg);
    assert_int_equal(d.error, ret);
    *written = e.written;
    return ret;
}

/*
 * Class 5: a pipe that never ends.  A strict decode stops at the first
 * byte that cannot belong to the stream (here the byte after the empty fd
 * list), having read a round of at most a few KiB; a lenient one, which
 * must count trailing bytes, stops at max_size with -E2BIG.  Neither reads
 * or holds more than max_size + 1 bytes.
 */
static void test_legacy_endless_pipe(void **state)
{
    static const uint8_t head[] = "QCPR\0\0\0\1";
    const uint64_t max = 4u << 20;
    uint64_t written;
    Work w;
    int ret;

    (void)state;
    ret = endless_decode(head, 8, 0, 0, max, &written, &w);
    work_print("strict", &w);
    assert_int_equal(ret, -EBADMSG);
    /* What the pipe buffer holds plus one round: far below max_size. */
    assert_true(written <= (1u << 20));
    assert_true(w.n[CPRS_WORK_READ_BYTES] > 0);
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= 64 * 1024);

    ret = endless_decode(head, 8, 0, CPRS_LEGACY_F_LENIENT, max, &written,
                         &w);
    work_print("lenient", &w);
    assert_int_equal(ret, -E2BIG);
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= max + 1);
    /* Capacities doubling from 4 KiB, the last one max_size + 1: their
     * sum is under three times that. */
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= 3 * (max + 1) + (1u << 20));

    /* Records without end: the limit, not the pipe, ends it. */
    ret = endless_decode(head, 8, 1, CPRS_LEGACY_F_ALL_FORMS, max, &written,
                         &w);
    assert_true(ret == -E2BIG || ret == -EBADMSG);
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= max + 1);
}

/* ---- Class 5: cprs_transfer_recv() sizes nothing before the header ------ */

/* An arena header claiming @arena_size, its CRC right or not. */
static void huge_header(uint8_t *hdr, uint64_t arena_size, bool good_crc)
{
    CprsWireHeader h;

    memset(&h, 0, sizeof(h));
    memcpy(h.magic, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    cprs_le16_set(&h.version_major, CPRS_FORMAT_VERSION_MAJOR);
    cprs_le32_set(&h.header_size, CPRS_HEADER_V1_SIZE);
    cprs_le64_set(&h.arena_size, arena_size);
    cprs_le64_set(&h.dir_offset, CPRS_HEADER_V1_SIZE);
    cprs_le32_set(&h.dir_entry_size, CPRS_SECTION_V1_SIZE);
    cprs_le32_set(&h.mode, CPRS_MODE_TRANSFER);
    cprs_le32_set(&h.header_crc32c, cprs_crc32c(0, &h, sizeof(h)) ^
                  (good_crc ? 0 : 1));
    memcpy(hdr, &h, sizeof(h));
}

/* Receive @len bytes of @hdr then EOF; returns the error and the diag. */
static int recv_huge(const uint8_t *hdr, size_t len, CprsDiag *d, Work *w)
{
    CprsReaderOpts o = CPRS_OPTS(CprsReaderOpts);
    void *buf = NULL;
    size_t size = 0;
    int *fds = NULL, sv[2], ret;
    uint32_t nfds = 0;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(write(sv[0], hdr, len), (ssize_t)len);
    shutdown(sv[0], SHUT_WR);
    work_reset();
    ret = cprs_transfer_recv(sv[1], &o, d, &buf, &size, &fds, &nfds);
    *w = work_now();
    assert_null(buf);
    close(sv[0]);
    close(sv[1]);
    return ret;
}

static void test_transfer_header_first(void **state)
{
    const uint64_t huge = CPRS_MAX_ARENA_SIZE - 8;
    uint8_t hdr[CPRS_HEADER_V1_SIZE + 8];
    CprsDiag d = CPRS_OPTS(CprsDiag);
    Work w;

    (void)state;
    /* A header whose CRC is wrong sizes nothing: refused as such. */
    huge_header(hdr, huge, false);
    assert_int_equal(recv_huge(hdr, CPRS_HEADER_V1_SIZE, &d, &w), -EBADMSG);
    assert_string_equal(d.clause, "3.9");
    assert_int_equal(w.n[CPRS_WORK_ALLOCS], 0);

    /* A right one claiming 16 GiB, then 8 bytes: memory for what came. */
    huge_header(hdr, huge, true);
    memset(hdr + CPRS_HEADER_V1_SIZE, 0, 8);
    assert_int_equal(recv_huge(hdr, sizeof(hdr), &d, &w), -EBADMSG);
    work_print("16 GiB claimed, 200 bytes sent", &w);
    assert_int_equal(d.offset, sizeof(hdr));
    assert_true(w.n[CPRS_WORK_ALLOCS] > 0);
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= 128 * 1024);
}

/* The same, in a child whose address space is 2 GiB: no 16 GiB malloc. */
static void test_transfer_header_first_rlimit(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)state;
    skip();             /* ASan reserves terabytes of address space */
#else
    uint8_t hdr[CPRS_HEADER_V1_SIZE + 8];
    struct rlimit rl = { 2ul << 30, 2ul << 30 };
    int status;
    pid_t pid;

    (void)state;
    huge_header(hdr, CPRS_MAX_ARENA_SIZE - 8, true);
    memset(hdr + CPRS_HEADER_V1_SIZE, 0, 8);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        CprsDiag d = CPRS_OPTS(CprsDiag);
        Work w;

        setrlimit(RLIMIT_AS, &rl);
        _exit(recv_huge(hdr, sizeof(hdr), &d, &w) == -EBADMSG ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

/* ---- Class 7: no record may name the state memfd ------------------------ */

/* Set QEMU_CPR_EXEC_STATE to a memfd holding @buf; returns the fd. */
static int exec_state(const void *buf, size_t size, bool seal)
{
    char val[16];
    int fd;

    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    if (seal) {
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK |
                               F_SEAL_GROW | F_SEAL_WRITE), 0);
    }
    /* Persisted as cprs_exec_persist() leaves it: no close-on-exec. */
    assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
    snprintf(val, sizeof(val), "%d", fd);
    setenv(CPRS_EXEC_STATE_NAME, val, 1);
    return fd;
}

/* An exec arena with one fd record "ram0" naming @fd. */
static void arena_naming(int fd, uint8_t **ret_buf, size_t *ret_size)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_EXEC);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = fd,
                              .kind = CPRS_FD_KIND_MEMFD);
    CprsWriter *w;

    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)ret_buf,
                                               ret_size), 0);
    cprs_writer_free(w);
}

/* A load that must fail and leave the variable and the memfd alone. */
static void expect_refused(int fd, int err, const char *clause,
                           const char *reason_part, uint32_t flags)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts, .flags = flags);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    char val[16];

    snprintf(val, sizeof(val), "%d", fd);
    assert_int_equal(cprs_state_load_exec(&lo, &d, &s), err);
    assert_null(s);
    assert_string_equal(d.clause, clause);
    assert_non_null(strstr(d.reason, reason_part));
    assert_non_null(getenv(CPRS_EXEC_STATE_NAME));
    assert_string_equal(getenv(CPRS_EXEC_STATE_NAME), val);
    assert_int_equal(fcntl(fd, F_GETFD), 0);
}

static void test_record_names_state_fd(void **state)
{
    uint8_t *buf, *probe;
    size_t size, psize;
    char name[16] = "ram0";
    ThBuf b = { 0 };
    int fd;
    uint8_t one = 1, zero = 0;

    (void)state;
    /* Arena form: which number the memfd gets is learned first. */
    arena_naming(0, &probe, &psize);
    fd = memfd_create("probe", MFD_CLOEXEC);
    close(fd);
    arena_naming(fd, &buf, &size);
    assert_int_equal(exec_state(buf, size, true), fd);
    expect_refused(fd, -EBADMSG, "11.1", "state memfd", 0);
    expect_refused(fd, -EBADMSG, "11.1", "state memfd",
                   CPRS_LOAD_F_NO_FD_CHECK);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    free(buf);
    free(probe);

    /* Legacy form: the same record in QEMU's stream. */
    th_put(&b, "QCPR", 4);
    th_put_be32(&b, 1);
    th_put(&b, &one, 1);
    th_put_be32(&b, (uint32_t)strlen(name) + 1);
    th_put(&b, name, strlen(name) + 1);
    th_put_be32(&b, 0);
    th_put_be32(&b, (uint32_t)fd);
    th_put(&b, &zero, 1);
    assert_int_equal(exec_state(b.p, b.len, false), fd);
    expect_refused(fd, -EBADMSG, "11.1", "state memfd", 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    free(b.p);
}

/* ---- Class 10: slot reuse, deadlines, close-on-exec failures ------------ */

/*
 * More registrations over a state's life than CPRS_MAX_RECORDS, never
 * more than one at a time: deleted records give their room back.  The
 * registry allocates nothing once warm.
 */
static void test_state_slot_reuse(void **state)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "vfio0");
    CprsState *s;
    uint32_t i;
    Work w;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    for (i = 0; i < 64; i++) {
        assert_int_equal(cprs_state_save_vfio(s, &vi), 0);
        assert_int_equal(cprs_state_delete_vfio(s, "vfio0"), 0);
    }
    work_reset();
    for (i = 0; i <= CPRS_MAX_RECORDS; i++) {
        vi.devid = (int32_t)i;
        if (cprs_state_save_vfio(s, &vi)) {
            fail_msg("registration %u refused", i);
        }
        if (cprs_state_delete_vfio(s, "vfio0")) {
            fail_msg("deletion %u refused", i);
        }
    }
    w = work_now();
    work_print("16M + 1 registrations", &w);
    assert_true(w.n[CPRS_WORK_PROBES] >= CPRS_MAX_RECORDS);
    assert_int_equal(w.n[CPRS_WORK_ALLOCS], 0);
    assert_int_equal(cprs_state_save_vfio(s, &vi), 0);
    cprs_state_free(s);
}

/*
 * A channel whose first bytes come but not the rest: a receive timeout set
 * on the socket (SO_RCVTIMEO) ends the wait, with -EAGAIN; the bytes that
 * came are not judged as a whole head.
 */
static void test_channel_deadline(void **state)
{
    struct timeval tv = { 0, 50000 };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    int sv[2], before = th_count_fds();

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv,
                                sizeof(tv)), 0);
    assert_int_equal(write(sv[0], "QCP", 3), 3);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &s), -EAGAIN);
    assert_null(s);
    assert_non_null(strstr(d.reason, "SO_RCVTIMEO"));
    /* Nothing at all: the same. */
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv,
                                sizeof(tv)), 0);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &s), -EAGAIN);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(th_count_fds(), before);
}

/* A number that is not an open fd now. */
static int closed_fd(void)
{
    int fd = memfd_create("gone", MFD_CLOEXEC);

    assert_true(fd >= 0);
    close(fd);
    return fd + 64;
}

/*
 * The load's last step sets close-on-exec on every recorded fd.  When one
 * cannot be set (a record naming no open fd, loaded without fd checks),
 * the load fails and leaves everything as it was: the variable, the state
 * memfd's flags, and the flags of the fds already done.
 */
static void test_load_cloexec_failure(void **state)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_EXEC);
    CprsFdInfo fi;
    CprsWriter *w;
    uint8_t *buf;
    size_t size;
    int fd, good, bad = closed_fd();

    (void)state;
    good = memfd_create("ram0", 0);
    assert_true(good >= 0);
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = good);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    fi = CPRS_OPTS(CprsFdInfo, .name = "gone", .fd = bad);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)&buf, &size), 0);
    cprs_writer_free(w);
    fd = exec_state(buf, size, true);
    expect_refused(fd, -EBADF, "11.1", "close-on-exec",
                   CPRS_LOAD_F_NO_FD_CHECK);
    /* The fd done before the failure has its flag back: still clear. */
    assert_int_equal(fcntl(good, F_GETFD), 0);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    close(good);
    free(buf);
}

/* preserve_fds() fails on a closed fd: the flags it changed go back. */
static void test_cloexec_rollback(void **state)
{
    CprsState *s;
    int a, b, gone = closed_fd();

    (void)state;
    a = memfd_create("a", MFD_CLOEXEC);
    b = memfd_create("b", 0);
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(cprs_state_new(&s), 0);
    /* Newest first: a and b are done before the closed one fails. */
    assert_int_equal(cprs_state_save_fd(s, "gone", 0, gone), 0);
    assert_int_equal(cprs_state_save_fd(s, "b", 0, b), 0);
    assert_int_equal(cprs_state_save_fd(s, "a", 0, a), 0);
    assert_int_equal(cprs_state_preserve_fds(s), -EBADF);
    assert_int_equal(fcntl(a, F_GETFD), FD_CLOEXEC);
    assert_int_equal(fcntl(b, F_GETFD), 0);
    assert_int_equal(cprs_state_unpreserve_fds(s), -EBADF);
    assert_int_equal(fcntl(a, F_GETFD), FD_CLOEXEC);
    assert_int_equal(fcntl(b, F_GETFD), 0);
    /* Without the closed one, both calls succeed and do their job. */
    assert_int_equal(cprs_state_delete_fd(s, "gone", 0), 0);
    assert_int_equal(cprs_state_preserve_fds(s), 0);
    assert_int_equal(fcntl(a, F_GETFD), 0);
    assert_int_equal(cprs_state_unpreserve_fds(s), 0);
    assert_int_equal(fcntl(a, F_GETFD), FD_CLOEXEC);
    assert_int_equal(fcntl(b, F_GETFD), FD_CLOEXEC);
    cprs_state_free(s);
    close(a);
    close(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_load_fd_calls),
        cmocka_unit_test(test_legacy_duplicates),
        cmocka_unit_test(test_load_exec_duplicates),
        cmocka_unit_test(test_legacy_endless_pipe),
        cmocka_unit_test(test_transfer_header_first),
        cmocka_unit_test(test_transfer_header_first_rlimit),
        cmocka_unit_test(test_record_names_state_fd),
        cmocka_unit_test(test_state_slot_reuse),
        cmocka_unit_test(test_channel_deadline),
        cmocka_unit_test(test_load_cloexec_failure),
        cmocka_unit_test(test_cloexec_rollback),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
