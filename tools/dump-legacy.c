/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dump-legacy.c - "cprdump show" of QEMU's legacy "QCPR" stream: the
 * stream's properties, then its fd records and vfio device records as
 * aligned tables (stream order, with the offset of each record's marker
 * byte), then the warnings of the decode.  Same conventions as the arena
 * layout: readelf-like, name last.
 */
#include <inttypes.h>

#include "render.h"

static const char *form_text(uint32_t form)
{
    switch (form) {
    case CPRS_LEGACY_VFIO_FULL:
        return "full (\"CprState/vfio devices\" version 1, with its list)";
    case CPRS_LEGACY_VFIO_STUB:
        return "header only (QEMU built without iommufd)";
    case CPRS_LEGACY_VFIO_NONE:
        return "absent (QEMU 10.0 or older)";
    default:
        return "unknown";
    }
}

static void dump_legacy_warnings(Dump *d, const CprsLegacy *lg)
{
    uint32_t i, n = cprs_legacy_warning_count(lg);
    CprsDiag w = CPRS_OPTS(CprsDiag);
    char text[256];

    fprintf(d->out, "\nWarnings: %u\n", n);
    for (i = 0; i < n; i++) {
        if (cprs_legacy_warning_get(lg, i, &w)) {
            continue;
        }
        cprs_diag_format(&w, text, sizeof(text));
        fprintf(d->out, "  %s\n", text);
    }
}

static void legacy_properties(Dump *d, const CprsLegacyInfo *li)
{
    fprintf(d->out, "QEMU legacy CPR stream:\n");
    fprintf(d->out, "  Magic:                \"QCPR\", version 1\n");
    fprintf(d->out, "  Stream size:          %" PRIu64 " bytes\n", li->size);
    fprintf(d->out, "  Trailing bytes:       %" PRIu64 "\n", li->trailing);
    fprintf(d->out, "  Mode:                 %s\n", mode_name(li->mode));
    fprintf(d->out, "  vfio subsection:      %s\n", form_text(li->vfio_form));
    fprintf(d->out, "  Decoded:              %s\n",
            li->flags & CPRS_LEGACY_F_LENIENT ?
            "leniently (what QEMU accepts)" : "strictly");
}

static void legacy_fds(Dump *d, const CprsLegacy *lg, uint32_t mode)
{
    uint32_t i, n = cprs_legacy_fd_count(lg);
    CprsFdInfo fi;
    uint64_t off;
    char fd[16];

    fprintf(d->out, "\nfd records: %u\n", n);
    if (n) {
        fprintf(d->out, "  [  Nr] Offset     Slot    Fd          Id Name\n");
    }
    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        if (cprs_legacy_fd_get(lg, i, &fi) ||
            cprs_legacy_fd_offset(lg, i, &off)) {
            continue;
        }
        if (fi.fd < 0) {
            snprintf(fd, sizeof(fd), "-");
        } else {
            snprintf(fd, sizeof(fd), "%d", fi.fd);
        }
        fprintf(d->out, "  [%4u] 0x%08" PRIx64 " %4u %5s %11d %s\n", i, off,
                fi.slot, fd, fi.id, txn(fi.name, fi.name_len));
    }
    if (n && mode == CPRS_MODE_TRANSFER) {
        fprintf(d->out, "  Fd -: cpr-transfer, the fd travels by "
                "SCM_RIGHTS with the record's 0x20 byte\n");
    }
}

static void legacy_vfio(Dump *d, const CprsLegacy *lg)
{
    uint32_t i, n = cprs_legacy_vfio_count(lg);
    CprsVfioDeviceInfo vi;
    uint64_t off;

    fprintf(d->out, "\nvfio devices: %u\n", n);
    if (n) {
        fprintf(d->out, "  [  Nr] Offset           Devid    IOAS    HWPT "
                "Name\n");
    }
    for (i = 0; i < n; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        if (cprs_legacy_vfio_get(lg, i, &vi) ||
            cprs_legacy_vfio_offset(lg, i, &off)) {
            continue;
        }
        fprintf(d->out, "  [%4u] 0x%08" PRIx64 " %11d %7u %7u %s\n", i, off,
                vi.devid, vi.ioas_id, vi.hwpt_id,
                txn(vi.name, vi.name_len));
    }
}

void dump_legacy(Dump *d, const Source *s, uint32_t select)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    const CprsLegacy *lg = s->legacy;
    uint32_t want = select ? select : OPT_SELECTORS;

    cprs_legacy_get_info(lg, &li);
    if (want & OPT_HEADER) {
        legacy_properties(d, &li);
    }
    /* Asked for by name, the parts a stream has not are said so. */
    if (select & OPT_SECTIONS) {
        fprintf(d->out, "\nSection directory: none (a QCPR stream has no "
                "sections)\n");
    }
    if (want & OPT_FDS) {
        legacy_fds(d, lg, li.mode);
    }
    if (select & OPT_RAM) {
        fprintf(d->out, "\nRAM blocks: none (a QCPR stream carries no RAM "
                "block maps)\n");
    }
    if (want & OPT_DEVICES) {
        legacy_vfio(d, lg);
    }
    if (want & OPT_HEADER) {
        dump_legacy_warnings(d, lg);
    }
}
