/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-writer.h - the writer layer, private: arenas and QEMU's legacy
 * stream written out.  Builds on the reader (legacy handles, record sizes)
 * and the base; the handover layer builds on it.
 */
#ifndef CPRS_WRITER_H
#define CPRS_WRITER_H

#include "cprs-reader.h"

/**
 * cprs_legacy_to_writer: add a legacy stream's records to an arena writer.
 * @legacy: a handle.
 * @writer: a writer, normally created with mode = the legacy mode (see
 *          cprs_legacy_to_arena(), which does that).
 * @diag: filled on failure (record index, reason), or NULL.
 *
 * fd records keep their order, name and id; cpr-exec fds go to the fd
 * field, cpr-transfer records get fd -1 (their slot is their position);
 * kind is CPRS_FD_KIND_OTHER with no identity.  vfio records map to vfio
 * device records (name, devid, ioas_id, hwpt_id).  The arena is stricter
 * than QEMU: names outside printable ASCII, and duplicates, accepted by a
 * lenient decode, are refused here.  On failure the writer may hold some
 * of the records: free it.
 *
 * Returns: 0; -EINVAL (a name the arena refuses); -EEXIST duplicate key;
 * -E2BIG; -ENOMEM.
 */
CPRS_HIDDEN int cprs_legacy_to_writer(const CprsLegacy *legacy,
                                      CprsWriter *writer, CprsDiag *diag);

/*
 * Encode @lg as @mode with subsection @form into a new malloc()ed buffer.
 * When @ret_svc is not NULL it receives a malloc()ed array with the offset
 * of each fd record's service byte (cpr-transfer), for cprs_legacy_send().
 * Returns 0; -EINVAL (exec record without fd, vfio records in a STUB or
 * NONE form); -E2BIG; -ENOMEM.
 */
CPRS_HIDDEN int cprs_legacy_encode_at(const CprsLegacy *lg, uint32_t mode,
                                      uint32_t form, uint8_t **ret_buf,
                                      size_t *ret_size, uint64_t **ret_svc);

/*
 * The rules a RAM block map must follow (flags, lengths, page size,
 * alignment, ranges), as cprs_writer_add_ramblock() checks them; the CPR
 * state checks the same when QEMU registers a block.
 */
CPRS_HIDDEN bool cprs_ramblock_ok(const CprsRamBlockInfo *block,
                                  const CprsGpaRange *ranges,
                                  uint32_t n_ranges);

/*
 * Room for @n more records of @type (an indexable section type), taken
 * at once by a caller that knows how many it will add (the CPR state at
 * save): no growth and no rehash while they are added.  A hint: the adds
 * still check everything.  Returns 0, -EINVAL or -ENOMEM.
 */
CPRS_HIDDEN int cprs_writer_expect(CprsWriter *writer, uint32_t type,
                                   uint32_t n);

/*
 * cprs_writer_add_devstate() without the copy: @data is read when the
 * arena is finished, so it must stay unchanged until then (the CPR state
 * keeps its payloads; a compressed one is copied anyway).
 */
CPRS_HIDDEN int cprs_writer_add_devstate_ref(CprsWriter *writer,
                                             const CprsDevStateInfo *ds,
                                             const void *data, size_t size);

/*
 * A new memfd named @name holding the @size bytes at @buf, sealed with
 * CPRS_MEMFD_F_SEAL in @flags, as cprs_writer_finish_memfd() makes one.
 * Returns 0 or the syscall error; no fd is left open on failure.
 */
CPRS_HIDDEN int cprs_memfd_of_bytes(const char *name, uint32_t flags,
                                    const void *buf, size_t size,
                                    int *ret_fd);

#endif /* CPRS_WRITER_H */
