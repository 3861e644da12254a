/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-legacy.c - QEMU's legacy "QCPR" stream: real QEMU 10.2 captures
 * decode to exactly the records of their MANIFEST.txt, re-encode to the
 * same bytes and survive legacy -> arena -> legacy byte for byte; every
 * probe of the reference (and a few more) is rebuilt here byte by byte and
 * gets its exact verdict in strict and in lenient mode; truncation at every
 * offset of every capture; the builder, vfio records and the stream forms.
 *
 * Expected values come from the manifests and from the grammar (sizes,
 * offsets), computed here independently of the library.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

#define STRICT 0
#define LENIENT CPRS_LEGACY_F_LENIENT

/* ---- A byte builder for hand-made streams (independent of the lib) ---- */

typedef struct Bytes {
    uint8_t *p;
    size_t len;
} Bytes;

static void b_put(Bytes *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    assert_non_null(b->p);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void b_u8(Bytes *b, uint8_t v)
{
    b_put(b, &v, 1);
}

static void b_be32(Bytes *b, uint32_t v)
{
    uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

    b_put(b, x, 4);
}

static void b_header(Bytes *b)
{
    b_put(b, "QCPR", 4);
    b_be32(b, 1);
}

/* marker, namelen = strlen + 1, name and NUL, id, fd field. */
static void b_fd_rec(Bytes *b, const char *name, int32_t id, int32_t fd,
                     bool transfer)
{
    b_u8(b, 1);
    b_be32(b, (uint32_t)strlen(name) + 1);
    b_put(b, name, strlen(name) + 1);
    b_be32(b, (uint32_t)id);
    if (transfer) {
        b_u8(b, 0x20);
    } else {
        b_be32(b, (uint32_t)fd);
    }
}

static void b_vfio_rec(Bytes *b, const char *name, int32_t devid,
                       uint32_t ioas, uint32_t hwpt)
{
    b_u8(b, 1);
    b_be32(b, (uint32_t)strlen(name) + 1);
    b_put(b, name, strlen(name) + 1);
    b_be32(b, (uint32_t)devid);
    b_be32(b, ioas);
    b_be32(b, hwpt);
}

/* 0x05, length, "CprState/vfio devices", version. */
static void b_sub_header(Bytes *b, uint32_t version)
{
    b_u8(b, 0x05);
    b_u8(b, 21);
    b_put(b, "CprState/vfio devices", 21);
    b_be32(b, version);
}

/* A cpr-exec stream: one record with @namelen raw name bytes, fd @fd. */
static void raw_name_stream(Bytes *b, const void *name, uint32_t namelen,
                            int32_t fd)
{
    memset(b, 0, sizeof(*b));
    b_header(b);
    b_u8(b, 1);
    b_be32(b, namelen);
    b_put(b, name, namelen);
    b_be32(b, 0);
    b_be32(b, (uint32_t)fd);
    b_u8(b, 0);
    b_sub_header(b, 1);
    b_u8(b, 0);
}

/* The same with a proper C-string name. */
static void one_record_stream(Bytes *b, const char *name, int32_t fd)
{
    raw_name_stream(b, name, (uint32_t)strlen(name) + 1, fd);
}

/* ---- Manifests and captures ------------------------------------------- */

#define MAX_RECS 64

typedef struct ManRec {
    char name[512];
    uint32_t namelen;
    int32_t id;
    int32_t fd;
} ManRec;

typedef struct Manifest {
    bool transfer;
    uint32_t n;
    ManRec rec[MAX_RECS];
} Manifest;

/*
 * Parse "mode: cpr-exec|cpr-transfer" and the lines
 *   [i] name='NAME' (namelen=N incl. NUL) id=ID fd=FD
 * of the first record block.
 */
static void manifest_load(const char *dir, Manifest *m)
{
    char path[1400], line[2048];
    bool in_block = false, have_mode = false;
    const char *q, *e;
    unsigned idx;
    FILE *f;

    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "%s/MANIFEST.txt", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "mode: ", 6)) {
            m->transfer = !strncmp(line + 6, "cpr-transfer", 12);
            assert_true(m->transfer || !strncmp(line + 6, "cpr-exec", 8));
            have_mode = true;
        } else if (strstr(line, "Expected fd records")) {
            in_block = true;
        } else if (in_block && line[0] == '\n') {
            break;
        } else if (in_block) {
            ManRec *r = &m->rec[m->n];

            assert_true(m->n < MAX_RECS);
            assert_int_equal(sscanf(line, " [%u]", &idx), 1);
            assert_int_equal(idx, m->n);
            q = strstr(line, "name='");
            e = strstr(line, "' (namelen=");
            assert_non_null(q);
            assert_non_null(e);
            q += 6;
            assert_true(e > q && (size_t)(e - q) < sizeof(r->name));
            memcpy(r->name, q, (size_t)(e - q));
            r->name[e - q] = 0;
            assert_int_equal(sscanf(e, "' (namelen=%u incl. NUL) id=%d fd=%d",
                                    &r->namelen, &r->id, &r->fd), 3);
            assert_int_equal(r->namelen, strlen(r->name) + 1);
            m->n++;
        }
    }
    fclose(f);
    assert_true(have_mode);
    assert_true(m->n > 0);
}

/* Bytes of one fd record in the stream (spec L9). */
static size_t rec_size(const Manifest *m, uint32_t i)
{
    return 1 + 4 + m->rec[i].namelen + 4 + (m->transfer ? 1 : 4);
}

/* Offset of record @i's marker; @i == n gives the list terminator. */
static size_t rec_off(const Manifest *m, uint32_t i)
{
    size_t off = 8;
    uint32_t j;

    for (j = 0; j < i; j++) {
        off += rec_size(m, j);
    }
    return off;
}

/* Offset of the subsection: just after the 0x00 ending the fd list. */
static size_t sub_off(const Manifest *m)
{
    return rec_off(m, m->n) + 1;
}

typedef struct Capture {
    char dir[512];
    char file[16];
    Manifest man;
    uint8_t *buf;
    size_t size;
} Capture;

static Capture caps[32];
static unsigned n_caps;

static int load_captures(void **state)
{
    static const char *const files[] = {
        "capture.bin", "live.bin", "capture-2.bin",
    };
    char base[512], path[1200];
    struct dirent *de;
    Manifest man;
    unsigned i;
    DIR *d;

    (void)state;
    snprintf(base, sizeof(base), "%s/qemu-10.2", th_data_dir());
    d = opendir(base);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
        manifest_load(path, &man);
        for (i = 0; i < 3; i++) {
            Capture *c = &caps[n_caps];
            char fp[1300];

            snprintf(fp, sizeof(fp), "%s/%s", path, files[i]);
            if (access(fp, R_OK)) {
                continue;
            }
            assert_true(n_caps < 32);
            snprintf(c->dir, sizeof(c->dir), "%s", de->d_name);
            snprintf(c->file, sizeof(c->file), "%s", files[i]);
            c->man = man;
            c->buf = th_read_file(fp, &c->size);
            n_caps++;
        }
    }
    closedir(d);
    /* 5 scenarios: 4 capture.bin, 3 live.bin, 1 capture-2.bin, 1 g1. */
    assert_true(n_caps >= 9);
    return 0;
}

static int free_captures(void **state)
{
    unsigned i;

    (void)state;
    for (i = 0; i < n_caps; i++) {
        free(caps[i].buf);
    }
    n_caps = 0;
    return 0;
}

static int decode(const void *buf, size_t size, uint32_t flags,
                  CprsDiag *d, CprsLegacy **ret)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .flags = flags);

    *d = CPRS_OPTS(CprsDiag);
    return cprs_legacy_decode(buf, size, &o, d, ret);
}

/* Decoding must fail with exactly @err at @offset citing @clause. */
static void expect_fail(const void *buf, size_t size, uint32_t flags,
                        int err, uint64_t offset, const char *clause)
{
    CprsLegacy *lg = NULL;
    CprsDiag d;
    int ret = decode(buf, size, flags, &d, &lg);

    if (ret != err || d.offset != offset ||
        (clause && strcmp(d.clause, clause))) {
        fail_msg("flags %u: got %d at 0x%llx [%s] (%s), want %d at 0x%llx "
                 "[%s]", flags, ret, (unsigned long long)d.offset, d.clause,
                 d.reason, err, (unsigned long long)offset,
                 clause ? clause : "*");
    }
    assert_null(lg);
    assert_int_equal(d.error, err);
    assert_true(d.reason && d.reason[0]);
}

/* Decoding must succeed; returns the handle. */
static CprsLegacy *expect_ok(const void *buf, size_t size, uint32_t flags)
{
    CprsLegacy *lg = NULL;
    CprsDiag d;
    int ret = decode(buf, size, flags, &d, &lg);

    if (ret) {
        fail_msg("flags %u: got %d at 0x%llx [%s] %s", flags, ret,
                 (unsigned long long)d.offset, d.clause, d.reason);
    }
    assert_non_null(lg);
    return lg;
}

static void expect_warning(const CprsLegacy *lg, uint32_t i, uint64_t offset,
                           const char *clause)
{
    CprsDiag w = CPRS_OPTS(CprsDiag);

    assert_int_equal(cprs_legacy_warning_get(lg, i, &w), 0);
    if (w.offset != offset || strcmp(w.clause, clause)) {
        fail_msg("warning %u: at 0x%llx [%s] (%s), want 0x%llx [%s]", i,
                 (unsigned long long)w.offset, w.clause, w.reason,
                 (unsigned long long)offset, clause);
    }
    assert_int_equal(w.error, 0);
}

static CprsLegacyInfo info_of(const CprsLegacy *lg)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);

    assert_int_equal(cprs_legacy_get_info(lg, &li), 0);
    return li;
}

/* The fd records of @lg are those of the manifest, at their offsets. */
static void check_records(const CprsLegacy *lg, const Manifest *m)
{
    CprsFdInfo fi;
    uint64_t off;
    uint32_t i;

    assert_int_equal(cprs_legacy_fd_count(lg), m->n);
    for (i = 0; i < m->n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(lg, i, &fi), 0);
        assert_string_equal(fi.name, m->rec[i].name);
        assert_int_equal(fi.name_len + 1, m->rec[i].namelen);
        assert_int_equal(fi.id, m->rec[i].id);
        assert_int_equal(fi.slot, i);
        assert_int_equal(fi.kind, CPRS_FD_KIND_OTHER);
        assert_int_equal(fi.flags, 0);
        /* The sender's numbers are not in a cpr-transfer stream. */
        assert_int_equal(fi.fd, m->transfer ? -1 : m->rec[i].fd);
        assert_int_equal(cprs_legacy_fd_offset(lg, i, &off), 0);
        assert_int_equal(off, rec_off(m, i));
    }
    assert_int_equal(cprs_legacy_fd_get(lg, m->n, &fi), -EINVAL);
}

/* ---- Captures ---------------------------------------------------------- */

static void test_captures_decode(void **state)
{
    CprsLegacyInfo li;
    CprsLegacy *lg;
    size_t want;
    unsigned i;
    uint32_t j;

    (void)state;
    for (i = 0; i < n_caps; i++) {
        Capture *c = &caps[i];

        /* spec L9: 37 + sum(13 + L) bytes (cpr-exec), 10 + L transfer. */
        want = 37;
        for (j = 0; j < c->man.n; j++) {
            want += (c->man.transfer ? 10 : 13) + c->man.rec[j].namelen;
        }
        assert_int_equal(c->size, want);
        assert_int_equal(cprs_detect(c->buf, c->size), CPRS_DETECT_LEGACY);

        lg = expect_ok(c->buf, c->size, STRICT);
        li = info_of(lg);
        assert_int_equal(li.mode, c->man.transfer ? CPRS_MODE_TRANSFER :
                         CPRS_MODE_EXEC);
        assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_FULL);
        assert_int_equal(li.fd_count, c->man.n);
        assert_int_equal(li.vfio_count, 0);
        assert_int_equal(li.warning_count, 0);
        assert_int_equal(li.size, c->size);
        assert_int_equal(li.trailing, 0);
        check_records(lg, &c->man);
        cprs_legacy_free(lg);

        /* Lenient mode reads a clean capture the same way. */
        lg = expect_ok(c->buf, c->size, LENIENT);
        assert_int_equal(info_of(lg).warning_count, 0);
        check_records(lg, &c->man);
        cprs_legacy_free(lg);
    }
}

static void test_captures_reencode(void **state)
{
    CprsLegacy *lg;
    void *out;
    size_t size;
    unsigned i;

    (void)state;
    for (i = 0; i < n_caps; i++) {
        lg = expect_ok(caps[i].buf, caps[i].size, STRICT);
        assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
        assert_int_equal(size, caps[i].size);
        assert_memory_equal(out, caps[i].buf, size);
        free(out);
        cprs_legacy_free(lg);
    }
}

static void test_captures_arena_roundtrip(void **state)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsLegacy *lg, *back;
    CprsWriter *w;
    CprsReader *r;
    CprsFdInfo fi;
    void *arena, *out;
    size_t asize, size;
    unsigned i;
    uint32_t j;

    (void)state;
    for (i = 0; i < n_caps; i++) {
        Capture *c = &caps[i];

        lg = expect_ok(c->buf, c->size, STRICT);
        assert_int_equal(cprs_legacy_to_arena(lg, &wo, &d, &w), 0);
        assert_int_equal(cprs_writer_finish_buffer(w, &arena, &asize), 0);
        cprs_writer_free(w);
        assert_int_equal(cprs_detect(arena, asize), CPRS_DETECT_ARENA);

        assert_int_equal(cprs_reader_open_buffer(arena, asize, NULL, &d, &r),
                         0);
        assert_int_equal(cprs_reader_verify(r, &d), 0);
        assert_int_equal(cprs_reader_get_info(r, &ai), 0);
        assert_int_equal(ai.mode, c->man.transfer ? CPRS_MODE_TRANSFER :
                         CPRS_MODE_EXEC);
        assert_int_equal(cprs_reader_fd_count(r), c->man.n);
        assert_int_equal(cprs_reader_vfio_count(r), 0);
        for (j = 0; j < c->man.n; j++) {
            fi = CPRS_OPTS(CprsFdInfo);
            assert_int_equal(cprs_reader_fd_get(r, j, &fi), 0);
            assert_string_equal(fi.name, c->man.rec[j].name);
            assert_int_equal(fi.id, c->man.rec[j].id);
            assert_int_equal(fi.slot, j);
            assert_int_equal(fi.fd, c->man.transfer ? -1 : c->man.rec[j].fd);
            assert_int_equal(fi.kind, CPRS_FD_KIND_OTHER);
            assert_int_equal(fi.flags, 0);
        }

        assert_int_equal(cprs_legacy_from_reader(r, NULL, &d, &back), 0);
        assert_int_equal(cprs_legacy_encode(back, NULL, &out, &size), 0);
        assert_int_equal(size, c->size);
        assert_memory_equal(out, c->buf, size);
        /* Built records have no stream offset. */
        if (c->man.n) {
            uint64_t off;

            assert_int_equal(cprs_legacy_fd_offset(back, 0, &off), -ENOENT);
        }
        free(out);
        cprs_legacy_free(back);
        cprs_reader_close(r);
        free(arena);
        cprs_legacy_free(lg);
    }
}

/*
 * Truncation at every offset.  Strict: always -EBADMSG where the data
 * ends.  Lenient: QEMU's reader silently stops at the end of the fd list
 * and inside a subsection header, and a stream ending right after the
 * subsection version is the header-only form.
 */
static void test_captures_truncated(void **state)
{
    CprsLegacyInfo li;
    CprsLegacy *lg;
    size_t k, sub;
    unsigned i;

    (void)state;
    for (i = 0; i < n_caps; i++) {
        Capture *c = &caps[i];

        sub = sub_off(&c->man);
        assert_int_equal(c->buf[sub], 0x05);
        assert_int_equal(c->size, sub + 2 + 21 + 4 + 1);
        for (k = 0; k < c->size; k++) {
            expect_fail(c->buf, k, STRICT, -EBADMSG, k, NULL);

            if (k < sub || (k >= sub + 23 && k < sub + 27)) {
                expect_fail(c->buf, k, LENIENT, -EBADMSG, k, NULL);
                /* The all-forms flag does not excuse truncation. */
                expect_fail(c->buf, k, CPRS_LEGACY_F_ALL_FORMS, -EBADMSG, k,
                            NULL);
                continue;
            }
            lg = expect_ok(c->buf, k, LENIENT);
            li = info_of(lg);
            check_records(lg, &c->man);
            if (k == sub + 27) {
                assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_STUB);
                assert_int_equal(li.warning_count, 1);
                expect_warning(lg, 0, k, "L5.6");
                assert_int_equal(li.size, k);
                assert_int_equal(li.trailing, 0);
            } else {
                assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_NONE);
                assert_int_equal(li.size, sub);
                assert_int_equal(li.trailing, k - sub);
                expect_warning(lg, 0, sub, "L5.6");
                if (k == sub) {
                    assert_int_equal(li.warning_count, 1);
                } else {
                    assert_int_equal(li.warning_count, 2);
                    expect_warning(lg, 1, sub, "L5.2");
                }
            }
            cprs_legacy_free(lg);

            /* Strict with every form allowed: only the two forms pass. */
            if (k == sub || k == sub + 27) {
                lg = expect_ok(c->buf, k, CPRS_LEGACY_F_ALL_FORMS);
                assert_int_equal(info_of(lg).warning_count, 0);
                assert_int_equal(info_of(lg).vfio_form, k == sub ?
                                 CPRS_LEGACY_VFIO_NONE :
                                 CPRS_LEGACY_VFIO_STUB);
                cprs_legacy_free(lg);
            } else {
                expect_fail(c->buf, k, CPRS_LEGACY_F_ALL_FORMS, -EBADMSG, k,
                            NULL);
            }
        }
    }
}

static int memfd_with(const void *buf, size_t size)
{
    int fd = memfd_create("QEMU_CPR_EXEC_STATE", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    return fd;
}

static void test_decode_fd(void **state)
{
    CprsLegacyOpts small = CPRS_OPTS(CprsLegacyOpts, .max_size = 100);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    Capture *c = &caps[0];
    CprsLegacy *lg;
    char path[64];
    int fd, fd2, p[2];

    (void)state;
    fd = memfd_with(c->buf, c->size);
    /* QEMU leaves the offset at the end of the data (L2.1). */
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)c->size);
    assert_int_equal(cprs_legacy_decode_fd(fd, NULL, &d, &lg), 0);
    check_records(lg, &c->man);
    cprs_legacy_free(lg);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)c->size);

    /* A new open file description through /proc, as cprdump does. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    fd2 = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd2 >= 0);
    assert_int_equal(cprs_legacy_decode_fd(fd2, NULL, &d, &lg), 0);
    check_records(lg, &c->man);
    cprs_legacy_free(lg);
    close(fd2);

    /* Limits: one byte over max_size is refused. */
    assert_true(c->size > 100);
    assert_int_equal(cprs_legacy_decode_fd(fd, &small, &d, &lg), -E2BIG);
    small.max_size = c->size;
    assert_int_equal(cprs_legacy_decode_fd(fd, &small, &d, &lg), 0);
    cprs_legacy_free(lg);
    small.max_size = c->size - 1;
    assert_int_equal(cprs_legacy_decode_fd(fd, &small, &d, &lg), -E2BIG);
    close(fd);

    /* A pipe cannot pread: read to EOF. */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], c->buf, c->size), (ssize_t)c->size);
    close(p[1]);
    assert_int_equal(cprs_legacy_decode_fd(p[0], NULL, &d, &lg), 0);
    check_records(lg, &c->man);
    cprs_legacy_free(lg);
    close(p[0]);

    assert_int_equal(cprs_legacy_decode_fd(-1, NULL, &d, &lg), -EINVAL);
    assert_int_equal(d.error, -EINVAL);
}

/* ---- Probes of the reference (section 7), rebuilt byte by byte -------- */

static Capture *exec_capture(void)
{
    unsigned i;

    for (i = 0; i < n_caps; i++) {
        if (!caps[i].man.transfer && !strcmp(caps[i].file, "capture.bin") &&
            !strcmp(caps[i].dir, "a-q35-memfd")) {
            return &caps[i];
        }
    }
    fail_msg("a-q35-memfd/capture.bin missing");
    return NULL;
}

static Capture *transfer_capture(void)
{
    unsigned i;

    for (i = 0; i < n_caps; i++) {
        if (caps[i].man.transfer) {
            return &caps[i];
        }
    }
    fail_msg("no cpr-transfer capture");
    return NULL;
}

/* A copy of @c with @n bytes at @off replaced by @p. */
static uint8_t *patched(const Capture *c, size_t off, const void *p, size_t n)
{
    uint8_t *b = malloc(c->size);

    assert_non_null(b);
    memcpy(b, c->buf, c->size);
    assert_true(off + n <= c->size);
    memcpy(b + off, p, n);
    return b;
}

/* Both modes give the same error. */
static void expect_fail_both(const void *buf, size_t size, int err,
                             uint64_t offset, const char *clause)
{
    expect_fail(buf, size, STRICT, err, offset, clause);
    expect_fail(buf, size, LENIENT, err, offset, clause);
}

static void test_probe_header(void **state)
{
    static const uint8_t v2[] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 2 };
    static const uint8_t v0[] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 0 };
    static const uint8_t big[] = { 'Q', 'C', 'P', 'R', 1, 0, 0, 1 };
    Capture *c = exec_capture();
    uint8_t *b;

    (void)state;
    /* Empty input: QEMU says "bad magic 0". */
    expect_fail_both("", 0, -EBADMSG, 0, "L3.1");
    expect_fail_both("XY", 2, -EBADMSG, 0, "L3.1");
    /* A prefix of the magic is a truncated stream. */
    expect_fail_both("QC", 2, -EBADMSG, 2, "L7");
    b = patched(c, 3, "S", 1);
    expect_fail_both(b, c->size, -EBADMSG, 0, "L3.1");
    free(b);
    b = patched(c, 0, "\x89" "CPRS", 5);
    expect_fail_both(b, c->size, -EBADMSG, 0, "L3.1");
    free(b);
    expect_fail_both(v2, sizeof(v2), -EPROTONOSUPPORT, 4, "L3.2");
    expect_fail_both(v0, sizeof(v0), -EBADMSG, 4, "L3.2");
    expect_fail_both(big, sizeof(big), -EPROTONOSUPPORT, 4, "L3.2");
    b = patched(c, 4, "\0\0\0\2", 4);
    expect_fail_both(b, c->size, -EPROTONOSUPPORT, 4, "L3.2");
    free(b);
}

static void test_probe_names(void **state)
{
    Capture *c = exec_capture();
    CprsLegacy *lg;
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    Bytes b;
    char *name;
    uint8_t *p;

    (void)state;
    /* namelen 0 crashed QEMU (SIGSEGV): the name pointer is garbage. */
    p = patched(c, 9, "\0\0\0\0", 4);
    expect_fail_both(p, c->size, -EBADMSG, 9, "L4.3");
    free(p);
    /* namelen 0xffffffff aborted QEMU in g_malloc. */
    p = patched(c, 9, "\xff\xff\xff\xff", 4);
    expect_fail_both(p, c->size, -E2BIG, 9, "L4.3");
    free(p);
    /* namelen just past the remaining bytes: truncation, at the end. */
    p = patched(c, 0x97, "\0\0\0\x30", 4);
    expect_fail_both(p, c->size, -EBADMSG, c->size, "L7");
    free(p);

    /* name-without-NUL: QEMU accepted it and over-read later. */
    raw_name_stream(&b, "ram0", 4, 11);
    expect_fail_both(b.p, b.len, -EBADMSG, 8 + 1 + 4 + 3, "L4.4");
    free(b.p);

    /* A NUL inside: QEMU would see "ra". */
    raw_name_stream(&b, "ra\0m0", 6, 11);
    expect_fail_both(b.p, b.len, -EBADMSG, 8 + 1 + 4 + 2, "L4.4");
    free(b.p);

    /* Outside printable ASCII: strict refuses, lenient warns. */
    one_record_stream(&b, "r\x01m0", 11);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, 8 + 1 + 4 + 1, "L4.4");
    lg = expect_ok(b.p, b.len, LENIENT);
    assert_int_equal(info_of(lg).warning_count, 1);
    expect_warning(lg, 0, 8 + 1 + 4 + 1, "L4.4");
    assert_int_equal(cprs_legacy_fd_get(lg, 0, &fi), 0);
    assert_string_equal(fi.name, "r\x01m0");
    cprs_legacy_free(lg);
    free(b.p);

    /* The longest name allowed: CPRS_MAX_NAME_LEN bytes plus its NUL. */
    name = malloc(CPRS_MAX_NAME_LEN + 2);
    assert_non_null(name);
    memset(name, 'n', CPRS_MAX_NAME_LEN);
    name[CPRS_MAX_NAME_LEN] = 0;
    one_record_stream(&b, name, 11);
    lg = expect_ok(b.p, b.len, STRICT);
    assert_int_equal(cprs_legacy_fd_get(lg, 0, &fi), 0);
    assert_int_equal(fi.name_len, CPRS_MAX_NAME_LEN);
    cprs_legacy_free(lg);
    free(b.p);
    /* One byte more is over the limit. */
    memset(name, 'n', CPRS_MAX_NAME_LEN + 1);
    name[CPRS_MAX_NAME_LEN + 1] = 0;
    one_record_stream(&b, name, 11);
    expect_fail_both(b.p, b.len, -E2BIG, 9, "L4.3");
    free(b.p);
    free(name);
}

static void test_probe_fds(void **state)
{
    Capture *c = exec_capture();
    Capture *t = transfer_capture();
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg;
    Bytes b = { 0 };
    uint8_t *p;
    int fd;

    (void)state;
    /* A negative fd hit an assertion in QEMU's fd walk (SIGABRT). */
    p = patched(c, 0x24, "\xff\xff\xff\xff", 4);
    expect_fail_both(p, c->size, -EBADMSG, 0x24, "L4.6");
    free(p);
    /* The last record's fd, negative in another way. */
    p = patched(c, 0xa4, "\x80\0\0\0", 4);
    expect_fail_both(p, c->size, -EBADMSG, 0xa4, "L4.6");
    free(p);

    /* Forcing cpr-transfer on a cpr-exec stream: not a service byte. */
    o.mode = CPRS_MODE_TRANSFER;
    assert_int_equal(cprs_legacy_decode(c->buf, c->size, &o, &d, &lg),
                     -EBADMSG);
    assert_int_equal(d.offset, 0x24);
    assert_string_equal(d.clause, "L4.7");
    /* A wrong service byte in a cpr-transfer stream. */
    p = patched(t, 0x44, "\x21", 1);
    expect_fail_both(p, t->size, -EBADMSG, 0x44, "L4.7");
    free(p);

    /* CHECK_FDS: the fd must be open here. */
    fd = memfd_create("probe", MFD_CLOEXEC);
    assert_true(fd >= 0);
    one_record_stream(&b, "ram0", fd);
    o = CPRS_OPTS(CprsLegacyOpts, .flags = CPRS_LEGACY_F_CHECK_FDS);
    assert_int_equal(cprs_legacy_decode(b.p, b.len, &o, &d, &lg), 0);
    cprs_legacy_free(lg);
    close(fd);
    assert_int_equal(cprs_legacy_decode(b.p, b.len, &o, &d, &lg), -EBADMSG);
    assert_int_equal(d.offset, 8 + 1 + 4 + 5 + 4);
    assert_string_equal(d.clause, "L4.6");
    /* Without the flag the number is just a number. */
    assert_int_equal(cprs_legacy_decode(b.p, b.len, NULL, &d, &lg), 0);
    cprs_legacy_free(lg);
    free(b.p);
}

static void test_probe_markers_and_limits(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .max_records = 2);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    Capture *c = exec_capture();
    CprsLegacy *lg;
    void *out;
    size_t size;
    uint8_t *p;

    (void)state;
    /* marker-0x02: QEMU reads any non-zero byte as "element follows". */
    p = patched(c, rec_off(&c->man, 2), "\x02", 1);
    expect_fail(p, c->size, STRICT, -EBADMSG, rec_off(&c->man, 2), "L4.1");
    lg = expect_ok(p, c->size, LENIENT);
    assert_int_equal(info_of(lg).warning_count, 1);
    expect_warning(lg, 0, rec_off(&c->man, 2), "L4.1");
    check_records(lg, &c->man);
    /* Encoding writes the canonical marker back. */
    assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
    assert_int_equal(size, c->size);
    assert_memory_equal(out, c->buf, size);
    free(out);
    cprs_legacy_free(lg);
    free(p);

    /* A marker 0xff in the vfio list. */
    p = patched(c, c->size - 1, "\xff", 1);
    expect_fail(p, c->size, STRICT, -EBADMSG, c->size - 1, "L4.1");
    /* Lenient: an element follows, but the data ends. */
    expect_fail(p, c->size, LENIENT, -EBADMSG, c->size, "L7");
    free(p);

    /* The record count is capped; opts may lower the cap. */
    assert_int_equal(cprs_legacy_decode(c->buf, c->size, &o, &d, &lg),
                     -E2BIG);
    assert_int_equal(d.offset, rec_off(&c->man, 2));
    assert_int_equal(d.record, 2);
    assert_string_equal(d.clause, "L4.2");
    o.max_records = c->man.n;
    assert_int_equal(cprs_legacy_decode(c->buf, c->size, &o, &d, &lg), 0);
    cprs_legacy_free(lg);
    /* ... never raise it. */
    o.max_records = UINT32_MAX;
    assert_int_equal(cprs_legacy_decode(c->buf, c->size, &o, &d, &lg), 0);
    cprs_legacy_free(lg);
}

static void test_probe_end(void **state)
{
    Capture *c = exec_capture();
    size_t sub = sub_off(&c->man);
    CprsLegacyInfo li;
    CprsLegacy *lg;
    Bytes b = { 0 };
    void *out;
    size_t size;

    (void)state;
    /* trailing-garbage: QEMU never reads past the last subsection. */
    b_put(&b, c->buf, c->size);
    b_put(&b, "garbage", 7);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, c->size, "L6");
    lg = expect_ok(b.p, b.len, LENIENT);
    li = info_of(lg);
    assert_int_equal(li.size, c->size);
    assert_int_equal(li.trailing, 7);
    assert_int_equal(li.warning_count, 1);
    expect_warning(lg, 0, c->size, "L6");
    assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
    assert_int_equal(size, c->size);
    assert_memory_equal(out, c->buf, size);
    free(out);
    cprs_legacy_free(lg);
    free(b.p);

    /* no-subsection, with garbage where it should be. */
    memset(&b, 0, sizeof(b));
    b_put(&b, c->buf, sub);
    b_put(&b, "\x07zz", 3);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, sub, "L5.6");
    expect_fail(b.p, b.len, CPRS_LEGACY_F_ALL_FORMS, -EBADMSG, sub, "L6");
    lg = expect_ok(b.p, b.len, LENIENT);
    li = info_of(lg);
    assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_NONE);
    assert_int_equal(li.trailing, 3);
    assert_int_equal(li.warning_count, 2);
    expect_warning(lg, 0, sub, "L5.6");
    expect_warning(lg, 1, sub, "L6");
    /* NONE encodes as the bare fd list. */
    assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
    assert_int_equal(size, sub);
    assert_memory_equal(out, c->buf, sub);
    free(out);
    cprs_legacy_free(lg);
    free(b.p);
}

/* The capture's fd list followed by @sub_len bytes of a new subsection. */
static void with_sub(Bytes *b, const Capture *c, const void *sub,
                     size_t sub_len)
{
    memset(b, 0, sizeof(*b));
    b_put(b, c->buf, sub_off(&c->man));
    b_put(b, sub, sub_len);
}

/* ... with the vfio subsection at @version and an empty list. */
static void with_version(Bytes *b, const Capture *c, uint32_t version)
{
    memset(b, 0, sizeof(*b));
    b_put(b, c->buf, sub_off(&c->man));
    b_sub_header(b, version);
    b_u8(b, 0);
}

static void test_probe_subsections(void **state)
{
    Capture *c = exec_capture();
    size_t s = sub_off(&c->man);
    CprsLegacyInfo li;
    CprsLegacy *lg;
    Bytes b, v;
    void *out;
    size_t size;

    (void)state;
    /* CprState/foo: QEMU fails ("does not exist"). */
    with_sub(&b, c, "\x05\x0c" "CprState/foo" "\0\0\0\1\0", 19);
    expect_fail_both(b.p, b.len, -EPROTONOSUPPORT, s + 2, "L5.3");
    free(b.p);
    /* A shorter name with the right prefix is unknown too. */
    with_sub(&b, c, "\x05\x0d" "CprState/vfio" "\0\0\0\1\0", 20);
    expect_fail_both(b.p, b.len, -EPROTONOSUPPORT, s + 2, "L5.3");
    free(b.p);

    /* Versions: 2 is too new, 0 too old; QEMU keeps only the low byte. */
    with_version(&b, c, 2);
    expect_fail_both(b.p, b.len, -EPROTONOSUPPORT, s + 23, "L5.4");
    free(b.p);
    with_version(&b, c, 0);
    expect_fail_both(b.p, b.len, -EBADMSG, s + 23, "L5.4");
    free(b.p);
    with_version(&b, c, 0x101);
    expect_fail(b.p, b.len, STRICT, -EPROTONOSUPPORT, s + 23, "L5.4");
    lg = expect_ok(b.p, b.len, LENIENT);
    assert_int_equal(info_of(lg).warning_count, 1);
    expect_warning(lg, 0, s + 23, "L5.4");
    cprs_legacy_free(lg);
    free(b.p);
    with_version(&b, c, 0x100);
    expect_fail(b.p, b.len, LENIENT, -EBADMSG, s + 23, "L5.4");
    free(b.p);

    /* Missing vfio terminator after a record: the load fails. */
    memset(&v, 0, sizeof(v));
    b_sub_header(&v, 1);
    b_vfio_rec(&v, "0000:00:02.0", 1, 2, 3);
    with_sub(&b, c, v.p, v.len);
    expect_fail_both(b.p, b.len, -EBADMSG, b.len, "L7");
    free(b.p);
    free(v.p);

    /* QEMU silently stops at a name too short to be "CprState/x". */
    with_sub(&b, c, "\x05\x05" "Cpr/x" "\0\0\0\1\0", 12);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, s + 1, "L5.2");
    lg = expect_ok(b.p, b.len, LENIENT);
    li = info_of(lg);
    assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_NONE);
    assert_int_equal(li.trailing, 12);
    assert_int_equal(li.warning_count, 2);
    expect_warning(lg, 0, s, "L5.6");
    expect_warning(lg, 1, s, "L5.2");
    cprs_legacy_free(lg);
    free(b.p);
    /* ... and at one of another description. */
    with_sub(&b, c, "\x05\x15" "XprState/vfio devices" "\0\0\0\1\0", 28);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, s + 2, "L5.2");
    lg = expect_ok(b.p, b.len, LENIENT);
    assert_int_equal(info_of(lg).trailing, 28);
    cprs_legacy_free(lg);
    free(b.p);

    /* QEMU compares the name with strcmp: bytes after a NUL pass. */
    with_sub(&b, c, "\x05\x19" "CprState/vfio devices\0abc" "\0\0\0\1\0", 32);
    expect_fail(b.p, b.len, STRICT, -EBADMSG, s + 2 + 21, "L5.3");
    lg = expect_ok(b.p, b.len, LENIENT);
    li = info_of(lg);
    assert_int_equal(li.vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(li.warning_count, 1);
    expect_warning(lg, 0, s + 2 + 21, "L5.3");
    /* Encoding writes the real name. */
    assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
    assert_int_equal(size, c->size);
    assert_memory_equal(out, c->buf, size);
    free(out);
    cprs_legacy_free(lg);
    free(b.p);

    /* The subsection twice: QEMU would reorder the list; refused. */
    memset(&v, 0, sizeof(v));
    b_sub_header(&v, 1);
    b_u8(&v, 0);
    b_sub_header(&v, 1);
    b_u8(&v, 0);
    with_sub(&b, c, v.p, v.len);
    expect_fail_both(b.p, b.len, -EBADMSG, s + 28, "L5.7");
    free(b.p);
    free(v.p);
}

static void test_duplicates(void **state)
{
    CprsLegacy *lg;
    uint32_t idx;
    Bytes b = { 0 };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsWriter *w;
    size_t second, third, vdup;

    (void)state;
    b_header(&b);
    b_fd_rec(&b, "ram0", 0, 11, false);
    second = b.len;
    b_fd_rec(&b, "ram0", 0, 12, false);
    third = b.len;
    b_fd_rec(&b, "ram0", 1, 13, false);
    b_u8(&b, 0);
    b_sub_header(&b, 1);
    b_vfio_rec(&b, "vfio0", 1, 2, 3);
    vdup = b.len;
    b_vfio_rec(&b, "vfio0", 4, 5, 6);
    b_u8(&b, 0);
    (void)third;

    /* Reported in both modes; (name, 1) is another key. */
    lg = expect_ok(b.p, b.len, STRICT);
    assert_int_equal(info_of(lg).warning_count, 2);
    expect_warning(lg, 0, second, "L4.9");
    expect_warning(lg, 1, vdup, "L5.5");
    assert_int_equal(cprs_legacy_fd_count(lg), 3);
    assert_int_equal(cprs_legacy_vfio_count(lg), 2);
    /* Lookup like QEMU: the first match. */
    assert_int_equal(cprs_legacy_fd_find(lg, "ram0", 0, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(cprs_legacy_fd_find(lg, "ram0", 1, &idx), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(cprs_legacy_fd_find(lg, "ram0", 2, &idx), -ENOENT);
    assert_int_equal(cprs_legacy_fd_find(lg, "ram", 0, &idx), -ENOENT);

    /* The arena needs unique keys. */
    assert_int_equal(cprs_legacy_to_arena(lg, NULL, &d, &w), -EEXIST);
    assert_int_equal(d.record, 1);
    assert_int_equal(d.offset, second);
    cprs_legacy_free(lg);

    lg = expect_ok(b.p, b.len, LENIENT);
    assert_int_equal(info_of(lg).warning_count, 2);
    cprs_legacy_free(lg);
    free(b.p);
}

static void test_warning_cap(void **state)
{
    CprsDiag w = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg;
    Bytes b = { 0 };
    char name[16];
    unsigned i;

    (void)state;
    b_header(&b);
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "r%u", i);
        b_fd_rec(&b, name, 0, 11, false);
        b.p[b.len - (1 + 4 + strlen(name) + 1 + 4 + 4)] = 0x7f;
    }
    b_u8(&b, 0);
    b_sub_header(&b, 1);
    b_u8(&b, 0);
    lg = expect_ok(b.p, b.len, LENIENT);
    assert_int_equal(cprs_legacy_fd_count(lg), 300);
    assert_int_equal(cprs_legacy_warning_count(lg), CPRS_LEGACY_MAX_WARNINGS);
    expect_warning(lg, 0, 8, "L4.1");
    assert_int_equal(cprs_legacy_warning_get(lg, CPRS_LEGACY_MAX_WARNINGS - 1,
                                             &w), 0);
    assert_non_null(strstr(w.reason, "not kept"));
    assert_int_equal(cprs_legacy_warning_get(lg, CPRS_LEGACY_MAX_WARNINGS,
                                             &w), -EINVAL);
    cprs_legacy_free(lg);
    free(b.p);
}

static void test_zero_records(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg;
    Bytes b = { 0 };
    void *out;
    size_t size;

    (void)state;
    b_header(&b);
    b_u8(&b, 0);
    b_sub_header(&b, 1);
    b_u8(&b, 0);
    assert_int_equal(b.len, 37);
    /* spec L4.8: nothing shows the variant; exec unless told. */
    lg = expect_ok(b.p, b.len, STRICT);
    assert_int_equal(info_of(lg).mode, CPRS_MODE_EXEC);
    assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
    assert_int_equal(size, b.len);
    assert_memory_equal(out, b.p, size);
    free(out);
    cprs_legacy_free(lg);
    assert_int_equal(cprs_legacy_decode(b.p, b.len, &o, &d, &lg), 0);
    assert_int_equal(info_of(lg).mode, CPRS_MODE_TRANSFER);
    cprs_legacy_free(lg);
    free(b.p);
}

/* ---- Builder, vfio records, forms -------------------------------------- */

static const struct {
    const char *name;
    int32_t id;
    int32_t fd;
} fd_recs[] = {
    { "iommufd0", 0, 30 },
    { "0000:00:02.0", 7, 31 },
    { "ram0", 0, 11 },
};

static const struct {
    const char *name;
    int32_t devid;
    uint32_t ioas;
    uint32_t hwpt;
} vfio_recs[] = {
    { "0000:00:02.0", 1, 2, 3 },
    { "vfio-net", -5, 0x80000001u, 0xfffffffeu },
};

static CprsLegacy *build(uint32_t mode, uint32_t form, bool with_vfio)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .mode = mode,
                                 .vfio_form = form);
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsLegacy *lg;
    uint32_t i, idx;

    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    for (i = 0; i < 3; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = fd_recs[i].name,
                       .id = fd_recs[i].id, .fd = fd_recs[i].fd);
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, &idx), 0);
        assert_int_equal(idx, i);
    }
    for (i = 0; with_vfio && i < 2; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = vfio_recs[i].name,
                       .devid = vfio_recs[i].devid,
                       .ioas_id = vfio_recs[i].ioas,
                       .hwpt_id = vfio_recs[i].hwpt);
        assert_int_equal(cprs_legacy_add_vfio(lg, &vi, &idx), 0);
        assert_int_equal(idx, i);
    }
    return lg;
}

/* The bytes build() must encode to, made by hand. */
static void expected_bytes(Bytes *b, bool transfer, uint32_t form,
                           bool with_vfio, size_t *ret_vfio_off)
{
    uint32_t i;

    memset(b, 0, sizeof(*b));
    b_header(b);
    for (i = 0; i < 3; i++) {
        b_fd_rec(b, fd_recs[i].name, fd_recs[i].id, fd_recs[i].fd, transfer);
    }
    b_u8(b, 0);
    if (form != CPRS_LEGACY_VFIO_NONE) {
        b_sub_header(b, 1);
    }
    *ret_vfio_off = b->len;
    if (form == CPRS_LEGACY_VFIO_FULL) {
        for (i = 0; with_vfio && i < 2; i++) {
            b_vfio_rec(b, vfio_recs[i].name, vfio_recs[i].devid,
                       vfio_recs[i].ioas, vfio_recs[i].hwpt);
        }
        b_u8(b, 0);
    }
}

static void check_vfio(const CprsLegacy *lg, size_t first_off)
{
    CprsVfioDeviceInfo vi;
    uint64_t off;
    uint32_t i;

    assert_int_equal(cprs_legacy_vfio_count(lg), 2);
    for (i = 0; i < 2; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        assert_int_equal(cprs_legacy_vfio_get(lg, i, &vi), 0);
        assert_string_equal(vi.name, vfio_recs[i].name);
        assert_int_equal(vi.name_len, strlen(vfio_recs[i].name));
        assert_int_equal(vi.devid, vfio_recs[i].devid);
        assert_int_equal(vi.ioas_id, vfio_recs[i].ioas);
        assert_int_equal(vi.hwpt_id, vfio_recs[i].hwpt);
        if (first_off) {
            assert_int_equal(cprs_legacy_vfio_offset(lg, i, &off), 0);
            assert_int_equal(off, first_off);
            first_off += 1 + 4 + strlen(vfio_recs[i].name) + 1 + 12;
        } else {
            assert_int_equal(cprs_legacy_vfio_offset(lg, i, &off), -ENOENT);
        }
    }
    assert_int_equal(cprs_legacy_vfio_get(lg, 2, &vi), -EINVAL);
}

static void test_vfio_roundtrip(void **state)
{
    static const uint32_t modes[] = { CPRS_MODE_EXEC, CPRS_MODE_TRANSFER };
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg, *dec, *back;
    CprsVfioDeviceInfo vi;
    CprsWriter *w;
    CprsReader *r;
    Bytes want;
    void *out, *arena;
    size_t size, asize, voff;
    unsigned m;
    uint32_t i;

    (void)state;
    for (m = 0; m < 2; m++) {
        bool transfer = modes[m] == CPRS_MODE_TRANSFER;

        lg = build(modes[m], 0, true);
        check_vfio(lg, 0);
        assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
        expected_bytes(&want, transfer, CPRS_LEGACY_VFIO_FULL, true, &voff);
        assert_int_equal(size, want.len);
        assert_memory_equal(out, want.p, size);

        /* Decode what was built. */
        dec = expect_ok(out, size, STRICT);
        assert_int_equal(info_of(dec).mode, modes[m]);
        check_vfio(dec, voff);
        free(out);

        /* legacy -> arena: vfio records become vfio device records. */
        assert_int_equal(cprs_legacy_to_arena(dec, &wo, &d, &w), 0);
        assert_int_equal(cprs_writer_finish_buffer(w, &arena, &asize), 0);
        cprs_writer_free(w);
        assert_int_equal(cprs_reader_open_buffer(arena, asize, NULL, &d, &r),
                         0);
        assert_int_equal(cprs_reader_verify(r, &d), 0);
        assert_int_equal(cprs_reader_vfio_count(r), 2);
        for (i = 0; i < 2; i++) {
            vi = CPRS_OPTS(CprsVfioDeviceInfo);
            assert_int_equal(cprs_reader_vfio_get(r, i, &vi), 0);
            assert_string_equal(vi.name, vfio_recs[i].name);
            assert_int_equal(vi.devid, vfio_recs[i].devid);
            assert_int_equal(vi.ioas_id, vfio_recs[i].ioas);
            assert_int_equal(vi.hwpt_id, vfio_recs[i].hwpt);
        }
        /* ... and back, byte for byte. */
        assert_int_equal(cprs_legacy_from_reader(r, NULL, &d, &back), 0);
        assert_int_equal(cprs_legacy_encode(back, NULL, &out, &size), 0);
        assert_int_equal(size, want.len);
        assert_memory_equal(out, want.p, size);
        free(out);
        check_vfio(back, 0);
        cprs_legacy_free(back);
        /* vfio records cannot go into a STUB form. */
        {
            CprsLegacyOpts so = CPRS_OPTS(CprsLegacyOpts,
                                          .vfio_form = CPRS_LEGACY_VFIO_STUB);

            assert_int_equal(cprs_legacy_from_reader(r, &so, &d, &back),
                             -EINVAL);
        }
        cprs_reader_close(r);
        free(arena);
        free(want.p);
        cprs_legacy_free(dec);
        cprs_legacy_free(lg);
    }
}

static void test_forms(void **state)
{
    static const uint32_t forms[] = {
        CPRS_LEGACY_VFIO_FULL, CPRS_LEGACY_VFIO_STUB, CPRS_LEGACY_VFIO_NONE,
    };
    CprsLegacyOpts over = CPRS_OPTS(CprsLegacyOpts);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "v");
    CprsLegacy *lg, *dec;
    Bytes want;
    void *out, *out2;
    size_t size, size2, voff;
    unsigned f;

    (void)state;
    for (f = 0; f < 3; f++) {
        lg = build(CPRS_MODE_EXEC, forms[f], false);
        assert_int_equal(info_of(lg).vfio_form, forms[f]);
        if (forms[f] != CPRS_LEGACY_VFIO_FULL) {
            assert_int_equal(cprs_legacy_add_vfio(lg, &vi, NULL), -EINVAL);
        }
        assert_int_equal(cprs_legacy_encode(lg, NULL, &out, &size), 0);
        expected_bytes(&want, false, forms[f], false, &voff);
        assert_int_equal(size, want.len);
        assert_memory_equal(out, want.p, size);
        /* Recorded at decode, written again as recorded. */
        dec = expect_ok(out, size, CPRS_LEGACY_F_ALL_FORMS);
        assert_int_equal(info_of(dec).vfio_form, forms[f]);
        assert_int_equal(cprs_legacy_encode(dec, NULL, &out2, &size2), 0);
        assert_int_equal(size2, size);
        assert_memory_equal(out2, out, size);
        free(out2);
        free(want.p);
        /* Or as the caller chooses. */
        over.vfio_form = CPRS_LEGACY_VFIO_FULL;
        assert_int_equal(cprs_legacy_encode(dec, &over, &out2, &size2), 0);
        expected_bytes(&want, false, CPRS_LEGACY_VFIO_FULL, false, &voff);
        assert_int_equal(size2, want.len);
        assert_memory_equal(out2, want.p, size2);
        free(out2);
        free(want.p);
        free(out);
        cprs_legacy_free(dec);
        cprs_legacy_free(lg);
    }

    /* A form that cannot hold the vfio records is refused. */
    lg = build(CPRS_MODE_EXEC, 0, true);
    over.vfio_form = CPRS_LEGACY_VFIO_STUB;
    assert_int_equal(cprs_legacy_encode(lg, &over, &out, &size), -EINVAL);
    over.vfio_form = CPRS_LEGACY_VFIO_NONE;
    assert_int_equal(cprs_legacy_encode(lg, &over, &out, &size), -EINVAL);
    /* exec -> transfer conversion of the variant. */
    over = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    assert_int_equal(cprs_legacy_encode(lg, &over, &out, &size), 0);
    expected_bytes(&want, true, CPRS_LEGACY_VFIO_FULL, true, &voff);
    assert_int_equal(size, want.len);
    assert_memory_equal(out, want.p, size);
    free(want.p);
    /* ... and back needs fd numbers, which the stream lacks. */
    dec = expect_ok(out, size, STRICT);
    over.mode = CPRS_MODE_EXEC;
    free(out);
    assert_int_equal(cprs_legacy_encode(dec, &over, &out, &size), -EINVAL);
    cprs_legacy_free(dec);
    cprs_legacy_free(lg);
}

static void test_builder_errors(void **state)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .max_records = 1);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 3);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "d");
    CprsLegacy *lg;
    char *longname;
    struct {
        CprsLegacyOpts o;
        uint64_t extra;
    } big;

    (void)state;
    assert_int_equal(cprs_legacy_new(NULL, &lg), 0);
    assert_int_equal(info_of(lg).mode, CPRS_MODE_EXEC);
    assert_int_equal(info_of(lg).vfio_form, CPRS_LEGACY_VFIO_FULL);
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EEXIST);
    fi.id = 1;
    fi.fd = -1;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    fi.fd = 4;
    fi.name = "";
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    fi.name = "tab\there";
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    fi.name = NULL;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    longname = malloc(CPRS_MAX_NAME_LEN + 2);
    assert_non_null(longname);
    memset(longname, 'x', CPRS_MAX_NAME_LEN + 1);
    longname[CPRS_MAX_NAME_LEN + 1] = 0;
    fi.name = longname;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    longname[CPRS_MAX_NAME_LEN] = 0;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    free(longname);
    assert_int_equal(cprs_legacy_fd_count(lg), 2);
    assert_int_equal(cprs_legacy_add_vfio(lg, &vi, NULL), 0);
    assert_int_equal(cprs_legacy_add_vfio(lg, &vi, NULL), -EEXIST);
    cprs_legacy_free(lg);

    /* The record limit holds for built streams too. */
    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    fi.name = "a";
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    fi.name = "b";
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -E2BIG);
    cprs_legacy_free(lg);

    /* transfer records may lack an fd (-1), not go below. */
    o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    fi.fd = -1;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    fi.name = "c";
    fi.fd = -2;
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), -EINVAL);
    /* Sending needs every fd. */
    assert_int_equal(cprs_legacy_send(lg, 0, 0), -EINVAL);
    cprs_legacy_free(lg);

    /* Opts: unknown values, and the sized-struct rules. */
    o = CPRS_OPTS(CprsLegacyOpts, .mode = 3);
    assert_int_equal(cprs_legacy_new(&o, &lg), -EINVAL);
    o = CPRS_OPTS(CprsLegacyOpts, .vfio_form = CPRS_LEGACY_VFIO__MAX);
    assert_int_equal(cprs_legacy_new(&o, &lg), -EINVAL);
    o = CPRS_OPTS(CprsLegacyOpts, .flags = 0x80);
    assert_int_equal(cprs_legacy_decode("QCPR", 4, &o, NULL, &lg), -EINVAL);
    memset(&big, 0, sizeof(big));
    big.o.sz = sizeof(big);
    assert_int_equal(cprs_legacy_new(&big.o, &lg), 0);
    cprs_legacy_free(lg);
    big.extra = 1;
    assert_int_equal(cprs_legacy_new(&big.o, &lg), -EINVAL);
    assert_int_equal(cprs_legacy_decode(NULL, 1, NULL, NULL, &lg), -EINVAL);
    assert_int_equal(cprs_legacy_decode("", 0, NULL, NULL, NULL), -EINVAL);
    cprs_legacy_free(NULL);
    assert_int_equal(cprs_legacy_fd_count(NULL), 0);
    assert_int_equal(cprs_legacy_vfio_count(NULL), 0);
    assert_int_equal(cprs_legacy_warning_count(NULL), 0);
}

static void test_detect(void **state)
{
    uint8_t *arena;
    size_t size;

    (void)state;
    th_build_rich(0, 0, &arena, &size);
    assert_int_equal(cprs_detect(arena, size), CPRS_DETECT_ARENA);
    assert_int_equal(cprs_detect(arena, CPRS_MAGIC_SIZE), CPRS_DETECT_ARENA);
    assert_int_equal(cprs_detect(arena, CPRS_MAGIC_SIZE - 1),
                     CPRS_DETECT_UNKNOWN);
    free(arena);
    assert_int_equal(cprs_detect("QCPR", 4), CPRS_DETECT_LEGACY);
    assert_int_equal(cprs_detect("QCP", 3), CPRS_DETECT_UNKNOWN);
    assert_int_equal(cprs_detect("qcpr", 4), CPRS_DETECT_UNKNOWN);
    assert_int_equal(cprs_detect("\x7f" "ELF", 4), CPRS_DETECT_UNKNOWN);
    assert_int_equal(cprs_detect(NULL, 0), CPRS_DETECT_UNKNOWN);
    assert_int_equal(cprs_detect(NULL, 1), -EINVAL);
}

static void test_from_reader(void **state)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = -1);
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsFdInfo a, b;
    CprsLegacy *lg;
    CprsWriter *w;
    CprsReader *r;
    uint8_t *buf;
    void *arena;
    size_t size, asize;
    uint32_t i;

    (void)state;
    /* The rich arena: RAM blocks and device state have no legacy form. */
    th_build_rich(0, 0, &buf, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    assert_int_equal(cprs_legacy_from_reader(r, NULL, &d, &lg), 0);
    assert_int_equal(cprs_legacy_fd_count(lg), cprs_reader_fd_count(r));
    assert_int_equal(cprs_legacy_vfio_count(lg), cprs_reader_vfio_count(r));
    for (i = 0; i < cprs_legacy_fd_count(lg); i++) {
        a = CPRS_OPTS(CprsFdInfo);
        b = CPRS_OPTS(CprsFdInfo);
        assert_int_equal(cprs_legacy_fd_get(lg, i, &a), 0);
        assert_int_equal(cprs_reader_fd_get(r, i, &b), 0);
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.id, b.id);
        assert_int_equal(a.fd, b.fd);
    }
    cprs_legacy_free(lg);
    o.max_records = 1;
    assert_int_equal(cprs_legacy_from_reader(r, &o, &d, &lg), -E2BIG);
    cprs_reader_close(r);
    free(buf);

    /* A cpr-exec arena cannot even hold an fd record without a number. */
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EINVAL);
    cprs_writer_free(w);
    /* A cpr-transfer one can, but it has no cpr-exec stream. */
    wo.mode = CPRS_MODE_TRANSFER;
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &arena, &asize), 0);
    cprs_writer_free(w);
    wo.mode = 0;
    assert_int_equal(cprs_reader_open_buffer(arena, asize, NULL, &d, &r), 0);
    o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC);
    assert_int_equal(cprs_legacy_from_reader(r, &o, &d, &lg), -EINVAL);
    assert_int_equal(d.record, 0);
    assert_string_equal(d.clause, "L11");
    /* As cpr-transfer it is fine. */
    assert_int_equal(cprs_legacy_from_reader(r, NULL, &d, &lg), 0);
    assert_int_equal(info_of(lg).mode, CPRS_MODE_TRANSFER);
    cprs_legacy_free(lg);
    cprs_reader_close(r);
    free(arena);

    /* to_arena refuses a different mode in the writer opts. */
    assert_int_equal(cprs_legacy_new(NULL, &lg), 0);
    wo.mode = CPRS_MODE_TRANSFER;
    assert_int_equal(cprs_legacy_to_arena(lg, &wo, &d, &w), -EINVAL);
    cprs_legacy_free(lg);
}

static void test_lenient_names_to_arena(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg;
    CprsWriter *w;
    Bytes b = { 0 };

    (void)state;
    b_header(&b);
    b_fd_rec(&b, "ok", 0, 3, false);
    b_fd_rec(&b, "\xe9t\xe9", 0, 4, false);
    b_u8(&b, 0);
    b_sub_header(&b, 1);
    b_u8(&b, 0);
    lg = expect_ok(b.p, b.len, LENIENT);
    /* The arena's charset is printable ASCII: refused there. */
    assert_int_equal(cprs_legacy_to_arena(lg, NULL, &d, &w), -EINVAL);
    assert_int_equal(d.record, 1);
    assert_string_equal(d.clause, "L11");
    cprs_legacy_free(lg);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_decode),
        cmocka_unit_test(test_captures_reencode),
        cmocka_unit_test(test_captures_arena_roundtrip),
        cmocka_unit_test(test_captures_truncated),
        cmocka_unit_test(test_decode_fd),
        cmocka_unit_test(test_probe_header),
        cmocka_unit_test(test_probe_names),
        cmocka_unit_test(test_probe_fds),
        cmocka_unit_test(test_probe_markers_and_limits),
        cmocka_unit_test(test_probe_end),
        cmocka_unit_test(test_probe_subsections),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_warning_cap),
        cmocka_unit_test(test_zero_records),
        cmocka_unit_test(test_vfio_roundtrip),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_from_reader),
        cmocka_unit_test(test_lenient_names_to_arena),
    };

    return cmocka_run_group_tests(tests, load_captures, free_captures);
}
