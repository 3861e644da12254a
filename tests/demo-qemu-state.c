/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * demo-qemu-state.c - build the CPR state of a q35 QEMU for real and
 * inspect it live.
 *
 * Creates guest-RAM and ROM memfds with the names, sizes and seals QEMU
 * 10.2 used in the captured cpr-exec run, registers them the way QEMU does
 * (newest first), describes each fd with cprs_fd_identify(), writes the
 * arena into a sealed memfd named QEMU_CPR_EXEC_STATE, and then runs
 * cprdump on /proc/PID/fd/N of this very process, as an engineer would on
 * a waiting QEMU.
 *
 * usage: demo-qemu-state CPRDUMP [ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cprstate.h"

typedef struct Block {
    const char *name;
    uint64_t used;
    uint64_t max;
    unsigned seals;
    uint32_t nranges;
    CprsGpaRange ranges[2];
} Block;

/* q35, -m 128M, memory-backend-memfd ram0, in registration order. */
static const Block blocks[] = {
    { "ram0", 0x8000000, 0x8000000, F_SEAL_SEAL | F_SEAL_SHRINK |
      F_SEAL_GROW, 1, { { 0x0, 0x8000000, 0 } } },
    { "pc.bios", 0x40000, 0x40000, 0, 2,
      { { 0xfffc0000, 0x40000, 0 }, { 0xe0000, 0x20000, 0x20000 } } },
    { "pc.rom", 0x20000, 0x20000, 0, 1, { { 0xc0000, 0x20000, 0 } } },
    { "/rom@etc/acpi/tables", 0x20000, 0x200000, 0, 0, { { 0 } } },
    { "/rom@etc/table-loader", 0x1000, 0x10000, 0, 0, { { 0 } } },
    { "/rom@etc/acpi/rsdp", 0x1000, 0x1000, 0, 0, { { 0 } } },
};
#define NBLOCKS (sizeof(blocks) / sizeof(blocks[0]))

static int die(const char *what, int err)
{
    fprintf(stderr, "demo-qemu-state: %s: %s\n", what, strerror(-err));
    exit(1);
}

int main(int argc, char **argv)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts, .mode = CPRS_MODE_EXEC,
                                 .generation = 1,
                                 .producer = "demo-qemu-state");
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    CprsWriter *w;
    int fds[NBLOCKS], state_fd, ret;
    char path[64], **args;
    uint32_t idx;
    size_t i;
    pid_t pid;
    int status;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CPRDUMP [ARGS...]\n", argv[0]);
        return 2;
    }
    ret = cprs_writer_new(&o, &w);
    if (ret) {
        die("cprs_writer_new", ret);
    }
    for (i = 0; i < NBLOCKS; i++) {
        fds[i] = memfd_create(blocks[i].name, MFD_CLOEXEC |
                              (blocks[i].seals ? MFD_ALLOW_SEALING : 0));
        if (fds[i] < 0 || ftruncate(fds[i], (off_t)blocks[i].max) < 0 ||
            (blocks[i].seals &&
             fcntl(fds[i], F_ADD_SEALS, blocks[i].seals) < 0)) {
            die(blocks[i].name, -errno);
        }
    }
    /* QEMU lists the newest registration first. */
    for (i = NBLOCKS; i-- > 0;) {
        fi = CPRS_OPTS(CprsFdInfo, .name = blocks[i].name, .fd = fds[i]);
        ret = cprs_fd_identify(fds[i], &fi);
        if (!ret) {
            ret = cprs_writer_add_fd(w, &fi, &idx);
        }
        if (ret) {
            die(blocks[i].name, ret);
        }
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = blocks[i].name,
                       .fd_index = idx, .flags = CPRS_RAM_F_SHARED |
                       (blocks[i].used < blocks[i].max ?
                        CPRS_RAM_F_RESIZEABLE : 0),
                       .used_length = blocks[i].used,
                       .max_length = blocks[i].max,
                       .page_size = (uint64_t)sysconf(_SC_PAGESIZE),
                       .align = 0x200000);
        ret = cprs_writer_add_ramblock(w, &bi, blocks[i].ranges,
                                       blocks[i].nranges, NULL);
        if (ret) {
            die(blocks[i].name, ret);
        }
    }
    ret = cprs_writer_finish_memfd(w, "QEMU_CPR_EXEC_STATE",
                                   CPRS_MEMFD_F_SEAL, &state_fd);
    cprs_writer_free(w);
    if (ret) {
        die("cprs_writer_finish_memfd", ret);
    }

    /* Inspect ourselves from outside, through /proc. */
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), state_fd);
    printf("demo-qemu-state: pid %d holds its CPR state in fd %d; "
           "running %s %s\n\n", (int)getpid(), state_fd, argv[1], path);
    fflush(stdout);
    args = calloc((size_t)argc + 1, sizeof(*args));
    for (i = 1; i < (size_t)argc; i++) {
        args[i - 1] = argv[i];
    }
    args[argc - 1] = path;
    pid = fork();
    if (pid == 0) {
        execv(args[0], args);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        die("fork", -errno);
    }
    free(args);
    for (i = 0; i < NBLOCKS; i++) {
        close(fds[i]);
    }
    close(state_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
