/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * elf.c - ELF helpers built on libelf: the GNU build-id of an executable,
 * recorded in the arena header as the producer's identity (spec 3.14).
 *
 * The file is untrusted (it may be any path a tool is pointed at): libelf
 * does the bounds checking of headers and notes, and we check every size
 * it hands back.  libelf also trusts the file's counts for its own
 * allocations (an Elf_Scn for each section the header claims, a chunk
 * kept for each note segment it reads), so those counts and sizes are
 * checked first, by hand, with pread (elf_precheck()).
 */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inspect.h"

/*
 * Each note of @data named @want->name with type @want->type goes to
 * @want->fn; 1 when it said stop, 0 when none did, <0 error.
 */
static int scan_notes(Elf_Data *data, const InspectNoteWant *want)
{
    size_t off = 0, next, name_off, desc_off;
    GElf_Nhdr nh;
    int ret;

    while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        if (nh.n_type == want->type && nh.n_namesz == want->namesz &&
            inspect_range_ok(data->d_size, name_off, nh.n_namesz) &&
            !memcmp((const char *)data->d_buf + name_off, want->name,
                    want->namesz)) {
            if (!inspect_range_ok(data->d_size, desc_off, nh.n_descsz)) {
                return -EBADMSG;
            }
            ret = want->fn((const uint8_t *)data->d_buf + desc_off,
                           nh.n_descsz, want->opaque);
            if (ret) {
                return ret;
            }
        }
        off = next;
    }
    return 0;
}

/* Limits checked before libelf sees a file (the library's, F2.3). */
#define ELF_MAX_PHNUM       1024u
#define ELF_MAX_SECTIONS    65536u
/* A note segment or section larger than this is not read. */
#define ELF_MAX_NOTE        (UINT64_C(1) << 20)
/* Note bytes read in all: libelf keeps each chunk until elf_end(). */
#define ELF_MAX_NOTE_TOTAL  (UINT64_C(64) << 20)

/* A field of @w bytes at @p in the byte order of the ELF file. */
static uint64_t elf_word(const uint8_t *p, unsigned w, bool be);

/*
 * Before libelf: the file is a regular file holding an ELF header whose
 * program header table (at most ELF_MAX_PHNUM entries) and section header
 * table (at most ELF_MAX_SECTIONS, counted as libelf counts them: e_shnum,
 * or the first section header's sh_size when e_shnum is 0) lie inside it.
 * Returns 0 or -EBADMSG / -E2BIG; *@ret_size the file's size.
 */
static int elf_precheck(int fd, uint64_t *ret_size)
{
    uint8_t eh[sizeof(Elf64_Ehdr)], sh0[sizeof(Elf64_Shdr)];
    uint64_t size, phoff, shoff, phent, phnum, shent, shnum, end;
    struct stat st;
    bool is64, be;
    unsigned w;
    int ret;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return -EBADMSG;
    }
    size = (uint64_t)st.st_size;
    *ret_size = size;
    if (size < EI_NIDENT) {
        return -EBADMSG;
    }
    ret = inspect_pread(fd, eh, EI_NIDENT, 0);
    if (ret) {
        return ret;
    }
    if (memcmp(eh, ELFMAG, SELFMAG) || (eh[EI_CLASS] != ELFCLASS32 &&
                                        eh[EI_CLASS] != ELFCLASS64) ||
        (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB)) {
        return -EBADMSG;
    }
    is64 = eh[EI_CLASS] == ELFCLASS64;
    be = eh[EI_DATA] == ELFDATA2MSB;
    w = is64 ? 8 : 4;
    if (size < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
        return -EBADMSG;
    }
    ret = inspect_pread(fd, eh, is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr),
                    0);
    if (ret) {
        return ret;
    }
    phoff = elf_word(eh + (is64 ? 32 : 28), w, be);
    shoff = elf_word(eh + (is64 ? 40 : 32), w, be);
    phent = elf_word(eh + (is64 ? 54 : 42), 2, be);
    phnum = elf_word(eh + (is64 ? 56 : 44), 2, be);
    shent = elf_word(eh + (is64 ? 58 : 46), 2, be);
    shnum = elf_word(eh + (is64 ? 60 : 48), 2, be);
    if (shoff && (shnum == 0 || phnum == PN_XNUM)) {
        /* The real counts are in the first section header. */
        if (shent != (is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
            !inspect_range_ok(size, shoff, shent)) {
            return -EBADMSG;
        }
        ret = inspect_pread(fd, sh0, (size_t)shent, shoff);
        if (ret) {
            return ret;
        }
        if (!shnum) {
            shnum = elf_word(sh0 + (is64 ? 32 : 20), w, be);
        }
        if (phnum == PN_XNUM) {
            phnum = elf_word(sh0 + (is64 ? 44 : 28), 4, be);
        }
    } else if (phnum == PN_XNUM) {
        return -EBADMSG;
    }
    if (phnum > ELF_MAX_PHNUM || shnum > ELF_MAX_SECTIONS) {
        return -E2BIG;
    }
    if (phnum && (phent != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr))
                  || !inspect_range_ok(size, phoff, phnum * phent))) {
        return -EBADMSG;
    }
    if (shoff && shnum) {
        if (shent != (is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
            __builtin_mul_overflow(shnum, shent, &end) ||
            !inspect_range_ok(size, shoff, end)) {
            return -EBADMSG;
        }
    }
    return 0;
}

/* May a note of @size bytes at @off be read, @total read before? */
static bool note_ok(uint64_t file_size, uint64_t off, uint64_t size,
                    uint64_t *total)
{
    if (!size || size > ELF_MAX_NOTE ||
        !inspect_range_ok(file_size, off, size) ||
        size > ELF_MAX_NOTE_TOTAL - *total) {
        return false;
    }
    *total += size;
    return true;
}

int elf_notes(int fd, const InspectNoteWant *want)
{
    Elf *elf;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    GElf_Phdr ph;
    uint64_t file_size = 0, total = 0;
    size_t n, i;
    bool have_ph;
    int ret = 0;

    if (fd < 0 || !want || !want->fn) {
        return -EINVAL;
    }
    ret = elf_precheck(fd, &file_size);
    if (ret) {
        return ret;
    }
    if (elf_version(EV_CURRENT) == EV_NONE) {
        return -ENOMEM;
    }
    /* ELF_C_READ reads with pread(): the fd's offset does not move. */
    elf = elf_begin(fd, ELF_C_READ, NULL);
    if (!elf) {
        return -EBADMSG;
    }
    have_ph = elf_kind(elf) == ELF_K_ELF && !elf_getphdrnum(elf, &n);
    if (elf_kind(elf) != ELF_K_ELF || (!have_ph && want->segments_only)) {
        elf_end(elf);
        return -EBADMSG;
    }
    /* PT_NOTE segments first: what a loader sees, and they survive
     * section-header stripping. */
    if (have_ph) {
        for (i = 0; i < n && ret == 0; i++) {
            Elf_Data *d;

            if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE ||
                !note_ok(file_size, ph.p_offset, ph.p_filesz, &total)) {
                continue;
            }
            d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
                                     ELF_T_NHDR);
            if (d) {
                ret = scan_notes(d, want);
            }
        }
    }
    while (ret == 0 && !want->segments_only &&
           (scn = elf_nextscn(elf, scn)) != NULL) {
        Elf_Data *d = NULL;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
            !note_ok(file_size, sh.sh_offset, sh.sh_size, &total)) {
            continue;
        }
        while (ret == 0 && (d = elf_getdata(scn, d)) != NULL) {
            ret = scan_notes(d, want);
        }
    }
    elf_end(elf);
    return ret < 0 ? ret : 0;
}

/* Where elf_build_id() wants its note. */
typedef struct BuildId {
    void *buf;
    size_t size;
    size_t *ret_size;
    bool found;
} BuildId;

static int take_build_id(const uint8_t *desc, size_t size, void *opaque)
{
    BuildId *b = opaque;

    if (size > b->size) {
        return -E2BIG;
    }
    memcpy(b->buf, desc, size);
    *b->ret_size = size;
    b->found = true;
    return 1;
}

int elf_build_id(int fd, void *buf, size_t size, size_t *ret_size)
{
    BuildId b = { buf, size, ret_size, false };
    InspectNoteWant want = {
        .name = "GNU", .namesz = 4, .type = NT_GNU_BUILD_ID,
        .fn = take_build_id, .opaque = &b,
    };
    int ret;

    if (fd < 0 || (!buf && size) || !ret_size) {
        return -EINVAL;
    }
    ret = elf_notes(fd, &want);
    if (ret < 0) {
        return ret;
    }
    return b.found ? 0 : -ENOENT;
}

static uint64_t elf_word(const uint8_t *p, unsigned w, bool be)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < w; i++) {
        v = (v << 8) | p[be ? i : w - 1 - i];
    }
    return v;
}

int core_extent(const void *buf, size_t len, uint64_t *ret_need)
{
    const uint8_t *b = buf;
    uint64_t phoff, phent, phnum, end, need, off, filesz, i;
    bool is64, be;
    unsigned w;

    if (len < EI_NIDENT) {
        *ret_need = EI_NIDENT;
        return 0;
    }
    if (memcmp(b, ELFMAG, SELFMAG) || (b[EI_CLASS] != ELFCLASS32 &&
                                       b[EI_CLASS] != ELFCLASS64) ||
        (b[EI_DATA] != ELFDATA2LSB && b[EI_DATA] != ELFDATA2MSB)) {
        return -EBADMSG;
    }
    is64 = b[EI_CLASS] == ELFCLASS64;
    be = b[EI_DATA] == ELFDATA2MSB;
    w = is64 ? 8 : 4;
    need = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    if (len < need) {
        *ret_need = need;
        return 0;
    }
    phoff = elf_word(b + (is64 ? 32 : 28), w, be);
    phent = elf_word(b + (is64 ? 54 : 42), 2, be);
    phnum = elf_word(b + (is64 ? 56 : 44), 2, be);
    /* PN_XNUM puts the count in a section header: not in a core's head. */
    if (phnum == PN_XNUM) {
        return -E2BIG;
    }
    /* The size of Elf64_Phdr or Elf32_Phdr, as libelf will want. */
    if (phnum && phent != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr))) {
        return -EBADMSG;
    }
    if (__builtin_mul_overflow(phent, phnum, &end) ||
        __builtin_add_overflow(end, phoff, &end)) {
        return -EBADMSG;
    }
    need = end > need ? end : need;
    if (len < need) {
        *ret_need = need;
        return 0;
    }
    /* The program headers are in: the file ends where the last one does. */
    for (i = 0; i < phnum; i++) {
        const uint8_t *ph = b + phoff + i * phent;

        off = elf_word(ph + (is64 ? 8 : 4), w, be);
        filesz = elf_word(ph + (is64 ? 32 : 16), w, be);
        if (__builtin_add_overflow(off, filesz, &end)) {
            return -EBADMSG;
        }
        need = end > need ? end : need;
    }
    *ret_need = need;
    return 0;
}
