/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-save.c - a CprsState written out (spec 11.1, 11.2): as an arena,
 * or as QEMU's legacy stream for a target without libcprstate; into a
 * persisted memfd for cpr-exec, or onto the cpr channel with its fds for
 * cpr-transfer.  Records go out newest first, as QEMU lists them.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "cprs-state.h"

static int save_opts(const CprsSaveOpts *opts, CprsSaveOpts *o)
{
    if (cprs_opts_copy(o, sizeof(*o), opts) ||
        (o->flags & ~(CPRS_SAVE_F_LEGACY | CPRS_SAVE_F_NO_IDENTITY |
                      CPRS_SAVE_F_DUAL))) {
        return -EINVAL;
    }
    return 0;
}

/*
 * The identity of fd record @e for the arena (spec 11.5): a regular file
 * (memfd, file) is looked at again, since its size and seals may have
 * changed since it was registered; nothing of any other open file can
 * change, so the identity taken at registration (or at load) stands, and
 * costs no system call.  An fd never identified is identified now, and
 * what is learned is kept for the next save.
 */
static int fd_identity(CprsState *s, StateRec *e, CprsFdInfo *fi)
{
    int ret;

    if (e->u.f.kind_known && (e->u.f.flags & CPRS_FD_F_IDENTITY) &&
        !S_ISREG(e->u.f.st_mode)) {
        fi->kind = e->u.f.kind;
        fi->flags = CPRS_FD_F_IDENTITY;
        fi->dev = e->u.f.dev;
        fi->ino = e->u.f.ino;
        fi->st_mode = e->u.f.st_mode;
        return 0;
    }
    /* Classify only what is not classified yet. */
    ret = cprs_fd_refresh(e->u.f.fd, fi, e->u.f.kind_known ?
                          e->u.f.kind : CPRS_FD_KIND__MAX,
                          e->u.f.dev, e->u.f.ino, s->memfd_dev);
    if (!ret) {
        e->u.f.kind_known = true;
        e->u.f.kind = fi->kind;
        e->u.f.flags = CPRS_FD_F_IDENTITY;
        e->u.f.st_mode = fi->st_mode;
        e->u.f.dev = fi->dev;
        e->u.f.ino = fi->ino;
    }
    return ret;
}

/* The fd records of @s into @w, with identities unless told otherwise. */
static int add_fds(CprsState *s, CprsWriter *w, const CprsSaveOpts *o,
                   CprsDiag *diag)
{
    CprsFdInfo fi;
    uint32_t i;
    int ret;

    for (i = s->fds.n; i-- > 0;) {
        StateRec *e = &s->fds.rec[i];

        if (!e->live) {
            continue;
        }
        fi = CPRS_OPTS(CprsFdInfo, .name = e->name, .id = (int32_t)e->id,
                       .fd = e->u.f.fd);
        if (!(o->flags & CPRS_SAVE_F_NO_IDENTITY)) {
            ret = fd_identity(s, e, &fi);
            if (ret) {
                return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                                     "a recorded fd cannot be examined "
                                     "(closed?)");
            }
        }
        ret = cprs_writer_add_fd(w, &fi, &e->u.f.arena_index);
        if (ret) {
            return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                                 "a record cannot be written to the arena");
        }
    }
    return 0;
}

/* What a vfio device record of @e says, as the writers take it. */
static CprsVfioDeviceInfo vfio_of(const StateRec *e)
{
    return CPRS_OPTS(CprsVfioDeviceInfo, .name = e->name,
                     .devid = e->u.v.devid, .ioas_id = e->u.v.ioas_id,
                     .hwpt_id = e->u.v.hwpt_id);
}

/*
 * RAM blocks, vfio devices and payloads of @s into @w, newest first;
 * payload flags masked with @ds_mask (fail-safe F6.2: no zstd).
 */
static int add_others(CprsState *s, CprsWriter *w, uint32_t ds_mask)
{
    CprsVfioDeviceInfo vi;
    CprsRamBlockInfo bi;
    CprsDevStateInfo di;
    const void *data;
    size_t size;
    uint32_t i;
    int64_t f;
    int ret = 0;

    for (i = s->ram.n; i-- > 0 && !ret;) {
        const StateRec *e = &s->ram.rec[i];

        if (!e->live) {
            continue;
        }
        bi = *e->u.r.info;
        bi.idstr = e->name;
        bi.fd_index = CPRS_NO_INDEX;
        if (e->u.r.fd_name) {
            f = cprs_reg_find(&s->fds, e->u.r.fd_name,
                              (uint32_t)e->u.r.fd_id);
            if (f < 0) {
                return -ENOENT;
            }
            bi.fd_index = s->fds.rec[f].u.f.arena_index;
        }
        ret = cprs_writer_add_ramblock(w, &bi, e->u.r.ranges,
                                       e->u.r.n_ranges, NULL);
    }
    for (i = s->vfio.n; i-- > 0 && !ret;) {
        if (s->vfio.rec[i].live) {
            vi = vfio_of(&s->vfio.rec[i]);
            ret = cprs_writer_add_vfio(w, &vi, NULL);
        }
    }
    for (i = s->dev.n; i-- > 0 && !ret;) {
        const StateRec *e = &s->dev.rec[i];

        if (!e->live) {
            continue;
        }
        ret = cprs_state_find_devstate(s, e->name, e->id, &data, &size,
                                       NULL);
        di = CPRS_OPTS(CprsDevStateInfo, .name = e->name,
                       .instance_id = e->id, .version_id = e->u.d.version_id,
                       .flags = e->u.d.flags & ds_mask);
        /* The bytes stay ours until the arena is written: not copied. */
        if (!ret) {
            ret = cprs_writer_add_devstate_ref(w, &di, data, size);
        }
    }
    return ret;
}

/* Build the arena of @s for @mode. */
static int build_arena(CprsState *s, uint32_t mode, const CprsSaveOpts *o,
                       CprsDiag *diag, CprsWriter **ret_writer)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = mode,
                                  .generation = s->generation + 1,
                                  .producer = o->producer,
                                  .zstd_level = o->zstd_level,
                                  .compress_sections = o->compress_sections);
    CprsWriter *w;
    int ret;

    ret = cprs_writer_new(&wo, &w);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "bad save options");
    }
    /* The counts are known: the writer's arrays are sized once. */
    ret = cprs_writer_expect(w, CPRS_SECTION_FDS, s->fds.live);
    if (!ret) {
        ret = cprs_writer_expect(w, CPRS_SECTION_RAMBLOCKS, s->ram.live);
    }
    if (ret) {
        cprs_writer_free(w);
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "out of memory");
    }
    ret = add_fds(s, w, o, diag);
    if (!ret) {
        ret = add_others(s, w, o->flags & CPRS_SAVE_F__NO_ZSTD ?
                         ~CPRS_DEVSTATE_F_ZSTD : UINT32_MAX);
        if (ret) {
            cprs_diag_set(diag, ret == -ENOENT ? -EINVAL : ret, 0, -1, -1,
                          "11.3", ret == -ENOENT ?
                          "a RAM block's fd record was deleted" :
                          "a record cannot be written to the arena");
            ret = ret == -ENOENT ? -EINVAL : ret;
        }
    }
    if (ret) {
        cprs_writer_free(w);
        return ret;
    }
    *ret_writer = w;
    return 0;
}

/* Build QEMU's legacy stream of @s (fd and vfio records only). */
static int build_legacy(const CprsState *s, uint32_t mode,
                        const CprsSaveOpts *o, CprsDiag *diag,
                        CprsLegacy **ret_legacy)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts, .mode = mode,
                                  .vfio_form = o->vfio_form);
    CprsLegacy *l;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    uint32_t i;
    int ret;

    ret = cprs_legacy_new(&lo, &l);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "bad legacy options");
    }
    for (i = s->fds.n; i-- > 0 && !ret;) {
        const StateRec *e = &s->fds.rec[i];

        if (e->live) {
            fi = CPRS_OPTS(CprsFdInfo, .name = e->name,
                           .id = (int32_t)e->id, .fd = e->u.f.fd);
            ret = cprs_legacy_add_fd(l, &fi, NULL);
        }
    }
    for (i = s->vfio.n; i-- > 0 && !ret;) {
        vi = vfio_of(&s->vfio.rec[i]);
        ret = s->vfio.rec[i].live ? cprs_legacy_add_vfio(l, &vi, NULL) : 0;
    }
    if (ret) {
        cprs_legacy_free(l);
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                             "a record cannot be written to the legacy "
                             "stream");
    }
    *ret_legacy = l;
    return 0;
}

/* The encoded legacy stream of @s, in a sealed QEMU_CPR_EXEC_STATE memfd. */
static int legacy_memfd(const CprsState *s, const CprsSaveOpts *o,
                        CprsDiag *diag, int *ret_fd)
{
    CprsLegacy *l;
    void *buf;
    size_t size;
    int ret;

    ret = build_legacy(s, CPRS_MODE_EXEC, o, diag, &l);
    if (ret) {
        return ret;
    }
    ret = cprs_legacy_encode(l, NULL, &buf, &size);
    cprs_legacy_free(l);
    if (!ret) {
        ret = cprs_memfd_of_bytes(CPRS_EXEC_STATE_NAME, CPRS_MEMFD_F_SEAL,
                                  buf, size, ret_fd);
        free(buf);
    }
    return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                               "cannot write the state memfd") : 0;
}

/* fail-safe F6.4: the format of this save, from its flags or its plan. */
static int save_format(CprsState *s, uint32_t mode, CprsSaveOpts *o,
                       CprsDiag *diag, uint32_t *ret_format)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);

    cprs_state_get_info(s, &si);
    return cprs_save_format(o, mode, &si, diag, ret_format);
}

/* A dual stream of @s in a sealed QEMU_CPR_EXEC_STATE memfd (F4). */
static int dual_memfd(CprsState *s, const CprsSaveOpts *o, CprsDiag *diag,
                      int *ret_fd)
{
    CprsSaveOpts lo = *o;
    CprsWriter *w;
    CprsLegacy *l;
    void *legacy = NULL, *arena = NULL, *buf = NULL;
    size_t lsize, asize, size;
    int ret;

    /* The QCPR part as QEMU 10.2 with iommufd writes it. */
    lo.vfio_form = CPRS_LEGACY_VFIO_FULL;
    ret = build_legacy(s, CPRS_MODE_EXEC, &lo, diag, &l);
    if (ret) {
        return ret;
    }
    ret = cprs_legacy_encode(l, NULL, &legacy, &lsize);
    cprs_legacy_free(l);
    if (!ret) {
        ret = build_arena(s, CPRS_MODE_EXEC, o, diag, &w);
        if (ret) {
            free(legacy);
            return ret;
        }
        ret = cprs_writer_finish_buffer(w, &arena, &asize);
        cprs_writer_free(w);
    }
    if (!ret) {
        ret = cprs_dual_compose(legacy, lsize, arena, asize, &buf, &size);
    }
    if (!ret) {
        ret = cprs_memfd_of_bytes(CPRS_EXEC_STATE_NAME, CPRS_MEMFD_F_SEAL,
                                  buf, size, ret_fd);
    }
    free(legacy);
    free(arena);
    free(buf);
    return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "F4.2",
                               "cannot write the dual stream") : 0;
}

int cprs_state_rollback_copy(CprsState *s, const char *producer,
                             CprsDiag *diag, void **ret_buf,
                             size_t *ret_size)
{
    CprsSaveOpts o = CPRS_OPTS(CprsSaveOpts, .producer = producer);
    CprsWriter *w;
    int ret;

    ret = build_arena(s, CPRS_MODE_EXEC, &o, diag, &w);
    if (ret) {
        return ret;
    }
    ret = cprs_writer_finish_buffer(w, ret_buf, ret_size);
    cprs_writer_free(w);
    return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "F5.1",
                               "cannot lay out the rollback copy") : 0;
}

int cprs_state_save_exec(CprsState *s, const CprsSaveOpts *opts,
                         CprsDiag *diag, int *ret_fd)
{
    CprsSaveOpts o;
    CprsWriter *w;
    uint32_t format;
    int memfd, fd, ret;

    if (!s || !ret_fd || save_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = save_format(s, CPRS_MODE_EXEC, &o, diag, &format);
    if (ret) {
        return ret;
    }
    if (format == CPRS_FORMAT_DUAL) {
        ret = dual_memfd(s, &o, diag, &memfd);
    } else if (format == CPRS_FORMAT_LEGACY) {
        ret = legacy_memfd(s, &o, diag, &memfd);
    } else {
        ret = build_arena(s, CPRS_MODE_EXEC, &o, diag, &w);
        if (ret) {
            return ret;
        }
        ret = cprs_writer_finish_memfd(w, CPRS_EXEC_STATE_NAME,
                                       CPRS_MEMFD_F_SEAL, &memfd);
        cprs_writer_free(w);
        if (ret) {
            cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                          "cannot write the state memfd");
        }
    }
    if (ret) {
        return ret;
    }
    ret = cprs_exec_persist(memfd, &fd);
    close(memfd);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                             "cannot persist the state memfd");
    }
    *ret_fd = fd;
    return 0;
}

int cprs_state_save_transfer(CprsState *s, int sock,
                             const CprsSaveOpts *opts, CprsDiag *diag)
{
    CprsSaveOpts o;
    CprsWriter *w;
    CprsLegacy *l;
    void *buf;
    size_t size;
    int *fds = NULL;
    uint32_t i, n = 0, format;
    int ret;

    if (!s || sock < 0 || save_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = save_format(s, CPRS_MODE_TRANSFER, &o, diag, &format);
    if (ret) {
        return ret;
    }
    if (format == CPRS_FORMAT_LEGACY) {
        ret = build_legacy(s, CPRS_MODE_TRANSFER, &o, diag, &l);
        if (ret) {
            return ret;
        }
        ret = cprs_legacy_send(l, sock, CPRS_LEGACY_SEND_F_SHUTDOWN);
        cprs_legacy_free(l);
        return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "11.2",
                                   "cannot send the legacy stream") : 0;
    }
    ret = build_arena(s, CPRS_MODE_TRANSFER, &o, diag, &w);
    if (ret) {
        return ret;
    }
    ret = cprs_writer_finish_buffer(w, &buf, &size);
    cprs_writer_free(w);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.2",
                             "cannot lay out the arena");
    }
    /* Slot k is the k-th fd record: newest first. */
    fds = malloc((s->fds.live ? s->fds.live : 1) * sizeof(*fds));
    if (!fds) {
        free(buf);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    for (i = s->fds.n; i-- > 0;) {
        if (s->fds.rec[i].live) {
            fds[n++] = s->fds.rec[i].u.f.fd;
        }
    }
    ret = cprs_transfer_send(sock, buf, size, fds, n,
                             CPRS_TRANSFER_F_SHUTDOWN);
    free(fds);
    free(buf);
    return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "11.2",
                               "cannot send the arena") : 0;
}
