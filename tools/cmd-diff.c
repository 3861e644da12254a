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
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_CMP_ERROR

#define MAX_FIELDS 16

enum { V_NULL, V_UNSIGNED, V_SIGNED, V_STR };

enum { SHOW_DEC, SHOW_HEX, SHOW_OCT };

typedef struct Val {
    int kind;
    int show;               /* text: SHOW_* for V_UNSIGNED */
    uint64_t u;
    int64_t i;
    char s[200];
} Val;

/* One record, or the header, as named values. */
typedef struct View {
    const char *name;       /* key name */
    int64_t id;             /* key id, or INT64_MIN when the key has none */
    uint32_t index;
    int n;
    const char *field[MAX_FIELDS];
    Val val[MAX_FIELDS];
} View;

typedef struct Diff {
    const Options *o;
    Source *a;
    Source *b;
    Dump *d;
    Json j;
    uint32_t differences;
    bool list_open;         /* text: the list heading was printed */
} Diff;

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

static void add_s(View *v, const char *field, const char *s)
{
    Val *x = add(v, field);

    x->kind = s ? V_STR : V_NULL;
    snprintf(x->s, sizeof(x->s), "%s", s ? s : "");
}

static void add_null(View *v, const char *field)
{
    add(v, field)->kind = V_NULL;
}

static bool val_eq(const Val *x, const Val *y)
{
    if (x->kind != y->kind) {
        return false;
    }
    switch (x->kind) {
    case V_UNSIGNED:
        return x->u == y->u;
    case V_SIGNED:
        return x->i == y->i;
    case V_STR:
        return !strcmp(x->s, y->s);
    default:
        return true;
    }
}

static void val_text(const Val *x, char *buf, size_t size)
{
    switch (x->kind) {
    case V_UNSIGNED:
        if (x->show == SHOW_HEX) {
            snprintf(buf, size, "0x%" PRIx64, x->u);
        } else if (x->show == SHOW_OCT) {
            snprintf(buf, size, "0%" PRIo64, x->u);
        } else {
            snprintf(buf, size, "%" PRIu64, x->u);
        }
        break;
    case V_SIGNED:
        snprintf(buf, size, "%" PRId64, x->i);
        break;
    case V_STR:
        snprintf(buf, size, "%s", tx(x->s));
        break;
    default:
        snprintf(buf, size, "-");
        break;
    }
}

static void val_json(Json *j, const char *key, const Val *x)
{
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
    default:
        json_null(j, key);
        break;
    }
}

static const Val *view_get(const View *v, const char *field)
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

static void header_view(const Source *s, View *v)
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
}

static int fd_view(const Source *s, uint32_t i, View *v)
{
    CprsFdInfo fi;
    const char *kind;

    memset(v, 0, sizeof(*v));
    if (src_fd_get(s, i, &fi)) {
        return -1;
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
    return 0;
}

static int ram_view(const Source *s, uint32_t i, View *v)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsGpaRange gr;
    Val *ranges;
    size_t len;
    uint32_t k;

    memset(v, 0, sizeof(*v));
    if (cprs_reader_ramblock_get(s->reader, i, &bi)) {
        return -1;
    }
    v->name = bi.idstr;
    v->id = INT64_MIN;
    v->index = i;
    /* The backing fd by its name: indexes differ between arenas. */
    if (bi.fd_index == CPRS_NO_INDEX) {
        add_null(v, "fd");
    } else if (!cprs_reader_fd_get(s->reader, bi.fd_index, &fi)) {
        add_s(v, "fd", fi.name);
    } else {
        add_s(v, "fd", "(unreadable)");
    }
    add_x(v, "flags", bi.flags, SHOW_HEX);
    add_x(v, "fd-offset", bi.fd_offset, SHOW_HEX);
    add_x(v, "used-length", bi.used_length, SHOW_HEX);
    add_x(v, "max-length", bi.max_length, SHOW_HEX);
    add_x(v, "page-size", bi.page_size, SHOW_HEX);
    add_x(v, "align", bi.align, SHOW_HEX);
    ranges = add(v, "gpa-ranges");
    ranges->kind = V_STR;
    for (k = 0; k < bi.range_count; k++) {
        if (cprs_reader_gpa_range_get(s->reader, i, k, &gr)) {
            continue;
        }
        len = strlen(ranges->s);
        snprintf(ranges->s + len, sizeof(ranges->s) - len, "%s0x%" PRIx64
                 "+0x%" PRIx64 "@0x%" PRIx64, k ? " " : "", gr.gpa,
                 gr.size, gr.block_offset);
    }
    return 0;
}

static int vfio_view(const Source *s, uint32_t i, View *v)
{
    CprsVfioDeviceInfo vi;

    memset(v, 0, sizeof(*v));
    if (src_vfio_get(s, i, &vi)) {
        return -1;
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
    const void *data;
    size_t size;
    char buf[64];

    memset(v, 0, sizeof(*v));
    if (cprs_reader_devstate_get(s->reader, i, &di)) {
        return -1;
    }
    v->name = di.name;
    v->id = di.instance_id;
    v->index = i;
    add_u(v, "version-id", di.version_id);
    add_x(v, "flags", di.flags, SHOW_HEX);
    add_u(v, "stored-size", di.stored_size);
    add_u(v, "raw-size", di.raw_size);
    /* The payload itself, by the CRC32C of its uncompressed bytes. */
    if (!cprs_reader_devstate_data(s->reader, i, &data, &size)) {
        snprintf(buf, sizeof(buf), "crc32c 0x%08x",
                 cprs_crc32c(0, data, size));
        add_s(v, "payload", buf);
    } else {
        add_s(v, "payload", "(unreadable)");
    }
    return 0;
}

/* ---- Matching ---------------------------------------------------------- */

typedef struct Kind {
    const char *title;      /* text heading */
    const char *json;       /* JSON member */
    uint32_t (*count)(const Source *);
    int (*view)(const Source *, uint32_t, View *);
    /* Index in @s of the record keyed like @v, or -1. */
    int64_t (*find)(const Source *, const View *);
} Kind;

static uint32_t fd_count(const Source *s)
{
    return src_fd_count(s);
}

static int64_t fd_find(const Source *s, const View *v)
{
    uint32_t idx;
    int ret;

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

static int64_t ram_find(const Source *s, const View *v)
{
    uint32_t idx;

    if (!s->reader || cprs_reader_ramblock_find(s->reader, v->name, &idx)) {
        return -1;
    }
    return idx;
}

static uint32_t vfio_count(const Source *s)
{
    return src_vfio_count(s);
}

static int64_t vfio_find(const Source *s, const View *v)
{
    CprsVfioDeviceInfo vi;
    uint32_t idx, i, n;

    if (s->reader) {
        return cprs_reader_vfio_find(s->reader, v->name, &idx) ? -1 :
               (int64_t)idx;
    }
    /* The legacy handle has no name lookup; devices are few. */
    n = cprs_legacy_vfio_count(s->legacy);
    for (i = 0; i < n; i++) {
        if (!src_vfio_get(s, i, &vi) && !strcmp(vi.name, v->name)) {
            return i;
        }
    }
    return -1;
}

static uint32_t devstate_count(const Source *s)
{
    return s->reader ? cprs_reader_devstate_count(s->reader) : 0;
}

static int64_t devstate_find(const Source *s, const View *v)
{
    uint32_t idx;

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

static void key_text(const Kind *k, const View *v, char *buf, size_t size)
{
    if (v->id == INT64_MIN) {
        snprintf(buf, size, "%s", tx(v->name));
    } else if (k->view == devstate_view) {
        snprintf(buf, size, "%s (instance %" PRId64 ")", tx(v->name), v->id);
    } else {
        snprintf(buf, size, "%s (id %" PRId64 ")", tx(v->name), v->id);
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
static void one_side(Diff *df, const Kind *k, const View *v, char sign)
{
    char key[300], val[220];
    int i;

    df->differences++;
    if (df->o->json) {
        json_obj(&df->j, NULL);
        json_key(&df->j, v);
        json_u64(&df->j, "index", v->index);
        json_obj_end(&df->j);
        return;
    }
    key_text(k, v, key, sizeof(key));
    fprintf(df->d->out, "  %c [%u] %s:", sign, v->index, key);
    for (i = 0; i < v->n; i++) {
        val_text(&v->val[i], val, sizeof(val));
        fprintf(df->d->out, "%s %s %s", i ? "," : "", v->field[i], val);
    }
    fprintf(df->d->out, "\n");
}

static void heading(Diff *df, const Kind *k)
{
    if (!df->list_open && !df->o->json) {
        fprintf(df->d->out, "%s:\n", k->title);
        df->list_open = true;
    }
}

/* Compare two records with the same key; true if they differ. */
static bool changed(Diff *df, const Kind *k, const View *va, const View *vb,
                    bool emit)
{
    char key[300], x[220], y[220];
    const Val *other;
    bool any = false;
    int i;

    for (i = 0; i < va->n; i++) {
        other = view_get(vb, va->field[i]);
        if (!other || val_eq(&va->val[i], other)) {
            continue;
        }
        if (!emit) {
            return true;
        }
        if (!any) {
            df->differences++;
            if (df->o->json) {
                json_obj(&df->j, NULL);
                json_key(&df->j, va);
                json_u64(&df->j, "index-a", va->index);
                json_u64(&df->j, "index-b", vb->index);
                json_arr(&df->j, "changes");
            } else {
                key_text(k, va, key, sizeof(key));
                fprintf(df->d->out, "  ~ %s:", key);
            }
        }
        if (df->o->json) {
            json_obj(&df->j, NULL);
            json_str(&df->j, "field", va->field[i]);
            val_json(&df->j, "a", &va->val[i]);
            val_json(&df->j, "b", other);
            json_obj_end(&df->j);
        } else {
            val_text(&va->val[i], x, sizeof(x));
            val_text(other, y, sizeof(y));
            fprintf(df->d->out, "%s %s %s -> %s", any ? ";" : "",
                    va->field[i], x, y);
        }
        any = true;
    }
    if (any) {
        if (df->o->json) {
            json_arr_end(&df->j);
            json_obj_end(&df->j);
        } else {
            fprintf(df->d->out, "\n");
        }
    }
    return any;
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
    View va, vb;
    int pass;

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
            if (k->view(from, i, &va)) {
                cprdump_err("%s: record %u of %s does not decode",
                            from->label, i, k->title);
                return -1;
            }
            other = k->find(to, &va);
            if (pass < 2) {
                if (other < 0) {
                    heading(df, k);
                    one_side(df, k, &va, pass == 0 ? '-' : '+');
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
            if (k->view(to, (uint32_t)other, &vb)) {
                cprdump_err("%s: record %" PRId64 " of %s does not decode",
                            to->label, other, k->title);
                return -1;
            }
            if (changed(df, k, &va, &vb, false)) {
                heading(df, k);
                changed(df, k, &va, &vb, true);
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
    return 0;
}

static void diff_header(Diff *df)
{
    View ha, hb;
    const Val *x, *y;
    char ta[220], tb[220];
    bool open = false, same_format;
    int i, side;

    header_view(df->a, &ha);
    header_view(df->b, &hb);
    /* Across formats, "format" says it: compare only the common fields. */
    same_format = val_eq(view_get(&ha, "format"), view_get(&hb, "format"));
    if (df->o->json) {
        json_arr(&df->j, "header");
    }
    /* Fields of A (with B's value or null), then fields only B has. */
    for (side = 0; side < 2 && !df->o->records_only; side++) {
        const View *v = side ? &hb : &ha;

        for (i = 0; i < v->n; i++) {
            if (side && view_get(&ha, v->field[i])) {
                continue;
            }
            x = side ? view_get(&ha, v->field[i]) : &v->val[i];
            y = side ? &v->val[i] : view_get(&hb, v->field[i]);
            if ((x && y && val_eq(x, y)) || (!same_format && (!x || !y))) {
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
            snprintf(ta, sizeof(ta), "-");
            snprintf(tb, sizeof(tb), "-");
            if (x) {
                val_text(x, ta, sizeof(ta));
            }
            if (y) {
                val_text(y, tb, sizeof(tb));
            }
            fprintf(df->d->out, "  ~ %s: %s -> %s\n", v->field[i], ta, tb);
        }
    }
    if (df->o->json) {
        json_arr_end(&df->j);
    }
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
    diff_header(&df);
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
