/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * elf.c - ELF helpers built on libelf: the GNU build-id of an executable,
 * recorded in the arena header as the producer's identity (spec 3.14).
 *
 * The file is untrusted (it may be any path a tool is pointed at): libelf
 * does the bounds checking of headers and notes, and we check every size
 * it hands back.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>

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

int elf_notes(int fd, const InspectNoteWant *want)
{
    Elf *elf;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    GElf_Phdr ph;
    size_t n, i;
    bool have_ph;
    int ret = 0;

    if (fd < 0 || !want || !want->fn) {
        return -EINVAL;
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

            if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE) {
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

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE) {
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

/* A field of @w bytes at @p in the byte order of the ELF file. */
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
