/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dump-records.c - "cprdump show": fd records, RAM blocks and their
 * guest-physical ranges, vfio devices and device-state payloads, one
 * aligned table each with the name last (names can be long).
 */
#include <inttypes.h>

#include "render.h"

static void record_error(Dump *d, CprsReader *r, const char *what,
                         uint32_t index, int err)
{
    const CprsDiag *diag = cprs_reader_last_diag(r);
    char text[256] = "";

    if (diag->error == err) {
        cprs_diag_format(diag, text, sizeof(text));
    } else {
        snprintf(text, sizeof(text), "%s", cprs_strerror(err));
    }
    fprintf(d->out, "  [%4u] <%s unreadable: %s>\n", index, what, text);
    d->errors++;
}

/* A table's title with its row count, and its column heads if any row. */
static bool table(Dump *d, const char *title, uint32_t n, const char *heads)
{
    fprintf(d->out, "\n%s: %u\n", title, n);
    if (n) {
        fprintf(d->out, "  [  Nr] %s\n", heads);
    }
    return n;
}

void dump_fds(Dump *d, CprsReader *r)
{
    uint32_t i, n = cprs_reader_fd_count(r);
    CprsFdInfo fi;
    const char *kind;
    char flags[8];
    int ret;

    if (!table(d, "fd records", n, "Slot    Fd          Id Kind            "
               "Flg Seals Dev        Inode      Mode         Size Name")) {
        return;
    }
    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(r, i, &fi);
        if (ret) {
            record_error(d, r, "fd record", i, ret);
            continue;
        }
        kind = cprs_fd_kind_name(fi.kind);
        fd_flags_str(flags, sizeof(flags), fi.flags);
        fprintf(d->out, "  [%4u] %4u %5d %11d ", i, fi.slot, fi.fd, fi.id);
        if (kind) {
            fprintf(d->out, "%-15s ", kind);
        } else {
            fprintf(d->out, "kind-%-10u ", fi.kind);
        }
        fprintf(d->out, "%-3s ", flags);
        if (fi.flags & CPRS_FD_F_SEALS) {
            fprintf(d->out, "0x%03x ", fi.seals);
        } else {
            fprintf(d->out, "    - ");
        }
        if (fi.flags & CPRS_FD_F_IDENTITY) {
            fprintf(d->out, "0x%08" PRIx64 " %-10" PRIu64 " 0%06o %12"
                    PRIu64 " ", fi.dev, fi.ino, fi.st_mode, fi.size);
        } else {
            fprintf(d->out, "-          -          -                 - ");
        }
        fprintf(d->out, "%s\n", txn(fi.name, fi.name_len));
    }
    fprintf(d->out, "  Flg: I identity recorded, S seals recorded\n");
}

void dump_ramblocks(Dump *d, CprsReader *r)
{
    uint32_t i, k, n = cprs_reader_ramblock_count(r);
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    char flags[8], fd[16];
    int ret;

    if (!table(d, "RAM blocks", n, "  Fd Flags  FdOffset     Used         "
               "Max          PageSize Align    Idstr")) {
        return;
    }
    for (i = 0; i < n; i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        ret = cprs_reader_ramblock_get(r, i, &bi);
        if (ret) {
            record_error(d, r, "RAM block", i, ret);
            continue;
        }
        ram_flags_str(flags, sizeof(flags), bi.flags);
        if (bi.fd_index == CPRS_NO_INDEX) {
            snprintf(fd, sizeof(fd), "-");
        } else {
            snprintf(fd, sizeof(fd), "%u", bi.fd_index);
        }
        fprintf(d->out, "  [%4u] %4s %-6s 0x%-10" PRIx64 " 0x%-10" PRIx64
                " 0x%-10" PRIx64 " 0x%-6" PRIx64 " 0x%-6" PRIx64 " %s\n", i,
                fd, flags, bi.fd_offset, bi.used_length, bi.max_length,
                bi.page_size, bi.align, txn(bi.idstr, bi.idstr_len));
        for (k = 0; k < bi.range_count; k++) {
            ret = cprs_reader_gpa_range_get(r, i, k, &gr);
            if (ret) {
                record_error(d, r, "GPA range", k, ret);
                continue;
            }
            fprintf(d->out, "           GPA 0x%016" PRIx64 "-0x%016" PRIx64
                    " at block offset 0x%" PRIx64 "\n", gr.gpa,
                    gr.gpa + (gr.size - 1), gr.block_offset);
        }
    }
    fprintf(d->out, "  Flags: s shared, r resizeable, p prealloc, "
            "n noreserve, o read-only\n");
}

void dump_devices(Dump *d, CprsReader *r)
{
    uint32_t i, n = cprs_reader_vfio_count(r);
    CprsVfioDeviceInfo vi;
    CprsDevStateInfo di;
    int ret;

    table(d, "vfio devices", n, "      Devid    IOAS    HWPT Name");
    for (i = 0; i < n; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &vi);
        if (ret) {
            record_error(d, r, "vfio device", i, ret);
            continue;
        }
        fprintf(d->out, "  [%4u] %11d %7u %7u %s\n", i, vi.devid, vi.ioas_id,
                vi.hwpt_id, txn(vi.name, vi.name_len));
    }

    n = cprs_reader_devstate_count(r);
    table(d, "Device state", n, "  Instance    Version Comp       Stored"
          "          Raw Name");
    for (i = 0; i < n; i++) {
        di = CPRS_OPTS(CprsDevStateInfo);
        ret = cprs_reader_devstate_get(r, i, &di);
        if (ret) {
            record_error(d, r, "device state", i, ret);
            continue;
        }
        fprintf(d->out, "  [%4u] %10u %10u %-4s %12" PRIu64 " %12" PRIu64
                " %s\n", i, di.instance_id, di.version_id,
                di.flags & CPRS_DEVSTATE_F_ZSTD ? "zstd" : "-",
                di.stored_size, di.raw_size, txn(di.name, di.name_len));
    }
}
