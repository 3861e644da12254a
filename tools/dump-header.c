/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dump-header.c - "cprdump show": the arena header and the section
 * directory, laid out like readelf -h / -S.
 */
#include <inttypes.h>

#include "render.h"

void dump_header(Dump *d, CprsReader *r)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    const char *mode;
    char when[64];
    uint32_t i;

    cprs_reader_get_info(r, &ai);
    mode = cprs_mode_name(ai.mode);
    fprintf(d->out, "CPR State Arena:\n");
    fprintf(d->out, "  Format version:       %u.%u\n", ai.version_major,
            ai.version_minor);
    fprintf(d->out, "  Header size:          %u bytes\n", ai.header_size);
    fprintf(d->out, "  Arena size:           %" PRIu64 " bytes\n",
            ai.arena_size);
    fprintf(d->out, "  Mode:                 %s\n", mode ? mode : "unknown");
    fprintf(d->out, "  Generation:           %" PRIu64 "\n", ai.generation);
    time_str(when, sizeof(when), ai.created_ns);
    fprintf(d->out, "  Created:              %s\n", when);
    fprintf(d->out, "  Writer pid:           %u\n", ai.writer_pid);
    fprintf(d->out, "  Producer:             %s\n", tx(ai.producer));
    fprintf(d->out, "  Build ID:             ");
    if (!ai.build_id_size) {
        fprintf(d->out, "none");
    }
    for (i = 0; i < ai.build_id_size; i++) {
        fprintf(d->out, "%02x", ai.build_id[i]);
    }
    fprintf(d->out, "\n");
    fprintf(d->out, "  Incompat features:    0x%" PRIx64 "%s\n",
            ai.incompat_features,
            ai.incompat_features & CPRS_INCOMPAT_ZSTD ? " (zstd)" : "");
    fprintf(d->out, "  Compat features:      0x%" PRIx64 "\n",
            ai.compat_features);
    fprintf(d->out, "  Directory:            offset 0x%" PRIx64
            ", %u entries, CRC32C 0x%08x\n", ai.dir_offset,
            ai.section_count, ai.dir_crc32c);
    fprintf(d->out, "  Header CRC32C:        0x%08x\n", ai.header_crc32c);
}

void dump_sections(Dump *d, CprsReader *r)
{
    CprsSectionInfo si = CPRS_OPTS(CprsSectionInfo);
    uint32_t i, n = cprs_reader_section_count(r);
    const char *name;
    char flags[4];

    fprintf(d->out, "\nSection directory: %u entries\n", n);
    if (!n) {
        return;
    }
    fprintf(d->out, "  [Nr] Type          Flg Offset     Stored     Raw"
            "        Records RecSz CRC32C     Link\n");
    for (i = 0; i < n; i++) {
        cprs_reader_section_get(r, i, &si);
        name = cprs_section_type_name(si.type);
        flags[0] = si.flags & CPRS_SECTION_F_REQUIRED ? 'R' : '-';
        flags[1] = si.flags & CPRS_SECTION_F_ZSTD ? 'Z' : '-';
        flags[2] = si.flags & ~CPRS_SECTION_F_KNOWN ? '?' : '-';
        flags[3] = '\0';
        if (name) {
            fprintf(d->out, "  [%2u] %-13s ", i, name);
        } else {
            fprintf(d->out, "  [%2u] unknown-%-5u ", i, si.type);
        }
        fprintf(d->out, "%s 0x%08" PRIx64 " 0x%08" PRIx64 " 0x%08" PRIx64
                " %7u %5u 0x%08x", flags, si.offset, si.stored_size,
                si.raw_size, si.record_count, si.record_size, si.crc32c);
        if (si.type == CPRS_SECTION_INDEX) {
            fprintf(d->out, " %u", si.link);
        } else {
            fprintf(d->out, " -");
        }
        fprintf(d->out, "\n");
    }
    fprintf(d->out, "  Flags: R required, Z zstd, ? unknown\n");
}
