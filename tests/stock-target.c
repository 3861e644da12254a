/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stock-target.c - a stand-in for a QEMU 10.2 without libcprstate, as the
 * target of a cpr-exec (spec/fail-safe.rst F2.4, tests of F6.2).
 *
 * It is not linked with libcprstate and carries no capability note; it
 * carries the marks of QEMU's cpr code (the names QEMU's binary holds),
 * and reads QEMU_CPR_EXEC_STATE with its own small QCPR reader that does
 * what QEMU 10.2's vmstate reader does (shared/reference §2, §7): check
 * the magic and version, read the fd list, then read subsections while
 * the next byte is 0x05, and stop there without looking further.  Built
 * with -DSTOCK_STUB it is a QEMU without iommufd: its vfio subsection
 * has no fields.  Then it checks what tests/cprs-vmm.c left: every RAM
 * byte, the eventfd counts, the data in the pipe and the socketpair.
 *
 * usage: as cprs-vmm's next image (--blocks --block-mib --resume ...).
 * Exit 0 when everything was read and verified, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm-guest.h"

/* The marks pre-flight looks for, kept whole in .rodata (F2.4). */
__attribute__((used)) static const char mark_state[] = "QEMU_CPR_EXEC_STATE";
__attribute__((used)) static const char mark_subsec[] =
    "CprState/vfio devices";
/* The name of one fd's vmstate in QEMU's migration/cpr.c. */
__attribute__((used)) static const char mark_cpr_fd[] = "cpr fd";
#ifndef STOCK_STUB
__attribute__((used)) static const char mark_device[] = "cpr vfio device";
#define FORM "full"
#else
#define FORM "stub"
#endif

#define MAX_FDS 256

typedef struct Rec {
    char name[256];
    int32_t id;
    int32_t fd;
} Rec;

typedef struct Stream {
    const uint8_t *p;
    size_t len;
    size_t pos;
} Stream;

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "stock-target: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* Like QEMU's QEMUFile at EOF: a short read is an error. */
static uint8_t get8(Stream *s)
{
    if (s->pos >= s->len) {
        fail("%s", "truncated CPR state");
    }
    return s->p[s->pos++];
}

static uint32_t get32(Stream *s)
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        v = v << 8 | get8(s);
    }
    return v;
}

static void get_name(Stream *s, char *buf, size_t size)
{
    uint32_t n = get32(s), i;

    if (!n || n > size) {
        fail("%s", "bad name length");
    }
    for (i = 0; i < n; i++) {
        buf[i] = (char)get8(s);
    }
    buf[n - 1] = '\0';
}

static int find_fd(const Rec *r, int n, const char *name, int32_t id)
{
    int i;

    for (i = 0; i < n; i++) {
        if (r[i].id == id && !strcmp(r[i].name, name)) {
            return r[i].fd;
        }
    }
    fail("no fd for %s in the CPR state", name);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "blocks", required_argument, NULL, 'b' },
        { "block-mib", required_argument, NULL, 'm' },
        { "resume", required_argument, NULL, 'R' },
        { "no-vfio", no_argument, NULL, 'V' },
        { "cleanup", required_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 },
    };
    static Rec recs[MAX_FDS];
    const char *val = getenv(mark_state), *cleanup = NULL;
    int blocks = 4, mib = 16, hop = 0, no_vfio = 0, nrec = 0, nvfio = 0;
    int c, fd, b, len;
    char name[256], subsec[256], msg[64], want[64], path[4200];
    uint64_t size, pages, p, w, v;
    struct stat st;
    uint8_t *buf, *ram;
    Stream s;
    uint32_t ver, devid = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            blocks = atoi(optarg);
            break;
        case 'm':
            mib = atoi(optarg);
            break;
        case 'R':
            hop = atoi(optarg);
            break;
        case 'V':
            no_vfio = 1;
            break;
        case 'C':
            cleanup = optarg;
            break;
        default:
            break;          /* cprs-vmm's other options: not ours */
        }
    }
    if (cleanup) {
        snprintf(path, sizeof(path), "%s/qemu-wrapper", cleanup);
        unlink(path);
        rmdir(cleanup);
    }
    if (!val) {
        fail("%s", "no QEMU_CPR_EXEC_STATE: not a cpr-exec target");
    }
    /* QEMU: qemu_strtoi, then lseek(0) and read through a QEMUFile. */
    fd = atoi(val);
    if (fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        fail("%s", "QEMU_CPR_EXEC_STATE is not an open file");
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        fail("%s", "cannot read the CPR state");
    }
    s = (Stream) { buf, (size_t)st.st_size, 0 };
    v = get32(&s);
    if (v != 0x51435052) {
        fprintf(stderr, "stock-target: Not a migration stream (bad magic "
                "%" PRIx64 ")\n", v);
        return 1;
    }
    if (get32(&s) != 1) {
        fail("%s", "unsupported CPR state version");
    }
    while (get8(&s)) {
        if (nrec == MAX_FDS) {
            fail("%s", "too many fds");
        }
        get_name(&s, recs[nrec].name, sizeof(recs[nrec].name));
        recs[nrec].id = (int32_t)get32(&s);
        recs[nrec].fd = (int32_t)get32(&s);
        nrec++;
    }
    /* Subsections while the next byte is 0x05; nothing after is read. */
    while (s.pos < s.len && s.p[s.pos] == 0x05) {
        s.pos++;
        len = get8(&s);
        for (b = 0; b < len; b++) {
            subsec[b] = (char)get8(&s);
        }
        subsec[len] = '\0';
        if (strncmp(subsec, "CprState", 8)) {
            break;
        }
        if (strcmp(subsec, mark_subsec)) {
            fail("unknown subsection %s", subsec);
        }
        ver = get32(&s);
        if ((ver & 0xff) != 1) {
            fail("%s", "unsupported vfio subsection version");
        }
#ifndef STOCK_STUB
        while (get8(&s)) {
            get_name(&s, name, sizeof(name));
            devid = get32(&s);
            get32(&s);
            get32(&s);
            nvfio++;
        }
#endif
    }
#ifndef STOCK_STUB
    if (!no_vfio && (nvfio != 1 || devid != 1)) {
        fail("the %s record is missing", mark_device);
    }
#else
    (void)nvfio;
    (void)devid;
    (void)no_vfio;
#endif
    printf("stock-target: read a QCPR stream as a QEMU 10.2 (%s vfio form) "
           "does: %d fds, stopped at byte %zu of %zu\n", FORM, nrec, s.pos,
           s.len);

    /* The guest, as cprs-vmm left it at hop - 1. */
    size = (uint64_t)mib << 20;
    pages = size / VMM_PAGE;
    for (b = 0; b < blocks; b++) {
        vmm_block_name(name, sizeof(name), b);
        ram = mmap(NULL, size, PROT_READ, MAP_SHARED,
                   find_fd(recs, nrec, name, 0), 0);
        if (ram == MAP_FAILED) {
            fail("cannot map %s", name);
        }
        for (p = 0; p < pages; p++) {
            for (w = 0; w < VMM_PAGE / 8; w++) {
                if (((const uint64_t *)(ram + p * VMM_PAGE))[w] !=
                    vmm_pattern(b, p, w, hop - 1)) {
                    fail("guest RAM of %s differs", name);
                }
            }
        }
        munmap(ram, size);
    }
    for (b = 0; b < 2; b++) {
        if (read(find_fd(recs, nrec, "irqfd", b), &v, 8) != 8 ||
            v != vmm_irq_count(hop - 1)) {
            fail("%s", "an eventfd count was lost");
        }
    }
    len = vmm_console_text(want, sizeof(want), hop - 1);
    if (read(find_fd(recs, nrec, "console", 0), msg, (size_t)len) != len ||
        memcmp(msg, want, (size_t)len) ||
        recv(find_fd(recs, nrec, "chardev", 1), msg, (size_t)len, 0) !=
        len || memcmp(msg, want, (size_t)len)) {
        fail("%s", "device data was lost");
    }
    printf("stock-target: hop %d: guest RAM (%d x %d MiB) and devices "
           "verified\n", hop, blocks, mib);
    free(buf);
    return 0;
}
