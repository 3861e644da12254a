/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CPR state through libcprstate
 *
 * Implements the CPR state API of migration/cpr.h on libcprstate's
 * CprsState instead of a vmstate stream: fds saved by (name, id), vfio
 * device records and, at save time, a map of every fd-backed RAMBlock.
 * cpr-exec hands the state over in a sealed memfd, cpr-transfer over the
 * cpr channel, both as a CPR State Arena.  A QCPR stream written by a
 * QEMU without libcprstate is recognised and loaded (upgrade).
 *
 * Live updates are fail-safe (libcprstate's spec/fail-safe.rst): before
 * the VM stops, the binary of the cpr-exec-command (or the cpr-transfer
 * peer) is inspected and the state is written in what it reads (an
 * arena, or QEMU 10.2's QCPR stream in the vfio form of its build), or
 * the migration is refused with the VM running; the exec runs the file
 * inspected; and a new QEMU that fails before its VM runs hands the
 * state back to the previous one (rollback), which resumes the VM.
 * QEMU_CPR_STATE_FORMAT overrides the choice.
 *
 * The logic (formats, validation, fd hand-over, all-or-nothing loads)
 * lives in libcprstate, where it is tested; this file only adapts QEMU's
 * calls and turns libcprstate's negative errno values into Error.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "io/channel-socket.h"
#include "migration/cpr.h"
#include "migration/cpr-cprs.h"
#include "migration/misc.h"
#include "migration/options.h"
#include "migration/qemu-file.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands-migration.h"
#include "qapi/type-helpers.h"
#include "system/address-spaces.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/ramlist.h"
#include "system/runstate.h"
#include "trace.h"

#include <cprstate.h>

/*
 * The state: created on first use, replaced by the loaded one on the
 * incoming side, kept for the life of the process (the next live update
 * saves it again).
 */
static CprsState *cpr_cprs;

/*
 * cpr_save_fd() and friends cannot fail in QEMU's API.  A record that the
 * state refused (a name longer than 4095 bytes or with non-printable
 * bytes, or out of memory) would be missing from the next live update, so
 * the first such failure is kept here and fails cpr_state_save().
 */
static Error *cpr_cprs_pending_err;

/* The cpr-transfer channel, until cpr_state_close(). */
static QEMUFile *cpr_state_file;

/* The state was loaded and its source not yet released. */
static bool cpr_cprs_loaded;

static MigMode incoming_mode = MIG_MODE_NONE;

static CprsState *cpr_cprs_state(void)
{
    int ret;

    if (!cpr_cprs) {
        ret = cprs_state_new(&cpr_cprs);
        if (ret) {
            /* Only -ENOMEM: as fatal as a failed g_malloc(). */
            error_report("cpr: cannot create the CPR state: %s",
                         strerror(-ret));
            abort();
        }
    }
    return cpr_cprs;
}

/* The one place where a libcprstate error becomes an Error. */
static void G_GNUC_PRINTF(4, 5)
cpr_cprs_error(Error **errp, int ret, const CprsDiag *diag,
               const char *fmt, ...)
{
    g_autofree char *what = NULL;
    char where[256];
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (diag && diag->reason &&
        cprs_diag_format(diag, where, sizeof(where)) > 0) {
        error_setg_errno(errp, -ret, "%s: %s", what, where);
    } else {
        error_setg_errno(errp, -ret, "%s", what);
    }
}

static void G_GNUC_PRINTF(2, 3)
cpr_cprs_defer(int ret, const char *fmt, ...)
{
    g_autofree char *what = NULL;
    va_list ap;

    if (cpr_cprs_pending_err) {
        return;
    }
    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    cpr_cprs_error(&cpr_cprs_pending_err, ret, NULL, "%s", what);
}

/*************************************************************************/
/* File descriptors */

void cpr_save_fd(const char *name, int id, int fd)
{
    CprsState *s = cpr_cprs_state();
    int ret;

    trace_cpr_save_fd(name, id, fd);
    ret = cprs_state_save_fd(s, name, id, fd);
    if (ret == -EEXIST) {
        /* Lookups find the newest registration: keep that one only. */
        cprs_state_delete_fd(s, name, id);
        ret = cprs_state_save_fd(s, name, id, fd);
    }
    if (ret) {
        cpr_cprs_defer(ret, "cpr fd '%s' id %d cannot be recorded", name, id);
    }
}

void cpr_delete_fd(const char *name, int id)
{
    cprs_state_delete_fd(cpr_cprs_state(), name, id);
    trace_cpr_delete_fd(name, id);
}

int cpr_find_fd(const char *name, int id)
{
    int fd = cprs_state_find_fd(cpr_cprs_state(), name, id);

    if (fd < 0) {
        fd = -1;
    }
    trace_cpr_find_fd(name, id, fd);
    return fd;
}

void cpr_resave_fd(const char *name, int id, int fd)
{
    int ret = cprs_state_resave_fd(cpr_cprs_state(), name, id, fd);

    if (ret == -EEXIST) {
        /* Two live fds under one key is a bug in the caller. */
        error_report("internal error: cpr fd '%s' id %d is %d, not %d",
                     name, id, cpr_find_fd(name, id), fd);
        g_assert_not_reached();
    }
    if (ret) {
        cpr_cprs_defer(ret, "cpr fd '%s' id %d cannot be recorded", name, id);
    }
}

int cpr_open_fd(const char *path, int flags, const char *name, int id,
                Error **errp)
{
    int fd = cpr_find_fd(name, id);

    /* qemu_open(), not cprs_state_open_fd(): it knows /dev/fdset/N. */
    if (fd < 0) {
        fd = qemu_open(path, flags, errp);
        if (fd >= 0) {
            cpr_save_fd(name, id, fd);
        }
    }
    return fd;
}

typedef struct CprWalk {
    cpr_walk_fd_cb cb;
} CprWalk;

static int cpr_walk_one(void *opaque, const char *name, int32_t id, int fd)
{
    CprWalk *walk = opaque;

    return !walk->cb(fd);
}

bool cpr_walk_fd(cpr_walk_fd_cb cb)
{
    CprWalk walk = { .cb = cb };

    return cprs_state_walk_fds(cpr_cprs_state(), cpr_walk_one, &walk) == 0;
}

int cpr_get_fd_param(const char *name, const char *fdname, int index,
                     Error **errp)
{
    ERRP_GUARD();
    int fd;

    if (cpr_is_incoming()) {
        /* The monitor fd is gone: the CPR state holds it. */
        fd = cpr_find_fd(name, index);
        if (fd < 0) {
            error_setg(errp, "fd %s is not in the CPR state", fdname);
        }
        return fd;
    }
    fd = monitor_fd_param(monitor_cur(), fdname, errp);
    if (fd < 0) {
        error_prepend(errp, "Could not parse object fd %s:", fdname);
        return fd;
    }
    cpr_save_fd(name, index, fd);
    return fd;
}

/*************************************************************************/
/* vfio devices */

void cpr_save_vfio_device(const char *name, int devid, uint32_t ioas_id,
                          uint32_t hwpt_id)
{
    CprsVfioDeviceInfo dev = CPRS_OPTS(CprsVfioDeviceInfo, .name = name,
                                       .devid = devid, .ioas_id = ioas_id,
                                       .hwpt_id = hwpt_id);
    CprsState *s = cpr_cprs_state();
    int ret;

    ret = cprs_state_save_vfio(s, &dev);
    if (ret == -EEXIST) {
        cprs_state_delete_vfio(s, name);
        ret = cprs_state_save_vfio(s, &dev);
    }
    if (ret) {
        cpr_cprs_defer(ret, "cpr vfio device '%s' cannot be recorded", name);
    }
}

bool cpr_find_vfio_device(const char *name, int *devid, uint32_t *ioas_id,
                          uint32_t *hwpt_id)
{
    CprsVfioDeviceInfo dev = CPRS_OPTS(CprsVfioDeviceInfo);

    if (cprs_state_find_vfio(cpr_cprs_state(), name, &dev)) {
        return false;
    }
    *devid = dev.devid;
    *ioas_id = dev.ioas_id;
    *hwpt_id = dev.hwpt_id;
    return true;
}

void cpr_delete_vfio_device(const char *name)
{
    cprs_state_delete_vfio(cpr_cprs_state(), name);
}

/*************************************************************************/
/* RAM block maps */

typedef struct CprRamBlockCtx {
    CprsState *state;
    RAMBlock *block;
    GArray *ranges;             /* of CprsGpaRange */
    int fd;                     /* fd looked up by cpr_find_owner() */
    char *fd_name;
    int32_t fd_id;
    Error **errp;
} CprRamBlockCtx;

static int cpr_find_owner(void *opaque, const char *name, int32_t id, int fd)
{
    CprRamBlockCtx *ctx = opaque;

    if (fd != ctx->fd) {
        return 0;
    }
    ctx->fd_name = g_strdup(name);
    ctx->fd_id = id;
    return 1;
}

static bool cpr_add_gpa_range(Int128 start, Int128 len,
                              const MemoryRegion *mr, hwaddr offset_in_region,
                              void *opaque)
{
    CprRamBlockCtx *ctx = opaque;
    CprsGpaRange range;

    if (mr->ram_block == ctx->block) {
        range.gpa = int128_get64(start);
        range.size = int128_get64(len);
        range.block_offset = offset_in_region;
        g_array_append_val(ctx->ranges, range);
    }
    return false;
}

static uint32_t cpr_ram_flags(uint32_t flags)
{
    return (flags & RAM_SHARED ? CPRS_RAM_F_SHARED : 0) |
           (flags & RAM_RESIZEABLE ? CPRS_RAM_F_RESIZEABLE : 0) |
           (flags & RAM_PREALLOC ? CPRS_RAM_F_PREALLOC : 0) |
           (flags & RAM_NORESERVE ? CPRS_RAM_F_NORESERVE : 0) |
           (flags & RAM_READONLY ? CPRS_RAM_F_READONLY : 0);
}

/* Record how one fd-backed RAMBlock maps onto its cpr fd. */
static int cpr_record_block(RAMBlock *block, void *opaque)
{
    CprRamBlockCtx *ctx = opaque;
    CprsRamBlockInfo info;
    int ret;

    if (block->fd < 0) {
        return 0;
    }
    ctx->block = block;
    ctx->fd = block->fd;
    ctx->fd_name = NULL;
    ctx->fd_id = 0;
    g_array_set_size(ctx->ranges, 0);
    /* Its fd record, if any (memory-backend-file fds are not recorded). */
    cprs_state_walk_fds(ctx->state, cpr_find_owner, ctx);
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            cpr_add_gpa_range, ctx);

    info = CPRS_OPTS(CprsRamBlockInfo, .idstr = block->idstr,
                     .flags = cpr_ram_flags(block->flags),
                     .fd_offset = block->fd_offset,
                     .used_length = block->used_length,
                     .max_length = block->max_length,
                     .page_size = block->page_size,
                     .align = block->mr ? block->mr->align : 0);
    ret = cprs_state_save_ramblock(ctx->state, &info, ctx->fd_name,
                                   ctx->fd_id,
                                   (CprsGpaRange *)ctx->ranges->data,
                                   ctx->ranges->len);
    if (ret) {
        cpr_cprs_error(ctx->errp, ret, NULL,
                       "cannot record RAM block '%s' in the CPR state",
                       block->idstr);
    }
    g_free(ctx->fd_name);
    return ret;
}

/* RAM block maps describe the blocks as they are now: record them afresh. */
static bool cpr_record_ram_blocks(CprsState *s, Error **errp)
{
    CprRamBlockCtx ctx = { .state = s, .errp = errp };
    int ret;

    cprs_state_clear_ramblocks(s);
    ctx.ranges = g_array_new(false, false, sizeof(CprsGpaRange));
    /* Holds the RCU read lock, which the flatview walk needs too. */
    ret = qemu_ram_foreach_block(cpr_record_block, &ctx);
    g_array_free(ctx.ranges, true);
    return ret == 0;
}

/* After a load: do the new RAMBlocks map the fds the old ones did? */
static int cpr_check_block(RAMBlock *block, void *opaque)
{
    CprsRamBlockInfo info = CPRS_OPTS(CprsRamBlockInfo);
    int fd;

    if (cprs_state_find_ramblock(cpr_cprs, block->idstr, &info, &fd)) {
        return 0;
    }
    if (fd >= 0 && fd != block->fd) {
        warn_report("cpr: RAM block '%s' maps fd %d, the CPR state gave %d",
                    block->idstr, block->fd, fd);
    }
    if (info.used_length != block->used_length) {
        warn_report("cpr: RAM block '%s' uses 0x%" PRIx64 " bytes, "
                    "0x%" PRIx64 " before the live update", block->idstr,
                    (uint64_t)block->used_length, info.used_length);
    }
    return 0;
}

/*************************************************************************/
/* Pre-flight and rollback (libcprstate's spec/fail-safe.rst) */

/* libcprstate's failure stages, as cpr-cprs.h names them for QEMU. */
QEMU_BUILD_BUG_ON((int)CPR_FAILED_STATE_LOAD != (int)CPRS_FAILURE_STATE_LOAD);
QEMU_BUILD_BUG_ON((int)CPR_FAILED_INCOMING != (int)CPRS_FAILURE_INCOMING);
QEMU_BUILD_BUG_ON((int)CPR_FAILED_DEVICE != (int)CPRS_FAILURE_DEVICE);
QEMU_BUILD_BUG_ON((int)CPR_FAILED_OTHER != (int)CPRS_FAILURE_OTHER);

/* Source: the cpr-exec target inspected, until the exec or a failure. */
static CprsTarget *cpr_target;

/* Source: the rollback armed for this hop, until the exec or a failure. */
static CprsRollback *cpr_rollback_out;

/* New image: the rollback the previous QEMU armed, until the VM runs. */
static CprsRollback *cpr_rollback_in;

/* This QEMU was started by a rollback: what failed (query-cpr-rollback). */
static struct {
    bool rolled_back;
    char *failed_exe;
    char *stage;
    char *error;
} cpr_rolled_back;

static NotifierWithReturn cpr_cprs_notifier;

/* The cpr-exec-command migration parameter, as an argv. */
static GStrv cpr_exec_command(void)
{
    g_autoptr(MigrationParameters) params = qmp_query_migrate_parameters(NULL);

    return strv_from_str_list(params->cpr_exec_command);
}

/* QEMU_CPR_STATE_FORMAT: an explicit policy; unset or empty: auto. */
static bool cpr_policy(uint32_t *policy, Error **errp)
{
    const char *val = g_getenv(CPR_STATE_FORMAT_ENV);

    *policy = CPRS_POLICY_AUTO;
    if (!val || !*val) {
        return true;
    }
    if (cprs_policy_parse(val, policy)) {
        error_setg(errp, "%s='%s': expected auto, strict, arena, legacy "
                   "or dual", CPR_STATE_FORMAT_ENV, val);
        return false;
    }
    return true;
}

/* Drop what the source prepared for a hop that did not happen. */
static void cpr_hop_abandon(void)
{
    cprs_rollback_disarm(cpr_rollback_out);
    cpr_rollback_out = NULL;
    cprs_target_free(cpr_target);
    cpr_target = NULL;
}

static int cpr_cprs_notify(NotifierWithReturn *notifier, MigrationEvent *e,
                           Error **errp)
{
    if (e->type == MIG_EVENT_PRECOPY_FAILED) {
        cpr_hop_abandon();
    }
    return 0;
}

/*
 * Pre-flight (fail-safe F2, F6): what does the next QEMU read?  The
 * cpr-exec-command's program, or the cpr-transfer peer (through @sock),
 * is inspected, and @plan says what to write; a target that cannot load
 * this state refuses the migration while the VM still runs.  A cpr-exec
 * target is kept: cpr_cprs_exec() runs that very file.
 */
static bool cpr_preflight(CprsState *s, MigMode mode, int sock,
                          CprsPlan *plan, Error **errp)
{
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    g_auto(GStrv) argv = NULL;
    CprsTarget *t = NULL;
    const char *what;
    int ret;

    if (!cpr_policy(&po.policy, errp)) {
        return false;
    }
    if (mode == MIG_MODE_CPR_EXEC) {
        po.mode = CPRS_MODE_EXEC;
        argv = cpr_exec_command();
        what = "cpr-exec-command";
        ret = cprs_target_open_exec(argv, NULL, &diag, &t);
        if (ret) {
            cpr_cprs_error(errp, ret, &diag, "cpr: %s '%s' cannot be run",
                           what, argv[0]);
            return false;
        }
    } else {
        po.mode = CPRS_MODE_TRANSFER;
        what = "cpr-transfer target";
        ret = cprs_target_open_peer(sock, NULL, &diag, &t);
        if (ret) {
            cpr_cprs_error(errp, ret, &diag, "cpr: the %s cannot be "
                           "inspected", what);
            return false;
        }
    }
    cprs_target_get_info(t, &ti);
    cprs_state_get_info(s, &si);
    ret = cprs_target_plan(t, &si, &po, &diag, plan);
    if (ret) {
        cpr_cprs_error(errp, ret, &diag, "cpr: %s %s (%s, %s) cannot load "
                       "this CPR state; the VM keeps running here", what,
                       ti.path ? ti.path : "?",
                       cprs_target_class_name(ti.klass), ti.reason);
        cprs_target_free(t);
        return false;
    }
    if (plan->format != CPRS_FORMAT_ARENA) {
        info_report("cpr: %s %s is %s (%s): writing the %s format%s", what,
                    ti.path ? ti.path : "?",
                    cprs_target_class_name(ti.klass), ti.reason,
                    cprs_format_name(plan->format),
                    plan->flags & CPRS_PLAN_F_FORCED ?
                    " (" CPR_STATE_FORMAT_ENV ")" : "");
    }
    if (mode != MIG_MODE_CPR_EXEC) {
        cprs_target_free(t);
        return true;
    }
    cprs_target_free(cpr_target);
    cpr_target = t;
    if (!cpr_cprs_notifier.notify) {
        migration_add_notifier_mode(&cpr_cprs_notifier, cpr_cprs_notify,
                                    MIG_MODE_CPR_EXEC);
    }
    return true;
}

static bool cpr_is_incoming_opt(const char *arg)
{
    return !strcmp(arg, "-incoming") || !strcmp(arg, "--incoming");
}

/*
 * The command that resumes the VM in this QEMU if the next one fails:
 * this QEMU's own command line without its -incoming options, without
 * -daemonize, and without -S if the VM runs now, then the -incoming
 * options of the cpr-exec-command: the migration stream the next QEMU
 * was to read.
 * NULL when the cpr-exec-command has none (nothing to resume from).
 */
static GStrv cpr_rollback_argv(char **next, Error **errp)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *cmdline = NULL;
    bool running = runstate_is_running();
    bool have_incoming = false;
    gsize len, i, n;
    char *arg;

    if (!g_file_get_contents("/proc/self/cmdline", &cmdline, &len, NULL) ||
        !len || cmdline[len - 1]) {
        error_setg(errp, "cpr: cannot read /proc/self/cmdline");
        return NULL;
    }
    for (i = 0; i < len; i += strlen(arg) + 1) {
        arg = cmdline + i;
        if (cpr_is_incoming_opt(arg)) {
            i += strlen(arg) + 1;
            if (i < len) {
                arg = cmdline + i;
            }
            continue;
        }
        /*
         * -S: the VM runs; -daemonize: done already, a fork would
         * change the pid.
         */
        if ((running && !strcmp(arg, "-S")) || !strcmp(arg, "-daemonize") ||
            !strcmp(arg, "--daemonize")) {
            continue;
        }
        g_ptr_array_add(argv, g_strdup(arg));
    }
    n = g_strv_length(next);
    for (i = 0; i + 1 < n; i++) {
        if (cpr_is_incoming_opt(next[i])) {
            g_ptr_array_add(argv, g_strdup("-incoming"));
            g_ptr_array_add(argv, g_strdup(next[++i]));
            have_incoming = true;
        }
    }
    if (!have_incoming) {
        return NULL;
    }
    g_ptr_array_add(argv, NULL);
    return (GStrv)g_ptr_array_steal(argv, NULL);
}

/* Arm the rollback of this hop (fail-safe F5.1) for the state in @fd. */
static bool cpr_rollback_arm(CprsState *s, int fd, Error **errp)
{
    ERRP_GUARD();
    CprsRollbackOpts ro = CPRS_OPTS(CprsRollbackOpts,
                                    .producer = "QEMU " QEMU_VERSION);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    g_auto(GStrv) next = NULL;
    g_auto(GStrv) argv = NULL;
    int ret;

    next = cpr_exec_command();
    argv = cpr_rollback_argv(next, errp);
    if (!argv) {
        if (*errp) {
            return false;
        }
        warn_report("cpr: cpr-exec-command has no -incoming option: no "
                    "rollback if the new QEMU fails");
        return true;
    }
    ro.argv = argv;
    ret = cprs_rollback_arm(s, fd, &ro, &diag, &cpr_rollback_out);
    if (ret) {
        cpr_cprs_error(errp, ret, &diag, "cpr: cannot arm the rollback");
        return false;
    }
    return true;
}

/* The cpr-exec: through the file pre-flight inspected (F2.7). */
void cpr_cprs_exec(char **argv, Error **errp)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    int ret;

    if (!cpr_target) {
        /* cpr_state_save() did not run for this migration. */
        error_setg(errp, "cpr: cpr-exec-command was not inspected");
        return;
    }
    ret = cprs_target_exec(cpr_target, argv, NULL, &diag);
    cpr_cprs_error(errp, ret, &diag, "cannot exec %s", argv[0]);
    /* The failure notifiers disarm the rollback and free the target. */
}

/* Hand the state back to the previous QEMU; returns only if it cannot. */
static void cpr_rollback_fire(CprFailureStage stage, int err,
                              const char *why)
{
    CprsFailure f = CPRS_OPTS(CprsFailure, .stage = stage, .error = err,
                              .message = why);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsRollbackInfo ri = CPRS_OPTS(CprsRollbackInfo);
    Error *local_err = NULL;
    int ret;

    if (!cpr_rollback_in) {
        return;
    }
    cprs_rollback_get_info(cpr_rollback_in, &ri);
    error_report("cpr: the live update failed before the VM ran (%s: %s); "
                 "resuming the VM in the previous QEMU, %s",
                 cprs_failure_stage_name(stage), why,
                 ri.exe_path ? ri.exe_path : "?");
    ret = cprs_rollback_trigger(cpr_rollback_in, &f, &diag);
    cpr_cprs_error(&local_err, ret, &diag, "cpr: the rollback failed");
    error_report_err(local_err);
    /* Never twice: a failed trigger leaves nothing to retry. */
    cprs_rollback_disarm(cpr_rollback_in);
    cpr_rollback_in = NULL;
}

void cpr_rollback_failed(CprFailureStage stage, int err, const Error *reason)
{
    cpr_rollback_fire(stage, err < 0 ? err : 0,
                      reason ? error_get_pretty(reason) : "unknown error");
}

/* Any exit before the VM ran (error_fatal, exit_on_error, a quit). */
static void cpr_rollback_atexit(void)
{
    cpr_rollback_fire(CPR_FAILED_OTHER, 0,
                      "QEMU exited before the VM ran");
}

void cpr_rollback_done(void)
{
    cprs_rollback_disarm(cpr_rollback_in);
    cpr_rollback_in = NULL;
}

/* New image: the rollback the previous QEMU armed, before the load. */
static void cpr_rollback_find(void)
{
    static bool atexit_done;
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Error *local_err = NULL;
    int ret;

    ret = cprs_rollback_find(0, &diag, &cpr_rollback_in);
    if (ret == -ENOENT) {
        return;
    }
    if (ret) {
        /* A bad record is ignored, never used: report and go on. */
        cpr_cprs_error(&local_err, ret, &diag,
                       "cpr: ignoring the rollback record");
        warn_report_err(local_err);
        cpr_rollback_in = NULL;
        return;
    }
    if (!atexit_done) {
        atexit(cpr_rollback_atexit);
        atexit_done = true;
    }
}

/* After a load: was this QEMU started by a rollback?  Say so. */
static void cpr_note_rollback(const CprsState *s)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);

    if (cprs_state_get_info(s, &si) ||
        !(si.rollback_flags & CPRS_ROLLBACK_F_ROLLED_BACK)) {
        return;
    }
    g_free(cpr_rolled_back.failed_exe);
    g_free(cpr_rolled_back.stage);
    g_free(cpr_rolled_back.error);
    cpr_rolled_back.rolled_back = true;
    cpr_rolled_back.failed_exe = g_strdup(si.failed_exe);
    cpr_rolled_back.stage =
        g_strdup(cprs_failure_stage_name(si.failure_stage) ?: "unknown");
    cpr_rolled_back.error = g_strdup_printf("%s%s%s", si.failure_message,
        si.failure_error ? ": " : "",
        si.failure_error ? strerror(-si.failure_error) : "");
    warn_report("cpr: rolled back: the live update to %s failed (%s: %s); "
                "the VM resumes in this QEMU", cpr_rolled_back.failed_exe,
                cpr_rolled_back.stage, cpr_rolled_back.error);
}

CprRollbackInfo *qmp_query_cpr_rollback(Error **errp)
{
    CprRollbackInfo *info = g_new0(CprRollbackInfo, 1);

    info->rolled_back = cpr_rolled_back.rolled_back;
    if (info->rolled_back) {
        info->failed_exe = g_strdup(cpr_rolled_back.failed_exe);
        info->stage = g_strdup(cpr_rolled_back.stage);
        info->error = g_strdup(cpr_rolled_back.error);
    }
    return info;
}

/*************************************************************************/
/* Save and load */

/* The socket under a cpr channel, made blocking for libcprstate. */
static int cpr_channel_fd(QEMUFile *f)
{
    QIOChannel *ioc = qemu_file_get_ioc(f);

    qio_channel_set_blocking(ioc, true, NULL);
    return QIO_CHANNEL_SOCKET(ioc)->fd;
}

QIOChannel *cpr_state_ioc(void)
{
    return qemu_file_get_ioc(cpr_state_file);
}

MigMode cpr_get_incoming_mode(void)
{
    return incoming_mode;
}

void cpr_set_incoming_mode(MigMode mode)
{
    incoming_mode = mode;
}

bool cpr_is_incoming(void)
{
    return incoming_mode != MIG_MODE_NONE;
}

bool cpr_incoming_needed(void *opaque)
{
    switch (migrate_mode()) {
    case MIG_MODE_CPR_TRANSFER:
    case MIG_MODE_CPR_EXEC:
        return true;
    default:
        return false;
    }
}

/* Runs in qmp_migrate(), before the VM stops. */
bool cpr_state_save(MigrationChannel *channel, Error **errp)
{
    CprsSaveOpts opts = CPRS_OPTS(CprsSaveOpts,
                                  .producer = "QEMU " QEMU_VERSION);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsPlan plan = CPRS_OPTS(CprsPlan);
    MigMode mode = migrate_mode();
    CprsState *s = cpr_cprs_state();
    QEMUFile *f;
    int ret, fd;

    trace_cpr_state_save(MigMode_str(mode));
    if (mode != MIG_MODE_CPR_TRANSFER && mode != MIG_MODE_CPR_EXEC) {
        return true;
    }
    if (cpr_cprs_pending_err) {
        error_propagate(errp, error_copy(cpr_cprs_pending_err));
        return false;
    }
    /* A state a rollback handed back was kept for cprdump until now. */
    if (cpr_rolled_back.rolled_back) {
        cprs_state_release_source(s);
    }
    /* The plan decides whether they are written (an arena) or not. */
    if (!cpr_record_ram_blocks(s, errp)) {
        return false;
    }
    opts.plan = &plan;

    if (mode == MIG_MODE_CPR_EXEC) {
        if (!cpr_preflight(s, mode, -1, &plan, errp)) {
            return false;
        }
        /*
         * A sealed memfd named by QEMU_CPR_EXEC_STATE; cpr-exec.c closes
         * it if the migration fails (cpr_exec_unpersist_state()).
         */
        ret = cprs_state_save_exec(s, &opts, &diag, &fd);
        if (ret) {
            cpr_cprs_error(errp, ret, &diag, "cannot save the CPR state");
            cpr_hop_abandon();
            return false;
        }
        if ((plan.flags & CPRS_PLAN_F_ROLLBACK) &&
            !cpr_rollback_arm(s, fd, errp)) {
            /* The failure notifiers unpersist the state. */
            cpr_hop_abandon();
            return false;
        }
        return true;
    }

    g_assert(channel);
    f = cpr_transfer_output(channel, errp);
    if (!f) {
        return false;
    }
    /* Before anything is sent: the peer reads what the plan writes. */
    if (!cpr_preflight(s, mode, cpr_channel_fd(f), &plan, errp)) {
        qemu_fclose(f);
        return false;
    }
    /* Sends the state and its fds, then shuts the write side down. */
    ret = cprs_state_save_transfer(s, cpr_channel_fd(f), &opts, &diag);
    if (ret) {
        cpr_cprs_error(errp, ret, &diag, "cannot send the CPR state");
        qemu_fclose(f);
        return false;
    }
    /* Kept open: the target closes it (HUP) once it listens. */
    cpr_state_file = f;
    return true;
}

static int cpr_merge_fd(void *opaque, const char *name, int32_t id, int fd)
{
    GPtrArray *fds = opaque;

    g_ptr_array_add(fds, g_strdup(name));
    g_ptr_array_add(fds, GINT_TO_POINTER(id));
    g_ptr_array_add(fds, GINT_TO_POINTER(fd));
    return 0;
}

/* Make @loaded the state, keeping any fd registered before the load. */
static void cpr_adopt(CprsState *loaded)
{
    g_autoptr(GPtrArray) fds = g_ptr_array_new();
    CprsState *old = cpr_cprs;
    guint i;

    if (old) {
        /* Newest first: re-add oldest first so the order survives. */
        cprs_state_walk_fds(old, cpr_merge_fd, fds);
        cpr_cprs = loaded;
        for (i = fds->len; i >= 3; i -= 3) {
            char *name = g_ptr_array_index(fds, i - 3);

            cpr_save_fd(name, GPOINTER_TO_INT(g_ptr_array_index(fds, i - 2)),
                        GPOINTER_TO_INT(g_ptr_array_index(fds, i - 1)));
            g_free(name);
        }
        cprs_state_free(old);
    }
    cpr_cprs = loaded;
}

int cpr_state_load(MigrationChannel *channel, Error **errp)
{
    CprsLoadOpts opts = CPRS_OPTS(CprsLoadOpts);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsState *loaded = NULL;
    Error *local_err = NULL;
    QEMUFile *f = NULL;
    MigMode mode;
    int ret;

    if (cpr_exec_has_state()) {
        mode = MIG_MODE_CPR_EXEC;
        if (channel) {
            warn_report("ignoring cpr channel for migration mode cpr-exec");
        }
    } else if (channel) {
        mode = MIG_MODE_CPR_TRANSFER;
        cpr_set_incoming_mode(mode);
        f = cpr_transfer_input(channel, errp);
        if (!f) {
            return -1;
        }
    } else {
        return 0;
    }

    trace_cpr_state_load(MigMode_str(mode));
    cpr_set_incoming_mode(mode);

    /*
     * All or nothing: on failure the inherited (cpr-exec) fds, memfd and
     * QEMU_CPR_EXEC_STATE are untouched, received (cpr-transfer) fds are
     * closed.  On success, cpr-exec fds are close-on-exec again.
     */
    if (mode == MIG_MODE_CPR_EXEC) {
        /* Found before the load, which unsets QEMU_CPR_EXEC_STATE. */
        cpr_rollback_find();
        ret = cprs_state_load_exec(&opts, &diag, &loaded);
    } else {
        ret = cprs_state_load_transfer(cpr_channel_fd(f), &opts, &diag,
                                       &loaded);
    }
    if (ret) {
        cpr_cprs_error(&local_err, ret, &diag, "cannot load the %s CPR state",
                       MigMode_str(mode));
        if (cpr_rollback_in) {
            /* @errp may be &error_fatal: report before handing back. */
            error_report_err(error_copy(local_err));
            cpr_rollback_failed(CPR_FAILED_STATE_LOAD, ret, local_err);
        }
        error_propagate(errp, local_err);
        if (f) {
            qemu_fclose(f);
        }
        return ret;
    }

    cpr_adopt(loaded);
    cpr_cprs_loaded = true;
    cpr_note_rollback(loaded);
    /* The caller decides when to close the channel (HUP to the source). */
    cpr_state_file = f;
    return 0;
}

void cpr_state_close(void)
{
    int ret;

    if (cpr_state_file) {
        qemu_fclose(cpr_state_file);
        cpr_state_file = NULL;
    }
    if (cpr_cprs_loaded) {
        /* Devices and RAM exist by now (migrate-incoming). */
        qemu_ram_foreach_block(cpr_check_block, NULL);
        /*
         * Drop the state memfd (inherited without close-on-exec), unless
         * a rollback handed it back: then it stays open until the next
         * live update, for cprdump --pid to show what failed.
         */
        ret = cpr_rolled_back.rolled_back ? 0 :
              cprs_state_release_source(cpr_cprs);
        if (ret) {
            warn_report("cpr: cannot release the loaded CPR state: %s",
                        strerror(-ret));
        }
        cpr_cprs_loaded = false;
    }
}
