/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-holder.c - a process that holds a CPR state the way QEMU does
 * after a cpr-exec, for the cprdump tests.
 *
 * Stage 1 creates guest-RAM and ROM memfds with the names and sizes of
 * the captured q35 run (a-q35-memfd), an eventfd, and the state: an arena
 * (sealed, as libcprstate writes it) or a legacy "QCPR" stream (unsealed,
 * as QEMU 10.2 writes it) in a memfd named QEMU_CPR_EXEC_STATE, written
 * with write() so that its offset is left at the end.  It clears
 * close-on-exec on every preserved fd, makes a duplicate of the state fd
 * without close-on-exec whose number goes into QEMU_CPR_EXEC_STATE
 * (cprs_exec_persist()), and exec()s itself: stage 2 is the "new QEMU",
 * and /proc/PID/environ shows the variable exactly as for QEMU.
 *
 * Stage 2 prints one "FD NAME NUMBER" line per preserved fd, then
 * "READY PID STATEFD", and obeys one command per line on stdin, answering
 * "OK" or "ERR reason":
 *   close NAME        close the fd of record NAME
 *   replace NAME      dup2() a new memfd of the same size over it
 *   truncate NAME N   ftruncate() its memfd to N bytes
 *   map               mmap() the state read-only, MAP_SHARED
 *   reader            open the state with cprs_reader_open_fd() and keep
 *                     the reader (a MAP_PRIVATE mapping, as a reader has)
 *   copy              keep a heap copy of the state bytes (no mapping)
 *   unmap             drop the mapping, the reader and the copy
 *   filter HEX        write HEX to /proc/self/coredump_filter: what the
 *                     kernel and gcore dump (the tests keep cores small,
 *                     which matters under ASan: its shadow is terabytes)
 *   pipe              make a pipe as fd 100 and a socketpair as fd 101,
 *                     each with 37 bytes queued for this process
 *   pending           answer "OK P S": the bytes still queued in them
 *   evil NAME         dup2() over the fd of record NAME a memfd whose name
 *                     holds terminal escapes, CR and LF
 *   quit              exit 0
 *
 * usage: state-holder [--legacy] [--transfer] [--map]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-internal.h"

typedef struct Block {
    const char *name;       /* cpr name and RAMBlock idstr */
    const char *memfd;      /* name of the memfd itself */
    uint64_t used;
    uint64_t max;
    unsigned seals;
    uint32_t ram_flags;
    uint32_t nranges;
    CprsGpaRange ranges[2];
} Block;

/* q35, -m 128M, memory-backend-memfd ram0: newest registration first. */
static const Block blocks[] = {
    { "/rom@etc/acpi/rsdp", "/rom@etc/acpi/rsdp", 0x1000, 0x1000, 0,
      CPRS_RAM_F_SHARED, 0, { { 0 } } },
    { "/rom@etc/table-loader", "/rom@etc/table-loader", 0x1000, 0x10000, 0,
      CPRS_RAM_F_SHARED | CPRS_RAM_F_RESIZEABLE, 0, { { 0 } } },
    { "/rom@etc/acpi/tables", "/rom@etc/acpi/tables", 0x20000, 0x200000, 0,
      CPRS_RAM_F_SHARED | CPRS_RAM_F_RESIZEABLE, 0, { { 0 } } },
    { "pc.rom", "pc.rom", 0x20000, 0x20000, 0, CPRS_RAM_F_SHARED, 1,
      { { 0xc0000, 0x20000, 0 } } },
    { "pc.bios", "pc.bios", 0x40000, 0x40000, 0, CPRS_RAM_F_SHARED, 2,
      { { 0xfffc0000, 0x40000, 0 }, { 0xe0000, 0x20000, 0x20000 } } },
    { "ram0", "memory-backend-memfd", 0x8000000, 0x8000000,
      F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW, CPRS_RAM_F_SHARED, 1,
      { { 0x0, 0x8000000, 0 } } },
};
#define NBLOCKS (sizeof(blocks) / sizeof(blocks[0]))
#define EVENTFD_NAME "vfio-0000:00:05.0-intx"
#define MAX_FDS (NBLOCKS + 1)

static const char *fd_names[MAX_FDS];
static int fd_nums[MAX_FDS];
static size_t n_fds;

static void die(const char *what, int err)
{
    fprintf(stderr, "state-holder: %s: %s\n", what, strerror(err < 0 ?
                                                              -err : err));
    exit(2);
}

/* Make an fd survive exec(), as QEMU does for every preserved fd. */
static void keep_on_exec(int fd)
{
    if (fcntl(fd, F_SETFD, 0) < 0) {
        die("fcntl(F_SETFD)", errno);
    }
}

static int new_memfd(const char *name, uint64_t size, unsigned seals)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        die("memfd", errno);
    }
    if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0) {
        die("F_ADD_SEALS", errno);
    }
    return fd;
}

static void build_arena(uint32_t mode, const int *fds, int efd,
                        void **ret_buf, size_t *ret_size)
{
    static const char payload[] = "state-holder device state, "
                                  "state-holder device state";
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts, .mode = mode,
                                 .generation = 1,
                                 .producer = "state-holder");
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo,
                                      .name = "0000:00:05.0", .devid = 1,
                                      .ioas_id = 2, .hwpt_id = 3);
    CprsDevStateInfo ds = CPRS_OPTS(CprsDevStateInfo, .name = "holder",
                                    .instance_id = 0, .version_id = 1);
    CprsRamBlockInfo bi;
    CprsFdInfo fi;
    CprsWriter *w;
    uint32_t idx[NBLOCKS];
    size_t i;
    int ret;

    ret = cprs_writer_new(&o, &w);
    if (ret) {
        die("cprs_writer_new", ret);
    }
    for (i = 0; i < NBLOCKS; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = blocks[i].name, .id = 0,
                       .fd = fds[i]);
        ret = cprs_fd_identify(fds[i], &fi);
        if (!ret) {
            ret = cprs_writer_add_fd(w, &fi, &idx[i]);
        }
        if (ret) {
            die("add fd", ret);
        }
    }
    fi = CPRS_OPTS(CprsFdInfo, .name = EVENTFD_NAME, .id = 0, .fd = efd);
    ret = cprs_fd_identify(efd, &fi);
    if (!ret) {
        ret = cprs_writer_add_fd(w, &fi, NULL);
    }
    if (ret) {
        die("add eventfd", ret);
    }
    for (i = 0; i < NBLOCKS; i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = blocks[i].name,
                       .fd_index = idx[i], .flags = blocks[i].ram_flags,
                       .used_length = blocks[i].used,
                       .max_length = blocks[i].max, .page_size = 0x1000,
                       .align = 0x200000);
        ret = cprs_writer_add_ramblock(w, &bi, blocks[i].ranges,
                                       blocks[i].nranges, NULL);
        if (ret) {
            die("add ramblock", ret);
        }
    }
    ret = cprs_writer_add_vfio(w, &vi, NULL);
    if (!ret) {
        ret = cprs_writer_add_devstate(w, &ds, payload, sizeof(payload),
                                       NULL);
    }
    if (!ret) {
        ret = cprs_writer_finish_buffer(w, ret_buf, ret_size);
    }
    if (ret) {
        die("finish", ret);
    }
    cprs_writer_free(w);
}

static void build_legacy(uint32_t mode, const int *fds, int efd,
                         void **ret_buf, size_t *ret_size)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = mode);
    CprsFdInfo fi;
    CprsLegacy *lg;
    size_t i;
    int ret;

    ret = cprs_legacy_new(&o, &lg);
    if (ret) {
        die("cprs_legacy_new", ret);
    }
    /* The eventfd was registered last: it comes first. */
    fi = CPRS_OPTS(CprsFdInfo, .name = EVENTFD_NAME, .id = 0,
                   .fd = mode == CPRS_MODE_EXEC ? efd : -1);
    ret = cprs_legacy_add_fd(lg, &fi, NULL);
    for (i = 0; !ret && i < NBLOCKS; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = blocks[i].name, .id = 0,
                       .fd = mode == CPRS_MODE_EXEC ? fds[i] : -1);
        ret = cprs_legacy_add_fd(lg, &fi, NULL);
    }
    if (!ret) {
        ret = cprs_legacy_encode(lg, NULL, ret_buf, ret_size);
    }
    if (ret) {
        die("legacy", ret);
    }
    cprs_legacy_free(lg);
}

/* Stage 1: the "old QEMU" saves its state and execs the new one. */
static void stage1(char *self, bool legacy, uint32_t mode, bool map)
{
    char **args, num[32];
    int fds[NBLOCKS], efd, state_fd, keep_fd, ret;
    size_t i, size, n = 0;
    void *buf;

    for (i = 0; i < NBLOCKS; i++) {
        fds[i] = new_memfd(blocks[i].memfd, blocks[i].max, blocks[i].seals);
    }
    efd = eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
        die("eventfd", errno);
    }
    if (legacy) {
        build_legacy(mode, fds, efd, &buf, &size);
    } else {
        build_arena(mode, fds, efd, &buf, &size);
    }
    /* QEMU writes the state with write(): the offset stays at the end. */
    state_fd = memfd_create(CPRS_EXEC_STATE_NAME,
                            MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (state_fd < 0 || write(state_fd, buf, size) != (ssize_t)size) {
        die("state memfd", errno);
    }
    free(buf);
    if (!legacy && fcntl(state_fd, F_ADD_SEALS, F_SEAL_WRITE |
                         F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        die("seal state", errno);
    }
    ret = cprs_exec_persist(state_fd, &keep_fd);
    if (ret) {
        die("cprs_exec_persist", ret);
    }
    for (i = 0; i < NBLOCKS; i++) {
        keep_on_exec(fds[i]);
    }
    keep_on_exec(efd);

    args = calloc(2 * MAX_FDS + 4, sizeof(*args));
    if (!args) {
        die("calloc", ENOMEM);
    }
    args[n++] = self;
    args[n++] = (char *)(map ? "--stage2-map" : "--stage2");
    for (i = 0; i < NBLOCKS; i++) {
        snprintf(num, sizeof(num), "%d", fds[i]);
        args[n++] = (char *)blocks[i].name;
        args[n++] = strdup(num);
    }
    snprintf(num, sizeof(num), "%d", efd);
    args[n++] = (char *)EVENTFD_NAME;
    args[n++] = strdup(num);
    args[n] = NULL;
    /* The original state fd is close-on-exec: only the duplicate stays. */
    execv("/proc/self/exe", args);
    die("execv", errno);
}

static int lookup(const char *name)
{
    size_t i;

    for (i = 0; i < n_fds; i++) {
        if (!strcmp(fd_names[i], name)) {
            return fd_nums[i];
        }
    }
    return -1;
}

/* The state fd, from the variable the old image left. */
static int state_fd_from_env(void)
{
    const char *v = getenv(CPRS_EXEC_STATE_NAME);

    return v ? atoi(v) : -1;
}

typedef struct Held {
    void *map;
    size_t map_len;
    CprsReader *reader;
    void *copy;
} Held;

static void drop(Held *h)
{
    if (h->map) {
        munmap(h->map, h->map_len);
    }
    cprs_reader_close(h->reader);
    free(h->copy);
    memset(h, 0, sizeof(*h));
}

/* Fds 100 (a pipe) and 101 (a socket) with data queued for us. */
static const char *queued(const char *cmd)
{
    static const char data[37] = "bytes that belong to the state-holder";
    static char answer[64];
    int p[2], sv[2], inq = -1, outq = -1;

    if (!strcmp(cmd, "pipe")) {
        if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
            dup2(p[0], 100) < 0 || dup2(sv[0], 101) < 0 ||
            write(p[1], data, sizeof(data)) != sizeof(data) ||
            write(sv[1], data, sizeof(data)) != sizeof(data)) {
            return "ERR pipe";
        }
        /* Keep the writing ends: a reader would wait for more. */
        close(p[0]);
        close(sv[0]);
        return "OK";
    }
    if (ioctl(100, FIONREAD, &inq) || ioctl(101, FIONREAD, &outq)) {
        return "ERR FIONREAD";
    }
    snprintf(answer, sizeof(answer), "OK %d %d", inq, outq);
    return answer;
}

static const char *command(Held *h, char *line)
{
    char *cmd = strtok(line, "\n "), *arg = strtok(NULL, "\n ");
    char *arg2 = strtok(NULL, "\n ");
    int sfd = state_fd_from_env(), fd, nfd;
    struct stat st;

    if (!cmd) {
        return "ERR empty command";
    }
    if (!strcmp(cmd, "quit")) {
        drop(h);
        exit(0);
    }
    if (!strcmp(cmd, "map") || !strcmp(cmd, "copy")) {
        if (fstat(sfd, &st) < 0) {
            return "ERR fstat";
        }
        if (!strcmp(cmd, "copy")) {
            h->copy = malloc((size_t)st.st_size);
            if (!h->copy || pread(sfd, h->copy, (size_t)st.st_size, 0) !=
                st.st_size) {
                return "ERR copy";
            }
            return "OK";
        }
        h->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, sfd,
                      0);
        if (h->map == MAP_FAILED) {
            h->map = NULL;
            return "ERR mmap";
        }
        h->map_len = (size_t)st.st_size;
        /* Touch every page, as a reader of the state would. */
        (void)*(volatile const char *)h->map;
        return "OK";
    }
    if (!strcmp(cmd, "reader")) {
        return cprs_reader_open_fd(sfd, NULL, NULL, &h->reader) ?
               "ERR reader" : "OK";
    }
    if (!strcmp(cmd, "unmap")) {
        drop(h);
        return "OK";
    }
    if (!strcmp(cmd, "filter") && arg) {
        FILE *f = fopen("/proc/self/coredump_filter", "w");

        if (!f) {
            return "ERR coredump_filter";
        }
        fprintf(f, "%s\n", arg);
        return fclose(f) ? "ERR coredump_filter" : "OK";
    }
    if (!strcmp(cmd, "pipe") || !strcmp(cmd, "pending")) {
        return queued(cmd);
    }
    fd = arg ? lookup(arg) : -1;
    if (fd < 0) {
        return "ERR no such record";
    }
    if (!strcmp(cmd, "evil")) {
        /* A name that, printed raw, would retitle the terminal, move
         * the cursor and forge a line of check-live's report. */
        nfd = new_memfd("\033]0;owned\007\033[2J\r\nOK        fd 3", 4096,
                        0);
        if (dup2(nfd, fd) < 0) {
            return "ERR dup2";
        }
        close(nfd);
        return "OK";
    }
    if (!strcmp(cmd, "close")) {
        return close(fd) ? "ERR close" : "OK";
    }
    if (!strcmp(cmd, "replace")) {
        if (fstat(fd, &st) < 0) {
            return "ERR fstat";
        }
        nfd = new_memfd("replacement", (uint64_t)st.st_size, 0);
        if (dup2(nfd, fd) < 0) {
            return "ERR dup2";
        }
        close(nfd);
        return "OK";
    }
    if (!strcmp(cmd, "truncate") && arg2) {
        return ftruncate(fd, (off_t)strtoull(arg2, NULL, 0)) ?
               "ERR ftruncate" : "OK";
    }
    return "ERR unknown command";
}

/* Stage 2: the "new QEMU", waiting for its incoming migration. */
static int stage2(int argc, char **argv, bool map)
{
    char line[256], cmd[8] = "map";
    Held h = { 0 };
    int i;

    for (i = 2; i + 1 < argc && n_fds < MAX_FDS; i += 2) {
        fd_names[n_fds] = argv[i];
        fd_nums[n_fds++] = atoi(argv[i + 1]);
        printf("FD %s %s\n", argv[i], argv[i + 1]);
    }
    if (map && strcmp(command(&h, cmd), "OK")) {
        die("map", EINVAL);
    }
    printf("READY %d %d\n", (int)getpid(), state_fd_from_env());
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        printf("%s\n", command(&h, line));
        fflush(stdout);
    }
    drop(&h);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t mode = CPRS_MODE_EXEC;
    bool legacy = false, map = false;
    int i;

    if (argc >= 2 && !strcmp(argv[1], "--stage2")) {
        return stage2(argc, argv, false);
    }
    if (argc >= 2 && !strcmp(argv[1], "--stage2-map")) {
        return stage2(argc, argv, true);
    }
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--legacy")) {
            legacy = true;
        } else if (!strcmp(argv[i], "--transfer")) {
            mode = CPRS_MODE_TRANSFER;
        } else if (!strcmp(argv[i], "--map")) {
            map = true;
        } else {
            fprintf(stderr, "usage: %s [--legacy] [--transfer] [--map]\n",
                    argv[0]);
            return 2;
        }
    }
    stage1(argv[0], legacy, mode, map);
    return 2;
}
