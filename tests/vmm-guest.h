/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmm-guest.h - what the guest of tests/cprs-vmm.c leaves behind at a
 * hop, shared with the programs it hops into (tests/stock-target.c): the
 * bytes of its RAM, the names of its fds, the data left in its devices.
 * A target that is not linked with libcprstate checks all of it with
 * this header alone.
 */
#ifndef CPRS_VMM_GUEST_H
#define CPRS_VMM_GUEST_H

#include <stdint.h>
#include <stdio.h>

#define VMM_PAGE 4096u
#define VMM_MAX_BLOCKS 64

/* The word the guest wrote at @word of page @page of block @b at @hop. */
static inline uint64_t vmm_pattern(int b, uint64_t page, uint64_t word,
                                   int hop)
{
    uint64_t x = ((uint64_t)b << 48) ^ (page << 16) ^ word ^
                 ((uint64_t)hop * UINT64_C(0x9e3779b97f4a7c15));

    x ^= x >> 31;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    return x ^ (x >> 29);
}

/* Name of RAM block @b's fd record. */
static inline void vmm_block_name(char *buf, size_t size, int b)
{
    snprintf(buf, size, "ram-node%d", b);
}

/* What hop @hop left in the pipe and in the socketpair. */
static inline int vmm_console_text(char *buf, size_t size, int hop)
{
    return snprintf(buf, size, "console output of hop %d", hop);
}

/* The eventfds (irqfd 0 and 1) hold this count after hop @hop. */
static inline uint64_t vmm_irq_count(int hop)
{
    return (uint64_t)hop + 1;
}

#endif /* CPRS_VMM_GUEST_H */
