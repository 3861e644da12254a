/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-internal.h - every private declaration of the library, for the
 * tests and the fuzz targets only (they link the static library, where
 * hidden symbols are still visible).  Library files include the header of
 * their own layer instead: base/cprs-base.h, reader/cprs-reader.h,
 * writer/cprs-writer.h, handover/cprs-handover.h.
 */
#ifndef CPRS_INTERNAL_H
#define CPRS_INTERNAL_H

#include "cprs-handover.h"

#endif /* CPRS_INTERNAL_H */
