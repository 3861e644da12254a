/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reader-wrapper.c - a wrapper in front of QEMU, linked statically with
 * libcprstate-reader.a only (spec/fail-safe.rst F2.2, F2.4): it looks at
 * the CPR state with the reader (an arena, else QEMU's QCPR stream),
 * then execs the real QEMU.  Its binary holds QEMU's names (the state's
 * variable, the vfio subsection the legacy decoder knows) but no note:
 * pre-flight must call it uncertain, never a stock QEMU.
 *
 * usage: reader-wrapper QEMU [ARGS...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cprstate.h>

int main(int argc, char **argv)
{
    const char *v = getenv(CPRS_EXEC_STATE_NAME);
    static char buf[4096];
    CprsReader *r = NULL;
    CprsLegacy *l = NULL;
    ssize_t n;

    if (v) {
        if (!cprs_reader_open_fd(atoi(v), NULL, NULL, &r)) {
            fprintf(stderr, "reader-wrapper: an arena\n");
            cprs_reader_close(r);
        } else {
            n = pread(atoi(v), buf, sizeof(buf), 0);
            if (n > 0 && !cprs_legacy_decode(buf, (size_t)n, NULL, NULL,
                                             &l)) {
                fprintf(stderr, "reader-wrapper: a QCPR stream\n");
                cprs_legacy_free(l);
            }
        }
    }
    if (argc < 2) {
        return 2;
    }
    execv(argv[1], argv + 1);
    return 127;
}
