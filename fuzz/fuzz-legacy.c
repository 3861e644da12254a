/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-legacy.c - QEMU's legacy "QCPR" stream decoder, on hostile bytes
 * (spec/qemu-legacy-stream.rst; shared/reference §7 lists the inputs
 * that crash or fool QEMU's own reader).
 *
 * Every input is a stream.  It is decoded:
 *   - from the buffer in every variant: auto-detected, forced cpr-exec,
 *     forced cpr-transfer; strict, lenient, all forms, fd checks;
 *   - from a memfd (pread) and a pipe (read to EOF), which must agree
 *     with the buffer;
 *   - over a real unix socketpair with real memfds by SCM_RIGHTS, the
 *     way cpr-transfer receives it, with fd queues built from the input:
 *     (A) one fd with each service byte, as QEMU sends; (B) one fd with
 *     every 0x20 byte; (C) fds attached where the input's bytes say.
 *
 * Invariants (FUZZ_ASSERT): every getter agrees with the info; offsets
 * lie inside the input and increase; lookups return the first record
 * with the key; strict acceptance implies lenient acceptance of the same
 * records; the fd paths give the buffer's verdict; the socket gives the
 * buffer's records, each received fd is the file sent for it (fstat), in
 * queue order, and no fd leaks (the lowest free fd number is unchanged).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_FDS 8
#define SOCKET_MAX_INPUT 32768
/* The byte cpr-transfer sends with each fd (reference §2). */
#define SERVICE_BYTE 0x20

typedef struct Result {
    int ret;
    uint64_t offset;        /* of the failure */
    const char *clause;     /* of the failure (socket only) */
    CprsLegacy *lg;
} Result;

static bool legacy_errno_ok(int ret)
{
    return ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -E2BIG ||
           ret == -ENOMEM;
}

/* Every getter of @lg, against its info and the input of @size bytes. */
static void check_handle(CprsLegacy *lg, size_t size, bool from_buffer)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsDiag d;
    uint64_t off, prev = 0;
    uint32_t i, j;
    int fd;

    FUZZ_ASSERT(cprs_legacy_get_info(lg, &li) == 0);
    FUZZ_ASSERT(li.mode == CPRS_MODE_EXEC || li.mode == CPRS_MODE_TRANSFER);
    FUZZ_ASSERT(li.vfio_form >= CPRS_LEGACY_VFIO_FULL &&
                li.vfio_form < CPRS_LEGACY_VFIO__MAX);
    FUZZ_ASSERT(li.fd_count == cprs_legacy_fd_count(lg));
    FUZZ_ASSERT(li.vfio_count == cprs_legacy_vfio_count(lg));
    FUZZ_ASSERT(li.warning_count == cprs_legacy_warning_count(lg));
    FUZZ_ASSERT(li.warning_count <= CPRS_LEGACY_MAX_WARNINGS);
    FUZZ_ASSERT(!li.vfio_count || li.vfio_form == CPRS_LEGACY_VFIO_FULL);
    /* Over the socket a lenient receive stops at the first byte past
     * the stream (L8.1): the trailing bytes are those it had by then. */
    FUZZ_ASSERT_MSG(from_buffer || !(li.flags & CPRS_LEGACY_F_LENIENT) ?
                    li.size + li.trailing == size :
                    li.size + li.trailing <= size &&
                    (li.trailing || li.size == size), "decoded %llu + "
                    "trailing %llu of %zu bytes", (unsigned long long)li.size,
                    (unsigned long long)li.trailing, size);
    FUZZ_ASSERT(!li.trailing || (li.flags & CPRS_LEGACY_F_LENIENT));

    for (i = 0; i <= li.fd_count; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        if (i == li.fd_count) {
            FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &fi) == -EINVAL);
            FUZZ_ASSERT(cprs_legacy_fd_offset(lg, i, &off) == -EINVAL);
            break;
        }
        FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &fi) == 0);
        FUZZ_ASSERT(fi.name && strlen(fi.name) == fi.name_len);
        FUZZ_ASSERT(fi.name_len <= CPRS_MAX_NAME_LEN);
        FUZZ_ASSERT(fi.name_len >= 1 || (li.flags & CPRS_LEGACY_F_LENIENT));
        FUZZ_ASSERT(fi.slot == i);
        FUZZ_ASSERT(cprs_legacy_fd_offset(lg, i, &off) == 0);
        FUZZ_ASSERT_MSG(off < li.size && (i == 0 || off > prev),
                        "fd record %u at offset %llu", i,
                        (unsigned long long)off);
        prev = off;
        if (li.mode == CPRS_MODE_EXEC) {
            FUZZ_ASSERT(fi.fd >= 0);
        } else if (from_buffer) {
            FUZZ_ASSERT(fi.fd == -1);
        }
        /* QEMU's lookup: the first record with the key. */
        FUZZ_ASSERT(cprs_legacy_fd_find(lg, fi.name, fi.id, &j) == 0);
        FUZZ_ASSERT(j <= i);
        if (j < i) {
            CprsFdInfo first = CPRS_OPTS(CprsFdInfo);

            FUZZ_ASSERT(cprs_legacy_fd_get(lg, j, &first) == 0);
            FUZZ_ASSERT(first.id == fi.id && !strcmp(first.name, fi.name));
            FUZZ_ASSERT_MSG(li.warning_count > 0,
                            "duplicate key without a warning");
        }
        if (from_buffer) {
            FUZZ_ASSERT(cprs_legacy_fd_take(lg, i, &fd) == -ENOENT);
        }
    }
    for (i = 0; i <= li.vfio_count; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        if (i == li.vfio_count) {
            FUZZ_ASSERT(cprs_legacy_vfio_get(lg, i, &vi) == -EINVAL);
            break;
        }
        FUZZ_ASSERT(cprs_legacy_vfio_get(lg, i, &vi) == 0);
        FUZZ_ASSERT(vi.name && strlen(vi.name) == vi.name_len);
        FUZZ_ASSERT(cprs_legacy_vfio_offset(lg, i, &off) == 0);
        FUZZ_ASSERT(off < li.size && off > prev);
        prev = off;
    }
    for (i = 0; i <= li.warning_count; i++) {
        d = CPRS_OPTS(CprsDiag);
        if (i == li.warning_count) {
            FUZZ_ASSERT(cprs_legacy_warning_get(lg, i, &d) == -EINVAL);
            break;
        }
        FUZZ_ASSERT(cprs_legacy_warning_get(lg, i, &d) == 0);
        FUZZ_ASSERT(d.error == 0 && d.reason && d.clause);
        FUZZ_ASSERT(d.offset <= size);
    }
    /* Only lenient decoding accepts an empty name (L4.4). */
    FUZZ_ASSERT(cprs_legacy_fd_find(lg, "", 0, &j) == -ENOENT ||
                (li.flags & CPRS_LEGACY_F_LENIENT));
    /* Misuse: -EINVAL. */
    FUZZ_ASSERT(cprs_legacy_fd_find(lg, NULL, 0, &j) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_fd_get(lg, 0, NULL) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_vfio_get(lg, 0, NULL) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_warning_get(lg, 0, NULL) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_fd_offset(lg, 0, NULL) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_fd_take(lg, li.fd_count, &fd) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_get_info(lg, NULL) == -EINVAL);
}

static Result decode(const uint8_t *data, size_t size, uint32_t mode,
                     uint32_t flags)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = mode,
                                 .flags = flags);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Result res = { 0, 0, NULL, NULL };

    res.ret = cprs_legacy_decode(data, size, &o, &diag, &res.lg);
    if (res.ret) {
        FUZZ_ASSERT_MSG(legacy_errno_ok(res.ret), "decode: error %d",
                        res.ret);
        FUZZ_ASSERT(res.lg == NULL);
        fuzz_check_diag(&diag, res.ret, size);
        res.offset = diag.offset;
        return res;
    }
    check_handle(res.lg, size, true);
    return res;
}

/* Two decodes hold the same records. */
static void same_records(CprsLegacy *a, CprsLegacy *b, bool same_fds)
{
    CprsFdInfo x, y;
    CprsVfioDeviceInfo v, w;
    uint32_t i;

    FUZZ_ASSERT(cprs_legacy_fd_count(a) == cprs_legacy_fd_count(b));
    FUZZ_ASSERT(cprs_legacy_vfio_count(a) == cprs_legacy_vfio_count(b));
    for (i = 0; i < cprs_legacy_fd_count(a); i++) {
        x = CPRS_OPTS(CprsFdInfo);
        y = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(!cprs_legacy_fd_get(a, i, &x) &&
                    !cprs_legacy_fd_get(b, i, &y));
        FUZZ_ASSERT(!strcmp(x.name, y.name) && x.id == y.id);
        FUZZ_ASSERT(!same_fds || x.fd == y.fd);
    }
    for (i = 0; i < cprs_legacy_vfio_count(a); i++) {
        v = CPRS_OPTS(CprsVfioDeviceInfo);
        w = CPRS_OPTS(CprsVfioDeviceInfo);
        FUZZ_ASSERT(!cprs_legacy_vfio_get(a, i, &v) &&
                    !cprs_legacy_vfio_get(b, i, &w));
        FUZZ_ASSERT(!strcmp(v.name, w.name) && v.devid == w.devid &&
                    v.ioas_id == w.ioas_id && v.hwpt_id == w.hwpt_id);
    }
}

/* decode_fd() from a memfd and from a pipe gives the buffer's verdict. */
static void fd_paths(const uint8_t *data, size_t size, const Result *want)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    int fd, p[2], ret;

    fd = memfd_create("fuzz-legacy", MFD_CLOEXEC);
    if (fd >= 0 && fuzz_write_all(fd, data, size)) {
        ret = cprs_legacy_decode_fd(fd, NULL, &diag, &lg);
        FUZZ_ASSERT_MSG(ret == want->ret, "decode_fd %d, decode %d", ret,
                        want->ret);
        FUZZ_ASSERT(ret || diag.offset == want->offset);
        if (!ret) {
            same_records(lg, want->lg, true);
            cprs_legacy_free(lg);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    if (size <= 65536 && pipe2(p, O_CLOEXEC) == 0) {
        if (fuzz_write_all(p[1], data, size)) {
            close(p[1]);
            p[1] = -1;
            lg = NULL;
            ret = cprs_legacy_decode_fd(p[0], NULL, &diag, &lg);
            FUZZ_ASSERT_MSG(ret == want->ret, "decode_fd(pipe) %d, decode "
                            "%d", ret, want->ret);
            cprs_legacy_free(lg);
        }
        close(p[0]);
        if (p[1] >= 0) {
            close(p[1]);
        }
    }
}

/* ---- cpr-transfer over a real socket ------------------------------------ */

typedef struct Plan {
    uint32_t at[MAX_FDS];   /* stream offset of the message carrying fd i */
    uint32_t count;
} Plan;

typedef struct Files {
    int fd[MAX_FDS];
    ino_t ino[MAX_FDS];
} Files;


/*
 * Send @data with the fds of @plan (fd i goes with the message that
 * starts at plan->at[i]; plan->at is sorted), then receive it with
 * cprs_legacy_recv(@flags, @max_records, @max_size; 0 = default).
 * Returns false if the socket could not take it all (nothing is checked
 * then).
 */
static bool over_socket(const uint8_t *data, size_t size, const Plan *plan,
                        const Files *files, uint32_t flags,
                        uint32_t max_records, uint64_t max_size, Result *res)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .flags = flags,
                                 .max_records = max_records,
                                 .max_size = max_size);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    uint32_t i = 0, n;
    size_t pos = 0, end;
    int sv[2];
    bool sent = true;

    res->lg = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return false;
    }
    while (pos < size && sent) {
        n = 0;
        while (i + n < plan->count && plan->at[i + n] == pos) {
            n++;    /* the fds that go with the message at @pos */
        }
        end = i + n < plan->count ? plan->at[i + n] : size;
        /* The bytes of one fd message end before the next fd's. */
        sent = fuzz_send_msg(sv[0], data + pos, end - pos, files->fd + i, n);
        i += n;
        pos = end;
    }
    shutdown(sv[0], SHUT_WR);
    if (sent) {
        res->ret = cprs_legacy_recv(sv[1], &o, &diag, &res->lg);
        if (res->ret) {
            FUZZ_ASSERT_MSG(legacy_errno_ok(res->ret), "recv: error %d",
                            res->ret);
            FUZZ_ASSERT(res->lg == NULL);
            fuzz_check_diag(&diag, res->ret, size);
            res->offset = diag.offset;
            res->clause = diag.clause;
        }
    }
    close(sv[0]);
    close(sv[1]);
    return sent;
}

/* Record j's fd is the file of the j-th fd sent (queue order, L8.3). */
static void check_received(CprsLegacy *lg, size_t size, const Files *files)
{
    CprsFdInfo fi;
    struct stat st;
    uint32_t i;
    int fd;

    check_handle(lg, size, false);
    for (i = 0; i < cprs_legacy_fd_count(lg); i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &fi) == 0);
        FUZZ_ASSERT(i < MAX_FDS && fi.fd >= 0);
        FUZZ_ASSERT(fstat(fi.fd, &st) == 0);
        FUZZ_ASSERT_MSG(st.st_ino == files->ino[i], "record %u received "
                        "the wrong file", i);
        FUZZ_ASSERT((fcntl(fi.fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
    /* Taking one fd: the caller owns it; the handle no longer does. */
    if (cprs_legacy_fd_count(lg)) {
        FUZZ_ASSERT(cprs_legacy_fd_take(lg, 0, &fd) == 0);
        FUZZ_ASSERT(cprs_legacy_fd_take(lg, 0, &fd) == -ENOENT);
        close(fd);
    }
}

/* Offsets of the service bytes of @lg's fd records (cpr-transfer). */
static uint32_t service_bytes(CprsLegacy *lg, Plan *plan)
{
    CprsFdInfo fi;
    uint64_t off;
    uint32_t i, n = cprs_legacy_fd_count(lg);

    if (n > MAX_FDS) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &fi) == 0);
        FUZZ_ASSERT(cprs_legacy_fd_offset(lg, i, &off) == 0);
        /* marker, namelen, name and NUL, id: then the service byte. */
        plan->at[i] = (uint32_t)(off + 1 + 4 + fi.name_len + 1 + 4);
    }
    plan->count = n;
    return n;
}

static bool is_l83(const Result *r)
{
    return r->ret == -EBADMSG && r->clause && !strcmp(r->clause, "L8.3");
}

/*
 * A receive under a limit (@lim) against the same receive without it
 * (@full): the limit is reached (-E2BIG), or the bytes decided before it
 * (L8.1) as they did without it.  Only whether an fd had arrived with a
 * service byte (L8.3) may differ: that depends on how the reads split
 * the bytes, and a smaller buffer splits them otherwise.
 */
static void limited(Result *lim, const Result *full, const char *what)
{
    FUZZ_ASSERT_MSG(lim->ret == -E2BIG || is_l83(lim) || is_l83(full) ||
                    (lim->ret == full->ret &&
                     (!lim->ret || lim->offset == full->offset)),
                    "recv with %s: %d [%s] at %llu, unlimited %d at %llu",
                    what, lim->ret, lim->ret ? lim->clause : "",
                    (unsigned long long)lim->offset, full->ret,
                    (unsigned long long)full->offset);
    if (!lim->ret) {
        cprs_legacy_free(lim->lg);
    }
}

static void transfer(const uint8_t *data, size_t size, const Files *files)
{
    static const uint32_t flag_sets[] = { 0, CPRS_LEGACY_F_LENIENT };
    Result buf, sock;
    Plan plan;
    uint32_t f, i, n20 = 0;
    size_t p;

    for (f = 0; f < 2; f++) {
        buf = decode(data, size, CPRS_MODE_TRANSFER, flag_sets[f]);

        /* (A) one fd with each service byte, as QEMU sends them. */
        if (!buf.ret && service_bytes(buf.lg, &plan) &&
            over_socket(data, size, &plan, files, flag_sets[f], 0, 0,
                        &sock)) {
            FUZZ_ASSERT_MSG(sock.ret == 0, "recv failed (%d at %llu) where "
                            "the buffer decodes", sock.ret,
                            (unsigned long long)sock.offset);
            same_records(sock.lg, buf.lg, false);
            check_received(sock.lg, size, files);
            cprs_legacy_free(sock.lg);
        }

        /* (B) one fd with every 0x20 byte (names hold spaces too). */
        plan.count = 0;
        for (p = 0; p < size && plan.count <= MAX_FDS; p++) {
            if (data[p] == SERVICE_BYTE && plan.count < MAX_FDS) {
                plan.at[plan.count++] = (uint32_t)p;
            } else if (data[p] == SERVICE_BYTE) {
                plan.count = MAX_FDS + 1;
            }
        }
        n20 = plan.count;
        if (n20 <= MAX_FDS &&
            over_socket(data, size, &plan, files, flag_sets[f], 0, 0,
                        &sock)) {
            if (buf.ret) {
                /* The parse fails first, at the same place. */
                FUZZ_ASSERT_MSG(sock.ret == buf.ret &&
                                sock.offset == buf.offset, "recv %d at "
                                "%llu, buffer %d at %llu", sock.ret,
                                (unsigned long long)sock.offset, buf.ret,
                                (unsigned long long)buf.offset);
            } else if (n20 > cprs_legacy_fd_count(buf.lg) && !f) {
                /* Strict: an fd nobody claimed is an error (L8.4). */
                FUZZ_ASSERT(sock.ret == -EBADMSG);
            } else {
                FUZZ_ASSERT_MSG(sock.ret == 0, "recv failed (%d)", sock.ret);
                same_records(sock.lg, buf.lg, false);
                check_received(sock.lg, size, files);
                cprs_legacy_free(sock.lg);
            }
        }
        cprs_legacy_free(buf.lg);
    }

    /* (C) fds where the input says: early, late, several, none. */
    plan.count = 0;
    for (p = 0; p < size && plan.count < MAX_FDS; p++) {
        if (data[p] != SERVICE_BYTE || p + 1 >= size) {
            continue;
        }
        /* The next byte picks a shift of -2..+1 and 0..2 fds. */
        for (i = 0; i < data[p + 1] % 3u && plan.count < MAX_FDS; i++) {
            size_t at = p + (data[p + 1] >> 2) % 4u;

            at = at < 2 ? 0 : at - 2;
            if (at >= size) {
                at = size - 1;
            }
            if (plan.count && at < plan.at[plan.count - 1]) {
                at = plan.at[plan.count - 1];
            }
            plan.at[plan.count++] = (uint32_t)at;
        }
    }
    if (!over_socket(data, size, &plan, files, CPRS_LEGACY_F_LENIENT, 0, 0,
                     &buf)) {
        return;
    }
    if (!buf.ret) {
        check_handle(buf.lg, size, false);
        cprs_legacy_free(buf.lg);
    }
    /* Plan C again under limits: one fd at most, half the bytes. */
    if (plan.count > 1 &&
        over_socket(data, size, &plan, files, CPRS_LEGACY_F_LENIENT, 1, 0,
                    &sock)) {
        limited(&sock, &buf, "max_records 1");
    }
    if (size > 1 &&
        over_socket(data, size, &plan, files, CPRS_LEGACY_F_LENIENT, 0,
                    size / 2, &sock)) {
        limited(&sock, &buf, "max_size size / 2");
    }
}

/*
 * Limits and the API contract: max_records and max_size (which opts may
 * only lower) are enforced with -E2BIG; misuse gets -EINVAL.
 */
static void limits(const uint8_t *data, size_t size, const Result *strict)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .max_records = 2);
    CprsLegacyOpts big = CPRS_OPTS(CprsLegacyOpts, .max_records = UINT32_MAX,
                                   .max_size = UINT64_MAX);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = NULL;
    uint32_t n = 0;
    int ret, fd;

    if (!strict->ret) {
        n = cprs_legacy_fd_count(strict->lg);
        if (cprs_legacy_vfio_count(strict->lg) > n) {
            n = cprs_legacy_vfio_count(strict->lg);
        }
    }
    ret = cprs_legacy_decode(data, size, &o, &diag, &lg);
    if (!strict->ret) {
        FUZZ_ASSERT_MSG(n > 2 ? ret == -E2BIG : ret == 0, "max_records 2: "
                        "%d for %u records", ret, n);
    }
    cprs_legacy_free(lg);
    lg = NULL;
    /* Larger limits than the library's are lowered, not an error. */
    ret = cprs_legacy_decode(data, size, &big, &diag, &lg);
    FUZZ_ASSERT(ret == strict->ret);
    cprs_legacy_free(lg);
    lg = NULL;

    o = CPRS_OPTS(CprsLegacyOpts, .flags = 0x80);
    FUZZ_ASSERT(cprs_legacy_decode(data, size, &o, &diag, &lg) == -EINVAL);
    o = CPRS_OPTS(CprsLegacyOpts, .mode = 7);
    FUZZ_ASSERT(cprs_legacy_decode(data, size, &o, &diag, &lg) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_decode(NULL, 1, NULL, &diag, &lg) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_decode(data, size, NULL, &diag, NULL) ==
                -EINVAL);
    FUZZ_ASSERT(cprs_legacy_decode_fd(-1, NULL, &diag, &lg) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_recv(-1, NULL, &diag, &lg) == -EINVAL);
    FUZZ_ASSERT(cprs_legacy_get_info(NULL, NULL) == -EINVAL);
    FUZZ_ASSERT(!cprs_legacy_fd_count(NULL) && !cprs_legacy_vfio_count(NULL) &&
                !cprs_legacy_warning_count(NULL));
    cprs_legacy_free(NULL);

    /* An fd holding more than max_size bytes. */
    if (size > 1) {
        fd = memfd_create("fuzz-legacy-max", MFD_CLOEXEC);
        if (fd >= 0 && fuzz_write_all(fd, data, size)) {
            o = CPRS_OPTS(CprsLegacyOpts, .max_size = size - 1);
            FUZZ_ASSERT(cprs_legacy_decode_fd(fd, &o, &diag, &lg) ==
                        -E2BIG);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t modes[] = {
        0, CPRS_MODE_EXEC, CPRS_MODE_TRANSFER,
    };
    static const uint32_t flag_sets[] = {
        0, CPRS_LEGACY_F_LENIENT, CPRS_LEGACY_F_ALL_FORMS,
        CPRS_LEGACY_F_LENIENT | CPRS_LEGACY_F_ALL_FORMS,
        CPRS_LEGACY_F_CHECK_FDS,
    };
    Result res[3][5];
    Files files;
    struct stat st;
    uint32_t m, f;
    int low;

    if (fuzz_outside_size_range(size, 0, FUZZ_LEGACY_MAX_INPUT)) {
        return 0;
    }
    low = lowest_free_fd();
    FUZZ_ASSERT(cprs_detect(data, size) >= 0);

    for (m = 0; m < 3; m++) {
        for (f = 0; f < 5; f++) {
            res[m][f] = decode(data, size, modes[m], flag_sets[f]);
        }
        /*
         * Strict acceptance implies lenient and all-forms acceptance,
         * with the same records.
         */
        if (!res[m][0].ret) {
            FUZZ_ASSERT(!res[m][1].ret && !res[m][2].ret && !res[m][3].ret);
            same_records(res[m][0].lg, res[m][1].lg, true);
            same_records(res[m][0].lg, res[m][2].lg, true);
        }
        if (!res[m][2].ret) {
            FUZZ_ASSERT(!res[m][3].ret);
            same_records(res[m][2].lg, res[m][3].lg, true);
        }
        if (res[m][1].ret) {
            FUZZ_ASSERT(res[m][0].ret);
        }
    }
    /* A forced mode equal to the detected one changes nothing. */
    for (f = 0; f < 5; f++) {
        CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);

        if (res[0][f].ret) {
            continue;
        }
        FUZZ_ASSERT(cprs_legacy_get_info(res[0][f].lg, &li) == 0);
        m = li.mode == CPRS_MODE_EXEC ? 1 : 2;
        FUZZ_ASSERT_MSG(!res[m][f].ret, "forced mode %u fails (%d) where "
                        "auto-detection found it", li.mode, res[m][f].ret);
        same_records(res[0][f].lg, res[m][f].lg, true);
    }
    fd_paths(data, size, &res[0][0]);
    limits(data, size, &res[0][0]);
    for (m = 0; m < 3; m++) {
        for (f = 0; f < 5; f++) {
            cprs_legacy_free(res[m][f].lg);
        }
    }

    if (size && size <= SOCKET_MAX_INPUT) {
        for (f = 0; f < MAX_FDS; f++) {
            files.fd[f] = memfd_create("fuzz-legacy-fd", MFD_CLOEXEC);
            FUZZ_ASSERT(files.fd[f] >= 0 && fstat(files.fd[f], &st) == 0);
            files.ino[f] = st.st_ino;
        }
        transfer(data, size, &files);
        for (f = 0; f < MAX_FDS; f++) {
            close(files.fd[f]);
        }
    }
    FUZZ_ASSERT_MSG(lowest_free_fd() == low, "an fd leaked");
    return 0;
}
