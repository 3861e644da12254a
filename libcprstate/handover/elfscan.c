/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * elfscan.c - what a cpr-exec target is, read from its ELF file
 * (spec/fail-safe.rst F2, F3): the capability note of libcprstate, the
 * libcprstate.so it needs, the marks of QEMU's own cpr code.
 *
 * The file is hostile: it is whatever a command line names, and it may
 * change while it is read.  Every header field is loaded once into a
 * local, every offset and size is checked against the bytes that exist
 * before anything is read, every loop is bounded by a limit and by the
 * bytes it walks, and the string search is one linear pass per pattern
 * over bounded chunks.  A malformed file is an answer ("uncertain"), not
 * an error: only allocation and I/O failures are.
 *
 * Both ELF classes and both byte orders are read, so that a target of
 * another kind is recognised as such rather than misread.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-failsafe.h"

#define EI_NIDENT_       16u
#define ELFCLASS32_      1u
#define ELFCLASS64_      2u
#define ELFDATA2LSB_     1u
#define ELFDATA2MSB_     2u
#define ET_EXEC_         2u
#define ET_DYN_          3u
#define PT_LOAD_         1u
#define PT_DYNAMIC_      2u
#define PT_NOTE_         4u
#define PF_X_            1u
#define DT_NULL_         0
#define DT_NEEDED_       1
#define DT_STRTAB_       5
#define DT_STRSZ_        10
#define DT_RPATH_        15
#define DT_RUNPATH_      29

/* Limits of F2.3: beyond them the file is "malformed", i.e. uncertain. */
#define MAX_PHNUM        1024u
#define MAX_NOTE_SEG     (UINT64_C(1) << 20)
#define MAX_DYN_SEG      (UINT64_C(1) << 20)
#define MAX_NEEDED       1024u
#define SCAN_CHUNK       (UINT64_C(1) << 20)

/* ---- Reading ----------------------------------------------------------- */

int cprs_elf_read(const CprsElfSrc *s, uint64_t off, void *dst,
                    size_t len)
{
    uint8_t *p = dst;
    size_t done = 0;
    ssize_t n;

    if (!cprs_range_ok(s->size, off, len)) {
        return -EBADMSG;
    }
    CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, len);
    if (s->fd < 0) {
        memcpy(dst, s->buf + off, len);
        return 0;
    }
    while (done < len) {
        n = pread(s->fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            /* The file shrank under us: as if it had been short. */
            return -EBADMSG;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Fields in the byte order of the file. */
static uint64_t rd(const uint8_t *p, unsigned width, bool be)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < width; i++) {
        v |= (uint64_t)p[be ? width - 1 - i : i] << (8 * i);
    }
    return v;
}

/* The class and byte order this library was built for. */
static uint8_t host_class(void)
{
    return sizeof(void *) == 8 ? ELFCLASS64_ : ELFCLASS32_;
}

static uint8_t host_data(void)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return ELFDATA2MSB_;
#else
    return ELFDATA2LSB_;
#endif
}

/* e_machine of the running executable; 0 unknown. */
static uint16_t host_machine(void)
{
    uint8_t h[20];
    struct stat st;
    CprsElfSrc self;
    int fd = open("/proc/self/exe",
                  O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    uint16_t m = 0;

    if (fd < 0) {
        return 0;
    }
    self = (CprsElfSrc) { .fd = fd, .size = sizeof(h) };
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) &&
        !cprs_elf_read(&self, 0, h, sizeof(h)) &&
        !memcmp(h, "\x7f" "ELF", 4)) {
        m = (uint16_t)rd(h + 18, 2, h[5] == ELFDATA2MSB_);
    }
    close(fd);
    return m;
}

/* One program header, whatever the class. */
typedef struct Phdr {
    uint32_t type;
    uint32_t flags;
    uint64_t offset;
    uint64_t vaddr;
    uint64_t filesz;
    uint64_t align;
} Phdr;

typedef struct Elf {
    const CprsElfSrc *src;
    bool be;
    bool is64;
    uint32_t phnum;
    Phdr *ph;
} Elf;

/* ---- Notes (F3.1) ------------------------------------------------------ */

static void merge_caps(CprsElfScan *out, const CprsCaps *c)
{
    CprsCaps *m = &out->caps;

    if (!out->n_notes++) {
        *m = *c;
        return;
    }
    /* Two notes (two copies of the library): what both read (F3.5). */
    if (m->arena_major != c->arena_major) {
        out->flags |= CPRS_ELF_F_CONFLICT;
    }
    if (c->arena_minor < m->arena_minor) {
        m->arena_minor = c->arena_minor;
    }
    if (c->lib_version < m->lib_version) {
        m->lib_version = c->lib_version;
        memcpy(m->producer, c->producer, sizeof(m->producer));
    }
    m->arena_incompat &= c->arena_incompat;
    m->modes &= c->modes;
    m->legacy_forms &= c->legacy_forms;
    m->flags &= c->flags;
}

/* Walk the notes of one PT_NOTE segment held in @buf. */
static void scan_notes(const uint8_t *buf, uint64_t len, bool be,
                       uint64_t align, CprsElfScan *out)
{
    uint64_t off = 0, namesz, descsz, type, name_off, desc_off, next;
    const char *why;
    CprsCaps caps;
    int ret;

    /* Notes are padded to 4 bytes, or to 8 in segments aligned so. */
    align = align == 8 ? 8 : 4;
    while (len - off >= 12) {
        CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, 12);
        namesz = rd(buf + off, 4, be);
        descsz = rd(buf + off + 4, 4, be);
        type = rd(buf + off + 8, 4, be);
        /* Each step checked against the bytes left: nothing overflows. */
        name_off = off + 12;
        if (namesz > len - name_off) {
            return;
        }
        desc_off = name_off + ((namesz + align - 1) & ~(align - 1));
        if (desc_off > len || descsz > len - desc_off) {
            return;
        }
        next = desc_off + ((descsz + align - 1) & ~(align - 1));
        if (namesz == CPRS_NOTE_NAME_SIZE && type == CPRS_NOTE_TYPE_CAPS &&
            !memcmp(buf + name_off, CPRS_NOTE_NAME, CPRS_NOTE_NAME_SIZE)) {
            ret = cprs_caps_decode(buf + desc_off, descsz, &caps, &why);
            if (!ret) {
                out->flags |= CPRS_ELF_F_NOTE;
                merge_caps(out, &caps);
            } else {
                out->flags |= ret == -EPROTONOSUPPORT ?
                              CPRS_ELF_F_NEWER_NOTE : CPRS_ELF_F_BAD_NOTE;
                out->why = why;
            }
        }
        if (next >= len) {
            return;
        }
        off = next;
    }
}

/* A range of file bytes. */
typedef struct Range {
    uint64_t off;
    uint64_t len;
} Range;

static int range_cmp(const void *a, const void *b)
{
    const Range *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

static int read_notes(const Elf *e, CprsElfScan *out)
{
    Range *r;
    uint8_t *buf;
    uint32_t i, n = 0;
    int ret = 0;

    r = calloc(e->phnum ? e->phnum : 1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(e->phnum * sizeof(*r));
    for (i = 0; i < e->phnum; i++) {
        const Phdr *p = &e->ph[i];

        if (p->type != PT_NOTE_ || !p->filesz) {
            continue;
        }
        if (p->filesz > MAX_NOTE_SEG) {
            out->flags |= CPRS_ELF_F_MALFORMED;
            out->why = "a PT_NOTE segment is larger than 1 MiB";
            continue;
        }
        if (!cprs_range_ok(e->src->size, p->offset, p->filesz)) {
            out->flags |= CPRS_ELF_F_MALFORMED;
            out->why = "a PT_NOTE segment lies outside the file";
            continue;
        }
        r[n++] = (Range) { p->offset, p->filesz };
    }
    /*
     * Segments that share bytes would have them read and walked once per
     * segment (F2.3): a linker never lays notes out so; malformed.
     */
    qsort(r, n, sizeof(*r), range_cmp);
    CPRS_WORK_ADD(CPRS_WORK_PROBES, n);
    for (i = 1; i < n; i++) {
        if (r[i].off - r[i - 1].off < r[i - 1].len) {
            out->flags |= CPRS_ELF_F_MALFORMED;
            out->why = "PT_NOTE segments overlap";
            n = 0;
            break;
        }
    }
    for (i = 0; i < e->phnum && n && !ret; i++) {
        const Phdr *p = &e->ph[i];

        if (p->type != PT_NOTE_ || !p->filesz || p->filesz > MAX_NOTE_SEG ||
            !cprs_range_ok(e->src->size, p->offset, p->filesz)) {
            continue;
        }
        buf = malloc(p->filesz);
        if (!buf) {
            ret = -ENOMEM;
            break;
        }
        CPRS_WORK_ALLOC(p->filesz);
        ret = cprs_elf_read(e->src, p->offset, buf, p->filesz);
        if (!ret) {
            scan_notes(buf, p->filesz, e->be, p->align, out);
        }
        free(buf);
        if (ret == -EBADMSG) {
            ret = 0;
        }
    }
    free(r);
    return ret;
}

/* ---- Dynamic section (F2.5) -------------------------------------------- */

/* File offset of virtual address @va, through the PT_LOAD segments. */
static bool va_to_off(const Elf *e, uint64_t va, uint64_t *ret_off,
                      uint64_t *ret_avail)
{
    uint32_t i;

    for (i = 0; i < e->phnum; i++) {
        const Phdr *p = &e->ph[i];

        if (p->type == PT_LOAD_ && va >= p->vaddr &&
            va - p->vaddr < p->filesz) {
            *ret_off = p->offset + (va - p->vaddr);
            *ret_avail = p->filesz - (va - p->vaddr);
            return true;
        }
    }
    return false;
}

/*
 * The NUL-terminated string at @off of the dynamic string table, into
 * @dst (@size bytes): false if it lies outside or is too long.
 */
static bool dyn_string(const Elf *e, uint64_t tab, uint64_t tabsz,
                       uint64_t off, char *dst, size_t size)
{
    uint64_t foff, avail, n;

    if (off >= tabsz || !va_to_off(e, tab, &foff, &avail) ||
        !cprs_add_ok(foff, off, &foff) || off >= avail) {
        return false;
    }
    n = tabsz - off;
    if (avail - off < n) {
        n = avail - off;
    }
    if (n > size) {
        n = size;
    }
    if (cprs_elf_read(e->src, foff, dst, (size_t)n)) {
        return false;
    }
    /* Only a string whose NUL was read counts. */
    return memchr(dst, '\0', (size_t)n) != NULL;
}

static int read_dynamic(const Elf *e, CprsElfScan *out)
{
    uint64_t needed[MAX_NEEDED], tab = 0, tabsz = 0, rpath = UINT64_MAX;
    uint64_t runpath = UINT64_MAX, off, tag, val, entsz;
    uint32_t i, n_needed = 0;
    uint8_t *buf;
    char name[256];
    const Phdr *p = NULL;
    int ret;

    for (i = 0; i < e->phnum; i++) {
        if (e->ph[i].type == PT_DYNAMIC_) {
            p = &e->ph[i];
            break;
        }
    }
    if (!p) {
        return 0;
    }
    out->flags |= CPRS_ELF_F_DYNAMIC;
    if (!p->filesz) {
        return 0;
    }
    if (p->filesz > MAX_DYN_SEG ||
        !cprs_range_ok(e->src->size, p->offset, p->filesz)) {
        out->flags |= CPRS_ELF_F_MALFORMED;
        out->why = "the PT_DYNAMIC segment lies outside the file";
        return 0;
    }
    buf = malloc(p->filesz);
    if (!buf) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(p->filesz);
    ret = cprs_elf_read(e->src, p->offset, buf, p->filesz);
    if (ret) {
        free(buf);
        return ret == -EBADMSG ? 0 : ret;
    }
    entsz = e->is64 ? 16 : 8;
    for (off = 0; p->filesz - off >= entsz; off += entsz) {
        CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, entsz);
        tag = rd(buf + off, e->is64 ? 8 : 4, e->be);
        val = rd(buf + off + entsz / 2, e->is64 ? 8 : 4, e->be);
        if (tag == DT_NULL_) {
            break;
        }
        switch (tag) {
        case DT_NEEDED_:
            if (n_needed < MAX_NEEDED) {
                needed[n_needed++] = val;
            }
            break;
        case DT_STRTAB_:
            tab = val;
            break;
        case DT_STRSZ_:
            tabsz = val;
            break;
        case DT_RPATH_:
            rpath = val;
            break;
        case DT_RUNPATH_:
            runpath = val;
            break;
        }
    }
    free(buf);
    for (i = 0; i < n_needed; i++) {
        if (!dyn_string(e, tab, tabsz, needed[i], name, sizeof(name))) {
            continue;
        }
        /* spec F2.5: the soname libcprstate.so.N (any N). */
        if (!strncmp(name, "libcprstate.so", 14)) {
            out->flags |= CPRS_ELF_F_NEEDS_LIB;
            memcpy(out->needed, name, sizeof(out->needed));
            break;
        }
    }
    if (rpath != UINT64_MAX &&
        !dyn_string(e, tab, tabsz, rpath, out->rpath, sizeof(out->rpath))) {
        out->rpath[0] = '\0';
    }
    if (runpath != UINT64_MAX &&
        !dyn_string(e, tab, tabsz, runpath, out->runpath,
                    sizeof(out->runpath))) {
        out->runpath[0] = '\0';
    }
    return 0;
}

/* ---- Marks (F2.4) ------------------------------------------------------ */

/*
 * The texts searched, kept in one array with no NUL between them, so
 * that this object (linked into every program that inspects targets)
 * holds none of QEMU's marks as a whole string.  QEMU's marks match with
 * their NUL, the last one (this library's own name) anywhere.
 */
static const char mark_text[] =
    "QEMU_CPR_EXEC_STATE|CprState/vfio devices|cpr vfio device|cpr fd|"
    "libcprstate|";

static const struct {
    uint8_t off;
    uint8_t len;                /* without the NUL */
    bool nul;                   /* matched with its NUL: whole strings */
    uint32_t bit;
} marks[] = {
    { 0, 19, true, CPRS_MARK_EXEC_STATE },
    { 20, 21, true, CPRS_MARK_VFIO_SUBSEC },
    { 42, 15, true, CPRS_MARK_VFIO_DEVICE },
    { 58, 6, true, CPRS_MARK_CPR_FD },
    { 65, 11, false, CPRS_MARK_OURS },
};
#define N_MARKS (sizeof(marks) / sizeof(marks[0]))
/* The longest pattern, with its NUL: a chunk keeps one byte less. */
#define MARK_MAX 22u
#define MARK_CARRY (MARK_MAX - 1)

/*
 * A mark matches with its NUL, wherever it starts: the linker may store
 * a literal as the tail of a longer one.  A missed mark could make a
 * build with iommufd look like one without (F2.4), so the match errs on
 * the side of finding it.
 */
static void find_marks(const uint8_t *p, size_t n, uint32_t *found)
{
    char pat[MARK_MAX];
    size_t i;

    for (i = 0; i < N_MARKS; i++) {
        if (*found & marks[i].bit) {
            continue;
        }
        memcpy(pat, mark_text + marks[i].off, marks[i].len);
        pat[marks[i].len] = '\0';
        /* memmem() is linear (two-way): one pass per pattern. */
        if (memmem(p, n, pat, marks[i].len + marks[i].nul)) {
            *found |= marks[i].bit;
        }
        CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, n);
    }
}

/*
 * Scan one file range in chunks, each byte read once: the last
 * MARK_CARRY bytes of a chunk are searched again with the next, so that
 * a mark across two chunks is seen whole.  @chunk holds SCAN_CHUNK +
 * MARK_CARRY bytes.
 */
static int scan_range(const CprsElfSrc *s, uint64_t off, uint64_t len,
                      uint8_t *chunk, uint32_t *found)
{
    uint64_t pos = 0, n;
    size_t carry = 0;
    int ret;

    while (pos < len && *found != CPRS_MARK_ALL) {
        n = len - pos;
        if (n > SCAN_CHUNK) {
            n = SCAN_CHUNK;
        }
        ret = cprs_elf_read(s, off + pos, chunk + carry, (size_t)n);
        if (ret) {
            return ret;
        }
        find_marks(chunk, carry + (size_t)n, found);
        pos += n;
        if (carry + n > MARK_CARRY) {
            memmove(chunk, chunk + carry + n - MARK_CARRY, MARK_CARRY);
            carry = MARK_CARRY;
        } else {
            carry += (size_t)n;
        }
    }
    return 0;
}

static int read_marks(const Elf *e, CprsElfScan *out)
{
    uint64_t total = 0, end;
    uint32_t i, n = 0, m;
    bool any_data = false;
    uint8_t *chunk = NULL;
    Range *r;
    int ret = 0;

    r = calloc(e->phnum ? e->phnum : 1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(e->phnum * sizeof(*r));
    /* Read-only data first; text too only when nothing else exists. */
    for (i = 0; i < e->phnum; i++) {
        any_data |= e->ph[i].type == PT_LOAD_ && !(e->ph[i].flags & PF_X_);
    }
    for (i = 0; i < e->phnum; i++) {
        const Phdr *p = &e->ph[i];

        if (p->type != PT_LOAD_ || (any_data && (p->flags & PF_X_)) ||
            !p->filesz) {
            continue;
        }
        if (!cprs_range_ok(e->src->size, p->offset, p->filesz)) {
            out->flags |= CPRS_ELF_F_MALFORMED;
            out->why = "a PT_LOAD segment lies outside the file";
            continue;
        }
        r[n++] = (Range) { p->offset, p->filesz };
    }
    /* Overlapping segments merged: each byte of the file once (F2.4). */
    qsort(r, n, sizeof(*r), range_cmp);
    CPRS_WORK_ADD(CPRS_WORK_PROBES, n);
    for (i = 0, m = 0; i < n; i++) {
        /* In the file, hence no overflow: off + len <= size. */
        if (m && r[i].off <= r[m - 1].off + r[m - 1].len) {
            end = r[i].off + r[i].len;
            if (end > r[m - 1].off + r[m - 1].len) {
                r[m - 1].len = end - r[m - 1].off;
            }
        } else {
            r[m++] = r[i];
        }
    }
    for (i = 0; i < m; i++) {
        total += r[i].len;
    }
    /* Too much to look through: said before a byte is read. */
    if (total > CPRS_TARGET_MAX_SCAN) {
        out->flags |= CPRS_ELF_F_SCAN_CUT;
        free(r);
        return 0;
    }
    if (m) {
        chunk = malloc(SCAN_CHUNK + MARK_CARRY);
        if (!chunk) {
            free(r);
            return -ENOMEM;
        }
        CPRS_WORK_ALLOC(SCAN_CHUNK + MARK_CARRY);
    }
    for (i = 0; i < m && !ret; i++) {
        ret = scan_range(e->src, r[i].off, r[i].len, chunk, &out->marks);
    }
    free(chunk);
    free(r);
    if (ret == -EBADMSG) {
        out->flags |= CPRS_ELF_F_MALFORMED;
        out->why = "the file shrank while it was read";
        return 0;
    }
    return ret;
}

/* ---- Headers (F2.3) ---------------------------------------------------- */

static int read_phdrs(Elf *e, uint64_t phoff, uint32_t phentsize,
                      CprsElfScan *out)
{
    const char *why = NULL;
    uint64_t size = 0;
    uint8_t *buf;
    uint32_t i;
    int ret;

    if (!e->phnum) {
        return 0;
    }
    if (phentsize != (e->is64 ? 56u : 32u)) {
        why = "e_phentsize is not the size of a program header";
    } else if (e->phnum > MAX_PHNUM) {
        why = "more than 1024 program headers";
    } else if (!cprs_mul_ok(e->phnum, phentsize, &size) ||
               !cprs_range_ok(e->src->size, phoff, size)) {
        why = "the program headers lie outside the file";
    }
    if (why) {
        out->flags |= CPRS_ELF_F_MALFORMED;
        out->why = why;
        e->phnum = 0;
        return 0;
    }
    buf = malloc(size);
    e->ph = calloc(e->phnum, sizeof(*e->ph));
    if (!buf || !e->ph) {
        free(buf);
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(size + e->phnum * sizeof(*e->ph));
    ret = cprs_elf_read(e->src, phoff, buf, size);
    if (ret) {
        free(buf);
        e->phnum = 0;
        if (ret == -EBADMSG) {
            out->flags |= CPRS_ELF_F_MALFORMED;
            out->why = "the file ends inside its program headers";
            return 0;
        }
        return ret;
    }
    for (i = 0; i < e->phnum; i++) {
        const uint8_t *q = buf + (size_t)i * phentsize;
        Phdr *p = &e->ph[i];

        p->type = (uint32_t)rd(q, 4, e->be);
        if (e->is64) {
            p->flags = (uint32_t)rd(q + 4, 4, e->be);
            p->offset = rd(q + 8, 8, e->be);
            p->vaddr = rd(q + 16, 8, e->be);
            p->filesz = rd(q + 32, 8, e->be);
            p->align = rd(q + 48, 8, e->be);
        } else {
            p->offset = rd(q + 4, 4, e->be);
            p->vaddr = rd(q + 8, 4, e->be);
            p->filesz = rd(q + 16, 4, e->be);
            p->flags = (uint32_t)rd(q + 24, 4, e->be);
            p->align = rd(q + 28, 4, e->be);
        }
    }
    free(buf);
    return 0;
}

int cprs_elf_scan(const CprsElfSrc *src, uint32_t flags, CprsElfScan *ret)
{
    uint8_t h[64];
    uint64_t phoff;
    uint32_t phentsize;
    uint16_t type, machine, host;
    Elf e = { .src = src };
    int r;

    memset(ret, 0, sizeof(*ret));
    r = cprs_elf_read(src, 0, h, 52);
    if (r) {
        ret->flags |= CPRS_ELF_F_MALFORMED;
        ret->why = "shorter than an ELF header";
        return r == -EBADMSG ? 0 : r;
    }
    if (memcmp(h, "\x7f" "ELF", 4) || (h[4] != ELFCLASS32_ &&
        h[4] != ELFCLASS64_) || (h[5] != ELFDATA2LSB_ &&
        h[5] != ELFDATA2MSB_) || h[6] != 1) {
        ret->flags |= CPRS_ELF_F_MALFORMED;
        ret->why = "not a valid ELF header";
        return 0;
    }
    e.is64 = h[4] == ELFCLASS64_;
    e.be = h[5] == ELFDATA2MSB_;
    if (e.is64 && cprs_elf_read(src, 52, h + 52, 12)) {
        ret->flags |= CPRS_ELF_F_MALFORMED;
        ret->why = "shorter than an ELF header";
        return 0;
    }
    ret->ei_class = h[4];
    ret->ei_data = h[5];
    type = (uint16_t)rd(h + 16, 2, e.be);
    machine = (uint16_t)rd(h + 18, 2, e.be);
    ret->machine = machine;
    if (type != ET_EXEC_ && type != ET_DYN_) {
        ret->flags |= CPRS_ELF_F_MALFORMED;
        ret->why = "an ELF file that is neither an executable nor a "
                   "shared object";
        return 0;
    }
    ret->flags |= CPRS_ELF_F_ELF;
    host = host_machine();
    if (h[4] != host_class() || h[5] != host_data() ||
        (host && machine != host)) {
        /* Runs elsewhere, or through binfmt_misc: not for us to read. */
        ret->flags |= CPRS_ELF_F_FOREIGN;
        ret->why = "an ELF file for another machine";
        return 0;
    }
    phoff = e.is64 ? rd(h + 32, 8, e.be) : rd(h + 28, 4, e.be);
    phentsize = (uint32_t)rd(h + (e.is64 ? 54 : 42), 2, e.be);
    e.phnum = (uint32_t)rd(h + (e.is64 ? 56 : 44), 2, e.be);
    r = read_phdrs(&e, phoff, phentsize, ret);
    if (!r) {
        r = read_notes(&e, ret);
    }
    if (!r) {
        r = read_dynamic(&e, ret);
    }
    if (!r && !(flags & CPRS_ELF_SCAN_NO_MARKS) &&
        !(ret->flags & (CPRS_ELF_F_NOTE | CPRS_ELF_F_NEEDS_LIB))) {
        r = read_marks(&e, ret);
    }
    free(e.ph);
    return r;
}

/* ---- The note's descriptor (F3.2, F3.3) -------------------------------- */

int cprs_caps_decode(const void *desc, size_t size, CprsCaps *ret_caps,
                     const char **ret_why)
{
    CprsWireCapsNote w;
    CprsCaps c = { 0 };
    bool newer;
    size_t i, nul;

    if (size < CPRS_CAPS_NOTE_V1_SIZE) {
        *ret_why = "the capability note is shorter than its version 1.0";
        return -EBADMSG;
    }
    /* Read once into a local; validate and use only the local. */
    memcpy(&w, desc, sizeof(w));
    c.version_major = cprs_le16_get(&w.version_major);
    c.version_minor = cprs_le16_get(&w.version_minor);
    if (c.version_major != CPRS_CAPS_VERSION_MAJOR) {
        *ret_why = c.version_major ? "a capability note of a newer major "
                   "version" : "a capability note of version 0";
        return c.version_major ? -EPROTONOSUPPORT : -EBADMSG;
    }
    newer = c.version_minor > CPRS_CAPS_VERSION_MINOR;
    if (cprs_le32_get(&w.desc_size) != size || size > CPRS_MAX_RECORD_SIZE ||
        (!newer && size != CPRS_CAPS_NOTE_V1_SIZE) || size % 4) {
        *ret_why = "the capability note's desc_size is wrong";
        return -EBADMSG;
    }
    c.lib_version = cprs_le32_get(&w.lib_version);
    c.arena_major = cprs_le16_get(&w.arena_major);
    c.arena_minor = cprs_le16_get(&w.arena_minor);
    c.arena_incompat = cprs_le64_get(&w.arena_incompat);
    c.modes = cprs_le32_get(&w.modes);
    c.legacy_forms = cprs_le32_get(&w.legacy_forms);
    c.flags = cprs_le32_get(&w.flags);
    /* spec F3.3: unknown bits and reserved fields, as the arena's 8.4. */
    if (!newer && (cprs_le32_get(&w.reserved0) ||
                   (c.modes & ~CPRS_CAPS_MODES_KNOWN) ||
                   (c.legacy_forms & ~CPRS_CAPS_FORMS_KNOWN) ||
                   (c.flags & ~CPRS_CAPS_F_KNOWN))) {
        *ret_why = "the capability note has unknown bits";
        return -EBADMSG;
    }
    c.modes &= CPRS_CAPS_MODES_KNOWN;
    c.legacy_forms &= CPRS_CAPS_FORMS_KNOWN;
    c.flags &= CPRS_CAPS_F_KNOWN;
    if (!c.arena_major && c.arena_minor) {
        *ret_why = "the capability note reads no arena but names a minor";
        return -EBADMSG;
    }
    /* The producer: printable text, a NUL, zeros (as arena 3.15). */
    nul = sizeof(w.producer);
    for (i = 0; i < sizeof(w.producer); i++) {
        if (nul == sizeof(w.producer) && !w.producer[i]) {
            nul = i;
        } else if (nul == sizeof(w.producer) ?
                   !cprs_name_char_ok((uint8_t)w.producer[i]) :
                   w.producer[i] != 0) {
            *ret_why = "the capability note's producer is not printable "
                       "text and zeros";
            return -EBADMSG;
        }
    }
    if (nul == sizeof(w.producer)) {
        *ret_why = "the capability note's producer has no NUL";
        return -EBADMSG;
    }
    memcpy(c.producer, w.producer, sizeof(c.producer));
    *ret_caps = c;
    *ret_why = NULL;
    return 0;
}
