/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-transfer.c - QEMU's cpr-transfer incoming path,
 * cprs_state_load_transfer(): the state (an arena or a legacy stream,
 * told apart by MSG_PEEK) and its fds from a unix socket, with
 * cprs_transfer_recv() and cprs_legacy_recv() underneath.
 *
 * The input is the stream.  It is sent over a real socketpair with real
 * memfds attached by SCM_RIGHTS, following two plans: (A) as a sender
 * does it, when the input decodes: an arena by cprs_transfer_send() with
 * one fd per fd record, a legacy stream with one fd per service byte;
 * (B) where the input's bytes say, early or late, too many or too few.
 * Then it is loaded with and without the fd identity check, and received
 * with cprs_transfer_recv() alone under a one-fd limit.
 *
 * Invariants (FUZZ_ASSERT): errors are documented ones; a verified
 * cpr-transfer arena sent as a sender does loads; a loaded state records
 * the fds it received, which the caller owns; on failure every received
 * fd is closed (all or nothing): no fd leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_FDS 8
#define MAX_INPUT 32768

typedef struct Plan {
    uint32_t at[MAX_FDS];   /* stream offset of the message of fd i */
    uint32_t count;
    bool sender;            /* send with cprs_transfer_send() instead */
} Plan;


static bool load_errno_ok(int ret)
{
    return ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -E2BIG ||
           ret == -ENOMEM || ret == -ESTALE || ret == -EINVAL ||
           ret == -EEXIST;
}

/* The lowest fd number free now: a leaked fd would take it. */
static int lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

    if (fd >= 0) {
        close(fd);
    }
    return fd;
}

/*
 * A socketpair holding @data and @plan's fds, its write side shut down:
 * sv[1] is ready to be read.  False if the socket could not take it all.
 */
static bool send_plan(const uint8_t *data, size_t size, const Plan *plan,
                      const int *files, int sv[2])
{
    uint32_t i = 0, n;
    size_t pos = 0, end;
    bool sent = true;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return false;
    }
    if (plan->sender) {
        /* The library's own sender: header, then fds with what follows. */
        sent = !cprs_transfer_send(sv[0], data, size, files, plan->count,
                                   CPRS_TRANSFER_F_SHUTDOWN);
        pos = size;
    }
    while (pos < size && sent) {
        n = 0;
        while (i + n < plan->count && plan->at[i + n] == pos) {
            n++;    /* the fds that go with the message at @pos */
        }
        end = i + n < plan->count ? plan->at[i + n] : size;
        sent = fuzz_send_msg(sv[0], data + pos, end - pos, files + i, n);
        i += n;
        pos = end;
    }
    shutdown(sv[0], SHUT_WR);
    if (!sent) {
        close(sv[0]);
        close(sv[1]);
    }
    return sent;
}

/*
 * cprs_transfer_recv() alone, under @max_records: the bytes received are
 * the bytes sent, and no more fds than were sent.
 */
static void raw_recv(const uint8_t *data, size_t size, const Plan *plan,
                     const int *files, uint32_t max_records)
{
    CprsReaderOpts o = CPRS_OPTS(CprsReaderOpts, .max_records = max_records,
                                 .max_arena_size = 4 * (uint64_t)MAX_INPUT);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    void *buf = NULL;
    size_t got = 0;
    int *fds = NULL, sv[2], ret;
    uint32_t nfds = 0, i;

    if (!send_plan(data, size, plan, files, sv)) {
        return;
    }
    ret = cprs_transfer_recv(sv[1], &o, &diag, &buf, &got, &fds, &nfds);
    if (ret) {
        FUZZ_ASSERT_MSG(ret == -EBADMSG || ret == -E2BIG || ret == -ENOMEM,
                        "transfer_recv: error %d", ret);
        FUZZ_ASSERT(diag.error == ret && diag.reason);
    } else {
        FUZZ_ASSERT(got <= size && !memcmp(buf, data, got));
        FUZZ_ASSERT(nfds <= plan->count && nfds <= max_records);
        for (i = 0; i < nfds; i++) {
            close(fds[i]);
        }
        free(fds);
        free(buf);
    }
    close(sv[0]);
    close(sv[1]);
}

/*
 * Send @data with @plan's fds, then load it with @flags; with @must, the
 * load has to succeed.
 */
static void load(const uint8_t *data, size_t size, const Plan *plan,
                 const int *files, uint32_t flags, bool must)
{
    CprsLoadOpts o = CPRS_OPTS(CprsLoadOpts, .flags = flags,
                               .max_records = 1u << 16,
                               .max_arena_size = 4 * (uint64_t)MAX_INPUT);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsState *s = NULL;
    int sv[2], ret;

    if (send_plan(data, size, plan, files, sv)) {
        ret = cprs_state_load_transfer(sv[1], &o, &diag, &s);
        FUZZ_ASSERT_MSG(!must || !ret, "a valid cpr-transfer arena sent as "
                        "a sender does failed to load (%d): %s", ret,
                        diag.reason);
        if (ret) {
            FUZZ_ASSERT_MSG(load_errno_ok(ret), "load_transfer: error %d",
                            ret);
            FUZZ_ASSERT(s == NULL);
            FUZZ_ASSERT(diag.error == ret && diag.reason);
        } else {
            FUZZ_ASSERT(s != NULL);
            FUZZ_ASSERT(cprs_state_fd_count(s) <= plan->count);
            FUZZ_ASSERT(!cprs_state_get_info(s, &si));
            FUZZ_ASSERT(si.format == CPRS_FORMAT_ARENA ||
                        si.format == CPRS_FORMAT_LEGACY);
            FUZZ_ASSERT(si.mode == CPRS_MODE_TRANSFER && !si.rollback_flags);
            /* The caller owns the received fds. */
            cprs_state_close_fds(s);
            cprs_state_free(s);
        }
        close(sv[0]);
        close(sv[1]);
    }
}

/*
 * Plan A: the fds where a sender puts them, if the input decodes.  Sets
 * *@ret_valid for a verified cpr-transfer arena, which must then load.
 */
static bool sender_plan(const uint8_t *data, size_t size, Plan *plan,
                        bool *ret_valid)
{
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .mode = CPRS_MODE_TRANSFER,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsFdInfo fi;
    CprsReader *r;
    CprsLegacy *lg;
    uint64_t off;
    uint32_t i, n;

    plan->count = 0;
    plan->sender = false;
    *ret_valid = false;
    if (!cprs_reader_open_buffer(data, size, &ro, NULL, &r)) {
        CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);

        n = cprs_reader_fd_count(r);
        FUZZ_ASSERT(cprs_reader_get_info(r, &ai) == 0);
        *ret_valid = !cprs_reader_verify(r, NULL) &&
                     ai.mode == CPRS_MODE_TRANSFER && ai.arena_size == size;
        cprs_reader_close(r);
        if (n > MAX_FDS || size <= CPRS_HEADER_V1_SIZE) {
            return false;
        }
        for (i = 0; i < n; i++) {
            plan->at[plan->count++] = CPRS_HEADER_V1_SIZE;
        }
        plan->sender = true;
        return true;
    }
    if (cprs_legacy_decode(data, size, &lo, NULL, &lg)) {
        return false;
    }
    n = cprs_legacy_fd_count(lg);
    for (i = 0; i < n && n <= MAX_FDS; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &fi) == 0);
        FUZZ_ASSERT(cprs_legacy_fd_offset(lg, i, &off) == 0);
        /* marker, namelen, name and NUL, id: then the service byte. */
        plan->at[plan->count++] = (uint32_t)(off + 1 + 4 + fi.name_len + 1 +
                                             4);
    }
    cprs_legacy_free(lg);
    return n <= MAX_FDS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int files[MAX_FDS], low;
    bool valid;
    Plan plan;
    uint32_t i, k;

    if (fuzz_outside_size_range(size, 1, MAX_INPUT)) {
        return 0;
    }
    low = lowest_free_fd();
    for (i = 0; i < MAX_FDS; i++) {
        files[i] = memfd_create("fuzz-transfer", MFD_CLOEXEC);
        FUZZ_ASSERT(files[i] >= 0);
    }

    if (sender_plan(data, size, &plan, &valid)) {
        load(data, size, &plan, files, 0, false);
        load(data, size, &plan, files, CPRS_LOAD_F_NO_FD_CHECK |
             CPRS_LOAD_F_LEGACY_LENIENT, valid);
    }
    /* Plan B: the middle byte says how many fds, the one after where. */
    k = data[size / 2] % (MAX_FDS + 1);
    plan.count = 0;
    plan.sender = false;
    for (i = 0; i < k; i++) {
        uint32_t at = (uint32_t)((data[(size / 2 + 1 + i) % size] * 97u +
                                  i * 31u) % size);

        plan.at[plan.count++] = at;
    }
    /* Sorted, as messages go out in stream order. */
    for (i = 1; i < plan.count; i++) {
        uint32_t v = plan.at[i], j = i;

        while (j > 0 && plan.at[j - 1] > v) {
            plan.at[j] = plan.at[j - 1];
            j--;
        }
        plan.at[j] = v;
    }
    load(data, size, &plan, files, CPRS_LOAD_F_NO_FD_CHECK, false);
    raw_recv(data, size, &plan, files, 1);
    raw_recv(data, size, &plan, files, 1u << 16);
    {
        CprsDiag diag = CPRS_OPTS(CprsDiag);
        CprsState *s = NULL;
        void *buf;
        size_t got;
        int *fds;
        uint32_t nfds;

        FUZZ_ASSERT(cprs_state_load_transfer(-1, NULL, &diag, &s) == -EINVAL);
        FUZZ_ASSERT(cprs_transfer_recv(-1, NULL, &diag, &buf, &got, &fds,
                                       &nfds) == -EINVAL);
    }

    for (i = 0; i < MAX_FDS; i++) {
        close(files[i]);
    }
    FUZZ_ASSERT_MSG(lowest_free_fd() == low, "an fd leaked");
    return 0;
}
