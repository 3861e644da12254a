/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cursor.c - bounds-checked sequential reads over untrusted bytes.
 *
 * The cursor keeps pos <= len at all times, so "bytes left" is a plain
 * subtraction that cannot wrap.  Each helper compares what it needs with
 * what is left before it forms a pointer into the buffer (STYLE 4), and
 * leaves the cursor untouched when the bytes are not there: callers can
 * then report the exact offset at which the input ran out.
 */
#include "cprs-base.h"

void cprs_cursor_init(CprsCursor *c, const void *base, size_t len)
{
    c->base = base;
    c->len = base ? len : 0;
    c->pos = 0;
}

bool cprs_cursor_take(CprsCursor *c, size_t n, const uint8_t **ret_p)
{
    if (n > cprs_cursor_left(c)) {
        return false;
    }
    *ret_p = c->base + c->pos;
    c->pos += n;
    return true;
}

bool cprs_cursor_skip(CprsCursor *c, size_t n)
{
    if (n > cprs_cursor_left(c)) {
        return false;
    }
    c->pos += n;
    return true;
}

bool cprs_cursor_read_u8(CprsCursor *c, uint8_t *ret_v)
{
    if (!cprs_cursor_left(c)) {
        return false;
    }
    *ret_v = c->base[c->pos++];
    return true;
}

bool cprs_cursor_peek_u8(const CprsCursor *c, size_t ahead, uint8_t *ret_v)
{
    /* ahead < left, written so that no sum can overflow. */
    if (ahead >= cprs_cursor_left(c)) {
        return false;
    }
    *ret_v = c->base[c->pos + ahead];
    return true;
}

bool cprs_cursor_read_be32(CprsCursor *c, uint32_t *ret_v)
{
    const uint8_t *p;

    if (!cprs_cursor_take(c, 4, &p)) {
        return false;
    }
    *ret_v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
             (uint32_t)p[2] << 8 | (uint32_t)p[3];
    return true;
}
