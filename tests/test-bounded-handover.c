/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-handover.c - bounded work of the legacy decoder, the hash
 * table and the handover layer on the worst inputs we can build (issue 11,
 * classes 1, 5 and 10).  Links the counted library (bounded.h): the work
 * is counted, never timed, at 1x and 8x.
 *
 * Each test asserts first that the work it watches was counted at all:
 * a parser that counts nothing would pass any linearity check.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "bounded.h"

/* ---- Legacy streams built byte by byte --------------------------------- */

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

static void put_be32(Buf *b, uint32_t v)
{
    uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

    put(b, x, 4);
}

/*
 * A cpr-exec stream of @n fd records, no vfio subsection (QEMU 10.0's
 * form).  @name_of gives record i's name and id.
 */
static Buf exec_stream(uint32_t n, void (*name_of)(uint32_t, char *, size_t,
                                                   uint32_t *))
{
    Buf b = { 0 };
    char name[64];
    uint32_t i, id;
    uint8_t one = 1, zero = 0;

    put(&b, "QCPR", 4);
    put_be32(&b, 1);
    for (i = 0; i < n; i++) {
        name_of(i, name, sizeof(name), &id);
        put(&b, &one, 1);
        put_be32(&b, (uint32_t)strlen(name) + 1);
        put(&b, name, strlen(name) + 1);
        put_be32(&b, id);
        put_be32(&b, 100 + (i & 7));
    }
    put(&b, &zero, 1);
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
static Work decode_work(const Buf *b, uint32_t want_records)
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

/*
 * Class 1: 10k and 80k records of one key.  Every record is looked up
 * once; only the first of a key is indexed, so each lookup meets one
 * entry at most and the probes are O(records).
 */
static void test_legacy_duplicates(void **state)
{
    Buf b1 = exec_stream(10000, same_key), b8 = exec_stream(80000, same_key);
    Buf u8 = exec_stream(80000, unique_key);
    Work w1, w8, wu;

    (void)state;
    w1 = decode_work(&b1, 10000);
    w8 = decode_work(&b8, 80000);
    wu = decode_work(&u8, 80000);
    work_print("80k unique", &wu);
    assert_true(w1.n[CPRS_WORK_PROBES] > 0);
    expect_linear("legacy duplicates", &w1, &w8, 1.25, 4096);
    /* A lookup and an insert per record, a few probes each. */
    assert_true(w8.n[CPRS_WORK_PROBES] <= 4 * 80000);
    /* Duplicates cost no more than distinct keys. */
    assert_true(w8.n[CPRS_WORK_PROBES] <= 2 * wu.n[CPRS_WORK_PROBES]);
    free(b1.p);
    free(b8.p);
    free(u8.p);
}

/*
 * Class 1 through the load path: a QEMU_CPR_EXEC_STATE memfd holding the
 * stream of duplicates.  The state refuses the duplicate key, after a
 * decode whose work is linear.
 */
static Work load_exec_work(const Buf *b)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    char val[16];
    Work w;
    int fd;

    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->p, b->len), (ssize_t)b->len);
    snprintf(val, sizeof(val), "%d", fd);
    setenv(CPRS_EXEC_STATE_NAME, val, 1);
    work_reset();
    assert_int_equal(cprs_state_load_exec(NULL, &d, &s), -EEXIST);
    w = work_now();
    assert_null(s);
    assert_string_equal(getenv(CPRS_EXEC_STATE_NAME), val);
    unsetenv(CPRS_EXEC_STATE_NAME);
    close(fd);
    return w;
}

static void test_load_exec_duplicates(void **state)
{
    Buf b1 = exec_stream(10000, same_key), b8 = exec_stream(80000, same_key);
    Work w1, w8;

    (void)state;
    w1 = load_exec_work(&b1);
    w8 = load_exec_work(&b8);
    assert_true(w1.n[CPRS_WORK_PROBES] > 0);
    expect_linear("load_exec duplicates", &w1, &w8, 1.25, 1 << 16);
    free(b1.p);
    free(b8.p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_duplicates),
        cmocka_unit_test(test_load_exec_duplicates),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
