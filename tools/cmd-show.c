/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-show.c - "cprdump show" (header, sections, records, and the verdict
 * of the full verification) and "cprdump verify" (the verdict alone), of
 * one SOURCE or several (files, --pid lists).
 *
 * What reaches stdout (cprdump(1), OUTPUT): the report of every state
 * that opens, whole, or nothing of it: a state that cannot be read, is
 * no state, or does not open is reported on stderr only.  A state that
 * opens but fails the full verification is shown, and its report ends
 * with "Verification: FAILED"; the exit code says it too.  With several
 * sources, text reports follow one another under "==> SOURCE <==", and
 * --json prints one document whose "results" hold one document each.
 */
#include <errno.h>
#include <stdlib.h>

#include "commands.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_EXIT_ERROR

/* The report of one state, in text: the selected parts. */
static void show_text(Dump *d, const Source *s, uint32_t select)
{
    uint32_t want = select ? select : OPT_SELECTORS;

    if (!s->reader) {
        dump_legacy(d, s, select);
        return;
    }
    if (want & OPT_HEADER) {
        dump_header(d, s->reader);
    }
    if (want & OPT_SECTIONS) {
        dump_sections(d, s->reader);
    }
    if (want & OPT_FDS) {
        dump_fds(d, s->reader);
    }
    if (want & OPT_RAM) {
        dump_ramblocks(d, s->reader);
    }
    if (want & OPT_DEVICES) {
        dump_devices(d, s->reader);
    }
    if (want & OPT_HEADER) {
        dump_failsafe(d, s);
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

/* One SOURCE, in text or hex: its own report, written when complete. */
static int show_one_text(const Options *o, Source *s, bool heading,
                         bool first)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Dump d;
    int vret;

    vret = source_verify(s, &diag);
    if (!dump_begin(&d)) {
        return CPRDUMP_EXIT_ERROR;
    }
    if (heading) {
        fprintf(d.out, "%s==> %s <==\n", first ? "" : "\n", s->label);
    }
    if (o->hex) {
        hex_dump(&d, s);
    } else {
        show_text(&d, s, o->select);
    }
    show_verdict(&d, vret, &diag);
    if (!dump_end(&d)) {
        return CPRDUMP_EXIT_ERROR;
    }
    if (vret) {
        source_report(s, vret, &diag);
    }
    return cprdump_exit_code(vret);
}

/*
 * Load SOURCE @a.  A state that does not open is reported here (only
 * --hex can still show its bytes): then *@ret_exit is set and the caller
 * shows nothing of it.
 */
static int load(const Options *o, const SourceArg *a, Source *s,
                bool need_open)
{
    int ret = source_load(a->path, a->pid, o, s);

    if (!ret && need_open && s->err && !s->legacy) {
        source_report(s, s->err, &s->diag);
        ret = s->err;
    }
    return ret;
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

static int verify_one_text(Source *s)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Dump d;
    int ret = source_verify(s, &diag);

    if (!dump_begin(&d)) {
        return CPRDUMP_EXIT_ERROR;
    }
    verify_text(&d, s, ret, &diag);
    if (!dump_end(&d)) {
        return CPRDUMP_EXIT_ERROR;
    }
    if (ret && s->lenient_fallback) {
        source_report(s, ret, &diag);
    }
    return cprdump_exit_code(ret);
}

static void verify_json(Json *j, const Source *s, int ret,
                        const CprsDiag *diag)
{
    json_preamble(j, "verify");
    json_source(j, "source", s);
    json_str(j, "format", s->format == CPRS_DETECT_ARENA ? "arena" :
             "legacy");
    json_diag(j, "verification", ret, diag);
    json_legacy_warnings(j, "warnings", s->legacy && !s->err ? s->legacy :
                         NULL);
    json_obj_end(j);
}

/*
 * Show (or, @verify, verify) every SOURCE of @o.  Text: each source's
 * report is written when complete.  JSON: one document, or with several
 * sources one "results" document, written at the end.  Returns the
 * worst exit code of the sources.
 */
static int run_all(const Options *o, const char *command, bool verify)
{
    CprsDiag diag;
    SourceArg *list;
    Source s;
    Dump all = { 0 };
    Json j;
    int i, n, ret, exit = CPRDUMP_EXIT_OK, one, shown = 0;
    bool wrote = false;

    n = source_args(o, 0, o->nargs, &list);
    if (n < 0) {
        return usage_error(USAGE, NULL);
    }
    if (!n) {
        free(list);
        return usage_error(USAGE, "%s takes at least one SOURCE (or --pid "
                           "PID)", command);
    }
    if (o->json && !dump_begin(&all)) {
        free(list);
        return CPRDUMP_EXIT_ERROR;
    }
    if (o->json) {
        json_begin(&j, all.out);
    }
    if (o->json && n > 1) {
        json_preamble(&j, command);
        json_arr(&j, "results");
    }
    for (i = 0; i < n; i++) {
        ret = load(o, &list[i], &s, !verify && !o->hex);
        if (ret) {
            one = cprdump_exit_code(ret);
            if (o->json && n > 1) {
                json_load_error(&j, s.label, ret);
            }
        } else if (o->json) {
            wrote = true;
            diag = CPRS_OPTS(CprsDiag);
            one = source_verify(&s, &diag);
            if (verify) {
                verify_json(&j, &s, one, &diag);
            } else {
                json_show(&j, &s, one, &diag, o->select);
            }
            if (one && (!verify || s.lenient_fallback)) {
                source_report(&s, one, &diag);
            }
            one = cprdump_exit_code(one);
        } else if (verify) {
            one = verify_one_text(&s);
        } else {
            one = show_one_text(o, &s, n > 1, !shown++);
        }
        exit = cprdump_exit_merge(exit, one);
        source_free(&s);
    }
    free(list);
    if (o->json && n > 1) {
        json_arr_end(&j);
        json_obj_end(&j);
        wrote = true;
    }
    if (o->json && !wrote) {
        /* A single source that did not load: nothing on stdout. */
        dump_discard(&all);
    } else if (o->json) {
        json_end(&j);
        if (!dump_end(&all)) {
            exit = CPRDUMP_EXIT_ERROR;
        }
    }
    return exit;
}

static int show_run(const Options *o)
{
    return run_all(o, "show", false);
}

static int verify_run(const Options *o)
{
    return run_all(o, "verify", true);
}

const Command cmd_show = {
    .name = "show",
    .run = show_run,
    .options = OPT_JSON | OPT_HEX | OPT_PID | OPT_CORE_INDEX | OPT_LENIENT |
               OPT_QUIET | OPT_MAX_SIZE | OPT_SELECTORS,
    .usage_exit = USAGE,
    .synopsis = "[--json | --hex] [--header] [--sections] [--fds] [--ram]\n"
                "               [--devices] SOURCE...",
    .summary = "header, sections, fds, RAM blocks, devices (the default)",
};

const Command cmd_verify = {
    .name = "verify",
    .run = verify_run,
    .options = OPT_JSON | OPT_PID | OPT_CORE_INDEX | OPT_LENIENT |
               OPT_QUIET | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json] SOURCE...",
    .summary = "check every structure, checksum and reference",
};
