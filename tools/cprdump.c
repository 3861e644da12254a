/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump.c - inspect the state QEMU carries across a CPR live update.
 *
 *   cprdump [show] [--json|--hex] SOURCE     header, directory, records
 *   cprdump verify [--json] SOURCE           0 valid, 2 invalid, 3 unsup.
 *   cprdump diff [--json] A B                0 same, 1 different, 2 error
 *   cprdump convert --to arena|legacy SOURCE OUTPUT
 *   cprdump check-live [--json] PID          0 ok, 1 mismatch, 2 error
 *
 * SOURCE is told apart by content (arena, legacy "QCPR" stream, or an ELF
 * core holding either): a file, "-" for stdin, /proc/PID/fd/N of a live
 * process, or --pid PID.  Output is assembled in a memory stream and
 * written only when complete: a failure leaves nothing half-written on
 * stdout, and every error goes to stderr with what to do about it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cprdump.h"

const char *cprdump_prog = "cprdump";

int cprdump_exit_code(int err)
{
    switch (err) {
    case 0:
        return CPRDUMP_EXIT_OK;
    case -EBADMSG:
    case -E2BIG:
        return CPRDUMP_EXIT_CORRUPT;
    case -EPROTONOSUPPORT:
        return CPRDUMP_EXIT_UNSUPPORTED;
    default:
        return CPRDUMP_EXIT_OTHER;
    }
}

void cprdump_err(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cprdump_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cprdump_note(const Options *o, const char *fmt, ...)
{
    va_list ap;

    if (o->quiet) {
        return;
    }
    fprintf(stderr, "%s: ", cprdump_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool dump_begin(Dump *d, char **text, size_t *len)
{
    d->errors = 0;
    d->out = open_memstream(text, len);
    if (!d->out) {
        cprdump_err("out of memory");
        return false;
    }
    return true;
}

bool dump_end(Dump *d, char **text, size_t *len)
{
    bool ok = true;

    /* Only now are *text and *len those of the whole output. */
    if (fclose(d->out)) {
        cprdump_err("out of memory");
        ok = false;
    } else if (fwrite(*text, 1, *len, stdout) != *len || fflush(stdout)) {
        cprdump_err("cannot write the output: %s", strerror(errno));
        ok = false;
    }
    free(*text);
    *text = NULL;
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: %s [show] [--json | --hex] SOURCE\n"
"       %s verify [--json] SOURCE\n"
"       %s diff [--json] [--records-only] A B\n"
"       %s convert --to arena|legacy [--mode exec|transfer]\n"
"               [--vfio-form full|stub|none] [--force] SOURCE OUTPUT\n"
"       %s check-live [--json] PID\n"
"       %s --help | --version\n"
"\n"
"Inspect the state QEMU carries across a CPR live update: a CPR State\n"
"Arena or QEMU's legacy \"QCPR\" stream, told apart by their first bytes.\n"
"\n"
"SOURCE is a file; - for standard input; /proc/PID/fd/N of a live\n"
"process (read through a new open file description: the owner's offset\n"
"does not move); --pid PID, which finds the state a QEMU holds between\n"
"cpr-exec and migrate-incoming; or an ELF core dump (kernel or gdb\n"
"gcore) of a process that had the state mapped or in memory.\n"
"\n"
"Commands:\n"
"  show        header, sections, fd records, RAM blocks and devices\n"
"              (the default)\n"
"  verify      check every structure, checksum and reference\n"
"  diff        compare two states record by record\n"
"  convert     arena <-> legacy stream, through libcprstate\n"
"  check-live  cross-check a process's state with its fd table\n"
"\n"
"Options:\n"
"  -j, --json            JSON output (schema: spec/cprdump-json.rst)\n"
"  -x, --hex             annotated hex dump, every field named\n"
"  -p, --pid PID         read the state of process PID\n"
"      --core-index N    the Nth state found in a core (from 0)\n"
"  -l, --lenient         read a legacy stream as QEMU does (deviations\n"
"                        become warnings)\n"
"      --records-only    diff: ignore header fields\n"
"  -t, --to FORMAT       convert: arena or legacy\n"
"      --mode MODE       convert: exec or transfer (legacy output)\n"
"      --vfio-form FORM  convert: full, stub or none (legacy output)\n"
"  -f, --force           convert: replace OUTPUT if it exists\n"
"  -q, --quiet           no informational messages on stderr\n"
"  -h, --help            this text\n"
"  -V, --version         versions of cprdump, the library and the formats\n"
"\n"
"Exit status: show, verify, convert: 0 valid, 2 corrupt or invalid,\n"
"3 unsupported version or feature, 1 other errors (usage, I/O).\n"
"diff: 0 identical, 1 different, 2 error.  check-live: 0 consistent,\n"
"1 mismatch found, 2 could not check.\n",
            cprdump_prog, cprdump_prog, cprdump_prog, cprdump_prog,
            cprdump_prog, cprdump_prog);
}

/* The verdict of a loaded source, on stderr (stdout has the report). */
static void report_verify(const Source *s, int vret, const CprsDiag *diag)
{
    char text[512];

    cprs_diag_format(diag, text, sizeof(text));
    cprdump_err("%s: %s: %s", s->label, cprs_strerror(vret), text);
    if (s->lenient_fallback) {
        cprdump_err("%s: QEMU would accept this stream; --lenient reads "
                    "it as QEMU does", s->label);
    }
}

static int cmd_show(const Options *o, const char *arg)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    char *text = NULL, line[512];
    Dump d = { 0 };
    Source s;
    size_t len = 0;
    int ret, vret;

    ret = source_load(arg, o, &s);
    if (ret) {
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    /* A state that does not open: only --hex can still show its bytes. */
    if (s.err && !s.legacy && !o->hex) {
        source_report(&s);
        ret = s.err;
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    vret = source_verify(&s, &diag);
    if (!dump_begin(&d, &text, &len)) {
        source_free(&s);
        return CPRDUMP_EXIT_OTHER;
    }
    if (o->hex) {
        hex_dump(&d, &s);
    } else if (o->json) {
        json_show(&d, &s, vret, &diag);
    } else {
        if (s.reader) {
            dump_header(&d, s.reader);
            dump_sections(&d, s.reader);
            dump_fds(&d, s.reader);
            dump_ramblocks(&d, s.reader);
            dump_devices(&d, s.reader);
        } else {
            dump_legacy(&d, &s);
        }
    }
    if (!o->json) {
        if (vret) {
            cprs_diag_format(&diag, line, sizeof(line));
            fprintf(d.out, "\nVerification: FAILED: %s: %s\n",
                    cprs_strerror(vret), line);
        } else {
            fprintf(d.out, "\nVerification: OK\n");
        }
    }
    if (!dump_end(&d, &text, &len)) {
        source_free(&s);
        return CPRDUMP_EXIT_OTHER;
    }
    if (vret) {
        report_verify(&s, vret, &diag);
    }
    source_free(&s);
    return cprdump_exit_code(vret);
}

static int cmd_verify(const Options *o, const char *arg)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsDiag w = CPRS_OPTS(CprsDiag);
    char *text = NULL, line[512];
    Dump d = { 0 };
    Source s;
    Json j;
    size_t len = 0;
    uint32_t i, nw;
    int ret;

    ret = source_load(arg, o, &s);
    if (ret) {
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    ret = source_verify(&s, &diag);
    nw = s.legacy && !s.err ? cprs_legacy_warning_count(s.legacy) : 0;
    if (!dump_begin(&d, &text, &len)) {
        source_free(&s);
        return CPRDUMP_EXIT_OTHER;
    }
    if (o->json) {
        json_begin(&j, d.out);
        json_preamble(&j, "verify");
        json_source(&j, "source", &s);
        json_str(&j, "format", s.format == CPRS_DETECT_ARENA ? "arena" :
                 "legacy");
        json_diag(&j, "verification", ret, &diag);
        json_arr(&j, "warnings");
        for (i = 0; i < nw; i++) {
            if (cprs_legacy_warning_get(s.legacy, i, &w)) {
                continue;
            }
            json_obj(&j, NULL);
            json_u64(&j, "offset", w.offset);
            if (w.record >= 0) {
                json_i64(&j, "record", w.record);
            } else {
                json_null(&j, "record");
            }
            json_str(&j, "clause", w.clause ? w.clause : "");
            json_str(&j, "reason", w.reason ? w.reason : "");
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_end(&j);
    } else if (ret) {
        cprs_diag_format(&diag, line, sizeof(line));
        fprintf(d.out, "%s: %s: %s\n", s.label, ret == -EPROTONOSUPPORT ?
                "unsupported" : "invalid", line);
    } else if (nw) {
        fprintf(d.out, "%s: valid to QEMU, with %u warning%s\n", s.label,
                nw, nw == 1 ? "" : "s");
        for (i = 0; i < nw; i++) {
            if (!cprs_legacy_warning_get(s.legacy, i, &w)) {
                cprs_diag_format(&w, line, sizeof(line));
                fprintf(d.out, "  warning: %s\n", line);
            }
        }
    } else {
        fprintf(d.out, "%s: valid\n", s.label);
    }
    if (!dump_end(&d, &text, &len)) {
        source_free(&s);
        return CPRDUMP_EXIT_OTHER;
    }
    if (ret && s.lenient_fallback) {
        report_verify(&s, ret, &diag);
    }
    source_free(&s);
    return cprdump_exit_code(ret);
}

static bool parse_int(const char *s, long min, long max, long *ret)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return false;
    }
    *ret = v;
    return true;
}

enum {
    OPT_CORE_INDEX = 256,
    OPT_RECORDS_ONLY,
    OPT_MODE,
    OPT_VFIO_FORM,
};

static int parse_options(int argc, char **argv, Options *o)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "json", no_argument, NULL, 'j' },
        { "hex", no_argument, NULL, 'x' },
        { "pid", required_argument, NULL, 'p' },
        { "lenient", no_argument, NULL, 'l' },
        { "quiet", no_argument, NULL, 'q' },
        { "force", no_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "core-index", required_argument, NULL, OPT_CORE_INDEX },
        { "records-only", no_argument, NULL, OPT_RECORDS_ONLY },
        { "mode", required_argument, NULL, OPT_MODE },
        { "vfio-form", required_argument, NULL, OPT_VFIO_FORM },
        { NULL, 0, NULL, 0 },
    };
    long v;
    int c;

    while ((c = getopt_long(argc, argv, "hVjxp:lqft:", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("cprdump %s (libcprstate %s), CPR State Arena format "
                   "%d.%d, QEMU QCPR stream version 1, JSON output %s\n",
                   cprs_version(), cprs_version(), CPRS_FORMAT_VERSION_MAJOR,
                   CPRS_FORMAT_VERSION_MINOR, CPRDUMP_JSON_VERSION);
            return 0;
        case 'j':
            o->json = true;
            break;
        case 'x':
            o->hex = true;
            break;
        case 'p':
            if (!parse_int(optarg, 1, INT_MAX, &v)) {
                cprdump_err("--pid: not a process id: %s", optarg);
                return -1;
            }
            o->pid = (int)v;
            break;
        case 'l':
            o->lenient = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'f':
            o->force = true;
            break;
        case 't':
            o->to = optarg;
            break;
        case OPT_CORE_INDEX:
            if (!parse_int(optarg, 0, INT_MAX, &v)) {
                cprdump_err("--core-index: not a number: %s", optarg);
                return -1;
            }
            o->core_index = (uint32_t)v;
            break;
        case OPT_RECORDS_ONLY:
            o->records_only = true;
            break;
        case OPT_MODE:
            if (!strcmp(optarg, "exec") || !strcmp(optarg, "cpr-exec")) {
                o->mode = CPRS_MODE_EXEC;
            } else if (!strcmp(optarg, "transfer") ||
                       !strcmp(optarg, "cpr-transfer")) {
                o->mode = CPRS_MODE_TRANSFER;
            } else {
                cprdump_err("--mode: exec or transfer, not %s", optarg);
                return -1;
            }
            break;
        case OPT_VFIO_FORM:
            if (!strcmp(optarg, "full")) {
                o->vfio_form = CPRS_LEGACY_VFIO_FULL;
            } else if (!strcmp(optarg, "stub")) {
                o->vfio_form = CPRS_LEGACY_VFIO_STUB;
            } else if (!strcmp(optarg, "none")) {
                o->vfio_form = CPRS_LEGACY_VFIO_NONE;
            } else {
                cprdump_err("--vfio-form: full, stub or none, not %s",
                            optarg);
                return -1;
            }
            break;
        default:
            return -1;
        }
    }
    return 1;
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    if (fmt) {
        fprintf(stderr, "%s: ", cprdump_prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    fprintf(stderr, "Try '%s --help'.\n", cprdump_prog);
    return CPRDUMP_EXIT_OTHER;
}

int main(int argc, char **argv)
{
    static const char *const commands[] = {
        "show", "verify", "diff", "convert", "check-live",
    };
    Options o = { .pid = -1 };
    const char *cmd = "show";
    int ret, nargs;
    size_t i;
    long pid;

    ret = parse_options(argc, argv, &o);
    if (ret <= 0) {
        return ret ? usage_error(NULL) : CPRDUMP_EXIT_OK;
    }
    for (i = 0; optind < argc && i < sizeof(commands) / sizeof(*commands);
         i++) {
        if (!strcmp(argv[optind], commands[i])) {
            cmd = argv[optind++];
            break;
        }
    }
    nargs = argc - optind;
    if (o.json && o.hex) {
        return usage_error("--json and --hex exclude each other");
    }
    if (!strcmp(cmd, "diff")) {
        if (nargs != 2 || o.pid >= 0) {
            return usage_error("diff takes two SOURCEs");
        }
        return cmd_diff(&o, argv[optind], argv[optind + 1]);
    }
    if (!strcmp(cmd, "convert")) {
        if ((o.pid >= 0 && nargs != 1) || (o.pid < 0 && nargs != 2)) {
            return usage_error("convert takes SOURCE and OUTPUT");
        }
        return cmd_convert(&o, o.pid >= 0 ? NULL : argv[optind],
                           argv[argc - 1]);
    }
    if (!strcmp(cmd, "check-live")) {
        if (nargs == 1 && o.pid < 0) {
            if (!parse_int(argv[optind], 1, INT_MAX, &pid)) {
                return usage_error("check-live: not a process id: %s",
                                   argv[optind]);
            }
            o.pid = (int)pid;
        } else if (nargs != 0 || o.pid < 0) {
            return usage_error("check-live takes one PID");
        }
        return cmd_check_live(&o, o.pid);
    }
    if ((o.pid >= 0 && nargs != 0) || (o.pid < 0 && nargs != 1)) {
        return usage_error("%s takes one SOURCE (or --pid PID)", cmd);
    }
    if (!strcmp(cmd, "verify")) {
        if (o.hex) {
            return usage_error("verify has no --hex");
        }
        return cmd_verify(&o, o.pid >= 0 ? NULL : argv[optind]);
    }
    return cmd_show(&o, o.pid >= 0 ? NULL : argv[optind]);
}
