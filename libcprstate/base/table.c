/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * table.c - the library's containers: growable arrays and CprsTable, the
 * one hash table (the writer's key sets, the legacy decoder's index, the
 * CPR state's four registries).
 *
 * Keys come from hostile input (a legacy stream, an arena, a peer), so the
 * table must stay O(1) per operation whatever the keys are:
 *
 * - Hashes are keyed.  FNV-1a, which the arena's on-disk index must use
 *   (spec 6.8.1), is easy to collide on purpose; here every table hashes
 *   with SipHash-1-3 under a seed of its own, derived from the kernel's
 *   per-process random bytes (AT_RANDOM) and the table's address, so a
 *   stream cannot be built to pile its keys into one cluster.  Fuzzing and
 *   the counted build (tests) use a fixed seed: their runs must repeat.
 * - Displacement is bounded: when an entry lands more than
 *   CPRS_TABLE_MAX_PROBE slots past its home, the next reserve doubles the
 *   table (up to a sparseness limit), and lookups never look further than
 *   the longest displacement present.
 * - Deletion shifts the following entries of the cluster back (Knuth's
 *   algorithm R), so no tombstone is ever left and freed slots are reused.
 */
#include <stdlib.h>
#include <sys/auxv.h>
#include <time.h>

#include "cprs-base.h"

/* A table grows for probe length only while it has fewer slots than this
 * many per entry: beyond, the keys collide in full and more room would
 * not help (with a secret seed, not something input can arrange). */
#define TABLE_SPARSE 8u
#define TABLE_MIN_SLOTS 16u

int cprs_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first,
              size_t max)
{
    size_t ncap;
    void *p, *np;

    if (need <= *cap) {
        return 0;
    }
    if (need > max) {
        return -E2BIG;
    }
    ncap = *cap ? *cap : first;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            return -E2BIG;
        }
        ncap *= 2;
    }
    if (ncap > max) {
        ncap = max;
    }
    if (ncap > SIZE_MAX / elem) {
        return -E2BIG;
    }
    /* The pointer is moved as bytes: any object pointer type fits. */
    memcpy(&p, pp, sizeof(p));
    if (ncap * elem < CPRS_HUGE_PAGE_SIZE) {
        np = realloc(p, ncap * elem);
    } else {
        /* Large: the new room on huge pages, the old bytes copied. */
        np = cprs_alloc_large(ncap * elem);
        if (np && p) {
            memcpy(np, p, *cap * elem);
            free(p);
        }
    }
    if (!np) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(ncap * elem);
    memcpy(pp, &np, sizeof(np));
    *cap = ncap;
    return 0;
}

/* ---- SipHash-1-3 ------------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl64(v[1], 13) ^ v[0];
    v[0] = rotl64(v[0], 32);
    v[2] += v[3];
    v[3] = rotl64(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = rotl64(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = rotl64(v[1], 17) ^ v[2];
    v[2] = rotl64(v[2], 32);
}

/* One message word, one compression round (the "1" of SipHash-1-3). */
static inline void sip_word(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    v[0] ^= m;
}

static void sip_init(uint64_t v[4], const uint64_t key[2])
{
    v[0] = key[0] ^ UINT64_C(0x736f6d6570736575);
    v[1] = key[1] ^ UINT64_C(0x646f72616e646f6d);
    v[2] = key[0] ^ UINT64_C(0x6c7967656e657261);
    v[3] = key[1] ^ UINT64_C(0x7465646279746573);
}

/* The last word carries the message length; three finishing rounds. */
static uint64_t sip_final(uint64_t v[4], const uint8_t *tail, size_t n,
                          uint64_t total)
{
    uint8_t last[8] = { 0 };

    memcpy(last, tail, n);
    last[7] = (uint8_t)total;
    sip_word(v, load_le64(last));
    v[2] ^= 0xff;
    sip_round(v);
    sip_round(v);
    sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint32_t cprs_table_hash(const CprsTable *t, const char *name, size_t len,
                         uint32_t id)
{
    uint8_t tail[16];
    uint64_t v[4], h;
    size_t i, n;

    /* The message is the name's bytes, then the id's four LE bytes. */
    sip_init(v, t->seed);
    for (i = 0; i + 8 <= len; i += 8) {
        sip_word(v, load_le64(name + i));
    }
    n = len - i;
    memcpy(tail, name + i, n);
    tail[n] = (uint8_t)id;
    tail[n + 1] = (uint8_t)(id >> 8);
    tail[n + 2] = (uint8_t)(id >> 16);
    tail[n + 3] = (uint8_t)(id >> 24);
    n += 4;
    if (n >= 8) {
        sip_word(v, load_le64(tail));
        h = sip_final(v, tail + 8, n - 8, (uint64_t)len + 4);
    } else {
        h = sip_final(v, tail, n, (uint64_t)len + 4);
    }
    return (uint32_t)(h ^ (h >> 32));
}

/*
 * A seed no input can know: the kernel's random bytes for this process
 * (the auxiliary vector's AT_RANDOM), hashed with the table's address so
 * that tables differ from one another.
 */
static void table_seed(CprsTable *t)
{
#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) || \
    defined(CPRS_COUNT_WORK)
    t->seed[0] = UINT64_C(0x0123456789abcdef);
    t->seed[1] = UINT64_C(0xfedcba9876543210);
#else
    const uint8_t *rnd = (const uint8_t *)getauxval(AT_RANDOM);
    uint64_t key[2], v[4], addr = (uint64_t)(uintptr_t)t;
    struct timespec ts = { 0 };

    if (rnd) {
        key[0] = load_le64(rnd);
        key[1] = load_le64(rnd + 8);
    } else {
        /* No auxiliary vector: the clock, at least not fixed. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        key[0] = (uint64_t)ts.tv_nsec;
        key[1] = (uint64_t)ts.tv_sec;
    }
    sip_init(v, key);
    sip_word(v, addr);
    t->seed[0] = sip_final(v, rnd ? rnd : (const uint8_t *)&addr, 0, 8);
    sip_word(v, addr);
    t->seed[1] = sip_final(v, (const uint8_t *)&addr, 0, 16);
#endif
}

/* ---- The table --------------------------------------------------------- */

void cprs_table_init(CprsTable *t)
{
    memset(t, 0, sizeof(*t));
    table_seed(t);
}

void cprs_table_free(CprsTable *t)
{
    free(t->slot);
    t->slot = NULL;
    t->mask = 0;
    t->count = 0;
    t->reach = 0;
}

void cprs_table_clear(CprsTable *t)
{
    if (t->slot) {
        memset(t->slot, 0, ((size_t)t->mask + 1) * sizeof(*t->slot));
    }
    t->count = 0;
    t->reach = 0;
}

/* Linear probing from the home of @hash to the first empty slot. */
static uint32_t place(CprsTableSlot *slot, uint32_t mask, uint32_t hash,
                      uint32_t val)
{
    uint32_t pos = hash & mask, dist = 0;

    while (slot[pos].val) {
        pos = (pos + 1) & mask;
        dist++;
    }
    slot[pos].hash = hash;
    slot[pos].val = val;
    CPRS_WORK_ADD(CPRS_WORK_PROBES, dist + 1);
    return dist;
}

/* Move every entry into @nslots fresh slots. */
static int rehash(CprsTable *t, uint32_t nslots)
{
    CprsTableSlot *slot;
    uint32_t i, reach = 0, dist;

    slot = cprs_alloc_large_zero((size_t)nslots * sizeof(*slot));
    if (!slot) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC((size_t)nslots * sizeof(*slot));
    for (i = 0; t->slot && i <= t->mask; i++) {
        if (t->slot[i].val) {
            dist = place(slot, nslots - 1, t->slot[i].hash, t->slot[i].val);
            reach = dist > reach ? dist : reach;
        }
    }
    free(t->slot);
    t->slot = slot;
    t->mask = nslots - 1;
    t->reach = reach;
    return 0;
}

int cprs_table_reserve(CprsTable *t, uint32_t more)
{
    uint64_t need = (uint64_t)t->count + more;
    uint64_t have = t->slot ? (uint64_t)t->mask + 1 : 0;
    uint64_t want = have ? have : TABLE_MIN_SLOTS;
    int ret;

    /* At most half full, and at most 2^31 slots (values fit 32 bits). */
    if (need > (UINT64_C(1) << 30)) {
        return -E2BIG;
    }
    while (want < 2 * need) {
        want *= 2;
    }
    /* A cluster grew too long: spread it over twice the slots. */
    if (want == have && t->reach > CPRS_TABLE_MAX_PROBE &&
        want < TABLE_SPARSE * need) {
        want *= 2;
    }
    if (want == have) {
        return 0;
    }
    ret = rehash(t, (uint32_t)want);
    while (!ret && t->reach > CPRS_TABLE_MAX_PROBE &&
           2 * want <= TABLE_SPARSE * need && want < (UINT64_C(1) << 31)) {
        want *= 2;
        ret = rehash(t, (uint32_t)want);
    }
    return ret;
}

int64_t cprs_table_find(const CprsTable *t, uint32_t hash, CprsTableEq eq,
                        const void *ctx, const CprsTableKey *key)
{
    uint32_t pos, dist, val;

    if (!t->slot) {
        return -1;
    }
    pos = hash & t->mask;
    for (dist = 0; dist <= t->reach; dist++) {
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        val = t->slot[pos].val;
        if (!val) {
            break;
        }
        if (t->slot[pos].hash == hash && eq(ctx, val - 1, key)) {
            return val - 1;
        }
        pos = (pos + 1) & t->mask;
    }
    return -1;
}

void cprs_table_put(CprsTable *t, uint32_t hash, uint32_t val)
{
    uint32_t dist = place(t->slot, t->mask, hash, val + 1);

    if (dist > t->reach) {
        t->reach = dist;
    }
    t->count++;
}

bool cprs_table_del(CprsTable *t, uint32_t hash, uint32_t val)
{
    uint32_t pos, next, home, dist;

    if (!t->slot) {
        return false;
    }
    pos = hash & t->mask;
    for (dist = 0; t->slot[pos].val != val + 1; dist++) {
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        if (dist >= t->reach || !t->slot[pos].val) {
            return false;
        }
        pos = (pos + 1) & t->mask;
    }
    /*
     * Close the hole: an entry further along the cluster moves into it
     * when the hole lies between its home and its slot, which keeps every
     * entry reachable from its home without a tombstone.
     */
    next = pos;
    for (;;) {
        next = (next + 1) & t->mask;
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        if (!t->slot[next].val) {
            break;
        }
        home = t->slot[next].hash & t->mask;
        if (((next - home) & t->mask) >= ((next - pos) & t->mask)) {
            t->slot[pos] = t->slot[next];
            pos = next;
        }
    }
    t->slot[pos].val = 0;
    t->slot[pos].hash = 0;
    t->count--;
    return true;
}
