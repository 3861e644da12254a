/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-load.c - a CprsState read back after exec() or from the cpr
 * channel (spec 11.1 to 11.4), from an arena or from QEMU's legacy stream.
 *
 * All or nothing: a state is handed out only once every check passed, and
 * on failure everything the process was given (environment, memfd,
 * inherited or received fds, their close-on-exec flags) is as it was, or,
 * for received fds that nobody else could own, closed.
 *
 * Resources (spec 11.5): an exec state is read as the reader or the legacy
 * decoder bounds it (max_arena_size, max_size, max_records); the channel
 * is read through socket.c, whose buffers follow the bytes that came.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "cprs-state.h"

/* The registry record of fd record @fi (its fd number given apart). */
static int fd_rec(CprsState *s, const CprsFdInfo *fi, int fd,
                  StateRec *ret_rec)
{
    int ret = cprs_reg_rec_init(&s->fds, ret_rec, fi->name, (uint32_t)fi->id);

    if (ret) {
        return ret;
    }
    ret_rec->u.f.fd = fd;
    /* The kind travels with the record; 11.4 checks the file. */
    ret_rec->u.f.kind_known = !!(fi->flags & CPRS_FD_F_IDENTITY);
    ret_rec->u.f.kind = fi->kind;
    ret_rec->u.f.flags = fi->flags & CPRS_FD_F_IDENTITY;
    ret_rec->u.f.st_mode = fi->st_mode;
    ret_rec->u.f.dev = fi->dev;
    ret_rec->u.f.ino = fi->ino;
    return 0;
}

/* The RAM block maps of an arena, each with its ranges and fd record. */
static int ram_from_reader(CprsState *s, CprsReader *r)
{
    CprsGpaRange *ranges = NULL;
    CprsRamBlockInfo bi;
    CprsFdInfo bf;
    uint32_t i, k;
    int ret = 0;

    for (i = cprs_reader_ramblock_count(r); i-- > 0 && !ret;) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        ret = cprs_reader_ramblock_get(r, i, &bi);
        if (!ret && bi.range_count) {
            ranges = calloc(bi.range_count, sizeof(*ranges));
            ret = ranges ? 0 : -ENOMEM;
        }
        for (k = 0; !ret && k < bi.range_count; k++) {
            ret = cprs_reader_gpa_range_get(r, i, k, &ranges[k]);
        }
        bf = CPRS_OPTS(CprsFdInfo);
        if (!ret && bi.fd_index != CPRS_NO_INDEX) {
            ret = cprs_reader_fd_get(r, bi.fd_index, &bf);
        }
        if (!ret) {
            ret = cprs_state_save_ramblock(s, &bi, bf.name, bf.id, ranges,
                                           bi.range_count);
        }
        free(ranges);
        ranges = NULL;
    }
    return ret;
}

/*
 * spec 11.1 step 7: fds this process holds for the hand-over itself,
 * which no record may name: each is closed when the hand-over is done
 * with it (cprs_state_release_source(), cprs_rollback_disarm()), and its
 * number would then name whatever the process opens next.  -1: none.
 */
enum { NOT_OURS_STATE, NOT_OURS_ROLLBACK, NOT_OURS_EXE, NOT_OURS__MAX };

typedef struct NotOurs {
    int fd[NOT_OURS__MAX];
} NotOurs;

static void not_ours_init(NotOurs *no, int state_fd)
{
    no->fd[NOT_OURS_STATE] = state_fd;
    cprs_rollback_env_fds(&no->fd[NOT_OURS_ROLLBACK],
                          &no->fd[NOT_OURS_EXE]);
}

/* Refuse record @rec (at stream offset @off) if it names one of @no. */
static int check_not_ours(const NotOurs *no, int fd, uint64_t off,
                          int64_t rec, CprsDiag *diag)
{
    static const char *const why[NOT_OURS__MAX] = {
        [NOT_OURS_STATE] = "a record names the state memfd "
                           "(QEMU_CPR_EXEC_STATE) itself",
        [NOT_OURS_ROLLBACK] = "a record names the rollback memfd "
                              "(QEMU_CPR_ROLLBACK)",
        [NOT_OURS_EXE] = "a record names the previous executable's fd of "
                         "the armed rollback (QEMU_CPR_ROLLBACK)",
    };
    int k;

    for (k = 0; no && fd >= 0 && k < NOT_OURS__MAX; k++) {
        if (no->fd[k] == fd) {
            return cprs_diag_set(diag, -EBADMSG, off, -1, rec, "11.1",
                                 why[k]);
        }
    }
    return 0;
}

/*
 * Fill @s from a verified arena.  @fds (transfer) gives the fd of each
 * slot; NULL means the recorded numbers (exec).  Records are appended
 * oldest first so that a later save writes them in the same order.
 */
static int state_from_reader(CprsState *s, CprsReader *r, const int *fds,
                             const NotOurs *no, CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsDevStateInfo di;
    StateRec e;
    uint32_t i;
    int ret = 0;

    cprs_reader_get_info(r, &ai);
    s->generation = ai.generation;
    ret = cprs_reg_reserve(&s->fds, cprs_reader_fd_count(r));
    if (!ret) {
        ret = cprs_reg_reserve(&s->ram, cprs_reader_ramblock_count(r));
    }
    if (!ret) {
        ret = cprs_reg_reserve(&s->vfio, cprs_reader_vfio_count(r));
    }
    if (!ret) {
        ret = cprs_reg_reserve(&s->dev, cprs_reader_devstate_count(r));
    }
    for (i = cprs_reader_fd_count(r); i-- > 0 && !ret;) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(r, i, &fi);
        if (!ret && (fds ? fds[fi.slot] : fi.fd) < 0) {
            return cprs_diag_set(diag, -EBADMSG, 0, -1, i, "11.1",
                                 "a cpr-exec fd record has no fd number");
        }
        if (!ret && !fds && check_not_ours(no, fi.fd, 0, i, diag)) {
            return -EBADMSG;
        }
        if (!ret) {
            ret = fd_rec(s, &fi, fds ? fds[fi.slot] : fi.fd, &e);
        }
        if (!ret) {
            ret = cprs_reg_insert(&s->fds, &e);
        }
    }
    if (!ret) {
        ret = ram_from_reader(s, r);
    }
    for (i = cprs_reader_vfio_count(r); i-- > 0 && !ret;) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &vi);
        if (!ret) {
            ret = cprs_state_save_vfio(s, &vi);
        }
    }
    for (i = cprs_reader_devstate_count(r); i-- > 0 && !ret;) {
        di = CPRS_OPTS(CprsDevStateInfo);
        ret = cprs_reader_devstate_get(r, i, &di);
        if (!ret) {
            ret = cprs_reg_rec_init(&s->dev, &e, di.name, di.instance_id);
        }
        if (!ret) {
            /* Left in the arena; read (and inflated) when looked up. */
            e.u.d.version_id = di.version_id;
            e.u.d.flags = di.flags & CPRS_DEVSTATE_F_ZSTD;
            e.u.d.size = di.raw_size;
            e.u.d.reader_index = i;
            ret = cprs_reg_insert(&s->dev, &e);
        }
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                             "cannot build the state from the arena");
    }
    return 0;
}

/* The key of record @i of a legacy list (vfio: by name, spec L4.9). */
static int legacy_key(const CprsLegacy *l, bool vfio, uint32_t i,
                      CprsTableKey *ret_key)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    int ret;

    if (vfio) {
        ret = cprs_legacy_vfio_get(l, i, &vi);
        *ret_key = (CprsTableKey) { vi.name, vi.name_len, 0 };
    } else {
        ret = cprs_legacy_fd_get(l, i, &fi);
        *ret_key = (CprsTableKey) { fi.name, fi.name_len, (uint32_t)fi.id };
    }
    return ret;
}

/* The first record of a list after @i with the key of record @i, or @i. */
static uint32_t later_twin(const CprsLegacy *l, bool vfio, uint32_t i)
{
    uint32_t j, n = vfio ? cprs_legacy_vfio_count(l) : cprs_legacy_fd_count(l);
    CprsTableKey a, b;

    if (legacy_key(l, vfio, i, &a)) {
        return i;
    }
    for (j = i + 1; j < n; j++) {
        if (!legacy_key(l, vfio, j, &b) && cprs_key_is(&a, b.name, b.len,
                                                       b.id)) {
            return j;
        }
    }
    return i;
}

/*
 * Fill @s from a decoded legacy stream (fds taken from @l if received).
 * A failure names the record and its offset in the stream (spec L1.4).
 */
static int state_from_legacy(CprsState *s, CprsLegacy *l, bool take,
                             const NotOurs *no, CprsDiag *diag)
{
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    uint64_t off = 0;
    uint32_t i;
    int fd, ret;

    ret = cprs_reg_reserve(&s->fds, cprs_legacy_fd_count(l));
    if (!ret) {
        ret = cprs_reg_reserve(&s->vfio, cprs_legacy_vfio_count(l));
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "out of memory");
    }
    for (i = cprs_legacy_fd_count(l); i-- > 0;) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_legacy_fd_get(l, i, &fi);
        fd = fi.fd;
        if (cprs_legacy_fd_offset(l, i, &off)) {
            off = 0;
        }
        if (!ret) {
            ret = check_not_ours(no, fd, off, i, diag);
            if (ret) {
                return ret;
            }
            ret = cprs_state_save_fd(s, fi.name, fi.id, fd);
        }
        if (!ret && take) {
            /* The state's caller owns it from now on. */
            ret = cprs_legacy_fd_take(l, i, &fd);
        }
        if (ret == -EEXIST) {
            /* Inserted last first: name the later of the two (L4.9). */
            i = later_twin(l, false, i);
            if (cprs_legacy_fd_offset(l, i, &off)) {
                off = 0;
            }
        }
        if (ret) {
            return cprs_diag_set(diag, ret, off, -1, i, "11.3",
                                 ret == -EEXIST ? "duplicate (name, id) in "
                                 "the legacy stream" : ret == -EINVAL ?
                                 "a record of the legacy stream cannot be a "
                                 "state record (its name)" :
                                 "cannot build the state from the legacy "
                                 "stream");
        }
    }
    for (i = cprs_legacy_vfio_count(l); i-- > 0;) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_legacy_vfio_get(l, i, &vi);
        if (!ret) {
            ret = cprs_state_save_vfio(s, &vi);
        }
        if (ret == -EEXIST) {
            /* Inserted last first: name the later of the two (L4.9). */
            i = later_twin(l, true, i);
        }
        if (ret) {
            if (cprs_legacy_vfio_offset(l, i, &off)) {
                off = 0;
            }
            return cprs_diag_set(diag, ret, off, -1, i, "11.3",
                                 ret == -EEXIST ? "duplicate vfio device "
                                 "name in the legacy stream" :
                                 ret == -EINVAL ? "a vfio record of the "
                                 "legacy stream cannot be a state record "
                                 "(its name)" : "cannot build the state "
                                 "from the legacy stream");
        }
    }
    return 0;
}

static int load_opts(const CprsLoadOpts *opts, CprsLoadOpts *o)
{
    if (cprs_opts_copy(o, sizeof(*o), opts) ||
        (o->flags & ~(CPRS_LOAD_F_NO_FD_CHECK |
                      CPRS_LOAD_F_LEGACY_LENIENT))) {
        return -EINVAL;
    }
    return 0;
}

static CprsLegacyOpts legacy_opts(const CprsLoadOpts *o, uint32_t mode)
{
    /* Every form a QEMU writes: with or without iommufd (stub), and QEMU
     * 10.0's stream with no subsection at all. */
    return CPRS_OPTS(CprsLegacyOpts, .mode = mode,
                     .max_records = o->max_records,
                     .flags = (o->flags & CPRS_LOAD_F_LEGACY_LENIENT ?
                               CPRS_LEGACY_F_LENIENT : 0) |
                              CPRS_LEGACY_F_ALL_FORMS);
}

/*
 * Open, verify and check the mode of an arena (from @fd, or @size bytes at
 * @buf with @nfds received @fds), then take its records.
 */
static int load_arena(CprsState *s, const CprsLoadOpts *o, uint32_t mode,
                      int fd, const void *buf, size_t size, const int *fds,
                      uint32_t nfds, const NotOurs *no, CprsDiag *diag)
{
    CprsReaderOpts ro = CPRS_OPTS(CprsReaderOpts,
                                  .max_records = o->max_records,
                                  .max_arena_size = o->max_arena_size);
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    int ret;

    ret = fd >= 0 ? cprs_reader_open_fd(fd, &ro, diag, &s->reader) :
          cprs_reader_open_buffer(buf, size, &ro, diag, &s->reader);
    if (!ret) {
        ret = cprs_reader_verify(s->reader, diag);
    }
    if (!ret) {
        cprs_reader_get_info(s->reader, &ai);
        if (ai.mode != mode) {
            ret = cprs_diag_set(diag, -EBADMSG,
                                offsetof(CprsWireHeader, mode), -1, -1,
                                "11.3", "the arena was written for the "
                                "other CPR mode");
        }
    }
    if (!ret && fds && nfds != cprs_reader_fd_count(s->reader)) {
        ret = cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.2",
                            "the number of fds received differs from the "
                            "number of fd records");
    }
    if (!ret) {
        ret = state_from_reader(s, s->reader, fds, no, diag);
    }
    if (!ret) {
        /* fail-safe F5.7: a rollback record, only as one handed back. */
        ret = cprs_state_rollback_load(s->reader, mode, diag, &s->rollback);
    }
    return ret;
}

/*
 * fail-safe F4.3: a QCPR stream in @fd that is the first part of a dual
 * stream; -ENOENT when it is not.  The arena part is loaded.
 */
static int load_dual(CprsState *s, const CprsLoadOpts *o, int fd,
                     const NotOurs *no, CprsDiag *diag)
{
    CprsReaderOpts ro = CPRS_OPTS(CprsReaderOpts,
                                  .max_records = o->max_records,
                                  .max_arena_size = o->max_arena_size);
    int ret;

    ret = cprs_dual_load_fd(fd, &ro, diag, &s->src_buf, &s->reader);
    if (ret) {
        return ret;
    }
    s->format = CPRS_FORMAT_DUAL;
    ret = state_from_reader(s, s->reader, NULL, no, diag);
    if (!ret) {
        ret = cprs_state_rollback_load(s->reader, CPRS_MODE_EXEC, diag,
                                       &s->rollback);
    }
    return ret;
}

/*
 * The point of no return of an exec load, itself all or nothing: the
 * recorded fds get close-on-exec back, as QEMU's load does, and so does
 * the state memfd (persisted without it), so that a later exec() does
 * not inherit a stale state; then the variable goes.
 */
/*
 * The loaded state's fds are open, and an arena's are the files it
 * recorded; a legacy stream has no identities to compare (11.5.6).
 */
static int check_loaded_fds(const CprsState *s, CprsDiag *diag)
{
    return cprs_state_check_fds_how(s, s->format != CPRS_DETECT_LEGACY, diag,
                                    NULL);
}

static int accept_exec(CprsState *s, int fd, CprsDiag *diag)
{
    int64_t bad;
    int flags, ret;

    ret = cprs_state_set_cloexec(s, true, &bad);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, bad, "11.1",
                             "cannot set close-on-exec on a recorded fd");
    }
    flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        ret = -errno;
        cprs_state_set_cloexec(s, false, NULL);
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                             "cannot set close-on-exec on the state memfd");
    }
    unsetenv(CPRS_EXEC_STATE_NAME);
    s->src_fd = fd;
    return 0;
}

int cprs_state_load_exec(const CprsLoadOpts *opts, CprsDiag *diag,
                         CprsState **ret_state)
{
    CprsLoadOpts o;
    CprsLegacyOpts lo;
    CprsLegacy *l = NULL;
    CprsState *s = NULL;
    NotOurs no;
    int fd, format, ret;

    if (!ret_state || load_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = cprs_exec_find(0, diag, &fd, &format);
    if (ret) {
        return ret;
    }
    ret = cprs_state_new(&s);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "out of memory");
    }
    s->format = format;
    s->mode = CPRS_MODE_EXEC;
    not_ours_init(&no, fd);
    /* A QCPR stream may be the first part of a dual one (F4.3). */
    ret = format == CPRS_DETECT_LEGACY ? load_dual(s, &o, fd, &no, diag) :
          -ENOENT;
    if (ret == -ENOENT && format == CPRS_DETECT_ARENA) {
        ret = load_arena(s, &o, CPRS_MODE_EXEC, fd, NULL, 0, NULL, 0, &no,
                         diag);
    } else if (ret == -ENOENT) {
        lo = legacy_opts(&o, CPRS_MODE_EXEC);
        ret = cprs_legacy_decode_fd(fd, &lo, diag, &l);
        if (!ret) {
            ret = state_from_legacy(s, l, false, &no, diag);
        }
        cprs_legacy_free(l);
    }
    if (!ret && !(o.flags & CPRS_LOAD_F_NO_FD_CHECK)) {
        ret = check_loaded_fds(s, diag);
    }
    if (!ret) {
        ret = accept_exec(s, fd, diag);
    }
    if (ret) {
        /* Untouched: the variable and every fd stay as they were. */
        cprs_state_free(s);
        return ret;
    }
    *ret_state = s;
    return 0;
}

/* The legacy stream from the channel; its fds go to the state's caller. */
static int load_legacy_in(CprsState *s, CprsSockIn *in, const CprsLoadOpts *o,
                          CprsDiag *diag)
{
    CprsLegacyOpts lo = legacy_opts(o, CPRS_MODE_TRANSFER);
    CprsLegacy *l = NULL;
    int ret;

    /* What the channel refuses from here on is QEMU's stream's (L8.1). */
    in->clause = "L8.1";
    ret = cprs_legacy_recv_in(in, &lo, diag, &l);
    if (!ret) {
        ret = state_from_legacy(s, l, true, NULL, diag);
    }
    if (ret) {
        /* Give back what was taken, so that every fd gets closed. */
        cprs_state_close_fds(s);
    }
    cprs_legacy_free(l);
    return ret;
}

static void close_all(int *fds, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
    free(fds);
}

/* The arena from the channel; its fds go to the state's caller. */
static int load_arena_in(CprsState *s, CprsSockIn *in, const CprsLoadOpts *o,
                         CprsDiag *diag)
{
    CprsReaderOpts ro = CPRS_OPTS(CprsReaderOpts,
                                  .max_records = o->max_records,
                                  .max_arena_size = o->max_arena_size);
    int *fds = NULL;
    uint32_t nfds = 0;
    size_t size;
    int ret;

    ret = cprs_transfer_recv_in(in, &ro, diag, &s->src_buf, &size, &fds,
                                &nfds);
    if (ret) {
        return ret;
    }
    /* With no fd at all, fds is NULL: an empty array stands in for it. */
    ret = load_arena(s, o, CPRS_MODE_TRANSFER, -1, s->src_buf, size,
                     fds ? fds : (const int *)&nfds, nfds, NULL, diag);
    if (ret) {
        close_all(fds, nfds);
        return ret;
    }
    free(fds);
    return 0;
}

int cprs_state_load_transfer(int sock, const CprsLoadOpts *opts,
                             CprsDiag *diag, CprsState **ret_state)
{
    CprsLoadOpts o;
    CprsSockIn in;
    CprsState *s = NULL;
    size_t n = 0;
    int ret;

    if (sock < 0 || !ret_state || load_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    cprs_sock_in_init(&in, sock, o.max_records && o.max_records <
                      CPRS_MAX_RECORDS ? o.max_records : CPRS_MAX_RECORDS,
                      "11.2");
    /* The first 8 bytes tell the format; they are kept for the rest. */
    ret = cprs_sock_peek(&in, CPRS_MAGIC_SIZE, &n, diag);
    if (!ret) {
        ret = cprs_state_new(&s);
    }
    if (!ret) {
        s->mode = CPRS_MODE_TRANSFER;
        s->format = cprs_detect(in.ahead, n);
        if (s->format == CPRS_DETECT_LEGACY) {
            ret = load_legacy_in(s, &in, &o, diag);
        } else if (s->format == CPRS_DETECT_ARENA) {
            ret = load_arena_in(s, &in, &o, diag);
        } else {
            ret = cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.2",
                                "the cpr channel carries neither an arena "
                                "nor a legacy stream");
        }
    }
    if (!ret && !(o.flags & CPRS_LOAD_F_NO_FD_CHECK)) {
        ret = check_loaded_fds(s, diag);
        if (ret) {
            cprs_state_close_fds(s);
        }
    }
    cprs_sock_in_close(&in);
    if (ret) {
        cprs_state_free(s);
        return ret;
    }
    *ret_state = s;
    return 0;
}
