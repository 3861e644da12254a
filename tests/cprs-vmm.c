/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-vmm.c - a small VMM-like process that live-updates itself with
 * libcprstate, the way QEMU does with cpr-exec and cpr-transfer.
 *
 * Its "guest" is a set of RAM blocks in memfds (sealed against resizing,
 * like QEMU's memory backends) that a worker thread fills with a pattern
 * that depends on the hop; its "devices" are eventfds with pending
 * counts, a pipe and a socketpair with data in flight, a synthetic vfio
 * record and a CPU state payload.  Each hop inspects the binary it will
 * run and plans the format (pre-flight, spec/fail-safe.rst), stops the
 * worker, saves the state, arms a rollback, preserves the fds and execs
 * the target (same PID); the new image loads the state, maps its RAM
 * again, checks every byte and every fd, and goes on.  A hop may be
 * refused before the VM stops (the VM then goes on running), and a new
 * image that fails may hand the state back to the previous binary.
 *
 * As in QEMU, the RAM layout comes from the command line, which every
 * hop passes on; the CPR state only hands over the fds, and, in an
 * arena, RAM block maps that are cross-checked against the layout.
 *
 * usage: cprs-vmm [--hops N] [--legacy-hop K] [--transfer]
 *                 [--blocks N] [--block-mib M] [--wait] [--quiet]
 *                 [--target PATH] [--policy P] [--expect refusal]
 *                 [--fail-at load|incoming] [--no-vfio] [--no-devstate]
 *                 [--wrap] [--race] [--self-copy] [--ready-fd N]
 *                 [--expect-format F] [--check-loop]
 * Exit 0 when every hop verified (or was refused when --expect refusal
 * says so), 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cprstate.h"
#include "vmm-guest.h"

#define PAGE VMM_PAGE
#define MAX_BLOCKS VMM_MAX_BLOCKS
#define CPU_MAGIC UINT64_C(0x4350555354415445)   /* "CPUSTATE" */
#define MAX_ARGS 48

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
    /* Fail-safe live update (spec/fail-safe.rst). */
    const char *target;         /* what cpr-exec runs: argv[0] */
    const char *policy;         /* QEMU_CPR_STATE_FORMAT, or NULL */
    int expect_refusal;         /* the hop must be refused, VM running */
    const char *fail_at;        /* the new image fails: load, incoming */
    const char *rolled_back;    /* this image is a rollback from a stage */
    int no_vfio;                /* no vfio record (a QEMU without one) */
    int no_devstate;            /* no payload (QEMU 10.2 writes none) */
    int wrap;                   /* exec the target through a #! script */
    int race;                   /* swap the target path before the exec */
    int self_copy;              /* run from a copy deleted from disk */
    int ready_fd;               /* the rolled-back image writes its pid */
    const char *expect_format;  /* the next image checks its format */
    int check_loop;             /* the rolled-back image tries again */
    const char *cleanup;        /* a directory the new image removes */
} Config;

typedef struct Vm {
    Config cfg;
    CprsState *state;
    CprsRollback *rollback;     /* armed by the previous image, or NULL */
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

static const char *diag_text(const CprsDiag *d, char *buf, size_t size)
{
    buf[0] = '\0';
    if (d && d->reason) {
        cprs_diag_format(d, buf, size);
    }
    return buf;
}

static void die_diag(const char *what, int ret, const CprsDiag *d)
{
    char text[256];

    die("%s: %s (%s)", what, strerror(ret < 0 ? -ret : ret),
        diag_text(d, text, sizeof(text)));
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

#define pattern vmm_pattern

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

static void unmap_ram(Vm *vm)
{
    int b;

    for (b = 0; b < vm->cfg.blocks; b++) {
        munmap(vm->ram[b], vm->ram_size);
    }
}

/* The CPU state of this hop, as a device-state payload. */
static void save_cpu(Vm *vm)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "cpu",
                                    .version_id = 1,
                                    .flags = CPRS_DEVSTATE_F_ZSTD);
    CpuState cpu;
    int i, ret;

    cprs_state_delete_devstate(vm->state, "cpu", 0);
    if (vm->cfg.no_devstate) {
        return;
    }
    memset(&cpu, 0, sizeof(cpu));
    cpu.magic = CPU_MAGIC;
    cpu.hop = (uint64_t)vm->cfg.hop;
    for (i = 0; i < 510; i += 17) {
        cpu.regs[i] = pattern(99, (uint64_t)i, 0, vm->cfg.hop);
    }
    ret = cprs_state_save_devstate(vm->state, &di, &cpu, sizeof(cpu));
    if (ret) {
        die_diag("save CPU state", ret, NULL);
    }
}

/* Leave work in flight in every device, and the CPU state. */
static void quiesce(Vm *vm)
{
    uint64_t v = vmm_irq_count(vm->cfg.hop);
    char msg[64];
    int len;

    if (write(vm->irq[0], &v, 8) != 8 || write(vm->irq[1], &v, 8) != 8) {
        die("eventfd write failed");
    }
    len = vmm_console_text(msg, sizeof(msg), vm->cfg.hop);
    if (write(vm->pipe_wr, msg, (size_t)len) != len ||
        send(vm->chr[0], msg, (size_t)len, 0) != len) {
        die("cannot leave data in flight");
    }
    save_cpu(vm);
}

/* ---- First boot -------------------------------------------------------- */

/* Record how block @b maps onto its fd, as QEMU does for each RAMBlock. */
static void register_ram_block(Vm *vm, int b)
{
    CprsGpaRange gr = { (uint64_t)b * vm->ram_size, vm->ram_size, 0 };
    CprsRamBlockInfo bi;
    char name[32];
    int ret;

    vmm_block_name(name, sizeof(name), b);
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
        vmm_block_name(name, sizeof(name), b);
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
        (!vm->cfg.no_vfio && cprs_state_save_vfio(vm->state, &vi))) {
        die("cannot record the devices");
    }
    map_ram(vm);
    /* The CPU state exists from boot on: what pre-flight plans for. */
    save_cpu(vm);
}

/* ---- Before and after a hop -------------------------------------------- */

/* A refused hop: take the data left in flight back, as a VM resuming. */
static void unquiesce(Vm *vm)
{
    char msg[64];
    uint64_t v;
    int len = vmm_console_text(msg, sizeof(msg), vm->cfg.hop);

    if (read(vm->irq[0], &v, 8) != 8 || v != vmm_irq_count(vm->cfg.hop) ||
        read(vm->irq[1], &v, 8) != 8 || read(vm->pipe_rd, msg, len) != len ||
        recv(vm->chr[1], msg, (size_t)len, 0) != len) {
        die("the devices lost their data while the hop was refused");
    }
}

/* Find every fd by name and check it (not its data) after a load. */
static void find_devices(Vm *vm, bool arena)
{
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    char name[32];
    int b, fd;

    for (b = 0; b < vm->cfg.blocks; b++) {
        vmm_block_name(name, sizeof(name), b);
        vm->ram_fd[b] = cprs_state_find_fd(vm->state, name, 0);
        if (vm->ram_fd[b] < 0) {
            die("RAM block %s has no fd in the CPR state", name);
        }
        if (lseek(vm->ram_fd[b], 0, SEEK_END) != (off_t)vm->ram_size) {
            die("RAM block %s: its memfd has the wrong size", name);
        }
        if (!arena) {
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
    if (!arena) {
        /* A legacy stream carries no RAM maps: rebuild them from the
         * configuration, as QEMU does when it creates its RAMBlocks. */
        cprs_state_clear_ramblocks(vm->state);
        for (b = 0; b < vm->cfg.blocks; b++) {
            register_ram_block(vm, b);
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
    map_ram(vm);
}

/* After a hop: check what was left in flight (this consumes it). */
static void resume_devices(Vm *vm, int prev_hop, bool arena)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    const CpuState *cpu;
    const void *data;
    char msg[64], want[64];
    uint64_t v;
    size_t size;
    uint32_t version;
    ssize_t n;
    int len;

    /* The interrupts raised before the hop are still pending. */
    if (read(vm->irq[0], &v, 8) != 8 || v != vmm_irq_count(prev_hop) ||
        read(vm->irq[1], &v, 8) != 8 || v != vmm_irq_count(prev_hop)) {
        die("eventfd counts were lost across the hop");
    }
    len = vmm_console_text(want, sizeof(want), prev_hop);
    n = read(vm->pipe_rd, msg, (size_t)len);
    if (n != len || memcmp(msg, want, (size_t)len)) {
        die("pipe data was lost across the hop");
    }
    n = recv(vm->chr[1], msg, (size_t)len, 0);
    if (n != len || memcmp(msg, want, (size_t)len)) {
        die("socketpair data was lost across the hop");
    }
    if (!vm->cfg.no_vfio &&
        (cprs_state_find_vfio(vm->state, "0000:00:05.0", &vi) ||
         vi.devid != 1 || vi.hwpt_id != 3)) {
        die("vfio device record lost across the hop");
    }
    if (arena && !vm->cfg.no_devstate) {
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

/* ---- Command lines ----------------------------------------------------- */

typedef struct Argv {
    char *v[MAX_ARGS];
    char buf[MAX_ARGS][64];
    int n;
} Argv;

static void G_PRINTF arg_add_fmt(const char *fmt, ...);

static Argv *cur_argv;

static void arg_add(const char *s)
{
    if (cur_argv->n >= MAX_ARGS - 1) {
        die("too many arguments");
    }
    cur_argv->v[cur_argv->n++] = (char *)s;
    cur_argv->v[cur_argv->n] = NULL;
}

static void arg_add_fmt(const char *fmt, ...)
{
    va_list ap;
    char *slot = cur_argv->buf[cur_argv->n];

    va_start(ap, fmt);
    vsnprintf(slot, sizeof(cur_argv->buf[0]), fmt, ap);
    va_end(ap);
    arg_add(slot);
}

/*
 * The configuration every image passes on, for hop @hop.  @next: the
 * command of the next image (failure injection and checks go there);
 * otherwise the command that resumes this image (a rollback).
 */
static void config_args(const Vm *vm, int hop, bool next)
{
    arg_add_fmt("--hops=%d", vm->cfg.hops);
    arg_add_fmt("--legacy-hop=%d", vm->cfg.legacy_hop);
    arg_add_fmt("--blocks=%d", vm->cfg.blocks);
    arg_add_fmt("--block-mib=%d", vm->cfg.block_mib);
    arg_add_fmt("--resume=%d", hop);
    arg_add_fmt("--t0=%" PRIu64, now_us());
    if (vm->cfg.transfer) {
        arg_add("--transfer");
    }
    if (vm->cfg.wait) {
        arg_add("--wait");
    }
    if (vm->cfg.quiet) {
        arg_add("--quiet");
    }
    if (vm->cfg.ready) {
        arg_add("--ready-file");
        arg_add(vm->cfg.ready);
    }
    if (vm->cfg.no_vfio) {
        arg_add("--no-vfio");
    }
    if (vm->cfg.no_devstate) {
        arg_add("--no-devstate");
    }
    if (vm->cfg.ready_fd >= 0) {
        arg_add_fmt("--ready-fd=%d", vm->cfg.ready_fd);
    }
    if (vm->cfg.check_loop) {
        arg_add("--check-loop");
    }
    if (vm->cfg.self_copy) {
        arg_add("--self-copy");
    }
    if (vm->cfg.wrap) {
        arg_add("--wrap");
    }
    if (next) {
        if (vm->cfg.fail_at) {
            arg_add_fmt("--fail-at=%s", vm->cfg.fail_at);
        }
        if (vm->cfg.expect_format) {
            arg_add_fmt("--expect-format=%s", vm->cfg.expect_format);
        }
    } else {
        /* A rollback nobody injected fails the check of the stage. */
        arg_add_fmt("--rolled-back=%s",
                    vm->cfg.fail_at ? vm->cfg.fail_at : "unexpected");
    }
}

/* ---- Refusals ---------------------------------------------------------- */

/*
 * The hop was refused with the VM still running (pre-flight, plan, or a
 * race at exec).  Show that the VM runs: its vCPU writes RAM again, its
 * devices still hold what was left in them.
 */
static void hop_refused(Vm *vm, const char *what, int ret,
                        const CprsDiag *d, bool quiesced)
{
    char text[256];

    fprintf(stderr, "[%s pid %d] live update refused, the VM keeps "
            "running: %s: %s (%s)\n", prog, (int)getpid(), what,
            strerror(-ret), diag_text(d, text, sizeof(text)));
    if (quiesced) {
        unquiesce(vm);
    }
    vm->cfg.hop++;
    run_and_stop_guest(vm);
    check_guest(vm, vm->cfg.hop);
    say("hop %d: refused; the VM ran on (RAM rewritten and verified, "
        "devices intact)", vm->cfg.hop - 1);
    unmap_ram(vm);
    cprs_state_free(vm->state);
    exit(vm->cfg.expect_refusal ? 0 : 1);
}

/* ---- The hops ---------------------------------------------------------- */

/* A temporary directory for wrappers and symlinks; removed by the next. */
static const char *scratch_dir(void)
{
    static char dir[] = "/tmp/cprs-vmm-XXXXXX";

    if (!mkdtemp(dir)) {
        die("mkdtemp: %s", strerror(errno));
    }
    return dir;
}

/* The path the exec will name: the target, maybe behind a #! script. */
static const char *exec_path(Vm *vm, char *buf, size_t size,
                             char *race_from, size_t race_size)
{
    const char *target = vm->cfg.target ? vm->cfg.target : "/proc/self/exe";
    const char *dir;
    char real[PATH_MAX];
    FILE *f;

    if (!vm->cfg.wrap && !vm->cfg.race) {
        snprintf(buf, size, "%s", target);
        return buf;
    }
    if (!realpath(target, real)) {
        die("realpath %s: %s", target, strerror(errno));
    }
    dir = scratch_dir();
    vm->cfg.cleanup = dir;
    if (vm->cfg.wrap) {
        /* A wrapper, as an operator's cpr-exec-command may be. */
        snprintf(buf, size, "%s/qemu-wrapper", dir);
        f = fopen(buf, "w");
        if (!f || fprintf(f, "#!/bin/sh\nexec '%s' \"$@\"\n", real) < 0 ||
            fclose(f) || chmod(buf, 0755)) {
            die("cannot write the wrapper %s", buf);
        }
        return buf;
    }
    /* A symlink that will be swapped for another between check and exec. */
    snprintf(buf, size, "%s/qemu", dir);
    snprintf(race_from, race_size, "%s/evil", dir);
    if (symlink(real, buf) || symlink("/bin/true", race_from)) {
        die("cannot make the race symlinks: %s", strerror(errno));
    }
    return buf;
}

static void remove_scratch(const char *dir)
{
    char path[PATH_MAX];

    if (!dir) {
        return;
    }
    snprintf(path, sizeof(path), "%s/qemu-wrapper", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/qemu", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/evil", dir);
    unlink(path);
    rmdir(dir);
}

/*
 * cpr-exec to the next hop, as QEMU's migration does it: pre-flight and
 * plan while the VM runs (a refusal leaves it running), then stop, save,
 * arm the rollback, preserve, exec the file inspected.
 */
static void exec_hop(Vm *vm, const char *self)
{
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts, .mode = CPRS_MODE_EXEC);
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsPlan plan = CPRS_OPTS(CprsPlan);
    CprsStateInfo si = state_info(vm->state);
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts);
    CprsRollback *rb = NULL;
    CprsTarget *t;
    Argv next = { .n = 0 }, back = { .n = 0 };
    char path[PATH_MAX], race_from[PATH_MAX];
    uint64_t t0;
    int fd, ret;

    /* spec F2: what will the exec run, and what does it read? */
    cur_argv = &next;
    arg_add(exec_path(vm, path, sizeof(path), race_from, sizeof(race_from)));
    config_args(vm, vm->cfg.hop + 1, true);
    if (vm->cfg.cleanup) {
        arg_add_fmt("--cleanup=%s", vm->cfg.cleanup);
    }
    ret = cprs_target_open_exec(next.v, NULL, &d, &t);
    if (ret) {
        remove_scratch(vm->cfg.cleanup);
        hop_refused(vm, "pre-flight", ret, &d, false);
    }
    if (vm->cfg.policy && cprs_policy_parse(vm->cfg.policy, &po.policy)) {
        die("--policy: auto, arena, legacy, dual or strict");
    }
    if (vm->cfg.hop + 1 == vm->cfg.legacy_hop) {
        /* This old side is a QEMU without libcprstate. */
        po.policy = CPRS_POLICY_LEGACY;
    }
    ret = cprs_target_plan(t, &si, &po, &d, &plan);
    if (ret) {
        cprs_target_free(t);
        remove_scratch(vm->cfg.cleanup);
        hop_refused(vm, "plan", ret, &d, false);
    }
    {
        CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);

        cprs_target_get_info(t, &ti);
        say("hop %d -> %d: target %s is %s (%s); writing %s%s",
            vm->cfg.hop, vm->cfg.hop + 1, ti.path,
            cprs_target_class_name(ti.klass), ti.reason,
            cprs_format_name(plan.format),
            plan.flags & CPRS_PLAN_F_ROLLBACK ? ", rollback armed" : "");
    }

    run_and_stop_guest(vm);
    quiesce(vm);
    so.plan = &plan;
    t0 = now_us();
    ret = cprs_state_save_exec(vm->state, &so, &d, &fd);
    if (ret) {
        die_diag("save for cpr-exec", ret, &d);
    }
    if (plan.flags & CPRS_PLAN_F_ROLLBACK) {
        /* What resumes the VM here: this binary, this hop again. */
        cur_argv = &back;
        arg_add(self);
        config_args(vm, vm->cfg.hop, false);
        ro.argv = back.v;
        ret = cprs_rollback_arm(vm->state, fd, &ro, &d, &rb);
        if (ret) {
            die_diag("arm the rollback", ret, &d);
        }
    }
    say("hop %d -> %d: saved %s state (%u fds) in %" PRIu64 " us; exec",
        vm->cfg.hop, vm->cfg.hop + 1, cprs_format_name(plan.format),
        cprs_state_fd_count(vm->state), now_us() - t0);
    unmap_ram(vm);
    ret = cprs_state_preserve_fds(vm->state);
    if (ret) {
        die_diag("preserve fds", ret, NULL);
    }
    if (vm->cfg.race && rename(race_from, path)) {
        die("cannot swap the target symlink: %s", strerror(errno));
    }
    ret = cprs_target_exec(t, next.v, NULL, &d);
    /* As QEMU does when exec fails: take everything back, run on. */
    cprs_exec_unpersist(fd);
    cprs_rollback_disarm(rb);
    cprs_state_unpreserve_fds(vm->state);
    cprs_target_free(t);
    remove_scratch(vm->cfg.cleanup);
    map_ram(vm);
    hop_refused(vm, "exec", ret, &d, true);
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
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts, .mode = CPRS_MODE_TRANSFER);
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsPlan plan = CPRS_OPTS(CprsPlan);
    CprsStateInfo si;
    CprsTarget *peer;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/cprs-vmm-XXXXXX";
    Argv next = { .n = 0 };
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
        cur_argv = &next;
        arg_add(self);
        config_args(vm, vm->cfg.hop + 1, true);
        arg_add("--incoming");
        arg_add(addr.sun_path);
        execv(self, next.v);
        _exit(127);
    }
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
    /* spec F2.6: the peer is known; what does its binary read? */
    ret = cprs_target_open_peer(sock, NULL, &d, &peer);
    if (ret) {
        die_diag("pre-flight of the cpr-transfer peer", ret, &d);
    }
    if (vm->cfg.hop + 1 == vm->cfg.legacy_hop) {
        po.policy = CPRS_POLICY_LEGACY;     /* a QEMU without libcprstate */
    }
    run_and_stop_guest(vm);
    quiesce(vm);
    si = state_info(vm->state);
    ret = cprs_target_plan(peer, &si, &po, &d, &plan);
    cprs_target_free(peer);
    if (ret) {
        die_diag("plan of the cpr-transfer hop", ret, &d);
    }
    so.plan = &plan;
    t0 = now_us();
    ret = cprs_state_save_transfer(vm->state, sock, &so, &d);
    if (ret) {
        die_diag("save for cpr-transfer", ret, &d);
    }
    say("hop %d -> %d: sent the %s and %u fds to pid %d in %" PRIu64
        " us", vm->cfg.hop, vm->cfg.hop + 1, cprs_format_name(plan.format),
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
    CprsStateInfo si;
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
    si = state_info(vm->state);
    say("hop %d: received %s state, %u fds, in %" PRIu64 " us",
        vm->cfg.hop, cprs_format_name(si.format),
        cprs_state_fd_count(vm->state), now_us() - t0);
    find_devices(vm, si.format != CPRS_FORMAT_LEGACY);
    resume_devices(vm, vm->cfg.hop - 1, si.format != CPRS_FORMAT_LEGACY);
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

/* Tell a watcher our pid on an inherited fd, then wait for SIGUSR1. */
static void signal_ready_and_wait(int fd)
{
    sigset_t set;
    char buf[16];
    int sig, len;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)len) != len) {
        die("cannot tell the watcher our pid");
    }
    close(fd);
    sigwait(&set, &sig);
}

/*
 * The new image failed before its VM ran: hand the state back to the
 * previous binary when a rollback is armed (spec F5.7), as QEMU does
 * when migrate-incoming fails.  Report first: the library never prints.
 */
static void hop_failed(Vm *vm, uint32_t stage, int err, const char *msg)
{
    CprsFailure f = CPRS_OPTS(CprsFailure, .stage = stage, .error = err,
                              .message = msg);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    int ret;

    fprintf(stderr, "[%s pid %d] hop %d failed (%s): %s: %s\n", prog,
            (int)getpid(), vm->cfg.hop, cprs_failure_stage_name(stage), msg,
            strerror(-err));
    if (!vm->rollback) {
        die("no rollback armed: the guest is lost");
    }
    fprintf(stderr, "[%s pid %d] rolling back to the previous binary\n",
            prog, (int)getpid());
    fflush(stdout);
    ret = cprs_rollback_trigger(vm->rollback, &f, &d);
    die_diag("rollback", ret, &d);
}

/* The previous binary again, handed the state back (spec F5.7). */
static void check_rolled_back(Vm *vm)
{
    CprsStateInfo si = state_info(vm->state);
    CprsRollback *rb = NULL;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char exe[PATH_MAX];
    ssize_t n;
    int ret;

    if (!(si.rollback_flags & CPRS_ROLLBACK_F_ROLLED_BACK) ||
        !(si.rollback_flags & CPRS_ROLLBACK_F_FAILURE)) {
        die("rolled back, but the state does not say so");
    }
    if (strcmp(cprs_failure_stage_name(si.failure_stage),
               !strcmp(vm->cfg.rolled_back, "load") ? "state-load" :
               vm->cfg.rolled_back) || si.failure_error >= 0 ||
        !strstr(si.failure_message, "injected") || !si.failed_exe[0]) {
        die("the recorded failure is not the one injected (stage %s, "
            "error %d, \"%s\")", cprs_failure_stage_name(si.failure_stage),
            si.failure_error, si.failure_message);
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    say("hop %d: ROLLED BACK into %s: the next image (%s) failed at %s: "
        "%s: %s", vm->cfg.hop, exe, si.failed_exe,
        cprs_failure_stage_name(si.failure_stage), si.failure_message,
        strerror(-si.failure_error));
    if (vm->cfg.self_copy && !strstr(exe, " (deleted)")) {
        die("the previous binary was expected to be deleted from disk");
    }
    /* spec F5.3: a rollback never rolls back again. */
    ret = cprs_rollback_find(0, &d, &rb);
    if (ret != -ENOENT) {
        cprs_rollback_disarm(rb);
        die("a rolled-back image finds a rollback to trigger (%d)", ret);
    }
    if (vm->cfg.check_loop) {
        say("hop %d: loop protection: no rollback is armed here (%s)",
            vm->cfg.hop, d.reason);
    }
}

/* --self-copy: run from a copy of this binary, then delete the copy. */
static void run_from_deleted_copy(int argc, char **argv)
{
    char dir[] = "/tmp/cprs-vmm-copy-XXXXXX", path[PATH_MAX];
    char *av[MAX_ARGS + 2];
    int in, out, i;
    ssize_t n;
    char buf[65536];

    if (argc > MAX_ARGS) {
        die("too many arguments");
    }
    if (getenv("CPRS_VMM_COPY")) {
        /* The copy: gone from disk from now on, as after an update. */
        if (unlink(getenv("CPRS_VMM_COPY"))) {
            die("cannot delete %s: %s", getenv("CPRS_VMM_COPY"),
                strerror(errno));
        }
        snprintf(path, sizeof(path), "%s", getenv("CPRS_VMM_COPY"));
        *strrchr(path, '/') = '\0';
        rmdir(path);
        unsetenv("CPRS_VMM_COPY");
        return;
    }
    if (!mkdtemp(dir)) {
        die("mkdtemp: %s", strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/cprs-vmm", dir);
    in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (in < 0 || out < 0) {
        die("cannot copy the binary: %s", strerror(errno));
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            die("cannot copy the binary: %s", strerror(errno));
        }
    }
    close(in);
    close(out);
    setenv("CPRS_VMM_COPY", path, 1);
    av[0] = path;
    for (i = 1; i < argc; i++) {
        av[i] = argv[i];
    }
    av[argc] = NULL;
    execv(path, av);
    die("cannot run the copy: %s", strerror(errno));
}

/* The state this image was started with, loaded (or failed over). */
static void load_after_exec(Vm *vm, uint64_t t_exec)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsStateInfo si;
    char text[256];
    uint64_t t0;
    int ret;

    if (t_exec) {
        say("hop %d: exec() to main() took %" PRIu64 " us", vm->cfg.hop,
            now_us() - t_exec);
    }
    if (vm->cfg.cleanup) {
        remove_scratch(vm->cfg.cleanup);
    }
    /* spec F5.6: the rollback, found before anything is loaded. */
    ret = cprs_rollback_find(0, &d, &vm->rollback);
    if (ret && ret != -ENOENT) {
        die_diag("find the rollback", ret, &d);
    }
    if (vm->cfg.fail_at && !strcmp(vm->cfg.fail_at, "load")) {
        /* A bad state, as this image sees it: over its record limit. */
        lo.max_records = 1;
    }
    t0 = now_us();
    ret = cprs_state_load_exec(&lo, &d, &vm->state);
    if (ret) {
        snprintf(text, sizeof(text), "%scannot load the CPR state: ",
                 lo.max_records ? "(injected) " : "");
        cprs_diag_format(&d, text + strlen(text),
                         sizeof(text) - strlen(text));
        hop_failed(vm, CPRS_FAILURE_STATE_LOAD, ret, text);
    }
    si = state_info(vm->state);
    say("hop %d: loaded %s state (generation %" PRIu64 ", %u fds) in %"
        PRIu64 " us", vm->cfg.hop, cprs_format_name(si.format),
        si.generation, cprs_state_fd_count(vm->state), now_us() - t0);
    if (vm->cfg.expect_format &&
        strcmp(cprs_format_name(si.format), vm->cfg.expect_format)) {
        die("loaded a %s state, expected %s", cprs_format_name(si.format),
            vm->cfg.expect_format);
    }
    find_devices(vm, si.format != CPRS_FORMAT_LEGACY);
    check_no_stale_state();
    t0 = now_us();
    check_guest(vm, vm->cfg.rolled_back ? vm->cfg.hop : vm->cfg.hop - 1);
    if (vm->cfg.fail_at && !strcmp(vm->cfg.fail_at, "incoming")) {
        /* Loaded and mapped; then migrate-incoming fails. */
        hop_failed(vm, CPRS_FAILURE_INCOMING, -EINVAL,
                   "injected: migrate-incoming failed, the device "
                   "configuration does not match");
    }
    resume_devices(vm, vm->cfg.rolled_back ? vm->cfg.hop : vm->cfg.hop - 1,
                   si.format != CPRS_FORMAT_LEGACY);
    say("hop %d: guest RAM verified (%d x %d MiB) in %" PRIu64 " us; "
        "devices verified", vm->cfg.hop, vm->cfg.blocks,
        vm->cfg.block_mib, now_us() - t0);
    if (vm->cfg.rolled_back) {
        check_rolled_back(vm);
    }
    /* The VM runs: the rollback is not needed any more. */
    cprs_rollback_disarm(vm->rollback);
    vm->rollback = NULL;
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
        { "target", required_argument, NULL, 'x' },
        { "policy", required_argument, NULL, 'p' },
        { "expect", required_argument, NULL, 'e' },
        { "fail-at", required_argument, NULL, 'f' },
        { "rolled-back", required_argument, NULL, 'B' },
        { "no-vfio", no_argument, NULL, 'V' },
        { "no-devstate", no_argument, NULL, 'D' },
        { "wrap", no_argument, NULL, 'W' },
        { "race", no_argument, NULL, 'a' },
        { "self-copy", no_argument, NULL, 'c' },
        { "ready-fd", required_argument, NULL, 'F' },
        { "expect-format", required_argument, NULL, 'E' },
        { "check-loop", no_argument, NULL, 'L' },
        { "cleanup", required_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 },
    };
    Vm vm = { .cfg = { .hops = 3, .blocks = 4, .block_mib = 16,
                       .ready_fd = -1 } };
    uint64_t t_exec = 0;
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
        case 'x':
            vm.cfg.target = optarg;
            break;
        case 'p':
            vm.cfg.policy = optarg;
            break;
        case 'e':
            vm.cfg.expect_refusal = !strcmp(optarg, "refusal");
            break;
        case 'f':
            vm.cfg.fail_at = optarg;
            break;
        case 'B':
            vm.cfg.rolled_back = optarg;
            break;
        case 'V':
            vm.cfg.no_vfio = 1;
            break;
        case 'D':
            vm.cfg.no_devstate = 1;
            break;
        case 'W':
            vm.cfg.wrap = 1;
            break;
        case 'a':
            vm.cfg.race = 1;
            break;
        case 'c':
            vm.cfg.self_copy = 1;
            break;
        case 'F':
            vm.cfg.ready_fd = atoi(optarg);
            break;
        case 'E':
            vm.cfg.expect_format = optarg;
            break;
        case 'L':
            vm.cfg.check_loop = 1;
            break;
        case 'C':
            vm.cfg.cleanup = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [--hops N] [--legacy-hop K] "
                    "[--transfer] [--blocks N] [--block-mib M] [--wait] "
                    "[--ready-file F] [--quiet] [--target PATH] "
                    "[--policy P] [--expect refusal] [--fail-at STAGE] "
                    "[--no-vfio] [--no-devstate] [--wrap] [--race] "
                    "[--self-copy] [--ready-fd N] [--expect-format F] "
                    "[--check-loop]\n", argv[0]);
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
    if (vm.cfg.self_copy && !vm.cfg.hop && !getenv(CPRS_EXEC_STATE_NAME)) {
        run_from_deleted_copy(argc, argv);
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        die("readlink /proc/self/exe: %s", strerror(errno));
    }
    self[n] = '\0';
    if (strstr(self, " (deleted)")) {
        /* What a QEMU would pass as its own argv[0]: any name will do,
         * the rollback runs the file it holds open. */
        snprintf(self, sizeof(self), "/proc/self/exe");
    }

    if (vm.cfg.incoming) {
        return incoming(&vm);
    }
    last = vm.cfg.hop == vm.cfg.hops && !vm.cfg.transfer;
    if (getenv(CPRS_EXEC_STATE_NAME)) {
        /* A new image after cpr-exec: same pid, inherited fds. */
        if (last && vm.cfg.wait) {
            wait_for_go(&vm, vm.cfg.ready);
        }
        load_after_exec(&vm, t_exec);
        if (vm.cfg.rolled_back) {
            /* The VM runs again where it was; this test's hops end. */
            if (vm.cfg.ready_fd >= 0) {
                signal_ready_and_wait(vm.cfg.ready_fd);
            }
            say("rollback verified; done");
            unmap_ram(&vm);
            cprs_state_free(vm.state);
            return 0;
        }
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
        exec_hop(&vm, self);
    }
    if (vm.cfg.transfer) {
        ret = transfer_hop(&vm, self);
        unmap_ram(&vm);
        cprs_state_free(vm.state);
        return ret;
    }
    if (vm.cfg.expect_refusal) {
        die("the live update was expected to be refused");
    }
    say("all %d hops verified", vm.cfg.hops);
    unmap_ram(&vm);
    cprs_state_free(vm.state);
    return 0;
}
