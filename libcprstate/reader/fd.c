/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fd.c - fd records (spec 6.2): zero-copy access and lookup by (name, id).
 * The checks live in cprs_fd_decode(), which full verification runs on
 * the records as they stream by.  Calls section.c and index.c.
 */
#include "cprs-reader.h"

uint32_t cprs_reader_fd_count(const CprsReader *r)
{
    return r ? cprs_rec_count(r, CPRS_SECTION_FDS) : 0;
}

int cprs_fd_decode(CprsReader *r, const uint8_t *p, int sec, uint32_t index,
                   uint64_t off, CprsFdInfo *fi)
{
    const CprsWireFd *w = (const CprsWireFd *)p;
    uint32_t count = r->sec[sec].record_count;
    int ret;

#define FAIL(err, field, clause, reason) \
    cprs_reader_fail(r, (err), off + offsetof(CprsWireFd, field), sec, \
                     index, (clause), (reason))

    fi->sz = sizeof(*fi);
    ret = cprs_str_get(r, &w->name, off, sec, index, &fi->name,
                       &fi->name_len, NULL);
    if (ret) {
        return ret;
    }
    fi->id = (int32_t)cprs_le32_get(&w->id);
    fi->slot = cprs_le32_get(&w->slot);
    fi->fd = (int32_t)cprs_le32_get(&w->fd);
    fi->kind = cprs_le16_get(&w->kind);
    fi->flags = cprs_le32_get(&w->flags);
    fi->seals = cprs_le32_get(&w->seals);
    fi->dev = cprs_le64_get(&w->dev);
    fi->ino = cprs_le64_get(&w->ino);
    fi->st_mode = cprs_le32_get(&w->st_mode);
    fi->size = cprs_le64_get(&w->size);

    if (fi->slot >= count) {
        return FAIL(-EBADMSG, slot, "6.2.3", "slot not below the fd count");
    }
    if (fi->fd < -1) {
        return FAIL(-EBADMSG, fd, "6.2.4", "fd number below -1");
    }
    /* spec 6.2.4: after exec() the recorded number is the fd itself. */
    if (fi->fd == -1 && r->info.mode == CPRS_MODE_EXEC) {
        return FAIL(-EBADMSG, fd, "6.2.4",
                    "cpr-exec fd record without an fd number");
    }
    if (!r->lenient) {
        if (fi->kind >= CPRS_FD_KIND__MAX) {
            return FAIL(-EBADMSG, kind, "6.2.5", "unknown fd kind");
        }
        if (fi->flags & ~CPRS_FD_F_KNOWN) {
            return FAIL(-EBADMSG, flags, "6.2.6", "unknown fd flag");
        }
        if (cprs_le16_get(&w->reserved0)) {
            return FAIL(-EBADMSG, reserved0, "6.2.9",
                        "reserved field not zero");
        }
        if (cprs_le32_get(&w->reserved1)) {
            return FAIL(-EBADMSG, reserved1, "6.2.9",
                        "reserved field not zero");
        }
    }
    /* spec 6.2.7, 6.2.8: fields without their flag are zero. */
    if (!(fi->flags & CPRS_FD_F_SEALS) && fi->seals) {
        return FAIL(-EBADMSG, seals, "6.2.7", "seals set without SEALS flag");
    }
    if (!(fi->flags & CPRS_FD_F_IDENTITY) &&
        (fi->dev || fi->ino || fi->st_mode || fi->size)) {
        return FAIL(-EBADMSG, dev, "6.2.8",
                    "identity set without IDENTITY flag");
    }
#undef FAIL
    return 0;
}

int cprs_reader_fd_get(CprsReader *r, uint32_t index, CprsFdInfo *info)
{
    const uint8_t *p;
    CprsFdInfo fi = { .sz = sizeof(fi) };
    uint64_t off;
    int sec, ret;

    if (!r || !info) {
        return -EINVAL;
    }
    ret = cprs_rec_get(r, CPRS_SECTION_FDS, index, &p, &sec, &off);
    if (!ret) {
        ret = cprs_fd_decode(r, p, sec, index, off, &fi);
    }
    if (ret) {
        return ret;
    }
    return cprs_info_fill(info, &fi, sizeof(fi));
}

int cprs_reader_fd_find(CprsReader *r, const char *name, int32_t id,
                        uint32_t *ret_index)
{
    if (!r || !name || !ret_index) {
        return -EINVAL;
    }
    return cprs_lookup(r, CPRS_SECTION_FDS, name, (uint32_t)id, ret_index);
}
