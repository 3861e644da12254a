/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * options.c - cprdump's command line, parsed once for every subcommand.
 * Options may come before or after the subcommand name (getopt permutes
 * them); each one seen is recorded, and options_check() refuses those a
 * subcommand does not take.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cprstate.h"
#include "options.h"
#include "output.h"

/* getopt codes of the long-only options. */
enum {
    LONG_CORE_INDEX = 256,
    LONG_RECORDS_ONLY,
    LONG_MODE,
    LONG_VFIO_FORM,
    LONG_MAX_SIZE,
    LONG_HEADER,
    LONG_SECTIONS,
    LONG_FDS,
    LONG_RAM,
    LONG_DEVICES,
    LONG_POLICY,
};

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
    { "core-index", required_argument, NULL, LONG_CORE_INDEX },
    { "records-only", no_argument, NULL, LONG_RECORDS_ONLY },
    { "mode", required_argument, NULL, LONG_MODE },
    { "vfio-form", required_argument, NULL, LONG_VFIO_FORM },
    { "max-size", required_argument, NULL, LONG_MAX_SIZE },
    { "header", no_argument, NULL, LONG_HEADER },
    { "sections", no_argument, NULL, LONG_SECTIONS },
    { "fds", no_argument, NULL, LONG_FDS },
    { "ram", no_argument, NULL, LONG_RAM },
    { "devices", no_argument, NULL, LONG_DEVICES },
    { "policy", required_argument, NULL, LONG_POLICY },
    { NULL, 0, NULL, 0 },
};

/* The option of each OPT_* bit, for messages. */
static const char *const opt_names[OPT__COUNT] = {
    "--json", "--hex", "--pid", "--core-index", "--lenient", "--quiet",
    "--force", "--to", "--mode", "--vfio-form", "--records-only",
    "--header", "--sections", "--fds", "--ram", "--devices", "--max-size",
    "--policy",
};

bool parse_int(const char *s, long min, long max, long *ret)
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

/* A size in bytes, with an optional K, M, G or T (powers of 1024). */
static bool parse_size(const char *s, uint64_t *ret)
{
    static const char units[] = "KMGT";
    unsigned long long v;
    const char *u;
    char *end;
    int shift;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') {
        return false;
    }
    shift = 0;
    if (*end && (u = strchr(units, *end)) != NULL) {
        shift = 10 * (int)(u - units + 1);
        end++;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) {
        return false;
    }
    *ret = (uint64_t)v << shift;
    return true;
}

/* A word of a fixed list: its value, or -1. */
typedef struct Word {
    const char *word;
    uint32_t value;
} Word;

static int64_t pick(const Word *w, const char *s)
{
    for (; w->word; w++) {
        if (!strcmp(w->word, s)) {
            return w->value;
        }
    }
    return -1;
}

int options_add_pids(Options *o, const char *arg)
{
    char word[32];
    const char *p = arg;
    size_t n;
    long v;

    /* "1 2", "1,2" and "1" alike: what $(pidof qemu) gives, quoted. */
    while (*p) {
        n = strcspn(p, ", \t\n");
        if (!n) {
            p++;
            continue;
        }
        if (n >= sizeof(word)) {
            n = sizeof(word) - 1;
        }
        memcpy(word, p, n);
        word[n] = '\0';
        p += strcspn(p, ", \t\n");
        if (!parse_int(word, 1, INT_MAX, &v)) {
            cprdump_err("--pid: not a process id: %s", tx(word));
            return -1;
        }
        if (o->npids == OPTIONS_MAX_PIDS) {
            cprdump_err("--pid: more than %d processes",
                        OPTIONS_MAX_PIDS);
            return -1;
        }
        o->pids[o->npids++] = (int)v;
    }
    if (!o->npids) {
        cprdump_err("--pid: no process id in \"%s\"", tx(arg));
        return -1;
    }
    return 0;
}

/* One option; 0 or -1 after a message. */
static int parse_one(Options *o, int c, const char *arg)
{
    static const Word modes[] = {
        { "exec", CPRS_MODE_EXEC }, { "cpr-exec", CPRS_MODE_EXEC },
        { "transfer", CPRS_MODE_TRANSFER },
        { "cpr-transfer", CPRS_MODE_TRANSFER }, { NULL, 0 },
    };
    static const Word forms[] = {
        { "full", CPRS_LEGACY_VFIO_FULL }, { "stub", CPRS_LEGACY_VFIO_STUB },
        { "none", CPRS_LEGACY_VFIO_NONE }, { NULL, 0 },
    };
    int64_t w;
    long v;

    switch (c) {
    case 'h':
        o->help = true;
        return 0;
    case 'V':
        o->version = true;
        return 0;
    case 'j':
        o->seen |= OPT_JSON;
        o->json = true;
        return 0;
    case 'x':
        o->seen |= OPT_HEX;
        o->hex = true;
        return 0;
    case 'p':
        o->seen |= OPT_PID;
        return options_add_pids(o, arg);
    case 'l':
        o->seen |= OPT_LENIENT;
        o->lenient = true;
        return 0;
    case 'q':
        o->seen |= OPT_QUIET;
        o->quiet = true;
        return 0;
    case 'f':
        o->seen |= OPT_FORCE;
        o->force = true;
        return 0;
    case 't':
        o->seen |= OPT_TO;
        o->to = arg;
        return 0;
    case LONG_CORE_INDEX:
        o->seen |= OPT_CORE_INDEX;
        if (!parse_int(arg, 0, INT_MAX, &v)) {
            cprdump_err("--core-index: %s: a number from 0 to %d", tx(arg),
                        INT_MAX);
            return -1;
        }
        o->core_index = (uint32_t)v;
        return 0;
    case LONG_RECORDS_ONLY:
        o->seen |= OPT_RECORDS_ONLY;
        o->records_only = true;
        return 0;
    case LONG_MODE:
        o->seen |= OPT_MODE;
        w = pick(modes, arg);
        if (w < 0) {
            cprdump_err("--mode: exec or transfer, not %s", tx(arg));
            return -1;
        }
        o->mode = (uint32_t)w;
        return 0;
    case LONG_VFIO_FORM:
        o->seen |= OPT_VFIO_FORM;
        w = pick(forms, arg);
        if (w < 0) {
            cprdump_err("--vfio-form: full, stub or none, not %s", tx(arg));
            return -1;
        }
        o->vfio_form = (uint32_t)w;
        return 0;
    case LONG_HEADER:
    case LONG_SECTIONS:
    case LONG_FDS:
    case LONG_RAM:
    case LONG_DEVICES:
        /* The selector bits follow the long options' order. */
        o->seen |= OPT_HEADER << (c - LONG_HEADER);
        o->select |= OPT_HEADER << (c - LONG_HEADER);
        return 0;
    case LONG_POLICY:
        o->seen |= OPT_POLICY;
        if (cprs_policy_parse(arg, &o->policy)) {
            cprdump_err("--policy: auto, arena, legacy, dual or strict, not "
                        "%s", tx(arg));
            return -1;
        }
        return 0;
    case LONG_MAX_SIZE:
        o->seen |= OPT_MAX_SIZE;
        if (!parse_size(arg, &o->max_size) || !o->max_size) {
            cprdump_err("--max-size: not a size in bytes (K, M, G, T "
                        "suffixes): %s", tx(arg));
            return -1;
        }
        return 0;
    default:
        /* getopt_long() said what was wrong. */
        return -1;
    }
}

int options_parse(int argc, char **argv, Options *o)
{
    int c, ret = 0;

    memset(o, 0, sizeof(*o));
    o->max_size = CPRS_MAX_ARENA_SIZE;
    while ((c = getopt_long(argc, argv, "hVjxp:lqft:", longopts,
                            NULL)) != -1) {
        /* Go on after an error: the subcommand decides the exit code. */
        if (parse_one(o, c, optarg)) {
            ret = -1;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return ret;
}

int options_check(const Options *o, const char *cmd, uint32_t allowed)
{
    uint32_t bad = o->seen & ~allowed;
    int i;

    for (i = 0; i < OPT__COUNT; i++) {
        if (bad & (1u << i)) {
            cprdump_err("%s does not take %s", cmd, opt_names[i]);
            return -1;
        }
    }
    if (o->json && o->hex) {
        cprdump_err("--json and --hex exclude each other");
        return -1;
    }
    if (o->hex && o->select) {
        cprdump_err("--hex shows every byte: it takes no --header, "
                    "--sections, --fds, --ram or --devices");
        return -1;
    }
    return 0;
}
