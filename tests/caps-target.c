/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * caps-target.c - binaries that pre-flight must classify, and that must
 * never run as a cpr-exec target (spec/fail-safe.rst F2, F3).
 *
 * Built several times: with -DCAPS_NOTE a libcprstate capability note of
 * its own, whose fields the build sets (CAPS_ARENA_MAJOR, CAPS_FORMS,
 * CAPS_FLAGS, CAPS_MINOR_NOTE...), e.g. a future library that reads only
 * arena 9.x and no QCPR stream: it "reads nothing usable"; without it, a
 * plain program with no note and no marks: an uncertain target.  It is
 * not linked with libcprstate; the note is built from format/ alone.
 *
 * If it ever runs with a CPR state, it says so and fails.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cprs-format.h"

#ifdef CAPS_NOTE
#ifndef CAPS_ARENA_MAJOR
#define CAPS_ARENA_MAJOR 1
#endif
#ifndef CAPS_FORMS
#define CAPS_FORMS CPRS_CAPS_FORMS_KNOWN
#endif
#ifndef CAPS_FLAGS
#define CAPS_FLAGS CPRS_CAPS_F_KNOWN
#endif
#ifndef CAPS_NOTE_MAJOR
#define CAPS_NOTE_MAJOR CPRS_CAPS_VERSION_MAJOR
#endif

typedef struct Note {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char name[CPRS_NOTE_NAME_SIZE];
    CprsWireCapsNote desc;
} Note;

#define LE16(v) { .raw = CPRS_LE_SWAP16(v) }
#define LE32(v) { .raw = CPRS_LE_SWAP32(v) }
#define LE64(v) { .raw = CPRS_LE_SWAP64(v) }

__attribute__((used, section(".note.cprs.caps"), aligned(4)))
static const Note note = {
    .namesz = CPRS_NOTE_NAME_SIZE,
    .descsz = sizeof(CprsWireCapsNote),
    .type = CPRS_NOTE_TYPE_CAPS,
    .name = CPRS_NOTE_NAME,
    .desc = {
        .version_major = LE16(CAPS_NOTE_MAJOR),
        .desc_size = LE32(CPRS_CAPS_NOTE_V1_SIZE),
        .lib_version = LE32(90000),
        .arena_major = LE16(CAPS_ARENA_MAJOR),
        .arena_incompat = LE64(CPRS_INCOMPAT_KNOWN),
        .modes = LE32(CPRS_CAPS_MODES_KNOWN),
        .legacy_forms = LE32(CAPS_FORMS),
        .flags = LE32(CAPS_FLAGS),
        .producer = "caps-target",
    },
};
#endif

int main(void)
{
    char var[32];

    /* Built at run time: the plain variant carries no mark at all. */
    snprintf(var, sizeof(var), "%s_%s", "QEMU_CPR_EXEC", "STATE");
    if (getenv(var)) {
        fprintf(stderr, "caps-target: a cpr-exec ran this binary, which "
                "pre-flight should have refused\n");
        return 1;
    }
    printf("caps-target\n");
    return 0;
}
