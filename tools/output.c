/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output.c - messages, the buffered report, exit codes, escapes and the
 * names the text and JSON output share.  Calls nothing else of cprdump.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"

static const char *prog = "cprdump";
static bool quiet;

void output_init(const char *name, bool be_quiet)
{
    prog = name;
    quiet = be_quiet;
}

const char *output_prog(void)
{
    return prog;
}

static void message(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static void message(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cprdump_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    message(fmt, ap);
    va_end(ap);
}

void cprdump_note(const char *fmt, ...)
{
    va_list ap;

    if (quiet) {
        return;
    }
    va_start(ap, fmt);
    message(fmt, ap);
    va_end(ap);
}

int usage_error(int exit_code, const char *fmt, ...)
{
    va_list ap;

    if (fmt) {
        va_start(ap, fmt);
        message(fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "Try '%s --help'.\n", prog);
    return exit_code;
}

int cprdump_exit_code(int err)
{
    switch (err) {
    case 0:
        return CPRDUMP_EXIT_OK;
    case -EBADMSG:
    case -E2BIG:
        return CPRDUMP_EXIT_INVALID;
    case -EPROTONOSUPPORT:
        return CPRDUMP_EXIT_UNSUPPORTED;
    default:
        return CPRDUMP_EXIT_ERROR;
    }
}

int cprdump_exit_merge(int a, int b)
{
    /* Rank: ok < unsupported < invalid < error. */
    static const int rank[] = {
        [CPRDUMP_EXIT_OK] = 0, [CPRDUMP_EXIT_UNSUPPORTED] = 1,
        [CPRDUMP_EXIT_INVALID] = 2, [CPRDUMP_EXIT_ERROR] = 3,
    };

    return rank[a] >= rank[b] ? a : b;
}

bool dump_begin(Dump *d)
{
    d->errors = 0;
    d->text = NULL;
    d->len = 0;
    d->out = open_memstream(&d->text, &d->len);
    if (!d->out) {
        cprdump_err("out of memory");
        return false;
    }
    return true;
}

bool dump_end(Dump *d)
{
    bool ok = true;

    /* Only now are text and len those of the whole output. */
    if (fclose(d->out)) {
        cprdump_err("out of memory");
        ok = false;
    } else if (fwrite(d->text, 1, d->len, stdout) != d->len ||
               fflush(stdout)) {
        cprdump_err("cannot write the output: %s", strerror(errno));
        ok = false;
    }
    free(d->text);
    d->text = NULL;
    d->out = NULL;
    return ok;
}

void dump_discard(Dump *d)
{
    if (d->out) {
        fclose(d->out);
    }
    free(d->text);
    d->text = NULL;
    d->out = NULL;
}

/* ---- Escapes ----------------------------------------------------------- */

/* Room for a path or a name, every byte escaped, and a NUL. */
#define TX_SIZE (4 * 4096 + 8)

const char *txn(const char *s, size_t len)
{
    static char slots[TX_SLOTS][TX_SIZE];
    static unsigned next;
    static const char hex[] = "0123456789abcdef";
    char *buf = slots[next++ % TX_SLOTS];
    const unsigned char *p = (const unsigned char *)s;
    size_t i, o = 0;

    for (i = 0; i < len && o + 8 < TX_SIZE; i++) {
        if (p[i] == '\\') {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            buf[o++] = (char)p[i];
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[p[i] >> 4];
            buf[o++] = hex[p[i] & 15];
        }
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

const char *tx(const char *s)
{
    return s ? txn(s, strlen(s)) : "(null)";
}

/* ---- Names ------------------------------------------------------------- */

void fd_flags_str(char *buf, size_t size, uint32_t flags)
{
    snprintf(buf, size, "%c%c%s", flags & CPRS_FD_F_IDENTITY ? 'I' : '-',
             flags & CPRS_FD_F_SEALS ? 'S' : '-',
             flags & ~CPRS_FD_F_KNOWN ? "?" : "");
}

void ram_flags_str(char *buf, size_t size, uint32_t flags)
{
    snprintf(buf, size, "%c%c%c%c%c%s",
             flags & CPRS_RAM_F_SHARED ? 's' : '-',
             flags & CPRS_RAM_F_RESIZEABLE ? 'r' : '-',
             flags & CPRS_RAM_F_PREALLOC ? 'p' : '-',
             flags & CPRS_RAM_F_NORESERVE ? 'n' : '-',
             flags & CPRS_RAM_F_READONLY ? 'o' : '-',
             flags & ~CPRS_RAM_F_KNOWN ? "?" : "");
}

const char *legacy_form_name(uint32_t form)
{
    static const char *const names[] = {
        [CPRS_LEGACY_VFIO_FULL] = "full",
        [CPRS_LEGACY_VFIO_STUB] = "stub",
        [CPRS_LEGACY_VFIO_NONE] = "none",
    };

    if (form < sizeof(names) / sizeof(names[0]) && names[form]) {
        return names[form];
    }
    return "unknown";
}

const char *mode_name(uint32_t mode)
{
    const char *name = cprs_mode_name(mode);

    return name ? name : "unknown";
}

const char *errno_name(int err)
{
    static const struct {
        int err;
        const char *name;
    } names[] = {
        { -EBADMSG, "EBADMSG" }, { -EPROTONOSUPPORT, "EPROTONOSUPPORT" },
        { -E2BIG, "E2BIG" }, { -ENOMEM, "ENOMEM" }, { -EINVAL, "EINVAL" },
        { -ENOENT, "ENOENT" }, { -EIO, "EIO" },
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].err == err) {
            return names[i].name;
        }
    }
    return "EOTHER";
}

void time_str(char *buf, size_t size, uint64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    char date[32];

    if (!ns || !gmtime_r(&sec, &tm)) {
        snprintf(buf, size, "unknown");
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%09" PRIu64 "Z", date, ns % 1000000000u);
}
