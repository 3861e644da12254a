/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dump.c - cprdump end to end, on hostile input, into memory.
 *
 * cprdump is a program, not a library: fuzz/meson.build compiles its
 * sources (whatever tools/meson.build lists in cprdump_sources) with
 * main() renamed cprdump_main(), and this target runs it as the command
 * line would, with the input in a memfd named by /proc/self/fd/N and
 * stdout and stderr swapped for memory streams (glibc's stdout and stderr
 * are plain variables).  Every output format and command runs: show
 * (text, --json, --hex, --lenient, --core-index), verify (text, --json),
 * diff (the input against itself and against a fixed arena), and convert
 * (to an arena and to a legacy stream, into a private tmpfs directory).
 *
 * Invariants (FUZZ_ASSERT): exit statuses are the documented ones; --json
 * output is well-formed JSON; running the same command twice gives the
 * same bytes and status (nothing kept between runs); what convert writes
 * is valid (an arena that verifies, a stream that decodes), and it writes
 * nothing when it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprdump-main.h"
#include "fuzz.h"

typedef struct Run {
    int status;
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} Run;

/* cprdump_main(@argv) with stdout and stderr in memory. */
static Run run(const char *const *argv)
{
    FILE *save_out = stdout, *save_err = stderr;
    char *args[16];
    Run r = { 0 };
    int argc;

    for (argc = 0; argv[argc] && argc < 15; argc++) {
        args[argc] = (char *)argv[argc];
    }
    args[argc] = NULL;
    stdout = open_memstream(&r.out, &r.out_len);
    stderr = open_memstream(&r.err, &r.err_len);
    FUZZ_ASSERT(stdout && stderr);
    optind = 0;             /* getopt: start over, fully reinitialised */
    r.status = cprdump_main(argc, args);
    fclose(stdout);
    fclose(stderr);
    stdout = save_out;
    stderr = save_err;
    return r;
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

/* ---- JSON well-formedness (RFC 8259), depth-bounded ------------------- */

typedef struct Js {
    const char *p, *end;
    int depth;
} Js;

static bool js_value(Js *j);

static void js_ws(Js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' ||
                             *j->p == '\r' || *j->p == '\t')) {
        j->p++;
    }
}

static bool js_lit(Js *j, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) {
        return false;
    }
    j->p += n;
    return true;
}

static bool js_string(Js *j)
{
    unsigned char c;
    int k;

    if (j->p >= j->end || *j->p++ != '"') {
        return false;
    }
    while (j->p < j->end) {
        c = (unsigned char)*j->p++;
        if (c == '"') {
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c != '\\') {
            continue;
        }
        if (j->p >= j->end) {
            return false;
        }
        c = (unsigned char)*j->p++;
        if (c == 'u') {
            for (k = 0; k < 4; k++, j->p++) {
                if (j->p >= j->end || !*j->p ||
                    !strchr("0123456789abcdefABCDEF", *j->p)) {
                    return false;
                }
            }
        } else if (!c || !strchr("\"\\/bfnrt", c)) {
            return false;
        }
    }
    return false;
}

static bool js_digits(Js *j)
{
    const char *s = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }
    return j->p > s;
}

static bool js_number(Js *j)
{
    if (j->p < j->end && *j->p == '-') {
        j->p++;
    }
    if (j->p < j->end && *j->p == '0') {
        j->p++;
    } else if (!js_digits(j)) {
        return false;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!js_digits(j)) {
            return false;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (!js_digits(j)) {
            return false;
        }
    }
    return true;
}

static bool js_container(Js *j, char close, bool object)
{
    bool first = true;

    if (++j->depth > 64) {
        return false;
    }
    j->p++;
    for (;;) {
        js_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return true;
        }
        if (!first && (j->p >= j->end || *j->p++ != ',')) {
            return false;
        }
        first = false;
        if (object) {
            js_ws(j);
            if (!js_string(j)) {
                return false;
            }
            js_ws(j);
            if (j->p >= j->end || *j->p++ != ':') {
                return false;
            }
        }
        if (!js_value(j)) {
            return false;
        }
    }
}

static bool js_value(Js *j)
{
    js_ws(j);
    if (j->p >= j->end) {
        return false;
    }
    switch (*j->p) {
    case '{':
        return js_container(j, '}', true);
    case '[':
        return js_container(j, ']', false);
    case '"':
        return js_string(j);
    case 't':
        return js_lit(j, "true");
    case 'f':
        return js_lit(j, "false");
    case 'n':
        return js_lit(j, "null");
    default:
        return js_number(j);
    }
}

static bool json_ok(const char *s, size_t len)
{
    Js j = { s, s + len, 0 };

    if (!js_value(&j)) {
        return false;
    }
    js_ws(&j);
    return j.p == j.end;
}

/* ---- The commands ------------------------------------------------------- */

/* show, verify: a status in 0..3, JSON well-formed, the same twice. */
static void check_report(const char *const *argv, bool json)
{
    Run a = run(argv), b = run(argv);

    FUZZ_ASSERT_MSG(a.status >= 0 && a.status <= 3, "cprdump %s %s: "
                    "status %d", argv[1], argv[2], a.status);
    FUZZ_ASSERT_MSG(a.status == b.status && a.out_len == b.out_len &&
                    !memcmp(a.out, b.out, a.out_len), "cprdump %s %s: two "
                    "runs differ", argv[1], argv[2]);
    FUZZ_ASSERT_MSG(!json || !a.out_len || json_ok(a.out, a.out_len),
                    "cprdump %s %s: output is not JSON:\n%.*s", argv[1],
                    argv[2], (int)(a.out_len < 4096 ? a.out_len : 4096),
                    a.out);
    run_free(&a);
    run_free(&b);
}

/* A fixed arena to diff against. */
static int reference_fd(void)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11,
                              .kind = CPRS_FD_KIND_MEMFD);
    CprsWriter *w;
    int fd;

    FUZZ_ASSERT(cprs_writer_new(&o, &w) == 0);
    FUZZ_ASSERT(cprs_writer_add_fd(w, &fi, NULL) == 0);
    fd = memfd_create("fuzz-dump-ref", MFD_CLOEXEC);
    FUZZ_ASSERT(fd >= 0 && cprs_writer_finish_fd(w, fd) == 0);
    cprs_writer_free(w);
    return fd;
}

/*
 * Does the input hold a valid state (an arena that verifies, a strict
 * stream without duplicate keys)?  Only then do its keys find its
 * records, one each.
 */
static bool valid_state(const uint8_t *data, size_t size)
{
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsReader *r;
    CprsLegacy *lg;
    bool ok = false;

    if (!cprs_reader_open_buffer(data, size, &ro, NULL, &r)) {
        ok = !cprs_reader_verify(r, NULL);
        cprs_reader_close(r);
    } else if (!cprs_legacy_decode(data, size, &lo, NULL, &lg)) {
        /* Strict, and no duplicate keys (those are warnings). */
        ok = !cprs_legacy_warning_count(lg);
        cprs_legacy_free(lg);
    }
    return ok;
}

static void check_diff(const char *path, const char *ref, bool valid)
{
    const char *self[] = { "cprdump", "diff", path, path, NULL };
    const char *json[] = { "cprdump", "diff", "--json", path, ref, NULL };
    const char *recs[] = { "cprdump", "diff", "--records-only", ref, path,
                           NULL };
    Run r;

    /*
     * A valid state is identical to itself.  (An invalid one may not be
     * matched record by record: its index can hide records.)
     */
    r = run(self);
    FUZZ_ASSERT(r.status >= 0 && r.status <= 2);
    FUZZ_ASSERT_MSG(!valid || r.status == 0, "diff of a valid state with "
                    "itself: status %d\n%.*s", r.status,
                    (int)(r.out_len < 2048 ? r.out_len : 2048), r.out);
    run_free(&r);
    r = run(json);
    FUZZ_ASSERT(r.status >= 0 && r.status <= 2);
    FUZZ_ASSERT_MSG(!r.out_len || json_ok(r.out, r.out_len),
                    "diff --json: output is not JSON");
    run_free(&r);
    r = run(recs);
    FUZZ_ASSERT(r.status >= 0 && r.status <= 2);
    run_free(&r);
}

static uint8_t *slurp(const char *path, size_t *ret_size)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return NULL;
    }
    FUZZ_ASSERT(fstat(fd, &st) == 0);
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    FUZZ_ASSERT(buf);
    FUZZ_ASSERT(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
    close(fd);
    *ret_size = (size_t)st.st_size;
    return buf;
}

/* convert writes only a valid state, and nothing when it fails. */
static void check_convert(const char *path, const char *to)
{
    char dir[] = "/dev/shm/fuzz-dump-XXXXXX", out[64];
    const char *argv[] = { "cprdump", "convert", "--quiet", "--to", to,
                           path, out, NULL };
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsReader *r;
    CprsLegacy *lg;
    uint8_t *buf;
    size_t size = 0;
    Run res;

    if (!mkdtemp(dir)) {
        return;     /* no tmpfs here: nothing to check */
    }
    snprintf(out, sizeof(out), "%s/out", dir);
    res = run(argv);
    FUZZ_ASSERT(res.status >= 0 && res.status <= 3);
    buf = slurp(out, &size);
    FUZZ_ASSERT_MSG(!res.status == !!buf, "convert --to %s: status %d, "
                    "output %s", to, res.status, buf ? "written" : "absent");
    if (buf && !strcmp(to, "arena")) {
        FUZZ_ASSERT(cprs_reader_open_buffer(buf, size, &ro, NULL, &r) == 0);
        FUZZ_ASSERT_MSG(cprs_reader_verify(r, NULL) == 0,
                        "convert --to arena wrote an invalid arena");
        cprs_reader_close(r);
    } else if (buf) {
        FUZZ_ASSERT_MSG(cprs_legacy_decode(buf, size, &lo, NULL, &lg) == 0,
                        "convert --to legacy wrote an undecodable stream");
        cprs_legacy_free(lg);
    }
    free(buf);
    unlink(out);
    rmdir(dir);
    run_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], ref[64];
    size_t done = 0;
    ssize_t n;
    int fd, rfd;

    if (fuzz_outside_size_range(size, 0, FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    fd = memfd_create("fuzz-dump", MFD_CLOEXEC);
    FUZZ_ASSERT(fd >= 0);
    while (done < size && (n = write(fd, data + done, size - done)) > 0) {
        done += (size_t)n;
    }
    FUZZ_ASSERT(done == size);
    rfd = reference_fd();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    snprintf(ref, sizeof(ref), "/proc/self/fd/%d", rfd);
    {
        const char *show[] = { "cprdump", "show", path, NULL };
        const char *json[] = { "cprdump", "show", "--json", path, NULL };
        const char *hex[] = { "cprdump", "show", "--hex", path, NULL };
        const char *lenient[] = { "cprdump", "show", "--lenient", path,
                                  NULL };
        const char *core1[] = { "cprdump", "show", "--core-index", "1",
                                path, NULL };
        const char *verify[] = { "cprdump", "verify", path, NULL };
        const char *vjson[] = { "cprdump", "verify", "--json", "--lenient",
                                path, NULL };

        check_report(show, false);
        check_report(json, true);
        check_report(hex, false);
        check_report(lenient, false);
        check_report(core1, false);
        check_report(verify, false);
        check_report(vjson, true);
    }
    check_diff(path, ref, valid_state(data, size));
    check_convert(path, "arena");
    check_convert(path, "legacy");
    close(rfd);
    close(fd);
    return 0;
}
