/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hexdump.c - "cprdump --hex": an annotated hex dump that names the field
 * at every offset.
 *
 * Arena: the header fields, the directory entries, each record field of
 * each section (names resolved through the string table), each string,
 * each device-state payload, each index slot; bytes that no structure
 * claims are shown as "unclaimed" (the spec wants them zero).  The walk
 * uses only the wire layout of cprs-format.h and checks every offset and
 * count against the input itself, so it also works on an arena that the
 * reader refuses - which is when one needs a hex dump most.
 *
 * Legacy stream: each grammar element (magic, version, markers, name
 * lengths, names, ids, fd fields, subsection header, vfio records,
 * trailing bytes), placed from the record offsets the decoder reports.
 *
 * Annotations are printed in offset order, field by field: 16 bytes a
 * line, continuation lines naming the field and the offset within it,
 * repeated lines folded into "*".  They are not all held until the end:
 * each walk says below which offset no annotation is still to come (its
 * own position, and where the walks after it start), and what lies below
 * is printed as soon as enough is pending.  The output is that of one
 * sort of them all; the memory, a few MiB for an arena whose sections
 * are in offset order, whatever its size.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

typedef struct Ann {
    uint64_t off;
    uint64_t len;
    uint64_t seq;           /* insertion order, for a stable sort */
    char *label;            /* "field = value" */
    char *name;             /* "field", for continuation lines */
} Ann;

typedef struct Hex {
    const uint8_t *b;
    uint64_t size;
    Ann *a;                 /* pending annotations */
    size_t n;
    size_t cap;
    uint64_t seq;           /* annotations made so far */
    FILE *out;
    uint64_t pos;           /* bytes printed */
    uint64_t later;         /* no walk still to come annotates below this */
    size_t flush_at;        /* pending annotations that make a flush */
    bool oom;
    const char *gap;        /* label of bytes no annotation covers */
    /* Arena: the string table, when it is stored plainly. */
    const uint8_t *strtab;
    uint64_t strtab_size;
} Hex;

static void ann(Hex *h, uint64_t off, uint64_t len, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void ann(Hex *h, uint64_t off, uint64_t len, const char *name,
                const char *fmt, ...)
{
    char label[512];
    va_list ap;
    Ann *na;

    if (h->oom || !len || off >= h->size) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(label, sizeof(label), fmt, ap);
    va_end(ap);
    if (len > h->size - off) {
        len = h->size - off;
        snprintf(label + strlen(label), sizeof(label) - strlen(label),
                 " (cut short by the end of the input)");
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        na = realloc(h->a, h->cap * sizeof(*h->a));
        if (!na) {
            h->oom = true;
            return;
        }
        h->a = na;
    }
    na = &h->a[h->n];
    na->off = off;
    na->len = len;
    na->seq = h->seq++;
    na->label = strdup(label);
    na->name = strdup(name);
    if (!na->label || !na->name) {
        free(na->label);
        free(na->name);
        h->oom = true;
        return;
    }
    h->n++;
}

static int ann_cmp(const void *x, const void *y)
{
    const Ann *a = x, *b = y;

    if (a->off != b->off) {
        return a->off < b->off ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : 1;
}

/* ---- Printing ---------------------------------------------------------- */

static void print_line(FILE *out, uint64_t off, const uint8_t *p,
                       unsigned n, const char *label)
{
    unsigned i;

    fprintf(out, "%08" PRIx64 " ", off);
    for (i = 0; i < 16; i++) {
        if (i < n) {
            fprintf(out, " %02x", p[i]);
        } else {
            fputs("   ", out);
        }
    }
    fprintf(out, "  %s\n", label);
}

/* A region: its first line labelled, the others named with an offset. */
static void print_region(Hex *h, FILE *out, uint64_t off, uint64_t len,
                         uint64_t field_off, const char *label,
                         const char *name)
{
    uint64_t pos = 0;
    unsigned n;
    bool star = false;
    char cont[160];

    while (pos < len) {
        n = len - pos < 16 ? (unsigned)(len - pos) : 16;
        if (pos && n == 16 && pos >= 16 &&
            !memcmp(h->b + off + pos, h->b + off + pos - 16, 16) &&
            len - pos > 16) {
            if (!star) {
                fputs("*\n", out);
                star = true;
            }
            pos += 16;
            continue;
        }
        star = false;
        if (!pos && off == field_off) {
            print_line(out, off + pos, h->b + off + pos, n, label);
        } else {
            snprintf(cont, sizeof(cont), "%s[+0x%" PRIx64 "]", name,
                     off + pos - field_off);
            print_line(out, off + pos, h->b + off + pos, n, cont);
        }
        pos += n;
    }
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
    uint64_t i;

    for (i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static void print_gap(Hex *h, FILE *out, uint64_t off, uint64_t len)
{
    char label[128];

    snprintf(label, sizeof(label), "%s%s", h->gap,
             !strcmp(h->gap, "unclaimed (must be zero)") &&
             !all_zero(h->b + off, len) ? ": NOT ZERO" : "");
    print_region(h, out, off, len, off, label, "unclaimed");
}

/* Pending annotations that make a flush at first. */
#define HEX_FLUSH_MIN 65536u

/* Print what lies before annotation @a, then @a (clipped to the unprinted). */
static void print_ann(Hex *h, const Ann *a)
{
    uint64_t end = a->off + a->len, start;

    if (end <= h->pos) {
        return;                 /* overlapped by an earlier structure */
    }
    if (a->off > h->pos) {
        print_gap(h, h->out, h->pos, a->off - h->pos);
    }
    start = a->off > h->pos ? a->off : h->pos;
    print_region(h, h->out, start, end - start, a->off, a->label, a->name);
    h->pos = end;
}

/*
 * Print the pending annotations that start below @floor, in order: no
 * walk still to come annotates below it, so their place in the one sort
 * of all annotations is known.  The others stay pending.
 */
static void hex_flush(Hex *h, uint64_t floor)
{
    size_t i, k = 0;

    qsort(h->a, h->n, sizeof(*h->a), ann_cmp);
    for (i = 0; i < h->n && h->a[i].off < floor; i++) {
        print_ann(h, &h->a[i]);
        free(h->a[i].label);
        free(h->a[i].name);
    }
    for (; i < h->n; i++) {
        h->a[k++] = h->a[i];
    }
    h->n = k;
    /* A flush that leaves much pending waits for twice as much: sorting
     * what stays is paid for by what comes. */
    h->flush_at = 2 * k > HEX_FLUSH_MIN ? 2 * k : HEX_FLUSH_MIN;
}

/* A walk is at @here: nothing it or a later walk annotates lies below
 * min(@here, h->later). */
static void hex_floor(Hex *h, uint64_t here)
{
    if (h->n >= h->flush_at) {
        hex_flush(h, here < h->later ? here : h->later);
    }
}

/* ---- Values ------------------------------------------------------------ */

static uint64_t le(const Hex *h, uint64_t off, unsigned n)
{
    uint64_t v = 0;
    unsigned i;

    for (i = n; i-- > 0;) {
        v = (v << 8) | (off + i < h->size ? h->b[off + i] : 0);
    }
    return v;
}

static uint32_t be32(const Hex *h, uint64_t off)
{
    uint32_t v = 0;
    unsigned i;

    for (i = 0; i < 4; i++) {
        v = (v << 8) | (off + i < h->size ? h->b[off + i] : 0);
    }
    return v;
}

/* @len bytes at @p as a C-like quoted string, cut to fit @size. */
static void quote(char *buf, size_t size, const uint8_t *p, uint64_t len)
{
    size_t o = 0;
    uint64_t i;

    if (size < 8) {
        buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    for (i = 0; i < len && o + 8 < size; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            o += (size_t)snprintf(buf + o, size - o, "\\%c", p[i]);
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            buf[o++] = (char)p[i];
        } else if (p[i] == '\r') {
            o += (size_t)snprintf(buf + o, size - o, "\\r");
        } else if (p[i] == '\n') {
            o += (size_t)snprintf(buf + o, size - o, "\\n");
        } else {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", p[i]);
        }
    }
    if (i < len) {
        o += (size_t)snprintf(buf + o, size - o, "...");
    }
    snprintf(buf + o, size - o, "\"");
}

/* A string-table reference, resolved when it can be. */
static void strref(const Hex *h, char *buf, size_t size, uint64_t ref)
{
    uint32_t off = (uint32_t)le(h, ref, 4), len = (uint32_t)le(h, ref + 4, 4);
    char q[200];

    if (h->strtab && off < h->strtab_size && len < h->strtab_size - off) {
        quote(q, sizeof(q), h->strtab + off, len);
        snprintf(buf, size, "strtab+0x%x, %u bytes: %s", off, len, q);
    } else {
        snprintf(buf, size, "strtab+0x%x, %u bytes (outside the string "
                 "table)", off, len);
    }
}

/* ---- Arena ------------------------------------------------------------- */

typedef enum FieldKind {
    K_U,            /* unsigned decimal */
    K_HEX,          /* 0x... */
    K_SIZE,         /* decimal and hex */
    K_I32,          /* signed */
    K_STR,          /* string reference */
    K_RESERVED,     /* must be zero */
    K_OCT,          /* octal */
} FieldKind;

typedef struct Field {
    uint32_t off;
    uint32_t len;
    const char *name;
    FieldKind kind;
} Field;

/* Annotate one record with its field table. */
static void fields(Hex *h, uint64_t base, uint64_t rec_size,
                   const char *prefix, const Field *f, size_t nf,
                   const char *(*extra)(uint32_t, uint64_t))
{
    char name[96], value[300];
    const char *more;
    uint64_t v, used = 0;
    size_t i;

    for (i = 0; i < nf; i++) {
        snprintf(name, sizeof(name), "%s.%s", prefix, f[i].name);
        v = le(h, base + f[i].off, f[i].len);
        switch (f[i].kind) {
        case K_STR:
            strref(h, value, sizeof(value), base + f[i].off);
            break;
        case K_I32:
            snprintf(value, sizeof(value), "%d", (int32_t)(uint32_t)v);
            break;
        case K_HEX:
            snprintf(value, sizeof(value), "0x%" PRIx64, v);
            break;
        case K_SIZE:
            snprintf(value, sizeof(value), "%" PRIu64 " (0x%" PRIx64 ")", v,
                     v);
            break;
        case K_OCT:
            snprintf(value, sizeof(value), "0%" PRIo64, v);
            break;
        case K_RESERVED:
            snprintf(value, sizeof(value), "%s", v ? "NOT ZERO (reserved)" :
                     "0 (reserved)");
            break;
        default:
            snprintf(value, sizeof(value), "%" PRIu64, v);
            break;
        }
        more = extra ? extra(f[i].off, v) : NULL;
        ann(h, base + f[i].off, f[i].len, name, "%s = %s%s%s", name, value,
            more ? " " : "", more ? more : "");
        used = f[i].off + f[i].len;
    }
    if (rec_size > used) {
        snprintf(name, sizeof(name), "%s+0x%" PRIx64, prefix, used);
        ann(h, base + used, rec_size - used, name, "%s: fields appended by "
            "a newer writer (%" PRIu64 " bytes)", prefix, rec_size - used);
    }
}

/* The table entry of @field of wire struct @type. */
#define F(type, field, kind) \
    { offsetof(type, field), sizeof(((type *)0)->field), #field, kind }

static const Field header_fields[] = {
    F(CprsWireHeader, version_major, K_U),
    F(CprsWireHeader, version_minor, K_U),
    F(CprsWireHeader, header_size, K_U),
    F(CprsWireHeader, incompat_features, K_HEX),
    F(CprsWireHeader, compat_features, K_HEX),
    F(CprsWireHeader, arena_size, K_SIZE),
    F(CprsWireHeader, dir_offset, K_SIZE),
    F(CprsWireHeader, dir_count, K_U),
    F(CprsWireHeader, dir_entry_size, K_U),
    F(CprsWireHeader, generation, K_U),
    F(CprsWireHeader, created_ns, K_U),
    F(CprsWireHeader, mode, K_U),
    F(CprsWireHeader, writer_pid, K_U),
    F(CprsWireHeader, dir_crc32c, K_HEX),
    F(CprsWireHeader, header_crc32c, K_HEX),
    F(CprsWireHeader, build_id_size, K_U),
    F(CprsWireHeader, reserved0, K_RESERVED),
};

static const Field section_fields[] = {
    F(CprsWireSection, type, K_U),
    F(CprsWireSection, flags, K_HEX),
    F(CprsWireSection, offset, K_SIZE),
    F(CprsWireSection, stored_size, K_SIZE),
    F(CprsWireSection, raw_size, K_SIZE),
    F(CprsWireSection, record_count, K_U),
    F(CprsWireSection, record_size, K_U),
    F(CprsWireSection, crc32c, K_HEX),
    F(CprsWireSection, link, K_U),
};

static const Field fd_fields[] = {
    F(CprsWireFd, name, K_STR),
    F(CprsWireFd, id, K_I32),
    F(CprsWireFd, slot, K_U),
    F(CprsWireFd, fd, K_I32),
    F(CprsWireFd, kind, K_U),
    F(CprsWireFd, reserved0, K_RESERVED),
    F(CprsWireFd, flags, K_HEX),
    F(CprsWireFd, seals, K_HEX),
    F(CprsWireFd, dev, K_HEX),
    F(CprsWireFd, ino, K_U),
    F(CprsWireFd, st_mode, K_OCT),
    F(CprsWireFd, reserved1, K_RESERVED),
    F(CprsWireFd, size, K_SIZE),
};

static const Field ram_fields[] = {
    F(CprsWireRamBlock, idstr, K_STR),
    F(CprsWireRamBlock, fd_index, K_U),
    F(CprsWireRamBlock, flags, K_HEX),
    F(CprsWireRamBlock, fd_offset, K_SIZE),
    F(CprsWireRamBlock, used_length, K_SIZE),
    F(CprsWireRamBlock, max_length, K_SIZE),
    F(CprsWireRamBlock, page_size, K_SIZE),
    F(CprsWireRamBlock, align, K_SIZE),
    F(CprsWireRamBlock, range_first, K_U),
    F(CprsWireRamBlock, range_count, K_U),
};

static const Field gpa_fields[] = {
    F(CprsWireGpaRange, gpa, K_HEX),
    F(CprsWireGpaRange, size, K_SIZE),
    F(CprsWireGpaRange, block_offset, K_HEX),
};

static const Field vfio_fields[] = {
    F(CprsWireVfioDevice, name, K_STR),
    F(CprsWireVfioDevice, devid, K_I32),
    F(CprsWireVfioDevice, ioas_id, K_U),
    F(CprsWireVfioDevice, hwpt_id, K_U),
    F(CprsWireVfioDevice, flags, K_HEX),
};

static const Field devstate_fields[] = {
    F(CprsWireDevState, name, K_STR),
    F(CprsWireDevState, instance_id, K_U),
    F(CprsWireDevState, version_id, K_U),
    F(CprsWireDevState, flags, K_HEX),
    F(CprsWireDevState, reserved0, K_RESERVED),
    F(CprsWireDevState, data_off, K_HEX),
    F(CprsWireDevState, stored_size, K_SIZE),
    F(CprsWireDevState, raw_size, K_SIZE),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Decoded meaning of a few header and record values. */
static const char *header_extra(uint32_t off, uint64_t v)
{
    static char buf[64];

    if (off == offsetof(CprsWireHeader, mode)) {
        snprintf(buf, sizeof(buf), "(%s)", cprs_mode_name((uint32_t)v) ?
                 cprs_mode_name((uint32_t)v) : "unknown mode");
        return buf;
    }
    if (off == offsetof(CprsWireHeader, created_ns) && v) {
        time_str(buf + 1, sizeof(buf) - 2, v);
        buf[0] = '(';
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ")");
        return buf;
    }
    if (off == offsetof(CprsWireHeader, incompat_features) &&
        (v & CPRS_INCOMPAT_ZSTD)) {
        return "(zstd)";
    }
    return NULL;
}

static const char *section_extra(uint32_t off, uint64_t v)
{
    static char buf[64];
    const char *name;

    if (off == offsetof(CprsWireSection, type)) {
        name = cprs_section_type_name((uint32_t)v);
        snprintf(buf, sizeof(buf), "(%s)", name ? name : "unknown type");
        return buf;
    }
    if (off == offsetof(CprsWireSection, flags)) {
        snprintf(buf, sizeof(buf), "(%s%s%s)",
                 v & CPRS_SECTION_F_REQUIRED ? "required" : "skippable",
                 v & CPRS_SECTION_F_ZSTD ? ", zstd" : "",
                 v & ~(uint64_t)CPRS_SECTION_F_KNOWN ? ", unknown bits" : "");
        return buf;
    }
    return NULL;
}

static const char *fd_extra(uint32_t off, uint64_t v)
{
    static char buf[64];
    const char *name;

    if (off == offsetof(CprsWireFd, kind)) {
        name = cprs_fd_kind_name((uint32_t)v);
        snprintf(buf, sizeof(buf), "(%s)", name ? name : "unknown kind");
        return buf;
    }
    return NULL;
}

static const char *ram_extra(uint32_t off, uint64_t v)
{
    static char buf[32];

    if (off == offsetof(CprsWireRamBlock, flags)) {
        ram_flags_str(buf + 1, sizeof(buf) - 2, (uint32_t)v);
        buf[0] = '(';
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ")");
        return buf;
    }
    if (off == offsetof(CprsWireRamBlock, fd_index) && v == CPRS_NO_INDEX) {
        return "(none)";
    }
    return NULL;
}

static void hex_header(Hex *h, uint32_t hsize)
{
    char q[160];
    uint64_t n;

    quote(q, sizeof(q), h->b, h->size < 8 ? h->size : 8);
    ann(h, 0, CPRS_MAGIC_SIZE, "header.magic", "header.magic = %s%s", q,
        h->size >= 8 && !memcmp(h->b, CPRS_MAGIC, 8) ? "" : " (WRONG)");
    fields(h, 0, 0, "header", header_fields, N(header_fields),
           header_extra);
    n = le(h, offsetof(CprsWireHeader, build_id_size), 4);
    ann(h, offsetof(CprsWireHeader, build_id), CPRS_BUILD_ID_MAX,
        "header.build_id", "header.build_id: %" PRIu64 " bytes used of %u",
        n, CPRS_BUILD_ID_MAX);
    if (h->size > offsetof(CprsWireHeader, producer)) {
        n = h->size - offsetof(CprsWireHeader, producer);
        quote(q, sizeof(q), h->b + offsetof(CprsWireHeader, producer),
              strnlen((const char *)h->b + offsetof(CprsWireHeader, producer),
                      n < CPRS_PRODUCER_MAX ? n : CPRS_PRODUCER_MAX));
        ann(h, offsetof(CprsWireHeader, producer), CPRS_PRODUCER_MAX,
            "header.producer", "header.producer = %s", q);
    }
    if (hsize > CPRS_HEADER_V1_SIZE && hsize <= CPRS_MAX_HEADER_SIZE) {
        ann(h, CPRS_HEADER_V1_SIZE, hsize - CPRS_HEADER_V1_SIZE,
            "header+0xc0", "header: fields appended after v1.0 (%u bytes)",
            hsize - CPRS_HEADER_V1_SIZE);
    }
}

/* Each NUL-terminated string of the string table. */
static void hex_strtab(Hex *h, uint64_t off, uint64_t size)
{
    const uint8_t *p = h->b + off, *nul;
    char name[64], q[200];
    uint64_t pos = 0, len;

    h->strtab = p;
    h->strtab_size = size;
    while (pos < size) {
        hex_floor(h, off + pos);
        nul = memchr(p + pos, 0, size - pos);
        len = nul ? (uint64_t)(nul - (p + pos)) + 1 : size - pos;
        quote(q, sizeof(q), p + pos, nul ? len - 1 : len);
        snprintf(name, sizeof(name), "strtab+0x%" PRIx64, pos);
        ann(h, off + pos, len, name, "strtab+0x%" PRIx64 " = %s%s", pos, q,
            nul ? "" : " (NOT NUL-terminated)");
        pos += len;
    }
}

typedef struct Sec {
    uint32_t type;
    uint32_t flags;
    uint64_t off;
    uint64_t size;
    uint32_t count;
    uint32_t rec_size;
    uint32_t link;
    bool sane;              /* the bytes lie inside the input */
} Sec;

/* Records of one plain section, field by field. */
static void hex_records(Hex *h, const Sec *s, uint32_t idx, const Sec *secs,
                        uint32_t nsec)
{
    const char *what;
    const Field *f;
    size_t nf;
    const char *(*extra)(uint32_t, uint64_t) = NULL;
    char prefix[64];
    uint64_t i, n, rec, base;
    uint32_t min;

    switch (s->type) {
    case CPRS_SECTION_FDS:
        what = "fds", f = fd_fields, nf = N(fd_fields), extra = fd_extra;
        min = CPRS_FD_V1_SIZE;
        break;
    case CPRS_SECTION_RAMBLOCKS:
        what = "ramblocks", f = ram_fields, nf = N(ram_fields);
        extra = ram_extra, min = CPRS_RAMBLOCK_V1_SIZE;
        break;
    case CPRS_SECTION_GPA_RANGES:
        what = "gpa", f = gpa_fields, nf = N(gpa_fields);
        min = CPRS_GPA_RANGE_V1_SIZE;
        break;
    case CPRS_SECTION_VFIO_DEVICES:
        what = "vfio", f = vfio_fields, nf = N(vfio_fields);
        min = CPRS_VFIO_DEVICE_V1_SIZE;
        break;
    case CPRS_SECTION_DEVSTATE:
        what = "devstate", f = devstate_fields, nf = N(devstate_fields);
        min = CPRS_DEVSTATE_V1_SIZE;
        break;
    case CPRS_SECTION_INDEX: {
        const char *target = s->link < nsec ?
            cprs_section_type_name(secs[s->link].type) : NULL;

        n = s->size / CPRS_INDEX_SLOT_V1_SIZE;
        if (s->count < n) {
            n = s->count;
        }
        for (i = 0; i < n; i++) {
            base = s->off + i * CPRS_INDEX_SLOT_V1_SIZE;
            hex_floor(h, base);
            rec = le(h, base, 4);
            snprintf(prefix, sizeof(prefix), "index@%u[%" PRIu64 "]", idx,
                     i);
            if (!rec) {
                ann(h, base, 8, prefix, "%s: empty slot", prefix);
            } else {
                ann(h, base, 8, prefix, "%s: record = %" PRIu64 " (%s[%"
                    PRIu64 "]), hash = 0x%08" PRIx64, prefix, rec,
                    target ? target : "?", rec - 1, le(h, base + 4, 4));
            }
        }
        return;
    }
    default:
        return;
    }
    /* Records are record_size apart; a bad size still shows v1 fields. */
    rec = s->rec_size >= min ? s->rec_size : min;
    n = s->size / rec;
    if (s->count < n) {
        n = s->count;
    }
    for (i = 0; i < n; i++) {
        hex_floor(h, s->off + i * rec);
        snprintf(prefix, sizeof(prefix), "%s[%" PRIu64 "]", what, i);
        fields(h, s->off + i * rec, rec, prefix, f, nf, extra);
    }
}

/* Device-state payloads in the blob, from the plain DEVSTATE records. */
static void hex_blob(Hex *h, const Sec *blob, const Sec *ds)
{
    uint64_t i, n, rec, base, off, stored, flags;
    char name[64], q[120];
    uint32_t sref;

    if (!ds || !ds->sane || (ds->flags & CPRS_SECTION_F_ZSTD)) {
        ann(h, blob->off, blob->size, "blob", "blob: device-state payload "
            "bytes (%" PRIu64 ")", blob->size);
        return;
    }
    rec = ds->rec_size >= CPRS_DEVSTATE_V1_SIZE ? ds->rec_size :
          CPRS_DEVSTATE_V1_SIZE;
    n = ds->size / rec;
    if (ds->count < n) {
        n = ds->count;
    }
    for (i = 0; i < n; i++) {
        base = ds->off + i * rec;
        off = le(h, base + offsetof(CprsWireDevState, data_off), 8);
        stored = le(h, base + offsetof(CprsWireDevState, stored_size), 8);
        flags = le(h, base + offsetof(CprsWireDevState, flags), 4);
        sref = (uint32_t)le(h, base, 4);
        q[0] = '\0';
        if (h->strtab && sref < h->strtab_size) {
            quote(q, sizeof(q), h->strtab + sref,
                  strnlen((const char *)h->strtab + sref,
                          h->strtab_size - sref));
        }
        if (off > blob->size || stored > blob->size - off) {
            continue;
        }
        snprintf(name, sizeof(name), "devstate[%" PRIu64 "].payload", i);
        ann(h, blob->off + off, stored, name, "devstate[%" PRIu64 "] %s "
            "payload: %" PRIu64 " bytes%s", i, q, stored,
            flags & CPRS_DEVSTATE_F_ZSTD ? ", one zstd frame" : "");
    }
}

/* The first section before @i already walked whose bytes meet @i's. */
static int overlapped(const Sec *secs, uint32_t i, const bool *walked)
{
    uint32_t j;

    for (j = 0; j < i; j++) {
        if (walked[j] && secs[i].size &&
            secs[i].off < secs[j].off + secs[j].size &&
            secs[j].off < secs[i].off + secs[i].size) {
            return (int)j;
        }
    }
    return -1;
}

/*
 * The lowest offset the walks of sections @from and after may annotate:
 * those of the section walk, or (@strtabs) the plain string tables, one
 * of which the directory walk walks.
 */
static uint64_t walks_from(const Sec *secs, uint32_t count, uint32_t from,
                           bool strtabs)
{
    uint64_t low = UINT64_MAX;
    uint32_t j;
    bool plain;

    for (j = from; j < count; j++) {
        plain = secs[j].type == CPRS_SECTION_STRTAB &&
                !(secs[j].flags & CPRS_SECTION_F_ZSTD);
        if (secs[j].sane && secs[j].off < low && plain == strtabs) {
            low = secs[j].off;
        }
    }
    return low;
}

static void hex_arena(Hex *h)
{
    Sec secs[CPRS_MAX_SECTIONS];
    bool walked[CPRS_MAX_SECTIONS];
    const Sec *ds = NULL;
    uint64_t dir_off, entry, base, later, low;
    uint32_t hsize, count, esize, i;
    int j, st = -1;
    char prefix[32];
    const char *tname;

    h->gap = "unclaimed (must be zero)";
    hsize = (uint32_t)le(h, offsetof(CprsWireHeader, header_size), 4);
    hex_header(h, hsize);
    dir_off = le(h, offsetof(CprsWireHeader, dir_offset), 8);
    count = (uint32_t)le(h, offsetof(CprsWireHeader, dir_count), 4);
    esize = (uint32_t)le(h, offsetof(CprsWireHeader, dir_entry_size), 4);
    if (count > CPRS_MAX_SECTIONS || esize < CPRS_SECTION_V1_SIZE ||
        esize > CPRS_MAX_RECORD_SIZE || dir_off >= h->size) {
        return;
    }
    memset(secs, 0, sizeof(secs));
    memset(walked, 0, sizeof(walked));
    /* Every entry first: the walks below are placed by the later ones. */
    for (i = 0; i < count; i++) {
        entry = dir_off + (uint64_t)i * esize;
        secs[i].type = (uint32_t)le(h, entry, 4);
        secs[i].flags = (uint32_t)le(h, entry + 4, 4);
        secs[i].off = le(h, entry + 8, 8);
        secs[i].size = le(h, entry + 16, 8);
        secs[i].count = (uint32_t)le(h, entry + 32, 4);
        secs[i].rec_size = (uint32_t)le(h, entry + 36, 4);
        secs[i].link = (uint32_t)le(h, entry + 44, 4);
        secs[i].sane = secs[i].off < h->size &&
                       secs[i].size <= h->size - secs[i].off;
    }
    later = walks_from(secs, count, 0, false);
    low = walks_from(secs, count, 0, true);
    h->later = low < later ? low : later;
    for (i = 0; i < count; i++) {
        entry = dir_off + (uint64_t)i * esize;
        hex_floor(h, entry);
        snprintf(prefix, sizeof(prefix), "dir[%u]", i);
        fields(h, entry, esize, prefix, section_fields, N(section_fields),
               section_extra);
        if (secs[i].type == CPRS_SECTION_STRTAB && secs[i].sane &&
            !(secs[i].flags & CPRS_SECTION_F_ZSTD) && st < 0) {
            st = (int)i;
        }
        if (secs[i].type == CPRS_SECTION_DEVSTATE && !ds) {
            ds = &secs[i];
        }
    }
    /* The first plain string table, string by string: the record walks
     * name their strings through it.  Then every section walk. */
    if (st >= 0) {
        h->later = later;
        hex_strtab(h, secs[st].off, secs[st].size);
        walked[st] = secs[st].size != 0;
    }
    for (i = 0; i < count; i++) {
        const Sec *s = &secs[i];

        /* A plain string table was annotated string by string above. */
        if (!s->sane || (s->type == CPRS_SECTION_STRTAB &&
                         !(s->flags & CPRS_SECTION_F_ZSTD))) {
            continue;
        }
        h->later = walks_from(secs, count, i + 1, false);
        hex_floor(h, s->off);
        base = s->off;
        tname = cprs_section_type_name(s->type);
        snprintf(prefix, sizeof(prefix), "section[%u]", i);
        /*
         * Bytes another section already claimed are annotated once, as
         * one region: 64 sections over one range would otherwise each
         * be walked record by record (64 times the annotations).
         */
        j = overlapped(secs, i, walked);
        if (j >= 0) {
            ann(h, base, s->size, prefix, "section[%u] %s: %" PRIu64 " "
                "bytes overlapping section[%d] (not walked again)", i,
                tname ? tname : "(unknown type)", s->size, j);
            continue;
        }
        walked[i] = s->size != 0;
        if (s->flags & CPRS_SECTION_F_ZSTD) {
            ann(h, base, s->size, prefix, "section[%u] %s: one zstd frame, "
                "%" PRIu64 " bytes, %u records once decompressed", i,
                tname ? tname : "(unknown type)", s->size, s->count);
        } else if (s->type == CPRS_SECTION_BLOB) {
            hex_blob(h, s, ds);
        } else if (!tname) {
            ann(h, base, s->size, prefix, "section[%u]: unknown type %u, "
                "%" PRIu64 " bytes", i, s->type, s->size);
        } else {
            hex_records(h, s, i, secs, count);
        }
    }
}

/* ---- Legacy stream ----------------------------------------------------- */

/* One record of either list, from its marker at @off; returns its end. */
static uint64_t hex_legacy_rec(Hex *h, uint64_t off, const char *prefix,
                               bool vfio, uint32_t mode, const char *name)
{
    uint32_t namelen = be32(h, off + 1);
    uint64_t p = off + 5 + (uint64_t)namelen;
    char n[96], q[300];

    snprintf(n, sizeof(n), "%s.marker", prefix);
    ann(h, off, 1, n, "%s: marker 0x%02x (a record follows)", prefix,
        off < h->size ? h->b[off] : 0);
    snprintf(n, sizeof(n), "%s.namelen", prefix);
    ann(h, off + 1, 4, n, "%s.namelen = %u (be32, with the NUL)", prefix,
        namelen);
    quote(q, sizeof(q), (const uint8_t *)name, strlen(name));
    snprintf(n, sizeof(n), "%s.name", prefix);
    ann(h, off + 5, namelen, n, "%s.name = %s", prefix, q);
    if (vfio) {
        snprintf(n, sizeof(n), "%s.devid", prefix);
        ann(h, p, 4, n, "%s.devid = %d (be32)", prefix,
            (int32_t)be32(h, p));
        snprintf(n, sizeof(n), "%s.ioas_id", prefix);
        ann(h, p + 4, 4, n, "%s.ioas_id = %u (be32)", prefix,
            be32(h, p + 4));
        snprintf(n, sizeof(n), "%s.hwpt_id", prefix);
        ann(h, p + 8, 4, n, "%s.hwpt_id = %u (be32)", prefix,
            be32(h, p + 8));
        return p + 12;
    }
    snprintf(n, sizeof(n), "%s.id", prefix);
    ann(h, p, 4, n, "%s.id = %d (be32)", prefix, (int32_t)be32(h, p));
    snprintf(n, sizeof(n), "%s.fd", prefix);
    if (mode == CPRS_MODE_TRANSFER) {
        ann(h, p + 4, 1, n, "%s: 0x20 service byte (the fd came by "
            "SCM_RIGHTS with it)", prefix);
        return p + 5;
    }
    ann(h, p + 4, 4, n, "%s.fd = %d (be32, the sender's fd number)", prefix,
        (int32_t)be32(h, p + 4));
    return p + 8;
}

static void hex_legacy(Hex *h, const CprsLegacy *lg)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsVfioDeviceInfo vi;
    CprsFdInfo fi;
    char prefix[32];
    uint64_t off, end = 8, len;
    uint32_t i, n;

    h->gap = "not part of the stream";
    ann(h, 0, 4, "magic", "magic \"QCPR\" (be32 0x51435052)");
    ann(h, 4, 4, "version", "version = %u (be32)", be32(h, 4));
    if (!lg) {
        h->gap = "not decoded (the stream does not decode)";
        return;
    }
    cprs_legacy_get_info(lg, &li);
    n = cprs_legacy_fd_count(lg);
    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        if (cprs_legacy_fd_get(lg, i, &fi) ||
            cprs_legacy_fd_offset(lg, i, &off)) {
            continue;
        }
        /* The decoder reads on: records lie at rising offsets. */
        hex_floor(h, off);
        snprintf(prefix, sizeof(prefix), "fds[%u]", i);
        end = hex_legacy_rec(h, off, prefix, false, li.mode, fi.name);
    }
    ann(h, end, 1, "fds.end", "fds: end-of-list marker 0x00");
    end++;
    if (li.vfio_form == CPRS_LEGACY_VFIO_FULL ||
        li.vfio_form == CPRS_LEGACY_VFIO_STUB) {
        len = end + 1 < h->size ? h->b[end + 1] : 0;
        ann(h, end, 1, "subsection", "subsection: QEMU_VM_SUBSECTION 0x05");
        ann(h, end + 1, 1, "subsection.len", "subsection: name length = %"
            PRIu64 " (no NUL)", len);
        ann(h, end + 2, len, "subsection.name", "subsection.name = "
            "\"CprState/vfio devices\"");
        end += 2 + len;
        ann(h, end, 4, "subsection.version", "subsection.version_id = %u "
            "(be32)", be32(h, end));
        end += 4;
        if (li.vfio_form == CPRS_LEGACY_VFIO_FULL) {
            n = cprs_legacy_vfio_count(lg);
            for (i = 0; i < n; i++) {
                vi = CPRS_OPTS(CprsVfioDeviceInfo);
                if (cprs_legacy_vfio_get(lg, i, &vi) ||
                    cprs_legacy_vfio_offset(lg, i, &off)) {
                    continue;
                }
                hex_floor(h, off);
                snprintf(prefix, sizeof(prefix), "vfio[%u]", i);
                end = hex_legacy_rec(h, off, prefix, true, li.mode, vi.name);
            }
            ann(h, end, 1, "vfio.end", "vfio devices: end-of-list marker "
                "0x00");
        }
    }
    if (li.size < h->size) {
        ann(h, li.size, h->size - li.size, "trailing", "trailing bytes: "
            "QEMU never reads them (%" PRIu64 ")", h->size - li.size);
    }
}

void hex_dump(Dump *d, const Source *s)
{
    Hex h = { .b = s->bytes, .size = s->size, .gap = "", .out = d->out,
              .later = UINT64_MAX, .flush_at = HEX_FLUSH_MIN };
    bool arena = s->format == CPRS_DETECT_ARENA;

    fprintf(d->out, "%s, %zu bytes: annotated hex dump\n",
            arena ? "CPR State Arena" : "QEMU legacy CPR stream", s->size);
    fprintf(d->out, "Offset    Bytes%44sField\n", "");
    if (arena) {
        hex_arena(&h);
    } else {
        hex_legacy(&h, s->legacy);
    }
    /* Every annotation left, printed and freed. */
    hex_flush(&h, UINT64_MAX);
    if (h.pos < h.size) {
        print_gap(&h, d->out, h.pos, h.size - h.pos);
    }
    if (h.oom) {
        fprintf(d->out, "(out of memory: annotations incomplete)\n");
        d->errors++;
    }
    free(h.a);
}
