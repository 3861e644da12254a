/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-preflight.c - pre-flight of a live update (spec/fail-safe.rst F2,
 * F3, F6): the ELF reader on hostile images, the classification of real
 * binaries (libcprstate dynamic and static, stock QEMU stand-ins with and
 * without iommufd, forged notes, scripts, plain programs), the note read
 * again with libelf and compared, execvp's search, the plan of every
 * class and policy, the save that re-checks its plan, exec through the
 * inspected file and its refusals, the cpr-transfer peer, and cprdump
 * target's verdicts and exit codes.
 */
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cprs-failsafe.h"
#include "helpers.h"
#include "inspect.h"

/* ---- Fixtures ---------------------------------------------------------- */

static const char *fixture(const char *name)
{
    static char path[8][4096];
    static int next;
    char *p = path[next++ % 8];

    snprintf(p, 4096, "%s/tests/%s", th_build_root(), name);
    return p;
}

static const char *tmp_dir(void)
{
    static char dir[1024];

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/preflight-XXXXXX", th_build_root());
        assert_non_null(mkdtemp(dir));
    }
    return dir;
}

static char *tmp_file(const char *name, const char *text, mode_t mode)
{
    static char path[8][4096];
    static int next;
    char *p = path[next++ % 8];

    snprintf(p, 4096, "%s/%s", tmp_dir(), name);
    unlink(p);
    th_write_file(p, text, strlen(text));
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t size;
    uint8_t *buf = th_read_file(from, &size);

    unlink(to);
    th_write_file(to, buf, size);
    assert_int_equal(chmod(to, mode), 0);
    free(buf);
}

static CprsTarget *open_target(const char *path, CprsTargetInfo *ti)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTarget *t = NULL;

    if (cprs_target_open_path(path, NULL, &d, &t)) {
        fail_msg("%s: pre-flight failed: %s", path, d.reason);
    }
    *ti = CPRS_OPTS(CprsTargetInfo);
    assert_int_equal(cprs_target_get_info(t, ti), 0);
    return t;
}

/* ---- The ELF reader on images built here (F2.3, F3.1) ------------------ */

/* This host's ELF machine, from our own executable. */
static uint16_t own_machine(void)
{
    Elf64_Ehdr h;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    return h.e_machine;
}

typedef struct Seg {
    uint32_t type;
    uint32_t flags;
    const void *data;
    size_t len;
} Seg;

/* An ELF64 image: header, program headers, each segment's bytes. */
static uint8_t *make_elf(const Seg *segs, int n, size_t pad, size_t *ret)
{
    size_t size = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr), off;
    Elf64_Ehdr *h;
    Elf64_Phdr *ph;
    uint8_t *buf;
    int i;

    for (i = 0; i < n; i++) {
        size += (segs[i].len + 7) & ~(size_t)7;
    }
    size += pad;
    buf = calloc(1, size);
    assert_non_null(buf);
    h = (Elf64_Ehdr *)buf;
    memcpy(h->e_ident, ELFMAG, SELFMAG);
    h->e_ident[EI_CLASS] = ELFCLASS64;
    h->e_ident[EI_DATA] = ELFDATA2LSB;
    h->e_ident[EI_VERSION] = EV_CURRENT;
    h->e_type = ET_DYN;
    h->e_machine = own_machine();
    h->e_version = EV_CURRENT;
    h->e_phoff = sizeof(*h);
    h->e_ehsize = sizeof(*h);
    h->e_phentsize = sizeof(Elf64_Phdr);
    h->e_phnum = (uint16_t)n;
    off = sizeof(*h) + n * sizeof(Elf64_Phdr);
    for (i = 0; i < n; i++) {
        ph = (Elf64_Phdr *)(buf + sizeof(*h)) + i;
        ph->p_type = segs[i].type;
        ph->p_flags = segs[i].flags;
        ph->p_offset = off;
        ph->p_vaddr = off;
        ph->p_filesz = segs[i].len;
        ph->p_memsz = segs[i].len;
        ph->p_align = 4;
        memcpy(buf + off, segs[i].data, segs[i].len);
        off += (segs[i].len + 7) & ~(size_t)7;
    }
    *ret = size;
    return buf;
}

/* A capability note as the library emits it, with fields to change. */
typedef struct NoteImg {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char name[CPRS_NOTE_NAME_SIZE];
    CprsWireCapsNote desc;
} NoteImg;

static NoteImg good_note(void)
{
    NoteImg n;

    memset(&n, 0, sizeof(n));
    n.namesz = CPRS_NOTE_NAME_SIZE;
    n.descsz = sizeof(n.desc);
    n.type = CPRS_NOTE_TYPE_CAPS;
    memcpy(n.name, CPRS_NOTE_NAME, CPRS_NOTE_NAME_SIZE);
    cprs_le16_set(&n.desc.version_major, 1);
    cprs_le32_set(&n.desc.desc_size, sizeof(n.desc));
    cprs_le32_set(&n.desc.lib_version, 200);
    cprs_le16_set(&n.desc.arena_major, 1);
    cprs_le32_set(&n.desc.modes, CPRS_CAPS_MODES_KNOWN);
    cprs_le32_set(&n.desc.legacy_forms, CPRS_CAPS_FORMS_KNOWN);
    cprs_le32_set(&n.desc.flags, CPRS_CAPS_F_KNOWN);
    strcpy(n.desc.producer, "test");
    return n;
}

static CprsElfScan scan_buf(const uint8_t *buf, size_t size)
{
    CprsElfSrc src = { .fd = -1, .buf = buf, .size = size };
    CprsElfScan s;

    assert_int_equal(cprs_elf_scan(&src, 0, &s), 0);
    return s;
}

static CprsElfScan scan_note(const NoteImg *n)
{
    Seg seg = { PT_NOTE, PF_R, n, sizeof(*n) };
    size_t size;
    uint8_t *buf = make_elf(&seg, 1, 0, &size);
    CprsElfScan s = scan_buf(buf, size);

    free(buf);
    return s;
}

static void test_elf_notes(void **state)
{
    NoteImg n, two[2];
    CprsElfScan s;
    Seg seg;
    size_t size;
    uint8_t *buf;

    (void)state;
    n = good_note();
    s = scan_note(&n);
    assert_true(s.flags & CPRS_ELF_F_ELF);
    assert_true(s.flags & CPRS_ELF_F_NOTE);
    assert_int_equal(s.n_notes, 1);
    assert_int_equal(s.caps.arena_major, 1);
    assert_int_equal(s.caps.flags, CPRS_CAPS_F_KNOWN);
    assert_string_equal(s.caps.producer, "test");

    /* F3.2, F3.3: what makes a note not understood. */
    n = good_note();
    cprs_le32_set(&n.desc.desc_size, 72);
    s = scan_note(&n);
    assert_false(s.flags & CPRS_ELF_F_NOTE);
    assert_true(s.flags & CPRS_ELF_F_BAD_NOTE);
    n = good_note();
    cprs_le32_set(&n.desc.reserved0, 1);
    assert_true(scan_note(&n).flags & CPRS_ELF_F_BAD_NOTE);
    n = good_note();
    cprs_le32_set(&n.desc.flags, 0x80);
    assert_true(scan_note(&n).flags & CPRS_ELF_F_BAD_NOTE);
    n = good_note();
    memset(n.desc.producer, 'x', sizeof(n.desc.producer));
    assert_true(scan_note(&n).flags & CPRS_ELF_F_BAD_NOTE);
    n = good_note();
    n.desc.producer[10] = 'y';
    assert_true(scan_note(&n).flags & CPRS_ELF_F_BAD_NOTE);
    n = good_note();
    cprs_le16_set(&n.desc.version_major, 2);
    s = scan_note(&n);
    assert_true(s.flags & CPRS_ELF_F_NEWER_NOTE);
    assert_false(s.flags & CPRS_ELF_F_NOTE);
    /* A newer minor with unknown bits: read, the bits dropped. */
    n = good_note();
    cprs_le16_set(&n.desc.version_minor, 7);
    cprs_le32_set(&n.desc.flags, 0xff);
    s = scan_note(&n);
    assert_true(s.flags & CPRS_ELF_F_NOTE);
    assert_int_equal(s.caps.flags, CPRS_CAPS_F_KNOWN);
    /* A hostile note header: sizes past the segment. */
    n = good_note();
    n.namesz = 0xffffffffu;
    s = scan_note(&n);
    assert_false(s.flags & (CPRS_ELF_F_NOTE | CPRS_ELF_F_BAD_NOTE));
    n = good_note();
    n.descsz = 0xfffffff0u;
    assert_false(scan_note(&n).flags & CPRS_ELF_F_NOTE);
    /* Two notes of two arena majors: a conflict (F3.5). */
    two[0] = good_note();
    two[1] = good_note();
    cprs_le16_set(&two[1].desc.arena_major, 2);
    seg = (Seg) { PT_NOTE, PF_R, two, sizeof(two) };
    buf = make_elf(&seg, 1, 0, &size);
    s = scan_buf(buf, size);
    assert_true(s.flags & CPRS_ELF_F_CONFLICT);
    assert_int_equal(s.n_notes, 2);
    free(buf);
    /* Two notes that agree: their intersection. */
    two[1] = good_note();
    cprs_le32_set(&two[1].desc.flags, CPRS_CAPS_F_DUAL);
    buf = make_elf(&seg, 1, 0, &size);
    s = scan_buf(buf, size);
    assert_false(s.flags & CPRS_ELF_F_CONFLICT);
    assert_int_equal(s.caps.flags, CPRS_CAPS_F_DUAL);
    free(buf);
}

static void test_elf_hostile_headers(void **state)
{
    NoteImg n = good_note();
    Seg seg = { PT_NOTE, PF_R, &n, sizeof(n) };
    Elf64_Ehdr *h;
    Elf64_Phdr *ph;
    CprsElfScan s;
    size_t size, cut;
    uint8_t *buf, *copy;

    (void)state;
    buf = make_elf(&seg, 1, 0, &size);
    h = (Elf64_Ehdr *)buf;
    ph = (Elf64_Phdr *)(buf + h->e_phoff);
    /* Every prefix: never a crash, never a note read past the end. */
    for (cut = 0; cut < size; cut++) {
        copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        s = scan_buf(copy, cut);
        assert_false(s.flags & CPRS_ELF_F_NOTE);
        free(copy);
    }
    ph->p_offset = size;            /* past the end */
    s = scan_buf(buf, size);
    assert_true(s.flags & CPRS_ELF_F_MALFORMED);
    ph->p_offset = UINT64_MAX - 8;  /* wraps */
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_MALFORMED);
    ph->p_offset = sizeof(*h) + sizeof(*ph);
    h->e_phnum = 0xffff;
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_MALFORMED);
    h->e_phnum = 1;
    h->e_phentsize = 40;
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_MALFORMED);
    h->e_phentsize = sizeof(*ph);
    h->e_type = ET_REL;
    s = scan_buf(buf, size);
    assert_false(s.flags & CPRS_ELF_F_ELF);
    h->e_type = ET_DYN;
    h->e_machine ^= 0x55;
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_FOREIGN);
    h->e_machine ^= 0x55;
    h->e_ident[EI_CLASS] = 7;
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_MALFORMED);
    h->e_ident[EI_CLASS] = ELFCLASS64;
    assert_true(scan_buf(buf, size).flags & CPRS_ELF_F_NOTE);
    free(buf);
}

/* The marks, also across the boundary of two scan chunks (F2.4). */
static void test_elf_marks(void **state)
{
    static const char marks[] = "QEMU_CPR_EXEC_STATE\0CprState/vfio "
                                "devices\0cpr fd\0cpr vfio device";
    const size_t big = (1u << 20) + 4096;
    uint8_t *data = calloc(1, big);
    Seg seg = { PT_LOAD, PF_R, data, big };
    CprsElfScan s;
    size_t size;
    uint8_t *buf;

    (void)state;
    memcpy(data + (1u << 20) - 10, marks, sizeof(marks));
    buf = make_elf(&seg, 1, 0, &size);
    s = scan_buf(buf, size);
    assert_int_equal(s.marks, CPRS_MARK_STOCK | CPRS_MARK_VFIO_DEVICE);
    free(buf);
    /* This library's name, anywhere: libcprstate's code is there. */
    memcpy(data + 100, "xlibcprstate.so", 15);
    buf = make_elf(&seg, 1, 0, &size);
    assert_int_equal(scan_buf(buf, size).marks, CPRS_MARK_ALL);
    free(buf);
    memset(data + 100, 0, 15);
    /* In executable code only they do not count, if data exists. */
    seg.flags = PF_R | PF_X;
    {
        Seg two[2] = { seg, { PT_LOAD, PF_R, "x", 1 } };

        buf = make_elf(two, 2, 0, &size);
        assert_int_equal(scan_buf(buf, size).marks, 0);
        free(buf);
    }
    /* A mark must end with its NUL: a longer name does not count. */
    memset(data, 0, big);
    memcpy(data, "cpr vfio devices", 17);
    seg.flags = PF_R;
    buf = make_elf(&seg, 1, 0, &size);
    assert_int_equal(scan_buf(buf, size).marks, 0);
    free(buf);
    free(data);
}

static void test_elf_dynamic(void **state)
{
    static const char strtab[] = "\0libc.so.6\0libcprstate.so.0\0"
                                 "$ORIGIN/../lib\0";
    uint8_t seg2[16 * 6];
    Elf64_Dyn *dyn = (Elf64_Dyn *)seg2;
    Seg segs[2] = {
        { PT_LOAD, PF_R, strtab, sizeof(strtab) },
        { PT_DYNAMIC, PF_R, seg2, sizeof(seg2) },
    };
    Elf64_Phdr *ph;
    CprsElfScan s;
    size_t size;
    uint8_t *buf;

    (void)state;
    memset(seg2, 0, sizeof(seg2));
    buf = make_elf(segs, 2, 0, &size);
    ph = (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr));
    dyn[0] = (Elf64_Dyn) { DT_NEEDED, { 1 } };
    dyn[1] = (Elf64_Dyn) { DT_NEEDED, { 11 } };
    dyn[2] = (Elf64_Dyn) { DT_STRTAB, { ph[0].p_vaddr } };
    dyn[3] = (Elf64_Dyn) { DT_STRSZ, { sizeof(strtab) } };
    dyn[4] = (Elf64_Dyn) { DT_RUNPATH, { 28 } };
    memcpy(buf + ph[1].p_offset, seg2, sizeof(seg2));
    s = scan_buf(buf, size);
    assert_true(s.flags & CPRS_ELF_F_DYNAMIC);
    assert_true(s.flags & CPRS_ELF_F_NEEDS_LIB);
    assert_string_equal(s.needed, "libcprstate.so.0");
    assert_string_equal(s.runpath, "$ORIGIN/../lib");
    /* A string offset past the table, a table nowhere: ignored. */
    dyn[1] = (Elf64_Dyn) { DT_NEEDED, { 4000 } };
    dyn[4] = (Elf64_Dyn) { DT_RUNPATH, { 1u << 30 } };
    memcpy(buf + ph[1].p_offset, seg2, sizeof(seg2));
    s = scan_buf(buf, size);
    assert_false(s.flags & CPRS_ELF_F_NEEDS_LIB);
    assert_string_equal(s.runpath, "");
    dyn[2] = (Elf64_Dyn) { DT_STRTAB, { 0x7fff0000 } };
    dyn[1] = (Elf64_Dyn) { DT_NEEDED, { 11 } };
    memcpy(buf + ph[1].p_offset, seg2, sizeof(seg2));
    assert_false(scan_buf(buf, size).flags & CPRS_ELF_F_NEEDS_LIB);
    free(buf);
}

/* The library's own note decodes as what its loader does (F3). */
static void test_caps_self(void **state)
{
    CprsWireCapsNote w;
    CprsCaps c;
    const char *why;

    (void)state;
    cprs_caps_self(&w);
    assert_int_equal(cprs_caps_decode(&w, sizeof(w), &c, &why), 0);
    assert_int_equal(c.lib_version, CPRS_VERSION_NUMBER);
    assert_int_equal(c.arena_major, CPRS_FORMAT_VERSION_MAJOR);
    assert_int_equal(c.arena_minor, CPRS_FORMAT_VERSION_MINOR);
    assert_int_equal(c.legacy_forms, CPRS_CAPS_FORMS_KNOWN);
    assert_int_equal(c.modes, CPRS_CAPS_MODES_KNOWN);
    assert_int_equal(c.flags, CPRS_CAPS_F_ROLLBACK | CPRS_CAPS_F_DUAL);
    assert_int_equal(cprs_caps_self_flags(), c.flags);
}

/* ---- Real binaries (F2.2) ----------------------------------------------- */

/* libelf's reading of the note of @path, against the library's (F3). */
static void same_note(const char *path, const CprsTargetInfo *ti)
{
    InspectCaps caps[4];
    size_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(elf_cprs_caps(fd, caps, 4, &n), 0);
    close(fd);
    assert_int_equal(n, 1);
    assert_int_equal(caps[0].lib_version, ti->lib_version);
    assert_int_equal(caps[0].arena_major, ti->arena_major);
    assert_int_equal(caps[0].arena_minor, ti->arena_minor);
    assert_int_equal(caps[0].arena_incompat, ti->arena_incompat);
    assert_int_equal(caps[0].modes, ti->modes);
    assert_int_equal(caps[0].legacy_forms, ti->legacy_forms);
    assert_int_equal(caps[0].flags, ti->caps);
    assert_string_equal(caps[0].producer, ti->producer);
}

static size_t notes_in(const char *path)
{
    InspectCaps caps[4];
    size_t n = 99;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(elf_cprs_caps(fd, caps, 4, &n), 0);
    close(fd);
    return n;
}

static void test_classify_binaries(void **state)
{
    CprsTargetInfo ti;
    CprsTarget *t;
    struct stat st;

    (void)state;
    /* Dynamic: the note of the libcprstate.so it needs ($ORIGIN). */
    t = open_target(fixture("cprs-vmm"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_LIBCPRSTATE);
    assert_true(ti.flags & CPRS_TARGET_F_ELF);
    assert_true(ti.flags & CPRS_TARGET_F_DYNAMIC);
    assert_true(ti.flags & CPRS_TARGET_F_NOTE_IN_LIB);
    assert_non_null(strstr(ti.lib_path, "libcprstate.so.0"));
    /* The library file inspected, by identity: a reader of its note
     * (cprdump with libelf) checks that it reads the same file. */
    assert_int_equal(stat(ti.lib_path, &st), 0);
    assert_true(ti.lib_dev == (uint64_t)st.st_dev &&
                ti.lib_ino == (uint64_t)st.st_ino);
    assert_int_equal(ti.lib_version, CPRS_VERSION_NUMBER);
    assert_int_equal(ti.caps, CPRS_CAPS_F_ROLLBACK | CPRS_CAPS_F_DUAL);
    same_note(ti.lib_path, &ti);
    assert_int_equal(notes_in(fixture("cprs-vmm")), 0);
    cprs_target_free(t);
    /* Static: the loader pulled the note object into the executable. */
    t = open_target(fixture("cprs-vmm-static"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_LIBCPRSTATE);
    assert_false(ti.flags & CPRS_TARGET_F_NOTE_IN_LIB);
    assert_null(ti.lib_path);
    assert_true(!ti.lib_dev && !ti.lib_ino);
    same_note(fixture("cprs-vmm-static"), &ti);
    cprs_target_free(t);
    /* Stock QEMU stand-ins: the marks, and the vfio form of the build. */
    t = open_target(fixture("stock-target"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_STOCK_QEMU);
    assert_int_equal(ti.stock_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(ti.marks, CPRS_MARK_STOCK | CPRS_MARK_VFIO_DEVICE);
    assert_int_equal(notes_in(fixture("stock-target")), 0);
    cprs_target_free(t);
    t = open_target(fixture("stock-target-stub"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_STOCK_QEMU);
    assert_int_equal(ti.stock_form, CPRS_LEGACY_VFIO_STUB);
    assert_int_equal(ti.marks, CPRS_MARK_STOCK);
    cprs_target_free(t);
    /* Forged notes. */
    t = open_target(fixture("caps-future"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_LIBCPRSTATE);
    assert_int_equal(ti.arena_major, 9);
    assert_int_equal(ti.legacy_forms, 0);
    same_note(fixture("caps-future"), &ti);
    cprs_target_free(t);
    t = open_target(fixture("caps-newer-note"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_non_null(strstr(ti.reason, "newer"));
    assert_int_equal(notes_in(fixture("caps-newer-note")), 1);
    cprs_target_free(t);
    t = open_target(fixture("caps-plain"), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_int_equal(ti.marks, 0);
    assert_int_equal(notes_in(fixture("caps-plain")), 0);
    cprs_target_free(t);
}

static void test_classify_files(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti;
    CprsTarget *t;
    char path[4096];

    (void)state;
    t = open_target(tmp_file("wrapper.sh", "#!/bin/sh\nexit 7\n", 0755),
                    &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_true(ti.flags & CPRS_TARGET_F_SCRIPT);
    assert_string_equal(ti.interp, "/bin/sh");
    cprs_target_free(t);
    t = open_target(tmp_file("text", "exit 5\n", 0755), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_false(ti.flags & (CPRS_TARGET_F_SCRIPT | CPRS_TARGET_F_ELF));
    cprs_target_free(t);
    /* F2.2 (iv): refused at once. */
    assert_int_equal(cprs_target_open_path(tmp_file("data", "x", 0644),
                                           NULL, &d, &t), -EACCES);
    assert_string_equal(d.clause, "F2.2");
    assert_int_equal(cprs_target_open_path(tmp_dir(), NULL, &d, &t),
                     -EACCES);
    snprintf(path, sizeof(path), "%s/missing", tmp_dir());
    assert_int_equal(cprs_target_open_path(path, NULL, &d, &t), -ENOENT);
    assert_int_equal(cprs_target_open_path("", NULL, &d, &t), -EINVAL);
    assert_int_equal(cprs_target_open_exec(NULL, NULL, &d, &t), -EINVAL);
    /* Executable but not readable (root reads anything: not testable). */
    if (geteuid()) {
        snprintf(path, sizeof(path), "%s/exec-only", tmp_dir());
        copy_file(fixture("caps-plain"), path, 0111);
        t = open_target(path, &ti);
        assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
        assert_true(ti.flags & CPRS_TARGET_F_UNREADABLE);
        cprs_target_free(t);
    }
}

/* F2.5: ld.so's search, $ORIGIN and LD_LIBRARY_PATH. */
static void test_library_search(void **state)
{
    CprsTargetOpts o = CPRS_OPTS(CprsTargetOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    CprsTarget *t;
    char exe[4096], libdir[4096], fake[4096];

    (void)state;
    /* Away from ../libcprstate: $ORIGIN finds nothing. */
    snprintf(exe, sizeof(exe), "%s/bin", tmp_dir());
    mkdir(exe, 0755);
    snprintf(exe, sizeof(exe), "%s/bin/cprs-vmm", tmp_dir());
    copy_file(fixture("cprs-vmm"), exe, 0755);
    o.library_path = "/nonexistent";
    assert_int_equal(cprs_target_open_path(exe, &o, &d, &t), 0);
    cprs_target_get_info(t, &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_non_null(strstr(ti.reason, "do not find"));
    cprs_target_free(t);
    /* LD_LIBRARY_PATH (as the exec will have it) finds it. */
    snprintf(libdir, sizeof(libdir), "%s/libcprstate", th_build_root());
    o.library_path = libdir;
    assert_int_equal(cprs_target_open_path(exe, &o, &d, &t), 0);
    cprs_target_get_info(t, &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_LIBCPRSTATE);
    assert_true(ti.flags & CPRS_TARGET_F_NOTE_IN_LIB);
    cprs_target_free(t);
    /* A libcprstate.so.0 without a note: uncertain, not libcprstate. */
    snprintf(fake, sizeof(fake), "%s/libcprstate.so.0", tmp_dir());
    copy_file(fixture("caps-plain"), fake, 0755);
    o.library_path = tmp_dir();
    assert_int_equal(cprs_target_open_path(exe, &o, &d, &t), 0);
    cprs_target_get_info(t, &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_non_null(strstr(ti.reason, "no usable capability note"));
    cprs_target_free(t);
    unlink(fake);
    unlink(exe);
}

/* F2.1: execvp's search. */
static void test_path_search(void **state)
{
    CprsTargetOpts o = CPRS_OPTS(CprsTargetOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    char *argv[] = { (char *)"caps-plain", NULL };
    char search[8192], shadow[4096];
    CprsTarget *t;

    (void)state;
    /* A non-executable file of the same name is skipped, as by execvp. */
    snprintf(shadow, sizeof(shadow), "%s/caps-plain", tmp_dir());
    copy_file(fixture("caps-plain"), shadow, 0644);
    snprintf(search, sizeof(search), "/nonexistent:%s:%s/tests", tmp_dir(),
             th_build_root());
    o.path_env = search;
    assert_int_equal(cprs_target_open_exec(argv, &o, &d, &t), 0);
    cprs_target_get_info(t, &ti);
    assert_true(ti.flags & CPRS_TARGET_F_SEARCHED);
    assert_string_equal(ti.path, fixture("caps-plain"));
    cprs_target_free(t);
    snprintf(search, sizeof(search), "/nonexistent:%s", tmp_dir());
    assert_int_equal(cprs_target_open_exec(argv, &o, &d, &t), -EACCES);
    o.path_env = "/nonexistent:/nonexistent2";
    assert_int_equal(cprs_target_open_exec(argv, &o, &d, &t), -ENOENT);
    unlink(shadow);
}

/* ---- Not a stock QEMU: our own code (F2.4) ---------------------------- */

/* Write @buf as an executable file in the temporary directory. */
static const char *write_exe(const char *name, const void *buf, size_t size)
{
    static char path[4][4096];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, 4096, "%s/%s", tmp_dir(), name);
    unlink(p);
    th_write_file(p, buf, size);
    assert_int_equal(chmod(p, 0755), 0);
    return p;
}

static void test_not_stock(void **state)
{
    static const char qemu[] = "QEMU_CPR_EXEC_STATE\0CprState/vfio "
                               "devices\0cpr fd\0cpr vfio device";
    static const char ours[] = "libcprstate: a wrapper";
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo, .fd_count = 3);
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsPlan p = CPRS_OPTS(CprsPlan);
    uint8_t data[256] = { 0 };
    Seg seg = { PT_LOAD, PF_R, data, sizeof(data) };
    CprsTargetInfo ti;
    CprsTarget *t;
    size_t size;
    uint8_t *buf;

    (void)state;
    /*
     * A wrapper linked with libcprstate-reader.a only: it holds the
     * state's variable and the vfio subsection's name, not a name of
     * QEMU's own cpr code.  Uncertain, so a dual stream and a rollback.
     */
    t = open_target(fixture("reader-wrapper"), &ti);
    assert_int_equal(ti.marks & (CPRS_MARK_EXEC_STATE |
                                 CPRS_MARK_VFIO_SUBSEC),
                     CPRS_MARK_EXEC_STATE | CPRS_MARK_VFIO_SUBSEC);
    assert_false(ti.marks & CPRS_MARK_CPR_FD);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_int_equal(notes_in(fixture("reader-wrapper")), 0);
    assert_int_equal(cprs_target_plan(t, &si, &po, &d, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_DUAL);
    assert_true(p.flags & CPRS_PLAN_F_ROLLBACK);
    cprs_target_free(t);
    /* Every QEMU name: stock, as the stand-ins... */
    memcpy(data, qemu, sizeof(qemu));
    buf = make_elf(&seg, 1, 0, &size);
    t = open_target(write_exe("all-marks", buf, size), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_STOCK_QEMU);
    assert_int_equal(ti.stock_form, CPRS_LEGACY_VFIO_FULL);
    cprs_target_free(t);
    free(buf);
    /* ...unless libcprstate's name is there too: a program of ours. */
    memcpy(data + sizeof(qemu) + 8, ours, sizeof(ours));
    buf = make_elf(&seg, 1, 0, &size);
    t = open_target(write_exe("all-marks-ours", buf, size), &ti);
    assert_int_equal(ti.klass, CPRS_TARGET_UNCERTAIN);
    assert_true(ti.marks & CPRS_MARK_OURS);
    assert_non_null(strstr(ti.reason, "libcprstate's own code"));
    cprs_target_free(t);
    free(buf);
    /* Our test programs without a note (linked with the library). */
    t = open_target(fixture("state-holder"), &ti);
    assert_int_not_equal(ti.klass, CPRS_TARGET_STOCK_QEMU);
    cprs_target_free(t);
}

/* ---- Files that are not regular (F2.1, F2.5) --------------------------- */

/*
 * Run @fn in a child with a deadline: its wait status (a blocked open
 * ends with SIGALRM).
 */
static int with_deadline(void (*fn)(void), unsigned seconds)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (!pid) {
        alarm(seconds);
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void no_hang(void (*fn)(void), unsigned seconds)
{
    int status = with_deadline(fn, seconds);

    if (WIFSIGNALED(status)) {
        fail_msg("pre-flight blocked (signal %d)", WTERMSIG(status));
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

static char fifo_exe[4096];

/* Pre-flight of @fifo_exe, which finds a FIFO named libcprstate.so.0. */
static void preflight_fifo_lib(void)
{
    CprsTargetOpts o = CPRS_OPTS(CprsTargetOpts, .library_path = "");
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    CprsTarget *t;

    if (cprs_target_open_path(fifo_exe, &o, NULL, &t) ||
        cprs_target_get_info(t, &ti) ||
        ti.klass != CPRS_TARGET_UNCERTAIN) {
        _exit(3);
    }
    cprs_target_free(t);
}

static void test_fifo_library(void **state)
{
    char dir[1024], path[4096];

    (void)state;
    /* cprs-vmm's DT_RUNPATH is $ORIGIN/../libcprstate: put a FIFO there. */
    assert_true((size_t)snprintf(dir, sizeof(dir), "%s/fifo", tmp_dir()) <
                sizeof(dir));
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/bin", dir);
    mkdir(path, 0755);
    snprintf(fifo_exe, sizeof(fifo_exe), "%s/bin/cprs-vmm", dir);
    copy_file(fixture("cprs-vmm"), fifo_exe, 0755);
    snprintf(path, sizeof(path), "%s/libcprstate", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/libcprstate/libcprstate.so.0", dir);
    unlink(path);
    assert_int_equal(mkfifo(path, 0644), 0);
    no_hang(preflight_fifo_lib, 20);
    /* A device under that name is not opened either: skipped. */
    unlink(path);
    assert_int_equal(symlink("/dev/null", path), 0);
    no_hang(preflight_fifo_lib, 20);
    unlink(path);
}

static char race_name[4096];

/* Pre-flight of a name that is now a script, now a FIFO (F2.1). */
static void preflight_race(void)
{
    CprsTarget *t;
    int i, ret;

    for (i = 0; i < 50000; i++) {
        ret = cprs_target_open_path(race_name, NULL, NULL, &t);
        if (!ret) {
            cprs_target_free(t);
        } else if (ret != -EACCES && ret != -ENOENT && ret != -ESTALE) {
            _exit(4);
        }
    }
}

static void test_fifo_target(void **state)
{
    char reg[4096], fifo[4200], l1[4200], l2[4200];
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTarget *t;
    pid_t pid;
    int status, ret;

    (void)state;
    snprintf(reg, sizeof(reg), "%s", tmp_file("race.sh", "#!/bin/sh\n",
                                              0755));
    snprintf(fifo, sizeof(fifo), "%s/race-fifo", tmp_dir());
    snprintf(l1, sizeof(l1), "%s/race-l1", tmp_dir());
    snprintf(l2, sizeof(l2), "%s/race-l2", tmp_dir());
    snprintf(race_name, sizeof(race_name), "%s/race-target", tmp_dir());
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0755), 0);
    /* A FIFO as the target: refused, not opened. */
    assert_int_equal(cprs_target_open_path(fifo, NULL, &d, &t), -EACCES);
    /* The name swapped between stat() and open(): never blocks. */
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        /* Never outlive the test, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(120);
        for (;;) {
            unlink(l1);
            unlink(l2);
            if (symlink(reg, l1) || rename(l1, race_name) ||
                symlink(fifo, l2) || rename(l2, race_name)) {
                _exit(1);
            }
        }
    }
    /* With the old open(), blocked within seconds; 50,000 tries. */
    ret = with_deadline(preflight_race, 90);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(race_name);
    unlink(fifo);
    if (WIFSIGNALED(ret)) {
        fail_msg("pre-flight blocked (signal %d)", WTERMSIG(ret));
    }
    assert_int_equal(WEXITSTATUS(ret), 0);
}

/* ---- execvp's errors (F2.1) -------------------------------------------- */

static void test_path_errors(void **state)
{
    CprsTargetOpts o = CPRS_OPTS(CprsTargetOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char *argv[] = { (char *)"loopy", NULL };
    char p1[2048], p2[2048], path[4096], search[8192];
    CprsTarget *t;

    (void)state;
    snprintf(p1, sizeof(p1), "%s/p1", tmp_dir());
    snprintf(p2, sizeof(p2), "%s/p2", tmp_dir());
    mkdir(p1, 0755);
    mkdir(p2, 0755);
    snprintf(path, sizeof(path), "%s/loopy", p1);
    unlink(path);
    assert_int_equal(symlink("loopy", path), 0);
    snprintf(path, sizeof(path), "%s/loopy", p2);
    copy_file(fixture("caps-plain"), path, 0755);
    /* execvp stops at the loop with ELOOP; it does not run p2/loopy. */
    snprintf(search, sizeof(search), "%s:%s", p1, p2);
    o.path_env = search;
    assert_int_equal(cprs_target_open_exec(argv, &o, &d, &t), -ELOOP);
    assert_non_null(strstr(d.reason, "symbolic links"));
    /* The same loop named by a path: ELOOP, not "does not exist". */
    snprintf(path, sizeof(path), "%s/loopy", p1);
    assert_int_equal(cprs_target_open_path(path, NULL, &d, &t), -ELOOP);
    assert_non_null(strstr(d.reason, "symbolic links"));
    /* Missing directories and files are still skipped. */
    snprintf(search, sizeof(search), "/nonexistent:%s/caps-plain:%s",
             tmp_dir(), p2);
    assert_int_equal(cprs_target_open_exec(argv, &o, &d, &t), 0);
    cprs_target_free(t);
    snprintf(path, sizeof(path), "%s/loopy", p1);
    unlink(path);
    snprintf(path, sizeof(path), "%s/loopy", p2);
    unlink(path);
}

/* ---- Plans (F6) -------------------------------------------------------- */

static int plan(const char *fixture_name, uint32_t policy, uint32_t mode,
                uint32_t vfio, uint32_t devstate, CprsPlan *p)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo, .fd_count = 3,
                                 .vfio_count = vfio,
                                 .devstate_count = devstate);
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts, .policy = policy,
                                .mode = mode);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti;
    CprsTarget *t = open_target(fixture(fixture_name), &ti);
    int ret;

    *p = CPRS_OPTS(CprsPlan);
    ret = cprs_target_plan(t, &si, &po, &d, p);
    if (ret) {
        assert_int_equal(d.error, ret);
        assert_non_null(d.reason);
    }
    cprs_target_free(t);
    return ret;
}

static void test_plans(void **state)
{
    const uint32_t X = CPRS_MODE_EXEC, T = CPRS_MODE_TRANSFER;
    CprsPlanOpts bad;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti;
    CprsTarget *t;
    CprsPlan p;

    (void)state;
    /* A libcprstate target: an arena, a rollback on cpr-exec. */
    assert_int_equal(plan("cprs-vmm", CPRS_POLICY_AUTO, X, 1, 1, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_ARENA);
    assert_int_equal(p.flags, CPRS_PLAN_F_ROLLBACK);
    assert_int_equal(plan("cprs-vmm", CPRS_POLICY_STRICT, T, 1, 1, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_ARENA);
    assert_int_equal(p.flags, 0);
    /* Reads only the QCPR stream, no rollback: QCPR, lossy. */
    assert_int_equal(plan("caps-legacy-only", 0, X, 1, 0, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_LEGACY);
    assert_int_equal(p.vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(p.flags, CPRS_PLAN_F_LOSSY);
    assert_int_equal(plan("caps-legacy-only", 0, X, 0, 1, &p),
                     -EPROTONOSUPPORT);
    /* Reads nothing this library writes. */
    assert_int_equal(plan("caps-future", 0, X, 0, 0, &p), -EPROTONOSUPPORT);
    /* A stock QEMU: its own form; what the form cannot carry, refused. */
    assert_int_equal(plan("stock-target", 0, X, 1, 0, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_LEGACY);
    assert_int_equal(p.vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(p.flags, CPRS_PLAN_F_LOSSY);
    assert_int_equal(plan("stock-target", 0, X, 0, 1, &p), -EPROTONOSUPPORT);
    assert_int_equal(plan("stock-target-stub", 0, X, 0, 0, &p), 0);
    assert_int_equal(p.vfio_form, CPRS_LEGACY_VFIO_STUB);
    assert_int_equal(plan("stock-target-stub", 0, X, 1, 0, &p),
                     -EPROTONOSUPPORT);
    assert_int_equal(plan("stock-target-stub", 0, T, 0, 0, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_LEGACY);
    /* Uncertain: dual on cpr-exec, QCPR on cpr-transfer; vfio refused. */
    assert_int_equal(plan("caps-plain", 0, X, 0, 1, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_DUAL);
    assert_int_equal(p.vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(p.flags, CPRS_PLAN_F_ROLLBACK);
    assert_int_equal(plan("caps-plain", 0, X, 1, 0, &p), -EPROTONOSUPPORT);
    assert_int_equal(plan("caps-plain", 0, T, 0, 0, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_LEGACY);
    assert_int_equal(plan("caps-plain", CPRS_POLICY_STRICT, X, 0, 0, &p),
                     -EPROTONOSUPPORT);
    /* Forced formats (F6.3). */
    assert_int_equal(plan("stock-target", CPRS_POLICY_ARENA, X, 0, 0, &p),
                     0);
    assert_int_equal(p.format, CPRS_FORMAT_ARENA);
    assert_int_equal(p.flags, CPRS_PLAN_F_FORCED);
    assert_int_equal(plan("caps-plain", CPRS_POLICY_LEGACY, X, 0, 1, &p), 0);
    assert_int_equal(p.flags & CPRS_PLAN_F_FORCED, CPRS_PLAN_F_FORCED);
    assert_int_equal(plan("stock-target-stub", CPRS_POLICY_LEGACY, X, 1, 0,
                          &p), -EPROTONOSUPPORT);
    assert_int_equal(plan("caps-plain", CPRS_POLICY_DUAL, X, 1, 0, &p), 0);
    assert_int_equal(p.format, CPRS_FORMAT_DUAL);
    assert_int_equal(plan("cprs-vmm", CPRS_POLICY_DUAL, T, 0, 0, &p),
                     -EINVAL);
    /* Bad options, including a larger struct with a non-zero tail. */
    t = open_target(fixture("cprs-vmm"), &ti);
    bad = CPRS_OPTS(CprsPlanOpts, .policy = CPRS_POLICY__MAX);
    assert_int_equal(cprs_target_plan(t, NULL, &bad, &d, &p), -EINVAL);
    bad = CPRS_OPTS(CprsPlanOpts, .flags = 1);
    assert_int_equal(cprs_target_plan(t, NULL, &bad, &d, &p), -EINVAL);
    {
        struct {
            CprsPlanOpts o;
            uint64_t more;
        } big = { CPRS_OPTS(CprsPlanOpts), 1 };

        big.o.sz = sizeof(big);
        assert_int_equal(cprs_target_plan(t, NULL, &big.o, &d, &p),
                         -EINVAL);
        big.more = 0;
        assert_int_equal(cprs_target_plan(t, NULL, &big.o, &d, &p), 0);
    }
    cprs_target_free(t);
}

static void test_policy_names(void **state)
{
    static const char *const names[] = { "auto", "arena", "legacy", "dual",
                                         "strict" };
    uint32_t i, p;

    (void)state;
    for (i = 0; i < 5; i++) {
        assert_int_equal(cprs_policy_parse(names[i], &p), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(cprs_policy_parse("Arena", &p), -EINVAL);
    assert_int_equal(cprs_policy_parse("", &p), -EINVAL);
    assert_string_equal(cprs_format_name(CPRS_FORMAT_DUAL), "dual");
    assert_null(cprs_format_name(CPRS_FORMAT__MAX));
    assert_string_equal(cprs_target_class_name(CPRS_TARGET_STOCK_QEMU),
                        "stock-qemu");
    assert_null(cprs_target_class_name(0));
}

/* ---- The save follows its plan (F6.4) ---------------------------------- */

static void test_save_with_plan(void **state)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "dev0",
                                      .devid = 1);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts);
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti;
    CprsTarget *t;
    CprsPlan p = CPRS_OPTS(CprsPlan);
    CprsState *s;
    uint8_t head[4];
    int fd, ram, before = th_count_fds();

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    ram = memfd_create("ram0", MFD_CLOEXEC);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, ram), 0);
    cprs_state_get_info(s, &si);
    /* A stub QEMU: planned with no vfio record, then one appears. */
    t = open_target(fixture("stock-target-stub"), &ti);
    assert_int_equal(cprs_target_plan(t, &si, &po, &d, &p), 0);
    assert_int_equal(cprs_state_save_vfio(s, &vi), 0);
    so.plan = &p;
    assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd),
                     -EPROTONOSUPPORT);
    assert_string_equal(d.clause, "F6.2");
    assert_null(getenv(CPRS_EXEC_STATE_NAME));
    /* A plan and a format flag: misuse. */
    so.flags = CPRS_SAVE_F_LEGACY;
    assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), -EINVAL);
    /* The plan of the other mode: misuse. */
    so.flags = 0;
    cprs_state_delete_vfio(s, "dev0");
    po.mode = CPRS_MODE_TRANSFER;
    assert_int_equal(cprs_target_plan(t, &si, &po, &d, &p), 0);
    assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), -EINVAL);
    /* The stub plan written: a QCPR stream in QEMU's stub form. */
    po.mode = CPRS_MODE_EXEC;
    assert_int_equal(cprs_target_plan(t, &si, &po, &d, &p), 0);
    assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), 0);
    assert_int_equal(pread(fd, head, 4, 0), 4);
    assert_memory_equal(head, "QCPR", 4);
    {
        CprsLegacy *l;
        CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
        CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                      .flags = CPRS_LEGACY_F_ALL_FORMS);

        assert_int_equal(cprs_legacy_decode_fd(fd, &lo, &d, &l), 0);
        cprs_legacy_get_info(l, &li);
        assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_STUB);
        cprs_legacy_free(l);
    }
    cprs_exec_unpersist(fd);
    cprs_target_free(t);
    /* Dual with a flag, for cpr-transfer: refused. */
    so = CPRS_OPTS(CprsSaveOpts, .flags = CPRS_SAVE_F_DUAL |
                   CPRS_SAVE_F_LEGACY);
    assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), -EINVAL);
    cprs_state_free(s);
    close(ram);
    assert_int_equal(th_count_fds(), before);
}

/* ---- Exec through the inspected file (F2.7) ---------------------------- */

static int child_status(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* In a child: pre-flight @path, run @between, exec; its exit status. */
static int exec_child(const char *path, void (*between)(void *), void *arg,
                      int *ret_err)
{
    int pfd[2], err = 0;
    pid_t pid;

    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        CprsDiag d = CPRS_OPTS(CprsDiag);
        char *argv[] = { (char *)path, NULL };
        CprsTarget *t;

        if (cprs_target_open_exec(argv, NULL, &d, &t)) {
            _exit(90);
        }
        if (between) {
            between(arg);
        }
        err = cprs_target_exec(t, argv, NULL, &d);
        /* Still here: report why; nothing was exec'd. */
        if (write(pfd[1], &err, sizeof(err)) != sizeof(err)) {
            _exit(92);
        }
        _exit(91);
    }
    close(pfd[1]);
    if (read(pfd[0], &err, sizeof(err)) != sizeof(err)) {
        err = 0;
    }
    close(pfd[0]);
    *ret_err = err;
    return child_status(pid);
}

static void swap_symlink(void *arg)
{
    const char *const *p = arg;

    assert_int_equal(rename(p[1], p[0]), 0);
}

static void append_byte(void *arg)
{
    int fd = open(arg, O_WRONLY | O_APPEND | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
}

/* An ELF header of a machine nobody runs, then a line for sh. */
static const char *foreign_elf(void)
{
    Elf64_Ehdr h;
    uint8_t buf[sizeof(h) + 16];

    memset(&h, 0, sizeof(h));
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_EXEC;
    h.e_machine = 0x7e57;
    h.e_version = EV_CURRENT;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), "\nexit 42\n\0\0\0\0\0\0\0", 16);
    return write_exe("foreign.elf", buf, sizeof(h) + 9);
}

static void test_exec(void **state)
{
    char link[4096], evil[4096], copy[4096];
    const char *pair[2] = { link, evil };
    int err;

    (void)state;
    /* It runs: a script, a file the kernel cannot run (sh), an ELF. */
    assert_int_equal(exec_child(tmp_file("seven.sh", "#!/bin/sh\nexit 7\n",
                                         0755), NULL, NULL, &err), 7);
    assert_int_equal(exec_child(tmp_file("five", "exit 5\n", 0755), NULL,
                                NULL, &err), 5);
    assert_int_equal(exec_child(fixture("caps-plain"), NULL, NULL, &err), 0);
    /*
     * An ELF file of another machine: by its path, as execvp() (and
     * binfmt_misc, which needs one) would; the kernel refuses this one
     * (ENOEXEC), so sh runs it, as execvp() does.
     */
    assert_int_equal(exec_child(foreign_elf(), NULL, NULL, &err), 42);
    /* A symlink swapped after pre-flight: refused, nothing runs. */
    snprintf(link, sizeof(link), "%s/qemu", tmp_dir());
    snprintf(evil, sizeof(evil), "%s/evil", tmp_dir());
    unlink(link);
    unlink(evil);
    assert_int_equal(symlink(fixture("caps-plain"), link), 0);
    assert_int_equal(symlink(tmp_file("bad.sh", "#!/bin/sh\nexit 66\n",
                                      0755), evil), 0);
    assert_int_equal(exec_child(link, swap_symlink, pair, &err), 91);
    assert_int_equal(err, -ESTALE);
    unlink(link);
    /* The file itself changed in place: refused too. */
    snprintf(copy, sizeof(copy), "%s/changed.sh", tmp_dir());
    copy_file(tmp_file("ok.sh", "#!/bin/sh\nexit 0\n", 0755), copy, 0755);
    assert_int_equal(exec_child(copy, append_byte, copy, &err), 91);
    assert_int_equal(err, -ESTALE);
}

/* ---- cpr-transfer: the peer (F2.6) ------------------------------------- */

static void test_peer(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo), self;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    CprsTarget *t, *me;
    char *argv[] = { (char *)"x", NULL };
    char dir[] = "/tmp/cprs-peer-XXXXXX";
    int ls, conn, sv[2];
    char c;
    pid_t pid;

    (void)state;
    /* The cpr channel: the peer connects, as QEMU's source does. */
    assert_non_null(mkdtemp(dir));
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/cpr.sock", dir);
    ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(ls, 1), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(conn, (struct sockaddr *)&addr, sizeof(addr)) ||
            read(conn, &c, 1) < 0) {
            _exit(1);
        }
        _exit(0);
    }
    conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    assert_true(conn >= 0);
    assert_int_equal(cprs_target_open_peer(conn, NULL, &d, &t), 0);
    cprs_target_get_info(t, &ti);
    assert_int_equal(ti.pid, pid);
    assert_true(ti.flags & CPRS_TARGET_F_PEER);
    me = open_target("/proc/self/exe", &self);
    assert_int_equal(ti.klass, self.klass);
    assert_int_equal(ti.ino, self.ino);
    assert_int_equal(cprs_target_exec(t, argv, NULL, &d), -EINVAL);
    cprs_target_free(me);
    cprs_target_free(t);
    assert_int_equal(write(conn, "x", 1), 1);
    close(conn);
    close(ls);
    unlink(addr.sun_path);
    rmdir(dir);
    assert_int_equal(child_status(pid), 0);
    /* Not a socket: the error of getsockopt(). */
    assert_int_equal(pipe2(sv, O_CLOEXEC), 0);
    assert_int_equal(cprs_target_open_peer(sv[0], NULL, &d, &t), -ENOTSOCK);
    close(sv[0]);
    close(sv[1]);
}

/* ---- cprdump target (exit codes) --------------------------------------- */

static int cprdump(const char *args, char **out)
{
    char cmd[8192], buf[4096];
    size_t len = 0, n;
    FILE *p;
    int status;

    snprintf(cmd, sizeof(cmd), "'%s/tools/cprdump' %s 2>&1",
             th_build_root(), args);
    p = popen(cmd, "r");
    assert_non_null(p);
    *out = calloc(1, 65536);
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0 && len + n < 65535) {
        memcpy(*out + len, buf, n);
        len += n;
    }
    status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void expect_target(const char *args, int code, const char *needle)
{
    char *out;
    int got = cprdump(args, &out);

    if (got != code || (needle && !strstr(out, needle)) ||
        strstr(out, "DISAGREEMENT")) {
        fail_msg("cprdump %s: exit %d (want %d), output:\n%s", args, got,
                 code, out);
    }
    free(out);
}

static void test_cprdump_target(void **state)
{
    char args[8192], corrupt[4096];
    uint8_t *buf;
    size_t size;

    (void)state;
    snprintf(args, sizeof(args), "target '%s'", fixture("cprs-vmm"));
    expect_target(args, 0, "Class:            libcprstate");
    snprintf(args, sizeof(args), "target '%s'", fixture("cprs-vmm-static"));
    expect_target(args, 0, "rollback, dual");
    snprintf(args, sizeof(args), "target '%s' '%s/qemu-q35-memfd.cprs'",
             fixture("stock-target"), th_vectors_dir());
    expect_target(args, 0, "Verdict: loadable");
    snprintf(args, sizeof(args), "target '%s' '%s/qemu-numa2-vga-vfio.cprs'",
             fixture("stock-target-stub"), th_vectors_dir());
    expect_target(args, 3, "REFUSED");
    snprintf(args, sizeof(args), "target '%s'", fixture("caps-future"));
    expect_target(args, 3, "arena 9.0");
    snprintf(args, sizeof(args), "target '%s'", fixture("caps-newer-note"));
    expect_target(args, 4, "note 2.0");
    snprintf(args, sizeof(args), "target --policy=strict '%s'",
             fixture("caps-plain"));
    expect_target(args, 3, "strict");
    snprintf(args, sizeof(args), "target '%s'", fixture("caps-plain"));
    expect_target(args, 4, "uncertain");
    snprintf(args, sizeof(args), "target --mode=transfer '%s'",
             fixture("caps-plain"));
    expect_target(args, 4, "Plan (cpr-transfer): legacy");
    expect_target("target /nonexistent/qemu", 3, "refused");
    expect_target("target", 1, NULL);
    expect_target("target --policy=bogus /bin/sh", 1, NULL);
    snprintf(corrupt, sizeof(corrupt), "%s/corrupt.cprs", tmp_dir());
    {
        char vec[4096];

        snprintf(vec, sizeof(vec), "%s/qemu-q35-memfd.cprs",
                 th_vectors_dir());
        buf = th_read_file(vec, &size);
        buf[size - 1] ^= 1;
        th_write_file(corrupt, buf, size);
        free(buf);
    }
    snprintf(args, sizeof(args), "target '%s' '%s'", fixture("cprs-vmm"),
             corrupt);
    expect_target(args, 2, NULL);
    unlink(corrupt);
}

static int teardown(void **state)
{
    char cmd[8192];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir());
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elf_notes),
        cmocka_unit_test(test_elf_hostile_headers),
        cmocka_unit_test(test_elf_marks),
        cmocka_unit_test(test_elf_dynamic),
        cmocka_unit_test(test_caps_self),
        cmocka_unit_test(test_classify_binaries),
        cmocka_unit_test(test_classify_files),
        cmocka_unit_test(test_library_search),
        cmocka_unit_test(test_path_search),
        cmocka_unit_test(test_not_stock),
        cmocka_unit_test(test_fifo_library),
        cmocka_unit_test(test_fifo_target),
        cmocka_unit_test(test_path_errors),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_save_with_plan),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_peer),
        cmocka_unit_test(test_cprdump_target),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
