/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dump-failsafe.c - the fail-safe live update in a text report
 * (spec/fail-safe.rst): that a state came as a dual stream, and its
 * rollback record, armed or handed back with the failure of the next
 * binary.
 */
#include <inttypes.h>
#include <string.h>

#include "render.h"

/* @s escaping what is not printable ASCII (argv may hold anything). */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f &&
            *s != '\\') {
            fputc(*s, f);
        } else {
            fprintf(f, "\\x%02x", (unsigned char)*s);
        }
    }
}

static void dump_rollback(Dump *d, const Source *s)
{
    CprsRollbackInfo ri;
    CprsDiag diag;
    char when[64], text[512];
    const char *arg;
    uint32_t i;
    int ret = source_rollback(s, &ri, &diag);

    if (ret == -ENOENT) {
        return;
    }
    fprintf(d->out, "\nRollback record (spec/fail-safe.rst F5):\n");
    if (ret) {
        /* The verdict says it too: a bad record makes a bad state. */
        cprs_diag_format(&diag, text, sizeof(text));
        fprintf(d->out, "  INVALID: %s: %s\n", cprs_strerror(ret), text);
        return;
    }
    fprintf(d->out, "  Status:           %s\n",
            ri.flags & CPRS_ROLLBACK_F_ROLLED_BACK ?
            "ROLLED BACK: the next binary failed, this state was handed "
            "back" : "armed: a failed load hands the state back");
    fprintf(d->out, "  Generation:       %" PRIu64 "\n", ri.generation);
    time_str(when, sizeof(when), ri.armed_ns);
    fprintf(d->out, "  Armed:            %s, by pid %u\n", when, ri.pid);
    fprintf(d->out, "  Previous binary:  %s\n", tx(ri.exe_path));
    fprintf(d->out, "                    fd %d, device 0x%" PRIx64 ", inode %"
            PRIu64 ", %" PRIu64 " bytes, mode 0%o\n", ri.exe_fd, ri.exe_dev,
            ri.exe_ino, ri.exe_size, ri.exe_mode);
    fprintf(d->out, "  Command (%u args): ", ri.argc);
    /* The arguments follow each other: one walk, not one read each. */
    for (i = 0, arg = ri.argv; i < ri.argc; i++, arg += strlen(arg) + 1) {
        if (i) {
            fputc(' ', d->out);
        }
        put_escaped(d->out, arg);
    }
    fprintf(d->out, "\n");
    if (ri.flags & CPRS_ROLLBACK_F_FAILURE) {
        time_str(when, sizeof(when), ri.failed_ns);
        fprintf(d->out, "  Failed binary:    %s\n", tx(ri.failed_exe));
        fprintf(d->out, "  Failure:          stage %s, error %d (%s), %s\n",
                cprs_failure_stage_name(ri.failure_stage), ri.failure_error,
                ri.failure_error ? strerror(-ri.failure_error) : "unknown",
                when);
        fprintf(d->out, "  Message:          %s\n", tx(ri.failure_message));
    }
}

void dump_failsafe(Dump *d, const Source *s)
{
    if (s->dual) {
        fprintf(d->out, "\nDual stream (spec/fail-safe.rst F4): a QCPR "
                "stream of %" PRIu64 " bytes, then the arena shown above; "
                "the two agree\n", s->dual_legacy_size);
    }
    dump_rollback(d, s);
}
