/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state.c - the QEMU-facing CPR state (spec 11.3): what migration/cpr.c
 * keeps in cpr_state, with its save and load paths for cpr-exec and
 * cpr-transfer, in the arena format or in QEMU's legacy stream.
 *
 * Records are kept in registration order with an O(1) (name, id) index;
 * saved state lists them newest first, as QEMU's QLIST_INSERT_HEAD does.
 * The load paths are all or nothing: a state is handed out only once
 * every check passed, and on failure everything the process was given
 * (environment, memfd, inherited or received fds) is as it was, or, for
 * received fds that nobody else could own, closed.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cprs-handover.h"

/* One record of any list; the fields used depend on the list. */
typedef struct Entry {
    char *name;
    uint32_t name_len;
    uint32_t id;                /* fd id, devstate instance, else 0 */
    uint32_t hash;              /* cprs_key_hash(name, id), cached */
    bool live;
    /* fd list */
    int fd;
    CprsFdInfo ident;           /* kind, flags, seals, identity */
    bool kind_known;            /* ident.kind classified (save_fd, load) */
    uint32_t arena_index;       /* position in the arena being written */
    /* vfio list */
    int32_t devid;
    uint32_t ioas_id;
    uint32_t hwpt_id;
    /* RAM block list */
    CprsRamBlockInfo rb;
    char *fd_name;              /* backing fd record, or NULL */
    int32_t fd_id;
    CprsGpaRange *ranges;
    uint32_t n_ranges;
    /* device-state list */
    uint32_t version_id;
    uint32_t ds_flags;
    uint8_t *data;              /* owned copy, or NULL when in the source */
    uint64_t size;
    int64_t reader_index;       /* record in the source arena, or -1 */
} Entry;

#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX

typedef struct Table {
    Entry *e;                   /* registration order */
    uint32_t n;
    uint32_t cap;
    uint32_t live;
    uint32_t *slots;            /* entry index + 1, SLOT_EMPTY, SLOT_TOMB */
    uint32_t nslots;            /* power of two */
    uint32_t used;              /* non-empty slots, tombstones included */
} Table;

struct CprsState {
    Table fds;
    Table vfio;
    Table ram;
    Table dev;
    uint64_t generation;
    int format;
    int src_fd;                 /* exec state memfd, or -1 */
    uint64_t memfd_dev;         /* st_dev of memfds, learned once */
    CprsReader *reader;         /* loaded arena, or NULL */
    void *src_buf;              /* received arena bytes, or NULL */
};

/* ---- Tables ------------------------------------------------------------ */

static void entry_free(Entry *e)
{
    free(e->name);
    free(e->fd_name);
    free(e->ranges);
    free(e->data);
}

static void table_free(Table *t)
{
    uint32_t i;

    for (i = 0; i < t->n; i++) {
        entry_free(&t->e[i]);
    }
    free(t->e);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Rebuild the index with room for @want live entries (drops tombs). */
static int table_rehash(Table *t, uint32_t want)
{
    uint32_t nslots = 16, i, pos, *slots;

    while (nslots < 2 * (uint64_t)want + 2) {
        if (nslots >= (1u << 30)) {
            return -ENOMEM;
        }
        nslots *= 2;
    }
    slots = calloc(nslots, sizeof(*slots));
    if (!slots) {
        return -ENOMEM;
    }
    for (i = 0; i < t->n; i++) {
        if (!t->e[i].live) {
            continue;
        }
        pos = t->e[i].hash & (nslots - 1);
        while (slots[pos] != SLOT_EMPTY) {
            pos = (pos + 1) & (nslots - 1);
        }
        slots[pos] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    t->used = t->live;
    return 0;
}

/* Index of the live entry (name, id), or -1. */
static int64_t table_find(const Table *t, const char *name, size_t len,
                          uint32_t id)
{
    uint32_t h, pos, s, probes;
    const Entry *e;

    if (!t->nslots) {
        return -1;
    }
    h = cprs_key_hash(name, len, id);
    pos = h & (t->nslots - 1);
    for (probes = 0; probes < t->nslots; probes++) {
        s = t->slots[pos];
        if (s == SLOT_EMPTY) {
            return -1;
        }
        if (s != SLOT_TOMB) {
            e = &t->e[s - 1];
            if (e->id == id && e->name_len == len &&
                !memcmp(e->name, name, len)) {
                return s - 1;
            }
        }
        pos = (pos + 1) & (t->nslots - 1);
    }
    return -1;
}

/* Make room for one more entry: cannot fail afterwards. */
static int table_reserve(Table *t)
{
    Entry *ne;
    uint32_t cap;
    int ret;

    if (t->n == t->cap) {
        if (t->cap >= CPRS_MAX_RECORDS) {
            return -E2BIG;
        }
        cap = t->cap ? t->cap * 2 : 16;
        ne = realloc(t->e, (size_t)cap * sizeof(*ne));
        if (!ne) {
            return -ENOMEM;
        }
        t->e = ne;
        t->cap = cap;
    }
    if ((uint64_t)(t->used + 1) * 2 > t->nslots) {
        ret = table_rehash(t, t->live + 1);
        if (ret) {
            return ret;
        }
    }
    return 0;
}

/* Append @e (after table_reserve()), taking ownership of its buffers. */
static uint32_t table_put(Table *t, const Entry *e)
{
    uint32_t idx = t->n++, pos = e->hash & (t->nslots - 1);

    t->e[idx] = *e;
    t->e[idx].live = true;
    while (t->slots[pos] != SLOT_EMPTY && t->slots[pos] != SLOT_TOMB) {
        pos = (pos + 1) & (t->nslots - 1);
    }
    if (t->slots[pos] == SLOT_EMPTY) {
        t->used++;
    }
    t->slots[pos] = idx + 1;
    t->live++;
    return idx;
}

static void table_del(Table *t, uint32_t idx)
{
    uint32_t pos = t->e[idx].hash & (t->nslots - 1);

    while (t->slots[pos] != idx + 1) {
        pos = (pos + 1) & (t->nslots - 1);
    }
    t->slots[pos] = SLOT_TOMB;
    entry_free(&t->e[idx]);
    memset(&t->e[idx], 0, sizeof(t->e[idx]));
    t->live--;
}

/* Validate a name and make the entry's owned copy. */
static int entry_name(Entry *e, const char *name, uint32_t id)
{
    size_t len;

    if (cprs_name_check(name, &len)) {
        return -EINVAL;
    }
    e->name = strndup(name, len);
    if (!e->name) {
        return -ENOMEM;
    }
    e->name_len = (uint32_t)len;
    e->id = id;
    e->hash = cprs_key_hash(name, len, id);
    e->fd = -1;
    e->reader_index = -1;
    return 0;
}

/* Insert a fully built entry, refusing duplicates; frees it on failure. */
static int table_insert(Table *t, Entry *e)
{
    int ret = -EEXIST;

    if (table_find(t, e->name, e->name_len, e->id) < 0) {
        ret = table_reserve(t);
    }
    if (ret) {
        entry_free(e);
        return ret;
    }
    table_put(t, e);
    return 0;
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
    table_free(&s->fds);
    table_free(&s->vfio);
    table_free(&s->ram);
    table_free(&s->dev);
    cprs_reader_close(s->reader);
    free(s->src_buf);
    if (s->src_fd >= 0) {
        close(s->src_fd);
    }
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
        const Entry *e = &s->dev.e[i];

        if (!e->live || e->reader_index < 0) {
            continue;
        }
        ret = cprs_reader_devstate_data(s->reader, (uint32_t)e->reader_index,
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
            s->dev.e[i].data = copies[i];
            s->dev.e[i].reader_index = -1;
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
    return s ? s->format : CPRS_DETECT_UNKNOWN;
}

/*
 * Classify @e's fd now, when QEMU registers it (device creation, outside
 * the live update's downtime), so that a save only has to fstat() it.
 * An fd that cannot be examined now is classified at save instead.
 */
static void classify_entry(CprsState *s, Entry *e)
{
    e->ident = CPRS_OPTS(CprsFdInfo);
    if (!s->memfd_dev) {
        s->memfd_dev = cprs_memfd_dev();
    }
    e->kind_known = !cprs_fd_identify_dev(e->fd, &e->ident, s->memfd_dev);
}

int cprs_state_save_fd(CprsState *s, const char *name, int32_t id, int fd)
{
    Entry e = { 0 };
    int ret;

    if (!s || fd < 0) {
        return -EINVAL;
    }
    ret = entry_name(&e, name, (uint32_t)id);
    if (ret) {
        return ret;
    }
    e.fd = fd;
    classify_entry(s, &e);
    return table_insert(&s->fds, &e);
}

static int64_t find_fd_entry(const CprsState *s, const char *name, int32_t id)
{
    return table_find(&s->fds, name, strnlen(name, CPRS_MAX_NAME_LEN + 1),
                      (uint32_t)id);
}

int cprs_state_find_fd(const CprsState *s, const char *name, int32_t id)
{
    int64_t i;

    if (!s || !name) {
        return -EINVAL;
    }
    i = find_fd_entry(s, name, id);
    return i < 0 ? -ENOENT : s->fds.e[i].fd;
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
    int64_t i;

    if (!s || !name) {
        return -EINVAL;
    }
    i = find_fd_entry(s, name, id);
    if (i < 0) {
        return -ENOENT;
    }
    table_del(&s->fds, (uint32_t)i);
    return 0;
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
        const Entry *e = &s->fds.e[i];

        if (e->live) {
            ret = fn(opaque, e->name, (int32_t)e->id, e->fd);
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

int cprs_state_save_vfio(CprsState *s, const CprsVfioDeviceInfo *dev)
{
    Entry e = { 0 };
    int ret;

    if (!s || !dev) {
        return -EINVAL;
    }
    ret = entry_name(&e, dev->name, 0);
    if (ret) {
        return ret;
    }
    e.devid = dev->devid;
    e.ioas_id = dev->ioas_id;
    e.hwpt_id = dev->hwpt_id;
    return table_insert(&s->vfio, &e);
}

int cprs_state_find_vfio(const CprsState *s, const char *name,
                         CprsVfioDeviceInfo *info)
{
    CprsVfioDeviceInfo vi = { .sz = sizeof(vi) };
    const Entry *e;
    int64_t i;

    if (!s || !name || !info) {
        return -EINVAL;
    }
    i = table_find(&s->vfio, name, strnlen(name, CPRS_MAX_NAME_LEN + 1), 0);
    if (i < 0) {
        return -ENOENT;
    }
    e = &s->vfio.e[i];
    vi.name = e->name;
    vi.name_len = e->name_len;
    vi.devid = e->devid;
    vi.ioas_id = e->ioas_id;
    vi.hwpt_id = e->hwpt_id;
    return cprs_info_fill(info, &vi, sizeof(vi));
}

int cprs_state_delete_vfio(CprsState *s, const char *name)
{
    int64_t i;

    if (!s || !name) {
        return -EINVAL;
    }
    i = table_find(&s->vfio, name, strnlen(name, CPRS_MAX_NAME_LEN + 1), 0);
    if (i < 0) {
        return -ENOENT;
    }
    table_del(&s->vfio, (uint32_t)i);
    return 0;
}

int cprs_state_save_ramblock(CprsState *s, const CprsRamBlockInfo *block,
                             const char *fd_name, int32_t fd_id,
                             const CprsGpaRange *ranges, uint32_t n_ranges)
{
    CprsRamBlockInfo in;
    Entry e = { 0 };
    uint64_t end;
    uint32_t k;
    int ret;

    if (!s || !block || (n_ranges && !ranges) ||
        cprs_opts_copy(&in, sizeof(in), block)) {
        return -EINVAL;
    }
    /* The same rules as the writer's, checked now rather than at save. */
    if ((in.flags & ~CPRS_RAM_F_KNOWN) ||
        !cprs_add_ok(in.fd_offset, in.max_length, &end) ||
        in.used_length > in.max_length || !cprs_is_pow2(in.page_size) ||
        (in.align && !cprs_is_pow2(in.align)) ||
        n_ranges > CPRS_MAX_RECORDS ||
        (fd_name && find_fd_entry(s, fd_name, fd_id) < 0)) {
        return -EINVAL;
    }
    for (k = 0; k < n_ranges; k++) {
        if (!ranges[k].size ||
            !cprs_add_ok(ranges[k].gpa, ranges[k].size - 1, &end) ||
            !cprs_range_ok(in.max_length, ranges[k].block_offset,
                           ranges[k].size)) {
            return -EINVAL;
        }
    }
    ret = entry_name(&e, in.idstr, 0);
    if (ret) {
        return ret;
    }
    e.rb = in;
    e.rb.idstr = NULL;
    e.fd_id = fd_id;
    if (fd_name) {
        e.fd_name = strdup(fd_name);
    }
    if (n_ranges) {
        e.ranges = malloc((size_t)n_ranges * sizeof(*ranges));
        if (e.ranges) {
            memcpy(e.ranges, ranges, (size_t)n_ranges * sizeof(*ranges));
        }
    }
    e.n_ranges = n_ranges;
    if ((fd_name && !e.fd_name) || (n_ranges && !e.ranges)) {
        entry_free(&e);
        return -ENOMEM;
    }
    return table_insert(&s->ram, &e);
}

static const Entry *find_ram(const CprsState *s, const char *idstr)
{
    int64_t i = table_find(&s->ram, idstr,
                           strnlen(idstr, CPRS_MAX_NAME_LEN + 1), 0);

    return i < 0 ? NULL : &s->ram.e[i];
}

int cprs_state_find_ramblock(const CprsState *s, const char *idstr,
                             CprsRamBlockInfo *info, int *ret_fd)
{
    CprsRamBlockInfo bi;
    const Entry *e;

    if (!s || !idstr || !info || !ret_fd) {
        return -EINVAL;
    }
    e = find_ram(s, idstr);
    if (!e) {
        return -ENOENT;
    }
    bi = e->rb;
    bi.sz = sizeof(bi);
    bi.idstr = e->name;
    bi.idstr_len = e->name_len;
    bi.fd_index = CPRS_NO_INDEX;
    bi.range_count = e->n_ranges;
    *ret_fd = e->fd_name ? cprs_state_find_fd(s, e->fd_name, e->fd_id) : -1;
    if (*ret_fd == -ENOENT) {
        *ret_fd = -1;
    }
    return cprs_info_fill(info, &bi, sizeof(bi));
}

int cprs_state_gpa_range(const CprsState *s, const char *idstr, uint32_t k,
                         CprsGpaRange *range)
{
    const Entry *e;

    if (!s || !idstr || !range) {
        return -EINVAL;
    }
    e = find_ram(s, idstr);
    if (!e) {
        return -ENOENT;
    }
    if (k >= e->n_ranges) {
        return -EINVAL;
    }
    *range = e->ranges[k];
    return 0;
}

void cprs_state_clear_ramblocks(CprsState *s)
{
    if (s) {
        table_free(&s->ram);
    }
}

int cprs_state_save_devstate(CprsState *s, const CprsDevStateInfo *ds,
                             const void *data, size_t size)
{
    CprsDevStateInfo in;
    Entry e = { 0 };
    int ret;

    if (!s || !ds || (!data && size) || cprs_opts_copy(&in, sizeof(in), ds) ||
        (in.flags & ~CPRS_DEVSTATE_F_KNOWN)) {
        return -EINVAL;
    }
    if (size > CPRS_MAX_PAYLOAD_SIZE) {
        return -E2BIG;
    }
    ret = entry_name(&e, in.name, in.instance_id);
    if (ret) {
        return ret;
    }
    e.version_id = in.version_id;
    e.ds_flags = in.flags;
    e.size = size;
    e.data = malloc(size ? size : 1);
    if (!e.data) {
        entry_free(&e);
        return -ENOMEM;
    }
    if (size) {
        memcpy(e.data, data, size);
    }
    return table_insert(&s->dev, &e);
}

int cprs_state_find_devstate(CprsState *s, const char *name,
                             uint32_t instance_id, const void **ret_data,
                             size_t *ret_size, uint32_t *ret_version)
{
    const Entry *e;
    int64_t i;
    int ret;

    if (!s || !name || !ret_data || !ret_size) {
        return -EINVAL;
    }
    i = table_find(&s->dev, name, strnlen(name, CPRS_MAX_NAME_LEN + 1),
                   instance_id);
    if (i < 0) {
        return -ENOENT;
    }
    e = &s->dev.e[i];
    if (e->reader_index >= 0) {
        /* Zero-copy from the loaded arena (decompressed once if zstd). */
        ret = cprs_reader_devstate_data(s->reader, (uint32_t)e->reader_index,
                                        ret_data, ret_size);
        if (ret) {
            return ret;
        }
    } else {
        *ret_data = e->data;
        *ret_size = (size_t)e->size;
    }
    if (ret_version) {
        *ret_version = e->version_id;
    }
    return 0;
}

int cprs_state_delete_devstate(CprsState *s, const char *name,
                               uint32_t instance_id)
{
    int64_t i;

    if (!s || !name) {
        return -EINVAL;
    }
    i = table_find(&s->dev, name, strnlen(name, CPRS_MAX_NAME_LEN + 1),
                   instance_id);
    if (i < 0) {
        return -ENOENT;
    }
    table_del(&s->dev, (uint32_t)i);
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return x < y ? -1 : x > y;
}

/*
 * Set or clear close-on-exec on every recorded fd.  FD_CLOEXEC is the only
 * fd flag, so F_SETFD needs no F_GETFD first.  Setting it on a run of
 * consecutive fds takes one close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11);
 * clearing has no such call.
 */
static int set_cloexec_all(const CprsState *s, bool on)
{
    uint32_t i, k, n = 0, run;
    int *fds, ret = 0;

    if (!s) {
        return -EINVAL;
    }
    fds = malloc((s->fds.live ? s->fds.live : 1) * sizeof(*fds));
    if (!fds) {
        return -ENOMEM;
    }
    for (i = 0; i < s->fds.n; i++) {
        if (s->fds.e[i].live) {
            fds[n++] = s->fds.e[i].fd;
        }
    }
    if (on && n > 1) {
        qsort(fds, n, sizeof(*fds), cmp_int);
    }
    for (i = 0; i < n && !ret; i += run) {
        run = 1;
        while (on && i + run < n && fds[i + run] == fds[i] + (int)run) {
            run++;
        }
        if (run > 1 && !close_range((unsigned)fds[i],
                                    (unsigned)fds[i + run - 1],
                                    CLOSE_RANGE_CLOEXEC)) {
            continue;
        }
        /* One by one: no run, or an older kernel without the flag. */
        for (k = i; k < i + run && !ret; k++) {
            if (fcntl(fds[k], F_SETFD, on ? FD_CLOEXEC : 0) < 0) {
                ret = -errno;
            }
        }
    }
    free(fds);
    return ret;
}

int cprs_state_preserve_fds(const CprsState *s)
{
    return set_cloexec_all(s, false);
}

int cprs_state_unpreserve_fds(const CprsState *s)
{
    return set_cloexec_all(s, true);
}

/* spec 11.4: is the fd of @e the open file that was saved? */
static const char *fd_mismatch(const Entry *e)
{
    struct stat st;

    /* One fstat() tells both whether the fd is open and what it is. */
    if (fstat(e->fd, &st) < 0) {
        return errno == EBADF ? "recorded fd is not open" :
               "recorded fd cannot be examined";
    }
    if (!(e->ident.flags & CPRS_FD_F_IDENTITY)) {
        return NULL;
    }
    if ((uint64_t)st.st_dev != e->ident.dev ||
        (uint64_t)st.st_ino != e->ident.ino) {
        return "recorded fd is another file (device or inode differs)";
    }
    return NULL;
}

int cprs_state_check_fds(const CprsState *s, CprsDiag *diag,
                         uint32_t *ret_mismatches)
{
    uint32_t i, bad = 0, stream = 0;
    const char *why;

    if (!s) {
        return -EINVAL;
    }
    /* Walk newest first, so record numbers match the saved order. */
    for (i = s->fds.n; i-- > 0;) {
        const Entry *e = &s->fds.e[i];

        if (!e->live) {
            continue;
        }
        why = fd_mismatch(e);
        if (why && !bad++) {
            cprs_diag_set(diag, -ESTALE, 0, -1, stream, "11.4", why);
        }
        stream++;
    }
    if (ret_mismatches) {
        *ret_mismatches = bad;
    }
    return bad ? -ESTALE : 0;
}

void cprs_state_close_fds(CprsState *s)
{
    uint32_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->fds.n; i++) {
        if (s->fds.e[i].live) {
            close(s->fds.e[i].fd);
        }
    }
    table_free(&s->fds);
}

/* ---- Save -------------------------------------------------------------- */

/* Build the arena of @s for @mode; fd records newest first. */
static int build_arena(CprsState *s, uint32_t mode, const CprsSaveOpts *o,
                       CprsDiag *diag, CprsWriter **ret_writer)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts, .mode = mode,
                                  .generation = s->generation + 1,
                                  .producer = o->producer,
                                  .zstd_level = o->zstd_level,
                                  .compress_sections = o->compress_sections);
    CprsWriter *w;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsRamBlockInfo bi;
    CprsDevStateInfo di;
    uint32_t i;
    int64_t f;
    int ret;

    ret = cprs_writer_new(&wo, &w);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "bad save options");
    }
    for (i = s->fds.n; i-- > 0;) {
        Entry *e = &s->fds.e[i];

        if (!e->live) {
            continue;
        }
        fi = CPRS_OPTS(CprsFdInfo, .name = e->name, .id = (int32_t)e->id,
                       .fd = e->fd);
        if (!(o->flags & CPRS_SAVE_F_NO_IDENTITY)) {
            /* Size and seals may have changed since: fstat() again, and
             * classify only what is not classified yet. */
            ret = cprs_fd_refresh(e->fd, &fi, e->kind_known ?
                                  e->ident.kind : CPRS_FD_KIND__MAX,
                                  e->ident.dev, e->ident.ino, s->memfd_dev);
            if (ret) {
                cprs_writer_free(w);
                return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                                     "a recorded fd cannot be examined "
                                     "(closed?)");
            }
        }
        ret = cprs_writer_add_fd(w, &fi, &e->arena_index);
        if (ret) {
            goto fail;
        }
    }
    for (i = s->ram.n; i-- > 0;) {
        const Entry *e = &s->ram.e[i];

        if (!e->live) {
            continue;
        }
        bi = e->rb;
        bi.idstr = e->name;
        bi.fd_index = CPRS_NO_INDEX;
        if (e->fd_name) {
            f = find_fd_entry(s, e->fd_name, e->fd_id);
            if (f < 0) {
                cprs_writer_free(w);
                return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "11.3",
                                     "a RAM block's fd record was deleted");
            }
            bi.fd_index = s->fds.e[f].arena_index;
        }
        ret = cprs_writer_add_ramblock(w, &bi, e->ranges, e->n_ranges, NULL);
        if (ret) {
            goto fail;
        }
    }
    for (i = s->vfio.n; i-- > 0;) {
        const Entry *e = &s->vfio.e[i];

        if (!e->live) {
            continue;
        }
        vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = e->name,
                       .devid = e->devid, .ioas_id = e->ioas_id,
                       .hwpt_id = e->hwpt_id);
        ret = cprs_writer_add_vfio(w, &vi, NULL);
        if (ret) {
            goto fail;
        }
    }
    for (i = s->dev.n; i-- > 0;) {
        const Entry *e = &s->dev.e[i];
        const void *data;
        size_t size;

        if (!e->live) {
            continue;
        }
        ret = cprs_state_find_devstate(s, e->name, e->id, &data, &size,
                                       NULL);
        if (ret) {
            goto fail;
        }
        di = CPRS_OPTS(CprsDevStateInfo, .name = e->name,
                       .instance_id = e->id, .version_id = e->version_id,
                       .flags = e->ds_flags);
        ret = cprs_writer_add_devstate(w, &di, data, size, NULL);
        if (ret) {
            goto fail;
        }
    }
    *ret_writer = w;
    return 0;

fail:
    cprs_writer_free(w);
    return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                         "a record cannot be written to the arena");
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
        const Entry *e = &s->fds.e[i];

        if (e->live) {
            fi = CPRS_OPTS(CprsFdInfo, .name = e->name,
                           .id = (int32_t)e->id, .fd = e->fd);
            ret = cprs_legacy_add_fd(l, &fi, NULL);
        }
    }
    for (i = s->vfio.n; i-- > 0 && !ret;) {
        const Entry *e = &s->vfio.e[i];

        if (e->live) {
            vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = e->name,
                           .devid = e->devid, .ioas_id = e->ioas_id,
                           .hwpt_id = e->hwpt_id);
            ret = cprs_legacy_add_vfio(l, &vi, NULL);
        }
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

/* A sealed memfd named QEMU_CPR_EXEC_STATE holding @buf. */
static int memfd_with(const void *buf, size_t size, int *ret_fd)
{
    const uint8_t *p = buf;
    size_t done = 0;
    ssize_t n;
    int fd, ret;

    fd = memfd_create(CPRS_EXEC_STATE_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -errno;
    }
    while (done < size) {
        n = pwrite(fd, p + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            close(fd);
            return ret;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
              F_SEAL_SEAL) < 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    *ret_fd = fd;
    return 0;
}

static int save_opts(const CprsSaveOpts *opts, CprsSaveOpts *o)
{
    if (cprs_opts_copy(o, sizeof(*o), opts) ||
        (o->flags & ~(CPRS_SAVE_F_LEGACY | CPRS_SAVE_F_NO_IDENTITY))) {
        return -EINVAL;
    }
    return 0;
}

int cprs_state_save_exec(CprsState *s, const CprsSaveOpts *opts,
                         CprsDiag *diag, int *ret_fd)
{
    CprsSaveOpts o;
    CprsWriter *w;
    CprsLegacy *l;
    void *buf;
    size_t size;
    int memfd, fd, ret;

    if (!s || !ret_fd || save_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (o.flags & CPRS_SAVE_F_LEGACY) {
        ret = build_legacy(s, CPRS_MODE_EXEC, &o, diag, &l);
        if (ret) {
            return ret;
        }
        ret = cprs_legacy_encode(l, NULL, &buf, &size);
        cprs_legacy_free(l);
        if (!ret) {
            ret = memfd_with(buf, size, &memfd);
            free(buf);
        }
    } else {
        ret = build_arena(s, CPRS_MODE_EXEC, &o, diag, &w);
        if (ret) {
            return ret;
        }
        ret = cprs_writer_finish_memfd(w, CPRS_EXEC_STATE_NAME,
                                       CPRS_MEMFD_F_SEAL, &memfd);
        cprs_writer_free(w);
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                             "cannot write the state memfd");
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
    uint32_t i, n = 0;
    int ret;

    if (!s || sock < 0 || save_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (o.flags & CPRS_SAVE_F_LEGACY) {
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
        if (s->fds.e[i].live) {
            fds[n++] = s->fds.e[i].fd;
        }
    }
    ret = cprs_transfer_send(sock, buf, size, fds, n,
                             CPRS_TRANSFER_F_SHUTDOWN);
    free(fds);
    free(buf);
    return ret ? cprs_diag_set(diag, ret, 0, -1, -1, "11.2",
                               "cannot send the arena") : 0;
}

/* ---- Load -------------------------------------------------------------- */

/*
 * Fill @s from a verified arena.  @fds (transfer) gives the fd of each
 * slot; NULL means the recorded numbers (exec).  Records are appended
 * oldest first so that a later save writes them in the same order.
 */
static int state_from_reader(CprsState *s, CprsReader *r, const int *fds,
                             CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsFdInfo fi, bf;
    CprsVfioDeviceInfo vi;
    CprsRamBlockInfo bi;
    CprsGpaRange *ranges = NULL;
    CprsDevStateInfo di;
    uint32_t i, k;
    Entry e;
    int ret = 0;

    cprs_reader_get_info(r, &ai);
    s->generation = ai.generation;
    for (i = cprs_reader_fd_count(r); i-- > 0 && !ret;) {
        fi = CPRS_OPTS(CprsFdInfo);
        memset(&e, 0, sizeof(e));
        ret = cprs_reader_fd_get(r, i, &fi);
        if (!ret) {
            ret = entry_name(&e, fi.name, (uint32_t)fi.id);
        }
        if (!ret) {
            e.fd = fds ? fds[fi.slot] : fi.fd;
            e.ident = fi;
            e.ident.name = NULL;
            /* The kind travels with the record; 11.4 checks the file. */
            e.kind_known = !!(fi.flags & CPRS_FD_F_IDENTITY);
            if (e.fd < 0) {
                entry_free(&e);
                return cprs_diag_set(diag, -EBADMSG, 0, -1, i, "11.1",
                                     "a cpr-exec fd record has no fd "
                                     "number");
            }
            ret = table_insert(&s->fds, &e);
        }
    }
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
    for (i = cprs_reader_vfio_count(r); i-- > 0 && !ret;) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &vi);
        if (!ret) {
            ret = cprs_state_save_vfio(s, &vi);
        }
    }
    for (i = cprs_reader_devstate_count(r); i-- > 0 && !ret;) {
        di = CPRS_OPTS(CprsDevStateInfo);
        memset(&e, 0, sizeof(e));
        ret = cprs_reader_devstate_get(r, i, &di);
        if (!ret) {
            ret = entry_name(&e, di.name, di.instance_id);
        }
        if (!ret) {
            /* Left in the arena; read (and inflated) when looked up. */
            e.version_id = di.version_id;
            e.ds_flags = di.flags & CPRS_DEVSTATE_F_ZSTD;
            e.size = di.raw_size;
            e.reader_index = i;
            ret = table_insert(&s->dev, &e);
        }
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                             "cannot build the state from the arena");
    }
    return 0;
}

/* Fill @s from a decoded legacy stream (fds taken from @l if received). */
static int state_from_legacy(CprsState *s, CprsLegacy *l, bool take,
                             CprsDiag *diag)
{
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    uint32_t i;
    int fd, ret = 0;

    for (i = cprs_legacy_fd_count(l); i-- > 0 && !ret;) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_legacy_fd_get(l, i, &fi);
        fd = fi.fd;
        if (!ret) {
            ret = cprs_state_save_fd(s, fi.name, fi.id, fd);
        }
        if (!ret && take) {
            /* The state's caller owns it from now on. */
            ret = cprs_legacy_fd_take(l, i, &fd);
        }
    }
    for (i = cprs_legacy_vfio_count(l); i-- > 0 && !ret;) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_legacy_vfio_get(l, i, &vi);
        if (!ret) {
            ret = cprs_state_save_vfio(s, &vi);
        }
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "11.3",
                             ret == -EEXIST ? "duplicate (name, id) in the "
                             "legacy stream" :
                             "cannot build the state from the legacy stream");
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

static int check_mode(CprsReader *r, uint32_t mode, CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);

    cprs_reader_get_info(r, &ai);
    if (ai.mode != mode) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, mode), -1, -1, "11.3",
                             "the arena was written for the other CPR "
                             "mode");
    }
    return 0;
}

int cprs_state_load_exec(const CprsLoadOpts *opts, CprsDiag *diag,
                         CprsState **ret_state)
{
    CprsLoadOpts o;
    CprsReaderOpts ro;
    CprsLegacyOpts lo;
    CprsLegacy *l = NULL;
    CprsState *s = NULL;
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
    if (format == CPRS_DETECT_ARENA) {
        ro = CPRS_OPTS(CprsReaderOpts, .max_records = o.max_records,
                       .max_arena_size = o.max_arena_size);
        ret = cprs_reader_open_fd(fd, &ro, diag, &s->reader);
        if (!ret) {
            ret = cprs_reader_verify(s->reader, diag);
        }
        if (!ret) {
            ret = check_mode(s->reader, CPRS_MODE_EXEC, diag);
        }
        if (!ret) {
            ret = state_from_reader(s, s->reader, NULL, diag);
        }
    } else {
        /* Every form a QEMU writes: with or without iommufd (stub), and
         * QEMU 10.0's stream with no subsection at all. */
        lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC,
                       .max_records = o.max_records,
                       .flags = (o.flags & CPRS_LOAD_F_LEGACY_LENIENT ?
                                 CPRS_LEGACY_F_LENIENT : 0) |
                                CPRS_LEGACY_F_ALL_FORMS);
        ret = cprs_legacy_decode_fd(fd, &lo, diag, &l);
        if (!ret) {
            ret = state_from_legacy(s, l, false, diag);
        }
        cprs_legacy_free(l);
    }
    if (!ret && !(o.flags & CPRS_LOAD_F_NO_FD_CHECK)) {
        ret = cprs_state_check_fds(s, diag, NULL);
    }
    if (ret) {
        /* Untouched: the variable and every fd stay as they were. */
        cprs_state_free(s);
        return ret;
    }
    /*
     * Accepted: now, and only now, change the process.  The state memfd
     * itself was persisted without close-on-exec; it gets the flag back,
     * so that a later exec() does not inherit a stale state.
     */
    cprs_state_unpreserve_fds(s);
    unsetenv(CPRS_EXEC_STATE_NAME);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    s->src_fd = fd;
    *ret_state = s;
    return 0;
}

/*
 * Peek at up to @want bytes, waiting until they are all queued or the
 * peer stops sending.  MSG_WAITALL does not make a MSG_PEEK wait: on a
 * unix stream socket it returns whatever is queued, so a sender whose
 * first bytes come in pieces (a relay forwarding byte by byte) would look
 * too short.  With SO_PEEK_OFF each peek starts where the previous one
 * ended and blocks for new bytes; where the socket lacks it, peek again
 * after a short sleep until the bytes are there or the peer has shut its
 * side down.
 */
static ssize_t peek_head(int sock, uint8_t *head, size_t want)
{
    static const struct timespec pause = { 0, 1000000 };
    struct pollfd pfd = { .fd = sock, .events = POLLRDHUP };
    int off = 0, err = 0;
    bool stepped;
    size_t n = 0;
    ssize_t r;

    stepped = !setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
    while (n < want) {
        if (stepped) {
            r = recv(sock, head + n, want - n, MSG_PEEK);
        } else {
            r = recv(sock, head, want, MSG_PEEK | MSG_WAITALL);
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            err = r < 0 ? errno : 0;
            break;
        }
        if (stepped) {
            n += (size_t)r;
            continue;
        }
        if ((size_t)r == n && poll(&pfd, 1, 0) == 1 &&
            (pfd.revents & (POLLRDHUP | POLLHUP))) {
            break;              /* nothing more will come */
        }
        if ((size_t)r == n) {
            nanosleep(&pause, NULL);
        }
        n = (size_t)r;
    }
    if (stepped) {
        off = -1;
        setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
    }
    return err && !n ? -err : (ssize_t)n;
}

/* Wait for the first 8 bytes without consuming them. */
static int peek_format(int sock, CprsDiag *diag, int *ret_format)
{
    uint8_t head[8];
    ssize_t n;

    n = peek_head(sock, head, sizeof(head));
    if (n < 0) {
        return cprs_diag_set(diag, (int)n, 0, -1, -1, "11.2",
                             "cannot read the cpr channel");
    }
    *ret_format = cprs_detect(head, (size_t)n);
    if (*ret_format != CPRS_DETECT_ARENA &&
        *ret_format != CPRS_DETECT_LEGACY) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.2",
                             "the cpr channel carries neither an arena nor "
                             "a legacy stream");
    }
    return 0;
}

static void close_all(int *fds, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}

int cprs_state_load_transfer(int sock, const CprsLoadOpts *opts,
                             CprsDiag *diag, CprsState **ret_state)
{
    CprsLoadOpts o;
    CprsReaderOpts ro;
    CprsLegacyOpts lo;
    CprsLegacy *l = NULL;
    CprsState *s = NULL;
    void *buf = NULL;
    size_t size;
    int *fds = NULL;
    uint32_t nfds = 0;
    int format = CPRS_DETECT_UNKNOWN, ret;

    if (sock < 0 || !ret_state || load_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    ret = peek_format(sock, diag, &format);
    if (!ret) {
        ret = cprs_state_new(&s);
    }
    if (ret) {
        return ret;
    }
    s->format = format;
    if (format == CPRS_DETECT_LEGACY) {
        lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER,
                       .max_records = o.max_records,
                       .flags = (o.flags & CPRS_LOAD_F_LEGACY_LENIENT ?
                                 CPRS_LEGACY_F_LENIENT : 0) |
                                CPRS_LEGACY_F_ALL_FORMS);
        ret = cprs_legacy_recv(sock, &lo, diag, &l);
        if (!ret) {
            ret = state_from_legacy(s, l, true, diag);
        }
        if (ret) {
            /* Give back what was taken, so that every fd gets closed. */
            cprs_state_close_fds(s);
        }
        cprs_legacy_free(l);
        if (ret) {
            cprs_state_free(s);
            return ret;
        }
        *ret_state = s;
        return 0;
    }

    ro = CPRS_OPTS(CprsReaderOpts, .max_records = o.max_records,
                   .max_arena_size = o.max_arena_size);
    ret = cprs_transfer_recv(sock, &ro, diag, &buf, &size, &fds, &nfds);
    if (ret) {
        cprs_state_free(s);
        return ret;
    }
    s->src_buf = buf;
    ret = cprs_reader_open_buffer(buf, size, &ro, diag, &s->reader);
    if (!ret) {
        ret = cprs_reader_verify(s->reader, diag);
    }
    if (!ret) {
        ret = check_mode(s->reader, CPRS_MODE_TRANSFER, diag);
    }
    if (!ret && nfds != cprs_reader_fd_count(s->reader)) {
        ret = cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "11.2",
                            "the number of fds received differs from the "
                            "number of fd records");
    }
    if (!ret) {
        ret = state_from_reader(s, s->reader, fds, diag);
    }
    if (!ret && !(o.flags & CPRS_LOAD_F_NO_FD_CHECK)) {
        ret = cprs_state_check_fds(s, diag, NULL);
    }
    if (ret) {
        close_all(fds, nfds);
        free(fds);
        cprs_state_free(s);
        return ret;
    }
    free(fds);
    *ret_state = s;
    return 0;
}
