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

#define LE32(v) { .raw = CPRS_LE_SWAP32(v) }

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

/*
 * An ELF note: the header words are in the byte order of the binary, the
 * descriptor is CprsWireCapsNote, laid out here in 32-bit words so that
 * the whole note is 4-aligned, as the notes around it in its segment.
 */
typedef struct CapsDesc {
    CprsLe32 w[10];                 /* the fields up to reserved0 */
    char producer[CPRS_CAPS_PRODUCER_MAX];
} CapsDesc;

typedef struct CapsNote {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char name[CPRS_NOTE_NAME_SIZE]; /* "libcprstate" and its NUL */
    CapsDesc desc;
} CapsNote;

_Static_assert(sizeof(CapsDesc) == sizeof(CprsWireCapsNote), "caps words");
_Static_assert(offsetof(CapsDesc, producer) ==
               offsetof(CprsWireCapsNote, producer), "caps producer");
/* The descriptor follows the name with no padding (ELF notes: 4). */
_Static_assert(offsetof(CapsNote, desc) == 12 + CPRS_NOTE_NAME_SIZE,
               "note descriptor right after its name");
_Static_assert(_Alignof(CapsNote) == 4, "a 4-aligned note");

/* Two 16-bit fields, or the halves of a 64-bit one, as one LE word. */
#define W16(lo, hi) LE32((uint32_t)(lo) | (uint32_t)(hi) << 16)
#define W64LO(v) LE32((uint32_t)((uint64_t)(v) & 0xffffffffu))
#define W64HI(v) LE32((uint32_t)((uint64_t)(v) >> 32))

/* spec/fail-safe.rst F3.3: the load paths of this build. */
__attribute__((used, section(".note.cprs.caps"), aligned(4))) CAPS_RETAIN
static const CapsNote cprs_caps_note = {
    .namesz = CPRS_NOTE_NAME_SIZE,
    .descsz = sizeof(CprsWireCapsNote),
    .type = CPRS_NOTE_TYPE_CAPS,
    .name = CPRS_NOTE_NAME,
    .desc = {
        .w = {
            /* version_major, version_minor; desc_size; lib_version */
            W16(CPRS_CAPS_VERSION_MAJOR, CPRS_CAPS_VERSION_MINOR),
            LE32(CPRS_CAPS_NOTE_V1_SIZE),
            LE32(CPRS_VERSION_NUMBER),
            /* arena_major, arena_minor; arena_incompat */
            W16(CPRS_FORMAT_VERSION_MAJOR, CPRS_FORMAT_VERSION_MINOR),
            W64LO(CAPS_INCOMPAT),
            W64HI(CAPS_INCOMPAT),
            /* modes */
            LE32(CPRS_CAPS_MODE_BIT(CPRS_MODE_EXEC) |
                 CPRS_CAPS_MODE_BIT(CPRS_MODE_TRANSFER)),
            /* legacy_forms: both load paths decode every form (L5.6) */
            LE32(CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_FULL) |
                 CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_STUB) |
                 CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_NONE)),
            /* flags; reserved0 */
            LE32(CPRS_CAPS_F_ROLLBACK | CPRS_CAPS_F_DUAL),
            LE32(0),
        },
        .producer = "libcprstate " CPRS_STRINGIFY(CPRS_VERSION_MAJOR) "."
                    CPRS_STRINGIFY(CPRS_VERSION_MINOR) "."
                    CPRS_STRINGIFY(CPRS_VERSION_MICRO),
    },
};

void cprs_caps_self(CprsWireCapsNote *ret)
{
    memcpy(ret, &cprs_caps_note.desc, sizeof(*ret));
}
