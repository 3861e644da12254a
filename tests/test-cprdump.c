/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-cprdump.c - cprdump end to end, against files and real processes.
 *
 * - golden text, JSON and annotated hex output for the golden arenas and
 *   for every QEMU 10.2 capture (tests/data/cprdump/; set
 *   CPRS_REGEN_GOLDEN=1 to rewrite them, then review the diff);
 * - exit codes, error messages, and an empty stdout on every failure;
 * - diff and convert, including byte-identical legacy round trips;
 * - a live state-holder process (tests/state-holder.c) that holds its
 *   state as QEMU does after a cpr-exec: read through /proc/PID/fd/N
 *   (its file offset must not move) and with --pid; check-live before
 *   and after an fd is closed, replaced or truncated;
 * - gcore cores of that process, found through NT_FILE (mapped state)
 *   and by the scan (a heap copy), and a kernel core when the host lets
 *   us make one;
 * - issue 11: another process's pipe and socket refused under any path
 *   (class 6), sources read by their headers (class 5, also run as the
 *   meson tests bounded-5-*), untrusted text escaped (class 8);
 * - issue 13: several sources and --pid lists with two holders, list,
 *   selectors, usage errors and refused options per family, --help, the
 *   man page and the completion naming the same options, and the legacy
 *   round trip of every vfio form.
 */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* ---- Running cprdump ----------------------------------------------------- */

typedef struct Run {
    int status;         /* exit status, or 128 + signal */
    char *out;          /* stdout, NUL-terminated */
    size_t out_len;
    char *err;          /* stderr, NUL-terminated */
} Run;

static char tmpdir[256];

static const char *cprdump_path(void)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/tools/cprdump", th_build_root());
    return path;
}

static const char *holder_path(void)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/tests/state-holder", th_build_root());
    return path;
}

static char *slurp(FILE *f, size_t *ret_len)
{
    size_t len = 0, cap = 65536, n;
    char *buf = malloc(cap + 1);

    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    *ret_len = len;
    return buf;
}

/* Run a shell command line; @cwd may be NULL. */
static void run_sh(Run *r, const char *cwd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void run_sh(Run *r, const char *cwd, const char *fmt, ...)
{
    char cmd[16384], args[12288], errpath[300];
    size_t n;
    va_list ap;
    FILE *p, *e;
    int st;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(errpath, sizeof(errpath), "%s/stderr", tmpdir);
    snprintf(cmd, sizeof(cmd), "{ %s%s%s%s; } 2>'%s'", cwd ? "cd '" : "",
             cwd ? cwd : "", cwd ? "' && " : "", args, errpath);
    p = popen(cmd, "r");
    assert_non_null(p);
    r->out = slurp(p, &r->out_len);
    st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    e = fopen(errpath, "r");
    assert_non_null(e);
    r->err = slurp(e, &n);
    fclose(e);
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Run cprdump with @args (already quoted as needed). */
#define CPRDUMP(r, cwd, ...) \
    run_cprdump(r, cwd, __VA_ARGS__)

static void run_cprdump(Run *r, const char *cwd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void run_cprdump(Run *r, const char *cwd, const char *fmt, ...)
{
    char args[12000];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    run_sh(r, cwd, "'%s' %s", cprdump_path(), args);
}

static void expect_status(const Run *r, int want, const char *what)
{
    if (r->status != want) {
        fail_msg("%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", what,
                 r->status, want, r->out, r->err);
    }
}

static void expect_in(const char *hay, const char *needle, const char *what)
{
    if (!strstr(hay, needle)) {
        fail_msg("%s: \"%s\" not found in:\n%s", what, needle, hay);
    }
}

/* A failure: a non-zero exit, an empty stdout, advice on stderr. */
static void expect_failure(Run *r, int want, const char *advice,
                           const char *what)
{
    expect_status(r, want, what);
    if (r->out_len) {
        fail_msg("%s: failed but wrote to stdout:\n%s", what, r->out);
    }
    expect_in(r->err, advice, what);
}

/* ---- Golden files -------------------------------------------------------- */

static bool regen(void)
{
    const char *v = getenv("CPRS_REGEN_GOLDEN");

    return v && *v && strcmp(v, "0");
}

/* Compare @got with tests/data/cprdump/@name, or rewrite it. */
static void golden(const char *name, const char *got, size_t len)
{
    char path[4096], actual[4096];
    uint8_t *want;
    size_t want_len;
    FILE *f;

    snprintf(path, sizeof(path), "%s/cprdump/%s", th_data_dir(), name);
    if (regen()) {
        th_write_file(path, got, len);
        return;
    }
    f = fopen(path, "rb");
    if (!f) {
        fail_msg("golden file %s is missing: run the test with "
                 "CPRS_REGEN_GOLDEN=1, then review it", path);
    }
    fclose(f);
    want = th_read_file(path, &want_len);
    if (want_len != len || memcmp(want, got, len)) {
        snprintf(actual, sizeof(actual), "%s/%s", tmpdir, "actual");
        th_write_file(actual, got, len);
        fail_msg("output differs from %s; got (also in %s):\n%s", path,
                 actual, got);
    }
    free(want);
}

typedef struct Names {
    char name[64][256];
    size_t n;
} Names;

/* Files of @dir ending in @ext, sorted. */
static void list_dir(const char *dir, const char *ext, Names *out)
{
    struct dirent *de;
    size_t n, e = strlen(ext), i, j;
    char tmp[256];
    DIR *d = opendir(dir);

    assert_non_null(d);
    out->n = 0;
    while ((de = readdir(d)) != NULL && out->n < 64) {
        n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= e || n >= 256 ||
            strcmp(de->d_name + n - e, ext)) {
            continue;
        }
        snprintf(out->name[out->n++], 256, "%s", de->d_name);
    }
    closedir(d);
    for (i = 0; i < out->n; i++) {
        for (j = i + 1; j < out->n; j++) {
            if (strcmp(out->name[i], out->name[j]) > 0) {
                memcpy(tmp, out->name[i], 256);
                memcpy(out->name[i], out->name[j], 256);
                memcpy(out->name[j], tmp, 256);
            }
        }
    }
}

/* ---- Golden vectors and captures ---------------------------------------- */

static void test_vectors_golden(void **state)
{
    char base[256], name[300];
    uint8_t *want;
    size_t i, want_len;
    Names v;
    Run r;

    (void)state;
    list_dir(th_vectors_dir(), ".cprs", &v);
    assert_true(v.n >= 4);
    for (i = 0; i < v.n; i++) {
        snprintf(base, sizeof(base), "%.*s", (int)(strlen(v.name[i]) - 5),
                 v.name[i]);
        /* The v1 text layout is unchanged: format/vectors/NAME.txt. */
        CPRDUMP(&r, th_vectors_dir(), "'%s'", v.name[i]);
        expect_status(&r, 0, v.name[i]);
        snprintf(name, sizeof(name), "%s/%s.txt", th_vectors_dir(), base);
        want = th_read_file(name, &want_len);
        assert_int_equal(want_len, r.out_len);
        assert_memory_equal(want, r.out, want_len);
        free(want);
        run_free(&r);

        CPRDUMP(&r, th_vectors_dir(), "--json '%s'", v.name[i]);
        expect_status(&r, 0, v.name[i]);
        snprintf(name, sizeof(name), "vectors/%s.json", base);
        golden(name, r.out, r.out_len);
        run_free(&r);

        CPRDUMP(&r, th_vectors_dir(), "--hex '%s'", v.name[i]);
        expect_status(&r, 0, v.name[i]);
        snprintf(name, sizeof(name), "vectors/%s.hex", base);
        golden(name, r.out, r.out_len);
        run_free(&r);

        CPRDUMP(&r, th_vectors_dir(), "verify '%s'", v.name[i]);
        expect_status(&r, 0, v.name[i]);
        snprintf(name, sizeof(name), "%s: valid\n", v.name[i]);
        assert_string_equal(r.out, name);
        run_free(&r);
    }
}

/*
 * The names of MANIFEST.txt's "Expected fd records", in order: what an
 * independent decoder (the capture tool) found in the same bytes.
 */
static size_t manifest_names(const char *dir, char names[][512], size_t max)
{
    char path[4200], line[4096], *p, *q;
    size_t n = 0;
    bool in = false;
    FILE *f;

    snprintf(path, sizeof(path), "%.4096s/MANIFEST.txt", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) && n < max) {
        if (strstr(line, "Expected fd records")) {
            in = true;
            continue;
        }
        if (in && line[0] != ' ') {
            break;
        }
        p = in ? strstr(line, "name='") : NULL;
        q = p ? strstr(p + 6, "' (namelen") : NULL;
        if (q) {
            snprintf(names[n++], 512, "%.*s", (int)(q - p - 6), p + 6);
        }
    }
    fclose(f);
    return n;
}

static void test_captures_golden(void **state)
{
    char dir[4096], name[600], (*names)[512];
    const char *pos;
    size_t s, i, k, n;
    Names scen, bins;
    Run r;

    (void)state;
    names = calloc(64, 512);
    assert_non_null(names);
    snprintf(dir, sizeof(dir), "%s/qemu-10.2", th_data_dir());
    list_dir(dir, "", &scen);
    assert_true(scen.n >= 5);
    for (s = 0; s < scen.n; s++) {
        snprintf(dir, sizeof(dir), "%s/qemu-10.2/%s", th_data_dir(),
                 scen.name[s]);
        list_dir(dir, ".bin", &bins);
        assert_true(bins.n >= 1);
        n = manifest_names(dir, names, 64);
        for (i = 0; i < bins.n; i++) {
            CPRDUMP(&r, dir, "'%s'", bins.name[i]);
            expect_status(&r, 0, bins.name[i]);
            /* Every record of the independent decode, in its order. */
            assert_true(n >= 1);
            for (pos = r.out, k = 0; k < n; k++) {
                snprintf(name, sizeof(name), " %s\n", names[k]);
                pos = strstr(pos, name);
                if (!pos) {
                    fail_msg("%s/%s: record %zu \"%s\" missing or out of "
                             "order:\n%s", scen.name[s], bins.name[i], k,
                             names[k], r.out);
                }
            }
            snprintf(name, sizeof(name), "fd records: %zu\n", n);
            expect_in(r.out, name, bins.name[i]);
            snprintf(name, sizeof(name), "qemu-10.2/%s-%s.txt", scen.name[s],
                     bins.name[i]);
            golden(name, r.out, r.out_len);
            run_free(&r);

            CPRDUMP(&r, dir, "--json '%s'", bins.name[i]);
            expect_status(&r, 0, bins.name[i]);
            snprintf(name, sizeof(name), "qemu-10.2/%s-%s.json",
                     scen.name[s], bins.name[i]);
            golden(name, r.out, r.out_len);
            run_free(&r);

            CPRDUMP(&r, dir, "--hex '%s'", bins.name[i]);
            expect_status(&r, 0, bins.name[i]);
            snprintf(name, sizeof(name), "qemu-10.2/%s-%s.hex", scen.name[s],
                     bins.name[i]);
            golden(name, r.out, r.out_len);
            run_free(&r);

            CPRDUMP(&r, dir, "verify '%s'", bins.name[i]);
            expect_status(&r, 0, bins.name[i]);
            run_free(&r);
        }
    }
    free(names);
}

/* Standard input gives the same report as the file. */
static void test_stdin(void **state)
{
    char path[4096];
    Run a, b;

    (void)state;
    snprintf(path, sizeof(path), "%s/qemu-10.2/b-q35-numa2-vga/capture.bin",
             th_data_dir());
    CPRDUMP(&a, NULL, "'%s'", path);
    run_sh(&b, NULL, "cat '%s' | '%s' -", path, cprdump_path());
    expect_status(&b, 0, "stdin");
    assert_string_equal(a.out, b.out);
    run_free(&a);
    run_free(&b);
    snprintf(path, sizeof(path), "%s/qemu-numa2-vga-vfio.cprs",
             th_vectors_dir());
    CPRDUMP(&a, NULL, "--json - < '%s'", path);
    expect_status(&a, 0, "stdin json");
    expect_in(a.out, "\"kind\": \"stdin\"", "stdin json");
    run_free(&a);
}

/* ---- Exit codes and messages --------------------------------------------- */

static void write_tmp(const char *name, const void *buf, size_t len,
                      char *path, size_t size)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    th_write_file(path, buf, len);
}

static void test_errors(void **state)
{
    char cap[4096], path[4096];
    uint8_t *buf;
    size_t size;
    Run r;

    (void)state;
    snprintf(cap, sizeof(cap), "%s/qemu-10.2/a-q35-memfd/capture.bin",
             th_data_dir());
    buf = th_read_file(cap, &size);

    /* A truncated stream: corrupt, nothing on stdout. */
    write_tmp("trunc.bin", buf, 100, path, sizeof(path));
    CPRDUMP(&r, NULL, "'%s'", path);
    expect_failure(&r, 2, "offset 0x", "truncated stream");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify '%s'", path);
    expect_status(&r, 2, "verify truncated stream");
    expect_in(r.out, "invalid: offset 0x64", "verify truncated");
    run_free(&r);

    /* A version QEMU never wrote: unsupported. */
    buf[7] = 2;
    write_tmp("v2.bin", buf, size, path, sizeof(path));
    CPRDUMP(&r, NULL, "verify '%s'", path);
    expect_status(&r, 3, "version 2");
    expect_in(r.out, "unsupported", "version 2");
    run_free(&r);
    buf[7] = 1;

    /* Trailing bytes: shown as QEMU reads it, reported invalid. */
    buf = realloc(buf, size + 3);
    assert_non_null(buf);
    memcpy(buf + size, "xyz", 3);
    write_tmp("trailing.bin", buf, size + 3, path, sizeof(path));
    CPRDUMP(&r, NULL, "'%s'", path);
    expect_status(&r, 2, "trailing bytes");
    expect_in(r.out, "Trailing bytes:       3\n", "trailing shown");
    expect_in(r.out, "Verification: FAILED", "trailing verdict");
    expect_in(r.err, "--lenient", "trailing advice");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify --lenient '%s'", path);
    expect_status(&r, 0, "lenient verify");
    expect_in(r.out, "valid to QEMU, with 1 warning", "lenient verify");
    run_free(&r);
    free(buf);

    /* Not a state at all. */
    write_tmp("text.txt", "hello, world\n", 13, path, sizeof(path));
    CPRDUMP(&r, NULL, "'%s'", path);
    expect_failure(&r, 2, "not a CPR state: it starts with 68 65 6c 6c",
                   "text file");
    run_free(&r);
    write_tmp("empty.bin", "", 0, path, sizeof(path));
    CPRDUMP(&r, NULL, "verify '%s'", path);
    expect_failure(&r, 2, "empty input", "empty file");
    run_free(&r);

    /* I/O and usage: 1. */
    CPRDUMP(&r, NULL, "/nonexistent/state");
    expect_failure(&r, 1, "no such file or directory", "missing file");
    run_free(&r);
    CPRDUMP(&r, NULL, "'%s'", tmpdir);
    expect_failure(&r, 1, "is a directory", "directory");
    run_free(&r);
    CPRDUMP(&r, NULL, "--json --hex '%s'", cap);
    expect_failure(&r, 1, "exclude each other", "json and hex");
    run_free(&r);
    CPRDUMP(&r, NULL, "--bogus");
    expect_failure(&r, 1, "Try 'cprdump --help'", "bad option");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify");
    expect_failure(&r, 1, "takes at least one SOURCE", "missing source");
    run_free(&r);
    CPRDUMP(&r, NULL, "--pid 0");
    expect_failure(&r, 1, "not a process id", "pid 0");
    run_free(&r);

    CPRDUMP(&r, NULL, "--help");
    expect_status(&r, 0, "--help");
    expect_in(r.out, "Usage: cprdump [show]", "--help");
    expect_in(r.out, "check-live", "--help");
    run_free(&r);
    CPRDUMP(&r, NULL, "--version");
    expect_status(&r, 0, "--version");
    expect_in(r.out, "CPR State Arena format 1.0", "--version");
    expect_in(r.out, "JSON output 1.2", "--version");
    run_free(&r);
}

/* ---- diff ---------------------------------------------------------------- */

/* A small arena with one varying fd record, written reproducibly. */
static void small_arena(const char *name, uint64_t ram_size, bool extra,
                        char *path, size_t size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .producer = "test-cprdump");
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11,
                              .kind = CPRS_FD_KIND_MEMFD,
                              .flags = CPRS_FD_F_IDENTITY, .dev = 1,
                              .ino = 42, .st_mode = 0100600,
                              .size = ram_size);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0",
                                    .fd_index = 0,
                                    .flags = CPRS_RAM_F_SHARED,
                                    .used_length = ram_size,
                                    .max_length = ram_size,
                                    .page_size = 4096);
    CprsWriter *w;
    void *buf;
    size_t len;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    if (extra) {
        fi.name = "pc.bios";
        fi.fd = 15;
        fi.ino = 43;
        fi.size = 0x40000;
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    assert_int_equal(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &len), 0);
    cprs_writer_free(w);
    write_tmp(name, buf, len, path, size);
    free(buf);
}

static void test_diff(void **state)
{
    char a[4096], b[4096], c[4096], cap[4096], cap2[4096], live[4096];
    Run r;

    (void)state;
    small_arena("a.cprs", 0x8000000, false, a, sizeof(a));
    small_arena("b.cprs", 0x10000000, true, b, sizeof(b));
    small_arena("c.cprs", 0x8000000, false, c, sizeof(c));

    CPRDUMP(&r, NULL, "diff '%s' '%s'", a, c);
    expect_status(&r, 0, "identical arenas");
    expect_in(r.out, "No differences.\n", "identical arenas");
    run_free(&r);

    CPRDUMP(&r, tmpdir, "diff a.cprs b.cprs");
    expect_status(&r, 1, "different arenas");
    assert_string_equal(r.out,
        "--- a.cprs\n"
        "+++ b.cprs\n"
        "Header:\n"
        "  ~ arena-size: 696 -> 768\n"
        "fd records:\n"
        "  + [1] pc.bios (id 0): slot 1, fd 15, kind memfd, flags 0x1, "
        "seals -, dev 0x1, ino 43, mode 0100600, size 262144\n"
        "  ~ ram0 (id 0): size 134217728 -> 268435456\n"
        "RAM blocks:\n"
        "  ~ ram0: used-length 0x8000000 -> 0x10000000; max-length "
        "0x8000000 -> 0x10000000\n"
        "4 differences\n");
    run_free(&r);

    CPRDUMP(&r, tmpdir, "diff --json b.cprs a.cprs");
    expect_status(&r, 1, "diff json");
    expect_in(r.out, "\"removed\": [\n            {\n                "
              "\"name\": \"pc.bios\"", "diff json removed");
    expect_in(r.out, "\"identical\": false", "diff json");
    run_free(&r);

    /* f3: the second hop wrote the very same bytes. */
    snprintf(cap, sizeof(cap), "%s/qemu-10.2/f3-chained-exec-twice/"
             "capture.bin", th_data_dir());
    snprintf(cap2, sizeof(cap2), "%s/qemu-10.2/f3-chained-exec-twice/"
             "capture-2.bin", th_data_dir());
    CPRDUMP(&r, NULL, "diff '%s' '%s'", cap, cap2);
    expect_status(&r, 0, "f3 hops");
    run_free(&r);
    /* What the wrapper saved equals what was read from /proc live. */
    snprintf(live, sizeof(live), "%s/qemu-10.2/a-q35-memfd/live.bin",
             th_data_dir());
    snprintf(cap, sizeof(cap), "%s/qemu-10.2/a-q35-memfd/capture.bin",
             th_data_dir());
    CPRDUMP(&r, NULL, "diff '%s' '%s'", cap, live);
    expect_status(&r, 0, "capture vs live");
    run_free(&r);
    /* Exec and transfer captures of one machine: only fds differ. */
    snprintf(cap2, sizeof(cap2), "%s/qemu-10.2/g1-transfer-q35-memfd/"
             "capture.bin", th_data_dir());
    CPRDUMP(&r, NULL, "diff '%s' '%s'", cap, cap2);
    expect_status(&r, 1, "exec vs transfer");
    expect_in(r.out, "  ~ mode: cpr-exec -> cpr-transfer\n", "mode");
    expect_in(r.out, "  ~ ram0 (id 0): fd 11 -> -\n", "fd");
    run_free(&r);

    CPRDUMP(&r, NULL, "diff '%s' /nonexistent", a);
    expect_failure(&r, 2, "no such file", "diff missing");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff - - < '%s'", a);
    expect_failure(&r, 2, "can be only one SOURCE", "diff two stdins");
    run_free(&r);
    /* A usage error is 2 here: 1 would say "different". */
    CPRDUMP(&r, NULL, "diff '%s'", a);
    expect_failure(&r, 2, "two SOURCEs", "diff one side");
    run_free(&r);
}

/*
 * An arena of device-state payloads @data[i] (@size bytes each, zstd when
 * @zstd), written reproducibly.  Returns the buffer; free() it.
 */
static uint8_t *payload_arena(const uint8_t *const *data, size_t size,
                              uint32_t n, bool zstd, size_t *ret_len)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .producer = "test-cprdump");
    CprsDevStateInfo ds = CPRS_OPTS(CprsDevStateInfo, .name = "dev",
                                    .version_id = 1,
                                    .flags = zstd ? CPRS_DEVSTATE_F_ZSTD : 0);
    CprsWriter *w;
    void *buf;
    uint32_t i;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        ds.instance_id = i;
        assert_int_equal(cprs_writer_add_devstate(w, &ds, data[i], size,
                                                  NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_len), 0);
    cprs_writer_free(w);
    return buf;
}

/*
 * Set the last 4 bytes of @buf (@len bytes) so that its CRC32C is @want:
 * the CRC is affine in those bits, so solve the 32 x 32 system over GF(2).
 */
static void forge_crc32c(uint8_t *buf, size_t len, uint32_t want)
{
    uint32_t col[32], base, rhs, x = 0, m;
    uint32_t rows[32], sol[32];
    int b, r, piv, k;

    memset(buf + len - 4, 0, 4);
    base = cprs_crc32c(0, buf, len);
    for (b = 0; b < 32; b++) {
        buf[len - 4 + b / 8] = (uint8_t)(1u << (b % 8));
        col[b] = cprs_crc32c(0, buf, len) ^ base;
        buf[len - 4 + b / 8] = 0;
    }
    rhs = want ^ base;
    /* Row r: bit b set when column b has bit r; augmented by rhs bit r. */
    for (r = 0; r < 32; r++) {
        rows[r] = 0;
        for (b = 0; b < 32; b++) {
            rows[r] |= ((col[b] >> r) & 1u) << b;
        }
        sol[r] = (rhs >> r) & 1u;
    }
    for (b = 0, r = 0; b < 32 && r < 32; b++) {
        for (piv = r; piv < 32 && !((rows[piv] >> b) & 1u); piv++) {
        }
        assert_true(piv < 32);
        m = rows[piv], rows[piv] = rows[r], rows[r] = m;
        m = sol[piv], sol[piv] = sol[r], sol[r] = m;
        for (k = 0; k < 32; k++) {
            if (k != r && ((rows[k] >> b) & 1u)) {
                rows[k] ^= rows[r];
                sol[k] ^= sol[r];
            }
        }
        r++;
    }
    for (r = 0; r < 32; r++) {
        x |= sol[r] << r;       /* row r now has only bit r */
    }
    for (b = 0; b < 4; b++) {
        buf[len - 4 + b] = (uint8_t)(x >> (8 * b));
    }
    assert_int_equal(cprs_crc32c(0, buf, len), want);
}

/*
 * diff compares payloads by their bytes, and a payload it cannot read is
 * an error: it never made two states equal.  Two payloads with the same
 * CRC32C and different bytes differ; two that do not decompress (both
 * sides broken, different contents) cannot be compared (exit 2); each
 * payload is read through cprs_reader_devstate_read(), which keeps
 * nothing, so the reader's budget never turns a later payload into
 * "unreadable" on both sides.
 */
static void test_diff_payloads(void **state)
{
    uint8_t pa[256], pb[256], za[4096], zb[4096];
    const uint8_t *da[1] = { pa }, *db[1] = { pb };
    char a[4096], b[4096];
    uint8_t *buf;
    uint64_t off;
    size_t len;
    int which;
    Run r;

    (void)state;
    memset(pa, 'a', sizeof(pa));
    memset(pb, 'b', sizeof(pb));
    forge_crc32c(pb, sizeof(pb), cprs_crc32c(0, pa, sizeof(pa)));
    buf = payload_arena(da, sizeof(pa), 1, false, &len);
    write_tmp("pa.cprs", buf, len, a, sizeof(a));
    free(buf);
    buf = payload_arena(db, sizeof(pb), 1, false, &len);
    write_tmp("pb.cprs", buf, len, b, sizeof(b));
    free(buf);
    CPRDUMP(&r, NULL, "diff '%s' '%s'", a, b);
    expect_status(&r, 1, "same CRC32C, other bytes");
    expect_in(r.out, "payload crc32c", "same CRC32C");
    expect_in(r.out, "(same CRC32C, other bytes)", "same CRC32C");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff --json '%s' '%s'", a, b);
    expect_status(&r, 1, "same CRC32C, --json");
    expect_in(r.out, "\"field\": \"payload\"", "same CRC32C, --json");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff '%s' '%s'", a, a);
    expect_status(&r, 0, "same payload");
    run_free(&r);

    /* zstd frames broken after the writer, every CRC repaired. */
    memset(za, 'x', sizeof(za));
    memset(zb, 'y', sizeof(zb));
    for (which = 0; which < 2; which++) {
        da[0] = which ? zb : za;
        buf = payload_arena(da, sizeof(za), 1, true, &len);
        off = th_rec_off(buf, CPRS_SECTION_DEVSTATE, 0);
        assert_true(cprs_le32_get(&((CprsWireDevState *)(buf + off))->flags)
                    & CPRS_DEVSTATE_F_ZSTD);
        off = th_sec_off(buf, CPRS_SECTION_BLOB) +
              cprs_le64_get(&((CprsWireDevState *)(buf + off))->data_off);
        buf[off] ^= 0xff;       /* the zstd magic */
        th_fix_crcs(buf, len);
        write_tmp(which ? "zb.cprs" : "za.cprs", buf, len,
                  which ? b : a, sizeof(a));
        free(buf);
    }
    CPRDUMP(&r, NULL, "diff '%s' '%s'", a, b);
    expect_failure(&r, 2, "cannot be read", "unreadable payloads");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff --json '%s' '%s'", a, b);
    expect_failure(&r, 2, "cannot be compared", "unreadable, --json");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff '%s' '%s'", a, a);
    expect_failure(&r, 2, "cannot be read", "unreadable, same file");
    run_free(&r);
}

/*
 * diff compares every guest-physical range of a RAM block and whole
 * names: a difference in the 11th range or past a name's 200th byte
 * is found (both were cut to 200 bytes and never compared).  A long
 * value is shown from a little before its first difference.
 */
static void test_diff_ranges(void **state)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .producer = "test-cprdump");
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .fd = 11,
                              .kind = CPRS_FD_KIND_MEMFD);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0",
                                    .fd_index = 0,
                                    .flags = CPRS_RAM_F_SHARED,
                                    .used_length = 0x100000,
                                    .max_length = 0x100000,
                                    .page_size = 4096);
    CprsGpaRange gr[12];
    char path[2][4096], name[1024];
    CprsWriter *w;
    void *buf;
    size_t len;
    uint32_t k;
    int side, what;
    Run r;

    (void)state;
    for (what = 0; what < 2; what++) {
        for (side = 0; side < 2; side++) {
            for (k = 0; k < 12; k++) {
                gr[k].gpa = UINT64_C(0x100000000) * (k + 1);
                gr[k].size = 0x1000;
                gr[k].block_offset = 0x1000 * k;
            }
            memset(name, 'm', 900);
            snprintf(name + 900, sizeof(name) - 900, "%s",
                     what == 1 && side ? "-b" : "-a");
            if (what == 0 && side) {
                gr[11].gpa = UINT64_C(0x7700000000);
            }
            fi.name = name;
            assert_int_equal(cprs_writer_new(&o, &w), 0);
            assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
            assert_int_equal(cprs_writer_add_ramblock(w, &bi, gr, 12, NULL),
                             0);
            assert_int_equal(cprs_writer_finish_buffer(w, &buf, &len), 0);
            cprs_writer_free(w);
            write_tmp(side ? "rb.cprs" : "ra.cprs", buf, len, path[side],
                      sizeof(path[side]));
            free(buf);
        }
        CPRDUMP(&r, NULL, "diff --records-only '%s' '%s'", path[0], path[1]);
        expect_status(&r, 1, what ? "long fd name" : "12th range");
        if (what == 0) {
            expect_in(r.out, "  ~ ram0: gpa-ranges ...", "range shown");
            expect_in(r.out, " 0xc00000000+0x1000@0xb000 -> ...",
                      "range shown");
            expect_in(r.out, " 0x7700000000+0x1000@0xb000\n",
                      "range shown");
        } else {
            /* The fd records differ by name; so does the backing fd. */
            expect_in(r.out, "mmm-a -> ...mmm", "long name shown");
            expect_in(r.out, "mmm-b\n", "long name shown");
        }
        run_free(&r);
        CPRDUMP(&r, NULL, "diff --json --records-only '%s' '%s'", path[0],
                path[1]);
        expect_status(&r, 1, "--json");
        expect_in(r.out, what ? "\"field\": \"fd\"" :
                  "\"field\": \"gpa-ranges\"", "--json");
        run_free(&r);
    }
}

/* ---- convert ------------------------------------------------------------- */

static void test_convert(void **state)
{
    char dir[4096], in[4096], arena[4096], back[4096], vec[4096];
    uint8_t *x, *y;
    size_t s, i, xl, yl;
    Names scen, bins;
    Run r;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/qemu-10.2", th_data_dir());
    list_dir(dir, "", &scen);
    snprintf(arena, sizeof(arena), "%s/conv.cprs", tmpdir);
    snprintf(back, sizeof(back), "%s/conv.qcpr", tmpdir);
    for (s = 0; s < scen.n; s++) {
        snprintf(dir, sizeof(dir), "%s/qemu-10.2/%s", th_data_dir(),
                 scen.name[s]);
        list_dir(dir, ".bin", &bins);
        for (i = 0; i < bins.n; i++) {
            snprintf(in, sizeof(in), "%.3800s/%s", dir, bins.name[i]);
            CPRDUMP(&r, NULL, "convert --force --to arena '%s' '%s'", in,
                    arena);
            expect_status(&r, 0, in);
            expect_in(r.err, "an arena with", in);
            run_free(&r);
            CPRDUMP(&r, NULL, "verify '%s'", arena);
            expect_status(&r, 0, "converted arena verifies");
            run_free(&r);
            CPRDUMP(&r, NULL, "diff --records-only '%s' '%s'", in, arena);
            expect_status(&r, 0, "converted records");
            run_free(&r);
            CPRDUMP(&r, NULL, "convert -q -f --to legacy '%s' '%s'", arena,
                    back);
            expect_status(&r, 0, "back to legacy");
            run_free(&r);
            x = th_read_file(in, &xl);
            y = th_read_file(back, &yl);
            if (xl != yl || memcmp(x, y, xl)) {
                fail_msg("%s: legacy -> arena -> legacy is not "
                         "byte-identical", in);
            }
            free(x);
            free(y);
        }
    }

    /* No overwrite without --force; "-" writes the bytes to a pipe. */
    CPRDUMP(&r, NULL, "convert --to legacy '%s' '%s'", arena, back);
    expect_failure(&r, 1, "exists; use --force", "no overwrite");
    run_free(&r);
    run_sh(&r, NULL, "'%s' convert -q --to legacy '%s' - | cmp - '%s'",
           cprdump_path(), arena, back);
    expect_status(&r, 0, "convert to stdout");
    run_free(&r);

    /* An arena with RAM blocks: downgraded, what does not fit is said. */
    snprintf(vec, sizeof(vec), "%s/qemu-q35-memfd.cprs", th_vectors_dir());
    CPRDUMP(&r, NULL, "convert -f --to legacy '%s' '%s'", vec, back);
    expect_status(&r, 0, "arena to legacy");
    expect_in(r.err, "6 RAM blocks and 0 payloads left out", "downgrade");
    expect_in(r.err, "with 6 fd record(s) and 0 vfio device(s)", "summary");
    run_free(&r);
    CPRDUMP(&r, NULL, "'%s'", back);
    expect_status(&r, 0, "downgraded stream");
    expect_in(r.out, "  [   5] 0x00000096    5    11           0 ram0\n",
              "downgraded stream");
    run_free(&r);
    CPRDUMP(&r, NULL, "convert -f --to legacy --mode transfer '%s' '%s'",
            vec, back);
    expect_status(&r, 0, "exec arena to transfer stream");
    run_free(&r);
    CPRDUMP(&r, NULL, "'%s'", back);
    expect_in(r.out, "Mode:                 cpr-transfer\n", "to transfer");
    run_free(&r);

    /* Only valid input is converted. */
    x = th_read_file(vec, &xl);
    x[xl - 1] ^= 1;
    write_tmp("bad.cprs", x, xl, in, sizeof(in));
    free(x);
    CPRDUMP(&r, NULL, "convert -f --to legacy '%s' '%s'", in, back);
    expect_failure(&r, 2, "invalid", "convert corrupt");
    run_free(&r);
    CPRDUMP(&r, NULL, "convert '%s' '%s'", vec, back);
    expect_failure(&r, 1, "--to arena or --to legacy", "convert no --to");
    run_free(&r);
}

/* ---- A live process ------------------------------------------------------ */

typedef struct Holder {
    pid_t pid;
    FILE *in;
    FILE *out;
    int state_fd;
    char names[16][64];
    int fds[16];
    int n;
} Holder;

static void holder_start(Holder *h, const char *args)
{
    int to[2], from[2];
    char line[512], *argv[8], copy[256], *save = NULL, *w;
    int argc = 0;

    memset(h, 0, sizeof(*h));
    assert_int_equal(pipe2(to, O_CLOEXEC), 0);
    assert_int_equal(pipe2(from, O_CLOEXEC), 0);
    snprintf(copy, sizeof(copy), "%s", args);
    argv[argc++] = (char *)holder_path();
    for (w = strtok_r(copy, " ", &save); w && argc < 7;
         w = strtok_r(NULL, " ", &save)) {
        argv[argc++] = w;
    }
    argv[argc] = NULL;
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (!h->pid) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    h->in = fdopen(to[1], "w");
    h->out = fdopen(from[0], "r");
    assert_non_null(h->in);
    assert_non_null(h->out);
    while (fgets(line, sizeof(line), h->out)) {
        char *sp = strrchr(line, ' ');

        if (!strncmp(line, "FD ", 3) && sp && h->n < 16) {
            snprintf(h->names[h->n], 64, "%.*s", (int)(sp - line - 3),
                     line + 3);
            h->fds[h->n++] = atoi(sp + 1);
        } else if (!strncmp(line, "READY ", 6)) {
            assert_int_equal(atoi(line + 6), h->pid);
            h->state_fd = atoi(strchr(line + 6, ' ') + 1);
            return;
        }
    }
    fail_msg("state-holder %s did not start", args);
}

static void holder_cmd(Holder *h, const char *cmd)
{
    char line[256];

    fprintf(h->in, "%s\n", cmd);
    fflush(h->in);
    assert_non_null(fgets(line, sizeof(line), h->out));
    if (strcmp(line, "OK\n")) {
        fail_msg("state-holder: %s: %s", cmd, line);
    }
}

static int holder_fd(const Holder *h, const char *name)
{
    int i;

    for (i = 0; i < h->n; i++) {
        if (!strcmp(h->names[i], name)) {
            return h->fds[i];
        }
    }
    fail_msg("no fd record %s", name);
    return -1;
}

static void holder_stop(Holder *h)
{
    int st;

    fprintf(h->in, "quit\n");
    fclose(h->in);
    fclose(h->out);
    assert_int_equal(waitpid(h->pid, &st, 0), h->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* fdinfo "pos:" of the holder's state fd. */
static long long fd_pos(pid_t pid, int fd)
{
    char path[64], line[128];
    long long pos = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "pos: %lld", &pos);
    }
    fclose(f);
    return pos;
}

static long long state_size(pid_t pid, int fd)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_size;
}

static void test_live_arena(void **state)
{
    char want[512];
    long long size;
    Holder h;
    Run a, b;

    (void)state;
    holder_start(&h, "");
    size = state_size(h.pid, h.state_fd);
    /* Written with write(): the offset is at the end, as QEMU leaves it. */
    assert_int_equal(fd_pos(h.pid, h.state_fd), size);

    CPRDUMP(&a, NULL, "/proc/%d/fd/%d", (int)h.pid, h.state_fd);
    expect_status(&a, 0, "/proc/PID/fd/N");
    expect_in(a.out, "  Producer:             state-holder\n", "proc");
    expect_in(a.out, "fd records: 7\n", "proc");
    snprintf(want, sizeof(want), "Writer pid:           %d\n", (int)h.pid);
    expect_in(a.out, want, "writer pid");
    snprintf(want, sizeof(want), "  [   5]    5 %5d           0 memfd       "
             "    IS  0x007", holder_fd(&h, "ram0"));
    expect_in(a.out, want, "ram0 record");
    expect_in(a.out, "Verification: OK\n", "proc");
    /* Reading did not move the owner's offset. */
    assert_int_equal(fd_pos(h.pid, h.state_fd), size);

    CPRDUMP(&b, NULL, "--pid %d", (int)h.pid);
    expect_status(&b, 0, "--pid");
    assert_string_equal(a.out, b.out);
    snprintf(want, sizeof(want), "pid %d: state in fd %d -> /memfd:"
             "QEMU_CPR_EXEC_STATE (deleted), named by QEMU_CPR_EXEC_STATE="
             "%d in its environment", (int)h.pid, h.state_fd, h.state_fd);
    expect_in(b.err, want, "--pid says what it found");
    assert_int_equal(fd_pos(h.pid, h.state_fd), size);
    run_free(&b);
    CPRDUMP(&b, NULL, "-q --pid %d", (int)h.pid);
    assert_string_equal(b.err, "");
    run_free(&b);

    /* verify and JSON through --pid, and a wrong fd. */
    CPRDUMP(&b, NULL, "verify --pid %d", (int)h.pid);
    expect_status(&b, 0, "verify --pid");
    run_free(&b);
    CPRDUMP(&b, NULL, "--json --pid %d", (int)h.pid);
    expect_status(&b, 0, "--json --pid");
    expect_in(b.out, "\"kind\": \"pid\"", "json pid source");
    run_free(&b);
    CPRDUMP(&b, NULL, "/proc/%d/fd/0", (int)h.pid);
    expect_failure(&b, 1, "not a regular file or memfd", "a pipe");
    run_free(&b);
    CPRDUMP(&b, NULL, "/proc/%d/fd/999", (int)h.pid);
    expect_failure(&b, 1, "has no fd 999", "no such fd");
    run_free(&b);
    run_free(&a);
    holder_stop(&h);

    /* A process that holds no state. */
    run_sh(&a, NULL, "sleep 30 & p=$!; '%s' --pid $p; s=$?; kill $p; "
           "exit $s", cprdump_path());
    expect_failure(&a, 1, "holds no CPR state", "no state");
    run_free(&a);
    CPRDUMP(&a, NULL, "--pid 2147483646");
    expect_failure(&a, 1, "there is no process 2147483646", "no process");
    run_free(&a);
}

static void test_live_legacy(void **state)
{
    char want[512];
    Holder h;
    Run a;
    int i;

    (void)state;
    holder_start(&h, "--legacy");
    CPRDUMP(&a, NULL, "--pid %d", (int)h.pid);
    expect_status(&a, 0, "legacy --pid");
    expect_in(a.out, "QEMU legacy CPR stream:\n", "legacy");
    expect_in(a.out, "Mode:                 cpr-exec\n", "legacy");
    /* Every record carries the number the holder really has. */
    for (i = 0; i < h.n; i++) {
        snprintf(want, sizeof(want), " %5d           0 %s\n", h.fds[i],
                 h.names[i]);
        expect_in(a.out, want, "legacy fd numbers");
    }
    run_free(&a);
    CPRDUMP(&a, NULL, "check-live %d", (int)h.pid);
    expect_status(&a, 0, "legacy check-live");
    expect_in(a.out, "Summary: 7 ok, 0 mismatches, 0 warnings, 0 skipped",
              "legacy check-live");
    run_free(&a);
    holder_cmd(&h, "close ram0");
    CPRDUMP(&a, NULL, "check-live %d", (int)h.pid);
    expect_status(&a, 1, "legacy check-live after close");
    snprintf(want, sizeof(want), "MISMATCH  fd %d ram0 (id 0): not open in "
             "pid %d\n", holder_fd(&h, "ram0"), (int)h.pid);
    expect_in(a.out, want, "legacy closed fd");
    run_free(&a);
    holder_stop(&h);
}

/* Each line is one finding, with a status word, but the first and last. */
static void expect_findings(const char *out, int ok, int mismatches)
{
    const char *line = out, *nl;
    int n_ok = 0, n_bad = 0, lines = 0;
    char want[128];

    while ((nl = strchr(line, '\n')) != NULL) {
        lines++;
        if (!strncmp(line, "OK        ", 10)) {
            n_ok++;
        } else if (!strncmp(line, "MISMATCH  ", 10)) {
            n_bad++;
        } else if (strncmp(line, "pid ", 4) && strncmp(line, "Summary: ", 9)) {
            fail_msg("not a finding: %.*s", (int)(nl - line), line);
        }
        line = nl + 1;
    }
    assert_int_equal(lines, n_ok + n_bad + 2);
    assert_int_equal(n_ok, ok);
    assert_int_equal(n_bad, mismatches);
    snprintf(want, sizeof(want), "Summary: %d ok, %d mismatches, 0 warnings, "
             "0 skipped\n", ok, mismatches);
    expect_in(out, want, "summary");
}

static void test_check_live(void **state)
{
    char want[512];
    Holder h;
    Run r;

    (void)state;
    holder_start(&h, "");
    CPRDUMP(&r, NULL, "check-live %d", (int)h.pid);
    expect_status(&r, 0, "check-live healthy");
    /* The state memfd, 7 fd records, 6 RAM blocks. */
    expect_findings(r.out, 14, 0);
    snprintf(want, sizeof(want), "OK        fd %d ram0 (id 0): /memfd:"
             "memory-backend-memfd (deleted), dev ", holder_fd(&h, "ram0"));
    expect_in(r.out, want, "ram0 ok");
    expect_in(r.out, ", size 134217728, seals 0x7, fdinfo flags ", "ram0");
    expect_in(r.out, "OK        state /proc/", "state sealed");
    run_free(&r);

    holder_cmd(&h, "close pc.rom");
    holder_cmd(&h, "replace pc.bios");
    holder_cmd(&h, "truncate /rom@etc/acpi/tables 4096");
    CPRDUMP(&r, NULL, "check-live %d", (int)h.pid);
    expect_status(&r, 1, "check-live after damage");
    expect_findings(r.out, 9, 5);
    snprintf(want, sizeof(want), "MISMATCH  fd %d pc.rom (id 0): not open in "
             "pid %d\n", holder_fd(&h, "pc.rom"), (int)h.pid);
    expect_in(r.out, want, "closed");
    snprintf(want, sizeof(want), "MISMATCH  ram-block pc.rom: its backing "
             "fd %d (pc.rom) is not open\n", holder_fd(&h, "pc.rom"));
    expect_in(r.out, want, "closed block");
    snprintf(want, sizeof(want), "MISMATCH  fd %d pc.bios (id 0): it is "
             "another file now: recorded dev ", holder_fd(&h, "pc.bios"));
    expect_in(r.out, want, "replaced");
    expect_in(r.out, ", found /memfd:replacement (deleted), dev ", "replaced");
    snprintf(want, sizeof(want), "MISMATCH  fd %d /rom@etc/acpi/tables (id "
             "0): size changed: recorded 2097152 bytes, now 4096\n",
             holder_fd(&h, "/rom@etc/acpi/tables"));
    expect_in(r.out, want, "truncated");
    snprintf(want, sizeof(want), "MISMATCH  ram-block /rom@etc/acpi/tables: "
             "needs bytes [0x0, 0x0+0x200000) of fd %d (/rom@etc/acpi/"
             "tables), which has 4096 bytes\n",
             holder_fd(&h, "/rom@etc/acpi/tables"));
    expect_in(r.out, want, "block does not fit");
    run_free(&r);

    CPRDUMP(&r, NULL, "check-live --json %d", (int)h.pid);
    expect_status(&r, 1, "check-live json");
    expect_in(r.out, "\"mismatches\": 5", "json summary");
    run_free(&r);
    holder_stop(&h);

    CPRDUMP(&r, NULL, "check-live");
    expect_failure(&r, 2, "takes at least one PID", "check-live usage");
    run_free(&r);
    CPRDUMP(&r, NULL, "check-live 2147483646");
    expect_failure(&r, 2, "there is no process", "check-live no process");
    run_free(&r);
}

/* Without ptrace access: the advice of the brief, nothing on stdout. */
static void test_permission(void **state)
{
    Holder h;
    Run r;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    holder_start(&h, "");
    run_sh(&r, NULL, "setpriv --reuid=65534 --regid=65534 --clear-groups "
           "'%s' /proc/%d/fd/%d", cprdump_path(), (int)h.pid, h.state_fd);
    if (r.status == 126 || r.status == 127) {
        run_free(&r);
        holder_stop(&h);
        skip();
    }
    expect_failure(&r, 1, "permission denied — you need ptrace access to",
                   "not our process");
    expect_in(r.err, "same user, or with CAP_SYS_PTRACE", "advice");
    run_free(&r);
    run_sh(&r, NULL, "setpriv --reuid=65534 --regid=65534 --clear-groups "
           "'%s' --pid %d", cprdump_path(), (int)h.pid);
    expect_failure(&r, 1, "CAP_SYS_PTRACE", "--pid not our process");
    run_free(&r);
    holder_stop(&h);
}

/* ---- Core dumps ---------------------------------------------------------- */

static bool have_gcore(void)
{
    return !system("command -v gcore >/dev/null 2>&1");
}

/* A core is capped at 1 GiB (RLIMIT_FSIZE): it must never fill a disk. */
#define CORE_LIMIT_KIB "1048576"

static void gcore(pid_t pid, const char *prefix, char *path, size_t size)
{
    struct stat st;
    Run r;

    run_sh(&r, NULL, "ulimit -f " CORE_LIMIT_KIB "; gcore -o '%s/%s' %d "
           ">/dev/null", tmpdir, prefix, (int)pid);
    expect_status(&r, 0, "gcore");
    run_free(&r);
    snprintf(path, size, "%s/%s.%d", tmpdir, prefix, (int)pid);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < (off_t)64 << 20);
}

static void test_core_gcore(void **state)
{
    char core[4096];
    Holder h;
    Run live, r;

    (void)state;
    if (!have_gcore()) {
        /* scripts/install-deps.sh installs gdb: this should not happen. */
        fail_msg("gcore not found: install gdb");
    }
    /*
     * The arena mapped: found through NT_FILE.  coredump_filter 0x2
     * (shared anonymous memory, which a memfd mapping is) keeps the core
     * small even under ASan, whose shadow memory is terabytes.
     */
    holder_start(&h, "--map");
    holder_cmd(&h, "filter 0x2");
    CPRDUMP(&live, NULL, "/proc/%d/fd/%d", (int)h.pid, h.state_fd);
    expect_status(&live, 0, "live");
    gcore(h.pid, "mapped", core, sizeof(core));
    CPRDUMP(&r, NULL, "'%s'", core);
    expect_status(&r, 0, "core with the arena mapped");
    assert_string_equal(r.out, live.out);
    expect_in(r.err, "ELF core: arena found through NT_FILE at 0x", "how");
    expect_in(r.err, "(in /memfd:QEMU_CPR_EXEC_STATE (deleted))", "where");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify '%s'", core);
    expect_status(&r, 0, "verify core");
    run_free(&r);
    CPRDUMP(&r, NULL, "--json '%s'", core);
    expect_in(r.out, "\"found-by\": \"nt-file\"", "json core");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff '%s' /proc/%d/fd/%d", core, (int)h.pid,
            h.state_fd);
    expect_status(&r, 0, "core vs live");
    run_free(&r);
    /* A core on a pipe is located in memory. */
    run_sh(&r, NULL, "cat '%s' | '%s' -", core, cprdump_path());
    expect_status(&r, 0, "core on stdin");
    assert_string_equal(r.out, live.out);
    run_free(&r);
    CPRDUMP(&r, NULL, "--core-index 1 '%s'", core);
    expect_failure(&r, 1, "no CPR state in this core", "no second state");
    run_free(&r);

    /* Mapped, but left out of the dump: the advice. */
    holder_cmd(&h, "filter 0x0");
    gcore(h.pid, "excluded", core, sizeof(core));
    CPRDUMP(&r, NULL, "'%s'", core);
    expect_failure(&r, 1, "the core lists the state mapping but not its "
                   "pages: the dumper left it out", "excluded mapping");
    expect_in(r.err, "coredump_filter", "excluded mapping advice");
    run_free(&r);

#ifndef CPRS_TEST_SANITIZED
    /*
     * Only a heap copy, no mapping: found by the scan.  The heap is
     * private anonymous memory (filter bit 0); under ASan that would dump
     * the allocator's terabytes, so sanitized builds skip this step (the
     * scan is covered by test-cprdump-core).
     */
    holder_cmd(&h, "unmap");
    holder_cmd(&h, "copy");
    holder_cmd(&h, "filter 0x1");
    gcore(h.pid, "copy", core, sizeof(core));
    CPRDUMP(&r, NULL, "'%s'", core);
    expect_status(&r, 0, "core with a heap copy");
    assert_string_equal(r.out, live.out);
    expect_in(r.err, "arena found by scanning the dumped memory", "scan");
    run_free(&r);
#endif
    run_free(&live);
    holder_stop(&h);

    /* A legacy stream, mapped. */
    holder_start(&h, "--legacy --map");
    holder_cmd(&h, "filter 0x2");
    CPRDUMP(&live, NULL, "--pid %d", (int)h.pid);
    gcore(h.pid, "legacy", core, sizeof(core));
    CPRDUMP(&r, NULL, "'%s'", core);
    expect_status(&r, 0, "core with a legacy stream");
    assert_string_equal(r.out, live.out);
    expect_in(r.err, "QCPR stream found through NT_FILE", "legacy core");
    run_free(&r);
    run_free(&live);
    holder_stop(&h);

    /* A process without state. */
    run_sh(&r, NULL, "ulimit -f " CORE_LIMIT_KIB "; sleep 30 & p=$!; gcore "
           "-o '%s/nostate' $p >/dev/null 2>&1; s=$?; kill $p; exit $s",
           tmpdir);
    expect_status(&r, 0, "gcore sleep");
    run_free(&r);
    run_sh(&r, NULL, "f=$(ls '%s'/nostate.*); '%s' \"$f\"", tmpdir,
           cprdump_path());
    expect_failure(&r, 1, "no CPR state in this core", "core without state");
    run_free(&r);
}

/* A kernel core, when the host writes cores as files in the cwd. */
static void test_core_kernel(void **state)
{
    char pattern[256] = "", core[4096];
    struct rlimit rl = { 64 << 20, 64 << 20 };
    struct rlimit fsize = { 1u << 30, 1u << 30 };
    struct stat st;
    FILE *f;
    Holder h;
    Run r;
    int status;

    (void)state;
    f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (f) {
        if (!fgets(pattern, sizeof(pattern), f)) {
            pattern[0] = '\0';
        }
        fclose(f);
    }
    if (strcmp(pattern, "core\n") || setrlimit(RLIMIT_CORE, &rl) ||
        setrlimit(RLIMIT_FSIZE, &fsize) || chdir(tmpdir)) {
        skip();
    }
    holder_start(&h, "--map");
    holder_cmd(&h, "filter 0x2");
    CPRDUMP(&r, NULL, "/proc/%d/fd/%d", (int)h.pid, h.state_fd);
    kill(h.pid, SIGABRT);
    fclose(h.in);
    fclose(h.out);
    assert_int_equal(waitpid(h.pid, &status, 0), h.pid);
    /* core_uses_pid may append the pid. */
    snprintf(core, sizeof(core), "%s/core", tmpdir);
    if (stat(core, &st)) {
        snprintf(core, sizeof(core), "%s/core.%d", tmpdir, (int)h.pid);
    }
    if (!WIFSIGNALED(status) || !WCOREDUMP(status) || stat(core, &st)) {
        run_free(&r);
        skip();
    }
    {
        Run k;

        CPRDUMP(&k, NULL, "'%s'", core);
        expect_status(&k, 0, "kernel core");
        assert_string_equal(k.out, r.out);
        expect_in(k.err, "through NT_FILE", "kernel core");
        run_free(&k);
    }
    run_free(&r);
}

/* ---- Another process's data (issue 11, class 6) ------------------------- */

/* A command whose answer is more than "OK". */
static void holder_ask(Holder *h, const char *cmd, char *line, size_t size)
{
    fprintf(h->in, "%s\n", cmd);
    fflush(h->in);
    assert_non_null(fgets(line, (int)size, h->out));
}

/*
 * A pipe and a socket with bytes queued for the holder: whatever path
 * leads to them, cprdump refuses them without reading a byte or waiting,
 * and the holder still has its 37 + 37 bytes.  (Before: only the literal
 * /proc/PID/fd/N form was refused; the others read the holder's bytes,
 * then blocked forever.)
 */
static void test_not_ours(void **state)
{
    char link[4096], line[128], path[4096];
    int pid;
    size_t i;
    Holder h;
    Run r;

    (void)state;
    holder_start(&h, "");
    holder_cmd(&h, "pipe");
    snprintf(link, sizeof(link), "%.200s/holder-pipe", tmpdir);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/fd/100", (int)h.pid,
             (int)h.pid);
    assert_int_equal(symlink(path, link), 0);
    pid = (int)h.pid;
    for (i = 0; i < 7; i++) {
        switch (i) {
        case 0:
            snprintf(path, sizeof(path), "/proc/%d/fd/100", pid);
            break;
        case 1:
            snprintf(path, sizeof(path), "/proc/%d/task/%d/fd/100", pid, pid);
            break;
        case 2:
            snprintf(path, sizeof(path), "/proc/%d/./fd/100", pid);
            break;
        case 3:
            snprintf(path, sizeof(path), "/proc//%d/fd/100", pid);
            break;
        case 4:
            snprintf(path, sizeof(path), "%s", link);
            break;
        case 5:
            snprintf(path, sizeof(path), "/proc/%d/fd/101", pid);
            break;
        default:
            snprintf(path, sizeof(path), "/proc/%d/task/%d/fd/101", pid, pid);
            break;
        }
        run_sh(&r, NULL, "timeout 20 '%s' show '%s'", cprdump_path(), path);
        /* By the case, not by the path: the pid may hold "101". */
        expect_failure(&r, 1, i >= 5 ? "socket" :
                       "not a regular file or memfd",
                       path);
        run_free(&r);
    }
    holder_ask(&h, "pending", line, sizeof(line));
    assert_string_equal(line, "OK 37 37\n");
    /* The state memfd itself reads through any of those forms. */
    snprintf(path, sizeof(path), "/proc/%d/task/%d/fd/%d", (int)h.pid,
             (int)h.pid, h.state_fd);
    CPRDUMP(&r, NULL, "verify '%s'", path);
    expect_status(&r, 0, "state through task/TID/fd");
    run_free(&r);
    holder_stop(&h);
}

/*
 * The first field of /proc/@pid/syscall once @pid sleeps in a system
 * call: its number (the process is not running, so it is stable).
 */
static long blocked_syscall(pid_t pid)
{
    char path[64], line[256];
    long nr;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    for (;;) {
        f = fopen(path, "re");
        assert_non_null(f);
        if (!fgets(line, sizeof(line), f)) {
            line[0] = '\0';
        }
        fclose(f);
        if (sscanf(line, "%ld", &nr) == 1 && nr >= 0) {
            return nr;
        }
        usleep(1000);   /* "running": not yet asleep */
    }
}

/*
 * Nothing another process holds is disturbed, whatever the path (issue
 * 11, class 6): a terminal's queued input is not read (it was: 30 bytes
 * taken from the holder), a writer blocked opening a FIFO is not released
 * (it was: cprdump's non-blocking open let it go, then its write met no
 * reader).  cprdump decides by an O_PATH open and fstat() before it opens
 * anything.
 */
static void test_not_ours_devices(void **state)
{
    static const char typed[] = "typed by the user\n";
    char path[4096], fifo[4096], got[64];
    int master, slave, ctl[2], efd;
    long nr;
    ssize_t n;
    pid_t pid;
    Run r;

    (void)state;
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC |
                 O_NONBLOCK);
    assert_true(slave >= 0);
    assert_int_equal(write(master, typed, strlen(typed)),
                     (ssize_t)strlen(typed));
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), slave);
    CPRDUMP(&r, NULL, "show '%s' < /dev/null", path);
    expect_failure(&r, 1, "is a character device", "terminal");
    run_free(&r);
    CPRDUMP(&r, NULL, "show /dev/ptmx < /dev/null");
    expect_failure(&r, 1, "is a character device", "ptmx");
    run_free(&r);
    /* An eventfd: not "a socket" (ENXIO), but what it is. */
    efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), efd);
    CPRDUMP(&r, NULL, "show '%s'", path);
    expect_failure(&r, 1, "is a special file (an eventfd", "eventfd");
    run_free(&r);
    close(efd);
    CPRDUMP(&r, NULL, "--core-index 4000000000 /dev/null");
    expect_failure(&r, 1, "a number from 0 to 2147483647", "core-index");
    run_free(&r);
    n = -1;
    for (int i = 0; i < 1000 && n < 0; i++) {
        n = read(slave, got, sizeof(got));
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            usleep(1000);
        }
    }
    assert_int_equal(n, (ssize_t)strlen(typed));
    assert_memory_equal(got, typed, strlen(typed));
    close(slave);
    close(master);

    /* A writer blocked in open(O_WRONLY) on a FIFO stays blocked. */
    snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        int fd = open(fifo, O_WRONLY);
        char c;

        /* Released: wait in read() until the parent has looked. */
        _exit(fd < 0 || read(ctl[0], &c, 1) != 1 ? 2 : 0);
    }
    close(ctl[0]);
    assert_int_equal(blocked_syscall(pid), SYS_openat);
    CPRDUMP(&r, NULL, "show '%s'", fifo);
    expect_failure(&r, 1, "is a pipe", "FIFO");
    run_free(&r);
    nr = blocked_syscall(pid);
    /* Let it go: open the FIFO for reading, then tell it to finish. */
    slave = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(slave >= 0);
    assert_int_equal(write(ctl[1], "x", 1), 1);
    close(ctl[1]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    close(slave);
    unlink(fifo);
    if (nr != SYS_openat) {
        fail_msg("cprdump released the FIFO's writer (it is in syscall "
                 "%ld, not open)", nr);
    }
}

/*
 * In a child about to exec cprdump for an RSS measurement: an ASan build
 * keeps freed memory in quarantine (up to 256 MiB), which would count as
 * held; what is measured is what cprdump holds at once.
 */
static void rss_env(void)
{
    const char *a = getenv("ASAN_OPTIONS");
    char buf[1024];

    snprintf(buf, sizeof(buf), "%.900s%squarantine_size_mb=0", a ? a : "",
             a && *a ? ":" : "");
    setenv("ASAN_OPTIONS", buf, 1);
}

/*
 * Run "cprdump target @file" with its output to /dev/null; returns its
 * peak RSS in KiB (wait4), *@status its exit status.
 */
static long target_rss(const char *file, int *status)
{
    struct rusage ru;
    int st;
    pid_t pid;

    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        dup2(null, 2);
        rss_env();
        execl(cprdump_path(), "cprdump", "target", file, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(wait4(pid, &st, 0, &ru), pid);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return ru.ru_maxrss;
}

/* An x86-64 ET_EXEC header at @b: @phnum headers at 64, sections. */
static void exec_header(uint8_t *b, uint16_t phnum, uint64_t shoff,
                        uint16_t shnum)
{
    memcpy(b, ELFMAG, SELFMAG);
    b[EI_CLASS] = ELFCLASS64;
    b[EI_DATA] = ELFDATA2LSB;
    b[EI_VERSION] = EV_CURRENT;
    b[16] = ET_EXEC;
    b[18] = EM_X86_64;
    b[20] = EV_CURRENT;
    b[32] = 64;                         /* e_phoff */
    memcpy(b + 40, &shoff, 8);          /* e_shoff (little-endian host) */
    b[52] = 64;                         /* e_ehsize */
    b[54] = 56;                         /* e_phentsize */
    memcpy(b + 56, &phnum, 2);
    b[58] = 64;                         /* e_shentsize */
    memcpy(b + 60, &shnum, 2);
}

/*
 * libelf never sees a count it would size its tables by, unchecked
 * (issue 11; cprdump findings G, H): a sparse file whose first section
 * header claims 2^21 sections (e_shnum 0) made libelf allocate an
 * Elf_Scn for each, 428 MB for 128 MiB on disk of nothing; 1024 PT_NOTE
 * headers of 1 MiB each made it read and keep 1 GiB.  Now the section
 * count is checked first (at most 65536), and at most 64 MiB of notes
 * are read.  Peak RSS of the cprdump process, from wait4().
 */
static void test_target_libelf(void **state)
{
    uint8_t *b;
    uint64_t v, size;
    char path[4096];
    long rss;
    int fd, st;
    size_t i;

    (void)state;
    if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
        skip();
    }
    /* Sections: the count in shdr[0].sh_size, the table all zeros. */
    snprintf(path, sizeof(path), "%s/shn.elf", tmpdir);
    size = UINT64_C(128) << 20;
    b = calloc(1, 4096);
    assert_non_null(b);
    exec_header(b, 0, 4096, 0);
    v = size / 64 - 64;
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, 4096), 4096);
    /* shdr[0] at 4096: sh_size (offset 32) is the section count. */
    assert_int_equal(pwrite(fd, &v, 8, 4096 + 32), 8);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
    free(b);
    rss = target_rss(path, &st);
    printf("# target, 2^21 sections claimed: exit %d, peak RSS %ld KiB\n",
           st, rss);
    if (rss > 64 * 1024) {
        fail_msg("cprdump target: peak RSS %ld KiB on a file claiming "
                 "%" PRIu64 " sections", rss, v);
    }
    unlink(path);

    /* Notes: 1024 PT_NOTE headers of 1 MiB at 4 KiB steps. */
    snprintf(path, sizeof(path), "%s/notes.elf", tmpdir);
    size = (UINT64_C(1) << 20) + 1024 * 4096 + 65536;
    b = calloc(1, size);
    assert_non_null(b);
    exec_header(b, 1024, 0, 0);
    for (i = 0; i < 1024; i++) {
        uint8_t *p = b + 64 + i * 56;
        uint64_t off = 65536 + i * 4096, len = UINT64_C(1) << 20;

        p[0] = PT_NOTE;
        memcpy(p + 8, &off, 8);
        memcpy(p + 32, &len, 8);
        p[48] = 4;
    }
    th_write_file(path, b, size);
    assert_int_equal(chmod(path, 0755), 0);
    free(b);
    rss = target_rss(path, &st);
    printf("# target, 1024 notes of 1 MiB: exit %d, peak RSS %ld KiB\n",
           st, rss);
    if (rss > 160 * 1024) {
        fail_msg("cprdump target: peak RSS %ld KiB for 1024 note headers",
                 rss);
    }
    unlink(path);
}

/* Peak RSS (KiB, from wait4) of cprdump run as "sh -c @cmd". */
static long sh_rss(const char *cmd, int *status)
{
    struct rusage ru;
    char line[8192];
    int st;
    pid_t pid;

    snprintf(line, sizeof(line), "exec '%.3000s' %.4500s >/dev/null 2>&1",
             cprdump_path(), cmd);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        rss_env();
        execl("/bin/sh", "sh", "-c", line, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(wait4(pid, &st, 0, &ru), pid);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return ru.ru_maxrss;
}

/*
 * show --hex of an arena whose 64 directory entries are INDEX sections
 * each over the whole 1 MiB arena (cprdump finding J): each was walked
 * slot by slot, 64 x 131072 annotations, 1.4 GB and 20 s.  A section
 * over bytes another already claimed is now one annotation; peak RSS of
 * the cprdump process from wait4().
 */
static void test_hex_overlap(void **state)
{
    const size_t size = 1u << 20, nsec = 64;
    CprsWireHeader *hd;
    CprsWireSection *e;
    char path[4096];
    uint8_t *b;
    long rss;
    size_t i;
    int st;

    (void)state;
    b = calloc(1, size);
    assert_non_null(b);
    for (i = 192 + 48 * nsec; i + 8 <= size; i += 8) {
        cprs_le32_set((CprsLe32 *)(b + i), (uint32_t)(1 + i % 97));
        cprs_le32_set((CprsLe32 *)(b + i + 4), 0xdeadbeef);
    }
    memcpy(b, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    hd = (CprsWireHeader *)b;
    cprs_le16_set(&hd->version_major, 1);
    cprs_le32_set(&hd->header_size, 192);
    cprs_le64_set(&hd->arena_size, size);
    cprs_le64_set(&hd->dir_offset, 192);
    cprs_le32_set(&hd->dir_count, (uint32_t)nsec);
    cprs_le32_set(&hd->dir_entry_size, 48);
    for (i = 0; i < nsec; i++) {
        e = (CprsWireSection *)(b + 192 + 48 * i);
        cprs_le32_set(&e->type, CPRS_SECTION_INDEX);
        cprs_le64_set(&e->offset, 0);
        cprs_le64_set(&e->stored_size, size);
        cprs_le32_set(&e->record_count, UINT32_MAX);
        cprs_le32_set(&e->record_size, 8);
    }
    th_fix_crcs(b, size);
    write_tmp("hidx.cprs", b, size, path, sizeof(path));
    free(b);
    {
        char cmd[4200];

        snprintf(cmd, sizeof(cmd), "show --hex '%s'", path);
        rss = sh_rss(cmd, &st);
    }
    printf("# show --hex, 64 overlapping INDEX sections: exit %d, peak RSS "
           "%ld KiB\n", st, rss);
    assert_true(st <= 2);       /* verdicts, never a crash */
    if (rss > 200 * 1024) {
        fail_msg("show --hex: peak RSS %ld KiB for a 1 MiB arena", rss);
    }
    unlink(path);
}

/*
 * An arena header with a valid checksum claiming 512 MiB, on a sparse
 * file (cprdump finding K: "list" and /proc sources read all of it, for
 * any process holding a memfd of the state's name): the body is read
 * only once the directory checks out and its sections reach to within
 * 1 MiB of arena_size.  An empty directory: the unclaimed tail is
 * refused; a directory whose checksum fails: that is the fault reported.
 */
static void test_arena_directory_first(void **state)
{
    const uint64_t size = UINT64_C(512) << 20;
    CprsWireHeader *hd;
    char path[4096], cmd[4200];
    uint8_t b[4096];
    long rss;
    int k, fd, st;
    Run r;

    (void)state;
    snprintf(path, sizeof(path), "%s/claims.cprs", tmpdir);
    for (k = 0; k < 2; k++) {
        memset(b, 0, sizeof(b));
        memcpy(b, CPRS_MAGIC, CPRS_MAGIC_SIZE);
        hd = (CprsWireHeader *)b;
        cprs_le16_set(&hd->version_major, 1);
        cprs_le32_set(&hd->header_size, 192);
        cprs_le64_set(&hd->arena_size, size);
        cprs_le64_set(&hd->dir_offset, 192);
        cprs_le32_set(&hd->dir_count, (uint32_t)k);
        cprs_le32_set(&hd->dir_entry_size, 48);
        cprs_le32_set(&hd->mode, CPRS_MODE_EXEC);
        th_fix_crcs(b, sizeof(b));
        if (k) {
            b[192] ^= 1;        /* the entry, after its checksum */
        }
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b, sizeof(b)), (ssize_t)sizeof(b));
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        close(fd);
        snprintf(cmd, sizeof(cmd), "verify '%s'", path);
        rss = sh_rss(cmd, &st);
        printf("# arena of 512 MiB claimed, %d entries: exit %d, peak RSS "
               "%ld KiB\n", k, st, rss);
        if (rss > 64 * 1024) {
            fail_msg("verify read the body: peak RSS %ld KiB", rss);
        }
        CPRDUMP(&r, NULL, "verify '%s'", path);
        expect_status(&r, 2, "claims");         /* invalid */
        expect_in(r.out, k ? "offset 0x50: directory CRC32C mismatch "
                  "[spec 3.8]" : "more than 1 MiB past every section",
                  "claims");
        run_free(&r);
    }
    unlink(path);
}

/* ---- Bounded reading (issue 11, class 5) -------------------------------- */

/*
 * cprdump reads @head then endless zeros on its standard input; we write
 * until it is gone (EPIPE) or @cap bytes went in.  Returns what it took.
 */
static uint64_t feed(const void *head, size_t len, uint64_t cap, int *status)
{
    static uint8_t zeros[65536];
    uint64_t fed = 0;
    int p[2], st;
    ssize_t n;
    pid_t pid;

    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        int null = open("/dev/null", O_WRONLY);

        dup2(p[0], 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(cprdump_path(), "cprdump", "-q", "show", "-", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    n = write(p[1], head, len);
    fed += n > 0 ? (uint64_t)n : 0;
    while (n > 0 && fed < cap) {
        n = write(p[1], zeros, sizeof(zeros));
        fed += n > 0 ? (uint64_t)n : 0;
    }
    close(p[1]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return fed;
}

/* A valid arena of @size bytes (a payload fills it), reproducibly. */
static uint8_t *sized_arena(size_t size, size_t *ret_len)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "pad");
    CprsWriter *w;
    void *buf, *pad = calloc(1, size);

    assert_non_null(pad);
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    assert_int_equal(cprs_writer_add_devstate(w, &di, pad, size, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_len), 0);
    cprs_writer_free(w);
    free(pad);
    return buf;
}

/* Slack: the pipe's buffer and one block of ours in flight. */
#define FEED_SLACK (256u << 10)

static void test_bounded_pipe(void **state)
{
    static const uint8_t legacy[8] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };
    uint64_t fed, cap = 64u << 20;
    size_t len, scale;
    uint8_t *a;
    int st;

    (void)state;
    /* The magic, then zeros for ever: cprdump stops by itself. */
    fed = feed(CPRS_MAGIC, CPRS_MAGIC_SIZE, cap, &st);
    assert_true(fed < FEED_SLACK);
    assert_int_equal(st, 2);
    fed = feed(legacy, sizeof(legacy), cap, &st);
    assert_true(fed < FEED_SLACK);
    /* An ELF header with no program header: the core ends there. */
    fed = feed("\177ELF\2\1\1", 7, cap, &st);
    assert_true(fed < FEED_SLACK);
    /* A valid arena: exactly its arena_size is taken, at 1x and 8x. */
    for (scale = 1; scale <= 8; scale *= 8) {
        a = sized_arena(scale << 18, &len);
        fed = feed(a, len, cap, &st);
        free(a);
        if (fed > len + FEED_SLACK) {
            fail_msg("an arena of %zu bytes on a pipe: cprdump took %"
                     PRIu64, len, fed);
        }
        assert_int_equal(st, 0);
    }
}

/* Bytes read by this process and by the children it has reaped. */
static uint64_t rchar(void)
{
    unsigned long long v = 0;
    char line[128];
    FILE *f = fopen("/proc/self/io", "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "rchar: %llu", &v);
    }
    fclose(f);
    return v;
}

/*
 * A small arena followed by a sparse tail of 64 MiB (1x) and 512 MiB
 * (8x): cprdump reads the arena, not the tail (it read everything).
 */
static void test_bounded_tail(void **state)
{
    char path[4096];
    uint64_t before, got[2];
    size_t len, i;
    uint8_t *a;
    int fd, st;
    pid_t pid;

    (void)state;
    a = sized_arena(1024, &len);
    snprintf(path, sizeof(path), "%s/tail.cprs", tmpdir);
    for (i = 0; i < 2; i++) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, a, len), (ssize_t)len);
        assert_int_equal(ftruncate(fd, (off_t)(i ? 512 : 64) << 20), 0);
        close(fd);
        before = rchar();
        pid = fork();
        assert_true(pid >= 0);
        if (!pid) {
            int null = open("/dev/null", O_WRONLY);

            dup2(null, 1);
            dup2(null, 2);
            execl(cprdump_path(), "cprdump", "verify", path, (char *)NULL);
            _exit(127);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        got[i] = rchar() - before;
        printf("# tail %dx: cprdump read %" PRIu64 " bytes\n", i ? 8 : 1,
               got[i]);
    }
    free(a);
    /* Loading the program and its libraries reads a few MiB at most. */
    if (got[0] > (8u << 20) || got[1] > got[0] + (1u << 20)) {
        fail_msg("cprdump read %" PRIu64 " then %" PRIu64 " bytes for the "
                 "same arena", got[0], got[1]);
    }
}

/* ---- Terminal injection (issue 11, class 8) ----------------------------- */

/* No control byte but the line feed, and no forged verdict. */
static void expect_clean(const Run *r, const char *what)
{
    const char *p;
    int n;

    for (p = r->out; p < r->out + r->out_len; p++) {
        if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f) {
            fail_msg("%s: control byte 0x%02x in the output:\n%s", what,
                     (unsigned char)*p, r->out);
        }
    }
    for (p = r->err; *p; p++) {
        if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f) {
            fail_msg("%s: control byte 0x%02x on stderr:\n%s", what,
                     (unsigned char)*p, r->err);
        }
    }
    /* One verdict at most, and from cprdump: a forged one is a second. */
    for (p = r->out, n = 0; (p = strstr(p, "Verification: ")) != NULL;
         p++) {
        if (p == r->out || p[-1] == '\n') {
            n++;
        }
    }
    if (n > 1) {
        fail_msg("%s: a forged verdict line:\n%s", what, r->out);
    }
}

/*
 * A QCPR stream whose names carry an OSC title, BEL, a screen clear, CR
 * and LF and a forged "Verification: OK" line (QEMU would accept it: it
 * reads any byte but NUL in a name).
 */
static void evil_stream(char *path, size_t size)
{
    static const char *const names[] = {
        "\033]0;owned\007\033[2J",
        "ram0\r\n\nVerification: OK\n",
    };
    uint8_t buf[512], *p = buf;
    size_t i, n;

    memcpy(p, "QCPR\0\0\0\1", 8);
    p += 8;
    for (i = 0; i < 2; i++) {
        n = strlen(names[i]) + 1;
        *p++ = 1;
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = (uint8_t)n;
        memcpy(p, names[i], n);
        p += n;
        memcpy(p, "\0\0\0\0\0\0\0\x0b", 8);     /* id 0, fd 11 */
        p[7] = (uint8_t)(11 + i);
        p += 8;
    }
    *p++ = 0;
    write_tmp("evil.qcpr", buf, (size_t)(p - buf), path, size);
}

/*
 * An ELF file whose one PT_NOTE is a libcprstate capability note with a
 * producer of escape sequences, CR and a forged verdict (what the library
 * refuses, cprdump's libelf reading still prints); and a script whose
 * interpreter line does the same.
 */
static void evil_targets(char *elf, char *script, size_t size)
{
    static const char producer[24] = "\r\x1b[2KVerdict: load\x1b]0;x";
    uint8_t b[0x200] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
    uint8_t *ph = b + 64, *n = b + 0x100;
    static const char sh[] = "#!/bin/\x1b[2J\rsh\n";

    /* ELF64 header: ET_DYN, x86-64, one program header at 64. */
    b[16] = 3;
    b[18] = 62;
    b[20] = 1;
    b[32] = 64;                         /* e_phoff */
    b[52] = 64;                         /* e_ehsize */
    b[54] = 56;                         /* e_phentsize */
    b[56] = 1;                          /* e_phnum */
    /* PT_NOTE, readable, at 0x100, 88 bytes, 4-aligned. */
    ph[0] = 4;
    ph[4] = 4;
    ph[9] = 1;                          /* p_offset 0x100 */
    ph[32] = 88;                        /* p_filesz */
    ph[40] = 88;                        /* p_memsz */
    ph[48] = 4;
    /* The note: name "libcprstate", 64 bytes of description, type 1. */
    n[0] = 12;
    n[4] = 64;
    n[8] = 1;
    memcpy(n + 12, "libcprstate", 12);
    n[24] = 1;                          /* note version 1.0 */
    n[28] = 64;                         /* descriptor size */
    n[33] = 2;                          /* library version 0x200 */
    n[36] = 1;                          /* arena 1.0 */
    n[48] = 3;                          /* modes */
    n[52] = 0xe;                        /* legacy forms */
    n[56] = 3;                          /* flags */
    memcpy(n + 64, producer, sizeof(producer));
    write_tmp("evil-note.elf", b, sizeof(b), elf, size);
    assert_int_equal(chmod(elf, 0755), 0);
    write_tmp("evil-interp.sh", sh, sizeof(sh) - 1, script, size);
    assert_int_equal(chmod(script, 0755), 0);
}

static void test_escapes(void **state)
{
    char evil[4096], arena[4096], want[512], elf[4096], script[4096];
    Holder h;
    Run r;

    (void)state;
    evil_stream(evil, sizeof(evil));
    CPRDUMP(&r, NULL, "show '%s'", evil);
    expect_status(&r, 2, "evil stream");
    expect_clean(&r, "show");
    expect_in(r.out, "\\x1b]0;owned\\x07\\x1b[2J\n", "escaped as \\xNN");
    expect_in(r.out, " ram0\\x0d\\x0a\\x0aVerification: OK\\x0a\n",
              "CR and LF escaped");
    run_free(&r);
    CPRDUMP(&r, NULL, "show --lenient '%s'", evil);
    expect_status(&r, 0, "evil stream, lenient");
    expect_clean(&r, "show --lenient");
    run_free(&r);
    small_arena("plain.cprs", 0x8000000, false, arena, sizeof(arena));
    CPRDUMP(&r, NULL, "diff '%s' '%s'", arena, evil);
    expect_status(&r, 1, "diff with evil");
    expect_clean(&r, "diff");
    run_free(&r);
    CPRDUMP(&r, NULL, "--hex '%s'", evil);
    expect_clean(&r, "hex");
    run_free(&r);
    /* A target's note and #! line are the target's words too. */
    evil_targets(elf, script, sizeof(elf));
    CPRDUMP(&r, NULL, "target '%s'", elf);
    expect_clean(&r, "target, evil note");
    expect_in(r.out, "\\x0d\\x1b[2KVerdict", "producer escaped");
    run_free(&r);
    CPRDUMP(&r, NULL, "target '%s'", script);
    expect_clean(&r, "target, evil #! line");
    expect_in(r.out, "(#!/bin/?[2J?sh)", "interpreter made printable");
    run_free(&r);
    /* A link name: check-live and --pid print what /proc says. */
    holder_start(&h, "");
    holder_cmd(&h, "evil ram0");
    CPRDUMP(&r, NULL, "check-live %d", (int)h.pid);
    expect_status(&r, 1, "check-live with an evil link");
    expect_clean(&r, "check-live");
    snprintf(want, sizeof(want), "found /memfd:\\x1b]0;owned\\x07\\x1b[2J"
             "\\x0d\\x0aOK        fd 3 (deleted)");
    expect_in(r.out, want, "link escaped");
    run_free(&r);
    holder_stop(&h);
}

/*
 * A dual stream (spec/fail-safe.rst F4) as the library saves it, with
 * enough fd records that its arena part is far larger than what cprdump
 * reads past a QCPR stream to show its tail: from a file and from a
 * pipe, it is read as far as its layout says and checked whole.
 */
static void test_dual_large(void **state)
{
    CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts, .flags = CPRS_SAVE_F_DUAL);
    char name[32], path[4096];
    struct stat st;
    CprsState *s;
    uint8_t *buf;
    int i, fd;
    Run r;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    for (i = 0; i < 4000; i++) {
        snprintf(name, sizeof(name), "fd-%06d", i);
        assert_int_equal(cprs_state_save_fd(s, name, i, 0), 0);
    }
    assert_int_equal(cprs_state_save_exec(s, &so, NULL, &fd), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_size > 4 * 65536);
    buf = malloc((size_t)st.st_size);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    write_tmp("dual.bin", buf, (size_t)st.st_size, path, sizeof(path));
    cprs_exec_unpersist(fd);
    cprs_state_free(s);
    free(buf);

    CPRDUMP(&r, NULL, "verify '%s'", path);
    expect_status(&r, 0, "dual stream from a file");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify - < '%s'", path);
    expect_status(&r, 0, "dual stream from a pipe");
    run_free(&r);
    CPRDUMP(&r, NULL, "show '%s'", path);
    expect_status(&r, 0, "dual stream, show");
    expect_in(r.out, "Dual stream (spec/fail-safe.rst F4)", "shown as one");
    run_free(&r);
}

/*
 * The report is spooled, not held whole (cprdump finding M): "show
 * --json" of 1M records held its 391 MB of output in a memory stream,
 * 727 MB at its peak, and "show --hex" 1.3 GB.  Now at most 8 MiB of it
 * is held in memory (CPRDUMP_SPOOL_MEMORY), the rest in an unlinked file
 * in $TMPDIR.  Shown by where it can go: with no usable TMPDIR a small
 * report is written, a large one refused with the reason and nothing on
 * stdout; with one, the large report is whole.  Peak RSS (wait4) below
 * the output's size where no sanitizer inflates it.  And --hex does
 * not hold all its annotations to the end (below).
 */
static void test_report_spool(void **state)
{
    const uint32_t n = 160000;
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts);
    char path[4096], small[4096], name[32], cmd[9000];
    CprsFdInfo fi;
    CprsWriter *w;
    size_t size, out_len;
    void *buf;
    long rss, rss_show;
    uint32_t i;
    int st;
    Run r;

    (void)state;
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "vfio-%06u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .fd = (int32_t)(i + 3),
                       .kind = CPRS_FD_KIND_EVENTFD);
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    cprs_writer_free(w);
    write_tmp("spool.cprs", buf, size, path, sizeof(path));
    free(buf);
    small_arena("spool-small.cprs", 1 << 20, false, small, sizeof(small));

    /* No temporary directory: a small report still comes out whole. */
    run_sh(&r, NULL, "TMPDIR='%s/nowhere' '%s' show --json '%s'", tmpdir,
           cprdump_path(), small);
    expect_status(&r, 0, "small report, no TMPDIR");
    expect_in(r.out, "\"schema-version\"", "small report, no TMPDIR");
    run_free(&r);
    /* A large one is refused: it would not fit in 8 MiB of memory. */
    run_sh(&r, NULL, "TMPDIR='%s/nowhere' '%s' show --json '%s'", tmpdir,
           cprdump_path(), path);
    expect_failure(&r, 1, "no temporary file could hold it",
                   "large report, no TMPDIR");
    run_free(&r);
    /* With a temporary directory it is whole. */
    run_sh(&r, NULL, "TMPDIR='%s' '%s' show --json '%s'", tmpdir,
           cprdump_path(), path);
    expect_status(&r, 0, "large report");
    assert_true(r.out_len > 2 * (8u << 20));
    expect_in(r.out, "\"vfio-159999\"", "large report, last record");
    assert_true(r.out[r.out_len - 1] == '\n' && r.out[r.out_len - 2] == '}');
    out_len = r.out_len;
    /* Measured with no output held here: a fork counts it in the child. */
    run_free(&r);
    snprintf(cmd, sizeof(cmd), "show --json '%s'", path);
    rss = sh_rss(cmd, &st);
    printf("# show --json of %u records: %zu bytes out, peak RSS %ld KiB\n",
           n, out_len, rss);
    assert_int_equal(st, 0);
#ifndef CPRS_TEST_SANITIZED
    if ((size_t)rss * 1024 > out_len / 2) {
        fail_msg("show --json: peak RSS %ld KiB for %zu bytes of output",
                 rss, out_len);
    }
#endif
    /*
     * --hex prints its annotations as soon as their place is known (the
     * sections are in order here): 366 MB at its peak for this arena when
     * it held them all, 58 MB while the string table's waited for the
     * directory walk, now what "show" holds and about 8 MB more.
     */
    snprintf(cmd, sizeof(cmd), "show '%s'", path);
    rss_show = sh_rss(cmd, &st);
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof(cmd), "show --hex '%s'", path);
    rss = sh_rss(cmd, &st);
    assert_int_equal(st, 0);
    printf("# show --hex: peak RSS %ld KiB (show: %ld KiB)\n", rss, rss_show);
#ifndef CPRS_TEST_SANITIZED
    if (rss > rss_show + 24 * 1024) {
        fail_msg("show --hex: peak RSS %ld KiB, show %ld KiB", rss, rss_show);
    }
#endif
}

/* ---- Hosts with many QEMUs (issue 13) ----------------------------------- */

/* How many times @needle occurs in @hay. */
static int count_in(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

/*
 * Two holders, as two QEMUs waiting for migrate-incoming: every way to
 * name them at once, and files several at a time.
 */
static void test_multi(void **state)
{
    char want[256], a[4096], bad[4096];
    Holder h1, h2;
    uint8_t *x;
    size_t len;
    Run r;

    (void)state;
    holder_start(&h1, "");
    holder_start(&h2, "--legacy");
    /* $(pidof ...) unquoted: --pid P1 P2; quoted: --pid "P1 P2". */
    CPRDUMP(&r, NULL, "--pid %d %d", (int)h1.pid, (int)h2.pid);
    expect_status(&r, 0, "--pid P1 P2");
    snprintf(want, sizeof(want), "==> pid %d <==\nCPR State Arena:\n",
             (int)h1.pid);
    expect_in(r.out, want, "first heading");
    snprintf(want, sizeof(want), "\n\n==> pid %d <==\nQEMU legacy CPR "
             "stream:\n", (int)h2.pid);
    expect_in(r.out, want, "second heading");
    assert_int_equal(count_in(r.out, "\nVerification: OK\n"), 2);
    run_free(&r);
    CPRDUMP(&r, NULL, "verify --pid '%d %d'", (int)h1.pid, (int)h2.pid);
    expect_status(&r, 0, "--pid 'P1 P2'");
    snprintf(want, sizeof(want), "pid %d: valid\npid %d: valid\n",
             (int)h1.pid, (int)h2.pid);
    assert_string_equal(r.out, want);
    run_free(&r);
    CPRDUMP(&r, NULL, "verify -q --pid %d,%d", (int)h1.pid, (int)h2.pid);
    assert_string_equal(r.out, want);
    run_free(&r);
    CPRDUMP(&r, NULL, "verify -q --pid %d --pid %d", (int)h1.pid,
            (int)h2.pid);
    assert_string_equal(r.out, want);
    run_free(&r);
    CPRDUMP(&r, NULL, "check-live %d %d", (int)h1.pid, (int)h2.pid);
    expect_status(&r, 0, "check-live P1 P2");
    assert_int_equal(count_in(r.out, "Summary: "), 2);
    run_free(&r);
    CPRDUMP(&r, NULL, "diff --pid %d %d", (int)h1.pid, (int)h2.pid);
    expect_status(&r, 1, "diff --pid A B");
    expect_in(r.out, "  ~ format: arena -> legacy\n", "diff --pid");
    run_free(&r);
    holder_cmd(&h2, "close ram0");
    CPRDUMP(&r, NULL, "check-live %d %d", (int)h1.pid, (int)h2.pid);
    expect_status(&r, 1, "check-live: one mismatch");
    run_free(&r);
    holder_stop(&h1);
    holder_stop(&h2);

    /* verify a b; a third that is corrupt; one missing: the worst. */
    small_arena("m1.cprs", 0x8000000, false, a, sizeof(a));
    CPRDUMP(&r, NULL, "verify '%s' '%s'", a, a);
    expect_status(&r, 0, "verify a a");
    assert_int_equal(count_in(r.out, ": valid\n"), 2);
    run_free(&r);
    x = th_read_file(a, &len);
    x[len - 1] ^= 1;
    write_tmp("m2.cprs", x, len, bad, sizeof(bad));
    free(x);
    CPRDUMP(&r, NULL, "verify '%s' '%s'", a, bad);
    expect_status(&r, 2, "verify valid corrupt");
    expect_in(r.out, ": valid\n", "the valid one");
    expect_in(r.out, ": invalid: ", "the corrupt one");
    run_free(&r);
    CPRDUMP(&r, NULL, "show '%s' /nonexistent '%s'", a, bad);
    expect_status(&r, 1, "show with a missing source");
    assert_int_equal(count_in(r.out, "==> "), 2);
    expect_in(r.out, "Verification: FAILED", "the corrupt one shown");
    expect_in(r.err, "cannot open /nonexistent", "the missing one");
    run_free(&r);
}

/* list: every holder, one line each, and nobody's data consumed. */
static void test_list(void **state)
{
    char want[256], line[128];
    long long pos;
    Holder h1, h2;
    Run r;

    (void)state;
    holder_start(&h1, "");
    holder_start(&h2, "--legacy");
    holder_cmd(&h2, "pipe");
    pos = fd_pos(h1.pid, h1.state_fd);
    CPRDUMP(&r, NULL, "list");
    expect_in(r.out, "    PID   FD FORMAT MODE              BYTES   FDS   "
              "RAM  DEV VERDICT     COMMAND\n", "list heading");
    snprintf(want, sizeof(want), "%7d %4d arena  cpr-exec     ",
             (int)h1.pid, h1.state_fd);
    expect_in(r.out, want, "list: the arena holder");
    expect_in(r.out, "     7     6    1 valid       ", "arena counts");
    snprintf(want, sizeof(want), "%7d %4d legacy cpr-exec     ",
             (int)h2.pid, h2.state_fd);
    expect_in(r.out, want, "list: the legacy holder");
    run_free(&r);
    CPRDUMP(&r, NULL, "list --json");
    snprintf(want, sizeof(want), "\"pid\": %d,", (int)h2.pid);
    expect_in(r.out, want, "list --json");
    expect_in(r.out, "\"found-by\": \"environment\"", "list --json");
    run_free(&r);
    /* Nothing moved, nothing taken. */
    assert_int_equal(fd_pos(h1.pid, h1.state_fd), pos);
    holder_ask(&h2, "pending", line, sizeof(line));
    assert_string_equal(line, "OK 37 37\n");
    CPRDUMP(&r, NULL, "list extra");
    expect_failure(&r, 1, "list takes no operand", "list operand");
    run_free(&r);
    holder_stop(&h1);
    holder_stop(&h2);
}

/* Selectors: only the parts asked for, in the order of a full report. */
static void test_selectors(void **state)
{
    char vec[4096], cap[4096];
    Run r;

    (void)state;
    snprintf(vec, sizeof(vec), "%s/qemu-q35-memfd.cprs", th_vectors_dir());
    snprintf(cap, sizeof(cap), "%s/qemu-10.2/a-q35-memfd/capture.bin",
             th_data_dir());
    CPRDUMP(&r, NULL, "--fds '%s'", vec);
    expect_status(&r, 0, "--fds");
    assert_true(!strncmp(r.out, "\nfd records: 6\n", 15));
    assert_null(strstr(r.out, "CPR State Arena:"));
    assert_null(strstr(r.out, "RAM blocks:"));
    expect_in(r.out, "\nVerification: OK\n", "--fds verdict");
    run_free(&r);
    CPRDUMP(&r, NULL, "show --ram --header '%s'", vec);
    assert_true(!strncmp(r.out, "CPR State Arena:\n", 17));
    expect_in(r.out, "\nRAM blocks: 6\n", "--ram");
    assert_null(strstr(r.out, "Section directory"));
    assert_null(strstr(r.out, "fd records"));
    run_free(&r);
    CPRDUMP(&r, NULL, "--sections --devices '%s'", vec);
    expect_in(r.out, "Section directory: ", "--sections");
    expect_in(r.out, "vfio devices: 0\n\nDevice state: 0\n", "--devices");
    run_free(&r);
    CPRDUMP(&r, NULL, "--sections --ram '%s'", cap);
    expect_status(&r, 0, "selectors on a stream");
    expect_in(r.out, "Section directory: none (a QCPR stream has no "
              "sections)\n", "stream sections");
    expect_in(r.out, "RAM blocks: none (a QCPR stream carries no RAM "
              "block maps)\n", "stream ram");
    run_free(&r);
    CPRDUMP(&r, NULL, "--hex --fds '%s'", vec);
    expect_failure(&r, 1, "--hex shows every byte", "--hex --fds");
    run_free(&r);
}

/*
 * Exit codes have one meaning per family, and options that do not apply
 * are refused (they were ignored, and usage errors of diff and
 * check-live exited 1: "different", "mismatch").
 */
static void test_usage(void **state)
{
    char vec[4096];
    Run r;

    (void)state;
    snprintf(vec, sizeof(vec), "%s/qemu-q35-memfd.cprs", th_vectors_dir());
    CPRDUMP(&r, NULL, "show --to arena '%s'", vec);
    expect_failure(&r, 1, "show does not take --to", "show --to");
    run_free(&r);
    CPRDUMP(&r, NULL, "verify --hex '%s'", vec);
    expect_failure(&r, 1, "verify does not take --hex", "verify --hex");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff --hex '%s' '%s'", vec, vec);
    expect_failure(&r, 2, "diff does not take --hex", "diff --hex");
    run_free(&r);
    CPRDUMP(&r, NULL, "diff --bogus '%s' '%s'", vec, vec);
    expect_failure(&r, 2, "Try 'cprdump --help'", "diff --bogus");
    run_free(&r);
    CPRDUMP(&r, NULL, "check-live --bogus 1");
    expect_failure(&r, 2, "Try 'cprdump --help'", "check-live --bogus");
    run_free(&r);
    CPRDUMP(&r, NULL, "check-live --records-only 1");
    expect_failure(&r, 2, "check-live does not take --records-only",
                   "check-live --records-only");
    run_free(&r);
    CPRDUMP(&r, NULL, "check-live not-a-pid");
    expect_failure(&r, 2, "not a process id", "check-live not-a-pid");
    run_free(&r);
    CPRDUMP(&r, NULL, "convert --to arena --mode exec '%s' x", vec);
    expect_failure(&r, 1, "apply to --to legacy", "convert --mode");
    run_free(&r);
    CPRDUMP(&r, NULL, "list --fds");
    expect_failure(&r, 1, "list does not take --fds", "list --fds");
    run_free(&r);
    CPRDUMP(&r, NULL, "--max-size 1K '%s'", vec);
    expect_failure(&r, 2, "over the limit", "--max-size");
    run_free(&r);
    CPRDUMP(&r, NULL, "--max-size lots '%s'", vec);
    expect_failure(&r, 1, "not a size", "--max-size lots");
    run_free(&r);
}

/* @word as roff writes it: every '-' is "\-". */
static void roff_dashes(char *buf, size_t size, const char *word)
{
    size_t o = 0;

    for (; *word && o + 3 < size; word++) {
        if (*word == '-') {
            buf[o++] = '\\';
        }
        buf[o++] = *word;
    }
    buf[o] = '\0';
}

/*
 * --help, the man page and the bash completion name the same subcommands
 * and options.
 */
static void test_docs(void **state)
{
    char path[4096], word[64], roff[160];
    const char *p, *q;
    uint8_t *man, *comp;
    size_t len, n, checked = 0;
    Run r;

    (void)state;
    CPRDUMP(&r, NULL, "--help");
    expect_status(&r, 0, "--help");
    snprintf(path, sizeof(path), "%s/../../tools/cprdump.1", th_data_dir());
    man = th_read_file(path, &len);
    man = realloc(man, len + 1);
    man[len] = '\0';
    snprintf(path, sizeof(path), "%s/../../tools/cprdump.bash-completion",
             th_data_dir());
    comp = th_read_file(path, &len);
    comp = realloc(comp, len + 1);
    comp[len] = '\0';
    /* Every long option of --help, in roff ("\-\-name") and completion. */
    for (p = r.out; (p = strstr(p, "--")) != NULL; p = q) {
        for (q = p + 2; (*q >= 'a' && *q <= 'z') || *q == '-'; q++) {
        }
        n = (size_t)(q - p);
        if (n <= 2 || n >= sizeof(word)) {
            continue;
        }
        snprintf(word, sizeof(word), "%.*s", (int)n, p);
        roff_dashes(roff, sizeof(roff), word);
        if (!strstr((char *)man, roff)) {
            fail_msg("cprdump.1 does not document %s", word);
        }
        if (strcmp(word, "--help") && strcmp(word, "--version") &&
            !strstr((char *)comp, word)) {
            fail_msg("the completion does not know %s", word);
        }
        checked++;
    }
    assert_true(checked > 20);
    /* Every subcommand: ".B name" in the man page, a word of completion. */
    p = strstr(r.out, "Commands:\n");
    assert_non_null(p);
    for (p = strchr(p, '\n') + 1; !strncmp(p, "  ", 2); p = q + 1) {
        sscanf(p, "%63s", word);
        memcpy(roff, ".B ", 3);
        roff_dashes(roff + 3, sizeof(roff) - 4, word);
        strcat(roff, "\n");
        if (!strstr((char *)man, roff) || !strstr((char *)comp, word)) {
            fail_msg("subcommand %s: not in cprdump.1 or the completion",
                     word);
        }
        q = strchr(p, '\n');
    }
    free(man);
    free(comp);
    run_free(&r);
}

/*
 * cprdump(1): a stream without the vfio subsection, or with its header
 * only, comes back from an arena in the full form unless --vfio-form
 * says which; then byte for byte.
 */
static void test_convert_forms(void **state)
{
    static const char *const forms[] = { "none", "stub" };
    static const uint32_t values[] = {
        CPRS_LEGACY_VFIO_NONE, CPRS_LEGACY_VFIO_STUB,
    };
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11);
    char in[4096], arena[4096], back[4096], name[32];
    CprsLegacyOpts lo;
    CprsLegacy *lg;
    uint8_t *x, *y;
    size_t xl, yl, i;
    void *buf;
    Run r;

    (void)state;
    snprintf(arena, sizeof(arena), "%s/forms.cprs", tmpdir);
    snprintf(back, sizeof(back), "%s/forms.qcpr", tmpdir);
    for (i = 0; i < 2; i++) {
        lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC,
                       .vfio_form = values[i]);
        assert_int_equal(cprs_legacy_new(&lo, &lg), 0);
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
        assert_int_equal(cprs_legacy_encode(lg, &lo, &buf, &xl), 0);
        cprs_legacy_free(lg);
        snprintf(name, sizeof(name), "form-%s.qcpr", forms[i]);
        write_tmp(name, buf, xl, in, sizeof(in));
        free(buf);
        CPRDUMP(&r, NULL, "convert -q -f --to arena '%s' '%s'", in, arena);
        expect_status(&r, 0, "to arena");
        run_free(&r);
        CPRDUMP(&r, NULL, "convert -q -f --to legacy '%s' '%s'", arena,
                back);
        expect_status(&r, 0, "back, full form");
        run_free(&r);
        x = th_read_file(in, &xl);
        y = th_read_file(back, &yl);
        assert_false(xl == yl && !memcmp(x, y, xl));
        free(y);
        CPRDUMP(&r, NULL, "convert -q -f --to legacy --vfio-form %s '%s' "
                "'%s'", forms[i], arena, back);
        expect_status(&r, 0, "back, --vfio-form");
        run_free(&r);
        y = th_read_file(back, &yl);
        if (xl != yl || memcmp(x, y, xl)) {
            fail_msg("--vfio-form %s: not byte-identical", forms[i]);
        }
        free(x);
        free(y);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test-cprdump.XXXXXX",
             th_build_root());
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) ? -1 : 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_golden),
        cmocka_unit_test(test_captures_golden),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_payloads),
        cmocka_unit_test(test_diff_ranges),
        cmocka_unit_test(test_convert),
        cmocka_unit_test(test_live_arena),
        cmocka_unit_test(test_live_legacy),
        cmocka_unit_test(test_check_live),
        cmocka_unit_test(test_permission),
        cmocka_unit_test(test_core_gcore),
        cmocka_unit_test(test_core_kernel),
        cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_not_ours_devices),
        cmocka_unit_test(test_target_libelf),
        cmocka_unit_test(test_hex_overlap),
        cmocka_unit_test(test_arena_directory_first),
        cmocka_unit_test(test_bounded_pipe),
        cmocka_unit_test(test_bounded_tail),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_dual_large),
        cmocka_unit_test(test_report_spool),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_docs),
        cmocka_unit_test(test_convert_forms),
    };

    if (argc == 3 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }

    /* Helpers run with a clean environment: no inherited state fd. */
    unsetenv("QEMU_CPR_EXEC_STATE");
    return cmocka_run_group_tests(tests, setup, teardown);
}
