/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-vmm.c - a small VMM-like process that live-updates itself with
 * libcprstate, the way QEMU does with cpr-exec and cpr-transfer.
 *
 * Its "guest" is a set of RAM blocks in memfds (sealed against resizing,
 * like QEMU's memory backends) that a worker thread fills with a pattern
 * that depends on the hop; its "devices" are eventfds with pending
 * counts, a pipe and a socketpair with data in flight, a synthetic vfio
 * record and a CPU state payload.  Each hop stops the worker, saves the
 * state, preserves the fds and exec()s the same binary (same PID); the
 * new image loads the state, maps its RAM again, checks every byte and
 * every fd, and goes on.  One hop may write QEMU's legacy stream (the
 * old side is a QEMU without libcprstate); a final hop may go to a
 * second process over a unix socket (cpr-transfer).
 *
 * As in QEMU, the RAM layout comes from the command line, which every
 * hop passes on; the CPR state only hands over the fds, and, in an
 * arena, RAM block maps that are cross-checked against the layout.
 *
 * usage: cprs-vmm [--hops N] [--legacy-hop K] [--transfer]
 *                 [--blocks N] [--block-mib M] [--wait] [--quiet]
 * Exit 0 when every hop verified, 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cprstate.h"

#define PAGE 4096u
#define MAX_BLOCKS 64
#define CPU_MAGIC UINT64_C(0x4350555354415445)   /* "CPUSTATE" */

typedef struct Config {
    int hops;                   /* cpr-exec hops to make */
    int legacy_hop;             /* hop whose old side writes legacy, or 0 */
    int transfer;               /* finish with a cpr-transfer hop */
    int blocks;
    int block_mib;
    int wait;                   /* last image waits for SIGUSR1 to load */
    int quiet;
    const char *ready;          /* file the waiting image writes its pid to */
    int hop;                    /* this image's hop number (0 = first) */
    const char *incoming;       /* transfer target: socket path */
} Config;

typedef struct Vm {
    Config cfg;
    CprsState *state;
    int ram_fd[MAX_BLOCKS];
    uint8_t *ram[MAX_BLOCKS];
    uint64_t ram_size;
    int irq[2];                 /* eventfds */
    int pipe_rd;
    int pipe_wr;
    int chr[2];                 /* socketpair */
} Vm;

typedef struct CpuState {
    uint64_t magic;
    uint64_t hop;
    uint64_t regs[510];
} CpuState;

#define G_PRINTF __attribute__((format(printf, 1, 2)))

static const char *prog = "cprs-vmm";
static int quiet;

static void G_PRINTF say(const char *fmt, ...)
{
    va_list ap;

    if (quiet) {
        return;
    }
    va_start(ap, fmt);
    printf("[%s pid %d] ", prog, (int)getpid());
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static void G_PRINTF die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "[%s pid %d] FAILED: ", prog, (int)getpid());
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void die_diag(const char *what, int ret, const CprsDiag *d)
{
    char text[256] = "";

    if (d && d->reason) {
        cprs_diag_format(d, text, sizeof(text));
    }
    die("%s: %s (%s)", what, strerror(ret < 0 ? -ret : ret), text);
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* What a state was loaded from, and its generation (cprs_state_get_info). */
static CprsStateInfo state_info(const CprsState *s)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);

    if (cprs_state_get_info(s, &si)) {
        die("cannot query the CPR state");
    }
    return si;
}

/* ---- The guest's memory ------------------------------------------------ */

/* The word the guest wrote at @word of page @page of block @b at @hop. */
static inline uint64_t pattern(int b, uint64_t page, uint64_t word, int hop)
{
    uint64_t x = ((uint64_t)b << 48) ^ (page << 16) ^ word ^
                 ((uint64_t)hop * UINT64_C(0x9e3779b97f4a7c15));

    x ^= x >> 31;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    return x ^ (x >> 29);
}

typedef struct Worker {
    Vm *vm;
    int hop;
} Worker;

/* The "vCPU": rewrites all of guest RAM for this hop. */
static void *worker_run(void *arg)
{
    Worker *wk = arg;
    Vm *vm = wk->vm;
    uint64_t pages = vm->ram_size / PAGE, p, w;
    int b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        for (p = 0; p < pages; p++) {
            uint64_t *page = (uint64_t *)(vm->ram[b] + p * PAGE);

            for (w = 0; w < PAGE / 8; w++) {
                page[w] = pattern(b, p, w, wk->hop);
            }
        }
    }
    return NULL;
}

/* Run the guest for this hop, then stop it (QEMU stops the VM first). */
static void run_and_stop_guest(Vm *vm)
{
    Worker wk = { vm, vm->cfg.hop };
    pthread_t th;

    if (pthread_create(&th, NULL, worker_run, &wk)) {
        die("cannot start the vCPU thread");
    }
    pthread_join(th, NULL);
}

static void check_guest(Vm *vm, int hop)
{
    uint64_t pages = vm->ram_size / PAGE, p, w;
    int b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        for (p = 0; p < pages; p++) {
            const uint64_t *page = (const uint64_t *)(vm->ram[b] + p * PAGE);

            for (w = 0; w < PAGE / 8; w++) {
                if (page[w] != pattern(b, p, w, hop)) {
                    die("guest RAM block %d page %" PRIu64 " word %" PRIu64
                        " differs after the hop", b, p, w);
                }
            }
        }
    }
}

static void map_ram(Vm *vm)
{
    int b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        vm->ram[b] = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
                          MAP_SHARED, vm->ram_fd[b], 0);
        if (vm->ram[b] == MAP_FAILED) {
            die("cannot map RAM block %d: %s", b, strerror(errno));
        }
    }
}

/* ---- First boot -------------------------------------------------------- */

static void block_name(char *buf, size_t size, int b)
{
    snprintf(buf, size, "ram-node%d", b);
}

/* Record how block @b maps onto its fd, as QEMU does for each RAMBlock. */
static void register_ram_block(Vm *vm, int b)
{
    CprsGpaRange gr = { (uint64_t)b * vm->ram_size, vm->ram_size, 0 };
    CprsRamBlockInfo bi;
    char name[32];
    int ret;

    block_name(name, sizeof(name), b);
    bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = name,
                   .flags = CPRS_RAM_F_SHARED, .used_length = vm->ram_size,
                   .max_length = vm->ram_size, .page_size = PAGE,
                   .align = 0x200000);
    ret = cprs_state_save_ramblock(vm->state, &bi, name, 0, &gr, 1);
    if (ret) {
        die_diag("save RAM block map", ret, NULL);
    }
}

static void create_devices(Vm *vm)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo,
                                      .name = "0000:00:05.0", .devid = 1,
                                      .ioas_id = 2, .hwpt_id = 3);
    char name[32];
    int p[2], b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        block_name(name, sizeof(name), b);
        vm->ram_fd[b] = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (vm->ram_fd[b] < 0 ||
            ftruncate(vm->ram_fd[b], (off_t)vm->ram_size) < 0 ||
            fcntl(vm->ram_fd[b], F_ADD_SEALS,
                  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
            die("cannot create %s: %s", name, strerror(errno));
        }
        if (cprs_state_save_fd(vm->state, name, 0, vm->ram_fd[b])) {
            die("cannot record %s", name);
        }
        register_ram_block(vm, b);
    }
    vm->irq[0] = eventfd(0, EFD_CLOEXEC);
    vm->irq[1] = eventfd(0, EFD_CLOEXEC);
    if (vm->irq[0] < 0 || vm->irq[1] < 0 || pipe2(p, O_CLOEXEC) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, vm->chr) < 0) {
        die("cannot create devices: %s", strerror(errno));
    }
    vm->pipe_rd = p[0];
    vm->pipe_wr = p[1];
    if (cprs_state_save_fd(vm->state, "irqfd", 0, vm->irq[0]) ||
        cprs_state_save_fd(vm->state, "irqfd", 1, vm->irq[1]) ||
        cprs_state_save_fd(vm->state, "console", 0, vm->pipe_rd) ||
        cprs_state_save_fd(vm->state, "console", 1, vm->pipe_wr) ||
        cprs_state_save_fd(vm->state, "chardev", 0, vm->chr[0]) ||
        cprs_state_save_fd(vm->state, "chardev", 1, vm->chr[1]) ||
        cprs_state_save_vfio(vm->state, &vi)) {
        die("cannot record the devices");
    }
    map_ram(vm);
}

/* ---- Before and after a hop -------------------------------------------- */

/* Leave work in flight in every device, and the CPU state. */
static void quiesce(Vm *vm)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "cpu",
                                    .version_id = 1,
                                    .flags = CPRS_DEVSTATE_F_ZSTD);
    uint64_t v = (uint64_t)vm->cfg.hop + 1;
    CpuState cpu;
    char msg[64];
    int i, len, ret;

    if (write(vm->irq[0], &v, 8) != 8 || write(vm->irq[1], &v, 8) != 8) {
        die("eventfd write failed");
    }
    len = snprintf(msg, sizeof(msg), "console output of hop %d",
                   vm->cfg.hop);
    if (write(vm->pipe_wr, msg, (size_t)len) != len ||
        send(vm->chr[0], msg, (size_t)len, 0) != len) {
        die("cannot leave data in flight");
    }
    memset(&cpu, 0, sizeof(cpu));
    cpu.magic = CPU_MAGIC;
    cpu.hop = (uint64_t)vm->cfg.hop;
    for (i = 0; i < 510; i += 17) {
        cpu.regs[i] = pattern(99, (uint64_t)i, 0, vm->cfg.hop);
    }
    cprs_state_delete_devstate(vm->state, "cpu", 0);
    ret = cprs_state_save_devstate(vm->state, &di, &cpu, sizeof(cpu));
    if (ret) {
        die_diag("save CPU state", ret, NULL);
    }
}

/* After a hop: find every fd by name, check what was left in flight. */
static void resume_devices(Vm *vm, int prev_hop, bool arena)
{
    CprsRamBlockInfo bi;
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    CprsGpaRange gr;
    const CpuState *cpu;
    const void *data;
    char name[32], msg[64], want[64];
    uint64_t v;
    size_t size;
    uint32_t version;
    ssize_t n;
    int b, fd, len;

    for (b = 0; b < vm->cfg.blocks; b++) {
        block_name(name, sizeof(name), b);
        vm->ram_fd[b] = cprs_state_find_fd(vm->state, name, 0);
        if (vm->ram_fd[b] < 0) {
            die("RAM block %s has no fd in the CPR state", name);
        }
        if (lseek(vm->ram_fd[b], 0, SEEK_END) != (off_t)vm->ram_size) {
            die("RAM block %s: its memfd has the wrong size", name);
        }
        if (!arena) {
            /* A legacy stream carries no RAM maps: rebuild them from the
             * configuration, as QEMU does when it creates its RAMBlocks. */
            register_ram_block(vm, b);
            continue;
        }
        bi = CPRS_OPTS(CprsRamBlockInfo);
        if (cprs_state_find_ramblock(vm->state, name, &bi, &fd) ||
            fd != vm->ram_fd[b] || bi.used_length != vm->ram_size ||
            cprs_state_gpa_range(vm->state, name, 0, &gr) ||
            gr.gpa != (uint64_t)b * vm->ram_size) {
            die("RAM block map of %s disagrees with the configuration",
                name);
        }
    }
    vm->irq[0] = cprs_state_find_fd(vm->state, "irqfd", 0);
    vm->irq[1] = cprs_state_find_fd(vm->state, "irqfd", 1);
    vm->pipe_rd = cprs_state_find_fd(vm->state, "console", 0);
    vm->pipe_wr = cprs_state_find_fd(vm->state, "console", 1);
    vm->chr[0] = cprs_state_find_fd(vm->state, "chardev", 0);
    vm->chr[1] = cprs_state_find_fd(vm->state, "chardev", 1);
    if (vm->irq[0] < 0 || vm->irq[1] < 0 || vm->pipe_rd < 0 ||
        vm->pipe_wr < 0 || vm->chr[0] < 0 || vm->chr[1] < 0) {
        die("a device fd is missing from the CPR state");
    }
    /* The interrupts raised before the hop are still pending. */
    if (read(vm->irq[0], &v, 8) != 8 || v != (uint64_t)prev_hop + 1 ||
        read(vm->irq[1], &v, 8) != 8 || v != (uint64_t)prev_hop + 1) {
        die("eventfd counts were lost across the hop");
    }
    len = snprintf(want, sizeof(want), "console output of hop %d",
                   prev_hop);
    n = read(vm->pipe_rd, msg, (size_t)len);
    if (n != len || memcmp(msg, want, (size_t)len)) {
        die("pipe data was lost across the hop");
    }
    n = recv(vm->chr[1], msg, (size_t)len, 0);
    if (n != len || memcmp(msg, want, (size_t)len)) {
        die("socketpair data was lost across the hop");
    }
    if (cprs_state_find_vfio(vm->state, "0000:00:05.0", &vi) ||
        vi.devid != 1 || vi.hwpt_id != 3) {
        die("vfio device record lost across the hop");
    }
    if (arena) {
        if (cprs_state_find_devstate(vm->state, "cpu", 0, &data, &size,
                                     &version) ||
            size != sizeof(CpuState)) {
            die("CPU state lost across the hop");
        }
        cpu = data;
        if (cpu->magic != CPU_MAGIC || cpu->hop != (uint64_t)prev_hop ||
            cpu->regs[17] != pattern(99, 17, 0, prev_hop)) {
            die("CPU state corrupted across the hop");
        }
    }
    map_ram(vm);
}

/* Exactly one state memfd may be open: the one just loaded. */
static void check_no_stale_state(void)
{
    static const char want[] = "/memfd:" CPRS_EXEC_STATE_NAME " (deleted)";
    char path[64], link[128];
    int fd, found = 0;
    ssize_t n;

    for (fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            found += !strcmp(link, want);
        }
    }
    if (found != 1) {
        die("%d state memfds are open after the hop; expected 1", found);
    }
}

/* ---- The hops ---------------------------------------------------------- */

/* argv for the next image: the same configuration, one hop further. */
static char **next_argv(const Vm *vm, const char *self, const char *incoming)
{
    static char buf[8][32];
    char **av = calloc(24, sizeof(*av));
    int n = 0;

    if (!av) {
        die("out of memory");
    }
    av[n++] = (char *)self;
    snprintf(buf[0], sizeof(buf[0]), "--hops=%d", vm->cfg.hops);
    snprintf(buf[1], sizeof(buf[1]), "--legacy-hop=%d", vm->cfg.legacy_hop);
    snprintf(buf[2], sizeof(buf[2]), "--blocks=%d", vm->cfg.blocks);
    snprintf(buf[3], sizeof(buf[3]), "--block-mib=%d", vm->cfg.block_mib);
    snprintf(buf[4], sizeof(buf[4]), "--resume=%d", vm->cfg.hop + 1);
    snprintf(buf[5], sizeof(buf[5]), "--t0=%" PRIu64, now_us());
    av[n++] = buf[0];
    av[n++] = buf[1];
    av[n++] = buf[2];
    av[n++] = buf[3];
    av[n++] = buf[4];
    av[n++] = buf[5];
    if (vm->cfg.transfer) {
        av[n++] = (char *)"--transfer";
    }
    if (vm->cfg.wait) {
        av[n++] = (char *)"--wait";
    }
    if (vm->cfg.quiet) {
        av[n++] = (char *)"--quiet";
    }
    if (vm->cfg.ready) {
        av[n++] = (char *)"--ready-file";
        av[n++] = (char *)vm->cfg.ready;
    }
    if (incoming) {
        av[n++] = (char *)"--incoming";
        av[n++] = (char *)incoming;
    }
    av[n] = NULL;
    return av;
}

static void unmap_ram(Vm *vm)
{
    int b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        munmap(vm->ram[b], vm->ram_size);
    }
}

/* cpr-exec to the next hop: stop, save, preserve, exec ourselves. */
static void exec_hop(Vm *vm)
{
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint64_t t0;
    char **av;
    int fd, ret;

    run_and_stop_guest(vm);
    quiesce(vm);
    if (vm->cfg.hop + 1 == vm->cfg.legacy_hop) {
        /* This old side is a QEMU without libcprstate. */
        so.flags |= CPRS_SAVE_F_LEGACY;
    }
    t0 = now_us();
    ret = cprs_state_save_exec(vm->state, &so, &d, &fd);
    if (ret) {
        die_diag("save for cpr-exec", ret, &d);
    }
    say("hop %d -> %d: saved %s state (%u fds) in %" PRIu64 " us; exec",
        vm->cfg.hop, vm->cfg.hop + 1,
        so.flags & CPRS_SAVE_F_LEGACY ? "legacy QCPR" : "arena",
        cprs_state_fd_count(vm->state), now_us() - t0);
    unmap_ram(vm);
    ret = cprs_state_preserve_fds(vm->state);
    if (ret) {
        die_diag("preserve fds", ret, NULL);
    }
    av = next_argv(vm, "/proc/self/exe", NULL);
    execv("/proc/self/exe", av);
    /* As QEMU does when exec fails: take everything back. */
    ret = -errno;
    cprs_exec_unpersist(fd);
    cprs_state_unpreserve_fds(vm->state);
    die_diag("exec", ret, NULL);
}

static int wait_for_peer_close(int sock)
{
    char c;

    /* The target closes the cpr channel once it has loaded (QEMU's HUP). */
    while (recv(sock, &c, 1, 0) > 0) {
    }
    return 0;
}

/* cpr-transfer to a second process over a unix socket. */
static int transfer_hop(Vm *vm, const char *self)
{
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/cprs-vmm-XXXXXX";
    char **av;
    pid_t target;
    int sock, status, ret, tries;
    uint64_t t0;

    if (!mkdtemp(dir)) {
        die("mkdtemp: %s", strerror(errno));
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/cpr.sock", dir);
    target = fork();
    if (target < 0) {
        die("fork: %s", strerror(errno));
    }
    if (target == 0) {
        av = next_argv(vm, self, addr.sun_path);
        execv(self, av);
        _exit(127);
    }
    run_and_stop_guest(vm);
    quiesce(vm);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    for (tries = 0; tries < 1000; tries++) {
        if (!connect(sock, (struct sockaddr *)&addr, sizeof(addr))) {
            break;
        }
        usleep(10000);
    }
    if (tries == 1000) {
        die("the transfer target never listened on %s", addr.sun_path);
    }
    if (vm->cfg.hop + 1 == vm->cfg.legacy_hop) {
        so.flags |= CPRS_SAVE_F_LEGACY;     /* a QEMU without libcprstate */
    }
    t0 = now_us();
    ret = cprs_state_save_transfer(vm->state, sock, &so, &d);
    if (ret) {
        die_diag("save for cpr-transfer", ret, &d);
    }
    say("hop %d -> %d: sent the %s and %u fds to pid %d in %" PRIu64
        " us", vm->cfg.hop, vm->cfg.hop + 1,
        so.flags & CPRS_SAVE_F_LEGACY ? "legacy QCPR stream" : "arena",
        cprs_state_fd_count(vm->state), (int)target, now_us() - t0);
    wait_for_peer_close(sock);
    close(sock);
    if (waitpid(target, &status, 0) != target) {
        die("waitpid: %s", strerror(errno));
    }
    unlink(addr.sun_path);
    rmdir(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* The transfer target: listen, receive, verify. */
static int incoming(Vm *vm)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int ls, conn, ret;
    uint64_t t0;

    ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", vm->cfg.incoming);
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(ls, 1) < 0) {
        die("cannot listen on %s: %s", vm->cfg.incoming, strerror(errno));
    }
    conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
        die("accept: %s", strerror(errno));
    }
    t0 = now_us();
    ret = cprs_state_load_transfer(conn, NULL, &d, &vm->state);
    if (ret) {
        die_diag("load from cpr-transfer", ret, &d);
    }
    say("hop %d: received %s state, %u fds, in %" PRIu64 " us",
        vm->cfg.hop, cprs_format_name(state_info(vm->state).format),
        cprs_state_fd_count(vm->state), now_us() - t0);
    resume_devices(vm, vm->cfg.hop - 1,
                   state_info(vm->state).format != CPRS_FORMAT_LEGACY);
    t0 = now_us();
    check_guest(vm, vm->cfg.hop - 1);
    say("hop %d: guest RAM verified (%d x %d MiB) in %" PRIu64 " us; "
        "devices verified", vm->cfg.hop, vm->cfg.blocks, vm->cfg.block_mib,
        now_us() - t0);
    close(conn);
    close(ls);
    unlink(vm->cfg.incoming);
    say("cpr-transfer hop verified; done");
    unmap_ram(vm);
    cprs_state_close_fds(vm->state);
    cprs_state_free(vm->state);
    return 0;
}

/* Like QEMU with -incoming defer: hold the state, let it be inspected. */
static void wait_for_go(Vm *vm, const char *ready)
{
    sigset_t set;
    int sig;
    FILE *f;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    say("hop %d: waiting with the CPR state unloaded (QEMU_CPR_EXEC_STATE="
        "%s); send SIGUSR1 to load it", vm->cfg.hop,
        getenv(CPRS_EXEC_STATE_NAME));
    if (ready) {
        f = fopen(ready, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    sigwait(&set, &sig);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "hops", required_argument, NULL, 'n' },
        { "legacy-hop", required_argument, NULL, 'l' },
        { "transfer", no_argument, NULL, 't' },
        { "blocks", required_argument, NULL, 'b' },
        { "block-mib", required_argument, NULL, 'm' },
        { "wait", no_argument, NULL, 'w' },
        { "ready-file", required_argument, NULL, 'r' },
        { "quiet", no_argument, NULL, 'q' },
        { "resume", required_argument, NULL, 'R' },
        { "incoming", required_argument, NULL, 'I' },
        { "t0", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    Vm vm = { .cfg = { .hops = 3, .blocks = 4, .block_mib = 16 } };
    uint64_t t_exec = 0, t0;
    char self[4096];
    ssize_t n;
    int c, ret, last;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            vm.cfg.hops = atoi(optarg);
            break;
        case 'l':
            vm.cfg.legacy_hop = atoi(optarg);
            break;
        case 't':
            vm.cfg.transfer = 1;
            break;
        case 'b':
            vm.cfg.blocks = atoi(optarg);
            break;
        case 'm':
            vm.cfg.block_mib = atoi(optarg);
            break;
        case 'w':
            vm.cfg.wait = 1;
            break;
        case 'r':
            vm.cfg.ready = optarg;
            break;
        case 'q':
            vm.cfg.quiet = 1;
            break;
        case 'R':
            vm.cfg.hop = atoi(optarg);
            break;
        case 'I':
            vm.cfg.incoming = optarg;
            break;
        case 'T':
            t_exec = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: %s [--hops N] [--legacy-hop K] "
                    "[--transfer] [--blocks N] [--block-mib M] [--wait] "
                    "[--ready-file F] [--quiet]\n", argv[0]);
            return 2;
        }
    }
    quiet = vm.cfg.quiet;
    if (vm.cfg.blocks < 1 || vm.cfg.blocks > MAX_BLOCKS ||
        vm.cfg.block_mib < 1 || vm.cfg.block_mib > 1024 ||
        vm.cfg.hops < 0) {
        die("bad configuration");
    }
    vm.ram_size = (uint64_t)vm.cfg.block_mib << 20;
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        die("readlink /proc/self/exe: %s", strerror(errno));
    }
    self[n] = '\0';

    if (vm.cfg.incoming) {
        return incoming(&vm);
    }
    last = vm.cfg.hop == vm.cfg.hops && !vm.cfg.transfer;
    if (getenv(CPRS_EXEC_STATE_NAME)) {
        /* A new image after cpr-exec: same pid, inherited fds. */
        if (t_exec) {
            say("hop %d: exec() to main() took %" PRIu64 " us", vm.cfg.hop,
                now_us() - t_exec);
        }
        if (last && vm.cfg.wait) {
            wait_for_go(&vm, vm.cfg.ready);
        }
        t0 = now_us();
        ret = cprs_state_load_exec(NULL, &d, &vm.state);
        if (ret) {
            die_diag("load after cpr-exec", ret, &d);
        }
        say("hop %d: loaded %s state (generation %" PRIu64 ", %u fds) in %"
            PRIu64 " us", vm.cfg.hop,
            cprs_format_name(state_info(vm.state).format),
            state_info(vm.state).generation,
            cprs_state_fd_count(vm.state), now_us() - t0);
        resume_devices(&vm, vm.cfg.hop - 1,
                       state_info(vm.state).format != CPRS_FORMAT_LEGACY);
        check_no_stale_state();
        t0 = now_us();
        check_guest(&vm, vm.cfg.hop - 1);
        say("hop %d: guest RAM verified (%d x %d MiB) in %" PRIu64 " us; "
            "devices verified", vm.cfg.hop, vm.cfg.blocks,
            vm.cfg.block_mib, now_us() - t0);
    } else {
        if (vm.cfg.hop) {
            die("--resume without QEMU_CPR_EXEC_STATE");
        }
        if (cprs_state_new(&vm.state)) {
            die("out of memory");
        }
        create_devices(&vm);
        say("hop 0: booted with %d RAM blocks of %d MiB, 2 eventfds, a "
            "pipe, a socketpair", vm.cfg.blocks, vm.cfg.block_mib);
    }
    if (vm.cfg.hop < vm.cfg.hops) {
        exec_hop(&vm);
    }
    if (vm.cfg.transfer) {
        ret = transfer_hop(&vm, self);
        unmap_ram(&vm);
        cprs_state_free(vm.state);
        return ret;
    }
    say("all %d hops verified", vm.cfg.hops);
    unmap_ram(&vm);
    cprs_state_free(vm.state);
    return 0;
}
