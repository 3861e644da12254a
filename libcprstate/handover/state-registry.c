/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-registry.c - the QEMU-facing CPR state (spec 11.3): what QEMU's
 * migration/cpr.c keeps in cpr_state, as four registries (fds, vfio
 * devices, RAM block maps, device payloads) with O(1) lookups.
 *
 * Records are kept in registration order; a saved state lists them
 * newest first, as QEMU's QLIST_INSERT_HEAD does.  Saving and loading
 * are in state-save.c and state-load.c.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cprs-state.h"

/* ---- Registries -------------------------------------------------------- */

static bool rec_eq(const void *ctx, uint32_t val, const CprsTableKey *key)
{
    const StateRec *rec = &((const Registry *)ctx)->rec[val];

    return cprs_key_is(key, rec->name, rec->name_len, rec->id);
}

int64_t cprs_reg_find(const Registry *reg, const char *name, uint32_t id)
{
    CprsTableKey k = { name, strnlen(name, CPRS_MAX_NAME_LEN + 1), id };

    if (!reg->live) {
        return -1;
    }
    return cprs_table_find(&reg->index,
                           cprs_table_hash(&reg->index, name, k.len, id),
                           rec_eq, reg, &k);
}

int cprs_reg_rec_init(const Registry *reg, StateRec *rec, const char *name,
                      uint32_t id)
{
    size_t len;

    memset(rec, 0, sizeof(*rec));
    if (cprs_name_check(name, &len)) {
        return -EINVAL;
    }
    rec->name = strndup(name, len);
    if (!rec->name) {
        return -ENOMEM;
    }
    rec->name_len = (uint32_t)len;
    rec->id = id;
    rec->hash = cprs_table_hash(&reg->index, name, len, id);
    if (reg->kind == REG_FDS) {
        rec->u.f.fd = -1;
    } else if (reg->kind == REG_DEV) {
        rec->u.d.reader_index = -1;
    }
    return 0;
}

void cprs_reg_rec_free(const Registry *reg, StateRec *rec)
{
    free(rec->name);
    if (reg->kind == REG_RAM) {
        free(rec->u.r.info);
        free(rec->u.r.fd_name);
        free(rec->u.r.ranges);
    } else if (reg->kind == REG_DEV) {
        free(rec->u.d.data);
    }
    memset(rec, 0, sizeof(*rec));
}

void cprs_reg_free(Registry *reg)
{
    uint32_t i;

    for (i = 0; i < reg->n; i++) {
        cprs_reg_rec_free(reg, &reg->rec[i]);
    }
    free(reg->rec);
    reg->rec = NULL;
    reg->n = reg->live = 0;
    reg->cap = 0;
    cprs_table_free(&reg->index);
}

/* Drop the dead records, keeping the order, and index the rest again. */
static void reg_compact(Registry *reg)
{
    uint32_t i, n = 0;

    for (i = 0; i < reg->n; i++) {
        if (reg->rec[i].live) {
            reg->rec[n++] = reg->rec[i];
        }
    }
    reg->n = n;
    cprs_table_clear(&reg->index);
    for (i = 0; i < n; i++) {
        cprs_table_put(&reg->index, reg->rec[i].hash, i);
    }
}

/* Room for one more record: cannot fail afterwards. */
static int reg_reserve(Registry *reg)
{
    int ret;

    if (reg->live >= CPRS_MAX_RECORDS) {
        return -E2BIG;
    }
    if (reg->n == reg->cap && reg->n - reg->live >= reg->n / 2 &&
        reg->n) {
        /* At least half dead: O(n) now, after n/2 deletions. */
        reg_compact(reg);
    }
    ret = cprs_grow(&reg->rec, &reg->cap, (size_t)reg->n + 1,
                    sizeof(*reg->rec), 16, 2 * (size_t)CPRS_MAX_RECORDS);
    if (!ret) {
        ret = cprs_table_reserve(&reg->index, 1);
    }
    return ret;
}

int cprs_reg_insert(Registry *reg, StateRec *rec)
{
    CprsTableKey k = { rec->name, rec->name_len, rec->id };
    int ret = -EEXIST;

    if (cprs_table_find(&reg->index, rec->hash, rec_eq, reg, &k) < 0) {
        ret = reg_reserve(reg);
    }
    if (ret) {
        cprs_reg_rec_free(reg, rec);
        return ret;
    }
    rec->live = true;
    reg->rec[reg->n] = *rec;
    cprs_table_put(&reg->index, rec->hash, reg->n);
    reg->n++;
    reg->live++;
    return 0;
}

static void reg_del(Registry *reg, uint32_t i)
{
    cprs_table_del(&reg->index, reg->rec[i].hash, i);
    cprs_reg_rec_free(reg, &reg->rec[i]);
    reg->live--;
}

/* Find and delete (@name, @id): 0 or -ENOENT. */
static int reg_remove(Registry *reg, const char *name, uint32_t id)
{
    int64_t i = cprs_reg_find(reg, name, id);

    if (i < 0) {
        return -ENOENT;
    }
    reg_del(reg, (uint32_t)i);
    return 0;
}

static void reg_init(Registry *reg, uint8_t kind)
{
    memset(reg, 0, sizeof(*reg));
    reg->kind = kind;
    cprs_table_init(&reg->index);
}

/* ---- The state --------------------------------------------------------- */

int cprs_state_new(CprsState **ret_state)
{
    CprsState *s;

    if (!ret_state) {
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    reg_init(&s->fds, REG_FDS);
    reg_init(&s->vfio, REG_VFIO);
    reg_init(&s->ram, REG_RAM);
    reg_init(&s->dev, REG_DEV);
    s->src_fd = -1;
    s->format = CPRS_DETECT_UNKNOWN;
    *ret_state = s;
    return 0;
}

void cprs_state_free(CprsState *s)
{
    if (!s) {
        return;
    }
    cprs_reg_free(&s->fds);
    cprs_reg_free(&s->vfio);
    cprs_reg_free(&s->ram);
    cprs_reg_free(&s->dev);
    cprs_reader_close(s->reader);
    free(s->src_buf);
    if (s->src_fd >= 0) {
        close(s->src_fd);
    }
    free(s->rollback);
    free(s);
}

int cprs_state_release_source(CprsState *s)
{
    const void *data;
    uint8_t **copies;
    size_t size;
    uint32_t i;
    int ret = 0;

    if (!s || !s->reader) {
        /* Not loaded from an arena (or released): only a memfd, if any. */
        if (s && s->src_fd >= 0) {
            close(s->src_fd);
            s->src_fd = -1;
        }
        return 0;
    }
    /* Copy every payload still in the source first: all or nothing. */
    copies = calloc(s->dev.n ? s->dev.n : 1, sizeof(*copies));
    if (!copies) {
        return -ENOMEM;
    }
    for (i = 0; i < s->dev.n && !ret; i++) {
        const StateRec *e = &s->dev.rec[i];

        if (!e->live || e->u.d.reader_index < 0) {
            continue;
        }
        ret = cprs_reader_devstate_data(s->reader,
                                        (uint32_t)e->u.d.reader_index,
                                        &data, &size);
        if (!ret) {
            copies[i] = malloc(size ? size : 1);
            ret = copies[i] ? 0 : -ENOMEM;
        }
        if (!ret && size) {
            memcpy(copies[i], data, size);
        }
    }
    for (i = 0; i < s->dev.n; i++) {
        if (ret) {
            free(copies[i]);
        } else if (copies[i]) {
            s->dev.rec[i].u.d.data = copies[i];
            s->dev.rec[i].u.d.reader_index = -1;
        }
    }
    free(copies);
    if (ret) {
        return ret;
    }
    cprs_reader_close(s->reader);
    s->reader = NULL;
    free(s->src_buf);
    s->src_buf = NULL;
    if (s->src_fd >= 0) {
        close(s->src_fd);
        s->src_fd = -1;
    }
    return 0;
}

uint64_t cprs_state_generation(const CprsState *s)
{
    return s ? s->generation : 0;
}

int cprs_state_format(const CprsState *s)
{
    /* A dual stream was loaded from its arena (fail-safe F4.3). */
    return !s ? CPRS_DETECT_UNKNOWN : s->format == CPRS_FORMAT_DUAL ?
           CPRS_DETECT_ARENA : s->format;
}

/* ---- fds ------------------------------------------------------------- */

int cprs_state_save_fd(CprsState *s, const char *name, int32_t id, int fd)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    StateRec e;
    int ret;

    if (!s || fd < 0) {
        return -EINVAL;
    }
    ret = cprs_reg_rec_init(&s->fds, &e, name, (uint32_t)id);
    if (ret) {
        return ret;
    }
    e.u.f.fd = fd;
    /*
     * Classify the fd now, when QEMU registers it (device creation,
     * outside the live update's downtime), so that a save only has to
     * fstat() it.  An fd that cannot be examined now is classified at
     * save instead.
     */
    if (!s->memfd_dev) {
        s->memfd_dev = cprs_memfd_dev();
    }
    if (!cprs_fd_identify_dev(fd, &fi, s->memfd_dev)) {
        e.u.f.kind_known = true;
        e.u.f.kind = fi.kind;
        e.u.f.flags = fi.flags & CPRS_FD_F_IDENTITY;
        e.u.f.dev = fi.dev;
        e.u.f.ino = fi.ino;
    }
    return cprs_reg_insert(&s->fds, &e);
}

int cprs_state_find_fd(const CprsState *s, const char *name, int32_t id)
{
    int64_t i;

    if (!s || !name) {
        return -EINVAL;
    }
    i = cprs_reg_find(&s->fds, name, (uint32_t)id);
    return i < 0 ? -ENOENT : s->fds.rec[i].u.f.fd;
}

int cprs_state_resave_fd(CprsState *s, const char *name, int32_t id, int fd)
{
    int old = cprs_state_find_fd(s, name, id);

    if (old == -ENOENT) {
        return cprs_state_save_fd(s, name, id, fd);
    }
    if (old < 0) {
        return old;
    }
    return old == fd ? 0 : -EEXIST;
}

int cprs_state_delete_fd(CprsState *s, const char *name, int32_t id)
{
    if (!s || !name) {
        return -EINVAL;
    }
    return reg_remove(&s->fds, name, (uint32_t)id);
}

int cprs_state_open_fd(CprsState *s, const char *path, int flags,
                       const char *name, int32_t id)
{
    int fd, ret;

    fd = cprs_state_find_fd(s, name, id);
    if (fd != -ENOENT) {
        return fd;
    }
    if (!path) {
        return -EINVAL;
    }
    fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    ret = cprs_state_save_fd(s, name, id, fd);
    if (ret) {
        close(fd);
        return ret;
    }
    return fd;
}

int cprs_state_walk_fds(const CprsState *s, CprsWalkFdFn fn, void *opaque)
{
    uint32_t i;
    int ret;

    if (!s || !fn) {
        return -EINVAL;
    }
    for (i = s->fds.n; i-- > 0;) {
        const StateRec *e = &s->fds.rec[i];

        if (e->live) {
            ret = fn(opaque, e->name, (int32_t)e->id, e->u.f.fd);
            if (ret) {
                return ret;
            }
        }
    }
    return 0;
}

uint32_t cprs_state_fd_count(const CprsState *s)
{
    return s ? s->fds.live : 0;
}

/* ---- vfio devices ------------------------------------------------------ */

int cprs_state_save_vfio(CprsState *s, const CprsVfioDeviceInfo *dev)
{
    StateRec e;
    int ret;

    if (!s || !dev) {
        return -EINVAL;
    }
    ret = cprs_reg_rec_init(&s->vfio, &e, dev->name, 0);
    if (ret) {
        return ret;
    }
    e.u.v.devid = dev->devid;
    e.u.v.ioas_id = dev->ioas_id;
    e.u.v.hwpt_id = dev->hwpt_id;
    return cprs_reg_insert(&s->vfio, &e);
}

int cprs_state_find_vfio(const CprsState *s, const char *name,
                         CprsVfioDeviceInfo *info)
{
    CprsVfioDeviceInfo vi = { .sz = sizeof(vi) };
    const StateRec *e;
    int64_t i;

    if (!s || !name || !info) {
        return -EINVAL;
    }
    i = cprs_reg_find(&s->vfio, name, 0);
    if (i < 0) {
        return -ENOENT;
    }
    e = &s->vfio.rec[i];
    vi.name = e->name;
    vi.name_len = e->name_len;
    vi.devid = e->u.v.devid;
    vi.ioas_id = e->u.v.ioas_id;
    vi.hwpt_id = e->u.v.hwpt_id;
    return cprs_info_fill(info, &vi, sizeof(vi));
}

int cprs_state_delete_vfio(CprsState *s, const char *name)
{
    if (!s || !name) {
        return -EINVAL;
    }
    return reg_remove(&s->vfio, name, 0);
}

/* ---- RAM block maps ---------------------------------------------------- */

int cprs_state_save_ramblock(CprsState *s, const CprsRamBlockInfo *block,
                             const char *fd_name, int32_t fd_id,
                             const CprsGpaRange *ranges, uint32_t n_ranges)
{
    CprsRamBlockInfo in;
    StateRec e;
    int ret;

    /* The same rules as the writer's, checked now rather than at save. */
    if (!s || !block || (n_ranges && !ranges) ||
        cprs_opts_copy(&in, sizeof(in), block) ||
        !cprs_ramblock_ok(&in, ranges, n_ranges) ||
        (fd_name && cprs_reg_find(&s->fds, fd_name, (uint32_t)fd_id) < 0)) {
        return -EINVAL;
    }
    ret = cprs_reg_rec_init(&s->ram, &e, in.idstr, 0);
    if (ret) {
        return ret;
    }
    in.idstr = NULL;
    e.u.r.info = malloc(sizeof(in));
    if (e.u.r.info) {
        *e.u.r.info = in;
    }
    e.u.r.fd_id = fd_id;
    if (fd_name) {
        e.u.r.fd_name = strdup(fd_name);
    }
    if (n_ranges) {
        e.u.r.ranges = malloc((size_t)n_ranges * sizeof(*ranges));
        if (e.u.r.ranges) {
            memcpy(e.u.r.ranges, ranges, (size_t)n_ranges * sizeof(*ranges));
        }
    }
    e.u.r.n_ranges = n_ranges;
    if (!e.u.r.info || (fd_name && !e.u.r.fd_name) ||
        (n_ranges && !e.u.r.ranges)) {
        cprs_reg_rec_free(&s->ram, &e);
        return -ENOMEM;
    }
    return cprs_reg_insert(&s->ram, &e);
}

static const StateRec *find_ram(const CprsState *s, const char *idstr)
{
    int64_t i = cprs_reg_find(&s->ram, idstr, 0);

    return i < 0 ? NULL : &s->ram.rec[i];
}

int cprs_state_find_ramblock(const CprsState *s, const char *idstr,
                             CprsRamBlockInfo *info, int *ret_fd)
{
    CprsRamBlockInfo bi;
    const StateRec *e;

    if (!s || !idstr || !info || !ret_fd) {
        return -EINVAL;
    }
    e = find_ram(s, idstr);
    if (!e) {
        return -ENOENT;
    }
    bi = *e->u.r.info;
    bi.sz = sizeof(bi);
    bi.idstr = e->name;
    bi.idstr_len = e->name_len;
    bi.fd_index = CPRS_NO_INDEX;
    bi.range_count = e->u.r.n_ranges;
    *ret_fd = e->u.r.fd_name ?
              cprs_state_find_fd(s, e->u.r.fd_name, e->u.r.fd_id) : -1;
    if (*ret_fd == -ENOENT) {
        *ret_fd = -1;
    }
    return cprs_info_fill(info, &bi, sizeof(bi));
}

int cprs_state_gpa_range(const CprsState *s, const char *idstr, uint32_t k,
                         CprsGpaRange *range)
{
    const StateRec *e;

    if (!s || !idstr || !range) {
        return -EINVAL;
    }
    e = find_ram(s, idstr);
    if (!e) {
        return -ENOENT;
    }
    if (k >= e->u.r.n_ranges) {
        return -EINVAL;
    }
    *range = e->u.r.ranges[k];
    return 0;
}

void cprs_state_clear_ramblocks(CprsState *s)
{
    if (s) {
        cprs_reg_free(&s->ram);
    }
}

/* ---- Device payloads --------------------------------------------------- */

int cprs_state_save_devstate(CprsState *s, const CprsDevStateInfo *ds,
                             const void *data, size_t size)
{
    CprsDevStateInfo in;
    StateRec e;
    int ret;

    if (!s || !ds || (!data && size) || cprs_opts_copy(&in, sizeof(in), ds) ||
        (in.flags & ~CPRS_DEVSTATE_F_KNOWN)) {
        return -EINVAL;
    }
    if (size > CPRS_MAX_PAYLOAD_SIZE) {
        return -E2BIG;
    }
    ret = cprs_reg_rec_init(&s->dev, &e, in.name, in.instance_id);
    if (ret) {
        return ret;
    }
    e.u.d.version_id = in.version_id;
    e.u.d.flags = in.flags;
    e.u.d.size = size;
    e.u.d.data = malloc(size ? size : 1);
    if (!e.u.d.data) {
        cprs_reg_rec_free(&s->dev, &e);
        return -ENOMEM;
    }
    if (size) {
        memcpy(e.u.d.data, data, size);
    }
    return cprs_reg_insert(&s->dev, &e);
}

int cprs_state_find_devstate(CprsState *s, const char *name,
                             uint32_t instance_id, const void **ret_data,
                             size_t *ret_size, uint32_t *ret_version)
{
    const StateRec *e;
    int64_t i;
    int ret;

    if (!s || !name || !ret_data || !ret_size) {
        return -EINVAL;
    }
    i = cprs_reg_find(&s->dev, name, instance_id);
    if (i < 0) {
        return -ENOENT;
    }
    e = &s->dev.rec[i];
    if (e->u.d.reader_index >= 0) {
        /* Zero-copy from the loaded arena (decompressed once if zstd). */
        ret = cprs_reader_devstate_data(s->reader,
                                        (uint32_t)e->u.d.reader_index,
                                        ret_data, ret_size);
        if (ret) {
            return ret;
        }
    } else {
        *ret_data = e->u.d.data;
        *ret_size = (size_t)e->u.d.size;
    }
    if (ret_version) {
        *ret_version = e->u.d.version_id;
    }
    return 0;
}

int cprs_state_delete_devstate(CprsState *s, const char *name,
                               uint32_t instance_id)
{
    if (!s || !name) {
        return -EINVAL;
    }
    return reg_remove(&s->dev, name, instance_id);
}
