/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-state.h - the inside of CprsState (spec 11.3), shared by the
 * files that implement it, each with one job:
 *
 *   state-registry.c  the four registries and the record API QEMU calls
 *   state-fds.c       close-on-exec of the recorded fds, their identity
 *   state-save.c      the state written: arena or legacy, exec or transfer
 *   state-load.c      the state read back, all or nothing
 *
 * Nothing outside these files sees a registry.
 */
#ifndef CPRS_STATE_H
#define CPRS_STATE_H

#include "cprs-handover.h"

/* What a registry holds; decides the record's variant below. */
enum {
    REG_FDS,
    REG_VFIO,
    REG_RAM,
    REG_DEV,
};

/*
 * One record.  Every kind has its key (name, id) and the key's hash in
 * the registry's table; the rest depends on the registry.
 */
typedef struct StateRec {
    char *name;                 /* owned */
    uint32_t name_len;
    uint32_t id;                /* fd id, devstate instance, else 0 */
    uint32_t hash;              /* cprs_table_hash() of (name, id) */
    bool live;                  /* false once deleted, until compacted */
    union {
        struct {
            int fd;
            uint32_t kind;      /* CPRS_FD_KIND_*, valid if kind_known */
            bool kind_known;
            uint32_t flags;     /* CPRS_FD_F_IDENTITY: dev, ino known */
            uint32_t st_mode;   /* with the identity; no S_IFMT bits: an
                                 * anonymous inode (eventfd, ...) */
            uint64_t dev;
            uint64_t ino;
            uint32_t arena_index;   /* position in the arena being built */
        } f;
        struct {
            int32_t devid;
            uint32_t ioas_id;
            uint32_t hwpt_id;
        } v;
        struct {
            CprsRamBlockInfo *info;     /* owned; idstr unused */
            char *fd_name;              /* backing fd record, or NULL */
            int32_t fd_id;
            CprsGpaRange *ranges;       /* owned */
            uint32_t n_ranges;
        } r;
        struct {
            uint32_t version_id;
            uint32_t flags;
            const uint8_t *data;        /* a copy, the caller's, or NULL */
            bool owned;                 /* data is our copy (free it) */
            uint64_t size;
            int64_t reader_index;       /* record in the source, or -1 */
        } d;
    } u;
} StateRec;

/*
 * Records in registration order, looked up through a CprsTable.  A
 * deleted record stays (dead) until the array is full; then the array is
 * compacted, which keeps the order, instead of grown: its size follows
 * the live records, not the lifetime registrations (issue 11, class 10).
 */
typedef struct Registry {
    StateRec *rec;
    uint32_t n;                 /* records, dead ones included */
    uint32_t live;
    size_t cap;
    CprsTable index;            /* (name, id) -> record number */
    uint8_t kind;               /* REG_* */
} Registry;

struct CprsState {
    Registry fds;
    Registry vfio;
    Registry ram;
    Registry dev;
    uint64_t generation;
    int format;                 /* CPRS_DETECT_*, or CPRS_FORMAT_DUAL */
    uint32_t mode;              /* of the load, or 0 */
    struct CprsStateRollback *rollback;  /* handed back (fail-safe F5.7) */
    int src_fd;                 /* exec state memfd, or -1 */
    uint64_t memfd_dev;         /* st_dev of memfds, learned once */
    CprsReader *reader;         /* loaded arena, or NULL */
    void *src_buf;              /* received arena bytes, or NULL */
};

/* ---- state-registry.c -------------------------------------------------- */

/* Index of the live record (@name, @id), or -1. */
CPRS_HIDDEN int64_t cprs_reg_find(const Registry *reg, const char *name,
                                  uint32_t id);

/*
 * A record with an owned copy of @name (checked as spec 6.1.2 wants) and
 * its hash; the variant part is zero, fds -1.  Returns 0, -EINVAL or
 * -ENOMEM.
 */
CPRS_HIDDEN int cprs_reg_rec_init(const Registry *reg, StateRec *rec,
                                  const char *name, uint32_t id);

/* Free what @rec owns (a record of @reg). */
CPRS_HIDDEN void cprs_reg_rec_free(const Registry *reg, StateRec *rec);

/*
 * Room for @more records at once (a load knows how many come), so that
 * the array and the table grow once instead of doubling their way there.
 * Returns 0, -E2BIG or -ENOMEM; the records are unchanged either way.
 */
CPRS_HIDDEN int cprs_reg_reserve(Registry *reg, uint32_t more);

/*
 * Append @rec, taking what it owns; refuses a duplicate key.  On failure
 * @rec is freed.  Returns 0, -EEXIST, -E2BIG or -ENOMEM.
 */
CPRS_HIDDEN int cprs_reg_insert(Registry *reg, StateRec *rec);

/* Forget every record (freeing what they own). */
CPRS_HIDDEN void cprs_reg_free(Registry *reg);

/* ---- state-fds.c ------------------------------------------------------- */

/*
 * Set (@on) or clear close-on-exec on every recorded fd, as QEMU does one
 * fd at a time (F_GETFD, then F_SETFD where the flag differs).  All or
 * nothing: if one fd fails, the flags already changed are put back and
 * *@ret_bad (may be NULL) is that fd's record index, newest first.
 * Returns 0 or the fcntl() error.
 */
CPRS_HIDDEN int cprs_state_set_cloexec(const CprsState *s, bool on,
                                       int64_t *ret_bad);

/*
 * cprs_state_check_fds(), comparing identities (spec 11.4) only if
 * @identities.  A state built from a legacy stream has none to compare:
 * its identities were taken at load, by the fstat() that registered each
 * fd, so its fds are only proven open (one poll() for all).
 */
CPRS_HIDDEN int cprs_state_check_fds_how(const CprsState *s, bool identities,
                                         CprsDiag *diag,
                                         uint32_t *ret_mismatches);

#endif /* CPRS_STATE_H */
