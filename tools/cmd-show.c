/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-show.c - "cprdump show" (header, sections, records, and the verdict
 * of the full verification) and "cprdump verify" (the verdict alone).
 */
#include <errno.h>
#include <stdlib.h>

#include "commands.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_EXIT_ERROR

/* Load the one SOURCE of @c: an operand, or --pid. */
static int load_one(const Command *c, const Options *o, Source *s,
                    int *ret_exit)
{
    int ret;

    if ((o->npids && o->nargs) || (!o->npids && o->nargs != 1)) {
        *ret_exit = usage_error(USAGE, "%s takes one SOURCE (or --pid "
                                "PID)", c->name);
        return -EINVAL;
    }
    ret = source_load(o->npids ? NULL : o->args[0], o->npids ?
                      o->pids[0] : -1, o, s);
    if (ret) {
        source_free(s);
        *ret_exit = cprdump_exit_code(ret);
    }
    return ret;
}

static void show_text(Dump *d, const Source *s)
{
    if (s->reader) {
        dump_header(d, s->reader);
        dump_sections(d, s->reader);
        dump_fds(d, s->reader);
        dump_ramblocks(d, s->reader);
        dump_devices(d, s->reader);
    } else {
        dump_legacy(d, s);
    }
}

/* The last line of a text or hex report. */
static void show_verdict(Dump *d, int vret, const CprsDiag *diag)
{
    char line[512];

    if (vret) {
        cprs_diag_format(diag, line, sizeof(line));
        fprintf(d->out, "\nVerification: FAILED: %s: %s\n",
                cprs_strerror(vret), line);
    } else {
        fprintf(d->out, "\nVerification: OK\n");
    }
}

static int show_run(const Options *o)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Dump d = { 0 };
    Source s;
    int ret, vret;

    if (load_one(&cmd_show, o, &s, &ret)) {
        return ret;
    }
    /* A state that does not open: only --hex can still show its bytes. */
    if (s.err && !s.legacy && !o->hex) {
        source_report(&s, s.err, &s.diag);
        ret = s.err;
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    vret = source_verify(&s, &diag);
    if (!dump_begin(&d)) {
        source_free(&s);
        return CPRDUMP_EXIT_ERROR;
    }
    if (o->hex) {
        hex_dump(&d, &s);
    } else if (o->json) {
        json_show(&d, &s, vret, &diag);
    } else {
        show_text(&d, &s);
    }
    if (!o->json) {
        show_verdict(&d, vret, &diag);
    }
    if (!dump_end(&d)) {
        source_free(&s);
        return CPRDUMP_EXIT_ERROR;
    }
    if (vret) {
        source_report(&s, vret, &diag);
    }
    source_free(&s);
    return cprdump_exit_code(vret);
}

static void verify_text(Dump *d, const Source *s, int ret,
                        const CprsDiag *diag)
{
    CprsDiag w = CPRS_OPTS(CprsDiag);
    uint32_t i, nw = s->legacy && !s->err ?
                     cprs_legacy_warning_count(s->legacy) : 0;
    char line[512];

    if (ret) {
        cprs_diag_format(diag, line, sizeof(line));
        fprintf(d->out, "%s: %s: %s\n", s->label, ret == -EPROTONOSUPPORT ?
                "unsupported" : "invalid", line);
        return;
    }
    if (!nw) {
        fprintf(d->out, "%s: valid\n", s->label);
        return;
    }
    fprintf(d->out, "%s: valid to QEMU, with %u warning%s\n", s->label, nw,
            nw == 1 ? "" : "s");
    for (i = 0; i < nw; i++) {
        if (!cprs_legacy_warning_get(s->legacy, i, &w)) {
            cprs_diag_format(&w, line, sizeof(line));
            fprintf(d->out, "  warning: %s\n", line);
        }
    }
}

static void verify_json(Dump *d, const Source *s, int ret,
                        const CprsDiag *diag)
{
    Json j;

    json_begin(&j, d->out);
    json_preamble(&j, "verify");
    json_source(&j, "source", s);
    json_str(&j, "format", s->format == CPRS_DETECT_ARENA ? "arena" :
             "legacy");
    json_diag(&j, "verification", ret, diag);
    json_legacy_warnings(&j, "warnings", s->legacy && !s->err ? s->legacy :
                         NULL);
    json_obj_end(&j);
    json_end(&j);
}

static int verify_run(const Options *o)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Dump d = { 0 };
    Source s;
    int ret;

    if (load_one(&cmd_verify, o, &s, &ret)) {
        return ret;
    }
    ret = source_verify(&s, &diag);
    if (!dump_begin(&d)) {
        source_free(&s);
        return CPRDUMP_EXIT_ERROR;
    }
    if (o->json) {
        verify_json(&d, &s, ret, &diag);
    } else {
        verify_text(&d, &s, ret, &diag);
    }
    if (!dump_end(&d)) {
        source_free(&s);
        return CPRDUMP_EXIT_ERROR;
    }
    if (ret && s.lenient_fallback) {
        source_report(&s, ret, &diag);
    }
    source_free(&s);
    return cprdump_exit_code(ret);
}

const Command cmd_show = {
    .name = "show",
    .run = show_run,
    .options = OPT_JSON | OPT_HEX | OPT_PID | OPT_CORE_INDEX | OPT_LENIENT |
               OPT_QUIET | OPT_FORCE | OPT_TO | OPT_MODE | OPT_VFIO_FORM |
               OPT_RECORDS_ONLY | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json | --hex] SOURCE",
    .summary = "header, sections, fd records, RAM blocks and devices "
               "(the default)",
};

const Command cmd_verify = {
    .name = "verify",
    .run = verify_run,
    .options = OPT_JSON | OPT_PID | OPT_CORE_INDEX | OPT_LENIENT |
               OPT_QUIET | OPT_FORCE | OPT_TO | OPT_MODE | OPT_VFIO_FORM |
               OPT_RECORDS_ONLY | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json] SOURCE",
    .summary = "check every structure, checksum and reference",
};
