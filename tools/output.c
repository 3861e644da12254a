/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output.c - messages, the report's spool, exit codes, escapes and the
 * names the text and JSON output share.  Calls nothing else of cprdump.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- The report's spool ------------------------------------------------ */

struct Spool {
    char *buf;          /* the report, while in memory */
    size_t len;
    size_t cap;
    int fd;             /* the temporary file once spilled, else -1 */
    int err;            /* errno of the first failure, or 0 */
    const char *dir;    /* where the temporary file is */
};

/* An unlinked temporary file in $TMPDIR (else /tmp), or -1 (errno). */
static int spool_file(Spool *sp)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd;

    if (!dir || !*dir) {
        dir = "/tmp";
    }
    sp->dir = dir;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
                    errno != EINVAL)) {
        return fd;
    }
#endif
    if ((size_t)snprintf(path, sizeof(path), "%s/cprdump-XXXXXX", dir) >=
        sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) {
        unlink(path);
    }
    return fd;
}

int cprdump_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    ssize_t k;

    while (len) {
        k = write(fd, p, len);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            errno = k < 0 ? errno : EIO;
            return -errno;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* fopencookie() write: memory up to CPRDUMP_SPOOL_MEMORY, then the file. */
static ssize_t spool_write(void *cookie, const char *p, size_t n)
{
    Spool *sp = cookie;
    size_t cap;
    char *nb;

    if (sp->err) {
        errno = sp->err;
        return -1;
    }
    if (sp->fd < 0 && n <= CPRDUMP_SPOOL_MEMORY - sp->len) {
        if (sp->len + n > sp->cap) {
            cap = sp->cap ? sp->cap : 65536;
            while (cap < sp->len + n) {
                cap *= 2;
            }
            nb = realloc(sp->buf, cap);
            if (!nb) {
                sp->err = ENOMEM;
                errno = ENOMEM;
                return -1;
            }
            sp->buf = nb;
            sp->cap = cap;
        }
        memcpy(sp->buf + sp->len, p, n);
        sp->len += n;
        return (ssize_t)n;
    }
    if (sp->fd < 0) {
        sp->fd = spool_file(sp);
        if (sp->fd < 0 || cprdump_write_all(sp->fd, sp->buf, sp->len)) {
            sp->err = errno;
            return -1;
        }
        free(sp->buf);
        sp->buf = NULL;
        sp->len = sp->cap = 0;
    }
    if (cprdump_write_all(sp->fd, p, n)) {
        sp->err = errno;
        return -1;
    }
    return (ssize_t)n;
}

static void spool_free(Spool *sp)
{
    if (sp) {
        if (sp->fd >= 0) {
            close(sp->fd);
        }
        free(sp->buf);
        free(sp);
    }
}

/* Copy the spilled report from its start to stdout; -1 (errno) on failure. */
static int spool_copy_out(Spool *sp)
{
    char buf[65536];
    ssize_t n;

    if (lseek(sp->fd, 0, SEEK_SET) < 0) {
        return -1;
    }
    for (;;) {
        n = read(sp->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return (int)n;
        }
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
            return -1;
        }
    }
}

bool dump_begin(Dump *d)
{
    static const cookie_io_functions_t io = { .write = spool_write };

    d->errors = 0;
    d->out = NULL;
    d->spool = calloc(1, sizeof(*d->spool));
    if (d->spool) {
        d->spool->fd = -1;
        d->out = fopencookie(d->spool, "w", io);
    }
    if (!d->out) {
        spool_free(d->spool);
        d->spool = NULL;
        cprdump_err("out of memory");
        return false;
    }
    return true;
}

bool dump_end(Dump *d)
{
    Spool *sp = d->spool;
    bool ok = false;

    /* Only now is the spool the whole report. */
    if (fclose(d->out) || sp->err) {
        if (sp->fd < 0 && sp->err != ENOMEM) {
            cprdump_err("the report passed %zu MiB and no temporary file "
                        "could hold it in %s (set TMPDIR): %s",
                        CPRDUMP_SPOOL_MEMORY >> 20, tx(sp->dir),
                        strerror(sp->err));
        } else {
            cprdump_err("cannot hold the report%s%s: %s",
                        sp->fd >= 0 ? " in a temporary file in " : "",
                        sp->fd >= 0 ? tx(sp->dir) : "",
                        strerror(sp->err ? sp->err : errno));
        }
    } else if ((sp->fd < 0 ? fwrite(sp->buf, 1, sp->len, stdout) != sp->len
                           : spool_copy_out(sp) < 0) || fflush(stdout)) {
        cprdump_err("cannot write the output: %s", strerror(errno));
    } else {
        ok = true;
    }
    spool_free(sp);
    d->spool = NULL;
    d->out = NULL;
    return ok;
}

void dump_discard(Dump *d)
{
    if (d->out) {
        fclose(d->out);
    }
    spool_free(d->spool);
    d->spool = NULL;
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
