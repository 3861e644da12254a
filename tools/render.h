/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * render.h - a loaded state as text (readelf-like tables: dump-*.c), as
 * JSON (render-json.c, spec/cprdump-json.rst) or as an annotated hex
 * dump (hexdump.c).  Renderers write into a Dump; they never print a
 * verdict or an exit code, which are the commands' business.
 */
#ifndef CPRDUMP_RENDER_H
#define CPRDUMP_RENDER_H

#include "json.h"
#include "output.h"
#include "source.h"

/* ---- Text (dump-header.c, dump-records.c, dump-legacy.c) --------------- */

void dump_header(Dump *d, CprsReader *r);
void dump_sections(Dump *d, CprsReader *r);
void dump_fds(Dump *d, CprsReader *r);
void dump_ramblocks(Dump *d, CprsReader *r);
void dump_devices(Dump *d, CprsReader *r);
/* A legacy stream: the parts of @select (OPT_SELECTORS, 0 for all). */
void dump_legacy(Dump *d, const Source *s, uint32_t select);

/* The dual stream and the rollback record (dump-failsafe.c). */
void dump_failsafe(Dump *d, const Source *s);

/* ---- JSON (render-json.c) ---------------------------------------------- */

/* The opening of every document: schema version and command. */
void json_preamble(Json *j, const char *command);
void json_source(Json *j, const char *key, const Source *s);
void json_diag(Json *j, const char *key, int err, const CprsDiag *diag);
/* The warnings of a legacy decode, as an array @key. */
void json_legacy_warnings(Json *j, const char *key, const CprsLegacy *lg);

/*
 * "cprdump show --json": the document of one state, as an object at the
 * current place of @j; @select is the OPT_SELECTORS to show, 0 for all.
 */
void json_show(Json *j, Source *s, int verify_err, const CprsDiag *diag,
               uint32_t select);

/* An element of "results" for a SOURCE that could not be loaded. */
void json_load_error(Json *j, const char *label, int err);

/* ---- Annotated hex dump (hexdump.c) ------------------------------------ */

void hex_dump(Dump *d, const Source *s);

#endif
