/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * render-json.c - "cprdump --json": the objects of the versioned schema
 * of spec/cprdump-json.rst, whose machine-readable form is
 * spec/cprdump.schema.json, written with json.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "render.h"

/* ---- Shared objects ---------------------------------------------------- */

void json_preamble(Json *j, const char *command)
{
    json_obj(j, NULL);
    json_str(j, "schema-version", CPRDUMP_JSON_VERSION);
    json_str(j, "command", command);
}

static const char *origin_name(int origin)
{
    static const char *const names[] = {
        [SRC_FILE] = "file", [SRC_STDIN] = "stdin",
        [SRC_PROC_FD] = "proc-fd", [SRC_PID] = "pid", [SRC_CORE] = "core",
    };

    if (origin > 0 && origin <= SRC_CORE) {
        return names[origin];
    }
    return "file";
}

void json_source(Json *j, const char *key, const Source *s)
{
    const CoreState *c = &s->core;

    json_obj(j, key);
    json_str(j, "kind", origin_name(s->origin));
    /* Standard input, or a core read from it. */
    if (s->origin == SRC_STDIN || !s->path[0]) {
        json_null(j, "path");
    } else {
        json_str(j, "path", s->path);
    }
    if (s->pid >= 0) {
        json_i64(j, "pid", s->pid);
        json_i64(j, "fd", s->fd_num);
    } else {
        json_null(j, "pid");
        json_null(j, "fd");
    }
    if (!s->from_core) {
        json_null(j, "core");
        json_obj_end(j);
        return;
    }
    json_obj(j, "core");
    json_str(j, "found-by", c->found_by == CORE_FOUND_NT_FILE ?
             "nt-file" : "scan");
    json_u64(j, "file-offset", c->file_offset);
    json_u64(j, "size", c->size);
    json_u64(j, "declared-size", c->declared_size);
    json_u64(j, "vaddr", c->vaddr);
    json_bool(j, "truncated", c->flags & CORE_STATE_F_TRUNCATED);
    if (c->map_name[0]) {
        json_obj(j, "mapping");
        json_u64(j, "start", c->map_start);
        json_u64(j, "end", c->map_end);
        json_u64(j, "offset", c->map_offset);
        json_str(j, "name", c->map_name);
        json_obj_end(j);
    } else {
        json_null(j, "mapping");
    }
    json_obj_end(j);
    json_obj_end(j);
}

void json_legacy_warnings(Json *j, const char *key, const CprsLegacy *lg)
{
    CprsDiag w = CPRS_OPTS(CprsDiag);
    uint32_t i, n = lg ? cprs_legacy_warning_count(lg) : 0;

    json_arr(j, key);
    for (i = 0; i < n; i++) {
        if (cprs_legacy_warning_get(lg, i, &w)) {
            continue;
        }
        json_obj(j, NULL);
        json_u64(j, "offset", w.offset);
        json_i64_or_null(j, "record", w.record);
        json_str(j, "clause", w.clause ? w.clause : "");
        json_str(j, "reason", w.reason ? w.reason : "");
        json_obj_end(j);
    }
    json_arr_end(j);
}

void json_diag(Json *j, const char *key, int err, const CprsDiag *diag)
{
    json_obj(j, key);
    if (!err) {
        json_str(j, "status", "valid");
        json_obj_end(j);
        return;
    }
    json_str(j, "status", err == -EPROTONOSUPPORT ? "unsupported" :
             err == -EBADMSG || err == -E2BIG ? "invalid" : "error");
    json_str(j, "error", errno_name(err));
    json_str(j, "message", cprs_strerror(err));
    json_u64(j, "offset", diag->offset);
    json_i64_or_null(j, "section", diag->section);
    json_i64_or_null(j, "record", diag->record);
    json_str(j, "clause", diag->clause ? diag->clause : "");
    json_str(j, "reason", diag->reason ? diag->reason : "");
    json_obj_end(j);
}

/* Arena offset of record @i of section @type when stored uncompressed. */
static bool record_offset(CprsReader *r, uint32_t type, uint32_t i,
                          uint64_t *ret)
{
    CprsSectionInfo si = CPRS_OPTS(CprsSectionInfo);
    uint32_t k, n = cprs_reader_section_count(r);

    for (k = 0; k < n; k++) {
        if (cprs_reader_section_get(r, k, &si) || si.type != type) {
            continue;
        }
        if ((si.flags & CPRS_SECTION_F_ZSTD) || i >= si.record_count) {
            return false;
        }
        *ret = si.offset + (uint64_t)i * si.record_size;
        return true;
    }
    return false;
}

static void json_offset(Json *j, const Source *s, uint32_t type, uint32_t i,
                        int (*legacy_off)(const CprsLegacy *, uint32_t,
                                          uint64_t *))
{
    uint64_t off;

    if (s->reader && record_offset(s->reader, type, i, &off)) {
        json_u64(j, "offset", off);
    } else if (!s->reader && s->legacy && !legacy_off(s->legacy, i, &off)) {
        json_u64(j, "offset", off);
    } else {
        json_null(j, "offset");
    }
}

static void flag_names(Json *j, uint32_t flags, const char *const *names,
                       unsigned n)
{
    char unknown[16];
    unsigned b;

    json_arr(j, "flag-names");
    for (b = 0; b < 32; b++) {
        if (!(flags & (UINT32_C(1) << b))) {
            continue;
        }
        if (b < n) {
            json_str(j, NULL, names[b]);
        } else {
            snprintf(unknown, sizeof(unknown), "0x%x", UINT32_C(1) << b);
            json_str(j, NULL, unknown);
        }
    }
    json_arr_end(j);
}

static void json_fd(Json *j, const Source *s, uint32_t index,
                    const CprsFdInfo *fi)
{
    static const char *const names[] = { "identity", "seals" };
    const char *kind = cprs_fd_kind_name(fi->kind);
    char kbuf[32];
    bool legacy = !s->reader;

    json_obj(j, NULL);
    json_u64(j, "index", index);
    json_strn(j, "name", fi->name, fi->name_len);
    json_i64(j, "id", fi->id);
    json_i64_or_null(j, "fd", fi->fd);
    json_u64(j, "slot", fi->slot);
    json_offset(j, s, CPRS_SECTION_FDS, index, cprs_legacy_fd_offset);
    if (legacy) {
        /* A legacy record has no kind, flags or identity. */
        json_null(j, "kind");
        json_null(j, "flags");
        json_arr(j, "flag-names");
        json_arr_end(j);
    } else {
        if (!kind) {
            snprintf(kbuf, sizeof(kbuf), "unknown-%u", fi->kind);
            kind = kbuf;
        }
        json_str(j, "kind", kind);
        json_u64(j, "flags", fi->flags);
        flag_names(j, fi->flags, names, 2);
    }
    if (!legacy && (fi->flags & CPRS_FD_F_SEALS)) {
        json_u64(j, "seals", fi->seals);
    } else {
        json_null(j, "seals");
    }
    if (!legacy && (fi->flags & CPRS_FD_F_IDENTITY)) {
        json_u64(j, "dev", fi->dev);
        json_u64(j, "ino", fi->ino);
        json_u64(j, "mode", fi->st_mode);
        json_u64(j, "size", fi->size);
    } else {
        json_null(j, "dev");
        json_null(j, "ino");
        json_null(j, "mode");
        json_null(j, "size");
    }
    json_obj_end(j);
}

static void json_ramblock(Json *j, CprsReader *r, uint32_t index,
                          const CprsRamBlockInfo *bi)
{
    static const char *const names[] = {
        "shared", "resizeable", "prealloc", "noreserve", "readonly",
    };
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsGpaRange gr;
    uint32_t k;

    json_obj(j, NULL);
    json_u64(j, "index", index);
    json_strn(j, "idstr", bi->idstr, bi->idstr_len);
    if (bi->fd_index == CPRS_NO_INDEX) {
        json_null(j, "fd-index");
        json_null(j, "fd-name");
    } else {
        json_u64(j, "fd-index", bi->fd_index);
        if (!cprs_reader_fd_get(r, bi->fd_index, &fi)) {
            json_strn(j, "fd-name", fi.name, fi.name_len);
        } else {
            json_null(j, "fd-name");
        }
    }
    json_u64(j, "flags", bi->flags);
    flag_names(j, bi->flags, names, 5);
    json_u64(j, "fd-offset", bi->fd_offset);
    json_u64(j, "used-length", bi->used_length);
    json_u64(j, "max-length", bi->max_length);
    json_u64(j, "page-size", bi->page_size);
    json_u64(j, "align", bi->align);
    json_arr(j, "gpa-ranges");
    for (k = 0; k < bi->range_count; k++) {
        if (cprs_reader_gpa_range_get(r, index, k, &gr)) {
            continue;
        }
        json_obj(j, NULL);
        json_u64(j, "gpa", gr.gpa);
        json_u64(j, "size", gr.size);
        json_u64(j, "block-offset", gr.block_offset);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

static void json_vfio(Json *j, const Source *s, uint32_t index,
                      const CprsVfioDeviceInfo *vi)
{
    json_obj(j, NULL);
    json_u64(j, "index", index);
    json_strn(j, "name", vi->name, vi->name_len);
    json_i64(j, "devid", vi->devid);
    json_u64(j, "ioas-id", vi->ioas_id);
    json_u64(j, "hwpt-id", vi->hwpt_id);
    json_offset(j, s, CPRS_SECTION_VFIO_DEVICES, index,
                cprs_legacy_vfio_offset);
    json_obj_end(j);
}

static void json_devstate(Json *j, const CprsDevStateInfo *di)
{
    json_strn(j, "name", di->name, di->name_len);
    json_u64(j, "instance-id", di->instance_id);
    json_u64(j, "version-id", di->version_id);
    json_u64(j, "flags", di->flags);
    if (di->flags & CPRS_DEVSTATE_F_ZSTD) {
        json_str(j, "compression", "zstd");
    } else {
        json_null(j, "compression");
    }
    json_u64(j, "stored-size", di->stored_size);
    json_u64(j, "raw-size", di->raw_size);
}

/* ---- show --json ------------------------------------------------------- */

static void record_error(Json *j, CprsReader *r, const char *list,
                         uint32_t i, int err)
{
    json_obj(j, NULL);
    json_str(j, "list", list);
    json_u64(j, "index", i);
    json_diag(j, "error", err, cprs_reader_last_diag(r));
    json_obj_end(j);
}

static void show_arena_header(Json *j, CprsReader *r)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    char when[64];

    cprs_reader_get_info(r, &ai);
    json_obj(j, "header");
    json_u64(j, "version-major", ai.version_major);
    json_u64(j, "version-minor", ai.version_minor);
    json_u64(j, "header-size", ai.header_size);
    json_u64(j, "arena-size", ai.arena_size);
    json_str(j, "mode", cprs_mode_name(ai.mode) ? cprs_mode_name(ai.mode) :
             "unknown");
    json_u64(j, "generation", ai.generation);
    json_u64(j, "created-ns", ai.created_ns);
    if (ai.created_ns) {
        time_str(when, sizeof(when), ai.created_ns);
        json_str(j, "created", when);
    } else {
        json_null(j, "created");
    }
    json_u64(j, "writer-pid", ai.writer_pid);
    json_str(j, "producer", ai.producer);
    json_hex(j, "build-id", ai.build_id, ai.build_id_size <=
             CPRS_BUILD_ID_MAX ? ai.build_id_size : CPRS_BUILD_ID_MAX);
    json_u64(j, "incompat-features", ai.incompat_features);
    json_u64(j, "compat-features", ai.compat_features);
    json_u64(j, "directory-offset", ai.dir_offset);
    json_u64(j, "section-count", ai.section_count);
    json_u64(j, "directory-crc32c", ai.dir_crc32c);
    json_u64(j, "header-crc32c", ai.header_crc32c);
    json_obj_end(j);
}

static void show_sections(Json *j, CprsReader *r)
{
    CprsSectionInfo si = CPRS_OPTS(CprsSectionInfo);
    const char *name;
    uint32_t i, n;

    n = cprs_reader_section_count(r);
    json_arr(j, "sections");
    for (i = 0; i < n; i++) {
        if (cprs_reader_section_get(r, i, &si)) {
            continue;
        }
        name = cprs_section_type_name(si.type);
        json_obj(j, NULL);
        json_u64(j, "index", i);
        json_str(j, "type", name ? name : "unknown");
        json_u64(j, "type-code", si.type);
        json_u64(j, "flags", si.flags);
        json_bool(j, "required", si.flags & CPRS_SECTION_F_REQUIRED);
        json_bool(j, "zstd", si.flags & CPRS_SECTION_F_ZSTD);
        json_u64(j, "offset", si.offset);
        json_u64(j, "stored-size", si.stored_size);
        json_u64(j, "raw-size", si.raw_size);
        json_u64(j, "record-count", si.record_count);
        json_u64(j, "record-size", si.record_size);
        json_u64(j, "crc32c", si.crc32c);
        if (si.type == CPRS_SECTION_INDEX) {
            json_u64(j, "link", si.link);
        } else {
            json_null(j, "link");
        }
        json_obj_end(j);
    }
    json_arr_end(j);
}

static void show_legacy_header(Json *j, const Source *s)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);

    cprs_legacy_get_info(s->legacy, &li);
    json_obj(j, "legacy");
    json_str(j, "magic", "QCPR");
    json_u64(j, "version", 1);
    json_str(j, "mode", cprs_mode_name(li.mode));
    json_str(j, "vfio-form", legacy_form_name(li.vfio_form));
    json_u64(j, "size", li.size);
    json_u64(j, "input-size", s->size);
    json_u64(j, "trailing-bytes", li.trailing);
    json_bool(j, "decoded-leniently",
              li.flags & CPRS_LEGACY_F_LENIENT);
    json_legacy_warnings(j, "warnings", s->legacy);
    json_obj_end(j);
}

/* The parts of a state that "show" prints, by selector. */
static const struct {
    uint32_t bit;
    const char *name;
} parts[] = {
    { OPT_HEADER, "header" }, { OPT_SECTIONS, "sections" },
    { OPT_FDS, "fds" }, { OPT_RAM, "ram" }, { OPT_DEVICES, "devices" },
};

static void show_fds(Json *j, const Source *s)
{
    uint32_t i, n = src_fd_count(s);
    CprsFdInfo fi;

    json_arr(j, "fds");
    for (i = 0; i < n; i++) {
        if (!src_fd_get(s, i, &fi)) {
            json_fd(j, s, i, &fi);
        }
    }
    json_arr_end(j);
}

static void show_ram(Json *j, CprsReader *r)
{
    uint32_t i, n = r ? cprs_reader_ramblock_count(r) : 0;
    CprsRamBlockInfo bi;

    json_arr(j, "ram-blocks");
    for (i = 0; i < n; i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        if (!cprs_reader_ramblock_get(r, i, &bi)) {
            json_ramblock(j, r, i, &bi);
        }
    }
    json_arr_end(j);
}

static void show_devices(Json *j, const Source *s)
{
    CprsReader *r = s->reader;
    uint32_t i, n = src_vfio_count(s);
    CprsVfioDeviceInfo vi;
    CprsDevStateInfo di;

    json_arr(j, "devices");
    for (i = 0; i < n; i++) {
        if (!src_vfio_get(s, i, &vi)) {
            json_vfio(j, s, i, &vi);
        }
    }
    json_arr_end(j);
    json_arr(j, "device-state");
    n = r ? cprs_reader_devstate_count(r) : 0;
    for (i = 0; i < n; i++) {
        di = CPRS_OPTS(CprsDevStateInfo);
        if (!cprs_reader_devstate_get(r, i, &di)) {
            json_obj(j, NULL);
            json_u64(j, "index", i);
            json_devstate(j, &di);
            json_obj_end(j);
        }
    }
    json_arr_end(j);
}

/* Records of the selected lists that did not decode, with the reason. */
static void show_record_errors(Json *j, CprsReader *r, uint32_t select)
{
    CprsRamBlockInfo bi;
    CprsDevStateInfo di;
    CprsVfioDeviceInfo vi;
    CprsFdInfo fi;
    uint32_t i;
    int ret;

    json_arr(j, "record-errors");
    for (i = 0; r && (select & OPT_FDS) && i < cprs_reader_fd_count(r);
         i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(r, i, &fi);
        if (ret) {
            record_error(j, r, "fds", i, ret);
        }
    }
    for (i = 0; r && (select & OPT_RAM) &&
         i < cprs_reader_ramblock_count(r); i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        ret = cprs_reader_ramblock_get(r, i, &bi);
        if (ret) {
            record_error(j, r, "ram-blocks", i, ret);
        }
    }
    for (i = 0; r && (select & OPT_DEVICES) &&
         i < cprs_reader_vfio_count(r); i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &vi);
        if (ret) {
            record_error(j, r, "devices", i, ret);
        }
    }
    for (i = 0; r && (select & OPT_DEVICES) &&
         i < cprs_reader_devstate_count(r); i++) {
        di = CPRS_OPTS(CprsDevStateInfo);
        ret = cprs_reader_devstate_get(r, i, &di);
        if (ret) {
            record_error(j, r, "device-state", i, ret);
        }
    }
    json_arr_end(j);
}

/* The rollback record (spec/fail-safe.rst F5), when the arena has one. */
static void show_rollback(Json *j, const Source *s)
{
    CprsRollbackInfo ri;
    CprsDiag diag;
    const char *arg;
    uint32_t i;
    int ret = source_rollback(s, &ri, &diag);

    if (ret == -ENOENT) {
        return;
    }
    json_obj(j, "rollback");
    if (ret) {
        /* The verdict says it too: a bad record makes a bad state. */
        json_str(j, "status", "invalid");
        json_diag(j, "error", ret, &diag);
        json_obj_end(j);
        return;
    }
    json_str(j, "status", ri.flags & CPRS_ROLLBACK_F_ROLLED_BACK ?
             "rolled-back" : "armed");
    json_u64(j, "generation", ri.generation);
    json_u64(j, "armed-ns", ri.armed_ns);
    json_u64(j, "pid", ri.pid);
    json_str(j, "exe-path", ri.exe_path);
    json_i64_or_null(j, "exe-fd", ri.exe_fd);
    json_u64(j, "exe-dev", ri.exe_dev);
    json_u64(j, "exe-ino", ri.exe_ino);
    json_u64(j, "exe-size", ri.exe_size);
    json_u64(j, "exe-mode", ri.exe_mode);
    json_arr(j, "argv");
    for (i = 0, arg = ri.argv; i < ri.argc; i++, arg += strlen(arg) + 1) {
        json_str(j, NULL, arg);
    }
    json_arr_end(j);
    if (ri.flags & CPRS_ROLLBACK_F_FAILURE) {
        json_obj(j, "failure");
        json_str(j, "stage", cprs_failure_stage_name(ri.failure_stage));
        json_i64(j, "error-code", ri.failure_error);
        if (ri.failure_error) {
            json_str(j, "error", errno_name(ri.failure_error));
        } else {
            json_null(j, "error");
        }
        json_u64(j, "failed-ns", ri.failed_ns);
        json_str(j, "failed-exe", ri.failed_exe);
        json_str(j, "message", ri.failure_message);
        json_obj_end(j);
    } else {
        json_null(j, "failure");
    }
    json_obj_end(j);
}

void json_show(Json *j, Source *s, int verify_err, const CprsDiag *diag,
               uint32_t select)
{
    CprsReader *r = s->reader;
    size_t i;

    select = select ? select : OPT_SELECTORS;
    json_preamble(j, "show");
    json_source(j, "source", s);
    json_str(j, "format", r ? "arena" : "legacy");
    json_str(j, "mode", mode_name(src_mode(s)));
    json_arr(j, "parts");
    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (select & parts[i].bit) {
            json_str(j, NULL, parts[i].name);
        }
    }
    json_arr_end(j);
    if (r && (select & OPT_HEADER)) {
        show_arena_header(j, r);
        if (s->dual) {
            json_obj(j, "dual");
            json_u64(j, "legacy-size", s->dual_legacy_size);
            json_obj_end(j);
        }
        show_rollback(j, s);
    } else if (!r && (select & OPT_HEADER)) {
        show_legacy_header(j, s);
    }
    if (r && (select & OPT_SECTIONS)) {
        show_sections(j, r);
    }
    if (select & OPT_FDS) {
        show_fds(j, s);
    }
    if (select & OPT_RAM) {
        show_ram(j, r);
    }
    if (select & OPT_DEVICES) {
        show_devices(j, s);
    }
    show_record_errors(j, r, select);
    json_diag(j, "verification", verify_err, diag);
    json_obj_end(j);
}

void json_load_error(Json *j, const char *label, int err)
{
    json_obj(j, NULL);
    json_str(j, "label", label);
    json_str(j, "status", err == -EPROTONOSUPPORT ? "unsupported" :
             err == -EBADMSG || err == -E2BIG ? "invalid" : "error");
    json_str(j, "error", errno_name(err));
    json_str(j, "message", cprs_strerror(err));
    json_obj_end(j);
}
