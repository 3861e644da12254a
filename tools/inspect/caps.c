/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * caps.c - libcprstate's capability notes of an ELF file, read with libelf
 * (spec/fail-safe.rst F3): cprdump's own reading, independent of the
 * library's hand-written ELF reader, so that the two can be compared.
 *
 * The file is untrusted: libelf bounds the program headers and notes, and
 * every descriptor size is checked before its fields are read.
 */
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

/* Where elf_cprs_caps() puts what it finds. */
typedef struct CapsOut {
    InspectCaps *out;
    size_t max;
    size_t n;
} CapsOut;

static int take_caps(const uint8_t *desc, size_t size, void *opaque)
{
    CapsOut *c = opaque;

    if (c->n < c->max && decode(desc, size, &c->out[c->n])) {
        c->n++;
    }
    return 0;
}

int elf_cprs_caps(int fd, InspectCaps *out, size_t max, size_t *ret_n)
{
    CapsOut c = { out, max, 0 };
    /* PT_NOTE segments only: what a loader, and the library, look at. */
    InspectNoteWant want = {
        .name = CPRS_NOTE_NAME, .namesz = CPRS_NOTE_NAME_SIZE,
        .type = CPRS_NOTE_TYPE_CAPS, .segments_only = true,
        .fn = take_caps, .opaque = &c,
    };
    int ret;

    if (fd < 0 || (!out && max) || !ret_n) {
        return -EINVAL;
    }
    ret = elf_notes(fd, &want);
    if (ret) {
        return ret;
    }
    *ret_n = c.n;
    return 0;
}
