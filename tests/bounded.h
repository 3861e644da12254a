/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bounded.h - complexity tests by counting work (issue 11).
 *
 * A test-bounded-*.c program links the counted build of the library
 * (libcprstate_counted_dep: cprs-work.h's counters compiled in), runs a
 * parser on the worst input it can build at size 1x and 8x, and asserts
 * that every counter grows at most linearly.  Counting instead of timing
 * makes the verdict the same on every machine, idle or loaded, with or
 * without sanitizers.
 */
#ifndef CPRS_TEST_BOUNDED_H
#define CPRS_TEST_BOUNDED_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cprs-internal.h"

#ifndef CPRS_COUNT_WORK
#error "bounded.h needs the counted build (libcprstate_counted_dep)"
#endif

typedef struct Work {
    uint64_t n[CPRS_WORK__MAX];
} Work;

static const char *const work_names[CPRS_WORK__MAX] = {
    [CPRS_WORK_PROBES] = "probes",
    [CPRS_WORK_CRC_BYTES] = "crc-bytes",
    [CPRS_WORK_COPY_BYTES] = "copy-bytes",
    [CPRS_WORK_ZSTD_BYTES] = "zstd-bytes",
    [CPRS_WORK_READ_BYTES] = "read-bytes",
    [CPRS_WORK_SCAN_BYTES] = "scan-bytes",
    [CPRS_WORK_ALLOCS] = "allocs",
    [CPRS_WORK_ALLOC_BYTES] = "alloc-bytes",
    [CPRS_WORK_FD_CALLS] = "fd-calls",
    [CPRS_WORK_ZSTD_CONTEXTS] = "zstd-contexts",
};

/* Start counting from zero. */
static inline void work_reset(void)
{
    memset(cprs_work, 0, sizeof(cprs_work));
}

/* What was counted since work_reset(). */
static inline Work work_now(void)
{
    Work w;

    memcpy(w.n, cprs_work, sizeof(w.n));
    return w;
}

static inline void work_print(const char *label, const Work *w)
{
    int k;

    printf("# %s:", label);
    for (k = 0; k < CPRS_WORK__MAX; k++) {
        printf(" %s=%" PRIu64, work_names[k], w->n[k]);
    }
    printf("\n");
}

/*
 * Linear growth from the 1x run to the 8x run: every counter of @w8 is at
 * most 8 * @slack times the same counter of @w1, plus @fixed (work that
 * does not depend on the input size).  Returns the first counter that
 * grew faster, or -1.  Quadratic work fails by a factor of 8 at least.
 */
static inline int work_linear(const Work *w1, const Work *w8, double slack,
                              uint64_t fixed)
{
    int k;

    for (k = 0; k < CPRS_WORK__MAX; k++) {
        if ((double)w8->n[k] > 8.0 * slack * (double)w1->n[k] +
                               (double)fixed) {
            return k;
        }
    }
    return -1;
}

/*
 * Print both runs' counters, and fail the test unless @w8 grew at most
 * linearly from @w1 (work_linear() with @slack and @fixed).
 */
static inline void work_expect_linear(const char *what, const Work *w1,
                                      const Work *w8, double slack,
                                      uint64_t fixed)
{
    int k;

    work_print("1x", w1);
    work_print("8x", w8);
    k = work_linear(w1, w8, slack, fixed);
    if (k >= 0) {
        fail_msg("%s: %s grew faster than the input (%" PRIu64 " -> %"
                 PRIu64 ")", what, work_names[k], w1->n[k], w8->n[k]);
    }
}

#endif /* CPRS_TEST_BOUNDED_H */
