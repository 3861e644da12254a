/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * legacy.c - decoding QEMU's legacy "QCPR" stream (spec/qemu-legacy-
 * stream.rst, clauses L1..L11), and the handle that holds one.
 *
 * This file is on the reader side: it links without writer.c.  The
 * encoder, the builder and the arena conversion live in the writer layer
 * (legacy-encode.c, legacy-convert.c); the cpr channel in the handover
 * layer (legacy-channel.c).
 *
 * The stream has no length fields, counts or checksum: it is a sequence
 * of presence markers and length-prefixed names that QEMU's reader walks
 * trusting every byte.  The decoder walks it through a bounds-checked
 * cursor, refuses what would crash or mislead QEMU, and, by default, what
 * QEMU would not write.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-reader.h"

/* ---- The handle -------------------------------------------------------- */

int cprs_legacy_alloc(CprsLegacy **ret_legacy)
{
    CprsLegacy *lg = calloc(1, sizeof(*lg));

    if (!lg) {
        return -ENOMEM;
    }
    lg->max_records = CPRS_MAX_RECORDS;
    /* spec L4.9: fds are keyed by (name, id), vfio devices by name. */
    lg->fds.key_has_id = true;
    cprs_table_init(&lg->fds.index);
    cprs_table_init(&lg->vfio.index);
    *ret_legacy = lg;
    return 0;
}

static void list_free(CprsLegacyList *list, bool close_owned)
{
    uint32_t i;

    for (i = 0; close_owned && i < list->count; i++) {
        if (list->rec[i].owned && list->rec[i].fd >= 0) {
            close(list->rec[i].fd);
        }
    }
    free(list->rec);
    cprs_table_free(&list->index);
}

void cprs_legacy_free(CprsLegacy *lg)
{
    if (!lg) {
        return;
    }
    list_free(&lg->fds, true);
    list_free(&lg->vfio, false);
    free(lg->names);
    free(lg->warnings);
    free(lg);
}

int cprs_legacy_opts_get(CprsLegacyOpts *dst, const CprsLegacyOpts *src)
{
    int ret = cprs_opts_copy(dst, sizeof(*dst), src);

    if (ret) {
        return ret;
    }
    if ((dst->flags & ~(CPRS_LEGACY_F_LENIENT | CPRS_LEGACY_F_ALL_FORMS |
                        CPRS_LEGACY_F_CHECK_FDS)) ||
        (dst->mode && dst->mode != CPRS_MODE_EXEC &&
         dst->mode != CPRS_MODE_TRANSFER) ||
        dst->vfio_form >= CPRS_LEGACY_VFIO__MAX) {
        return -EINVAL;
    }
    /* STYLE 4: opts may lower the limits, never raise them. */
    if (!dst->max_records || dst->max_records > CPRS_MAX_RECORDS) {
        dst->max_records = CPRS_MAX_RECORDS;
    }
    if (!dst->max_size || dst->max_size > CPRS_LEGACY_MAX_SIZE) {
        dst->max_size = CPRS_LEGACY_MAX_SIZE;
    }
    return 0;
}

/* ---- Records and their key index --------------------------------------- */

/* The list a lookup compares with, and the handle holding its names. */
typedef struct ListCtx {
    const CprsLegacy *lg;
    const CprsLegacyList *list;
} ListCtx;

static bool rec_key_eq(const void *ctx, uint32_t val, const CprsTableKey *k)
{
    const ListCtx *c = ctx;
    const CprsLegacyRec *rec = &c->list->rec[val];

    /* spec L4.9: a vfio list is keyed by name alone (id 0 in the key). */
    return cprs_key_is(k, cprs_legacy_rec_name(c->lg, rec), rec->name_len,
                       c->list->key_has_id ? (uint32_t)rec->id : 0);
}

/* The table key of (@name, @len, @id) in @list, and its hash. */
static uint32_t list_key(const CprsLegacyList *list, const char *name,
                         uint32_t len, int32_t id, CprsTableKey *ret_key)
{
    *ret_key = (CprsTableKey) {
        name, len, list->key_has_id ? (uint32_t)id : 0,
    };
    return cprs_table_hash(&list->index, name, len, ret_key->id);
}

int64_t cprs_legacy_lookup(const CprsLegacy *lg, const CprsLegacyList *list,
                           const char *name, uint32_t len, int32_t id)
{
    ListCtx ctx = { lg, list };
    CprsTableKey k;
    uint32_t hash;

    if (!list->index.count) {
        return -1;
    }
    hash = list_key(list, name, len, id, &k);
    return cprs_table_find(&list->index, hash, rec_key_eq, &ctx, &k);
}

int cprs_legacy_rec_add(CprsLegacy *lg, CprsLegacyList *list,
                        const char *name, uint32_t len,
                        const CprsLegacyRec *fields, uint32_t *ret_index,
                        int64_t *ret_first)
{
    ListCtx ctx = { lg, list };
    CprsLegacyRec *rec;
    CprsTableKey k;
    uint32_t hash;
    int64_t first;
    int ret;

    if (list->count >= lg->max_records ||
        (size_t)len + 1 > SIZE_MAX - lg->names_len) {
        return -E2BIG;
    }
    /* Reserve everything first, so that a failure changes nothing. */
    ret = cprs_grow(&list->rec, &list->cap, (size_t)list->count + 1,
                    sizeof(*list->rec), 16, UINT32_MAX);
    if (!ret) {
        ret = cprs_table_reserve(&list->index, 1);
    }
    if (!ret) {
        ret = cprs_grow(&lg->names, &lg->names_cap,
                        lg->names_len + len + 1, 1, 1024, SIZE_MAX);
    }
    if (ret) {
        return ret;
    }
    hash = list_key(list, name, len, fields->id, &k);
    first = cprs_table_find(&list->index, hash, rec_key_eq, &ctx, &k);

    rec = &list->rec[list->count];
    *rec = *fields;
    rec->name_off = lg->names_len;
    rec->name_len = len;
    memcpy(lg->names + lg->names_len, name, len);
    lg->names[lg->names_len + len] = '\0';
    lg->names_len += (size_t)len + 1;
    /* spec L4.9: only the first of equal keys is ever found. */
    if (first < 0) {
        cprs_table_put(&list->index, hash, list->count);
    }
    if (ret_index) {
        *ret_index = list->count;
    }
    if (ret_first) {
        *ret_first = first;
    }
    list->count++;
    return 0;
}

int cprs_legacy_warn(CprsLegacy *lg, uint64_t offset, int64_t record,
                     const char *clause, const char *reason)
{
    CprsDiag *d;
    int ret;

    if (lg->n_warnings >= CPRS_LEGACY_MAX_WARNINGS) {
        return 0;
    }
    ret = cprs_grow(&lg->warnings, &lg->cap_warnings,
                    (size_t)lg->n_warnings + 1, sizeof(*lg->warnings), 16,
                    CPRS_LEGACY_MAX_WARNINGS);
    if (ret) {
        return ret;
    }
    d = &lg->warnings[lg->n_warnings++];
    if (lg->n_warnings == CPRS_LEGACY_MAX_WARNINGS) {
        /* The last kept entry says that the list is incomplete. */
        record = -1;
        clause = "";
        reason = "more warnings; the rest were not kept";
    }
    *d = (CprsDiag) {
        .sz = sizeof(*d),
        .offset = offset,
        .section = -1,
        .error = 0,
        .record = record,
        .clause = clause,
        .reason = reason,
    };
    return 0;
}

/* ---- Decoding ---------------------------------------------------------- */

typedef struct Parse {
    CprsCursor c;
    CprsLegacy *lg;
    const CprsLegacyOpts *o;
    CprsLegacyFdQueue *queue;
    CprsDiag *diag;
    bool lenient;
    bool partial;           /* the bytes may go on past c.len */
    bool stop_end;          /* lenient, partial: stop past the stream */
    uint32_t qhead;         /* next queue entry to claim */
} Parse;

/*
 * Returned when a prefix of the input ends where the decoder needs more:
 * the reader reads on and decodes again.  Never seen by a caller of the
 * library.
 */
#define NEED_MORE CPRS_LEGACY_NEED_MORE

/* At the end of the bytes: is that the end of the input? */
static bool more_to_come(const Parse *p)
{
    return p->partial && !cprs_cursor_left(&p->c);
}

static int fail(Parse *p, int error, uint64_t offset, int64_t record,
                const char *clause, const char *reason)
{
    return cprs_diag_set(p->diag, error, offset, -1, record, clause, reason);
}

/* spec L7: running out of bytes is reported where the data ends. */
static int truncated(Parse *p, int64_t record, const char *reason)
{
    if (p->partial) {
        return NEED_MORE;
    }
    return fail(p, -EBADMSG, p->c.len, record, "L7", reason);
}

/* In lenient mode a deviation is a warning; in strict mode, an error. */
static int deviate(Parse *p, uint64_t offset, int64_t record,
                   const char *clause, const char *reason)
{
    int ret;

    if (!p->lenient) {
        return fail(p, -EBADMSG, offset, record, clause, reason);
    }
    ret = cprs_legacy_warn(p->lg, offset, record, clause, reason);
    return ret ? fail(p, ret, offset, record, "", "out of memory") : 0;
}

static int header(Parse *p)
{
    uint32_t magic, version;
    size_t n = p->c.len < 4 ? p->c.len : 4;

    /* spec L3.1: the magic first, even when the input is short. */
    if (!p->c.len) {
        return p->partial ? NEED_MORE :
               fail(p, -EBADMSG, 0, -1, "L3.1", "empty input: no magic");
    }
    if (memcmp(p->c.base, "QCPR", n)) {
        return fail(p, -EBADMSG, 0, -1, "L3.1",
                    "bad magic: not a QCPR stream");
    }
    if (!cprs_cursor_read_be32(&p->c, &magic)) {
        return truncated(p, -1, "truncated inside the magic");
    }
    /* spec L3.2: QEMU compares the whole word with 1. */
    if (!cprs_cursor_read_be32(&p->c, &version)) {
        return truncated(p, -1, "truncated inside the version");
    }
    if (version == 0) {
        return fail(p, -EBADMSG, 4, -1, "L3.2", "stream version 0");
    }
    if (version != 1) {
        return fail(p, -EPROTONOSUPPORT, 4, -1, "L3.2",
                    "stream version newer than 1");
    }
    return 0;
}

/* namelen and name, common to both lists (spec L4.3, L4.4). */
static int name_field(Parse *p, int64_t rec, const char **ret_name,
                      uint32_t *ret_len)
{
    const uint8_t *name;
    const uint8_t *nul;
    uint64_t len_off = p->c.pos, name_off;
    uint32_t namelen;
    size_t bad;

    if (!cprs_cursor_read_be32(&p->c, &namelen)) {
        return truncated(p, rec, "truncated inside namelen");
    }
    if (namelen == 0) {
        return fail(p, -EBADMSG, len_off, rec, "L4.3",
                    "namelen 0: a name has at least its NUL");
    }
    if (namelen > CPRS_MAX_NAME_LEN + 1) {
        return fail(p, -E2BIG, len_off, rec, "L4.3",
                    "namelen over CPRS_MAX_NAME_LEN + 1");
    }
    name_off = p->c.pos;
    if (!cprs_cursor_take(&p->c, namelen, &name)) {
        return truncated(p, rec, "name runs past the end of the data");
    }
    nul = memchr(name, 0, namelen);
    if (!nul) {
        return fail(p, -EBADMSG, name_off + namelen - 1, rec, "L4.4",
                    "name not NUL-terminated");
    }
    if (nul != name + namelen - 1) {
        return fail(p, -EBADMSG, name_off + (uint64_t)(nul - name), rec,
                    "L4.4", "NUL inside the name");
    }
    bad = cprs_name_bad_char((const char *)name, namelen - 1);
    if (bad < namelen - 1) {
        int ret = deviate(p, name_off + bad, rec, "L4.4",
                          "name byte outside printable ASCII");
        if (ret) {
            return ret;
        }
    }
    /* spec L4.4: QEMU never writes an empty name; the arena has none. */
    if (namelen == 1) {
        int ret = deviate(p, name_off, rec, "L4.4", "empty name");

        if (ret) {
            return ret;
        }
    }
    *ret_name = (const char *)name;
    *ret_len = namelen - 1;
    return 0;
}

/* The fd field (spec L4.6 cpr-exec, L4.7 cpr-transfer, L4.8 detection). */
static int fd_field(Parse *p, int64_t rec, int32_t *ret_fd, bool *ret_owned)
{
    CprsLegacyFdQueue *q = p->queue;
    uint64_t off = p->c.pos;
    uint32_t v;
    uint8_t b;

    if (!p->lg->mode) {
        if (!cprs_cursor_peek_u8(&p->c, 0, &b)) {
            return truncated(p, rec, "truncated before the first fd field");
        }
        p->lg->mode = b == CPRS_LEGACY_FD_BYTE ? CPRS_MODE_TRANSFER :
                      CPRS_MODE_EXEC;
    }
    *ret_owned = false;
    if (p->lg->mode == CPRS_MODE_EXEC) {
        if (!cprs_cursor_read_be32(&p->c, &v)) {
            return truncated(p, rec, "truncated inside the fd");
        }
        *ret_fd = (int32_t)v;
        if (*ret_fd < 0) {
            return fail(p, -EBADMSG, off, rec, "L4.6", "negative fd");
        }
        if ((p->o->flags & CPRS_LEGACY_F_CHECK_FDS) &&
            fcntl(*ret_fd, F_GETFD) < 0) {
            return fail(p, -EBADMSG, off, rec, "L4.6",
                        "fd not open in this process");
        }
        return 0;
    }
    if (!cprs_cursor_read_u8(&p->c, &b)) {
        return truncated(p, rec, "truncated before the service byte");
    }
    if (b != CPRS_LEGACY_FD_BYTE) {
        return fail(p, -EBADMSG, off, rec, "L4.7",
                    "service byte is not 0x20");
    }
    *ret_fd = -1;
    if (q) {
        /* spec L8.3: the oldest fd that had arrived with this byte.  It
         * stays the queue's until the parse succeeds (parse()). */
        if (p->qhead >= q->count || q->at[p->qhead] > off) {
            return fail(p, -EBADMSG, off, rec, "L8.3",
                        "no fd arrived with this service byte");
        }
        *ret_fd = q->fd[p->qhead++];
    }
    return 0;
}

/*
 * A list: ( marker record )* 0x00 (spec L4.1).  @vfio selects the record
 * layout of the vfio subsection (L5.5) instead of the fd list's.
 */
static int list(Parse *p, bool vfio)
{
    CprsLegacyList *l = vfio ? &p->lg->vfio : &p->lg->fds;
    CprsLegacyRec rec;
    const char *name = NULL;
    uint32_t len = 0, v, idx;
    uint64_t off;
    int64_t dup;
    uint8_t marker;
    int ret;

    for (;;) {
        off = p->c.pos;
        idx = l->count;
        if (!cprs_cursor_read_u8(&p->c, &marker)) {
            return truncated(p, -1, vfio ? "vfio device list not terminated"
                                         : "fd list not terminated");
        }
        if (marker == 0) {
            return 0;
        }
        /* spec L4.1: QEMU writes 0x01 and reads any non-zero byte so. */
        if (marker != 1) {
            ret = deviate(p, off, idx, "L4.1",
                          "list marker neither 0x00 nor 0x01");
            if (ret) {
                return ret;
            }
        }
        /* spec L4.2: nothing else bounds the number of elements. */
        if (l->count >= p->lg->max_records) {
            return fail(p, -E2BIG, off, idx, "L4.2",
                        "more records than the limit");
        }
        memset(&rec, 0, sizeof(rec));
        rec.offset = off;
        ret = name_field(p, idx, &name, &len);
        if (ret) {
            return ret;
        }
        if (!cprs_cursor_read_be32(&p->c, &v)) {
            return truncated(p, idx, vfio ? "truncated inside devid"
                                          : "truncated inside id");
        }
        rec.id = (int32_t)v;
        if (vfio) {
            rec.fd = -1;
            if (!cprs_cursor_read_be32(&p->c, &rec.ioas_id) ||
                !cprs_cursor_read_be32(&p->c, &rec.hwpt_id)) {
                return truncated(p, idx, "truncated inside a vfio record");
            }
        } else {
            ret = fd_field(p, idx, &rec.fd, &rec.owned);
            if (ret) {
                return ret;
            }
        }
        /* spec L4.9: QEMU uses the first match; later ones are dead. */
        ret = cprs_legacy_rec_add(p->lg, l, name, len, &rec, NULL, &dup);
        if (ret) {
            if (rec.owned) {
                close(rec.fd);
            }
            return fail(p, ret, off, idx, "", "cannot store the record");
        }
        if (dup >= 0) {
            ret = cprs_legacy_warn(p->lg, off, idx, vfio ? "L5.5" : "L4.9",
                                   vfio ? "duplicate vfio device name" :
                                   "duplicate (name, id): QEMU uses the "
                                   "first");
            if (ret) {
                return fail(p, ret, off, idx, "", "out of memory");
            }
        }
    }
}

/*
 * One subsection header (spec L5.1-L5.3).  Returns 1 when QEMU would stop
 * reading subsections here without an error (lenient mode only: strict
 * mode refuses those bytes), 0 when the vfio subsection follows.
 */
static int sub_header(Parse *p)
{
    static const char vfio_name[] = CPRS_LEGACY_VFIO_NAME;
    const uint8_t *name;
    uint64_t off = p->c.pos, name_off;
    size_t n;
    uint8_t len;

    if (!cprs_cursor_skip(&p->c, 1) ||
        !cprs_cursor_read_u8(&p->c, &len)) {
        if (p->lenient && !p->partial) {
            return 1;
        }
        return truncated(p, -1, "truncated inside a subsection header");
    }
    /* spec L5.2: QEMU skips names that cannot be "CprState/x". */
    if (len < CPRS_LEGACY_STATE_NAME_LEN + 1) {
        if (p->lenient) {
            return 1;
        }
        return fail(p, -EBADMSG, off + 1, -1, "L5.2",
                    "subsection name too short for CprState/...");
    }
    name_off = p->c.pos;
    if (!cprs_cursor_take(&p->c, len, &name)) {
        if (p->lenient && !p->partial) {
            return 1;
        }
        return truncated(p, -1, "subsection name runs past the end");
    }
    if (memcmp(name, CPRS_LEGACY_STATE_NAME, CPRS_LEGACY_STATE_NAME_LEN)) {
        if (p->lenient) {
            return 1;
        }
        return fail(p, -EBADMSG, name_off, -1, "L5.2",
                    "subsection is not one of CprState's");
    }
    /* spec L5.3: QEMU compares the name as a C string. */
    n = strnlen((const char *)name, len);
    if (n != CPRS_LEGACY_VFIO_NAME_LEN ||
        memcmp(name, vfio_name, CPRS_LEGACY_VFIO_NAME_LEN)) {
        return fail(p, -EPROTONOSUPPORT, name_off, -1, "L5.3",
                    "unknown CprState subsection");
    }
    if (len != CPRS_LEGACY_VFIO_NAME_LEN) {
        return deviate(p, name_off + n, -1, "L5.3",
                       "bytes after a NUL in the subsection name");
    }
    return 0;
}

/* The subsection version (spec L5.4). */
static int sub_version(Parse *p)
{
    uint64_t off = p->c.pos;
    uint32_t v, eff;
    int ret;

    if (!cprs_cursor_read_be32(&p->c, &v)) {
        return truncated(p, -1, "truncated inside the subsection version");
    }
    /* QEMU stores the 32-bit field in a uint8_t: only the low byte counts. */
    eff = p->lenient ? (v & 0xff) : v;
    if (eff == 0) {
        return fail(p, -EBADMSG, off, -1, "L5.4", "subsection version 0");
    }
    if (eff != 1) {
        return fail(p, -EPROTONOSUPPORT, off, -1, "L5.4",
                    "subsection version newer than 1");
    }
    if (v != 1) {
        ret = deviate(p, off, -1, "L5.4",
                      "subsection version is 1 only in its low byte");
        if (ret) {
            return ret;
        }
    }
    return 0;
}

/* A form other than FULL: allowed, a warning, or an error (spec L5.6). */
static int other_form(Parse *p, uint32_t form, const char *reason)
{
    p->lg->vfio_form = form;
    if (p->o->flags & CPRS_LEGACY_F_ALL_FORMS) {
        return 0;
    }
    return deviate(p, p->c.pos, -1, "L5.6", reason);
}

static int subsections(Parse *p)
{
    bool seen = false;
    uint64_t off;
    uint8_t b;
    int ret;

    for (;;) {
        if (more_to_come(p)) {
            return NEED_MORE;
        }
        if (!cprs_cursor_peek_u8(&p->c, 0, &b) || b != 0x05) {
            break;
        }
        off = p->c.pos;
        ret = sub_header(p);
        if (ret == 1) {
            /* Lenient: QEMU stops here; the rest counts as trailing. */
            p->c.pos = off;
            break;
        }
        if (ret) {
            return ret;
        }
        /* spec L5.7: QEMU would load it again, reordering the list. */
        if (seen) {
            return fail(p, -EBADMSG, off, -1, "L5.7",
                        "vfio subsection repeated");
        }
        seen = true;
        ret = sub_version(p);
        if (ret) {
            return ret;
        }
        if (more_to_come(p)) {
            return NEED_MORE;
        }
        if (!cprs_cursor_left(&p->c)) {
            ret = other_form(p, CPRS_LEGACY_VFIO_STUB,
                             "vfio subsection without its list (QEMU "
                             "without iommufd)");
            if (ret) {
                return ret;
            }
            break;
        }
        p->lg->vfio_form = CPRS_LEGACY_VFIO_FULL;
        ret = list(p, true);
        if (ret) {
            return ret;
        }
    }
    if (!seen) {
        ret = other_form(p, CPRS_LEGACY_VFIO_NONE,
                         "no vfio subsection (QEMU 10.0 or older)");
        if (ret) {
            return ret;
        }
    }
    /* spec L6: nothing marks the end; QEMU never reads what follows. */
    p->lg->size = p->c.pos;
    if (more_to_come(p)) {
        return NEED_MORE;
    }
    if (!cprs_cursor_peek_u8(&p->c, 0, &b)) {
        return 0;
    }
    if (b == 0x05) {
        ret = deviate(p, p->c.pos, -1, "L5.2", "subsection QEMU does not "
                      "read; ignored with the rest");
    } else {
        ret = deviate(p, p->c.pos, -1, "L6", "trailing bytes after the "
                      "stream");
    }
    /* Lenient: the trailing bytes are counted, all of them, unless the
     * reader stops at the first (the cpr channel, L8.1). */
    if (!ret && p->partial && !p->stop_end) {
        return NEED_MORE;
    }
    if (!ret) {
        p->lg->trailing = cprs_cursor_left(&p->c);
    }
    return ret;
}

/* Decode @len bytes, which with @partial are only the start of the input. */
static int parse(const uint8_t *buf, size_t len, const CprsLegacyOpts *opts,
                 CprsLegacyFdQueue *queue, uint32_t flags, CprsDiag *diag,
                 CprsLegacy **ret_legacy)
{
    Parse p = {
        .o = opts,
        .queue = queue,
        .diag = diag,
        .lenient = opts->flags & CPRS_LEGACY_F_LENIENT,
        .partial = flags & CPRS_LEGACY_PARSE_PARTIAL,
        .stop_end = flags & CPRS_LEGACY_PARSE_STOP_END,
        .qhead = queue ? queue->head : 0,
    };
    CprsLegacyList *l;
    uint32_t i;
    int ret;

    /* One pass over the bytes; readers count what re-parsing costs. */
    CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, len);
    ret = cprs_legacy_alloc(&p.lg);
    if (ret) {
        return fail(&p, ret, 0, -1, "", "out of memory");
    }
    p.lg->mode = opts->mode;
    p.lg->flags = opts->flags;
    p.lg->max_records = opts->max_records;
    cprs_cursor_init(&p.c, buf, len);

    ret = header(&p);
    if (!ret) {
        ret = list(&p, false);
    }
    if (!ret) {
        ret = subsections(&p);
    }
    if (ret) {
        cprs_legacy_free(p.lg);
        return ret;
    }
    /* spec L4.8: with no record the variant cannot be seen. */
    if (!p.lg->mode) {
        p.lg->mode = CPRS_MODE_EXEC;
    }
    /* Accepted: the fds claimed move from the queue to the handle. */
    l = &p.lg->fds;
    for (i = 0; queue && p.lg->mode == CPRS_MODE_TRANSFER && i < l->count;
         i++) {
        l->rec[i].owned = true;
        queue->fd[queue->head++] = -1;
    }
    *ret_legacy = p.lg;
    return 0;
}

int cprs_legacy_parse(const uint8_t *buf, size_t len,
                      const CprsLegacyOpts *opts, CprsLegacyFdQueue *queue,
                      uint32_t flags, CprsDiag *diag,
                      CprsLegacy **ret_legacy)
{
    return parse(buf, len, opts, queue, flags, diag, ret_legacy);
}

int cprs_legacy_decode(const void *buf, size_t size,
                       const CprsLegacyOpts *opts, CprsDiag *diag,
                       CprsLegacy **ret_legacy)
{
    CprsLegacyOpts o;
    int ret;

    if ((!buf && size) || !ret_legacy) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    ret = cprs_legacy_opts_get(&o, opts);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    return cprs_legacy_parse(buf, size, &o, NULL, 0, diag, ret_legacy);
}

/*
 * Reading from an fd (spec L2.3): only as far as the decoder needs.  The
 * bytes come into a buffer that doubles when full (pread from offset 0
 * when the fd can, so its offset does not move, else read), and the
 * decoder decodes them from the start at the points
 * cprs_legacy_parse_due() sets: once the header is in, then each time
 * the bytes have doubled, so that a pipe giving one byte per read costs
 * no more than one giving them all at once.  A strict decode stops at
 * the first byte past the stream; a lenient one reads to the end to
 * count the trailing bytes.  Whatever comes, no more than max_size + 1
 * bytes are read or held: one more is -E2BIG.  Work: O(bytes).
 */
#define FILE_FIRST_ROUND (64u * 1024)

/* One read (pread at @off when @seekable) into @buf; *@ret_n: 0 at EOF. */
static int read_some(int fd, bool *seekable, uint8_t *buf, size_t len,
                     size_t off, size_t *ret_n)
{
    ssize_t n;

    for (;;) {
        if (*seekable) {
            n = pread(fd, buf, len, (off_t)off);
            if (n < 0 && errno == ESPIPE && off == 0) {
                *seekable = false;
                continue;
            }
        } else {
            n = read(fd, buf, len);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, n);
        *ret_n = (size_t)n;
        return 0;
    }
}

int cprs_legacy_decode_fd(int fd, const CprsLegacyOpts *opts, CprsDiag *diag,
                          CprsLegacy **ret_legacy)
{
    CprsLegacyOpts o;
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, last = 0, n = 0, first = 4096;
    bool seekable = true, eof = false;
    int ret;

    if (fd < 0 || !ret_legacy) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    ret = cprs_legacy_opts_get(&o, opts);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    /* A file (a memfd) says how long it is: refused unread if too long,
     * else read in doubling rounds from its size or 64 KiB. */
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size >= 0) {
        if ((uint64_t)st.st_size > o.max_size) {
            return cprs_diag_set(diag, -E2BIG, o.max_size, -1, -1, "L2",
                                 "input larger than max_size");
        }
        first = (uint64_t)st.st_size < FILE_FIRST_ROUND ?
                (size_t)st.st_size + 1 : FILE_FIRST_ROUND;
    }
    for (;;) {
        if (len == cap &&
            cprs_grow(&buf, &cap, len + 1, 1, first,
                      (size_t)o.max_size + 1)) {
            ret = len > o.max_size ? -E2BIG : -ENOMEM;
            cprs_diag_set(diag, ret, len, -1, -1, "L2", ret == -E2BIG ?
                          "input larger than max_size" : "out of memory");
            break;
        }
        ret = read_some(fd, &seekable, buf + len, cap - len, len, &n);
        if (ret) {
            cprs_diag_set(diag, ret, len, -1, -1, "L2", "read failed");
            break;
        }
        len += n;
        eof = n == 0;
        if (!eof && !cprs_legacy_parse_due(len, last, cap)) {
            continue;
        }
        last = len;
        ret = parse(buf, len, &o, NULL, eof ? 0 : CPRS_LEGACY_PARSE_PARTIAL,
                    diag, ret_legacy);
        if (ret != NEED_MORE) {
            break;
        }
    }
    free(buf);
    return ret;
}

/* ---- Detection --------------------------------------------------------- */

int cprs_detect(const void *buf, size_t len)
{
    if (!buf && len) {
        return -EINVAL;
    }
    if (len >= CPRS_MAGIC_SIZE && !memcmp(buf, CPRS_MAGIC, CPRS_MAGIC_SIZE)) {
        return CPRS_DETECT_ARENA;
    }
    if (len >= 4 && !memcmp(buf, "QCPR", 4)) {
        return CPRS_DETECT_LEGACY;
    }
    return CPRS_DETECT_UNKNOWN;
}

/* ---- Getters ----------------------------------------------------------- */

int cprs_legacy_get_info(const CprsLegacy *lg, CprsLegacyInfo *info)
{
    CprsLegacyInfo li = { .sz = sizeof(li) };

    if (!lg || !info) {
        return -EINVAL;
    }
    li.mode = lg->mode;
    li.vfio_form = lg->vfio_form;
    li.fd_count = lg->fds.count;
    li.vfio_count = lg->vfio.count;
    li.warning_count = lg->n_warnings;
    li.flags = lg->flags;
    li.size = lg->size;
    li.trailing = lg->trailing;
    return cprs_info_fill(info, &li, sizeof(li));
}

uint32_t cprs_legacy_fd_count(const CprsLegacy *lg)
{
    return lg ? lg->fds.count : 0;
}

int cprs_legacy_fd_get(const CprsLegacy *lg, uint32_t index, CprsFdInfo *info)
{
    const CprsLegacyRec *r;

    if (!lg || !info || index >= lg->fds.count) {
        return -EINVAL;
    }
    r = &lg->fds.rec[index];
    return cprs_info_fill(info, &(CprsFdInfo) {
        .sz = sizeof(CprsFdInfo), .name = cprs_legacy_rec_name(lg, r),
        .name_len = r->name_len, .id = r->id, .slot = index, .fd = r->fd,
        .kind = CPRS_FD_KIND_OTHER,
    }, sizeof(CprsFdInfo));
}

static int rec_offset(const CprsLegacyList *l, uint32_t index,
                      uint64_t *ret_offset)
{
    if (!ret_offset || index >= l->count) {
        return -EINVAL;
    }
    if (l->rec[index].offset == CPRS_LEGACY_NO_OFFSET) {
        return -ENOENT;
    }
    *ret_offset = l->rec[index].offset;
    return 0;
}

int cprs_legacy_fd_offset(const CprsLegacy *lg, uint32_t index,
                          uint64_t *ret_offset)
{
    return lg ? rec_offset(&lg->fds, index, ret_offset) : -EINVAL;
}

int cprs_legacy_fd_find(const CprsLegacy *lg, const char *name, int32_t id,
                        uint32_t *ret_index)
{
    size_t len;
    int64_t i;

    if (!lg || !name || !ret_index) {
        return -EINVAL;
    }
    len = strlen(name);
    if (len > UINT32_MAX) {
        return -ENOENT;
    }
    i = cprs_legacy_lookup(lg, &lg->fds, name, (uint32_t)len, id);
    if (i < 0) {
        return -ENOENT;
    }
    *ret_index = (uint32_t)i;
    return 0;
}

int cprs_legacy_fd_take(CprsLegacy *lg, uint32_t index, int *ret_fd)
{
    CprsLegacyRec *r;

    if (!lg || !ret_fd || index >= lg->fds.count) {
        return -EINVAL;
    }
    r = &lg->fds.rec[index];
    if (!r->owned) {
        return -ENOENT;
    }
    r->owned = false;
    *ret_fd = r->fd;
    return 0;
}

uint32_t cprs_legacy_vfio_count(const CprsLegacy *lg)
{
    return lg ? lg->vfio.count : 0;
}

int cprs_legacy_vfio_get(const CprsLegacy *lg, uint32_t index,
                         CprsVfioDeviceInfo *info)
{
    const CprsLegacyRec *r;
    CprsVfioDeviceInfo vi = { .sz = sizeof(vi) };

    if (!lg || !info || index >= lg->vfio.count) {
        return -EINVAL;
    }
    r = &lg->vfio.rec[index];
    vi.name = cprs_legacy_rec_name(lg, r);
    vi.name_len = r->name_len;
    vi.devid = r->id;
    vi.ioas_id = r->ioas_id;
    vi.hwpt_id = r->hwpt_id;
    return cprs_info_fill(info, &vi, sizeof(vi));
}

int cprs_legacy_vfio_offset(const CprsLegacy *lg, uint32_t index,
                            uint64_t *ret_offset)
{
    return lg ? rec_offset(&lg->vfio, index, ret_offset) : -EINVAL;
}

uint32_t cprs_legacy_warning_count(const CprsLegacy *lg)
{
    return lg ? lg->n_warnings : 0;
}

int cprs_legacy_warning_get(const CprsLegacy *lg, uint32_t index,
                            CprsDiag *diag)
{
    if (!lg || !diag || index >= lg->n_warnings) {
        return -EINVAL;
    }
    return cprs_info_fill(diag, &lg->warnings[index], sizeof(*diag));
}
