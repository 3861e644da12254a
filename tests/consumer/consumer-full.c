/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program built against the installed libcprstate alone (its pkg-config
 * file): what a VMM does with it.  It records a memfd in a state (the
 * handover layer), writes an arena holding it into a sealed memfd (the
 * writer), opens, verifies and looks the record up again (the reader).
 *
 * consumer-full VERSION: VERSION is the pkg-config module version, which
 * the library linked at run time must report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cprstate.h>

static int fail(const char *what, int ret)
{
    fprintf(stderr, "consumer-full: %s: %s\n", what, cprs_strerror(ret));
    return 1;
}

int main(int argc, char **argv)
{
    CprsWriterOpts wopts = CPRS_OPTS(CprsWriterOpts,
                                     .mode = CPRS_MODE_EXEC,
                                     .generation = 3);
    CprsFdInfo rec = CPRS_OPTS(CprsFdInfo, .name = "ram0", .id = 0,
                               .kind = CPRS_FD_KIND_MEMFD);
    CprsFdInfo got = CPRS_OPTS(CprsFdInfo);
    CprsArenaInfo info = CPRS_OPTS(CprsArenaInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsState *state = NULL;
    CprsWriter *writer = NULL;
    CprsReader *reader = NULL;
    uint32_t idx;
    int ram, arena = -1, ret;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer-full VERSION\n");
        return 2;
    }
    if (strcmp(cprs_version(), argv[1]) != 0) {
        fprintf(stderr, "consumer-full: runs against libcprstate %s, "
                "built for %s\n", cprs_version(), argv[1]);
        return 1;
    }
    ram = memfd_create("ram0", MFD_CLOEXEC);
    if (ram < 0 || ftruncate(ram, 1 << 20) < 0) {
        return fail("memfd", -errno);
    }

    ret = cprs_state_new(&state);
    if (!ret) {
        ret = cprs_state_save_fd(state, "ram0", 0, ram);
    }
    if (!ret && cprs_state_find_fd(state, "ram0", 0) != ram) {
        ret = -ENOENT;
    }
    cprs_state_free(state);
    if (ret) {
        return fail("state", ret);
    }

    rec.name_len = 4;
    rec.fd = ram;
    ret = cprs_writer_new(&wopts, &writer);
    if (!ret) {
        ret = cprs_writer_add_fd(writer, &rec, NULL);
    }
    if (!ret) {
        ret = cprs_writer_finish_memfd(writer, "consumer", CPRS_MEMFD_F_SEAL,
                                       &arena);
    }
    cprs_writer_free(writer);
    if (ret) {
        return fail("writer", ret);
    }

    ret = cprs_reader_open_fd(arena, NULL, &diag, &reader);
    if (!ret) {
        ret = cprs_reader_verify(reader, &diag);
    }
    if (!ret) {
        ret = cprs_reader_get_info(reader, &info);
    }
    if (!ret) {
        ret = cprs_reader_fd_find(reader, "ram0", 0, &idx);
    }
    if (!ret) {
        ret = cprs_reader_fd_get(reader, idx, &got);
    }
    if (!ret && (info.generation != 3 || got.fd != ram ||
                 got.kind != CPRS_FD_KIND_MEMFD ||
                 cprs_reader_fd_count(reader) != 1)) {
        ret = -EBADMSG;
    }
    cprs_reader_close(reader);
    close(arena);
    close(ram);
    if (ret) {
        return fail("reader", ret);
    }
    printf("consumer-full: libcprstate %s: state, writer and reader OK\n",
           cprs_version());
    return 0;
}
