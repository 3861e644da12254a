/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diff.c - "cprdump diff A B": a semantic comparison of two states (two
 * arenas, two legacy streams, or one of each).
 *
 * Records are matched by their key, as QEMU looks them up: fd records by
 * (name, id), RAM blocks by idstr, vfio devices by name, device-state
 * payloads by (name, instance id).  A record is added, removed or changed
 * (field by field; a field is compared only when both sides carry it, so
 * a legacy stream's records, which have no identity, compare with an
 * arena's on name, id, slot and fd).  The order of the common fd records
 * is compared too: it decides the bytes of a legacy stream.  Header fields
 * differ unless --records-only.
 *
 * Exit: 0 identical, 1 different, 2 error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_CMP_ERROR

#define MAX_FIELDS 16

/*
 * Characters of a long text value the text output shows; the values are
 * compared whole (names, backing fds, every guest-physical range), and a
 * changed value is shown from a little before its first difference.
 */
#define SHOW_CHARS 200
#define SHOW_BEFORE 40

enum { V_NULL, V_UNSIGNED, V_SIGNED, V_STR, V_PAYLOAD };

enum { SHOW_DEC, SHOW_HEX, SHOW_OCT };

typedef struct Val {
    int kind;
    int show;               /* text: SHOW_* for V_UNSIGNED */
    uint64_t u;             /* V_PAYLOAD: raw size */
    int64_t i;
    char *s;                /* V_STR: the whole text, owned */
    size_t len;             /* V_STR: its length */
    /* V_PAYLOAD: the record, read when compared or shown. */
    const Source *src;
    uint32_t rec;
    bool have_crc;
    bool same_crc_differs;  /* equal CRC32C, different bytes */
    uint32_t crc;
} Val;

/* One record, or the header, as named values. */
typedef struct View {
    const char *name;       /* key name */
    int64_t id;             /* key id, or INT64_MIN when the key has none */
    uint32_t index;
    int n;
    int err;                /* an allocation failed while building it */
    const char *field[MAX_FIELDS];
    Val val[MAX_FIELDS];
} View;

/* Names of the vfio devices of a legacy stream, sorted once. */
typedef struct NameIdx {
    const char *name;
    uint32_t index;
} NameIdx;

typedef struct Diff {
    const Options *o;
    Source *a;
    Source *b;
    Dump *d;
    Json j;
    uint32_t differences;
    bool list_open;         /* text: the list heading was printed */
    NameIdx *vfio[2];       /* legacy sides a, b: sorted by name */
    uint32_t nvfio[2];
    bool vfio_built[2];
} Diff;

static void view_free(View *v)
{
    int i;

    for (i = 0; i < v->n; i++) {
        free(v->val[i].s);
    }
    memset(v, 0, sizeof(*v));
}

static Val *add(View *v, const char *field)
{
    Val *x = &v->val[v->n];

    v->field[v->n++] = field;
    memset(x, 0, sizeof(*x));
    return x;
}

static void add_u(View *v, const char *field, uint64_t u)
{
    Val *x = add(v, field);

    x->kind = V_UNSIGNED;
    x->u = u;
}

/* An unsigned value shown in hex or octal in the text output. */
static void add_x(View *v, const char *field, uint64_t u, int show)
{
    Val *x = add(v, field);

    x->kind = V_UNSIGNED;
    x->show = show;
    x->u = u;
}

static void add_i(View *v, const char *field, int64_t i)
{
    Val *x = add(v, field);

    x->kind = V_SIGNED;
    x->i = i;
}

/* A text value, kept whole; @len bytes of @s (a NULL @s is null). */
static void add_sn(View *v, const char *field, const char *s, size_t len)
{
    Val *x = add(v, field);

    if (!s) {
        x->kind = V_NULL;
        return;
    }
    x->kind = V_STR;
    x->s = malloc(len + 1);
    if (!x->s) {
        x->kind = V_NULL;
        v->err = -ENOMEM;
        return;
    }
    memcpy(x->s, s, len);
    x->s[len] = '\0';
    x->len = len;
}

static void add_s(View *v, const char *field, const char *s)
{
    add_sn(v, field, s, s ? strlen(s) : 0);
}

static void add_null(View *v, const char *field)
{
    add(v, field)->kind = V_NULL;
}

/*
 * Read payload @rec of @s whole into a new buffer (the reader keeps
 * nothing: cprs_reader_devstate_read()).  Returns 0 or a negative errno.
 */
static int payload_read(const Source *s, uint32_t rec, uint64_t raw,
                        void **ret_buf)
{
    size_t got;
    void *buf;
    int ret;

    *ret_buf = NULL;
    if (raw > CPRS_MAX_PAYLOAD_SIZE || raw > SIZE_MAX - 1) {
        return -E2BIG;
    }
    buf = malloc(raw ? (size_t)raw : 1);
    if (!buf) {
        return -ENOMEM;
    }
    ret = cprs_reader_devstate_read(s->reader, rec, buf, raw ? raw : 1,
                                    &got);
    if (!ret && got != raw) {
        ret = -EBADMSG;
    }
    if (ret) {
        free(buf);
        return ret;
    }
    *ret_buf = buf;
    return 0;
}

static void payload_error(const Val *x, int err)
{
    cprdump_err("%s: the payload of device-state record %u cannot be read "
                "(%s): the states cannot be compared", x->src->label,
                x->rec, strerror(-err));
}

/* The CRC32C of a payload, for the output. */
static int payload_crc(Val *x)
{
    void *buf;
    int ret;

    if (x->have_crc) {
        return 0;
    }
    ret = payload_read(x->src, x->rec, x->u, &buf);
    if (ret) {
        payload_error(x, ret);
        return ret;
    }
    x->crc = cprs_crc32c(0, buf, (size_t)x->u);
    x->have_crc = true;
    free(buf);
    return 0;
}

/*
 * Two payloads: equal only when their bytes are (a CRC32C match is not
 * enough, a producer can forge one).  Each side is read once; at most
 * the two payloads are held at a time.
 */
static int payload_eq(Val *x, Val *y)
{
    void *bx, *by;
    int ret, eq;

    if (x->u != y->u) {
        return payload_crc(x) ? -1 : payload_crc(y) ? -1 : 0;
    }
    ret = payload_read(x->src, x->rec, x->u, &bx);
    if (ret) {
        payload_error(x, ret);
        return -1;
    }
    ret = payload_read(y->src, y->rec, y->u, &by);
    if (ret) {
        free(bx);
        payload_error(y, ret);
        return -1;
    }
    eq = !memcmp(bx, by, (size_t)x->u);
    x->crc = cprs_crc32c(0, bx, (size_t)x->u);
    y->crc = cprs_crc32c(0, by, (size_t)y->u);
    x->have_crc = y->have_crc = true;
    y->same_crc_differs = !eq && x->crc == y->crc;
    free(bx);
    free(by);
    return eq;
}

/* 1 equal, 0 different, -1 error (reported). */
static int val_eq(Val *x, Val *y)
{
    if (x->kind != y->kind) {
        return 0;
    }
    switch (x->kind) {
    case V_UNSIGNED:
        return x->u == y->u;
    case V_SIGNED:
        return x->i == y->i;
    case V_STR:
        return x->len == y->len && !memcmp(x->s, y->s, x->len);
    case V_PAYLOAD:
        return payload_eq(x, y);
    default:
        return 1;
    }
}

/* Where two values first differ, for the text output: 0 unless texts. */
static size_t val_first_diff(const Val *x, const Val *y)
{
    size_t k = 0;

    if (x->kind != V_STR || !y || y->kind != V_STR) {
        return 0;
    }
    while (k < x->len && k < y->len && x->s[k] == y->s[k]) {
        k++;
    }
    return k > SHOW_BEFORE ? k - SHOW_BEFORE : 0;
}

/*
 * A value on the text output; a long text from @from (see SHOW_CHARS),
 * cut with "..." where it goes on.  A payload must have its CRC.
 */
static void val_print(FILE *out, const Val *x, size_t from)
{
    size_t n;

    switch (x->kind) {
    case V_UNSIGNED:
        if (x->show == SHOW_HEX) {
            fprintf(out, "0x%" PRIx64, x->u);
        } else if (x->show == SHOW_OCT) {
            fprintf(out, "0%" PRIo64, x->u);
        } else {
            fprintf(out, "%" PRIu64, x->u);
        }
        break;
    case V_SIGNED:
        fprintf(out, "%" PRId64, x->i);
        break;
    case V_STR:
        if (from > x->len) {
            from = x->len;
        }
        n = x->len - from;
        if (n > SHOW_CHARS) {
            n = SHOW_CHARS;
        }
        fprintf(out, "%s%s%s", from ? "..." : "", txn(x->s + from, n),
                from + n < x->len ? "..." : "");
        break;
    case V_PAYLOAD:
        fprintf(out, "crc32c 0x%08x%s", x->crc,
                x->same_crc_differs ? " (same CRC32C, other bytes)" : "");
        break;
    default:
        fprintf(out, "-");
        break;
    }
}

static void val_json(Json *j, const char *key, const Val *x)
{
    char buf[64];

    switch (x->kind) {
    case V_UNSIGNED:
        json_u64(j, key, x->u);
        break;
    case V_SIGNED:
        json_i64(j, key, x->i);
        break;
    case V_STR:
        json_str(j, key, x->s);
        break;
    case V_PAYLOAD:
        snprintf(buf, sizeof(buf), "crc32c 0x%08x%s", x->crc,
                 x->same_crc_differs ? " (same CRC32C, other bytes)" : "");
        json_str(j, key, buf);
        break;
    default:
        json_null(j, key);
        break;
    }
}

static Val *view_get(View *v, const char *field)
{
    int i;

    for (i = 0; i < v->n; i++) {
        if (!strcmp(v->field[i], field)) {
            return &v->val[i];
        }
    }
    return NULL;
}

/* ---- Views of the header and of each record kind ----------------------- */

static int header_view(const Source *s, View *v)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    char buf[2 * CPRS_BUILD_ID_MAX + 1];
    uint32_t i;

    memset(v, 0, sizeof(*v));
    add_s(v, "format", s->reader ? "arena" : "legacy");
    add_s(v, "mode", cprs_mode_name(src_mode(s)));
    if (s->reader) {
        cprs_reader_get_info(s->reader, &ai);
        snprintf(buf, sizeof(buf), "%u.%u", ai.version_major,
                 ai.version_minor);
        add_s(v, "version", buf);
        add_u(v, "generation", ai.generation);
        add_u(v, "created-ns", ai.created_ns);
        add_u(v, "writer-pid", ai.writer_pid);
        add_s(v, "producer", ai.producer);
        buf[0] = '\0';
        for (i = 0; i < ai.build_id_size && i < CPRS_BUILD_ID_MAX; i++) {
            snprintf(buf + 2 * i, sizeof(buf) - 2 * i, "%02x",
                     ai.build_id[i]);
        }
        add_s(v, "build-id", buf);
        add_x(v, "incompat-features", ai.incompat_features, SHOW_HEX);
        add_x(v, "compat-features", ai.compat_features, SHOW_HEX);
        add_u(v, "arena-size", ai.arena_size);
    } else {
        cprs_legacy_get_info(s->legacy, &li);
        add_s(v, "vfio-form", legacy_form_name(li.vfio_form));
        add_u(v, "stream-size", li.size);
        add_u(v, "trailing-bytes", li.trailing);
        add_u(v, "warnings", li.warning_count);
    }
    return v->err;
}

static int fd_view(const Source *s, uint32_t i, View *v)
{
    CprsFdInfo fi;
    const char *kind;
    int ret;

    memset(v, 0, sizeof(*v));
    ret = src_fd_get(s, i, &fi);
    if (ret) {
        return ret;
    }
    v->name = fi.name;
    v->id = fi.id;
    v->index = i;
    add_u(v, "slot", fi.slot);
    if (fi.fd < 0) {
        add_null(v, "fd");
    } else {
        add_i(v, "fd", fi.fd);
    }
    if (!s->reader) {
        return 0;   /* a legacy record has nothing more */
    }
    kind = cprs_fd_kind_name(fi.kind);
    add_s(v, "kind", kind ? kind : "unknown");
    add_x(v, "flags", fi.flags, SHOW_HEX);
    if (fi.flags & CPRS_FD_F_SEALS) {
        add_x(v, "seals", fi.seals, SHOW_HEX);
    } else {
        add_null(v, "seals");
    }
    if (fi.flags & CPRS_FD_F_IDENTITY) {
        add_x(v, "dev", fi.dev, SHOW_HEX);
        add_u(v, "ino", fi.ino);
        add_x(v, "mode", fi.st_mode, SHOW_OCT);
        add_u(v, "size", fi.size);
    } else {
        add_null(v, "dev");
        add_null(v, "ino");
        add_null(v, "mode");
        add_null(v, "size");
    }
    return v->err;
}

/* Append to a growing text; false when out of memory. */
static bool text_add(char **buf, size_t *len, size_t *cap, const char *s,
                     size_t n)
{
    size_t ncap;
    char *nbuf;

    if (*len + n + 1 > *cap) {
        ncap = *cap ? *cap : 256;
        while (ncap < *len + n + 1) {
            ncap *= 2;
        }
        nbuf = realloc(*buf, ncap);
        if (!nbuf) {
            return false;
        }
        *buf = nbuf;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

static int ram_view(const Source *s, uint32_t i, View *v)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsGpaRange gr;
    Val *ranges;
    char one[80];
    size_t cap = 0;
    uint32_t k;
    int ret, n;

    memset(v, 0, sizeof(*v));
    ret = cprs_reader_ramblock_get(s->reader, i, &bi);
    if (ret) {
        return ret;
    }
    v->name = bi.idstr;
    v->id = INT64_MIN;
    v->index = i;
    /* The backing fd by its name: indexes differ between arenas. */
    if (bi.fd_index == CPRS_NO_INDEX) {
        add_null(v, "fd");
    } else {
        ret = cprs_reader_fd_get(s->reader, bi.fd_index, &fi);
        if (ret) {
            return ret;
        }
        add_s(v, "fd", fi.name);
    }
    add_x(v, "flags", bi.flags, SHOW_HEX);
    add_x(v, "fd-offset", bi.fd_offset, SHOW_HEX);
    add_x(v, "used-length", bi.used_length, SHOW_HEX);
    add_x(v, "max-length", bi.max_length, SHOW_HEX);
    add_x(v, "page-size", bi.page_size, SHOW_HEX);
    add_x(v, "align", bi.align, SHOW_HEX);
    /* Every range, in order: the whole list is compared. */
    ranges = add(v, "gpa-ranges");
    ranges->kind = V_STR;
    if (!text_add(&ranges->s, &ranges->len, &cap, "", 0)) {
        return -ENOMEM;
    }
    for (k = 0; k < bi.range_count; k++) {
        ret = cprs_reader_gpa_range_get(s->reader, i, k, &gr);
        if (ret) {
            return ret;
        }
        n = snprintf(one, sizeof(one), "%s0x%" PRIx64 "+0x%" PRIx64
                     "@0x%" PRIx64, k ? " " : "", gr.gpa, gr.size,
                     gr.block_offset);
        if (!text_add(&ranges->s, &ranges->len, &cap, one, (size_t)n)) {
            return -ENOMEM;
        }
    }
    return v->err;
}

static int vfio_view(const Source *s, uint32_t i, View *v)
{
    CprsVfioDeviceInfo vi;
    int ret;

    memset(v, 0, sizeof(*v));
    ret = src_vfio_get(s, i, &vi);
    if (ret) {
        return ret;
    }
    v->name = vi.name;
    v->id = INT64_MIN;
    v->index = i;
    add_i(v, "devid", vi.devid);
    add_u(v, "ioas-id", vi.ioas_id);
    add_u(v, "hwpt-id", vi.hwpt_id);
    return 0;
}

static int devstate_view(const Source *s, uint32_t i, View *v)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    Val *x;
    int ret;

    memset(v, 0, sizeof(*v));
    ret = cprs_reader_devstate_get(s->reader, i, &di);
    if (ret) {
        return ret;
    }
    v->name = di.name;
    v->id = di.instance_id;
    v->index = i;
    add_u(v, "version-id", di.version_id);
    add_x(v, "flags", di.flags, SHOW_HEX);
    add_u(v, "stored-size", di.stored_size);
    add_u(v, "raw-size", di.raw_size);
    /*
     * The payload itself: its bytes are compared, its CRC32C shown.  It
     * is read only then, and not kept (an unreadable one is an error).
     */
    x = add(v, "payload");
    x->kind = V_PAYLOAD;
    x->u = di.raw_size;
    x->src = s;
    x->rec = i;
    return 0;
}

/* ---- Matching ---------------------------------------------------------- */

typedef struct Kind {
    const char *title;      /* text heading */
    const char *json;       /* JSON member */
    uint32_t (*count)(const Source *);
    int (*view)(const Source *, uint32_t, View *);
    /* Index in @s of the record keyed like @v, or -1 (-2: error). */
    int64_t (*find)(Diff *, const Source *, const View *);
} Kind;

static uint32_t fd_count(const Source *s)
{
    return src_fd_count(s);
}

static int64_t fd_find(Diff *df, const Source *s, const View *v)
{
    uint32_t idx;
    int ret;

    (void)df;
    if (s->reader) {
        ret = cprs_reader_fd_find(s->reader, v->name, (int32_t)v->id, &idx);
    } else {
        ret = cprs_legacy_fd_find(s->legacy, v->name, (int32_t)v->id, &idx);
    }
    return ret ? -1 : (int64_t)idx;
}

static uint32_t ram_count(const Source *s)
{
    return s->reader ? cprs_reader_ramblock_count(s->reader) : 0;
}

static int64_t ram_find(Diff *df, const Source *s, const View *v)
{
    uint32_t idx;

    (void)df;
    if (!s->reader || cprs_reader_ramblock_find(s->reader, v->name, &idx)) {
        return -1;
    }
    return idx;
}

static uint32_t vfio_count(const Source *s)
{
    return src_vfio_count(s);
}

static int name_idx_cmp(const void *pa, const void *pb)
{
    const NameIdx *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);

    if (c) {
        return c;
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

/*
 * The names of a legacy stream's vfio devices, sorted once (by name, then
 * index: a lookup finds the first device of a name, as a scan would).
 */
static int vfio_sort(Diff *df, const Source *s, int side)
{
    CprsVfioDeviceInfo vi;
    uint32_t n = cprs_legacy_vfio_count(s->legacy), i;
    NameIdx *list;

    df->vfio_built[side] = true;
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (src_vfio_get(s, i, &vi)) {
            free(list);
            return -EBADMSG;
        }
        list[i].name = vi.name;
        list[i].index = i;
    }
    qsort(list, n, sizeof(*list), name_idx_cmp);
    df->vfio[side] = list;
    df->nvfio[side] = n;
    return 0;
}

static int64_t vfio_find(Diff *df, const Source *s, const View *v)
{
    int side = s == df->a ? 0 : 1;
    const NameIdx *list;
    uint32_t idx, lo, hi, mid;

    if (s->reader) {
        return cprs_reader_vfio_find(s->reader, v->name, &idx) ? -1 :
               (int64_t)idx;
    }
    /* The legacy handle has no name lookup: one sort, then bisection. */
    if (!df->vfio_built[side] && vfio_sort(df, s, side)) {
        cprdump_err("%s: cannot index the vfio devices", s->label);
        return -2;
    }
    list = df->vfio[side];
    lo = 0;
    hi = df->nvfio[side];
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (strcmp(list[mid].name, v->name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < df->nvfio[side] && !strcmp(list[lo].name, v->name)) {
        return list[lo].index;
    }
    return -1;
}

static uint32_t devstate_count(const Source *s)
{
    return s->reader ? cprs_reader_devstate_count(s->reader) : 0;
}

static int64_t devstate_find(Diff *df, const Source *s, const View *v)
{
    uint32_t idx;

    (void)df;
    if (!s->reader || cprs_reader_devstate_find(s->reader, v->name,
                                                (uint32_t)v->id, &idx)) {
        return -1;
    }
    return idx;
}

static const Kind kinds[] = {
    { "fd records", "fds", fd_count, fd_view, fd_find },
    { "RAM blocks", "ram-blocks", ram_count, ram_view, ram_find },
    { "vfio devices", "devices", vfio_count, vfio_view, vfio_find },
    { "Device state", "device-state", devstate_count, devstate_view,
      devstate_find },
};

/* The key of a record, whole (names are at most 4095 bytes). */
static void key_print(FILE *out, const Kind *k, const View *v)
{
    if (v->id == INT64_MIN) {
        fprintf(out, "%s", tx(v->name));
    } else if (k->view == devstate_view) {
        fprintf(out, "%s (instance %" PRId64 ")", tx(v->name), v->id);
    } else {
        fprintf(out, "%s (id %" PRId64 ")", tx(v->name), v->id);
    }
}

static void json_key(Json *j, const View *v)
{
    json_str(j, "name", v->name);
    if (v->id == INT64_MIN) {
        json_null(j, "id");
    } else {
        /* Device state: the instance id. */
        json_i64(j, "id", v->id);
    }
}

/* A record present on one side only: one line with its fields. */
static int one_side(Diff *df, const Kind *k, View *v, char sign)
{
    FILE *out = df->d->out;
    int i;

    df->differences++;
    if (df->o->json) {
        json_obj(&df->j, NULL);
        json_key(&df->j, v);
        json_u64(&df->j, "index", v->index);
        json_obj_end(&df->j);
        return 0;
    }
    for (i = 0; i < v->n; i++) {
        if (v->val[i].kind == V_PAYLOAD && payload_crc(&v->val[i])) {
            return -1;
        }
    }
    fprintf(out, "  %c [%u] ", sign, v->index);
    key_print(out, k, v);
    fprintf(out, ":");
    for (i = 0; i < v->n; i++) {
        fprintf(out, "%s %s ", i ? "," : "", v->field[i]);
        val_print(out, &v->val[i], 0);
    }
    fprintf(out, "\n");
    return 0;
}

static void heading(Diff *df, const Kind *k)
{
    if (!df->list_open && !df->o->json) {
        fprintf(df->d->out, "%s:\n", k->title);
        df->list_open = true;
    }
}

/*
 * Compare two records with the same key and print the fields that
 * differ.  Returns 1 if they differ, 0 if not, -1 on error (reported).
 */
static int changed(Diff *df, const Kind *k, View *va, View *vb)
{
    FILE *out = df->d->out;
    int diff[MAX_FIELDS], nd = 0, i, eq;
    Val *x, *y;
    size_t from;

    for (i = 0; i < va->n; i++) {
        y = view_get(vb, va->field[i]);
        if (!y) {
            continue;
        }
        eq = val_eq(&va->val[i], y);
        if (eq < 0) {
            return -1;
        }
        if (!eq) {
            diff[nd++] = i;
        }
    }
    if (!nd) {
        return 0;
    }
    heading(df, k);
    df->differences++;
    if (df->o->json) {
        json_obj(&df->j, NULL);
        json_key(&df->j, va);
        json_u64(&df->j, "index-a", va->index);
        json_u64(&df->j, "index-b", vb->index);
        json_arr(&df->j, "changes");
    } else {
        fprintf(out, "  ~ ");
        key_print(out, k, va);
        fprintf(out, ":");
    }
    for (i = 0; i < nd; i++) {
        x = &va->val[diff[i]];
        y = view_get(vb, va->field[diff[i]]);
        if (df->o->json) {
            json_obj(&df->j, NULL);
            json_str(&df->j, "field", va->field[diff[i]]);
            val_json(&df->j, "a", x);
            val_json(&df->j, "b", y);
            json_obj_end(&df->j);
            continue;
        }
        from = val_first_diff(x, y);
        fprintf(out, "%s %s ", i ? ";" : "", va->field[diff[i]]);
        val_print(out, x, from);
        fprintf(out, " -> ");
        val_print(out, y, from);
    }
    if (df->o->json) {
        json_arr_end(&df->j);
        json_obj_end(&df->j);
    } else {
        fprintf(out, "\n");
    }
    return 1;
}

static void view_error(const Source *s, const Kind *k, int64_t i, int err)
{
    cprdump_err("%s: record %" PRId64 " of %s does not decode (%s)",
                s->label, i, k->title, strerror(-err));
}

/*
 * One record kind: removed (in A only), added (in B only), changed, and
 * whether the common records keep their order.
 */
static int diff_kind(Diff *df, const Kind *k)
{
    uint32_t na = k->count(df->a), nb = k->count(df->b), i;
    int64_t other, last = -1;
    bool order = true;
    View va = { 0 }, vb = { 0 };
    int pass, ret = 0;

    df->list_open = false;
    if (df->o->json) {
        json_obj(&df->j, k->json);
    }
    /* Pass 0: removed; 1: added; 2: changed. */
    for (pass = 0; pass < 3; pass++) {
        Source *from = pass == 1 ? df->b : df->a;
        Source *to = pass == 1 ? df->a : df->b;
        uint32_t n = pass == 1 ? nb : na;

        if (df->o->json) {
            json_arr(&df->j, pass == 0 ? "removed" : pass == 1 ? "added" :
                     "changed");
        }
        for (i = 0; i < n; i++) {
            view_free(&va);
            view_free(&vb);
            ret = k->view(from, i, &va);
            if (ret) {
                view_error(from, k, i, ret);
                goto out;
            }
            other = k->find(df, to, &va);
            if (other < -1) {
                ret = -1;
                goto out;
            }
            if (pass < 2) {
                if (other < 0) {
                    heading(df, k);
                    ret = one_side(df, k, &va, pass == 0 ? '-' : '+');
                    if (ret) {
                        goto out;
                    }
                }
                continue;
            }
            if (other < 0) {
                continue;
            }
            if (other < last) {
                order = false;
            }
            last = other;
            ret = k->view(to, (uint32_t)other, &vb);
            if (ret) {
                view_error(to, k, other, ret);
                goto out;
            }
            if (changed(df, k, &va, &vb) < 0) {
                ret = -1;
                goto out;
            }
        }
        if (df->o->json) {
            json_arr_end(&df->j);
        }
    }
    if (!order) {
        df->differences++;
    }
    if (df->o->json) {
        json_bool(&df->j, "order-differs", !order);
        json_obj_end(&df->j);
    } else if (!order) {
        heading(df, k);
        fprintf(df->d->out, "  the records both have are in a different "
                "order (it decides the bytes of a legacy stream)\n");
    }
out:
    view_free(&va);
    view_free(&vb);
    return ret ? -1 : 0;
}

static int diff_header(Diff *df)
{
    View ha, hb;
    Val *x, *y;
    bool open = false, same_format;
    int i, side, ret;

    ret = header_view(df->a, &ha);
    if (!ret) {
        ret = header_view(df->b, &hb);
    } else {
        memset(&hb, 0, sizeof(hb));
    }
    if (ret) {
        cprdump_err("%s", strerror(-ret));
        goto out;
    }
    /* Across formats, "format" says it: compare only the common fields. */
    same_format = val_eq(view_get(&ha, "format"), view_get(&hb, "format"));
    if (df->o->json) {
        json_arr(&df->j, "header");
    }
    /* Fields of A (with B's value or null), then fields only B has. */
    for (side = 0; side < 2 && !df->o->records_only; side++) {
        View *v = side ? &hb : &ha;

        for (i = 0; i < v->n; i++) {
            if (side && view_get(&ha, v->field[i])) {
                continue;
            }
            x = side ? view_get(&ha, v->field[i]) : &v->val[i];
            y = side ? &v->val[i] : view_get(&hb, v->field[i]);
            /* Header values are numbers and texts: no error. */
            if ((x && y && val_eq(x, y) > 0) ||
                (!same_format && (!x || !y))) {
                continue;
            }
            df->differences++;
            if (df->o->json) {
                json_obj(&df->j, NULL);
                json_str(&df->j, "field", v->field[i]);
                if (x) {
                    val_json(&df->j, "a", x);
                } else {
                    json_null(&df->j, "a");
                }
                if (y) {
                    val_json(&df->j, "b", y);
                } else {
                    json_null(&df->j, "b");
                }
                json_obj_end(&df->j);
                continue;
            }
            if (!open) {
                fprintf(df->d->out, "Header:\n");
                open = true;
            }
            fprintf(df->d->out, "  ~ %s: ", v->field[i]);
            if (x) {
                val_print(df->d->out, x, x && y ? val_first_diff(x, y) : 0);
            } else {
                fprintf(df->d->out, "-");
            }
            fprintf(df->d->out, " -> ");
            if (y) {
                val_print(df->d->out, y, x && y ? val_first_diff(x, y) : 0);
            } else {
                fprintf(df->d->out, "-");
            }
            fprintf(df->d->out, "\n");
        }
    }
    if (df->o->json) {
        json_arr_end(&df->j);
    }
out:
    view_free(&ha);
    view_free(&hb);
    return ret ? -1 : 0;
}

/* Load a side; a state that does not open cannot be compared. */
static int load_side(const Options *o, const SourceArg *arg, Source *s)
{
    int ret = source_load(arg->path, arg->pid, o, s);

    if (ret) {
        return ret;
    }
    if (s->err && !s->legacy) {
        source_report(s, s->err, &s->diag);
        return s->err;
    }
    if (s->err) {
        cprdump_note("%s: not a valid QCPR stream; compared as QEMU "
                     "would read it", s->label);
    }
    return 0;
}

static int diff_run(const Options *o)
{
    Source sa, sb;
    Dump d = { 0 };
    Diff df = { .o = o, .a = &sa, .b = &sb, .d = &d };
    SourceArg *list;
    size_t i;
    int n, ret = 0;

    n = source_args(o, 0, o->nargs, &list);
    if (n < 0) {
        return usage_error(USAGE, NULL);
    }
    if (n != 2) {
        free(list);
        return usage_error(USAGE, "diff takes two SOURCEs (or --pid A B)");
    }
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    ret = load_side(o, &list[0], &sa) || load_side(o, &list[1], &sb);
    free(list);
    if (ret) {
        source_free(&sa);
        source_free(&sb);
        return CPRDUMP_CMP_ERROR;
    }
    if (!dump_begin(&d)) {
        source_free(&sa);
        source_free(&sb);
        return CPRDUMP_CMP_ERROR;
    }
    if (o->json) {
        json_begin(&df.j, d.out);
        json_preamble(&df.j, "diff");
        json_source(&df.j, "a", &sa);
        json_source(&df.j, "b", &sb);
        json_bool(&df.j, "records-only", o->records_only);
    } else {
        fprintf(d.out, "--- %s\n+++ %s\n", sa.label, sb.label);
    }
    ret = diff_header(&df);
    for (i = 0; !ret && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        ret = diff_kind(&df, &kinds[i]);
    }
    if (o->json) {
        json_u64(&df.j, "differences", df.differences);
        json_bool(&df.j, "identical", !df.differences);
        json_obj_end(&df.j);
        json_end(&df.j);
    } else if (df.differences) {
        fprintf(d.out, "%u difference%s\n", df.differences,
                df.differences == 1 ? "" : "s");
    } else {
        fprintf(d.out, "No differences.\n");
    }
    source_free(&sa);
    source_free(&sb);
    free(df.vfio[0]);
    free(df.vfio[1]);
    if (ret) {
        dump_discard(&d);
        return CPRDUMP_CMP_ERROR;
    }
    if (!dump_end(&d)) {
        return CPRDUMP_CMP_ERROR;
    }
    return df.differences ? CPRDUMP_CMP_DIFFERENT : CPRDUMP_CMP_SAME;
}

const Command cmd_diff = {
    .name = "diff",
    .run = diff_run,
    .options = OPT_JSON | OPT_PID | OPT_CORE_INDEX | OPT_LENIENT |
               OPT_QUIET | OPT_RECORDS_ONLY | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json] [--records-only] A B",
    .summary = "compare two states record by record",
};
