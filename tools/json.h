/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json.h - a small pretty-printing JSON writer (4-space indent, as
 * qemu-img --output=json).  Every string is escaped to ASCII, so the
 * output is valid JSON whatever bytes a (leniently decoded) name has.
 * Calls nothing else of cprdump.
 */
#ifndef CPRDUMP_JSON_H
#define CPRDUMP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Json {
    FILE *out;
    int depth;
    bool first;         /* no member yet at this depth */
} Json;

void json_begin(Json *j, FILE *out);
void json_end(Json *j);
void json_obj(Json *j, const char *key);        /* key NULL in arrays */
void json_obj_end(Json *j);
void json_arr(Json *j, const char *key);
void json_arr_end(Json *j);
void json_str(Json *j, const char *key, const char *v);
void json_strn(Json *j, const char *key, const char *v, size_t len);
void json_u64(Json *j, const char *key, uint64_t v);
void json_i64(Json *j, const char *key, int64_t v);
/* @v, or null when @v is negative (an absent fd, pid or record). */
void json_i64_or_null(Json *j, const char *key, int64_t v);
void json_bool(Json *j, const char *key, bool v);
void json_null(Json *j, const char *key);
/* Lowercase hex string of @len bytes. */
void json_hex(Json *j, const char *key, const uint8_t *v, size_t len);

#endif
