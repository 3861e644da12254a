/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common.c - helpers shared by the reader, the writer and the legacy codec:
 * versions, sized-struct handling, diagnostics, names and key hashing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cprs-base.h"

#ifdef CPRS_COUNT_WORK
/* The counted build's work counters (cprs-work.h); tests only. */
_Thread_local uint64_t cprs_work[CPRS_WORK__MAX];
_Thread_local uint64_t cprs_work_size_max;
_Thread_local size_t cprs_work_room_reserve;
#endif

const char *cprs_version(void)
{
    return CPRS_STRINGIFY(CPRS_VERSION_MAJOR) "."
           CPRS_STRINGIFY(CPRS_VERSION_MINOR) "."
           CPRS_STRINGIFY(CPRS_VERSION_MICRO);
}

unsigned cprs_version_number(void)
{
    return CPRS_VERSION_NUMBER;
}

void *cprs_alloc_large(size_t size)
{
    void *p = NULL;

    if (size < CPRS_HUGE_PAGE_SIZE) {
        return malloc(size ? size : 1);
    }
    if (posix_memalign(&p, CPRS_HUGE_PAGE_SIZE, size)) {
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    /* A hint: a kernel without transparent huge pages refuses it. */
    (void)madvise(p, size - size % CPRS_HUGE_PAGE_SIZE, MADV_HUGEPAGE);
#endif
    return p;
}

void *cprs_alloc_large_zero(size_t size)
{
    void *p;

    if (size < CPRS_HUGE_PAGE_SIZE) {
        return calloc(1, size ? size : 1);
    }
    p = cprs_alloc_large(size);
    if (p) {
        memset(p, 0, size);
    }
    return p;
}

/*
 * What a CprsRoom reserves: eight times what it makes writable, at least
 * 64 MiB.  Address space is not free either (RLIMIT_AS counts it), so a
 * room that outgrows its range moves, rarely, into a range eight times
 * larger again.
 */
#define ROOM_RESERVE_MIN ((size_t)64 << 20)

int cprs_room_grow(CprsRoom *r, size_t need)
{
    const size_t huge = CPRS_HUGE_PAGE_SIZE;
    size_t cap = r->cap ? r->cap : huge, reserve, len;
    uint8_t *p;
    void *map;

    if (need <= r->cap) {
        return 0;
    }
    while (cap < need) {
        if (cap > SIZE_MAX / 4) {
            return -ENOMEM;
        }
        cap *= 2;
    }
    if (cap <= r->reserved) {
        if (mprotect(r->p + r->cap, cap - r->cap, PROT_READ | PROT_WRITE)) {
            return -ENOMEM;
        }
        CPRS_WORK_ALLOC(cap - r->cap);
        r->cap = cap;
        return 0;
    }
    reserve = cap <= SIZE_MAX / 16 ? 8 * cap : cap;
    if (reserve < ROOM_RESERVE_MIN) {
        reserve = ROOM_RESERVE_MIN;
    }
#ifdef CPRS_COUNT_WORK
    if (cprs_work_room_reserve) {
        reserve = cap > cprs_work_room_reserve ? cap : cprs_work_room_reserve;
    }
#endif
    len = reserve + huge;
    map = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
               MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        return -ENOMEM;
    }
    p = (uint8_t *)map + (-(uintptr_t)map & (huge - 1));
    if (mprotect(p, cap, PROT_READ | PROT_WRITE)) {
        munmap(map, len);
        return -ENOMEM;
    }
#ifdef MADV_HUGEPAGE
    /* A hint: a kernel without transparent huge pages refuses it. */
    (void)madvise(p, reserve, MADV_HUGEPAGE);
#endif
    CPRS_WORK_ALLOC(cap);
    if (r->p) {
        memcpy(p, r->p, r->cap);
        munmap(r->map, r->map_len);
    }
    r->p = p;
    r->cap = cap;
    r->reserved = reserve;
    r->map = map;
    r->map_len = len;
    return 0;
}

void cprs_room_free(CprsRoom *r)
{
    if (r->map) {
        munmap(r->map, r->map_len);
    }
    memset(r, 0, sizeof(*r));
}

int cprs_opts_copy(void *dst, size_t known, const void *src)
{
    size_t sz;
    const uint8_t *tail;
    size_t i;

    memset(dst, 0, known);
    if (!src) {
        *(size_t *)dst = known;
        return 0;
    }
    memcpy(&sz, src, sizeof(sz));
    if (sz < sizeof(size_t)) {
        return -EINVAL;
    }
    /* A newer caller's struct: accept only if the fields we lack are 0. */
    tail = (const uint8_t *)src;
    for (i = known; i < sz; i++) {
        if (tail[i]) {
            return -EINVAL;
        }
    }
    memcpy(dst, src, sz < known ? sz : known);
    *(size_t *)dst = known;
    return 0;
}

int cprs_info_fill(void *dst, const void *src, size_t known)
{
    size_t sz;

    if (!dst) {
        return -EINVAL;
    }
    memcpy(&sz, dst, sizeof(sz));
    if (sz < sizeof(size_t)) {
        return -EINVAL;
    }
    memcpy((uint8_t *)dst + sizeof(size_t), (const uint8_t *)src +
           sizeof(size_t), (sz < known ? sz : known) - sizeof(size_t));
    return 0;
}

int cprs_diag_set(CprsDiag *diag, int error, uint64_t offset,
                  int32_t section, int64_t record, const char *clause,
                  const char *reason)
{
    CprsDiag d = {
        .sz = sizeof(CprsDiag),
        .offset = offset,
        .section = section,
        .error = error,
        .record = record,
        .clause = clause ? clause : "",
        .reason = reason ? reason : "",
    };

    if (diag && diag->sz >= sizeof(size_t)) {
        cprs_info_fill(diag, &d, sizeof(d));
    }
    return error;
}

int cprs_diag_format(const CprsDiag *diag, char *buf, size_t size)
{
    char where[64] = "";
    char clause[32] = "";
    int n;

    if (!diag || diag->sz < sizeof(CprsDiag) || (!buf && size)) {
        return -EINVAL;
    }
    if (diag->section >= 0 && diag->record >= 0) {
        snprintf(where, sizeof(where), " (section %d, record %lld)",
                 (int)diag->section, (long long)diag->record);
    } else if (diag->section >= 0) {
        snprintf(where, sizeof(where), " (section %d)", (int)diag->section);
    } else if (diag->record >= 0) {
        snprintf(where, sizeof(where), " (record %lld)",
                 (long long)diag->record);
    }
    if (diag->clause && diag->clause[0]) {
        snprintf(clause, sizeof(clause), " [spec %s]", diag->clause);
    }
    n = snprintf(buf, size, "offset 0x%llx%s: %s%s",
                 (unsigned long long)diag->offset, where,
                 diag->reason ? diag->reason : "", clause);
    return n < 0 ? -EINVAL : n;
}

const char *cprs_strerror(int error)
{
    switch (error) {
    case 0:
        return "success";
    case -EINVAL:
        return "invalid argument";
    case -EBADMSG:
        return "malformed or corrupt input";
    case -EPROTONOSUPPORT:
        return "unsupported version or feature";
    case -E2BIG:
        return "a limit was exceeded";
    case -ENOMEM:
        return "out of memory";
    case -ENOENT:
        return "not found";
    case -EEXIST:
        return "already present";
    default:
        return error < 0 ? strerror(-error) : "unknown error";
    }
}

const char *cprs_section_type_name(uint32_t type)
{
    static const char *const names[CPRS_SECTION__MAX] = {
        [CPRS_SECTION_STRTAB] = "strtab",
        [CPRS_SECTION_FDS] = "fds",
        [CPRS_SECTION_RAMBLOCKS] = "ramblocks",
        [CPRS_SECTION_GPA_RANGES] = "gpa-ranges",
        [CPRS_SECTION_VFIO_DEVICES] = "vfio-devices",
        [CPRS_SECTION_DEVSTATE] = "devstate",
        [CPRS_SECTION_BLOB] = "blob",
        [CPRS_SECTION_INDEX] = "index",
    };

    return type < CPRS_SECTION__MAX ? names[type] : NULL;
}

const char *cprs_fd_kind_name(uint32_t kind)
{
    static const char *const names[CPRS_FD_KIND__MAX] = {
        [CPRS_FD_KIND_OTHER] = "other",
        [CPRS_FD_KIND_MEMFD] = "memfd",
        [CPRS_FD_KIND_SHM] = "shm",
        [CPRS_FD_KIND_VFIO_DEVICE] = "vfio-device",
        [CPRS_FD_KIND_VFIO_GROUP] = "vfio-group",
        [CPRS_FD_KIND_VFIO_CONTAINER] = "vfio-container",
        [CPRS_FD_KIND_IOMMUFD] = "iommufd",
        [CPRS_FD_KIND_EVENTFD] = "eventfd",
        [CPRS_FD_KIND_TAP] = "tap",
        [CPRS_FD_KIND_PIPE] = "pipe",
        [CPRS_FD_KIND_SOCKET] = "socket",
        [CPRS_FD_KIND_FILE] = "file",
    };

    return kind < CPRS_FD_KIND__MAX ? names[kind] : NULL;
}

const char *cprs_mode_name(uint32_t mode)
{
    switch (mode) {
    case CPRS_MODE_EXEC:
        return "cpr-exec";
    case CPRS_MODE_TRANSFER:
        return "cpr-transfer";
    default:
        return NULL;
    }
}

int cprs_name_check(const char *name, size_t *ret_len)
{
    size_t len;

    if (!name) {
        return -EINVAL;
    }
    len = strnlen(name, CPRS_MAX_NAME_LEN + 1);
    if (!len || len > CPRS_MAX_NAME_LEN ||
        cprs_name_bad_char(name, len) < len) {
        return -EINVAL;
    }
    *ret_len = len;
    return 0;
}

size_t cprs_name_bad_char(const char *s, size_t len)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t high = UINT64_C(0x8080808080808080);
    uint64_t x;
    size_t i = 0;

    /*
     * Eight bytes at a time: with no high bit set, x + 1 sets one exactly
     * where a byte is 0x7f, and (x - 0x20) & ~x sets one where a byte is
     * below 0x20; a hit is then located byte by byte below.
     */
    for (; i + 8 <= len; i += 8) {
        memcpy(&x, s + i, 8);
        if ((x & high) || ((x + ones) & high) ||
            ((x - 0x20 * ones) & ~x & high)) {
            break;
        }
    }
    for (; i < len; i++) {
        if (!cprs_name_char_ok((uint8_t)s[i])) {
            return i;
        }
    }
    return len;
}

uint32_t cprs_name_hash(const char *name, size_t len)
{
    uint32_t h = CPRS_FNV32_OFFSET;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ (uint8_t)name[i]) * CPRS_FNV32_PRIME;
    }
    return h;
}

uint32_t cprs_key_hash(const char *name, size_t len, uint32_t id)
{
    return cprs_key_hash_id(cprs_name_hash(name, len), id);
}
