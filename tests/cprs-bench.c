/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-bench.c - what the CPR state costs, against the machine's limits,
 * measured in the same run so that the ratios hold on a noisy machine.
 *
 * Every figure is the median of repeated runs of one operation and of its
 * reference (a plain memcpy + write, CRC32C of the same bytes, a linear
 * strcmp walk, a bare exec, cat), and the table gives their ratio next to
 * the target of issue 7.  Not a timed test: run it with
 *   ninja -C build bench          (or build/tests/cprs-bench [--quick])
 * See README.md ("Benchmarks") for how to read the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CPRS_EXPERIMENTAL
#include "cprstate.h"

static int repeats = 7;
static bool quick;
static const char *self_path;
static const char *cprdump_path;

/* ---- Timing and reporting ---------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef void (*OpFn)(void *ctx);

/* Median time of one @fn call, each sample timing enough calls. */
static double measure(OpFn fn, void *ctx)
{
    double samples[31], t0, t, once;
    int i, k, loops;

    t0 = now_ns();
    fn(ctx);
    once = now_ns() - t0;
    /* Aim for samples of about 20 ms, at least one call each. */
    loops = once > 2e7 ? 1 : (int)(2e7 / (once + 1));
    if (loops > 100000) {
        loops = 100000;
    }
    for (i = 0; i < repeats; i++) {
        t0 = now_ns();
        for (k = 0; k < loops; k++) {
            fn(ctx);
        }
        t = now_ns() - t0;
        samples[i] = t / loops;
    }
    return median(samples, repeats);
}

static void __attribute__((format(printf, 1, 2))) die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "cprs-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static const char *human_time(double ns, char *buf, size_t size)
{
    if (ns < 1e3) {
        snprintf(buf, size, "%.0f ns", ns);
    } else if (ns < 1e6) {
        snprintf(buf, size, "%.1f us", ns / 1e3);
    } else if (ns < 1e9) {
        snprintf(buf, size, "%.2f ms", ns / 1e6);
    } else {
        snprintf(buf, size, "%.2f s", ns / 1e9);
    }
    return buf;
}

static int met_total, met_ok;

/*
 * One table row: ours against the reference.  @ratio is computed so that
 * the target reads "ratio <= max" or "ratio >= min"; a NAN limit means
 * the row is informational.
 */
static void row(const char *what, double ours, const char *ref_name,
                double ref, double ratio, const char *op, double limit)
{
    char a[32], b[32], target[32] = "";
    const char *verdict = "";

    if (!isnan(limit)) {
        bool ok = op[0] == '<' ? ratio <= limit : ratio >= limit;

        snprintf(target, sizeof(target), "%s %.4g", op, limit);
        verdict = ok ? "yes" : "NO";
        met_total++;
        met_ok += ok;
    }
    printf("%-36s %11s  %-22s %11s %9.3g  %-8s %s\n", what,
           human_time(ours, a, sizeof(a)), ref_name,
           ref >= 0 ? human_time(ref, b, sizeof(b)) : "-", ratio, target,
           verdict);
    fflush(stdout);
}

static void section(const char *title)
{
    printf("\n%s\n%-36s %11s  %-22s %11s %9s  %-8s %s\n", title, "case",
           "ours", "reference", "ref time", "ratio", "target", "met");
}

/* ---- States to save ---------------------------------------------------- */

typedef struct Input {
    uint32_t nfds;
    uint32_t nblocks;
    size_t payload;
    bool zstd;
    char **names;
    uint8_t *data;
} Input;

static void input_make(Input *in, uint32_t nfds, uint32_t nblocks,
                       size_t payload, bool zstd)
{
    uint32_t i;
    size_t k;

    memset(in, 0, sizeof(*in));
    in->nfds = nfds;
    in->nblocks = nblocks;
    in->payload = payload;
    in->zstd = zstd;
    in->names = calloc(nfds + nblocks + 1, sizeof(char *));
    for (i = 0; i < nfds; i++) {
        /* vfio interrupt vectors: one name per device, the id varies. */
        if (asprintf(&in->names[i], "0000:%02x:%02x.0/vector", i / 4096 % 256,
                     i / 16 % 256) < 0) {
            die("out of memory");
        }
    }
    for (i = 0; i < nblocks; i++) {
        if (asprintf(&in->names[nfds + i], "ram-node%u", i) < 0) {
            die("out of memory");
        }
    }
    if (payload) {
        /* Device state: mostly zero, some structure (machine-limits). */
        in->data = malloc(payload);
        for (k = 0; k < payload; k++) {
            in->data[k] = (k % 64) < 46 ? 0 : (uint8_t)(k * 2654435761u >> 24);
        }
    }
}

static void input_free(Input *in)
{
    uint32_t i;

    for (i = 0; i < in->nfds + in->nblocks; i++) {
        free(in->names[i]);
    }
    free(in->names);
    free(in->data);
}

static CprsWriter *build(const Input *in)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    CprsDevStateInfo di;
    CprsGpaRange gr;
    CprsWriter *w;
    uint32_t i, idx;

    if (cprs_writer_new(&o, &w)) {
        die("writer_new");
    }
    for (i = 0; i < in->nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = in->names[i], .id = (int32_t)i,
                       .fd = (int32_t)(i + 100),
                       .kind = CPRS_FD_KIND_EVENTFD);
        if (cprs_writer_add_fd(w, &fi, NULL)) {
            die("add_fd");
        }
    }
    for (i = 0; i < in->nblocks; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = in->names[in->nfds + i],
                       .fd = (int32_t)(in->nfds + i + 100),
                       .kind = CPRS_FD_KIND_MEMFD,
                       .flags = CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS,
                       .seals = 7, .dev = 1, .ino = 1000 + i,
                       .st_mode = 0100777, .size = 1 << 30);
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = in->names[in->nfds + i],
                       .flags = CPRS_RAM_F_SHARED, .used_length = 1 << 30,
                       .max_length = 1 << 30, .page_size = 4096,
                       .align = 0x200000);
        gr = (CprsGpaRange) { (uint64_t)i << 30, 1 << 30, 0 };
        if (cprs_writer_add_fd(w, &fi, &idx)) {
            die("add_fd");
        }
        bi.fd_index = idx;
        if (cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL)) {
            die("add_ramblock");
        }
    }
    if (in->payload) {
        di = CPRS_OPTS(CprsDevStateInfo, .name = "device-state",
                       .version_id = 1,
                       .flags = in->zstd ? CPRS_DEVSTATE_F_ZSTD : 0);
        if (cprs_writer_add_devstate(w, &di, in->data, in->payload, NULL)) {
            die("add_devstate");
        }
    }
    return w;
}

static void build_buffer(const Input *in, void **buf, size_t *size)
{
    CprsWriter *w = build(in);

    if (cprs_writer_finish_buffer(w, buf, size)) {
        die("finish_buffer");
    }
    cprs_writer_free(w);
}

/* ---- Save ---------------------------------------------------------------- */

typedef struct SaveCtx {
    const Input *in;
    const void *src;        /* reference: the finished bytes */
    void *staging;
    size_t size;
} SaveCtx;

/* Ours: build the arena and write it into a sealed memfd. */
static void op_save(void *ctx)
{
    SaveCtx *c = ctx;
    CprsWriter *w = build(c->in);
    int fd;

    if (cprs_writer_finish_memfd(w, "bench", CPRS_MEMFD_F_SEAL, &fd)) {
        die("finish_memfd");
    }
    cprs_writer_free(w);
    close(fd);
}

/* Reference: memcpy the same bytes, then write them into a new memfd. */
static void op_memcpy_write(void *ctx)
{
    SaveCtx *c = ctx;
    size_t done = 0;
    ssize_t n;
    int fd;

    memcpy(c->staging, c->src, c->size);
    fd = memfd_create("ref", MFD_CLOEXEC);
    while (done < c->size) {
        n = write(fd, (uint8_t *)c->staging + done, c->size - done);
        if (n <= 0) {
            die("write");
        }
        done += (size_t)n;
    }
    close(fd);
}

static void bench_save(void)
{
    static const uint32_t fds[] = { 10, 1000, 100000, 1000000 };
    static const uint32_t blocks[] = { 1, 64, 1024 };
    static const size_t payloads[] = {
        1024, 1 << 20, 64u << 20, 256u << 20,
    };
    char what[64];
    Input in;
    SaveCtx c;
    double ours, ref;
    size_t i;
    int z;

    section("Save: build + write into a sealed memfd "
            "(ratio = ours / reference)");
    for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (quick && fds[i] > 100000) {
            continue;
        }
        input_make(&in, fds[i], 0, 0, false);
        c.in = &in;
        build_buffer(&in, (void **)&c.src, &c.size);
        c.staging = malloc(c.size);
        ours = measure(op_save, &c);
        ref = measure(op_memcpy_write, &c);
        snprintf(what, sizeof(what), "%u fd records (%zu KiB)", fds[i],
                 c.size >> 10);
        row(what, ours, "memcpy + write", ref, ours / ref, "<=", 2);
        free((void *)c.src);
        free(c.staging);
        input_free(&in);
    }
    for (i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        input_make(&in, 0, blocks[i], 0, false);
        c.in = &in;
        build_buffer(&in, (void **)&c.src, &c.size);
        c.staging = malloc(c.size);
        ours = measure(op_save, &c);
        ref = measure(op_memcpy_write, &c);
        snprintf(what, sizeof(what), "%u RAM blocks (%zu KiB)", blocks[i],
                 c.size >> 10);
        row(what, ours, "memcpy + write", ref, ours / ref, "<=", 2);
        free((void *)c.src);
        free(c.staging);
        input_free(&in);
    }
    for (z = 0; z < 2; z++) {
        for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
            if (quick && payloads[i] > (64u << 20)) {
                continue;
            }
            input_make(&in, 0, 0, payloads[i], z);
            c.in = &in;
            build_buffer(&in, (void **)&c.src, &c.size);
            /* The reference moves the raw bytes, not the compressed ones. */
            c.size = payloads[i];
            c.src = realloc((void *)c.src, c.size);
            memcpy((void *)c.src, in.data, c.size);
            c.staging = malloc(c.size);
            ours = measure(op_save, &c);
            ref = measure(op_memcpy_write, &c);
            snprintf(what, sizeof(what), "payload %zu KiB%s",
                     payloads[i] >> 10, z ? " zstd" : "");
            row(what, ours, "memcpy + write (raw)", ref, ours / ref,
                z ? "" : "<=", z ? NAN : 2);
            free((void *)c.src);
            free(c.staging);
            input_free(&in);
        }
    }
}

/* ---- Load ---------------------------------------------------------------- */

typedef struct LoadCtx {
    const void *buf;
    size_t size;
    const void *legacy;
    size_t legacy_size;
} LoadCtx;

static void op_open(void *ctx)
{
    LoadCtx *c = ctx;
    CprsReader *r;

    if (cprs_reader_open_buffer(c->buf, c->size, NULL, NULL, &r)) {
        die("open");
    }
    cprs_reader_close(r);
}

static void op_verify(void *ctx)
{
    LoadCtx *c = ctx;
    CprsReader *r;

    if (cprs_reader_open_buffer(c->buf, c->size, NULL, NULL, &r) ||
        cprs_reader_verify(r, NULL)) {
        die("verify");
    }
    cprs_reader_close(r);
}

static volatile uint32_t sink;

static void op_crc(void *ctx)
{
    LoadCtx *c = ctx;

    sink = cprs_crc32c(0, c->buf, c->size);
}

static void op_legacy_decode(void *ctx)
{
    LoadCtx *c = ctx;
    CprsLegacy *l;

    if (cprs_legacy_decode(c->legacy, c->legacy_size, NULL, NULL, &l)) {
        die("legacy decode");
    }
    cprs_legacy_free(l);
}

/* The same fd records as QEMU's legacy stream (cpr-exec variant). */
static void make_legacy(const Input *in, void **buf, size_t *size)
{
    CprsLegacy *l;
    CprsFdInfo fi;
    uint32_t i;

    if (cprs_legacy_new(NULL, &l)) {
        die("legacy_new");
    }
    for (i = 0; i < in->nfds; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = in->names[i], .id = (int32_t)i,
                       .fd = (int32_t)(i + 100));
        if (cprs_legacy_add_fd(l, &fi, NULL)) {
            die("legacy_add_fd");
        }
    }
    if (cprs_legacy_encode(l, NULL, buf, size)) {
        die("legacy_encode");
    }
    cprs_legacy_free(l);
}

static void bench_load(void)
{
    static const uint32_t fds[] = { 10, 1000, 100000, 1000000 };
    static const size_t payloads[] = { 1 << 20, 64u << 20, 256u << 20 };
    double open_small = 0, ours, ref, leg;
    char what[64];
    Input in;
    LoadCtx c;
    size_t i;

    section("Load (ratio: open = vs the 10-record open; verify = CRC32C "
            "speed share; legacy = legacy / verify)");
    for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (quick && fds[i] > 100000) {
            continue;
        }
        input_make(&in, fds[i], 0, 0, false);
        build_buffer(&in, (void **)&c.buf, &c.size);
        make_legacy(&in, (void **)&c.legacy, &c.legacy_size);
        ours = measure(op_open, &c);
        if (!open_small) {
            open_small = ours;
        }
        snprintf(what, sizeof(what), "open, %u fd records", fds[i]);
        /* Constant time: within 3x of the smallest, whatever the size. */
        row(what, ours, "open of 10 records", open_small, ours / open_small,
            "<=", 3);
        ours = measure(op_verify, &c);
        ref = measure(op_crc, &c);
        snprintf(what, sizeof(what), "verify, %u fd records", fds[i]);
        row(what, ours, "CRC32C of the bytes", ref, ref / ours, ">=", 0.5);
        leg = measure(op_legacy_decode, &c);
        snprintf(what, sizeof(what), "  legacy decode, %u records", fds[i]);
        row(what, leg, "verify (above)", ours, leg / ours, "", NAN);
        free((void *)c.buf);
        free((void *)c.legacy);
        input_free(&in);
    }
    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        if (quick && payloads[i] > (64u << 20)) {
            continue;
        }
        input_make(&in, 0, 0, payloads[i], false);
        build_buffer(&in, (void **)&c.buf, &c.size);
        ours = measure(op_open, &c);
        snprintf(what, sizeof(what), "open, payload %zu MiB",
                 payloads[i] >> 20);
        row(what, ours, "open of 10 records", open_small, ours / open_small,
            "<=", 3);
        ours = measure(op_verify, &c);
        ref = measure(op_crc, &c);
        snprintf(what, sizeof(what), "verify, payload %zu MiB",
                 payloads[i] >> 20);
        row(what, ours, "CRC32C of the bytes", ref, ref / ours, ">=", 0.5);
        free((void *)c.buf);
        input_free(&in);
    }
}

/* ---- Lookup -------------------------------------------------------------- */

/* QEMU's list: one allocated node per fd, walked with strcmp. */
typedef struct QNode {
    char *name;
    int id;
    int fd;
    struct QNode *next;
} QNode;

typedef struct LookupCtx {
    CprsReader *r;
    QNode *head;
    const Input *in;
    uint32_t *probe;        /* record indexes to look up */
    uint32_t nprobe;
    uint32_t next;
} LookupCtx;

static void op_find(void *ctx)
{
    LookupCtx *c = ctx;
    uint32_t i = c->probe[c->next++ % c->nprobe], idx;

    if (cprs_reader_fd_find(c->r, c->in->names[i], (int32_t)i, &idx) ||
        idx != i) {
        die("fd_find");
    }
}

static void op_linear(void *ctx)
{
    LookupCtx *c = ctx;
    uint32_t i = c->probe[c->next++ % c->nprobe];
    const QNode *n;

    for (n = c->head; n; n = n->next) {
        if (!strcmp(n->name, c->in->names[i]) && n->id == (int)i) {
            sink = (uint32_t)n->fd;
            return;
        }
    }
    die("linear walk missed");
}

static void bench_lookup(void)
{
    static const uint32_t sizes[] = { 10, 1000, 100000, 1000000 };
    double ours, ref;
    char what[64];
    LookupCtx c;
    QNode *n, *next;
    Input in;
    void *buf;
    size_t size, i;
    uint32_t k;

    section("Lookup by (name, id) (ratio = linear / ours)");
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (quick && sizes[i] > 100000) {
            continue;
        }
        input_make(&in, sizes[i], 0, 0, false);
        build_buffer(&in, &buf, &size);
        memset(&c, 0, sizeof(c));
        c.in = &in;
        if (cprs_reader_open_buffer(buf, size, NULL, NULL, &c.r) ||
            cprs_reader_verify(c.r, NULL)) {
            die("open");
        }
        /* QEMU inserts at the head: the list is in reverse order. */
        for (k = 0; k < sizes[i]; k++) {
            n = malloc(sizeof(*n));
            n->name = strdup(in.names[k]);
            n->id = (int)k;
            n->fd = (int)k + 100;
            n->next = c.head;
            c.head = n;
        }
        c.nprobe = 4096;
        c.probe = malloc(c.nprobe * sizeof(*c.probe));
        srand(7);
        for (k = 0; k < c.nprobe; k++) {
            c.probe[k] = (uint32_t)rand() % sizes[i];
        }
        ours = measure(op_find, &c);
        ref = measure(op_linear, &c);
        snprintf(what, sizeof(what), "%u records", sizes[i]);
        row(what, ours, "linear strcmp walk", ref, ref / ours,
            sizes[i] == 100000 ? ">=" : "",
            sizes[i] == 100000 ? 100 : NAN);
        for (n = c.head; n; n = next) {
            next = n->next;
            free(n->name);
            free(n);
        }
        free(c.probe);
        cprs_reader_close(c.r);
        free(buf);
        input_free(&in);
    }
}

/* ---- The exec hop -------------------------------------------------------- */

#define HOP_BLOCKS 64u
#define HOP_RECORDS 1000u

/* After exec: the new image loads the state (or not), reports, exits. */
static int hop_child(int argc, char **argv)
{
    CprsLoadOpts lo = CPRS_OPTS(CprsLoadOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s = NULL;
    double t0, dt;
    char text[256];
    int resfd;

    if (argc != 6) {
        return 2;
    }
    t0 = strtod(argv[3], NULL);
    resfd = atoi(argv[4]);
    if (!strcmp(argv[2], "cpr")) {
        if (atoi(argv[5])) {
            lo.flags |= CPRS_LOAD_F_NO_FD_CHECK;
        }
        if (cprs_state_load_exec(&lo, &d, &s)) {
            cprs_diag_format(&d, text, sizeof(text));
            fprintf(stderr, "hop load: %s\n", text);
            return 1;
        }
        if (cprs_state_fd_count(s) != HOP_RECORDS) {
            return 1;
        }
    }
    dt = now_ns() - t0;
    if (write(resfd, &dt, sizeof(dt)) != sizeof(dt)) {
        return 1;
    }
    cprs_state_free(s);
    return 0;
}

/* One hop in a fresh child: returns exec-to-loaded time in ns. */
static double one_hop(bool cpr, bool identity)
{
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts, .flags = identity ? 0 :
                                CPRS_SAVE_F_NO_IDENTITY);
    char t0s[64], fds[16], flag[4];
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    CprsState *s;
    char name[48];
    int res[2], fd, statefd, status;
    double dt = -1;
    uint32_t i;
    pid_t pid;

    if (pipe(res)) {
        die("pipe");
    }
    pid = fork();
    if (pid == 0) {
        close(res[0]);
        if (cprs_state_new(&s)) {
            _exit(1);
        }
        for (i = 0; i < HOP_RECORDS; i++) {
            if (i < HOP_BLOCKS) {
                snprintf(name, sizeof(name), "ram-node%u", i);
                fd = memfd_create(name, cpr ? MFD_CLOEXEC : 0);
                if (fd < 0 || ftruncate(fd, 2 << 20)) {
                    _exit(1);
                }
            } else {
                snprintf(name, sizeof(name), "0000:%02x:00.0/vector",
                         i / 32);
                fd = eventfd(0, cpr ? EFD_CLOEXEC : 0);
            }
            if (fd < 0 || cprs_state_save_fd(s, name, (int32_t)i, fd)) {
                _exit(1);
            }
            if (i < HOP_BLOCKS) {
                bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = name,
                               .flags = CPRS_RAM_F_SHARED,
                               .used_length = 2 << 20,
                               .max_length = 2 << 20, .page_size = 4096);
                gr = (CprsGpaRange) { (uint64_t)i << 21, 2 << 20, 0 };
                if (cprs_state_save_ramblock(s, &bi, name, (int32_t)i, &gr,
                                             1)) {
                    _exit(1);
                }
            }
        }
        snprintf(fds, sizeof(fds), "%d", res[1]);
        snprintf(flag, sizeof(flag), "%d", identity ? 0 : 1);
        snprintf(t0s, sizeof(t0s), "%.0f", now_ns());
        if (cpr) {
            if (cprs_state_save_exec(s, &so, NULL, &statefd) ||
                cprs_state_preserve_fds(s)) {
                _exit(1);
            }
        }
        execl(self_path, self_path, "hop-child", cpr ? "cpr" : "bare", t0s,
              fds, flag, (char *)NULL);
        _exit(127);
    }
    close(res[1]);
    if (read(res[0], &dt, sizeof(dt)) != sizeof(dt)) {
        dt = -1;
    }
    close(res[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status)) {
        die("exec hop child failed");
    }
    return dt;
}

static double hop_median(bool cpr, bool identity)
{
    double v[31];
    int i, n = repeats * 3;

    if (n > 31) {
        n = 31;
    }
    for (i = 0; i < n; i++) {
        v[i] = one_hop(cpr, identity);
    }
    return median(v, n);
}

static void bench_exec_hop(void)
{
    double bare, cpr, cpr_fast;

    section("Exec hop: save, exec, find, map, verify, load "
            "(1000 records, 64 RAM blocks; ratio = ours / bare)");
    bare = hop_median(false, true);
    cpr = hop_median(true, true);
    cpr_fast = hop_median(true, false);
    row("cpr-exec hop, identities checked", cpr, "bare exec, same fds",
        bare, cpr / bare, "<=", 1.1);
    row("cpr-exec hop, no identity check", cpr_fast, "bare exec, same fds",
        bare, cpr_fast / bare, "<=", 1.1);
}

/* ---- Memory -------------------------------------------------------------- */

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* In a child: peak RSS growth of open + verify, minus the arena itself. */
static void bench_memory(void)
{
    Input in;
    void *buf;
    size_t size;
    int fd, res[2], status;
    long before, after;
    double ratio = -1;
    pid_t pid;

    section("Memory: peak RSS on load beyond the arena (ratio = overhead / "
            "arena size)");
    input_make(&in, quick ? 100000 : 1000000, 64, 64u << 20, false);
    build_buffer(&in, &buf, &size);
    fd = memfd_create("arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (write(fd, buf, size) != (ssize_t)size ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) {
        die("arena memfd");
    }
    free(buf);
    input_free(&in);
    if (pipe(res)) {
        die("pipe");
    }
    pid = fork();
    if (pid == 0) {
        CprsReader *r;

        before = max_rss_kib();
        if (cprs_reader_open_fd(fd, NULL, NULL, &r) ||
            cprs_reader_verify(r, NULL)) {
            _exit(1);
        }
        after = max_rss_kib();
        ratio = ((double)(after - before) * 1024 - (double)size) /
                (double)size;
        if (write(res[1], &ratio, sizeof(ratio)) != sizeof(ratio)) {
            _exit(1);
        }
        cprs_reader_close(r);
        _exit(0);
    }
    close(res[1]);
    if (read(res[0], &ratio, sizeof(ratio)) != sizeof(ratio) ||
        waitpid(pid, &status, 0) != pid) {
        die("memory child failed");
    }
    close(res[0]);
    close(fd);
    printf("%-36s %8zu MiB  %-22s %11s %9.3g  %-8s %s\n",
           quick ? "open+verify, 100k fds + 64 MiB" :
           "open+verify, 1M fds + 64 MiB", size >> 20, "arena mapped", "-",
           ratio, "<= 0.05", ratio <= 0.05 ? "yes" : "NO");
    met_total++;
    met_ok += ratio <= 0.05;
}

/* ---- cprdump ------------------------------------------------------------- */

/* Wall time of "@argv > @out". */
static double run_to(char *const argv[], const char *out)
{
    double t0 = now_ns();
    int status, fd;
    pid_t pid = fork();

    if (pid == 0) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0) {
            _exit(127);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        die("%s failed", argv[0]);
    }
    return WEXITSTATUS(status) ? -1 : now_ns() - t0;
}

static double run_median(char *const argv[], const char *out)
{
    double v[31], t;
    int i;

    for (i = 0; i < repeats; i++) {
        t = run_to(argv, out);
        if (t < 0) {
            return -1;
        }
        v[i] = t;
    }
    return median(v, repeats);
}

static void bench_cprdump(void)
{
    char dir[] = "/tmp/cprs-bench-XXXXXX";
    char arena[64], text[64], json[64];
    Input in;
    void *buf;
    size_t size;
    double t, cat;
    FILE *f;

    if (!cprdump_path) {
        return;
    }
    section("cprdump over a 100,000-record arena (ratio = cprdump / cat)");
    if (!mkdtemp(dir)) {
        die("mkdtemp");
    }
    snprintf(arena, sizeof(arena), "%s/arena", dir);
    snprintf(text, sizeof(text), "%s/out.txt", dir);
    snprintf(json, sizeof(json), "%s/out.json", dir);
    input_make(&in, 100000, 64, 0, false);
    build_buffer(&in, &buf, &size);
    f = fopen(arena, "wb");
    if (!f || fwrite(buf, 1, size, f) != size || fclose(f)) {
        die("write arena");
    }
    free(buf);
    input_free(&in);
    {
        char *show[] = { (char *)cprdump_path, arena, NULL };
        char *js[] = { (char *)cprdump_path, (char *)"--json", arena, NULL };
        char *cat_text[] = { (char *)"/bin/cat", text, NULL };
        char *cat_json[] = { (char *)"/bin/cat", json, NULL };

        t = run_median(show, text);
        cat = run_median(cat_text, "/dev/null");
        row("cprdump text", t, "cat of the text", cat, t / cat, "", NAN);
        t = run_median(js, json);
        if (t >= 0) {
            cat = run_median(cat_json, "/dev/null");
            row("cprdump --json", t, "cat of the JSON", cat, t / cat, "",
                NAN);
        }
    }
    unlink(arena);
    unlink(text);
    unlink(json);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    static char self[4096];
    const char *only = NULL;
    ssize_t n;
    int i;

    if (argc > 1 && !strcmp(argv[1], "hop-child")) {
        return hop_child(argc, argv);
    }
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
            repeats = 3;
        } else if (!strncmp(argv[i], "--only=", 7)) {
            only = argv[i] + 7;
        } else if (!strncmp(argv[i], "--cprdump=", 10)) {
            cprdump_path = argv[i] + 10;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--only=save|load|lookup|"
                    "hop|memory|cprdump] [--cprdump=PATH]\n", argv[0]);
            return 2;
        }
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        die("readlink /proc/self/exe");
    }
    self[n] = '\0';
    self_path = self;
    printf("libcprstate %s benchmarks: median of %d runs per figure%s\n",
           cprs_version(), repeats, quick ? " (--quick)" : "");
#define RUN(name, fn) if (!only || !strcmp(only, name)) { fn(); }
    RUN("save", bench_save);
    RUN("load", bench_load);
    RUN("lookup", bench_lookup);
    RUN("hop", bench_exec_hop);
    RUN("memory", bench_memory);
    RUN("cprdump", bench_cprdump);
#undef RUN
    printf("\ntargets met: %d of %d\n", met_ok, met_total);
    return 0;
}
