/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdident.c - describe a live fd the way an fd record does (spec 6.2.5 to
 * 6.2.8): its kind, its seals and the identity of its open file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cprs-handover.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

static bool starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/*
 * Classify without a readlink() where fstat() says enough (spec 6.2.5):
 * pipes, sockets, the tun and vfio container character devices, and, when
 * the caller knows the device of the kernel's internal shmem mount (where
 * every memfd lives), memfds.  Returns CPRS_FD_KIND__MAX when the
 * /proc/self/fd link is needed (anon inodes, other devices and files).
 */
static uint32_t classify_fast(const struct stat *st, uint64_t memfd_dev,
                              int seals)
{
    if (S_ISFIFO(st->st_mode)) {
        return CPRS_FD_KIND_PIPE;
    }
    if (S_ISSOCK(st->st_mode)) {
        return CPRS_FD_KIND_SOCKET;
    }
    if (S_ISCHR(st->st_mode) && major(st->st_rdev) == 10) {
        /* Misc devices with fixed minors: /dev/net/tun, /dev/vfio/vfio. */
        if (minor(st->st_rdev) == 200) {
            return CPRS_FD_KIND_TAP;
        }
        if (minor(st->st_rdev) == 196) {
            return CPRS_FD_KIND_VFIO_CONTAINER;
        }
    }
    if (S_ISREG(st->st_mode) && memfd_dev && seals >= 0 &&
        (uint64_t)st->st_dev == memfd_dev) {
        return CPRS_FD_KIND_MEMFD;
    }
    return CPRS_FD_KIND__MAX;
}

/* Classify from the fstat() result and the /proc/self/fd link. */
static uint32_t classify(int fd, const struct stat *st, const char *link)
{
    struct statfs sfs;

    if (starts_with(link, "/memfd:")) {
        return CPRS_FD_KIND_MEMFD;
    }
    if (!strcmp(link, "anon_inode:[eventfd]")) {
        return CPRS_FD_KIND_EVENTFD;
    }
    if (!strcmp(link, "/dev/iommu") || !strcmp(link, "anon_inode:iommufd")) {
        return CPRS_FD_KIND_IOMMUFD;
    }
    if (!strcmp(link, "/dev/vfio/vfio")) {
        return CPRS_FD_KIND_VFIO_CONTAINER;
    }
    if (starts_with(link, "/dev/vfio/devices/") ||
        !strcmp(link, "anon_inode:[vfio-device]")) {
        return CPRS_FD_KIND_VFIO_DEVICE;
    }
    if (starts_with(link, "/dev/vfio/")) {
        return CPRS_FD_KIND_VFIO_GROUP;
    }
    if (!strcmp(link, "/dev/net/tun")) {
        return CPRS_FD_KIND_TAP;
    }
    if (S_ISFIFO(st->st_mode)) {
        return CPRS_FD_KIND_PIPE;
    }
    if (S_ISSOCK(st->st_mode)) {
        return CPRS_FD_KIND_SOCKET;
    }
    if (S_ISREG(st->st_mode)) {
        CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, 1);
        if (!fstatfs(fd, &sfs) && ((unsigned long)sfs.f_type == TMPFS_MAGIC ||
                                   (unsigned long)sfs.f_type ==
                                   HUGETLBFS_MAGIC)) {
            return CPRS_FD_KIND_SHM;
        }
        return CPRS_FD_KIND_FILE;
    }
    return CPRS_FD_KIND_OTHER;
}

/* The identity fields of a record (spec 6.2.6 to 6.2.8). */
static void fill_identity(CprsFdInfo *info, const struct stat *st, int seals)
{
    info->flags = CPRS_FD_F_IDENTITY;
    info->dev = (uint64_t)st->st_dev;
    info->ino = (uint64_t)st->st_ino;
    info->st_mode = (uint32_t)st->st_mode;
    info->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    info->seals = 0;
    if (seals >= 0) {
        info->flags |= CPRS_FD_F_SEALS;
        info->seals = (uint32_t)seals;
    }
}

int cprs_fd_identify_dev(int fd, CprsFdInfo *info, uint64_t memfd_dev)
{
    char path[64], link[256];
    struct stat st;
    ssize_t n;
    int seals;

    if (fd < 0 || !info || info->sz < offsetof(CprsFdInfo, size) +
        sizeof(info->size)) {
        return -EINVAL;
    }
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, 1);
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    /* Only shmem files answer F_GET_SEALS: no call for the others. */
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, S_ISREG(st.st_mode));
    seals = S_ISREG(st.st_mode) ? fcntl(fd, F_GET_SEALS) : -1;
    info->kind = classify_fast(&st, memfd_dev, seals);
    if (info->kind == CPRS_FD_KIND__MAX) {
        CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, 1);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        info->kind = classify(fd, &st, link);
    }
    fill_identity(info, &st, seals);
    return 0;
}

int cprs_fd_refresh(int fd, CprsFdInfo *info, uint32_t known_kind,
                    uint64_t known_dev, uint64_t known_ino,
                    uint64_t memfd_dev)
{
    struct stat st;
    int seals;

    if (known_kind >= CPRS_FD_KIND__MAX) {
        return cprs_fd_identify_dev(fd, info, memfd_dev);
    }
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, 1);
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if ((uint64_t)st.st_dev != known_dev || (uint64_t)st.st_ino != known_ino) {
        /* Another file under this number now: classify it afresh. */
        return cprs_fd_identify_dev(fd, info, memfd_dev);
    }
    CPRS_WORK_ADD(CPRS_WORK_FD_CALLS, S_ISREG(st.st_mode));
    seals = S_ISREG(st.st_mode) ? fcntl(fd, F_GET_SEALS) : -1;
    info->kind = known_kind;
    fill_identity(info, &st, seals);
    return 0;
}

uint64_t cprs_memfd_dev(void)
{
    struct stat st;
    uint64_t dev = 0;
    int fd;

    /* Every memfd lives on the kernel's one internal shmem mount. */
    fd = memfd_create("cprs-probe", MFD_CLOEXEC);
    if (fd >= 0) {
        if (!fstat(fd, &st)) {
            dev = (uint64_t)st.st_dev;
        }
        close(fd);
    }
    return dev;
}

int cprs_fd_identify(int fd, CprsFdInfo *info)
{
    return cprs_fd_identify_dev(fd, info, 0);
}
