/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * caps.c - libcprstate's capability notes of an ELF file, read with libelf
 * (spec/fail-safe.rst F3): cprdump's own reading, independent of the
 * library's hand-written ELF reader, so that the two can be compared.
 *
 * The file is untrusted: libelf bounds the program headers and notes, and
 * every descriptor size is checked before its fields are read.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>

#include "inspect.h"

/* One descriptor, field by field (F3.3); false if it is too short. */
static bool decode(const uint8_t *p, size_t size, InspectCaps *c)
{
    CprsWireCapsNote w;

    if (size < sizeof(w)) {
        return false;
    }
    memcpy(&w, p, sizeof(w));
    c->desc_size = (uint32_t)size;
    c->version_major = cprs_le16_get(&w.version_major);
    c->version_minor = cprs_le16_get(&w.version_minor);
    c->lib_version = cprs_le32_get(&w.lib_version);
    c->arena_major = cprs_le16_get(&w.arena_major);
    c->arena_minor = cprs_le16_get(&w.arena_minor);
    c->arena_incompat = cprs_le64_get(&w.arena_incompat);
    c->modes = cprs_le32_get(&w.modes);
    c->legacy_forms = cprs_le32_get(&w.legacy_forms);
    c->flags = cprs_le32_get(&w.flags);
    memcpy(c->producer, w.producer, sizeof(c->producer));
    c->producer[sizeof(c->producer) - 1] = '\0';
    return true;
}

static int scan(Elf_Data *data, InspectCaps *out, size_t max, size_t *n)
{
    size_t off = 0, next, name_off, desc_off;
    GElf_Nhdr nh;

    while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        if (nh.n_type == CPRS_NOTE_TYPE_CAPS &&
            nh.n_namesz == CPRS_NOTE_NAME_SIZE &&
            inspect_range_ok(data->d_size, name_off, nh.n_namesz) &&
            !memcmp((const char *)data->d_buf + name_off, CPRS_NOTE_NAME,
                    CPRS_NOTE_NAME_SIZE)) {
            if (!inspect_range_ok(data->d_size, desc_off, nh.n_descsz)) {
                return -EBADMSG;
            }
            if (*n < max &&
                decode((const uint8_t *)data->d_buf + desc_off, nh.n_descsz,
                       &out[*n])) {
                (*n)++;
            }
        }
        off = next;
    }
    return 0;
}

int elf_cprs_caps(int fd, InspectCaps *out, size_t max, size_t *ret_n)
{
    Elf *elf;
    GElf_Phdr ph;
    size_t phnum, i, n = 0;
    int ret = 0;

    if (fd < 0 || (!out && max) || !ret_n) {
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
    if (elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &phnum)) {
        elf_end(elf);
        return -EBADMSG;
    }
    /* PT_NOTE segments: what a loader, and the library, look at. */
    for (i = 0; i < phnum && !ret; i++) {
        Elf_Data *d;

        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE) {
            continue;
        }
        d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
                                 ELF_T_NHDR);
        if (d) {
            ret = scan(d, out, max, &n);
        }
    }
    elf_end(elf);
    if (ret) {
        return ret;
    }
    *ret_n = n;
    return 0;
}
