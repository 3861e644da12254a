/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program built against the installed reader product alone
 * (libcprstate-reader: base + reader, a static archive): a load path
 * that never writes.  It opens and verifies every golden vector, checks
 * its record counts and generation against the vector's expected cprdump
 * text, then checks that one flipped byte is refused with a diagnostic.
 *
 * consumer-reader VECTORS_DIR
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cprstate.h>

/* The number after @label on a line of the expected text, or -1. */
static long long expected(const char *txt_path, const char *label)
{
    char line[512];
    long long value = -1;
    size_t n = strlen(label);
    FILE *f = fopen(txt_path, "r");

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        const char *p = line;

        while (*p == ' ') {
            p++;
        }
        if (strncmp(p, label, n) == 0) {
            value = strtoll(p + n, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static int check_vector(const char *dir, const char *name)
{
    char path[4096], txt[4096];
    char text[256];
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsArenaInfo info = CPRS_OPTS(CprsArenaInfo);
    CprsReader *r = NULL;
    size_t len = strlen(name);
    int ret;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(txt, sizeof(txt), "%s/%.*s.txt", dir, (int)(len - 5), name);
    ret = cprs_reader_open_path(path, NULL, &diag, &r);
    if (!ret) {
        ret = cprs_reader_verify(r, &diag);
    }
    if (!ret) {
        ret = cprs_reader_get_info(r, &info);
    }
    if (ret) {
        cprs_diag_format(&diag, text, sizeof(text));
        fprintf(stderr, "consumer-reader: %s: %s (%s)\n", name,
                cprs_strerror(ret), text);
        cprs_reader_close(r);
        return 1;
    }
    if ((long long)cprs_reader_fd_count(r) != expected(txt, "fd records:") ||
        (long long)cprs_reader_ramblock_count(r) !=
            expected(txt, "RAM blocks:") ||
        (long long)cprs_reader_vfio_count(r) !=
            expected(txt, "vfio devices:") ||
        (long long)cprs_reader_devstate_count(r) !=
            expected(txt, "Device state:") ||
        (long long)info.generation != expected(txt, "Generation:")) {
        fprintf(stderr, "consumer-reader: %s: counts differ from %s\n",
                name, txt);
        cprs_reader_close(r);
        return 1;
    }
    printf("consumer-reader: %s: verified, %" PRIu32 " fds, %" PRIu32
           " RAM blocks, %" PRIu32 " vfio, %" PRIu32 " device states\n",
           name, cprs_reader_fd_count(r), cprs_reader_ramblock_count(r),
           cprs_reader_vfio_count(r), cprs_reader_devstate_count(r));
    cprs_reader_close(r);
    return 0;
}

/* One byte of the header flipped: refused, with a diagnostic. */
static int check_refused(const char *dir, const char *name)
{
    char path[4096];
    unsigned char buf[64 * 1024];
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    size_t size;
    FILE *f;
    int ret;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        return 1;
    }
    size = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (size < sizeof(CprsWireHeader)) {
        return 1;
    }
    buf[offsetof(CprsWireHeader, generation)] ^= 0x40;
    ret = cprs_reader_open_buffer(buf, size, NULL, &diag, &r);
    if (!ret) {
        ret = cprs_reader_verify(r, &diag);
    }
    cprs_reader_close(r);
    if (ret != -EBADMSG || !diag.reason) {
        fprintf(stderr, "consumer-reader: %s with a flipped byte: %d\n",
                name, ret);
        return 1;
    }
    printf("consumer-reader: %s with a flipped byte: refused at offset %"
           PRIu64 ": %s\n", name, diag.offset, diag.reason);
    return 0;
}

int main(int argc, char **argv)
{
    struct dirent **names;
    int n, i, checked = 0, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer-reader VECTORS_DIR\n");
        return 2;
    }
    n = scandir(argv[1], &names, NULL, alphasort);
    if (n < 0) {
        perror(argv[1]);
        return 1;
    }
    for (i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);

        if (len > 5 && !strcmp(names[i]->d_name + len - 5, ".cprs")) {
            failed += check_vector(argv[1], names[i]->d_name);
            if (!checked) {
                failed += check_refused(argv[1], names[i]->d_name);
            }
            checked++;
        }
        free(names[i]);
    }
    free(names);
    if (!checked) {
        fprintf(stderr, "consumer-reader: no .cprs vector in %s\n", argv[1]);
        return 1;
    }
    return failed ? 1 : 0;
}
