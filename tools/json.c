/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json.c - the JSON writer of cprdump's --json output: members, nesting,
 * indentation, and strings escaped to ASCII (a byte outside printable
 * ASCII is \u00XX, read as Latin-1: lossless).
 */
#include <inttypes.h>
#include <string.h>

#include "json.h"

void json_begin(Json *j, FILE *out)
{
    j->out = out;
    j->depth = 0;
    j->first = true;
}

void json_end(Json *j)
{
    fputc('\n', j->out);
}

static void put_string(FILE *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    fputc('"', out);
    for (i = 0; i < len; i++) {
        switch (p[i]) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            /* Bytes outside printable ASCII read as Latin-1: lossless. */
            if (p[i] < 0x20 || p[i] >= 0x7f) {
                fprintf(out, "\\u00%c%c", hex[p[i] >> 4], hex[p[i] & 15]);
            } else {
                fputc(p[i], out);
            }
            break;
        }
    }
    fputc('"', out);
}

/* Separator, indentation and key of the next member. */
static void member(Json *j, const char *key)
{
    int i;

    if (j->depth > 0) {
        fputs(j->first ? "\n" : ",\n", j->out);
        for (i = 0; i < j->depth; i++) {
            fputs("    ", j->out);
        }
    }
    j->first = false;
    if (key) {
        put_string(j->out, key, strlen(key));
        fputs(": ", j->out);
    }
}

static void close_level(Json *j, char c)
{
    int i;

    j->depth--;
    if (!j->first) {
        fputc('\n', j->out);
        for (i = 0; i < j->depth; i++) {
            fputs("    ", j->out);
        }
    }
    fputc(c, j->out);
    j->first = false;
}

void json_obj(Json *j, const char *key)
{
    member(j, key);
    fputc('{', j->out);
    j->depth++;
    j->first = true;
}

void json_obj_end(Json *j)
{
    close_level(j, '}');
}

void json_arr(Json *j, const char *key)
{
    member(j, key);
    fputc('[', j->out);
    j->depth++;
    j->first = true;
}

void json_arr_end(Json *j)
{
    close_level(j, ']');
}

void json_strn(Json *j, const char *key, const char *v, size_t len)
{
    member(j, key);
    put_string(j->out, v, len);
}

void json_str(Json *j, const char *key, const char *v)
{
    if (!v) {
        json_null(j, key);
        return;
    }
    json_strn(j, key, v, strlen(v));
}

void json_u64(Json *j, const char *key, uint64_t v)
{
    member(j, key);
    fprintf(j->out, "%" PRIu64, v);
}

void json_i64(Json *j, const char *key, int64_t v)
{
    member(j, key);
    fprintf(j->out, "%" PRId64, v);
}

void json_bool(Json *j, const char *key, bool v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->out);
}

void json_null(Json *j, const char *key)
{
    member(j, key);
    fputs("null", j->out);
}

void json_hex(Json *j, const char *key, const uint8_t *v, size_t len)
{
    size_t i;

    member(j, key);
    fputc('"', j->out);
    for (i = 0; i < len; i++) {
        fprintf(j->out, "%02x", v[i]);
    }
    fputc('"', j->out);
}

void json_i64_or_null(Json *j, const char *key, int64_t v)
{
    if (v < 0) {
        json_null(j, key);
    } else {
        json_i64(j, key, v);
    }
}
