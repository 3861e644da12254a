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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "helpers.h"
#include "bounded.h"

/* ---- Byte buffers ------------------------------------------------------- */

typedef struct Buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} Buf;

static void put(Buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u8(Buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_be32(Buf *b, uint32_t v)
{
    uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

    put(b, x, 4);
}

/* A cpr-exec stream "QCPR" 1, one record ("ram0", 0, @fd), 0x00. */
static Buf one_record(int fd)
{
    Buf b = { 0 };

    put(&b, "QCPR", 4);
    put_be32(&b, 1);
    put_u8(&b, 1);
    put_be32(&b, 5);
    put(&b, "ram0", 5);
    put_be32(&b, 0);
    put_be32(&b, (uint32_t)fd);
    put_u8(&b, 0);
    return b;
}

static void expect_linear(const char *what, const Work *w1, const Work *w8,
                          double slack, uint64_t fixed)
{
    int k;

    work_print("1x", w1);
    work_print("8x", w8);
    k = work_linear(w1, w8, slack, fixed);
    if (k >= 0) {
        fail_msg("%s: %s grew faster than linearly", what, work_names[k]);
    }
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
    Buf b = one_record(0);
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
        expect_linear("dual stream", &w1, &w8, 1.0, 0);
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
    Buf b = one_record(fd);

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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dual_trailer_first),
        cmocka_unit_test(test_record_names_rollback_fd),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
