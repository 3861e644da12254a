/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprdump.c - inspect CPR state: "cprdump [show] SOURCE" prints the header,
 * the section directory and every record; "cprdump verify SOURCE" runs the
 * full verification and exits 0 valid, 2 corrupt or invalid, 3 unsupported,
 * 1 on any other error.  SOURCE is a file, /proc/PID/fd/N, or "-" for
 * stdin.  Output is assembled in memory and written only when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cprdump.h"

static const char *prog = "cprdump";

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

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s [show] SOURCE\n"
            "       %s verify SOURCE\n"
            "       %s --help | --version\n"
            "\n"
            "Inspect the state QEMU carries across a CPR live update.\n"
            "SOURCE is an arena file, /proc/PID/fd/N of a live process, or -\n"
            "for standard input.\n"
            "\n"
            "Commands:\n"
            "  show      print the header, section directory and records\n"
            "            (the default)\n"
            "  verify    check every structure, checksum and reference\n"
            "\n"
            "Exit status: 0 valid, 2 corrupt or invalid, 3 unsupported\n"
            "version or feature, 1 any other error (usage, I/O).\n",
            prog, prog, prog);
}

/* Explain an error the user can act on. */
static void report_open_error(const char *src, int err, const CprsDiag *diag)
{
    char text[256];

    if (err == -EACCES || err == -EPERM) {
        fprintf(stderr, "%s: cannot open %s: %s: you need read access to "
                "it; for /proc/PID/fd/N, ptrace access to PID (same user, "
                "or CAP_SYS_PTRACE)\n", prog, src, strerror(-err));
    } else if (err == -ENOENT) {
        fprintf(stderr, "%s: cannot open %s: no such file\n", prog, src);
    } else if (err == -EBADMSG || err == -E2BIG || err == -EPROTONOSUPPORT) {
        cprs_diag_format(diag, text, sizeof(text));
        fprintf(stderr, "%s: %s: %s: %s\n", prog, src, cprs_strerror(err),
                text);
    } else {
        fprintf(stderr, "%s: %s: %s\n", prog, src, strerror(-err));
    }
}

static int open_source(const char *src, CprsDiag *diag, CprsReader **ret)
{
    if (!strcmp(src, "-")) {
        return cprs_reader_open_fd(STDIN_FILENO, NULL, diag, ret);
    }
    return cprs_reader_open_path(src, NULL, diag, ret);
}

static int cmd_show(const char *src)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    Dump d = { 0 };
    char *text = NULL, line[256];
    size_t len = 0;
    int ret, vret;

    ret = open_source(src, &diag, &r);
    if (ret) {
        report_open_error(src, ret, &diag);
        return cprdump_exit_code(ret);
    }
    d.out = open_memstream(&text, &len);
    if (!d.out) {
        cprs_reader_close(r);
        fprintf(stderr, "%s: out of memory\n", prog);
        return CPRDUMP_EXIT_OTHER;
    }
    dump_header(&d, r);
    dump_sections(&d, r);
    dump_fds(&d, r);
    dump_ramblocks(&d, r);
    dump_devices(&d, r);
    vret = cprs_reader_verify(r, &diag);
    if (vret) {
        cprs_diag_format(&diag, line, sizeof(line));
        fprintf(d.out, "\nVerification: FAILED: %s: %s\n",
                cprs_strerror(vret), line);
    } else {
        fprintf(d.out, "\nVerification: OK\n");
    }
    cprs_reader_close(r);
    if (fclose(d.out)) {
        free(text);
        fprintf(stderr, "%s: out of memory\n", prog);
        return CPRDUMP_EXIT_OTHER;
    }
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
        free(text);
        fprintf(stderr, "%s: cannot write output: %s\n", prog,
                strerror(errno));
        return CPRDUMP_EXIT_OTHER;
    }
    free(text);
    if (vret) {
        fprintf(stderr, "%s: %s: %s: %s\n", prog, src, cprs_strerror(vret),
                line);
    }
    return cprdump_exit_code(vret);
}

static int cmd_verify(const char *src)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    char text[256];
    int ret;

    ret = open_source(src, &diag, &r);
    if (!ret) {
        ret = cprs_reader_verify(r, &diag);
        cprs_reader_close(r);
    }
    if (ret == -EBADMSG || ret == -E2BIG || ret == -EPROTONOSUPPORT) {
        cprs_diag_format(&diag, text, sizeof(text));
        printf("%s: %s: %s\n", src, ret == -EPROTONOSUPPORT ?
               "unsupported" : "invalid", text);
    } else if (ret) {
        report_open_error(src, ret, &diag);
    } else {
        printf("%s: valid\n", src);
    }
    return cprdump_exit_code(ret);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "show";
    int c;

    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return CPRDUMP_EXIT_OK;
        case 'V':
            printf("cprdump (libcprstate) %s, arena format %d.%d\n",
                   cprs_version(), CPRS_FORMAT_VERSION_MAJOR,
                   CPRS_FORMAT_VERSION_MINOR);
            return CPRDUMP_EXIT_OK;
        default:
            usage(stderr);
            return CPRDUMP_EXIT_OTHER;
        }
    }
    if (optind < argc && (!strcmp(argv[optind], "show") ||
                          !strcmp(argv[optind], "verify"))) {
        cmd = argv[optind++];
    }
    if (argc - optind != 1) {
        usage(stderr);
        return CPRDUMP_EXIT_OTHER;
    }
    if (!strcmp(cmd, "verify")) {
        return cmd_verify(argv[optind]);
    }
    return cmd_show(argv[optind]);
}
