/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * caps.c - what this library reads, said twice: as an allocated ELF note
 * that a source inspects before it execs a binary (spec/fail-safe.rst
 * F3), and as the table the load paths consult (cprs_caps_self()).  One
 * definition serves both, so the note cannot claim what the loader does
 * not do.
 *
 * The note lives in this object, which every load path references
 * through cprs_caps_self(): a static link of the library (QEMU's
 * subproject) pulls it in with the loader, and "used" and "retain" keep
 * it through the compiler and through the linker's --gc-sections.  The
 * section name starts with ".note", so the assembler gives it the type
 * SHT_NOTE, and the linker puts it into a PT_NOTE segment, where a
 * reader finds it without section headers.
 */
#include "cprs-failsafe.h"

#define LE16(v) { .raw = CPRS_LE_SWAP16(v) }
#define LE32(v) { .raw = CPRS_LE_SWAP32(v) }
#define LE64(v) { .raw = CPRS_LE_SWAP64(v) }

#ifdef CPRS_HAVE_ZSTD
#define CAPS_INCOMPAT CPRS_INCOMPAT_KNOWN
#else
#define CAPS_INCOMPAT (CPRS_INCOMPAT_KNOWN & ~CPRS_INCOMPAT_ZSTD)
#endif

#if defined(__has_attribute)
#if __has_attribute(retain)
#define CAPS_RETAIN __attribute__((retain))
#endif
#endif
#ifndef CAPS_RETAIN
#define CAPS_RETAIN
#endif

/* An ELF note: the header words are in the byte order of the binary. */
typedef struct CapsNote {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char name[CPRS_NOTE_NAME_SIZE]; /* "libcprstate" and its NUL */
    CprsWireCapsNote desc;
} CapsNote;

/* The descriptor follows the name with no padding (ELF notes: 4). */
_Static_assert(offsetof(CapsNote, desc) == 12 + CPRS_NOTE_NAME_SIZE,
               "note descriptor right after its name");
_Static_assert(sizeof(CapsNote) % 4 == 0, "note padding");

/* spec/fail-safe.rst F3.3: the load paths of this build. */
__attribute__((used, section(".note.cprs.caps"), aligned(4))) CAPS_RETAIN
static const CapsNote cprs_caps_note = {
    .namesz = CPRS_NOTE_NAME_SIZE,
    .descsz = sizeof(CprsWireCapsNote),
    .type = CPRS_NOTE_TYPE_CAPS,
    .name = CPRS_NOTE_NAME,
    .desc = {
        .version_major = LE16(CPRS_CAPS_VERSION_MAJOR),
        .version_minor = LE16(CPRS_CAPS_VERSION_MINOR),
        .desc_size = LE32(CPRS_CAPS_NOTE_V1_SIZE),
        .lib_version = LE32(CPRS_VERSION_NUMBER),
        .arena_major = LE16(CPRS_FORMAT_VERSION_MAJOR),
        .arena_minor = LE16(CPRS_FORMAT_VERSION_MINOR),
        .arena_incompat = LE64(CAPS_INCOMPAT),
        .modes = LE32(CPRS_CAPS_MODE_BIT(CPRS_MODE_EXEC) |
                      CPRS_CAPS_MODE_BIT(CPRS_MODE_TRANSFER)),
        /* Both load paths decode every form QEMU writes (L5.6). */
        .legacy_forms = LE32(CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_FULL) |
                             CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_STUB) |
                             CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_NONE)),
        .flags = LE32(CPRS_CAPS_F_ROLLBACK | CPRS_CAPS_F_DUAL),
        .producer = "libcprstate " CPRS_STRINGIFY(CPRS_VERSION_MAJOR) "."
                    CPRS_STRINGIFY(CPRS_VERSION_MINOR) "."
                    CPRS_STRINGIFY(CPRS_VERSION_MICRO),
    },
};

const CprsWireCapsNote *cprs_caps_self(void)
{
    return &cprs_caps_note.desc;
}
