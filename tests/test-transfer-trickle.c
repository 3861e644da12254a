/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-transfer-trickle.c - cprs_state_load_transfer() through a relay
 * that forwards the cpr channel one byte per sendmsg(), slowly at first,
 * as a capture proxy between two QEMUs does.
 *
 * Regression: the format was told by recv(MSG_PEEK | MSG_WAITALL) of 8
 * bytes, but on a unix stream socket a peek returns what is queued without
 * waiting for the rest; a channel whose first bytes come one by one was
 * refused as "neither an arena nor a legacy stream" (seen with a real
 * QEMU cpr-transfer through a byte-by-byte proxy).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define SCM_MAX 253

typedef struct Sender {
    CprsState *s;
    int sock;
    uint32_t flags;
    int ret;
} Sender;

/* The format of a loaded state (cprs_state_format() is deprecated). */
static uint32_t state_format(const CprsState *s)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);

    assert_int_equal(cprs_state_get_info(s, &si), 0);
    return si.format;
}

static void *send_thread(void *arg)
{
    Sender *sd = arg;
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts, .flags = sd->flags);
    CprsDiag d = CPRS_OPTS(CprsDiag);

    sd->ret = cprs_state_save_transfer(sd->s, sd->sock, &so, &d);
    close(sd->sock);
    return NULL;
}

typedef struct Relay {
    int from;
    int to;
    uint32_t slow;              /* bytes forwarded with a pause first */
    uint32_t bytes;
    uint32_t fds;
} Relay;

/* Forward @from to @to one byte per message, fds with their byte. */
static void *relay_thread(void *arg)
{
    static const struct timespec pause = { 0, 3000000 };
    Relay *r = arg;
    union {
        char buf[CMSG_SPACE(SCM_MAX * sizeof(int))];
        struct cmsghdr align;
    } in;
    struct msghdr msg;
    struct cmsghdr *c;
    struct iovec iov;
    uint8_t byte;
    int fds[SCM_MAX];
    int nfds, k;
    ssize_t n;

    for (;;) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = &byte;
        iov.iov_len = 1;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = in.buf;
        msg.msg_controllen = sizeof(in.buf);
        n = recvmsg(r->from, &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            break;
        }
        nfds = 0;
        for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
            }
        }
        if (r->bytes < r->slow) {
            nanosleep(&pause, NULL);
        }
        /* Forwarded with the library's one sender. */
        n = cprs_send_with_fds(r->to, &byte, 1, fds, (uint32_t)nfds) ? -1 : 1;
        for (k = 0; k < nfds; k++) {
            close(fds[k]);
        }
        if (n != 1) {
            break;
        }
        r->bytes++;
        r->fds += (uint32_t)nfds;
    }
    shutdown(r->to, SHUT_WR);
    return NULL;
}

static void trickle(uint32_t flags, uint32_t slow)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld;
    pthread_t ts, tr;
    Sender sd;
    Relay rl;
    int a[2], b[2], ram, efd, before = th_count_fds();
    char text[256];

    ram = memfd_create("ram0", MFD_CLOEXEC);
    efd = eventfd(0, EFD_CLOEXEC);
    assert_true(ram >= 0 && efd >= 0);
    assert_int_equal(ftruncate(ram, 1 << 16), 0);
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, ram), 0);
    assert_int_equal(cprs_state_save_fd(s, "irqfd", 1, efd), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);

    sd = (Sender) { s, a[0], flags, -1 };
    rl = (Relay) { a[1], b[0], slow, 0, 0 };
    assert_int_equal(pthread_create(&ts, NULL, send_thread, &sd), 0);
    assert_int_equal(pthread_create(&tr, NULL, relay_thread, &rl), 0);
    if (cprs_state_load_transfer(b[1], NULL, &d, &ld)) {
        cprs_diag_format(&d, text, sizeof(text));
        fail_msg("load_transfer through the relay: %s", text);
    }
    pthread_join(ts, NULL);
    /* The receiver stops at the end of the state: drain for the relay. */
    close(b[1]);
    pthread_join(tr, NULL);
    assert_int_equal(sd.ret, 0);
    assert_int_equal(rl.fds, 2);
    assert_int_equal(state_format(ld), flags & CPRS_SAVE_F_LEGACY ?
                     CPRS_FORMAT_LEGACY : CPRS_FORMAT_ARENA);
    assert_int_equal(cprs_state_fd_count(ld), 2);
    assert_true(cprs_state_find_fd(ld, "ram0", 0) >= 0);
    assert_true(cprs_state_find_fd(ld, "irqfd", 1) >= 0);
    cprs_state_close_fds(ld);
    cprs_state_free(ld);
    cprs_state_free(s);
    close(a[1]);
    close(b[0]);
    close(ram);
    close(efd);
    assert_int_equal(th_count_fds(), before);
}

static void test_arena_trickle(void **state)
{
    (void)state;
    trickle(0, 16);
}

static void test_legacy_trickle(void **state)
{
    (void)state;
    trickle(CPRS_SAVE_F_LEGACY, 16);
}

/* A channel that ends inside the first 8 bytes is refused, not hung. */
static void test_short_channel(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *ld = NULL;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(write(sv[0], "QCP", 3), 3);
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld),
                     -EBADMSG);
    assert_null(ld);
    close(sv[0]);
    close(sv[1]);
}

/*
 * Credentials on every message (the receiver's caller set SO_PASSCRED):
 * foreign control messages are ignored, by the arena's receiver as by
 * QEMU's stream's (one policy, spec 11.2 step 4, L8.1).
 */
static void passcred(uint32_t flags)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld = NULL;
    pthread_t ts;
    Sender sd;
    int sv[2], ram, on = 1, before = th_count_fds();

    ram = memfd_create("ram0", MFD_CLOEXEC);
    assert_true(ram >= 0);
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, ram), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on,
                                sizeof(on)), 0);
    sd = (Sender) { s, sv[0], flags, -1 };
    assert_int_equal(pthread_create(&ts, NULL, send_thread, &sd), 0);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld), 0);
    pthread_join(ts, NULL);
    assert_int_equal(sd.ret, 0);
    assert_int_equal(cprs_state_fd_count(ld), 1);
    cprs_state_close_fds(ld);
    cprs_state_free(ld);
    cprs_state_free(s);
    close(sv[1]);
    close(ram);
    assert_int_equal(th_count_fds(), before);
}

static void test_passcred(void **state)
{
    (void)state;
    passcred(0);
    passcred(CPRS_SAVE_F_LEGACY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_trickle),
        cmocka_unit_test(test_legacy_trickle),
        cmocka_unit_test(test_short_channel),
        cmocka_unit_test(test_passcred),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
