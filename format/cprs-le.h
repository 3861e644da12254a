/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-le.h - little-endian field types and accessors for the CPR State
 * Arena wire format.
 *
 * Every multi-byte field of a wire struct is a one-member wrapper, so that
 * raw arithmetic on an unconverted field does not compile.  The accessors
 * go through memcpy(), which makes them correct at any alignment and on any
 * host byte order; compilers turn them into a single load or store.
 *
 * This header is part of the format definition: it includes only standard
 * headers and is usable without the library.
 */
#ifndef CPRS_LE_H
#define CPRS_LE_H

#include <stdint.h>
#include <string.h>

typedef struct CprsLe16 {
    uint16_t raw;
} CprsLe16;

typedef struct CprsLe32 {
    uint32_t raw;
} CprsLe32;

typedef struct CprsLe64 {
    uint64_t raw;
} CprsLe64;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CPRS_LE_SWAP16(v) __builtin_bswap16(v)
#define CPRS_LE_SWAP32(v) __builtin_bswap32(v)
#define CPRS_LE_SWAP64(v) __builtin_bswap64(v)
#else
#define CPRS_LE_SWAP16(v) (v)
#define CPRS_LE_SWAP32(v) (v)
#define CPRS_LE_SWAP64(v) (v)
#endif

/**
 * cprs_le16_get: read a little-endian 16-bit field.
 * @p: pointer to the field, any alignment.
 *
 * Returns: the host-order value.
 */
static inline uint16_t cprs_le16_get(const CprsLe16 *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return CPRS_LE_SWAP16(v);
}

/**
 * cprs_le32_get: read a little-endian 32-bit field.
 * @p: pointer to the field, any alignment.
 *
 * Returns: the host-order value.
 */
static inline uint32_t cprs_le32_get(const CprsLe32 *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return CPRS_LE_SWAP32(v);
}

/**
 * cprs_le64_get: read a little-endian 64-bit field.
 * @p: pointer to the field, any alignment.
 *
 * Returns: the host-order value.
 */
static inline uint64_t cprs_le64_get(const CprsLe64 *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return CPRS_LE_SWAP64(v);
}

/**
 * cprs_le16_set: store a host-order value into a little-endian 16-bit field.
 * @p: pointer to the field, any alignment.
 * @v: value to store.
 */
static inline void cprs_le16_set(CprsLe16 *p, uint16_t v)
{
    v = CPRS_LE_SWAP16(v);
    memcpy(p, &v, sizeof(v));
}

/**
 * cprs_le32_set: store a host-order value into a little-endian 32-bit field.
 * @p: pointer to the field, any alignment.
 * @v: value to store.
 */
static inline void cprs_le32_set(CprsLe32 *p, uint32_t v)
{
    v = CPRS_LE_SWAP32(v);
    memcpy(p, &v, sizeof(v));
}

/**
 * cprs_le64_set: store a host-order value into a little-endian 64-bit field.
 * @p: pointer to the field, any alignment.
 * @v: value to store.
 */
static inline void cprs_le64_set(CprsLe64 *p, uint64_t v)
{
    v = CPRS_LE_SWAP64(v);
    memcpy(p, &v, sizeof(v));
}

#endif /* CPRS_LE_H */
